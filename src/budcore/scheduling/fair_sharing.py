"""Fair sharing: Kueue's weighted dominant-resource share, and admission fair sharing.

**Dominant resource share** (Kueue ``pkg/cache/scheduler/fair_sharing.go``,
``dominantResourceShare`` and its ``DRS`` value): for a node (ClusterQueue or Cohort) with a
parent, per resource name, sum over the flavors of the node's subtree quota what the node uses
above that quota (what it borrows), divide by what its parent could lend of that resource (Kueue
``calculateLendable``: ``potentialAvailable`` of the parent, summed over every flavor of the
cohort tree), take the maximum over resources (ties: the first resource name), and divide by the
node's ``fairSharing.weight``. A node that borrows nothing has share 0 *whatever its weight*; a
node of weight 0 that borrows has an infinite share, and two such nodes compare by their
unweighted ratios (Kueue ``CompareDRS``, ``zeroWeightBorrows``).

Decisions compare the exact value (:func:`share_key`, Kueue ``PreciseWeightedShare``): a share is
``borrowed·1000 / (lendable·weight)`` as a correctly rounded float, so shares that are equal as
fractions compare equal, and neither very large weights (123456789) nor weight 0 make distinct
shares tie, as integer per-mille shares did. :func:`dominant_resource_share` is the integer form
(per-mille of lendable, scaled by 1000/weight) for reports and explanations.

budcore adds **flavor-aware resource weights**: borrowing an H100 can count more than borrowing a
T4. With weights ``w_f``, borrowed and lendable amounts are weighted per flavor before summing, so
a queue that borrowed every lendable H100 has a larger share than one that borrowed every T4.
Without weights (the default) the arithmetic is Kueue's.

**Admission fair sharing** (Kueue ``admissionScope: UsageBasedAdmissionFairSharing``): within one
ClusterQueue, LocalQueues are ordered by their exponentially decayed historical usage (half-life
configurable), divided by the LocalQueue's ``fairSharing.weight``, so a namespace that used a lot
recently waits behind one that did not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from budcore.scheduling.quota import FR, QuotaNode, QuotaUsage, potential_available

MAX_SHARE = 2**62  # the integer share of a borrowing node of weight 0 (Kueue: MaxInt)

# A share as decisions compare it: (weighted share, unweighted ratio when the weighted share is
# infinite). Kueue's CompareDRS: two borrowing nodes of weight 0 (both +Inf) compare by their
# unweighted ratios; otherwise the weighted shares decide.
ShareKey = tuple[float, float]
ZERO_SHARE: ShareKey = (0.0, 0.0)

# (parent key, resource) -> what the parent could lend of the resource, flavor-weighted. Static
# for a configuration and flavor weights: a caller that computes many shares keeps one.
LendableCache = MutableMapping[tuple[str, str], int]


def _lendable(
    parent: QuotaNode, resource: str, flavor_weights: Mapping[str, int] | None, cache: LendableCache | None
) -> int:
    """Kueue ``calculateLendable`` for one resource: ``potentialAvailable(parent, fr)`` summed over
    every flavor of ``resource`` in the cohort tree (the root's subtree quota holds them all)."""
    key = (parent.key, resource)
    if cache is not None:
        cached = cache.get(key)
        if cached is not None:
            return cached
    total = 0
    for fr in parent.root().subtree_quota:
        if fr[1] == resource:
            weight = flavor_weights.get(fr[0], 1000) if flavor_weights else 1000
            total += potential_available(parent, fr) * weight
    if cache is not None:
        cache[key] = total
    return total


def _dominant(
    node: QuotaNode,
    usage: QuotaUsage,
    extra: Mapping[FR, int] | None,
    flavor_weights: Mapping[str, int] | None,
    cache: LendableCache | None,
) -> tuple[int, int, str] | None:
    """``(borrowed, lendable, resource)`` of ``node``'s dominant resource with ``extra`` added to
    its usage; None when it has no parent or borrows nothing that its parent could lend.

    Like Kueue, only the flavor-resources of the node's subtree quota count (every one its
    resource groups list, zeros included), and ``extra`` is added to the node's own usage, also
    for a Cohort (Kueue ``DominantResourceShareWith``)."""
    parent = node.parent
    if parent is None:
        return None
    used = usage.of(node)
    borrowing: dict[str, int] | None = None
    for fr, quota in node.subtree_quota.items():
        amount = used.get(fr, 0) - quota
        if extra:
            amount += extra.get(fr, 0)
        if amount > 0:
            if flavor_weights:
                amount *= flavor_weights.get(fr[0], 1000)
            else:
                amount *= 1000
            if borrowing is None:
                borrowing = {}
            borrowing[fr[1]] = borrowing.get(fr[1], 0) + amount
    if borrowing is None:
        return None
    best: tuple[int, int, str] | None = None
    for resource in sorted(borrowing):
        capacity = _lendable(parent, resource, flavor_weights, cache)
        if capacity > 0:
            borrowed = borrowing[resource]
            # borrowed/capacity > best's ratio, exactly (the first resource name wins ties)
            if best is None or borrowed * best[1] > best[0] * capacity:
                best = (borrowed, capacity, resource)
    return best


def share_key(
    node: QuotaNode,
    usage: QuotaUsage,
    extra: Mapping[FR, int] | None = None,
    flavor_weights: Mapping[str, int] | None = None,
    cache: LendableCache | None = None,
) -> ShareKey:
    """``node``'s share with ``extra`` usage added, as Kueue compares shares (``CompareDRS``).

    ``(0, 0)`` when it borrows nothing (whatever its weight), ``(+inf, ratio)`` when it borrows
    with weight 0, else ``(borrowed·1000 / (lendable·weight), 0)``: the exact fraction, rounded
    once, so equal shares compare equal.
    """
    dominant = _dominant(node, usage, extra, flavor_weights, cache)
    if dominant is None:
        return ZERO_SHARE
    borrowed, capacity, _ = dominant
    if node.weight == 0:
        return (math.inf, borrowed / capacity)
    return (borrowed * 1000 / (capacity * node.weight), 0.0)


def dominant_resource_share(
    node: QuotaNode,
    usage: QuotaUsage,
    extra: Mapping[FR, int] | None = None,
    flavor_weights: Mapping[str, int] | None = None,
) -> tuple[int, str]:
    """``(share, dominant resource)`` of ``node`` with ``extra`` usage added, as an integer.

    Per-mille of lendable, scaled by 1000/weight and rounded down (the value Kueue reports in a
    ClusterQueue's status); 0 for a node that borrows nothing, :data:`MAX_SHARE` for a borrowing
    node of weight 0. Decisions compare :func:`share_key`, which does not round.
    """
    dominant = _dominant(node, usage, extra, flavor_weights, None)
    if dominant is None:
        return 0, ""
    borrowed, capacity, resource = dominant
    if node.weight == 0:
        return MAX_SHARE, resource
    return borrowed * 1000 // capacity * 1000 // node.weight, resource


def borrows_in(node: QuotaNode, usage: QuotaUsage, extra: Mapping[FR, int]) -> bool:
    """Whether ``node`` is above its subtree quota, with ``extra`` added, in a flavor-resource of
    ``extra`` (borrowing in other flavor-resources does not count).

    Kueue's fair-sharing admission order puts a workload whose subtree stays within its quota at
    a level before one whose subtree borrows there ("nominal first", per flavor:
    ``scheduler_fs_test.go``'s hierarchical nominal-first cases).
    """
    if node.parent is None:
        return False
    used = usage.of(node)
    quota = node.subtree_quota
    return any(amount > 0 and used.get(fr, 0) + amount > quota.get(fr, 0) for fr, amount in extra.items())


@dataclass(slots=True)
class _Decayed:
    value: float = 0.0  # decayed resource-seconds at `at`
    rate: float = 0.0  # current resource usage (weighted units), integrated over time
    at: datetime | None = None


@dataclass
class LocalQueueUsage:
    """Exponentially decayed usage per LocalQueue for admission fair sharing.

    ``value(t) = value(t0)·2^(−Δ/h) + rate·h/ln 2·(1 − 2^(−Δ/h))``: the integral of the current usage
    rate with exponential forgetting of half-life ``h``. The scheduler calls :meth:`change` when a
    workload of the LocalQueue is admitted (+) or finishes (−), and :meth:`value` before each cycle.
    """

    half_life: timedelta = timedelta(hours=1)
    resource_weights: dict[str, float] = field(default_factory=dict)
    _state: dict[tuple[str, str], _Decayed] = field(default_factory=dict)

    def _advance(self, state: _Decayed, now: datetime) -> None:
        if state.at is not None and now > state.at:
            h = self.half_life.total_seconds()
            dt = (now - state.at).total_seconds()
            decay = 2.0 ** (-dt / h) if h > 0 else 0.0
            state.value = state.value * decay + state.rate * (h / math.log(2)) * (1.0 - decay)
        state.at = now if state.at is None or now > state.at else state.at

    def weighted(self, amounts: Mapping[str, int]) -> float:
        """Resource amounts (milli) collapsed into one number with the configured weights."""
        return sum(amount / 1000.0 * self.resource_weights.get(r, 1.0) for r, amount in amounts.items())

    def change(
        self, local_queue: tuple[str, str], amounts: Mapping[str, int], now: datetime, sign: int
    ) -> None:
        state = self._state.setdefault(local_queue, _Decayed())
        self._advance(state, now)
        state.rate = max(0.0, state.rate + sign * self.weighted(amounts))

    def value(self, local_queue: tuple[str, str], now: datetime) -> float:
        """The LocalQueue's decayed usage at ``now``.

        It advances the stored decay to ``now`` (a change recorded later decays from there), so
        it is state-changing: the :class:`~budcore.scheduling.scheduler.Scheduler` reads it into
        the cycle's snapshot (``AdmissionSnapshot.local_queue_usage``); the cycle never calls it.
        """
        state = self._state.get(local_queue)
        if state is None:
            return 0.0
        self._advance(state, now)
        return state.value
