"""The access log names the dossiers a list or a search showed.

A worklist page, a name search, a search of pre-assessment texts and a pool meeting's agenda show
several dossiers at once (names, birth dates, states, minutes), and each wrote one access-log row
naming none of them: a dossier's own access log (for its case manager, the DPO and the citizen,
GDPR art. 15) did not show who had seen the person in a list or found them by name. `dossier_ids`
holds the dossiers such a row showed, in the order shown ([] for an empty answer, NULL for a row
about one dossier, which keeps using `dossier_id`).

The canonical form of a row (what its hash covers) gains the list only when there is one, so the
rows written before keep their hashes and every chain still verifies.

Its index, for the dossier's access log, comes in 0021: built CONCURRENTLY.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-29 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in 0010: PostgreSQL before 17 refuses to alter a table whose row type a function takes, so
# the function is dropped around the change (the chain trigger calls it by name, at run time).
AUDIT_CANONICAL = """
CREATE FUNCTION snodo_audit_canonical(e audit_event) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN convert_to(concat_ws('|',
    e.id::text, e.ambito_id::text, e.seq::text,
    to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
    e.actor_kind, e.actor_id::text, e.organization_id::text, e.action, e.resource_type,
    coalesce(e.resource_id::text, ''), coalesce(e.dossier_id::text, ''), coalesce(e.section, ''),
    e.purpose, coalesce(e.request_id, ''))
    || CASE WHEN e.dossier_ids IS NULL THEN '' ELSE '|' || array_to_string(e.dossier_ids, ',') END, 'UTF8')
"""
# 0010's, for the downgrade.
AUDIT_CANONICAL_0010 = """
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
    op.add_column("audit_event", sa.Column("dossier_ids", postgresql.ARRAY(sa.Uuid()), nullable=True))
    op.execute(AUDIT_CANONICAL)


def downgrade() -> None:
    # The rows that name their dossiers would no longer verify without the column.
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT FROM audit_event WHERE dossier_ids IS NOT NULL) THEN "
        "RAISE EXCEPTION 'audit rows name the dossiers of a list: cannot downgrade'; END IF; END $$"
    )
    op.execute(DROP_AUDIT_CANONICAL)
    op.drop_column("audit_event", "dossier_ids")
    op.execute(AUDIT_CANONICAL_0010)
