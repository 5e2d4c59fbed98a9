"""Delivery to a real receiver on 127.0.0.1 that is down, then slow, then failing, then fine:
every event arrives (once per webhook-id, after de-duplication), in commit order per dossier,
and killing a worker in the middle of a delivery loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select

from app.core.db import ALL_AMBITI, Database, session_scope, set_tenant
from app.core.settings import Settings
from app.main import create_app
from app.models import OutboxEvent, WebhookDelivery
from app.services.integrations.delivery import WebhookWorker
from app.services.platform.demo import seed_demo
from tests.db import create_database, drop_database
from tests.intake import AS_MELZO, COORDINATOR, MARIO, NICCOLO, referral
from tests.support import DEMO_PASSWORD
from tests.webhook_support import Receiver

pytestmark = pytest.mark.e2e

DATA_KEY = Fernet.generate_key().decode()


@dataclass
class World:
    app: FastAPI
    database: Database
    settings: Settings
    url: str
    client: httpx.AsyncClient
    coordinator: dict[str, str]
    social_worker: dict[str, str]


@pytest.fixture
async def world(server_url: str, settings: Settings) -> AsyncIterator[World]:
    from app.core import migrations

    settings = settings.model_copy(
        update={
            "data_key": SecretStr(DATA_KEY),
            "webhook_allowed_hosts": ["127.0.0.1"],
            "webhook_allow_http": True,
            "webhook_allow_private_addresses": True,
            "webhook_timeout_s": 0.5,
            "webhook_backoff_base_s": 0.05,
            "webhook_backoff_max_s": 0.4,
            "webhook_lease_s": 2.0,
            "webhook_max_attempts": 40,
            "webhook_poll_s": 0.1,
        }
    )
    url = await create_database(server_url, prefix="snodo_hooks")
    await migrations.upgrade_async(url)
    database = Database.from_url(url, settings)
    app = create_app(settings, database=database)
    async with session_scope(database) as session:
        await set_tenant(session, ALL_AMBITI)
        await seed_demo(
            session=session, passwords=app.state.security.passwords, password=DEMO_PASSWORD, pools=True
        )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:

        async def headers(login: str) -> dict[str, str]:
            token = await client.post(
                "/api/v1/auth/token", data={"username": login, "password": DEMO_PASSWORD}
            )
            return {"Authorization": f"Bearer {token.json()['access_token']}"}

        yield World(app, database, settings, url, client, await headers(COORDINATOR), await headers(AS_MELZO))
    await database.dispose()
    await drop_database(server_url, url)


async def subscribe(world: World, receiver: Receiver) -> None:
    created = await world.client.post(
        "/api/v1/webhooks/subscriptions",
        headers=world.coordinator,
        json={
            "url": receiver.url,
            "event_types": ["referral.received", "dossier.routed", "dossier.state_changed"],
        },
    )
    assert created.status_code == 201, created.text
    receiver.secret = created.json()["secret"]


async def make_events(world: World) -> None:
    """Two dossiers, each referred and then moved through states: a dozen events in all."""
    people = [MARIO, {**NICCOLO, "family_name": "Brambilla", "given_name": "Ugo"}]
    for person in people:
        receipt = await world.client.post(
            "/api/v1/referrals", json=referral(person, need_areas=["lavoro"]), headers=world.social_worker
        )
        dossier = receipt.json()["dossier_id"]
        for state in ("in_valutazione", "in_pool", "reindirizzato"):
            moved = await world.client.post(
                f"/api/v1/dossiers/{dossier}/transitions",
                headers=world.social_worker,
                json={"to": state, "reason": f"Verso {state}"},
            )
            assert moved.status_code == 200, moved.text


async def outbox(world: World) -> list[OutboxEvent]:
    async with session_scope(world.database) as session:
        await set_tenant(session, ALL_AMBITI)
        return list((await session.scalars(select(OutboxEvent).order_by(OutboxEvent.seq))).all())


async def open_deliveries(world: World) -> int:
    async with session_scope(world.database) as session:
        await set_tenant(session, ALL_AMBITI)
        statement = (
            select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status != "delivered")
        )
        return await session.scalar(statement) or 0


async def wait_until_delivered(world: World, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await open_deliveries(world) == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{await open_deliveries(world)} deliveries still open after {timeout}s")


def assert_complete_and_ordered(receiver: Receiver, events: list[OutboxEvent]) -> None:
    assert receiver.rejected_signatures == 0
    received = receiver.unique()
    assert set(received) == {str(e.id) for e in events}  # none lost, none invented
    first_seen: dict[str, int] = {}
    for position, (event_id, _, _) in enumerate(receiver.received):
        first_seen.setdefault(event_id, position)
    by_dossier: dict[Any, list[OutboxEvent]] = {}
    for event in events:
        by_dossier.setdefault(event.dossier_id, []).append(event)
    for dossier_events in by_dossier.values():
        order = [first_seen[str(e.id)] for e in dossier_events]  # events are in seq (commit) order
        assert order == sorted(order), "a dossier's events arrived out of commit order"


async def test_a_flaky_receiver_gets_every_event_once_in_order(world: World) -> None:
    receiver = Receiver()
    await subscribe(world, receiver)
    await make_events(world)
    events = await outbox(world)
    assert len(events) >= 10

    worker = WebhookWorker(
        world.database, world.settings, world.app.state.security.vault, database_url=world.url
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.sleep(1.0)  # the receiver is down: connection refused, retried
        receiver.slow_seconds, receiver.slow_next = 1.0, 2  # then slow: timeouts
        receiver.fail_next = 3  # then three 500s
        await receiver.start()
        await wait_until_delivered(world, timeout=60)
    finally:
        stop.set()
        await task
        await receiver.stop()
    assert_complete_and_ordered(receiver, events)
    async with session_scope(world.database) as session:
        await set_tenant(session, ALL_AMBITI)
        attempts = (await session.scalars(select(WebhookDelivery.attempts))).all()
    assert max(attempts) > 1  # retries really happened


async def test_killing_a_worker_mid_delivery_loses_nothing(world: World, tmp_path: Path) -> None:
    receiver = Receiver(slow_seconds=3.0, slow_next=1)  # the first delivery hangs for 3 s
    await receiver.start()
    await subscribe(world, receiver)
    await make_events(world)
    events = await outbox(world)

    env = {
        **os.environ,
        "DATABASE_URL": world.url,
        "SNODO_ENVIRONMENT": "test",
        "SNODO_DATA_KEY": DATA_KEY,
        "SNODO_LOG_JSON": "false",
        "SNODO_WEBHOOK_ALLOWED_HOSTS": '["127.0.0.1"]',
        "SNODO_WEBHOOK_ALLOW_HTTP": "true",
        "SNODO_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
        "SNODO_WEBHOOK_TIMEOUT_S": "5",
        "SNODO_WEBHOOK_LEASE_S": "2",
        "SNODO_WEBHOOK_BACKOFF_BASE_S": "0.05",
        "SNODO_WEBHOOK_BACKOFF_MAX_S": "0.4",
        "SNODO_WEBHOOK_POLL_S": "0.1",
    }

    def start_worker(name: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{name}.log").open("wb")
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
        )

    first = start_worker("first")
    try:
        deadline = time.monotonic() + 20
        while receiver.slow_next > 0 and time.monotonic() < deadline:  # the hanging delivery has begun
            await asyncio.sleep(0.05)
        assert receiver.slow_next == 0, (tmp_path / "first.log").read_text()
        first.send_signal(signal.SIGKILL)  # killed in the middle of posting
        first.wait(10)
        second = start_worker("second")
        try:
            await wait_until_delivered(world, timeout=60)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(15)
    finally:
        if first.poll() is None:
            first.kill()
        await receiver.stop()
    assert_complete_and_ordered(receiver, events)
