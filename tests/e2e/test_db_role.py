"""Every pooled connection runs as the application role (`snodo_app`), whatever its first
transaction did: the owner's powers (no row-level security, UPDATE on the access log) never
reach a request."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from app.core.db import Database, session_scope
from app.core.settings import Settings
from tests.db import create_database, drop_database

pytestmark = pytest.mark.e2e


@pytest.fixture
async def database(server_url: str, settings: Settings) -> AsyncIterator[Database]:
    from app.core import migrations

    url = await create_database(server_url, prefix="snodo_role")
    await migrations.upgrade_async(url)
    # One connection: each session below gets the same one back from the pool.
    database = Database.from_url(url, settings.model_copy(update={"db_pool_size": 1, "db_pool_overflow": 0}))
    yield database
    await database.dispose()
    await drop_database(server_url, url)


async def roles(database: Database) -> tuple[str, bool]:
    async with session_scope(database) as session:
        user = await session.scalar(text("SELECT current_user"))
        bypass = await session.scalar(
            text("SELECT rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = current_user")
        )
        return str(user), bool(bypass)


async def fail_in_a_transaction(database: Database) -> None:
    async with session_scope(database) as session:
        assert await session.scalar(text("SELECT current_user")) == "snodo_app"
        raise RuntimeError("the request failed")


async def test_a_connection_whose_first_transaction_rolled_back_keeps_the_application_role(
    database: Database,
) -> None:
    # A fresh connection's first request fails (a 404, an expired token, a conflict): rolled back.
    with pytest.raises(RuntimeError):
        await fail_in_a_transaction(database)
    # Before the fix, SET ROLE had run inside that transaction and was rolled back with it: every
    # later request on the connection ran as the owner, outside row-level security.
    assert await roles(database) == ("snodo_app", False)


async def test_resetting_the_role_returns_to_the_application_role(database: Database) -> None:
    async with session_scope(database) as session:
        await session.execute(text("RESET ROLE"))
        assert await session.scalar(text("SELECT current_user")) == "snodo_app"
    assert await roles(database) == ("snodo_app", False)
