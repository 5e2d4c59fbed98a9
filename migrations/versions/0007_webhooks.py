"""webhooks: subscriptions, deliveries, inbound senders and events; outbox order; scope webhooks:manage

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 00:39:14.134060
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


OLD_SCOPES = (
    "'referrals:read', 'referrals:write', 'dossiers:read', 'interventions:read', 'interventions:write', "
    "'placements:read', 'placements:write', 'community-resources:read', 'community-resources:write'"
)
NEW_SCOPES = OLD_SCOPES + ", 'webhooks:manage'"
RLS_TABLES = ("webhook_subscription", "webhook_delivery", "inbound_event")
CONDITION = (
    "(current_setting('snodo.ambito_id', true) = '*' "
    "OR ambito_id = nullif(nullif(current_setting('snodo.ambito_id', true), ''), '*')::uuid)"
)


def _scopes(values: str) -> None:
    op.drop_constraint(op.f("ck_api_token_scopes_known"), "api_token", type_="check")
    op.create_check_constraint("scopes_known", "api_token", f"scopes <@ ARRAY[{values}]::varchar[]")


def upgrade() -> None:
    _scopes(NEW_SCOPES)
    op.create_table(
        "inbound_sender",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("previous_secret_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("previous_valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id", "ambito_id"],
            ["organization.id", "organization.ambito_id"],
            name="fk_inbound_sender_org_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_sender")),
    )
    op.create_table(
        "webhook_subscription",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("event_types", postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("previous_secret_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("previous_valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "active", "paused", name="subscription_status", native_enum=False, create_constraint=True
            ),
            nullable=False,
        ),
        sa.Column("paused_reason", sa.String(length=500), nullable=True),
        sa.Column("failure_streak", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by_kind", sa.String(length=16), nullable=False),
        sa.Column("created_by_id", sa.Uuid(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id", "ambito_id"],
            ["organization.id", "organization.ambito_id"],
            name="fk_webhook_subscription_org_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscription")),
    )
    op.create_index(
        "ix_webhook_subscription_ambito",
        "webhook_subscription",
        ["ambito_id"],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "inbound_event",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("sender_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=80), nullable=True),
        sa.Column("body_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "status",
            sa.Enum("applied", "rejected", name="inbound_status", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("response_status", sa.SmallInteger(), nullable=False),
        sa.Column("response_body", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sender_id"],
            ["inbound_sender.id"],
            name=op.f("fk_inbound_event_sender_id_inbound_sender"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_event")),
    )
    op.create_index("uq_inbound_event_sender_event", "inbound_event", ["sender_id", "event_id"], unique=True)
    op.create_table(
        "webhook_delivery",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("dossier_id", sa.Uuid(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "in_progress",
                "delivered",
                "dead",
                name="delivery_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.SmallInteger(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["webhook_subscription.id"],
            name=op.f("fk_webhook_delivery_subscription_id_webhook_subscription"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_delivery")),
    )
    op.create_index(
        "ix_webhook_delivery_due",
        "webhook_delivery",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('pending', 'in_progress')"),
    )
    op.create_index(
        "ix_webhook_delivery_open_per_dossier",
        "webhook_delivery",
        ["subscription_id", "dossier_id", "event_seq"],
        unique=False,
        postgresql_where=sa.text("status IN ('pending', 'in_progress')"),
    )
    op.create_index(
        "ix_webhook_delivery_subscription", "webhook_delivery", ["subscription_id", "id"], unique=False
    )
    op.create_index(
        "uq_webhook_delivery_event", "webhook_delivery", ["subscription_id", "event_id"], unique=True
    )
    op.add_column("outbox_event", sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False))
    op.create_unique_constraint(op.f("uq_outbox_event_seq"), "outbox_event", ["seq"])
    for table in RLS_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING {CONDITION} WITH CHECK {CONDITION}")


def downgrade() -> None:
    op.execute("DELETE FROM api_token WHERE 'webhooks:manage' = ANY(scopes)")
    _scopes(OLD_SCOPES)
    op.drop_constraint(op.f("uq_outbox_event_seq"), "outbox_event", type_="unique")
    op.drop_column("outbox_event", "seq")
    op.drop_index("uq_webhook_delivery_event", table_name="webhook_delivery")
    op.drop_index("ix_webhook_delivery_subscription", table_name="webhook_delivery")
    op.drop_index(
        "ix_webhook_delivery_open_per_dossier",
        table_name="webhook_delivery",
        postgresql_where=sa.text("status IN ('pending', 'in_progress')"),
    )
    op.drop_index(
        "ix_webhook_delivery_due",
        table_name="webhook_delivery",
        postgresql_where=sa.text("status IN ('pending', 'in_progress')"),
    )
    op.drop_table("webhook_delivery")
    op.drop_index("uq_inbound_event_sender_event", table_name="inbound_event")
    op.drop_table("inbound_event")
    op.drop_index(
        "ix_webhook_subscription_ambito",
        table_name="webhook_subscription",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_table("webhook_subscription")
    op.drop_table("inbound_sender")
