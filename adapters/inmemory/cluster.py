"""In-memory ``ClusterBackend``: a fleet of nodes, pods placed best-fit, gangs all-or-nothing.

It plays the part of kube-scheduler plus the kubelets for the simulator and for embedded use, and
implements the simulator's port, :class:`budcore.ports.simulated_cluster.SimulatedCluster` (the
``SimulatedClusterBackend`` hooks ``complete``, ``fail_node`` and ``repair_node``, plus
``try_submit``, ``refusal_key`` and ``forget``).
A pod set is placed only on schedulable nodes whose labels match its node selector and whose
NoSchedule/NoExecute taints its tolerations tolerate (kube-scheduler's NodeAffinity and
TaintToleration filters; :meth:`budcore.domain.cluster.Node.untolerated_taint`). Placement indexes
those nodes per (node selector, tolerations, key resource) in a sorted list of free amounts, so a
pod finds the tightest node that fits in O(log n) instead of scanning the fleet. A pod may ask for
a share of one accelerator (``nvidia.com/gpu: 500m``): shares are packed onto physical devices,
a share never spanning two, by :mod:`.devices`, which keeps per-device free capacity only for the
nodes holding a share.

A caller that retries pending workloads whenever capacity frees (the simulator does, as
kube-scheduler retries unschedulable pods) mostly retries workloads that still cannot be placed.
Two things keep those retries cheap: :meth:`InMemoryClusterBackend.try_submit` reports "not now"
without building an error message, and the backend remembers which pod set shapes failed since
resources were last released, so a workload of a shape that just failed is refused in O(1)
(see :meth:`InMemoryClusterBackend._place`).
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from budcore.domain.cluster import (
    ClusterCapacity,
    Node,
    NodeCapacity,
    PodSetPlacement,
    Workload,
    WorkloadPhase,
    WorkloadStatus,
)
from budcore.domain.errors import AlreadyExistsError, CapacityError, NotFoundError, ValidationError
from budcore.domain.ids import JobId
from budcore.domain.podspec import Toleration
from budcore.domain.resources import CPU, ResourceVector, is_accelerator
from budcore.ports.clock import Clock

from .devices import DeviceShares, accelerator_requests, device_request

_Selector = frozenset[tuple[str, str]]
_Tolerations = frozenset[Toleration]
# Which nodes a pod set may use: those matching its node selector whose taints it tolerates.
_Where = tuple[_Selector, _Tolerations]
# What decides whether a pod set can be placed: where, how much per pod, how many.
_Shape = tuple[_Where, ResourceVector, int]
# A placement index: ``(free amount of the key resource, node)`` for the nodes a pod set may use,
# sorted. A plain list (bisect, insort, del) rather than a ``SortedList``: a move is two C calls and
# a memmove of the list, where ``SortedList`` runs its bookkeeping in Python. Up to some 15,000
# nodes that is cheaper (per move and lookup: 1.3 vs 2.2 us at 810 nodes, 2.3 vs 3.7 at 5,000,
# 4.5 vs 5.5 at 15,000); past that the memmove grows (13 vs 8 us at 50,000 nodes, beyond the
# 5,000 nodes Kubernetes supports in one cluster).
_Index = list[tuple[int, str]]
_KEY_MEMO_SIZE = 4096
_NO_TOLERATIONS: _Tolerations = frozenset()


def _where(pod_set: PodSetPlacement) -> _Where:
    """The pod set's node constraints as a hashable key. Tolerations are a set: their order and
    repetition change nothing about which taints they tolerate."""
    tolerations = frozenset(pod_set.tolerations) if pod_set.tolerations else _NO_TOLERATIONS
    return (frozenset(pod_set.node_selector.items()), tolerations)


def _shape(pod_set: PodSetPlacement) -> _Shape:
    return (_where(pod_set), pod_set.resources, pod_set.count)


def _seconds(clock: Clock) -> Callable[[], float]:
    """``clock``'s time in seconds (from its first reading), for the GPU-sharing integral."""
    origin = clock.now()
    return lambda: (clock.now() - origin).total_seconds()


def _eligible(node: Node, where: _Where) -> bool:
    """Whether pods constrained by ``where`` may run on ``node`` (schedulability aside)."""
    selector, tolerations = where
    return node.matches(dict(selector)) and node.untolerated_taint(tolerations) is None


@dataclass(slots=True)
class _Tracked:
    workload: Workload
    phase: WorkloadPhase
    allocations: list[tuple[str, dict[str, int]]] = field(default_factory=list)  # (node, resources)
    message: str = ""
    release_at: datetime | None = None
    order: int = 0  # the workload's position among the backend's workloads (submission order)
    # The distinct nodes of ``allocations`` in placement order. Kept beside them rather than
    # derived on each read: a job's path reads it four times (holders, status, at start and end),
    # and ``allocations`` changes only where both are set (``_submit``) or cleared (``_release``).
    nodes: tuple[str, ...] = ()

    @staticmethod
    def nodes_of(allocations: Sequence[tuple[str, Mapping[str, int]]]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for n, _ in allocations))


class InMemoryClusterBackend:
    """Nodes and running workloads in memory; deterministic for the same call sequence."""

    def __init__(self, nodes: Iterable[Node] = (), clock: Clock | None = None) -> None:
        self._nodes: dict[str, Node] = {}
        self._free: dict[str, dict[str, int]] = {}
        self._workloads: dict[str, _Tracked] = {}
        self._clock = clock
        self._terminating: list[tuple[datetime, str]] = []  # heap of (release_at, job id)
        self._indexes: dict[tuple[_Where, str], _Index] = {}
        self._node_indexes: dict[str, list[tuple[_Where, str]]] = {}
        self._holders: dict[str, dict[str, None]] = {}  # node -> workloads with pods on it
        self._submissions = 0
        # Pod set shapes that could not be placed, valid until free capacity grows (see _place).
        self._unplaceable: set[_Shape] = set()
        self._key_resources: dict[ResourceVector, str] = {}
        # Shares of one GPU (1-999 milli-units) packed onto devices, tracked per device only on
        # nodes with share tenants (devices.py); the whole-GPU path never looks at it otherwise.
        self.gpu_sharing = DeviceShares(now=None if clock is None else _seconds(clock))
        self._device_memo: dict[ResourceVector, tuple[tuple[str, int], ...]] = {}
        self._changed: set[str] = set()  # nodes changed since take_changed_nodes (see there)
        for node in nodes:
            self.add_node(node)

    # Fleet management ----------------------------------------------------------------------
    def add_node(self, node: Node) -> None:
        if node.name in self._nodes:
            raise AlreadyExistsError("node", node.name)
        self._nodes[node.name] = node
        self._free[node.name] = node.allocatable.as_dict()
        self._changed.add(node.name)
        self._node_indexes[node.name] = []
        self._holders[node.name] = {}
        self._indexes.clear()  # the candidate sets of selectors and tolerations changed; rebuilt lazily
        for key in self._node_indexes:
            self._node_indexes[key] = []
        self._unplaceable.clear()

    def set_schedulable(self, name: str, schedulable: bool) -> None:
        """Cordon (False) or uncordon (True) a node; running pods stay where they are.

        The placement indexes the node belongs to are updated in place (the simulator cordons a
        node at every failure; rebuilding every index each time was most of a failure's cost).
        """
        node = self._node(name)
        self._nodes[name] = node.model_copy(update={"schedulable": schedulable})
        self._changed.add(name)
        if node.schedulable == schedulable:
            return
        free = self._free[name]
        keys = self._node_indexes[name]
        for key, index in self._indexes.items():
            where, resource = key
            if not _eligible(node, where):
                continue
            entry = (free.get(resource, 0), name)
            if schedulable:
                insort(index, entry)
                keys.append(key)
            else:
                del index[bisect_left(index, entry)]  # the node is in every index it is eligible for
                keys.remove(key)
        if schedulable:
            # More room: refused shapes may fit now. (A cordon only shrinks it: they stay refused.)
            self._unplaceable.clear()

    def fail_node(self, name: str, reason: str = "node failure") -> list[JobId]:
        """A node goes down: it is cordoned and every workload with a pod on it fails."""
        self.set_schedulable(name, False)
        holders = (self._workloads[job_id] for job_id in self._holders[name])
        victims = sorted((t for t in holders if t.phase is WorkloadPhase.RUNNING), key=lambda t: t.order)
        out: list[JobId] = []
        for tracked in victims:
            self._release(tracked)
            tracked.phase = WorkloadPhase.FAILED
            tracked.message = f"{reason} on {name}"
            out.append(tracked.workload.job_id)
        return out

    def repair_node(self, name: str) -> None:
        self.set_schedulable(name, True)

    # Port ----------------------------------------------------------------------------------
    def nodes(self) -> Sequence[Node]:
        return list(self._nodes.values())

    def capacity(self) -> ClusterCapacity:
        self._reap()
        return ClusterCapacity(
            nodes=tuple(
                NodeCapacity(node=node, free=ResourceVector(self._free[name]))
                for name, node in self._nodes.items()
            )
        )

    def node(self, name: str) -> Node:
        """The node called ``name`` as it is now (cordoned or not)."""
        return self._node(name)

    def take_changed_nodes(self) -> set[str]:
        """The nodes added, cordoned, uncordoned or given or relieved of pods since the last call
        (every node at the first): a measure sampled often re-reads only those."""
        changed, self._changed = self._changed, set()
        return changed

    def free_amounts(self) -> Mapping[str, Mapping[str, int]]:
        """What is free on each node now, in milli-units: a live view (read it, do not change it),
        for measures sampled often (GPU fragmentation) that ``capacity()`` would copy each time."""
        self._reap()
        return self._free

    def submit(self, workload: Workload) -> WorkloadStatus:
        outcome = self._submit(workload)
        if isinstance(outcome, PodSetPlacement):
            raise CapacityError(self._refusal(workload, outcome))
        return outcome

    def try_submit(self, workload: Workload) -> WorkloadStatus | None:
        """:meth:`submit`, but ``None`` instead of ``CapacityError`` when the pods do not fit now.

        For callers that retry pending workloads often and expect most retries to fail: a refusal
        formats no message and raises nothing. Other errors (a duplicate submit) still raise.
        """
        outcome = self._submit(workload)
        return None if isinstance(outcome, PodSetPlacement) else outcome

    def refusal_key(self, workload: Workload) -> Hashable:
        """Workloads with equal keys stand or fall together until resources are released.

        Once one of them is refused (by :meth:`submit` or :meth:`try_submit`), every other one is
        refused as well, however many workloads are placed meanwhile, until a workload releases
        resources or a node is added or uncordoned. A caller retrying a queue of pending workloads
        can so skip the rest of a key once one failed. The key of a workload with one pod set is
        that pod set's shape (see :meth:`_place` for why); a workload of several pod sets has a key
        of its own, as its later pod sets may fit only on nodes its first one happened to leave.
        """
        if len(workload.pod_sets) == 1:
            return _shape(workload.pod_sets[0])
        return (workload.job_id,)

    def complete(self, job_id: JobId, succeeded: bool = True, message: str = "") -> WorkloadStatus:
        """The workload's pods exit (the simulator's "job finished" event)."""
        tracked = self._tracked(job_id)
        if tracked.phase is not WorkloadPhase.RUNNING:
            raise ValidationError(f"workload {job_id} is {tracked.phase.value}, not running", path="job_id")
        self._release(tracked)
        tracked.phase = WorkloadPhase.SUCCEEDED if succeeded else WorkloadPhase.FAILED
        tracked.message = message
        return self._status(tracked)

    def cancel(self, job_id: JobId) -> WorkloadStatus:
        tracked = self._tracked(job_id)
        if tracked.phase in (WorkloadPhase.SUCCEEDED, WorkloadPhase.FAILED, WorkloadPhase.EVICTED):
            # Already over and holding nothing: report how it ended instead of rewriting history.
            return self._status(tracked)
        if tracked.allocations:
            self._release(tracked)
        tracked.phase = WorkloadPhase.EVICTED
        tracked.message = "cancelled"
        return self._status(tracked)

    def preempt(self, job_id: JobId, grace: timedelta = timedelta(seconds=30)) -> WorkloadStatus:
        tracked = self._tracked(job_id)
        if tracked.phase is not WorkloadPhase.RUNNING:
            return self._status(tracked)
        if grace <= timedelta(0) or self._clock is None:
            self._release(tracked)
            tracked.phase = WorkloadPhase.EVICTED
            tracked.message = "preempted"
        else:
            tracked.phase = WorkloadPhase.TERMINATING
            tracked.message = f"preempted, grace period {grace.total_seconds():g}s"
            tracked.release_at = self._clock.now() + grace
            heapq.heappush(self._terminating, (tracked.release_at, job_id))
        return self._status(tracked)

    def observe(self) -> Sequence[WorkloadStatus]:
        self._reap()
        return [self._status(t) for t in self._workloads.values()]

    def forget(self, job_id: JobId) -> None:
        """Drop a finished workload's record (keeps long simulations' memory flat)."""
        tracked = self._workloads.get(job_id)
        if tracked is not None and tracked.allocations:
            raise ValidationError(f"workload {job_id} still holds resources", path="job_id")
        self._workloads.pop(job_id, None)

    # Internals -----------------------------------------------------------------------------
    def _submit(self, workload: Workload) -> WorkloadStatus | PodSetPlacement:
        """Start ``workload``, or return the pod set that does not fit (nothing stays allocated)."""
        self._reap()
        existing = self._workloads.get(workload.job_id)
        if existing is not None and existing.phase in (
            WorkloadPhase.RUNNING,
            WorkloadPhase.PENDING,
            WorkloadPhase.TERMINATING,
        ):
            raise AlreadyExistsError("workload", workload.job_id)
        allocations = self._place(workload)
        if isinstance(allocations, PodSetPlacement):
            return allocations
        if existing is not None:
            order = existing.order  # the dict keeps the key's position
        else:
            self._submissions += 1
            order = self._submissions
        tracked = _Tracked(
            workload, WorkloadPhase.RUNNING, allocations, order=order, nodes=_Tracked.nodes_of(allocations)
        )
        self._workloads[workload.job_id] = tracked
        for node in tracked.nodes:
            self._holders[node][workload.job_id] = None
        return self._status(tracked)

    def _place(self, workload: Workload) -> list[tuple[str, dict[str, int]]] | PodSetPlacement:
        """Allocate every pod of ``workload`` best-fit, all or nothing, or return the pod set that
        does not fit (after undoing what was allocated).

        A first pod set that fails is remembered by shape in ``_unplaceable`` until free capacity
        grows (a release, a node added or uncordoned), and a workload starting with that shape is
        refused without a search. That is sound because the pods of one pod set are identical:
        each is placed iff some matching node fits it, and placing it on a node lowers the number
        of such pods that node could still hold by exactly one, so the pod set fits iff the sum of
        that number over the matching nodes reaches ``count``, whatever the order of placement.
        While nothing is released the sum can only shrink, so the same shape keeps failing (with
        GPU shares, what a node could hold also sums over its devices the pods each fits, which
        placing one lowers by exactly one as well). Later
        pod sets are placed after earlier ones took their nodes, so only the first is remembered.
        """
        allocations: list[tuple[str, dict[str, int]]] = []
        if not workload.pod_sets:
            return allocations
        first = workload.pod_sets[0]
        shape = _shape(first)
        if shape in self._unplaceable:
            return first
        sharing = self.gpu_sharing
        for pod_set in workload.pod_sets:
            request = pod_set.resources
            where = shape[0] if pod_set is first else _where(pod_set)
            resource = self._key_resource(request)
            index = self._index(where, resource)
            need = request.get(resource, 0)
            devices = self._device_memo.get(request)
            if devices is None:
                devices = self._device_requests(request, pod_set.name)
            for _ in range(pod_set.count):
                node = self._best_fit(index, request, need, devices if sharing.nodes else ())
                if node is None:
                    if sharing.nodes or sharing.held:
                        sharing.release(workload.job_id, allocations)
                    for placed, amounts in allocations:
                        self._allocate(placed, amounts, sign=+1)
                    if pod_set is first:
                        self._unplaceable.add(shape)
                    return pod_set
                if devices and (sharing.nodes or devices[0][1] < 1000):
                    self._take_devices(workload.job_id, len(allocations), node, devices)
                amounts = request.as_dict()
                self._allocate(node, amounts, sign=-1)
                allocations.append((node, amounts))
        return allocations

    def _device_requests(self, request: ResourceVector, pod_set: str) -> tuple[tuple[str, int], ...]:
        """The accelerators one pod asks for, each a share of one device or whole devices
        (a ``ValidationError`` for ``1500m``: see :func:`.devices.device_request`)."""
        for name, milli in accelerator_requests(request):
            device_request(name, milli, f"a pod of pod set {pod_set!r}")
        # shares first: the take condition in _place looks at the first one
        found = tuple(sorted(accelerator_requests(request), key=lambda item: item[1]))
        if len(self._device_memo) >= _KEY_MEMO_SIZE:
            self._device_memo.clear()
        self._device_memo[request] = found  # memoised per request vector, as _key_resource is
        return found

    def _take_devices(self, job_id: str, pod: int, node: str, devices: tuple[tuple[str, int], ...]) -> None:
        allocatable = self._nodes[node].allocatable
        free = self._free[node]
        for name, milli in devices:
            self.gpu_sharing.take(job_id, pod, node, name, milli, allocatable.get(name, 0), free.get(name, 0))

    def _refusal(self, workload: Workload, pod_set: PodSetPlacement) -> str:
        """Why ``pod_set`` of ``workload`` could not be placed, naming the nodes that match its
        selector but carry a taint it does not tolerate (built only when :meth:`submit` raises)."""
        message = (
            f"workload {workload.job_id}: no node with free {pod_set.resources.to_kube()} "
            f"matching {pod_set.node_selector or 'any node'} for pod set {pod_set.name!r}"
        )
        tainted: list[str] = []
        for node in self._nodes.values():
            if node.taints and node.schedulable and node.matches(pod_set.node_selector):
                taint = node.untolerated_taint(pod_set.tolerations)
                if taint is not None:
                    tainted.append(f"{node.name} ({taint})")
        if not tainted:
            return message
        shown = ", ".join(tainted[:3]) + (f" and {len(tainted) - 3} more" if len(tainted) > 3 else "")
        return f"{message}; untolerated taints keep it off {len(tainted)} matching node(s): {shown}"

    def _node(self, name: str) -> Node:
        try:
            return self._nodes[name]
        except KeyError:
            raise NotFoundError("node", name) from None

    def _tracked(self, job_id: JobId) -> _Tracked:
        self._reap()
        try:
            return self._workloads[job_id]
        except KeyError:
            raise NotFoundError("workload", job_id) from None

    def _status(self, tracked: _Tracked) -> WorkloadStatus:
        return WorkloadStatus(
            job_id=tracked.workload.job_id,
            tenant=tracked.workload.tenant,
            phase=tracked.phase,
            nodes=tracked.nodes,
            message=tracked.message,
        )

    def _reap(self) -> None:
        """Release workloads whose preemption grace period is over."""
        if self._clock is None or not self._terminating:
            return
        now = self._clock.now()
        while self._terminating and self._terminating[0][0] <= now:
            _, job_id = heapq.heappop(self._terminating)
            tracked = self._workloads.get(job_id)
            if tracked is not None and tracked.phase is WorkloadPhase.TERMINATING:
                self._release(tracked)
                tracked.phase = WorkloadPhase.EVICTED
                tracked.message = "preempted"

    def _release(self, tracked: _Tracked) -> None:
        for node in tracked.nodes:
            self._holders[node].pop(tracked.workload.job_id, None)
        sharing = self.gpu_sharing
        if sharing.nodes or sharing.held:  # else only whole devices were ever involved
            sharing.release(tracked.workload.job_id, tracked.allocations)
        for node, request in tracked.allocations:
            self._allocate(node, request, sign=+1)
        if tracked.allocations:
            self._unplaceable.clear()  # freed room may fit shapes that failed before
        tracked.allocations = []
        tracked.nodes = ()

    def _allocate(self, node: str, request: dict[str, int], sign: int) -> None:
        """Take (``sign`` -1) or give back (+1) ``request`` on ``node``, keeping its index entries.

        An index entry is ``(free amount of the index's resource, node)``: it moves only when the
        request changes that amount (an index by cpu does not move for a request without cpu).
        """
        free = self._free[node]
        keys = self._node_indexes[node]
        self._changed.add(node)
        for name, amount in request.items():
            old = free.get(name, 0)
            free[name] = new = old + sign * amount
            for key in keys:
                if key[1] == name:
                    index = self._indexes[key]
                    del index[bisect_left(index, (old, node))]  # a node has its entry in each of its indexes
                    insort(index, (new, node))

    def _key_resource(self, resources: ResourceVector) -> str:
        """The resource nodes are indexed by for this request: its first accelerator, else cpu.

        Memoised per request vector (workloads of one shape share it); the memo is dropped when it
        grows large, so a trace of ever-new shapes does not keep them all.
        """
        key = self._key_resources.get(resources)
        if key is None:
            accelerators = sorted(r for r in resources if is_accelerator(r))
            if accelerators:
                key = accelerators[0]
            else:
                key = CPU if CPU in resources else (min(resources) if resources else CPU)
            if len(self._key_resources) >= _KEY_MEMO_SIZE:
                self._key_resources.clear()
            self._key_resources[resources] = key
        return key

    def _index(self, where: _Where, resource: str) -> _Index:
        key = (where, resource)
        index = self._indexes.get(key)
        if index is None:
            wanted = dict(where[0])
            tolerations = where[1]
            index = []
            for name, node in self._nodes.items():
                if node.schedulable and node.matches(wanted) and node.untolerated_taint(tolerations) is None:
                    index.append((self._free[name].get(resource, 0), name))
                    self._node_indexes[name].append(key)
            index.sort()
            self._indexes[key] = index
        return index

    def _best_fit(
        self, index: _Index, request: ResourceVector, need: int, devices: tuple[tuple[str, int], ...] = ()
    ) -> str | None:
        """The tightest node in ``index`` (by key resource, ``need`` of it) that fits ``request``,
        and on whose devices the pod's ``devices`` fit (checked only while some node has GPU
        shares: a node without shares is decided by its free amounts)."""
        start = bisect_left(index, (need, ""))
        free = self._free
        if not devices:  # the whole-GPU path, as before GPU sharing
            for i in range(start, len(index)):
                _, name = index[i]
                if request.fits_in(free[name]):
                    return str(name)
            return None
        sharing = self.gpu_sharing
        for i in range(start, len(index)):
            _, name = index[i]
            if request.fits_in(free[name]) and all(sharing.fits(name, r, m) for r, m in devices):
                return str(name)
        return None
