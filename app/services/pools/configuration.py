"""Pools and routing rules: configured by the Ufficio di Piano's coordinators, visible to the ambito."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import NeedArea
from app.core.principal import Principal
from app.core.problems import Conflict, FieldError, NotFound, ValidationFailed, field_error
from app.models import Comune, Organization, Pool, PoolComune, PoolMember, RoutingRule, User
from app.schemas.pools import PoolCreate, PoolMemberCreate, PoolUpdate, RoutingRuleCreate, RoutingRuleUpdate
from app.services.access.actions import Action, require


class PoolNotFound(NotFound):
    slug = "pool-not-found"
    title_en = "Pool not found"
    title_it = "Pool non trovato"


class RuleNotFound(NotFound):
    slug = "rule-not-found"
    title_en = "Routing rule not found"
    title_it = "Regola di instradamento non trovata"


async def get_pool(session: AsyncSession, principal: Principal, pool_id: uuid.UUID) -> Pool:
    """A pool of the principal's ambito, or PoolNotFound."""
    pool = await session.get(Pool, pool_id)
    if pool is None or pool.ambito_id != principal.ambito_id:
        raise PoolNotFound()
    return pool


async def territory(session: AsyncSession, pool_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The comuni each of the given pools covers."""
    rows = (
        await session.execute(
            select(PoolComune.pool_id, PoolComune.comune_id).where(PoolComune.pool_id.in_(pool_ids))
        )
    ).all()
    result: dict[uuid.UUID, list[uuid.UUID]] = {p: [] for p in pool_ids}
    for pool_id, comune_id in rows:
        result[pool_id].append(comune_id)
    return result


async def members(session: AsyncSession, pool_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[PoolMember]]:
    """The members of each of the given pools."""
    rows = (
        await session.scalars(
            select(PoolMember).where(PoolMember.pool_id.in_(pool_ids)).order_by(PoolMember.id)
        )
    ).all()
    result: dict[uuid.UUID, list[PoolMember]] = {p: [] for p in pool_ids}
    for member in rows:
        result[member.pool_id].append(member)
    return result


async def list_pools(session: AsyncSession, principal: Principal) -> Sequence[Pool]:
    """The pools of the principal's ambito, by name."""
    return (
        await session.scalars(select(Pool).where(Pool.ambito_id == principal.ambito_id).order_by(Pool.name))
    ).all()


async def _check_comuni(
    session: AsyncSession, ambito_id: uuid.UUID, comune_ids: Sequence[uuid.UUID], field: str
) -> None:
    known = set(
        (
            await session.scalars(
                select(Comune.id).where(Comune.id.in_(comune_ids), Comune.ambito_id == ambito_id)
            )
        ).all()
    )
    errors = [
        FieldError(field=f"{field}.{i}", message="Not a comune of the ambito", code="unknown")
        for i, comune_id in enumerate(comune_ids)
        if comune_id not in known
    ]
    if errors:
        raise ValidationFailed(errors=errors)


async def create_pool(session: AsyncSession, principal: Principal, data: PoolCreate) -> Pool:
    """Create a pool in the ambito with its territory; pool configurators only."""
    require(principal, Action.configure_pools)
    if data.active_until is not None and data.active_until < data.active_from:
        raise field_error("body.active_until", "Before active_from", "date_order")
    await _check_comuni(session, principal.ambito_id, data.comune_ids, "body.comune_ids")
    pool = Pool(
        ambito_id=principal.ambito_id,
        name=data.name,
        area=data.area,
        active_from=data.active_from,
        active_until=data.active_until,
        response_days=data.response_days,
    )
    session.add(pool)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(
            errors=[FieldError(field="body.name", message="A pool with this name exists", code="duplicate")]
        ) from None
    session.add_all(
        PoolComune(pool_id=pool.id, comune_id=c, ambito_id=pool.ambito_id) for c in set(data.comune_ids)
    )
    await session.flush()
    return pool


async def update_pool(
    session: AsyncSession, principal: Principal, pool_id: uuid.UUID, data: PoolUpdate
) -> Pool:
    """Change a pool's name, end date, response days or territory; pool configurators only."""
    require(principal, Action.configure_pools)
    pool = await get_pool(session, principal, pool_id)
    if data.name is not None:
        pool.name = data.name
    if "active_until" in data.model_fields_set:
        if data.active_until is not None and data.active_until < pool.active_from:
            raise field_error("body.active_until", "Before active_from", "date_order")
        pool.active_until = data.active_until
    if data.response_days is not None:
        pool.response_days = data.response_days
    if data.comune_ids is not None:
        await _check_comuni(session, pool.ambito_id, data.comune_ids, "body.comune_ids")
        await session.execute(delete(PoolComune).where(PoolComune.pool_id == pool.id))
        session.add_all(
            PoolComune(pool_id=pool.id, comune_id=c, ambito_id=pool.ambito_id) for c in set(data.comune_ids)
        )
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(
            errors=[FieldError(field="body.name", message="A pool with this name exists", code="duplicate")]
        ) from None
    await session.refresh(pool)
    return pool


async def add_member(
    session: AsyncSession, principal: Principal, pool_id: uuid.UUID, data: PoolMemberCreate, *, now: datetime
) -> PoolMember:
    """Add an organization (or one of its users) to a pool; pool configurators only."""
    require(principal, Action.configure_pools)
    pool = await get_pool(session, principal, pool_id)
    organization = await session.get(Organization, data.organization_id)
    if organization is None or organization.ambito_id != pool.ambito_id:
        raise field_error("body.organization_id", "Not an organization of the ambito", "unknown")
    if data.user_id is not None:
        user = await session.get(User, data.user_id)
        if user is None or user.organization_id != organization.id:
            raise field_error("body.user_id", "Not a user of that organization", "unknown")
    member = PoolMember(
        ambito_id=pool.ambito_id,
        pool_id=pool.id,
        organization_id=organization.id,
        user_id=data.user_id,
        role=data.role,
        added_at=now,
    )
    session.add(member)
    await session.flush()
    return member


async def remove_member(
    session: AsyncSession, principal: Principal, pool_id: uuid.UUID, member_id: uuid.UUID, *, now: datetime
) -> PoolMember:
    """Its people stop seeing the pool's dossiers on their next request."""
    require(principal, Action.configure_pools)
    pool = await get_pool(session, principal, pool_id)
    member = await session.scalar(
        select(PoolMember).where(PoolMember.id == member_id, PoolMember.pool_id == pool.id)
    )
    if member is None:
        raise NotFound("No such member of this pool.")
    if member.removed_at is None:
        member.removed_at = now
        await session.flush()
    return member


# ---------------------------------------------------------------------------------------------
# Routing rules


async def list_rules(session: AsyncSession, principal: Principal) -> Sequence[RoutingRule]:
    """The routing rules of the principal's ambito, in the order they are tried."""
    return (
        await session.scalars(
            select(RoutingRule)
            .where(RoutingRule.ambito_id == principal.ambito_id)
            .order_by(RoutingRule.priority, RoutingRule.id)
        )
    ).all()


async def create_rule(session: AsyncSession, principal: Principal, data: RoutingRuleCreate) -> RoutingRule:
    """Create a routing rule with its conditions and target pools; pool configurators only."""
    require(principal, Action.configure_pools)
    if data.min_age is not None and data.max_age is not None and data.min_age > data.max_age:
        raise field_error("body.max_age", "Smaller than min_age", "age_band")
    await _check_comuni(session, principal.ambito_id, data.comune_ids, "body.comune_ids")
    pools = set(
        (
            await session.scalars(
                select(Pool.id).where(
                    Pool.id.in_(data.target_pool_ids), Pool.ambito_id == principal.ambito_id
                )
            )
        ).all()
    )
    unknown = [
        FieldError(field=f"body.target_pool_ids.{i}", message="Not a pool of the ambito", code="unknown")
        for i, pool_id in enumerate(data.target_pool_ids)
        if pool_id not in pools
    ]
    if unknown:
        raise ValidationFailed(errors=unknown)
    rule = RoutingRule(
        ambito_id=principal.ambito_id,
        name=data.name,
        priority=data.priority,
        active=data.active,
        comune_ids=list(dict.fromkeys(data.comune_ids)),
        need_areas=sorted({NeedArea(a).value for a in data.need_areas}),
        urgencies=sorted({u.value for u in data.urgencies}),
        min_age=data.min_age,
        max_age=data.max_age,
        target_pool_ids=list(dict.fromkeys(data.target_pool_ids)),
    )
    session.add(rule)
    await session.flush()
    return rule


async def update_rule(
    session: AsyncSession, principal: Principal, rule_id: uuid.UUID, data: RoutingRuleUpdate
) -> RoutingRule:
    """Change a routing rule's name, priority or active flag; pool configurators only."""
    require(principal, Action.configure_pools)
    rule = await session.get(RoutingRule, rule_id)
    if rule is None or rule.ambito_id != principal.ambito_id:
        raise RuleNotFound()
    if data.name is not None:
        rule.name = data.name
    if data.priority is not None:
        rule.priority = data.priority
    if data.active is not None:
        rule.active = data.active
    await session.flush()
    await session.refresh(rule)
    return rule
