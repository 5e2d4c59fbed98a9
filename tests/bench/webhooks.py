"""The webhook benchmark: delivery throughput with two workers, and commit-to-receipt latency.

    python -m tests.bench.webhooks --referrals 2000 --rate 10 --duration 60

Everything is real: an embedded PostgreSQL, `snodo serve --no-worker` and two `snodo worker`
processes as subprocesses, and a receiver on 127.0.0.1 (tests/webhook_support.py) that verifies
every Standard Webhooks signature like a subscriber would. The workers run with the production
defaults for batch size and concurrency (SNODO_WEBHOOK_BATCH, SNODO_WEBHOOK_CONCURRENCY).

1. Throughput. With no worker running, `--referrals` referrals go through the API; each writes
   its events (`referral.received`, `dossier.routed`) to the outbox. Then the two workers start
   and the clock runs from the first receipt to the last: events per second, as the receiver
   sees them (unique webhook-ids; duplicates are counted and reported).
2. Latency. With the two workers idle and listening, referrals arrive at `--rate` per second for
   `--duration` seconds. For each `referral.received` event, the time from the commit of the
   transaction that wrote it (PostgreSQL's own commit timestamp, `track_commit_timestamp = on`,
   on this machine's clock) to the receiver's receipt (wall clock, same machine).

Prints a JSON report and writes it to `--workdir`/webhooks.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import asyncpg
import httpx
from codicefiscale import codicefiscale
from cryptography.fernet import Fernet
from starlette.requests import Request
from starlette.responses import Response

from app.core import migrations
from app.core.embedded import EmbeddedPostgres
from tests.db import asyncpg_dsn, create_database
from tests.intake import AS_MELZO, COORDINATOR, MELZO_ISTAT, referral
from tests.webhook_support import Receiver, free_port

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "snodo-bench-2026"
SURNAMES = ["Rossi", "Brambilla", "Colombo", "Ferrari", "Bianchi", "Villa", "Galli", "Sala", "Conti"]
GIVEN: list[tuple[str, Literal["M", "F"]]] = [
    ("Mario", "M"),
    ("Giulia", "F"),
    ("Luca", "M"),
    ("Sara", "F"),
    ("Paolo", "M"),
    ("Anna", "F"),
]


def people(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Distinct Melzo residents with valid codici fiscali (so no referral is a duplicate)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    result: list[dict[str, Any]] = []
    while len(result) < count:
        surname = rng.choice(SURNAMES)
        given, sex = rng.choice(GIVEN)
        born = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 65))
        code = codicefiscale.encode(
            lastname=surname, firstname=given, gender=sex, birthdate=born.isoformat(), birthplace="F119"
        )
        if code in seen:
            continue
        seen.add(code)
        result.append(
            {
                "fiscal_code": code,
                "family_name": surname,
                "given_name": given,
                "sex": sex,
                "birth_date": born.isoformat(),
                "residence_comune_istat": MELZO_ISTAT,
            }
        )
    return result


class TimedReceiver(Receiver):
    """Also notes the wall-clock time of each receipt, to compare with commit timestamps."""

    def __init__(self) -> None:
        super().__init__()
        self.wall: dict[str, float] = {}

    async def handle(self, request: Request) -> Response:
        response = await super().handle(request)
        if response.status_code < 300:
            self.wall.setdefault(request.headers["webhook-id"], time.time())
        return response


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.port = free_port()
        self.receiver = TimedReceiver()
        self.processes: list[subprocess.Popen[bytes]] = []
        self.env: dict[str, str] = {}

    def spawn(self, name: str, *command: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *command], env=self.env, cwd=REPO, stdout=log, stderr=log
        )
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        process.terminate()
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
        if process.poll() is None:
            process.kill()
            process.wait()

    async def prepare(self, server_url: str) -> None:
        url = await create_database(server_url, prefix="snodo_bench_hooks")
        await migrations.upgrade_async(url)
        self.env = {
            **os.environ,
            "DATABASE_URL": url,
            "SNODO_ENVIRONMENT": "development",
            "SNODO_LOG_LEVEL": "WARNING",
            "SNODO_JWT_SECRET": "bench-" + "w" * 40,
            "SNODO_DATA_KEY": Fernet.generate_key().decode(),
            "SNODO_WEBHOOK_ALLOWED_HOSTS": '["127.0.0.1"]',
            "SNODO_WEBHOOK_ALLOW_HTTP": "true",
            "SNODO_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
            "SNODO_WEBHOOK_POLL_S": "1.0",
        }
        seeded = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app.cli",
            "seed-demo",
            "--password",
            PASSWORD,
            env=self.env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _, errors = await seeded.communicate()
        if seeded.returncode != 0:
            raise SystemExit(errors.decode())
        self.spawn("server", "serve", "--no-worker", "--no-migrate", "--port", str(self.port))
        await self.receiver.start()

    async def client(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        deadline = time.monotonic() + 60
        while True:
            with suppress(httpx.TransportError):
                if (await client.get("/readyz")).status_code == 200:
                    return client
            if time.monotonic() > deadline:
                raise SystemExit("the server did not become ready; see server.log")
            await asyncio.sleep(0.2)

    @staticmethod
    async def login(client: httpx.AsyncClient, who: str) -> dict[str, str]:
        answer = await client.post("/api/v1/auth/token", data={"username": who, "password": PASSWORD})
        answer.raise_for_status()
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    async def subscribe(self, client: httpx.AsyncClient, coordinator: dict[str, str]) -> None:
        created = await client.post(
            "/api/v1/webhooks/subscriptions",
            headers=coordinator,
            json={"url": self.receiver.url, "event_types": ["referral.received", "dossier.routed"]},
        )
        created.raise_for_status()
        self.receiver.secret = created.json()["secret"]

    async def refer(
        self, client: httpx.AsyncClient, headers: dict[str, str], person: dict[str, Any]
    ) -> tuple[str, float]:
        answer = await client.post(
            "/api/v1/referrals", json=referral(person, need_areas=["lavoro"]), headers=headers
        )
        if answer.status_code != 201:
            raise SystemExit(f"referral refused: {answer.status_code} {answer.text}")
        return answer.json()["dossier_id"], time.monotonic()

    async def throughput(
        self, client: httpx.AsyncClient, headers: dict[str, str], persons: list[dict[str, Any]]
    ) -> dict[str, Any]:
        started = time.monotonic()
        queue = list(persons)

        async def feeder() -> None:
            while queue:
                await self.refer(client, headers, queue.pop())

        await asyncio.gather(*(feeder() for _ in range(4)))
        intake_s = time.monotonic() - started
        expected = await self.outbox_size(client)
        before = len(self.receiver.received)
        launched = time.monotonic()
        for n in (1, 2):
            self.spawn(f"worker-{n}", "worker")
        deadline = launched + 600
        while len(self.receiver.unique()) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        batch = self.receiver.received[before:]
        unique = len(self.receiver.unique())
        first, last = batch[0][2], batch[-1][2]
        return {
            "referrals": len(persons),
            "intake_seconds": round(intake_s, 1),
            "events": expected,
            "received_unique": unique,
            "received_requests": len(batch),
            "first_to_last_receipt_s": round(last - first, 2),
            "events_per_second": round(unique / (last - first), 1),
            "launch_to_last_receipt_s": round(last - launched, 2),
        }

    async def outbox_size(self, client: httpx.AsyncClient) -> int:
        """Deliveries waiting for the receiver's subscription, counted by the service itself."""
        total = 0
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 200}
            if cursor:
                params["cursor"] = cursor
            page = await client.get("/api/v1/webhooks/deliveries", params=params, headers=self.coordinator)
            page.raise_for_status()
            body = page.json()
            total += len(body["items"])
            cursor = body.get("next_cursor")
            if not cursor:
                return total

    async def latency(
        self, client: httpx.AsyncClient, headers: dict[str, str], persons: list[dict[str, Any]]
    ) -> dict[str, Any]:
        dossiers: set[str] = set()
        interval = 1.0 / self.args.rate
        tasks = []

        async def one(person: dict[str, Any]) -> None:
            dossier_id, _ = await self.refer(client, headers, person)
            dossiers.add(dossier_id)

        start = time.monotonic()
        for n, person in enumerate(persons):
            await asyncio.sleep(max(0.0, start + n * interval - time.monotonic()))
            tasks.append(asyncio.create_task(one(person)))
        await asyncio.gather(*tasks)
        connection = await asyncpg.connect(asyncpg_dsn(self.env["DATABASE_URL"]))
        try:
            rows = await connection.fetch(
                "SELECT id::text AS id, extract(epoch FROM pg_xact_commit_timestamp(xmin)) AS committed "
                "FROM outbox_event WHERE event_type = 'referral.received' AND dossier_id = ANY($1::uuid[])",
                list(dossiers),
            )
        finally:
            await connection.close()
        committed = {row["id"]: float(row["committed"]) for row in rows}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not committed.keys() <= self.receiver.wall.keys():
            await asyncio.sleep(0.1)
        delays = [
            (self.receiver.wall[e] - at) * 1000 for e, at in committed.items() if e in self.receiver.wall
        ]
        return {
            "referrals": len(persons),
            "rate_per_second": self.args.rate,
            "events": len(committed),
            "received": len(delays),
            "p50_ms": round(statistics.median(delays), 1),
            "p95_ms": round(percentile(delays, 0.95), 1),
            "p99_ms": round(percentile(delays, 0.99), 1),
            "max_ms": round(max(delays), 1),
        }

    async def run(self, server_url: str) -> dict[str, Any]:
        await self.prepare(server_url)
        try:
            client = await self.client()
            self.coordinator = await self.login(client, COORDINATOR)
            social_worker = await self.login(client, AS_MELZO)
            await self.subscribe(client, self.coordinator)
            latency_count = int(self.args.rate * self.args.duration)
            persons = people(self.args.referrals + latency_count)
            report: dict[str, Any] = {
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "throughput": await self.throughput(client, social_worker, persons[: self.args.referrals]),
            }
            await asyncio.sleep(2)  # the workers are idle, listening
            report["latency"] = await self.latency(client, social_worker, persons[self.args.referrals :])
            report["duplicates_seen_by_receiver"] = len(self.receiver.received) - len(self.receiver.unique())
            report["rejected_signatures"] = self.receiver.rejected_signatures
            await client.aclose()
            return report
        finally:
            for process in reversed(self.processes):
                self.stop(process)
            await self.receiver.stop()


async def _track_commit_timestamps(url: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute("ALTER SYSTEM SET track_commit_timestamp = on")
    finally:
        await connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--referrals", type=int, default=2000, help="referrals queued for the throughput run")
    parser.add_argument("--rate", type=float, default=10.0, help="referrals per second in the latency run")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of the latency run")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="snodo-bench-hooks-"))
    workdir.mkdir(parents=True, exist_ok=True)
    first = EmbeddedPostgres(workdir / "pgdata")  # kept on stop: the setting needs a restart
    first.start()
    asyncio.run(_track_commit_timestamps(first.url("postgres")))
    first.stop()
    embedded = EmbeddedPostgres(workdir / "pgdata", delete_on_exit=True)
    embedded.start()
    try:
        report = asyncio.run(Bench(args, workdir).run(embedded.url("postgres")))
    finally:
        embedded.stop()
    text = json.dumps(report, indent=2)
    (workdir / "webhooks.json").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
