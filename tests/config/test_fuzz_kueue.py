"""Fuzzing Kueue YAML (issue #18): mutated ResourceFlavors, ClusterQueues, Cohorts, LocalQueues
and WorkloadPriorityClasses through ``budcore validate`` and the library that loads them.

The bases are the shipped examples and the built-in scenario's queues (every kind budcore reads);
each example puts hostile values at random places of their documents, or junk bytes into the
text. Whatever comes out, ``budcore validate`` ends within its bound with a one-line-per-problem
answer and no traceback, and a configuration that loads also builds a scheduler that runs a
cycle (a loaded configuration must never crash the scheduler later).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from support.admission import GPU, T0
from support.fuzz import FUZZ, clean_or_error, hostile_values, leaf_paths, replaced, run_cli

from budcore.config.kueue import load_queue_config
from budcore.domain.errors import ValidationErrors
from budcore.domain.job import Job, ResourceRequest
from budcore.scheduling import Scheduler

ROOT = Path(__file__).resolve().parents[2]
BASES = {
    path.name: path.read_text()
    for path in (
        *sorted((ROOT / "src" / "budcore" / "config" / "examples").glob("*.yaml")),
        ROOT / "simulator" / "scenarios" / "default" / "queues.yaml",
    )
}
EXTRA = """\
apiVersion: kueue.x-k8s.io/v1beta2
kind: Cohort
metadata: {name: child}
spec:
  parentName: root
  resourceGroups:
    - coveredResources: [nvidia.com/gpu]
      flavors: [{name: extra, resources: [{name: nvidia.com/gpu, nominalQuota: 2, lendingLimit: 1}]}]
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: Cohort
metadata: {name: root}
spec:
  resourceGroups:
    - coveredResources: [nvidia.com/gpu]
      flavors: [{name: extra, resources: [{name: nvidia.com/gpu, nominalQuota: 4}]}]
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: extra}
spec:
  nodeLabels: {nvidia.com/gpu.product: NVIDIA-L4}
  nodeTaints: [{key: spot, value: "true", effect: NoSchedule}]
  tolerations: [{key: spot, operator: Equal, value: "true", effect: NoSchedule}]
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: extra}
spec:
  cohortName: child
  namespaceSelector: {matchLabels: {team: a}}
  queueingStrategy: StrictFIFO
  fairSharing: {weight: "2"}
  preemption: {withinClusterQueue: LowerPriority, reclaimWithinCohort: Any,
               borrowWithinCohort: {policy: LowerPriority, maxPriorityThreshold: 100}}
  flavorFungibility: {whenCanBorrow: TryNextFlavor, whenCanPreempt: MayStopSearch}
  resourceGroups:
    - coveredResources: [nvidia.com/gpu, cpu, pods]
      flavors:
        - name: extra
          resources:
            - {name: nvidia.com/gpu, nominalQuota: 8, borrowingLimit: 4, lendingLimit: 4}
            - {name: cpu, nominalQuota: 64}
            - {name: pods, nominalQuota: 10}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: extra, namespace: team-a}
spec: {clusterQueue: extra, stopPolicy: None}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: WorkloadPriorityClass
metadata: {name: urgent}
value: 500
"""
BASES["extra.yaml"] = EXTRA


def exercise(path: Path) -> None:
    """Load the configuration; if it loads, a scheduler runs a cycle with a job on every queue."""
    config = load_queue_config(path)
    scheduler = Scheduler(config)
    for i, (namespace, name) in enumerate(sorted(config.local_queues)):
        scheduler.submit(
            Job(
                id=f"j{i}",
                name=f"j{i}",
                tenant=namespace,
                local_queue=name,
                request=ResourceRequest.single(gpus=1, gpu_resource=GPU),
            )
        )
    scheduler.cycle(T0)


def test_the_bases_load_and_schedule(tmp_path: Path) -> None:
    for name, text in BASES.items():
        path = tmp_path / name
        path.write_text(text)
        exercise(path)


@FUZZ
@given(
    base=st.sampled_from(sorted(BASES)),
    edits=st.lists(st.tuples(st.integers(min_value=0), hostile_values), min_size=1, max_size=3),
)
def test_fuzz_kueue_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], base: str, edits: list[tuple[int, Any]]
) -> None:
    documents: Any = list(yaml.safe_load_all(BASES[base]))
    for index, value in edits:
        paths = leaf_paths(documents)
        documents = replaced(documents, paths[index % len(paths)], value)
    path = tmp_path / "queues.yaml"
    try:
        path.write_text(yaml.safe_dump_all(documents, allow_unicode=True), encoding="utf-8")
    except yaml.YAMLError:
        return  # not expressible as YAML: nothing to load
    run_cli(["validate", str(path)], capsys)
    clean_or_error(lambda: exercise(path))


@FUZZ
@given(
    base=st.sampled_from(sorted(BASES)),
    position=st.integers(min_value=0),
    junk=st.binary(min_size=1, max_size=8)
    | st.sampled_from(
        [b"\xef\xbb\xbf", b"\x00", b"{", b"&a", b"*a", b"---\n", b"!!python/object:os.system", b"\t"]
    ),
)
def test_fuzz_kueue_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], base: str, position: int, junk: bytes
) -> None:
    raw = BASES[base].encode()
    at = position % (len(raw) + 1)
    path = tmp_path / "queues.yaml"
    path.write_bytes(raw[:at] + junk + raw[at:])
    run_cli(["validate", str(path)], capsys)
    clean_or_error(lambda: exercise(path))


# What the fuzzing found -------------------------------------------------------------------------
def test_a_control_character_is_a_one_line_error_at_its_line(tmp_path: Path) -> None:
    """PyYAML's reader error spans two lines (its position on the second): a NUL byte in a Kueue
    file gave a two-line problem."""
    path = tmp_path / "queues.yaml"
    path.write_text(BASES["extra.yaml"].replace("metadata: {name: extra}", "metadata: {name: ex\x00tra}", 1))
    with pytest.raises(ValidationErrors) as caught:
        load_queue_config(path)
    (problem,) = caught.value.errors
    assert "\n" not in str(problem)
    assert (
        problem.line
        == BASES["extra.yaml"][: BASES["extra.yaml"].index("metadata: {name: extra}")].count("\n") + 1
    )
    assert "unacceptable character #x0000" in problem.message and "control characters" in problem.message


def test_a_kind_that_is_not_a_word_is_quoted_in_the_error(tmp_path: Path) -> None:
    """A ``kind`` of ``"\\n"`` was printed as it is, splitting the problem over two lines."""
    path = tmp_path / "queues.yaml"
    path.write_text(EXTRA.replace("kind: LocalQueue", 'kind: "\\n"', 1))
    with pytest.raises(ValidationErrors) as caught:
        load_queue_config(path)
    problems = [str(p) for p in caught.value.errors]
    assert all("\n" not in p for p in problems)
    assert any("'\\n' 'extra' (document 5): unknown kind '\\n'" in p for p in problems), problems
