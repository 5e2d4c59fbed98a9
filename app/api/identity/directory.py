"""Organizations, their users and their API tokens."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from app.api.deps import ClientDep, PageDep, PrincipalDep, SecurityDep, SessionDep
from app.core.enums import OrganizationKind
from app.core.pagination import encode_cursor
from app.schemas.identity.directory import (
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenList,
    ApiTokenRead,
    OrganizationCreate,
    OrganizationList,
    OrganizationRead,
    OrganizationUpdate,
    UserCreate,
    UserList,
    UserRead,
    UserUpdate,
)
from app.services.identity import directory

organizations = APIRouter(prefix="/api/v1/organizations", tags=["organizations"])
users = APIRouter(prefix="/api/v1", tags=["users"])
api_tokens = APIRouter(prefix="/api/v1", tags=["api-tokens"])

Responses = dict[int | str, dict[str, Any]]
_NOT_FOUND: Responses = {404: {"description": "Does not exist, or not for you"}}
_FORBIDDEN: Responses = {403: {"description": "Visible, but not yours to change"}}


def _cursor(page: directory.Page[Any]) -> str | None:
    return encode_cursor(page.next_after) if page.next_after else None


@organizations.get("", summary="Organizations of the caller's ambito")
async def list_organizations(
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    kind: Annotated[OrganizationKind | None, Query()] = None,
) -> OrganizationList:
    result = await directory.list_organizations(session=session, principal=principal, page=page, kind=kind)
    return OrganizationList(
        items=[OrganizationRead.model_validate(o) for o in result.items], next_cursor=_cursor(result)
    )


@organizations.post(
    "", status_code=status.HTTP_201_CREATED, responses=_FORBIDDEN, summary="Create an organization"
)
async def create_organization(
    principal: PrincipalDep, session: SessionDep, body: OrganizationCreate, response: Response
) -> OrganizationRead:
    organization = await directory.create_organization(session=session, principal=principal, data=body)
    response.headers["Location"] = f"/api/v1/organizations/{organization.id}"
    return OrganizationRead.model_validate(organization)


@organizations.get("/{organization_id}", responses=_NOT_FOUND, summary="One organization")
async def get_organization(
    principal: PrincipalDep, session: SessionDep, organization_id: uuid.UUID
) -> OrganizationRead:
    organization = await directory.get_organization(
        session=session, principal=principal, organization_id=organization_id
    )
    return OrganizationRead.model_validate(organization)


@organizations.patch(
    "/{organization_id}",
    responses={**_NOT_FOUND, **_FORBIDDEN},
    summary="Change or deactivate an organization",
)
async def update_organization(
    principal: PrincipalDep, session: SessionDep, organization_id: uuid.UUID, body: OrganizationUpdate
) -> OrganizationRead:
    organization = await directory.update_organization(
        session=session, principal=principal, organization_id=organization_id, data=body
    )
    return OrganizationRead.model_validate(organization)


@users.get(
    "/organizations/{organization_id}/users",
    responses={**_NOT_FOUND, **_FORBIDDEN},
    summary="Users of an organization",
)
async def list_users(
    principal: PrincipalDep, session: SessionDep, page: PageDep, organization_id: uuid.UUID
) -> UserList:
    result = await directory.list_users(
        session=session, principal=principal, organization_id=organization_id, page=page
    )
    return UserList(items=[UserRead.model_validate(u) for u in result.items], next_cursor=_cursor(result))


@users.post(
    "/organizations/{organization_id}/users",
    status_code=status.HTTP_201_CREATED,
    responses={**_NOT_FOUND, **_FORBIDDEN, 409: {"description": "Email or fiscal code already used"}},
    summary="Create a user in an organization",
)
async def create_user(
    principal: PrincipalDep,
    session: SessionDep,
    security: SecurityDep,
    organization_id: uuid.UUID,
    body: UserCreate,
    response: Response,
) -> UserRead:
    user = await directory.create_user(
        session=session,
        principal=principal,
        passwords=security.passwords,
        organization_id=organization_id,
        data=body,
    )
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    return UserRead.model_validate(user)


@users.get("/users/{user_id}", responses=_NOT_FOUND, summary="One user")
async def get_user(principal: PrincipalDep, session: SessionDep, user_id: uuid.UUID) -> UserRead:
    return UserRead.model_validate(
        await directory.get_user(session=session, principal=principal, user_id=user_id)
    )


@users.patch(
    "/users/{user_id}", responses={**_NOT_FOUND, **_FORBIDDEN}, summary="Change or deactivate a user"
)
async def update_user(
    principal: PrincipalDep, session: SessionDep, security: SecurityDep, user_id: uuid.UUID, body: UserUpdate
) -> UserRead:
    user = await directory.update_user(
        session=session,
        principal=principal,
        passwords=security.passwords,
        clock=security.clock,
        user_id=user_id,
        data=body,
    )
    return UserRead.model_validate(user)


@api_tokens.get(
    "/organizations/{organization_id}/api-tokens",
    responses={**_NOT_FOUND, **_FORBIDDEN},
    summary="API tokens of an organization",
)
async def list_api_tokens(
    principal: PrincipalDep, session: SessionDep, page: PageDep, organization_id: uuid.UUID
) -> ApiTokenList:
    result = await directory.list_api_tokens(
        session=session, principal=principal, organization_id=organization_id, page=page
    )
    return ApiTokenList(
        items=[ApiTokenRead.model_validate(t) for t in result.items], next_cursor=_cursor(result)
    )


@api_tokens.post(
    "/organizations/{organization_id}/api-tokens",
    status_code=status.HTTP_201_CREATED,
    responses={**_NOT_FOUND, **_FORBIDDEN},
    summary="Create an API token; its secret is in this response only",
)
async def create_api_token(
    principal: PrincipalDep,
    session: SessionDep,
    security: SecurityDep,
    client: ClientDep,
    organization_id: uuid.UUID,
    body: ApiTokenCreate,
    response: Response,
) -> ApiTokenCreated:
    created = await directory.create_api_token(
        session=session,
        principal=principal,
        clock=security.clock,
        client=client,
        max_days=security.settings.api_token_max_days,
        organization_id=organization_id,
        data=body,
    )
    response.headers["Location"] = f"/api/v1/api-tokens/{created.token.id}"
    return ApiTokenCreated(**ApiTokenRead.model_validate(created.token).model_dump(), secret=created.secret)


@api_tokens.get("/api-tokens/{token_id}", responses={**_NOT_FOUND, **_FORBIDDEN}, summary="One API token")
async def get_api_token(principal: PrincipalDep, session: SessionDep, token_id: uuid.UUID) -> ApiTokenRead:
    token = await directory.get_api_token(session=session, principal=principal, token_id=token_id)
    return ApiTokenRead.model_validate(token)


@api_tokens.delete(
    "/api-tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**_NOT_FOUND, **_FORBIDDEN},
    summary="Revoke an API token (effective on its next request)",
)
async def revoke_api_token(
    principal: PrincipalDep,
    session: SessionDep,
    security: SecurityDep,
    client: ClientDep,
    token_id: uuid.UUID,
) -> None:
    await directory.revoke_api_token(
        session=session, principal=principal, clock=security.clock, client=client, token_id=token_id
    )
