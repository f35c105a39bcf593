"""``job`` steps: the Job a step creates, and the scheduler side it is sent to.

:func:`job_for_step` turns a rendered :class:`~budcore.pipeline.model.JobStepConfig` into a
:class:`~budcore.domain.job.Job` that carries the step's priority, accelerator (``gpu_type``, a
catalog slug), estimated and maximum duration, time window and deadline (the earlier of the step's
and the run's) to the scheduler, with provenance (``source: pipeline``, the run and step ids, and
labels: the pipeline, the run and the step) and an idempotency key of the attempt, from which its
id is derived, so a resumed run never submits a job twice.

:class:`ServiceStepJobs` is the :class:`~budcore.ports.pipeline_effects.StepJobs` of a service that
embeds budcore: jobs are stored queued through :class:`~budcore.service.JobService` (whose store
is idempotent by key) and, when a scheduler is given, its ETA engine answers :meth:`eta`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from budcore.domain.errors import NotFoundError, ValidationError
from budcore.domain.ids import JobId, ProjectId, TenantId
from budcore.domain.job import Job, JobSource, JobStatus, ResourceRequest
from budcore.domain.timewindow import TimeWindow
from budcore.domain.validation import validate_model
from budcore.pipeline.model import JobStepConfig

if TYPE_CHECKING:
    from budcore.scheduling.scheduler import Scheduler
    from budcore.service import JobService

__all__ = ["PIPELINE_LABEL", "RUN_LABEL", "STEP_LABEL", "ServiceStepJobs", "job_for_step"]

# Kueue's LocalQueueDefaulting: a job that names no queue goes to the LocalQueue "default" of its
# namespace. A step names its own (``local_queue``), else the pipeline's, else this one.
DEFAULT_LOCAL_QUEUE = "default"
# Job ids are derived from the attempt's idempotency key, so the job of an attempt has one id in
# every store and every retry of a submission (a resumed run's) names the same job.
_JOB_IDS = uuid.UUID("6f1d5e0c-3c1b-4f3e-9a59-0f2a7c1e5b11")
PIPELINE_LABEL = "budcore.io/pipeline"
RUN_LABEL = "budcore.io/pipeline-run"
STEP_LABEL = "budcore.io/pipeline-step"


def job_for_step(
    config: JobStepConfig,
    *,
    run_id: str,
    pipeline_id: str,
    step_id: str,
    key: str,
    tenant: str,
    project: str,
    run_deadline: datetime | None = None,
    name: str | None = None,
    local_queue: str = DEFAULT_LOCAL_QUEUE,
    now: datetime | None = None,
) -> Job:
    """The Job of one attempt of a ``job`` step (``config`` already rendered)."""
    extra: dict[str, str | int] = {}
    request = ResourceRequest.single(
        gpus=config.gpu_count,
        cpu=config.cpu_cores,
        memory=f"{round(config.memory_gb * 1024)}Mi",
        accelerator_type=config.gpu_type,
        gpu_resource=config.gpu_resource,
        pods=config.pods,
        extra=extra or None,
    )
    deadlines = [d for d in (config.deadline, run_deadline) if d is not None]
    window: TimeWindow | None = None
    if config.time_window_start is not None and config.time_window_end is not None:
        window = TimeWindow.parse(
            {
                "start": config.time_window_start,
                "end": config.time_window_end,
                "timezone": config.time_window_timezone,
            },
            f"steps[{step_id}].config.time_window_start",
        )
    labels = {
        **config.labels,
        PIPELINE_LABEL: pipeline_id,
        RUN_LABEL: run_id,
        STEP_LABEL: step_id,
    }
    data: dict[str, Any] = {
        "name": (name or step_id)[:253],
        "tenant": TenantId(tenant),
        "project": ProjectId(project),
        "job_type": config.job_type,
        "request": request,
        "local_queue": config.local_queue or local_queue,
        "deployment_type": config.deployment_type,
        "spec": {**config.spec, "component_ref": config.component_ref}
        if config.component_ref is not None
        else dict(config.spec),
        "estimated_duration": _delta(config.estimated_duration_seconds),
        "max_duration": _delta(config.max_duration_seconds),
        "deadline": min(deadlines) if deadlines else None,
        "time_window": window,
        "priority": config.priority,
        "preemptible": config.preemptible,
        "labels": labels,
        "id": JobId(uuid.uuid5(_JOB_IDS, key).hex),  # the attempt's job, whoever submits it
        "idempotency_key": key,
        "max_retries": 0,  # a failed job fails the step's attempt: retries are the step's
        "source": JobSource.PIPELINE,
        "pipeline_id": pipeline_id,
        "pipeline_step_id": step_id,
    }
    if now is not None:
        data["created_at"] = data["updated_at"] = now
    return validate_model(Job, data, prefix=f"steps[{step_id}].job")


def _delta(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


class ServiceStepJobs:
    """``job`` steps through a :class:`JobService` (and a scheduler's ETAs, when given)."""

    def __init__(self, service: JobService, scheduler: Scheduler | None = None) -> None:
        self.service = service
        self.scheduler = scheduler

    def submit(self, job: Job) -> Job:
        return self.service.submit(job)

    def get(self, tenant: TenantId, job_id: JobId) -> Job:
        return self.service.store.get(tenant, job_id)

    def cancel(self, tenant: TenantId, job_id: JobId, reason: str) -> None:
        try:
            job = self.service.store.get(tenant, job_id)
        except NotFoundError:
            return
        if job.status.is_terminal:
            return
        self.service.move(job, JobStatus.CANCELLED, reason=reason)
        if self.scheduler is not None:
            self.scheduler.withdraw(job_id)

    def eta(self, job: Job) -> datetime | None:
        if self.scheduler is None:
            return None
        try:
            eta = self.scheduler.eta(job.id)
        except ValidationError:  # no cycle has run yet: nothing to estimate from
            return None
        return None if eta is None else eta.start
