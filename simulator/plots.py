"""PNG plots of a simulation (matplotlib, headless).

- ``timeline.png``: a Gantt-style resource timeline like the seeds' cluster schedule view (seed 001
  §5.4/§5.4.1): one row per GPU, grouped by node, every node up to :data:`TIMELINE_ROWS` GPU rows
  (past that its title says "showing K of N nodes", :func:`timeline_caption`); per job a filled
  block for its actual run and a dashed outline for its estimate (estimated start = admission,
  estimated end = that plus the declared runtime), coloured by tenant (see :func:`timeline_blocks`);
- ``utilisation.png``: GPUs in use over time per flavor, against each flavor's capacity;
- ``cq_usage.png``: each ClusterQueue's GPUs in use over time as a percentage of its nominal quota;
- ``cdf.png``: per report label, Kaplan–Meier CDFs of the time to admission and the time to start,
  censored at the end of the run (:func:`plot_survival`: censored waits as ticks, the censored
  tail as a dotted line up to 1), and the CDF of the JCT of completed jobs;
- ``eta.png`` (only when the run measured ETAs): each measured job's estimated start (given at its
  submission) against its actual start, per job class, with the diagonal of perfect estimates: on
  the run's clock, and as waits since submission (log scale, where errors of minutes show).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine import JobRecord, SimulationResult
from .outcomes import WaitSamples, wait_samples
from .report import cq_percent_of_nominal, eta_points, quota_percent_of_nominal
from .status import SimJobStatus
from .survival import kaplan_meier

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@dataclass(frozen=True, slots=True)
class TimelineBlock:
    """One job on one GPU row: its actual run and its estimated block (seconds)."""

    row: int
    job_id: str
    tenant: str
    actual: tuple[float, float]  # start → end (the horizon if still running)
    estimated: tuple[float, float]  # admission → admission + declared runtime


TIMELINE_ROWS = 256  # GPU rows timeline.png draws at most: 32 nodes of 8 GPUs


def timeline_blocks(
    result: SimulationResult, *, max_rows: int = TIMELINE_ROWS
) -> tuple[list[tuple[str, int]], int, list[TimelineBlock]]:
    """The schedule view's rows and blocks: ``([(node, its first row), ...], rows, blocks)``.

    Rows are GPUs, node by node: every node with GPUs, sorted by name, idle ones too (capacity
    that sat unused is what a planner looks for), up to ``max_rows`` (whole nodes; a first node
    larger than that is cut). :func:`timeline_caption` says so when not every node fits. A job's
    GPUs on a node go to the lowest-numbered GPUs free when it starts; the simulator records which
    nodes a run used but not how many of its pods each got, so a gang's GPUs per node are taken as
    its pods spread evenly (exact for the usual whole-node gangs). A job that ran several times
    (retries) is drawn from its first start to its end on the nodes of its last run.
    """
    runs = _runs_by_node(result)
    nodes: list[tuple[str, int]] = []
    rows = 0
    for node in sorted(set(runs) | {n for n, gpus in result.node_gpus.items() if gpus > 0}):
        width = result.node_gpus.get(node, 0) or max(_gpus_on_node(r) for r in runs[node])
        if rows and rows + width > max_rows:
            break
        nodes.append((node, rows))
        rows += min(width, max_rows - rows)
    blocks: list[TimelineBlock] = []
    for index, (node, first) in enumerate(nodes):
        last = nodes[index + 1][1] if index + 1 < len(nodes) else rows
        free_at = [-math.inf] * (last - first)
        for r in sorted(runs.get(node, ()), key=lambda r: (r.start_s or 0.0, r.arrival.job_id)):
            start = r.start_s
            assert start is not None
            end = r.end_s if r.end_s is not None else result.horizon_s
            admitted = r.admitted_s if r.admitted_s is not None else start
            lanes = sorted(range(len(free_at)), key=lambda i: (free_at[i] > start, free_at[i], i))
            for lane in sorted(lanes[: _gpus_on_node(r)]):
                free_at[lane] = end
                blocks.append(
                    TimelineBlock(
                        row=first + lane,
                        job_id=r.arrival.job_id,
                        tenant=r.arrival.tenant,
                        actual=(start, end),
                        estimated=(admitted, admitted + r.arrival.estimate_s),
                    )
                )
    return nodes, rows, blocks


def _runs_by_node(result: SimulationResult) -> dict[str, list[JobRecord]]:
    """The jobs that ran on each node (on their last run)."""
    runs: dict[str, list[JobRecord]] = {}
    for r in result.records:
        if r.start_s is not None and r.nodes:
            for node in r.nodes:
                runs.setdefault(node, []).append(r)
    return runs


def timeline_caption(result: SimulationResult, shown: int, *, max_rows: int = TIMELINE_ROWS) -> str | None:
    """``showing K of N nodes ...`` when the timeline draws ``shown`` of the run's N nodes with
    GPUs (or that ran a job), ``None`` when it draws every one of them: a planner reading the plot
    must know when part of the fleet is not on it."""
    total = len(set(_runs_by_node(result)) | {n for n, gpus in result.node_gpus.items() if gpus > 0})
    if shown >= total:
        return None
    return f"showing {shown} of {total} nodes (the first by name; at most {max_rows} GPU rows are drawn)"


def legend_if_labelled(ax: Axes, **kwargs: Any) -> None:
    """Draw ``ax``'s legend only when something on it has a label.

    An empty run (no jobs, or a zero horizon) plots no line, and matplotlib's ``legend()`` then
    warns "No artists with labels found" on stderr: noise that looks like a failure to a user.
    """
    handles, _ = ax.get_legend_handles_labels()
    if len(handles) > MAX_LEGEND_INSIDE:  # dozens of queues: beside the plot, in columns
        kwargs = {**kwargs, "loc": "upper left", "bbox_to_anchor": (1.0, 1.0), "fontsize": 6}
        kwargs["ncol"] = math.ceil(len(handles) / 15)
    if handles:
        ax.legend(**kwargs)


MAX_LEGEND_INSIDE = 12  # legend entries drawn over the plot; more go beside it


def time_unit(horizon_s: float) -> tuple[float, str]:
    """Seconds per unit and its name for a run's time axis: hours, or minutes or seconds for a
    short run (Kueue's performance harness runs minutes)."""
    if horizon_s >= 2 * 3600:
        return 3600.0, "hours"
    if horizon_s >= 120:
        return 60.0, "minutes"
    return 1.0, "seconds"


def _gpus_on_node(record: JobRecord) -> int:
    a = record.arrival
    return a.gpus_per_pod * max(1, math.ceil(a.pods / max(1, len(record.nodes))))


def _timeline(result: SimulationResult, path: Path, *, max_rows: int) -> None:
    import matplotlib.pyplot as plt

    fig = timeline_figure(result, max_rows=max_rows)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def timeline_figure(result: SimulationResult, *, max_rows: int = TIMELINE_ROWS) -> Figure:
    """The seeds' cluster schedule view: filled blocks are actual runs, dashed outlines estimates;
    the title says when not every node is drawn (:func:`timeline_caption`). The caller closes it."""
    import matplotlib.pyplot as plt
    from matplotlib.collections import PatchCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    hours = 3600.0
    nodes, rows, blocks = timeline_blocks(result, max_rows=max_rows)
    tenants = sorted({b.tenant for b in blocks})
    colours = {t: plt.get_cmap("tab10")(i % 10) for i, t in enumerate(tenants)}
    # Rows get thinner past 64 so a fleet of 32 nodes still fits a readable image.
    row_inches = 0.14 if rows <= 64 else max(0.06, 0.14 * 64 / rows)
    fig, ax = plt.subplots(figsize=(13, max(3.5, row_inches * rows + 2.0)))
    actual = [
        Rectangle((b.actual[0] / hours, b.row - 0.36), max(b.actual[1] - b.actual[0], 1.0) / hours, 0.72)
        for b in blocks
    ]
    estimated = [
        Rectangle(
            (b.estimated[0] / hours, b.row - 0.46), max(b.estimated[1] - b.estimated[0], 1.0) / hours, 0.92
        )
        for b in blocks
    ]
    ax.add_collection(
        PatchCollection(
            actual,
            facecolors=[colours[b.tenant] for b in blocks],
            edgecolors="white",
            linewidths=0.3,
            alpha=0.85,
        )
    )
    ax.add_collection(
        PatchCollection(
            estimated,
            facecolors="none",
            edgecolors=[colours[b.tenant] for b in blocks],
            linewidths=0.8,
            linestyles="--",
        )
    )
    for _, first in nodes[1:]:
        ax.axhline(first - 0.5, color="0.55", linewidth=0.6)
    # Estimates running past the end are cut at 10% beyond it: their overrun shows, the run stays wide.
    ends = [max(b.actual[1], b.estimated[1]) for b in blocks]
    right = min(max([result.horizon_s, *ends]), result.horizon_s * 1.1) if ends else result.horizon_s
    ax.set_xlim(0, max(right, 1.0) / hours)
    ax.set_ylim(rows - 0.5 if rows else 0.5, -0.5)  # first node on top, like the seeds' view
    bounds = [first for _, first in nodes] + [rows]
    ax.set_yticks(
        [(bounds[i] + bounds[i + 1] - 1) / 2 for i in range(len(nodes))],
        [name for name, _ in nodes],
        fontsize=7 if len(nodes) <= 16 else 5,
    )
    ax.set_ylabel("GPUs, by node")
    ax.set_xlabel("hours")
    caption = timeline_caption(result, len(nodes), max_rows=max_rows)
    ax.set_title(
        "Cluster schedule: actual runs (filled) vs estimates (dashed: admission + declared runtime)"
        + (f"\n{caption}" if caption else "")
    )
    handles: list[Patch | Line2D] = [Patch(color=colours[t], label=t) for t in tenants]
    handles.append(Patch(facecolor="0.5", label="actual run"))
    handles.append(Line2D([0], [0], color="0.3", linestyle="--", label="estimated"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    return fig


def write_plots(result: SimulationResult, out_dir: Path, *, max_rows: int = TIMELINE_ROWS) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    scale, unit = time_unit(result.horizon_s)

    # Timeline ---------------------------------------------------------------------------------
    path = out_dir / "timeline.png"
    _timeline(result, path, max_rows=max_rows)
    written.append(path)

    # Utilisation over time --------------------------------------------------------------------
    fig, ax = plt.subplots(figsize=(10, 4))
    times = [t / scale for t in result.series.times]
    for flavor, values in sorted(result.series.flavors.items()):
        capacity = result.flavor_capacity.get(flavor, 0)
        if capacity:
            ax.step(times, [v / capacity for v in values], where="post", label=f"{flavor} ({capacity} GPUs)")
    # Every other resource the ClusterQueues cover (CPU, memory, ...), on the flavors' nodes.
    for (flavor, resource), values in sorted(result.series.flavor_resources.items()):
        amount = result.flavor_resource_capacity.get((flavor, resource), 0.0)
        if amount and resource != result.gpu_resource:
            ax.step(
                times, [v / amount for v in values], where="post", label=f"{flavor} {resource} ({amount:g})"
            )
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(unit)
    ax.set_ylabel("in use / capacity")
    ax.set_title("Utilisation per flavor" + (" (a quota-only run: no nodes)" if result.quota_only else ""))
    legend_if_labelled(ax)
    fig.tight_layout()
    path = out_dir / "utilisation.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")  # a legend beside the plot stays in the image
    plt.close(fig)
    written.append(path)

    # ClusterQueue usage as % of nominal ------------------------------------------------------
    fig, ax = plt.subplots(figsize=(10, 4))
    for name, percent in sorted(cq_percent_of_nominal(result).items()):
        if percent is not None:
            nominal = result.cq_nominal[name]
            ax.step(times, percent, where="post", label=f"{name} ({nominal} nominal GPUs)")
    # Every other resource: the quota the queue's workloads hold, over its nominal quota.
    for (name, resource), held in sorted(quota_percent_of_nominal(result).items()):
        if held is not None and resource != result.gpu_resource:
            nominal_quota = result.cq_nominal_quota[(name, resource)]
            ax.step(times, held, where="post", label=f"{name} {resource} ({nominal_quota:g} nominal)")
    ax.axhline(100.0, color="0.4", linestyle="--", linewidth=0.8)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(unit)
    ax.set_ylabel("in use (GPUs) or held (other\nresources) / nominal quota (%)")
    ax.set_title("ClusterQueue usage (above 100%: borrowing from the cohort)")
    legend_if_labelled(ax, fontsize=8)
    fig.tight_layout()
    path = out_dir / "cq_usage.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")  # a legend beside the plot stays in the image
    plt.close(fig)
    written.append(path)

    # CDFs -------------------------------------------------------------------------------------
    path = out_dir / "cdf.png"
    _cdf_plot(result, path)
    written.append(path)

    if result.etas is not None:
        path = out_dir / "eta.png"
        _eta_plot(result, path)
        written.append(path)
    return written


def plot_survival(ax: Axes, samples: WaitSamples, *, label: str, color: Any = None) -> None:
    """One Kaplan–Meier CDF (``1 - S(t)``, :mod:`.survival`) of waits in minutes on ``ax``.

    Censored waits are drawn as ticks on the curve where they stopped being followed, and when
    the longest wait followed is censored, the mass the curve never reaches, ``S`` at its end, is a
    dotted vertical line from the curve's end up to 1: jobs whose wait is only known to be longer.
    The legend's label says how many waits are censored.
    """
    curve = kaplan_meier(samples.durations, samples.observed)
    if not curve.samples:
        return
    minutes = 60.0
    xs = [0.0, *(t / minutes for t in curve.times), curve.follow_up_s / minutes]
    ys = [0.0, *(1.0 - v for v in curve.survival), 1.0 - curve.final]
    text = label if not curve.censored else f"{label} ({curve.censored} of {curve.samples} censored)"
    (line,) = ax.step(xs, ys, where="post", label=text, color=color)
    colour = line.get_color()
    censored = [d for d, seen in zip(samples.durations, samples.observed, strict=True) if not seen]
    if censored:
        ax.scatter(
            [d / minutes for d in censored],
            [curve.cdf(d) for d in censored],
            marker="|",
            s=40,
            color=colour,
            linewidths=0.8,
        )
    if curve.final > 0:
        end = curve.follow_up_s / minutes
        ax.vlines(end, 1.0 - curve.final, 1.0, colors=[colour], linestyles=":", linewidth=1.4)


CENSORING_NOTE = "| censored: still waiting at the end of the run; dotted: share only known to wait longer"


def _cdf_plot(result: SimulationResult, path: Path) -> None:
    """``cdf.png``: per report label, Kaplan–Meier CDFs of the time to admission and the time to
    start (censored at the end of the run, :func:`plot_survival`), and the JCT of completed jobs."""
    import matplotlib.pyplot as plt

    records = result.records
    fig, (wait_ax, start_ax, jct_ax) = plt.subplots(1, 3, figsize=(17, 4.6))
    for number, klass in enumerate(sorted({r.arrival.group for r in records})):  # report labels
        mine = [r for r in records if r.arrival.group == klass]
        color = f"C{number % 10}"
        plot_survival(
            wait_ax, wait_samples(mine, result.horizon_s, until="admission"), label=klass, color=color
        )
        plot_survival(start_ax, wait_samples(mine, result.horizon_s, until="start"), label=klass, color=color)
        jcts = sorted(
            (r.end_s - r.arrival.submit_s) / 60
            for r in mine
            if r.status is SimJobStatus.COMPLETED and r.end_s is not None
        )
        if jcts:
            jct_ax.step(
                jcts, [(i + 1) / len(jcts) for i in range(len(jcts))], where="post", label=klass, color=color
            )
    for ax, title in (
        (wait_ax, "Time to admission (Kaplan–Meier)"),
        (start_ax, "Time to start, pods running (Kaplan–Meier)"),
        (jct_ax, "JCT of completed jobs"),
    ):
        finish_cdf_axes(ax, title)
    fig.text(0.01, 0.01, CENSORING_NOTE, fontsize=8, color="0.3")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def finish_cdf_axes(ax: Axes, title: str) -> None:
    """Axes of a CDF in minutes: symlog x (waits of 0 and of days on one axis), 0..1 y, legend."""
    ax.set_xscale("symlog")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"CDF: {title}", fontsize=10)
    ax.set_xlabel("minutes")
    legend_if_labelled(ax, fontsize=7)


def _eta_plot(result: SimulationResult, path: Path) -> None:
    """Estimated start (at submission) against actual start, one point per job, by class: on the
    run's clock (left), and as waits since submission (right, log scale, where minutes show)."""
    import matplotlib.pyplot as plt

    hours, minutes = 3600.0, 60.0
    points = eta_points(result)
    submitted = {r.arrival.job_id: r.arrival.submit_s for r in result.records}
    fig, (clock_ax, wait_ax) = plt.subplots(1, 2, figsize=(12, 5.5))
    for klass in sorted({p.job_class for p in points}):
        mine = [p for p in points if p.job_class == klass]
        clock_ax.scatter(
            [p.estimated / hours for p in mine], [p.actual / hours for p in mine], s=9, alpha=0.6, label=klass
        )
        wait_ax.scatter(
            [(p.estimated - submitted[p.job_id]) / minutes for p in mine],
            [(p.actual - submitted[p.job_id]) / minutes for p in mine],
            s=9,
            alpha=0.6,
            label=klass,
        )
    top = max([1.0, *(max(p.estimated, p.actual) / hours for p in points)])
    clock_ax.plot([0, top], [0, top], color="0.4", linestyle="--", linewidth=0.8, label="exact")
    clock_ax.set_xlim(0, top * 1.02)
    clock_ax.set_ylim(0, top * 1.02)
    clock_ax.set_xlabel("estimated start at submission (hours)")
    clock_ax.set_ylabel("actual start (hours)")
    clock_ax.set_title("ETA accuracy: above the diagonal, later than estimated")
    waits = [max(p.estimated, p.actual) - submitted[p.job_id] for p in points]
    longest = max([1.0, *(w / minutes for w in waits)])
    wait_ax.plot([0, longest], [0, longest], color="0.4", linestyle="--", linewidth=0.8, label="exact")
    wait_ax.set_xscale("symlog", linthresh=1.0)
    wait_ax.set_yscale("symlog", linthresh=1.0)
    wait_ax.set_xlim(0, longest * 1.5)
    wait_ax.set_ylim(0, longest * 1.5)
    wait_ax.set_xlabel("estimated wait at submission (minutes)")
    wait_ax.set_ylabel("actual wait until start (minutes)")
    wait_ax.set_title("The same, from each job's submission")
    legend_if_labelled(clock_ax, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_frontier_plot(
    series: list[dict[str, Any]],
    path: Path,
    *,
    metric_label: str,
    threshold: float,
    slo_text: str,
    connect: bool = True,
) -> Path:
    """``plan_frontier.png``: a plan's fleets, cost against one SLO's metric.

    ``series`` is :func:`budcore_simulator.sweep.frontier_series` (one per condition): each point's
    fleet cost, the metric's mean and interval (error bars when replicated), whether it meets every
    SLO (dot) or not (cross), and the answer (star); the SLO's threshold is the dashed line.
    ``connect`` joins a series' points in cost order (one fleet dimension: a curve).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    for number, one in enumerate(series):
        points = one["points"]
        if not points:
            continue
        color = f"C{number % 10}"
        xs = [p["cost"] for p in points]
        ys = [p["mean"] for p in points]
        below = [p["mean"] - p["low"] if p["low"] is not None else 0.0 for p in points]
        above = [p["high"] - p["mean"] if p["high"] is not None else 0.0 for p in points]
        ax.errorbar(
            xs,
            ys,
            yerr=[below, above],
            fmt="-" if connect else "none",
            color=color,
            capsize=3,
            alpha=0.7,
            label=one["label"] or None,
        )
        for marker, keep in (("o", True), ("x", False)):
            chosen = [p for p in points if p["passed"] is keep]
            ax.scatter([p["cost"] for p in chosen], [p["mean"] for p in chosen], marker=marker, color=color)
        for p in points:
            if p["best"]:
                ax.scatter(
                    [p["cost"]], [p["mean"]], marker="*", s=260, color=color, edgecolors="black", zorder=5
                )
                ax.annotate(
                    p["label"], (p["cost"], p["mean"]), textcoords="offset points", xytext=(8, 8), fontsize=8
                )
    ax.axhline(threshold, color="red", linestyle="--", linewidth=1, label=f"SLO {slo_text}")
    ax.set_xlabel("fleet cost over the horizon ($)")
    ax.set_ylabel(metric_label)
    ax.set_title("fleets: cost vs the binding SLO's metric (dot: meets every SLO, x: fails, star: cheapest)")
    ax.title.set_fontsize(9)
    legend_if_labelled(ax, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
