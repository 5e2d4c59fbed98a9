"""Declarative base: naming convention, UUIDv7 keys, UTC timestamps."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import uuid_utils.compat as uuid_compat
from sqlalchemy import DateTime, Enum, MetaData, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> uuid.UUID:
    """Time-ordered (v7) ids: index-friendly, and they reveal no sequence."""
    return uuid_compat.uuid7()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)


class TimestampMixin:
    # Server-set timestamps come back with the INSERT/UPDATE (RETURNING), so reading them after a
    # flush never triggers a lazy load (which async sessions cannot do).
    __mapper_args__: dict[str, Any] = {"eager_defaults": True}  # noqa: RUF012

    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


def str_enum(enum_class: type[enum.StrEnum], name: str) -> Enum:
    """A text column limited by a CHECK constraint to the enum's values (no PG enum type to migrate)."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(m.value) for m in enum_class),
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def values_check(column: str, enum_class: type[enum.StrEnum]) -> str:
    """SQL for "every element of the array column is one of the enum's values"."""
    values = ", ".join(f"'{m.value}'" for m in enum_class)
    return f"{column} <@ ARRAY[{values}]::varchar[]"
