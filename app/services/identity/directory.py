"""Organizations, their users and their API tokens: who may see and manage which.

Rules (DESIGN §4, issue #3):
- organizations of an ambito are visible to every principal of that ambito (partners must know
  each other); platform admins see every ambito; creating and changing them is for coordinators
  (their ambito) and platform admins;
- an organization's users and API tokens are managed by platform admins, coordinators of its
  ambito and the organization's own admins. Anyone else gets 404 for another organization (its
  people and tokens do not exist for them) and 403 for their own;
- API tokens never manage anything.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, any_, exists, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import Clock
from app.core.enums import AuthEventKind, OrganizationKind, Role
from app.core.pagination import PageRequest
from app.core.passwords import Passwords
from app.core.principal import EXCLUSIVE_ROLES, ORG_ADMIN_GRANTABLE, ROLE_ORGANIZATION_KINDS, Principal
from app.core.problems import Conflict, FieldError, Forbidden, NotFound, field_error
from app.models import Ambito, ApiToken, AuthSession, Comune, Organization, User
from app.models.base import IdMixin
from app.schemas.identity.directory import (
    ApiTokenCreate,
    OrganizationCreate,
    OrganizationUpdate,
    UserCreate,
    UserUpdate,
)
from app.services.access.actions import Action, allowed, require
from app.services.identity.auth import API_TOKEN_PREFIX, secret_hash
from app.services.identity.auth_events import ClientInfo, record

Row = TypeVar("Row", bound=IdMixin)


@dataclass(frozen=True)
class Page(Generic[Row]):
    items: Sequence[Row]
    next_after: uuid.UUID | None


async def _page(
    session: AsyncSession, statement: Select[Any], model: type[Row], page: PageRequest
) -> Page[Row]:
    if page.after is not None:
        statement = statement.where(model.id > page.after)
    rows: Sequence[Row] = (await session.scalars(statement.order_by(model.id).limit(page.limit + 1))).all()
    more = len(rows) > page.limit
    items = rows[: page.limit]
    return Page(items=items, next_after=items[-1].id if more else None)


# ---------------------------------------------------------------------------------------------
# Who may do what


def _sees_organization(principal: Principal, organization: Organization) -> bool:
    return allowed(principal, Action.administer_platform) or organization.ambito_id == principal.ambito_id


def _manages_organization(principal: Principal, organization: Organization) -> bool:
    if principal.kind != "user":
        return False
    if allowed(principal, Action.administer_platform):
        return True
    if allowed(principal, Action.configure_ambito) and organization.ambito_id == principal.ambito_id:
        return True
    return allowed(principal, Action.manage_own_organization) and organization.id == principal.organization_id


def _require_configurator(principal: Principal) -> None:
    if principal.kind != "user":
        raise Forbidden(
            "Only the Ufficio di Piano's coordinators and platform admins configure organizations."
        )
    require(principal, Action.configure_ambito)


async def _organization(
    session: AsyncSession, principal: Principal, organization_id: uuid.UUID
) -> Organization:
    organization = await session.get(Organization, organization_id)
    if organization is None or not _sees_organization(principal, organization):
        raise NotFound("No such organization.")
    return organization


async def _managed_organization(
    session: AsyncSession, principal: Principal, organization_id: uuid.UUID
) -> Organization:
    """The organization whose people and tokens the caller manages; 404/403 otherwise."""
    organization = await session.get(Organization, organization_id)
    if organization is None or not _sees_organization(principal, organization):
        raise NotFound("No such organization.")
    if not _manages_organization(principal, organization):
        if organization.id == principal.organization_id:
            raise Forbidden("Only the organization's admins manage its users and tokens.")
        raise NotFound("No such organization.")
    return organization


# ---------------------------------------------------------------------------------------------
# Organizations


async def list_organizations(
    *, session: AsyncSession, principal: Principal, page: PageRequest, kind: OrganizationKind | None = None
) -> Page[Organization]:
    """One page of organizations: of the principal's ambito, or of every ambito for a platform admin."""
    statement = select(Organization)
    if not allowed(principal, Action.administer_platform):
        statement = statement.where(Organization.ambito_id == principal.ambito_id)
    if kind is not None:
        statement = statement.where(Organization.kind == kind)
    return await _page(session, statement, Organization, page)


async def get_organization(
    *, session: AsyncSession, principal: Principal, organization_id: uuid.UUID
) -> Organization:
    """Read one organization the principal may see."""
    return await _organization(session, principal, organization_id)


async def create_organization(
    *, session: AsyncSession, principal: Principal, data: OrganizationCreate
) -> Organization:
    """Create an organization; coordinators in their own ambito, platform admins in any."""
    _require_configurator(principal)
    ambito_id = data.ambito_id or principal.ambito_id
    if ambito_id != principal.ambito_id and not allowed(principal, Action.administer_platform):
        raise Forbidden("Coordinators create organizations in their own ambito only.")
    if await session.get(Ambito, ambito_id) is None:
        raise field_error("body.ambito_id", "Unknown ambito", "unknown")
    await _check_comune(session, ambito_id, data.kind, data.comune_id)
    organization = Organization(
        ambito_id=ambito_id, kind=data.kind, name=data.name, comune_id=data.comune_id, tax_code=data.tax_code
    )
    await _insert_unique(
        session, organization, "body.name", "An organization with this name exists in the ambito"
    )
    return organization


async def update_organization(
    *, session: AsyncSession, principal: Principal, organization_id: uuid.UUID, data: OrganizationUpdate
) -> Organization:
    """Change an organization's details; coordinators in their own ambito, platform admins in any."""
    organization = await _organization(session, principal, organization_id)
    _require_configurator(principal)
    if not allowed(principal, Action.administer_platform) and organization.ambito_id != principal.ambito_id:
        raise NotFound("No such organization.")
    changes = data.model_dump(exclude_unset=True)
    if "comune_id" in changes:
        await _check_comune(
            session, organization.ambito_id, OrganizationKind(organization.kind), changes["comune_id"]
        )
    if changes.get("name") is None:
        changes.pop("name", None)
    if changes.get("active") is None:
        changes.pop("active", None)
    for key, value in changes.items():
        setattr(organization, key, value)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(
            errors=[
                FieldError(
                    field="body.name", message="An organization with this name exists", code="duplicate"
                )
            ]
        ) from None
    await session.refresh(organization)
    return organization


async def _check_comune(
    session: AsyncSession, ambito_id: uuid.UUID, kind: OrganizationKind, comune_id: uuid.UUID | None
) -> None:
    if comune_id is None:
        if kind == OrganizationKind.comune:
            raise field_error("body.comune_id", "An organization of kind comune needs its comune", "missing")
        return
    comune = await session.get(Comune, comune_id)
    if comune is None or comune.ambito_id != ambito_id:
        raise field_error("body.comune_id", "Unknown comune in this ambito", "unknown")


async def _insert_unique(session: AsyncSession, row: object, field: str, message: str) -> None:
    session.add(row)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(errors=[FieldError(field=field, message=message, code="duplicate")]) from None
    await session.refresh(row)


# ---------------------------------------------------------------------------------------------
# Users


def _check_roles(principal: Principal, organization: Organization, roles: Sequence[Role]) -> None:
    kind = OrganizationKind(organization.kind)
    wrong = [r for r in roles if kind not in ROLE_ORGANIZATION_KINDS[r]]
    if wrong:
        raise field_error(
            "body.roles",
            f"Role {wrong[0].value} is not possible in an organization of kind {kind.value}",
            "role_not_allowed_for_organization",
        )
    if len(set(roles)) > 1 and not EXCLUSIVE_ROLES.isdisjoint(roles):
        raise field_error(
            "body.roles",
            "platform_admin and dpo see no case content and cannot be combined",
            "role_exclusive",
        )
    if Role.platform_admin in roles and not allowed(principal, Action.administer_platform):
        raise Forbidden("Only a platform admin grants platform_admin.")
    if not allowed(principal, Action.configure_ambito) and not set(roles) <= ORG_ADMIN_GRANTABLE:
        raise Forbidden("An organization's admin grants operational roles only.")


async def list_users(
    *, session: AsyncSession, principal: Principal, organization_id: uuid.UUID, page: PageRequest
) -> Page[User]:
    """One page of the users of an organization the principal manages."""
    organization = await _managed_organization(session, principal, organization_id)
    return await _page(session, select(User).where(User.organization_id == organization.id), User, page)


async def get_user(*, session: AsyncSession, principal: Principal, user_id: uuid.UUID) -> User:
    """Read a user: oneself, or a user of an organization the principal manages."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    if user.id == principal.user_id:
        return user
    organization = await session.get(Organization, user.organization_id)
    if organization is None or not _manages_organization(principal, organization):
        raise NotFound("No such user.")
    return user


async def create_user(
    *,
    session: AsyncSession,
    principal: Principal,
    passwords: Passwords,
    organization_id: uuid.UUID,
    data: UserCreate,
) -> User:
    """Create a user in an organization the principal manages, with roles the principal may grant."""
    organization = await _managed_organization(session, principal, organization_id)
    _check_roles(principal, organization, data.roles)
    await _check_unique_user(session, data.email, data.fiscal_code, exclude=None)
    user = User(
        ambito_id=organization.ambito_id,
        organization_id=organization.id,
        email=data.email,
        full_name=data.full_name,
        fiscal_code=data.fiscal_code,
        roles=sorted(set(data.roles)),
        is_org_admin=data.is_org_admin,
        password_hash=passwords.hash(data.password) if data.password else None,
    )
    await _insert_unique(session, user, "body.email", "A user with this email exists")
    return user


async def update_user(
    *,
    session: AsyncSession,
    principal: Principal,
    passwords: Passwords,
    clock: Clock,
    user_id: uuid.UUID,
    data: UserUpdate,
) -> User:
    """Change a user of an organization the principal manages (roles, password, status...)."""
    user = await session.get(User, user_id)
    organization = await session.get(Organization, user.organization_id) if user else None
    if user is None or organization is None or not _sees_organization(principal, organization):
        raise NotFound("No such user.")
    if not _manages_organization(principal, organization):
        if user.id == principal.user_id or organization.id == principal.organization_id:
            raise Forbidden("Only the organization's admins change its users.")
        raise NotFound("No such user.")
    # An organization's admin cannot touch the coordinators or platform admins of its organization.
    _check_roles(principal, organization, [Role(r) for r in user.roles])
    changes = data.model_dump(exclude_unset=True)
    losing_admin = Role.platform_admin.value in user.roles and (
        data.active is False or (data.roles is not None and Role.platform_admin not in data.roles)
    )
    if losing_admin and not await _another_platform_admin(session, user.id):
        raise Conflict("The last active platform admin cannot lose the role nor be deactivated.")
    if changes.get("roles") is not None:
        _check_roles(principal, organization, data.roles or [])
        user.roles = sorted({r.value for r in data.roles or []})
    if "fiscal_code" in changes:
        await _check_unique_user(session, None, data.fiscal_code, exclude=user.id)
        user.fiscal_code = data.fiscal_code
    if data.full_name is not None:
        user.full_name = data.full_name
    if data.is_org_admin is not None:
        user.is_org_admin = data.is_org_admin
    if data.password is not None:
        user.password_hash = passwords.hash(data.password)
    if data.active is not None and data.active != user.active:
        user.active = data.active
        user.deactivated_at = None if data.active else clock.now()
    if data.active is False or data.password is not None:
        # Deactivation or a new password closes every open login session of the user.
        await session.execute(
            update(AuthSession)
            .where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
            .values(
                revoked_at=clock.now(), revoked_reason="deactivated" if data.active is False else "password"
            )
        )
    await session.flush()
    await session.refresh(user)
    return user


async def _another_platform_admin(session: AsyncSession, user_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(User.id)
        .where(User.id != user_id, User.active, literal(Role.platform_admin.value) == any_(User.roles))
        .limit(1)
    )
    return found is not None


async def _check_unique_user(
    session: AsyncSession, email: str | None, fiscal_code: str | None, *, exclude: uuid.UUID | None
) -> None:
    errors = []
    if email and await session.scalar(select(exists().where(func.lower(User.email) == email.lower()))):
        errors.append(
            FieldError(field="body.email", message="A user with this email exists", code="duplicate")
        )
    if fiscal_code:
        condition = User.fiscal_code == fiscal_code
        if exclude is not None:
            condition = condition & (User.id != exclude)
        if await session.scalar(select(exists().where(condition))):
            errors.append(
                FieldError(
                    field="body.fiscal_code", message="A user with this fiscal code exists", code="duplicate"
                )
            )
    if errors:
        raise Conflict(errors=errors)


# ---------------------------------------------------------------------------------------------
# API tokens


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    secret: str


async def list_api_tokens(
    *, session: AsyncSession, principal: Principal, organization_id: uuid.UUID, page: PageRequest
) -> Page[ApiToken]:
    """One page of the API tokens of an organization the principal manages."""
    organization = await _managed_organization(session, principal, organization_id)
    return await _page(
        session, select(ApiToken).where(ApiToken.organization_id == organization.id), ApiToken, page
    )


async def create_api_token(
    *,
    session: AsyncSession,
    principal: Principal,
    clock: Clock,
    client: ClientInfo,
    max_days: int,
    organization_id: uuid.UUID,
    data: ApiTokenCreate,
) -> CreatedToken:
    """Issue an API token for an organization the principal manages; the secret is returned once only."""
    organization = await _managed_organization(session, principal, organization_id)
    if data.expires_in_days > max_days:
        raise field_error("body.expires_in_days", f"At most {max_days} days", "less_than_equal")
    secret = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        ambito_id=organization.ambito_id,
        organization_id=organization.id,
        name=data.name,
        prefix=secret[:12],
        secret_hash=secret_hash(secret),
        scopes=sorted({s.value for s in data.scopes}),
        expires_at=clock.now() + timedelta(days=data.expires_in_days),
        created_by_user_id=principal.user_id,
    )
    session.add(token)
    await session.flush()
    await session.refresh(token)
    await record(
        session,
        clock,
        AuthEventKind.api_token_created,
        client,
        user_id=principal.user_id,
        api_token_id=token.id,
        organization_id=organization.id,
        scopes=token.scopes,
    )
    return CreatedToken(token=token, secret=secret)


async def _managed_token(session: AsyncSession, principal: Principal, token_id: uuid.UUID) -> ApiToken:
    token = await session.get(ApiToken, token_id)
    if token is None:
        raise NotFound("No such API token.")
    try:
        await _managed_organization(session, principal, token.organization_id)
    except NotFound:
        raise NotFound("No such API token.") from None
    return token


async def get_api_token(*, session: AsyncSession, principal: Principal, token_id: uuid.UUID) -> ApiToken:
    """Read one API token the principal manages."""
    return await _managed_token(session, principal, token_id)


async def revoke_api_token(
    *, session: AsyncSession, principal: Principal, clock: Clock, client: ClientInfo, token_id: uuid.UUID
) -> None:
    """Revoke an API token the principal manages and record the event; revoking twice does nothing."""
    token = await _managed_token(session, principal, token_id)
    if token.revoked_at is not None:
        return
    token.revoked_at = clock.now()
    await record(
        session,
        clock,
        AuthEventKind.api_token_revoked,
        client,
        user_id=principal.user_id,
        api_token_id=token.id,
        organization_id=token.organization_id,
    )
