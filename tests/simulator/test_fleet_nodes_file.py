"""``fleet.nodes_file``: a fleet read from a ``kubectl get nodes -o yaml`` dump, and its prices."""

from __future__ import annotations

import shutil
from decimal import Decimal
from importlib.resources import files
from pathlib import Path

import pytest
from budcore_simulator.cli import run_scenario
from budcore_simulator.report import build_report
from budcore_simulator.scenario import load_scenario

from budcore.domain.errors import ValidationError

SAMPLE = Path(str(files("budcore_simulator") / "scenarios" / "nodes-dump"))


def copy_sample(tmp_path: Path, edit: tuple[str, str] | None = None) -> Path:
    for name in ("scenario.yaml", "nodes.yaml"):
        shutil.copy(SAMPLE / name, tmp_path / name)
    path = tmp_path / "scenario.yaml"
    if edit is not None:
        text = path.read_text()
        assert edit[0] in text
        path.write_text(text.replace(edit[0], edit[1]))
    return path


def test_dump_nodes_keep_their_real_labels_and_flavors_select_them() -> None:
    loaded = load_scenario(SAMPLE / "scenario.yaml")
    by_name = {n.name: n for n in loaded.nodes}
    assert sorted(by_name) == ["cpu-a", "gpu-a100-a", "gpu-a100-b", "gpu-h100-a", "gpu-h100-b", "gpu-l4-a"]
    assert by_name["gpu-h100-a"].labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert by_name["gpu-h100-a"].allocatable.get("nvidia.com/gpu") == 8000
    assert not by_name["gpu-a100-b"].schedulable  # cordoned in the dump
    # Explicit price by product for the L4; H100 and A100 from the default book via the catalog.
    assert loaded.prices() == {"h100": Decimal("5.00"), "a100": Decimal("3.50"), "l4": Decimal("0.80")}


def test_simulation_runs_on_dump_nodes_and_skips_cordoned_ones() -> None:
    result = run_scenario(load_scenario(SAMPLE / "scenario.yaml"))
    ran_on = {node for r in result.records for node in r.nodes}
    assert ran_on and "gpu-a100-b" not in ran_on and "cpu-a" not in ran_on
    assert result.flavor_capacity == {"h100": 16, "a100": 8, "l4": 4}
    report = build_report(result, scenario_name="nodes-dump", seed=11)
    costs = [r.cost for r in result.records if r.gpu_s > 0]
    assert costs and all(c > 0 for c in costs)
    assert report["jobs"] == len(result.records)


def test_pools_and_dump_combine(tmp_path: Path) -> None:
    path = copy_sample(
        tmp_path,
        (
            "  nodes_file: nodes.yaml\n",
            "  nodes_file: nodes.yaml\n  pools:\n"
            "    - {name: extra, product: NVIDIA-L4, gpus_per_node: 4, nodes: 2,\n"
            "       price_per_gpu_hour: '0.70'}\n",
        ),
    )
    loaded = load_scenario(path)
    assert sum(1 for n in loaded.nodes if n.name.startswith("extra-")) == 2
    assert len(loaded.nodes) == 8
    # The flavor-level price of the L4 comes from the pool now (pool beats the dump's product key).
    assert loaded.prices()["l4"] == Decimal("0.70")


def test_price_book_can_be_switched_off_and_tier_chosen(tmp_path: Path) -> None:
    off = load_scenario(copy_sample(tmp_path, ("price_book: default", "price_book: null")))
    assert off.prices() == {"l4": Decimal("0.80")}
    spot = load_scenario(copy_sample(tmp_path, ("price_tier: on-demand", "price_tier: spot")))
    assert spot.prices()["h100"] == Decimal("5.00") * Decimal("0.40")


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        (("nodes_file: nodes.yaml", "nodes_file: missing.yaml"), "fleet.nodes_file", "does not exist"),
        (("price_tier: on-demand", "price_tier: gold"), "fleet.price_tier", "not in the price book"),
        (("price_book: default", "price_book: nope.yaml"), "fleet.price_book", "does not exist"),
        (('prices: {NVIDIA-L4: "0.80"}', 'prices: {NVIDIA-L4: "-1"}'), "fleet.prices", "non-negative"),
        (("  nodes_file: nodes.yaml\n", ""), "fleet.pools", "'pools', 'nodes_file' or both"),
    ],
)
def test_bad_fleet_settings_name_the_field(
    tmp_path: Path, edit: tuple[str, str], field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as info:
        load_scenario(copy_sample(tmp_path, edit))
    assert words in str(info.value)
    assert field in str(info.value)


def test_a_bad_dump_names_the_nodes_file(tmp_path: Path) -> None:
    path = copy_sample(tmp_path)
    (tmp_path / "nodes.yaml").write_text("apiVersion: v1\nkind: List\nitems:\n  - metadata: {}\n")
    with pytest.raises(ValidationError) as info:
        load_scenario(path)
    assert "nodes.yaml" in str(info.value) and "metadata.name" in str(info.value)
