"""Dossiers: read one, change its case manager and urgency, its timeline and its access log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import AuditAction, ConfidentialityLabel, NeedArea, Role
from app.core.pagination import PageRequest
from app.core.principal import Principal
from app.core.problems import Forbidden, PreconditionFailed, field_error
from app.models import AuditEvent, Dossier, DossierEvent, User
from app.schemas.intake import DossierUpdate
from app.services.access import audit
from app.services.access.actions import Action, allowed
from app.services.access.policy import NEED_AREA_LABEL, dossier_for_action, load_dossier
from app.services.dossiers.lifecycle import require_case_management
from app.services.dossiers.views import DossierView, view_of
from app.services.events.timeline import add_event

# ---------------------------------------------------------------------------------------------
# Reading


async def get(
    session: AsyncSession, principal: Principal, dossier_id: uuid.UUID, *, now: datetime
) -> DossierView:
    """Read a dossier as its reader may see it, audited."""
    access = await load_dossier(session, principal, dossier_id, now=now)
    await audit.record(
        session,
        principal,
        action=AuditAction.read,
        resource_type="dossier",
        resource_id=dossier_id,
        dossier_id=dossier_id,
        now=now,
    )
    return await view_of(session, access)


async def timeline(
    session: AsyncSession, principal: Principal, dossier_id: uuid.UUID, page: PageRequest, *, now: datetime
) -> tuple[Sequence[DossierEvent], int, uuid.UUID | None]:
    """One page of a dossier's timeline events the principal may see, with the total count, audited."""
    access = await load_dossier(session, principal, dossier_id, now=now)
    condition = access.labels_subset_condition(DossierEvent.labels, DossierEvent.actor_organization_id)
    base = select(DossierEvent).where(DossierEvent.dossier_id == dossier_id, condition)
    total = await session.scalar(select(func.count()).select_from(base.subquery())) or 0
    if page.after is not None:
        base = base.where(DossierEvent.id > page.after)
    events = (await session.scalars(base.order_by(DossierEvent.id).limit(page.limit + 1))).all()
    await audit.record(
        session, principal, action=AuditAction.read, resource_type="timeline", dossier_id=dossier_id, now=now
    )
    more = len(events) > page.limit
    events = events[: page.limit]
    return events, total, events[-1].id if more else None


# ---------------------------------------------------------------------------------------------
# Changing


async def update(
    session: AsyncSession,
    principal: Principal,
    dossier_id: uuid.UUID,
    data: DossierUpdate,
    *,
    expected_version: int | None,
    now: datetime,
) -> DossierView:
    """Change a dossier's details, refusing a stale expected version; case management only."""
    access = await load_dossier(session, principal, dossier_id, now=now, for_update=True)
    require_case_management(access)
    dossier = access.dossier
    if expected_version is not None and dossier.version != expected_version:
        raise PreconditionFailed(
            f"You read version {expected_version}; the dossier is now at {dossier.version}."
        )
    changes = data.model_dump(exclude_unset=True)
    if "case_manager_user_id" in changes and changes["case_manager_user_id"] != dossier.case_manager_user_id:
        if data.case_manager_user_id is not None:
            await _check_case_manager(session, dossier, data.case_manager_user_id)
        await add_event(
            session,
            dossier,
            "case_manager_assigned",
            principal=principal,
            now=now,
            data={"from": _str(dossier.case_manager_user_id), "to": _str(data.case_manager_user_id)},
        )
        dossier.case_manager_user_id = data.case_manager_user_id
    if data.urgency is not None and data.urgency != dossier.urgency:
        await add_event(
            session,
            dossier,
            "urgency_changed",
            principal=principal,
            now=now,
            data={"from": dossier.urgency, "to": data.urgency},
        )
        dossier.urgency = data.urgency
    await session.flush()
    await audit.record(
        session,
        principal,
        action=AuditAction.update,
        resource_type="dossier",
        resource_id=dossier.id,
        dossier_id=dossier.id,
        now=now,
    )
    return await view_of(session, access)


def _str(value: uuid.UUID | None) -> str | None:
    return str(value) if value else None


async def _check_case_manager(session: AsyncSession, dossier: Dossier, user_id: uuid.UUID) -> None:
    user = await session.get(User, user_id)
    if (
        user is None
        or user.ambito_id != dossier.ambito_id
        or not user.active
        or Role.social_worker not in user.roles
    ):
        raise field_error(
            "body.case_manager_user_id",
            "Must be an active social worker of the ambito",
            "invalid_case_manager",
        )


def labels_for(need_areas: Sequence[str]) -> set[ConfidentialityLabel]:
    """Special categories implied by need areas (dipendenze → ETH, salute mentale → PSY, violenza → SDV)."""
    return {NEED_AREA_LABEL[NeedArea(a)] for a in need_areas if NeedArea(a) in NEED_AREA_LABEL}


async def access_log(
    session: AsyncSession,
    principal: Principal,
    dossier_id: uuid.UUID,
    page: PageRequest,
    *,
    now: datetime,
    lists: bool = True,
) -> tuple[Sequence[AuditEvent], uuid.UUID | None]:
    """Who read or changed this dossier: for its case manager and the DPO (GDPR art. 15 export too)."""
    if allowed(principal, Action.read_any_access_log):
        await dossier_for_action(session, principal, dossier_id, Action.read_any_access_log)
    else:
        access = await load_dossier(session, principal, dossier_id, now=now)
        if "case_manager" not in access.bases:
            raise Forbidden("The access log is for the case manager and the DPO.")
    rows = await audit.dossier_log(
        session, dossier_id, principal.ambito_id, after=page.after, limit=page.limit + 1, lists=lists
    )
    await audit.record(
        session,
        principal,
        action=AuditAction.read,
        resource_type="access_log",
        dossier_id=dossier_id,
        purpose="controllo_accessi",
        now=now,
    )
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return rows, rows[-1].id if more else None
