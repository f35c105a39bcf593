"""The victim search: :func:`find_victims` turns a :class:`NeedsPreemption` into a decision.

Mirrors kubernetes-sigs/kueue ``pkg/scheduler/preemption/preemption.go`` (Apache-2.0): its
``GetTargets`` is :func:`get_targets` (candidates in Kueue's order, then fair sharing or the
classical attempts), and :func:`find_victims` is the preemptor's entry point around it — with
budcore's guards before the search and its cost mode after it, and a
:class:`PreemptionDecision` that says who to evict, why each one, what each costs and which
alternatives were considered, where Kueue returns bare targets.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from budcore.domain.errors import NotFoundError
from budcore.domain.quantity import human_amount
from budcore.domain.timeutil import ensure_utc
from budcore.ports.preemption_cost import PreemptionCost, PreemptionCostModel, VictimInfo
from budcore.scheduling.fair_sharing import dominant_resource_share
from budcore.scheduling.preemption.classical import classical_preemptions
from budcore.scheduling.preemption.common import (
    Found,
    PreemptionContext,
    Target,
    alternative,
    borrow_threshold,
    find_candidates,
    frs_needing_preemption,
    sort_candidates,
)
from budcore.scheduling.preemption.cost import cost_mode
from budcore.scheduling.preemption.cost_model import DefaultPreemptionCostModel
from budcore.scheduling.preemption.fairsharing import almost_lcas, fair_preemptions, fair_sharing_applies
from budcore.scheduling.preemption.guards import PreemptionBudget, exclusion, victim_facts
from budcore.scheduling.preemption.policy import PreemptionPolicy
from budcore.scheduling.queues import ClusterQueue
from budcore.scheduling.quota import FR, QuotaNode
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


def get_targets(
    ctx: PreemptionContext, candidates: Sequence[AdmittedWorkload], explain: bool = True
) -> tuple[Found | None, list[Alternative]]:
    """Kueue ``GetTargets`` on candidates already in Kueue's order: fair sharing when it applies,
    else the classical attempts (the first that finds victims wins).

    ``explain=False`` skips the alternatives (they need every candidate's cost).
    """
    if fair_sharing_applies(ctx, candidates):
        found = fair_preemptions(ctx, candidates)
        alternatives = [alternative(ctx, "fair sharing", found)] if explain else []
        return found, alternatives
    return classical_preemptions(ctx, candidates, explain)


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
    priorities are never preempted). ``snapshot.local_queue_usage``, when given, orders the
    candidates of a ClusterQueue with admission fair sharing by their LocalQueue's usage, higher
    first, before priority (:func:`~budcore.scheduling.preemption.common.sort_candidates`).
    """
    policy = policy or PreemptionPolicy()
    now = ensure_utc(now, "now")
    cq, node = _cluster_queue(snapshot, needs.cluster_queue)
    request = dict(needs.usage)
    frs = frs_needing_preemption(snapshot.usage, node, request)
    if not frs:
        return _decision(
            needs, policy, DecisionStatus.FITS, "no preemption needed: the workload fits in the current usage"
        )
    ctx = PreemptionContext(snapshot, needs, cq, node, frs, request, policy, now, evicting)
    candidates, excluded = _guarded_candidates(ctx, preemptor_timestamp, victim_info or {})
    needed = ", ".join(f"{fr[1]} in {fr[0]}" for fr in sorted(frs))
    if not candidates:
        why = (
            f"no preemption possible: no candidate workload uses {needed} "
            f"under ClusterQueue {cq.name}'s preemption policy"
        )
        return _decision(needs, policy, DecisionStatus.IMPOSSIBLE, why, excluded=excluded)
    remaining = budget.remaining(now) if budget is not None else None
    if budget is not None and remaining == 0 and not any(w.job_id in evicting for w in candidates):
        # Every victim set needs at least one new eviction: no search can succeed.
        why = f"no preemption possible: the preemption budget is used up ({budget.limit} per {budget.window})"
        return _decision(needs, policy, DecisionStatus.IMPOSSIBLE, why, excluded=excluded)
    found, alternatives = get_targets(ctx, candidates)
    if policy.mode is PreemptionMode.KUEUE:
        outcome = _kueue_choice(found, alternatives, remaining, needed)
    else:
        outcome = _cost_choice(ctx, candidates, found, alternatives, remaining, needed)
    if isinstance(outcome, _Refusal):
        return _decision(
            needs, policy, DecisionStatus.IMPOSSIBLE, outcome.why, (), outcome.alternatives, excluded
        )
    return _preempt(ctx, outcome, needed, excluded)


@dataclass(slots=True)
class _Choice:
    """The victims chosen, whether the preemptor may borrow once they are gone, and how."""

    targets: list[Target]
    allow_borrowing: bool
    how: str
    alternatives: list[Alternative]


@dataclass(slots=True)
class _Refusal:
    """No preemption: why, with the alternatives the search considered."""

    why: str
    alternatives: list[Alternative]


def _cluster_queue(snapshot: AdmissionSnapshot, name: str) -> tuple[ClusterQueue, QuotaNode]:
    tree = snapshot.tree
    cq = tree.config.cluster_queues.get(name)
    if cq is None or name not in tree.cluster_queues:
        raise NotFoundError("ClusterQueue", name)
    return cq, tree.cluster_queues[name]


def _decision(
    needs: NeedsPreemption,
    policy: PreemptionPolicy,
    status: DecisionStatus,
    reason: str,
    victims: tuple[Victim, ...] = (),
    alternatives: Sequence[Alternative] = (),
    excluded: Sequence[str] = (),
    allow: bool = True,
) -> PreemptionDecision:
    """The decision for ``needs`` under ``policy`` (its mode and grace period)."""
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


def _guarded_candidates(
    ctx: PreemptionContext, preemptor_timestamp: float | None, infos: Mapping[str, VictimInfo]
) -> tuple[list[AdmittedWorkload], list[str]]:
    """Kueue's candidates less those budcore's guards protect (each excluded one with why), in
    Kueue's order; the cost of each remaining candidate goes to ``ctx.costs`` (in kueue mode with
    the default cost model, when a decision first reads it)."""
    policy = ctx.policy
    min_runtime = policy.min_runtime_before_preemption if policy.mode is PreemptionMode.COST else None
    excluded: list[str] = []
    candidates: list[AdmittedWorkload] = []
    model = policy.cost_model
    # Kueue mode reads a cost only for the victims a decision lists; the default model is a pure
    # function of the facts, so those are priced when first read (most candidates never are).
    lazy = (
        _LazyCosts(model, ctx.now)
        if policy.mode is PreemptionMode.KUEUE and type(model) is _DEFAULT
        else None
    )
    for w in find_candidates(ctx, preemptor_timestamp):
        info = victim_facts(w, infos)
        guard = exclusion(info, w, ctx.now, min_runtime)
        if guard is not None:
            excluded.append(f"{w.job_id}: {guard}")
            continue
        if lazy is None:
            ctx.costs[w.job_id] = model.cost(info, w.usage, ctx.now)
        else:
            lazy.facts[w.job_id] = (info, w.usage)
        candidates.append(w)
    if lazy is not None:
        ctx.costs = lazy
    sort_candidates(ctx, candidates)
    return candidates, excluded


_DEFAULT = DefaultPreemptionCostModel


class _LazyCosts(dict[str, PreemptionCost]):
    """``ctx.costs`` whose entries are computed on first read from the facts kept for them."""

    __slots__ = ("facts", "model", "now")

    def __init__(self, model: PreemptionCostModel, now: datetime) -> None:
        super().__init__()
        self.model = model
        self.now = now
        self.facts: dict[str, tuple[VictimInfo, Mapping[FR, int]]] = {}

    def __missing__(self, job_id: str) -> PreemptionCost:
        info, usage = self.facts[job_id]
        cost = self[job_id] = self.model.cost(info, usage, self.now)
        return cost


def _kueue_choice(
    found: Found | None, alternatives: list[Alternative], remaining: int | None, needed: str
) -> _Choice | _Refusal:
    """``kueue`` mode: Kueue's own targets, when the budget allows that many."""
    if found is None or not found.targets:
        why = f"no preemption possible: evicting every allowed candidate does not free enough {needed}"
        return _Refusal(why, alternatives)
    if remaining is not None and len(found.targets) > remaining:
        why = (
            f"no preemption possible: {len(found.targets)} victim(s) needed, "
            f"preemption budget allows {remaining} more"
        )
        return _Refusal(why, alternatives)
    chosen = tuple(w.job_id for w, _ in found.targets)
    marked = [
        Alternative(a.label, a.victims, a.total_cost, a.victims == chosen, a.note) for a in alternatives
    ]
    return _Choice(found.targets, found.allow_borrowing, f"Kueue {found.label}", marked)


def _cost_choice(
    ctx: PreemptionContext,
    candidates: Sequence[AdmittedWorkload],
    found: Found | None,
    alternatives: list[Alternative],
    remaining: int | None,
    needed: str,
) -> _Choice | _Refusal:
    """``cost`` mode: the cheapest allowed set within the budget; Kueue's attempts are listed too."""
    kueue_alternatives = [
        Alternative(f"kueue: {a.label}", a.victims, a.total_cost, False, a.note) for a in alternatives
    ]
    chosen, allow, cost_alternatives, how = cost_mode(ctx, candidates, found, remaining)
    considered = [*kueue_alternatives, *cost_alternatives]
    if chosen is None:
        limit = f" within the preemption budget ({remaining} more allowed)" if remaining is not None else ""
        why = f"no preemption possible: no allowed set of victims frees enough {needed}{limit}"
        return _Refusal(why, considered)
    return _Choice(chosen, allow, how, considered)


def _preempt(
    ctx: PreemptionContext, choice: _Choice, needed: str, excluded: Sequence[str]
) -> PreemptionDecision:
    """The decision to evict ``choice.targets``, each with its reason in words and its cost."""
    threshold = borrow_threshold(ctx.cq, ctx.needs.priority)
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
        for w, reason in choice.targets
    )
    total = sum((v.cost.total for v in victims), Decimal(0))
    why = f"evict {len(victims)} workload(s) to free {needed} ({choice.how}), total cost {total:.2f}"
    return _decision(
        ctx.needs,
        ctx.policy,
        DecisionStatus.PREEMPT,
        why,
        victims,
        choice.alternatives,
        excluded,
        choice.allow_borrowing,
    )


def _why(ctx: PreemptionContext, w: AdmittedWorkload, reason: PreemptionReason, threshold: int | None) -> str:
    """Why ``w`` is a victim, in words: its priority, or what its queue borrows and its share."""
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
        mine, theirs = almost_lcas(ctx.node, node)
        share = dominant_resource_share(theirs, usage, None, weights)[0]
        own = dominant_resource_share(mine, usage, ctx.request, weights)[0]
        return (
            f"fair sharing: {_node_name(theirs)} has dominant resource share {share}, "
            f"{_node_name(mine)} would have {own} after admitting the preemptor; {borrowing}"
        )
    if ctx.policy.fair_sharing:
        return (
            f"{borrowing}; ClusterQueue {ctx.cq.name} stays within its nominal quota with the "
            "preemptor admitted, so it reclaims without comparing shares"
        )
    if w.priority >= ctx.needs.priority:
        return f"{borrowing}; reclaimWithinCohort Any allows priority {w.priority} ≥ {prio}"
    return f"{borrowing}; lower priority ({w.priority} < {prio})"


def _node_name(node: QuotaNode) -> str:
    return f"{'Cohort' if node.is_cohort else 'ClusterQueue'} {node.name}"
