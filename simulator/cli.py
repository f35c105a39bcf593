"""``budcore simulate``: run a scenario and write its report, records, time series and plots."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from budcore.domain.errors import ValidationError

from .engine import Simulation, SimulationResult
from .report import build_report, dumps, records_csv, run_figures, series_csv
from .scenario import LoadedScenario, load_scenario, scenario_json_schema


def default_scenario_path() -> Path:
    return Path(str(files("budcore_simulator") / "scenarios" / "default" / "scenario.yaml"))


def run_scenario(loaded: LoadedScenario, *, console: Console | None = None) -> SimulationResult:
    """Run a loaded scenario, with a progress bar on ``console`` when given."""
    scenario = loaded.scenario
    options = loaded.engine_options()
    if console is None or console.quiet:
        sim = Simulation(
            loaded.nodes,
            loaded.queues,
            loaded.arrivals(),
            options=options,
            policy=scenario.policy.admission(),
            preemption=scenario.policy.preemption(),
            preemption_budget=scenario.policy.budget(),
            aging=scenario.policy.aging.policy() if scenario.policy.aging else None,
            prices=loaded.prices(),
        )
        return sim.run()
    total = options.horizon_s
    with Progress(
        TextColumn("[bold]simulating[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.fields[jobs]} jobs done"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(scenario.name, total=total, jobs=0)

        def report(sim_s: float, finished: int) -> None:
            progress.update(task, completed=sim_s if total else None, jobs=finished)

        sim = Simulation(
            loaded.nodes,
            loaded.queues,
            loaded.arrivals(),
            options=options,
            policy=scenario.policy.admission(),
            preemption=scenario.policy.preemption(),
            preemption_budget=scenario.policy.budget(),
            aging=scenario.policy.aging.policy() if scenario.policy.aging else None,
            prices=loaded.prices(),
            progress=report,
        )
        return sim.run()


def write_outputs(result: SimulationResult, report: dict[str, Any], out: Path, *, plots: bool) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (
        ("report.json", dumps(report)),
        ("run.json", json.dumps(run_figures(result), indent=2, sort_keys=True) + "\n"),
        ("jobs.csv", records_csv(result.records)),
        ("usage.csv", series_csv(result)),
    ):
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    if plots:
        from .plots import write_plots

        written.extend(write_plots(result, out))
    return written


def summary_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"budcore simulation: {report['scenario']} (seed {report['seed']})")
    for column in (
        "tenant",
        "jobs",
        "completed",
        "wait p50",
        "wait p95",
        "JCT p50",
        "JCT p95",
        "GPU-h",
        "cost",
    ):
        table.add_column(column, justify="left" if column == "tenant" else "right")

    def minutes(value: float | None) -> str:
        return "-" if value is None else f"{value / 60:.1f}m"

    rows = [*report["by_tenant"].items(), ("all", report["overall"])]
    for name, stats in rows:
        table.add_row(
            name,
            str(stats["count"]),
            str(stats["completed"]),
            minutes(stats["wait_s"]["p50"]),
            minutes(stats["wait_s"]["p95"]),
            minutes(stats["jct_s"]["p50"]),
            minutes(stats["jct_s"]["p95"]),
            f"{stats['gpu_hours']:.1f}",
            f"${stats['cost']}",
        )
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    def simulate(
        scenario: Annotated[
            Path | None, typer.Argument(help="Scenario YAML file (default: the built-in scenario).")
        ] = None,
        out: Annotated[Path | None, typer.Option("--out", "-o", help="Output directory.")] = None,
        fmt: Annotated[str, typer.Option("--format", help="Summary format: table or json.")] = "table",
        seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
        plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write PNG plots.")] = True,
        schema: Annotated[
            bool, typer.Option("--schema", help="Print the scenario JSON schema and exit.")
        ] = False,
    ) -> None:
        """Simulate a scenario on the real scheduling core and report waits, JCT, utilisation, cost."""
        console = Console(width=None if Console().is_terminal else 120)
        if schema:
            console.print_json(json.dumps(scenario_json_schema()))
            return
        if fmt not in ("table", "json"):
            raise ValidationError(f"unknown format {fmt!r}; use table or json", path="--format")
        loaded = load_scenario(scenario or default_scenario_path())
        if seed is not None:
            loaded.scenario = loaded.scenario.model_copy(update={"seed": seed})
        quiet = fmt == "json"
        result = run_scenario(loaded, console=Console(quiet=quiet, stderr=True))
        report = build_report(result, scenario_name=loaded.scenario.name, seed=loaded.scenario.seed)
        target = out or Path("budcore-out") / loaded.scenario.name
        written = write_outputs(result, report, target, plots=plots)
        if fmt == "json":
            typer.echo(dumps(report), nl=False)
            return
        console.print(summary_table(report))
        util = report["utilisation"]
        flavors = ", ".join(f"{k} {v:.0%}" for k, v in util["by_flavor"].items() if v is not None)
        console.print(f"utilisation: fleet {util['fleet']:.0%} ({flavors})")
        fairness = report["fairness"]["jain_index_tenants"]
        overall = report["overall"]
        console.print(
            f"fairness (Jain over tenants): {fairness}   deadline misses: {overall['deadline_misses']}"
            f" of {overall['deadlines']}   node failures: {report['engine']['node_failures']}"
        )
        figures = run_figures(result)
        console.print(
            f"engine: {figures['events']} events in {figures['wall_s']}s "
            f"({figures['events_per_s']} events/s, {figures['jobs_per_s']} jobs/s)"
        )
        console.print(f"wrote {len(written)} files to {target}/ ({', '.join(p.name for p in written)})")


def _minutes(value: float | None) -> str:
    return "-" if value is None else f"{value / 60:.1f}m"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def write_compare_plot(results: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (wait_ax, jct_ax) = plt.subplots(1, 2, figsize=(12, 4))
    for result in results:
        for ax, key in ((wait_ax, "waits"), (jct_ax, "jcts")):
            values = [v / 60 for v in result[key]]
            if values:
                ax.step(
                    values,
                    [(i + 1) / len(values) for i in range(len(values))],
                    where="post",
                    label=result["label"],
                )
    for ax, title in ((wait_ax, "wait (minutes)"), (jct_ax, "JCT (minutes)")):
        ax.set_xscale("symlog")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"CDF of {title}")
        ax.set_xlabel(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def register_sweeps(app: typer.Typer) -> None:
    from .sweep import (
        cheapest,
        compare_specs,
        evaluate_plan,
        metrics_of,
        parse_policy,
        parse_slo,
        parse_vary,
        plan_specs,
        run_all,
    )

    @app.command()
    def compare(
        scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
        policy: Annotated[
            list[str],
            typer.Option(
                "--policy",
                "-p",
                help="A preset (fifo, fair, strict-fifo), a policy YAML file, or key=value,...",
            ),
        ],
        out: Annotated[Path | None, typer.Option("--out", "-o", help="Output directory.")] = None,
        workers: Annotated[int | None, typer.Option(help="Parallel runs (default: one per core).")] = None,
        fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    ) -> None:
        """Run the same workload (same seed) under several policies and compare them side by side."""
        if len(policy) < 2:
            raise ValidationError("compare needs at least two --policy values", path="--policy")
        loaded = load_scenario(scenario)
        specs = compare_specs(loaded, [parse_policy(p) for p in policy])
        results = run_all(specs, workers=workers)
        target = out or Path("budcore-out") / f"{loaded.scenario.name}-compare"
        target.mkdir(parents=True, exist_ok=True)
        summary = {r["label"]: {"metrics": metrics_of(r["report"]), "report": r["report"]} for r in results}
        (target / "compare.json").write_text(dumps(summary), encoding="utf-8")
        write_compare_plot(results, target / "compare_cdf.png")
        if fmt == "json":
            typer.echo(dumps({k: v["metrics"] for k, v in summary.items()}), nl=False)
            return
        console = Console(width=None if Console().is_terminal else 140)
        table = Table(title=f"{loaded.scenario.name}: same workload, seed {loaded.scenario.seed}")
        table.add_column("metric")
        for r in results:
            table.add_column(r["label"], justify="right")
        rows: list[tuple[str, Any]] = [
            ("completed", lambda rep: f"{rep['overall']['completed']}/{rep['overall']['count']}"),
            ("wait mean", lambda rep: _minutes(rep["overall"]["wait_s"]["mean"])),
            ("wait p95", lambda rep: _minutes(rep["overall"]["wait_s"]["p95"])),
            ("JCT mean", lambda rep: _minutes(rep["overall"]["jct_s"]["mean"])),
            ("JCT p95", lambda rep: _minutes(rep["overall"]["jct_s"]["p95"])),
            ("utilisation", lambda rep: _percent(rep["utilisation"]["fleet"])),
            ("Jain (tenants)", lambda rep: str(rep["fairness"]["jain_index_tenants"])),
            (
                "deadline misses",
                lambda rep: f"{rep['overall']['deadline_misses']}/{rep['overall']['deadlines']}",
            ),
            ("GPU-h lost", lambda rep: f"{rep['overall']['gpu_hours_lost']:.1f}"),
            ("cost of lost work", lambda rep: f"${rep['overall']['lost_cost']}"),
            ("cost", lambda rep: f"${rep['overall']['cost']}"),
        ]
        for name, cell in rows:
            table.add_row(name, *(cell(r["report"]) for r in results))
        console.print(table)
        console.print(f"wrote compare.json and compare_cdf.png to {target}/")

    @app.command()
    def plan(
        scenario: Annotated[Path, typer.Argument(help="Scenario YAML file (needs a horizon).")],
        vary: Annotated[
            list[str], typer.Option("--vary", help="pool.<name>.nodes=<lo>..<hi>[:step] or =a,b,c")
        ],
        slo: Annotated[list[str], typer.Option("--slo", help="e.g. 'p95_wait<30m', 'deadline_miss<1%'")],
        out: Annotated[Path | None, typer.Option("--out", "-o", help="Output directory.")] = None,
        workers: Annotated[int | None, typer.Option(help="Parallel runs (default: one per core).")] = None,
        fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    ) -> None:
        """Sweep fleet sizes and return the cheapest fleet that meets every SLO, with the frontier."""
        loaded = load_scenario(scenario)
        if loaded.scenario.horizon is None:
            raise ValidationError(
                "plan needs a scenario with a horizon (fleet cost is over it)", path="horizon"
            )
        variations = [parse_vary(v) for v in vary]
        slos = [parse_slo(s) for s in slo]
        points = plan_specs(loaded, variations)
        console = Console(width=None if Console().is_terminal else 140, stderr=fmt == "json")
        console.print(f"planning {len(points)} fleet(s) of {loaded.scenario.name!r}...")
        results = run_all([spec for _, spec in points], workers=workers)
        evaluated = evaluate_plan(points, results, slos)
        best = cheapest(evaluated)
        rows = [
            {
                "fleet": {f"{p}.{f}": v for (p, f), v in point.changes.items()},
                "gpus": point.gpus,
                "fleet_cost": str(point.fleet_cost),
                "metrics": point.metrics,
                "meets_slos": point.passed,
                "failed_slos": list(point.failed),
            }
            for point in evaluated
        ]
        answer = {
            "slos": [s.text for s in slos],
            "cheapest": None if best is None else {f"{p}.{f}": v for (p, f), v in best.changes.items()},
            "cheapest_cost": None if best is None else str(best.fleet_cost),
            "frontier": rows,
        }
        target = out or Path("budcore-out") / f"{loaded.scenario.name}-plan"
        target.mkdir(parents=True, exist_ok=True)
        (target / "plan.json").write_text(dumps(answer), encoding="utf-8")
        if fmt == "json":
            typer.echo(dumps(answer), nl=False)
            return
        table = Table(title=f"{loaded.scenario.name}: fleets against {', '.join(s.text for s in slos)}")
        for column in (
            "fleet",
            "GPUs",
            "fleet cost",
            "wait p95",
            "JCT p95",
            "deadline miss",
            "util.",
            "SLOs",
        ):
            table.add_column(column, justify="left" if column in ("fleet", "SLOs") else "right")
        for point in sorted(evaluated, key=lambda p: (p.fleet_cost, p.gpus)):
            label = ", ".join(f"{p}.{f}={v}" for (p, f), v in point.changes.items())
            mark = "[green]ok[/]" if point.passed else f"[red]fails {', '.join(point.failed)}[/]"
            if point is best:
                label = f"[bold]{label}[/] (cheapest)"
            table.add_row(
                label,
                str(point.gpus),
                f"${point.fleet_cost}",
                _minutes(point.metrics["p95_wait"]),
                _minutes(point.metrics["p95_jct"]),
                _percent(point.metrics["deadline_miss"]),
                _percent(point.metrics["utilisation"]),
                mark,
            )
        console.print(table)
        if best is None:
            console.print("[red]no fleet in the sweep meets every SLO[/]")
        else:
            console.print(f"cheapest fleet meeting every SLO: {answer['cheapest']} at ${best.fleet_cost}")
        console.print(f"wrote plan.json to {target}/")
