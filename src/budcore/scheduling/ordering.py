"""Research orderings of a ClusterQueue's pending workloads: budcore's own, opt-in.

Kueue orders a ClusterQueue by priority, then queue-ordering time (FIFO within a level). The
scheduling literature orders by what is known about the job instead; budcore offers the classics
as a *rank* that replaces arrival order **within a priority level** (priority still wins, and the
queue-ordering time breaks ties, so equal ranks stay FIFO):

- ``sjf``: shortest job first, by the job's declared runtime (``Job.estimated_duration``; a job
  that declares none ranks as :attr:`OrderingPolicy.default_estimate_s`);
- ``srtf``: shortest remaining time first, the estimate minus the work already done, for a job
  requeued after a preemption (:class:`Attained`'s ``work_s``);
- ``las``: least attained service (Tiresias): the GPU-seconds the job already held, discretized
  into levels by ``las_thresholds_gpu_s`` as Tiresias's discretized LAS does (FIFO within a
  level), or continuous when no thresholds are given;
- ``edf``: earliest deadline first, by ``Job.deadline``; jobs without a deadline go after every
  job with one (FIFO among themselves);
- ``fifo``: Kueue's order (rank 0 for every job).

Why a static rank: a rank is computed once, when the workload enters its queue (arrival, or
requeue after a preemption, when what it attained changed), so the pending queues stay sorted
containers with O(log n) updates and the cycle's shape-skipping stays valid (within a shape,
workloads are still ordered by their key). Nothing re-ranks a waiting workload. By default a
*running* job is never preempted because its attained service grew: only Kueue's preemption rules
preempt, so ``las`` and ``srtf`` reorder requeued jobs only, and on fresh arrivals ``las`` equals
``fifo``. With ``las_preemption`` (and ``las_thresholds_gpu_s``) a ``las`` ClusterQueue preempts as
Tiresias does: a running job's level grows with the service it attains since its admission
(:class:`LasLevels`), and a waiting workload of a lower level may preempt it within its
ClusterQueue under Kueue's ``withinClusterQueue`` (as ``LowerOrNewerEqualPriority`` lets it
preempt newer workloads of its priority; see
:func:`~budcore.scheduling.preemption.common.find_candidates`).

Ranks are comparable only within one ordering, and the cycle compares the heads of the
ClusterQueues of one cohort tree by their keys: :func:`check_cohorts` requires the queues of a
cohort tree to share an ordering.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from math import inf

from budcore.domain.errors import ValidationError
from budcore.domain.job import Job

#: What a job that declares no runtime counts as under ``sjf`` and ``srtf`` (one hour).
DEFAULT_ESTIMATE_S = 3600.0


class Ordering(StrEnum):
    FIFO = "fifo"
    SJF = "sjf"
    SRTF = "srtf"
    LAS = "las"
    EDF = "edf"


#: The ordering names, for messages and ``--help``.
ORDERING_NAMES = tuple(o.value for o in Ordering)


def parse_ordering(name: str, path: str = "ordering") -> Ordering:
    """``name`` as an :class:`Ordering`; an unknown name is a ``ValidationError`` naming ``path``."""
    try:
        return Ordering(name)
    except ValueError:
        raise ValidationError(
            f"unknown ordering {name!r}; known: {', '.join(ORDERING_NAMES)}", path=path
        ) from None


@dataclass(frozen=True, slots=True)
class Attained:
    """What a job received before it was (re)queued: the driver knows it, the job may not.

    ``work_s`` is work done and kept (a preempted job restarts from its last checkpoint, so this is
    progress, not time held); ``gpu_s`` is the accelerator-seconds it held, lost work included (the
    service it attained, Tiresias's measure).
    """

    work_s: float = 0.0
    gpu_s: float = 0.0

    @classmethod
    def of(cls, job: Job) -> Attained:
        """What the job itself records: its ``accumulated_runtime`` (admitted time of earlier
        runs, kept by the job lifecycle) as work done and, times its accelerators, as service."""
        held = job.accumulated_runtime.total_seconds()
        return cls(work_s=held, gpu_s=held * accelerators(job))


def accelerators(job: Job) -> float:
    """The accelerators the job holds when admitted (at least one: a job without any attains
    service by its time alone, so ``las`` does not put CPU jobs first forever)."""
    milli = sum(job.request.total.accelerators().values())
    return max(milli / 1000, 1.0)


@dataclass(frozen=True)
class OrderingPolicy:
    """Which ordering each ClusterQueue uses: ``default`` for every queue not in ``cluster_queues``."""

    default: Ordering = Ordering.FIFO
    cluster_queues: Mapping[str, Ordering] = field(default_factory=dict)
    default_estimate_s: float = DEFAULT_ESTIMATE_S
    # Tiresias's discretized LAS: a job's level is the number of thresholds its attained
    # GPU-seconds reached; empty: continuous LAS (rank = attained GPU-seconds).
    las_thresholds_gpu_s: tuple[float, ...] = ()
    # Tiresias's preemption in ``las`` queues: a waiting workload may preempt a running one of its
    # priority whose level (attained service, growing while it runs) is higher than its own.
    las_preemption: bool = False

    def __post_init__(self) -> None:
        if not self.default_estimate_s > 0:
            raise ValidationError(
                f"must be positive, got {self.default_estimate_s}", path="ordering.default_estimate"
            )
        thresholds = self.las_thresholds_gpu_s
        if any(t <= 0 for t in thresholds) or list(thresholds) != sorted(set(thresholds)):
            raise ValidationError(
                f"must be positive and increasing, got {list(thresholds)}", path="ordering.las_thresholds"
            )
        if self.las_preemption and not thresholds:
            raise ValidationError(
                "las_preemption needs las_thresholds: with continuous LAS two jobs would preempt "
                "each other back and forth (Tiresias discretizes for that reason)",
                path="ordering.las_preemption",
            )

    def level(self, gpu_s: float) -> int:
        """The Tiresias level of ``gpu_s`` attained GPU-seconds: thresholds reached (see
        :func:`las_level`)."""
        return las_level(self.las_thresholds_gpu_s, gpu_s)

    def preempts_by_level(self, cluster_queue: str) -> bool:
        """Whether ``cluster_queue`` preempts by LAS level (``las`` with ``las_preemption``)."""
        return self.las_preemption and self.of(cluster_queue) is Ordering.LAS

    def of(self, cluster_queue: str) -> Ordering:
        return self.cluster_queues.get(cluster_queue, self.default)

    @property
    def is_fifo(self) -> bool:
        """Whether every queue keeps Kueue's order (nothing to rank)."""
        return self.default is Ordering.FIFO and all(o is Ordering.FIFO for o in self.cluster_queues.values())

    def needs_attained(self, cluster_queue: str) -> bool:
        """Whether the queue's rank depends on what a job attained (``srtf``, ``las``)."""
        return self.of(cluster_queue) in (Ordering.SRTF, Ordering.LAS)

    def estimate_s(self, job: Job) -> float:
        estimate = job.estimated_duration
        return self.default_estimate_s if estimate is None else estimate.total_seconds()

    def rank(self, cluster_queue: str, job: Job, attained: Attained | None = None) -> float:
        """The job's rank in ``cluster_queue`` (lower goes first within a priority level)."""
        ordering = self.of(cluster_queue)
        if ordering is Ordering.FIFO:
            return 0.0
        if ordering is Ordering.SJF:
            return self.estimate_s(job)
        if ordering is Ordering.EDF:
            return inf if job.deadline is None else job.deadline.timestamp()
        got = Attained.of(job) if attained is None else attained
        if ordering is Ordering.SRTF:
            return max(0.0, self.estimate_s(job) - got.work_s)
        if self.las_thresholds_gpu_s:
            return float(self.level(got.gpu_s))
        return got.gpu_s


@dataclass(frozen=True, slots=True)
class LasLevels:
    """What preemption needs to know of LAS levels at one instant (``now_s``, epoch seconds): the
    thresholds and the ClusterQueues that preempt by level (:meth:`OrderingPolicy.preempts_by_level`).

    An admitted workload attains service from its admission on (Kueue's execution time counts
    admitted time, as ``Job.accumulated_runtime`` does): ``accelerators`` GPU-seconds a second on
    top of what it had attained when admitted.
    """

    thresholds_gpu_s: tuple[float, ...]
    cluster_queues: frozenset[str]
    now_s: float

    def level(self, attained_gpu_s: float, accelerators: float, admitted_s: float) -> int:
        """The level of an admitted workload at ``now_s`` (:func:`las_level`)."""
        held = max(0.0, self.now_s - admitted_s) * accelerators
        return las_level(self.thresholds_gpu_s, attained_gpu_s + held)


#: GPU-seconds of tolerance at a threshold: service summed run by run (3,599.9999996 for an hour)
#: and the crossing instant :func:`next_crossing` computes must count as reaching it.
LEVEL_TOLERANCE_GPU_S = 1e-6


def las_level(thresholds_gpu_s: tuple[float, ...], gpu_s: float) -> int:
    """Thresholds reached by ``gpu_s``: one function for waiting and running workloads alike, so
    a workload is never a level lower while it waits than while it runs at the same service (it
    would then preempt, and be preempted by, its peers at the same instant, for ever)."""
    return bisect_right(thresholds_gpu_s, gpu_s + LEVEL_TOLERANCE_GPU_S)


def next_crossing(
    thresholds_gpu_s: tuple[float, ...],
    attained_gpu_s: float,
    accelerators: float,
    admitted_s: float,
    after_s: float,
) -> float | None:
    """The first instant after ``after_s`` at which an admitted workload (``attained_gpu_s`` when
    admitted at ``admitted_s``, attaining ``accelerators`` a second) reaches its next threshold;
    None when it is past the last one."""
    if accelerators <= 0:
        return None
    upcoming = las_level(thresholds_gpu_s, attained_gpu_s + max(0.0, after_s - admitted_s) * accelerators)
    if upcoming >= len(thresholds_gpu_s):
        return None
    return admitted_s + (thresholds_gpu_s[upcoming] - attained_gpu_s) / accelerators


def check_cohorts(policy: OrderingPolicy, roots: Mapping[str, str], path: str = "ordering") -> None:
    """Every cohort tree's ClusterQueues share one ordering (``roots``: ClusterQueue -> its tree's
    root), since the cycle compares their heads' ranks; otherwise a ``ValidationError``."""
    seen: dict[str, tuple[str, Ordering]] = {}
    for name in sorted(roots):
        root, ordering = roots[name], policy.of(name)
        first = seen.setdefault(root, (name, ordering))
        if first[1] is not ordering:
            raise ValidationError(
                f"ClusterQueues {first[0]} ({first[1].value}) and {name} ({ordering.value}) share a "
                "cohort tree but not an ordering: their heads compete by rank, which one ordering "
                "defines",
                path=path,
            )


def unknown_queues(policy: OrderingPolicy, known: Iterable[str]) -> list[str]:
    """ClusterQueues the policy names that the configuration does not have."""
    names = set(known)
    return sorted(name for name in policy.cluster_queues if name not in names)
