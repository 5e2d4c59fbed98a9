"""Events written in the same transaction as the change that causes them; delivered later."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin


class OutboxEvent(IdMixin, Base):
    __tablename__ = "outbox_event"

    ambito_id: Mapped[uuid.UUID]
    # Commit order per dossier: events of a dossier are written under its row lock, so a later
    # event of the same dossier always gets a higher number.
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    event_type: Mapped[str] = mapped_column(String(60))
    dossier_id: Mapped[uuid.UUID | None]
    # The minimum: ids, type, state. Never dossier content (receivers fetch with their own rights).
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_outbox_event_ambito", "ambito_id", "id"),)
    # seq (identity) and created_at come back with the INSERT: the fan-out reads them at once.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012
