"""Money in a simulation (issue #16): the submission guard, budget actions, metering, chargeback.

A scenario's ``money`` block (:class:`MoneySpec`) turns on, on top of the real scheduling core:

- the **submission guard** (:func:`budcore.cost.guard.check`) before every job enters its queue:
  a refused job (``reject`` mode) ends ``refused`` and is never queued; a warned one (``warn``
  mode) is queued and the warning recorded;
- **budget actions** (:func:`budcore.cost.actions.review_budgets`) every ``review_every`` while
  jobs run: alerts at 80% and 100% of a budget or a job's ``budget_limit``; ``pause`` stops a job
  as a preemption does (work since its last checkpoint is lost) and holds it, out of its queue,
  until :func:`budcore.cost.actions.resumable` says its budgets have room (checked at each review:
  the budget's period rolled over); ``cancel`` ends it ``cancelled``;
- **metering**: every run of a job is :class:`~budcore.cost.metering.UsageRecord` s, with the
  ClusterQueue that admitted it and, for quota borrowed from the cohort, the lenders
  (:func:`budcore.cost.chargeback.lenders_at`, the chargeback rule). ``usage_records.csv`` holds
  them and a job's ``cost`` is what its records are charged, so ``jobs.csv`` and the usage file add
  up to the same figures.

Why a review tick and not each budget's crossing instant: a fixed tick is what a service's
budget review does (:mod:`budcore.cost.enforcement`), so the simulation shows its overshoot: a
budget is acted on at the first review at or after spend reaches it, at most ``review_every`` of
spend late. Review instants are the multiples of ``review_every`` from the start of the run; they
happen only while a job runs or a paused job waits for its budget's period to roll over.

**Prices.** The simulation's price book (:func:`flavor_price_book`) prices each ResourceFlavor by
*name* at what the simulation bills it per GPU-hour (:meth:`LoadedScenario.prices
<budcore_simulator.scenario.LoadedScenario.prices>`: ``fleet.prices``, the pool's
``price_per_gpu_hour``, the nodes file's prices and price book), whichever of these the price comes
from: a flavor priced only by a ``fleet.prices`` override is a row like any other. Records name
the flavor as their ``accelerator``. The other tiers of the book (what ``tiers`` may name) are
derived with the scenario price book's tier multipliers (``fleet.price_book``; the packaged book
by default: spot 0.40, reserved 0.60, on-prem 0.43 of on-demand), relative to ``fleet.price_tier``.

**Tiers and chargeback.** ``tiers`` maps a ClusterQueue (or ``cohort:<name>``) account to its
price tier (:class:`budcore.cost.chargeback.ChargebackPolicy`). A run's nominal part is charged
at its ClusterQueue's tier; a part on borrowed quota at its lender's tier (the lender's rate).
Each record carries the tier it is charged at, so plain metering
(:func:`budcore.cost.metering.meter`, budget spends) and the chargeback agree on every record.

**The guard's projected cost.** A job is guarded before any flavor is assigned, so it is priced
at the dearest priced flavor of its ClusterQueue that could run it (an upper bound), in its
ClusterQueue's tier (what its nominal usage is charged; usage it later borrows is charged at the
lender's rate, which may be dearer). A tenant's spend in a budget's window is what its runs metered
so far (running ones up to now) plus the committed cost of its live jobs (queued, admitted,
running, paused): their projected cost less what they metered, at least 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from budcore.cost.actions import BudgetAlert, BudgetStop, JobSpend, resumable, review_budgets
from budcore.cost.chargeback import ChargebackPolicy, lenders_at, record_charge, split_borrowed
from budcore.cost.guard import (
    Budget,
    GuardPolicy,
    GuardSnapshot,
    GuardVerdict,
    PolicyOverride,
    budget_spends,
    check,
    job_cost,
    queue_figures,
)
from budcore.cost.metering import UsageRecord
from budcore.cost.prices import PriceBook, PriceBookDocument, PriceRow
from budcore.domain.errors import ValidationError
from budcore.domain.ids import check_name
from budcore.domain.job import BudgetAction, Job
from budcore.domain.resources import is_accelerator

from .workload.units import Duration

if TYPE_CHECKING:
    from budcore.scheduling import QueueConfig, Scheduler
    from budcore.scheduling.assignment import AcceleratorMatcher
    from budcore.scheduling.snapshot import Admit

_FROZEN = ConfigDict(frozen=True, extra="forbid")
#: How often running jobs' spend is reviewed when the scenario does not say (5 minutes).
DEFAULT_REVIEW_S = 300.0
#: How many refusals, warnings, alerts, stops and resumptions the report lists (counts are exact).
LISTED = 100
#: The price book's version string (it is the simulation's own, derived from the scenario).
BOOK_VERSION = "simulation"
PERIODS: tuple[Literal["day", "week", "month"], ...] = ("day", "week", "month")


# The scenario's `money` block ------------------------------------------------------------------


class GuardOverrideSpec(BaseModel):
    """Part of the guard's rules for one tenant (``tenant:<name>``) or ClusterQueue (``cq:<name>``)."""

    model_config = _FROZEN

    quota_threshold: Decimal | None = Field(default=None, allow_inf_nan=False)
    comparator: Literal[">=", ">"] | None = None
    mode: Literal["reject", "warn"] | None = None


class GuardSpec(BaseModel):
    """The submission guard (:class:`budcore.cost.guard.GuardPolicy`): a job whose queue would reach
    ``quota_threshold`` of its nominal quota (``>=``, or beyond it with ``>``), or whose projected
    cost would take its tenant past a budget or itself past its ``budget_limit``, is refused
    (``reject``) or queued with a warning (``warn``). ``overrides`` are keyed ``tenant:<name>`` or
    ``cq:<name>`` (a ClusterQueue's wins, field by field)."""

    model_config = _FROZEN

    mode: Literal["reject", "warn"] = "reject"
    quota_threshold: Decimal = Field(default=Decimal("0.90"), allow_inf_nan=False)
    comparator: Literal[">=", ">"] = ">="
    overrides: dict[str, GuardOverrideSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _valid(self) -> GuardSpec:
        for key in self.overrides:
            if not key.startswith(("tenant:", "cq:")) or not key.partition(":")[2]:
                raise ValidationError(
                    f"must be tenant:<name> or cq:<name>, got {key!r}", path=f"overrides.{key}"
                )
        for key, override in self.overrides.items():
            value = override.quota_threshold
            if value is not None and not 0 < value <= 1:
                raise ValidationError(
                    f"must be in (0, 1], got {value}", path=f"overrides.{key}.quota_threshold"
                )
        if not 0 < self.quota_threshold <= 1:
            raise ValidationError(f"must be in (0, 1], got {self.quota_threshold}", path="quota_threshold")
        return self


class BudgetSpec(BaseModel):
    """A tenant's budget (:class:`budcore.cost.guard.Budget`): ``amount`` per ``period`` (``day``,
    ``week`` from Monday, ``month``), a calendar period in ``timezone`` or the rolling last 24 h,
    7 or 30 days (``calendar: false``); ``action`` is what reaching it does to the tenant's running
    jobs: ``warn`` (alerts only), ``pause`` or ``cancel``."""

    model_config = _FROZEN

    tenant: str
    amount: Decimal = Field(allow_inf_nan=False)
    period: Literal["day", "week", "month"]
    calendar: bool = True
    timezone: str = "UTC"
    action: BudgetAction = BudgetAction.WARN

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, value: str) -> str:
        return check_name(value, "tenant")

    @model_validator(mode="after")
    def _valid(self) -> BudgetSpec:
        self.budget()  # the core's own checks (amount, time zone), naming the field
        return self

    def budget(self) -> Budget:
        return Budget(
            tenant=self.tenant,
            amount=self.amount,
            period=self.period,
            calendar=self.calendar,
            timezone=self.timezone,
            action=self.action,
        )


def _or_boolean(schema: dict[str, Any]) -> None:
    """JSON schema: the field also takes ``true`` / ``false`` (its validator maps them)."""
    schema["anyOf"] = [*schema.get("anyOf", []), {"type": "boolean"}]


def _switch(value: object) -> object:
    """``true``: the defaults; ``false`` or ``null``: off."""
    if value is True:
        return {}
    if value is False:
        return None
    return value


class MoneySpec(BaseModel):
    """Money in the simulation (see the module docstring): the submission ``guard`` (its defaults
    without the key; ``false``: no guard), tenant ``budgets``, chargeback ``tiers`` per
    ClusterQueue (or ``cohort:<name>``) account, and ``review_every``, the budget review's period."""

    model_config = _FROZEN

    guard: GuardSpec | None = Field(
        default_factory=GuardSpec,
        description="The submission guard: settings, true for the defaults, false or null for none.",
        json_schema_extra=_or_boolean,
    )
    budgets: tuple[BudgetSpec, ...] = ()
    tiers: dict[str, str] = Field(default_factory=dict)
    review_every: Duration = Field(default=DEFAULT_REVIEW_S, gt=0)

    @field_validator("guard", mode="before")
    @classmethod
    def _guard_switch(cls, value: object) -> object:
        return _switch(value)

    @model_validator(mode="after")
    def _unique(self) -> MoneySpec:
        seen: dict[str, int] = {}
        for index, spec in enumerate(self.budgets):
            key = spec.budget().key
            if key in seen:
                raise ValidationError(
                    f"budget {key} is also budgets[{seen[key]}]: one budget per tenant, period and kind",
                    path=f"budgets[{index}]",
                )
            seen[key] = index
        return self

    def policy(self) -> GuardPolicy:
        """The core's guard policy: the guard's rules (defaults without a guard) and the budgets."""
        guard = self.guard or GuardSpec()
        overrides = {
            key: PolicyOverride(o.quota_threshold, o.comparator, o.mode) for key, o in guard.overrides.items()
        }
        return GuardPolicy(
            quota_threshold=guard.quota_threshold,
            comparator=guard.comparator,
            mode=guard.mode,
            overrides=overrides,
            budgets=tuple(b.budget() for b in self.budgets),
        )


# The price book ----------------------------------------------------------------------------------


def flavor_price_book(
    prices: Mapping[str, Decimal], base: PriceBook | None = None, tier: str = "on-demand"
) -> PriceBook:
    """The simulation's price book: each flavor of ``prices`` (per GPU-hour, in ``tier``) by name.

    ``tier`` is the book's default tier. With ``base`` (the scenario's price book) the book has
    ``base``'s tiers too, each flavor priced in them by ``base``'s tier multipliers relative to
    ``tier`` (a tier without a multiplier has no rows: usage charged there is unpriced). A price
    book reads a name through the accelerator catalog (``h100`` is ``nvidia-h100-80gb``), so two
    flavors whose names denote one accelerator (``h100`` and ``nvidia-h100-80gb``) cannot both be
    rows: that is a :class:`ValidationError` (rename one).
    """
    factors: dict[str, Decimal] = {tier: Decimal(1)}
    tiers: tuple[str, ...] = (tier,)
    currency = "USD"
    if base is not None:
        resolved = base.resolve_tier(tier)
        if resolved is None:
            raise ValidationError(
                f"price tier {tier!r} is not in the price book (tiers: {', '.join(base.tiers())})",
                path="price_tier",
            )
        document = base.document
        multipliers = {**document.tier_multipliers, document.default_tier: Decimal(1)}
        own = multipliers.get(resolved)
        tiers = tuple(document.tiers)
        currency = document.currency
        factors = {resolved: Decimal(1)}
        if own:  # 0 or missing: the other tiers cannot be expressed relative to this one
            factors.update({t: m / own for t, m in multipliers.items() if t != resolved})
        tier = resolved
    rows = [
        PriceRow(accelerator=name, tier=t, per_hour=price * factors[t])
        for name, price in sorted(prices.items())
        for t in tiers
        if t in factors
    ]
    document = PriceBookDocument(
        version=BOOK_VERSION, currency=currency, tiers=tiers, default_tier=tier, prices=tuple(rows)
    )
    try:
        return PriceBook(document)
    except ValidationError as exc:
        raise ValidationError(
            f"two ResourceFlavors' names price as one accelerator ({exc.message}): rename one",
            path="money",
        ) from None


def tier_book(book: PriceBook, tier: str | None) -> PriceBook:
    """``book`` with ``tier`` as its default tier (``None``: ``book`` itself), so that what prices a
    job in the default tier (:func:`budcore.cost.guard.job_cost`) prices it in ``tier``."""
    if tier is None or tier == book.document.default_tier:
        return book
    return PriceBook(book.document.model_copy(update={"default_tier": tier}), book.catalog)


# The engine's side ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MoneyOptions:
    """What the engine needs of a ``money`` block (:meth:`MoneySpec.policy`, the price book)."""

    policy: GuardPolicy
    book: PriceBook
    guard: bool = True  # check submissions (False: budget actions and metering only)
    tiers: Mapping[str, str] = field(default_factory=dict)
    review_every_s: float = DEFAULT_REVIEW_S
    # Whether the scenario has a money block (False: the engine turned metering on by itself for a
    # job with a budget_limit; the report says so).
    declared: bool = True


@dataclass(frozen=True)
class GuardNote:
    """A submission the guard refused or warned about."""

    time_s: float
    job_id: str
    tenant: str
    cluster_queue: str
    reason: str  # the verdict's one line


@dataclass(frozen=True)
class SpendPoint:
    """Spend at a review instant: cumulative per tenant, and per budget in its current window."""

    time_s: float
    by_tenant: Mapping[str, Fraction]
    by_budget: Mapping[str, Decimal]


@dataclass(frozen=True)
class MoneyOutcome:
    """Everything money-related a run did (``SimulationResult.money``); report.py renders it."""

    options: MoneyOptions
    start: datetime
    end_s: float
    records: tuple[UsageRecord, ...]
    refusals: tuple[GuardNote, ...]
    warnings: tuple[GuardNote, ...]
    alerts: tuple[tuple[float, BudgetAlert], ...]
    stops: tuple[tuple[float, BudgetStop], ...]
    resumes: tuple[tuple[float, str, str], ...]  # (time, job id, tenant)
    series: tuple[SpendPoint, ...]

    def charge(self, record: UsageRecord) -> Fraction | None:
        """What ``record`` is charged, exactly (``None``: no price)."""
        return record_charge(record, self.options.book, ChargebackPolicy(self.options.tiers))


@dataclass(slots=True)
class _Run:
    """A run of a job in progress: since when, on what, and how much of it is borrowed from whom."""

    start_s: float
    tenant: str
    cluster_queue: str
    flavor: str
    devices: int
    priority: str
    lenders: Mapping[str, int]  # account -> whole devices borrowed from it


def to_decimal(value: Fraction) -> Decimal:
    return Decimal(value.numerator) / Decimal(value.denominator)


class MoneyLedger:
    """The engine's money state: guard decisions, runs and their records, reviews' outcomes.

    Pure bookkeeping: the engine tells it what happens (admissions, runs starting and ending,
    jobs arriving and finishing) and carries out what a review decides (pauses, cancellations,
    resumptions); nothing here changes the scheduler.
    """

    def __init__(
        self,
        options: MoneyOptions,
        *,
        start: datetime,
        queues: QueueConfig,
        matcher: AcceleratorMatcher,
        gpu_resource: str,
    ) -> None:
        self.options = options
        self.policy = options.policy
        self.book = options.book
        self._start = start
        self._queues = queues
        self._matcher = matcher
        self._gpu = gpu_resource
        self._chargeback = ChargebackPolicy(dict(options.tiers))
        self._tier_books: dict[str | None, PriceBook] = {}
        self.review_every_s = options.review_every_s
        self.reviews_budgets = bool(self.policy.budgets)
        self.has_limits = False  # a job with a budget_limit arrived: reviews are needed
        self._closed: dict[str, list[UsageRecord]] = {}  # by tenant
        self._tenant_exact: dict[str, Fraction] = {}  # charged over the closed records, by tenant
        self._job_exact: dict[str, Fraction] = {}  # charged so far over finished runs, by job
        self._job_lost: dict[str, Fraction] = {}
        # A job's cost and lost cost from before the ledger metered it (see Simulation._limits_only).
        self._base: dict[str, tuple[Decimal, Decimal]] = {}
        self._runs: dict[str, _Run] = {}
        self._lenders: dict[str, dict[str, dict[str, int]]] = {}  # job -> flavor -> account -> milli
        self._projected: dict[str, Fraction | None] = {}  # live job -> projected cost (None: unpriced)
        self._live: dict[str, dict[str, Job]] = {}  # tenant -> live jobs (queued .. paused), in order
        self.paused: dict[str, Job] = {}
        self._fired: frozenset[str] = frozenset()
        self._refusals: list[GuardNote] = []
        self._warnings: list[GuardNote] = []
        self._alerts: list[tuple[float, BudgetAlert]] = []
        self._stops: list[tuple[float, BudgetStop]] = []
        self._resumes: list[tuple[float, str, str]] = []
        self._series: list[SpendPoint] = []

    def _at(self, seconds: float) -> datetime:
        return self._start + timedelta(seconds=seconds)

    def _tier_book(self, cluster_queue: str | None) -> PriceBook:
        tier = self.options.tiers.get(cluster_queue) if cluster_queue is not None else None
        book = self._tier_books.get(tier)
        if book is None:
            book = self._tier_books[tier] = tier_book(self.book, tier)
        return book

    # Submission --------------------------------------------------------------------------------
    def cluster_queue_of(self, job: Job) -> str | None:
        local_queue = self._queues.local_queues.get((job.tenant, job.local_queue or ""))
        if local_queue is None or local_queue.cluster_queue not in self._queues.cluster_queues:
            return None
        return local_queue.cluster_queue

    def guard(self, job: Job, scheduler: Scheduler, now_s: float) -> GuardVerdict | None:
        """The guard's verdict on ``job`` entering its queue now (``None``: no guard, or the job
        names no LocalQueue of the queues, which its submission reports)."""
        if job.budget_limit is not None:
            self.has_limits = True
        cluster_queue = self.cluster_queue_of(job)
        if cluster_queue is None or not self.options.guard:
            return None
        now = self._at(now_s)
        budgets = self.policy.budgets_of(job.tenant)
        spends: dict[str, Decimal] = {}
        committed: dict[str, Decimal] = {}
        incomplete: frozenset[str] = frozenset()
        if budgets:
            records = self.tenant_records(job.tenant, now_s)
            spends, incomplete = budget_spends(budgets, records, self.book, now)
            promised, unpriced = self._committed(job.tenant, now_s)
            committed = dict.fromkeys((b.key for b in budgets), to_decimal(promised))
            if unpriced:
                incomplete = incomplete | {b.key for b in budgets}
        figures = queue_figures(scheduler, cluster_queue)
        snapshot = GuardSnapshot(now, {cluster_queue: figures}, spends, incomplete, committed)
        book = self._tier_book(cluster_queue)
        priced = self._priced(job, cluster_queue, book)
        return check(priced, cluster_queue, snapshot, self.policy, prices=book, now=now)

    def refused(self, verdict: GuardVerdict, now_s: float) -> None:
        self._refusals.append(_note(verdict, now_s))

    def warned(self, verdict: GuardVerdict, now_s: float) -> None:
        self._warnings.append(_note(verdict, now_s))

    def entered(self, job: Job) -> None:
        """``job`` is live (queued): its projected cost is committed spend of its tenant."""
        if job.budget_limit is not None:
            self.has_limits = True
        cluster_queue = self.cluster_queue_of(job)
        if cluster_queue is None:
            return  # its submission is rejected: nothing is committed
        book = self._tier_book(cluster_queue)
        cost = job_cost(self._priced(job, cluster_queue, book), book)
        self._projected[job.id] = None if isinstance(cost, str) else Fraction(cost)
        self._live.setdefault(job.tenant, {})[job.id] = job

    def finished(self, job_id: str, tenant: str) -> None:
        """The job ended (completed, failed, cancelled): nothing more is committed for it."""
        live = self._live.get(tenant)
        if live is not None:
            live.pop(job_id, None)
        self._projected.pop(job_id, None)
        self.paused.pop(job_id, None)

    def _priced(self, job: Job, cluster_queue: str, book: PriceBook) -> Job:
        """``job`` as the guard prices it: on the dearest priced flavor of its ClusterQueue that
        could serve its accelerators (unchanged when none is priced: the guard then says so)."""
        if job.request.accelerator_count == 0:
            return job
        wanted = job.request.accelerators
        best: tuple[Decimal, str] | None = None
        for group in self._queues.cluster_queues[cluster_queue].resource_groups:
            if not any(is_accelerator(r) for r in group.covered_resources):
                continue
            for quotas in group.flavors:
                flavor = self._queues.flavors.get(quotas.name)
                if flavor is None or not self._matcher.matches_any(wanted, flavor):
                    continue
                price = book.price(quotas.name)
                if price is not None and (best is None or (price, quotas.name) > best):
                    best = (price, quotas.name)
        if best is None:
            return job
        request = job.request.model_copy(update={"accelerator_type": best[1]})
        return job.model_copy(update={"request": request})

    def _committed(self, tenant: str, now_s: float) -> tuple[Fraction, bool]:
        """What the tenant's live jobs are still projected to spend, and whether some cannot be priced."""
        promised = Fraction(0)
        unpriced = False
        for job_id in self._live.get(tenant, {}):
            cost = self._projected[job_id]
            if cost is None:
                unpriced = True
                continue
            promised += max(Fraction(0), cost - self.accrued(job_id, now_s))
        return promised, unpriced

    # Admissions and runs -------------------------------------------------------------------------
    def admitted(self, admits: Sequence[Admit], scheduler: Scheduler) -> None:
        """A cycle's admissions: who lends what each one borrows (the chargeback rule), from the
        quota usage just before it (the cycle's later admissions taken out)."""
        usage = scheduler.usage.overlay()
        for admit in admits:
            usage.add(admit.cluster_queue, admit.usage, sign=-1)
        for admit in admits:
            lenders: dict[str, dict[str, int]] = {}
            for fr, amount in admit.usage.items():
                if fr[1] == self._gpu and amount > 0:
                    shares = lenders_at(scheduler.tree, usage, admit.cluster_queue, fr, amount)
                    if shares:
                        lenders[fr[0]] = shares
            self._lenders[admit.job_id] = lenders
            usage.add(admit.cluster_queue, admit.usage)

    def run_started(
        self,
        job: Job,
        cluster_queue: str,
        flavor: str,
        devices: int,
        priority: str,
        now_s: float,
        *,
        base: tuple[Decimal, Decimal] = (Decimal(0), Decimal(0)),
    ) -> None:
        """A run of ``job`` starts at ``now_s``; ``base`` is its cost and lost cost before the ledger
        first saw it (non-zero only for a ledger created during the run)."""
        self._base.setdefault(job.id, base)
        shares = self._lenders.get(job.id, {}).get(flavor, {})
        borrowed = min(devices, -(-sum(shares.values()) // 1000))
        lenders = split_borrowed(borrowed, shares) if borrowed else {}
        self._runs[job.id] = _Run(now_s, job.tenant, cluster_queue, flavor, devices, priority, lenders)

    def run_ended(self, job_id: str, now_s: float, lost: Fraction) -> tuple[Decimal, Decimal]:
        """Close the job's run at ``now_s``; ``lost`` is the fraction of it whose work was thrown
        away. Returns the job's cost and lost cost so far (over all its runs)."""
        run = self._runs.pop(job_id, None)
        if run is not None:
            records = self._records(job_id, run, now_s)
            charged = sum((self._charge(r) for r in records), Fraction(0))
            if records:
                self._closed.setdefault(run.tenant, []).extend(records)
                self._tenant_exact[run.tenant] = self._tenant_exact.get(run.tenant, Fraction(0)) + charged
            self._job_exact[job_id] = self._job_exact.get(job_id, Fraction(0)) + charged
            self._job_lost[job_id] = self._job_lost.get(job_id, Fraction(0)) + charged * lost
        cost, lost_cost = self._base.get(job_id, (Decimal(0), Decimal(0)))
        return (
            cost + to_decimal(self._job_exact.get(job_id, Fraction(0))),
            lost_cost + to_decimal(self._job_lost.get(job_id, Fraction(0))),
        )

    def _charge(self, record: UsageRecord) -> Fraction:
        cost = record_charge(record, self.book, self._chargeback)
        return Fraction(0) if cost is None else cost

    def _records(self, job_id: str, run: _Run, end_s: float) -> list[UsageRecord]:
        """The run's records up to ``end_s``: its nominal part, and a part per lender."""
        if run.devices <= 0 or end_s <= run.start_s:
            return []
        start, end = self._at(run.start_s), self._at(end_s)
        parts: list[tuple[int, str | None]] = [(n, lender) for lender, n in run.lenders.items()]
        nominal = run.devices - sum(run.lenders.values())
        if nominal > 0:
            parts.insert(0, (nominal, None))
        tiers = self.options.tiers
        return [
            UsageRecord(
                job_id=job_id,
                tenant=run.tenant,
                flavor=run.flavor,
                accelerator=run.flavor,
                devices=devices,
                start=start,
                end=end,
                tier=tiers.get(lender if lender is not None else run.cluster_queue),
                priority=run.priority,
                borrowed=lender is not None,
                cluster_queue=run.cluster_queue,
                lender=lender,
            )
            for devices, lender in parts
        ]

    def accrued(self, job_id: str, now_s: float) -> Fraction:
        """The job's charges so far: its finished runs, and its current run up to ``now_s``."""
        total = self._job_exact.get(job_id, Fraction(0))
        run = self._runs.get(job_id)
        if run is not None:
            total += sum((self._charge(r) for r in self._records(job_id, run, now_s)), Fraction(0))
        return total

    def tenant_records(self, tenant: str, now_s: float) -> list[UsageRecord]:
        """The tenant's records so far, its running jobs' up to ``now_s``."""
        out = list(self._closed.get(tenant, ()))
        for job_id, run in self._runs.items():
            if run.tenant == tenant:
                out.extend(self._records(job_id, run, now_s))
        return out

    # Reviews ------------------------------------------------------------------------------------
    @property
    def reviews(self) -> bool:
        """Whether anything is reviewed at all: budgets, or jobs with a budget_limit."""
        return self.reviews_budgets or self.has_limits

    def waits_for_period(self) -> bool:
        """Whether a paused job will have room again by time alone (a budget's period rolling over
        or a rolling window moving on), which keeps the run going while nothing else happens. A
        job paused by its own budget_limit, or by a budget of 0, never will."""
        for job in self.paused.values():
            if job.budget_limit is not None and self._job_exact.get(job.id, Fraction(0)) >= job.budget_limit:
                continue
            if all(
                b.amount > 0 for b in self.policy.budgets_of(job.tenant) if b.action is not BudgetAction.WARN
            ):
                return True
        return False

    def review(self, running: Mapping[str, Job], now_s: float) -> tuple[list[BudgetStop], list[str]]:
        """One budget review at ``now_s``: alerts (recorded), the stops to carry out, and the paused
        jobs that may resume (both for the engine to carry out)."""
        now = self._at(now_s)
        spends = self._spends(now_s)
        watched = [JobSpend(job, to_decimal(self.accrued(job.id, now_s)), True) for job in running.values()]
        for live in self._live.values():
            watched.extend(
                JobSpend(job, to_decimal(self.accrued(job.id, now_s)), False)
                for job in live.values()
                if job.budget_limit is not None and job.id not in running
            )
        outcome = review_budgets(watched, spends, self.policy, now=now, fired=self._fired)
        self._fired = outcome.fired
        self._alerts.extend((now_s, alert) for alert in outcome.alerts)
        self._stops.extend((now_s, stop) for stop in outcome.stops)
        paused = [
            JobSpend(job, to_decimal(self.accrued(job.id, now_s)), False) for job in self.paused.values()
        ]
        ready = resumable(paused, spends, self.policy) if paused else []
        self._series.append(SpendPoint(now_s, self._tenant_spend(now_s), spends))
        return list(outcome.stops), ready

    def pause(self, job: Job) -> None:
        self.paused[job.id] = job

    def resumed(self, job_id: str, now_s: float) -> None:
        job = self.paused.pop(job_id)
        self._resumes.append((now_s, job_id, job.tenant))

    def _spends(self, now_s: float) -> dict[str, Decimal]:
        """Each budget's spend in its current window, running jobs up to now (:func:`budget_spends`)."""
        now = self._at(now_s)
        spends: dict[str, Decimal] = {}
        for tenant in sorted({b.tenant for b in self.policy.budgets}):
            figures, _ = budget_spends(
                self.policy.budgets_of(tenant), self.tenant_records(tenant, now_s), self.book, now
            )
            spends.update(figures)
        return spends

    def _tenant_spend(self, now_s: float) -> dict[str, Fraction]:
        """Each tenant's charges so far, its running jobs' up to ``now_s``."""
        spent = dict(self._tenant_exact)
        for job_id, run in self._runs.items():
            records = self._records(job_id, run, now_s)
            if records:
                charged = sum((self._charge(r) for r in records), Fraction(0))
                spent[run.tenant] = spent.get(run.tenant, Fraction(0)) + charged
        return {tenant: spent[tenant] for tenant in sorted(spent)}

    # The end ------------------------------------------------------------------------------------
    def outcome(self, end_s: float) -> MoneyOutcome:
        """What the run did (call after every run was closed at the end). The spend series ends
        with the spend at the end of the run, so its last point is the run's total."""
        if not self._series or self._series[-1].time_s < end_s:
            self._series.append(SpendPoint(end_s, self._tenant_spend(end_s), self._spends(end_s)))
        records = sorted(
            (r for rows in self._closed.values() for r in rows),
            key=lambda r: (r.start, r.job_id, r.borrowed, r.lender or ""),
        )
        return MoneyOutcome(
            options=self.options,
            start=self._start,
            end_s=end_s,
            records=tuple(records),
            refusals=tuple(self._refusals),
            warnings=tuple(self._warnings),
            alerts=tuple(self._alerts),
            stops=tuple(self._stops),
            resumes=tuple(self._resumes),
            series=tuple(self._series),
        )


def _note(verdict: GuardVerdict, now_s: float) -> GuardNote:
    return GuardNote(now_s, verdict.job_id, verdict.tenant, verdict.cluster_queue, str(verdict))


# Spend per calendar period (the `plan` cost SLO) -----------------------------------------------------

#: Prices one record exactly (``None``: no price), e.g. :meth:`MoneyOutcome.charge`.
Charge = Callable[[UsageRecord], "Fraction | None"]


def period_spend(
    records: Iterable[UsageRecord], charge: Charge, period: Literal["day", "week", "month"]
) -> dict[str, dict[datetime, Fraction]]:
    """Each tenant's charges per calendar ``period`` (UTC; weeks from Monday), exactly.

    A record spanning periods is split at their boundaries and each part charged on its own (whole
    seconds, as :func:`budcore.cost.metering.tenant_spend` clips usage to a budget's period).
    ``charge`` prices a record (``MoneyOutcome.charge``).
    """
    calendar = Budget(tenant="any", amount=Decimal(0), period=period)
    out: dict[str, dict[datetime, Fraction]] = {}
    for record in records:
        at = record.start
        while at < record.end:
            start, end = calendar.window(at)
            part = record.clipped(start, end)
            if part is not None:
                cost = charge(part)
                if cost is not None:
                    periods = out.setdefault(record.tenant, {})
                    periods[start] = periods.get(start, Fraction(0)) + cost
            at = end
    return out


def peak_spend(records: Iterable[UsageRecord], charge: Charge) -> dict[str, dict[str, Fraction]]:
    """Per period kind (``day``, ``week``, ``month``), each tenant's highest spend in one calendar
    period of that kind within the run (UTC)."""
    rows = list(records)
    out: dict[str, dict[str, Fraction]] = {}
    for period in PERIODS:
        spends = period_spend(rows, charge, period)
        out[period] = {tenant: max(spends[tenant].values()) for tenant in sorted(spends)}
    return out


__all__ = [
    "DEFAULT_REVIEW_S",
    "BudgetSpec",
    "GuardNote",
    "GuardSpec",
    "MoneyLedger",
    "MoneyOptions",
    "MoneyOutcome",
    "MoneySpec",
    "SpendPoint",
    "flavor_price_book",
    "peak_spend",
    "period_spend",
    "tier_book",
]
