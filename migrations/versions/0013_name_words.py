"""Name search through the words of the names: a word list per ambito, an index on each name's words.

A common surname cost the search ~35 ms at 1M persons: the trigram index on the whole name
collects every person sharing trigrams with the query (34,862 for "brambila", 11 ms), the heap
recheck scores 2,000 of them (7 ms), and their dossiers were then looked up under row-level
security (10 ms). Now each query word is first matched, with the same typo tolerance
(`word <% name word`), against the distinct words of the ambito's names (`person_name_word`,
hundreds to a few thousands of rows), and the persons are found by exact word through a GIN index
on `string_to_array(name_key, ' ')` ("brambilla": 2 ms for the same 34,862). The function returns
the dossiers of those persons (`ix_dossier_person`, an index-only scan: 4 ms for 2,000), so the
worklist sorts ids and checks `visible` on the newest only.

The word list is kept by two statement triggers on person (insert, update); it holds words only,
with no link to any person, and only `snodo_name_dossiers` (SECURITY DEFINER) reads it: the
application's role has no privilege on it. A word stays after the last name carrying it changes
(it then finds nobody). A query made only of words shorter than three letters is matched against
the whole name through the trigram index, as before.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in 0004 (a migration is a snapshot: it does not import another).
CONDITION = (
    "(current_setting('snodo.ambito_id', true) = '*' "
    "OR ambito_id = nullif(nullif(current_setting('snodo.ambito_id', true), ''), '*')::uuid)"
)

NAME_WORDS_TRIGGER = """
CREATE FUNCTION snodo_person_name_words() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    -- In one order, so that two transactions adding the same new words wait, never deadlock.
    INSERT INTO person_name_word (ambito_id, word)
    SELECT DISTINCT n.ambito_id, w
    FROM new_person AS n, unnest(string_to_array(n.name_key, ' ')) AS w
    WHERE w <> ''
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$
"""

# Each query word of three letters or more (at most four) becomes the set of the ambito's name
# words it is similar to; a name must hold a word of every set. The conditions are written out
# per word (dynamic SQL) so that each is an index condition; the sets travel as parameters only.
NAME_DOSSIERS = r"""
CREATE FUNCTION snodo_name_dossiers(q text, in_ambito uuid, lim integer)
RETURNS TABLE (dossier_id uuid)
LANGUAGE plpgsql STABLE SECURITY DEFINER ROWS 100
SET search_path = public, pg_temp
SET max_parallel_workers_per_gather = 0  -- a few thousand rows: two workers only cost here
AS $$
DECLARE
    folded text := snodo_fold(q);
    cap integer := least(greatest(lim, 0), 5000);
    words text[];
    alike text[];
    s1 text[];
    s2 text[];
    s3 text[];
    s4 text[];
    conditions text := '';
BEGIN
    IF folded IS NULL OR current_setting('snodo.ambito_id', true) NOT IN (in_ambito::text, '*') THEN
        RETURN;
    END IF;
    SELECT array_agg(w) INTO words
    FROM (SELECT w FROM regexp_split_to_table(folded, '\s+') AS w WHERE length(w) >= 3 LIMIT 4) AS x;
    IF words IS NULL THEN
        -- only short words: the query as a whole against the whole name (trigram index)
        conditions := ' AND $7 <% p.name_key';
    END IF;
    FOR i IN 1 .. coalesce(array_length(words, 1), 0) LOOP
        alike := ARRAY(
            SELECT n.word FROM person_name_word n WHERE n.ambito_id = in_ambito AND words[i] <% n.word
        );
        IF cardinality(alike) = 0 THEN
            RETURN;  -- no name of the ambito holds this word
        END IF;
        CASE i
            WHEN 1 THEN s1 := alike;
            WHEN 2 THEN s2 := alike;
            WHEN 3 THEN s3 := alike;
            ELSE s4 := alike;
        END CASE;
        conditions := conditions || format(' AND string_to_array(p.name_key, '' '') && $%s', i + 1);
    END LOOP;
    RETURN QUERY EXECUTE
        'SELECT d.id FROM person p JOIN dossier d ON d.person_id = p.id'
        || ' WHERE p.ambito_id = $1' || conditions || ' LIMIT $6'
    USING in_ambito, s1, s2, s3, s4, cap, folded;
END;
$$
"""

# 0012's function, for the downgrade.
NAME_CANDIDATES = r"""
CREATE FUNCTION snodo_name_candidates(q text, in_ambito uuid, lim integer)
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


def _grant_execute(signature: str) -> None:
    op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'snodo_app') THEN
                GRANT EXECUTE ON FUNCTION {signature} TO snodo_app;
            END IF;
        END
        $$
        """
    )


def upgrade() -> None:
    op.create_table(
        "person_name_word",
        sa.Column("ambito_id", sa.Uuid(), nullable=False),
        sa.Column("word", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ambito_id"],
            ["ambito.id"],
            name=op.f("fk_person_name_word_ambito_id_ambito"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("ambito_id", "word", name=op.f("pk_person_name_word")),
    )
    op.create_index(
        "ix_person_name_word_trgm",
        "person_name_word",
        ["word"],
        postgresql_using="gin",
        postgresql_ops={"word": "gin_trgm_ops"},
    )
    op.execute("ALTER TABLE person_name_word ENABLE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON person_name_word USING {CONDITION} WITH CHECK {CONDITION}")
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'snodo_app') THEN
                REVOKE ALL ON person_name_word FROM snodo_app;
            END IF;
        END
        $$
        """
    )
    op.execute(
        "INSERT INTO person_name_word (ambito_id, word) "
        "SELECT DISTINCT p.ambito_id, w FROM person p, unnest(string_to_array(p.name_key, ' ')) AS w "
        "WHERE w <> ''"
    )
    op.execute(NAME_WORDS_TRIGGER)
    for event in ("INSERT", "UPDATE"):
        op.execute(
            f"CREATE TRIGGER person_name_words_{event.lower()} AFTER {event} ON person "
            "REFERENCING NEW TABLE AS new_person FOR EACH STATEMENT EXECUTE FUNCTION snodo_person_name_words()"
        )
    op.create_index(
        "ix_person_name_words",
        "person",
        [sa.text("string_to_array(name_key, ' ')")],
        postgresql_using="gin",
    )
    # A person's dossier id without visiting the dossier (a dossier's ambito is its person's).
    op.create_index("ix_dossier_person", "dossier", ["person_id"], postgresql_include=["id"])
    op.execute(NAME_DOSSIERS)
    _grant_execute("snodo_name_dossiers(text, uuid, integer)")
    op.execute("DROP FUNCTION snodo_name_candidates(text, uuid, integer)")


def downgrade() -> None:
    op.execute(NAME_CANDIDATES)
    _grant_execute("snodo_name_candidates(text, uuid, integer)")
    op.execute("DROP FUNCTION snodo_name_dossiers(text, uuid, integer)")
    op.drop_index("ix_dossier_person", table_name="dossier")
    op.drop_index("ix_person_name_words", table_name="person", postgresql_using="gin")
    op.execute("DROP TRIGGER person_name_words_update ON person")
    op.execute("DROP TRIGGER person_name_words_insert ON person")
    op.execute("DROP FUNCTION snodo_person_name_words()")
    op.drop_index("ix_person_name_word_trgm", table_name="person_name_word", postgresql_using="gin")
    op.drop_table("person_name_word")
