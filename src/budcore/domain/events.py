"""Domain events: what happened to a job, or what a pipeline said, for sinks, outboxes and audits."""

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


class PipelineNotified(BaseModel):
    """A pipeline's ``notification`` step spoke: the message, its channel and recipients.

    What the default notifier of the pipeline engine publishes through the event sink, so a
    service delivers notifications the way it delivers every other event (an outbox, a bus); the
    ``key`` (run/step/attempt) lets a consumer deliver each one once.
    """

    model_config = ConfigDict(frozen=True)

    tenant: TenantId
    pipeline_id: str
    run_id: str
    step_id: str
    key: str
    channel: str
    recipients: tuple[str, ...] = ()
    severity: str = "info"
    message: str
    at: datetime

    @property
    def kind(self) -> str:
        return "pipeline.notified"


class BudgetAlerted(BaseModel):
    """Money (issue #16): a submission passed a quota threshold or budget in ``warn`` mode, or a
    running job's or tenant's spend reached 80% or 100% of its limit, or a budget paused or
    cancelled a job. ``key`` names the alert once (subject, period, level), so a consumer
    delivers each one once even when a review is repeated."""

    model_config = ConfigDict(frozen=True)

    tenant: TenantId
    key: str
    subject: str  # a budget key ("team-a:month:calendar"), "job:<id>", or a quota resource
    message: str
    at: datetime
    job_id: JobId | None = None
    severity: str = "warning"  # "warning" (80%, warn mode), "critical" (100%, pause, cancel)

    @property
    def kind(self) -> str:
        return "budget.alerted"


DomainEvent = JobTransitioned | PipelineNotified | BudgetAlerted
