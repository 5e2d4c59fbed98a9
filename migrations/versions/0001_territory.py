"""territory: ambito, comune, organization

Revision ID: 0001
Revises:
Create Date: 2026-11-21 23:35:50.143075
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Later issues need trigram and accent-insensitive search on names and texts.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.create_table(
        "ambito",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("code ~ '^[A-Z0-9_-]{1,32}$'", name=op.f("ck_ambito_code_format")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ambito")),
        sa.UniqueConstraint("code", name=op.f("uq_ambito_code")),
    )
    op.create_table(
        "comune",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("istat_code", sa.String(length=6), nullable=False),
        sa.Column("cadastral_code", sa.String(length=4), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "cadastral_code ~ '^[A-Z][0-9]{3}$'", name=op.f("ck_comune_cadastral_code_format")
        ),
        sa.CheckConstraint("istat_code ~ '^[0-9]{6}$'", name=op.f("ck_comune_istat_code_format")),
        sa.CheckConstraint("province ~ '^[A-Z]{2}$'", name=op.f("ck_comune_province_format")),
        sa.ForeignKeyConstraint(
            ["ambito_id"], ["ambito.id"], name=op.f("fk_comune_ambito_id_ambito"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comune")),
        sa.UniqueConstraint("cadastral_code", name=op.f("uq_comune_cadastral_code")),
        sa.UniqueConstraint("id", "ambito_id", name="uq_comune_id_ambito"),
        sa.UniqueConstraint("istat_code", name=op.f("uq_comune_istat_code")),
    )
    op.create_index(op.f("ix_comune_ambito_id"), "comune", ["ambito_id"], unique=False)
    op.create_table(
        "organization",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "comune",
                "ufficio_di_piano",
                "asst",
                "ats",
                "afol",
                "cooperativa",
                "associazione",
                "azienda",
                name="organization_kind",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("comune_id", sa.Uuid(), nullable=True),
        sa.Column("tax_code", sa.String(length=16), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "kind <> 'comune' OR comune_id IS NOT NULL", name=op.f("ck_organization_comune_has_comune")
        ),
        sa.ForeignKeyConstraint(
            ["ambito_id"], ["ambito.id"], name=op.f("fk_organization_ambito_id_ambito"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["comune_id", "ambito_id"],
            ["comune.id", "comune.ambito_id"],
            name="fk_organization_comune_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organization")),
        sa.UniqueConstraint("ambito_id", "name", name=op.f("uq_organization_ambito_id_name")),
    )
    op.create_index(op.f("ix_organization_comune_id"), "organization", ["comune_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_organization_comune_id"), table_name="organization")
    op.drop_table("organization")
    op.drop_index(op.f("ix_comune_ambito_id"), table_name="comune")
    op.drop_table("comune")
    op.drop_table("ambito")
    op.execute("DROP EXTENSION IF EXISTS unaccent")
    op.execute("DROP EXTENSION IF EXISTS pg_trgm")
