"""Kueue's fair-sharing preemption: ClusterQueues visited by dominant resource share.

Mirrors kubernetes-sigs/kueue ``pkg/scheduler/preemption/fairsharing/`` (``strategy.go``: the
strategies; ``ordering.go``: which ClusterQueue gives up a workload next) and ``preemption.go``'s
``fairPreemptions`` with its two strategy passes (Apache-2.0). It replaces the classical cohort
attempts when fair sharing is enabled and a candidate lies outside the preemptor's ClusterQueue.

ClusterQueues are visited by decreasing dominant resource share; a workload of another queue may
go when strategy ``LessThanOrEqualToFinalShare`` (the preemptor's share after admission ≤ the
target's share after the eviction) holds or it is below the borrowWithinCohort threshold; if that
is not enough, ``LessThanInitialShare`` (preemptor's share after admission < the target's current
share) gets one more workload per queue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from budcore.scheduling.fair_sharing import dominant_resource_share
from budcore.scheduling.preemption.common import (
    Found,
    PreemptionContext,
    Target,
    fill_back,
    fits,
    is_borrowing,
)
from budcore.scheduling.quota import FR, QuotaNode, QuotaUsage
from budcore.scheduling.snapshot import AdmittedWorkload, PreemptionReason


class FairSharingStrategy(StrEnum):
    """Kueue ``fairSharing.preemptionStrategies`` (rules S2-a and S2-b of KEP-1714)."""

    LESS_THAN_OR_EQUAL_TO_FINAL_SHARE = "LessThanOrEqualToFinalShare"
    LESS_THAN_INITIAL_SHARE = "LessThanInitialShare"


# (preemptor's share after admission, target's share now, target's share after the eviction)
Strategy = Callable[[int, int, int], bool]

STRATEGIES: dict[FairSharingStrategy, Strategy] = {
    FairSharingStrategy.LESS_THAN_OR_EQUAL_TO_FINAL_SHARE: lambda new_preemptor, _old, new_target: (
        new_preemptor <= new_target
    ),
    FairSharingStrategy.LESS_THAN_INITIAL_SHARE: lambda new_preemptor, old_target, _new: (
        new_preemptor < old_target
    ),
}


@dataclass(slots=True)
class _CandidateQueue:
    name: str
    workloads: list[AdmittedWorkload]
    share: int


class _QueueHeap:
    """Kueue's ``cqHeapFromCandidates``: the ClusterQueue with the highest share pops first.

    Kueue's heap leaves ties unspecified; budcore breaks them by ClusterQueue name so decisions are
    reproducible.
    """

    def __init__(self) -> None:
        self._items: dict[str, _CandidateQueue] = {}

    def __len__(self) -> int:
        return len(self._items)

    def pop(self) -> _CandidateQueue:
        best = min(self._items.values(), key=lambda c: (-c.share, c.name))
        del self._items[best.name]
        return best

    def push_if_not_present(self, item: _CandidateQueue) -> None:
        self._items.setdefault(item.name, item)

    @classmethod
    def build(
        cls,
        ctx: PreemptionContext,
        usage: QuotaUsage,
        candidates: Sequence[AdmittedWorkload],
        first_only: bool,
    ) -> _QueueHeap:
        heap = cls()
        for w in candidates:
            entry = heap._items.get(w.cluster_queue)
            if entry is None:
                share = dominant_resource_share(
                    ctx.cq_node(w.cluster_queue), usage, None, ctx.policy.flavor_weights
                )[0]
                heap._items[w.cluster_queue] = _CandidateQueue(w.cluster_queue, [w], share)
            elif not first_only:
                entry.workloads.append(w)
        return heap


@dataclass(slots=True)
class _Walk:
    """The state of one fair-sharing walk: the usage as victims go, and the victims so far.

    ``nominated_share`` is Kueue's ``newNominatedShareValue``: the preemptor's ClusterQueue's share
    with the preemptor admitted, in the current usage.
    """

    ctx: PreemptionContext
    usage: QuotaUsage
    weights: Mapping[str, int]
    targets: list[Target]
    nominated_share: int = 0

    def share(self, node: QuotaNode, extra: Mapping[FR, int] | None = None) -> int:
        return dominant_resource_share(node, self.usage, extra, self.weights)[0]

    def evict(self, w: AdmittedWorkload, reason: PreemptionReason) -> bool:
        """Take ``w`` as a victim; whether the preemptor fits now."""
        self.usage.add(w.cluster_queue, w.usage, -1)
        self.targets.append((w, reason))
        return fits(self.usage, self.ctx.node, self.ctx.request, True)


def fair_sharing_applies(ctx: PreemptionContext, candidates: Sequence[AdmittedWorkload]) -> bool:
    """Whether Kueue runs ``fairPreemptions``: fair sharing on and a candidate in another queue."""
    own = ctx.cq.name
    return ctx.policy.fair_sharing and any(w.cluster_queue != own for w in candidates)


def fair_preemptions(
    ctx: PreemptionContext, candidates: Sequence[AdmittedWorkload], threshold: int | None
) -> Found | None:
    """Kueue ``fairPreemptions``: the first strategy's walk, the second's if that is not enough,
    then fill-back."""
    usage = ctx.snapshot.usage.overlay()
    strategies = [STRATEGIES[s] for s in ctx.policy.strategies]
    walk = _Walk(ctx, usage, ctx.policy.flavor_weights, [])
    heap = _QueueHeap.build(ctx, usage, candidates, first_only=False)
    walk.nominated_share = walk.share(ctx.node, ctx.request)
    retry: list[AdmittedWorkload] = []
    found = _run_first_strategy(walk, heap, strategies[0], threshold, retry)
    if not found and len(strategies) > 1:
        found = _run_second_strategy(walk, retry, strategies[1])
    if not found:
        return None
    removed = list(walk.targets)
    return Found(fill_back(ctx, usage, walk.targets, True), removed, True, threshold, "fair sharing")


def _run_first_strategy(
    walk: _Walk, heap: _QueueHeap, strategy: Strategy, threshold: int | None, retry: list[AdmittedWorkload]
) -> bool:
    """Kueue ``runFirstFsStrategy``: pop the queue of highest share, take at most one workload from
    it, push it back while it still has candidates; the workloads the strategy refused go to
    ``retry``. Whether the preemptor fits."""
    own = walk.ctx.cq.name
    while len(heap):
        entry = heap.pop()
        if entry.name == own:
            if _take_own(walk, heap, entry):
                return True
        elif _take_from_other(walk, heap, entry, strategy, threshold, retry):
            return True
    return False


def _take_own(walk: _Walk, heap: _QueueHeap, entry: _CandidateQueue) -> bool:
    """The preemptor's own queue gives up its first candidate (no strategy applies)."""
    ctx = walk.ctx
    if walk.evict(entry.workloads[0], PreemptionReason.IN_CLUSTER_QUEUE):
        return True
    walk.nominated_share = walk.share(ctx.node, ctx.request)
    entry.workloads = entry.workloads[1:]
    if entry.workloads:
        entry.share = walk.share(ctx.node)
        heap.push_if_not_present(entry)
    return False


def _take_from_other(
    walk: _Walk,
    heap: _QueueHeap,
    entry: _CandidateQueue,
    strategy: Strategy,
    threshold: int | None,
    retry: list[AdmittedWorkload],
) -> bool:
    """Another queue gives up its first workload the strategy (or the borrowWithinCohort
    threshold) allows; the ones refused before it go to ``retry``."""
    cand_node = walk.ctx.cq_node(entry.name)
    for i, w in enumerate(entry.workloads):
        below = threshold is not None and w.priority < threshold
        new_cand = walk.share(cand_node, {fr: -amount for fr, amount in w.usage.items()})
        by_strategy = strategy(walk.nominated_share, entry.share, new_cand)
        if below or by_strategy:
            reason = (
                PreemptionReason.IN_COHORT_FAIR_SHARING
                if by_strategy
                else PreemptionReason.IN_COHORT_RECLAIM_WHILE_BORROWING
            )
            if walk.evict(w, reason):
                return True
            entry.workloads = entry.workloads[i + 1 :]
            if entry.workloads and is_borrowing(walk.usage, cand_node, walk.ctx.frs):
                entry.share = new_cand
                heap.push_if_not_present(entry)
            return False
        retry.append(w)
    return False


def _run_second_strategy(walk: _Walk, retry: Sequence[AdmittedWorkload], strategy: Strategy) -> bool:
    """Kueue ``runSecondFsStrategy``: one more workload per queue among those the first strategy
    refused, queues by decreasing share. Whether the preemptor fits."""
    heap = _QueueHeap.build(walk.ctx, walk.usage, retry, first_only=True)
    while len(heap):
        entry = heap.pop()
        if strategy(walk.nominated_share, entry.share, 0) and walk.evict(
            entry.workloads[0], PreemptionReason.IN_COHORT_FAIR_SHARING
        ):
            return True
    return False
