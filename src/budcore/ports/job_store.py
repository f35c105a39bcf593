"""The job store port: where jobs live between decisions.

Contract (checked by :mod:`budcore.testing.conformance` for every implementation):

- ``create`` is idempotent per ``(tenant, idempotency_key)``: a second create with the same key
  returns the stored job unchanged. A new job is stored with ``version == 1``.
- ``get``/``list`` are tenant-scoped: another tenant's job is "not found", never returned.
- ``update`` is optimistic: the job passed in carries the version it was read at; if the stored
  version differs, ``ConflictError`` is raised and nothing is written. A successful write stores
  ``version + 1`` and returns the stored job. The store checks the lifecycle (a status change must
  be a legal transition) so no caller can corrupt state.
- ``events`` passed to ``create``/``update`` are recorded atomically with the write and delivered
  after it (an in-memory store queues them and forwards them to its sink; a database store writes
  them to its outbox in the same transaction and a dispatcher delivers them). A delivery failure
  never fails or undoes a write that succeeded: the events stay recorded and are retried.
- A ``JobFilter`` with a naive ``created_after``/``created_before`` makes ``list`` raise budcore's
  ``ValidationError`` naming the bound (jobs carry aware UTC times).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from budcore.domain.events import DomainEvent
from budcore.domain.ids import JobId, ProjectId, TenantId
from budcore.domain.job import Job, JobStatus, JobType
from budcore.domain.priority import JobPriority


class JobFilter(BaseModel):
    """Conjunctive filter for :meth:`JobStore.list`; ``None`` fields match everything.

    Results are ordered by ``(created_at, id)`` ascending, which is the FIFO order admission uses.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    statuses: frozenset[JobStatus] | None = None
    project: ProjectId | None = None
    job_type: JobType | None = None
    priority: JobPriority | None = None
    local_queue: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    created_after: datetime | None = None
    created_before: datetime | None = None
    limit: int | None = Field(default=None, ge=1)

    def matches(self, job: Job) -> bool:
        if self.statuses is not None and job.status not in self.statuses:
            return False
        if self.project is not None and job.project != self.project:
            return False
        if self.job_type is not None and job.job_type != self.job_type:
            return False
        if self.priority is not None and job.priority != self.priority:
            return False
        if self.local_queue is not None and job.local_queue != self.local_queue:
            return False
        if self.created_after is not None and job.created_at <= self.created_after:
            return False
        if self.created_before is not None and job.created_at >= self.created_before:
            return False
        labels = job.labels
        return all(labels.get(k) == v for k, v in self.labels.items())


ALL = JobFilter()


@runtime_checkable
class JobStore(Protocol):
    def create(self, job: Job, *, events: Sequence[DomainEvent] = ()) -> Job:
        """Store a new job (or return the existing one with the same idempotency key)."""
        ...

    def get(self, tenant: TenantId, job_id: JobId) -> Job:
        """The job, or ``NotFoundError`` (also for another tenant's job)."""
        ...

    def list(self, tenant: TenantId | None, flt: JobFilter = ALL) -> list[Job]:
        """Jobs of ``tenant`` (``None``: every tenant, the scheduler's view) matching ``flt``."""
        ...

    def update(self, job: Job, *, events: Sequence[DomainEvent] = ()) -> Job:
        """Write ``job`` if its ``version`` is the stored one, else ``ConflictError``."""
        ...

    def count(self, tenant: TenantId | None, flt: JobFilter = ALL) -> int:
        """How many jobs ``list`` would return without a limit."""
        ...
