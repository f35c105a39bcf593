"""What an admission cycle reads and what it decides: the snapshot and the decision types.

The cycle (:func:`budcore.scheduling.cycle.schedule`) is a pure function from an
:class:`AdmissionSnapshot` (plus the pending queues and the :class:`AdmissionPolicy`) to a
:class:`CycleResult` of typed decisions; preemption
(:func:`budcore.scheduling.preemption.find_victims`) turns each :class:`NeedsPreemption` into a
:class:`PreemptionDecision`. Both read these types and neither imports the other's module for
them, which is why they live here, below both: Kueue keeps its snapshot in ``pkg/cache`` and its
entry types in ``pkg/scheduler`` apart from ``pkg/scheduler/preemption`` for the same reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from budcore.domain.ids import JobId, TenantId
from budcore.domain.reservation import Reservation
from budcore.ports.preemption_cost import PreemptionCost
from budcore.scheduling.assignment import AcceleratorMatcher, PendingReason
from budcore.scheduling.fair_sharing import LocalQueueUsage
from budcore.scheduling.ordering import LasLevels, OrderingPolicy
from budcore.scheduling.quota import FR, QuotaTree, QuotaUsage


@dataclass(frozen=True, slots=True)
class AdmittedWorkload:
    """A workload holding quota: what the snapshot knows about it (also preemption candidates)."""

    job_id: JobId
    tenant: TenantId
    cluster_queue: str
    local_queue: tuple[str, str]
    usage: Mapping[FR, int]
    flavors: Mapping[str, Mapping[str, str]]
    priority: int
    admitted_at: datetime
    timestamp: float  # queue-ordering time it had while pending
    pod_counts: tuple[int, ...] | None = None  # admitted with fewer pods (Admit.pod_counts)
    # LAS (budcore.scheduling.ordering.LasLevels): the GPU-seconds it had attained when admitted,
    # and the accelerators it attains service with from then on.
    attained_gpu_s: float = 0.0
    accelerators: float = 0.0


class AdmittedWorkloads(dict[str, AdmittedWorkload]):
    """The admitted workloads by job id (a ``dict``) with an index by ClusterQueue.

    The victim search (:func:`~budcore.scheduling.preemption.common.find_candidates`) looks at the
    workloads of the preemptor's ClusterQueue and of the borrowing ClusterQueues of its cohort;
    scanning every admitted workload for them made each search cost the whole fleet (Kueue's
    large-scale configuration, 1,000 ClusterQueues, spent most of its time there). The index
    holds, per ClusterQueue, its workloads in the dict's order (admission order) and each
    workload's place in that order, so a search visits only the queues involved and puts them
    back in the dict's order. It is built when first read and dropped by any change to the dict
    (each way of changing it is overridden to drop it), so a run that never searches for victims
    pays nothing but the drop, and one that does rebuilds it once per batch of changes (a cycle's
    admissions, a release). A plain copy (``dict(workloads)``) is a plain dict without the index,
    which the search scans as before.
    """

    __slots__ = ("_by_cq", "_place")

    def __init__(self, items: Mapping[str, AdmittedWorkload] | None = None) -> None:
        super().__init__()
        self._by_cq: dict[str, dict[str, AdmittedWorkload]] | None = None
        self._place: dict[str, int] = {}  # job id -> place in the dict's order, with _by_cq
        if items:
            dict.update(self, items)

    def __reduce__(self) -> tuple[type[AdmittedWorkloads], tuple[dict[str, AdmittedWorkload]]]:
        return (AdmittedWorkloads, (dict(self),))

    def _index(self) -> dict[str, dict[str, AdmittedWorkload]]:
        by_cq = self._by_cq
        if by_cq is None:
            by_cq = {}
            place: dict[str, int] = {}
            for i, (key, workload) in enumerate(self.items()):
                place[key] = i
                members = by_cq.get(workload.cluster_queue)
                if members is None:
                    members = by_cq[workload.cluster_queue] = {}
                members[key] = workload
            self._by_cq, self._place = by_cq, place
        return by_cq

    def in_cluster_queue(self, cluster_queue: str) -> Mapping[str, AdmittedWorkload]:
        """The ClusterQueue's admitted workloads by job id, in the dict's order."""
        return self._index().get(cluster_queue, _EMPTY)

    def place(self, job_id: str) -> int:
        """A number that orders the job ids as the dict does (until the dict changes)."""
        self._index()
        return self._place[job_id]

    # Every change drops the index (dict's own methods, called directly, do not go through
    # __setitem__, so each is overridden).
    def __setitem__(self, key: str, workload: AdmittedWorkload) -> None:
        self._by_cq = None
        dict.__setitem__(self, key, workload)

    def __delitem__(self, key: str) -> None:
        self._by_cq = None
        dict.__delitem__(self, key)

    def pop(self, key: str, *default: Any) -> Any:
        self._by_cq = None
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[str, AdmittedWorkload]:
        self._by_cq = None
        return dict.popitem(self)

    def clear(self) -> None:
        self._by_cq = None
        dict.clear(self)

    def setdefault(self, key: str, default: AdmittedWorkload) -> AdmittedWorkload:
        self._by_cq = None
        return dict.setdefault(self, key, default)

    def update(self, *args: Any, **kwargs: AdmittedWorkload) -> None:
        self._by_cq = None
        dict.update(self, *args, **kwargs)

    def __ior__(self, other: Any) -> AdmittedWorkloads:  # type: ignore[override,misc]
        self._by_cq = None
        dict.update(self, other)
        return self


_EMPTY: Mapping[str, AdmittedWorkload] = {}


@dataclass(frozen=True, slots=True)
class BookedRoom:
    """What a capacity booking holds in its ClusterQueue at a cycle's instant
    (:mod:`budcore.scheduling.reservations`): ``held`` (milli-units of its flavor and resource) is
    the booked room its owner does not use, which the workloads it does not serve see as used."""

    reservation: Reservation
    held: int

    @property
    def fr(self) -> FR:
        return (self.reservation.flavor, self.reservation.resource)


@dataclass(frozen=True, slots=True)
class AdmissionSnapshot:
    """What a cycle decides on: the quota tree, its usage and the admitted workloads.

    ``no_preemption_candidates`` names pending workloads whose last preemption decision found no
    victims (``DecisionStatus.IMPOSSIBLE``; the caller drops a name once it is decided otherwise,
    admitted or withdrawn). The cycle cannot know that before the preemption is resolved, so a
    preemptor reserves its room (:func:`~budcore.scheduling.quota.preemption_reservation`) the
    first time, as Kueue does for one with targets (``cq.AddUsage``) and for one without while its
    ClusterQueue cannot always reclaim. After that Kueue parks it as inadmissible under
    BestEffortFIFO (``RequeueReasonPreemptionNoCandidates`` is no immediate requeue) and it holds
    nothing; under StrictFIFO it stays the head and keeps reserving unless ``reclaimWithinCohort``
    is Any (``preemption.CanAlwaysReclaim``). A name here gets exactly that. Without it, a
    preemptor that can never preempt would hold its room every cycle its queue is looked at and
    starve the lower-priority workloads behind it.

    ``local_queue_usage`` is, for admission fair sharing, each LocalQueue's decayed usage at the
    cycle's ``now`` (:meth:`LocalQueueUsage.value <budcore.scheduling.fair_sharing.LocalQueueUsage.value>`;
    a LocalQueue not listed counts 0). Reading the decay advances it, so the caller reads it before
    the cycle (:meth:`Scheduler.snapshot <budcore.scheduling.scheduler.Scheduler.snapshot>` does,
    for the LocalQueues the cycle may order) and the cycle only looks it up. None: no LocalQueue
    usage is tracked, and ClusterQueues with ``admission_fair_sharing`` keep the plain queue order.
    Preemption reads it too: a snapshot handed to
    :func:`~budcore.scheduling.preemption.find_victims` with it orders the victims of such a
    ClusterQueue by their LocalQueue's usage (Kueue's ``LocalQueueFSUsage``; the snapshots the
    Scheduler hands it list every LocalQueue of those ClusterQueues).

    ``bookings`` are, by ClusterQueue, the capacity bookings that hold room at the cycle's instant
    (:meth:`ReservationBook.rooms <budcore.scheduling.reservations.ReservationBook.rooms>`): a
    workload sees the room of each booking it may not use
    (:func:`~budcore.scheduling.reservations.may_use`) as used.
    """

    tree: QuotaTree
    usage: QuotaUsage
    admitted: Mapping[str, AdmittedWorkload] = field(default_factory=dict)
    no_preemption_candidates: AbstractSet[str] = frozenset()
    local_queue_usage: Mapping[tuple[str, str], float] | None = None
    bookings: Mapping[str, tuple[BookedRoom, ...]] = field(default_factory=dict)
    las: LasLevels | None = None  # ClusterQueues that preempt by LAS level, at the cycle's instant


@dataclass(frozen=True, slots=True)
class AdmissionPolicy:
    """Knobs of the admission cycle.

    ``fair_sharing`` switches cross-queue ordering to dominant resource share (Kueue
    ``fairSharing.enable``); ``flavor_weights`` (milli) make borrowing some flavors count more;
    ``namespace_labels`` are the labels of each tenant's namespace, matched against a ClusterQueue's
    ``namespaceSelector`` (every namespace also carries ``kubernetes.io/metadata.name: <name>``, as
    Kubernetes sets it; an explicit value here wins); ``max_admissions`` bounds one cycle's
    admissions (None: no bound). ``local_queue_usage`` tracks each LocalQueue's decayed usage for
    admission fair sharing (the :class:`~budcore.scheduling.scheduler.Scheduler` records admissions
    and releases in it and hands the cycle its values in the snapshot; the cycle never touches it).
    ``ordering`` is budcore's own: research orderings within a priority level (SJF, SRTF, LAS,
    EDF; :mod:`budcore.scheduling.ordering`), per ClusterQueue; None keeps Kueue's FIFO.
    """

    fair_sharing: bool = False
    flavor_weights: Mapping[str, int] = field(default_factory=dict)
    matcher: AcceleratorMatcher = field(default_factory=AcceleratorMatcher)
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    max_admissions: int | None = None
    local_queue_usage: LocalQueueUsage | None = None
    # budcore's research orderings within a priority level (None: Kueue's FIFO); the pending
    # queues rank by it (budcore.scheduling.ordering), the cycle only compares the keys.
    ordering: OrderingPolicy | None = None


@dataclass(frozen=True, slots=True)
class Admit:
    job_id: JobId
    tenant: TenantId
    cluster_queue: str
    local_queue: tuple[str, str]
    flavors: dict[str, dict[str, str]]  # pod set -> resource -> flavor
    usage: dict[FR, int]
    borrows: bool
    priority: int
    # Partial admission (``PodSet.min_count``): the pods admitted per pod set, in the request's
    # order, when fewer than asked (Kueue's ``podSetAssignments[].count``); None: every pod.
    pod_counts: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class NeedsPreemption:
    job_id: JobId
    tenant: TenantId
    cluster_queue: str
    flavors: dict[str, dict[str, str]]
    usage: dict[FR, int]
    borrows: bool
    priority: int
    why: PendingReason | str | object
    timestamp: float = 0.0  # the preemptor's queue-ordering time (LowerOrNewerEqualPriority needs it)
    rank: float = 0.0  # its rank in its queue (its LAS level where the queue preempts by level)

    @property
    def reason(self) -> str:
        return str(self.why)


@dataclass(frozen=True, slots=True)
class StaysPending:
    job_id: JobId
    tenant: TenantId
    cluster_queue: str
    why: PendingReason | str | object  # rendered lazily by str(): most reasons are never read

    @property
    def reason(self) -> str:
        return str(self.why)


@dataclass(frozen=True, slots=True)
class Evict:
    job_id: JobId
    tenant: TenantId
    cluster_queue: str
    reason: str


Decision = Admit | NeedsPreemption | StaysPending | Evict


@dataclass(slots=True)
class CycleResult:
    admitted: list[Admit] = field(default_factory=list)
    needs_preemption: list[NeedsPreemption] = field(default_factory=list)
    pending: list[StaysPending] = field(default_factory=list)
    evictions: list[Evict] = field(default_factory=list)
    # ClusterQueues with nothing admissible left: inactive until something changes in their cohort.
    exhausted: set[str] = field(default_factory=set)
    # What each NeedsPreemption held for the rest of the cycle (Kueue's resourcesToReserve), by
    # job id: candidates considered after it that failed may have failed only because of it, which
    # the caller needs to know when the preemption turns out impossible (see AdmissionSnapshot).
    reserved: dict[str, dict[FR, int]] = field(default_factory=dict)
    # Workloads whose assignment needs preemption but that can have no victims (their queue or their
    # job never preempts): the caller remembers them as it remembers preemptors found without
    # victims, so a BestEffortFIFO queue does not hold room for them again (see AdmissionSnapshot).
    no_victims: list[str] = field(default_factory=list)
    # One PreemptionDecision per NeedsPreemption above, in the same order (filled by the
    # Scheduler, which resolves them with budcore.scheduling.preemption.find_victims).
    preemptions: list[PreemptionDecision] = field(default_factory=list)
    considered: int = 0  # candidates given a decision
    skipped: int = 0  # candidates skipped: a no-larger request of their queue already failed

    @property
    def decisions(self) -> list[Decision]:
        return [*self.admitted, *self.needs_preemption, *self.pending, *self.evictions]


class FairSharingStrategy(StrEnum):
    """Kueue ``fairSharing.preemptionStrategies`` (rules S2-a and S2-b of KEP-1714). Here, beside
    :class:`PreemptionMode`, because the policy that names it and the fair-sharing search that
    applies it both build on the snapshot types (the policy importing the search made an import
    cycle through the search's shared machinery)."""

    LESS_THAN_OR_EQUAL_TO_FINAL_SHARE = "LessThanOrEqualToFinalShare"
    LESS_THAN_INITIAL_SHARE = "LessThanInitialShare"


class PreemptionMode(StrEnum):
    KUEUE = "kueue"  # Kueue's heuristic, exactly: the reference behaviour
    COST = "cost"  # minimum total preemption cost among the sets Kueue's policies allow


class PreemptionReason(StrEnum):
    """Kueue's preemption reasons (the ``Preempted`` condition's reason)."""

    IN_CLUSTER_QUEUE = "InClusterQueue"
    IN_COHORT_RECLAMATION = "InCohortReclamation"
    IN_COHORT_FAIR_SHARING = "InCohortFairSharing"
    IN_COHORT_RECLAIM_WHILE_BORROWING = "InCohortReclaimWhileBorrowing"


class DecisionStatus(StrEnum):
    PREEMPT = "preempt"  # evict the victims, then admit the preemptor
    FITS = "fits"  # nothing to evict: the preemptor fits in the snapshot as it is
    IMPOSSIBLE = "impossible"  # no allowed set of victims makes room
    # Victims were found, but a preemption decided before it in the same cycle claimed one of them
    # or the room it needs (Kueue's skipped entry: "overlapping preemption targets", "no longer
    # fits"); it is retried next cycle.
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Victim:
    """One workload to evict, with why it may go and what evicting it costs."""

    job_id: JobId
    tenant: TenantId
    cluster_queue: str
    priority: int
    usage: Mapping[FR, int]
    reason: PreemptionReason
    why: str
    cost: PreemptionCost

    def __str__(self) -> str:
        where = f"ClusterQueue {self.cluster_queue}, priority {self.priority}"
        return f"{self.job_id} ({where}): {self.why}; {self.cost}"


@dataclass(frozen=True, slots=True)
class Alternative:
    """A victim set (or an attempt that found none) considered on the way to the decision."""

    label: str
    victims: tuple[JobId, ...]
    total_cost: Decimal | None
    chosen: bool
    note: str = ""

    def __str__(self) -> str:
        who = ", ".join(self.victims) if self.victims else "none"
        cost = f", cost {self.total_cost:.2f}" if self.total_cost is not None else ""
        mark = " [chosen]" if self.chosen else ""
        note = f" ({self.note})" if self.note else ""
        return f"{self.label}: [{who}]{cost}{mark}{note}"


@dataclass(frozen=True, slots=True)
class PreemptionDecision:
    """The outcome of :func:`find_victims` for one preemptor.

    ``borrowing_allowed`` is whether the preemptor may borrow from the cohort once the victims are
    gone (Kueue's ``allowBorrowing`` for the chosen attempt).
    """

    preemptor: JobId
    cluster_queue: str
    mode: PreemptionMode
    status: DecisionStatus
    victims: tuple[Victim, ...]
    reason: str
    alternatives: tuple[Alternative, ...] = ()
    excluded: tuple[str, ...] = ()  # candidates ruled out by a guard, with the guard
    borrowing_allowed: bool = True
    grace_period: timedelta = timedelta(seconds=30)

    @property
    def possible(self) -> bool:
        return self.status is DecisionStatus.PREEMPT

    @property
    def victim_ids(self) -> tuple[JobId, ...]:
        return tuple(v.job_id for v in self.victims)

    @property
    def total_cost(self) -> Decimal:
        return sum((v.cost.total for v in self.victims), Decimal(0))

    @property
    def lost_gpu_seconds(self) -> float:
        return sum(v.cost.lost_gpu_seconds for v in self.victims)

    def explain(self) -> str:
        """Everything a person needs: the outcome, each victim and why, the alternatives."""
        head = f"preemption for {self.preemptor} in ClusterQueue {self.cluster_queue} ({self.mode})"
        lines = [f"{head}: {self.reason}"]
        lines.extend(f"  evict {v}" for v in self.victims)
        lines.extend(f"  considered {a}" for a in self.alternatives)
        lines.extend(f"  excluded {e}" for e in self.excluded)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.explain()
