"""``budcore validate``: every problem, with file, line and field path; exit 0 only when clean."""

from __future__ import annotations

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
    assert "ok Job research/train-llama" in out
    assert "1 ClusterQueue(s)" in out


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

    assert main(["validate", str(default_scenario_path().parent)]) == 0
    assert "ok scenario 'default'" in capsys.readouterr().out


def test_cli_validate_malformed_yaml_and_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1, 2\nb: 3\n")
    assert main(["validate", str(broken), str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert str(broken) in err
    assert "no such file or directory" in err
