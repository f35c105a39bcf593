"""``budcore hardware ...``: the accelerators of a fleet and of the catalog.

``hardware parse`` turns a ``kubectl get nodes -o yaml`` dump into typed nodes, hardware profiles
and the Kueue ResourceFlavors that target them; ``hardware catalog`` lists what budcore knows.
Each prints a table (``--wide`` keeps every row on one line), or the same rows with
``--format json`` or ``csv``; sizes are in binary units (``1.97 TiB``). Every input problem is
raised as a ``BudcoreError`` naming the option or field; the main CLI prints it as one line and
exits with status 2. ``budcore recommend`` is :mod:`budcore.cli.recommend`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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
from budcore.domain.errors import ValidationError
from budcore.hardware.catalog import Catalog, default_catalog, load_catalog
from budcore.hardware.labels import DeviceGroup, Fleet, parse_nodes_yaml
from budcore.hardware.profiles import HardwareProfile, build_profiles, resource_flavors

FormatOption = Annotated[str, typer.Option("--format", help=TABLE_FORMAT_HELP)]
WideOption = Annotated[bool, typer.Option("--wide", help=WIDE_HELP)]
#: ``--format csv`` columns of each command (the JSON has these and more).
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
    "precisions",
)


def read_input(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}", path=option) from None
    except UnicodeDecodeError as exc:  # a binary or Latin-1 file: its name, not a traceback
        raise ValidationError(
            f"{path} is not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at offset {exc.start}", path=option
        ) from None


def load_catalogs(paths: list[Path] | None) -> Catalog:
    return load_catalog(*paths) if paths else default_catalog()


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
        # No figure for a part without bf16 (a T4's 65 TFLOPS are fp16): the column means what it says.
        "bf16_tflops": (a.bf16_tflops or a.fp16_tflops) if "bf16" in a.supported_precisions else None,
        "fp8_tflops": a.fp8_tflops,
        "resource_name": a.resource_name,
        "mig_profiles": [p.name for p in a.mig_profiles],
        "precisions": list(a.supported_precisions),
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
    """Attach the ``hardware`` group to ``app``."""
    hardware = typer.Typer(
        help="Accelerator detection, hardware profiles and the catalog.", no_args_is_help=True
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
        catalog = load_catalogs(catalog_paths)
        fleet = parse_nodes_yaml(
            read_input(nodes_file, "NODES"), source=str(nodes_file), catalog=catalog, overrides=overrides
        )
        if not fleet.nodes:  # an empty List (the wrong context, or a filter that matched nothing)
            raise ValidationError(f"{nodes_file} lists no node", path="NODES")
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
        catalog = load_catalogs(catalog_paths)
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
        for column in ("name", "arch", "memory", "GB/s", "BF16 TF", "FP8 TF", "formats"):
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
                " ".join(row["precisions"]),
                row["resource_name"],
                str(len(row["mig_profiles"])) if row["mig_profiles"] else "-",
            )
        print_table(table, wide=wide, console=console)

    app.add_typer(hardware, name="hardware")
