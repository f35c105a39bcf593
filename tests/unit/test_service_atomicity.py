"""``JobService.submit`` is atomic, and an event sink's failure never makes a write look failed.

The ``JobStore`` port records a write's events atomically with it; delivery comes after. So:

* ``submit`` is one store write (the job is created already queued, with its event): on error
  nothing is stored and the same submission can simply be retried;
* a sink that raises after a successful write does not turn the write into an exception: the job
  is stored, the call returns it, the events wait in the in-memory store's outbox (in order) and
  are delivered once the sink works again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from budcore_adapters.inmemory import CollectingEventSink, InMemoryJobStore, ManualClock

from budcore.domain import Job, JobStatus
from budcore.domain.errors import AlreadyExistsError
from budcore.domain.events import DomainEvent, JobTransitioned
from budcore.service import JobService

NOW = datetime(2026, 1, 1, tzinfo=UTC)
S = JobStatus


class FlakySink:
    """Raises while ``down``; records what it accepted."""

    def __init__(self) -> None:
        self.down = True
        self.events: list[DomainEvent] = []
        self.calls = 0

    def publish(self, events: Sequence[DomainEvent]) -> None:
        self.calls += 1
        if self.down:
            raise RuntimeError("sink down")
        self.events.extend(events)


class CountingStore(InMemoryJobStore):
    """Counts writes; ``fail_updates`` makes every ``update`` raise (a dropped connection)."""

    def __init__(self, events: CollectingEventSink | FlakySink | None = None) -> None:
        super().__init__(events=events)
        self.creates = 0
        self.updates = 0
        self.fail_updates = False

    def create(self, job: Job, *, events: Sequence[DomainEvent] = ()) -> Job:
        self.creates += 1
        return super().create(job, events=events)

    def update(self, job: Job, *, events: Sequence[DomainEvent] = ()) -> Job:
        self.updates += 1
        if self.fail_updates:
            raise ConnectionError("connection dropped")
        return super().update(job, events=events)


def test_submit_is_one_write_with_its_event() -> None:
    sink = CollectingEventSink()
    store = CountingStore(sink)
    job = JobService(store, ManualClock(NOW)).submit(Job(id="x", name="x", tenant="t1"))
    assert (store.creates, store.updates) == (1, 0)
    assert (job.status, job.version) == (S.QUEUED, 1)
    assert store.get("t1", "x") == job
    assert sink.events == [
        JobTransitioned(
            job_id="x",
            tenant="t1",
            from_status=S.PENDING,
            to_status=S.QUEUED,
            reason="submitted",
            at=NOW,
            version=1,
        )
    ]


def test_submit_never_leaves_a_pending_job_behind() -> None:
    """A failure after the first write used to leave the job PENDING, and a retry hit AlreadyExists."""
    store = CountingStore(CollectingEventSink())
    store.fail_updates = True
    service = JobService(store, ManualClock(NOW))
    job = service.submit(Job(id="x", name="x", tenant="t1"))
    assert store.get("t1", "x") == job and job.status is S.QUEUED


def test_submit_that_fails_stores_nothing_and_can_be_retried() -> None:
    class RefusingStore(InMemoryJobStore):
        refuse = True

        def create(self, job: Job, *, events: Sequence[DomainEvent] = ()) -> Job:
            if self.refuse:
                raise ConnectionError("database unavailable")
            return super().create(job, events=events)

    sink = CollectingEventSink()
    store = RefusingStore(events=sink)
    service = JobService(store, ManualClock(NOW))
    with pytest.raises(ConnectionError):
        service.submit(Job(id="x", name="x", tenant="t1"))
    assert len(store) == 0 and sink.events == []
    store.refuse = False
    assert service.submit(Job(id="x", name="x", tenant="t1")).status is S.QUEUED


def test_a_failing_sink_does_not_make_submit_look_failed(caplog: pytest.LogCaptureFixture) -> None:
    sink = FlakySink()
    store = InMemoryJobStore(events=sink)
    service = JobService(store, ManualClock(NOW))
    with caplog.at_level(logging.WARNING):
        job = service.submit(Job(id="x", name="x", tenant="t1"))
    assert (job.status, job.version) == (S.QUEUED, 1)
    assert store.get("t1", "x") == job
    assert [e.version for e in store.pending_events] == [1]
    assert any("event sink" in r.getMessage() for r in caplog.records)
    # The submission succeeded, so submitting it again is a duplicate, as it should be.
    with pytest.raises(AlreadyExistsError):
        service.submit(Job(id="x", name="x", tenant="t1"))


def test_undelivered_events_keep_write_order_and_are_delivered_on_recovery() -> None:
    sink = FlakySink()
    store = InMemoryJobStore(events=sink)
    service = JobService(store, ManualClock(NOW))
    job = service.submit(Job(id="x", name="x", tenant="t1"))
    job = service.move(job, S.ADMITTED)  # also succeeds while the sink is down
    assert store.get("t1", "x") == job and job.version == 2
    assert [(e.to_status, e.version) for e in store.pending_events] == [(S.QUEUED, 1), (S.ADMITTED, 2)]
    with pytest.raises(RuntimeError, match="sink down"):
        store.deliver_pending_events()  # an explicit retry reports the sink's error
    assert len(store.pending_events) == 2

    sink.down = False
    job = service.move(job, S.RUNNING)  # the next write delivers the backlog first, in order
    assert [(e.to_status, e.version) for e in sink.events] == [
        (S.QUEUED, 1),
        (S.ADMITTED, 2),
        (S.RUNNING, 3),
    ]
    assert store.pending_events == ()
    assert store.deliver_pending_events() == 0


def test_deliver_pending_events_on_demand() -> None:
    sink = FlakySink()
    store = InMemoryJobStore(events=sink)
    JobService(store, ManualClock(NOW)).submit(Job(id="x", name="x", tenant="t1"))
    sink.down = False
    assert store.deliver_pending_events() == 1
    assert [e.job_id for e in sink.events] == ["x"]


def test_a_sink_that_writes_back_to_the_store_keeps_order() -> None:
    """Re-entrant delivery: events of a write made inside ``publish`` follow the current batch."""

    class Reactor:
        def __init__(self) -> None:
            self.events: list[DomainEvent] = []
            self.store: InMemoryJobStore | None = None

        def publish(self, events: Sequence[DomainEvent]) -> None:
            self.events.extend(events)
            assert self.store is not None
            for event in events:
                if event.to_status is S.QUEUED:
                    job = self.store.get(event.tenant, event.job_id)
                    JobService(self.store, ManualClock(NOW)).move(job, S.ADMITTED)

    sink = Reactor()
    store = InMemoryJobStore(events=sink)
    sink.store = store
    JobService(store, ManualClock(NOW)).submit(Job(id="x", name="x", tenant="t1"))
    assert [(e.to_status, e.version) for e in sink.events] == [(S.QUEUED, 1), (S.ADMITTED, 2)]
    assert store.get("t1", "x").status is S.ADMITTED


def test_replay_returns_the_stored_job_untouched_and_records_nothing() -> None:
    sink = CollectingEventSink()
    store = CountingStore(sink)
    service = JobService(store, ManualClock(NOW))
    first = service.submit(Job(name="a", tenant="t1", idempotency_key="k1"))
    again = service.submit(Job(name="b", tenant="t1", idempotency_key="k1"))
    assert again == first
    assert len(sink.events) == 1


def test_submit_without_queueing_stores_a_pending_job() -> None:
    sink = CollectingEventSink()
    store = CountingStore(sink)
    job = JobService(store, ManualClock(NOW)).submit(Job(id="x", name="x", tenant="t1"), queue=False)
    assert (job.status, job.version, store.creates, store.updates) == (S.PENDING, 1, 1, 0)
    assert sink.events == []
