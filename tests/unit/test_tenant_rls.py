"""Row-level security: a query that forgot its ambito filter still sees one ambito only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import set_tenant
from app.models import Ambito, Comune, Dossier, Person


@pytest.fixture
async def two_ambiti(session: AsyncSession) -> tuple[Ambito, Ambito]:
    ambiti = []
    for code, istat in (("MELZO", "015142"), ("PIOLTELLO", "015175")):
        ambito = Ambito(code=code, name=f"Ambito {code}")
        session.add(ambito)
        await session.flush()
        comune = Comune(ambito_id=ambito.id, istat_code=istat, name=code.title(), province="MI")
        session.add(comune)
        await session.flush()
        person = Person(
            ambito_id=ambito.id,
            family_name="Rossi",
            given_name="Anna",
            no_fiscal_code_reason="not_known",
            residence_comune_id=comune.id,
        )
        session.add(person)
        await session.flush()
        session.add(
            Dossier(
                ambito_id=ambito.id,
                person_id=person.id,
                state="segnalato",
                compartment="ordinary",
                need_areas=["lavoro"],
                urgency="ordinaria",
                residence_comune_id=comune.id,
                opened_at=datetime(2026, 11, 1, tzinfo=UTC),
            )
        )
        ambiti.append(ambito)
    await session.flush()
    return ambiti[0], ambiti[1]


async def test_unfiltered_queries_see_only_the_requests_ambito(
    session: AsyncSession, two_ambiti: tuple[Ambito, Ambito]
) -> None:
    melzo, pioltello = two_ambiti
    assert await session.scalar(select(func.count()).select_from(Person)) == 2  # setup: all ambiti
    async with session.begin_nested():
        await set_tenant(session, melzo.id)
        ambiti = (await session.scalars(select(Person.ambito_id))).all()
        assert ambiti == [melzo.id]
        comune = await session.scalar(select(Comune.id).where(Comune.ambito_id == pioltello.id))
        intruder = Person(
            ambito_id=pioltello.id,
            family_name="Verdi",
            given_name="Elio",
            no_fiscal_code_reason="not_known",
            residence_comune_id=comune,
        )
        with pytest.raises(DBAPIError, match="row-level security"):
            async with session.begin_nested():
                session.add(intruder)


async def test_without_an_ambito_nothing_is_visible(
    session: AsyncSession, two_ambiti: tuple[Ambito, Ambito]
) -> None:
    async with session.begin_nested():
        await session.execute(text("SELECT set_config('snodo.ambito_id', '', true)"))
        assert await session.scalar(select(func.count()).select_from(Person)) == 0


async def test_the_name_search_function_answers_only_for_the_requests_ambito(
    session: AsyncSession, two_ambiti: tuple[Ambito, Ambito]
) -> None:
    """snodo_name_dossiers bypasses row-level security to use its indexes: it checks the tenant."""
    melzo, pioltello = two_ambiti
    search = text("SELECT count(*) FROM snodo_name_dossiers('rosi anna', :ambito, 100)")
    async with session.begin_nested():
        await set_tenant(session, melzo.id)
        assert await session.scalar(search, {"ambito": melzo.id}) == 1  # "rosi" finds Rossi
        assert await session.scalar(search, {"ambito": pioltello.id}) == 0  # asked for another ambito


async def test_the_word_list_of_names_is_not_readable_by_the_application(
    session: AsyncSession, two_ambiti: tuple[Ambito, Ambito]
) -> None:
    """The words of every name of the ambito: only the search function reads them."""
    melzo, _ = two_ambiti
    async with session.begin_nested():
        await set_tenant(session, melzo.id)
        with pytest.raises(DBAPIError, match="permission denied"):
            async with session.begin_nested():
                await session.execute(text("SELECT word FROM person_name_word"))


async def test_a_corrected_name_is_found_by_its_new_words(
    session: AsyncSession, two_ambiti: tuple[Ambito, Ambito]
) -> None:
    """The word list follows a person's name when it changes (the update trigger of 0013)."""
    melzo, _ = two_ambiti
    search = text("SELECT count(*) FROM snodo_name_dossiers(:q, :ambito, 100)")
    async with session.begin_nested():
        await set_tenant(session, melzo.id)
        assert await session.scalar(search, {"q": "Brambila", "ambito": melzo.id}) == 0
        person = await session.scalar(select(Person).where(Person.ambito_id == melzo.id))
        assert person is not None
        person.family_name = "Brambilla"
        await session.flush()
        assert await session.scalar(search, {"q": "Brambila", "ambito": melzo.id}) == 1  # a typo too
        assert await session.scalar(search, {"q": "Brambilla Anna", "ambito": melzo.id}) == 1
        assert await session.scalar(search, {"q": "Brambilla Elena", "ambito": melzo.id}) == 0
