"""Dependencies every route shares: the request's session, the caller (principal), paging."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import request_id_var
from app.core.db import Database, session_scope
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageRequest, decode_cursor
from app.core.principal import Principal
from app.core.problems import PreconditionFailed, PreconditionRequired
from app.core.security import Security
from app.services.identity.auth import authenticate
from app.services.identity.auth_events import ClientInfo


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed when the endpoint returns."""
    async with session_scope(get_database(request)) as session:
        yield session


# scope="function": the commit happens before the response is sent, so a client never sees
# a 2xx for a write that then failed to commit.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_security(request: Request) -> Security:
    security: Security = request.app.state.security
    return security


SecurityDep = Annotated[Security, Depends(get_security)]


async def get_client(request: Request) -> ClientInfo:
    return ClientInfo(
        address=request.client.host if request.client else None, request_id=request_id_var.get()
    )


ClientDep = Annotated[ClientInfo, Depends(get_client)]


async def get_principal(
    request: Request, session: SessionDep, security: SecurityDep, client: ClientDep
) -> Principal:
    """The caller, re-validated against the database on every request; the request's transaction
    scoped to its ambito."""
    principal = await authenticate(
        session=session, security=security, authorization=request.headers.get("authorization"), client=client
    )
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_page(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=64, description="`next_cursor` of the previous page.")
    ] = None,
) -> PageRequest:
    return PageRequest(limit=limit, after=decode_cursor(cursor))


PageDep = Annotated[PageRequest, Depends(get_page)]


async def get_now(security: SecurityDep) -> datetime:
    """The request's notion of now, from the app's clock (which tests can move)."""
    return security.clock.now()


NowDep = Annotated[datetime, Depends(get_now)]


_ETAG = re.compile(r'^(?:W/)?"(\d{1,9})"$')


def if_match_version(if_match: str | None) -> int | None:
    """The version an If-Match names; None for `*` (any current version). 428 when missing."""
    if if_match is None:
        raise PreconditionRequired("Send If-Match with the ETag you read.")
    value = if_match.strip()
    if value == "*":
        return None
    match = _ETAG.match(value)
    if match is None:
        raise PreconditionFailed("If-Match does not hold an ETag of this resource.")
    return int(match.group(1))


IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=64)]
