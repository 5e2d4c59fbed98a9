"""The citizen (persona) and the household (nucleo familiare) in an ambito's registry."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import CheckConstraint, Computed, Date, ForeignKeyConstraint, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.enums import HouseholdRelation, NoFiscalCodeReason, Sex
from app.models.base import Base, IdMixin, TimestampMixin, str_enum


class Household(IdMixin, TimestampMixin, Base):
    __tablename__ = "household"

    ambito_id: Mapped[uuid.UUID] = mapped_column(index=True)

    __table_args__ = (
        ForeignKeyConstraint(["ambito_id"], ["ambito.id"], ondelete="RESTRICT"),
        Index("uq_household_id_ambito", "id", "ambito_id", unique=True),
    )


class Person(IdMixin, TimestampMixin, Base):
    __tablename__ = "person"

    ambito_id: Mapped[uuid.UUID]
    fiscal_code: Mapped[str | None] = mapped_column(String(16))
    no_fiscal_code_reason: Mapped[NoFiscalCodeReason | None] = mapped_column(
        str_enum(NoFiscalCodeReason, "no_fiscal_code_reason")
    )
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    # Accent- and case-folded "family given", for duplicate checks and typo-tolerant search.
    # Text, not varchar: folding can lengthen a name ("ß" becomes "ss").
    name_key: Mapped[str] = mapped_column(
        Text, Computed("snodo_fold(family_name || ' ' || given_name)", persisted=True)
    )
    sex: Mapped[Sex | None] = mapped_column(str_enum(Sex, "sex"))
    birth_date: Mapped[date | None] = mapped_column(Date)
    birth_place: Mapped[str | None] = mapped_column(String(100))
    citizenship: Mapped[str | None] = mapped_column(String(60))
    residence_comune_id: Mapped[uuid.UUID]
    address: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    email: Mapped[str | None] = mapped_column(String(254))
    household_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    household_relation: Mapped[HouseholdRelation | None] = mapped_column(
        str_enum(HouseholdRelation, "household_relation")
    )

    __table_args__ = (
        Index(
            "uq_person_ambito_fiscal_code",
            "ambito_id",
            "fiscal_code",
            unique=True,
            postgresql_where=text("fiscal_code IS NOT NULL"),
        ),
        Index("ix_person_ambito_birth_date", "ambito_id", "birth_date"),
        Index(
            "ix_person_name_key_trgm",
            "name_key",
            postgresql_using="gin",
            postgresql_ops={"name_key": "gin_trgm_ops"},
        ),
        # A typo-tolerant search finds persons by exact word (snodo_name_dossiers, migration 0013).
        Index("ix_person_name_words", text("string_to_array(name_key, ' ')"), postgresql_using="gin"),
        Index("uq_person_id_ambito", "id", "ambito_id", unique=True),
        CheckConstraint("fiscal_code ~ '^[A-Z0-9]{16}$'", name="fiscal_code_format"),
        CheckConstraint(
            "fiscal_code IS NOT NULL OR no_fiscal_code_reason IS NOT NULL", name="fiscal_code_or_reason"
        ),
        CheckConstraint("birth_date IS NULL OR birth_date <= CURRENT_DATE", name="birth_date_not_future"),
        ForeignKeyConstraint(["ambito_id"], ["ambito.id"], ondelete="RESTRICT"),
        ForeignKeyConstraint(
            ["residence_comune_id", "ambito_id"],
            ["comune.id", "comune.ambito_id"],
            name="fk_person_residence_same_ambito",
            ondelete="RESTRICT",
        ),
        ForeignKeyConstraint(
            ["household_id", "ambito_id"],
            ["household.id", "household.ambito_id"],
            name="fk_person_household_same_ambito",
            ondelete="RESTRICT",
        ),
    )


class PersonNameWord(Base):
    """Each word of the names of an ambito's persons, once, with no link to any person: where a
    name search learns which words a (misspelt) query word may mean. Kept by triggers on person
    and read only by `snodo_name_dossiers`; the application's role has no privilege on it."""

    __tablename__ = "person_name_word"

    ambito_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    word: Mapped[str] = mapped_column(Text, primary_key=True)

    __table_args__ = (
        ForeignKeyConstraint(["ambito_id"], ["ambito.id"], ondelete="RESTRICT"),
        Index(
            "ix_person_name_word_trgm",
            "word",
            postgresql_using="gin",
            postgresql_ops={"word": "gin_trgm_ops"},
        ),
    )
