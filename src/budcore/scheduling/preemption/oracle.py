"""The preemption oracle: what the flavor assigner asks about a flavor that needs preemption.

Mirrors kubernetes-sigs/kueue v0.20 ``pkg/scheduler/preemption/preemption_oracle.go``
(Apache-2.0): flavor assignment (:mod:`budcore.scheduling.assignment`) asks, per flavor-resource,
whether preemption would find victims, and Kueue answers by running the preemptor's own search.
It is a module of its own because it answers a different question than :func:`find_victims`
(whether, not whom) many times per cycle, and so indexes the admitted workloads to answer fast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from budcore.domain.errors import NotFoundError
from budcore.domain.ids import JobId, TenantId
from budcore.ports.preemption_cost import VictimInfo
from budcore.scheduling.assignment import Possibility, Simulation, borrowing_height
from budcore.scheduling.pending import PendingWorkload
from budcore.scheduling.preemption.common import PreemptionContext, find_candidates_using, sort_candidates
from budcore.scheduling.preemption.guards import may_be_victim
from budcore.scheduling.preemption.policy import PreemptionPolicy
from budcore.scheduling.preemption.victims import get_targets
from budcore.scheduling.quota import FR, QuotaNode, QuotaUsage
from budcore.scheduling.snapshot import AdmissionSnapshot, AdmittedWorkload, NeedsPreemption

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _fits_without_all(
    usage: QuotaUsage, node: QuotaNode, fr: FR, amount: int, candidates: Sequence[AdmittedWorkload]
) -> bool:
    """Whether ``amount`` of ``fr`` would fit ``node`` (borrowing allowed) with every candidate gone.

    A necessary condition for any victim set (a subset of the candidates; availability never
    shrinks as usage is removed), checked in O(candidates) with one usage change per
    ClusterQueue before the search proper: most simulations that find nobody stop here.
    """
    freed: dict[str, int] = {}
    total = 0
    for w in candidates:
        used = w.usage.get(fr, 0)
        if used:
            freed[w.cluster_queue] = freed.get(w.cluster_queue, 0) + used
            total += used
    # Removing usage raises availability by at most the amount removed: often enough to say no.
    if amount > max(0, usage.available(node, fr)) + total:
        return False
    after = usage.overlay()
    for cluster_queue, used in freed.items():
        after.add(cluster_queue, {fr: used}, -1)
    return amount <= after.available(node, fr)


class _NoCandidates:
    """The oracle of a workload that never preempts others: no flavor ever has victims for it."""

    __slots__ = ("fair_sharing",)

    def __init__(self, fair_sharing: bool) -> None:
        self.fair_sharing = fair_sharing

    def __call__(self, fr: FR, amount: int) -> Simulation:
        return None


class WorkloadOracle:
    """:meth:`PreemptionOracle.simulate` bound to one pending workload: the ``simulate`` callable
    :func:`~budcore.scheduling.assignment.assign_flavors` takes. ``fair_sharing`` tells the flavor
    assigner whether fair sharing is on (Kueue hands ``enableFairSharing`` to its flavor assigner
    beside the oracle; it decides whether ``reclaimWithinCohort`` lets a queue preempt while
    borrowing)."""

    __slots__ = ("cluster_queue", "fair_sharing", "oracle", "priority", "rank", "timestamp")

    def __init__(
        self,
        oracle: PreemptionOracle,
        cluster_queue: str,
        priority: int,
        timestamp: float | None,
        rank: float = 0.0,
    ) -> None:
        self.oracle, self.cluster_queue, self.priority, self.timestamp = (
            oracle,
            cluster_queue,
            priority,
            timestamp,
        )
        self.rank = rank  # its LAS level where its queue preempts by level (las_preemption)
        self.fair_sharing = oracle.fair_sharing

    def __call__(self, fr: FR, amount: int) -> Simulation:
        return self.oracle.simulate(self.cluster_queue, self.priority, self.timestamp, fr, amount, self.rank)


class PreemptionOracle:
    """Kueue's ``PreemptionOracle.SimulatePreemption`` on an admission snapshot.

    Transcribes kubernetes-sigs/kueue v0.20 ``pkg/scheduler/preemption/preemption_oracle.go``
    (Apache-2.0): for one (flavor, resource) that needs preemption and the amount the workload
    would use of it, run the preemptor's own search (``getTargets``) with that flavor-resource
    alone — here the search :func:`find_victims` runs in ``kueue`` mode: the candidates
    withinClusterQueue and reclaimWithinCohort allow, in Kueue's order (by LocalQueue usage too
    when the snapshot carries ``local_queue_usage``: admission fair sharing), then the classic
    attempts (with borrowWithinCohort's threshold) or fair-sharing preemption — and answer (see
    :data:`~budcore.scheduling.assignment.Simulation`) None when it finds no victims
    (``NoCandidates``; the flavor assigner then uses the request's borrowing level as it is, which
    is what Kueue's oracle computes), else ``Reclaim`` when every victim is in another
    ClusterQueue (``Preempt`` otherwise) and the borrowing level the queue would still have once
    they are gone (``borrowAfterPreemptions``: ``FindHeightOfLowestSubtreeThatFits`` on the usage
    with the victims removed).

    The snapshot's usage is read at each question: a cycle hands its own overlay, so the answers
    account for what it admitted (and reserved) so far. The admitted workloads must not change
    while the oracle is in use: they are indexed by flavor-resource, ClusterQueue and priority as
    questions come, so a question costs the candidates of the queues involved, not the whole
    fleet, and a search that evicting every candidate could not satisfy stops before it starts.

    Workloads budcore's guards protect (critical, ``preemptible=False``: from ``victim_info``, or
    the critical priority value when there are no facts) are no candidates; the time-dependent
    guards (cost mode's minimum runtime, the preemption budget) are left to :func:`find_victims`,
    which decides the actual victims.
    """

    __slots__ = ("_by_fr", "_infos", "_now", "_policy", "_snapshot", "_unguarded")

    def __init__(
        self,
        snapshot: AdmissionSnapshot,
        policy: PreemptionPolicy | None = None,
        *,
        victim_info: Mapping[str, VictimInfo] | None = None,
        now: datetime | None = None,
    ) -> None:
        self._snapshot = snapshot
        self._policy = policy or PreemptionPolicy()
        self._infos: Mapping[str, VictimInfo] = victim_info or {}
        self._now = now or _EPOCH
        self._by_fr: dict[FR, dict[str, list[AdmittedWorkload]]] = {}
        self._unguarded: dict[str, bool] = {}  # job id -> may be a victim

    @property
    def fair_sharing(self) -> bool:
        """Whether the preemption policy is fair sharing (Kueue's ``enableFairSharing``)."""
        return self._policy.fair_sharing

    def for_workload(self, workload: PendingWorkload) -> WorkloadOracle | _NoCandidates:
        """The oracle for one pending workload, as :func:`assign_flavors` takes it.

        Preemption rights come from the job's base priority (aging orders the queue, never grants
        the right to preempt) and its queue-ordering time (``LowerOrNewerEqualPriority``); a job
        that never preempts others (``preempts_others=False``) finds no victims anywhere.
        """
        job = workload.job
        if not job.preempts_others:
            return _NoCandidates(self.fair_sharing)
        return WorkloadOracle(
            self, workload.cluster_queue, job.priority_value, workload.timestamp, workload.rank
        )

    def simulate(
        self,
        cluster_queue: str,
        priority: int,
        timestamp: float | None,
        fr: FR,
        amount: int,
        rank: float = 0.0,
    ) -> Simulation:
        """Kueue ``SimulatePreemption`` for a preemptor of ``priority`` in ``cluster_queue``
        asking for ``amount`` of ``fr`` (milli-units, with what its earlier pod sets take)."""
        snapshot = self._snapshot
        tree = snapshot.tree
        cq = tree.config.cluster_queues.get(cluster_queue)
        if cq is None or cluster_queue not in tree.cluster_queues:
            raise NotFoundError("ClusterQueue", cluster_queue)
        if not cq.can_preempt:
            return None
        node = tree.cluster_queues[cluster_queue]
        request = {fr: amount}
        needs = NeedsPreemption(
            JobId(""), TenantId(""), cluster_queue, {}, request, False, priority, "", timestamp or 0.0, rank
        )
        ctx = PreemptionContext(
            snapshot, needs, cq, node, frozenset((fr,)), request, self._policy, self._now, ()
        )
        usage = snapshot.usage
        candidates = find_candidates_using(ctx, timestamp, self._using(fr))
        # The bound first: the guards only remove candidates, and most questions end here.
        if not candidates or not _fits_without_all(usage, node, fr, amount, candidates):
            return None
        allowed = [w for w in candidates if self._may_go(w)]
        if len(allowed) < len(candidates):
            if not allowed or not _fits_without_all(usage, node, fr, amount, allowed):
                return None
            candidates = allowed
        sort_candidates(ctx, candidates)
        found, _ = get_targets(ctx, candidates, explain=False)
        if found is None or not found.targets:
            return None
        after = snapshot.usage.overlay()
        reclaim = True
        for w, _ in found.targets:
            after.add(w.cluster_queue, w.usage, -1)
            reclaim = reclaim and w.cluster_queue != cluster_queue
        height = borrowing_height(node, fr, after, amount)[0]
        return (Possibility.RECLAIM if reclaim else Possibility.PREEMPT), height

    def _may_go(self, w: AdmittedWorkload) -> bool:
        """Whether budcore's guards let ``w`` be a victim (memoized: facts may be costly to get)."""
        verdict = self._unguarded.get(w.job_id)
        if verdict is None:
            verdict = self._unguarded[w.job_id] = may_be_victim(w, self._infos.get(w.job_id))
        return verdict

    def _using(self, fr: FR) -> dict[str, list[AdmittedWorkload]]:
        """The admitted workloads that use ``fr``, by ClusterQueue and ascending priority (built on
        first use: the admitted set does not change while a cycle asks)."""
        index = self._by_fr.get(fr)
        if index is None:
            index = self._by_fr[fr] = {}
            for w in self._snapshot.admitted.values():
                if fr in w.usage:
                    index.setdefault(w.cluster_queue, []).append(w)
            for workloads in index.values():
                workloads.sort(key=_priority_of)
        return index


def _priority_of(w: AdmittedWorkload) -> int:
    return w.priority
