"""``budcore cost report`` over a usage file (in process, via ``main``): formats, options, errors."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from budcore.cli import main
from budcore.cli.cost import parse_instant, parse_tier_of
from budcore.cost.metering import UsageRecord
from budcore.cost.usagefile import write_usage
from budcore.domain.errors import ValidationError

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def rec(job: str, tenant: str, queue: str | None, hours: int, **kw: object) -> UsageRecord:
    return UsageRecord.model_validate(
        {
            "job_id": job,
            "tenant": tenant,
            "flavor": "h100",
            "accelerator": "nvidia-h100-80gb",
            "devices": 1,
            "start": T0 + timedelta(hours=1),
            "end": T0 + timedelta(hours=1 + hours),
            "cluster_queue": queue,
            **kw,
        }
    )


RECORDS = [
    rec("j1", "team-a", "a", 2),
    rec("j1", "team-a", "a", 1, borrowed=True, lender="b"),
    rec("j2", "team-b", "b", 1),
    rec("j3", "team-c", None, 4, start=T0 - timedelta(days=1), end=T0 - timedelta(hours=20)),
]


@pytest.fixture
def usage(tmp_path: Path) -> Path:
    path = tmp_path / "usage.csv"
    write_usage(path, RECORDS)
    return path


def table_rows(out: str) -> list[list[str]]:
    """The cells of a rich table's body and footer lines."""
    return [
        [cell.strip() for cell in line.strip().strip("│┃").split("│")]
        for line in out.splitlines()
        if line.startswith("│")
    ]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(["cost", "report", *args]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def test_csv_by_queue_adds_up(usage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(
        capsys,
        *("--from", "2026-03-01", "--to", "2026-03-02", "--by", "queue", "--format", "csv"),
        *("--usage", str(usage), "--tier-of", "a=spot", "--tier-of", "b=reserved"),
    )
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["queue"], r["charged"], r["credited"], r["net"]) for r in rows] == [
        ("a", "7.00", "0.00", "7.00"),  # 2 h at spot 2.00 + 1 h borrowed at b's reserved 3.00
        ("b", "3.00", "3.00", "0.00"),  # 1 h at reserved, credited 3.00 for lending
        ("(total)", "10.00", "3.00", "7.00"),
    ]
    assert {r["currency"] for r in rows} == {"USD"}


def test_json_by_tenant(usage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(
        capsys, "--from", "2026-03-01T00:00:00", "--to", "2026-03-02T00:00:00+00:00", "--by", "tenant",
        "--format", "json", "--usage", str(usage),
    )  # fmt: skip
    data = json.loads(out)
    assert data["from"] == "2026-03-01T00:00:00+00:00"  # naive means UTC
    assert [(r["key"], r["charged"], r["credited"]) for r in data["rows"]] == [
        ("team-a", "15.00", "0.00"),
        ("team-b", "5.00", "0.00"),
        ("lender:b", "0.00", "5.00"),
    ]
    assert data["total"] == {
        "device_hours": "4.0000",
        "charged": "20.00",
        "credited": "5.00",
        "net": "15.00",
        "unpriced_device_hours": "0.0000",
    }


def test_table_by_job_with_a_price_book_file(
    usage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = tmp_path / "book.yaml"
    book.write_text(
        "version: test\ncurrency: EUR\ntiers: [list]\ndefault_tier: list\n"
        "prices:\n  - {accelerator: nvidia-h100-80gb, per_hour: '10.00'}\n"
    )
    out = run(
        capsys, "--from", "2026-03-01", "--to", "2026-03-02", "--by", "job", "--usage", str(usage),
        "--price-book", str(book),
    )  # fmt: skip
    assert "Cost by job in EUR" in out and "price book test" in out
    cells = {row[0]: row[1:] for row in table_rows(out)}
    assert cells["j1"] == ["3.0000", "30.00", "0.00", "30.00", "0.0000"]  # 2 h own + 1 h borrowed
    assert cells["j2"] == ["1.0000", "10.00", "0.00", "10.00", "0.0000"]
    assert cells["lender:b"] == ["0.0000", "0.00", "10.00", "-10.00", "0.0000"]
    assert cells["(total)"] == ["4.0000", "40.00", "10.00", "30.00", "0.0000"]


def test_the_window_excludes_usage_outside_it(usage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(
        capsys, "--from", "2026-02-28T02:00:00Z", "--to", "2026-03-01", "--by", "tenant", "--format", "json",
        "--usage", str(usage),
    )  # fmt: skip
    data = json.loads(out)
    assert [(r["key"], r["device_hours"]) for r in data["rows"]] == [("team-c", "2.0000")]  # 02:00-04:00


W = ["--from", "2026-03-01", "--to", "2026-03-02"]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--from", "2026-03-02", "--to", "2026-03-01"], "error: --to: must be after --from"),
        (["--from", "2026-03-01", "--to", "2026-03-01"], "error: --to: must be after --from"),
        (["--from", "March 1st", "--to", "2026-03-02"], "error: --from: expected an ISO date or time"),
        ([*W, "--by", "team"], "error: --by: unknown grouping"),
        ([*W, "--format", "xml"], "error: --format: unknown format 'xml'; use table, csv, json"),
        ([*W, "--tier-of", "a"], "error: --tier-of: expected ACCOUNT=TIER"),
        ([*W, "--tier-of", "a=gold"], "error: --tier-of: tier 'gold' is not in price book"),
        ([*W, "--price-book", "nope"], "error: --price-book: 'nope' is neither a price book file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    usage: Path, args: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["cost", "report", *args, "--usage", str(usage)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(error) and err.count("\n") == 1, err


def test_a_source_is_required_and_only_one(usage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    window = ["cost", "report", "--from", "2026-03-01", "--to", "2026-03-02"]
    assert main(window) == 2
    assert capsys.readouterr().err.startswith("error: --usage: no usage to report")
    assert main([*window, "--usage", str(usage), "--store", "postgres"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main([*window, "--url", "mysql://x"]) == 2
    assert "must be a postgresql:// URL" in capsys.readouterr().err
    assert main([*window, "--store", "nosuch"]) == 2
    assert "no usage_log named 'nosuch'" in capsys.readouterr().err


def test_a_bad_usage_file_names_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "usage.csv"
    write_usage(path, RECORDS[:1])
    path.write_text(path.read_text().replace(",1,2026", ",0,2026"))
    assert main(["cost", "report", "--from", "2026-03-01", "--to", "2026-03-02", "--usage", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {path}:2: devices: ")


def test_instants_and_tiers_parse() -> None:
    assert parse_instant("2026-03-01", "--from") == T0
    assert parse_instant("2026-03-01T02:00:00+02:00", "--from") == T0
    assert parse_instant("2026-03-01T00:00:00Z", "--from") == T0
    assert parse_tier_of(["a=spot", " b = reserved "]) == {"a": "spot", "b": "reserved"}
    with pytest.raises(ValidationError, match="two tiers"):
        parse_tier_of(["a=spot", "a=reserved"])
