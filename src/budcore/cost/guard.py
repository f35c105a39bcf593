"""The submission guard: refuse a job that would take its tenant to the edge of its quota or budget.

Why: the batch platform design's first acceptance criterion is that a submission is refused when it
would take a tenant past 90% of its quota or past its budget (issue #16, "Gates"). The seeds say
"90%" without saying whether *reaching* 90% is already too far, so the comparator is a setting:
``">="`` (the default: reaching the threshold refuses) or ``">"`` (only going beyond it refuses).

The guard is a pure decision, :func:`check`, over a :class:`GuardSnapshot` (quota, usage and spend
figures taken at one instant), plus :class:`CachedGuard`, which keeps a snapshot for a few seconds
without ever admitting on a stale figure near the edge. Nothing here stores anything or reads a
clock except the cache; the service, the scheduler and the simulator call it before queueing.

Rules, all exact (integers in milli-units for resources, ``Fraction``/``Decimal`` for money):

- Quota: for every resource the job requests that its ClusterQueue has quota for,
  ``used + requested`` compared (``>=`` or ``>``) with ``threshold × nominal`` refuses.
- Tenant budget: ``spend in the period + projected cost > budget`` refuses (going *past* the
  budget; reaching it exactly is allowed — the threshold applies to quota only, as the issue says).
- Job budget: ``projected cost > job.budget_limit`` refuses.
- The projected cost is :func:`~budcore.cost.metering.estimate_cost` of the job's whole accelerators
  (``request.accelerator_count`` of ``request.accelerator_type``, or of the dearest type of an
  accelerator set, exclusive, default tier) for its
  ``estimated_duration``, else its ``max_duration`` (an upper bound), in billable whole seconds.
  A job that has no duration, or no accelerator type, or an accelerator the price book cannot
  price, is *not* counted as free when a budget applies: that is a breach too ("no runtime
  estimate to price"), because admitting it would be admitting on an optimistic figure of 0. A job
  without accelerators costs 0 (the price book prices accelerators only).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from budcore.cost.metering import UsageRecord, billable_seconds, estimate_cost, tenant_spend
from budcore.cost.prices import PriceBook, money
from budcore.domain.errors import BudgetRejectedError, QuotaRejectedError, ValidationError
from budcore.domain.job import BudgetAction, Job
from budcore.domain.quantity import human_amount

if TYPE_CHECKING:
    from budcore.scheduling.scheduler import Scheduler

Comparator = Literal[">=", ">"]
Mode = Literal["reject", "warn"]
Period = Literal["day", "week", "month"]
BreachKind = Literal["quota", "budget", "job-budget", "unpriced"]

ROLLING_LENGTH: dict[str, timedelta] = {"day": timedelta(days=1), "week": timedelta(weeks=1)}
ROLLING_LENGTH["month"] = timedelta(days=30)  # a rolling month is the last 30 days


# Policy ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """A tenant's budget for a period: calendar (the current UTC day, ISO week from Monday, month;
    or in ``timezone``) or rolling (the last 24 h, 7 days, 30 days up to now)."""

    tenant: str
    amount: Decimal
    period: Period
    calendar: bool = True
    timezone: str = "UTC"
    # What reaching the budget does to the tenant's running jobs (budcore.cost.actions): warn
    # (events at 80% and 100%), pause (preempt and hold them until the budget has room) or cancel.
    action: BudgetAction = BudgetAction.WARN

    def __post_init__(self) -> None:
        if not self.amount.is_finite() or self.amount < 0:
            raise ValidationError(f"must be a finite amount >= 0, got {self.amount}", path="amount")
        if self.period not in ROLLING_LENGTH:
            raise ValidationError(f"must be day, week or month, got {self.period!r}", path="period")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(f"unknown time zone {self.timezone!r}", path="timezone") from None

    @property
    def key(self) -> str:
        """Names the budget in snapshots and messages: ``team-a:month:calendar``."""
        kind = "calendar" if self.calendar else "rolling"
        zone = "" if self.timezone == "UTC" or not self.calendar else f":{self.timezone}"
        return f"{self.tenant}:{self.period}:{kind}{zone}"

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """The period containing ``now`` (aware), as ``[start, end)`` in UTC."""
        if now.tzinfo is None:
            raise ValidationError("must be timezone-aware", path="now")
        utc = ZoneInfo("UTC")
        if not self.calendar:
            return now.astimezone(utc) - ROLLING_LENGTH[self.period], now.astimezone(utc)
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        day = datetime(local.year, local.month, local.day, tzinfo=zone)
        if self.period == "day":
            start, end = day, datetime.combine(day.date() + timedelta(days=1), day.timetz())
        elif self.period == "week":
            monday = day.date() - timedelta(days=day.weekday())
            start = datetime.combine(monday, day.timetz())
            end = datetime.combine(monday + timedelta(weeks=1), day.timetz())
        else:
            start = datetime(local.year, local.month, 1, tzinfo=zone)
            end = datetime(local.year + local.month // 12, local.month % 12 + 1, 1, tzinfo=zone)
        return start.astimezone(utc), end.astimezone(utc)


@dataclass(frozen=True)
class PolicyOverride:
    """Part of a :class:`GuardPolicy` for one tenant or ClusterQueue; ``None`` keeps the default."""

    quota_threshold: Decimal | None = None
    comparator: Comparator | None = None
    mode: Mode | None = None


@dataclass(frozen=True)
class Rules:
    """The rules that apply to one (tenant, ClusterQueue) after overrides."""

    quota_threshold: Decimal
    comparator: Comparator
    mode: Mode


@dataclass(frozen=True)
class GuardPolicy:
    """Threshold, comparator and mode, with overrides keyed ``tenant:<name>`` or ``cq:<name>``.

    A ClusterQueue override wins over a tenant one, field by field: the quota the threshold is a
    fraction of belongs to the ClusterQueue (tenants may share one), so whoever runs that queue
    decides how close to its edge it may go; a tenant override is that tenant's default elsewhere.
    """

    quota_threshold: Decimal = Decimal("0.90")
    comparator: Comparator = ">="
    mode: Mode = "reject"
    overrides: Mapping[str, PolicyOverride] = field(default_factory=dict)
    budgets: tuple[Budget, ...] = ()

    def __post_init__(self) -> None:
        thresholds = [self.quota_threshold] + [o.quota_threshold for o in self.overrides.values()]
        for value in thresholds:
            if value is not None and not (value.is_finite() and 0 < value <= 1):
                raise ValidationError(f"must be in (0, 1], got {value}", path="quota_threshold")
        for key in self.overrides:
            if not key.startswith(("tenant:", "cq:")):
                raise ValidationError(f"override key {key!r} must be tenant:<name> or cq:<name>")

    def rules(self, tenant: str, cluster_queue: str) -> Rules:
        rules = Rules(self.quota_threshold, self.comparator, self.mode)
        for key in (f"tenant:{tenant}", f"cq:{cluster_queue}"):  # later wins
            override = self.overrides.get(key)
            if override is not None:
                changes = {k: v for k, v in vars(override).items() if v is not None}
                rules = replace(rules, **changes)
        return rules

    def budgets_of(self, tenant: str) -> tuple[Budget, ...]:
        return tuple(b for b in self.budgets if b.tenant == tenant)


# Snapshot -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFigures:
    """A ClusterQueue's nominal quota and usage per resource, in milli-units, summed over flavors.

    Summed because a job is guarded at submission, before any flavor is assigned: what it may use
    of a resource is every flavor of its ClusterQueue that covers that resource. (Usage includes
    capacity borrowed from the cohort, so a queue running on borrowed quota is at or past its edge.)
    """

    nominal: Mapping[str, int]
    used: Mapping[str, int]


@dataclass(frozen=True)
class GuardSnapshot:
    """What the guard decides from, taken at ``taken_at``.

    ``spend`` is keyed by :attr:`Budget.key` (spend in that budget's period); ``incomplete`` names
    budgets whose spend is a lower bound (usage the price book cannot price, or a live job that
    cannot be priced); ``committed`` (same keys) is what live jobs are still projected to spend.
    """

    taken_at: datetime
    queues: Mapping[str, QueueFigures]
    spend: Mapping[str, Decimal] = field(default_factory=dict)
    incomplete: frozenset[str] = frozenset()
    # Projected cost, beyond what they metered, of the tenant's jobs still queued or running:
    # spend that is already promised, so racing submissions cannot each take the same room.
    committed: Mapping[str, Decimal] = field(default_factory=dict)


def queue_figures(scheduler: Scheduler, cluster_queue: str) -> QueueFigures:
    """One ClusterQueue's nominal quota and current usage per resource (read only)."""
    nominal: dict[str, int] = {}
    for group in scheduler.config.cluster_queues[cluster_queue].resource_groups:
        for flavor in group.flavors:
            for quota in flavor.resources:
                nominal[quota.name] = nominal.get(quota.name, 0) + quota.nominal_quota
    used: dict[str, int] = {}
    for (_flavor, resource), amount in scheduler.usage_of(cluster_queue).items():
        used[resource] = used.get(resource, 0) + amount
    return QueueFigures(nominal, used)


def snapshot_from(
    scheduler: Scheduler,
    spends: Mapping[str, Decimal],
    now: datetime,
    *,
    incomplete: Iterable[str] = (),
) -> GuardSnapshot:
    """Quota and usage of every ClusterQueue of ``scheduler`` (read only), with ``spends``."""
    queues = {name: queue_figures(scheduler, name) for name in scheduler.config.cluster_queues}
    return GuardSnapshot(now, queues, dict(spends), frozenset(incomplete))


def budget_spends(
    budgets: Iterable[Budget], records: Iterable[UsageRecord], prices: PriceBook, now: datetime
) -> tuple[dict[str, Decimal], frozenset[str]]:
    """Spend to ``now`` in each budget's current period (``tenant_spend``), and the incomplete ones."""
    rows = list(records)
    spends: dict[str, Decimal] = {}
    incomplete: set[str] = set()
    for budget in budgets:
        start, end = budget.window(now)
        spend = tenant_spend(
            rows, prices, tenant=budget.tenant, period_start=start, period_end=end, as_of=now
        )
        spends[budget.key] = spend.spent
        if not spend.fully_priced:
            incomplete.add(budget.key)
    return spends, frozenset(incomplete)


# Decision -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Breach:
    """One limit the job would reach or pass; numbers exact (milli-units for quota, money else)."""

    kind: BreachKind
    tenant: str
    subject: str  # the resource, the budget key, "budget_limit" or what could not be priced
    current: Decimal  # used / spent so far
    requested: Decimal  # the job's request / projected cost
    limit: Decimal  # the nominal quota (milli-units), or the budget
    threshold: Decimal | None = None  # quota only
    comparator: str = ">"
    note: str = ""

    def __str__(self) -> str:
        who = f"tenant {self.tenant!r}"
        if self.kind == "unpriced":
            return f"{who}: {self.subject}: {self.note}"
        if self.kind == "quota":
            return f"{who} {self._quota_text()}"
        c, r, lim = (money(x) for x in (self.current, self.requested, self.limit))
        label = "budget_limit" if self.kind == "job-budget" else f"budget {self.subject}"
        so_far = "spent" if self.kind == "job-budget" else "spent and committed"
        total = money(self.current + self.requested)
        return f"{who} {label}: {so_far} {c} + projected {r} = {total} > {lim}"

    def _quota_text(self) -> str:
        c, r, nominal = (human_amount(int(x)) for x in (self.current, self.requested, self.limit))
        total = human_amount(int(self.current + self.requested))
        threshold = self.threshold or Decimal(1)
        edge = (threshold * self.limit / 1000).normalize()
        return (
            f"{self.subject}: {c} used + {r} requested = {total} {self.comparator} "
            f"{(threshold * 100).normalize():f}% of quota {nominal} ({edge:f})"
        )


@dataclass(frozen=True)
class GuardVerdict:
    job_id: str
    tenant: str
    cluster_queue: str
    mode: Mode
    breaches: tuple[Breach, ...]
    projected_cost: Decimal | None  # None: not needed (no budget applies) or not priceable
    margins: tuple[Fraction, ...] = ()  # (limit − after) / limit of every check that passed

    @property
    def decision(self) -> Literal["admit", "refuse", "warn"]:
        if not self.breaches:
            return "admit"
        return "refuse" if self.mode == "reject" else "warn"

    @property
    def admitted(self) -> bool:
        return self.decision != "refuse"

    def __str__(self) -> str:
        reasons = "; ".join(str(b) for b in self.breaches) or "within quota and budget"
        return f"job {self.job_id!r} in ClusterQueue {self.cluster_queue!r}: {self.decision}: {reasons}"


class GuardQuotaRejectedError(QuotaRejectedError):
    """Refused by the submission guard's quota threshold (carries the verdict)."""

    def __init__(self, verdict: GuardVerdict) -> None:
        self.verdict = verdict
        super().__init__(str(verdict))


class GuardBudgetRejectedError(BudgetRejectedError):
    """Refused by the submission guard's tenant or job budget (carries the verdict)."""

    def __init__(self, verdict: GuardVerdict) -> None:
        self.verdict = verdict
        super().__init__(str(verdict))


def enforce(verdict: GuardVerdict) -> tuple[Breach, ...]:
    """Raise the typed error for a refusal (quota first when both); else return the warnings."""
    if verdict.decision != "refuse":
        return verdict.breaches
    if any(b.kind == "quota" for b in verdict.breaches):
        raise GuardQuotaRejectedError(verdict)
    raise GuardBudgetRejectedError(verdict)


def job_cost(job: Job, prices: PriceBook) -> Decimal | str:
    """The job's projected cost, or why it cannot be priced (see the module docstring)."""
    devices = job.request.accelerator_count
    if devices == 0:
        return Decimal(0)
    duration = job.estimated_duration if job.estimated_duration is not None else job.max_duration
    if duration is None:
        return "no runtime estimate to price (set estimated_duration or max_duration)"
    accepted = job.request.accelerators
    if not accepted:
        return "no accelerator_type to price"
    # A set is priced at its dearest member: the guard bounds spend, and the flavor the job will
    # get is not known before it is admitted. Any unpriced member makes the bound unknown.
    costs: list[Decimal] = []
    for accelerator in accepted:
        cost = estimate_cost(prices, accelerator, devices=devices, seconds=billable_seconds(duration))
        if cost is None:
            return f"the price book has no price for {accelerator}"
        costs.append(cost)
    return max(costs)


def _passes(after: Fraction, limit: Fraction, comparator: str) -> bool:
    return after < limit if comparator == ">=" else after <= limit


def _quota_checks(job: Job, figures: QueueFigures, rules: Rules) -> tuple[list[Breach], list[Fraction]]:
    breaches: list[Breach] = []
    margins: list[Fraction] = []
    threshold = Fraction(rules.quota_threshold)
    for resource, requested in sorted(job.request.total.items()):
        if resource not in figures.nominal:
            continue  # uncovered: the scheduler reports it (Kueue never admits it), not a threshold
        used = figures.used.get(resource, 0)
        limit = threshold * figures.nominal[resource]
        after = Fraction(used + requested)
        if _passes(after, limit, rules.comparator):
            margins.append((limit - after) / limit)
            continue
        breaches.append(
            Breach(
                "quota",
                job.tenant,
                resource,
                Decimal(used),
                Decimal(requested),
                Decimal(figures.nominal[resource]),
                rules.quota_threshold,
                rules.comparator,
            )
        )
    return breaches, margins


def _budget_checks(
    job: Job, snapshot: GuardSnapshot, budgets: tuple[Budget, ...], cost: Decimal | str
) -> tuple[list[Breach], list[Fraction]]:
    limits = [(b.key, b.amount, _spent_and_committed(snapshot, b.key)) for b in budgets]
    if job.budget_limit is not None:
        limits.append(("budget_limit", job.budget_limit, Decimal(0)))
    if not limits:
        return [], []
    if isinstance(cost, str):
        return [
            Breach("unpriced", job.tenant, f"job {job.id!r}", Decimal(0), Decimal(0), Decimal(0), note=cost)
        ], []
    breaches: list[Breach] = []
    margins: list[Fraction] = []
    for key, amount, spent in limits:
        kind: BreachKind = "job-budget" if key == "budget_limit" else "budget"
        if spent is None or key in snapshot.incomplete:
            why = "no spend figure" if spent is None else "spend includes usage with no price"
            breaches.append(
                Breach("unpriced", job.tenant, f"budget {key}", Decimal(0), cost, amount, note=why)
            )
            continue
        after, limit = Fraction(spent) + Fraction(cost), Fraction(amount)
        if after <= limit:
            margins.append((limit - after) / limit if limit else Fraction(0))
            continue
        breaches.append(Breach(kind, job.tenant, key, spent, cost, amount))
    return breaches, margins


def _spent_and_committed(snapshot: GuardSnapshot, key: str) -> Decimal | None:
    spent = snapshot.spend.get(key)
    return None if spent is None else spent + snapshot.committed.get(key, Decimal(0))


def check(
    job: Job,
    cluster_queue: str,
    snapshot: GuardSnapshot,
    policy: GuardPolicy,
    *,
    prices: PriceBook,
    now: datetime,
) -> GuardVerdict:
    """Whether ``job`` may be queued in ``cluster_queue``: every breach, and admit/refuse/warn.

    ``now`` is the decision instant (budgets' periods are the snapshot's; ``now`` is checked to be
    aware so callers cannot mix naive times in). Pure: reads only its arguments.
    """
    if now.tzinfo is None:
        raise ValidationError("must be timezone-aware", path="now")
    figures = snapshot.queues.get(cluster_queue)
    if figures is None:
        raise ValidationError(f"no figures for ClusterQueue {cluster_queue!r}", path="cluster_queue")
    rules = policy.rules(job.tenant, cluster_queue)
    budgets = policy.budgets_of(job.tenant)
    needs_price = bool(budgets) or job.budget_limit is not None
    cost = job_cost(job, prices) if needs_price else Decimal(0)
    quota, quota_margins = _quota_checks(job, figures, rules)
    money_breaches, money_margins = _budget_checks(job, snapshot, budgets, cost)
    return GuardVerdict(
        job.id,
        job.tenant,
        cluster_queue,
        rules.mode,
        tuple(quota + money_breaches),
        cost if needs_price and isinstance(cost, Decimal) else None,
        tuple(quota_margins + money_margins),
    )


# Cache ----------------------------------------------------------------------------------------


class CachedGuard:
    """:func:`check` on a snapshot kept for ``ttl_s`` seconds, never admitting on a stale edge.

    Interpretation of "when the cached figures drift more than 10% from the store, re-read before
    deciding": the store cannot be compared without reading it, so the cache assumes its figures
    may be off by up to ``drift`` (relative to the limit) within the TTL. Hence:

    - a stale snapshot (older than ``ttl_s``) or none: load, then decide;
    - a refusal may come from the cache (refusing on an old figure is safe, and bounded by the TTL);
    - an admission (or a warn-mode pass) whose tightest passing check is within ``drift`` of its
      limit — ``(limit − (current + request)) / limit <= drift`` — re-reads and decides again on the
      fresh snapshot; an admission with more room than that is taken from the cache;
    - :meth:`invalidate` after a successful submission (usage moved): the next decision loads.
    """

    def __init__(
        self,
        load: Callable[[], GuardSnapshot],
        *,
        ttl_s: float = 5.0,
        drift: Decimal = Decimal("0.10"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s < 0 or not (drift.is_finite() and 0 <= drift < 1):
            raise ValidationError("ttl_s must be >= 0 and drift in [0, 1)")
        self._load, self.ttl_s, self.drift, self._clock = load, ttl_s, Fraction(drift), clock
        self._snapshot: GuardSnapshot | None = None
        self._loaded_at = 0.0
        self.loads = 0

    def snapshot(self, *, fresh: bool = False) -> GuardSnapshot:
        """The cached snapshot, loading it when missing, stale or ``fresh`` is asked."""
        now = self._clock()
        if fresh or self._snapshot is None or now - self._loaded_at >= self.ttl_s:
            self._snapshot, self._loaded_at = self._load(), now
            self.loads += 1
        return self._snapshot

    def invalidate(self) -> None:
        self._snapshot = None

    def check(
        self, job: Job, cluster_queue: str, policy: GuardPolicy, *, prices: PriceBook, now: datetime
    ) -> GuardVerdict:
        loads = self.loads
        verdict = check(job, cluster_queue, self.snapshot(), policy, prices=prices, now=now)
        near_edge = any(m <= self.drift for m in verdict.margins)
        if verdict.admitted and near_edge and self.loads == loads:
            verdict = check(job, cluster_queue, self.snapshot(fresh=True), policy, prices=prices, now=now)
        return verdict


__all__ = [
    "Breach",
    "Budget",
    "CachedGuard",
    "GuardBudgetRejectedError",
    "GuardPolicy",
    "GuardQuotaRejectedError",
    "GuardSnapshot",
    "GuardVerdict",
    "PolicyOverride",
    "QueueFigures",
    "Rules",
    "budget_spends",
    "check",
    "enforce",
    "job_cost",
    "queue_figures",
    "snapshot_from",
]
