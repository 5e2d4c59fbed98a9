"""Pool meetings (riunioni di équipe): agenda of routed dossiers, attendees, minutes, decisions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, any_, exists, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import AuditAction, MeetingStatus
from app.core.principal import Principal
from app.core.problems import FieldError, Forbidden, NotFound, ValidationFailed
from app.models import Dossier, DossierRouting, PoolMeeting, PoolMeetingItem, PoolMember, User
from app.schemas.pools import MeetingCreate, MeetingItemUpdate
from app.services.access import audit
from app.services.access.actions import Action, allowed
from app.services.access.policy import DossierNotFound, load_dossier, visible
from app.services.events.timeline import add_event
from app.services.pools.configuration import get_pool


class MeetingNotFound(NotFound):
    slug = "meeting-not-found"
    title_en = "Meeting not found"
    title_it = "Riunione non trovata"


def _membership(principal: Principal, pool_id: Any) -> ColumnElement[bool]:
    condition = [
        PoolMember.pool_id == pool_id,
        PoolMember.organization_id == principal.organization_id,
        PoolMember.removed_at.is_(None),
    ]
    if principal.kind == "user":
        condition.append(or_(PoolMember.user_id.is_(None), PoolMember.user_id == principal.id))
    return exists().where(*condition)


async def _is_member(session: AsyncSession, principal: Principal, pool_id: uuid.UUID) -> bool:
    return bool(await session.scalar(select(_membership(principal, pool_id))))


async def _require_member_or_coordinator(
    session: AsyncSession, principal: Principal, pool_id: uuid.UUID
) -> None:
    if allowed(principal, Action.oversee_meetings):
        return
    if not await _is_member(session, principal, pool_id):
        raise Forbidden("Meetings are for the pool's members and the coordinators.")


# access: checks an agenda against the pool's routings; shows nothing itself
async def _routed_here(
    session: AsyncSession, pool_id: uuid.UUID, dossier_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    return set(
        (
            await session.scalars(
                select(DossierRouting.dossier_id).where(
                    DossierRouting.pool_id == pool_id,
                    DossierRouting.dossier_id.in_(dossier_ids),
                    DossierRouting.ended_at.is_(None),
                )
            )
        ).all()
    )


async def schedule(
    session: AsyncSession, principal: Principal, pool_id: uuid.UUID, data: MeetingCreate, *, now: datetime
) -> PoolMeeting:
    """Schedule a future pool meeting on dossiers routed to the pool; members or coordinators."""
    pool = await get_pool(session, principal, pool_id)
    await _require_member_or_coordinator(session, principal, pool.id)
    errors = []
    if data.scheduled_at <= now:
        errors.append(
            FieldError(field="body.scheduled_at", message="Must be in the future", code="date_past")
        )
    routed = await _routed_here(session, pool.id, data.agenda)
    errors += [
        FieldError(field=f"body.agenda.{i}", message="Not a dossier routed to this pool", code="not_routed")
        for i, dossier_id in enumerate(data.agenda)
        if dossier_id not in routed
    ]
    if data.attendee_user_ids:
        known = set(
            (
                await session.scalars(
                    select(User.id).where(
                        User.id.in_(data.attendee_user_ids), User.ambito_id == pool.ambito_id
                    )
                )
            ).all()
        )
        errors += [
            FieldError(
                field=f"body.attendee_user_ids.{i}", message="Not a user of the ambito", code="unknown"
            )
            for i, user_id in enumerate(data.attendee_user_ids)
            if user_id not in known
        ]
    if errors:
        raise ValidationFailed(errors=errors)
    meeting = PoolMeeting(
        ambito_id=pool.ambito_id,
        pool_id=pool.id,
        scheduled_at=data.scheduled_at,
        location=data.location,
        status=MeetingStatus.scheduled,
        attendee_user_ids=list(dict.fromkeys(data.attendee_user_ids)),
        created_by_user_id=principal.user_id,
    )
    session.add(meeting)
    await session.flush()
    for position, dossier_id in enumerate(dict.fromkeys(data.agenda), start=1):
        session.add(
            PoolMeetingItem(
                ambito_id=pool.ambito_id, meeting_id=meeting.id, dossier_id=dossier_id, position=position
            )
        )
    await session.flush()
    return meeting


@dataclass(frozen=True)
class MeetingView:
    meeting: PoolMeeting
    items: Sequence[PoolMeetingItem]
    show_minutes: bool


async def get(
    session: AsyncSession, principal: Principal, meeting_id: uuid.UUID, *, now: datetime
) -> MeetingView:
    """The meeting with the agenda items the caller may see (coordinators: the agenda, no minutes)."""
    meeting = await session.get(PoolMeeting, meeting_id)
    if meeting is None or meeting.ambito_id != principal.ambito_id:
        raise MeetingNotFound()
    coordinator = allowed(principal, Action.oversee_meetings)
    if not coordinator and not await _is_member(session, principal, meeting.pool_id):
        raise MeetingNotFound()
    statement = select(PoolMeetingItem).where(PoolMeetingItem.meeting_id == meeting.id)
    if not coordinator:
        statement = statement.join(Dossier, Dossier.id == PoolMeetingItem.dossier_id).where(
            visible(principal, now)
        )
    items = (await session.scalars(statement.order_by(PoolMeetingItem.position))).all()
    if not coordinator and items:
        await audit.record(
            session,
            principal,
            action=AuditAction.read,
            resource_type="meeting",
            resource_id=meeting.id,
            dossier_ids=[item.dossier_id for item in items],  # their minutes were shown
            now=now,
        )
    return MeetingView(meeting=meeting, items=items, show_minutes=not coordinator)


async def list_for_pool(
    session: AsyncSession, principal: Principal, pool_id: uuid.UUID
) -> Sequence[PoolMeeting]:
    """A pool's latest meetings, newest first; members or coordinators."""
    pool = await get_pool(session, principal, pool_id)
    await _require_member_or_coordinator(session, principal, pool.id)
    return (
        await session.scalars(
            select(PoolMeeting)
            .where(PoolMeeting.pool_id == pool.id)
            .order_by(PoolMeeting.scheduled_at.desc())
            .limit(200)
        )
    ).all()


async def upcoming_for_me(
    session: AsyncSession, principal: Principal, *, now: datetime
) -> Sequence[PoolMeeting]:
    """The scheduled meetings to come for the principal's pools, or that the user attends."""
    condition = _membership(principal, PoolMeeting.pool_id)
    if principal.kind == "user":
        condition = or_(condition, literal(principal.id) == any_(PoolMeeting.attendee_user_ids))
    return (
        await session.scalars(
            select(PoolMeeting)
            .where(
                PoolMeeting.ambito_id == principal.ambito_id,
                PoolMeeting.status == MeetingStatus.scheduled,
                PoolMeeting.scheduled_at >= now,
                condition,
            )
            .order_by(PoolMeeting.scheduled_at)
            .limit(100)
        )
    ).all()


async def record_item(
    session: AsyncSession,
    principal: Principal,
    meeting_id: uuid.UUID,
    dossier_id: uuid.UUID,
    data: MeetingItemUpdate,
    *,
    now: datetime,
) -> PoolMeetingItem:
    """Minutes and decision for one dossier; the decision goes on the dossier's timeline."""
    meeting = await session.get(PoolMeeting, meeting_id)
    if meeting is None or meeting.ambito_id != principal.ambito_id:
        raise MeetingNotFound()
    if not await _is_member(session, principal, meeting.pool_id):
        raise MeetingNotFound()
    try:
        access = await load_dossier(session, principal, dossier_id, now=now)
    except DossierNotFound:
        raise MeetingNotFound() from None
    item = await session.scalar(
        select(PoolMeetingItem).where(
            PoolMeetingItem.meeting_id == meeting.id, PoolMeetingItem.dossier_id == dossier_id
        )
    )
    if item is None:
        raise MeetingNotFound("This dossier is not on the meeting's agenda.")
    if data.minutes is not None:
        item.minutes = data.minutes
    if data.decision is not None:
        item.decision = data.decision
        item.decision_note = data.decision_note
        await add_event(
            session,
            access.dossier,
            "pool_decision",
            principal=principal,
            now=now,
            reason=data.decision_note,
            data={"meeting_id": str(meeting.id), "pool_id": str(meeting.pool_id), "decision": data.decision},
        )
    item.recorded_at = now
    item.recorded_by_user_id = principal.user_id
    if meeting.status == MeetingStatus.scheduled and meeting.scheduled_at <= now:
        meeting.status = MeetingStatus.held
    await session.flush()
    await audit.record(
        session,
        principal,
        action=AuditAction.update,
        resource_type="meeting_item",
        resource_id=item.id,
        dossier_id=dossier_id,
        now=now,
    )
    return item
