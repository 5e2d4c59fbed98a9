"""Inputs that once made the API answer 500 (found by fuzzing): each is now a clear 4xx."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AuthEvent, Person
from tests.intake import AS_MELZO, COORDINATOR, MARIO, NICCOLO, Case, open_case, referral, submit
from tests.support import Demo


def unsigned(claims: dict[str, Any]) -> str:
    encode = lambda part: base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{encode({'alg': 'HS256'})}.{encode(claims)}."


@pytest.fixture
async def case(demo: Demo, session: AsyncSession) -> Case:
    return await open_case(demo, session, submitter=AS_MELZO)


@pytest.mark.parametrize("issuer", ["\u0000", "\ud800", "x" * 5000])
async def test_a_token_with_an_unstorable_issuer_is_refused_and_recorded(
    demo: Demo, session: AsyncSession, issuer: str
) -> None:
    token = unsigned({"iss": issuer})
    response = await demo.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    recorded = await session.scalar(
        select(func.count()).select_from(AuthEvent).where(AuthEvent.kind == "oidc_rejected")
    )
    assert recorded == 1


async def test_a_padded_or_trailing_garbage_token_is_refused(demo: Demo) -> None:
    token = (await demo.token(AS_MELZO)).encode()
    for variant in (token + b"=", token + b"\xff", token + b".x"):
        response = await demo.client.get("/api/v1/me", headers={"Authorization": b"Bearer " + variant})
        assert response.status_code == 401


async def test_a_nul_in_the_login_is_422(demo: Demo) -> None:
    response = await demo.client.post("/api/v1/auth/token", data={"username": "\x00", "password": "x"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.username"


async def test_a_lone_surrogate_in_an_answer_is_422(demo: Demo) -> None:
    body = json.dumps(referral(request="\ud800")).replace("\\ud800", "\\ud800")
    response = await demo.client.post(
        "/api/v1/referrals",
        content=body.encode(),
        headers={**await demo.headers(AS_MELZO), "content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0] == {
        "field": "body.answers.request",
        "message": "Not valid Unicode text",
        "code": "string_unicode",
    }


@pytest.mark.parametrize(
    ("member", "field"),
    [
        (
            {"family_name": " ", "given_name": "Luca", "relation": "figlio"},
            "body.answers.household.0.family_name",
        ),
        (
            {"family_name": "Rossi", "given_name": "Luca", "relation": "figlio", "birth_date": "1850-01-01"},
            "body.answers.household.0.birth_date",
        ),
        (
            {"family_name": "Rossi", "given_name": "Luca", "relation": "figlio", "birth_date": "2020-W01-1"},
            "body.answers.household.0.birth_date",
        ),
        (
            {"family_name": "Rossi", "given_name": "Luca", "relation": "intestatario"},
            "body.answers.household.0.relation",
        ),
    ],
)
async def test_household_members_are_checked_when_referred(
    demo: Demo, session: AsyncSession, member: dict[str, Any], field: str
) -> None:
    response = await submit(demo, AS_MELZO, referral(household=[member]))
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert await session.scalar(select(func.count()).select_from(Person)) == 0


async def test_names_that_fold_longer_are_stored(demo: Demo, case: Case) -> None:
    response = await demo.client.post(
        f"/api/v1/dossiers/{case.dossier_id}/household",
        headers=await demo.headers(AS_MELZO),
        json={"family_name": "ß" * 100, "given_name": "Æ" * 100, "relation": "figlio"},
    )
    assert response.status_code == 201


async def test_a_household_member_whose_code_is_known_is_409(demo: Demo, case: Case) -> None:
    response = await demo.client.post(
        f"/api/v1/dossiers/{case.dossier_id}/household",
        headers=await demo.headers(AS_MELZO),
        json={
            "family_name": "Rossi",
            "given_name": "Mario",
            "relation": "figlio",
            "fiscal_code": MARIO["fiscal_code"],
        },
    )
    assert response.status_code == 409
    assert response.json()["errors"][0]["field"] == "body.fiscal_code"


@pytest.mark.parametrize(
    "ends_at", ["2030-01-01T00:00:00", "2030-01-01", "9999-12-31T23:59:59-14:00", "2030-01-01T00:00:00+99:00"]
)
async def test_participation_end_needs_a_reasonable_moment_with_offset(
    demo: Demo, case: Case, ends_at: str
) -> None:
    response = await demo.client.post(
        f"/api/v1/dossiers/{case.dossier_id}/participants",
        headers=await demo.headers(AS_MELZO),
        json={
            "organization_id": str(demo.org("Cooperativa Sociale Solleva")),
            "basis": "provider",
            "ends_at": ends_at,
        },
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.ends_at"


async def test_a_revocation_reason_is_bounded_by_what_is_stored(demo: Demo, case: Case) -> None:
    url = f"/api/v1/dossiers/{case.dossier_id}/consents"
    consent = (await demo.client.get(url, headers=await demo.headers(AS_MELZO))).json()[0]
    response = await demo.client.post(
        f"{url}/{consent['id']}/revoke", headers=await demo.headers(AS_MELZO), json={"reason": "x" * 1001}
    )
    assert response.status_code == 422


async def test_an_email_that_grows_when_lower_cased_is_422(demo: Demo) -> None:
    response = await demo.client.post(
        f"/api/v1/organizations/{demo.org('Cooperativa Sociale Solleva')}/users",
        headers=await demo.headers(COORDINATOR),
        json={"email": "a@" + "İ" * 240 + ".it", "full_name": "X", "roles": ["coop_operator"]},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.email"


@pytest.mark.parametrize(
    ("person", "field"),
    [
        ({**NICCOLO, "birth_date": 0}, "body.person.birth_date"),
        ({**NICCOLO, "birth_date": "1975-02-30"}, "body.person.birth_date"),
    ],
)
async def test_dates_are_iso_days(demo: Demo, person: dict[str, Any], field: str) -> None:
    response = await submit(demo, AS_MELZO, referral(person))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


async def test_a_boolean_is_not_a_form_version(demo: Demo) -> None:
    response = await submit(demo, AS_MELZO, {**referral(), "form_version": True})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.form_version"


@pytest.mark.parametrize(
    "content", [b"\xff\xfe{}", b"[" * 2000 + b"]" * 2000, b'{"form_version": ' + b"9" * 5000 + b"}"]
)
async def test_bodies_that_cannot_be_parsed_are_malformed_body(demo: Demo, content: bytes) -> None:
    response = await demo.client.post(
        "/api/v1/referrals",
        content=content,
        headers={**await demo.headers(AS_MELZO), "content-type": "application/json"},
    )
    assert response.status_code in (400, 422)
    if response.status_code == 400:
        assert response.json()["type"].endswith("/malformed-body")


async def test_if_match_star_matches_the_current_version(demo: Demo, case: Case) -> None:
    response = await demo.client.patch(
        f"/api/v1/dossiers/{case.dossier_id}",
        headers={**await demo.headers(AS_MELZO), "If-Match": "*"},
        json={"urgency": "prioritaria"},
    )
    assert response.status_code == 200


async def test_the_last_platform_admin_stays(demo: Demo) -> None:
    admin = demo.users["admin@demo.snodo.it"]
    headers = await demo.headers("admin@demo.snodo.it")
    demoted = await demo.client.patch(f"/api/v1/users/{admin}", headers=headers, json={"roles": ["dpo"]})
    assert demoted.status_code == 409
    deactivated = await demo.client.patch(f"/api/v1/users/{admin}", headers=headers, json={"active": False})
    assert deactivated.status_code == 409
