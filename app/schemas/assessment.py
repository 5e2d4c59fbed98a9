"""Pre-assessment interviews, competence evaluations and the profile: the API shapes."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from app.core.enums import Phase, PreAssessmentStatus, Viewpoint
from app.schemas.common import Day, InputModel, OutputModel

_NO_NUL = r"^[^\x00]*$"
LongText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20000, pattern=_NO_NUL)
]
Analysis = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000, pattern=_NO_NUL)]


class AnswerInput(InputModel):
    question_id: Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[a-z0-9_]+$")]
    text: LongText = Field(description="The citizen's words, as said.")
    viewpoint: Viewpoint
    other_role: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60, pattern=_NO_NUL)]
        | None
    ) = Field(
        default=None,
        description="Who is being voiced when viewpoint is `other`: madre, figlio, datore di lavoro…",
    )


class PreAssessmentCreate(InputModel):
    instrument_version: int | None = Field(
        default=None, ge=1, description="Default: the active question set."
    )
    interview_date: date
    answers: list[AnswerInput] = Field(min_length=1, max_length=100)
    stated_request: Analysis | None = None
    identified_need: Analysis | None = None
    proposed_objective: Analysis | None = None
    final: bool = Field(default=False, description="Finalize at once: the answers can no longer change.")
    corrects_id: uuid.UUID | None = Field(
        default=None, description="A final pre-assessment this one corrects."
    )


class PreAssessmentUpdate(InputModel):
    interview_date: Day | None = None
    answers: list[AnswerInput] | None = Field(default=None, min_length=1, max_length=100)
    stated_request: Analysis | None = None
    identified_need: Analysis | None = None
    proposed_objective: Analysis | None = None


class AnswerRead(OutputModel):
    position: int
    question_id: str
    viewpoint: Viewpoint
    other_role: str | None
    text: str


class PreAssessmentRead(OutputModel):
    id: uuid.UUID
    dossier_id: uuid.UUID
    instrument_version: int
    interview_date: date
    interviewer_user_id: uuid.UUID
    status: PreAssessmentStatus
    corrects_id: uuid.UUID | None
    stated_request: str | None
    identified_need: str | None
    proposed_objective: str | None
    finalized_at: datetime | None
    version: int
    answers: list[AnswerRead]
    created_at: datetime
    updated_at: datetime


class CompetenceEvaluationCreate(InputModel):
    phase: Phase
    instrument_version: int = Field(ge=1)
    evaluated_on: Day
    pre_assessment_id: uuid.UUID | None = None
    scores: dict[str, Any] = Field(description="One score per competence of the instrument version.")
    note: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000, pattern=_NO_NUL)] | None
    ) = None


class CompetenceEvaluationRead(OutputModel):
    id: uuid.UUID
    dossier_id: uuid.UUID
    phase: Phase
    instrument_version: int
    evaluated_on: date
    pre_assessment_id: uuid.UUID | None
    evaluator_user_id: uuid.UUID
    scores: dict[str, Decimal]
    profile: Decimal = Field(description="Computed by the server with the instrument's rule.")
    note: str | None
    created_at: datetime


class CompetenceInfo(OutputModel):
    key: str
    label: str
    short: str
    description: str


class ProfilePoint(OutputModel):
    evaluation_id: uuid.UUID
    phase: Phase
    evaluated_on: date
    instrument_version: int
    scores: dict[str, Decimal]
    profile: Decimal
    baseline_id: uuid.UUID | None = Field(description="The T0 the deltas are measured from.")
    deltas: dict[str, Decimal] | None
    profile_delta: Decimal | None


class CompetenceProfile(OutputModel):
    dossier_id: uuid.UUID
    competences: list[CompetenceInfo]
    scale: dict[str, Any]
    points: list[ProfilePoint]


class SearchHit(OutputModel):
    dossier_id: uuid.UUID
    pre_assessment_id: uuid.UUID
    question_id: str
    viewpoint: Viewpoint
    other_role: str | None
    snippet: str = Field(description="The matching passage; matched words between « and ».")
    rank: float


class SearchResults(OutputModel):
    items: list[SearchHit]
