"""A statement that runs out of time is a 503 to retry, not a 500, and writes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from app.core.db import ALL_AMBITI, Database, session_scope, set_tenant
from app.core.settings import Settings
from app.main import create_app
from app.services.demo import seed_demo
from tests.db import asyncpg_dsn, create_database, drop_database
from tests.intake import AS_MELZO
from tests.support import DEMO_PASSWORD

pytestmark = pytest.mark.e2e


@pytest.fixture
async def busy_url(server_url: str) -> AsyncIterator[str]:
    from app.core import migrations

    url = await create_database(server_url, prefix="snodo_busy")
    await migrations.upgrade_async(url)
    yield url
    await drop_database(server_url, url)


async def test_a_statement_timeout_is_a_503_with_retry_after(busy_url: str, settings: Settings) -> None:
    settings = settings.model_copy(update={"db_statement_timeout_ms": 300})
    database = Database.from_url(busy_url, settings)
    app = create_app(settings, database=database)
    async with session_scope(database) as session:
        await set_tenant(session, ALL_AMBITI)
        await seed_demo(session=session, passwords=app.state.security.passwords, password=DEMO_PASSWORD)
    blocker = await asyncpg.connect(asyncpg_dsn(busy_url))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            token = await client.post(
                "/api/v1/auth/token", data={"username": AS_MELZO, "password": DEMO_PASSWORD}
            )
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            audit_before = await blocker.fetchval("SELECT count(*) FROM audit_event")
            async with blocker.transaction():
                await blocker.execute("LOCK TABLE dossier IN ACCESS EXCLUSIVE MODE")
                answer = await client.get("/api/v1/dossiers", headers=headers)
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert answer.headers["retry-after"] == "5"
            assert answer.json()["type"].endswith("/busy")
            assert "select" not in answer.text.lower()  # no SQL reaches the client
            assert await blocker.fetchval("SELECT count(*) FROM audit_event") == audit_before
            again = await client.get("/api/v1/dossiers", headers=headers)  # the lock is gone
            assert again.status_code == 200
    finally:
        await blocker.close()
        await database.dispose()
