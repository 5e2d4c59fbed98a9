"""The worklist is built as one keyset branch per access basis (for speed at 1M dossiers); it must
list exactly what `policy.visible` allows, in order, page after page, with and without filters."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import FrozenClock
from app.core.enums import ConfidentialityLabel, TaskStatus
from app.models import Comune, Dossier, DossierRouting, Person, RoutingTask
from app.services.access.policy import label_visible_condition, visible
from app.services.dossiers.worklist import _worklist_statement
from app.services.identity.auth import authenticate
from app.services.identity.auth_events import ClientInfo
from tests.intake import (
    AFOL,
    ARCHE,
    AS_INZAGO,
    AS_MELZO,
    COORDINATOR,
    DPO,
    INZAGO_ISTAT,
    MELZO_ISTAT,
    SERT,
    SOLLEVA,
    dossier_of,
    referral,
)
from tests.support import Demo

# (family name, residence, need areas, consent recipients); each a distinct person.
CASES = [
    ("Brambilla", MELZO_ISTAT, ["lavoro"], ["comune", "cooperativa", "afol", "asst"]),
    ("Colombo", MELZO_ISTAT, ["lavoro", "poverta"], ["comune", "afol"]),
    ("Galli", INZAGO_ISTAT, ["lavoro"], ["comune", "cooperativa", "afol", "asst"]),
    ("Sala", MELZO_ISTAT, ["anziani"], ["comune", "cooperativa", "asst"]),
    ("Conti", INZAGO_ISTAT, ["minori", "poverta"], ["comune", "cooperativa"]),
    ("Villa", MELZO_ISTAT, ["dipendenze"], ["comune", "asst"]),
    ("Ferrari", MELZO_ISTAT, ["lavoro"], ["comune"]),
    ("Bianchi", INZAGO_ISTAT, ["disabilita"], ["comune", "cooperativa", "asst"]),
    ("Ricci", MELZO_ISTAT, ["lavoro", "anziani"], ["comune", "cooperativa", "afol", "asst"]),
    ("Moretti", INZAGO_ISTAT, ["lavoro"], ["comune", "afol", "cooperativa"]),
    ("Rota", MELZO_ISTAT, ["dipendenze"], ["comune", "asst"]),  # consent names no special category
    ("Fumagalli", INZAGO_ISTAT, ["dipendenze", "lavoro"], ["comune", "afol", "asst"]),
]
# Consents that allow a special category to be shared (HL7 ETH: substance abuse).
SPECIAL = {"Villa": ["ETH"], "Fumagalli": ["ETH"]}
WHO = [AS_MELZO, AS_INZAGO, AFOL, SOLLEVA, ARCHE, SERT, COORDINATOR, DPO]
SOLLEVA_ORG, ARCHE_ORG = "Cooperativa Sociale Solleva", "Cooperativa Sociale Archè"
PARTICIPANTS = {
    "Brambilla": (SOLLEVA_ORG,),
    "Colombo": (SOLLEVA_ORG,),
    "Sala": (SOLLEVA_ORG,),
    "Ricci": (SOLLEVA_ORG, ARCHE_ORG),
}


@pytest.fixture
async def world(demo_pools: Demo) -> Demo:
    demo = demo_pools
    for n, (family_name, istat, areas, recipients) in enumerate(CASES):
        person = {
            "no_fiscal_code_reason": "not_known",
            "family_name": family_name,
            "given_name": "Anna",
            "birth_date": f"19{50 + n}-05-0{1 + n % 9}",
            "residence_comune_istat": istat,
        }
        author = AS_MELZO if istat == MELZO_ISTAT else AS_INZAGO
        body = referral(
            person,
            need_areas=areas,
            consent_recipients=recipients,
            consent_special_categories=SPECIAL.get(family_name),
        )
        answer = await demo.client.post("/api/v1/referrals", json=body, headers=await demo.headers(author))
        assert answer.status_code == 201, answer.text
        # Cooperatives take part in some Melzo cases: Brambilla and Sala (consent covers them),
        # Colombo (it does not), Ricci (Archè too).
        for organization in PARTICIPANTS.get(family_name, ()):
            involved = await demo.client.post(
                f"/api/v1/dossiers/{answer.json()['dossier_id']}/participants",
                headers=await demo.headers(AS_MELZO),
                json={"organization_id": str(demo.org(organization)), "basis": "provider"},
            )
            assert involved.status_code == 201, involved.text
    # Solleva declines its first task: that routing no longer opens the dossier to it.
    tasks = (await demo.client.get("/api/v1/me/routing-tasks", headers=await demo.headers(SOLLEVA))).json()
    assert tasks, "the cases should have reached Solleva's pools"
    declined = await demo.client.post(
        f"/api/v1/routing-tasks/{tasks[0]['id']}/decline",
        headers=await demo.headers(SOLLEVA),
        json={"reason": "Nessun posto disponibile"},
    )
    assert declined.status_code == 200, declined.text
    return demo


async def expected(
    demo: Demo, app: FastAPI, session: AsyncSession, clock: FrozenClock, who: str
) -> list[str]:
    """The reference: `visible` as one condition, newest first."""
    principal = await authenticate(
        session=session,
        security=app.state.security,
        authorization=f"Bearer {await demo.token(who)}",
        client=ClientInfo(),
    )
    statement = (
        select(Dossier.id)
        .join(Person, Person.id == Dossier.person_id)
        .where(visible(principal, clock.now()))
        .order_by(Dossier.id.desc())
    )
    return [str(i) for i in (await session.scalars(statement)).all()]


async def walk(demo: Demo, who: str, **params: Any) -> list[str]:
    found: list[str] = []
    cursor = None
    for _ in range(50):
        query = {"limit": 2, **params, **({"cursor": cursor} if cursor else {})}
        page = await demo.client.get("/api/v1/dossiers", params=query, headers=await demo.headers(who))
        assert page.status_code == 200, page.text
        body = page.json()
        found += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return found
    raise AssertionError("the cursor chain does not end")


async def test_every_user_pages_through_exactly_what_they_may_see(
    world: Demo, app: FastAPI, session: AsyncSession, clock: FrozenClock
) -> None:
    seen_by: dict[str, int] = {}
    for who in WHO:
        listed = await walk(world, who)
        assert listed == await expected(world, app, session, clock, who), who
        seen_by[who] = len(listed)
    # the data exercise every basis: residence, pools (one declined), none at all
    assert seen_by[AS_MELZO] >= 6
    assert seen_by[AS_INZAGO] >= 4
    assert 0 < seen_by[AFOL] < len(CASES)
    assert 0 < seen_by[SOLLEVA] < len(CASES)
    assert seen_by[DPO] == 0


async def routed_to(session: AsyncSession, pool_id: str) -> set[str]:
    routings = await session.scalars(
        select(DossierRouting.dossier_id).where(
            DossierRouting.pool_id == uuid.UUID(pool_id), DossierRouting.ended_at.is_(None)
        )
    )
    return {str(dossier_id) for dossier_id in routings}


async def resident_in(session: AsyncSession, comune_id: str) -> set[str]:
    dossiers = await session.scalars(
        select(Dossier.id).where(Dossier.residence_comune_id == uuid.UUID(comune_id))
    )
    return {str(dossier_id) for dossier_id in dossiers}


async def test_filters_keep_the_pages_complete(world: Demo, session: AsyncSession) -> None:
    pools = (await world.client.get("/api/v1/pools", headers=await world.headers(COORDINATOR))).json()
    # every pool: some with the caller as a member, some without (then only its other bases count)
    by_pool = [{"pool_id": pool["id"]} for pool in pools]
    comuni = await session.scalars(
        select(Comune.id).where(Comune.istat_code.in_([MELZO_ISTAT, INZAGO_ISTAT]))
    )
    by_comune = [{"comune_id": str(comune_id)} for comune_id in comuni]
    for who in (AS_MELZO, AS_INZAGO, AFOL, SOLLEVA):
        everything = await walk(world, who, limit=200)
        for params in (
            {"need_area": "lavoro"},
            {"state": "in_pool"},
            {"state": "segnalato"},
            {"state": ["in_pool", "segnalato"]},
            {"q": "brambila"},
            *by_pool,
            *by_comune,
        ):
            one_page = await walk(world, who, limit=200, **params)
            paged = await walk(world, who, **params)
            assert paged == one_page, (who, params)
            assert set(paged) <= set(everything)
            if "pool_id" in params:  # exactly what the caller sees of that pool
                routed = await routed_to(session, params["pool_id"])
                assert paged == [d for d in everything if d in routed], (who, params)
            if "need_area" in params:
                with_need = await session.scalars(
                    select(Dossier.id).where(Dossier.need_areas.contains([params["need_area"]]))
                )
                wanted = {str(dossier_id) for dossier_id in with_need}
                assert paged == [d for d in everything if d in wanted], (who, params)
            if "state" in params:
                states = params["state"] if isinstance(params["state"], list) else [params["state"]]
                in_state = await session.scalars(select(Dossier.id).where(Dossier.state.in_(states)))
                wanted = {str(dossier_id) for dossier_id in in_state}
                assert paged == [d for d in everything if d in wanted], (who, params)
            if "comune_id" in params:
                residents = await resident_in(session, params["comune_id"])
                assert paged == [d for d in everything if d in residents], (who, params)
    brambilla = await walk(world, AS_MELZO, q="brambila")  # a typo still finds her
    assert len(brambilla) == 1
    routed = [await walk(world, AFOL, pool_id=pool["id"]) for pool in pools]
    assert any(routed), "some pool should hold dossiers AFOL sees"


async def test_a_special_category_filter_lists_exactly_what_the_label_allows(
    world: Demo, app: FastAPI, session: AsyncSession, clock: FrozenClock
) -> None:
    """`need_area=dipendenze` starts, for a social worker, from that need area's dossiers
    (dossiers._with_special_need): the pages must still be what the caller sees of dossiers with
    that need and a consent that shows it the label, no more, no less."""
    for who in (AS_MELZO, AS_INZAGO, SERT, AFOL):
        principal = await authenticate(
            session=session,
            security=app.state.security,
            authorization=f"Bearer {await world.token(who)}",
            client=ClientInfo(),
        )
        reference = await session.scalars(
            select(Dossier.id)
            .where(
                visible(principal, clock.now()),
                Dossier.need_areas.contains(["dipendenze"]),
                label_visible_condition(principal, ConfidentialityLabel.ETH, clock.now()),
            )
            .order_by(Dossier.id.desc())
        )
        wanted = [str(dossier_id) for dossier_id in reference]
        assert await walk(world, who, need_area="dipendenze") == wanted, who
        assert await walk(world, who, need_area="dipendenze", limit=200) == wanted, who
    # Villa (ETH allowed, Melzo) is the Melzo social worker's; Rota (no ETH) is nobody's here.
    villa = await dossier_of(session, family_name="Villa")
    rota = await dossier_of(session, family_name="Rota")
    melzo = await walk(world, AS_MELZO, need_area="dipendenze")
    assert str(villa.id) in melzo
    assert str(rota.id) not in melzo
    assert str(rota.id) in await walk(world, AS_MELZO, limit=200)  # seen, just not as dipendenze


async def test_case_manager_filters_list_exactly_that_case_manager_s_visible_dossiers(
    world: Demo, session: AsyncSession
) -> None:
    """`assigned_to_me` and `case_manager_id` walk that user's dossiers (dossiers._managed_by):
    the pages must be what the caller sees of them, for callers who see all, some or none."""
    managers = {"Brambilla": AS_INZAGO, "Sala": AS_INZAGO, "Colombo": AS_MELZO}
    for family_name, manager in managers.items():
        dossier = await dossier_of(session, family_name=family_name)
        url = f"/api/v1/dossiers/{dossier.id}"
        current = await world.client.get(url, headers=await world.headers(AS_MELZO))
        assigned = await world.client.patch(
            url,
            headers={**await world.headers(AS_MELZO), "If-Match": current.headers["ETag"]},
            json={"case_manager_user_id": str(world.users[manager])},
        )
        assert assigned.status_code == 200, assigned.text
    ids = {name: str((await dossier_of(session, family_name=name)).id) for name in managers}
    managed_by = {
        user: {ids[name] for name, m in managers.items() if m == user} for user in (AS_MELZO, AS_INZAGO)
    }
    for who in (AS_MELZO, AS_INZAGO, AFOL, SOLLEVA):
        everything = await walk(world, who, limit=200)
        mine = await walk(world, who, assigned_to_me="true")
        assert mine == [d for d in everything if d in managed_by.get(who, set())], who
        inzago_s = await walk(world, who, case_manager_id=str(world.users[AS_INZAGO]))
        assert inzago_s == [d for d in everything if d in managed_by[AS_INZAGO]], who
    # The Melzo dossiers assigned to the Inzago social worker are hers to see, and listed.
    assert len(await walk(world, AS_INZAGO, assigned_to_me="true")) == 2


async def test_a_reused_worklist_statement_is_asked_at_each_request_s_moment(
    world: Demo, clock: FrozenClock
) -> None:
    """The statement is built once per caller and filters and told the time on every request
    (worklist._worklist_statement): routings nobody answered are not overdue today, and are two
    weeks later, for the same caller asking the same question."""

    async def overdue() -> list[str]:
        headers = await world.fresh_headers(AFOL)  # a new login each time: tokens expire in 15 min
        page = await world.client.get("/api/v1/dossiers", params={"overdue": True}, headers=headers)
        assert page.status_code == 200, page.text
        return [item["id"] for item in page.json()["items"]]

    assert await overdue() == []
    hits = _worklist_statement.cache_info().hits
    clock.advance(days=14)
    late = await overdue()
    assert late, "AFOL's unanswered routings should be overdue after 14 days"
    # the same statement (another login session changes nothing), at a new moment
    assert _worklist_statement.cache_info().hits == hits + 1
    everything = await walk(world, AFOL, limit=200)
    assert set(late) <= set(everything)


async def test_overdue_lists_exactly_the_visible_dossiers_whose_answer_is_late(
    world: Demo, session: AsyncSession, clock: FrozenClock
) -> None:
    """`overdue` starts from the ambito's routing tasks awaiting an answer, newest dossier first
    (`ix_routing_task_awaiting`), not from what the caller may see: each dossier is checked, page
    after page, and `overdue=false` lists the rest."""
    clock.advance(days=14)
    late_tasks = await session.scalars(
        select(RoutingTask.dossier_id).where(
            RoutingTask.status == TaskStatus.requested, RoutingTask.due_at <= clock.now()
        )
    )
    late = {str(dossier_id) for dossier_id in late_tasks}
    listed: dict[str, list[str]] = {}
    for who in WHO:
        await world.fresh_headers(who)  # the cached tokens expired with the clock's move
        everything = await walk(world, who, limit=200)
        listed[who] = await walk(world, who, overdue="true")
        assert listed[who] == [d for d in everything if d in late], who
        assert await walk(world, who, overdue="false") == [d for d in everything if d not in late], who
    assert listed[AS_MELZO]
    assert listed[AFOL]
    # Late answers the caller may not see stay out: Inzago's residents for the Melzo social worker.
    assert late - set(listed[AS_MELZO])
    assert listed[DPO] == []


async def test_each_worklist_shape_is_planned_in_its_own_mode(world: Demo, session: AsyncSession) -> None:
    """The worklist's statement is planned once per connection where that held with one ambito in
    the database and with three, and then without bitmap scans where it walks the access bases;
    other pages are planned for their values (`worklist._plan_mode`). The request's transaction
    says so in its settings (the tests' requests share one: reset before each)."""

    async def mode_after(who: str = AS_MELZO, **params: Any) -> str:
        for name in ("plan_cache_mode", "enable_bitmapscan"):
            await session.execute(text(f"RESET {name}"))  # as a new request's transaction would
        page = await world.client.get("/api/v1/dossiers", params=params, headers=await world.headers(who))
        assert page.status_code == 200, page.text
        plan_cache_mode, bitmap_scans = (
            await session.execute(
                select(func.current_setting("plan_cache_mode"), func.current_setting("enable_bitmapscan"))
            )
        ).one()
        if plan_cache_mode != "force_generic_plan":
            return "custom"
        return "generic walk" if bitmap_scans == "off" else "generic"

    pool_id = str(await session.scalar(select(DossierRouting.pool_id).limit(1)))
    comune_id = str(await session.scalar(select(Comune.id).where(Comune.istat_code == MELZO_ISTAT)))
    first = await world.client.get("/api/v1/dossiers", params={"limit": 2}, headers=await world.headers(AFOL))
    deeper = {"limit": 2, "cursor": first.json()["next_cursor"]}
    expected = [
        ("custom", AS_MELZO, {"need_area": "lavoro"}),  # from that need area's dossiers
        ("custom", AFOL, {"need_area": "lavoro"}),  # through its pools
        ("custom", AS_MELZO, {"overdue": "true"}),
        ("custom", AS_MELZO, {"state": "in_pool"}),  # from that state's dossiers
        ("custom", AFOL, {"state": "in_pool"}),  # through its pools
        ("generic", AS_MELZO, {"q": "brambila"}),
        ("generic", AS_MELZO, {"assigned_to_me": "true"}),
        ("generic", AFOL, {"pool_id": pool_id}),
        ("generic", AFOL, {"pool_id": pool_id, "state": "in_pool"}),
        ("generic", AS_MELZO, {"comune_id": comune_id, **deeper}),
        ("generic walk", AS_MELZO, {}),
        ("generic walk", AFOL, deeper),
        ("generic walk", AS_MELZO, {"updated_since": "2020-01-01T00:00:00Z"}),
    ]
    assert [(await mode_after(who, **params), who, params) for _, who, params in expected] == expected


async def test_a_pool_filter_walks_the_pool_s_routings_without_parallel_workers(
    world: Demo, session: AsyncSession
) -> None:
    """Filtered by a pool, the page walks that pool's routings until it is full; PostgreSQL,
    expecting thousands, started parallel workers for every page (at 1M: 18 ms against 1.9). The
    request's transaction turns them off, with the generic plan, in the one `SET LOCAL` it sends."""
    pool_id = await session.scalar(select(DossierRouting.pool_id).limit(1))
    page = await world.client.get(
        "/api/v1/dossiers", params={"pool_id": str(pool_id)}, headers=await world.headers(AFOL)
    )
    assert page.status_code == 200, page.text
    assert page.json()["items"]
    settings = await session.execute(
        select(
            func.current_setting("plan_cache_mode"), func.current_setting("max_parallel_workers_per_gather")
        )
    )
    assert tuple(settings.one()) == ("force_generic_plan", "0")
