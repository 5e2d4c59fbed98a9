"""Concurrent requests on a real connection pool: two referrals at once still make one dossier;
two tabs refreshing with the same token at once both stay logged in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from codicefiscale import codicefiscale
from fastapi import FastAPI

from app.core.db import ALL_AMBITI, Database, session_scope, set_tenant
from app.core.settings import Settings
from app.main import create_app
from app.services.platform.demo import seed_demo
from tests.db import create_database, drop_database
from tests.intake import AS_MELZO, MARIO, referral
from tests.support import DEMO_PASSWORD

pytestmark = pytest.mark.e2e


@pytest.fixture
async def committed_app(server_url: str, settings: Settings) -> AsyncIterator[FastAPI]:
    from app.core import migrations

    url = await create_database(server_url, prefix="snodo_race")
    await migrations.upgrade_async(url)
    database = Database.from_url(url, settings)
    try:
        app = create_app(settings, database=database)
        async with session_scope(database) as session:
            await set_tenant(session, ALL_AMBITI)
            await seed_demo(
                session=session, passwords=app.state.security.passwords, password=DEMO_PASSWORD, pools=True
            )
        yield app
    finally:
        await database.dispose()
        await drop_database(server_url, url)


GIULIA = {
    "fiscal_code": codicefiscale.encode(
        lastname="Rossi", firstname="Giulia", gender="F", birthdate="01/09/2012", birthplace="Melzo"
    ),
    "family_name": "Rossi",
    "given_name": "Giulia",
    "birth_date": "2012-09-01",
    "residence_comune_istat": "015142",
}


@pytest.mark.parametrize("person", ["new", "known without a dossier"])
async def test_simultaneous_referrals_open_one_dossier(committed_app: FastAPI, person: str) -> None:
    transport = httpx.ASGITransport(app=committed_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        login = await client.post(
            "/api/v1/auth/token", data={"username": AS_MELZO, "password": DEMO_PASSWORD}
        )
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        if person == "known without a dossier":
            # Giulia is registered as Mario's daughter: a person, with no dossier of her own.
            mario = (await client.post("/api/v1/referrals", json=referral(MARIO), headers=headers)).json()
            member = {k: GIULIA[k] for k in ("family_name", "given_name", "birth_date", "fiscal_code")}
            added = await client.post(
                f"/api/v1/dossiers/{mario['dossier_id']}/household",
                headers=headers,
                json={**member, "relation": "figlio"},
            )
            assert added.status_code == 201, added.text
        body = referral(GIULIA, need_areas=["minori"])
        responses = await asyncio.gather(
            *(client.post("/api/v1/referrals", json=body, headers=headers) for _ in range(6))
        )
        assert [r.status_code for r in responses] == [201] * 6, [
            r.text for r in responses if r.status_code != 201
        ]
        assert len({r.json()["dossier_id"] for r in responses}) == 1


async def test_tabs_refreshing_at_the_same_moment_all_get_a_working_pair(committed_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=committed_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        login = await client.post(
            "/api/v1/auth/token", data={"username": AS_MELZO, "password": DEMO_PASSWORD}
        )
        token = login.json()["refresh_token"]
        # Each in its own transaction on its own pooled connection: one waits on the other's lock.
        responses = await asyncio.gather(
            *(client.post("/api/v1/auth/refresh", json={"refresh_token": token}) for _ in range(3))
        )
        assert [r.status_code for r in responses] == [200] * 3, [r.text for r in responses]
        for response in responses:
            me = await client.get(
                "/api/v1/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
            )
            assert me.status_code == 200
