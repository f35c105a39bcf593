"""The cycle-latency model: what a real Kueue controller adds to the order of admissions.

budcore's admission cycle decides as Kueue's does, but on its own it is instantaneous: every
ClusterQueue admits as many workloads as fit, at the very instant something changed, and quota
comes back the moment a workload ends. A real Kueue controller is slower in four ways, which
together decide its time-to-admission (off by default; a scenario's ``policy.latency`` turns it
on, see :class:`LatencyModel`):

- **heads per ClusterQueue per cycle**: each cycle, each ClusterQueue offers only its head
  (Kueue's ``queues.Heads``: one workload per ClusterQueue); the cycle orders the heads across
  queues and admits, preempts for, or rejects each. With ``heads_per_cluster_queue: 1`` a
  ClusterQueue admits at most one workload per cycle, whatever its free quota;
- **cycle period**: cycles follow each other no faster than ``cycle_period``, plus ``head_cost``
  per head they processed (the API writes a cycle's decisions cost: 1 / the client's QPS each);
- **requeue delay**: a head that could not be admitted (no fit, or no preemption candidates) is
  *inadmissible* (BestEffortFIFO queues; a StrictFIFO head stays at the front). As in Kueue with
  ``SchedulingEquivalenceHashing``, the workloads of its queue with the same request, LocalQueue and
  priority are set aside with it, and so are newcomers of that kind. They come back when quota is
  released in their cohort, ``requeue_delay`` after the release (Kueue's requeue of inadmissible
  workloads). A head that issued preemptions, or that fitted when the cycle began but no longer did
  after the cycle's earlier admissions (Kueue's "no longer fits"), is back at once;
- **release delay**: a workload's quota is released ``release_delay`` after it finishes (and after
  a preemption victim stops), the time the job controller and Kueue's cache take to see it.

:class:`HeadQueues` holds what the model keeps outside the scheduler: each ClusterQueue's active
heap (Kueue's order: higher priority first, then earlier queue time) and its inadmissible set. The
engine (:class:`~budcore_simulator.engine.Simulation`) submits only the heads to the real
scheduler before each cycle and takes back those not admitted after it.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field

from budcore.domain.errors import ValidationError
from budcore.domain.job import Job


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """The cycle-latency model's knobs (see the module docstring); all delays in seconds."""

    heads_per_cluster_queue: int = 1
    cycle_period_s: float = 0.0
    head_cost_s: float = 0.0
    requeue_delay_s: float = 0.0
    release_delay_s: float = 0.0

    def __post_init__(self) -> None:
        if self.heads_per_cluster_queue < 1:
            raise ValidationError("must be at least 1", path="latency.heads_per_cluster_queue")
        for name in ("cycle_period_s", "head_cost_s", "requeue_delay_s", "release_delay_s"):
            if getattr(self, name) < 0:
                raise ValidationError("must not be negative", path=f"latency.{name.removesuffix('_s')}")

    def cycle_gap_s(self, heads: int) -> float:
        """How long after a cycle that processed ``heads`` heads the next one may start."""
        return max(self.cycle_period_s, heads * self.head_cost_s)


# A workload's place in its queue: higher priority first, then earlier queue time, then id.
OrderKey = tuple[int, float, str]


@dataclass(slots=True)
class Head:
    """A workload waiting outside the scheduler: the job (its priority resolved), its queue
    time, and its equivalence class (request, LocalQueue, priority)."""

    job: Job
    timestamp: float
    key: OrderKey
    shape: Hashable


@dataclass(slots=True)
class _Queue:
    strict: bool
    heap: list[tuple[OrderKey, str]] = field(default_factory=list)
    active: dict[str, Head] = field(default_factory=dict)
    inadmissible: dict[str, Head] = field(default_factory=dict)
    by_shape: dict[Hashable, set[str]] = field(default_factory=dict)  # active ids per shape
    set_aside: set[Hashable] = field(default_factory=set)  # shapes moved to inadmissible together
    # StrictFIFO: the key of a head that could not be admitted; the queue offers nothing until
    # quota is released in its cohort or a workload with a better key arrives (None: not blocked).
    blocked: OrderKey | None = None

    def push_active(self, head: Head) -> None:
        job_id = head.job.id
        self.active[job_id] = head
        self.by_shape.setdefault(head.shape, set()).add(job_id)
        heapq.heappush(self.heap, (head.key, job_id))

    def pop_active(self) -> Head | None:
        while self.heap:
            _, job_id = heapq.heappop(self.heap)
            head = self.active.pop(job_id, None)
            if head is None:
                continue  # moved away since it was pushed
            members = self.by_shape[head.shape]
            members.discard(job_id)
            if not members:
                del self.by_shape[head.shape]
            return head
        return None


class HeadQueues:
    """Each ClusterQueue's waiting workloads under the latency model: active and inadmissible.

    ``strict`` says which ClusterQueues are StrictFIFO, ``roots`` each ClusterQueue's cohort tree
    (its root's key): quota released anywhere in a tree requeues every inadmissible workload in it.
    """

    def __init__(self, strict: Mapping[str, bool], roots: Mapping[str, str]) -> None:
        self._queues = {name: _Queue(strict=flag) for name, flag in strict.items()}
        self._by_root: dict[str, list[str]] = {}
        for name, root in sorted(roots.items()):
            self._by_root.setdefault(root, []).append(name)
        self._where: dict[str, str] = {}  # job id -> ClusterQueue, while it waits here

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._where

    def __len__(self) -> int:
        return len(self._where)

    def push(self, cluster_queue: str, job: Job, timestamp: float) -> None:
        """A workload enters its queue (arrival, requeue after eviction): active, unless its kind
        was set aside as inadmissible (BestEffortFIFO), which it then joins."""
        queue = self._queues[cluster_queue]
        priority = job.priority_value
        head = Head(job, timestamp, (-priority, timestamp, job.id), (job.request, job.local_queue, priority))
        self._where[job.id] = cluster_queue
        if not queue.strict and head.shape in queue.set_aside:
            queue.inadmissible[job.id] = head
        else:
            queue.push_active(head)
            if queue.blocked is not None and head.key < queue.blocked:
                queue.blocked = None  # a new head: it may be admissible

    def pop_heads(self, per_queue: int) -> list[tuple[str, Head]]:
        """The next ``per_queue`` heads of every ClusterQueue with active workloads, by queue name;
        they leave the queues (hand each back with :meth:`back` or :meth:`set_aside`, or forget it
        with :meth:`done` once admitted)."""
        out: list[tuple[str, Head]] = []
        for name in sorted(n for n, q in self._queues.items() if q.active and q.blocked is None):
            queue = self._queues[name]
            for _ in range(per_queue):
                head = queue.pop_active()
                if head is None:
                    break
                out.append((name, head))
        return out

    def done(self, job_id: str) -> None:
        """A head that was admitted (or rejected): it no longer waits here."""
        self._where.pop(job_id, None)

    def back(self, cluster_queue: str, head: Head) -> None:
        """A head goes back to the front of its queue (immediate requeue)."""
        self._queues[cluster_queue].push_active(head)

    def set_aside(self, cluster_queue: str, head: Head) -> int:
        """A head that could not be admitted: inadmissible, with (BestEffortFIFO) every active
        workload of its kind; a StrictFIFO head stays at the front and blocks its queue. Returns how
        many others were set aside with it."""
        queue = self._queues[cluster_queue]
        if queue.strict:
            queue.push_active(head)
            queue.blocked = head.key
            return 0
        queue.inadmissible[head.job.id] = head
        queue.set_aside.add(head.shape)
        moved = 0
        for job_id in queue.by_shape.pop(head.shape, set()):
            queue.inadmissible[job_id] = queue.active.pop(job_id)
            moved += 1
        return moved

    def requeue(self, root: str) -> int:
        """Quota was released in cohort tree ``root``: its inadmissible workloads are active again."""
        moved = 0
        for name in self._by_root.get(root, ()):
            queue = self._queues[name]
            if queue.blocked is not None:
                queue.blocked = None
                moved += 1
            queue.set_aside.clear()
            for head in queue.inadmissible.values():
                queue.push_active(head)
            moved += len(queue.inadmissible)
            queue.inadmissible.clear()
        return moved

    def has_inadmissible(self, root: str) -> bool:
        """Whether some workload of cohort tree ``root`` is inadmissible."""
        return any(
            q.inadmissible or q.blocked is not None
            for q in (self._queues[n] for n in self._by_root.get(root, ()))
        )

    def has_active(self) -> bool:
        """Whether some queue has a head to offer (a blocked StrictFIFO queue has none)."""
        return any(q.active and q.blocked is None for q in self._queues.values())

    def active_count(self) -> int:
        return sum(len(q.active) for q in self._queues.values())

    def is_inadmissible(self, job_id: str) -> bool:
        """Whether the workload waits for quota to be released: set aside, or in a blocked queue."""
        cluster_queue = self._where.get(job_id)
        if cluster_queue is None:
            return False
        queue = self._queues[cluster_queue]
        return job_id in queue.inadmissible or queue.blocked is not None

    def waiting(self) -> Iterator[str]:
        """The ids of every workload waiting here."""
        return iter(self._where)
