"""The database: one async engine per process, one session (and transaction) per request."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Text, cast, event, func, select, text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.problems import ProblemError
from app.core.settings import Settings


@dataclass
class Database:
    """What the app needs of PostgreSQL: a session factory, and the engine to dispose of."""

    sessionmaker: async_sessionmaker[AsyncSession]
    engine: AsyncEngine | None = None

    @classmethod
    def from_url(cls, url: str, settings: Settings) -> Database:
        engine = create_async_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_pool_overflow,
            # No ping before each checkout (a round trip, ~0.8 ms of a request's CPU): a connection
            # that died while pooled fails its request with a 503 to retry (errors.py), and
            # SQLAlchemy then discards every connection the pool held before that moment.
            pool_pre_ping=False,
            connect_args={
                "server_settings": {
                    "application_name": "snodo",
                    "statement_timeout": str(settings.db_statement_timeout_ms),
                    "idle_in_transaction_session_timeout": "60000",
                    "TimeZone": "UTC",
                    # asyncpg prepares every statement; after five runs PostgreSQL may switch a
                    # prepared statement to a generic plan, one that ignores the values. For the
                    # worklist that plan hashes every routing of the caller's pools: a pool
                    # member's page went from 11 ms to 130 ms. Plan each execution for its values.
                    "plan_cache_mode": "force_custom_plan",
                }
            },
        )
        if settings.db_role:
            assume_role(engine, settings.db_role)
        return cls(sessionmaker=make_sessionmaker(engine), engine=engine)

    @classmethod
    def bound_to(cls, connection: AsyncConnection) -> Database:
        """Sessions that join an outer transaction as savepoints: how tests isolate themselves."""
        return cls(
            sessionmaker=async_sessionmaker(
                bind=connection,
                expire_on_commit=False,
                autoflush=False,
                join_transaction_mode="create_savepoint",
            )
        )

    async def dispose(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()


def assume_role(engine: AsyncEngine, role: str) -> None:
    """Every connection of the engine runs as the restricted application role, from its start.

    The role is a startup parameter of the session, its default: `RESET ROLE` (or `RESET ALL`)
    returns to it, and no transaction can undo it. It used to be a `SET ROLE` in the pool's
    "connect" event, which the driver ran inside the connection's first transaction: when that
    transaction rolled back (the first request on the connection failed), the role went with it,
    and every later request on that connection ran as the owner, outside row-level security
    (tests/e2e/test_db_role.py)."""

    @event.listens_for(engine.sync_engine, "do_connect")
    def _with_role(_dialect: Any, _record: Any, _args: Any, parameters: dict[str, Any]) -> None:
        # role name validated by Settings; a copy, not the engine's shared connect_args
        parameters["server_settings"] = {**parameters.get("server_settings", {}), "role": role}


ALL_AMBITI = "*"


async def set_tenant(session: AsyncSession, ambito: uuid.UUID | str) -> None:
    """Scope this transaction's row-level security to one ambito ('*': system work, all of them)."""
    await session.execute(select(func.set_config("snodo.ambito_id", str(ambito), True)))


def tenant_of(ambito_id: Any) -> ColumnElement[str]:
    """`set_tenant` as a column: selected with a row, it scopes the transaction to that row's
    ambito in the same round trip (the query that finds the caller sets its tenant)."""
    return func.set_config("snodo.ambito_id", cast(ambito_id, Text), True)


async def set_local(connection: AsyncConnection, settings: dict[str, str]) -> None:
    """`SET LOCAL name = value` of each setting for the rest of the transaction, sent as one of
    the driver's simple queries (one round trip, nothing to prepare, none of SQLAlchemy's
    execution path: ~0.5 ms less of a request's Python than a `set_config` select). Names and
    values are the code's own, never a caller's. Before the transaction's first statement the
    driver has not begun it yet: then through SQLAlchemy, which begins it."""
    driver = (await connection.get_raw_connection()).driver_connection
    if driver is not None and driver.is_in_transaction():
        await driver.execute("; ".join(f"SET LOCAL {name} = {value}" for name, value in settings.items()))
    else:
        await connection.execute(select(*(func.set_config(n, v, True) for n, v in settings.items())))


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def migration_revisions(session: AsyncSession) -> set[str]:
    """Revisions recorded in `alembic_version`; empty when the schema was never migrated."""
    exists = await session.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
    if not exists:
        return set()
    rows = await session.scalars(text("SELECT version_num FROM alembic_version"))
    return set(rows)


@asynccontextmanager
async def session_scope(database: Database) -> AsyncIterator[AsyncSession]:
    """One transaction: committed if the block succeeds, rolled back otherwise (except for the
    few errors whose writes are the record of the failure, see ProblemError.keeps_writes)."""
    async with database.sessionmaker() as session:
        try:
            yield session
        except ProblemError as error:
            if error.keeps_writes:
                await session.commit()
            else:
                await session.rollback()
            raise
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
