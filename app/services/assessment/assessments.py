"""The instruments of the Modello Operativo Dialogico: the citizen's words and five competences.

Instruments are versioned data (`instrument`): the pre-assessment question set, and the competence
instrument (the five competences, the scale, the profile rule). Scores keep the version they were
taken with; the general profile is computed here, never sent by the client.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import delete, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import (
    AuditAction,
    DossierState,
    InstrumentKind,
    Phase,
    PreAssessmentStatus,
    Section,
    Viewpoint,
)
from app.core.principal import Principal
from app.core.problems import (
    Conflict,
    FieldError,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
    field_error,
)
from app.models import CompetenceEvaluation, Dossier, Instrument, PreAssessment, PreAssessmentAnswer
from app.schemas.assessment import (
    AnswerInput,
    CompetenceEvaluationCreate,
    PreAssessmentCreate,
    PreAssessmentUpdate,
)
from app.services.access import audit
from app.services.access.policy import DossierAccess, load_dossier, section_visible
from app.services.assessment import radar
from app.services.dossiers import lifecycle
from app.services.events.timeline import add_event

SEARCH_LIMIT = 50


class PreAssessmentNotFound(NotFound):
    slug = "pre-assessment-not-found"
    title_en = "Pre-assessment not found"
    title_it = "Pre-assessment non trovato"


class EvaluationNotFound(NotFound):
    slug = "evaluation-not-found"
    title_en = "Competence evaluation not found"
    title_it = "Valutazione non trovata"


class ImmutableFinal(Conflict):
    slug = "pre-assessment-final"
    title_en = "A final pre-assessment does not change"
    title_it = "Un pre-assessment definitivo non si modifica"


# ---------------------------------------------------------------------------------------------
# Instruments


async def instrument(
    session: AsyncSession, kind: InstrumentKind, version: int | None = None
) -> Instrument | None:
    """The instrument of this kind at that version, or the active one without a version; or None."""
    statement = select(Instrument).where(Instrument.kind == kind)
    statement = (
        statement.where(Instrument.version == version)
        if version is not None
        else statement.where(Instrument.active)
    )
    return await session.scalar(statement)


async def active_instrument(session: AsyncSession, kind: InstrumentKind) -> Instrument:
    """The active instrument of this kind; raises if none, as the migrations seed one."""
    found = await instrument(session, kind)
    if found is None:  # seeded by the migrations: missing means a broken install
        raise RuntimeError(f"no active {kind} instrument")
    return found


def competences_of(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """The list of competences in an instrument's definition."""
    return list(definition["competences"])


def compute_profile(definition: dict[str, Any], scores: dict[str, Decimal]) -> Decimal:
    """The instrument's profile rule (v1: weighted mean), rounded as the instrument says."""
    rule = definition["profile"]
    if rule["rule"] != "weighted_mean":
        raise ValueError(f"unknown profile rule {rule['rule']!r}")
    weights = {c["key"]: Decimal(str(c.get("weight", 1))) for c in competences_of(definition)}
    total = sum(weights.values(), Decimal(0))
    value = sum((scores[key] * weight for key, weight in weights.items()), Decimal(0)) / total
    return value.quantize(Decimal(1).scaleb(-int(rule.get("decimals", 2))), rounding=ROUND_HALF_UP)


def check_scores(
    definition: dict[str, Any], raw: dict[str, Any], path: str = "body.scores"
) -> dict[str, Decimal]:
    """Each competence of the instrument exactly once, on its scale; every wrong one named."""
    scale = definition["scale"]
    low, high, step = (Decimal(str(scale[k])) for k in ("min", "max", "step"))
    keys = [c["key"] for c in competences_of(definition)]
    errors: list[FieldError] = []
    scores: dict[str, Decimal] = {}
    for key in raw:
        if key not in keys:
            errors.append(
                FieldError(
                    field=f"{path}.{key}",
                    message="Not a competence of this instrument version",
                    code="extra_forbidden",
                )
            )
    for key in keys:
        if key not in raw:
            errors.append(FieldError(field=f"{path}.{key}", message="Score missing", code="missing"))
            continue
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            errors.append(FieldError(field=f"{path}.{key}", message="Must be a number", code="float_type"))
            continue
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            errors.append(FieldError(field=f"{path}.{key}", message="Must be a number", code="float_parsing"))
            continue
        if not number.is_finite() or number < low or number > high:
            errors.append(
                FieldError(
                    field=f"{path}.{key}", message=f"Must be between {low} and {high}", code="out_of_range"
                )
            )
        elif (number - low) % step != 0:
            errors.append(
                FieldError(field=f"{path}.{key}", message=f"Must be a multiple of {step}", code="step")
            )
        else:
            scores[key] = number
    if errors:
        raise ValidationFailed(errors=errors)
    return scores


# ---------------------------------------------------------------------------------------------
# Pre-assessments


def _check_answers(
    definition: dict[str, Any], answers: Sequence[AnswerInput], path: str = "body.answers"
) -> None:
    questions = {q["id"] for q in definition["questions"]}
    errors = []
    for index, answer in enumerate(answers):
        if answer.question_id not in questions:
            errors.append(
                FieldError(
                    field=f"{path}.{index}.question_id",
                    message="Not a question of this instrument",
                    code="unknown",
                )
            )
        if answer.viewpoint == Viewpoint.other and not answer.other_role:
            errors.append(
                FieldError(
                    field=f"{path}.{index}.other_role", message="Say whose voice this is", code="missing"
                )
            )
        if answer.viewpoint == Viewpoint.respondent and answer.other_role:
            errors.append(
                FieldError(
                    field=f"{path}.{index}.other_role",
                    message="Only for viewpoint other",
                    code="extra_forbidden",
                )
            )
    if errors:
        raise ValidationFailed(errors=errors)


async def _replace_answers(session: AsyncSession, pre: PreAssessment, answers: Sequence[AnswerInput]) -> None:
    await session.execute(delete(PreAssessmentAnswer).where(PreAssessmentAnswer.pre_assessment_id == pre.id))
    session.add_all(
        PreAssessmentAnswer(
            ambito_id=pre.ambito_id,
            pre_assessment_id=pre.id,
            dossier_id=pre.dossier_id,
            position=position,
            question_id=answer.question_id,
            viewpoint=answer.viewpoint,
            other_role=answer.other_role,
            text=answer.text,
        )
        for position, answer in enumerate(answers, start=1)
    )


@dataclass(frozen=True)
class PreAssessmentView:
    pre_assessment: PreAssessment
    answers: Sequence[PreAssessmentAnswer]


async def _view(session: AsyncSession, pre: PreAssessment) -> PreAssessmentView:
    answers = (
        await session.scalars(
            select(PreAssessmentAnswer)
            .where(PreAssessmentAnswer.pre_assessment_id == pre.id)
            .order_by(PreAssessmentAnswer.position)
        )
    ).all()
    return PreAssessmentView(pre_assessment=pre, answers=answers)


async def _assessment_access(
    session: AsyncSession, principal: Principal, dossier_id: uuid.UUID, *, now: datetime, write: bool = False
) -> DossierAccess:
    access = await load_dossier(session, principal, dossier_id, now=now, for_update=write)
    access.require(Section.assessment, write=write)
    return access


async def create_pre_assessment(
    session: AsyncSession,
    principal: Principal,
    dossier_id: uuid.UUID,
    data: PreAssessmentCreate,
    *,
    now: datetime,
) -> PreAssessmentView:
    """Record a pre-assessment interview on a dossier; writers of the assessment section only."""
    access = await _assessment_access(session, principal, dossier_id, now=now, write=True)
    tool = await instrument(session, InstrumentKind.pre_assessment, data.instrument_version)
    if tool is None or (data.instrument_version is not None and not tool.active and data.corrects_id is None):
        raise field_error("body.instrument_version", "Not an active question set", "instrument_version")
    errors = []
    if data.interview_date > now.date():
        errors.append(FieldError(field="body.interview_date", message="In the future", code="date_future"))
    if data.corrects_id is not None:
        corrected = await session.get(PreAssessment, data.corrects_id)
        if (
            corrected is None
            or corrected.dossier_id != dossier_id
            or corrected.status != PreAssessmentStatus.final
        ):
            errors.append(
                FieldError(
                    field="body.corrects_id",
                    message="Not a final pre-assessment of this dossier",
                    code="unknown",
                )
            )
    if errors:
        raise ValidationFailed(errors=errors)
    _check_answers(tool.definition, data.answers)
    pre = PreAssessment(
        ambito_id=access.dossier.ambito_id,
        dossier_id=dossier_id,
        instrument_id=tool.id,
        instrument_version=tool.version,
        interview_date=data.interview_date,
        interviewer_user_id=principal.id,
        status=PreAssessmentStatus.final if data.final else PreAssessmentStatus.draft,
        corrects_id=data.corrects_id,
        stated_request=data.stated_request,
        identified_need=data.identified_need,
        proposed_objective=data.proposed_objective,
        finalized_at=now if data.final else None,
    )
    session.add(pre)
    await session.flush()
    await _replace_answers(session, pre, data.answers)
    await session.flush()
    if data.final:
        await add_event(
            session,
            access.dossier,
            "pre_assessment_finalized",
            principal=principal,
            now=now,
            data={"pre_assessment_id": str(pre.id)},
        )
    await audit.record(
        session,
        principal,
        action=AuditAction.create,
        resource_type="pre_assessment",
        resource_id=pre.id,
        dossier_id=dossier_id,
        section=Section.assessment,
        now=now,
    )
    return await _view(session, pre)


async def _load_pre(
    session: AsyncSession, principal: Principal, pre_id: uuid.UUID, *, now: datetime, write: bool = False
) -> tuple[PreAssessment, DossierAccess]:
    pre = await session.get(PreAssessment, pre_id)
    if pre is None or pre.ambito_id != principal.ambito_id:
        raise PreAssessmentNotFound()
    access = await _assessment_access(session, principal, pre.dossier_id, now=now, write=write)
    return pre, access


async def get_pre_assessment(
    session: AsyncSession, principal: Principal, pre_id: uuid.UUID, *, now: datetime
) -> PreAssessmentView:
    """Read one pre-assessment, audited as a read of the assessment section."""
    pre, _ = await _load_pre(session, principal, pre_id, now=now)
    await audit.record(
        session,
        principal,
        action=AuditAction.read,
        resource_type="pre_assessment",
        resource_id=pre.id,
        dossier_id=pre.dossier_id,
        section=Section.assessment,
        now=now,
    )
    return await _view(session, pre)


async def list_pre_assessments(
    session: AsyncSession, principal: Principal, dossier_id: uuid.UUID, *, now: datetime
) -> list[PreAssessmentView]:
    """List a dossier's pre-assessments, audited as a list of the assessment section."""
    await _assessment_access(session, principal, dossier_id, now=now)
    items = (
        await session.scalars(
            select(PreAssessment).where(PreAssessment.dossier_id == dossier_id).order_by(PreAssessment.id)
        )
    ).all()
    await audit.record(
        session,
        principal,
        action=AuditAction.list,
        resource_type="pre_assessment",
        dossier_id=dossier_id,
        section=Section.assessment,
        now=now,
    )
    return [await _view(session, pre) for pre in items]


async def update_pre_assessment(
    session: AsyncSession,
    principal: Principal,
    pre_id: uuid.UUID,
    data: PreAssessmentUpdate,
    *,
    expected_version: int | None,
    now: datetime,
) -> PreAssessmentView:
    """Drafts change entirely; a final one keeps its answers (only the analysis may be completed)."""
    pre, _ = await _load_pre(session, principal, pre_id, now=now, write=True)
    if expected_version is not None and pre.version != expected_version:
        raise PreconditionFailed(f"You read version {expected_version}; it is now at {pre.version}.")
    changes = data.model_dump(exclude_unset=True)
    if pre.status == PreAssessmentStatus.final and ({"answers", "interview_date"} & changes.keys()):
        raise ImmutableFinal(
            "Its answers are final: record a correction (a new pre-assessment with corrects_id)."
        )
    if data.answers is not None:
        tool = await session.get_one(Instrument, pre.instrument_id)
        _check_answers(tool.definition, data.answers)
        await _replace_answers(session, pre, data.answers)
    if data.interview_date is not None:
        if data.interview_date > now.date():
            raise field_error("body.interview_date", "In the future", "date_future")
        pre.interview_date = data.interview_date
    for key in ("stated_request", "identified_need", "proposed_objective"):
        if key in changes:
            setattr(pre, key, changes[key])
    pre.updated_at = now
    await session.flush()
    await audit.record(
        session,
        principal,
        action=AuditAction.update,
        resource_type="pre_assessment",
        resource_id=pre.id,
        dossier_id=pre.dossier_id,
        section=Section.assessment,
        now=now,
    )
    return await _view(session, pre)


async def finalize(
    session: AsyncSession,
    principal: Principal,
    pre_id: uuid.UUID,
    *,
    expected_version: int | None,
    now: datetime,
) -> PreAssessmentView:
    """Make a pre-assessment final, refusing a stale expected version."""
    pre, access = await _load_pre(session, principal, pre_id, now=now, write=True)
    if expected_version is not None and pre.version != expected_version:
        raise PreconditionFailed(f"You read version {expected_version}; it is now at {pre.version}.")
    if pre.status != PreAssessmentStatus.final:
        pre.status = PreAssessmentStatus.final
        pre.finalized_at = now
        await session.flush()
        await add_event(
            session,
            access.dossier,
            "pre_assessment_finalized",
            principal=principal,
            now=now,
            data={"pre_assessment_id": str(pre.id)},
        )
    await audit.record(
        session,
        principal,
        action=AuditAction.update,
        resource_type="pre_assessment",
        resource_id=pre.id,
        dossier_id=pre.dossier_id,
        section=Section.assessment,
        now=now,
    )
    return await _view(session, pre)


# ---------------------------------------------------------------------------------------------
# Competence evaluations and the profile


async def evaluate(
    session: AsyncSession,
    principal: Principal,
    dossier_id: uuid.UUID,
    data: CompetenceEvaluationCreate,
    *,
    now: datetime,
) -> CompetenceEvaluation:
    """Record a competence evaluation on a dossier with the active competence instrument."""
    access = await _assessment_access(session, principal, dossier_id, now=now, write=True)
    tool = await instrument(session, InstrumentKind.competence, data.instrument_version)
    if tool is None or not tool.active:
        raise field_error(
            "body.instrument_version",
            "Not the active version of the competence instrument",
            "instrument_version",
        )
    errors: list[FieldError] = []
    if data.evaluated_on > now.date():
        errors.append(FieldError(field="body.evaluated_on", message="In the future", code="date_future"))
    if data.pre_assessment_id is not None:
        pre = await session.get(PreAssessment, data.pre_assessment_id)
        if pre is None or pre.dossier_id != dossier_id:
            errors.append(
                FieldError(
                    field="body.pre_assessment_id",
                    message="Not a pre-assessment of this dossier",
                    code="unknown",
                )
            )
    try:
        scores = check_scores(tool.definition, data.scores)
    except ValidationFailed as failure:
        errors += failure.errors or []
        scores = {}
    if errors:
        raise ValidationFailed(errors=errors)
    evaluation = CompetenceEvaluation(
        ambito_id=access.dossier.ambito_id,
        dossier_id=dossier_id,
        phase=data.phase,
        pre_assessment_id=data.pre_assessment_id,
        instrument_id=tool.id,
        instrument_version=tool.version,
        evaluated_on=data.evaluated_on,
        evaluator_user_id=principal.id,
        scores={key: str(value) for key, value in scores.items()},
        profile=compute_profile(tool.definition, scores),
        note=data.note,
        created_at=now,
    )
    session.add(evaluation)
    await session.flush()
    await add_event(
        session,
        access.dossier,
        "competence_evaluated",
        principal=principal,
        now=now,
        data={"evaluation_id": str(evaluation.id), "phase": data.phase, "profile": str(evaluation.profile)},
    )
    await audit.record(
        session,
        principal,
        action=AuditAction.create,
        resource_type="competence_evaluation",
        resource_id=evaluation.id,
        dossier_id=dossier_id,
        section=Section.assessment,
        now=now,
    )
    return evaluation


@dataclass(frozen=True)
class ProfileRow:
    evaluation: CompetenceEvaluation
    scores: dict[str, Decimal]
    baseline: CompetenceEvaluation | None
    deltas: dict[str, Decimal] | None
    profile_delta: Decimal | None


@dataclass(frozen=True)
class Profile:
    dossier: Dossier
    instrument: Instrument
    rows: list[ProfileRow]


def _scores(evaluation: CompetenceEvaluation) -> dict[str, Decimal]:
    return {key: Decimal(value) for key, value in evaluation.scores.items()}


async def profile(
    session: AsyncSession, principal: Principal, dossier_id: uuid.UUID, *, now: datetime
) -> Profile:
    """Every evaluation in time order; each with its deltas from the latest T0 before it
    (same instrument version: scores of different versions are not comparable)."""
    access = await _assessment_access(session, principal, dossier_id, now=now)
    evaluations = (
        await session.scalars(
            select(CompetenceEvaluation)
            .where(CompetenceEvaluation.dossier_id == dossier_id)
            .order_by(CompetenceEvaluation.evaluated_on, CompetenceEvaluation.id)
        )
    ).all()
    rows: list[ProfileRow] = []
    baseline: CompetenceEvaluation | None = None
    for evaluation in evaluations:
        if evaluation.phase == Phase.T0:
            baseline = evaluation
        comparable = baseline is not None and baseline.instrument_version == evaluation.instrument_version
        current = _scores(evaluation)
        deltas = (
            {key: current[key] - value for key, value in _scores(baseline).items()}  # type: ignore[arg-type]
            if comparable
            else None
        )
        rows.append(
            ProfileRow(
                evaluation=evaluation,
                scores=current,
                baseline=baseline if comparable else None,
                deltas=deltas,
                profile_delta=evaluation.profile - baseline.profile if comparable and baseline else None,
            )
        )
    version = evaluations[-1].instrument_version if evaluations else None
    tool = await (
        instrument(session, InstrumentKind.competence, version)
        if version
        else active_instrument(session, InstrumentKind.competence)
    )
    assert tool is not None
    await audit.record(
        session,
        principal,
        action=AuditAction.read,
        resource_type="competence_profile",
        dossier_id=dossier_id,
        section=Section.assessment,
        now=now,
    )
    return Profile(dossier=access.dossier, instrument=tool, rows=rows)


def profile_svg(result: Profile, *, today: date) -> str:
    """The radar chart of the evaluations taken with the instrument version shown."""
    definition = result.instrument.definition
    scale = definition["scale"]
    return radar.render(
        competences=[(c["key"], c["short"]) for c in competences_of(definition)],
        scale_min=Decimal(str(scale["min"])),
        scale_max=Decimal(str(scale["max"])),
        series=[
            radar.Series(
                phase=row.evaluation.phase.value,
                evaluated_on=row.evaluation.evaluated_on,
                scores=row.scores,
                profile=row.evaluation.profile,
            )
            for row in result.rows
            if row.evaluation.instrument_version == result.instrument.version
        ],
        instrument_title=result.instrument.title,
        generated_on=today,
    )


# access: a guard of the lifecycle, on a dossier the transition loaded through the policy
async def has_ex_post(session: AsyncSession, dossier_id: uuid.UUID) -> bool:
    """Whether the dossier has an ex post competence evaluation (closing needs one)."""
    found = await session.scalar(
        select(CompetenceEvaluation.id)
        .where(CompetenceEvaluation.dossier_id == dossier_id, CompetenceEvaluation.phase == Phase.ex_post)
        .limit(1)
    )
    return found is not None


# ---------------------------------------------------------------------------------------------
# Search in the citizen's words


@dataclass(frozen=True)
class Hit:
    answer: PreAssessmentAnswer
    snippet: str
    rank: float


async def search(
    session: AsyncSession, principal: Principal, query: str, *, now: datetime, limit: int = 20
) -> list[Hit]:
    """Italian full-text search (stems, accents folded) over the texts the caller may read."""
    if len(query.strip()) < 3:
        raise field_error("query.q", "At least 3 characters", "string_too_short")
    tsquery = func.websearch_to_tsquery(literal_column("'snodo_italian'::regconfig"), query)
    rank = func.ts_rank_cd(PreAssessmentAnswer.search, tsquery)
    snippet = func.ts_headline(
        literal_column("'snodo_italian'::regconfig"),
        PreAssessmentAnswer.text,
        tsquery,
        "StartSel=«, StopSel=», MaxWords=25, MinWords=8, MaxFragments=2, FragmentDelimiter= … ",
    )
    visible_dossiers = select(Dossier.id).where(section_visible(principal, Section.assessment, now))
    rows = (
        await session.execute(
            select(PreAssessmentAnswer, snippet, rank)
            .where(
                PreAssessmentAnswer.search.op("@@")(tsquery),
                PreAssessmentAnswer.ambito_id == principal.ambito_id,
                PreAssessmentAnswer.dossier_id.in_(visible_dossiers),
            )
            .order_by(rank.desc(), PreAssessmentAnswer.id)
            .limit(min(limit, SEARCH_LIMIT))
        )
    ).all()
    await audit.record(
        session,
        principal,
        action=AuditAction.search,
        resource_type="pre_assessment",
        dossier_ids=[answer.dossier_id for answer, _, _ in rows],
        section=Section.assessment,
        now=now,
    )
    return [Hit(answer=answer, snippet=text, rank=float(score)) for answer, text, score in rows]


@lifecycle.guard(DossierState.chiuso, "ex_post_evaluation")
async def _ex_post_before_closing(session: AsyncSession, dossier: Dossier) -> str | None:
    if await has_ex_post(session, dossier.id):
        return None
    return "An ex post competence evaluation is needed before closing."
