"""SPA login (OAuth2 password flow), refresh rotation, logout, and who-am-I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Form, Response, status

from app.api.deps import ClientDep, PrincipalDep, SecurityDep, SessionDep
from app.core.problems import NotAuthenticated
from app.schemas.identity.auth import LogoutRequest, MeRead, RefreshRequest, TokenResponse
from app.services.identity import auth

router = APIRouter(prefix="/api/v1", tags=["auth"])

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@router.post(
    "/auth/token",
    summary="Log in with email and password (OAuth2 password flow)",
    responses={400: {"description": "Invalid login or password"}, 429: {"description": "Too many failures"}},
)
async def login(
    response: Response,
    session: SessionDep,
    security: SecurityDep,
    client: ClientDep,
    username: Annotated[str, Form(max_length=254, pattern=r"^[^\x00]*$", description="The user's email")],
    password: Annotated[str, Form(max_length=256, pattern=r"^[^\x00]*$")],
) -> TokenResponse:
    pair = await auth.login(
        session=session, security=security, login=username, password=password, client=client
    )
    response.headers.update(_NO_STORE)
    return TokenResponse(**pair.__dict__)


@router.post(
    "/auth/refresh",
    summary="Exchange a refresh token for a new access and refresh token",
    responses={401: {"description": "Refresh token missing, invalid, expired or already used"}},
)
async def refresh(
    response: Response,
    session: SessionDep,
    security: SecurityDep,
    client: ClientDep,
    body: Annotated[RefreshRequest | None, Body()] = None,
) -> TokenResponse:
    if body is None or not body.refresh_token:
        raise NotAuthenticated('Send the refresh token in the body: {"refresh_token": "…"}.')
    pair = await auth.refresh(
        session=session, security=security, refresh_token=body.refresh_token, client=client
    )
    response.headers.update(_NO_STORE)
    return TokenResponse(**pair.__dict__)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, summary="End the login session")
async def logout(
    principal: PrincipalDep,
    session: SessionDep,
    security: SecurityDep,
    client: ClientDep,
    body: Annotated[LogoutRequest | None, Body()] = None,
) -> None:
    await auth.logout(
        session=session,
        security=security,
        principal=principal,
        refresh_token=body.refresh_token if body else None,
        client=client,
    )


@router.get("/me", summary="The caller as the server sees it")
async def me(principal: PrincipalDep) -> MeRead:
    return MeRead(
        kind=principal.kind,
        id=principal.id,
        name=principal.name,
        organization_id=principal.organization_id,
        organization_name=principal.organization_name,
        organization_kind=principal.organization_kind,
        ambito_id=principal.ambito_id,
        roles=sorted(principal.roles),
        scopes=sorted(principal.scopes),
        is_org_admin=principal.is_org_admin,
    )
