"""Hardware profiles: named groups of nodes with one (or a few) accelerator types.

A profile is what a user picks ("Premium GPU (NVIDIA H200 141GB) - 4 available") and what
scheduling targets: it carries the accelerator type(s), GPUs per node, host memory and the node
selector that lands pods on exactly those nodes. Profiles are built automatically by grouping the
parsed fleet by type (mixed and unknown-type nodes are left out of automatic grouping, as the
seeds' node view does), can combine several types ("A100 80GB or A100 40GB"), and a generic
profile matches any GPU for backward compatibility. Each single-type profile maps to a Kueue
``ResourceFlavor`` whose ``nodeLabels`` are the profile's node selector.

The generic ``gpu-any`` flavor never selects a CPU-only node: its nodeLabels are a label every
accelerator node carries and no CPU-only node does (GFD's ``nvidia.com/gpu.present=true`` on an
all-NVIDIA fleet), else ``budcore.io/accelerator-node=true``, which the nodes then need (the
profile says ``label_required``). Only a fleet without CPU-only nodes and without such a label
keeps the empty selector. Gaudi nodes of an unknown generation are a type of their own
(``gaudi``), so they get a profile and a flavor apart from the GPUs too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from budcore.domain.errors import ValidationError
from budcore.hardware.catalog import Accelerator, Catalog, default_catalog
from budcore.hardware.labels import (
    ACCELERATOR_LABEL,
    ACCELERATOR_NODE_LABEL,
    AMD_DEVICE_ID,
    AMD_PRODUCT,
    GFD_PRODUCT,
    GKE_ACCELERATOR,
    INTEL_PRODUCT,
    Fleet,
    ParsedNode,
)
from budcore.scheduling.queues import ResourceFlavor

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")

GENERIC_PROFILE = "gpu-any"

# Labels that can tell node types apart, most specific first. The budcore label is preferred when
# present because an admin put it there on purpose; vendor labels need no labelling at all.
_SELECTOR_KEYS = (ACCELERATOR_LABEL, GFD_PRODUCT, AMD_PRODUCT, AMD_DEVICE_ID, INTEL_PRODUCT, GKE_ACCELERATOR)
# Node Feature Discovery's PCI labels of accelerator vendors (NVIDIA, AMD, Habana): they name a device
# id, or at least a vendor, when no vendor label does (Gaudi nodes have none of the keys above).
_NFD_ACCELERATOR = re.compile(
    r"^feature\.node\.kubernetes\.io/pci-(?:[0-9a-f]{4}_)?(?:10de|1002|1da3)[0-9a-f_]*\.present$"
)
# Labels that say "this node has an accelerator" (for the generic flavor), besides the above.
_PRESENCE_KEYS = ("nvidia.com/gpu.present",)


class HardwareProfile(BaseModel):
    """A selectable class of hardware.

    ``accelerators`` are catalog slugs (or ``product:<name>`` keys for types the catalog lacks);
    empty means "any GPU" (the generic profile). ``gpus_per_node`` is the most whole devices (or
    MIG slices) one pod can get on every node of the profile; ``available`` is how many devices are
    free now (``None`` when unknown, treated as available).
    """

    model_config = _FROZEN

    name: str = Field(min_length=1)
    display_name: str = ""
    accelerators: tuple[str, ...] = ()
    gpus_per_node: int = Field(default=1, ge=0)
    host_memory_bytes: int | None = Field(default=None, ge=0)
    node_selector: dict[str, str] = Field(default_factory=dict)
    node_names: tuple[str, ...] = ()
    total_devices: int = Field(default=0, ge=0)
    available: int | None = Field(default=None, ge=0)
    mig_profile: str | None = None
    shared: bool = False
    memory_gib: float | None = Field(default=None, gt=0)  # per device; None: from the catalog
    flavors: tuple[str, ...] = ()  # the ResourceFlavor names it schedules onto, in preference order
    label_required: bool = False  # nodes must be labelled budcore.io/accelerator for the selector

    @model_validator(mode="after")
    def _default_display(self) -> HardwareProfile:
        if not self.display_name:
            object.__setattr__(self, "display_name", self.name)
        return self

    @property
    def generic(self) -> bool:
        return not self.accelerators

    @property
    def whole(self) -> bool:
        return self.mig_profile is None

    @property
    def is_available(self) -> bool:
        return self.available is None or self.available > 0

    def specs(self, catalog: Catalog | None = None) -> list[Accelerator]:
        """Catalog entries of this profile's types (unknown ones are skipped)."""
        catalog = catalog or default_catalog()
        return [a for slug in self.accelerators if (a := catalog.get(slug)) is not None]

    def device_memory_gib(self, catalog: Catalog | None = None) -> float | None:
        """The smallest per-device memory among the profile's types: what a workload can count on."""
        if self.memory_gib is not None:
            return self.memory_gib
        specs = self.specs(catalog)
        if not specs or len(specs) != len(self.accelerators):
            return None
        if self.mig_profile:
            sizes = [m.memory_gib for a in specs if (m := a.mig_profile(self.mig_profile)) is not None]
            return min(sizes) if len(sizes) == len(specs) else None
        return min(a.device_memory_gib for a in specs)

    def label(self, catalog: Catalog | None = None) -> str:
        """``Premium GPU (NVIDIA H200 141GB)`` style label for tables and messages."""
        specs = self.specs(catalog)
        if self.generic:
            return f"{self.display_name} (any GPU)"
        types = " or ".join(a.display_name for a in specs) or ", ".join(self.accelerators)
        if self.mig_profile:
            types += f" MIG {self.mig_profile}"
        return self.display_name if self.display_name == types else f"{self.display_name} ({types})"


def flavor_name(text: str) -> str:
    """A DNS-1123 name (Kubernetes object name) from a type key or profile name."""
    name = re.sub(r"[^a-z0-9.-]+", "-", text.lower()).strip("-.")
    name = re.sub(r"-{2,}", "-", name)[:253].strip("-.")
    if not name or not _DNS_NAME.match(name):
        raise ValidationError(f"cannot derive a Kubernetes name from {text!r}", path="name")
    return name


def _selector(
    group: Sequence[ParsedNode], others: Sequence[ParsedNode], key_value: str
) -> tuple[dict[str, str], bool]:
    """A label selector matching every node in ``group`` and none of ``others``.

    Tries the type-identifying labels in :data:`_SELECTOR_KEYS`; when no single label value does it
    (e.g. the same model reported under two product spellings), falls back to the budcore label
    with the type key as value and reports that nodes need labelling.
    """
    found = _distinguishing(group, others, _SELECTOR_KEYS)
    if found is not None:
        return found, False
    return {ACCELERATOR_LABEL: key_value}, True


def _distinguishing(
    group: Sequence[ParsedNode], others: Sequence[ParsedNode], keys: Sequence[str]
) -> dict[str, str] | None:
    """One ``key: value`` every node of ``group`` has and no node of ``others`` has: the first of
    ``keys`` that does it, else the first NFD accelerator PCI label (sorted), else ``None``."""
    nfd = sorted({k for n in group for k in n.labels if _NFD_ACCELERATOR.match(k.lower())})
    for key in (*keys, *nfd):
        values = {n.labels.get(key) for n in group}
        if len(values) != 1:
            continue
        value = next(iter(values))
        if value is None or (key in nfd and value.lower() != "true"):
            continue
        if any(o.labels.get(key) == value for o in others):
            continue
        return {key: value}
    return None


def _profile_name(key: str, taken: set[str]) -> str:
    """The profile's (and flavor's, and fallback label value's) name for a group key. A type the
    catalog lacks (``product:H100-NVL``) is named after the product (``h100-nvl``), which read back
    from the ``budcore.io/accelerator`` label is the same type again; ``product-`` is kept only
    when the bare name would be a catalogued type's."""

    def name_of(text: str) -> str:
        return flavor_name(text.replace("/", "-").replace(":", "-").replace("+", "-"))

    bare = key.removeprefix("product:")
    if bare != key and name_of(bare) in {name_of(k) for k in taken if not k.startswith("product:")}:
        return name_of(key)
    return name_of(bare)


def _group_key(node: ParsedNode) -> str | None:
    key = node.type_key
    if key is None:
        return None
    return f"{key}/shared" if node.shared else key


def build_profiles(
    fleet: Fleet,
    *,
    catalog: Catalog | None = None,
    names: Mapping[str, str] | None = None,
    include_generic: bool = True,
) -> list[HardwareProfile]:
    """One profile per accelerator type (plus MIG layout and sharing) found in the fleet.

    ``names`` maps a generated profile name to a display name ("nvidia-h200-141gb" → "Premium
    GPU"). Mixed and unknown-type nodes are not grouped; they only join the generic profile.
    """
    catalog = catalog or default_catalog()
    names = dict(names or {})
    gpu_nodes = [n for n in fleet.nodes if n.has_accelerators]
    groups: dict[str, list[ParsedNode]] = {}
    for node in gpu_nodes:
        key = _group_key(node)
        if key is not None:
            groups.setdefault(key, []).append(node)
    profiles: list[HardwareProfile] = []
    taken = set(groups)
    for key in sorted(groups):
        members = groups[key]
        others = [n for n in gpu_nodes if _group_key(n) != key]
        first = members[0]
        device = first.devices[0]
        accel_key = device.accelerator_key or key
        label_value = _profile_name(key, taken)
        selector, needs_label = _selector(members, others, label_value)
        mig = first.mig_profiles[0] if len(first.mig_profiles) == 1 and len(first.devices) == 1 else None
        per_node = min(sum(d.count for d in n.devices if (d.mig_profile or None) == mig) for n in members)
        host = [n.host_memory_bytes for n in members if n.host_memory_bytes is not None]
        accel = catalog.get(accel_key)
        display = accel.display_name if accel else device.display_name
        if mig:
            display += f" MIG {mig}"
        if first.shared:
            display += " (shared)"
        name = label_value
        profiles.append(
            HardwareProfile(
                name=name,
                display_name=names.get(name, display),
                accelerators=(accel_key,),
                gpus_per_node=per_node,
                host_memory_bytes=min(host) if len(host) == len(members) else None,
                node_selector=selector,
                node_names=tuple(n.name for n in members),
                total_devices=sum(n.accelerator_count for n in members),
                mig_profile=mig,
                shared=first.shared,
                memory_gib=device.memory_gib if accel is None else None,
                flavors=(name,),
                label_required=needs_label,
            )
        )
    if include_generic and gpu_nodes:
        profiles.append(generic_profile(fleet, names.get(GENERIC_PROFILE, "Any GPU")))
    return profiles


def generic_profile(fleet: Fleet, display_name: str = "Any GPU") -> HardwareProfile:
    """The "any GPU" profile: every accelerator node, no type constraint (backward compatible),
    and never a CPU-only node (see the module docstring for its selector)."""
    nodes = [n for n in fleet.nodes if n.has_accelerators]
    cpu_only = [n for n in fleet.nodes if not n.has_accelerators]
    selector = _distinguishing(nodes, cpu_only, (*_PRESENCE_KEYS, *_SELECTOR_KEYS)) if nodes else None
    label_required = False
    if selector is None:
        selector = {ACCELERATOR_NODE_LABEL: "true"} if cpu_only else {}
        label_required = bool(cpu_only)
    per_node = min((sum(d.count for d in n.devices if d.whole) for n in nodes), default=0)
    host = [n.host_memory_bytes for n in nodes if n.host_memory_bytes is not None]
    return HardwareProfile(
        name=GENERIC_PROFILE,
        display_name=display_name,
        accelerators=(),
        gpus_per_node=per_node,
        host_memory_bytes=min(host) if host and len(host) == len(nodes) else None,
        node_selector=selector,
        node_names=tuple(n.name for n in nodes),
        total_devices=sum(n.accelerator_count for n in nodes),
        flavors=(GENERIC_PROFILE,),
        label_required=label_required,
    )


def multi_type_profile(
    name: str, profiles: Sequence[HardwareProfile], display_name: str = ""
) -> HardwareProfile:
    """One profile over several single-type ones ("A100 80GB or A100 40GB"), preference = order.

    Kueue cannot OR node labels inside one flavor, so the combined profile lists the member
    flavors in order (a ClusterQueue tries them in that order) instead of one selector.
    """
    if not profiles:
        raise ValidationError("a multi-type profile needs at least one member profile", path="profiles")
    mig = {p.mig_profile for p in profiles}
    if len(mig) != 1:
        raise ValidationError(
            "member profiles mix MIG layouts; combine profiles of one layout", path="profiles"
        )
    accelerators = tuple(dict.fromkeys(a for p in profiles for a in p.accelerators))
    if any(p.generic for p in profiles):
        raise ValidationError("the generic profile cannot be part of a multi-type profile", path="profiles")
    hosts = [p.host_memory_bytes for p in profiles]
    availability = [p.available for p in profiles]
    sizes = [p.memory_gib for p in profiles]
    return HardwareProfile(
        name=name,
        display_name=display_name or name,
        accelerators=accelerators,
        gpus_per_node=min(p.gpus_per_node for p in profiles),
        host_memory_bytes=None if None in hosts else min(h for h in hosts if h is not None),
        node_selector={},
        node_names=tuple(dict.fromkeys(n for p in profiles for n in p.node_names)),
        total_devices=sum(p.total_devices for p in profiles),
        available=None if None in availability else sum(a for a in availability if a is not None),
        mig_profile=profiles[0].mig_profile,
        shared=any(p.shared for p in profiles),
        memory_gib=None if None in sizes else min(s for s in sizes if s is not None),
        flavors=tuple(dict.fromkeys(f for p in profiles for f in p.flavors)),
        label_required=any(p.label_required for p in profiles),
    )


def resource_flavors(profiles: Iterable[HardwareProfile]) -> list[ResourceFlavor]:
    """The Kueue ResourceFlavors the profiles schedule onto (one per single-type profile, plus the
    label-free ``gpu-any`` flavor for the generic profile)."""
    flavors: dict[str, ResourceFlavor] = {}
    for profile in profiles:
        if len(profile.flavors) == 1 and profile.flavors[0] == profile.name:
            flavors.setdefault(
                profile.name, ResourceFlavor(name=profile.name, node_labels=dict(profile.node_selector))
            )
    return list(flavors.values())


def with_availability(profiles: Iterable[HardwareProfile], free: Mapping[str, int]) -> list[HardwareProfile]:
    """Profiles with ``available`` set from a profile-name → free-devices mapping (others as is)."""
    return [p.model_copy(update={"available": free[p.name]}) if p.name in free else p for p in profiles]
