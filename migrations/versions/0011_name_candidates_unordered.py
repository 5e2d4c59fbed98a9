"""Name candidates without ranking: ordering by similarity made the function score every match
(165 ms for a surname shared by 35,000 persons, against 23 ms), and the worklist orders by
dossier anyway. Up to `lim` matches are returned, found through the trigram index.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22 02:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNORDERED = """
CREATE OR REPLACE FUNCTION snodo_name_candidates(q text, in_ambito uuid, lim integer)
RETURNS TABLE (person_id uuid, score real)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp ROWS 100 AS $$
    SELECT p.id, word_similarity(snodo_fold(q), p.name_key)
    FROM person p
    WHERE p.ambito_id = in_ambito
      AND current_setting('snodo.ambito_id', true) IN (in_ambito::text, '*')
      AND snodo_fold(q) <% p.name_key
    LIMIT least(greatest(lim, 0), 5000)
$$
"""

RANKED = """
CREATE OR REPLACE FUNCTION snodo_name_candidates(q text, in_ambito uuid, lim integer)
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
    op.execute(UNORDERED)


def downgrade() -> None:
    op.execute(RANKED)
