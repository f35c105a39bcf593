"""Pending workloads, queued per ClusterQueue, kept ordered incrementally.

Kueue keeps one heap per ClusterQueue ordered by priority, then queue-ordering timestamp, and
parks workloads that cannot be admitted as *inadmissible* until something in their cohort
changes. budcore does the same with two refinements that keep a decision O(log n):

- Within a ClusterQueue, workloads are grouped by **shape** (identical request and accelerator
  constraint, from the same LocalQueue). Inside a cycle, if the first workload of a shape cannot be
  admitted, no later one of that shape can either: usage only grows during a cycle, and the gates
  that are not about quota (the LocalQueue's stopPolicy, the namespace selector) are the same for
  every workload of one LocalQueue. So the cycle skips the shape instead of re-checking each of its
  members.
- A ClusterQueue may rank its workloads by something other than arrival within a priority level
  (budcore's research orderings, :mod:`budcore.scheduling.ordering`: SJF, SRTF, LAS, EDF). The
  rank is part of the key and fixed while the workload waits, so the structure is unchanged;
  under Kueue's FIFO every rank is 0.
- A ClusterQueue whose candidates were all found inadmissible is **inactive** until quota is
  released somewhere in its cohort tree (Kueue's ``QueueInadmissibleWorkloads``) or a workload
  arrives that could change the verdict (a new shape, or a new head of its shape; see
  :meth:`PendingQueues.push`), so idle cycles cost nothing and a stream of arrivals into a
  saturated queue does not re-decide it at every arrival.

The cycle only reads this structure, through a :class:`CandidateCursor` per ClusterQueue; the
caller (:class:`budcore.scheduling.scheduler.Scheduler`) mutates it when it applies decisions.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sortedcontainers import SortedList

from budcore.domain.errors import AlreadyExistsError, NotFoundError, ValidationError
from budcore.domain.job import Job, ResourceRequest
from budcore.scheduling.assignment import ONE_POD, PODS
from budcore.scheduling.ordering import Attained, OrderingPolicy
from budcore.scheduling.queues import QueueConfig

OrderKey = tuple[int, float, float, str]  # (-priority, rank, timestamp, job id)
# (shape id, LocalQueue key). The id stands for the request (interned per PendingQueues) so sorted
# containers compare ints, not models.
Shape = tuple[int, tuple[str, str]]


@dataclass(slots=True, eq=False, frozen=True)
class PendingWorkload:
    job: Job
    cluster_queue: str
    local_queue: tuple[str, str]  # (namespace, name)
    priority: int  # effective priority for queue order (raised by aging); preemption uses the job's
    timestamp: float  # queue-ordering time, seconds since the epoch
    shape: Shape
    # A single-pod-set request's total per resource as a plain dict shared by its shape (the
    # cycle's fit checks read it on the hot path); None for a gang of several pod sets. For a
    # ClusterQueue that covers ``pods`` it includes the pods the flavor assignment charges (one
    # per pod), so the ceiling check and the skipping of requests dominated by a failed one see
    # that resource too.
    demand: dict[str, int] | None = None
    # Within a priority level, the queue's ordering's rank (0 under Kueue's FIFO; see
    # budcore.scheduling.ordering) goes before the time.
    rank: float = 0.0
    # queue order: priority, then rank, then time, then id (computed once)
    key: OrderKey = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", (-self.priority, self.rank, self.timestamp, self.job.id))


@dataclass(slots=True)
class ClusterQueuePending:
    """One ClusterQueue's pending workloads."""

    name: str
    by_shape: dict[Shape, SortedList] = field(default_factory=dict)  # shape -> keys
    # local queue -> sorted (head key, shape)
    lq_heads: dict[tuple[str, str], SortedList] = field(default_factory=dict)
    entries: dict[str, PendingWorkload] = field(default_factory=dict)
    # heads() as last built; dropped whenever a shape's head changes (PendingQueues._move_head)
    built_heads: list[PendingWorkload] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.entries)

    def shape_at(self, shape: Shape, index: int) -> PendingWorkload | None:
        keys = self.by_shape.get(shape)
        if keys is None or index >= len(keys):
            return None
        return self.entries[keys[index][-1]]

    def heads(self) -> list[PendingWorkload]:
        """The first workload of every shape (a shape's members all share its fate in a cycle),
        in queue order within each LocalQueue. The list is kept until a head changes: callers
        must not modify it."""
        built = self.built_heads
        if built is None:
            entries = self.entries
            built = self.built_heads = [
                entries[key[-1]] for heads in self.lq_heads.values() for key, _ in heads
            ]
        return built

    def ordered(self) -> Iterator[PendingWorkload]:
        """Every pending workload in queue order (priority, then rank, then time); O(n log n)."""
        for key in sorted(k for keys in self.by_shape.values() for k in keys):
            yield self.entries[key[-1]]


class PendingQueues:
    """All pending workloads, by ClusterQueue, plus which queues may have admissible work."""

    def __init__(self, config: QueueConfig, ordering: OrderingPolicy | None = None) -> None:
        self._config = config
        # budcore's research orderings (None: Kueue's FIFO everywhere), and what requeued jobs
        # attained before, as the driver noted it (note_attained), for the orderings that read it.
        self._ordering = None if ordering is None or ordering.is_fifo else ordering
        self._attained: dict[str, Attained] = {}
        self._queues: dict[str, ClusterQueuePending] = {}
        self._where: dict[str, str] = {}  # job id -> cluster queue
        self._shape_ids: dict[ResourceRequest, int] = {}
        self._demands: list[dict[str, int] | None] = []  # by shape id
        # The same with ``pods`` charged, by shape id, for ClusterQueues that cover ``pods``.
        self._pod_demands: dict[int, dict[str, int]] = {}
        self._counts_pods: dict[str, bool] = {}  # ClusterQueue -> covers ``pods``
        self.active: set[str] = set()

    @property
    def config(self) -> QueueConfig:
        return self._config

    def fork(self, cluster_queues: Collection[str] | None = None) -> PendingQueues:
        """An independent copy in O(n): the ETA forecaster runs cycles forward on it.

        Workloads are immutable and shared; every container that :meth:`push`, :meth:`remove` or
        :meth:`activate` changes is copied (the sorted key lists included). ``cluster_queues``
        keeps only those queues (a cohort tree: quota is never shared across trees).
        """
        other = PendingQueues(self._config, self._ordering)
        other._attained = dict(self._attained)
        other._queues = {
            name: ClusterQueuePending(
                name,
                by_shape={shape: keys.copy() for shape, keys in queue.by_shape.items()},
                lq_heads={lq: heads.copy() for lq, heads in queue.lq_heads.items()},
                entries=dict(queue.entries),
            )
            for name, queue in self._queues.items()
            if cluster_queues is None or name in cluster_queues
        }
        if cluster_queues is None:
            other._where = dict(self._where)
        else:
            other._where = {job: cq for job, cq in self._where.items() if cq in cluster_queues}
        other._shape_ids = dict(self._shape_ids)
        other._demands = list(self._demands)
        other._pod_demands = dict(self._pod_demands)
        other._counts_pods = dict(self._counts_pods)
        other.active = set(self.active) if cluster_queues is None else self.active & set(cluster_queues)
        return other

    @property
    def ordering(self) -> OrderingPolicy | None:
        """The research orderings in force (None: Kueue's FIFO in every ClusterQueue)."""
        return self._ordering

    def note_attained(self, job_id: str, attained: Attained) -> None:
        """What a job attained before it is queued again (after a preemption, an eviction, a
        failure): its rank under ``srtf`` and ``las`` when it is next pushed. Kept until
        :meth:`forget_attained` (its admission), so re-keying a waiting job keeps its rank."""
        if self._ordering is not None:
            self._attained[job_id] = attained

    def attained_of(self, job_id: str) -> Attained | None:
        """What the driver noted the job attained before (None: nothing noted)."""
        return self._attained.get(job_id)

    def forget_attained(self, job_id: str) -> None:
        self._attained.pop(job_id, None)

    def job_ids(self) -> list[str]:
        """Every pending job id."""
        return list(self._where)

    def reconfigure(self, config: QueueConfig) -> None:
        """Adopt a new configuration; every queue becomes active again."""
        old = self._counts_pods
        self._config = config
        self._counts_pods = {}
        for name, queue in self._queues.items():
            if old.get(name, False) != self._counts_pods_in(name):
                # Whether ``pods`` is charged changed: the demands its workloads carry are stale.
                for workload in queue.entries.values():
                    demand = self._demand(workload.shape[0], workload.job.request, name)
                    object.__setattr__(workload, "demand", demand)
        self.active = {cq for cq, q in self._queues.items() if q.entries}

    def _counts_pods_in(self, cluster_queue: str) -> bool:
        counts = self._counts_pods.get(cluster_queue)
        if counts is None:
            cq = self._config.cluster_queues.get(cluster_queue)
            counts = self._counts_pods[cluster_queue] = cq is not None and any(
                PODS in group.covered_resources for group in cq.resource_groups
            )
        return counts

    def _demand(self, request_id: int, request: ResourceRequest, cluster_queue: str) -> dict[str, int] | None:
        """The demand of a shape in a ClusterQueue (one dict shared by every workload of it)."""
        plain = self._demands[request_id]
        if plain is None or not self._counts_pods_in(cluster_queue):
            return plain
        demand = self._pod_demands.get(request_id)
        if demand is None:
            # Kueue sets (not adds) the pod set's ``pods`` request to its pod count.
            demand = self._pod_demands[request_id] = {**plain, PODS: request.pod_sets[0].count * ONE_POD}
        return demand

    def resolve(self, job: Job) -> tuple[str, tuple[str, str]]:
        """The ClusterQueue and LocalQueue key a job goes to (namespace = tenant)."""
        if not job.local_queue:
            raise ValidationError("job names no LocalQueue", path="local_queue")
        lq = self._config.local_queues.get((job.tenant, job.local_queue))
        if lq is None:
            raise NotFoundError("LocalQueue", f"{job.tenant}/{job.local_queue}")
        return lq.cluster_queue, lq.key

    def push(
        self, job: Job, *, priority: int | None = None, timestamp: float | None = None
    ) -> PendingWorkload:
        if job.id in self._where:
            raise AlreadyExistsError("pending workload", job.id)
        cq_name, lq_key = self.resolve(job)
        cq = self._config.cluster_queues[cq_name]
        request_id = self._shape_ids.get(job.request)
        if request_id is None:
            request_id = self._shape_ids[job.request] = len(self._shape_ids)
            request = job.request
            total = request.total
            # A gang, or a request that may be admitted with fewer pods (``minCount``), has no
            # single demand: the cycle's demand-based shortcuts leave it to the flavor assigner.
            single = len(request.pod_sets) == 1 and not request.partially_admissible
            self._demands.append({r: total[r] for r in total} if single else None)
        shape: Shape = (request_id, lq_key)
        ordering = self._ordering
        rank = 0.0 if ordering is None else ordering.rank(cq_name, job, self._attained.get(job.id))
        workload = PendingWorkload(
            job=job,
            cluster_queue=cq_name,
            local_queue=lq_key,
            priority=job.priority_value if priority is None else priority,
            timestamp=job.created_at.timestamp() if timestamp is None else timestamp,
            shape=shape,
            demand=self._demand(request_id, job.request, cq_name),
            rank=rank,
        )
        queue = self._queues.get(cq_name)
        if queue is None:
            queue = self._queues[cq_name] = ClusterQueuePending(cq_name)
        keys = queue.by_shape.get(shape)
        if keys is None:
            keys = queue.by_shape[shape] = SortedList()
        old_head = keys[0] if keys else None
        keys.add(workload.key)
        queue.entries[job.id] = workload
        self._where[job.id] = cq_name
        new_head = keys[0]
        self._move_head(queue, workload, old_head, new_head)
        if cq_name not in self.active and (old_head is None or new_head != old_head or cq.can_preempt):
            # An inactive queue was found inadmissible and nothing was released in its cohort
            # since. A newcomer that queues behind the head of its shape meets that head first:
            # the head fails again (same request and LocalQueue, no more quota), the shape is
            # dropped and the newcomer is never reached, so waking the queue would only repeat
            # the last verdict (under StrictFIFO the newcomer is behind the blocking head too). A
            # queue that may preempt is woken anyway: preemption guards depend on time (minimum
            # runtime, the budget's window), so a repeat may decide differently.
            self.active.add(cq_name)
        return workload

    def remove(self, job_id: str) -> PendingWorkload | None:
        cq_name = self._where.pop(job_id, None)
        if cq_name is None:
            return None
        queue = self._queues[cq_name]
        workload = queue.entries.pop(job_id)
        keys = queue.by_shape[workload.shape]
        old_head = keys[0]
        keys.remove(workload.key)
        new_head = keys[0] if keys else None
        if not keys:
            del queue.by_shape[workload.shape]
        self._move_head(queue, workload, old_head, new_head)
        return workload

    def _move_head(
        self,
        queue: ClusterQueuePending,
        workload: PendingWorkload,
        old: OrderKey | None,
        new: OrderKey | None,
    ) -> None:
        if old == new:
            return
        queue.built_heads = None
        lq = workload.shape[1]
        heads = queue.lq_heads.get(lq)
        if heads is None:
            heads = queue.lq_heads[lq] = SortedList()
        if old is not None:
            heads.discard((old, workload.shape))
        if new is not None:
            heads.add((new, workload.shape))
        if not heads:
            del queue.lq_heads[lq]

    def get(self, job_id: str) -> PendingWorkload | None:
        cq = self._where.get(job_id)
        return None if cq is None else self._queues[cq].entries.get(job_id)

    def queue(self, cluster_queue: str) -> ClusterQueuePending | None:
        return self._queues.get(cluster_queue)

    def queues(self) -> dict[str, ClusterQueuePending]:
        return self._queues

    def activate(self, cluster_queues: Iterable[str]) -> None:
        """Mark queues as possibly admissible again (quota was released in their cohort tree)."""
        queues = self._queues
        active = self.active
        for name in cluster_queues:
            if name not in active:
                queue = queues.get(name)
                if queue is not None and queue.entries:
                    active.add(name)

    def deactivate(self, cluster_queues: Iterable[str]) -> None:
        """Park queues whose candidates were all found inadmissible (a cycle's ``exhausted``)."""
        self.active.difference_update(cluster_queues)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._where


class CandidateCursor:
    """Walks one ClusterQueue's candidates in order during a cycle without mutating the queue.

    Candidates come from the shapes' heads (in queue order; under admission fair sharing, by their
    LocalQueue's decayed usage first) and from successors of heads admitted earlier in this cycle.
    The admission cycle (:mod:`budcore.scheduling.cycle`) tells it what became of each candidate
    (:meth:`admitted`, :meth:`failed`), which decides what it offers next.
    """

    __slots__ = (
        "_failed",
        "_heads",
        "_monotone",
        "_next_head",
        "_prefix",
        "_queue",
        "_seq",
        "_strict",
        "_succ",
        "stopped",
    )

    def __init__(
        self,
        queue: ClusterQueuePending,
        strict: bool,
        prefix: Mapping[tuple[str, str], float] | None,
        heads: list[PendingWorkload],
        monotone: bool = True,
    ) -> None:
        self._queue = queue
        self._strict = strict
        # Whether failing is monotone in demand: for a queue that never preempts, a request fits
        # iff some flavor has room for it (a flavor needing preemption never ends its search). A
        # preempting queue may stop at a flavor where a small request needs preemption while a
        # larger one passes it by and fits the next, so its failures prove nothing about others.
        self._monotone = monotone
        self._prefix = prefix
        self._seq = 0
        self._succ: list[tuple[tuple[Any, ...], int, Shape, int]] = []
        # Single-pod-set requests that failed this cycle, by accelerator type: fit is monotone in
        # demand, so a request at least as large in every resource cannot fit either.
        self._failed: list[tuple[tuple[str, ...], Mapping[str, int]]] = []
        self.stopped = False
        # Keys are unique (they end with the job id), so sorting never compares workloads.
        self._heads: list[tuple[tuple[Any, ...], PendingWorkload]] = sorted(
            [(w.key, w) for w in heads] if prefix is None else [(self._full_key(w), w) for w in heads]
        )
        self._next_head = 0

    def _full_key(self, workload: PendingWorkload) -> tuple[Any, ...]:
        if self._prefix is None:
            return workload.key
        return (self._prefix.get(workload.shape[1], 0.0), *workload.key)

    def next(self) -> tuple[PendingWorkload, int] | None:
        """The next candidate and its index within its shape, or None when exhausted."""
        if self.stopped:
            return None
        heads = self._heads
        i = self._next_head
        succ = self._succ
        if i < len(heads) and (not succ or heads[i][0] <= succ[0][0]):
            self._next_head = i + 1
            return heads[i][1], 0
        if succ:
            _, _, shape, index = heapq.heappop(succ)
            workload = self._queue.shape_at(shape, index)
            assert workload is not None
            return workload, index
        return None

    def admitted(self, workload: PendingWorkload, index: int) -> None:
        self.offer_successor(workload, index)

    def offer_successor(self, workload: PendingWorkload, index: int) -> None:
        """Make the next workload of ``workload``'s shape a candidate (after an admission; in a
        ClusterQueue with capacity bookings, after a failure too)."""
        successor = self._queue.shape_at(workload.shape, index + 1)
        if successor is not None:
            self._seq += 1
            heapq.heappush(self._succ, (self._full_key(successor), self._seq, workload.shape, index + 1))

    def failed(self, workload: PendingWorkload | None = None, quota_shortage: bool = False) -> None:
        """The candidate cannot be admitted: StrictFIFO blocks the queue; BestEffortFIFO drops its shape.

        ``quota_shortage`` marks a failure for lack of quota (not a stop policy or selector), which
        lets later, larger requests of the same queue be skipped in this cycle.
        """
        if self._strict:
            self.stopped = True
        elif self._monotone and quota_shortage and workload is not None and workload.demand is not None:
            # Only the minimal failed requests matter: one at least as large as the new one is
            # implied by it. (The new one is not itself dominated, or it would have been skipped.)
            accelerator, demand = workload.job.request.accelerators, workload.demand
            failed = self._failed
            if failed:
                self._failed = failed = [
                    (a, d) for a, d in failed if a != accelerator or not _at_least(d, demand)
                ]
            failed.append((accelerator, demand))

    def dominated(self, workload: PendingWorkload) -> bool:
        """Whether a request at most this large already failed for lack of quota in this cycle."""
        if not self._failed:
            return False
        demand = workload.demand
        if demand is None:
            return False
        wanted = workload.job.request.accelerators  # a set fails apart from each of its members
        for accelerator, smaller in self._failed:
            if accelerator == wanted and _at_least(demand, smaller):
                return True
        return False


def _at_least(demand: Mapping[str, int], smaller: Mapping[str, int]) -> bool:
    """Whether ``demand`` asks for at least ``smaller`` of every resource."""
    for resource, amount in smaller.items():  # noqa: SIM110 - a loop: no generator on a hot path
        if demand.get(resource, 0) < amount:
            return False
    return True
