"""Node labels → typed devices: one table row per detection case in the issue."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from budcore.domain.cluster import Node
from budcore.domain.errors import ValidationError
from budcore.hardware.labels import (
    CPU_ONLY,
    UNKNOWN_TYPE,
    SharingMode,
    node_dict,
    parse_node,
    parse_nodes,
    parse_nodes_yaml,
    physical_gpus,
)


@dataclass
class Case:
    labels: dict[str, str]
    allocatable: dict[str, Any]
    gpu_type: str
    devices: list[tuple[str | None, int, float | None]]  # (slug, count, memory GiB) per group
    mig: list[str | None] | None = None
    sharing: SharingMode | None = None
    replicas: int = 1
    warning: str | None = None  # substring expected in one warning
    shared: bool = False
    mixed: bool = False
    type_key: str | None = "auto"
    extra: dict[str, Any] = field(default_factory=dict)


GFD = "nvidia.com/gpu."
GAUDI_TYPE = "Intel Gaudi (generation unknown)"
CASES: dict[str, Case] = {
    "gfd-h100-sku-string": Case(
        {
            GFD + "product": "NVIDIA-H100-80GB-HBM3",
            GFD + "count": "8",
            GFD + "memory": "81559",
            GFD + "family": "hopper",
            GFD + "compute.major": "9",
            GFD + "compute.minor": "0",
        },
        {"nvidia.com/gpu": 8, "cpu": "192", "memory": "2Ti"},
        "NVIDIA H100 80GB",
        [("nvidia-h100-80gb", 8, 80.0)],
        type_key="nvidia-h100-80gb",
    ),
    "gfd-without-nvidia-prefix": Case(
        {GFD + "product": "A100-SXM4-80GB", GFD + "count": "8", GFD + "memory": "81920"},
        {"nvidia.com/gpu": 8},
        "NVIDIA A100 80GB",
        [("nvidia-a100-80gb", 8, 80.0)],
    ),
    "gfd-with-nvidia-prefix": Case(
        {GFD + "product": "NVIDIA-A100-SXM4-40GB", GFD + "count": "4", GFD + "memory": "40960"},
        {"nvidia.com/gpu": 4},
        "NVIDIA A100 40GB",
        [("nvidia-a100-40gb", 4, 40.0)],
    ),
    "gfd-h200-memory-rounded-to-marketed": Case(
        {GFD + "product": "NVIDIA-H200", GFD + "count": "8", GFD + "memory": "143771"},
        {"nvidia.com/gpu": 8},
        "NVIDIA H200 141GB",
        [("nvidia-h200-141gb", 8, 141.0)],
    ),
    "gfd-t4": Case(
        {GFD + "product": "Tesla-T4", GFD + "count": "1", GFD + "memory": "15360"},
        {"nvidia.com/gpu": 1},
        "NVIDIA T4 16GB",
        [("nvidia-t4-16gb", 1, 16.0)],
    ),
    "gfd-l4": Case(
        {GFD + "product": "NVIDIA-L4", GFD + "count": "2", GFD + "memory": "23034"},
        {"nvidia.com/gpu": 2},
        "NVIDIA L4 24GB",
        [("nvidia-l4-24gb", 2, 24.0)],
    ),
    "gfd-count-missing-uses-allocatable": Case(
        {GFD + "product": "NVIDIA-L40S", GFD + "memory": "46068"},
        {"nvidia.com/gpu": 4},
        "NVIDIA L40S 48GB",
        [("nvidia-l40s-48gb", 4, 48.0)],
        warning="gpu.count missing",
    ),
    "gfd-p100-pcie": Case(
        {GFD + "product": "Tesla-P100-PCIE-16GB", GFD + "count": "4", GFD + "memory": "16280"},
        {"nvidia.com/gpu": 4},
        "NVIDIA P100 PCIe 16GB",
        [("nvidia-p100-pcie-16gb", 4, 16.0)],
    ),
    "gfd-a10": Case(
        {GFD + "product": "NVIDIA-A10", GFD + "count": "1", GFD + "memory": "23028"},
        {"nvidia.com/gpu": 1},
        "NVIDIA A10 24GB",
        [("nvidia-a10-24gb", 1, 24.0)],
    ),
    "gfd-count-above-allocatable-uses-allocatable": Case(  # one GPU unhealthy
        {GFD + "product": "NVIDIA-H100-80GB-HBM3", GFD + "count": "8", GFD + "memory": "81559"},
        {"nvidia.com/gpu": 7},
        "NVIDIA H100 80GB",
        [("nvidia-h100-80gb", 7, 80.0)],
        warning="labels say 8 devices x 1 replica(s) = 8 nvidia.com/gpu, but the node advertises 7",
    ),
    "gfd-count-below-allocatable-uses-allocatable": Case(
        {GFD + "product": "NVIDIA-H100-80GB-HBM3", GFD + "count": "4", GFD + "memory": "81559"},
        {"nvidia.com/gpu": 8},
        "NVIDIA H100 80GB",
        [("nvidia-h100-80gb", 8, 80.0)],
        warning="advertises 8; counting 8",
    ),
    "gfd-every-gpu-unhealthy": Case(
        {GFD + "product": "NVIDIA-H100-80GB-HBM3", GFD + "count": "8", GFD + "memory": "81559"},
        {"nvidia.com/gpu": "0", "cpu": "64"},
        "NVIDIA H100 80GB",
        [("nvidia-h100-80gb", 0, 80.0)],
        warning="advertises 0",
    ),
    "gfd-count-beyond-any-node-is-ignored": Case(
        {GFD + "product": "NVIDIA-L4", GFD + "count": "99999999", GFD + "memory": "23034"},
        {"nvidia.com/gpu": 2},
        "NVIDIA L4 24GB",
        [("nvidia-l4-24gb", 2, 24.0)],
        warning="beyond any real node",
    ),
    "gfd-memory-in-the-wrong-unit": Case(
        {GFD + "product": "NVIDIA-L4", GFD + "count": "2", GFD + "memory": "24"},  # GiB, not MiB
        {"nvidia.com/gpu": 2},
        "NVIDIA L4 24GB",
        [("nvidia-l4-24gb", 2, None)],
        warning="not a GPU memory size",
    ),
    "time-slicing-replicas-implied-by-allocatable": Case(
        {GFD + "product": "Tesla-T4-SHARED", GFD + "count": "2", GFD + "memory": "15360"},
        {"nvidia.com/gpu": 8},
        "NVIDIA T4 16GB",
        [("nvidia-t4-16gb", 2, 16.0)],
        sharing=SharingMode.TIME_SLICING,
        replicas=4,
        shared=True,
        warning="taking 4 replicas per GPU",
    ),
    "mig-single": Case(
        {
            GFD + "product": "NVIDIA-A100-SXM4-80GB-MIG-1g.10gb",
            GFD + "count": "56",
            GFD + "memory": "9728",
            "nvidia.com/mig.strategy": "single",
        },
        {"nvidia.com/gpu": 56},
        "NVIDIA A100 80GB MIG 1g.10gb",
        [("nvidia-a100-80gb", 56, 10.0)],
        mig=["1g.10gb"],
        sharing=SharingMode.MIG,
        type_key="nvidia-a100-80gb/mig:1g.10gb",
    ),
    "mig-mixed": Case(
        {
            GFD + "product": "NVIDIA-A100-SXM4-40GB",
            GFD + "count": "2",
            "nvidia.com/mig.strategy": "mixed",
            "nvidia.com/mig-1g.5gb.count": "7",
            "nvidia.com/mig-3g.20gb.count": "2",
        },
        {"nvidia.com/mig-1g.5gb": 7, "nvidia.com/mig-3g.20gb": 2},
        "NVIDIA A100 40GB (MIG mixed: 7x 1g.5gb, 2x 3g.20gb)",
        [("nvidia-a100-40gb", 7, 5.0), ("nvidia-a100-40gb", 2, 20.0)],
        mig=["1g.5gb", "3g.20gb"],
        sharing=SharingMode.MIG,
        type_key="nvidia-a100-40gb/mig:1g.5gb+3g.20gb",
    ),
    "mig-mixed-with-whole-gpus-left": Case(
        {
            GFD + "product": "NVIDIA-H100-80GB-HBM3",
            GFD + "count": "8",
            GFD + "memory": "81559",
            "nvidia.com/mig.strategy": "mixed",
            "nvidia.com/mig-3g.40gb.count": "4",
        },
        {"nvidia.com/gpu": 6, "nvidia.com/mig-3g.40gb": 4},
        "NVIDIA H100 80GB (MIG mixed: 4x 3g.40gb, 6x full)",
        [("nvidia-h100-80gb", 4, 40.0), ("nvidia-h100-80gb", 6, 80.0)],
        mig=["3g.40gb", None],
    ),
    "time-slicing-shared-suffix": Case(
        {
            GFD + "product": "Tesla-T4-SHARED",
            GFD + "count": "1",
            GFD + "memory": "15360",
            GFD + "replicas": "4",
            GFD + "sharing-strategy": "time-slicing",
        },
        {"nvidia.com/gpu": 4},
        "NVIDIA T4 16GB",
        [("nvidia-t4-16gb", 1, 16.0)],
        sharing=SharingMode.TIME_SLICING,
        replicas=4,
        shared=True,
    ),
    "mps": Case(
        {
            GFD + "product": "NVIDIA-A100-SXM4-80GB-SHARED",
            GFD + "count": "8",
            GFD + "memory": "81920",
            GFD + "replicas": "2",
            GFD + "sharing-strategy": "mps",
        },
        {"nvidia.com/gpu": 16},
        "NVIDIA A100 80GB",
        [("nvidia-a100-80gb", 8, 80.0)],
        sharing=SharingMode.MPS,
        replicas=2,
        shared=True,
    ),
    "shared-suffix-without-replicas": Case(
        {GFD + "product": "NVIDIA-L4-SHARED", GFD + "count": "1", GFD + "memory": "23034"},
        {"nvidia.com/gpu": 1},
        "NVIDIA L4 24GB",
        [("nvidia-l4-24gb", 1, 24.0)],
        sharing=SharingMode.TIME_SLICING,
        shared=True,
        warning="replicas is missing",
    ),
    "missing-memory-keeps-type": Case(
        {GFD + "product": "NVIDIA-A100-SXM4-80GB", GFD + "count": "8"},
        {"nvidia.com/gpu": 8},
        "NVIDIA A100 80GB",
        [("nvidia-a100-80gb", 8, None)],
        warning="memory unknown",
    ),
    "product-not-in-catalog": Case(
        {GFD + "product": "NVIDIA-H100-NVL", GFD + "count": "2", GFD + "memory": "95830"},
        {"nvidia.com/gpu": 2},
        "NVIDIA H100 NVL",
        [(None, 2, 94.0)],
        warning="not in the accelerator catalog",
        type_key="product:H100-NVL",
    ),
    "gpu-without-product-label": Case(
        {"kubernetes.io/os": "linux"},
        {"nvidia.com/gpu": 4},
        UNKNOWN_TYPE,
        [(None, 4, None)],
        warning="no product labels",
        type_key=None,
    ),
    "nfd-nvidia-vendor-only": Case(
        {"feature.node.kubernetes.io/pci-10de.present": "true"},
        {"nvidia.com/gpu": 2},
        UNKNOWN_TYPE,
        [(None, 2, None)],
        warning="NFD",
        type_key=None,
    ),
    "nfd-nvidia-class-vendor-device": Case(
        {"feature.node.kubernetes.io/pci-0302_10de_20b2.present": "true"},
        {"nvidia.com/gpu": 8},
        "NVIDIA A100 80GB",
        [("nvidia-a100-80gb", 8, 80.0)],
        warning="PCI device id",
    ),
    "nfd-vendor-and-device-labels-together": Case(
        {
            "feature.node.kubernetes.io/pci-10de.present": "true",
            "feature.node.kubernetes.io/pci-10de_2330.present": "true",
            "feature.node.kubernetes.io/pci-8086_1572.present": "true",  # an Intel NIC
        },
        {"nvidia.com/gpu": 8},
        "NVIDIA H100 80GB",
        [("nvidia-h100-80gb", 8, 80.0)],
        warning="PCI device id",
    ),
    "nfd-amd": Case(
        {"feature.node.kubernetes.io/pci-1002_74a1.present": "true"},
        {"amd.com/gpu": 8},
        "AMD Instinct MI300X 192GB",
        [("amd-mi300x-192gb", 8, 192.0)],
        warning="PCI device id",
    ),
    "nfd-gaudi-1da3": Case(
        {"feature.node.kubernetes.io/pci-1200_1da3_1020.present": "true"},
        {"habana.ai/gaudi": 8},
        "Intel Gaudi 2 96GB",
        [("intel-gaudi2-96gb", 8, 96.0)],
        warning="PCI device id",
    ),
    "nfd-gaudi-vendor-only": Case(
        {"feature.node.kubernetes.io/pci-1da3.present": "true"},
        {"habana.ai/gaudi": 8},
        GAUDI_TYPE,
        [(None, 8, None)],
        warning="Gaudi generation unknown",
        type_key="product:GAUDI",  # a type of its own: Gaudi nodes group apart from the GPUs
    ),
    "gaudi-allocatable-only": Case(
        {"kubernetes.io/os": "linux"},
        {"habana.ai/gaudi": 8, "cpu": "160"},
        GAUDI_TYPE,
        [(None, 8, None)],
        warning="Gaudi generation unknown",
        type_key="product:GAUDI",
    ),
    "gaudi-declared-generation-unknown": Case(
        {"budcore.io/accelerator": "gaudi"},  # what the gaudi profile's fallback selector asks for
        {"habana.ai/gaudi": 8},
        GAUDI_TYPE,
        [(None, 8, None)],
        type_key="product:GAUDI",
    ),
    "nfd-intel-nic-is-not-a-gpu": Case(
        {"feature.node.kubernetes.io/pci-0200_8086.present": "true"},
        {"cpu": "64"},
        CPU_ONLY,
        [],
        type_key=None,
    ),
    "amd-labels": Case(
        {
            "amd.com/gpu.product-name": "AMD_Instinct_MI300X",
            "amd.com/gpu.device-id": "74a1",
            "amd.com/gpu.vram": "192G",
        },
        {"amd.com/gpu": 8},
        "AMD Instinct MI300X 192GB",
        [("amd-mi300x-192gb", 8, 192.0)],
    ),
    "amd-labeller-mi300x-oam": Case(  # the labels AMD's installation guide shows for an MI300X
        {
            "amd.com/gpu.cu-count": "304",
            "amd.com/gpu.device-id": "74a1",
            "amd.com/gpu.family": "AI",
            "amd.com/gpu.product-name": "AMD_Instinct_MI300X_OAM",
            "amd.com/gpu.simd-count": "1216",
            "amd.com/gpu.vram": "192G",
        },
        {"amd.com/gpu": 8},
        "AMD Instinct MI300X 192GB",
        [("amd-mi300x-192gb", 8, 192.0)],
    ),
    "amd-vram-without-unit-read-as-gib": Case(  # was 192 bytes, shown as 0.0 GB
        {"amd.com/gpu.product-name": "AMD_Instinct_MI300X_OAM", "amd.com/gpu.vram": "192"},
        {"amd.com/gpu": 8},
        "AMD Instinct MI300X 192GB",
        [("amd-mi300x-192gb", 8, 192.0)],
        warning="read as GiB",
    ),
    "amd-vram-without-unit-read-as-mib": Case(
        {"amd.com/gpu.device-id": "74a1", "amd.com/gpu.vram": "196592"},
        {"amd.com/gpu": 8},
        "AMD Instinct MI300X 192GB",
        [("amd-mi300x-192gb", 8, 192.0)],
        warning="read as MiB",
    ),
    "amd-vram-without-unit-unknown-part": Case(
        {"amd.com/gpu.product-name": "AMD_Instinct_MI999", "amd.com/gpu.vram": "206158430208"},
        {"amd.com/gpu": 4},
        "AMD Instinct MI999",
        [(None, 4, 192.0)],
        warning="read as bytes",
    ),
    "amd-vram-implausible-is-unknown-not-zero": Case(
        {"amd.com/gpu.product-name": "AMD_Instinct_MI300X_OAM", "amd.com/gpu.vram": "3Mi"},
        {"amd.com/gpu": 8},
        "AMD Instinct MI300X 192GB",
        [("amd-mi300x-192gb", 8, None)],
        warning="not a GPU memory size",
    ),
    "amd-vram-per-size-label": Case(  # the labeller's form when a node has several sizes
        {"amd.com/gpu.device-id": "74a1", "amd.com/gpu.vram.192G": "8"},
        {"amd.com/gpu": 8},
        "AMD Instinct MI300X 192GB",
        [("amd-mi300x-192gb", 8, 192.0)],
    ),
    "amd-device-id-only": Case(
        {"amd.com/gpu.device-id": "740c", "amd.com/gpu.vram": "64G"},
        {"amd.com/gpu": 8},
        "AMD Instinct MI250X 128GB",
        [("amd-mi250x-128gb", 8, 64.0)],
    ),
    "amd-legacy-beta-labels": Case(
        {
            "beta.amd.com/gpu.device-id.740c": "8",
            "beta.amd.com/gpu.vram.64G": "8",
            "beta.amd.com/gpu.family.AI": "8",
        },
        {"amd.com/gpu": 8},
        "AMD Instinct MI250X 128GB",
        [("amd-mi250x-128gb", 8, 64.0)],
    ),
    "amd-legacy-mixed-device-ids": Case(
        {"beta.amd.com/gpu.device-id.740c": "4", "beta.amd.com/gpu.device-id.74a1": "4"},
        {"amd.com/gpu": 8},
        "Mixed (4x MI250X, 4x MI300X)",
        [("amd-mi250x-128gb", 4, 64.0), ("amd-mi300x-192gb", 4, 192.0)],
        mixed=True,
        type_key=None,
        warning="excluded from automatic grouping",
    ),
    "intel-max": Case(
        {"gpu.intel.com/product": "Max_1550", "gpu.intel.com/device.count": "8"},
        {"gpu.intel.com/i915": 8},
        "Intel Data Center GPU Max 1550 128GB",
        [("intel-max1550-128gb", 8, 128.0)],
    ),
    "intel-device-id-labels": Case(
        {"gpu.intel.com/device-id.0380-0bd5.count": "4"},
        {"gpu.intel.com/i915": 4},
        "Intel Data Center GPU Max 1550 128GB",
        [("intel-max1550-128gb", 4, 128.0)],
    ),
    "mixed-declared-per-device": Case(
        {"budcore.io/accelerators": "nvidia-a100-80gb=4,nvidia-v100-16gb=4"},
        {"nvidia.com/gpu": 8},
        "Mixed (4x A100, 4x V100)",
        [("nvidia-a100-80gb", 4, 80.0), ("nvidia-v100-16gb", 4, 16.0)],
        mixed=True,
        type_key=None,
        warning="excluded from automatic grouping",
    ),
    "admin-override-label": Case(
        {"budcore.io/accelerator": "nvidia-h200-141gb"},
        {"nvidia.com/gpu": 8},
        "NVIDIA H200 141GB",
        [("nvidia-h200-141gb", 8, 141.0)],
    ),
    "override-label-unknown-type": Case(
        {"budcore.io/accelerator": "acme-x1"},
        {"nvidia.com/gpu": 2},
        "acme x1",
        [(None, 2, None)],
        warning="does not know",
        type_key="product:ACME-X1",
    ),
    "cpu-only": Case(
        {"kubernetes.io/os": "linux"}, {"cpu": "16", "memory": "64Gi"}, CPU_ONLY, [], type_key=None
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_label_detection(name: str) -> None:
    case = CASES[name]
    node = parse_node(node_dict(name, case.labels, case.allocatable))
    assert node.gpu_type == case.gpu_type
    assert [(d.accelerator, d.count, d.memory_gib) for d in node.devices] == case.devices
    if case.mig is not None:
        assert [d.mig_profile for d in node.devices] == case.mig
    if case.sharing is not None:
        assert {d.sharing for d in node.devices if d.mig_profile or case.sharing is not SharingMode.MIG} == {
            case.sharing
        }
    assert all(d.replicas == case.replicas for d in node.devices)
    assert node.shared is case.shared
    assert node.mixed is case.mixed
    if case.warning is None:
        assert node.warnings == ()
    else:
        assert any(case.warning in w for w in node.warnings), node.warnings
    if case.type_key != "auto":
        assert node.type_key == case.type_key


def test_declared_types_short_of_allocatable_keep_their_counts_with_a_warning() -> None:
    """Two types share nvidia.com/gpu: which one is short cannot be told, so nothing is guessed.
    (Not a table row: the declared label value is one Kubernetes would refuse, and the table is
    also served to the API-server double in tests/kueue.)"""
    node = parse_node(
        node_dict(
            "n", {"budcore.io/accelerators": "nvidia-a100-80gb=4,nvidia-v100-16gb=4"}, {"nvidia.com/gpu": 6}
        )
    )
    assert [(d.accelerator, d.count) for d in node.devices] == [
        ("nvidia-a100-80gb", 4),
        ("nvidia-v100-16gb", 4),
    ]
    assert any("add up to 8 nvidia.com/gpu but the node advertises 6" in w for w in node.warnings)


def test_an_absurd_amd_vram_size_label_is_a_warning_not_a_crash() -> None:
    """5,000 digits in the legacy per-size label: int() of them was a ValueError. (Not a table row:
    the key is longer than Kubernetes allows, and the table is also served to the API-server double
    in tests/kueue.)"""
    labels = {"amd.com/gpu.device-id": "74a1", "amd.com/gpu.vram." + "9" * 5000 + "G": "8"}
    node = parse_node(node_dict("n", labels, {"amd.com/gpu": 8}))
    assert node.gpu_type == "AMD Instinct MI300X 192GB"
    assert [(d.accelerator, d.count, d.memory_gib) for d in node.devices] == [("amd-mi300x-192gb", 8, None)]
    assert any("not a GPU memory size" in w for w in node.warnings), node.warnings


MIXED = "nvidia-a100-80gb=4,nvidia-v100-16gb=4"


def test_several_types_are_declared_in_the_annotation_without_a_warning() -> None:
    """Kubernetes refuses '=' and ',' in label values, so a mixed node is declared in an annotation."""
    node = parse_node(
        node_dict("n", {}, {"nvidia.com/gpu": 8}, annotations={"budcore.io/accelerators": MIXED})
    )
    assert [(d.accelerator, d.count) for d in node.devices] == [
        ("nvidia-a100-80gb", 4),
        ("nvidia-v100-16gb", 4),
    ]
    assert not any("label value" in w for w in node.warnings), node.warnings


def test_the_annotation_wins_over_the_labels_and_names_itself_in_warnings() -> None:
    node = parse_node(
        node_dict(
            "n",
            {"budcore.io/accelerator": "nvidia-h200-141gb"},
            {"nvidia.com/gpu": 2},
            annotations={"budcore.io/accelerators": "acme-x1=2"},
        )
    )
    assert [(d.accelerator, d.count) for d in node.devices] == [(None, 2)]
    assert any(w.startswith("annotation budcore.io/accelerators names 'acme-x1'") for w in node.warnings), (
        node.warnings
    )


def test_a_declaration_kubernetes_would_refuse_as_a_label_is_read_with_a_warning() -> None:
    node = parse_node(node_dict("n", {"budcore.io/accelerators": MIXED}, {"nvidia.com/gpu": 8}))
    assert len(node.devices) == 2
    assert any(
        "not a valid Kubernetes label value" in w and "annotation budcore.io/accelerators" in w
        for w in node.warnings
    ), node.warnings


@pytest.mark.parametrize("value", ["nvidia-h200-141gb", "a" * 63])
def test_a_valid_label_value_gets_no_label_warning(value: str) -> None:
    node = parse_node(node_dict("n", {"budcore.io/accelerator": value}, {"nvidia.com/gpu": 8}))
    assert not any("label value" in w for w in node.warnings), node.warnings


def test_annotations_that_are_not_a_mapping_are_an_error_naming_the_field() -> None:
    data = node_dict("n", {}, {"nvidia.com/gpu": 8})
    data["metadata"]["annotations"] = ["budcore.io/accelerators"]
    with pytest.raises(ValidationError) as info:
        parse_node(data)
    assert info.value.path == "node.metadata.annotations"


def test_mig_slice_is_never_a_whole_gpu() -> None:
    node = parse_node(
        node_dict(
            "m",
            {GFD + "product": "NVIDIA-A100-SXM4-80GB-MIG-3g.40gb", GFD + "count": "14"},
            {"nvidia.com/gpu": 14},
        )
    )
    (device,) = node.devices
    assert not device.whole and device.memory_gib == 40.0
    assert physical_gpus(node.devices) == 7  # 2 slices per GPU


def test_time_slicing_counts_physical_and_replicas() -> None:
    node = parse_node(
        node_dict(
            "t",
            {
                GFD + "product": "Tesla-T4-SHARED",
                GFD + "count": "2",
                GFD + "replicas": "4",
                GFD + "memory": "15360",
            },
            {"nvidia.com/gpu": 8},
        )
    )
    (device,) = node.devices
    assert (device.count, device.replicas, device.allocatable) == (2, 4, 8)
    assert node.accelerator_count == 2


def test_partial_labels_do_not_affect_other_nodes() -> None:
    fleet = parse_nodes(
        [
            node_dict(
                "good",
                {GFD + "product": "NVIDIA-H200", GFD + "count": "8", GFD + "memory": "143771"},
                {"nvidia.com/gpu": 8},
            ),
            node_dict("bare", {}, {"nvidia.com/gpu": 8}),
            node_dict(
                "garbage",
                {GFD + "product": "NVIDIA-H200", GFD + "count": "eight", GFD + "memory": "lots"},
                {"nvidia.com/gpu": 8},
            ),
        ]
    )
    good, bare, garbage = fleet.nodes
    assert good.gpu_type == "NVIDIA H200 141GB" and good.warnings == ()
    assert bare.gpu_type == UNKNOWN_TYPE
    assert garbage.gpu_type == "NVIDIA H200 141GB"
    assert garbage.devices[0].count == 8  # from allocatable after the bad count label
    assert any("not a whole number" in w for w in garbage.warnings)
    assert any(w.startswith("bare: ") for w in fleet.warnings)


def test_admin_override_parameter_replaces_detection() -> None:
    fleet = parse_nodes([node_dict("n1", {}, {"nvidia.com/gpu": 8})], overrides={"n1": "nvidia-a100-80gb"})
    (node,) = fleet.nodes
    assert node.gpu_type == "NVIDIA A100 80GB"
    assert node.devices[0].source == "override"


def test_override_for_missing_node_is_an_error() -> None:
    with pytest.raises(ValidationError, match="not in the fleet"):
        parse_nodes([node_dict("n1", {}, {})], overrides={"n2": "nvidia-a100-80gb"})


def test_kubectl_list_dump_and_domain_nodes() -> None:
    text = """
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata:
    name: worker-node-17
    labels:
      nvidia.com/gpu.product: NVIDIA-H200
      nvidia.com/gpu.count: "8"
      nvidia.com/gpu.memory: "143771"
  spec: {unschedulable: true}
  status:
    capacity: {cpu: "224", memory: 2113536Mi, nvidia.com/gpu: "8"}
    allocatable: {cpu: "223500m", memory: 2097152Mi, nvidia.com/gpu: "8", pods: "110"}
"""
    fleet = parse_nodes_yaml(text, source="nodes.yaml")
    (node,) = fleet.nodes
    assert node.host_memory_bytes == 2113536 * 2**20
    domain = fleet.domain_nodes()[0]
    assert isinstance(domain, Node)
    assert domain.allocatable["cpu"] == 223500
    assert domain.allocatable["nvidia.com/gpu"] == 8000
    assert domain.labels["nvidia.com/gpu.product"] == "NVIDIA-H200"
    assert domain.schedulable is False


@pytest.mark.parametrize(
    ("data", "message", "path"),
    [
        ({"kind": "List", "items": "x"}, "expected a list", "items"),
        ([{"metadata": {}}], "no name", "items[0].metadata.name"),
        ([{"metadata": {"name": "a", "labels": ["x"]}}], "mapping of label", "items[0].metadata.labels"),
        (
            [{"metadata": {"name": "a"}, "status": {"allocatable": {"cpu": "lots"}}}],
            "invalid quantity",
            "items[0].status.allocatable.cpu",
        ),
        ([node_dict("a"), node_dict("a")], "appears twice", "items[1].metadata.name"),
        (42, "expected a list", ""),
    ],
)
def test_bad_input_names_the_field(data: Any, message: str, path: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_nodes(data)
    assert message in info.value.message
    assert info.value.path == path


def test_invalid_yaml_reports_source_and_line() -> None:
    with pytest.raises(ValidationError) as info:
        parse_nodes_yaml("items:\n  - [\n", source="nodes.yaml")
    assert info.value.source == "nodes.yaml" and info.value.line is not None


def test_gfd_family_and_compute_capability_are_kept() -> None:
    labels = {
        GFD + "product": "NVIDIA-H100-NVL",
        GFD + "count": "2",
        GFD + "family": "Hopper",
        GFD + "compute.major": "9",
        GFD + "compute.minor": "0",
    }
    (device,) = parse_node(node_dict("nvl", labels, {"nvidia.com/gpu": 2})).devices
    assert device.accelerator is None  # not in the catalog ...
    assert (device.architecture, device.compute_capability) == (
        "hopper",
        "9.0",
    )  # ... but its family is known
    (known,) = parse_node(node_dict("h", {GFD + "product": "NVIDIA-L4", GFD + "count": "1"})).devices
    assert known.architecture == "ada-lovelace"  # the catalog's name wins


# Out-of-bound numbers in a node dump ----------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "resource", "value", "message"),
    [
        ("allocatable", "nvidia.com/gpu", "1e308", "above the maximum of 4,096 devices per node"),
        ("allocatable", "nvidia.com/gpu", 2**63, "above the maximum of 4,096 devices per node"),
        ("allocatable", "nvidia.com/gpu", str(2**63), "above the maximum"),
        ("allocatable", "habana.ai/gaudi", "4097", "above the maximum of 4,096 devices"),
        ("allocatable", "nvidia.com/mig-1g.10gb", "1e9", "above the maximum"),
        (
            "allocatable",
            "nvidia.com/gpu",
            "1e999999",
            "above the maximum of 4,096 devices per node",
        ),  # decimal.Overflow, not a traceback
        ("allocatable", "nvidia.com/gpu", "500m", "not a whole number of devices"),
        ("allocatable", "cpu", "1e9", "above the maximum of 100,000 cores per node"),
        ("allocatable", "memory", "2Ei", "above the maximum of 1,152,921,504,606,846,976 bytes"),
        ("allocatable", "pods", 2**63, "above the maximum"),
        ("capacity", "amd.com/gpu", "1e308", "above the maximum of 4,096 devices"),
    ],
)
def test_allocatable_beyond_any_node_is_an_error_naming_node_and_field(
    section: str, resource: str, value: Any, message: str
) -> None:
    node = node_dict("gpu-7", {GFD + "product": "NVIDIA-H100-80GB-HBM3"}, {"nvidia.com/gpu": 8})
    node["status"][section] = {**node["status"][section], resource: value}
    with pytest.raises(ValidationError) as info:
        parse_nodes([node_dict("ok", {}, {"cpu": "8"}), node])
    error = info.value
    assert error.path == f"items[1].status.{section}.{resource}"
    assert "node 'gpu-7'" in error.message and resource in error.message and message in error.message
    assert "\n" not in str(error)


def test_out_of_bound_allocatable_in_a_dump_names_file_line_and_field() -> None:
    text = """apiVersion: v1
kind: List
items:
- metadata: {name: a}
  status: {allocatable: {nvidia.com/gpu: "8"}}
- metadata: {name: b}
  status:
    allocatable:
      nvidia.com/gpu: "1e308"
"""
    with pytest.raises(ValidationError) as info:
        parse_nodes_yaml(text, source="nodes.yaml")
    assert str(info.value) == (
        "nodes.yaml: items[1].status.allocatable.nvidia.com/gpu: node 'b': nvidia.com/gpu = '1e308' "
        "is above the maximum of 4,096 devices per node"
    )


def test_large_but_real_nodes_are_accepted() -> None:
    node = parse_node(
        node_dict(
            "big",
            {
                GFD + "product": "Tesla-T4-SHARED",
                GFD + "count": "8",
                GFD + "replicas": "48",
                GFD + "memory": "15360",
            },
            {
                "nvidia.com/gpu": 384,
                "cpu": "1920",
                "memory": "32Ti",
                "ephemeral-storage": "500Ti",
                "hugepages-1Gi": "1Ti",
                "pods": "2500",
            },
        )
    )
    assert (node.accelerator_count, node.devices[0].replicas) == (8, 48)
    assert node.warnings == ()


@pytest.mark.parametrize(
    "number",
    ["9" * 5000, "1" + "0" * 400, "0x" + "f" * 50_000, "1" + ":0" * 100_000, "1" + ":0" * 200 + ".5"],
)
def test_a_dump_number_too_large_for_any_field_names_file_line_and_field(number: str) -> None:
    text = (
        "apiVersion: v1\nkind: List\nitems:\n- metadata: {name: n0}\n  status:\n"
        f"    allocatable: {{nvidia.com/gpu: {number}, cpu: 8}}\n"
    )
    with pytest.raises(ValidationError) as info:
        parse_nodes_yaml(text, source="nodes.yaml")
    error = info.value
    assert (error.source, error.line, error.path) == (
        "nodes.yaml",
        6,
        "items[0].status.allocatable.nvidia.com/gpu",
    )
    assert "out of range" in error.message
    assert "\n" not in str(error) and len(str(error)) < 300


def test_a_dump_scalar_yaml_cannot_construct_is_an_error_at_its_line() -> None:
    text = "- metadata: {name: n0, creationTimestamp: 2024-02-30T00:00:00Z}\n"
    with pytest.raises(ValidationError, match="day is out of range") as info:
        parse_nodes_yaml(text, source="nodes.yaml")
    assert (info.value.line, info.value.path) == (1, "[0].metadata.creationTimestamp")
