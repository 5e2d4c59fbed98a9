"""A statement that runs out of time is a 503 to retry, not a 500, and writes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.core.db import ALL_AMBITI, Database, session_scope, set_tenant
from app.core.settings import Settings
from app.main import create_app
from app.services.platform.demo import seed_demo
from tests.db import asyncpg_dsn, create_database, drop_database
from tests.intake import AS_MELZO, MELZO_ISTAT, referral
from tests.support import DEMO_PASSWORD

pytestmark = pytest.mark.e2e


@pytest.fixture
async def busy_url(server_url: str) -> AsyncIterator[str]:
    from app.core import migrations

    url = await create_database(server_url, prefix="snodo_busy")
    await migrations.upgrade_async(url)
    yield url
    await drop_database(server_url, url)


async def _demo_app(url: str, settings: Settings) -> tuple[Database, FastAPI]:
    """The app on its own engine (its own pool, as served), the database seeded with the demo."""
    database = Database.from_url(url, settings)
    app = create_app(settings, database=database)
    async with session_scope(database) as session:
        await set_tenant(session, ALL_AMBITI)
        await seed_demo(session=session, passwords=app.state.security.passwords, password=DEMO_PASSWORD)
    return database, app


async def _as_melzo(client: httpx.AsyncClient) -> dict[str, str]:
    token = await client.post("/api/v1/auth/token", data={"username": AS_MELZO, "password": DEMO_PASSWORD})
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def test_a_statement_timeout_is_a_503_with_retry_after(busy_url: str, settings: Settings) -> None:
    settings = settings.model_copy(update={"db_statement_timeout_ms": 300})
    database, app = await _demo_app(busy_url, settings)
    blocker = await asyncpg.connect(asyncpg_dsn(busy_url))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            headers = await _as_melzo(client)
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


async def test_a_request_that_loses_a_deadlock_is_a_503_and_writes_nothing(
    busy_url: str, settings: Settings
) -> None:
    """PostgreSQL breaks a lock cycle by aborting one transaction: for a request that is a 503 to
    retry (its transaction is gone, nothing of it written), not a 500. The cycle: another session
    holds a new name word of the referral's person ("zuzzu") and asks for the other one ("abba")
    once the referral's trigger holds it (a person's words are added in order: abba, then zuzzu).
    The request waits first, so PostgreSQL's check runs in its backend and aborts it."""
    database, app = await _demo_app(busy_url, settings)
    person = {
        "no_fiscal_code_reason": "not_known",
        "family_name": "Zuzzu",
        "given_name": "Abba",
        "birth_date": "1970-01-01",
        "residence_comune_istat": MELZO_ISTAT,
    }
    other = await asyncpg.connect(asyncpg_dsn(busy_url))
    try:
        ambito = await other.fetchval("SELECT id FROM ambito")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            headers = await _as_melzo(client)
            transaction = other.transaction()
            await transaction.start()
            add_word = "INSERT INTO person_name_word (ambito_id, word) VALUES ($1, $2)"
            await other.execute(add_word, ambito, "zuzzu")
            submitted = asyncio.create_task(
                client.post("/api/v1/referrals", json=referral(person), headers=headers)
            )
            await _until_waiting(other)
            await other.execute(add_word, ambito, "abba", timeout=15)  # waits until the request is aborted
            answer = await asyncio.wait_for(submitted, 15)
            await transaction.rollback()
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.headers["retry-after"] == "5"
        assert answer.json()["type"].endswith("/busy")
        assert await other.fetchval("SELECT count(*) FROM person WHERE family_name = 'Zuzzu'") == 0
        assert await other.fetchval("SELECT count(*) FROM referral") == 0
    finally:
        await other.close()
        await database.dispose()


async def _until_waiting(observer: asyncpg.Connection) -> None:
    """Until another backend (the request's: no other runs) waits for a lock."""
    for _ in range(500):
        waiting = await observer.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the request never waited for the lock")


async def test_a_connection_lost_while_pooled_is_a_503_and_the_next_request_reconnects(
    busy_url: str, settings: Settings
) -> None:
    """The pool does not ping a connection before lending it (a round trip on every request).
    When PostgreSQL restarted or a backend was terminated meanwhile, the request that meets the
    dead connection is a 503 to retry, and the pool drops every connection it held before: the
    next request runs on a new one."""
    database, app = await _demo_app(busy_url, settings)
    admin = await asyncpg.connect(asyncpg_dsn(busy_url))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            headers = await _as_melzo(client)
            assert (await client.get("/api/v1/dossiers", headers=headers)).status_code == 200
            terminated = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND application_name = 'snodo'"
            )
            assert terminated >= 1  # the pooled connections of the requests above
            audit_before = await admin.fetchval("SELECT count(*) FROM audit_event")

            lost = await client.get("/api/v1/dossiers", headers=headers)
            assert lost.status_code == 503, lost.text
            assert lost.headers["content-type"].startswith("application/problem+json")
            assert lost.headers["retry-after"] == "5"
            assert lost.json()["type"].endswith("/busy")
            assert "connection to the database was lost" in lost.json()["detail"]

            again = await client.get("/api/v1/dossiers", headers=headers)
            assert again.status_code == 200, again.text
            assert await admin.fetchval("SELECT count(*) FROM audit_event") == audit_before + 1
    finally:
        await admin.close()
        await database.dispose()
