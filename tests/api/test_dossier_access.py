"""The access policy, route by route: an outsider gets 404 and learns nothing; a visible dossier's
forbidden section is 403; access starts and ends with its basis (residence, case manager,
participation under consent, break-the-glass)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import FrozenClock
from app.main import ROUTERS
from tests.intake import (
    AFOL,
    ARCHE,
    AS_INZAGO,
    AS_MELZO,
    COORDINATOR,
    DPO,
    MARIO,
    SERT,
    SOLLEVA,
    Case,
    involve,
    open_case,
)
from tests.support import Demo

SOLLEVA_ORG = "Cooperativa Sociale Solleva"
SECRETS = ("Rossi", "Mario", MARIO["fiscal_code"], "affitto", "lavoro", "poverta")

# A valid request for every route that takes the id of a dossier or of a referral: an outsider
# must get 404 from each. A new route without an entry here makes the test fail, on purpose.
SAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/api/v1/dossiers/{dossier_id}"): {},
    ("PATCH", "/api/v1/dossiers/{dossier_id}"): {
        "json": {"urgency": "prioritaria"},
        "headers": {"If-Match": '"1"'},
    },
    ("POST", "/api/v1/dossiers/{dossier_id}/transitions"): {
        "json": {"to": "in_valutazione", "reason": "Colloquio fissato"}
    },
    ("GET", "/api/v1/dossiers/{dossier_id}/timeline"): {},
    ("GET", "/api/v1/dossiers/{dossier_id}/registry"): {},
    ("POST", "/api/v1/dossiers/{dossier_id}/household"): {
        "json": {"family_name": "Rossi", "given_name": "Luca", "relation": "figlio"}
    },
    ("GET", "/api/v1/dossiers/{dossier_id}/referrals"): {},
    ("GET", "/api/v1/dossiers/{dossier_id}/entries"): {"params": {"section": "registry"}},
    ("POST", "/api/v1/dossiers/{dossier_id}/entries"): {"json": {"section": "registry", "text": "Nota"}},
    ("GET", "/api/v1/dossiers/{dossier_id}/entries/{entry_id}"): {},
    ("GET", "/api/v1/dossiers/{dossier_id}/consents"): {},
    ("POST", "/api/v1/dossiers/{dossier_id}/consents"): {
        "json": {
            "organization_kinds": ["cooperativa"],
            "purposes": ["presa_in_carico"],
            "legal_basis": "consent",
            "given_on": "2026-11-01",
        }
    },
    ("POST", "/api/v1/dossiers/{dossier_id}/consents/{consent_id}/revoke"): {"json": {"reason": "Revocato"}},
    ("GET", "/api/v1/dossiers/{dossier_id}/participants"): {},
    ("POST", "/api/v1/dossiers/{dossier_id}/participants"): {
        "json": {"organization_id": "<arche>", "basis": "provider"}
    },
    ("POST", "/api/v1/dossiers/{dossier_id}/participants/{participant_id}/end"): {},
    ("GET", "/api/v1/dossiers/{dossier_id}/access-log"): {},
    ("GET", "/api/v1/dossiers/{dossier_id}/routings"): {},
    ("POST", "/api/v1/dossiers/{dossier_id}/routings"): {
        "json": {"pool_id": "<pool>", "reason": "Serve il SIL"}
    },
    ("POST", "/api/v1/dossiers/{dossier_id}/routings/{routing_id}/end"): {
        "json": {"reason": "Non serve più"}
    },
    ("POST", "/api/v1/dossiers/{dossier_id}/routings/{routing_id}/transfer"): {
        "json": {"pool_id": "<pool>", "reason": "Altro pool"}
    },
    ("PUT", "/api/v1/meetings/{meeting_id}/items/{dossier_id}"): {"json": {"minutes": "Discussa"}},
    ("POST", "/api/v1/dossiers/{dossier_id}/pre-assessments"): {
        "json": {
            "interview_date": "2026-11-01",
            "answers": [
                {"question_id": "situazione", "viewpoint": "respondent", "text": "Ho perso il lavoro"}
            ],
        }
    },
    ("GET", "/api/v1/dossiers/{dossier_id}/pre-assessments"): {},
    ("GET", "/api/v1/pre-assessments/{pre_assessment_id}"): {},
    ("PATCH", "/api/v1/pre-assessments/{pre_assessment_id}"): {
        "json": {"stated_request": "Lavoro"},
        "headers": {"If-Match": '"1"'},
    },
    ("POST", "/api/v1/pre-assessments/{pre_assessment_id}/finalize"): {"headers": {"If-Match": '"1"'}},
    ("POST", "/api/v1/dossiers/{dossier_id}/competence-evaluations"): {
        "json": {
            "phase": "T0",
            "instrument_version": 1,
            "evaluated_on": "2026-11-01",
            "scores": {
                "anticipation": 2,
                "strategies": 2,
                "objective_use": 2,
                "role_use": 2,
                "context_evaluation": 2,
            },
        }
    },
    ("GET", "/api/v1/dossiers/{dossier_id}/competence-profile"): {},
    ("GET", "/api/v1/dossiers/{dossier_id}/competence-profile.svg"): {},
    ("GET", "/api/v1/referrals/{referral_id}"): {},
    ("POST", "/api/v1/referrals/{referral_id}/identification"): {"json": {"new_person": True}},
    # A routing task shows its dossier to the organization asked, a meeting to the pool's members.
    ("POST", "/api/v1/routing-tasks/{task_id}/accept"): {},
    ("POST", "/api/v1/routing-tasks/{task_id}/decline"): {"json": {"reason": "Non di nostra competenza"}},
    ("POST", "/api/v1/routing-tasks/{task_id}/complete"): {},
    ("GET", "/api/v1/meetings/{meeting_id}"): {},
}

# Every other route with an id in its path, and why it shows no dossier content. A new id route
# is in SAMPLES (an outsider gets 404) or here with its reason, or test_the_route_list_is_complete
# fails.
NOT_DOSSIER_SCOPED: dict[str, str] = {
    "/api/v1/organizations/{organization_id}": "the ambito's organizations are known to its members",
    "/api/v1/organizations/{organization_id}/users": "people of an organization: its admins and the UdP",
    "/api/v1/users/{user_id}": "an operator's account, no case content",
    "/api/v1/organizations/{organization_id}/api-tokens": "an organization's tokens: its admins and the UdP",
    "/api/v1/api-tokens/{token_id}": "a token's name, scopes and dates",
    "/api/v1/break-glass/{grant_id}/review": "the DPO's review: who opened which dossier when, no content",
    "/api/v1/pools/{pool_id}": "pools are known to the ambito",
    "/api/v1/pools/{pool_id}/members": "pool membership is configuration",
    "/api/v1/pools/{pool_id}/members/{member_id}": "pool membership is configuration",
    "/api/v1/routing/rules/{rule_id}": "routing rules are configuration",
    "/api/v1/pools/{pool_id}/meetings": "a pool's calendar, for its members (403 to others)",
    "/api/v1/instruments/{kind}": "the versioned instruments are public data of the method",
    "/api/v1/webhooks/subscriptions/{subscription_id}": "a subscriber's own configuration",
    "/api/v1/webhooks/subscriptions/{subscription_id}/pause": "a subscriber's own configuration",
    "/api/v1/webhooks/subscriptions/{subscription_id}/resume": "a subscriber's own configuration",
    "/api/v1/webhooks/subscriptions/{subscription_id}/rotate-secret": "a subscriber's own configuration",
    "/api/v1/webhooks/deliveries/{delivery_id}": "a delivery to one's own subscription: ids and types",
    "/api/v1/webhooks/deliveries/{delivery_id}/replay": "a delivery to one's own subscription: ids and types",
    "/api/v1/integrations/senders/{sender_id}/rotate-secret": "an ASST sender's configuration",
    "/api/v1/integrations/senders/{sender_id}": "an ASST sender's configuration",
}


def all_routes_with_ids() -> list[tuple[str, str]]:
    found = []
    for route in (r for router in ROUTERS for r in router.routes):
        assert isinstance(route, APIRoute)
        if "{" in route.path:
            found.extend((method, route.path) for method in route.methods)
    return sorted(found)


def routes_with_ids() -> list[tuple[str, str]]:
    """The id routes that show a dossier's content: every id route not declared otherwise."""
    return [(m, p) for m, p in all_routes_with_ids() if p not in NOT_DOSSIER_SCOPED]


@dataclass
class Ids:
    case: Case
    entry_id: uuid.UUID
    consent_id: uuid.UUID
    participant_id: uuid.UUID
    pool_id: uuid.UUID
    routing_id: uuid.UUID
    meeting_id: uuid.UUID
    pre_assessment_id: uuid.UUID
    task_id: uuid.UUID


@pytest.fixture
async def ids(demo: Demo, session: AsyncSession) -> Ids:
    """Mario Rossi of Melzo, referred by Melzo's social worker; Solleva involved as a provider."""
    case = await open_case(demo, session, submitter=AS_MELZO)
    melzo = await demo.headers(AS_MELZO)
    entry = await demo.client.post(
        f"/api/v1/dossiers/{case.dossier_id}/entries",
        headers=melzo,
        json={"section": "registry", "text": "Nota"},
    )
    consents = await demo.client.get(f"/api/v1/dossiers/{case.dossier_id}/consents", headers=melzo)
    participant = await involve(demo, case, SOLLEVA_ORG, sections=["registry", "plan", "interventions"])
    assert participant.status_code == 201, participant.text
    # A pool of Melzo's social services only, the dossier routed to it, a meeting about it.
    coordinator = await demo.headers(COORDINATOR)
    pool = await demo.client.post(
        "/api/v1/pools",
        headers=coordinator,
        json={
            "name": "Pool di prova",
            "area": "poverta",
            "comune_ids": [str(c) for c in await comuni(demo)],
            "active_from": "2026-01-01",
        },
    )
    assert pool.status_code == 201, pool.text
    pool_id = pool.json()["id"]
    member = await demo.client.post(
        f"/api/v1/pools/{pool_id}/members",
        headers=coordinator,
        json={"organization_id": str(demo.org("Comune di Melzo")), "role": "referente_comunale"},
    )
    assert member.status_code == 201
    routed = await demo.client.post(
        f"/api/v1/dossiers/{case.dossier_id}/routings",
        headers=coordinator,
        json={"pool_id": pool_id, "reason": "Prova"},
    )
    assert routed.status_code == 201, routed.text
    meeting = await demo.client.post(
        f"/api/v1/pools/{pool_id}/meetings",
        headers=coordinator,
        json={"scheduled_at": "2099-01-15T10:00:00+01:00", "agenda": [str(case.dossier_id)]},
    )
    assert meeting.status_code == 201, meeting.text
    interview = await demo.client.post(
        f"/api/v1/dossiers/{case.dossier_id}/pre-assessments",
        headers=melzo,
        json={
            "interview_date": "2026-11-01",
            "answers": [
                {"question_id": "situazione", "viewpoint": "respondent", "text": "Pago l'affitto a fatica"}
            ],
        },
    )
    assert interview.status_code == 201, interview.text
    tasks = await demo.client.get("/api/v1/me/routing-tasks", headers=melzo)
    assert len(tasks.json()) == 1, tasks.text  # Melzo's task: answer the routing
    return Ids(
        case=case,
        entry_id=uuid.UUID(entry.json()["id"]),
        consent_id=uuid.UUID(consents.json()[0]["id"]),
        participant_id=uuid.UUID(participant.json()["id"]),
        pool_id=uuid.UUID(pool_id),
        routing_id=uuid.UUID(routed.json()["id"]),
        meeting_id=uuid.UUID(meeting.json()["id"]),
        pre_assessment_id=uuid.UUID(interview.json()["id"]),
        task_id=uuid.UUID(tasks.json()[0]["id"]),
    )


async def comuni(demo: Demo) -> list[uuid.UUID]:
    response = await demo.client.get(
        "/api/v1/organizations", params={"kind": "comune"}, headers=await demo.headers(COORDINATOR)
    )
    return [uuid.UUID(o["comune_id"]) for o in response.json()["items"]]


def request_for(method: str, template: str, ids: Ids, demo: Demo) -> dict[str, Any]:
    sample = SAMPLES.get((method, template))
    assert sample is not None, f"add a valid sample request for {method} {template} to SAMPLES"
    path = template.format(
        dossier_id=ids.case.dossier_id,
        referral_id=ids.case.referral_id,
        entry_id=ids.entry_id,
        consent_id=ids.consent_id,
        participant_id=ids.participant_id,
        routing_id=ids.routing_id,
        meeting_id=ids.meeting_id,
        pre_assessment_id=ids.pre_assessment_id,
        task_id=ids.task_id,
    )
    sample = {k: dict(v) for k, v in sample.items()}
    if "json" in sample and sample["json"].get("organization_id") == "<arche>":
        sample["json"]["organization_id"] = str(demo.org("Cooperativa Sociale Archè"))
    if "json" in sample and sample["json"].get("pool_id") == "<pool>":
        sample["json"]["pool_id"] = str(ids.pool_id)
    return {"method": method, "url": path, **sample}


async def assert_nothing_leaks(demo: Demo, headers: dict[str, str], ids: Ids) -> None:
    for method, template in routes_with_ids():
        request = request_for(method, template, ids, demo)
        request["headers"] = {**request.get("headers", {}), **headers}
        response = await demo.client.request(**request)
        assert response.status_code == 404, (method, template, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        for secret in SECRETS:
            assert secret not in response.text, (method, template, secret)


async def test_the_route_list_is_complete() -> None:
    assert set(routes_with_ids()) == set(SAMPLES), "routes and SAMPLES differ"
    declared = {path for _, path in all_routes_with_ids()}
    assert set(NOT_DOSSIER_SCOPED) <= declared, "NOT_DOSSIER_SCOPED names a route that is gone"
    assert len(all_routes_with_ids()) >= 60  # the walk found the API


async def test_a_social_worker_of_another_comune_finds_nothing(demo: Demo, ids: Ids) -> None:
    await assert_nothing_leaks(demo, await demo.headers(AS_INZAGO), ids)


async def test_a_cooperative_not_involved_finds_nothing(demo: Demo, ids: Ids) -> None:
    await assert_nothing_leaks(demo, await demo.headers(ARCHE), ids)


async def test_after_consent_is_revoked_the_provider_finds_nothing(demo: Demo, ids: Ids) -> None:
    solleva = await demo.headers(SOLLEVA)
    dossier_url = f"/api/v1/dossiers/{ids.case.dossier_id}"
    assert (await demo.client.get(dossier_url, headers=solleva)).status_code == 200
    revoked = await demo.client.post(
        f"{dossier_url}/consents/{ids.consent_id}/revoke",
        headers=await demo.headers(AS_MELZO),
        json={"reason": "La persona revoca il consenso alla condivisione"},
    )
    assert revoked.status_code == 200
    await assert_nothing_leaks(demo, solleva, ids)


async def test_a_token_without_the_scope_finds_nothing(demo: Demo, ids: Ids) -> None:
    created = await demo.client.post(
        f"/api/v1/organizations/{demo.org(SOLLEVA_ORG)}/api-tokens",
        headers=await demo.headers(COORDINATOR),
        json={"name": "solo segnalazioni", "scopes": ["referrals:write"]},
    )
    await assert_nothing_leaks(demo, {"Authorization": f"Bearer {created.json()['secret']}"}, ids)


async def test_roles_without_case_content_find_nothing(demo: Demo, ids: Ids) -> None:
    for who in (COORDINATOR, "admin@demo.snodo.it"):
        response = await demo.client.get(
            f"/api/v1/dossiers/{ids.case.dossier_id}", headers=await demo.headers(who)
        )
        assert response.status_code == 404


async def test_a_guessed_id_looks_like_an_invisible_one(demo: Demo, ids: Ids) -> None:
    headers = await demo.headers(AS_INZAGO)
    invisible = await demo.client.get(f"/api/v1/dossiers/{ids.case.dossier_id}", headers=headers)
    guessed = await demo.client.get(f"/api/v1/dossiers/{uuid.uuid4()}", headers=headers)
    strip = lambda r: {k: v for k, v in r.json().items() if k not in ("request_id", "instance")}  # noqa: E731
    assert invisible.status_code == guessed.status_code == 404
    assert strip(invisible) == strip(guessed)


class TestSections:
    async def test_a_provider_sees_only_its_sections(self, demo: Demo, ids: Ids) -> None:
        solleva = await demo.headers(SOLLEVA)
        base = f"/api/v1/dossiers/{ids.case.dossier_id}"
        dossier = await demo.client.get(base, headers=solleva)
        assert dossier.status_code == 200
        assert dossier.json()["sections"] == {"registry": "r", "plan": "r", "interventions": "rw"}
        assert dossier.json()["access"] == ["participant"]
        assert (await demo.client.get(f"{base}/registry", headers=solleva)).status_code == 200
        for url in (
            f"{base}/referrals",
            f"{base}/entries?section=health",
            f"{base}/entries?section=assessment",
        ):
            response = await demo.client.get(url, headers=solleva)
            assert response.status_code == 403, url
            assert "affitto" not in response.text
        hidden = await demo.client.get(f"{base}/entries?section=health", headers=solleva)
        assert hidden.json()["type"].endswith("/section-forbidden")
        # A section she reads but may not change says so, in Italian too: not "not visible".
        write = await demo.client.post(
            f"{base}/entries",
            headers={**solleva, "Accept-Language": "it"},
            json={"section": "registry", "text": "x"},
        )
        assert write.status_code == 403
        assert write.json()["type"].endswith("/section-read-only")
        assert write.json()["title"] == "Questa sezione della cartella non è modificabile per il tuo ruolo"
        assert "non modificarla" in write.json()["detail"]

    async def test_only_who_manages_the_case_moves_it(self, demo: Demo, ids: Ids) -> None:
        response = await demo.client.post(
            f"/api/v1/dossiers/{ids.case.dossier_id}/transitions",
            headers=await demo.headers(SOLLEVA),
            json={"to": "in_valutazione", "reason": "Proviamo"},
        )
        assert response.status_code == 403


class TestBases:
    async def test_ending_the_participation_ends_access_at_the_next_request(
        self, demo: Demo, ids: Ids
    ) -> None:
        solleva = await demo.headers(SOLLEVA)
        url = f"/api/v1/dossiers/{ids.case.dossier_id}"
        assert (await demo.client.get(url, headers=solleva)).status_code == 200
        ended = await demo.client.post(
            f"{url}/participants/{ids.participant_id}/end", headers=await demo.headers(AS_MELZO)
        )
        assert ended.status_code == 200
        assert (await demo.client.get(url, headers=solleva)).status_code == 404

    async def test_a_participation_with_an_end_date_expires(
        self, demo: Demo, session: AsyncSession, clock: FrozenClock
    ) -> None:
        case = await open_case(demo, session, submitter=AS_MELZO)
        until = (clock.now() + timedelta(days=30)).isoformat()
        invited = await involve(demo, case, "ASST Melegnano e Martesana", basis="invited", ends_at=until)
        assert invited.status_code == 201, invited.text
        url = f"/api/v1/dossiers/{case.dossier_id}"
        assert (await demo.client.get(url, headers=await demo.headers(SERT))).status_code == 200
        clock.advance(days=30, seconds=1)
        assert (await demo.client.get(url, headers=await demo.fresh_headers(SERT))).status_code == 404

    async def test_participation_without_consent_for_the_organization_gives_nothing(
        self, demo: Demo, session: AsyncSession
    ) -> None:
        case = await open_case(demo, session, submitter=AS_MELZO, consent_recipients=["comune"])
        assert (await involve(demo, case, SOLLEVA_ORG)).status_code == 201
        response = await demo.client.get(
            f"/api/v1/dossiers/{case.dossier_id}", headers=await demo.headers(SOLLEVA)
        )
        assert response.status_code == 404

    async def test_the_case_manager_sees_the_dossier_wherever_she_works(self, demo: Demo, ids: Ids) -> None:
        url = f"/api/v1/dossiers/{ids.case.dossier_id}"
        inzago = await demo.headers(AS_INZAGO)
        assert (await demo.client.get(url, headers=inzago)).status_code == 404
        assigned = await demo.client.patch(
            url,
            headers={**await demo.headers(AS_MELZO), "If-Match": '"1"'},
            json={"case_manager_user_id": str(demo.users[AS_INZAGO])},
        )
        assert assigned.status_code == 200, assigned.text
        seen = await demo.client.get(url, headers=inzago)
        assert seen.status_code == 200
        assert "case_manager" in seen.json()["access"]

    async def test_break_the_glass_opens_for_four_hours_and_is_reviewed(
        self, demo: Demo, ids: Ids, clock: FrozenClock
    ) -> None:
        inzago = await demo.headers(AS_INZAGO)
        url = f"/api/v1/dossiers/{ids.case.dossier_id}"
        short = await demo.client.post(
            "/api/v1/break-glass",
            headers=inzago,
            json={"fiscal_code": MARIO["fiscal_code"], "reason": "urgente"},
        )
        assert short.status_code == 422  # a reason worth the name
        opened = await demo.client.post(
            "/api/v1/break-glass",
            headers=inzago,
            json={
                "fiscal_code": MARIO["fiscal_code"].lower(),
                "reason": "Accesso in pronto soccorso, persona non cosciente",
            },
        )
        assert opened.status_code == 201, opened.text
        seen = await demo.client.get(url, headers=inzago)
        assert seen.status_code == 200
        assert seen.json()["access"] == ["break_glass"]
        review = await demo.client.get("/api/v1/break-glass", headers=await demo.headers(DPO))
        assert [g["id"] for g in review.json()["items"]] == [opened.json()["id"]]
        clock.advance(hours=4, seconds=1)
        assert (await demo.client.get(url, headers=await demo.fresh_headers(AS_INZAGO))).status_code == 404

    async def test_cooperatives_cannot_break_the_glass(self, demo: Demo, ids: Ids) -> None:
        response = await demo.client.post(
            "/api/v1/break-glass",
            headers=await demo.headers(ARCHE),
            json={"dossier_id": str(ids.case.dossier_id), "reason": "Vorrei vedere la cartella per favore"},
        )
        assert response.status_code == 403

    async def test_a_violence_dossier_is_invisible_to_who_has_no_violence_rights(
        self, demo: Demo, session: AsyncSession
    ) -> None:
        case = await open_case(demo, session, submitter=AS_MELZO, need_areas=["violenza", "casa"])
        assert (await involve(demo, case, "AFOL Metropolitana")).status_code == 201
        response = await demo.client.get(
            f"/api/v1/dossiers/{case.dossier_id}", headers=await demo.headers(AFOL)
        )
        assert response.status_code == 404
        melzo = await demo.client.get(
            f"/api/v1/dossiers/{case.dossier_id}", headers=await demo.headers(AS_MELZO)
        )
        assert melzo.json()["compartment"] == "violence"


class TestLists:
    async def test_the_list_holds_only_what_the_caller_may_see(self, demo: Demo, ids: Ids) -> None:
        for who, expected in ((AS_MELZO, 1), (SOLLEVA, 1), (AS_INZAGO, 0), (ARCHE, 0), (AFOL, 0)):
            response = await demo.client.get("/api/v1/dossiers", headers=await demo.headers(who))
            assert response.status_code == 200
            assert len(response.json()["items"]) == expected, who

    @pytest.mark.parametrize("who", [AS_INZAGO, ARCHE])
    async def test_outsiders_get_an_empty_list_not_an_error(self, demo: Demo, ids: Ids, who: str) -> None:
        response = await demo.client.get("/api/v1/dossiers", headers=await demo.headers(who))
        assert response.json() == {"items": [], "next_cursor": None}
        assert not re.search("Rossi|Mario", response.text)
