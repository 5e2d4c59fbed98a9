"""Every JWT that snodo signs or verifies goes through this module, and only it imports python-jose.

python-jose has had algorithm-confusion flaws (CVE-2024-33663; a 2026 report of DER-encoded keys
bypassing the fix through 3.5.0). We therefore never let the token choose how it is checked:

- keys are handed to jose as JWK dicts only, never as PEM/DER bytes or strings;
- each key carries an explicit algorithm allow-list derived from its type (an `oct` key allows
  HS256 only; an RSA key RS*/PS* only; an EC key the ES* of its curve) and the token's `alg` is
  checked against it *before* jose sees the token, so `alg: none` and HS256-signed-with-the-
  public-key are refused here whatever jose would do;
- `aud`, `iss`, `exp` and `iat` are always required.

Should an unfixed flaw touch this use, the switch to PyJWT is this one file: see docs/security.md.
"""

from __future__ import annotations

import base64
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

from jose import jwt as jose_jwt
from jose.exceptions import JOSEError, JWTClaimsError, JWTError

LEEWAY_S = 30
ACCESS_TOKEN_TYPE = "at+jwt"

# python-jose 3.5 implements no PS*: listing them would only promise what cannot verify.
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512"})
_EC_ALGORITHMS = {"P-256": frozenset({"ES256"}), "P-384": frozenset({"ES384"})}


class TokenInvalid(Exception):
    """The token must be refused; `reason` is for the log, never for the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VerificationKey:
    """A JWK and the only algorithms it may verify."""

    jwk: Mapping[str, Any]
    algorithms: frozenset[str]
    kid: str | None = field(default=None)

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any], permitted: frozenset[str] | None = None) -> VerificationKey:
        """Build from a JWK dict; `permitted` narrows the algorithms further (issuer config)."""
        kty = jwk.get("kty")
        if kty == "oct":
            allowed = frozenset({"HS256"})
        elif kty == "RSA":
            allowed = _RSA_ALGORITHMS
        elif kty == "EC":
            allowed = _EC_ALGORITHMS.get(str(jwk.get("crv")), frozenset())
        else:
            allowed = frozenset()
        declared = jwk.get("alg")
        if declared:
            allowed = allowed & {declared} if isinstance(declared, str) else frozenset()
        if permitted is not None:
            allowed &= permitted
        if not allowed:
            raise ValueError(f"no permitted algorithm for a {kty} key")
        kid = jwk.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise ValueError("a kid must be a string")
        public = (
            {k: v for k, v in jwk.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}
            if kty != "oct"
            else jwk
        )
        return cls(jwk=dict(public), algorithms=allowed, kid=kid)


def symmetric_key(secret: str, kid: str = "snodo-local") -> tuple[dict[str, Any], VerificationKey]:
    """The local HS256 key as a JWK: (signing JWK, verification key)."""
    encoded = base64.urlsafe_b64encode(secret.encode()).rstrip(b"=").decode()
    jwk = {"kty": "oct", "k": encoded, "alg": "HS256", "kid": kid}
    return jwk, VerificationKey.from_jwk(jwk)


def encode_access_token(
    *,
    signing_jwk: Mapping[str, Any],
    issuer: str,
    audience: str,
    subject: str,
    ttl: timedelta,
    now: datetime | None = None,
    extra: Mapping[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    now = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": uuid.uuid4().hex,
        **(extra or {}),
    }
    token = jose_jwt.encode(
        claims,
        dict(signing_jwk),
        algorithm=str(signing_jwk["alg"]),
        headers={"kid": str(signing_jwk.get("kid")), "typ": ACCESS_TOKEN_TYPE},
    )
    return token, claims


_COMPACT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


def _require_compact(token: str) -> None:
    """Three base64url parts without padding, nothing else: lenient decoders accept more."""
    if len(token) > 8192 or not _COMPACT.match(token):
        raise TokenInvalid("malformed token")


def unverified_header(token: str) -> dict[str, Any]:
    _require_compact(token)
    try:
        header = jose_jwt.get_unverified_header(token)
    except JWTError:
        raise TokenInvalid("malformed token") from None
    if not isinstance(header, dict):
        raise TokenInvalid("malformed header")
    return header


def unverified_issuer(token: str) -> str | None:
    """Which issuer the token claims, to pick its keys; nothing is trusted until verified."""
    _require_compact(token)
    try:
        claims = jose_jwt.get_unverified_claims(token)
    except JWTError:
        raise TokenInvalid("malformed token") from None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else None


def decode(
    token: str,
    key: VerificationKey,
    *,
    issuer: str,
    audience: str,
    now: datetime,
    expected_type: str | None = None,
) -> dict[str, Any]:
    """Verify signature and claims; raise TokenInvalid with the reason otherwise.

    `exp` and `nbf` are checked here against `now` (snodo's clock, which tests can move) rather
    than by jose against the system clock; jose still requires them to be present and numeric."""
    header = unverified_header(token)
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in key.algorithms:
        raise TokenInvalid(f"algorithm {algorithm!r} not allowed for this key")
    if expected_type is not None and header.get("typ") != expected_type:
        raise TokenInvalid("unexpected token type")
    try:
        claims: dict[str, Any] = jose_jwt.decode(
            token,
            dict(key.jwk),
            algorithms=[algorithm],
            audience=audience,
            issuer=issuer,
            options={
                "require_aud": True,
                "require_iss": True,
                # Not "require_exp": jose then turns verify_exp back on and checks `exp` against
                # the system clock with no leeway. _check_time requires it instead.
                "require_iat": True,
                "verify_exp": False,
                "verify_nbf": False,
                # at_hash binds an ID token to the access token of the same response; snodo is
                # handed one token, so there is nothing to compare it with.
                "verify_at_hash": False,
            },
        )
    except JWTClaimsError as exc:
        raise TokenInvalid(f"claims: {exc}") from None
    except (JOSEError, TypeError, ValueError, OverflowError) as exc:
        # JOSEError: a malformed key raises JWKError, which is no JWTError. TypeError and
        # OverflowError: jose's int() of an `iat` that is a list, an object or 1e999.
        raise TokenInvalid(f"signature or format: {exc}") from None
    _check_time(claims, now)
    return claims


def _check_time(claims: Mapping[str, Any], now: datetime) -> None:
    moment = now.timestamp()
    expires, not_before = claims.get("exp"), claims.get("nbf")
    if not _is_number(expires):
        raise TokenInvalid("claims: exp is not a number")
    if moment > expires + LEEWAY_S:
        raise TokenInvalid("expired")
    if not_before is not None:
        if not _is_number(not_before):
            raise TokenInvalid("claims: nbf is not a number")
        if moment < not_before - LEEWAY_S:
            raise TokenInvalid("not yet valid")


def _is_number(value: Any) -> TypeGuard[int | float]:
    """A finite NumericDate: Python's json reads NaN, Infinity and 1e999, which never expire."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not isinstance(value, float) or math.isfinite(value)
