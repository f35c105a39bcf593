"""The in-memory spend ledger against the SpendLedger contract (budcore.testing.spend)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from budcore_adapters.inmemory.events import CollectingEventSink
from budcore_adapters.inmemory.job_store import InMemoryJobStore
from budcore_adapters.inmemory.spend import InMemorySpendLedger

from budcore.cost.metering import UsageRecord
from budcore.domain.errors import AlreadyExistsError, NotFoundError, ValidationError
from budcore.domain.events import DomainEvent
from budcore.ports.job_store import JobStore
from budcore.ports.spend import SpendLedger
from budcore.testing.spend import SpendLedgerConformance


class TestInMemorySpendLedger(SpendLedgerConformance):
    racers = 4

    def make_ledger(self) -> tuple[SpendLedger, JobStore]:
        sink = CollectingEventSink()
        store = InMemoryJobStore(events=sink)
        self._sinks = getattr(self, "_sinks", {})
        self._sinks[id(store)] = sink
        return InMemorySpendLedger(store), store

    def recorded_events(self, store: JobStore) -> list[DomainEvent] | None:
        return list(self._sinks[id(store)].events)


def at(hour: int) -> datetime:
    return datetime(2026, 3, 1, hour, tzinfo=UTC)


def record(job_id: str, start: int, end: int, tenant: str = "t") -> UsageRecord:
    return UsageRecord(
        job_id=job_id,
        tenant=tenant,
        flavor="f",
        accelerator="nvidia-h100-80gb",
        devices=1,
        start=at(start),
        end=at(end),
    )


def test_usage_is_clipped_filtered_and_counts_open_stretches_to_the_end() -> None:
    ledger = InMemorySpendLedger(InMemoryJobStore(), [record("b", 1, 5), record("x", 0, 2, tenant="other")])
    ledger.open(record("a", 3, 3))
    assert [(r.job_id, r.start.hour, r.end.hour) for r in ledger.usage(at(2), at(4), tenant="t")] == [
        ("b", 2, 4),
        ("a", 3, 4),
    ]
    closed = ledger.close("a", at(6))
    assert (closed.start.hour, closed.end.hour) == (3, 6)
    assert [r.job_id for r in ledger.usage(at(0), at(8))] == ["x", "b", "a"]


def test_open_and_close_refuse_what_makes_no_sense() -> None:
    ledger = InMemorySpendLedger(InMemoryJobStore())
    ledger.open(record("a", 3, 3))
    with pytest.raises(AlreadyExistsError):
        ledger.open(record("a", 4, 4))
    with pytest.raises(ValidationError, match="before the start"):
        ledger.close("a", at(2))
    with pytest.raises(NotFoundError):
        ledger.close("nope", at(5))
    with pytest.raises(ValidationError):
        ledger.usage(at(5), at(4))
