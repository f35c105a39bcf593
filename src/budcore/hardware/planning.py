"""Ranked multi-node training and serving recommendations over node shapes.

:mod:`~budcore.hardware.parallelism` and :mod:`~budcore.hardware.serving` plan one node shape (an
accelerator with its GPUs per node) at a time; this module runs them over every shape on offer —
the catalog's accelerators in what-if mode, the fleet's single-type profiles otherwise — prices
each plan from the price book, ranks them, and turns "nothing fits" into one actionable sentence
("no layout fits on up to 32 nodes: … try --max-nodes 64") instead of a table of rejections.

Training rows rank by deadline (met, then missed), then cost, then time; serving rows by cost per
million tokens at the requested rate, then fewest GPUs. Shapes that cannot run the job at all (no
bf16 on a T4, no peak figure for the precision) are reported as ``rejected`` with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_CEILING, Decimal

from pydantic import BaseModel, ConfigDict, Field

from budcore.domain.errors import BudcoreError
from budcore.hardware.catalog import Accelerator, Catalog
from budcore.hardware.estimate import DEFAULT_GPU_MEMORY_UTILIZATION, GIB, MfuTable
from budcore.hardware.parallelism import (
    DEFAULT_NETWORK_GBS,
    OPTIMIZER_BYTES,
    TRAIN_DTYPE_BYTES,
    TrainingJob,
    TrainingPlan,
    best_plan,
    check_gpu_count,
)
from budcore.hardware.profiles import HardwareProfile
from budcore.hardware.serving import ServingJob, ServingPlan, plan_serving
from budcore.ports.pricing import PricingSource

_FROZEN = ConfigDict(frozen=True, extra="forbid")

MAX_SUGGESTED_NODES = 4096  # how far "try --max-nodes N" looks before saying nothing fits at all


class NoLayoutFitsError(BudcoreError):
    """No node shape can run the job within the limits given (the message says what would)."""


class NodeShape(BaseModel):
    """An accelerator, its GPUs per node, and how many such nodes exist (``None``: any number)."""

    model_config = _FROZEN

    accelerator: Accelerator
    gpus_per_node: int = Field(ge=1)
    available_nodes: int | None = Field(default=None, ge=1)
    label: str


def catalog_shapes(catalog: Catalog, gpus_per_node: int) -> list[NodeShape]:
    """One shape per catalog accelerator with ``gpus_per_node`` GPUs (what-if mode)."""
    return [
        NodeShape(accelerator=a, gpus_per_node=gpus_per_node, label=a.display_name)
        for a in catalog.accelerators
    ]


def fleet_shapes(profiles: Sequence[HardwareProfile], catalog: Catalog) -> list[NodeShape]:
    """One shape per whole-GPU, unshared, single-type profile of a parsed fleet."""
    shapes = []
    for profile in profiles:
        specs = profile.specs(catalog)
        if len(specs) != 1 or len(profile.accelerators) != 1 or profile.mig_profile or profile.shared:
            continue
        if profile.gpus_per_node < 1:
            continue
        shapes.append(
            NodeShape(
                accelerator=specs[0],
                gpus_per_node=profile.gpus_per_node,
                available_nodes=max(1, len(profile.node_names)),
                label=profile.label(catalog),
            )
        )
    return shapes


def _price(prices: PricingSource | None, slug: str, tier: str) -> Decimal | None:
    return None if prices is None else prices.hourly_price(slug, tier)


def _hours(seconds: float) -> Decimal:
    """Hours rounded up to 0.1: an estimate is not more precise, and hours × price = cost."""
    return (Decimal(repr(seconds)) / 360).to_integral_value(rounding=ROUND_CEILING) / 10


def _gib(value: float) -> str:
    return f"{value / GIB:,.1f} GiB" if value < 1024 * GIB else f"{value / GIB / 1024:,.2f} TiB"


# ----------------------------------------------------------------------------------------- training
class TrainingRow(BaseModel):
    """One node shape's chosen training plan, priced, as a row of the ranking."""

    model_config = _FROZEN

    label: str
    plan: TrainingPlan
    estimated_hours: Decimal
    hourly_price: Decimal | None  # all GPUs
    estimated_cost: Decimal | None
    feasible_by_deadline: bool | None = None
    recommended: bool = False
    note: str = ""


def _training_rejection(job: TrainingJob, accel: Accelerator) -> str | None:
    if job.dtype not in accel.supported_precisions:
        return f"no {job.dtype} on {accel.short_name} (computes in {', '.join(accel.supported_precisions)})"
    if accel.device_peak_tflops(job.dtype) is None:
        return f"the catalog has no {job.dtype} peak for {accel.short_name}; no time estimate"
    return None


def recommend_training(
    job: TrainingJob,
    shapes: Sequence[NodeShape],
    prices: PricingSource | None,
    *,
    tier: str = "on-demand",
    max_nodes: int = 32,
    gpus: int | None = None,
    deadline_seconds: float | None = None,
    mfu: MfuTable | None = None,
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
    network_gbs: float = DEFAULT_NETWORK_GBS,
) -> tuple[list[TrainingRow], dict[str, str]]:
    """Ranked rows (one per shape that fits) and the reason for every shape that does not.

    Raises :class:`NoLayoutFitsError` when no shape fits, saying how much memory the job needs
    and what to change.
    """
    rows: list[TrainingRow] = []
    rejected: dict[str, str] = {}
    frugal: list[tuple[NodeShape, TrainingPlan]] = []
    for shape in shapes:
        accel = shape.accelerator
        reason = _training_rejection(job, accel)
        nodes = min(max_nodes, shape.available_nodes or max_nodes)
        if reason is None and gpus is not None:
            check_gpu_count(gpus, shape.gpus_per_node)
            if math.ceil(gpus / shape.gpus_per_node) > nodes:
                reason = f"{gpus} GPUs need {math.ceil(gpus / shape.gpus_per_node)} nodes, {nodes} available"
        if reason is not None:
            rejected[shape.label] = reason
            continue
        plan, least = best_plan(
            job,
            accel,
            shape.gpus_per_node,
            max_nodes=nodes,
            gpus=gpus,
            deadline_seconds=deadline_seconds,
            mfu=mfu,
            gpu_memory_utilization=gpu_memory_utilization,
            network_gbs=network_gbs,
        )
        if plan is None:
            if least is not None:
                frugal.append((shape, least))
                rejected[shape.label] = (
                    f"needs {_gib(least.memory.total)} per GPU at best ({least.layout.describe()}), "
                    f"{_gib(least.usable_bytes)} usable"
                )
            else:
                rejected[shape.label] = "no dp × tp × pp layout (heads, layers or global batch do not divide)"
            continue
        rows.append(_training_row(shape, plan, prices, tier, deadline_seconds))
    if not rows:
        raise NoLayoutFitsError(_no_training_fit(job, frugal, rejected, max_nodes=max_nodes, gpus=gpus))
    return _rank_training(rows, deadline_seconds), rejected


def _training_row(
    shape: NodeShape, plan: TrainingPlan, prices: PricingSource | None, tier: str, deadline: float | None
) -> TrainingRow:
    hours = _hours(plan.seconds)
    price = _price(prices, shape.accelerator.slug, tier)
    hourly = None if price is None else price * plan.layout.gpus
    return TrainingRow(
        label=shape.label,
        plan=plan,
        estimated_hours=hours,
        hourly_price=hourly,
        estimated_cost=None if hourly is None else hourly * hours,
        feasible_by_deadline=None if deadline is None else plan.seconds <= deadline,
        note="" if price is not None or prices is None else "no price in the price book",
    )


def _rank_training(rows: list[TrainingRow], deadline: float | None) -> list[TrainingRow]:
    inf = Decimal("Infinity")
    rows.sort(
        key=lambda r: (
            0 if deadline is None or r.feasible_by_deadline else 1,
            r.estimated_cost if r.estimated_cost is not None else inf,
            r.plan.seconds,
            r.label,
        )
    )
    top = rows[0]
    note = top.note
    if top.feasible_by_deadline is False:
        note = "; ".join(n for n in ("no layout meets the deadline; this is the fastest", note) if n)
    rows[0] = top.model_copy(update={"recommended": True, "note": note})
    return rows


def _no_training_fit(
    job: TrainingJob,
    frugal: Sequence[tuple[NodeShape, TrainingPlan]],
    rejected: dict[str, str],
    *,
    max_nodes: int,
    gpus: int | None,
) -> str:
    if not frugal:
        reasons = sorted(set(rejected.values()))
        return "no node shape can run this job: " + "; ".join(reasons[:3]) if reasons else "no node shapes"
    state = job.params * (2 * TRAIN_DTYPE_BYTES[job.dtype] + OPTIMIZER_BYTES[job.optimizer])
    shape, least = max(frugal, key=lambda item: item[0].accelerator.device_memory_gib)
    largest = (
        f"{shape.gpus_per_node}× {shape.accelerator.device_memory_gib:g} GiB ({shape.accelerator.short_name})"
    )
    head = (
        f"no layout of {gpus} GPUs fits" if gpus is not None else f"no layout fits on up to {max_nodes} nodes"
    )
    message = (
        f"{head}: weights, gradients and optimizer states are {_gib(state)} per replica and at best "
        f"{_gib(least.memory.total)} per GPU ({least.layout.describe()}); the largest node is {largest}"
    )
    if shape.available_nodes is not None and shape.available_nodes <= max_nodes:
        return message + f" and the fleet has {shape.available_nodes} of them"
    nodes = _fewest_nodes(job, shape)
    if nodes is None:
        hint = " (try --zero 3)" if job.zero_stage < 3 else ""
        return message + f"; it does not fit even on {MAX_SUGGESTED_NODES} nodes{hint}"
    more = f"--gpus {nodes * shape.gpus_per_node}" if gpus is not None else f"--max-nodes {nodes}"
    return message + f"; try {more} ({nodes} {shape.accelerator.short_name} nodes, the fewest that fit)"


def _fits_on(job: TrainingJob, shape: NodeShape, nodes: int) -> bool:
    gpus = nodes * shape.gpus_per_node
    plan, _ = best_plan(job, shape.accelerator, shape.gpus_per_node, max_nodes=nodes, gpus=gpus)
    return plan is not None


def _fewest_nodes(job: TrainingJob, shape: NodeShape) -> int | None:
    """The fewest whole nodes of ``shape`` with a fitting layout (doubling, then bisection)."""
    high = 1
    while not _fits_on(job, shape, high):
        high *= 2
        if high > MAX_SUGGESTED_NODES:
            return None
    low = high // 2  # does not fit (or 0)
    while high - low > 1:
        middle = (low + high) // 2
        if _fits_on(job, shape, middle):
            high = middle
        else:
            low = middle
    return high


# ------------------------------------------------------------------------------------------ serving
class ServingRow(BaseModel):
    """One node shape's serving plan, with its cost per million tokens at the requested rate."""

    model_config = _FROZEN

    label: str
    plan: ServingPlan
    nodes: int
    cost_per_million_tokens: Decimal | None
    recommended: bool = False
    note: str = ""


def recommend_serving(
    job: ServingJob,
    shapes: Sequence[NodeShape],
    prices: PricingSource | None,
    *,
    tier: str = "on-demand",
    max_nodes: int | None = None,
    mfu: MfuTable | None = None,
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
) -> tuple[list[ServingRow], dict[str, str]]:
    """Ranked rows (cheapest per token first) and why each other shape cannot serve the job."""
    rows: list[ServingRow] = []
    rejected: dict[str, str] = {}
    for shape in shapes:
        plan, reason = plan_serving(
            job,
            shape.accelerator,
            shape.gpus_per_node,
            gpu_hourly_price=_price(prices, shape.accelerator.slug, tier),
            mfu=mfu,
            gpu_memory_utilization=gpu_memory_utilization,
        )
        if plan is None:
            rejected[shape.label] = reason
            continue
        nodes = math.ceil(plan.gpus / shape.gpus_per_node)
        limit = min(n for n in (max_nodes, shape.available_nodes, math.inf) if n is not None)
        if nodes > limit:
            rejected[shape.label] = f"needs {nodes} nodes ({plan.replicas} replicas), {limit:g} available"
            continue
        cost = plan.cost_per_million_tokens(job.tokens_per_second)
        note = "" if cost is not None or prices is None else "no price in the price book"
        rows.append(
            ServingRow(label=shape.label, plan=plan, nodes=nodes, cost_per_million_tokens=cost, note=note)
        )
    if not rows:
        # The biggest parts first: their reason ("needs 180 GiB per replica …") is the telling one.
        by_memory = sorted(shapes, key=lambda s: -s.accelerator.device_memory_gib)
        reasons = "; ".join(f"{s.label}: {rejected[s.label]}" for s in by_memory[:2])
        raise NoLayoutFitsError(
            f"no accelerator can serve this model as asked ({reasons}); "
            "try a smaller --batch or --context, or --dtype fp8/int8/int4"
        )
    inf = Decimal("Infinity")
    rows.sort(
        key=lambda r: (
            r.cost_per_million_tokens if r.cost_per_million_tokens is not None else inf,
            r.plan.gpus,
            r.label,
        )
    )
    rows[0] = rows[0].model_copy(update={"recommended": True})
    return rows, rejected
