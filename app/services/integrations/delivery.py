"""The webhook worker: claims due deliveries, signs and posts them, retries with backoff.

Several workers (or `snodo serve` processes) can run at once: a delivery is claimed with
`FOR UPDATE SKIP LOCKED` and a lease, so no two workers post it concurrently; a worker that dies
mid-delivery leaves the lease to expire and another one posts it again (at least once: receivers
de-duplicate on `webhook-id`). Only the oldest open delivery of each (subscription, dossier) can be
claimed, so a receiver gets a dossier's events in the order they were committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.core.clock import Clock
from app.core.db import ALL_AMBITI, Database, session_scope, set_tenant
from app.core.security import Vault
from app.core.settings import Settings
from app.services.events.outbox import NOTIFY_CHANNEL
from app.services.integrations.webhooks import (
    _address_allowed,
    _is_ip,
    compact,
    resolve,
    sign,
)

logger = logging.getLogger("snodo.webhooks")

USER_AGENT = "snodo-webhooks/1"

CLAIM = text(
    """
    WITH due AS (
        SELECT d.id
        FROM webhook_delivery d
        JOIN webhook_subscription s ON s.id = d.subscription_id
        WHERE s.status = 'active' AND s.deleted_at IS NULL
          AND ((d.status = 'pending' AND d.next_attempt_at <= :now)
               OR (d.status = 'in_progress' AND d.locked_until < :now))
          -- An earlier open delivery of the same dossier (or, for events of no dossier, of no
          -- dossier) holds this one back. Two plain conditions, not IS NOT DISTINCT FROM, which
          -- no index serves: with 10,000 queued events that was a nested loop over all pairs
          -- and the claim hit the statement timeout.
          AND NOT EXISTS (
              SELECT 1 FROM webhook_delivery e
              WHERE d.dossier_id IS NOT NULL
                AND e.subscription_id = d.subscription_id
                AND e.dossier_id = d.dossier_id
                AND e.event_seq < d.event_seq
                AND e.status IN ('pending', 'in_progress'))
          AND NOT EXISTS (
              SELECT 1 FROM webhook_delivery e
              WHERE d.dossier_id IS NULL
                AND e.subscription_id = d.subscription_id
                AND e.dossier_id IS NULL
                AND e.event_seq < d.event_seq
                AND e.status IN ('pending', 'in_progress'))
        ORDER BY d.event_seq
        LIMIT :batch
        FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE webhook_delivery w
    SET status = 'in_progress', locked_until = :lease, attempts = w.attempts + 1, last_attempt_at = :now
    FROM due, webhook_subscription s
    WHERE w.id = due.id AND s.id = w.subscription_id
    RETURNING w.id, w.event_id, w.attempts, w.payload, s.id AS subscription_id, s.url,
              s.secret_encrypted, s.previous_secret_encrypted, s.previous_valid_until
    """
)

DELIVERED = text(
    """
    UPDATE webhook_delivery
    SET status = 'delivered', delivered_at = :now, locked_until = NULL,
        last_status_code = :code, last_error = NULL
    WHERE id = :id AND status = 'in_progress' AND attempts = :attempts
    """
)

FAILED = text(
    """
    UPDATE webhook_delivery
    SET status = CASE WHEN attempts >= :max_attempts THEN 'dead' ELSE 'pending' END,
        next_attempt_at = :retry_at, locked_until = NULL, last_status_code = :code, last_error = :error
    WHERE id = :id AND status = 'in_progress' AND attempts = :attempts
    """
)

# Every delivery of a subscription would otherwise update (and lock until commit) its one row:
# concurrent deliveries queued on it, and its dead versions piled up faster than vacuum cleared
# them (throughput fell from 188 to 98 events/s between 2,000 and 5,000 queued events). A success
# only writes when it ends a failure streak or the last recorded success is 10 s old.
SUBSCRIPTION_OK = text(
    """
    UPDATE webhook_subscription SET failure_streak = 0, last_success_at = :now
    WHERE id = :id
      AND (failure_streak <> 0 OR last_success_at IS NULL
           OR last_success_at < CAST(:now AS timestamptz) - interval '10 seconds')
    """
)

SUBSCRIPTION_FAILED = text(
    """
    UPDATE webhook_subscription
    SET failure_streak = failure_streak + 1, last_failure_at = :now,
        status = CASE WHEN failure_streak + 1 >= :limit THEN 'paused' ELSE status END,
        paused_reason = CASE WHEN failure_streak + 1 >= :limit
            THEN 'Sospesa automaticamente dopo ' || (failure_streak + 1)
                 || ' consegne fallite di seguito: ' || :error
            ELSE paused_reason END
    WHERE id = :id
    """
)


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    event_id: uuid.UUID
    attempts: int
    body: str
    subscription_id: uuid.UUID
    url: str
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    error: str | None


class WebhookWorker:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        vault: Vault,
        *,
        clock: Clock | None = None,
        client: httpx.AsyncClient | None = None,
        database_url: str | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.vault = vault
        self.clock = clock or Clock()
        self.client = client or httpx.AsyncClient(
            follow_redirects=False, headers={"User-Agent": USER_AGENT}, trust_env=False
        )
        self.database_url = database_url
        self._wake = asyncio.Event()
        self._limit = asyncio.Semaphore(settings.webhook_concurrency)

    # -- the loop -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        listener = await self._listen()
        try:
            while not stop.is_set():
                try:
                    claimed = await self.claim()
                except Exception:  # a lost connection must not kill the worker
                    logger.exception("claiming deliveries failed")
                    claimed = []
                if claimed:
                    await asyncio.gather(*(self._deliver_bounded(item) for item in claimed))
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wait(stop), timeout=self.settings.webhook_poll_s)
        finally:
            if listener is not None:
                await listener.close()

    async def _wait(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.create_task(self._wake.wait()), asyncio.create_task(stop.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _listen(self) -> asyncpg.Connection | None:
        """LISTEN for new deliveries, so they go out at once rather than at the next poll."""
        if not self.database_url:
            return None
        dsn = make_url(self.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            connection = await asyncpg.connect(dsn)
            await connection.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
        except (OSError, asyncpg.PostgresError):
            logger.warning("LISTEN unavailable: polling only")
            return None
        return connection

    async def drain(self) -> None:
        """Deliver until nothing is due (tests, and `snodo worker --once`)."""
        while claimed := await self.claim():
            await asyncio.gather(*(self._deliver_bounded(item) for item in claimed))

    # -- claiming and delivering ----------------------------------------------------------------

    async def claim(self) -> list[Claimed]:
        now = self.clock.now()
        async with session_scope(self.database) as session:
            await set_tenant(session, ALL_AMBITI)
            rows = (
                await session.execute(
                    CLAIM,
                    {
                        "now": now,
                        "lease": now + timedelta(seconds=self.settings.webhook_lease_s),
                        "batch": self.settings.webhook_batch,
                    },
                )
            ).all()
        claimed = []
        for row in rows:
            secrets = [self.vault.open(row.secret_encrypted)]
            if (
                row.previous_secret_encrypted is not None
                and row.previous_valid_until
                and row.previous_valid_until > now
            ):
                secrets.append(self.vault.open(row.previous_secret_encrypted))
            claimed.append(
                Claimed(
                    id=row.id,
                    event_id=row.event_id,
                    attempts=row.attempts,
                    body=compact(row.payload),
                    subscription_id=row.subscription_id,
                    url=row.url,
                    secrets=tuple(secrets),
                )
            )
        return claimed

    async def _deliver_bounded(self, item: Claimed) -> None:
        async with self._limit:
            await self.deliver(item)

    async def deliver(self, item: Claimed) -> Outcome:
        timestamp = self.clock.now()
        headers = {
            "content-type": "application/json",
            "webhook-id": str(item.event_id),
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": " ".join(
                sign(s, str(item.event_id), timestamp, item.body) for s in item.secrets
            ),
        }
        outcome = await self._post(item.url, item.body, headers)
        await self._record(item, outcome)
        return outcome

    async def _post(self, url: str, body: str, headers: dict[str, str]) -> Outcome:
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            addresses = [host] if _is_ip(host) else await resolve(host)
        except (OSError, UnicodeError) as exc:
            return Outcome(False, None, f"DNS: {type(exc).__name__}")
        if not addresses or not all(_address_allowed(a, self.settings) for a in addresses):
            return Outcome(False, None, "address refused (private, loopback or link-local)")
        # Connect to the address just checked, so DNS cannot swap it afterwards (rebinding).
        address = addresses[0]
        port = parts.port or (443 if parts.scheme == "https" else 80)
        netloc = f"[{address}]:{port}" if ipaddress.ip_address(address).version == 6 else f"{address}:{port}"
        target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        extensions = {"sni_hostname": host} if parts.scheme == "https" and not _is_ip(host) else {}
        try:
            response = await self.client.post(
                target,
                content=body.encode(),
                headers={**headers, "host": parts.netloc.rsplit("@", 1)[-1]},
                extensions=extensions,
                timeout=self.settings.webhook_timeout_s,
            )
        except httpx.TimeoutException:
            return Outcome(False, None, "timeout")
        except httpx.HTTPError as exc:
            return Outcome(False, None, f"{type(exc).__name__}")
        if 200 <= response.status_code < 300:
            return Outcome(True, response.status_code, None)
        return Outcome(False, response.status_code, f"HTTP {response.status_code}")

    def backoff(self, attempts: int) -> timedelta:
        """Exponential, capped, with jitter (0.5x to 1.5x) so failing receivers are not stampeded."""
        base = min(
            self.settings.webhook_backoff_max_s, self.settings.webhook_backoff_base_s * 2 ** (attempts - 1)
        )
        return timedelta(seconds=base * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not security

    async def _record(self, item: Claimed, outcome: Outcome) -> None:
        now = self.clock.now()
        async with session_scope(self.database) as session:
            await set_tenant(session, ALL_AMBITI)
            if outcome.ok:
                await session.execute(
                    DELIVERED,
                    {"now": now, "code": outcome.status_code, "id": item.id, "attempts": item.attempts},
                )
                await session.execute(SUBSCRIPTION_OK, {"now": now, "id": item.subscription_id})
                return
            await session.execute(
                FAILED,
                {
                    "max_attempts": self.settings.webhook_max_attempts,
                    "retry_at": now + self.backoff(item.attempts),
                    "code": outcome.status_code,
                    "error": (outcome.error or "")[:500],
                    "id": item.id,
                    "attempts": item.attempts,
                },
            )
            await session.execute(
                SUBSCRIPTION_FAILED,
                {
                    "now": now,
                    "limit": self.settings.webhook_pause_after_failures,
                    "error": (outcome.error or "")[:200],
                    "id": item.subscription_id,
                },
            )
        logger.info("webhook delivery failed", extra={"delivery_id": str(item.id), "error": outcome.error})
