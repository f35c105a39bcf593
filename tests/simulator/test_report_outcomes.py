"""Report semantics at the horizon: deadline outcomes, the completable share, money totals."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest
from budcore_simulator.engine import EngineStats, JobRecord, Simulation, SimulationResult, UsageSeries
from budcore_simulator.report import build_report, deadline_met, records_csv
from budcore_simulator.scenario import load_scenario
from budcore_simulator.status import SimJobStatus
from budcore_simulator.sweep import metrics_of, parse_slo
from budcore_simulator.workload.model import JobArrival
from support.scenarios import SMALL

HORIZON = 1000.0


def arrival(
    job_id: str, *, submit: float = 0.0, runtime: float = 100.0, deadline: float | None
) -> JobArrival:
    return JobArrival(
        submit_s=submit,
        runtime_s=runtime,
        gpus_per_pod=1,
        pods=1,
        cpu_milli=0,
        memory_bytes=0,
        tenant="team",
        local_queue="main",
        priority="normal",
        job_type="batch",
        job_class="jobs",
        job_id=job_id,
        deadline_s=deadline,
    )


def record(
    job_id: str,
    status: str,
    *,
    deadline: float | None,
    end: float | None = None,
    submit: float = 0.0,
    runtime: float = 100.0,
    cost: str = "0",
) -> JobRecord:
    return JobRecord(
        arrival=arrival(job_id, submit=submit, runtime=runtime, deadline=deadline),
        cluster_queue="cq",
        status=SimJobStatus(status),
        admitted_s=None if status in ("queued", "rejected") else submit,
        start_s=None if status in ("queued", "rejected") else submit,
        end_s=end,
        flavor="h100",
        cost=Decimal(cost),
    )


def result_of(records: list[JobRecord], horizon: float = HORIZON) -> SimulationResult:
    return SimulationResult(
        records=records,
        series=UsageSeries(),
        stats=EngineStats(),
        flavor_gpu_s={},
        cq_gpu_s={},
        flavor_capacity={},
        cq_nominal={},
        horizon_s=horizon,
    )


# Expected outcome of each record at HORIZON.
OUTCOMES: list[tuple[JobRecord, bool | None]] = [
    (record("on-time", "completed", deadline=500.0, end=400.0), True),
    (record("late", "completed", deadline=500.0, end=600.0), False),
    (record("failed", "failed", deadline=5000.0, end=300.0), False),  # final: will never complete
    (record("rejected", "rejected", deadline=5000.0, end=0.0), False),
    (record("running-past-deadline", "running", deadline=900.0), False),
    (record("queued-past-deadline", "queued", deadline=HORIZON), False),  # due at the very end
    (record("running-deadline-later", "running", deadline=1500.0), None),
    (record("queued-deadline-later", "queued", deadline=1200.0), None),
    (record("no-deadline", "running", deadline=None), None),
]


@pytest.mark.parametrize(("rec", "expected"), OUTCOMES, ids=[r.arrival.job_id for r, _ in OUTCOMES])
def test_deadline_outcome_at_the_horizon(rec: JobRecord, expected: bool | None) -> None:
    assert deadline_met(rec, HORIZON) is expected


def test_live_jobs_due_after_the_horizon_are_undetermined_not_missed() -> None:
    report = build_report(result_of([r for r, _ in OUTCOMES]))
    overall = report["overall"]
    assert overall["deadlines"] == 8
    assert overall["deadline_misses"] == 5
    assert overall["deadline_undetermined"] == 2
    assert overall["deadline_miss_rate"] == pytest.approx(5 / 6, abs=1e-4)  # over determined jobs
    assert metrics_of(report)["deadline_miss"] == overall["deadline_miss_rate"]
    assert parse_slo("deadline_miss<90%").holds(metrics_of(report))
    assert not parse_slo("deadline_miss<80%").holds(metrics_of(report))


def test_deadline_miss_metric_without_determined_jobs() -> None:
    undetermined = build_report(result_of([record("q", "queued", deadline=5000.0)]))
    assert undetermined["overall"]["deadline_miss_rate"] is None
    assert metrics_of(undetermined)["deadline_miss"] is None  # unknown: an SLO on it fails
    assert not parse_slo("deadline_miss<1%").holds(metrics_of(undetermined))
    without = build_report(result_of([record("q", "queued", deadline=None)]))
    assert metrics_of(without)["deadline_miss"] == 0.0  # nothing can be missed


def test_jobs_csv_deadline_met_agrees_with_the_report() -> None:
    records = [r for r, _ in OUTCOMES]
    rows = list(csv.DictReader(io.StringIO(records_csv(records, end_s=HORIZON))))
    expected = {r.arrival.job_id: "" if e is None else str(e).lower() for r, e in OUTCOMES}
    assert {row["job_id"]: row["deadline_met"] for row in rows} == expected


def test_jobs_csv_without_the_end_of_the_run_never_claims_a_wrong_miss() -> None:
    # The latest recorded time (600) stands in for the end: 900 is not known to have passed.
    records = [r for r, _ in OUTCOMES]
    rows = {row["job_id"]: row["deadline_met"] for row in csv.DictReader(io.StringIO(records_csv(records)))}
    assert rows["running-past-deadline"] == ""
    assert rows["late"] == "false" and rows["failed"] == "false"
    assert rows["running-deadline-later"] == ""


def test_completed_share_is_over_jobs_that_could_complete_before_the_horizon() -> None:
    records = [
        record("done", "completed", deadline=None, end=150.0),
        record("also-done", "completed", deadline=None, submit=500.0, end=700.0),
        # submitted 50 s before the horizon with 100 s of work: no fleet completes it in time
        record("too-late", "running", deadline=None, submit=HORIZON - 50, runtime=100.0),
    ]
    report = build_report(result_of(records))
    assert report["overall"]["completable"] == 2
    assert metrics_of(report)["completed"] == 1.0
    assert parse_slo("completed>=90%").holds(metrics_of(report))
    # a completable job left unfinished still counts against the share
    stuck = build_report(result_of([*records, record("stuck", "queued", deadline=None, submit=100.0)]))
    assert metrics_of(stuck)["completed"] == pytest.approx(2 / 3)


def test_money_totals_are_the_sum_of_the_rounded_rows() -> None:
    # 1.005 rounds (half-even) to 1.00 per row; summing first would give 3.015 -> 3.02.
    records = [record(f"j{i}", "completed", deadline=None, end=100.0, cost="1.005") for i in range(3)]
    records[0].lost_cost = Decimal("0.125")
    records[1].lost_cost = Decimal("0.125")
    report = build_report(result_of(records))
    rows = list(csv.DictReader(io.StringIO(records_csv(records, end_s=HORIZON))))
    row_total = sum(Decimal(row["cost"]) for row in rows)
    assert str(row_total) == "3.00"
    assert report["overall"]["cost"] == report["cost"]["total"] == "3.00"
    assert report["cost"]["by_tenant"] == {"team": "3.00"}
    assert report["cost"]["by_flavor"] == {"h100": "3.00"}
    assert report["by_class"]["jobs"]["cost"] == "3.00"
    assert report["overall"]["lost_cost"] == str(sum(Decimal(row["lost_cost"]) for row in rows)) == "0.24"


def test_a_simulated_run_reports_undetermined_deadlines_consistently(tmp_path: Path) -> None:
    """End to end: an overloaded fleet leaves jobs live at the horizon, due after it."""
    text = SMALL.replace("gpus: {1: 0.6", "deadline_slack: 3\n        gpus: {1: 0.6")
    assert "deadline_slack" in text
    path = tmp_path / "s.yaml"
    path.write_text(text)
    loaded = load_scenario(path)
    result = Simulation(
        loaded.nodes,
        loaded.queues,
        loaded.arrivals(),
        options=loaded.engine_options(),
        prices=loaded.prices(),
    ).run()
    report = build_report(result)
    overall = report["overall"]
    live_due_later = [
        r
        for r in result.records
        if r.status not in ("completed", "failed", "rejected")
        and r.arrival.deadline_s is not None
        and r.arrival.deadline_s > result.horizon_s
    ]
    assert live_due_later, "the scenario should leave work due after the horizon"
    assert overall["deadline_undetermined"] == len(live_due_later)
    rows = list(csv.DictReader(io.StringIO(records_csv(result.records, end_s=result.horizon_s))))
    assert sum(row["deadline_met"] == "false" for row in rows) == overall["deadline_misses"]
    assert sum(row["deadline_met"] == "" and row["deadline_s"] != "" for row in rows) == len(live_due_later)
    assert str(sum(Decimal(row["cost"]) for row in rows)) == overall["cost"] == report["cost"]["total"]
