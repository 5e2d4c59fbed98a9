"""Consents and legal bases: recorded and revoked by whoever manages the case; revocation is immediate."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import AuditAction, Section
from app.core.principal import Principal
from app.core.problems import Forbidden, NotFound, field_error
from app.models import Consent, Organization
from app.schemas.intake import ConsentCreate, ConsentRevoke
from app.services.access import audit
from app.services.access.policy import DossierAccess, load_dossier
from app.services.events.timeline import add_event


class ConsentNotFound(NotFound):
    slug = "consent-not-found"
    title_en = "Consent not found"
    title_it = "Consenso non trovato"


def _require_manager(access: DossierAccess) -> None:
    access.require(Section.registry, write=True)
    if not access.is_institutional:
        raise Forbidden(
            "Consents are recorded by the case manager or the social workers of the residence comune."
        )


async def list_for_dossier(
    session: AsyncSession, principal: Principal, dossier_id: uuid.UUID, *, now: datetime
) -> Sequence[Consent]:
    """List the consents and legal bases of the dossier's person; needs the registry section, audited."""
    access = await load_dossier(session, principal, dossier_id, now=now)
    access.require(Section.registry)
    rows = (
        await session.scalars(
            select(Consent).where(Consent.person_id == access.dossier.person_id).order_by(Consent.id)
        )
    ).all()
    await audit.record(
        session,
        principal,
        action=AuditAction.list,
        resource_type="consent",
        dossier_id=dossier_id,
        section=Section.registry,
        now=now,
    )
    return rows


async def record(
    session: AsyncSession, principal: Principal, dossier_id: uuid.UUID, data: ConsentCreate, *, now: datetime
) -> Consent:
    """Record a consent or legal basis for the dossier's person; case manager or residence worker."""
    access = await load_dossier(session, principal, dossier_id, now=now)
    _require_manager(access)
    if not data.organization_kinds and not data.organization_ids:
        raise field_error(
            "body.organization_kinds", "Name the kinds of organization or the organizations", "missing"
        )
    if data.expires_on is not None and data.expires_on < data.given_on:
        raise field_error("body.expires_on", "Before the date the consent was given", "date_order")
    if data.given_on > now.date():
        raise field_error("body.given_on", "In the future", "date_future")
    if data.organization_ids:
        known = set(
            (
                await session.scalars(
                    select(Organization.id).where(
                        Organization.id.in_(data.organization_ids),
                        Organization.ambito_id == principal.ambito_id,
                    )
                )
            ).all()
        )
        for index, organization_id in enumerate(data.organization_ids):
            if organization_id not in known:
                raise field_error(
                    f"body.organization_ids.{index}", "Not an organization of the ambito", "unknown"
                )
    consent = Consent(
        ambito_id=access.dossier.ambito_id,
        person_id=access.dossier.person_id,
        organization_kinds=sorted({k.value for k in data.organization_kinds}),
        organization_ids=sorted(set(data.organization_ids)),
        purposes=sorted({p.value for p in data.purposes}),
        labels=sorted({label.value for label in data.labels}),
        legal_basis=data.legal_basis,
        given_on=data.given_on,
        expires_on=data.expires_on,
        note=data.note,
        recorded_by_kind=principal.kind,
        recorded_by_id=principal.id,
        recorded_by_organization_id=principal.organization_id,
        created_at=now,
    )
    session.add(consent)
    await session.flush()
    await add_event(
        session,
        access.dossier,
        "consent_recorded",
        principal=principal,
        now=now,
        data={"consent_id": str(consent.id), "legal_basis": data.legal_basis},
    )
    await audit.record(
        session,
        principal,
        action=AuditAction.create,
        resource_type="consent",
        resource_id=consent.id,
        dossier_id=dossier_id,
        section=Section.registry,
        now=now,
    )
    return consent


async def revoke(
    session: AsyncSession,
    principal: Principal,
    dossier_id: uuid.UUID,
    consent_id: uuid.UUID,
    data: ConsentRevoke,
    *,
    now: datetime,
) -> Consent:
    """Revoke a consent of the dossier's person; the case manager or the residence worker only."""
    access = await load_dossier(session, principal, dossier_id, now=now)
    _require_manager(access)
    consent = await session.scalar(
        select(Consent)
        .where(Consent.id == consent_id, Consent.person_id == access.dossier.person_id)
        .with_for_update()
    )
    if consent is None:
        raise ConsentNotFound()
    if consent.revoked_at is None:
        consent.revoked_at = now
        consent.revoked_reason = data.reason
        await add_event(
            session,
            access.dossier,
            "consent_revoked",
            principal=principal,
            now=now,
            reason=data.reason,
            data={"consent_id": str(consent.id)},
        )
        await session.flush()
    await audit.record(
        session,
        principal,
        action=AuditAction.update,
        resource_type="consent",
        resource_id=consent.id,
        dossier_id=dossier_id,
        section=Section.registry,
        now=now,
    )
    return consent
