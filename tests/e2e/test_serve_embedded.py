"""`snodo serve` with no DATABASE_URL: cold start, real HTTP, restart with data kept, clean stop."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.e2e.server import ServerProcess, clean_env, postgres_processes_using, process_is_gone

pytestmark = pytest.mark.e2e

COLD_START_LIMIT_S = 20


def _postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().splitlines()[0])


async def _sql(pgdata: Path, query: str) -> object:
    connection = await asyncpg.connect(host=str(pgdata), user="postgres", database="snodo")
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


def test_embedded_cold_start_restart_and_clean_stop(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    pgdata = data_dir / "pgdata"
    env = clean_env(SNODO_DATA_DIR=str(data_dir))

    server = ServerProcess(env=env, log=tmp_path / "serve.log")
    try:
        elapsed = server.wait_ready(COLD_START_LIMIT_S)
    except BaseException:
        server.stop(signal.SIGKILL)
        raise
    assert elapsed < COLD_START_LIMIT_S
    first_pid = _postmaster_pid(pgdata)

    # Real HTTP through uvicorn: the limits hold there too.
    oversize = httpx.post(f"{server.base_url}/healthz", content=b"x" * (2 * 1024 * 1024))
    assert oversize.status_code == 413
    assert oversize.headers["content-type"] == "application/problem+json"
    assert httpx.get(f"{server.base_url}/nope").headers["content-type"] == "application/problem+json"

    asyncio.run(
        _sql(pgdata, "INSERT INTO ambito (id, code, name) VALUES (gen_random_uuid(), 'KEEP', 'kept')")
    )

    assert server.stop(signal.SIGINT) in (0, 130)
    assert process_is_gone(first_pid)
    assert postgres_processes_using(pgdata) == []

    restarted = ServerProcess(env=env, log=tmp_path / "serve.log")
    try:
        restarted.wait_ready(COLD_START_LIMIT_S)
        assert asyncio.run(_sql(pgdata, "SELECT name FROM ambito WHERE code = 'KEEP'")) == "kept"
        second_pid = _postmaster_pid(pgdata)
    finally:
        code = restarted.stop(signal.SIGTERM)
    assert code in (0, 143)
    assert process_is_gone(second_pid)
    assert postgres_processes_using(pgdata) == []
