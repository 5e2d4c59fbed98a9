"""Add ambiti to a seeded benchmark database: copies of the seeded ambito, whole or a sample.

    mkdir -p /tmp/snodo-bench-multi && cp -a /tmp/snodo-bench/pgdata-1000000 /tmp/snodo-bench-multi/
    python -m tests.bench.clone --pgdata /tmp/snodo-bench-multi/pgdata-1000000 --copies 1.0,0.1

One database serves many ambiti (DESIGN §7), and the planner sees them all: the statistics of
`ambito_id`, of the organizations, comuni and pools, the tables' sizes. A plan chosen with one
ambito in the database (the seed makes one), a generic one above all, may not be the plan chosen
with several. This copies the seeded ambito (`seed.AMBITO_CODE`) once per fraction given: its
territory, organizations, users, pools and routing rules whole, and that fraction of its persons
with their dossiers, consents, routings, routing tasks and participants. Every uuid is mapped to
a new one that keeps its first 48 bits (a UUIDv7's time: ids sort as the originals do) and every
reference through the same map, so the copy holds together; codes that must be unique across the
database (ambito code, comune ISTAT and cadastral codes, e-mails) are changed, users' fiscal codes
dropped. The benchmark's users stay those of the original ambito. Work on a copy of a data
directory (`cp -a`), not on the one `tests.bench.run --keep` reuses: the results of the two are
compared.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import asyncpg

from tests.bench.run import on_data_dir
from tests.bench.seed import AMBITO_CODE, BULK_TABLES, _drop_secondary_indexes
from tests.db import asyncpg_dsn

# In the order of their foreign keys; the seed's bulk tables, last, hold the persons' data (sampled).
TABLES = (
    "ambito",
    "comune",
    "organization",
    "app_user",
    "pool",
    "pool_comune",
    "pool_member",
    "routing_rule",
    "household",
    *BULK_TABLES,
)

REMAP = """
CREATE FUNCTION pg_temp.remap(u uuid, copy integer) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (substr(u::text, 1, 14) || substr(md5(copy::text || u::text)::uuid::text, 15))::uuid
"""

# Per table: column -> the expression that replaces it (`{k}` is the copy's number).
OVERRIDES: dict[str, dict[str, str]] = {
    "ambito": {"code": "code || '-{k}'", "name": "name || ' (copia {k})'"},
    "comune": {
        "istat_code": "lpad(((istat_code::integer + {k} * 100000) % 1000000)::text, 6, '0')",
        "cadastral_code": "chr(ascii('U') + {k}) || substr(cadastral_code, 2)",
        "name": "name || ' {k}'",
    },
    "app_user": {"email": "'copia{k}.' || email", "fiscal_code": "NULL"},
}

# Which rows of the persons' tables a sample keeps: a person's whole file or nothing of it.
SAMPLED = "(hashtext({person}::text) & 1023) < {cut}"
SAMPLES = {
    "person": "id",
    "dossier": "person_id",
    "consent": "person_id",
}
THROUGH_DOSSIER = ("dossier_routing", "routing_task", "dossier_participant")


async def _columns(connection: asyncpg.Connection, table: str) -> list[tuple[str, str]]:
    rows = await connection.fetch(
        """
        SELECT column_name, udt_name FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = $1 AND is_generated = 'NEVER'
        ORDER BY ordinal_position
        """,
        table,
    )
    return [(row["column_name"], row["udt_name"]) for row in rows]


def _expression(table: str, column: str, udt: str, k: int) -> str:
    override = OVERRIDES.get(table, {}).get(column)
    if override is not None:
        return override.format(k=k)
    if udt == "uuid":
        return f"pg_temp.remap({column}, {k})"
    if udt == "_uuid":
        return (
            f"CASE WHEN {column} IS NULL THEN NULL ELSE ARRAY(SELECT pg_temp.remap(e.u, {k})"  # noqa: S608
            f" FROM unnest({column}) WITH ORDINALITY AS e(u, n) ORDER BY e.n) END"
        )
    return column


def _where(table: str, fraction: float) -> str:
    source = "id = $1" if table == "ambito" else "ambito_id = $1"
    if fraction >= 1.0:
        return source
    cut = round(fraction * 1024)
    if table in SAMPLES:
        return f"{source} AND {SAMPLED.format(person=SAMPLES[table], cut=cut)}"
    if table in THROUGH_DOSSIER:
        sampled = SAMPLED.format(person="d.person_id", cut=cut)
        dossiers = f"SELECT d.id FROM dossier d WHERE d.ambito_id = $1 AND {sampled}"  # noqa: S608
        return f"{source} AND dossier_id IN ({dossiers})"
    return source


async def clone(dsn: str, fractions: list[float]) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("SET maintenance_work_mem = '1GB'")
        await connection.execute("SET synchronous_commit = off")
        await connection.execute("SET snodo.ambito_id = '*'")
        await connection.execute(REMAP)
        source = await connection.fetchval("SELECT id FROM ambito WHERE code = $1", AMBITO_CODE)
        if source is None:
            raise SystemExit(f"ambito {AMBITO_CODE} not found: seed the data directory first")
        taken = await connection.fetchval(
            "SELECT count(*) FROM ambito WHERE code LIKE $1", f"{AMBITO_CODE}-%"
        )
        started = time.perf_counter()
        async with connection.transaction():
            definitions = await _drop_secondary_indexes(connection)
            for k, fraction in enumerate(fractions, start=taken + 1):
                for table in TABLES:
                    columns = await _columns(connection, table)
                    names = ", ".join(name for name, _ in columns)
                    values = ", ".join(_expression(table, name, udt, k) for name, udt in columns)
                    done = time.perf_counter()
                    status = await connection.execute(
                        f"INSERT INTO {table} ({names}) SELECT {values} FROM {table}"  # noqa: S608 - ours
                        f" WHERE {_where(table, fraction)}",
                        source,
                    )
                    took = time.perf_counter() - done
                    print(f"  copy {k} ({fraction:g}): {table:20s} {status:>18s} {took:6.1f} s")
            for definition in definitions:
                await connection.execute(definition)
        await connection.execute("VACUUM (ANALYZE)")
        ambiti = await connection.fetch(
            "SELECT a.code, count(d.id) AS dossiers FROM ambito a LEFT JOIN dossier d ON d.ambito_id = a.id"
            " GROUP BY a.code ORDER BY a.code"
        )
        counts = ", ".join(f"{row[0]} {row[1]:,}" for row in ambiti)
        print(f"done in {time.perf_counter() - started:.0f} s: {counts}")
    finally:
        await connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pgdata", type=Path, required=True)
    parser.add_argument(
        "--copies", default="1.0,0.1", help="one copy per fraction of the persons (1.0: all of them)"
    )
    args = parser.parse_args()
    fractions = [float(part) for part in args.copies.split(",")]
    if not all(0 < fraction <= 1 for fraction in fractions):
        parser.error("each fraction is in (0, 1]")

    async def work(url: str) -> None:
        await clone(asyncpg_dsn(url), fractions)

    return on_data_dir(args.pgdata, work)


if __name__ == "__main__":
    raise SystemExit(main())
