"""Dossiers and what hangs off them: timeline, registry, referrals, entries, consents, participants,
the access log; and break-the-glass."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import PlainTextResponse

from app.api.deps import IfMatch, NowDep, PageDep, PrincipalDep, SessionDep, if_match_version
from app.core.enums import DossierState, NeedArea, Section
from app.core.pagination import encode_cursor
from app.schemas.intake import (
    AccessLog,
    AccessLogEntry,
    BreakGlassCreate,
    BreakGlassList,
    BreakGlassRead,
    BreakGlassReview,
    ConsentCreate,
    ConsentRead,
    ConsentRevoke,
    DossierList,
    DossierRead,
    DossierUpdate,
    EntryCreate,
    EntryList,
    EntryRead,
    HouseholdMemberCreate,
    HouseholdMemberRead,
    ParticipantCreate,
    ParticipantRead,
    PersonSummary,
    ReferralList,
    RegistryRead,
    Timeline,
    TimelineEvent,
    TransitionCreate,
)
from app.services.dossiers import break_glass, consents, entries, lifecycle, participants, worklist
from app.services.dossiers import service as dossiers
from app.services.dossiers.views import DossierView
from app.services.intake import referrals, registry

router = APIRouter(prefix="/api/v1/dossiers", tags=["dossiers"])
emergency = APIRouter(prefix="/api/v1/break-glass", tags=["break-glass"])

Responses = dict[int | str, dict[str, Any]]
_DOSSIER: Responses = {404: {"description": "No such dossier, or not visible to you"}}
_SECTION: Responses = {
    **_DOSSIER,
    403: {"description": "A section of the dossier your role may not see or change"},
}


def _cursor(after: uuid.UUID | None) -> str | None:
    return encode_cursor(after) if after else None


def _dossier_read(view: DossierView, response: Response) -> DossierRead:
    access, person, dossier = view.access, view.person, view.access.dossier
    response.headers["ETag"] = f'"{dossier.version}"'
    return DossierRead(
        id=dossier.id,
        state=dossier.state,
        compartment=dossier.compartment,
        need_areas=view.need_areas,
        urgency=dossier.urgency,
        person=PersonSummary.model_validate(person),
        residence_comune_id=dossier.residence_comune_id,
        case_manager_user_id=dossier.case_manager_user_id,
        opened_at=dossier.opened_at,
        closed_at=dossier.closed_at,
        outcome=dossier.outcome,
        follow_up_on=dossier.follow_up_on,
        version=dossier.version,
        sections=access.sections,
        access=sorted(access.bases),
    )


@router.get("", summary="The worklist: the dossiers the caller may see, newest first")
async def list_dossiers(
    principal: PrincipalDep,
    session: SessionDep,
    now: NowDep,
    page: PageDep,
    pool_id: Annotated[uuid.UUID | None, Query(description="Routed to this pool")] = None,
    state: Annotated[list[DossierState] | None, Query(max_length=len(DossierState))] = None,
    comune_id: Annotated[uuid.UUID | None, Query(description="Residence comune")] = None,
    need_area: Annotated[NeedArea | None, Query()] = None,
    case_manager_id: Annotated[uuid.UUID | None, Query()] = None,
    assigned_to_me: Annotated[bool, Query(description="I am the case manager")] = False,
    updated_since: Annotated[datetime | None, Query()] = None,
    overdue: Annotated[bool | None, Query(description="A routing answer is overdue")] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=100,
            pattern=r"^[^\x00]*$",
            description="Name (accents, case and typos do not matter; 3+ characters) or codice fiscale",
        ),
    ] = None,
) -> DossierList:
    filters = worklist.WorklistFilter(
        pool_id=pool_id,
        states=tuple(state or ()),
        comune_id=comune_id,
        need_area=need_area,
        case_manager_id=case_manager_id,
        assigned_to_me=assigned_to_me,
        updated_since=updated_since,
        overdue=overdue,
        q=q,
    )
    result = await worklist.list_visible(session, principal, page, now=now, filters=filters)
    # One validation of the whole page from plain values (~0.2 ms at 50 rows; a model built per row
    # from SQLAlchemy rows cost ~0.9).
    return DossierList.model_validate(
        {"items": [_list_item(row) for row in result.rows], "next_cursor": _cursor(result.next_after)}
    )


_PERSON_COLUMNS = {
    "person_id": "id",
    "family_name": "family_name",
    "given_name": "given_name",
    "birth_date": "birth_date",
}


def _list_item(row: dict[str, Any]) -> dict[str, Any]:
    """A worklist row as `DossierListItem`'s fields: the person's columns under `person`."""
    item = dict(row)
    item["person"] = {field: item.pop(column) for column, field in _PERSON_COLUMNS.items()}
    return item


@router.get("/{dossier_id}", responses=_DOSSIER, summary="A dossier, with what the caller may see of it")
async def get_dossier(
    principal: PrincipalDep, session: SessionDep, now: NowDep, dossier_id: uuid.UUID, response: Response
) -> DossierRead:
    view = await dossiers.get(session, principal, dossier_id, now=now)
    return _dossier_read(view, response)


@router.patch(
    "/{dossier_id}",
    responses={
        **_SECTION,
        412: {"description": "The dossier changed since the ETag you sent"},
        428: {"description": "If-Match missing"},
    },
    summary="Assign the case manager or change the urgency (If-Match required)",
)
async def update_dossier(
    principal: PrincipalDep,
    session: SessionDep,
    now: NowDep,
    dossier_id: uuid.UUID,
    body: DossierUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> DossierRead:
    expected = if_match_version(if_match)
    view = await dossiers.update(session, principal, dossier_id, body, expected_version=expected, now=now)
    return _dossier_read(view, response)


@router.post(
    "/{dossier_id}/transitions",
    responses={
        **_SECTION,
        409: {"description": "Not allowed from the current state (see `allowed`) or a guard"},
    },
    summary="Move the dossier to another state, with a reason",
)
async def transition_dossier(
    principal: PrincipalDep,
    session: SessionDep,
    now: NowDep,
    dossier_id: uuid.UUID,
    body: TransitionCreate,
    response: Response,
) -> DossierRead:
    view = await lifecycle.transition(session, principal, dossier_id, body, now=now)
    return _dossier_read(view, response)


@router.get("/{dossier_id}/timeline", responses=_DOSSIER, summary="What happened to the dossier, in order")
async def get_timeline(
    principal: PrincipalDep, session: SessionDep, now: NowDep, page: PageDep, dossier_id: uuid.UUID
) -> Timeline:
    events, total, after = await dossiers.timeline(session, principal, dossier_id, page, now=now)
    return Timeline(
        items=[TimelineEvent.model_validate(e) for e in events], total=total, next_cursor=_cursor(after)
    )


@router.get(
    "/{dossier_id}/registry", responses=_SECTION, summary="The person and household (section registry)"
)
async def get_registry(
    principal: PrincipalDep, session: SessionDep, now: NowDep, dossier_id: uuid.UUID
) -> RegistryRead:
    person, household = await registry.read(session, principal, dossier_id, now=now)
    return RegistryRead(
        **{k: getattr(person, k) for k in RegistryRead.model_fields if k != "household"},
        household=[HouseholdMemberRead.model_validate(m) for m in household],
    )


@router.post(
    "/{dossier_id}/household",
    status_code=status.HTTP_201_CREATED,
    responses=_SECTION,
    summary="Add a member to the person's household",
)
async def add_household_member(
    principal: PrincipalDep,
    session: SessionDep,
    now: NowDep,
    dossier_id: uuid.UUID,
    body: HouseholdMemberCreate,
) -> HouseholdMemberRead:
    member = await registry.add_household_member(session, principal, dossier_id, body, now=now)
    return HouseholdMemberRead.model_validate(member)


@router.get(
    "/{dossier_id}/referrals", responses=_SECTION, summary="The referrals of the dossier (section referral)"
)
async def list_dossier_referrals(
    principal: PrincipalDep, session: SessionDep, now: NowDep, page: PageDep, dossier_id: uuid.UUID
) -> ReferralList:
    items, total, after = await referrals.list_for_dossier(session, principal, dossier_id, page, now=now)
    return ReferralList(items=items, total=total, next_cursor=_cursor(after))


@router.get("/{dossier_id}/entries", responses=_SECTION, summary="Notes of one section")
async def list_entries(
    principal: PrincipalDep,
    session: SessionDep,
    now: NowDep,
    page: PageDep,
    dossier_id: uuid.UUID,
    section: Annotated[Section, Query()],
) -> EntryList:
    rows, total, after = await entries.list_section(session, principal, dossier_id, section, page, now=now)
    return EntryList(
        items=[EntryRead.model_validate(e) for e in rows], total=total, next_cursor=_cursor(after)
    )


@router.post(
    "/{dossier_id}/entries",
    status_code=status.HTTP_201_CREATED,
    responses=_SECTION,
    summary="Add a note to a section (labelled ETH/HIV/PSY/SDV when it is special-category data)",
)
async def add_entry(
    principal: PrincipalDep, session: SessionDep, now: NowDep, dossier_id: uuid.UUID, body: EntryCreate
) -> EntryRead:
    return EntryRead.model_validate(await entries.add(session, principal, dossier_id, body, now=now))


@router.get("/{dossier_id}/entries/{entry_id}", responses=_SECTION, summary="One note")
async def get_entry(
    principal: PrincipalDep, session: SessionDep, now: NowDep, dossier_id: uuid.UUID, entry_id: uuid.UUID
) -> EntryRead:
    return EntryRead.model_validate(await entries.get(session, principal, dossier_id, entry_id, now=now))


@router.get("/{dossier_id}/consents", responses=_SECTION, summary="Consents and legal bases of the person")
async def list_consents(
    principal: PrincipalDep, session: SessionDep, now: NowDep, dossier_id: uuid.UUID
) -> list[ConsentRead]:
    rows = await consents.list_for_dossier(session, principal, dossier_id, now=now)
    return [ConsentRead.model_validate(c) for c in rows]


@router.post(
    "/{dossier_id}/consents",
    status_code=status.HTTP_201_CREATED,
    responses=_SECTION,
    summary="Record a consent",
)
async def record_consent(
    principal: PrincipalDep, session: SessionDep, now: NowDep, dossier_id: uuid.UUID, body: ConsentCreate
) -> ConsentRead:
    return ConsentRead.model_validate(await consents.record(session, principal, dossier_id, body, now=now))


@router.post(
    "/{dossier_id}/consents/{consent_id}/revoke",
    responses=_SECTION,
    summary="Revoke a consent: it stops covering anyone on the next request",
)
async def revoke_consent(
    principal: PrincipalDep,
    session: SessionDep,
    now: NowDep,
    dossier_id: uuid.UUID,
    consent_id: uuid.UUID,
    body: ConsentRevoke,
) -> ConsentRead:
    consent = await consents.revoke(session, principal, dossier_id, consent_id, body, now=now)
    return ConsentRead.model_validate(consent)


@router.get(
    "/{dossier_id}/participants", responses=_DOSSIER, summary="Organizations taking part in the dossier"
)
async def list_participants(
    principal: PrincipalDep, session: SessionDep, now: NowDep, dossier_id: uuid.UUID
) -> list[ParticipantRead]:
    rows = await participants.list_for_dossier(session, principal, dossier_id, now=now)
    return [ParticipantRead.model_validate(p) for p in rows]


@router.post(
    "/{dossier_id}/participants",
    status_code=status.HTTP_201_CREATED,
    responses=_SECTION,
    summary="Involve an organization (provider, invited specialist, pool member)",
)
async def add_participant(
    principal: PrincipalDep, session: SessionDep, now: NowDep, dossier_id: uuid.UUID, body: ParticipantCreate
) -> ParticipantRead:
    return ParticipantRead.model_validate(
        await participants.add(session, principal, dossier_id, body, now=now)
    )


@router.post(
    "/{dossier_id}/participants/{participant_id}/end",
    responses=_SECTION,
    summary="End a participation: its people lose access on the next request",
)
async def end_participant(
    principal: PrincipalDep,
    session: SessionDep,
    now: NowDep,
    dossier_id: uuid.UUID,
    participant_id: uuid.UUID,
) -> ParticipantRead:
    participant = await participants.end(session, principal, dossier_id, participant_id, now=now)
    return ParticipantRead.model_validate(participant)


@router.get(
    "/{dossier_id}/access-log",
    responses={**_SECTION, 200: {"content": {"text/csv": {}}}},
    summary="Who read or changed the dossier (case manager and DPO)",
    description=(
        "Oldest first: the reads and changes of this dossier, and the worklist pages, searches, "
        "pool meetings and routing queues that showed it among others (`action` `list`, `search`, "
        "or `read` of a `meeting`; which other dossiers they showed is not given here; `lists=false` "
        "leaves them out). "
        "`format=csv` gives the same rows as a file to hand to the citizen (GDPR art. 15)."
    ),
)
async def get_access_log(
    principal: PrincipalDep,
    session: SessionDep,
    now: NowDep,
    page: PageDep,
    dossier_id: uuid.UUID,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
    lists: Annotated[
        bool,
        Query(
            description=(
                "`false`: leave out the lists, searches, meetings and queues that showed it among others"
            )
        ),
    ] = True,
) -> AccessLog:
    rows, after = await dossiers.access_log(session, principal, dossier_id, page, now=now, lists=lists)
    log = AccessLog(items=[AccessLogEntry.model_validate(r) for r in rows], next_cursor=_cursor(after))
    if format == "csv":
        return _csv(log)  # type: ignore[return-value]
    return log


def _csv(log: AccessLog) -> PlainTextResponse:
    buffer = io.StringIO()
    columns = list(AccessLogEntry.model_fields)
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for item in log.items:
        writer.writerow(item.model_dump(mode="json"))
    headers = {"Content-Disposition": 'attachment; filename="registro-accessi.csv"'}
    if log.next_cursor:
        headers["X-Next-Cursor"] = log.next_cursor
    return PlainTextResponse(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


@emergency.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        403: {"description": "Only social workers and health operators"},
        404: {"description": "No such dossier"},
    },
    summary="Open a dossier you cannot see, in an emergency: reason required, 4 hours, reviewed by the DPO",
)
async def break_the_glass(
    principal: PrincipalDep, session: SessionDep, now: NowDep, body: BreakGlassCreate
) -> BreakGlassRead:
    return BreakGlassRead.model_validate(await break_glass.open_access(session, principal, body, now=now))


@emergency.get(
    "", responses={403: {"description": "DPO only"}}, summary="Break-the-glass accesses, for the DPO"
)
async def list_break_glass(
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    unreviewed: Annotated[bool, Query()] = True,
) -> BreakGlassList:
    rows, after = await break_glass.for_review(session, principal, page, unreviewed_only=unreviewed)
    return BreakGlassList(items=[BreakGlassRead.model_validate(r) for r in rows], next_cursor=_cursor(after))


@emergency.post(
    "/{grant_id}/review", responses={403: {"description": "DPO only"}}, summary="Mark an access as reviewed"
)
async def review_break_glass(
    principal: PrincipalDep, session: SessionDep, now: NowDep, grant_id: uuid.UUID, body: BreakGlassReview
) -> BreakGlassRead:
    return BreakGlassRead.model_validate(
        await break_glass.review(session, principal, grant_id, body, now=now)
    )
