"""Recommendation ranking under a deadline, and accelerator names resolved through the catalog.

* A row with no time estimate is not "meets the deadline" and never outranks (or is recommended
  over) a row with an estimate, whether that estimate meets the deadline or not.
* ``accelerators`` / ``preferred_accelerators`` / ``throughput_hints`` accept what the catalog
  resolves (``H100``); an unknown or ambiguous name is a ``ValidationError`` with close matches.
* Non-finite sizes are validation errors naming the field, never ``OverflowError``.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from budcore.cost.prices import price_book_from_hourly
from budcore.domain.errors import ValidationError
from budcore.domain.validation import validate_model
from budcore.hardware.estimate import ServingSpec, TrainingSpec
from budcore.hardware.matching import NoCompatibleHardwareError, Requirement, match, recommend
from budcore.hardware.profiles import HardwareProfile


def _profile(name: str, slug: str, per_node: int = 8) -> HardwareProfile:
    return HardwareProfile(name=name, accelerators=(slug,), gpus_per_node=per_node)


# A10G has no peak-throughput figure in the catalog: its rows have no time and no cost estimate.
A10G = _profile("a10g", "nvidia-a10g-24gb")
H100 = _profile("h100", "nvidia-h100-80gb")
H100_PCIE = _profile("h100-pcie", "nvidia-h100-pcie-80gb")
A100 = _profile("a100", "nvidia-a100-80gb")
B200 = _profile("b200", "nvidia-b200-180gb")
MI300 = _profile("mi300", "amd-mi300x-192gb")
PRICES = price_book_from_hourly(
    {
        "nvidia-a10g-24gb": "1",
        "nvidia-h100-80gb": "5",
        "nvidia-h100-pcie-80gb": "4",
        "nvidia-a100-80gb": "3",
        "nvidia-b200-180gb": "9",
        "amd-mi300x-192gb": "4",
    }
)
TRAIN_7B = Requirement(task="train", training=TrainingSpec(params=7e9, tokens=1e11, trainable_params=7e7))


def _rows(deadline: timedelta | None, profiles: list[HardwareProfile]) -> list[tuple[str, bool | None, bool]]:
    req = TRAIN_7B.model_copy(update={"deadline": deadline})
    return [(r.profile, r.feasible_by_deadline, r.recommended) for r in recommend(req, profiles, PRICES)]


def test_unknown_never_outranks_known_infeasible() -> None:
    """The audit case: nothing meets a 1 h deadline; the check mark went to the A10G row."""
    rows = recommend(TRAIN_7B.model_copy(update={"deadline": timedelta(hours=1)}), [A10G, H100, A100], PRICES)
    assert [r.profile for r in rows][-1] == "a10g"
    top = rows[0]
    assert top.recommended and top.profile != "a10g"
    assert top.estimated_hours is not None and top.estimated_cost is not None
    assert top.feasible_by_deadline is False
    assert "no profile meets the deadline" in top.note
    assert [r.recommended for r in rows].count(True) == 1
    a10g = rows[-1]
    assert a10g.feasible_by_deadline is None and not a10g.recommended


def test_meets_then_misses_then_unknown() -> None:
    # A deadline only the fastest profile (B200) meets.
    hours = {r.profile: r.estimated_hours for r in recommend(TRAIN_7B, [H100, A100, B200], PRICES)}
    assert hours["b200"] is not None and hours["h100"] is not None and hours["a100"] is not None
    assert hours["b200"] < hours["h100"] < hours["a100"]
    deadline = timedelta(hours=float(hours["b200"]) + 0.05)
    rows = recommend(TRAIN_7B.model_copy(update={"deadline": deadline}), [A10G, A100, B200, H100], PRICES)
    assert [(r.profile, r.feasible_by_deadline) for r in rows] == [
        ("b200", True),  # the dearest, but the only one that meets the deadline
        ("h100", False),  # then the rest by cost (H100 is 3x faster at 5/3 the price) ...
        ("a100", False),
        ("a10g", None),  # ... and the row with no estimate last
    ]
    assert [r.recommended for r in rows] == [True, False, False, False]
    assert "no profile meets" not in rows[0].note


def test_no_recommendation_when_no_row_has_an_estimate_under_a_deadline() -> None:
    rows = _rows(timedelta(hours=1), [A10G])
    assert rows == [("a10g", None, False)]


def test_without_a_deadline_estimated_rows_still_come_first() -> None:
    rows = _rows(None, [A10G, H100, A100])
    assert rows[0][2] is True and rows[0][0] != "a10g"
    assert rows[-1][0] == "a10g"


# Names -------------------------------------------------------------------------------------------


def test_alias_in_the_allow_list_resolves() -> None:
    req = Requirement(min_memory_gib=10, accelerators=("H100",))
    result = match(req, [A100, H100, A10G])
    assert result.placement.profile.name == "h100"
    assert {c.profile.name for c in result.candidates} == {"h100"}


def test_alias_as_a_preference_is_honoured() -> None:
    req = Requirement(min_memory_gib=10, preferred_accelerators=("H100-SXM5-80GB",))
    assert match(req, [MI300, A100, H100]).placement.profile.name == "h100"
    strict = Requirement(min_memory_gib=10, preferred_accelerators=("h100",), strict=True)
    assert [c.profile.name for c in match(strict, [MI300, H100]).candidates] == ["h100"]


def test_alias_in_throughput_hints_resolves() -> None:
    req = Requirement(min_memory_gib=10, throughput_hints={"H100": 500.0, "A100-80GB": 100.0})
    result = match(req, [A100, H100])
    rates = {c.profile.name: c.tokens_per_second for c in result.candidates}
    assert rates == {"h100": 500.0, "a100": 100.0}


@pytest.mark.parametrize("field", ["accelerators", "preferred_accelerators"])
def test_unknown_name_is_an_error_with_close_matches(field: str) -> None:
    req = Requirement(min_memory_gib=10, **{field: ("nvidia-h100-80gbx",)})
    with pytest.raises(ValidationError) as info:
        match(req, [H100, A100])
    assert info.value.path == f"{field}[0]"
    assert "unknown accelerator 'nvidia-h100-80gbx'" in str(info.value)
    assert "nvidia-h100-80gb" in str(info.value)


def test_unknown_name_without_close_matches_still_says_where_to_look() -> None:
    with pytest.raises(
        ValidationError, match=r"unknown accelerator 'nvidia-zz9000'.*budcore hardware catalog"
    ):
        match(Requirement(min_memory_gib=10, accelerators=("nvidia-zz9000",)), [H100])
    with pytest.raises(ValidationError, match="unknown accelerator"):
        recommend(Requirement(min_memory_gib=10, preferred_accelerators=("zz9000",)), [H100], PRICES)


def test_ambiguous_family_name_lists_its_members() -> None:
    with pytest.raises(ValidationError) as info:
        match(Requirement(min_memory_gib=10, accelerators=("A100",)), [A100])
    message = str(info.value)
    assert "ambiguous" in message
    assert "nvidia-a100-40gb" in message and "nvidia-a100-pcie-80gb" in message


def test_unknown_vendor_and_architecture_are_errors() -> None:
    with pytest.raises(ValidationError, match=r"vendors\[0\]: unknown vendor 'nvidea'; did you mean nvidia"):
        match(Requirement(min_memory_gib=10, vendors=("nvidea",)), [H100])
    with pytest.raises(ValidationError, match="unknown architecture 'hoper'; did you mean hopper"):
        match(Requirement(min_memory_gib=10, preferred_architectures=("hoper",)), [H100])
    assert (
        match(Requirement(min_memory_gib=10, vendors=("NVIDIA",)), [MI300, H100]).placement.profile.name
        == "h100"
    )


def test_a_type_only_a_profile_carries_is_accepted_verbatim() -> None:
    custom = HardwareProfile(name="rtx", accelerators=("product:RTX-4090",), gpus_per_node=1)
    req = Requirement(preferred_accelerators=("product:RTX-4090",))
    result = match(req, [custom, H100])
    assert result.placement.profile.name == "rtx"


# Non-finite sizes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"min_memory_gib": float("inf")}, "min_memory_gib"),
        ({"serve_hours": float("inf")}, "serve_hours"),
        ({"serving": {"params": float("inf")}}, "serving.params"),
        ({"task": "train", "training": {"params": 7e9, "tokens": float("inf")}}, "training.tokens"),
        ({"task": "train", "training": {"params": 1e308, "tokens": 1e12}}, "training.params"),
        ({"task": "train", "training": {"params": 1e200, "tokens": 1e200}}, "training.tokens"),
        ({"throughput_hints": {"nvidia-h100-80gb": float("nan")}}, "throughput_hints.nvidia-h100-80gb"),
        ({"min_memory_gib": 10, "deadline": timedelta(hours=-1)}, "deadline"),
    ],
)
def test_non_finite_or_absurd_sizes_are_validation_errors(data: dict[str, object], path: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_model(Requirement, data)
    assert info.value.path == path


def test_infinite_values_smuggled_past_the_constructor_are_caught_by_match() -> None:
    """``model_copy(update=...)`` skips validation; match/recommend re-validate the requirement."""
    bad = Requirement(min_memory_gib=10).model_copy(update={"min_memory_gib": float("inf")})
    with pytest.raises(ValidationError) as info:
        match(bad, [H100])
    assert info.value.path == "min_memory_gib"
    spec = ServingSpec(params=7e9).model_copy(update={"params": float("inf")})
    with pytest.raises(ValidationError) as info:
        recommend(
            Requirement(serving=ServingSpec(params=7e9)).model_copy(update={"serving": spec}), [H100], PRICES
        )
    assert info.value.path == "serving.params"


def test_a_long_but_finite_serve_is_priced() -> None:
    rows = recommend(Requirement(serving=ServingSpec(params=7e9), serve_hours=1e6), [H100], PRICES)
    assert rows[0].estimated_cost == Decimal("5") * Decimal("1000000.0")


@pytest.mark.parametrize("params", [1e300, 1e307])
def test_a_huge_but_finite_model_is_simply_not_matched(params: float) -> None:
    with pytest.raises(NoCompatibleHardwareError, match="requires"):
        match(Requirement(serving=ServingSpec(params=params)), [H100])
    with pytest.raises(NoCompatibleHardwareError):
        recommend(
            Requirement(task="train", training=TrainingSpec(params=params / 10, tokens=1.0)), [H100], PRICES
        )
