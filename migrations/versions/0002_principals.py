"""principals: users, external identities, sessions, refresh tokens, API tokens, auth events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 23:42:52.750084
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


APPEND_ONLY_FUNCTION = """
CREATE FUNCTION snodo_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""


def upgrade() -> None:
    op.create_unique_constraint("uq_organization_id_ambito", "organization", ["id", "ambito_id"])
    op.create_table(
        "auth_event",
        sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "login_succeeded",
                "login_failed",
                "login_throttled",
                "refresh_succeeded",
                "refresh_reuse_detected",
                "refresh_rejected",
                "logout",
                "access_token_rejected",
                "oidc_rejected",
                "api_token_created",
                "api_token_revoked",
                "api_token_rejected",
                name="auth_event_kind",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("api_token_id", sa.Uuid(), nullable=True),
        sa.Column("organization_id", sa.Uuid(), nullable=True),
        sa.Column("login", sa.String(length=254), nullable=True),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_event")),
    )
    op.create_index(
        "ix_auth_event_address_time", "auth_event", ["client_address", "occurred_at"], unique=False
    )
    op.create_index(
        "ix_auth_event_login_time",
        "auth_event",
        ["login", "occurred_at"],
        unique=False,
        postgresql_where=sa.text("login IS NOT NULL"),
    )
    op.create_index("ix_auth_event_time", "auth_event", ["occurred_at"], unique=False)
    op.create_table(
        "app_user",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("fiscal_code", sa.String(length=16), nullable=True),
        sa.Column("roles", sa.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("is_org_admin", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("fiscal_code ~ '^[A-Z0-9]{16}$'", name=op.f("ck_app_user_fiscal_code_format")),
        sa.CheckConstraint(
            "roles <@ ARRAY['platform_admin', 'coordinator', 'social_worker', 'health_operator', 'employment_operator', 'coop_operator', 'home_care', 'dpo']::varchar[]",
            name=op.f("ck_app_user_roles_known"),
        ),
        sa.CheckConstraint("cardinality(roles) >= 1", name=op.f("ck_app_user_roles_not_empty")),
        sa.ForeignKeyConstraint(
            ["organization_id", "ambito_id"],
            ["organization.id", "organization.ambito_id"],
            name="fk_app_user_organization_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
    )
    op.create_index(op.f("ix_app_user_organization_id"), "app_user", ["organization_id"], unique=False)
    op.create_index("uq_app_user_email_lower", "app_user", [sa.literal_column("lower(email)")], unique=True)
    op.create_index(
        "uq_app_user_fiscal_code",
        "app_user",
        ["fiscal_code"],
        unique=True,
        postgresql_where=sa.text("fiscal_code IS NOT NULL"),
    )
    op.create_table(
        "api_token",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("scopes", sa.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "scopes <@ ARRAY['referrals:read', 'referrals:write', 'dossiers:read', 'interventions:read', 'interventions:write', 'placements:read', 'placements:write', 'community-resources:read', 'community-resources:write']::varchar[]",
            name=op.f("ck_api_token_scopes_known"),
        ),
        sa.CheckConstraint("cardinality(scopes) >= 1", name=op.f("ck_api_token_scopes_not_empty")),
        sa.CheckConstraint("octet_length(secret_hash) = 32", name=op.f("ck_api_token_secret_hash_sha256")),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["app_user.id"],
            name=op.f("fk_api_token_created_by_user_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "ambito_id"],
            ["organization.id", "organization.ambito_id"],
            name="fk_api_token_organization_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_token")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_api_token_secret_hash")),
    )
    op.create_index(op.f("ix_api_token_organization_id"), "api_token", ["organization_id"], unique=False)
    op.create_table(
        "auth_session",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=40), nullable=True),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_auth_session_user_id_app_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_session")),
    )
    op.create_index(op.f("ix_auth_session_user_id"), "auth_session", ["user_id"], unique=False)
    op.create_table(
        "external_identity",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_external_identity_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_identity")),
    )
    op.create_index(op.f("ix_external_identity_user_id"), "external_identity", ["user_id"], unique=False)
    op.create_index(
        "uq_external_identity_issuer_subject", "external_identity", ["issuer", "subject"], unique=True
    )
    op.create_table(
        "refresh_token",
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["auth_session.id"],
            name=op.f("fk_refresh_token_session_id_auth_session"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_token_token_hash")),
    )
    op.create_index(op.f("ix_refresh_token_session_id"), "refresh_token", ["session_id"], unique=False)

    # Authentication events are evidence: no UPDATE, no DELETE, no TRUNCATE, whoever asks.
    op.execute(APPEND_ONLY_FUNCTION)
    op.execute(
        "CREATE TRIGGER auth_event_append_only BEFORE UPDATE OR DELETE ON auth_event "
        "FOR EACH ROW EXECUTE FUNCTION snodo_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER auth_event_no_truncate BEFORE TRUNCATE ON auth_event "
        "FOR EACH STATEMENT EXECUTE FUNCTION snodo_refuse_change()"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_refresh_token_session_id"), table_name="refresh_token")
    op.drop_table("refresh_token")
    op.drop_index("uq_external_identity_issuer_subject", table_name="external_identity")
    op.drop_index(op.f("ix_external_identity_user_id"), table_name="external_identity")
    op.drop_table("external_identity")
    op.drop_index(op.f("ix_auth_session_user_id"), table_name="auth_session")
    op.drop_table("auth_session")
    op.drop_index(op.f("ix_api_token_organization_id"), table_name="api_token")
    op.drop_table("api_token")
    op.drop_index(
        "uq_app_user_fiscal_code", table_name="app_user", postgresql_where=sa.text("fiscal_code IS NOT NULL")
    )
    op.drop_index("uq_app_user_email_lower", table_name="app_user")
    op.drop_index(op.f("ix_app_user_organization_id"), table_name="app_user")
    op.drop_table("app_user")
    op.drop_index("ix_auth_event_time", table_name="auth_event")
    op.drop_index(
        "ix_auth_event_login_time", table_name="auth_event", postgresql_where=sa.text("login IS NOT NULL")
    )
    op.drop_index("ix_auth_event_address_time", table_name="auth_event")
    op.drop_table("auth_event")
    op.execute("DROP FUNCTION snodo_refuse_change()")
    op.drop_constraint("uq_organization_id_ambito", "organization", type_="unique")
