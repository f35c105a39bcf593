"""budcore's cost mode: among the victim sets Kueue's policies allow, the one cheapest to evict.

Kueue has no counterpart (it approximates the cost of a preemption by "most recently admitted
first", ``common/ordering.go``); this module is budcore's addition next to Kueue's strategies, and
holds both halves of it: the search and the default :class:`PreemptionCostModel`.

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

**The default cost model** (:class:`DefaultPreemptionCostModel`): cost of evicting a running
workload = lost work + restart overhead + near-completion penalty:

- **lost work**: accelerator-seconds since the last checkpoint × the hourly price of the victim's
  flavor / 3600. The reference point is the last reported checkpoint; a training job that reports
  none is assumed to checkpoint every ``checkpoint_interval`` since it started (default 3600 s), so
  it loses ``elapsed mod interval``; a batch job without checkpoints loses everything since it
  started; a service keeps no in-flight work (it only pays its restart). A checkpoint no older
  than ``fresh_checkpoint`` (default: the 30 s grace period, within which the job can checkpoint
  on SIGTERM) counts as zero lost work.
- **restart overhead**: per job type, the seconds the job needs to be useful again (model load
  for services, checkpoint restore for training), priced like lost work.
- **near-completion penalty**: a fixed, high amount when progress exceeds ``near_completion``
  (default 90 %): evicting a job that is almost done wastes its whole run and delays its result.

Only accelerator resources are priced (:func:`budcore.domain.resources.is_accelerator`): they are
what a GPU fleet pays for; CPU-only victims cost only their near-completion penalty.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from budcore.domain.errors import ValidationError
from budcore.domain.job import JobType
from budcore.domain.resources import is_accelerator
from budcore.ports.preemption_cost import FlavorResource, PreemptionCost, VictimInfo
from budcore.scheduling.preemption.classical import Attempt, attempts
from budcore.scheduling.preemption.common import (
    Found,
    PreemptionContext,
    Target,
    borrow_threshold,
    fits,
    is_borrowing,
    ordering_key,
)
from budcore.scheduling.preemption.fairsharing import fair_preemptions, fair_sharing_applies
from budcore.scheduling.snapshot import AdmittedWorkload, Alternative, PreemptionReason

# --------------------------------------------------------------------------------------------
# The default cost model

DEFAULT_CHECKPOINT_INTERVALS: Mapping[JobType, timedelta | None] = {
    JobType.TRAINING: timedelta(hours=1),
    JobType.BATCH: None,  # runs to completion: an eviction loses everything since the start
    JobType.SERVICE: None,  # stateless: nothing in flight to lose
}
DEFAULT_RESTART_OVERHEAD: Mapping[JobType, timedelta] = {
    JobType.TRAINING: timedelta(minutes=10),  # restore checkpoint, rebuild data loaders, warm up
    JobType.SERVICE: timedelta(minutes=5),  # model load before serving again
    JobType.BATCH: timedelta(minutes=1),
}

_HOUR = Decimal(3600)


@dataclass(frozen=True, slots=True)
class DefaultPreemptionCostModel:
    """Lost work + restart overhead + near-completion penalty (see the module docstring).

    ``prices`` maps a flavor to the hourly price of one accelerator in it; a victim's own
    ``hourly_price`` wins; ``default_hourly_price`` covers flavors with no price (so an unpriced
    GPU is never free).
    """

    prices: Mapping[str, Decimal] = field(default_factory=dict)
    default_hourly_price: Decimal = Decimal(1)
    checkpoint_intervals: Mapping[JobType, timedelta | None] = field(
        default_factory=lambda: dict(DEFAULT_CHECKPOINT_INTERVALS)
    )
    restart_overhead: Mapping[JobType, timedelta] = field(
        default_factory=lambda: dict(DEFAULT_RESTART_OVERHEAD)
    )
    fresh_checkpoint: timedelta = timedelta(seconds=30)
    near_completion: float = 0.9
    near_completion_penalty: Decimal = Decimal(1000)

    def __post_init__(self) -> None:
        for flavor, price in self.prices.items():
            if price < 0:
                raise ValidationError("price must not be negative", path=f"prices[{flavor}]")
        if self.default_hourly_price < 0:
            raise ValidationError("price must not be negative", path="default_hourly_price")
        for job_type, interval in self.checkpoint_intervals.items():
            if interval is not None and interval <= timedelta(0):
                raise ValidationError("interval must be positive", path=f"checkpoint_intervals[{job_type}]")
        for job_type, overhead in self.restart_overhead.items():
            if overhead < timedelta(0):
                raise ValidationError("overhead must not be negative", path=f"restart_overhead[{job_type}]")
        if self.fresh_checkpoint < timedelta(0):
            raise ValidationError("must not be negative", path="fresh_checkpoint")
        if not 0.0 <= self.near_completion <= 1.0:
            raise ValidationError("must be within [0, 1]", path="near_completion")
        if self.near_completion_penalty < 0:
            raise ValidationError("must not be negative", path="near_completion_penalty")

    def _price_per_second(
        self, victim: VictimInfo, usage: Mapping[FlavorResource, int]
    ) -> tuple[float, Decimal]:
        """(accelerators held, price per second of all of them)."""
        gpus = 0.0
        per_second = Decimal(0)
        for (flavor, resource), amount in usage.items():
            if not is_accelerator(resource) or amount <= 0:
                continue
            units = Decimal(amount) / 1000
            hourly = victim.hourly_price
            if hourly is None:
                hourly = self.prices.get(flavor, self.default_hourly_price)
            gpus += float(units)
            per_second += units * hourly / _HOUR
        return gpus, per_second

    def lost_seconds(self, victim: VictimInfo, now: datetime) -> tuple[float, str]:
        """Wall-clock seconds of work an eviction at ``now`` throws away, and why."""
        started = victim.started_at
        if started is None or started >= now:
            return 0.0, "not running yet"
        if victim.job_type is JobType.SERVICE and victim.checkpoint_interval is None:
            return 0.0, "service keeps no in-flight work"
        declared = victim.checkpoint_interval
        if declared is None:
            interval = self.checkpoint_intervals.get(victim.job_type)
        else:  # an explicit zero declares a job that never checkpoints
            interval = declared if declared > timedelta(0) else None
        reference = started
        how = "since start"
        last = victim.last_checkpoint_at
        if last is not None and started <= last <= now:
            reference, how = last, "since last checkpoint"
        elif interval is not None:
            elapsed = now - started
            periods = elapsed // interval
            reference, how = started + periods * interval, "since assumed periodic checkpoint"
        lost = now - reference
        if reference != started and lost <= self.fresh_checkpoint:
            return 0.0, f"checkpointed {lost.total_seconds():.0f}s ago"
        return lost.total_seconds(), how

    def cost(self, victim: VictimInfo, usage: Mapping[FlavorResource, int], now: datetime) -> PreemptionCost:
        gpus, per_second = self._price_per_second(victim, usage)
        seconds, how = self.lost_seconds(victim, now)
        lost = per_second * Decimal(str(seconds))
        restart = self.restart_overhead.get(victim.job_type, timedelta(0))
        restart_cost = per_second * Decimal(str(restart.total_seconds())) if victim.started_at else Decimal(0)
        penalty = Decimal(0)
        notes = [f"{seconds:.0f}s {how}"]
        if victim.progress is not None and victim.progress > self.near_completion:
            penalty = self.near_completion_penalty
            notes.append(f"{victim.progress:.0%} complete")
        return PreemptionCost(
            lost_gpu_seconds=gpus * seconds,
            lost_work=lost,
            restart_overhead=restart_cost,
            near_completion_penalty=penalty,
            explanation=", ".join(notes),
        )


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
        found = fair_preemptions(ctx, candidates, borrow_threshold(ctx.cq, ctx.needs.priority))
        if found is None:
            return []
        return [Attempt(_FAIR_SHARING, tuple(w for w, _ in found.removed), True, None)]
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
    if attempt.label == _FAIR_SHARING:
        return PreemptionReason.IN_COHORT_FAIR_SHARING
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

    def ratio(w: AdmittedWorkload) -> tuple[Decimal, tuple[int, int, int, float, str]]:
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
