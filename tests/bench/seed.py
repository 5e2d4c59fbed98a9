"""Fill a migrated snodo database with a synthetic ambito-sized load, fast, in set-based SQL.

    python -m tests.bench.seed --url postgresql://postgres@/snodo?host=/tmp/... --persons 1000000

Start from the demo territory (`snodo seed-demo --password …` must have run: Ambito MELZO, its 8
comuni, organizations, pools and routing rules, demo users), then add, in ONE transaction:

- ~40 more social workers spread over the comuni (no password: they never log in);
- the pools of POOLS, only if the ambito has none yet (`Pool lavoro Melzo` with Comune di Melzo,
  AFOL and Cooperativa Solleva, …), with their territory and member organizations — otherwise the
  existing pools (the demo's) are used as they are;
- N persons with Italian-looking names (skewed towards the common surnames, some with accents or
  apostrophes), birth dates, a unique 16-character codice fiscale for ~97 % of them, spread over
  the comuni (Melzo and Cassano d'Adda heavier);
- one dossier per person, with a realistic mix of states, need areas, urgency and compartments,
  opened over the last 3 years, ~30 % with a case manager among the comune's social workers;
- a consent (comune, cooperativa, afol, asst; presa_in_carico) for ~60 % of persons;
- active routings (`dossier_routing.ended_at IS NULL`) for ~40 % of dossiers, picked by need area
  and comune, one `routing_task` per member organization (mostly accepted, some requested and
  overdue, a few declined), and a few `provider` participations of the pools' cooperatives (pool
  members see routed dossiers through the access policy's pool basis, not through participants).

It runs as the connecting superuser with `snodo.ambito_id = '*'` (row-level security), with every
trigger and foreign key in force. The non-unique secondary indexes of the bulk-loaded tables are
dropped and recreated from their own definitions inside the same transaction (a bulk GIN trigram
build is several times faster than a million incremental inserts); `--keep-indexes` skips that.
Random draws are seeded (`--seed`), so two runs at the same N produce the same counts (a few rows
placed relative to the current date aside).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import asyncpg

from tests.bench.names import (
    BIRTH_PLACES,
    FEMALE_NAMES,
    MALE_NAMES,
    STREETS,
    SURNAMES,
    given_name_code,
    surname_code,
)
from tests.db import asyncpg_dsn

AMBITO_CODE = "MELZO"

# Share of the population per comune (Melzo and Cassano d'Adda are the two large ones).
COMUNE_WEIGHTS: dict[str, float] = {
    "Melzo": 0.22,
    "Cassano d'Adda": 0.22,
    "Inzago": 0.12,
    "Vignate": 0.10,
    "Pozzuolo Martesana": 0.09,
    "Settala": 0.09,
    "Truccazzano": 0.08,
    "Liscate": 0.08,
}
# Extra social workers per comune (the demo's as.melzo and as.inzago come on top).
SOCIAL_WORKERS: dict[str, int] = {
    "Melzo": 8,
    "Cassano d'Adda": 8,
    "Inzago": 5,
    "Vignate": 4,
    "Pozzuolo Martesana": 4,
    "Settala": 4,
    "Truccazzano": 4,
    "Liscate": 3,
}

STATES: tuple[tuple[str, float], ...] = (
    ("segnalato", 0.08),
    ("in_valutazione", 0.10),
    ("in_pool", 0.12),
    ("progetto_attivo", 0.30),
    ("sospeso", 0.04),
    ("valutazione_finale", 0.04),
    ("chiuso", 0.24),
    ("reindirizzato", 0.03),
    ("ritirato", 0.03),
    ("trasferito", 0.02),
)
TERMINAL_STATES = ("chiuso", "reindirizzato", "ritirato", "trasferito")
# States in which a dossier is in a pool's hands; 80 % of them have an active routing (≈ 40 %).
ROUTED_STATES = ("in_pool", "progetto_attivo", "sospeso", "valutazione_finale")
URGENCIES: tuple[tuple[str, float], ...] = (("ordinaria", 0.70), ("prioritaria", 0.22), ("urgente", 0.08))

# Probability of each need area by age band (minor, adult, elderly), in the alphabetical order in
# which the application stores the array (sorted(set(...))).
NEED_AREAS: tuple[tuple[str, tuple[float, float, float]], ...] = (
    ("anziani", (0.0, 0.0, 0.70)),
    ("casa", (0.05, 0.15, 0.10)),
    ("dipendenze", (0.01, 0.06, 0.01)),
    ("disabilita", (0.10, 0.12, 0.20)),
    ("lavoro", (0.0, 0.40, 0.02)),
    ("minori", (0.85, 0.06, 0.0)),
    ("poverta", (0.15, 0.30, 0.20)),
    ("salute_mentale", (0.03, 0.08, 0.03)),
    ("violenza", (0.02, 0.03, 0.01)),
)
# Which pool area takes a dossier, by its need areas, first match wins (the demo's routing rules:
# violence, work, poverty and housing, elderly and disability, minors).
ROUTE_AREA_SQL = """CASE
    WHEN 'violenza' = ANY(need_areas) THEN 'violenza'
    WHEN 'lavoro' = ANY(need_areas) THEN 'lavoro'
    WHEN need_areas && ARRAY['poverta', 'casa']::varchar[] THEN 'poverta'
    WHEN need_areas && ARRAY['anziani', 'disabilita']::varchar[] THEN 'domiciliarita'
    WHEN 'minori' = ANY(need_areas) THEN 'minori'
    ELSE NULL END"""


@dataclass(frozen=True)
class PoolSpec:
    name: str
    area: str
    comuni: tuple[str, ...]  # empty: all comuni of the ambito
    members: tuple[tuple[str, str], ...]  # (organization name, pool role)
    response_days: int = 5


POOLS: tuple[PoolSpec, ...] = (
    PoolSpec(
        "Pool lavoro Melzo",
        "lavoro",
        ("Melzo", "Liscate", "Vignate", "Pozzuolo Martesana"),
        (
            ("Comune di Melzo", "referente_comunale"),
            ("AFOL Metropolitana", "referente_afol"),
            ("Cooperativa Sociale Solleva", "referente_cooperativa"),
        ),
    ),
    PoolSpec(
        "Pool lavoro Cassano",
        "lavoro",
        ("Cassano d'Adda", "Inzago", "Truccazzano", "Settala"),
        (
            ("Comune di Cassano d'Adda", "referente_comunale"),
            ("AFOL Metropolitana", "referente_afol"),
            ("Cooperativa Sociale Dialogica", "referente_cooperativa"),
        ),
    ),
    PoolSpec(
        "Pool domiciliarità",
        "domiciliarita",
        (),
        (
            ("Comune di Melzo", "referente_comunale"),
            ("ASST Melegnano e Martesana", "referente_asst"),
            ("Cooperativa Sociale COGESS", "referente_cooperativa"),
            ("Cooperativa Sociale Archè", "asa_oss"),
        ),
        response_days=3,
    ),
    PoolSpec(
        "Pool povertà e casa",
        "poverta",
        (),
        (
            ("Comune di Cassano d'Adda", "referente_comunale"),
            ("Cooperativa Sociale Milagro", "referente_cooperativa"),
            ("ACLI Circolo Ghidini e Bonomi APS", "referente_cooperativa"),
            ("Fondazione Somaschi", "referente_cooperativa"),
        ),
        response_days=10,
    ),
    PoolSpec(
        "Gruppo minori",
        "minori",
        (),
        (
            ("Comune di Inzago", "referente_comunale"),
            ("ASST Melegnano e Martesana", "referente_asst"),
            ("Cooperativa Sociale Spazio Giovani", "referente_cooperativa"),
        ),
    ),
    PoolSpec(
        "Rete VIOLA",
        "violenza",
        (),
        (
            ("Comune di Melzo", "referente_comunale"),
            ("ASST Melegnano e Martesana", "referente_asst"),
            ("Cooperativa Sociale Punto d'Incontro", "referente_cooperativa"),
        ),
        response_days=2,
    ),
)

# Non-unique secondary indexes of these tables are rebuilt after the load (unique ones stay: some
# are the targets of composite foreign keys).
BULK_TABLES = ("person", "dossier", "consent", "dossier_routing", "routing_task", "dossier_participant")


def pick(random_column: str, choices: Sequence[tuple[str, float]]) -> str:
    """SQL CASE choosing a value with the given probabilities from a uniform [0,1) column."""
    total = sum(weight for _, weight in choices)
    parts, bound = [], 0.0
    for value, weight in choices[:-1]:
        bound += weight / total
        parts.append(f"WHEN {random_column} < {bound:.6f} THEN '{value}'")
    return f"CASE {' '.join(parts)} ELSE '{choices[-1][0]}' END"


@dataclass
class Timings:
    steps: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        elapsed = time.perf_counter() - started
        self.steps[name] = round(elapsed, 2)
        print(f"  seed: {name:<34} {elapsed:7.1f} s", file=sys.stderr, flush=True)


async def _count(connection: asyncpg.Connection, table: str) -> int:
    value: int = await connection.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 - our own names
    return value


async def _ambito(connection: asyncpg.Connection) -> uuid.UUID:
    ambito_id: uuid.UUID | None = await connection.fetchval(
        "SELECT id FROM ambito WHERE code = $1", AMBITO_CODE
    )
    if ambito_id is None:
        raise SystemExit(f"ambito {AMBITO_CODE} not found: run `snodo seed-demo --password …` first")
    return ambito_id


async def _add_social_workers(connection: asyncpg.Connection, ambito_id: uuid.UUID) -> int:
    """Social workers of each comune, as many as SOCIAL_WORKERS says, named from the name lists."""
    rows = []
    number = 0
    for comune, count in SOCIAL_WORKERS.items():
        for k in range(count):
            number += 1
            given = (FEMALE_NAMES if number % 4 else MALE_NAMES)[(number * 7) % 60]
            family = SURNAMES[(number * 13) % 120]
            slug = "".join(c for c in comune.lower() if c.isalpha())[:12]
            rows.append((f"Comune di {comune}", f"as{k + 1}.{slug}@bench.snodo.it", f"{given} {family}"))
    created: int = 0
    for organization, email, full_name in rows:
        status = await connection.execute(
            """
            INSERT INTO app_user (id, ambito_id, organization_id, email, full_name, roles, password_hash)
            SELECT uuidv7(), $1, o.id, $3, $4, ARRAY['social_worker'], NULL
            FROM organization o WHERE o.ambito_id = $1 AND o.name = $2
            ON CONFLICT DO NOTHING
            """,
            ambito_id,
            organization,
            email,
            full_name,
        )
        created += int(status.rsplit(" ", 1)[-1])
    return created


async def _ensure_pools(connection: asyncpg.Connection, ambito_id: uuid.UUID) -> int:
    """Create the POOLS unless the ambito already has pools (then those are used as they are)."""
    if await connection.fetchval("SELECT count(*) FROM pool WHERE ambito_id = $1", ambito_id):
        return 0
    comuni = dict(await connection.fetch("SELECT name, id FROM comune WHERE ambito_id = $1", ambito_id))
    organizations = dict(
        await connection.fetch("SELECT name, id FROM organization WHERE ambito_id = $1", ambito_id)
    )
    for spec in POOLS:
        pool_id: uuid.UUID = await connection.fetchval(
            """
            INSERT INTO pool (id, ambito_id, name, area, active_from, response_days)
            VALUES (uuidv7(), $1, $2, $3, current_date - 1200, $4) RETURNING id
            """,
            ambito_id,
            spec.name,
            spec.area,
            spec.response_days,
        )
        territory = [comuni[name] for name in spec.comuni] if spec.comuni else list(comuni.values())
        await connection.executemany(
            "INSERT INTO pool_comune (pool_id, comune_id, ambito_id) VALUES ($1, $2, $3)",
            [(pool_id, comune_id, ambito_id) for comune_id in territory],
        )
        await connection.executemany(
            """
            INSERT INTO pool_member (id, ambito_id, pool_id, organization_id, role, added_at)
            VALUES (uuidv7(), $1, $2, $3, $4, now() - interval '1200 days')
            """,
            [(ambito_id, pool_id, organizations[name], role) for name, role in spec.members],
        )
    return len(POOLS)


async def _prepare_lookups(connection: asyncpg.Connection, ambito_id: uuid.UUID) -> None:
    """Small temp tables the bulk statements join: comuni with weights, social workers, pools."""
    comuni = dict(await connection.fetch("SELECT name, id FROM comune WHERE ambito_id = $1", ambito_id))
    missing = set(COMUNE_WEIGHTS) - set(comuni)
    if missing:
        raise SystemExit(f"comuni missing from the demo territory: {sorted(missing)}")
    total = sum(COMUNE_WEIGHTS.values())
    bounds, low = [], 0.0
    for name, weight in COMUNE_WEIGHTS.items():
        high = low + weight / total
        bounds.append((comuni[name], low, 1.0 if name == list(COMUNE_WEIGHTS)[-1] else high))
        low = high
    await connection.execute(
        "CREATE TEMP TABLE bench_comune (comune_id uuid PRIMARY KEY, lo float8, hi float8)"
    )
    await connection.executemany("INSERT INTO bench_comune VALUES ($1, $2, $3)", bounds)
    # The comune's organization and its social workers (the demo ones included).
    await connection.execute(
        """
        CREATE TEMP TABLE bench_sw AS
        SELECT o.comune_id, o.id AS organization_id,
               array_agg(u.id ORDER BY u.email) AS user_ids
        FROM organization o
        JOIN app_user u ON u.organization_id = o.id AND 'social_worker' = ANY(u.roles)
        WHERE o.ambito_id = $1 AND o.kind = 'comune'
        GROUP BY o.comune_id, o.id
        """,
        ambito_id,
    )
    # One pool per (area, comune): the routing target of a dossier of that comune with that need.
    await connection.execute(
        """
        CREATE TEMP TABLE bench_pool_map AS
        SELECT DISTINCT ON (p.area, pc.comune_id) p.area, pc.comune_id, p.id AS pool_id, p.response_days
        FROM pool p JOIN pool_comune pc ON pc.pool_id = p.id
        WHERE p.ambito_id = $1 AND (p.active_until IS NULL OR p.active_until >= current_date)
        ORDER BY p.area, pc.comune_id, p.name
        """,
        ambito_id,
    )


def _areas_sql() -> str:
    """The need-area array of a row, from the uniform columns a1..a9 and its age band (0, 1, 2)."""
    items = []
    for k, (area, (minor, adult, elderly)) in enumerate(NEED_AREAS, start=1):
        probability = f"(CASE band WHEN 0 THEN {minor} WHEN 1 THEN {adult} ELSE {elderly} END)"
        items.append(f"CASE WHEN a{k} < {probability} THEN '{area}' END")
    return f"array_remove(ARRAY[{', '.join(items)}]::varchar[], NULL)"


MONTH_LETTERS = "ABCDEHLMPRST"

SOURCE_SQL = f"""
CREATE TEMP TABLE bench_src AS
SELECT
    d.*,
    CASE WHEN d.r_fc >= 0.03 THEN
        d.family_code || d.given_code || to_char(d.birth_date, 'YY')
        || substr('{MONTH_LETTERS}', extract(month FROM d.birth_date)::int, 1)
        || lpad((extract(day FROM d.birth_date)::int + CASE d.sex WHEN 'F' THEN 40 ELSE 0 END)::text, 2, '0')
        || d.birth_code || d.check_letter
    END AS fiscal_code,
    CASE
        WHEN d.r_fc >= 0.03 THEN NULL
        WHEN d.compartment = 'violence' THEN 'anonymous_protection'
        WHEN d.band = 0 AND d.r_fc < 0.003 THEN 'newborn'
        WHEN d.r_fc < 0.018 THEN 'recent_arrival'
        ELSE 'not_known'
    END AS no_fiscal_code_reason,
    uuidv7(d.opened_at - now()) AS person_id,
    uuidv7(d.opened_at - now()) AS dossier_id
FROM (
    SELECT
        c.*,
        route_area IS NOT NULL AND state IN {ROUTED_STATES!r} AND r_route < 0.8 AS routed,
        CASE WHEN route_area IS NOT NULL AND state IN {ROUTED_STATES!r} AND r_route < 0.8
             THEN r_consent < 0.9 ELSE r_consent < 0.4 END AS has_consent
    FROM (
        SELECT
            b.*,
            {ROUTE_AREA_SQL}
                AS route_area
        FROM (
            SELECT
                a.n,
                a.comune_id,
                a.band,
                ($2::text[])[a.fam_idx] AS family_name,
                ($3::text[])[a.fam_idx] AS family_code,
                CASE WHEN a.female THEN ($4::text[])[a.female_idx] ELSE ($6::text[])[a.male_idx] END
                    AS given_name,
                CASE WHEN a.female THEN ($5::text[])[a.female_idx] ELSE ($7::text[])[a.male_idx] END
                    AS given_code,
                CASE WHEN a.female THEN 'F' ELSE 'M' END AS sex,
                a.birth_date,
                ($8::text[])[a.place_idx] AS birth_place,
                ($9::text[])[a.place_idx] AS birth_code,
                CASE WHEN a.place_idx <= $10::int THEN 'italiana' ELSE ($8::text[])[a.place_idx] END
                    AS citizenship,
                ($11::text[])[1 + a.n % cardinality($11::text[])] || ' ' || (1 + a.n % 97) AS address,
                CASE WHEN a.r_phone < 0.6
                     THEN '3' || lpad((a.n::bigint * 7919 % 1000000000)::text, 9, '0') END
                    AS phone,
                a.r_fc,
                a.check_letter,
                a.opened_at,
                CASE WHEN a.state = 'in_pool'  -- just routed: waiting for the members' answers
                     THEN greatest(a.opened_at, now() - a.r_updated * interval '30 days')
                     ELSE a.opened_at + (now() - a.opened_at) * sqrt(a.r_updated) END AS updated_at,
                a.state,
                {pick("a.r_urgency", URGENCIES)} AS urgency,
                CASE WHEN a.r_cm < 0.30 THEN 1 + floor(a.r_cm_pick * 1000)::int END AS cm_pick,
                a.r_route,
                a.r_consent,
                a.r_label,
                a.r_revoked,
                a.r_second,
                a.r_routed_at,
                a.r_awaiting,
                CASE WHEN cardinality(a.areas) = 0 THEN ARRAY['poverta']::varchar[] ELSE a.areas END
                    AS need_areas,
                CASE
                    WHEN 'violenza' = ANY(a.areas) AND a.r_compartment < 0.6 THEN 'violence'
                    WHEN a.band = 0 AND 'minori' = ANY(a.areas) AND a.r_compartment < 0.05 THEN 'judicial'
                    ELSE 'ordinary'
                END AS compartment
            FROM (
                SELECT r.*, {_areas_sql()} AS areas
                FROM (
                    SELECT
                        s.n,
                        bc.comune_id,
                        s.band,
                        1 + floor(cardinality($2::text[]) * power(s.r_fam, 1.6))::int AS fam_idx,
                        s.r_sex < 0.52 AS female,
                        1 + floor(cardinality($4::text[]) * s.r_given)::int AS female_idx,
                        1 + floor(cardinality($6::text[]) * s.r_given)::int AS male_idx,
                        (current_date - (CASE s.band
                            WHEN 0 THEN s.r_age * 18
                            WHEN 1 THEN 18 + s.r_age * 47
                            ELSE 65 + s.r_age * 33 END * 365.25)::int) AS birth_date,
                        CASE WHEN s.r_place < 0.22  -- born abroad: one of the foreign places
                            THEN $10::int + 1
                                 + floor((cardinality($9::text[]) - $10::int) * s.r_place / 0.22)::int
                            ELSE 1 + floor($10::int * (s.r_place - 0.22) / 0.78)::int END AS place_idx,
                        s.r_phone,
                        s.r_fc,
                        chr(65 + floor(s.r_check * 26)::int) AS check_letter,
                        now() - s.r_opened * interval '3 years' AS opened_at,
                        s.r_updated,
                        {pick("s.r_state", STATES)} AS state,
                        s.r_urgency, s.r_cm, s.r_cm_pick, s.r_route, s.r_consent, s.r_label,
                        s.r_revoked, s.r_second, s.r_routed_at, s.r_awaiting, s.r_compartment,
                        s.a1, s.a2, s.a3, s.a4, s.a5, s.a6, s.a7, s.a8, s.a9
                    FROM (
                        SELECT
                            g.n,
                            random() AS r_comune,
                            CASE WHEN random() < 0.15 THEN 0 WHEN random() < 0.65 THEN 1 ELSE 2 END AS band,
                            random() AS r_fam, random() AS r_sex, random() AS r_given, random() AS r_age,
                            random() AS r_place, random() AS r_phone, random() AS r_fc,
                            random() AS r_check, random() AS r_opened, random() AS r_updated,
                            random() AS r_state, random() AS r_urgency, random() AS r_cm,
                            random() AS r_cm_pick, random() AS r_route, random() AS r_consent,
                            random() AS r_label, random() AS r_revoked, random() AS r_second,
                            random() AS r_routed_at, random() AS r_awaiting, random() AS r_compartment,
                            random() AS a1, random() AS a2, random() AS a3, random() AS a4,
                            random() AS a5, random() AS a6, random() AS a7, random() AS a8, random() AS a9
                        FROM generate_series(1, $1) AS g(n)
                    ) s
                    JOIN bench_comune bc ON s.r_comune >= bc.lo AND s.r_comune < bc.hi
                ) r
            ) a
        ) b
    ) c
) d
"""  # noqa: S608 - only this module's constants are interpolated


# Homocodes (same letters, same birth date and place) exist in real life too; here the later ones
# simply have no code yet, since the ambito keeps codes unique.
DEDUPLICATE_FISCAL_CODES_SQL = """
UPDATE bench_src b SET fiscal_code = NULL, no_fiscal_code_reason = 'not_known'
FROM (
    SELECT n FROM (
        SELECT n, row_number() OVER (PARTITION BY fiscal_code ORDER BY n) AS k
        FROM bench_src WHERE fiscal_code IS NOT NULL
    ) ranked WHERE k > 1
) dup
WHERE b.n = dup.n
"""

INSERT_PERSON_SQL = """
INSERT INTO person (id, ambito_id, fiscal_code, no_fiscal_code_reason, given_name, family_name, sex,
                    birth_date, birth_place, citizenship, residence_comune_id, address, phone,
                    created_at, updated_at)
SELECT person_id, $1, fiscal_code, no_fiscal_code_reason, given_name, family_name, sex,
       birth_date, birth_place, citizenship, comune_id, address, phone, opened_at, updated_at
FROM bench_src ORDER BY n
"""

INSERT_DOSSIER_SQL = f"""
INSERT INTO dossier (id, ambito_id, person_id, state, compartment, need_areas, urgency,
                     residence_comune_id, case_manager_user_id, opened_at, closed_at, outcome,
                     awaiting_routing, created_at, updated_at)
SELECT s.dossier_id, $1, s.person_id, s.state, s.compartment, s.need_areas, s.urgency,
       s.comune_id,
       CASE WHEN s.cm_pick IS NOT NULL THEN sw.user_ids[1 + s.cm_pick % cardinality(sw.user_ids)] END,
       s.opened_at,
       CASE WHEN s.state IN {TERMINAL_STATES!r} THEN s.updated_at END,
       CASE WHEN s.state = 'chiuso' THEN 'Obiettivi del progetto raggiunti' END,
       s.state IN ('segnalato', 'in_valutazione') AND NOT s.routed AND s.r_awaiting < 0.1,
       s.opened_at, s.updated_at
FROM bench_src s JOIN bench_sw sw ON sw.comune_id = s.comune_id
ORDER BY s.n
"""  # noqa: S608 - only this module's constants are interpolated

INSERT_CONSENT_SQL = """
INSERT INTO consent (id, ambito_id, person_id, organization_kinds, purposes, labels, legal_basis,
                     given_on, revoked_at, revoked_reason, recorded_by_kind, recorded_by_id,
                     recorded_by_organization_id, created_at)
SELECT uuidv7(s.opened_at - now()), $1, s.person_id,
       ARRAY['comune', 'cooperativa', 'afol', 'asst']::varchar[],
       ARRAY['presa_in_carico']::varchar[],
       CASE
           WHEN 'salute_mentale' = ANY(s.need_areas) AND s.r_label < 0.5 THEN ARRAY['PSY']::varchar[]
           WHEN 'dipendenze' = ANY(s.need_areas) AND s.r_label < 0.5 THEN ARRAY['ETH']::varchar[]
           ELSE ARRAY[]::varchar[]
       END,
       'consent', s.opened_at::date,
       CASE WHEN s.r_revoked < 0.03 THEN s.updated_at END,
       CASE WHEN s.r_revoked < 0.03 THEN 'Revocato dall''interessato' END,
       'user', sw.user_ids[1], sw.organization_id, s.opened_at
FROM bench_src s JOIN bench_sw sw ON sw.comune_id = s.comune_id
WHERE s.has_consent
ORDER BY s.n
"""

ROUTING_SQL = """
CREATE TEMP TABLE bench_routing AS
SELECT uuidv7(r.routed_at - now()) AS id, r.dossier_id, m.pool_id, m.response_days, r.routed_at, r.state
FROM (
    SELECT dossier_id, comune_id, state, route_area AS area,
           CASE WHEN state = 'in_pool' THEN updated_at
                ELSE opened_at + (updated_at - opened_at) * r_routed_at END AS routed_at
    FROM bench_src WHERE routed
    UNION ALL
    -- A quarter of the routed dossiers with a poverty need also go to the poverty pool.
    SELECT dossier_id, comune_id, state, 'poverta',
           CASE WHEN state = 'in_pool' THEN updated_at
                ELSE opened_at + (updated_at - opened_at) * r_routed_at END
    FROM bench_src
    WHERE routed AND route_area <> 'poverta' AND need_areas && ARRAY['poverta', 'casa']::varchar[]
      AND r_second < 0.25
) r
JOIN bench_pool_map m ON m.area = r.area AND m.comune_id = r.comune_id
"""

INSERT_ROUTING_SQL = """
INSERT INTO dossier_routing (id, ambito_id, dossier_id, pool_id, explanation, routed_at, reason)
SELECT id, $1, dossier_id, pool_id,
       jsonb_build_object('source', 'bench', 'matched', 'need area and comune'),
       routed_at, 'Segnalazione instradata al pool competente'
FROM bench_routing ORDER BY routed_at
"""

# Each member organization's answer: dossiers still "in pool" have open requests (mostly
# overdue), the others were accepted long ago; a few declined.
TASK_SQL = """
CREATE TEMP TABLE bench_task AS
SELECT t.*,
       CASE
           WHEN t.state = 'in_pool' THEN
               CASE WHEN t.r < 0.45 THEN 'requested' WHEN t.r < 0.92 THEN 'accepted' ELSE 'declined' END
           ELSE
               CASE WHEN t.r < 0.85 THEN 'accepted' WHEN t.r < 0.96 THEN 'completed' ELSE 'declined' END
       END AS status
FROM (
    SELECT uuidv7(r.routed_at - now()) AS id, r.id AS routing_id, r.dossier_id, r.pool_id,
           m.organization_id, r.routed_at, r.response_days, r.state, random() AS r, random() AS r_answer
    FROM bench_routing r
    JOIN (SELECT DISTINCT pool_id, organization_id FROM pool_member WHERE removed_at IS NULL) m
        ON m.pool_id = r.pool_id
) t
"""

INSERT_TASK_SQL = """
INSERT INTO routing_task (id, ambito_id, routing_id, dossier_id, pool_id, organization_id, status,
                          due_at, answered_at, answered_by_kind, reason, created_at)
SELECT id, $1, routing_id, dossier_id, pool_id, organization_id, status,
       routed_at + response_days * interval '1 day' * 7 / 5,
       CASE WHEN status <> 'requested' THEN routed_at + response_days * interval '1 day' * r_answer END,
       CASE WHEN status <> 'requested' THEN 'user' END,
       CASE WHEN status = 'declined' THEN 'Nessuna disponibilità nel periodo' END,
       routed_at
FROM bench_task ORDER BY routed_at
"""

# Pool members see routed dossiers through the pool basis (no participant row). Participants are
# the providers of an intervention: a cooperative of the pool for ~15 % of its accepted routings.
INSERT_PARTICIPANT_SQL = """
INSERT INTO dossier_participant (id, ambito_id, dossier_id, organization_id, basis, sections,
                                 starts_at, reason, added_by_user_id, created_at, updated_at)
SELECT uuidv7(p.starts_at - now()), $1, p.dossier_id, p.organization_id, 'provider',
       ARRAY['registry', 'plan', 'interventions']::varchar[], p.starts_at,
       'Erogazione dell''intervento', NULL, p.starts_at, p.starts_at
FROM (
    SELECT DISTINCT ON (t.dossier_id, t.organization_id) t.dossier_id, t.organization_id,
           t.routed_at + interval '10 days' AS starts_at
    FROM bench_task t JOIN organization o ON o.id = t.organization_id
    WHERE t.status IN ('accepted', 'completed') AND o.kind IN ('cooperativa', 'associazione')
      AND t.r_answer < 0.15 AND t.routed_at + interval '10 days' < now()
    ORDER BY t.dossier_id, t.organization_id, t.routed_at
) p
ORDER BY p.starts_at
"""


async def _drop_secondary_indexes(connection: asyncpg.Connection) -> list[str]:
    rows = await connection.fetch(
        """
        SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
        FROM pg_index i
        WHERE i.indrelid::regclass::text = ANY($1::text[]) AND NOT i.indisunique AND NOT i.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        ORDER BY 1
        """,
        list(BULK_TABLES),
    )
    for row in rows:
        await connection.execute(f"DROP INDEX {row['name']}")
    return [row["definition"] for row in rows]


async def seed(dsn: str, persons: int, *, random_seed: float = 0.42, keep_indexes: bool = False) -> Timings:
    timings = Timings()
    connection = await asyncpg.connect(dsn)
    try:
        # Before any temp table is touched in this session.
        await connection.execute("SET temp_buffers = '1GB'")
        await connection.execute("SET work_mem = '256MB'")
        await connection.execute("SET maintenance_work_mem = '1GB'")
        await connection.execute("SET max_parallel_maintenance_workers = 2")
        await connection.execute("SET synchronous_commit = off")
        await connection.execute("SET snodo.ambito_id = '*'")
        ambito_id = await _ambito(connection)
        if await connection.fetchval("SELECT count(*) FROM dossier WHERE ambito_id = $1", ambito_id):
            raise SystemExit("the ambito already has dossiers: seed a fresh database")
        started = time.perf_counter()
        async with connection.transaction():
            await connection.execute("SELECT setseed($1)", random_seed)
            with timings.step("users and pools"):
                timings.rows["extra_social_workers"] = await _add_social_workers(connection, ambito_id)
                timings.rows["pools_created"] = await _ensure_pools(connection, ambito_id)
                await _prepare_lookups(connection, ambito_id)
            definitions: list[str] = []
            if not keep_indexes:
                with timings.step("drop secondary indexes"):
                    definitions = await _drop_secondary_indexes(connection)
            with timings.step("generate persons (temp)"):
                female = list(FEMALE_NAMES)
                male = list(MALE_NAMES)
                await connection.execute(
                    SOURCE_SQL,
                    persons,
                    list(SURNAMES),
                    [surname_code(s) for s in SURNAMES],
                    female,
                    [given_name_code(n) for n in female],
                    male,
                    [given_name_code(n) for n in male],
                    [place for place, _ in BIRTH_PLACES],
                    [code for _, code in BIRTH_PLACES],
                    sum(1 for _, code in BIRTH_PLACES if not code.startswith("Z")),
                    list(STREETS),
                )
                await connection.execute(DEDUPLICATE_FISCAL_CODES_SQL)
            with timings.step("insert person"):
                await connection.execute(INSERT_PERSON_SQL, ambito_id)
            with timings.step("insert dossier"):
                await connection.execute(INSERT_DOSSIER_SQL, ambito_id)
            with timings.step("insert consent"):
                await connection.execute(INSERT_CONSENT_SQL, ambito_id)
            with timings.step("insert dossier_routing"):
                await connection.execute(ROUTING_SQL)
                await connection.execute(INSERT_ROUTING_SQL, ambito_id)
            with timings.step("insert routing_task"):
                await connection.execute(TASK_SQL)
                await connection.execute(INSERT_TASK_SQL, ambito_id)
            with timings.step("insert dossier_participant"):
                await connection.execute(INSERT_PARTICIPANT_SQL, ambito_id)
            if definitions:
                with timings.step("recreate secondary indexes"):
                    for definition in definitions:
                        await connection.execute(definition)
        with timings.step("vacuum analyze"):
            await connection.execute("VACUUM (ANALYZE)")
        timings.steps["total"] = round(time.perf_counter() - started, 2)
        for table in BULK_TABLES:
            timings.rows[table] = await _count(connection, table)
    finally:
        await connection.close()
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True, help="database URL (SQLAlchemy or libpq style), superuser")
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--seed", type=float, default=0.42, help="random seed in [-1, 1]")
    parser.add_argument("--keep-indexes", action="store_true", help="do not drop/recreate secondary indexes")
    args = parser.parse_args(argv)
    timings = asyncio.run(
        seed(asyncpg_dsn(args.url), args.persons, random_seed=args.seed, keep_indexes=args.keep_indexes)
    )
    print(json.dumps({"persons": args.persons, "seconds": timings.steps, "rows": timings.rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
