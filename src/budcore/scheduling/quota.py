"""The quota tree: ClusterQueues and Cohorts as resource nodes, with Kueue's arithmetic.

This follows Kueue's hierarchical-cohort model (``pkg/cache/resource_node.go``):

- every node (ClusterQueue or Cohort) has, per (flavor, resource) ``FR``, a ``nominal`` quota and
  optional ``borrowingLimit``/``lendingLimit``;
- ``subtree_quota`` of a ClusterQueue is its nominal quota; of a Cohort, its own nominal quota plus
  what each child puts at its disposal: ``child.subtree_quota − child.guaranteed``;
- ``guaranteed = max(0, subtree_quota − lendingLimit)`` when a lending limit is set, else 0: the part
  that stays exclusive to its owner;
- a node's usage counts in its parent only above its guaranteed part:
  ``parent.usage += max(0, usage − guaranteed)``;
- ``available(node) = max(0, guaranteed − usage) + available(parent)``, where a borrowing limit caps
  the parent's share at ``subtree_quota − guaranteed − used_in_parent + borrowingLimit``; a root's
  available is ``subtree_quota − usage``. ``potential_available`` is the same with no usage at all.

Consequences (the invariants the property tests check): a ClusterQueue never uses more than
``nominal + borrowingLimit``; borrowing only takes capacity its cohort subtree has unused and
lendable; ``nominal − lendingLimit`` is never lent.

The tree is static (built once per configuration); usage is a separate :class:`QuotaUsage` so a
scheduling cycle can work on a cheap copy-on-write overlay of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from budcore.scheduling.queues import QueueConfig, ResourceGroup, StopPolicy

FR = tuple[str, str]  # (flavor, resource)
# (fr, the parent's availability memo key (parent key, fr), guaranteed, subtree_quota − guaranteed,
# borrowingLimit or None): static per configuration. At a root: (fr, its own key, 0, quota, None).
Serving = tuple[FR, tuple[str, FR], int, int, int | None]


@dataclass(slots=True)
class QuotaNode:
    name: str
    is_cohort: bool
    parent: QuotaNode | None = None
    children: list[QuotaNode] = field(default_factory=list)
    nominal: dict[FR, int] = field(default_factory=dict)
    borrowing_limit: dict[FR, int] = field(default_factory=dict)  # absent key: unlimited
    lending_limit: dict[FR, int] = field(default_factory=dict)  # absent key: unlimited
    subtree_quota: dict[FR, int] = field(default_factory=dict)
    guaranteed: dict[FR, int] = field(default_factory=dict)
    weight: int = 1000  # fairSharing.weight in milli-units
    depth: int = 0
    # Kueue's ``getNodeHeight``: the distance to the furthest leaf (ClusterQueues are leaves; a
    # cohort with any child is at least 1). Static per tree: the borrowing level reads it.
    height: int = 0
    # Unique across CQs and cohorts (Kueue names them in separate spaces); set once, read hot.
    key: str = ""
    root_key: str = ""  # key of the root of this node's tree (cache invalidation scope)
    members: tuple[str, ...] = ()  # for a root: every ClusterQueue in its tree
    # Quotas are static: ``potential_available`` of every FR of its subtree, computed with the tree
    # (so reading the tree, as a cycle does, never writes to it).
    potential_cache: dict[FR, int] = field(default_factory=dict)
    # A ClusterQueue's resource groups, flattened once: ((covered resources), (flavor names)).
    groups: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ()
    # Per covered resource, the (flavor, resource) pairs that can serve it, in flavor order, each
    # compiled with what ``available`` needs besides usage: what the cycle's ceiling check reads.
    serving: tuple[tuple[str, tuple[Serving, ...]], ...] = ()
    covered: frozenset[str] = frozenset()  # every resource its resource groups cover
    # Per FR, what ``available`` needs besides usage: (guaranteed, subtree_quota − guaranteed,
    # borrowingLimit or None). One lookup on the hot path instead of three.
    bounds: dict[FR, tuple[int, int, int | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.key = f"cohort/{self.name}" if self.is_cohort else self.name

    def path_from_root(self) -> list[QuotaNode]:
        path: list[QuotaNode] = []
        node: QuotaNode | None = self
        while node is not None:
            path.append(node)
            node = node.parent
        path.reverse()
        return path

    def root(self) -> QuotaNode:
        node = self
        while node.parent is not None:
            node = node.parent
        return node


def _load_groups(node: QuotaNode, groups: Iterable[ResourceGroup]) -> None:
    for group in groups:
        for flavor in group.flavors:
            for rq in flavor.resources:
                fr = (flavor.name, rq.name)
                node.nominal[fr] = rq.nominal_quota
                if rq.borrowing_limit is not None:
                    node.borrowing_limit[fr] = rq.borrowing_limit
                if rq.lending_limit is not None:
                    node.lending_limit[fr] = rq.lending_limit


def _serving(node: QuotaNode, fr: FR) -> Serving:
    guaranteed, stored, limit = node.bounds.get(fr, _NO_BOUNDS)
    if node.parent is None:
        return fr, (node.key, fr), guaranteed, node.subtree_quota.get(fr, 0), None
    return fr, (node.parent.key, fr), guaranteed, stored, limit


class QuotaTree:
    """The static structure: nodes, parents and subtree quotas, derived from a ``QueueConfig``."""

    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self.cluster_queues: dict[str, QuotaNode] = {}
        self.cohorts: dict[str, QuotaNode] = {}
        for name in config.cohort_names():
            cohort = config.cohorts.get(name)
            node = QuotaNode(name=name, is_cohort=True)
            if cohort is not None:
                _load_groups(node, cohort.resource_groups)
                node.weight = cohort.fair_sharing.weight
            self.cohorts[name] = node
        for name, cohort_obj in config.cohorts.items():
            if cohort_obj.parent is not None:
                child, parent = self.cohorts[name], self.cohorts[cohort_obj.parent]
                child.parent = parent
                parent.children.append(child)
        for name, cq in sorted(config.cluster_queues.items()):
            node = QuotaNode(name=name, is_cohort=False, weight=cq.fair_sharing.weight)
            _load_groups(node, cq.resource_groups)
            node.groups = tuple(
                (g.covered_resources, tuple(f.name for f in g.flavors)) for g in cq.resource_groups
            )
            node.covered = frozenset(r for covered, _ in node.groups for r in covered)
            if cq.cohort is not None:
                node.parent = self.cohorts[cq.cohort]
                node.parent.children.append(node)
            self.cluster_queues[name] = node
        # Configuration-static facts the cycle needs every time, computed once.
        self.may_preempt: dict[str, bool] = {
            name: cq.can_preempt for name, cq in config.cluster_queues.items()
        }
        self.draining: tuple[str, ...] = tuple(
            sorted(
                name
                for name, cq in config.cluster_queues.items()
                if cq.stop_policy is StopPolicy.HOLD_AND_DRAIN
            )
        )
        # LocalQueues with ``stopPolicy: HoldAndDrain``: their admitted workloads are evicted (the
        # LocalQueue CRD: "HoldAndDrain - Admitted workloads are evicted"), so the cycle must run
        # while any exists even when no ClusterQueue has admissible work.
        self.draining_local_queues: frozenset[tuple[str, str]] = frozenset(
            key for key, lq in config.local_queues.items() if lq.stop_policy is StopPolicy.HOLD_AND_DRAIN
        )
        for root in self.roots():
            self._compute(root, 0)
            root.members = tuple(self.cohort_members(root)) if root.is_cohort else (root.name,)
            _fill_potential(root)
        for node in self.cluster_queues.values():
            node.serving = tuple(
                (resource, tuple(_serving(node, (f, resource)) for f in flavor_names))
                for covered, flavor_names in node.groups
                for resource in covered
            )

    def roots(self) -> list[QuotaNode]:
        return [n for n in (*self.cohorts.values(), *self.cluster_queues.values()) if n.parent is None]

    def _compute(self, node: QuotaNode, depth: int) -> None:
        node.depth = depth
        node.root_key = node.root().key
        subtree = dict(node.nominal)
        node.height = 1 if node.children else 0
        for child in node.children:
            self._compute(child, depth + 1)
            for fr, quota in child.subtree_quota.items():
                subtree[fr] = subtree.get(fr, 0) + quota - child.guaranteed.get(fr, 0)
            if child.is_cohort and child.height + 1 > node.height:
                node.height = child.height + 1
        node.subtree_quota = subtree
        node.guaranteed = {fr: max(0, subtree.get(fr, 0) - limit) for fr, limit in node.lending_limit.items()}
        for fr in {*subtree, *node.guaranteed, *node.borrowing_limit}:
            guaranteed = node.guaranteed.get(fr, 0)
            node.bounds[fr] = (guaranteed, subtree.get(fr, 0) - guaranteed, node.borrowing_limit.get(fr))

    def node(self, cluster_queue: str) -> QuotaNode:
        return self.cluster_queues[cluster_queue]

    def cohort_members(self, root: QuotaNode) -> list[str]:
        """Every ClusterQueue in ``root``'s subtree."""
        out: list[str] = []
        stack = [root]
        while stack:
            node = stack.pop()
            if node.is_cohort:
                stack.extend(node.children)
            else:
                out.append(node.name)
        return sorted(out)


class QuotaUsage:
    """Usage per node and (flavor, resource), with Kueue's propagation to parents.

    ``overlay`` makes a copy-on-write child: reads fall through to the parent state, writes copy
    only the touched node's map. A cycle admits into an overlay; the caller commits decisions to
    its own base state. Each state keeps the chain of layers it reads (:attr:`layers`: its own
    writes first, the base state's last), so a read never reaches into another state's fields.
    """

    __slots__ = ("_avail", "_borrowing", "_layers", "_own", "tree")

    def __init__(self, tree: QuotaTree, base: QuotaUsage | None = None) -> None:
        self.tree = tree
        self._own: dict[str, dict[FR, int]] = {}
        layers: tuple[Mapping[str, Mapping[FR, int]], ...] = (self._own,)
        self._layers = layers if base is None else (*layers, *base.layers)
        # root key -> {(node key, fr): available}; dropped whenever usage in that tree changes.
        self._avail: dict[str, dict[tuple[str, FR], int]] = {}
        # root key -> {flavor-resources: ClusterQueues borrowing one of them}; dropped likewise.
        self._borrowing: dict[str, dict[frozenset[FR], frozenset[str]]] = {}

    def available(self, node: QuotaNode, fr: FR) -> int:
        """Kueue ``available`` for ``node``, memoized until usage in its cohort tree changes."""
        cache = self._avail.get(node.root_key)
        if cache is None:
            cache = self._avail[node.root_key] = {}
        key = (node.key, fr)
        value = cache.get(key)
        if value is None:
            value = cache[key] = self._available(node, fr, cache)
        return value

    def _available(self, node: QuotaNode, fr: FR, cache: dict[tuple[str, FR], int]) -> int:
        """Kueue ``available`` for ``node`` now, over its parent's availability memoized in
        ``cache`` (the memo of ``node``'s tree): ``max(0, guaranteed − usage)`` plus what the
        parent can give, capped by a borrowing limit; at a root, ``subtree_quota − usage``."""
        used = self.of(node).get(fr, 0)
        parent = node.parent
        if parent is None:
            return node.subtree_quota.get(fr, 0) - used
        guaranteed, stored_in_parent, limit = node.bounds.get(fr, _NO_BOUNDS)
        key = (parent.key, fr)
        above = cache.get(key)
        if above is None:
            above = cache[key] = self._available(parent, fr, cache)
        # max(0, ·) and min(·, ·) as conditionals (no builtin calls: a hot path)
        if limit is not None:
            lendable = stored_in_parent - (used - guaranteed if used > guaranteed else 0) + limit
            if lendable < above:
                above = lendable
        return (guaranteed - used if guaranteed > used else 0) + (above if above > 0 else 0)

    def ceiling(self, node: QuotaNode) -> dict[str, int]:
        """Per resource a ClusterQueue covers, the most any of its flavors has available now.

        A single-pod-set request above this for some resource fits no flavor: the admission cycle
        checks it before a full flavor assignment. The loop is :meth:`_available` for each
        (flavor, resource), unrolled over the parent's memoized availability (the hot path of a
        saturated cycle: every candidate after an admission in its cohort needs a fresh one).
        """
        own = self.of(node)
        parent = node.parent
        out: dict[str, int] = {}
        if parent is None:
            for resource, entries in node.serving:
                if len(entries) == 1:  # one flavor: no generator for max() (the common case)
                    fr, _, _, quota, _ = entries[0]
                    out[resource] = quota - own.get(fr, 0)
                else:
                    out[resource] = max(quota - own.get(fr, 0) for fr, _, _, quota, _ in entries)
            return out
        cache = self._avail.get(node.root_key)
        if cache is None:
            cache = self._avail[node.root_key] = {}
        # The root's usage, when the parent is the root: its availability is then its quota minus
        # its usage (``_available`` at a root, inlined), read once for every (flavor, resource).
        root_usage = None
        at_root = parent.parent is None
        for resource, entries in node.serving:
            best = 0
            for fr, memo_key, guaranteed, stored, limit in entries:
                value = cache.get(memo_key)
                if value is None:
                    if at_root:
                        if root_usage is None:
                            root_usage = self.of(parent)
                        value = cache[memo_key] = parent.subtree_quota.get(fr, 0) - root_usage.get(fr, 0)
                    else:
                        value = cache[memo_key] = self._available(parent, fr, cache)
                # _available's arithmetic, with conditionals for max(0, ·) (no builtin calls)
                used = own.get(fr, 0)
                if limit is not None:
                    lendable = stored - (used - guaranteed if used > guaranteed else 0) + limit
                    if lendable < value:
                        value = lendable
                if value < 0:
                    value = 0
                if guaranteed > used:
                    value += guaranteed - used
                if value > best:
                    best = value
            out[resource] = best
        return out

    def borrowing(self, root: QuotaNode, frs: frozenset[FR]) -> frozenset[str]:
        """The ClusterQueues of ``root``'s tree that are above their own quota in one of ``frs``
        (Kueue ``cqIsBorrowing``, which a ClusterQueue without a cohort never is), memoized until
        usage in the tree changes: the victim search asks it of every cohort member for every
        preemptor, and the answer is the same for all preemptors of one cycle that need the same
        flavor-resources. (Like :meth:`available`'s memo, it assumes that the state an overlay
        reads through does not change while the overlay is in use.)"""
        memo = self._borrowing.get(root.key)
        if memo is None:
            memo = self._borrowing[root.key] = {}
        found = memo.get(frs)
        if found is None:
            nodes = self.tree.cluster_queues
            out = []
            for name in root.members:
                node = nodes[name]
                if node.parent is None:
                    continue
                own, quota = self.of(node), node.subtree_quota
                if any(own.get(fr, 0) > quota.get(fr, 0) for fr in frs):
                    out.append(name)
            found = memo[frs] = frozenset(out)
        return found

    def must_borrow(self, node: QuotaNode, demand: Mapping[str, int]) -> bool:
        """Whether every flavor of some resource group would put ``node`` above its own quota.

        Then any assignment of ``demand`` (a single pod set's total) borrows, whichever flavor
        it lands on: the admission cycle uses it as a lower bound of a candidate's place in the
        order (Kueue's entryOrdering puts borrowing workloads after those within nominal quota),
        and usage only grows during a cycle, so the bound stays true.
        """
        if node.parent is None:
            return False
        own = self.of(node)
        quota = node.subtree_quota
        for covered, flavor_names in node.groups:
            needed = [(r, demand[r]) for r in covered if r in demand]
            if not needed:
                continue
            for f in flavor_names:
                for r, amount in needed:
                    fr = (f, r)
                    if own.get(fr, 0) + amount > quota.get(fr, 0):
                        break  # this flavor would borrow
                else:
                    break  # this flavor fits within the queue's own quota
            else:
                return True  # every flavor of the group would borrow
        return False

    def overlay(self) -> QuotaUsage:
        return QuotaUsage(self.tree, self)

    def pin(self, keys: Iterable[str]) -> None:
        """Copy what the nodes ``keys`` read now into this state's own layer, so that later changes
        of its base to those nodes no longer show through (an overlay reads its base live)."""
        own = self._own
        for key in keys:
            if key in own:
                continue
            for layer in self._layers[1:]:
                found = layer.get(key)
                if found is not None:
                    own[key] = dict(found)
                    break
            else:
                own[key] = {}
        self._avail.clear()
        self._borrowing.clear()

    def frozen(self) -> QuotaUsage:
        """A copy of this state as it is now, reading nothing of it afterwards (an overlay would
        read later changes of its base through): for what is computed after the state moves on."""
        frozen = QuotaUsage(self.tree)
        frozen._own.update(self.flatten())
        return frozen

    @property
    def layers(self) -> tuple[Mapping[str, Mapping[FR, int]], ...]:
        """What this state reads, by node key, layer by layer: its own writes first, then its base
        state's layers (read-only: only the first layer's owner writes, and only to it)."""
        return self._layers

    def of(self, node: QuotaNode) -> Mapping[FR, int]:
        key = node.key
        for layer in self._layers:
            found = layer.get(key)
            if found is not None:
                return found
        return {}

    def get(self, node: QuotaNode, fr: FR) -> int:
        return self.of(node).get(fr, 0)

    def _writable(self, node: QuotaNode) -> dict[FR, int]:
        key = node.key
        own = self._own.get(key)
        if own is None:
            own = dict(self.of(node))
            self._own[key] = own
        return own

    def add(self, cluster_queue: str, amounts: Mapping[FR, int], sign: int = 1) -> None:
        """Add (sign=1) or remove (sign=-1) a workload's usage in a ClusterQueue, propagating.

        Per (flavor, resource), up the tree while the change is not zero: a node's usage counts in
        its parent only above its guaranteed part, so what it passes up is the change of
        ``max(0, usage - guaranteed)``. The hot path of every admission and release, so it is
        written out here without a call or a container per (flavor, resource) (an overlay still
        copies a node's map on its first write to it).
        """
        node = self.tree.cluster_queues[cluster_queue]
        self._avail.pop(node.root_key, None)
        self._borrowing.pop(node.root_key, None)
        own = self._own
        for fr, amount in amounts.items():
            delta = sign * amount
            current = node
            while delta:
                usage = own.get(current.key)
                if usage is None:
                    usage = self._writable(current)
                old = usage.get(fr, 0)
                new = old + delta
                if new:
                    usage[fr] = new
                else:
                    usage.pop(fr, None)
                parent = current.parent
                if parent is None:
                    break
                # max(0, new - guaranteed) - max(0, old - guaranteed), without builtin calls
                guaranteed = current.guaranteed.get(fr, 0) if current.guaranteed else 0
                delta = (new - guaranteed if new > guaranteed else 0) - (
                    old - guaranteed if old > guaranteed else 0
                )
                current = parent

    def flatten(self) -> dict[str, dict[FR, int]]:
        """Materialise every node's usage (for reports and tests)."""
        out: dict[str, dict[FR, int]] = {}
        for layer in reversed(self._layers):
            for key, usage in layer.items():
                out[key] = dict(usage)
        return {k: v for k, v in out.items() if v}


def available(node: QuotaNode, fr: FR, usage: QuotaUsage) -> int:
    """What ``node`` can still take of ``fr`` now (Kueue ``available``)."""
    return usage.available(node, fr)


_NO_BOUNDS: tuple[int, int, int | None] = (0, 0, None)


def potential_available(node: QuotaNode, fr: FR) -> int:
    """What ``node`` could take of ``fr`` if nothing else used anything (Kueue ``potentialAvailable``)."""
    value = node.potential_cache.get(fr)
    if value is None:
        return _potential_available(node, fr)  # an FR outside the node's subtree quota: rare
    return value


def _fill_potential(root: QuotaNode) -> None:
    """Compute ``potential_cache`` for ``root``'s tree, parents before children."""
    stack = [root]
    while stack:
        node = stack.pop()
        node.potential_cache = {fr: _potential_available(node, fr) for fr in node.subtree_quota}
        stack.extend(node.children)


def _potential_available(node: QuotaNode, fr: FR) -> int:
    if node.parent is None:
        return node.subtree_quota.get(fr, 0)
    guaranteed = node.guaranteed.get(fr, 0)
    parent = potential_available(node.parent, fr)
    limit = node.borrowing_limit.get(fr)
    if limit is not None:
        parent = min(node.subtree_quota.get(fr, 0) - guaranteed + limit, parent)
    return guaranteed + max(0, parent)


def preemption_reservation(
    node: QuotaNode, usage: QuotaUsage, amounts: Mapping[FR, int], borrows: bool
) -> dict[FR, int]:
    """What a workload that waits for preemption holds in the cycle's usage (Kueue ``resourcesToReserve``).

    Kueue (``pkg/scheduler/scheduler.go``, ``quotaResourcesToReserve``) adds this to the cycle's
    snapshot when it nominates a workload whose flavor assignment needs preemption, so that
    lower-priority workloads considered later in the same cycle cannot take the room the
    preemptor will need once its victims are gone. Per (flavor, resource) of the assignment:

    - if the assignment borrows: the whole request when there is no ``borrowingLimit``, else at
      most ``nominal + borrowingLimit − usage`` (the queue never holds more than it may ever use);
    - otherwise at most ``nominal − usage``, and never less than 0 (what is left of its own quota:
      a preemptor within nominal never blocks what the cohort could lend to others).

    A capped amount is clamped at 0 in the borrowing case too (Kueue does not clamp there; a
    negative amount, possible only when usage is already above the limit after a quota was
    lowered, would *release* quota held by others). Zero amounts are left out, so an empty result
    means nothing is reserved.
    """
    used_of = usage.of(node)
    out: dict[FR, int] = {}
    for fr, amount in amounts.items():
        used = used_of.get(fr, 0)
        nominal = node.nominal.get(fr, 0)
        if borrows:
            limit = node.borrowing_limit.get(fr)
            room = amount if limit is None else min(amount, nominal + limit - used)
        else:
            room = min(amount, nominal - used)
        if room > 0:
            out[fr] = room
    return out


def borrowing_after(node: QuotaNode, fr: FR, usage: QuotaUsage, request: int) -> int:
    """How much above its own quota ``node`` would be after taking ``request`` more of ``fr``."""
    return max(0, usage.get(node, fr) + request - node.subtree_quota.get(fr, 0))


def binding_limit(node: QuotaNode, fr: FR, usage: QuotaUsage, request: int) -> tuple[QuotaNode, int, int]:
    """For a ``request`` that does not fit ``node``: the node whose limit binds, and the numbers.

    Returns ``(limiting node, what the request would add there, room left there)``. The request is
    applied to a copy-on-write overlay of ``usage`` (the core propagates it up the tree), and the
    lowest node on the path that ends above its limit is named: a root's subtree quota, or
    ``subtree quota + borrowingLimit`` below a parent (a node without a borrowing limit is capped
    only by its parent). Kueue's ``available`` refuses a request exactly when some node on the path
    ends above its limit; when none does (it cannot happen), ``node`` itself is named with its
    ``available``.
    """
    trial = usage.overlay()
    trial.add(node.name, {fr: request})
    for current in reversed(node.path_from_root()):
        if current.parent is None:
            limit = current.subtree_quota.get(fr, 0)
        elif fr in current.borrowing_limit:
            limit = current.subtree_quota.get(fr, 0) + current.borrowing_limit[fr]
        else:
            continue
        before, after = usage.get(current, fr), trial.get(current, fr)
        if after > limit:
            return current, after - before, max(0, limit - before)
    return node, request, max(0, usage.available(node, fr))
