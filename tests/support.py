"""Helpers for API tests: the demo territory, logging in, authorization headers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Organization, User
from app.services.platform.demo import seed_demo

DEMO_PASSWORD = "demo-password-2026"


@dataclass
class Demo:
    """The seeded Ambito 5 Melzo, with ids by name and a way to act as each demo user."""

    client: httpx.AsyncClient
    organizations: dict[str, uuid.UUID]
    users: dict[str, uuid.UUID]
    ambito_id: uuid.UUID
    _tokens: dict[str, str] = field(default_factory=dict)

    async def login(self, email: str, password: str = DEMO_PASSWORD) -> httpx.Response:
        return await self.client.post("/api/v1/auth/token", data={"username": email, "password": password})

    async def token(self, email: str) -> str:
        if email not in self._tokens:
            response = await self.login(email)
            assert response.status_code == 200, response.text
            self._tokens[email] = response.json()["access_token"]
        return self._tokens[email]

    async def headers(self, email: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token(email)}"}

    async def fresh_headers(self, email: str) -> dict[str, str]:
        """Log in again: after moving the clock, cached access tokens have expired."""
        self._tokens.pop(email, None)
        return await self.headers(email)

    def org(self, name: str) -> uuid.UUID:
        return self.organizations[name]


async def load_demo(
    session: AsyncSession, app: FastAPI, client: httpx.AsyncClient, *, pools: bool = False
) -> Demo:
    await seed_demo(
        session=session,
        passwords=app.state.security.passwords,
        password=DEMO_PASSWORD,
        pools=pools,
        now=app.state.security.clock.now(),
    )
    await session.commit()  # releases the test's savepoint: the app's sessions now see the rows
    organizations = dict((await session.execute(select(Organization.name, Organization.id))).all())
    users = dict((await session.execute(select(User.email, User.id))).all())
    ambito_id = (await session.scalars(select(Organization.ambito_id))).first()
    assert ambito_id is not None
    return Demo(client=client, organizations=organizations, users=users, ambito_id=ambito_id)
