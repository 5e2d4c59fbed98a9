"""Every route but the public few refuses a caller without credentials: 401, problem+json, a challenge.

The list of routes comes from app.main.ROUTERS, the routers the app is built from, so a route
added tomorrow is checked tomorrow.
"""

from __future__ import annotations

import re
import uuid

import httpx
from fastapi.routing import APIRoute

from app.main import ROUTERS

PUBLIC = {
    ("GET", "/"),  # a redirect to /docs
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("HEAD", "/healthz"),
    ("HEAD", "/readyz"),
    ("POST", "/api/v1/auth/token"),
}
PUBLIC_PATHS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
# Authenticated by a signature on the request rather than a bearer token.
SIGNED = {("POST", "/api/v1/integrations/asst/events")}


def _routes() -> list[tuple[str, str]]:
    found = []
    for route in (r for router in ROUTERS for r in router.routes):
        assert isinstance(route, APIRoute)
        path = re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), route.path)
        found.extend((method, path) for method in sorted(route.methods) if (method, route.path) not in PUBLIC)
    return found


async def test_every_route_needs_credentials(client: httpx.AsyncClient) -> None:
    routes = _routes()
    assert len(routes) >= 15  # the walk found the API, not an empty list
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic dXNlcjpwdw=="}):
            response = await client.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            scheme = "Signature" if (method, path) in SIGNED else "Bearer"
            assert response.headers["www-authenticate"].startswith(scheme), (method, path)


async def test_the_public_routes_stay_public(client: httpx.AsyncClient) -> None:
    for path in PUBLIC_PATHS | {"/healthz", "/readyz"}:
        assert (await client.get(path)).status_code == 200, path
