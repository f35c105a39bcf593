"""``budcore validate``: every problem, with file, line and field path; exit 0 only when clean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from budcore.cli import main
from budcore.config.jobs import load_jobs
from budcore.domain.errors import ValidationErrors

GOOD_JOB = """\
apiVersion: budcore.io/v1alpha1
kind: Job
metadata:
  name: train-llama
  namespace: research
  labels: {team: nlp}
spec:
  job_type: training
  local_queue: training
  priority: high
  estimated_duration: 3600
  request:
    accelerator_type: nvidia-h100-80gb
    pod_sets:
      - {name: workers, count: 4, resources: {nvidia.com/gpu: 8, cpu: 64, memory: 512Gi}}
"""

BAD_JOB = """\
apiVersion: budcore.io/v1alpha1
kind: Job
metadata:
  name: train
  namespace: research
spec:
  job_type: trainig
  request:
    pod_sets:
      - name: w
        count: -1
        resources: {nvidia.com/gpu: 8, memory: 12XB}
"""


def test_job_document_loads_into_a_job(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(GOOD_JOB)
    (job,) = load_jobs(path)
    assert (job.tenant, job.name, job.id) == ("research", "train-llama", "train-llama")
    assert job.request.accelerator_count == 32
    assert job.labels == {"team": "nlp"}


def test_bad_job_reports_every_problem_with_line_and_path(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(BAD_JOB)
    with pytest.raises(ValidationErrors) as info:
        load_jobs(path)
    found = {(e.line, e.path) for e in info.value.errors}
    assert found == {
        (7, "spec.job_type"),
        (11, "spec.request.pod_sets[0].count"),
        (12, "spec.request.pod_sets[0].resources.memory"),
    }
    assert all(e.source == str(path) for e in info.value.errors)


def test_cli_validate_mixed_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "job.yaml").write_text(GOOD_JOB)
    (tmp_path / "queues.yaml").write_text(
        """\
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: h100}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: cq}
spec:
  resourceGroups:
    - coveredResources: [nvidia.com/gpu]
      flavors: [{name: h100, resources: [{name: nvidia.com/gpu, nominalQuota: 8}]}]
"""
    )
    assert main(["validate", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f"ok: {tmp_path / 'job.yaml'}: Job research/train-llama",
        f"ok: {tmp_path / 'queues.yaml'}: Kueue configuration: 1 ResourceFlavor(s), 0 Cohort(s), "
        "1 ClusterQueue(s), 0 LocalQueue(s), 0 WorkloadPriorityClass(es)",
    ]


def test_cli_validate_reports_errors_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_JOB + "---\nkind: Mystery\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:7: spec.job_type" in err
    assert "not a document budcore knows" in err
    assert "Traceback" not in err


def test_cli_validate_default_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    from budcore_simulator.cli import default_scenario_path

    directory = default_scenario_path().parent
    assert main(["validate", str(directory)]) == 0
    # One line: the directory is one scenario (its queues.yaml is checked as the scenario's queues).
    assert capsys.readouterr().out == f"ok: {directory}: scenario 'default' (14 nodes, 3 ClusterQueues)\n"


def test_cli_validate_malformed_yaml_and_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1, 2\nb: 3\n")
    assert main(["validate", str(broken), str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert str(broken) in err
    assert "no such file or directory" in err


# One result per configuration (issue #17) ---------------------------------------------------------
FLAVOR = """\
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: h100}
"""

QUEUE_OF_FLAVOR = """\
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: cq}
spec:
  resourceGroups:
    - coveredResources: [nvidia.com/gpu]
      flavors: [{name: h100, resources: [{name: nvidia.com/gpu, nominalQuota: 8}]}]
"""


def scenarios_root() -> Path:
    from budcore_simulator.cli import default_scenario_path

    return default_scenario_path().parent.parent


def test_each_file_is_checked_on_its_own_unless_merged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flavors, queues, job = tmp_path / "flavors.yaml", tmp_path / "queues.yaml", tmp_path / "job.yaml"
    flavors.write_text(FLAVOR)
    queues.write_text(QUEUE_OF_FLAVOR)
    job.write_text(GOOD_JOB)

    assert main(["validate", str(flavors), str(queues), str(job)]) == 2
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"ok: {flavors}: Kueue configuration: 1 ResourceFlavor(s), 0 Cohort(s), 0 ClusterQueue(s), "
        "0 LocalQueue(s), 0 WorkloadPriorityClass(es)",
        f"ok: {job}: Job research/train-llama",
    ]
    assert captured.err.splitlines() == [
        f"invalid: {queues}: 1 problem(s)",
        f"  {queues}:7: spec.resourceGroups[0].flavors[0].name: document 1: ClusterQueue 'cq' references "
        "ResourceFlavor 'h100', which does not exist",
        "error: 1 of 3 configuration(s) invalid (1 problem(s))",
    ]

    # The same files as one configuration: the reference resolves.
    assert main(["validate", "--merge", str(tmp_path)]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"ok: 3 files merged ({flavors}, {job}, {queues}): ")
    assert (
        "Job research/train-llama; Kueue configuration: 1 ResourceFlavor(s), 0 Cohort(s), 1 ClusterQueue(s)"
        in line
    )


def test_a_scenario_directory_is_one_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    # nodes-dump holds a kubectl dump next to its scenario: it used to be "not a document budcore knows".
    directory = scenarios_root() / "nodes-dump"
    assert main(["validate", str(directory)]) == 0
    assert capsys.readouterr().out == f"ok: {directory}: scenario 'nodes-dump' (6 nodes, 2 ClusterQueues)\n"


def test_a_directory_of_scenario_directories(capsys: pytest.CaptureFixture[str]) -> None:
    root = scenarios_root()
    assert main(["validate", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = sorted(p.name for p in root.iterdir() if (p / "scenario.yaml").is_file())
    assert len(names) >= 5
    assert [line.split(": ")[1] for line in lines] == [str(root / name) for name in names]
    assert all(line.startswith("ok: ") and ": scenario " in line for line in lines)


def test_a_broken_scenario_directory_names_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    good = scenarios_root() / "deadlines"
    broken = tmp_path / "broken"
    shutil.copytree(scenarios_root() / "default", broken)
    text = (broken / "scenario.yaml").read_text()
    line = text[: text.index("horizon: 1d")].count("\n") + 1
    (broken / "scenario.yaml").write_text(text.replace("horizon: 1d", "horizon: soon"))
    assert main(["validate", str(broken), str(good)]) == 2
    captured = capsys.readouterr()
    assert captured.out == f"ok: {good}: scenario 'deadlines' (4 nodes, 1 ClusterQueues)\n"
    err = captured.err.splitlines()
    assert err[0] == f"invalid: {broken}: 1 problem(s)"
    assert err[1].startswith(f"  {broken / 'scenario.yaml'}:{line}: horizon: invalid duration 'soon'")
    assert err[2] == "error: 1 of 2 configuration(s) invalid (1 problem(s))"


def test_a_scenario_directory_needs_the_scenario_validator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from budcore.cli import validate as command
    from budcore.plugins import PluginRegistry

    monkeypatch.setattr(command, "default_registry", lambda: PluginRegistry(load_entry_points=False))
    directory = scenarios_root() / "deadlines"
    assert main(["validate", str(directory)]) == 2
    err = capsys.readouterr().err
    assert f"{directory / 'scenario.yaml'}: a scenario directory, but no 'scenario' validator" in err


def test_validate_json_has_one_entry_per_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_JOB)
    directory = scenarios_root() / "deadlines"
    assert main(["validate", "--format", "json", str(bad), str(directory)]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False
    first, second = document["files"]
    assert (first["file"], first["kind"], first["ok"]) == (str(bad), "file", False)
    assert {(e["line"], e["path"]) for e in first["errors"]} >= {(7, "spec.job_type")}
    assert (second["file"], second["kind"], second["ok"]) == (str(directory), "scenario", True)
    assert second["paths"] == [str(directory / "scenario.yaml")]
    assert second["checked"] == ["scenario 'deadlines' (4 nodes, 1 ClusterQueues)"]
