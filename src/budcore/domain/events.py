"""Domain events: what happened to a job, for event sinks, outboxes and audit trails."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import JobStatus


class JobTransitioned(BaseModel):
    """A job moved from one state to another, and why."""

    model_config = ConfigDict(frozen=True)

    job_id: JobId
    tenant: TenantId
    from_status: JobStatus
    to_status: JobStatus
    reason: str
    at: datetime
    version: int  # the job version that the transition produced

    @property
    def kind(self) -> str:
        return "job.transitioned"


DomainEvent = JobTransitioned
