"""`snodo serve` with no DATABASE_URL: cold start, real HTTP, restart with data kept, clean stop."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from tests.e2e.server import ServerProcess, clean_env, postgres_processes_using, process_is_gone
from tests.intake import AS_MELZO

pytestmark = pytest.mark.e2e

PASSWORD = "snodo-e2e-workers-2026"

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


def _on_port(process: psutil.Process, port: int, status: str) -> int:
    """How many of the process's TCP sockets on `port` are in `status`."""
    try:
        connections = process.net_connections(kind="tcp")
    except psutil.NoSuchProcess:
        return 0
    return sum(1 for c in connections if c.status == status and c.laddr.port == port)


def _server_processes(server: ServerProcess) -> list[psutil.Process]:
    """The children of `snodo serve` that listen on its port (not multiprocessing's helpers)."""
    children = psutil.Process(server.process.pid).children(recursive=True)
    return [child for child in children if _on_port(child, server.port, psutil.CONN_LISTEN)]


def _connections_per_process(port: int, processes: list[psutil.Process], *, clients: int) -> dict[int, int]:
    """Open `clients` connections at once (the kernel completes them before any process accepts)
    and count, once all are accepted, the connections held by each of `processes`."""
    connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(clients)]
    try:
        deadline = time.monotonic() + 10
        while True:
            held = {process.pid: _on_port(process, port, psutil.CONN_ESTABLISHED) for process in processes}
            if sum(held.values()) >= clients or time.monotonic() > deadline:
                return held
            time.sleep(0.05)
    finally:
        for connection in connections:
            connection.close()


def test_several_server_processes_share_one_database_and_one_secret(tmp_path: Path) -> None:
    """`--workers 2`: two processes on one port; a token issued by either is accepted by both
    (the development secret is written once, before they start), and a stop ends everything."""
    data_dir = tmp_path / "var"
    pgdata = data_dir / "pgdata"
    env = clean_env(SNODO_DATA_DIR=str(data_dir))
    server = ServerProcess(env=env, log=tmp_path / "serve.log", args=("--workers", "2"))
    try:
        server.wait_ready(COLD_START_LIMIT_S)
        children = psutil.Process(server.process.pid).children(recursive=True)
        workers = [p for p in children if "python" in p.name()]
        assert len(workers) >= 2, [p.cmdline() for p in workers]
        seeded = subprocess.run(
            [sys.executable, "-m", "app.cli", "seed-demo", "--password", PASSWORD],
            env={**env, "DATABASE_URL": f"postgresql://postgres@/snodo?host={pgdata}"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert seeded.returncode == 0, seeded.stderr
        login = httpx.post(
            f"{server.base_url}/api/v1/auth/token", data={"username": AS_MELZO, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        # A new connection each time, so that both processes get to answer.
        answers = [httpx.get(f"{server.base_url}/api/v1/me", headers=headers).status_code for _ in range(40)]
        assert answers == [200] * 40
        # Twenty clients opening keep-alive connections at once (a proxy's pool, a load test) are
        # spread over the processes: with one shared socket, the first process woken took them all.
        serving = _server_processes(server)
        assert len(serving) == 2, serving
        held = _connections_per_process(server.port, serving, clients=20)
        assert sum(held.values()) == 20, held
        assert min(held.values()) >= 1, held  # the kernel hashes: 10 ± 2 each, not all on one
        # A second server on the port is refused rather than let into the group.
        second = subprocess.run(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(server.port), "--workers", "2"],
            env={**env, "DATABASE_URL": f"postgresql://postgres@/snodo?host={pgdata}"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode != 0
        assert f"cannot listen on 127.0.0.1:{server.port}" in second.stderr
        # A server process that dies is replaced on its socket; the port answers all along.
        serving[0].kill()
        deadline = time.monotonic() + 30
        while {p.pid for p in _server_processes(server)} - {serving[1].pid} in (set(), {serving[0].pid}):
            assert time.monotonic() < deadline, "the dead server process was not replaced"
            time.sleep(0.2)
        answers = [httpx.get(f"{server.base_url}/api/v1/me", headers=headers).status_code for _ in range(20)]
        assert answers == [200] * 20
        workers = psutil.Process(server.process.pid).children(recursive=True)
    finally:
        code = server.stop(signal.SIGTERM)
    assert code in (0, 143)
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == []
    assert postgres_processes_using(pgdata) == []
