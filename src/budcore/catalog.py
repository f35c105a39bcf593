"""The accelerator catalog: what each GPU/accelerator model *is*.

Scheduling on a heterogeneous fleet needs facts that Kubernetes does not carry: an H200 has 141 GB
at 4.8 TB/s, a T4 16 GB at 320 GB/s; an A100 80GB can be cut into ``3g.40gb`` MIG slices. The
catalog ships as a versioned YAML file inside the package (``catalog.yaml``), is validated on load
into frozen pydantic models, and can be extended or overridden by the user's own files, merged by
slug. Lookups of something the catalog does not know return ``None``: an unknown accelerator is a
fact to report ("GPU - type unknown"), never a crash.

Product strings arrive in many spellings (GFD's ``NVIDIA-H100-80GB-HBM3``, ``A100-SXM4-80GB``,
``Tesla-T4``, time-sliced ``...-SHARED``, MIG ``...-MIG-1g.10gb``; AMD's ``AMD_Instinct_MI300X``);
:func:`normalize_product` reduces them all to one canonical form before matching aliases, and
:class:`CatalogResolver` turns any of them into the model's slug.

**Where it sits.** The catalog depends on the domain only, and two layers use it:
:mod:`budcore.scheduling` (admission's :class:`~budcore.scheduling.assignment.AcceleratorMatcher`
resolves a job's accelerator type and a flavor's node labels to one identity) and
:mod:`budcore.hardware` (labels, profiles, matching), which itself builds on scheduling's queue
types (a hardware profile becomes a Kueue ResourceFlavor). It therefore lives below both, so that
scheduling never imports hardware; ``budcore.hardware.catalog`` re-exports it and stays the
documented import path. The built-in data is ``budcore/hardware/catalog.yaml``, read as a package
resource of ``budcore`` (reading it does not import ``budcore.hardware``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from budcore.domain.errors import ValidationError
from budcore.domain.validation import validate_model

_FROZEN = ConfigDict(frozen=True, extra="forbid")

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_MIG_NAME = re.compile(r"^(?P<g>[1-9])g\.(?P<mem>\d+)gb$")
_HEX4 = re.compile(r"^[0-9a-f]{4}$")

# Upper bounds on a catalog figure: far above any accelerator made (an H200 has 141 GB at 4.8 TB/s
# and 2 PFLOPS of FP8), low enough that a typo or a hostile ``1e308`` is an error at load time
# instead of an estimate that divides by it.
MAX_MEMORY_GIB = 1_048_576  # 1 PiB per device
MAX_BANDWIDTH_GBS = 10_000_000
MAX_TFLOPS = 10_000_000
MAX_DOMAIN_SIZE = 100_000
MAX_LOGICAL_DEVICES = 64

# Relative tolerance when matching a reported memory size to a marketed one: drivers report less
# than the marketed figure (T4 16 GB shows as 15360 MiB = 15 GiB, 6.25% short; H200 141 GB as
# 143771 MiB = 140.4 GiB). 8% absorbs that without confusing neighbouring sizes (40/48, 80/94).
MEMORY_TOLERANCE = 0.08

#: Floating-point formats an accelerator may list under ``precisions``.
PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "fp8")


class MigProfile(BaseModel):
    """One NVIDIA MIG instance profile, e.g. ``3g.40gb``: 3 of 7 compute slices, 40 GB."""

    model_config = _FROZEN

    name: str
    compute_slices: int = Field(ge=1, le=7)
    memory_gib: float = Field(gt=0)
    max_instances: int = Field(ge=1, le=7)

    @model_validator(mode="after")
    def _name_matches_fields(self) -> MigProfile:
        match = _MIG_NAME.match(self.name)
        if match is None:
            raise ValueError(f"MIG profile name {self.name!r} must look like '3g.40gb'")
        if int(match.group("g")) != self.compute_slices:
            raise ValueError(
                f"MIG profile {self.name!r} says {match.group('g')}g, compute_slices is {self.compute_slices}"
            )
        if int(match.group("mem")) != self.memory_gib:
            raise ValueError(
                f"MIG profile {self.name!r} says {match.group('mem')}gb, memory_gib is {self.memory_gib}"
            )
        return self

    @property
    def resource_name(self) -> str:
        """The Kubernetes resource a ``mixed`` MIG strategy advertises (``nvidia.com/mig-3g.40gb``)."""
        return f"nvidia.com/mig-{self.name}"


class Interconnect(BaseModel):
    """How devices talk to each other: bus kind, how many share one fast domain, per-device GB/s."""

    model_config = _FROZEN

    kind: str = Field(min_length=1)  # pcie, nvlink, nvlink-bridge, infinity-fabric, roce, xe-link
    domain_size: int = Field(default=1, ge=1, le=MAX_DOMAIN_SIZE)
    bandwidth_gbs: float | None = Field(default=None, gt=0, le=MAX_BANDWIDTH_GBS)


class Citation(BaseModel):
    """Where a figure comes from: the vendor datasheet title and address.

    Every built-in entry has an address; a user-supplied one may have none (an undisclosed model in
    a trace), and then the title says whose figures they are and where they were read.
    """

    model_config = _FROZEN

    title: str = Field(min_length=1)
    url: str | None = Field(default=None, pattern=r"^https?://")


class Accelerator(BaseModel):
    """One accelerator model with the figures scheduling and estimation need.

    Throughput figures are dense peaks in TFLOPs; ``None`` where the vendor publishes none (V100
    has no BF16, nothing before Hopper/Ada has FP8). Per-*Kubernetes-device* figures are the
    package figures divided by ``logical_devices`` (an MI250X appears as two GCDs).
    """

    model_config = _FROZEN

    slug: str
    display_name: str = Field(min_length=1)
    short_name: str = Field(min_length=1)
    vendor: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    architecture: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    memory_gib: float = Field(gt=0, le=MAX_MEMORY_GIB)
    memory_type: str | None = None
    memory_bandwidth_gbs: float = Field(gt=0, le=MAX_BANDWIDTH_GBS)
    bf16_tflops: float | None = Field(default=None, gt=0, le=MAX_TFLOPS)
    fp16_tflops: float | None = Field(default=None, gt=0, le=MAX_TFLOPS)
    fp8_tflops: float | None = Field(default=None, gt=0, le=MAX_TFLOPS)
    form_factor: str = Field(default="pcie", min_length=1)
    interconnect: Interconnect = Field(default_factory=lambda: Interconnect(kind="pcie"))
    logical_devices: int = Field(default=1, ge=1, le=MAX_LOGICAL_DEVICES)
    resource_name: str = Field(min_length=1)
    pci_vendor: str | None = None
    pci_device_ids: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    mig_profiles: tuple[MigProfile, ...] = ()
    # Floating-point formats the part computes in natively (fp32, tf32, fp16, bf16, fp8). Empty: read
    # them off the throughput figures (fp32, plus each of fp16/bf16/fp8 with a figure), which is
    # right for most parts but not for one whose datasheet omits a figure it supports (A10G: bf16).
    precisions: tuple[str, ...] = ()
    source: Citation

    @field_validator("slug")
    @classmethod
    def _check_slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError(f"slug {value!r} must be lowercase words joined by '-', e.g. 'nvidia-h100-80gb'")
        return value

    @field_validator("pci_vendor")
    @classmethod
    def _check_vendor_id(cls, value: str | None) -> str | None:
        if value is not None and not _HEX4.match(value):
            raise ValueError(f"PCI vendor id {value!r} must be 4 lowercase hex digits")
        return value

    @field_validator("pci_device_ids")
    @classmethod
    def _check_device_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for device in value:
            if not _HEX4.match(device):
                raise ValueError(f"PCI device id {device!r} must be 4 lowercase hex digits")
        return value

    @model_validator(mode="after")
    def _unique_mig_names(self) -> Accelerator:
        names = [p.name for p in self.mig_profiles]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate MIG profile names: {names}")
        return self

    # Per Kubernetes device --------------------------------------------------------------------
    @property
    def device_memory_gib(self) -> float:
        return self.memory_gib / self.logical_devices

    @property
    def device_bandwidth_gbs(self) -> float:
        return self.memory_bandwidth_gbs / self.logical_devices

    def device_peak_tflops(self, dtype: str = "bf16") -> float | None:
        """Dense peak per device for ``dtype``: bf16 falls back to fp16 (same units on every part
        that has both), fp8 has no fallback (a part without FP8 runs it as bf16, which the caller
        decides to model, not the catalog)."""
        if dtype == "fp8":
            value = self.fp8_tflops
        elif dtype == "fp16":
            value = self.fp16_tflops or self.bf16_tflops
        else:
            value = self.bf16_tflops or self.fp16_tflops
        return None if value is None else value / self.logical_devices

    @field_validator("precisions")
    @classmethod
    def _check_precisions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [p for p in value if p not in PRECISIONS]
        if unknown:
            raise ValueError(f"unknown precision(s) {unknown}; expected some of {', '.join(PRECISIONS)}")
        return value

    @property
    def supported_precisions(self) -> tuple[str, ...]:
        """What the part computes in: the listed ``precisions``, else those its figures imply."""
        if self.precisions:
            return self.precisions
        figures = {"fp16": self.fp16_tflops, "bf16": self.bf16_tflops, "fp8": self.fp8_tflops}
        return ("fp32", *(name for name, value in figures.items() if value is not None))

    def mig_profile(self, name: str) -> MigProfile | None:
        for profile in self.mig_profiles:
            if profile.name == name:
                return profile
        return None


class CatalogDocument(BaseModel):
    """The on-disk shape of a catalog file (also what :func:`dump_catalog` writes)."""

    model_config = _FROZEN

    version: str = Field(min_length=1)
    accelerators: tuple[Accelerator, ...] = ()

    @model_validator(mode="after")
    def _unique_slugs(self) -> CatalogDocument:
        seen: set[str] = set()
        for accel in self.accelerators:
            if accel.slug in seen:
                raise ValueError(f"accelerator slug {accel.slug!r} appears twice")
            seen.add(accel.slug)
        return self


_PREFIXES = ("NVIDIA-", "TESLA-", "AMD-", "INTEL-", "HABANA-")
_MIG_SUFFIX = re.compile(r"-MIG-\d+G\.\d+GB.*$")
_SHARED_SUFFIX = "-SHARED"


def normalize_product(product: str) -> str:
    """Canonical form of a product string for alias matching.

    Upper-case, spaces and underscores become ``-``, vendor prefixes (``NVIDIA-``, ``Tesla-``,
    ``AMD-``, ``Intel-``, ``Habana-``) go, and the sharing suffixes GFD appends (``-SHARED`` for
    time-slicing/MPS, ``-MIG-1g.10gb`` for single-strategy MIG) are stripped, so
    ``NVIDIA-A100-SXM4-80GB-MIG-1g.10gb-SHARED`` and ``a100 sxm4 80gb`` compare equal.
    """
    text = re.sub(r"[\s_]+", "-", product.strip().upper())
    text = re.sub(r"-{2,}", "-", text).strip("-")
    changed = True
    while changed:
        changed = False
        if text.endswith(_SHARED_SUFFIX):
            text = text[: -len(_SHARED_SUFFIX)]
            changed = True
        stripped = _MIG_SUFFIX.sub("", text)
        if stripped != text:
            text, changed = stripped, True
        for prefix in _PREFIXES:
            if text.startswith(prefix) and len(text) > len(prefix):
                text = text[len(prefix) :]
                changed = True
    return text


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(t for t in text.split("-") if t)


# Tokens that describe a form factor, memory type or size but not a different product: anything
# else left over after the model name (``NVL``, ``MAX-Q``) means a SKU the catalog does not list.
_DESCRIPTOR = re.compile(r"^(SXM\d?|PCIE|OAM|HBM\d?E?|GDDR\dX?|\d+GB)$")


def _only_descriptors(tokens: tuple[str, ...]) -> bool:
    return all(_DESCRIPTOR.match(t) for t in tokens)


def _without_run(haystack: tuple[str, ...], needle: tuple[str, ...]) -> tuple[str, ...]:
    n = len(needle)
    for i in range(len(haystack) - n + 1):
        if haystack[i : i + n] == needle:
            return haystack[:i] + haystack[i + n :]
    return haystack


def _contains_run(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    return n > 0 and any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


class Catalog:
    """An immutable, indexed set of accelerators.

    Build with :func:`load_catalog` (package file plus overrides) or from a ``CatalogDocument``.
    """

    def __init__(self, document: CatalogDocument, sources: Sequence[str] = ()) -> None:
        self.document = document
        self.sources = tuple(sources)
        self._by_slug: dict[str, Accelerator] = {a.slug: a for a in document.accelerators}
        self._by_alias: dict[str, Accelerator] = {}
        self._by_pci: dict[tuple[str, str], Accelerator] = {}
        for accel in document.accelerators:
            for name in (accel.slug, accel.display_name, *accel.aliases):
                self._by_alias.setdefault(normalize_product(name), accel)
            if accel.pci_vendor:
                for device in accel.pci_device_ids:
                    self._by_pci.setdefault((accel.pci_vendor, device), accel)

    @property
    def version(self) -> str:
        return self.document.version

    @property
    def accelerators(self) -> tuple[Accelerator, ...]:
        return self.document.accelerators

    def __len__(self) -> int:
        return len(self._by_slug)

    def __contains__(self, slug: object) -> bool:
        return slug in self._by_slug

    def get(self, slug: str) -> Accelerator | None:
        """The accelerator with this slug, or ``None``."""
        return self._by_slug.get(slug)

    def by_pci(self, vendor: str, device: str) -> Accelerator | None:
        return self._by_pci.get((vendor.lower(), device.lower()))

    def vendors_by_pci(self) -> dict[str, str]:
        """PCI vendor id → vendor name for every vendor in the catalog (``10de`` → ``nvidia``)."""
        return {a.pci_vendor: a.vendor for a in self.accelerators if a.pci_vendor}

    def resolve(self, product: str, memory_gib: float | None = None) -> Accelerator | None:
        """The catalog entry a product string (plus, optionally, a reported memory size) denotes.

        An exact alias match wins. Otherwise entries whose short name appears as a token run in the
        product (``A100`` in ``GRID-A100-FOO``) are candidates, narrowed by memory (within
        :data:`MEMORY_TOLERANCE`) and form factor (``PCIE`` in the string or not). Anything still
        ambiguous, or unmatched, is ``None``: better "unknown" than a wrong type.
        """
        if not product or not product.strip():
            return None
        key = normalize_product(product)
        exact = self._by_alias.get(key)
        if exact is not None:
            return exact
        tokens = _tokens(key)
        candidates = [
            a
            for a in self.accelerators
            if _contains_run(tokens, short := _tokens(normalize_product(a.short_name)))
            and _only_descriptors(_without_run(tokens, short))
        ]
        if memory_gib is not None:
            candidates = [a for a in candidates if memory_matches(a.device_memory_gib, memory_gib)]
        else:
            sized = [a for a in candidates if f"{round(a.device_memory_gib)}GB" in tokens]
            candidates = sized or candidates
        if len(candidates) > 1:
            pcie = "PCIE" in tokens
            candidates = [a for a in candidates if (a.form_factor == "pcie") == pcie] or candidates
        return candidates[0] if len(candidates) == 1 else None

    def to_yaml(self) -> str:
        return dump_catalog(self.document)

    def with_extra(self, accelerators: Iterable[Accelerator], source: str = "extra") -> Catalog:
        """A new catalog: this one plus ``accelerators``, models it lacks (a trace's undisclosed
        ``G1``; :func:`budcore.hardware.specs.load_accelerator_specs` reads them from YAML).

        Adding, never replacing: an entry whose slug, display name or alias already names a model
        of this catalog is an error at ``[i].slug`` / ``[i].aliases[j]`` (to change a built-in
        entry, merge an override file with :func:`load_catalog`). The version gains ``+source``.
        """
        extra = tuple(accelerators)
        taken = dict(self._by_alias)
        for i, accel in enumerate(extra):
            if accel.slug in self._by_slug:
                raise ValidationError(
                    f"accelerator {accel.slug!r} is already in the catalog", path=f"[{i}].slug"
                )
            if any(a.slug == accel.slug for a in extra[:i]):
                raise ValidationError(f"accelerator {accel.slug!r} appears twice", path=f"[{i}].slug")
            names = [("slug", accel.slug), ("display_name", accel.display_name)]
            names += [(f"aliases[{j}]", alias) for j, alias in enumerate(accel.aliases)]
            for field, name in names:
                owner = taken.get(normalize_product(name))
                if owner is not None and owner.slug != accel.slug:
                    raise ValidationError(
                        f"{name!r} already names {owner.slug!r} in the catalog; pick another name",
                        path=f"[{i}].{field}",
                    )
            for _, name in names:
                taken.setdefault(normalize_product(name), accel)
        if not extra:
            return self
        document = CatalogDocument(
            version=f"{self.version}+{source}", accelerators=(*self.accelerators, *extra)
        )
        return Catalog(document, (*self.sources, source))


def memory_matches(marketed_gib: float, reported_gib: float) -> bool:
    """Whether a reported memory size is the marketed one within :data:`MEMORY_TOLERANCE`."""
    return abs(marketed_gib - reported_gib) <= MEMORY_TOLERANCE * marketed_gib


def dump_catalog(document: CatalogDocument) -> str:
    """YAML text that :func:`parse_catalog` reads back to an equal document."""
    data = document.model_dump(mode="json", exclude_defaults=False)
    # allow_unicode=False: PyYAML mangles some code points (NEL, LS) when it writes them raw;
    # escaped they round-trip exactly.
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=False)


def _read_yaml(text: str, source: str) -> Any:
    from budcore.config.yamlsource import safe_load  # budcore.config imports this module

    try:
        return safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ValidationError(f"invalid YAML: {exc}", source=source, line=line) from None


def parse_catalog(text: str, source: str = "<catalog>") -> CatalogDocument:
    """Validate one complete catalog file's text."""
    data = _read_yaml(text, source)
    if not isinstance(data, Mapping):
        raise ValidationError(
            "a catalog file must be a mapping with 'version' and 'accelerators'", source=source
        )
    return validate_model(CatalogDocument, data, source=source)


def merge_catalog(base: CatalogDocument, override: Mapping[str, Any], source: str) -> CatalogDocument:
    """Apply an override file to ``base``: entries with a known slug are merged field by field
    (so a user can add one alias or fix one price-relevant figure without restating the entry),
    new slugs are appended and must be complete."""
    entries = override.get("accelerators", [])
    if not isinstance(entries, list):
        raise ValidationError("expected a list", path="accelerators", source=source)
    merged: dict[str, dict[str, Any]] = {a.slug: a.model_dump(mode="json") for a in base.accelerators}
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("slug"), str):
            raise ValidationError(
                "each accelerator needs a 'slug'", path=f"accelerators[{i}].slug", source=source
            )
        slug = entry["slug"]
        merged[slug] = {**merged.get(slug, {}), **entry}
    version = override.get("version")
    combined = {
        "version": f"{base.version}+{version}" if version else base.version,
        "accelerators": list(merged.values()),
    }
    return validate_model(CatalogDocument, combined, source=source)


def _builtin_text() -> str:
    # Through the ``budcore`` package, not ``budcore.hardware``: importing that would import its
    # profiles and so the scheduling layer this module sits below.
    data = resources.files("budcore").joinpath("hardware").joinpath("catalog.yaml")
    return data.read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _builtin_document() -> CatalogDocument:
    return parse_catalog(_builtin_text(), source="budcore/hardware/catalog.yaml")


def load_catalog(*extra_paths: str | Path) -> Catalog:
    """The built-in catalog, extended/overridden by ``extra_paths`` in order (later wins)."""
    document = _builtin_document()
    sources = ["budcore/hardware/catalog.yaml"]
    for path in extra_paths:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValidationError(f"cannot read catalog file: {exc.strerror}", source=str(p)) from None
        data = _read_yaml(text, str(p))
        if not isinstance(data, Mapping):
            raise ValidationError("a catalog file must be a mapping with 'accelerators'", source=str(p))
        document = merge_catalog(document, data, str(p))
        sources.append(str(p))
    return Catalog(document, sources)


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The built-in catalog (cached: it is immutable)."""
    return Catalog(_builtin_document(), ["budcore/hardware/catalog.yaml"])


def catalog_from(accelerators: Iterable[Accelerator], version: str = "custom") -> Catalog:
    """A catalog from accelerator objects (tests, programmatic fleets)."""
    return Catalog(CatalogDocument(version=version, accelerators=tuple(accelerators)))


def default_normalize(value: str) -> str | None:
    """Lower-case, strip a vendor prefix and sharing suffixes: ``NVIDIA-H100-80GB-HBM3-SHARED``
    → ``h100-80gb-hbm3``. :class:`CatalogResolver` falls back to it for names the catalog does
    not know; on its own it is the resolver of a matcher that should not use the catalog."""
    text = value.strip().lower().replace(" ", "-").replace("_", "-")
    for suffix in ("-shared",):
        text = text.removesuffix(suffix)
    if "-mig-" in text:
        text = text.split("-mig-", 1)[0]
    for prefix in ("nvidia-", "amd-", "intel-", "habana-"):
        text = text.removeprefix(prefix)
    return text or None


class CatalogResolver:
    """Resolves accelerator names through a catalog: slugs, marketing and GFD product strings of one
    model (``nvidia-h100-80gb``, ``NVIDIA-H100-80GB-HBM3``, ``H100-SXM5-80GB``) all become its slug;
    a name the catalog does not know falls back to :func:`default_normalize`.

    It is what :class:`~budcore.scheduling.assignment.AcceleratorMatcher` takes as ``normalize``
    (its default: this resolver over the built-in catalog, loaded on first use). Pass
    ``CatalogResolver(load_catalog("site.yaml"))`` to resolve through a catalog with overrides.

    Results are memoized: the admission cycle asks for the same few names over and over. The memo
    is the only state it keeps, and it never changes an answer (the catalog is immutable).
    """

    __slots__ = ("_catalog", "_memo")

    def __init__(self, catalog: Catalog | None = None) -> None:
        self._catalog = catalog
        self._memo: dict[str, str | None] = {}

    def __call__(self, value: str) -> str | None:
        memo = self._memo
        if value in memo:
            return memo[value]
        catalog = self._catalog
        if catalog is None:
            catalog = self._catalog = default_catalog()
        entry = catalog.get(value) or catalog.resolve(value)
        result = entry.slug if entry is not None else default_normalize(value)
        memo[value] = result
        return result
