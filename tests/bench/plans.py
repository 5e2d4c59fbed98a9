"""EXPLAIN (ANALYZE, BUFFERS) of the SQL the application really sends, as the application's role.

The worklist statement is not rebuilt by hand: `app.services.dossiers.service.list_visible` is called with
a `Principal` built from the database exactly as authentication builds it, and the SELECT it
sends is captured at the driver (`before_cursor_execute`) and explained with the same parameters.
Whatever the service becomes (filters, another ORDER BY), the plan shown is the plan it runs.
Everything happens as `snodo_app` with the request's `snodo.ambito_id` (so row-level security is
in the plan, as in production) in a transaction that is rolled back (the list also writes its
access-log row).

It also runs PROTOTYPES of the shapes the benchmark suggests, built on the same `visible(...)`
predicate, so that their plans and times sit next to the service's: name-search candidates over
the existing GIN trigram index (`search_candidate`), the worklist as one keyset branch per access
basis (`keyset_union`), and the name search through a SECURITY DEFINER candidate function
(`search_via_definer`, its function created in the case's rolled-back transaction).
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Float, Select, String, Uuid, bindparam, column, event, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.core.db import assume_role, set_tenant
from app.core.enums import Compartment, OrganizationKind, Role
from app.core.pagination import PageRequest, decode_cursor
from app.core.principal import Principal
from app.models import Dossier, Organization, Person, User
from app.services.access.policy import COMPARTMENT_SECTION, section_rights, visible
from app.services.dossiers import worklist as dossiers
from app.services.identity.auth import _USER_COLUMNS, _user_principal  # what authentication uses

_SCAN = re.compile(
    r"(?P<kind>Seq Scan|Parallel Seq Scan|Index Only Scan|Index Scan|Bitmap Index Scan|Bitmap Heap Scan)"
    r"(?: Backward)?(?: using| on) (?P<first>\S+)(?: on (?P<second>\S+))?"
)
_EXECUTION = re.compile(r"Execution Time: ([\d.]+) ms")
_PLANNING = re.compile(r"Planning Time: ([\d.]+) ms")


@dataclass
class Plan:
    name: str
    sql: str = ""
    plan: str = ""
    execution_ms: float | None = None
    planning_ms: float | None = None
    best_of_3_ms: float | None = None
    rows: int | None = None
    scans: list[str] = field(default_factory=list)
    error: str | None = None
    parameters: Any = None  # as sent to the driver (for the raw baseline), not in the report
    # The planner settings the service left in force for it (plan_cache_mode, enable_bitmapscan).
    settings: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "parameters"}


@dataclass(frozen=True)
class PlanCase:
    """What to explain: `run` calls the application's service (or runs a SELECT) as `login`."""

    name: str
    login: str
    run: Callable[[AsyncSession, Principal, datetime], Awaitable[Any]]
    settings: dict[str, str] = field(default_factory=dict)  # SET LOCAL for this case (e.g. work_mem)
    # Run first as the connecting (super)user, inside the case's rolled-back transaction: e.g. a
    # function a prototype needs. Nothing of it survives the case.
    setup: tuple[str, ...] = ()


def summarize_scans(plan_text: str) -> list[str]:
    """'Index Scan: pk_dossier (dossier)', 'Seq Scan: person', … in plan order, deduplicated."""
    found: list[str] = []
    for match in _SCAN.finditer(plan_text):
        kind, first, second = match.group("kind", "first", "second")
        if kind in ("Seq Scan", "Parallel Seq Scan", "Bitmap Heap Scan"):
            item = f"{kind}: {first}"
        elif second:
            item = f"{kind}: {first} ({second})"
        else:
            item = f"{kind}: {first}"
        if item not in found:
            found.append(item)
    return found


class _Capture:
    """Remember the SELECTs sent on a connection while `active` (the service's `set_config`
    selects apart)."""

    def __init__(self) -> None:
        self.active = False
        self.statements: list[tuple[str, Any]] = []

    def __call__(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if not self.active or not statement.lstrip().upper().startswith(("SELECT", "WITH")):
            return
        if statement.lstrip().startswith("SELECT set_config("):
            return
        self.statements.append((statement, parameters))


def _literal(value: Any) -> str:
    """A parameter as SQL text for EXECUTE (an untyped literal takes the parameter's type)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return _literal("{" + ",".join('"' + str(v).replace('"', '\\"') + '"' for v in value) + "}")
    text_value = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text_value.replace("'", "''") + "'"


async def _principal(session: AsyncSession, email: str) -> Principal:
    row = (
        await session.execute(
            select(*_USER_COLUMNS)
            .join(Organization, Organization.id == User.organization_id)
            .where(func.lower(User.email) == email.lower())
        )
    ).one()
    return _user_principal(row)


async def _explain(connection: AsyncConnection, statement: str, parameters: Any) -> str:
    result = await connection.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS, SETTINGS) " + statement, parameters)
    return "\n".join(str(row[0]) for row in result)


async def _timed(connection: AsyncConnection, statement: str, parameters: Any) -> tuple[float, int]:
    started = time.perf_counter()
    result = await connection.exec_driver_sql(statement, parameters)
    rows = len(result.all())
    return (time.perf_counter() - started) * 1000, rows


async def _analyse(
    connection: AsyncConnection, plan: Plan, statement: str, parameters: Any, *, generic: bool = False
) -> None:
    plan.sql = statement
    if generic:
        # As the service runs it: one plan for any values (a prepared statement's generic plan).
        # EXPLAIN with parameters would plan for the values; EXPLAIN EXECUTE shows the cached plan.
        await connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        await connection.exec_driver_sql("DEALLOCATE ALL")
        await connection.exec_driver_sql("PREPARE snodo_plan AS " + statement)
        execute = f"EXECUTE snodo_plan({', '.join(_literal(v) for v in parameters or ())})"
        statement, parameters = (execute, ()) if parameters else ("EXECUTE snodo_plan", ())
        plan.name += " [generic plan]"
    best = min([await _timed(connection, statement, parameters) for _ in range(3)])
    plan.best_of_3_ms, plan.rows = round(best[0], 2), best[1]
    plan.plan = await _explain(connection, statement, parameters)
    plan.scans = summarize_scans(plan.plan)
    if found := _EXECUTION.search(plan.plan):
        plan.execution_ms = float(found.group(1))
    if found := _PLANNING.search(plan.plan):
        plan.planning_ms = float(found.group(1))


async def collect(
    url: str, cases: Sequence[PlanCase], *, role: str = "snodo_app", explain: bool = True
) -> list[Plan]:
    """Run each case in a rolled-back transaction and explain the SELECTs it sent (with
    `explain=False`, only capture them: `sql` and `parameters` of each Plan, for the raw baseline)."""
    engine = create_async_engine(
        url, poolclass=NullPool, connect_args={"server_settings": {"TimeZone": "UTC"}}
    )
    assume_role(engine, role)
    capture = _Capture()
    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    plans: list[Plan] = []
    try:
        for case in cases:
            plan = Plan(case.name)
            plans.append(plan)
            async with engine.connect() as connection:
                transaction = await connection.begin()
                try:
                    session = async_sessionmaker(bind=connection, expire_on_commit=False)()
                    if case.setup:
                        await connection.execute(text("RESET ROLE"))
                        for statement in case.setup:
                            await connection.execute(text(statement))
                        await connection.execute(text(f'SET ROLE "{role}"'))
                    await connection.execute(text("SELECT set_config('snodo.ambito_id', '*', true)"))
                    principal = await _principal(session, case.login)
                    await set_tenant(session, principal.ambito_id)
                    for name, value in case.settings.items():
                        await session.execute(select(func.set_config(name, value, True)))
                    capture.statements.clear()
                    capture.active = True
                    try:
                        await case.run(session, principal, datetime.now(UTC))
                    finally:
                        capture.active = False
                    if not capture.statements:
                        plan.error = "no SELECT captured"
                        continue
                    # The plan mode the service left for the rest of its transaction (a SET LOCAL,
                    # sent through the driver, before the page's SELECT): the one its SELECT ran with.
                    left = (
                        await connection.execute(
                            select(
                                func.current_setting("plan_cache_mode"),
                                func.current_setting("enable_bitmapscan"),
                            )
                        )
                    ).one()
                    settings = {"plan_cache_mode": left[0], "enable_bitmapscan": left[1]}
                    generic = settings["plan_cache_mode"] == "force_generic_plan"
                    # Usually one SELECT (the page); should the service send more, each is explained.
                    for k, (statement, parameters) in enumerate(capture.statements):
                        if k:
                            plan = Plan(f"{case.name} (statement {k + 1})")
                            plans.append(plan)
                        plan.sql, plan.parameters, plan.settings = statement, parameters, settings
                        if explain:
                            await _analyse(connection, plan, statement, parameters, generic=generic)
                except Exception as exc:  # a case that fails is reported, the others still run
                    plan.error = f"{type(exc).__name__}: {exc}"[:500]
                finally:
                    await transaction.rollback()
    finally:
        await engine.dispose()
    return plans


# ---------------------------------------------------------------------------------------------
# Cases


def worklist(limit: int = 50, cursor: str | None = None, **filters: Any) -> Callable[..., Awaitable[Any]]:
    """The worklist as `GET /api/v1/dossiers` runs it (the service call, no HTTP); `filters` are the
    fields of `WorklistFilter` (q, states, pool_id, overdue, …)."""

    async def run(session: AsyncSession, principal: Principal, now: datetime) -> Any:
        page = PageRequest(limit=limit, after=decode_cursor(cursor))
        if filters:
            return await dossiers.list_visible(
                session, principal, page, now=now, filters=dossiers.WorklistFilter(**filters)
            )
        return await dossiers.list_visible(session, principal, page, now=now)

    return run


def search_candidate(term: str, shape: str, limit: int = 20) -> Callable[..., Awaitable[Any]]:
    """Alternative name-search shapes over the existing GIN trigram index on person.name_key, always
    ANDed with the visibility predicate, ordered by relevance (the service orders by id):

    - `similarity`: `name_key % fold(q)` (pg_trgm.similarity_threshold, default 0.3), best first;
    - `similarity_0.5`: the same with the threshold raised to 0.5;
    - `word_similarity`: `fold(q) <% name_key` (word_similarity_threshold 0.6), best first —
      matches a typed surname or a prefix of the name inside "family given".
    """

    async def run(session: AsyncSession, principal: Principal, now: datetime) -> Any:
        folded = func.snodo_fold(term)
        statement: Select[Any]
        if shape in ("similarity", "similarity_0.5"):
            if shape == "similarity_0.5":
                await session.execute(text("SET LOCAL pg_trgm.similarity_threshold = 0.5"))
            score = func.similarity(Person.name_key, folded)
            condition = Person.name_key.op("%")(folded)
        elif shape == "word_similarity":
            score = func.word_similarity(folded, Person.name_key)
            condition = folded.op("<%")(Person.name_key)
        else:
            raise ValueError(shape)
        statement = (
            select(Dossier.id, Person.family_name, Person.given_name, score.label("score"))
            .join(Person, Person.id == Dossier.person_id)
            .where(visible(principal, now), condition)
            .order_by(score.desc(), Dossier.id)
            .limit(limit)
        )
        return (await session.execute(statement)).all()

    return run


def keyset_union(limit: int = 50, cursor: str | None = None) -> Callable[..., Awaitable[Any]]:
    """A PROTOTYPE of the worklist shape suggested by the benchmark (not the service's query).

    One keyset branch per basis of `policy.visible` — residence comune, case manager, break-glass,
    each pool the principal's organization is a member of (a LATERAL per pool), participation — each
    a plain conjunction (so its EXISTS become index-probing semi/anti-joins) ordered by dossier id
    with its own LIMIT; their UNION is the candidate set (at most a few × limit rows), on which the
    real `visible(...)` is applied again as the safety net, then `ORDER BY id DESC LIMIT`. The SQL of
    the branches mirrors app/services/access/policy.py at the time of writing (pool basis included)."""

    async def run(session: AsyncSession, principal: Principal, now: datetime) -> Any:
        after = decode_cursor(cursor)
        rights = section_rights(principal)
        compartments = [Compartment.ordinary.value]
        compartments += [c.value for c, s in COMPARTMENT_SECTION.items() if s in rights]

        def below(column: str) -> str:
            return f"AND {column} < :after" if after is not None else ""

        consent = """EXISTS (SELECT 1 FROM consent c WHERE c.person_id = d.person_id
            AND c.revoked_at IS NULL AND (c.expires_on IS NULL OR c.expires_on >= :today)
            AND 'presa_in_carico' = ANY(c.purposes)
            AND (CAST(:kind AS varchar) = ANY(c.organization_kinds)
                 OR CAST(:org AS uuid) = ANY(c.organization_ids)))"""
        # Only fixed SQL fragments are interpolated (S608); every value is a bound parameter.
        branches = []
        if principal.kind == "user":
            if (
                Role.social_worker in principal.roles
                and principal.organization_kind == OrganizationKind.comune
                and principal.organization_comune_id is not None
            ):
                branches.append(
                    f"""SELECT d.id FROM dossier d WHERE d.ambito_id = :ambito
                    AND d.residence_comune_id = :comune AND d.compartment = ANY(:compartments)
                    {below("d.id")} ORDER BY d.id DESC LIMIT :n"""  # noqa: S608
                )
            branches.append(
                f"""SELECT d.id FROM dossier d WHERE d.case_manager_user_id = :me
                AND d.compartment = ANY(:compartments) {below("d.id")} ORDER BY d.id DESC LIMIT :n"""  # noqa: S608
            )
            branches.append(
                f"""SELECT bg.dossier_id FROM break_glass bg WHERE bg.user_id = :me AND bg.expires_at > :now
                {below("bg.dossier_id")}"""  # noqa: S608
            )
        branches.append(
            f"""SELECT x.dossier_id FROM (
                SELECT pm.pool_id FROM pool_member pm JOIN pool p ON p.id = pm.pool_id
                WHERE pm.organization_id = :org AND pm.removed_at IS NULL
                  AND (pm.user_id IS NULL OR pm.user_id = :me)
                  AND p.active_from <= :today AND (p.active_until IS NULL OR p.active_until >= :today)
            ) mp CROSS JOIN LATERAL (
                SELECT r.dossier_id FROM dossier_routing r JOIN dossier d ON d.id = r.dossier_id
                WHERE r.pool_id = mp.pool_id AND r.ended_at IS NULL {below("r.dossier_id")}
                  AND d.compartment = ANY(:compartments)
                  AND NOT EXISTS (SELECT 1 FROM routing_task t WHERE t.routing_id = r.id
                                  AND t.organization_id = :org AND t.status = 'declined')
                  AND {consent}
                ORDER BY r.dossier_id DESC LIMIT :n
            ) x"""  # noqa: S608
        )
        branches.append(
            f"""SELECT dp.dossier_id FROM dossier_participant dp JOIN dossier d ON d.id = dp.dossier_id
            WHERE dp.organization_id = :org AND dp.ended_at IS NULL AND dp.starts_at <= :now
              AND (dp.ends_at IS NULL OR dp.ends_at > :now) AND d.compartment = ANY(:compartments)
              {below("dp.dossier_id")} AND {consent}
            ORDER BY dp.dossier_id DESC LIMIT :n"""  # noqa: S608
        )
        parameters = {
            "ambito": principal.ambito_id,
            "comune": principal.organization_comune_id,
            "me": principal.id,
            "org": principal.organization_id,
            "kind": principal.organization_kind.value,
            "today": now.date(),
            "now": now,
            "n": limit + 1,
        }
        if after is not None:
            parameters["after"] = after
        used = {name: value for name, value in parameters.items() if f":{name}" in " ".join(branches)}
        candidates = (
            text(" UNION ALL ".join(f"({branch})" for branch in branches))
            .bindparams(bindparam("compartments", compartments, type_=ARRAY(String())), **used)
            .columns(column("id", Uuid()))
            .subquery("candidates")
        )
        statement = (
            select(Dossier, Person)
            .join(Person, Person.id == Dossier.person_id)
            .where(Dossier.id.in_(select(candidates.c.id)), visible(principal, now))
            .order_by(Dossier.id.desc())
            .limit(limit + 1)
        )
        return (await session.execute(statement)).all()

    return run


# A SECURITY DEFINER function runs as its owner, to whom row-level security does not apply, so the
# GIN trigram index on person.name_key can serve the non-LEAKPROOF `<%` operator; the function
# enforces the tenant itself (the request's snodo.ambito_id) and only returns ids and scores, and
# the caller's query still applies row-level security and `visible(...)` to the dossiers.
NAME_CANDIDATES_SQL = """
CREATE FUNCTION bench_name_candidates(q text, lim int) RETURNS TABLE (person_id uuid, score real)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp ROWS 200 AS $$
    SELECT p.id, word_similarity(snodo_fold(q), p.name_key)
    FROM person p
    WHERE p.ambito_id = nullif(nullif(current_setting('snodo.ambito_id', true), ''), '*')::uuid
      AND snodo_fold(q) <% p.name_key
    ORDER BY 2 DESC, p.id
    LIMIT lim
$$
"""
NAME_CANDIDATES_SETUP = (
    NAME_CANDIDATES_SQL,
    "GRANT EXECUTE ON FUNCTION bench_name_candidates(text, int) TO snodo_app",
)


def search_via_definer(term: str, limit: int = 20, candidates: int = 500) -> Callable[..., Awaitable[Any]]:
    """PROTOTYPE of the suggested name search (needs NAME_CANDIDATES_SETUP): the best `candidates`
    persons by word similarity from the trigram index, then their dossiers the principal may see,
    most similar first."""

    async def run(session: AsyncSession, principal: Principal, now: datetime) -> Any:
        found = (
            func.bench_name_candidates(term, candidates)
            .table_valued(column("person_id", Uuid()), column("score", Float()))
            .alias("found")
        )
        statement = (
            select(Dossier, Person)
            .join(found, found.c.person_id == Dossier.person_id)
            .join(Person, Person.id == found.c.person_id)
            .where(Dossier.ambito_id == principal.ambito_id, visible(principal, now))
            .order_by(found.c.score.desc(), Dossier.id.desc())
            .limit(limit + 1)
        )
        return (await session.execute(statement)).all()

    return run
