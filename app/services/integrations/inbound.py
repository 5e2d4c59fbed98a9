"""Signed events from ASST information systems: a protected hospital discharge becomes a referral
routed to home care; a SerT/CPS taking charge goes on the dossier's health section.

Each sender has its own secret; requests are signed like our outbound webhooks (Standard
Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`), with a timestamp tolerance.
Every authenticated event is stored, applied or rejected; a repeat of the same id and body gets
the first answer again; the same id with another body is refused. An event is applied whole or
not at all (a savepoint).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import set_tenant
from app.core.enums import (
    AuditAction,
    ConfidentialityLabel,
    InboundStatus,
    NeedArea,
    OrganizationKind,
    PoolArea,
    Section,
)
from app.core.principal import Principal
from app.core.problems import (
    PROBLEM_TYPE_BASE,
    Conflict,
    FieldError,
    MalformedBody,
    NotAuthenticated,
    NotFound,
    ProblemError,
    ValidationFailed,
    field_error,
    field_errors_from_pydantic,
)
from app.core.security import Security
from app.models import Dossier, DossierEntry, InboundEvent, InboundSender, Organization, Person
from app.schemas.common import Day, InputModel
from app.schemas.intake import PersonInput, ReferralCreate
from app.services.access import audit
from app.services.access.actions import Action, require
from app.services.events.timeline import add_event
from app.services.intake import referrals
from app.services.integrations import webhooks
from app.services.pools import routing

SENDER_HEADER = "snodo-sender"
EVENT_TYPES = ("dimissione_protetta.requested", "presa_in_carico.started", "presa_in_carico.ended")

SERVICE_LABEL: dict[str, ConfidentialityLabel | None] = {
    "sert": ConfidentialityLabel.ETH,
    "noa": ConfidentialityLabel.ETH,
    "cps": ConfidentialityLabel.PSY,
    "uonpia": None,
    "consultorio": None,
    "adi": None,
}


class SignatureRequired(NotAuthenticated):
    """401 for an unsigned or wrongly signed event (nothing of it is stored)."""

    keeps_writes = False

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        challenge = 'Signature realm="snodo", headers="webhook-id webhook-timestamp webhook-signature"'
        self.headers = {"WWW-Authenticate": challenge}


class EventTooLarge(ProblemError):
    status = 413


class EventIdReused(Conflict):
    slug = "event-id-reused"
    title_en = "This event id was already used with another body"
    title_it = "Questo id evento è già stato usato con un altro contenuto"


class UnknownEventType(ValidationFailed):
    slug = "unknown-event-type"
    title_en = "Unknown event type"
    title_it = "Tipo di evento sconosciuto"


class SenderNotFound(NotFound):
    slug = "sender-not-found"
    title_en = "Sender not found"
    title_it = "Mittente non trovato"


# ---------------------------------------------------------------------------------------------
# Event payloads


class Contact(InputModel):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")
    phone: str = Field(pattern=r"^\+?[0-9 ()./-]{5,25}$")
    email: str | None = Field(
        default=None, max_length=254, pattern=r"^[^@\s\x00]{1,64}@[^@\s\x00]+\.[^@\s\x00]+$"
    )


class Consent(InputModel):
    given: bool
    date: Day | None = None
    recipients: list[OrganizationKind] = Field(default_factory=list, max_length=len(OrganizationKind))


class DischargeRequested(InputModel):
    person: PersonInput
    hospital: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")
    ward: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00]*$")
    discharge_date: Day
    needs: str = Field(min_length=1, max_length=4000, pattern=r"^[^\x00]*$")
    need_areas: list[NeedArea] = Field(default_factory=lambda: [NeedArea.anziani], min_length=1, max_length=9)
    contact: Contact
    consent: Consent = Field(default_factory=lambda: Consent(given=False))


class TakingCharge(InputModel):
    fiscal_code: str = Field(min_length=16, max_length=16, pattern=r"^[A-Za-z0-9]{16}$")
    service: Literal["sert", "noa", "cps", "uonpia", "consultorio", "adi"]
    date: Day
    note: str | None = Field(default=None, max_length=2000, pattern=r"^[^\x00]*$")


class Envelope(BaseModel):
    type: str = Field(max_length=80)
    data: dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Senders


@dataclass(frozen=True)
class CreatedSender:
    sender: InboundSender
    secret: str


async def create_sender(
    session: AsyncSession, principal: Principal, security: Security, *, organization_id: uuid.UUID, name: str
) -> CreatedSender:
    """Register an organization as an inbound sender; its secret is returned once only."""
    require(principal, Action.manage_inbound_senders)
    organization = await session.get(Organization, organization_id)
    if organization is None or organization.ambito_id != principal.ambito_id:
        raise field_error("body.organization_id", "Not an organization of the ambito", "unknown")
    secret = webhooks.new_secret()
    sender = InboundSender(
        ambito_id=organization.ambito_id,
        organization_id=organization.id,
        name=name,
        secret_encrypted=security.vault.seal(secret),
    )
    session.add(sender)
    await session.flush()
    return CreatedSender(sender=sender, secret=secret)


async def list_senders(session: AsyncSession, principal: Principal) -> list[InboundSender]:
    """List the ambito's inbound senders."""
    require(principal, Action.manage_inbound_senders)
    rows = await session.scalars(
        select(InboundSender).where(InboundSender.ambito_id == principal.ambito_id).order_by(InboundSender.id)
    )
    return list(rows.all())


async def _own_sender(session: AsyncSession, principal: Principal, sender_id: uuid.UUID) -> InboundSender:
    require(principal, Action.manage_inbound_senders)
    sender = await session.get(InboundSender, sender_id)
    if sender is None or sender.ambito_id != principal.ambito_id:
        raise SenderNotFound()
    return sender


async def rotate_sender_secret(
    session: AsyncSession, principal: Principal, security: Security, sender_id: uuid.UUID, *, now: datetime
) -> CreatedSender:
    """Give an inbound sender a new secret; the previous one stays valid for the grace period."""
    sender = await _own_sender(session, principal, sender_id)
    secret = webhooks.new_secret()
    sender.previous_secret_encrypted = sender.secret_encrypted
    sender.previous_valid_until = now + timedelta(seconds=security.settings.webhook_secret_grace_s)
    sender.secret_encrypted = security.vault.seal(secret)
    await session.flush()
    return CreatedSender(sender=sender, secret=secret)


async def revoke_sender(
    session: AsyncSession, principal: Principal, sender_id: uuid.UUID, *, now: datetime
) -> None:
    """Revoke an inbound sender; revoking twice does nothing."""
    sender = await _own_sender(session, principal, sender_id)
    if sender.revoked_at is None:
        sender.revoked_at = now
        await session.flush()


# ---------------------------------------------------------------------------------------------
# Receiving


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    problem: bool = False


def _verify(
    security: Security, sender: InboundSender, headers: dict[str, str], body: str, now: datetime
) -> str:
    """The event id, if the signature is one of the sender's and the timestamp is recent."""
    event_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    offered = headers.get("webhook-signature", "")
    if not (event_id and stamp and offered) or len(event_id) > 255 or not event_id.isprintable():
        raise SignatureRequired("Sign the event: webhook-id, webhook-timestamp, webhook-signature.")
    try:
        sent_at = datetime.fromtimestamp(int(stamp), tz=now.tzinfo)
    except (ValueError, OverflowError, OSError):
        raise SignatureRequired("webhook-timestamp must be Unix seconds.") from None
    if abs((now - sent_at).total_seconds()) > security.settings.inbound_tolerance_s:
        raise SignatureRequired(
            "webhook-timestamp is outside the tolerance window: a stale or replayed request."
        )
    candidates = [security.vault.open(sender.secret_encrypted)]
    if (
        sender.previous_secret_encrypted is not None
        and sender.previous_valid_until
        and sender.previous_valid_until > now
    ):
        candidates.append(security.vault.open(sender.previous_secret_encrypted))
    expected = [webhooks.sign(secret, event_id, sent_at, body).encode() for secret in candidates]
    given = [token.encode() for token in offered.split(" ") if token.startswith("v1,")]
    if not any(hmac.compare_digest(e, g) for e in expected for g in given):
        raise SignatureRequired("The signature does not match.")
    return event_id


async def receive(
    session: AsyncSession,
    security: Security,
    *,
    headers: dict[str, str],
    raw: bytes,
    now: datetime,
) -> Answer:
    """Take an inbound message: identify the sender, check its signature and act on it."""
    try:
        sender_id = uuid.UUID(headers.get(SENDER_HEADER, ""))
    except ValueError:
        raise SignatureRequired(f"Name the sender in the {SENDER_HEADER} header.") from None
    sender = await session.get(InboundSender, sender_id)
    if sender is None or sender.revoked_at is not None:
        raise SignatureRequired("Unknown or revoked sender.")
    if len(raw) > security.settings.inbound_max_bytes:
        raise EventTooLarge(f"Events are at most {security.settings.inbound_max_bytes} bytes.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBody("The body is not UTF-8.") from None
    event_id = _verify(security, sender, headers, text, now)
    await set_tenant(session, sender.ambito_id)

    digest = hashlib.sha256(raw).digest()
    earlier = await session.scalar(
        select(InboundEvent).where(InboundEvent.sender_id == sender.id, InboundEvent.event_id == event_id)
    )
    if earlier is not None:
        if earlier.body_hash != digest:
            raise EventIdReused("Send a new webhook-id for a new event.")
        return Answer(earlier.response_status, earlier.response_body, problem=earlier.response_status >= 400)

    organization = await session.get_one(Organization, sender.organization_id)
    principal = Principal(
        kind="integration",
        id=sender.id,
        name=sender.name,
        organization_id=organization.id,
        organization_kind=OrganizationKind(organization.kind),
        organization_name=organization.name,
        ambito_id=sender.ambito_id,
        roles=frozenset(),
        scopes=frozenset(),
        organization_comune_id=organization.comune_id,
    )
    payload: dict[str, Any] | None = None
    event_type: str | None = None
    try:
        async with session.begin_nested():
            try:
                payload = json.loads(text)
                envelope = Envelope.model_validate(payload)
            except json.JSONDecodeError:
                raise MalformedBody("The event is not JSON.") from None
            except ValidationError as failure:
                raise ValidationFailed(
                    errors=field_errors_from_pydantic(failure.errors(), prefix=("body",))
                ) from None
            event_type = envelope.type
            result = await _apply(session, principal, envelope, now=now)
        answer = Answer(
            202, {"status": "applied", "event_id": event_id, "type": event_type, "result": result}
        )
        status = InboundStatus.applied
    except ProblemError as problem:
        answer = Answer(problem.status, _problem_body(problem), problem=True)
        status = InboundStatus.rejected
    session.add(
        InboundEvent(
            ambito_id=sender.ambito_id,
            sender_id=sender.id,
            event_id=event_id,
            event_type=(event_type or "")[:80] or None,
            body_hash=digest,
            payload=payload if isinstance(payload, dict) else None,
            status=status,
            response_status=answer.status,
            response_body=answer.body,
            received_at=now,
        )
    )
    await session.flush()
    return answer


def _problem_body(problem: ProblemError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + problem.slug if problem.slug else "about:blank",
        "title": problem.title("en"),
        "status": problem.status,
    }
    if problem.detail:
        body["detail"] = problem.detail
    if problem.errors:
        body["errors"] = [e.model_dump() for e in problem.errors]
    return body


async def _apply(
    session: AsyncSession, principal: Principal, envelope: Envelope, *, now: datetime
) -> dict[str, Any]:
    if envelope.type == "dimissione_protetta.requested":
        return await _discharge(session, principal, _parse(DischargeRequested, envelope.data), now=now)
    if envelope.type in ("presa_in_carico.started", "presa_in_carico.ended"):
        started = envelope.type.endswith(".started")
        return await _taking_charge(session, principal, _parse(TakingCharge, envelope.data), started, now=now)
    raise UnknownEventType(
        f"Supported: {', '.join(EVENT_TYPES)}.",
        errors=[FieldError(field="body.type", message="Unknown event type", code="unknown")],
    )


Model = TypeVar("Model", bound=BaseModel)


def _parse(model: type[Model], data: dict[str, Any]) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as failure:
        raise ValidationFailed(
            errors=field_errors_from_pydantic(failure.errors(), prefix=("body", "data"))
        ) from None


async def _discharge(
    session: AsyncSession, principal: Principal, event: DischargeRequested, *, now: datetime
) -> dict[str, Any]:
    """A protected discharge: a referral from the hospital, urgent, routed to the home-care pool."""
    form = await referrals.active_form(session)
    answers: dict[str, Any] = {
        "referrer_name": event.contact.name,
        "referrer_role": f"Dimissioni protette - {event.hospital}"[:200],
        "referrer_phone": event.contact.phone,
        "need_areas": sorted({a.value for a in event.need_areas}),
        "request": event.needs,
        "observations": (
            f"Dimissione protetta prevista il {event.discharge_date.strftime('%d/%m/%Y')} da {event.hospital}"
            + (f", reparto {event.ward}" if event.ward else "")
            + "."
        ),
        "urgency": "urgente",
        "urgency_reason": "Dimissione protetta dall'ospedale",
        "consent_given": event.consent.given,
    }
    if event.contact.email:
        answers["referrer_email"] = event.contact.email
    if event.consent.given:
        answers["consent_date"] = (event.consent.date or now.date()).isoformat()
        answers["consent_recipients"] = sorted({k.value for k in event.consent.recipients}) or ["comune"]
    body = ReferralCreate(form_version=form.version, person=event.person, answers=answers)
    receipt, dossier = await referrals.submit_for_integration(session, principal, body, now=now)
    routed = None
    if dossier is not None:
        routed = await routing.ensure_area(
            session,
            principal,
            dossier,
            PoolArea.domiciliarita,
            "Dimissione protetta: pool domiciliarità",
            now=now,
        )
    return {"referral_id": str(receipt.id), "routed_to_pool": str(routed) if routed else None}


# access: a signed ASST event names its dossier; nothing is shown to the sender
async def _taking_charge(
    session: AsyncSession, principal: Principal, event: TakingCharge, started: bool, *, now: datetime
) -> dict[str, Any]:
    dossier = await session.scalar(
        select(Dossier)
        .join(Person, Person.id == Dossier.person_id)
        .where(Dossier.ambito_id == principal.ambito_id, Person.fiscal_code == event.fiscal_code.upper())
        .with_for_update(of=Dossier)
    )
    if dossier is None:
        raise field_error(
            "body.data.fiscal_code", "No dossier for this codice fiscale in the ambito", "unknown"
        )
    label = SERVICE_LABEL[event.service]
    service = (
        event.service.upper()
        if event.service in ("sert", "noa", "cps", "adi")
        else event.service.capitalize()
    )
    verb = "avviata" if started else "conclusa"
    text = f"Presa in carico {verb} dal servizio {service} il {event.date.strftime('%d/%m/%Y')}."
    if event.note:
        text += f" {event.note}"
    entry = DossierEntry(
        ambito_id=dossier.ambito_id,
        dossier_id=dossier.id,
        section=Section.health,
        label=label,
        text=text,
        author_kind=principal.kind,
        author_id=principal.id,
        author_organization_id=principal.organization_id,
        created_at=now,
    )
    session.add(entry)
    await session.flush()
    await add_event(
        session,
        dossier,
        "asst_taking_charge_started" if started else "asst_taking_charge_ended",
        principal=principal,
        now=now,
        labels=[label.value] if label else [],
        data={"service": event.service, "date": event.date.isoformat(), "entry_id": str(entry.id)},
    )
    await audit.record(
        session,
        principal,
        action=AuditAction.create,
        resource_type="entry",
        resource_id=entry.id,
        dossier_id=dossier.id,
        section=Section.health,
        now=now,
    )
    return {"recorded": True}
