"""``budcore recommend``: rank hardware for a model, to serve it or to train it.

Training plans multi-node data/tensor/pipeline layouts (:mod:`budcore.hardware.planning`);
serving with ``--throughput`` ranks by cost per million tokens with room for the KV cache; a plain
serve is the single-layout estimate of :mod:`budcore.hardware.matching`. With ``--nodes`` the
plans use the fleet's node groups, as many nodes of each as it has. It prints a table (``--wide``
keeps every row on one line), or the same rows with ``--format json`` or ``csv``. Every input
problem is raised as a ``BudcoreError`` naming the option or field; the main CLI prints it as one
line and exits with status 2. A module of its own, apart from ``budcore hardware``, because the
planners' options and tables are most of its length.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import pydantic
import typer
from rich.console import Console

from budcore.cli.hardware import load_catalogs, read_input
from budcore.cli.output import (
    TABLE_FORMAT_HELP,
    TABLE_FORMATS,
    WIDE_HELP,
    output_format,
    plain_console,
    write_csv,
)
from budcore.cli.recommend_tables import (
    RECOMMEND_FIELDS,
    SERVING_FIELDS,
    TRAINING_FIELDS,
    print_notes,
    print_recommendations,
    print_serving,
    print_training,
    recommendation_json,
    serving_json,
    training_json,
)
from budcore.cost.prices import PriceBook, default_price_book, load_price_book
from budcore.domain.durations import parse_timedelta
from budcore.domain.errors import ValidationError
from budcore.domain.validation import validate_model
from budcore.hardware.catalog import Catalog
from budcore.hardware.estimate import DTYPE_BYTES, ServingSpec, TrainingSpec
from budcore.hardware.labels import parse_nodes_yaml
from budcore.hardware.matching import Requirement, recommend
from budcore.hardware.parallelism import DEFAULT_NETWORK_GBS, TrainingJob
from budcore.hardware.planning import (
    NodeShape,
    catalog_shapes,
    fleet_shapes,
    recommend_serving,
    recommend_training,
)
from budcore.hardware.profiles import HardwareProfile, build_profiles
from budcore.hardware.serving import ServingJob, unsupported_precision
from budcore.hardware.shape import TransformerShape, resolve_shape

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}

M = TypeVar("M", bound=pydantic.BaseModel)

FormatOption = Annotated[str, typer.Option("--format", help=TABLE_FORMAT_HELP)]
WideOption = Annotated[bool, typer.Option("--wide", help=WIDE_HELP)]


#: The largest count ``parse_count`` takes: far above any model's parameters (1e15 fits no fleet)
#: or a training run's tokens, small enough that every estimate stays a finite float.
MAX_COUNT = 1e18


def parse_count(text: str, option: str) -> float:
    """``70e9``, ``70B``, ``1.5b``, ``300M``, ``7000000000`` → a positive number."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?(?:e\d+)?)\s*([kmbgtKMBGT]?)\s*", text)
    if match is None:
        raise ValidationError(f"expected a number like 70e9 or 70B, got {text!r}", path=option)
    value = float(match.group(1)) * _SUFFIX[match.group(2).lower()]
    if value <= 0:
        raise ValidationError("must be positive", path=option)
    if not value <= MAX_COUNT:  # also 1e400, which float() reads as infinity
        raise ValidationError(f"must be at most {MAX_COUNT:g}, got {text.strip()}", path=option)
    return value


def parse_duration(text: str, option: str = "--deadline") -> timedelta:
    """``6h``, ``90m``, ``1h30m``, ``2d``, ``3600`` → a positive timedelta.

    budcore's one duration grammar (:mod:`budcore.domain.durations`); zero is refused here.
    """
    return parse_timedelta(text, option, positive=True)


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


def _supporting(profiles: list[HardwareProfile], catalog: Catalog, dtype: str) -> list[HardwareProfile]:
    """Catalog profiles whose accelerator can hold weights in ``dtype`` (no bf16 on a T4)."""
    kept = []
    for profile in profiles:
        accel = catalog.get(profile.accelerators[0]) if profile.accelerators else None
        if accel is None or unsupported_precision(accel, dtype) is None:
            kept.append(profile)
    return kept


def _shapes(
    nodes: Path | None, catalog: Catalog, gpus_per_node: int, min_memory: float | None
) -> list[NodeShape]:
    """Node shapes to plan over: the catalog's, or the fleet's; ``--min-memory`` filters them."""
    if nodes is None:
        shapes = catalog_shapes(catalog, gpus_per_node)
    else:
        shapes = fleet_shapes(_fleet_profiles(nodes, catalog), catalog)
        if not shapes:
            raise ValidationError("no whole-GPU, single-type node group in the file", path="--nodes")
    if min_memory is not None:
        shapes = [s for s in shapes if s.accelerator.device_memory_gib + 1e-9 >= min_memory]
        if not shapes:
            raise ValidationError(f"no accelerator has {min_memory:g} GiB or more", path="--min-memory")
    return shapes


Mode = Literal["train-plan", "serve-plan", "estimate"]
DEFAULT_MAX_NODES = 32
_MODE_TEXT = {
    "train-plan": "a multi-node training plan",
    "serve-plan": "a serving plan (--throughput)",
    "estimate": "the single-layout estimate (serving without --throughput)",
}
#: Which modes each option means something in; anything else is refused, never silently ignored.
_APPLIES: dict[str, tuple[Mode, ...]] = {
    "--tokens": ("train-plan", "estimate"),
    "--deadline": ("train-plan", "estimate"),
    "--gpus": ("train-plan", "estimate"),
    "--serve-hours": ("estimate",),
    "--max-nodes": ("train-plan", "serve-plan"),
    "--seq-len": ("train-plan",),
    "--micro-batch": ("train-plan",),
    "--global-batch": ("train-plan",),
    "--optimizer": ("train-plan",),
    "--zero": ("train-plan",),
    "--recompute": ("train-plan",),
    "--network-gbs": ("train-plan",),
    "--context": ("serve-plan",),
    "--batch": ("serve-plan",),
    "--layers": ("train-plan", "serve-plan"),
    "--hidden-size": ("train-plan", "serve-plan"),
    "--heads": ("train-plan", "serve-plan"),
    "--kv-heads": ("train-plan", "serve-plan"),
}


def _mode(task: str, throughput: str | None) -> Mode:
    """Which recommendation answers: training is always planned (over the catalog's node shapes,
    or a fleet's, bounded by how many nodes of each it has); serving plans with a rate and is
    otherwise the single-layout estimate."""
    if task == "train":
        if throughput is not None:
            raise ValidationError("is for serving (--task serve)", path="--throughput")
        return "train-plan"
    return "serve-plan" if throughput is not None else "estimate"


def _check_applicable(mode: Mode, given: dict[str, object]) -> None:
    """An option the chosen mode ignores is an error naming it, not a silent no-op."""
    for option, value in given.items():
        if value is not None and mode not in _APPLIES[option]:
            raise ValidationError(f"does not apply to {_MODE_TEXT[mode]}", path=option)


def _plan_training(
    console: Console,
    job: TrainingJob,
    shapes: list[NodeShape],
    book: PriceBook,
    gpus: int | None,
    deadline_seconds: float | None,
    network_gbs: float,
    *,
    max_nodes: int,
    tier: str,
    fmt: str,
    wide: bool,
) -> None:
    rows, rejected = recommend_training(
        job,
        shapes,
        book,
        tier=tier,
        max_nodes=max_nodes,
        gpus=gpus,
        deadline_seconds=deadline_seconds,
        network_gbs=network_gbs,
    )
    if fmt != "table":
        _emit([training_json(r) for r in rows], TRAINING_FIELDS, fmt, console)
        return
    title = (
        f"{job.params / 1e9:g}B-parameter model, train {job.tokens / 1e9:,.6g}B tokens, {job.dtype}, "
        f"{job.optimizer}, ZeRO-{job.zero_stage} — price book {book.version} ({book.currency})"
    )
    print_training(console, rows, title, wide)
    print_notes(console, job.shape, rejected)


def _plan_serving(
    console: Console,
    job: ServingJob,
    shapes: list[NodeShape],
    book: PriceBook,
    *,
    max_nodes: int,
    tier: str,
    fmt: str,
    wide: bool,
) -> None:
    rows, rejected = recommend_serving(job, shapes, book, tier=tier, max_nodes=max_nodes)
    if fmt != "table":
        _emit([serving_json(r) for r in rows], SERVING_FIELDS, fmt, console)
        return
    title = (
        f"{job.params / 1e9:g}B-parameter model, serve {job.tokens_per_second:,.0f} tokens/s, {job.dtype}, "
        f"batch {job.batch} × {job.context} context — price book {book.version} ({book.currency})"
    )
    print_serving(console, rows, title, wide)
    print_notes(console, job.shape, rejected)


def _estimate(
    console: Console,
    catalog: Catalog,
    book: PriceBook,
    *,
    task: str,
    params: float,
    dtype: str,
    tokens: str | None,
    fields: dict[str, Any],
    profiles: list[HardwareProfile],
    fleet: bool,
    fmt: str,
    wide: bool,
) -> None:
    """The single-layout estimate of :func:`budcore.hardware.matching.recommend`."""
    if task == "serve" and not fleet:
        profiles = _supporting(profiles, catalog, dtype)
    if task == "train":
        if tokens is None:
            raise ValidationError("training needs --tokens (e.g. 2e12)", path="--tokens")
        fields["training"] = validate_model(
            TrainingSpec, {"params": params, "tokens": parse_count(tokens, "--tokens"), "dtype": dtype}
        )
    else:
        fields["serving"] = validate_model(ServingSpec, {"params": params, "dtype": dtype})
    requirement = validate_model(Requirement, fields)
    rows = recommend(requirement, profiles, book, catalog=catalog)
    if fmt != "table":
        _emit([recommendation_json(r) for r in rows], RECOMMEND_FIELDS, fmt, console)
        return
    title = f"{requirement.model_name}, {task}, {dtype} — price book {book.version} ({book.currency})"
    print_recommendations(console, rows, title, wide)
    if task == "serve" and requirement.serving and requirement.serving.kv_cache_bytes is None:
        console.print(
            "note: KV cache not included (model shape unknown); memory is weights + 10% overhead; "
            "--throughput plans with the KV cache"
        )


def _training_job(
    params: float, tokens: float, shape: TransformerShape, options: dict[str, Any]
) -> TrainingJob:
    """The job, with each CLI option named in its error (``--optimizer``, not ``optimizer``)."""
    names = {"zero_stage": "--zero", "seq_len": "--seq-len", "micro_batch": "--micro-batch"}
    if options["dtype"] not in ("bf16", "fp16", "fp8"):
        raise ValidationError(
            f"training plans mixed precision: bf16, fp16 or fp8, not {options['dtype']}", path="--dtype"
        )
    for option, allowed in (
        ("optimizer", ("adam", "adam-8bit", "sgd")),
        ("recompute", ("auto", "full", "selective", "none")),
    ):
        if options[option] not in allowed:
            raise ValidationError(
                f"expected one of {', '.join(allowed)}, got {options[option]!r}",
                path=names.get(option, f"--{option}"),
            )
    fields = {"params": params, "tokens": tokens, "shape": shape, **options}
    return _one_line(TrainingJob, fields)


#: The option behind each field of :class:`TrainingJob` and :class:`ServingJob`, for error messages.
_OPTION_OF = {
    "params": "--model-params",
    "tokens": "--tokens",
    "zero_stage": "--zero",
    "seq_len": "--seq-len",
    "micro_batch": "--micro-batch",
    "global_batch": "--global-batch",
    "tokens_per_second": "--throughput",
    "context": "--context",
    "batch": "--batch",
}


def _one_line(model: type[M], fields: dict[str, Any]) -> M:
    """``model`` from ``fields``; the first problem as one line naming the CLI option."""
    try:
        return model.model_validate(fields)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        # No field: a model-level check, and the only one is TrainingJob's batch check.
        option = _OPTION_OF.get(field, field) if field else "--global-batch"
        raise ValidationError(message, path=option) from None


def _serving_job(fields: dict[str, Any]) -> ServingJob:
    return _one_line(ServingJob, fields)


def _emit(rows: list[dict[str, Any]], fields: Sequence[str], fmt: str, console: Console) -> None:
    if fmt == "json":
        console.print_json(json.dumps(rows))
    else:
        write_csv(rows, fields)


def _fleet_profiles(path: Path, catalog: Catalog) -> list[HardwareProfile]:
    fleet = parse_nodes_yaml(read_input(path, "--nodes"), source=str(path), catalog=catalog)
    profiles = build_profiles(fleet, catalog=catalog, include_generic=False)
    if not profiles:
        raise ValidationError(
            "no node with a known accelerator type in the file", path="--nodes", source=str(path)
        )
    return profiles


def register(app: typer.Typer) -> None:
    """Attach ``recommend`` to ``app``."""

    @app.command("recommend")
    def recommend_command(
        model_params: Annotated[str, typer.Option("--model-params", help="Parameters, e.g. 70e9 or 7B.")],
        task: Annotated[str, typer.Option("--task", help="serve or train.")] = "serve",
        dtype: Annotated[str, typer.Option("--dtype", help=f"One of {', '.join(DTYPE_BYTES)}.")] = "bf16",
        tokens: Annotated[str | None, typer.Option("--tokens", help="Training tokens, e.g. 2e12.")] = None,
        deadline: Annotated[str | None, typer.Option("--deadline", help="e.g. 6h, 2d, 1h30m.")] = None,
        gpus: Annotated[
            int | None,
            typer.Option("--gpus", min=1, help="Fixed GPU count (training: up to one node or whole nodes)."),
        ] = None,
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
        max_nodes: Annotated[
            int | None,
            typer.Option("--max-nodes", min=1, max=4096, help="Most nodes of one kind to plan over (32)."),
        ] = None,
        seq_len: Annotated[
            int | None,
            typer.Option("--seq-len", min=1, max=10_000_000, help="Training sequence length (4096)."),
        ] = None,
        micro_batch: Annotated[
            int | None,
            typer.Option("--micro-batch", min=1, max=100_000, help="Sequences per GPU per micro-batch (1)."),
        ] = None,
        global_batch: Annotated[
            int | None,
            typer.Option("--global-batch", min=1, help="Sequences per optimizer step (4Mi tokens' worth)."),
        ] = None,
        optimizer: Annotated[
            str | None,
            typer.Option(
                "--optimizer", help="adam (12 B/param of states; default), adam-8bit (6) or sgd (8)."
            ),
        ] = None,
        zero: Annotated[
            int | None,
            typer.Option(
                "--zero",
                min=0,
                max=3,
                help="ZeRO stage over dp: 1 optimizer (default), 2 +grads, 3 +weights.",
            ),
        ] = None,
        recompute: Annotated[
            str | None,
            typer.Option(
                "--recompute",
                help="Activation recomputation: auto (the least that fits), full, selective, none.",
            ),
        ] = None,
        network_gbs: Annotated[
            float | None,
            typer.Option(
                "--network-gbs", min=0.001, max=1e6, help="GB/s per GPU between nodes (50: 400 Gb/s)."
            ),
        ] = None,
        throughput: Annotated[
            str | None,
            typer.Option(
                "--throughput", help="Serving: tokens/s to serve (e.g. 2000, 50k); ranks by $/M tokens."
            ),
        ] = None,
        context: Annotated[
            int | None,
            typer.Option(
                "--context", min=1, max=100_000_000, help="Serving: context the KV cache holds (4096)."
            ),
        ] = None,
        batch: Annotated[
            int | None,
            typer.Option(
                "--batch", min=1, max=1_000_000, help="Serving: concurrent sequences per replica (16)."
            ),
        ] = None,
        layers: Annotated[int | None, typer.Option("--layers", min=1, help="Model shape: layers.")] = None,
        hidden_size: Annotated[
            int | None, typer.Option("--hidden-size", min=1, help="Model shape: hidden size.")
        ] = None,
        heads: Annotated[
            int | None, typer.Option("--heads", min=1, help="Model shape: attention heads.")
        ] = None,
        kv_heads: Annotated[
            int | None, typer.Option("--kv-heads", min=1, help="Model shape: KV heads (grouped-query).")
        ] = None,
        fmt: FormatOption = "table",
        wide: WideOption = False,
    ) -> None:
        """Rank hardware for a model with estimated time, cost and deadline feasibility.

        Training without --nodes plans data × tensor × pipeline parallel layouts over whole nodes
        of every catalog accelerator (up to --max-nodes), with memory per GPU broken into weights,
        gradients, optimizer states and activations. Serving with --throughput ranks by cost per
        million tokens at that rate, leaving room for the KV cache of --batch sequences of
        --context tokens, on accelerators that support --dtype.
        """
        if task not in ("serve", "train"):
            raise ValidationError(f"expected serve or train, got {task!r}", path="--task")
        output_format(fmt, TABLE_FORMATS)
        dtype = dtype.lower()
        if dtype not in DTYPE_BYTES:
            raise ValidationError(
                f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPE_BYTES)}", path="--dtype"
            )
        mode = _mode(task, throughput)
        _check_applicable(
            mode,
            {
                "--tokens": tokens,
                "--deadline": deadline,
                "--gpus": gpus,
                "--serve-hours": serve_hours,
                "--max-nodes": max_nodes,
                "--seq-len": seq_len,
                "--micro-batch": micro_batch,
                "--global-batch": global_batch,
                "--optimizer": optimizer,
                "--zero": zero,
                "--recompute": recompute,
                "--network-gbs": network_gbs,
                "--context": context,
                "--batch": batch,
                "--layers": layers,
                "--hidden-size": hidden_size,
                "--heads": heads,
                "--kv-heads": kv_heads,
            },
        )
        params = parse_count(model_params, "--model-params")
        catalog = load_catalogs(catalog_paths)
        book = _prices(prices_path, catalog)
        if book.resolve_tier(tier) is None:  # else every price is "unknown", silently
            aliases = sorted(book.document.tier_aliases)
            known = ", ".join([*book.tiers(), *(f"{a} (alias)" for a in aliases)])
            raise ValidationError(
                f"unknown price tier {tier!r}; price book {book.version} has: {known}", path="--tier"
            )
        console = plain_console()  # names and notes come from user files
        if mode != "estimate":
            shape = resolve_shape(
                params, layers=layers, hidden_size=hidden_size, heads=heads, kv_heads=kv_heads
            )
            shapes = _shapes(nodes, catalog, gpus_per_node, min_memory)
            limit = max_nodes or DEFAULT_MAX_NODES
            if mode == "train-plan":
                if tokens is None:
                    raise ValidationError("training needs --tokens (e.g. 2e12)", path="--tokens")
                options = {
                    "dtype": dtype,
                    "optimizer": optimizer or "adam",
                    "zero_stage": 1 if zero is None else zero,
                    "recompute": recompute or "auto",
                    "seq_len": seq_len or 4096,
                    "micro_batch": micro_batch or 1,
                    "global_batch": global_batch,
                }
                job = _training_job(params, parse_count(tokens, "--tokens"), shape, options)
                seconds = parse_duration(deadline).total_seconds() if deadline else None
                network = network_gbs or DEFAULT_NETWORK_GBS
                _plan_training(
                    console,
                    job,
                    shapes,
                    book,
                    gpus,
                    seconds,
                    network,
                    max_nodes=limit,
                    tier=tier,
                    fmt=fmt,
                    wide=wide,
                )
                return
            fields = {
                "params": params,
                "shape": shape,
                "dtype": dtype,
                "context": context or 4096,
                "batch": batch or 16,
                "tokens_per_second": parse_count(throughput or "", "--throughput"),
            }
            _plan_serving(
                console, _serving_job(fields), shapes, book, max_nodes=limit, tier=tier, fmt=fmt, wide=wide
            )
            return
        _estimate(
            console,
            catalog,
            book,
            task=task,
            params=params,
            dtype=dtype,
            tokens=tokens,
            fields={
                "model_name": f"{params / 1e9:g}B-parameter model",
                "task": task,
                "gpus": gpus,
                "min_memory_gib": min_memory,
                "deadline": parse_duration(deadline) if deadline else None,
                "serve_hours": serve_hours,
                "tier": tier,
            },
            profiles=_fleet_profiles(nodes, catalog) if nodes else _catalog_profiles(catalog, gpus_per_node),
            fleet=nodes is not None,
            fmt=fmt,
            wide=wide,
        )
