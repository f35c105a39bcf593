"""budcore's cost mode: among the victim sets Kueue's policies allow, the one cheapest to evict.

Kueue has no counterpart (it approximates the cost of a preemption by "most recently admitted
first", ``common/ordering.go``); this module is budcore's addition next to Kueue's strategies.

**The search** keeps exactly the sets Kueue's policies allow and picks the one of minimum total
:class:`~budcore.ports.preemption_cost.PreemptionCost`. A set is allowed when it is drawn from
one of Kueue's attempts (:mod:`~budcore.scheduling.preemption.classical`; with fair sharing, from
what Kueue's fair-sharing walk accepted), each victim of another ClusterQueue was taken while that
queue was still borrowing (in some order), and the preemptor fits after evicting it with the
borrowing the attempt permits. Up to ``exact_search_limit`` candidates every subset is examined
(cheapest first, so the answer is optimal and minimal); above it a greedy takes the cheapest
candidate per unit of freed shortage until the preemptor fits, drops unneeded victims
most-expensive-first, and is compared with Kueue's own answer: the greedy never costs more than
``kueue`` mode.

The default :class:`PreemptionCostModel` is in :mod:`~budcore.scheduling.preemption.cost_model`
(the policy needs it without the search).
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from decimal import Decimal

from budcore.scheduling.preemption.classical import Attempt, attempts
from budcore.scheduling.preemption.common import (
    Found,
    OrderingKey,
    PreemptionContext,
    Target,
    fits,
    is_borrowing,
    ordering_key,
)
from budcore.scheduling.preemption.cost_model import DefaultPreemptionCostModel
from budcore.scheduling.preemption.fairsharing import fair_preemptions, fair_sharing_applies
from budcore.scheduling.snapshot import AdmittedWorkload, Alternative, PreemptionReason

__all__ = ["DefaultPreemptionCostModel", "cost_mode"]

# --------------------------------------------------------------------------------------------
# Cost mode: the cheapest allowed set

# (total cost, number of victims, victims, the attempt that allows them, label)
_Option = tuple[Decimal, int, list[AdmittedWorkload], Attempt, str]

_FAIR_SHARING = "fair sharing"


def cost_mode(
    ctx: PreemptionContext,
    candidates: Sequence[AdmittedWorkload],
    kueue_found: Found | None,
    max_victims: int | None,
) -> tuple[list[Target] | None, bool, list[Alternative], str]:
    """The cheapest allowed victim set (see the module docstring), at most ``max_victims`` of them.

    Returns the victims in Kueue's candidate order with their reasons (None: no allowed set
    frees enough), whether the preemptor may borrow once they are gone, every option compared
    (the chosen one first), and how the search went.
    """
    allowed = _cost_attempts(ctx, candidates)
    pool_ids = {w.job_id for a in allowed for w in a.candidates}
    pool = sorted((w for w in candidates if w.job_id in pool_ids), key=lambda w: ordering_key(ctx, w))
    if len(pool) <= ctx.policy.exact_search_limit:
        how = f"exact search over {len(pool)} candidate(s)"
        options = _exact_options(ctx, pool, allowed, max_victims)
    else:
        how = (
            f"greedy over {len(pool)} candidate(s) (> {ctx.policy.exact_search_limit}), "
            "bounded by Kueue's set"
        )
        options = _greedy_options(ctx, allowed, pool_ids, kueue_found, max_victims)
    options.sort(key=lambda o: (o[0], o[1]))
    alternatives = [
        Alternative(label, tuple(w.job_id for w in chosen_set), total, i == 0, attempt.label)
        for i, (total, _, chosen_set, attempt, label) in enumerate(options)
    ]
    if not options:
        return None, True, alternatives, how
    _, _, chosen_set, attempt, _ = options[0]
    allow = attempt.allow_borrowing and not (
        attempt.threshold is not None
        and any(w.cluster_queue != ctx.cq.name and w.priority >= attempt.threshold for w in chosen_set)
    )
    targets = [
        (w, _reason_for(ctx, w, attempt)) for w in sorted(chosen_set, key=lambda w: ordering_key(ctx, w))
    ]
    return targets, allow, alternatives, how


def _cost_attempts(ctx: PreemptionContext, candidates: Sequence[AdmittedWorkload]) -> list[Attempt]:
    """The attempts whose subsets cost mode may choose from."""
    if fair_sharing_applies(ctx, candidates):
        # Fair sharing admits a victim only against the shares as they evolve during Kueue's walk:
        # the allowed sets are the subsets of what that walk accepted.
        found = fair_preemptions(ctx, candidates)
        if found is None:
            return []
        reasons: dict[str, PreemptionReason] = {w.job_id: reason for w, reason in found.removed}
        return [Attempt(_FAIR_SHARING, tuple(w for w, _ in found.removed), True, None, reasons)]
    return attempts(ctx, candidates)


def _exact_options(
    ctx: PreemptionContext,
    pool: Sequence[AdmittedWorkload],
    allowed: Sequence[Attempt],
    max_victims: int | None,
) -> list[_Option]:
    best = _exact(ctx, pool, allowed, max_victims)
    if best is None:
        return []
    return [(_total(ctx, best[0]), len(best[0]), best[0], best[1], "exact minimum cost")]


def _greedy_options(
    ctx: PreemptionContext,
    allowed: Sequence[Attempt],
    pool_ids: Collection[str],
    kueue_found: Found | None,
    max_victims: int | None,
) -> list[_Option]:
    """The greedy's answer per attempt, and Kueue's own set when allowed (the greedy's bound)."""
    options: list[_Option] = []
    for attempt in allowed:
        chosen = _greedy(ctx, attempt, pool_ids)
        if chosen is not None and (max_victims is None or len(chosen) <= max_victims):
            options.append((_total(ctx, chosen), len(chosen), chosen, attempt, f"greedy: {attempt.label}"))
    if kueue_found is not None and kueue_found.targets:
        kueue_set = [w for w, _ in kueue_found.targets]
        kueue_attempt = _valid_in_any(ctx, kueue_set, allowed)
        if kueue_attempt is not None and (max_victims is None or len(kueue_set) <= max_victims):
            options.append((_total(ctx, kueue_set), len(kueue_set), kueue_set, kueue_attempt, "Kueue's set"))
    return options


def _valid_set(ctx: PreemptionContext, subset: Sequence[AdmittedWorkload], attempt: Attempt) -> bool:
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
    return fits(sim, ctx.node, ctx.request, allow)


def _fits_without(ctx: PreemptionContext, victims: Sequence[AdmittedWorkload], allow_borrowing: bool) -> bool:
    sim = ctx.snapshot.usage.overlay()
    for w in victims:
        sim.add(w.cluster_queue, w.usage, -1)
    return fits(sim, ctx.node, ctx.request, allow_borrowing)


def _valid_in_any(
    ctx: PreemptionContext, subset: Sequence[AdmittedWorkload], allowed: Sequence[Attempt]
) -> Attempt | None:
    ids = {w.job_id for w in subset}
    for attempt in allowed:
        if ids <= {w.job_id for w in attempt.candidates} and _valid_set(ctx, subset, attempt):
            return attempt
    return None


def _reason_for(ctx: PreemptionContext, w: AdmittedWorkload, attempt: Attempt) -> PreemptionReason:
    if w.cluster_queue == ctx.cq.name:
        return PreemptionReason.IN_CLUSTER_QUEUE
    if attempt.reasons is not None:
        return attempt.reasons[w.job_id]  # the reason Kueue's fair-sharing walk gave it
    if attempt.threshold is not None and w.priority < attempt.threshold:
        return PreemptionReason.IN_COHORT_RECLAIM_WHILE_BORROWING
    return PreemptionReason.IN_COHORT_RECLAMATION


def _exact(
    ctx: PreemptionContext,
    pool: Sequence[AdmittedWorkload],
    allowed: Sequence[Attempt],
    max_victims: int | None,
) -> tuple[list[AdmittedWorkload], Attempt] | None:
    """Cheapest allowed subset (ties: fewer victims, then Kueue's order): optimal and minimal."""
    allowed = [a for a in allowed if _fits_without(ctx, a.candidates, a.allow_borrowing)]
    if not allowed:  # fitting is monotone in what is evicted: no subset can work either
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
        attempt = _valid_in_any(ctx, chosen, allowed)
        if attempt is not None:
            return chosen, attempt
    return None


def _greedy(
    ctx: PreemptionContext, attempt: Attempt, pool_ids: Collection[str]
) -> list[AdmittedWorkload] | None:
    """Cheapest cost per unit of covered shortage first, then drop unneeded victims, dearest first."""
    base = ctx.snapshot.usage
    deficit = {fr: ctx.request[fr] - max(0, base.available(ctx.node, fr)) for fr in ctx.frs}
    cands = [w for w in attempt.candidates if w.job_id in pool_ids]

    def ratio(w: AdmittedWorkload) -> tuple[Decimal, OrderingKey]:
        covered = sum(Decimal(min(w.usage.get(fr, 0), d)) / Decimal(d) for fr, d in deficit.items() if d > 0)
        per_unit = ctx.costs[w.job_id].total / covered if covered > 0 else Decimal("Infinity")
        return per_unit, ordering_key(ctx, w)

    cands.sort(key=ratio)
    usage = base.overlay()
    chosen: list[AdmittedWorkload] = []
    found = False
    for w in cands:
        if w.cluster_queue != ctx.cq.name and not is_borrowing(usage, ctx.cq_node(w.cluster_queue), ctx.frs):
            continue
        usage.add(w.cluster_queue, w.usage, -1)
        chosen.append(w)
        if _valid_set(ctx, chosen, attempt):
            found = True
            break
    if not found:
        return None
    for w in sorted(chosen, key=lambda v: ctx.costs[v.job_id].total, reverse=True):
        rest = [v for v in chosen if v.job_id != w.job_id]
        if rest and _valid_set(ctx, rest, attempt):
            chosen = rest
    return chosen


def _total(ctx: PreemptionContext, victims: Sequence[AdmittedWorkload]) -> Decimal:
    return sum((ctx.costs[w.job_id].total for w in victims), Decimal(0))
