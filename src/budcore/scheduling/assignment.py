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

A job asking for a specific accelerator type only gets flavors whose node labels say so (see
:class:`AcceleratorMatcher`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from budcore.domain.job import ResourceRequest
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

Normalizer = Callable[[str], str | None]


def default_normalize(value: str) -> str | None:
    """Lower-case, strip a vendor prefix and sharing suffixes: ``NVIDIA-H100-80GB-HBM3-SHARED``
    → ``h100-80gb-hbm3``. The hardware catalog supplies a richer normalizer (aliases → slugs)."""
    text = value.strip().lower().replace(" ", "-").replace("_", "-")
    for suffix in ("-shared",):
        text = text.removesuffix(suffix)
    if "-mig-" in text:
        text = text.split("-mig-", 1)[0]
    for prefix in ("nvidia-", "amd-", "intel-", "habana-"):
        text = text.removeprefix(prefix)
    return text or None


class CatalogNormalizer:
    """Resolves accelerator names through the hardware catalog: slugs, marketing and GFD product
    strings of one model (``nvidia-h100-80gb``, ``NVIDIA-H100-80GB-HBM3``, ``H100-SXM5-80GB``)
    all become its slug; a name the catalog does not know falls back to :func:`default_normalize`.

    Results are memoized: the cycle asks for the same few names over and over.
    """

    def __init__(self, catalog: Any = None) -> None:
        self._catalog = catalog
        self._memo: dict[str, str | None] = {}

    def __call__(self, value: str) -> str | None:
        found = self._memo.get(value, _MISSING)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        if self._catalog is None:
            from budcore.hardware.catalog import default_catalog

            self._catalog = default_catalog()
        entry = self._catalog.get(value) or self._catalog.resolve(value)
        result = entry.slug if entry is not None else default_normalize(value)
        self._memo[value] = result
        return result


_MISSING = object()


@dataclass(frozen=True, slots=True)
class AcceleratorMatcher:
    """Decides whether a flavor provides the accelerator type a job asks for.

    A flavor matches type ``T`` when its name is ``T``, or one of :data:`ACCELERATOR_LABELS` in its
    ``nodeLabels`` normalizes to the same value as ``T``. A flavor with no accelerator label only
    matches by name. Pass the hardware catalog's resolver as ``normalize`` to map product strings
    such as ``NVIDIA-H100-80GB-HBM3`` and slugs such as ``nvidia-h100-80gb`` to one identity; the
    default resolves through the built-in hardware catalog (:class:`CatalogNormalizer`).
    """

    normalize: Normalizer = field(default_factory=CatalogNormalizer)
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
) -> Assignment:
    """Assign a flavor to every resource group each pod set touches (gang: all or nothing).

    Shortages are recorded as numbers; :meth:`Assignment.describe` turns them into words only when
    a workload is really left pending (formatting is the costly part of a failed attempt).
    """
    assigned: dict[FR, int] = {}
    per_pod_set: dict[str, dict[str, str]] = {}
    worst = Mode.FIT
    borrows = False
    shortages: list[tuple[FR, int]] = []
    wanted = request.accelerator_type
    for pod_set in request.pod_sets:
        total = pod_set.total
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
            choice = _choose_flavor(
                cq, node, group.flavors, needed, assigned, usage, flavors, matcher, wanted
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
