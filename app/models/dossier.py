"""The cartella sociale: one per person per ambito, its timeline, entries, participants."""

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
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.enums import (
    Compartment,
    ConfidentialityLabel,
    DossierState,
    NeedArea,
    ParticipantBasis,
    Section,
    Urgency,
)
from app.models.base import Base, IdMixin, TimestampMixin, str_enum, values_check


def _same_ambito(column: str, table: str, name: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        [column, "ambito_id"], [f"{table}.id", f"{table}.ambito_id"], name=name, ondelete="RESTRICT"
    )


# Need areas that are themselves special-category data (policy.NEED_AREA_LABEL gives their
# labels), each with a partial index: the predicate as SQL, repeated by the query that uses it.
SPECIAL_NEED_PREDICATE: dict[NeedArea, str] = {
    area: f"need_areas @> ARRAY['{area.value}']::varchar[]"
    for area in (NeedArea.dipendenze, NeedArea.salute_mentale, NeedArea.violenza)
}


class Dossier(IdMixin, TimestampMixin, Base):
    __tablename__ = "dossier"

    ambito_id: Mapped[uuid.UUID]
    person_id: Mapped[uuid.UUID]
    state: Mapped[DossierState] = mapped_column(str_enum(DossierState, "dossier_state"))
    compartment: Mapped[Compartment] = mapped_column(str_enum(Compartment, "compartment"))
    need_areas: Mapped[list[str]] = mapped_column(ARRAY(String(20)))
    urgency: Mapped[Urgency] = mapped_column(str_enum(Urgency, "urgency"))
    # Copied from the person so that "social workers of the residence comune" is one indexed test.
    residence_comune_id: Mapped[uuid.UUID]
    case_manager_user_id: Mapped[uuid.UUID | None]
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(500))
    follow_up_on: Mapped[date | None] = mapped_column(Date)
    # No routing rule matched the last referral and no pool has it yet: the coordinator's queue.
    awaiting_routing: Mapped[bool] = mapped_column(server_default="false", default=False)
    version: Mapped[int] = mapped_column(Integer, server_default="1")

    __mapper_args__ = {"version_id_col": version, "eager_defaults": True}  # noqa: RUF012

    __table_args__ = (
        Index("uq_dossier_ambito_person", "ambito_id", "person_id", unique=True),
        # A person's dossier id without visiting the dossier: the name search (migration 0013).
        Index("ix_dossier_person", "person_id", postgresql_include=["id"]),
        Index("uq_dossier_id_ambito", "id", "ambito_id", unique=True),
        # The ambito's dossiers newest first, without walking the other ambiti's (0018).
        Index("ix_dossier_ambito_id", "ambito_id", "id"),
        Index("ix_dossier_ambito_residence", "ambito_id", "residence_comune_id", "id"),
        Index("ix_dossier_ambito_state", "ambito_id", "state", "id"),  # one state, newest first
        Index("ix_dossier_case_manager", "case_manager_user_id", "id"),
        Index("ix_dossier_awaiting_routing", "ambito_id", postgresql_where=text("awaiting_routing")),
        # A special-category need area's dossiers, newest first (migration 0016).
        *(
            Index(f"ix_dossier_need_{area.value}", "ambito_id", "id", postgresql_where=text(predicate))
            for area, predicate in SPECIAL_NEED_PREDICATE.items()
        ),
        CheckConstraint(values_check("need_areas", NeedArea), name="need_areas_known"),
        ForeignKeyConstraint(["ambito_id"], ["ambito.id"], ondelete="RESTRICT"),
        _same_ambito("person_id", "person", "fk_dossier_person_same_ambito"),
        _same_ambito("residence_comune_id", "comune", "fk_dossier_residence_same_ambito"),
        ForeignKeyConstraint(
            ["case_manager_user_id", "ambito_id"],
            ["app_user.id", "app_user.ambito_id"],
            name="fk_dossier_case_manager_same_ambito",
            ondelete="RESTRICT",
        ),
    )


class DossierEvent(IdMixin, Base):
    """One line of the dossier's timeline: transitions, referrals, assignments, consents…"""

    __tablename__ = "dossier_event"

    ambito_id: Mapped[uuid.UUID]
    dossier_id: Mapped[uuid.UUID]
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    kind: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[DossierState | None] = mapped_column(str_enum(DossierState, "from_state"))
    to_state: Mapped[DossierState | None] = mapped_column(str_enum(DossierState, "to_state"))
    reason: Mapped[str | None] = mapped_column(String(2000))
    # An event that tells of special-category data carries its labels and is hidden with them.
    labels: Mapped[list[str]] = mapped_column(ARRAY(String(3)), server_default="{}")
    actor_kind: Mapped[str | None] = mapped_column(String(16))
    actor_id: Mapped[uuid.UUID | None]
    actor_organization_id: Mapped[uuid.UUID | None]
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}", default=dict)

    __table_args__ = (
        Index("ix_dossier_event_dossier", "dossier_id", "id"),
        CheckConstraint(values_check("labels", ConfidentialityLabel), name="labels_known"),
        _same_ambito("dossier_id", "dossier", "fk_dossier_event_dossier_same_ambito"),
    )


class DossierEntry(IdMixin, Base):
    """A note in one section of the dossier, possibly labelled as special-category data."""

    __tablename__ = "dossier_entry"

    ambito_id: Mapped[uuid.UUID]
    dossier_id: Mapped[uuid.UUID]
    section: Mapped[Section] = mapped_column(str_enum(Section, "section"))
    label: Mapped[ConfidentialityLabel | None] = mapped_column(str_enum(ConfidentialityLabel, "label"))
    text: Mapped[str] = mapped_column(Text)
    author_kind: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[uuid.UUID]
    author_organization_id: Mapped[uuid.UUID]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("ix_dossier_entry_dossier_section", "dossier_id", "section", "id"),
        CheckConstraint(
            "label IS NULL OR (label IN ('ETH', 'HIV', 'PSY') AND section = 'health') "
            "OR (label = 'SDV' AND section = 'violence')",
            name="label_matches_section",
        ),
        CheckConstraint("length(text) BETWEEN 1 AND 20000", name="text_length"),
        _same_ambito("dossier_id", "dossier", "fk_dossier_entry_dossier_same_ambito"),
    )


class DossierParticipant(IdMixin, TimestampMixin, Base):
    """An organization taking part in a dossier (pool member, provider, invited specialist).

    Its people see the dossier while the participation lasts and the citizen's consent (or a
    legal basis) covers the organization; `sections` narrows what they see, if set."""

    __tablename__ = "dossier_participant"

    ambito_id: Mapped[uuid.UUID]
    dossier_id: Mapped[uuid.UUID]
    organization_id: Mapped[uuid.UUID]
    basis: Mapped[ParticipantBasis] = mapped_column(str_enum(ParticipantBasis, "participant_basis"))
    sections: Mapped[list[str]] = mapped_column(ARRAY(String(20)), server_default="{}")
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(String(500))
    added_by_user_id: Mapped[uuid.UUID | None]

    __table_args__ = (
        Index("ix_dossier_participant_org", "organization_id", "dossier_id"),
        Index("ix_dossier_participant_dossier", "dossier_id"),
        CheckConstraint(values_check("sections", Section), name="sections_known"),
        _same_ambito("dossier_id", "dossier", "fk_dossier_participant_dossier_same_ambito"),
        _same_ambito("organization_id", "organization", "fk_dossier_participant_org_same_ambito"),
    )


class BreakGlass(IdMixin, Base):
    """Emergency access to a dossier one could not see: reasoned, time-bounded, reviewed by the DPO."""

    __tablename__ = "break_glass"

    ambito_id: Mapped[uuid.UUID]
    dossier_id: Mapped[uuid.UUID]
    user_id: Mapped[uuid.UUID]
    organization_id: Mapped[uuid.UUID]
    reason: Mapped[str] = mapped_column(String(2000))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reviewed_by_user_id: Mapped[uuid.UUID | None]
    review_note: Mapped[str | None] = mapped_column(String(2000))

    __table_args__ = (
        Index("ix_break_glass_user_dossier", "user_id", "dossier_id", "expires_at"),
        Index("ix_break_glass_unreviewed", "ambito_id", postgresql_where="reviewed_at IS NULL"),
        _same_ambito("dossier_id", "dossier", "fk_break_glass_dossier_same_ambito"),
    )
