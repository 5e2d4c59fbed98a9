"""Pre-assessment interviews, competence evaluations, the profile (JSON and SVG), text search."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from app.api.deps import IfMatch, NowDep, PrincipalDep, SessionDep, if_match_version
from app.core.enums import InstrumentKind
from app.schemas.assessment import (
    AnswerRead,
    CompetenceEvaluationCreate,
    CompetenceEvaluationRead,
    CompetenceInfo,
    CompetenceProfile,
    PreAssessmentCreate,
    PreAssessmentRead,
    PreAssessmentUpdate,
    ProfilePoint,
    SearchHit,
    SearchResults,
)
from app.schemas.intake import ReferralFormRead
from app.services.assessment import assessments

router = APIRouter(prefix="/api/v1", tags=["assessment"])

Responses = dict[int | str, dict[str, Any]]
_SECTION: Responses = {
    404: {"description": "No such dossier, or not visible to you"},
    403: {"description": "Your role may not see (or change) the assessment section"},
}


def _read(view: assessments.PreAssessmentView, response: Response | None = None) -> PreAssessmentRead:
    pre = view.pre_assessment
    if response is not None:
        response.headers["ETag"] = f'"{pre.version}"'
    return PreAssessmentRead(
        id=pre.id,
        dossier_id=pre.dossier_id,
        instrument_version=pre.instrument_version,
        interview_date=pre.interview_date,
        interviewer_user_id=pre.interviewer_user_id,
        status=pre.status,
        corrects_id=pre.corrects_id,
        stated_request=pre.stated_request,
        identified_need=pre.identified_need,
        proposed_objective=pre.proposed_objective,
        finalized_at=pre.finalized_at,
        version=pre.version,
        answers=[AnswerRead.model_validate(a) for a in view.answers],
        created_at=pre.created_at,
        updated_at=pre.updated_at,
    )


@router.get(
    "/instruments/{kind}", summary="The active version of an instrument (question set or competence scale)"
)
async def get_instrument(
    principal: PrincipalDep, session: SessionDep, kind: InstrumentKind
) -> ReferralFormRead:
    found = await assessments.active_instrument(session, kind)
    return ReferralFormRead(version=found.version, title=found.title, definition=found.definition)


@router.get(
    "/pre-assessments/search", summary="Search the citizens' words (Italian, accents and word forms folded)"
)
async def search_pre_assessments(
    principal: PrincipalDep,
    session: SessionDep,
    now: NowDep,
    q: Annotated[str, Query(min_length=3, max_length=200, pattern=r"^[^\x00]*$")],
    limit: Annotated[int, Query(ge=1, le=assessments.SEARCH_LIMIT)] = 20,
) -> SearchResults:
    hits = await assessments.search(session, principal, q, now=now, limit=limit)
    return SearchResults(
        items=[
            SearchHit(
                dossier_id=h.answer.dossier_id,
                pre_assessment_id=h.answer.pre_assessment_id,
                question_id=h.answer.question_id,
                viewpoint=h.answer.viewpoint,
                other_role=h.answer.other_role,
                snippet=h.snippet,
                rank=h.rank,
            )
            for h in hits
        ]
    )


@router.post(
    "/dossiers/{dossier_id}/pre-assessments",
    status_code=status.HTTP_201_CREATED,
    responses=_SECTION,
    summary="Record a pre-assessment interview (draft, or final at once)",
)
async def create_pre_assessment(
    principal: PrincipalDep,
    session: SessionDep,
    now: NowDep,
    dossier_id: uuid.UUID,
    body: PreAssessmentCreate,
    response: Response,
) -> PreAssessmentRead:
    view = await assessments.create_pre_assessment(session, principal, dossier_id, body, now=now)
    response.headers["Location"] = f"/api/v1/pre-assessments/{view.pre_assessment.id}"
    return _read(view, response)


@router.get(
    "/dossiers/{dossier_id}/pre-assessments", responses=_SECTION, summary="The dossier's pre-assessments"
)
async def list_pre_assessments(
    principal: PrincipalDep, session: SessionDep, now: NowDep, dossier_id: uuid.UUID
) -> list[PreAssessmentRead]:
    return [_read(v) for v in await assessments.list_pre_assessments(session, principal, dossier_id, now=now)]


@router.get("/pre-assessments/{pre_assessment_id}", responses=_SECTION, summary="One pre-assessment")
async def get_pre_assessment(
    principal: PrincipalDep,
    session: SessionDep,
    now: NowDep,
    pre_assessment_id: uuid.UUID,
    response: Response,
) -> PreAssessmentRead:
    return _read(
        await assessments.get_pre_assessment(session, principal, pre_assessment_id, now=now), response
    )


@router.patch(
    "/pre-assessments/{pre_assessment_id}",
    responses={**_SECTION, 409: {"description": "Final: only the analysis may change"}, 412: {}, 428: {}},
    summary="Change a draft (or complete a final one's analysis); If-Match required",
)
async def update_pre_assessment(
    principal: PrincipalDep,
    session: SessionDep,
    now: NowDep,
    pre_assessment_id: uuid.UUID,
    body: PreAssessmentUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> PreAssessmentRead:
    view = await assessments.update_pre_assessment(
        session, principal, pre_assessment_id, body, expected_version=if_match_version(if_match), now=now
    )
    return _read(view, response)


@router.post(
    "/pre-assessments/{pre_assessment_id}/finalize",
    responses={**_SECTION, 412: {}, 428: {}},
    summary="Make a pre-assessment final: its answers will not change again",
)
async def finalize_pre_assessment(
    principal: PrincipalDep,
    session: SessionDep,
    now: NowDep,
    pre_assessment_id: uuid.UUID,
    response: Response,
    if_match: IfMatch = None,
) -> PreAssessmentRead:
    view = await assessments.finalize(
        session, principal, pre_assessment_id, expected_version=if_match_version(if_match), now=now
    )
    return _read(view, response)


@router.post(
    "/dossiers/{dossier_id}/competence-evaluations",
    status_code=status.HTTP_201_CREATED,
    responses=_SECTION,
    summary="Score the five competences at a phase; the profile is computed by the server",
)
async def create_competence_evaluation(
    principal: PrincipalDep,
    session: SessionDep,
    now: NowDep,
    dossier_id: uuid.UUID,
    body: CompetenceEvaluationCreate,
) -> CompetenceEvaluationRead:
    evaluation = await assessments.evaluate(session, principal, dossier_id, body, now=now)
    return CompetenceEvaluationRead(
        id=evaluation.id,
        dossier_id=evaluation.dossier_id,
        phase=evaluation.phase,
        instrument_version=evaluation.instrument_version,
        evaluated_on=evaluation.evaluated_on,
        pre_assessment_id=evaluation.pre_assessment_id,
        evaluator_user_id=evaluation.evaluator_user_id,
        scores={k: v for k, v in assessments._scores(evaluation).items()},
        profile=evaluation.profile,
        note=evaluation.note,
        created_at=evaluation.created_at,
    )


@router.get(
    "/dossiers/{dossier_id}/competence-profile",
    responses=_SECTION,
    summary="Every evaluation, with per-competence deltas from T0",
)
async def get_competence_profile(
    principal: PrincipalDep, session: SessionDep, now: NowDep, dossier_id: uuid.UUID
) -> CompetenceProfile:
    result = await assessments.profile(session, principal, dossier_id, now=now)
    definition = result.instrument.definition
    return CompetenceProfile(
        dossier_id=dossier_id,
        competences=[CompetenceInfo.model_validate(c) for c in assessments.competences_of(definition)],
        scale=definition["scale"],
        points=[
            ProfilePoint(
                evaluation_id=row.evaluation.id,
                phase=row.evaluation.phase,
                evaluated_on=row.evaluation.evaluated_on,
                instrument_version=row.evaluation.instrument_version,
                scores=row.scores,
                profile=row.evaluation.profile,
                baseline_id=row.baseline.id if row.baseline else None,
                deltas=row.deltas,
                profile_delta=row.profile_delta,
            )
            for row in result.rows
        ],
    )


@router.get(
    "/dossiers/{dossier_id}/competence-profile.svg",
    responses={**_SECTION, 200: {"content": {"image/svg+xml": {}}}},
    response_class=Response,
    summary="The profile as a radar chart to print for the pool meeting",
)
async def get_competence_profile_svg(
    principal: PrincipalDep, session: SessionDep, now: NowDep, dossier_id: uuid.UUID
) -> Response:
    result = await assessments.profile(session, principal, dossier_id, now=now)
    svg = assessments.profile_svg(result, today=now.date())
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={"Content-Disposition": 'inline; filename="profilo-competenze.svg"'},
    )
