"""HTTP load generator: C virtual users, each with its own keep-alive connection.

    python -m tests.bench.load CONFIG.json      # or "-" to read the config from stdin

The config (JSON):

    {"base_url": "http://127.0.0.1:8123", "users": 20, "warmup_s": 5, "duration_s": 20,
     "timeout_s": 10, "seed": 1, "pace_s": 0,
     "specs": [{"name": "me", "path": "/api/v1/me", "params": {}, "headers": {...}, "weight": 1}]}

Each virtual user owns one `httpx.AsyncClient` (HTTP/1.1, one keep-alive connection) and loops:
pick a spec (weighted, seeded), send it, wait for the whole body, send the next one. By default
there is no think time (closed loop: 20 users keep 20 requests in flight, which measures the
server at saturation); with "pace_s" each user starts one request every pace_s seconds (20 users
at pace 1 s offer 20 requests/s) and requests that had to start late are counted. Requests
*started* during the warm-up are not recorded; those started in the measurement window are, even
if they end just after it. Any status other than 2xx (a 422 included) and any transport error
counts as an error.

It prints one JSON object: per spec the count, throughput, latency percentiles (nearest rank,
milliseconds), errors by status, mean body size; and the CPU this process used. Run it in its
own process so that it does not share a GIL (nor an event loop) with the server; on a 2-core
machine it still competes with the server and PostgreSQL for the same two cores, which is why its
CPU time is reported.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


@dataclass(frozen=True)
class Spec:
    name: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    weight: float = 1.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Spec:
        return cls(
            name=str(data["name"]),
            path=str(data["path"]),
            params={str(k): str(v) for k, v in (data.get("params") or {}).items()},
            headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
            method=str(data.get("method", "GET")).upper(),
            weight=float(data.get("weight", 1.0)),
        )


@dataclass(frozen=True)
class Config:
    base_url: str
    specs: tuple[Spec, ...]
    users: int = 20
    warmup_s: float = 5.0
    duration_s: float = 20.0
    timeout_s: float = 10.0
    seed: int = 1
    # 0: closed loop (send the next request as soon as the previous one answered). > 0: each user
    # starts one request every pace_s seconds (think time); a request that cannot start on time
    # because the previous one is still running starts at once and is counted as "late".
    pace_s: float = 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Config:
        specs = tuple(Spec.from_json(s) for s in data["specs"])
        if not specs:
            raise ValueError("no specs")
        if len({s.name for s in specs}) != len(specs):
            raise ValueError("spec names must be unique")
        return cls(
            base_url=str(data["base_url"]),
            specs=specs,
            users=int(data.get("users", 20)),
            warmup_s=float(data.get("warmup_s", 5.0)),
            duration_s=float(data.get("duration_s", 20.0)),
            timeout_s=float(data.get("timeout_s", 10.0)),
            seed=int(data.get("seed", 1)),
            pace_s=float(data.get("pace_s", 0.0)),
        )


@dataclass
class Samples:
    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    body_bytes: int = 0
    late: int = 0  # paced runs: requests that started behind schedule


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(samples: Samples, duration_s: float) -> dict[str, Any]:
    values = sorted(samples.latencies_s)
    count = len(values)

    def ms(value: float) -> float | None:
        return None if math.isnan(value) else round(value * 1000, 2)

    errors = sum(samples.errors.values())
    return {
        "count": count,
        "ok": count - errors,
        "errors": errors,
        "error_kinds": dict(samples.errors),
        "rps": round(count / duration_s, 1) if duration_s > 0 else None,
        "mean_ms": ms(sum(values) / count) if count else None,
        "p50_ms": ms(percentile(values, 0.50)),
        "p95_ms": ms(percentile(values, 0.95)),
        "p99_ms": ms(percentile(values, 0.99)),
        "max_ms": ms(values[-1]) if values else None,
        "mean_body_bytes": round(samples.body_bytes / count) if count else None,
        "late": samples.late,
    }


async def virtual_user(
    index: int, config: Config, results: dict[str, Samples], measure_from: float, stop_at: float
) -> None:
    rng = random.Random(config.seed * 1_000_003 + index)
    weights = [s.weight for s in config.specs]
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(
        base_url=config.base_url, http1=True, http2=False, limits=limits, timeout=config.timeout_s
    ) as client:
        # Paced users start at a random phase, so that they do not all fire together.
        next_start = time.perf_counter() + rng.uniform(0, config.pace_s)
        while True:
            late = False
            if config.pace_s > 0:
                now = time.perf_counter()
                if now < next_start:
                    await asyncio.sleep(next_start - now)
                else:
                    late = now - next_start > 0.001
                next_start = max(next_start + config.pace_s, time.perf_counter())
            started = time.perf_counter()
            if started >= stop_at:
                return
            spec = rng.choices(config.specs, weights)[0]
            error: str | None = None
            size = 0
            try:
                response = await client.request(
                    spec.method, spec.path, params=spec.params, headers=spec.headers
                )
                size = len(response.content)
                if not 200 <= response.status_code < 300:
                    error = str(response.status_code)
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            elapsed = time.perf_counter() - started
            if started >= measure_from:
                samples = results[spec.name]
                samples.latencies_s.append(elapsed)
                samples.body_bytes += size
                samples.late += late
                if error is not None:
                    samples.errors[error] += 1


async def run(config: Config) -> dict[str, Any]:
    results = {spec.name: Samples() for spec in config.specs}
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    measure_from = began + config.warmup_s
    stop_at = measure_from + config.duration_s
    await asyncio.gather(
        *(virtual_user(i, config, results, measure_from, stop_at) for i in range(config.users))
    )
    ended = time.perf_counter()
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    everything = Samples()
    for samples in results.values():
        everything.latencies_s += samples.latencies_s
        everything.errors.update(samples.errors)
        everything.body_bytes += samples.body_bytes
        everything.late += samples.late
    return {
        "config": {
            "base_url": config.base_url,
            "users": config.users,
            "warmup_s": config.warmup_s,
            "duration_s": config.duration_s,
            "pace_s": config.pace_s,
        },
        "specs": {name: summarize(samples, config.duration_s) for name, samples in results.items()},
        "total": summarize(everything, config.duration_s),
        "load_generator": {
            "wall_s": round(ended - began, 2),
            "cpu_s": round(cpu_s, 2),
            # Share of one core the generator itself used (warm-up included).
            "cores_used": round(cpu_s / (ended - began), 2),
            "event_loop": type(asyncio.get_running_loop()).__module__,
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tests.bench.load CONFIG.json|-", file=sys.stderr)
        return 2
    raw = sys.stdin.read() if args[0] == "-" else Path(args[0]).read_text(encoding="utf-8")
    config = Config.from_json(json.loads(raw))
    try:
        import uvloop  # installed with uvicorn[standard]: lowers the generator's own overhead
    except ImportError:
        result = asyncio.run(run(config))
    else:
        result = uvloop.run(run(config))
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
