"""The access log in sixteen chains per ambito, so that concurrent requests do not queue on one
chain head (docs/performance.md: 240 ms per insert with 20 clients on a single chain)

The trigger takes the lowest-numbered chain head of the ambito that no other transaction holds
(`FOR UPDATE SKIP LOCKED`): requests one at a time all go to chain 0, concurrent ones spread. (The
ambito's very first rows wait for each other: its heads are created then, by the first of them.) Each
chain is verified like the single one was; a row moved from one chain to another breaks both.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22 02:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUDIT_CHAIN = """
CREATE OR REPLACE FUNCTION snodo_audit_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    head audit_chain_head%ROWTYPE;
BEGIN
    SELECT * INTO head FROM audit_chain_head WHERE ambito_id = NEW.ambito_id
    ORDER BY chain LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        -- the ambito's first row, or every chain busy: make sure all heads exist, then wait
        INSERT INTO audit_chain_head (ambito_id, chain, last_seq, last_hash)
        SELECT NEW.ambito_id, c, 0, decode(repeat('00', 32), 'hex') FROM generate_series(0, 15) c
        ON CONFLICT (ambito_id, chain) DO NOTHING;
        SELECT * INTO head FROM audit_chain_head WHERE ambito_id = NEW.ambito_id
        ORDER BY chain LIMIT 1 FOR UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            SELECT * INTO head FROM audit_chain_head
            WHERE ambito_id = NEW.ambito_id AND chain = floor(random() * 16)::smallint FOR UPDATE;
        END IF;
    END IF;
    NEW.chain := head.chain;
    NEW.seq := head.last_seq + 1;
    NEW.prev_hash := head.last_hash;
    NEW.hash := sha256(NEW.prev_hash || snodo_audit_canonical(NEW));
    UPDATE audit_chain_head SET last_seq = NEW.seq, last_hash = NEW.hash
    WHERE ambito_id = NEW.ambito_id AND chain = head.chain;
    RETURN NEW;
END;
$$
"""

AUDIT_CHAIN_SINGLE = """
CREATE OR REPLACE FUNCTION snodo_audit_chain() RETURNS trigger
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


# PostgreSQL before 17 refuses to alter a table whose row type a function takes ("cannot alter
# table audit_event because function snodo_audit_canonical(audit_event) uses its row type"): the
# function is dropped around the change and created again, unchanged (as in 0003; the chain number
# is not part of the canonical form: a row moved to another chain breaks both by seq and prev_hash).
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
DROP_AUDIT_CANONICAL = "DROP FUNCTION snodo_audit_canonical(audit_event)"


def upgrade() -> None:
    op.execute(DROP_AUDIT_CANONICAL)
    op.add_column("audit_event", sa.Column("chain", sa.SmallInteger(), server_default="0", nullable=False))
    op.execute(AUDIT_CANONICAL)
    op.add_column(
        "audit_chain_head", sa.Column("chain", sa.SmallInteger(), server_default="0", nullable=False)
    )
    op.drop_constraint("pk_audit_chain_head", "audit_chain_head", type_="primary")
    op.create_primary_key("pk_audit_chain_head", "audit_chain_head", ["ambito_id", "chain"])
    op.drop_index("uq_audit_event_chain", table_name="audit_event")
    op.create_index("uq_audit_event_chain", "audit_event", ["ambito_id", "chain", "seq"], unique=True)
    op.execute(AUDIT_CHAIN)


def downgrade() -> None:
    # Only possible while every row is in chain 0 (the chains cannot be merged after the fact).
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT FROM audit_event WHERE chain <> 0) THEN "
        "RAISE EXCEPTION 'audit rows in chains other than 0: cannot downgrade'; END IF; END $$"
    )
    op.execute(AUDIT_CHAIN_SINGLE)
    op.drop_index("uq_audit_event_chain", table_name="audit_event")
    op.create_index("uq_audit_event_chain", "audit_event", ["ambito_id", "seq"], unique=True)
    op.execute("DELETE FROM audit_chain_head WHERE chain <> 0")
    op.drop_constraint("pk_audit_chain_head", "audit_chain_head", type_="primary")
    op.create_primary_key("pk_audit_chain_head", "audit_chain_head", ["ambito_id"])
    op.drop_column("audit_chain_head", "chain")
    op.execute(DROP_AUDIT_CANONICAL)
    op.drop_column("audit_event", "chain")
    op.execute(AUDIT_CANONICAL)
