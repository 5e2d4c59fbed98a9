"""Instruments of the Modello Operativo Dialogico: pre-assessment texts and competence scores."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from app.core.enums import InstrumentKind, Phase, PreAssessmentStatus, Viewpoint
from app.models.base import Base, IdMixin, TimestampMixin, str_enum


def _same_ambito(column: str, table: str, name: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        [column, "ambito_id"], [f"{table}.id", f"{table}.ambito_id"], name=name, ondelete="RESTRICT"
    )


class Instrument(IdMixin, Base):
    """A versioned instrument (question set, or competence scale and profile rule). Never edited:
    a new version is added, and what was measured with an old one keeps its meaning."""

    __tablename__ = "instrument"

    kind: Mapped[InstrumentKind] = mapped_column(str_enum(InstrumentKind, "instrument_kind"))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
    active: Mapped[bool] = mapped_column(server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("uq_instrument_kind_version", "kind", "version", unique=True),
        Index("uq_instrument_one_active", "kind", unique=True, postgresql_where=text("active")),
    )


class PreAssessment(IdMixin, TimestampMixin, Base):
    """The interview (colloquio): the citizen's words, answer by answer. Drafts change; a final one
    never does — a correction is a new version that points at it."""

    __tablename__ = "pre_assessment"

    ambito_id: Mapped[uuid.UUID]
    dossier_id: Mapped[uuid.UUID]
    instrument_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("instrument.id", ondelete="RESTRICT"))
    instrument_version: Mapped[int] = mapped_column(Integer)
    interview_date: Mapped[date] = mapped_column(Date)
    interviewer_user_id: Mapped[uuid.UUID]
    status: Mapped[PreAssessmentStatus] = mapped_column(
        str_enum(PreAssessmentStatus, "pre_assessment_status")
    )
    corrects_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("pre_assessment.id", ondelete="RESTRICT")
    )
    # The social worker's reading: the request as stated, the esigenza behind it, the objective.
    stated_request: Mapped[str | None] = mapped_column(Text)
    identified_need: Mapped[str | None] = mapped_column(Text)
    proposed_objective: Mapped[str | None] = mapped_column(Text)
    finalized_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, server_default="1")

    __mapper_args__ = {"version_id_col": version, "eager_defaults": True}  # noqa: RUF012

    __table_args__ = (
        Index("ix_pre_assessment_dossier", "dossier_id", "id"),
        Index("uq_pre_assessment_id_ambito", "id", "ambito_id", unique=True),
        CheckConstraint("status <> 'final' OR finalized_at IS NOT NULL", name="final_has_date"),
        _same_ambito("dossier_id", "dossier", "fk_pre_assessment_dossier_same_ambito"),
    )


class PreAssessmentAnswer(IdMixin, Base):
    __tablename__ = "pre_assessment_answer"

    ambito_id: Mapped[uuid.UUID]
    pre_assessment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pre_assessment.id", ondelete="CASCADE"))
    dossier_id: Mapped[uuid.UUID]
    position: Mapped[int] = mapped_column(SmallInteger)
    question_id: Mapped[str] = mapped_column(String(40))
    viewpoint: Mapped[Viewpoint] = mapped_column(str_enum(Viewpoint, "viewpoint"))
    other_role: Mapped[str | None] = mapped_column(String(60))
    text: Mapped[str] = mapped_column(Text)
    # Italian full text with accents folded (configuration snodo_italian, see migration 0006).
    search: Mapped[Any] = mapped_column(
        TSVECTOR, Computed("to_tsvector('snodo_italian'::regconfig, text)", persisted=True)
    )

    __table_args__ = (
        Index("ix_pre_assessment_answer_pa", "pre_assessment_id", "position"),
        Index("ix_pre_assessment_answer_search", "search", postgresql_using="gin"),
        Index("ix_pre_assessment_answer_dossier", "dossier_id"),
        CheckConstraint("length(text) BETWEEN 1 AND 20000", name="text_length"),
        CheckConstraint("viewpoint = 'other' OR other_role IS NULL", name="role_only_for_other"),
        CheckConstraint("viewpoint = 'respondent' OR other_role IS NOT NULL", name="other_has_role"),
        _same_ambito("dossier_id", "dossier", "fk_pre_assessment_answer_dossier_same_ambito"),
    )


class CompetenceEvaluation(IdMixin, Base):
    """Five scores at one phase, with the general profile computed by the server from the
    instrument version they were taken with. Never edited."""

    __tablename__ = "competence_evaluation"

    ambito_id: Mapped[uuid.UUID]
    dossier_id: Mapped[uuid.UUID]
    phase: Mapped[Phase] = mapped_column(str_enum(Phase, "phase"))
    pre_assessment_id: Mapped[uuid.UUID | None]
    instrument_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("instrument.id", ondelete="RESTRICT"))
    instrument_version: Mapped[int] = mapped_column(Integer)
    evaluated_on: Mapped[date] = mapped_column(Date)
    evaluator_user_id: Mapped[uuid.UUID]
    scores: Mapped[dict[str, Any]] = mapped_column(JSONB)
    profile: Mapped[Decimal] = mapped_column(Numeric(6, 3))
    note: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("ix_competence_evaluation_dossier", "dossier_id", "evaluated_on"),
        _same_ambito("dossier_id", "dossier", "fk_competence_evaluation_dossier_same_ambito"),
        ForeignKeyConstraint(
            ["pre_assessment_id", "ambito_id"],
            ["pre_assessment.id", "pre_assessment.ambito_id"],
            name="fk_competence_evaluation_pre_assessment_same_ambito",
            ondelete="RESTRICT",
        ),
    )
