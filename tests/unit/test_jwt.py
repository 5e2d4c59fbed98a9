"""app/core/jwt.py: which algorithms a key may verify, and which tokens `decode` refuses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwt as jose_jwt

from app.core import jwt
from app.core.jwt import TokenInvalid, VerificationKey

SECRET = "unit-test-secret-" + "y" * 32
ISSUER = "snodo"
AUDIENCE = "snodo-api"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value).encode())


def rsa_jwk(private_key: rsa.RSAPrivateKey, kid: str = "rsa-1") -> dict[str, Any]:
    numbers = private_key.public_key().public_numbers()
    return {"kty": "RSA", "n": b64url_uint(numbers.n), "e": b64url_uint(numbers.e), "kid": kid, "use": "sig"}


def ec_jwk(private_key: ec.EllipticCurvePrivateKey, kid: str = "ec-1") -> dict[str, Any]:
    numbers = private_key.public_key().public_numbers()
    size = (private_key.curve.key_size + 7) // 8
    crv = {"secp256r1": "P-256", "secp384r1": "P-384"}[private_key.curve.name]
    return {
        "kty": "EC",
        "crv": crv,
        "x": b64url(numbers.x.to_bytes(size, "big")),
        "y": b64url(numbers.y.to_bytes(size, "big")),
        "kid": kid,
        "use": "sig",
    }


def private_pem(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def hs256_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


@pytest.fixture(scope="module")
def rsa_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def local() -> tuple[dict[str, Any], VerificationKey]:
    return jwt.symmetric_key(SECRET)


def claims_at(moment: datetime = NOW, **overrides: Any) -> dict[str, Any]:
    stamp = int(moment.timestamp())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": stamp,
        "nbf": stamp,
        "exp": stamp + 300,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def local_token(signing_jwk: dict[str, Any], claims: dict[str, Any], typ: str | None = "at+jwt") -> str:
    headers: dict[str, Any] = {"kid": signing_jwk["kid"]}
    if typ is not None:
        headers["typ"] = typ
    token: str = jose_jwt.encode(claims, signing_jwk, algorithm="HS256", headers=headers)
    return token


def decode(token: str, key: VerificationKey, *, now: datetime = NOW, **kwargs: Any) -> dict[str, Any]:
    return jwt.decode(token, key, issuer=ISSUER, audience=AUDIENCE, now=now, **kwargs)


# ---------------------------------------------------------------------------------------------
# VerificationKey.from_jwk: the key type decides the algorithms


def test_an_oct_key_may_verify_hs256_only() -> None:
    key = VerificationKey.from_jwk({"kty": "oct", "k": b64url(b"k" * 32), "kid": "local"})
    assert key.algorithms == frozenset({"HS256"})
    assert key.kid == "local"


def test_an_rsa_key_may_verify_rs_and_ps_algorithms_only(rsa_private_key: rsa.RSAPrivateKey) -> None:
    key = VerificationKey.from_jwk(rsa_jwk(rsa_private_key))
    assert key.algorithms == frozenset({"RS256", "RS384", "RS512"})
    assert not key.algorithms & {"HS256", "HS384", "HS512", "none", "ES256"}


def test_an_ec_p256_key_may_verify_es256_only() -> None:
    key = VerificationKey.from_jwk(ec_jwk(ec.generate_private_key(ec.SECP256R1())))
    assert key.algorithms == frozenset({"ES256"})


def test_an_ec_p384_key_may_verify_es384_only() -> None:
    key = VerificationKey.from_jwk(ec_jwk(ec.generate_private_key(ec.SECP384R1())))
    assert key.algorithms == frozenset({"ES384"})


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "OKP", "crv": "Ed25519", "x": b64url(b"x" * 32)},
        {"kty": "rsa", "n": "AQAB", "e": "AQAB"},
        {"kty": None},
        {"n": "AQAB", "e": "AQAB"},
    ],
    ids=["okp", "lower-case-rsa", "null-kty", "no-kty"],
)
def test_a_key_of_unknown_type_is_refused(jwk: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="no permitted algorithm"):
        VerificationKey.from_jwk(jwk)


def test_an_ec_key_on_an_unsupported_curve_is_refused() -> None:
    jwk = {**ec_jwk(ec.generate_private_key(ec.SECP256R1())), "crv": "secp256k1"}
    with pytest.raises(ValueError, match="no permitted algorithm"):
        VerificationKey.from_jwk(jwk)


def test_permitted_narrows_the_algorithms_of_the_key_type(rsa_private_key: rsa.RSAPrivateKey) -> None:
    key = VerificationKey.from_jwk(rsa_jwk(rsa_private_key), frozenset({"RS256", "ES256", "HS256"}))
    assert key.algorithms == frozenset({"RS256"})


def test_permitted_never_widens_the_algorithms_of_the_key_type(rsa_private_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError, match="no permitted algorithm"):
        VerificationKey.from_jwk(rsa_jwk(rsa_private_key), frozenset({"HS256", "ES256"}))


def test_the_alg_declared_in_the_jwk_narrows_the_algorithms(rsa_private_key: rsa.RSAPrivateKey) -> None:
    key = VerificationKey.from_jwk({**rsa_jwk(rsa_private_key), "alg": "RS512"})
    assert key.algorithms == frozenset({"RS512"})


def test_a_jwk_declaring_an_alg_foreign_to_its_type_is_refused(rsa_private_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError, match="no permitted algorithm"):
        VerificationKey.from_jwk({**rsa_jwk(rsa_private_key), "alg": "HS256"})


@pytest.mark.parametrize("declared", [["RS256"], {"alg": "RS256"}, 256])
def test_a_jwk_whose_alg_is_not_a_string_is_refused(
    declared: Any, rsa_private_key: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(ValueError, match="no permitted algorithm"):
        VerificationKey.from_jwk({**rsa_jwk(rsa_private_key), "alg": declared})


@pytest.mark.parametrize("kid", [["rsa-1"], 7])
def test_a_jwk_whose_kid_is_not_a_string_is_refused(kid: Any, rsa_private_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError, match="kid"):
        VerificationKey.from_jwk({**rsa_jwk(rsa_private_key), "kid": kid})


def test_private_members_of_an_asymmetric_jwk_are_not_kept(rsa_private_key: rsa.RSAPrivateKey) -> None:
    private = {**rsa_jwk(rsa_private_key), "d": "AQAB", "p": "AQAB", "q": "AQAB", "dp": "AQ", "dq": "AQ"}
    key = VerificationKey.from_jwk({**private, "qi": "AQ"})
    assert set(key.jwk) == {"kty", "n", "e", "kid", "use"}


# ---------------------------------------------------------------------------------------------
# decode: the token's alg must be one the key allows, checked before jose sees the token


@pytest.fixture
def jose_must_not_be_called(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("jose.jwt.decode was called")

    monkeypatch.setattr(jose_jwt, "decode", refuse)


@pytest.mark.usefixtures("jose_must_not_be_called")
def test_alg_none_is_refused_before_jose_is_called(local: tuple[dict[str, Any], VerificationKey]) -> None:
    _, key = local
    token = f"{b64url_json({'alg': 'none', 'typ': 'at+jwt'})}.{b64url_json(claims_at())}."
    with pytest.raises(TokenInvalid, match="algorithm 'none' not allowed"):
        decode(token, key)


@pytest.mark.usefixtures("jose_must_not_be_called")
def test_a_token_without_alg_is_refused_before_jose_is_called(
    local: tuple[dict[str, Any], VerificationKey],
) -> None:
    _, key = local
    token = hs256_token({"typ": "at+jwt"}, claims_at(), SECRET.encode())
    with pytest.raises(TokenInvalid, match="algorithm None not allowed"):
        decode(token, key)


@pytest.mark.usefixtures("jose_must_not_be_called")
def test_hs256_token_against_an_rsa_key_is_refused_before_jose_is_called(
    rsa_private_key: rsa.RSAPrivateKey,
) -> None:
    key = VerificationKey.from_jwk(rsa_jwk(rsa_private_key))
    public_pem = rsa_private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = hs256_token({"alg": "HS256", "kid": "rsa-1"}, claims_at(), public_pem)
    with pytest.raises(TokenInvalid, match="algorithm 'HS256' not allowed"):
        decode(token, key)


def test_an_rs256_token_against_the_local_key_is_refused(
    rsa_private_key: rsa.RSAPrivateKey, local: tuple[dict[str, Any], VerificationKey]
) -> None:
    _, key = local
    pem = private_pem(rsa_private_key)
    token = jose_jwt.encode(claims_at(), pem, algorithm="RS256", headers={"typ": "at+jwt"})
    with pytest.raises(TokenInvalid, match="algorithm 'RS256' not allowed"):
        decode(token, key)


# ---------------------------------------------------------------------------------------------
# decode: signature and claims


def test_a_correct_local_token_is_accepted(local: tuple[dict[str, Any], VerificationKey]) -> None:
    signing_jwk, key = local
    token, issued = jwt.encode_access_token(
        signing_jwk=signing_jwk,
        issuer=ISSUER,
        audience=AUDIENCE,
        subject="user-1",
        ttl=timedelta(minutes=15),
        now=NOW,
        extra={"sid": "session-1"},
    )
    claims = decode(token, key, expected_type=jwt.ACCESS_TOKEN_TYPE)
    assert claims == issued
    assert claims["sub"] == "user-1"
    assert claims["sid"] == "session-1"
    assert jwt.unverified_header(token) == {"alg": "HS256", "kid": "snodo-local", "typ": "at+jwt"}


def test_a_token_signed_with_another_secret_is_refused(local: tuple[dict[str, Any], VerificationKey]) -> None:
    _, key = local
    other_jwk, _ = jwt.symmetric_key("another-secret-" + "z" * 32)
    with pytest.raises(TokenInvalid, match="signature"):
        decode(local_token(other_jwk, claims_at()), key)


def test_a_token_whose_claims_were_altered_is_refused(local: tuple[dict[str, Any], VerificationKey]) -> None:
    signing_jwk, key = local
    header, _, signature = local_token(signing_jwk, claims_at()).split(".")
    forged = f"{header}.{b64url_json(claims_at(sub='admin'))}.{signature}"
    with pytest.raises(TokenInvalid, match="signature"):
        decode(forged, key)


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b", "a.b.c", "...", "e30.e30.e30"])
def test_a_malformed_token_is_refused(token: str, local: tuple[dict[str, Any], VerificationKey]) -> None:
    with pytest.raises(TokenInvalid):
        decode(token, local[1])


def test_a_wrong_issuer_is_refused(local: tuple[dict[str, Any], VerificationKey]) -> None:
    signing_jwk, key = local
    with pytest.raises(TokenInvalid, match="issuer"):
        decode(local_token(signing_jwk, claims_at(iss="https://elsewhere.test")), key)


def test_a_wrong_audience_is_refused(local: tuple[dict[str, Any], VerificationKey]) -> None:
    signing_jwk, key = local
    with pytest.raises(TokenInvalid, match="audience"):
        decode(local_token(signing_jwk, claims_at(aud="another-api")), key)


def test_an_audience_list_containing_ours_is_accepted(local: tuple[dict[str, Any], VerificationKey]) -> None:
    signing_jwk, key = local
    claims = decode(local_token(signing_jwk, claims_at(aud=["other", AUDIENCE])), key)
    assert claims["aud"] == ["other", AUDIENCE]


@pytest.mark.parametrize("missing", ["exp", "aud", "iss", "iat"])
def test_a_token_missing_a_required_claim_is_refused(
    missing: str, local: tuple[dict[str, Any], VerificationKey]
) -> None:
    signing_jwk, key = local
    claims = claims_at()
    del claims[missing]
    with pytest.raises(TokenInvalid, match=missing):
        decode(local_token(signing_jwk, claims), key)


def test_an_expired_token_is_refused(local: tuple[dict[str, Any], VerificationKey]) -> None:
    signing_jwk, key = local
    token = local_token(signing_jwk, claims_at())  # expires at NOW + 300 s
    with pytest.raises(TokenInvalid, match="expired"):
        decode(token, key, now=NOW + timedelta(seconds=300 + jwt.LEEWAY_S + 1))


def test_a_token_expired_within_the_leeway_is_accepted(local: tuple[dict[str, Any], VerificationKey]) -> None:
    signing_jwk, key = local
    token = local_token(signing_jwk, claims_at())
    assert decode(token, key, now=NOW + timedelta(seconds=300 + jwt.LEEWAY_S - 5))["sub"] == "user-1"


def test_a_token_whose_nbf_is_beyond_the_leeway_is_refused(
    local: tuple[dict[str, Any], VerificationKey],
) -> None:
    signing_jwk, key = local
    token = local_token(signing_jwk, claims_at(nbf=int(NOW.timestamp()) + jwt.LEEWAY_S + 5))
    with pytest.raises(TokenInvalid, match="not yet valid"):
        decode(token, key)


def test_a_token_whose_nbf_is_within_the_leeway_is_accepted(
    local: tuple[dict[str, Any], VerificationKey],
) -> None:
    signing_jwk, key = local
    token = local_token(signing_jwk, claims_at(nbf=int(NOW.timestamp()) + jwt.LEEWAY_S - 5))
    assert decode(token, key)["sub"] == "user-1"


def test_time_is_judged_by_the_given_clock_not_the_system_clock(
    local: tuple[dict[str, Any], VerificationKey],
) -> None:
    """A token that expired long ago by the system clock is valid at the `now` snodo passes."""
    signing_jwk, key = local
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    token = local_token(signing_jwk, claims_at(long_ago))
    assert decode(token, key, now=long_ago + timedelta(seconds=10))["sub"] == "user-1"


@pytest.mark.parametrize(
    ("claim", "value"),
    [("exp", "tomorrow"), ("exp", True), ("exp", [1]), ("nbf", "now"), ("iat", [1]), ("iat", {"a": 1})],
)
def test_a_time_claim_that_is_not_a_number_is_refused(
    claim: str, value: Any, local: tuple[dict[str, Any], VerificationKey]
) -> None:
    signing_jwk, key = local
    with pytest.raises(TokenInvalid):
        decode(local_token(signing_jwk, claims_at(**{claim: value})), key)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e999"])
def test_a_non_finite_exp_is_refused(value: str, local: tuple[dict[str, Any], VerificationKey]) -> None:
    """Python's json accepts NaN and Infinity; a token that never expires must not get through."""
    signing_jwk, key = local
    payload = json.dumps(claims_at(exp=0)).replace('"exp": 0', f'"exp": {value}')
    header = {"alg": "HS256", "kid": signing_jwk["kid"], "typ": "at+jwt"}
    signing_input = f"{b64url_json(header)}.{b64url(payload.encode())}"
    signature = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(TokenInvalid):
        decode(f"{signing_input}.{b64url(signature)}", key)


def test_a_wrong_typ_is_refused_when_a_type_is_expected(
    local: tuple[dict[str, Any], VerificationKey],
) -> None:
    signing_jwk, key = local
    token = local_token(signing_jwk, claims_at(), typ="JWT")
    with pytest.raises(TokenInvalid, match="unexpected token type"):
        decode(token, key, expected_type=jwt.ACCESS_TOKEN_TYPE)


def test_a_missing_typ_is_refused_when_a_type_is_expected(
    local: tuple[dict[str, Any], VerificationKey],
) -> None:
    signing_jwk, key = local
    token = local_token(signing_jwk, claims_at(), typ=None)
    with pytest.raises(TokenInvalid, match="unexpected token type"):
        decode(token, key, expected_type=jwt.ACCESS_TOKEN_TYPE)


def test_typ_is_not_checked_when_no_type_is_expected(local: tuple[dict[str, Any], VerificationKey]) -> None:
    signing_jwk, key = local
    assert decode(local_token(signing_jwk, claims_at(), typ="JWT"), key)["sub"] == "user-1"


def test_a_malformed_key_from_a_jwks_makes_the_token_invalid_not_an_error(
    rsa_private_key: rsa.RSAPrivateKey,
) -> None:
    """A broken key published by an issuer must give a refusal (401), not an exception (500)."""
    key = VerificationKey.from_jwk({"kty": "RSA", "n": "", "e": "", "kid": "broken"})
    pem = private_pem(rsa_private_key)
    token = jose_jwt.encode(claims_at(), pem, algorithm="RS256", headers={"kid": "broken"})
    with pytest.raises(TokenInvalid):
        decode(token, key)


def test_an_rs256_token_is_accepted_by_its_rsa_key(rsa_private_key: rsa.RSAPrivateKey) -> None:
    key = VerificationKey.from_jwk(rsa_jwk(rsa_private_key))
    pem = private_pem(rsa_private_key)
    token = jose_jwt.encode(claims_at(), pem, algorithm="RS256", headers={"kid": "rsa-1"})
    assert decode(token, key)["sub"] == "user-1"


def test_an_es256_token_is_accepted_by_its_ec_key() -> None:
    private_key = ec.generate_private_key(ec.SECP256R1())
    key = VerificationKey.from_jwk(ec_jwk(private_key))
    pem = private_pem(private_key)
    token = jose_jwt.encode(claims_at(), pem, algorithm="ES256", headers={"kid": "ec-1"})
    assert decode(token, key)["sub"] == "user-1"
