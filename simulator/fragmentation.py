"""GPU fragmentation: the share of free GPU capacity that no pending request can use.

The measure follows Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with
Fragmentation Gradient Descent" (USENIX ATC '23), whose *task-level* fragmentation ``F_n(m)`` of a
node ``n`` measured by a task ``m`` is the free GPU capacity of ``n`` that ``m`` cannot use:

* all of the node's free GPU capacity when ``m`` cannot be placed on ``n`` at all (a resource
  short, no device with room for its share, fewer whole free devices than it asks for, or a node
  it may not run on);
* otherwise the free capacity of each device with less free than ``min(request, 1 device)``:
  for a share, the devices too full for it; for whole devices, the partly used ones.

The paper weighs ``F_n(m)`` by how often each task type occurs. A capacity planner asks the
sharper question of the issue: *how much free capacity could nothing that is waiting use?* A
device's free capacity counts as **unusable** when it is a fragment for *every* pending request
(it is usable as soon as one pending request could take it), so with one pending request the two
agree. Capacity is in milli-units of one device (1000 = one GPU). With no pending request the
share is undefined (``None``): there is no demand to measure against.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

DEVICE = 1000  # milli-units of one device


@dataclass(frozen=True, slots=True)
class NodeState:
    """A node as the measure sees it: each device's free milli-units and what else is free."""

    name: str
    devices: Sequence[int]  # free milli-units of each device of the GPU resource
    free: Mapping[str, int]  # every other free resource (cpu, memory, ...), milli-units


@dataclass(frozen=True, slots=True)
class Demand:
    """One kind of pending pod: the milli-units of the GPU resource it asks for (a share below
    1000, or whole devices), the rest of its request, and where it may run (a key that
    ``eligible`` understands). A pod without GPUs can use no GPU capacity: it makes none usable."""

    gpu_milli: int
    others: Mapping[str, int]
    where: Hashable = None

    def fits(self, node: NodeState) -> bool:
        """Whether one such pod could be placed on ``node`` now."""
        free = node.free
        if any(amount > free.get(name, 0) for name, amount in self.others.items()):
            return False
        if self.gpu_milli < DEVICE:
            return any(f >= self.gpu_milli for f in node.devices)
        return sum(1 for f in node.devices if f == DEVICE) >= self.gpu_milli // DEVICE


@dataclass(frozen=True, slots=True)
class Fragmentation:
    """Free GPU capacity and the part of it no pending request can use, in milli-units."""

    free: int
    unusable: int

    @property
    def share(self) -> float | None:
        """``unusable / free`` (None when nothing is free)."""
        return self.unusable / self.free if self.free else None


def node_unusable(
    node: NodeState, demands: Iterable[Demand], eligible: Callable[[str, Hashable], bool]
) -> int:
    """The free milli-units of ``node`` that none of ``demands`` can use (see the module)."""
    devices = node.devices
    usable = [False] * len(devices)
    left = sum(1 for f in devices if f > 0)
    for demand in demands:
        if not left:
            break
        if demand.gpu_milli <= 0 or not eligible(node.name, demand.where) or not demand.fits(node):
            continue
        floor = min(demand.gpu_milli, DEVICE)
        for index, free in enumerate(devices):
            if free >= floor and free > 0 and not usable[index]:
                usable[index] = True
                left -= 1
    return sum(f for f, used in zip(devices, usable, strict=True) if not used)


def fragmentation(
    nodes: Iterable[NodeState], demands: Sequence[Demand], eligible: Callable[[str, Hashable], bool]
) -> Fragmentation:
    """The fleet's free GPU capacity and the part of it that no pending request can use."""
    free = unusable = 0
    for node in nodes:
        node_free = sum(node.devices)
        if node_free:
            free += node_free
            unusable += node_unusable(node, demands, eligible)
    return Fragmentation(free, unusable)
