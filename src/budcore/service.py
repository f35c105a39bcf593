"""The application service: the one place that turns intents into stored, evented state changes.

Services embedding budcore call this instead of juggling the store, the lifecycle and the event
sink themselves: every change goes through :func:`budcore.domain.lifecycle.transition`, is written
with optimistic concurrency, and carries its event into the same store write (so a database
store's outbox records it atomically).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import Job, JobStatus
from budcore.domain.lifecycle import DEFAULT_BACKOFF, BackoffPolicy, transition
from budcore.ports.clock import Clock
from budcore.ports.job_store import ALL, JobFilter, JobStore


class JobService:
    def __init__(self, store: JobStore, clock: Clock, backoff: BackoffPolicy = DEFAULT_BACKOFF) -> None:
        self.store = store
        self.clock = clock
        self.backoff = backoff

    def submit(self, job: Job, *, queue: bool = True) -> Job:
        """Store a new job (idempotent by key) and, unless ``queue`` is false, queue it.

        A replayed submission (same tenant and idempotency key) returns the stored job untouched.
        """
        now = self.clock.now()
        fresh = job.model_copy(update={"created_at": now, "updated_at": now, "status": JobStatus.PENDING})
        stored = self.store.create(fresh)
        if stored.id != fresh.id or not queue or stored.status is not JobStatus.PENDING:
            return stored
        return self.move(stored, JobStatus.QUEUED, reason="submitted")

    def move(
        self, job: Job, to_status: JobStatus, *, reason: str = "", now: datetime | None = None, **changes: Any
    ) -> Job:
        """Apply one lifecycle transition to ``job`` (as read, with its version) and store it."""
        new_job, event = transition(
            job, to_status, now=now or self.clock.now(), reason=reason, backoff=self.backoff, **changes
        )
        return self.store.update(new_job, events=[event])

    def move_by_id(self, tenant: TenantId, job_id: JobId, to_status: JobStatus, *, reason: str = "") -> Job:
        return self.move(self.store.get(tenant, job_id), to_status, reason=reason)

    def cancel(self, tenant: TenantId, job_id: JobId, reason: str = "cancelled by user") -> Job:
        return self.move_by_id(tenant, job_id, JobStatus.CANCELLED, reason=reason)

    def jobs(self, tenant: TenantId | None, flt: JobFilter = ALL) -> list[Job]:
        return self.store.list(tenant, flt)
