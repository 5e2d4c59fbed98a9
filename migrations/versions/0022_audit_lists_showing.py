"""The lists that showed a dossier, found through their index (0021) despite row-level security.

`@>` on arrays is not leakproof, so under row-level security PostgreSQL may not evaluate it before
the policy's condition: it cannot use `ix_audit_event_dossier_ids`, and a dossier's access log read
the whole access log (a sequential scan: 40 ms at 100,000 rows, seconds after two years). Like the
name search (0013), a SECURITY DEFINER function looks the rows up through the index; it answers
only for the request's own ambito (the ambito asked for must be `snodo.ambito_id`, or that `*`)
and returns row ids only, which the application then reads under row-level security.

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-29 22:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = "snodo_lists_showing(uuid, uuid)"
LISTS_SHOWING = """
CREATE FUNCTION snodo_lists_showing(shown uuid, in_ambito uuid)
RETURNS TABLE (audit_event_id uuid)
LANGUAGE plpgsql STABLE SECURITY DEFINER ROWS 100
SET search_path = public, pg_temp AS $$
BEGIN
    IF current_setting('snodo.ambito_id', true) NOT IN (in_ambito::text, '*') THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT e.id FROM audit_event e
        WHERE e.dossier_ids @> ARRAY[shown] AND e.dossier_ids IS NOT NULL AND e.ambito_id = in_ambito;
END;
$$
"""


def upgrade() -> None:
    op.execute(LISTS_SHOWING)
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'snodo_app') THEN
                GRANT EXECUTE ON FUNCTION {SIGNATURE} TO snodo_app;
            END IF;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
