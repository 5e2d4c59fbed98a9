"""SPA login: password flow, refresh rotation with reuse detection, logout, throttling, events."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from jose import jwt as jose_jwt
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import FrozenClock
from app.core.enums import AuthEventKind
from app.models import AuthEvent
from tests.conftest import TEST_JWT_SECRET
from tests.support import DEMO_PASSWORD, Demo

AS_MELZO = "as.melzo@demo.snodo.it"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def events(session: AsyncSession, kind: AuthEventKind) -> int:
    return (
        await session.scalar(select(func.count()).select_from(AuthEvent).where(AuthEvent.kind == kind)) or 0
    )


async def test_login_gives_a_short_lived_jwt_and_an_opaque_refresh_token(
    demo: Demo, clock: FrozenClock
) -> None:
    response = await demo.login(AS_MELZO)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] <= 900
    assert body["refresh_token"].count(".") == 0  # opaque, not a JWT
    claims = jose_jwt.decode(
        body["access_token"],
        TEST_JWT_SECRET,
        algorithms=["HS256"],
        audience="snodo-api",
        issuer="snodo",
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},  # the test clock's, below
    )
    assert claims["iat"] == int(clock.now().timestamp())
    assert claims["sub"] == str(demo.users[AS_MELZO])
    assert claims["exp"] - claims["iat"] <= 900
    assert {"iss", "aud", "sub", "exp", "iat", "jti"} <= claims.keys()


async def test_login_is_case_insensitive_on_the_email(demo: Demo) -> None:
    assert (await demo.login("  AS.Melzo@Demo.Snodo.IT ")).status_code == 200


async def test_unknown_user_and_wrong_password_get_the_same_answer(demo: Demo) -> None:
    wrong_password = await demo.login(AS_MELZO, "not-the-password")
    unknown_user = await demo.login("nobody@demo.snodo.it", "not-the-password")
    assert wrong_password.status_code == unknown_user.status_code == 400
    strip = lambda r: {k: v for k, v in r.json().items() if k != "request_id"}  # noqa: E731
    assert strip(wrong_password) == strip(unknown_user)
    assert wrong_password.json()["error"] == "invalid_grant"


async def test_unknown_user_costs_a_full_password_verification(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    passwords = app.state.security.passwords
    calls: list[str] = []
    original = PasswordHasher.verify

    def counting_verify(self: PasswordHasher, hash_: str, password: str) -> bool:
        calls.append(hash_)
        return original(self, hash_, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)
    assert passwords.verify(None, "whatever-password") is False
    assert len(calls) == 1
    assert calls[0].startswith("$argon2id$")


async def test_login_form_needs_both_fields(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/token", data={"username": AS_MELZO})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["body.password"]


async def test_refresh_rotates_and_the_old_token_no_longer_works(
    demo: Demo, client: httpx.AsyncClient
) -> None:
    first = (await demo.login(AS_MELZO)).json()
    rotated = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await client.get("/api/v1/me", headers=bearer(second["access_token"]))).status_code == 200


async def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(
    demo: Demo, client: httpx.AsyncClient, session: AsyncSession, clock: FrozenClock
) -> None:
    first = (await demo.login(AS_MELZO)).json()
    second = (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()

    clock.advance(seconds=31)  # past the 30 s in which a second tab may still use it
    replay = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert replay.headers["www-authenticate"].startswith("Bearer")

    # Everything of that login session is dead: the newest refresh token and its access token.
    assert (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    ).status_code == 401
    assert (await client.get("/api/v1/me", headers=bearer(second["access_token"]))).status_code == 401
    assert await events(session, AuthEventKind.refresh_reuse_detected) == 1
    # Another login of the same user is unaffected.
    other = (await demo.login(AS_MELZO)).json()
    assert (await client.get("/api/v1/me", headers=bearer(other["access_token"]))).status_code == 200


async def test_two_tabs_refreshing_with_the_same_token_both_stay_logged_in(
    demo: Demo, client: httpx.AsyncClient, session: AsyncSession, clock: FrozenClock
) -> None:
    first = (await demo.login(AS_MELZO)).json()
    tab_a = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    clock.advance(seconds=30)
    tab_b = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert tab_a.status_code == tab_b.status_code == 200
    a, b = tab_a.json(), tab_b.json()
    assert a["refresh_token"] != b["refresh_token"]
    for pair in (a, b):
        assert (await client.get("/api/v1/me", headers=bearer(pair["access_token"]))).status_code == 200
        rotated = await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert rotated.status_code == 200
    assert await events(session, AuthEventKind.refresh_reuse_detected) == 0
    reused = await session.scalar(
        select(func.count())
        .select_from(AuthEvent)
        .where(
            AuthEvent.kind == AuthEventKind.refresh_succeeded,
            AuthEvent.detail["reused_within_grace"].as_boolean(),
        )
    )
    assert reused == 1

    # The grace runs from the first exchange, not from the last: a third use after it is theft.
    clock.advance(seconds=1)
    late = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert late.status_code == 401
    assert await events(session, AuthEventKind.refresh_reuse_detected) == 1
    assert (await client.get("/api/v1/me", headers=bearer(b["access_token"]))).status_code == 401


async def test_the_refresh_grace_does_not_outlive_a_logout(demo: Demo, client: httpx.AsyncClient) -> None:
    first = (await demo.login(AS_MELZO)).json()
    second = (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()
    out = await client.post(
        "/api/v1/auth/logout",
        headers=bearer(second["access_token"]),
        json={"refresh_token": second["refresh_token"]},
    )
    assert out.status_code == 204
    again = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert again.status_code == 401


async def test_refresh_without_a_token_is_401(client: httpx.AsyncClient) -> None:
    for kwargs in ({}, {"json": {}}, {"json": {"refresh_token": "snodo-rt_guess"}}):
        response = await client.post("/api/v1/auth/refresh", **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_refresh_token_expires(demo: Demo, client: httpx.AsyncClient, clock: FrozenClock) -> None:
    first = (await demo.login(AS_MELZO)).json()
    clock.advance(seconds=first["refresh_expires_in"] + 1)
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert response.status_code == 401


async def test_logout_ends_the_session_at_once(demo: Demo, client: httpx.AsyncClient) -> None:
    pair = (await demo.login(AS_MELZO)).json()
    headers = bearer(pair["access_token"])
    out = await client.post(
        "/api/v1/auth/logout", headers=headers, json={"refresh_token": pair["refresh_token"]}
    )
    assert out.status_code == 204
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 401
    assert (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    ).status_code == 401


async def test_access_token_expires_after_fifteen_minutes(
    demo: Demo, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    headers = await demo.headers(AS_MELZO)
    clock.advance(minutes=14)
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    clock.advance(minutes=1, seconds=31)  # past exp and the 30 s leeway
    response = await client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_deactivated_user_is_refused_on_the_next_request(demo: Demo, client: httpx.AsyncClient) -> None:
    headers = await demo.headers(AS_MELZO)
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    response = await client.patch(
        f"/api/v1/users/{demo.users[AS_MELZO]}",
        headers=await demo.headers("coordinatore@demo.snodo.it"),
        json={"active": False},
    )
    assert response.status_code == 200, response.text
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 401
    assert (await demo.login(AS_MELZO)).status_code == 400


async def test_repeated_failures_on_an_account_are_throttled(
    demo: Demo, client: httpx.AsyncClient, clock: FrozenClock, session: AsyncSession
) -> None:
    for _ in range(5):
        assert (await demo.login(AS_MELZO, "wrong-password-123")).status_code == 400
    throttled = await demo.login(AS_MELZO)  # even the right password waits
    assert throttled.status_code == 429
    retry_after = int(throttled.headers["retry-after"])
    assert 0 < retry_after <= 900
    assert await events(session, AuthEventKind.login_throttled) == 1
    # Another account from the same address is not affected by this account's failures.
    assert (await demo.login("as.inzago@demo.snodo.it")).status_code == 200

    clock.advance(seconds=retry_after)
    assert (await demo.login(AS_MELZO)).status_code == 200


@contextlib.asynccontextmanager
async def from_address(app: FastAPI, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def log_in(client: httpx.AsyncClient, login: str, password: str = DEMO_PASSWORD) -> int:
    response = await client.post("/api/v1/auth/token", data={"username": login, "password": password})
    return response.status_code


async def test_guessing_from_elsewhere_does_not_lock_a_user_out_where_she_logs_in(
    demo: Demo, app: FastAPI, session: AsyncSession, clock: FrozenClock
) -> None:
    office, home = "198.51.100.10", "198.51.100.20"
    async with from_address(app, office) as at_office:
        assert await log_in(at_office, AS_MELZO) == 200
    clock.advance(seconds=60)  # failures count from the last success on
    # 20 wrong guesses from four addresses: each address is stopped after 5 for this account...
    for attacker in ("203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"):
        async with from_address(app, attacker) as guessing:
            statuses = [await log_in(guessing, AS_MELZO, f"guess-{i}-password") for i in range(6)]
            assert statuses == [400] * 5 + [429]
    async with from_address(app, "203.0.113.5") as guessing:
        # ... and the account is closed to every address where it has not logged in lately.
        assert await log_in(guessing, AS_MELZO, "guess-x-password") == 429
    async with from_address(app, home) as at_home:
        assert await log_in(at_home, AS_MELZO) == 429
    async with from_address(app, office) as at_office:
        assert await log_in(at_office, AS_MELZO) == 200
    limits = (
        await session.scalars(
            select(AuthEvent.detail["limit"].astext).where(AuthEvent.kind == AuthEventKind.login_throttled)
        )
    ).all()
    assert sorted(limits) == [
        "account",
        "account",
        "account_from_address",
        "account_from_address",
        "account_from_address",
        "account_from_address",
    ]


async def test_an_address_known_long_ago_is_not_known_any_more(
    demo: Demo, app: FastAPI, clock: FrozenClock
) -> None:
    office = "198.51.100.10"
    async with from_address(app, office) as at_office:
        assert await log_in(at_office, AS_MELZO) == 200
    clock.advance(seconds=31 * 24 * 3600)
    for attacker in ("203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"):
        async with from_address(app, attacker) as guessing:
            for i in range(5):
                assert await log_in(guessing, AS_MELZO, f"guess-{i}-password") == 400
    async with from_address(app, office) as at_office:
        assert await log_in(at_office, AS_MELZO) == 429


async def test_repeated_failures_from_one_address_are_throttled(
    demo: Demo, app: FastAPI, clock: FrozenClock
) -> None:
    limit = app.state.settings.login_max_failures_per_address
    for i in range(limit):
        assert (await demo.login(f"guess{i}@demo.snodo.it", "wrong-password-123")).status_code == 400
    response = await demo.login(AS_MELZO)
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0


async def test_login_events_are_recorded_and_cannot_be_changed(demo: Demo, session: AsyncSession) -> None:
    await demo.login(AS_MELZO, "wrong-password-123")
    await demo.login(AS_MELZO)
    rows = (
        await session.execute(
            select(AuthEvent.kind, AuthEvent.login, AuthEvent.client_address, AuthEvent.request_id)
        )
    ).all()
    kinds = [r.kind for r in rows]
    assert kinds.count(AuthEventKind.login_failed) == 1
    assert kinds.count(AuthEventKind.login_succeeded) == 1
    assert all(r.login == AS_MELZO and r.request_id for r in rows)

    with pytest.raises(DBAPIError, match=r"append-only|permission denied"):
        async with session.begin_nested():
            await session.execute(text("UPDATE auth_event SET login = 'someone-else'"))
    with pytest.raises(DBAPIError, match=r"append-only|permission denied"):
        async with session.begin_nested():
            await session.execute(text("DELETE FROM auth_event"))
