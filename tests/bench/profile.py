"""Where the server's Python time goes on one request, in process (pyinstrument, not a dependency).

    pip install pyinstrument
    python -m tests.bench.profile --pgdata /tmp/snodo-bench/pgdata-20000 --login as.melzo@demo.snodo.it \\
        --path '/api/v1/dossiers?limit=50' --requests 300

Starts the embedded PostgreSQL of a data directory that tests.bench.run seeded (`--keep`), builds the
app as `snodo serve` does, logs in, warms up, then sends `--requests` requests one at a time through
httpx's ASGI transport (no sockets, no uvicorn) under the profiler, and prints the mean wall time
per request and the profile (`--html FILE` writes pyinstrument's HTML too).

`--no-profiler`: wall time and this process's CPU per request only. `--sections`: the same, and
this process's CPU section by section (authentication, the page, the commit, serialization…):
each function a worklist request passes through is wrapped and `time.process_time()` inside it
added up (nested sections counted in each). Cheaper than a profiler, which inflates Python that
calls small functions, and precise enough to see a 0.2 ms change; the machine's noise is ±10 %,
so compare runs made one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import functools
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from app.core.settings import get_settings
from app.main import create_app
from tests.bench.run import DEMO_PASSWORD, JWT_SECRET, on_data_dir

CPU: collections.Counter[str] = collections.Counter()
CALLS: collections.Counter[str] = collections.Counter()
ORDER: list[str] = ["the app, in all"]  # as instrumented: a section's parts follow it, indented


@contextlib.contextmanager
def _charged(label: str) -> Iterator[None]:
    """This process's CPU inside the block, added to `label`'s section."""
    started = time.process_time()
    try:
        yield
    finally:
        CPU[label] += time.process_time() - started
        CALLS[label] += 1


def _timed(owner: Any, name: str, label: str) -> None:
    ORDER.append(label)
    function: Callable[..., Any] = getattr(owner, name)
    if asyncio.iscoroutinefunction(function):

        @functools.wraps(function)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            with _charged(label):
                return await function(*args, **kwargs)

        setattr(owner, name, timed_async)
    else:

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with _charged(label):
                return function(*args, **kwargs)

        setattr(owner, name, timed)


def _instrument() -> None:
    import fastapi.dependencies.utils as fastapi_dependencies
    import fastapi.routing as fastapi_routing
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

    from app.api import deps
    from app.core import jwt
    from app.services.access import audit
    from app.services.dossiers import worklist as dossiers

    _timed(fastapi_routing, "solve_dependencies", "  dependencies")
    _timed(fastapi_dependencies, "request_params_to_args", "    parameters and headers")
    _timed(deps, "authenticate", "    authenticate")
    _timed(jwt, "decode", "      jwt.decode")
    _timed(fastapi_routing, "run_endpoint_function", "  endpoint")
    _timed(dossiers, "list_visible", "    dossiers.list_visible")
    _timed(dossiers, "set_local", "      set_local (plan settings)")
    _timed(AsyncSession, "commit", "  commit")
    _timed(audit, "_insert_pending", "    access-log insert")
    _timed(fastapi_routing, "serialize_response", "  response serialization")
    _timed(AsyncSession, "close", "  session close")
    _timed(AsyncConnection, "execute", "  (Core executes: token check, page)")


def _print_sections(requests: int) -> None:
    for label in ORDER:
        calls = f"({CALLS[label] / requests:.0f} calls)" if CALLS[label] else ""
        print(f"  {label:48s} {CPU[label] / requests * 1000:6.2f} ms {calls}")


async def profile(url: str, args: argparse.Namespace) -> None:
    no_profiler = args.no_profiler or args.sections
    if not no_profiler:
        from pyinstrument import Profiler  # a tool of this script only, not a dependency

    os.environ.update(DATABASE_URL=url, SNODO_JWT_SECRET=JWT_SECRET, SNODO_WORKER_IN_PROCESS="false")
    get_settings.cache_clear()
    if args.sections:
        _instrument()
    app = create_app(get_settings())

    async def timed_app(scope: Any, receive: Any, send: Any) -> None:
        started = time.process_time()
        try:
            await app(scope, receive, send)
        finally:
            CPU["the app, in all"] += time.process_time() - started

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=timed_app if args.sections else app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            token = await client.post(
                "/api/v1/auth/token", data={"username": args.login, "password": DEMO_PASSWORD}
            )
            token.raise_for_status()
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            for _ in range(30):
                (await client.get(args.path, headers=headers)).raise_for_status()
            if no_profiler:
                # This process's CPU per request: what the server costs a core under load.
                CPU.clear()
                CALLS.clear()
                started, cpu = time.perf_counter(), time.process_time()
                for _ in range(args.requests):
                    (await client.get(args.path, headers=headers)).raise_for_status()
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
                print(
                    f"{args.requests} requests, {elapsed / args.requests * 1000:.2f} ms each, "
                    f"{cpu / args.requests * 1000:.2f} ms of this process's CPU each (no profiler;"
                    " the test client's included)"
                )
                if args.sections:
                    _print_sections(args.requests)
                return
            profiler = Profiler(interval=0.0005, async_mode="enabled")
            started = time.perf_counter()
            with profiler:
                for _ in range(args.requests):
                    (await client.get(args.path, headers=headers)).raise_for_status()
            elapsed = time.perf_counter() - started
    print(f"{args.requests} requests, {elapsed / args.requests * 1000:.2f} ms each (profiler on)")
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    if args.html:
        args.html.write_text(profiler.output_html())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pgdata", type=Path, required=True)
    parser.add_argument("--login", default="as.melzo@demo.snodo.it")
    parser.add_argument("--path", default="/api/v1/dossiers?limit=50")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--html", type=Path)
    parser.add_argument("--no-profiler", action="store_true", help="time and CPU per request only")
    parser.add_argument("--sections", action="store_true", help="and CPU per section, no profiler")
    args = parser.parse_args()
    return on_data_dir(args.pgdata, lambda url: profile(url, args))


if __name__ == "__main__":
    raise SystemExit(main())
