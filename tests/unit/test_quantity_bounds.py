"""Hostile quantities (issue #18): a value past 2^127 milli-units is a typed one-line error, never
decimal.Overflow, a 5,000-digit conversion or a hang; values up to there stay exact, so Kueue's own
"prevent integer overflow" cases (requests past int64) decide as in Kueue."""

from __future__ import annotations

import pytest

from budcore.domain.quantity import LIMIT_MILLI, QuantityRangeError, parse_quantity


@pytest.mark.parametrize("value", ["1e999999", "1e9999999999", "1e400", "9" * 5000, "-1e308", 2**200, 1e300])
def test_values_past_the_limit_are_refused_naming_the_field(value: str | int | float) -> None:
    with pytest.raises(QuantityRangeError, match=r"^quota\.gpu: quantity .* is out of range"):
        parse_quantity(value, "quota.gpu")


@pytest.mark.parametrize(
    ("value", "milli"),
    [
        ("9223372036854776", 9_223_372_036_854_776_000),  # past int64: exact, as Kueue compares it
        ("10Pi", 10 * 2**50 * 1000),
        ("1e-999999", 1),  # finer than a milli-unit rounds up, as Kubernetes does
        ("-1e-9999999", 0),
        ("0e999999999", 0),
        ("2.5e-3", 3),
    ],
)
def test_values_within_it_are_exact(value: str, milli: int) -> None:
    assert parse_quantity(value) == milli


def test_the_limit_itself_and_a_long_value_in_the_message() -> None:
    assert parse_quantity("1e35") == 10**38 < LIMIT_MILLI
    with pytest.raises(QuantityRangeError) as refused:
        parse_quantity("9" * 5000)
    assert "(5000 characters)" in str(refused.value) and len(str(refused.value)) < 200
