"""What authentication needs at run time: keys, password hasher, JWKS cache, clock, limits."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from app.core.clock import Clock
from app.core.jwks import JwksCache
from app.core.jwt import VerificationKey, symmetric_key
from app.core.passwords import Passwords
from app.core.settings import Environment, OidcIssuer, Settings

logger = logging.getLogger("snodo.security")


class Vault:
    """Secrets at rest (webhook signing secrets): Fernet, i.e. AES-128-CBC with HMAC-SHA256."""

    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode())

    def seal(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def open(self, sealed: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(sealed)).decode()
        except InvalidToken:
            raise RuntimeError(
                "a stored secret does not open with SNODO_DATA_KEY (was the key changed?)"
            ) from None


@dataclass
class Security:
    settings: Settings
    passwords: Passwords
    signing_jwk: dict[str, Any]
    local_key: VerificationKey
    jwks: JwksCache
    vault: Vault
    clock: Clock = field(default_factory=Clock)

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> Security:
        signing_jwk, local_key = symmetric_key(
            _secret(settings, settings.jwt_secret, "jwt-secret", _random_text)
        )
        vault = Vault(_secret(settings, settings.data_key, "data-key", _fernet_key))
        return cls(
            settings=settings,
            passwords=Passwords(settings),
            signing_jwk=signing_jwk,
            local_key=local_key,
            jwks=JwksCache(
                ttl_s=settings.jwks_cache_ttl_s,
                min_refetch_interval_s=settings.jwks_min_refetch_interval_s,
            ),
            vault=vault,
            clock=clock or Clock(),
        )

    def oidc_issuer(self, issuer: str | None) -> OidcIssuer | None:
        return next((i for i in self.settings.oidc_issuers if i.issuer == issuer), None)


def _random_text() -> str:
    return secrets.token_urlsafe(48)


def _fernet_key() -> str:
    return Fernet.generate_key().decode()


def _secret(settings: Settings, configured: SecretStr | None, name: str, generate: Callable[[], str]) -> str:
    """The configured secret; in tests a fresh one; in development one generated once beside the
    embedded database (production refuses to start without it, see Settings)."""
    if configured is not None:
        return configured.get_secret_value()
    if settings.environment == Environment.test:
        return generate()
    path = settings.data_dir / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_private(path, generate())
        logger.warning("generated a development secret", extra={"path": str(path)})
    return path.read_text().strip()


def _write_private(path: Path, content: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(content)
