"""Where the server's Python time goes on one request, in process (pyinstrument, not a dependency).

    pip install pyinstrument
    python -m tests.bench.profile --pgdata /tmp/snodo-bench/pgdata-20000 --login as.melzo@demo.snodo.it \\
        --path '/api/v1/dossiers?limit=50' --requests 300

Starts the embedded PostgreSQL of a data directory that tests.bench.run seeded (`--keep`), builds the
app as `snodo serve` does, logs in, warms up, then sends `--requests` requests one at a time through
httpx's ASGI transport (no sockets, no uvicorn) under the profiler, and prints the mean wall time
per request and the profile (`--html FILE` writes pyinstrument's HTML too).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import warnings
from pathlib import Path

import httpx

from app.core.embedded import EmbeddedPostgres
from app.core.settings import get_settings
from app.main import create_app
from tests.bench.run import DEMO_PASSWORD, JWT_SECRET


async def profile(url: str, args: argparse.Namespace) -> None:
    if not args.no_profiler:
        from pyinstrument import Profiler  # a tool of this script only, not a dependency

    os.environ.update(DATABASE_URL=url, SNODO_JWT_SECRET=JWT_SECRET, SNODO_WORKER_IN_PROCESS="false")
    get_settings.cache_clear()
    app = create_app(get_settings())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            token = await client.post(
                "/api/v1/auth/token", data={"username": args.login, "password": DEMO_PASSWORD}
            )
            token.raise_for_status()
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            for _ in range(30):
                (await client.get(args.path, headers=headers)).raise_for_status()
            if args.no_profiler:
                # This process's CPU per request: what the server costs a core under load.
                started, cpu = time.perf_counter(), time.process_time()
                for _ in range(args.requests):
                    (await client.get(args.path, headers=headers)).raise_for_status()
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
                print(
                    f"{args.requests} requests, {elapsed / args.requests * 1000:.2f} ms each, "
                    f"{cpu / args.requests * 1000:.2f} ms of this process's CPU each (no profiler)"
                )
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
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pg = EmbeddedPostgres(args.pgdata)
    pg.start()
    try:
        asyncio.run(profile(pg.url(), args))
    finally:
        pg.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
