"""Pools, routing (rules, preview, overrides, queue), each agency's answer, meetings."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from app.api.deps import NowDep, PrincipalDep, SessionDep
from app.core.enums import TaskStatus
from app.models import DossierRouting, Pool, PoolMeeting, RoutingTask
from app.schemas.pools import (
    CoordinatorQueue,
    MeetingCreate,
    MeetingItemRead,
    MeetingItemUpdate,
    MeetingRead,
    PoolCreate,
    PoolMemberCreate,
    PoolMemberRead,
    PoolRead,
    PoolUpdate,
    QueueOverdue,
    QueueUnrouted,
    RoutingCreate,
    RoutingEnd,
    RoutingPreview,
    RoutingPreviewRequest,
    RoutingRead,
    RoutingRuleCreate,
    RoutingRuleRead,
    RoutingRuleUpdate,
    RoutingTaskRead,
    RoutingTransfer,
    TaskDecline,
)
from app.services.pools import configuration as pools
from app.services.pools import meetings, routing

pools_router = APIRouter(prefix="/api/v1/pools", tags=["pools"])
routing_router = APIRouter(prefix="/api/v1", tags=["routing"])
meetings_router = APIRouter(prefix="/api/v1", tags=["meetings"])

Responses = dict[int | str, dict[str, Any]]
_COORDINATOR: Responses = {403: {"description": "Coordinators only"}}
_DOSSIER: Responses = {404: {"description": "No such dossier, or not visible to you"}, **_COORDINATOR}


async def _pool_read(session: SessionDep, pool: Pool) -> PoolRead:
    return (await _pool_reads(session, [pool]))[0]


async def _pool_reads(session: SessionDep, items: Sequence[Pool]) -> list[PoolRead]:
    ids = [p.id for p in items]
    territory = await pools.territory(session, ids)
    members = await pools.members(session, ids)
    return [
        PoolRead(
            id=p.id,
            name=p.name,
            area=p.area,
            comune_ids=territory[p.id],
            active_from=p.active_from,
            active_until=p.active_until,
            response_days=p.response_days,
            members=[PoolMemberRead.model_validate(m) for m in members[p.id]],
        )
        for p in items
    ]


@pools_router.get("", summary="The pools of the ambito")
async def list_pools(principal: PrincipalDep, session: SessionDep) -> list[PoolRead]:
    return await _pool_reads(session, await pools.list_pools(session, principal))


@pools_router.post("", status_code=status.HTTP_201_CREATED, responses=_COORDINATOR, summary="Create a pool")
async def create_pool(principal: PrincipalDep, session: SessionDep, body: PoolCreate) -> PoolRead:
    return await _pool_read(session, await pools.create_pool(session, principal, body))


@pools_router.get(
    "/{pool_id}", responses={404: {"description": "No such pool"}}, summary="One pool, with members"
)
async def get_pool(principal: PrincipalDep, session: SessionDep, pool_id: uuid.UUID) -> PoolRead:
    return await _pool_read(session, await pools.get_pool(session, principal, pool_id))


@pools_router.patch(
    "/{pool_id}", responses=_COORDINATOR, summary="Change a pool's name, territory, period, deadline"
)
async def update_pool(
    principal: PrincipalDep, session: SessionDep, pool_id: uuid.UUID, body: PoolUpdate
) -> PoolRead:
    return await _pool_read(session, await pools.update_pool(session, principal, pool_id, body))


@pools_router.post(
    "/{pool_id}/members", status_code=status.HTTP_201_CREATED, responses=_COORDINATOR, summary="Add a member"
)
async def add_pool_member(
    principal: PrincipalDep, session: SessionDep, now: NowDep, pool_id: uuid.UUID, body: PoolMemberCreate
) -> PoolMemberRead:
    return PoolMemberRead.model_validate(await pools.add_member(session, principal, pool_id, body, now=now))


@pools_router.delete(
    "/{pool_id}/members/{member_id}",
    responses=_COORDINATOR,
    summary="Remove a member: it stops seeing the pool's dossiers on its next request",
)
async def remove_pool_member(
    principal: PrincipalDep, session: SessionDep, now: NowDep, pool_id: uuid.UUID, member_id: uuid.UUID
) -> PoolMemberRead:
    return PoolMemberRead.model_validate(
        await pools.remove_member(session, principal, pool_id, member_id, now=now)
    )


# ---------------------------------------------------------------------------------------------
# Routing


@routing_router.get("/routing/rules", tags=["routing"], summary="Routing rules, in the order they are tried")
async def list_routing_rules(principal: PrincipalDep, session: SessionDep) -> list[RoutingRuleRead]:
    return [RoutingRuleRead.model_validate(r) for r in await pools.list_rules(session, principal)]


@routing_router.post(
    "/routing/rules",
    status_code=status.HTTP_201_CREATED,
    responses=_COORDINATOR,
    summary="Add a routing rule",
)
async def create_routing_rule(
    principal: PrincipalDep, session: SessionDep, body: RoutingRuleCreate
) -> RoutingRuleRead:
    return RoutingRuleRead.model_validate(await pools.create_rule(session, principal, body))


@routing_router.patch(
    "/routing/rules/{rule_id}", responses=_COORDINATOR, summary="Rename, reorder or (de)activate a rule"
)
async def update_routing_rule(
    principal: PrincipalDep, session: SessionDep, rule_id: uuid.UUID, body: RoutingRuleUpdate
) -> RoutingRuleRead:
    return RoutingRuleRead.model_validate(await pools.update_rule(session, principal, rule_id, body))


@routing_router.post(
    "/routing/preview", summary="Which pools would take such a case, and why (nothing is saved)"
)
async def preview_routing(
    principal: PrincipalDep, session: SessionDep, now: NowDep, body: RoutingPreviewRequest
) -> RoutingPreview:
    return await routing.preview(session, principal, body, now=now)


@routing_router.get("/routing/queue", responses=_COORDINATOR, summary="Unrouted dossiers and overdue answers")
async def coordinator_queue(principal: PrincipalDep, session: SessionDep, now: NowDep) -> CoordinatorQueue:
    queue = await routing.coordinator_queue(session, principal, now=now)
    unrouted = [
        QueueUnrouted(
            dossier_id=item.dossier.id,
            residence_comune_id=item.dossier.residence_comune_id,
            urgency=item.dossier.urgency,
            need_areas=item.need_areas,
            has_special_categories=item.has_special_categories,
            opened_at=item.dossier.opened_at,
        )
        for item in queue.unrouted
    ]
    overdue = [
        QueueOverdue(task=_task_read(t, now), days_overdue=max(0, (now - t.due_at).days))
        for t in queue.overdue
    ]
    return CoordinatorQueue(unrouted=unrouted, overdue=overdue)


def _task_read(task: RoutingTask, now: datetime) -> RoutingTaskRead:
    return RoutingTaskRead(
        id=task.id,
        routing_id=task.routing_id,
        dossier_id=task.dossier_id,
        pool_id=task.pool_id,
        organization_id=task.organization_id,
        status=task.status,
        due_at=task.due_at,
        overdue=routing.is_overdue(task, now),
        answered_at=task.answered_at,
        reason=task.reason,
    )


def _routing_read(item: DossierRouting, tasks: Sequence[RoutingTask], now: datetime) -> RoutingRead:
    return RoutingRead(
        id=item.id,
        dossier_id=item.dossier_id,
        pool_id=item.pool_id,
        rule_id=item.rule_id,
        referral_id=item.referral_id,
        explanation=item.explanation,
        routed_at=item.routed_at,
        reason=item.reason,
        ended_at=item.ended_at,
        end_reason=item.end_reason,
        tasks=[_task_read(t, now) for t in tasks],
    )


@routing_router.get(
    "/dossiers/{dossier_id}/routings", responses=_DOSSIER, summary="Where the dossier is routed, and why"
)
async def list_dossier_routings(
    principal: PrincipalDep, session: SessionDep, now: NowDep, dossier_id: uuid.UUID
) -> list[RoutingRead]:
    return [
        _routing_read(r, t, now)
        for r, t in await routing.routings_of(session, principal, dossier_id, now=now)
    ]


@routing_router.post(
    "/dossiers/{dossier_id}/routings",
    status_code=status.HTTP_201_CREATED,
    responses=_DOSSIER,
    summary="Coordinator: route the dossier to one more pool, with a reason",
)
async def add_dossier_routing(
    principal: PrincipalDep, session: SessionDep, now: NowDep, dossier_id: uuid.UUID, body: RoutingCreate
) -> RoutingRead:
    item = await routing.add_routing(session, principal, dossier_id, body.pool_id, body.reason, now=now)
    return _routing_read(item, [], now)


@routing_router.post(
    "/dossiers/{dossier_id}/routings/{routing_id}/end",
    responses=_DOSSIER,
    summary="Coordinator: end a routing; the pool's members lose access on their next request",
)
async def end_dossier_routing(
    principal: PrincipalDep,
    session: SessionDep,
    now: NowDep,
    dossier_id: uuid.UUID,
    routing_id: uuid.UUID,
    body: RoutingEnd,
) -> RoutingRead:
    item = await routing.end_routing(session, principal, dossier_id, routing_id, body.reason, now=now)
    return _routing_read(item, [], now)


@routing_router.post(
    "/dossiers/{dossier_id}/routings/{routing_id}/transfer",
    responses=_DOSSIER,
    summary="Coordinator: move the dossier from this pool to another",
)
async def transfer_dossier_routing(
    principal: PrincipalDep,
    session: SessionDep,
    now: NowDep,
    dossier_id: uuid.UUID,
    routing_id: uuid.UUID,
    body: RoutingTransfer,
) -> RoutingRead:
    item = await routing.transfer_routing(
        session, principal, dossier_id, routing_id, body.pool_id, body.reason, now=now
    )
    return _routing_read(item, [], now)


@routing_router.get("/me/routing-tasks", summary="What my organization is asked to answer")
async def my_routing_tasks(
    principal: PrincipalDep,
    session: SessionDep,
    now: NowDep,
    task_status: Annotated[TaskStatus | None, Query(alias="status")] = None,
) -> list[RoutingTaskRead]:
    return [
        _task_read(t, now) for t in await routing.my_tasks(session, principal, status=task_status, now=now)
    ]


_TASK: Responses = {
    404: {"description": "Not a task of your organization"},
    409: {"description": "Wrong state"},
}


@routing_router.post(
    "/routing-tasks/{task_id}/accept", responses=_TASK, summary="My organization takes its part"
)
async def accept_routing_task(
    principal: PrincipalDep, session: SessionDep, now: NowDep, task_id: uuid.UUID
) -> RoutingTaskRead:
    return _task_read(await routing.answer(session, principal, task_id, "accept", reason=None, now=now), now)


@routing_router.post(
    "/routing-tasks/{task_id}/decline", responses=_TASK, summary="My organization declines, with a reason"
)
async def decline_routing_task(
    principal: PrincipalDep, session: SessionDep, now: NowDep, task_id: uuid.UUID, body: TaskDecline
) -> RoutingTaskRead:
    return _task_read(
        await routing.answer(session, principal, task_id, "decline", reason=body.reason, now=now), now
    )


@routing_router.post(
    "/routing-tasks/{task_id}/complete", responses=_TASK, summary="My organization's part is done"
)
async def complete_routing_task(
    principal: PrincipalDep, session: SessionDep, now: NowDep, task_id: uuid.UUID
) -> RoutingTaskRead:
    return _task_read(
        await routing.answer(session, principal, task_id, "complete", reason=None, now=now), now
    )


# ---------------------------------------------------------------------------------------------
# Meetings


def _meeting_read(meeting: PoolMeeting, view: meetings.MeetingView | None = None) -> MeetingRead:
    items = view.items if view else []
    show = view.show_minutes if view else False
    return MeetingRead(
        id=meeting.id,
        pool_id=meeting.pool_id,
        scheduled_at=meeting.scheduled_at,
        location=meeting.location,
        status=meeting.status,
        attendee_user_ids=meeting.attendee_user_ids,
        agenda=[
            MeetingItemRead(
                dossier_id=i.dossier_id,
                position=i.position,
                minutes=i.minutes if show else None,
                decision=i.decision if show else None,
                decision_note=i.decision_note if show else None,
                recorded_at=i.recorded_at,
            )
            for i in items
        ],
    )


@meetings_router.post(
    "/pools/{pool_id}/meetings",
    status_code=status.HTTP_201_CREATED,
    responses={403: {"description": "Members and coordinators only"}},
    summary="Schedule a pool meeting with its agenda",
)
async def schedule_meeting(
    principal: PrincipalDep, session: SessionDep, now: NowDep, pool_id: uuid.UUID, body: MeetingCreate
) -> MeetingRead:
    meeting = await meetings.schedule(session, principal, pool_id, body, now=now)
    return _meeting_read(meeting, await meetings.get(session, principal, meeting.id, now=now))


@meetings_router.get("/pools/{pool_id}/meetings", summary="A pool's meetings (without agenda)")
async def list_pool_meetings(
    principal: PrincipalDep, session: SessionDep, pool_id: uuid.UUID
) -> list[MeetingRead]:
    return [_meeting_read(m) for m in await meetings.list_for_pool(session, principal, pool_id)]


@meetings_router.get(
    "/meetings/{meeting_id}", responses={404: {"description": "No such meeting"}}, summary="A meeting"
)
async def get_meeting(
    principal: PrincipalDep, session: SessionDep, now: NowDep, meeting_id: uuid.UUID
) -> MeetingRead:
    view = await meetings.get(session, principal, meeting_id, now=now)
    return _meeting_read(view.meeting, view)


@meetings_router.put(
    "/meetings/{meeting_id}/items/{dossier_id}",
    responses={404: {"description": "No such meeting or agenda item"}},
    summary="Minutes and decision for one dossier on the agenda",
)
async def record_meeting_item(
    principal: PrincipalDep,
    session: SessionDep,
    now: NowDep,
    meeting_id: uuid.UUID,
    dossier_id: uuid.UUID,
    body: MeetingItemUpdate,
) -> MeetingItemRead:
    item = await meetings.record_item(session, principal, meeting_id, dossier_id, body, now=now)
    return MeetingItemRead.model_validate(item)


@meetings_router.get("/me/meetings", summary="My upcoming pool meetings")
async def my_meetings(principal: PrincipalDep, session: SessionDep, now: NowDep) -> list[MeetingRead]:
    return [_meeting_read(m) for m in await meetings.upcoming_for_me(session, principal, now=now)]
