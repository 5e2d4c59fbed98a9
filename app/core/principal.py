"""Who is calling: one shape for SPA users (local or OIDC) and partner API tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from app.core.enums import OrganizationKind, Role, Scope

# `integration`: an information system that sent a signed event (an ASST's), acting as its organization.
PrincipalKind = Literal["user", "api_token", "integration"]

# Which roles make sense in which kind of organization (DESIGN §4). A cooperative's operator is
# never a comune's social worker; platform_admin and dpo are roles of the ambito's own bodies.
ROLE_ORGANIZATION_KINDS: dict[Role, frozenset[OrganizationKind]] = {
    Role.platform_admin: frozenset({OrganizationKind.ufficio_di_piano}),
    Role.coordinator: frozenset({OrganizationKind.ufficio_di_piano}),
    Role.social_worker: frozenset({OrganizationKind.comune, OrganizationKind.ufficio_di_piano}),
    Role.health_operator: frozenset({OrganizationKind.asst}),
    Role.employment_operator: frozenset({OrganizationKind.afol}),
    Role.coop_operator: frozenset({OrganizationKind.cooperativa, OrganizationKind.associazione}),
    Role.home_care: frozenset({OrganizationKind.cooperativa, OrganizationKind.comune}),
    Role.dpo: frozenset({OrganizationKind.ufficio_di_piano, OrganizationKind.comune, OrganizationKind.asst}),
}

# Roles that see no case content must not be combined with roles that do.
EXCLUSIVE_ROLES: frozenset[Role] = frozenset({Role.platform_admin, Role.dpo})

# Roles an organization's own admin may grant; the rest need a coordinator or platform admin.
ORG_ADMIN_GRANTABLE: frozenset[Role] = frozenset(
    {Role.social_worker, Role.health_operator, Role.employment_operator, Role.coop_operator, Role.home_care}
)


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    id: uuid.UUID  # the user's id, or the API token's id
    name: str
    organization_id: uuid.UUID
    organization_kind: OrganizationKind
    organization_name: str
    ambito_id: uuid.UUID
    roles: frozenset[Role]
    scopes: frozenset[Scope]
    is_org_admin: bool = False
    session_id: uuid.UUID | None = None
    organization_comune_id: uuid.UUID | None = None

    @property
    def user_id(self) -> uuid.UUID | None:
        return self.id if self.kind == "user" else None

    @property
    def api_token_id(self) -> uuid.UUID | None:
        return self.id if self.kind == "api_token" else None
