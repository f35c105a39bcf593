"""Event sinks kept in memory."""

from __future__ import annotations

from collections.abc import Sequence

from budcore.domain.events import DomainEvent


class NullEventSink:
    """Discards events (the default when nobody listens)."""

    def publish(self, events: Sequence[DomainEvent]) -> None:
        return None


class CollectingEventSink:
    """Keeps every event in order; handy in tests and small embedded uses."""

    def __init__(self) -> None:
        self.events: list[DomainEvent] = []

    def publish(self, events: Sequence[DomainEvent]) -> None:
        self.events.extend(events)
