"""Multi-dimensional resource vectors.

A request is not "a number of GPUs": it is cpu, memory, storage, one or more accelerator resource
names (``nvidia.com/gpu``, ``amd.com/gpu``, ``habana.ai/gaudi``, ``nvidia.com/mig-3g.20gb``) and
anything custom. ``ResourceVector`` keeps them by Kubernetes resource name, in exact milli-units
(see :mod:`budcore.domain.quantity`), and is immutable and hashable so it can sit in snapshots.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pydantic_core import core_schema

from budcore.domain.errors import ValidationError
from budcore.domain.quantity import Quantity, format_quantity, human_amount, parse_quantity

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL_STORAGE = "ephemeral-storage"
NVIDIA_GPU = "nvidia.com/gpu"
AMD_GPU = "amd.com/gpu"
GAUDI = "habana.ai/gaudi"
INTEL_GPU = "gpu.intel.com/i915"

# Resource names whose unit is "one accelerator" (or one slice of one).
ACCELERATOR_RESOURCES = frozenset({NVIDIA_GPU, AMD_GPU, GAUDI, INTEL_GPU, "gpu.intel.com/xe"})

# Kubernetes qualified name: optional DNS-subdomain prefix and '/', then a name.
_RESOURCE_NAME = re.compile(
    r"^(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


def is_accelerator(resource: str) -> bool:
    """Whether ``resource`` counts accelerators (whole devices or MIG slices)."""
    return resource in ACCELERATOR_RESOURCES or resource.startswith("nvidia.com/mig-")


#: Milli-units of one physical accelerator device.
DEVICE_MILLI = 1000


def device_request(resource: str, milli: int, where: str = "pod") -> int:
    """``milli`` itself if one pod may ask for it on ``resource``: a share of one device (1–999)
    or whole devices (a multiple of 1000); otherwise a one-line ``ValidationError`` naming the
    resource. No device plugin splits a pod over two devices, so ``1500m`` can never be placed:
    refusing it where the request is built says so before it waits in a queue for nothing."""
    if milli > DEVICE_MILLI and milli % DEVICE_MILLI and is_accelerator(resource):
        raise ValidationError(
            f"{where} asks for {milli / DEVICE_MILLI:g} {resource}: a pod takes a share of one device "
            f"(1 to {DEVICE_MILLI - 1} milli-units) or whole devices, never parts of two",
            path=resource,
        )
    return milli


def check_resource_name(name: str, field: str = "resource") -> str:
    if not isinstance(name, str) or not _RESOURCE_NAME.match(name):
        raise ValidationError(f"invalid resource name {name!r}", path=field)
    return name


class ResourceVector(Mapping[str, int]):
    """An immutable mapping of resource name to amount in milli-units; zero entries are dropped.

    Build one from Kubernetes notation with :meth:`of` (``ResourceVector.of({"cpu": "500m",
    "nvidia.com/gpu": 8})``); amounts must be non-negative.
    """

    __slots__ = ("_data", "_hash")

    def __init__(self, milli: Mapping[str, int] | None = None) -> None:
        data: dict[str, int] = {}
        if milli:
            for name, amount in milli.items():
                if not isinstance(amount, int) or isinstance(amount, bool):
                    raise ValidationError(
                        f"amount must be an integer number of milli-units, got {amount!r}", path=name
                    )
                if amount < 0:
                    raise ValidationError(f"negative quantity {human_amount(amount)}", path=name)
                if amount:
                    data[check_resource_name(name)] = amount
        self._data = data
        self._hash: int | None = None

    @classmethod
    def of(cls, amounts: Mapping[str, Quantity] | None = None, field: str = "resources") -> ResourceVector:
        """Parse Kubernetes quantities; ``field`` prefixes the path in errors."""
        if amounts is None:
            return EMPTY
        if not isinstance(amounts, Mapping):
            raise ValidationError(
                f"expected a mapping of resource name to quantity, got {type(amounts).__name__}",
                path=field,
            )
        milli: dict[str, int] = {}
        for name, value in amounts.items():
            path = f"{field}.{name}" if field else str(name)
            check_resource_name(name, path)
            amount = parse_quantity(value, path)
            if amount < 0:
                raise ValidationError(f"negative quantity {value!r}", path=path)
            milli[name] = amount
        return cls(milli)

    # Mapping protocol -------------------------------------------------------------------------
    def __getitem__(self, key: str) -> int:
        return self._data[key]

    def get(self, key: str, default: Any = 0) -> Any:
        return self._data.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ResourceVector):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == {k: v for k, v in other.items() if v}
        return NotImplemented

    def __repr__(self) -> str:
        return f"ResourceVector({self.to_kube()!r})"

    # Arithmetic -------------------------------------------------------------------------------
    def __add__(self, other: Mapping[str, int]) -> ResourceVector:
        out = dict(self._data)
        for name, amount in other.items():
            out[name] = out.get(name, 0) + amount
        return ResourceVector(out)

    def scaled(self, factor: int) -> ResourceVector:
        """This vector times a non-negative whole ``factor`` (pods in a pod set)."""
        if factor < 0:
            raise ValidationError(f"negative multiplier {factor}", path="count")
        return ResourceVector({k: v * factor for k, v in self._data.items()})

    def fits_in(self, available: Mapping[str, int]) -> bool:
        """Every amount here is at most the one in ``available`` (missing counts as zero)."""
        return all(amount <= available.get(name, 0) for name, amount in self._data.items())

    def as_dict(self) -> dict[str, int]:
        """A fresh mutable copy in milli-units (for hot loops that accumulate)."""
        return dict(self._data)

    def to_kube(self) -> dict[str, str]:
        """Kubernetes notation, e.g. ``{"cpu": "500m", "memory": "64Gi", "nvidia.com/gpu": "8"}``."""
        return {name: format_quantity(amount, name) for name, amount in sorted(self._data.items())}

    def accelerators(self) -> dict[str, int]:
        """Only the accelerator entries."""
        return {k: v for k, v in self._data.items() if is_accelerator(k)}

    @classmethod
    def sum(cls, vectors: Iterable[Mapping[str, int]]) -> ResourceVector:
        total: dict[str, int] = {}
        for vector in vectors:
            for name, amount in vector.items():
                total[name] = total.get(name, 0) + amount
        return cls(total)

    # pydantic integration: accept a ResourceVector or a mapping of Kubernetes quantities, and
    # serialise to Kubernetes notation so JSON/YAML stays readable and round-trips exactly.
    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        def validate(value: Any) -> ResourceVector:
            if isinstance(value, ResourceVector):
                return value
            return cls.of(value, field="")  # pydantic prefixes the field's own location

        return core_schema.no_info_plain_validator_function(
            validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda v: v.to_kube(), when_used="json"
            ),
        )


EMPTY = ResourceVector()
