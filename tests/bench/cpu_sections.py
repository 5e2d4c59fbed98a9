"""This process's CPU per request, section by section, in process (no profiler, no sockets).

    python -m tests.bench.cpu_sections --pgdata /tmp/snodo-bench/pgdata-1000000 \\
        --path '/api/v1/dossiers?limit=50' --requests 400

Wraps the functions a worklist request passes through and adds up `time.process_time()` inside
each (nested sections are counted in each of them), then sends `--requests` requests one at a time
through httpx's ASGI transport after 50 of warm-up. Cheaper than a profiler (which inflates Python
that calls small functions) and precise enough to see a 0.2 ms change; the machine's noise is
±10 %, so compare runs made one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from app.core.embedded import EmbeddedPostgres
from app.core.settings import get_settings
from tests.bench.run import DEMO_PASSWORD, JWT_SECRET

CPU: collections.Counter[str] = collections.Counter()
CALLS: collections.Counter[str] = collections.Counter()
ORDER: list[str] = ["the app, in all"]  # as instrumented: a section's parts follow it, indented


def _timed(owner: Any, name: str, label: str) -> None:
    ORDER.append(label)
    function: Callable[..., Any] = getattr(owner, name)
    if asyncio.iscoroutinefunction(function):

        @functools.wraps(function)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return await function(*args, **kwargs)
            finally:
                CPU[label] += time.process_time() - started
                CALLS[label] += 1

        setattr(owner, name, timed_async)
    else:

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                CPU[label] += time.process_time() - started
                CALLS[label] += 1

        setattr(owner, name, timed)


def _instrument() -> None:
    import fastapi.dependencies.utils as fastapi_dependencies
    import fastapi.routing as fastapi_routing
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

    from app.api import deps
    from app.core import jwt
    from app.services import audit, dossiers

    _timed(fastapi_routing, "solve_dependencies", "  dependencies")
    _timed(fastapi_dependencies, "request_params_to_args", "    parameters and headers")
    _timed(deps, "authenticate", "    authenticate")
    _timed(jwt, "decode", "      jwt.decode")
    _timed(fastapi_routing, "run_endpoint_function", "  endpoint")
    _timed(dossiers, "list_visible", "    dossiers.list_visible")
    _timed(dossiers, "set_local", "      set_local (plan mode)")
    _timed(AsyncSession, "commit", "  commit")
    _timed(audit, "_insert_pending", "    access-log insert")
    _timed(fastapi_routing, "serialize_response", "  response serialization")
    _timed(AsyncSession, "close", "  session close")
    _timed(AsyncConnection, "execute", "  (Core executes: token check, page)")


async def measure(url: str, args: argparse.Namespace) -> None:
    os.environ.update(DATABASE_URL=url, SNODO_JWT_SECRET=JWT_SECRET, SNODO_WORKER_IN_PROCESS="false")
    get_settings.cache_clear()
    _instrument()
    from app.main import create_app

    app = create_app(get_settings())

    async def whole(scope: Any, receive: Any, send: Any) -> None:
        started = time.process_time()
        try:
            await app(scope, receive, send)
        finally:
            CPU["the app, in all"] += time.process_time() - started

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=whole)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            token = await client.post(
                "/api/v1/auth/token", data={"username": args.login, "password": DEMO_PASSWORD}
            )
            token.raise_for_status()
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            for _ in range(50):
                (await client.get(args.path, headers=headers)).raise_for_status()
            CPU.clear()
            CALLS.clear()
            started, cpu = time.perf_counter(), time.process_time()
            for _ in range(args.requests):
                (await client.get(args.path, headers=headers)).raise_for_status()
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    n = args.requests
    print(f"{args.path} as {args.login}: {n} requests, {elapsed / n * 1000:.2f} ms each,")
    print(f"{cpu / n * 1000:.2f} ms of this process's CPU each (the test client's included)")
    for label in ORDER:
        seconds = CPU[label]
        calls = f"({CALLS[label] / n:.0f} calls)" if CALLS[label] else ""
        print(f"  {label:48s} {seconds / n * 1000:6.2f} ms {calls}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pgdata", type=Path, required=True)
    parser.add_argument("--login", default="as.melzo@demo.snodo.it")
    parser.add_argument("--path", default="/api/v1/dossiers?limit=50")
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pg = EmbeddedPostgres(args.pgdata)
    pg.start()
    try:
        asyncio.run(measure(pg.url(), args))
    finally:
        pg.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
