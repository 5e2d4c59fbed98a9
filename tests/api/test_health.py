"""Liveness and readiness probes."""

from __future__ import annotations

import httpx

from app.core.db import Database
from app.core.migrations import head_revisions
from app.core.settings import Settings
from app.main import create_app
from tests.db import create_database, drop_database


async def test_healthz_answers_without_touching_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_the_migration_head(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok", "migration": sorted(head_revisions())}


async def test_the_probes_answer_head_too(client: httpx.AsyncClient) -> None:
    """Uptime monitors and load balancers often probe with HEAD: 200 as for GET, not 405."""
    for path in ("/healthz", "/readyz"):
        response = await client.head(path)
        assert response.status_code == 200, path


async def _readyz(database: Database, settings: Settings) -> httpx.Response:
    app = create_app(settings, database=database)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.get("/readyz")


async def test_readyz_is_503_when_the_database_is_unreachable(settings: Settings) -> None:
    database = Database.from_url("postgresql+asyncpg://snodo@127.0.0.1:9/none", settings)
    try:
        response = await _readyz(database, settings)
    finally:
        await database.dispose()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "The database does not answer."


async def test_readyz_is_503_when_the_database_is_not_migrated(server_url: str, settings: Settings) -> None:
    url = await create_database(server_url, prefix="snodo_empty")
    database = Database.from_url(url, settings)
    try:
        response = await _readyz(database, settings)
    finally:
        await database.dispose()
        await drop_database(server_url, url)
    assert response.status_code == 503
    assert "expected" in response.json()["detail"]
