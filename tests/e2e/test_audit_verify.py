"""`snodo audit verify` finds a row changed behind the application's back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from app.cli import main
from app.core.db import Database
from app.core.settings import Settings, get_settings
from app.main import create_app
from tests.db import asyncpg_dsn, create_database, drop_database
from tests.intake import AS_MELZO, referral
from tests.support import DEMO_PASSWORD

pytestmark = pytest.mark.e2e


@pytest.fixture
async def committed_url(
    server_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """A database whose audit rows are committed by real requests."""
    url = await create_database(server_url, prefix="snodo_audit")
    try:
        monkeypatch.setenv("DATABASE_URL", url)
        get_settings.cache_clear()
        assert await asyncio.to_thread(main, ["seed-demo", "--password", DEMO_PASSWORD]) == 0
        database = Database.from_url(url, settings)
        try:
            app = create_app(settings, database=database)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t"
            ) as client:
                token = (
                    await client.post(
                        "/api/v1/auth/token", data={"username": AS_MELZO, "password": DEMO_PASSWORD}
                    )
                ).json()["access_token"]
                headers = {"Authorization": f"Bearer {token}"}
                receipt = (await client.post("/api/v1/referrals", json=referral(), headers=headers)).json()
                for _ in range(3):
                    assert (
                        await client.get(f"/api/v1/dossiers/{receipt['dossier_id']}", headers=headers)
                    ).status_code == 200
        finally:
            await database.dispose()
        yield url
    finally:
        get_settings.cache_clear()
        await drop_database(server_url, url)


def verify(
    url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, dict[str, object]]:
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        code = main(["audit", "verify"])
    finally:
        get_settings.cache_clear()
    report: dict[str, object] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return code, report


async def test_verify_passes_then_detects_a_row_altered_in_sql(
    committed_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, report = await asyncio.to_thread(verify, committed_url, capsys, monkeypatch)
    assert code == 0
    assert report["ok"] is True
    assert report["rows"] == 4  # the referral and three reads

    # Someone with the owner's powers edits history: disables the guard and rewrites a row.
    owner = await asyncpg.connect(asyncpg_dsn(committed_url))
    try:
        await owner.execute("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
        await owner.execute("UPDATE audit_event SET purpose = 'nessuno ha letto' WHERE seq = 3")
        await owner.execute("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")
    finally:
        await owner.close()

    code, report = await asyncio.to_thread(verify, committed_url, capsys, monkeypatch)
    assert code == 1
    assert report["ok"] is False
    assert report["breaks"] == [
        {
            "ambito_id": report["breaks"][0]["ambito_id"],
            "chain": 0,
            "seq": 3,
            "reason": "content altered after it was written",
        }  # type: ignore[index]
    ]


async def test_verify_detects_a_deleted_row(
    committed_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await asyncpg.connect(asyncpg_dsn(committed_url))
    try:
        await owner.execute("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
        await owner.execute("DELETE FROM audit_event WHERE seq = 4")
        await owner.execute("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")
    finally:
        await owner.close()
    code, report = await asyncio.to_thread(verify, committed_url, capsys, monkeypatch)
    assert code == 1
    assert "rows removed" in str(report["breaks"])
