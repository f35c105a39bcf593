"""The tables of ``budcore recommend``: its rows as JSON, CSV columns and rich tables.

Kept apart from the command (:mod:`budcore.cli.recommend`) so that the command reads as its modes
and checks; each mode (the single-layout estimate, the training plan, the serving plan) has its
``--format csv`` columns, its JSON row and its table here, in the same order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from budcore.cli.output import (
    key_column,
    print_table,
)
from budcore.cost.prices import money
from budcore.hardware.matching import Recommendation
from budcore.hardware.planning import (
    ServingRow,
    TrainingRow,
)
from budcore.hardware.shape import TransformerShape

#: ``--format csv`` columns of each command (the JSON has these and more).
RECOMMEND_FIELDS = (
    "profile",
    "label",
    "accelerator",
    "gpus",
    "estimated_hours",
    "hourly_price",
    "estimated_cost",
    "tokens_per_second",
    "feasible_by_deadline",
    "recommended",
    "note",
)
#: ``--format csv`` columns of the multi-node training plan (``--task train`` without ``--nodes``).
TRAINING_FIELDS = (
    "label",
    "accelerator",
    "nodes",
    "gpus",
    "dp",
    "tp",
    "pp",
    "recompute",
    "weights_bytes",
    "gradients_bytes",
    "optimizer_states_bytes",
    "activations_bytes",
    "memory_bytes",
    "usable_bytes",
    "compute_hours",
    "bubble_fraction",
    "communication_hours",
    "estimated_hours",
    "hourly_price",
    "estimated_cost",
    "feasible_by_deadline",
    "recommended",
    "note",
)
#: ``--format csv`` columns of the serving plan (``--task serve --throughput``).
SERVING_FIELDS = (
    "label",
    "accelerator",
    "tp",
    "replicas",
    "gpus",
    "nodes",
    "weights_bytes",
    "kv_cache_bytes",
    "overhead_bytes",
    "memory_bytes",
    "usable_bytes",
    "replica_tokens_per_second",
    "capacity_tokens_per_second",
    "bound",
    "hourly_price",
    "cost_per_million_tokens",
    "recommended",
    "note",
)


def _fmt_money(value: Decimal | None) -> str:
    return "-" if value is None else f"${money(value):,}"


def _fmt_hours(value: Decimal | None) -> str:
    return "-" if value is None else f"{value.normalize():f} h"


def recommendation_json(row: Recommendation) -> dict[str, Any]:
    return {
        "profile": row.profile,
        "label": row.label,
        "accelerator": row.accelerator,
        "gpus": row.gpus,
        # "10", never "1E+1" (what str() of a normalised Decimal gives)
        "estimated_hours": None if row.estimated_hours is None else f"{row.estimated_hours.normalize():f}",
        "hourly_price": None if row.hourly_price is None else str(money(row.hourly_price)),
        "estimated_cost": None if row.estimated_cost is None else str(money(row.estimated_cost)),
        "tokens_per_second": None if row.tokens_per_second is None else round(row.tokens_per_second, 1),
        "feasible_by_deadline": row.feasible_by_deadline,
        "recommended": row.recommended,
        "note": row.note,
    }


def print_recommendations(console: Console, rows: list[Recommendation], title: str, wide: bool) -> None:
    table = Table(title=title)
    table.add_column("")
    key_column(table, "profile")
    table.add_column("GPUs")
    table.add_column("est. time")
    key_column(table, "$/hour")
    key_column(table, "est. cost")
    for column in ("tokens/s", "deadline", "note"):
        table.add_column(column)
    for row in rows:
        deadline = {True: "yes", False: "no", None: "-"}[row.feasible_by_deadline]
        rate = "-" if row.tokens_per_second is None else f"{row.tokens_per_second:,.0f}"
        table.add_row(
            "✓" if row.recommended else "",
            row.label,
            str(row.gpus),
            _fmt_hours(row.estimated_hours),
            _fmt_money(row.hourly_price),
            _fmt_money(row.estimated_cost),
            rate,
            deadline,
            row.note,
        )
    print_table(table, wide=wide, console=console)


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.normalize():f}"


def training_json(row: TrainingRow) -> dict[str, Any]:
    plan, memory = row.plan, row.plan.memory
    return {
        "label": row.label,
        "accelerator": plan.accelerator,
        "gpus_per_node": plan.gpus_per_node,
        "nodes": plan.layout.nodes,
        "gpus": plan.layout.gpus,
        "dp": plan.layout.dp,
        "tp": plan.layout.tp,
        "pp": plan.layout.pp,
        "weights_bytes": round(memory.weights),
        "gradients_bytes": round(memory.gradients),
        "optimizer_states_bytes": round(memory.optimizer),
        "activations_bytes": round(memory.activations),
        "memory_bytes": round(memory.total),
        "usable_bytes": round(plan.usable_bytes),
        "recompute": plan.recompute,
        "mfu": plan.mfu,
        "compute_hours": round(plan.compute_seconds / 3600, 2),
        "bubble_fraction": round(plan.bubble_fraction, 4),
        "communication_hours": round(plan.communication_seconds / 3600, 2),
        "estimated_hours": _decimal(row.estimated_hours),
        "hourly_price": None if row.hourly_price is None else str(money(row.hourly_price)),
        "estimated_cost": None if row.estimated_cost is None else str(money(row.estimated_cost)),
        "feasible_by_deadline": row.feasible_by_deadline,
        "recommended": row.recommended,
        "note": row.note,
    }


def serving_json(row: ServingRow) -> dict[str, Any]:
    plan = row.plan
    return {
        "label": row.label,
        "accelerator": plan.accelerator,
        "gpus_per_node": plan.gpus_per_node,
        "tp": plan.tp,
        "replicas": plan.replicas,
        "gpus": plan.gpus,
        "nodes": row.nodes,
        "weights_bytes": round(plan.weight_bytes_per_gpu),
        "kv_cache_bytes": round(plan.kv_bytes_per_gpu),
        "overhead_bytes": round(plan.overhead_bytes_per_gpu),
        "memory_bytes": round(plan.memory_per_gpu),
        "usable_bytes": round(plan.usable_bytes),
        "replica_tokens_per_second": round(plan.replica_tokens_per_second, 1),
        "capacity_tokens_per_second": round(plan.capacity, 1),
        "bound": plan.bound,
        "hourly_price": None if plan.hourly_price is None else str(money(plan.hourly_price)),
        "cost_per_million_tokens": (
            None if row.cost_per_million_tokens is None else str(money(row.cost_per_million_tokens))
        ),
        "recommended": row.recommended,
        "note": row.note,
    }


def _fmt_duration(hours: Decimal) -> str:
    """``5.3 h`` up to two days, then days (``92.4 d``), then years (``5.9 y``)."""
    if hours <= 48:
        return f"{hours.normalize():f} h"
    days = hours / 24
    return f"{days:,.1f} d" if days < 730 else f"{days / Decimal('365.25'):,.1f} y"


def _gib_figure(value: float) -> str:
    return f"{value / 2**30:,.1f}"


def print_training(console: Console, rows: list[TrainingRow], title: str, wide: bool) -> None:
    """The plan table; the deadline and note columns only when some row has one, so the key
    columns (accelerator, price, cost) stay whole on an 80-column terminal."""
    deadlines = any(row.feasible_by_deadline is not None for row in rows)
    notes = any(row.note for row in rows)
    table = Table(title=title)
    table.add_column("")
    key_column(table, "accelerator")
    for column in ("nodes×GPUs", "layout, recompute", "GiB/GPU¹"):
        table.add_column(column)
    table.add_column("est. time")
    key_column(table, "$/hour")
    key_column(table, "est. cost")
    if deadlines:
        table.add_column("deadline")
    if notes:
        table.add_column("note")
    for row in rows:
        plan, memory = row.plan, row.plan.memory
        cells = [
            "✓" if row.recommended else "",
            row.label,
            f"{plan.layout.nodes}×{min(plan.layout.gpus, plan.gpus_per_node)}",
            f"{plan.layout.describe()}, {plan.recompute}",
            f"{_gib_figure(memory.total)} / {_gib_figure(plan.usable_bytes)}",
            _fmt_duration(row.estimated_hours),
            _fmt_money(row.hourly_price),
            _fmt_money(row.estimated_cost),
        ]
        if deadlines:
            cells.append({True: "yes", False: "no", None: "-"}[row.feasible_by_deadline])
        if notes:
            cells.append(row.note)
        table.add_row(*cells)
    print_table(table, wide=wide, console=console)
    console.print("¹ memory per GPU: total / usable", markup=False, highlight=False)
    for row in rows[:1] if rows and rows[0].recommended else []:
        memory = row.plan.memory
        console.print(
            f"✓ {row.label}, per GPU: weights {_gib_figure(memory.weights)} GiB + gradients "
            f"{_gib_figure(memory.gradients)} + optimizer states {_gib_figure(memory.optimizer)} + "
            f"activations {_gib_figure(memory.activations)} = {_gib_figure(memory.total)} of "
            f"{_gib_figure(row.plan.usable_bytes)} usable (every row's split: --format json or csv)",
            markup=False,
            highlight=False,
        )


def print_serving(console: Console, rows: list[ServingRow], title: str, wide: bool) -> None:
    table = Table(title=title)
    table.add_column("")
    key_column(table, "accelerator")
    for column in ("GPUs", "replicas × tp", "GiB/GPU: weights+KV+overhead / usable", "tokens/s per replica"):
        table.add_column(column)
    key_column(table, "$/hour")
    key_column(table, "$/M tokens")
    table.add_column("note")
    for row in rows:
        plan = row.plan
        parts = (plan.weight_bytes_per_gpu, plan.kv_bytes_per_gpu, plan.overhead_bytes_per_gpu)
        table.add_row(
            "✓" if row.recommended else "",
            row.label,
            str(plan.gpus),
            f"{plan.replicas} × {plan.tp}",
            "+".join(_gib_figure(p) for p in parts) + f" / {_gib_figure(plan.usable_bytes)}",
            f"{plan.replica_tokens_per_second:,.0f} ({plan.bound.removeprefix('memory ')}-bound)",
            _fmt_money(plan.hourly_price),
            _fmt_money(row.cost_per_million_tokens),
            row.note,
        )
    print_table(table, wide=wide, console=console)


def print_notes(console: Console, shape: TransformerShape, rejected: dict[str, str]) -> None:
    if shape.assumed:
        console.print(
            f"note: model shape assumed from the parameter count ({shape.describe()}); "
            "give --layers, --hidden-size, --heads and --kv-heads for the real one",
            markup=False,
            highlight=False,
        )
    by_reason: dict[str, list[str]] = {}
    for label, reason in rejected.items():
        by_reason.setdefault(reason, []).append(label)
    for reason, labels in by_reason.items():
        console.print(f"not considered: {', '.join(labels)}: {reason}", markup=False, highlight=False)
