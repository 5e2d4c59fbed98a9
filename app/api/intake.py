"""The shared referral form and referrals."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, status
from fastapi.responses import JSONResponse

from app.api.deps import NowDep, PrincipalDep, SessionDep
from app.schemas.intake import (
    IdentificationCreate,
    PendingReferral,
    ReferralCreate,
    ReferralFormRead,
    ReferralRead,
    ReferralReceipt,
)
from app.services.intake import referrals

router = APIRouter(prefix="/api/v1", tags=["referrals"])


@router.get("/referral-form", summary="The active version of the scheda di segnalazione")
async def get_referral_form(principal: PrincipalDep, session: SessionDep) -> ReferralFormRead:
    form = await referrals.active_form(session)
    return ReferralFormRead(version=form.version, title=form.title, definition=form.definition)


@router.post(
    "/referrals",
    status_code=status.HTTP_201_CREATED,
    summary="Submit a referral (retry safely with Idempotency-Key)",
    responses={
        403: {"description": "Your role may not refer"},
        409: {"description": "possible-duplicate: confirm one of `candidates` with person_id, or new_person"},
        422: {"description": "Wrong fields, wrong form version, or Idempotency-Key reused with another body"},
    },
)
async def submit_referral(
    principal: PrincipalDep,
    session: SessionDep,
    now: NowDep,
    body: ReferralCreate,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")
    ] = None,
) -> ReferralReceipt:
    result = await referrals.submit(session, principal, body, idempotency_key=idempotency_key, now=now)
    headers = {"Location": f"/api/v1/referrals/{result.body['id']}"}
    return JSONResponse(result.body, status_code=result.status_code, headers=headers)  # type: ignore[return-value]


@router.get("/referrals/pending", summary="Referrals waiting for a social worker to say who they are about")
async def list_pending_referrals(principal: PrincipalDep, session: SessionDep) -> list[PendingReferral]:
    pending = await referrals.pending(session, principal)
    return [PendingReferral(referral=referrals.to_read(r, None), candidates=c) for r, c in pending]


@router.get("/referrals/{referral_id}", responses={404: {"description": "Not found, or not for you"}})
async def get_referral(
    principal: PrincipalDep, session: SessionDep, now: NowDep, referral_id: uuid.UUID
) -> ReferralRead:
    return await referrals.get(session, principal, referral_id, now=now)


@router.post(
    "/referrals/{referral_id}/identification",
    summary="Say which person a pending referral is about (or that it is a new person)",
)
async def identify_referral(
    principal: PrincipalDep,
    session: SessionDep,
    now: NowDep,
    referral_id: uuid.UUID,
    body: IdentificationCreate,
) -> ReferralReceipt:
    return await referrals.identify(session, principal, referral_id, body, now=now)
