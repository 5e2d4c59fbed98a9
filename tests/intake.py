"""Builders for referrals and cases used by the intake tests."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Dossier, Person
from tests.support import Demo

AS_MELZO = "as.melzo@demo.snodo.it"
AS_INZAGO = "as.inzago@demo.snodo.it"
SOLLEVA = "coop.solleva@demo.snodo.it"
ARCHE = "coop.arche@demo.snodo.it"
SERT = "sert@demo.snodo.it"
AFOL = "afol@demo.snodo.it"
COORDINATOR = "coordinatore@demo.snodo.it"
DPO = "dpo@demo.snodo.it"

MELZO_ISTAT = "015142"
INZAGO_ISTAT = "015114"

# Mario Rossi, born in Melzo on 1 January 1980 (a valid codice fiscale for those data).
MARIO = {
    "fiscal_code": "RSSMRA80A01F119B",
    "family_name": "Rossi",
    "given_name": "Mario",
    "sex": "M",
    "birth_date": "1980-01-01",
    "residence_comune_istat": MELZO_ISTAT,
}
# Niccolò Cantù, born 12 March 1975, no codice fiscale known to the referrer.
NICCOLO = {
    "no_fiscal_code_reason": "not_known",
    "family_name": "Cantù",
    "given_name": "Niccolò",
    "birth_date": "1975-03-12",
    "residence_comune_istat": MELZO_ISTAT,
}

ANSWERS: dict[str, Any] = {
    "referrer_name": "Sara Villa",
    "referrer_role": "Educatrice, Cooperativa Solleva",
    "referrer_phone": "02 9551234",
    "need_areas": ["lavoro", "poverta"],
    "request": "Chiede un aiuto per trovare lavoro e pagare l'affitto.",
    "observations": "Da sei mesi senza reddito; il figlio ha lasciato la scuola.",
    "urgency": "ordinaria",
    "consent_given": True,
    "consent_date": "2026-11-02",
    "consent_recipients": ["comune", "cooperativa", "afol", "asst"],
}


def referral(person: dict[str, Any] | None = None, **answers: Any) -> dict[str, Any]:
    body_answers = copy.deepcopy(ANSWERS)
    body_answers.update(answers)
    for key in [k for k, v in body_answers.items() if v is None]:
        del body_answers[key]
    return {"form_version": 1, "person": dict(person or MARIO), "answers": body_answers}


async def submit(demo: Demo, who: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await demo.client.post(
        "/api/v1/referrals", json=body, headers={**await demo.headers(who), **headers}
    )


async def dossier_of(
    session: AsyncSession, fiscal_code: str | None = None, family_name: str | None = None
) -> Dossier:
    statement = select(Dossier).join(Person, Person.id == Dossier.person_id)
    if fiscal_code:
        statement = statement.where(Person.fiscal_code == fiscal_code)
    if family_name:
        statement = statement.where(Person.family_name == family_name)
    dossier = await session.scalar(statement)
    assert dossier is not None
    return dossier


@dataclass
class Case:
    dossier_id: uuid.UUID
    person_id: uuid.UUID
    referral_id: uuid.UUID


async def open_case(demo: Demo, session: AsyncSession, *, submitter: str = SOLLEVA, **answers: Any) -> Case:
    """Mario Rossi of Melzo, referred by Solleva with consent to share with comune, coops, AFOL, ASST."""
    response = await submit(demo, submitter, referral(**answers))
    assert response.status_code == 201, response.text
    dossier = await dossier_of(session, MARIO["fiscal_code"])
    return Case(
        dossier_id=dossier.id, person_id=dossier.person_id, referral_id=uuid.UUID(response.json()["id"])
    )


async def involve(
    demo: Demo, case: Case, organization: str, basis: str = "provider", **body: Any
) -> httpx.Response:
    return await demo.client.post(
        f"/api/v1/dossiers/{case.dossier_id}/participants",
        headers=await demo.headers(AS_MELZO),
        json={"organization_id": str(demo.org(organization)), "basis": basis, **body},
    )
