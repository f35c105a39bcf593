"""Flavor assignment: which ResourceFlavor serves each resource of each pod set.

A transcription of Kueue's flavor assigner (kubernetes-sigs/kueue
``pkg/scheduler/flavorassigner/flavorassigner.go`` at ff69552e, Apache-2.0: ``assignFlavors``,
``findFlavorForPodSets``, ``checkFlavorForPodSets``, ``fitsResourceQuota``, ``isPreferred``,
``shouldTryNextFlavor``). For every pod set, and every resource group that covers its resources,
flavors are tried in the order the ClusterQueue lists them:

- a flavor is skipped when it is not in the flavor map, when the pod set does not tolerate one of
  its NoSchedule/NoExecute taints (the flavor's own tolerations count), or when the pod set's node
  selector or required node affinity conflicts with its ``nodeLabels`` on the keys the flavor
  defines (budcore adds: a job asking for an accelerator type only gets flavors that provide it,
  and a job accepting a set of types only flavors that provide one of them, still in the
  ClusterQueue's order, see :class:`AcceleratorMatcher`);
- otherwise each resource of the group, counted with what earlier pod sets put on the same flavor,
  is ``fit`` (it fits what is available now, possibly by borrowing), needs preemption (within what
  the queue could ever get; the preemption oracle says ``preempt``, ``reclaim`` or
  ``noPreemptionCandidates``) or ``noFit``. Kueue asks the oracle only when the request is within
  the queue's nominal quota, fits a subtree below the cohort root, or the queue may preempt while
  borrowing (``borrowWithinCohort``, or ``reclaimWithinCohort`` under fair sharing); otherwise it
  is ``noFit``. Each resource also has a *borrowing level*: the height of the smallest cohort
  subtree that fits it (0: no borrowing; ``FindHeightOfLowestSubtreeThatFits``);
- the flavor is represented by its worst resource, ``flavorFungibility`` decides whether it ends
  the search (``shouldTryNextFlavor``) and, when none does, the preferred flavor tried wins
  (``isPreferred``: by mode then level, or by level then mode under ``preference:
  PreemptionOverBorrowing``; a flavor without preemption candidates ranks below every viable one).

Earlier pod sets' assignments count against later ones (a gang is sized as a whole); a pod set
with no flavor for some group ends the assignment (``NoFit``). A ClusterQueue that covers the
resource ``pods`` is charged one ``pods`` per pod (``requests[pods] = podSet.Count``).

Pending reasons are Kueue's, with Kueue's numbers (captured when the assignment is made, rendered
in words only when read: :class:`PendingReason`).

Long because it transcribes Kueue's flavor assigner (the search, the quota test, the preference
order and the messages), whose parts only make sense together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from budcore.catalog import CatalogResolver
from budcore.catalog import default_normalize as default_normalize  # its home before the catalog moved
from budcore.domain.job import PodSet, ResourceRequest
from budcore.domain.quantity import MILLI
from budcore.domain.resources import ResourceVector
from budcore.scheduling.queues import (
    BorrowWithinCohortPolicy,
    ClusterQueue,
    FungibilityAction,
    FungibilityPreference,
    ReclaimWithinCohort,
    ResourceFlavor,
)
from budcore.scheduling.quota import FR, QuotaNode, QuotaUsage, potential_available


class Mode(IntEnum):
    """Outcome of trying a flavor, ordered worst to best (Kueue's ``FlavorAssignmentMode``)."""

    NO_FIT = 0
    PREEMPT = 1
    FIT = 2


class Possibility(IntEnum):
    """What a preemption simulation found (Kueue ``preemptioncommon.PreemptionPossibility``);
    the values are the granular modes of the flavor assigner."""

    NO_CANDIDATES = 1
    PREEMPT = 2  # victims found, some in the preemptor's own ClusterQueue
    RECLAIM = 3  # victims found, all in other ClusterQueues


# Kueue's special resource: a ClusterQueue covering it is charged one per pod. Amounts are
# milli-units, so one pod is 1000 (``nominalQuota: 4`` for ``pods`` loads as 4000).
PODS = "pods"
ONE_POD = MILLI

# What a preemption oracle says about one (flavor, resource) that needs preemption, for a request
# of that many milli-units of it (Kueue ``SimulatePreemption``): ``(possibility, height)``, the
# height being the borrowing level once the victims are gone (``borrowAfterPreemptions``). None
# means no candidates, with the level the request has without preemption (what Kueue's oracle
# returns then: ``FindHeightOfLowestSubtreeThatFits`` on the unchanged snapshot).
Simulation = tuple[Possibility, int] | None
# The oracle for one workload. An object with a ``fair_sharing`` attribute (Kueue's
# ``enableFairSharing``, which decides whether ``reclaimWithinCohort`` lets a queue preempt while
# borrowing) passes it on to :func:`assign_flavors` (see ``PreemptionOracle.for_workload``).
SimulatePreemption = Callable[[FR, int], Simulation]

# Kueue's granular preemption modes (flavorassigner ``preemptionMode``), worst to best.
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

    def matches_any(self, wanted: Sequence[str], flavor: ResourceFlavor) -> bool:
        """Whether the flavor provides one of an accelerator set's types (empty: any flavor)."""
        return not wanted or any(self.matches(w, flavor) for w in wanted)


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


# ----------------------------------------------------------------------------------------------
# Pending reasons: facts captured during the search, words only when read.

# A reason: its kind, then the facts (see :func:`render_reason`).
Reason = tuple[Any, ...]

_MAX_INT64 = 2**63 - 1
_DECIMAL_SUFFIXES = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_BINARY_SUFFIXES = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")


def _decimal_si(value: int, exponent: int) -> str:
    """``value × 10^exponent`` as Kubernetes' ``Quantity.String()`` writes a DecimalSI quantity:
    trailing zeros folded into an exponent that is a multiple of 3, with its suffix
    (k8s.io/apimachinery ``int64Amount.AsCanonicalBytes``)."""
    if value == 0:
        return "0"
    while value % 10 == 0:
        value //= 10
        exponent += 1
    shift = exponent % 3
    value *= 10**shift
    exponent -= shift
    suffix = _DECIMAL_SUFFIXES.get(exponent)
    return f"{value}{suffix}" if suffix is not None else f"{value}e{exponent}"


def _binary_si(value: int) -> str:
    """Bytes as Kueue's ``ResourceFormatter`` writes memory (``newCanonicalQuantity`` of a
    BinarySI quantity): the largest exact power-of-1024 suffix (``10Mi``), else DecimalSI
    (``1500``, ``3k``)."""
    if value == 0 or value % 1024:
        return _decimal_si(value, 0)
    power = 0
    while value % 1024 == 0 and power < len(_BINARY_SUFFIXES) - 1:
        value //= 1024
        power += 1
    return f"{value}{_BINARY_SUFFIXES[power]}"


def kueue_quantity(resource: str, milli: int) -> str:
    """An amount as Kueue's messages print it (``resources.ResourceFormatter``): cpu in milli-cpu
    (``3``, ``1500m``, ``1k``), memory, ephemeral storage and huge pages as binary quantities
    (``10Mi``), anything else as a count. Kueue's int64 amounts saturate (milli-cpu for cpu, units
    otherwise); an amount beyond that prints as Kueue's saturated value. A fractional amount of a
    counted resource, which Kueue would round up, prints exactly (``500m``)."""
    if resource == "cpu":
        return _decimal_si(min(milli, _MAX_INT64), -3)
    if milli % MILLI:
        return _decimal_si(milli, -3)
    units = min(milli // MILLI, _MAX_INT64)
    if resource in ("memory", "ephemeral-storage") or resource.startswith("hugepages-"):
        return _binary_si(units)
    return _decimal_si(units, 0)


def _go_taint(taint: Mapping[str, Any]) -> str:
    """A taint as Go's ``%s`` prints a ``corev1.Taint``: ``{key value effect <nil>}``."""
    added = taint.get("timeAdded") or "<nil>"
    return f"{{{taint.get('key', '')} {taint.get('value', '') or ''} {taint.get('effect', '')} {added}}}"


def render_reason(reason: Reason) -> str:
    """One reason in Kueue's words (``fitsResourceQuota``, ``checkFlavorForPodSets``,
    ``findFlavorForPodSets``); ``accelerator`` is budcore's own."""
    kind = reason[0]
    if kind == "unused":
        _, resource, flavor, more = reason
        return (
            f"insufficient unused quota for {resource} in flavor {flavor}, "
            f"{kueue_quantity(resource, more)} more needed"
        )
    if kind == "max":
        _, resource, flavor, previous, request, capacity = reason
        return (
            f"insufficient quota for {resource} in flavor {flavor}, previously considered podsets "
            f"requests ({kueue_quantity(resource, previous)}) + current podset request "
            f"({kueue_quantity(resource, request)}) > maximum capacity ({kueue_quantity(resource, capacity)})"
        )
    if kind == "taint":
        return f"untolerated taint {_go_taint(reason[2])} in flavor {reason[1]}"
    if kind == "affinity":
        return f"flavor {reason[1]} doesn't match node affinity"
    if kind == "missing":
        return f"flavor {reason[1]} not found"
    if kind == "unavailable":
        return f"resource {reason[1]} unavailable in ClusterQueue"
    _, cluster_queue, names, wanted = reason
    kind = "any of the accelerator types" if "|" in wanted else "accelerator type"
    return f"no flavor of ClusterQueue {cluster_queue} ({names}) provides {kind} {wanted}"


@dataclass(frozen=True, slots=True)
class PendingReason:
    """Why a workload's flavor assignment is not a fit: per pod set that did not fit, its reasons;
    ``str()`` renders Kueue's ``Assignment.Message`` ("couldn't assign flavors to pod set main:
    insufficient unused quota for cpu in flavor one, 1 more needed"; a pod set's reasons sorted
    and joined by ", ", pod sets by "; "). Once captured it never changes."""

    pod_sets: tuple[tuple[str, tuple[Reason, ...]], ...] = ()

    def reasons(self) -> list[str]:
        """Every reason in words, pod set by pod set."""
        return [render_reason(r) for _, reasons in self.pod_sets for r in reasons]

    def __str__(self) -> str:
        return "; ".join(
            f"couldn't assign flavors to pod set {name}: " + ", ".join(sorted(map(render_reason, reasons)))
            for name, reasons in self.pod_sets
            if reasons
        )


# ----------------------------------------------------------------------------------------------
# The assignment


@dataclass(slots=True)
class FlavorChoice:
    """A flavor tried for one resource group of one pod set: its outcome, and while the search
    runs its representative (Kueue's granular mode and borrowing level) and the resources still to
    simulate (``(fr, amount)``)."""

    flavor: str
    mode: Mode
    borrowing: int  # the highest borrowing level of its resources
    rank: int = _FIT
    level: int = 0
    pending: list[tuple[FR, int]] | None = None


@dataclass(slots=True)
class Assignment:
    """Flavors for a whole workload, and what admitting it would take.

    ``borrowing`` is Kueue's ``Assignment.Borrowing``: the height of the smallest cohort subtree
    that fits the usage (0: no borrowing). ``reasons`` holds the reasons met anywhere in the
    search that are not quota shortages (a skipped flavor, an uncovered resource): a failure with
    none is a pure quota shortage. ``pod_set_reasons`` are Kueue's status reasons, per pod set that
    did not fit (:meth:`describe`).
    """

    mode: Mode
    borrowing: int
    flavors: dict[str, dict[str, str]]  # pod set -> resource -> flavor
    usage: dict[FR, int]  # total per (flavor, resource)
    reasons: Sequence[Reason] = ()
    pod_set_reasons: Sequence[tuple[str, Sequence[Reason]]] = ()
    counts: tuple[int, ...] | None = None  # the reduced pod counts it was made for (partial admission)

    @property
    def borrows(self) -> bool:
        """Whether the assignment borrows at any level (Kueue ``RequiresBorrowing``)."""
        return self.borrowing > 0

    def describe(self, node: QuotaNode | None = None, usage: QuotaUsage | None = None) -> PendingReason:
        """Why the workload does not fit, with the numbers of the moment the assignment was made
        (as Kueue's message has them). ``node`` and ``usage`` are not needed any more; they are
        accepted for the callers that pass them."""
        return PendingReason(tuple((name, tuple(reasons)) for name, reasons in self.pod_set_reasons))


def assign_flavors(
    cq: ClusterQueue,
    node: QuotaNode,
    request: ResourceRequest,
    usage: QuotaUsage,
    flavors: Mapping[str, ResourceFlavor],
    matcher: AcceleratorMatcher,
    simulate: SimulatePreemption | None = None,
    *,
    counts: Sequence[int] | None = None,
    fair_sharing: bool | None = None,
) -> Assignment:
    """Assign a flavor to every resource group each pod set touches (gang: all or nothing);
    Kueue's ``FlavorAssigner.Assign`` (``assignFlavors``).

    ``simulate`` is the preemption oracle for this workload (:data:`SimulatePreemption`,
    :meth:`budcore.scheduling.preemption.PreemptionOracle.for_workload`); without one a resource
    needing preemption is judged statically: ``preempt`` when the queue has a preemption policy,
    else no candidates. ``counts`` replaces the pod sets' counts (Kueue's ``Assign(ctx, counts)``,
    what partial admission searches with). ``fair_sharing`` is Kueue's ``enableFairSharing``
    (default: the oracle's).

    On the admission hot path: it allocates as little as it can (the cycle's cost is mostly the
    garbage collector's, in proportion to what is allocated).
    """
    if fair_sharing is None:
        fair_sharing = simulate is not None and bool(getattr(simulate, "fair_sharing", False))
    search = _Search(cq, node, usage, flavors, matcher, request.accelerators or None, simulate, fair_sharing)
    assigned: dict[FR, int] = {}
    per_pod_set: dict[str, dict[str, str]] = {}
    worst = Mode.FIT
    borrowing = 0
    status: list[tuple[str, Sequence[Reason]]] | None = None
    counts_pods = PODS in node.covered
    covered_all = node.covered
    index = -1
    for pod_set in request.pod_sets:
        index += 1
        total = _total(pod_set, None if counts is None else counts[index], counts_pods)
        for resource in total:
            if resource not in covered_all and total[resource]:
                # Kueue stops at the first uncovered resource it meets (in map order): the first
                # by name here.
                first = min(r for r in total if r not in covered_all and total[r])
                reason = ("unavailable", first)
                status = [*(status or ()), (pod_set.name, [reason])]
                return Assignment(Mode.NO_FIT, 0, {}, {}, [*search.structural, reason], status)
        chosen: dict[str, str] = {}
        pod_set_status: list[Reason] | None = None
        for covered, flavor_names in node.groups:
            needed = {r: total[r] for r in covered if r in total}
            if not needed:
                continue
            choice = search.find(flavor_names, pod_set, needed, assigned)
            if choice is None:
                # The pod set's status is this group's alone (Kueue: ``groupStatus = *status``).
                status = [*(status or ()), (pod_set.name, search.reasons or [])]
                return Assignment(Mode.NO_FIT, 0, {}, {}, search.structural, status)
            if choice.mode is not Mode.FIT:
                worst = Mode.PREEMPT
                if search.reasons:
                    pod_set_status = [*(pod_set_status or ()), *search.reasons]
            if choice.borrowing > borrowing:
                borrowing = choice.borrowing
            flavor = choice.flavor
            for resource, amount in needed.items():
                chosen[resource] = flavor
                if amount:  # a zero request gets a flavor, and charges nothing (#8079)
                    fr = (flavor, resource)
                    assigned[fr] = assigned.get(fr, 0) + amount
        if pod_set_status:
            status = [*(status or ()), (pod_set.name, pod_set_status)]
        per_pod_set[pod_set.name] = chosen
    reduced = None if counts is None else tuple(counts)
    if status or search.structural:
        return Assignment(worst, borrowing, per_pod_set, assigned, search.structural, status or (), reduced)
    return Assignment(worst, borrowing, per_pod_set, assigned, counts=reduced)


def _total(pod_set: PodSet, count: int | None, counts_pods: bool) -> Mapping[str, int]:
    """What the pod set requests in all (``count`` pods, or its own count), as a plain dict in the
    same order: a ResourceVector's lookups and ``in`` are Python calls, and :func:`assign_flavors`
    makes several per resource."""
    if count is None and not counts_pods and not pod_set.zero_requests:
        total: Mapping[str, int] = pod_set.total
    else:
        total = _requests(pod_set, count, counts_pods)
    return total.as_dict() if type(total) is ResourceVector else total


def reduce_pod_sets(
    request: ResourceRequest, fits: Callable[[list[int]], Assignment | None]
) -> Assignment | None:
    """Kueue's ``PodSetReducer.Search`` (``flavorassigner/podset_reducer.go``): the largest pod
    counts, down to each pod set's ``min_count``, that ``fits`` accepts (partial admission).

    Every pod set gives up the same share of what it may give up (``count − min_count``): search
    index ``i`` of ``total`` (the sum of those) asks each pod set for ``count − delta·i/total``
    pods, rounded as Go's integer division rounds. A binary search (Go's ``sort.Search``) finds
    the first index ``fits`` accepts, assuming fewer pods fit whenever more do; like Kueue's it
    reports a result only if the last accepted index is the one the search ends on. None: no
    pod set may shrink, or no count fits.
    """
    full = [p.count for p in request.pod_sets]
    deltas = [p.count - (p.min_count if p.min_count is not None else p.count) for p in request.pod_sets]
    total = sum(deltas)
    if total == 0:
        return None
    last_good, found = 0, None
    lo, hi = 0, total + 1
    while lo < hi:
        mid = (lo + hi) // 2
        outcome = fits([c - d * mid // total for c, d in zip(full, deltas, strict=True)])
        if outcome is None:
            lo = mid + 1
        else:
            hi = mid
            last_good, found = mid, outcome
    return found if lo == last_good else None


def _requests(pod_set: PodSet, count: int | None, counts_pods: bool) -> Mapping[str, int]:
    """The pod set's total request (Kueue's ``TotalRequests``, scaled to ``count`` when given),
    with its zero requests and, for a queue covering ``pods``, one ``pods`` per pod."""
    total: Mapping[str, int] = pod_set.total if count is None else pod_set.resources.scaled(count)
    zeros = pod_set.zero_requests
    if counts_pods or zeros:
        total = dict(total)
        for resource in zeros:
            total.setdefault(resource, 0)
        if counts_pods:
            # Kueue sets (not adds) the pod set's ``pods`` request to its pod count.
            total[PODS] = (pod_set.count if count is None else count) * ONE_POD
    return total


# What a ClusterQueue's spec says about the search (static): whenCanBorrow and whenCanPreempt are
# TryNextFlavor, preference is PreemptionOverBorrowing, simulations may be deferred, Kueue's
# ``canPreemptWhileBorrowing`` (without and with fair sharing), and the possibility assumed
# without an oracle.
_Policy = tuple[bool, bool, bool, bool, bool, bool, Possibility]
# id(ClusterQueue) -> (the queue, its policy), validated by identity (the queue is kept, so its id
# is not reused while cached).
_POLICIES: dict[int, tuple[ClusterQueue, _Policy]] = {}


def _policy(cq: ClusterQueue) -> _Policy:
    hit = _POLICIES.get(id(cq))
    if hit is not None and hit[0] is cq:
        return hit[1]
    fungibility = cq.flavor_fungibility
    try_next = FungibilityAction.TRY_NEXT_FLAVOR
    borrow_try = fungibility.when_can_borrow is try_next
    preempt_try = fungibility.when_can_preempt is try_next
    pob = fungibility.preference is FungibilityPreference.PREEMPTION_OVER_BORROWING
    # A flavor needing preemption then certainly does not end the search (``shouldTryNextFlavor``):
    # its simulations can wait until no later flavor has ended it.
    defer = preempt_try and (not pob or borrow_try)
    preemption = cq.preemption
    borrow_within = preemption.borrow_within_cohort.policy is not BorrowWithinCohortPolicy.NEVER
    reclaim = preemption.reclaim_within_cohort is not ReclaimWithinCohort.NEVER
    static = Possibility.PREEMPT if cq.can_preempt else Possibility.NO_CANDIDATES
    policy = (borrow_try, preempt_try, pob, defer, borrow_within, borrow_within or reclaim, static)
    if len(_POLICIES) > 4096:
        _POLICIES.clear()
    _POLICIES[id(cq)] = (cq, policy)
    return policy


class _Search:
    """Kueue's ``findFlavorForPodSets`` for the resource groups of one workload's pod sets."""

    __slots__ = (
        "borrow_try",
        "cq",
        "defer",
        "flavors",
        "gate_open",
        "matcher",
        "node",
        "pob",
        "preempt_try",
        "reasons",
        "shallow",
        "simulate",
        "static",
        "structural",
        "usage",
        "wanted",
    )

    def __init__(
        self,
        cq: ClusterQueue,
        node: QuotaNode,
        usage: QuotaUsage,
        flavors: Mapping[str, ResourceFlavor],
        matcher: AcceleratorMatcher,
        wanted: Sequence[str] | None,
        simulate: SimulatePreemption | None,
        fair_sharing: bool,
    ) -> None:
        self.cq, self.node, self.usage, self.flavors = cq, node, usage, flavors
        self.matcher, self.wanted, self.simulate = matcher, wanted, simulate
        borrow_try, preempt_try, pob, defer, gate, gate_fair, static = _policy(cq)
        self.borrow_try, self.preempt_try, self.pob, self.defer = borrow_try, preempt_try, pob, defer
        # Kueue's ``canPreemptWhileBorrowing``: borrowWithinCohort, or reclaimWithinCohort under
        # fair sharing.
        self.gate_open = gate_fair if fair_sharing else gate
        self.static = static
        # The borrowing level of a queue whose cohort is the root, when it borrows (0: not such a
        # queue): the root's height whatever it borrows (``FindHeightOfLowestSubtreeThatFits``).
        parent = node.parent
        self.shallow = parent.height if parent is not None and parent.parent is None else 0
        self.reasons: list[Reason] | None = None  # the last group's reasons
        self.structural: list[Reason] = []  # reasons met so far that are not quota shortages

    def _reason(self, reason: Reason) -> None:
        if self.reasons is None:
            self.reasons = [reason]
        else:
            self.reasons.append(reason)

    def find(
        self,
        flavor_names: Sequence[str],
        pod_set: PodSet,
        needed: Mapping[str, int],
        assigned: Mapping[FR, int],
    ) -> FlavorChoice | None:
        """The flavor for one resource group; every reason met trying flavors is in ``reasons``."""
        self.reasons = None
        tried: list[FlavorChoice] | None = None
        flavors, wanted, matched = self.flavors, self.wanted, False
        for name in flavor_names:
            flavor = flavors.get(name)
            if flavor is None:
                self._structural(("missing", name))
                continue
            if wanted is not None and not self.matcher.matches_any(wanted, flavor):
                continue
            matched = True
            # placement_mismatch can only object to a taint, or to a pod set's node selector or
            # required affinity on a flavor with labels (the common pod set has neither)
            if flavor.node_taints or (
                flavor.node_labels and (pod_set.node_selector or pod_set.required_node_affinity)
            ):
                mismatch = placement_mismatch(flavor, pod_set)
                if mismatch is not None:
                    self._structural(mismatch)
                    continue
            choice = self._quota(name, needed, assigned)
            if choice is None:
                continue
            if choice.pending:
                if self.defer:
                    if tried is None:
                        tried = []
                    tried.append(choice)
                    continue
                self._simulated(choice)
            if not self._try_next(choice.rank, choice.level):
                return choice
            if tried is None:
                tried = []
            tried.append(choice)
        best = self._preferred(tried) if tried is not None else None
        if best is None and not matched and wanted is not None:
            self._structural(("accelerator", self.cq.name, ", ".join(flavor_names), "|".join(wanted)))
        return best

    def _structural(self, reason: Reason) -> None:
        self._reason(reason)
        self.structural.append(reason)

    def _quota(self, name: str, needed: Mapping[str, int], assigned: Mapping[FR, int]) -> FlavorChoice | None:
        """``fitsResourceQuota`` for every resource of the group on one flavor; None: no fit.
        Resources that need preemption come back to be simulated; the representative returned is
        that of the resources that fit (their worst borrowing level)."""
        node, usage = self.node, self.usage
        in_cohort = node.parent is not None
        own: Mapping[FR, int] | None = None  # the queue's usage, read once a resource fits
        level = 0
        pending: list[tuple[FR, int]] | None = None
        no_fit = False
        for resource, amount in needed.items():
            fr = (name, resource)
            previous = assigned.get(fr, 0) if assigned else 0
            total = previous + amount
            available = usage.available(node, fr)
            if total <= available or total == 0:  # Kueue's Available is never below 0
                if in_cohort:
                    if own is None:
                        own = usage.of(node)
                    if own.get(fr, 0) + total > node.nominal.get(fr, 0):  # it borrows
                        res_level = self.shallow or borrowing_height(node, fr, usage, total)[0]
                        if res_level > level:
                            level = res_level
                continue
            capacity = potential_available(node, fr)
            if total > capacity:
                self._reason(("max", resource, name, previous, amount, capacity))
                no_fit = True
                continue
            self._reason(("unused", resource, name, total - (available if available > 0 else 0)))
            if no_fit:
                continue
            # Kueue asks the oracle only within nominal quota, when a subtree below the root fits
            # (``mayReclaimInHierarchy``), or when the queue may preempt while borrowing.
            if (
                node.nominal.get(fr, 0) >= total
                or self.gate_open
                or borrowing_height(node, fr, usage, total)[1]
            ):
                if pending is None:
                    pending = []
                pending.append((fr, total))
            else:
                no_fit = True  # waiting for quota
        if no_fit:
            return None
        return FlavorChoice(name, Mode.PREEMPT if pending else Mode.FIT, level, _FIT, level, pending)

    def _simulated(self, choice: FlavorChoice) -> None:
        """The flavor's representative once the oracle answered for each resource that needs
        preemption (Kueue simulates every one); their levels go into ``choice.borrowing``."""
        simulate, pob = self.simulate, self.pob
        rank, level = choice.rank, choice.level
        for fr, total in choice.pending or ():
            outcome = simulate(fr, total) if simulate is not None else None
            if outcome is None:
                # No candidates (or no oracle): the level as it is without preemption.
                res_rank = _NO_CANDIDATES if simulate is not None else int(self.static)
                res_level = borrowing_height(self.node, fr, self.usage, total)[0]
            else:
                res_rank, res_level = int(outcome[0]), outcome[1]
            if res_level > choice.borrowing:
                choice.borrowing = res_level
            if _key(res_rank, res_level, pob) < _key(rank, level, pob):
                rank, level = res_rank, res_level
        choice.rank, choice.level, choice.pending = rank, level, None

    def _try_next(self, rank: int, level: int) -> bool:
        """Kueue's ``shouldTryNextFlavor``."""
        if rank <= _NO_CANDIDATES:
            return True
        if rank != _FIT and self.preempt_try:
            return True
        return level != 0 and self.borrow_try

    def _preferred(self, tried: list[FlavorChoice]) -> FlavorChoice | None:
        """When no flavor ended the search: the preferred one tried (``isPreferred``; a tie keeps
        the earlier flavor), simulating the deferred ones now."""
        best: FlavorChoice | None = None
        best_key: tuple[int, ...] = (_NO_FIT,)
        pob = self.pob
        for choice in tried:
            if choice.pending:
                self._simulated(choice)
            key = _key(choice.rank, choice.level, pob)
            if key > best_key:
                best, best_key = choice, key
        return best


def _key(rank: int, level: int, pob: bool) -> tuple[int, ...]:
    """A sort key of Kueue's ``isPreferred``: ``isPreferred(a, b)`` iff ``key(a) > key(b)``.

    noFit is below everything (and equal to itself); then a flavor without preemption candidates
    is below every viable one; then the mode first and a lower borrowing level second
    (``BorrowingOverPreemption``, the default), or the other way round (``PreemptionOverBorrowing``).
    """
    if rank == _NO_FIT:
        return (0,)
    viable = 0 if rank == _NO_CANDIDATES else 1
    return (1, viable, -level, rank) if pob else (1, viable, rank, -level)


# ----------------------------------------------------------------------------------------------
# Borrowing level


def borrowing_height(node: QuotaNode, fr: FR, usage: QuotaUsage, amount: int) -> tuple[int, bool]:
    """Kueue's ``FindHeightOfLowestSubtreeThatFits`` (``pkg/scheduler/preemption/classical/
    hierarchical_preemption.go``) for ClusterQueue ``node`` taking ``amount`` more of ``fr``.

    Returns the height of the lowest cohort on the path to the root whose subtree quota holds
    what the queue would borrow (0 when it does not borrow; the root's height when no subtree
    does), and whether that subtree is smaller than the whole tree (Kueue's
    ``mayReclaimInHierarchy``; for a queue that does not borrow: whether it has a cohort).
    """
    parent = node.parent
    if parent is None:
        return 0, False
    used = usage.get(node, fr)
    if used + amount <= node.nominal.get(fr, 0):
        return 0, True
    if parent.parent is None:  # the cohort is the root: it is the subtree that fits, or the tree
        return parent.height, False
    local = node.guaranteed.get(fr, 0) - used
    remaining = amount - local if local > 0 else amount
    current = parent
    while True:
        if usage.get(current, fr) + remaining <= current.subtree_quota.get(fr, 0):
            return current.height, current.parent is not None
        if current.parent is None:
            return current.height, False
        local = current.guaranteed.get(fr, 0) - usage.get(current, fr)
        if local > 0:
            remaining -= local
        current = current.parent


# ----------------------------------------------------------------------------------------------
# Pod placement against a flavor


def placement_mismatch(flavor: ResourceFlavor, pod_set: PodSet) -> Reason | None:
    """Why ``flavor`` cannot serve ``pod_set`` (Kueue's ``checkFlavorForPodSets``), or None.

    An untolerated NoSchedule/NoExecute taint (the pod set's tolerations and the flavor's own
    count), else a node selector or required node affinity that the flavor's ``nodeLabels`` do
    not satisfy. Kueue's ``flavorSelector`` keeps only the label keys this flavor defines: a
    selector entry on another key is ignored, and a term left without expressions matches any
    flavor (the terms are ORed).
    """
    if flavor.node_taints:
        taint = flavor.untolerated_taint(pod_set.tolerations)
        if taint is not None:
            return ("taint", flavor.name, taint)
    labels = flavor.node_labels
    if not labels:
        return None
    for key, value in pod_set.node_selector:
        if key in labels and labels[key] != value:
            return ("affinity", flavor.name)
    terms = pod_set.required_node_affinity
    if terms:
        matched = False
        for term in terms:
            kept = [e for e in term.match_expressions if e.key in labels]
            if not kept:
                return None  # the terms are ORed: this one now matches any flavor
            if not matched and all(e.matches(labels) for e in kept):
                matched = True
        if not matched:
            return ("affinity", flavor.name)
    return None


def admission_placement(
    flavors: Mapping[str, Mapping[str, str]], resource_flavors: Mapping[str, ResourceFlavor]
) -> dict[str, tuple[dict[str, str], tuple[dict[str, str], ...]]]:
    """Per pod set of an admission (``Admit.flavors``: pod set → resource → flavor), the node
    selector and the tolerations Kueue adds to its pods: every assigned flavor's ``nodeLabels``
    and ``tolerations``, each flavor once (Kueue ``pkg/podset`` ``FromAssignment``), for a cluster
    backend to put on the pods (the simulator merges them into the pod set's own tolerations with
    :meth:`budcore.domain.cluster.PodSetPlacement.merge_tolerations`, Kueue's ``podset.Merge``)."""
    out: dict[str, tuple[dict[str, str], tuple[dict[str, str], ...]]] = {}
    for pod_set, assigned in flavors.items():
        selector: dict[str, str] = {}
        tolerations: list[dict[str, str]] = []
        for name in dict.fromkeys(assigned.values()):
            flavor = resource_flavors.get(name)
            if flavor is not None:
                selector.update(flavor.node_labels)
                tolerations.extend(dict(t) for t in flavor.tolerations)
        out[pod_set] = (selector, tuple(tolerations))
    return out
