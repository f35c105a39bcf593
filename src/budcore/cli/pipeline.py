"""``budcore pipeline validate|plan|run``: pipeline files checked, estimated and run on a simulated cluster.

``validate`` reads each file (YAML or JSON, see :mod:`budcore.pipeline.loader`) and reports every
problem as ``file:line: field: message``; ``plan`` prints the estimated schedule of a run starting
now (or at ``--start``): each step's start and end as offsets, its slack, the critical path and
the deadline verdict (:func:`budcore.pipeline.estimate.estimate_run`), optionally drawn as a Gantt
chart; ``run`` runs the pipeline end to end with :class:`~budcore.pipeline.local.LocalRunner` on
the in-memory adapters from the plugin registry (``api_call`` steps make real HTTP requests, jobs
run in simulated time).

``--param NAME=VALUE`` values are YAML scalars (``true``, ``3``, ``[a, b]``); a parameter declared
as a string keeps the text as typed (``--param version=1.10`` stays ``"1.10"``). Every input problem
is a ``BudcoreError`` naming the file or option, printed as one line per problem with exit status 2.

Long because the three commands share the loading, ``--param`` and time-offset helpers, and the
Gantt chart of ``plan --png`` is drawn here too (it would be the first thing to move out).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from budcore.cli.output import (
    FORMAT_HELP,
    TABLE_FORMAT_HELP,
    TABLE_FORMATS,
    WIDE_HELP,
    key_column,
    output_format,
    plain_console,
    print_table,
    report_width,
    write_csv,
)
from budcore.cli.reserve import parse_time
from budcore.config.yamlsource import load_yaml_documents, safe_load
from budcore.domain.durations import parse_duration, parse_timedelta
from budcore.domain.errors import PluginError, ValidationError, ValidationErrors
from budcore.domain.timeutil import utcnow

# The pipeline package (networkx, Jinja2) and the runner are imported where they are used: every
# ``budcore`` invocation imports this module to register the commands.
if TYPE_CHECKING:
    from budcore.domain.cluster import Node
    from budcore.pipeline.dag import PipelineGraph
    from budcore.pipeline.estimate import PipelineEstimate
    from budcore.pipeline.model import PipelineSpec
    from budcore.pipeline.state import PipelineRun, RunStatus, StepRun, StepStatus
    from budcore.ports.clock import Clock
    from budcore.scheduling import QueueConfig

__all__ = ["format_offset", "human_duration", "parse_params", "register"]

PLOTS_MISSING: Final = (
    "matplotlib is not installed (install budcore with its plots extra: pip install 'budcore[plots]')"
)
_MAX_CHART_STEPS: Final = 300
_FAR: Final = timedelta(days=3650)  # "ended" far later: a skipped step's estimate then sits at its ready time
_STATUS_STYLE: Final = {
    "completed": "green",
    "failed": "bold red",
    "cancelled": "yellow",
    "skipped": "dim",
    "succeeded": "bold green",
    "partial": "bold yellow",
    "rolled_back": "bold yellow",
}

ParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        help="A pipeline parameter as NAME=VALUE, VALUE read as YAML (true, 3, \\[a, b]); repeatable.",
        show_default=False,
    ),
]
FileArgument = Annotated[Path, typer.Argument(help="The pipeline file (YAML or JSON).", show_default=False)]


# Small pieces --------------------------------------------------------------------------------------


def human_duration(seconds: float) -> str:
    """``150`` → ``2m30s``, ``3605`` → ``1h0m5s``, ``0.5`` → ``0.5s``, ``0`` → ``0s``."""
    if 0 < seconds < 1:
        return f"{seconds:.1f}s"
    total = round(seconds)
    parts = [
        (total // 86400, "d"),
        (total % 86400 // 3600, "h"),
        (total % 3600 // 60, "m"),
        (total % 60, "s"),
    ]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    while len(parts) > 1 and parts[-1][0] == 0:
        parts.pop()
    return "".join(f"{value}{unit}" for value, unit in parts)


def format_offset(seconds: float) -> str:
    """An offset from the start: ``+2m30s``."""
    return f"+{human_duration(max(0.0, seconds))}"


def has_matplotlib() -> bool:
    """Whether ``plan --png`` can draw (matplotlib comes with the ``plots`` extra)."""
    return importlib.util.find_spec("matplotlib") is not None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C ends the command with one line and exit status 130 (no traceback)."""
    try:
        yield
    except KeyboardInterrupt:
        plain_console(stderr=True).print("interrupted", highlight=False)
        raise typer.Exit(130) from None


def _located(error: ValidationError, path: Path) -> ValidationError:
    """``error`` with the file it is about, when it does not name one itself."""
    if error.source:
        return error
    return ValidationError(error.message, path=error.path, source=str(path), line=error.line)


def load_file(path: Path) -> list[tuple[PipelineSpec, PipelineGraph]]:
    """Every pipeline in ``path``; a directory or a document of another kind is refused by name.

    Every problem names the file; a single problem is raised alone (one line, not a list of one).
    """
    try:
        return _read(path)
    except ValidationError as exc:
        errors = [_located(e, path) for e in (exc.errors if isinstance(exc, ValidationErrors) else [exc])]
        raise errors[0] if len(errors) == 1 else ValidationErrors(errors) from None


def _read(path: Path) -> list[tuple[PipelineSpec, PipelineGraph]]:
    if path.is_dir():
        raise ValidationError("is a directory: give a pipeline file", source=str(path))
    if path.suffix != ".json":
        problems = [
            ValidationError(
                f"a {document.data['kind']}, not a Pipeline (apiVersion budcore.io/v1alpha1, kind Pipeline)",
                path="kind",
                source=document.source,
                line=document.line_of("kind"),
            )
            for document in load_yaml_documents(path)
            if isinstance(document.data, Mapping) and document.data.get("kind") not in (None, "Pipeline")
        ]
        if problems:
            raise ValidationErrors(problems)
    from budcore.pipeline.loader import load_pipelines

    return load_pipelines(path)


def _load_one(path: Path) -> tuple[PipelineSpec, PipelineGraph]:
    pipelines = load_file(path)
    if len(pipelines) > 1:
        ids = ", ".join(spec.id for spec, _ in pipelines)
        raise ValidationError(f"{len(pipelines)} pipelines in one file ({ids}): give one", source=str(path))
    return pipelines[0]


def parse_params(items: list[str] | None, spec: PipelineSpec) -> dict[str, Any]:
    """``--param NAME=VALUE`` options → the run's parameters, checked by ``spec.resolve_parameters``."""
    given: dict[str, Any] = {}
    for item in items or ():
        name, equals, text = item.partition("=")
        name = name.strip()
        if not equals or not name:
            raise ValidationError(f"expected NAME=VALUE, got {item!r}", path="--param")
        if name in given:
            raise ValidationError("given twice", path=f"--param {name}")
        try:
            value = safe_load(text) if text.strip() else ""
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or "cannot be parsed"
            raise ValidationError(
                f"{text!r} is not a YAML value: {problem}", path=f"--param {name}"
            ) from None
        declared = spec.parameters.get(name)
        if declared is not None and declared.type == "string" and not isinstance(value, str):
            value = text  # a string parameter keeps what was typed: 1.10 is not the number 1.1
        given[name] = value
    try:
        return spec.resolve_parameters(given)
    except ValidationErrors as exc:
        errors = [
            ValidationError(e.message, path=e.path.replace("params.", "--param ", 1)) for e in exc.errors
        ]
        raise errors[0] if len(errors) == 1 else ValidationErrors(errors) from None


def _step_name(graph: PipelineGraph, record_id: str, parent: str | None = None) -> tuple[str, str]:
    """(name, type) of a step record: a graph step, a loop iteration or a compensating step."""
    step = graph.steps.get(record_id) or (graph.steps.get(parent) if parent else None)
    if step is None:
        return "", ""
    if record_id != step.id:
        from budcore.pipeline.advance import UNDO_SUFFIX

        undo = record_id.endswith(UNDO_SUFFIX)
        body = step.compensate if undo else getattr(step.config, "step", None)
        kind = body.type.value if body is not None else step.type.value
        return (f"{step.name} {record_id.removeprefix(step.id)}" if step.name else ""), kind
    return step.name or "", step.type.value


# validate ------------------------------------------------------------------------------------------


def _summary(spec: PipelineSpec) -> dict[str, Any]:
    from budcore.pipeline.model import StepType

    counts = Counter(step.type for step in spec.steps)
    types = {kind.value: counts[kind] for kind in StepType if counts[kind]}
    return {"id": spec.id, "version": spec.version, "steps": len(spec.steps), "types": types}


def _validate(files: list[Path], fmt: str) -> None:
    results: list[dict[str, Any]] = []
    for path in files:
        try:
            pipelines = [_summary(spec) for spec, _ in load_file(path)]
            results.append({"file": str(path), "ok": True, "pipelines": pipelines, "errors": []})
        except ValidationError as exc:
            errors = exc.errors if isinstance(exc, ValidationErrors) else [exc]
            problems = [
                {"source": e.source, "line": e.line, "path": e.path, "message": e.message, "text": str(e)}
                for e in (_located(e, path) for e in errors)
            ]
            results.append({"file": str(path), "ok": False, "pipelines": [], "errors": problems})
    invalid = [r for r in results if not r["ok"]]
    if fmt == "json":
        plain_console(soft_wrap=True).print_json(json.dumps({"ok": not invalid, "files": results}))
    else:
        out, err = plain_console(soft_wrap=True), plain_console(stderr=True, soft_wrap=True)
        for result in results:
            for p in result["pipelines"]:
                kinds = ", ".join(f"{n} {kind}" for kind, n in p["types"].items())
                line = (
                    f" {result['file']}: pipeline {p['id']!r} v{p['version']}, {p['steps']} steps ({kinds})"
                )
                out.print(Text.assemble(("ok:", "green"), line), highlight=False)
            for problem in result["errors"]:
                err.print(problem["text"], highlight=False)
        if invalid:
            count = sum(len(r["errors"]) for r in invalid)
            err.print(
                Text.assemble(
                    ("error:", "bold red"),
                    f" {len(invalid)} of {len(results)} file(s) invalid ({count} problem(s))",
                ),
                highlight=False,
            )
    if invalid:
        raise typer.Exit(2)


# plan ----------------------------------------------------------------------------------------------


def predicted_skips(graph: PipelineGraph, params: Mapping[str, Any]) -> set[str]:
    """Steps a run with ``params`` is sure to skip: conditions and ``when``s that read only
    parameters are evaluated; one that reads step outputs is unknown, and its steps are kept."""
    from budcore.pipeline.model import ConditionStepConfig
    from budcore.pipeline.templates import Sandbox

    sandbox = Sandbox()
    context = {"params": dict(params)}
    skipped: set[str] = set()
    branch: dict[str, str] = {}

    def known(expression: str, where: str) -> bool | None:
        try:
            return sandbox.evaluate(expression, context, where=where)
        except ValidationError:
            return None

    for step_id in graph.order:
        step = graph.steps[step_id]
        gate = graph.branch_of.get(step_id)
        if gate is not None and (gate[0] in skipped or branch.get(gate[0], gate[1]) != gate[1]):
            skipped.add(step_id)
            continue
        if step.when is not None and known(step.when, f"steps[{step_id}].when") is False:
            skipped.add(step_id)
            continue
        if isinstance(step.config, ConditionStepConfig):
            result = known(step.config.expression, f"steps[{step_id}].config.expression")
            if result is not None:
                branch[step_id] = "then" if result else "else"
    return skipped


def plan_estimate(
    graph: PipelineGraph, params: Mapping[str, Any], start: datetime, buffer_s: float
) -> tuple[PipelineEstimate, set[str]]:
    """The estimate of a run starting at ``start``, and the steps it is sure to skip."""
    from budcore.pipeline.estimate import EstimateOptions, estimate_run
    from budcore.pipeline.state import PipelineRun, StepRun, StepStatus

    spec = graph.spec
    skipped = predicted_skips(graph, params)
    run = PipelineRun(
        run_id="plan",
        pipeline_id=spec.id,
        pipeline_version=spec.version,
        tenant=spec.tenant,
        params=dict(params),
        started_at=start,
        deadline=spec.deadline_for(start),
    )
    for step_id in skipped:
        run.steps[step_id] = StepRun(step_id, StepStatus.SKIPPED, ended_at=start + _FAR)
    estimate = estimate_run(graph, now=start, run=run, options=EstimateOptions(buffer_s=buffer_s))
    return estimate, skipped


def _verdict(estimate: PipelineEstimate) -> str:
    if estimate.deadline is None:
        return "no deadline"
    margin = (estimate.deadline - estimate.end).total_seconds()
    when = _iso(estimate.deadline)
    if margin >= 0:
        return f"on time: estimated end {human_duration(margin)} before the deadline ({when})"
    return f"LATE: estimated end {human_duration(-margin)} after the deadline ({when})"


def _plan_rows(graph: PipelineGraph, estimate: PipelineEstimate, skipped: set[str]) -> list[dict[str, Any]]:
    rows = []
    for step_id in graph.order:
        step, e = graph.steps[step_id], estimate.steps[step_id]
        rows.append(
            {
                "id": step_id,
                "name": step.name or "",
                "type": step.type.value,
                "depends_on": list(graph.dependencies[step_id]),
                "start": _iso(e.start),
                "end": _iso(e.end),
                "start_offset_s": (e.start - estimate.start).total_seconds(),
                "end_offset_s": (e.end - estimate.start).total_seconds(),
                "duration_s": e.duration_s,
                "slack_s": e.slack_s,
                "critical": e.critical,
                "skipped": step_id in skipped,
            }
        )
    return rows


def _print_plan(
    spec: PipelineSpec, estimate: PipelineEstimate, rows: list[dict[str, Any]], buffer_s: float, wide: bool
) -> None:
    console = plain_console(width=report_width(160))
    table = Table(title=f"Plan of pipeline {spec.id!r} v{spec.version} ({len(rows)} steps)")
    for column in ("", "#", "step", "name", "type", "after", "start", "end", "duration", "slack"):
        if column == "step":
            key_column(table, column)
        else:
            table.add_column(column, justify="right" if column in ("#", "duration", "slack") else "left")
    for index, row in enumerate(rows, 1):
        mark = Text("*", style="bold red") if row["critical"] else Text("")
        duration = "skipped" if row["skipped"] else human_duration(row["duration_s"])
        table.add_row(
            mark,
            str(index),
            row["id"],
            row["name"],
            row["type"],
            ", ".join(row["depends_on"]) or "-",
            format_offset(row["start_offset_s"]),
            format_offset(row["end_offset_s"]),
            duration,
            human_duration(row["slack_s"]),
        )
    print_table(table, wide=wide, console=console)
    console.print("* on the critical path; times are offsets from the start", highlight=False)
    console.print(f"critical path: {' → '.join(estimate.critical_path)}", highlight=False)
    console.print(
        f"makespan: {human_duration(estimate.makespan_s)} (start {_iso(estimate.start)}, estimated end "
        f"{_iso(estimate.end)}, {human_duration(buffer_s)} between a step and the next)",
        highlight=False,
    )
    console.print(f"deadline: {_verdict(estimate)}", highlight=False)


def _draw_gantt(
    out: Path, graph: PipelineGraph, estimate: PipelineEstimate, rows: list[dict[str, Any]]
) -> None:
    """A Gantt chart: a bar per step coloured by type, the critical path outlined, dependency
    arrows, and the deadline as a red line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from budcore.pipeline.model import StepType

    spec = graph.spec
    span = max(estimate.makespan_s, 1.0)
    scale, unit = (
        (3600.0, "hours") if span > 3 * 3600 else (60.0, "minutes") if span > 180 else (1.0, "seconds")
    )
    palette = plt.get_cmap("tab10")
    colour = {kind.value: palette(i) for i, kind in enumerate(StepType)}
    fig, ax = plt.subplots(figsize=(11, 1.6 + 0.42 * len(rows)))
    y = {row["id"]: i for i, row in enumerate(rows)}
    for row in rows:
        x0, width, i = row["start_offset_s"] / scale, row["duration_s"] / scale, y[row["id"]]
        if row["skipped"]:
            ax.plot(x0, i, marker="x", color="0.5", markersize=8)
        elif row["duration_s"] <= span / 100:  # too thin for a bar: a marker
            edge = "black" if row["critical"] else colour[row["type"]]
            ax.plot(x0, i, marker="D", color=colour[row["type"]], markeredgecolor=edge, markersize=7)
        else:
            ax.barh(
                i,
                width,
                left=x0,
                height=0.6,
                color=colour[row["type"]],
                edgecolor="black" if row["critical"] else "none",
                linewidth=2.0 if row["critical"] else 0.0,
            )
        label = "skipped" if row["skipped"] else human_duration(row["duration_s"])
        ax.text(x0 + width, i, f"  {label}", va="center", fontsize=8)
    for row in rows:
        for dep in row["depends_on"]:
            end = next(r["end_offset_s"] for r in rows if r["id"] == dep)
            ax.annotate(
                "",
                xy=(row["start_offset_s"] / scale, y[row["id"]]),
                xytext=(end / scale, y[dep]),
                arrowprops={"arrowstyle": "->", "color": "0.55", "lw": 0.6, "alpha": 0.6},
            )
    handles: list[Any] = [Patch(color=colour[t], label=t) for t in dict.fromkeys(r["type"] for r in rows)]
    handles.append(Patch(facecolor="white", edgecolor="black", linewidth=2.0, label="critical path"))
    if any(row["skipped"] for row in rows):
        handles.append(Line2D([], [], color="0.5", marker="x", linestyle="", label="skipped"))
    right = span
    if estimate.deadline is not None:
        offset = (estimate.deadline - estimate.start).total_seconds()
        if offset <= 3 * span:
            ax.axvline(offset / scale, color="red", linestyle="--", linewidth=1.2)
            handles.append(Line2D([], [], color="red", linestyle="--", label="deadline"))
            right = max(right, offset)
        else:
            ax.set_title(f"deadline at {format_offset(offset)}, off the chart", loc="right", fontsize=8)
    ax.set_xlim(0, right * 1.12 / scale)
    ax.set_yticks(range(len(rows)), labels=[f"{r['id']} {r['name']}".strip() for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel(f"{unit} from the start")
    ax.set_title(f"{spec.id} v{spec.version}: makespan {human_duration(estimate.makespan_s)}", loc="left")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=120)
    except OSError as exc:
        raise ValidationError(f"cannot write {out}: {exc.strerror or exc}", path="--png") from None
    finally:
        plt.close(fig)


def _write_plan_csv(rows: list[dict[str, Any]]) -> None:
    fields = ["id", "name", "type", "depends_on", "start_offset_s", "end_offset_s", "duration_s", "slack_s"]
    fields += ["critical", "skipped", "start", "end"]
    writer = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        flags = {key: str(row[key]).lower() for key in ("critical", "skipped")}
        writer.writerow({**row, **flags, "depends_on": " ".join(row["depends_on"])})


# run -----------------------------------------------------------------------------------------------


class _Progress:
    """Prints one line per step transition (to stderr) as the run advances."""

    def __init__(self, graph: PipelineGraph, started: datetime, clock: Clock, console: Console) -> None:
        self.graph, self.started, self.clock, self.console = graph, started, clock, console
        self.seen: dict[str, StepStatus] = {}

    def __call__(self, run: PipelineRun, now: datetime | None = None) -> None:
        at = format_offset(((now or self.clock.now()) - self.started).total_seconds())
        for record in run.steps.values():
            if record.status.value == "pending" or self.seen.get(record.step_id) is record.status:
                continue
            self.seen[record.step_id] = record.status
            name, _ = _step_name(self.graph, record.step_id, record.parent)
            why = record.error or (record.message if record.status.value != "running" else None)
            line = f"[{at}] {record.step_id}{f' {name}' if name else ''}: {record.status.value}"
            self.console.print(line + (f" ({why})" if why else ""), highlight=False)


def _cluster(
    spec: PipelineSpec, queues: list[Path] | None, nodes: Path | None
) -> tuple[QueueConfig, list[Node], str]:
    """(queue config, nodes, description): the given cluster, or one sized for the pipeline."""
    from budcore.pipeline.local import check_local_queues, cluster_for

    if not queues and nodes is None:
        config, generated = cluster_for(spec)
        return config, generated, f"a simulated cluster sized for it ({_count(len(generated), 'node')})"
    if not queues or nodes is None:
        missing = "--nodes" if nodes is None else "--queues"
        raise ValidationError("--queues and --nodes go together: give both, or neither", path=missing)
    from budcore.config.kueue import load_queue_config
    from budcore.hardware.labels import parse_nodes_yaml

    config = load_queue_config(*queues)
    try:
        text = nodes.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read {nodes}: {exc}", path="--nodes") from None
    fleet = parse_nodes_yaml(text, source=str(nodes)).domain_nodes()
    if not fleet:
        raise ValidationError(f"{nodes} lists no node", path="--nodes")
    check_local_queues(spec, config)
    return config, fleet, f"{_count(len(fleet), 'node')} of {nodes}, queues of {', '.join(map(str, queues))}"


def _run_rows(graph: PipelineGraph, run: PipelineRun, started: datetime) -> list[dict[str, Any]]:
    def offset(value: datetime | None) -> float | None:
        return None if value is None else (value - started).total_seconds()

    children: dict[str | None, list[StepRun]] = {}
    for record in run.steps.values():
        children.setdefault(record.parent, []).append(record)
    ordered = [r for top in children.get(None, []) for r in (top, *children.get(top.step_id, []))]
    placed = {r.step_id for r in ordered}
    ordered += [r for r in run.steps.values() if r.step_id not in placed]  # anything else, as created
    rows = []
    for record in ordered:
        name, kind = _step_name(graph, record.step_id, record.parent)
        rows.append(
            {
                "id": record.step_id,
                "name": name,
                "type": kind,
                "status": record.status.value,
                "start_offset_s": offset(record.started_at),
                "end_offset_s": offset(record.ended_at),
                "attempts": record.attempt,
                "job_id": record.job_id,
                "outputs": record.outputs,
                "error": record.error,
                "message": record.message,
            }
        )
    return rows


#: ``pipeline run --format csv`` columns: one row per step (``outputs`` as JSON).
RUN_FIELDS: Final = (
    "id",
    "name",
    "type",
    "status",
    "start_offset_s",
    "end_offset_s",
    "attempts",
    "job_id",
    "error",
    "message",
    "outputs",
)


def _print_run(
    spec: PipelineSpec,
    run: PipelineRun,
    rows: list[dict[str, Any]],
    notes: list[str],
    makespan: float,
    wide: bool = False,
) -> None:
    console = plain_console(width=report_width(180))
    table = Table(title=f"Run {run.run_id} of pipeline {spec.id!r} v{spec.version} (simulated time)")
    for column in ("step", "name", "type", "status", "start", "end", "attempts", "job", "message"):
        if column in ("step", "job"):
            key_column(table, column)
        else:
            table.add_column(column, justify="right" if column == "attempts" else "left")
    for row in rows:
        start, end = row["start_offset_s"], row["end_offset_s"]
        table.add_row(
            row["id"],
            row["name"],
            row["type"],
            Text(row["status"], style=_STATUS_STYLE.get(row["status"], "")),
            "-" if start is None else format_offset(start),
            "-" if end is None else format_offset(end),
            str(row["attempts"]),
            row["job_id"] or "-",
            row["error"] or row["message"] or "",
        )
    print_table(table, wide=wide, console=console)
    for note in notes:
        console.print(f"notification: {note}", highlight=False)
    status = Text(run.status.value, style=_STATUS_STYLE.get(run.status.value, ""))
    tail = f" — {run.message or ''}, makespan {human_duration(makespan)}"
    console.print(Text.assemble(f"run {run.run_id}: ", status, tail), highlight=False)


def _run(
    file: Path,
    params: list[str] | None,
    queues: list[Path] | None,
    nodes: Path | None,
    horizon: str,
    fmt: str,
    quiet: bool,
    wide: bool = False,
) -> RunStatus:
    from budcore.pipeline.engine import RecordingNotifier
    from budcore.pipeline.local import LocalRunner, VirtualClock
    from budcore.plugins import default_registry
    from budcore.ports.cluster_backend import SimulatedClusterBackend

    limit = parse_timedelta(horizon, "--horizon", positive=True)
    spec, graph = _load_one(file)
    values = parse_params(params, spec)
    config, node_list, where = _cluster(spec, queues, nodes)
    registry = default_registry()
    clock = VirtualClock(utcnow().replace(microsecond=0))
    cluster = registry.cluster_backend("inmemory", nodes=node_list, clock=clock)
    if not isinstance(cluster, SimulatedClusterBackend):
        raise PluginError("pipeline run needs a cluster backend that simulates execution")
    notifier = RecordingNotifier()
    runner = LocalRunner(
        config=config,
        cluster=cluster,
        job_store=registry.job_store("inmemory"),
        pipeline_store=registry.pipeline_store("inmemory"),
        clock=clock,
        notifier=notifier,
        horizon=limit,
    )
    err = plain_console(stderr=True, soft_wrap=True, quiet=quiet)
    run_id = uuid.uuid4().hex[:12]
    err.print(f"run {run_id}: pipeline {spec.id!r} v{spec.version} on {where}", highlight=False)
    started = clock.now()
    progress = _Progress(graph, started, clock, err)
    report = runner.run(spec, values, run_id=run_id, on_advance=progress)
    progress(report.run, report.ended)  # what the last advance did not show (a cancel at the horizon)
    rows = _run_rows(graph, report.run, report.started)
    sent = list(notifier.sent.values())
    if fmt == "json":
        document = {
            **report.run.header(),
            "makespan_s": report.makespan_s,
            "steps": rows,
            "notifications": [
                {
                    "step": n.step_id,
                    "channel": n.channel,
                    "recipients": list(n.recipients),
                    "message": n.message,
                }
                for n in sent
            ],
        }
        plain_console(soft_wrap=True).print_json(json.dumps(document, default=str))
    elif fmt == "csv":
        write_csv(rows, RUN_FIELDS)
    else:
        notes = [f"{n.channel} → {', '.join(n.recipients) or '-'}: {n.message}" for n in sent]
        _print_run(spec, report.run, rows, notes, report.makespan_s, wide)
    return report.run.status


# registration --------------------------------------------------------------------------------------

_GROUP_HELP = """Pipelines: check their files, estimate their schedule, run them on a simulated cluster.

Example:

  budcore pipeline validate rag.yaml

  budcore pipeline plan rag.yaml --param enable_reranker=false --png rag.png

  budcore pipeline run rag.yaml --param budsim_url=http://localhost:8080/api/v1/optimize

An example pipeline ships with budcore: budcore/pipeline/examples/deploy-enterprise-rag.yaml.
"""


def register(app: typer.Typer) -> None:
    """Attach the ``pipeline`` group to ``app``."""
    group = typer.Typer(help=_GROUP_HELP, no_args_is_help=True)

    @group.command("validate")
    def validate_command(
        files: Annotated[
            list[Path], typer.Argument(help="Pipeline files (YAML or JSON).", show_default=False)
        ],
        fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "table",
    ) -> None:
        """Check pipeline files: one 'ok' line per pipeline, or every problem as file:line: field: message.

        Exit status 2 when any file is invalid.
        """
        output_format(fmt)
        with _interruptible():
            _validate(files, fmt)

    @group.command("plan")
    def plan_command(
        file: FileArgument,
        params: ParamOption = None,
        buffer: Annotated[
            str,
            typer.Option("--buffer", help="Time between a step's end and the next step's start, e.g. 5s."),
        ] = "5s",
        start: Annotated[
            str | None,
            typer.Option("--start", help="When the run starts (ISO 8601 with offset or Z). Default: now."),
        ] = None,
        png: Annotated[
            Path | None,
            typer.Option("--png", help="Also draw a Gantt chart to this PNG file (needs the 'plots' extra)."),
        ] = None,
        fmt: Annotated[
            str, typer.Option("--format", help="Output format: 'table', 'json' or 'csv'.")
        ] = "table",
        wide: Annotated[bool, typer.Option("--wide", help=WIDE_HELP)] = False,
    ) -> None:
        """The estimated schedule: each step's start, end, duration and slack, the critical path,
        the makespan and the deadline verdict. Conditions that read only parameters are evaluated,
        so the steps a run would skip show as skipped."""
        if fmt not in ("table", "json", "csv"):
            raise ValidationError(f"unknown format {fmt!r}; use table, json or csv", path="--format")
        if png is not None and not has_matplotlib():
            raise ValidationError(PLOTS_MISSING, path="--png")
        buffer_s = parse_duration(buffer, "--buffer")
        began = parse_time(start, "--start") if start is not None else utcnow().replace(microsecond=0)
        with _interruptible():
            spec, graph = _load_one(file)
            values = parse_params(params, spec)
            estimate, skipped = plan_estimate(graph, values, began, buffer_s)
            rows = _plan_rows(graph, estimate, skipped)
            if png is not None:
                if len(rows) > _MAX_CHART_STEPS:
                    raise ValidationError(f"a chart shows at most {_MAX_CHART_STEPS} steps", path="--png")
                _draw_gantt(png, graph, estimate, rows)
            if fmt == "json":
                document = {
                    "pipeline": spec.id,
                    "version": spec.version,
                    "params": values,
                    "start": _iso(estimate.start),
                    "end": _iso(estimate.end),
                    "makespan_s": estimate.makespan_s,
                    "buffer_s": buffer_s,
                    "critical_path": list(estimate.critical_path),
                    "deadline": _iso(estimate.deadline),
                    "meets_deadline": estimate.meets_deadline,
                    "verdict": _verdict(estimate),
                    "steps": rows,
                }
                plain_console(soft_wrap=True).print_json(json.dumps(document, default=str))
            elif fmt == "csv":
                _write_plan_csv(rows)
            else:
                _print_plan(spec, estimate, rows, buffer_s, wide)
            if png is not None:
                plain_console(stderr=True, soft_wrap=True).print(f"wrote {png}", highlight=False)

    @group.command("run")
    def run_command(
        file: FileArgument,
        params: ParamOption = None,
        queues: Annotated[
            list[Path] | None,
            typer.Option("--queues", help="Kueue YAML (files or directories) to run on; needs --nodes."),
        ] = None,
        nodes: Annotated[
            Path | None,
            typer.Option("--nodes", help="A `kubectl get nodes -o yaml` dump to run on; needs --queues."),
        ] = None,
        horizon: Annotated[
            str, typer.Option("--horizon", help="Simulated time after which a run still going is cancelled.")
        ] = "30d",
        fmt: Annotated[str, typer.Option("--format", help=TABLE_FORMAT_HELP)] = "table",
        quiet: Annotated[
            bool, typer.Option("--quiet", "-q", help="No progress lines on stderr, only the result.")
        ] = False,
        wide: Annotated[bool, typer.Option("--wide", help=WIDE_HELP)] = False,
    ) -> None:
        """Run the pipeline on the in-memory backend: api_call steps make real HTTP requests, jobs run
        in simulated time, on a cluster sized for the pipeline (or on --queues and --nodes).

        Progress goes to stderr, one line per step transition; then a table of the steps and the run's status.

        Exit status 0: the run succeeded. 1: it failed, ended partial, was cancelled or rolled back.

        Exit status 2: invalid input (the file, a --param, an option). 130: interrupted (Ctrl-C).
        """
        from budcore.pipeline.state import RunStatus

        output_format(fmt, TABLE_FORMATS)
        with _interruptible():
            status = _run(file, params, queues, nodes, horizon, fmt, quiet, wide)
        if status is not RunStatus.SUCCEEDED:
            raise typer.Exit(1)

    app.add_typer(group, name="pipeline")
