"""Clocks: the wall clock for services, a manual one for tests and the simulator."""

from __future__ import annotations

from datetime import datetime, timedelta

from budcore.domain.errors import ValidationError
from budcore.domain.timeutil import ensure_utc, utcnow


class SystemClock:
    def now(self) -> datetime:
        return utcnow()


class ManualClock:
    """A clock that moves only when told to, and never backwards."""

    def __init__(self, start: datetime) -> None:
        self._now = ensure_utc(start, "start")

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        when = ensure_utc(when, "when")
        if when < self._now:
            raise ValidationError(f"clock cannot go backwards from {self._now} to {when}", path="when")
        self._now = when

    def advance(self, delta: timedelta | float) -> datetime:
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        self.set(self._now + step)
        return self._now
