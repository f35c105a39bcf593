"""The machinery every preemption search shares: context, candidates, fits, minimal removal.

Mirrors kubernetes-sigs/kueue ``pkg/scheduler/preemption/common/`` (``ordering.go``:
``CandidatesOrdering``, with its admission-fair-sharing step; ``preemption_policy.go``: which
workloads a ClusterQueue's policy lets it preempt) together with the helpers ``preemption.go``
shares between its strategies
(``findCandidates``, ``workloadFits``, ``cqIsBorrowing``,
``queueUnderNominalInResourcesNeedingPreemption``, ``canBorrowWithinCohort``,
``minimalPreemptions``, ``fillBackWorkloads``; Apache-2.0). The classic attempts, fair sharing,
cost mode and the oracle all build on these, so this module sits below them and imports none.

Every search works on a copy-on-write overlay of the snapshot's usage: the snapshot itself is
never changed.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING

from budcore.ports.preemption_cost import PreemptionCost
from budcore.scheduling.ordering import LasLevels
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
    AdmittedWorkloads,
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
    guards let it through. ``ranks`` is each candidate's place in Kueue's order when admission
    fair sharing makes that order depend on the candidate set (:func:`sort_candidates` sets it;
    None: :func:`ordering_key` needs no ranks).
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
    ranks: dict[str, int] | None = None

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


# Kueue ``CandidatesOrdering`` as a sort key: (evicted first, other ClusterQueues first, priority,
# most recently admitted first, id); with admission fair sharing deciding, (rank, 0, 0, 0.0, "").
OrderingKey = tuple[int, int, float, float, str]


def ordering_key(ctx: PreemptionContext, w: AdmittedWorkload) -> OrderingKey:
    """Kueue ``CandidatesOrdering`` as a key: already-evicted first, other ClusterQueues before the
    preemptor's own, (admission fair sharing) the LocalQueue of higher usage first, lower priority
    first, most recently admitted first, then by id.

    Without admission fair sharing deciding (``ctx.ranks`` None) it is Kueue's steps, one per
    element. With it, Kueue's comparison is no key (see :func:`sort_candidates`), so the key is
    the candidate's place in the order :func:`sort_candidates` computed, first, and nothing else
    varies: a caller sorting a subset of the candidates (cost mode) keeps their relative order.
    """
    ranks = ctx.ranks
    if ranks is not None:
        return (ranks[w.job_id], 0, 0, 0.0, "")
    return _kueue_key(ctx, w)


def _kueue_key(ctx: PreemptionContext, w: AdmittedWorkload) -> OrderingKey:
    """Kueue's steps but the LocalQueue-usage one: the whole order without admission fair sharing,
    and the order across ClusterQueues with it (the usage step compares one ClusterQueue's).

    In a ClusterQueue that preempts by LAS level (budcore's ``las_preemption``), a higher level
    goes first within a priority, as Tiresias preempts from its lowest-priority queue: the level
    is a fraction below 1 taken off the priority, so priorities keep Kueue's order."""
    priority: float = w.priority
    las = ctx.snapshot.las
    if las is not None and w.cluster_queue in las.cluster_queues:
        level = las.level(w.attained_gpu_s, w.accelerators, w.admitted_at.timestamp())
        priority -= level / (len(las.thresholds_gpu_s) + 1)
    return (
        0 if w.job_id in ctx.evicting else 1,
        1 if w.cluster_queue == ctx.needs.cluster_queue else 0,
        priority,
        -w.admitted_at.timestamp(),
        w.job_id,
    )


def local_queue_fs_usage(snapshot: AdmissionSnapshot, w: AdmittedWorkload) -> float | None:
    """Kueue's ``LocalQueueFSUsage`` of an admitted workload: its LocalQueue's admission-fair-sharing
    usage divided by the LocalQueue's ``fairSharing.weight``; None when it has none.

    Kueue fills it in the scheduler's snapshot (``snapshotClusterQueue``) for every workload of a
    ClusterQueue whose ``admissionScope`` is ``UsageBasedAdmissionFairSharing``, when admission
    fair sharing is configured, with the value its admission order uses
    (``Info.ComputeLocalQueueFSUsage`` → ``admissionfairsharing.CalculateUsage``: the
    resource-weighted sum of the LocalQueue's decayed consumption and pending entry penalty, over
    the LocalQueue's weight; a missing LocalQueue weighs 1, a weight ≤ 0 gives +Inf). budcore's
    decayed usage, already resource-weighted, is ``snapshot.local_queue_usage`` (None: admission
    fair sharing is not tracked, Kueue's ``afsEnabled`` off); it is divided by the weight exactly
    as the cycle's admission order divides it (``_Cycle._usage_prefix``), so a LocalQueue ranks
    the same way for admission and for preemption. budcore has no entry penalty: its usage is
    integrated continuously, not sampled.
    """
    usage = snapshot.local_queue_usage
    if usage is None:
        return None
    config = snapshot.tree.config
    cq = config.cluster_queues.get(w.cluster_queue)
    if cq is None or not cq.admission_fair_sharing:
        return None
    lq = config.local_queues.get(w.local_queue)
    weight = (lq.fair_sharing.weight / 1000.0) if lq is not None else 1.0
    value = usage.get(w.local_queue, 0.0)
    return value / weight if weight > 0 else math.inf


def sort_candidates(ctx: PreemptionContext, candidates: list[AdmittedWorkload]) -> None:
    """Sort ``candidates`` in place in Kueue's ``CandidatesOrdering``, with its admission-fair-sharing
    step, and record the order in ``ctx.ranks`` when that step applies.

    Kueue compares two candidates by LocalQueue usage only when both are in the same ClusterQueue,
    in different LocalQueues, and both have a ``LocalQueueFSUsage``; otherwise it goes on to
    priority. The higher usage goes first: ``cmp.Compare(*b.LocalQueueFSUsage,
    *a.LocalQueueFSUsage)``, as ``TestCandidatesOrdering`` expects, although the comment above
    ``CandidatesOrdering`` says "lower" (its ``!=`` guard compares pointers, which differ for any
    two workloads, so equal usages fall through to priority). Within one ClusterQueue that is a
    key (workloads of one LocalQueue share its usage, so they tie and fall to priority). Across
    ClusterQueues it is not even transitive: with ``a`` (LocalQueue usage 10, priority 5) and
    ``b`` (usage 1, priority 1) in ClusterQueue X and ``c`` (priority 3) in Y, Kueue says
    ``a < b`` (usage), ``b < c`` and ``c < a`` (priority). Kueue sorts such a cycle with
    ``slices.SortFunc`` over candidates gathered from Go maps, so its order is then not defined
    at all. This happens only among other ClusterQueues' candidates (the preemptor's own are one
    ClusterQueue, and step 1 keeps the two groups apart).

    So: each ClusterQueue's candidates are sorted by Kueue's comparison restricted to it (a key),
    and the ClusterQueues' sequences are merged, taking at each step the head first by Kueue's
    comparison across ClusterQueues (evicted, own queue, priority, admission time, id). Whenever
    Kueue's comparison is a consistent order on the candidates, this is that order (the least
    remaining candidate is always a head); when it is not, every pair of one ClusterQueue still
    keeps Kueue's order, and the result depends on the candidate set only, not on the order the
    candidates came in, so the preemption oracle and :func:`find_victims` agree.

    Without admission fair sharing, or when no ClusterQueue has candidates in LocalQueues of
    different usage, the step never decides: a plain key sort, ``ctx.ranks`` None.
    """
    ctx.ranks = None
    if ctx.snapshot.local_queue_usage is not None:
        order = _fair_sharing_order(ctx, candidates)
        if order is not None:
            candidates[:] = order
            ctx.ranks = {w.job_id: i for i, w in enumerate(order)}
            return
    candidates.sort(key=lambda w: _kueue_key(ctx, w))


def _fair_sharing_order(
    ctx: PreemptionContext, candidates: Sequence[AdmittedWorkload]
) -> list[AdmittedWorkload] | None:
    """The merged order :func:`sort_candidates` describes; None when the usage step never decides."""
    by_cq: dict[str, list[AdmittedWorkload]] = {}
    for w in candidates:
        by_cq.setdefault(w.cluster_queue, []).append(w)
    usages = {name: _usages(ctx.snapshot, workloads) for name, workloads in by_cq.items()}
    if not any(usages.values()):
        return None
    runs: list[list[tuple[OrderingKey, AdmittedWorkload]]] = []
    for name, workloads in by_cq.items():
        values = usages[name]
        keyed = [(_kueue_key(ctx, w), w) for w in workloads]
        keyed.sort(key=partial(_within, values) if values else _first)
        runs.append(keyed)
    if len(runs) == 1:  # one ClusterQueue (often the preemptor's own): nothing to merge
        return [w for _, w in runs[0]]
    # The merge: the head first by Kueue's comparison across ClusterQueues (no usage step).
    heads = [(run[0][0], i, 0) for i, run in enumerate(runs)]
    heapq.heapify(heads)
    order: list[AdmittedWorkload] = []
    while heads:
        _, i, j = heapq.heappop(heads)
        run = runs[i]
        order.append(run[j][1])
        if j + 1 < len(run):
            heapq.heappush(heads, (run[j + 1][0], i, j + 1))
    return order


def _first(keyed: tuple[OrderingKey, AdmittedWorkload]) -> OrderingKey:
    """The key of a ClusterQueue whose LocalQueues' usages never decide: Kueue's other steps."""
    return keyed[0]


def _within(
    usages: Mapping[tuple[str, str], float], keyed: tuple[OrderingKey, AdmittedWorkload]
) -> tuple[int, int, float, float, float, str]:
    """Kueue's comparison within one ClusterQueue as a key: the workload's key with its LocalQueue's
    usage, higher first, between "other ClusterQueues first" and priority."""
    (evicted, own, priority, admitted, job_id), w = keyed
    return evicted, own, -usages[w.local_queue], priority, admitted, job_id


def _usages(
    snapshot: AdmissionSnapshot, workloads: Sequence[AdmittedWorkload]
) -> dict[tuple[str, str], float]:
    """The ``LocalQueueFSUsage`` of each LocalQueue of ``workloads`` (all of one ClusterQueue, so
    all have one or none has) when the usage step can decide between two of them — they are in
    LocalQueues of different usage — else empty."""
    values: dict[tuple[str, str], float] = {}
    for w in workloads:
        if w.local_queue not in values:
            value = local_queue_fs_usage(snapshot, w)
            if value is None:
                return {}
            values[w.local_queue] = value
    return values if len(set(values.values())) > 1 else {}


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
    everyone = ctx.snapshot.admitted
    # The Scheduler's admitted workloads are indexed by ClusterQueue (AdmittedWorkloads): only
    # the queues involved are visited, and the reclaim part is put back in the dict's order.
    index = everyone if isinstance(everyone, AdmittedWorkloads) else None
    admitted = everyone.values()
    out: list[AdmittedWorkload] = []
    within = cq.preemption.within_cluster_queue
    if within is not WithinClusterQueue.NEVER:
        same_prio = within is WithinClusterQueue.LOWER_OR_NEWER_EQUAL_PRIORITY
        las = ctx.snapshot.las
        if las is not None and cq.name not in las.cluster_queues:
            las = None
        for w in admitted if index is None else index.in_cluster_queue(cq.name).values():
            if w.cluster_queue != cq.name or w.priority > prio:
                continue
            if (
                w.priority == prio
                and not (same_prio and preemptor_timestamp is not None and preemptor_timestamp < w.timestamp)
                and not (las is not None and _higher_level(las, w, ctx.needs.rank))
            ):
                continue
            if any(fr in frs for fr in w.usage):
                out.append(w)
    reclaim = cq.preemption.reclaim_within_cohort
    if node.parent is not None and reclaim is not ReclaimWithinCohort.NEVER:
        root = node.root()
        borrowing = _borrowing(ctx, root, frs) - {cq.name}
        only_lower = reclaim is ReclaimWithinCohort.LOWER_PRIORITY
        if index is None:
            for w in admitted:
                if w.cluster_queue not in borrowing or (only_lower and w.priority >= prio):
                    continue
                if any(fr in frs for fr in w.usage):
                    out.append(w)
            return out
        picked: list[tuple[int, AdmittedWorkload]] = []
        place = index.place
        for member in borrowing:
            for w in index.in_cluster_queue(member).values():
                if only_lower and w.priority >= prio:
                    continue
                if any(fr in frs for fr in w.usage):
                    picked.append((place(w.job_id), w))
        picked.sort(key=_first_of)  # places are unique
        out.extend(w for _, w in picked)
    return out


def _higher_level(las: LasLevels, w: AdmittedWorkload, preemptor_level: float) -> bool:
    """budcore's ``las_preemption``: ``w`` attained a higher LAS level than the preemptor (so an
    equal priority is a candidate, as Tiresias preempts its lower queues)."""
    return las.level(w.attained_gpu_s, w.accelerators, w.admitted_at.timestamp()) > preemptor_level


def _first_of(item: tuple[int, AdmittedWorkload]) -> int:
    return item[0]


def _borrowing(ctx: PreemptionContext, root: QuotaNode, frs: frozenset[FR]) -> frozenset[str]:
    """The ClusterQueues of ``root``'s tree borrowing one of ``frs`` (:func:`is_borrowing`), from
    the usage's memo when the usage is over the snapshot's tree."""
    usage = ctx.snapshot.usage
    if usage.tree is ctx.snapshot.tree:
        return usage.borrowing(root, frs)
    return frozenset(m for m in root.members if is_borrowing(usage, ctx.cq_node(m), frs))


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
        # LowerOrNewerEqualPriority: equal priorities queued after this time are candidates too.
        newer_than = (
            preemptor_timestamp if within is WithinClusterQueue.LOWER_OR_NEWER_EQUAL_PRIORITY else None
        )
        las = ctx.snapshot.las
        if las is not None and cq.name not in las.cluster_queues:
            las = None
        for w in using.get(cq.name, ()):
            if w.priority >= prio:
                if w.priority > prio or (newer_than is None and las is None):
                    break
                if (newer_than is not None and newer_than < w.timestamp) or (
                    las is not None and _higher_level(las, w, ctx.needs.rank)
                ):
                    out.append(w)
                continue
            out.append(w)
    reclaim = cq.preemption.reclaim_within_cohort
    if node.parent is not None and reclaim is not ReclaimWithinCohort.NEVER:
        root = node.root()
        borrowing = _borrowing(ctx, root, frs)
        only_lower = reclaim is ReclaimWithinCohort.LOWER_PRIORITY
        for member in root.members:
            workloads = using.get(member)
            if not workloads or member == cq.name or member not in borrowing:
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
