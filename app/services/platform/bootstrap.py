"""First-install helpers behind `snodo create-ambito/-organization/-user` (no principal: the
operator at the console is the authority). Everything after that goes through the API."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import OrganizationKind, Role
from app.core.principal import EXCLUSIVE_ROLES, ROLE_ORGANIZATION_KINDS
from app.models import Ambito, Organization, User


class BootstrapError(Exception):
    pass


async def create_ambito(*, session: AsyncSession, code: str, name: str) -> uuid.UUID:
    """Create an ambito (its code upper-cased) from the command line; returns its id."""
    ambito = Ambito(code=code.upper(), name=name)
    session.add(ambito)
    await session.flush()
    return ambito.id


async def _ambito_id(session: AsyncSession, code: str) -> uuid.UUID:
    ambito_id = await session.scalar(select(Ambito.id).where(Ambito.code == code.upper()))
    if ambito_id is None:
        raise BootstrapError(f"no ambito with code {code!r}")
    return ambito_id


async def create_organization(
    *, session: AsyncSession, ambito_code: str, kind: OrganizationKind, name: str
) -> uuid.UUID:
    """Create a non-comune organization in an ambito from the command line; returns its id."""
    if kind == OrganizationKind.comune:
        raise BootstrapError("comuni are created with their ISTAT code (snodo seed-demo, or the API)")
    organization = Organization(ambito_id=await _ambito_id(session, ambito_code), kind=kind, name=name)
    session.add(organization)
    await session.flush()
    return organization.id


async def create_user(
    *,
    session: AsyncSession,
    ambito_code: str,
    organization_name: str,
    email: str,
    full_name: str,
    roles: list[Role],
    password_hash: str,
    is_org_admin: bool,
) -> uuid.UUID:
    """Create a user in an organization of an ambito from the command line; returns its id."""
    ambito_id = await _ambito_id(session, ambito_code)
    organization = await session.scalar(
        select(Organization).where(
            Organization.ambito_id == ambito_id, Organization.name == organization_name
        )
    )
    if organization is None:
        raise BootstrapError(f"no organization {organization_name!r} in ambito {ambito_code!r}")
    for role in roles:
        if OrganizationKind(organization.kind) not in ROLE_ORGANIZATION_KINDS[role]:
            raise BootstrapError(
                f"role {role.value} is not possible in an organization of kind {organization.kind}"
            )
    if len(set(roles)) > 1 and not EXCLUSIVE_ROLES.isdisjoint(roles):
        raise BootstrapError("platform_admin and dpo cannot be combined with other roles")
    if await session.scalar(select(User.id).where(func.lower(User.email) == email.strip().lower())):
        raise BootstrapError(f"a user with email {email!r} exists")
    user = User(
        ambito_id=ambito_id,
        organization_id=organization.id,
        email=email.strip().lower(),
        full_name=full_name,
        roles=sorted({r.value for r in roles}),
        is_org_admin=is_org_admin,
        password_hash=password_hash,
    )
    session.add(user)
    await session.flush()
    return user.id
