"""Pools territoriali, their members, routing rules and decisions, per-agency tasks, meetings."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.enums import (
    MeetingDecision,
    MeetingStatus,
    NeedArea,
    PoolArea,
    PoolRole,
    TaskStatus,
    Urgency,
)
from app.models.base import Base, IdMixin, TimestampMixin, str_enum, values_check


def _same_ambito(column: str, table: str, name: str, ondelete: str = "RESTRICT") -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        [column, "ambito_id"], [f"{table}.id", f"{table}.ambito_id"], name=name, ondelete=ondelete
    )


class Pool(IdMixin, TimestampMixin, Base):
    __tablename__ = "pool"

    ambito_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(200))
    area: Mapped[PoolArea] = mapped_column(str_enum(PoolArea, "area"))
    active_from: Mapped[date] = mapped_column(Date)
    active_until: Mapped[date | None] = mapped_column(Date)
    # How many working days each member organization has to answer a routing.
    response_days: Mapped[int] = mapped_column(SmallInteger, server_default="5")

    __table_args__ = (
        Index("uq_pool_ambito_name", "ambito_id", "name", unique=True),
        Index("uq_pool_id_ambito", "id", "ambito_id", unique=True),
        CheckConstraint("response_days BETWEEN 1 AND 60", name="response_days_range"),
        CheckConstraint("active_until IS NULL OR active_until >= active_from", name="period_order"),
        ForeignKeyConstraint(["ambito_id"], ["ambito.id"], ondelete="RESTRICT"),
    )


class PoolComune(Base):
    """The territory of a pool: one or more comuni of its ambito."""

    __tablename__ = "pool_comune"

    pool_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    comune_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    ambito_id: Mapped[uuid.UUID]

    __table_args__ = (
        Index("ix_pool_comune_comune", "comune_id"),
        _same_ambito("pool_id", "pool", "fk_pool_comune_pool_same_ambito", "CASCADE"),
        _same_ambito("comune_id", "comune", "fk_pool_comune_comune_same_ambito"),
    )


class PoolMember(IdMixin, Base):
    """A member organization (all its people) or a named user of it, with a role in the pool."""

    __tablename__ = "pool_member"

    ambito_id: Mapped[uuid.UUID]
    pool_id: Mapped[uuid.UUID]
    organization_id: Mapped[uuid.UUID]
    user_id: Mapped[uuid.UUID | None]
    role: Mapped[PoolRole] = mapped_column(str_enum(PoolRole, "pool_role"))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index(
            "ix_pool_member_org", "organization_id", "pool_id", postgresql_where=text("removed_at IS NULL")
        ),
        Index("ix_pool_member_pool", "pool_id"),
        _same_ambito("pool_id", "pool", "fk_pool_member_pool_same_ambito", "CASCADE"),
        _same_ambito("organization_id", "organization", "fk_pool_member_org_same_ambito"),
        ForeignKeyConstraint(
            ["user_id", "ambito_id"],
            ["app_user.id", "app_user.ambito_id"],
            name="fk_pool_member_user_same_ambito",
            ondelete="RESTRICT",
        ),
    )


class RoutingRule(IdMixin, TimestampMixin, Base):
    """Which referrals go to which pools. Empty conditions match anything."""

    __tablename__ = "routing_rule"

    ambito_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(200))
    priority: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(server_default="true")
    comune_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid()), server_default="{}")
    need_areas: Mapped[list[str]] = mapped_column(ARRAY(String(20)), server_default="{}")
    urgencies: Mapped[list[str]] = mapped_column(ARRAY(String(12)), server_default="{}")
    min_age: Mapped[int | None] = mapped_column(SmallInteger)
    max_age: Mapped[int | None] = mapped_column(SmallInteger)
    target_pool_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid()))

    __table_args__ = (
        Index("ix_routing_rule_ambito", "ambito_id", "priority"),
        CheckConstraint(values_check("need_areas", NeedArea), name="need_areas_known"),
        CheckConstraint(values_check("urgencies", Urgency), name="urgencies_known"),
        CheckConstraint("cardinality(target_pool_ids) >= 1", name="has_targets"),
        CheckConstraint("min_age IS NULL OR max_age IS NULL OR min_age <= max_age", name="age_band"),
        ForeignKeyConstraint(["ambito_id"], ["ambito.id"], ondelete="RESTRICT"),
    )


class DossierRouting(IdMixin, Base):
    """The dossier is routed to this pool, since `routed_at`, until `ended_at`."""

    __tablename__ = "dossier_routing"

    ambito_id: Mapped[uuid.UUID]
    dossier_id: Mapped[uuid.UUID]
    pool_id: Mapped[uuid.UUID]
    rule_id: Mapped[uuid.UUID | None]
    referral_id: Mapped[uuid.UUID | None]
    explanation: Mapped[dict[str, Any]] = mapped_column(JSONB)
    routed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    routed_by_user_id: Mapped[uuid.UUID | None]
    reason: Mapped[str | None] = mapped_column(String(2000))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_by_user_id: Mapped[uuid.UUID | None]
    end_reason: Mapped[str | None] = mapped_column(String(2000))

    __table_args__ = (
        Index(
            "uq_dossier_routing_active",
            "dossier_id",
            "pool_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index(
            "ix_dossier_routing_pool_active",
            "pool_id",
            "dossier_id",
            postgresql_where=text("ended_at IS NULL"),
        ),
        _same_ambito("dossier_id", "dossier", "fk_dossier_routing_dossier_same_ambito"),
        _same_ambito("pool_id", "pool", "fk_dossier_routing_pool_same_ambito"),
    )


class RoutingTask(IdMixin, Base):
    """One member organization's part in a routing: requested → accepted | declined → completed."""

    __tablename__ = "routing_task"

    ambito_id: Mapped[uuid.UUID]
    routing_id: Mapped[uuid.UUID]
    dossier_id: Mapped[uuid.UUID]
    pool_id: Mapped[uuid.UUID]
    organization_id: Mapped[uuid.UUID]
    status: Mapped[TaskStatus] = mapped_column(str_enum(TaskStatus, "task_status"))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered_by_kind: Mapped[str | None] = mapped_column(String(16))
    answered_by_id: Mapped[uuid.UUID | None]
    reason: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("uq_routing_task_org", "routing_id", "organization_id", unique=True),
        Index("ix_routing_task_org_status", "organization_id", "status"),
        Index(
            "ix_routing_task_overdue", "ambito_id", "due_at", postgresql_where=text("status = 'requested'")
        ),
        # The worklist's `overdue` filter: dossiers awaiting an answer, newest first (0017).
        Index(
            "ix_routing_task_awaiting",
            "ambito_id",
            "dossier_id",
            "due_at",
            postgresql_where=text("status = 'requested'"),
        ),
        Index("ix_routing_task_dossier", "dossier_id"),
        CheckConstraint("status <> 'declined' OR reason IS NOT NULL", name="declined_has_reason"),
        ForeignKeyConstraint(["routing_id"], ["dossier_routing.id"], ondelete="CASCADE"),
        _same_ambito("dossier_id", "dossier", "fk_routing_task_dossier_same_ambito"),
        _same_ambito("organization_id", "organization", "fk_routing_task_org_same_ambito"),
    )


class PoolMeeting(IdMixin, TimestampMixin, Base):
    __tablename__ = "pool_meeting"

    ambito_id: Mapped[uuid.UUID]
    pool_id: Mapped[uuid.UUID]
    scheduled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    location: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[MeetingStatus] = mapped_column(str_enum(MeetingStatus, "meeting_status"))
    attendee_user_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid()), server_default="{}")
    created_by_user_id: Mapped[uuid.UUID | None]

    __table_args__ = (
        Index("ix_pool_meeting_pool_time", "pool_id", "scheduled_at"),
        _same_ambito("pool_id", "pool", "fk_pool_meeting_pool_same_ambito"),
    )


class PoolMeetingItem(IdMixin, Base):
    """A dossier on a meeting's agenda, its minutes and the decision taken about it."""

    __tablename__ = "pool_meeting_item"

    ambito_id: Mapped[uuid.UUID]
    meeting_id: Mapped[uuid.UUID]
    dossier_id: Mapped[uuid.UUID]
    position: Mapped[int] = mapped_column(SmallInteger)
    minutes: Mapped[str | None] = mapped_column(Text)
    decision: Mapped[MeetingDecision | None] = mapped_column(str_enum(MeetingDecision, "meeting_decision"))
    decision_note: Mapped[str | None] = mapped_column(String(2000))
    recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recorded_by_user_id: Mapped[uuid.UUID | None]

    __table_args__ = (
        Index("uq_pool_meeting_item", "meeting_id", "dossier_id", unique=True),
        CheckConstraint("minutes IS NULL OR length(minutes) <= 20000", name="minutes_length"),
        ForeignKeyConstraint(["meeting_id"], ["pool_meeting.id"], ondelete="CASCADE"),
        _same_ambito("dossier_id", "dossier", "fk_pool_meeting_item_dossier_same_ambito"),
    )
