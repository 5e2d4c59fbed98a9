"""The worklist benchmark, end to end: PostgreSQL, seed, real server, load, plans, report.

    python -m tests.bench.run --persons 1000000 --keep

1. an embedded PostgreSQL in `--workdir` (default /tmp/snodo-bench), tuned for the machine (see
   PG_SETTINGS), the data directory kept between runs with `--keep` (the seed is then reused);
2. the Alembic migrations, `snodo seed-demo --password …`, then `tests.bench.seed` (N persons);
3. the real server, `python -m app.cli serve`, as a subprocess on the embedded socket;
4. the demo users log in; cursor chains are walked `--deep-pages` deep for the deep scenarios;
5. each scenario of SCENARIOS: `--users` virtual users for `--warmup` + `--duration` seconds,
   in a separate load-generator process (tests/bench/load.py), with the CPU used by the server,
   PostgreSQL and the generator, and the top statements of pg_stat_statements;
6. EXPLAIN (ANALYZE, BUFFERS) of the worklist and the search as `app.services.dossiers.service.list_visible`
   sends them, and of the prototypes of the suggested shapes (PLAN_CASES, tests/bench/plans.py);
7. a JSON and a Markdown report, on stdout and in `--workdir`.

The target: worklist and search p95 ≤ 50 ms with 20 concurrent clients, and ≤ 2× the p95 of the
bare endpoint (tests/bench/raw.py: the same SELECT through the bare driver, no framework) measured
in the same run; deep pages no slower than the first. `GET /api/v1/me` (authentication and one
query) is reported beside them as the service's own floor. Method, results and findings: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from app.core import migrations
from app.core.embedded import EmbeddedPostgres
from tests.bench import plans, seed
from tests.bench.names import SEARCH_TERMS
from tests.bench.raw import Statements
from tests.db import asyncpg_dsn

REPO = Path(__file__).resolve().parents[2]
DEMO_PASSWORD = "snodo-bench-2026"
JWT_SECRET = "bench-" + "s" * 40
TARGET_P95_MS = 50.0
TARGET_RATIO = 2.0

# Server settings for a 2-core, 24 GB machine with an SSD; durability (fsync, synchronous_commit)
# is left on unless --no-fsync. pg_stat_statements gives the per-statement time of each scenario.
# work_mem stays at PostgreSQL's default (4MB) on purpose: it changes the worklist's plan (see the
# "work_mem=64MB" plan case) and production servers are often tuned higher.
PG_SETTINGS: dict[str, str] = {
    "shared_buffers": "2GB",
    "effective_cache_size": "12GB",
    "maintenance_work_mem": "1GB",
    "random_page_cost": "1.1",
    "effective_io_concurrency": "200",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "top",
    "track_io_timing": "on",
}


# ---------------------------------------------------------------------------------------------
# The scenarios: edit this table. Parameter values are formatted with the context (see
# `_context`): {deep_cursor} (the cursor `--deep-pages` deep in this same query), {me} (the
# user's id), {pool_lavoro_melzo}, {comune_melzo}… (pool and comune ids by slug), {since_7d}.
# Several parameter sets run mixed in one load run and are reported one by one.


@dataclass(frozen=True)
class Scenario:
    name: str
    login: str  # the demo user whose token every virtual user sends
    path: str
    variants: tuple[dict[str, str], ...] = ({},)
    kind: str = "worklist"  # "baseline" | "worklist" | "search": how the verdict is read
    default: bool = True  # run without --scenarios
    first_page_of: str | None = None  # deep scenarios: the scenario whose p95 they must not exceed


MELZO = "as.melzo@demo.snodo.it"  # social worker, Comune di Melzo (residence basis + pools)
AFOL = "afol@demo.snodo.it"  # AFOL employment operator: member of the work and poverty pools
SOLLEVA = "coop.solleva@demo.snodo.it"  # cooperative operator: one pool
LIST = "/api/v1/dossiers"
PAGE = {"limit": "50"}
DEEP = {"limit": "50", "cursor": "{deep_cursor}"}


def _search(*terms: str) -> tuple[dict[str, str], ...]:
    return tuple({"q": term, "limit": "20"} for term in terms)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("a_baseline_me", MELZO, "/api/v1/me", kind="baseline"),
    Scenario("b_worklist", MELZO, LIST, (PAGE,)),
    Scenario("c_worklist_deep", MELZO, LIST, (DEEP,), first_page_of="b_worklist"),
    Scenario("d_pool_member", AFOL, LIST, (PAGE,)),
    Scenario("d_pool_member_deep", AFOL, LIST, (DEEP,), first_page_of="d_pool_member"),
    Scenario("e_name_search", MELZO, LIST, _search(*SEARCH_TERMS), kind="search"),
    # The worklist filters, one by one (run them with --scenarios all, or --scenarios f_).
    Scenario("f_coop_member", SOLLEVA, LIST, (PAGE,), default=False),
    Scenario("f_state", MELZO, LIST, ({**PAGE, "state": "sospeso"},), default=False),
    Scenario("f_pool", AFOL, LIST, ({**PAGE, "pool_id": "{pool_lavoro_melzo}"},), default=False),
    Scenario("f_comune", AFOL, LIST, ({**PAGE, "comune_id": "{comune_liscate}"},), default=False),
    Scenario("f_need_area", MELZO, LIST, ({**PAGE, "need_area": "dipendenze"},), default=False),
    Scenario("f_assigned_to_me", MELZO, LIST, ({**PAGE, "assigned_to_me": "true"},), default=False),
    Scenario("f_case_manager", MELZO, LIST, ({**PAGE, "case_manager_id": "{me}"},), default=False),
    Scenario("f_updated_since", MELZO, LIST, ({**PAGE, "updated_since": "{since_7d}"},), default=False),
    Scenario("f_overdue", AFOL, LIST, ({**PAGE, "overdue": "true"},), default=False),
    Scenario("f_search_pool_member", AFOL, LIST, _search(*SEARCH_TERMS[:4]), kind="search", default=False),
)  # fmt: skip

# What plans.py explains, through the service: (name, login, arguments). Arguments: "deep": True
# (the cursor `--deep-pages` deep), "limit", "settings" (SET LOCAL, e.g. work_mem), any
# WorklistFilter field (values formatted with the scenario context, "*_id" turned into UUIDs); or
# "candidate" + "term" for a search shape of plans.search_candidate; or "prototype": True for the
# suggested keyset-per-basis worklist (plans.keyset_union); or "definer_search": term for the
# suggested name search (plans.search_via_definer).
W64 = {"work_mem": "64MB"}
PLAN_CASES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("worklist first page - as.melzo", MELZO, {}),
    ("worklist first page - as.melzo, work_mem=64MB", MELZO, {"settings": W64}),
    ("worklist deep page - as.melzo", MELZO, {"deep": True}),
    ("worklist first page - afol (pool member)", AFOL, {}),
    ("worklist deep page - afol (pool member)", AFOL, {"deep": True}),
    ("worklist first page - coop.solleva", SOLLEVA, {}),
    ("search q=Brambila - as.melzo", MELZO, {"limit": 20, "q": "Brambila"}),
    ("search q=niccolo - as.melzo", MELZO, {"limit": 20, "q": "niccolo"}),
    ("search q=Ferari Giulia - afol", AFOL, {"limit": 20, "q": "Ferari Giulia"}),
    ("filter state=sospeso - as.melzo", MELZO, {"states": ("sospeso",)}),
    ("filter pool_id=Pool lavoro Melzo - afol", AFOL, {"pool_id": "{pool_lavoro_melzo}"}),
    ("filter overdue - afol", AFOL, {"overdue": True}),
    ("candidate: similarity >= 0.5 by score", MELZO, {"candidate": "similarity_0.5", "term": "Brambila"}),
    ("candidate: word_similarity by score", MELZO, {"candidate": "word_similarity", "term": "Brambila"}),
    ("PROTOTYPE keyset per basis - as.melzo", MELZO, {"prototype": True}),
    ("PROTOTYPE keyset per basis - as.melzo, work_mem=64MB", MELZO, {"prototype": True, "settings": W64}),
    ("PROTOTYPE keyset per basis, deep - as.melzo", MELZO, {"prototype": True, "deep": True}),
    ("PROTOTYPE keyset per basis - afol", AFOL, {"prototype": True}),
    ("PROTOTYPE keyset per basis, deep - afol", AFOL, {"prototype": True, "deep": True}),
    ("PROTOTYPE search via definer q=Brambila - as.melzo", MELZO, {"definer_search": "Brambila"}),
    ("PROTOTYPE search via definer q=popescu ioana - as.melzo", MELZO, {"definer_search": "popescu ioana"}),
    ("PROTOTYPE search via definer q=Ferari Giulia - afol", AFOL, {"definer_search": "Ferari Giulia"}),
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# PostgreSQL


async def _tune(pg: EmbeddedPostgres, settings: dict[str, str]) -> bool:
    """ALTER SYSTEM the settings; True if PostgreSQL must restart for them."""
    connection = await asyncpg.connect(host=pg.socket_dir, user="postgres", database="postgres")
    try:
        await connection.execute("ALTER SYSTEM RESET ALL")  # a kept data directory starts over too
        for name, value in settings.items():
            await connection.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        await connection.execute("SELECT pg_reload_conf()")
        await asyncio.sleep(0.5)
        return bool(await connection.fetchval("SELECT count(*) FROM pg_settings WHERE pending_restart"))
    finally:
        await connection.close()


async def _fetch(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("SET snodo.ambito_id = '*'")
        rows: list[asyncpg.Record] = await connection.fetch(query, *args)
        return rows
    finally:
        await connection.close()


async def _execute(dsn: str, *statements: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def _server_facts(dsn: str) -> dict[str, Any]:
    shown = [*PG_SETTINGS, "work_mem", "fsync", "synchronous_commit", "jit", "max_connections"]
    rows = await _fetch(
        dsn, "SELECT name, current_setting(name) AS value FROM unnest($1::text[]) AS name ORDER BY 1", shown
    )
    sizes = await _fetch(
        dsn,
        """
        SELECT relname, pg_size_pretty(pg_total_relation_size(oid)) AS size FROM pg_class
        WHERE relname IN ('person', 'dossier', 'consent', 'dossier_routing', 'routing_task',
                          'dossier_participant', 'audit_event') AND relkind = 'r' ORDER BY relname
        """,
    )
    version = (await _fetch(dsn, "SELECT version()"))[0][0]
    database = (await _fetch(dsn, "SELECT pg_size_pretty(pg_database_size(current_database()))"))[0][0]
    return {
        "version": version,
        "database_size": database,
        "settings": {r["name"]: r["value"] for r in rows},
        "table_sizes": {r["relname"]: r["size"] for r in sizes},
    }


# ---------------------------------------------------------------------------------------------
# The server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(url: str, workdir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNODO_", "DATABASE_URL"))}
    env.update(
        DATABASE_URL=url,
        SNODO_DATA_DIR=str(workdir / "var"),
        SNODO_JWT_SECRET=JWT_SECRET,
        SNODO_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra or {})
    return env


@contextmanager
def _running(
    command: list[str], log_path: Path, ready_url: str, ready_status: int, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess, once `ready_url` answers `ready_status`; stopped with SIGINT (then killed)."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{command[2]} exited early, see {log_path}")
                with suppress(httpx.TransportError):
                    if httpx.get(ready_url, timeout=2).status_code == ready_status:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{command[2]} is not ready after 90 s, see {log_path}")
                time.sleep(0.2)
            yield process
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def serve(
    url: str,
    workdir: Path,
    port: int,
    extra_env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), *(extra_args or [])]
    ready = f"http://127.0.0.1:{port}/readyz"
    with _running(command, workdir / "serve.log", ready, 200, _env(url, workdir, extra_env)) as process:
        yield process


@contextmanager
def serve_raw(
    workdir: Path, dsn: str, port: int, *, enabled: bool, processes: int = 1
) -> Iterator[subprocess.Popen[bytes] | None]:
    """The bare baseline (tests/bench/raw.py) on `port`, serving workdir/raw-statements.pickle."""
    if not enabled:
        yield None
        return
    command = [
        sys.executable,
        "-m",
        "tests.bench.raw",
        str(workdir / RAW_STATEMENTS),
        dsn,
        str(port),
        str(processes),
    ]
    # It answers 404 for a statement it does not have: that is how it says it is up.
    with _running(command, workdir / "raw.log", f"http://127.0.0.1:{port}/raw/-", 404) as process:
        yield process


class Tokens:
    """Bearer tokens of the demo users, renewed well before their 15-minute expiry."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._tokens: dict[str, tuple[str, float]] = {}

    def get(self, login: str) -> str:
        # No default time of 0.0: the monotonic clock starts near zero on a freshly booted machine.
        cached = self._tokens.get(login)
        if cached is not None and time.monotonic() - cached[1] <= 600:
            return cached[0]
        response = httpx.post(
            f"{self.base_url}/api/v1/auth/token",
            data={"username": login, "password": DEMO_PASSWORD},
            timeout=30,
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        self._tokens[login] = (token, time.monotonic())
        return token

    def headers(self, login: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.get(login)}"}


# ---------------------------------------------------------------------------------------------
# Deep cursors and preflight


@dataclass
class Walk:
    login: str
    params: dict[str, str]
    pages: int = 0
    cursor: str | None = None
    latencies_ms: dict[int, float] = field(default_factory=dict)  # page number → single-client ms
    error: str | None = None


def walk(base_url: str, tokens: Tokens, login: str, path: str, params: dict[str, str], depth: int) -> Walk:
    """Follow next_cursor `depth` pages (or to the end) with one client; keep the deepest cursor."""
    result = Walk(login, params)
    cursor: str | None = None
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for page in range(1, depth + 1):
            query = {**params, **({"cursor": cursor} if cursor else {})}
            started = time.perf_counter()
            response = client.get(path, params=query, headers=tokens.headers(login))
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                result.error = f"page {page}: HTTP {response.status_code}"
                break
            if page in (1, 2, 10, 50, 100, 150, 200) or page == depth:
                result.latencies_ms[page] = round(elapsed, 2)
            following = response.json().get("next_cursor")
            if not following:
                break
            cursor = following
            result.pages = page
            result.cursor = cursor
    return result


def preflight(base_url: str, headers: dict[str, str], path: str, params: dict[str, str]) -> dict[str, Any]:
    """One request before the load: status, item count, and whether the filter changes anything."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        response = client.get(path, params=params, headers=headers)
        info: dict[str, Any] = {"status": response.status_code}
        if response.status_code != 200:
            info["body"] = response.text[:300]
            return info
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("items"), list):
            info["items"] = len(body["items"])
            filters = {k: v for k, v in params.items() if k not in ("limit", "cursor")}
            if filters:
                plain = client.get(path, params={"limit": params.get("limit", "50")}, headers=headers)
                if plain.status_code == 200 and plain.json().get("items") == body["items"]:
                    info["warning"] = (
                        f"first page identical to the one without {sorted(filters)}: the parameter is "
                        "ignored, or not selective among the newest dossiers"
                    )
        return info


# ---------------------------------------------------------------------------------------------
# The raw baseline: the service's own SELECT for each request, served by tests/bench/raw.py

RAW_STATEMENTS = "raw-statements.pickle"
RAW_PARAMS = {"limit", "cursor", "q"}  # the requests the baseline can stand in for


@dataclass
class RawRoute:
    key: str
    login: str
    service_params: dict[str, str]
    headers: dict[str, str]
    same_answer: bool | None = None


def _raw_routes(
    url: str, dsn: str, prepared: list[tuple[Scenario, list[dict[str, Any]], dict[str, Any]]], workdir: Path
) -> dict[str, RawRoute]:
    """Capture the SELECT the service sends for each worklist/search spec; write them for raw.py."""
    routes: dict[str, RawRoute] = {}
    cases: list[plans.PlanCase] = []
    for scenario, specs, _ in prepared:
        if scenario.kind not in ("worklist", "search"):
            continue
        for spec in specs:
            params: dict[str, str] = spec["params"]
            if spec["path"] != LIST or not set(params) <= RAW_PARAMS:
                continue
            limit, cursor, q = int(params.get("limit", 50)), params.get("cursor"), params.get("q")
            run = plans.worklist(limit, cursor, q=q) if q else plans.worklist(limit, cursor)
            cases.append(plans.PlanCase(spec["name"], spec["login"], run))
            routes[spec["name"]] = RawRoute(f"s{len(routes)}", spec["login"], params, spec["headers"])
    if not routes:
        return {}
    captured = {p.name: p for p in asyncio.run(plans.collect(url, cases, explain=False))}
    ambiti = {
        r["email"]: str(r["ambito_id"])
        for r in asyncio.run(_fetch(dsn, "SELECT email, ambito_id FROM app_user"))
    }
    statements: Statements = {}
    for name, route in list(routes.items()):
        plan = captured.get(name)  # the first SELECT of the case: the page itself
        if plan is None or plan.error or not plan.sql:
            print(f"raw baseline: nothing captured for {name}: {plan and plan.error}", file=sys.stderr)
            del routes[name]
            continue
        settings = tuple(sorted(plan.settings.items()))  # as the service ran it
        statements[route.key] = (plan.sql, tuple(plan.parameters or ()), ambiti[route.login], settings)
    (workdir / RAW_STATEMENTS).write_bytes(pickle.dumps(statements))
    return routes


def _check_raw_answers(base_url: str, raw_port: int, routes: dict[str, RawRoute]) -> None:
    """Does the baseline return the dossiers the service returns, in the same order?"""
    with httpx.Client(timeout=60) as client:
        for route in routes.values():
            service = client.get(f"{base_url}{LIST}", params=route.service_params, headers=route.headers)
            raw = client.get(f"http://127.0.0.1:{raw_port}/raw/{route.key}")
            if service.status_code != 200 or raw.status_code != 200:
                route.same_answer = False
                continue
            ids = [item["id"] for item in service.json()["items"]]
            raw_ids = [str(row["id"]) for row in raw.json()][: len(ids)]
            route.same_answer = raw_ids == ids
            if not route.same_answer:
                print(
                    f"raw baseline answers differently for {route.key}: {len(raw_ids)} vs {len(ids)}; "
                    f"{raw_ids[:3]} vs {ids[:3]}",
                    file=sys.stderr,
                )


# ---------------------------------------------------------------------------------------------
# CPU accounting


def _cpu_seconds(process: psutil.Process, *, reaped: bool = False) -> float:
    """CPU seconds of a process; with `reaped`, plus those of its children that have exited (the
    postmaster reaps backends and parallel workers, so their CPU is not lost when they end)."""
    with suppress(psutil.NoSuchProcess):
        times = process.cpu_times()
        seconds = times.user + times.system
        if reaped:
            seconds += times.children_user + times.children_system
        return float(seconds)
    return 0.0


def _busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle (all cores, all processes)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def machine_busy_cores(seconds: float = 3.0) -> float:
    """How many cores the machine keeps busy right now, before we add any load."""
    before = _busy_seconds()
    time.sleep(seconds)
    return round((_busy_seconds() - before) / seconds, 2)


class CpuMeter:
    """CPU used between two marks by the server process, by PostgreSQL (every backend, parallel
    worker and auxiliary process, alive or already exited), and by the whole machine: what is left
    once ours are subtracted is other tenants' load, i.e. noise."""

    def __init__(self, server_pid: int, postmaster_pid: int) -> None:
        self.server = psutil.Process(server_pid)
        self.postmaster = psutil.Process(postmaster_pid)
        self._start: dict[str, float] = {}
        self._busy = 0.0

    def _snapshot(self) -> dict[str, float]:
        def total(root: psutil.Process) -> float:
            children = root.children(recursive=True)
            return _cpu_seconds(root, reaped=True) + sum(_cpu_seconds(child) for child in children)

        return {"server": total(self.server), "postgres": total(self.postmaster)}

    def start(self) -> None:
        self._start = self._snapshot()
        self._busy = _busy_seconds()

    def stop(self, wall_s: float, loadgen_cpu_s: float) -> dict[str, float]:
        end = self._snapshot()
        busy = _busy_seconds() - self._busy
        used: dict[str, float] = {}
        ours = loadgen_cpu_s
        for group, seconds in end.items():
            delta = seconds - self._start.get(group, 0.0)
            used[f"{group}_cores"] = round(delta / wall_s, 2)
            ours += delta
        used["loadgen_cores"] = round(loadgen_cpu_s / wall_s, 2)
        used["machine_busy_cores"] = round(busy / wall_s, 2)
        used["other_cores"] = round(max(0.0, busy - ours) / wall_s, 2)
        return used


# ---------------------------------------------------------------------------------------------
# Running scenarios


def _context(facts: dict[str, str], deep_cursor: str | None) -> dict[str, str]:
    return {**facts, "deep_cursor": deep_cursor or ""}


def _slug(name: str) -> str:
    folded = "".join(c if c.isalnum() else "_" for c in name.lower())
    return "_".join(part for part in folded.split("_") if part)


async def _ids(dsn: str) -> dict[str, str]:
    """Context for the scenario parameters: pool_<slug>, comune_<slug> ids."""
    ids: dict[str, str] = {}
    # The benchmark's users are the seeded ambito's (tests/bench/clone.py may have added others).
    ambito = "ambito_id = (SELECT id FROM ambito WHERE code = $1)"
    for row in await _fetch(dsn, f"SELECT name, id FROM pool WHERE {ambito}", seed.AMBITO_CODE):  # noqa: S608
        ids[f"pool_{_slug(row['name'])}".replace("pool_pool_", "pool_")] = str(row["id"])
    for row in await _fetch(dsn, f"SELECT name, id FROM comune WHERE {ambito}", seed.AMBITO_CODE):  # noqa: S608
        ids[f"comune_{_slug(row['name'])}"] = str(row["id"])
    ids["since_7d"] = (datetime.now(UTC) - timedelta(days=7)).isoformat(timespec="seconds")
    return ids


async def _db_sessions(dsn: str) -> int:
    rows = await _fetch(dsn, "SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
    return int(rows[0][0])


async def _top_statements(dsn: str, limit: int = 6) -> list[dict[str, Any]]:
    rows = await _fetch(
        dsn,
        """
        SELECT calls, round(mean_exec_time::numeric, 3) AS mean_ms,
               round(total_exec_time::numeric, 1) AS total_ms,
               round(rows::numeric / greatest(calls, 1), 1) AS rows_per_call,
               round((shared_blks_hit + shared_blks_read)::numeric / greatest(calls, 1), 1)
                   AS blocks_per_call,
               left(regexp_replace(query, '\\s+', ' ', 'g'), 240) AS query
        FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND query NOT ILIKE '%pg_stat_statements%'
        ORDER BY total_exec_time DESC LIMIT $1
        """,
        limit,
    )
    return [dict(r) for r in rows]


def run_load(config: dict[str, Any], workdir: Path) -> dict[str, Any]:
    config_path = workdir / "load-config.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-m", "tests.bench.load", str(config_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    config_path.unlink(missing_ok=True)  # it holds bearer tokens
    if completed.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{completed.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def _spec_name(scenario: Scenario, params: dict[str, str]) -> str:
    shown = {k: v for k, v in params.items() if k not in ("limit", "cursor")}
    if not shown:
        return scenario.name
    return scenario.name + " " + " ".join(f"{k}={v}" for k, v in shown.items())


# ---------------------------------------------------------------------------------------------
# Report


def _verdicts(results: list[dict[str, Any]]) -> None:
    """Annotate every spec with its ratio to the baseline and whether it meets the target."""
    by_name = {r["name"]: r for r in results}
    baseline = next((r for r in results if r["kind"] == "baseline"), None)
    base_p95 = baseline["load"]["total"]["p95_ms"] if baseline else None
    for result in results:
        first = by_name.get(result.get("first_page_of") or "")
        raw_specs = result.get("raw", {}).get("load", {}).get("specs", {})
        for name, spec in result["load"]["specs"].items():
            p95 = spec["p95_ms"]
            spec["ratio_to_baseline"] = round(p95 / base_p95, 2) if p95 and base_p95 else None
            if result["kind"] == "baseline":
                spec["meets_target"] = None
                continue
            raw = raw_specs.get(name)
            raw_p95 = raw["p95_ms"] if raw and raw["errors"] == 0 else None
            spec["raw_p95_ms"] = raw_p95
            spec["raw_rps"] = raw["rps"] if raw else None
            spec["ratio_to_raw"] = round(p95 / raw_p95, 2) if p95 and raw_p95 else None
            ok = p95 is not None and p95 <= TARGET_P95_MS and spec["errors"] == 0
            # The baseline is the raw endpoint serving the same answer; /me where there is none.
            ratio = spec["ratio_to_raw"] if spec["ratio_to_raw"] is not None else spec["ratio_to_baseline"]
            if ratio is not None:
                ok = ok and ratio <= TARGET_RATIO
            if first is not None:
                first_p95 = first["load"]["total"]["p95_ms"]
                spec["ratio_to_first_page"] = round(p95 / first_p95, 2) if p95 and first_p95 else None
            spec["meets_target"] = ok


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    return str(value)


def markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    pacing = f"each paced at 1 request per {meta['pace_s']} s" if meta["pace_s"] else "closed loop"
    lines = [
        f"# snodo worklist benchmark — {meta['persons']:,} persons/dossiers",
        "",
        f"{meta['started_at']} · git {meta['git']} · {meta['machine']['cpu']} × {meta['machine']['cores']} "
        f"cores · {meta['machine']['memory_gb']} GB · PostgreSQL {meta['postgres']['version'].split()[1]} · "
        f"database {meta['postgres']['database_size']} · {meta['users']} virtual users, {pacing}, "
        f"{meta['warmup_s']} s warm-up + {meta['duration_s']} s · other load before the run: "
        f"{meta['busy_cores_before_load']} cores busy · server env {meta['server_env'] or 'defaults'}"
        f" · server args {' '.join(meta['serve_args']) or 'none'}"
        f" · raw baseline processes {meta.get('raw_processes', 1)}",
        "",
        "| scenario / request | n | req/s | p50 ms | p95 ms | p99 ms | max ms | errors | late | ×/me p95"
        " | raw req/s | raw p95 ms | ×raw p95 | ×first page | target met"
        " | cores: server / postgres / loadgen / other | new DB sessions |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in report["scenarios"]:
        cpu = result["cpu"]
        cores = (
            f"{cpu['server_cores']} / {cpu['postgres_cores']} / {cpu['loadgen_cores']} / {cpu['other_cores']}"
        )
        for name, spec in result["load"]["specs"].items():
            errors = spec["errors"]
            if errors:
                errors = f"**{errors}** {spec['error_kinds']}"
            lines.append(
                f"| {name} | {spec['count']} | {spec['rps']} | {_fmt(spec['p50_ms'])} "
                f"| {_fmt(spec['p95_ms'])} | {_fmt(spec['p99_ms'])} | {_fmt(spec['max_ms'])} | {errors} "
                f"| {spec.get('late', 0)} "
                f"| {_fmt(spec.get('ratio_to_baseline'))} | {_fmt(spec.get('raw_rps'))} "
                f"| {_fmt(spec.get('raw_p95_ms'))} | {_fmt(spec.get('ratio_to_raw'))} "
                f"| {_fmt(spec.get('ratio_to_first_page'))} "
                f"| {_fmt(spec.get('meets_target'))} | {cores} | {result['new_db_sessions']} |"
            )
    warnings_ = [
        f"- {spec}: {info['warning']}"
        for r in report["scenarios"]
        for spec, info in r["preflight"].items()
        if info.get("warning")
    ] + [
        f"- {spec}: HTTP {info['status']} {info.get('body', '')}"
        for r in report["scenarios"]
        for spec, info in r["preflight"].items()
        if info["status"] != 200
    ]
    if warnings_:
        lines += ["", "Preflight warnings:", "", *warnings_]
    raw_lines = [
        f"- {r['name']}: cores raw server / postgres / loadgen / other {r['raw']['cpu']['server_cores']} / "
        f"{r['raw']['cpu']['postgres_cores']} / {r['raw']['cpu']['loadgen_cores']} / "
        f"{r['raw']['cpu']['other_cores']}; same dossiers as the service: {r['raw']['same_answer']}"
        for r in report["scenarios"]
        if r.get("raw")
    ]
    if raw_lines:
        lines += ["", "Raw baseline (tests/bench/raw.py, the service's own SELECT through asyncpg):", ""]
        lines += raw_lines
    lines += ["", "Single-client latency along the cursor chain (ms by page number):", ""]
    for key, walk_ in report["walks"].items():
        lines.append(
            f"- {key}: {walk_['pages']} pages walked; {walk_['latencies_ms']} {walk_['error'] or ''}"
        )
    lines += ["", "Seed: " + json.dumps(report["seed"]), ""]
    if report["plans"]:
        lines += [
            "## Plans (EXPLAIN ANALYZE, BUFFERS; as snodo_app with row-level security)",
            "",
            "| statement | best of 3 ms | rows | execution ms | planning ms | scans |",
            "|---|---|---|---|---|---|",
        ]
        for plan in report["plans"]:
            scans = "; ".join(plan["scans"]) or plan["error"] or ""
            lines.append(
                f"| {plan['name']} | {_fmt(plan['best_of_3_ms'])} | {_fmt(plan['rows'])} "
                f"| {_fmt(plan['execution_ms'])} | {_fmt(plan['planning_ms'])} | {scans} |"
            )
        for plan in report["plans"]:
            lines += ["", f"### {plan['name']}", "", "```", plan["plan"] or plan["error"] or "", "```"]
    lines += ["", "## Top statements per scenario (pg_stat_statements)", ""]
    for result in report["scenarios"]:
        lines.append(f"**{result['name']}**")
        lines.append("")
        for row in result["statements"]:
            lines.append(
                f"- {row['calls']} calls, mean {row['mean_ms']} ms, {row['blocks_per_call']} blocks/call: "
                f"`{row['query'][:160]}`"
            )
        lines.append("")
    return "\n".join(lines)


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def _git() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


# ---------------------------------------------------------------------------------------------
# Main


def _plan_cases(walks: dict[str, Walk], context: dict[str, str]) -> list[plans.PlanCase]:
    cases = []
    for name, login, arguments in PLAN_CASES:
        options = dict(arguments)
        settings: dict[str, str] = options.pop("settings", {})
        if "definer_search" in options:
            run = plans.search_via_definer(str(options["definer_search"]))
            cases.append(plans.PlanCase(name, login, run, settings, plans.NAME_CANDIDATES_SETUP))
            continue
        if "candidate" in options:
            run = plans.search_candidate(str(options["term"]), str(options["candidate"]))
            cases.append(plans.PlanCase(name, login, run, settings))
            continue
        cursor = None
        if options.pop("deep", False):
            deep = walks.get(f"{login} {{'limit': '50'}}")
            if deep is None or deep.cursor is None:
                continue
            cursor, name = deep.cursor, f"{name} (page {deep.pages + 1})"
        limit = int(options.pop("limit", 50))
        if options.pop("prototype", False):
            cases.append(plans.PlanCase(name, login, plans.keyset_union(limit, cursor), settings))
            continue
        for key, value in options.items():
            if isinstance(value, str):
                value = value.format_map(context)
                options[key] = uuid.UUID(value) if key.endswith("_id") else value
        cases.append(plans.PlanCase(name, login, plans.worklist(limit, cursor, **options), settings))
    return cases


def _seed_if_needed(pg_url: str, dsn: str, workdir: Path, persons: int) -> dict[str, Any]:
    # The seeded ambito's (tests/bench/clone.py may have added others to the database).
    present = asyncio.run(
        _fetch(
            dsn,
            "SELECT count(*) FROM dossier WHERE ambito_id = (SELECT id FROM ambito WHERE code = $1)",
            seed.AMBITO_CODE,
        )
    )[0][0]
    if present == persons:
        print(f"reusing the seeded database ({present:,} dossiers)", file=sys.stderr)
        return {"reused": True, "persons": present}
    if present:
        raise SystemExit(
            f"{workdir} holds {present:,} dossiers, not {persons:,}: remove it or use another --workdir"
        )
    print("seed-demo …", file=sys.stderr)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "app.cli", "seed-demo", "--password", DEMO_PASSWORD],
        cwd=REPO,
        env=_env(pg_url, workdir),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    demo_s = round(time.perf_counter() - started, 2)
    print(f"seeding {persons:,} persons …", file=sys.stderr)
    timings = asyncio.run(seed.seed(dsn, persons))
    return {"reused": False, "seed_demo_s": demo_s, "seconds": timings.steps, "rows": timings.rows}


def on_data_dir(pgdata: Path, work: Callable[[str], Awaitable[None]]) -> int:
    """Start the embedded PostgreSQL of a data directory this run seeded (`--keep`), run `work`
    with its URL, stop it: how the other tools of tests/bench measure against that data."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pg = EmbeddedPostgres(pgdata)
    pg.start()
    try:
        asyncio.run(work(pg.url()))
    finally:
        pg.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/snodo-bench"))  # noqa: S108
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the seeded data directory")
    parser.add_argument("--users", type=int, default=20, help="concurrent virtual users")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per scenario")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds before each scenario")
    parser.add_argument("--deep-pages", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout of the load (s)")
    parser.add_argument(
        "--pace",
        type=float,
        default=0.0,
        help="seconds between the starts of one user's requests (think time); 0: closed loop",
    )
    parser.add_argument(
        "--scenarios", default="", help="comma-separated names or prefixes; 'all'; default: the default ones"
    )
    parser.add_argument("--no-plans", action="store_true", help="skip EXPLAIN")
    parser.add_argument(
        "--raw-processes",
        type=int,
        default=1,
        help="server processes of the raw baseline (as `snodo serve --workers`; default 1)",
    )
    parser.add_argument("--no-raw", action="store_true", help="skip the raw baseline (tests/bench/raw.py)")
    parser.add_argument("--no-fsync", action="store_true", help="fsync=off, synchronous_commit=off")
    parser.add_argument("--seed-only", action="store_true", help="prepare the database and stop")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the server, e.g. SNODO_DB_POOL_SIZE=20 (repeatable)",
    )
    parser.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `snodo serve`, e.g. --serve-arg=--no-worker (repeatable)",
    )
    args = parser.parse_args(argv)
    server_env = dict(item.split("=", 1) for item in args.server_env)

    if args.scenarios == "all":
        chosen = list(SCENARIOS)
    elif args.scenarios:
        wanted = [w.strip() for w in args.scenarios.split(",") if w.strip()]
        chosen = [s for s in SCENARIOS if any(s.name == w or s.name.startswith(w) for w in wanted)]
    else:
        chosen = [s for s in SCENARIOS if s.default]
    for scenario in chosen:  # the first-page scenario a deep one is compared with runs too
        if scenario.first_page_of and scenario.first_page_of not in {s.name for s in chosen}:
            chosen.insert(0, next(s for s in SCENARIOS if s.name == scenario.first_page_of))
    if not any(s.kind == "baseline" for s in chosen):
        chosen.insert(0, next(s for s in SCENARIOS if s.kind == "baseline"))

    workdir: Path = args.workdir
    pgdata = workdir / f"pgdata-{args.persons}"
    if pgdata.exists() and not args.keep:
        shutil.rmtree(pgdata)
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)  # PostgreSQL runs as another user when we are root
    started_at = datetime.now(UTC).isoformat(timespec="seconds")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pg = EmbeddedPostgres(pgdata)
    pg.start()
    try:
        settings = dict(PG_SETTINGS)
        if args.no_fsync:
            settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        else:
            settings.update(fsync="on", synchronous_commit="on", full_page_writes="on")
        if asyncio.run(_tune(pg, settings)):
            pg.stop()
            pg.start()
        asyncio.run(pg.ensure_database())
        url = pg.url()
        dsn = asyncpg_dsn(url)
        migrations.upgrade(url)
        asyncio.run(_execute(dsn, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
        seeding = _seed_if_needed(url, dsn, workdir, args.persons)
        if args.seed_only:
            print(json.dumps(seeding, indent=2))
            return 0
        facts = asyncio.run(_server_facts(dsn))
        context_ids = asyncio.run(_ids(dsn))
        user_ids = {
            r["email"]: str(r["id"]) for r in asyncio.run(_fetch(dsn, "SELECT email, id FROM app_user"))
        }

        port = _free_port()
        base_url = f"http://127.0.0.1:{port}"
        idle_busy = machine_busy_cores()
        if idle_busy > 0.2:
            print(
                f"warning: other processes keep {idle_busy} of {os.cpu_count()} cores busy: "
                "latencies will be inflated (see other_cores in the report)",
                file=sys.stderr,
            )
        with serve(url, workdir, port, server_env, args.serve_arg) as server:
            tokens = Tokens(base_url)
            meter = CpuMeter(server.pid, pg.pid or 0)
            walks: dict[str, Walk] = {}
            results: list[dict[str, Any]] = []
            # The walks the plans need, whether or not their scenarios run.
            for login in (MELZO, AFOL):
                key = f"{login} {{'limit': '50'}}"
                print(f"walking {key} …", file=sys.stderr)
                walks[key] = walk(
                    base_url, tokens, login, "/api/v1/dossiers", {"limit": "50"}, args.deep_pages
                )
            prepared: list[tuple[Scenario, list[dict[str, Any]], dict[str, Any]]] = []
            for scenario in chosen:
                specs, preflights = [], {}
                for params in scenario.variants:
                    context = {**context_ids, "me": user_ids.get(scenario.login, "")}
                    if any("{deep_cursor}" in v for v in params.values()):
                        base = {k: v for k, v in params.items() if "{deep_cursor}" not in v}
                        key = f"{scenario.login} {base}"
                        if key not in walks:
                            walks[key] = walk(
                                base_url, tokens, scenario.login, scenario.path, base, args.deep_pages
                            )
                        context["deep_cursor"] = walks[key].cursor or ""
                    resolved = {k: v.format_map(context) for k, v in params.items()}
                    name = _spec_name(scenario, params)
                    headers = tokens.headers(scenario.login)
                    preflights[name] = preflight(base_url, headers, scenario.path, resolved)
                    specs.append(
                        {
                            "name": name,
                            "path": scenario.path,
                            "params": resolved,
                            "headers": headers,
                            "login": scenario.login,
                        }
                    )
                prepared.append((scenario, specs, preflights))
            raw_routes = _raw_routes(url, dsn, prepared, workdir) if not args.no_raw else {}
            raw_port = _free_port()
            with serve_raw(
                workdir, dsn, raw_port, enabled=bool(raw_routes), processes=args.raw_processes
            ) as raw_server:
                raw_meter = CpuMeter(raw_server.pid, pg.pid or 0) if raw_server else None
                if raw_server is not None:
                    _check_raw_answers(base_url, raw_port, raw_routes)
                for scenario, specs, preflights in prepared:
                    load_config = {
                        "users": args.users,
                        "warmup_s": args.warmup,
                        "duration_s": args.duration,
                        "timeout_s": args.timeout,
                        "pace_s": args.pace,
                    }
                    print(f"scenario {scenario.name} …", file=sys.stderr)
                    asyncio.run(_execute(dsn, "SELECT pg_stat_statements_reset()"))
                    sessions_before = asyncio.run(_db_sessions(dsn))
                    meter.start()
                    began = time.perf_counter()
                    service_specs = [{k: v for k, v in spec.items() if k != "login"} for spec in specs]
                    load = run_load({**load_config, "base_url": base_url, "specs": service_specs}, workdir)
                    cpu = meter.stop(time.perf_counter() - began, load["load_generator"]["cpu_s"])
                    new_sessions = asyncio.run(_db_sessions(dsn)) - sessions_before
                    result: dict[str, Any] = {
                        "name": scenario.name,
                        "kind": scenario.kind,
                        "login": scenario.login,
                        "first_page_of": scenario.first_page_of,
                        "preflight": preflights,
                        "load": load,
                        "cpu": cpu,
                        # Connections PostgreSQL accepted during the run: > 0 means pool churn.
                        "new_db_sessions": new_sessions,
                        "statements": asyncio.run(_top_statements(dsn)),
                    }
                    total = load["total"]
                    print(
                        f"  p50 {total['p50_ms']} ms, p95 {total['p95_ms']} ms, {total['rps']} req/s, "
                        f"{total['errors']} errors, cores {cpu}",
                        file=sys.stderr,
                    )
                    raw_specs = [
                        {"name": spec["name"], "path": f"/raw/{raw_routes[spec['name']].key}"}
                        for spec in specs
                        if spec["name"] in raw_routes
                    ]
                    if raw_specs and raw_meter is not None:
                        raw_meter.start()
                        began = time.perf_counter()
                        raw_load = run_load(
                            {**load_config, "base_url": f"http://127.0.0.1:{raw_port}", "specs": raw_specs},
                            workdir,
                        )
                        result["raw"] = {
                            "load": raw_load,
                            "cpu": raw_meter.stop(
                                time.perf_counter() - began, raw_load["load_generator"]["cpu_s"]
                            ),
                            "same_answer": {
                                name: route.same_answer
                                for name, route in raw_routes.items()
                                if name in raw_load["specs"]
                            },
                        }
                        total = raw_load["total"]
                        print(
                            f"  raw: p50 {total['p50_ms']} ms, p95 {total['p95_ms']} ms, "
                            f"{total['rps']} req/s, {total['errors']} errors",
                            file=sys.stderr,
                        )
                    results.append(result)
        _verdicts(results)
        plan_results: list[dict[str, Any]] = []
        if not args.no_plans:
            print("explaining …", file=sys.stderr)
            plan_results = [
                p.as_dict() for p in asyncio.run(plans.collect(url, _plan_cases(walks, context_ids)))
            ]
        report = {
            "meta": {
                "persons": args.persons,
                "started_at": started_at,
                "git": _git(),
                "machine": _machine(),
                "postgres": facts,
                "users": args.users,
                "warmup_s": args.warmup,
                "duration_s": args.duration,
                "pace_s": args.pace,
                "target": {"p95_ms": TARGET_P95_MS, "ratio_to_baseline": TARGET_RATIO},
                "server_env": server_env,
                "serve_args": args.serve_arg,
                "raw_processes": args.raw_processes,
                "busy_cores_before_load": idle_busy,
            },
            "seed": seeding,
            "walks": {k: {**w.__dict__, "cursor": None} for k, w in walks.items()},
            "scenarios": results,
            "plans": plan_results,
        }
        for result in results:  # no bearer tokens in the report
            for spec in result["load"].get("specs", {}).values():
                spec.pop("headers", None)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        json_path = workdir / f"results-{args.persons}-{stamp}.json"
        md_path = workdir / f"results-{args.persons}-{stamp}.md"
        json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
        text = markdown(report)
        md_path.write_text(text, encoding="utf-8")
        print(text)
        print(f"\nresults: {json_path}\n         {md_path}")
        return 0
    finally:
        pg.stop()
        if not args.keep:
            shutil.rmtree(pgdata, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
