"""The bodies that work in an ambito: comuni, Ufficio di Piano, ASST, AFOL, cooperatives…"""

from __future__ import annotations

import uuid

from sqlalchemy import CheckConstraint, ForeignKeyConstraint, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from app.core.enums import OrganizationKind
from app.models.base import Base, IdMixin, TimestampMixin, str_enum


class Organization(IdMixin, TimestampMixin, Base):
    __tablename__ = "organization"

    ambito_id: Mapped[uuid.UUID]  # indexed by the unique (ambito_id, name)
    kind: Mapped[OrganizationKind] = mapped_column(str_enum(OrganizationKind, "organization_kind"))
    name: Mapped[str] = mapped_column(String(200))
    comune_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    tax_code: Mapped[str | None] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(server_default=true(), default=True)

    __table_args__ = (
        UniqueConstraint("ambito_id", "name"),
        # Target of "an organization of the same ambito" composite foreign keys.
        UniqueConstraint("id", "ambito_id", name="uq_organization_id_ambito"),
        CheckConstraint("kind <> 'comune' OR comune_id IS NOT NULL", name="comune_has_comune"),
        ForeignKeyConstraint(["ambito_id"], ["ambito.id"], ondelete="RESTRICT"),
        # The comune of an organization must be a comune of the same ambito.
        ForeignKeyConstraint(
            ["comune_id", "ambito_id"],
            ["comune.id", "comune.ambito_id"],
            name="fk_organization_comune_same_ambito",
            ondelete="RESTRICT",
        ),
    )
