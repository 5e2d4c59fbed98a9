"""States (DESIGN §3): explicit transitions with a reason, kept in the timeline; ETag and If-Match."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import OutboxEvent
from tests.intake import AS_INZAGO, AS_MELZO, Case, open_case
from tests.support import Demo


@pytest.fixture
async def case(demo: Demo, session: AsyncSession) -> Case:
    return await open_case(demo, session, submitter=AS_MELZO)


async def move(demo: Demo, case: Case, to: str, **body: object) -> dict[str, object]:
    response = await demo.client.post(
        f"/api/v1/dossiers/{case.dossier_id}/transitions",
        headers=await demo.headers(AS_MELZO),
        json={"to": to, "reason": f"Verso {to}", **body},
    )
    return {"status": response.status_code, **response.json()}


async def test_a_case_moves_forward_with_reasons_in_the_timeline(
    demo: Demo, case: Case, session: AsyncSession
) -> None:
    assert (await move(demo, case, "in_valutazione"))["status"] == 200
    moved = await move(demo, case, "in_pool")
    assert moved["status"] == 200
    assert moved["state"] == "in_pool"
    timeline = await demo.client.get(
        f"/api/v1/dossiers/{case.dossier_id}/timeline", headers=await demo.headers(AS_MELZO)
    )
    transitions = [
        (e["from_state"], e["to_state"], e["reason"])
        for e in timeline.json()["items"]
        if e["kind"] == "transition"
    ]
    assert transitions == [
        ("segnalato", "in_valutazione", "Verso in_valutazione"),
        ("in_valutazione", "in_pool", "Verso in_pool"),
    ]
    events = (
        await session.scalars(
            select(OutboxEvent.payload).where(OutboxEvent.event_type == "dossier.state_changed")
        )
    ).all()
    assert [(e["from_state"], e["to_state"]) for e in events] == [
        ("segnalato", "in_valutazione"),
        ("in_valutazione", "in_pool"),
    ]


async def test_an_illegal_transition_is_409_naming_the_allowed_ones(demo: Demo, case: Case) -> None:
    refused = await move(demo, case, "valutazione_finale")
    assert refused["status"] == 409
    assert refused["allowed"] == ["in_valutazione", "reindirizzato", "ritirato", "trasferito"]
    assert refused["state"] == "segnalato"


async def test_a_plan_is_needed_before_progetto_attivo(demo: Demo, case: Case) -> None:
    await move(demo, case, "in_valutazione")
    await move(demo, case, "in_pool")
    refused = await move(demo, case, "progetto_attivo")
    assert refused["status"] == 409
    assert refused["type"].endswith("/transition-guard")


async def test_the_fast_track_is_for_urgent_evaluation_only(demo: Demo, case: Case) -> None:
    assert (await move(demo, case, "in_valutazione", fast_track=True))["status"] == 422
    await move(demo, case, "in_valutazione")
    assert (await move(demo, case, "in_pool", fast_track=True, reason="Dimissione protetta domani"))[
        "status"
    ] == 200


async def test_a_side_exit_closes_the_dossier_and_nothing_moves_it_after(demo: Demo, case: Case) -> None:
    closed = await move(demo, case, "trasferito")
    assert closed["status"] == 200
    assert closed["closed_at"] is not None
    assert (await move(demo, case, "in_valutazione"))["status"] == 409


async def test_a_transition_needs_a_reason(demo: Demo, case: Case) -> None:
    response = await demo.client.post(
        f"/api/v1/dossiers/{case.dossier_id}/transitions",
        headers=await demo.headers(AS_MELZO),
        json={"to": "in_valutazione"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.reason"


class TestOptimisticConcurrency:
    async def test_read_gives_an_etag_and_a_stale_write_is_412(self, demo: Demo, case: Case) -> None:
        headers = await demo.headers(AS_MELZO)
        url = f"/api/v1/dossiers/{case.dossier_id}"
        etag = (await demo.client.get(url, headers=headers)).headers["etag"]
        first = await demo.client.patch(
            url, headers={**headers, "If-Match": etag}, json={"urgency": "prioritaria"}
        )
        assert first.status_code == 200
        assert first.headers["etag"] != etag
        stale = await demo.client.patch(
            url, headers={**headers, "If-Match": etag}, json={"urgency": "urgente"}
        )
        assert stale.status_code == 412
        now = await demo.client.get(url, headers=headers)
        assert now.json()["urgency"] == "prioritaria"  # nothing lost, nothing overwritten

    async def test_a_write_without_if_match_is_428(self, demo: Demo, case: Case) -> None:
        response = await demo.client.patch(
            f"/api/v1/dossiers/{case.dossier_id}",
            headers=await demo.headers(AS_MELZO),
            json={"urgency": "urgente"},
        )
        assert response.status_code == 428

    async def test_only_a_social_worker_of_the_ambito_is_a_case_manager(self, demo: Demo, case: Case) -> None:
        response = await demo.client.patch(
            f"/api/v1/dossiers/{case.dossier_id}",
            headers={**await demo.headers(AS_MELZO), "If-Match": '"1"'},
            json={"case_manager_user_id": str(demo.users["coop.solleva@demo.snodo.it"])},
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "body.case_manager_user_id"
        # A social worker of another comune of the ambito is a valid choice; the refusal wrote nothing.
        assigned = await demo.client.patch(
            f"/api/v1/dossiers/{case.dossier_id}",
            headers={**await demo.headers(AS_MELZO), "If-Match": '"1"'},
            json={"case_manager_user_id": str(demo.users[AS_INZAGO])},
        )
        assert assigned.status_code == 200, assigned.text
        assert assigned.json()["case_manager_user_id"] == str(demo.users[AS_INZAGO])


async def test_the_household_is_kept_in_the_registry(demo: Demo, case: Case) -> None:
    headers = await demo.headers(AS_MELZO)
    added = await demo.client.post(
        f"/api/v1/dossiers/{case.dossier_id}/household",
        headers=headers,
        json={
            "family_name": "Rossi",
            "given_name": "Giulia",
            "relation": "figlio",
            "birth_date": "2012-09-01",
        },
    )
    assert added.status_code == 201
    registry = await demo.client.get(f"/api/v1/dossiers/{case.dossier_id}/registry", headers=headers)
    assert registry.status_code == 200
    assert registry.json()["fiscal_code"] == "RSSMRA80A01F119B"
    assert [(m["given_name"], m["household_relation"]) for m in registry.json()["household"]] == [
        ("Giulia", "figlio")
    ]
