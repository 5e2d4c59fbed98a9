"""Referrals, persons, dossiers, consents, entries, break-the-glass, access log: the API shapes."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from codicefiscale import codicefiscale
from pydantic import AfterValidator, BeforeValidator, Field, StrictInt, StringConstraints

from app.core import clock
from app.core.enums import (
    Compartment,
    ConfidentialityLabel,
    ConsentPurpose,
    DossierState,
    HouseholdRelation,
    LegalBasis,
    NeedArea,
    NoFiscalCodeReason,
    OrganizationKind,
    ParticipantBasis,
    Section,
    Sex,
    Urgency,
)
from app.schemas.common import Day, InputModel, Moment, OutputModel

_NO_NUL = r"^[^\x00]*$"
Text100 = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=_NO_NUL)
]
Text200 = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=_NO_NUL)
]
Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=3, max_length=2000, pattern=_NO_NUL)
]
LongText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20000, pattern=_NO_NUL)
]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()./-]{5,25}$")]
EmailText = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=254, pattern=r"^[^@\s\x00]{1,64}@[^@\s\x00]+\.[^@\s\x00]+$"
    ),
]
IstatCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{6}$")]


def _normalise_fiscal_code(value: Any) -> Any:
    if isinstance(value, str):
        value = "".join(value.split()).upper() or None
    return value


def _check_fiscal_code(value: str | None) -> str | None:
    if value is not None and not codicefiscale.is_valid(value):
        raise ValueError("Invalid codice fiscale (format or check character)")
    return value


def _check_birth_date(value: date | None) -> date | None:
    if value is not None and value > clock.today():
        raise ValueError("The birth date is in the future")
    if value is not None and value.year < 1890:
        raise ValueError("The birth date is too far in the past")
    return value


def _not_head(value: HouseholdRelation) -> HouseholdRelation:
    if value == HouseholdRelation.intestatario:
        raise ValueError("The person the dossier is about is the head of the household")
    return value


# Case and spaces do not matter; format, check character and omocodia are verified.
FiscalCodeInput = Annotated[
    Annotated[str, StringConstraints(max_length=16)] | None,
    BeforeValidator(_normalise_fiscal_code),
    AfterValidator(_check_fiscal_code),
]
BirthDate = Annotated[Day | None, AfterValidator(_check_birth_date)]


class PersonInput(InputModel):
    """The person as the referrer types it. The codice fiscale is checked (format, checksum, omocodia)."""

    fiscal_code: FiscalCodeInput = Field(default=None, description="Case and spaces do not matter.")
    no_fiscal_code_reason: NoFiscalCodeReason | None = Field(
        default=None, description="Required when there is no codice fiscale."
    )
    family_name: Text100
    given_name: Text100
    sex: Sex | None = None
    birth_date: BirthDate = None
    birth_place: Text100 | None = None
    citizenship: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=60, pattern=_NO_NUL)] | None
    ) = None
    residence_comune_istat: IstatCode = Field(description="ISTAT code of a comune of the ambito.")
    address: Text200 | None = None
    phone: Phone | None = None
    email: EmailText | None = None


class ReferralCreate(InputModel):
    form_version: StrictInt = Field(
        ge=1, description="The version of the form these answers follow (GET /referral-form)."
    )
    person: PersonInput
    answers: dict[str, Any] = Field(description="Answers keyed by the form's field keys.")
    person_id: uuid.UUID | None = Field(
        default=None, description="Confirms one of the candidates returned by a 409 possible-duplicate."
    )
    new_person: bool = Field(default=False, description="States that none of the candidates is this person.")
    corrects_referral_id: uuid.UUID | None = Field(
        default=None, description="This referral corrects an earlier one of the same organization."
    )


class ReferralReceipt(OutputModel):
    id: uuid.UUID
    status: Literal["received"] = "received"
    form_version: int
    created_at: datetime
    dossier_id: uuid.UUID | None = Field(description="Only when the submitter may see the dossier.")
    corrects_referral_id: uuid.UUID | None


class ReferralRead(OutputModel):
    id: uuid.UUID
    form_version: int
    created_at: datetime
    submitting_organization_id: uuid.UUID
    person: dict[str, Any]
    answers: dict[str, Any]
    need_areas: list[NeedArea]
    urgency: Urgency
    corrects_referral_id: uuid.UUID | None
    dossier_id: uuid.UUID | None


class ReferralList(OutputModel):
    items: list[ReferralRead]
    total: int
    next_cursor: str | None


class Candidate(OutputModel):
    """Just enough to tell whether it is the same person."""

    person_id: uuid.UUID
    family_name: str
    given_name: str
    birth_date: date | None
    residence_comune: str
    fiscal_code_hint: str | None = Field(description="Last four characters of the codice fiscale, if any.")


class PendingReferral(OutputModel):
    referral: ReferralRead
    candidates: list[Candidate]


class IdentificationCreate(InputModel):
    person_id: uuid.UUID | None = None
    new_person: bool = False


class ReferralFormRead(OutputModel):
    version: int
    title: str
    definition: dict[str, Any]


class PersonSummary(OutputModel):
    id: uuid.UUID
    family_name: str
    given_name: str
    birth_date: date | None


class DossierRead(OutputModel):
    id: uuid.UUID
    state: DossierState
    compartment: Compartment
    need_areas: list[NeedArea]
    urgency: Urgency
    person: PersonSummary
    residence_comune_id: uuid.UUID
    case_manager_user_id: uuid.UUID | None
    opened_at: datetime
    closed_at: datetime | None
    outcome: str | None
    follow_up_on: date | None
    version: int
    sections: dict[Section, Literal["r", "rw"]] = Field(
        description="What the caller may read (r) or change (rw)."
    )
    access: list[str] = Field(
        description="Why the caller sees it: case_manager, residence, participant, break_glass."
    )


class DossierListItem(OutputModel):
    id: uuid.UUID
    state: DossierState
    urgency: Urgency
    person: PersonSummary
    residence_comune_id: uuid.UUID
    case_manager_user_id: uuid.UUID | None
    updated_at: datetime
    overdue: bool = Field(description="A member organization has not answered its routing in time.")


class DossierList(OutputModel):
    items: list[DossierListItem]
    next_cursor: str | None


class DossierUpdate(InputModel):
    case_manager_user_id: uuid.UUID | None = None
    urgency: Urgency | None = None


class TransitionCreate(InputModel):
    to: DossierState
    reason: Reason
    fast_track: bool = Field(
        default=False, description="in_valutazione → in_pool for urgent cases, with a reason."
    )
    outcome: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=500, pattern=_NO_NUL)] | None
    ) = None
    follow_up_on: date | None = None


class TimelineEvent(OutputModel):
    id: uuid.UUID
    occurred_at: datetime
    kind: str
    from_state: DossierState | None
    to_state: DossierState | None
    reason: str | None
    actor_kind: str | None
    actor_id: uuid.UUID | None
    actor_organization_id: uuid.UUID | None
    data: dict[str, Any]


class Timeline(OutputModel):
    items: list[TimelineEvent]
    total: int
    next_cursor: str | None


class HouseholdMemberRead(OutputModel):
    id: uuid.UUID
    family_name: str
    given_name: str
    birth_date: date | None
    household_relation: HouseholdRelation | None


class RegistryRead(OutputModel):
    id: uuid.UUID
    fiscal_code: str | None
    no_fiscal_code_reason: NoFiscalCodeReason | None
    family_name: str
    given_name: str
    sex: Sex | None
    birth_date: date | None
    birth_place: str | None
    citizenship: str | None
    residence_comune_id: uuid.UUID
    address: str | None
    phone: str | None
    email: str | None
    household: list[HouseholdMemberRead]


class HouseholdMemberCreate(InputModel):
    family_name: Text100
    given_name: Text100
    relation: Annotated[HouseholdRelation, AfterValidator(_not_head)]
    birth_date: BirthDate = None
    fiscal_code: FiscalCodeInput = None


class EntryCreate(InputModel):
    section: Section
    text: LongText
    label: ConfidentialityLabel | None = Field(
        default=None, description="ETH, HIV, PSY (section health) or SDV (section violence)."
    )


class EntryRead(OutputModel):
    id: uuid.UUID
    section: Section
    label: ConfidentialityLabel | None
    text: str
    author_kind: str
    author_id: uuid.UUID
    author_organization_id: uuid.UUID
    created_at: datetime


class EntryList(OutputModel):
    items: list[EntryRead]
    total: int
    next_cursor: str | None


class ConsentCreate(InputModel):
    organization_kinds: list[OrganizationKind] = Field(default_factory=list, max_length=len(OrganizationKind))
    organization_ids: list[uuid.UUID] = Field(default_factory=list, max_length=50)
    purposes: list[ConsentPurpose] = Field(min_length=1, max_length=len(ConsentPurpose))
    labels: list[ConfidentialityLabel] = Field(default_factory=list, max_length=len(ConfidentialityLabel))
    legal_basis: LegalBasis
    given_on: Day
    expires_on: Day | None = None
    note: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000, pattern=_NO_NUL)] | None
    ) = None


class ConsentRead(OutputModel):
    id: uuid.UUID
    organization_kinds: list[OrganizationKind]
    organization_ids: list[uuid.UUID]
    purposes: list[ConsentPurpose]
    labels: list[ConfidentialityLabel]
    legal_basis: LegalBasis
    given_on: date
    expires_on: date | None
    note: str | None
    revoked_at: datetime | None
    revoked_reason: str | None
    recorded_by_organization_id: uuid.UUID
    created_at: datetime


class ConsentRevoke(InputModel):
    reason: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=3, max_length=1000, pattern=_NO_NUL)
    ]


class ParticipantCreate(InputModel):
    organization_id: uuid.UUID
    basis: ParticipantBasis
    sections: list[Section] = Field(default_factory=list, max_length=len(Section))
    ends_at: Moment | None = Field(default=None, description="With its UTC offset.")
    reason: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=500, pattern=_NO_NUL)] | None
    ) = None


class ParticipantRead(OutputModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    basis: ParticipantBasis
    sections: list[Section]
    starts_at: datetime
    ends_at: datetime | None
    ended_at: datetime | None
    reason: str | None


class BreakGlassCreate(InputModel):
    dossier_id: uuid.UUID | None = None
    fiscal_code: FiscalCodeInput = None
    reason: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=20, max_length=2000, pattern=_NO_NUL)
    ]


class BreakGlassRead(OutputModel):
    id: uuid.UUID
    dossier_id: uuid.UUID
    user_id: uuid.UUID
    organization_id: uuid.UUID
    reason: str
    granted_at: datetime
    expires_at: datetime
    reviewed_at: datetime | None
    review_note: str | None


class BreakGlassList(OutputModel):
    items: list[BreakGlassRead]
    next_cursor: str | None


class BreakGlassReview(InputModel):
    note: Reason


class AccessLogEntry(OutputModel):
    id: uuid.UUID
    seq: int
    occurred_at: datetime
    actor_kind: str
    actor_id: uuid.UUID
    organization_id: uuid.UUID
    action: str
    resource_type: str
    resource_id: uuid.UUID | None
    section: Section | None
    purpose: str
    request_id: str | None


class AccessLog(OutputModel):
    items: list[AccessLogEntry]
    next_cursor: str | None
