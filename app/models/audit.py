"""The access log (registro accessi): append-only, hash-chained per ambito by a database trigger."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, LargeBinary, SmallInteger, String, Uuid, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.core.enums import AuditAction, Section
from app.models.base import Base, IdMixin, str_enum


class AuditEvent(IdMixin, Base):
    __tablename__ = "audit_event"

    ambito_id: Mapped[uuid.UUID]
    # Which of the ambito's chains (0-15) and the position in it, assigned by the trigger together
    # with the hashes: the lowest chain no concurrent transaction holds (migration 0010).
    chain: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    seq: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[uuid.UUID]
    organization_id: Mapped[uuid.UUID]
    action: Mapped[AuditAction] = mapped_column(str_enum(AuditAction, "audit_action"))
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[uuid.UUID | None]
    dossier_id: Mapped[uuid.UUID | None]
    # A list or a search: the dossiers it showed, in order ([] when it showed none); NULL for a row
    # about one dossier (`dossier_id`). A dossier's access log includes the lists that showed it.
    dossier_ids: Mapped[list[uuid.UUID] | None] = mapped_column(ARRAY(Uuid()))
    section: Mapped[Section | None] = mapped_column(str_enum(Section, "section"))
    purpose: Mapped[str] = mapped_column(String(40))
    request_id: Mapped[str | None] = mapped_column(String(128))
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))

    __table_args__ = (
        Index("uq_audit_event_chain", "ambito_id", "chain", "seq", unique=True),
        Index("ix_audit_event_dossier", "dossier_id", "occurred_at"),
        Index(
            "ix_audit_event_dossier_ids",
            "dossier_ids",
            postgresql_using="gin",
            postgresql_where=text("dossier_ids IS NOT NULL"),
        ),
        Index("ix_audit_event_actor", "actor_id", "occurred_at"),
    )


class AuditChainHead(Base):
    """The last link of each of an ambito's chains; only the trigger (SECURITY DEFINER) writes it."""

    __tablename__ = "audit_chain_head"

    ambito_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    chain: Mapped[int] = mapped_column(SmallInteger, primary_key=True, server_default="0")
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
