"""``budcore simulate``: run a scenario and write its report, records, time series and plots."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from budcore.cli.output import FORMAT_HELP, output_format, plain_console, report_width
from budcore.domain.errors import BudcoreError, PluginError, ValidationError
from budcore.hardware.labels import Fleet
from budcore.scheduling.ordering import Ordering

from .build import build_simulation
from .engine import SimulationResult
from .outcomes import WaitSamples, censored_text, completed_text, never_admitted, outcome_line
from .outputs import RunDirectory
from .progress import (
    PROGRESS_HELP,
    QUIET_HELP,
    Mode,
    points_progress,
    progress_mode,
    sim_time,
    simulation_progress,
)
from .report import build_report, dumps, records_csv, run_figures, series_csv, trace_summary
from .scenario import LoadedScenario, NodeSource, Scenario, load_scenario, scenario_json_schema
from .sharing import sharing_line


def default_scenario_path() -> Path:
    return Path(str(files("budcore_simulator") / "scenarios" / "default" / "scenario.yaml"))


def builtin_scenarios() -> list[str]:
    """The names of the scenarios that ship in the package (``simulator/scenarios/<name>/``)."""
    root = Path(str(files("budcore_simulator") / "scenarios"))
    return sorted(p.name for p in root.iterdir() if (p / "scenario.yaml").is_file())


def resolve_scenario(scenario: Path | None) -> Path:
    """A scenario argument: a file, or the name of a built-in scenario (None: ``default``).

    A path that exists always wins, so a local file named like a built-in scenario is read.
    """
    if scenario is None:
        return default_scenario_path()
    if scenario.exists() or scenario.suffix or len(scenario.parts) > 1:
        return scenario
    builtin = Path(str(files("budcore_simulator") / "scenarios" / scenario.name / "scenario.yaml"))
    return builtin if builtin.is_file() else scenario


OUTPUT_ROOT = Path("budcore-out")
# With money: the metered usage (budcore.cost.usagefile's format) and the price book pricing it,
# so `budcore cost report --usage usage_records.csv --price-book pricebook.yaml` reads a run.
USAGE_RECORDS = "usage_records.csv"
PRICE_BOOK = "pricebook.yaml"
PARTIAL_COMPARE = "compare.partial.json"  # the runs an interrupted compare finished
_UNSAFE_IN_NAME = re.compile(r"[^\w.-]+")


def safe_dirname(name: str) -> str:
    """``name`` as one harmless path component: no separators, no leading dot, never empty.

    The default output directory is named after the scenario's ``name``, which is free text from a
    file: ``../../x`` or ``/etc`` must not write outside ``budcore-out/``, and ``.x`` should not
    hide the directory. Runs of other characters become ``-``; an explicit ``--out`` is never
    rewritten (that path is the user's choice).
    """
    cleaned = _UNSAFE_IN_NAME.sub("-", name).strip(".-")[:100].rstrip(".-")
    return cleaned or "scenario"


def default_output_dir(name: str, suffix: str = "") -> Path:
    """``budcore-out/<safe name><suffix>``: where a command writes when ``--out`` is not given."""
    return OUTPUT_ROOT / f"{safe_dirname(name)}{suffix}"


def prepare_output_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) and check it can be written, before any simulation runs.

    A run can take minutes; finding only afterwards that ``--out`` names a file or an unwritable
    place wastes them and ends in a traceback. Problems become one ``--out`` error (exit 2).
    """
    if path.exists() and not path.is_dir():
        raise ValidationError(f"{path} exists and is not a directory", path="--out")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValidationError(
            f"cannot create directory {path}: {exc.strerror or exc}", path="--out"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValidationError(f"directory {path} is not writable", path="--out")
    return path


def write_text(path: Path, text: str) -> Path:
    """Write one output file; a failure (disk full, permissions changed) is one line, not a traceback."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot write {path}: {exc.strerror or exc}", path="--out") from None
    return path


class SimulationStopped(KeyboardInterrupt):
    """A signal ended the simulation early (:func:`run_scenario`): ``result`` is the run up to then."""

    def __init__(self, result: SimulationResult, signum: int) -> None:
        super().__init__(signum)
        self.result = result
        self.signum = signum


def run_scenario(
    loaded: LoadedScenario, *, console: Console | None = None, mode: Mode | None = None
) -> SimulationResult:
    """Run a loaded scenario with progress in ``mode`` (:mod:`.progress`) on ``console`` (default:
    stderr); without a mode, a bar when ``console`` is given, not quiet, and a terminal.

    The first Ctrl-C or SIGTERM ends the simulation at the current simulated time and raises
    :class:`SimulationStopped` with the run up to then (every figure consistent: the loop stops
    between two events); a second one interrupts at once.
    """
    from budcore.cli import interrupt

    if mode is None:
        mode = "off" if console is None or console.quiet else "auto"
    scenario = loaded.scenario
    with simulation_progress(scenario.name, scenario.horizon, mode, console) as report:
        simulation = build_simulation(loaded, progress=report)
        with interrupt.graceful(simulation.request_stop) as stopped:
            result = simulation.run()
    signum = stopped()
    if signum is not None:
        raise SimulationStopped(result, signum)
    return result


MATPLOTLIB_MISSING = (
    "matplotlib is not installed (install budcore with its plots extra: pip install 'budcore[plots]')"
)
PLOTS_MISSING = f"plots skipped: {MATPLOTLIB_MISSING}; pass --no-plots to silence this"


def plots_available() -> bool:
    """Whether matplotlib can be imported; without it runs still write every other output.

    Checked before any work, so a base install (no ``plots`` extra) never loses a finished
    simulation to an ImportError at the end.
    """
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def write_outputs(
    result: SimulationResult,
    report: dict[str, Any],
    out: Path,
    *,
    plots: bool,
    run: RunDirectory | None = None,
    complete: bool = True,
) -> list[Path]:
    """Write the report, records, series (and plots) to ``out``, creating it if needed; with money,
    also the usage records (``usage_records.csv``) and the price book that prices them.

    ``report.json`` is written last (:class:`.outputs.RunDirectory`): until then it says
    ``"complete": false``, and with ``complete=False`` (an interrupted run) it stays so.
    """
    prepare_output_dir(out)
    if run is None:
        run = RunDirectory(out, "simulate", "report.json")
        run.begin({"scenario": report.get("scenario"), "seed": report.get("seed")})
    written = []
    for name, text in (
        ("run.json", json.dumps(run_figures(result), indent=2, sort_keys=True) + "\n"),
        ("jobs.csv", records_csv(result.records, end_s=result.horizon_s)),
        ("usage.csv", series_csv(result)),
    ):
        written.append(run.write(name, text))
    if result.money is not None:
        from budcore.cost.usagefile import write_usage

        records = out / USAGE_RECORDS
        run.record(USAGE_RECORDS)
        write_usage(records, result.money.records)
        written.append(records)
        written.append(run.write(PRICE_BOOK, result.money.options.book.to_yaml()))
    if plots:
        from .plots import write_plots

        for path in write_plots(result, out):
            run.record(path.name)
            written.append(path)
    if complete:
        written.insert(0, run.finish(report))
    else:
        run.write(run.main, dumps({**report, "complete": False}))
        written.insert(0, out / run.main)
    return written


# Cells: a run with no jobs, or no time, leaves many figures undefined (None); they read "-".
def _minutes(value: float | None) -> str:
    return "-" if value is None else f"{value / 60:.1f}m"


def _km_minutes(block: dict[str, Any] | None, level: str) -> str:
    """A Kaplan–Meier percentile of a ``*_km_s`` block, or ``> <longest wait followed>`` when too
    many waits were still running at the end for it to be estimated ("-" without waits)."""
    if block is None:
        return "-"
    value = block[level]
    if value is not None or not block["samples"]:
        return _minutes(value)
    return f"> {_minutes(block['beyond_s'])}"


def _percent(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}%}"


def _fixed(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _money(value: object) -> str:
    return "-" if value is None else f"${value}"


def _plain(value: object) -> str:
    return "-" if value is None else str(value)


def _duration(seconds: float | None) -> str:
    """A duration at a readable scale: seconds, minutes or hours."""
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def time_line(report: dict[str, Any]) -> str | None:
    """The summary's line on time limits (only when the report has its ``time`` block)."""
    figures = report.get("time")
    if figures is None:
        return None
    factor = figures["runaway_factor"]
    alerts = "off" if factor is None else f"{figures['runaway_alerts']} (ran > {factor:g}× their estimate)"
    return (
        f"time limits: {figures['timeouts']} timeout(s) at their maximum duration   runaway alerts: {alerts}"
    )


def eta_line(report: dict[str, Any]) -> str | None:
    """The summary's line on ETA accuracy (only when the run measured ETAs)."""
    eta = report.get("eta")
    if eta is None:
        return None
    overall = eta["overall"]
    return (
        f"ETA at submission vs actual start: |error| p50 {_duration(overall['abs_error_p50_s'])}, "
        f"p95 {_duration(overall['abs_error_p95_s'])}, mean {_signed(overall['mean_error_s'])} over "
        f"{overall['count']} job(s); {overall['no_estimate']} without an estimate, "
        f"{overall['not_started']} not started"
    )


def reservation_lines(report: dict[str, Any]) -> list[str]:
    """The summary's lines on capacity bookings, one per booking (none without bookings)."""
    lines = []
    for name, b in (report.get("reservations") or {}).items():
        unit = "GPU-h" if b["resource"] == "nvidia.com/gpu" else f"{b['resource']}-h"
        cost = (
            ""
            if b["unused_cost"] is None
            else f", unused booked cost {_money(b['unused_cost'])} ({b['owner']})"
        )
        window = f"{_duration(b['start_s'])} to {_duration(b['end_s'])} into the run"
        lines.append(
            f"reservation {name}: {b['quantity']:g} {b['resource']} on {b['flavor']} for {b['owner']}, "
            f"{window}: booked {_fixed(b['booked_hours'])} {unit}, used {_fixed(b['used_hours'])} "
            f"({_percent(b['utilisation'])}), unused {_fixed(b['unused_hours'])}{cost}; "
            f"{b['evicted_at_start']} workload(s) evicted at its start"
        )
    return lines


def pipeline_lines(report: dict[str, Any]) -> list[str]:
    """The summary's lines on pipeline runs (none without pipelines): all runs, then one line per
    pipeline when there are several, then the first run that did not succeed."""
    figures = report.get("pipelines")
    if figures is None:
        return []

    def line(name: str, stats: dict[str, Any]) -> str:
        statuses = ", ".join(f"{count} {status}" for status, count in stats["by_status"].items())
        span, wait = stats["makespan_s"], stats["critical_path_wait_s"]
        return (
            f"{name}: {stats['runs']} run(s) ({statuses or 'none'}); makespan of the succeeded "
            f"p50 {_duration(span['p50'])}, p95 {_duration(span['p95'])}, max {_duration(span['max'])}; "
            f"critical-path waits mean {_duration(wait['mean'])}, p95 {_duration(wait['p95'])} "
            f"({_percent(stats['critical_path_wait_share'])} of makespan)"
        )

    lines = [line("pipelines", figures)]
    if len(figures["by_pipeline"]) > 1:
        lines.extend(line(f"  {name}", stats) for name, stats in figures["by_pipeline"].items())
    if figures["not_succeeded"]:
        first = figures["not_succeeded"][0]
        lines.append(f"  first run not succeeded: {first['run_id']} {first['status']}: {first['message']}")
    return lines


def money_lines(report: dict[str, Any]) -> list[str]:
    """The summary's lines on money (none without a ``money`` block): spend per tenant, what the
    guard refused or warned about, budget alerts and actions."""
    figures = report.get("money")
    if figures is None:
        return []
    spend = figures["spend"]
    tenants = ", ".join(f"{t} {_money(v)}" for t, v in spend["by_tenant"].items())
    counts = figures["counts"]
    guard = (
        "no guard"
        if figures["guard"] is None
        else f"guard: {counts['refused']} refused, {counts['guard_warnings']} warned"
    )
    lines = [
        f"money: spend {_money(spend['total'])}" + (f" ({tenants})" if tenants else ""),
        f"  {guard}; {counts['alerts']} budget alert(s); {counts['paused']} pause(s), "
        f"{counts['resumed']} resumption(s), {counts['cancelled']} cancellation(s)",
    ]
    lines.extend(
        f"  {s['action']} {s['job_id']} at {_duration(s['time_s'])}: {s['reason']}"
        for s in figures["stops"][:3]
    )
    return lines


def _signed(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return ("+" if seconds >= 0 else "-") + _duration(abs(seconds))


def summary_table(report: dict[str, Any]) -> Table:
    """Per tenant and overall: jobs, completions, wait and JCT percentiles, GPU-hours, cost."""
    table = Table(title=f"budcore simulation: {report['scenario']} (seed {report['seed']})")
    for column in (
        "tenant",
        "jobs",
        "completed",
        "censored",
        "wait p50",
        "wait p95",
        "wait p95 KM",
        "JCT p50",
        "JCT p95",
        "GPU-h",
        "cost",
    ):
        table.add_column(column, justify="left" if column == "tenant" else "right")
    rows = [*report["by_tenant"].items(), ("all", report["overall"])]
    for name, stats in rows:
        table.add_row(
            name,
            _plain(stats["count"]),
            _plain(stats["completed"]),
            _plain((stats.get("outcomes") or {}).get("censored")),
            _minutes(stats["wait_s"]["p50"]),
            _minutes(stats["wait_s"]["p95"]),
            _km_minutes(stats.get("wait_km_s"), "p95"),
            _minutes(stats["jct_s"]["p50"]),
            _minutes(stats["jct_s"]["p95"]),
            _fixed(stats["gpu_hours"]),
            _money(stats["cost"]),
        )
    return table


def label_table(report: dict[str, Any]) -> Table | None:
    """Per report label (``by_label``), when the classes have labels of their own: jobs, mean wait
    to the first and to the last admission (Kueue's perf harness reports the last), p95, mean JCT."""
    labels = report.get("by_label") or {}
    if not labels or set(labels) == set(report.get("by_class") or {}):
        return None
    table = Table(title="by label")
    for column in (
        "label",
        "jobs",
        "completed",
        "wait mean",
        "wait (last admission) mean",
        "wait p95",
        "JCT mean",
    ):
        table.add_column(column, justify="left" if column == "label" else "right")
    for name, stats in labels.items():
        table.add_row(
            name,
            _plain(stats["count"]),
            _plain(stats["completed"]),
            _duration(stats["wait_s"]["mean"]),
            _duration(stats["wait_last_admission_s"]["mean"]),
            _duration(stats["wait_s"]["p95"]),
            _duration(stats["jct_s"]["mean"]),
        )
    return table


def usage_line(report: dict[str, Any]) -> str | None:
    """The summary's line on every resource: quota held over the ClusterQueues' nominal quota
    (Kueue's "ClusterQueue usage") and, with nodes, use of the fleet's capacity."""
    util = report["utilisation"]
    parts = []
    for resource, usage in sorted((util.get("cluster_queue_usage") or {}).items()):
        fleet = (util.get("by_resource") or {}).get(resource, {}).get("fleet")
        node_part = "" if fleet is None else f", {_percent(fleet, 0)} of the fleet"
        parts.append(f"{resource} {_percent(usage.get('all'))} of nominal{node_part}")
    return f"ClusterQueue usage (quota held): {'; '.join(parts)}" if parts else None


def print_summary(
    console: Console, report: dict[str, Any], figures: dict[str, Any], written: Sequence[Path], target: Path
) -> None:
    """The human summary of ``simulate``; undefined figures (empty or zero-length runs) read "-"."""
    console.print(summary_table(report))
    if "outcomes" in report["overall"]:
        console.print(outcome_line(report["overall"]["outcomes"]), highlight=False)
    labels = label_table(report)
    if labels is not None:
        console.print(labels)
    util = report["utilisation"]
    flavors = ", ".join(f"{k} {_percent(v, 0)}" for k, v in (util.get("by_flavor") or {}).items())
    if report.get("quota_only"):
        console.print("utilisation: a quota-only run (no fleet): admission is the start")
    else:
        console.print(
            f"utilisation: fleet {_percent(util.get('fleet'), 0)}" + (f" ({flavors})" if flavors else "")
        )
    line = usage_line(report)
    if line is not None:
        console.print(line)
    fairness = report["fairness"]["jain_index_tenants"]
    overall = report["overall"]
    console.print(
        f"fairness (Jain over tenants): {_plain(fairness)}   deadline misses: "
        f"{_plain(overall['deadline_misses'])} of {_plain(overall['deadlines'])}"
        f" ({_plain(overall.get('deadline_undetermined'))} undetermined at the end)   "
        f"node failures: {_plain(report['engine']['node_failures'])}"
    )
    for line in (
        time_line(report),
        eta_line(report),
        *reservation_lines(report),
        *pipeline_lines(report),
        *money_lines(report),
        sharing_line(report),
    ):
        if line is not None:
            console.print(line)
    console.print(
        f"engine: {_plain(figures['events'])} events in {_plain(figures['wall_s'])}s "
        f"({_plain(figures['events_per_s'])} events/s, {_plain(figures['jobs_per_s'])} jobs/s)"
    )
    console.print(f"wrote {len(written)} files to {target}/ ({', '.join(p.name for p in written)})")


def run_notes(loaded: LoadedScenario, result: SimulationResult) -> list[str]:
    """What a planner should not miss about a run, one line each (printed on stderr).

    Trace rows that could not be read are dropped from the workload, and jobs still queued at the
    end never ran: both change what the figures mean, and neither shows in a summary table.
    """
    notes: list[str] = []
    for reader in loaded.trace_readers:
        report = reader.report
        if report.skipped:
            example = f" (first: {report.details[0]})" if report.details else ""
            notes.append(f"{report.source}: {report.skipped} invalid row(s) skipped{example}")
        notes.extend(
            f"{report.source}: {count} job(s): {note}" for note, count in sorted(report.notes.items())
        )
    notes.extend(loaded.notes)
    queued = [r for r in result.records if never_admitted(r)]
    if queued:
        oldest = queued[0]
        notes.append(
            f"{len(queued)} job(s) never admitted by the end of the run "
            f"(first: {oldest.arrival.job_id}: {oldest.reason or 'no reason recorded'}); see jobs.csv"
        )
    requeued = sum(r.preemptions + r.evictions + r.failures for r in result.records)
    note = nothing_attained_note(attained_orderings(loaded.scenario, loaded.queues.cluster_queues), requeued)
    if note is not None:
        notes.append(note)
    return notes


# What an ordering that ranks by what a job attained equals when no job attained anything.
_WITHOUT_ATTAINED = {Ordering.LAS: Ordering.FIFO, Ordering.SRTF: Ordering.SJF}


def attained_orderings(scenario: Scenario, cluster_queues: Iterable[str]) -> list[Ordering]:
    """The orderings among ``las`` and ``srtf`` some ClusterQueue of the run uses."""
    if scenario.policy.ordering is None:
        return []
    policy = scenario.policy.ordering.policy()
    used = {policy.of(name) for name in cluster_queues}
    return sorted(used & _WITHOUT_ATTAINED.keys())


def nothing_attained_note(orderings: Sequence[Ordering], requeued: int) -> str | None:
    """Why a ``las`` or ``srtf`` run that requeued no job decided as ``fifo`` or ``sjf`` would.

    Both rank a job by what it received before it was requeued, so in a run without preemptions,
    evictions or failures (``las_preemption`` preempted nothing either) every job enters its queue
    with nothing attained: the figures are those of the plainer ordering, which a planner
    comparing them should know rather than read as a tie.
    """
    if not orderings or requeued:
        return None
    same = ", ".join(f"{o.value} as {_WITHOUT_ATTAINED[o].value}" for o in orderings)
    return (
        f"no job was requeued (no preemption, eviction or failure), so every job entered its queue "
        f"having attained nothing and {same} would have ordered it: las and srtf rank a job by what "
        "it received before it was queued (README: Research orderings)"
    )


KUEUE_EXTRA = "pip install 'budcore[kueue]'"
# Exit status of an error from the cluster itself (unreachable, 401/403, no node), as the
# ``budcore kueue`` commands use it; a bad kubeconfig or option stays a usage error (2).
CLUSTER_ERROR_EXIT = 3


class ClusterNodes:
    """``--fleet-from-cluster``: the live cluster's nodes as the scenario's fleet.

    A :data:`~.scenario.NodeSource`, so the cluster is read only once the scenario file has
    validated. The Kubernetes adapter (the ``kueue`` extra) is imported here, never at module
    level: ``budcore simulate`` without the flag must work on a base install. The raw nodes are
    kept so the run can write them as ``nodes.yaml``: the cluster changes, the dump lets the same
    simulation be repeated offline (``fleet.nodes_file``).
    """

    def __init__(self, kubeconfig: Path | None, context: str | None) -> None:
        self.kubeconfig = kubeconfig
        self.context = context
        self.source = ""
        self.raw: list[dict[str, Any]] = []

    def __call__(self) -> tuple[Fleet, str]:
        try:
            import kubernetes  # noqa: F401 - the extra's client, imported by the adapter only on use
            from budcore_adapters.kueue.fleet import scenario_nodes
        except ModuleNotFoundError as exc:
            raise PluginError(
                f"--fleet-from-cluster needs the kueue extra ({KUEUE_EXTRA}): missing module {exc.name!r}"
            ) from None
        path = None if self.kubeconfig is None else str(self.kubeconfig)
        try:
            fleet, self.source, self.raw = scenario_nodes(path, self.context)
        except ValidationError:
            raise  # the kubeconfig, context or a node's data: exit 2 like any bad input
        except BudcoreError as exc:
            from budcore.cli.app import report_error  # loaded: it is running this command

            report_error(exc)
            raise typer.Exit(CLUSTER_ERROR_EXIT) from None
        return fleet, self.source

    def summary(self, fleet_nodes: Sequence[str]) -> dict[str, Any]:
        """``report.json``'s ``fleet``: where the nodes came from and which they were."""
        return {"source": self.source, "nodes": sorted(fleet_nodes)}


def register(app: typer.Typer) -> None:
    """Attach ``simulate`` to ``app``."""

    @app.command()
    def simulate(
        scenario: Annotated[
            Path | None,
            typer.Argument(
                help="Scenario YAML file, or the name of a built-in scenario (default, deadlines, "
                "nodes-dump, kueue-perf-baseline, pipelines, budgets; default: default); --schema prints "
                "the format.",
                dir_okay=False,
                metavar="SCENARIO",
                show_default=False,
            ),
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                "-o",
                help="Directory for report.json, run.json, jobs.csv, usage.csv and the plots (with a "
                "money block also usage_records.csv and pricebook.yaml), created if missing "
                "(default: budcore-out/<scenario name>/).",
            ),
        ] = None,
        fmt: Annotated[
            str, typer.Option("--format", help=f"{FORMAT_HELP} With json, stdout is report.json.")
        ] = "table",
        seed: Annotated[
            int | None,
            typer.Option(
                "--seed",
                min=0,
                help="Random seed of the workload, a non-negative integer; overrides the scenario's "
                "seed. The same seed gives byte-identical report.json, jobs.csv and usage.csv.",
            ),
        ] = None,
        plots: Annotated[
            bool,
            typer.Option(
                "--plots/--no-plots",
                help="Write the PNG plots (timeline, utilisation, ClusterQueue usage, CDFs of the time "
                "to admission and to start, Kaplan–Meier: censored at the end of the run, and of the JCT, "
                "and ETA accuracy when measured); needs matplotlib (install budcore with its plots extra).",
            ),
        ] = True,
        schema: Annotated[
            bool, typer.Option("--schema", help="Print the scenario file's JSON schema and exit.")
        ] = False,
        fleet_from_cluster: Annotated[
            bool,
            typer.Option(
                "--fleet-from-cluster",
                help="Replace the scenario's fleet (pools, nodes_file) with the nodes of a live cluster, "
                "read once through the kubeconfig (needs the kueue extra); its prices and price book "
                "still apply. The nodes are also written to nodes.yaml in --out.",
            ),
        ] = False,
        kubeconfig: Annotated[
            Path | None,
            typer.Option(
                "--kubeconfig",
                help="With --fleet-from-cluster: the kubeconfig (default: $KUBECONFIG, ~/.kube/config).",
            ),
        ] = None,
        context: Annotated[
            str | None,
            typer.Option(
                "--context", help="With --fleet-from-cluster: the kubeconfig context (default: current)."
            ),
        ] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
        progress: Annotated[bool, typer.Option("--progress", help=PROGRESS_HELP)] = False,
    ) -> None:
        """Simulate a scenario on the real scheduling core and report waits, JCT, utilisation, cost.

        Ctrl-C (or SIGTERM) ends the simulation at the current simulated time and writes what
        happened up to then, without plots, with report.json "complete": false; a second Ctrl-C
        stops at once. Exit status 130 (SIGINT) or 143 (SIGTERM).
        """
        console = plain_console(width=report_width(120))
        if schema:
            console.print_json(json.dumps(scenario_json_schema()))
            return
        output_format(fmt)
        cluster: ClusterNodes | None = None
        if fleet_from_cluster:
            cluster = ClusterNodes(kubeconfig, context)
        elif kubeconfig is not None or context is not None:
            option = "--kubeconfig" if kubeconfig is not None else "--context"
            raise ValidationError("only means something with --fleet-from-cluster", path=option)
        nodes: NodeSource | None = cluster
        loaded = load_scenario(resolve_scenario(scenario), nodes=nodes)
        if seed is not None:
            loaded.scenario = loaded.scenario.model_copy(update={"seed": seed})
        target = prepare_output_dir(out or default_output_dir(loaded.scenario.name))
        notes = plain_console(stderr=True, soft_wrap=True)
        if plots and not plots_available():
            notes.print(Text.assemble(("note:", "bold yellow"), f" {PLOTS_MISSING}"), highlight=False)
            plots = False
        run = RunDirectory(target, "simulate", "report.json")
        marker = {"scenario": loaded.scenario.name, "seed": loaded.scenario.seed}
        run.begin(marker)
        snapshot = None
        if cluster is not None:  # the live cluster's nodes, kept even if the run is interrupted
            from budcore_adapters.kueue.fleet import nodes_yaml  # imported already by ClusterNodes

            snapshot = run.write("nodes.yaml", nodes_yaml(cluster.raw))
        try:
            try:
                result = run_scenario(loaded, mode=progress_mode(quiet=quiet, progress=progress))
            except SimulationStopped as stop:
                report = _report(loaded, stop.result, cluster)
                raise _stopped_simulation(loaded, stop.result, report, run, stop.signum) from None
            report = _report(loaded, result, cluster)
            written = write_outputs(result, report, target, plots=plots, run=run)
        except KeyboardInterrupt as exc:
            from budcore.cli import interrupt

            if isinstance(exc, interrupt.Interrupted):
                raise
            why = interrupt.signal_name(interrupt.signal_number(exc))
            run.stop(marker, why)
            if run.finished:
                raise
            raise interrupt.Interrupted(
                f'interrupted ({why}): no outputs kept; {target / run.main} says "complete": false',
                interrupt.signal_number(exc),
            ) from None
        if cluster is not None and snapshot is not None:
            written.append(snapshot)
            notes.print(
                Text.assemble(
                    ("note:", "bold yellow"),
                    f" fleet: the {len(cluster.raw)} node(s) of {cluster.source}, kept in {snapshot} "
                    "(fleet.nodes_file replays this run offline)",
                ),
                highlight=False,
            )
        for note in run_notes(loaded, result):
            notes.print(Text.assemble(("note:", "bold yellow"), f" {note}"), highlight=False)
        if fmt == "json":
            typer.echo(dumps(report), nl=False)
            return
        print_summary(console, report, run_figures(result), written, target)


def _report(loaded: LoadedScenario, result: SimulationResult, cluster: ClusterNodes | None) -> dict[str, Any]:
    """``report.json`` of a run, with where its traces and (live cluster) nodes came from."""
    report = build_report(result, scenario_name=loaded.scenario.name, seed=loaded.scenario.seed)
    if loaded.trace_readers:
        report["traces"] = [trace_summary(reader.report) for reader in loaded.trace_readers]
    if cluster is not None:
        report["fleet"] = cluster.summary([node.name for node in loaded.nodes])
    return report


def _stopped_simulation(
    loaded: LoadedScenario, result: SimulationResult, report: dict[str, Any], run: RunDirectory, signum: int
) -> KeyboardInterrupt:
    """Write the outputs of a simulation a signal ended early (no plots: they would only delay the
    exit), ``report.json`` saying ``"complete": false``; the interruption to raise, with its line."""
    from budcore.cli import interrupt

    why = interrupt.signal_name(signum)
    report.update(interrupted=why, stopped_at_s=report.get("horizon_s", result.horizon_s))
    write_outputs(result, report, run.path, plots=False, run=run, complete=False)
    horizon = loaded.scenario.horizon
    of = f" of {sim_time(horizon)}" if horizon else ""
    return interrupt.Interrupted(
        f"interrupted ({why}) at {sim_time(result.horizon_s)}{of} simulated: the run so far is in "
        f'{run.path}/ (no plots; report.json "complete": false)',
        signum,
    )


def _keep_finished_runs(
    run: RunDirectory, marker: dict[str, Any], todo: Sequence[Any], finished: Mapping[int, dict[str, Any]]
) -> str:
    """Write the runs an interrupted ``compare`` finished to ``compare.partial.json`` (``"complete":
    false``; ``compare.json`` stays the finished comparison's alone); what to say of them."""
    if not finished:
        return f"0 of {len(todo)} runs had finished"
    runs = [
        {"policy": todo[i].label, "seed": todo[i].scenario.seed, "report": finished[i]["report"]}
        for i in sorted(finished)
    ]
    run.write(PARTIAL_COMPARE, dumps({**marker, "complete": False, "runs": runs}))
    return f"{len(finished)} of {len(todo)} runs had finished, kept in {run.path / PARTIAL_COMPARE}"


def _stopped_sweep(
    run: RunDirectory, marker: dict[str, Any], exc: KeyboardInterrupt, kept: str
) -> KeyboardInterrupt:
    """Mark ``run``'s main file incomplete after an interruption; the interruption to raise, with
    its one line (``kept`` says what survives)."""
    from budcore.cli import interrupt

    if isinstance(exc, interrupt.Interrupted) or run.finished:
        return exc
    signum = interrupt.signal_number(exc)
    why = interrupt.signal_name(signum)
    run.stop(marker, why)
    return interrupt.Interrupted(f'interrupted ({why}): {kept}; {run.marked} says "complete": false', signum)


def write_compare_plot(results: list[dict[str, Any]], path: Path) -> Path:
    """One line per policy: Kaplan–Meier CDFs of the time to admission and to start (censored at
    the end of the run, as ``cdf.png``) and the CDF of the JCT of completed jobs (no legend without
    a line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import CENSORING_NOTE, finish_cdf_axes, plot_survival

    fig, (wait_ax, start_ax, jct_ax) = plt.subplots(1, 3, figsize=(17, 4.6))
    for number, result in enumerate(results):
        color = f"C{number % 10}"
        plot_survival(wait_ax, result["wait_samples"], label=result["label"], color=color)
        plot_survival(start_ax, result["start_wait_samples"], label=result["label"], color=color)
        jcts = [v / 60 for v in result["jcts"]]
        if jcts:
            jct_ax.step(
                jcts,
                [(i + 1) / len(jcts) for i in range(len(jcts))],
                where="post",
                label=result["label"],
                color=color,
            )
    finish_cdf_axes(wait_ax, "Time to admission (Kaplan–Meier)")
    finish_cdf_axes(start_ax, "Time to start, pods running (Kaplan–Meier)")
    finish_cdf_axes(jct_ax, "JCT of completed jobs")
    fig.text(0.01, 0.01, CENSORING_NOTE, fontsize=8, color="0.3")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _cq_usage_cell(report: dict[str, Any]) -> str:
    """Quota held over nominal per resource (``utilisation.cluster_queue_usage``), e.g. ``cpu 56.8%``."""
    usage = report["utilisation"].get("cluster_queue_usage") or {}
    return ", ".join(f"{r} {_percent(u.get('all'))}" for r, u in sorted(usage.items())) or "-"


_SEEDS_HELP = (
    "Runs of each point, at least 1: the first with the scenario's seed, the others with seeds "
    "derived from it (the same N always gives the same seeds). With 2 or more every metric is a "
    "mean with a 95% confidence interval (Student's t), and an SLO holds only when the interval's "
    "unfavourable bound meets it."
)
_SEED_HELP = "The seed to start from, a non-negative integer; overrides the scenario's seed."


def _stat_cell(stat: Any, kind: str) -> str:
    """A metric's mean (and ± the half-width of its 95% interval when replicated)."""
    mean = None if stat is None else stat.mean
    if mean is None:
        return "-"
    half = stat.half_width
    if kind == "duration":
        return f"{mean / 60:.1f}m" if half is None else f"{mean / 60:.1f} ±{half / 60:.1f}m"
    if kind == "money":
        return f"${mean:.2f}" if half is None else f"${mean:.2f} ±{half:.2f}"
    if kind == "number":
        return f"{mean:.3f}" if half is None else f"{mean:.3f} ±{half:.3f}"
    return f"{mean:.1%}" if half is None else f"{mean * 100:.1f} ±{half * 100:.1f}%"


def _metric_kind(base: str) -> str:
    if base == "spend":
        return "money"
    if base == "jain":
        return "number"
    if base in ("deadline_miss", "completed", "utilisation"):
        return "fraction"
    return "duration"


def _metric_header(slo: Any) -> str:
    """A column header for an SLO's metric: ``research p95 wait``, ``research peak week``."""
    if slo.period is not None:
        return f"{slo.tenant} peak {slo.period}"
    text = slo.base.replace("_", " ")
    return text if slo.scope is None else f"{slo.name} {text}"


_PLAN_COLUMNS = (("wait p95", "p95_wait"), ("JCT p95", "p95_jct"), ("deadline miss", "deadline_miss"))


def _replicated_compare_table(
    name: str, seeds: Sequence[int], specs: Sequence[Any], groups: Sequence[Any]
) -> Table:
    from . import sweep

    table = Table(
        title=f"{name}: same workloads, seeds {', '.join(map(str, seeds))} "
        "(mean ± half-width of the 95% interval, Student's t)"
    )
    table.add_column("metric")
    stats = [sweep.metric_stats(group) for group in groups]
    for spec in specs:
        table.add_column(spec.label, justify="right")
    for label, metric in (
        ("completed / completable", "completed"),
        ("wait mean", "mean_wait"),
        ("wait p95", "p95_wait"),
        ("start wait p95", "p95_start_wait"),
        ("JCT mean", "mean_jct"),
        ("JCT p95", "p95_jct"),
        ("utilisation", "utilisation"),
        ("Jain (tenants)", "jain"),
        ("deadline miss", "deadline_miss"),
    ):
        table.add_row(label, *(_stat_cell(s.get(metric), _metric_kind(metric)) for s in stats))
    return table


def _plan_table(name: str, outcome: Any) -> Table:
    space, slos = outcome.space, outcome.slos
    replicated = len(outcome.seeds) > 1
    shown = {metric for _, metric in _PLAN_COLUMNS} | {"utilisation"}
    extra = []
    for s in slos:
        if s.metric not in shown:
            shown.add(s.metric)
            extra.append(s)
    interval = f", mean ± 95% interval over {len(outcome.seeds)} seeds" if replicated else ""
    conditions = len(space.conditions()) > 1
    fixed = ""
    if space.condition_axes and not conditions:  # one condition: the title says it
        fixed = f" with {space.condition_label(space.conditions()[0])}"
    table = Table(title=f"{name}{fixed}: fleets against {', '.join(s.text for s in slos)}{interval}")
    columns = [
        "fleet",
        *(["condition"] if conditions else []),
        "GPUs",
        "fleet cost",
        *(header for header, _ in _PLAN_COLUMNS),
        "util.",
        *(_metric_header(s) for s in extra),
        "SLOs",
    ]
    for column in columns:
        if column in ("fleet", "condition"):  # key columns: never cut (one variation a line)
            table.add_column(column, no_wrap=True)
        elif column == "SLOs":  # one failing SLO a line, folded (never cut) when narrow
            table.add_column(column, overflow="fold")
        else:
            table.add_column(column, justify="right")
    best = {id(a.best): "cheapest" for a in outcome.answers if a.best is not None}
    best.update({id(a.runner_up): "runner-up" for a in outcome.answers if a.runner_up is not None})
    points = sorted(
        outcome.points, key=lambda p: (space.condition_of(p.index), p.fleet_cost, p.gpus, p.index)
    )
    for point in points:
        label = Text(_lines(space, point.index, space.fleet_axes) or "-")
        role = best.get(id(point))
        if role == "cheapest":
            label.stylize("bold")
        if role is not None:
            label.append(f" ({role})")
        failing = Text("fails " + "\n".join(point.failed), "red")
        mark = Text("ok", style="green") if point.passed else failing
        stats = point.stats
        table.add_row(
            label,
            *([_lines(space, point.index, space.condition_axes)] if conditions else []),
            str(point.gpus),
            _money(point.fleet_cost),
            *(_stat_cell(stats.get(metric), _metric_kind(metric)) for _, metric in _PLAN_COLUMNS),
            _stat_cell(stats.get("utilisation"), "fraction"),
            *(_stat_cell(stats.get(s.metric), _metric_kind(s.base)) for s in extra),
            mark,
        )
    return table


def _write_plan(run: RunDirectory, outcome: Any) -> tuple[dict[str, Any], list[str]]:
    """Write ``plan_frontier.png`` (when there is a frontier and matplotlib) and, last, ``plan.json``;
    its content and the names written."""
    from . import sweep
    from .journal import JOURNAL

    answer = sweep.plan_json(outcome)
    written = ["plan.json", JOURNAL]
    frontier = sweep.frontier_slo(outcome)
    if frontier is not None and plots_available():
        from .plots import write_frontier_plot

        run.record("plan_frontier.png")
        factor, unit = sweep.metric_unit(frontier)
        write_frontier_plot(
            sweep.frontier_series(outcome, frontier),
            run.path / "plan_frontier.png",
            metric_label=f"{frontier.metric} ({unit})",
            threshold=frontier.value * factor,
            slo_text=frontier.text,
            connect=len(outcome.space.fleet_axes) == 1,
        )
        answer["frontier_plot"] = "plan_frontier.png"
        written.append("plan_frontier.png")
    elif frontier is not None:
        plain_console(stderr=True, soft_wrap=True).print(
            Text.assemble(("note:", "bold yellow"), f" plan_frontier.png skipped: {MATPLOTLIB_MISSING}"),
            highlight=False,
        )
    run.finish(answer)
    return answer, written


def _lines(space: Any, index: tuple[int, ...], axes: Sequence[int]) -> str:
    """A point's values along ``axes``, one a line (a table cell that is never cut)."""
    return "\n".join(space.dims[a].label(index[a]) for a in axes)


def _plan_lines(outcome: Any, answer: dict[str, Any]) -> list[Text]:
    """The answer under the table: per condition the cheapest fleet, the runner-up and what binds;
    the search's cost; warnings."""
    space = outcome.space
    lines: list[Text] = []
    for one in outcome.answers:
        where = ""
        if space.condition_axes:
            where = f"with {space.condition_label(one.condition)}: "
        best = one.best
        if best is None:
            lines.append(Text(f"{where}no fleet in the sweep meets every SLO", style="red"))
        else:
            fleet = space.label(best.index, space.fleet_axes) or "-"
            text = (
                f"{where}cheapest fleet meeting every SLO: {fleet} "
                f"at {_money(best.fleet_cost)} ({best.gpus} GPUs)"
            )
            if one.runner_up is not None:
                runner = one.runner_up
                text += (
                    f"; runner-up: {space.label(runner.index, space.fleet_axes)} at "
                    f"{_money(runner.fleet_cost)} ({runner.gpus} GPUs)"
                )
            lines.append(Text(text))
        at = one.binding_at
        if at is not None and one.binding:
            there = space.label(at.index, space.fleet_axes) or "the point"
            for slo in one.binding:
                kind = _metric_kind(slo.base)
                value = _stat_cell(at.stats.get(slo.metric), kind)
                if best is not None:
                    line = f"  binds: {slo.text} ({slo.whose}): {value} at {there}, "
                    line += f"{_stat_cell(best.stats.get(slo.metric), kind)} at the answer"
                else:
                    line = (
                        f"  still failing at the largest fleet ({there}): {slo.text} ({slo.whose}): {value}"
                    )
                lines.append(Text(line))
        elif best is not None:
            lines.append(
                Text("  binds: nothing the sweep shows: no smaller fleet ran and failed; try smaller fleets")
            )
    search = answer["search"]
    seeds = f" × {search['seeds']} seeds" if search["seeds"] > 1 else ""
    if search["mode"] == "bisect":
        dims = ", ".join(space.dims[a].key for a in space.fleet_axes)
        exact = (
            "exact"
            if search["exact"]
            else "the cheapest of the minimal fleets found; --search grid is exhaustive"
        )
        lines.append(
            Text(
                f"search: bisection over {dims}: {search['points_run']} of {search['points']} points run"
                f"{seeds} = {search['runs']} simulation(s), against {search['grid_runs']} for the full grid "
                f"({exact})"
            )
        )
    elif seeds:
        lines.append(Text(f"search: every point{seeds} = {search['runs']} simulation(s)"))
    for warning in answer["warnings"]:
        lines.append(Text.assemble(("warning:", "bold yellow"), f" {warning}"))
    return lines


_WORKERS_HELP = (
    "Simulations run at once, each in its own process; at least 1 (1 runs them one after another "
    "in this process). Default: one per CPU core."
)


def register_sweeps(app: typer.Typer) -> None:
    """Attach ``compare`` and ``plan`` to ``app``.

    ``sweep.run_all`` is looked up at call time (not imported by name) so tests can stand in for it.
    """
    from . import sweep

    @app.command()
    def compare(
        scenario: Annotated[
            Path,
            typer.Argument(
                help="Scenario YAML file or built-in scenario name; every policy runs its workload "
                "with its seed.",
                dir_okay=False,
                metavar="SCENARIO",
            ),
        ],
        policy: Annotated[
            list[str],
            typer.Option(
                "--policy",
                "-p",
                help="A policy to run; repeat it, at least two. Each is a preset (fifo, fair, "
                "strict-fifo, deadline-aware; budcore's research orderings sjf, srtf, las, edf and the "
                "Gavel-style gavel), a policy YAML file, or key=value,... overrides of the "
                "scenario's policy block, e.g. -p fifo -p fair -p 'fair_sharing=true,preemption_mode=cost'.",
            ),
        ],
        seeds: Annotated[int, typer.Option("--seeds", min=1, help=_SEEDS_HELP)] = 1,
        seed: Annotated[int | None, typer.Option("--seed", min=0, help=_SEED_HELP)] = None,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                "-o",
                help="Directory for compare.json and compare_cdf.png, created if missing "
                "(default: budcore-out/<scenario name>-compare/).",
            ),
        ] = None,
        workers: Annotated[int | None, typer.Option("--workers", min=1, help=_WORKERS_HELP)] = None,
        fmt: Annotated[
            str, typer.Option("--format", help=f"{FORMAT_HELP} With json, stdout is each policy's metrics.")
        ] = "table",
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
        progress: Annotated[bool, typer.Option("--progress", help=PROGRESS_HELP)] = False,
    ) -> None:
        """Run the same workload (same seed) under several policies and compare them side by side.

        Ctrl-C (or SIGTERM) stops the runs: the ones that finished are kept in
        compare.partial.json ("complete": false), compare.json is not written. Exit status 130
        (SIGINT) or 143 (SIGTERM).
        """
        output_format(fmt)
        if len(policy) < 2:
            raise ValidationError("compare needs at least two --policy values", path="--policy")
        loaded = load_scenario(resolve_scenario(scenario))
        if seed is not None:
            loaded.scenario = loaded.scenario.model_copy(update={"seed": seed})
        seed_set = sweep.replicate_seeds(loaded.scenario.seed, seeds)
        specs = sweep.compare_specs(loaded, [sweep.parse_policy(p) for p in policy])
        target = prepare_output_dir(out or default_output_dir(loaded.scenario.name, "-compare"))
        run = RunDirectory(target, "compare", "compare.json", flag=False)
        marker = {"scenario": loaded.scenario.name, "policies": [spec.label for spec in specs]}
        run.begin(marker)
        todo = sweep.replicate(specs, seed_set)
        finished: dict[int, dict[str, Any]] = {}
        mode = progress_mode(quiet=quiet, progress=progress)
        try:
            with points_progress("compare: runs", len(todo), mode) as bar:

                def done(i: int, result: dict[str, Any]) -> None:
                    finished[i] = result
                    if bar is not None:
                        bar(len(finished), len(todo))

                runs = sweep.run_all(todo, workers=workers, on_result=done)
        except KeyboardInterrupt as exc:
            kept = _keep_finished_runs(run, marker, todo, finished)
            raise _stopped_sweep(run, marker, exc, kept) from None
        n = len(seed_set)
        groups = [runs[i * n : (i + 1) * n] for i in range(len(specs))]
        summary: dict[str, Any] = {}
        for spec, group in zip(specs, groups, strict=True):
            stats = sweep.metric_stats(group)
            entry: dict[str, Any] = {
                "metrics": {name: stat.mean for name, stat in stats.items()},
                "report": group[0]["report"],
            }
            if n > 1:
                entry["seeds"] = list(seed_set)
                entry["intervals"] = {name: stat.as_json() for name, stat in stats.items()}
                entry["interval"] = sweep.INTERVAL_METHOD
            summary[spec.label] = entry
        pooled = [
            {
                "label": spec.label,
                **{
                    key: WaitSamples(
                        tuple(d for r in group for d in r[key]["durations"]),
                        tuple(o for r in group for o in r[key]["observed"]),
                    )
                    for key in ("wait_samples", "start_wait_samples")
                },
                "jcts": sorted(j for r in group for j in r["jcts"]),
            }
            for spec, group in zip(specs, groups, strict=True)
        ]
        if plots_available():
            run.record("compare_cdf.png")
            write_compare_plot(pooled, target / "compare_cdf.png")
        else:
            plain_console(stderr=True, soft_wrap=True).print(
                Text.assemble(("note:", "bold yellow"), f" compare_cdf.png skipped: {MATPLOTLIB_MISSING}"),
                highlight=False,
            )
        run.finish(summary)
        for spec, group in zip(specs, groups, strict=True):
            requeued = sum(
                r["report"]["overall"][key] for r in group for key in ("preemptions", "evictions", "failures")
            )
            note = nothing_attained_note(
                attained_orderings(spec.scenario, loaded.queues.cluster_queues), requeued
            )
            if note is not None:
                plain_console(stderr=True, soft_wrap=True).print(
                    Text.assemble(("note:", "bold yellow"), f" {spec.label}: {note}"), highlight=False
                )
        if fmt == "json":
            typer.echo(dumps({k: v["metrics"] for k, v in summary.items()}), nl=False)
            return
        console = plain_console(width=report_width(140))
        if n > 1:
            console.print(_replicated_compare_table(loaded.scenario.name, seed_set, specs, groups))
            console.print(f"wrote compare.json and compare_cdf.png to {target}/")
            return
        results = [group[0] for group in groups]
        table = Table(title=f"{loaded.scenario.name}: same workload, seed {loaded.scenario.seed}")
        table.add_column("metric")
        for r in results:
            table.add_column(r["label"], justify="right")
        rows: list[tuple[str, Any]] = [
            ("completed", lambda rep: completed_text(rep["overall"]["outcomes"])),
            ("censored (live at the end)", lambda rep: censored_text(rep["overall"]["outcomes"])),
            ("never admitted", lambda rep: _plain(rep["overall"]["outcomes"]["never_admitted"])),
            ("wait mean", lambda rep: _minutes(rep["overall"]["wait_s"]["mean"])),
            ("wait p95", lambda rep: _minutes(rep["overall"]["wait_s"]["p95"])),
            ("wait p95, KM", lambda rep: _km_minutes(rep["overall"]["wait_km_s"], "p95")),
            ("start wait p95, KM", lambda rep: _km_minutes(rep["overall"]["start_wait_km_s"], "p95")),
            ("JCT mean", lambda rep: _minutes(rep["overall"]["jct_s"]["mean"])),
            ("JCT p95", lambda rep: _minutes(rep["overall"]["jct_s"]["p95"])),
            ("utilisation", lambda rep: _percent(rep["utilisation"]["fleet"])),
            ("ClusterQueue usage", _cq_usage_cell),
            ("Jain (tenants)", lambda rep: _plain(rep["fairness"]["jain_index_tenants"])),
            (
                "deadline misses",
                lambda rep: (
                    f"{rep['overall']['deadline_misses']}/{rep['overall']['deadlines']}"
                    f" (+{rep['overall']['deadline_undetermined']} undetermined)"
                ),
            ),
            ("GPU-h lost", lambda rep: _fixed(rep["overall"]["gpu_hours_lost"])),
            ("cost of lost work", lambda rep: _money(rep["overall"]["lost_cost"])),
            ("cost", lambda rep: _money(rep["overall"]["cost"])),
        ]
        for name, cell in rows:
            table.add_row(name, *(cell(r["report"]) for r in results))
        console.print(table)
        console.print(f"wrote compare.json and compare_cdf.png to {target}/")

    @app.command()
    def plan(
        scenario: Annotated[
            Path,
            typer.Argument(
                help="Scenario YAML file or built-in scenario name; it needs a horizon (a fleet's cost is "
                "its GPUs' price over it).",
                dir_okay=False,
                metavar="SCENARIO",
            ),
        ],
        vary: Annotated[
            list[str],
            typer.Option(
                "--vary",
                help="What to vary, repeatable: PATH=VALUES. PATH is pool.<pool>.nodes (or any pool "
                "field), workload.rate (the load: every generator class's arrival rate), "
                "queues.cq.<ClusterQueue>.<flavor>.<resource> (a nominal quota; gpu: the fleet's GPU "
                "resource), class.<class>.<field>, or any scenario field by dotted path, list items by "
                "index (policy.fair_sharing, fleet.pools[0].nodes). VALUES: a range lo..hi (about "
                "eight points) or lo..hi:step, a list a,b,c, and xK for K times the scenario's value; "
                "e.g. pool.h100.nodes=4..32:4, workload.rate=x1,x1.5. Several --vary give every "
                "combination; the fleet's ones (pool.*, fleet.*) are searched for the cheapest fleet, "
                "the others answered separately. Nominal quotas of the flavors on a pool scale with "
                "its GPUs.",
            ),
        ],
        slo: Annotated[
            list[str],
            typer.Option(
                "--slo",
                help="An objective every accepted fleet must meet, repeatable: "
                "[<scope>=<name>:]<metric><op><value>, op one of < <= > >=. mean_wait, p50_wait, "
                "p95_wait, p99_wait (time to admission), mean_start_wait ... p99_start_wait (time to "
                "start: pods running), mean_jct ... p99_jct take a duration (90s, 30m, 2h); "
                "deadline_miss, completed, utilisation, jain a fraction or percent (0.01 or 1%). "
                "deadline_miss is over the jobs whose outcome is known at the horizon; completed is "
                "over the jobs whose submit + runtime fits before it. Scopes (not for utilisation "
                "and jain): tenant=<name>, cq=<ClusterQueue>, class=<job class>, priority=<priority>. "
                "A cost SLO caps a tenant's spend: tenant=<name>:spend<$<amount>/<day|week|month> "
                "(or <=), the tenant's highest spend in one calendar period (UTC) of the run. E.g. "
                "'p95_wait<30m', 'tenant=research:p95_wait<30m', 'class=pretrain:deadline_miss<1%', "
                "'tenant=research:spend<$5000/week'.",
            ),
        ],
        seeds: Annotated[int, typer.Option("--seeds", min=1, help=_SEEDS_HELP)] = 1,
        seed: Annotated[int | None, typer.Option("--seed", min=0, help=_SEED_HELP)] = None,
        search: Annotated[
            str,
            typer.Option(
                "--search",
                help="grid (default): run every combination. bisect: for 'fewest nodes' questions, "
                "assume more nodes never break an SLO and bisect each fleet dimension (node counts "
                "and GPUs per node) from the largest fleet down: about log2(values) runs per "
                "dimension; exact with one dimension, with several the cheapest of the minimal "
                "fleets it finds along every order of the dimensions.",
            ),
        ] = "grid",
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                "-o",
                help="Directory for plan.json and plan_frontier.png, created if missing "
                "(default: budcore-out/<scenario name>-plan/).",
            ),
        ] = None,
        workers: Annotated[int | None, typer.Option("--workers", min=1, help=_WORKERS_HELP)] = None,
        fmt: Annotated[
            str,
            typer.Option("--format", help=f"{FORMAT_HELP} With json, stdout is plan.json."),
        ] = "table",
        resume: Annotated[
            bool,
            typer.Option(
                "--resume",
                help="Reuse the runs an interrupted plan into the same --out finished (points.jsonl); "
                "refused unless the question (scenario, --vary, --slo, --seeds, --seed, --search) is "
                "the same.",
            ),
        ] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
        progress: Annotated[bool, typer.Option("--progress", help=PROGRESS_HELP)] = False,
    ) -> None:
        """Sweep fleet sizes and return the cheapest fleet that meets every SLO, with the frontier.

        Every run is kept in points.jsonl as it finishes. Ctrl-C (or SIGTERM) stops the plan with
        plan.json "complete": false; the same command with --resume runs only what is missing.
        Exit status 130 (SIGINT) or 143 (SIGTERM).
        """
        output_format(fmt)
        loaded = load_scenario(resolve_scenario(scenario))
        if loaded.scenario.horizon is None:
            raise ValidationError(
                "plan needs a scenario with a horizon (fleet cost is over it)", path="horizon"
            )
        if seed is not None:
            loaded.scenario = loaded.scenario.model_copy(update={"seed": seed})
        variations = [sweep.parse_vary(v) for v in vary]
        slos = [sweep.parse_slo(s) for s in slo]
        sweep.check_slos(loaded, slos)
        space = sweep.PlanSpace(loaded, variations, meter=any(s.period is not None for s in slos))
        sweep.check_search(space, search)
        if search == "grid":  # every point validated and priced before the first run
            for index in space.indices():
                space.point(index)
        else:  # the largest fleet: priced (a fleet without prices is refused) before any run
            space.point(tuple(n - 1 for n in space.shape))
        seed_set = sweep.replicate_seeds(loaded.scenario.seed, seeds)
        target = prepare_output_dir(out or default_output_dir(loaded.scenario.name, "-plan"))
        from .journal import JOURNAL, PlanJournal, plan_question

        question = plan_question(loaded.scenario, vary, slo, seed_set, search)
        run = RunDirectory(target, "plan", "plan.json", keep=[JOURNAL] if resume else [])
        marker = {"scenario": loaded.scenario.name, "points": space.size}
        # A journal to resume is checked before anything is removed; a new one starts after.
        journal = PlanJournal(target, question, resume=True) if resume else None
        run.begin(marker)
        run.record(JOURNAL)
        journal = journal or PlanJournal(target, question, resume=False)
        console = plain_console(width=report_width(140), stderr=fmt == "json")
        runs = f" × {len(seed_set)} seeds" if len(seed_set) > 1 else ""
        how = "bisecting" if search == "bisect" else "planning"
        reused = f" ({journal.saved} run(s) kept from the interrupted plan)" if resume else ""
        console.print(f"{how} {space.size} fleet(s){runs} of {loaded.scenario.name!r}{reused}...")
        done = [0]
        try:
            with points_progress(
                "plan: points", space.size, progress_mode(quiet=quiet, progress=progress)
            ) as bar:

                def point_done(count: int, total: int) -> None:
                    done[0] = count
                    if bar is not None:
                        bar(count, total)

                outcome = sweep.run_plan(
                    space,
                    slos,
                    seed_set,
                    search=search,
                    workers=workers,
                    progress=point_done,
                    journal=journal,
                )
            answer, written = _write_plan(run, outcome)
        except KeyboardInterrupt as exc:
            kept = (
                f"{done[0]} of {space.size} points done, their runs kept in {target / JOURNAL}; "
                "resume with --resume"
            )
            raise _stopped_sweep(run, {**marker, "points_done": done[0]}, exc, kept) from None
        if fmt == "json":
            typer.echo(dumps(answer), nl=False)
            return
        console.print(_plan_table(loaded.scenario.name, outcome))
        for line in _plan_lines(outcome, answer):
            console.print(line)
        console.print(f"wrote {' and '.join(written)} to {target}/")


# budcore trace inspect -------------------------------------------------------------------------
TRACE_HELP = "Workload traces: what a trace file holds, before it is simulated."


def _trace_options(values: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` pairs as trace options (values read as YAML: ``true``, ``3``, ``{...}``)."""
    import yaml

    from budcore.config.yamlsource import safe_load

    options: dict[str, Any] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"expected KEY=VALUE, got {value!r}", path="--set")
        try:
            options[key.strip()] = safe_load(text)
        except yaml.YAMLError as exc:
            problem = " ".join(str(exc).split())  # one line, whatever PyYAML wrote
            raise ValidationError(f"{key.strip()}: not a YAML value: {problem}", path="--set") from None
    return options


def _share(count: int, rows: int) -> str:
    return f"{count} ({count / rows:.1%})" if rows else str(count)


def print_trace_inspection(console: Console, found: Any) -> None:
    """A :class:`~.workload.inspect.TraceInspection` or ``NodeListInspection`` as tables."""
    from .workload.inspect import NodeListInspection

    if isinstance(found, NodeListInspection):
        console.print(f"{escape(found.path)}: an openb node list (a fleet, not jobs)", highlight=False)
        table = Table(title=f"{found.nodes} nodes, {found.gpus} GPUs")
        for column in ("pool", "model", "accelerator", "nodes", "GPUs/node", "CPU", "memory"):
            table.add_column(column, justify="right" if column in ("nodes", "GPUs/node", "CPU") else "left")
        for pool in found.pools:
            table.add_row(
                escape(pool["pool"]),
                escape(pool["model"]),
                escape(pool["accelerator"] or "-"),
                str(pool["nodes"]),
                str(pool["gpus_per_node"]),
                f"{pool['cpu']:g}",
                f"{pool['memory_gib']:g}Gi",
            )
        console.print(table)
        for note in found.notes:
            console.print(Text.assemble(("note:", "bold yellow"), f" {note}"), highlight=False)
        return
    summary = Table(
        title=f"{found.format} trace" + (" (format guessed from the file)" if found.guessed else "")
    )
    summary.add_column("", style="bold")
    summary.add_column("")
    summary.add_row("file", escape(found.path))
    summary.add_row("rows", str(found.rows))
    summary.add_row("jobs", _share(found.jobs, found.rows))
    summary.add_row(
        "span",
        f"{_duration(found.span_s)} (first {found.first_submit_s:g} s, last {found.last_submit_s:g} s)",
    )
    summary.add_row("GPU jobs", f"{found.gpu_jobs} ({found.gpu_hours:,.1f} GPU-hours)")
    summary.add_row("CPU-only jobs", str(found.cpu_only_jobs))
    summary.add_row("gangs (> 1 pod)", str(found.gang_jobs))
    summary.add_row("filtered", _share(found.filtered, found.rows))
    summary.add_row("invalid", _share(found.skipped, found.rows))
    console.print(summary)
    mix = Table(title="GPU mix")
    mix.add_column("GPUs per job", justify="right")
    mix.add_column("jobs", justify="right")
    for gpus, jobs in sorted(found.gpus.items()):
        mix.add_row(str(gpus), str(jobs))
    console.print(mix)
    if found.accelerators:
        kinds = Table(title="accelerators asked for")
        kinds.add_column("accelerator")
        kinds.add_column("jobs", justify="right")
        for name, jobs in found.accelerators.most_common():
            kinds.add_row(escape(name), str(jobs))
        console.print(kinds)
    dropped = Table(title="rows not simulated, and why")
    dropped.add_column("rows", justify="right")
    dropped.add_column("why")
    for reason, count in found.filtered_reasons.most_common():
        dropped.add_row(_share(count, found.rows), escape(f"filtered: {reason}"))
    for column, count in found.skipped_fields.most_common():
        dropped.add_row(_share(count, found.rows), escape(f"invalid {column}"))
    if dropped.rows:
        console.print(dropped)
    for example in found.examples:
        console.print(Text.assemble(("invalid:", "bold red"), f" {example}"), highlight=False)
    for note, count in found.notes.most_common():
        console.print(Text.assemble(("note:", "bold yellow"), f" {count} job(s): {note}"), highlight=False)


def register_trace(app: typer.Typer) -> None:
    """Attach the ``trace`` group (``budcore trace inspect``) to ``app``."""
    trace_app = typer.Typer(help=TRACE_HELP, no_args_is_help=True)

    @trace_app.command("inspect")
    def inspect(
        path: Annotated[
            Path,
            typer.Argument(
                help="A trace file (budcore CSV, Helios, openb pods, PAI job table, SWF, or a plugin's "
                "format), or an openb node list.",
                dir_okay=False,
                metavar="FILE",
                show_default=False,
            ),
        ],
        fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "table",
        trace_format: Annotated[
            str | None,
            typer.Option(
                "--as",
                help="Read FILE as this trace format (a registered reader: budcore, helios, openb, pai, "
                "swf, ...); default: the format it looks like.",
            ),
        ] = None,
        task_path: Annotated[
            Path | None,
            typer.Option("--task-path", help="The second file of formats that need one (PAI's task table)."),
        ] = None,
        settings: Annotated[
            list[str] | None,
            typer.Option(
                "--set",
                help="A trace option as in a scenario's traces: entry, KEY=VALUE (e.g. fractional=round-up, "
                "include_cpu_only=true); repeatable.",
            ),
        ] = None,
    ) -> None:
        """Print what a trace holds: jobs, time span, GPU mix, and the rows dropped and why."""
        from .workload.inspect import inspect_path

        output_format(fmt)
        options = _trace_options(settings or [])
        found = inspect_path(path, trace_format, task_path=task_path, options=options)
        if fmt == "json":
            typer.echo(json.dumps(found.to_dict(), indent=2, sort_keys=False))
            return
        print_trace_inspection(plain_console(width=report_width(120)), found)

    app.add_typer(trace_app, name="trace", help=TRACE_HELP)
