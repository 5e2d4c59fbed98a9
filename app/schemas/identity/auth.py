from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from app.core.enums import OrganizationKind, Role, Scope
from app.schemas.common import InputModel, OutputModel


class TokenResponse(OutputModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds the access token is valid (at most 900).")
    refresh_token: str
    refresh_expires_in: int


class RefreshRequest(InputModel):
    refresh_token: str | None = Field(default=None, max_length=512)


class LogoutRequest(InputModel):
    refresh_token: str | None = Field(default=None, max_length=512)


class MeRead(OutputModel):
    kind: Literal["user", "api_token", "integration"]
    id: uuid.UUID
    name: str
    organization_id: uuid.UUID
    organization_name: str
    organization_kind: OrganizationKind
    ambito_id: uuid.UUID
    roles: list[Role]
    scopes: list[Scope]
    is_org_admin: bool
