"""The instruments of the Modello Operativo Dialogico: the citizen's words and five competences."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import CompetenceEvaluation, Instrument
from tests.intake import AFOL, AS_INZAGO, AS_MELZO, SOLLEVA, Case, involve, open_case
from tests.support import Demo

SCORES_T0 = {
    "anticipation": 1.5,
    "strategies": 2,
    "objective_use": 2.5,
    "role_use": 3,
    "context_evaluation": 2,
}
SCORES_EX_POST = {
    "anticipation": 3,
    "strategies": 3.5,
    "objective_use": 4,
    "role_use": 3,
    "context_evaluation": 4.5,
}

ANSWERS = [
    {
        "question_id": "situazione",
        "viewpoint": "respondent",
        "text": "Da quando ho perso il lavoro non riesco a pagare l'affitto.",
    },
    {
        "question_id": "richiesta",
        "viewpoint": "respondent",
        "text": "Chiedo un contributo, perché così non posso andare avanti.",
    },
    {
        "question_id": "altri_familiari",
        "viewpoint": "other",
        "other_role": "madre",
        "text": "Mia madre direbbe che devo cercare un lavoro qualsiasi, anche lontano da Melzo.",
    },
]


@pytest.fixture
async def case(demo: Demo, session: AsyncSession) -> Case:
    return await open_case(demo, session, submitter=AS_MELZO)


async def interview(demo: Demo, case: Case, **body: Any) -> httpx.Response:
    payload = {"interview_date": "2026-11-03", "answers": ANSWERS, **body}
    return await demo.client.post(
        f"/api/v1/dossiers/{case.dossier_id}/pre-assessments",
        headers=await demo.headers(AS_MELZO),
        json=payload,
    )


async def score(demo: Demo, case: Case, phase: str, scores: dict[str, Any], **body: Any) -> httpx.Response:
    payload = {
        "phase": phase,
        "instrument_version": 1,
        "evaluated_on": "2026-11-05",
        "scores": scores,
        **body,
    }
    return await demo.client.post(
        f"/api/v1/dossiers/{case.dossier_id}/competence-evaluations",
        headers=await demo.headers(AS_MELZO),
        json=payload,
    )


class TestPreAssessment:
    async def test_the_citizens_words_are_kept_answer_by_answer(self, demo: Demo, case: Case) -> None:
        created = await interview(
            demo, case, stated_request="Un contributo economico", identified_need="Rientrare nel lavoro"
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["status"] == "draft"
        assert [(a["question_id"], a["viewpoint"], a["other_role"]) for a in body["answers"]] == [
            ("situazione", "respondent", None),
            ("richiesta", "respondent", None),
            ("altri_familiari", "other", "madre"),
        ]
        assert body["answers"][2]["text"].startswith("Mia madre")
        assert created.headers["etag"] == '"1"'

    async def test_a_draft_changes_a_final_one_does_not(self, demo: Demo, case: Case) -> None:
        headers = await demo.headers(AS_MELZO)
        created = (await interview(demo, case)).json()
        url = f"/api/v1/pre-assessments/{created['id']}"
        changed = await demo.client.patch(
            url,
            headers={**headers, "If-Match": '"1"'},
            json={"answers": ANSWERS[:1], "proposed_objective": "Tirocinio"},
        )
        assert changed.status_code == 200
        assert len(changed.json()["answers"]) == 1
        stale = await demo.client.post(f"{url}/finalize", headers={**headers, "If-Match": '"1"'})
        assert stale.status_code == 412
        final = await demo.client.post(
            f"{url}/finalize", headers={**headers, "If-Match": changed.headers["etag"]}
        )
        assert final.status_code == 200
        assert final.json()["status"] == "final"
        refused = await demo.client.patch(
            url, headers={**headers, "If-Match": final.headers["etag"]}, json={"answers": ANSWERS}
        )
        assert refused.status_code == 409
        # the reading of the social worker can still be completed
        analysis = await demo.client.patch(
            url,
            headers={**headers, "If-Match": final.headers["etag"]},
            json={"identified_need": "Autonomia economica"},
        )
        assert analysis.status_code == 200
        assert len(analysis.json()["answers"]) == 1
        # a correction is a new version pointing at the old one
        correction = await interview(demo, case, corrects_id=created["id"], final=True)
        assert correction.status_code == 201
        assert correction.json()["corrects_id"] == created["id"]

    @pytest.mark.parametrize(
        ("answers", "field"),
        [
            (
                [{"question_id": "oroscopo", "viewpoint": "respondent", "text": "x"}],
                "body.answers.0.question_id",
            ),
            ([{"question_id": "situazione", "viewpoint": "other", "text": "x"}], "body.answers.0.other_role"),
            (
                [
                    {
                        "question_id": "situazione",
                        "viewpoint": "respondent",
                        "other_role": "madre",
                        "text": "x",
                    }
                ],
                "body.answers.0.other_role",
            ),
            ([{"question_id": "situazione", "viewpoint": "altro", "text": "x"}], "body.answers.0.viewpoint"),
            (
                [{"question_id": "situazione", "viewpoint": "respondent", "text": "x" * 20001}],
                "body.answers.0.text",
            ),
            (
                [{"question_id": "situazione", "viewpoint": "respondent", "text": "a\x00b"}],
                "body.answers.0.text",
            ),
        ],
    )
    async def test_wrong_answers_are_named(
        self, demo: Demo, case: Case, answers: list[dict[str, Any]], field: str
    ) -> None:
        response = await interview(demo, case, answers=answers)
        assert response.status_code == 422
        assert field in [e["field"] for e in response.json()["errors"]]


class TestCompetences:
    async def test_deltas_from_t0_and_the_server_computed_profile(self, demo: Demo, case: Case) -> None:
        t0 = await score(demo, case, "T0", SCORES_T0)
        assert t0.status_code == 201, t0.text
        assert t0.json()["profile"] == "2.20"
        ex_post = await score(demo, case, "ex_post", SCORES_EX_POST, evaluated_on="2026-11-20")
        assert ex_post.json()["profile"] == "3.60"
        profile = await demo.client.get(
            f"/api/v1/dossiers/{case.dossier_id}/competence-profile", headers=await demo.headers(AS_MELZO)
        )
        assert profile.status_code == 200
        first, last = profile.json()["points"]
        assert first["phase"] == "T0"
        assert all(Decimal(d) == 0 for d in first["deltas"].values())
        assert {k: Decimal(v) for k, v in last["deltas"].items()} == {
            "anticipation": Decimal("1.5"),
            "strategies": Decimal("1.5"),
            "objective_use": Decimal("1.5"),
            "role_use": Decimal("0"),
            "context_evaluation": Decimal("2.5"),
        }
        assert Decimal(last["profile_delta"]) == Decimal("1.40")
        assert last["baseline_id"] == t0.json()["id"]
        labels = [c["label"] for c in profile.json()["competences"]]
        assert labels[0] == "Anticipazione degli aspetti critici"

    async def test_the_svg_draws_one_outline_per_phase(self, demo: Demo, case: Case) -> None:
        await score(demo, case, "T0", SCORES_T0)
        await score(demo, case, "ex_post", SCORES_EX_POST, evaluated_on="2026-11-20")
        response = await demo.client.get(
            f"/api/v1/dossiers/{case.dossier_id}/competence-profile.svg", headers=await demo.headers(AS_MELZO)
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/svg+xml"
        root = ET.fromstring(response.text)  # noqa: S314 - our own output
        ns = {"svg": "http://www.w3.org/2000/svg"}
        outlines = [p for p in root.iterfind(".//svg:polygon", ns) if p.get("stroke-width") in ("2.0", "3.0")]
        assert len(outlines) == 2
        assert outlines[0].get("stroke-dasharray") == "7 5"  # T0: dashed, prints in black and white
        assert outlines[1].get("stroke-dasharray") is None  # ex post: solid
        text = "".join(root.itertext())
        assert "Anticipazione" in text
        assert "T0 (inizio)" in text
        assert "Ex post" in text
        assert "profilo 3,60" in text

    @pytest.mark.parametrize(
        ("scores", "field", "code"),
        [
            ({**SCORES_T0, "anticipation": 7}, "body.scores.anticipation", "out_of_range"),
            ({**SCORES_T0, "anticipation": 0}, "body.scores.anticipation", "out_of_range"),
            ({**SCORES_T0, "anticipation": 2.25}, "body.scores.anticipation", "step"),
            ({k: v for k, v in SCORES_T0.items() if k != "role_use"}, "body.scores.role_use", "missing"),
            ({**SCORES_T0, "empathy": 3}, "body.scores.empathy", "extra_forbidden"),
            ({**SCORES_T0, "strategies": "tanta"}, "body.scores.strategies", "float_parsing"),
            ({**SCORES_T0, "strategies": True}, "body.scores.strategies", "float_type"),
        ],
    )
    async def test_scores_are_checked_against_the_instrument(
        self, demo: Demo, case: Case, scores: dict[str, Any], field: str, code: str
    ) -> None:
        response = await score(demo, case, "T0", scores)
        assert response.status_code == 422
        assert {"field": field, "code": code} in [
            {"field": e["field"], "code": e["code"]} for e in response.json()["errors"]
        ]

    async def test_the_client_cannot_send_the_profile(self, demo: Demo, case: Case) -> None:
        response = await score(demo, case, "T0", SCORES_T0, profile=5)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "body.profile"

    async def test_a_wrong_instrument_version_is_422(self, demo: Demo, case: Case) -> None:
        response = await score(demo, case, "T0", SCORES_T0, instrument_version=9)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "body.instrument_version"

    async def test_a_new_instrument_version_changes_no_old_score(
        self, demo: Demo, case: Case, session: AsyncSession
    ) -> None:
        first = (await score(demo, case, "T0", SCORES_T0)).json()
        old = await session.scalar(
            select(Instrument).where(Instrument.kind == "competence", Instrument.active)
        )
        assert old is not None
        definition = {**old.definition, "version": 2, "scale": {"min": 0, "max": 10, "step": 1}}
        await session.execute(update(Instrument).where(Instrument.id == old.id).values(active=False))
        session.add(
            Instrument(kind="competence", version=2, title="Versione 2", definition=definition, active=True)
        )
        await session.commit()
        stored = await session.scalar(
            select(CompetenceEvaluation).where(CompetenceEvaluation.id == uuid.UUID(first["id"]))
        )
        assert stored is not None
        assert stored.profile == Decimal("2.20")
        assert stored.instrument_version == 1
        assert (await score(demo, case, "in_itinere", SCORES_T0)).status_code == 422  # v1 no longer active
        v2 = await score(demo, case, "in_itinere", {k: 8 for k in SCORES_T0}, instrument_version=2)
        assert v2.status_code == 201
        points = (
            await demo.client.get(
                f"/api/v1/dossiers/{case.dossier_id}/competence-profile", headers=await demo.headers(AS_MELZO)
            )
        ).json()["points"]
        assert points[1]["deltas"] is None  # scores of different versions are not compared


class TestAccess:
    async def test_a_cooperative_providing_an_intervention_cannot_read_the_texts(
        self, demo: Demo, case: Case
    ) -> None:
        await interview(demo, case)
        assert (
            await involve(
                demo, case, "Cooperativa Sociale Solleva", sections=["registry", "plan", "interventions"]
            )
        ).status_code == 201
        solleva = await demo.headers(SOLLEVA)
        assert (
            await demo.client.get(f"/api/v1/dossiers/{case.dossier_id}", headers=solleva)
        ).status_code == 200
        for url in (
            f"/api/v1/dossiers/{case.dossier_id}/pre-assessments",
            f"/api/v1/dossiers/{case.dossier_id}/competence-profile",
            f"/api/v1/dossiers/{case.dossier_id}/competence-profile.svg",
        ):
            response = await demo.client.get(url, headers=solleva)
            assert response.status_code == 403, url
            assert "affitto" not in response.text
        search = await demo.client.get(
            "/api/v1/pre-assessments/search", params={"q": "affitto"}, headers=solleva
        )
        assert search.json()["items"] == []

    async def test_an_employment_operator_in_the_pool_evaluates_competences(
        self, demo: Demo, case: Case
    ) -> None:
        assert (await involve(demo, case, "AFOL Metropolitana", basis="pool")).status_code == 201
        response = await demo.client.post(
            f"/api/v1/dossiers/{case.dossier_id}/competence-evaluations",
            headers=await demo.headers(AFOL),
            json={"phase": "T0", "instrument_version": 1, "evaluated_on": "2026-11-05", "scores": SCORES_T0},
        )
        assert response.status_code == 201


class TestSearch:
    async def test_italian_words_are_found_whatever_their_form_and_accents(
        self, demo: Demo, case: Case
    ) -> None:
        await interview(demo, case)
        headers = await demo.headers(AS_MELZO)

        async def hits(q: str) -> list[dict[str, Any]]:
            response = await demo.client.get(
                "/api/v1/pre-assessments/search", params={"q": q}, headers=headers
            )
            assert response.status_code == 200, response.text
            return response.json()["items"]  # type: ignore[no-any-return]

        [found] = await hits("perche")  # written "perché"
        assert found["question_id"] == "richiesta"
        assert "«perché»" in found["snippet"]
        assert {h["question_id"] for h in await hits("lavorare")} == {
            "situazione",
            "altri_familiari",
        }  # stems
        [mother] = await hits('"lavoro qualsiasi"')
        assert mother["viewpoint"] == "other"
        assert mother["other_role"] == "madre"
        assert await hits("astronave") == []

    async def test_a_social_worker_of_another_comune_never_finds_them(self, demo: Demo, case: Case) -> None:
        await interview(demo, case)
        response = await demo.client.get(
            "/api/v1/pre-assessments/search", params={"q": "affitto"}, headers=await demo.headers(AS_INZAGO)
        )
        assert response.status_code == 200
        assert response.json()["items"] == []
        assert "affitto" not in response.text
