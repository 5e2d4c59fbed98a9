"""pools: territory, members, routing rules and routings, per-agency tasks, meetings

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 00:20:22.936083
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


RLS_TABLES = (
    "pool",
    "pool_comune",
    "pool_member",
    "routing_rule",
    "dossier_routing",
    "routing_task",
    "pool_meeting",
    "pool_meeting_item",
)
CONDITION = (
    "(current_setting('snodo.ambito_id', true) = '*' "
    "OR ambito_id = nullif(nullif(current_setting('snodo.ambito_id', true), ''), '*')::uuid)"
)


def upgrade() -> None:
    op.create_table(
        "pool",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "area",
            sa.Enum(
                "lavoro",
                "domiciliarita",
                "poverta",
                "minori",
                "violenza",
                "giovani",
                name="area",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("active_from", sa.Date(), nullable=False),
        sa.Column("active_until", sa.Date(), nullable=True),
        sa.Column("response_days", sa.SmallInteger(), server_default="5", nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "active_until IS NULL OR active_until >= active_from", name=op.f("ck_pool_period_order")
        ),
        sa.CheckConstraint("response_days BETWEEN 1 AND 60", name=op.f("ck_pool_response_days_range")),
        sa.ForeignKeyConstraint(
            ["ambito_id"], ["ambito.id"], name=op.f("fk_pool_ambito_id_ambito"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pool")),
    )
    op.create_index("uq_pool_ambito_name", "pool", ["ambito_id", "name"], unique=True)
    op.create_index("uq_pool_id_ambito", "pool", ["id", "ambito_id"], unique=True)
    op.create_table(
        "routing_rule",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("comune_ids", postgresql.ARRAY(sa.Uuid()), server_default="{}", nullable=False),
        sa.Column("need_areas", postgresql.ARRAY(sa.String(length=20)), server_default="{}", nullable=False),
        sa.Column("urgencies", postgresql.ARRAY(sa.String(length=12)), server_default="{}", nullable=False),
        sa.Column("min_age", sa.SmallInteger(), nullable=True),
        sa.Column("max_age", sa.SmallInteger(), nullable=True),
        sa.Column("target_pool_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "need_areas <@ ARRAY['lavoro', 'casa', 'poverta', 'disabilita', 'salute_mentale', 'dipendenze', 'violenza', 'minori', 'anziani']::varchar[]",
            name=op.f("ck_routing_rule_need_areas_known"),
        ),
        sa.CheckConstraint(
            "urgencies <@ ARRAY['ordinaria', 'prioritaria', 'urgente']::varchar[]",
            name=op.f("ck_routing_rule_urgencies_known"),
        ),
        sa.CheckConstraint("cardinality(target_pool_ids) >= 1", name=op.f("ck_routing_rule_has_targets")),
        sa.CheckConstraint(
            "min_age IS NULL OR max_age IS NULL OR min_age <= max_age", name=op.f("ck_routing_rule_age_band")
        ),
        sa.ForeignKeyConstraint(
            ["ambito_id"], ["ambito.id"], name=op.f("fk_routing_rule_ambito_id_ambito"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rule")),
    )
    op.create_index("ix_routing_rule_ambito", "routing_rule", ["ambito_id", "priority"], unique=False)
    op.create_table(
        "pool_comune",
        sa.Column("pool_id", sa.Uuid(), nullable=False),
        sa.Column("comune_id", sa.Uuid(), nullable=False),
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["comune_id", "ambito_id"],
            ["comune.id", "comune.ambito_id"],
            name="fk_pool_comune_comune_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["pool_id", "ambito_id"],
            ["pool.id", "pool.ambito_id"],
            name="fk_pool_comune_pool_same_ambito",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pool_id", "comune_id", name=op.f("pk_pool_comune")),
    )
    op.create_index("ix_pool_comune_comune", "pool_comune", ["comune_id"], unique=False)
    op.create_table(
        "pool_meeting",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("pool_id", sa.Uuid(), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("location", sa.String(length=200), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "scheduled",
                "held",
                "cancelled",
                name="meeting_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("attendee_user_ids", postgresql.ARRAY(sa.Uuid()), server_default="{}", nullable=False),
        sa.Column("created_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["pool_id", "ambito_id"],
            ["pool.id", "pool.ambito_id"],
            name="fk_pool_meeting_pool_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pool_meeting")),
    )
    op.create_index("ix_pool_meeting_pool_time", "pool_meeting", ["pool_id", "scheduled_at"], unique=False)
    op.create_table(
        "pool_member",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("pool_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column(
            "role",
            sa.Enum(
                "referente_comunale",
                "referente_cooperativa",
                "referente_afol",
                "referente_asst",
                "asa_oss",
                "specialista_su_invito",
                name="pool_role",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id", "ambito_id"],
            ["organization.id", "organization.ambito_id"],
            name="fk_pool_member_org_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["pool_id", "ambito_id"],
            ["pool.id", "pool.ambito_id"],
            name="fk_pool_member_pool_same_ambito",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id", "ambito_id"],
            ["app_user.id", "app_user.ambito_id"],
            name="fk_pool_member_user_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pool_member")),
    )
    op.create_index(
        "ix_pool_member_org",
        "pool_member",
        ["organization_id", "pool_id"],
        unique=False,
        postgresql_where=sa.text("removed_at IS NULL"),
    )
    op.create_index("ix_pool_member_pool", "pool_member", ["pool_id"], unique=False)
    op.create_table(
        "dossier_routing",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("dossier_id", sa.Uuid(), nullable=False),
        sa.Column("pool_id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.Uuid(), nullable=True),
        sa.Column("referral_id", sa.Uuid(), nullable=True),
        sa.Column("explanation", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("routed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("routed_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.String(length=2000), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("end_reason", sa.String(length=2000), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dossier_id", "ambito_id"],
            ["dossier.id", "dossier.ambito_id"],
            name="fk_dossier_routing_dossier_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["pool_id", "ambito_id"],
            ["pool.id", "pool.ambito_id"],
            name="fk_dossier_routing_pool_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossier_routing")),
    )
    op.create_index(
        "ix_dossier_routing_pool_active",
        "dossier_routing",
        ["pool_id", "dossier_id"],
        unique=False,
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.create_index(
        "uq_dossier_routing_active",
        "dossier_routing",
        ["dossier_id", "pool_id"],
        unique=True,
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.create_table(
        "pool_meeting_item",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("meeting_id", sa.Uuid(), nullable=False),
        sa.Column("dossier_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("minutes", sa.Text(), nullable=True),
        sa.Column(
            "decision",
            sa.Enum(
                "new_objective",
                "start_intervention",
                "reroute",
                "close",
                "other",
                name="meeting_decision",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column("decision_note", sa.String(length=2000), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "minutes IS NULL OR length(minutes) <= 20000", name=op.f("ck_pool_meeting_item_minutes_length")
        ),
        sa.ForeignKeyConstraint(
            ["dossier_id", "ambito_id"],
            ["dossier.id", "dossier.ambito_id"],
            name="fk_pool_meeting_item_dossier_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["pool_meeting.id"],
            name=op.f("fk_pool_meeting_item_meeting_id_pool_meeting"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pool_meeting_item")),
    )
    op.create_index("uq_pool_meeting_item", "pool_meeting_item", ["meeting_id", "dossier_id"], unique=True)
    op.create_table(
        "routing_task",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("routing_id", sa.Uuid(), nullable=False),
        sa.Column("dossier_id", sa.Uuid(), nullable=False),
        sa.Column("pool_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "requested",
                "accepted",
                "declined",
                "completed",
                "cancelled",
                name="task_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by_kind", sa.String(length=16), nullable=True),
        sa.Column("answered_by_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.String(length=2000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "status <> 'declined' OR reason IS NOT NULL", name=op.f("ck_routing_task_declined_has_reason")
        ),
        sa.ForeignKeyConstraint(
            ["dossier_id", "ambito_id"],
            ["dossier.id", "dossier.ambito_id"],
            name="fk_routing_task_dossier_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "ambito_id"],
            ["organization.id", "organization.ambito_id"],
            name="fk_routing_task_org_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["routing_id"],
            ["dossier_routing.id"],
            name=op.f("fk_routing_task_routing_id_dossier_routing"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_task")),
    )
    op.create_index("ix_routing_task_dossier", "routing_task", ["dossier_id"], unique=False)
    op.create_index("ix_routing_task_org_status", "routing_task", ["organization_id", "status"], unique=False)
    op.create_index(
        "ix_routing_task_overdue",
        "routing_task",
        ["ambito_id", "due_at"],
        unique=False,
        postgresql_where=sa.text("status = 'requested'"),
    )
    op.create_index("uq_routing_task_org", "routing_task", ["routing_id", "organization_id"], unique=True)
    op.add_column(
        "dossier", sa.Column("awaiting_routing", sa.Boolean(), server_default="false", nullable=False)
    )
    op.create_index(
        "ix_dossier_awaiting_routing", "dossier", ["ambito_id"], postgresql_where=sa.text("awaiting_routing")
    )
    for table in RLS_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING {CONDITION} WITH CHECK {CONDITION}")


def downgrade() -> None:
    op.drop_index("ix_dossier_awaiting_routing", table_name="dossier")
    op.drop_column("dossier", "awaiting_routing")
    op.drop_index("uq_routing_task_org", table_name="routing_task")
    op.drop_index(
        "ix_routing_task_overdue", table_name="routing_task", postgresql_where=sa.text("status = 'requested'")
    )
    op.drop_index("ix_routing_task_org_status", table_name="routing_task")
    op.drop_index("ix_routing_task_dossier", table_name="routing_task")
    op.drop_table("routing_task")
    op.drop_index("uq_pool_meeting_item", table_name="pool_meeting_item")
    op.drop_table("pool_meeting_item")
    op.drop_index(
        "uq_dossier_routing_active",
        table_name="dossier_routing",
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.drop_index(
        "ix_dossier_routing_pool_active",
        table_name="dossier_routing",
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.drop_table("dossier_routing")
    op.drop_index("ix_pool_member_pool", table_name="pool_member")
    op.drop_index(
        "ix_pool_member_org", table_name="pool_member", postgresql_where=sa.text("removed_at IS NULL")
    )
    op.drop_table("pool_member")
    op.drop_index("ix_pool_meeting_pool_time", table_name="pool_meeting")
    op.drop_table("pool_meeting")
    op.drop_index("ix_pool_comune_comune", table_name="pool_comune")
    op.drop_table("pool_comune")
    op.drop_index("ix_routing_rule_ambito", table_name="routing_rule")
    op.drop_table("routing_rule")
    op.drop_index("uq_pool_id_ambito", table_name="pool")
    op.drop_index("uq_pool_ambito_name", table_name="pool")
    op.drop_table("pool")
