"""Login sessions, rotating refresh tokens, and the append-only log of authentication events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, LargeBinary, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.enums import AuthEventKind
from app.models.base import Base, IdMixin, str_enum


class AuthSession(IdMixin, Base):
    """One SPA login: the family of refresh tokens it rotates through. Revoking it ends them all,
    and the access tokens that carry its id (`sid`) stop working on the next request."""

    __tablename__ = "auth_session"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String(40))
    client_address: Mapped[str | None] = mapped_column(String(64))


class RefreshToken(IdMixin, Base):
    __tablename__ = "refresh_token"

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_session.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Set when exchanged for a new one; presenting it again means it was stolen.
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuthEvent(IdMixin, Base):
    """Append-only (a trigger refuses UPDATE and DELETE)."""

    __tablename__ = "auth_event"

    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    kind: Mapped[AuthEventKind] = mapped_column(str_enum(AuthEventKind, "auth_event_kind"))
    user_id: Mapped[uuid.UUID | None]
    api_token_id: Mapped[uuid.UUID | None]
    organization_id: Mapped[uuid.UUID | None]
    # What was typed as the login name: failures are counted per account with it.
    login: Mapped[str | None] = mapped_column(String(254))
    client_address: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}", default=dict)

    __table_args__ = (
        Index("ix_auth_event_login_time", "login", "occurred_at", postgresql_where=login.isnot(None)),
        Index("ix_auth_event_address_time", "client_address", "occurred_at"),
        Index("ix_auth_event_time", "occurred_at"),
    )
