"""Pools territoriali: routing by rules, each agency's answer, access that follows routing,
the coordinator's queue, meetings, the worklist."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.calendar import add_working_days
from app.core.clock import FrozenClock
from app.models import AuditEvent, OutboxEvent, RoutingTask
from tests.intake import (
    AFOL,
    ARCHE,
    AS_INZAGO,
    AS_MELZO,
    COORDINATOR,
    MARIO,
    NICCOLO,
    SOLLEVA,
    dossier_of,
    referral,
    submit,
)
from tests.support import Demo

WORK_POOL = "Pool lavoro - Melzo"


async def pool_id(demo: Demo, name: str) -> str:
    pools = (await demo.client.get("/api/v1/pools", headers=await demo.headers(COORDINATOR))).json()
    return next(p["id"] for p in pools if p["name"] == name)


async def routings(demo: Demo, dossier_id: uuid.UUID, who: str = COORDINATOR) -> list[dict[str, Any]]:
    response = await demo.client.get(
        f"/api/v1/dossiers/{dossier_id}/routings", headers=await demo.headers(who)
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def work_referral(demo: Demo, session: AsyncSession, **answers: Any) -> uuid.UUID:
    """Mario Rossi of Melzo asks for work; consent covers comune, coops, AFOL, ASST."""
    response = await submit(demo, AS_MELZO, referral(need_areas=["lavoro"], **answers))
    assert response.status_code == 201, response.text
    return (await dossier_of(session, MARIO["fiscal_code"])).id


class TestRouting:
    async def test_a_melzo_work_referral_reaches_the_melzo_work_pool(
        self, demo_pools: Demo, session: AsyncSession
    ) -> None:
        demo = demo_pools
        dossier_id = await work_referral(demo, session)
        [routed] = await routings(demo, dossier_id)
        assert routed["pool_id"] == await pool_id(demo, WORK_POOL)
        explanation = routed["explanation"]
        [chosen] = [r for r in explanation["rules"] if r["rule_id"] == explanation["rule_id"]]
        assert chosen["matched"] is True
        assert chosen["name"] == "Lavoro: Melzo e comuni vicini"
        assert WORK_POOL in explanation["summary"]
        # each member organization covered by the consent is asked for its part
        asked = {t["organization_id"] for t in routed["tasks"]}
        assert asked == {
            str(demo.org("Comune di Melzo")),
            str(demo.org("AFOL Metropolitana")),
            str(demo.org("Cooperativa Sociale Solleva")),
        }
        assert all(t["status"] == "requested" for t in routed["tasks"])
        # the AFOL member now sees the dossier; Inzago's social worker still does not
        url = f"/api/v1/dossiers/{dossier_id}"
        afol = await demo.client.get(url, headers=await demo.headers(AFOL))
        assert afol.status_code == 200
        assert afol.json()["access"] == ["pool"]
        assert (await demo.client.get(url, headers=await demo.headers(AS_INZAGO))).status_code == 404
        assert (await demo.client.get(url, headers=await demo.headers(ARCHE))).status_code == 404
        events = (await session.scalars(select(OutboxEvent.event_type))).all()
        assert "dossier.routed" in events

    async def test_the_preview_explains_without_saving(self, demo_pools: Demo, session: AsyncSession) -> None:
        demo = demo_pools
        response = await demo.client.post(
            "/api/v1/routing/preview",
            headers=await demo.headers(AS_MELZO),
            json={"residence_comune_istat": "015142", "need_areas": ["lavoro"], "birth_date": "1980-01-01"},
        )
        assert response.status_code == 200, response.text
        preview = response.json()
        assert [p["name"] for p in preview["pools"]] == [WORK_POOL]
        by_name = {r["name"]: r for r in preview["rules"]}
        melzo = by_name["Lavoro: Melzo e comuni vicini"]
        assert melzo["matched"] is True
        assert {c["condition"]: c["matched"] for c in melzo["checks"]} == {"comune": True, "need_areas": True}
        cassano = by_name["Lavoro: Cassano d'Adda e Inzago"]
        assert cassano["matched"] is False
        assert "comune" in cassano["explanation"]
        assert preview["summary"] == f"Assegnata a: {WORK_POOL}."
        assert (await session.scalars(select(RoutingTask))).all() == []

    async def test_a_violence_referral_goes_only_to_viola(
        self, demo_pools: Demo, session: AsyncSession
    ) -> None:
        demo = demo_pools
        response = await submit(demo, AS_MELZO, referral(need_areas=["violenza", "lavoro"]))
        assert response.status_code == 201
        dossier = await dossier_of(session, MARIO["fiscal_code"])
        names = {r["pool_id"] for r in await routings(demo, dossier.id)}
        assert names == {await pool_id(demo, "Rete antiviolenza VIOLA")}
        preview = await demo.client.post(
            "/api/v1/routing/preview",
            headers=await demo.headers(COORDINATOR),
            json={
                "residence_comune_istat": "015142",
                "need_areas": ["violenza", "lavoro"],
                "compartment": "violence",
            },
        )
        skipped = preview.json()["skipped"]
        assert [s["name"] for s in skipped] == [WORK_POOL]
        assert "VIOLA" in skipped[0]["note"]

    async def test_no_matching_rule_puts_the_dossier_in_the_coordinators_queue(
        self, demo_pools: Demo, session: AsyncSession
    ) -> None:
        demo = demo_pools
        response = await submit(demo, AS_MELZO, referral(need_areas=["salute_mentale"]))
        assert response.status_code == 201
        dossier = await dossier_of(session, MARIO["fiscal_code"])
        queue = (
            await demo.client.get("/api/v1/routing/queue", headers=await demo.headers(COORDINATOR))
        ).json()
        [waiting] = queue["unrouted"]
        assert waiting["dossier_id"] == str(dossier.id)
        assert waiting["need_areas"] == []  # salute mentale is a special category: not shown
        assert waiting["has_special_categories"] is True
        routed = await demo.client.post(
            f"/api/v1/dossiers/{dossier.id}/routings",
            headers=await demo.headers(COORDINATOR),
            json={
                "pool_id": await pool_id(demo, "Pool domiciliarità (SID)"),
                "reason": "Serve supporto a domicilio",
            },
        )
        assert routed.status_code == 201, routed.text
        queue = (
            await demo.client.get("/api/v1/routing/queue", headers=await demo.headers(COORDINATOR))
        ).json()
        assert queue["unrouted"] == []
        timeline = await demo.client.get(
            f"/api/v1/dossiers/{dossier.id}/timeline", headers=await demo.headers(AS_MELZO)
        )
        kinds = [e["kind"] for e in timeline.json()["items"]]
        assert kinds.index("routing_unmatched") < kinds.index("routed")

    async def test_only_coordinators_override_and_see_the_queue(
        self, demo_pools: Demo, session: AsyncSession
    ) -> None:
        demo = demo_pools
        dossier_id = await work_referral(demo, session)
        assert (
            await demo.client.get("/api/v1/routing/queue", headers=await demo.headers(AS_MELZO))
        ).status_code == 403
        response = await demo.client.post(
            f"/api/v1/dossiers/{dossier_id}/routings",
            headers=await demo.headers(AS_MELZO),
            json={"pool_id": await pool_id(demo, "Pool povertà"), "reason": "Anche povertà"},
        )
        assert response.status_code == 403


class TestAccessFollowsRouting:
    async def test_ending_the_routing_ends_access_at_the_next_request(
        self, demo_pools: Demo, session: AsyncSession
    ) -> None:
        demo = demo_pools
        dossier_id = await work_referral(demo, session)
        url = f"/api/v1/dossiers/{dossier_id}"
        assert (await demo.client.get(url, headers=await demo.headers(AFOL))).status_code == 200
        [routed] = await routings(demo, dossier_id)
        ended = await demo.client.post(
            f"{url}/routings/{routed['id']}/end",
            headers=await demo.headers(COORDINATOR),
            json={"reason": "Non è un caso per il SIL"},
        )
        assert ended.status_code == 200
        assert (await demo.client.get(url, headers=await demo.headers(AFOL))).status_code == 404
        [after] = await routings(demo, dossier_id)
        assert {t["status"] for t in after["tasks"]} == {"cancelled"}

    async def test_removing_a_member_ends_its_access_at_the_next_request(
        self, demo_pools: Demo, session: AsyncSession
    ) -> None:
        demo = demo_pools
        dossier_id = await work_referral(demo, session)
        url = f"/api/v1/dossiers/{dossier_id}"
        assert (await demo.client.get(url, headers=await demo.headers(SOLLEVA))).status_code == 200
        work = await pool_id(demo, WORK_POOL)
        pool = (await demo.client.get(f"/api/v1/pools/{work}", headers=await demo.headers(SOLLEVA))).json()
        member = next(
            m for m in pool["members"] if m["organization_id"] == str(demo.org("Cooperativa Sociale Solleva"))
        )
        removed = await demo.client.delete(
            f"/api/v1/pools/{work}/members/{member['id']}", headers=await demo.headers(COORDINATOR)
        )
        assert removed.status_code == 200
        assert (await demo.client.get(url, headers=await demo.headers(SOLLEVA))).status_code == 404

    async def test_declining_gives_up_access(self, demo_pools: Demo, session: AsyncSession) -> None:
        demo = demo_pools
        dossier_id = await work_referral(demo, session)
        tasks = (
            await demo.client.get("/api/v1/me/routing-tasks", headers=await demo.headers(SOLLEVA))
        ).json()
        [task] = tasks
        assert task["dossier_id"] == str(dossier_id)
        no_reason = await demo.client.post(
            f"/api/v1/routing-tasks/{task['id']}/decline", headers=await demo.headers(SOLLEVA), json={}
        )
        assert no_reason.status_code == 422
        declined = await demo.client.post(
            f"/api/v1/routing-tasks/{task['id']}/decline",
            headers=await demo.headers(SOLLEVA),
            json={"reason": "Nessun posto disponibile nel progetto"},
        )
        assert declined.status_code == 200
        assert declined.json()["status"] == "declined"
        url = f"/api/v1/dossiers/{dossier_id}"
        assert (await demo.client.get(url, headers=await demo.headers(SOLLEVA))).status_code == 404

    async def test_an_agency_answers_only_its_own_tasks_in_order(
        self, demo_pools: Demo, session: AsyncSession
    ) -> None:
        demo = demo_pools
        await work_referral(demo, session)
        [task] = (await demo.client.get("/api/v1/me/routing-tasks", headers=await demo.headers(AFOL))).json()
        url = f"/api/v1/routing-tasks/{task['id']}"
        assert (
            await demo.client.post(f"{url}/accept", headers=await demo.headers(SOLLEVA))
        ).status_code == 404
        assert (
            await demo.client.post(f"{url}/complete", headers=await demo.headers(AFOL))
        ).status_code == 409
        assert (await demo.client.post(f"{url}/accept", headers=await demo.headers(AFOL))).json()[
            "status"
        ] == "accepted"
        assert (await demo.client.post(f"{url}/complete", headers=await demo.headers(AFOL))).json()[
            "status"
        ] == "completed"
        assert (await demo.client.post(f"{url}/accept", headers=await demo.headers(AFOL))).status_code == 409


class TestDeadlines:
    async def test_an_unanswered_routing_becomes_overdue_after_five_working_days(
        self, demo_pools: Demo, session: AsyncSession, clock: FrozenClock
    ) -> None:
        demo = demo_pools
        dossier_id = await work_referral(demo, session)
        [routed] = await routings(demo, dossier_id)
        due = {t["due_at"] for t in routed["tasks"]}
        assert len(due) == 1
        queue = (
            await demo.client.get("/api/v1/routing/queue", headers=await demo.headers(COORDINATOR))
        ).json()
        assert queue["overdue"] == []
        # AFOL answers in time; Melzo and Solleva do not
        [afol_task] = (
            await demo.client.get("/api/v1/me/routing-tasks", headers=await demo.headers(AFOL))
        ).json()
        await demo.client.post(
            f"/api/v1/routing-tasks/{afol_task['id']}/accept", headers=await demo.headers(AFOL)
        )

        # Due five working days after the routing, weekends and holidays skipped (the due date
        # is the calendar's, tested in tests/unit): a minute before it nobody is late.
        [due_at] = [datetime.fromisoformat(d) for d in due]
        assert due_at == add_working_days(clock.now(), 5)
        clock.advance(seconds=(due_at - clock.now()).total_seconds() - 60)
        queue = (
            await demo.client.get("/api/v1/routing/queue", headers=await demo.fresh_headers(COORDINATOR))
        ).json()
        assert queue["overdue"] == []
        clock.advance(days=1, seconds=60)  # a day after it
        queue = (
            await demo.client.get("/api/v1/routing/queue", headers=await demo.fresh_headers(COORDINATOR))
        ).json()
        late = {item["task"]["organization_id"] for item in queue["overdue"]}
        assert late == {str(demo.org("Comune di Melzo")), str(demo.org("Cooperativa Sociale Solleva"))}
        assert [item["days_overdue"] for item in queue["overdue"]] == [1, 1]
        looked = await session.scalar(
            select(AuditEvent.dossier_ids)
            .where(AuditEvent.resource_type == "routing_queue")
            .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        )
        assert looked == [dossier_id]  # the queue's look is in the dossier's access log
        worklist = await demo.client.get(
            "/api/v1/dossiers", params={"overdue": True}, headers=await demo.fresh_headers(AS_MELZO)
        )
        [item] = worklist.json()["items"]
        assert item["id"] == str(dossier_id)
        assert item["overdue"] is True

    def test_working_days_skip_weekends_and_holidays(self) -> None:
        from datetime import UTC, datetime

        from app.core.calendar import add_working_days

        thursday_before_easter = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)
        # Fri 3, (Sat, Sun, Easter Monday 6), Tue 7, Wed 8, Thu 9, Fri 10
        assert add_working_days(thursday_before_easter, 5) == datetime(2026, 4, 10, 9, 0, tzinfo=UTC)
        friday = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)
        assert add_working_days(friday, 1) == friday + timedelta(days=3)


class TestMeetings:
    async def test_a_meeting_discusses_routed_dossiers_and_records_decisions(
        self, demo_pools: Demo, session: AsyncSession, clock: FrozenClock
    ) -> None:
        demo = demo_pools
        dossier_id = await work_referral(demo, session)
        work = await pool_id(demo, WORK_POOL)
        when = (clock.now() + timedelta(days=3)).isoformat()
        stranger = uuid.uuid4()
        refused = await demo.client.post(
            f"/api/v1/pools/{work}/meetings",
            headers=await demo.headers(AS_MELZO),
            json={"scheduled_at": when, "agenda": [str(dossier_id), str(stranger)]},
        )
        assert refused.status_code == 422
        assert [e["field"] for e in refused.json()["errors"]] == ["body.agenda.1"]
        meeting = await demo.client.post(
            f"/api/v1/pools/{work}/meetings",
            headers=await demo.headers(AS_MELZO),
            json={"scheduled_at": when, "location": "Sala consiliare, Melzo", "agenda": [str(dossier_id)]},
        )
        assert meeting.status_code == 201, meeting.text
        mine = (await demo.client.get("/api/v1/me/meetings", headers=await demo.headers(AFOL))).json()
        assert [m["id"] for m in mine] == [meeting.json()["id"]]
        assert (
            await demo.client.get("/api/v1/me/meetings", headers=await demo.headers(AS_INZAGO))
        ).json() == []

        clock.advance(days=3, minutes=30)
        recorded = await demo.client.put(
            f"/api/v1/meetings/{meeting.json()['id']}/items/{dossier_id}",
            headers=await demo.fresh_headers(AFOL),
            json={
                "minutes": "Il SIL propone un tirocinio",
                "decision": "start_intervention",
                "decision_note": "Tirocinio",
            },
        )
        assert recorded.status_code == 200, recorded.text
        read = await demo.client.get(
            f"/api/v1/meetings/{meeting.json()['id']}", headers=await demo.fresh_headers(AFOL)
        )
        assert read.status_code == 200
        shown = await session.scalar(
            select(AuditEvent.dossier_ids)
            .where(AuditEvent.resource_type == "meeting")
            .order_by(AuditEvent.seq.desc())
        )
        assert shown == [dossier_id]  # the dossiers whose minutes the member saw: in their access logs
        timeline = await demo.client.get(
            f"/api/v1/dossiers/{dossier_id}/timeline", headers=await demo.fresh_headers(AS_MELZO)
        )
        decisions = [e for e in timeline.json()["items"] if e["kind"] == "pool_decision"]
        assert decisions[0]["data"]["decision"] == "start_intervention"
        as_coordinator = await demo.client.get(
            f"/api/v1/meetings/{meeting.json()['id']}", headers=await demo.fresh_headers(COORDINATOR)
        )
        [item] = as_coordinator.json()["agenda"]
        assert item["minutes"] is None  # the coordinator sees the agenda, not the minutes
        assert as_coordinator.json()["status"] == "held"


class TestWorklist:
    async def test_filters_and_search(self, demo_pools: Demo, session: AsyncSession) -> None:
        demo = demo_pools
        await work_referral(demo, session)
        assert (await submit(demo, AS_MELZO, referral(NICCOLO, need_areas=["poverta"]))).status_code == 201
        headers = await demo.headers(AS_MELZO)

        async def names(**params: Any) -> list[str]:
            response = await demo.client.get("/api/v1/dossiers", params=params, headers=headers)
            assert response.status_code == 200, response.text
            return [
                f"{i['person']['family_name']} {i['person']['given_name']}" for i in response.json()["items"]
            ]

        assert await names() == ["Cantù Niccolò", "Rossi Mario"]  # newest first
        assert await names(q="cantu") == ["Cantù Niccolò"]
        assert await names(q="Niccolo Cantu") == ["Cantù Niccolò"]
        assert await names(q="rosi") == ["Rossi Mario"]  # a typo
        assert await names(q=MARIO["fiscal_code"].lower()) == ["Rossi Mario"]
        assert await names(pool_id=await pool_id(demo, WORK_POOL)) == ["Rossi Mario"]
        assert await names(need_area="lavoro") == ["Rossi Mario"]
        assert await names(state="segnalato") == ["Cantù Niccolò", "Rossi Mario"]
        assert await names(state="in_pool") == []
        assert await names(assigned_to_me=True) == []
        short = await demo.client.get("/api/v1/dossiers", params={"q": "ro"}, headers=headers)
        assert short.status_code == 422
        assert short.json()["errors"][0]["field"] == "query.q"

    async def test_every_word_of_a_search_must_be_in_the_name(self, demo_pools: Demo) -> None:
        """ "Giulia Brambila" finds Giulia among the Brambillas; before, the query as a whole matched
        every Brambilla, and among thousands the given name made no difference (migration 0012)."""
        demo = demo_pools
        for n, given in enumerate(("Mario", "Giulia", "Anna", "Giuliano")):
            person = {
                **NICCOLO,
                "family_name": "Brambilla",
                "given_name": given,
                "birth_date": f"197{n}-05-01",
            }
            assert (await submit(demo, AS_MELZO, referral(person, need_areas=["poverta"]))).status_code == 201
        headers = await demo.headers(AS_MELZO)

        async def names(q: str) -> list[str]:
            response = await demo.client.get("/api/v1/dossiers", params={"q": q}, headers=headers)
            assert response.status_code == 200, response.text
            return sorted(i["person"]["given_name"] for i in response.json()["items"])

        assert await names("brambila") == ["Anna", "Giulia", "Giuliano", "Mario"]
        assert await names("Giulia Brambila") == ["Giulia", "Giuliano"]  # "giulia" is in "giuliano"
        assert await names("brambilla mario") == ["Mario"]
        assert await names("brambilla marta") == []
        assert await names("Brambilla, Anna") == ["Anna"]  # punctuation is not a word

    async def test_odd_searches_answer_an_empty_page_not_an_error(self, demo_pools: Demo) -> None:
        demo = demo_pools
        assert (await submit(demo, AS_MELZO, referral(NICCOLO, need_areas=["poverta"]))).status_code == 201
        headers = await demo.headers(AS_MELZO)
        odd = ("%%%", "___", "'''", "ß ß ß", "🙂🙂🙂", "a" * 100, "x\ty\tz", "--;", "\\\\\\", "a b c d e f g")
        for q in odd:
            response = await demo.client.get("/api/v1/dossiers", params={"q": q}, headers=headers)
            assert response.status_code == 200, (q, response.text)
            assert response.json()["items"] == [], q

    async def test_a_special_need_area_filter_reveals_nothing(
        self, demo_pools: Demo, session: AsyncSession
    ) -> None:
        demo = demo_pools
        assert (
            await submit(demo, AS_MELZO, referral(need_areas=["lavoro", "dipendenze"]))
        ).status_code == 201
        response = await demo.client.get(
            "/api/v1/dossiers", params={"need_area": "dipendenze"}, headers=await demo.headers(AFOL)
        )
        assert response.json()["items"] == []
        everything = await demo.client.get("/api/v1/dossiers", headers=await demo.headers(AFOL))
        assert len(everything.json()["items"]) == 1

    async def test_pages_follow_the_cursor_without_gaps(
        self, demo_pools: Demo, session: AsyncSession
    ) -> None:
        demo = demo_pools
        for i in range(5):
            person = {
                **NICCOLO,
                "family_name": f"Brambilla{i}",
                "given_name": "Ugo",
                "birth_date": f"197{i}-01-01",
            }
            assert (await submit(demo, AS_MELZO, referral(person, need_areas=["casa"]))).status_code == 201
        headers = await demo.headers(AS_MELZO)
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await demo.client.get("/api/v1/dossiers", params=params, headers=headers)).json()
            seen += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == 5


async def test_pool_configuration_is_checked(demo_pools: Demo) -> None:
    demo = demo_pools
    headers = await demo.headers(COORDINATOR)
    bad = await demo.client.post(
        "/api/v1/pools",
        headers=headers,
        json={
            "name": "Pool giovani",
            "area": "giovani",
            "comune_ids": [str(uuid.uuid4())],
            "active_from": "2026-01-01",
        },
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "body.comune_ids.0"
    rule = await demo.client.post(
        "/api/v1/routing/rules",
        headers=headers,
        json={
            "name": "Giovani",
            "priority": 50,
            "need_areas": ["minori"],
            "target_pool_ids": [str(uuid.uuid4())],
        },
    )
    assert rule.status_code == 422
    assert rule.json()["errors"][0]["field"] == "body.target_pool_ids.0"
    comune = str((await demo.client.get("/api/v1/pools", headers=headers)).json()[0]["comune_ids"][0])
    social = await demo.client.post(
        "/api/v1/pools",
        headers=await demo.headers(AS_MELZO),
        json={"name": "Mio pool", "area": "giovani", "comune_ids": [comune], "active_from": "2026-01-01"},
    )
    assert social.status_code == 403
