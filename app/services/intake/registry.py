"""The registry section of a dossier: the person's data and household."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import AuditAction, Section
from app.core.principal import Principal
from app.core.problems import Forbidden
from app.models import Person
from app.schemas.intake import HouseholdMemberCreate
from app.services.access import audit
from app.services.access.policy import load_dossier
from app.services.events.timeline import add_event
from app.services.intake import persons


async def read(
    session: AsyncSession, principal: Principal, dossier_id: uuid.UUID, *, now: datetime
) -> tuple[Person, Sequence[Person]]:
    """The dossier's person and household (anagrafica), audited; needs the registry section."""
    access = await load_dossier(session, principal, dossier_id, now=now)
    access.require(Section.registry)
    person = await session.get_one(Person, access.dossier.person_id)
    household = await persons.household_of(session, person)
    await audit.record(
        session,
        principal,
        action=AuditAction.read,
        resource_type="person",
        resource_id=person.id,
        dossier_id=dossier_id,
        section=Section.registry,
        now=now,
    )
    return person, household


async def add_household_member(
    session: AsyncSession,
    principal: Principal,
    dossier_id: uuid.UUID,
    data: HouseholdMemberCreate,
    *,
    now: datetime,
) -> Person:
    """Add a member to the household of the dossier's person; case management only."""
    access = await load_dossier(session, principal, dossier_id, now=now)
    access.require(Section.registry, write=True)
    if not access.is_institutional:
        raise Forbidden(
            "The household is kept by the case manager or the social workers of the residence comune."
        )
    head = await session.get_one(Person, access.dossier.person_id)
    member = await persons.add_household_member(session, head, data)
    await add_event(
        session,
        access.dossier,
        "household_member_added",
        principal=principal,
        now=now,
        data={"person_id": str(member.id), "relation": data.relation},
    )
    await audit.record(
        session,
        principal,
        action=AuditAction.create,
        resource_type="person",
        resource_id=member.id,
        dossier_id=dossier_id,
        section=Section.registry,
        now=now,
    )
    return member
