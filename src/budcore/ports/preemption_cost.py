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
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol, runtime_checkable

import attrs

from budcore.domain.errors import ValidationError
from budcore.domain.ids import JobId
from budcore.domain.job import Job, JobType
from budcore.domain.priority import JobPriority
from budcore.domain.timeutil import ensure_utc

FlavorResource = tuple[str, str]  # (flavor, resource), as in the quota tree


def _path(info: VictimInfo, name: str) -> str:
    return f"victim_info[{info.job_id}].{name}"


def _to_utc(value: datetime | None) -> datetime | None:
    """An aware datetime in UTC; a naive one is left for :func:`_aware` to reject with its path."""
    if value is None or value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        return value
    return value.astimezone(UTC)


def _aware(info: VictimInfo, attribute: attrs.Attribute[datetime | None], value: datetime | None) -> None:
    if value is not None and value.tzinfo is not UTC:  # only a naive datetime is left so (_to_utc)
        ensure_utc(value, _path(info, attribute.name))  # raises, naming the field


def _interval(
    info: VictimInfo, attribute: attrs.Attribute[timedelta | None], value: timedelta | None
) -> None:
    if value is not None and value < timedelta(0):
        raise ValidationError(
            "checkpoint interval must not be negative (0: never checkpoints)",
            path=_path(info, attribute.name),
        )


def _progress(info: VictimInfo, attribute: attrs.Attribute[float | None], value: float | None) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise ValidationError(
            f"progress must be within [0, 1], got {value}", path=_path(info, attribute.name)
        )


def _price(info: VictimInfo, attribute: attrs.Attribute[Decimal | None], value: Decimal | None) -> None:
    if value is not None and value < 0:
        raise ValidationError("price must not be negative", path=_path(info, attribute.name))


@attrs.frozen
class VictimInfo:
    """What the cost model and the safety guards need to know about a running workload.

    ``started_at`` is when it started running (None: admitted, not started — nothing to lose);
    ``last_checkpoint_at`` its last reported checkpoint; ``checkpoint_interval`` the interval it
    declared (None: the cost model's default for its job type; zero: it never checkpoints);
    ``progress`` its completion in
    [0, 1] when known; ``hourly_price`` what one accelerator of its flavor costs per hour (None:
    the cost model's price table). ``critical`` and ``preemptible=False`` jobs are never victims.

    A frozen ``attrs`` class: the datetimes are converted to UTC as they are set (a naive one is
    a :class:`ValidationError` naming the field and the job) and the other fields validated, so
    no instance exists that breaks these rules. Built once per candidate victim
    (:meth:`from_job` on the scheduler's path), it constructs a little faster than the frozen
    dataclass it replaces (which normalized in ``__post_init__`` with ``object.__setattr__``).
    """

    job_id: JobId
    job_type: JobType = JobType.BATCH
    critical: bool = False
    preemptible: bool = True
    started_at: datetime | None = attrs.field(default=None, converter=_to_utc, validator=_aware)
    last_checkpoint_at: datetime | None = attrs.field(default=None, converter=_to_utc, validator=_aware)
    checkpoint_interval: timedelta | None = attrs.field(default=None, validator=_interval)
    progress: float | None = attrs.field(default=None, validator=_progress)
    hourly_price: Decimal | None = attrs.field(default=None, validator=_price)

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
