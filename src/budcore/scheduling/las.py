"""Tiresias's demotions: when an admitted workload of a LAS-preempting queue reaches a level.

With ``OrderingPolicy.las_preemption`` a ``las`` ClusterQueue preempts as Tiresias does: a waiting
workload may preempt a running one of its priority whose level is higher than its own
(:func:`~budcore.scheduling.preemption.common.find_candidates`). A running workload's level grows
with the service it attains, with no event of its own: between two events a queue that found no
victims stays parked (and its preemptors are remembered as having none), so the instant a running
workload crosses a threshold must itself wake the queue. This keeps those instants, one per
admitted workload (the next threshold it will reach), in a heap; the :class:`Scheduler` asks for
a cycle at the earliest (``next_wakeup``) and, at a cycle, re-activates the queues whose workloads
crossed.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field

from budcore.scheduling.ordering import next_crossing
from budcore.scheduling.snapshot import AdmittedWorkload


@dataclass
class Demotions:
    """Next threshold crossings of admitted workloads, earliest first (epoch seconds)."""

    thresholds_gpu_s: tuple[float, ...]
    # (instant, job id, its admission instant): an entry whose workload was released, or admitted
    # again since, no longer matches the admitted workload and is dropped when met.
    heap: list[tuple[float, str, float]] = field(default_factory=list)

    def watch(self, w: AdmittedWorkload, after_s: float) -> None:
        """Remember when ``w`` next reaches a threshold after ``after_s`` (if it ever does)."""
        admitted_s = w.admitted_at.timestamp()
        at = next_crossing(self.thresholds_gpu_s, w.attained_gpu_s, w.accelerators, admitted_s, after_s)
        if at is not None:
            heapq.heappush(self.heap, (at, w.job_id, admitted_s))

    def due(self, now_s: float, admitted: Mapping[str, AdmittedWorkload]) -> set[str]:
        """The ClusterQueues whose admitted workloads reached a level by ``now_s``; each of them is
        watched again for its next threshold."""
        crossed: set[str] = set()
        heap = self.heap
        while heap and heap[0][0] <= now_s:
            _, job_id, admitted_s = heapq.heappop(heap)
            w = admitted.get(job_id)
            if w is None or w.admitted_at.timestamp() != admitted_s:
                continue
            crossed.add(w.cluster_queue)
            self.watch(w, now_s)
        return crossed

    def next_s(self, admitted: Mapping[str, AdmittedWorkload]) -> float | None:
        """The earliest crossing of a workload still admitted as it was (stale entries dropped)."""
        heap = self.heap
        while heap:
            _, job_id, admitted_s = heap[0]
            w = admitted.get(job_id)
            if w is not None and w.admitted_at.timestamp() == admitted_s:
                return heap[0][0]
            heapq.heappop(heap)
        return None

    def fork(self) -> Demotions:
        return Demotions(self.thresholds_gpu_s, list(self.heap))
