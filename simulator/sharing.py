"""GPU sharing in a simulation: physical GPU use and fragmentation over time, and their report.

The in-memory cluster packs shares of one GPU onto physical devices
(``budcore_adapters/inmemory/devices.py``). Two things then differ from a whole-GPU run, and a
capacity planner needs both:

* **Physical use.** A device holding any share counts as busy for as long as it holds one,
  however little of it is asked for, so the physical GPU-hours busy exceed the requested
  GPU-hours (shares counted at their fraction, as quota counts them) by the idle remainder of the
  shared devices.
* **Fragmentation** (:mod:`.fragmentation`, after the FGD paper): the share of free GPU capacity
  that no pending request can use, sampled on the engine's sample clock.

Both are kept only once a share has been placed, so whole-GPU runs pay one attribute test per
sample and their reports are unchanged. The pending requests are the jobs waiting for admission
(a job's pods may run on the nodes of its accelerator type, matched on the pool labels
``budcore.io/accelerator`` and ``nvidia.com/gpu.product``; on any node when no node carries it:
the flavor a job will get is not known before admission) and the admitted workloads whose pods
wait for room (exactly where their node selector and tolerations let them run). Under the
cycle-latency model the jobs waiting outside the scheduler's queues are not counted.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from budcore_adapters.inmemory import InMemoryClusterBackend
from budcore_adapters.inmemory.devices import DEVICE

from budcore.domain.cluster import Node, PodSetPlacement, Workload

from .fragmentation import Demand, NodeState, node_unusable
from .workload.model import JobArrival

# The pool labels of simulator/scenario.py (PoolSpec), which imports the engine that imports this.
ACCELERATOR_LABEL = "budcore.io/accelerator"
PRODUCT_LABEL = "nvidia.com/gpu.product"
_MEMO_MAX = 200_000


@dataclass(slots=True)
class SharingSeries:
    """The sampled figures, from the first sample after a share was placed (GPUs, not milli)."""

    times: list[float] = field(default_factory=list)
    free_gpus: list[float] = field(default_factory=list)  # free capacity of schedulable nodes
    unusable_gpus: list[float | None] = field(default_factory=list)  # None: nothing pending
    pending_pods: list[int] = field(default_factory=list)
    busy_gpus_physical: list[float] = field(default_factory=list)  # devices with any pod
    requested_gpus: list[float] = field(default_factory=list)  # shares at their fraction


@dataclass(slots=True)
class SharingOutcome:
    """What GPU sharing did over a run (the ``gpu_sharing`` block of report.json)."""

    resource: str
    series: SharingSeries
    extra_device_s: float  # physical busy device-seconds beyond the requested ones


@dataclass(slots=True)
class _Kind:
    """Nodes that measure alike: a snapshot of one of them, and how many there are now."""

    state: NodeState
    nodes: int = 1


# What a point is measured from: the GPUs requested by running pods (shares at their fraction),
# the jobs waiting for admission and the admitted workloads whose pods wait for room.
# The jobs come as their ids (in a fixed order) and a lookup of their arrivals; the workloads with
# a version that changes whenever one is added or removed: an unchanged queue is not re-read.
SampledState = tuple[float, Sequence[str], Callable[[str], JobArrival], Hashable, Iterable[Workload]]


class SharingSampler:
    """Samples physical use and fragmentation from a cluster that packs GPU shares.

    The nodes are kept as *kinds* (:meth:`_refresh`): nodes with the same labels and taints, the
    same free amounts and the same free capacity on each device measure alike, so a point costs
    the nodes changed since the previous one plus one measure per kind, not one per node (an
    idle fleet of a few node shapes is a handful of kinds)."""

    def __init__(self, backend: InMemoryClusterBackend, resource: str) -> None:
        self.backend = backend
        self.sharing = backend.gpu_sharing
        self.resource = resource
        self.series = SharingSeries()
        self._eligible: dict[tuple[str, Hashable], bool] = {}
        self._types: frozenset[str] | None = None
        self._events = -2  # the engine's event count at the previous point
        self._classes: dict[str, int] = {}  # node -> its placement class (see _class_of)
        self._placement_classes: dict[Hashable, int] = {}
        self._kind_of: dict[str, Hashable] = {}  # node with free GPU capacity -> its kind
        self._kinds: dict[Hashable, _Kind] = {}
        # id(pod set) -> (the pod set, its demand's key, its demand), for waiting workloads
        self._pod_sets: dict[int, tuple[PodSetPlacement, tuple[Any, ...], Demand]] = {}
        # The pending demand of the previous point: (queued ids, kinds, pods), (unplaced version,
        # kinds, pods), and (the queued part it was built from, the undominated demands, pods).
        self._queued: tuple[tuple[str, ...], dict[Hashable, Demand], int] = ((), {}, 0)
        self._unplaced: tuple[Hashable, dict[Hashable, Demand], int] = (None, {}, 0)
        self._pending: tuple[object, list[Demand], int] | None = None

    def sample(self, now: float, events: int, state: Callable[[], SampledState]) -> None:
        """One point of the series (nothing before the first share was placed). ``events`` is the
        engine's event count: when the only event since the previous point is this sample, nothing
        changed and that point is repeated instead of measured again (``state`` is not called)."""
        sharing = self.sharing
        if not sharing.shares_seen:
            return
        series = self.series
        if events == self._events + 1 and series.times:
            self._events = events
            series.times.append(now)
            series.free_gpus.append(series.free_gpus[-1])
            series.unusable_gpus.append(series.unusable_gpus[-1])
            series.pending_pods.append(series.pending_pods[-1])
            series.busy_gpus_physical.append(series.busy_gpus_physical[-1])
            series.requested_gpus.append(series.requested_gpus[-1])
            return
        self._events = events
        requested_gpus, queued, arrival_of, unplaced_version, unplaced = state()
        self._refresh()
        demands, pods = self._demands(tuple(queued), arrival_of, unplaced_version, unplaced)
        free = unusable = 0
        for kind in self._kinds.values():
            free += sum(kind.state.devices) * kind.nodes
            if pods:
                unusable += node_unusable(kind.state, demands, self._may_run) * kind.nodes
        series.times.append(now)
        series.free_gpus.append(free / DEVICE)
        series.unusable_gpus.append(unusable / DEVICE if pods else None)
        series.pending_pods.append(pods)
        series.busy_gpus_physical.append(
            requested_gpus - sharing.share_milli / DEVICE + sharing.shared_devices
        )
        series.requested_gpus.append(requested_gpus)

    def outcome(self) -> SharingOutcome | None:
        """The run's figures (None when no share was ever placed)."""
        if not self.sharing.shares_seen:
            return None
        return SharingOutcome(self.resource, self.series, self.sharing.extra_device_seconds())

    def _refresh(self) -> None:
        """Re-read the nodes changed since the previous point and move them between kinds."""
        backend, resource, tracked = self.backend, self.resource, self.sharing.nodes
        free_amounts = backend.free_amounts()
        kinds, kind_of = self._kinds, self._kind_of
        for name in backend.take_changed_nodes():
            old = kind_of.pop(name, None)
            if old is not None:
                kinds[old].nodes -= 1
                if not kinds[old].nodes:
                    del kinds[old]
            free = free_amounts[name]
            amount = free.get(resource, 0)
            node = backend.node(name)
            if amount <= 0 or not node.schedulable:
                continue
            placement = self._classes.get(name)
            if placement is None:
                placement = self._classes[name] = self._class_of(node)
            devices = tracked.get((name, resource))
            # a node without shares has whole devices only: `amount // 1000` of them free
            listed = [DEVICE] * (amount // DEVICE) if devices is None else list(devices.free)
            kind = (placement, tuple(listed), tuple(free.items()))
            kind_of[name] = kind
            known = kinds.get(kind)
            if known is None:
                kinds[kind] = _Kind(NodeState(name, listed, dict(free)))
            else:
                known.nodes += 1
        if self._types is None:
            self._types = frozenset(
                value
                for node in backend.nodes()
                for value in (node.labels.get(ACCELERATOR_LABEL), node.labels.get(PRODUCT_LABEL))
                if value
            )

    def _class_of(self, node: Node) -> int:
        """A number shared by the nodes with the same labels and taints (which pods may run)."""
        key = (frozenset(node.labels.items()), node.taints)
        return self._placement_classes.setdefault(key, len(self._placement_classes))

    def _demands(
        self,
        queued: tuple[str, ...],
        arrival_of: Callable[[str], JobArrival],
        version: Hashable,
        unplaced: Iterable[Workload],
    ) -> tuple[list[Demand], int]:
        """The pending pods that matter (and how many pods wait): queued jobs' pods by their
        accelerator type, unplaced workloads' pods by their node selector and tolerations; kept
        from the previous point for the part that did not change."""
        if queued != self._queued[0]:
            self._queued = (queued, *self._queued_demands(queued, arrival_of))
        if version != self._unplaced[0]:
            self._unplaced = (version, *self._unplaced_demands(unplaced))
            self._pending = None
        if self._pending is None or self._pending[0] is not self._queued:
            kinds = {**self._queued[1], **self._unplaced[1]}
            self._pending = (self._queued, _undominated(kinds.values()), self._queued[2] + self._unplaced[2])
        return self._pending[1], self._pending[2]

    @staticmethod
    def _queued_demands(
        queued: Iterable[str], arrival_of: Callable[[str], JobArrival]
    ) -> tuple[dict[Hashable, Demand], int]:
        kinds: dict[Hashable, Demand] = {}
        pods = 0
        for job_id in queued:
            arrival = arrival_of(job_id)
            milli = arrival.gpu_milli if arrival.gpu_milli is not None else arrival.gpus_per_pod * DEVICE
            pods += arrival.pods
            key = ("queued", milli, arrival.cpu_milli, arrival.memory_bytes, arrival.accelerator)
            if key not in kinds:
                others = {"cpu": arrival.cpu_milli, "memory": arrival.memory_bytes * 1000}
                kinds[key] = Demand(milli, others, ("accelerator", arrival.accelerator))
        return kinds, pods

    def _unplaced_demands(self, unplaced: Iterable[Workload]) -> tuple[dict[Hashable, Demand], int]:
        kinds: dict[Hashable, Demand] = {}
        pods = 0
        memo = self._pod_sets
        for workload in unplaced:
            for pod_set in workload.pod_sets:
                pods += pod_set.count
                known = memo.get(id(pod_set))
                if known is None or known[0] is not pod_set:  # a waiting pod set is measured once
                    known = (pod_set, *self._pod_set_demand(pod_set))
                    if len(memo) >= _MEMO_MAX:
                        memo.clear()
                    memo[id(pod_set)] = known
                if known[1] not in kinds:
                    kinds[known[1]] = known[2]
        return kinds, pods

    def _pod_set_demand(self, pod_set: PodSetPlacement) -> tuple[tuple[Any, ...], Demand]:
        """The demand of an admitted pod set's pods (where: its node selector and tolerations)."""
        where = ("selector", frozenset(pod_set.node_selector.items()), frozenset(pod_set.tolerations))
        others = {k: v for k, v in pod_set.resources.items() if k != self.resource}
        demand = Demand(pod_set.resources.get(self.resource, 0), others, where)
        return ("unplaced", pod_set.resources, where), demand

    def _may_run(self, name: str, where: Hashable) -> bool:
        key = (name, where)
        known = self._eligible.get(key)
        if known is None:
            known = self._eligible_now(self.backend.node(name), where)
            if len(self._eligible) >= _MEMO_MAX:
                self._eligible.clear()
            self._eligible[key] = known
        return known

    def _eligible_now(self, node: Node, where: Hashable) -> bool:
        assert isinstance(where, tuple)
        if where[0] == "accelerator":
            wanted = set(where[1].split("|")) if where[1] else set()
            if not wanted & (self._types or frozenset()):
                return True  # no node is labelled with it: its flavors select some other way
            labels = node.labels
            return labels.get(ACCELERATOR_LABEL) in wanted or labels.get(PRODUCT_LABEL) in wanted
        _, selector, tolerations = where
        return node.matches(dict(selector)) and node.untolerated_taint(tolerations) is None


def _undominated(demands: Iterable[Demand]) -> list[Demand]:
    """The demands no other one dominates: one that may run where another may, asking for no more
    GPU and no more of anything else, fits wherever the other fits and can use every device the
    other can, so the other changes nothing in the measure (a long queue has many such pods)."""
    kept: list[Demand] = []
    for demand in sorted(demands, key=lambda d: (d.gpu_milli, sum(d.others.values()))):
        if not any(_dominates(k, demand) for k in kept):
            kept.append(demand)
    return kept


def _dominates(a: Demand, b: Demand) -> bool:
    if a.where != b.where or a.gpu_milli > b.gpu_milli:
        return False
    return all(amount <= b.others.get(name, 0) for name, amount in a.others.items())


def gpu_sharing_figures(outcome: SharingOutcome, requested_gpu_s: float) -> dict[str, Any]:
    """The ``gpu_sharing`` block of report.json (see simulator/OUTPUTS.md).

    ``requested_gpu_s`` is the requested GPU-seconds of the run (``overall.gpu_hours`` x 3600:
    each job's GPUs, a share at its fraction, times the time its pods ran)."""
    series = outcome.series
    shares = [
        u / f for u, f in zip(series.unusable_gpus, series.free_gpus, strict=True) if u is not None and f > 0
    ]
    unusable = [u for u in series.unusable_gpus if u is not None]
    return {
        "resource": outcome.resource,
        "requested_gpu_hours": round(requested_gpu_s / 3600, 3),
        "physical_gpu_hours_busy": round((requested_gpu_s + outcome.extra_device_s) / 3600, 3),
        "busy_rule": "a device holding any pod (a share of any size, or a whole-GPU pod) is busy",
        "fragmentation": {
            "definition": "unusable_gpus / free_gpus: the share of free GPU capacity that no pending "
            "request can use (FGD, Weng et al. ATC '23); sampled on the sample clock, null with "
            "nothing pending",
            "samples": len(series.times),
            "samples_with_pending": len(shares),
            "mean": round(sum(shares) / len(shares), 4) if shares else None,
            "max": round(max(shares), 4) if shares else None,
            "mean_unusable_gpus": round(sum(unusable) / len(unusable), 3) if unusable else None,
        },
        "series": {
            "t_s": [round(t, 3) for t in series.times],
            "free_gpus": [round(v, 3) for v in series.free_gpus],
            "unusable_gpus": [None if v is None else round(v, 3) for v in series.unusable_gpus],
            "fragmentation": [
                None if u is None or not f else round(u / f, 4)
                for u, f in zip(series.unusable_gpus, series.free_gpus, strict=True)
            ],
            "pending_pods": list(series.pending_pods),
            "busy_gpus_physical": [round(v, 3) for v in series.busy_gpus_physical],
            "requested_gpus": [round(v, 3) for v in series.requested_gpus],
        },
    }


def sharing_line(report: dict[str, Any]) -> str | None:
    """The ``simulate`` summary's line on GPU sharing (None: the run placed no share)."""
    block = report.get("gpu_sharing")
    if block is None:
        return None
    fragmentation = block["fragmentation"]
    mean = fragmentation["mean"]
    share = "-" if mean is None else f"{mean:.0%} mean, {fragmentation['max']:.0%} max"
    return (
        f"GPU sharing: {block['physical_gpu_hours_busy']:g} GPU-h of devices busy (any share counts) "
        f"for {block['requested_gpu_hours']:g} GPU-h requested; fragmentation (free GPU capacity no "
        f"pending request can use): {share}"
    )
