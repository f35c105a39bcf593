"""``budcore recommend`` end to end: multi-node training plans and serving at a throughput."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest

from budcore.cli import main
from budcore.cli.recommend_tables import SERVING_FIELDS, TRAINING_FIELDS

LLAMA70 = ["--layers", "80", "--hidden-size", "8192", "--heads", "64", "--kv-heads", "8"]


def run(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> tuple[str, str]:
    capsys.readouterr()
    assert main(list(args)) == code, capsys.readouterr().err
    captured = capsys.readouterr()
    return captured.out, captured.err


def rows(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    out, _ = run(capsys, *args, "--format", "json")
    document: list[dict[str, Any]] = json.loads(out)
    return document


def test_sixteen_gpus_for_70b_training_is_two_h100_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's ``--gpus 16`` case, which used to fail with "requires 16x 73GB+ GPU"."""
    found = rows(capsys, "recommend", "--model-params", "70B", "--task", "train", "--tokens", "2e12",
                 "--gpus", "16", *LLAMA70)  # fmt: skip
    h100 = next(r for r in found if r["accelerator"] == "nvidia-h100-80gb")
    assert (h100["nodes"], h100["gpus"], h100["gpus_per_node"]) == (2, 16, 8)
    assert h100["dp"] * h100["tp"] * h100["pp"] == 16
    shards = h100["tp"] * h100["pp"]
    assert h100["weights_bytes"] == round(70e9 * 2 / shards)  # bf16, over tp × pp
    assert h100["gradients_bytes"] == round(70e9 * 2 / shards)
    assert h100["optimizer_states_bytes"] == round(70e9 * 12 / shards / h100["dp"])  # ZeRO-1
    parts = ("weights_bytes", "gradients_bytes", "optimizer_states_bytes", "activations_bytes")
    assert abs(sum(h100[p] for p in parts) - h100["memory_bytes"]) <= 2
    assert h100["memory_bytes"] <= h100["usable_bytes"] == round(80 * 2**30 * 0.9)
    assert all(r["gpus"] == 16 for r in found)
    assert "nvidia-t4-16gb" not in {r["accelerator"] for r in found}


def test_training_plan_scales_out_to_meet_a_deadline(capsys: pytest.CaptureFixture[str]) -> None:
    found = rows(capsys, "recommend", "--model-params", "70B", "--task", "train", "--tokens", "2e12",
                 "--deadline", "60d", "--max-nodes", "128", *LLAMA70)  # fmt: skip
    top = found[0]
    assert top["recommended"] and top["feasible_by_deadline"] is True
    assert top["nodes"] > 1 and float(top["estimated_hours"]) <= 60 * 24
    assert float(top["estimated_cost"]) == pytest.approx(
        float(top["estimated_hours"]) * float(top["hourly_price"]), abs=0.01
    )
    met = [r for r in found if r["feasible_by_deadline"]]
    assert found[: len(met)] == met  # deadline met first
    costs = [float(r["estimated_cost"]) for r in met]
    assert costs == sorted(costs)


def test_training_table_shows_the_breakdown_and_what_was_left_out(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    out, _ = run(
        capsys, "recommend", "--model-params", "7B", "--task", "train", "--tokens", "1e11", "--max-nodes", "2"
    )
    assert "GiB/GPU¹" in out and "dp" in out and "×tp" in out
    # the recommended row's memory split, in words, under the table
    split = re.search(
        r"^✓ .+, per GPU: weights ([\d.]+) GiB \+ gradients ([\d.]+) \+ optimizer states ([\d.]+) \+ "
        r"activations ([\d.]+) = ([\d.]+) of ([\d.]+) usable",
        out,
        re.MULTILINE,
    )
    assert split is not None, out
    weights, gradients, optimizer, activations, total, usable = map(float, split.groups())
    assert weights + gradients + optimizer + activations == pytest.approx(total, abs=0.25)
    assert total <= usable
    assert "note: model shape assumed from the parameter count" in out
    assert "not considered: " in out and "NVIDIA T4 16GB" in out and "no bf16 on T4" in out


def test_training_csv_columns(capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = run(capsys, "recommend", "--model-params", "1B", "--task", "train", "--tokens", "1e10",
                 "--max-nodes", "1", "--format", "csv")  # fmt: skip
    reader = csv.DictReader(io.StringIO(out))
    assert reader.fieldnames == list(TRAINING_FIELDS)
    assert sum(1 for _ in reader) > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpus", "12"], "--gpus: 12 GPUs is not a whole number of 8-GPU nodes"),
        (["--optimizer", "lion"], "--optimizer: expected one of adam, adam-8bit, sgd"),
        (["--recompute", "some"], "--recompute: expected one of auto, full, selective, none"),
        (["--dtype", "int8"], "--dtype: training plans mixed precision"),
        (["--model-params", "20e12", "--max-nodes", "2"], "no layout fits on up to 2 nodes"),
        (["--heads", "7", "--hidden-size", "4096"], "not a multiple of 7 heads"),
        (["--model-params", "1e17"], "--model-params: Input should be less than or equal to"),
        (["--global-batch", "1", "--micro-batch", "4"], "--global-batch: global batch of 1 sequences"),
        (["--serve-hours", "2"], "--serve-hours: does not apply to a multi-node training plan"),
        (["--context", "8192"], "--context: does not apply to a multi-node training plan"),
        (["--throughput", "5"], "--throughput: is for serving (--task serve)"),
        (["--min-memory", "1000"], "--min-memory: no accelerator has 1000 GiB or more"),
    ],
)
def test_training_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    base = ["recommend", "--task", "train", "--tokens", "1e12", "--model-params", "7B"]
    _, err = run(capsys, *base, *args, code=2)
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_serving_at_a_throughput_ranks_by_cost_per_token(capsys: pytest.CaptureFixture[str]) -> None:
    found = rows(capsys, "recommend", "--model-params", "70B", "--throughput", "2000", "--context", "4096",
                 "--batch", "16", *LLAMA70)  # fmt: skip
    costs = [float(r["cost_per_million_tokens"]) for r in found if r["cost_per_million_tokens"]]
    assert costs == sorted(costs) and found[0]["recommended"]
    assert not {"nvidia-t4-16gb", "nvidia-v100-32gb", "nvidia-p100-16gb"} & {r["accelerator"] for r in found}
    h100 = next(r for r in found if r["accelerator"] == "nvidia-h100-80gb")
    assert h100["tp"] == 4  # (140e9 + 20 GiB KV) × 1.1 over 72 GiB usable
    assert h100["kv_cache_bytes"] == 5 * 2**30  # 20 GiB over tp 4
    assert h100["replicas"] * h100["tp"] == h100["gpus"]
    assert h100["capacity_tokens_per_second"] >= 2000
    # $5.00 per H100-hour: gpus × 5 / (2000 × 3600) × 1e6 dollars per million tokens
    assert float(h100["cost_per_million_tokens"]) == pytest.approx(h100["gpus"] * 5 / 7.2, abs=0.005)


def test_serving_fp16_includes_the_t4(capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = run(capsys, "recommend", "--model-params", "1B", "--dtype", "fp16", "--throughput", "100",
                 "--format", "csv")  # fmt: skip
    reader = csv.DictReader(io.StringIO(out))
    assert reader.fieldnames == list(SERVING_FIELDS)
    assert "nvidia-t4-16gb" in {r["accelerator"] for r in reader}


def test_serving_too_big_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    _, err = run(capsys, "recommend", "--model-params", "2e12", "--throughput", "100", code=2)
    assert "no accelerator can serve this model as asked" in err and "TiB per replica" in err
    assert len(err.strip().splitlines()) == 1


def test_plain_serve_leaves_out_parts_without_the_precision(capsys: pytest.CaptureFixture[str]) -> None:
    bf16 = {r["accelerator"] for r in rows(capsys, "recommend", "--model-params", "1e9")}
    assert "nvidia-t4-16gb" not in bf16 and "nvidia-h100-80gb" in bf16
    fp16 = {r["accelerator"] for r in rows(capsys, "recommend", "--model-params", "1e9", "--dtype", "fp16")}
    assert "nvidia-t4-16gb" in fp16


FLEET = """
apiVersion: v1
kind: List
items:
- metadata:
    name: a100-node
    labels: {nvidia.com/gpu.product: A100-SXM4-80GB, nvidia.com/gpu.count: "8"}
  status: {capacity: {cpu: "128", memory: 512Gi, nvidia.com/gpu: "8"}}
- metadata:
    name: h200-node
    labels: {nvidia.com/gpu.product: NVIDIA-H200, nvidia.com/gpu.count: "8", nvidia.com/gpu.memory: "143771"}
  status: {capacity: {cpu: "224", memory: 1Ti, nvidia.com/gpu: "8"}}
"""


def test_serving_on_a_fleet_respects_its_node_counts(
    capsys: pytest.CaptureFixture[str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(FLEET, encoding="utf-8")
    args = ["recommend", "--model-params", "70B", "--throughput", "2000", "--nodes", str(nodes), *LLAMA70]
    found = rows(capsys, *args)
    # H200: (140e9 + 20 GiB) × 1.1 needs tp 2; 571 tokens/s per replica → 4 replicas = 8 GPUs = the node
    assert [(r["accelerator"], r["tp"], r["replicas"], r["nodes"]) for r in found] == [
        ("nvidia-h200-141gb", 2, 4, 1)
    ]
    monkeypatch.setenv("COLUMNS", "250")
    out, _ = run(capsys, *args)
    # A100 80GB: tp 4, 485 tokens/s per replica → 5 replicas = 20 GPUs = 3 nodes; the fleet has 1
    assert "needs 3 nodes (5 replicas), 1 available" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--throughput", "100", "--seq-len", "2048"], "--seq-len: does not apply to a serving plan"),
        (["--throughput", "100", "--gpus", "2"], "--gpus: does not apply to a serving plan"),
        (["--throughput", "100", "--serve-hours", "2"], "--serve-hours: does not apply to a serving plan"),
        (["--context", "8192"], "--context: does not apply to the single-layout estimate"),
        (["--max-nodes", "4"], "--max-nodes: does not apply to the single-layout estimate"),
    ],
)
def test_serving_options_that_do_not_apply_are_refused(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    _, err = run(capsys, "recommend", "--model-params", "7B", *args, code=2)
    assert message in err and len(err.strip().splitlines()) == 1
