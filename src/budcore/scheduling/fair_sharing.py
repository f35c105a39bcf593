"""Fair sharing: Kueue's weighted dominant-resource share, and admission fair sharing.

**Dominant resource share** (Kueue ``dominantResourceShare``): for a node (ClusterQueue or Cohort)
with a parent, per resource name, sum over flavors what the node uses above its own subtree quota
(what it borrows), divide by what its parent can lend of that resource (summed over flavors), take
the maximum over resources, and divide by the node's ``fairSharing.weight``. A weight of 0 puts the
node last; a node that borrows nothing has share 0. Shares are integers in Kueue's units
(per-mille of lendable, scaled by 1000/weight).

budcore adds **flavor-aware resource weights**: borrowing an H100 can count more than borrowing a
T4. With weights ``w_f``, borrowed and lendable amounts are weighted per flavor before summing, so
a queue that borrowed every lendable H100 has a larger share than one that borrowed every T4.

**Admission fair sharing** (Kueue ``admissionScope: UsageBasedAdmissionFairSharing``): within one
ClusterQueue, LocalQueues are ordered by their exponentially decayed historical usage (half-life
configurable), divided by the LocalQueue's ``fairSharing.weight``, so a namespace that used a lot
recently waits behind one that did not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from budcore.scheduling.quota import FR, QuotaNode, QuotaUsage, potential_available

MAX_SHARE = 2**62  # "always last" (weight 0)


def dominant_resource_share(
    node: QuotaNode,
    usage: QuotaUsage,
    extra: Mapping[FR, int] | None = None,
    flavor_weights: Mapping[str, int] | None = None,
) -> tuple[int, str]:
    """``(share, dominant resource)`` of ``node`` with ``extra`` usage added (Kueue semantics)."""
    parent = node.parent
    if parent is None:
        return 0, ""
    if node.weight == 0:
        return MAX_SHARE, ""
    used = usage.of(node)
    borrowing: dict[str, int] = {}
    frs = set(used) | set(extra or ()) | set(node.subtree_quota)
    for fr in frs:
        amount = used.get(fr, 0) + (extra.get(fr, 0) if extra else 0) - node.subtree_quota.get(fr, 0)
        if amount > 0:
            weight = flavor_weights.get(fr[0], 1000) if flavor_weights else 1000
            borrowing[fr[1]] = borrowing.get(fr[1], 0) + amount * weight
    if not borrowing:
        return 0, ""
    lendable: dict[str, int] = {}
    for fr in parent.subtree_quota:
        if fr[1] in borrowing:
            weight = flavor_weights.get(fr[0], 1000) if flavor_weights else 1000
            lendable[fr[1]] = lendable.get(fr[1], 0) + potential_available(parent, fr) * weight
    share, dominant = -1, ""
    for resource in sorted(borrowing):
        capacity = lendable.get(resource, 0)
        if capacity > 0:
            ratio = borrowing[resource] * 1000 // capacity
            if ratio > share:
                share, dominant = ratio, resource
    if share < 0:
        return 0, ""
    return share * 1000 // node.weight, dominant


def hierarchical_share(
    node: QuotaNode,
    usage: QuotaUsage,
    extra: Mapping[FR, int] | None = None,
    flavor_weights: Mapping[str, int] | None = None,
) -> tuple[int, ...]:
    """Shares along the path from just below the root down to ``node``.

    Comparing these tuples orders two ClusterQueues by the shares of their ancestors at the level
    where their paths diverge: Kueue's hierarchical fair-sharing tournament.
    """
    return tuple(
        dominant_resource_share(n, usage, extra, flavor_weights)[0] for n in node.path_from_root()[1:]
    )


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
