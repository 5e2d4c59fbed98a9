"""What the citizen allows to be shared, with whom, for what — or the legal basis that allows it."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, DateTime, ForeignKeyConstraint, Index, String, Uuid, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.core.enums import ConfidentialityLabel, ConsentPurpose, LegalBasis, OrganizationKind
from app.models.base import Base, IdMixin, str_enum, values_check


class Consent(IdMixin, Base):
    __tablename__ = "consent"

    ambito_id: Mapped[uuid.UUID]
    person_id: Mapped[uuid.UUID]
    # Who may receive: kinds of organization, and/or named organizations.
    organization_kinds: Mapped[list[str]] = mapped_column(ARRAY(String(20)), server_default="{}")
    organization_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid()), server_default="{}")
    purposes: Mapped[list[str]] = mapped_column(ARRAY(String(20)))
    # Special categories the citizen explicitly allows to be shared (none unless listed).
    labels: Mapped[list[str]] = mapped_column(ARRAY(String(3)), server_default="{}")
    legal_basis: Mapped[LegalBasis] = mapped_column(str_enum(LegalBasis, "legal_basis"))
    given_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(String(1000))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String(1000))
    recorded_by_kind: Mapped[str] = mapped_column(String(16))
    recorded_by_id: Mapped[uuid.UUID]
    recorded_by_organization_id: Mapped[uuid.UUID]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("ix_consent_person", "person_id"),
        CheckConstraint(values_check("organization_kinds", OrganizationKind), name="kinds_known"),
        CheckConstraint(values_check("purposes", ConsentPurpose), name="purposes_known"),
        CheckConstraint(values_check("labels", ConfidentialityLabel), name="labels_known"),
        CheckConstraint(
            "cardinality(organization_kinds) + cardinality(organization_ids) >= 1", name="has_recipients"
        ),
        ForeignKeyConstraint(
            ["person_id", "ambito_id"],
            ["person.id", "person.ambito_id"],
            name="fk_consent_person_same_ambito",
            ondelete="RESTRICT",
        ),
    )
