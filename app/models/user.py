"""Operators (users) of the partner organizations, and their identities at external issuers."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    func,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.core.enums import Role
from app.models.base import Base, IdMixin, TimestampMixin, values_check


class User(IdMixin, TimestampMixin, Base):
    """A person working for one organization, with one or more roles."""

    __tablename__ = "app_user"

    ambito_id: Mapped[uuid.UUID]
    organization_id: Mapped[uuid.UUID] = mapped_column(index=True)
    email: Mapped[str] = mapped_column(String(254))
    full_name: Mapped[str] = mapped_column(String(200))
    fiscal_code: Mapped[str | None] = mapped_column(String(16))
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    is_org_admin: Mapped[bool] = mapped_column(server_default="false", default=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(server_default=true(), default=True)
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # Logins are case-insensitive: one account per address, whatever the case typed.
        Index("uq_app_user_email_lower", func.lower(email), unique=True),
        Index("uq_app_user_fiscal_code", fiscal_code, unique=True, postgresql_where=fiscal_code.isnot(None)),
        Index("uq_app_user_id_ambito", "id", "ambito_id", unique=True),
        CheckConstraint(values_check("roles", Role), name="roles_known"),
        CheckConstraint("cardinality(roles) >= 1", name="roles_not_empty"),
        CheckConstraint("fiscal_code ~ '^[A-Z0-9]{16}$'", name="fiscal_code_format"),
        # The user's organization must be of the same ambito as the user.
        ForeignKeyConstraint(
            ["organization_id", "ambito_id"],
            ["organization.id", "organization.ambito_id"],
            name="fk_app_user_organization_same_ambito",
            ondelete="RESTRICT",
        ),
    )


class ExternalIdentity(IdMixin, TimestampMixin, Base):
    """Links a subject at an external OIDC issuer (SPID/CIE gateway, Keycloak) to a local user."""

    __tablename__ = "external_identity"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))

    __table_args__ = (Index("uq_external_identity_issuer_subject", "issuer", "subject", unique=True),)
