"""Budget enforcement for a service: run :func:`~budcore.cost.actions.review_budgets` on what is
stored and metered, and carry out its alerts, pauses, cancellations and resumptions.

Why here and not in the scheduler: the decision needs metered spend (a :class:`UsageLog`) and
must change stored jobs through the lifecycle with their events, which is the service's job; the
scheduler only has its quota released when a job it admitted stops. A service calls
:func:`enforce_budgets` periodically (every minute is plenty: per-second metering makes the
overshoot at most the spend of one period) and keeps the returned ``fired`` for the next call.

A paused job is ``preempted`` (its last checkpoint is where it resumes; preemption is the
lifecycle's way of stopping a job that will run again) and carries the label
:data:`PAUSED_LABEL`, so a restarted service finds what it paused; when
:func:`~budcore.cost.actions.resumable` says its budgets have room again it goes back to
``queued`` without the label (and into ``scheduler`` when one is given).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from budcore.cost.actions import BudgetAlert, BudgetStop, JobSpend, resumable, review_budgets
from budcore.cost.guard import GuardPolicy, budget_spends
from budcore.cost.metering import UsageRecord, record_cost
from budcore.cost.prices import PriceBook
from budcore.domain.events import BudgetAlerted, DomainEvent
from budcore.domain.job import BudgetAction, Job, JobStatus
from budcore.domain.lifecycle import transition
from budcore.domain.timeutil import ensure_utc
from budcore.ports.job_store import JobFilter

if TYPE_CHECKING:
    from budcore.ports.event_sink import EventSink
    from budcore.ports.spend import UsageLog
    from budcore.scheduling.scheduler import Scheduler
    from budcore.service import JobService

#: Marks a job a budget paused (value: the budget subject that paused it).
PAUSED_LABEL = "budcore.io/budget-paused"

HOLDING = frozenset({JobStatus.ADMITTED, JobStatus.RUNNING})


@dataclass(frozen=True)
class BudgetOutcome:
    """What one enforcement pass did."""

    alerts: tuple[BudgetAlerted, ...] = ()
    paused: tuple[Job, ...] = ()
    cancelled: tuple[Job, ...] = ()
    resumed: tuple[Job, ...] = ()
    fired: frozenset[str] = field(default_factory=frozenset)


def alert_event(alert: BudgetAlert, now: datetime) -> BudgetAlerted:
    """The event an alert records (severity critical at 100%)."""
    severity = "critical" if alert.level >= 1 else "warning"
    return BudgetAlerted(
        tenant=alert.tenant,
        key=alert.key,
        subject=alert.subject,
        message=str(alert),
        at=now,
        job_id=alert.job_id,
        severity=severity,
    )


def enforce_budgets(
    service: JobService,
    usage_log: UsageLog,
    policy: GuardPolicy,
    prices: PriceBook,
    *,
    now: datetime | None = None,
    fired: frozenset[str] = frozenset(),
    scheduler: Scheduler | None = None,
    alerts_to: EventSink | None = None,
) -> BudgetOutcome:
    """Review every running job's and tenant budget's spend at ``now`` and act on it.

    Alerts that come with a pause or cancellation are stored with that job's transition; the
    others are published to ``alerts_to`` (when given) and returned either way. With
    ``scheduler``, stopped jobs' quota is released there and resumed jobs are submitted to it.
    """
    now = ensure_utc(now or service.clock.now(), "now")
    holding = service.jobs(None, JobFilter(statuses=HOLDING))
    paused = [
        j
        for j in service.jobs(None, JobFilter(statuses=frozenset({JobStatus.PREEMPTED})))
        if PAUSED_LABEL in j.labels
    ]
    windows = [b.window(now)[0] for b in policy.budgets]
    since = min([*windows, *(j.created_at for j in holding + paused)], default=now)
    records = usage_log.usage(since, now)
    accrued = _accrued(records, prices)
    spends, _ = budget_spends(policy.budgets, records, prices, now)
    spending = [JobSpend(j, accrued.get(j.id, Decimal(0)), True) for j in holding]
    review = review_budgets(spending, spends, policy, now=now, fired=fired)
    events = {a.key: alert_event(a, now) for a in review.alerts}
    by_job = {s.job_id: s for s in review.stops}
    stopped: dict[BudgetAction, list[Job]] = {BudgetAction.PAUSE: [], BudgetAction.CANCEL: []}
    attached: set[str] = set()
    for job in holding:
        stop = by_job.get(job.id)
        if stop is None:
            continue
        mine = [e for e in events.values() if e.tenant == job.tenant and _concerns(e, job, stop)]
        attached.update(e.key for e in mine)
        stopped[stop.action].append(_stop(service, job, stop, mine, now, scheduler))
    loose = tuple(e for e in events.values() if e.key not in attached)
    if alerts_to is not None and loose:
        alerts_to.publish(loose)
    resumed = _resume(service, paused, accrued, spends, policy, now, scheduler)
    return BudgetOutcome(
        alerts=tuple(events.values()),
        paused=tuple(stopped[BudgetAction.PAUSE]),
        cancelled=tuple(stopped[BudgetAction.CANCEL]),
        resumed=tuple(resumed),
        fired=review.fired,
    )


def _accrued(records: Sequence[UsageRecord], prices: PriceBook) -> dict[str, Decimal]:
    exact: dict[str, Fraction] = {}
    for record in records:
        cost = record_cost(record, prices)
        if cost is not None:
            exact[record.job_id] = exact.get(record.job_id, Fraction(0)) + Fraction(cost)
    return {k: Decimal(v.numerator) / Decimal(v.denominator) for k, v in exact.items()}


def _concerns(event: BudgetAlerted, job: Job, stop: BudgetStop) -> bool:
    return event.job_id == job.id or (event.job_id is None and event.subject == stop.subject)


def _stop(
    service: JobService,
    job: Job,
    stop: BudgetStop,
    alerts: list[BudgetAlerted],
    now: datetime,
    scheduler: Scheduler | None,
) -> Job:
    if stop.action is BudgetAction.PAUSE:
        labels = {**job.labels, PAUSED_LABEL: stop.subject.replace(":", ".")}
        new_job, event = transition(job, JobStatus.PREEMPTED, now=now, reason=stop.reason, labels=labels)
    else:
        new_job, event = transition(job, JobStatus.CANCELLED, now=now, reason=stop.reason)
    events: list[DomainEvent] = [event, *alerts]
    stored = service.store.update(new_job, events=events)
    if scheduler is not None and job.id in scheduler.admitted:
        scheduler.release(job.id, now)
    return stored


def _resume(
    service: JobService,
    paused: list[Job],
    accrued: dict[str, Decimal],
    spends: dict[str, Decimal],
    policy: GuardPolicy,
    now: datetime,
    scheduler: Scheduler | None,
) -> list[Job]:
    ready = set(
        resumable([JobSpend(j, accrued.get(j.id, Decimal(0)), False) for j in paused], spends, policy)
    )
    resumed: list[Job] = []
    for job in paused:
        if job.id not in ready:
            continue
        labels = {k: v for k, v in job.labels.items() if k != PAUSED_LABEL}
        reason = "budget: resumed: the budget has room again"
        stored = service.move(job, JobStatus.QUEUED, reason=reason, now=now, labels=labels)
        if scheduler is not None:
            scheduler.submit(stored, now=now)
        resumed.append(stored)
    return resumed


__all__ = ["PAUSED_LABEL", "BudgetOutcome", "alert_event", "enforce_budgets"]
