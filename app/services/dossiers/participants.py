"""Organizations taking part in a dossier: the seam through which pools, providers and invited
specialists get access (always within the citizen's consent, see policy)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import AuditAction
from app.core.principal import Principal
from app.core.problems import Forbidden, NotFound, field_error
from app.models import DossierParticipant, Organization
from app.schemas.intake import ParticipantCreate
from app.services.access import audit
from app.services.access.policy import load_dossier
from app.services.events.timeline import add_event


class ParticipantNotFound(NotFound):
    slug = "participant-not-found"
    title_en = "Participant not found"
    title_it = "Partecipante non trovato"


async def list_for_dossier(
    session: AsyncSession, principal: Principal, dossier_id: uuid.UUID, *, now: datetime
) -> Sequence[DossierParticipant]:
    """List the organizations taking part in a dossier, audited."""
    await load_dossier(session, principal, dossier_id, now=now)
    rows = (
        await session.scalars(
            select(DossierParticipant)
            .where(DossierParticipant.dossier_id == dossier_id)
            .order_by(DossierParticipant.id)
        )
    ).all()
    await audit.record(
        session,
        principal,
        action=AuditAction.list,
        resource_type="participant",
        dossier_id=dossier_id,
        now=now,
    )
    return rows


async def add(
    session: AsyncSession,
    principal: Principal,
    dossier_id: uuid.UUID,
    data: ParticipantCreate,
    *,
    now: datetime,
) -> DossierParticipant:
    """Involve another organization in a dossier; case management only."""
    access = await load_dossier(session, principal, dossier_id, now=now)
    if not access.is_institutional:
        raise Forbidden(
            "The case manager or the social workers of the residence comune involve other organizations."
        )
    organization = await session.get(Organization, data.organization_id)
    if organization is None or organization.ambito_id != principal.ambito_id or not organization.active:
        raise field_error("body.organization_id", "Not an active organization of the ambito", "unknown")
    if data.ends_at is not None and data.ends_at <= now:
        raise field_error("body.ends_at", "Must be in the future", "date_past")
    participant = DossierParticipant(
        ambito_id=access.dossier.ambito_id,
        dossier_id=dossier_id,
        organization_id=organization.id,
        basis=data.basis,
        sections=sorted({s.value for s in data.sections}),
        starts_at=now,
        ends_at=data.ends_at,
        reason=data.reason,
        added_by_user_id=principal.user_id,
    )
    session.add(participant)
    await session.flush()
    await add_event(
        session,
        access.dossier,
        "participant_added",
        principal=principal,
        now=now,
        reason=data.reason,
        data={
            "organization_id": str(organization.id),
            "basis": data.basis,
            "participant_id": str(participant.id),
        },
    )
    await audit.record(
        session,
        principal,
        action=AuditAction.create,
        resource_type="participant",
        resource_id=participant.id,
        dossier_id=dossier_id,
        now=now,
    )
    return participant


async def end(
    session: AsyncSession,
    principal: Principal,
    dossier_id: uuid.UUID,
    participant_id: uuid.UUID,
    *,
    now: datetime,
) -> DossierParticipant:
    """End an organization's participation in a dossier; case management only."""
    access = await load_dossier(session, principal, dossier_id, now=now)
    if not access.is_institutional:
        raise Forbidden("The case manager or the social workers of the residence comune end participations.")
    participant = await session.scalar(
        select(DossierParticipant).where(
            DossierParticipant.id == participant_id, DossierParticipant.dossier_id == dossier_id
        )
    )
    if participant is None:
        raise ParticipantNotFound()
    if participant.ended_at is None:
        participant.ended_at = now
        await add_event(
            session,
            access.dossier,
            "participant_ended",
            principal=principal,
            now=now,
            data={"organization_id": str(participant.organization_id), "participant_id": str(participant.id)},
        )
        await session.flush()
    await audit.record(
        session,
        principal,
        action=AuditAction.update,
        resource_type="participant",
        resource_id=participant.id,
        dossier_id=dossier_id,
        now=now,
    )
    return participant
