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
