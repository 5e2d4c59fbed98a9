"""Working days in Italy (weekends and national holidays, from the `holidays` package)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache

import holidays


@lru_cache(maxsize=64)
def _holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("IT", years=year).keys())


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _holidays(day.year)


def add_working_days(start: datetime, days: int) -> datetime:
    """The same time of day, `days` working days later (a Friday + 1 is the next Monday)."""
    moment = start
    remaining = days
    while remaining > 0:
        moment += timedelta(days=1)
        if is_working_day(moment.date()):
            remaining -= 1
    return moment
