"""Signing helpers and a real HTTP receiver for webhook tests."""

from __future__ import annotations

import asyncio
import hmac
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def signed_headers(secret: str, body: str, *, event_id: str, sender: str, at: datetime) -> dict[str, str]:
    moment = at
    return {
        "content-type": "application/json",
        "snodo-sender": sender,
        "webhook-id": event_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, moment, body),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Receiver:
    """A subscriber's endpoint: verifies signatures like a real one, de-duplicates on webhook-id,
    and misbehaves on command (slow, failing) to exercise retries."""

    secret: str | None = None
    port: int = field(default_factory=free_port)
    slow_seconds: float = 0.0
    slow_next: int = 0
    fail_next: int = 0
    received: list[tuple[str, dict[str, Any], float]] = field(default_factory=list)  # every valid request
    rejected_signatures: int = 0
    # The sender's clock, where it is a test's frozen one: the signature is then checked with the
    # library's own signing at the stated time, and the 5-minute tolerance against that clock.
    clock: Callable[[], datetime] | None = None
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/snodo"

    async def handle(self, request: Request) -> Response:
        body = (await request.body()).decode()
        if self.slow_next > 0:
            self.slow_next -= 1
            await asyncio.sleep(self.slow_seconds)
        if self.fail_next > 0:
            self.fail_next -= 1
            return Response("boom", status_code=500)
        try:
            payload = self._verify(body, dict(request.headers))
        except (WebhookVerificationError, ValueError):
            self.rejected_signatures += 1
            return Response("bad signature", status_code=401)
        self.received.append((request.headers["webhook-id"], payload, time.monotonic()))
        return Response(status_code=204)

    def _verify(self, body: str, headers: dict[str, str]) -> Any:
        if self.clock is None:
            return Webhook(self.secret or "").verify(body, headers)
        stated = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
        if abs((self.clock() - stated).total_seconds()) > 300:
            raise WebhookVerificationError("Message timestamp too old")
        expected = Webhook(self.secret or "").sign(headers["webhook-id"], stated, body).split(",", 1)[1]
        offered = [s.split(",", 1)[1] for s in headers["webhook-signature"].split() if s.startswith("v1,")]
        if not any(hmac.compare_digest(expected, s) for s in offered):
            raise WebhookVerificationError("No matching signature found")
        return json.loads(body)

    def unique(self) -> dict[str, dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for event_id, payload, _ in self.received:
            seen.setdefault(event_id, payload)
        return seen

    async def start(self) -> None:
        app = Starlette(routes=[Route("/hooks/snodo", self.handle, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
            self._server = None


def body_of(envelope: dict[str, Any]) -> str:
    return json.dumps(envelope, separators=(",", ":"))
