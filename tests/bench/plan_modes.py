"""Custom against generic plans for the worklist, caller by caller and filter by filter.

    python -m tests.bench.plan_modes --pgdata /tmp/snodo-bench/pgdata-100000
    python -m tests.bench.plan_modes --pgdata /tmp/snodo-bench/pgdata-1000000
    python -m tests.bench.plan_modes --pgdata /tmp/snodo-bench-multi/pgdata-1000000  # tests.bench.clone

The service chooses the plan mode of each worklist page in `dossiers._plan_mode`
(app/services/dossiers/service.py). Plans depend on the statistics, so a change to the statement, or to
the data's shape, is checked again here at both sizes that tests.bench.run seeded (`--keep`) and
on a database holding several ambiti (tests.bench.clone): each case runs through the service call
(as `GET /api/v1/dossiers` would, no HTTP), with each plan mode forced, and prints execution and
planning ms of EXPLAIN ANALYZE and the best wall time of three runs.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.enums import DossierState, NeedArea
from app.core.pagination import encode_cursor
from app.services.dossiers import worklist as dossiers
from tests.bench import plans
from tests.bench.run import AFOL, MELZO, SOLLEVA, _fetch, _ids, on_data_dir
from tests.bench.seed import AMBITO_CODE
from tests.db import asyncpg_dsn

INZAGO = "as.inzago@demo.snodo.it"
# label -> the settings of that mode (SET LOCAL in the case's transaction)
MODES = {
    "custom": {"plan_cache_mode": "force_custom_plan"},
    "generic": {"plan_cache_mode": "force_generic_plan"},
    "generic, no bitmap scans": {"plan_cache_mode": "force_generic_plan", "enable_bitmapscan": "off"},
}


def cases() -> list[tuple[str, str, dict[str, Any]]]:
    week_ago = datetime.now(UTC) - timedelta(days=7)
    return [
        ("first page", MELZO, {}),
        ("first page", AFOL, {}),
        ("first page", SOLLEVA, {}),
        ("q=Brambila", MELZO, {"q": "Brambila", "limit": 20}),
        ("q=Ferari Giulia", AFOL, {"q": "Ferari Giulia", "limit": 20}),
        ("state sospeso", MELZO, {"states": (DossierState.sospeso,)}),
        ("state trasferito", INZAGO, {"states": (DossierState.trasferito,)}),
        ("state in_pool", AFOL, {"states": (DossierState.in_pool,)}),
        ("states in_pool, segnalato", MELZO, {"states": (DossierState.in_pool, DossierState.segnalato)}),
        ("overdue", AFOL, {"overdue": True}),
        ("overdue", MELZO, {"overdue": True}),
        ("overdue", SOLLEVA, {"overdue": True}),
        ("need area lavoro", MELZO, {"need_area": NeedArea.lavoro}),
        ("need area dipendenze", MELZO, {"need_area": NeedArea.dipendenze}),
        ("need area lavoro", AFOL, {"need_area": NeedArea.lavoro}),
        ("assigned to me", MELZO, {"assigned_to_me": True}),
        ("updated in the last 7 days", MELZO, {"updated_since": week_ago}),
        ("updated in the last 7 days", AFOL, {"updated_since": week_ago}),
    ]


async def _id_cases(url: str) -> list[tuple[str, str, dict[str, Any]]]:
    """The cases that need the data's ids: a page deep in the cursor chain, the `pool_id` and
    `comune_id` filters (alone and with others), for a pool member and for a social worker (the
    ids as the benchmark finds them: the seed makes new ones each time)."""
    dsn = asyncpg_dsn(url)
    week_ago = datetime.now(UTC) - timedelta(days=7)
    ids = await _ids(dsn)
    # Deep pages: the cursor of the 10,000th newest dossier of the seeded ambito.
    deep = (
        await _fetch(
            dsn,
            "SELECT id FROM dossier WHERE ambito_id = (SELECT id FROM ambito WHERE code = $1)"
            " ORDER BY id DESC OFFSET 10000 LIMIT 1",
            AMBITO_CODE,
        )
    )[0][0]
    return [
        *(("page after 10,000", login, {"cursor": encode_cursor(deep)}) for login in (MELZO, AFOL, SOLLEVA)),
        ("pool_id, after 10,000", AFOL, {"pool_id": ids["pool_lavoro_melzo"], "cursor": encode_cursor(deep)}),
        (
            "comune_id Liscate, after 10,000",
            AFOL,
            {"comune_id": ids["comune_liscate"], "cursor": encode_cursor(deep)},
        ),
        (
            "comune_id Melzo, after 10,000",
            MELZO,
            {"comune_id": ids["comune_melzo"], "cursor": encode_cursor(deep)},
        ),
        (
            "pool_id + state in_pool",
            AFOL,
            {"pool_id": ids["pool_lavoro_melzo"], "states": (DossierState.in_pool,)},
        ),
        (
            "comune_id Melzo + need area lavoro",
            MELZO,
            {"comune_id": ids["comune_melzo"], "need_area": NeedArea.lavoro},
        ),
        (
            "comune_id Liscate + updated 7 days",
            AFOL,
            {"comune_id": ids["comune_liscate"], "updated_since": week_ago},
        ),
        (
            "pool_id + need area lavoro",
            AFOL,
            {"pool_id": ids["pool_lavoro_melzo"], "need_area": NeedArea.lavoro},
        ),
        (
            "comune_id Liscate + need area lavoro",
            AFOL,
            {"comune_id": ids["comune_liscate"], "need_area": NeedArea.lavoro},
        ),
        ("q=Brambila, after 10,000", MELZO, {"q": "Brambila", "limit": 20, "cursor": encode_cursor(deep)}),
        *(("pool_id lavoro Melzo", login, {"pool_id": ids["pool_lavoro_melzo"]}) for login in (AFOL, MELZO)),
        ("comune_id Liscate", AFOL, {"comune_id": ids["comune_liscate"]}),
        ("comune_id Melzo", MELZO, {"comune_id": ids["comune_melzo"]}),
    ]


async def compare(url: str) -> None:
    service_sets = dossiers.set_local

    async def all_but_the_plan_mode(connection: AsyncConnection, settings: dict[str, str]) -> None:
        """The plan mode is the case's own (`settings`); the service's other settings hold."""
        rest = {
            name: value for name, value in settings.items() if name not in MODES["generic, no bitmap scans"]
        }
        if rest:
            await service_sets(connection, rest)

    dossiers.set_local = all_but_the_plan_mode  # type: ignore[assignment]
    for mode, settings in MODES.items():
        run = []
        for name, login, filters in [*cases(), *await _id_cases(url)]:
            limit = filters.pop("limit", 50)
            label = f"{name} - {login.split('@')[0]}"
            call = plans.worklist(limit, **filters)
            run.append(plans.PlanCase(label, login, call, settings=settings))
        for plan in await plans.collect(url, run):
            print(
                f"{mode:24s} {plan.name.removesuffix(' [generic plan]'):42s}"
                f" execution {plan.execution_ms} ms, planning {plan.planning_ms} ms,"
                f" best of 3 {plan.best_of_3_ms} ms, {plan.rows} rows {plan.error or ''}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pgdata", type=Path, required=True)
    args = parser.parse_args()
    return on_data_dir(args.pgdata, compare)


if __name__ == "__main__":
    raise SystemExit(main())
