"""One definition of a job's outcome at the end of the run, in every output.

Completed, censored, never admitted, rejected: ``report.json`` (every group), ``simulate``'s and
``compare``'s tables, ``compare.json`` and ``plan.json`` count them through
``budcore_simulator.outcomes``; time to admission and time to start are censored at the end of the
run (Kaplan–Meier), so a job admitted whose pods never ran does not show a start wait of 0.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from budcore_simulator.engine import EngineStats, JobRecord, SimulationResult, UsageSeries
from budcore_simulator.outcomes import JobOutcomes, completed_text, outcome_line, wait_samples
from budcore_simulator.report import build_report
from budcore_simulator.status import SimJobStatus
from budcore_simulator.sweep import metrics_of
from budcore_simulator.workload.model import JobArrival
from support.scenarios import SMALL

from budcore.cli import main

HORIZON = 1000.0


def record(
    job_id: str,
    status: str,
    *,
    submit: float = 0.0,
    admitted: float | None = None,
    start: float | None = None,
    end: float | None = None,
) -> JobRecord:
    arrival = JobArrival(
        submit_s=submit,
        runtime_s=100.0,
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
    )
    return JobRecord(
        arrival=arrival,
        cluster_queue="cq",
        status=SimJobStatus(status),
        admitted_s=admitted,
        start_s=start,
        end_s=end,
        cost=Decimal(0),
    )


# One job of every kind, at HORIZON; the comments give each one's wait / start wait samples.
RECORDS = [
    record("done", "completed", admitted=0.0, start=0.0, end=100.0),  # 0 / 0
    record("failed", "failed", admitted=10.0, start=10.0, end=50.0),  # 10 / 10
    record("cancelled-in-queue", "cancelled", submit=100.0, end=300.0),  # 200+ / 200+ (left its queue)
    record("rejected", "rejected", end=0.0),  # never queued: no sample
    record("refused", "refused", end=0.0),  # never queued: no sample
    record("queued", "queued", submit=950.0),  # 50+ / 50+ (and cannot complete by 1000)
    record("pods-pending", "admitted", admitted=20.0),  # 20 / 1000+: never started
    record("running", "running", admitted=30.0, start=40.0),  # 30 / 40
    record("requeued", "queued", admitted=5.0, start=5.0),  # 5 / 5: preempted, waiting again
    record("paused", "paused", admitted=0.0, start=0.0),  # 0 / 0
]


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


EXPECTED = {
    "jobs": 10,
    "completed": 1,
    "failed": 1,
    "cancelled": 1,
    "rejected": 1,
    "refused": 1,
    "censored": 5,
    "censored_waiting": 3,  # queued, requeued, paused
    "censored_admitted": 1,  # pods-pending
    "censored_running": 1,
    "never_admitted": 2,  # cancelled-in-queue, queued (not the rejected or refused ones)
    "admitted_never_started": 1,
    "completable": 9,  # all but "queued" (950 + 100 > 1000)
}


def test_every_job_has_exactly_one_outcome() -> None:
    outcomes = JobOutcomes.of(RECORDS, HORIZON).as_json()
    assert outcomes == EXPECTED
    ended = sum(outcomes[k] for k in ("completed", "failed", "cancelled", "rejected", "refused"))
    assert ended + outcomes["censored"] == outcomes["jobs"]
    assert completed_text(outcomes) == "1 of 10 (11.1% of 9 completable)"
    assert outcome_line(outcomes) == (
        "outcomes of 10 jobs at the end of the run: completed 1 of 10 (11.1% of 9 completable), "
        "1 failed, 1 cancelled, 1 rejected, 1 refused; censored (still live) 5: 3 waiting, "
        "1 admitted with pods pending, 1 running; never admitted 2, admitted but never started 1"
    )


@pytest.mark.parametrize("status", list(SimJobStatus))
def test_every_status_falls_in_one_outcome(status: SimJobStatus) -> None:
    """A status added later must be given its place here, or this fails."""
    outcomes = JobOutcomes.of([record("j", status.value)], HORIZON).as_json()
    tops = ("completed", "failed", "cancelled", "rejected", "refused", "censored")
    assert sum(outcomes[k] for k in tops) == 1 == outcomes["jobs"], outcomes
    live = ("censored_waiting", "censored_admitted", "censored_running")
    assert sum(outcomes[k] for k in live) == outcomes["censored"]
    assert outcomes["censored"] == (0 if status.is_final else 1)


def test_wait_samples_are_censored_at_the_end_or_when_the_job_left_its_queue() -> None:
    waits = wait_samples(RECORDS, HORIZON, until="admission")
    assert list(zip(waits.durations, waits.observed, strict=True)) == [
        (0.0, True),
        (10.0, True),
        (200.0, False),
        (50.0, False),
        (20.0, True),
        (30.0, True),
        (5.0, True),
        (0.0, True),
    ]
    starts = wait_samples(RECORDS, HORIZON, until="start")
    assert starts.durations[4] == 1000.0 and starts.observed[4] is False  # pods-pending: not 0


def test_report_groups_carry_the_outcomes_and_kaplan_meier_percentiles() -> None:
    report = build_report(result_of(RECORDS))
    overall = report["overall"]
    assert overall["outcomes"] == EXPECTED
    assert (overall["completed"], overall["completable"], overall["never_admitted"]) == (1, 9, 2)
    assert report["by_tenant"]["team"]["outcomes"] == EXPECTED
    assert metrics_of(report)["completed"] == pytest.approx(1 / 9)
    # Waits 0, 0, 5, 10, 20, 30 ended; 50 and 200 censored. By hand, S after each ending:
    # 0: 6/8 = .75; 5: .75 * 5/6 = .625; 10: .625 * 4/5 = .5; 20: .5 * 3/4 = .375; 30: .375 * 2/3 = .25
    assert overall["wait_km_s"] == {
        "p50": 10.0,
        "p95": None,  # 25% of the mass is censored: only known to exceed 200 s
        "p99": None,
        "samples": 8,
        "censored": 2,
        "beyond_s": 200.0,
        "cdf_at_end": 0.75,
    }
    # Start waits 0, 0, 5, 10, 40 ended; 50, 200 and the pods-pending job's 1000 censored:
    # 0: .75; 5: .625; 10: .5; 40: .5 * 3/4 = .375
    assert overall["start_wait_km_s"] == {
        "p50": 10.0,
        "p95": None,
        "p99": None,
        "samples": 8,
        "censored": 3,
        "beyond_s": 1000.0,
        "cdf_at_end": 0.625,
    }


def test_a_job_admitted_whose_pods_never_ran_does_not_start_at_zero() -> None:
    report = build_report(result_of([record("pods-pending", "admitted", submit=100.0, admitted=120.0)]))
    overall = report["overall"]
    assert overall["wait_s"]["mean"] == 20.0 and overall["wait_km_s"]["p50"] == 20.0
    assert overall["start_wait_s"]["mean"] == 900.0  # waited until the end of the run, at least
    assert overall["start_wait_km_s"]["p50"] is None and overall["start_wait_km_s"]["beyond_s"] == 900.0
    assert overall["outcomes"]["admitted_never_started"] == 1


BUSY = SMALL.replace("rate: 20, per: 1h", "rate: 30, per: 1h").replace("mean: 30m", "mean: 1h")


def test_simulate_compare_plan_and_report_json_count_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(BUSY)
    same = tmp_path / "as-is.yaml"
    same.write_text("")  # no overrides: the scenario's own policy
    out = tmp_path / "sim"
    assert main(["simulate", str(scenario), "--no-plots", "-o", str(out)]) == 0
    simulate_text = capsys.readouterr().out
    outcomes = json.loads((out / "report.json").read_text())["overall"]["outcomes"]
    # a run where the counts are worth comparing: jobs left waiting and running at the end
    assert outcomes["censored_waiting"] > 0 and outcomes["censored_running"] > 0
    assert outcomes["never_admitted"] > 0 and outcomes["completed"] > 0

    args = ["compare", str(scenario), "-p", str(same), "-p", "fair", "--workers", "1"]
    assert main([*args, "-o", str(tmp_path / "cmp")]) == 0
    compare_text = capsys.readouterr().out
    compared = json.loads((tmp_path / "cmp" / "compare.json").read_text())["as-is"]
    assert (tmp_path / "cmp" / "compare_cdf.png").is_file()  # Kaplan–Meier over the same samples
    assert compared["report"]["overall"]["outcomes"] == outcomes

    plan_args = ["plan", str(scenario), "--vary", "pool.a100.nodes=2", "--slo", "completed>=1%"]
    assert main([*plan_args, "--workers", "1", "-o", str(tmp_path / "plan")]) == 0
    capsys.readouterr()
    (point,) = json.loads((tmp_path / "plan" / "plan.json").read_text())["frontier"]
    assert point["outcomes"] == [outcomes]
    assert point["metrics"]["completed"] == pytest.approx(outcomes["completed"] / outcomes["completable"])

    # The tables word them the same way, with their denominators.
    line = outcome_line(outcomes)
    assert " ".join(line.split()) in " ".join(simulate_text.split())
    assert completed_text(outcomes) in " ".join(compare_text.split())
