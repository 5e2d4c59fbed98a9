"""The bare baseline of the benchmark: the service's answers from a minimal ASGI app.

    python -m tests.bench.raw STATEMENTS.pickle DSN PORT      (tests/bench/run.py starts it)

No framework, no ORM, no authentication, no access log, no second query: a raw ASGI callable
served by the same uvicorn as the service (one process, the same event loop and HTTP parser), an
asyncpg pool of 20 connections per set of planner settings the statements were run with, each
opened as the service's run (role `snodo_app`, the ambito in `snodo.ambito_id`, so row-level
security is in every plan, and those `plan_cache_mode` and `enable_bitmapscan`), and per
route ONE SQL statement through the bare driver: `GET /raw/<key>` runs statement <key> and returns
its rows as a JSON list.

The statement behind each route is the SELECT the service itself sends for the same request (the
same worklist page, deep page or name search, for the same user), captured at the driver by
`plans.capture` with its parameters. Writing the access policy out a second time by hand would
give a baseline that can answer differently from the service; with the same statement, run.py
checks that both return the same dossiers, and the ratio between the two measures exactly what the
service does around that query: authentication, the request's transaction, the access-log row,
the overdue lookup, the ORM, validation and serialization.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import sys
from pathlib import Path
from typing import Any

import asyncpg
import uvicorn

from app.core import serving

# key → (sql, parameters, ambito id, the planner settings the service ran it with)
Settings = tuple[tuple[str, str], ...]
Statements = dict[str, tuple[str, tuple[Any, ...], str, Settings]]
POOL_SIZE = 20


class RawApp:
    def __init__(self, statements: Statements, dsn: str) -> None:
        self.statements = statements
        self.dsn = dsn
        ambiti = {ambito for _, _, ambito, _ in statements.values()}
        if len(ambiti) != 1:
            raise ValueError(f"the statements span {len(ambiti)} ambiti; one pool serves one")
        self.ambito = ambiti.pop()
        # One pool per set of planner settings the service ran the statements with (startup
        # parameters of the pool's connections, no SET per request).
        self.settings = {settings for _, _, _, settings in statements.values()}
        self.pools: dict[Settings, asyncpg.Pool] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    # Startup parameters, not SET: the pool's reset on release (RESET ALL) returns
                    # to them, where it would undo a SET ROLE.
                    for settings in self.settings:
                        self.pools[settings] = await asyncpg.create_pool(
                            self.dsn,
                            min_size=POOL_SIZE // len(self.settings),
                            max_size=POOL_SIZE,
                            server_settings={
                                "role": "snodo_app",
                                "snodo.ambito_id": self.ambito,
                                # as the service ran these statements (app/core/db.py, dossiers.py)
                                **dict(settings),
                            },
                        )
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    for pool in self.pools.values():
                        await pool.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        key = scope["path"].removeprefix("/raw/")
        found = self.statements.get(key)
        if found is None or not self.pools:
            await _respond(send, 404, b'{"detail": "no such statement"}')
            return
        sql, parameters, _, settings = found
        async with self.pools[settings].acquire() as connection:
            rows = await connection.fetch(sql, *parameters)
        await _respond(send, 200, json.dumps([dict(row) for row in rows], default=str).encode())


async def _respond(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (3, 4):
        print("usage: python -m tests.bench.raw STATEMENTS.pickle DSN PORT [PROCESSES]", file=sys.stderr)
        return 2
    # Our own file, written by run.py a moment earlier: asyncpg wants the parameters' Python types.
    statements: Statements = pickle.loads(Path(args[0]).read_bytes())  # noqa: S301
    app = RawApp(statements, args[1])
    processes = int(args[3]) if len(args) == 4 else 1
    if processes == 1:
        uvicorn.run(app, host="127.0.0.1", port=int(args[2]), log_level="warning", access_log=False)
        return 0
    # As `snodo serve --workers N` does (app/core/serving.py): one socket per process in one
    # SO_REUSEPORT group, so the kernel spreads the 20 connections over the processes.
    sockets = serving.listening_sockets("127.0.0.1", int(args[2]), processes)
    children = []
    for sock in sockets:
        pid = os.fork()
        if pid == 0:
            config = uvicorn.Config(app, log_level="warning", access_log=False)
            uvicorn.Server(config).run(sockets=[sock])
            os._exit(0)
        children.append(pid)
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        os.waitpid(child, 0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
