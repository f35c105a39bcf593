"""Rendering budcore's queue configuration as Kueue objects (no cluster involved).

The goldens under ``golden/`` are the seeds' three ClusterQueues (unified architecture, Part 4,
§4.4: model-endpoints, serverless-endpoints, usecase-deployments), as shipped in budcore's example
``platform-gpu-pool``; ``BUDCORE_REGEN_GOLDEN=1`` rewrites them (review the diff before keeping it).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from budcore_adapters.kueue.render import (
    KIND_ORDER,
    MANAGED_BY_LABEL,
    dump_objects,
    normalize_api_version,
    object_ref,
    render,
    render_yaml,
)

from budcore.config import load_example, loads_queue_config, read_example
from budcore.config.crd import iter_schema_issues
from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.scheduling.queues import QueueConfig, ResourceFlavor

GOLDEN = Path(__file__).parent / "golden"
VERSIONS = ("v1beta1", "v1beta2")
EXAMPLES = ("platform-gpu-pool", "heterogeneous-three-tenants")

# The seeds' text, transcribed: ClusterQueue → flavor → (nominalQuota, borrowingLimit) of nvidia.com/gpu,
# all in cohort platform-gpu-pool. The goldens must say the same (checked below, independently of
# the bytes).
SEED_QUEUES = {
    "model-endpoints": {"a100-80gb": ("100", "20"), "h100-sxm": ("50", "10")},
    "serverless-endpoints": {"a100-80gb": ("50", "30")},
    "usecase-deployments": {"a100-80gb": ("30", "10")},
}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_kind_at_both_versions_labelled_and_schema_valid(version: str) -> None:
    objects = render(load_example("heterogeneous-three-tenants"), api_version=version)
    assert {o["kind"] for o in objects} == set(KIND_ORDER)
    assert {o["apiVersion"] for o in objects} == {f"kueue.x-k8s.io/{version}"}
    for obj in objects:
        assert obj["metadata"]["labels"] == {MANAGED_BY_LABEL: "budcore"}
        assert list(iter_schema_issues(obj, obj["kind"], version)) == [], object_ref(obj)
    queues = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ClusterQueue"}
    # the one field whose name differs between the versions
    cohort_field = "cohort" if version == "v1beta1" else "cohortName"
    assert queues["research"]["spec"][cohort_field] == "training"
    local = [o for o in objects if o["kind"] == "LocalQueue"]
    assert {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in local} == {
        ("research", "research"),
        ("llm-finetune", "finetune"),
        ("inference", "online"),
        ("inference", "batch"),
    }


def test_order_is_dependency_order_then_name_whatever_the_input_order() -> None:
    config = load_example("heterogeneous-three-tenants")
    objects = render(config)
    kinds = [o["kind"] for o in objects]
    assert kinds == sorted(kinds, key=KIND_ORDER.index)
    for kind in KIND_ORDER:
        keys = [
            (o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objects if o["kind"] == kind
        ]
        assert keys == sorted(keys), kind

    documents = list(yaml.safe_load_all(read_example("heterogeneous-three-tenants")))
    random.Random(7).shuffle(documents)
    shuffled = loads_queue_config(yaml.safe_dump_all(documents), source="shuffled.yaml")
    assert render_yaml(shuffled) == render_yaml(config)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("example", EXAMPLES)
def test_round_trip_render_load_render(example: str, version: str) -> None:
    first = render_yaml(load_example(example), api_version=version)
    again = render_yaml(loads_queue_config(first, source="rendered.yaml"), api_version=version)
    assert again == first


def test_round_trip_across_versions() -> None:
    """v1beta1 output loads into the configuration whose v1beta2 rendering is the original one."""
    config = load_example("heterogeneous-three-tenants")
    old = render_yaml(config, api_version="v1beta1")
    assert render_yaml(loads_queue_config(old)) == render_yaml(config)


def test_object_failing_its_crd_schema_names_object_and_field() -> None:
    # Nine node labels are fine for budcore's model, but the CRD allows at most eight.
    flavor = ResourceFlavor(name="wide", node_labels={f"example.com/l{i}": "x" for i in range(9)})
    config = QueueConfig.build(flavors=[flavor])
    with pytest.raises(ValidationErrors) as caught:
        render(config)
    assert len(caught.value.errors) == 1
    message = str(caught.value)
    assert message.startswith("ResourceFlavor/wide.spec.nodeLabels: not a valid ResourceFlavor")
    assert "kueue.x-k8s.io/v1beta2" in message and "has too many properties" in message
    assert "nothing was sent" in message
    assert "<dump>" not in message and "<render>" not in message


def test_every_failing_object_is_reported_at_once() -> None:
    flavors = [
        ResourceFlavor(name=name, node_labels={f"example.com/l{i}": "x" for i in range(9)}) for name in "ab"
    ]
    with pytest.raises(ValidationErrors) as caught:
        render(QueueConfig.build(flavors=flavors))
    assert [e.path for e in caught.value.errors] == [
        "ResourceFlavor/a.spec.nodeLabels",
        "ResourceFlavor/b.spec.nodeLabels",
    ]


def test_extra_labels_are_added_and_checked() -> None:
    config = load_example("platform-gpu-pool")
    objects = render(config, labels={"budcore.io/config": "team-a"})
    assert all(
        o["metadata"]["labels"] == {"budcore.io/config": "team-a", MANAGED_BY_LABEL: "budcore"}
        for o in objects
    )
    with pytest.raises(ValidationErrors, match="invalid label value 'not ok'"):
        render(config, labels={"budcore.io/config": "not ok"})
    with pytest.raises(ValidationError, match="prune selects by it"):
        render(config, labels={MANAGED_BY_LABEL: "helm"})


def test_api_version_forms() -> None:
    assert normalize_api_version("v1beta1") == "kueue.x-k8s.io/v1beta1"
    assert normalize_api_version("kueue.x-k8s.io/v1beta2") == "kueue.x-k8s.io/v1beta2"
    with pytest.raises(ValidationError, match=r"--api-version: unsupported Kueue API version 'v1'"):
        normalize_api_version("v1")


def _cluster_queue(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == "ClusterQueue" and o["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(SEED_QUEUES))
def test_golden_seed_cluster_queues(name: str, version: str) -> None:
    objects = render(load_example("platform-gpu-pool"), api_version=version)
    text = dump_objects([_cluster_queue(objects, name)])
    golden = GOLDEN / version / f"{name}.yaml"
    if os.environ.get("BUDCORE_REGEN_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), f"{golden} differs from the rendering"

    # ... and the golden says what the seed says.
    (document,) = yaml.safe_load_all(golden.read_text(encoding="utf-8"))
    spec = document["spec"]
    assert spec["cohort" if version == "v1beta1" else "cohortName"] == "platform-gpu-pool"
    (group,) = spec["resourceGroups"]
    assert group["coveredResources"] == ["nvidia.com/gpu"]
    quotas = {
        f["name"]: (r["nominalQuota"], r["borrowingLimit"]) for f in group["flavors"] for r in f["resources"]
    }
    assert quotas == SEED_QUEUES[name]
    # budcore's deliberate additions to the seed's text: every namespace may use the queue (an
    # absent selector matches none in Kueue), the default strategy spelled out, and its label.
    assert spec["namespaceSelector"] == {} and spec["queueingStrategy"] == "BestEffortFIFO"
    assert document["metadata"]["labels"] == {MANAGED_BY_LABEL: "budcore"}
