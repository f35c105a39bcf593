"""Grouping nodes into hardware profiles and generating Kueue ResourceFlavors from them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budcore.domain.cluster import Node
from budcore.domain.errors import ValidationError
from budcore.hardware.labels import ACCELERATOR_NODE_LABEL, Fleet, node_dict, parse_nodes
from budcore.hardware.profiles import (
    GENERIC_PROFILE,
    HardwareProfile,
    build_profiles,
    flavor_name,
    generic_profile,
    multi_type_profile,
    resource_flavors,
    with_availability,
)
from budcore.scheduling.queues import ResourceFlavor
from budcore.testing.examples import examples

GFD = "nvidia.com/gpu."


def _fleet() -> Fleet:
    """The seed's node view: A100 and H200 nodes, a V100 node, a mixed one and a CPU node."""
    nodes = [
        node_dict(
            f"worker-node-0{i}",
            {GFD + "product": "NVIDIA-A100-SXM4-80GB", GFD + "count": "8", GFD + "memory": "81920"},
            {"nvidia.com/gpu": 8, "memory": "512Gi"},
        )
        for i in (1, 2)
    ]
    nodes += [
        node_dict(
            "worker-node-17",
            {GFD + "product": "NVIDIA-H200", GFD + "count": "8", GFD + "memory": "143771"},
            {"nvidia.com/gpu": 8, "memory": "1Ti"},
        ),
        node_dict(
            "worker-node-21",
            {GFD + "product": "Tesla-V100-SXM2-16GB", GFD + "count": "4", GFD + "memory": "16160"},
            {"nvidia.com/gpu": 4, "memory": "256Gi"},
        ),
        node_dict(
            "worker-node-22",
            {GFD + "product": "Tesla-V100-SXM2-16GB", GFD + "count": "2", GFD + "memory": "16160"},
            {"nvidia.com/gpu": 2, "memory": "128Gi"},
        ),
        node_dict(
            "worker-node-99",
            {"budcore.io/accelerators": "nvidia-a100-80gb=4,nvidia-v100-16gb=4"},
            {"nvidia.com/gpu": 8},
        ),
        node_dict("cpu-1", {}, {"cpu": "32", "memory": "128Gi"}),
    ]
    return parse_nodes(nodes)


def test_profiles_group_by_type_and_skip_mixed_and_cpu() -> None:
    profiles = {p.name: p for p in build_profiles(_fleet(), names={"nvidia-h200-141gb": "Premium GPU"})}
    assert set(profiles) == {"nvidia-a100-80gb", "nvidia-h200-141gb", "nvidia-v100-16gb", GENERIC_PROFILE}
    a100 = profiles["nvidia-a100-80gb"]
    assert a100.node_names == ("worker-node-01", "worker-node-02")
    assert a100.accelerators == ("nvidia-a100-80gb",)
    assert (a100.gpus_per_node, a100.total_devices, a100.host_memory_bytes) == (8, 16, 512 * 2**30)
    assert a100.node_selector == {GFD + "product": "NVIDIA-A100-SXM4-80GB"}
    assert a100.device_memory_gib() == 80
    h200 = profiles["nvidia-h200-141gb"]
    assert h200.display_name == "Premium GPU"
    assert h200.label() == "Premium GPU (NVIDIA H200 141GB)"
    v100 = profiles["nvidia-v100-16gb"]
    assert v100.gpus_per_node == 2  # the most every node of the profile can give one pod
    assert "worker-node-99" not in {n for p in profiles.values() if not p.generic for n in p.node_names}
    generic = profiles[GENERIC_PROFILE]
    # No vendor label marks every GPU node here (worker-node-99 is declared), and cpu-1 must stay
    # out: the generic flavor selects on budcore's label, which the GPU nodes then need.
    assert generic.generic and generic.node_selector == {ACCELERATOR_NODE_LABEL: "true"}
    assert generic.label_required
    assert "worker-node-99" in generic.node_names and "cpu-1" not in generic.node_names


def test_selectors_select_exactly_their_nodes() -> None:
    fleet = _fleet()
    for profile in build_profiles(fleet, include_generic=False):
        selected = {n.name for n in fleet.domain_nodes() if n.matches(profile.node_selector)}
        assert selected == set(profile.node_names), profile.name


def test_two_spellings_of_one_type_need_the_budcore_label() -> None:
    fleet = parse_nodes(
        [
            node_dict("a", {GFD + "product": "A100-SXM4-80GB", GFD + "count": "8", GFD + "memory": "81920"}),
            node_dict(
                "b", {GFD + "product": "NVIDIA-A100-SXM4-80GB", GFD + "count": "8", GFD + "memory": "81920"}
            ),
        ]
    )
    (profile,) = build_profiles(fleet, include_generic=False)
    assert profile.node_selector == {"budcore.io/accelerator": "nvidia-a100-80gb"}
    assert profile.label_required


def test_mig_and_shared_nodes_form_their_own_profiles() -> None:
    fleet = parse_nodes(
        [
            node_dict(
                "mig",
                {GFD + "product": "NVIDIA-A100-SXM4-80GB-MIG-3g.40gb", GFD + "count": "16"},
                {"nvidia.com/gpu": 16},
            ),
            node_dict(
                "full",
                {GFD + "product": "NVIDIA-A100-SXM4-80GB", GFD + "count": "8", GFD + "memory": "81920"},
            ),
            node_dict(
                "ts",
                {
                    GFD + "product": "Tesla-T4-SHARED",
                    GFD + "count": "1",
                    GFD + "replicas": "4",
                    GFD + "memory": "15360",
                },
            ),
        ]
    )
    profiles = {p.name: p for p in build_profiles(fleet, include_generic=False)}
    mig = profiles["nvidia-a100-80gb-mig-3g.40gb"]
    assert mig.mig_profile == "3g.40gb" and mig.gpus_per_node == 16 and mig.device_memory_gib() == 40
    assert not mig.whole
    assert profiles["nvidia-t4-16gb-shared"].shared


def test_resource_flavors_from_profiles() -> None:
    profiles = build_profiles(_fleet())
    flavors = {f.name: f for f in resource_flavors(profiles)}
    assert isinstance(flavors["nvidia-h200-141gb"], ResourceFlavor)
    assert flavors["nvidia-h200-141gb"].node_labels == {GFD + "product": "NVIDIA-H200"}
    assert flavors[GENERIC_PROFILE].node_labels == {ACCELERATOR_NODE_LABEL: "true"}
    assert set(flavors) == {p.name for p in profiles}


def test_multi_type_profile() -> None:
    profiles = {p.name: p for p in build_profiles(_fleet())}
    flex = multi_type_profile(
        "flexible-large", [profiles["nvidia-a100-80gb"], profiles["nvidia-h200-141gb"]], "Flexible Large GPU"
    )
    assert flex.accelerators == ("nvidia-a100-80gb", "nvidia-h200-141gb")
    assert flex.flavors == ("nvidia-a100-80gb", "nvidia-h200-141gb")
    assert flex.device_memory_gib() == 80  # what every member guarantees
    assert flex.gpus_per_node == 8 and flex.total_devices == 24
    assert flex.label() == "Flexible Large GPU (NVIDIA A100 80GB or NVIDIA H200 141GB)"
    assert resource_flavors([flex]) == []  # it reuses its members' flavors
    with pytest.raises(ValidationError):
        multi_type_profile("x", [])
    with pytest.raises(ValidationError):
        multi_type_profile("x", [profiles[GENERIC_PROFILE]])


def test_availability() -> None:
    profiles = with_availability(build_profiles(_fleet()), {"nvidia-h200-141gb": 0})
    by_name = {p.name: p for p in profiles}
    assert not by_name["nvidia-h200-141gb"].is_available
    assert by_name["nvidia-a100-80gb"].is_available  # unknown counts as available


def test_flavor_name() -> None:
    assert flavor_name("Premium GPU (H200)") == "premium-gpu-h200"
    with pytest.raises(ValidationError):
        flavor_name("!!!")


def test_flavor_selectors_place_pods_on_the_right_nodes_in_the_in_memory_backend() -> None:
    from budcore_adapters.inmemory.cluster import InMemoryClusterBackend

    from budcore.domain.cluster import PodSetPlacement, Workload
    from budcore.domain.ids import JobId, TenantId
    from budcore.domain.resources import ResourceVector

    fleet = _fleet()
    backend = InMemoryClusterBackend(fleet.domain_nodes())
    flavors = {f.name: f for f in resource_flavors(build_profiles(fleet))}
    for job, flavor, expected in (
        ("h", "nvidia-h200-141gb", "worker-node-17"),
        ("v", "nvidia-v100-16gb", None),
    ):
        pod_set = PodSetPlacement(
            name="main",
            count=1,
            resources=ResourceVector.of({"nvidia.com/gpu": 2}),
            node_selector=flavors[flavor].node_labels,
        )
        status = backend.submit(Workload(job_id=JobId(job), tenant=TenantId("t"), pod_sets=(pod_set,)))
        if expected is not None:
            assert status.nodes == (expected,)
        else:
            assert set(status.nodes) <= {"worker-node-21", "worker-node-22"}


# The generic flavor and CPU-only nodes ------------------------------------------------------------

_GPU_NODE_LABELS: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
    "gfd-h100": (
        {GFD + "product": "NVIDIA-H100-80GB-HBM3", GFD + "count": "8", GFD + "present": "true"},
        {"nvidia.com/gpu": 8},
    ),
    "gfd-l4-no-present-label": ({GFD + "product": "NVIDIA-L4", GFD + "count": "2"}, {"nvidia.com/gpu": 2}),
    "amd": (
        {"amd.com/gpu.product-name": "AMD_Instinct_MI300X_OAM", "amd.com/gpu.vram": "192G"},
        {"amd.com/gpu": 8},
    ),
    "gaudi-nfd": ({"feature.node.kubernetes.io/pci-1200_1da3_1020.present": "true"}, {"habana.ai/gaudi": 8}),
    "gaudi-bare": ({}, {"habana.ai/gaudi": 8}),
    "nvidia-bare": ({}, {"nvidia.com/gpu": 4}),
}
_CPU_NODE_LABELS: dict[str, dict[str, str]] = {
    "plain": {"kubernetes.io/os": "linux"},
    "intel-nic": {"feature.node.kubernetes.io/pci-0200_8086.present": "true"},
    "nvidia-nic": {"feature.node.kubernetes.io/pci-0200_15b3.present": "true"},
    "gfd-leftover": {GFD + "present": "false"},
}


@st.composite
def _fleets(draw: st.DrawFn) -> Fleet:
    gpus = draw(st.lists(st.sampled_from(sorted(_GPU_NODE_LABELS)), min_size=1, max_size=6))
    cpus = draw(st.lists(st.sampled_from(sorted(_CPU_NODE_LABELS)), max_size=3))
    nodes = [node_dict(f"gpu-{i}", *_GPU_NODE_LABELS[kind]) for i, kind in enumerate(gpus)]
    nodes += [node_dict(f"cpu-{i}", _CPU_NODE_LABELS[kind], {"cpu": "32"}) for i, kind in enumerate(cpus)]
    return parse_nodes(nodes)


def _labelled(fleet: Fleet, profile: HardwareProfile) -> list[Node]:
    """The fleet's nodes after an admin did what ``label_required`` asks: the profile's nodes
    carry its selector."""
    nodes = []
    for node in fleet.domain_nodes():
        if profile.label_required and node.name in profile.node_names:
            node = node.model_copy(update={"labels": {**node.labels, **profile.node_selector}})
        nodes.append(node)
    return nodes


@settings(max_examples=examples(200))
@given(_fleets())
def test_every_flavor_selects_exactly_its_nodes_and_gpu_any_no_cpu_only_node(fleet: Fleet) -> None:
    cpu_only = {n.name for n in fleet.nodes if not n.has_accelerators}
    for profile in build_profiles(fleet):
        selected = {n.name for n in _labelled(fleet, profile) if n.matches(profile.node_selector)}
        assert not selected & cpu_only, profile.name
        assert selected == set(profile.node_names), profile.name
        if cpu_only and profile.generic:
            assert profile.node_selector  # never the select-everything {}


def test_gpu_any_uses_a_vendor_label_every_gpu_node_has() -> None:
    h100 = _GPU_NODE_LABELS["gfd-h100"]
    fleet = parse_nodes([node_dict("a", *h100), node_dict("b", *h100), node_dict("cpu", {}, {"cpu": "8"})])
    generic = generic_profile(fleet)
    assert generic.node_selector == {GFD + "present": "true"} and not generic.label_required


def test_gpu_any_without_cpu_only_nodes_keeps_the_empty_selector() -> None:
    fleet = parse_nodes(
        [node_dict("a", *_GPU_NODE_LABELS["amd"]), node_dict("b", *_GPU_NODE_LABELS["gaudi-bare"])]
    )
    generic = generic_profile(fleet)
    assert generic.node_selector == {} and not generic.label_required


def test_gaudi_nodes_get_their_own_flavor() -> None:
    fleet = parse_nodes(
        [
            node_dict("h100", *_GPU_NODE_LABELS["gfd-h100"]),
            node_dict("gaudi2", *_GPU_NODE_LABELS["gaudi-nfd"]),
            node_dict("gaudi-a", *_GPU_NODE_LABELS["gaudi-bare"]),
            node_dict("gaudi-b", *_GPU_NODE_LABELS["gaudi-bare"]),
            node_dict("cpu", {}, {"cpu": "8"}),
        ]
    )
    profiles = {p.name: p for p in build_profiles(fleet)}
    assert set(profiles) == {"nvidia-h100-80gb", "intel-gaudi2-96gb", "gaudi", GENERIC_PROFILE}
    gaudi2 = profiles["intel-gaudi2-96gb"]
    assert gaudi2.node_selector == {"feature.node.kubernetes.io/pci-1200_1da3_1020.present": "true"}
    assert not gaudi2.label_required  # NFD's PCI label tells it apart
    gaudi = profiles["gaudi"]
    assert gaudi.node_names == ("gaudi-a", "gaudi-b") and gaudi.gpus_per_node == 8
    assert gaudi.display_name == "Intel Gaudi (generation unknown)"
    assert gaudi.node_selector == {"budcore.io/accelerator": "gaudi"} and gaudi.label_required
    assert {f.name for f in resource_flavors(profiles.values())} == set(profiles)
    # Labelled as the profile asks, a node reads back as the same type.
    relabelled = parse_nodes(
        [node_dict("gaudi-a", {"budcore.io/accelerator": "gaudi"}, {"habana.ai/gaudi": 8})]
    )
    assert relabelled.nodes[0].type_key == fleet.node("gaudi-a").type_key  # type: ignore[union-attr]


def test_a_type_the_catalog_lacks_is_named_after_its_product_and_its_label_reads_back() -> None:
    nvl = {GFD + "product": "NVIDIA-H100-NVL", GFD + "count": "2", GFD + "memory": "95830"}
    fleet = parse_nodes(
        [node_dict("a", nvl, {"nvidia.com/gpu": 2}), node_dict("b", {**nvl, GFD + "product": "H100-NVL"})]
    )
    (profile,) = build_profiles(fleet, include_generic=False)
    assert profile.name == "h100-nvl" and profile.label_required
    again = parse_nodes([node_dict("c", profile.node_selector, {"nvidia.com/gpu": 2})])
    assert again.nodes[0].type_key == fleet.nodes[0].type_key == "product:H100-NVL"
