"""``budcore recommend`` and ``budcore hardware ...``: accelerator-aware commands.

``recommend`` ranks hardware for a model (serve or train) with estimated time and cost;
``hardware parse`` turns a ``kubectl get nodes -o yaml`` dump into typed nodes, hardware profiles
and the Kueue ResourceFlavors that target them; ``hardware catalog`` lists what budcore knows.
Each prints a table (``--wide`` keeps every row on one line), or the same rows with
``--format json`` or ``csv``; sizes are in binary units (``1.97 TiB``). Every input problem is
raised as a ``BudcoreError`` naming the option or field; the main CLI prints it as one line and
exits with status 2.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from budcore.cli.output import (
    TABLE_FORMAT_HELP,
    TABLE_FORMATS,
    WIDE_HELP,
    human_bytes,
    human_gib,
    key_column,
    output_format,
    plain_console,
    print_table,
    write_csv,
)
from budcore.cost.prices import PriceBook, default_price_book, load_price_book, money
from budcore.domain.durations import parse_timedelta
from budcore.domain.errors import ValidationError
from budcore.domain.validation import validate_model
from budcore.hardware.catalog import Catalog, default_catalog, load_catalog
from budcore.hardware.estimate import DTYPE_BYTES, ServingSpec, TrainingSpec
from budcore.hardware.labels import DeviceGroup, Fleet, parse_nodes_yaml
from budcore.hardware.matching import Recommendation, Requirement, recommend
from budcore.hardware.profiles import HardwareProfile, build_profiles, resource_flavors

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}

FormatOption = Annotated[str, typer.Option("--format", help=TABLE_FORMAT_HELP)]
WideOption = Annotated[bool, typer.Option("--wide", help=WIDE_HELP)]
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
NODE_FIELDS = (
    "name",
    "gpu_type",
    "accelerator",
    "gpus",
    "gpu_memory_gib",
    "host_memory_bytes",
    "shared",
    "schedulable",
    "ready",
    "status",
    "warnings",
)
CATALOG_FIELDS = (
    "slug",
    "display_name",
    "architecture",
    "memory_gib",
    "memory_bandwidth_gbs",
    "bf16_tflops",
    "fp8_tflops",
    "resource_name",
    "mig_profiles",
)


def parse_count(text: str, option: str) -> float:
    """``70e9``, ``70B``, ``1.5b``, ``300M``, ``7000000000`` → a positive number."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?(?:e\d+)?)\s*([kmbgtKMBGT]?)\s*", text)
    if match is None:
        raise ValidationError(f"expected a number like 70e9 or 70B, got {text!r}", path=option)
    value = float(match.group(1)) * _SUFFIX[match.group(2).lower()]
    if value <= 0:
        raise ValidationError("must be positive", path=option)
    return value


def parse_duration(text: str, option: str = "--deadline") -> timedelta:
    """``6h``, ``90m``, ``1h30m``, ``2d``, ``3600`` → a positive timedelta.

    budcore's one duration grammar (:mod:`budcore.domain.durations`); zero is refused here.
    """
    return parse_timedelta(text, option, positive=True)


def _read(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}", path=option) from None


def _catalog(paths: list[Path] | None) -> Catalog:
    return load_catalog(*paths) if paths else default_catalog()


def _prices(path: Path | None, catalog: Catalog) -> PriceBook:
    return load_price_book(path, catalog) if path else default_price_book()


def _catalog_profiles(catalog: Catalog, gpus_per_node: int) -> list[HardwareProfile]:
    """One whole-GPU profile per catalog accelerator (what-if mode, no fleet given)."""
    return [
        HardwareProfile(
            name=a.slug,
            display_name=a.display_name,
            accelerators=(a.slug,),
            gpus_per_node=gpus_per_node,
            total_devices=gpus_per_node,
        )
        for a in catalog.accelerators
    ]


def _fleet_profiles(path: Path, catalog: Catalog) -> list[HardwareProfile]:
    fleet = parse_nodes_yaml(_read(path, "--nodes"), source=str(path), catalog=catalog)
    profiles = build_profiles(fleet, catalog=catalog, include_generic=False)
    if not profiles:
        raise ValidationError(
            "no node with a known accelerator type in the file", path="--nodes", source=str(path)
        )
    return profiles


def _fmt_money(value: Decimal | None) -> str:
    return "-" if value is None else f"${money(value):,}"


def _fmt_hours(value: Decimal | None) -> str:
    return "-" if value is None else f"{value.normalize():f} h"


def _recommendation_json(row: Recommendation) -> dict[str, Any]:
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


def _print_recommendations(console: Console, rows: list[Recommendation], title: str, wide: bool) -> None:
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


def _node_rows(fleet: Fleet) -> list[dict[str, Any]]:
    rows = []
    for node in fleet.nodes:
        memories = {d.memory_gib for d in node.devices}
        rows.append(
            {
                "name": node.name,
                "gpu_type": node.gpu_type,
                "accelerator": node.type_key,
                "gpus": node.accelerator_count,
                "gpu_memory_gib": memories.pop() if len(memories) == 1 else None,
                "host_memory_bytes": node.host_memory_bytes,
                "shared": node.shared,
                "schedulable": node.schedulable,
                "ready": node.ready,
                "status": node.status,
                "devices": [d.model_dump(mode="json") for d in node.devices],
                "warnings": list(node.warnings),
            }
        )
    return rows


def _flavor_manifest(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta1",
        "kind": "ResourceFlavor",
        "metadata": {"name": name},
        "spec": {"nodeLabels": labels},
    }


def _memory_cell(devices: Sequence[DeviceGroup], memory: float | None) -> str:
    if not devices:
        return "-"
    if memory is not None:
        return human_gib(memory)
    sizes = {d.memory_gib for d in devices}
    return "mixed" if len(sizes) > 1 and None not in sizes else "unknown"


def _catalog_row(a: Any) -> dict[str, Any]:
    return {
        "slug": a.slug,
        "display_name": a.display_name,
        "architecture": a.architecture,
        "memory_gib": a.memory_gib,
        "memory_bandwidth_gbs": a.memory_bandwidth_gbs,
        "bf16_tflops": a.bf16_tflops or a.fp16_tflops if a.device_peak_tflops("bf16") is not None else None,
        "fp8_tflops": a.fp8_tflops,
        "resource_name": a.resource_name,
        "mig_profiles": [p.name for p in a.mig_profiles],
    }


def _print_nodes(console: Console, fleet: Fleet, wide: bool) -> None:
    table = Table(title=f"Nodes ({len(fleet.nodes)})")
    key_column(table, "node")
    for column in ("GPU type", "GPUs", "GPU memory", "host memory", "sharing", "status"):
        table.add_column(column)
    for summary, node in zip(_node_rows(fleet), fleet.nodes, strict=True):
        sharing = ", ".join(sorted({d.sharing.value for d in node.devices})) or "-"
        table.add_row(
            node.name,
            node.gpu_type,
            str(summary["gpus"]),
            _memory_cell(node.devices, summary["gpu_memory_gib"]),
            human_bytes(node.host_memory_bytes),
            sharing,
            node.status,
        )
    print_table(table, wide=wide, console=console)


def _print_profiles(console: Console, profiles: list[HardwareProfile], wide: bool) -> None:
    table = Table(title="Hardware profiles")
    key_column(table, "profile")
    table.add_column("accelerator")
    for column in ("GPUs/node", "nodes", "host memory", "node selector"):
        table.add_column(column)
    for profile in profiles:
        selector = ", ".join(f"{k}={v}" for k, v in profile.node_selector.items()) or "(any GPU node)"
        if profile.label_required:
            selector += " (label nodes first)"
        table.add_row(
            profile.name,
            profile.display_name,
            str(profile.gpus_per_node),
            str(len(profile.node_names)),
            human_bytes(profile.host_memory_bytes),
            selector,
        )
    print_table(table, wide=wide, console=console)


def register(app: typer.Typer) -> None:
    """Attach ``recommend`` and the ``hardware`` group to ``app``."""
    hardware = typer.Typer(
        help="Accelerator detection, hardware profiles and the catalog.", no_args_is_help=True
    )

    @app.command("recommend")
    def recommend_command(
        model_params: Annotated[str, typer.Option("--model-params", help="Parameters, e.g. 70e9 or 7B.")],
        task: Annotated[str, typer.Option("--task", help="serve or train.")] = "serve",
        dtype: Annotated[str, typer.Option("--dtype", help=f"One of {', '.join(DTYPE_BYTES)}.")] = "bf16",
        tokens: Annotated[str | None, typer.Option("--tokens", help="Training tokens, e.g. 2e12.")] = None,
        deadline: Annotated[str | None, typer.Option("--deadline", help="e.g. 6h, 2d, 1h30m.")] = None,
        gpus: Annotated[int | None, typer.Option("--gpus", min=1, help="Fixed GPU count.")] = None,
        min_memory: Annotated[
            float | None, typer.Option("--min-memory", help="GiB per GPU, e.g. 80.")
        ] = None,
        serve_hours: Annotated[
            float | None, typer.Option("--serve-hours", help="Hours to price a serve.")
        ] = None,
        nodes: Annotated[Path | None, typer.Option("--nodes", help="kubectl get nodes -o yaml dump.")] = None,
        prices_path: Annotated[Path | None, typer.Option("--prices", help="Price book YAML.")] = None,
        catalog_paths: Annotated[
            list[Path] | None, typer.Option("--catalog", help="Extra catalog YAML.")
        ] = None,
        tier: Annotated[str, typer.Option("--tier", help="Price tier.")] = "on-demand",
        gpus_per_node: Annotated[int, typer.Option("--gpus-per-node", min=1, help="Without --nodes.")] = 8,
        fmt: FormatOption = "table",
        wide: WideOption = False,
    ) -> None:
        """Rank hardware for a model with estimated time, cost and deadline feasibility."""
        if task not in ("serve", "train"):
            raise ValidationError(f"expected serve or train, got {task!r}", path="--task")
        output_format(fmt, TABLE_FORMATS)
        if dtype.lower() not in DTYPE_BYTES:
            raise ValidationError(
                f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPE_BYTES)}", path="--dtype"
            )
        params = parse_count(model_params, "--model-params")
        catalog = _catalog(catalog_paths)
        book = _prices(prices_path, catalog)
        profiles = _fleet_profiles(nodes, catalog) if nodes else _catalog_profiles(catalog, gpus_per_node)
        fields: dict[str, Any] = {
            "model_name": f"{params / 1e9:g}B-parameter model",
            "task": task,
            "gpus": gpus,
            "min_memory_gib": min_memory,
            "deadline": parse_duration(deadline) if deadline else None,
            "serve_hours": serve_hours,
            "tier": tier,
        }
        if task == "train":
            if tokens is None:
                raise ValidationError("training needs --tokens (e.g. 2e12)", path="--tokens")
            fields["training"] = validate_model(
                TrainingSpec,
                {"params": params, "tokens": parse_count(tokens, "--tokens"), "dtype": dtype.lower()},
            )
        else:
            fields["serving"] = validate_model(ServingSpec, {"params": params, "dtype": dtype.lower()})
        requirement = validate_model(Requirement, fields)
        rows = recommend(requirement, profiles, book, catalog=catalog)
        console = plain_console()  # names and notes come from user files
        if fmt == "json":
            console.print_json(json.dumps([_recommendation_json(r) for r in rows]))
            return
        if fmt == "csv":
            write_csv([_recommendation_json(r) for r in rows], RECOMMEND_FIELDS)
            return
        title = f"{requirement.model_name}, {task}, {dtype} — price book {book.version} ({book.currency})"
        _print_recommendations(console, rows, title, wide)
        if task == "serve" and requirement.serving and requirement.serving.kv_cache_bytes is None:
            console.print(
                "note: KV cache not included (model shape unknown); memory is weights + 10% overhead"
            )

    @hardware.command("parse")
    def parse_command(
        nodes_file: Annotated[Path, typer.Argument(help="kubectl get nodes -o yaml output.")],
        fmt: Annotated[
            str,
            typer.Option(
                "--format",
                help="Output format: 'table' (for people), 'json' (nodes, profiles, flavors) or 'csv' "
                "(the nodes, one row each).",
            ),
        ] = "table",
        override: Annotated[
            list[str] | None,
            typer.Option("--override", help="NODE=SLUG (or NODE=SLUG=4,SLUG=4), repeatable."),
        ] = None,
        catalog_paths: Annotated[
            list[Path] | None, typer.Option("--catalog", help="Extra catalog YAML.")
        ] = None,
        wide: WideOption = False,
    ) -> None:
        """Detect accelerators on nodes and print nodes, hardware profiles and ResourceFlavors."""
        output_format(fmt, TABLE_FORMATS)
        overrides: dict[str, str] = {}
        for item in override or []:
            node_name, sep, spec = item.partition("=")
            if not sep or not node_name or not spec:
                raise ValidationError(f"expected NODE=SLUG, got {item!r}", path="--override")
            overrides[node_name] = spec
        catalog = _catalog(catalog_paths)
        fleet = parse_nodes_yaml(
            _read(nodes_file, "NODES"), source=str(nodes_file), catalog=catalog, overrides=overrides
        )
        profiles = build_profiles(fleet, catalog=catalog)
        flavors = resource_flavors(profiles)
        console = plain_console()  # names and notes come from user files
        if fmt == "json":
            document = {
                "catalog_version": catalog.version,
                "nodes": _node_rows(fleet),
                "profiles": [p.model_dump(mode="json") for p in profiles],
                "flavors": [_flavor_manifest(f.name, f.node_labels) for f in flavors],
                "warnings": list(fleet.warnings),
            }
            console.print_json(json.dumps(document))
            return
        if fmt == "csv":
            write_csv(_node_rows(fleet), NODE_FIELDS)
            return
        _print_nodes(console, fleet, wide)
        _print_profiles(console, profiles, wide)
        flavor_table = Table(title="Kueue ResourceFlavors")
        key_column(flavor_table, "name")
        flavor_table.add_column("nodeLabels")
        for flavor in flavors:
            flavor_table.add_row(flavor.name, json.dumps(flavor.node_labels))
        print_table(flavor_table, wide=wide, console=console)
        for warning in fleet.warnings:
            console.print(f"warning: {warning}", markup=False, highlight=False)

    @hardware.command("catalog")
    def catalog_command(
        fmt: FormatOption = "table",
        catalog_paths: Annotated[
            list[Path] | None, typer.Option("--catalog", help="Extra catalog YAML.")
        ] = None,
        wide: WideOption = False,
    ) -> None:
        """List the accelerators budcore knows (built-in catalog plus any --catalog files)."""
        output_format(fmt, TABLE_FORMATS)
        catalog = _catalog(catalog_paths)
        console = plain_console()  # names and notes come from user files
        if fmt == "json":
            console.print_json(catalog.document.model_dump_json())
            return
        rows = [_catalog_row(a) for a in catalog.accelerators]
        if fmt == "csv":
            write_csv(rows, CATALOG_FIELDS)
            return
        table = Table(title=f"Accelerator catalog {catalog.version}")
        key_column(table, "slug")
        for column in ("name", "arch", "memory", "GB/s", "BF16 TF", "FP8 TF"):
            table.add_column(column)
        key_column(table, "resource")
        table.add_column("MIG")
        for row in rows:
            table.add_row(
                row["slug"],
                row["display_name"],
                row["architecture"],
                human_gib(row["memory_gib"]),
                f"{row['memory_bandwidth_gbs']:g}",
                "-" if row["bf16_tflops"] is None else f"{row['bf16_tflops']:g}",
                "-" if row["fp8_tflops"] is None else f"{row['fp8_tflops']:g}",
                row["resource_name"],
                str(len(row["mig_profiles"])) if row["mig_profiles"] else "-",
            )
        print_table(table, wide=wide, console=console)

    app.add_typer(hardware, name="hardware")
