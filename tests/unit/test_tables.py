"""The tables the next capabilities will triple, each read against a table written here by hand:
the role × section rights, the action table, the state graph and the routing engine's conditions.
A change to one of them is a change to this file too, on purpose: it is reviewed as a rule."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from app.core.enums import Compartment, DossierState, OrganizationKind, Role, Scope, Section, Urgency
from app.core.principal import Principal, PrincipalKind
from app.models import RoutingRule
from app.services.access.actions import ACTIONS, Action, allowed
from app.services.access.policy import READ, WRITE, section_rights
from app.services.dossiers.lifecycle import OPEN, REQUIRED_GUARDS, SIDE_EXITS, TERMINAL, TRANSITIONS
from app.services.pools.routing import Facts, age_on, evaluate

S = DossierState
R, W = READ, WRITE
AMBITO = uuid.uuid4()


def principal(
    *roles: Role,
    kind: PrincipalKind = "user",
    organization_kind: OrganizationKind = OrganizationKind.comune,
    scopes: frozenset[Scope] = frozenset(),
    org_admin: bool = False,
) -> Principal:
    return Principal(
        kind=kind,
        id=uuid.uuid4(),
        name="probe",
        organization_id=uuid.uuid4(),
        organization_kind=organization_kind,
        organization_name="probe",
        ambito_id=AMBITO,
        roles=frozenset(roles),
        scopes=scopes,
        is_org_admin=org_admin,
    )


# ---------------------------------------------------------------------------------------------
# Role × section: registry, referral, assessment, plan, interventions, health, violence, judicial

SECTIONS = (
    Section.registry,
    Section.referral,
    Section.assessment,
    Section.plan,
    Section.interventions,
    Section.health,
    Section.violence,
    Section.judicial,
)
RIGHTS: dict[Role, tuple[str | None, ...]] = {
    Role.social_worker: (W, W, W, W, W, R, W, W),
    Role.health_operator: (R, W, R, R, W, W, R, W),
    Role.employment_operator: (R, W, W, R, W, None, None, None),
    Role.coop_operator: (R, W, None, R, W, None, None, None),
    Role.home_care: (R, None, None, R, R, None, None, None),
    Role.platform_admin: (None,) * 8,
    Role.coordinator: (None,) * 8,
    Role.dpo: (None,) * 8,
}


def test_every_role_is_in_the_rights_table() -> None:
    assert set(RIGHTS) == set(Role)


@pytest.mark.parametrize("role", list(Role))
def test_a_role_holds_exactly_its_sections(role: Role) -> None:
    expected = {s: r for s, r in zip(SECTIONS, RIGHTS[role], strict=True) if r is not None}
    assert section_rights(principal(role)) == expected


def test_two_roles_hold_the_stronger_right_of_each() -> None:
    both = section_rights(principal(Role.health_operator, Role.employment_operator))
    assert both[Section.assessment] == W  # employment writes, health reads
    assert both[Section.health] == W


TOKEN_SECTIONS: list[tuple[OrganizationKind, frozenset[Scope], dict[Section, str]]] = [
    (OrganizationKind.cooperativa, frozenset(), {}),
    (OrganizationKind.cooperativa, frozenset({Scope.referrals_write}), {}),
    (
        OrganizationKind.cooperativa,
        frozenset({Scope.dossiers_read}),
        {Section.registry: R, Section.referral: R, Section.plan: R},
    ),
    (
        OrganizationKind.cooperativa,
        frozenset({Scope.dossiers_read, Scope.interventions_read}),
        {Section.registry: R, Section.referral: R, Section.plan: R, Section.interventions: R},
    ),
    (
        OrganizationKind.cooperativa,
        frozenset({Scope.dossiers_read, Scope.interventions_write, Scope.referrals_write}),
        {Section.registry: R, Section.referral: W, Section.plan: R, Section.interventions: W},
    ),
    (
        OrganizationKind.asst,
        frozenset({Scope.dossiers_read}),
        {s: R for s in SECTIONS if s != Section.interventions},
    ),
    (OrganizationKind.comune, frozenset({Scope.dossiers_read}), {}),  # a comune has no token role
    (OrganizationKind.ufficio_di_piano, frozenset(Scope), {}),
]


@pytest.mark.parametrize(("kind", "scopes", "expected"), TOKEN_SECTIONS)
def test_a_token_reads_what_its_organization_kind_and_scopes_allow(
    kind: OrganizationKind, scopes: frozenset[Scope], expected: dict[Section, str]
) -> None:
    token = principal(kind="api_token", organization_kind=kind, scopes=scopes)
    assert section_rights(token) == expected


# ---------------------------------------------------------------------------------------------
# Actions: who, written out

EVERYONE_WHO_REFERS = {Role.social_worker, Role.health_operator, Role.employment_operator, Role.coop_operator}
ACTION_ROLES: dict[Action, set[Role]] = {
    Action.refer: EVERYONE_WHO_REFERS,
    Action.open_break_glass: {Role.social_worker, Role.health_operator},
    Action.review_break_glass: {Role.dpo},
    Action.read_any_access_log: {Role.dpo},
    Action.configure_pools: {Role.coordinator},
    Action.oversee_routing: {Role.coordinator},
    Action.oversee_meetings: {Role.coordinator},
    Action.manage_inbound_senders: {Role.coordinator},
    Action.manage_ambito_webhooks: {Role.coordinator},
    Action.manage_own_webhooks: set(),  # organization admins, whatever their role
    Action.administer_platform: {Role.platform_admin},
    Action.configure_ambito: {Role.platform_admin, Role.coordinator},
    Action.manage_own_organization: set(),  # organization admins
}
ACTION_SCOPES: dict[Action, set[Scope]] = {
    Action.refer: {Scope.referrals_write},
    Action.manage_own_webhooks: {Scope.webhooks_manage},
}
ORG_ADMIN_ACTIONS = {Action.manage_own_webhooks, Action.manage_own_organization}
INTEGRATION_ACTIONS = {Action.refer}


def test_every_action_is_in_the_table() -> None:
    assert set(ACTIONS) == set(Action) == set(ACTION_ROLES)


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("role", list(Role))
def test_a_user_may_do_an_action_by_role(action: Action, role: Role) -> None:
    assert allowed(principal(role), action) == (role in ACTION_ROLES[action])


@pytest.mark.parametrize("action", list(Action))
def test_an_organization_admin_may_manage_its_own_organization(action: Action) -> None:
    admin = principal(Role.coop_operator, organization_kind=OrganizationKind.cooperativa, org_admin=True)
    expected = action in ORG_ADMIN_ACTIONS or Role.coop_operator in ACTION_ROLES[action]
    assert allowed(admin, action) == expected


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("scope", list(Scope))
def test_a_token_may_do_an_action_by_scope(action: Action, scope: Scope) -> None:
    token = principal(
        kind="api_token", organization_kind=OrganizationKind.cooperativa, scopes=frozenset({scope})
    )
    assert allowed(token, action) == (scope in ACTION_SCOPES.get(action, set()))


@pytest.mark.parametrize("action", list(Action))
def test_a_signed_integration_may_only_refer(action: Action) -> None:
    system = principal(kind="integration", organization_kind=OrganizationKind.asst)
    assert allowed(system, action) == (action in INTEGRATION_ACTIONS)


def test_a_token_holds_no_role_even_if_it_is_an_admins() -> None:
    token = principal(Role.coordinator, kind="api_token", scopes=frozenset(), org_admin=True)
    assert not any(allowed(token, action) for action in Action)


# ---------------------------------------------------------------------------------------------
# The state graph (DESIGN §3)

EDGES = {
    (S.segnalato, S.in_valutazione),
    (S.in_valutazione, S.in_pool),
    (S.in_pool, S.progetto_attivo),
    (S.progetto_attivo, S.in_pool),
    (S.progetto_attivo, S.sospeso),
    (S.progetto_attivo, S.valutazione_finale),
    (S.sospeso, S.progetto_attivo),
    (S.valutazione_finale, S.chiuso),
}


@pytest.mark.parametrize("source", list(S))
@pytest.mark.parametrize("target", list(S))
def test_the_graph_allows_exactly_its_edges_and_the_side_exits(source: S, target: S) -> None:
    expected = (source, target) in EDGES or (source in OPEN and target in SIDE_EXITS)
    assert (target in TRANSITIONS[source]) == expected


def test_every_state_is_reached_from_a_referral() -> None:
    reached, frontier = {S.segnalato}, [S.segnalato]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()] - reached:
            reached.add(nxt)
            frontier.append(nxt)
    assert reached == set(S)


def test_terminal_states_lead_nowhere_and_reopen_only_by_referral() -> None:
    assert {S.chiuso, S.reindirizzato, S.ritirato, S.trasferito} == TERMINAL
    assert all(TRANSITIONS[state] == frozenset() for state in TERMINAL)


def test_the_guarded_states_are_the_plans_and_the_closure() -> None:
    assert {
        S.progetto_attivo: frozenset({"agreed_plan"}),
        S.chiuso: frozenset({"ex_post_evaluation"}),
    } == REQUIRED_GUARDS


# ---------------------------------------------------------------------------------------------
# The routing engine: each condition, alone and together

MELZO, INZAGO = uuid.uuid4(), uuid.uuid4()
NAMES = {MELZO: "Melzo", INZAGO: "Inzago"}


def facts(*, comune: uuid.UUID = MELZO, needs: tuple[str, ...] = ("lavoro",), age: int | None = 40) -> Facts:
    return Facts(
        ambito_id=AMBITO,
        comune_id=comune,
        comune_name=NAMES[comune],
        need_areas=frozenset(needs),
        urgency=Urgency.ordinaria,
        age=age,
        compartment=Compartment.ordinary,
        today=date(2026, 12, 2),
    )


def rule(**conditions: object) -> RoutingRule:
    values: dict[str, object] = {
        "comune_ids": [],
        "need_areas": [],
        "urgencies": [],
        "min_age": None,
        "max_age": None,
        **conditions,
    }
    return RoutingRule(
        id=uuid.uuid4(), ambito_id=AMBITO, name="r", priority=1, target_pool_ids=[uuid.uuid4()], **values
    )


ROUTING_CASES: list[tuple[str, dict[str, object], Facts, bool, list[str]]] = [
    ("no condition matches anything", {}, facts(), True, []),
    ("the comune", {"comune_ids": [MELZO]}, facts(), True, []),
    ("another comune", {"comune_ids": [INZAGO]}, facts(), False, ["comune"]),
    ("any need area", {"need_areas": ["casa", "lavoro"]}, facts(), True, []),
    ("no shared need area", {"need_areas": ["casa"]}, facts(), False, ["need_areas"]),
    ("urgency", {"urgencies": ["urgente"]}, facts(), False, ["urgency"]),
    ("in the age band", {"min_age": 18, "max_age": 64}, facts(age=64), True, []),
    ("below the band", {"min_age": 65}, facts(age=64), False, ["age"]),
    ("age unknown", {"max_age": 17}, facts(age=None), False, ["age"]),
    (
        "all conditions, one failing",
        {"comune_ids": [MELZO], "need_areas": ["lavoro"], "max_age": 30},
        facts(age=40),
        False,
        ["age"],
    ),
]


@pytest.mark.parametrize(
    ("conditions", "given", "matched", "failed"),
    [case[1:] for case in ROUTING_CASES],
    ids=[case[0] for case in ROUTING_CASES],
)
def test_a_rule_matches_when_every_condition_does(
    conditions: dict[str, object], given: Facts, matched: bool, failed: list[str]
) -> None:
    result = evaluate(rule(**conditions), given, NAMES)
    assert result.matched == matched
    assert [c.condition for c in result.checks if not c.matched] == failed


@pytest.mark.parametrize(
    ("birth", "today", "age"),
    [
        (date(2000, 12, 2), date(2026, 12, 2), 26),  # the birthday itself
        (date(2000, 12, 3), date(2026, 12, 2), 25),  # the day before it
        (date(2000, 2, 29), date(2026, 2, 28), 25),  # born on 29 February, not a leap year
        (date(2000, 2, 29), date(2026, 3, 1), 26),
    ],
)
def test_age_is_counted_in_whole_years(birth: date, today: date, age: int) -> None:
    assert age_on(birth, today) == age
