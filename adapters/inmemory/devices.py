"""GPU sharing in the in-memory cluster: shares of one device packed onto physical devices.

A pod may ask for a *share* of one accelerator (``nvidia.com/gpu: 500m``, 1–999 milli-units), as
time-slicing and HAMi-style GPU sharing let it: the share must fit on one physical device, never
spread over two. Whole-device pods (multiples of 1000 milli-units) take whole free devices. A
request of more than one device that is not a whole number of them (``1500m``) cannot be honoured
by any device plugin and is refused (:func:`device_request`).

Why a separate structure, kept only for nodes with share tenants: a node whose pods all hold whole
devices is described exactly by its free amount (``free // 1000`` devices are free, which ones
does not matter), so the whole-GPU placement path keeps its cost. When the first share lands on a
node, :class:`DeviceShares` starts a list of each device's free milli-units for it: the devices
that whole-device pods hold at that moment are *anonymous* (those pods recorded no device; they are
interchangeable, so releasing one frees any of them). When its last share leaves, the list is
dropped again (every device is then either free or held whole, which the node's free amount says).

Packing rule (documented for users in ``simulator/workload/TRACES.md``): the node is chosen as for
whole devices (the tightest node by free amount of the resource that the pod fits, best-fit); on
it, a share goes to the device with the *least* free capacity that still fits it (best-fit, ties:
the lowest device index), as GPU-sharing schedulers' binpack policies and the packing baselines of
the FGD paper (Weng et al., ATC '23) do; whole-device pods take the lowest-indexed free devices.

The structure also integrates, over the backend's clock, what sharing adds to physical use: a
device holding shares counts as busy however little of it is asked for, so the physical devices
busy exceed the requested amount by ``devices holding shares - milli-units of shares / 1000``
(:meth:`DeviceShares.extra_device_seconds`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from budcore.domain.errors import ValidationError
from budcore.domain.resources import DEVICE_MILLI, device_request, is_accelerator

#: Milli-units of one physical device.
DEVICE = DEVICE_MILLI

__all__ = ["DEVICE", "DeviceShares", "NodeDevices", "accelerator_requests", "device_request"]

_Key = tuple[str, str]  # (node, accelerator resource)


def accelerator_requests(request: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    """The accelerator resources of a pod's request, as ``(resource, milli-units)``."""
    return tuple((name, amount) for name, amount in request.items() if is_accelerator(name))


@dataclass(slots=True)
class NodeDevices:
    """The devices of one accelerator resource on one node while it has share tenants."""

    free: list[int]  # free milli-units of each device
    anonymous: list[int]  # devices held whole by pods placed before this list began
    shares: int = 0  # share pods on the node

    @classmethod
    def start(cls, allocatable: int, free: int) -> NodeDevices:
        """The devices of a node without shares: ``free // 1000`` free, the rest held whole."""
        devices = allocatable // DEVICE
        whole_free = min(devices, free // DEVICE)
        return cls([DEVICE] * whole_free + [0] * (devices - whole_free), list(range(whole_free, devices)))

    def fits(self, milli: int) -> bool:
        if milli < DEVICE:
            return any(f >= milli for f in self.free)
        return self.free.count(DEVICE) >= milli // DEVICE

    def best_fit(self, milli: int) -> int:
        """The device a share of ``milli`` goes to: the least free that fits, lowest index first."""
        best = -1
        for index, free in enumerate(self.free):
            if free >= milli and (best < 0 or free < self.free[best]):
                best = index
        if best < 0:
            raise ValidationError(f"no device has {milli} milli-units free", path="devices")
        return best

    def whole(self, count: int) -> tuple[int, ...]:
        """The lowest-indexed ``count`` free devices."""
        chosen = tuple(i for i, free in enumerate(self.free) if free == DEVICE)[:count]
        if len(chosen) < count:
            raise ValidationError(f"fewer than {count} free devices", path="devices")
        return chosen


@dataclass(slots=True)
class _Held:
    """Devices one pod holds on a node (for its release)."""

    key: _Key
    devices: NodeDevices  # the list they were recorded in (a dropped list is stale)
    slots: tuple[int, ...]
    milli: int


@dataclass(slots=True)
class DeviceShares:
    """Per-device free capacity of the nodes with share tenants, and the bookkeeping to release.

    ``now`` gives the backend's time in seconds (for the physical-use integral); without it the
    integral stays 0.
    """

    now: Callable[[], float] | None = None
    nodes: dict[_Key, NodeDevices] = field(default_factory=dict)
    # job -> (pod index, resource) -> the devices that pod holds
    held: dict[str, dict[tuple[int, str], _Held]] = field(default_factory=dict)
    share_milli: int = 0  # milli-units of every share placed now
    shared_devices: int = 0  # devices holding at least one share now
    shares_seen: bool = False  # a share was ever placed (the run shares GPUs)
    _extra_s: float = 0.0  # integral of (shared_devices - share_milli / 1000)
    _last_s: float | None = None

    def fits(self, node: str, resource: str, milli: int) -> bool:
        """Whether a pod asking ``milli`` of ``resource`` fits the devices of ``node``. A node
        without shares is decided by its free amount alone (the caller checks that)."""
        devices = self.nodes.get((node, resource))
        return devices is None or devices.fits(milli)

    def take(
        self, job_id: str, pod: int, node: str, resource: str, milli: int, allocatable: int, free: int
    ) -> None:
        """Pod ``pod`` of ``job_id`` takes ``milli`` of ``resource`` on ``node`` (whose
        ``allocatable`` and current ``free`` amounts are given, for a list that begins now)."""
        key = (node, resource)
        devices = self.nodes.get(key)
        if milli >= DEVICE:
            if devices is None:
                return  # whole devices on a node without shares: its free amount says it all
            slots = devices.whole(milli // DEVICE)
            for slot in slots:
                devices.free[slot] = 0
        else:
            self._mark()
            if devices is None:
                devices = self.nodes[key] = NodeDevices.start(allocatable, free)
            slot = devices.best_fit(milli)
            if devices.free[slot] == DEVICE:
                self.shared_devices += 1
            devices.free[slot] -= milli
            devices.shares += 1
            self.share_milli += milli
            self.shares_seen = True
            slots = (slot,)
        self.held.setdefault(job_id, {})[pod, resource] = _Held(key, devices, slots, milli)

    def release(self, job_id: str, allocations: Iterable[tuple[str, Mapping[str, int]]]) -> None:
        """The pods of ``job_id`` (``(node, amounts)`` in placement order) give their devices back."""
        held = self.held.pop(job_id, None)
        if not self.nodes:
            return  # no node has shares: only whole devices, which free amounts describe
        for pod, (node, amounts) in enumerate(allocations):
            for resource, milli in amounts.items():
                key = (node, resource)
                devices = self.nodes.get(key)
                if devices is None:
                    continue
                record = held.get((pod, resource)) if held else None
                if record is not None and record.devices is devices:
                    self._give_back(key, devices, record)
                else:  # whole devices taken before this node's list began
                    for _ in range(milli // DEVICE):
                        devices.free[devices.anonymous.pop()] = DEVICE

    def _give_back(self, key: _Key, devices: NodeDevices, record: _Held) -> None:
        if record.milli >= DEVICE:
            for slot in record.slots:
                devices.free[slot] = DEVICE
            return
        self._mark()
        slot = record.slots[0]
        devices.free[slot] += record.milli
        if devices.free[slot] == DEVICE:
            self.shared_devices -= 1
        devices.shares -= 1
        self.share_milli -= record.milli
        if not devices.shares:
            del self.nodes[key]  # every device is free or held whole again

    def device_free(self, node: str, resource: str, allocatable: int, free: int) -> list[int]:
        """The free milli-units of each device of ``node`` (derived from ``free`` for a node
        without shares)."""
        devices = self.nodes.get((node, resource))
        if devices is not None:
            return list(devices.free)
        return NodeDevices.start(allocatable, free).free

    def _mark(self) -> None:
        if self.now is None:
            return
        now = self.now()
        if self._last_s is not None and now > self._last_s:
            self._extra_s += (self.shared_devices - self.share_milli / DEVICE) * (now - self._last_s)
        self._last_s = now

    def extra_device_seconds(self) -> float:
        """Device-seconds that devices holding shares were busy beyond the shares' own amount,
        up to now: physical busy device-seconds = requested device-seconds + this."""
        self._mark()
        return self._extra_s
