"""API tokens for partner systems: shown once, hashed, scoped, expiring, revocable, org-bound."""

from __future__ import annotations

import hashlib

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import FrozenClock
from app.core.enums import AuthEventKind
from app.models import ApiToken, AuthEvent
from tests.support import Demo

COORDINATOR = "coordinatore@demo.snodo.it"
SOLLEVA = "Cooperativa Sociale Solleva"
ARCHE = "Cooperativa Sociale Archè"


async def create_token(demo: Demo, organization: str, **body: object) -> httpx.Response:
    payload = {"name": "gestionale", "scopes": ["referrals:write", "interventions:read"], **body}
    return await demo.client.post(
        f"/api/v1/organizations/{demo.org(organization)}/api-tokens",
        headers=await demo.headers(COORDINATOR),
        json=payload,
    )


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_secret_is_shown_once_and_stored_only_as_a_hash(demo: Demo, session: AsyncSession) -> None:
    response = await create_token(demo, SOLLEVA)
    assert response.status_code == 201, response.text
    created = response.json()
    secret = created["secret"]
    assert secret.startswith("snodo_")
    assert created["prefix"] == secret[:12]

    again = await demo.client.get(
        f"/api/v1/api-tokens/{created['id']}", headers=await demo.headers(COORDINATOR)
    )
    assert again.status_code == 200
    assert "secret" not in again.json()
    listed = await demo.client.get(
        f"/api/v1/organizations/{demo.org(SOLLEVA)}/api-tokens", headers=await demo.headers(COORDINATOR)
    )
    assert secret not in listed.text

    stored = await session.scalar(select(ApiToken).where(ApiToken.id == created["id"]))
    assert stored is not None
    assert stored.secret_hash == hashlib.sha256(secret.encode()).digest()
    assert secret not in repr(stored.__dict__)


async def test_token_acts_as_its_organization_with_its_scopes(demo: Demo, client: httpx.AsyncClient) -> None:
    secret = (await create_token(demo, SOLLEVA)).json()["secret"]
    me = await client.get("/api/v1/me", headers=bearer(secret))
    assert me.status_code == 200
    body = me.json()
    assert body["kind"] == "api_token"
    assert body["organization_name"] == SOLLEVA
    assert body["scopes"] == ["interventions:read", "referrals:write"]
    assert body["roles"] == []


async def test_last_used_at_is_recorded(demo: Demo, client: httpx.AsyncClient) -> None:
    created = (await create_token(demo, SOLLEVA)).json()
    assert created["last_used_at"] is None
    await client.get("/api/v1/me", headers=bearer(created["secret"]))
    shown = await client.get(f"/api/v1/api-tokens/{created['id']}", headers=await demo.headers(COORDINATOR))
    assert shown.json()["last_used_at"] is not None


async def test_revocation_takes_effect_on_the_next_request(
    demo: Demo, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    created = (await create_token(demo, SOLLEVA)).json()
    assert (await client.get("/api/v1/me", headers=bearer(created["secret"]))).status_code == 200
    revoked = await client.delete(
        f"/api/v1/api-tokens/{created['id']}", headers=await demo.headers(COORDINATOR)
    )
    assert revoked.status_code == 204
    refused = await client.get("/api/v1/me", headers=bearer(created["secret"]))
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    kinds = set((await session.scalars(select(AuthEvent.kind))).all())
    assert {
        AuthEventKind.api_token_created,
        AuthEventKind.api_token_revoked,
        AuthEventKind.api_token_rejected,
    } <= kinds


async def test_expired_token_is_refused(demo: Demo, client: httpx.AsyncClient, clock: FrozenClock) -> None:
    secret = (await create_token(demo, SOLLEVA, expires_in_days=1)).json()["secret"]
    clock.advance(days=1, seconds=1)
    assert (await client.get("/api/v1/me", headers=bearer(secret))).status_code == 401


async def test_a_guessed_token_is_refused(client: httpx.AsyncClient, demo: Demo) -> None:
    response = await client.get("/api/v1/me", headers=bearer("snodo_" + "A" * 43))
    assert response.status_code == 401


async def test_token_of_a_deactivated_organization_is_refused(demo: Demo, client: httpx.AsyncClient) -> None:
    secret = (await create_token(demo, SOLLEVA)).json()["secret"]
    deactivated = await client.patch(
        f"/api/v1/organizations/{demo.org(SOLLEVA)}",
        headers=await demo.headers(COORDINATOR),
        json={"active": False},
    )
    assert deactivated.status_code == 200
    assert (await client.get("/api/v1/me", headers=bearer(secret))).status_code == 401


async def test_token_cannot_reach_other_organizations_users_or_tokens(
    demo: Demo, client: httpx.AsyncClient
) -> None:
    secret = (await create_token(demo, SOLLEVA)).json()["secret"]
    arche_token = (await create_token(demo, ARCHE)).json()
    arche_user = demo.users["coop.arche@demo.snodo.it"]
    arche = demo.org(ARCHE)
    attempts = [
        client.get(f"/api/v1/organizations/{arche}/users", headers=bearer(secret)),
        client.post(
            f"/api/v1/organizations/{arche}/users",
            headers=bearer(secret),
            json={"email": "x@arche.it", "full_name": "X", "roles": ["coop_operator"]},
        ),
        client.get(f"/api/v1/users/{arche_user}", headers=bearer(secret)),
        client.patch(f"/api/v1/users/{arche_user}", headers=bearer(secret), json={"active": False}),
        client.get(f"/api/v1/organizations/{arche}/api-tokens", headers=bearer(secret)),
        client.post(
            f"/api/v1/organizations/{arche}/api-tokens",
            headers=bearer(secret),
            json={"name": "x", "scopes": ["dossiers:read"]},
        ),
        client.get(f"/api/v1/api-tokens/{arche_token['id']}", headers=bearer(secret)),
        client.delete(f"/api/v1/api-tokens/{arche_token['id']}", headers=bearer(secret)),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 404, (response.request.method, response.request.url, response.text)
        assert "Archè" not in response.text
        assert arche_token["prefix"] not in response.text
    # and Archè's token still works
    assert (await client.get("/api/v1/me", headers=bearer(arche_token["secret"]))).status_code == 200


async def test_token_cannot_reach_admin_routes(demo: Demo, client: httpx.AsyncClient) -> None:
    secret = (await create_token(demo, SOLLEVA)).json()["secret"]
    solleva = demo.org(SOLLEVA)
    attempts = [
        client.post(
            "/api/v1/organizations", headers=bearer(secret), json={"kind": "cooperativa", "name": "Nuova"}
        ),
        client.patch(f"/api/v1/organizations/{solleva}", headers=bearer(secret), json={"name": "Solleva 2"}),
        client.get(f"/api/v1/organizations/{solleva}/users", headers=bearer(secret)),
        client.post(
            f"/api/v1/organizations/{solleva}/api-tokens",
            headers=bearer(secret),
            json={"name": "x", "scopes": ["dossiers:read"]},
        ),
        client.get(f"/api/v1/organizations/{solleva}/api-tokens", headers=bearer(secret)),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 403, (response.request.method, response.request.url, response.text)


async def test_unknown_scope_and_too_long_expiry_are_422(demo: Demo) -> None:
    response = await create_token(
        demo, SOLLEVA, scopes=["dossiers:read", "everything:write"], expires_in_days=1000
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"body.scopes.1", "body.expires_in_days"}


async def test_organization_admin_manages_its_own_tokens(demo: Demo, client: httpx.AsyncClient) -> None:
    coordinator = await demo.headers(COORDINATOR)
    made_admin = await client.patch(
        f"/api/v1/users/{demo.users['coop.solleva@demo.snodo.it']}",
        headers=coordinator,
        json={"is_org_admin": True},
    )
    assert made_admin.status_code == 200
    solleva_admin = await demo.headers("coop.solleva@demo.snodo.it")
    own = await client.post(
        f"/api/v1/organizations/{demo.org(SOLLEVA)}/api-tokens",
        headers=solleva_admin,
        json={"name": "gestionale", "scopes": ["interventions:write"]},
    )
    assert own.status_code == 201
    other = await client.post(
        f"/api/v1/organizations/{demo.org(ARCHE)}/api-tokens",
        headers=solleva_admin,
        json={"name": "gestionale", "scopes": ["interventions:write"]},
    )
    assert other.status_code == 404
