"""Per-second metering, chargeback breakdowns, job and tenant cost — all exact Decimal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budcore.cost.metering import (
    UsageRecord,
    billable_seconds,
    estimate_cost,
    job_costs,
    meter,
    record_cost,
    tenant_spend,
)
from budcore.cost.prices import default_price_book, money, price_book_from_hourly, sample_price_book
from budcore.domain.errors import ValidationError
from budcore.domain.validation import validate_model
from budcore.hardware.matching import Requirement, recommend
from budcore.hardware.profiles import HardwareProfile
from budcore.testing.examples import examples

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SEED_004 = price_book_from_hourly(
    {"nvidia-h100-80gb": "5", "nvidia-a100-80gb": "3", "nvidia-t4-16gb": "0.50"}
)


def _record(job: str, accelerator: str, hours: float, *, start: datetime = T0, **kw: object) -> UsageRecord:
    return UsageRecord.model_validate(
        {
            "job_id": job,
            "tenant": kw.pop("tenant", "team-a"),
            "flavor": kw.pop("flavor", accelerator),
            "accelerator": accelerator,
            "devices": kw.pop("devices", 1),
            "start": start,
            "end": start + timedelta(hours=hours),
            **kw,
        }
    )


def test_pipeline_example_402_vs_3650() -> None:
    """Seed 004, use case 4: train 6 h, fine-tune 4 h, serve 24/7 for a 30-day month (720 h)."""
    aware = [
        _record("train", "nvidia-h100-80gb", 6),
        _record("finetune", "nvidia-a100-80gb", 4),
        _record("inference", "nvidia-t4-16gb", 720),
    ]
    generic = [r.model_copy(update={"accelerator": "nvidia-h100-80gb", "flavor": "gpu-any"}) for r in aware]
    aware_report, generic_report = meter(aware, SEED_004), meter(generic, SEED_004)
    assert aware_report.by_job == {
        "train": aware_report.by_job["train"],
        "finetune": aware_report.by_job["finetune"],
        "inference": aware_report.by_job["inference"],
    }
    assert [aware_report.by_job[j].cost for j in ("train", "finetune", "inference")] == [30, 12, 360]
    assert aware_report.total.cost == Decimal("402")
    assert [generic_report.by_job[j].cost for j in ("train", "finetune", "inference")] == [30, 20, 3600]
    assert generic_report.total.cost == Decimal("3650")
    assert generic_report.total.cost - aware_report.total.cost == Decimal("3248")


def test_the_inference_step_is_what_recommend_picks() -> None:
    profiles = [
        HardwareProfile(name="h100", accelerators=("nvidia-h100-80gb",), gpus_per_node=8),
        HardwareProfile(name="a100", accelerators=("nvidia-a100-80gb",), gpus_per_node=8),
        HardwareProfile(name="t4", accelerators=("nvidia-t4-16gb",), gpus_per_node=1),
    ]
    rows = recommend(Requirement(min_memory_gib=16, serve_hours=720), profiles, SEED_004)
    assert (rows[0].profile, rows[0].estimated_cost) == ("t4", Decimal("360"))
    assert rows[-1].estimated_cost == Decimal("3600")


def test_cost_formula_with_sharing_and_qos() -> None:
    book = sample_price_book()
    mig = _record("j", "A100-80GB", 2, mode="mig-3g.40gb", devices=2, tier="secure")
    assert record_cost(mig, book) == Decimal("7.00")  # 2 slices × 2 h × $1.75
    ts = _record("j", "A100-80GB", 1, mode="time-slicing", qos="guaranteed")
    assert record_cost(ts, book) == Decimal("2.40")  # $1.20 × 2 (guaranteed)
    be = _record("j", "nvidia-a100-80gb", 1, qos="best-effort", tier="on-prem")
    assert record_cost(be, book) == Decimal("0.75")
    assert record_cost(_record("j", "acme-x1", 1), book) is None


def test_per_second_billing_rounds_up_each_record() -> None:
    assert billable_seconds(timedelta(seconds=1, microseconds=1)) == 2
    assert billable_seconds(timedelta(seconds=59)) == 59
    assert billable_seconds(timedelta(0)) == 0
    record = _record("j", "nvidia-h100-80gb", 0)
    record = record.model_copy(update={"end": record.start + timedelta(milliseconds=1500)})
    assert record.seconds == 2
    assert record_cost(record, SEED_004) == Decimal(5) / 3600 * 2


@settings(max_examples=examples(100))
@given(
    st.lists(st.integers(1, 5000), min_size=1, max_size=30), st.sampled_from(["0.50", "3.50", "5.00", "1.37"])
)
def test_splitting_usage_into_seconds_is_exact(chunks: list[int], price: str) -> None:
    """A run metered as many records costs exactly what one record of the same length costs."""
    book = price_book_from_hourly({"nvidia-a100-80gb": price})
    records, start = [], T0
    for seconds in chunks:
        end = start + timedelta(seconds=seconds)
        records.append(
            UsageRecord(
                job_id="j",
                tenant="t",
                flavor="f",
                accelerator="nvidia-a100-80gb",
                devices=1,
                start=start,
                end=end,
            )
        )
        start = end
    whole = UsageRecord(
        job_id="j", tenant="t", flavor="f", accelerator="nvidia-a100-80gb", devices=1, start=T0, end=start
    )
    assert meter(records, book).total.cost == record_cost(whole, book)
    assert meter(records, book).total.device_seconds == sum(chunks)


def test_breakdowns_for_chargeback() -> None:
    records = [
        _record("a", "nvidia-a100-80gb", 1, tenant="team-a", priority="high", devices=8),
        _record(
            "b", "nvidia-a100-80gb", 2, tenant="team-b", priority="low", borrowed=True, flavor="a100-borrow"
        ),
        _record("c", "nvidia-t4-16gb", 1, tenant="team-b", mode="time-slicing", replicas=4),
        _record("d", "acme-x1", 1, tenant="team-b"),
    ]
    report = meter(records, default_price_book())
    assert report.by_tenant["team-a"].cost == Decimal("28.00")
    assert report.by_tenant["team-b"].cost == Decimal("7.00") + Decimal("0.125")
    assert report.by_quota["borrowed"].device_seconds == 7200
    assert report.by_quota["nominal"].device_seconds == 8 * 3600 + 3600 + 3600
    assert report.by_mode["time-slicing"].cost == Decimal("0.125")
    assert report.by_priority["high"].device_hours == 8
    assert report.by_flavor["a100-borrow"].cost == Decimal("7.00")
    assert report.unpriced == ("acme-x1",)
    assert report.total.unpriced_device_seconds == 3600
    assert report.currency == "USD"


def test_job_estimated_vs_actual() -> None:
    estimate = estimate_cost(SEED_004, "nvidia-a100-80gb", devices=2, seconds=3 * 3600)
    assert estimate == Decimal("18")
    records = [_record("j1", "nvidia-a100-80gb", 3.5, devices=2)]
    (cost, other) = job_costs(records, SEED_004, {"j1": estimate, "j2": Decimal("5")})
    assert (cost.job_id, cost.actual, cost.variance) == ("j1", Decimal("21"), Decimal("3"))
    assert cost.variance_ratio == Decimal("21") / Decimal("18") - 1
    assert (other.job_id, other.actual, other.variance) == ("j2", Decimal(0), Decimal(-5))
    with pytest.raises(ValidationError):
        estimate_cost(SEED_004, "nvidia-a100-80gb", devices=-1, seconds=1)


def test_tenant_spend_to_date_and_projection() -> None:
    period_end = T0 + timedelta(days=30)
    records = [
        _record("a", "nvidia-a100-80gb", 24, devices=4),  # day 1: 96 GPU-hours
        _record("b", "nvidia-a100-80gb", 48, start=T0 + timedelta(days=9), devices=1),  # runs past as_of
        _record("c", "nvidia-a100-80gb", 10, tenant="team-b"),
        _record("d", "nvidia-a100-80gb", 5, start=T0 - timedelta(days=1)),  # before the period
    ]
    spend = tenant_spend(
        records,
        SEED_004,
        tenant="team-a",
        period_start=T0,
        period_end=period_end,
        as_of=T0 + timedelta(days=10),
        budget=Decimal("1000"),
    )
    assert spend.spent == Decimal(3) * (96 + 24)  # only the first 24 h of job b count so far
    assert spend.projected == spend.spent * 3
    assert money(spend.projected) == Decimal("1080.00")
    assert spend.remaining == Decimal(640)
    assert spend.projected_overrun == Decimal(80)
    assert spend.spent_fraction == Decimal("0.36")
    early = tenant_spend(records, SEED_004, tenant="team-a", period_start=T0, period_end=period_end, as_of=T0)
    assert early.spent == 0 and early.projected == 0 and early.remaining is None


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (
            {
                "job_id": "j",
                "tenant": "t",
                "flavor": "f",
                "accelerator": "a",
                "devices": 0,
                "start": T0,
                "end": T0,
            },
            "devices",
        ),
        (
            {
                "job_id": "j",
                "tenant": "t",
                "flavor": "f",
                "accelerator": "a",
                "devices": 1,
                "start": T0.replace(tzinfo=None),
                "end": T0,
            },
            "start",
        ),
        (
            {
                "job_id": "j",
                "tenant": "t",
                "flavor": "f",
                "accelerator": "a",
                "devices": 1,
                "start": T0,
                "end": T0 - timedelta(seconds=1),
            },
            "",
        ),
    ],
)
def test_bad_records_name_the_field(data: dict[str, object], path: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_model(UsageRecord, data)
    assert info.value.path == path


def test_bad_periods() -> None:
    with pytest.raises(ValidationError, match="after period_start"):
        tenant_spend([], SEED_004, tenant="t", period_start=T0, period_end=T0, as_of=T0)
    with pytest.raises(ValidationError, match="timezone"):
        tenant_spend([], SEED_004, tenant="t", period_start=T0.replace(tzinfo=None), period_end=T0, as_of=T0)
