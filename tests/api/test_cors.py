"""CORS: only the configured SPA origins may call the API from a browser."""

from __future__ import annotations

import httpx

from app.core.db import Database
from app.core.settings import Settings
from app.main import create_app

SPA = "https://sociale.ambito5melzo.it"


async def test_only_configured_origins_are_allowed(settings: Settings, database: Database) -> None:
    app = create_app(settings.model_copy(update={"cors_origins": [SPA]}), database=database)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        allowed = await client.options(
            "/api/v1/me",
            headers={
                "Origin": SPA,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == SPA

        refused = await client.options(
            "/api/v1/me",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in refused.headers

        simple = await client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in simple.headers


async def test_no_cors_headers_when_no_origin_is_configured(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"Origin": SPA})
    assert "access-control-allow-origin" not in response.headers
