"""Controller restarts: admission stops during the downtime, state is rebuilt from job records."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from budcore_simulator.engine import (
    ControllerRestartModel,
    EngineOptions,
    FailureModel,
    Simulation,
    SimulationResult,
)
from budcore_simulator.scenario import load_scenario
from budcore_simulator.workload.model import JobArrival
from support.engine import START, arrival, fleet, one_queue
from support.scenarios import SMALL

from budcore.domain.errors import ValidationError

LIVE = {"pending", "queued", "admitted", "running", "failing", "retrying"}
TERMINAL = {"completed", "failed", "rejected"}


def simulate(jobs: list[JobArrival], *, nodes: int = 1, gpus: int = 8, **opts: Any) -> SimulationResult:
    return Simulation(
        fleet(nodes, gpus), one_queue(nodes * gpus), jobs, options=EngineOptions(start=START, **opts)
    ).run()


def restarts(every: float, downtime: float, *, exponential: bool = False) -> ControllerRestartModel:
    return ControllerRestartModel(every_s=every, downtime_s=downtime, exponential=exponential)


def test_a_restart_delays_admissions_by_the_downtime() -> None:
    jobs = [
        arrival(0, 500.0, 100.0),  # before the restart: untouched
        arrival(1, 1000.0, 100.0),  # arrives as the controller goes down
        arrival(2, 1050.0, 100.0),  # arrives during the downtime
        arrival(3, 1200.0, 100.0),  # after it is back
    ]
    result = simulate(jobs, controller_restart=restarts(1000.0, 120.0))
    admitted = {r.arrival.job_id: r.admitted_s for r in result.records}
    assert admitted == {"j0": 500.0, "j1": 1120.0, "j2": 1120.0, "j3": 1200.0}
    assert all(r.status == "completed" for r in result.records)
    assert result.stats.controller_restarts == 1  # the run ends when only the restart clock is left


def test_running_jobs_finish_during_the_downtime_and_their_quota_returns_on_restart() -> None:
    # j0 holds all 8 GPUs of quota and finishes while the controller is down; j1 needs the quota.
    jobs = [arrival(0, 900.0, 150.0, gpus=8), arrival(1, 1000.0, 60.0, gpus=8)]
    result = simulate(jobs, controller_restart=restarts(1000.0, 300.0))
    first, second = result.records
    assert (first.start_s, first.end_s, first.status) == (900.0, 1050.0, "completed")
    assert (second.admitted_s, second.end_s) == (1300.0, 1360.0)


def test_queued_jobs_keep_their_fifo_order_across_a_restart() -> None:
    # One GPU: j0 runs, j1..j3 queue in submit order; the restart must not reorder them.
    jobs = [arrival(0, 0.0, 1000.0)] + [arrival(i, 10.0 * i, 100.0) for i in (3, 1, 2)]
    jobs.sort(key=lambda a: a.submit_s)
    result = simulate(jobs, gpus=1, controller_restart=restarts(700.0, 60.0))
    starts = {r.arrival.job_id: r.start_s for r in result.records}
    assert starts == {"j0": 0.0, "j1": 1000.0, "j2": 1100.0, "j3": 1200.0}


def mixed_jobs(n: int = 240) -> list[JobArrival]:
    return [
        arrival(i, i * 40.0, 300.0 + (i % 7) * 250, gpus=[1, 2, 4, 8][i % 4], checkpoint_interval_s=200.0)
        for i in range(n)
    ]


def outcome(result: SimulationResult) -> list[tuple[Any, ...]]:
    return [
        (r.arrival.job_id, r.status, r.admitted_s, r.start_s, r.end_s, r.nodes, r.retries, r.failures)
        for r in result.records
    ]


def test_a_zero_downtime_restart_rebuilds_exactly_the_same_scheduler_state() -> None:
    # Rebuilding from the records every 5 minutes must change no decision at all.
    failures = FailureModel(mtbf_s=6 * 3600.0, repair_s=900.0)
    plain = simulate(mixed_jobs(), nodes=2, failures=failures, seed=4)
    rebuilt = simulate(
        mixed_jobs(), nodes=2, failures=failures, seed=4, controller_restart=restarts(300.0, 0.0)
    )
    assert rebuilt.stats.controller_restarts > 20
    assert outcome(rebuilt) == outcome(plain)


@pytest.mark.parametrize("exponential", [False, True])
def test_conservation_capacity_and_determinism_under_restarts_and_failures(exponential: bool) -> None:
    violations: list[str] = []

    def check(sim: Simulation, now: float) -> None:
        for node in sim.backend.capacity().nodes:
            for resource, amount in node.free.items():
                if amount < 0:
                    violations.append(f"{now}: {node.node.name} {resource} {amount}")
        holding = sum(r.gpus for r in sim.records.values() if r.admission is not None)
        if sim.controller_up and holding > 16:
            violations.append(f"{now}: {holding} GPUs of quota held on a 16-GPU queue")

    def once() -> SimulationResult:
        return Simulation(
            fleet(2, 8),
            one_queue(16),
            mixed_jobs(),
            options=EngineOptions(
                start=START,
                failures=FailureModel(mtbf_s=4 * 3600.0, repair_s=600.0),
                controller_restart=restarts(1800.0, 240.0, exponential=exponential),
                seed=9,
                horizon_s=6 * 3600.0,
            ),
            observer=check,
        ).run()

    result = once()
    assert violations == []
    assert result.stats.controller_restarts >= 2
    assert len(result.records) == len({r.arrival.job_id for r in result.records}) == 240
    for r in result.records:
        assert r.status in LIVE | TERMINAL
        assert (r.end_s is not None) == (r.status in TERMINAL)
    assert math.isclose(sum(r.gpu_s for r in result.records), sum(result.flavor_gpu_s.values()))
    assert outcome(once()) == outcome(result)


def test_scenario_controller_restart_reaches_the_engine(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(SMALL + "failures: {controller_restart: {every: 1h, downtime: 5m, random: true}}\n")
    options = load_scenario(path).engine_options()
    assert options.controller_restart == ControllerRestartModel(
        every_s=3600.0, downtime_s=300.0, exponential=True
    )
    assert options.failures is None
    path.write_text(SMALL + "failures: {controller_restart: {every: 1m, downtime: 5m}}\n")
    with pytest.raises(ValidationError, match="downtime"):
        load_scenario(path)
    path.write_text(SMALL + "failures: {repair: 1h}\n")
    with pytest.raises(ValidationError, match="'mtbf', 'controller_restart' or both"):
        load_scenario(path)
