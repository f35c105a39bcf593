"""Usage files (``usage.csv`` / ``.jsonl``): round trips, bad rows named by file:line:field, the log."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budcore.cost.metering import UsageRecord
from budcore.cost.usagefile import FIELDS, MAX_PROBLEMS, FileUsageLog, read_usage, write_usage
from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.plugins import PluginRegistry
from budcore.ports.spend import UsageLog

T0 = datetime(2026, 3, 1, tzinfo=UTC)
CET = timezone(timedelta(hours=1))


def rec(job: str, start: datetime, hours: float = 1, **kw: object) -> UsageRecord:
    fields: dict[str, object] = {
        "job_id": job,
        "tenant": "team-a",
        "flavor": "h100",
        "accelerator": "nvidia-h100-80gb",
        "devices": 2,
        "start": start,
        "end": start + timedelta(hours=hours),
    }
    fields.update(kw)
    return UsageRecord.model_validate(fields)


RECORDS = [
    rec("j1", T0),
    rec(
        "j2",
        datetime(2026, 3, 1, 2, 30, 0, 123456, tzinfo=CET),
        0.5,
        tenant="team-b",
        mode="time-slicing",
        replicas=4,
        tier="spot",
        priority="high",
        qos="guaranteed",
        borrowed=True,
        cluster_queue="cq-b",
        lender="cohort:org",
    ),
    rec("j3", T0 + timedelta(hours=3), borrowed=True, cluster_queue="cq-a"),  # lender not recorded
]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"usage{suffix}"
    assert write_usage(path, RECORDS) == 3
    assert read_usage(path) == RECORDS
    assert not list(tmp_path.glob(".*partial"))


def test_csv_layout_is_the_documented_one(tmp_path: Path) -> None:
    path = tmp_path / "usage.csv"
    write_usage(path, RECORDS[1:2])
    header, row = path.read_text().splitlines()
    assert header.split(",") == list(FIELDS)
    assert FIELDS[:7] == ("job_id", "tenant", "flavor", "accelerator", "devices", "start", "end")
    cells = dict(zip(FIELDS, row.split(","), strict=True))
    assert cells["start"] == "2026-03-01T02:30:00.123456+01:00"  # ISO 8601 with its offset
    assert (cells["borrowed"], cells["lender"]) == ("true", "cohort:org")
    write_usage(path, RECORDS[:1])
    cells = dict(zip(FIELDS, path.read_text().splitlines()[1].split(","), strict=True))
    assert (cells["tier"], cells["qos"], cells["borrowed"]) == ("", "", "false")  # empty = None


def test_jsonl_is_one_model_dump_a_line(tmp_path: Path) -> None:
    path = tmp_path / "usage.jsonl"
    write_usage(path, RECORDS)
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [r.model_dump(mode="json") for r in RECORDS]


def test_csv_columns_may_be_reordered_and_defaults_left_empty(tmp_path: Path) -> None:
    path = tmp_path / "usage.csv"
    path.write_text(
        "tenant,job_id,flavor,accelerator,devices,start,end,mode,borrowed\n"
        "team-a,j1,h100,nvidia-h100-80gb,2,2026-03-01T00:00:00+00:00,2026-03-01T01:00:00Z,,\n"
    )
    assert read_usage(path) == [RECORDS[0]]


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ("j1,team-a,h100,nvidia-h100-80gb,zero,{s},{e}", "devices", "valid integer"),
        ("j1,team-a,h100,nvidia-h100-80gb,2,2026-03-01T00:00:00,{e}", "start", "timezone-aware"),
        ("j1,team-a,h100,nvidia-h100-80gb,2,{e},{s}", "end", "is before start"),
        ("j1,,h100,nvidia-h100-80gb,2,{s},{e}", "tenant", "Field required"),
        ("j1,team-a,h100,nvidia-h100-80gb,2,{s},{e},yes", "borrowed", "expected true or false"),
        ("j1,team-a,h100,nvidia-h100-80gb,2,{s},{e},false,cohort:x", "lender", "only on borrowed"),
    ],
)
def test_a_bad_csv_row_names_file_line_and_field(tmp_path: Path, row: str, field: str, message: str) -> None:
    path = tmp_path / "usage.csv"
    header = "job_id,tenant,flavor,accelerator,devices,start,end"
    if field in ("borrowed", "lender"):
        header += ",borrowed" + (",lender" if field == "lender" else "")
    good = "j0,team-a,h100,nvidia-h100-80gb,1,{s},{e}" + "," * (header.count(",") - 6)
    s, e = "2026-03-01T00:00:00Z", "2026-03-01T01:00:00Z"
    path.write_text(f"{header}\n{good.format(s=s, e=e)}\n\n{row.format(s=s, e=e)}\n")
    with pytest.raises(ValidationError) as info:
        read_usage(path)
    error = info.value
    assert (error.source, error.line, error.path) == (str(path), 4, field)
    assert message in error.message
    assert str(error).startswith(f"{path}:4: {field}: ")


def test_every_bad_row_is_listed_up_to_a_limit(tmp_path: Path) -> None:
    path = tmp_path / "usage.jsonl"
    good = json.dumps(RECORDS[0].model_dump(mode="json"))
    bad = json.dumps({**RECORDS[0].model_dump(mode="json"), "devices": 0})
    path.write_text("\n".join([good, "{not json", "[1]", *[bad] * (MAX_PROBLEMS + 3)]) + "\n")
    with pytest.raises(ValidationErrors) as info:
        read_usage(path)
    errors = info.value.errors
    assert (
        str(errors[0])
        == f"{path}:2: invalid JSON: Expecting property name enclosed in double quotes (column 2)"
    )
    assert str(errors[1]) == f"{path}:3: expected a JSON object, got list"
    assert str(errors[2]).startswith(f"{path}:4: devices: ")
    assert len(errors) == MAX_PROBLEMS + 1 and errors[-1].message == "... and 5 more problem(s)"


def test_a_bad_header_or_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "usage.csv"
    path.write_text("job_id,tenant,gpus\n")
    with pytest.raises(ValidationError, match=r"usage.csv:1: unknown column\(s\) 'gpus'"):
        read_usage(path)
    path.write_text("")
    with pytest.raises(ValidationError, match=r"usage\.csv:1: empty file"):
        read_usage(path)
    with pytest.raises(ValidationError, match=r"missing.csv: cannot read usage file"):
        read_usage(tmp_path / "missing.csv")
    with pytest.raises(ValidationError, match=r"must end in .csv or .jsonl, got 'usage.parquet'"):
        write_usage(tmp_path / "usage.parquet", RECORDS)


def test_the_file_log_clips_filters_and_sorts(tmp_path: Path) -> None:
    path = tmp_path / "usage.csv"
    write_usage(path, [RECORDS[2], RECORDS[1], RECORDS[0]])
    log = FileUsageLog(path)
    assert isinstance(log, UsageLog)
    window = log.usage(T0 + timedelta(minutes=30), T0 + timedelta(hours=3, minutes=30))
    assert [(r.job_id, r.start, r.end) for r in window] == [
        ("j1", T0 + timedelta(minutes=30), T0 + timedelta(hours=1)),  # clipped to the window
        ("j2", RECORDS[1].start, RECORDS[1].end),  # 02:30+01:00 is 01:30Z: after j1
        ("j3", T0 + timedelta(hours=3), T0 + timedelta(hours=3, minutes=30)),
    ]
    assert [r.job_id for r in log.usage(T0, T0 + timedelta(days=1), tenant="team-b")] == ["j2"]
    write_usage(path, RECORDS[:1])  # the file changed: read again
    assert [r.job_id for r in log.usage(T0, T0 + timedelta(days=1))] == ["j1"]
    with pytest.raises(ValidationError, match="timezone-aware"):
        log.usage(datetime(2026, 3, 1), T0)  # a naive time


def test_the_file_log_is_the_built_in_usage_log(tmp_path: Path) -> None:
    path = tmp_path / "usage.jsonl"
    write_usage(path, RECORDS)
    registry = PluginRegistry(load_entry_points=False)
    assert registry.names("usage_log") == ["file"]
    log = registry.usage_log("file", path=path)
    assert isinstance(log, FileUsageLog)
    assert len(log.usage(T0, T0 + timedelta(days=1))) == 3


aware = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=8)


@st.composite
def records(draw: st.DrawFn) -> UsageRecord:
    start = draw(aware)
    borrowed = draw(st.booleans())
    return UsageRecord(
        job_id=draw(names),
        tenant=draw(names),
        flavor=draw(names),
        accelerator=draw(names),
        devices=draw(st.integers(1, 10**6)),
        start=start,
        end=start + draw(st.timedeltas(timedelta(0), timedelta(days=3))),
        mode=draw(st.sampled_from(("exclusive", "mps", "mig-3g.40gb"))),
        tier=draw(st.none() | names),
        borrowed=borrowed,
        cluster_queue=draw(st.none() | names),
        lender=draw(st.none() | names) if borrowed else None,
    )


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(records(), max_size=5), st.sampled_from((".csv", ".jsonl")))
def test_any_records_round_trip(tmp_path: Path, batch: list[UsageRecord], suffix: str) -> None:
    path = tmp_path / f"usage{suffix}"
    write_usage(path, batch)
    assert read_usage(path) == batch


@pytest.mark.parametrize("digits", [5000, 400])
def test_a_json_integer_too_large_for_any_field_is_an_invalid_row(tmp_path: Path, digits: int) -> None:
    """5,000 digits was int()'s ValueError (not a JSONDecodeError: a traceback), 400 a number no
    float() takes; both are refused before conversion, at their line."""
    path = tmp_path / "usage.jsonl"
    good = json.dumps(RECORDS[0].model_dump(mode="json"))
    huge = good.replace('"devices": 2', '"devices": ' + "9" * digits, 1)
    assert huge != good
    path.write_text(f"{good}\n{huge}\n")
    with pytest.raises(ValidationError) as info:
        read_usage(path)
    assert str(info.value).startswith(f"{path}:2: invalid JSON: integer of {digits:,} digits is out of range")
