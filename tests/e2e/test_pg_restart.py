"""PostgreSQL stopped under load and started again: every request meanwhile is a 503 problem with
Retry-After (never a 500, never a hang), the service recovers by itself within 5 s of PostgreSQL
being back, and nothing is half-written."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.core.embedded import EmbeddedPostgres
from tests.e2e.server import ServerProcess, clean_env
from tests.intake import AS_MELZO, NICCOLO, referral

pytestmark = pytest.mark.e2e

PASSWORD = "snodo-e2e-restart-2026"
STATEMENT_TIMEOUT_MS = 2000
HANG_LIMIT_S = STATEMENT_TIMEOUT_MS / 1000 + 3
RECOVERY_LIMIT_S = 5


def _postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().splitlines()[0])


async def _load(
    client: httpx.AsyncClient, headers: dict[str, str], stop: asyncio.Event, log: list[Any]
) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        key = str(uuid.uuid4())
        tag = uuid.uuid4().hex
        person = {
            **NICCOLO,
            "family_name": f"Riavvio{tag[:8]}",
            "given_name": f"P{tag[8:16]}",
            "birth_date": f"{1930 + n % 80}-{1 + n % 12:02d}-{1 + int(tag[16:18], 16) % 28:02d}",
        }
        body = referral(person)
        for method, url, kwargs in (
            ("GET", "/api/v1/dossiers", {}),
            ("POST", "/api/v1/referrals", {"json": body, "headers": {**headers, "Idempotency-Key": key}}),
        ):
            started = time.monotonic()
            try:
                answer = await client.request(method, url, **({"headers": headers} | kwargs))
            except httpx.TimeoutException:
                log.append((method, None, time.monotonic() - started, key, body, None))
                continue
            log.append((method, answer, time.monotonic() - started, key, body, time.monotonic()))


async def _scenario(server: ServerProcess, pgdata: Path) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=HANG_LIMIT_S + 5) as client:
        token = await client.post("/api/v1/auth/token", data={"username": AS_MELZO, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}", "Accept-Language": "it"}
        stop = asyncio.Event()
        log: list[Any] = []
        tasks = [asyncio.create_task(_load(client, headers, stop, log)) for _ in range(4)]
        await asyncio.sleep(1.5)
        pid = _postmaster_pid(pgdata)
        os.kill(pid, signal.SIGINT)  # fast shutdown, like pg_ctl stop -m fast
        while pgdata.joinpath("postmaster.pid").exists():
            await asyncio.sleep(0.05)
        down_at = time.monotonic()
        await asyncio.sleep(2)
        embedded = EmbeddedPostgres(pgdata)
        await asyncio.to_thread(embedded.start)
        up_at = time.monotonic()
        recovered_at = None
        while time.monotonic() - up_at < RECOVERY_LIMIT_S + 5:
            await asyncio.sleep(0.1)
            ok = [e for e in log if e[1] is not None and e[1].status_code in (200, 201) and e[5] > up_at]
            if ok:
                recovered_at = min(e[5] for e in ok)
                break
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*tasks)

        statuses: dict[int | None, int] = {}
        for method, answer, elapsed, _key, _body, _at in log:
            status = answer.status_code if answer is not None else None
            statuses[status] = statuses.get(status, 0) + 1
            assert answer is not None, f"{method} hung for {elapsed:.1f}s"
            assert elapsed < HANG_LIMIT_S, f"{method} took {elapsed:.1f}s"
            assert status in (200, 201, 503), (status, answer.text)
            if status == 503:
                assert answer.headers["content-type"].startswith("application/problem+json")
                assert answer.headers["retry-after"] == "5"
                assert answer.json()["type"].endswith("/busy")
                assert answer.json()["title"].startswith("Il servizio")
        assert statuses.get(503, 0) > 0, statuses
        assert recovered_at is not None, f"no success within {RECOVERY_LIMIT_S + 5}s: {statuses}"
        recovery = recovered_at - up_at
        assert recovery < RECOVERY_LIMIT_S, recovery

        # Nothing half-written: each 201 once with its dossier; each 503 absent or, sent again
        # with its key, exactly one.
        created = [e for e in log if e[0] == "POST" and e[1].status_code == 201]
        failed = [e for e in log if e[0] == "POST" and e[1].status_code == 503]
        for _m, _a, _e, key, body, _at in failed:
            again = await client.post(
                "/api/v1/referrals", json=body, headers={**headers, "Idempotency-Key": key}
            )
            assert again.status_code in (200, 201), again.text
            created.append(("POST", again, 0, key, body, 0))
        db = await asyncpg.connect(host=str(embedded.socket_dir), user="postgres", database="snodo")
        try:
            for _m, _a, _e, _key, body, _at in created:
                name = body["person"]["family_name"]
                persons = await db.fetchval("SELECT count(*) FROM person WHERE family_name = $1", name)
                referrals = await db.fetchval(
                    "SELECT count(*) FROM referral r JOIN person p ON p.id = r.person_id"
                    " WHERE p.family_name = $1",
                    name,
                )
                dossiers = await db.fetchval(
                    "SELECT count(*) FROM dossier d JOIN person p ON p.id = d.person_id"
                    " WHERE p.family_name = $1",
                    name,
                )
                assert (persons, referrals, dossiers) == (1, 1, 1), (name, persons, referrals, dossiers)
            orphans = await db.fetchval(
                "SELECT count(*) FROM person p WHERE p.family_name LIKE 'Riavvio%'"
                " AND NOT EXISTS (SELECT 1 FROM referral r WHERE r.person_id = p.id)"
            )
            assert orphans == 0
        finally:
            await db.close()
        return {
            "recovery_s": recovery,
            "down_s": up_at - down_at,
            "503": statuses.get(503, 0),
            "ok": statuses.get(200, 0) + statuses.get(201, 0),
        }


def test_postgres_stopped_under_load_and_started_again(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    pgdata = data_dir / "pgdata"
    env = clean_env(SNODO_DATA_DIR=str(data_dir), SNODO_DB_STATEMENT_TIMEOUT_MS=str(STATEMENT_TIMEOUT_MS))
    subprocess.run(
        [sys.executable, "-m", "app.cli", "seed-demo", "--password", PASSWORD],
        env=env,
        check=True,
        capture_output=True,
    )
    server = ServerProcess(env=env, log=tmp_path / "serve.log", args=("--no-worker",))
    try:
        server.wait_ready(30)
        measured = asyncio.run(_scenario(server, pgdata))
        print("measured", measured)
    finally:
        server.stop(signal.SIGINT)
        EmbeddedPostgres(pgdata).stop()
