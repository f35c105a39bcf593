"""The accelerator catalog: coverage, figures, alias resolution, overrides, round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.hardware.catalog import (
    Accelerator,
    CatalogDocument,
    Citation,
    Interconnect,
    MigProfile,
    catalog_from,
    default_catalog,
    dump_catalog,
    load_catalog,
    normalize_product,
    parse_catalog,
)
from budcore.testing.examples import examples

REQUIRED = [
    "nvidia-p100-16gb",
    "nvidia-p100-pcie-16gb",
    "nvidia-p100-pcie-12gb",
    "nvidia-t4-16gb",
    "nvidia-a10-24gb",
    "nvidia-l4-24gb",
    "nvidia-a10g-24gb",
    "nvidia-l40s-48gb",
    "nvidia-v100-16gb",
    "nvidia-v100-32gb",
    "nvidia-a100-40gb",
    "nvidia-a100-80gb",
    "nvidia-h100-80gb",
    "nvidia-h100-pcie-80gb",
    "nvidia-h200-141gb",
    "nvidia-b200-180gb",
    "amd-mi250x-128gb",
    "amd-mi300x-192gb",
    "intel-gaudi2-96gb",
    "intel-gaudi3-128gb",
    "intel-max1550-128gb",
]


def test_catalog_is_versioned_and_covers_the_required_accelerators() -> None:
    catalog = default_catalog()
    assert catalog.version
    for slug in REQUIRED:
        accel = catalog.get(slug)
        assert accel is not None, slug
        assert accel.memory_gib > 0 and accel.memory_bandwidth_gbs > 0
    for accel in catalog.accelerators:  # every built-in figure cites its datasheet
        assert accel.source.url is not None and accel.source.url.startswith("https://"), accel.slug


def test_pcie_and_sxm_are_distinct_with_their_own_figures() -> None:
    catalog = default_catalog()
    sxm, pcie = catalog.get("nvidia-h100-80gb"), catalog.get("nvidia-h100-pcie-80gb")
    assert sxm is not None and pcie is not None
    assert (sxm.form_factor, pcie.form_factor) == ("sxm", "pcie")
    assert sxm.memory_bandwidth_gbs == 3350 and pcie.memory_bandwidth_gbs == 2000
    assert sxm.bf16_tflops == 989.5 and pcie.bf16_tflops == 756.5  # dense, not the sparse 1979/1513


def test_mig_profiles_per_generation() -> None:
    catalog = default_catalog()
    a40, a80, h100 = (catalog.get(s) for s in ("nvidia-a100-40gb", "nvidia-a100-80gb", "nvidia-h100-80gb"))
    assert a40 is not None and a80 is not None and h100 is not None
    assert [p.name for p in a40.mig_profiles] == [
        "1g.5gb",
        "1g.10gb",
        "2g.10gb",
        "3g.20gb",
        "4g.20gb",
        "7g.40gb",
    ]
    assert [p.name for p in a80.mig_profiles] == [
        "1g.10gb",
        "1g.20gb",
        "2g.20gb",
        "3g.40gb",
        "4g.40gb",
        "7g.80gb",
    ]
    assert a80.mig_profiles == h100.mig_profiles
    slice_ = a80.mig_profile("3g.40gb")
    assert slice_ is not None and slice_.memory_gib == 40 and slice_.resource_name == "nvidia.com/mig-3g.40gb"
    assert catalog.get("nvidia-t4-16gb").mig_profiles == ()  # type: ignore[union-attr]


def test_resource_names_and_pci_vendors() -> None:
    catalog = default_catalog()
    expect = {
        "nvidia-a100-80gb": ("nvidia.com/gpu", "10de"),
        "amd-mi300x-192gb": ("amd.com/gpu", "1002"),
        "intel-gaudi2-96gb": ("habana.ai/gaudi", "1da3"),  # Habana's PCI vendor, not Intel's 8086
        "intel-gaudi3-128gb": ("habana.ai/gaudi", "1da3"),
        "intel-max1550-128gb": ("gpu.intel.com/i915", "8086"),
    }
    for slug, (resource, vendor) in expect.items():
        accel = catalog.get(slug)
        assert accel is not None
        assert (accel.resource_name, accel.pci_vendor) == (resource, vendor)
    assert catalog.by_pci("1da3", "1020").slug == "intel-gaudi2-96gb"  # type: ignore[union-attr]


def test_datasheet_figures_of_the_trace_models() -> None:
    """P100 and A10 as their datasheets give them; BF16 only where the silicon has it."""
    catalog = default_catalog()
    figures = {
        # slug: (memory GiB, GB/s, FP16 TFLOPS, BF16 TFLOPS, interconnect kind, its GB/s, PCI id)
        "nvidia-p100-16gb": (16, 732, 21.2, None, "nvlink", 160, "15f9"),
        "nvidia-p100-pcie-16gb": (16, 732, 18.7, None, "pcie", 32, "15f8"),
        "nvidia-p100-pcie-12gb": (12, 549, 18.7, None, "pcie", 32, "15f7"),
        "nvidia-a10-24gb": (24, 600, 125, 125, "pcie", 64, "2236"),
        "nvidia-t4-16gb": (16, 320, 65, None, "pcie", 32, "1eb8"),
        "nvidia-v100-16gb": (16, 900, 125, None, "nvlink", 300, "1db1"),
        "nvidia-v100-32gb": (32, 900, 125, None, "nvlink", 300, "1db5"),
    }
    for slug, (memory, bandwidth, fp16, bf16, link, link_gbs, pci) in figures.items():
        accel = catalog.get(slug)
        assert accel is not None, slug
        assert (accel.memory_gib, accel.memory_bandwidth_gbs) == (memory, bandwidth), slug
        assert (accel.fp16_tflops, accel.bf16_tflops, accel.fp8_tflops) == (fp16, bf16, None), slug
        assert (accel.interconnect.kind, accel.interconnect.bandwidth_gbs) == (link, link_gbs), slug
        assert catalog.by_pci("10de", pci) == accel
        assert accel.mig_profiles == ()
    assert {a.architecture for a in catalog.accelerators if a.short_name == "P100"} == {"pascal"}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("memory_gib", "1.0e+308", "less than or equal to 1048576"),
        ("memory_gib", ".inf", "less than or equal to"),
        ("memory_bandwidth_gbs", ".nan", ""),
        ("bf16_tflops", "1.0e+300", "less than or equal to"),
        ("logical_devices", "1000", "less than or equal to 64"),
    ],
)
def test_catalog_figures_beyond_any_accelerator_are_rejected(
    tmp_path: Path, field: str, value: str, message: str
) -> None:
    extra = tmp_path / "site.yaml"
    extra.write_text(f"accelerators:\n  - slug: nvidia-t4-16gb\n    {field}: {value}\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        load_catalog(extra)
    assert info.value.path.endswith(field) and message in info.value.message
    assert info.value.source == str(extra)


def test_with_extra_adds_models_and_refuses_to_rename_known_ones() -> None:
    base = default_catalog()
    t4 = base.get("nvidia-t4-16gb")
    assert t4 is not None
    g1 = t4.model_copy(
        update={
            "slug": "g1",
            "display_name": "G1",
            "short_name": "G1",
            "aliases": ("G1",),
            "pci_device_ids": (),
            "source": Citation(title="ours"),
        }
    )
    extended = base.with_extra([g1], source="trace.yaml")
    assert extended.resolve("G1") == g1 and extended.get("g1") == g1
    assert len(extended) == len(base) + 1 and extended.version == f"{base.version}+trace.yaml"
    assert base.resolve("G1") is None  # the original is untouched
    assert base.with_extra([]) is base
    with pytest.raises(ValidationError) as info:
        base.with_extra([t4])
    assert info.value.path == "[0].slug" and "already in the catalog" in info.value.message
    with pytest.raises(ValidationError) as info:
        base.with_extra([g1, g1])
    assert info.value.path == "[1].slug" and "appears twice" in info.value.message
    with pytest.raises(ValidationError) as info:
        base.with_extra([g1.model_copy(update={"aliases": ("G1", "Tesla-T4")})])
    assert info.value.path == "[0].aliases[1]" and "'nvidia-t4-16gb'" in info.value.message


def test_mi250x_is_two_kubernetes_devices() -> None:
    mi250x = default_catalog().get("amd-mi250x-128gb")
    assert mi250x is not None
    assert mi250x.logical_devices == 2
    assert mi250x.device_memory_gib == 64
    assert mi250x.device_peak_tflops("bf16") == 191.5


@pytest.mark.parametrize(
    ("product", "slug"),
    [
        ("NVIDIA-H100-80GB-HBM3", "nvidia-h100-80gb"),
        ("A100-SXM4-80GB", "nvidia-a100-80gb"),
        ("NVIDIA-A100-SXM4-80GB", "nvidia-a100-80gb"),
        ("nvidia-a100-sxm4-80gb", "nvidia-a100-80gb"),
        ("NVIDIA-A100-SXM4-80GB-SHARED", "nvidia-a100-80gb"),
        ("NVIDIA-A100-SXM4-80GB-MIG-1g.10gb", "nvidia-a100-80gb"),
        ("NVIDIA-A100-SXM4-80GB-MIG-3g.40gb-SHARED", "nvidia-a100-80gb"),
        ("A100-SXM4-40GB", "nvidia-a100-40gb"),
        ("NVIDIA-A100-80GB-PCIe", "nvidia-a100-pcie-80gb"),
        ("NVIDIA-H100-PCIe", "nvidia-h100-pcie-80gb"),
        ("Tesla-T4", "nvidia-t4-16gb"),
        ("Tesla-T4-SHARED", "nvidia-t4-16gb"),
        ("NVIDIA-L4", "nvidia-l4-24gb"),
        ("NVIDIA-A10G", "nvidia-a10g-24gb"),
        ("NVIDIA-L40S", "nvidia-l40s-48gb"),
        ("Tesla-V100-SXM2-16GB", "nvidia-v100-16gb"),
        ("Tesla-V100-PCIE-32GB", "nvidia-v100-pcie-32gb"),
        ("NVIDIA-H200", "nvidia-h200-141gb"),
        ("NVIDIA-B200", "nvidia-b200-180gb"),
        ("AMD_Instinct_MI300X", "amd-mi300x-192gb"),
        ("AMD Instinct MI250X", "amd-mi250x-128gb"),
        ("Gaudi2", "intel-gaudi2-96gb"),
        ("HL-325L", "intel-gaudi3-128gb"),
        ("Intel_Data_Center_GPU_Max_1550", "intel-max1550-128gb"),
        ("nvidia-h200-141gb", "nvidia-h200-141gb"),
        # The model names of Alibaba's openb GPU trace (2023).
        ("P100", "nvidia-p100-16gb"),
        ("T4", "nvidia-t4-16gb"),
        ("V100M16", "nvidia-v100-16gb"),
        ("V100M32", "nvidia-v100-32gb"),
        ("A10", "nvidia-a10-24gb"),
        # GFD products and nvidia-smi names of the same parts.
        ("Tesla-V100-SXM2-32GB", "nvidia-v100-32gb"),
        ("Tesla V100-SXM2-16GB", "nvidia-v100-16gb"),
        ("V100-32GB", "nvidia-v100-32gb"),
        ("Tesla-P100-SXM2-16GB", "nvidia-p100-16gb"),
        ("Tesla-P100-PCIE-16GB", "nvidia-p100-pcie-16gb"),
        ("Tesla P100-PCIE-12GB", "nvidia-p100-pcie-12gb"),
        ("NVIDIA-A10", "nvidia-a10-24gb"),
        ("NVIDIA A10", "nvidia-a10-24gb"),
    ],
)
def test_alias_resolution(product: str, slug: str) -> None:
    accel = default_catalog().resolve(product)
    assert accel is not None and accel.slug == slug


@pytest.mark.parametrize(
    ("product", "memory", "slug"),
    [
        ("NVIDIA-A100", 40.0, "nvidia-a100-40gb"),
        ("NVIDIA-A100", 80.0, "nvidia-a100-80gb"),
        ("NVIDIA-A100-PCIE", 79.2, "nvidia-a100-pcie-80gb"),
        ("NVIDIA-H200", 140.4, "nvidia-h200-141gb"),
    ],
)
def test_resolution_uses_memory_when_the_string_is_ambiguous(product: str, memory: float, slug: str) -> None:
    accel = default_catalog().resolve(product, memory)
    assert accel is not None and accel.slug == slug


@pytest.mark.parametrize(
    "product", ["NVIDIA-A100", "NVIDIA-H100-NVL", "GeForce-GTX-1080", "", "   ", "QUANTUM-X"]
)
def test_unknown_or_ambiguous_products_are_none(product: str) -> None:
    assert default_catalog().resolve(product) is None


def test_unknown_lookups_return_none() -> None:
    catalog = default_catalog()
    assert catalog.get("nvidia-rtx-9090") is None
    assert catalog.by_pci("10de", "ffff") is None
    assert "nvidia-rtx-9090" not in catalog


def test_normalize_product() -> None:
    assert normalize_product(" NVIDIA-A100-SXM4-80GB-MIG-1g.10gb-SHARED ") == "A100-SXM4-80GB"
    assert normalize_product("amd_instinct  mi300x") == "INSTINCT-MI300X"
    assert normalize_product("Tesla-T4") == "T4"


def test_builtin_catalog_round_trips() -> None:
    document = default_catalog().document
    assert parse_catalog(dump_catalog(document)) == document


def test_override_merges_by_slug_and_adds_new(tmp_path: Path) -> None:
    extra = tmp_path / "mine.yaml"
    extra.write_text(
        """
version: site-1
accelerators:
  - slug: nvidia-a100-80gb
    aliases: [A100-SXM4-80GB, OUR-A100]
  - slug: acme-x1-32gb
    display_name: ACME X1 32GB
    short_name: X1
    vendor: acme
    architecture: acme1
    memory_gib: 32
    memory_bandwidth_gbs: 1000
    bf16_tflops: 100
    resource_name: acme.com/x1
    source: {title: ACME X1 datasheet, url: "https://acme.example/x1.pdf"}
""",
        encoding="utf-8",
    )
    catalog = load_catalog(extra)
    assert catalog.version.endswith("+site-1")
    a100 = catalog.resolve("OUR-A100")
    assert a100 is not None and a100.slug == "nvidia-a100-80gb"
    assert a100.memory_bandwidth_gbs == 2039  # untouched fields kept
    assert catalog.get("acme-x1-32gb") is not None
    assert len(catalog) == len(default_catalog()) + 1


def test_incomplete_new_entry_names_the_field(tmp_path: Path) -> None:
    extra = tmp_path / "bad.yaml"
    extra.write_text("accelerators:\n  - slug: acme-x2-16gb\n    display_name: X2\n", encoding="utf-8")
    with pytest.raises(ValidationErrors) as info:
        load_catalog(extra)
    paths = {e.path for e in info.value.errors}
    assert any(p.endswith(".memory_gib") for p in paths)
    assert all(e.source == str(extra) for e in info.value.errors)


def test_invalid_figures_are_rejected() -> None:
    text = dump_catalog(default_catalog().document).replace("memory_gib: 80.0", "memory_gib: -80.0", 1)
    with pytest.raises(ValidationError) as info:
        parse_catalog(text, source="x.yaml")
    assert "memory_gib" in str(info.value)


def test_duplicate_slugs_and_bad_yaml() -> None:
    with pytest.raises(ValidationError, match="invalid YAML"):
        parse_catalog("version: [", source="x.yaml")
    with pytest.raises(ValidationError, match="out of range") as info:  # int() raised ValueError
        parse_catalog("version: 1\naccelerators:\n  - " + "9" * 5000 + "\n", source="x.yaml")
    assert info.value.line == 3
    accel = default_catalog().get("nvidia-t4-16gb")
    assert accel is not None
    with pytest.raises(ValidationError, match="appears twice"):
        parse_catalog(dump_catalog(CatalogDocument.model_construct(version="1", accelerators=(accel, accel))))


def test_mig_name_must_agree_with_fields() -> None:
    with pytest.raises(ValueError, match="compute_slices"):
        MigProfile(name="3g.40gb", compute_slices=2, memory_gib=40, max_instances=2)


def test_missing_override_file_is_a_validation_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read"):
        load_catalog(tmp_path / "nope.yaml")


# Round trip of arbitrary catalogs --------------------------------------------------------------

_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_slugs = st.lists(_words, min_size=1, max_size=4).map("-".join)
_pos = st.floats(min_value=0.5, max_value=1e5, allow_nan=False, allow_infinity=False)
_hex = st.text(alphabet="0123456789abcdef", min_size=4, max_size=4)


@st.composite
def _mig(draw: st.DrawFn) -> MigProfile:
    g = draw(st.integers(1, 7))
    mem = draw(st.integers(1, 200))
    return MigProfile(
        name=f"{g}g.{mem}gb", compute_slices=g, memory_gib=mem, max_instances=draw(st.integers(1, 7))
    )


@st.composite
def _accelerator(draw: st.DrawFn, slug: str) -> Accelerator:
    migs = draw(st.lists(_mig(), max_size=3, unique_by=lambda m: m.name))
    return Accelerator(
        slug=slug,
        display_name=draw(st.text(min_size=1, max_size=20).filter(str.strip)),
        short_name=draw(_words),
        vendor=draw(st.sampled_from(["nvidia", "amd", "intel", "acme"])),
        architecture=draw(st.sampled_from(["hopper", "ampere", "cdna3", "x1"])),
        memory_gib=draw(_pos),
        memory_bandwidth_gbs=draw(_pos),
        bf16_tflops=draw(st.none() | _pos),
        fp16_tflops=draw(st.none() | _pos),
        fp8_tflops=draw(st.none() | _pos),
        form_factor=draw(st.sampled_from(["pcie", "sxm", "oam"])),
        interconnect=Interconnect(
            kind=draw(st.sampled_from(["pcie", "nvlink"])),
            domain_size=draw(st.integers(1, 72)),
            bandwidth_gbs=draw(st.none() | _pos),
        ),
        logical_devices=draw(st.integers(1, 2)),
        resource_name=draw(st.sampled_from(["nvidia.com/gpu", "amd.com/gpu", "habana.ai/gaudi"])),
        pci_vendor=draw(st.none() | _hex),
        pci_device_ids=tuple(draw(st.lists(_hex, max_size=2))),
        aliases=tuple(draw(st.lists(st.text(min_size=1, max_size=12), max_size=3))),
        mig_profiles=tuple(migs),
        source=Citation(
            title=draw(st.text(min_size=1, max_size=30)), url="https://example.com/" + draw(_words)
        ),
    )


@st.composite
def _documents(draw: st.DrawFn) -> CatalogDocument:
    slugs = draw(st.lists(_slugs, min_size=0, max_size=4, unique=True))
    return CatalogDocument(
        version=draw(st.text(min_size=1, max_size=10)),
        accelerators=tuple(draw(_accelerator(s)) for s in slugs),
    )


@settings(max_examples=examples(60))
@given(_documents())
def test_catalog_load_dump_load_round_trip(document: CatalogDocument) -> None:
    text = dump_catalog(document)
    again = parse_catalog(text)
    assert again == document
    assert dump_catalog(again) == text
    catalog = catalog_from(again.accelerators)
    for accel in again.accelerators:
        assert catalog.get(accel.slug) == accel
        assert catalog.resolve(accel.slug) is not None
