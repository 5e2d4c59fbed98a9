"""The worklist planner: the dossiers a principal may see, newest first, one keyset page at a time."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Select,
    Subquery,
    Uuid,
    bindparam,
    column,
    exists,
    false,
    func,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from app.core.db import set_local
from app.core.enums import AuditAction, DossierState, NeedArea, TaskStatus
from app.core.pagination import PageRequest
from app.core.principal import Principal
from app.core.problems import field_error
from app.models import Dossier, DossierParticipant, DossierRouting, Person, RoutingTask
from app.models.dossier import SPECIAL_NEED_PREDICATE
from app.services.access import audit
from app.services.access.policy import (
    NEED_AREA_LABEL,
    Moment,
    Visibility,
    label_visible_condition,
    member_pools,
    participating_conditions,
    routed_to_pool_conditions,
    sees_residents,
    visibility,
    visible,
)


@dataclass(frozen=True)
class DossierPage:
    """Rows by column name: the worklist's columns (`WORKLIST_COLUMNS`, and `overdue`)."""

    rows: list[dict[str, Any]]
    next_after: uuid.UUID | None


@dataclass(frozen=True)
class WorklistFilter:
    """The worklist's filters; all optional, combined with AND, always inside `visible`."""

    pool_id: uuid.UUID | None = None
    states: tuple[DossierState, ...] = ()
    comune_id: uuid.UUID | None = None
    need_area: NeedArea | None = None
    case_manager_id: uuid.UUID | None = None
    assigned_to_me: bool = False
    updated_since: datetime | None = None
    overdue: bool | None = None
    q: str | None = None


FISCAL_CODE_QUERY = re.compile(r"^[A-Z0-9]{16}$")
MIN_SEARCH_LENGTH = 3


def answer_overdue(now: Moment) -> tuple[ColumnElement[bool], ...]:
    """Conditions on a routing task: its organization has not answered in time (in Python,
    `routing.is_overdue`). The requested tasks' partial indexes repeat the status."""
    return (RoutingTask.status == TaskStatus.requested, RoutingTask.due_at <= now)


def _overdue_condition(
    now: Moment, dossier_id: ColumnElement[uuid.UUID] | InstrumentedAttribute[uuid.UUID] = Dossier.id
) -> ColumnElement[bool]:
    """A member organization has not answered its routing of the dossier in time."""
    return exists().where(RoutingTask.dossier_id == dossier_id, *answer_overdue(now))


def _filter_conditions(
    principal: Principal, filters: WorklistFilter, now: Moment
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.pool_id is not None:
        conditions.append(
            exists().where(
                DossierRouting.dossier_id == Dossier.id,
                DossierRouting.pool_id == filters.pool_id,
                DossierRouting.ended_at.is_(None),
            )
        )
    if filters.states:
        conditions.append(Dossier.state.in_(filters.states))
    if filters.comune_id is not None:
        conditions.append(Dossier.residence_comune_id == filters.comune_id)
    if filters.need_area is not None:
        conditions.append(Dossier.need_areas.contains([filters.need_area.value]))
        label = NEED_AREA_LABEL.get(filters.need_area)
        if label is not None:
            # Filtering by a special category must not reveal it: only where its label is visible.
            conditions.append(label_visible_condition(principal, label, now))
    if filters.case_manager_id is not None:
        conditions.append(Dossier.case_manager_user_id == filters.case_manager_id)
    if filters.assigned_to_me:
        conditions.append(
            Dossier.case_manager_user_id == principal.id if principal.kind == "user" else false()
        )
    if filters.updated_since is not None:
        conditions.append(Dossier.updated_at >= filters.updated_since)
    if filters.overdue is not None:
        overdue = _overdue_condition(now)
        conditions.append(overdue if filters.overdue else ~overdue)
    return conditions


def _named(principal: Principal, q: str, paged: bool) -> Subquery:
    """The dossiers a search (`q`) names, newest first: by codice fiscale (one person), or by
    name (at most NAME_CANDIDATES, found by `snodo_name_dossiers`, migrations 0009-0013)."""
    query = "".join(q.split()).upper()
    named: Select[uuid.UUID]
    key: ColumnElement[uuid.UUID] | InstrumentedAttribute[uuid.UUID]
    if FISCAL_CODE_QUERY.match(query):
        named = (
            select(Dossier.id).join(Person, Person.id == Dossier.person_id).where(Person.fiscal_code == query)
        )
        key = Dossier.id
    else:
        # Each word of the accent-folded query similar to a word of the name: "rosi" finds "Rossi
        # Mario", "cantu" "Cantù"; "brambila giulia" the Giulia Brambillas.
        found = (
            func.snodo_name_dossiers(q.strip(), principal.ambito_id, NAME_CANDIDATES)
            .table_valued(column("dossier_id", Uuid()))
            .alias("found")
        )
        key = found.c.dossier_id
        named = select(key.label("id"))
    return _newest_first(named, key, paged, "named")


# A name search considers at most this many dossiers of the ambito whose persons' names hold every
# word of the query: a surname shared by more needs the given name too (which then narrows the
# candidates through the index), or the codice fiscale.
NAME_CANDIDATES = 2000


# Built once: an alias made per request rebuilt its column collection every time (~5 ms a page).
_MEMBER_ROUTING = aliased(DossierRouting, name="member_routing")
_FILTER_ROUTING = aliased(DossierRouting, name="filter_routing")
# The worklist statement is built once per (principal, filters, page size, first page or not) with
# these two bind parameters in it, and executed with their values: building it took ~5 ms of the
# ~18 ms of Python a page cost, and a statement used again also keeps its SQLAlchemy cache key.
_NOW = bindparam("worklist_now", type_=DateTime(timezone=True))
_AFTER = bindparam("worklist_after", type_=Uuid())
WORKLIST_STATEMENTS = 512
# _GENERIC_PLAN_NOTE. For the rest of the request's transaction (`set_local` below), plan prepared
# statements once per connection (the app's connections plan each execution for its values,
# app/core/db.py). The worklist's statement is the same for every principal of a shape, values
# apart, and its branches are keyset walks whose plan does not depend on them: planning it took as
# long as running it (at 1M, as.melzo 10 + 11 ms). Where the generic plan was slower, or either
# mode collapsed once the database held several ambiti, `_plan_mode` says which. Plans depend
# on the statistics: when the statement changes, run tests/bench/plan_modes.py at 100k, at 1M and
# on a 1M database with ambiti added by tests/bench/clone.py (docs/performance.md, "Generic
# plans", "Several ambiti in one database").


WorklistSelect = Select[*tuple[Any, ...]]
# What a worklist row shows: no more (the ORM entities with every column cost ~2 ms of Python a page).
WORKLIST_COLUMNS = (
    Dossier.id,
    Dossier.state,
    Dossier.urgency,
    Dossier.residence_comune_id,
    Dossier.case_manager_user_id,
    Dossier.updated_at,
    Person.id.label("person_id"),
    Person.family_name,
    Person.given_name,
    Person.birth_date,
)


Start = Literal["search", "case manager", "overdue", "state", "need area", "bases"]


def _start(principal: Principal, filters: WorklistFilter) -> Start:
    """Where `_page` starts the page: a candidate set newest first, or the access bases. Both
    `_page` and `_plan_mode` ask it, so that the plan mode follows the page's shape."""
    if filters.q:
        return "search"
    if filters.assigned_to_me or filters.case_manager_id is not None:
        return "case manager"
    if filters.overdue:
        return "overdue"
    # A social worker sees a good part of the ambito (a comune's residents): a candidate set of
    # the ambito's dossiers soon yields a page of hers.
    social_worker = sees_residents(principal)
    if len(filters.states) == 1 and social_worker:
        return "state"
    if filters.need_area is not None and social_worker:
        return "need area"
    return "bases"


PlanMode = Literal["custom", "generic", "generic walk"]


def _plan_mode(principal: Principal, filters: WorklistFilter) -> PlanMode:
    """How the page is planned (see `_GENERIC_PLAN_NOTE`), by the shape `_page` gives it
    (`_start`): for its values ("custom"), once per connection ("generic"), or once and
    without bitmap scans ("generic walk"). Measured with one ambito in the database and with three
    (`tests/bench/plan_modes.py`, docs/performance.md): with three, PostgreSQL takes the ambito's
    share of the rows once per ambito condition on every table of a join, and in every mode some
    shape went from milliseconds to seconds; each shape runs in the mode that held in both.

    - A search or a case manager's dossiers: generic (candidates found by name or manager).
    - `overdue`, a social worker's one state or need area: custom (candidates newest first,
      whose generic plans were slower or a disaster: overdue at 100k 27 ms -> 2.6 s; sospeso at
      1M 7 -> 236 ms; lavoro with three ambiti 3.5 -> 32 ms).
    - Walked from one pool's routings or one comune's residents (`pool_id`, `comune_id`):
      generic (custom plans collapsed with three ambiti: 2.1-3.7 s against 1.6-4.6 ms).
    - A pool member's states or need area, a social worker's states: custom (generic ones with
      three ambiti: 51 ms to 2.6 s; afol's lavoro 9 s with one).
    - The access bases walked newest first, unfiltered or `updated_since`, on any page: generic
      without bitmap scans. A bitmap scan gives no order: with three ambiti the generic plan
      collected every routing of the caller's pools in one to sort them (a page after 10,000
      dossiers 0.6-3.9 s, `updated_since` 1.3-1.9 s); without, 1.2-5.1 ms, as with one ambito,
      and no planning per request (custom: 2 ms of it)."""
    start = _start(principal, filters)
    if start in ("search", "case manager"):
        return "generic"
    if start != "bases":
        return "custom"
    if filters.pool_id is not None or filters.comune_id is not None:
        return "generic"
    if filters.states or filters.need_area is not None or filters.overdue is not None:
        return "custom"
    return "generic walk"


def _plan_settings(principal: Principal, filters: WorklistFilter) -> dict[str, str]:
    """How PostgreSQL should plan this page, for the rest of the request's transaction."""
    settings = {}
    mode = _plan_mode(principal, filters)
    if mode != "custom":
        settings["plan_cache_mode"] = "force_generic_plan"
    if mode == "generic walk":
        settings["enable_bitmapscan"] = "off"
    if filters.pool_id is not None:
        # One pool's routings, walked newest first until the page is full (60 of them): expecting
        # thousands, PostgreSQL had parallel workers walk them, started for every page. At 1M:
        # afol 18 -> 1.9 ms, as.melzo 19 -> 2.0 (docs/performance.md). For the other cases of
        # tests/bench/plan_modes.py it was no better, or worse (a search: 12 -> 15 ms).
        settings["max_parallel_workers_per_gather"] = "0"
    return settings


def _worklist(
    principal: Principal, page: PageRequest, filters: WorklistFilter, now: datetime
) -> tuple[WorklistSelect, dict[str, Any]]:
    """The worklist page's statement and the values of its parameters."""
    # The session id is the only field of a principal that plays no part in what it may see.
    statement = _worklist_statement(
        replace(principal, session_id=None), filters, page.limit, page.after is not None
    )
    return statement, {"worklist_now": now, "worklist_after": page.after}


@lru_cache(maxsize=WORKLIST_STATEMENTS)
def _worklist_statement(
    principal: Principal, filters: WorklistFilter, limit: int, paged: bool
) -> WorklistSelect:
    """The page (`_page`) with `overdue` for each of its rows: a column of the same statement, not
    a second round trip, and asked after the LIMIT, of the page's rows only. As a column of the
    page itself, PostgreSQL could plan it once for every routing overdue in the ambito (113,000 at
    1M, 48 ms) when it expected many candidate rows."""
    page = _page(principal, filters, limit, paged).subquery("page")
    overdue = _overdue_condition(_NOW, page.c.id).label("overdue")
    return select(page, overdue).order_by(page.c.id.desc())


def _page(principal: Principal, filters: WorklistFilter, limit: int, paged: bool) -> WorklistSelect:
    """The worklist page as one statement: one keyset branch per access basis, each an index
    range scan ordered by dossier id with its own LIMIT (a basis per pool the principal sits in),
    their union the candidates, on which `visible` and the filters are checked again.

    Each branch is exactly one disjunct of `visible` with the filters, so the first `limit + 1`
    of the union are the first `limit + 1` of the whole. Asked as one `visible` (an OR of
    EXISTS), PostgreSQL hashes every routing of the principal's pools and every consent on each
    page, and a pool member's page took 0.8 s at 1M dossiers (docs/performance.md). Which rows a
    branch walks (dossiers, participations, a pool's routings) is chosen for the filters asked.
    A search, a case manager's dossiers, `overdue`, and for a social worker one state or a special
    category, start instead from a candidate set, newest first (`_newest_visible`)."""
    now = _NOW
    statement = select(*WORKLIST_COLUMNS).join(Person, Person.id == Dossier.person_id)
    parts = visibility(principal, now)
    if parts is None:
        return statement.where(false())
    conditions = _filter_conditions(principal, filters, now)
    n = limit + 1
    start = _start(principal, filters)
    if start == "search" and filters.q:
        # A search names at most NAME_CANDIDATES dossiers (or one codice fiscale's). Through the
        # branches below, each pool's branch went over every candidate again (150 ms for a common
        # surname at 1M dossiers); with `visible` on every candidate before the sort, 40 ms.
        return _newest_visible(statement, _named(principal, filters.q, paged), principal, now, conditions, n)
    manager = principal.id if filters.assigned_to_me else filters.case_manager_id
    if start == "case manager" and manager is not None:
        # One case manager's dossiers (hundreds): walked newest first through
        # ix_dossier_case_manager. Through the bases, each basis ran to its end to find them
        # (as.melzo at 1M: 35 ms).
        return _newest_visible(statement, _managed_by(manager, paged), principal, now, conditions, n)
    if start == "overdue":
        # Answers overdue (6 % of the dossiers at 1M): through the bases, each ran until 51 of
        # those it walked had one (as.melzo at 1M: 41 ms, afol 20). From the tasks awaiting an
        # answer instead: 1.3 and 1.9 ms, a cooperative's 6.7 -> 5.0.
        overdue = _overdue_dossiers(principal.ambito_id, paged)
        return _newest_visible(statement, overdue, principal, now, conditions, n)
    if start == "state":
        # One state: through the bases, a state rare along one (closed dossiers are rarely still
        # routed) ran it to its end: as.inzago, chiuso, at 1M: 88 ms.
        in_state = _in_state(principal.ambito_id, filters.states[0], paged)
        return _newest_visible(statement, in_state, principal, now, conditions, n)
    area = filters.need_area
    if start == "need area" and area is not None:
        # A need area for a social worker: start from that need area's dossiers. A special
        # category (violence, judicial…): few of the dossiers she sees may show it (a consent
        # must carry its label), so every basis below ran to its end to find them (250 ms at 1M).
        # Any other: through the bases, PostgreSQL chose to walk the dossiers only while the
        # database held one ambito; with three (tests/bench/clone.py) it collected every routing
        # of her five pools instead (lavoro for as.melzo at 1M: 5.8 ms -> 3.4 s). (A pool
        # member's pools mostly hold its own need areas.)
        with_need = _with_need(principal.ambito_id, area, paged)
        return _newest_visible(statement, with_need, principal, now, conditions, n)
    branches = [
        _walk(Dossier.id, [*parts.common, basis, *conditions], n, paged)
        for name, basis in parts.bases.items()
        if name not in ("pool", "participant")  # driven from their own rows, below
    ]
    branches.append(_participating(principal, now, parts, conditions, n, paged))
    if filters.pool_id is not None:
        branches.append(_routed_to_filter_pool(parts, filters.pool_id, conditions, n, paged))
    elif filters.comune_id is not None or (filters.need_area is not None and "residence" in parts.bases):
        # Walk the dossiers, not each member pool's routings, when a pool may rarely hold what
        # the filter asks for: one comune's residents (few, and indexed), or a need area for a
        # social worker, whose member pools are many and mostly about other needs. Measured at
        # 1M, one client: afol with Liscate 115 -> 2.3 ms; as.melzo with lavoro 367 -> 5.8 ms,
        # anziani 165 -> 3.6 ms. For a pool member a need area is walked through its pools,
        # which mostly hold it (the other way round, coop.solleva with anziani: 31 -> 125 ms).
        branches.append(_walk(Dossier.id, [*parts.common, parts.bases["pool"], *conditions], n, paged))
    else:
        branches.append(_routed_to_member_pools(principal, now, parts, conditions, n, paged))
    candidates = union_all(*branches).subquery("candidates")
    top = select(candidates.c.id).distinct().order_by(candidates.c.id.desc()).limit(n).subquery("top")
    return (
        statement.join(top, top.c.id == Dossier.id)
        .where(visible(principal, now), *conditions)
        .order_by(Dossier.id.desc())
    )


def _newest_visible(
    statement: WorklistSelect,
    candidates: Subquery,
    principal: Principal,
    now: Moment,
    conditions: list[ColumnElement[bool]],
    n: int,
) -> WorklistSelect:
    """The page from a small candidate set already sorted newest first (`candidates.c.id`):
    `visible` and the filters checked on each in that order until the page is full.

    Each candidate is checked in a LATERAL subquery of one row. Joined directly, PostgreSQL
    weighs `visible` against all the candidates it expects to read, and where it expects many
    it hashes every routing of the caller's pools and every consent of the ambito first (a
    state filter of as.melzo at 100k dossiers: 170-310 ms one client, though 80 candidates
    gave the page). For one row the check is a few index lookups, whatever the estimates."""
    checked = (
        statement.where(Dossier.id == candidates.c.id, visible(principal, now), *conditions)
        .limit(1)
        .lateral("checked")
    )
    return (
        select(checked)
        .select_from(candidates)
        .join(checked, true())
        .order_by(candidates.c.id.desc())
        .limit(n)
    )


def _managed_by(user_id: uuid.UUID, paged: bool) -> Subquery:
    """The dossiers this user is the case manager of, newest first (`ix_dossier_case_manager`)."""
    managed = select(Dossier.id).where(Dossier.case_manager_user_id == user_id)
    return _newest_first(managed, Dossier.id, paged, "managed")


def _in_state(ambito_id: uuid.UUID, state: DossierState, paged: bool) -> Subquery:
    """The ambito's dossiers in this state, newest first (`ix_dossier_ambito_state`)."""
    in_state = select(Dossier.id).where(Dossier.ambito_id == ambito_id, Dossier.state == state)
    return _newest_first(in_state, Dossier.id, paged, "in_state")


def _overdue_dossiers(ambito_id: uuid.UUID, paged: bool) -> Subquery:
    """The ambito's dossiers with a routing answer overdue, newest first, along the requested
    tasks' partial index (`ix_routing_task_awaiting`, migration 0017)."""
    overdue = (
        select(RoutingTask.dossier_id.label("id"))
        .where(RoutingTask.ambito_id == ambito_id, *answer_overdue(_NOW))
        .distinct()
    )
    return _newest_first(overdue, RoutingTask.dossier_id, paged, "overdue")


def _with_need(ambito_id: uuid.UUID, need_area: NeedArea, paged: bool) -> Subquery:
    """The ambito's dossiers with this need area, newest first: a special category's along its
    partial index (`ix_dossier_need_*`, its predicate repeated), the others along the ambito's
    dossiers (`ix_dossier_ambito_id`). Whether the caller may see the need area's label, and the
    dossier, is checked on each by `_newest_visible`. (Narrowed here to persons with a consent
    carrying the label, PostgreSQL expected almost none to pass, a twentieth of those that do,
    and went from every labelled consent instead, or with parallel workers: 62-229 ms at 1M.)"""
    predicate = SPECIAL_NEED_PREDICATE.get(need_area)
    has_need = text(predicate) if predicate else Dossier.need_areas.contains([need_area.value])
    with_need = select(Dossier.id).where(Dossier.ambito_id == ambito_id, has_need)
    return _newest_first(with_need, Dossier.id, paged, "with_need")


def _newest_first(
    candidates: Select[uuid.UUID],
    key: ColumnElement[uuid.UUID] | InstrumentedAttribute[uuid.UUID],
    paged: bool,
    name: str,
) -> Subquery:
    """A candidate set for `_newest_visible`: dossier ids (`key`) below the cursor, newest first."""
    if paged:
        candidates = candidates.where(key < _AFTER)
    return candidates.order_by(key.desc()).subquery(name)


def _participating(
    principal: Principal,
    now: Moment,
    parts: Visibility,
    conditions: list[ColumnElement[bool]],
    n: int,
    paged: bool,
) -> Select[uuid.UUID]:
    """The participant basis, walked from the organization's participations (newest dossier
    first, `ix_dossier_participant_org`). As a condition on dossiers, PostgreSQL walked every
    dossier of the ambito backwards to meet them (33 ms for a cooperative at 1M)."""
    where = [*participating_conditions(principal, now), *parts.common, *conditions]
    # An organization may take part twice (two services): n dossiers, not n rows.
    return _walk(DossierParticipant.dossier_id, where, n, paged, distinct=True)


def _routed_to_member_pools(
    principal: Principal,
    now: Moment,
    parts: Visibility,
    conditions: list[ColumnElement[bool]],
    n: int,
    paged: bool,
) -> Select[uuid.UUID]:
    """The pool basis: for each pool the principal sits in, its newest routings in force."""
    pools = member_pools(principal, now).subquery("my_pools")
    routing = _MEMBER_ROUTING
    where = [
        routing.pool_id == pools.c.pool_id,
        *routed_to_pool_conditions(principal, now, routing),
        *parts.common,
        *conditions,
    ]
    per_pool = _walk(routing.dossier_id, where, n, paged).lateral("routed")
    return select(per_pool.c.id).select_from(pools).join(per_pool, true())


def _routed_to_filter_pool(
    parts: Visibility, pool_id: uuid.UUID, conditions: list[ColumnElement[bool]], n: int, paged: bool
) -> Select[uuid.UUID]:
    """The pool basis when the worklist is filtered by one pool: that pool's newest routings in
    force whose dossier the pool basis opens. Through each member pool instead, every other member
    pool's routings were walked to the end for the few also routed to this one (150 ms at 1M)."""
    routing = _FILTER_ROUTING
    where = [
        routing.pool_id == pool_id,
        routing.ended_at.is_(None),
        *parts.common,
        parts.bases["pool"],
        *conditions,
    ]
    return _walk(routing.dossier_id, where, n, paged)


def _walk(
    key: InstrumentedAttribute[uuid.UUID],
    where: list[ColumnElement[bool]],
    n: int,
    paged: bool,
    *,
    distinct: bool = False,
) -> Select[uuid.UUID]:
    """One keyset branch: the dossier ids along `key` (a dossier id: of Dossier itself, or of a
    row joined to it), newest first, below the cursor when paging, at most `n`, where `where`
    holds. The row of `key` drives the walk; PostgreSQL picks the index."""
    branch = select(key.label("id"))
    if key is not Dossier.id:
        branch = branch.join(Dossier, Dossier.id == key)
    branch = branch.where(*where)
    if distinct:
        branch = branch.distinct()
    if paged:
        branch = branch.where(key < _AFTER)
    return branch.order_by(key.desc()).limit(n)


async def list_visible(
    session: AsyncSession,
    principal: Principal,
    page: PageRequest,
    *,
    now: datetime,
    filters: WorklistFilter | None = None,
) -> DossierPage:
    """The worklist: what the caller may see, newest first, keyset-paginated (no OFFSET)."""
    filters = filters or WorklistFilter()
    if filters.q is not None and len(filters.q.strip()) < MIN_SEARCH_LENGTH:
        raise field_error("query.q", f"At least {MIN_SEARCH_LENGTH} characters", "string_too_short")
    statement, parameters = _worklist(principal, page, filters, now)
    # On the session's connection, not through the ORM session: plain rows, no ORM loading.
    connection = await session.connection()
    settings = _plan_settings(principal, filters)
    if settings:
        await set_local(connection, settings)
    result = await connection.execute(statement, parameters)
    columns = tuple(result.keys())
    # Plain dicts: a Row's attribute access costs more than the rest of building the page.
    rows = [dict(zip(columns, row, strict=True)) for row in result.all()]
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    await audit.record(
        session,
        principal,
        action=AuditAction.search if filters.q else AuditAction.list,
        resource_type="dossier",
        dossier_ids=[row["id"] for row in rows],  # each dossier's access log shows this page
        now=now,
    )
    return DossierPage(rows=rows, next_after=rows[-1]["id"] if more else None)
