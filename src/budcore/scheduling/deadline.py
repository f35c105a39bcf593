"""Deadline feasibility: "will my fine-tune finish by 06:00?" — and if not, what would make it.

:func:`check_deadline` asks the forward run (:mod:`budcore.scheduling.forecast`) when the job
would complete as submitted, and compares that with its deadline:

- ``infeasible``: the earliest completion is after the deadline plus the clock-skew grace;
- ``at_risk``: it completes in time, but with less slack than ``risk_margin`` of the time left
  (an estimate that is a little off would miss), or it has no runtime estimate at all (the
  forecast assumed the default runtime);
- ``feasible``: it completes in time with room to spare.

For a job that is not ``feasible`` it also tries the changes a user can make and forecasts each one
the same way: a higher priority class, another accelerator type its ClusterQueue offers (with
the runtime rescaled when a ``runtime_on`` estimator is given, e.g. from the hardware catalog), and
finally the deadline that would be met (the earliest completion). Each option carries its own
estimate and, when prices are known, its cost; options are ranked by cost, then completion.

Deadline-aware *ordering* (boosting waiting jobs as their slack runs out) is
:func:`deadline_boost`, applied by :meth:`~budcore.scheduling.scheduler.Scheduler.boost_deadlines`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from budcore.domain.errors import BudcoreError, ValidationError
from budcore.domain.job import Job
from budcore.domain.priority import PRIORITY_CLASS_LABEL, JobPriority
from budcore.domain.timeutil import ensure_utc
from budcore.scheduling.forecast import Eta, ForecastOptions, Forkable, eta_for


class DeadlineScheduler(Forkable, Protocol):
    """A scheduler a deadline check can forecast on and ask which accelerators a queue offers."""

    def accelerator_types_for(self, job: Job) -> list[str]: ...


# Runtime of a job on another accelerator type (None: unknown, keep the job's own estimate).
RuntimeOn = Callable[[Job, str], timedelta | None]


class Verdict(StrEnum):
    FEASIBLE = "feasible"
    AT_RISK = "at_risk"
    INFEASIBLE = "infeasible"


class DeadlineAction(StrEnum):
    """What a queue does with a submission whose deadline cannot be met."""

    WARN = "warn"  # queue it and say so (an event / a returned verdict)
    REJECT = "reject"  # refuse it: nothing is queued


@dataclass(frozen=True, slots=True)
class DeadlinePolicy:
    """Per-queue submission policy (budcore's own; Kueue has no deadlines).

    ``action`` applies to ClusterQueues not named in ``per_queue``. ``grace`` absorbs clock skew
    between the submitter and the scheduler: a completion up to ``grace`` after the deadline is
    still in time. ``risk_margin`` is the share of the time left that slack must exceed for a
    verdict of feasible.
    """

    action: DeadlineAction = DeadlineAction.WARN
    per_queue: Mapping[str, DeadlineAction] = field(default_factory=dict)
    grace: timedelta = timedelta(seconds=30)
    risk_margin: float = 0.1

    def __post_init__(self) -> None:
        if self.grace < timedelta(0):
            raise ValidationError("must not be negative", path="deadline_policy.grace")
        if not 0.0 <= self.risk_margin < 1.0:
            raise ValidationError("must be in [0, 1)", path="deadline_policy.risk_margin")

    def action_for(self, cluster_queue: str) -> DeadlineAction:
        return self.per_queue.get(cluster_queue, self.action)


@dataclass(frozen=True, slots=True)
class DeadlineOption:
    """One change that was forecast: what it is, when the job would complete, what it costs."""

    label: str
    completion: datetime | None
    meets_deadline: bool
    cost: Decimal | None = None
    eta: Eta | None = None

    def describe(self) -> str:
        when = f"completes {self.completion:%Y-%m-%d %H:%M} UTC" if self.completion else "no estimate"
        cost = f", cost {self.cost:.2f}" if self.cost is not None else ""
        meets = "meets the deadline" if self.meets_deadline else "still late"
        return f"{self.label}: {when} ({meets}{cost})"


@dataclass(frozen=True, slots=True)
class DeadlineCheck:
    """The verdict for one job, with the forecast it came from and the options that were tried."""

    job_id: str
    deadline: datetime
    verdict: Verdict
    earliest_completion: datetime | None
    slack: timedelta | None  # deadline − earliest completion (negative: late)
    eta: Eta
    options: tuple[DeadlineOption, ...] = ()
    note: str = ""

    @property
    def best_option(self) -> DeadlineOption | None:
        meeting = [o for o in self.options if o.meets_deadline]
        return meeting[0] if meeting else (self.options[0] if self.options else None)

    def describe(self) -> str:
        when = (
            f"earliest completion {self.earliest_completion:%Y-%m-%d %H:%M} UTC"
            if self.earliest_completion
            else "no completion within the forecast horizon"
        )
        head = (
            f"job {self.job_id}: {self.verdict.value} for deadline {self.deadline:%Y-%m-%d %H:%M} UTC, {when}"
        )
        lines = [head + (f" ({self.note})" if self.note else "")]
        lines.extend(f"  option {o.describe()}" for o in self.options)
        return "\n".join(lines)


class DeadlineInfeasibleError(BudcoreError):
    """A submission refused by a queue's ``reject`` deadline policy; nothing was queued."""

    def __init__(self, check: DeadlineCheck) -> None:
        self.check = check
        best = check.best_option
        when = (
            f"{check.earliest_completion:%Y-%m-%d %H:%M:%S} UTC"
            if check.earliest_completion
            else "not within the forecast horizon"
        )
        hint = f"; best option: {best.describe()}" if best is not None else ""
        super().__init__(
            f"job {check.job_id!r}: deadline {check.deadline:%Y-%m-%d %H:%M:%S} UTC cannot be met "
            f"(earliest completion {when}){hint}"
        )


def check_deadline(
    scheduler: DeadlineScheduler,
    job: Job,
    now: datetime,
    *,
    policy: DeadlinePolicy | None = None,
    forecast: ForecastOptions | None = None,
    runtime_on: RuntimeOn | None = None,
    gpu_hour_price: Mapping[str, Decimal] | None = None,
    explore: bool = True,
) -> DeadlineCheck:
    """Forecast ``job`` (queued or not yet submitted) against its deadline; try options if late.

    ``gpu_hour_price`` (per ResourceFlavor) prices each option by its expected GPU-hours;
    ``explore=False`` skips the options (one forward run instead of several).
    """
    if job.deadline is None:
        raise ValidationError(f"job {job.id!r} has no deadline", path="deadline")
    now = ensure_utc(now, "now")
    policy = policy or DeadlinePolicy()
    forecast = forecast or ForecastOptions()
    eta = eta_for(scheduler, job, now, options=forecast)
    verdict, slack = _verdict(job, eta, now, policy)
    note = "" if _has_runtime(job) else "no runtime estimate: the forecast assumed the default runtime"
    if note and verdict is Verdict.FEASIBLE:
        verdict = Verdict.AT_RISK
    options: tuple[DeadlineOption, ...] = ()
    if explore and verdict is not Verdict.FEASIBLE:
        found = _options(scheduler, job, now, policy, forecast, runtime_on, gpu_hour_price)
        found.append(_later_deadline(eta))
        options = tuple(sorted(found, key=_rank))
    return DeadlineCheck(job.id, job.deadline, verdict, eta.end, slack, eta, options, note)


def _has_runtime(job: Job) -> bool:
    return job.estimated_duration is not None or job.max_duration is not None


def _verdict(job: Job, eta: Eta, now: datetime, policy: DeadlinePolicy) -> tuple[Verdict, timedelta | None]:
    assert job.deadline is not None
    if eta.end is None:
        return Verdict.INFEASIBLE, None
    slack = job.deadline - eta.end
    if slack < -policy.grace:
        return Verdict.INFEASIBLE, slack
    time_left = job.deadline - now
    if slack < time_left * policy.risk_margin:
        return Verdict.AT_RISK, slack
    return Verdict.FEASIBLE, slack


def _meets(job: Job, completion: datetime | None, policy: DeadlinePolicy) -> bool:
    assert job.deadline is not None
    return completion is not None and completion <= job.deadline + policy.grace


def _options(
    scheduler: DeadlineScheduler,
    job: Job,
    now: datetime,
    policy: DeadlinePolicy,
    forecast: ForecastOptions,
    runtime_on: RuntimeOn | None,
    prices: Mapping[str, Decimal] | None,
) -> list[DeadlineOption]:
    """Forecast each change a user could make (the job is re-estimated as a new submission)."""
    variants: list[tuple[str, Job]] = []
    for klass in _higher_classes(job):
        variants.append((f"priority {klass.value}", _with_class(job, klass)))
    for accelerator in scheduler.accelerator_types_for(job):
        if job.request.accelerators == (accelerator,):
            continue
        runtime = runtime_on(job, accelerator) if runtime_on is not None else None
        update: dict[str, object] = {
            "request": job.request.model_copy(
                update={"accelerator_type": accelerator, "accelerator_types": ()}
            )
        }
        if runtime is not None:
            update["estimated_duration"] = runtime
            update["max_duration"] = None if job.max_duration is None else max(job.max_duration, runtime)
        variants.append((f"accelerator {accelerator}", job.model_copy(update=update)))
    out: list[DeadlineOption] = []
    for label, variant in variants:
        probe = variant.model_copy(update={"id": f"{job.id}~{len(out)}"})
        eta = eta_for(scheduler, probe, now, options=forecast)
        cost = _cost(probe, eta, forecast, prices)
        out.append(DeadlineOption(label, eta.end, _meets(job, eta.end, policy), cost, eta))
    return out


def _higher_classes(job: Job) -> list[JobPriority]:
    """Built-in classes above the job's value, below critical (critical protects; it is no boost)."""
    return [k for k in (JobPriority.NORMAL, JobPriority.HIGH) if k.value_int > job.priority_value]


def _with_class(job: Job, klass: JobPriority) -> Job:
    """The job under a built-in class (its own class name or value, which would win, dropped)."""
    labels = {k: v for k, v in job.labels.items() if k != PRIORITY_CLASS_LABEL}
    return job.model_copy(
        update={"priority": klass, "workload_priority": None, "priority_class": None, "labels": labels}
    )


def _later_deadline(eta: Eta) -> DeadlineOption:
    label = (
        f"a deadline of {eta.end:%Y-%m-%d %H:%M} UTC or later"
        if eta.end is not None
        else "no deadline: not admitted within the forecast horizon"
    )
    return DeadlineOption(label, eta.end, eta.end is not None, None, eta)


def _cost(
    job: Job, eta: Eta, forecast: ForecastOptions, prices: Mapping[str, Decimal] | None
) -> Decimal | None:
    """Expected GPU-hours × the price of the flavor the forecast admitted it to (None: unpriced)."""
    if not prices or eta.start is None or eta.flavor not in prices:
        return None
    hours = Decimal(forecast.runtime(job).total_seconds()) / Decimal(3600)
    return (prices[eta.flavor] * hours * job.request.accelerator_count).quantize(Decimal("0.01"))


def _rank(option: DeadlineOption) -> tuple[int, Decimal, datetime]:
    far = datetime.max.replace(tzinfo=option.completion.tzinfo if option.completion else None)
    cost = option.cost if option.cost is not None else Decimal("Infinity")
    return (0 if option.meets_deadline else 1, cost, option.completion or far)


# Deadline-aware ordering ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DeadlineBoost:
    """Raise a waiting job's queue priority as its slack runs out (budcore's own ordering option).

    The *time budget* is ``deadline − (submission + expected runtime)``: the slack the job had
    when it was submitted. When ``thresholds[i]`` of it has elapsed, the job's priority is raised
    by ``boosts[i]`` over its base (the largest threshold reached counts). It never lowers a
    priority and never reaches critical (1000): at most ``ceiling``.
    """

    thresholds: tuple[float, ...] = (0.5, 0.75, 0.9)
    boosts: tuple[int, ...] = (10, 50, 100)
    ceiling: int = JobPriority.CRITICAL.value_int - 1
    edf: bool = True  # within a priority level, earliest deadline first

    def __post_init__(self) -> None:
        if len(self.thresholds) != len(self.boosts) or not self.thresholds:
            raise ValidationError("thresholds and boosts must pair up", path="deadline_boost")
        if list(self.thresholds) != sorted(self.thresholds) or not all(0 < t <= 1 for t in self.thresholds):
            raise ValidationError("thresholds must be ascending in (0, 1]", path="deadline_boost.thresholds")
        if list(self.boosts) != sorted(self.boosts) or self.boosts[0] < 0:
            raise ValidationError("boosts must be non-negative and ascending", path="deadline_boost.boosts")
        if self.ceiling >= JobPriority.CRITICAL.value_int:
            raise ValidationError("must be below critical (1000)", path="deadline_boost.ceiling")


def deadline_boost(
    base: int,
    *,
    submitted: datetime,
    deadline: datetime,
    runtime: timedelta,
    now: datetime,
    boost: DeadlineBoost,
    previous: int | None = None,
) -> int:
    """The queue priority of a waiting job with a deadline (monotone in ``now``)."""
    floor = base if previous is None else max(base, previous)
    if base >= boost.ceiling:
        return floor
    budget = (deadline - runtime - submitted).total_seconds()
    elapsed = (now - submitted).total_seconds()
    used = 1.0 if budget <= 0 else elapsed / budget
    raised = base
    for threshold, amount in zip(boost.thresholds, boost.boosts, strict=True):
        if used >= threshold:
            raised = base + amount
    return max(floor, min(raised, boost.ceiling))
