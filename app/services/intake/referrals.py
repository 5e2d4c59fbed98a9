"""The scheda di segnalazione: validate, find the person without duplicating, open the dossier.

What a submitter learns is limited to what it may know. To a cooperative, a referral about a
citizen already known to the social services of another comune looks exactly like a referral
about a new citizen: the same 201 body, no dossier id, no candidates. Possible duplicates it
may not see are parked (identification `pending`) until a social worker of the residence comune,
who may see the candidates, says which person it is.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import (
    AuditAction,
    Compartment,
    ConsentPurpose,
    LegalBasis,
    Section,
    Urgency,
)
from app.core.pagination import PageRequest
from app.core.principal import Principal
from app.core.problems import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    ValidationFailed,
    field_error,
    field_errors_from_pydantic,
)
from app.models import Comune, Consent, Dossier, IdempotencyRecord, Person, Referral, ReferralForm
from app.schemas.intake import (
    Candidate,
    HouseholdMemberCreate,
    IdentificationCreate,
    PersonInput,
    ReferralCreate,
    ReferralRead,
    ReferralReceipt,
)
from app.services.access import audit
from app.services.access.actions import Action, require
from app.services.access.policy import DossierAccess, DossierNotFound, load_dossier, sees_residents, visible
from app.services.dossiers.lifecycle import open_for_referral
from app.services.dossiers.service import labels_for
from app.services.events.outbox import emit
from app.services.events.timeline import add_event
from app.services.intake import persons
from app.services.intake.forms import validate_answers
from app.services.pools import routing


class PossibleDuplicate(Conflict):
    slug = "possible-duplicate"
    title_en = "This person may already be known"
    title_it = "La persona potrebbe essere già conosciuta"


class ReferralNotFound(NotFound):
    slug = "referral-not-found"
    title_en = "Referral not found"
    title_it = "Segnalazione non trovata"


@dataclass(frozen=True)
class Submitted:
    status_code: int
    body: dict[str, Any]


async def active_form(session: AsyncSession) -> ReferralForm:
    """The active referral form (scheda di segnalazione); raises if none, as the migrations seed one."""
    form = await session.scalar(select(ReferralForm).where(ReferralForm.active))
    if form is None:  # the migrations seed version 1; no active form is a broken install
        raise RuntimeError("no active referral form")
    return form


def _caller(principal: Principal) -> str:
    return f"{principal.kind}:{principal.id}"


def request_hash(body: ReferralCreate) -> bytes:
    """The SHA-256 of a referral body in canonical JSON, to recognise a repeated submission."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).digest()


async def submit(
    session: AsyncSession,
    principal: Principal,
    body: ReferralCreate,
    *,
    idempotency_key: str | None,
    now: datetime,
) -> Submitted:
    """POST /referrals, honouring Idempotency-Key (same key and body → the first answer again)."""
    require(principal, Action.refer)
    digest = request_hash(body)
    if idempotency_key is not None:
        # Serialises concurrent retries of the same key; the loser replays the winner's answer.
        await session.execute(
            select(
                func.pg_advisory_xact_lock(
                    func.hashtextextended(f"{_caller(principal)}|{idempotency_key}", 0)
                )
            )
        )
        previous = await session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.caller == _caller(principal), IdempotencyRecord.key == idempotency_key
            )
        )
        if previous is not None:
            if previous.request_hash != digest:
                raise field_error(
                    "header.Idempotency-Key", "Already used with a different body", "idempotency_key_reused"
                )
            return Submitted(previous.status_code, previous.response)
    receipt, _ = await _submit(session, principal, body, now=now)
    result = Submitted(201, receipt.model_dump(mode="json"))
    if idempotency_key is not None:
        session.add(
            IdempotencyRecord(
                caller=_caller(principal),
                key=idempotency_key,
                request_hash=digest,
                status_code=result.status_code,
                response=result.body,
            )
        )
        await session.flush()
    return result


async def submit_for_integration(
    session: AsyncSession, principal: Principal, body: ReferralCreate, *, now: datetime
) -> tuple[ReferralReceipt, Dossier | None]:
    """A referral built from a signed inbound event (no idempotency key: the event id is one)."""
    return await _submit(session, principal, body, now=now)


async def _submit(
    session: AsyncSession, principal: Principal, body: ReferralCreate, *, now: datetime
) -> tuple[ReferralReceipt, Dossier | None]:
    form = await active_form(session)
    errors: list[FieldError] = []
    if body.form_version != form.version:
        errors.append(
            FieldError(
                field="body.form_version",
                message=f"The active form is version {form.version}",
                code="form_version",
            )
        )
    else:
        errors += validate_answers(form.definition, body.answers)
        errors += _household_errors(body.answers)
    errors += persons.consistency_errors(body.person)
    comune = await persons.comune_by_istat(session, principal.ambito_id, body.person.residence_comune_istat)
    if comune is None:
        errors.append(
            FieldError(
                field="body.person.residence_comune_istat",
                message="Not a comune of this ambito",
                code="unknown",
            )
        )
    if body.corrects_referral_id is not None:
        corrected = await session.get(Referral, body.corrects_referral_id)
        if corrected is None or corrected.submitting_organization_id != principal.organization_id:
            errors.append(
                FieldError(
                    field="body.corrects_referral_id",
                    message="Not a referral of your organization",
                    code="unknown",
                )
            )
    if body.person_id is not None and body.new_person:
        errors.append(
            FieldError(
                field="body.new_person", message="Give person_id or new_person, not both", code="conflict"
            )
        )
    if errors:
        raise ValidationFailed(errors=errors)
    assert comune is not None

    person, candidates = await _identify(session, principal, body, now=now)
    answers = body.answers
    need_areas = sorted(set(answers.get("need_areas", [])))
    urgency = Urgency(answers["urgency"])
    compartment = (
        Compartment.violence
        if "violenza" in need_areas
        else Compartment.judicial
        if answers.get("judicial_order") is True
        else Compartment.ordinary
    )
    referral = Referral(
        ambito_id=principal.ambito_id,
        form_id=form.id,
        form_version=form.version,
        submitted_by_kind=principal.kind,
        submitted_by_id=principal.id,
        submitting_organization_id=principal.organization_id,
        submitted_person=body.person.model_dump(mode="json"),
        answers=answers,
        need_areas=need_areas,
        labels=sorted(labels_for(need_areas)),
        urgency=urgency,
        compartment=compartment,
        residence_comune_id=comune.id,
        corrects_referral_id=body.corrects_referral_id,
        identification="pending" if person is None else "resolved",
        candidate_person_ids=[c.id for c in candidates] if person is None else [],
        created_at=now,
    )
    dossier: Dossier | None = None
    if person is None:
        session.add(referral)
        await session.flush()
    else:
        dossier = await _attach(session, principal, referral, person, now=now)
    await audit.record(
        session,
        principal,
        action=AuditAction.create,
        resource_type="referral",
        resource_id=referral.id,
        dossier_id=dossier.id if dossier else None,
        now=now,
    )
    receipt = ReferralReceipt(
        id=referral.id,
        form_version=referral.form_version,
        created_at=referral.created_at,
        dossier_id=await _visible_dossier_id(session, principal, dossier, now=now),
        corrects_referral_id=referral.corrects_referral_id,
    )
    return receipt, dossier


def _household_errors(answers: dict[str, Any]) -> list[FieldError]:
    """Each household member must also make a valid person (names, dates, relation)."""
    household = answers.get("household")
    if not isinstance(household, list):
        return []
    errors: list[FieldError] = []
    for index, member in enumerate(household):
        if not isinstance(member, dict):
            continue
        try:
            HouseholdMemberCreate.model_validate(member)
        except ValidationError as failure:
            errors += field_errors_from_pydantic(
                failure.errors(), prefix=("body", "answers", "household", index)
            )
    return errors


async def _identify(
    session: AsyncSession, principal: Principal, body: ReferralCreate, *, now: datetime
) -> tuple[Person | None, Sequence[Person]]:
    """Which person the referral is about: (person, []) or, when it must wait, (None, candidates)."""
    data = body.person
    if body.person_id is not None:
        person = await _visible_person(session, principal, body.person_id, now=now)
        if person is None:
            raise field_error("body.person_id", "Not a person you can refer to by id", "unknown")
        return person, []
    if data.fiscal_code is not None:
        same = await persons.by_fiscal_code(session, principal.ambito_id, data.fiscal_code)
        if same is not None:
            return same, []  # certain: same codice fiscale, silently the same person
    candidates = await persons.similar(
        session,
        principal.ambito_id,
        family_name=data.family_name,
        given_name=data.given_name,
        birth_date=data.birth_date,
    )
    # A candidate with another valid codice fiscale is someone else.
    if data.fiscal_code is not None:
        candidates = [c for c in candidates if c.fiscal_code is None]
    if not candidates:
        return await _new_person(session, principal, data), []
    visible_ids = await _visible_person_ids(session, principal, [c.id for c in candidates], now=now)
    shown = [c for c in candidates if c.id in visible_ids]
    if shown and not body.new_person:
        comuni = await _comune_names(session, [c.residence_comune_id for c in shown])
        raise PossibleDuplicate(
            "A person with a similar name and the same birth date is known: confirm with person_id, "
            "or send new_person: true.",
            extra={"candidates": [_candidate(c, comuni).model_dump(mode="json") for c in shown]},
        )
    if len(shown) < len(candidates):
        return None, candidates  # some the submitter may not see: a social worker will decide
    return await _new_person(session, principal, data), []


async def _new_person(session: AsyncSession, principal: Principal, data: PersonInput) -> Person:
    comune = await persons.comune_by_istat(session, principal.ambito_id, data.residence_comune_istat)
    assert comune is not None
    try:
        async with session.begin_nested():
            return await persons.create(session, principal.ambito_id, data, comune)
    except IntegrityError:
        # A concurrent referral created the same codice fiscale a moment ago: it is that person.
        assert data.fiscal_code is not None
        same = await persons.by_fiscal_code(session, principal.ambito_id, data.fiscal_code)
        if same is None:
            raise
        return same


async def _attach(
    session: AsyncSession,
    principal: Principal,
    referral: Referral,
    person: Person,
    *,
    now: datetime,
) -> Dossier:
    """Link the referral to the person's dossier (opening or reopening it) and record what follows."""
    opened = await open_for_referral(
        session,
        principal=principal,
        person=person,
        need_areas=referral.need_areas,
        urgency=Urgency(referral.urgency),
        compartment=Compartment(referral.compartment),
        now=now,
    )
    dossier = opened.dossier
    referral.person_id = person.id
    referral.dossier_id = dossier.id
    if referral.identification == "pending":
        referral.identification = "resolved"
    if referral not in session:
        session.add(referral)
    await session.flush()
    answers = referral.answers
    household = answers.get("household") or []
    if household and person.household_id is None:
        for member in household:
            await persons.add_household_member(session, person, HouseholdMemberCreate.model_validate(member))
    if answers.get("consent_given") is True:
        session.add(
            Consent(
                ambito_id=referral.ambito_id,
                person_id=person.id,
                organization_kinds=sorted(set(answers.get("consent_recipients") or [])),
                organization_ids=[],
                purposes=[ConsentPurpose.presa_in_carico.value],
                labels=sorted(set(answers.get("consent_special_categories") or [])),
                legal_basis=LegalBasis.consent,
                given_on=date.fromisoformat(answers["consent_date"]),
                note=f"Raccolto con la segnalazione {referral.id}",
                recorded_by_kind=referral.submitted_by_kind,
                recorded_by_id=referral.submitted_by_id,
                recorded_by_organization_id=referral.submitting_organization_id,
                created_at=now,
            )
        )
    await add_event(
        session,
        dossier,
        "referral_received",
        principal=principal,
        now=now,
        labels=referral.labels,
        data={"referral_id": str(referral.id), "created": opened.created, "reopened": opened.reopened},
    )
    await emit(
        session, dossier, "referral.received", now=now, referral_id=str(referral.id), state=dossier.state
    )
    await session.flush()
    await routing.route_referral(session, principal, dossier, referral, now=now)
    return dossier


# ---------------------------------------------------------------------------------------------
# Visibility helpers


async def _visible_person_ids(
    session: AsyncSession, principal: Principal, person_ids: Sequence[uuid.UUID], *, now: datetime
) -> set[uuid.UUID]:
    rows = await session.scalars(
        select(Dossier.person_id).where(Dossier.person_id.in_(person_ids), visible(principal, now))
    )
    return set(rows.all())


async def _visible_person(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID, *, now: datetime
) -> Person | None:
    if not await _visible_person_ids(session, principal, [person_id], now=now):
        return None
    return await session.get(Person, person_id)


async def _visible_dossier_id(
    session: AsyncSession, principal: Principal, dossier: Dossier | None, *, now: datetime
) -> uuid.UUID | None:
    if dossier is None:
        return None
    found = await session.scalar(select(Dossier.id).where(Dossier.id == dossier.id, visible(principal, now)))
    return found


async def _comune_names(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    return dict((await session.execute(select(Comune.id, Comune.name).where(Comune.id.in_(ids)))).all())


def _candidate(person: Person, comuni: dict[uuid.UUID, str]) -> Candidate:
    return Candidate(
        person_id=person.id,
        family_name=person.family_name,
        given_name=person.given_name,
        birth_date=person.birth_date,
        residence_comune=comuni.get(person.residence_comune_id, ""),
        fiscal_code_hint=person.fiscal_code[-4:] if person.fiscal_code else None,
    )


# ---------------------------------------------------------------------------------------------
# Reading referrals


def to_read(referral: Referral, access: DossierAccess | None) -> ReferralRead:
    """A referral as its reader sees it: need areas filtered by the dossier access, when given."""
    need_areas = access.visible_need_areas(referral.need_areas) if access else referral.need_areas
    return ReferralRead(
        id=referral.id,
        form_version=referral.form_version,
        created_at=referral.created_at,
        submitting_organization_id=referral.submitting_organization_id,
        person=referral.submitted_person,
        answers=referral.answers,
        need_areas=need_areas,
        urgency=Urgency(referral.urgency),
        corrects_referral_id=referral.corrects_referral_id,
        dossier_id=access.dossier.id if access else None,
    )


async def get(
    session: AsyncSession, principal: Principal, referral_id: uuid.UUID, *, now: datetime
) -> ReferralRead:
    """A referral as its submitter sent it, or as the dossier's people may see it."""
    referral = await session.get(Referral, referral_id)
    if referral is None or referral.ambito_id != principal.ambito_id:
        raise ReferralNotFound()
    access: DossierAccess | None = None
    if referral.dossier_id is not None:
        try:
            access = await load_dossier(session, principal, referral.dossier_id, now=now)
        except DossierNotFound:
            access = None
    own = referral.submitting_organization_id == principal.organization_id
    readable = (
        access is not None
        and access.can_read(Section.referral)
        and all(access.label_visible(label, referral.submitting_organization_id) for label in referral.labels)
    )
    if not own and not readable:
        if access is not None and not access.can_read(Section.referral):
            access.require(Section.referral)  # visible dossier, forbidden section: 403
        raise ReferralNotFound()
    await audit.record(
        session,
        principal,
        action=AuditAction.read,
        resource_type="referral",
        resource_id=referral.id,
        dossier_id=referral.dossier_id if readable else None,
        section=Section.referral,
        now=now,
    )
    return to_read(referral, access if readable else None)


async def list_for_dossier(
    session: AsyncSession, principal: Principal, dossier_id: uuid.UUID, page: PageRequest, *, now: datetime
) -> tuple[list[ReferralRead], int, uuid.UUID | None]:
    """One page of a dossier's referrals the principal may see, with the total count."""
    access = await load_dossier(session, principal, dossier_id, now=now)
    access.require(Section.referral)
    base = select(Referral).where(
        Referral.dossier_id == dossier_id,
        access.labels_subset_condition(Referral.labels, Referral.submitting_organization_id),
    )
    total = await session.scalar(select(func.count()).select_from(base.subquery())) or 0
    if page.after is not None:
        base = base.where(Referral.id > page.after)
    rows = (await session.scalars(base.order_by(Referral.id).limit(page.limit + 1))).all()
    await audit.record(
        session,
        principal,
        action=AuditAction.list,
        resource_type="referral",
        dossier_id=dossier_id,
        section=Section.referral,
        now=now,
    )
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return [to_read(r, access) for r in rows], total, rows[-1].id if more else None


# ---------------------------------------------------------------------------------------------
# Pending identification: the residence comune's social workers decide


def _may_identify(principal: Principal) -> bool:
    return sees_residents(principal)  # the residence basis: a comune's social worker


async def pending(session: AsyncSession, principal: Principal) -> list[tuple[Referral, list[Candidate]]]:
    """Referrals awaiting identification in the principal's comune, with candidate persons."""
    if not _may_identify(principal):
        raise Forbidden("Social workers of the residence comune confirm who a referral is about.")
    referrals = (
        await session.scalars(
            select(Referral)
            .where(
                Referral.ambito_id == principal.ambito_id,
                Referral.identification == "pending",
                Referral.residence_comune_id == principal.organization_comune_id,
            )
            .order_by(Referral.id)
            .limit(200)
        )
    ).all()
    result = []
    for referral in referrals:
        people = (
            await session.scalars(select(Person).where(Person.id.in_(referral.candidate_person_ids)))
        ).all()
        comuni = await _comune_names(session, [p.residence_comune_id for p in people])
        result.append((referral, [_candidate(p, comuni) for p in people]))
    return result


async def identify(
    session: AsyncSession,
    principal: Principal,
    referral_id: uuid.UUID,
    data: IdentificationCreate,
    *,
    now: datetime,
) -> ReferralReceipt:
    """Confirm who a pending referral is about (existing or new person) and file it in a dossier."""
    referral = await session.scalar(select(Referral).where(Referral.id == referral_id).with_for_update())
    if (
        not _may_identify(principal)
        or referral is None
        or referral.ambito_id != principal.ambito_id
        or referral.identification != "pending"
        or referral.residence_comune_id != principal.organization_comune_id
    ):
        raise ReferralNotFound()
    if (data.person_id is None) == (not data.new_person):
        raise field_error(
            "body.person_id", "Give person_id (one of the candidates) or new_person: true", "missing"
        )
    if data.person_id is not None:
        if data.person_id not in referral.candidate_person_ids:
            raise field_error("body.person_id", "Not one of the candidates", "unknown")
        person = await session.get_one(Person, data.person_id)
    else:
        person = await _new_person(session, principal, PersonInput.model_validate(referral.submitted_person))
    # Set before the link is written: once resolved, the referral can no longer change.
    referral.identified_at = now
    referral.identified_by_user_id = principal.id
    dossier = await _attach(session, principal, referral, person, now=now)
    await audit.record(
        session,
        principal,
        action=AuditAction.update,
        resource_type="referral",
        resource_id=referral.id,
        dossier_id=dossier.id,
        now=now,
    )
    return ReferralReceipt(
        id=referral.id,
        form_version=referral.form_version,
        created_at=referral.created_at,
        dossier_id=await _visible_dossier_id(session, principal, dossier, now=now),
        corrects_referral_id=referral.corrects_referral_id,
    )
