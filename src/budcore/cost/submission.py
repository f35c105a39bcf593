"""The submission guard at a service's door: :func:`~budcore.cost.guard.check` on the spend a
:class:`~budcore.ports.spend.SpendLedger` reads under its lock, in the write that stores the job.

Why apart from :mod:`budcore.cost.guard`: that module is the pure decision over figures; this one
gathers the figures — quota from a scheduler, spend and *committed* spend from the ledger's tenant
book — and brackets the decision with the ledger's lock, which is what makes it hold when several
replicas race submissions against one budget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from budcore.cost.guard import (
    Breach,
    Budget,
    GuardPolicy,
    GuardSnapshot,
    GuardVerdict,
    QueueFigures,
    budget_spends,
    check,
    enforce,
    job_cost,
    queue_figures,
)
from budcore.cost.metering import record_cost
from budcore.cost.prices import PriceBook
from budcore.domain.events import BudgetAlerted, DomainEvent
from budcore.domain.job import Job

if TYPE_CHECKING:
    from budcore.ports.spend import SpendLedger, TenantBook
    from budcore.scheduling.scheduler import Scheduler


def book_spends(
    budgets: Iterable[Budget], book: TenantBook, prices: PriceBook, now: datetime
) -> tuple[dict[str, Decimal], dict[str, Decimal], frozenset[str]]:
    """Spend, committed spend and incomplete budgets of ``book``'s tenant, for :class:`GuardSnapshot`.

    Committed: for each live job, its projected cost (:func:`job_cost`) less what it has metered in
    the book, at least 0; counted against *every* budget of the tenant (the job may spend in this
    period: assuming it will is the side that never admits past a budget). A live job that cannot
    be priced makes the tenant's budgets incomplete.
    """
    mine = [b for b in budgets if b.tenant == book.tenant]
    spends, incomplete = budget_spends(mine, book.usage, prices, now)
    metered: dict[str, Fraction] = {}
    for record in book.usage:
        record_price = record_cost(record, prices)
        if record_price is not None:
            metered[record.job_id] = metered.get(record.job_id, Fraction(0)) + Fraction(record_price)
    promised = Fraction(0)
    unpriced = False
    for job in book.live:
        cost = job_cost(job, prices)
        if isinstance(cost, str):
            unpriced = True
            continue
        promised += max(Fraction(0), Fraction(cost) - metered.get(job.id, Fraction(0)))
    committed = {b.key: Decimal(promised.numerator) / Decimal(promised.denominator) for b in mine}
    if unpriced:
        incomplete = incomplete | {b.key for b in mine}
    return spends, committed, incomplete


#: Where a job would be charged and that queue's figures; ``None``: no quota to check (the job
#: names no LocalQueue the source knows; admission reports that, not the guard).
QuotaSource = Callable[[Job], "tuple[str, QueueFigures] | None"]

NO_QUEUE = "(no ClusterQueue)"


def scheduler_quota(scheduler: Scheduler) -> QuotaSource:
    """A :data:`QuotaSource` reading ``scheduler``'s configuration and usage at each call."""

    def figures(job: Job) -> tuple[str, QueueFigures] | None:
        local_queue = scheduler.config.local_queues.get((job.tenant, job.local_queue or ""))
        if local_queue is None or local_queue.cluster_queue not in scheduler.config.cluster_queues:
            return None
        return local_queue.cluster_queue, queue_figures(scheduler, local_queue.cluster_queue)

    return figures


class SubmissionGuard:
    """:func:`check` at submission, deciding on the spend a :class:`SpendLedger` reads under its lock.

    Why spend is read under the ledger's lock on every submission rather than cached: two service
    replicas racing submissions against one budget must each see what the other stored (its job's
    committed cost), or both admit the job that takes the tenant past its budget. Quota figures
    come from ``quota`` (e.g. :func:`scheduler_quota`); they are advisory here — admission itself
    never over-commits quota — so they need no lock. Warn mode stores the job with one
    :class:`~budcore.domain.events.BudgetAlerted` event per breach, in the same write.
    """

    def __init__(
        self,
        policy: GuardPolicy,
        prices: PriceBook,
        ledger: SpendLedger,
        *,
        quota: QuotaSource | None = None,
    ) -> None:
        self.policy, self.prices, self.ledger, self.quota = policy, prices, ledger, quota

    def create(
        self, job: Job, *, events: Sequence[DomainEvent], now: datetime
    ) -> tuple[Job, GuardVerdict | None]:
        """Store ``job`` through the ledger if the guard allows it; the verdict (``None`` for a
        replayed submission, which is not decided again). A refusal raises
        :class:`GuardQuotaRejectedError` or :class:`GuardBudgetRejectedError`; nothing is stored."""
        located = self.quota(job) if self.quota is not None else None
        cluster_queue, figures = located or (NO_QUEUE, QueueFigures({}, {}))
        budgets = self.policy.budgets_of(job.tenant)
        since = min((b.window(now)[0] for b in budgets), default=now)
        verdicts: list[GuardVerdict] = []

        def decide(book: TenantBook) -> list[DomainEvent]:
            spends, committed, incomplete = book_spends(budgets, book, self.prices, now)
            snapshot = GuardSnapshot(now, {cluster_queue: figures}, spends, incomplete, committed)
            verdict = check(job, cluster_queue, snapshot, self.policy, prices=self.prices, now=now)
            verdicts.append(verdict)
            return [warning_event(job, breach, now) for breach in enforce(verdict)]

        stored = self.ledger.guarded_create(job, events=events, since=since, until=now, decide=decide)
        return stored, (verdicts[-1] if verdicts else None)


def warning_event(job: Job, breach: Breach, now: datetime) -> BudgetAlerted:
    """The event a warn-mode breach records with the job."""
    return BudgetAlerted(
        tenant=job.tenant,
        key=f"guard:{job.id}:{breach.kind}:{breach.subject}",
        subject=breach.subject,
        message=f"submission of job {job.id!r} warned: {breach}",
        at=now,
        job_id=job.id,
    )


__all__ = [
    "NO_QUEUE",
    "QuotaSource",
    "SubmissionGuard",
    "book_spends",
    "scheduler_quota",
    "warning_event",
]
