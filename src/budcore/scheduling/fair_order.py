"""Kueue's fair-sharing admission order: the tournament over each cohort tree.

The admission cycle (:mod:`budcore.scheduling.cycle`) takes its next candidate from a heap; with
fair sharing the order is not a key but Kueue's tournament (``pkg/scheduler/fair_sharing_iterator.go``),
which this module keeps: the cycle hands it the candidates it offers and the steps it needs
(assigning flavors, the usage a workload is decided against, whether it is declined without an
assignment, whether it would take quota) and reads the next candidate from :meth:`FairOrder.pop`.
It reads the cycle's state through :class:`CycleState`, never writes it.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from budcore.scheduling.assignment import Assignment
from budcore.scheduling.fair_sharing import LendableCache, borrows_in, share_key
from budcore.scheduling.pending import PendingWorkload
from budcore.scheduling.quota import QuotaNode, QuotaUsage
from budcore.scheduling.snapshot import AdmissionPolicy, CycleResult

__all__ = ["FAIR_HEAP_KEY", "CycleState", "Entry", "FairOrder"]

# A candidate on the cycle's heap: (order key, tie-break, epoch its assignment was computed at or
# -1, ClusterQueue, workload, index within its shape, assignment or None, nominated with the
# cycle's first heads: its assignment is made against the usage the cycle started with).
Entry = tuple[tuple[Any, ...], int, int, str, PendingWorkload, int, Assignment | None, bool]


class CycleState(Protocol):
    """What the tournament reads of the cycle: the heap of offered candidates (only an inbox
    here), the admission limit and the admissions so far, the per-tree epochs (an admission or a
    reservation bumps its tree's), the quota nodes and the policy (flavor weights)."""

    @property
    def heap(self) -> list[Entry]: ...

    @property
    def limit(self) -> int | None: ...

    @property
    def result(self) -> CycleResult: ...

    @property
    def epoch(self) -> dict[str, int]: ...

    @property
    def nodes(self) -> Mapping[str, QuotaNode]: ...

    @property
    def policy(self) -> AdmissionPolicy: ...


# With fair sharing the heap holds candidates unordered (:class:`FairOrder` orders them): every
# key is this one, so the cycle's ``assign`` never puts a candidate back behind another.
FAIR_HEAP_KEY: tuple[Any, ...] = ()

# A candidate's place in a Cohort's round of the tournament, for the child (ClusterQueue or
# Cohort) it represents: (the child borrows, in the candidate's flavor-resources, with the
# candidate admitted; the child's share with it admitted, two floats (fair_sharing.ShareKey);
# then the queue order: -priority, time, job id). Lower is better.
_FairKey = tuple[Any, ...]


class FairOrder:
    """Kueue's fair-sharing admission order: a tournament over each cohort tree.

    Kueue (``pkg/scheduler/fair_sharing_iterator.go``) takes the next workload of a cycle with
    fair sharing by a tournament: in each Cohort, every child (ClusterQueue or Cohort) enters the
    workload that won below it (a ClusterQueue its candidate), and the child wins whose own share,
    with that workload's usage added, is lowest. So at each level two nodes are compared by the
    share each would have, which is how Kueue keeps every subtree fair against its siblings. The
    comparison (:data:`_FairKey`) is, in order: a child that stays within its subtree quota in the
    workload's flavor-resources before one that borrows there (nominal first, per flavor:
    ``scheduler_fs_test.go``'s hierarchical nominal-first cases); the lower share (Kueue
    ``CompareDRS``, :func:`~budcore.scheduling.fair_sharing.share_key`); higher priority; earlier
    queue-ordering time (then the job id, where Kueue leaves the order unspecified). The root's
    winner goes next. Cohort trees share no quota, so across trees the queue order decides.

    The tournament is not an order of keys: what decides in a Cohort is the share of the child
    with *its winner's* usage, and which workload wins below depends on the others there
    (``scheduler_fs_test.go``, "hierarchical fair sharing schedule workload which wins
    tournament": e1 would leave Cohort B with a lower share than d1, but d1 beats e1 inside B, so
    B enters d1, and B with d1 beats C).

    Like Kueue's, the shares are those of the usage the cycle has reached with the usage of the
    flavor assignment the candidate got when it became a candidate (Kueue assigns flavors when it
    nominates the heads, and so does budcore's cycle, once: a candidate whose assignment no longer
    fits when it is picked is left pending, not assigned again). A candidate's key in a Cohort then
    changes only when that Cohort's usage or winner does, and both change only on the path of a
    decided candidate (an admission or a preemption reservation adds usage to its ClusterQueue and
    its ancestors): each Cohort keeps its children in a heap, and a pick updates the heaps on one
    path (and those on the paths of the candidates offered since), so a pick costs the depth of the
    tree, not its width.
    """

    __slots__ = (
        "assignment_for",
        "candidates",
        "cannot_fit",
        "changed",
        "cycle",
        "entrants",
        "heaps",
        "inbox",
        "lendable",
        "root_version",
        "takes_quota",
        "usage_for",
        "version",
        "winners",
    )

    def __init__(
        self,
        cycle: CycleState,
        assignment_for: Callable[[PendingWorkload, bool], Assignment],
        usage_for: Callable[[PendingWorkload], QuotaUsage],
        cannot_fit: Callable[[PendingWorkload, bool], bool],
        takes_quota: Callable[[PendingWorkload, Assignment], bool],
    ) -> None:
        # The cycle's state is read, never written; the cycle's own steps it needs are handed in.
        self.cycle = cycle
        self.assignment_for = assignment_for
        self.usage_for = usage_for
        self.cannot_fit = cannot_fit
        self.takes_quota = takes_quota
        self.candidates: dict[str, Entry] = {}  # ClusterQueue -> its candidate, flavors assigned
        self.inbox: list[Entry] = []  # offered, not yet assigned flavors
        # node key -> (key as that node, entry): the workload that won below the node
        self.entrants: dict[str, tuple[_FairKey, Entry]] = {}
        self.heaps: dict[str, list[tuple[_FairKey, str, int]]] = {}  # Cohort -> its children's entrants
        self.version: dict[str, int] = {}  # node key -> version of its entry in its parent's heap
        self.winners: list[tuple[Any, str, int]] = []  # every tree's winner: (queue order, root, version)
        self.root_version: dict[str, int] = {}
        self.lendable: LendableCache = {}
        self.changed: str | None = None  # the ClusterQueue of the last pick

    def pop(self) -> Entry | None:
        """The next candidate (see the class docstring), or None when there is none or enough were
        admitted. A candidate that cannot take quota is returned as soon as it is offered: it stays
        pending whatever its place, as in :meth:`budcore.scheduling.cycle._Cycle.assign`."""
        cycle = self.cycle
        if self.changed is not None:  # the last pick was decided: its path changed
            self._update(self.changed)
            self.changed = None
        heap = cycle.heap
        if heap:  # the candidates offered since the last pick (the heap is only an inbox here)
            self.inbox.extend(heap)
            heap.clear()
        limit = cycle.limit
        if limit is not None and len(cycle.result.admitted) >= limit:
            return None
        inbox = self.inbox
        while inbox:
            entry = inbox.pop()
            cq_name = entry[3]
            entry, takes_quota = self._evaluated(entry)
            if not takes_quota:
                return entry
            self.candidates[cq_name] = entry
            self._update(cq_name)
        winners = self.winners
        while winners:
            _, root_key, version = heapq.heappop(winners)
            if self.root_version.get(root_key) == version:
                entry = self.entrants[root_key][1]
                cq_name = entry[3]
                del self.candidates[cq_name]
                self.root_version[root_key] = version + 1
                self.changed = cq_name
                return entry
        return None

    def _evaluated(self, entry: Entry) -> tuple[Entry, bool]:
        """The candidate with its flavor assignment (made once, as the cycle's ``assign`` makes it),
        and whether it would take quota (admission, or a preemption reservation)."""
        cycle = self.cycle
        workload = entry[4]
        if entry[6] is None:
            if self.cannot_fit(workload, entry[7]):
                return entry, False  # above its ceiling: assign() decides it without assigning
            _, _, _, cq_name, _, index, _, start = entry
            epoch = 0 if start else cycle.epoch.get(cycle.nodes[cq_name].root_key, 0)
            assignment = self.assignment_for(workload, start)
            entry = (entry[0], entry[1], epoch, cq_name, workload, index, assignment, start)
        assert entry[6] is not None
        return entry, self.takes_quota(workload, entry[6])

    def _update(self, cq_name: str) -> None:
        """Recompute the entrants on the ClusterQueue's path, from it up to its root."""
        node = self.cycle.nodes[cq_name]
        entry = self.candidates.get(cq_name)
        entrants = self.entrants
        if entry is None:
            entrants.pop(node.key, None)
        else:
            entrants[node.key] = (self._key(node, entry), entry)
        version = self.version
        while node.parent is not None:
            parent = node.parent
            heap = self.heaps.setdefault(parent.key, [])
            v = version[node.key] = version.get(node.key, 0) + 1
            entrant = entrants.get(node.key)
            if entrant is not None:
                heapq.heappush(heap, (entrant[0], node.key, v))
            while heap and version.get(heap[0][1]) != heap[0][2]:
                heapq.heappop(heap)  # an entrant replaced since
            if heap:
                won = entrants[heap[0][1]][1]
                entrants[parent.key] = (self._key(parent, won), won)
            else:
                entrants.pop(parent.key, None)
            node = parent
        v = self.root_version[node.key] = self.root_version.get(node.key, 0) + 1
        entrant = entrants.get(node.key)
        if entrant is not None:
            heapq.heappush(self.winners, (entrant[1][4].key, node.key, v))

    def _key(self, node: QuotaNode, entry: Entry) -> _FairKey:
        """``entry``'s key as ``node`` (see :data:`_FairKey`), with its flavor assignment's usage."""
        workload = entry[4]
        assignment = entry[6]
        assert assignment is not None  # every candidate has its flavors assigned (_evaluated)
        usage = self.usage_for(workload)
        extra = assignment.usage
        share = share_key(node, usage, extra, self.cycle.policy.flavor_weights, self.lendable)
        return (borrows_in(node, usage, extra), *share, *workload.key)
