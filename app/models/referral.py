"""The scheda di segnalazione: versioned form definitions, submitted referrals, idempotency."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.enums import Compartment, ConfidentialityLabel, NeedArea, Urgency
from app.models.base import Base, IdMixin, str_enum, values_check


class ReferralForm(IdMixin, Base):
    """One version of the form. Versions are never edited; a new one is added and activated."""

    __tablename__ = "referral_form"

    version: Mapped[int] = mapped_column(Integer, unique=True)
    title: Mapped[str] = mapped_column(String(200))
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
    active: Mapped[bool] = mapped_column(server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("uq_referral_form_one_active", "active", unique=True, postgresql_where=text("active")),
    )


class Referral(IdMixin, Base):
    """A submitted referral. Immutable (a trigger refuses changes) except for the one-time link to
    a person and dossier when its identity had to be confirmed by a social worker."""

    __tablename__ = "referral"

    ambito_id: Mapped[uuid.UUID]
    form_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_form.id", ondelete="RESTRICT"))
    form_version: Mapped[int] = mapped_column(Integer)
    submitted_by_kind: Mapped[str] = mapped_column(String(16))
    submitted_by_id: Mapped[uuid.UUID]
    submitting_organization_id: Mapped[uuid.UUID]
    submitted_person: Mapped[dict[str, Any]] = mapped_column(JSONB)
    answers: Mapped[dict[str, Any]] = mapped_column(JSONB)
    need_areas: Mapped[list[str]] = mapped_column(ARRAY(String(20)))
    labels: Mapped[list[str]] = mapped_column(ARRAY(String(3)), server_default="{}")
    urgency: Mapped[Urgency] = mapped_column(str_enum(Urgency, "urgency"))
    compartment: Mapped[Compartment] = mapped_column(str_enum(Compartment, "compartment"))
    residence_comune_id: Mapped[uuid.UUID]
    corrects_referral_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("referral.id", ondelete="RESTRICT")
    )
    # `pending` until a social worker says which person it is about (possible duplicate).
    identification: Mapped[str] = mapped_column(String(10))
    candidate_person_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid()), server_default="{}")
    person_id: Mapped[uuid.UUID | None]
    dossier_id: Mapped[uuid.UUID | None]
    identified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    identified_by_user_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("ix_referral_dossier", "dossier_id", "id"),
        Index("ix_referral_submitter", "submitting_organization_id", "id"),
        Index(
            "ix_referral_pending",
            "ambito_id",
            "residence_comune_id",
            postgresql_where=text("identification = 'pending'"),
        ),
        CheckConstraint("identification IN ('resolved', 'pending')", name="identification_known"),
        CheckConstraint("(identification = 'pending') = (dossier_id IS NULL)", name="dossier_iff_identified"),
        CheckConstraint(values_check("need_areas", NeedArea), name="need_areas_known"),
        CheckConstraint(values_check("labels", ConfidentialityLabel), name="labels_known"),
        ForeignKeyConstraint(["ambito_id"], ["ambito.id"], ondelete="RESTRICT"),
        ForeignKeyConstraint(
            ["dossier_id", "ambito_id"],
            ["dossier.id", "dossier.ambito_id"],
            name="fk_referral_dossier_same_ambito",
            ondelete="RESTRICT",
        ),
        ForeignKeyConstraint(
            ["person_id", "ambito_id"],
            ["person.id", "person.ambito_id"],
            name="fk_referral_person_same_ambito",
            ondelete="RESTRICT",
        ),
        ForeignKeyConstraint(
            ["submitting_organization_id", "ambito_id"],
            ["organization.id", "organization.ambito_id"],
            name="fk_referral_submitter_same_ambito",
            ondelete="RESTRICT",
        ),
    )


class IdempotencyRecord(IdMixin, Base):
    """The first answer to a (caller, Idempotency-Key): replayed for the same body, refused for another."""

    __tablename__ = "idempotency_record"

    caller: Mapped[str] = mapped_column(String(60))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("uq_idempotency_caller_key", "caller", "key", unique=True),
        Index("ix_idempotency_created", "created_at"),
    )
