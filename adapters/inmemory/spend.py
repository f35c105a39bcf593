"""In-memory :class:`~budcore.ports.spend.SpendLedger`: usage records in a list, over a job store.

The guarded create holds the :class:`~.job_store.InMemoryJobStore`'s own lock while it reads the
tenant's book, lets the guard decide and stores the job, so no other writer of that store (another
thread's submission, an update) can slip between the decision and the write: the in-process
equivalent of the PostgreSQL ledger's per-tenant advisory lock.

Usage is whatever the embedding service meters into it with :meth:`InMemorySpendLedger.record`
(a closed stretch) or :meth:`~InMemorySpendLedger.open` / :meth:`~InMemorySpendLedger.close` (a
job running now, counted up to the reading instant).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from budcore.cost.metering import UsageRecord
from budcore.domain.errors import AlreadyExistsError, NotFoundError, ValidationError
from budcore.domain.events import DomainEvent
from budcore.domain.ids import TenantId
from budcore.domain.job import Job, JobStatus
from budcore.domain.timeutil import ensure_utc
from budcore.ports.job_store import JobFilter
from budcore.ports.spend import TenantBook

from .job_store import InMemoryJobStore

LIVE = frozenset({JobStatus.PENDING, JobStatus.QUEUED, JobStatus.ADMITTED, JobStatus.RUNNING})


class InMemorySpendLedger:
    """Usage records kept in memory, and budget-guarded creates on an in-memory job store."""

    def __init__(self, store: InMemoryJobStore, records: Iterable[UsageRecord] = ()) -> None:
        self.store = store
        self._closed: list[UsageRecord] = list(records)
        self._open: dict[str, UsageRecord] = {}  # job id -> its running stretch (end = start)
        self._lock = threading.Lock()

    # Metering ------------------------------------------------------------------------------
    def record(self, record: UsageRecord) -> None:
        """Add a finished stretch of usage."""
        with self._lock:
            self._closed.append(record)

    def open(self, record: UsageRecord) -> None:
        """A job started using ``record.devices`` at ``record.start`` (its end is ignored until
        :meth:`close`); a job has at most one open stretch."""
        with self._lock:
            if record.job_id in self._open:
                raise AlreadyExistsError("open usage", record.job_id)
            self._open[record.job_id] = record.model_copy(update={"end": record.start})

    def close(self, job_id: str, end: datetime) -> UsageRecord:
        """End the job's open stretch at ``end`` and keep it; the closed record."""
        end = ensure_utc(end, "end")
        with self._lock:
            running = self._open.pop(job_id, None)
            if running is None:
                raise NotFoundError("open usage", job_id)
            if end < running.start:
                self._open[job_id] = running
                raise ValidationError(f"end {end.isoformat()} is before the start", path="end")
            closed = running.model_copy(update={"end": end})
            self._closed.append(closed)
            return closed

    # UsageLog ------------------------------------------------------------------------------
    def usage(self, start: datetime, end: datetime, *, tenant: str | None = None) -> list[UsageRecord]:
        start, end = ensure_utc(start, "start"), ensure_utc(end, "end")
        if end < start:
            raise ValidationError("end must not be before start", path="end")
        with self._lock:
            stretches = self._closed + [
                r.model_copy(update={"end": max(end, r.start)}) for r in self._open.values()
            ]
        out = []
        for record in stretches:
            if tenant is not None and record.tenant != tenant:
                continue
            part = record.clipped(start, end)
            if part is not None:
                out.append(part)
        return sorted(out, key=lambda r: (r.start, r.job_id))

    # SpendLedger ---------------------------------------------------------------------------
    def guarded_create(
        self,
        job: Job,
        *,
        events: Sequence[DomainEvent],
        since: datetime,
        until: datetime,
        decide: Callable[[TenantBook], Sequence[DomainEvent] | None],
    ) -> Job:
        with self.store.lock:
            if job.idempotency_key is not None:
                replayed = self.store.by_idempotency_key(job.tenant, job.idempotency_key)
                if replayed is not None:
                    return replayed
            if self.store.has(job.tenant, job.id):  # refused before deciding, as PostgreSQL does
                raise AlreadyExistsError("job", job.id)
            book = self.book(job.tenant, since, until)
            extra = decide(book) or ()
            return self.store.create(job, events=[*events, *extra])

    def book(self, tenant: TenantId, since: datetime, until: datetime) -> TenantBook:
        """The tenant's usage over ``[since, until)`` and its live jobs, read now."""
        live = self.store.list(tenant, JobFilter(statuses=LIVE))
        return TenantBook(tenant, since, until, tuple(self.usage(since, until, tenant=tenant)), tuple(live))


__all__ = ["LIVE", "InMemorySpendLedger"]
