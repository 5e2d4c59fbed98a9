"""The append-only record of authentication: logins, refreshes, token use and rejections."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import Clock
from app.core.enums import AuthEventKind
from app.models import AuthEvent


@dataclass(frozen=True)
class ClientInfo:
    """Where a request comes from, as far as the edge can tell."""

    address: str | None = None
    request_id: str | None = None


def storable(value: Any) -> Any:
    """Caller-supplied text as PostgreSQL can store it: no NUL, no lone surrogates, bounded."""
    if isinstance(value, str):
        text = value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
        return text[:500]
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    if isinstance(value, dict):
        return {str(storable(k)): storable(v) for k, v in value.items()}
    return value


async def record(
    session: AsyncSession,
    clock: Clock,
    kind: AuthEventKind,
    client: ClientInfo,
    *,
    user_id: uuid.UUID | None = None,
    api_token_id: uuid.UUID | None = None,
    organization_id: uuid.UUID | None = None,
    login: str | None = None,
    **detail: Any,
) -> None:
    """Record an authentication event (login, token use or revocation...) with the client's details."""
    session.add(
        AuthEvent(
            occurred_at=clock.now(),
            kind=kind,
            user_id=user_id,
            api_token_id=api_token_id,
            organization_id=organization_id,
            login=storable(login) if login is not None else None,
            client_address=client.address,
            request_id=client.request_id,
            detail=storable(detail),
        )
    )
    await session.flush()
