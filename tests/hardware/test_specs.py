"""User-supplied accelerator specs: the openb trace's undisclosed G1-G3 become catalog models, and
every mistake in a specs file is one line naming the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from budcore.config.yamlsource import load_yaml_text
from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.hardware.catalog import default_catalog
from budcore.hardware.labels import node_dict, parse_nodes
from budcore.hardware.profiles import build_profiles
from budcore.hardware.specs import (
    MAX_SPECS,
    AcceleratorSpec,
    accelerator_specs,
    catalog_with_specs,
    load_accelerator_specs,
    parse_accelerator_specs,
)

OPENB = """\
# What a planner assumes about the openb trace's undisclosed models.
accelerators:
  - name: G1
    memory_gib: 24
    memory_bandwidth_gbs: 600
  - name: G2
    memory_gib: 32
    memory_bandwidth_gbs: 900
    fp16_tflops: 125
    vendor: nvidia
    architecture: volta
    aliases: [G2-32GB]
  - name: G3
    slug: undisclosed-g3
    memory_gib: 48
    memory_bandwidth_gbs: 864
    bf16_tflops: 181
    interconnect: {kind: nvlink, domain_size: 8, bandwidth_gbs: 600}
    source: {title: vendor briefing, url: "https://example.com/g3"}
"""


def _write(tmp_path: Path, text: str | bytes, name: str = "specs.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_the_openb_undisclosed_models_become_catalog_entries(tmp_path: Path) -> None:
    path = _write(tmp_path, OPENB)
    g1, g2, g3 = load_accelerator_specs(path)
    assert (g1.slug, g1.memory_gib, g1.memory_bandwidth_gbs, g1.vendor) == ("g1", 24, 600, "unknown")
    assert g1.resource_name == "nvidia.com/gpu" and g1.bf16_tflops is None and g1.fp16_tflops is None
    assert g1.source.url is None and g1.source.title == f"user-supplied specification ({path}:3)"
    assert g2.aliases == ("G2", "G2-32GB") and g2.architecture == "volta" and g2.fp16_tflops == 125
    assert g3.slug == "undisclosed-g3" and g3.interconnect.domain_size == 8
    assert g3.source.url == "https://example.com/g3"

    catalog = catalog_with_specs(path)
    assert catalog.version == f"{default_catalog().version}+specs.yaml"
    for name, slug in (
        ("G1", "g1"),
        ("g2-32gb", "g2"),
        ("G3", "undisclosed-g3"),
        ("V100M32", "nvidia-v100-32gb"),
    ):
        accel = catalog.resolve(name)
        assert accel is not None and accel.slug == slug, name
    # The extended catalog is what the node parser and the profiles take.
    fleet = parse_nodes(
        [node_dict("n1", {"budcore.io/accelerator": "G1"}, {"nvidia.com/gpu": 8})], catalog=catalog
    )
    (device,) = fleet.nodes[0].devices
    assert (device.accelerator, device.memory_gib) == ("g1", 24.0) and fleet.nodes[0].warnings == ()
    (profile,) = build_profiles(fleet, catalog=catalog, include_generic=False)
    assert profile.name == "g1" and profile.device_memory_gib(catalog) == 24


def test_a_bare_list_and_already_loaded_specs_work_too() -> None:
    specs = parse_accelerator_specs("- {name: G1, memory_gib: 24, memory_bandwidth_gbs: 600}\n")
    assert [a.slug for a in specs] == ["g1"]
    assert catalog_with_specs(specs).get("g1") == specs[0]
    spec = AcceleratorSpec(name="G9", memory_gib=8, memory_bandwidth_gbs=300)
    assert spec.to_accelerator().slug == "g9"


def test_a_section_of_a_larger_document_reports_lines_in_that_document() -> None:
    """How a scenario would embed specs: its own YAML, its own path prefix, its own lines."""
    text = """\
name: openb-replay
fleet:
  nodes_file: nodes.csv
  accelerators:
    - name: G1
      memory_gib: 24
      memory_bandwidth_gbs: 600
    - name: G2
      memory_gib: -3
      memory_bandwidth_gbs: 600
"""
    (document,) = load_yaml_text(text, "scenario.yaml")
    with pytest.raises(ValidationError) as info:
        accelerator_specs(
            document.data["fleet"]["accelerators"],
            source="scenario.yaml",
            line_of=document.line_of,
            prefix="fleet.accelerators",
        )
    assert (
        str(info.value) == "scenario.yaml:9: fleet.accelerators[1].memory_gib: Input should be greater than 0"
    )


def test_every_problem_of_a_file_is_one_line_with_file_line_and_field(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """\
accelerators:
  - name: G1
    memory_bandwidth_gbs: 600
  - name: G2
    memory_gib: 1.0e+308
    memory_bandwidth_gbs: .inf
  - name: G3
    memory_gib: 32
    memory_bandwidth_gbs: 900
    colour: green
  - name: G4
    memory_gib: 16
    memory_bandwidth_gbs: 300
    resource_name: "not a resource!"
  - name: G5
    slug: Not A Slug
    memory_gib: 16
    memory_bandwidth_gbs: 300
  - just a string
""",
    )
    with pytest.raises(ValidationErrors) as info:
        load_accelerator_specs(path)
    lines = [str(e) for e in info.value.errors]
    assert lines == [
        f"{path}:2: accelerators[0].memory_gib: Field required",
        f"{path}:5: accelerators[1].memory_gib: Input should be less than or equal to 1048576",
        f"{path}:6: accelerators[1].memory_bandwidth_gbs: Input should be a finite number",
        f"{path}:10: accelerators[2].colour: unknown field",
        f"{path}:14: accelerators[3].resource_name: invalid resource name 'not a resource!'",
        f"{path}:16: accelerators[4].slug: slug 'Not A Slug' must be lowercase words joined by '-', "
        "e.g. 'nvidia-h100-80gb'",
        f"{path}:19: accelerators[5]: expected a mapping, got str",
    ]
    assert all("\n" not in line for line in lines)


@pytest.mark.parametrize(
    ("entry", "path", "message"),
    [
        (
            "{name: T4, memory_gib: 16, memory_bandwidth_gbs: 300}",
            "[0].name",
            "already names 'nvidia-t4-16gb'",
        ),
        (
            "{name: G1, aliases: [x, Tesla-V100-SXM2-16GB], memory_gib: 16, memory_bandwidth_gbs: 300}",
            "[0].aliases[1]",
            "already names 'nvidia-v100-16gb'",
        ),
        (
            "{name: G1, slug: nvidia-a10-24gb, memory_gib: 16, memory_bandwidth_gbs: 300}",
            "[0].slug",
            "already in the catalog",
        ),
        ("{name: '  ', memory_gib: 16, memory_bandwidth_gbs: 300}", "[0].name", "must not be empty"),
        ('{name: "G\\x001", memory_gib: 16, memory_bandwidth_gbs: 300}', "[0].name", "control character"),
        ("{name: '!!!', memory_gib: 16, memory_bandwidth_gbs: 300}", "[0].name", "no letters or digits"),
        ("{name: G1, memory_gib: 16, memory_bandwidth_gbs: 300, vendor: ACME}", "[0].vendor", "pattern"),
        (
            "{name: G1, memory_gib: 16, memory_bandwidth_gbs: 300, logical_devices: 0}",
            "[0].logical_devices",
            "",
        ),
        ("{name: G1, memory_gib: true, memory_bandwidth_gbs: 300}", "[0].memory_gib", "got the boolean True"),
    ],
)
def test_specs_that_would_rename_or_break_a_model_are_refused(entry: str, path: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_accelerator_specs(f"accelerators:\n  - {entry}\n", "s.yaml")
    error = info.value
    assert (error.source, error.line, error.path) == ("s.yaml", 2, "accelerators" + path)
    assert message in error.message


def test_two_specs_may_not_share_a_name() -> None:
    text = (
        "- {name: G1, memory_gib: 1, memory_bandwidth_gbs: 2}\n"
        "- {name: g1, memory_gib: 1, memory_bandwidth_gbs: 2}\n"
    )
    with pytest.raises(ValidationError) as info:
        parse_accelerator_specs(text, "s.yaml")
    assert str(info.value) == "s.yaml:2: [1].name: accelerator 'g1' appears twice"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"   \n# only a comment\n", "the file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a text file"),
        (b"accelerators:\n  - name: G\xe91\n", "not UTF-8 text: byte 0xe9 at offset 25"),
        (b"accelerators: []\n", "no accelerator specs"),
        (b"accelerators: {name: G1}\n", "expected a list of accelerator specs, got dict"),
        (b"42\n", "expected a list of accelerator specs, got int"),
        (b"gpus: []\n", "unknown field"),
        (b"accelerators:\n  - [\n", "malformed YAML"),
        (b"- {name: G1, memory_gib: 1, memory_bandwidth_gbs: 2}\n---\n- {name: G2}\n", "found 2"),
    ],
)
def test_unreadable_files_are_one_line_errors_naming_the_file(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(ValidationError) as info:
        load_accelerator_specs(path)
    assert str(path) in str(info.value) and message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_byte_order_mark_is_not_part_of_the_first_key(tmp_path: Path) -> None:
    path = _write(tmp_path, b"\xef\xbb\xbf" + OPENB.encode())
    assert [a.slug for a in load_accelerator_specs(path)] == ["g1", "g2", "undisclosed-g3"]


def test_missing_and_oversized_files(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read accelerator specs"):
        load_accelerator_specs(tmp_path / "nope.yaml")
    too_many = "".join(
        f"- {{name: G{i}, memory_gib: 1, memory_bandwidth_gbs: 1}}\n" for i in range(MAX_SPECS + 1)
    )
    with pytest.raises(ValidationError, match=f"at most {MAX_SPECS}"):
        parse_accelerator_specs(too_many, "big.yaml")
    huge = _write(tmp_path, b"# " + b"x" * (4 * 2**20 + 10), "huge.yaml")
    with pytest.raises(ValidationError, match="larger than 4 MiB"):
        load_accelerator_specs(huge)
