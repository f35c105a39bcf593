"""Preemption: whom to evict so that a workload the cycle marked :class:`NeedsPreemption` fits.

:func:`find_victims` is a pure function of the admission snapshot. It never changes the
snapshot's usage (it simulates evictions on a copy-on-write overlay) and returns a
:class:`PreemptionDecision` that says who to evict, why each one, what each costs, and which
alternatives were considered.

**``kueue`` mode** transcribes Kueue's preemptor (``pkg/scheduler/preemption/preemption.go``,
``GetTargets``; kubernetes-sigs/kueue, Apache-2.0):

- *candidates* (``findCandidates``): with ``withinClusterQueue`` ≠ Never, admitted workloads of
  the preemptor's ClusterQueue of lower priority (``LowerOrNewerEqualPriority``: also equal
  priority queued after the preemptor); with ``reclaimWithinCohort`` ≠ Never, workloads of other
  ClusterQueues of the cohort that are *borrowing* one of the flavor-resources needing preemption
  (``LowerPriority``: strictly lower priority; ``Any``: any priority). Only workloads using a
  flavor-resource that needs preemption are candidates.
- *ordering* (``candidatesOrdering``): already-evicted first, other ClusterQueues before the
  preemptor's own, lower priority first, most recently admitted first, then by id.
- *attempts*: if every candidate is in the preemptor's ClusterQueue, remove with borrowing
  allowed. Otherwise, with ``borrowWithinCohort`` enabled the preemptor may borrow while
  reclaiming only from workloads below the threshold (``min(priority, maxPriorityThreshold+1)``);
  without it, reclaim from the cohort without borrowing (only when the queue is under nominal
  quota in the needed resources), then as a last resort its own workloads with borrowing.
- *minimal removal* (``minimalPreemptions``): remove candidates in order (skipping another
  ClusterQueue's workload once that queue no longer borrows) until the preemptor fits, then try
  adding back every victim but the last, in reverse order (``fillBackWorkloads``).
- *fair sharing* (``fairPreemptions``) replaces the cohort attempts when enabled: ClusterQueues
  are visited by decreasing dominant resource share; a workload of another queue may go when
  strategy ``LessThanOrEqualToFinalShare`` (the preemptor's share after admission ≤ the target's
  share after the eviction) holds or it is below the borrowWithinCohort threshold; if that is not
  enough, ``LessThanInitialShare`` (preemptor's share after admission < the target's current
  share) gets one more workload per queue.

**``cost`` mode** keeps exactly the sets Kueue's policies allow and picks the one of minimum
total :class:`~budcore.ports.preemption_cost.PreemptionCost`. A set is allowed when it is drawn
from one of Kueue's attempts, each victim of another ClusterQueue was taken while that queue was
still borrowing (in some order), and the preemptor fits after evicting it with the borrowing the
attempt permits. Up to ``exact_search_limit`` candidates every subset is examined (cheapest
first, so the answer is optimal and minimal); above it a greedy takes the cheapest candidate per
unit of freed shortage until the preemptor fits, drops unneeded victims most-expensive-first,
and is compared with Kueue's own answer: the greedy never costs more than ``kueue`` mode. Cost
mode also never evicts a job that has run less than ``min_runtime_before_preemption`` and never
exceeds the :class:`PreemptionBudget`.

In both modes ``critical`` and ``preemptible=False`` workloads (from :class:`VictimInfo`) are
never candidates: budcore's job model promises that whatever the queue policy says.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from budcore.domain.errors import NotFoundError, ValidationError
from budcore.domain.ids import JobId, TenantId
from budcore.domain.priority import JobPriority
from budcore.domain.quantity import human_amount
from budcore.domain.timeutil import ensure_utc
from budcore.ports.preemption_cost import PreemptionCost, PreemptionCostModel, VictimInfo
from budcore.scheduling.assignment import SimulatePreemption, Simulation
from budcore.scheduling.fair_sharing import dominant_resource_share
from budcore.scheduling.pending import PendingWorkload
from budcore.scheduling.preemption_budget import PreemptionBudget
from budcore.scheduling.preemption_cost import DefaultPreemptionCostModel
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
    DecisionStatus,
    NeedsPreemption,
    PreemptionDecision,
    PreemptionMode,
    PreemptionReason,
    Victim,
)

# The decision types live in budcore.scheduling.snapshot (the cycle reads them too); they are
# re-exported here, where a reader of preemption looks for them.
__all__ = [
    "Alternative",
    "DecisionStatus",
    "FairSharingStrategy",
    "PreemptionDecision",
    "PreemptionMode",
    "PreemptionOracle",
    "PreemptionPolicy",
    "PreemptionReason",
    "Victim",
    "find_victims",
]


class FairSharingStrategy(StrEnum):
    """Kueue ``fairSharing.preemptionStrategies`` (rules S2-a and S2-b of KEP-1714)."""

    LESS_THAN_OR_EQUAL_TO_FINAL_SHARE = "LessThanOrEqualToFinalShare"
    LESS_THAN_INITIAL_SHARE = "LessThanInitialShare"


@dataclass(frozen=True, slots=True)
class PreemptionPolicy:
    """How victims are chosen (the ClusterQueue's ``spec.preemption`` says who may be a victim).

    ``fair_sharing`` selects Kueue's fair-sharing preemption (as ``fairSharing.enable``);
    ``flavor_weights`` are the same per-flavor weights the admission cycle's shares use.
    """

    mode: PreemptionMode = PreemptionMode.KUEUE
    fair_sharing: bool = False
    strategies: tuple[FairSharingStrategy, ...] = (
        FairSharingStrategy.LESS_THAN_OR_EQUAL_TO_FINAL_SHARE,
        FairSharingStrategy.LESS_THAN_INITIAL_SHARE,
    )
    flavor_weights: Mapping[str, int] = field(default_factory=dict)
    cost_model: PreemptionCostModel = field(default_factory=DefaultPreemptionCostModel)
    min_runtime_before_preemption: timedelta = timedelta(minutes=5)
    exact_search_limit: int = 12
    grace_period: timedelta = timedelta(seconds=30)

    def __post_init__(self) -> None:
        if not self.strategies or len(set(self.strategies)) != len(self.strategies):
            raise ValidationError(
                "strategies must be a non-empty list without duplicates", path="preemption.strategies"
            )
        if (
            len(self.strategies) == 2
            and self.strategies[1] is not FairSharingStrategy.LESS_THAN_INITIAL_SHARE
        ):
            # Kueue's API validation: the second strategy, when given, is LessThanInitialShare.
            raise ValidationError(
                "the second strategy must be LessThanInitialShare", path="preemption.strategies[1]"
            )
        if not 0 <= self.exact_search_limit <= 20:
            raise ValidationError("must be within [0, 20]", path="preemption.exact_search_limit")
        if self.min_runtime_before_preemption < timedelta(0):
            raise ValidationError("must not be negative", path="preemption.min_runtime_before_preemption")
        if self.grace_period < timedelta(0):
            raise ValidationError("must not be negative", path="preemption.grace_period")


# --------------------------------------------------------------------------------------------
# Shared machinery


@dataclass(slots=True)
class _Ctx:
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


def _fits(usage: QuotaUsage, node: QuotaNode, request: Mapping[FR, int], allow_borrowing: bool) -> bool:
    """Kueue ``workloadFits`` for a fixed flavor assignment."""
    for fr, amount in request.items():
        if not allow_borrowing and borrowing_after(node, fr, usage, amount) > 0:
            return False
        if amount > usage.available(node, fr):
            return False
    return True


def _is_borrowing(usage: QuotaUsage, node: QuotaNode, frs: Collection[FR]) -> bool:
    """Kueue ``cqIsBorrowing``: above its own quota in one of ``frs`` (never outside a cohort)."""
    if node.parent is None:
        return False
    return any(usage.get(node, fr) > node.subtree_quota.get(fr, 0) for fr in frs)


def _under_nominal(usage: QuotaUsage, node: QuotaNode, frs: Collection[FR]) -> bool:
    """Kueue ``queueUnderNominalInResourcesNeedingPreemption``."""
    return all(usage.get(node, fr) < node.nominal.get(fr, 0) for fr in frs)


def _borrow_threshold(cq: ClusterQueue, priority: int) -> int | None:
    """Kueue ``canBorrowWithinCohort``: the priority below which reclaiming still allows borrowing."""
    bwc = cq.preemption.borrow_within_cohort
    if bwc.policy is BorrowWithinCohortPolicy.NEVER:
        return None
    threshold = priority
    if bwc.max_priority_threshold is not None and bwc.max_priority_threshold < threshold:
        threshold = bwc.max_priority_threshold + 1
    return threshold


def _ordering_key(ctx: _Ctx, w: AdmittedWorkload) -> tuple[int, int, int, float, str]:
    """Kueue ``candidatesOrdering``."""
    return (
        0 if w.job_id in ctx.evicting else 1,
        1 if w.cluster_queue == ctx.needs.cluster_queue else 0,
        w.priority,
        -w.admitted_at.timestamp(),
        w.job_id,
    )


def _frs_needing_preemption(usage: QuotaUsage, node: QuotaNode, request: Mapping[FR, int]) -> frozenset[FR]:
    return frozenset(fr for fr, amount in request.items() if amount > usage.available(node, fr))


def _find_candidates(ctx: _Ctx, preemptor_timestamp: float | None) -> list[AdmittedWorkload]:
    """Kueue ``findCandidates`` (before budcore's guards)."""
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
        borrowing = {m for m in members if _is_borrowing(usage, ctx.cq_node(m), frs)}
        only_lower = reclaim is ReclaimWithinCohort.LOWER_PRIORITY
        for w in admitted:
            if w.cluster_queue not in borrowing or (only_lower and w.priority >= prio):
                continue
            if any(fr in frs for fr in w.usage):
                out.append(w)
    return out


def _find_candidates_using(
    ctx: _Ctx, preemptor_timestamp: float | None, using: Mapping[str, Sequence[AdmittedWorkload]]
) -> list[AdmittedWorkload]:
    """:func:`_find_candidates` from an index: ``using`` holds, per ClusterQueue, the admitted
    workloads that use a flavor-resource of ``ctx.frs``, by ascending priority, so only the queues
    involved are visited and each stops at the first priority too high. Same result, up to order
    (callers sort by :func:`_ordering_key`, a total order)."""
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
            if not workloads or member == cq.name or not _is_borrowing(usage, ctx.cq_node(member), frs):
                continue
            if not only_lower:
                out.extend(workloads)
                continue
            for w in workloads:
                if w.priority >= prio:
                    break
                out.append(w)
    return out


def _why(ctx: _Ctx, w: AdmittedWorkload, reason: PreemptionReason, threshold: int | None) -> str:
    prio = ctx.needs.priority
    if reason is PreemptionReason.IN_CLUSTER_QUEUE:
        if w.priority < prio:
            return f"lower priority in same ClusterQueue {w.cluster_queue} ({w.priority} < {prio})"
        return (
            f"equal priority ({w.priority}) and queued after the preemptor "
            f"in same ClusterQueue {w.cluster_queue}"
        )
    node = ctx.cq_node(w.cluster_queue)
    usage = ctx.snapshot.usage
    borrowed = [
        f"{fr[1]} in {fr[0]} ({human_amount(usage.get(node, fr))} used, "
        f"quota {human_amount(node.subtree_quota.get(fr, 0))})"
        for fr in sorted(ctx.frs)
        if usage.get(node, fr) > node.subtree_quota.get(fr, 0)
    ]
    borrowing = f"reclaim: ClusterQueue {w.cluster_queue} is borrowing {', '.join(borrowed) or 'quota'}"
    if reason is PreemptionReason.IN_COHORT_RECLAIM_WHILE_BORROWING:
        return f"{borrowing}; priority {w.priority} is below the borrowWithinCohort threshold {threshold}"
    if reason is PreemptionReason.IN_COHORT_FAIR_SHARING:
        weights = ctx.policy.flavor_weights
        share = dominant_resource_share(node, usage, None, weights)[0]
        own = dominant_resource_share(ctx.node, usage, ctx.request, weights)[0]
        return (
            f"fair sharing: ClusterQueue {w.cluster_queue} has dominant resource share {share}, "
            f"ClusterQueue {ctx.cq.name} would have {own} after admitting the preemptor; {borrowing}"
        )
    if w.priority >= ctx.needs.priority:
        return f"{borrowing}; reclaimWithinCohort Any allows priority {w.priority} ≥ {prio}"
    return f"{borrowing}; lower priority ({w.priority} < {prio})"


# --------------------------------------------------------------------------------------------
# Kueue: classic and fair-sharing heuristics


def _fill_back(ctx: _Ctx, usage: QuotaUsage, targets: list[Target], allow_borrowing: bool) -> list[Target]:
    """Kueue ``fillBackWorkloads``: add back every victim but the last, newest-removed first."""
    targets = list(targets)
    for i in range(len(targets) - 2, -1, -1):
        w = targets[i][0]
        usage.add(w.cluster_queue, w.usage)
        if _fits(usage, ctx.node, ctx.request, allow_borrowing):
            targets[i] = targets[-1]
            targets.pop()
        else:
            usage.add(w.cluster_queue, w.usage, -1)
    return targets


@dataclass(slots=True)
class _Found:
    targets: list[Target]
    removed: list[Target]  # before fill-back: every victim the heuristic accepted on the way
    allow_borrowing: bool
    threshold: int | None
    label: str


def _minimal_preemptions(
    ctx: _Ctx,
    candidates: Sequence[AdmittedWorkload],
    allow_borrowing: bool,
    threshold: int | None,
    label: str,
) -> _Found | None:
    """Kueue ``minimalPreemptions``."""
    usage = ctx.snapshot.usage.overlay()
    targets: list[Target] = []
    fits = False
    for w in candidates:
        same = w.cluster_queue == ctx.cq.name
        reason = PreemptionReason.IN_CLUSTER_QUEUE
        if not same:
            if not _is_borrowing(usage, ctx.cq_node(w.cluster_queue), ctx.frs):
                continue
            reason = PreemptionReason.IN_COHORT_RECLAMATION
            if threshold is not None:
                if w.priority >= threshold:
                    allow_borrowing = False
                else:
                    reason = PreemptionReason.IN_COHORT_RECLAIM_WHILE_BORROWING
        usage.add(w.cluster_queue, w.usage, -1)
        targets.append((w, reason))
        if _fits(usage, ctx.node, ctx.request, allow_borrowing):
            fits = True
            break
    if not fits:
        return None
    removed = list(targets)
    return _Found(
        _fill_back(ctx, usage, targets, allow_borrowing), removed, allow_borrowing, threshold, label
    )


_STRATEGIES: dict[FairSharingStrategy, Callable[[int, int, int], bool]] = {
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
        cls, ctx: _Ctx, usage: QuotaUsage, candidates: Sequence[AdmittedWorkload], first_only: bool
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


def _fair_preemptions(
    ctx: _Ctx, candidates: Sequence[AdmittedWorkload], threshold: int | None
) -> _Found | None:
    """Kueue ``fairPreemptions``."""
    usage = ctx.snapshot.usage.overlay()
    weights = ctx.policy.flavor_weights
    strategies = [_STRATEGIES[s] for s in ctx.policy.strategies]

    def share(node: QuotaNode, extra: Mapping[FR, int] | None = None) -> int:
        return dominant_resource_share(node, usage, extra, weights)[0]

    heap = _QueueHeap.build(ctx, usage, candidates, first_only=False)
    new_nominated = share(ctx.node, ctx.request)
    targets: list[Target] = []
    retry: list[AdmittedWorkload] = []
    fits = False
    while len(heap) and not fits:
        entry = heap.pop()
        if entry.name == ctx.cq.name:
            w = entry.workloads[0]
            usage.add(w.cluster_queue, w.usage, -1)
            targets.append((w, PreemptionReason.IN_CLUSTER_QUEUE))
            if _fits(usage, ctx.node, ctx.request, True):
                fits = True
                break
            new_nominated = share(ctx.node, ctx.request)
            entry.workloads = entry.workloads[1:]
            if entry.workloads:
                entry.share = share(ctx.node)
                heap.push_if_not_present(entry)
            continue
        cand_node = ctx.cq_node(entry.name)
        for i, w in enumerate(entry.workloads):
            below = threshold is not None and w.priority < threshold
            new_cand = share(cand_node, {fr: -amount for fr, amount in w.usage.items()})
            by_strategy = strategies[0](new_nominated, entry.share, new_cand)
            if below or by_strategy:
                usage.add(w.cluster_queue, w.usage, -1)
                reason = (
                    PreemptionReason.IN_COHORT_FAIR_SHARING
                    if by_strategy
                    else PreemptionReason.IN_COHORT_RECLAIM_WHILE_BORROWING
                )
                targets.append((w, reason))
                if _fits(usage, ctx.node, ctx.request, True):
                    fits = True
                    break
                entry.workloads = entry.workloads[i + 1 :]
                if entry.workloads and _is_borrowing(usage, cand_node, ctx.frs):
                    entry.share = new_cand
                    heap.push_if_not_present(entry)
                break
            retry.append(w)
    if not fits and len(strategies) > 1:
        heap = _QueueHeap.build(ctx, usage, retry, first_only=True)
        while len(heap) and not fits:
            entry = heap.pop()
            if strategies[1](new_nominated, entry.share, 0):
                w = entry.workloads[0]
                usage.add(w.cluster_queue, w.usage, -1)
                targets.append((w, PreemptionReason.IN_COHORT_FAIR_SHARING))
                if _fits(usage, ctx.node, ctx.request, True):
                    fits = True
    if not fits:
        return None
    removed = list(targets)
    return _Found(_fill_back(ctx, usage, targets, True), removed, True, threshold, "fair sharing")


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One of Kueue's attempts: candidates in order, whether borrowing is allowed, the threshold."""

    label: str
    candidates: tuple[AdmittedWorkload, ...]
    allow_borrowing: bool
    threshold: int | None


def _attempts(ctx: _Ctx, candidates: Sequence[AdmittedWorkload]) -> list[_Attempt]:
    """Kueue ``GetTargets``' classic attempts, in the order Kueue tries them."""
    own = ctx.cq.name
    same = tuple(w for w in candidates if w.cluster_queue == own)
    if len(same) == len(candidates):
        return [_Attempt("own ClusterQueue, borrowing allowed", tuple(candidates), True, None)]
    threshold = _borrow_threshold(ctx.cq, ctx.needs.priority)
    under = _under_nominal(ctx.snapshot.usage, ctx.node, ctx.frs)
    if threshold is not None:
        allowed = tuple(candidates)
        if not under:
            allowed = tuple(w for w in candidates if w.cluster_queue == own or w.priority < threshold)
        return [_Attempt(f"cohort, borrowing below priority {threshold}", allowed, True, threshold)]
    out: list[_Attempt] = []
    if under:
        out.append(_Attempt("cohort reclaim, no borrowing", tuple(candidates), False, None))
    out.append(_Attempt("own ClusterQueue, borrowing allowed", same, True, None))
    return out


def _kueue(
    ctx: _Ctx, candidates: Sequence[AdmittedWorkload], explain: bool = True
) -> tuple[_Found | None, list[Alternative]]:
    """Kueue ``GetTargets``: the first attempt that finds victims wins.

    ``explain=False`` skips the alternatives (they need every candidate's cost).
    """
    alternatives: list[Alternative] = []
    own = ctx.cq.name
    if ctx.policy.fair_sharing and any(w.cluster_queue != own for w in candidates):
        found = _fair_preemptions(ctx, candidates, _borrow_threshold(ctx.cq, ctx.needs.priority))
        if explain:
            alternatives.append(_alternative(ctx, "fair sharing", found))
        return found, alternatives
    for attempt in _attempts(ctx, candidates):
        found = _minimal_preemptions(
            ctx, attempt.candidates, attempt.allow_borrowing, attempt.threshold, attempt.label
        )
        if explain:
            alternatives.append(_alternative(ctx, attempt.label, found))
        if found is not None and found.targets:
            return found, alternatives
    return None, alternatives


def _alternative(ctx: _Ctx, label: str, found: _Found | None, chosen: bool = False) -> Alternative:
    if found is None:
        return Alternative(
            label, (), None, False, "the preemptor does not fit even after evicting every candidate"
        )
    ids = tuple(w.job_id for w, _ in found.targets)
    total = sum((ctx.costs[w.job_id].total for w, _ in found.targets), Decimal(0))
    return Alternative(label, ids, total, chosen)


# --------------------------------------------------------------------------------------------
# Cost mode


def _valid_set(ctx: _Ctx, subset: Sequence[AdmittedWorkload], attempt: _Attempt) -> bool:
    """Whether Kueue's policies allow evicting exactly ``subset`` within ``attempt`` (see module doc)."""
    own = ctx.cq.name
    usage = ctx.snapshot.usage
    by_queue: dict[str, list[AdmittedWorkload]] = {}
    allow = attempt.allow_borrowing
    for w in subset:
        if w.cluster_queue != own:
            by_queue.setdefault(w.cluster_queue, []).append(w)
            if attempt.threshold is not None and w.priority >= attempt.threshold:
                allow = False
    for name, victims in by_queue.items():
        node = ctx.cq_node(name)
        # Some order takes every victim while the queue still borrows: the last one taken sees
        # usage − (all victims but itself), so the best last is the one using the most of an fr.
        ok = False
        for fr in ctx.frs:
            removed = sum(v.usage.get(fr, 0) for v in victims)
            largest = max(v.usage.get(fr, 0) for v in victims)
            if usage.get(node, fr) - removed + largest > node.subtree_quota.get(fr, 0):
                ok = True
                break
        if not ok:
            return False
    sim = usage.overlay()
    for w in subset:
        sim.add(w.cluster_queue, w.usage, -1)
    return _fits(sim, ctx.node, ctx.request, allow)


def _fits_without(ctx: _Ctx, victims: Sequence[AdmittedWorkload], allow_borrowing: bool) -> bool:
    sim = ctx.snapshot.usage.overlay()
    for w in victims:
        sim.add(w.cluster_queue, w.usage, -1)
    return _fits(sim, ctx.node, ctx.request, allow_borrowing)


def _valid_in_any(
    ctx: _Ctx, subset: Sequence[AdmittedWorkload], attempts: Sequence[_Attempt]
) -> _Attempt | None:
    ids = {w.job_id for w in subset}
    for attempt in attempts:
        if ids <= {w.job_id for w in attempt.candidates} and _valid_set(ctx, subset, attempt):
            return attempt
    return None


def _cost_attempts(ctx: _Ctx, candidates: Sequence[AdmittedWorkload]) -> list[_Attempt]:
    own = ctx.cq.name
    if ctx.policy.fair_sharing and any(w.cluster_queue != own for w in candidates):
        # Fair sharing admits a victim only against the shares as they evolve during Kueue's walk:
        # the allowed sets are the subsets of what that walk accepted.
        found = _fair_preemptions(ctx, candidates, _borrow_threshold(ctx.cq, ctx.needs.priority))
        if found is None:
            return []
        return [_Attempt("fair sharing", tuple(w for w, _ in found.removed), True, None)]
    return _attempts(ctx, candidates)


def _reason_for(ctx: _Ctx, w: AdmittedWorkload, attempt: _Attempt) -> PreemptionReason:
    if w.cluster_queue == ctx.cq.name:
        return PreemptionReason.IN_CLUSTER_QUEUE
    if attempt.label == "fair sharing":
        return PreemptionReason.IN_COHORT_FAIR_SHARING
    if attempt.threshold is not None and w.priority < attempt.threshold:
        return PreemptionReason.IN_COHORT_RECLAIM_WHILE_BORROWING
    return PreemptionReason.IN_COHORT_RECLAMATION


def _exact(
    ctx: _Ctx, pool: Sequence[AdmittedWorkload], attempts: Sequence[_Attempt], max_victims: int | None
) -> tuple[list[AdmittedWorkload], _Attempt] | None:
    """Cheapest allowed subset (ties: fewer victims, then Kueue's order): optimal and minimal."""
    attempts = [a for a in attempts if _fits_without(ctx, a.candidates, a.allow_borrowing)]
    if not attempts:  # fitting is monotone in what is evicted: no subset can work either
        return None
    costs = [ctx.costs[w.job_id].total for w in pool]
    subsets: list[tuple[Decimal, int, tuple[int, ...]]] = []
    limit = len(pool) if max_victims is None else min(len(pool), max_victims)
    for size in range(1, limit + 1):
        for combo in itertools.combinations(range(len(pool)), size):
            subsets.append((sum((costs[i] for i in combo), Decimal(0)), size, combo))
    subsets.sort()
    for _, _, combo in subsets:
        chosen = [pool[i] for i in combo]
        attempt = _valid_in_any(ctx, chosen, attempts)
        if attempt is not None:
            return chosen, attempt
    return None


def _greedy(ctx: _Ctx, attempt: _Attempt, pool_ids: Collection[str]) -> list[AdmittedWorkload] | None:
    """Cheapest cost per unit of covered shortage first, then drop unneeded victims, dearest first."""
    base = ctx.snapshot.usage
    deficit = {fr: ctx.request[fr] - max(0, base.available(ctx.node, fr)) for fr in ctx.frs}
    cands = [w for w in attempt.candidates if w.job_id in pool_ids]

    def ratio(w: AdmittedWorkload) -> tuple[Decimal, tuple[int, int, int, float, str]]:
        covered = sum(Decimal(min(w.usage.get(fr, 0), d)) / Decimal(d) for fr, d in deficit.items() if d > 0)
        per_unit = ctx.costs[w.job_id].total / covered if covered > 0 else Decimal("Infinity")
        return per_unit, _ordering_key(ctx, w)

    cands.sort(key=ratio)
    usage = base.overlay()
    chosen: list[AdmittedWorkload] = []
    fits = False
    for w in cands:
        if w.cluster_queue != ctx.cq.name and not _is_borrowing(usage, ctx.cq_node(w.cluster_queue), ctx.frs):
            continue
        usage.add(w.cluster_queue, w.usage, -1)
        chosen.append(w)
        if _valid_set(ctx, chosen, attempt):
            fits = True
            break
    if not fits:
        return None
    for w in sorted(chosen, key=lambda v: ctx.costs[v.job_id].total, reverse=True):
        rest = [v for v in chosen if v.job_id != w.job_id]
        if rest and _valid_set(ctx, rest, attempt):
            chosen = rest
    return chosen


def _cost_mode(
    ctx: _Ctx,
    candidates: Sequence[AdmittedWorkload],
    kueue_found: _Found | None,
    max_victims: int | None,
) -> tuple[list[Target] | None, bool, list[Alternative], str]:
    attempts = _cost_attempts(ctx, candidates)
    pool_ids = {w.job_id for a in attempts for w in a.candidates}
    pool = sorted((w for w in candidates if w.job_id in pool_ids), key=lambda w: _ordering_key(ctx, w))
    alternatives: list[Alternative] = []
    options: list[tuple[Decimal, int, list[AdmittedWorkload], _Attempt, str]] = []
    how = ""
    if len(pool) <= ctx.policy.exact_search_limit:
        how = f"exact search over {len(pool)} candidate(s)"
        best = _exact(ctx, pool, attempts, max_victims)
        if best is not None:
            options.append((_total(ctx, best[0]), len(best[0]), best[0], best[1], "exact minimum cost"))
    else:
        how = (
            f"greedy over {len(pool)} candidate(s) (> {ctx.policy.exact_search_limit}), "
            "bounded by Kueue's set"
        )
        for attempt in attempts:
            chosen = _greedy(ctx, attempt, pool_ids)
            if chosen is not None and (max_victims is None or len(chosen) <= max_victims):
                options.append(
                    (_total(ctx, chosen), len(chosen), chosen, attempt, f"greedy: {attempt.label}")
                )
        if kueue_found is not None and kueue_found.targets:
            kueue_set = [w for w, _ in kueue_found.targets]
            kueue_attempt = _valid_in_any(ctx, kueue_set, attempts)
            if kueue_attempt is not None and (max_victims is None or len(kueue_set) <= max_victims):
                options.append(
                    (_total(ctx, kueue_set), len(kueue_set), kueue_set, kueue_attempt, "Kueue's set")
                )
    options.sort(key=lambda o: (o[0], o[1]))
    for i, (total, _, chosen_set, attempt, label) in enumerate(options):
        alternatives.append(
            Alternative(label, tuple(w.job_id for w in chosen_set), total, i == 0, attempt.label)
        )
    if not options:
        return None, True, alternatives, how
    _, _, chosen_set, attempt, _ = options[0]
    allow = attempt.allow_borrowing and not (
        attempt.threshold is not None
        and any(w.cluster_queue != ctx.cq.name and w.priority >= attempt.threshold for w in chosen_set)
    )
    targets = [
        (w, _reason_for(ctx, w, attempt)) for w in sorted(chosen_set, key=lambda w: _ordering_key(ctx, w))
    ]
    return targets, allow, alternatives, how


def _total(ctx: _Ctx, victims: Sequence[AdmittedWorkload]) -> Decimal:
    return sum((ctx.costs[w.job_id].total for w in victims), Decimal(0))


# --------------------------------------------------------------------------------------------
# Entry point


CRITICAL_PRIORITY = JobPriority.CRITICAL.value_int


def find_victims(
    snapshot: AdmissionSnapshot,
    needs: NeedsPreemption,
    *,
    now: datetime,
    policy: PreemptionPolicy | None = None,
    victim_info: Mapping[str, VictimInfo] | None = None,
    evicting: Collection[str] = frozenset(),
    budget: PreemptionBudget | None = None,
    preemptor_timestamp: float | None = None,
) -> PreemptionDecision:
    """Choose the workloads to evict so ``needs`` fits (pure: no input is modified).

    ``victim_info`` supplies per-job facts the snapshot lacks (job type, protection flags, start,
    checkpoints, progress, price); a job without an entry is an unprotected batch job that started
    when it was admitted. ``evicting`` are workloads already being evicted (Kueue's ``Evicted``
    condition: they are taken first). ``budget`` is only read. ``preemptor_timestamp`` is the
    preemptor's queue-ordering time, needed by ``LowerOrNewerEqualPriority`` (without it equal
    priorities are never preempted).
    """
    policy = policy or PreemptionPolicy()
    now = ensure_utc(now, "now")
    infos = victim_info or {}
    tree = snapshot.tree
    cq = tree.config.cluster_queues.get(needs.cluster_queue)
    if cq is None or needs.cluster_queue not in tree.cluster_queues:
        raise NotFoundError("ClusterQueue", needs.cluster_queue)
    node = tree.cluster_queues[needs.cluster_queue]
    request = dict(needs.usage)

    def decision(
        status: DecisionStatus,
        reason: str,
        victims: tuple[Victim, ...] = (),
        alternatives: Sequence[Alternative] = (),
        excluded: Sequence[str] = (),
        allow: bool = True,
    ) -> PreemptionDecision:
        return PreemptionDecision(
            needs.job_id,
            needs.cluster_queue,
            policy.mode,
            status,
            victims,
            reason,
            tuple(alternatives),
            tuple(excluded),
            allow,
            policy.grace_period,
        )

    frs = _frs_needing_preemption(snapshot.usage, node, request)
    if not frs:
        return decision(DecisionStatus.FITS, "no preemption needed: the workload fits in the current usage")
    ctx = _Ctx(snapshot, needs, cq, node, frs, request, policy, now, evicting)
    raw = _find_candidates(ctx, preemptor_timestamp)
    excluded: list[str] = []
    candidates: list[AdmittedWorkload] = []
    for w in raw:
        # Without facts from the caller, the priority value still protects critical workloads.
        info = infos.get(w.job_id) or VictimInfo(
            job_id=w.job_id, started_at=w.admitted_at, critical=w.priority >= CRITICAL_PRIORITY
        )
        guard = info.protected
        if guard is None and policy.mode is PreemptionMode.COST:
            started = info.started_at or w.admitted_at
            if now - started < policy.min_runtime_before_preemption:
                ran = max(0.0, (now - started).total_seconds())
                guard = f"ran {ran:.0f}s, less than min_runtime_before_preemption"
        if guard is not None:
            excluded.append(f"{w.job_id}: {guard}")
            continue
        ctx.costs[w.job_id] = policy.cost_model.cost(info, w.usage, now)
        candidates.append(w)
    candidates.sort(key=lambda w: _ordering_key(ctx, w))
    needed = ", ".join(f"{fr[1]} in {fr[0]}" for fr in sorted(frs))
    if not candidates:
        why = (
            f"no preemption possible: no candidate workload uses {needed} "
            f"under ClusterQueue {cq.name}'s preemption policy"
        )
        return decision(DecisionStatus.IMPOSSIBLE, why, excluded=excluded)
    remaining = budget.remaining(now) if budget is not None else None
    if remaining == 0 and not any(w.job_id in evicting for w in candidates):
        # Every victim set needs at least one new eviction: no search can succeed.
        why = f"no preemption possible: the preemption budget is used up ({budget.limit} per {budget.window})"  # type: ignore[union-attr]
        return decision(DecisionStatus.IMPOSSIBLE, why, excluded=excluded)

    found, alternatives = _kueue(ctx, candidates)
    if policy.mode is PreemptionMode.KUEUE:
        if found is None or not found.targets:
            why = f"no preemption possible: evicting every allowed candidate does not free enough {needed}"
            return decision(DecisionStatus.IMPOSSIBLE, why, (), alternatives, excluded)
        if remaining is not None and len(found.targets) > remaining:
            why = (
                f"no preemption possible: {len(found.targets)} victim(s) needed, "
                f"preemption budget allows {remaining} more"
            )
            return decision(DecisionStatus.IMPOSSIBLE, why, (), alternatives, excluded)
        alternatives = [
            Alternative(
                a.label,
                a.victims,
                a.total_cost,
                a.victims == tuple(w.job_id for w, _ in found.targets),
                a.note,
            )
            for a in alternatives
        ]
        targets, allow, how = found.targets, found.allow_borrowing, f"Kueue {found.label}"
    else:
        kueue_alternatives = [
            Alternative(f"kueue: {a.label}", a.victims, a.total_cost, False, a.note) for a in alternatives
        ]
        chosen, allow, cost_alternatives, how = _cost_mode(ctx, candidates, found, remaining)
        alternatives = [*kueue_alternatives, *cost_alternatives]
        if chosen is None:
            limit = (
                f" within the preemption budget ({remaining} more allowed)" if remaining is not None else ""
            )
            why = f"no preemption possible: no allowed set of victims frees enough {needed}{limit}"
            return decision(DecisionStatus.IMPOSSIBLE, why, (), alternatives, excluded)
        targets = chosen
    threshold = _borrow_threshold(cq, needs.priority)
    victims = tuple(
        Victim(
            w.job_id,
            w.tenant,
            w.cluster_queue,
            w.priority,
            w.usage,
            reason,
            _why(ctx, w, reason, threshold),
            ctx.costs[w.job_id],
        )
        for w, reason in targets
    )
    total = sum((v.cost.total for v in victims), Decimal(0))
    why = f"evict {len(victims)} workload(s) to free {needed} ({how}), total cost {total:.2f}"
    return decision(DecisionStatus.PREEMPT, why, victims, alternatives, excluded, allow)


# --------------------------------------------------------------------------------------------
# Preemption oracle: what the flavor assigner asks about a flavor that needs preemption


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


def _no_candidates(fr: FR, amount: int) -> Simulation:
    """The oracle of a workload that never preempts others: no flavor ever has victims for it."""
    return None


class PreemptionOracle:
    """Kueue's ``PreemptionOracle.SimulatePreemption`` on an admission snapshot.

    Transcribes kubernetes-sigs/kueue v0.20 ``pkg/scheduler/preemption/preemption_oracle.go``
    (Apache-2.0): for one (flavor, resource) that needs preemption and the amount the workload
    would use of it, run the preemptor's own search (``getTargets``) with that flavor-resource
    alone — here the search :func:`find_victims` runs in ``kueue`` mode: the candidates
    withinClusterQueue and reclaimWithinCohort allow, then the classic attempts (with
    borrowWithinCohort's threshold) or fair-sharing preemption — and answer (see
    :data:`~budcore.scheduling.assignment.Simulation`) None when it finds no victims
    (``NoCandidates``), else whether every victim is in another ClusterQueue (``Reclaim``, not
    ``Preempt``) and whether the queue would still borrow once they are gone
    (``borrowAfterPreemptions``, from the usage with the victims removed).

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

    def for_workload(self, workload: PendingWorkload) -> SimulatePreemption:
        """The oracle for one pending workload, as :func:`assign_flavors` takes it.

        Preemption rights come from the job's base priority (aging orders the queue, never grants
        the right to preempt) and its queue-ordering time (``LowerOrNewerEqualPriority``); a job
        that never preempts others (``preempts_others=False``) finds no victims anywhere.
        """
        job = workload.job
        if not job.preempts_others:
            return _no_candidates
        cluster_queue, priority, timestamp = workload.cluster_queue, job.priority_value, workload.timestamp

        def simulate(fr: FR, amount: int) -> Simulation:
            return self.simulate(cluster_queue, priority, timestamp, fr, amount)

        return simulate

    def simulate(
        self, cluster_queue: str, priority: int, timestamp: float | None, fr: FR, amount: int
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
            JobId(""), TenantId(""), cluster_queue, {}, request, False, priority, "", timestamp or 0.0
        )
        ctx = _Ctx(snapshot, needs, cq, node, frozenset((fr,)), request, self._policy, self._now, ())
        usage = snapshot.usage
        candidates = _find_candidates_using(ctx, timestamp, self._using(fr))
        # The bound first: the guards only remove candidates, and most questions end here.
        if not candidates or not _fits_without_all(usage, node, fr, amount, candidates):
            return None
        allowed = [w for w in candidates if self._may_go(w)]
        if len(allowed) < len(candidates):
            if not allowed or not _fits_without_all(usage, node, fr, amount, allowed):
                return None
            candidates = allowed
        candidates.sort(key=lambda w: _ordering_key(ctx, w))
        found, _ = _kueue(ctx, candidates, explain=False)
        if found is None or not found.targets:
            return None
        after = snapshot.usage.overlay()
        reclaim = True
        for w, _ in found.targets:
            after.add(w.cluster_queue, w.usage, -1)
            reclaim = reclaim and w.cluster_queue != cluster_queue
        borrows = node.parent is not None and borrowing_after(node, fr, after, amount) > 0
        return reclaim, borrows

    def _may_go(self, w: AdmittedWorkload) -> bool:
        """Whether budcore's guards let ``w`` be a victim (memoized: facts may be costly to get)."""
        verdict = self._unguarded.get(w.job_id)
        if verdict is None:
            info = self._infos.get(w.job_id)
            verdict = (info.protected is None) if info is not None else (w.priority < CRITICAL_PRIORITY)
            self._unguarded[w.job_id] = verdict
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
