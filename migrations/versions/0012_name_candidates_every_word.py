"""Name candidates: every word of the query must be in the name, each through the trigram index.

Before, the whole query was one `<%` condition: "brambilla giulia" matched every Brambilla (the
surname alone is similar enough), and with 35,000 of them at 1M persons the first 2,000 unranked
candidates need not hold Giulia at all, so adding the given name did not help. Now each word of
three letters or more (at most four) is its own condition, "brambila <% name_key AND giulia <%
name_key": the index answers each, PostgreSQL intersects the two bitmaps, and the candidates are
the Giulia Brambillas. A one-word query is the same condition as before.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22 04:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The conditions are written out per word (dynamic SQL) so that each can be an index condition;
# the words only ever travel as parameters ($2[i]), never as SQL text.
EVERY_WORD = r"""
CREATE OR REPLACE FUNCTION snodo_name_candidates(q text, in_ambito uuid, lim integer)
RETURNS TABLE (person_id uuid, score real)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp ROWS 100 AS $$
DECLARE
    folded text := snodo_fold(q);
    words text[];
    conditions text := '';
BEGIN
    IF folded IS NULL OR current_setting('snodo.ambito_id', true) NOT IN (in_ambito::text, '*') THEN
        RETURN;
    END IF;
    SELECT array_agg(w) INTO words
    FROM (SELECT w FROM regexp_split_to_table(folded, '\s+') AS w WHERE length(w) >= 3 LIMIT 4) AS x;
    IF words IS NULL THEN
        words := ARRAY[folded];  -- only short words: the query as a whole, as before
    END IF;
    FOR i IN 1 .. array_length(words, 1) LOOP
        conditions := conditions || format(' AND $2[%s] <%% p.name_key', i);
    END LOOP;
    RETURN QUERY EXECUTE
        'SELECT p.id, word_similarity($1, p.name_key) FROM person p WHERE p.ambito_id = $3'
        || conditions || ' LIMIT $4'
    USING folded, words, in_ambito, least(greatest(lim, 0), 5000);
END;
$$
"""

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


def upgrade() -> None:
    # From LANGUAGE sql to plpgsql: CREATE OR REPLACE allows it, the signature is the same.
    op.execute(EVERY_WORD)


def downgrade() -> None:
    op.execute(UNORDERED)
