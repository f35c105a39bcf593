"""Kubernetes node labels → nodes with typed accelerator devices.

A fleet's nodes already say what they carry, in several dialects:

* NVIDIA GPU Feature Discovery: ``nvidia.com/gpu.product`` (``NVIDIA-H100-80GB-HBM3``,
  ``A100-SXM4-80GB``, ``Tesla-T4``), ``gpu.count``, ``gpu.memory`` (MiB), ``gpu.family``,
  ``gpu.compute.major/minor``; MIG ``single`` (product suffix ``-MIG-1g.10gb``, count = slices) and
  ``mixed`` (``nvidia.com/mig-3g.40gb.count``); time-slicing/MPS (``-SHARED`` suffix,
  ``gpu.replicas``, ``gpu.sharing-strategy``).
* AMD's node labeller: ``amd.com/gpu.product-name``, ``amd.com/gpu.device-id``, ``amd.com/gpu.vram``
  (whole GiB with a ``G`` suffix: ``192G``) and the legacy ``beta.amd.com/gpu.device-id.<id>=<count>``
  form.
* Intel Gaudi: the device plugin's ``habana.ai/gaudi`` resource. Gaudi nodes without a catalogued
  PCI device id are one type of their own ("Intel Gaudi (generation unknown)"), never "GPU - type
  unknown" among the NVIDIA nodes, so they get a hardware profile and a flavor of their own.
* Intel: ``gpu.intel.com/product``, ``gpu.intel.com/device.count``, ``gpu.intel.com/device-id.*``.
* Node Feature Discovery PCI labels: ``feature.node.kubernetes.io/pci-<fields>.present`` with the
  vendor id among the fields (``10de`` NVIDIA, ``1002`` AMD, ``1da3`` Habana/Intel Gaudi — Gaudi's
  PCI vendor is 1da3, not Intel's 8086).

Detection never fails a fleet because one node is odd: a GPU node without a product label becomes
"GPU - type unknown", a missing memory label keeps the type with memory unknown and a warning,
devices of several types on one node make it "Mixed (4x A100, 4x V100)" (excluded from automatic
grouping), and an administrator can assign a type with an override (parameter or the
``budcore.io/accelerator`` label). A count label that disagrees with what the node advertises is a
warning and the advertised number wins (see :func:`_reconcile_counts`). What the node *advertises*
is held to sane bounds, though: an allocatable of ``1e308`` GPUs is not an odd node but a broken
dump, and an error naming the node and the field.

Long because each vendor's dialect is a table of label names with its short parsing rule, and the
dialects read best side by side (the NFD fallback and the overrides refer to all of them).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from budcore.config.yamlsource import ScalarError, safe_load_all
from budcore.domain.cluster import Node, Taint
from budcore.domain.errors import ValidationError
from budcore.domain.quantity import QuantityRangeError
from budcore.domain.resources import AMD_GPU, GAUDI, INTEL_GPU, NVIDIA_GPU, ResourceVector
from budcore.hardware.catalog import Accelerator, Catalog, default_catalog, memory_matches, normalize_product

_FROZEN = ConfigDict(frozen=True, extra="forbid")

GFD_PRODUCT = "nvidia.com/gpu.product"
GFD_COUNT = "nvidia.com/gpu.count"
GFD_MEMORY = "nvidia.com/gpu.memory"
GFD_REPLICAS = "nvidia.com/gpu.replicas"
GFD_FAMILY = "nvidia.com/gpu.family"
GFD_CC_MAJOR = "nvidia.com/gpu.compute.major"
GFD_CC_MINOR = "nvidia.com/gpu.compute.minor"
GFD_SHARING = "nvidia.com/gpu.sharing-strategy"
GFD_MIG_STRATEGY = "nvidia.com/mig.strategy"
AMD_PRODUCT = "amd.com/gpu.product-name"
AMD_DEVICE_ID = "amd.com/gpu.device-id"
AMD_VRAM = "amd.com/gpu.vram"
AMD_COUNT = "amd.com/gpu.count"
INTEL_PRODUCT = "gpu.intel.com/product"
INTEL_COUNT = "gpu.intel.com/device.count"
INTEL_MEMORY = "gpu.intel.com/memory.max"
# GKE labels its GPU nodes itself (no GPU feature discovery by default): the accelerator type, and
# how GPUs are shared (time-sharing / MPS with a client count, or MIG partitions of one size).
GKE_ACCELERATOR = "cloud.google.com/gke-accelerator"
GKE_SHARING = "cloud.google.com/gke-gpu-sharing-strategy"
GKE_MAX_CLIENTS = "cloud.google.com/gke-max-shared-clients-per-gpu"
GKE_PARTITION = "cloud.google.com/gke-gpu-partition-size"
# GKE accelerator names whose catalog model the name alone does not say (the others are catalog
# slugs or resolve as product strings): cloud.google.com/compute/docs/gpus (A2 Standard is the
# A100 40GB SXM4, N1's V100 the SXM2 16GB, A3 Mega the H100 80GB SXM).
GKE_MODELS = {
    "nvidia-tesla-a100": "nvidia-a100-40gb",
    "nvidia-tesla-v100": "nvidia-v100-16gb",
    "nvidia-h100-mega-80gb": "nvidia-h100-80gb",
}
OVERRIDE_LABEL = "budcore.io/accelerator"
DEVICES_LABEL = "budcore.io/accelerators"
# The label budcore's generated ResourceFlavors select on (set by an admin or a node-labelling
# controller from the detected type); profiles fall back to vendor labels when it is absent.
ACCELERATOR_LABEL = OVERRIDE_LABEL
# What the generic ``gpu-any`` flavor selects on when no vendor label marks every accelerator node
# and no CPU-only node (a ResourceFlavor's nodeLabels can only require values, not "any GPU").
ACCELERATOR_NODE_LABEL = "budcore.io/accelerator-node"

UNKNOWN_TYPE = "GPU - type unknown"
CPU_ONLY = "CPU only"
# A Gaudi device the catalog cannot place in a generation: still a type of its own (the resource
# habana.ai/gaudi is only ever Gaudi), so its nodes group together and away from the GPUs.
GAUDI_UNKNOWN = "Intel-Gaudi"

# The most a node may advertise (allocatable or capacity). Far above real hardware (8-16 devices,
# a few hundred with time-slicing replicas or MIG slices; a few thousand cores; tens of TiB), low
# enough that ``1e308`` or 2**63 (a dump written by a broken tool) is refused instead of scheduling
# every job of a simulation onto one node.
MAX_DEVICES_PER_NODE = 4096
MAX_CPU_PER_NODE = 100_000
MAX_AMOUNT_PER_NODE = 2**60  # bytes of memory or storage, or units of any other resource
# GPU memory per device beyond this is a misread unit, not a GPU (the largest today: 288 GB).
_MAX_DEVICE_GIB = 4096
_MIN_DEVICE_GIB = 0.5

_NFD_PCI = re.compile(r"^feature\.node\.kubernetes\.io/pci-(?P<fields>[0-9a-fA-F_]+)\.present$")
_MIG_MIXED = re.compile(r"^nvidia\.com/mig-(?P<profile>\d+g\.\d+gb)\.count$")
_MIG_IN_PRODUCT = re.compile(r"-MIG-(?P<profile>\d+g\.\d+gb)", re.IGNORECASE)
_AMD_LEGACY_DEVICE = re.compile(r"^beta\.amd\.com/gpu\.device-id\.(?P<id>[0-9a-fA-F]{4})$")
# ``<size>G=<count>`` per size: the beta form always, the current one when a node has several sizes.
_AMD_LEGACY_VRAM = re.compile(r"^(?:beta\.)?amd\.com/gpu\.vram\.(?P<size>\d+)G$")
_BARE_NUMBER = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")
_INTEL_DEVICE = re.compile(
    r"^gpu\.intel\.com/device-id\.(?P<cls>[0-9a-fA-F]{4})-(?P<id>[0-9a-fA-F]{4})\.count$"
)
_HEX4 = re.compile(r"^[0-9a-fA-F]{4}$")

# PCI vendors that may mean "accelerator present"; Intel (8086) only counts with a catalogued
# device id, because every Intel NIC and chipset carries 8086 too.
_PCI_VENDORS = {"10de": "nvidia", "1002": "amd", "1da3": "intel", "8086": "intel"}
_VENDOR_RESOURCE = {"nvidia": NVIDIA_GPU, "amd": AMD_GPU, "intel": INTEL_GPU}
_RESOURCE_VENDOR = {
    NVIDIA_GPU: "nvidia",
    AMD_GPU: "amd",
    GAUDI: "intel",
    INTEL_GPU: "intel",
    "gpu.intel.com/xe": "intel",
}

# Marketed memory sizes to round reported sizes to when the catalog does not know the part.
_MARKETED_GIB = (
    4,
    6,
    8,
    10,
    11,
    12,
    16,
    20,
    24,
    32,
    40,
    48,
    64,
    80,
    94,
    96,
    128,
    141,
    144,
    180,
    192,
    256,
    288,
)


class SharingMode(StrEnum):
    """How one physical accelerator is presented to pods."""

    EXCLUSIVE = "exclusive"
    TIME_SLICING = "time-slicing"
    MPS = "mps"
    MIG = "mig"


class DeviceGroup(BaseModel):
    """Identical devices on one node.

    ``count`` is physical devices, or MIG slices when ``mig_profile`` is set (a slice never counts
    as a whole GPU); ``replicas`` is how many pods share each (time-slicing/MPS), so Kubernetes'
    allocatable is ``count * replicas``. ``memory_gib`` is per device or per slice, ``None`` when
    the node did not say.
    """

    model_config = _FROZEN

    vendor: str | None = None
    accelerator: str | None = None  # catalog slug; None when the type is unknown to the catalog
    product: str | None = None  # the raw product string from the labels
    display_name: str
    short_name: str
    count: int = Field(ge=0)
    memory_gib: float | None = None
    mig_profile: str | None = None
    resource_name: str
    replicas: int = Field(default=1, ge=1)
    sharing: SharingMode = SharingMode.EXCLUSIVE
    source: str
    architecture: str | None = None  # catalog architecture, else GFD's gpu.family
    compute_capability: str | None = None  # GFD's gpu.compute.major/minor, e.g. "9.0"

    @property
    def whole(self) -> bool:
        return self.mig_profile is None

    @property
    def allocatable(self) -> int:
        return self.count * self.replicas

    @property
    def accelerator_key(self) -> str | None:
        """The device model, ignoring MIG partitioning: the slug, else the normalised product."""
        if self.accelerator:
            return self.accelerator
        if self.product:
            return "product:" + normalize_product(self.product)
        return None


class ParsedNode(BaseModel):
    """A node with its detected accelerators, host resources and what detection had to say."""

    model_config = _FROZEN

    name: str = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)
    allocatable: ResourceVector = Field(default_factory=ResourceVector)
    host_memory_bytes: int | None = None
    schedulable: bool = True  # not cordoned (spec.unschedulable)
    # status.conditions Ready is True (or the dump has no conditions). Kubernetes taints a node that
    # is not ready so that no new pod lands there, so such a node receives none here either.
    ready: bool = True
    devices: tuple[DeviceGroup, ...] = ()
    warnings: tuple[str, ...] = ()
    taints: tuple[Taint, ...] = ()  # spec.taints: pods that do not tolerate them stay off the node

    @property
    def has_accelerators(self) -> bool:
        return bool(self.devices)

    @property
    def mixed(self) -> bool:
        """Devices of more than one model (MIG slices of one model are not "mixed")."""
        return len({d.accelerator_key for d in self.devices}) > 1

    @property
    def type_known(self) -> bool:
        return bool(self.devices) and all(d.accelerator_key is not None for d in self.devices)

    @property
    def shared(self) -> bool:
        return any(d.sharing in (SharingMode.TIME_SLICING, SharingMode.MPS) for d in self.devices)

    @property
    def mig_profiles(self) -> tuple[str, ...]:
        return tuple(sorted({d.mig_profile for d in self.devices if d.mig_profile}))

    @property
    def type_key(self) -> str | None:
        """What nodes grouped together must share: one known model and the same MIG layout.
        ``None`` for CPU-only, unknown-type and mixed nodes (never grouped automatically)."""
        keys = {d.accelerator_key for d in self.devices}
        if len(keys) != 1 or None in keys:
            return None
        key = next(iter(keys))
        assert key is not None
        layout = sorted({d.mig_profile or "full" for d in self.devices})
        return key if layout == ["full"] else f"{key}/mig:{'+'.join(layout)}"

    @property
    def accelerator_count(self) -> int:
        return sum(d.count for d in self.devices)

    @property
    def gpu_type(self) -> str:
        """What a person reads in a node view: ``NVIDIA A100 80GB``, ``Mixed (4x A100, 4x V100)``."""
        if not self.devices:
            return CPU_ONLY
        if self.mixed:
            parts = [f"{d.count}x {d.short_name}" if d.count else d.short_name for d in self.devices]
            return f"Mixed ({', '.join(parts)})"
        device = self.devices[0]
        if device.accelerator_key is None:
            return UNKNOWN_TYPE
        base = device.display_name
        slices = [d for d in self.devices if d.mig_profile]
        if not slices:
            return base
        if len(self.devices) == 1:
            return f"{base} MIG {device.mig_profile}"
        layout = ", ".join(f"{d.count}x {d.mig_profile or 'full'}" for d in self.devices)
        return f"{base} (MIG mixed: {layout})"

    def to_node(self) -> Node:
        """The domain node the cluster backends schedule onto."""
        return Node(
            name=self.name,
            labels=dict(self.labels),
            allocatable=self.allocatable,
            schedulable=self.schedulable and self.ready,
            taints=self.taints,
        )

    @property
    def status(self) -> str:
        """``Ready``, ``NotReady`` or ``Cordoned`` (as ``kubectl get nodes`` would put it)."""
        if not self.ready:
            return "NotReady" if self.schedulable else "NotReady,SchedulingDisabled"
        return "Ready" if self.schedulable else "Cordoned"


class Fleet(BaseModel):
    """Every parsed node plus fleet-level warnings."""

    model_config = _FROZEN

    nodes: tuple[ParsedNode, ...] = ()

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(f"{n.name}: {w}" for n in self.nodes for w in n.warnings)

    def domain_nodes(self) -> list[Node]:
        return [n.to_node() for n in self.nodes]

    def node(self, name: str) -> ParsedNode | None:
        for n in self.nodes:
            if n.name == name:
                return n
        return None


# --------------------------------------------------------------------------------------------------
# Input handling


def _ready(conditions: Any) -> bool:
    """Whether the node's ``Ready`` condition is ``True``; a dump without conditions counts as ready."""
    if not isinstance(conditions, list):
        return True
    for condition in conditions:
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            return str(condition.get("status")) == "True"
    return True


def load_nodes_yaml(text: str, source: str = "<nodes>") -> list[Mapping[str, Any]]:
    """Node dicts from ``kubectl get nodes -o yaml`` output (a ``List``/``NodeList`` or one Node),
    from several such documents separated by ``---``, or from a bare YAML list of nodes."""
    try:
        documents = [d for d in safe_load_all(text) if d is not None]
    except ScalarError as exc:  # a number too large to be one, a 13th month: its field and line
        raise ValidationError(
            str(exc.problem), path=exc.path, source=source, line=exc.node.start_mark.line + 1
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValidationError(
            f"invalid YAML: {problem}", source=source, line=mark.line + 1 if mark is not None else None
        ) from None
    # One document per node (``kubectl get node a -o yaml; echo ---; ...``) or one List of them.
    nodes: list[Mapping[str, Any]] = []
    for index, data in enumerate(documents):
        try:
            nodes.extend(node_dicts(data))
        except ValidationError as exc:
            where = f"document {index + 1}: " if len(documents) > 1 else ""
            raise ValidationError(where + exc.message, path=exc.path, source=source) from None
    return nodes


def node_dicts(data: Any) -> list[Mapping[str, Any]]:
    """Normalise the accepted input shapes to a list of node mappings."""
    if isinstance(data, Mapping):
        if "items" in data:
            items = data["items"]
            if not isinstance(items, list):
                raise ValidationError("expected a list of nodes", path="items")
            data = items
        elif data.get("kind") == "Node" or "metadata" in data:
            data = [data]
        else:
            raise ValidationError(
                "expected a Node, a List of nodes (kind: List, items: [...]) or a list of nodes"
            )
    if not isinstance(data, list):
        raise ValidationError(f"expected a list of nodes, got {type(data).__name__}")
    for i, item in enumerate(data):
        if not isinstance(item, Mapping):
            raise ValidationError(f"expected a node mapping, got {type(item).__name__}", path=f"items[{i}]")
    return data


# --------------------------------------------------------------------------------------------------
# Small parsers


def _int_label(
    labels: Mapping[str, str], key: str, warnings: list[str], limit: int = MAX_DEVICES_PER_NODE
) -> int | None:
    """A whole-number label (a count, unless ``limit`` says otherwise); odd values are warnings."""
    raw = labels.get(key)
    if raw is None:
        return None
    try:
        value = int(str(raw).strip())
    except ValueError:
        warnings.append(f"label {key}={raw!r} is not a whole number; ignored")
        return None
    if value < 0:
        warnings.append(f"label {key}={raw!r} is negative; ignored")
        return None
    if value > limit:
        warnings.append(f"label {key}={raw!r} is above {limit}, beyond any real node; ignored")
        return None
    return value


def _gib_from_mib(mib: int) -> float:
    return mib / 1024


def _marketed(gib: float, accel: Accelerator | None) -> float:
    """Round a reported size to the marketed one (the catalog's if it matches, else a common size)."""
    if accel is not None and memory_matches(accel.device_memory_gib, gib):
        return accel.device_memory_gib
    sizes = [size for size in _MARKETED_GIB if memory_matches(size, gib)]
    if sizes:  # the nearest: 192 GiB is within 8% of 180 too
        return float(min(sizes, key=lambda size: abs(size - gib)))
    return round(gib, 1)


def _plausible(gib: float | None, what: str, warnings: list[str]) -> float | None:
    """``gib`` if it can be one device's memory; else ``None`` and a warning (a misread unit)."""
    if gib is None or _MIN_DEVICE_GIB <= gib <= _MAX_DEVICE_GIB:
        return gib
    warnings.append(f"{what} is {gib:.3g} GiB per device, not a GPU memory size; memory unknown")
    return None


def _amd_vram_gib(raw: str, reference: Accelerator | None, warnings: list[str]) -> float | None:
    """``amd.com/gpu.vram`` in GiB.

    AMD's node labeller writes the size in whole GiB with a ``G`` suffix (``192G``: the KFD memory
    bank's ``size_in_bytes`` / 2**20 / 1024, rounded; ROCm/k8s-device-plugin,
    cmd/k8s-node-labeller). A bare number (a hand-written label, another tool) has no unit: it is
    read in the unit, GiB, MiB or bytes, that gives the catalog's size for the model, else by
    magnitude, with a warning either way. Reading ``192`` as bytes made an MI300X a 0.0 GB GPU.
    """
    if not _BARE_NUMBER.match(raw):
        gib = _size_gib(raw)
        if gib is None:
            warnings.append(f"label {AMD_VRAM}={raw!r} is not a size; memory unknown")
        return _plausible(gib, f"label {AMD_VRAM}={raw!r}", warnings)
    number = float(raw)
    readings = {"GiB": number, "MiB": number / 1024, "bytes": number / 2**30}
    unit = next(
        (
            u
            for u, gib in readings.items()
            if reference is not None and memory_matches(reference.device_memory_gib, gib)
        ),
        None,
    )
    if unit is None:
        unit = "GiB" if number <= 1024 else "MiB" if number < 2**30 else "bytes"
    warnings.append(
        f"label {AMD_VRAM}={raw!r} has no unit (AMD's labeller writes e.g. '192G'); read as {unit}"
    )
    return _plausible(readings[unit], f"label {AMD_VRAM}={raw!r}", warnings)


def _size_gib(raw: str) -> float | None:
    """``192G``, ``64Gi``, ``196608M`` style sizes (AMD/Intel labels) in GiB; plain numbers are bytes."""
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?)?B?\s*$", raw, re.IGNORECASE)
    if match is None:
        return None
    number = float(match.group(1))
    unit = (match.group(2) or "").upper().rstrip("I")
    scale = {"": 1 / 2**30, "K": 1 / 2**20, "M": 1 / 2**10, "G": 1.0, "T": 1024.0}[unit]
    return number * scale


def _describe(accel: Accelerator | None, product: str | None, vendor: str | None) -> tuple[str, str]:
    """(display name, short name) for a device group."""
    if accel is not None:
        return accel.display_name, accel.short_name
    if product == GAUDI_UNKNOWN:
        return "Intel Gaudi (generation unknown)", "Gaudi"
    if product:
        pretty = re.sub(r"[_]+", " ", product).replace("-", " ")
        return pretty, pretty
    return UNKNOWN_TYPE, (vendor.upper() if vendor else "GPU")


def _group(
    *,
    accel: Accelerator | None,
    product: str | None,
    vendor: str | None,
    count: int,
    memory_gib: float | None,
    resource_name: str,
    source: str,
    mig_profile: str | None = None,
    replicas: int = 1,
    sharing: SharingMode = SharingMode.EXCLUSIVE,
    architecture: str | None = None,
    compute_capability: str | None = None,
) -> DeviceGroup:
    display, short = _describe(accel, product, vendor)
    if mig_profile:
        short = f"{short} MIG {mig_profile}"
    return DeviceGroup(
        vendor=accel.vendor if accel else vendor,
        accelerator=accel.slug if accel else None,
        product=product,
        display_name=display,
        short_name=short,
        count=count,
        memory_gib=memory_gib,
        mig_profile=mig_profile,
        resource_name=resource_name,
        replicas=replicas,
        sharing=sharing,
        source=source,
        architecture=accel.architecture if accel else architecture,
        compute_capability=compute_capability,
    )


# --------------------------------------------------------------------------------------------------
# Detectors: each returns device groups (possibly empty) and appends warnings


# A Kubernetes label value: at most 63 characters, alphanumerics with '-', '_' or '.' inside
# (k8s.io/apimachinery validation.IsValidLabelValue). "slug=count,slug=count" is not one.
_LABEL_VALUE = re.compile(r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")


def _annotations(metadata: Mapping[str, Any], path: str) -> dict[str, str]:
    raw = metadata.get("annotations") or {}
    if not isinstance(raw, Mapping):
        raise ValidationError(
            "expected a mapping of annotation to value", path=f"{path}.metadata.annotations"
        )
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}


def _declaration(
    override: str | None, annotations: Mapping[str, str], labels: Mapping[str, str], warnings: list[str]
) -> tuple[str, str]:
    """The node's declared accelerators and where they were declared ("" when nothing is).

    An administrator's override wins, then the ``budcore.io/accelerators`` annotation, then the
    ``budcore.io/accelerators`` and ``budcore.io/accelerator`` labels. A node with several device
    types is declared as ``slug=count,slug=count``, which Kubernetes refuses as a label value
    ('=' and ',' are not allowed), so that form belongs in the annotation; a node dump may still
    carry it as a label (it was written by hand), which is read with a warning saying so.
    """
    if override:
        return override, "override"
    if annotations.get(DEVICES_LABEL):
        return annotations[DEVICES_LABEL], f"annotation {DEVICES_LABEL}"
    for key in (DEVICES_LABEL, OVERRIDE_LABEL):
        value = labels.get(key)
        if value:
            if not _LABEL_VALUE.fullmatch(value):
                warnings.append(
                    f"label {key}={value!r} is not a valid Kubernetes label value (at most 63 letters, "
                    f"digits, '-', '_' or '.'), so a cluster would refuse it: declare several device "
                    f"types in the node annotation {DEVICES_LABEL} instead"
                )
            return value, f"label {key}"
    return "", ""


def _parse_declared(
    spec: str, catalog: Catalog, where: str, warnings: list[str], counts: Mapping[str, int]
) -> list[DeviceGroup]:
    """An admin declaration: ``slug`` or ``slug=count,slug=count`` (per-device types on one node)."""
    groups: list[DeviceGroup] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, count_text = part.partition("=")
        name = name.strip()
        accel = catalog.get(name) or catalog.resolve(name)
        gaudi = accel is None and normalize_product(name) == normalize_product(GAUDI_UNKNOWN)
        if accel is None and not gaudi:
            warnings.append(f"{where} names {name!r}, which the accelerator catalog does not know")
        count: int | None = None
        if count_text.strip():
            try:
                count = int(count_text)
            except ValueError:
                warnings.append(f"{where}: count {count_text!r} for {name!r} is not a whole number")
            else:
                if count < 0:
                    warnings.append(f"{where}: count {count} for {name!r} is negative")
                    count = None
        resource = accel.resource_name if accel else GAUDI if gaudi else NVIDIA_GPU
        if count is None:
            count = counts.get(resource, 0)
        groups.append(
            _group(
                accel=accel,
                product=GAUDI_UNKNOWN if gaudi else None if accel else name,
                vendor=accel.vendor if accel else "intel" if gaudi else None,
                count=count,
                memory_gib=accel.device_memory_gib if accel else None,
                resource_name=resource,
                source="override",
            )
        )
    return groups


def _detect_nvidia(
    labels: Mapping[str, str], catalog: Catalog, counts: Mapping[str, int], warnings: list[str]
) -> list[DeviceGroup]:
    product = labels.get(GFD_PRODUCT)
    mixed_profiles = {m.group("profile"): key for key in labels if (m := _MIG_MIXED.match(key))}
    if product is None and not mixed_profiles:
        gke = labels.get(GKE_ACCELERATOR, "").strip()
        return _detect_gke(gke, labels, catalog, counts, warnings) if gke.startswith("nvidia-") else []
    groups: list[DeviceGroup] = []
    replicas = _int_label(labels, GFD_REPLICAS, warnings) or 1
    strategy = labels.get(GFD_SHARING, "").strip().lower()
    shared_suffix = bool(product) and str(product).strip().upper().endswith("-SHARED")
    sharing = SharingMode.EXCLUSIVE
    if strategy == "mps":
        sharing = SharingMode.MPS
    elif strategy == "time-slicing" or replicas > 1 or shared_suffix:
        sharing = SharingMode.TIME_SLICING
    if sharing is not SharingMode.EXCLUSIVE and replicas == 1 and shared_suffix:
        warnings.append(
            "product is marked -SHARED but nvidia.com/gpu.replicas is missing; assuming 1 replica"
        )

    count = _int_label(labels, GFD_COUNT, warnings)
    memory_mib = _int_label(labels, GFD_MEMORY, warnings, limit=_MAX_DEVICE_GIB * 1024)
    family = labels.get(GFD_FAMILY, "").strip().lower() or None
    major, minor = labels.get(GFD_CC_MAJOR), labels.get(GFD_CC_MINOR)
    capability = f"{major}.{minor or 0}" if major else None
    base_product = re.sub(r"(-SHARED)+$", "", product.strip(), flags=re.IGNORECASE) if product else None
    single_mig = _MIG_IN_PRODUCT.search(base_product) if base_product else None
    if base_product and single_mig:
        base_product = base_product[: single_mig.start()]
    memory_gib = (
        _plausible(_gib_from_mib(memory_mib), f"label {GFD_MEMORY}={memory_mib}", warnings)
        if memory_mib is not None and not single_mig
        else None
    )
    accel = catalog.resolve(base_product, memory_gib) if base_product else None
    if base_product and accel is None:
        warnings.append(
            f"GPU product {base_product!r} is not in the accelerator catalog; type kept as reported"
        )

    if single_mig:
        profile = single_mig.group("profile").lower()
        mig = accel.mig_profile(profile) if accel else None
        if accel is not None and mig is None:
            warnings.append(f"MIG profile {profile!r} is not listed for {accel.display_name}")
        slices = count if count is not None else counts.get(NVIDIA_GPU, 0) // max(replicas, 1)
        groups.append(
            _group(
                accel=accel,
                product=base_product,
                vendor="nvidia",
                count=slices,
                memory_gib=mig.memory_gib if mig else float(profile.split(".")[1][:-2]),
                resource_name=NVIDIA_GPU,
                source="gfd",
                architecture=family,
                compute_capability=capability,
                mig_profile=profile,
                replicas=replicas,
                sharing=SharingMode.MIG,
            )
        )
        return groups

    for profile, key in sorted(mixed_profiles.items()):
        slices = _int_label(labels, key, warnings) or 0
        mig = accel.mig_profile(profile) if accel else None
        slice_replicas = _int_label(labels, f"nvidia.com/mig-{profile}.replicas", warnings) or 1
        groups.append(
            _group(
                accel=accel,
                product=base_product,
                vendor="nvidia",
                count=slices,
                memory_gib=mig.memory_gib if mig else float(profile.split(".")[1][:-2]),
                resource_name=f"nvidia.com/mig-{profile}",
                source="gfd",
                architecture=family,
                compute_capability=capability,
                mig_profile=profile,
                replicas=slice_replicas,
                sharing=SharingMode.MIG,
            )
        )

    if mixed_profiles:
        # Mixed strategy: GPUs left whole are still advertised as nvidia.com/gpu.
        whole = counts.get(NVIDIA_GPU, 0) // max(replicas, 1)
    else:
        whole = count if count is not None else counts.get(NVIDIA_GPU, 0) // max(replicas, 1)
        if count is None:
            warnings.append(f"{GFD_COUNT} missing; GPU count taken from allocatable {NVIDIA_GPU}")
    if whole or not mixed_profiles:
        memory: float | None = None
        if memory_gib is not None:
            memory = _marketed(memory_gib, accel)
        elif accel is not None:
            warnings.append(f"{GFD_MEMORY} missing; memory unknown for {accel.display_name}")
        else:
            warnings.append(f"{GFD_MEMORY} missing; GPU memory unknown")
        groups.append(
            _group(
                accel=accel,
                product=base_product,
                vendor="nvidia",
                count=whole,
                memory_gib=memory,
                resource_name=NVIDIA_GPU,
                source="gfd",
                architecture=family,
                compute_capability=capability,
                replicas=replicas,
                sharing=sharing,
            )
        )
    return groups


def _detect_gke(
    accelerator: str,
    labels: Mapping[str, str],
    catalog: Catalog,
    counts: Mapping[str, int],
    warnings: list[str],
) -> list[DeviceGroup]:
    """A GKE GPU node: ``cloud.google.com/gke-accelerator: nvidia-tesla-a100`` names the SKU (so the
    catalog gives its memory), allocatable ``nvidia.com/gpu`` counts the devices pods can ask for."""
    accel = catalog.get(GKE_MODELS.get(accelerator, accelerator)) or catalog.resolve(accelerator)
    if accel is None:
        warnings.append(
            f"GKE accelerator {accelerator!r} is not in the accelerator catalog; type kept as reported"
        )
    advertised = counts.get(NVIDIA_GPU, 0)
    partition = labels.get(GKE_PARTITION, "").strip().lower()
    strategy = labels.get(GKE_SHARING, "").strip().lower()
    common: dict[str, Any] = {"accel": accel, "product": accelerator, "vendor": "nvidia", "source": "gke"}
    if partition:
        mig = accel.mig_profile(partition) if accel else None
        if accel is not None and mig is None:
            warnings.append(f"MIG profile {partition!r} is not listed for {accel.display_name}")
        size = mig.memory_gib if mig else _size_gib(partition.split(".")[-1].removesuffix("b"))
        return [
            _group(
                **common,
                count=advertised,
                memory_gib=size,
                resource_name=NVIDIA_GPU,
                mig_profile=partition,
                sharing=SharingMode.MIG,
            )
        ]
    replicas = 1
    sharing = SharingMode.EXCLUSIVE
    if strategy in ("time-sharing", "mps"):
        sharing = SharingMode.MPS if strategy == "mps" else SharingMode.TIME_SLICING
        replicas = _int_label(labels, GKE_MAX_CLIENTS, warnings) or 1
    return [
        _group(
            **common,
            count=advertised // max(replicas, 1),
            memory_gib=accel.device_memory_gib if accel else None,
            resource_name=NVIDIA_GPU,
            replicas=replicas,
            sharing=sharing,
        )
    ]


def _detect_amd(
    labels: Mapping[str, str], catalog: Catalog, counts: Mapping[str, int], warnings: list[str]
) -> list[DeviceGroup]:
    product = labels.get(AMD_PRODUCT)
    device_id = labels.get(AMD_DEVICE_ID)
    legacy = {m.group("id").lower(): key for key in labels if (m := _AMD_LEGACY_DEVICE.match(key))}
    if product is None and device_id is None and not legacy:
        return []
    by_device = catalog.by_pci("1002", device_id.strip().lower().removeprefix("0x")) if device_id else None
    reference = (catalog.resolve(product) if product else None) or by_device
    vram: float | None = None
    if AMD_VRAM in labels:
        vram = _amd_vram_gib(labels[AMD_VRAM], reference, warnings)
    else:
        # float, not int: a hostile key's 5,000 digits are a huge (or infinite) size, not a ValueError
        legacy_vram = [float(m.group("size")) for key in labels if (m := _AMD_LEGACY_VRAM.match(key))]
        if len(legacy_vram) == 1:
            vram = _plausible(legacy_vram[0], "label amd.com/gpu.vram.<size>G", warnings)
    total = _int_label(labels, AMD_COUNT, warnings)
    if total is None:
        total = counts.get(AMD_GPU, 0)

    if product is not None or device_id is not None:
        accel = catalog.resolve(product, vram) if product else None
        if accel is None:
            accel = by_device
        if accel is None:
            warnings.append(
                f"AMD GPU {product or device_id!r} is not in the accelerator catalog; type kept as reported"
            )
        if vram is None and AMD_VRAM not in labels:
            warnings.append("AMD GPU memory label missing; memory unknown")
        return [
            _group(
                accel=accel,
                product=product or (f"AMD device {device_id}" if device_id else None),
                vendor="amd",
                count=total,
                memory_gib=_marketed(vram, accel) if vram is not None else None,
                resource_name=AMD_GPU,
                source="amd",
            )
        ]

    groups: list[DeviceGroup] = []
    for dev, key in sorted(legacy.items()):
        accel = catalog.by_pci("1002", dev)
        n = _int_label(labels, key, warnings)
        if n is None:
            n = total if len(legacy) == 1 else 0
        if accel is None:
            warnings.append(f"AMD device id {dev} is not in the accelerator catalog")
        groups.append(
            _group(
                accel=accel,
                product=None if accel else f"AMD device {dev}",
                vendor="amd",
                count=n,
                memory_gib=accel.device_memory_gib if accel else vram,
                resource_name=AMD_GPU,
                source="amd-legacy",
            )
        )
    return groups


def _detect_intel(
    labels: Mapping[str, str], catalog: Catalog, counts: Mapping[str, int], warnings: list[str]
) -> list[DeviceGroup]:
    product = labels.get(INTEL_PRODUCT)
    devices = {m.group("id").lower(): key for key in labels if (m := _INTEL_DEVICE.match(key))}
    if product is None and not devices:
        return []
    memory: float | None = None
    if INTEL_MEMORY in labels:
        memory = _plausible(_size_gib(labels[INTEL_MEMORY]), f"label {INTEL_MEMORY}", warnings)
    count = _int_label(labels, INTEL_COUNT, warnings)
    if product is not None:
        accel = catalog.resolve(product, memory)
        if accel is None and len(devices) == 1:
            accel = catalog.by_pci("8086", next(iter(devices)))
        if accel is None:
            warnings.append(f"Intel GPU {product!r} is not in the accelerator catalog; type kept as reported")
        if count is None:
            count = counts.get(INTEL_GPU, 0)
        return [
            _group(
                accel=accel,
                product=product,
                vendor="intel",
                count=count,
                memory_gib=_marketed(memory, accel)
                if memory is not None
                else (accel.device_memory_gib if accel else None),
                resource_name=INTEL_GPU,
                source="intel",
            )
        ]
    groups = []
    for dev, key in sorted(devices.items()):
        accel = catalog.by_pci("8086", dev)
        n = _int_label(labels, key, warnings) or 0
        groups.append(
            _group(
                accel=accel,
                product=None if accel else f"Intel device {dev}",
                vendor="intel",
                count=n,
                memory_gib=accel.device_memory_gib if accel else memory,
                resource_name=INTEL_GPU,
                source="intel",
            )
        )
    return groups


def _nfd_devices(labels: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """(vendor id, device id or None) for each accelerator-vendor NFD PCI label.

    NFD joins the configured ``deviceLabelFields`` (class, vendor, device, ...) with ``_``; the
    device id, when configured, follows the vendor id.
    """
    found: set[tuple[str, str | None]] = set()
    for key, value in labels.items():
        match = _NFD_PCI.match(key)
        if match is None or str(value).lower() != "true":
            continue
        fields = [f.lower() for f in match.group("fields").split("_") if f]
        for i, field in enumerate(fields):
            if field in _PCI_VENDORS:
                device = fields[i + 1] if i + 1 < len(fields) and _HEX4.match(fields[i + 1]) else None
                found.add((field, device))
                break
    return sorted(found, key=lambda t: (t[0], t[1] or ""))


def _detect_nfd(
    labels: Mapping[str, str], catalog: Catalog, counts: Mapping[str, int], warnings: list[str]
) -> list[DeviceGroup]:
    found = [
        (vendor_id, device)
        for vendor_id, device in _nfd_devices(labels)
        # An uncatalogued Intel (8086) device is a NIC or chipset far more often than a GPU.
        if vendor_id != "8086" or (device is not None and catalog.by_pci(vendor_id, device) is not None)
    ]
    with_device = {v for v, d in found if d is not None}
    # A vendor-only label next to vendor+device labels of the same vendor adds nothing.
    found = [(v, d) for v, d in found if d is not None or v not in with_device]

    def resource_of(vendor_id: str, device: str | None) -> str:
        accel = catalog.by_pci(vendor_id, device) if device else None
        if accel is not None:
            return accel.resource_name
        return GAUDI if vendor_id == "1da3" else _VENDOR_RESOURCE[_PCI_VENDORS[vendor_id]]

    groups: list[DeviceGroup] = []
    for vendor_id, device in found:
        vendor = _PCI_VENDORS[vendor_id]
        accel = catalog.by_pci(vendor_id, device) if device else None
        resource = resource_of(vendor_id, device)
        same_resource = [d for v, d in found if resource_of(v, d) == resource]
        count = counts.get(resource, 0) if len(same_resource) == 1 else 0
        groups.append(
            _group(
                accel=accel,
                product=GAUDI_UNKNOWN if accel is None and resource == GAUDI else None,
                vendor=vendor,
                count=count,
                memory_gib=accel.device_memory_gib if accel else None,
                resource_name=resource,
                source="nfd",
            )
        )
    if groups:
        _note_unknown_gaudi(groups, warnings)
        if any(g.accelerator_key is None for g in groups):
            warnings.append(
                "accelerator detected from NFD PCI labels only; product labels missing, type unknown"
            )
        elif any(g.accelerator is not None for g in groups):
            warnings.append("accelerator type inferred from NFD PCI device id; memory taken from the catalog")
    return groups


def _note_unknown_gaudi(groups: Iterable[DeviceGroup], warnings: list[str]) -> None:
    if any(g.product == GAUDI_UNKNOWN for g in groups):
        warnings.append(
            "Gaudi generation unknown (no catalogued PCI device id): grouped as 'Intel Gaudi' with "
            "memory unknown; label the node budcore.io/accelerator=intel-gaudi2-96gb (or "
            "intel-gaudi3-128gb) to say which"
        )


def _detect_allocatable(counts: Mapping[str, int], warnings: list[str]) -> list[DeviceGroup]:
    groups = []
    for resource, vendor in _RESOURCE_VENDOR.items():
        n = counts.get(resource, 0)
        if n:
            groups.append(
                _group(
                    accel=None,
                    product=GAUDI_UNKNOWN if resource == GAUDI else None,
                    vendor=vendor,
                    count=n,
                    memory_gib=None,
                    resource_name=resource,
                    source="allocatable",
                )
            )
    _note_unknown_gaudi(groups, warnings)
    if any(g.accelerator_key is None for g in groups):
        warnings.append("node advertises accelerators but has no product labels; type unknown")
    return groups


def _reconcile_counts(
    devices: list[DeviceGroup], advertised: Mapping[str, int], warnings: list[str]
) -> list[DeviceGroup]:
    """Hold each device group to what the node advertises for its resource.

    A count label (GFD's ``gpu.count``, ``amd.com/gpu.count``, a declared ``slug=4``) that disagrees
    with allocatable is a warning, not an error, and allocatable wins. Refusing the dump would make
    budcore unusable on exactly the clusters that need a look: the device plugin leaves an
    unhealthy GPU out of allocatable while feature discovery still counts it, so a node with a
    failed GPU is an ordinary sight. Trusting the label instead would place pods on devices
    Kubernetes will not hand out. A time-sliced group whose replica label is missing takes the
    replica count allocatable implies. When several groups share one resource (a declared mixed
    node) the shortfall cannot be assigned to one of them: the counts stay, with the warning.
    Nothing is compared when the node does not list the resource at all (a dump without status).
    """
    by_resource: dict[str, list[int]] = {}
    for index, group in enumerate(devices):
        by_resource.setdefault(group.resource_name, []).append(index)
    result = list(devices)
    for resource, indexes in by_resource.items():
        if resource not in advertised:
            continue
        have = advertised[resource]
        said = sum(devices[i].allocatable for i in indexes)
        if said == have:
            continue
        if len(indexes) > 1:
            warnings.append(
                f"the labels add up to {said} {resource} but the node advertises {have}; "
                "counts kept as labelled (which type is short cannot be told)"
            )
            continue
        group = devices[indexes[0]]
        update: dict[str, int]
        if (
            group.sharing in (SharingMode.TIME_SLICING, SharingMode.MPS)
            and group.replicas == 1
            and group.count
            and have % group.count == 0
            and have > group.count
        ):
            update = {"replicas": have // group.count}
            note = f"taking {have // group.count} replicas per GPU"
        else:
            update = {"count": have // group.replicas}
            note = f"counting {have // group.replicas} (what Kubernetes hands out)"
        what = "MIG slices" if group.mig_profile else "devices"
        warnings.append(
            f"labels say {group.count} {what} x {group.replicas} replica(s) = {said} {resource}, "
            f"but the node advertises {have}; {note}"
        )
        result[indexes[0]] = group.model_copy(update=update)
    return result


# --------------------------------------------------------------------------------------------------
# Entry points


def _is_device(resource: str, catalog: Catalog) -> bool:
    """A resource that counts accelerator devices (or MIG slices of one)."""
    return (
        resource in _RESOURCE_VENDOR
        or resource.startswith("nvidia.com/mig-")
        or any(a.resource_name == resource for a in catalog.accelerators)
    )


def _node_bound(resource: str, catalog: Catalog) -> tuple[int, str]:
    """The most a node may have of ``resource``, and its unit (see the bounds above)."""
    if _is_device(resource, catalog):
        return MAX_DEVICES_PER_NODE, "devices"
    if resource == "cpu":
        return MAX_CPU_PER_NODE, "cores"
    return MAX_AMOUNT_PER_NODE, "bytes" if resource.endswith(("memory", "storage")) else "units"


def _resources(raw: Any, path: str, node: str, catalog: Catalog) -> ResourceVector:
    """A node's allocatable or capacity, each amount within the bounds above (else an error naming
    the node and the field: a dump that says ``nvidia.com/gpu: 1e308`` is broken, not odd)."""
    if raw is None:
        return ResourceVector()
    if not isinstance(raw, Mapping):
        raise ValidationError(
            f"expected a mapping of resource name to quantity, got {type(raw).__name__}", path=path
        )
    amounts: dict[str, int] = {}
    for resource, value in raw.items():
        name = str(resource)
        limit, unit = _node_bound(name, catalog)
        above = ValidationError(
            f"node {node!r}: {name} = {str(value)[:40]!r} is above the maximum of {limit:,} {unit} per node",
            path=f"{path}.{name}",
        )
        try:
            milli = ResourceVector.of({name: value}, field=path).get(name)
        except QuantityRangeError:
            raise above from None
        if milli > limit * 1000:
            raise above
        if unit == "devices" and milli % 1000:
            raise ValidationError(
                f"node {node!r}: {name} = {str(value)[:40]!r} is not a whole number of devices",
                path=f"{path}.{name}",
            )
        amounts[name] = milli
    vector = ResourceVector(amounts)
    return vector


_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _taints(spec: Any, path: str) -> tuple[Taint, ...]:
    """``spec.taints`` of a node, checked as the API server checks them: a list of mappings, each
    with a key (a qualified name), an optional value (a label value) and an effect. ``timeAdded``
    is dropped (:class:`~budcore.domain.cluster.Taint`). A bad taint is an error at its path
    (``items[3].spec.taints[0].effect``): a node whose taints were skipped would receive pods
    Kubernetes keeps off it."""
    raw = spec.get("taints") if isinstance(spec, Mapping) else None
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValidationError(
            f"expected a list of taints, got {type(raw).__name__}", path=f"{path}.spec.taints"
        )
    taints: list[Taint] = []
    for i, item in enumerate(raw):
        at = f"{path}.spec.taints[{i}]"
        if not isinstance(item, Mapping):
            raise ValidationError(f"expected a taint mapping, got {type(item).__name__}", path=at)
        unknown = sorted(str(k) for k in item if k not in ("key", "value", "effect", "timeAdded"))
        if unknown:
            raise ValidationError("unknown field", path=f"{at}.{unknown[0]}")
        if not item.get("key"):
            raise ValidationError("a taint needs a key", path=f"{at}.key")
        effect = item.get("effect")
        if effect not in _TAINT_EFFECTS:
            what = f"unsupported effect {effect!r}" if effect else "a taint needs an effect"
            raise ValidationError(f"{what}: use one of " + ", ".join(_TAINT_EFFECTS), path=f"{at}.effect")
        value = item.get("value")
        try:
            taint = Taint(key=str(item["key"]), value="" if value is None else str(value), effect=effect)
        except PydanticValidationError as exc:
            problem = exc.errors(include_url=False)[0]
            field = str(problem["loc"][0]) if problem.get("loc") else "key"
            message = str(problem.get("msg", "invalid value")).removeprefix("Value error, ")
            raise ValidationError(message, path=f"{at}.{field}") from None
        taints.append(taint)
    return tuple(taints)


def parse_node(
    data: Mapping[str, Any],
    *,
    catalog: Catalog | None = None,
    override: str | None = None,
    path: str = "node",
) -> ParsedNode:
    """One Kubernetes node mapping → :class:`ParsedNode`.

    ``override`` is an administrator's declaration (``slug`` or ``slug=count,...``) that replaces
    detection; the ``budcore.io/accelerators`` annotation and the ``budcore.io/accelerators`` /
    ``budcore.io/accelerator`` labels do the same from the node itself (see :func:`_declaration`).
    """
    catalog = catalog or default_catalog()
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise ValidationError("expected a mapping", path=f"{path}.metadata")
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise ValidationError("node has no name", path=f"{path}.metadata.name")
    raw_labels = metadata.get("labels") or {}
    if not isinstance(raw_labels, Mapping):
        raise ValidationError("expected a mapping of label to value", path=f"{path}.metadata.labels")
    labels = {str(k): "" if v is None else str(v) for k, v in raw_labels.items()}
    status = data.get("status") or {}
    if not isinstance(status, Mapping):
        raise ValidationError("expected a mapping", path=f"{path}.status")
    allocatable = _resources(status.get("allocatable"), f"{path}.status.allocatable", name, catalog)
    capacity = _resources(status.get("capacity"), f"{path}.status.capacity", name, catalog)
    if not allocatable and capacity:
        allocatable = capacity
    counts = {k: v // 1000 for k, v in (allocatable or capacity).items()}
    spec = data.get("spec") or {}
    schedulable = not (isinstance(spec, Mapping) and bool(spec.get("unschedulable")))
    taints = _taints(spec, path)
    ready = _ready(status.get("conditions"))
    memory_milli = capacity.get("memory", 0) or allocatable.get("memory", 0)
    host_memory = memory_milli // 1000 if memory_milli else None

    warnings: list[str] = []
    declared, where = _declaration(override, _annotations(metadata, path), labels, warnings)
    if declared:
        devices = _parse_declared(declared, catalog, where, warnings, counts)
    else:
        devices = (
            _detect_nvidia(labels, catalog, counts, warnings)
            + _detect_amd(labels, catalog, counts, warnings)
            + _detect_intel(labels, catalog, counts, warnings)
        )
        if not devices:
            devices = _detect_nfd(labels, catalog, counts, warnings)
        if not devices:
            devices = _detect_allocatable(counts, warnings)
    # The resources the node lists, zero amounts included ("nvidia.com/gpu: 0" when every GPU is
    # unhealthy): a ResourceVector drops zeros, so the listing comes from the raw mapping.
    listed = status.get("allocatable") or status.get("capacity") or {}
    advertised = {str(k): counts.get(str(k), 0) for k in listed} if isinstance(listed, Mapping) else {}
    devices = _reconcile_counts(devices, advertised, warnings)
    node = ParsedNode(
        name=name,
        labels=labels,
        allocatable=allocatable,
        host_memory_bytes=host_memory,
        schedulable=schedulable,
        ready=ready,
        devices=tuple(devices),
        warnings=tuple(warnings),
        taints=taints,
    )
    if node.mixed:
        node = node.model_copy(
            update={"warnings": (*node.warnings, f"{node.gpu_type}: excluded from automatic grouping")}
        )
    return node


def parse_nodes(
    data: Any,
    *,
    catalog: Catalog | None = None,
    overrides: Mapping[str, str] | None = None,
) -> Fleet:
    """A fleet from ``kubectl get nodes -o yaml`` data (``kind: List``) or a list of node dicts.

    ``overrides`` maps node name → declared type (see :func:`parse_node`); naming a node that is
    not in the input is an error, because a silently ignored override is a misconfiguration.
    """
    catalog = catalog or default_catalog()
    items = node_dicts(data)
    overrides = dict(overrides or {})
    nodes: list[ParsedNode] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        node = parse_node(item, catalog=catalog, override=None, path=f"items[{i}]")
        if node.name in seen:
            raise ValidationError(f"node {node.name!r} appears twice", path=f"items[{i}].metadata.name")
        seen.add(node.name)
        if node.name in overrides:
            node = parse_node(item, catalog=catalog, override=overrides[node.name], path=f"items[{i}]")
        nodes.append(node)
    unknown = sorted(set(overrides) - seen)
    if unknown:
        raise ValidationError(
            f"override names nodes that are not in the fleet: {', '.join(unknown)}", path="overrides"
        )
    return Fleet(nodes=tuple(nodes))


def parse_nodes_yaml(
    text: str,
    *,
    source: str = "<nodes>",
    catalog: Catalog | None = None,
    overrides: Mapping[str, str] | None = None,
) -> Fleet:
    items = load_nodes_yaml(text, source)
    try:
        return parse_nodes(items, catalog=catalog, overrides=overrides)
    except ValidationError as exc:
        raise ValidationError(exc.message, path=exc.path, source=source) from None


def node_dict(
    name: str,
    labels: Mapping[str, str] | None = None,
    allocatable: Mapping[str, Any] | None = None,
    *,
    unschedulable: bool = False,
    taints: Iterable[Mapping[str, str]] = (),
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A minimal Kubernetes node mapping (for tests, fixtures and programmatic fleets)."""
    metadata: dict[str, Any] = {"name": name, "labels": dict(labels or {})}
    if annotations:
        metadata["annotations"] = dict(annotations)
    node: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": metadata,
        "status": {"allocatable": dict(allocatable or {}), "capacity": dict(allocatable or {})},
    }
    spec: dict[str, Any] = {}
    if unschedulable:
        spec["unschedulable"] = True
    taint_list = [dict(t) for t in taints]
    if taint_list:
        spec["taints"] = taint_list
    if spec:
        node["spec"] = spec
    return node


def physical_gpus(groups: Iterable[DeviceGroup], catalog: Catalog | None = None) -> int:
    """Physical accelerators behind ``groups``: MIG slices are folded back into whole GPUs using the
    profile's instances-per-GPU (a node with 14 ``1g.10gb`` slices has 2 A100s)."""
    catalog = catalog or default_catalog()
    total = 0
    for group in groups:
        if group.whole:
            total += group.count
            continue
        accel = catalog.get(group.accelerator) if group.accelerator else None
        mig = accel.mig_profile(group.mig_profile or "") if accel else None
        per_gpu = mig.max_instances if mig else 7
        total += math.ceil(group.count / per_gpu)
    return total
