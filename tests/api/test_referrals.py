"""The scheda di segnalazione: validation, one person per citizen, idempotent retries, immutability."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AuditEvent, Consent, Dossier, Household, OutboxEvent, Person, Referral
from tests.intake import (
    AFOL,
    ARCHE,
    AS_INZAGO,
    AS_MELZO,
    COORDINATOR,
    MARIO,
    NICCOLO,
    SOLLEVA,
    open_case,
    referral,
    submit,
)
from tests.support import Demo


async def count(session: AsyncSession, model: type) -> int:
    return await session.scalar(select(func.count()).select_from(model)) or 0


class TestForm:
    async def test_the_active_form_is_the_italian_scheda(self, demo: Demo) -> None:
        response = await demo.client.get("/api/v1/referral-form", headers=await demo.headers(SOLLEVA))
        assert response.status_code == 200
        form = response.json()
        assert form["version"] == 1
        sections = {s["key"]: s for s in form["definition"]["sections"]}
        assert {"segnalante", "persona", "nucleo", "bisogno", "servizi", "consenso"} <= sections.keys()
        need = next(f for f in sections["bisogno"]["fields"] if f["key"] == "need_areas")
        assert {o["value"] for o in need["options"]} >= {"lavoro", "casa", "dipendenze", "violenza", "minori"}
        assert any(o["label"] == "Salute mentale" for o in need["options"])


class TestSubmission:
    async def test_a_cooperative_refers_and_a_dossier_opens(self, demo: Demo, session: AsyncSession) -> None:
        response = await submit(demo, SOLLEVA, referral())
        assert response.status_code == 201, response.text
        receipt = response.json()
        assert receipt["status"] == "received"
        assert receipt["dossier_id"] is None  # the cooperative does not see the dossier
        assert response.headers["location"] == f"/api/v1/referrals/{receipt['id']}"
        dossier = await session.scalar(select(Dossier))
        assert dossier is not None
        assert dossier.state == "segnalato"
        assert dossier.need_areas == ["lavoro", "poverta"]
        # the consent given with the referral is recorded, and an event waits in the outbox
        consent = await session.scalar(select(Consent))
        assert consent is not None
        assert consent.organization_kinds == ["afol", "asst", "comune", "cooperativa"]
        kinds = set((await session.scalars(select(OutboxEvent.event_type))).all())
        assert kinds == {"referral.received"}

    async def test_the_submitter_reads_its_own_referral(self, demo: Demo) -> None:
        receipt = (await submit(demo, SOLLEVA, referral())).json()
        response = await demo.client.get(
            f"/api/v1/referrals/{receipt['id']}", headers=await demo.headers(SOLLEVA)
        )
        assert response.status_code == 200
        assert response.json()["answers"]["request"].startswith("Chiede")
        assert response.json()["dossier_id"] is None
        other = await demo.client.get(f"/api/v1/referrals/{receipt['id']}", headers=await demo.headers(ARCHE))
        assert other.status_code == 404

    async def test_a_social_worker_sees_the_dossier_id_of_her_comune(self, demo: Demo) -> None:
        receipt = (await submit(demo, AS_MELZO, referral())).json()
        assert receipt["dossier_id"] is not None

    async def test_roles_that_do_not_refer_are_refused(self, demo: Demo) -> None:
        response = await submit(demo, COORDINATOR, referral())
        assert response.status_code == 403

    async def test_household_members_are_registered(self, demo: Demo, session: AsyncSession) -> None:
        household = [
            {"family_name": "Rossi", "given_name": "Luca", "relation": "figlio", "birth_date": "2010-05-04"},
            {"family_name": "Bianchi", "given_name": "Anna", "relation": "coniuge"},
        ]
        assert (await submit(demo, SOLLEVA, referral(household=household))).status_code == 201
        assert await count(session, Household) == 1
        relations = set((await session.scalars(select(Person.household_relation))).all())
        assert relations == {"intestatario", "figlio", "coniuge"}


class TestOnePersonPerCitizen:
    async def test_lower_case_code_and_missing_accents_find_the_same_person(
        self, demo: Demo, session: AsyncSession
    ) -> None:
        first = {**MARIO, "family_name": "Rossì", "fiscal_code": MARIO["fiscal_code"].lower()}
        second = {**MARIO, "family_name": "Rossi", "fiscal_code": " " + MARIO["fiscal_code"] + " "}
        assert (await submit(demo, SOLLEVA, referral(first))).status_code == 201
        assert (await submit(demo, AFOL, referral(second, need_areas=["lavoro"]))).status_code == 201
        assert await count(session, Person) == 1
        assert await count(session, Dossier) == 1
        assert await count(session, Referral) == 2

    async def test_without_a_code_a_similar_name_and_birth_date_is_a_candidate(
        self, demo: Demo, session: AsyncSession
    ) -> None:
        assert (await submit(demo, AS_MELZO, referral(NICCOLO))).status_code == 201
        again = {**NICCOLO, "family_name": "Cantu", "given_name": "Niccolo"}
        response = await submit(demo, AS_MELZO, referral(again))
        assert response.status_code == 409
        body = response.json()
        assert body["type"].endswith("/possible-duplicate")
        [candidate] = body["candidates"]
        assert candidate["family_name"] == "Cantù"
        # confirming the candidate links the referral to the same person
        confirmed = {**referral(again), "person_id": candidate["person_id"]}
        assert (await submit(demo, AS_MELZO, confirmed)).status_code == 201
        assert await count(session, Person) == 1
        assert await count(session, Referral) == 2

    async def test_stating_a_new_person_creates_one(self, demo: Demo, session: AsyncSession) -> None:
        assert (await submit(demo, AS_MELZO, referral(NICCOLO))).status_code == 201
        namesake = {**referral({**NICCOLO, "given_name": "Nicolò"}), "new_person": True}
        assert (await submit(demo, AS_MELZO, namesake)).status_code == 201
        assert await count(session, Person) == 2

    async def test_a_cooperative_learns_nothing_about_people_known_elsewhere(
        self, demo: Demo, session: AsyncSession
    ) -> None:
        """Solleva refers someone Melzo's social services already follow: same answer as for a stranger."""
        assert (await submit(demo, AS_MELZO, referral(NICCOLO))).status_code == 201
        known = await submit(demo, SOLLEVA, referral({**NICCOLO, "family_name": "Cantu"}))
        stranger = await submit(
            demo, SOLLEVA, referral({**NICCOLO, "family_name": "Brambilla", "given_name": "Ugo"})
        )
        assert known.status_code == stranger.status_code == 201
        assert known.json().keys() == stranger.json().keys()
        assert known.json()["dossier_id"] is None
        assert stranger.json()["dossier_id"] is None
        assert "candidates" not in known.text
        # no second Niccolò: the referral waits for a social worker of Melzo to say who it is
        assert await count(session, Person) == 2  # Niccolò and Ugo
        pending = await demo.client.get("/api/v1/referrals/pending", headers=await demo.headers(AS_MELZO))
        assert pending.status_code == 200
        [waiting] = pending.json()
        assert waiting["referral"]["id"] == known.json()["id"]
        [candidate] = waiting["candidates"]
        linked = await demo.client.post(
            f"/api/v1/referrals/{known.json()['id']}/identification",
            headers=await demo.headers(AS_MELZO),
            json={"person_id": candidate["person_id"]},
        )
        assert linked.status_code == 200, linked.text
        assert await count(session, Person) == 2
        assert await count(session, Dossier) == 2
        # Inzago's social worker is not asked, and cannot answer
        other = await demo.client.get("/api/v1/referrals/pending", headers=await demo.headers(AS_INZAGO))
        assert other.json() == []

    async def test_a_second_referral_of_a_closed_case_reopens_the_dossier(
        self, demo: Demo, session: AsyncSession
    ) -> None:
        case = await open_case(demo, session)
        headers = await demo.headers(AS_MELZO)
        closed = await demo.client.post(
            f"/api/v1/dossiers/{case.dossier_id}/transitions",
            headers=headers,
            json={"to": "ritirato", "reason": "La persona non vuole proseguire"},
        )
        assert closed.status_code == 200
        assert (await submit(demo, SOLLEVA, referral())).status_code == 201
        dossier = await demo.client.get(f"/api/v1/dossiers/{case.dossier_id}", headers=headers)
        assert dossier.json()["state"] == "segnalato"
        assert await count(session, Dossier) == 1


class TestIdempotency:
    async def test_same_key_and_body_give_the_same_answer(self, demo: Demo, session: AsyncSession) -> None:
        body = referral()
        first = await submit(demo, SOLLEVA, body, **{"Idempotency-Key": "gestionale-4711"})
        again = await submit(demo, SOLLEVA, body, **{"Idempotency-Key": "gestionale-4711"})
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        assert await count(session, Referral) == 1

    async def test_same_key_with_another_body_is_422(self, demo: Demo, session: AsyncSession) -> None:
        await submit(demo, SOLLEVA, referral(), **{"Idempotency-Key": "gestionale-4712"})
        other = await submit(
            demo,
            SOLLEVA,
            referral(urgency="urgente", urgency_reason="Sfratto domani"),
            **{"Idempotency-Key": "gestionale-4712"},
        )
        assert other.status_code == 422
        assert other.json()["errors"][0]["field"] == "header.Idempotency-Key"
        assert await count(session, Referral) == 1

    async def test_keys_belong_to_their_caller(self, demo: Demo, session: AsyncSession) -> None:
        await submit(demo, SOLLEVA, referral(), **{"Idempotency-Key": "k-1"})
        assert (await submit(demo, AFOL, referral(), **{"Idempotency-Key": "k-1"})).status_code == 201
        assert await count(session, Referral) == 2


class TestBadInput:
    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"person": {**MARIO, "fiscal_code": "RSSMRA80A01F119X"}}, "body.person.fiscal_code"),
            ({"person": {**MARIO, "fiscal_code": "RSSMRA80"}}, "body.person.fiscal_code"),
            ({"person": {**NICCOLO, "birth_date": "2099-01-01"}}, "body.person.birth_date"),
            ({"person": {**MARIO, "birth_date": "1981-01-01"}}, "body.person.birth_date"),
            ({"person": {**MARIO, "residence_comune_istat": "015146"}}, "body.person.residence_comune_istat"),
            ({"person": {**NICCOLO, "no_fiscal_code_reason": None}}, "body.person.no_fiscal_code_reason"),
            ({"answers": {"need_areas": ["lavoro", "astrologia"]}}, "body.answers.need_areas.1"),
            ({"answers": {"referrer_name": "x" * 100_000}}, "body.answers.referrer_name"),
            ({"person": {**MARIO, "family_name": "x" * 100_000}}, "body.person.family_name"),
            ({"answers": {"request": "Chiede\x00aiuto"}}, "body.answers.request"),
            ({"person": {**MARIO, "given_name": "Ma\x00rio"}}, "body.person.given_name"),
            ({"form_version": 2}, "body.form_version"),
            ({"answers": {"urgency": "urgente"}}, "body.answers.urgency_reason"),
            ({"answers": {"colore_preferito": "blu"}}, "body.answers.colore_preferito"),
            ({"answers": {"consent_date": "2030-01-01"}}, "body.answers.consent_date"),
        ],
    )
    async def test_each_wrong_field_is_named_and_nothing_is_written(
        self, demo: Demo, session: AsyncSession, change: dict[str, object], field: str
    ) -> None:
        body = referral()
        answers = change.pop("answers", None)
        body.update(change)
        if answers:
            body["answers"].update(answers)  # type: ignore[attr-defined]
        before = [await count(session, m) for m in (Person, Dossier, Referral, AuditEvent, Consent)]
        response = await submit(demo, SOLLEVA, body)
        assert response.status_code == 422, response.text
        assert field in [e["field"] for e in response.json()["errors"]], response.json()["errors"]
        after = [await count(session, m) for m in (Person, Dossier, Referral, AuditEvent, Consent)]
        assert before == after

    async def test_all_wrong_fields_come_in_one_answer(self, demo: Demo) -> None:
        body = referral({**MARIO, "residence_comune_istat": "999999"}, request=None, urgency="prestissimo")
        response = await submit(demo, SOLLEVA, body)
        fields = {e["field"] for e in response.json()["errors"]}
        assert fields == {
            "body.person.residence_comune_istat",
            "body.answers.request",
            "body.answers.urgency",
        }

    async def test_messages_in_italian(self, demo: Demo) -> None:
        body = referral({**MARIO, "family_name": ""})
        response = await submit(demo, SOLLEVA, body, **{"Accept-Language": "it"})
        assert response.json()["title"] == "Alcuni campi non sono validi"


class TestImmutability:
    async def test_a_submitted_referral_cannot_be_changed_or_deleted(
        self, demo: Demo, session: AsyncSession
    ) -> None:
        await submit(demo, SOLLEVA, referral())
        with pytest.raises(DBAPIError, match="immutable"):
            async with session.begin_nested():
                await session.execute(text("UPDATE referral SET answers = '{}'::jsonb"))
        with pytest.raises(DBAPIError, match=r"immutable|permission denied"):
            async with session.begin_nested():
                await session.execute(text("DELETE FROM referral"))

    async def test_a_correction_is_a_new_referral_pointing_at_the_old(
        self, demo: Demo, session: AsyncSession
    ) -> None:
        first = (await submit(demo, SOLLEVA, referral())).json()
        correction = {**referral(request="Chiede lavoro part-time"), "corrects_referral_id": first["id"]}
        response = await submit(demo, SOLLEVA, correction)
        assert response.status_code == 201
        assert response.json()["corrects_referral_id"] == first["id"]
        elsewhere = {**referral(), "corrects_referral_id": first["id"]}
        refused = await submit(demo, AFOL, elsewhere)
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["field"] == "body.corrects_referral_id"
