"""intake: persons, households, dossiers, referrals, consents, access log, outbox; the app role

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 00:01:15.979085
"""

import json
import uuid
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


FORM_V1 = Path(__file__).resolve().parent.parent / "data" / "referral_form_v1.json"

FOLD_FUNCTION = """
CREATE FUNCTION snodo_fold(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
RETURN lower(public.unaccent('public.unaccent'::regdictionary, value))
"""

AUDIT_CANONICAL = """
CREATE FUNCTION snodo_audit_canonical(e audit_event) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN convert_to(concat_ws('|',
    e.id::text, e.ambito_id::text, e.seq::text,
    to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
    e.actor_kind, e.actor_id::text, e.organization_id::text, e.action, e.resource_type,
    coalesce(e.resource_id::text, ''), coalesce(e.dossier_id::text, ''), coalesce(e.section, ''),
    e.purpose, coalesce(e.request_id, '')), 'UTF8')
"""

# Runs as the table owner (SECURITY DEFINER): the app role may insert audit rows but never
# touch the chain head, so it can neither skip nor rewrite a link.
AUDIT_CHAIN = """
CREATE FUNCTION snodo_audit_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    head audit_chain_head%ROWTYPE;
BEGIN
    INSERT INTO audit_chain_head (ambito_id, last_seq, last_hash)
    VALUES (NEW.ambito_id, 0, decode(repeat('00', 32), 'hex'))
    ON CONFLICT (ambito_id) DO NOTHING;
    SELECT * INTO head FROM audit_chain_head WHERE ambito_id = NEW.ambito_id FOR UPDATE;
    NEW.seq := head.last_seq + 1;
    NEW.prev_hash := head.last_hash;
    NEW.hash := sha256(NEW.prev_hash || snodo_audit_canonical(NEW));
    UPDATE audit_chain_head SET last_seq = NEW.seq, last_hash = NEW.hash WHERE ambito_id = NEW.ambito_id;
    RETURN NEW;
END;
$$
"""

# A submitted referral never changes, except once: the link to its person and dossier when a
# social worker confirms who it is about.
REFERRAL_IMMUTABLE = """
CREATE FUNCTION snodo_referral_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'referral is immutable: DELETE refused' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.identification <> 'pending'
       OR (NEW.id, NEW.ambito_id, NEW.form_id, NEW.form_version, NEW.submitted_by_kind, NEW.submitted_by_id,
           NEW.submitting_organization_id, NEW.submitted_person, NEW.answers, NEW.need_areas, NEW.labels,
           NEW.urgency, NEW.compartment, NEW.residence_comune_id, NEW.corrects_referral_id, NEW.created_at)
          IS DISTINCT FROM
          (OLD.id, OLD.ambito_id, OLD.form_id, OLD.form_version, OLD.submitted_by_kind, OLD.submitted_by_id,
           OLD.submitting_organization_id, OLD.submitted_person, OLD.answers, OLD.need_areas, OLD.labels,
           OLD.urgency, OLD.compartment, OLD.residence_comune_id, OLD.corrects_referral_id, OLD.created_at)
    THEN
        RAISE EXCEPTION 'referral is immutable: UPDATE refused' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$
"""

# The role the application runs as (SET ROLE at connect): it reads and writes data, but can
# neither change nor delete past access-log or authentication rows, nor alter any table.
APP_ROLE = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'snodo_app') THEN
        CREATE ROLE snodo_app NOLOGIN;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'cannot create role snodo_app: create it and re-run, or run the app as a restricted role';
END
$$
"""

APP_GRANTS = """
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'snodo_app') THEN
        GRANT USAGE ON SCHEMA public TO snodo_app;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO snodo_app;
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO snodo_app;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO snodo_app;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO snodo_app;
        REVOKE UPDATE, DELETE, TRUNCATE ON audit_event, auth_event FROM snodo_app;
        REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_chain_head FROM snodo_app;
        REVOKE DELETE, TRUNCATE ON referral FROM snodo_app;
        REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM snodo_app;
    END IF;
END
$$
"""

APP_REVOKE = """
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'snodo_app') THEN
        ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM snodo_app;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM snodo_app;
        REVOKE ALL ON ALL TABLES IN SCHEMA public FROM snodo_app;
        REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM snodo_app;
        REVOKE USAGE ON SCHEMA public FROM snodo_app;
    END IF;
END
$$
"""


def upgrade() -> None:
    op.execute(FOLD_FUNCTION)
    op.create_index("uq_app_user_id_ambito", "app_user", ["id", "ambito_id"], unique=True)
    op.create_table(
        "audit_chain_head",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("ambito_id", name=op.f("pk_audit_chain_head")),
    )
    op.create_table(
        "audit_event",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column(
            "action",
            sa.Enum(
                "read",
                "list",
                "search",
                "create",
                "update",
                "transition",
                "break_glass",
                "export",
                name="audit_action",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("resource_type", sa.String(length=40), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=True),
        sa.Column("dossier_id", sa.Uuid(), nullable=True),
        sa.Column(
            "section",
            sa.Enum(
                "registry",
                "referral",
                "assessment",
                "plan",
                "interventions",
                "health",
                "violence",
                "judicial",
                name="section",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("prev_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    op.create_index("ix_audit_event_actor", "audit_event", ["actor_id", "occurred_at"], unique=False)
    op.create_index("ix_audit_event_dossier", "audit_event", ["dossier_id", "occurred_at"], unique=False)
    op.create_index("uq_audit_event_chain", "audit_event", ["ambito_id", "seq"], unique=True)
    op.create_table(
        "idempotency_record",
        sa.Column("caller", sa.String(length=60), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_record")),
    )
    op.create_index("ix_idempotency_created", "idempotency_record", ["created_at"], unique=False)
    op.create_index("uq_idempotency_caller_key", "idempotency_record", ["caller", "key"], unique=True)
    op.create_table(
        "outbox_event",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=60), nullable=False),
        sa.Column("dossier_id", sa.Uuid(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_event")),
    )
    op.create_index("ix_outbox_event_ambito", "outbox_event", ["ambito_id", "id"], unique=False)
    op.create_table(
        "referral_form",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("definition", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("active", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_form")),
        sa.UniqueConstraint("version", name=op.f("uq_referral_form_version")),
    )
    op.create_index(
        "uq_referral_form_one_active",
        "referral_form",
        ["active"],
        unique=True,
        postgresql_where=sa.text("active"),
    )
    op.create_table(
        "household",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["ambito_id"], ["ambito.id"], name=op.f("fk_household_ambito_id_ambito"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_household")),
    )
    op.create_index(op.f("ix_household_ambito_id"), "household", ["ambito_id"], unique=False)
    op.create_index("uq_household_id_ambito", "household", ["id", "ambito_id"], unique=True)
    op.create_table(
        "person",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("fiscal_code", sa.String(length=16), nullable=True),
        sa.Column(
            "no_fiscal_code_reason",
            sa.Enum(
                "recent_arrival",
                "newborn",
                "not_known",
                "anonymous_protection",
                name="no_fiscal_code_reason",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column("given_name", sa.String(length=100), nullable=False),
        sa.Column("family_name", sa.String(length=100), nullable=False),
        sa.Column(
            "name_key",
            sa.String(length=201),
            sa.Computed("snodo_fold(family_name || ' ' || given_name)", persisted=True),
            nullable=False,
        ),
        sa.Column(
            "sex", sa.Enum("F", "M", name="sex", native_enum=False, create_constraint=True), nullable=True
        ),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("birth_place", sa.String(length=100), nullable=True),
        sa.Column("citizenship", sa.String(length=60), nullable=True),
        sa.Column("residence_comune_id", sa.Uuid(), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("household_id", sa.Uuid(), nullable=True),
        sa.Column(
            "household_relation",
            sa.Enum(
                "intestatario",
                "coniuge",
                "convivente",
                "figlio",
                "genitore",
                "fratello_sorella",
                "nonno",
                "nipote",
                "altro_parente",
                "altro",
                name="household_relation",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("fiscal_code ~ '^[A-Z0-9]{16}$'", name=op.f("ck_person_fiscal_code_format")),
        sa.CheckConstraint(
            "birth_date IS NULL OR birth_date <= CURRENT_DATE", name=op.f("ck_person_birth_date_not_future")
        ),
        sa.CheckConstraint(
            "fiscal_code IS NOT NULL OR no_fiscal_code_reason IS NOT NULL",
            name=op.f("ck_person_fiscal_code_or_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["ambito_id"], ["ambito.id"], name=op.f("fk_person_ambito_id_ambito"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["household_id", "ambito_id"],
            ["household.id", "household.ambito_id"],
            name="fk_person_household_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["residence_comune_id", "ambito_id"],
            ["comune.id", "comune.ambito_id"],
            name="fk_person_residence_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
    )
    op.create_index("ix_person_ambito_birth_date", "person", ["ambito_id", "birth_date"], unique=False)
    op.create_index(op.f("ix_person_household_id"), "person", ["household_id"], unique=False)
    op.create_index(
        "ix_person_name_key_trgm",
        "person",
        ["name_key"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"name_key": "gin_trgm_ops"},
    )
    op.create_index(
        "uq_person_ambito_fiscal_code",
        "person",
        ["ambito_id", "fiscal_code"],
        unique=True,
        postgresql_where=sa.text("fiscal_code IS NOT NULL"),
    )
    op.create_index("uq_person_id_ambito", "person", ["id", "ambito_id"], unique=True)
    op.create_table(
        "consent",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("organization_kinds", sa.ARRAY(sa.String(length=20)), server_default="{}", nullable=False),
        sa.Column("organization_ids", sa.ARRAY(sa.Uuid()), server_default="{}", nullable=False),
        sa.Column("purposes", sa.ARRAY(sa.String(length=20)), nullable=False),
        sa.Column("labels", sa.ARRAY(sa.String(length=3)), server_default="{}", nullable=False),
        sa.Column(
            "legal_basis",
            sa.Enum(
                "consent",
                "legal_obligation",
                "public_interest",
                "health_care",
                "judicial_order",
                name="legal_basis",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("given_on", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("note", sa.String(length=1000), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=1000), nullable=True),
        sa.Column("recorded_by_kind", sa.String(length=16), nullable=False),
        sa.Column("recorded_by_id", sa.Uuid(), nullable=False),
        sa.Column("recorded_by_organization_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "labels <@ ARRAY['ETH', 'HIV', 'PSY', 'SDV']::varchar[]", name=op.f("ck_consent_labels_known")
        ),
        sa.CheckConstraint(
            "organization_kinds <@ ARRAY['comune', 'ufficio_di_piano', 'asst', 'ats', 'afol', 'cooperativa', 'associazione', 'azienda']::varchar[]",
            name=op.f("ck_consent_kinds_known"),
        ),
        sa.CheckConstraint(
            "purposes <@ ARRAY['presa_in_carico', 'monitoraggio', 'valutazione', 'ricerca']::varchar[]",
            name=op.f("ck_consent_purposes_known"),
        ),
        sa.CheckConstraint(
            "cardinality(organization_kinds) + cardinality(organization_ids) >= 1",
            name=op.f("ck_consent_has_recipients"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id", "ambito_id"],
            ["person.id", "person.ambito_id"],
            name="fk_consent_person_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent")),
    )
    op.create_index("ix_consent_person", "consent", ["person_id"], unique=False)
    op.create_table(
        "dossier",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "segnalato",
                "in_valutazione",
                "in_pool",
                "progetto_attivo",
                "sospeso",
                "valutazione_finale",
                "chiuso",
                "reindirizzato",
                "ritirato",
                "trasferito",
                name="dossier_state",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "compartment",
            sa.Enum(
                "ordinary",
                "violence",
                "judicial",
                name="compartment",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("need_areas", sa.ARRAY(sa.String(length=20)), nullable=False),
        sa.Column(
            "urgency",
            sa.Enum(
                "ordinaria",
                "prioritaria",
                "urgente",
                name="urgency",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("residence_comune_id", sa.Uuid(), nullable=False),
        sa.Column("case_manager_user_id", sa.Uuid(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=500), nullable=True),
        sa.Column("follow_up_on", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "need_areas <@ ARRAY['lavoro', 'casa', 'poverta', 'disabilita', 'salute_mentale', 'dipendenze', 'violenza', 'minori', 'anziani']::varchar[]",
            name=op.f("ck_dossier_need_areas_known"),
        ),
        sa.ForeignKeyConstraint(
            ["ambito_id"], ["ambito.id"], name=op.f("fk_dossier_ambito_id_ambito"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["case_manager_user_id", "ambito_id"],
            ["app_user.id", "app_user.ambito_id"],
            name="fk_dossier_case_manager_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["person_id", "ambito_id"],
            ["person.id", "person.ambito_id"],
            name="fk_dossier_person_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["residence_comune_id", "ambito_id"],
            ["comune.id", "comune.ambito_id"],
            name="fk_dossier_residence_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossier")),
    )
    op.create_index(
        "ix_dossier_ambito_residence", "dossier", ["ambito_id", "residence_comune_id"], unique=False
    )
    op.create_index("ix_dossier_case_manager", "dossier", ["case_manager_user_id"], unique=False)
    op.create_index("uq_dossier_ambito_person", "dossier", ["ambito_id", "person_id"], unique=True)
    op.create_index("uq_dossier_id_ambito", "dossier", ["id", "ambito_id"], unique=True)
    op.create_table(
        "break_glass",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("dossier_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("review_note", sa.String(length=2000), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dossier_id", "ambito_id"],
            ["dossier.id", "dossier.ambito_id"],
            name="fk_break_glass_dossier_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_break_glass")),
    )
    op.create_index(
        "ix_break_glass_unreviewed",
        "break_glass",
        ["ambito_id"],
        unique=False,
        postgresql_where="reviewed_at IS NULL",
    )
    op.create_index(
        "ix_break_glass_user_dossier", "break_glass", ["user_id", "dossier_id", "expires_at"], unique=False
    )
    op.create_table(
        "dossier_entry",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("dossier_id", sa.Uuid(), nullable=False),
        sa.Column(
            "section",
            sa.Enum(
                "registry",
                "referral",
                "assessment",
                "plan",
                "interventions",
                "health",
                "violence",
                "judicial",
                name="section",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "label",
            sa.Enum("ETH", "HIV", "PSY", "SDV", name="label", native_enum=False, create_constraint=True),
            nullable=True,
        ),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author_kind", sa.String(length=16), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("author_organization_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "label IS NULL OR (label IN ('ETH', 'HIV', 'PSY') AND section = 'health') OR (label = 'SDV' AND section = 'violence')",
            name=op.f("ck_dossier_entry_label_matches_section"),
        ),
        sa.CheckConstraint("length(text) BETWEEN 1 AND 20000", name=op.f("ck_dossier_entry_text_length")),
        sa.ForeignKeyConstraint(
            ["dossier_id", "ambito_id"],
            ["dossier.id", "dossier.ambito_id"],
            name="fk_dossier_entry_dossier_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossier_entry")),
    )
    op.create_index(
        "ix_dossier_entry_dossier_section", "dossier_entry", ["dossier_id", "section", "id"], unique=False
    )
    op.create_table(
        "dossier_event",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("dossier_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column(
            "from_state",
            sa.Enum(
                "segnalato",
                "in_valutazione",
                "in_pool",
                "progetto_attivo",
                "sospeso",
                "valutazione_finale",
                "chiuso",
                "reindirizzato",
                "ritirato",
                "trasferito",
                name="from_state",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column(
            "to_state",
            sa.Enum(
                "segnalato",
                "in_valutazione",
                "in_pool",
                "progetto_attivo",
                "sospeso",
                "valutazione_finale",
                "chiuso",
                "reindirizzato",
                "ritirato",
                "trasferito",
                name="to_state",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column("reason", sa.String(length=2000), nullable=True),
        sa.Column("labels", sa.ARRAY(sa.String(length=3)), server_default="{}", nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=True),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_organization_id", sa.Uuid(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dossier_id", "ambito_id"],
            ["dossier.id", "dossier.ambito_id"],
            name="fk_dossier_event_dossier_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.CheckConstraint(
            "labels <@ ARRAY['ETH', 'HIV', 'PSY', 'SDV']::varchar[]",
            name=op.f("ck_dossier_event_labels_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossier_event")),
    )
    op.create_index("ix_dossier_event_dossier", "dossier_event", ["dossier_id", "id"], unique=False)
    op.create_table(
        "dossier_participant",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("dossier_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column(
            "basis",
            sa.Enum(
                "pool",
                "provider",
                "invited",
                name="participant_basis",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("sections", sa.ARRAY(sa.String(length=20)), server_default="{}", nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("added_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "sections <@ ARRAY['registry', 'referral', 'assessment', 'plan', 'interventions', 'health', 'violence', 'judicial']::varchar[]",
            name=op.f("ck_dossier_participant_sections_known"),
        ),
        sa.ForeignKeyConstraint(
            ["dossier_id", "ambito_id"],
            ["dossier.id", "dossier.ambito_id"],
            name="fk_dossier_participant_dossier_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "ambito_id"],
            ["organization.id", "organization.ambito_id"],
            name="fk_dossier_participant_org_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossier_participant")),
    )
    op.create_index("ix_dossier_participant_dossier", "dossier_participant", ["dossier_id"], unique=False)
    op.create_index(
        "ix_dossier_participant_org", "dossier_participant", ["organization_id", "dossier_id"], unique=False
    )
    op.create_table(
        "referral",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("form_id", sa.Uuid(), nullable=False),
        sa.Column("form_version", sa.Integer(), nullable=False),
        sa.Column("submitted_by_kind", sa.String(length=16), nullable=False),
        sa.Column("submitted_by_id", sa.Uuid(), nullable=False),
        sa.Column("submitting_organization_id", sa.Uuid(), nullable=False),
        sa.Column("submitted_person", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("answers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("need_areas", sa.ARRAY(sa.String(length=20)), nullable=False),
        sa.Column("labels", sa.ARRAY(sa.String(length=3)), server_default="{}", nullable=False),
        sa.Column(
            "urgency",
            sa.Enum(
                "ordinaria",
                "prioritaria",
                "urgente",
                name="urgency",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "compartment",
            sa.Enum(
                "ordinary",
                "violence",
                "judicial",
                name="compartment",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("residence_comune_id", sa.Uuid(), nullable=False),
        sa.Column("corrects_referral_id", sa.Uuid(), nullable=True),
        sa.Column("identification", sa.String(length=10), nullable=False),
        sa.Column("candidate_person_ids", sa.ARRAY(sa.Uuid()), server_default="{}", nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=True),
        sa.Column("dossier_id", sa.Uuid(), nullable=True),
        sa.Column("identified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("identified_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "(identification = 'pending') = (dossier_id IS NULL)",
            name=op.f("ck_referral_dossier_iff_identified"),
        ),
        sa.CheckConstraint(
            "identification IN ('resolved', 'pending')", name=op.f("ck_referral_identification_known")
        ),
        sa.CheckConstraint(
            "labels <@ ARRAY['ETH', 'HIV', 'PSY', 'SDV']::varchar[]", name=op.f("ck_referral_labels_known")
        ),
        sa.CheckConstraint(
            "need_areas <@ ARRAY['lavoro', 'casa', 'poverta', 'disabilita', 'salute_mentale', 'dipendenze', 'violenza', 'minori', 'anziani']::varchar[]",
            name=op.f("ck_referral_need_areas_known"),
        ),
        sa.ForeignKeyConstraint(
            ["ambito_id"], ["ambito.id"], name=op.f("fk_referral_ambito_id_ambito"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["corrects_referral_id"],
            ["referral.id"],
            name=op.f("fk_referral_corrects_referral_id_referral"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["dossier_id", "ambito_id"],
            ["dossier.id", "dossier.ambito_id"],
            name="fk_referral_dossier_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["form_id"],
            ["referral_form.id"],
            name=op.f("fk_referral_form_id_referral_form"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["person_id", "ambito_id"],
            ["person.id", "person.ambito_id"],
            name="fk_referral_person_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["submitting_organization_id", "ambito_id"],
            ["organization.id", "organization.ambito_id"],
            name="fk_referral_submitter_same_ambito",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral")),
    )
    op.create_index("ix_referral_dossier", "referral", ["dossier_id", "id"], unique=False)
    op.create_index(
        "ix_referral_pending",
        "referral",
        ["ambito_id", "residence_comune_id"],
        unique=False,
        postgresql_where=sa.text("identification = 'pending'"),
    )
    op.create_index("ix_referral_submitter", "referral", ["submitting_organization_id", "id"], unique=False)

    op.execute(AUDIT_CANONICAL)
    op.execute(AUDIT_CHAIN)
    op.execute(
        "CREATE TRIGGER audit_event_chain BEFORE INSERT ON audit_event "
        "FOR EACH ROW EXECUTE FUNCTION snodo_audit_chain()"
    )
    op.execute(
        "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event "
        "FOR EACH ROW EXECUTE FUNCTION snodo_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
        "FOR EACH STATEMENT EXECUTE FUNCTION snodo_refuse_change()"
    )
    op.execute(REFERRAL_IMMUTABLE)
    op.execute(
        "CREATE TRIGGER referral_immutable BEFORE UPDATE OR DELETE ON referral "
        "FOR EACH ROW EXECUTE FUNCTION snodo_referral_immutable()"
    )

    definition = json.loads(FORM_V1.read_text(encoding="utf-8"))
    referral_form = sa.table(
        "referral_form",
        sa.column("id", sa.Uuid()),
        sa.column("version", sa.Integer()),
        sa.column("title", sa.String()),
        sa.column("definition", postgresql.JSONB()),
        sa.column("active", sa.Boolean()),
    )
    op.bulk_insert(
        referral_form,
        [
            {
                "id": uuid.UUID("00000000-0000-7000-8000-000000000001"),
                "version": definition["version"],
                "title": definition["title"],
                "definition": definition,
                "active": True,
            }
        ],
    )

    op.execute(APP_ROLE)
    op.execute(APP_GRANTS)


def downgrade() -> None:
    op.execute(APP_REVOKE)
    op.drop_index("ix_referral_submitter", table_name="referral")
    op.drop_index(
        "ix_referral_pending", table_name="referral", postgresql_where=sa.text("identification = 'pending'")
    )
    op.drop_index("ix_referral_dossier", table_name="referral")
    op.drop_table("referral")
    op.drop_index("ix_dossier_participant_org", table_name="dossier_participant")
    op.drop_index("ix_dossier_participant_dossier", table_name="dossier_participant")
    op.drop_table("dossier_participant")
    op.drop_index("ix_dossier_event_dossier", table_name="dossier_event")
    op.drop_table("dossier_event")
    op.drop_index("ix_dossier_entry_dossier_section", table_name="dossier_entry")
    op.drop_table("dossier_entry")
    op.drop_index("ix_break_glass_user_dossier", table_name="break_glass")
    op.drop_index(
        "ix_break_glass_unreviewed", table_name="break_glass", postgresql_where="reviewed_at IS NULL"
    )
    op.drop_table("break_glass")
    op.drop_index("uq_dossier_id_ambito", table_name="dossier")
    op.drop_index("uq_dossier_ambito_person", table_name="dossier")
    op.drop_index("ix_dossier_case_manager", table_name="dossier")
    op.drop_index("ix_dossier_ambito_residence", table_name="dossier")
    op.drop_table("dossier")
    op.drop_index("ix_consent_person", table_name="consent")
    op.drop_table("consent")
    op.drop_index("uq_person_id_ambito", table_name="person")
    op.drop_index(
        "uq_person_ambito_fiscal_code",
        table_name="person",
        postgresql_where=sa.text("fiscal_code IS NOT NULL"),
    )
    op.drop_index(
        "ix_person_name_key_trgm",
        table_name="person",
        postgresql_using="gin",
        postgresql_ops={"name_key": "gin_trgm_ops"},
    )
    op.drop_index(op.f("ix_person_household_id"), table_name="person")
    op.drop_index("ix_person_ambito_birth_date", table_name="person")
    op.drop_table("person")
    op.drop_index("uq_household_id_ambito", table_name="household")
    op.drop_index(op.f("ix_household_ambito_id"), table_name="household")
    op.drop_table("household")
    op.drop_index(
        "uq_referral_form_one_active", table_name="referral_form", postgresql_where=sa.text("active")
    )
    op.drop_table("referral_form")
    op.drop_index("ix_outbox_event_ambito", table_name="outbox_event")
    op.drop_table("outbox_event")
    op.drop_index("uq_idempotency_caller_key", table_name="idempotency_record")
    op.drop_index("ix_idempotency_created", table_name="idempotency_record")
    op.drop_table("idempotency_record")
    op.execute("DROP FUNCTION snodo_audit_canonical(audit_event)")
    op.drop_index("uq_audit_event_chain", table_name="audit_event")
    op.drop_index("ix_audit_event_dossier", table_name="audit_event")
    op.drop_index("ix_audit_event_actor", table_name="audit_event")
    op.drop_table("audit_event")
    op.drop_table("audit_chain_head")
    op.execute("DROP FUNCTION snodo_audit_chain()")
    op.execute("DROP FUNCTION snodo_referral_immutable()")
    op.drop_index("uq_app_user_id_ambito", table_name="app_user")
    op.execute("DROP FUNCTION snodo_fold(text)")
