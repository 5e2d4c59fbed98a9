"""The states of a dossier (DESIGN §3): the graph, its guards, opening from a referral, transitions."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import AuditAction, Compartment, DossierState, Urgency
from app.core.principal import Principal
from app.core.problems import Conflict, Forbidden, field_error
from app.models import Dossier, Person
from app.schemas.intake import TransitionCreate
from app.services.access import audit
from app.services.access.policy import DossierAccess, load_dossier
from app.services.dossiers.views import DossierView, view_of
from app.services.events.outbox import emit
from app.services.events.timeline import add_event

S = DossierState
SIDE_EXITS = frozenset({S.reindirizzato, S.ritirato, S.trasferito})
TERMINAL = frozenset({S.chiuso}) | SIDE_EXITS
OPEN = frozenset(S) - TERMINAL

# DESIGN §3. Side exits are possible from every open state; a closed dossier reopens only with
# a new referral, never through this graph.
TRANSITIONS: dict[DossierState, frozenset[DossierState]] = {
    S.segnalato: frozenset({S.in_valutazione}) | SIDE_EXITS,
    S.in_valutazione: frozenset({S.in_pool}) | SIDE_EXITS,
    S.in_pool: frozenset({S.progetto_attivo}) | SIDE_EXITS,
    S.progetto_attivo: frozenset({S.in_pool, S.sospeso, S.valutazione_finale}) | SIDE_EXITS,
    S.sospeso: frozenset({S.progetto_attivo}) | SIDE_EXITS,
    S.valutazione_finale: frozenset({S.chiuso}) | SIDE_EXITS,
    **{state: frozenset() for state in TERMINAL},
}

URGENCY_ORDER = [Urgency.ordinaria, Urgency.prioritaria, Urgency.urgente]


class TransitionNotAllowed(Conflict):
    slug = "transition-not-allowed"
    title_en = "This change of state is not allowed"
    title_it = "Passaggio di stato non consentito"


class GuardFailed(Conflict):
    slug = "transition-guard"
    title_en = "The dossier is not ready for this state"
    title_it = "La cartella non è pronta per questo stato"


# ---------------------------------------------------------------------------------------------
# Opening a dossier from a referral


@dataclass(frozen=True)
class Opened:
    dossier: Dossier
    created: bool
    reopened: bool


# access: a referral opens or reuses the person's dossier; what its submitter learns is intake's
async def open_for_referral(
    session: AsyncSession,
    *,
    principal: Principal,
    person: Person,
    need_areas: Sequence[str],
    urgency: Urgency,
    compartment: Compartment,
    now: datetime,
) -> Opened:
    """One dossier per person per ambito: reuse it (reopening a closed one) or create it."""
    # The person's row lock serialises concurrent referrals about someone without a dossier yet.
    await session.execute(select(Person.id).where(Person.id == person.id).with_for_update())
    dossier = await session.scalar(
        select(Dossier)
        .where(Dossier.ambito_id == person.ambito_id, Dossier.person_id == person.id)
        .with_for_update()
    )
    if dossier is None:
        dossier = Dossier(
            ambito_id=person.ambito_id,
            person_id=person.id,
            state=S.segnalato,
            compartment=compartment,
            need_areas=sorted(set(need_areas)),
            urgency=urgency,
            residence_comune_id=person.residence_comune_id,
            opened_at=now,
        )
        session.add(dossier)
        await session.flush()
        return Opened(dossier=dossier, created=True, reopened=False)
    previous = dossier.state
    reopened = previous in TERMINAL
    if reopened:
        await add_event(
            session,
            dossier,
            "reopened",
            principal=principal,
            now=now,
            from_state=previous,
            to_state=S.segnalato,
        )
        dossier.state = S.segnalato
        dossier.opened_at = now
        dossier.closed_at = None
        dossier.outcome = None
        dossier.follow_up_on = None
        await emit(
            session, dossier, "dossier.state_changed", now=now, from_state=previous, to_state=S.segnalato
        )
    dossier.need_areas = sorted(set(dossier.need_areas) | set(need_areas))
    dossier.urgency = max(dossier.urgency, urgency, key=URGENCY_ORDER.index)
    if dossier.compartment == Compartment.ordinary and compartment != Compartment.ordinary:
        dossier.compartment = compartment
    await session.flush()
    return Opened(dossier=dossier, created=False, reopened=reopened)


def require_case_management(access: DossierAccess) -> None:
    """Refuse unless the access is institutional (case manager or residence comune's workers)."""
    if not access.is_institutional:
        raise Forbidden(
            "Only the case manager or the social workers of the residence comune manage the case."
        )


async def transition(
    session: AsyncSession,
    principal: Principal,
    dossier_id: uuid.UUID,
    data: TransitionCreate,
    *,
    now: datetime,
) -> DossierView:
    """Move a dossier to another state along the allowed transitions; case management only."""
    access = await load_dossier(session, principal, dossier_id, now=now, for_update=True)
    require_case_management(access)
    dossier = access.dossier
    allowed = TRANSITIONS[dossier.state]
    if data.to not in allowed:
        raise TransitionNotAllowed(
            f"From {dossier.state.value} the dossier can go to: {', '.join(sorted(allowed)) or 'nothing'}.",
            extra={"allowed": sorted(allowed), "state": dossier.state},
        )
    if data.fast_track and (dossier.state, data.to) != (S.in_valutazione, S.in_pool):
        raise field_error("body.fast_track", "The fast track is in_valutazione → in_pool only", "fast_track")
    await _check_guards(session, dossier, data.to)
    previous = dossier.state
    dossier.state = data.to
    if data.to in TERMINAL:
        dossier.closed_at = now
        dossier.outcome = data.outcome
        dossier.follow_up_on = data.follow_up_on
    await add_event(
        session,
        dossier,
        "transition",
        principal=principal,
        now=now,
        from_state=previous,
        to_state=data.to,
        reason=data.reason,
        data={"fast_track": data.fast_track},
    )
    await emit(session, dossier, "dossier.state_changed", now=now, from_state=previous, to_state=data.to)
    await session.flush()
    await audit.record(
        session,
        principal,
        action=AuditAction.transition,
        resource_type="dossier",
        resource_id=dossier.id,
        dossier_id=dossier.id,
        now=now,
    )
    return await view_of(session, access)


# ---------------------------------------------------------------------------------------------
# Guards: what a state needs of other domains. Those domains sit above this one and register
# their check here (`guard`); a state whose guard is not registered is refused, never let through.

Guard = Callable[[AsyncSession, Dossier], Awaitable[str | None]]
"""Answers why the dossier may not enter the state, or None when it may."""

REQUIRED_GUARDS: dict[DossierState, frozenset[str]] = {
    S.progetto_attivo: frozenset({"agreed_plan"}),
    S.chiuso: frozenset({"ex_post_evaluation"}),
}
_GUARDS: dict[DossierState, dict[str, Guard]] = {}


def guard(state: DossierState, name: str) -> Callable[[Guard], Guard]:
    """Register `name`, one of REQUIRED_GUARDS[state], as the check a dossier passes to enter `state`."""
    if name not in REQUIRED_GUARDS.get(state, frozenset()):
        raise ValueError(f"{name} is not a guard of {state.value}")

    def register(check: Guard) -> Guard:
        _GUARDS.setdefault(state, {})[name] = check
        return check

    return register


# Plans are not built yet (issue 18 registers the real check in its place): nothing enters
# progetto_attivo, and the refusal says what will be needed.
@guard(S.progetto_attivo, "agreed_plan")
async def _no_plans_yet(session: AsyncSession, dossier: Dossier) -> str | None:
    return "An agreed plan with an objective, a strategy and the commitments is needed first."


async def _check_guards(session: AsyncSession, dossier: Dossier, state: DossierState) -> None:
    registered = _GUARDS.get(state, {})
    for name in sorted(REQUIRED_GUARDS.get(state, frozenset())):
        check = registered.get(name)
        refusal = (
            f"The {name} check of {state.value} is not available."
            if check is None
            else await check(session, dossier)
        )
        if refusal is not None:
            raise GuardFailed(refusal, extra={"guard": name})
