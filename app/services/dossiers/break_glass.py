"""Break-the-glass: emergency access to a dossier one cannot see — reasoned, bounded, reviewed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import AuditAction
from app.core.pagination import PageRequest
from app.core.principal import Principal
from app.core.problems import NotFound, field_error
from app.models import BreakGlass
from app.schemas.intake import BreakGlassCreate, BreakGlassReview
from app.services.access import audit
from app.services.access.actions import Action, require
from app.services.access.policy import break_glass_target
from app.services.events.timeline import add_event

DURATION = timedelta(hours=4)


class BreakGlassNotFound(NotFound):
    slug = "break-glass-not-found"
    title_en = "Break-the-glass access not found"
    title_it = "Accesso in emergenza non trovato"


async def open_access(
    session: AsyncSession, principal: Principal, data: BreakGlassCreate, *, now: datetime
) -> BreakGlass:
    """Open break-glass access to a dossier (by id or codice fiscale), recorded for review."""
    require(principal, Action.open_break_glass)
    if (data.dossier_id is None) == (data.fiscal_code is None):
        raise field_error("body.dossier_id", "Give the dossier id or the person's codice fiscale", "missing")
    dossier = await break_glass_target(
        session, principal, dossier_id=data.dossier_id, fiscal_code=data.fiscal_code
    )
    grant = BreakGlass(
        ambito_id=dossier.ambito_id,
        dossier_id=dossier.id,
        user_id=principal.id,
        organization_id=principal.organization_id,
        reason=data.reason,
        granted_at=now,
        expires_at=now + DURATION,
    )
    session.add(grant)
    await session.flush()
    await add_event(
        session,
        dossier,
        "break_glass",
        principal=principal,
        now=now,
        reason=data.reason,
        data={"break_glass_id": str(grant.id), "expires_at": grant.expires_at.isoformat()},
    )
    await audit.record(
        session,
        principal,
        action=AuditAction.break_glass,
        resource_type="dossier",
        resource_id=dossier.id,
        dossier_id=dossier.id,
        purpose="emergenza",
        now=now,
    )
    return grant


# access: the DPO's review of emergency accesses (who, when, why), no dossier content
async def for_review(
    session: AsyncSession, principal: Principal, page: PageRequest, *, unreviewed_only: bool
) -> tuple[Sequence[BreakGlass], uuid.UUID | None]:
    """One page of the ambito's break-glass grants to review, optionally unreviewed only."""
    require(principal, Action.review_break_glass)
    statement = select(BreakGlass).where(BreakGlass.ambito_id == principal.ambito_id)
    if unreviewed_only:
        statement = statement.where(BreakGlass.reviewed_at.is_(None))
    if page.after is not None:
        statement = statement.where(BreakGlass.id > page.after)
    rows = (await session.scalars(statement.order_by(BreakGlass.id).limit(page.limit + 1))).all()
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return rows, rows[-1].id if more else None


# access: the DPO's review of an emergency access, no dossier content
async def review(
    session: AsyncSession, principal: Principal, grant_id: uuid.UUID, data: BreakGlassReview, *, now: datetime
) -> BreakGlass:
    """Mark a break-glass grant of the ambito as reviewed, with the reviewer's note."""
    require(principal, Action.review_break_glass)
    grant = await session.get(BreakGlass, grant_id)
    if grant is None or grant.ambito_id != principal.ambito_id:
        raise BreakGlassNotFound()
    grant.reviewed_at = now
    grant.reviewed_by_user_id = principal.id
    grant.review_note = data.note
    await session.flush()
    return grant
