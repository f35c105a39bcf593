"""``replicate:`` blocks: N cohorts × M ClusterQueues and their workload classes from one template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from budcore_simulator.build import build_simulation
from budcore_simulator.replicate import expand_document
from budcore_simulator.report import build_report
from budcore_simulator.scenario import load_scenario

from budcore.domain.errors import ValidationError

SCENARIO = """\
name: replicated
seed: 3
queues:
  documents:
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: rf}}
    - replicate: {cohort: 2, cq: 3}
      templates:
        - apiVersion: kueue.x-k8s.io/v1beta2
          kind: ClusterQueue
          metadata: {name: "cq-{{ cq }}-cohort-{{ cohort }}"}
          spec:
            cohortName: "cohort-{{ cohort }}"
            namespaceSelector: {}
            resourceGroups:
              - coveredResources: [cpu]
                flavors:
                  - name: rf
                    resources: [{name: cpu, nominalQuota: "{{ 10 * (cq + 1) }}", borrowingLimit: 5}]
        - apiVersion: kueue.x-k8s.io/v1beta2
          kind: LocalQueue
          metadata: {name: lq, namespace: "ns-{{ cohort }}-{{ cq }}"}
          spec: {clusterQueue: "cq-{{ cq }}-cohort-{{ cohort }}"}
workload:
  generators:
    classes:
      - replicate: {cohort: 2, cq: 3}
        templates:
          - name: "small-{{ cohort }}-{{ cq }}"
            label: small
            tenant: "ns-{{ cohort }}-{{ cq }}"
            local_queue: lq
            gpus: 0
            priority: 50
            count: "{{ cq + 1 }}"
            arrivals: {kind: fixed, interval: 1s}
            runtime: {kind: fixed, value: 2s}
          - name: "large-{{ cohort }}-{{ cq }}"
            label: large
            tenant: "ns-{{ cohort }}-{{ cq }}"
            local_queue: lq
            gpus: 0
            cpu_without_gpu: 5
            priority: 200
            count: 1
            arrivals: {kind: fixed, interval: 1s}
            runtime: {kind: fixed, value: 3s}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_one_template_gives_every_cohort_and_cluster_queue(tmp_path: Path) -> None:
    loaded = load_scenario(write(tmp_path, SCENARIO))
    queues = loaded.queues
    assert sorted(queues.cluster_queues) == sorted(f"cq-{q}-cohort-{c}" for c in range(2) for q in range(3))
    cq = queues.cluster_queues["cq-2-cohort-1"]
    assert cq.cohort == "cohort-1"
    assert cq.resource_groups[0].flavors[0].resources[0].nominal_quota == 30_000  # "{{ 10 * (cq + 1) }}"
    assert queues.local_queues[("ns-1-2", "lq")].cluster_queue == "cq-2-cohort-1"
    classes = loaded.scenario.workload.generators.classes
    # The first variable varies slowest; a block's templates come in order for each combination.
    assert [c.name for c in classes[:4]] == ["small-0-0", "large-0-0", "small-0-1", "large-0-1"]
    assert len(classes) == 12 and classes[4].count == 3  # small-0-2: "{{ cq + 1 }}" is a number


def test_the_report_groups_the_copies_by_their_label(tmp_path: Path) -> None:
    loaded = load_scenario(write(tmp_path, SCENARIO))
    result = build_simulation(loaded).run()
    report = build_report(result, scenario_name="replicated", seed=3)
    assert sorted(report["by_label"]) == ["large", "small"]
    assert report["by_label"]["small"]["count"] == 2 * (1 + 2 + 3)
    assert report["by_label"]["large"]["count"] == 6
    assert len(report["by_class"]) == 12  # the streams stay apart too
    assert {r.arrival.group for r in result.records} == {"small", "large"}


def test_an_error_in_a_copy_points_at_its_template(tmp_path: Path) -> None:
    text = SCENARIO.replace("cpu_without_gpu: 5", "cpu_without_gpu: lots")
    with pytest.raises(ValidationError) as info:
        load_scenario(write(tmp_path, text))
    assert info.value.path == "workload.generators.classes[1].cpu_without_gpu"
    assert info.value.line == line_of(text, "cpu_without_gpu: lots")


def test_an_undefined_variable_is_an_error_at_its_line(tmp_path: Path) -> None:
    text = SCENARIO.replace('name: "small-{{ cohort }}-{{ cq }}"', 'name: "small-{{ cohrt }}"')
    with pytest.raises(ValidationError) as info:
        load_scenario(write(tmp_path, text))
    assert "'cohrt' is undefined" in info.value.message
    assert info.value.line == line_of(text, "{{ cohrt }}")


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"replicate": {"n": 2}}, "give exactly one of 'template' or 'templates'"),
        ({"replicate": {"n": -1}, "template": 1}, "must not be negative"),
        ({"replicate": {"n": "x"}, "template": 1}, "a count or a list of values"),
        ({"replicate": {}, "template": 1}, "give the variables"),
        ({"replicate": {"n": 2}, "template": 1, "extra": 2}, "not ['extra']"),
    ],
)
def test_malformed_blocks_say_what_is_wrong(block: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=r".*") as info:
        expand_document({"items": [block]})
    assert message in info.value.message and info.value.path.startswith("items[0]")


def test_blocks_nest_and_lists_of_values_work() -> None:
    data = {
        "items": [
            "first",
            {
                "replicate": {"flavor": ["a", "b"]},
                "template": {
                    "name": "{{ flavor }}",
                    "sizes": [{"replicate": {"i": 2}, "template": "{{ flavor }}{{ i }}"}],
                },
            },
            "last",
        ]
    }
    expanded, _ = expand_document(data)
    assert expanded == {
        "items": ["first", {"name": "a", "sizes": ["a0", "a1"]}, {"name": "b", "sizes": ["b0", "b1"]}, "last"]
    }
    assert expand_document({"a": ["{{ not rendered }}"]})[0] == {"a": ["{{ not rendered }}"]}


def test_an_error_in_a_replicated_kueue_document_names_the_template_line(tmp_path: Path) -> None:
    """Inline Kueue documents were dumped to YAML and parsed again, so their errors named lines
    of that dump (25, 55, 85, ... for a template at line 41); now each copy names its template."""
    text = SCENARIO.replace("borrowingLimit: 5", "borrowingLimit: -5")
    with pytest.raises(ValidationError) as info:
        load_scenario(write(tmp_path, text))
    errors = getattr(info.value, "errors", [info.value])
    assert len(errors) == 6  # one per copy
    assert {error.line for error in errors} == {line_of(text, "borrowingLimit: -5")}
    assert all(error.path.endswith("resources[0].borrowingLimit") for error in errors)
    assert "cq-2-cohort-1" in str(info.value)


def test_an_error_in_a_plain_inline_kueue_document_names_its_line(tmp_path: Path) -> None:
    text = SCENARIO.replace(
        "    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: rf}}\n",
        "    - apiVersion: kueue.x-k8s.io/v1beta2\n"
        "      kind: ResourceFlavor\n"
        "      metadata: {name: rf}\n"
        "      spec: {nodeLabels: {bad key!: x}}\n",
    )
    with pytest.raises(ValidationError) as info:
        load_scenario(write(tmp_path, text))
    assert info.value.line == line_of(text, "bad key!")
    assert "queues.documents" in str(info.value)


def test_a_large_block_loads_in_time_linear_in_its_copies(tmp_path: Path) -> None:
    """Each copy's strings are the template's: compiled once, not once per copy (300 cohorts of 6
    ClusterQueues took 7 s to load, 0.75 s now). Counted, not timed: Jinja compiles per string."""
    from budcore_simulator import replicate

    replicate._compiled.cache_clear()
    text = SCENARIO.replace("replicate: {cohort: 2, cq: 3}", "replicate: {cohort: 40, cq: 3}")
    loaded = load_scenario(write(tmp_path, text))
    assert len(loaded.queues.cluster_queues) == 120
    info = replicate._compiled.cache_info()
    assert info.misses < 20 and info.hits > 1_000


@pytest.mark.parametrize(
    "block",
    [
        {"replicate": {"cohort": 10**9}, "template": "x"},  # one huge count
        {"replicate": {"a": 200, "b": 150}, "templates": ["x"]},  # a product past the bound
        {"replicate": {"a": 7_000}, "templates": ["x", "y", "z"]},  # copies times templates
    ],
)
def test_a_block_past_the_bound_is_refused_before_any_copy_is_made(block: dict[str, Any]) -> None:
    """A count of 10**9 used to be turned into a list (seconds and gigabytes) before the bound
    was checked copy by copy; now the product of the counts is checked first (nothing is built)."""
    with pytest.raises(ValidationError, match="expand to more than 20,000 items") as info:
        expand_document({"items": [block]})
    assert info.value.path == "items[0]"


def test_nested_blocks_count_towards_one_bound() -> None:
    inner = {"replicate": {"i": 1_000}, "template": "{{ o }}-{{ i }}"}  # 200 x 1,000
    with pytest.raises(ValidationError, match="expand to more than 20,000 items"):
        expand_document({"items": [{"replicate": {"o": 200}, "template": {"sizes": [inner]}}]})
