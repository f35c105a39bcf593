"""Time in the engine (issue #13): maximum duration, time windows, runaway alerts, ETA measurement,
deadline-aware ordering. Closed-form cases on one small queue; the scenario-level behaviour is in
test_deadlines_scenario.py."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

import pytest
from budcore_simulator.engine import (
    ControllerRestartModel,
    EngineOptions,
    EtaMeasurement,
    Simulation,
    SimulationResult,
)
from budcore_simulator.report import build_report, eta_accuracy
from budcore_simulator.workload.model import JobArrival
from support.engine import START, arrival, fleet, one_queue

from budcore.domain.errors import ValidationError
from budcore.domain.timewindow import TimeWindow
from budcore.scheduling import QueueConfig
from budcore.scheduling.deadline import DeadlineBoost
from budcore.scheduling.forecast import ForecastOptions
from budcore.scheduling.preemption import PreemptionPolicy
from budcore.scheduling.queues import ClusterQueuePreemption, WithinClusterQueue

H = 3600.0
NIGHT = TimeWindow(start=time(22), end=time(6))  # START is 2026-01-01 00:00 UTC: open until 06:00


def run(
    arrivals: list[JobArrival],
    *,
    nodes: int = 1,
    gpus: int = 8,
    config: QueueConfig | None = None,
    grace_s: float = 30.0,
    boost: DeadlineBoost | None = None,
    **opts: Any,
) -> SimulationResult:
    return Simulation(
        fleet(nodes, gpus),
        config or one_queue(nodes * gpus),
        arrivals,
        options=EngineOptions(start=START, **opts),
        preemption=PreemptionPolicy(grace_period=timedelta(seconds=grace_s)),
        deadline_boost=boost,
    ).run()


def preempting_queue(gpus: int) -> QueueConfig:
    """``one_queue`` whose ClusterQueue preempts lower priorities for higher ones."""
    config = one_queue(gpus)
    cq = config.cluster_queues["cq"]
    preemption = ClusterQueuePreemption(within_cluster_queue=WithinClusterQueue.LOWER_PRIORITY)
    return config.with_objects(cluster_queues={"cq": cq.model_copy(update={"preemption": preemption})})


def by_id(result: SimulationResult) -> dict[str, Any]:
    return {r.arrival.job_id: r for r in result.records}


# Maximum duration --------------------------------------------------------------------------------
def test_a_job_reaching_its_maximum_duration_fails_with_timeout_and_frees_its_quota() -> None:
    jobs = [arrival(0, 100.0, 5000.0, gpus=8, max_runtime_s=3600.0), arrival(1, 200.0, 600.0, gpus=8)]
    result = run(jobs)
    late, next_one = result.records
    assert (late.status, late.timed_out, late.end_s) == ("failed", True, 3700.0)
    assert late.reason.startswith("timeout")
    assert late.gpu_s == 8 * 3600.0 and late.exec_s == 3600.0
    assert (next_one.start_s, next_one.status) == (3700.0, "completed")  # its quota came back at once
    assert result.stats.timeouts == 1


def test_a_job_within_its_maximum_duration_completes() -> None:
    result = run([arrival(0, 0.0, 3000.0, max_runtime_s=3600.0)])
    (record,) = result.records
    assert (record.status, record.end_s, record.timed_out) == ("completed", 3000.0, False)
    assert result.stats.timeouts == 0


def test_the_estimate_is_capped_at_the_maximum_duration_and_a_job_ending_at_it_completes() -> None:
    # Declared 2 h, allowed 1 h: the Job may not expect more than its limit (Job validates it).
    result = run([arrival(0, 0.0, H, max_runtime_s=H, estimated_runtime_s=2 * H)])
    (record,) = result.records
    assert record.arrival.declared_s == H
    assert record.status == "completed"  # COMPLETION ranks before TIMEOUT at the same instant


def test_execution_time_accumulates_across_preemption() -> None:
    """A job preempted after 3 h of a 4 h limit has 1 h left (less its grace period) when it resumes."""
    low = arrival(0, 0.0, 5 * H, gpus=8, priority="low", max_runtime_s=4 * H, checkpoint_interval_s=1800.0)
    high = arrival(1, 3 * H, H, gpus=8, priority="high")
    result = run([low, high], config=preempting_queue(8), grace_s=30.0)
    victim, preemptor = result.records
    assert victim.preemptions == 1 and preemptor.start_s == 3 * H + 30.0
    # First run: admitted 0 → 3 h 30 s (its grace period counts: it still holds its admission).
    # Readmitted when the preemptor ends at 4 h 30 s with 14400 − 10830 = 3570 s left.
    assert (victim.status, victim.timed_out) == ("failed", True)
    assert victim.end_s == 4 * H + 30.0 + 3570.0 == 5 * H
    assert victim.exec_s == pytest.approx(4 * H)


def test_a_preempted_job_with_enough_time_left_completes() -> None:
    low = arrival(0, 0.0, 5 * H, gpus=8, priority="low", max_runtime_s=6 * H, checkpoint_interval_s=1800.0)
    high = arrival(1, 3 * H, H, gpus=8, priority="high")
    victim, _ = run([low, high], config=preempting_queue(8)).records
    # 3 h saved by checkpoints, 2 h more from 4 h 30 s: 3 h 30 s + 2 h of execution, under 6 h.
    assert (victim.status, victim.end_s) == ("completed", 4 * H + 30.0 + 2 * H)
    assert victim.exec_s == pytest.approx(3 * H + 30.0)  # the completing run is not added


def test_pods_waiting_for_nodes_count_as_execution_time_as_in_kueue() -> None:
    # Two nodes of 8 GPUs: a and b (5 GPUs each) take one node each, so c (6 GPUs) is admitted by
    # quota (16) but its pods wait for a node until a ends at 1000 s. Kueue counts admitted time.
    jobs = [
        arrival(0, 0.0, 1000.0, gpus=5),
        arrival(1, 0.0, 2000.0, gpus=5),
        arrival(2, 10.0, 600.0, gpus=6, max_runtime_s=1500.0),
    ]
    c = by_id(run(jobs, nodes=2))["j2"]
    assert (c.admitted_s, c.start_s) == (10.0, 1000.0)
    assert (c.status, c.end_s) == ("failed", 1510.0)  # ran 510 s of its 600
    assert c.gpu_s == 6 * 510.0


def test_no_job_runs_past_its_maximum_duration_under_preemption_and_failures() -> None:
    from budcore_simulator.engine import FailureModel

    jobs = [
        arrival(
            i,
            i * 300.0,
            1800.0 + (i % 5) * 900.0,
            gpus=[1, 2, 4, 8][i % 4],
            priority=["low", "normal", "high"][i % 3],
            max_runtime_s=2700.0,
            checkpoint_interval_s=600.0,
        )
        for i in range(80)
    ]
    limits = {}

    def watch(sim: Simulation, now: float) -> None:
        for job_id, record in sim.records.items():
            if record.admission is not None:  # still admitted: its clock is running
                limits[job_id] = max(limits.get(job_id, 0.0), record.exec_s + now - record.admitted_at_s)

    result = Simulation(
        fleet(2, 8),
        preempting_queue(16),
        jobs,
        options=EngineOptions(start=START, failures=FailureModel(mtbf_s=6 * H, repair_s=600.0), seed=3),
        observer=watch,
    ).run()
    assert result.stats.timeouts > 0 and result.stats.preemptions > 0
    assert max(limits.values()) <= 2700.0 + 1e-6
    for record in result.records:
        assert record.exec_s <= 2700.0 + 1e-6
        if record.timed_out:
            assert record.exec_s == pytest.approx(2700.0)


# Time windows ------------------------------------------------------------------------------------
def test_a_job_outside_its_window_starts_when_it_opens_even_if_nothing_else_happens() -> None:
    inside, outside = arrival(0, H, 600.0, time_window=NIGHT), arrival(1, 7 * H, 600.0, time_window=NIGHT)
    result = run([inside, outside])
    assert [r.start_s for r in result.records] == [H, 22 * H]
    # Arrivals at 01:00 and 07:00, the first completion, the wake-up at 22:00, the last completion:
    # one cycle each, none in between (nothing ticks while the job waits for its window).
    assert result.stats.cycles == 5


@pytest.mark.parametrize(("interval", "start"), [(600.0, 22 * H), (7000.0, 84000.0)])
def test_the_window_wake_up_respects_the_cycle_interval(interval: float, start: float) -> None:
    (record,) = run([arrival(0, 7 * H, 600.0, time_window=NIGHT)], cycle_interval_s=interval).records
    assert record.start_s == start  # the first cycle of the grid at or after 22:00


def test_a_job_whose_window_closes_while_it_waits_is_held_for_the_next_opening() -> None:
    # One GPU busy until 08:00; the windowed job arrives at 01:00 and cannot start before 06:00.
    busy, windowed = arrival(0, 0.0, 8 * H, gpus=1), arrival(1, H, 600.0, gpus=1, time_window=NIGHT)
    result = run([busy, windowed], gpus=1)
    assert result.records[1].start_s == 22 * H
    # Had the run ended before, the job would say why it waits.
    cut = run([busy, windowed], gpus=1, horizon_s=10 * H)
    assert cut.records[1].status == "queued"
    assert cut.records[1].reason.startswith("held: outside its time window 22:00–06:00 UTC")


def test_a_run_that_can_never_fit_its_window_is_rejected() -> None:
    window = TimeWindow(start=time(22), end=time(6), must_finish_in_window=True)
    (record,) = run([arrival(0, 0.0, 9 * H, time_window=window)]).records
    assert record.status == "rejected" and "window" in record.reason


def test_a_windowed_job_that_can_never_be_admitted_does_not_keep_the_run_alive() -> None:
    # 16 GPUs on a queue of 8: never admitted. Its window opening and closing daily would tick
    # forever without a horizon; the run ends once nothing arrived or was admitted for 16 days.
    result = run([arrival(0, 0.0, 600.0, gpus=16, time_window=NIGHT)])
    assert result.records[0].status == "queued"
    assert result.horizon_s < 20 * 86400


def test_held_jobs_survive_a_controller_restart() -> None:
    jobs = [arrival(0, 7 * H, 600.0, time_window=NIGHT), arrival(1, 21 * H, 600.0, time_window=NIGHT)]
    result = run(jobs, controller_restart=ControllerRestartModel(every_s=3 * H, downtime_s=120.0))
    assert [r.start_s for r in result.records] == [22 * H, 22 * H]
    assert result.stats.controller_restarts >= 7


# Runaway alerts ----------------------------------------------------------------------------------
def test_a_job_running_past_three_times_its_estimate_raises_one_alert_and_keeps_running() -> None:
    jobs = [
        arrival(0, 0.0, 4000.0, gpus=1, estimated_runtime_s=1000.0),  # 4× its estimate
        arrival(1, 0.0, 2500.0, gpus=1, estimated_runtime_s=1000.0),  # 2.5×: no alert
    ]
    result = run(jobs)
    runaway, fine = result.records
    assert (runaway.runaway_s, runaway.status, runaway.end_s) == (3000.0, "completed", 4000.0)
    assert fine.runaway_s is None
    assert result.stats.runaway_alerts == 1
    assert run(jobs, runaway_factor=None).stats.runaway_alerts == 0
    assert run(jobs, runaway_factor=2.0).stats.runaway_alerts == 2


def test_work_redone_after_a_preemption_is_not_a_runaway() -> None:
    # 2.5× its estimate and no checkpoints: preempted at 930 s, it runs its 1000 s again; its time
    # on GPUs (1930 s) passes 3 × 400 s but its progress never does.
    low = arrival(0, 0.0, 1000.0, gpus=8, priority="low", estimated_runtime_s=400.0)
    high = arrival(1, 900.0, 100.0, gpus=8, priority="high")
    result = run([low, high], config=preempting_queue(8))
    assert result.records[0].preemptions == 1 and result.records[0].gpu_s == 8 * 1930.0
    assert result.stats.runaway_alerts == 0


def test_a_job_still_running_at_the_horizon_is_checked_too() -> None:
    result = run([arrival(0, 0.0, 10_000.0, estimated_runtime_s=1000.0)], horizon_s=5000.0)
    assert result.records[0].runaway_s == 3000.0 and result.stats.runaway_alerts == 1


# Report blocks -----------------------------------------------------------------------------------
def test_the_time_block_appears_only_when_time_features_are_used() -> None:
    plain = build_report(run([arrival(0, 0.0, 100.0)]))
    assert "time" not in plain and "eta" not in plain
    limited = build_report(run([arrival(0, 0.0, 100.0, max_runtime_s=50.0)]))
    assert limited["time"]["timeouts"] == 1
    assert limited["time"]["by_class"] == {"c": {"jobs": 1, "runaway_alerts": 0, "timeouts": 1}}
    asked = build_report(run([arrival(0, 0.0, 100.0)], report_time=True))
    assert asked["time"] == {
        "runaway_factor": 3.0,
        "jobs": 1,
        "timeouts": 0,
        "runaway_alerts": 0,
        "by_class": {"c": {"jobs": 1, "runaway_alerts": 0, "timeouts": 0}},
    }
    ran_away = build_report(run([arrival(0, 0.0, 400.0, estimated_runtime_s=100.0)]))
    assert ran_away["time"]["runaway_alerts"] == 1  # an alert always shows


# ETA measurement ---------------------------------------------------------------------------------
def test_eta_measurement_is_exact_when_estimates_are() -> None:
    # One GPU, four 100 s jobs at once: the forecast at each submission sees the ones before it.
    jobs = [arrival(i, 0.0, 100.0, gpus=1) for i in range(4)]
    result = run(jobs, gpus=1, eta=EtaMeasurement())
    assert result.etas == {"j0": 0.0, "j1": 100.0, "j2": 200.0, "j3": 300.0}
    eta = eta_accuracy(result)
    assert eta is not None
    assert eta["overall"] == {
        "measured": 4,
        "count": 4,
        "no_estimate": 0,
        "not_started": 0,
        "abs_error_p50_s": 0.0,
        "abs_error_p95_s": 0.0,
        "mean_error_s": 0.0,
    }


def test_eta_error_is_actual_minus_estimated_start() -> None:
    # j0 declares 100 s but runs 300 s: j1 was told 100 s and starts at 300 s (200 s late).
    jobs = [arrival(0, 0.0, 300.0, gpus=1, estimated_runtime_s=100.0), arrival(1, 0.0, 50.0, gpus=1)]
    eta = eta_accuracy(run(jobs, gpus=1, eta=EtaMeasurement()))
    assert eta is not None
    assert eta["by_class"]["c"]["mean_error_s"] == 100.0  # (0 + 200) / 2
    assert eta["overall"]["abs_error_p95_s"] == pytest.approx(190.0)


def test_eta_every_nth_job_and_jobs_without_an_estimate() -> None:
    jobs = [arrival(i, 0.0, 100.0, gpus=1) for i in range(5)]
    every_other = run(jobs, gpus=1, eta=EtaMeasurement(every=2))
    assert sorted(every_other.etas or {}) == ["j0", "j2", "j4"]
    short = EtaMeasurement(forecast=ForecastOptions(horizon=timedelta(seconds=150)))
    result = run(jobs, gpus=1, eta=short, horizon_s=250.0)
    assert result.etas == {"j0": 0.0, "j1": 100.0, "j2": None, "j3": None, "j4": None}
    eta = eta_accuracy(result)
    assert eta is not None
    assert (eta["overall"]["count"], eta["overall"]["no_estimate"]) == (2, 3)
    assert build_report(result)["eta"] == eta


def test_eta_measurement_knows_time_windows() -> None:
    (record,) = run([arrival(0, 7 * H, 600.0, time_window=NIGHT)], eta=EtaMeasurement()).records
    assert record.start_s == 22 * H


def test_measuring_etas_changes_nothing_that_happens() -> None:
    jobs = [
        arrival(
            i, i * 120.0, 600.0 + (i % 7) * 300.0, gpus=[1, 2, 4, 8][i % 4], priority=["low", "high"][i % 2]
        )
        for i in range(60)
    ]
    config = preempting_queue(16)
    plain = run(jobs, nodes=2, config=config)
    measured = run(jobs, nodes=2, config=config, eta=EtaMeasurement())
    assert [(r.admitted_s, r.start_s, r.end_s, r.preemptions) for r in plain.records] == [
        (r.admitted_s, r.start_s, r.end_s, r.preemptions) for r in measured.records
    ]


def test_eta_measurement_options_are_checked() -> None:
    with pytest.raises(ValidationError, match="at least 1"):
        EtaMeasurement(every=0)


# Deadline-aware ordering -------------------------------------------------------------------------
def test_deadline_boost_lets_the_tight_deadline_overtake_on_the_sample_clock() -> None:
    # One GPU busy for an hour; a loose-deadline job queues first, a tight one a minute later.
    jobs = [
        arrival(0, 0.0, H, gpus=1),
        arrival(1, 60.0, 600.0, gpus=1, deadline_s=20 * H),
        arrival(2, 120.0, 600.0, gpus=1, deadline_s=H + 700.0),
    ]
    plain = by_id(run(jobs, gpus=1))
    assert (plain["j1"].start_s, plain["j2"].start_s) == (H, H + 600.0)
    aware = by_id(run(jobs, gpus=1, boost=DeadlineBoost()))
    assert (aware["j2"].start_s, aware["j1"].start_s) == (H, H + 600.0)
    assert aware["j2"].end_s is not None and aware["j2"].end_s <= H + 700.0
