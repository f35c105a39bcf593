"""The event sink port: where domain events go (a log, a message bus, a test recorder)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from budcore.domain.events import DomainEvent


@runtime_checkable
class EventSink(Protocol):
    def publish(self, events: Sequence[DomainEvent]) -> None:
        """Deliver ``events`` in order. Must not raise for a well-formed event."""
        ...
