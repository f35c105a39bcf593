"""User-supplied accelerator specs: models the built-in catalog lacks, in a short form.

A trace or a fleet can name models budcore cannot know: Alibaba's openb GPU trace has undisclosed
``G1``, ``G2`` and ``G3`` next to ``P100``, ``T4``, ``V100M16``, ``V100M32`` and ``A10``. A user who
knows (or assumes) what they are describes them here, and :meth:`Catalog.with_extra
<budcore.catalog.Catalog.with_extra>` adds them to a catalog; from then on they resolve, group into
hardware profiles and are estimated like any built-in model.

The short form needs a name, the memory per device and its bandwidth; everything else has a
default (vendor and architecture ``unknown``, resource ``nvidia.com/gpu``, PCIe form factor, no
throughput figures, so estimates that need one report "no estimate" rather than invent it)::

    accelerators:              # or a bare list of entries
      - name: G1               # how the trace or the node labels spell it; becomes an alias
        memory_gib: 24
        memory_bandwidth_gbs: 600
        bf16_tflops: 125       # optional: bf16_tflops, fp16_tflops, fp8_tflops
        vendor: nvidia         # optional: slug, display_name, short_name, vendor, architecture,
        aliases: [G1-24GB]     #   form_factor, interconnect, logical_devices, resource_name,
                               #   aliases, pci_vendor, pci_device_ids, mig_profiles, source

The slug defaults to the name in lower case (``G1`` → ``g1``). A spec may only *add* a model: a
name, slug or alias that already denotes a catalog entry is an error (a site that wants to change a
built-in entry merges an override file with :func:`~budcore.catalog.load_catalog`). Every error is
one line naming the file, the line and the field (``specs.yaml:7: accelerators[1].memory_gib: ...``).

:func:`accelerator_specs` validates data already read (a section of a larger YAML document: pass its
``line_of`` and ``prefix``), :func:`parse_accelerator_specs` a YAML string and
:func:`load_accelerator_specs` a file. :func:`catalog_with_specs` is the one-call form.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from budcore.config.yamlsource import load_yaml_text
from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.domain.resources import check_resource_name
from budcore.domain.validation import validate_model
from budcore.hardware.catalog import (
    MAX_BANDWIDTH_GBS,
    MAX_LOGICAL_DEVICES,
    MAX_MEMORY_GIB,
    MAX_TFLOPS,
    Accelerator,
    Catalog,
    Citation,
    Interconnect,
    MigProfile,
    default_catalog,
    normalize_product,
)

__all__ = [
    "MAX_SPECS",
    "AcceleratorSpec",
    "accelerator_specs",
    "catalog_with_specs",
    "load_accelerator_specs",
    "parse_accelerator_specs",
]

LineLookup = Callable[[str], int | None]

# More user-described models than any fleet has; a file beyond it is a mistake (or an attack).
MAX_SPECS = 1_000
_MAX_NAME = 100
_MAX_FILE_BYTES = 4 * 2**20
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _name_check(value: str, what: str) -> str:
    text = value.strip()
    if not text:
        raise ValueError(f"{what} must not be empty")
    if len(text) > _MAX_NAME:
        raise ValueError(f"{what} is longer than {_MAX_NAME} characters")
    if _CONTROL.search(text):
        raise ValueError(f"{what} contains a control character")
    if not re.search(r"[A-Za-z0-9]", normalize_product(text)):
        raise ValueError(f"{what} {text!r} has no letters or digits")
    return text


def _slug_of(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


class AcceleratorSpec(BaseModel):
    """One user-described model in the short form; :meth:`to_accelerator` makes the catalog entry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    slug: str | None = None
    display_name: str | None = None
    short_name: str | None = None
    vendor: str = Field(default="unknown", pattern=r"^[a-z][a-z0-9-]*$", max_length=40)
    architecture: str = Field(default="unknown", pattern=r"^[a-z][a-z0-9-]*$", max_length=40)
    memory_gib: float = Field(gt=0, le=MAX_MEMORY_GIB, allow_inf_nan=False)
    memory_bandwidth_gbs: float = Field(gt=0, le=MAX_BANDWIDTH_GBS, allow_inf_nan=False)
    bf16_tflops: float | None = Field(default=None, gt=0, le=MAX_TFLOPS, allow_inf_nan=False)
    fp16_tflops: float | None = Field(default=None, gt=0, le=MAX_TFLOPS, allow_inf_nan=False)
    fp8_tflops: float | None = Field(default=None, gt=0, le=MAX_TFLOPS, allow_inf_nan=False)
    form_factor: str = Field(default="pcie", min_length=1, max_length=40)
    interconnect: Interconnect | None = None
    logical_devices: int = Field(default=1, ge=1, le=MAX_LOGICAL_DEVICES)
    resource_name: str = "nvidia.com/gpu"
    aliases: tuple[str, ...] = Field(default=(), max_length=50)
    pci_vendor: str | None = None
    pci_device_ids: tuple[str, ...] = Field(default=(), max_length=50)
    mig_profiles: tuple[MigProfile, ...] = Field(default=(), max_length=20)
    source: Citation | None = None

    @field_validator(
        "memory_gib",
        "memory_bandwidth_gbs",
        "bf16_tflops",
        "fp16_tflops",
        "fp8_tflops",
        "logical_devices",
        mode="before",
    )
    @classmethod
    def _no_booleans(cls, value: Any) -> Any:
        if isinstance(value, bool):  # YAML's yes/true would otherwise be the number 1
            raise ValueError(f"expected a number, got the boolean {value!r}")
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return _name_check(value, "name")

    @field_validator("display_name", "short_name")
    @classmethod
    def _check_label(cls, value: str | None) -> str | None:
        return None if value is None else _name_check(value, "name")

    @field_validator("aliases")
    @classmethod
    def _check_aliases(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_name_check(alias, "alias") for alias in value)

    @field_validator("resource_name")
    @classmethod
    def _check_resource(cls, value: str) -> str:
        try:
            return check_resource_name(value)
        except ValidationError as exc:
            raise ValueError(exc.message) from None

    @property
    def all_aliases(self) -> tuple[str, ...]:
        """The catalog entry's aliases: the name first, then the declared aliases."""
        return tuple(dict.fromkeys((self.name, *self.aliases)))

    def to_accelerator(self, where: str = "") -> Accelerator:
        """The catalog entry; ``where`` (``file:line``) goes into the citation when none is given.
        Raises pydantic's error if the entry is invalid (:func:`accelerator_specs` reports it with
        its path instead)."""
        return Accelerator.model_validate(self.accelerator_fields(where))

    def accelerator_fields(self, where: str = "") -> dict[str, Any]:
        """The catalog entry's fields (what :meth:`to_accelerator` validates)."""
        source = self.source or Citation(
            title="user-supplied specification" + (f" ({where})" if where else "")
        )
        return dict(
            slug=self.slug if self.slug is not None else _slug_of(self.name),
            display_name=self.display_name or self.name,
            short_name=self.short_name or self.name,
            vendor=self.vendor,
            architecture=self.architecture,
            memory_gib=self.memory_gib,
            memory_bandwidth_gbs=self.memory_bandwidth_gbs,
            bf16_tflops=self.bf16_tflops,
            fp16_tflops=self.fp16_tflops,
            fp8_tflops=self.fp8_tflops,
            form_factor=self.form_factor,
            interconnect=self.interconnect or Interconnect(kind="pcie"),
            logical_devices=self.logical_devices,
            resource_name=self.resource_name,
            pci_vendor=self.pci_vendor,
            pci_device_ids=self.pci_device_ids,
            aliases=self.all_aliases,
            mig_profiles=self.mig_profiles,
            source=source,
        )


def _entries(data: Any, prefix: str, source: str | None, line_of: LineLookup | None) -> tuple[list[Any], str]:
    """The list of entries and the path prefix they sit under."""

    def error(message: str, path: str) -> ValidationError:
        return ValidationError(message, path=path, source=source, line=line_of(path) if line_of else None)

    if isinstance(data, Mapping):
        unknown = sorted(str(k) for k in data if k != "accelerators")
        if unknown:
            raise error("unknown field (a specs file holds 'accelerators: [...]')", _join(prefix, unknown[0]))
        if "accelerators" not in data:
            raise error("expected 'accelerators: [...]', a list of accelerator specs", prefix)
        prefix = _join(prefix, "accelerators")
        data = data["accelerators"]
    if not isinstance(data, list):
        raise error(f"expected a list of accelerator specs, got {type(data).__name__}", prefix)
    if not data:
        raise error(
            "no accelerator specs: give at least one (name, memory_gib, memory_bandwidth_gbs)", prefix
        )
    if len(data) > MAX_SPECS:
        raise error(f"{len(data)} accelerator specs; at most {MAX_SPECS} are accepted", prefix)
    return data, prefix


def _join(prefix: str, field: str) -> str:
    return f"{prefix}.{field}" if prefix else field


def accelerator_specs(
    data: Any,
    *,
    source: str | None = None,
    line_of: LineLookup | None = None,
    prefix: str = "",
    catalog: Catalog | None = None,
) -> tuple[Accelerator, ...]:
    """Validate user specs already read from YAML: a list of entries or ``{accelerators: [...]}``.

    ``prefix`` is where the data sits in a larger document (``fleet.accelerators``) and ``line_of``
    maps a field path to its line, so errors point into the user's file. Every entry is checked and
    all problems are raised together; entries that would rename a model of ``catalog`` (default: the
    built-in one) are errors too. Returns catalog entries ready for :meth:`Catalog.with_extra`.
    """
    catalog = catalog or default_catalog()
    entries, prefix = _entries(data, prefix, source, line_of)
    errors: list[ValidationError] = []
    specs: list[AcceleratorSpec] = []
    accelerators: list[Accelerator] = []
    for i, entry in enumerate(entries):
        at = f"{prefix}[{i}]"
        try:
            if not isinstance(entry, Mapping):
                raise ValidationError(f"expected a mapping, got {type(entry).__name__}", path=at)
            spec = validate_model(AcceleratorSpec, entry, prefix=at, source=source, line_of=line_of)
            line = line_of(at) if line_of else None
            where = ":".join(str(p) for p in (source, line) if p)
            accel = validate_model(
                Accelerator, spec.accelerator_fields(where), prefix=at, source=source, line_of=line_of
            )
        except ValidationErrors as exc:
            errors.extend(exc.errors)
            continue
        except ValidationError as exc:
            errors.append(
                ValidationError(
                    exc.message, path=exc.path, source=source, line=line_of(exc.path) if line_of else None
                )
            )
            continue
        specs.append(spec)
        accelerators.append(accel)
    if not errors:
        try:
            catalog.with_extra(accelerators)
        except ValidationError as exc:
            path = prefix + _spec_path(exc.path, specs)
            errors.append(
                ValidationError(
                    exc.message, path=path, source=source, line=line_of(path) if line_of else None
                )
            )
    if errors:
        raise ValidationErrors(errors)
    return tuple(accelerators)


def _spec_path(path: str, specs: Sequence[AcceleratorSpec]) -> str:
    """Where in the user's entry a :meth:`Catalog.with_extra` error path (``[i].aliases[j]``,
    ``[i].slug``) points: a derived slug or display name, and alias 0, come from ``name``."""
    match = re.match(r"^\[(\d+)\]\.(\w+)(?:\[(\d+)\])?$", path)
    if match is None:
        return path
    index, field = int(match.group(1)), match.group(2)
    spec = specs[index]
    at = f"[{index}]"
    if field == "aliases" and match.group(3) is not None:
        alias = spec.all_aliases[int(match.group(3))]
        if alias in spec.aliases:
            return f"{at}.aliases[{spec.aliases.index(alias)}]"
        return f"{at}.name"
    if getattr(spec, field, None) is None:
        return f"{at}.name"
    return path


def _text_of(raw: bytes, source: str) -> str:
    if not raw.strip():
        raise ValidationError("the file is empty: expected 'accelerators: [...]'", source=source)
    if b"\x00" in raw:
        raise ValidationError("not a text file (it contains NUL bytes)", source=source)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start}", source=source
        ) from None


def parse_accelerator_specs(
    text: str, source: str = "<specs>", *, catalog: Catalog | None = None
) -> tuple[Accelerator, ...]:
    """User specs from YAML text (one document); errors name ``source``, the line and the field."""
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise ValidationError("the file is empty: expected 'accelerators: [...]'", source=source)
    documents = load_yaml_text(text, source)
    if not documents:
        raise ValidationError("the file is empty: expected 'accelerators: [...]'", source=source)
    if len(documents) != 1:
        raise ValidationError(
            f"expected one YAML document with 'accelerators: [...]', found {len(documents)}", source=source
        )
    document = documents[0]
    return accelerator_specs(document.data, source=source, line_of=document.line_of, catalog=catalog)


def load_accelerator_specs(path: str | Path, *, catalog: Catalog | None = None) -> tuple[Accelerator, ...]:
    """User specs from a YAML file (see the module docstring for its shape)."""
    p = Path(path)
    try:
        with p.open("rb") as handle:
            raw = handle.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ValidationError(f"cannot read accelerator specs: {exc.strerror}", source=str(p)) from None
    if len(raw) > _MAX_FILE_BYTES:
        raise ValidationError(
            f"larger than {_MAX_FILE_BYTES // 2**20} MiB: not an accelerator specs file", source=str(p)
        )
    return parse_accelerator_specs(_text_of(raw, str(p)), str(p), catalog=catalog)


def catalog_with_specs(
    specs: str | Path | Sequence[Accelerator], *, catalog: Catalog | None = None
) -> Catalog:
    """``catalog`` (default: the built-in one) plus user specs, from a file or already loaded."""
    catalog = catalog or default_catalog()
    if isinstance(specs, (str, Path)):
        return catalog.with_extra(load_accelerator_specs(specs, catalog=catalog), source=Path(specs).name)
    return catalog.with_extra(specs)
