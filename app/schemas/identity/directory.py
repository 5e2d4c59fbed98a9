"""Organizations, users and API tokens as the API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from app.core.enums import OrganizationKind, Role, Scope
from app.schemas.common import Email, FiscalCode, InputModel, Name, OutputModel, Password, ShortText

TaxCode = Annotated[str, Field(pattern=r"^[A-Z0-9]{11,16}$")]


class OrganizationCreate(InputModel):
    kind: OrganizationKind
    name: Name
    comune_id: uuid.UUID | None = Field(default=None, description="Required for kind `comune`.")
    tax_code: TaxCode | None = Field(default=None, description="Codice fiscale or partita IVA of the body.")
    ambito_id: uuid.UUID | None = Field(
        default=None, description="Platform admins only; others create in their own ambito."
    )


class OrganizationUpdate(InputModel):
    name: Name | None = None
    comune_id: uuid.UUID | None = None
    tax_code: TaxCode | None = None
    active: bool | None = Field(
        default=None, description="`false` deactivates: its users and tokens stop working."
    )


class OrganizationRead(OutputModel):
    id: uuid.UUID
    ambito_id: uuid.UUID
    kind: OrganizationKind
    name: str
    comune_id: uuid.UUID | None
    tax_code: str | None
    active: bool
    created_at: datetime
    updated_at: datetime


class OrganizationList(OutputModel):
    items: list[OrganizationRead]
    next_cursor: str | None


class UserCreate(InputModel):
    email: Email
    full_name: Name
    roles: list[Role] = Field(min_length=1, max_length=len(Role))
    fiscal_code: FiscalCode | None = Field(default=None, description="Used to match SPID/CIE logins.")
    is_org_admin: bool = False
    password: Password | None = Field(default=None, description="Omit for users who only log in via OIDC.")


class UserUpdate(InputModel):
    full_name: Name | None = None
    roles: list[Role] | None = Field(default=None, min_length=1, max_length=len(Role))
    fiscal_code: FiscalCode | None = None
    is_org_admin: bool | None = None
    password: Password | None = None
    active: bool | None = Field(default=None, description="`false` deactivates: refused on the next request.")


class UserRead(OutputModel):
    id: uuid.UUID
    ambito_id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    full_name: str
    fiscal_code: str | None
    roles: list[Role]
    is_org_admin: bool
    active: bool
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime


class UserList(OutputModel):
    items: list[UserRead]
    next_cursor: str | None


class ApiTokenCreate(InputModel):
    name: ShortText
    scopes: list[Scope] = Field(min_length=1, max_length=len(Scope))
    expires_in_days: int = Field(default=90, ge=1, le=366)


class ApiTokenRead(OutputModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    prefix: str = Field(description="The first characters of the secret, to tell tokens apart.")
    scopes: list[Scope]
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime


class ApiTokenCreated(ApiTokenRead):
    secret: str = Field(description="Shown once, now. snodo keeps only a hash of it.")


class ApiTokenList(OutputModel):
    items: list[ApiTokenRead]
    next_cursor: str | None
