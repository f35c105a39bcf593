"""Matching workloads to hardware profiles, and ranked recommendations with time and cost.

``match`` answers "where should this model run?": a hard filter (per-device memory, device count,
vendor, architecture, allowed types, whole GPU vs MIG slice, shared or not), then a ranking
(available first, preferred type/architecture, throughput, price), then — when the preferred
profile is busy — a fallback with the design's warning ("Deployed to A100 instead of preferred
H200 - performance may be lower (75 vs 120 tokens/sec)"). When nothing passes the filter the error
says precisely what was needed and what exists ("Model requires 80GB+ GPU; available profiles:
V100 (16GB). Please provision appropriate hardware."). ``strict`` never substitutes a type.

``recommend`` prices every feasible profile for a training or serving job: estimated time
(6·P·T / (GPUs × peak × MFU)), cost from the price book, and whether it meets a deadline.

Accelerator names in a requirement (``accelerators``, ``preferred_accelerators``, the keys of
``throughput_hints``) go through the catalog like everywhere else in ``hardware``: ``H100``,
``H100-SXM5-80GB`` and ``nvidia-h100-80gb`` are one type. A name the catalog cannot resolve (and
no profile carries verbatim) is an error listing the close matches, never a silent no-op; so are
unknown ``vendors`` and ``architectures``.

Long because the hard filter, the ranking and the recommendation share one requirement model and
the error messages that cite it; each function is short.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from budcore.domain.errors import BudcoreError, ValidationError
from budcore.domain.validation import validate_model
from budcore.hardware.catalog import Accelerator, Catalog, default_catalog, normalize_product
from budcore.hardware.estimate import (
    DEFAULT_GPU_MEMORY_UTILIZATION,
    GIB,
    MAX_GPU_MEMORY_UTILIZATION,
    MIN_GPU_MEMORY_UTILIZATION,
    MfuTable,
    Parallelism,
    ServingSpec,
    TrainingSpec,
    decode_tokens_per_second,
    min_shards,
    plan_parallelism,
    serving_bytes_per_gpu,
    training_bytes_per_gpu,
    training_seconds,
)
from budcore.hardware.profiles import HardwareProfile
from budcore.ports.pricing import PricingSource

_FROZEN = ConfigDict(frozen=True, extra="forbid")

Task = Literal["serve", "train"]

_VENDOR_NAMES = {"nvidia": "NVIDIA", "amd": "AMD", "intel": "Intel"}


class NoCompatibleHardwareError(BudcoreError):
    """No hardware profile satisfies a workload's hard requirements."""

    def __init__(self, message: str, rejected: Mapping[str, str] | None = None) -> None:
        self.rejected = dict(rejected or {})
        super().__init__(message)


class Requirement(BaseModel):
    """What a workload needs (hard) and would like (soft).

    Memory per device is either given (``min_memory_gib``, e.g. a model catalog's "80GB+") or
    derived from ``serving``/``training`` and the parallel layout each profile allows.
    """

    model_config = _FROZEN

    model_name: str = "Model"
    task: Task = "serve"
    min_memory_gib: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    serving: ServingSpec | None = None
    training: TrainingSpec | None = None
    gpus: int | None = Field(default=None, ge=1)  # fixed device count; None: the fewest that fit
    tensor_parallel: int | None = Field(default=None, ge=1)
    pipeline_parallel: int = Field(default=1, ge=1)
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION
    vendors: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()
    accelerators: tuple[str, ...] = ()  # allow-list of slugs
    preferred_accelerators: tuple[str, ...] = ()
    preferred_architectures: tuple[str, ...] = ()
    allow_mig: bool = False
    allow_shared: bool = False
    strict: bool = False  # run only on a preferred type (wait rather than substitute)
    # slug -> measured tokens/s
    throughput_hints: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(
        default_factory=dict
    )
    deadline: timedelta | None = None
    # how long a serving job runs (for cost)
    serve_hours: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    tier: str | None = None
    qos: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Requirement:
        if not MIN_GPU_MEMORY_UTILIZATION <= self.gpu_memory_utilization <= MAX_GPU_MEMORY_UTILIZATION:
            raise ValueError(
                f"gpu_memory_utilization {self.gpu_memory_utilization} must be within "
                f"[{MIN_GPU_MEMORY_UTILIZATION}, {MAX_GPU_MEMORY_UTILIZATION}]"
            )
        if self.gpus is not None and self.tensor_parallel is not None:
            Parallelism(
                gpus=self.gpus,
                tensor_parallel=self.tensor_parallel,
                pipeline_parallel=self.pipeline_parallel,
                gpu_memory_utilization=self.gpu_memory_utilization,
            )
        if self.strict and not (self.preferred_accelerators or self.preferred_architectures):
            raise ValueError(
                "strict needs preferred_accelerators or preferred_architectures to be strict about"
            )
        if self.task == "train" and self.training is None and self.min_memory_gib is None:
            raise ValueError("a training requirement needs 'training' (params, tokens) or 'min_memory_gib'")
        if self.deadline is not None and self.deadline <= timedelta(0):
            raise ValidationError(f"must be positive, got {self.deadline}", path="deadline")
        return self


class Placement(BaseModel):
    """How a requirement lands on one profile: devices, layout, per-device memory, throughput."""

    model_config = _FROZEN

    profile: HardwareProfile
    accelerator: str | None  # the type it is evaluated on (the weakest, for multi-type profiles)
    gpus: int
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    memory_per_gpu_gib: float | None = None
    tokens_per_second: float | None = None
    hourly_price: Decimal | None = None  # for all ``gpus``

    @property
    def short_name(self) -> str:
        return self.profile.display_name


class MatchResult(BaseModel):
    model_config = _FROZEN

    placement: Placement
    candidates: tuple[Placement, ...]  # every feasible profile, best first
    warnings: tuple[str, ...] = ()
    substituted: bool = False  # fell back from a preferred type that is busy


def _short(profile: HardwareProfile, catalog: Catalog) -> str:
    specs = profile.specs(catalog)
    if not specs:
        return profile.display_name
    names = list(dict.fromkeys(a.short_name for a in specs))
    return "/".join(names) + (f" MIG {profile.mig_profile}" if profile.mig_profile else "")


def _fmt_gib(value: float) -> str:
    return f"{value:g}GB" if value == int(value) else f"{value:.1f}GB"


def _weakest(profile: HardwareProfile, catalog: Catalog) -> Accelerator | None:
    """The type a multi-type profile must be judged by: least memory, then least bandwidth."""
    specs = profile.specs(catalog)
    if not specs:
        return None
    return min(specs, key=lambda a: (a.device_memory_gib, a.device_bandwidth_gbs, a.slug))


def _capacity(profile: HardwareProfile) -> int:
    if profile.total_devices:
        return profile.total_devices
    return profile.gpus_per_node * max(1, len(profile.node_names))


def _needed_bytes(req: Requirement) -> tuple[float, bool] | None:
    """(bytes to place, shard-able?) from the workload spec, or None when only min memory is given."""
    if req.task == "train" and req.training is not None:
        return req.training.state_bytes, True
    if req.serving is not None:
        return req.serving.total_bytes, True
    return None


def _place(req: Requirement, profile: HardwareProfile, catalog: Catalog) -> tuple[Placement | None, str]:
    """The placement on ``profile`` or the reason it is rejected (hard filter)."""
    specs = profile.specs(catalog)
    if profile.generic:
        if req.vendors or req.architectures or req.accelerators or req.strict:
            return None, "generic profile has no accelerator type"
    elif len(specs) != len(profile.accelerators) and (
        req.vendors or req.architectures or req.accelerators or req.strict
    ):
        return None, "accelerator type not in the catalog"
    if req.vendors and any(a.vendor not in req.vendors for a in specs):
        return None, f"vendor not in {', '.join(req.vendors)}"
    if req.architectures and any(a.architecture not in req.architectures for a in specs):
        return None, f"architecture not in {', '.join(req.architectures)}"
    if req.accelerators and any(slug not in req.accelerators for slug in profile.accelerators):
        return None, "accelerator type not allowed"
    if req.strict and not _preferred(req, profile, catalog):
        return None, "not a preferred type (strict)"
    if profile.mig_profile and not req.allow_mig:
        return None, f"MIG slice {profile.mig_profile} is not a whole GPU"
    if profile.shared and not req.allow_shared:
        return None, "GPUs are shared (time-slicing/MPS)"

    memory = profile.device_memory_gib(catalog)
    capacity = _capacity(profile)
    util = req.gpu_memory_utilization
    weakest = _weakest(profile, catalog)
    if req.min_memory_gib is not None:
        if memory is None:
            return None, "GPU memory unknown"
        if memory + 1e-9 < req.min_memory_gib:
            return None, f"{_fmt_gib(memory)} per GPU < {_fmt_gib(req.min_memory_gib)}"

    need = _needed_bytes(req)
    gpus = req.gpus or 1
    tp, pp = req.tensor_parallel or 1, req.pipeline_parallel
    per_gpu_gib: float | None = None
    if need is not None:
        if memory is None:
            return None, "GPU memory unknown"
        total_bytes = need[0]
        if req.tensor_parallel is not None:
            layout = Parallelism(
                gpus=gpus if req.gpus else tp * pp,
                tensor_parallel=tp,
                pipeline_parallel=pp,
                gpu_memory_utilization=util,
            )
        else:
            shards = min_shards(total_bytes, memory, util)
            planned = plan_parallelism(shards, max(profile.gpus_per_node, 1), gpus=req.gpus, utilization=util)
            if planned is None:
                return None, f"needs {shards} GPUs of {_fmt_gib(memory)}; layout does not fit {gpus} GPUs"
            layout = planned
        if req.task == "train" and req.training is not None:
            per_gpu = training_bytes_per_gpu(req.training, layout)
        elif req.serving is not None:
            per_gpu = serving_bytes_per_gpu(req.serving, layout)
        else:  # pragma: no cover - _needed_bytes returned None otherwise
            per_gpu = 0.0
        per_gpu_gib = per_gpu / GIB
        if per_gpu > memory * GIB * util:
            return None, f"needs {per_gpu_gib:.1f}GB per GPU, {_fmt_gib(memory)} × {util:g} usable"
        gpus, tp, pp = layout.gpus, layout.tensor_parallel, layout.pipeline_parallel
        if tp > max(profile.gpus_per_node, 1):
            return None, f"tensor parallel {tp} exceeds {profile.gpus_per_node} GPUs per node"
    if gpus > capacity:
        return None, f"needs {gpus} GPUs, profile has {capacity}"

    throughput = _throughput(req, profile, weakest, gpus)
    return (
        Placement(
            profile=profile,
            accelerator=weakest.slug if weakest else None,
            gpus=gpus,
            tensor_parallel=tp,
            pipeline_parallel=pp,
            memory_per_gpu_gib=per_gpu_gib,
            tokens_per_second=throughput,
        ),
        "",
    )


def _throughput(
    req: Requirement, profile: HardwareProfile, weakest: Accelerator | None, gpus: int
) -> float | None:
    hints = [req.throughput_hints[s] for s in profile.accelerators if s in req.throughput_hints]
    if hints:
        return min(hints)
    if req.serving is not None and weakest is not None:
        return decode_tokens_per_second(req.serving, weakest, gpus)
    return None


def _preferred(req: Requirement, profile: HardwareProfile, catalog: Catalog) -> bool:
    if not profile.accelerators:
        return False
    if req.preferred_accelerators and all(s in req.preferred_accelerators for s in profile.accelerators):
        return True
    specs = profile.specs(catalog)
    return bool(
        req.preferred_architectures
        and specs
        and len(specs) == len(profile.accelerators)
        and all(a.architecture in req.preferred_architectures for a in specs)
    )


def _price(placement: Placement, prices: PricingSource | None, tier: str | None) -> Decimal | None:
    if prices is None or not placement.profile.accelerators:
        return None
    per_device: list[Decimal] = []
    for slug in placement.profile.accelerators:
        name = f"{slug}-mig-{placement.profile.mig_profile}" if placement.profile.mig_profile else slug
        price = prices.hourly_price(name, tier or "on-demand")
        if price is None:
            return None
        per_device.append(price)
    return max(per_device) * placement.gpus  # a multi-type profile may land on its dearest type


def _requirement_phrase(req: Requirement, rejected: Mapping[str, str]) -> str:
    parts: list[str] = []
    if req.gpus and req.gpus > 1:
        parts.append(f"{req.gpus}x")
    memory = req.min_memory_gib
    if memory is None:
        # The least any GPU must hold: the model sharded over every GPU it may use.
        shards = (
            (req.tensor_parallel or 1) * req.pipeline_parallel if req.tensor_parallel else (req.gpus or 1)
        )
        layout = Parallelism(
            gpus=shards, tensor_parallel=shards, gpu_memory_utilization=req.gpu_memory_utilization
        )
        per_gpu: float | None = None
        if req.task == "train" and req.training is not None:
            per_gpu = training_bytes_per_gpu(req.training, layout)
        elif req.serving is not None:
            per_gpu = serving_bytes_per_gpu(req.serving, layout)
        if per_gpu is not None:
            memory = per_gpu / GIB / req.gpu_memory_utilization
    if memory is not None:
        parts.append(f"{math.ceil(memory - 1e-9)}GB+")
    if req.strict:
        parts.append("/".join(req.preferred_accelerators or req.preferred_architectures))
    else:
        if req.vendors:
            parts.append("/".join(_VENDOR_NAMES.get(v, v) for v in req.vendors))
        if req.architectures:
            parts.append("/".join(a.capitalize() for a in req.architectures))
        if req.accelerators:
            parts.append("/".join(req.accelerators))
    if not req.allow_mig and any("MIG" in r for r in rejected.values()):
        parts.append("whole")
    return " ".join([*parts, "GPU"])


def _no_match_error(
    req: Requirement, profiles: Sequence[HardwareProfile], rejected: Mapping[str, str], catalog: Catalog
) -> NoCompatibleHardwareError:
    listed = []
    for profile in profiles:
        memory = profile.device_memory_gib(catalog)
        size = _fmt_gib(memory) if memory is not None else "memory unknown"
        listed.append(f"{_short(profile, catalog)} ({size})")
    available = ", ".join(listed) if listed else "none"
    message = (
        f"{req.model_name} requires {_requirement_phrase(req, rejected)}; available profiles: {available}. "
        "Please provision appropriate hardware."
    )
    return NoCompatibleHardwareError(message, rejected)


def _fmt_rate(value: float) -> str:
    return f"{value:.0f}"


def _suggestions(name: str, choices: Mapping[str, str]) -> list[str]:
    """Canonical names close to ``name`` (``choices`` maps each spelling to its canonical name)."""
    close = difflib.get_close_matches(name, list(choices), n=10, cutoff=0.6)
    return list(dict.fromkeys(choices[c] for c in close))


def _unknown(kind: str, name: str, path: str, suggestions: Sequence[str], fallback: str) -> ValidationError:
    hint = f"did you mean {', '.join(suggestions[:5])}?" if suggestions else fallback
    return ValidationError(f"unknown {kind} {name!r}; {hint}", path=path)


def resolve_accelerator(
    name: str, catalog: Catalog, *, path: str = "accelerators", known: Iterable[str] = ()
) -> str:
    """The catalog slug ``name`` denotes (slug, display name or alias, via :meth:`Catalog.resolve`).

    ``known`` are slugs accepted verbatim (types on profiles that the catalog does not list).
    Anything else raises :class:`ValidationError` at ``path``: an ambiguous family name (``A100``)
    lists its members, an unknown one the closest catalog names.
    """
    known = set(known)
    if catalog.get(name) is not None or name in known:
        return name
    accel = catalog.resolve(name)
    if accel is not None:
        return accel.slug
    key = normalize_product(name)
    family = [
        a.slug
        for a in catalog.accelerators
        if key and f"-{key}-" in f"-{normalize_product(a.display_name)}-{normalize_product(a.slug)}-"
    ]
    if len(family) > 1:
        raise ValidationError(
            f"accelerator {name!r} is ambiguous: it matches {', '.join(family)}; name one (or several)",
            path=path,
        )
    spellings: dict[str, str] = {}
    for a in catalog.accelerators:
        for spelling in (a.slug, a.display_name, a.short_name, *a.aliases):
            spellings.setdefault(normalize_product(spelling), a.slug)
    for slug in sorted(known):
        spellings.setdefault(normalize_product(slug), slug)
    suggestions = list(dict.fromkeys([*family, *_suggestions(key, spellings)]))
    raise _unknown("accelerator", name, path, suggestions, "`budcore hardware catalog` lists the known types")


def _resolve_word(kind: str, name: str, vocabulary: Iterable[str], path: str) -> str:
    """``name`` lower-cased if it is in ``vocabulary`` (vendors, architectures), else an error."""
    words = sorted(set(vocabulary))
    if name.lower() in words:
        return name.lower()
    suggestions = _suggestions(name.lower(), {w: w for w in words})
    raise _unknown(kind, name, path, suggestions, f"known: {', '.join(words)}")


def resolve_requirement(
    req: Requirement, catalog: Catalog, profiles: Sequence[HardwareProfile] = ()
) -> Requirement:
    """``req``, re-validated, with every accelerator, vendor and architecture name in catalog form.

    Raises :class:`ValidationError` naming the field for a name that denotes nothing (see the
    module docstring) or any other invalid value. Idempotent; :func:`match` and :func:`recommend`
    call it.
    """
    known = {slug for p in profiles for slug in p.accelerators}

    def slugs(names: Sequence[str], path: str) -> tuple[str, ...]:
        out = [resolve_accelerator(n, catalog, path=f"{path}[{i}]", known=known) for i, n in enumerate(names)]
        return tuple(dict.fromkeys(out))

    vendors = {a.vendor for a in catalog.accelerators}
    architectures = {a.architecture for a in catalog.accelerators}
    hints: dict[str, float] = {}
    for name, rate in req.throughput_hints.items():
        slug = resolve_accelerator(name, catalog, path=f"throughput_hints.{name}", known=known)
        hints[slug] = min(rate, hints.get(slug, rate))
    update = {
        "accelerators": slugs(req.accelerators, "accelerators"),
        "preferred_accelerators": slugs(req.preferred_accelerators, "preferred_accelerators"),
        "throughput_hints": hints,
        "vendors": tuple(
            dict.fromkeys(
                _resolve_word("vendor", v, vendors, f"vendors[{i}]") for i, v in enumerate(req.vendors)
            )
        ),
        "architectures": tuple(
            dict.fromkeys(
                _resolve_word("architecture", a, architectures, f"architectures[{i}]")
                for i, a in enumerate(req.architectures)
            )
        ),
        "preferred_architectures": tuple(
            dict.fromkeys(
                _resolve_word("architecture", a, architectures, f"preferred_architectures[{i}]")
                for i, a in enumerate(req.preferred_architectures)
            )
        ),
    }
    # Re-validated from a dump, so a requirement built with ``model_copy(update=…)`` (which skips
    # validation) cannot smuggle an infinite size or a bad layout into the estimates.
    return validate_model(Requirement, {**req.model_dump(), **update})


def feasible_placements(
    req: Requirement,
    profiles: Sequence[HardwareProfile],
    *,
    catalog: Catalog | None = None,
    prices: PricingSource | None = None,
) -> tuple[list[Placement], dict[str, str]]:
    """Every profile that passes the hard filter (with its placement), and why the others did not.

    ``req`` should be resolved (:func:`resolve_requirement`); :func:`match` and :func:`recommend` do.
    """
    catalog = catalog or default_catalog()
    placements: list[Placement] = []
    rejected: dict[str, str] = {}
    for profile in profiles:
        placement, reason = _place(req, profile, catalog)
        if placement is None:
            rejected[profile.name] = reason
            continue
        placements.append(placement.model_copy(update={"hourly_price": _price(placement, prices, req.tier)}))
    return placements, rejected


def _rank_key(
    req: Requirement, placement: Placement, catalog: Catalog
) -> tuple[bool, bool, float, Decimal, str]:
    price = placement.hourly_price if placement.hourly_price is not None else Decimal("Infinity")
    rate = placement.tokens_per_second or 0.0
    return (
        not placement.profile.is_available,
        not _preferred(req, placement.profile, catalog),
        -rate,
        price,
        placement.profile.name,
    )


def match(
    requirement: Requirement,
    profiles: Sequence[HardwareProfile],
    *,
    catalog: Catalog | None = None,
    prices: PricingSource | None = None,
) -> MatchResult:
    """The best profile for ``requirement`` (see the module docstring for the rules).

    Raises :class:`NoCompatibleHardwareError` when no profile passes the hard filter. In strict
    mode only preferred types pass; if they are all busy the result is the best of them anyway
    (the workload waits) with a warning, never another type.
    """
    catalog = catalog or default_catalog()
    requirement = resolve_requirement(requirement, catalog, profiles)
    placements, rejected = feasible_placements(requirement, profiles, catalog=catalog, prices=prices)
    if not placements:
        raise _no_match_error(requirement, profiles, rejected, catalog)
    ranked = sorted(placements, key=lambda p: _rank_key(requirement, p, catalog))
    best = ranked[0]
    warnings: list[str] = []
    substituted = False
    preferred = [p for p in ranked if _preferred(requirement, p.profile, catalog)]
    if preferred and not _preferred(requirement, best.profile, catalog):
        wanted = preferred[0]
        substituted = True
        got, want = _short(best.profile, catalog), _short(wanted.profile, catalog)
        message = f"Deployed to {got} instead of preferred {want}"
        if (
            best.tokens_per_second is not None
            and wanted.tokens_per_second is not None
            and best.tokens_per_second < wanted.tokens_per_second
        ):
            message += (
                f" - performance may be lower ({_fmt_rate(best.tokens_per_second)} vs "
                f"{_fmt_rate(wanted.tokens_per_second)} tokens/sec)"
            )
        warnings.append(message)
    if not best.profile.is_available:
        warnings.append(
            f"No compatible profile has free GPUs; {_short(best.profile, catalog)} "
            "is the best and the workload will wait"
        )
    return MatchResult(
        placement=best, candidates=tuple(ranked), warnings=tuple(warnings), substituted=substituted
    )


# --------------------------------------------------------------------------------------------------
# Recommendations


DEFAULT_TIME_RESOLUTION = timedelta(minutes=6)


class Recommendation(BaseModel):
    """One row of a recommendation table."""

    model_config = _FROZEN

    profile: str
    label: str
    accelerator: str | None
    gpus: int
    estimated_hours: Decimal | None  # rounded up to the time resolution
    hourly_price: Decimal | None  # all GPUs of the placement
    estimated_cost: Decimal | None
    tokens_per_second: float | None = None
    feasible_by_deadline: bool | None = None  # None: no deadline or no estimate
    recommended: bool = False
    note: str = ""


def _round_hours(seconds: float, resolution: timedelta) -> Decimal:
    """Hours rounded *up* to the resolution: an estimate is not more precise than that, and the
    shown time × shown price must equal the shown cost (as in the design's table)."""
    step = Decimal(resolution // timedelta(microseconds=1)) / Decimal(3_600_000_000)
    hours = Decimal(repr(seconds)) / 3600
    return (hours / step).to_integral_value(rounding=ROUND_CEILING) * step


def recommend(
    requirement: Requirement,
    profiles: Sequence[HardwareProfile],
    prices: PricingSource | None,
    *,
    catalog: Catalog | None = None,
    mfu: MfuTable | None = None,
    time_resolution: timedelta = DEFAULT_TIME_RESOLUTION,
) -> list[Recommendation]:
    """A ranked table over every feasible profile.

    Training rows carry the estimated time (``6·P·T / (GPUs × peak × MFU)``, rounded up to
    ``time_resolution``) and its cost (hours × hourly price × GPUs); serving rows carry the
    throughput bound and, when ``serve_hours`` is set, the cost of running that long. Ranking:
    meets the deadline, then misses it, then no time estimate (unknown never outranks known);
    within each, cheapest, then fastest; unpriced rows last. The first row is marked recommended
    (with a note when it misses the deadline) — except for training under a deadline when no row
    has a time estimate, where no row is. Raises :class:`NoCompatibleHardwareError` when nothing fits, and
    :class:`ValidationError` for an accelerator, vendor or architecture name that denotes nothing.
    """
    catalog = catalog or default_catalog()
    if time_resolution <= timedelta(0):
        raise ValidationError("must be positive", path="time_resolution")
    requirement = resolve_requirement(requirement, catalog, profiles)
    placements, rejected = feasible_placements(requirement, profiles, catalog=catalog, prices=prices)
    if not placements:
        raise _no_match_error(requirement, profiles, rejected, catalog)
    rows: list[Recommendation] = []
    for placement in placements:
        accel = catalog.get(placement.accelerator) if placement.accelerator else None
        hours: Decimal | None = None
        note = ""
        if requirement.task == "train" and requirement.training is not None:
            seconds = training_seconds(requirement.training, accel, placement.gpus, mfu) if accel else None
            if seconds is None:
                note = "no peak-throughput figure for this accelerator; no time estimate"
            else:
                hours = _round_hours(seconds, time_resolution)
        elif requirement.serve_hours is not None:
            hours = Decimal(repr(requirement.serve_hours))
        cost = (
            hours * placement.hourly_price
            if hours is not None and placement.hourly_price is not None
            else None
        )
        if placement.hourly_price is None and prices is not None:
            note = (note + "; " if note else "") + "no price in the price book"
        feasible: bool | None = None
        if requirement.deadline is not None and hours is not None:
            feasible = hours * 3600 <= Decimal(requirement.deadline // timedelta(microseconds=1)) / 1_000_000
        rows.append(
            Recommendation(
                profile=placement.profile.name,
                label=placement.profile.label(catalog),
                accelerator=placement.accelerator,
                gpus=placement.gpus,
                estimated_hours=hours,
                hourly_price=placement.hourly_price,
                estimated_cost=cost,
                tokens_per_second=placement.tokens_per_second,
                feasible_by_deadline=feasible,
                note=note,
            )
        )

    inf = Decimal("Infinity")

    def cost_of(row: Recommendation) -> Decimal:
        if row.estimated_cost is not None:
            return row.estimated_cost
        if requirement.task == "serve" and row.estimated_hours is None and row.hourly_price is not None:
            return row.hourly_price  # serving with no duration: rank by price per hour
        return inf

    # With a deadline: rows that meet it, then rows known to miss it, then rows with no time
    # estimate at all. An unknown is never ranked (or recommended) above a known answer, and "no
    # estimate" never counts as meeting the deadline.
    deadline_rank = {True: 0, False: 1, None: 2}

    def key(row: Recommendation) -> tuple[int, bool, Decimal, Decimal, float, str]:
        cost = cost_of(row)
        return (
            deadline_rank[row.feasible_by_deadline] if requirement.deadline is not None else 0,
            cost == inf,
            cost,
            row.estimated_hours if row.estimated_hours is not None else inf,
            -(row.tokens_per_second or 0.0),
            row.profile,
        )

    rows.sort(key=key)
    top = rows[0]
    if requirement.deadline is not None and requirement.task == "train":
        if top.feasible_by_deadline is None:
            return rows  # no profile has a time estimate: nothing to recommend against a deadline
        if top.feasible_by_deadline is False:
            note = "no profile meets the deadline"
            top = top.model_copy(update={"note": f"{note}; {top.note}" if top.note else note})
    rows[0] = top.model_copy(update={"recommended": True})
    return rows
