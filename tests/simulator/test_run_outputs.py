"""Safe outputs, progress and ``plan --resume``, in process (the signals themselves: test_interrupt.py).

- a run into a directory holding a previous run's files removes them first (only those, and only
  budcore's), marks its main file ``"complete": false`` until the end, and lists its files in
  ``.budcore-run.json``;
- ``--progress`` on a non-terminal prints plain lines (points done / total, simulated time and
  jobs done), nothing by default, nothing with ``--quiet``;
- ``plan --resume`` reuses the runs of ``points.jsonl``, runs only the missing ones, answers
  exactly as an uninterrupted plan, and refuses a journal written for another question.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from budcore_simulator import sweep
from budcore_simulator.outputs import MANIFEST, RunDirectory
from support.scenarios import SMALL

from budcore.cli import main
from budcore.domain.errors import ValidationError


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(SMALL)
    return path


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


PLAN = ["--vary", "pool.a100.nodes=1..3", "--slo", "p95_wait<30m", "--workers", "1"]


# Outputs ----------------------------------------------------------------------------------------
def test_a_new_run_removes_the_previous_runs_files_and_nothing_else(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["simulate", str(scenario), "--out", str(out), "--quiet"]) == 0
    first = set(p.name for p in out.iterdir())
    assert {"report.json", "jobs.csv", "usage.csv", "run.json", MANIFEST, "timeline.png"} <= first
    assert _json(out / "report.json")["complete"] is True
    manifest = _json(out / MANIFEST)
    assert manifest["complete"] is True and manifest["command"] == "simulate"
    assert set(manifest["files"]) == first - {MANIFEST}
    (out / "mine.txt").write_text("the user's own file")
    # Without plots, the previous run's PNGs must not stay beside the new report.
    assert main(["simulate", str(scenario), "--out", str(out), "--no-plots", "--quiet"]) == 0
    second = set(p.name for p in out.iterdir())
    assert second == {"report.json", "jobs.csv", "usage.csv", "run.json", MANIFEST, "mine.txt"}
    assert _json(out / MANIFEST)["files"] == ["report.json", "run.json", "jobs.csv", "usage.csv"]


def test_the_main_file_says_incomplete_until_the_run_ends(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text('{"complete": true, "old": 1}')
    (tmp_path / "jobs.csv").write_text("old")
    (tmp_path / "cdf.png").write_text("old")  # a known name: removed even without a manifest
    run = RunDirectory(tmp_path, "simulate", "report.json")
    assert run.begin({"scenario": "x"}) == ["cdf.png", "jobs.csv", "report.json"]
    assert _json(tmp_path / "report.json") == {"complete": False, "scenario": "x"}
    run.write("jobs.csv", "new\n")
    assert _json(tmp_path / MANIFEST) == {
        "command": "simulate",
        "complete": False,
        "files": ["report.json", "jobs.csv"],
    }
    run.stop({"scenario": "x"}, "SIGTERM")
    assert _json(tmp_path / "report.json") == {"complete": False, "interrupted": "SIGTERM", "scenario": "x"}
    assert _json(tmp_path / MANIFEST)["interrupted"] == "SIGTERM"
    run.finish({"scenario": "x", "jobs": 3})
    run.stop({"scenario": "x"}, "SIGINT")  # after the last write: changes nothing
    assert _json(tmp_path / "report.json") == {"complete": True, "jobs": 3, "scenario": "x"}


def test_outputs_get_the_usual_file_mode(tmp_path: Path) -> None:
    import os

    from budcore_simulator.outputs import _file_mode

    old = os.umask(0o022)
    _file_mode.cache_clear()  # read once per process: read it under this umask
    try:
        run = RunDirectory(tmp_path, "simulate", "report.json")
        run.begin({})
        run.write("jobs.csv", "x\n")
    finally:
        os.umask(old)
        _file_mode.cache_clear()
    for name in ("report.json", "jobs.csv", MANIFEST):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name


def test_a_manifest_cannot_point_outside_the_directory(tmp_path: Path) -> None:
    outside = tmp_path / "precious.txt"
    outside.write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST).write_text(json.dumps({"files": ["../precious.txt", str(outside), "sub"]}))
    (out / "sub").mkdir()
    RunDirectory(out, "plan", "plan.json").begin({})
    assert outside.read_text() == "keep" and (out / "sub").is_dir()


def test_compare_writes_compare_json_only_when_complete(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    argv = ["compare", str(scenario), "-p", "fifo", "-p", "strict-fifo", "--out", str(out), "--workers", "1"]
    assert main([*argv, "--quiet"]) == 0
    assert set(_json(out / "compare.json")) == {"fifo", "strict-fifo"}  # policies only, as before
    assert _json(out / MANIFEST)["complete"] is True


# Progress ---------------------------------------------------------------------------------------
def test_no_progress_when_stderr_is_not_a_terminal(
    scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", str(scenario), *PLAN, "--out", str(tmp_path / "p")]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "points" not in captured.out.split("\n")[0]
    assert captured.out.startswith("planning 3 fleet(s) of 'small'...")


def test_progress_forced_prints_points_done_of_total(
    scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", str(scenario), *PLAN, "--out", str(tmp_path / "p"), "--progress"]) == 0
    assert capsys.readouterr().err.splitlines() == [f"plan: points: {n}/3 done" for n in (1, 2, 3)]
    argv = ["compare", str(scenario), "-p", "fifo", "-p", "fair", "--workers", "1", "--seeds", "2"]
    assert main([*argv, "--out", str(tmp_path / "c"), "--progress"]) == 0
    assert capsys.readouterr().err.splitlines() == [f"compare: runs: {n}/4 done" for n in (1, 2, 3, 4)]


def test_quiet_wins_over_progress(scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(scenario), *PLAN, "--out", str(tmp_path / "p"), "--progress", "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["simulate", str(scenario), "--out", str(tmp_path / "s"), "--progress", "--quiet"]) == 0
    assert "simulating" not in capsys.readouterr().err  # the run's notes stay: they are output


def test_simulate_progress_shows_simulated_time_and_jobs(
    scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate", str(scenario), "--out", str(tmp_path / "s"), "--no-plots", "--progress"]
    assert main(argv) == 0
    first = capsys.readouterr().err.splitlines()[0]
    # The first report is the first usage sample, at 0 s of the 4 h horizon (plain lines are
    # at least 2 s of wall time apart, so how many follow depends on the machine).
    assert first == "simulating small: 0s of 4.0h simulated (0%), 0 jobs done"


# plan --resume ----------------------------------------------------------------------------------
def _count_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    ran: list[int] = []
    real = sweep.run_one

    def counting(spec: sweep.RunSpec) -> dict[str, Any]:
        ran.append(spec.scenario.seed)
        return real(spec)

    monkeypatch.setattr(sweep, "run_one", counting)
    return ran


def test_resume_runs_only_what_is_missing_and_answers_the_same(
    scenario: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = _count_runs(monkeypatch)
    whole, part = tmp_path / "whole", tmp_path / "part"
    argv = ["plan", str(scenario), *PLAN, "--seeds", "2", "--quiet"]
    assert main([*argv, "--out", str(whole)]) == 0
    assert len(ran) == 6  # 3 fleets x 2 seeds
    assert main([*argv, "--out", str(part)]) == 0
    # As an interruption leaves it: the question and two runs, the second cut mid-line.
    lines = (part / "points.jsonl").read_text().splitlines()
    assert len(lines) == 7 and "question" in json.loads(lines[0])
    (part / "points.jsonl").write_text("\n".join(lines[:3]) + "\n" + lines[3][:50])
    (part / "plan.json").write_text('{"complete": false}')
    ran.clear()
    assert main([*argv, "--out", str(part), "--resume"]) == 0
    assert len(ran) == 4  # two kept, the cut one and the three never run are run
    resumed, fresh = _json(part / "plan.json"), _json(whole / "plan.json")
    assert resumed["complete"] is True and resumed == fresh
    ran.clear()
    assert main([*argv, "--out", str(part), "--resume"]) == 0  # everything kept: nothing runs
    assert ran == [] and _json(part / "plan.json") == fresh


def test_resume_refuses_another_question(
    scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p"
    assert main(["plan", str(scenario), *PLAN, "--out", str(out), "--quiet"]) == 0
    before = (out / "plan.json").read_text()
    capsys.readouterr()
    other = ["plan", str(scenario), *PLAN[:2], "--slo", "p95_wait<1h", *PLAN[4:]]
    assert main([*other, "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --resume: ") and "another question: --slo differ(s)" in err
    assert len(err.splitlines()) == 1
    assert (out / "plan.json").read_text() == before  # refused before anything was touched
    assert main(["plan", str(scenario), *PLAN, "--seed", "6", "--out", str(out), "--resume"]) == 2
    assert "the scenario (its file, or --seed), --seeds/--seed differ(s)" in capsys.readouterr().err


def test_resume_without_a_journal_is_an_error(scenario: Path, tmp_path: Path) -> None:
    from budcore_simulator.journal import PlanJournal

    with pytest.raises(ValidationError, match="no interrupted plan to resume") as info:
        PlanJournal(tmp_path, {}, resume=True)
    assert info.value.path == "--resume"


# Interruptions, in process (the signals themselves: test_interrupt.py) ------------------------
def test_an_interruption_before_the_simulation_keeps_the_marker(
    scenario: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from budcore_simulator import cli as sim_cli

    from budcore.cli.interrupt import Terminated

    def terminated(*args: Any, **kwargs: Any) -> Any:
        raise Terminated()

    monkeypatch.setattr(sim_cli, "run_scenario", terminated)
    out = tmp_path / "out"
    assert main(["simulate", str(scenario), "--out", str(out)]) == 143
    assert capsys.readouterr().err == (
        f'interrupted (SIGTERM): no outputs kept; {out / "report.json"} says "complete": false\n'
    )
    assert _json(out / "report.json") == {
        "complete": False,
        "interrupted": "SIGTERM",
        "scenario": "small",
        "seed": 5,
    }


def test_an_interrupted_comparison_keeps_its_finished_runs_apart_from_compare_json(
    scenario: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    argv = ["compare", str(scenario), "-p", "fifo", "-p", "fair", "--out", str(out), "--workers", "1"]
    assert main([*argv, "--quiet"]) == 0
    real = sweep.run_one
    calls: list[int] = []

    def second_is_interrupted(spec: sweep.RunSpec) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(spec)

    monkeypatch.setattr(sweep, "run_one", second_is_interrupted)
    assert main(argv) == 130
    err = capsys.readouterr().err
    kept = f"1 of 2 runs had finished, kept in {out / 'compare.partial.json'}"
    assert err == f'interrupted (SIGINT): {kept}; {out / MANIFEST} says "complete": false\n'
    assert not (out / "compare.json").exists() and not (out / "compare_cdf.png").exists()
    manifest = _json(out / MANIFEST)
    assert manifest["complete"] is False and manifest["interrupted"] == "SIGINT"
    assert "compare.partial.json" in manifest["files"]
    partial = _json(out / "compare.partial.json")
    assert partial["complete"] is False and partial["policies"] == ["fifo", "fair"]
    [finished] = partial["runs"]  # the first run (fifo) finished, its whole report kept
    assert (finished["policy"], finished["seed"]) == ("fifo", partial_seed(scenario))
    assert finished["report"]["overall"]["outcomes"]["jobs"] > 0
    # A run after it removes the partial file: it is this interrupted run's, not the next one's.
    monkeypatch.setattr(sweep, "run_one", real)
    assert main([*argv, "--quiet"]) == 0
    assert not (out / "compare.partial.json").exists() and (out / "compare.json").exists()


def partial_seed(scenario: Path) -> int:
    from budcore_simulator.scenario import load_scenario

    return load_scenario(scenario).scenario.seed


def test_any_command_interrupted_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import budcore.plugins

    def interrupted() -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(budcore.plugins, "default_registry", interrupted)
    assert main(["plugins"]) == 130
    assert capsys.readouterr().err == "interrupted (SIGINT)\n"


def test_a_command_that_handled_its_interruption_keeps_its_own_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import typer

    import budcore.plugins

    def handled() -> Any:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            print("stopped by the command", file=sys.stderr)
            raise typer.Exit(3) from None

    monkeypatch.setattr(budcore.plugins, "default_registry", handled)
    assert main(["plugins"]) == 3
    assert capsys.readouterr().err == "stopped by the command\n"


def test_a_stopped_simulation_ends_between_two_events_at_the_next_sample(scenario: Path) -> None:
    """``Simulation.request_stop`` (what the first Ctrl-C calls): the run ends before the next
    clock event (usage samples every 300 s here), as if its horizon were its last event."""
    from budcore_simulator.build import build_simulation
    from budcore_simulator.scenario import load_scenario

    samples: list[float] = []
    loaded = load_scenario(scenario)

    def progress(sim_s: float, finished: int) -> None:
        samples.append(sim_s)
        if sim_s >= 3600:
            simulation.request_stop()

    simulation = build_simulation(loaded, progress=progress)
    result = simulation.run()
    assert simulation.stopped
    assert samples[:3] == [0.0, 300.0, 600.0] and samples[-1] == 3600.0  # one report per sample
    assert 3600 <= result.horizon_s < 3600 + 300
    assert result.stats.end_s == result.horizon_s
    ended = [r.end_s for r in result.records if r.end_s is not None]
    assert ended and max(ended) <= result.horizon_s
    assert all(r.arrival.submit_s <= result.horizon_s for r in result.records)
    assert result.series.times[-1] == 3600.0  # the last sample taken
