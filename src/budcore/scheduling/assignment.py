"""Flavor assignment: which ResourceFlavor serves each resource of each pod set.

Kueue's ``flavorassigner`` semantics: for every pod set and every resource group that covers its
resources, flavors are tried in the order the ClusterQueue lists them. A flavor's outcome is the
worst over the group's resources of

- ``FIT``: the request fits in what is available now (possibly by borrowing from the cohort);
- ``PREEMPT``: it would fit within what the queue could ever get (``potential_available``), so
  evicting other workloads could make room;
- ``NO_FIT``: it exceeds even that.

``flavorFungibility`` decides whether to stop at the first flavor that fits by borrowing
(``whenCanBorrow: MayStopSearch``) or needs preemption (``whenCanPreempt: MayStopSearch``), or to
keep looking for one that fits outright (``TryNextFlavor``). A fit without borrowing always stops
the search. Earlier pod sets' assignments count against later ones (a gang is sized as a whole).

With a *preemption oracle* (Kueue's ``preemptionOracle.SimulatePreemption``, see
:class:`budcore.scheduling.preemption.PreemptionOracle`), a resource that needs preemption is
simulated: a flavor where the simulation finds no victims (``noPreemptionCandidates``) never ends
the search, and whether a flavor needing preemption borrows is decided on the usage left once the
victims are gone (``borrowAfterPreemptions``). Without one, a flavor needing preemption ends the
search whenever the queue's policies can preempt at all, and borrows when current usage plus the
request exceeds its quota.

A ClusterQueue that covers the resource ``pods`` is charged one ``pods`` per pod of each pod set
(Kueue ``assignFlavors``: ``requests[pods] = podSet.Count`` when the queue has a resource group
for ``pods``).

A job asking for a specific accelerator type only gets flavors whose node labels say so (see
:class:`AcceleratorMatcher`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from budcore.catalog import CatalogResolver
from budcore.catalog import default_normalize as default_normalize  # its home before the catalog moved
from budcore.domain.job import ResourceRequest
from budcore.domain.quantity import MILLI
from budcore.scheduling.queues import ClusterQueue, FlavorQuotas, FungibilityAction, ResourceFlavor
from budcore.scheduling.quota import (
    FR,
    QuotaNode,
    QuotaUsage,
    Shortage,
    borrowing_after,
    potential_available,
    shortage,
)


class Mode(IntEnum):
    """Outcome of trying a flavor, ordered worst to best (Kueue's ``FlavorAssignmentMode``)."""

    NO_FIT = 0
    PREEMPT = 1
    FIT = 2


# Kueue's special resource: a ClusterQueue covering it is charged one per pod. Amounts are
# milli-units, so one pod is 1000 (``nominalQuota: 4`` for ``pods`` loads as 4000).
PODS = "pods"
ONE_POD = MILLI

# What a preemption oracle says about one (flavor, resource) that needs preemption, for a request
# of that many milli-units of it (Kueue ``SimulatePreemption``): None when the simulation finds no
# victims (``NoCandidates``); otherwise ``(reclaim, borrows)``: whether every victim belongs to
# another ClusterQueue (``Reclaim``, preferred over ``Preempt``) and whether the queue would still
# borrow once the victims are gone (``borrowAfterPreemptions`` > 0).
Simulation = tuple[bool, bool] | None
SimulatePreemption = Callable[[FR, int], Simulation]

# Kueue's granular preemption modes (flavorassigner ``preemptionMode``), worst to best; a flavor
# is ranked by (mode, not borrowing), and represented by its worst resource (``isPreferred``).
_NO_FIT, _NO_CANDIDATES, _PREEMPT, _RECLAIM, _FIT = range(5)


# Node labels that name the accelerator model of a node, in the order they are consulted.
ACCELERATOR_LABELS = (
    "budcore.io/accelerator",
    "nvidia.com/gpu.product",
    "amd.com/gpu.product-name",
    "gpu.intel.com/product",
    "habana.ai/gaudi.product",
    "cloud.google.com/gke-accelerator",
    "node.kubernetes.io/instance-gpu",
)

# Resolves an accelerator name (a job's requested type, a node or flavor label) to one identity;
# None: it names none. The default is the built-in catalog's resolver (:class:`CatalogResolver`).
Normalizer = Callable[[str], str | None]

# The resolver used to be defined here under this name; it now lives with the catalog.
CatalogNormalizer = CatalogResolver


@dataclass(frozen=True, slots=True)
class AcceleratorMatcher:
    """Decides whether a flavor provides the accelerator type a job asks for.

    A flavor matches type ``T`` when its name is ``T``, or one of :data:`ACCELERATOR_LABELS` in its
    ``nodeLabels`` normalizes to the same value as ``T``. A flavor with no accelerator label only
    matches by name. ``normalize`` maps product strings such as ``NVIDIA-H100-80GB-HBM3`` and slugs
    such as ``nvidia-h100-80gb`` to one identity. The default resolves through the built-in
    accelerator catalog (:class:`~budcore.catalog.CatalogResolver`; the catalog sits below this
    package, so scheduling never imports :mod:`budcore.hardware`); inject
    ``CatalogResolver(load_catalog(...))`` for a catalog with overrides, or
    :func:`~budcore.catalog.default_normalize` for no catalog at all.
    """

    normalize: Normalizer = field(default_factory=CatalogResolver)
    # Flavor name -> accelerator type learnt from the nodes the flavor selects (see
    # :func:`flavor_types_from_nodes`), for flavors whose own labels do not name the model.
    flavor_types: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def flavor_type(self, flavor: ResourceFlavor) -> str | None:
        for label in ACCELERATOR_LABELS:
            value = flavor.node_labels.get(label)
            if value:
                return self.normalize(value)
        known = self.flavor_types.get(flavor.name)
        return self.normalize(known) if known else None

    def with_flavor_types(self, flavor_types: Mapping[str, str]) -> AcceleratorMatcher:
        """The same matcher, also knowing these flavors' accelerator types (the given ones win)."""
        return AcceleratorMatcher(self.normalize, {**self.flavor_types, **flavor_types})

    def matches(self, wanted: str, flavor: ResourceFlavor) -> bool:
        if flavor.name == wanted:
            return True
        flavor_type = self.flavor_type(flavor)
        return flavor_type is not None and flavor_type == self.normalize(wanted)


def node_accelerator_type(labels: Mapping[str, str], normalize: Normalizer) -> str | None:
    """The accelerator model a node's labels name (:data:`ACCELERATOR_LABELS`, in order), normalized."""
    for label in ACCELERATOR_LABELS:
        value = labels.get(label)
        if value:
            return normalize(value)
    return None


def flavor_types_from_nodes(
    flavors: Mapping[str, ResourceFlavor], nodes: Iterable[Any], normalize: Normalizer
) -> dict[str, str]:
    """Accelerator type of each flavor whose selected nodes all name the same model.

    Kueue users often select a flavor's nodes by a pool or instance-type label rather than the GPU
    product (``nodeLabels: {cloud.google.com/gke-nodepool: h100-pool}``); such a flavor still
    provides exactly one accelerator model when every node it selects carries that model's label,
    so a job asking for that model matches it. A flavor whose nodes mix models, or whose nodes name
    none, gets no type (it then matches only by its own labels or name). ``nodes`` are objects with
    ``labels`` and ``matches(selector)`` (:class:`budcore.domain.cluster.Node`).
    """
    nodes = list(nodes)
    out: dict[str, str] = {}
    for name, flavor in flavors.items():
        types = {
            node_accelerator_type(node.labels, normalize)
            for node in nodes
            if node.matches(flavor.node_labels)
        }
        types.discard(None)
        if len(types) == 1:
            (only,) = types
            assert only is not None
            out[name] = only
    return out


@dataclass(slots=True)
class FlavorChoice:
    """The outcome for one resource group of one pod set."""

    flavor: str
    mode: Mode
    borrows: bool
    shortages: list[tuple[FR, int]] = field(default_factory=list)  # (flavor, resource), amount asked


@dataclass(slots=True)
class Assignment:
    """Flavors for a whole workload, and what admitting it would take."""

    mode: Mode
    borrows: bool
    flavors: dict[str, dict[str, str]]  # pod set -> resource -> flavor
    usage: dict[FR, int]  # total per (flavor, resource)
    reasons: list[str]  # fixed reasons (uncovered resource, no matching flavor)
    shortages: list[tuple[FR, int]] = field(default_factory=list)

    def describe(self, node: QuotaNode, usage: QuotaUsage) -> PendingReason:
        """Why the workload does not fit now: the numbers as they are in ``usage``, words on demand."""
        return PendingReason(
            tuple(self.reasons), tuple(shortage(node, fr, usage, amount) for fr, amount in self.shortages)
        )


@dataclass(frozen=True, slots=True)
class PendingReason:
    """A reason a workload stays pending; ``str()`` renders it (once captured, it never changes)."""

    fixed: tuple[str, ...] = ()
    shortages: tuple[Shortage, ...] = ()

    def __str__(self) -> str:
        texts = [*self.fixed, *(str(s) for s in self.shortages)]
        return "; ".join(dict.fromkeys(texts))


def assign_flavors(
    cq: ClusterQueue,
    node: QuotaNode,
    request: ResourceRequest,
    usage: QuotaUsage,
    flavors: Mapping[str, ResourceFlavor],
    matcher: AcceleratorMatcher,
    simulate: SimulatePreemption | None = None,
) -> Assignment:
    """Assign a flavor to every resource group each pod set touches (gang: all or nothing).

    ``simulate`` is the preemption oracle for this workload (see :data:`SimulatePreemption` and
    :meth:`budcore.scheduling.preemption.PreemptionOracle.for_workload`); without one a flavor
    needing preemption is judged statically, as before the oracle existed.

    Shortages are recorded as numbers; :meth:`Assignment.describe` turns them into words only when
    a workload is really left pending (formatting is the costly part of a failed attempt).
    """
    assigned: dict[FR, int] = {}
    per_pod_set: dict[str, dict[str, str]] = {}
    worst = Mode.FIT
    borrows = False
    shortages: list[tuple[FR, int]] = []
    wanted = request.accelerator_type
    counts_pods = PODS in node.covered
    for pod_set in request.pod_sets:
        total: Mapping[str, int] = pod_set.total
        if counts_pods:
            # Kueue sets (not adds) the pod set's ``pods`` request to its pod count.
            total = {**total, PODS: pod_set.count * ONE_POD}
        chosen: dict[str, str] = {}
        uncovered = [r for r in total if r not in node.covered]
        if uncovered:
            return Assignment(
                Mode.NO_FIT,
                False,
                {},
                {},
                [f"resource {r} is not covered by ClusterQueue {cq.name}" for r in sorted(uncovered)],
            )
        for group in cq.resource_groups:
            needed = {r: total[r] for r in group.covered_resources if r in total}
            if not needed:
                continue
            if simulate is None:
                choice = _choose_flavor(
                    cq, node, group.flavors, needed, assigned, usage, flavors, matcher, wanted
                )
            else:
                choice = _choose_flavor_simulated(
                    cq, node, group.flavors, needed, assigned, usage, flavors, matcher, wanted, simulate
                )
            if choice is None:
                what = f"accelerator type {wanted}" if wanted else "the request"
                names = ", ".join(f.name for f in group.flavors)
                return Assignment(
                    Mode.NO_FIT,
                    False,
                    {},
                    {},
                    [f"no flavor of ClusterQueue {cq.name} ({names}) provides {what}"],
                )
            if choice.mode < worst:
                worst = choice.mode
            borrows = borrows or choice.borrows
            shortages.extend(choice.shortages)
            for resource, amount in needed.items():
                chosen[resource] = choice.flavor
                fr = (choice.flavor, resource)
                assigned[fr] = assigned.get(fr, 0) + amount
        per_pod_set[pod_set.name] = chosen
    if worst is Mode.FIT:
        shortages = []
    return Assignment(worst, borrows, per_pod_set, assigned, [], shortages)


def _choose_flavor(
    cq: ClusterQueue,
    node: QuotaNode,
    candidates: tuple[FlavorQuotas, ...],
    needed: Mapping[str, int],
    assigned: Mapping[FR, int],
    usage: QuotaUsage,
    flavors: Mapping[str, ResourceFlavor],
    matcher: AcceleratorMatcher,
    wanted: str | None,
) -> FlavorChoice | None:
    fungibility = cq.flavor_fungibility
    # Kueue stops at a flavor that needs preemption only when its preemption oracle finds victims
    # there; a queue whose policies never preempt finds none (``noPreemptionCandidates``), so for
    # it such a flavor never ends the search and a later flavor that fits is used.
    when_can_preempt = fungibility.when_can_preempt if cq.can_preempt else FungibilityAction.TRY_NEXT_FLAVOR
    best: FlavorChoice | None = None
    tried: list[tuple[FR, int]] = []  # every shortage met on the way, for the explanation
    for flavor_quotas in candidates:
        name = flavor_quotas.name
        if wanted is not None and not matcher.matches(wanted, flavors[name]):
            continue
        mode = Mode.FIT
        borrows = False
        shortages: list[tuple[FR, int]] = []
        has_parent = node.parent is not None
        for resource, amount in needed.items():
            fr = (name, resource)
            total = amount + assigned.get(fr, 0) if assigned else amount
            if total <= usage.available(node, fr):
                res_mode = Mode.FIT
            else:
                res_mode = Mode.PREEMPT if total <= potential_available(node, fr) else Mode.NO_FIT
                shortages.append((fr, total))
            if has_parent and not borrows and borrowing_after(node, fr, usage, total) > 0:
                borrows = True
            if res_mode < mode:
                mode = res_mode
        tried.extend(shortages)
        choice = FlavorChoice(name, mode, borrows, shortages)
        if not _should_try_next(mode, borrows, fungibility.when_can_borrow, when_can_preempt):
            if mode is not Mode.FIT:
                choice.shortages = tried
            return choice
        if best is None or choice.mode > best.mode:
            best = choice
    if best is not None and best.mode is not Mode.FIT:
        best.shortages = tried
    return best


# A flavor that did not end the search: its choice, rank and rank borrowing, and the resources
# still to simulate (deferred under ``whenCanPreempt: TryNextFlavor``).
_Tried = tuple[FlavorChoice, int, bool, list[tuple[FR, int]]]


def _choose_flavor_simulated(
    cq: ClusterQueue,
    node: QuotaNode,
    candidates: tuple[FlavorQuotas, ...],
    needed: Mapping[str, int],
    assigned: Mapping[FR, int],
    usage: QuotaUsage,
    flavors: Mapping[str, ResourceFlavor],
    matcher: AcceleratorMatcher,
    wanted: str | None,
    simulate: SimulatePreemption,
) -> FlavorChoice | None:
    """Kueue's ``findFlavorForPodSets`` with the preemption oracle (kubernetes-sigs/kueue v0.20,
    ``pkg/scheduler/flavorassigner/flavorassigner.go``).

    Per resource (``fitsResourceQuota``): fit, or, when the request is within what the queue could
    ever get, the oracle's verdict — no candidates, preempt or reclaim, and whether the queue
    borrows once the victims are gone. A flavor is represented by its worst resource, borrowing
    worse than not at the same mode (Kueue's representative mode: its borrowing is that
    resource's, which is what ``whenCanBorrow`` looks at; the assignment's ``borrows`` is whether
    any resource borrows). It ends the search unless ``shouldTryNextFlavor`` says otherwise
    (always for no candidates), and among the flavors tried the preferred one wins
    (``isPreferred``, default preference: better mode, then not borrowing; a tie keeps the
    earlier flavor).

    What may be attempted at all stays budcore's (Kueue only simulates when the request is within
    nominal, may reclaim in the hierarchy, or may preempt while borrowing; budcore lets a queue
    preempt within itself while borrowing, an open upstream question): every request within
    ``potential_available`` is simulated.

    Simulations are the costly part, so they are run only when their answer can matter: not for a
    flavor that does not fit anyway, and under ``whenCanPreempt: TryNextFlavor`` (where a flavor
    needing preemption never ends the search) only once no later flavor has ended it.
    """
    fungibility = cq.flavor_fungibility
    when_can_borrow, when_can_preempt = fungibility.when_can_borrow, fungibility.when_can_preempt
    can_preempt = cq.can_preempt
    defer = when_can_preempt is FungibilityAction.TRY_NEXT_FLAVOR
    tried_flavors: list[_Tried] = []  # flavors that did not end the search
    tried: list[tuple[FR, int]] = []  # every shortage met on the way, for the explanation
    for flavor_quotas in candidates:
        name = flavor_quotas.name
        if wanted is not None and not matcher.matches(wanted, flavors[name]):
            continue
        choice, rank, rank_borrows, preempting = _unsimulated(name, needed, assigned, node, usage)
        tried.extend(choice.shortages)
        if rank == _NO_FIT:
            tried_flavors.append((choice, rank, rank_borrows, []))
            continue
        if preempting:
            if defer and can_preempt:
                # It cannot end the search whatever the oracle says: ask only if it comes to that.
                tried_flavors.append((choice, rank, rank_borrows, preempting))
                continue
            rank, rank_borrows = _simulated(
                choice, rank, rank_borrows, preempting, simulate if can_preempt else None, node, usage
            )
        if rank > _NO_CANDIDATES and not _should_try_next(
            choice.mode, rank_borrows, when_can_borrow, when_can_preempt
        ):
            if choice.mode is not Mode.FIT:
                choice.shortages = tried
            return choice
        tried_flavors.append((choice, rank, rank_borrows, []))
    return _preferred(tried_flavors, tried, simulate, node, usage)


def _unsimulated(
    name: str, needed: Mapping[str, int], assigned: Mapping[FR, int], node: QuotaNode, usage: QuotaUsage
) -> _Tried:
    """One flavor before the oracle is asked: per resource, fit (borrowing or not), need
    preemption (within ``potential_available``: returned to be simulated) or no fit at all. The
    rank is the worst resource's among those that fit or cannot fit (``_NO_FIT`` leaves nothing
    to simulate); the choice's mode is FIT, PREEMPT or NO_FIT accordingly."""
    has_parent = node.parent is not None
    rank, rank_borrows = _FIT, False  # the flavor's worst resource so far
    borrows = False
    shortages: list[tuple[FR, int]] = []
    preempting: list[tuple[FR, int]] = []
    for resource, amount in needed.items():
        fr = (name, resource)
        total = amount + assigned.get(fr, 0) if assigned else amount
        if total <= usage.available(node, fr):
            if has_parent and borrowing_after(node, fr, usage, total) > 0:
                borrows = True
                if rank == _FIT:
                    rank_borrows = True
        elif total <= potential_available(node, fr):
            shortages.append((fr, total))
            preempting.append((fr, total))
        else:
            shortages.append((fr, total))
            rank, rank_borrows = _NO_FIT, False
    choice = FlavorChoice(name, Mode.FIT, borrows, shortages)
    if rank == _NO_FIT:
        choice.mode = Mode.NO_FIT
    elif preempting:
        choice.mode = Mode.PREEMPT
    return choice, rank, rank_borrows, preempting


def _preferred(
    tried_flavors: list[_Tried],
    tried: list[tuple[FR, int]],
    simulate: SimulatePreemption,
    node: QuotaNode,
    usage: QuotaUsage,
) -> FlavorChoice | None:
    """When no flavor ended the search: the preferred one tried (Kueue ``isPreferred``: better
    mode, then not borrowing; a tie keeps the earlier flavor), simulating the deferred ones now."""
    best: FlavorChoice | None = None
    best_key = (_NO_FIT, False)
    for choice, rank, rank_borrows, preempting in tried_flavors:
        if preempting:
            rank, rank_borrows = _simulated(choice, rank, rank_borrows, preempting, simulate, node, usage)
        key = (rank, not rank_borrows)
        if best is None or key > best_key:
            best, best_key = choice, key
    if best is not None and best.mode is not Mode.FIT:
        best.shortages = tried
    return best


def _simulated(
    choice: FlavorChoice,
    rank: int,
    rank_borrows: bool,
    preempting: list[tuple[FR, int]],
    simulate: SimulatePreemption | None,
    node: QuotaNode,
    usage: QuotaUsage,
) -> tuple[int, bool]:
    """The flavor's rank once the oracle answered for its resources that need preemption (their
    borrowing goes into ``choice.borrows``). After a resource without candidates the rest are not
    simulated: the flavor cannot end the search any more, and counts as having none."""
    has_parent = node.parent is not None
    for fr, total in preempting:
        outcome = simulate(fr, total) if simulate is not None and rank > _NO_CANDIDATES else None
        if outcome is None:
            res_rank = _NO_CANDIDATES
            res_borrows = has_parent and borrowing_after(node, fr, usage, total) > 0
        else:
            reclaim, res_borrows = outcome
            res_rank = _RECLAIM if reclaim else _PREEMPT
        if res_borrows:
            choice.borrows = True
        if res_rank < rank or (res_rank == rank and res_borrows and not rank_borrows):
            rank, rank_borrows = res_rank, res_borrows
    return rank, rank_borrows


def _should_try_next(
    mode: Mode, borrows: bool, when_can_borrow: FungibilityAction, when_can_preempt: FungibilityAction
) -> bool:
    """Kueue's ``shouldTryNextFlavor``."""
    stop = FungibilityAction.MAY_STOP_SEARCH
    if mode is Mode.PREEMPT and when_can_preempt is stop and (not borrows or when_can_borrow is stop):
        return False
    if mode is Mode.FIT and borrows and when_can_borrow is stop:
        return False
    return not (mode is Mode.FIT and not borrows)
