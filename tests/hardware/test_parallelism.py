"""Multi-node training layouts: hand-computed memory, time and communication, and properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budcore.domain.errors import ValidationError
from budcore.hardware.catalog import Accelerator, default_catalog
from budcore.hardware.estimate import GIB
from budcore.hardware.parallelism import (
    Layout,
    TrainingJob,
    activation_bytes,
    best_plan,
    check_gpu_count,
    communication_seconds,
    gpu_counts,
    layouts,
    memory_per_gpu,
    node_counts,
    plan_layout,
)
from budcore.hardware.planning import NoLayoutFitsError, catalog_shapes, recommend_training
from budcore.hardware.shape import TransformerShape, assumed_shape, resolve_shape
from budcore.testing.examples import examples

CATALOG = default_catalog()


def _h100() -> Accelerator:
    found = CATALOG.get("nvidia-h100-80gb")
    assert found is not None
    return found


H100 = _h100()
LLAMA7 = TransformerShape(layers=32, hidden_size=4096, heads=32, kv_heads=32)
LLAMA70 = TransformerShape(layers=80, hidden_size=8192, heads=64, kv_heads=8)


def job(**fields: object) -> TrainingJob:
    base: dict[str, object] = {"params": 7e9, "tokens": 1e12, "shape": LLAMA7, "global_batch": 1024}
    return TrainingJob.model_validate({**base, **fields})


# Memory -------------------------------------------------------------------------------------------
def test_adam_mixed_precision_is_2_plus_2_plus_12_bytes_per_parameter() -> None:
    memory = memory_per_gpu(job(zero_stage=0), Layout(dp=1, tp=1, pp=1))
    assert memory.weights == 14e9  # 7B × 2 bytes (bf16)
    assert memory.gradients == 14e9
    assert memory.optimizer == 84e9  # 7B × 12 (fp32 master, momentum, variance)


def test_tensor_and_pipeline_parallelism_shard_the_model_state() -> None:
    memory = memory_per_gpu(job(zero_stage=0), Layout(dp=1, tp=2, pp=2))
    assert (memory.weights, memory.gradients, memory.optimizer) == (3.5e9, 3.5e9, 21e9)


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        (0, (14e9, 14e9, 84e9)),
        (1, (14e9, 14e9, 21e9)),  # optimizer states over dp = 4
        (2, (14e9, 3.5e9, 21e9)),  # + gradients
        (3, (3.5e9, 3.5e9, 21e9)),  # + weights
    ],
)
def test_zero_stages_shard_over_data_parallel_replicas(stage: int, expected: tuple[float, ...]) -> None:
    memory = memory_per_gpu(job(zero_stage=stage), Layout(dp=4, tp=1, pp=1))
    assert (memory.weights, memory.gradients, memory.optimizer) == expected


def test_other_optimizers() -> None:
    layout = Layout(dp=1, tp=1, pp=1)
    assert memory_per_gpu(job(optimizer="sgd", zero_stage=0), layout).optimizer == 56e9  # 8 B/param
    assert memory_per_gpu(job(optimizer="adam-8bit", zero_stage=0), layout).optimizer == 42e9  # 6 B/param


# Korthikanti et al. 2022 with s = 2048, b = 1, h = 4096, a = 32, L = 32:
# one layer s·b·h·(34 + 5·a·s/h) = 2048 · 4096 · (34 + 80) = 956,301,312 bytes.
@pytest.mark.parametrize(
    ("recompute", "tp", "expected"),
    [
        ("none", 1, 32 * 956_301_312),
        ("selective", 1, 32 * 2048 * 4096 * 34),
        ("full", 1, 32 * 2 * 2048 * 4096 + 956_301_312),
        ("none", 4, 32 * 956_301_312 / 4),
        ("full", 4, (32 * 2 * 2048 * 4096 + 956_301_312) / 4),
    ],
)
def test_activation_memory_follows_korthikanti(recompute: str, tp: int, expected: float) -> None:
    spec = job(recompute=recompute, seq_len=2048)
    assert activation_bytes(spec, Layout(dp=1, tp=tp, pp=1)) == pytest.approx(expected)


def test_first_pipeline_stage_holds_all_layers_worth_when_enough_microbatches() -> None:
    spec = job(recompute="none", seq_len=2048, global_batch=64)  # m = 64 ≥ pp
    assert activation_bytes(spec, Layout(dp=1, tp=1, pp=4)) == pytest.approx(32 * 956_301_312)
    few = job(recompute="none", seq_len=2048, global_batch=2)  # m = 2 < pp = 4: half the layers
    assert activation_bytes(few, Layout(dp=1, tp=1, pp=4)) == pytest.approx(16 * 956_301_312)


# Time ---------------------------------------------------------------------------------------------
def test_compute_time_is_6nt_over_gpus_peak_and_mfu() -> None:
    plan = plan_layout(job(recompute="none"), H100, 8, Layout(dp=8, tp=1, pp=1))
    assert plan is not None
    # 6 · 7e9 · 1e12 FLOPs over 8 H100s at 989.5 dense bf16 TFLOPs and Hopper's default MFU 0.38
    assert plan.compute_seconds == pytest.approx(6 * 7e9 * 1e12 / (8 * 989.5e12 * 0.38))
    full = plan_layout(job(recompute="full"), H100, 8, Layout(dp=8, tp=1, pp=1))
    assert full is not None and full.compute_seconds == pytest.approx(plan.compute_seconds * 4 / 3)


def test_pipeline_bubble_is_p_minus_1_over_m() -> None:
    plan = plan_layout(job(global_batch=64), H100, 8, Layout(dp=2, tp=1, pp=4))
    assert plan is not None
    assert plan.bubble_fraction == pytest.approx(3 / 32)  # m = 64 / (2 × 1)


def test_data_parallel_all_reduce_inside_one_node() -> None:
    spec = job(seq_len=4096, global_batch=1024)
    steps = 1e12 / (1024 * 4096)
    # ring all-reduce of the 14e9-byte bf16 gradients among 8 GPUs at half of NVLink's 900 GB/s
    expected = steps * 2 * 7 / 8 * 14e9 / 450e9
    assert communication_seconds(spec, Layout(dp=8, tp=1, pp=1), H100, 8) == pytest.approx(expected)


def test_data_parallel_across_nodes_uses_the_network() -> None:
    spec = job(seq_len=4096, global_batch=1024)
    steps = 1e12 / (1024 * 4096)
    expected = steps * 2 * 15 / 16 * 14e9 / 50e9
    layout = Layout(dp=16, tp=1, pp=1, nodes=2)
    assert communication_seconds(spec, layout, H100, 8) == pytest.approx(expected)


# Layouts ------------------------------------------------------------------------------------------
def test_candidate_gpu_counts_are_powers_of_two_then_whole_nodes() -> None:
    assert gpu_counts(8, 3) == [1, 2, 4, 8, 16, 24]
    assert gpu_counts(1, 2) == [1, 2]
    assert node_counts(40) == [*range(1, 17), *range(18, 32, 2), 32, 36, 40]
    assert node_counts(70) == [*range(1, 17), *range(18, 32, 2), *range(32, 64, 4), 64, 70]


def test_layouts_of_sixteen_gpus_on_two_nodes() -> None:
    found = list(layouts(job(shape=LLAMA70, params=70e9), 16, 8))
    assert Layout(dp=1, tp=8, pp=2, nodes=2) in found
    assert all(lay.gpus == 16 and lay.nodes == 2 and lay.tp <= 8 for lay in found)
    assert {lay.tp for lay in found} == {1, 2, 4, 8}


def test_a_gpu_count_must_be_whole_nodes() -> None:
    check_gpu_count(4, 8)
    check_gpu_count(24, 8)
    with pytest.raises(ValidationError, match="--gpus: 12 GPUs is not a whole number of 8-GPU nodes"):
        check_gpu_count(12, 8)


def test_seventy_b_fits_on_two_h100_nodes() -> None:
    """The issue's case: ``--gpus 16`` for a 70B model must land on 2 × 8 H100."""
    spec = TrainingJob(params=70e9, tokens=2e12, shape=LLAMA70)
    plan, _ = best_plan(spec, H100, 8, max_nodes=32, gpus=16)
    assert plan is not None and plan.fits
    assert plan.layout.nodes == 2 and plan.layout.gpus == 16
    assert plan.memory.total <= 80 * GIB * 0.9


def test_a_deadline_picks_the_least_gpu_time_that_meets_it() -> None:
    spec = TrainingJob(params=7e9, tokens=1e11, shape=LLAMA7)
    deadline = 3 * 86400.0
    plan, _ = best_plan(spec, H100, 8, max_nodes=8, deadline_seconds=deadline)
    assert plan is not None and plan.seconds <= deadline
    for count in gpu_counts(8, 8):
        for layout in layouts(spec, count, 8):
            other = plan_layout(spec, H100, 8, layout)
            assert other is not None
            if other.fits and other.seconds <= deadline:
                assert plan.layout.gpus * plan.seconds <= other.layout.gpus * other.seconds + 1e-6


def test_nothing_fits_says_how_many_nodes_would() -> None:
    spec = TrainingJob(params=20e12, tokens=1e12, shape=assumed_shape(20e12))
    with pytest.raises(NoLayoutFitsError, match=r"no layout fits on up to 2 nodes: .* try --max-nodes \d+"):
        recommend_training(spec, catalog_shapes(CATALOG, 8), None, max_nodes=2)


def test_precision_the_part_lacks_is_rejected_with_the_reason() -> None:
    spec = TrainingJob(params=1e8, tokens=1e9, shape=assumed_shape(1e8))
    rows, rejected = recommend_training(spec, catalog_shapes(CATALOG, 8), None, max_nodes=1)
    assert rejected["NVIDIA T4 16GB"].startswith("no bf16 on T4")
    assert rejected["NVIDIA V100 32GB"].startswith("no bf16 on V100")
    assert "nvidia-t4-16gb" not in {r.plan.accelerator for r in rows}
    fp8 = spec.model_copy(update={"dtype": "fp8"})
    _, rejected = recommend_training(fp8, catalog_shapes(CATALOG, 8), None, max_nodes=1)
    assert rejected["NVIDIA A100 80GB"].startswith("no fp8 on A100")
    assert "NVIDIA H100 80GB" not in rejected


# Shapes -------------------------------------------------------------------------------------------
def test_assumed_shape_inverts_12_l_h_squared() -> None:
    # hidden ≈ (70e9 · 128 / 12)^(1/3) ≈ 9071 → 72 heads of 128 → 9216; layers 70e9 / (12 · 9216²) ≈ 68.7
    shape = assumed_shape(70e9)
    assert (shape.layers, shape.hidden_size, shape.heads, shape.kv_heads) == (69, 9216, 72, 72)
    assert shape.assumed


def test_given_shape_is_not_assumed_and_bad_shapes_are_refused() -> None:
    given_shape = resolve_shape(70e9, layers=80, hidden_size=8192, heads=64, kv_heads=8)
    assert given_shape == LLAMA70
    with pytest.raises(ValidationError, match=r"shape: .*not a multiple of 3 heads"):
        resolve_shape(1e9, hidden_size=1000, heads=3)


# Properties ---------------------------------------------------------------------------------------
powers = st.sampled_from([1, 2, 4, 8])


@settings(max_examples=examples(80), deadline=None)
@given(
    tp=powers,
    tp_more=powers,
    pp=st.integers(1, 8),
    pp_more=st.integers(0, 8),
    dp=st.integers(1, 16),
    zero=st.integers(0, 3),
    recompute=st.sampled_from(["full", "selective", "none"]),
    global_batch=st.integers(1, 4096),
)
def test_memory_per_gpu_never_grows_with_more_model_parallelism(
    tp: int, tp_more: int, pp: int, pp_more: int, dp: int, zero: int, recompute: str, global_batch: int
) -> None:
    spec = job(zero_stage=zero, recompute=recompute, global_batch=global_batch)
    small = memory_per_gpu(spec, Layout(dp=dp, tp=tp, pp=pp))
    large = memory_per_gpu(spec, Layout(dp=dp, tp=max(tp, tp_more), pp=pp + pp_more))
    assert large.total <= small.total * (1 + 1e-12)


@settings(max_examples=examples(15), deadline=None)
@given(
    params=st.floats(1e8, 3e11),
    tokens=st.floats(1e9, 1e13),
    max_nodes=st.integers(1, 4),
    zero=st.integers(0, 3),
)
def test_every_recommended_layout_fits_its_gpu(
    params: float, tokens: float, max_nodes: int, zero: int
) -> None:
    spec = TrainingJob(params=params, tokens=tokens, shape=assumed_shape(params), zero_stage=zero)
    try:
        rows, _ = recommend_training(spec, catalog_shapes(CATALOG, 8), None, max_nodes=max_nodes)
    except NoLayoutFitsError:
        return  # too big for max_nodes: the error path has its own test
    for row in rows:
        accel = CATALOG.get(row.plan.accelerator)
        assert accel is not None
        assert row.plan.memory.total <= accel.device_memory_gib * GIB * 0.9
        assert row.plan.layout.nodes <= max_nodes
        assert row.plan.layout.gpus == row.plan.layout.dp * row.plan.layout.tp * row.plan.layout.pp
    assert rows[0].recommended and not any(r.recommended for r in rows[1:])
    assert math.isfinite(rows[0].plan.seconds)


def test_auto_recompute_takes_the_cheapest_mode_that_fits() -> None:
    small = TrainingJob(params=1e9, tokens=1e10, shape=assumed_shape(1e9))
    plan = plan_layout(small, H100, 8, Layout(dp=8, tp=1, pp=1))
    assert plan is not None and plan.recompute == "none"  # 1B fits without recomputation
    big = TrainingJob(params=70e9, tokens=2e12, shape=LLAMA70)
    # tp 2 × pp 8: 65.2 GiB of state; selective keeps 80 · 4096 · 8192 · 34 / 2 bytes = 42.5 GiB more
    plan = plan_layout(big, H100, 8, Layout(dp=1, tp=2, pp=8, nodes=2))
    assert plan is not None and plan.recompute == "full" and plan.fits
    full = plan_layout(
        big.model_copy(update={"recompute": "full"}), H100, 8, Layout(dp=1, tp=2, pp=8, nodes=2)
    )
    assert full == plan
