"""Grouping nodes into hardware profiles and generating Kueue ResourceFlavors from them."""

from __future__ import annotations

import pytest

from budcore.domain.errors import ValidationError
from budcore.hardware.labels import Fleet, node_dict, parse_nodes
from budcore.hardware.profiles import (
    GENERIC_PROFILE,
    build_profiles,
    flavor_name,
    multi_type_profile,
    resource_flavors,
    with_availability,
)
from budcore.scheduling.queues import ResourceFlavor

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
    assert generic.generic and generic.node_selector == {}
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
    assert flavors[GENERIC_PROFILE].node_labels == {}
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
