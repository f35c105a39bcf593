"""``budcore simulate`` end to end: outputs, determinism to the byte, bad scenarios."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from budcore_simulator.cli import default_scenario_path
from budcore_simulator.outputs import MANIFEST
from support.scenarios import SMALL

from budcore.cli import main


def write(tmp_path: Path, text: str = SMALL) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def test_simulate_writes_every_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["simulate", str(write(tmp_path)), "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        MANIFEST,
        "cdf.png",
        "cq_usage.png",
        "jobs.csv",
        "report.json",
        "run.json",
        "timeline.png",
        "usage.csv",
        "utilisation.png",
    ]
    report = json.loads((out / "report.json").read_text())
    assert report["scenario"] == "small" and report["jobs"] > 50
    assert set(report["statuses"]) <= {"completed", "running", "queued", "admitted"}
    assert 0 < report["utilisation"]["fleet"] <= 1
    header = (out / "jobs.csv").read_text().splitlines()[0]
    assert header.startswith("job_id,job_class,tenant,local_queue,cluster_queue,priority")
    assert "utilisation: fleet" in capsys.readouterr().out


def test_same_seed_gives_byte_identical_outputs(tmp_path: Path) -> None:
    scenario = write(tmp_path)
    for run in ("a", "b"):
        assert (
            main(["simulate", str(scenario), "--out", str(tmp_path / run), "--no-plots", "--format", "json"])
            == 0
        )
    for name in ("report.json", "jobs.csv", "usage.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert main(["simulate", str(scenario), "--out", str(tmp_path / "c"), "--no-plots", "--seed", "6"]) == 0
    assert (tmp_path / "a" / "jobs.csv").read_bytes() != (tmp_path / "c" / "jobs.csv").read_bytes()


def test_json_format_prints_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            ["simulate", str(write(tmp_path)), "--out", str(tmp_path / "o"), "--no-plots", "--format", "json"]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["seed"] == 5


def test_bad_scenario_names_file_line_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(
        tmp_path, SMALL.replace("gpus_per_node: 8", "gpus_per_node: -8").replace("rate: 20", "rate: 0")
    )
    assert main(["simulate", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:6: fleet.pools[0].gpus_per_node" in err
    assert "workload.generators.classes[0].arrivals" in err
    assert "Traceback" not in err


def test_flavor_that_selects_no_node_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(
        tmp_path, SMALL.replace("spec: {nodeLabels: {budcore.io/pool: a100}}", "spec: {nodeLabels: {x: y}}")
    )
    assert main(["simulate", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "ResourceFlavor 'a100' selects no node of the fleet" in capsys.readouterr().err


def test_schema_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "budcore simulation scenario"
    assert {"queues", "workload"} <= set(schema["required"])
    assert "fleet" in schema["properties"]  # optional: without it the run is quota-only


def test_default_scenario_exists_and_validates() -> None:
    assert default_scenario_path().is_file()
    assert main(["validate", str(default_scenario_path())]) == 0


def test_policy_preemption_and_aging_from_the_scenario(tmp_path: Path) -> None:
    text = SMALL.replace(
        "workload:",
        "policy:\n  preemption_mode: cost\n  preemption_grace: 1m\n"
        "  aging: {step: 2, interval: 10m}\nworkload:",
    )
    scenario = write(tmp_path, text)
    for run in ("a", "b"):
        assert (
            main(["simulate", str(scenario), "--out", str(tmp_path / run), "--no-plots", "--format", "json"])
            == 0
        )
    assert (tmp_path / "a" / "jobs.csv").read_bytes() == (tmp_path / "b" / "jobs.csv").read_bytes()
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert {"preemptions", "preemption_decisions"} <= set(report["engine"])
    bad = write(tmp_path, text.replace("preemption_mode: cost", "preemption_mode: cheapest"))
    assert main(["simulate", str(bad), "--out", str(tmp_path / "c")]) == 2
