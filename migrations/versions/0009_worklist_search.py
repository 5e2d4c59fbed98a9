"""Worklist and name search at scale: keyset indexes per access basis, and name candidates
from the trigram index (docs/performance.md)

Row-level security lets PostgreSQL use an index only for LEAKPROOF operators, and pg_trgm's are
not: under RLS, `snodo_fold(q) <% name_key` was a sequential scan of every person. The function
below runs as its owner, to whom RLS does not apply, so the GIN index serves it; it enforces the
tenant itself (the ambito asked for must be the request's `snodo.ambito_id`, or '*' for the
CLI) and returns only person ids and scores. Callers still read persons and dossiers under RLS
and `policy.visible`.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 02:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME_CANDIDATES = """
CREATE FUNCTION snodo_name_candidates(q text, in_ambito uuid, lim integer)
RETURNS TABLE (person_id uuid, score real)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp ROWS 100 AS $$
    SELECT p.id, word_similarity(snodo_fold(q), p.name_key)
    FROM person p
    WHERE p.ambito_id = in_ambito
      AND current_setting('snodo.ambito_id', true) IN (in_ambito::text, '*')
      AND snodo_fold(q) <% p.name_key
    ORDER BY 2 DESC, p.id
    LIMIT least(greatest(lim, 0), 5000)
$$
"""


def upgrade() -> None:
    op.drop_index("ix_dossier_ambito_residence", table_name="dossier")
    op.create_index("ix_dossier_ambito_residence", "dossier", ["ambito_id", "residence_comune_id", "id"])
    op.drop_index("ix_dossier_case_manager", table_name="dossier")
    op.create_index("ix_dossier_case_manager", "dossier", ["case_manager_user_id", "id"])
    op.execute(NAME_CANDIDATES)
    op.execute("REVOKE ALL ON FUNCTION snodo_name_candidates(text, uuid, integer) FROM PUBLIC")
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'snodo_app') THEN
                GRANT EXECUTE ON FUNCTION snodo_name_candidates(text, uuid, integer) TO snodo_app;
            END IF;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION snodo_name_candidates(text, uuid, integer)")
    op.drop_index("ix_dossier_case_manager", table_name="dossier")
    op.create_index("ix_dossier_case_manager", "dossier", ["case_manager_user_id"])
    op.drop_index("ix_dossier_ambito_residence", table_name="dossier")
    op.create_index("ix_dossier_ambito_residence", "dossier", ["ambito_id", "residence_comune_id"])
