"""The demo territory loads once, with the real comuni of Ambito 5 Melzo."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import OrganizationKind
from app.models import Ambito, Comune, Organization
from app.services.platform.demo import seed_demo


async def test_seed_demo_is_idempotent(session: AsyncSession) -> None:
    first = await seed_demo(session=session)
    assert first["ambito"] == 1
    assert first["comune"] == 8

    stamps_before = (await session.execute(select(Organization.id, Organization.updated_at))).all()
    second = await seed_demo(session=session)
    assert second == {"ambito": 0, "comune": 0, "organization": 0, "user": 0, "pool": 0}
    stamps_after = (await session.execute(select(Organization.id, Organization.updated_at))).all()
    assert sorted(stamps_before) == sorted(stamps_after)


async def test_seed_demo_has_the_comuni_and_partners_of_the_piano_di_zona(session: AsyncSession) -> None:
    await seed_demo(session=session)
    comuni = dict((await session.execute(select(Comune.name, Comune.istat_code))).all())
    assert comuni["Melzo"] == "015142"
    assert comuni["Pozzuolo Martesana"] == "015178"
    assert len(comuni) == 8

    kinds = dict(
        (await session.execute(select(Organization.kind, func.count()).group_by(Organization.kind))).all()
    )
    assert kinds[OrganizationKind.comune] == 8
    assert kinds[OrganizationKind.ufficio_di_piano] == 1
    assert kinds[OrganizationKind.asst] == 1
    assert kinds[OrganizationKind.afol] == 1
    assert kinds[OrganizationKind.cooperativa] >= 5
    names = set((await session.scalars(select(Organization.name))).all())
    assert {"Cooperativa Sociale Solleva", "Cooperativa Sociale Archè", "Fondazione Somaschi"} <= names
    assert await session.scalar(select(func.count()).select_from(Ambito)) == 1
