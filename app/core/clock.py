"""Time as a dependency, so deadlines and expiries are tested by moving a clock, not by sleeping.

The app's clock is also the request's (`today()`), for the checks that run while a body is
validated, before any dependency could hand them the clock: a birth date in the future, say.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
from typing import Any


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock(Clock):
    """A clock that only moves when told to (tests): it starts where it is told, never at today."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("A FrozenClock needs an aware datetime")
        self._now = at

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> datetime:
        self._now += timedelta(**delta)
        return self._now


SYSTEM_CLOCK = Clock()
_current: ContextVar[Clock] = ContextVar("snodo_clock", default=SYSTEM_CLOCK)


def today() -> date:
    """The current request's date in UTC, from the app's clock (the system's outside a request)."""
    return _current.get().now().date()


class ClockMiddleware:
    """Makes the app's clock the request's, for `today()` (pure ASGI, no web framework imported)."""

    def __init__(self, app: Any, *, clock: Clock) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        token = _current.set(self.clock)
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)
