"""The preemption cost port: what evicting one running workload throws away.

Kueue approximates the cost of a preemption by "most recently admitted first". budcore makes the
cost explicit so a scheduler can prefer evicting a job that just checkpointed over one that has
run for hours since its last checkpoint. The admission snapshot only knows quota usage, so the
facts a cost needs (job type, start, checkpoints, progress, price) travel in a
:class:`VictimInfo` the caller supplies per job; the preemption search itself stays pure.

Money is ``Decimal``; durations are ``timedelta``; datetimes are aware UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol, runtime_checkable

from budcore.domain.errors import ValidationError
from budcore.domain.ids import JobId
from budcore.domain.job import Job, JobType
from budcore.domain.priority import JobPriority
from budcore.domain.timeutil import ensure_utc

FlavorResource = tuple[str, str]  # (flavor, resource), as in the quota tree


@dataclass(frozen=True, slots=True)
class VictimInfo:
    """What the cost model and the safety guards need to know about a running workload.

    ``started_at`` is when it started running (None: admitted, not started — nothing to lose);
    ``last_checkpoint_at`` its last reported checkpoint; ``checkpoint_interval`` the interval it
    declared (None: the cost model's default for its job type; zero: it never checkpoints);
    ``progress`` its completion in
    [0, 1] when known; ``hourly_price`` what one accelerator of its flavor costs per hour (None:
    the cost model's price table). ``critical`` and ``preemptible=False`` jobs are never victims.
    """

    job_id: JobId
    job_type: JobType = JobType.BATCH
    critical: bool = False
    preemptible: bool = True
    started_at: datetime | None = None
    last_checkpoint_at: datetime | None = None
    checkpoint_interval: timedelta | None = None
    progress: float | None = None
    hourly_price: Decimal | None = None

    def __post_init__(self) -> None:
        path = f"victim_info[{self.job_id}]"
        if self.started_at is not None:
            object.__setattr__(self, "started_at", ensure_utc(self.started_at, f"{path}.started_at"))
        if self.last_checkpoint_at is not None:
            object.__setattr__(
                self,
                "last_checkpoint_at",
                ensure_utc(self.last_checkpoint_at, f"{path}.last_checkpoint_at"),
            )
        if self.checkpoint_interval is not None and self.checkpoint_interval < timedelta(0):
            raise ValidationError(
                "checkpoint interval must not be negative (0: never checkpoints)",
                path=f"{path}.checkpoint_interval",
            )
        if self.progress is not None and not 0.0 <= self.progress <= 1.0:
            raise ValidationError(
                f"progress must be within [0, 1], got {self.progress}", path=f"{path}.progress"
            )
        if self.hourly_price is not None and self.hourly_price < 0:
            raise ValidationError("price must not be negative", path=f"{path}.hourly_price")

    @property
    def protected(self) -> str | None:
        """Why this workload may never be preempted, or None when it may."""
        if self.critical:
            return "critical job"
        if not self.preemptible:
            return "job is not preemptible (preemptible=false)"
        return None

    @classmethod
    def from_job(
        cls,
        job: Job,
        *,
        progress: float | None = None,
        hourly_price: Decimal | None = None,
    ) -> VictimInfo:
        """The facts a job record carries; progress and price come from the caller."""
        return cls(
            job_id=job.id,
            job_type=job.job_type,
            critical=job.priority is JobPriority.CRITICAL,
            preemptible=job.preemptible,
            started_at=job.actual_start,
            last_checkpoint_at=job.last_checkpoint_at,
            checkpoint_interval=job.checkpoint_interval,  # None: the type's default; 0: never checkpoints
            progress=progress,
            hourly_price=hourly_price,
        )


@dataclass(frozen=True, slots=True)
class PreemptionCost:
    """The cost of evicting one workload, with its breakdown (all money in the price's currency).

    ``lost_gpu_seconds`` is the accelerator work that will have to be redone; ``total`` is
    ``lost_work + restart_overhead + near_completion_penalty``.
    """

    lost_gpu_seconds: float
    lost_work: Decimal
    restart_overhead: Decimal
    near_completion_penalty: Decimal
    explanation: str = ""

    @property
    def total(self) -> Decimal:
        return self.lost_work + self.restart_overhead + self.near_completion_penalty

    def __str__(self) -> str:
        text = (
            f"cost {self.total:.2f} (lost {self.lost_gpu_seconds:.0f} GPU-s = {self.lost_work:.2f}, "
            f"restart {self.restart_overhead:.2f}, near-completion {self.near_completion_penalty:.2f})"
        )
        return f"{text}: {self.explanation}" if self.explanation else text


@runtime_checkable
class PreemptionCostModel(Protocol):
    def cost(self, victim: VictimInfo, usage: Mapping[FlavorResource, int], now: datetime) -> PreemptionCost:
        """What evicting ``victim`` (holding ``usage`` in milli-units per flavor/resource) costs at ``now``.

        Must be non-negative and deterministic: the preemption search compares and sums costs.
        """
        ...
