"""The machinery every preemption search shares: context, candidates, fits, minimal removal.

Mirrors kubernetes-sigs/kueue ``pkg/scheduler/preemption/common/`` (``ordering.go``:
``CandidatesOrdering``; ``preemption_policy.go``: which workloads a ClusterQueue's policy lets it
preempt) together with the helpers ``preemption.go`` shares between its strategies
(``findCandidates``, ``workloadFits``, ``cqIsBorrowing``,
``queueUnderNominalInResourcesNeedingPreemption``, ``canBorrowWithinCohort``,
``minimalPreemptions``, ``fillBackWorkloads``; Apache-2.0). The classic attempts, fair sharing,
cost mode and the oracle all build on these, so this module sits below them and imports none.

Every search works on a copy-on-write overlay of the snapshot's usage: the snapshot itself is
never changed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from budcore.ports.preemption_cost import PreemptionCost
from budcore.scheduling.queues import (
    BorrowWithinCohortPolicy,
    ClusterQueue,
    ReclaimWithinCohort,
    WithinClusterQueue,
)
from budcore.scheduling.quota import FR, QuotaNode, QuotaUsage, borrowing_after
from budcore.scheduling.snapshot import (
    AdmissionSnapshot,
    AdmittedWorkload,
    Alternative,
    NeedsPreemption,
    PreemptionReason,
)

if TYPE_CHECKING:  # policy.py imports the cost model, which builds on this module
    from budcore.scheduling.preemption.policy import PreemptionPolicy


@dataclass(slots=True)
class PreemptionContext:
    """One preemption question: the preemptor, its ClusterQueue, what it needs, the candidates' costs.

    ``frs`` are the flavor-resources needing preemption (Kueue ``resourcesRequiringPreemption``);
    ``evicting`` the workloads already being evicted; ``costs`` is filled per candidate as the
    guards let it through.
    """

    snapshot: AdmissionSnapshot
    needs: NeedsPreemption
    cq: ClusterQueue
    node: QuotaNode
    frs: frozenset[FR]  # flavor-resources needing preemption
    request: Mapping[FR, int]
    policy: PreemptionPolicy
    now: datetime
    evicting: Collection[str]
    costs: dict[str, PreemptionCost] = field(default_factory=dict)

    def cq_node(self, name: str) -> QuotaNode:
        return self.snapshot.tree.cluster_queues[name]


Target = tuple[AdmittedWorkload, PreemptionReason]


@dataclass(slots=True)
class Found:
    """What one of Kueue's searches found: the victims (after fill-back) and how it searched."""

    targets: list[Target]
    removed: list[Target]  # before fill-back: every victim the heuristic accepted on the way
    allow_borrowing: bool
    threshold: int | None
    label: str


def fits(usage: QuotaUsage, node: QuotaNode, request: Mapping[FR, int], allow_borrowing: bool) -> bool:
    """Kueue ``workloadFits`` for a fixed flavor assignment."""
    for fr, amount in request.items():
        if not allow_borrowing and borrowing_after(node, fr, usage, amount) > 0:
            return False
        if amount > usage.available(node, fr):
            return False
    return True


def is_borrowing(usage: QuotaUsage, node: QuotaNode, frs: Collection[FR]) -> bool:
    """Kueue ``cqIsBorrowing``: above its own quota in one of ``frs`` (never outside a cohort)."""
    if node.parent is None:
        return False
    return any(usage.get(node, fr) > node.subtree_quota.get(fr, 0) for fr in frs)


def under_nominal(usage: QuotaUsage, node: QuotaNode, frs: Collection[FR]) -> bool:
    """Kueue ``queueUnderNominalInResourcesNeedingPreemption``."""
    return all(usage.get(node, fr) < node.nominal.get(fr, 0) for fr in frs)


def borrow_threshold(cq: ClusterQueue, priority: int) -> int | None:
    """Kueue ``canBorrowWithinCohort``: the priority below which reclaiming still allows borrowing."""
    bwc = cq.preemption.borrow_within_cohort
    if bwc.policy is BorrowWithinCohortPolicy.NEVER:
        return None
    threshold = priority
    if bwc.max_priority_threshold is not None and bwc.max_priority_threshold < threshold:
        threshold = bwc.max_priority_threshold + 1
    return threshold


def ordering_key(ctx: PreemptionContext, w: AdmittedWorkload) -> tuple[int, int, int, float, str]:
    """Kueue ``CandidatesOrdering``: already-evicted first, other ClusterQueues before the
    preemptor's own, lower priority first, most recently admitted first, then by id."""
    return (
        0 if w.job_id in ctx.evicting else 1,
        1 if w.cluster_queue == ctx.needs.cluster_queue else 0,
        w.priority,
        -w.admitted_at.timestamp(),
        w.job_id,
    )


def frs_needing_preemption(usage: QuotaUsage, node: QuotaNode, request: Mapping[FR, int]) -> frozenset[FR]:
    """The flavor-resources of ``request`` that do not fit ``node`` in the current usage."""
    return frozenset(fr for fr, amount in request.items() if amount > usage.available(node, fr))


def find_candidates(ctx: PreemptionContext, preemptor_timestamp: float | None) -> list[AdmittedWorkload]:
    """Kueue ``findCandidates`` (before budcore's guards).

    With ``withinClusterQueue`` ≠ Never, admitted workloads of the preemptor's ClusterQueue of
    lower priority (``LowerOrNewerEqualPriority``: also equal priority queued after the
    preemptor); with ``reclaimWithinCohort`` ≠ Never, workloads of other ClusterQueues of the
    cohort that are *borrowing* one of the flavor-resources needing preemption (``LowerPriority``:
    strictly lower priority; ``Any``: any priority). Only workloads using a flavor-resource that
    needs preemption are candidates.
    """
    cq, node, frs, prio = ctx.cq, ctx.node, ctx.frs, ctx.needs.priority
    usage = ctx.snapshot.usage
    admitted = ctx.snapshot.admitted.values()
    out: list[AdmittedWorkload] = []
    within = cq.preemption.within_cluster_queue
    if within is not WithinClusterQueue.NEVER:
        same_prio = within is WithinClusterQueue.LOWER_OR_NEWER_EQUAL_PRIORITY
        for w in admitted:
            if w.cluster_queue != cq.name or w.priority > prio:
                continue
            if w.priority == prio and not (
                same_prio and preemptor_timestamp is not None and preemptor_timestamp < w.timestamp
            ):
                continue
            if any(fr in frs for fr in w.usage):
                out.append(w)
    reclaim = cq.preemption.reclaim_within_cohort
    if node.parent is not None and reclaim is not ReclaimWithinCohort.NEVER:
        members = set(node.root().members) - {cq.name}
        borrowing = {m for m in members if is_borrowing(usage, ctx.cq_node(m), frs)}
        only_lower = reclaim is ReclaimWithinCohort.LOWER_PRIORITY
        for w in admitted:
            if w.cluster_queue not in borrowing or (only_lower and w.priority >= prio):
                continue
            if any(fr in frs for fr in w.usage):
                out.append(w)
    return out


def find_candidates_using(
    ctx: PreemptionContext,
    preemptor_timestamp: float | None,
    using: Mapping[str, Sequence[AdmittedWorkload]],
) -> list[AdmittedWorkload]:
    """:func:`find_candidates` from an index: ``using`` holds, per ClusterQueue, the admitted
    workloads that use a flavor-resource of ``ctx.frs``, by ascending priority, so only the queues
    involved are visited and each stops at the first priority too high. Same result, up to order
    (callers sort by :func:`ordering_key`, a total order)."""
    cq, node, frs, prio = ctx.cq, ctx.node, ctx.frs, ctx.needs.priority
    out: list[AdmittedWorkload] = []
    within = cq.preemption.within_cluster_queue
    if within is not WithinClusterQueue.NEVER:
        same_prio = within is WithinClusterQueue.LOWER_OR_NEWER_EQUAL_PRIORITY
        for w in using.get(cq.name, ()):
            if w.priority >= prio:
                if w.priority > prio or not same_prio or preemptor_timestamp is None:
                    break
                if preemptor_timestamp < w.timestamp:
                    out.append(w)
                continue
            out.append(w)
    reclaim = cq.preemption.reclaim_within_cohort
    if node.parent is not None and reclaim is not ReclaimWithinCohort.NEVER:
        usage = ctx.snapshot.usage
        only_lower = reclaim is ReclaimWithinCohort.LOWER_PRIORITY
        for member in node.root().members:
            workloads = using.get(member)
            if not workloads or member == cq.name or not is_borrowing(usage, ctx.cq_node(member), frs):
                continue
            if not only_lower:
                out.extend(workloads)
                continue
            for w in workloads:
                if w.priority >= prio:
                    break
                out.append(w)
    return out


def fill_back(
    ctx: PreemptionContext, usage: QuotaUsage, targets: list[Target], allow_borrowing: bool
) -> list[Target]:
    """Kueue ``fillBackWorkloads``: add back every victim but the last, newest-removed first."""
    targets = list(targets)
    for i in range(len(targets) - 2, -1, -1):
        w = targets[i][0]
        usage.add(w.cluster_queue, w.usage)
        if fits(usage, ctx.node, ctx.request, allow_borrowing):
            targets[i] = targets[-1]
            targets.pop()
        else:
            usage.add(w.cluster_queue, w.usage, -1)
    return targets


def minimal_preemptions(
    ctx: PreemptionContext,
    candidates: Sequence[AdmittedWorkload],
    allow_borrowing: bool,
    threshold: int | None,
    label: str,
) -> Found | None:
    """Kueue ``minimalPreemptions``: remove candidates in order (skipping another ClusterQueue's
    workload once that queue no longer borrows) until the preemptor fits, then :func:`fill_back`.

    A victim at or above ``threshold`` (borrowWithinCohort) withdraws the permission to borrow.
    """
    usage = ctx.snapshot.usage.overlay()
    targets: list[Target] = []
    found = False
    for w in candidates:
        same = w.cluster_queue == ctx.cq.name
        reason = PreemptionReason.IN_CLUSTER_QUEUE
        if not same:
            if not is_borrowing(usage, ctx.cq_node(w.cluster_queue), ctx.frs):
                continue
            reason = PreemptionReason.IN_COHORT_RECLAMATION
            if threshold is not None:
                if w.priority >= threshold:
                    allow_borrowing = False
                else:
                    reason = PreemptionReason.IN_COHORT_RECLAIM_WHILE_BORROWING
        usage.add(w.cluster_queue, w.usage, -1)
        targets.append((w, reason))
        if fits(usage, ctx.node, ctx.request, allow_borrowing):
            found = True
            break
    if not found:
        return None
    removed = list(targets)
    return Found(fill_back(ctx, usage, targets, allow_borrowing), removed, allow_borrowing, threshold, label)


def alternative(ctx: PreemptionContext, label: str, found: Found | None, chosen: bool = False) -> Alternative:
    """How one of Kueue's attempts ended, as the decision lists it."""
    if found is None:
        return Alternative(
            label, (), None, False, "the preemptor does not fit even after evicting every candidate"
        )
    ids = tuple(w.job_id for w, _ in found.targets)
    total = sum((ctx.costs[w.job_id].total for w, _ in found.targets), Decimal(0))
    return Alternative(label, ids, total, chosen)
