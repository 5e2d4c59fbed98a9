"""Pools, routing rules and routings, per-agency tasks, meetings: the API shapes."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from app.core.enums import (
    Compartment,
    MeetingDecision,
    MeetingStatus,
    NeedArea,
    PoolArea,
    PoolRole,
    TaskStatus,
    Urgency,
)
from app.schemas.common import Day, InputModel, Moment, Name, OutputModel

_NO_NUL = r"^[^\x00]*$"
Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=3, max_length=2000, pattern=_NO_NUL)
]
IstatCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{6}$")]


class PoolCreate(InputModel):
    name: Name
    area: PoolArea
    comune_ids: list[uuid.UUID] = Field(min_length=1, max_length=100, description="The pool's territory.")
    active_from: Day
    active_until: Day | None = None
    response_days: int = Field(default=5, ge=1, le=60, description="Working days each member has to answer.")


class PoolUpdate(InputModel):
    name: Name | None = None
    comune_ids: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=100)
    active_until: Day | None = None
    response_days: int | None = Field(default=None, ge=1, le=60)


class PoolMemberCreate(InputModel):
    organization_id: uuid.UUID
    user_id: uuid.UUID | None = Field(
        default=None, description="Only this user of the organization, not all of it."
    )
    role: PoolRole


class PoolMemberRead(OutputModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    user_id: uuid.UUID | None
    role: PoolRole
    added_at: datetime
    removed_at: datetime | None


class PoolRead(OutputModel):
    id: uuid.UUID
    name: str
    area: PoolArea
    comune_ids: list[uuid.UUID]
    active_from: date
    active_until: date | None
    response_days: int
    members: list[PoolMemberRead]


class RoutingRuleCreate(InputModel):
    name: Name
    priority: int = Field(ge=0, le=10_000, description="Lower first.")
    comune_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)
    need_areas: list[NeedArea] = Field(default_factory=list, max_length=len(NeedArea))
    urgencies: list[Urgency] = Field(default_factory=list, max_length=len(Urgency))
    min_age: int | None = Field(default=None, ge=0, le=130)
    max_age: int | None = Field(default=None, ge=0, le=130)
    target_pool_ids: list[uuid.UUID] = Field(min_length=1, max_length=20)
    active: bool = True


class RoutingRuleUpdate(InputModel):
    name: Name | None = None
    priority: int | None = Field(default=None, ge=0, le=10_000)
    active: bool | None = None


class RoutingRuleRead(OutputModel):
    id: uuid.UUID
    name: str
    priority: int
    active: bool
    comune_ids: list[uuid.UUID]
    need_areas: list[NeedArea]
    urgencies: list[Urgency]
    min_age: int | None
    max_age: int | None
    target_pool_ids: list[uuid.UUID]


class RoutingPreviewRequest(InputModel):
    residence_comune_istat: IstatCode
    need_areas: list[NeedArea] = Field(min_length=1, max_length=len(NeedArea))
    urgency: Urgency = Urgency.ordinaria
    birth_date: Day | None = None
    compartment: Compartment = Compartment.ordinary


class ConditionCheck(OutputModel):
    condition: str
    expected: list[str]
    actual: str | None
    matched: bool


class RuleEvaluationRead(OutputModel):
    rule_id: uuid.UUID
    name: str
    priority: int
    matched: bool
    checks: list[ConditionCheck]
    explanation: str


class PoolChoice(OutputModel):
    pool_id: uuid.UUID
    name: str
    rule_id: uuid.UUID
    note: str | None = None


class RoutingPreview(OutputModel):
    pools: list[PoolChoice]
    skipped: list[PoolChoice] = Field(
        description="Pools a matching rule named but that cannot take it, and why."
    )
    rules: list[RuleEvaluationRead]
    summary: str


class RoutingCreate(InputModel):
    pool_id: uuid.UUID
    reason: Reason


class RoutingEnd(InputModel):
    reason: Reason


class RoutingTransfer(InputModel):
    pool_id: uuid.UUID
    reason: Reason


class RoutingTaskRead(OutputModel):
    id: uuid.UUID
    routing_id: uuid.UUID
    dossier_id: uuid.UUID
    pool_id: uuid.UUID
    organization_id: uuid.UUID
    status: TaskStatus
    due_at: datetime
    overdue: bool
    answered_at: datetime | None
    reason: str | None


class RoutingRead(OutputModel):
    id: uuid.UUID
    dossier_id: uuid.UUID
    pool_id: uuid.UUID
    rule_id: uuid.UUID | None
    referral_id: uuid.UUID | None
    explanation: dict[str, Any]
    routed_at: datetime
    reason: str | None
    ended_at: datetime | None
    end_reason: str | None
    tasks: list[RoutingTaskRead]


class TaskDecline(InputModel):
    reason: Reason


class QueueUnrouted(OutputModel):
    dossier_id: uuid.UUID
    residence_comune_id: uuid.UUID
    urgency: Urgency
    need_areas: list[NeedArea] = Field(description="Need areas that are special categories are not shown.")
    has_special_categories: bool
    opened_at: datetime


class QueueOverdue(OutputModel):
    task: RoutingTaskRead
    days_overdue: int


class CoordinatorQueue(OutputModel):
    unrouted: list[QueueUnrouted]
    overdue: list[QueueOverdue]


class MeetingCreate(InputModel):
    scheduled_at: Moment = Field(description="With its UTC offset.")
    location: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=200, pattern=_NO_NUL)] | None
    ) = None
    attendee_user_ids: list[uuid.UUID] = Field(default_factory=list, max_length=50)
    agenda: list[uuid.UUID] = Field(
        default_factory=list, max_length=60, description="Dossiers routed to the pool."
    )


class MeetingItemUpdate(InputModel):
    minutes: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=20000, pattern=_NO_NUL)] | None
    ) = None
    decision: MeetingDecision | None = None
    decision_note: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000, pattern=_NO_NUL)] | None
    ) = None


class MeetingItemRead(OutputModel):
    dossier_id: uuid.UUID
    position: int
    minutes: str | None
    decision: MeetingDecision | None
    decision_note: str | None
    recorded_at: datetime | None


class MeetingRead(OutputModel):
    id: uuid.UUID
    pool_id: uuid.UUID
    scheduled_at: datetime
    location: str | None
    status: MeetingStatus
    attendee_user_ids: list[uuid.UUID]
    agenda: list[MeetingItemRead]
