"""Fixtures: one PostgreSQL per run, a database migrated by Alembic, one rolled-back transaction per test.

By default the server is an embedded PostgreSQL in a temporary directory; with TEST_DATABASE_URL
(any database on the server, the user needs CREATEDB) the tests create their own database there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.core import migrations
from app.core.clock import FrozenClock
from app.core.db import Database, assume_role
from app.core.embedded import EmbeddedPostgres
from app.core.settings import Environment, Settings, normalise_database_url
from app.main import create_app
from tests.db import create_database, drop_database
from tests.support import Demo, load_demo


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A PostgreSQL server on which the tests may create databases."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield normalise_database_url(configured)
        return
    workdir = Path(tempfile.mkdtemp(prefix="snodo-test-"))
    embedded = EmbeddedPostgres(workdir / "pgdata", delete_on_exit=True)
    embedded.start()
    try:
        yield embedded.url("postgres")
    finally:
        embedded.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    """A fresh database for this run, built by the Alembic migrations (so they are tested too)."""
    url = await create_database(server_url)
    await migrations.upgrade_async(url)
    yield url
    await drop_database(server_url, url)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url, poolclass=NullPool)
    assume_role(engine, "snodo_app")  # the tests run with the application's own privileges
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside a transaction that is rolled back after the test: nothing persists."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        # Test setup works across ambiti; each request then scopes itself to its principal's.
        await connection.execute(text("SELECT set_config('snodo.ambito_id', '*', false)"))
        try:
            yield connection
        finally:
            await transaction.rollback()


@pytest.fixture
def database(connection: AsyncConnection) -> Database:
    return Database.bound_to(connection)


@pytest.fixture
async def session(database: Database) -> AsyncIterator[AsyncSession]:
    async with database.sessionmaker() as session:
        yield session


TEST_JWT_SECRET = "test-secret-" + "x" * 40


@pytest.fixture
def settings() -> Settings:
    # Cheap argon2 parameters: the suite logs in hundreds of times. Same algorithm (argon2id).
    return Settings(
        environment=Environment.test,
        log_json=False,
        jwt_secret=SecretStr(TEST_JWT_SECRET),
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
    )


def _test_now() -> datetime:
    """Where every test clock starts: 2 Dec 2026, or the day `SNODO_TEST_TODAY` (YYYY-MM-DD) names,
    so that the suite can be run as if today were any other day (README)."""
    day = date.fromisoformat(os.environ.get("SNODO_TEST_TODAY") or "2026-12-02")
    return datetime.combine(day, time(9, 30), tzinfo=UTC)


TEST_NOW = _test_now()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(TEST_NOW)


@pytest.fixture
def app(settings: Settings, database: Database, clock: FrozenClock) -> FastAPI:
    return create_app(settings, database=database, clock=clock)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def demo(session: AsyncSession, app: FastAPI, client: httpx.AsyncClient) -> Demo:
    """Ambito 5 Melzo with its organizations and one demo user per role (see app/services/platform/demo.py),
    without pools: referrals then reach only their comune's social workers."""
    return await load_demo(session, app, client)


@pytest.fixture
async def demo_pools(session: AsyncSession, app: FastAPI, client: httpx.AsyncClient) -> Demo:
    """The same, with the demo pools territoriali and routing rules."""
    return await load_demo(session, app, client, pools=True)
