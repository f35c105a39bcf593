"""Small test doubles for the Clock and EventSink ports.

They live here (not in the in-memory adapter) because the conformance kit hands them to *any*
adapter under test, and ``budcore`` must not depend on ``budcore_adapters``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from budcore.domain.errors import ValidationError
from budcore.domain.events import DomainEvent
from budcore.domain.timeutil import ensure_utc

DEFAULT_START = datetime(2030, 1, 1, tzinfo=UTC)


class FakeClock:
    """A ``Clock`` that moves only when a test says so, and never backwards.

    Backends that honour grace periods read it, so a test can step just short of a deadline and
    then past it without sleeping.
    """

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        self._now = ensure_utc(start, "start")

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` (must not be negative) and return the new instant."""
        if delta < timedelta(0):
            raise ValidationError(f"clock cannot go backwards (delta {delta})", path="delta")
        self._now = self._now + delta
        return self._now


class RecordingEventSink:
    """An ``EventSink`` that keeps every published event, in publication order."""

    def __init__(self) -> None:
        self.events: list[DomainEvent] = []

    def publish(self, events: Sequence[DomainEvent]) -> None:
        self.events.extend(events)
