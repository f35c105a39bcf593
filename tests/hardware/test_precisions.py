"""Which number formats each accelerator computes in (the catalog's ``precisions``)."""

from __future__ import annotations

import csv
import io

import pytest

from budcore.cli import main
from budcore.domain.errors import ValidationError
from budcore.hardware.catalog import default_catalog, parse_catalog

CATALOG = default_catalog()

ENTRY = """
version: "test"
accelerators:
  - slug: acme-x1-32gb
    display_name: ACME X1 32GB
    short_name: X1
    vendor: acme
    architecture: acme1
    memory_gib: 32
    memory_bandwidth_gbs: 1000
    fp16_tflops: 100
    resource_name: acme.com/gpu
    source: {title: ACME X1 datasheet}
"""


@pytest.mark.parametrize(
    ("slug", "has", "lacks"),
    [
        ("nvidia-t4-16gb", {"fp32", "fp16"}, {"bf16", "tf32", "fp8"}),  # Turing: fp16 Tensor Cores only
        ("nvidia-v100-32gb", {"fp32", "fp16"}, {"bf16", "tf32", "fp8"}),  # Volta: fp16 only
        ("nvidia-p100-16gb", {"fp32", "fp16"}, {"bf16", "fp8"}),
        ("nvidia-a100-80gb", {"tf32", "bf16", "fp16"}, {"fp8"}),  # Ampere: bf16 and tf32, no fp8
        ("nvidia-a10g-24gb", {"bf16"}, {"fp8"}),  # AWS publishes no bf16 figure; the chip has it
        ("nvidia-h100-80gb", {"bf16", "fp8"}, set()),
        ("nvidia-l4-24gb", {"bf16", "fp8"}, set()),  # Ada has fp8
        ("amd-mi250x-128gb", {"bf16", "fp16"}, {"fp8", "tf32"}),  # CDNA2
        ("amd-mi300x-192gb", {"bf16", "fp8", "tf32"}, set()),  # CDNA3
    ],
)
def test_catalog_precisions(slug: str, has: set[str], lacks: set[str]) -> None:
    accel = CATALOG.get(slug)
    assert accel is not None
    supported = set(accel.supported_precisions)
    assert has <= supported and not lacks & supported


def test_every_built_in_entry_lists_its_precisions() -> None:
    assert all(a.precisions and "fp32" in a.precisions for a in CATALOG.accelerators)


def test_an_entry_without_precisions_reads_them_off_its_figures() -> None:
    (accel,) = parse_catalog(ENTRY).accelerators
    assert accel.precisions == ()
    assert accel.supported_precisions == ("fp32", "fp16")


def test_an_unknown_precision_is_refused() -> None:
    text = ENTRY.replace("    resource_name:", "    precisions: [fp32, fp7]\n    resource_name:")
    with pytest.raises(ValidationError, match="unknown precision"):
        parse_catalog(text)


def test_catalog_command_shows_formats_and_no_bf16_figure_without_bf16(
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    assert main(["hardware", "catalog", "--format", "csv"]) == 0
    rows = {r["slug"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert rows["nvidia-t4-16gb"]["bf16_tflops"] == "" and rows["nvidia-t4-16gb"]["precisions"] == "fp32;fp16"
    assert rows["nvidia-a100-80gb"]["bf16_tflops"] == "312.0"
    assert rows["nvidia-h100-80gb"]["precisions"] == "fp32;tf32;fp16;bf16;fp8"
