"""Special categories (HL7 ETH, HIV, PSY, SDV) are hidden invisibly: without the right nothing changes,
not the body, the totals, the page boundaries nor the status codes (oscuramento dell'oscuramento)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.intake import AS_MELZO, SERT, Case, involve, open_case, referral, submit
from tests.support import Demo


def comparable(response: httpx.Response) -> tuple[int, object]:
    body = response.json()
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("request_id",)}
    return response.status_code, body


async def note(demo: Demo, case: Case, section: str, text: str, label: str | None = None) -> httpx.Response:
    return await demo.client.post(
        f"/api/v1/dossiers/{case.dossier_id}/entries",
        headers=await demo.headers(AS_MELZO),
        json={"section": section, "text": text, **({"label": label} if label else {})},
    )


@pytest.fixture
async def case(demo: Demo, session: AsyncSession) -> Case:
    """Mario's dossier; the SerT invited (consent covers the ASST, but names no special category);
    three ordinary notes in the violence section."""
    case = await open_case(demo, session, submitter=AS_MELZO)
    assert (await involve(demo, case, "ASST Melegnano e Martesana", basis="invited")).status_code == 201
    for i in range(3):
        assert (
            await note(demo, case, "violence", f"Colloquio {i}: nessun episodio riferito")
        ).status_code == 201
    return case


async def snapshot(demo: Demo, case: Case, who: str) -> list[tuple[int, object]]:
    headers = await demo.headers(who)
    base = f"/api/v1/dossiers/{case.dossier_id}"
    first = await demo.client.get(
        f"{base}/entries", params={"section": "violence", "limit": 2}, headers=headers
    )
    cursor = first.json().get("next_cursor")
    second = await demo.client.get(
        f"{base}/entries", params={"section": "violence", "limit": 2, "cursor": cursor}, headers=headers
    )
    return [
        comparable(first),
        comparable(second),
        comparable(await demo.client.get(base, headers=headers)),
        comparable(await demo.client.get(f"{base}/timeline", headers=headers)),
        comparable(await demo.client.get(f"{base}/entries", params={"section": "health"}, headers=headers)),
    ]


async def test_an_sdv_entry_changes_nothing_for_who_may_not_see_it(demo: Demo, case: Case) -> None:
    before = await snapshot(demo, case, SERT)
    added = await note(demo, case, "violence", "Riferisce maltrattamenti dal compagno", label="SDV")
    assert added.status_code == 201
    after = await snapshot(demo, case, SERT)
    assert after == before
    assert before[0][1]["total"] == 3  # type: ignore[index]
    hidden = await demo.client.get(
        f"/api/v1/dossiers/{case.dossier_id}/entries/{added.json()['id']}", headers=await demo.headers(SERT)
    )
    guessed = await demo.client.get(
        f"/api/v1/dossiers/{case.dossier_id}/entries/{uuid.uuid4()}", headers=await demo.headers(SERT)
    )
    assert hidden.status_code == guessed.status_code == 404
    assert {k: v for k, v in hidden.json().items() if k not in ("request_id", "instance")} == {
        k: v for k, v in guessed.json().items() if k not in ("request_id", "instance")
    }


async def test_who_wrote_it_sees_it(demo: Demo, case: Case) -> None:
    await note(demo, case, "violence", "Riferisce maltrattamenti dal compagno", label="SDV")
    listed = await demo.client.get(
        f"/api/v1/dossiers/{case.dossier_id}/entries",
        params={"section": "violence"},
        headers=await demo.headers(AS_MELZO),
    )
    assert listed.json()["total"] == 4
    assert listed.json()["items"][-1]["label"] == "SDV"


async def test_consent_naming_the_category_opens_it_and_revocation_closes_it(demo: Demo, case: Case) -> None:
    added = await note(demo, case, "violence", "Riferisce maltrattamenti dal compagno", label="SDV")
    url = f"/api/v1/dossiers/{case.dossier_id}/entries/{added.json()['id']}"
    assert (await demo.client.get(url, headers=await demo.headers(SERT))).status_code == 404
    consent = await demo.client.post(
        f"/api/v1/dossiers/{case.dossier_id}/consents",
        headers=await demo.headers(AS_MELZO),
        json={
            "organization_kinds": ["asst"],
            "purposes": ["presa_in_carico"],
            "labels": ["SDV"],
            "legal_basis": "consent",
            "given_on": "2026-11-10",
        },
    )
    assert consent.status_code == 201
    assert (await demo.client.get(url, headers=await demo.headers(SERT))).status_code == 200
    await demo.client.post(
        f"/api/v1/dossiers/{case.dossier_id}/consents/{consent.json()['id']}/revoke",
        headers=await demo.headers(AS_MELZO),
        json={"reason": "Revoca del consenso"},
    )
    assert (await demo.client.get(url, headers=await demo.headers(SERT))).status_code == 404


async def test_a_label_must_match_its_section(demo: Demo, case: Case) -> None:
    response = await note(demo, case, "violence", "Assume metadone", label="ETH")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.label"


async def test_need_areas_that_are_special_categories_are_hidden_too(
    demo: Demo, session: AsyncSession
) -> None:
    """A SerT referral about an addiction: the pool's AFOL member does not learn of the addiction."""
    assert (await submit(demo, SERT, referral(need_areas=["dipendenze", "lavoro"]))).status_code == 201
    case = await open_case(demo, session, submitter=AS_MELZO)  # same person: Mario
    assert (await involve(demo, case, "AFOL Metropolitana", basis="pool")).status_code == 201
    afol = await demo.client.get(
        f"/api/v1/dossiers/{case.dossier_id}", headers=await demo.headers("afol@demo.snodo.it")
    )
    assert afol.status_code == 200
    assert afol.json()["need_areas"] == ["lavoro", "poverta"]
    timeline = await demo.client.get(
        f"/api/v1/dossiers/{case.dossier_id}/timeline", headers=await demo.headers("afol@demo.snodo.it")
    )
    # the SerT's referral (labelled ETH) is not in AFOL's timeline; Melzo's is
    received = [e for e in timeline.json()["items"] if e["kind"] == "referral_received"]
    assert len(received) == 1
    assert timeline.json()["total"] == len(timeline.json()["items"])
    melzo = await demo.client.get(f"/api/v1/dossiers/{case.dossier_id}", headers=await demo.headers(AS_MELZO))
    assert "dipendenze" not in melzo.json()["need_areas"]  # no consent names ETH for the comune either
    sert = await demo.client.get(
        f"/api/v1/dossiers/{case.dossier_id}/referrals", headers=await demo.headers(SERT)
    )
    assert sert.status_code == 404  # the SerT is not a participant: the dossier does not exist for it
