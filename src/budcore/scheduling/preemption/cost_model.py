"""The default preemption cost model: lost work + restart overhead + near-completion penalty.

Kueue has no counterpart: it approximates the cost of a preemption by "most recently admitted
first" (``common/ordering.go``); this is budcore's cost mode's price of an eviction.

Kept apart from the cost-mode search (:mod:`~budcore.scheduling.preemption.cost`) because the
policy (:mod:`~budcore.scheduling.preemption.policy`) defaults to it, and the search builds on
the shared machinery that reads the policy: together they would form an import cycle.

Cost of evicting a running
workload = lost work + restart overhead + near-completion penalty:

- **lost work**: accelerator-seconds since the last checkpoint × the hourly price of the victim's
  flavor / 3600. The reference point is the last reported checkpoint; a training job that reports
  none is assumed to checkpoint every ``checkpoint_interval`` since it started (default 3600 s), so
  it loses ``elapsed mod interval``; a batch job without checkpoints loses everything since it
  started; a service keeps no in-flight work (it only pays its restart). A checkpoint no older
  than ``fresh_checkpoint`` (default: the 30 s grace period, within which the job can checkpoint
  on SIGTERM) counts as zero lost work.
- **restart overhead**: per job type, the seconds the job needs to be useful again (model load
  for services, checkpoint restore for training), priced like lost work.
- **near-completion penalty**: a fixed, high amount when progress exceeds ``near_completion``
  (default 90 %): evicting a job that is almost done wastes its whole run and delays its result.

Only accelerator resources are priced (:func:`budcore.domain.resources.is_accelerator`): they are
what a GPU fleet pays for; CPU-only victims cost only their near-completion penalty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from budcore.domain.errors import ValidationError
from budcore.domain.job import JobType
from budcore.domain.resources import is_accelerator
from budcore.ports.preemption_cost import FlavorResource, PreemptionCost, VictimInfo

DEFAULT_CHECKPOINT_INTERVALS: Mapping[JobType, timedelta | None] = {
    JobType.TRAINING: timedelta(hours=1),
    JobType.BATCH: None,  # runs to completion: an eviction loses everything since the start
    JobType.SERVICE: None,  # stateless: nothing in flight to lose
}
DEFAULT_RESTART_OVERHEAD: Mapping[JobType, timedelta] = {
    JobType.TRAINING: timedelta(minutes=10),  # restore checkpoint, rebuild data loaders, warm up
    JobType.SERVICE: timedelta(minutes=5),  # model load before serving again
    JobType.BATCH: timedelta(minutes=1),
}

_HOUR = Decimal(3600)


@dataclass(frozen=True, slots=True)
class DefaultPreemptionCostModel:
    """Lost work + restart overhead + near-completion penalty (see the module docstring).

    ``prices`` maps a flavor to the hourly price of one accelerator in it; a victim's own
    ``hourly_price`` wins; ``default_hourly_price`` covers flavors with no price (so an unpriced
    GPU is never free).
    """

    prices: Mapping[str, Decimal] = field(default_factory=dict)
    default_hourly_price: Decimal = Decimal(1)
    checkpoint_intervals: Mapping[JobType, timedelta | None] = field(
        default_factory=lambda: dict(DEFAULT_CHECKPOINT_INTERVALS)
    )
    restart_overhead: Mapping[JobType, timedelta] = field(
        default_factory=lambda: dict(DEFAULT_RESTART_OVERHEAD)
    )
    fresh_checkpoint: timedelta = timedelta(seconds=30)
    near_completion: float = 0.9
    near_completion_penalty: Decimal = Decimal(1000)

    def __post_init__(self) -> None:
        for flavor, price in self.prices.items():
            if price < 0:
                raise ValidationError("price must not be negative", path=f"prices[{flavor}]")
        if self.default_hourly_price < 0:
            raise ValidationError("price must not be negative", path="default_hourly_price")
        for job_type, interval in self.checkpoint_intervals.items():
            if interval is not None and interval <= timedelta(0):
                raise ValidationError("interval must be positive", path=f"checkpoint_intervals[{job_type}]")
        for job_type, overhead in self.restart_overhead.items():
            if overhead < timedelta(0):
                raise ValidationError("overhead must not be negative", path=f"restart_overhead[{job_type}]")
        if self.fresh_checkpoint < timedelta(0):
            raise ValidationError("must not be negative", path="fresh_checkpoint")
        if not 0.0 <= self.near_completion <= 1.0:
            raise ValidationError("must be within [0, 1]", path="near_completion")
        if self.near_completion_penalty < 0:
            raise ValidationError("must not be negative", path="near_completion_penalty")

    def _price_per_second(
        self, victim: VictimInfo, usage: Mapping[FlavorResource, int]
    ) -> tuple[float, Decimal]:
        """(accelerators held, price per second of all of them)."""
        gpus = 0.0
        per_second = Decimal(0)
        for (flavor, resource), amount in usage.items():
            if not is_accelerator(resource) or amount <= 0:
                continue
            units = Decimal(amount) / 1000
            hourly = victim.hourly_price
            if hourly is None:
                hourly = self.prices.get(flavor, self.default_hourly_price)
            gpus += float(units)
            per_second += units * hourly / _HOUR
        return gpus, per_second

    def lost_seconds(self, victim: VictimInfo, now: datetime) -> tuple[float, str]:
        """Wall-clock seconds of work an eviction at ``now`` throws away, and why."""
        started = victim.started_at
        if started is None or started >= now:
            return 0.0, "not running yet"
        if victim.job_type is JobType.SERVICE and victim.checkpoint_interval is None:
            return 0.0, "service keeps no in-flight work"
        declared = victim.checkpoint_interval
        if declared is None:
            interval = self.checkpoint_intervals.get(victim.job_type)
        else:  # an explicit zero declares a job that never checkpoints
            interval = declared if declared > timedelta(0) else None
        reference = started
        how = "since start"
        last = victim.last_checkpoint_at
        if last is not None and started <= last <= now:
            reference, how = last, "since last checkpoint"
        elif interval is not None:
            elapsed = now - started
            periods = elapsed // interval
            reference, how = started + periods * interval, "since assumed periodic checkpoint"
        lost = now - reference
        if reference != started and lost <= self.fresh_checkpoint:
            return 0.0, f"checkpointed {lost.total_seconds():.0f}s ago"
        return lost.total_seconds(), how

    def cost(self, victim: VictimInfo, usage: Mapping[FlavorResource, int], now: datetime) -> PreemptionCost:
        gpus, per_second = self._price_per_second(victim, usage)
        seconds, how = self.lost_seconds(victim, now)
        lost = per_second * Decimal(str(seconds))
        restart = self.restart_overhead.get(victim.job_type, timedelta(0))
        restart_cost = per_second * Decimal(str(restart.total_seconds())) if victim.started_at else Decimal(0)
        penalty = Decimal(0)
        notes = [f"{seconds:.0f}s {how}"]
        if victim.progress is not None and victim.progress > self.near_completion:
            penalty = self.near_completion_penalty
            notes.append(f"{victim.progress:.0%} complete")
        return PreemptionCost(
            lost_gpu_seconds=gpus * seconds,
            lost_work=lost,
            restart_overhead=restart_cost,
            near_completion_penalty=penalty,
            explanation=", ".join(notes),
        )
