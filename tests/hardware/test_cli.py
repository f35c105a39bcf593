"""The ``recommend`` and ``hardware`` commands, driven through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from budcore.cli import hardware, recommend
from budcore.cli.recommend import parse_count, parse_duration
from budcore.domain.errors import BudcoreError, ValidationError

NODES = """
apiVersion: v1
kind: List
items:
- metadata:
    name: worker-node-01
    labels:
      nvidia.com/gpu.product: A100-SXM4-80GB
      nvidia.com/gpu.count: "8"
      nvidia.com/gpu.memory: "81920"
  status: {capacity: {cpu: "128", memory: 512Gi, nvidia.com/gpu: "8"}}
- metadata:
    name: worker-node-17
    labels: {nvidia.com/gpu.product: NVIDIA-H200, nvidia.com/gpu.count: "8", nvidia.com/gpu.memory: "143771"}
  status: {capacity: {cpu: "224", memory: 1Ti, nvidia.com/gpu: "8"}}
- metadata:
    name: worker-node-99
    labels: {budcore.io/accelerators: "nvidia-a100-80gb=4,nvidia-v100-16gb=4"}
  status: {capacity: {nvidia.com/gpu: "8"}}
- metadata:
    name: worker-node-50
  status: {capacity: {nvidia.com/gpu: "2"}}
"""


@pytest.fixture
def app() -> typer.Typer:
    application = typer.Typer()

    @application.callback()
    def _root() -> None:
        """test root"""

    recommend.register(application)
    hardware.register(application)
    return application


@pytest.fixture
def nodes_file(tmp_path: Path) -> Path:
    path = tmp_path / "nodes.yaml"
    path.write_text(NODES, encoding="utf-8")
    return path


runner = CliRunner()


def test_hardware_parse_table(app: typer.Typer, nodes_file: Path) -> None:
    result = runner.invoke(app, ["hardware", "parse", str(nodes_file)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in (
        "NVIDIA A100 80GB",
        "NVIDIA H200 141GB",
        "Mixed (4x A100, 4x V100)",
        "GPU - type unknown",
        "Hardware profiles",
        "Kueue ResourceFlavors",
        "excluded from automatic grouping",
    ):
        assert text in result.output


def test_hardware_parse_json(app: typer.Typer, nodes_file: Path) -> None:
    result = runner.invoke(
        app,
        [
            "hardware",
            "parse",
            str(nodes_file),
            "--format",
            "json",
            "--override",
            "worker-node-50=nvidia-l4-24gb",
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert [n["gpu_type"] for n in document["nodes"]] == [
        "NVIDIA A100 80GB",
        "NVIDIA H200 141GB",
        "Mixed (4x A100, 4x V100)",
        "NVIDIA L4 24GB",
    ]
    flavors = {f["metadata"]["name"]: f for f in document["flavors"]}
    assert flavors["nvidia-h200-141gb"] == {
        "apiVersion": "kueue.x-k8s.io/v1beta1",
        "kind": "ResourceFlavor",
        "metadata": {"name": "nvidia-h200-141gb"},
        "spec": {"nodeLabels": {"nvidia.com/gpu.product": "NVIDIA-H200"}},
    }
    assert {p["name"] for p in document["profiles"]} == {
        "nvidia-a100-80gb",
        "nvidia-h200-141gb",
        "nvidia-l4-24gb",
        "gpu-any",
    }


def test_recommend_train_on_a_fleet(app: typer.Typer, nodes_file: Path) -> None:
    result = runner.invoke(
        app,
        [
            "recommend",
            "--model-params",
            "1.5B",
            "--task",
            "train",
            "--tokens",
            "307.2M",
            "--nodes",
            str(nodes_file),
            "--deadline",
            "3h",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    # Training is planned over the fleet's node groups (an 8-GPU H200 node, an 8-GPU A100 node):
    # 6 · 1.5e9 · 307.2e6 = 2.7648e18 FLOPs. One H200 (989 TFLOP/s bf16, MFU 0.38): 2.04 h, within
    # the 3 h deadline, the cheapest at $6.00 per GPU-hour (2.1 h × $6.00 = $12.60). One A100
    # (312 TFLOP/s, MFU 0.47) would take 5.2 h, so the plan takes two, data-parallel: 2.62 h.
    assert [
        (
            r["accelerator"],
            r["gpus"],
            r["dp"],
            r["compute_hours"],
            r["estimated_hours"],
            r["feasible_by_deadline"],
        )
        for r in rows
    ] == [
        ("nvidia-h200-141gb", 1, 1, 2.04, "2.1", True),
        ("nvidia-a100-80gb", 2, 2, 2.62, "2.7", True),
    ]
    assert rows[0]["recommended"] and rows[0]["estimated_cost"] == "12.60"
    assert rows[1]["estimated_cost"] == "18.90"  # 2.7 h × 2 GPUs × $3.50


def test_recommend_serve_table_without_a_fleet(app: typer.Typer) -> None:
    result = runner.invoke(
        app,
        ["recommend", "--model-params", "70e9", "--dtype", "bf16", "--task", "serve", "--gpus", "1"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "AMD Instinct MI300X 192GB" in result.output and "NVIDIA B200 180GB" in result.output
    assert "NVIDIA T4" not in result.output  # 70B in bf16 does not fit one 16 GB GPU
    assert "KV cache not included" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["recommend", "--model-params", "seventy"], "--model-params"),
        (["recommend", "--model-params", "7e9", "--task", "fly"], "--task"),
        (["recommend", "--model-params", "7e9", "--task", "train"], "--tokens"),
        (["recommend", "--model-params", "7e9", "--dtype", "fp7"], "--dtype"),
        (["recommend", "--model-params", "7e9", "--deadline", "soon"], "--deadline"),
        (["recommend", "--model-params", "7e9", "--prices", "/nonexistent/p.yaml"], "cannot read"),
        (["recommend", "--model-params", "2e12", "--gpus", "1"], "requires"),
        (["hardware", "parse", "/nonexistent/nodes.yaml"], "cannot read"),
        (["hardware", "parse", "/nonexistent/nodes.yaml", "--format", "xml"], "--format"),
    ],
)
def test_errors_are_budcore_errors(app: typer.Typer, args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert isinstance(result.exception, BudcoreError)
    assert message in str(result.exception)


def test_catalog_command(app: typer.Typer) -> None:
    result = runner.invoke(app, ["hardware", "catalog", "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert "nvidia-h100-pcie-80gb" in {a["slug"] for a in document["accelerators"]}


def test_parsers() -> None:
    assert parse_count("70e9", "x") == 70e9
    assert parse_count("1.5B", "x") == 1.5e9
    assert parse_count("300M", "x") == 3e8
    assert parse_duration("1h30m").total_seconds() == 5400
    assert parse_duration("2d").total_seconds() == 172800
    with pytest.raises(ValidationError):
        parse_duration("0h")
    with pytest.raises(ValidationError):
        parse_count("0", "x")
    assert parse_count("1e18", "x") == 1e18
    for huge in ("1e400", "2e18", "2000000T"):  # 1e400 is infinity to float(): an estimate would overflow
        with pytest.raises(ValidationError, match=r"must be at most 1e\+18"):
            parse_count(huge, "--model-params")


def test_recommend_with_an_infinite_model_size_is_one_line(app: typer.Typer) -> None:
    argv = ["recommend", "--model-params", "1e400", "--task", "train", "--tokens", "1e9"]
    result = runner.invoke(app, argv)
    assert result.exit_code != 0 and isinstance(result.exception, ValidationError)
    assert "--model-params" in str(result.exception) and "1e400" in str(result.exception)


def test_recommend_with_an_unknown_price_tier_is_an_error(app: typer.Typer) -> None:
    """An unknown ``--tier`` priced nothing and said nothing (issue #18's silent acceptance)."""
    argv = ["recommend", "--model-params", "7B", "--task", "train", "--tokens", "1e10", "--tier", "bogus"]
    result = runner.invoke(app, argv)
    assert isinstance(result.exception, ValidationError)
    message = str(result.exception)
    assert "--tier" in message and "unknown price tier 'bogus'" in message and "on-demand" in message
    spot = runner.invoke(app, [*argv[:-1], "spot", "--format", "json"])
    assert spot.exit_code == 0, spot.output
    assert all(row["hourly_price"] is not None for row in json.loads(spot.output) if row["estimated_hours"])


def test_hardware_parse_of_an_empty_node_list_is_an_error(app: typer.Typer, tmp_path: Path) -> None:
    """``kubectl get nodes -o yaml`` in the wrong context gives ``items: []``: printing three empty
    tables with status 0 was silent acceptance (issue #18); the simulator refuses it too."""
    empty = tmp_path / "nodes.yaml"
    empty.write_text("apiVersion: v1\nkind: List\nitems: []\n", encoding="utf-8")
    result = runner.invoke(app, ["hardware", "parse", str(empty)])
    assert isinstance(result.exception, ValidationError)
    assert str(empty) in str(result.exception) and "lists no node" in str(result.exception)
