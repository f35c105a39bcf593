"""``budcore validate`` reports schema and cross-reference problems in one run (issue #20, 12)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from budcore.cli import main

QUANTITY_HELP = (
    "expected a number with an optional suffix (m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or an "
    "exponent), e.g. '500m', '64Gi', '8'"
)

ISSUE_EXAMPLE = """\
kind: ClusterQueue
apiVersion: kueue.x-k8s.io/v1beta1
metadata: {name: a}
spec:
  cohort: 5
  resourceGroups:
  - coveredResources: [cpu]
    flavors:
    - name: nope
      resources: [{name: cpu, nominalQuota: abc}]
---
kind: LocalQueue
apiVersion: kueue.x-k8s.io/v1beta1
metadata: {name: q, namespace: d}
spec: {clusterQueue: missing}
"""


def reported(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The problem lines ``budcore validate`` printed, in its order."""
    err = capsys.readouterr().err
    return [line.strip() for line in err.splitlines() if line.startswith("  ")]


def test_the_issue_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(ISSUE_EXAMPLE)
    assert main(["validate", str(bad)]) == 2
    assert reported(capsys) == [
        f"{bad}:5: spec.cohort: ClusterQueue 'a' (document 1): 5 is not of type 'string'",
        f"{bad}:9: spec.resourceGroups[0].flavors[0].name: document 1: "
        "ClusterQueue 'a' references ResourceFlavor 'nope', which does not exist",
        f"{bad}:10: spec.resourceGroups[0].flavors[0].resources[0].nominalQuota: "
        f"ClusterQueue 'a' (document 1): invalid quantity 'abc': {QUANTITY_HELP}",
        f"{bad}:15: spec.clusterQueue: document 2: "
        "LocalQueue d/q references ClusterQueue 'missing', which does not exist",
    ]


def test_a_kueue_object_with_a_broken_api_version_still_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Without a kueue.x-k8s.io apiVersion these used to be "not a document budcore knows", and the
    # LocalQueue's and ClusterQueue's references to them were then reported as missing too.
    path = tmp_path / "queues.yaml"
    path.write_text(
        """\
apiVersion: v1beta2
kind: ClusterQueue
metadata: {name: cq}
---
kind: ResourceFlavor
metadata: {name: gpu}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: other}
spec:
  resourceGroups:
  - coveredResources: [cpu]
    flavors: [{name: gpu, resources: [{name: cpu, nominalQuota: 1}]}]
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: lq}
spec: {clusterQueue: cq}
"""
    )
    assert main(["validate", str(path)]) == 2
    assert reported(capsys) == [
        f"{path}:1: apiVersion: ClusterQueue 'cq' (document 1): unsupported apiVersion 'v1beta2' for "
        "kind ClusterQueue: expected kueue.x-k8s.io/v1beta1 or kueue.x-k8s.io/v1beta2",
        f"{path}:5: apiVersion: ResourceFlavor 'gpu' (document 2): missing apiVersion",
    ]


def test_an_unreadable_input_suppresses_only_the_reference_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Merged into one configuration, the missing file may be where "nope" and "missing" are
    # defined: no guesses about them.
    bad = tmp_path / "bad.yaml"
    bad.write_text(ISSUE_EXAMPLE)
    absent = tmp_path / "flavors.yaml"
    assert main(["validate", "--merge", str(bad), str(absent)]) == 2
    assert reported(capsys) == [
        f"{bad}:5: spec.cohort: ClusterQueue 'a' (document 1): 5 is not of type 'string'",
        f"{bad}:10: spec.resourceGroups[0].flavors[0].resources[0].nominalQuota: "
        f"ClusterQueue 'a' (document 1): invalid quantity 'abc': {QUANTITY_HELP}",
        f"{absent}: no such file or directory: {absent}",
    ]


def test_a_job_with_a_duplicate_key_is_still_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(
        """\
apiVersion: budcore.io/v1alpha1
kind: Job
metadata: {name: train}
spec:
  job_type: training
  job_type: trainig
"""
    )
    assert main(["validate", str(path)]) == 2
    assert reported(capsys) == [
        f"{path}:3: metadata.namespace: Job (document 1): metadata.namespace is required",
        f"{path}:6: spec.job_type: document 1: duplicate key 'job_type' (first at line 5)",
        f"{path}:6: spec.job_type: Job 'train' (document 1): "
        "Input should be 'service', 'batch' or 'training'",
    ]


def test_a_scenarios_queues_file_problem_is_reported_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The scenario validator loads queues.yaml and so does the Kueue check of the directory.
    from budcore_simulator.cli import default_scenario_path

    shutil.copytree(default_scenario_path().parent, tmp_path, dirs_exist_ok=True)
    queues = tmp_path / "queues.yaml"
    text = queues.read_text()
    line = text[: text.index("        nominalQuota: 16\n")].count("\n") + 1
    queues.write_text(text.replace("        nominalQuota: 16\n", "        nominalQuota: lots\n", 1))
    assert main(["validate", str(tmp_path)]) == 2
    (problem,) = reported(capsys)
    assert problem.startswith(
        f"{queues}:{line}: spec.resourceGroups[0].flavors[0].resources[0].nominalQuota: "
    )
    assert "invalid quantity 'lots'" in problem
