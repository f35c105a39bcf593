"""Unpriced usage is reported, never free; bad price/estimate arguments are typed errors.

* ``tenant_spend`` used to count usage on an accelerator the book cannot price as $0, so a budget
  check passed silently. Now it reports the unpriced device-seconds and accelerators, and the
  budget verdicts that would need their cost are "cannot tell" (``None``).
* ``price_book_from_hourly`` / ``estimate_cost`` / ``PriceBook.price`` raise budcore's
  ``ValidationError`` naming the argument, instead of ``decimal.InvalidOperation`` or a full price
  for a sharing mode that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from budcore.cost import UsageRecord, default_price_book, estimate_cost, price_book_from_hourly, tenant_spend
from budcore.domain.errors import ValidationError
from budcore.domain.validation import validate_model

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BOOK = price_book_from_hourly({"nvidia-a100-80gb": "3"})
MONTH = {"period_start": T0, "period_end": T0 + timedelta(days=30)}


def _usage(accelerator: str, hours: float, devices: int = 8, tenant: str = "t") -> UsageRecord:
    return UsageRecord(
        job_id=f"j-{accelerator}",
        tenant=tenant,
        flavor="f",
        accelerator=accelerator,
        devices=devices,
        start=T0,
        end=T0 + timedelta(hours=hours),
    )


def test_unpriced_usage_is_reported_not_free() -> None:
    """The audit case: 80 GPU-hours on an unknown accelerator."""
    spend = tenant_spend(
        [_usage("nvidia-zz9000", 10)],
        BOOK,
        tenant="t",
        as_of=T0 + timedelta(hours=10),
        budget=Decimal(100),
        **MONTH,
    )
    assert spend.unpriced_device_hours == 80
    assert spend.unpriced_device_seconds == 80 * 3600
    assert spend.unpriced_accelerators == ("nvidia-zz9000",)
    assert not spend.fully_priced
    assert spend.spent == 0 and spend.projected == 0  # the priced part
    # No verdict that would need the missing prices.
    assert spend.within_budget is None
    assert spend.projected_overrun is None
    assert spend.remaining is None
    assert spend.spent_fraction is None


def test_mixed_usage_counts_the_priced_part_and_flags_the_rest() -> None:
    records = [_usage("nvidia-a100-80gb", 10, devices=1), _usage("acme-x1", 2, devices=2)]
    spend = tenant_spend(
        records, BOOK, tenant="t", as_of=T0 + timedelta(hours=10), budget=Decimal(10_000), **MONTH
    )
    assert spend.spent == Decimal(30)
    assert spend.unpriced_device_hours == 4
    assert spend.within_budget is None  # the priced part fits, the rest is unknown
    over = tenant_spend(
        records, BOOK, tenant="t", as_of=T0 + timedelta(hours=10), budget=Decimal(10), **MONTH
    )
    assert over.within_budget is False  # the priced part alone is over: unknown prices cannot fix that


def test_usage_clipped_to_the_period_counts_only_the_clipped_unpriced_time() -> None:
    spend = tenant_spend(
        [_usage("acme-x1", 10, devices=1)], BOOK, tenant="t", as_of=T0 + timedelta(hours=4), **MONTH
    )
    assert spend.unpriced_device_seconds == 4 * 3600
    other = tenant_spend(
        [_usage("acme-x1", 10, tenant="u")], BOOK, tenant="t", as_of=T0 + timedelta(hours=4), **MONTH
    )
    assert other.fully_priced and other.unpriced_accelerators == ()


def test_fully_priced_spend_keeps_its_verdicts() -> None:
    records = [_usage("nvidia-a100-80gb", 10, devices=1)]
    spend = tenant_spend(
        records, BOOK, tenant="t", as_of=T0 + timedelta(days=1), budget=Decimal(1000), **MONTH
    )
    assert spend.fully_priced
    assert spend.spent == 30 and spend.projected == 900
    assert spend.within_budget is True
    assert spend.projected_overrun == 0 and spend.remaining == 970
    tight = tenant_spend(
        records, BOOK, tenant="t", as_of=T0 + timedelta(days=1), budget=Decimal(500), **MONTH
    )
    assert tight.within_budget is False and tight.projected_overrun == 400
    no_budget = tenant_spend(records, BOOK, tenant="t", as_of=T0 + timedelta(days=1), **MONTH)
    assert no_budget.within_budget is None


# Typed errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "", "NaN", "Infinity", "-1", -1, None, True, [1]])
def test_price_book_from_hourly_rejects_a_bad_price_naming_the_accelerator(value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        price_book_from_hourly({"h100": value})
    assert info.value.path.startswith("prices.h100")


def test_price_book_from_hourly_accepts_numbers() -> None:
    book = price_book_from_hourly({"h100": "2.5", "nvidia-a100-80gb": 3, "t4": Decimal("0.5")})
    assert book.price("H100") == Decimal("2.5")
    assert book.price("nvidia-t4-16gb") == Decimal("0.5")


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"devices": 1, "seconds": Decimal("NaN")}, "seconds"),
        ({"devices": 1, "seconds": Decimal("Infinity")}, "seconds"),
        ({"devices": 1, "seconds": float("inf")}, "seconds"),
        ({"devices": 1, "seconds": float("nan")}, "seconds"),
        ({"devices": 1, "seconds": -1}, "seconds"),
        ({"devices": 1, "seconds": "10"}, "seconds"),
        ({"devices": -1, "seconds": 10}, "devices"),
        ({"devices": 1.5, "seconds": 10}, "devices"),
        ({"devices": 1, "seconds": 10, "mode": "bogus"}, "mode"),
        ({"devices": 1, "seconds": 10, "mode": "time-slicing", "replicas": 0}, "replicas"),
    ],
)
def test_estimate_cost_rejects_bad_arguments_by_name(kwargs: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationError) as info:
        estimate_cost(default_price_book(), "nvidia-h100-80gb", **kwargs)
    assert info.value.path == path


def test_estimate_cost_accepts_exact_and_float_seconds() -> None:
    book = price_book_from_hourly({"nvidia-a100-80gb": "3.6"})
    assert estimate_cost(book, "nvidia-a100-80gb", devices=2, seconds=Decimal("0.5")) == Decimal("0.001")
    assert estimate_cost(book, "nvidia-a100-80gb", devices=2, seconds=1000) == Decimal(2)
    assert estimate_cost(book, "nvidia-a100-80gb", devices=1, seconds=1.5) == Decimal("0.0015")


@pytest.mark.parametrize("mode", ["bogus", "mig", "MIG-3g.40gb", "time_slicing", ""])
def test_an_unknown_sharing_mode_is_an_error_not_a_full_price(mode: str) -> None:
    book = default_price_book()
    for call in (
        lambda: book.price("nvidia-a100-80gb", mode=mode),
        lambda: book.per_second("nvidia-a100-80gb", mode=mode),
        lambda: book.sharing_multiplier("nvidia-a100-80gb", mode),
    ):
        with pytest.raises(ValidationError) as info:
            call()
        assert info.value.path == "mode"


def test_known_modes_still_price() -> None:
    book = default_price_book()
    full = book.price("nvidia-a100-80gb")
    assert full is not None
    assert book.price("nvidia-a100-80gb", mode="exclusive") == full
    assert book.price("nvidia-a100-80gb", mode="mig-3g.40gb") is not None
    slice_price = book.price("nvidia-a100-80gb", mode="time-slicing", replicas=4)
    assert slice_price is not None and slice_price < full


def test_replicas_below_one_is_an_error() -> None:
    with pytest.raises(ValidationError) as info:
        default_price_book().price("nvidia-a100-80gb", mode="time-slicing", replicas=0)
    assert info.value.path == "replicas"


def test_a_usage_record_with_an_unknown_mode_is_rejected() -> None:
    data = {
        "job_id": "j",
        "tenant": "t",
        "flavor": "f",
        "accelerator": "nvidia-a100-80gb",
        "devices": 1,
        "start": T0,
        "end": T0,
        "mode": "bogus",
    }
    with pytest.raises(ValidationError) as info:
        validate_model(UsageRecord, data)
    assert info.value.path == "mode"
