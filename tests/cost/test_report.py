"""Cost reports: every line rounded once, totals that add up exactly, clipping, groupings."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from budcore.cost.chargeback import ChargebackPolicy
from budcore.cost.metering import UsageRecord
from budcore.cost.prices import default_price_book, price_book_from_hourly
from budcore.cost.report import (
    NO_QUEUE,
    TOTAL,
    cost_report,
    report_json,
    report_table,
    write_csv,
)
from budcore.domain.errors import ValidationError

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
H100 = "nvidia-h100-80gb"
# 1/3 per device-hour: a second costs 1/10800, so every line has a remainder to round.
THIRDS = price_book_from_hourly({H100: "0.333333", "nvidia-t4-16gb": "0.50"})
BOOK = default_price_book()


def rec(job: str, *, seconds: int, start: datetime = T0, devices: int = 1, **kw: object) -> UsageRecord:
    fields: dict[str, object] = {
        "job_id": job,
        "tenant": "team-a",
        "flavor": "h100",
        "accelerator": H100,
        "devices": devices,
        "start": start,
        "end": start + timedelta(seconds=seconds),
    }
    fields.update(kw)
    return UsageRecord.model_validate(fields)


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_by_queue_charges_the_borrower_and_credits_the_lender() -> None:
    records = [
        rec("j1", seconds=3600, devices=4, tenant="team-a", cluster_queue="a"),
        rec("j1", seconds=3600, devices=2, tenant="team-a", cluster_queue="a", borrowed=True, lender="b"),
        rec("j2", seconds=3600, devices=1, tenant="team-b", cluster_queue="b"),
        rec("j3", seconds=1800, devices=1, tenant="team-c"),  # no ClusterQueue
    ]
    policy = ChargebackPolicy({"a": "spot", "b": "reserved"})
    report = cost_report(records, BOOK, by="queue", start=T0, end=T0 + DAY, policy=policy)
    rows = {row.key: row for row in report.rows}
    assert list(rows) == [NO_QUEUE, "a", "b"]
    # a: 4 GPU-h at spot 2.00 + 2 borrowed GPU-h at b's reserved 3.00
    assert (rows["a"].charged, rows["a"].credited, rows["a"].net) == (Decimal("14.00"), 0, Decimal("14.00"))
    assert (rows["b"].charged, rows["b"].credited, rows["b"].net) == (
        Decimal("3.00"),
        Decimal("6.00"),
        Decimal("-3.00"),
    )
    assert (rows[NO_QUEUE].charged, rows[NO_QUEUE].device_hours) == (Decimal("2.50"), Decimal("0.5000"))
    assert report.total.credited == Decimal("6.00")  # == the borrowed charges in a's line
    assert report.total.net == report.total.charged - report.total.credited == Decimal("13.50")
    assert report.currency == "USD"


def test_by_tenant_and_job_a_lender_gets_its_own_line() -> None:
    records = [
        rec("j1", seconds=3600, tenant="team-a", cluster_queue="a", borrowed=True, lender="b"),
        rec("j2", seconds=3600, tenant="team-b", cluster_queue="b"),
    ]
    by_tenant = cost_report(records, BOOK, by="tenant", start=T0, end=T0 + DAY)
    assert [(r.key, r.charged, r.credited) for r in by_tenant.rows] == [
        ("team-a", Decimal("5.00"), 0),
        ("team-b", Decimal("5.00"), 0),
        ("lender:b", 0, Decimal("5.00")),
    ]
    by_job = cost_report(records, BOOK, by="job", start=T0, end=T0 + DAY)
    assert [r.key for r in by_job.rows] == ["j1", "j2", "lender:b"]
    assert by_job.total.net == by_tenant.total.net == Decimal("5.00")


def test_records_are_clipped_to_the_window() -> None:
    records = [
        rec("early", seconds=7200, start=T0 - timedelta(hours=1)),  # one hour inside
        rec("late", seconds=7200, start=T0 + DAY - timedelta(minutes=30)),  # half an hour inside
        rec("outside", seconds=3600, start=T0 + DAY),
    ]
    report = cost_report(records, BOOK, by="job", start=T0, end=T0 + DAY)
    assert [(r.key, r.device_hours, r.charged) for r in report.rows] == [
        ("early", Decimal("1.0000"), Decimal("5.00")),
        ("late", Decimal("0.5000"), Decimal("2.50")),
    ]


def test_unpriced_usage_is_never_free() -> None:
    records = [
        rec("j1", seconds=3600, accelerator="quantum-gpu", tenant="team-q"),
        rec("j2", seconds=3600, tenant="team-q"),
    ]
    report = cost_report(records, BOOK, by="tenant", start=T0, end=T0 + DAY)
    (row,) = report.rows
    assert (row.charged, row.unpriced_device_hours, row.device_hours) == (
        Decimal("5.00"),
        Decimal("1.0000"),
        Decimal("2.0000"),
    )
    assert not report.fully_priced and report.unpriced == ("quantum-gpu",)
    data = report_json(report)
    assert data["fully_priced"] is False and data["unpriced_accelerators"] == ["quantum-gpu"]
    assert "have no price in the book (quantum-gpu)" in str(report_table(report).caption)


def test_json_money_is_strings() -> None:
    report = cost_report([rec("j1", seconds=3600)], BOOK, by="job", start=T0, end=T0 + DAY)
    data = json.loads(json.dumps(report_json(report)))
    assert data["rows"] == [
        {
            "key": "j1",
            "device_hours": "1.0000",
            "charged": "5.00",
            "credited": "0.00",
            "net": "5.00",
            "unpriced_device_hours": "0.0000",
        }
    ]
    assert data["total"]["charged"] == "5.00" and data["currency"] == "USD"
    assert data["from"] == "2026-03-01T00:00:00+00:00" and data["price_book"] == BOOK.version


def test_bad_windows_and_groupings_are_named() -> None:
    with pytest.raises(ValidationError, match="must be after start") as info:
        cost_report([], BOOK, by="job", start=T0, end=T0)
    assert info.value.path == "end"
    with pytest.raises(ValidationError, match="timezone-aware"):
        cost_report([], BOOK, by="job", start=datetime(2026, 3, 1), end=T0 + DAY)  # a naive time
    with pytest.raises(ValidationError, match="unknown grouping 'team'"):
        cost_report([], BOOK, by="team", start=T0, end=T0 + DAY)  # type: ignore[arg-type]


def test_rounding_each_line_once_can_differ_from_rounding_the_total() -> None:
    # Six jobs of 10 minutes at 0.333333/h cost 0.0555555 each, printed 0.06: the total is the sum
    # of the printed lines, 0.36, not the exact total 0.333333 rounded (0.33), so a spreadsheet
    # summing the column agrees with the report.
    records = [rec(f"j{i}", seconds=600, devices=1) for i in range(6)]
    report = cost_report(records, THIRDS, by="job", start=T0, end=T0 + DAY)
    assert [r.charged for r in report.rows] == [Decimal("0.06")] * 6
    assert report.total.charged == Decimal("0.36")


@given(
    st.lists(
        st.tuples(
            st.sampled_from(("team-a", "team-b", "team-c")),
            st.sampled_from((None, "a", "b", "c")),
            st.integers(1, 50_000),
            st.integers(1, 16),
            st.sampled_from((None, "a", "b", "cohort:org")),
            st.sampled_from((H100, "nvidia-t4-16gb", "quantum-gpu")),
        ),
        max_size=30,
    ),
    st.sampled_from(("tenant", "queue", "job")),
)
def test_csv_columns_add_up_to_their_totals_exactly(
    spec: list[tuple[str, str | None, int, int, str | None, str]], by: str
) -> None:
    records = [
        rec(
            f"j{i}",
            seconds=seconds,
            devices=devices,
            tenant=tenant,
            cluster_queue=queue,
            borrowed=lender is not None,
            lender=lender,
            accelerator=accelerator,
            start=T0 + timedelta(seconds=i * 977),
        )
        for i, (tenant, queue, seconds, devices, lender, accelerator) in enumerate(spec)
    ]
    report = cost_report(records, THIRDS, by=by, start=T0, end=T0 + DAY)  # type: ignore[arg-type]
    out = io.StringIO()
    write_csv(report, out)
    rows = csv_rows(out.getvalue())
    *lines, total = rows
    assert total[by] == TOTAL and all(row["currency"] == "USD" for row in rows)
    for column in ("device_hours", "charged", "credited", "net", "unpriced_device_hours"):
        assert sum((Decimal(row[column]) for row in lines), Decimal(0)) == Decimal(total[column])
    for row in rows:
        assert Decimal(row["net"]) == Decimal(row["charged"]) - Decimal(row["credited"])
        assert Decimal(row["charged"]).as_tuple().exponent == -2
