"""Alembic environment: async engine, one advisory lock so concurrent replicas migrate once."""

from __future__ import annotations

import asyncio
import time

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.models import Base

config = context.config
target_metadata = Base.metadata

# An arbitrary constant: every snodo process that migrates takes the same lock.
MIGRATION_LOCK_ID = 0x736E6F646F
LOCK_RETRY_S = 0.2


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        # Each migration in its own transaction, so that one can build an index CONCURRENTLY
        # outside of any (op.get_context().autocommit_block(), e.g. 0021): on a large table a
        # plain CREATE INDEX holds the table's writes for the whole build.
        transaction_per_migration=True,
    )
    # Held by the session across the migrations' transactions (closing the connection releases
    # it too): concurrent replicas migrate once, one after the other. Asked for again and again
    # rather than waited for: a replica waiting inside a statement holds a snapshot, and the
    # other's CREATE INDEX CONCURRENTLY waits for every such snapshot to go (a deadlock).
    while not connection.execute(
        text("SELECT pg_try_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID}
    ).scalar():
        connection.rollback()
        time.sleep(LOCK_RETRY_S)
    connection.commit()
    try:
        with context.begin_transaction():
            context.run_migrations()
    finally:
        connection.rollback()  # whatever a failed migration left open
        connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
        connection.commit()


async def _run_async() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to the migrations")
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_configure_and_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(_run_async())
