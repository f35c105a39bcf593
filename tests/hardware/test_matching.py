"""Matching requirements to profiles: the seed scenarios, estimates and properties."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from budcore.cost.prices import price_book_from_hourly
from budcore.domain.errors import BudcoreError, ValidationError, ValidationErrors
from budcore.domain.validation import validate_model
from budcore.hardware.catalog import default_catalog
from budcore.hardware.estimate import (
    GIB,
    MfuTable,
    ModelShape,
    ObservedRun,
    Parallelism,
    ServingSpec,
    TrainingSpec,
    calibrate_mfu,
    decode_tokens_per_second,
    implied_mfu,
    min_shards,
    plan_parallelism,
    training_seconds,
)
from budcore.hardware.matching import NoCompatibleHardwareError, Requirement, match, recommend
from budcore.hardware.profiles import HardwareProfile
from budcore.testing.examples import examples

CATALOG = default_catalog()
H200 = HardwareProfile(
    name="premium", display_name="Premium GPU", accelerators=("nvidia-h200-141gb",), gpus_per_node=8
)
A100 = HardwareProfile(
    name="large", display_name="Large GPU", accelerators=("nvidia-a100-80gb",), gpus_per_node=8
)
V100 = HardwareProfile(
    name="standard", display_name="Standard GPU", accelerators=("nvidia-v100-16gb",), gpus_per_node=4
)
LLAMA_70B = Requirement(
    model_name="Model",
    min_memory_gib=80,
    preferred_architectures=("hopper",),
    throughput_hints={"nvidia-h200-141gb": 120, "nvidia-a100-80gb": 75},
)


def test_both_80gb_profiles_qualify_and_hopper_is_preferred() -> None:
    result = match(LLAMA_70B, [A100, H200, V100])
    assert result.placement.profile.name == "premium"
    assert {c.profile.name for c in result.candidates} == {"premium", "large"}
    assert result.warnings == () and not result.substituted


def test_fallback_warning_when_preferred_is_busy() -> None:
    busy = H200.model_copy(update={"available": 0})
    result = match(LLAMA_70B, [busy, A100, V100])
    assert result.placement.profile.name == "large"
    assert result.substituted
    assert result.warnings == (
        "Deployed to A100 instead of preferred H200 - performance may be lower (75 vs 120 tokens/sec)",
    )


def test_nothing_fits_error_text() -> None:
    with pytest.raises(NoCompatibleHardwareError) as info:
        match(LLAMA_70B, [V100])
    assert str(info.value) == (
        "Model requires 80GB+ GPU; available profiles: V100 (16GB). Please provision appropriate hardware."
    )
    assert info.value.rejected == {"standard": "16GB per GPU < 80GB"}
    assert isinstance(info.value, BudcoreError)


def test_strict_waits_for_the_preferred_type() -> None:
    strict = LLAMA_70B.model_copy(update={"strict": True})
    busy = H200.model_copy(update={"available": 0})
    result = match(strict, [busy, A100])
    assert result.placement.profile.name == "premium"
    assert not result.substituted
    assert any("will wait" in w for w in result.warnings)
    with pytest.raises(NoCompatibleHardwareError, match="requires 80GB\\+ hopper GPU"):
        match(strict, [A100])


def test_mig_slice_never_satisfies_a_whole_gpu_requirement() -> None:
    mig = HardwareProfile(
        name="mig", accelerators=("nvidia-a100-80gb",), mig_profile="3g.40gb", gpus_per_node=14
    )
    req = Requirement(min_memory_gib=20)
    with pytest.raises(NoCompatibleHardwareError, match="20GB\\+ whole GPU"):
        match(req, [mig])
    assert match(req.model_copy(update={"allow_mig": True}), [mig]).placement.profile.name == "mig"


def test_vendor_and_architecture_filters() -> None:
    mi300 = HardwareProfile(name="amd", accelerators=("amd-mi300x-192gb",), gpus_per_node=8)
    assert (
        match(Requirement(min_memory_gib=100, vendors=("amd",)), [H200, mi300]).placement.profile.name
        == "amd"
    )
    with pytest.raises(NoCompatibleHardwareError, match="requires 100GB\\+ Cdna3 GPU"):
        match(Requirement(min_memory_gib=100, architectures=("cdna3",)), [H200])


def test_serving_memory_drives_gpu_count_and_tensor_parallel() -> None:
    spec = ServingSpec(
        params=70e9,
        dtype="bf16",
        shape=ModelShape(layers=80, kv_heads=8, head_dim=128),
        batch=8,
        seq_len=8192,
    )
    # weights 140e9 B + KV 8×8192×80×2×8×128×2 B = 21.47e9 B, plus 10 % overhead
    assert spec.kv_cache_bytes == 8 * 8192 * 80 * 2 * 8 * 128 * 2
    assert spec.total_bytes == pytest.approx((140e9 + 21474836480) * 1.1)
    result = match(Requirement(serving=spec), [A100, H200])
    by_name = {c.profile.name: c for c in result.candidates}
    assert (by_name["large"].gpus, by_name["large"].tensor_parallel) == (
        4,
        4,
    )  # 166 GiB / 72 GiB usable → 3 → TP 4
    assert (by_name["premium"].gpus, by_name["premium"].tensor_parallel) == (2, 2)
    # bandwidth bound: 2 × 4.8 TB/s / (weights + KV) × batch 8
    assert by_name["premium"].tokens_per_second == pytest.approx(8 * 2 * 4800e9 / (140e9 + 21474836480))


def test_fixed_gpu_count_must_fit() -> None:
    spec = ServingSpec(params=72e9)  # 72e9 × 2 B × 1.1 = 158.4e9 B
    with pytest.raises(NoCompatibleHardwareError, match=r"requires 2x 82GB\+ GPU"):
        match(Requirement(serving=spec, gpus=2), [A100])  # 73.8 GiB per GPU > 80 GiB × 0.9
    assert match(Requirement(serving=spec, gpus=4), [A100]).placement.tensor_parallel == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gpus": 8, "tensor_parallel": 3}, "must divide"),
        ({"gpus": 4, "tensor_parallel": 2, "pipeline_parallel": 4}, "must not exceed"),
        ({"gpus": 1, "gpu_memory_utilization": 0.99}, "0.95"),
        ({"gpus": 1, "gpu_memory_utilization": 0.05}, "0.1"),
    ],
)
def test_parallelism_constraints(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        validate_model(Parallelism, kwargs)


def test_requirement_validation_is_a_budcore_error() -> None:
    with pytest.raises(ValidationErrors) as info:
        validate_model(Requirement, {"gpu_memory_utilization": 1.5})
    assert "gpu_memory_utilization" in str(info.value)
    with pytest.raises(ValidationError, match="strict needs"):
        validate_model(Requirement, {"strict": True})
    with pytest.raises(ValidationError, match="unknown dtype"):
        validate_model(ServingSpec, {"params": 1e9, "dtype": "fp7"})


def test_training_memory_mixed_precision_adam() -> None:
    spec = TrainingSpec(
        params=7e9, tokens=1e9, shape=ModelShape(layers=32, hidden_size=4096), micro_batch=1, seq_len=4096
    )
    assert spec.state_bytes == 7e9 * 16  # 2 weights + 2 grads + 12 fp32 master/m/v
    assert spec.activation_bytes == 4096 * 4096 * 32 * 2
    no_ckpt = spec.model_copy(update={"activation_checkpointing": False})
    assert no_ckpt.activation_bytes == 4096 * 4096 * 32 * 34
    lora = spec.model_copy(update={"trainable_params": 70e6})
    assert lora.state_bytes == 7e9 * 2 + 70e6 * 14


def test_min_shards_and_plan() -> None:
    assert min_shards(100 * GIB, 80, 0.9) == 2
    assert min_shards(1, 80) == 1
    plan = plan_parallelism(3, 8)
    assert plan is not None and (plan.tensor_parallel, plan.pipeline_parallel, plan.gpus) == (4, 1, 4)
    wide = plan_parallelism(12, 8)
    assert wide is not None and (wide.tensor_parallel, wide.pipeline_parallel) == (8, 2)
    assert plan_parallelism(3, 8, gpus=2) is None


def test_training_time_formula_and_calibration() -> None:
    a100 = CATALOG.get("nvidia-a100-80gb")
    assert a100 is not None
    spec = TrainingSpec(params=7e9, tokens=1e11)
    seconds = training_seconds(spec, a100, 8)
    assert seconds is not None
    assert seconds == pytest.approx(6 * 7e9 * 1e11 / (8 * 312e12 * 0.47))
    run = ObservedRun(
        accelerator="nvidia-a100-80gb", params=7e9, tokens=1e11, gpus=8, seconds=seconds * 0.47 / 0.5
    )
    assert implied_mfu(run, a100) == pytest.approx(0.5)
    table = calibrate_mfu([run], {a.slug: a for a in CATALOG.accelerators})
    assert table.mfu(a100) == pytest.approx(0.5)
    a100_40 = CATALOG.get("nvidia-a100-40gb")
    assert a100_40 is not None and table.mfu(a100_40) == pytest.approx(0.5)  # same architecture
    assert training_seconds(spec, a100, 8, table) == pytest.approx(run.seconds)
    a10g = CATALOG.get("nvidia-a10g-24gb")
    assert a10g is not None and training_seconds(spec, a10g, 1) is None  # no published peak
    with pytest.raises(ValueError, match="MFU"):
        MfuTable(values={"ampere": 1.5})


def test_decode_bound_is_memory_bandwidth() -> None:
    h100 = CATALOG.get("nvidia-h100-80gb")
    assert h100 is not None
    spec = ServingSpec(params=8e9)
    assert decode_tokens_per_second(spec, h100) == pytest.approx(3350e9 / 16e9)
    assert decode_tokens_per_second(spec, h100, efficiency=0.5) == pytest.approx(3350e9 / 32e9)


def test_unknown_accelerator_profiles_do_not_crash() -> None:
    odd = HardwareProfile(name="odd", accelerators=("product:H100-NVL",), memory_gib=94, gpus_per_node=2)
    result = match(Requirement(min_memory_gib=90), [odd])
    assert result.placement.profile.name == "odd"
    rows = recommend(Requirement(task="train", training=TrainingSpec(params=1e9, tokens=1e9)), [odd], None)
    assert rows[0].estimated_hours is None and "no peak" in rows[0].note


# Properties ---------------------------------------------------------------------------------

SLUGS = [a.slug for a in CATALOG.accelerators]
PRICES = price_book_from_hourly({slug: Decimal(i + 1) / 2 for i, slug in enumerate(SLUGS)})


@st.composite
def _profile(draw: st.DrawFn, index: int) -> HardwareProfile:
    slugs = draw(st.lists(st.sampled_from(SLUGS), min_size=1, max_size=2, unique=True))
    migs = [m.name for m in CATALOG.get(slugs[0]).mig_profiles] if len(slugs) == 1 else []  # type: ignore[union-attr]
    mig = draw(st.none() | st.sampled_from(migs)) if migs else None
    return HardwareProfile(
        name=f"p{index}",
        accelerators=tuple(slugs),
        gpus_per_node=draw(st.integers(1, 8)),
        node_names=tuple(f"n{index}-{j}" for j in range(draw(st.integers(1, 3)))),
        mig_profile=mig,
        shared=draw(st.booleans()),
        available=draw(st.none() | st.integers(0, 4)),
    )


_profiles = st.integers(1, 5).flatmap(lambda n: st.tuples(*[_profile(i) for i in range(n)]))


@st.composite
def _requirement(draw: st.DrawFn) -> Requirement:
    return Requirement(
        min_memory_gib=draw(st.none() | st.sampled_from([8.0, 16.0, 24.0, 40.0, 80.0, 120.0, 180.0])),
        gpus=draw(st.none() | st.integers(1, 16)),
        vendors=tuple(draw(st.lists(st.sampled_from(["nvidia", "amd", "intel"]), max_size=2, unique=True))),
        architectures=tuple(
            draw(st.lists(st.sampled_from(["ampere", "hopper", "cdna3", "volta"]), max_size=2, unique=True))
        ),
        allow_mig=draw(st.booleans()),
        allow_shared=draw(st.booleans()),
        preferred_architectures=tuple(draw(st.lists(st.sampled_from(["ampere", "hopper"]), max_size=1))),
    )


def _satisfies(req: Requirement, profile: HardwareProfile) -> bool:
    specs = profile.specs(CATALOG)
    memory = profile.device_memory_gib(CATALOG)
    capacity = profile.gpus_per_node * len(profile.node_names)
    return (
        (req.min_memory_gib is None or (memory is not None and memory >= req.min_memory_gib))
        and (not req.vendors or all(a.vendor in req.vendors for a in specs))
        and (not req.architectures or all(a.architecture in req.architectures for a in specs))
        and (req.allow_mig or profile.mig_profile is None)
        and (req.allow_shared or not profile.shared)
        and (req.gpus or 1) <= capacity
    )


@settings(max_examples=examples(150))
@given(_profiles, _requirement())
def test_a_match_always_satisfies_the_hard_filter(
    profiles: tuple[HardwareProfile, ...], req: Requirement
) -> None:
    try:
        result = match(req, profiles, prices=PRICES)
    except NoCompatibleHardwareError as exc:
        event("no match")
        assert not any(_satisfies(req, p) for p in profiles)
        assert str(exc).startswith("Model requires ")
        return
    assert _satisfies(req, result.placement.profile)
    assert all(_satisfies(req, c.profile) for c in result.candidates)
    assert {c.profile.name for c in result.candidates} == {p.name for p in profiles if _satisfies(req, p)}


@settings(max_examples=examples(150))
@given(_profiles, _requirement(), st.lists(st.sampled_from(SLUGS), min_size=1, max_size=3, unique=True))
def test_strict_mode_never_returns_another_type(
    profiles: tuple[HardwareProfile, ...], req: Requirement, preferred: list[str]
) -> None:
    strict = req.model_copy(
        update={"strict": True, "preferred_accelerators": tuple(preferred), "preferred_architectures": ()}
    )
    try:
        result = match(strict, profiles)
    except NoCompatibleHardwareError:
        return
    for candidate in result.candidates:
        assert set(candidate.profile.accelerators) <= set(preferred)
    assert not result.substituted


@settings(max_examples=examples(150))
@given(
    _profiles,
    st.sampled_from(SLUGS),
    st.integers(1, 8),
    st.none() | st.integers(1, 200),
    st.floats(min_value=1e8, max_value=2e10),
    st.data(),
)
def test_adding_a_cheaper_compatible_profile_never_makes_the_recommendation_dearer(
    profiles: tuple[HardwareProfile, ...],
    slug: str,
    per_node: int,
    deadline_hours: int | None,
    params: float,
    data: st.DataObject,
) -> None:
    req = Requirement(
        task="train",
        training=TrainingSpec(params=params, tokens=1e9, trainable_params=params / 100),
        gpus=1,
        allow_mig=True,
        allow_shared=True,
        deadline=timedelta(hours=deadline_hours) if deadline_hours else None,
    )
    try:
        before = recommend(req, profiles, PRICES)
    except NoCompatibleHardwareError:
        return
    top = before[0]
    if top.estimated_cost is None:
        return
    extra = HardwareProfile(name="zz-new", accelerators=(slug,), gpus_per_node=per_node, node_names=("x",))
    cheap = Decimal(data.draw(st.integers(0, 100))) / 100 * (top.hourly_price or Decimal(0))
    prices = price_book_from_hourly({**{s: PRICES.hourly_price(s) or 0 for s in SLUGS}, slug: cheap})
    with_new_prices = recommend(req, profiles, prices)
    try:
        after = recommend(req, (*profiles, extra), prices)
    except NoCompatibleHardwareError:  # pragma: no cover - adding a profile cannot remove matches
        raise AssertionError("adding a profile removed all matches") from None
    new_row = next((r for r in after if r.profile == "zz-new"), None)
    if new_row is None or new_row.estimated_cost is None or with_new_prices[0].estimated_cost is None:
        return
    if new_row.estimated_cost > with_new_prices[0].estimated_cost:
        return  # not cheaper than what was recommended: nothing to check
    event("compared")
    assert after[0].estimated_cost is not None
    assert after[0].estimated_cost <= with_new_prices[0].estimated_cost
