"""The price book: seed rows, resolution order, multipliers, exact Decimal money."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budcore.cost.prices import (
    PriceBook,
    PriceBookDocument,
    PriceRow,
    default_price_book,
    load_price_book,
    money,
    parse_price_book,
    price_book_from_hourly,
    sample_price_book,
)
from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.hardware.catalog import default_catalog
from budcore.ports import PricingSource
from budcore.testing.examples import examples


def test_price_books_implement_the_port() -> None:
    assert isinstance(default_price_book(), PricingSource)
    assert isinstance(sample_price_book(), PricingSource)
    assert list(default_price_book().tiers()) == ["on-demand", "spot", "reserved", "on-prem"]


@pytest.mark.parametrize(
    ("accelerator", "tier", "mode", "per_hour", "per_second_display"),
    [
        ("A100-80GB", "secure", "exclusive", "3.50", "0.00097"),
        ("A100-80GB", "on-prem", "exclusive", "1.50", "0.00042"),
        ("A100-80GB", "secure", "mig-3g.40gb", "1.75", "0.00049"),
        ("A100-80GB", "secure", "time-slicing", "1.20", "0.00033"),
        ("H100-SXM", "secure", "exclusive", "5.00", "0.00139"),
        ("RTX-4090", "community", "exclusive", "0.50", "0.00014"),
    ],
)
def test_seed_price_rows(
    accelerator: str, tier: str, mode: str, per_hour: str, per_second_display: str
) -> None:
    book = sample_price_book()
    assert book.price(accelerator, tier, mode=mode) == Decimal(per_hour)
    per_second = book.per_second(accelerator, tier, mode=mode)
    assert per_second is not None
    assert per_second * 3600 == Decimal(per_hour)  # exact, not rounded
    assert per_second.quantize(Decimal("0.00001")) == Decimal(per_second_display)


def test_names_resolve_through_the_catalog() -> None:
    book = sample_price_book()
    for name in ("A100-80GB", "A100-SXM4-80GB", "NVIDIA-A100-SXM4-80GB", "nvidia-a100-80gb"):
        assert book.hourly_price(name, "secure") == Decimal("3.50")
    assert book.hourly_price("nvidia-a100-80gb") == Decimal("3.50")  # on-demand is an alias of secure
    assert book.hourly_price("nvidia-h100-80gb", "secure") == Decimal("5.00")
    assert book.hourly_price("nvidia-h100-pcie-80gb", "secure") is None  # PCIe is another product
    assert book.hourly_price("RTX-4090", "secure") is None
    assert book.hourly_price("nvidia-a100-80gb", "spot") is None  # the sample book has no spot tier


def test_default_book_tiers_sharing_and_qos() -> None:
    book = default_price_book()
    assert book.hourly_price("nvidia-a100-80gb") == Decimal("3.50")
    assert book.hourly_price("nvidia-a100-80gb", "on-prem") == Decimal("1.50")  # explicit row wins
    assert book.hourly_price("nvidia-a100-80gb", "spot") == Decimal("3.50") * Decimal("0.40")
    assert book.hourly_price("nvidia-h100-80gb", "reserved") == Decimal("5.00") * Decimal("0.60")
    # MIG slices cost their share of the GPU's memory: 3g.40gb of 80 GB = half
    assert book.price("nvidia-a100-80gb", mode="mig-3g.40gb") == Decimal("1.75")
    assert book.hourly_price("nvidia-a100-80gb-mig-1g.10gb") == Decimal("3.50") / 8
    assert book.price("nvidia-a100-40gb", mode="mig-1g.5gb") == Decimal("2.50") / 8
    # time-slicing: one replica of four
    assert book.price("nvidia-t4-16gb", mode="time-slicing", replicas=4) == Decimal("0.125")
    assert book.price("nvidia-h100-80gb", qos="guaranteed") == Decimal("10.00")
    assert book.price("nvidia-h100-80gb", qos="best-effort") == Decimal("2.50")
    assert book.price("nvidia-h100-80gb", qos="burstable") == Decimal("5.00")
    assert book.hourly_price("acme-x1") is None
    assert book.hourly_price("nvidia-a100-80gb", "moon") is None


def test_every_catalog_accelerator_has_a_default_price() -> None:
    book = default_price_book()
    for accel in default_catalog().accelerators:
        price = book.hourly_price(accel.slug)
        assert price is not None and price > 0, accel.slug


def test_money_rounds_half_up_to_cents() -> None:
    assert money(Decimal("10.505")) == Decimal("10.51")
    assert money(Decimal("0.004")) == Decimal("0.00")
    assert money(Decimal("28.05")) == Decimal("28.05")


def test_inline_book() -> None:
    book = price_book_from_hourly({"nvidia-h200-141gb": "5", "RTX-4090": Decimal("0.5")})
    assert isinstance(book, PriceBook)
    assert book.hourly_price("NVIDIA-H200") == Decimal(5)
    assert book.hourly_price("rtx 4090") == Decimal("0.5")


HEAD = "version: x\ntiers: [a]\ndefault_tier: a\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: x\ntiers: [a]\ndefault_tier: b\n", "default_tier"),
        (
            "version: x\ntiers: [a]\ndefault_tier: a\nprices:\n  - {accelerator: T4, per_hour: '-1'}\n",
            "greater than or equal",
        ),
        (
            HEAD + "prices:\n  - {accelerator: T4, tier: b, per_hour: '1'}\n",
            "tier 'b'",
        ),
        (
            HEAD + "prices:\n  - {accelerator: T4, mode: half, per_hour: '1'}\n",
            "mode",
        ),
        ("version: x\ntiers: [a]\ndefault_tier: a\nsharing_multipliers: {mig: lots}\n", "mig"),
        ("version: x\ntiers: [a]\ndefault_tier: a\nqos_multipliers: {guaranteed: '-2'}\n", "negative"),
        ("- 1\n", "must be a mapping"),
        ("version: [\n", "invalid YAML"),
        ("version: x\ntiers: [a]\nprices: " + "9" * 5000 + "\n", "out of range"),  # was int()'s ValueError
        ("version: x\ntiers: [a]\nprices: 1" + ":0" * 300 + ".5\n", "out of range"),  # OverflowError
    ],
)
def test_bad_price_books_are_rejected_with_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_price_book(text, source="prices.yaml")
    assert message in str(info.value)
    assert info.value.source == "prices.yaml"


def test_duplicate_rows_are_an_error() -> None:
    text = (
        "version: x\ntiers: [a]\ndefault_tier: a\nprices:\n"
        "  - {accelerator: A100-80GB, per_hour: '1'}\n  - {accelerator: nvidia-a100-80gb, per_hour: '2'}\n"
    )
    with pytest.raises(ValidationError, match="duplicate price"):
        parse_price_book(text)


def test_load_from_file_and_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(default_price_book().to_yaml(), encoding="utf-8")
    again = load_price_book(path)
    assert again.document == default_price_book().document
    with pytest.raises(ValidationError, match="cannot read"):
        load_price_book(tmp_path / "missing.yaml")
    path.write_text("version: x\ntiers: []\ndefault_tier: a\n", encoding="utf-8")
    with pytest.raises(ValidationErrors):
        load_price_book(path)


_SLUGS = [a.slug for a in default_catalog().accelerators]
_money = st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False, allow_infinity=False)
_factor = st.decimals(min_value=0, max_value=5, places=3, allow_nan=False, allow_infinity=False)


@st.composite
def _books(draw: st.DrawFn) -> PriceBookDocument:
    tiers = draw(
        st.lists(
            st.sampled_from(["on-demand", "spot", "reserved", "on-prem", "secure"]),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    keys = draw(
        st.lists(
            st.tuples(
                st.sampled_from(_SLUGS),
                st.sampled_from(tiers),
                st.sampled_from(["exclusive", "time-slicing", "mps", "mig-3g.40gb"]),
            ),
            max_size=12,
            unique=True,
        )
    )
    return PriceBookDocument(
        version=draw(st.text(min_size=1, max_size=8)),
        tiers=tuple(tiers),
        default_tier=tiers[0],
        tier_multipliers={t: draw(_factor) for t in tiers[1:]},
        sharing_multipliers={
            "mig": draw(st.sampled_from(["memory-fraction", Decimal("0.5")])),
            "time-slicing": draw(st.sampled_from(["per-replica", Decimal("0.25")])),
        },
        qos_multipliers={"guaranteed": draw(_factor), "best-effort": draw(_factor)},
        prices=tuple(PriceRow(accelerator=a, tier=t, mode=m, per_hour=draw(_money)) for a, t, m in keys),
    )


@settings(max_examples=examples(60))
@given(_books())
def test_price_book_round_trip(document: PriceBookDocument) -> None:
    book = PriceBook(document)
    again = parse_price_book(book.to_yaml())
    assert again.document == document
    for row in document.prices:
        assert again.price(row.accelerator, row.tier, mode=row.mode) == row.per_hour
