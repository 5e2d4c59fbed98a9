"""What a reader is shown of a dossier, built by the service (never filtered by the route)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import NeedArea
from app.models import Person
from app.services.access.policy import DossierAccess


@dataclass(frozen=True)
class DossierView:
    """The dossier with its person and the need areas this reader may see (special categories
    it may not see are not there: no trace)."""

    access: DossierAccess
    person: Person
    need_areas: list[NeedArea]


async def view_of(session: AsyncSession, access: DossierAccess) -> DossierView:
    """The reader's view of a dossier it holds through the policy."""
    person = await session.get_one(Person, access.dossier.person_id)
    areas = [NeedArea(a) for a in access.visible_need_areas(access.dossier.need_areas)]
    return DossierView(access=access, person=person, need_areas=areas)
