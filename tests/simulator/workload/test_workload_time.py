"""Job classes and traces with a maximum duration and a time window (issue #13)."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from budcore_simulator.scenario import load_scenario
from budcore_simulator.workload import BudcoreCsvTrace, JobArrival, generate_arrivals, parse_generator_spec
from budcore_simulator.workload.model import arrival_to_job
from support.scenarios import SMALL

from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.domain.timewindow import TimeWindow

START = datetime(2026, 1, 5, tzinfo=UTC)
BASE: dict[str, Any] = {
    "name": "nightly",
    "tenant": "t",
    "local_queue": "q",
    "arrivals": {"kind": "fixed", "interval": 600},
    "runtime": {"kind": "fixed", "value": 5400},
    "count": 3,
}


def spec(**fields: Any) -> Any:
    return parse_generator_spec({"classes": [{**BASE, **fields}]}, prefix="workload.generators")


def test_a_class_carries_its_maximum_duration_and_one_shared_window() -> None:
    window = {"start": "22:00", "end": "06:00", "timezone": "Europe/Berlin", "must_finish_in_window": True}
    arrivals = list(generate_arrivals(spec(max_duration="1h", time_window=window), 1))
    assert [a.max_runtime_s for a in arrivals] == [3600.0] * 3
    first = arrivals[0].time_window
    assert first == TimeWindow(time(22), time(6), "Europe/Berlin", must_finish_in_window=True)
    assert all(a.time_window is first for a in arrivals)  # one object per class, not per job
    assert pickle.loads(pickle.dumps(arrivals[0])) == arrivals[0]  # sweeps ship arrivals to workers


def test_classes_without_them_are_unchanged() -> None:
    (arrival, *_) = generate_arrivals(spec(), 1)
    assert (arrival.max_runtime_s, arrival.time_window) == (None, None)


@pytest.mark.parametrize(
    ("window", "path", "message"),
    [
        ({"start": 1320, "end": "06:00"}, "time_window.start", "quote the time, e.g. '22:00'"),
        ({"start": "25:00", "end": "06:00"}, "time_window.start", "expected a time like '22:00'"),
        (
            {"start": "22:00", "end": "06:00", "timezone": "Mars/Olympus"},
            "time_window.timezone",
            "unknown timezone",
        ),
        ({"start": "22:00", "end": "22:00"}, "time_window", "a window needs two different times"),
        ({"start": "22:00"}, "time_window.end", "Field required"),
        ({"start": "22:00", "end": "06:00", "daily": True}, "time_window.daily", "unknown field"),
    ],
)
def test_bad_windows_name_the_field(window: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(ValidationErrors) as info:
        spec(time_window=window)
    (error,) = info.value.errors
    assert error.path == f"workload.generators.classes[0].{path}"
    assert message in error.message


def test_a_maximum_duration_must_be_positive() -> None:
    with pytest.raises(ValidationErrors) as info:
        spec(max_duration=0)
    assert info.value.errors[0].path == "workload.generators.classes[0].max_duration"


def test_an_unquoted_yaml_time_is_reported_at_its_line(tmp_path: Path) -> None:
    text = SMALL.replace(
        "        gpus: {1: 0.6, 2: 0.2, 4: 0.1, 8: 0.1}\n",
        "        gpus: {1: 0.6, 2: 0.2, 4: 0.1, 8: 0.1}\n        time_window: {start: 22:00, end: '06:00'}\n",
    )
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    with pytest.raises(ValidationError) as info:
        load_scenario(path)
    rendered = str(info.value)
    assert "workload.generators.classes[0].time_window.start" in rendered
    assert "the number 1320" in rendered and "'22:00'" in rendered
    assert f"{path}:{len(text.splitlines())}" in rendered  # the window is the file's last line


def test_positional_arrivals_keep_working_and_jobs_get_the_limits() -> None:
    # The fields before max_runtime_s, positionally, as producers wrote them before issue #13.
    arrival = JobArrival(
        0.0, 7200.0, 1, 1, 1000, 2**30, "t", "q", "normal", "batch", "c", "j0", None, None, None, 9000.0
    )
    assert (arrival.max_runtime_s, arrival.time_window) == (None, None)
    window = TimeWindow(time(22), time(6))
    limited = arrival._replace(max_runtime_s=3600.0, time_window=window)
    job = arrival_to_job(limited, START)
    assert job.max_duration == timedelta(hours=1)
    assert job.time_window == window
    # The declared 2.5 h exceed the 1 h limit: the Job's estimate is capped, the runtime is not.
    assert job.estimated_duration == timedelta(hours=1) == timedelta(seconds=limited.declared_s)
    assert limited.runtime_s == 7200.0 and limited.estimate_s == 9000.0
    assert arrival_to_job(arrival, START).max_duration is None


def test_the_budcore_csv_trace_reads_an_optional_max_duration(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text(
        "job_id,submit_s,runtime_s,gpus_per_pod,tenant,local_queue,max_duration_s\n"
        "a,0,100,1,t,q,3600\n"
        "b,10,100,1,t,q,\n"
        "c,20,100,1,t,q,-5\n"
    )
    reader = BudcoreCsvTrace(path)
    arrivals = list(reader)
    assert [(a.job_id, a.max_runtime_s) for a in arrivals] == [("a", 3600.0), ("b", None)]
    (skipped,) = reader.report.details
    assert (skipped.field, skipped.reason) == ("max_duration_s", "must be greater than zero")
