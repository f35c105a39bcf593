"""Kueue's fair-sharing preemption: targets chosen down the cohort tree by dominant resource share.

Mirrors kubernetes-sigs/kueue ``pkg/scheduler/preemption/fairsharing/`` (``strategy.go``: the
strategies; ``ordering.go``: ``TargetClusterQueueOrdering``, which ClusterQueue gives up a
workload next, and the almost-lowest-common-ancestor comparison) and ``preemption.go``'s
``fairPreemptions`` with ``runFirstFsStrategy`` and ``runSecondFsStrategy`` (Apache-2.0). It
replaces the classical cohort attempts when fair sharing is enabled and a candidate lies outside
the preemptor's ClusterQueue.

**Which ClusterQueue next** (:class:`_Ordering`): from the root Cohort down, at each Cohort the
child (ClusterQueue or Cohort) with the highest share, among those that still borrow (a
ClusterQueue that stops borrowing is no target any more; a Cohort that does not borrow protects
everything below it, except the Cohorts above the preemptor, where its own ClusterQueue's
candidates are) and still have candidates below them.

**How a target is judged**: the preemptor and the target are compared at their *almost lowest
common ancestor*, the two children of the lowest Cohort they share (two ClusterQueues of one
Cohort compare themselves; a ClusterQueue of a sub-cohort is represented by that sub-cohort). The
first strategy (``LessThanOrEqualToFinalShare`` by default: the preemptor's node with the
preemptor admitted ≤ the target's node after the eviction) takes at most one workload of the
target per visit; the workloads it refuses are retried by the second (``LessThanInitialShare``:
the preemptor's node after admission < the target's node now), at most one per ClusterQueue.
Workloads of the preemptor's own ClusterQueue go unconditionally (``InClusterQueue``).

**Within nominal quota** (Kueue feature gate ``FairSharingPreemptWithinNominal``, Beta and on by
default at the Kueue version budcore follows): when the preemptor's ClusterQueue stays within its
nominal quota with the preemptor admitted, in every flavor-resource needing preemption, it takes
the targets the same ordering gives without comparing shares, with reason
``InCohortReclamation``: a queue can always reclaim its nominal quota from borrowers.

Kueue's fair-sharing preemption does not read ``borrowWithinCohort`` (preemption_fair_test.go,
"workloads under priority threshold not capriciously preempted"): only the shares decide.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from budcore.scheduling.fair_sharing import ZERO_SHARE, LendableCache, ShareKey, share_key
from budcore.scheduling.preemption.common import (
    Found,
    PreemptionContext,
    Target,
    fill_back,
    fits,
)
from budcore.scheduling.quota import FR, QuotaNode, QuotaUsage
from budcore.scheduling.snapshot import AdmittedWorkload, FairSharingStrategy, PreemptionReason

# (preemptor's share after admission, target's share now, target's share after the eviction),
# each as Kueue compares them (``CompareDRS``).
Strategy = Callable[[ShareKey, ShareKey, ShareKey], bool]

STRATEGIES: dict[FairSharingStrategy, Strategy] = {
    FairSharingStrategy.LESS_THAN_OR_EQUAL_TO_FINAL_SHARE: lambda new_preemptor, _old, new_target: (
        new_preemptor <= new_target
    ),
    FairSharingStrategy.LESS_THAN_INITIAL_SHARE: lambda new_preemptor, old_target, _new: (
        new_preemptor < old_target
    ),
}


def almost_lcas(preemptor: QuotaNode, target: QuotaNode) -> tuple[QuotaNode, QuotaNode]:
    """Kueue ``getAlmostLCA`` for both: the children of the lowest Cohort the two share on the
    paths to ``preemptor`` and to ``target`` (two ClusterQueues of the same tree, distinct)."""
    p_path = preemptor.path_from_root()
    t_path = target.path_from_root()
    i = 0
    while i < len(p_path) - 1 and i < len(t_path) - 1 and p_path[i + 1] is t_path[i + 1]:
        i += 1
    return p_path[i + 1], t_path[i + 1]


@dataclass(slots=True)
class _Walk:
    """The state of one fair-sharing walk: the usage as victims go, and the victims so far."""

    ctx: PreemptionContext
    usage: QuotaUsage
    weights: Mapping[str, int]
    targets: list[Target]
    lendable: LendableCache = field(default_factory=dict)

    def share(self, node: QuotaNode, extra: Mapping[FR, int] | None = None) -> ShareKey:
        return share_key(node, self.usage, extra, self.weights, self.lendable)

    def evict(self, w: AdmittedWorkload, reason: PreemptionReason) -> bool:
        """Take ``w`` as a victim; whether the preemptor fits now."""
        self.usage.add(w.cluster_queue, w.usage, -1)
        self.targets.append((w, reason))
        return fits(self.usage, self.ctx.node, self.ctx.request, True)


class _Ordering:
    """Kueue ``TargetClusterQueueOrdering``: the ClusterQueue that gives up a workload next.

    :meth:`next` walks down from the root Cohort, at each Cohort into the child with the highest
    share among those not pruned (ties: a ClusterQueue before a Cohort, as Kueue's
    ``nextTarget`` prefers, then the first by key, where Kueue's order is unspecified). A
    ClusterQueue is pruned once it has no candidate left or, unless it is the preemptor's, once it
    borrows nothing; a Cohort once it borrows nothing (unless the preemptor is below it) or
    nothing below it is a target. Shares are those of the walk's usage: each is kept until an
    eviction changes it (:meth:`evicted`: only the evicted workload's path).
    """

    __slots__ = ("_kids", "_on_path", "_pruned", "_shares", "_walk", "preemptor", "workloads")

    def __init__(self, walk: _Walk, candidates: Sequence[AdmittedWorkload], first_only: bool) -> None:
        ctx = walk.ctx
        self._walk = walk
        self.preemptor = ctx.node
        self.workloads: dict[str, deque[AdmittedWorkload]] = {}
        for w in candidates:
            queue = self.workloads.get(w.cluster_queue)
            if queue is None:
                self.workloads[w.cluster_queue] = deque((w,))
            elif not first_only:
                queue.append(w)
        self._on_path = {n.key for n in self.preemptor.path_from_root()}
        # Per Cohort, its children with candidates below them, in key order.
        kids: dict[str, dict[str, QuotaNode]] = {}
        for name in self.workloads:
            node: QuotaNode | None = ctx.cq_node(name)
            while node is not None and node.parent is not None:
                siblings = kids.setdefault(node.parent.key, {})
                if node.key in siblings:
                    break
                siblings[node.key] = node
                node = node.parent
        self._kids = {key: [nodes[k] for k in sorted(nodes)] for key, nodes in kids.items()}
        self._pruned: set[str] = set()
        self._shares: dict[str, ShareKey] = {}

    def next(self) -> QuotaNode | None:
        """The next target ClusterQueue, or None when no ClusterQueue can give up a workload."""
        own = self.preemptor
        if own.parent is None:  # no cohort: only the preemptor's own workloads
            return own if self.workloads.get(own.name) else None
        return self._next(own.root())

    def prune(self, node: QuotaNode) -> None:
        self._pruned.add(node.key)

    def evicted(self, cluster_queue: str) -> None:
        """Forget the shares an eviction from ``cluster_queue`` changed: those on its path."""
        node: QuotaNode | None = self._walk.ctx.cq_node(cluster_queue)
        while node is not None:
            self._shares.pop(node.key, None)
            node = node.parent

    def _share(self, node: QuotaNode) -> ShareKey:
        share = self._shares.get(node.key)
        if share is None:
            share = self._shares[node.key] = self._walk.share(node)
        return share

    def _next(self, cohort: QuotaNode) -> QuotaNode | None:
        while True:
            best: QuotaNode | None = None
            best_rank: tuple[ShareKey, bool] = (ZERO_SHARE, False)
            for child in self._kids.get(cohort.key, ()):
                if child.key in self._pruned:
                    continue
                if not child.is_cohort and not self.workloads.get(child.name):
                    self._pruned.add(child.key)
                    continue
                share = self._share(child)
                if share == ZERO_SHARE and child.key not in self._on_path:
                    self._pruned.add(child.key)  # borrows nothing: no target below it
                    continue
                rank = (share, not child.is_cohort)  # a ClusterQueue before a Cohort of equal share
                if best is None or rank > best_rank:
                    best, best_rank = child, rank
            if best is None or not best.is_cohort:
                return best
            target = self._next(best)
            if target is not None:
                return target
            self._pruned.add(best.key)


def fair_sharing_applies(ctx: PreemptionContext, candidates: Sequence[AdmittedWorkload]) -> bool:
    """Whether Kueue runs ``fairPreemptions``: fair sharing on and a candidate in another queue.

    (With only the preemptor's own workloads as candidates, Kueue's fair-sharing walk takes them
    in candidate order until the preemptor fits, which is what the classical attempt does.)
    """
    own = ctx.cq.name
    return ctx.policy.fair_sharing and any(w.cluster_queue != own for w in candidates)


def within_nominal(ctx: PreemptionContext, usage: QuotaUsage) -> bool:
    """Kueue ``FairSharingPreemptWithinNominal``: the preemptor's ClusterQueue stays within its
    nominal quota, the preemptor admitted, in every flavor-resource that needs preemption."""
    node = ctx.node
    request = ctx.request
    return all(usage.get(node, fr) + request.get(fr, 0) <= node.nominal.get(fr, 0) for fr in ctx.frs)


def fair_preemptions(ctx: PreemptionContext, candidates: Sequence[AdmittedWorkload]) -> Found | None:
    """Kueue ``fairPreemptions``: the first strategy's walk, the second's if that is not enough,
    then fill-back. ``candidates`` are in Kueue's candidate order."""
    usage = ctx.snapshot.usage.overlay()
    strategies = [STRATEGIES[s] for s in ctx.policy.strategies]
    walk = _Walk(ctx, usage, ctx.policy.flavor_weights, [])
    reclaim = within_nominal(ctx, usage)
    retry: list[AdmittedWorkload] = []
    found = _run_first_strategy(walk, _Ordering(walk, candidates, False), strategies[0], reclaim, retry)
    if not found and len(strategies) > 1 and retry:
        found = _run_second_strategy(walk, _Ordering(walk, retry, True), strategies[1])
    if not found:
        return None
    removed = list(walk.targets)
    label = "fair sharing, within nominal quota" if reclaim else "fair sharing"
    return Found(fill_back(ctx, usage, walk.targets, True), removed, True, None, label)


def _run_first_strategy(
    walk: _Walk, ordering: _Ordering, strategy: Strategy, reclaim: bool, retry: list[AdmittedWorkload]
) -> bool:
    """Kueue ``runFirstFsStrategy``: each target ClusterQueue the ordering gives up one workload —
    the preemptor's own and, within nominal quota, any other's unconditionally; otherwise the
    first the strategy allows, the ones refused before it going to ``retry``. Whether the
    preemptor fits."""
    ctx = walk.ctx
    own = ordering.preemptor
    while (target := ordering.next()) is not None:
        workloads = ordering.workloads[target.name]
        if target is own or reclaim:
            reason = PreemptionReason.IN_COHORT_RECLAMATION
            if target is own:
                reason = PreemptionReason.IN_CLUSTER_QUEUE
            if walk.evict(workloads.popleft(), reason):
                return True
            ordering.evicted(target.name)
            continue
        preemptor_node, target_node = almost_lcas(own, target)
        new_preemptor = walk.share(preemptor_node, ctx.request)
        old_target = walk.share(target_node)
        while workloads:
            w = workloads.popleft()
            new_target = walk.share(target_node, {fr: -amount for fr, amount in w.usage.items()})
            if strategy(new_preemptor, old_target, new_target):
                if walk.evict(w, PreemptionReason.IN_COHORT_FAIR_SHARING):
                    return True
                ordering.evicted(target.name)
                break  # the shares changed: the ordering picks the next target afresh
            retry.append(w)
    return False


def _run_second_strategy(walk: _Walk, ordering: _Ordering, strategy: Strategy) -> bool:
    """Kueue ``runSecondFsStrategy``: among the workloads the first strategy refused, each target
    ClusterQueue, in the ordering's order, gives up its first one if the strategy allows it (the
    strategy does not depend on the workload), at most one per ClusterQueue. Whether the
    preemptor fits."""
    ctx = walk.ctx
    own = ordering.preemptor
    while (target := ordering.next()) is not None:
        preemptor_node, target_node = almost_lcas(own, target)
        if strategy(walk.share(preemptor_node, ctx.request), walk.share(target_node), ZERO_SHARE):
            w = ordering.workloads[target.name].popleft()
            if walk.evict(w, PreemptionReason.IN_COHORT_FAIR_SHARING):
                return True
            ordering.evicted(target.name)
        ordering.prune(target)
    return False
