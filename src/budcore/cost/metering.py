"""Metering: per-second accounting of accelerator usage and what it cost.

Pure functions over :class:`UsageRecord` s (the simulator and the backends produce them; nothing
here reads a clock or a database). A record is "``devices`` accelerators (or MIG slices, or
time-slice replicas) of one flavor used by one job from ``start`` to ``end``"; its billable time
is whole seconds, rounded up, as per-second cloud billing does. Cost follows the design's formula

    cost = gpu_seconds × price_per_second × sharing_multiplier × qos_multiplier

with the sharing and QoS factors coming from the price book. Usage is broken down by flavor,
sharing mode, tenant, priority and borrowed-vs-nominal quota (the chargeback dimensions), and
rolled up into per-job estimated-vs-actual cost and per-tenant spend and projection.

Sums are kept as exact fractions of the (Decimal) hourly price — ``hourly × seconds / 3600`` —
and turned into a ``Decimal`` once, at the end: a run metered as a thousand one-second records
costs exactly what one record of the same length costs, with no drift in the 28th digit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from budcore.cost.prices import EXCLUSIVE, PriceBook, check_mode, money
from budcore.domain.errors import ValidationError

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class UsageRecord(BaseModel):
    """One stretch of accelerator use by one job."""

    model_config = _FROZEN

    job_id: str = Field(min_length=1)
    tenant: str = Field(min_length=1)
    flavor: str = Field(min_length=1)  # ResourceFlavor / profile name
    accelerator: str = Field(min_length=1)  # catalog slug (or a name the price book knows)
    devices: int = Field(ge=1)  # whole devices, MIG slices or time-slice replicas
    start: datetime
    end: datetime
    mode: str = EXCLUSIVE  # exclusive, time-slicing, mps, mig-<profile>
    replicas: int = Field(default=1, ge=1)  # time-slice replicas per GPU (per-replica pricing)
    tier: str | None = None  # None: the price book's default tier
    priority: str = "default"
    qos: str | None = None
    borrowed: bool = False  # ran on quota borrowed from the cohort rather than nominal quota
    # Chargeback (issue #16): the ClusterQueue whose quota admitted the job, and for borrowed usage
    # the account that lent it (a ClusterQueue, or ``cohort:<name>`` for a cohort's own quota).
    cluster_queue: str | None = None
    lender: str | None = None

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, value: str) -> str:
        return check_mode(value)

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must be timezone-aware (UTC)")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> UsageRecord:
        if self.lender is not None and not self.borrowed:
            raise ValueError("lender is set only on borrowed usage (borrowed: true)")
        if self.end < self.start:
            raise ValueError(f"end {self.end.isoformat()} is before start {self.start.isoformat()}")
        return self

    @property
    def seconds(self) -> int:
        """Billable whole seconds (rounded up)."""
        return billable_seconds(self.end - self.start)

    @property
    def device_seconds(self) -> int:
        return self.devices * self.seconds

    def clipped(self, start: datetime, end: datetime) -> UsageRecord | None:
        """The part of this record inside ``[start, end)``, or ``None``."""
        lo, hi = max(self.start, start), min(self.end, end)
        if hi <= lo:
            return None
        return self.model_copy(update={"start": lo, "end": hi})


def billable_seconds(duration: timedelta) -> int:
    """Whole seconds, rounded up (1.2 s bills as 2 s; exactly 0 stays 0)."""
    micro = duration // timedelta(microseconds=1)
    return max(0, -(-micro // 1_000_000))


def _to_decimal(value: Fraction) -> Decimal:
    return Decimal(value.numerator) / Decimal(value.denominator)


def _exact_cost(record: UsageRecord, prices: PriceBook) -> Fraction | None:
    hourly = prices.price(
        record.accelerator, record.tier, mode=record.mode, replicas=record.replicas, qos=record.qos
    )
    if hourly is None:
        return None
    return Fraction(hourly) * record.device_seconds / 3600


def record_cost(record: UsageRecord, prices: PriceBook) -> Decimal | None:
    """Cost of one record (unrounded; render with ``money``); ``None`` when the book has no price."""
    exact = _exact_cost(record, prices)
    return None if exact is None else _to_decimal(exact)


def estimate_cost(
    prices: PriceBook,
    accelerator: str,
    *,
    devices: int,
    seconds: int | Decimal,
    tier: str | None = None,
    mode: str = EXCLUSIVE,
    replicas: int = 1,
    qos: str | None = None,
) -> Decimal | None:
    """What ``devices`` of ``accelerator`` for ``seconds`` will cost (unrounded; render with ``money``).

    ``devices`` must be a whole number and ``seconds`` a finite number, both non-negative (else
    :class:`ValidationError` naming the argument); ``None`` when the book has no price.
    """
    if isinstance(devices, bool) or not isinstance(devices, int):
        raise ValidationError(f"must be a whole number, got {devices!r}", path="devices")
    if devices < 0:
        raise ValidationError("devices and seconds must be non-negative", path="devices")
    exact_seconds = _finite_seconds(seconds)
    hourly = prices.price(accelerator, tier, mode=mode, replicas=replicas, qos=qos)
    if hourly is None:
        return None
    return _to_decimal(Fraction(hourly) * devices * exact_seconds / 3600)


def _finite_seconds(seconds: object) -> Fraction:
    """``seconds`` as an exact fraction; NaN, infinities, negatives and non-numbers are errors."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float, Decimal, Fraction)):
        raise ValidationError(f"must be a number of seconds, got {seconds!r}", path="seconds")
    if isinstance(seconds, Decimal):
        finite = seconds.is_finite()
    elif isinstance(seconds, float):
        finite = math.isfinite(seconds)
    else:
        finite = True
    if not finite:
        raise ValidationError(f"must be a finite number, got {seconds!r}", path="seconds")
    exact = Fraction(seconds)
    if exact < 0:
        raise ValidationError("devices and seconds must be non-negative", path="seconds")
    return exact


class UsageLine(BaseModel):
    """Usage and cost of one breakdown bucket (cost kept exact, see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    device_seconds: int = 0
    exact_cost: Fraction = Fraction(0)
    unpriced_device_seconds: int = 0  # usage the price book has no price for

    @property
    def cost(self) -> Decimal:
        return _to_decimal(self.exact_cost)

    @property
    def device_hours(self) -> Decimal:
        return Decimal(self.device_seconds) / 3600

    def add(self, seconds: int, cost: Fraction | None) -> UsageLine:
        return UsageLine(
            device_seconds=self.device_seconds + seconds,
            exact_cost=self.exact_cost + (cost or 0),
            unpriced_device_seconds=self.unpriced_device_seconds + (seconds if cost is None else 0),
        )


class UsageReport(BaseModel):
    """Totals and the chargeback breakdowns over a set of records."""

    model_config = _FROZEN

    currency: str
    total: UsageLine
    by_flavor: dict[str, UsageLine]
    by_mode: dict[str, UsageLine]
    by_tenant: dict[str, UsageLine]
    by_priority: dict[str, UsageLine]
    by_quota: dict[str, UsageLine]  # "nominal" / "borrowed"
    by_job: dict[str, UsageLine]
    unpriced: tuple[str, ...]  # accelerators the book could not price


def meter(records: Iterable[UsageRecord], prices: PriceBook) -> UsageReport:
    """Aggregate usage and exact cost by every chargeback dimension."""
    buckets: dict[str, dict[str, UsageLine]] = {
        "flavor": {},
        "mode": {},
        "tenant": {},
        "priority": {},
        "quota": {},
        "job": {},
    }
    total = UsageLine()
    unpriced: set[str] = set()
    for record in records:
        seconds = record.device_seconds
        cost = _exact_cost(record, prices)
        if cost is None:
            unpriced.add(record.accelerator)
        total = total.add(seconds, cost)
        keys = {
            "flavor": record.flavor,
            "mode": record.mode,
            "tenant": record.tenant,
            "priority": record.priority,
            "quota": "borrowed" if record.borrowed else "nominal",
            "job": record.job_id,
        }
        for dimension, key in keys.items():
            bucket = buckets[dimension]
            bucket[key] = bucket.get(key, UsageLine()).add(seconds, cost)
    return UsageReport(
        currency=prices.currency,
        total=total,
        by_flavor=buckets["flavor"],
        by_mode=buckets["mode"],
        by_tenant=buckets["tenant"],
        by_priority=buckets["priority"],
        by_quota=buckets["quota"],
        by_job=buckets["job"],
        unpriced=tuple(sorted(unpriced)),
    )


class JobCost(BaseModel):
    """A job's estimated versus actual cost."""

    model_config = _FROZEN

    job_id: str
    estimated: Decimal | None
    actual: Decimal
    unpriced_device_seconds: int = 0

    @property
    def variance(self) -> Decimal | None:
        """actual − estimated (positive: over the estimate)."""
        return None if self.estimated is None else self.actual - self.estimated

    @property
    def variance_ratio(self) -> Decimal | None:
        if self.estimated is None or self.estimated == 0:
            return None
        return self.actual / self.estimated - 1


def job_costs(
    records: Iterable[UsageRecord], prices: PriceBook, estimates: Mapping[str, Decimal] | None = None
) -> list[JobCost]:
    """Actual cost per job (from its records) next to its estimate, in job-id order."""
    report = meter(records, prices)
    estimates = estimates or {}
    job_ids = sorted(set(report.by_job) | set(estimates))
    out = []
    for job_id in job_ids:
        line = report.by_job.get(job_id, UsageLine())
        out.append(
            JobCost(
                job_id=job_id,
                estimated=estimates.get(job_id),
                actual=line.cost,
                unpriced_device_seconds=line.unpriced_device_seconds,
            )
        )
    return out


class TenantSpend(BaseModel):
    """A tenant's spend in a budget period so far, and where it is heading.

    ``spent`` and ``projected`` cover the *priced* usage. Usage the price book cannot price is
    never counted as free: it is reported in ``unpriced_device_seconds`` (and the accelerators in
    ``unpriced_accelerators``), ``fully_priced`` is false, and the budget verdicts that would need
    its cost — ``remaining``, ``projected_overrun``, ``spent_fraction`` — are ``None`` ("cannot
    tell"), as is ``within_budget`` unless the priced part alone already exceeds the budget.
    """

    model_config = _FROZEN

    tenant: str
    period_start: datetime
    period_end: datetime
    as_of: datetime
    spent: Decimal
    projected: Decimal
    budget: Decimal | None = None
    unpriced_device_seconds: int = Field(default=0, ge=0)  # usage to date with no price
    unpriced_accelerators: tuple[str, ...] = ()

    @property
    def fully_priced(self) -> bool:
        """Whether every device-second to date had a price (so the figures are the whole spend)."""
        return self.unpriced_device_seconds == 0

    @property
    def unpriced_device_hours(self) -> Decimal:
        return Decimal(self.unpriced_device_seconds) / 3600

    @property
    def remaining(self) -> Decimal | None:
        """Budget minus spend; ``None`` without a budget or with unpriced usage."""
        if self.budget is None or not self.fully_priced:
            return None
        return self.budget - self.spent

    @property
    def projected_overrun(self) -> Decimal | None:
        """How far the projection exceeds the budget (0 when within it).

        ``None`` without a budget, or when unpriced usage makes the projection incomplete.
        """
        if self.budget is None or not self.fully_priced:
            return None
        return max(Decimal(0), self.projected - self.budget)

    @property
    def spent_fraction(self) -> Decimal | None:
        if self.budget is None or self.budget == 0 or not self.fully_priced:
            return None
        return self.spent / self.budget

    @property
    def within_budget(self) -> bool | None:
        """Whether the projection stays within the budget: ``True``/``False`` when known.

        ``None`` without a budget, or when unpriced usage could push a within-budget projection
        over it, so ``if not spend.within_budget: alert()`` never passes on unknown prices. The
        priced part alone exceeding the budget is ``False`` whatever the unpriced usage costs.
        """
        if self.budget is None:
            return None
        if self.projected > self.budget:
            return False
        return True if self.fully_priced else None


def tenant_spend(
    records: Iterable[UsageRecord],
    prices: PriceBook,
    *,
    tenant: str,
    period_start: datetime,
    period_end: datetime,
    as_of: datetime,
    budget: Decimal | None = None,
) -> TenantSpend:
    """Spend to date in ``[period_start, as_of)`` and a linear projection to ``period_end``.

    Usage is clipped to the period and to ``as_of`` (a record still running is counted up to
    now). The projection extrapolates the average spend rate so far over the whole period: simple
    and explainable, which is what a budget alert needs; with no time elapsed it is the spend.
    Usage on accelerators the book cannot price is reported as unpriced (see :class:`TenantSpend`),
    never as free.
    """
    for name, value in (("period_start", period_start), ("period_end", period_end), ("as_of", as_of)):
        if value.tzinfo is None:
            raise ValidationError("must be timezone-aware (UTC)", path=name)
    if period_end <= period_start:
        raise ValidationError("period_end must be after period_start", path="period_end")
    if budget is not None and budget < 0:
        raise ValidationError("budget must not be negative", path="budget")
    now = min(max(as_of, period_start), period_end)
    exact = Fraction(0)
    unpriced_seconds = 0
    unpriced: set[str] = set()
    for record in records:
        if record.tenant != tenant:
            continue
        part = record.clipped(period_start, now)
        if part is None:
            continue
        cost = _exact_cost(part, prices)
        if cost is None:
            unpriced_seconds += part.device_seconds
            unpriced.add(record.accelerator)
        else:
            exact += cost
    elapsed = (now - period_start) // timedelta(microseconds=1)
    length = (period_end - period_start) // timedelta(microseconds=1)
    spent = _to_decimal(exact)
    projected = spent if elapsed == 0 else _to_decimal(exact * length / elapsed)
    return TenantSpend(
        tenant=tenant,
        period_start=period_start,
        period_end=period_end,
        as_of=now,
        spent=spent,
        projected=projected,
        budget=budget,
        unpriced_device_seconds=unpriced_seconds,
        unpriced_accelerators=tuple(sorted(unpriced)),
    )


__all__ = [
    "JobCost",
    "TenantSpend",
    "UsageLine",
    "UsageRecord",
    "UsageReport",
    "billable_seconds",
    "estimate_cost",
    "job_costs",
    "meter",
    "money",
    "record_cost",
    "tenant_spend",
]
