"""The first install from the console: create-ambito, create-organization, create-user, seed-demo."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from app.cli import main
from app.core.db import Database
from app.core.settings import Settings, get_settings
from app.main import create_app
from tests.db import create_database, drop_database

pytestmark = pytest.mark.e2e


@pytest.fixture
async def fresh_url(server_url: str) -> AsyncIterator[str]:
    url = await create_database(server_url, prefix="snodo_cli")
    yield url
    await drop_database(server_url, url)


@pytest.fixture
def cli_env(fresh_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    monkeypatch.setenv("SNODO_LOG_JSON", "false")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(args) == 0
    result: dict[str, object] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return result


@pytest.mark.usefixtures("cli_env")
async def test_first_platform_admin_can_log_in(
    fresh_url: str, settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await asyncio.to_thread(run, ["create-ambito", "melzo", "Ambito territoriale 5 - Melzo"], capsys)
    await asyncio.to_thread(
        run,
        ["create-organization", "--ambito", "MELZO", "--kind", "ufficio_di_piano", "Ufficio di Piano"],
        capsys,
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("una-password-iniziale\n"))
    created = await asyncio.to_thread(
        run,
        [
            "create-user",
            "--ambito",
            "MELZO",
            "--organization",
            "Ufficio di Piano",
            "--email",
            "Admin@Ambito5.it",
            "--name",
            "Prima Amministratrice",
            "--role",
            "platform_admin",
            "--org-admin",
            "--password-stdin",
        ],
        capsys,
    )
    assert created["user_id"]

    database = Database.from_url(fresh_url, settings)
    try:
        app = create_app(settings, database=database)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            login = await client.post(
                "/api/v1/auth/token",
                data={"username": "admin@ambito5.it", "password": "una-password-iniziale"},
            )
            assert login.status_code == 200, login.text
            me = await client.get(
                "/api/v1/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
            )
            assert me.json()["roles"] == ["platform_admin"]
    finally:
        await database.dispose()


@pytest.mark.usefixtures("cli_env")
def test_create_user_refuses_a_role_that_does_not_fit(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run(["create-ambito", "MELZO", "Ambito 5"], capsys)
    run(
        ["create-organization", "--ambito", "MELZO", "--kind", "cooperativa", "Cooperativa Sociale Solleva"],
        capsys,
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("una-password-iniziale\n"))
    code = main(
        [
            "create-user",
            "--ambito",
            "MELZO",
            "--organization",
            "Cooperativa Sociale Solleva",
            "--email",
            "x@solleva.it",
            "--name",
            "X",
            "--role",
            "social_worker",
            "--password-stdin",
        ]
    )
    assert code == 2
    assert "not possible" in capsys.readouterr().err


@pytest.mark.usefixtures("cli_env")
def test_seed_demo_twice_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    first = run(["seed-demo", "--password", "demo-password-2026"], capsys)
    assert first["created"] == {"ambito": 1, "comune": 8, "organization": 21, "user": 9, "pool": 6}
    second = run(["seed-demo", "--password", "demo-password-2026"], capsys)
    assert second["created"] == {"ambito": 0, "comune": 0, "organization": 0, "user": 0, "pool": 0}
