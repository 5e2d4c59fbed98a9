"""Shared schema pieces: strict input models, bounded strings, dates and times within reason."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
)

# Input models refuse unknown fields (no mass assignment) and NUL bytes in any string.
_NO_NUL = r"^[^\x00]*$"

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=_NO_NUL)]
ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=_NO_NUL)
]


def _fold_email(value: Any) -> Any:
    # Lower-case *before* checking the length: "İ" lower-cases to two characters.
    return value.strip().lower() if isinstance(value, str) else value


Email = Annotated[
    str,
    BeforeValidator(_fold_email),
    StringConstraints(
        max_length=254, pattern=r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$"
    ),
]
FiscalCode = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z0-9]{16}$")
]
Password = Annotated[str, StringConstraints(min_length=12, max_length=256, pattern=_NO_NUL)]

EARLIEST = date(1900, 1, 1)
LATEST = date(2100, 12, 31)


_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _only_iso_days(value: Any) -> Any:
    """Dates travel as "YYYY-MM-DD": not as numbers (timestamps), not as ISO week dates."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DAY.match(value):
        return value
    raise ValueError("A date as YYYY-MM-DD")


def _date_in_range(value: date) -> date:
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"Must be between {EARLIEST.isoformat()} and {LATEST.isoformat()}")
    return value


def _datetime_in_range(value: datetime) -> datetime:
    _date_in_range(value.date())
    return value


# A calendar date as "YYYY-MM-DD" (no numbers taken as timestamps), within 1900-2100.
Day = Annotated[date, BeforeValidator(_only_iso_days), AfterValidator(_date_in_range)]
# A moment with its UTC offset (a local time without one is ambiguous), within 1900-2100.
Moment = Annotated[AwareDatetime, AfterValidator(_datetime_in_range)]


class InputModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutputModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
