"""Execution limits: when an admitted job has run too long (issue #13).

Kueue's ``maximumExecutionTimeSeconds`` bounds the time a workload is *admitted*, summed over all
its admissions: ``status.accumulatedPastExexcutionTimeSeconds`` keeps the time of earlier runs
(budcore: ``Job.accumulated_runtime``, kept by :func:`budcore.domain.lifecycle.transition`) and
the current run counts from its admission. Once the sum reaches the limit the workload is stopped.

budcore adds a *runaway* alert: a job admitted for more than ``runaway_factor`` times its
``estimated_duration`` is flagged (and keeps running) so an operator can look at it.

Pure functions of the job, its admission instant and now; the
:class:`~budcore.scheduling.scheduler.Scheduler` applies them to its admitted workloads
(:meth:`~budcore.scheduling.scheduler.Scheduler.overdue`,
:meth:`~budcore.scheduling.scheduler.Scheduler.next_limit`) and
:meth:`budcore.service.JobService.enforce_limits` fails the jobs that timed out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from budcore.domain.errors import ValidationError
from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import Job
from budcore.domain.timeutil import ensure_utc

DEFAULT_RUNAWAY_FACTOR = 3.0


class LimitKind(StrEnum):
    TIMEOUT = "timeout"  # max_duration reached: stop the job
    RUNAWAY = "runaway"  # far beyond its estimate: an alert, the job keeps running


@dataclass(frozen=True, slots=True)
class LimitVerdict:
    """An admitted job over one of its limits, as of ``now``.

    ``at`` is the instant the limit was crossed, ``runtime`` the admitted time so far (this run
    plus ``accumulated_runtime``) and ``limit`` the admitted time the limit allows.
    """

    job_id: JobId
    tenant: TenantId
    kind: LimitKind
    at: datetime
    runtime: timedelta
    limit: timedelta
    message: str

    @property
    def stops(self) -> bool:
        """Whether the job must be stopped (a timeout) rather than only reported."""
        return self.kind is LimitKind.TIMEOUT


def _check_factor(runaway_factor: float) -> None:
    if not runaway_factor > 0:
        raise ValidationError(f"runaway_factor must be > 0, got {runaway_factor}", path="runaway_factor")


def _shift(admitted_at: datetime, limit: timedelta, accumulated: timedelta) -> datetime | None:
    """When the run admitted at ``admitted_at`` brings the admitted time to ``limit``."""
    try:
        return admitted_at + max(limit - accumulated, timedelta(0))
    except OverflowError:  # beyond datetime.max: never
        return None


def expires_at(job: Job, admitted_at: datetime) -> datetime | None:
    """The instant the run admitted at ``admitted_at`` reaches ``max_duration`` (None: no limit).

    The earlier runs' ``accumulated_runtime`` counts, so a job that already used its limit
    expires the moment it is admitted.
    """
    if job.max_duration is None:
        return None
    return _shift(ensure_utc(admitted_at, "admitted_at"), job.max_duration, job.accumulated_runtime)


def execution_limit_verdict(
    job: Job, admitted_at: datetime, now: datetime, *, runaway_factor: float = DEFAULT_RUNAWAY_FACTOR
) -> LimitVerdict | None:
    """Whether ``job``, admitted at ``admitted_at``, is over a limit at ``now`` (None: it is not).

    - ``timeout``: this run's admitted time plus ``accumulated_runtime`` is at least
      ``max_duration`` (reaching the limit exactly is a timeout, as in Kueue);
    - ``runaway``: no timeout, but the admitted time exceeds ``runaway_factor × estimated_duration``.
    """
    _check_factor(runaway_factor)
    admitted_at = ensure_utc(admitted_at, "admitted_at")
    now = ensure_utc(now, "now")
    this_run = max(now - admitted_at, timedelta(0))
    runtime = this_run + job.accumulated_runtime
    earlier = f" ({job.accumulated_runtime} in earlier runs)" if job.accumulated_runtime else ""
    if job.max_duration is not None and runtime >= job.max_duration:
        limit = job.max_duration
        at = _shift(admitted_at, limit, job.accumulated_runtime) or now
        message = f"max_duration {limit} reached: admitted for {runtime}{earlier}"
        return LimitVerdict(job.id, job.tenant, LimitKind.TIMEOUT, min(at, now), runtime, limit, message)
    if job.estimated_duration is not None:
        limit = job.estimated_duration * runaway_factor
        if runtime > limit:
            at = _shift(admitted_at, limit, job.accumulated_runtime) or now
            message = (
                f"admitted for {runtime}{earlier}, more than {runaway_factor:g}× "
                f"its estimated_duration {job.estimated_duration}"
            )
            return LimitVerdict(job.id, job.tenant, LimitKind.RUNAWAY, min(at, now), runtime, limit, message)
    return None


def overdue(
    admitted: Iterable[tuple[Job, datetime]], now: datetime, *, runaway_factor: float = DEFAULT_RUNAWAY_FACTOR
) -> list[LimitVerdict]:
    """The verdicts for ``(job, admitted_at)`` pairs that are over a limit at ``now``, in order."""
    verdicts = (execution_limit_verdict(job, at, now, runaway_factor=runaway_factor) for job, at in admitted)
    return [v for v in verdicts if v is not None]


def next_limit(admitted: Iterable[tuple[Job, datetime]], now: datetime) -> datetime | None:
    """The earliest instant one of ``admitted`` reaches its ``max_duration``, never before ``now``
    (a limit already passed but not yet enforced gives ``now``); None if none has a limit."""
    now = ensure_utc(now, "now")
    instants = [t for job, at in admitted if (t := expires_at(job, at)) is not None]
    return max(min(instants), now) if instants else None
