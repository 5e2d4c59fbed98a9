"""Webhook subscriptions, the fan-out that decides who hears of a dossier, and inbound ASST events."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import FrozenClock
from app.core.db import Database
from app.core.settings import Settings
from app.models import Dossier, DossierEntry, InboundEvent, OutboxEvent, Referral, WebhookDelivery
from app.services.events import outbox
from app.services.integrations.delivery import WebhookWorker
from tests.conftest import TEST_NOW
from tests.intake import AFOL, AS_MELZO, COORDINATOR, MARIO, referral, submit
from tests.support import Demo
from tests.webhook_support import Receiver, signed_headers

HOOK = "https://hooks.asst-melegnano-martesana.it/snodo"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "webhook_allowed_hosts": [
                "*.asst-melegnano-martesana.it",
                "127.0.0.1",
                "localhost",
                "169.254.169.254",
            ]
        }
    )


@pytest.fixture(autouse=True)
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """hooks.asst-melegnano-martesana.it resolves to a public address (no DNS in the sandbox)."""
    from app.services.integrations import webhooks

    real = webhooks.resolve

    async def resolve(host: str) -> list[str]:
        return ["93.184.215.14"] if host.endswith("asst-melegnano-martesana.it") else await real(host)

    monkeypatch.setattr(webhooks, "resolve", resolve)


async def subscribe(demo: Demo, who: str = COORDINATOR, **body: Any) -> Any:
    payload = {
        "url": HOOK,
        "event_types": ["dossier.routed", "dossier.state_changed", "referral.received"],
        **body,
    }
    return await demo.client.post(
        "/api/v1/webhooks/subscriptions", headers=await demo.headers(who), json=payload
    )


class TestSubscriptions:
    async def test_the_secret_is_shown_once(self, demo: Demo) -> None:
        created = await subscribe(demo)
        assert created.status_code == 201, created.text
        assert created.json()["secret"].startswith("whsec_")
        shown = await demo.client.get(
            f"/api/v1/webhooks/subscriptions/{created.json()['id']}", headers=await demo.headers(COORDINATOR)
        )
        assert "secret" not in shown.json()

    @pytest.mark.parametrize(
        ("url", "why"),
        [
            ("https://127.0.0.1/hook", "private, loopback or link-local"),
            ("https://169.254.169.254/latest/meta-data", "private, loopback or link-local"),
            ("https://localhost/hook", "private, loopback or link-local"),
            ("http://hooks.asst-melegnano-martesana.it/snodo", "https"),
            ("https://evil.example/hook", "allow-list"),
            ("https://user:pw@hooks.asst-melegnano-martesana.it/x", "credentials"),
            ("ftp://hooks.asst-melegnano-martesana.it/x", "https"),
        ],
    )
    async def test_urls_that_could_reach_inside_are_refused(self, demo: Demo, url: str, why: str) -> None:
        response = await subscribe(demo, url=url)
        assert response.status_code == 422
        [error] = response.json()["errors"]
        assert error["field"] == "body.url"
        assert why in error["message"]

    async def test_unknown_event_type_is_422(self, demo: Demo) -> None:
        response = await subscribe(demo, event_types=["dossier.routed", "dossier.exploded"])
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "body.event_types.1"

    async def test_only_managers_manage(self, demo: Demo) -> None:
        assert (await subscribe(demo, who=AS_MELZO)).status_code == 403
        coordinator = await subscribe(demo)
        token = await demo.client.post(
            f"/api/v1/organizations/{demo.org('Cooperativa Sociale Solleva')}/api-tokens",
            headers=await demo.headers(COORDINATOR),
            json={"name": "gestionale", "scopes": ["webhooks:manage"]},
        )
        bearer = {"Authorization": f"Bearer {token.json()['secret']}"}
        own = await demo.client.post(
            "/api/v1/webhooks/subscriptions",
            headers=bearer,
            json={"url": HOOK, "event_types": ["dossier.routed"]},
        )
        assert own.status_code == 201
        listed = await demo.client.get("/api/v1/webhooks/subscriptions", headers=bearer)
        assert [s["id"] for s in listed.json()] == [own.json()["id"]]
        other = await demo.client.get(
            f"/api/v1/webhooks/subscriptions/{coordinator.json()['id']}", headers=bearer
        )
        assert other.status_code == 404

    async def test_pause_resume_rotate_delete(self, demo: Demo, clock: FrozenClock) -> None:
        headers = await demo.headers(COORDINATOR)
        created = (await subscribe(demo)).json()
        url = f"/api/v1/webhooks/subscriptions/{created['id']}"
        paused = await demo.client.post(
            f"{url}/pause", headers=headers, json={"reason": "Manutenzione del server"}
        )
        assert paused.json()["status"] == "paused"
        assert paused.json()["paused_reason"] == "Manutenzione del server"
        assert (await demo.client.post(f"{url}/resume", headers=headers)).json()["status"] == "active"
        rotated = await demo.client.post(f"{url}/rotate-secret", headers=headers)
        assert rotated.json()["secret"] != created["secret"]
        grace_until = datetime.fromisoformat(rotated.json()["previous_valid_until"])
        assert grace_until == clock.now() + timedelta(hours=24)  # the old secret signs for a day more
        assert (await demo.client.delete(url, headers=headers)).status_code == 204
        assert (await demo.client.get(url, headers=headers)).status_code == 404


class TestFanOut:
    async def count(self, session: AsyncSession, subscription_id: str) -> int:
        statement = (
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == uuid.UUID(subscription_id))
        )
        return await session.scalar(statement) or 0

    async def test_each_subscriber_hears_only_of_dossiers_that_concern_it(
        self, demo_pools: Demo, session: AsyncSession
    ) -> None:
        demo = demo_pools
        ufficio = (await subscribe(demo)).json()["id"]
        afol = (await subscribe(demo, organization_id=str(demo.org("AFOL Metropolitana")))).json()["id"]
        arche = (await subscribe(demo, organization_id=str(demo.org("Cooperativa Sociale Archè")))).json()[
            "id"
        ]
        # Mario of Melzo asks for work: routed to the Melzo work pool (AFOL and Solleva are in it)
        assert (await submit(demo, AS_MELZO, referral(need_areas=["lavoro"]))).status_code == 201
        assert await self.count(session, ufficio) == 2  # referral.received, dossier.routed
        assert await self.count(session, afol) == 1  # AFOL hears of it when it is routed to its pool
        assert await self.count(session, arche) == 0  # Archè is in the Cassano pool, not this one
        payloads = (
            await session.scalars(
                select(WebhookDelivery.payload).where(WebhookDelivery.subscription_id == uuid.UUID(afol))
            )
        ).all()
        for payload in payloads:
            assert set(payload) == {"id", "type", "timestamp", "data"}
            assert "Rossi" not in json.dumps(payload)  # ids and state, never content

    async def test_no_consent_no_event(self, demo_pools: Demo, session: AsyncSession) -> None:
        demo = demo_pools
        afol = (await subscribe(demo, organization_id=str(demo.org("AFOL Metropolitana")))).json()["id"]
        assert (
            await submit(demo, AS_MELZO, referral(need_areas=["lavoro"], consent_recipients=["comune"]))
        ).status_code == 201
        assert await self.count(session, afol) == 0

    async def _emit_then_fail(self, session: AsyncSession, dossier: Dossier, clock: FrozenClock) -> int:
        """Write an event, see it, then fail the transaction (a savepoint here) and return the count seen."""
        seen = 0
        try:
            async with session.begin_nested():
                await outbox.emit(
                    session, dossier, "dossier.state_changed", now=clock.now(), to_state="in_pool"
                )
                seen = await session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0
                raise RuntimeError("the change fails after the event was written")
        except RuntimeError:
            pass
        return seen

    async def test_a_rolled_back_change_emits_nothing(
        self, demo: Demo, session: AsyncSession, clock: FrozenClock
    ) -> None:
        ufficio = (await subscribe(demo)).json()["id"]
        await submit(demo, AS_MELZO, referral())
        dossier = await session.scalar(select(Dossier))
        assert dossier is not None
        before_events = await session.scalar(select(func.count()).select_from(OutboxEvent))
        before = await self.count(session, ufficio)
        written = await self._emit_then_fail(session, dossier, clock)
        assert written == before + 1
        assert await session.scalar(select(func.count()).select_from(OutboxEvent)) == before_events
        assert await self.count(session, ufficio) == before


# ---------------------------------------------------------------------------------------------
# Inbound


@pytest.fixture
async def sender(demo_pools: Demo) -> dict[str, str]:
    created = await demo_pools.client.post(
        "/api/v1/integrations/senders",
        headers=await demo_pools.headers(COORDINATOR),
        json={
            "organization_id": str(demo_pools.org("ASST Melegnano e Martesana")),
            "name": "ADT Ospedale di Melzo",
        },
    )
    assert created.status_code == 201, created.text
    return {"id": created.json()["id"], "secret": created.json()["secret"]}


DISCHARGE = {
    "type": "dimissione_protetta.requested",
    "data": {
        "person": {**MARIO, "fiscal_code": MARIO["fiscal_code"]},
        "hospital": "Ospedale di Melzo",
        "ward": "Medicina generale",
        "discharge_date": "2026-11-25",
        "needs": "Vive solo, non autonomo nell'igiene personale: serve assistenza domiciliare.",
        "contact": {"name": "Inf. Carla Sala", "phone": "02 9505 1234"},
        "consent": {"given": True, "date": "2026-11-20", "recipients": ["comune", "cooperativa", "asst"]},
    },
}


async def post_event(demo: Demo, sender: dict[str, str], event: dict[str, Any] | str, **kw: Any) -> Any:
    body = event if isinstance(event, str) else json.dumps(event)
    headers = signed_headers(
        kw.pop("secret", sender["secret"]),
        kw.pop("signed_body", body),
        event_id=kw.pop("event_id", "evt-1"),
        sender=sender["id"],
        at=kw.pop("at", TEST_NOW),  # the test clock's start (tests that move it pass theirs)
        **kw,
    )
    return await demo.client.post("/api/v1/integrations/asst/events", content=body.encode(), headers=headers)


class TestInbound:
    async def test_a_protected_discharge_becomes_a_referral_routed_to_home_care(
        self, demo_pools: Demo, session: AsyncSession, sender: dict[str, str]
    ) -> None:
        demo = demo_pools
        response = await post_event(demo, sender, DISCHARGE)
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "applied"
        referral_row = await session.scalar(select(Referral))
        assert referral_row is not None
        assert referral_row.urgency == "urgente"
        assert referral_row.submitted_by_kind == "integration"
        dossier = await session.scalar(select(Dossier))
        assert dossier is not None
        routed = await demo.client.get(
            f"/api/v1/dossiers/{dossier.id}/routings", headers=await demo.headers(COORDINATOR)
        )
        pools = (await demo.client.get("/api/v1/pools", headers=await demo.headers(COORDINATOR))).json()
        home_care = next(p["id"] for p in pools if p["area"] == "domiciliarita")
        assert home_care in {r["pool_id"] for r in routed.json()}
        # Melzo's social worker sees it, urgent
        seen = await demo.client.get(f"/api/v1/dossiers/{dossier.id}", headers=await demo.headers(AS_MELZO))
        assert seen.json()["urgency"] == "urgente"

    async def test_a_repeat_answers_as_the_first_time(
        self, demo_pools: Demo, session: AsyncSession, sender: dict[str, str]
    ) -> None:
        first = await post_event(demo_pools, sender, DISCHARGE, event_id="evt-7")
        again = await post_event(demo_pools, sender, DISCHARGE, event_id="evt-7")
        assert first.status_code == again.status_code == 202
        assert first.json() == again.json()
        assert await session.scalar(select(func.count()).select_from(Referral)) == 1

    async def test_the_same_id_with_another_body_is_refused(
        self, demo_pools: Demo, sender: dict[str, str]
    ) -> None:
        await post_event(demo_pools, sender, DISCHARGE, event_id="evt-8")
        other = {**DISCHARGE, "data": {**DISCHARGE["data"], "needs": "Altro"}}  # type: ignore[dict-item]
        response = await post_event(demo_pools, sender, other, event_id="evt-8")
        assert response.status_code == 409

    async def test_a_tampered_body_is_refused(
        self, demo_pools: Demo, session: AsyncSession, sender: dict[str, str]
    ) -> None:
        signed = json.dumps(DISCHARGE)
        tampered = signed.replace("Ospedale di Melzo", "Ospedale di Mezzo")
        response = await post_event(demo_pools, sender, tampered, signed_body=signed)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Signature")
        assert await session.scalar(select(func.count()).select_from(InboundEvent)) == 0

    async def test_a_wrong_secret_is_refused(self, demo_pools: Demo, sender: dict[str, str]) -> None:
        response = await post_event(demo_pools, sender, DISCHARGE, secret="whsec_" + "QUJD" * 8)
        assert response.status_code == 401

    async def test_a_stale_timestamp_is_refused(
        self, demo_pools: Demo, sender: dict[str, str], clock: FrozenClock
    ) -> None:
        response = await post_event(demo_pools, sender, DISCHARGE, at=clock.now() - timedelta(minutes=6))
        assert response.status_code == 401
        assert "tolerance" in response.json()["detail"]

    async def test_a_replay_after_the_window_is_refused(
        self, demo_pools: Demo, sender: dict[str, str], clock: FrozenClock
    ) -> None:
        body = json.dumps(DISCHARGE)
        headers = signed_headers(
            sender["secret"], body, event_id="evt-9", sender=sender["id"], at=clock.now()
        )
        first = await demo_pools.client.post(
            "/api/v1/integrations/asst/events", content=body.encode(), headers=headers
        )
        assert first.status_code == 202
        clock.advance(minutes=10)  # an eavesdropper replays the captured request later
        replayed = await demo_pools.client.post(
            "/api/v1/integrations/asst/events", content=body.encode(), headers=headers
        )
        assert replayed.status_code == 401

    async def test_an_oversized_event_is_refused(self, demo_pools: Demo, sender: dict[str, str]) -> None:
        big = {**DISCHARGE, "data": {**DISCHARGE["data"], "needs": "x" * (300 * 1024)}}  # type: ignore[dict-item]
        response = await post_event(demo_pools, sender, big)
        assert response.status_code == 413

    async def test_an_unknown_sender_is_refused(self, demo_pools: Demo, sender: dict[str, str]) -> None:
        response = await post_event(demo_pools, {**sender, "id": str(uuid.uuid4())}, DISCHARGE)
        assert response.status_code == 401

    async def test_an_unknown_type_is_422_stored_and_nothing_applied(
        self, demo_pools: Demo, session: AsyncSession, sender: dict[str, str]
    ) -> None:
        response = await post_event(demo_pools, sender, {"type": "teletrasporto.richiesto", "data": {}})
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["field"] == "body.type"
        stored = await session.scalar(select(InboundEvent))
        assert stored is not None
        assert stored.status == "rejected"
        assert stored.event_type == "teletrasporto.richiesto"

    async def test_a_half_valid_event_is_not_half_applied(
        self, demo_pools: Demo, session: AsyncSession, sender: dict[str, str]
    ) -> None:
        broken = {**DISCHARGE, "data": {**DISCHARGE["data"], "discharge_date": "2026-13-40"}}  # type: ignore[dict-item]
        response = await post_event(demo_pools, sender, broken)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "body.data.discharge_date"
        assert await session.scalar(select(func.count()).select_from(Referral)) == 0
        assert await session.scalar(select(func.count()).select_from(Dossier)) == 0

    async def test_a_sert_taking_charge_goes_to_the_health_section_labelled(
        self, demo_pools: Demo, session: AsyncSession, sender: dict[str, str]
    ) -> None:
        demo = demo_pools
        assert (await submit(demo, AS_MELZO, referral(need_areas=["lavoro"]))).status_code == 201
        event = {
            "type": "presa_in_carico.started",
            "data": {"fiscal_code": MARIO["fiscal_code"], "service": "sert", "date": "2026-11-18"},
        }
        response = await post_event(demo, sender, event, event_id="evt-sert")
        assert response.status_code == 202, response.text
        entry = await session.scalar(select(DossierEntry))
        assert entry is not None
        assert (entry.section, entry.label) == ("health", "ETH")
        dossier = await session.scalar(select(Dossier))
        assert dossier is not None
        # AFOL (pool member) does not see the health section at all
        health = await demo.client.get(
            f"/api/v1/dossiers/{dossier.id}/entries",
            params={"section": "health"},
            headers=await demo.headers(AFOL),
        )
        assert health.status_code == 403
        unknown = {
            "type": "presa_in_carico.started",
            "data": {"fiscal_code": "BNCLRA70A41F205Z", "service": "cps", "date": "2026-11-18"},
        }
        missing = await post_event(demo, sender, unknown, event_id="evt-cps")
        assert missing.status_code == 422


class TestWorker:
    """The worker on the test's own transaction, against a real receiver on 127.0.0.1."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={
                "webhook_allowed_hosts": ["127.0.0.1"],
                "webhook_allow_http": True,
                "webhook_allow_private_addresses": True,
                "webhook_max_attempts": 2,
                "webhook_pause_after_failures": 3,
                "webhook_backoff_base_s": 0.001,
                "webhook_backoff_max_s": 0.001,
                "webhook_timeout_s": 1.0,
                "webhook_concurrency": 1,  # one connection (the test's transaction): one delivery at a time
            }
        )

    async def test_dead_letters_pause_and_replay(
        self,
        demo: Demo,
        session: AsyncSession,
        database: Database,
        settings: Settings,
        app: FastAPI,
        clock: FrozenClock,
    ) -> None:
        receiver = Receiver(fail_next=10**6, clock=clock.now)  # always 500
        await receiver.start()
        try:
            created = await demo.client.post(
                "/api/v1/webhooks/subscriptions",
                headers=await demo.headers(COORDINATOR),
                json={"url": receiver.url, "event_types": ["referral.received", "dossier.state_changed"]},
            )
            receiver.secret = created.json()["secret"]
            for person in (
                MARIO,
                {
                    **MARIO,
                    "fiscal_code": None,
                    "no_fiscal_code_reason": "not_known",
                    "family_name": "Verdi",
                    "birth_date": "1990-05-05",
                },
            ):
                assert (await submit(demo, AS_MELZO, referral(person))).status_code == 201
            worker = WebhookWorker(database, settings, app.state.security.vault, clock=clock)
            await worker.drain()
            clock.advance(seconds=1)  # past the backoff
            await worker.drain()
            headers = await demo.headers(COORDINATOR)
            dead = (
                await demo.client.get(
                    "/api/v1/webhooks/deliveries", params={"status": "dead"}, headers=headers
                )
            ).json()
            assert len(dead["items"]) == 2
            assert all(d["attempts"] == 2 and d["last_status_code"] == 500 for d in dead["items"])
            subscription = (
                await demo.client.get(
                    f"/api/v1/webhooks/subscriptions/{created.json()['id']}", headers=headers
                )
            ).json()
            assert subscription["status"] == "paused"  # three failures in a row
            assert "consegne fallite" in subscription["paused_reason"]

            receiver.fail_next = 0
            await demo.client.post(
                f"/api/v1/webhooks/subscriptions/{created.json()['id']}/resume", headers=headers
            )
            replayed = await demo.client.post(
                f"/api/v1/webhooks/deliveries/{dead['items'][0]['id']}/replay", headers=headers
            )
            assert replayed.json()["status"] == "pending"
            await worker.drain()
            assert list(receiver.unique()) == [dead["items"][0]["event_id"]]
        finally:
            await receiver.stop()
