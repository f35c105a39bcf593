"""What a trace holds, before it is simulated (``budcore trace inspect FILE``).

A planner bringing a trace wants to know what budcore made of it: how many jobs, over what span,
asking for which GPUs, and how many rows were dropped and why (invalid rows by column, rows filtered
on purpose by reason, rows the reader had to approximate). :func:`inspect_trace` reads the file
once through its reader (the same one a scenario uses, found through the plugin registry) and
summarises; :func:`inspect_node_list` does the same for an openb node list (a fleet, not jobs).

A file that yields no job is an error naming the format it looks like, as in a scenario.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from budcore.domain.errors import ValidationError
from budcore.plugins import PluginRegistry, default_registry

from .openb import is_openb_node_list, read_openb_nodes
from .traces import TextLines, guess_format, open_trace, parse_trace_spec, read_head, trace_formats
from .units import is_file

__all__ = ["NodeListInspection", "TraceInspection", "inspect_node_list", "inspect_path", "inspect_trace"]

_DETAILS = 5  # invalid rows shown by example


@dataclass(slots=True)
class TraceInspection:
    """A trace's jobs and what its reader dropped or approximated (see :func:`inspect_trace`)."""

    path: str
    format: str
    guessed: bool  # the format was guessed from the file (no --as)
    rows: int = 0
    jobs: int = 0
    filtered: int = 0
    skipped: int = 0
    first_submit_s: float = 0.0
    last_submit_s: float = 0.0
    gpu_jobs: int = 0
    cpu_only_jobs: int = 0
    gpu_hours: float = 0.0  # GPUs x runtime, as the trace records it
    gang_jobs: int = 0  # jobs of more than one pod
    gpus: Counter[int] = field(default_factory=Counter)  # GPUs per job -> jobs
    accelerators: Counter[str] = field(default_factory=Counter)  # asked-for accelerator -> jobs
    tenants: Counter[str] = field(default_factory=Counter)  # tenant/local queue -> jobs
    filtered_reasons: Counter[str] = field(default_factory=Counter)
    skipped_fields: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)  # the first invalid rows, file:line: field: why

    @property
    def span_s(self) -> float:
        return self.last_submit_s - self.first_submit_s

    def share(self, count: int) -> float:
        """``count`` as a share of the rows read (0 for an empty file)."""
        return count / self.rows if self.rows else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "format_guessed": self.guessed,
            "rows": self.rows,
            "jobs": self.jobs,
            "span_s": self.span_s,
            "first_submit_s": self.first_submit_s,
            "last_submit_s": self.last_submit_s,
            "gpu_jobs": self.gpu_jobs,
            "cpu_only_jobs": self.cpu_only_jobs,
            "gang_jobs": self.gang_jobs,
            "gpu_hours": round(self.gpu_hours, 3),
            "gpus_per_job": {str(k): v for k, v in sorted(self.gpus.items())},
            "accelerators": dict(self.accelerators.most_common()),
            "local_queues": dict(self.tenants.most_common()),
            "filtered": {
                "rows": self.filtered,
                "share": round(self.share(self.filtered), 4),
                "reasons": dict(self.filtered_reasons.most_common()),
            },
            "invalid": {
                "rows": self.skipped,
                "share": round(self.share(self.skipped), 4),
                "by_column": dict(self.skipped_fields.most_common()),
                "examples": list(self.examples),
            },
            "notes": dict(self.notes.most_common()),
        }


@dataclass(frozen=True, slots=True)
class NodeListInspection:
    """An openb node list: its pools (a fleet, not jobs)."""

    path: str
    pools: tuple[dict[str, Any], ...]
    nodes: int
    gpus: int
    models: dict[str, int]
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": "openb node list",
            "nodes": self.nodes,
            "gpus": self.gpus,
            "models": self.models,
            "pools": list(self.pools),
            "notes": list(self.notes),
        }


def inspect_trace(
    path: str | Path,
    fmt: str | None = None,
    *,
    task_path: str | Path | None = None,
    options: Mapping[str, Any] | None = None,
    registry: PluginRegistry | None = None,
) -> TraceInspection:
    """Read the trace at ``path`` as ``fmt`` (None: the format it looks like) and summarise it.

    ``options`` are the trace options of a scenario's ``traces:`` entry (``fractional``,
    ``include_cpu_only``, ``mapping``, ...). An unknown format, a file no reader recognises, bad
    options and a file that yields no job are ``ValidationError`` s.
    """
    path = Path(path)
    registry = registry or default_registry()
    guessed = fmt is None
    if not is_file(path):
        raise ValidationError(f"trace file {str(path)!r} does not exist", path="FILE")
    if fmt is None:
        _readable(path)
        fmt = guess_format(path, registry)
        if fmt is None:
            raise ValidationError(
                f"cannot tell the format of {path}: give it with --as (registered formats: "
                f"{', '.join(trace_formats(registry))})",
                path="--as",
            )
    spec_data: dict[str, Any] = {**(options or {}), "format": fmt, "path": str(path)}
    if task_path is not None:
        spec_data["task_path"] = str(task_path)
    spec = parse_trace_spec(spec_data)
    reader = open_trace(spec, Path.cwd(), registry)
    result = TraceInspection(path=str(path), format=fmt, guessed=guessed)
    first = True
    for arrival in reader:
        if first:
            result.first_submit_s = arrival.submit_s
            first = False
        result.last_submit_s = arrival.submit_s
        result.jobs += 1
        gpus = arrival.gpus_per_pod * arrival.pods
        result.gpus[gpus] += 1
        if gpus:
            result.gpu_jobs += 1
            result.gpu_hours += arrival.gpu_units * arrival.runtime_s / 3600.0  # a share: its fraction
            result.accelerators[arrival.accelerator or "any"] += 1
        else:
            result.cpu_only_jobs += 1
        if arrival.pods > 1:
            result.gang_jobs += 1
        result.tenants[f"{arrival.tenant}/{arrival.local_queue}"] += 1
    report = reader.report
    result.rows = max(report.rows, report.emitted + report.filtered + report.skipped)
    result.filtered = report.filtered
    result.skipped = report.skipped
    result.filtered_reasons = Counter(report.filtered_reasons)
    result.skipped_fields = Counter(report.skipped_fields)
    result.notes = Counter(report.notes)
    result.examples = [str(row) for row in report.details[:_DETAILS]]
    return result


def _readable(path: Path) -> None:
    """The first lines of ``path`` as text, or the error saying why they are not (binary, not
    UTF-8, empty): before guessing a format, which needs them."""
    with TextLines(path) as lines:
        for number, _ in enumerate(lines, start=1):
            if number >= 5:
                break
        if lines.line == 0:
            raise ValidationError(f"{path} is empty", path="FILE", source=str(path))


def inspect_node_list(path: str | Path) -> NodeListInspection:
    """An openb node list's pools, as a scenario's ``fleet.node_list`` would make them."""
    listed = read_openb_nodes(path)
    pools = tuple(
        {
            "pool": pool.name,
            "model": pool.model or "(CPU only)",
            "accelerator": pool.accelerator,
            "nodes": pool.nodes,
            "gpus_per_node": pool.gpus_per_node,
            "cpu": pool.cpu_milli / 1000,
            "memory_gib": pool.memory_mib / 1024,
        }
        for pool in listed.pools
    )
    return NodeListInspection(
        path=listed.source,
        pools=pools,
        nodes=listed.nodes,
        gpus=listed.gpus,
        models={model or "(CPU only)": nodes for model, nodes in listed.models.items()},
        notes=tuple(listed.notes()),
    )


def inspect_path(
    path: str | Path,
    fmt: str | None = None,
    *,
    task_path: str | Path | None = None,
    options: Mapping[str, Any] | None = None,
    registry: PluginRegistry | None = None,
) -> TraceInspection | NodeListInspection:
    """:func:`inspect_node_list` for an openb node list (unless a format is given), else
    :func:`inspect_trace`."""
    if fmt is None and is_file(Path(path)) and is_openb_node_list(read_head(Path(path), 1)):
        return inspect_node_list(path)
    return inspect_trace(path, fmt, task_path=task_path, options=options, registry=registry)
