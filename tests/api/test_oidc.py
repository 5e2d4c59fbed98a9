"""Tokens from external OIDC issuers (Keycloak, a SPID/CIE gateway), through the real app.

The issuers' keys are served by a real HTTP server started here, so the JWKS cache fetches them
exactly as it would in production; the attack tokens are built by hand.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from jose import jwt as jose_jwt
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import FrozenClock
from app.core.enums import AuthEventKind
from app.core.jwks import JwksCache
from app.core.settings import OidcIssuer, Settings
from app.models import AuthEvent, ExternalIdentity, User
from tests.support import Demo

KEYCLOAK = "https://idp.test/realms/ambito5"
KEYCLOAK_AUDIENCE = "snodo-spa"
SPID = "https://spid-gateway.test"
SPID_AUDIENCE = "snodo"
SUBJECT = "kc-123"
LINKED_USER = "as.melzo@demo.snodo.it"
SPID_USER = "as.inzago@demo.snodo.it"
FISCAL_CODE = "RSSMRA80A01F205X"
KEYCLOAK_JWKS_PATH = "/jwks.json"
SPID_JWKS_PATH = "/spid/jwks.json"


# ---------------------------------------------------------------------------------------------
# Keys and hand-made tokens


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value).encode())


def b64url_uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class IssuerKey:
    """A signing key of the issuer: the private PEM to sign with, the public JWK it publishes."""

    kid: str
    algorithm: str
    private_pem: str
    public_jwk: dict[str, Any]
    public_pem: bytes
    public_der: bytes


def _issuer_key(
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str, algorithm: str
) -> IssuerKey:
    public_key = private_key.public_key()
    if isinstance(public_key, rsa.RSAPublicKey):
        rsa_numbers = public_key.public_numbers()
        jwk: dict[str, Any] = {"kty": "RSA", "n": b64url_uint(rsa_numbers.n), "e": b64url_uint(rsa_numbers.e)}
    else:
        ec_numbers = public_key.public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(ec_numbers.x.to_bytes(32, "big")),
            "y": b64url(ec_numbers.y.to_bytes(32, "big")),
        }
    return IssuerKey(
        kid=kid,
        algorithm=algorithm,
        private_pem=private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        public_jwk={**jwk, "kid": kid, "use": "sig"},
        public_pem=public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        public_der=public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


@pytest.fixture(scope="module")
def rsa_key() -> IssuerKey:
    return _issuer_key(rsa.generate_private_key(public_exponent=65537, key_size=2048), "rsa-2026", "RS256")


@pytest.fixture(scope="module")
def ec_key() -> IssuerKey:
    return _issuer_key(ec.generate_private_key(ec.SECP256R1()), "ec-2026", "ES256")


def sign(key: IssuerKey, claims: dict[str, Any], kid: str | None = None) -> str:
    token: str = jose_jwt.encode(
        claims, key.private_pem, algorithm=key.algorithm, headers={"kid": kid or key.kid}
    )
    return token


def hand_made(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64url_json(header)}.{b64url_json(claims)}.{b64url(signature)}"


def hs256_with_secret(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


# ---------------------------------------------------------------------------------------------
# The issuers' JWKS endpoint: a real HTTP server on 127.0.0.1


@dataclass
class JwksServer:
    documents: dict[str, Any]
    hits: Counter[str] = field(default_factory=Counter)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _handler(state: JwksServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits[self.path] += 1
            if self.path not in state.documents:
                self.send_error(404)
                return
            body = json.dumps(state.documents[self.path]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def jwks_server(rsa_key: IssuerKey, ec_key: IssuerKey) -> Iterator[JwksServer]:
    key_set = {"keys": [rsa_key.public_jwk, ec_key.public_jwk]}
    state = JwksServer(documents={KEYCLOAK_JWKS_PATH: key_set, SPID_JWKS_PATH: key_set})
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def jwks_min_refetch_interval_s() -> float:
    """Refetch on every unknown kid unless a test parametrizes this."""
    return 0.0


@pytest.fixture
def settings(settings: Settings, jwks_server: JwksServer, jwks_min_refetch_interval_s: float) -> Settings:
    return settings.model_copy(
        update={
            "oidc_issuers": [
                OidcIssuer(
                    issuer=KEYCLOAK,
                    audience=KEYCLOAK_AUDIENCE,
                    jwks_url=jwks_server.url(KEYCLOAK_JWKS_PATH),
                    claim="sub",
                    match="subject",
                ),
                OidcIssuer(
                    issuer=SPID,
                    audience=SPID_AUDIENCE,
                    jwks_url=jwks_server.url(SPID_JWKS_PATH),
                    claim="fiscalNumber",
                    match="fiscal_code",
                ),
            ],
            "jwks_min_refetch_interval_s": jwks_min_refetch_interval_s,
        }
    )


# ---------------------------------------------------------------------------------------------
# Demo users known to the issuers


@pytest.fixture
async def linked_user(demo: Demo, session: AsyncSession) -> uuid.UUID:
    """The Keycloak subject kc-123 is Laura Brambilla, social worker in Melzo."""
    user_id = demo.users[LINKED_USER]
    session.add(ExternalIdentity(user_id=user_id, issuer=KEYCLOAK, subject=SUBJECT))
    await session.commit()
    return user_id


@pytest.fixture
async def spid_user(demo: Demo, session: AsyncSession) -> uuid.UUID:
    user_id = demo.users[SPID_USER]
    await session.execute(update(User).where(User.id == user_id).values(fiscal_code=FISCAL_CODE))
    await session.commit()
    return user_id


def keycloak_claims(clock: FrozenClock, **overrides: Any) -> dict[str, Any]:
    return _claims(clock.now(), {"iss": KEYCLOAK, "aud": KEYCLOAK_AUDIENCE, "sub": SUBJECT}, overrides)


def spid_claims(clock: FrozenClock, **overrides: Any) -> dict[str, Any]:
    person = {"iss": SPID, "aud": SPID_AUDIENCE, "sub": "spid-7f3a", "fiscalNumber": f"TINIT-{FISCAL_CODE}"}
    return _claims(clock.now(), person, overrides)


def _claims(now: datetime, *parts: dict[str, Any]) -> dict[str, Any]:
    stamp = int(now.timestamp())
    claims: dict[str, Any] = {"iat": stamp, "nbf": stamp, "exp": stamp + 300, "jti": uuid.uuid4().hex}
    for part in parts:
        claims.update(part)
    return claims


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


async def rejections(session: AsyncSession) -> list[AuthEvent]:
    rows = await session.scalars(
        select(AuthEvent).where(AuthEvent.kind == AuthEventKind.oidc_rejected).order_by(AuthEvent.id)
    )
    return list(rows)


async def assert_refused(
    client: httpx.AsyncClient, session: AsyncSession, token: str, *, reason: str
) -> AuthEvent:
    """401 as a problem with a Bearer challenge, and one `oidc_rejected` event more, for `reason`."""
    before = len(await rejections(session))
    response = await me(client, token)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["status"] == 401
    events = await rejections(session)
    assert len(events) == before + 1
    event = events[-1]
    assert reason in event.detail["reason"], event.detail
    assert event.user_id is None
    return event


# ---------------------------------------------------------------------------------------------
# Accepted tokens


async def test_a_valid_rs256_token_of_a_linked_subject_is_the_linked_user(
    client: httpx.AsyncClient,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
    jwks_server: JwksServer,
    session: AsyncSession,
) -> None:
    response = await me(client, sign(rsa_key, keycloak_claims(clock)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "user"
    assert body["id"] == str(linked_user)
    assert body["name"] == "Laura Brambilla"
    assert body["organization_name"] == "Comune di Melzo"
    assert jwks_server.hits == {KEYCLOAK_JWKS_PATH: 1}
    assert await rejections(session) == []


async def test_the_issuers_keys_are_fetched_once_and_cached(
    client: httpx.AsyncClient,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
    jwks_server: JwksServer,
) -> None:
    for _ in range(3):
        assert (await me(client, sign(rsa_key, keycloak_claims(clock)))).status_code == 200
    assert jwks_server.hits == {KEYCLOAK_JWKS_PATH: 1}


async def test_a_valid_es256_token_of_a_linked_subject_is_the_linked_user(
    client: httpx.AsyncClient, clock: FrozenClock, ec_key: IssuerKey, linked_user: uuid.UUID
) -> None:
    response = await me(client, sign(ec_key, keycloak_claims(clock)))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == str(linked_user)


async def test_a_spid_fiscal_number_with_the_tinit_prefix_is_the_user_with_that_fiscal_code(
    client: httpx.AsyncClient,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    spid_user: uuid.UUID,
    jwks_server: JwksServer,
) -> None:
    response = await me(client, sign(rsa_key, spid_claims(clock)))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == str(spid_user)
    assert response.json()["organization_name"] == "Comune di Inzago"
    assert jwks_server.hits == {SPID_JWKS_PATH: 1}


async def test_a_key_the_issuer_rotated_in_is_fetched_on_first_sight(
    client: httpx.AsyncClient,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
    jwks_server: JwksServer,
) -> None:
    assert (await me(client, sign(rsa_key, keycloak_claims(clock)))).status_code == 200
    rotated = {**rsa_key.public_jwk, "kid": "rsa-2027"}
    jwks_server.documents[KEYCLOAK_JWKS_PATH] = {"keys": [rotated]}

    response = await me(client, sign(rsa_key, keycloak_claims(clock), kid="rsa-2027"))

    assert response.status_code == 200, response.text
    assert jwks_server.hits == {KEYCLOAK_JWKS_PATH: 2}


# ---------------------------------------------------------------------------------------------
# Forged tokens


async def test_alg_none_is_refused(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
) -> None:
    token = hand_made({"alg": "none", "typ": "JWT", "kid": rsa_key.kid}, keycloak_claims(clock))
    assert token.endswith(".")
    await assert_refused(client, session, token, reason="algorithm 'none' not allowed")


@pytest.mark.parametrize("encoding", ["pem", "der"])
async def test_hs256_signed_with_the_issuers_public_key_is_refused(
    encoding: str,
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
) -> None:
    """The algorithm-confusion attack: the public key, which anyone has, as the HMAC secret."""
    secret = rsa_key.public_pem if encoding == "pem" else rsa_key.public_der
    token = hs256_with_secret(
        {"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid}, keycloak_claims(clock), secret
    )
    await assert_refused(client, session, token, reason="algorithm 'HS256' not allowed")


async def test_a_token_signed_by_a_key_the_issuer_never_published_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, clock: FrozenClock, linked_user: uuid.UUID
) -> None:
    impostor = _issuer_key(
        rsa.generate_private_key(public_exponent=65537, key_size=2048), "rsa-2026", "RS256"
    )
    await assert_refused(client, session, sign(impostor, keycloak_claims(clock)), reason="signature")


async def test_a_token_whose_subject_was_altered_after_signing_is_refused(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
) -> None:
    header, _, signature = sign(rsa_key, keycloak_claims(clock, sub="kc-999")).split(".")
    forged = f"{header}.{b64url_json(keycloak_claims(clock))}.{signature}"
    await assert_refused(client, session, forged, reason="signature")


# ---------------------------------------------------------------------------------------------
# Claims


async def test_a_token_of_an_unconfigured_issuer_is_refused(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
    jwks_server: JwksServer,
) -> None:
    token = sign(rsa_key, keycloak_claims(clock, iss="https://evil.test/realms/ambito5"))
    event = await assert_refused(client, session, token, reason="unknown issuer")
    assert event.detail["issuer"] == "https://evil.test/realms/ambito5"
    assert jwks_server.hits == {}


async def test_a_token_for_another_audience_is_refused(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
) -> None:
    token = sign(rsa_key, keycloak_claims(clock, aud="another-client"))
    event = await assert_refused(client, session, token, reason="audience")
    assert event.detail["issuer"] == KEYCLOAK


async def test_a_token_minted_for_one_issuer_audience_is_refused_by_the_other(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    spid_user: uuid.UUID,
) -> None:
    token = sign(rsa_key, spid_claims(clock, aud=KEYCLOAK_AUDIENCE))
    await assert_refused(client, session, token, reason="audience")


async def test_an_expired_token_is_refused(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
) -> None:
    issued = clock.now() - timedelta(minutes=10)
    claims = keycloak_claims(clock, iat=int(issued.timestamp()), nbf=int(issued.timestamp()))
    claims["exp"] = int((clock.now() - timedelta(minutes=2)).timestamp())  # well beyond the 30 s leeway
    await assert_refused(client, session, sign(rsa_key, claims), reason="expired")


async def test_a_token_that_expires_while_in_use_is_refused_from_then_on(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
) -> None:
    token = sign(rsa_key, keycloak_claims(clock))  # valid for 300 s, plus 30 s of leeway
    assert (await me(client, token)).status_code == 200
    clock.advance(seconds=300 + 29)
    assert (await me(client, token)).status_code == 200
    clock.advance(seconds=2)
    await assert_refused(client, session, token, reason="expired")


async def test_a_token_not_valid_before_five_minutes_from_now_is_refused(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
) -> None:
    later = int((clock.now() + timedelta(minutes=5)).timestamp())
    token = sign(rsa_key, keycloak_claims(clock, nbf=later, exp=later + 300))
    await assert_refused(client, session, token, reason="not yet valid")


@pytest.mark.parametrize("claim", ["exp", "iat", "aud", "iss"])
async def test_a_token_without_a_required_claim_is_refused(
    claim: str,
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
) -> None:
    claims = keycloak_claims(clock)
    del claims[claim]
    # Without `iss` the token names no issuer at all: refused before any key is looked up.
    reason = "unknown issuer" if claim == "iss" else claim
    await assert_refused(client, session, sign(rsa_key, claims), reason=reason)


async def test_a_spid_token_without_the_fiscal_number_is_refused(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    spid_user: uuid.UUID,
) -> None:
    claims = spid_claims(clock)
    del claims["fiscalNumber"]
    await assert_refused(client, session, sign(rsa_key, claims), reason="claim fiscalNumber missing")


# ---------------------------------------------------------------------------------------------
# Keys: unknown kid, refetch and its rate limit


async def test_an_unknown_kid_makes_snodo_refetch_the_jwks_and_is_refused(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
    jwks_server: JwksServer,
) -> None:
    assert (await me(client, sign(rsa_key, keycloak_claims(clock)))).status_code == 200
    assert jwks_server.hits == {KEYCLOAK_JWKS_PATH: 1}

    token = sign(rsa_key, keycloak_claims(clock), kid="rsa-never-published")
    await assert_refused(client, session, token, reason="unknown kid")

    assert jwks_server.hits == {KEYCLOAK_JWKS_PATH: 2}


@pytest.mark.parametrize("jwks_min_refetch_interval_s", [3600.0])
async def test_a_second_unknown_kid_within_the_refetch_interval_does_not_hit_the_issuer(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
    jwks_server: JwksServer,
) -> None:
    await assert_refused(
        client, session, sign(rsa_key, keycloak_claims(clock), kid="forged-1"), reason="unknown kid"
    )
    assert jwks_server.hits == {KEYCLOAK_JWKS_PATH: 1}  # the first fetch: nothing was cached

    await assert_refused(
        client, session, sign(rsa_key, keycloak_claims(clock), kid="forged-2"), reason="unknown kid"
    )
    assert jwks_server.hits == {KEYCLOAK_JWKS_PATH: 1}

    # The keys fetched the first time still serve.
    assert (await me(client, sign(rsa_key, keycloak_claims(clock)))).status_code == 200
    assert jwks_server.hits == {KEYCLOAK_JWKS_PATH: 1}


async def test_an_unknown_kid_refetches_again_once_the_interval_has_passed(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
    jwks_server: JwksServer,
) -> None:
    seconds = [1000.0]
    app.state.security.jwks = JwksCache(ttl_s=3600, min_refetch_interval_s=60, clock=lambda: seconds[0])
    token = sign(rsa_key, keycloak_claims(clock), kid="forged")

    await assert_refused(client, session, token, reason="unknown kid")
    seconds[0] += 59
    await assert_refused(client, session, token, reason="unknown kid")
    assert jwks_server.hits == {KEYCLOAK_JWKS_PATH: 1}

    seconds[0] += 1
    await assert_refused(client, session, token, reason="unknown kid")
    assert jwks_server.hits == {KEYCLOAK_JWKS_PATH: 2}


async def test_a_jwks_document_that_is_not_a_key_set_refuses_the_token(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
    jwks_server: JwksServer,
) -> None:
    jwks_server.documents[KEYCLOAK_JWKS_PATH] = {"keys": 5}
    await assert_refused(client, session, sign(rsa_key, keycloak_claims(clock)), reason="unknown kid")


async def test_unusable_entries_of_a_jwks_are_skipped_and_the_good_keys_still_serve(
    client: httpx.AsyncClient,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
    jwks_server: JwksServer,
) -> None:
    jwks_server.documents[KEYCLOAK_JWKS_PATH] = {
        "keys": [
            "not-a-key",
            {"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "okp"},
            {"kty": "EC", "crv": "P-521", "x": "AAAA", "y": "AAAA", "kid": "p521"},
            {**rsa_key.public_jwk, "kid": ["rsa-2026"]},
            {**rsa_key.public_jwk, "kid": "alg-list", "alg": ["RS256"]},
            {**rsa_key.public_jwk, "kid": "enc", "use": "enc"},
            rsa_key.public_jwk,
        ]
    }
    response = await me(client, sign(rsa_key, keycloak_claims(clock)))
    assert response.status_code == 200, response.text


async def test_a_token_under_a_published_encryption_key_is_refused(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
    jwks_server: JwksServer,
) -> None:
    jwks_server.documents[KEYCLOAK_JWKS_PATH] = {"keys": [{**rsa_key.public_jwk, "use": "enc"}]}
    await assert_refused(client, session, sign(rsa_key, keycloak_claims(clock)), reason="unknown kid")


async def test_an_unreachable_jwks_refuses_the_token(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
    jwks_server: JwksServer,
) -> None:
    del jwks_server.documents[KEYCLOAK_JWKS_PATH]  # the server answers 404
    await assert_refused(client, session, sign(rsa_key, keycloak_claims(clock)), reason="unknown kid")
    assert jwks_server.hits == {KEYCLOAK_JWKS_PATH: 1}


async def test_a_symmetric_key_in_the_jwks_is_ignored(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    linked_user: uuid.UUID,
    jwks_server: JwksServer,
) -> None:
    """An issuer's keys are public: an `oct` key published in a JWKS verifies nothing."""
    secret = b"published-secret-" + b"s" * 32
    oct_jwk = {"kty": "oct", "k": b64url(secret), "kid": "oct-1", "alg": "HS256", "use": "sig"}
    jwks_server.documents[KEYCLOAK_JWKS_PATH] = {"keys": [oct_jwk]}
    token = hs256_with_secret({"alg": "HS256", "kid": "oct-1"}, keycloak_claims(clock), secret)
    await assert_refused(client, session, token, reason="unknown kid")


# ---------------------------------------------------------------------------------------------
# The local user behind the token


async def test_a_token_for_a_subject_with_no_local_user_is_refused(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
) -> None:
    token = sign(rsa_key, keycloak_claims(clock, sub="kc-unknown"))
    await assert_refused(client, session, token, reason="no local user")


async def test_a_subject_linked_at_another_issuer_is_not_the_same_person(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
) -> None:
    """kc-123 is linked at Keycloak; the SPID gateway's kc-123 is nobody here."""
    token = sign(rsa_key, spid_claims(clock, fiscalNumber=SUBJECT))
    await assert_refused(client, session, token, reason="no local user")


async def test_a_fiscal_number_of_nobody_is_refused(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    spid_user: uuid.UUID,
) -> None:
    token = sign(rsa_key, spid_claims(clock, fiscalNumber="TINIT-VRDLGU75B02F205Z"))
    await assert_refused(client, session, token, reason="no local user")


async def test_a_deactivated_user_is_refused_on_the_very_next_request(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: FrozenClock,
    rsa_key: IssuerKey,
    linked_user: uuid.UUID,
) -> None:
    token = sign(rsa_key, keycloak_claims(clock))
    assert (await me(client, token)).status_code == 200

    await session.execute(
        update(User).where(User.id == linked_user).values(active=False, deactivated_at=func.now())
    )
    await session.commit()

    await assert_refused(client, session, token, reason="user inactive")
