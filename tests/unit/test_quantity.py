from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from budcore.domain.errors import ValidationError
from budcore.domain.quantity import format_quantity, parse_quantity
from budcore.domain.resources import ResourceVector


@pytest.mark.parametrize(
    ("text", "milli"),
    [
        ("100", 100_000),
        ("500m", 500),
        ("1.5", 1500),
        ("64Gi", 64 * 2**30 * 1000),
        ("1Ki", 1024_000),
        ("2k", 2_000_000),
        ("1e3", 1_000_000),
        ("0.1", 100),
        (".5", 500),
        ("1n", 1),  # finer than milli rounds up, like Kubernetes' MilliValue()
        (8, 8000),
        (1.5, 1500),
        (Decimal("0.25"), 250),
    ],
)
def test_parse_quantity(text: object, milli: int) -> None:
    assert parse_quantity(text) == milli  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "abc", "1.2.3", "5 Gi", "1Qi", "--1", True, None, [1], float("nan")])
def test_parse_quantity_rejects_garbage_with_field(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        parse_quantity(bad, "spec.quota")  # type: ignore[arg-type]
    assert info.value.path == "spec.quota"


def test_no_float_drift() -> None:
    assert parse_quantity("0.1") + parse_quantity("0.2") == parse_quantity("0.3")


@given(st.integers(min_value=0, max_value=10**15), st.sampled_from([None, "memory", "cpu", "nvidia.com/gpu"]))
def test_format_round_trips(milli: int, resource: str | None) -> None:
    assert parse_quantity(format_quantity(milli, resource)) == milli


def test_format_prefers_binary_suffix_for_memory() -> None:
    assert format_quantity(parse_quantity("64Gi"), "memory") == "64Gi"
    assert format_quantity(parse_quantity("8"), "nvidia.com/gpu") == "8"
    assert format_quantity(500, "cpu") == "500m"


def test_resource_vector_rejects_negative_and_names_field() -> None:
    with pytest.raises(ValidationError) as info:
        ResourceVector.of({"cpu": "-1"}, field="pod_sets[0].resources")
    assert info.value.path == "pod_sets[0].resources.cpu"
    with pytest.raises(ValidationError):
        ResourceVector.of({"bad name!": 1})


def test_resource_vector_arithmetic() -> None:
    a = ResourceVector.of({"cpu": 2, "nvidia.com/gpu": 1})
    b = ResourceVector.of({"cpu": "500m", "memory": "1Gi"})
    total = a + b
    assert total["cpu"] == 2500
    assert total.to_kube() == {"cpu": "2500m", "memory": "1Gi", "nvidia.com/gpu": "1"}
    assert a.scaled(4)["nvidia.com/gpu"] == 4000
    assert a.fits_in(total)
    assert not total.fits_in(a)
    assert ResourceVector.of({"cpu": 0}) == ResourceVector()
    assert hash(ResourceVector.of({"cpu": 1})) == hash(ResourceVector({"cpu": 1000}))
