"""The access policy (DESIGN §4): who sees which dossier, which of its sections, which special data.

Every read of dossier data starts here. Three layers, each applied in SQL:

1. **Tenancy**: a dossier of another ambito does not exist.
2. **Record level**: a principal sees a dossier only through a *basis* —
   - `case_manager`: it is the dossier's case manager;
   - `residence`: it is a social worker of the comune where the person lives;
   - `pool`: its organization (or the user by name) is a member of an active pool the dossier is
     routed to, has not declined the routing, *and* the citizen's consent or a recorded legal
     basis covers that organization for taking charge (presa in carico);
   - `participant`: its organization takes part in the dossier otherwise (provider, invited
     specialist), under the same consent condition; revoking the consent ends both at once;
   - `break_glass`: it opened the dossier in an emergency, with a reason, for a bounded time.
   Dossiers in the violence or judicial compartment further need that section's right.
   Otherwise the dossier does not exist for it: 404, never 403.
3. **Section level** (oscuramento): the role's rights per section, narrowed for participants
   to the sections of their participation; a forbidden section of a visible dossier is 403.

**Special categories** (HL7 ETH, HIV, PSY, SDV) are hidden unless the section they belong to is
readable *and* the citizen's consent names that category for the principal's organization
(or the principal's organization wrote them). They are filtered in SQL, so counts, pages and
status codes are the same as if they did not exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Date,
    Select,
    String,
    and_,
    any_,
    cast,
    exists,
    false,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import (
    Compartment,
    ConfidentialityLabel,
    ConsentPurpose,
    NeedArea,
    OrganizationKind,
    Role,
    Scope,
    Section,
    TaskStatus,
)
from app.core.principal import Principal
from app.core.problems import Forbidden, NotFound
from app.models import (
    BreakGlass,
    Consent,
    Dossier,
    DossierParticipant,
    DossierRouting,
    Organization,
    Person,
    Pool,
    PoolMember,
    RoutingTask,
)
from app.services.access.actions import Action, require

READ = "r"
WRITE = "rw"
SectionRights = dict[Section, str]

_ALL_SECTIONS = tuple(Section)

# Role × section (DESIGN §4 and the permission matrix of DOMAIN.md §10.7).
ROLE_SECTIONS: dict[Role, SectionRights] = {
    Role.social_worker: {
        Section.registry: WRITE,
        Section.referral: WRITE,
        Section.assessment: WRITE,
        Section.plan: WRITE,
        Section.interventions: WRITE,
        Section.health: READ,
        Section.violence: WRITE,
        Section.judicial: WRITE,
    },
    Role.health_operator: {
        Section.registry: READ,
        Section.referral: WRITE,
        Section.assessment: READ,
        Section.plan: READ,
        Section.interventions: WRITE,
        Section.health: WRITE,
        Section.violence: READ,
        Section.judicial: WRITE,
    },
    Role.employment_operator: {
        Section.registry: READ,
        Section.referral: WRITE,
        Section.assessment: WRITE,
        Section.plan: READ,
        Section.interventions: WRITE,
    },
    Role.coop_operator: {
        Section.registry: READ,
        Section.referral: WRITE,
        Section.plan: READ,
        Section.interventions: WRITE,
    },
    Role.home_care: {
        Section.registry: READ,
        Section.plan: READ,
        Section.interventions: READ,
    },
    # platform_admin, coordinator and dpo see no case content.
}

# What an API token stands for, by the kind of its organization; its scopes then narrow it.
TOKEN_ROLE: dict[OrganizationKind, Role] = {
    OrganizationKind.cooperativa: Role.coop_operator,
    OrganizationKind.associazione: Role.coop_operator,
    OrganizationKind.azienda: Role.coop_operator,
    OrganizationKind.asst: Role.health_operator,
    OrganizationKind.afol: Role.employment_operator,
}

LABEL_SECTION: dict[ConfidentialityLabel, Section] = {
    ConfidentialityLabel.ETH: Section.health,
    ConfidentialityLabel.HIV: Section.health,
    ConfidentialityLabel.PSY: Section.health,
    ConfidentialityLabel.SDV: Section.violence,
}
# Need areas that are themselves special-category data.
NEED_AREA_LABEL: dict[NeedArea, ConfidentialityLabel] = {
    NeedArea.dipendenze: ConfidentialityLabel.ETH,
    NeedArea.salute_mentale: ConfidentialityLabel.PSY,
    NeedArea.violenza: ConfidentialityLabel.SDV,
}
COMPARTMENT_SECTION: dict[Compartment, Section] = {
    Compartment.violence: Section.violence,
    Compartment.judicial: Section.judicial,
}


def section_rights(principal: Principal) -> SectionRights:
    """The most a principal's roles (or token scopes) allow, before any record-level narrowing."""
    if principal.kind == "api_token":
        role = TOKEN_ROLE.get(principal.organization_kind)
        if role is None or Scope.dossiers_read not in principal.scopes:
            return {}
        granted = dict(ROLE_SECTIONS.get(role, {}))
        rights: SectionRights = {s: READ for s in granted}
        if Scope.referrals_write in principal.scopes and Section.referral in granted:
            rights[Section.referral] = WRITE
        if Section.interventions in granted:
            if Scope.interventions_write in principal.scopes:
                rights[Section.interventions] = WRITE
            elif Scope.interventions_read not in principal.scopes:
                rights.pop(Section.interventions)
        return rights
    merged: SectionRights = {}
    for role in principal.roles:
        for section, right in ROLE_SECTIONS.get(role, {}).items():
            if merged.get(section) != WRITE:
                merged[section] = right
    return merged


# ---------------------------------------------------------------------------------------------
# Record level, in SQL

# The moment the conditions below are evaluated at: the request's time, or a bind parameter that
# stands for it in a statement built once and executed at many moments (dossiers._worklist).
Moment = datetime | BindParameter[datetime]


def _today(now: Moment) -> date | ColumnElement[date]:
    """The date of `now` in UTC, as the clock's (whatever the session's TimeZone)."""
    return now.date() if isinstance(now, datetime) else cast(func.timezone("UTC", now), Date)


@dataclass(frozen=True)
class Party:
    """Whom the organization-level bases are asked for: an organization, and the user acting
    for it when there is one (a pool may name a member personally)."""

    organization_id: uuid.UUID
    organization_kind: OrganizationKind
    user_id: uuid.UUID | None = None


def _party(principal: Principal) -> Party:
    return Party(principal.organization_id, principal.organization_kind, principal.user_id)


def _active_consent(party: Party | Principal, now: Moment) -> list[ColumnElement[bool]]:
    """Conditions on Consent: active, for taking charge, naming the party's organization."""
    return [
        Consent.revoked_at.is_(None),
        or_(Consent.expires_on.is_(None), Consent.expires_on >= _today(now)),
        literal(ConsentPurpose.presa_in_carico.value) == any_(Consent.purposes),
        or_(
            literal(party.organization_kind.value) == any_(Consent.organization_kinds),
            literal(party.organization_id) == any_(Consent.organization_ids),
        ),
    ]


def _consent_covers(party: Party | Principal, now: Moment) -> ColumnElement[bool]:
    """An active consent (or legal basis) of the dossier's person covers the party's organization."""
    return exists().where(Consent.person_id == Dossier.person_id, *_active_consent(party, now))


def _participating(party: Party | Principal, now: Moment) -> list[ColumnElement[bool]]:
    """Conditions on DossierParticipant: the party's organization, participation in force."""
    return [
        DossierParticipant.organization_id == party.organization_id,
        DossierParticipant.ended_at.is_(None),
        DossierParticipant.starts_at <= now,
        or_(DossierParticipant.ends_at.is_(None), DossierParticipant.ends_at > now),
    ]


def _member_of_pool(party: Party, now: Moment) -> list[ColumnElement[bool]]:
    """Conditions on PoolMember and Pool, joined on the pool by the caller: an active pool the
    principal is a member of (as its organization, or named personally)."""
    today = _today(now)
    member = [
        Pool.active_from <= today,
        or_(Pool.active_until.is_(None), Pool.active_until >= today),
        PoolMember.organization_id == party.organization_id,
        PoolMember.removed_at.is_(None),
    ]
    if party.user_id is not None:
        member.append(or_(PoolMember.user_id.is_(None), PoolMember.user_id == party.user_id))
    else:
        member.append(PoolMember.user_id.is_(None))
    return member


def _routing_in_force(
    party: Party | Principal, routing: type[DossierRouting] = DossierRouting
) -> list[ColumnElement[bool]]:
    """Conditions on DossierRouting: in force, and not declined by the party's organization."""
    return [
        routing.ended_at.is_(None),
        ~exists().where(
            RoutingTask.routing_id == routing.id,
            RoutingTask.organization_id == party.organization_id,
            RoutingTask.status == TaskStatus.declined,
        ),
    ]


def _routed_to_member_pool(party: Party, now: Moment) -> ColumnElement[bool]:
    """The dossier is routed (now) to an active pool the principal is a member of, and the
    principal's organization has not declined that routing. The tables are joined explicitly:
    the same plan as a list of conditions, and SQLAlchemy's check for cartesian products follows
    it inside a LATERAL subquery too (`dossiers._newest_visible`), where it did not."""
    routed = (
        select(literal(1))
        .select_from(DossierRouting)
        .join(PoolMember, PoolMember.pool_id == DossierRouting.pool_id)
        .join(Pool, Pool.id == PoolMember.pool_id)
        .where(
            DossierRouting.dossier_id == Dossier.id,
            *_member_of_pool(party, now),
            *_routing_in_force(party),
        )
    )
    return exists(routed)


def sees_residents(principal: Principal) -> bool:
    """A social worker of a comune: sees the dossiers of its residents (the residence basis)."""
    return (
        principal.kind == "user"
        and Role.social_worker in principal.roles
        and principal.organization_kind == OrganizationKind.comune
        and principal.organization_comune_id is not None
    )


def _bases(principal: Principal, now: Moment) -> dict[str, ColumnElement[bool]]:
    """Each record-level basis the principal could have, as a SQL condition on Dossier."""
    bases: dict[str, ColumnElement[bool]] = {}
    if principal.kind == "user":
        bases["case_manager"] = Dossier.case_manager_user_id == principal.id
        if sees_residents(principal):
            bases["residence"] = Dossier.residence_comune_id == principal.organization_comune_id
        bases["break_glass"] = exists().where(
            BreakGlass.dossier_id == Dossier.id,
            BreakGlass.user_id == principal.id,
            BreakGlass.expires_at > now,
        )
    bases.update(_organization_bases(_party(principal), now))
    return bases


def _organization_bases(party: Party, now: Moment) -> dict[str, ColumnElement[bool]]:
    """The organization-level bases: pool membership and participation, each within consent."""
    return {
        "pool": and_(_routed_to_member_pool(party, now), _consent_covers(party, now)),
        "participant": and_(
            exists().where(DossierParticipant.dossier_id == Dossier.id, *_participating(party, now)),
            _consent_covers(party, now),
        ),
    }


def visible(principal: Principal, now: Moment) -> ColumnElement[bool]:
    """The condition every query on dossiers must carry: the dossiers this principal may see."""
    parts = visibility(principal, now)
    if parts is None:
        return false()
    return and_(*parts.common, or_(*parts.bases.values()))


@dataclass(frozen=True)
class Visibility:
    """`visible` taken apart: a dossier is visible when it meets every `common` condition and at
    least one basis. The worklist runs one index-driven query per basis (see dossiers.list_visible);
    PostgreSQL plans an OR of EXISTS badly (docs/performance.md)."""

    common: list[ColumnElement[bool]]
    bases: dict[str, ColumnElement[bool]]


def visibility(principal: Principal, now: Moment) -> Visibility | None:
    """Where the principal sees dossiers: ambito, compartments, bases; None without section rights."""
    rights = section_rights(principal)
    if not rights:
        return None
    compartments = [Dossier.compartment == Compartment.ordinary]
    compartments += [Dossier.compartment == c for c, s in COMPARTMENT_SECTION.items() if s in rights]
    return Visibility(
        common=[Dossier.ambito_id == principal.ambito_id, or_(*compartments)],
        bases=_bases(principal, now),
    )


def member_pools(principal: Principal, now: Moment) -> Select[uuid.UUID]:
    """The active pools the principal is a member of."""
    return (
        select(PoolMember.pool_id)
        .join(Pool, Pool.id == PoolMember.pool_id)
        .where(*_member_of_pool(_party(principal), now))
        .distinct()
    )


def routed_to_pool_conditions(
    principal: Principal, now: Moment, routing: type[DossierRouting]
) -> list[ColumnElement[bool]]:
    """With `routing` (an alias of DossierRouting) joined to Dossier: the pool basis for a routing
    to one of `member_pools` (in force, not declined, and consent covering the principal)."""
    return [*_routing_in_force(principal, routing), _consent_covers(principal, now)]


def participating_conditions(principal: Principal, now: Moment) -> list[ColumnElement[bool]]:
    """With DossierParticipant joined to Dossier: the participant basis (the principal's
    organization takes part now, and consent covers it)."""
    return [*_participating(principal, now), _consent_covers(principal, now)]


def section_visible(principal: Principal, section: Section, now: datetime) -> ColumnElement[bool]:
    """SQL on Dossier: visible *and* this section readable (a participant's sections may be narrower)."""
    if section not in section_rights(principal):
        return false()
    bases = _bases(principal, now)
    participant_with_section = and_(
        exists().where(
            DossierParticipant.dossier_id == Dossier.id,
            *_participating(principal, now),
            or_(
                DossierParticipant.sections == cast([], ARRAY(String(20))),
                literal(section.value) == any_(DossierParticipant.sections),
            ),
        ),
        _consent_covers(principal, now),
    )
    full = [condition for name, condition in bases.items() if name != "participant"]
    return and_(visible(principal, now), or_(*full, participant_with_section))


def label_visible_condition(
    principal: Principal, label: ConfidentialityLabel, now: Moment
) -> ColumnElement[bool]:
    """SQL on Dossier: the principal may see this special category of the dossier's person."""
    if LABEL_SECTION[label] not in section_rights(principal):
        return false()
    return exists().where(
        Consent.person_id == Dossier.person_id,
        literal(label.value) == any_(Consent.labels),
        *_active_consent(principal, now),
    )


# ---------------------------------------------------------------------------------------------
# Reads that show no content: gated by an action, scoped to the ambito, never a made-up principal


async def dossier_for_action(
    session: AsyncSession,
    principal: Principal,
    dossier_id: uuid.UUID,
    action: Action,
    *,
    for_update: bool = False,
) -> Dossier:
    """A dossier of the principal's ambito for an action that shows none of its content (the
    coordinator's routing of it, the DPO's look at its access log); DossierNotFound otherwise."""
    require(principal, action)
    statement = select(Dossier).where(Dossier.id == dossier_id)
    return await _in_ambito(session, principal, statement.with_for_update() if for_update else statement)


def ambito_rows(principal: Principal, action: Action, ambito_column: Any) -> ColumnElement[bool]:
    """SQL: the rows of the principal's ambito that an oversight action lists (ids, states,
    deadlines: no content), after requiring the action."""
    require(principal, action)
    in_ambito: ColumnElement[bool] = ambito_column == principal.ambito_id
    return in_ambito


async def break_glass_target(
    session: AsyncSession,
    principal: Principal,
    *,
    dossier_id: uuid.UUID | None,
    fiscal_code: str | None,
) -> Dossier:
    """The dossier an emergency access asks for, by id or by the person's codice fiscale, in the
    principal's ambito; DossierNotFound otherwise. Opening it is the caller's (reasoned, bounded)."""
    require(principal, Action.open_break_glass)
    statement = select(Dossier)
    if dossier_id is not None:
        statement = statement.where(Dossier.id == dossier_id)
    else:
        statement = statement.join(Person, Person.id == Dossier.person_id).where(
            Person.fiscal_code == fiscal_code
        )
    return await _in_ambito(session, principal, statement)


async def _in_ambito(session: AsyncSession, principal: Principal, statement: Select[Dossier]) -> Dossier:
    """The one dossier the statement finds in the principal's ambito; DossierNotFound otherwise."""
    dossier = await session.scalar(statement.where(Dossier.ambito_id == principal.ambito_id))
    if dossier is None:
        raise DossierNotFound()
    return dossier


async def organization_concerned(
    session: AsyncSession, organization: Organization, dossier: Dossier, now: datetime
) -> bool:
    """Whether a dossier concerns an organization now, for the events it is sent (ids only
    travel, still not to strangers): the Ufficio di Piano, the residence comune, and the
    organizations with a pool or participant basis on it."""
    if organization.kind == OrganizationKind.ufficio_di_piano:
        return True
    if organization.kind == OrganizationKind.comune and organization.comune_id == dossier.residence_comune_id:
        return True
    party = Party(organization.id, OrganizationKind(organization.kind))
    bases = _organization_bases(party, now).values()
    return bool(await session.scalar(select(exists().where(Dossier.id == dossier.id, or_(*bases)))))


# ---------------------------------------------------------------------------------------------
# One dossier


@dataclass(frozen=True)
class DossierAccess:
    """A dossier the principal may see, with what it may see of it."""

    dossier: Dossier
    principal: Principal
    bases: frozenset[str]
    sections: SectionRights
    labels: frozenset[ConfidentialityLabel] = field(default_factory=frozenset)

    def can_read(self, section: Section) -> bool:
        return section in self.sections

    def can_write(self, section: Section) -> bool:
        return self.sections.get(section) == WRITE

    def require(self, section: Section, *, write: bool = False) -> None:
        """403 unless the section is readable (or, with `write`, modifiable) for this principal."""
        if not self.can_read(section):
            raise SectionForbidden(
                f"You may not see the {section.value} section of this dossier.",
                detail_it=f"Non puoi vedere la sezione «{section.value}» di questa cartella.",
            )
        if write and not self.can_write(section):
            raise SectionNotModifiable(
                f"You may read the {section.value} section of this dossier, not change it.",
                detail_it=f"Puoi leggere la sezione «{section.value}» di questa cartella, non modificarla.",
            )

    @property
    def is_institutional(self) -> bool:
        """Case manager or social worker of the residence comune: may manage the case itself."""
        return not self.bases.isdisjoint({"case_manager", "residence"})

    def label_visible(
        self, label: ConfidentialityLabel | str | None, author_organization_id: uuid.UUID | None = None
    ) -> bool:
        if label is None:
            return True
        label = ConfidentialityLabel(label)
        if author_organization_id == self.principal.organization_id and self.can_read(LABEL_SECTION[label]):
            return True
        return label in self.labels

    def visible_need_areas(self, areas: list[str]) -> list[str]:
        return [a for a in areas if self.label_visible(NEED_AREA_LABEL.get(NeedArea(a)))]

    def label_condition(self, label_column: Any, author_column: Any = None) -> ColumnElement[bool]:
        """SQL: a row with this label column is visible (the same rule as `label_visible`)."""
        options: list[ColumnElement[bool]] = [label_column.is_(None)]
        if self.labels:
            options.append(label_column.in_([label.value for label in self.labels]))
        if author_column is not None:
            own = [label.value for label, section in LABEL_SECTION.items() if section in self.sections]
            if own:
                options.append(and_(author_column == self.principal.organization_id, label_column.in_(own)))
        return or_(*options)

    def labels_subset_condition(self, labels_column: Any, author_column: Any) -> ColumnElement[bool]:
        """SQL for rows carrying an array of labels (referrals): all of them visible, or our own."""
        visible_labels = [label.value for label in self.labels]
        return or_(
            labels_column.contained_by(cast(visible_labels, ARRAY(String(3)))),
            author_column == self.principal.organization_id,
        )


class DossierNotFound(NotFound):
    slug = "dossier-not-found"
    title_en = "Dossier not found"
    title_it = "Cartella non trovata"


class SectionForbidden(Forbidden):
    slug = "section-forbidden"
    title_en = "This section of the dossier is not visible to you"
    title_it = "Questa sezione della cartella non è visibile per il tuo ruolo"


class SectionNotModifiable(Forbidden):
    slug = "section-read-only"
    title_en = "This section of the dossier is not modifiable by you"
    title_it = "Questa sezione della cartella non è modificabile per il tuo ruolo"


async def load_dossier(
    session: AsyncSession,
    principal: Principal,
    dossier_id: uuid.UUID,
    *,
    now: datetime,
    for_update: bool = False,
) -> DossierAccess:
    """The dossier with what the principal may see of it; DossierNotFound if it may see nothing."""
    rights = section_rights(principal)
    if not rights:
        raise DossierNotFound()
    bases = _bases(principal, now)
    statement = select(Dossier, *[condition.label(name) for name, condition in bases.items()]).where(
        Dossier.id == dossier_id, visible(principal, now)
    )
    if for_update:
        statement = statement.with_for_update(of=Dossier)
    row = (await session.execute(statement)).one_or_none()
    if row is None:
        raise DossierNotFound()
    dossier = row[0]
    held = frozenset(name for name, flag in zip(bases, row[1:], strict=True) if flag)
    sections = await _effective_sections(session, principal, dossier, held, rights, now)
    labels = await _visible_labels(session, principal, dossier, sections, now)
    return DossierAccess(dossier=dossier, principal=principal, bases=held, sections=sections, labels=labels)


async def _effective_sections(
    session: AsyncSession,
    principal: Principal,
    dossier: Dossier,
    bases: frozenset[str],
    rights: SectionRights,
    now: datetime,
) -> SectionRights:
    if not bases.isdisjoint({"case_manager", "residence", "break_glass", "pool"}):
        return dict(rights)  # the pool takes charge together: every phase is shared
    # Participants only: the role's rights, narrowed to the sections of their participations.
    caps = (
        await session.scalars(
            select(DossierParticipant.sections).where(
                DossierParticipant.dossier_id == dossier.id, *_participating(principal, now)
            )
        )
    ).all()
    allowed: set[str] = set()
    for cap in caps:
        allowed |= set(cap) if cap else set(_ALL_SECTIONS)
    return {section: right for section, right in rights.items() if section.value in allowed}


async def _visible_labels(
    session: AsyncSession, principal: Principal, dossier: Dossier, sections: SectionRights, now: datetime
) -> frozenset[ConfidentialityLabel]:
    """Special categories shown: their section is readable and the citizen consented to share them
    with the principal's organization. Break-the-glass alone does not open them."""
    candidates = [label for label, section in LABEL_SECTION.items() if section in sections]
    if not candidates:
        return frozenset()
    consented = (
        await session.scalars(
            select(Consent.labels).where(
                Consent.person_id == dossier.person_id, *_active_consent(principal, now)
            )
        )
    ).all()
    granted = {label for labels in consented for label in labels}
    return frozenset(label for label in candidates if label.value in granted)
