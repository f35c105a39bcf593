"""Ctrl-C and SIGTERM on the real ``budcore`` process: one line, exit 130/143, no traceback.

Each test starts the console script and sends the signal at a known stage, found by waiting for
something the process writes rather than sleeping: at start-up (``-X importtime`` reports the
command line's module loaded), mid-simulation (the first ``--progress`` line), mid-plan (a run in
``points.jsonl``). The scenario is the built-in default over 30 days, far longer than any test
waits, so the signal always lands while the work runs.

A signal in the interpreter's own start-up, before any budcore code runs (the first ~20 ms here:
Python's init and ``site``), is Python's to handle: it prints its own traceback there, and no
Python code can catch it. These tests start from budcore's first module.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest
from budcore_simulator.cli import default_scenario_path

BUDCORE = Path(sys.executable).parent / "budcore"
TIMEOUT_S = 120


@pytest.fixture
def long_scenario(tmp_path: Path) -> Path:
    """The default scenario over 30 simulated days (minutes of work: always interrupted)."""
    source = default_scenario_path().parent
    target = tmp_path / "scenario"
    shutil.copytree(source, target)
    path = target / "scenario.yaml"
    text = path.read_text()
    assert "\nhorizon: 1d\n" in text
    path.write_text(text.replace("\nhorizon: 1d\n", "\nhorizon: 30d\n"))
    return path


def _spawn(args: list[str], *, python_flags: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    """The console script in a session of its own, so a signal can go to its whole process group
    (its workers too), as a terminal's Ctrl-C does."""
    command = [sys.executable, *python_flags, str(BUDCORE), *args]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def _wait_for_line(stream: IO[str], predicate: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            pytest.fail(f"the process ended before printing {predicate!r}")
        if predicate in line:
            return
    pytest.fail(f"no {predicate!r} within {TIMEOUT_S}s")


def _wait_for_file(path: Path, lines: int) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().count("\n") >= lines:
            return
        time.sleep(0.05)
    pytest.fail(f"{path} never had {lines} line(s)")


def _finish(
    process: subprocess.Popen[str], sig: signal.Signals, *, group: bool = False
) -> tuple[int, list[str]]:
    """Send ``sig`` (to the process group with ``group``); the exit status and the stderr lines
    (``-X importtime``'s left out), which must hold no traceback, the workers' included."""
    if group:
        os.killpg(process.pid, sig)
    else:
        process.send_signal(sig)
    _, err = process.communicate(timeout=TIMEOUT_S)
    lines = [line for line in err.splitlines() if not line.startswith("import time:")]
    assert "Traceback" not in err, err
    return process.returncode, lines


STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize(
    "stage",
    [" budcore.cli.app\n", " budcore_simulator.cli\n"],
    ids=["command-line-loaded", "simulator-loaded"],
)
def test_signal_at_start_up_is_one_line(
    sig: signal.Signals, stage: str, long_scenario: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    process = _spawn(
        ["simulate", str(long_scenario), "--out", str(out), "--no-plots"], python_flags=("-X", "importtime")
    )
    assert process.stderr is not None
    # -X importtime reports a module once it is imported: then the next ones load (the command
    # line's typer and plugins; the simulator's scenario models and the scenario file).
    _wait_for_line(process.stderr, stage)
    status, lines = _finish(process, sig)
    assert status == STATUS[sig]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"interrupted ({sig.name})")
    if (out / "report.json").exists():  # the signal may land after the run began its outputs
        assert json.loads((out / "report.json").read_text())["complete"] is False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_simulation_keeps_the_run_so_far(
    sig: signal.Signals, long_scenario: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    (out).mkdir()
    (out / "cdf.png").write_text("a previous run's plot")
    process = _spawn(["simulate", str(long_scenario), "--out", str(out), "--progress"])
    assert process.stderr is not None
    _wait_for_line(process.stderr, "simulating default:")  # the simulation runs
    status, lines = _finish(process, sig)
    assert status == STATUS[sig]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"interrupted ({sig.name}) at ") and "of 30.0d simulated" in lines[0]
    report = json.loads((out / "report.json").read_text())
    assert report["complete"] is False and report["interrupted"] == sig.name
    assert report["stopped_at_s"] == report["horizon_s"] < 30 * 86400
    jobs = (out / "jobs.csv").read_text().splitlines()
    assert len(jobs) - 1 == report["jobs"]  # the records agree with the report they came with
    assert not (out / "cdf.png").exists()  # the previous run's plot never looks like this run's


def test_signal_mid_plan_keeps_its_points_and_resume_finishes(long_scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan"
    argv = ["plan", str(long_scenario), "--vary", "pool.h100.nodes=1..8", "--slo", "p95_wait<30m"]
    argv += ["--out", str(out), "--workers", "2", "--quiet"]
    short = long_scenario.read_text().replace("\nhorizon: 30d\n", "\nhorizon: 6h\n")
    long_scenario.write_text(short)  # six hours a point: a few runs finish, then the signal
    process = _spawn(argv)
    _wait_for_file(out / "points.jsonl", 2)  # the question and a finished run
    status, lines = _finish(process, signal.SIGINT, group=True)  # the workers get it too
    assert status == 130
    assert len(lines) == 1, lines
    kept = json.loads((out / "plan.json").read_text())
    assert kept["complete"] is False and kept["interrupted"] == "SIGINT"
    assert lines[0].startswith(f"interrupted (SIGINT): {kept['points_done']} of 8 points done")
    assert lines[0].endswith("resume with --resume; " + str(out / "plan.json") + ' says "complete": false')
    runs = (out / "points.jsonl").read_text().count("\n") - 1
    assert runs >= 1
    resumed = subprocess.run(
        [sys.executable, str(BUDCORE), *argv, "--resume"], capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"({runs} run(s) kept from the interrupted plan)" in resumed.stdout
    plan = json.loads((out / "plan.json").read_text())
    assert plan["complete"] is True and len(plan["frontier"]) == 8


def test_a_terminal_gets_a_progress_bar_of_points(tmp_path: Path) -> None:
    """stderr a terminal (a pseudo-terminal here): rich's bar, with points done out of the total."""
    import pty

    from support.scenarios import SMALL

    scenario = tmp_path / "small.yaml"
    scenario.write_text(SMALL)
    argv = ["plan", str(scenario), "--vary", "pool.a100.nodes=1..3", "--slo", "p95_wait<30m"]
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, str(BUDCORE), *argv, "--workers", "1", "--out", str(tmp_path / "p")],
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
    )
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        shown += chunk
    process.communicate(timeout=TIMEOUT_S)
    os.close(master)
    assert process.returncode == 0
    text = shown.decode(errors="replace")
    assert "plan: points" in text and "3/3" in text  # the bar's last frame, before it is cleared
