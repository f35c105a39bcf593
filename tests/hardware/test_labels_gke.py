"""GKE GPU nodes, multi-document node files and the Ready condition."""

from __future__ import annotations

import pytest

from budcore.hardware.labels import SharingMode, parse_nodes_yaml

GKE = """
apiVersion: v1
kind: Node
metadata:
  name: gke-a100-1
  labels:
    cloud.google.com/gke-accelerator: {accelerator}
    cloud.google.com/gke-nodepool: a100-pool{extra}
status:
  allocatable: {{cpu: "94", memory: 1300Gi, nvidia.com/gpu: "{gpus}"}}
  conditions:
  - {{type: MemoryPressure, status: "False"}}
  - {{type: Ready, status: "{ready}"}}
"""


def gke(accelerator: str = "nvidia-tesla-a100", gpus: int = 8, ready: str = "True", extra: str = "") -> str:
    return GKE.format(accelerator=accelerator, gpus=gpus, ready=ready, extra=extra)


@pytest.mark.parametrize(
    ("accelerator", "slug", "memory"),
    [
        ("nvidia-tesla-a100", "nvidia-a100-40gb", 40),
        ("nvidia-a100-80gb", "nvidia-a100-80gb", 80),
        ("nvidia-h100-80gb", "nvidia-h100-80gb", 80),
        ("nvidia-h100-mega-80gb", "nvidia-h100-80gb", 80),
        ("nvidia-l4", "nvidia-l4-24gb", 24),
        ("nvidia-tesla-t4", "nvidia-t4-16gb", 16),
        ("nvidia-tesla-v100", "nvidia-v100-16gb", 16),
    ],
)
def test_gke_accelerator_label_names_the_model(accelerator: str, slug: str, memory: int) -> None:
    (node,) = parse_nodes_yaml(gke(accelerator)).nodes
    (group,) = node.devices
    assert (group.accelerator, group.count, group.memory_gib, group.source) == (slug, 8, memory, "gke")
    assert node.warnings == ()


def test_gke_time_sharing_and_mig_partitions() -> None:
    shared = (
        "\n    cloud.google.com/gke-gpu-sharing-strategy: time-sharing"
        '\n    cloud.google.com/gke-max-shared-clients-per-gpu: "4"'
    )
    (node,) = parse_nodes_yaml(gke(gpus=32, extra=shared)).nodes
    (group,) = node.devices
    assert (group.sharing, group.replicas, group.count) == (SharingMode.TIME_SLICING, 4, 8)
    mig = "\n    cloud.google.com/gke-gpu-partition-size: 1g.5gb"
    (node,) = parse_nodes_yaml(gke(gpus=56, extra=mig)).nodes
    (group,) = node.devices
    assert (group.sharing, group.mig_profile, group.count, group.memory_gib) == (
        SharingMode.MIG,
        "1g.5gb",
        56,
        5,
    )


def test_an_unknown_gke_accelerator_is_kept_with_a_warning() -> None:
    (node,) = parse_nodes_yaml(gke("nvidia-tesla-k80")).nodes
    assert node.devices[0].accelerator is None and "not in the accelerator catalog" in node.warnings[0]


def test_a_node_that_is_not_ready_takes_no_pods() -> None:
    (node,) = parse_nodes_yaml(gke(ready="False")).nodes
    assert node.schedulable and not node.ready and node.status == "NotReady"
    assert node.to_node().schedulable is False
    (ok,) = parse_nodes_yaml(gke()).nodes
    assert ok.ready and ok.status == "Ready" and ok.to_node().schedulable


def test_several_documents_are_several_nodes() -> None:
    text = gke() + "---\n" + gke().replace("gke-a100-1", "gke-a100-2")
    assert [n.name for n in parse_nodes_yaml(text).nodes] == ["gke-a100-1", "gke-a100-2"]
