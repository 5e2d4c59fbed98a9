"""Keys of external OIDC issuers, fetched from their JWKS URL and cached.

An unknown `kid` triggers one refetch (keys rotate), but at most once per
`jwks_min_refetch_interval_s` per issuer, so a stream of forged kids cannot make us hammer the
issuer. Symmetric (`oct`) keys from a JWKS are ignored: an issuer's keys are public keys.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from app.core.jwt import VerificationKey
from app.core.settings import OidcIssuer

logger = logging.getLogger("snodo.jwks")

FETCH_TIMEOUT_S = 5.0
MAX_JWKS_BYTES = 256 * 1024


@dataclass
class _IssuerKeys:
    keys: dict[str | None, VerificationKey] = field(default_factory=dict)
    fetched_at: float | None = None
    last_attempt_at: float | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class JwksCache:
    def __init__(
        self,
        *,
        ttl_s: float,
        min_refetch_interval_s: float,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._min_interval_s = min_refetch_interval_s
        self._client = client
        self._clock = clock
        self._issuers: dict[str, _IssuerKeys] = {}

    async def key_for(self, issuer: OidcIssuer, kid: str | None) -> VerificationKey | None:
        entry = self._issuers.setdefault(issuer.issuer, _IssuerKeys())
        now = self._clock()
        stale = entry.fetched_at is None or now - entry.fetched_at > self._ttl_s
        if not stale and kid in entry.keys:
            return entry.keys[kid]
        async with entry.lock:
            now = self._clock()
            may_fetch = entry.last_attempt_at is None or now - entry.last_attempt_at >= self._min_interval_s
            if (stale or kid not in entry.keys) and may_fetch:
                entry.last_attempt_at = now
                fetched = await self._fetch(issuer)
                if fetched is not None:
                    entry.keys, entry.fetched_at = fetched, now
        if kid is None and len(entry.keys) == 1:
            return next(iter(entry.keys.values()))
        return entry.keys.get(kid)

    async def _fetch(self, issuer: OidcIssuer) -> dict[str | None, VerificationKey] | None:
        client = self._client or httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=False)
        try:
            async with client.stream("GET", str(issuer.jwks_url), timeout=FETCH_TIMEOUT_S) as response:
                if response.status_code != 200:
                    logger.warning(
                        "JWKS fetch refused", extra={"issuer": issuer.issuer, "status": response.status_code}
                    )
                    return None
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > MAX_JWKS_BYTES:  # stop reading: a JWKS is a few kB
                        logger.warning("JWKS too large", extra={"issuer": issuer.issuer})
                        return None
            document = json.loads(body)
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("JWKS fetch failed", extra={"issuer": issuer.issuer, "error": type(exc).__name__})
            return None
        finally:
            if self._client is None:
                await client.aclose()
        keys: dict[str | None, VerificationKey] = {}
        permitted = frozenset(issuer.algorithms)
        published = document.get("keys") if isinstance(document, dict) else None
        for jwk in published if isinstance(published, list) else []:
            if not isinstance(jwk, dict) or jwk.get("kty") == "oct" or jwk.get("use", "sig") != "sig":
                continue
            try:
                key = VerificationKey.from_jwk(jwk, permitted)
            except ValueError:
                continue
            keys[key.kid] = key
        logger.info("JWKS fetched", extra={"issuer": issuer.issuer, "keys": len(keys)})
        return keys
