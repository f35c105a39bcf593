"""One admission cycle (``Scheduler.cycle``) with 10,000 workloads pending, in steady state.

The workload of ``benchmarks/bench_admission.py``: 10 cohorts x 100 ClusterQueues, 1-8 GPU
workloads with random priorities. The first cycle fills the fleet; before every timed cycle a
batch of admitted workloads is released and the queues are topped back up to 10,000 pending
(untimed), so each round decides on the same kind of work.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import bench_admission
from pytest_benchmark.fixture import BenchmarkFixture

from budcore.scheduling import CycleResult, Scheduler

PENDING = 10_000
ROUNDS = 15


@dataclass
class SteadyState:
    scheduler: Scheduler
    rng: random.Random
    submitted: int
    batch: int

    def top_up(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Untimed: free a batch of admitted workloads, refill the queues to ``PENDING``."""
        for job_id in list(self.scheduler.admitted)[: self.batch]:
            self.scheduler.release(job_id, bench_admission.T0)
        missing = PENDING - len(self.scheduler.pending)
        for job in bench_admission.make_jobs(missing, self.rng, start=self.submitted):
            self.scheduler.submit(job)
        self.submitted += missing
        return (), {}

    def cycle(self) -> CycleResult:
        return self.scheduler.cycle(bench_admission.T0)


def steady_state(seed: int = 1) -> SteadyState:
    rng = random.Random(seed)
    scheduler = Scheduler(bench_admission.build_config())
    for job in bench_admission.make_jobs(PENDING, rng):
        scheduler.submit(job)
    first = scheduler.cycle(bench_admission.T0)  # fills the fleet
    return SteadyState(scheduler, rng, PENDING, batch=max(1, len(first.admitted) // 50))


def test_admission_cycle_10k_pending(benchmark: BenchmarkFixture) -> None:
    state = steady_state()
    result = benchmark.pedantic(state.cycle, setup=state.top_up, rounds=ROUNDS, warmup_rounds=1)
    assert result.considered > 0
    benchmark.extra_info.update({"pending": PENDING, "decisions_last_cycle": result.considered})
