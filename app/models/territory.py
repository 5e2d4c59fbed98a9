"""The tenant (Ambito territoriale) and its comuni."""

from __future__ import annotations

import uuid

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, TimestampMixin


class Ambito(IdMixin, TimestampMixin, Base):
    """A district of comuni with one Ufficio di Piano: the tenant every row belongs to."""

    __tablename__ = "ambito"

    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))

    __table_args__ = (CheckConstraint("code ~ '^[A-Z0-9_-]{1,32}$'", name="code_format"),)


class Comune(IdMixin, TimestampMixin, Base):
    """A municipality, identified by its ISTAT code; it belongs to exactly one ambito."""

    __tablename__ = "comune"

    ambito_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ambito.id", ondelete="RESTRICT"), index=True)
    istat_code: Mapped[str] = mapped_column(String(6), unique=True)
    cadastral_code: Mapped[str | None] = mapped_column(String(4), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    province: Mapped[str] = mapped_column(String(2))

    __table_args__ = (
        CheckConstraint("istat_code ~ '^[0-9]{6}$'", name="istat_code_format"),
        CheckConstraint("cadastral_code ~ '^[A-Z][0-9]{3}$'", name="cadastral_code_format"),
        CheckConstraint("province ~ '^[A-Z]{2}$'", name="province_format"),
        # Lets other tables require "a comune of the same ambito" with one composite key.
        UniqueConstraint("id", "ambito_id", name="uq_comune_id_ambito"),
    )
