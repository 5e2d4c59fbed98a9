"""assessment: instruments (versioned data), pre-assessment texts with Italian full text, competence scores

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 00:29:34.486313
"""

import json
import uuid
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


DATA = Path(__file__).resolve().parent.parent / "data"
RLS_TABLES = ("pre_assessment", "pre_assessment_answer", "competence_evaluation")
CONDITION = (
    "(current_setting('snodo.ambito_id', true) = '*' "
    "OR ambito_id = nullif(nullif(current_setting('snodo.ambito_id', true), ''), '*')::uuid)"
)

# Italian stemming, with accents folded first: "perché" and "perche", "città" and "citta" meet.
TEXT_SEARCH_CONFIG = (
    "CREATE TEXT SEARCH CONFIGURATION snodo_italian (COPY = pg_catalog.italian)",
    "ALTER TEXT SEARCH CONFIGURATION snodo_italian "
    "ALTER MAPPING FOR hword, hword_part, word WITH public.unaccent, italian_stem",
)


def upgrade() -> None:
    for statement in TEXT_SEARCH_CONFIG:
        op.execute(statement)
    op.create_table(
        "instrument",
        sa.Column(
            "kind",
            sa.Enum(
                "pre_assessment",
                "competence",
                name="instrument_kind",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("definition", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("active", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instrument")),
    )
    op.create_index("uq_instrument_kind_version", "instrument", ["kind", "version"], unique=True)
    op.create_index(
        "uq_instrument_one_active", "instrument", ["kind"], unique=True, postgresql_where=sa.text("active")
    )
    op.create_table(
        "pre_assessment",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("dossier_id", sa.Uuid(), nullable=False),
        sa.Column("instrument_id", sa.Uuid(), nullable=False),
        sa.Column("instrument_version", sa.Integer(), nullable=False),
        sa.Column("interview_date", sa.Date(), nullable=False),
        sa.Column("interviewer_user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft", "final", name="pre_assessment_status", native_enum=False, create_constraint=True
            ),
            nullable=False,
        ),
        sa.Column("corrects_id", sa.Uuid(), nullable=True),
        sa.Column("stated_request", sa.Text(), nullable=True),
        sa.Column("identified_need", sa.Text(), nullable=True),
        sa.Column("proposed_objective", sa.Text(), nullable=True),
        sa.Column("finalized_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status <> 'final' OR finalized_at IS NOT NULL", name=op.f("ck_pre_assessment_final_has_date")
        ),
        sa.ForeignKeyConstraint(
            ["corrects_id"],
            ["pre_assessment.id"],
            name=op.f("fk_pre_assessment_corrects_id_pre_assessment"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["dossier_id", "ambito_id"],
            ["dossier.id", "dossier.ambito_id"],
            name="fk_pre_assessment_dossier_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["instrument_id"],
            ["instrument.id"],
            name=op.f("fk_pre_assessment_instrument_id_instrument"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pre_assessment")),
    )
    op.create_index("ix_pre_assessment_dossier", "pre_assessment", ["dossier_id", "id"], unique=False)
    op.create_index("uq_pre_assessment_id_ambito", "pre_assessment", ["id", "ambito_id"], unique=True)
    op.create_table(
        "competence_evaluation",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("dossier_id", sa.Uuid(), nullable=False),
        sa.Column(
            "phase",
            sa.Enum("T0", "in_itinere", "ex_post", name="phase", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("pre_assessment_id", sa.Uuid(), nullable=True),
        sa.Column("instrument_id", sa.Uuid(), nullable=False),
        sa.Column("instrument_version", sa.Integer(), nullable=False),
        sa.Column("evaluated_on", sa.Date(), nullable=False),
        sa.Column("evaluator_user_id", sa.Uuid(), nullable=False),
        sa.Column("scores", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("profile", sa.Numeric(precision=6, scale=3), nullable=False),
        sa.Column("note", sa.String(length=2000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dossier_id", "ambito_id"],
            ["dossier.id", "dossier.ambito_id"],
            name="fk_competence_evaluation_dossier_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["instrument_id"],
            ["instrument.id"],
            name=op.f("fk_competence_evaluation_instrument_id_instrument"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["pre_assessment_id", "ambito_id"],
            ["pre_assessment.id", "pre_assessment.ambito_id"],
            name="fk_competence_evaluation_pre_assessment_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_competence_evaluation")),
    )
    op.create_index(
        "ix_competence_evaluation_dossier",
        "competence_evaluation",
        ["dossier_id", "evaluated_on"],
        unique=False,
    )
    op.create_table(
        "pre_assessment_answer",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("pre_assessment_id", sa.Uuid(), nullable=False),
        sa.Column("dossier_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("question_id", sa.String(length=40), nullable=False),
        sa.Column(
            "viewpoint",
            sa.Enum("respondent", "other", name="viewpoint", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("other_role", sa.String(length=60), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "search",
            postgresql.TSVECTOR(),
            sa.Computed("to_tsvector('snodo_italian'::regconfig, text)", persisted=True),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "viewpoint = 'other' OR other_role IS NULL",
            name=op.f("ck_pre_assessment_answer_role_only_for_other"),
        ),
        sa.CheckConstraint(
            "viewpoint = 'respondent' OR other_role IS NOT NULL",
            name=op.f("ck_pre_assessment_answer_other_has_role"),
        ),
        sa.CheckConstraint(
            "length(text) BETWEEN 1 AND 20000", name=op.f("ck_pre_assessment_answer_text_length")
        ),
        sa.ForeignKeyConstraint(
            ["dossier_id", "ambito_id"],
            ["dossier.id", "dossier.ambito_id"],
            name="fk_pre_assessment_answer_dossier_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["pre_assessment_id"],
            ["pre_assessment.id"],
            name=op.f("fk_pre_assessment_answer_pre_assessment_id_pre_assessment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pre_assessment_answer")),
    )
    op.create_index("ix_pre_assessment_answer_dossier", "pre_assessment_answer", ["dossier_id"], unique=False)
    op.create_index(
        "ix_pre_assessment_answer_pa",
        "pre_assessment_answer",
        ["pre_assessment_id", "position"],
        unique=False,
    )
    op.create_index(
        "ix_pre_assessment_answer_search",
        "pre_assessment_answer",
        ["search"],
        unique=False,
        postgresql_using="gin",
    )

    instrument = sa.table(
        "instrument",
        sa.column("id", sa.Uuid()),
        sa.column("kind", sa.String()),
        sa.column("version", sa.Integer()),
        sa.column("title", sa.String()),
        sa.column("definition", postgresql.JSONB()),
        sa.column("active", sa.Boolean()),
    )
    rows = []
    for number, (kind, name) in enumerate(
        (("pre_assessment", "pre_assessment_v1"), ("competence", "competence_v1")), 1
    ):
        definition = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
        rows.append(
            {
                "id": uuid.UUID(f"00000000-0000-7000-8000-0000000001{number:02d}"),
                "kind": kind,
                "version": definition["version"],
                "title": definition["title"],
                "definition": definition,
                "active": True,
            }
        )
    op.bulk_insert(instrument, rows)
    for table in RLS_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING {CONDITION} WITH CHECK {CONDITION}")


def downgrade() -> None:
    op.drop_index(
        "ix_pre_assessment_answer_search", table_name="pre_assessment_answer", postgresql_using="gin"
    )
    op.drop_index("ix_pre_assessment_answer_pa", table_name="pre_assessment_answer")
    op.drop_index("ix_pre_assessment_answer_dossier", table_name="pre_assessment_answer")
    op.drop_table("pre_assessment_answer")
    op.drop_index("ix_competence_evaluation_dossier", table_name="competence_evaluation")
    op.drop_table("competence_evaluation")
    op.drop_index("uq_pre_assessment_id_ambito", table_name="pre_assessment")
    op.drop_index("ix_pre_assessment_dossier", table_name="pre_assessment")
    op.drop_table("pre_assessment")
    op.drop_index("uq_instrument_one_active", table_name="instrument", postgresql_where=sa.text("active"))
    op.drop_index("uq_instrument_kind_version", table_name="instrument")
    op.drop_table("instrument")
    op.execute("DROP TEXT SEARCH CONFIGURATION snodo_italian")
