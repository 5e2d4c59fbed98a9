"""Opaque API tokens for partner systems (cooperatives): hashed, scoped, expiring, revocable."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, ForeignKeyConstraint, LargeBinary, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.core.enums import Scope
from app.models.base import Base, IdMixin, TimestampMixin, values_check


class ApiToken(IdMixin, TimestampMixin, Base):
    __tablename__ = "api_token"

    ambito_id: Mapped[uuid.UUID]
    organization_id: Mapped[uuid.UUID] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(String(100))
    # The first characters of the secret, safe to show, so people can tell their tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    # SHA-256 of the whole secret; the secret itself is shown once and never stored.
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )

    __table_args__ = (
        CheckConstraint(values_check("scopes", Scope), name="scopes_known"),
        CheckConstraint("cardinality(scopes) >= 1", name="scopes_not_empty"),
        CheckConstraint("octet_length(secret_hash) = 32", name="secret_hash_sha256"),
        ForeignKeyConstraint(
            ["organization_id", "ambito_id"],
            ["organization.id", "organization.ambito_id"],
            name="fk_api_token_organization_same_ambito",
            ondelete="RESTRICT",
        ),
    )
