"""Who may do which action: one table, the action-level twin of the role × section table.

A service asks `require(principal, Action.x)` (or `allowed`) and never looks at a principal's
roles, scopes or admin flag itself; which *records* an action may touch (this ambito, this
organization, this dossier) is decided by the service and the policy, after this gate. A test
reads the services and fails on a role check anywhere else (tests/unit/test_access_rules.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from app.core.enums import OrganizationKind, Role, Scope
from app.core.principal import Principal
from app.core.problems import Forbidden


class Action(enum.StrEnum):
    refer = "refer"  # submit a scheda di segnalazione
    open_break_glass = "open_break_glass"  # open a dossier one cannot see, in an emergency
    review_break_glass = "review_break_glass"
    read_any_access_log = "read_any_access_log"  # any dossier's access log in the ambito
    configure_pools = "configure_pools"  # pools, their members, routing rules
    oversee_routing = "oversee_routing"  # every routing of the ambito: queue, override, transfer
    oversee_meetings = "oversee_meetings"  # every pool's meetings, without being a member
    manage_inbound_senders = "manage_inbound_senders"  # ASST systems that send signed events
    manage_ambito_webhooks = "manage_ambito_webhooks"  # subscriptions of every organization
    manage_own_webhooks = "manage_own_webhooks"  # subscriptions of one's own organization
    administer_platform = "administer_platform"  # every ambito: organizations, platform admins
    configure_ambito = "configure_ambito"  # the ambito's organizations, users of any role
    manage_own_organization = "manage_own_organization"  # its users (operational roles), tokens


@dataclass(frozen=True)
class Rule:
    """Who may: users holding one of `roles` (or, with `org_admin`, any admin of its organization),
    API tokens holding one of `scopes`, signed integrations if `integration`; and, when
    `organization_kinds` is set, only from an organization of those kinds."""

    roles: frozenset[Role] = frozenset()
    scopes: frozenset[Scope] = frozenset()
    org_admin: bool = False
    integration: bool = False
    organization_kinds: frozenset[OrganizationKind] | None = None
    refusal_en: str = "You may not do this."
    refusal_it: str = "Non puoi compiere questa azione."


def _roles(*roles: Role) -> frozenset[Role]:
    return frozenset(roles)


ACTIONS: dict[Action, Rule] = {
    Action.refer: Rule(
        roles=_roles(Role.social_worker, Role.health_operator, Role.employment_operator, Role.coop_operator),
        scopes=frozenset({Scope.referrals_write}),
        integration=True,  # a signed event from an ASST system (a protected discharge)
        refusal_en="Your role does not submit referrals.",
        refusal_it="Il tuo ruolo non invia segnalazioni.",
    ),
    Action.open_break_glass: Rule(
        roles=_roles(Role.social_worker, Role.health_operator),
        refusal_en="Emergency access is for social workers and health operators.",
        refusal_it="L'accesso di emergenza è riservato ad assistenti sociali e operatori sanitari.",
    ),
    Action.review_break_glass: Rule(
        roles=_roles(Role.dpo),
        refusal_en="Emergency accesses are reviewed by the DPO.",
        refusal_it="Gli accessi di emergenza sono verificati dal DPO.",
    ),
    Action.read_any_access_log: Rule(roles=_roles(Role.dpo)),
    Action.configure_pools: Rule(
        roles=_roles(Role.coordinator),
        refusal_en="Pools and routing rules are configured by the Ufficio di Piano's coordinators.",
        refusal_it="Pool e regole di instradamento sono configurati dai coordinatori dell'Ufficio di Piano.",
    ),
    Action.oversee_routing: Rule(
        roles=_roles(Role.coordinator),
        refusal_en="The routing queue is the Ufficio di Piano's coordinators'.",
        refusal_it="La coda di instradamento è dei coordinatori dell'Ufficio di Piano.",
    ),
    Action.oversee_meetings: Rule(roles=_roles(Role.coordinator)),
    Action.manage_inbound_senders: Rule(
        roles=_roles(Role.coordinator),
        refusal_en="Inbound senders are registered by the Ufficio di Piano's coordinators.",
        refusal_it="I mittenti degli eventi sono registrati dai coordinatori dell'Ufficio di Piano.",
    ),
    Action.manage_ambito_webhooks: Rule(roles=_roles(Role.coordinator)),
    Action.manage_own_webhooks: Rule(
        org_admin=True,
        scopes=frozenset({Scope.webhooks_manage}),
        refusal_en=(
            "Webhooks are managed by coordinators, organization admins and tokens with webhooks:manage."
        ),
        refusal_it=(
            "I webhook sono gestiti dai coordinatori, dagli amministratori dell'ente "
            "e dai token con webhooks:manage."
        ),
    ),
    Action.administer_platform: Rule(
        roles=_roles(Role.platform_admin),
        refusal_en="Only a platform admin does this.",
        refusal_it="Solo un amministratore della piattaforma può farlo.",
    ),
    Action.configure_ambito: Rule(
        roles=_roles(Role.platform_admin, Role.coordinator),
        refusal_en="Only the Ufficio di Piano's coordinators and platform admins configure organizations.",
        refusal_it=(
            "Solo i coordinatori dell'Ufficio di Piano e gli amministratori della piattaforma "
            "configurano gli enti."
        ),
    ),
    Action.manage_own_organization: Rule(
        org_admin=True,
        refusal_en="Only the organization's admins manage its users and tokens.",
        refusal_it="Solo gli amministratori dell'ente ne gestiscono utenti e token.",
    ),
}


class ActionForbidden(Forbidden):
    slug = "action-forbidden"
    title_en = "This action is not allowed to you"
    title_it = "Questa azione non ti è consentita"


def allowed(principal: Principal, action: Action) -> bool:
    """Whether the principal's roles, scopes or kind let it do this action (records aside)."""
    rule = ACTIONS[action]
    if rule.organization_kinds is not None and principal.organization_kind not in rule.organization_kinds:
        return False
    if principal.kind == "integration":
        return rule.integration
    if principal.kind == "api_token":
        return not rule.scopes.isdisjoint(principal.scopes)
    return (rule.org_admin and principal.is_org_admin) or not rule.roles.isdisjoint(principal.roles)


def require(principal: Principal, action: Action) -> None:
    """Raise 403 unless the principal may do this action (`allowed`)."""
    if not allowed(principal, action):
        rule = ACTIONS[action]
        raise ActionForbidden(rule.refusal_en, detail_it=rule.refusal_it, extra={"action": action.value})
