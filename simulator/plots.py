"""PNG plots of a simulation (matplotlib, headless).

- ``timeline.png``: a Gantt-style resource timeline like the seeds' cluster schedule view: one row
  per node, one block per job run on it, coloured by tenant (the first ``max_nodes`` nodes);
- ``utilisation.png``: GPUs in use over time per flavor, against each flavor's capacity;
- ``cdf.png``: CDFs of wait and JCT per job class.
"""

from __future__ import annotations

from pathlib import Path

from .engine import SimulationResult


def write_plots(result: SimulationResult, out_dir: Path, *, max_nodes: int = 40) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    records = result.records
    hours = 3600.0

    # Timeline ---------------------------------------------------------------------------------
    nodes = sorted({n for r in records for n in r.nodes})[:max_nodes]
    row = {n: i for i, n in enumerate(nodes)}
    tenants = sorted({r.arrival.tenant for r in records})
    colours = {t: plt.get_cmap("tab10")(i % 10) for i, t in enumerate(tenants)}
    fig, ax = plt.subplots(figsize=(12, max(3.0, 0.25 * len(nodes) + 1.5)))
    for r in records:
        if r.start_s is None:
            continue
        end = r.end_s if r.end_s is not None else result.horizon_s
        for n in r.nodes:
            if n in row:
                ax.broken_barh(
                    [(r.start_s / hours, max(end - r.start_s, 1.0) / hours)],
                    (row[n] - 0.4, 0.8),
                    facecolors=colours[r.arrival.tenant],
                    edgecolor="white",
                    linewidth=0.3,
                )
    ax.set_yticks(range(len(nodes)), nodes, fontsize=7)
    ax.set_xlabel("hours")
    ax.set_title("Cluster schedule (blocks: job runs, by tenant)")
    ax.legend(handles=[Patch(color=colours[t], label=t) for t in tenants], loc="upper right")
    fig.tight_layout()
    path = out_dir / "timeline.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    # Utilisation over time --------------------------------------------------------------------
    fig, ax = plt.subplots(figsize=(10, 4))
    times = [t / hours for t in result.series.times]
    for flavor, values in sorted(result.series.flavors.items()):
        capacity = result.flavor_capacity.get(flavor, 0)
        if capacity:
            ax.step(times, [v / capacity for v in values], where="post", label=f"{flavor} ({capacity} GPUs)")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("hours")
    ax.set_ylabel("GPUs in use / capacity")
    ax.set_title("Utilisation per flavor")
    ax.legend()
    fig.tight_layout()
    path = out_dir / "utilisation.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    # CDFs -------------------------------------------------------------------------------------
    fig, (wait_ax, jct_ax) = plt.subplots(1, 2, figsize=(12, 4))
    classes = sorted({r.arrival.job_class for r in records})
    for klass in classes:
        mine = [r for r in records if r.arrival.job_class == klass]
        waits = sorted((r.admitted_s - r.arrival.submit_s) / 60 for r in mine if r.admitted_s is not None)
        jcts = sorted(
            (r.end_s - r.arrival.submit_s) / 60
            for r in mine
            if r.status == "completed" and r.end_s is not None
        )
        for ax, values in ((wait_ax, waits), (jct_ax, jcts)):
            if values:
                ax.step(
                    values, [(i + 1) / len(values) for i in range(len(values))], where="post", label=klass
                )
    for ax, title in ((wait_ax, "Wait (minutes)"), (jct_ax, "JCT (minutes)")):
        ax.set_xscale("symlog")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"CDF of {title.lower()}")
        ax.set_xlabel(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / "cdf.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written
