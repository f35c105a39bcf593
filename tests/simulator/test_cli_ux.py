"""``simulate``, ``compare`` and ``plan`` from a user's seat: bad input fails early, in one line.

Regression tests for a usability audit: output directories that cannot be created, worker counts,
rich markup swallowing bracketed input, ``--format`` choices, empty or zero-length runs, legend
warnings, ``--seed``, scenario names that escape ``budcore-out/``, directories given as scenarios,
and the ``--help`` text.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any, NoReturn

import pytest
import typer
from budcore_simulator import cli as sim_cli
from budcore_simulator import sweep
from budcore_simulator.outputs import MANIFEST
from budcore_simulator.scenario import load_scenario
from rich.console import Console
from support.scenarios import SMALL

from budcore.cli import app, main

EMPTY = SMALL.replace(
    "gpus: {1: 0.6, 2: 0.2, 4: 0.1, 8: 0.1}", "gpus: {1: 0.6, 2: 0.2, 4: 0.1, 8: 0.1}\n        count: 0"
)
assert EMPTY != SMALL


def write(tmp_path: Path, text: str = SMALL, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def command_args(command: str, scenario: Path) -> list[str]:
    """The smallest valid invocation of each command (serial, so no process pool starts)."""
    if command == "simulate":
        return ["simulate", str(scenario), "--no-plots"]
    if command == "compare":
        return ["compare", str(scenario), "-p", "fifo", "-p", "fair", "--workers", "1"]
    return [
        "plan",
        str(scenario),
        "--vary",
        "pool.a100.nodes=1,2",
        "--slo",
        "p95_wait<30m",
        "--workers",
        "1",
    ]


@pytest.fixture
def no_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any simulation fail the test: the errors under test must come before the work."""

    def boom(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError("simulated although the input was bad")

    monkeypatch.setattr(sim_cli, "run_scenario", boom)
    monkeypatch.setattr(sweep, "run_all", boom)


def one_error_line(err: str) -> str:
    """The single ``error: ...`` line a user mistake must produce (and nothing else)."""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    return lines[0]


# 1. output directories ------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["simulate", "compare", "plan"])
@pytest.mark.parametrize("child", [False, True], ids=["file", "under-a-file"])
@pytest.mark.usefixtures("no_runs")
def test_output_dir_that_cannot_be_created_fails_before_simulating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, child: bool
) -> None:
    blocker = tmp_path / "f"
    blocker.touch()
    out = blocker / "sub" if child else blocker
    assert main([*command_args(command, write(tmp_path)), "-o", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--out" in line and str(out) in line


def test_output_dir_is_created_before_simulating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "a" / "b"
    seen: list[bool] = []
    real = sim_cli.run_scenario

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(out.is_dir())
        return real(*args, **kwargs)

    monkeypatch.setattr(sim_cli, "run_scenario", spy)
    assert main(["simulate", str(write(tmp_path)), "--no-plots", "-o", str(out)]) == 0
    assert seen == [True]


# 2. --workers --------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["compare", "plan"])
@pytest.mark.parametrize("workers", ["0", "-1"])
@pytest.mark.usefixtures("no_runs")
def test_workers_below_one_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, workers: str
) -> None:
    args = command_args(command, write(tmp_path))
    args[args.index("--workers") + 1] = workers
    assert main([*args, "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--workers" in err and "Traceback" not in err and "max_workers" not in err


# 3. rich markup ------------------------------------------------------------------------------------
@pytest.mark.usefixtures("no_runs")
def test_bracketed_input_survives_in_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = write(tmp_path)
    args = ["plan", str(scenario), "--vary", "pool.a100.nodes=[red]1", "--slo", "p95_wait<1m"]
    assert main([*args, "-o", str(tmp_path / "o")]) == 2
    assert "bad values '[red]1'" in one_error_line(capsys.readouterr().err)


def test_bracketed_scenario_name_survives_in_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = write(tmp_path, SMALL.replace("name: small", "name: '[bold]x[/bold] :smile:'"))
    assert main(["simulate", str(scenario), "--no-plots", "-o", str(tmp_path / "o")]) == 0
    assert "[bold]x[/bold] :smile:" in capsys.readouterr().out


def test_bracketed_output_dir_survives_in_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "[red]o"
    assert main(["simulate", str(write(tmp_path)), "--no-plots", "-o", str(out)]) == 0
    assert f"to {out}/" in " ".join(capsys.readouterr().out.split())


def test_progress_bar_shows_a_bracketed_name_verbatim(tmp_path: Path) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100)
    scenario = write(tmp_path, SMALL.replace("name: small", "name: '[red]x'"))
    sim_cli.run_scenario(load_scenario(scenario), console=console)
    assert "simulating" in buffer.getvalue() and " [red]x " in buffer.getvalue()


# 4. --format ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["simulate", "compare", "plan"])
@pytest.mark.usefixtures("no_runs")
def test_unknown_format_is_rejected_by_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    out = tmp_path / "o"
    assert main([*command_args(command, write(tmp_path)), "--format", "xml", "-o", str(out)]) == 2
    assert "--format" in one_error_line(capsys.readouterr().err)
    assert not out.exists()


# 5. empty and zero-length runs ---------------------------------------------------------------------
def test_empty_workload_renders_dashes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(write(tmp_path, EMPTY)), "--no-plots", "-o", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "fairness (Jain over tenants): -" in out
    assert "None" not in out


def test_compare_of_an_empty_workload_renders_dashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = command_args("compare", write(tmp_path, EMPTY))
    assert main([*args, "-o", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "None" not in out
    assert any(line.startswith("│ Jain (tenants)") and line.count(" - ") == 2 for line in out.splitlines())


def test_zero_horizon_does_not_crash_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = write(tmp_path, SMALL.replace("horizon: 4h", "horizon: 0"))
    code = main(["simulate", str(scenario), "--no-plots", "-o", str(tmp_path / "o")])
    captured = capsys.readouterr()
    if code == 0:  # the loader accepts a zero horizon: the summary shows what is undefined as "-"
        assert "utilisation: fleet - (a100 -)" in captured.out
    else:  # the loader rejects it, naming the field
        assert code == 2 and "horizon" in captured.err and "Traceback" not in captured.err


def test_summary_tolerates_missing_metrics() -> None:
    """Every figure the report may leave undefined (None) or empty renders as '-'."""
    stats = {
        "count": 0,
        "completed": 0,
        "wait_s": {"p50": None, "p95": None},
        "jct_s": {"p50": None, "p95": None},
        "gpu_hours": None,
        "cost": None,
        "deadline_misses": 0,
        "deadlines": 0,
    }
    report = {
        "scenario": "s",
        "seed": 0,
        "by_tenant": {"team": stats},
        "overall": stats,
        "utilisation": {"fleet": None, "by_flavor": {"h100": None}},
        "fairness": {"jain_index_tenants": None},
        "engine": {"node_failures": 0},
    }
    figures = {"events": 0, "wall_s": 0.0, "events_per_s": None, "jobs_per_s": None}
    console = Console(record=True, width=200)
    sim_cli.print_summary(console, report, figures, [], Path("o"))
    text = console.export_text()
    assert "utilisation: fleet - (h100 -)" in text
    assert "Jain over tenants): -" in text
    assert "None" not in text


# 6. legend warnings --------------------------------------------------------------------------------
def test_plots_of_an_empty_run_warn_about_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["simulate", str(write(tmp_path, EMPTY)), "-o", str(tmp_path / "o")]) == 0
        assert main([*command_args("compare", write(tmp_path, EMPTY)), "-o", str(tmp_path / "c")]) == 0
    assert [str(w.message) for w in caught if "legend" in str(w.message)] == []
    assert (tmp_path / "o" / "cdf.png").is_file() and (tmp_path / "c" / "compare_cdf.png").is_file()
    assert "legend" not in capsys.readouterr().err


# 7. --seed -------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("no_runs")
def test_negative_seed_names_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(write(tmp_path)), "--seed", "-1", "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "'--seed'" in err and "Traceback" not in err
    assert not err.startswith("\n")


def test_a_run_writes_nothing_stray_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without a terminal there is no progress bar, and so no blank line where it was: stderr holds
    only the run's notes (here: the jobs still queued at the horizon), one line each."""
    assert main(["simulate", str(write(tmp_path)), "--no-plots", "-o", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert all(line.startswith("note: ") for line in err.splitlines())  # no blank line either


# 8. default output directory -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "directory"),
    [
        ("small", "small"),
        ("../../escaped", "escaped"),
        ("/etc/passwd", "etc-passwd"),
        ("..", "scenario"),
        ("", "scenario"),
        ("a b/c", "a-b-c"),
        (".hidden", "hidden"),
    ],
)
def test_default_output_dir_is_a_safe_name(name: str, directory: str) -> None:
    assert sim_cli.default_output_dir(name) == Path("budcore-out") / directory
    assert sim_cli.default_output_dir(name, "-plan") == Path("budcore-out") / f"{directory}-plan"


@pytest.mark.parametrize("command", ["simulate", "compare", "plan"])
def test_scenario_name_cannot_escape_budcore_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    scenario = write(work, SMALL.replace("name: small", 'name: "../../escaped"'))
    assert main([*command_args(command, scenario), "--format", "json"]) == 0
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "escaped-compare").exists()
    made = [p.name for p in (work / "budcore-out").iterdir()]
    assert made == [{"simulate": "escaped", "compare": "escaped-compare", "plan": "escaped-plan"}[command]]


# 9. a directory as the scenario ----------------------------------------------------------------------
@pytest.mark.parametrize("command", ["simulate", "compare", "plan"])
@pytest.mark.usefixtures("no_runs")
def test_directory_as_scenario_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    write(tmp_path)
    assert main([*command_args(command, tmp_path), "-o", str(tmp_path / "o")]) == 2
    err = " ".join(capsys.readouterr().err.replace("│", " ").split())  # typer boxes and wraps it
    assert f"Invalid value for 'SCENARIO': file '{tmp_path}' is a directory" in err


# 10. --help --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["simulate", "compare", "plan"])
def test_every_option_is_documented(name: str) -> None:
    main(["--version"])  # registers the plugin commands on the shared app
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    assert {p.name for p in command.params} >= {"scenario", "out", "fmt"}
    for param in command.params:
        text = getattr(param, "help", None)
        assert text and len(text) > 20, (name, param.name)


@pytest.mark.parametrize(
    ("name", "needles"),
    [
        ("simulate", ["budcore-out/", "non-negative", "table", "json", "plots extra"]),
        ("compare", ["budcore-out/", "at least two", "fair_sharing=true", "one per CPU core"]),
        ("plan", ["budcore-out/", "pool.h100.nodes=4..32", "30m", "1%", "every combination"]),
    ],
)
def test_help_gives_defaults_units_and_examples(
    name: str, needles: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main([name, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for needle in needles:
        assert needle in text, needle


# Notes on stderr: what the tables do not show -------------------------------------------------------
def test_skipped_trace_rows_are_noted_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "t.csv").write_text(
        "job_id,submit_s,runtime_s,gpus_per_pod,tenant,local_queue\na,0,60,1,team,main\nb,10,-5,1,team,main\n"
    )
    text = SMALL.replace(
        "workload:\n  generators:", "workload:\n  traces: [{format: budcore, path: t.csv}]\n  generators:"
    )
    out = tmp_path / "o"
    assert main(["simulate", str(write(tmp_path, text)), "--no-plots", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "note: " in err and "1 invalid row(s) skipped (first: " in err and ":3: runtime_s: " in err
    report = __import__("json").loads((out / "report.json").read_text())
    (trace,) = report["traces"]
    assert trace["rows"] == 2 and trace["emitted"] == 1 and trace["skipped"] == 1
    assert trace["skipped_rows"][0].endswith("runtime_s: must not be negative, got -5.0")


def test_jobs_never_admitted_are_noted_with_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SMALL.replace("gpus: {1: 0.6, 2: 0.2, 4: 0.1, 8: 0.1}", "gpus: 32\n        count: 2")
    assert main(["simulate", str(write(tmp_path, text)), "--no-plots", "-o", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert (
        "note: 2 job(s) never admitted by the end of the run (first: train-0: couldn't assign flavors "
        "to pod set main: insufficient quota" in err
    )
    assert "> maximum capacity (16)" in err


def test_without_matplotlib_a_run_keeps_every_other_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A base install has no plots extra: the run must not die at the end on an ImportError."""
    monkeypatch.setattr(sim_cli, "plots_available", lambda: False)
    out = tmp_path / "o"
    assert main(["simulate", str(write(tmp_path)), "-o", str(out)]) == 0
    assert "note: plots skipped: matplotlib is not installed" in capsys.readouterr().err
    assert {p.name for p in out.iterdir()} == {"report.json", "run.json", "jobs.csv", "usage.csv", MANIFEST}
    compare_out = tmp_path / "c"
    assert main([*command_args("compare", write(tmp_path)), "-o", str(compare_out)]) == 0
    assert "compare_cdf.png skipped" in capsys.readouterr().err
    assert (compare_out / "compare.json").is_file() and not (compare_out / "compare_cdf.png").exists()


def test_built_in_scenarios_run_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``budcore simulate deadlines`` finds the packaged scenario; a missing name still errors."""
    from budcore_simulator.cli import builtin_scenarios, resolve_scenario

    assert {"default", "deadlines", "nodes-dump"} <= set(builtin_scenarios())
    assert resolve_scenario(Path("deadlines")).name == "scenario.yaml"
    assert resolve_scenario(Path("deadlines")).parent.name == "deadlines"
    assert resolve_scenario(Path("no-such-scenario")) == Path("no-such-scenario")
    assert main(["simulate", "no-such-scenario", "--out", str(tmp_path / "x")]) == 2
    assert "no-such-scenario" in capsys.readouterr().err
