"""Persons in an ambito's registry: find without duplicating, create, household."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

from codicefiscale import codicefiscale
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import HouseholdRelation, NoFiscalCodeReason
from app.core.problems import Conflict, FieldError
from app.models import Comune, Household, Person
from app.schemas.intake import HouseholdMemberCreate, PersonInput

# Trigram similarity of the folded "family given" names above which, with the same birth date,
# two records are probably the same person (typos, a missing accent, a second given name).
NAME_SIMILARITY = 0.5


def consistency_errors(person: PersonInput, path: str = "body.person") -> list[FieldError]:
    """What only the combination of fields can tell: a codice fiscale that contradicts the birth data."""
    errors: list[FieldError] = []
    if person.fiscal_code is None and person.no_fiscal_code_reason is None:
        errors.append(
            FieldError(
                field=f"{path}.no_fiscal_code_reason",
                message="Without a codice fiscale, say why (e.g. newborn, recent arrival)",
                code="missing",
            )
        )
    if person.fiscal_code is not None:
        decoded = codicefiscale.decode(person.fiscal_code)
        if person.birth_date is not None and decoded["birthdate"].date() != person.birth_date:
            errors.append(
                FieldError(
                    field=f"{path}.birth_date",
                    message="Does not match the birth date in the codice fiscale",
                    code="fiscal_code_mismatch",
                )
            )
        if person.sex is not None and decoded["gender"] != person.sex.value:
            errors.append(
                FieldError(
                    field=f"{path}.sex",
                    message="Does not match the codice fiscale",
                    code="fiscal_code_mismatch",
                )
            )
    return errors


async def comune_by_istat(session: AsyncSession, ambito_id: uuid.UUID, istat_code: str) -> Comune | None:
    """The comune of the ambito with this ISTAT code, or None."""
    return await session.scalar(
        select(Comune).where(Comune.ambito_id == ambito_id, Comune.istat_code == istat_code)
    )


# access: intake matching inside the ambito; what the submitter learns is decided by referrals
async def by_fiscal_code(session: AsyncSession, ambito_id: uuid.UUID, fiscal_code: str) -> Person | None:
    """The person of the ambito with this codice fiscale, or None."""
    return await session.scalar(
        select(Person).where(Person.ambito_id == ambito_id, Person.fiscal_code == fiscal_code)
    )


# access: intake matching inside the ambito; candidates go to the residence comune only
async def similar(
    session: AsyncSession, ambito_id: uuid.UUID, *, family_name: str, given_name: str, birth_date: date | None
) -> Sequence[Person]:
    """People with the same birth date and a similar name (accents and case ignored, both name orders)."""
    if birth_date is None:
        return []
    folded = func.snodo_fold(f"{family_name} {given_name}")
    swapped = func.snodo_fold(f"{given_name} {family_name}")
    return (
        await session.scalars(
            select(Person)
            .where(
                Person.ambito_id == ambito_id,
                Person.birth_date == birth_date,
                or_(
                    func.similarity(Person.name_key, folded) >= NAME_SIMILARITY,
                    func.similarity(Person.name_key, swapped) >= NAME_SIMILARITY,
                ),
            )
            .order_by(Person.id)
            .limit(20)
        )
    ).all()


async def create(session: AsyncSession, ambito_id: uuid.UUID, data: PersonInput, comune: Comune) -> Person:
    """Create a person in the ambito, resident in the given comune."""
    person = Person(
        ambito_id=ambito_id,
        fiscal_code=data.fiscal_code,
        no_fiscal_code_reason=None if data.fiscal_code else data.no_fiscal_code_reason,
        family_name=data.family_name,
        given_name=data.given_name,
        sex=data.sex,
        birth_date=data.birth_date,
        birth_place=data.birth_place,
        citizenship=data.citizenship,
        residence_comune_id=comune.id,
        address=data.address,
        phone=data.phone,
        email=data.email,
    )
    session.add(person)
    await session.flush()
    return person


async def add_household_member(session: AsyncSession, head: Person, member: HouseholdMemberCreate) -> Person:
    """Add a member to the head's household (created on first use); members share the residence."""
    if member.fiscal_code and await by_fiscal_code(session, head.ambito_id, member.fiscal_code):
        raise Conflict(
            errors=[
                FieldError(
                    field="body.fiscal_code",
                    message="A person with this codice fiscale is already registered",
                    code="duplicate",
                )
            ]
        )
    if head.household_id is None:
        household = Household(ambito_id=head.ambito_id)
        session.add(household)
        await session.flush()
        head.household_id = household.id
        head.household_relation = HouseholdRelation.intestatario
    person = Person(
        ambito_id=head.ambito_id,
        fiscal_code=member.fiscal_code,
        no_fiscal_code_reason=None if member.fiscal_code else NoFiscalCodeReason.not_known,
        family_name=member.family_name,
        given_name=member.given_name,
        birth_date=member.birth_date,
        residence_comune_id=head.residence_comune_id,
        household_id=head.household_id,
        household_relation=member.relation,
    )
    session.add(person)
    await session.flush()
    return person


# access: the registry section of a dossier its caller loaded through the policy
async def household_of(session: AsyncSession, person: Person) -> Sequence[Person]:
    """The other members of the person's household (empty if none)."""
    if person.household_id is None:
        return []
    return (
        await session.scalars(
            select(Person)
            .where(Person.household_id == person.household_id, Person.id != person.id)
            .order_by(Person.id)
        )
    ).all()
