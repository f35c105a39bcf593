"""Chargeback (issue #16): borrowed quota is attributed to lenders and paid at the lender's rate.

Worked example (``test_worked_example_borrower_pays_the_lenders_rate``): ClusterQueues ``a``
(4 GPUs, spot), ``b`` (4 GPUs, reserved, lendingLimit 2) and ``c`` (8 GPUs, on-demand) share
cohort ``org``; ``c`` already uses 2. Admitting 10 GPUs to ``a`` borrows 10 − 4 = 6. The lenders'
lendable unused quota is ``b``: min(4 − 0, 2) = 2 and ``c``: 8 − 2 = 6, which cover all 6 in
proportion 2 : 6 → ``b`` 1.5, ``c`` 4.5 GPUs. One hour of H100 (default book: on-demand 5.00,
reserved × 0.60 = 3.00, spot × 0.40 = 2.00):

    a: 4 nominal GPU-h at spot 2.00            =  8.00
       1.5 borrowed from b at reserved 3.00    =  4.50
       4.5 borrowed from c at on-demand 5.00   = 22.50   → charged 35.00, borrowed 27.00
    b: credited 4.50;  c: credited 22.50      → Σ credits 27.00 == Σ borrowed charges
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.admission import GPU, config, cq

from budcore.cost.chargeback import (
    UNATTRIBUTED,
    ChargebackPolicy,
    account_of,
    chargeback,
    lendable_unused,
    lenders_at,
    record_charge,
    round_money,
    split_borrowed,
)
from budcore.cost.metering import UsageRecord
from budcore.cost.prices import default_price_book, money
from budcore.domain.errors import ValidationError
from budcore.scheduling import Cohort, FlavorQuotas, ResourceGroup, ResourceQuota
from budcore.scheduling.quota import QuotaTree, QuotaUsage

T0 = datetime(2026, 3, 1, tzinfo=UTC)
H100 = "nvidia-h100-80gb"
BOOK = default_price_book()
FR = ("h100", GPU)


def usage_record(
    account: str,
    devices: int,
    *,
    seconds: int = 3600,
    lender: str | None = None,
    borrowed: bool | None = None,
    accelerator: str = H100,
    tier: str | None = None,
    job: str | None = None,
) -> UsageRecord:
    return UsageRecord(
        job_id=job or f"{account}-job",
        tenant=f"ns-{account}",
        flavor="h100",
        accelerator=accelerator,
        devices=devices,
        start=T0,
        end=T0 + timedelta(seconds=seconds),
        tier=tier,
        borrowed=lender is not None if borrowed is None else borrowed,
        cluster_queue=account,
        lender=lender,
    )


def org(**extra: object) -> QuotaTree:
    return QuotaTree(
        config(
            [
                cq("a", {"h100": {GPU: 4}}, cohort="org"),
                cq("b", {"h100": {GPU: (4, None, 2)}}, cohort="org"),
                cq("c", {"h100": {GPU: 8}}, cohort="org"),
                cq("solo", {"h100": {GPU: 2}}),
            ],
            **extra,  # type: ignore[arg-type]
        )
    )


# split_borrowed ------------------------------------------------------------------------------------
def test_split_is_largest_remainder_with_ties_by_name() -> None:
    assert split_borrowed(5, {"a": 2, "b": 1, "c": 1}) == {"a": 3, "b": 1, "c": 1}
    assert split_borrowed(1, {"b": 1, "a": 1}) == {"a": 1}  # a tie: the first name wins
    assert split_borrowed(2, {"b": 1, "a": 1, "c": 1}) == {"a": 1, "b": 1}
    assert split_borrowed(3, {"a": 1, "b": 2}) == {"a": 1, "b": 2}  # exact: no remainder
    assert split_borrowed(0, {"a": 1}) == {}
    assert split_borrowed(9, {"a": 1, "z": 0}) == {"a": 9}  # scaled up without a fallback


def test_with_a_fallback_lenders_cover_at_most_their_weight() -> None:
    assert split_borrowed(7, {"a": 2, "b": 1, "c": 1}, rest="cohort:x") == {
        "a": 2,
        "b": 1,
        "c": 1,
        "cohort:x": 3,
    }
    assert split_borrowed(2, {"a": 2, "b": 2}, rest="cohort:x") == {"a": 1, "b": 1}
    assert split_borrowed(4, {"a": 0}, rest="cohort:x") == {"cohort:x": 4}


def test_nobody_to_attribute_to_is_an_error() -> None:
    with pytest.raises(ValidationError, match="no lender has a positive weight") as info:
        split_borrowed(3, {"a": 0})
    assert info.value.path == "lenders"
    with pytest.raises(ValidationError, match="must not be negative") as info:
        split_borrowed(3, {"a": -1})
    assert info.value.path == "lenders.a"
    with pytest.raises(ValidationError, match="whole number"):
        split_borrowed(1.5, {"a": 1})  # type: ignore[arg-type]


@given(
    amount=st.integers(0, 10**9),
    weights=st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 10**6), min_size=1).filter(
        lambda w: sum(w.values()) > 0
    ),
)
def test_apportionment_sums_exactly_and_stays_within_one_unit(amount: int, weights: dict[str, int]) -> None:
    shares = split_borrowed(amount, weights)
    assert sum(shares.values()) == amount
    total = sum(weights.values())
    for name, weight in weights.items():
        assert abs(Fraction(shares.get(name, 0)) - Fraction(amount * weight, total)) < 1
    capped = split_borrowed(amount, weights, rest="rest")
    assert sum(capped.values()) == amount
    assert all(capped.get(name, 0) <= weight for name, weight in weights.items())
    assert capped.get("rest", 0) == max(0, amount - total)


# lenders_at ----------------------------------------------------------------------------------------
def test_lenders_share_by_lendable_unused_capped_by_lending_limit() -> None:
    tree = org()
    usage = QuotaUsage(tree)
    usage.add("c", {FR: 2000})
    assert lendable_unused(tree.node("b"), FR, usage) == 2000  # lendingLimit 2 of nominal 4
    assert lendable_unused(tree.node("c"), FR, usage) == 6000
    # 10 GPUs into a (nominal 4): 6 borrowed, 2 : 6 between b and c.
    assert lenders_at(tree, usage, "a", FR, 10_000) == {"b": 1500, "c": 4500}


def test_within_nominal_borrows_nothing_and_only_the_excess_is_attributed() -> None:
    tree = org()
    usage = QuotaUsage(tree)
    assert lenders_at(tree, usage, "a", FR, 4000) == {}
    usage.add("a", {FR: 3000})
    # 3 used of 4: admitting 2 borrows 1, from b (2 lendable) and c (8) in proportion 2 : 8.
    assert lenders_at(tree, usage, "a", FR, 2000) == {"b": 200, "c": 800}
    assert lenders_at(tree, usage, "solo", FR, 5000) == {}  # no cohort: nothing to borrow from


def test_what_the_queues_cannot_cover_goes_to_the_cohorts_quota() -> None:
    owning = Cohort(
        name="org",
        resource_groups=(
            ResourceGroup(
                covered_resources=(GPU,),
                flavors=(
                    FlavorQuotas(name="h100", resources=(ResourceQuota(name=GPU, nominal_quota=3000),)),
                ),
            ),
        ),
    )
    tree = org(cohorts=[owning])
    usage = QuotaUsage(tree)
    usage.add("b", {FR: 4000})
    usage.add("c", {FR: 7000})
    # a borrows 5; c lends its last 1, the cohort's own quota (3) the rest, then the root cohort.
    assert lenders_at(tree, usage, "a", FR, 9000) == {"c": 1000, "cohort:org": 4000}
    tree_without = org()
    usage_without = QuotaUsage(tree_without)
    usage_without.add("b", {FR: 4000})
    usage_without.add("c", {FR: 8000})
    assert lenders_at(tree_without, usage_without, "a", FR, 5000) == {"cohort:org": 1000}


def test_unknown_queue_is_named() -> None:
    with pytest.raises(ValidationError, match="unknown ClusterQueue 'zzz'") as info:
        lenders_at(org(), QuotaUsage(org()), "zzz", FR, 1)
    assert info.value.path == "cluster_queue"


# pricing -------------------------------------------------------------------------------------------
def test_worked_example_borrower_pays_the_lenders_rate() -> None:
    policy = ChargebackPolicy(tier_of={"a": "spot", "b": "reserved"})
    records = [
        usage_record("a", 4),
        usage_record("a", 3, seconds=1800, lender="b"),  # 1.5 GPU-h
        usage_record("a", 9, seconds=1800, lender="c"),  # 4.5 GPU-h
    ]
    result = chargeback(records, BOOK, policy)
    a, b, c = result.lines["a"], result.lines["b"], result.lines["c"]
    assert (a.charged, a.borrowed_charges, a.credited) == (35, 27, 0)
    assert (b.charged, b.credited, b.net) == (0, Fraction(9, 2), Fraction(-9, 2))
    assert (c.credited, c.lent_device_seconds) == (Fraction(45, 2), 9 * 1800)
    assert result.borrowed_charges == result.credited == 27
    assert a.device_seconds == 4 * 3600 + 12 * 1800 and a.borrowed_device_seconds == 12 * 1800


def test_nominal_usage_is_charged_at_the_queues_tier_else_the_records() -> None:
    nominal = usage_record("a", 1, tier="reserved")
    assert record_charge(nominal, BOOK, ChargebackPolicy()) == Fraction(3)  # the record's tier
    assert record_charge(nominal, BOOK, ChargebackPolicy({"a": "spot"})) == Fraction(2)  # the queue's
    untiered = usage_record("a", 1)
    assert record_charge(untiered, BOOK, ChargebackPolicy()) == Fraction(5)  # the book default
    # Borrowed: the lender's tier, never the borrower's or the record's.
    lent = usage_record("a", 1, lender="b", tier="spot")
    assert record_charge(lent, BOOK, ChargebackPolicy({"a": "spot"})) == Fraction(5)
    assert record_charge(lent, BOOK, ChargebackPolicy({"b": "reserved"})) == Fraction(3)


def test_records_without_a_queue_are_the_tenants_account() -> None:
    record = usage_record("a", 1).model_copy(update={"cluster_queue": None})
    assert account_of(record) == "ns-a"
    assert set(chargeback([record], BOOK).lines) == {"ns-a"}


def test_borrowed_without_a_recorded_lender_is_still_credited() -> None:
    record = usage_record("a", 2, borrowed=True)
    result = chargeback([record], BOOK, ChargebackPolicy({"a": "spot"}))
    assert result.lines["a"].borrowed_charges == 10  # the default tier: the lender is unknown
    assert result.lines[UNATTRIBUTED].credited == 10


def test_unpriced_usage_is_never_free() -> None:
    records = [usage_record("a", 2, lender="b", accelerator="quantum-gpu"), usage_record("a", 1)]
    assert record_charge(records[0], BOOK, ChargebackPolicy()) is None
    result = chargeback(records, BOOK)
    a, b = result.lines["a"], result.lines["b"]
    assert (a.charged, a.unpriced_device_seconds, a.borrowed_charges) == (5, 2 * 3600, 0)
    assert (b.credited, b.unpriced_lent_device_seconds) == (0, 2 * 3600)
    assert result.unpriced == ("quantum-gpu",)


def test_a_tier_the_book_lacks_is_an_error_not_an_unpriced_report() -> None:
    with pytest.raises(ValidationError, match="tier 'gold' is not in price book") as info:
        chargeback([usage_record("a", 1)], BOOK, ChargebackPolicy({"a": "gold"}))
    assert info.value.path == "tier_of.a"
    with pytest.raises(ValidationError, match="non-empty"):
        ChargebackPolicy({"a": ""})


def test_round_money_is_half_up_in_one_step() -> None:
    assert round_money(Fraction(1, 200)) == Decimal("0.01")  # exactly half a cent: up
    assert round_money(Fraction(-1, 200)) == Decimal("-0.01")  # half away from zero, like money()
    assert round_money(Fraction(1, 3)) == Decimal("0.33")
    assert str(round_money(Fraction(0))) == "0.00"
    value = Fraction(12345678901234567, 1000)
    assert round_money(value) == money(Decimal(12345678901234567) / 1000)


# The property: borrowed charges net to zero across a cohort ---------------------------------------
QUEUES = ("a", "b", "c", "d")
TIERS = (None, "on-demand", "spot", "reserved", "on-prem")


@st.composite
def cohorts(draw: st.DrawFn) -> tuple[QuotaTree, list[tuple[str, int, int]], dict[str, str]]:
    """A cohort of 2–4 queues (some with lending limits), admissions that fit, account tiers."""
    size = draw(st.integers(2, len(QUEUES)))
    queues = []
    for name in QUEUES[:size]:
        nominal = draw(st.integers(0, 16))
        lending = draw(st.none() | st.integers(0, nominal))
        queues.append(cq(name, {"h100": {GPU: (nominal, None, lending)}}, cohort="org"))
    tree = QuotaTree(config(queues))
    admissions = draw(
        st.lists(
            st.tuples(st.sampled_from(QUEUES[:size]), st.integers(1, 8000), st.integers(1, 7200)),
            max_size=12,
        )
    )
    tier_of = {
        name: tier for name in (*QUEUES[:size], "cohort:org") if (tier := draw(st.sampled_from(TIERS)))
    }
    return tree, admissions, tier_of


@given(cohorts(), st.sampled_from((H100, "nvidia-a100-80gb", "quantum-gpu")))
def test_borrowed_charges_net_to_zero_across_a_cohort(
    case: tuple[QuotaTree, list[tuple[str, int, int]], Mapping[str, str]], accelerator: str
) -> None:
    tree, admissions, tier_of = case
    usage = QuotaUsage(tree)
    records: list[UsageRecord] = []
    for i, (queue, amount, seconds) in enumerate(admissions):
        node = tree.node(queue)
        if usage.available(node, FR) < amount:
            continue  # the scheduler would not admit it
        before = usage.get(node, FR)
        nominal = node.nominal.get(FR, 0)
        lenders = lenders_at(tree, usage, queue, FR, amount)
        borrowed = max(0, before + amount - nominal) - max(0, before - nominal)
        assert sum(lenders.values()) == borrowed
        for lender, share in lenders.items():
            assert lender != queue
            if not lender.startswith("cohort:"):
                assert share <= lendable_unused(tree.node(lender), FR, usage)
        own = amount - borrowed
        job = f"j{i}"
        if own:
            records.append(usage_record(queue, own, seconds=seconds, accelerator=accelerator, job=job))
        for lender, share in lenders.items():
            records.append(
                usage_record(queue, share, seconds=seconds, lender=lender, accelerator=accelerator, job=job)
            )
        usage.add(queue, {FR: amount})
    result = chargeback(records, BOOK, ChargebackPolicy(tier_of))
    assert result.borrowed_charges == result.credited  # exactly: Fractions
    assert sum((line.net for line in result.lines.values()), Fraction(0)) == result.charged - result.credited
    for account, line in result.lines.items():
        lent = [r for r in records if r.lender == account]
        priced = [record_charge(r, BOOK, ChargebackPolicy(tier_of)) for r in lent]
        assert line.credited == sum((p for p in priced if p is not None), Fraction(0))
        assert line.lent_device_seconds == sum(r.device_seconds for r in lent)
