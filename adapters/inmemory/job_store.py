"""In-memory ``JobStore``: dicts plus sorted per-status indexes, guarded by one lock.

Hot paths: ``get``/``create``/``update`` are O(log n) (hash lookups plus sorted-index moves);
``list`` with a status filter walks only the matching statuses' indexes, in FIFO order.

**Events: recorded with the write, delivered after it.** The port promises that a write's events
are recorded atomically with it. Here the record is an in-process outbox: under the store's lock
the write is applied and its events appended to the outbox in one step, and then the outbox is
drained to the event sink in write order. A sink that raises (the sink port says it must not)
cannot undo the write or make it look failed: the write still returns the stored job, the error
is logged, and the undelivered events stay queued, in order, ahead of later ones. Every later
write retries the delivery, and :meth:`InMemoryJobStore.deliver_pending_events` retries on demand
(raising the sink's error if it still fails); :attr:`InMemoryJobStore.pending_events` shows what
waits. Delivery is at-least-once, as with the PostgreSQL outbox: a sink that failed after taking
part of a batch gets the whole batch again (``(tenant, job_id, version)`` deduplicates).
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from sortedcontainers import SortedSet

from budcore.domain.errors import AlreadyExistsError, ConflictError, InvalidTransitionError, NotFoundError
from budcore.domain.events import DomainEvent
from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import Job, JobStatus
from budcore.domain.lifecycle import can_transition
from budcore.domain.timeutil import ensure_utc
from budcore.ports.event_sink import EventSink
from budcore.ports.job_store import ALL, JobFilter

# (created_at, id, tenant): the port's FIFO order is (created_at, id) across tenants too; the
# tenant comes last only to keep keys unique (ids are unique per tenant, not globally).
_IndexKey = tuple[datetime, str, str]

_log = logging.getLogger(__name__)


class InMemoryJobStore:
    def __init__(self, events: EventSink | None = None) -> None:
        self._jobs: dict[tuple[str, str], Job] = {}
        self._idempotency: dict[tuple[str, str], str] = {}
        # (tenant or None for all tenants, status) -> sorted keys
        self._index: dict[tuple[str | None, JobStatus], SortedSet] = {}
        self._lock = threading.RLock()
        self._events = events
        # Recorded-but-undelivered event batches, one per write, oldest first (see the module doc).
        self._outbox: deque[tuple[DomainEvent, ...]] = deque()
        self._delivering = False
        self._delivery_failing = False

    # Writes --------------------------------------------------------------------------------
    def create(self, job: Job, *, events: Sequence[DomainEvent] = ()) -> Job:
        with self._lock:
            if job.idempotency_key is not None:
                existing_id = self._idempotency.get((job.tenant, job.idempotency_key))
                if existing_id is not None:
                    return self._jobs[(job.tenant, existing_id)]
            if (job.tenant, job.id) in self._jobs:
                raise AlreadyExistsError("job", job.id)
            stored = job.model_copy(update={"version": 1})
            self._jobs[(job.tenant, job.id)] = stored
            if job.idempotency_key is not None:
                self._idempotency[(job.tenant, job.idempotency_key)] = job.id
            self._index_add(stored)
            # Recorded with the write and delivered under the lock, so concurrent writers' events
            # reach the sink in the order the writes happened (as an outbox guarantees).
            self._record(events)
            self._deliver_quietly()
        return stored

    def update(self, job: Job, *, events: Sequence[DomainEvent] = ()) -> Job:
        with self._lock:
            current = self._jobs.get((job.tenant, job.id))
            if current is None:
                raise NotFoundError("job", job.id, f"tenant {job.tenant!r}")
            if current.version != job.version:
                raise ConflictError("job", job.id, job.version, current.version)
            if current.status != job.status and not can_transition(current.status, job.status):
                raise InvalidTransitionError(job.id, current.status.value, job.status.value)
            if job.created_at != current.created_at or job.idempotency_key != current.idempotency_key:
                raise ConflictError("job", job.id, job.version, current.version)
            stored = job.model_copy(update={"version": current.version + 1})
            if current.status != stored.status:
                self._index_remove(current)
                self._index_add(stored)
            self._jobs[(job.tenant, job.id)] = stored
            self._record(events)
            self._deliver_quietly()
        return stored

    @property
    def lock(self) -> threading.RLock:
        """The store's (reentrant) lock: hold it to read, decide and write atomically with respect
        to every other writer of this store (what the budget-guarded create does)."""
        return self._lock

    # Reads ---------------------------------------------------------------------------------
    def by_idempotency_key(self, tenant: TenantId, key: str) -> Job | None:
        """The job stored under ``(tenant, key)``, if any (a replayed submission's original)."""
        with self._lock:
            job_id = self._idempotency.get((tenant, key))
            return None if job_id is None else self._jobs[(tenant, job_id)]

    def has(self, tenant: TenantId, job_id: JobId) -> bool:
        """Whether a job ``(tenant, job_id)`` is stored."""
        return (tenant, job_id) in self._jobs

    def get(self, tenant: TenantId, job_id: JobId) -> Job:
        job = self._jobs.get((tenant, job_id))
        if job is None:
            raise NotFoundError("job", job_id, f"tenant {tenant!r}")
        return job

    def list(self, tenant: TenantId | None, flt: JobFilter = ALL) -> list[Job]:
        with self._lock:
            out: list[Job] = []
            for job in self._scan(tenant, flt):
                out.append(job)
                if flt.limit is not None and len(out) >= flt.limit:
                    break
            return out

    def count(self, tenant: TenantId | None, flt: JobFilter = ALL) -> int:
        with self._lock:
            unlimited = flt.model_copy(update={"limit": None})
            if unlimited == JobFilter(statuses=unlimited.statuses):
                statuses = unlimited.statuses if unlimited.statuses is not None else list(JobStatus)
                return sum(len(self._index.get((tenant, s), ())) for s in statuses)
            return sum(1 for _ in self._scan(tenant, unlimited))

    # Internals -----------------------------------------------------------------------------
    def _scan(self, tenant: TenantId | None, flt: JobFilter) -> Iterator[Job]:
        # Stored times are aware UTC: a naive bound is the caller's mistake, named as such (the
        # PostgreSQL store checks the same way), not a TypeError from deep inside a comparison.
        if flt.created_after is not None:
            ensure_utc(flt.created_after, "created_after")
        if flt.created_before is not None:
            ensure_utc(flt.created_before, "created_before")
        statuses: Iterable[JobStatus] = flt.statuses if flt.statuses is not None else JobStatus
        indexes = [self._index[(tenant, s)] for s in statuses if (tenant, s) in self._index]
        # Each per-status index is sorted, so a lazy k-way merge yields FIFO order without
        # sorting everything: a ``limit`` stops after ``limit`` matches.
        keys: Iterable[_IndexKey] = indexes[0] if len(indexes) == 1 else heapq.merge(*indexes)
        for _, job_id, job_tenant in keys:
            job = self._jobs[(job_tenant, job_id)]
            if flt.matches(job):
                yield job

    def _index_add(self, job: Job) -> None:
        key = (job.created_at, job.id, job.tenant)
        for scope in (job.tenant, None):
            index = self._index.get((scope, job.status))
            if index is None:
                index = self._index[(scope, job.status)] = SortedSet()
            index.add(key)

    def _index_remove(self, job: Job) -> None:
        key = (job.created_at, job.id, job.tenant)
        for scope in (job.tenant, None):
            self._index[(scope, job.status)].discard(key)

    # Event delivery -----------------------------------------------------------------------
    @property
    def pending_events(self) -> tuple[DomainEvent, ...]:
        """Events recorded with a write but not yet accepted by the sink, in write order."""
        with self._lock:
            return tuple(e for batch in self._outbox for e in batch)

    def deliver_pending_events(self) -> int:
        """Retry delivering the recorded events now; returns how many the sink accepted.

        Raises the sink's error if it still fails (the events stay pending, in order).
        """
        return self._deliver()

    def _record(self, events: Sequence[DomainEvent]) -> None:
        if events and self._events is not None:
            self._outbox.append(tuple(events))

    def _deliver_quietly(self) -> None:
        """Deliver after a write; a sink failure is logged, never raised (the write happened)."""
        if not self._outbox:
            return
        try:
            self._deliver()
        except Exception:
            if not self._delivery_failing:
                _log.warning(
                    "event sink %r failed; %d event(s) kept for redelivery (writes are unaffected)",
                    type(self._events).__name__,
                    len(self.pending_events),
                    exc_info=True,
                )
            else:
                _log.debug("event sink still failing", exc_info=True)
            self._delivery_failing = True

    def _deliver(self) -> int:
        delivered = 0
        with self._lock:
            if self._delivering or self._events is None:
                # A sink that writes back to this store: the outer delivery loop picks the new
                # batch up after the current one, keeping write order.
                return 0
            self._delivering = True
            try:
                while self._outbox:
                    batch = self._outbox[0]
                    self._events.publish(batch)
                    self._outbox.popleft()
                    delivered += len(batch)
            finally:
                self._delivering = False
            if self._delivery_failing:
                self._delivery_failing = False
                _log.info("event sink recovered; pending events delivered")
        return delivered

    def __len__(self) -> int:
        return len(self._jobs)
