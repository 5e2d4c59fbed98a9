"""The access log: one row per read or write of dossier content, written or the request fails."""

from __future__ import annotations

import itertools
import uuid

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import AuditAction
from app.models import AuditEvent
from app.services.access import audit
from tests.intake import (
    AS_INZAGO,
    AS_MELZO,
    DPO,
    NICCOLO,
    SOLLEVA,
    Case,
    dossier_of,
    involve,
    open_case,
    referral,
    submit,
)
from tests.support import Demo


async def rows(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(AuditEvent)) or 0


@pytest.fixture
async def case(demo: Demo, session: AsyncSession) -> Case:
    case = await open_case(demo, session, submitter=AS_MELZO)
    await demo.client.patch(
        f"/api/v1/dossiers/{case.dossier_id}",
        headers={**await demo.headers(AS_MELZO), "If-Match": '"1"'},
        json={"case_manager_user_id": str(demo.users[AS_MELZO])},
    )
    return case


async def test_every_access_leaves_exactly_one_row(demo: Demo, case: Case, session: AsyncSession) -> None:
    headers = await demo.headers(AS_MELZO)
    base = f"/api/v1/dossiers/{case.dossier_id}"
    calls = [
        ("GET", base, None),
        ("GET", f"{base}/registry", None),
        ("GET", f"{base}/timeline", None),
        ("GET", f"{base}/referrals", None),
        ("GET", f"{base}/consents", None),
        ("GET", f"{base}/entries?section=plan", None),
        ("POST", f"{base}/entries", {"section": "plan", "text": "Obiettivo: colloquio AFOL"}),
        ("POST", f"{base}/transitions", {"to": "in_valutazione", "reason": "Primo colloquio"}),
        ("GET", f"/api/v1/referrals/{case.referral_id}", None),
        ("GET", "/api/v1/dossiers", None),
    ]
    for method, url, body in calls:
        before = await rows(session)
        response = await demo.client.request(method, url, headers=headers, json=body)
        assert response.status_code in (200, 201), (url, response.text)
        assert await rows(session) == before + 1, url
    logged = (
        await session.scalars(
            select(AuditEvent).where(AuditEvent.dossier_id == case.dossier_id).order_by(AuditEvent.seq)
        )
    ).all()
    last = logged[-1]
    assert last.actor_id == demo.users[AS_MELZO]
    assert last.resource_type == "referral"
    assert last.request_id


async def test_refused_requests_leave_no_row(demo: Demo, case: Case, session: AsyncSession) -> None:
    before = await rows(session)
    response = await demo.client.get(
        f"/api/v1/dossiers/{case.dossier_id}", headers=await demo.headers(AS_INZAGO)
    )
    assert response.status_code == 404
    assert await rows(session) == before


async def test_when_the_log_cannot_be_written_the_read_fails(
    demo: Demo, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = audit._values

    def unwritable(*args: object, **kwargs: object) -> dict[str, object]:
        values = original(*args, **kwargs)  # type: ignore[arg-type]
        values["purpose"] = "x" * 500  # longer than the column: the INSERT fails in PostgreSQL
        return values

    monkeypatch.setattr(audit, "_values", unwritable)
    transport = httpx.ASGITransport(app=demo.client._transport.app, raise_app_exceptions=False)  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get(
            f"/api/v1/dossiers/{case.dossier_id}", headers=await demo.headers(AS_MELZO)
        )
    assert response.status_code == 500
    assert "Rossi" not in response.text
    assert "Mario" not in response.text


async def test_the_app_role_cannot_change_past_rows(demo: Demo, case: Case, session: AsyncSession) -> None:
    for statement in (
        "UPDATE audit_event SET purpose = 'nulla'",
        "DELETE FROM audit_event",
        "TRUNCATE audit_event",
        "ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only",
        "UPDATE audit_chain_head SET last_seq = 0",
    ):
        with pytest.raises(DBAPIError, match=r"permission denied|must be owner|append-only"):
            async with session.begin_nested():
                await session.execute(text(statement))


async def test_rows_are_chained(demo: Demo, case: Case, session: AsyncSession) -> None:
    result = await audit.verify(session)
    assert result.ok
    assert result.rows >= 2
    chain = (
        await session.execute(
            select(AuditEvent.seq, AuditEvent.prev_hash, AuditEvent.hash).order_by(AuditEvent.seq)
        )
    ).all()
    assert [row.seq for row in chain] == list(range(1, len(chain) + 1))
    for previous, current in itertools.pairwise(chain):
        assert current.prev_hash == previous.hash


class TestAccessLogRoute:
    async def test_the_case_manager_reads_it(self, demo: Demo, case: Case) -> None:
        await demo.client.get(f"/api/v1/dossiers/{case.dossier_id}", headers=await demo.headers(AS_MELZO))
        response = await demo.client.get(
            f"/api/v1/dossiers/{case.dossier_id}/access-log", headers=await demo.headers(AS_MELZO)
        )
        assert response.status_code == 200
        actions = [(e["action"], e["resource_type"]) for e in response.json()["items"]]
        assert ("read", "dossier") in actions
        assert ("create", "referral") in actions

    async def test_the_dpo_reads_it_and_the_citizen_gets_a_csv(self, demo: Demo, case: Case) -> None:
        response = await demo.client.get(
            f"/api/v1/dossiers/{case.dossier_id}/access-log",
            params={"format": "csv"},
            headers=await demo.headers(DPO),
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        header, *lines = response.text.strip().splitlines()
        assert header.startswith("id,seq,occurred_at,actor_kind")
        assert lines

    async def test_other_participants_may_not_read_it(self, demo: Demo, case: Case) -> None:
        assert (await involve(demo, case, "Cooperativa Sociale Solleva")).status_code == 201
        response = await demo.client.get(
            f"/api/v1/dossiers/{case.dossier_id}/access-log", headers=await demo.headers(SOLLEVA)
        )
        assert response.status_code == 403


class TestListsInTheAccessLog:
    """A worklist page or a search shows names and states of many dossiers: each of them must find
    it in its own access log (who saw me in a list, who looked me up), and no other dossier."""

    async def test_each_dossier_shown_finds_the_page_and_the_search_in_its_log(
        self, demo: Demo, case: Case, session: AsyncSession
    ) -> None:
        assert (await submit(demo, AS_MELZO, referral(NICCOLO))).status_code == 201
        niccolo = (await dossier_of(session, family_name="Cantù")).id
        headers = await demo.headers(AS_MELZO)

        page = await demo.client.get("/api/v1/dossiers", headers=headers)
        shown = [uuid.UUID(item["id"]) for item in page.json()["items"]]
        assert set(shown) == {case.dossier_id, niccolo}
        found = await demo.client.get("/api/v1/dossiers", params={"q": "Rosi"}, headers=headers)
        assert [item["id"] for item in found.json()["items"]] == [str(case.dossier_id)]
        nobody = await demo.client.get("/api/v1/dossiers", params={"q": "Zanzottera"}, headers=headers)
        assert nobody.json()["items"] == []

        logged = (
            await session.execute(
                select(AuditEvent.action, AuditEvent.dossier_ids)
                .where(AuditEvent.resource_type == "dossier", AuditEvent.dossier_id.is_(None))
                .order_by(AuditEvent.seq)
            )
        ).all()
        assert [tuple(row) for row in logged] == [
            (AuditAction.list, shown),  # in the order shown
            (AuditAction.search, [case.dossier_id]),
            (AuditAction.search, []),  # a search that found nobody still says so
        ]

        async def actions(dossier_id: uuid.UUID, who: str) -> list[tuple[str, str]]:
            response = await demo.client.get(
                f"/api/v1/dossiers/{dossier_id}/access-log", headers=await demo.fresh_headers(who)
            )
            assert response.status_code == 200, response.text
            return [(e["action"], e["resource_type"]) for e in response.json()["items"]]

        assert [a for a in await actions(case.dossier_id, AS_MELZO) if a[1] == "dossier"][-2:] == [
            ("list", "dossier"),
            ("search", "dossier"),
        ]
        niccolo_log = await actions(niccolo, DPO)
        assert ("list", "dossier") in niccolo_log
        assert ("search", "dossier") not in niccolo_log  # nobody looked Niccolò up

        reads_only = await demo.client.get(
            f"/api/v1/dossiers/{niccolo}/access-log",
            params={"lists": "false"},
            headers=await demo.fresh_headers(DPO),
        )
        assert reads_only.status_code == 200
        kept = [(e["action"], e["resource_type"]) for e in reads_only.json()["items"]]
        assert kept
        assert ("list", "dossier") not in kept
        refused = await demo.client.get(
            f"/api/v1/dossiers/{niccolo}/access-log",
            params={"lists": "perhaps"},
            headers=await demo.headers(DPO),
        )
        assert refused.status_code == 422
        assert [e["field"] for e in refused.json()["errors"]] == ["query.lists"]
        # the same rows less the list, and the DPO's first look at this log
        assert kept == [a for a in niccolo_log if a != ("list", "dossier")] + [("read", "access_log")]

    async def test_the_rows_naming_dossiers_are_chained_and_verify(
        self, demo: Demo, case: Case, session: AsyncSession
    ) -> None:
        headers = await demo.headers(AS_MELZO)
        assert (await demo.client.get("/api/v1/dossiers", headers=headers)).status_code == 200
        row = await session.scalar(select(AuditEvent).where(AuditEvent.action == AuditAction.list))
        assert row is not None
        assert row.dossier_ids == [case.dossier_id]
        recomputed = await session.scalar(
            text("SELECT sha256(prev_hash || snodo_audit_canonical(e)) FROM audit_event e WHERE id = :id"),
            {"id": row.id},
        )
        assert recomputed == row.hash
        canonical = await session.scalar(
            text("SELECT convert_from(snodo_audit_canonical(e), 'UTF8') FROM audit_event e WHERE id = :id"),
            {"id": row.id},
        )
        assert canonical.endswith(f"|{case.dossier_id}")  # the dossiers shown are part of what is hashed
        assert (await audit.verify(session)).ok

    async def test_the_lookup_of_lists_answers_for_the_requests_own_ambito_only(
        self, demo: Demo, case: Case, session: AsyncSession
    ) -> None:
        """`snodo_lists_showing` reads past row-level security (to use its index): it must not
        answer for an ambito other than the request's."""
        assert (
            await demo.client.get("/api/v1/dossiers", headers=await demo.headers(AS_MELZO))
        ).status_code == 200
        ambito = demo.ambito_id
        other = uuid.uuid4()
        lookup = text("SELECT count(*) FROM snodo_lists_showing(:dossier, :ambito)")

        async def found(tenant: uuid.UUID, asked: uuid.UUID) -> int:
            async with session.begin_nested():
                await session.execute(
                    text("SELECT set_config('snodo.ambito_id', :t, true)"), {"t": str(tenant)}
                )
                return await session.scalar(lookup, {"dossier": case.dossier_id, "ambito": asked}) or 0

        assert await found(ambito, ambito) == 1
        assert await found(other, ambito) == 0  # another ambito's request asking for this one
        assert await found(ambito, other) == 0
