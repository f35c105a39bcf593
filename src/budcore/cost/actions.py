"""Budget actions: what happens as running jobs spend towards a job's or a tenant's budget.

Why a separate decision from the submission guard (:mod:`budcore.cost.guard`): the guard prices a
job *before* it runs, from its estimate; a job that runs longer than estimated, or a tenant whose
jobs all overrun a little, still crosses its budget while running. Issue #16 asks for three
actions, per job (``Job.budget_limit`` with ``Job.budget_action``) and per tenant
(:class:`~budcore.cost.guard.Budget` with ``action``):

- ``warn``: an alert when spend reaches 80% and again at 100% of the limit; the job runs on;
- ``pause``: at 100%, the job is preempted (its last checkpoint is where it resumes) and held —
  :func:`resumable` says when it may be queued again: the limit was raised, or the tenant budget's
  period rolled over;
- ``cancel``: at 100%, the job is stopped for good (the seeds' "fail if cost exceeds").

"Reaching" is ``>=``: a job at exactly its limit would exceed it in its next second.

:func:`review_budgets` is pure: callers (the service's budget review, the simulator) pass each
job's cost so far and each budget's spend, and carry ``fired`` from one review to the next so an
alert is raised once per subject, period and level. A budget period is part of the subject, so
next month's 80% alerts fire again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from budcore.cost.guard import Budget, GuardPolicy
from budcore.cost.prices import money
from budcore.domain.job import BudgetAction, Job

#: The fractions of a limit at which ``warn`` raises an alert (every action alerts too).
ALERT_LEVELS: tuple[Decimal, ...] = (Decimal("0.8"), Decimal("1"))


@dataclass(frozen=True)
class JobSpend:
    """One job's cost so far, over all its runs (exact), and whether it is running now."""

    job: Job
    accrued: Decimal
    running: bool


@dataclass(frozen=True)
class BudgetAlert:
    """A limit reached ``level`` (0.8 or 1) of itself: what a warn event says."""

    tenant: str
    subject: str  # a Budget.key, or "job:<id>"
    level: Decimal
    spent: Decimal
    limit: Decimal
    job_id: str | None = None
    key: str = ""  # names the alert once: subject, period, level (what ``fired`` holds)

    def __str__(self) -> str:
        percent = f"{(self.level * 100).normalize():f}%"
        return (
            f"tenant {self.tenant!r} {self.subject}: spent {money(self.spent)} reached {percent} "
            f"of {money(self.limit)}"
        )


@dataclass(frozen=True)
class BudgetStop:
    """Pause or cancel one running job because a budget it counts against is used up."""

    job_id: str
    tenant: str
    action: BudgetAction  # PAUSE or CANCEL
    subject: str
    spent: Decimal
    limit: Decimal

    @property
    def reason(self) -> str:
        """One line for the job's transition reason (``budget: paused: ...``)."""
        verb = "paused" if self.action is BudgetAction.PAUSE else "cancelled"
        return f"budget: {verb}: {self.subject} spent {money(self.spent)} of {money(self.limit)}"


@dataclass(frozen=True)
class BudgetReview:
    alerts: tuple[BudgetAlert, ...]
    stops: tuple[BudgetStop, ...]
    fired: frozenset[str]  # alerts raised so far (carry into the next review)


def _alert_key(subject: str, period: str, level: Decimal) -> str:
    return f"{subject}@{period}@{level}"


def _period_of(budget: Budget, now: datetime) -> str:
    """The period's name in alert keys: a calendar period's start; a rolling budget alerts once per
    crossing, so its key is constant and :func:`review_budgets` forgets it when spend falls back."""
    return budget.window(now)[0].isoformat() if budget.calendar else "rolling"


def review_budgets(
    jobs: Sequence[JobSpend],
    spends: Mapping[str, Decimal],
    policy: GuardPolicy,
    *,
    now: datetime,
    fired: frozenset[str] = frozenset(),
) -> BudgetReview:
    """Alerts not raised yet, and the running jobs to pause or cancel, at ``now``.

    ``spends`` maps each :attr:`Budget.key <budcore.cost.guard.Budget.key>` to the tenant's spend
    in that budget's current window, running jobs' accrual included; a budget without a figure is
    skipped (nothing known, nothing decided). A job is stopped once, by the first limit that stops
    it (its own ``budget_limit`` before its tenant's budgets), and only while running.
    """
    alerts: list[BudgetAlert] = []
    stops: dict[str, BudgetStop] = {}
    seen = set(fired)
    for spend in jobs:
        job = spend.job
        if job.budget_limit is None:
            continue
        subject = f"job:{job.id}"
        action = job.budget_action or BudgetAction.WARN
        for level in _levels_reached(spend.accrued, job.budget_limit):
            key = _alert_key(subject, "run", level)
            if key not in seen:
                seen.add(key)
                alerts.append(
                    BudgetAlert(job.tenant, subject, level, spend.accrued, job.budget_limit, job.id, key)
                )
        if spend.running and action is not BudgetAction.WARN and spend.accrued >= job.budget_limit:
            stops[job.id] = BudgetStop(job.id, job.tenant, action, subject, spend.accrued, job.budget_limit)
    for budget in policy.budgets:
        spent = spends.get(budget.key)
        if spent is None:
            continue
        period = _period_of(budget, now)
        levels = _levels_reached(spent, budget.amount)
        if not budget.calendar:
            _forget_rolling(seen, budget, levels)
        for level in levels:
            key = _alert_key(budget.key, period, level)
            if key not in seen:
                seen.add(key)
                alerts.append(BudgetAlert(budget.tenant, budget.key, level, spent, budget.amount, key=key))
        if budget.action is BudgetAction.WARN or spent < budget.amount:
            continue
        for spend in jobs:
            if spend.running and spend.job.tenant == budget.tenant and spend.job.id not in stops:
                stops[spend.job.id] = BudgetStop(
                    spend.job.id, budget.tenant, budget.action, budget.key, spent, budget.amount
                )
    return BudgetReview(tuple(alerts), tuple(stops[k] for k in sorted(stops)), frozenset(seen))


def _levels_reached(spent: Decimal, limit: Decimal) -> list[Decimal]:
    """The alert levels ``spent`` has reached (a zero limit is reached from the start)."""
    return [level for level in ALERT_LEVELS if spent >= level * limit]


def _forget_rolling(seen: set[str], budget: Budget, reached: list[Decimal]) -> None:
    """A rolling window has no period start: an alert whose level spend fell back under may fire
    again on the next crossing."""
    for level in ALERT_LEVELS:
        if level not in reached:
            seen.discard(_alert_key(budget.key, "rolling", level))


def resumable(
    paused: Sequence[JobSpend],
    spends: Mapping[str, Decimal],
    policy: GuardPolicy,
) -> list[str]:
    """Ids of paused jobs every budget of which has room again, in id order.

    Room: the job's accrued cost is below its (maybe raised) ``budget_limit``, and every tenant
    budget with a pausing or cancelling action is below its amount in the window containing
    ``spends`` (the caller's, for the windows containing now: the period rolled, or the budget was
    raised). A budget without a spend figure keeps
    the job held: resuming on an unknown figure could spend past the limit again.
    """
    out: list[str] = []
    for spend in paused:
        job = spend.job
        if job.budget_limit is not None and spend.accrued >= job.budget_limit:
            continue
        blocking = [
            b
            for b in policy.budgets_of(job.tenant)
            if b.action is not BudgetAction.WARN and (spends.get(b.key) is None or spends[b.key] >= b.amount)
        ]
        if not blocking:
            out.append(job.id)
    return sorted(out)


__all__ = [
    "ALERT_LEVELS",
    "BudgetAlert",
    "BudgetReview",
    "BudgetStop",
    "JobSpend",
    "resumable",
    "review_budgets",
]
