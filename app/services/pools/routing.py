"""Routing: which pools take a dossier, why, and each member organization's answer.

Rules are data (`routing_rule`): conditions on the residence comune, the need areas (any of),
the urgency and the age band; a priority; the target pools. Every active rule is evaluated and
each one explains itself, condition by condition. A dossier goes to the targets of every matching
rule that can take it: the pool is active, covers the person's comune, and — for dossiers in the
violence or judicial compartment — is one made for them (area violenza / minori). No match puts the
dossier in the coordinator's queue; it never goes nowhere.

Routing a dossier asks each member organization covered by the citizen's consent for its part
(`routing_task`: requested → accepted | declined → completed), due in the pool's working days.
An unanswered task past its due time is overdue: it shows in the coordinator's queue and in the
worklist, computed from the clock, so a test moves the clock instead of sleeping.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import any_, exists, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.core.calendar import add_working_days
from app.core.enums import AuditAction, Compartment, ConsentPurpose, NeedArea, PoolArea, TaskStatus, Urgency
from app.core.principal import Principal
from app.core.problems import Conflict, Forbidden, NotFound, field_error
from app.models import (
    Comune,
    Consent,
    Dossier,
    DossierRouting,
    Organization,
    Person,
    Pool,
    PoolComune,
    PoolMember,
    Referral,
    RoutingRule,
    RoutingTask,
)
from app.schemas.pools import (
    ConditionCheck,
    PoolChoice,
    RoutingPreview,
    RoutingPreviewRequest,
    RuleEvaluationRead,
)
from app.services.access import audit
from app.services.access.actions import Action, allowed
from app.services.access.policy import (
    NEED_AREA_LABEL,
    DossierAccess,
    DossierNotFound,
    ambito_rows,
    dossier_for_action,
    load_dossier,
    visible,
)
from app.services.dossiers.worklist import answer_overdue
from app.services.events.outbox import emit
from app.services.events.timeline import add_event

COMPARTMENT_AREAS: dict[Compartment, frozenset[PoolArea]] = {
    Compartment.violence: frozenset({PoolArea.violenza}),
    Compartment.judicial: frozenset({PoolArea.minori}),
}


class RoutingNotFound(NotFound):
    slug = "routing-not-found"
    title_en = "Routing not found"
    title_it = "Instradamento non trovato"


class TaskNotFound(NotFound):
    slug = "task-not-found"
    title_en = "Task not found"
    title_it = "Richiesta non trovata"


class TaskStateConflict(Conflict):
    slug = "task-state"
    title_en = "The task is not in a state that allows this"
    title_it = "La richiesta non è in uno stato che lo consente"


# ---------------------------------------------------------------------------------------------
# The engine (pure: facts in, decision out)


@dataclass(frozen=True)
class Facts:
    ambito_id: uuid.UUID
    comune_id: uuid.UUID
    comune_name: str
    need_areas: frozenset[str]
    urgency: Urgency
    age: int | None
    compartment: Compartment
    today: date


@dataclass
class Decision:
    evaluations: list[RuleEvaluationRead]
    chosen: list[PoolChoice] = field(default_factory=list)
    skipped: list[PoolChoice] = field(default_factory=list)

    @property
    def summary(self) -> str:
        if not self.chosen:
            return "Nessuna regola assegna un pool: la cartella va nella coda del coordinamento."
        names = ", ".join(choice.name for choice in self.chosen)
        return f"Assegnata a: {names}."

    def explanation_for(self, pool_id: uuid.UUID) -> dict[str, Any]:
        choice = next(c for c in self.chosen if c.pool_id == pool_id)
        return {
            "rule_id": str(choice.rule_id),
            "summary": self.summary,
            "rules": [e.model_dump(mode="json") for e in self.evaluations],
        }


def age_on(birth_date: date | None, today: date) -> int | None:
    """A person's age in whole years on a day; None without a birth date."""
    if birth_date is None:
        return None
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


def evaluate(rule: RoutingRule, facts: Facts, comune_names: dict[uuid.UUID, str]) -> RuleEvaluationRead:
    """Check each condition of a routing rule against a dossier's facts, saying which matched."""
    checks: list[ConditionCheck] = []
    if rule.comune_ids:
        checks.append(
            ConditionCheck(
                condition="comune",
                expected=[comune_names.get(c, str(c)) for c in rule.comune_ids],
                actual=facts.comune_name,
                matched=facts.comune_id in rule.comune_ids,
            )
        )
    if rule.need_areas:
        checks.append(
            ConditionCheck(
                condition="need_areas",
                expected=list(rule.need_areas),
                actual=", ".join(sorted(facts.need_areas)),
                matched=not facts.need_areas.isdisjoint(rule.need_areas),
            )
        )
    if rule.urgencies:
        checks.append(
            ConditionCheck(
                condition="urgency",
                expected=list(rule.urgencies),
                actual=facts.urgency.value,
                matched=facts.urgency.value in rule.urgencies,
            )
        )
    if rule.min_age is not None or rule.max_age is not None:
        low = rule.min_age if rule.min_age is not None else 0
        high = rule.max_age if rule.max_age is not None else "∞"
        band = f"{low}-{high}"
        in_band = facts.age is not None and (
            (rule.min_age is None or facts.age >= rule.min_age)
            and (rule.max_age is None or facts.age <= rule.max_age)
        )
        checks.append(
            ConditionCheck(
                condition="age",
                expected=[band],
                actual=str(facts.age) if facts.age is not None else None,
                matched=in_band,
            )
        )
    matched = all(check.matched for check in checks)
    failed = [c.condition for c in checks if not c.matched]
    explanation = (
        f"La regola «{rule.name}» si applica."
        if matched
        else f"La regola «{rule.name}» non si applica: {', '.join(failed)} non corrisponde."
    )
    return RuleEvaluationRead(
        rule_id=rule.id,
        name=rule.name,
        priority=rule.priority,
        matched=matched,
        checks=checks,
        explanation=explanation,
    )


async def decide(session: AsyncSession, facts: Facts) -> Decision:
    """Try the ambito's active routing rules in order on the facts, keeping every evaluation."""
    rules = (
        await session.scalars(
            select(RoutingRule)
            .where(RoutingRule.ambito_id == facts.ambito_id, RoutingRule.active)
            .order_by(RoutingRule.priority, RoutingRule.id)
        )
    ).all()
    comune_ids = {c for rule in rules for c in rule.comune_ids} | {facts.comune_id}
    comune_names = dict(
        (await session.execute(select(Comune.id, Comune.name).where(Comune.id.in_(comune_ids)))).all()
    )
    decision = Decision(evaluations=[evaluate(rule, facts, comune_names) for rule in rules])
    targets = [
        (e.rule_id, pool_id)
        for e, rule in zip(decision.evaluations, rules, strict=True)
        if e.matched
        for pool_id in rule.target_pool_ids
    ]
    pools = {
        pool.id: pool
        for pool in (await session.scalars(select(Pool).where(Pool.id.in_([p for _, p in targets])))).all()
    }
    territory = set(
        (
            await session.scalars(
                select(PoolComune.pool_id).where(
                    PoolComune.pool_id.in_(list(pools)), PoolComune.comune_id == facts.comune_id
                )
            )
        ).all()
    )
    seen: set[uuid.UUID] = set()
    for rule_id, pool_id in targets:
        if pool_id in seen:
            continue
        seen.add(pool_id)
        pool = pools.get(pool_id)
        if pool is None:
            continue
        note = None
        if pool.active_from > facts.today or (
            pool.active_until is not None and pool.active_until < facts.today
        ):
            note = "Il pool non è attivo in questo periodo."
        elif pool_id not in territory:
            note = f"Il pool non copre il comune di {facts.comune_name}."
        elif facts.compartment in COMPARTMENT_AREAS and pool.area not in COMPARTMENT_AREAS[facts.compartment]:
            note = "Cartella riservata: va solo ai pool dedicati (VIOLA, Gruppo Minori)."
        choice = PoolChoice(pool_id=pool.id, name=pool.name, rule_id=rule_id, note=note)
        (decision.skipped if note else decision.chosen).append(choice)
    return decision


# ---------------------------------------------------------------------------------------------
# Preview, and routing a dossier


async def preview(
    session: AsyncSession, principal: Principal, data: RoutingPreviewRequest, *, now: datetime
) -> RoutingPreview:
    """What the routing rules would decide for hypothetical facts, without a dossier."""
    comune = await session.scalar(
        select(Comune).where(
            Comune.ambito_id == principal.ambito_id, Comune.istat_code == data.residence_comune_istat
        )
    )
    if comune is None:
        raise field_error("body.residence_comune_istat", "Not a comune of this ambito", "unknown")
    facts = Facts(
        ambito_id=principal.ambito_id,
        comune_id=comune.id,
        comune_name=comune.name,
        need_areas=frozenset(a.value for a in data.need_areas),
        urgency=data.urgency,
        age=age_on(data.birth_date, now.date()),
        compartment=data.compartment,
        today=now.date(),
    )
    decision = await decide(session, facts)
    return RoutingPreview(
        pools=decision.chosen, skipped=decision.skipped, rules=decision.evaluations, summary=decision.summary
    )


# access: the routing engine's inputs, for a dossier its caller holds
async def facts_for(session: AsyncSession, dossier: Dossier, *, now: datetime) -> Facts:
    """The facts routing rules look at, taken from a dossier and its person."""
    person = await session.get_one(Person, dossier.person_id)
    comune = await session.get_one(Comune, dossier.residence_comune_id)
    return Facts(
        ambito_id=dossier.ambito_id,
        comune_id=comune.id,
        comune_name=comune.name,
        need_areas=frozenset(dossier.need_areas),
        urgency=Urgency(dossier.urgency),
        age=age_on(person.birth_date, now.date()),
        compartment=Compartment(dossier.compartment),
        today=now.date(),
    )


# access: routes a dossier its referral just opened; shows nothing
async def route_referral(
    session: AsyncSession, principal: Principal, dossier: Dossier, referral: Referral, *, now: datetime
) -> Decision:
    """Run the rules for a dossier that just received a referral; route it, or queue it."""
    decision = await decide(session, await facts_for(session, dossier, now=now))
    active = set(
        (
            await session.scalars(
                select(DossierRouting.pool_id).where(
                    DossierRouting.dossier_id == dossier.id, DossierRouting.ended_at.is_(None)
                )
            )
        ).all()
    )
    for choice in decision.chosen:
        if choice.pool_id not in active:
            pool = await session.get_one(Pool, choice.pool_id)
            await _route(
                session,
                principal,
                dossier,
                pool,
                now=now,
                rule_id=choice.rule_id,
                referral_id=referral.id,
                explanation=decision.explanation_for(choice.pool_id),
            )
    if not decision.chosen and not active:
        await _set_awaiting(session, dossier, True)
        await add_event(
            session,
            dossier,
            "routing_unmatched",
            principal=principal,
            now=now,
            data={"referral_id": str(referral.id), "summary": decision.summary},
        )
    await session.flush()
    return decision


async def _route(
    session: AsyncSession,
    principal: Principal,
    dossier: Dossier,
    pool: Pool,
    *,
    now: datetime,
    rule_id: uuid.UUID | None = None,
    referral_id: uuid.UUID | None = None,
    explanation: dict[str, Any],
    reason: str | None = None,
) -> DossierRouting:
    routing = DossierRouting(
        ambito_id=dossier.ambito_id,
        dossier_id=dossier.id,
        pool_id=pool.id,
        rule_id=rule_id,
        referral_id=referral_id,
        explanation=explanation,
        routed_at=now,
        routed_by_user_id=principal.user_id if rule_id is None else None,
        reason=reason,
    )
    session.add(routing)
    await session.flush()
    organizations = await _consenting_members(session, dossier, pool, now=now)
    due = add_working_days(now, pool.response_days)
    for organization_id in organizations:
        session.add(
            RoutingTask(
                ambito_id=dossier.ambito_id,
                routing_id=routing.id,
                dossier_id=dossier.id,
                pool_id=pool.id,
                organization_id=organization_id,
                status=TaskStatus.requested,
                due_at=due,
                created_at=now,
            )
        )
    await _set_awaiting(session, dossier, False)
    await add_event(
        session,
        dossier,
        "routed",
        principal=principal,
        now=now,
        reason=reason,
        data={
            "routing_id": str(routing.id),
            "pool_id": str(pool.id),
            "pool": pool.name,
            "rule_id": str(rule_id) if rule_id else None,
            "summary": explanation.get("summary"),
            "organizations_asked": [str(o) for o in organizations],
        },
    )
    await emit(
        session,
        dossier,
        "dossier.routed",
        now=now,
        routing_id=str(routing.id),
        pool_id=str(pool.id),
        state=dossier.state,
    )
    await session.flush()
    return routing


# access: routes a dossier its caller holds; shows nothing
async def ensure_area(
    session: AsyncSession,
    principal: Principal,
    dossier: Dossier,
    area: PoolArea,
    reason: str,
    *,
    now: datetime,
) -> uuid.UUID | None:
    """Make sure the dossier is routed to an active pool of this area covering the person's comune
    (a protected discharge goes to home care whatever the rules say). Returns that pool's id."""
    today = now.date()
    pool = await session.scalar(
        select(Pool)
        .join(PoolComune, PoolComune.pool_id == Pool.id)
        .where(
            Pool.ambito_id == dossier.ambito_id,
            Pool.area == area,
            PoolComune.comune_id == dossier.residence_comune_id,
            Pool.active_from <= today,
            or_(Pool.active_until.is_(None), Pool.active_until >= today),
        )
        .order_by(Pool.name)
        .limit(1)
    )
    if pool is None:
        return None
    already = await session.scalar(
        select(
            exists().where(
                DossierRouting.dossier_id == dossier.id,
                DossierRouting.pool_id == pool.id,
                DossierRouting.ended_at.is_(None),
            )
        )
    )
    if not already:
        await _route(
            session,
            principal,
            dossier,
            pool,
            now=now,
            explanation={"summary": reason, "by_event": True},
            reason=reason,
        )
    return pool.id


async def _set_awaiting(session: AsyncSession, dossier: Dossier, awaiting: bool) -> None:
    """A queue flag, not a change of the dossier: it must not bump the version (the ETag)."""
    if dossier.awaiting_routing != awaiting:
        flag = update(Dossier).where(Dossier.id == dossier.id).values(awaiting_routing=awaiting)
        await session.execute(flag)
        set_committed_value(dossier, "awaiting_routing", awaiting)


# access: which members the consent covers, to open their tasks; shows nothing
async def _consenting_members(
    session: AsyncSession, dossier: Dossier, pool: Pool, *, now: datetime
) -> list[uuid.UUID]:
    """Member organizations whose kind (or name) the citizen's consent covers: only they are asked."""
    rows = (
        await session.execute(
            select(Organization.id, Organization.kind)
            .join(PoolMember, PoolMember.organization_id == Organization.id)
            .where(PoolMember.pool_id == pool.id, PoolMember.removed_at.is_(None), Organization.active)
            .distinct()
        )
    ).all()
    consents = (
        await session.execute(
            select(Consent.organization_kinds, Consent.organization_ids).where(
                Consent.person_id == dossier.person_id,
                Consent.revoked_at.is_(None),
                or_(Consent.expires_on.is_(None), Consent.expires_on >= now.date()),
                literal(ConsentPurpose.presa_in_carico.value) == any_(Consent.purposes),
            )
        )
    ).all()
    kinds = {k for row in consents for k in row.organization_kinds}
    ids = {i for row in consents for i in row.organization_ids}
    return sorted(
        organization_id for organization_id, kind in rows if kind in kinds or organization_id in ids
    )


# ---------------------------------------------------------------------------------------------
# Coordinator overrides


async def _for_routing(
    session: AsyncSession, principal: Principal, dossier_id: uuid.UUID, *, now: datetime
) -> Dossier:
    """The dossier as the coordinator handles it: only its routing, none of its content."""
    if allowed(principal, Action.oversee_routing):
        return await dossier_for_action(
            session, principal, dossier_id, Action.oversee_routing, for_update=True
        )
    await load_dossier(session, principal, dossier_id, now=now)  # 404 if invisible
    raise Forbidden("Routing is changed by the Ufficio di Piano's coordinators.")


async def add_routing(
    session: AsyncSession,
    principal: Principal,
    dossier_id: uuid.UUID,
    pool_id: uuid.UUID,
    reason: str,
    *,
    now: datetime,
) -> DossierRouting:
    """Route a dossier to a pool of its ambito, with the reason."""
    dossier = await _for_routing(session, principal, dossier_id, now=now)
    pool = await session.get(Pool, pool_id)
    if pool is None or pool.ambito_id != dossier.ambito_id:
        raise field_error("body.pool_id", "Not a pool of the ambito", "unknown")
    if (
        dossier.compartment in COMPARTMENT_AREAS
        and pool.area not in COMPARTMENT_AREAS[Compartment(dossier.compartment)]
    ):
        raise field_error(
            "body.pool_id", "A reserved dossier goes only to the pools made for it", "compartment"
        )
    already = await session.scalar(
        select(
            exists().where(
                DossierRouting.dossier_id == dossier.id,
                DossierRouting.pool_id == pool.id,
                DossierRouting.ended_at.is_(None),
            )
        )
    )
    if already:
        raise Conflict("The dossier is already routed to this pool.")
    routing = await _route(
        session,
        principal,
        dossier,
        pool,
        now=now,
        explanation={"summary": f"Assegnata dal coordinamento: {reason}", "override": True},
        reason=reason,
    )
    await audit.record(
        session,
        principal,
        action=AuditAction.update,
        resource_type="routing",
        resource_id=routing.id,
        dossier_id=dossier.id,
        purpose="instradamento",
        now=now,
    )
    return routing


async def end_routing(
    session: AsyncSession,
    principal: Principal,
    dossier_id: uuid.UUID,
    routing_id: uuid.UUID,
    reason: str,
    *,
    now: datetime,
) -> DossierRouting:
    """End a dossier's routing to a pool, with the reason."""
    dossier = await _for_routing(session, principal, dossier_id, now=now)
    routing = await session.scalar(
        select(DossierRouting)
        .where(DossierRouting.id == routing_id, DossierRouting.dossier_id == dossier.id)
        .with_for_update()
    )
    if routing is None:
        raise RoutingNotFound()
    if routing.ended_at is None:
        routing.ended_at = now
        routing.ended_by_user_id = principal.user_id
        routing.end_reason = reason
        await session.execute(
            update(RoutingTask)
            .where(
                RoutingTask.routing_id == routing.id,
                RoutingTask.status.in_([TaskStatus.requested, TaskStatus.accepted]),
            )
            .values(status=TaskStatus.cancelled, answered_at=now, reason=reason)
        )
        await add_event(
            session,
            dossier,
            "routing_ended",
            principal=principal,
            now=now,
            reason=reason,
            data={"routing_id": str(routing.id), "pool_id": str(routing.pool_id)},
        )
        await emit(
            session,
            dossier,
            "dossier.routing_ended",
            now=now,
            routing_id=str(routing.id),
            pool_id=str(routing.pool_id),
        )
        await session.flush()
    await audit.record(
        session,
        principal,
        action=AuditAction.update,
        resource_type="routing",
        resource_id=routing.id,
        dossier_id=dossier.id,
        purpose="instradamento",
        now=now,
    )
    return routing


async def transfer_routing(
    session: AsyncSession,
    principal: Principal,
    dossier_id: uuid.UUID,
    routing_id: uuid.UUID,
    pool_id: uuid.UUID,
    reason: str,
    *,
    now: datetime,
) -> DossierRouting:
    """Move a dossier from one pool to another: end the routing and add a new one."""
    await end_routing(session, principal, dossier_id, routing_id, f"Trasferita: {reason}", now=now)
    return await add_routing(session, principal, dossier_id, pool_id, reason, now=now)


async def routings_of(
    session: AsyncSession, principal: Principal, dossier_id: uuid.UUID, *, now: datetime
) -> list[tuple[DossierRouting, Sequence[RoutingTask]]]:
    """A dossier's routings, each with its tasks."""
    if allowed(principal, Action.oversee_routing):
        # The coordinator reads the routings only: no row lock (_for_routing locks, to change them).
        dossier = await dossier_for_action(session, principal, dossier_id, Action.oversee_routing)
    else:
        dossier = (await load_dossier(session, principal, dossier_id, now=now)).dossier
    routings = (
        await session.scalars(
            select(DossierRouting).where(DossierRouting.dossier_id == dossier.id).order_by(DossierRouting.id)
        )
    ).all()
    tasks = (
        await session.scalars(
            select(RoutingTask).where(RoutingTask.dossier_id == dossier.id).order_by(RoutingTask.id)
        )
    ).all()
    await audit.record(
        session,
        principal,
        action=AuditAction.read,
        resource_type="routing",
        dossier_id=dossier.id,
        purpose="instradamento",
        now=now,
    )
    return [(r, [t for t in tasks if t.routing_id == r.id]) for r in routings]


# ---------------------------------------------------------------------------------------------
# Each agency answers for its part


async def _own_task(
    session: AsyncSession, principal: Principal, task_id: uuid.UUID, *, now: datetime
) -> tuple[RoutingTask, DossierAccess]:
    task = await session.scalar(select(RoutingTask).where(RoutingTask.id == task_id).with_for_update())
    if task is None or task.organization_id != principal.organization_id:
        raise TaskNotFound()
    try:
        access = await load_dossier(session, principal, task.dossier_id, now=now)
    except DossierNotFound:
        raise TaskNotFound() from None
    return task, access


_ANSWERS: dict[str, tuple[frozenset[TaskStatus], TaskStatus]] = {
    "accept": (frozenset({TaskStatus.requested}), TaskStatus.accepted),
    "decline": (frozenset({TaskStatus.requested, TaskStatus.accepted}), TaskStatus.declined),
    "complete": (frozenset({TaskStatus.accepted}), TaskStatus.completed),
}


async def answer(
    session: AsyncSession,
    principal: Principal,
    task_id: uuid.UUID,
    verb: str,
    *,
    reason: str | None,
    now: datetime,
) -> RoutingTask:
    """Accept, decline or complete a routing task of the principal's organization, if its status allows."""
    task, access = await _own_task(session, principal, task_id, now=now)
    allowed_from, to = _ANSWERS[verb]
    if task.status not in allowed_from:
        raise TaskStateConflict(
            f"A {task.status.value} task cannot be {to.value}.", extra={"status": task.status}
        )
    task.status = to
    task.answered_at = now
    task.answered_by_kind = principal.kind
    task.answered_by_id = principal.id
    if reason is not None:
        task.reason = reason
    await add_event(
        session,
        access.dossier,
        f"routing_task_{to.value}",
        principal=principal,
        now=now,
        reason=reason,
        data={
            "task_id": str(task.id),
            "pool_id": str(task.pool_id),
            "organization_id": str(task.organization_id),
        },
    )
    await emit(
        session, access.dossier, "routing_task.updated", now=now, task_id=str(task.id), status=to.value
    )
    await session.flush()
    await audit.record(
        session,
        principal,
        action=AuditAction.update,
        resource_type="routing_task",
        resource_id=task.id,
        dossier_id=task.dossier_id,
        now=now,
    )
    return task


async def my_tasks(
    session: AsyncSession, principal: Principal, *, status: TaskStatus | None, now: datetime
) -> Sequence[RoutingTask]:
    """The routing tasks of the principal's organization on dossiers it sees, by due date."""
    statement = (
        select(RoutingTask)
        .join(Dossier, Dossier.id == RoutingTask.dossier_id)
        .where(RoutingTask.organization_id == principal.organization_id, visible(principal, now))
    )
    if status is not None:
        statement = statement.where(RoutingTask.status == status)
    return (await session.scalars(statement.order_by(RoutingTask.due_at, RoutingTask.id).limit(500))).all()


def is_overdue(task: RoutingTask, now: datetime) -> bool:
    """`dossiers.answer_overdue` for a task in hand."""
    return task.status == TaskStatus.requested and task.due_at <= now


# ---------------------------------------------------------------------------------------------
# The coordinator's queue


@dataclass(frozen=True)
class Unrouted:
    """A dossier no rule routed, as the coordinator sees it: its plain need areas, and only the
    fact that it has special categories (`shareable_need_areas`)."""

    dossier: Dossier
    need_areas: list[NeedArea]
    has_special_categories: bool


@dataclass(frozen=True)
class Queue:
    unrouted: Sequence[Unrouted]
    overdue: Sequence[RoutingTask]


async def coordinator_queue(session: AsyncSession, principal: Principal, *, now: datetime) -> Queue:
    """The coordinator's queue: the dossiers awaiting routing and the overdue tasks."""
    unrouted = (
        await session.scalars(
            select(Dossier)
            .where(
                ambito_rows(principal, Action.oversee_routing, Dossier.ambito_id), Dossier.awaiting_routing
            )
            .order_by(Dossier.id)
            .limit(500)
        )
    ).all()
    overdue = (
        await session.scalars(
            select(RoutingTask)
            .where(
                ambito_rows(principal, Action.oversee_routing, RoutingTask.ambito_id), *answer_overdue(now)
            )
            .order_by(RoutingTask.due_at, RoutingTask.id)
            .limit(500)
        )
    ).all()
    await audit.record(
        session,
        principal,
        action=AuditAction.list,
        resource_type="routing_queue",
        dossier_ids=[d.id for d in unrouted] + [t.dossier_id for t in overdue],  # in each one's access log
        now=now,
    )
    shown = [Unrouted(d, *shareable_need_areas(d.need_areas)) for d in unrouted]
    return Queue(unrouted=shown, overdue=overdue)


def shareable_need_areas(need_areas: Sequence[str]) -> tuple[list[NeedArea], bool]:
    """Need areas a coordinator may see: not the special categories (it only learns that there are some)."""
    plain = [NeedArea(a) for a in need_areas if NeedArea(a) not in NEED_AREA_LABEL]
    return plain, len(plain) != len(need_areas)
