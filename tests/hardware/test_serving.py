"""Serving plans: precision support, KV cache, bandwidth-bound throughput and cost per token."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budcore.cost.prices import default_price_book
from budcore.hardware.catalog import Accelerator, default_catalog
from budcore.hardware.estimate import GIB
from budcore.hardware.planning import NoLayoutFitsError, catalog_shapes, recommend_serving
from budcore.hardware.serving import (
    ServingJob,
    plan_serving,
    replica_tokens_per_second,
    unsupported_precision,
)
from budcore.hardware.shape import TransformerShape, assumed_shape
from budcore.testing.examples import examples

CATALOG = default_catalog()
LLAMA7 = TransformerShape(layers=32, hidden_size=4096, heads=32, kv_heads=32)
LLAMA70 = TransformerShape(layers=80, hidden_size=8192, heads=64, kv_heads=8)


def accel(slug: str) -> Accelerator:
    found = CATALOG.get(slug)
    assert found is not None
    return found


def test_weights_of_7b_in_bf16_are_14e9_bytes() -> None:
    assert ServingJob(params=7e9, shape=LLAMA7, tokens_per_second=1).weight_bytes == 14e9
    assert ServingJob(params=7e9, shape=LLAMA7, dtype="int4", tokens_per_second=1).weight_bytes == 3.5e9


def test_kv_cache_of_a_llama_2_70b_shape_at_4k_context() -> None:
    # 2 (K, V) × 80 layers × 8 KV heads × 128 head dim × 4096 tokens × 2 bytes = 1.25 GiB per sequence
    one = ServingJob(params=70e9, shape=LLAMA70, context=4096, batch=1, tokens_per_second=1)
    assert one.kv_bytes == 2 * 80 * 8 * 128 * 4096 * 2 == 1_342_177_280
    sixteen = one.model_copy(update={"batch": 16})
    assert sixteen.kv_bytes == 20 * GIB
    fp8 = ServingJob(params=70e9, shape=LLAMA70, context=4096, batch=1, kv_dtype="fp8", tokens_per_second=1)
    assert fp8.kv_bytes == 1_342_177_280 / 2


@pytest.mark.parametrize("slug", ["nvidia-t4-16gb", "nvidia-v100-32gb", "nvidia-p100-16gb"])
def test_parts_without_bf16_refuse_it(slug: str) -> None:
    job = ServingJob(params=1e9, shape=assumed_shape(1e9), dtype="bf16", tokens_per_second=10)
    plan, reason = plan_serving(job, accel(slug), 8)
    assert plan is None and reason.startswith("no bf16 on ")
    fp16 = job.model_copy(update={"dtype": "fp16"})
    plan, reason = plan_serving(fp16, accel(slug), 8)
    assert plan is not None and reason == ""


def test_fp8_only_where_the_part_has_it_and_int4_is_weight_only() -> None:
    assert unsupported_precision(accel("nvidia-h100-80gb"), "fp8") is None
    assert unsupported_precision(accel("nvidia-a100-80gb"), "fp8") == (
        "no fp8 on A100 (computes in fp32, tf32, fp16, bf16)"
    )
    assert unsupported_precision(accel("nvidia-t4-16gb"), "int4") is None  # dequantised to fp16
    assert unsupported_precision(accel("nvidia-a10g-24gb"), "bf16") is None  # listed, no figure


def test_decode_is_bandwidth_bound_and_replicas_cover_the_rate() -> None:
    job = ServingJob(params=7e9, shape=LLAMA7, context=1024, batch=8, tokens_per_second=2000)
    kv = 2 * 32 * 32 * 128 * 1024 * 8 * 2
    assert job.kv_bytes == kv == 4_294_967_296
    h100 = accel("nvidia-h100-80gb")
    rate, bound = replica_tokens_per_second(job, h100, 1, 0.38)
    assert bound == "memory bandwidth"
    assert rate == pytest.approx(8 * 3350e9 * 0.6 / (14e9 + kv))  # ≈ 879 tokens/s
    plan, _ = plan_serving(job, h100, 8, gpu_hourly_price=Decimal("5.00"))
    assert plan is not None
    assert (plan.tp, plan.replicas, plan.gpus) == (1, 3, 3)  # ceil(2000 / 879)
    assert plan.hourly_price == Decimal("15.00")
    # $15 per hour for 2000 tokens/s × 3600 s = 7.2M tokens → $2.083 per million
    cost = plan.cost_per_million_tokens(2000)
    assert cost is not None and float(cost) == pytest.approx(15 / 7.2)


def test_compute_caps_large_batches() -> None:
    job = ServingJob(params=7e9, shape=LLAMA7, context=16, batch=4096, tokens_per_second=1)
    rate, bound = replica_tokens_per_second(job, accel("nvidia-h100-80gb"), 1, 0.38)
    assert bound == "compute"
    assert rate == pytest.approx(989.5e12 * 0.38 / (2 * 7e9))


def test_the_smallest_replica_that_holds_weights_and_kv_cache() -> None:
    # (140e9 + 20 GiB) × 1.1 = 177.6e9 bytes: 4 H100s of 72 GiB usable (2 would need 88.8e9 each)
    job = ServingJob(params=70e9, shape=LLAMA70, context=4096, batch=16, tokens_per_second=100)
    plan, _ = plan_serving(job, accel("nvidia-h100-80gb"), 8)
    assert plan is not None and plan.tp == 4
    total = (140e9 + 20 * GIB) * 1.1
    assert plan.memory_per_gpu == pytest.approx(total / 4)
    assert plan.kv_bytes_per_gpu == 5 * GIB


def test_ranked_by_cost_per_million_tokens() -> None:
    job = ServingJob(params=70e9, shape=LLAMA70, context=4096, batch=16, tokens_per_second=2000)
    rows, rejected = recommend_serving(job, catalog_shapes(CATALOG, 8), default_price_book())
    costs = [r.cost_per_million_tokens for r in rows if r.cost_per_million_tokens is not None]
    assert costs == sorted(costs)
    assert rows[0].recommended and not any(r.recommended for r in rows[1:])
    assert rejected["NVIDIA T4 16GB"].startswith("no bf16 on T4")
    for row in rows:
        assert row.plan.capacity >= 2000
        assert row.plan.memory_per_gpu <= row.plan.usable_bytes


def test_a_model_no_node_holds_is_one_clear_error() -> None:
    job = ServingJob(params=2e12, shape=assumed_shape(2e12), tokens_per_second=100)
    with pytest.raises(NoLayoutFitsError, match=r"^no accelerator can serve .* TiB per replica"):
        recommend_serving(job, catalog_shapes(CATALOG, 8), None)


@settings(max_examples=examples(40), deadline=None)
@given(
    params=st.floats(1e8, 4e11),
    context=st.integers(128, 32768),
    batch=st.integers(1, 64),
    rate=st.floats(1, 1e5),
)
def test_every_serving_plan_fits_and_covers_the_rate(
    params: float, context: int, batch: int, rate: float
) -> None:
    job = ServingJob(
        params=params, shape=assumed_shape(params), context=context, batch=batch, tokens_per_second=rate
    )
    try:
        rows, _ = recommend_serving(job, catalog_shapes(CATALOG, 8), default_price_book())
    except NoLayoutFitsError:
        return
    for row in rows:
        assert row.plan.memory_per_gpu <= row.plan.usable_bytes
        assert row.plan.capacity >= rate
        assert row.plan.replicas == max(1, math.ceil(rate / row.plan.replica_tokens_per_second))
