"""Admission throughput: 10 cohorts × 100 ClusterQueues, up to 50,000 pending workloads.

For each pending level (1k, 10k, 50k) it submits that many workloads of mixed sizes and
priorities and runs the first cycle (it fills the fleet). Then, in steady state, it repeats:
release a batch of admitted workloads (capacity frees), top the queues back up to the level with
as many new workloads as the last cycle admitted (untimed), run a cycle. The pending count stays at
the level, so the cost of a decision at 1k, 10k and 50k pending is measured on the same kind of
work and a per-decision cost that grew with the pending count would show at once.

    .venv/bin/python benchmarks/bench_admission.py [--levels 1000,10000,50000] [--cycles 200] [--repeat 3]

Each level runs ``--repeat`` times with the same seed (the same decisions every time) and the
fastest run is printed, as ``timeit`` does: on a shared virtual machine the slower runs measure
the neighbours, not the code.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime

from budcore.domain.job import Job, PodSet, ResourceRequest
from budcore.domain.priority import JobPriority
from budcore.domain.resources import ResourceVector
from budcore.scheduling import (
    ClusterQueue,
    Cohort,
    FlavorQuotas,
    LocalQueue,
    QueueConfig,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
    Scheduler,
)

GPU = "nvidia.com/gpu"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
COHORTS, QUEUES_PER_COHORT = 10, 100
SIZES = [1, 1, 1, 1, 1, 1, 1, 2, 4, 8]


def build_config() -> QueueConfig:
    flavors = [ResourceFlavor(name="h100"), ResourceFlavor(name="a100")]
    cqs = []
    for c in range(COHORTS):
        for q in range(QUEUES_PER_COHORT):
            cqs.append(
                ClusterQueue(
                    name=f"c{c}-q{q}",
                    cohort=f"c{c}",
                    resource_groups=(
                        ResourceGroup(
                            covered_resources=(GPU, "cpu"),
                            flavors=tuple(
                                FlavorQuotas(
                                    name=f,
                                    resources=(
                                        ResourceQuota(name=GPU, nominal_quota=8000, borrowing_limit=8000),
                                        ResourceQuota(
                                            name="cpu", nominal_quota=128_000, borrowing_limit=128_000
                                        ),
                                    ),
                                )
                                for f in ("h100", "a100")
                            ),
                        ),
                    ),
                )
            )
    return QueueConfig.build(
        flavors=flavors,
        cohorts=[Cohort(name=f"c{c}") for c in range(COHORTS)],
        cluster_queues=cqs,
        local_queues=[LocalQueue(name="lq", namespace=cq.name, cluster_queue=cq.name) for cq in cqs],
    )


def make_jobs(n: int, rng: random.Random, start: int = 0) -> list[Job]:
    priorities = list(JobPriority)
    jobs = []
    for i in range(start, start + n):
        cq = f"c{rng.randrange(COHORTS)}-q{rng.randrange(QUEUES_PER_COHORT)}"
        gpus = rng.choice(SIZES)
        jobs.append(
            Job(
                id=f"w{i}",
                name=f"w{i}",
                tenant=cq,
                local_queue="lq",
                priority=rng.choice(priorities),
                request=ResourceRequest(
                    pod_sets=(PodSet(resources=ResourceVector({GPU: gpus * 1000, "cpu": gpus * 8000})),)
                ),
                created_at=T0,
                updated_at=T0,
            )
        )
    return jobs


def run_level(config: QueueConfig, pending: int, seed: int, cycles: int = 200) -> dict[str, float]:
    rng = random.Random(seed)
    jobs = make_jobs(pending, rng)
    scheduler = Scheduler(config)
    clock = time.process_time  # CPU time: figures stay meaningful on a shared machine
    t = clock()
    for job in jobs:
        scheduler.submit(job)
    submit_s = clock() - t
    t = clock()
    first = scheduler.cycle(T0)
    first_s = clock() - t
    admitted = len(first.admitted)
    batch = max(1, admitted // 50)
    steady_s = 0.0
    steady_admitted = steady_decided = 0
    submitted = pending
    refill = admitted
    levels = 0
    for _ in range(cycles):
        for job in make_jobs(refill, rng, start=submitted):  # untimed: keeps the level
            scheduler.submit(job)
        submitted += refill
        levels += len(scheduler.pending)
        victims = list(scheduler.admitted)[:batch]
        t = clock()
        for job_id in victims:
            scheduler.release(job_id, T0)
        result = scheduler.cycle(T0)
        steady_s += clock() - t
        refill = len(result.admitted)
        steady_admitted += refill
        steady_decided += result.considered
    return {
        "pending": pending,
        "submit_per_s": pending / submit_s,
        "first_cycle_s": first_s,
        "first_cycle_admitted": admitted,
        "first_cycle_us_per_decision": first_s / max(1, first.considered) * 1e6,
        "steady_cycles": cycles,
        "steady_mean_pending": levels / max(1, cycles),
        "steady_admitted": steady_admitted,
        "steady_admissions_per_s": steady_admitted / steady_s if steady_s else 0.0,
        "steady_decisions_per_s": steady_decided / steady_s if steady_s else 0.0,
        "steady_us_per_decision": steady_s / max(1, steady_decided) * 1e6,
        "steady_ms_per_cycle": steady_s / max(1, cycles) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1000,10000,50000")
    parser.add_argument("--cycles", type=int, default=200, help="steady-state cycles per level")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs per level; the fastest is shown")
    args = parser.parse_args()
    config = build_config()
    print(f"{COHORTS} cohorts x {QUEUES_PER_COHORT} ClusterQueues, 2 flavors, 16 GPUs nominal per queue")
    print(
        "CPU seconds; a decision = a workload the cycle considered (admitted, or left pending with a reason)"
    )
    header = (
        f"{'pending':>8} {'submit/s':>10} {'cycle1 s':>9} {'admitted':>9} {'us/dec':>7} "
        f"{'steady adm':>10} {'admits/s':>9} {'decisions/s':>12} {'us/dec':>7} {'ms/cycle':>9}"
    )
    print(header)
    for level in (int(x) for x in args.levels.split(",")):
        runs = [run_level(config, level, args.seed, args.cycles) for _ in range(max(1, args.repeat))]
        r = min(runs, key=lambda run: run["steady_us_per_decision"])
        print(
            f"{r['pending']:>8} {r['submit_per_s']:>10.0f} {r['first_cycle_s']:>9.3f} "
            f"{r['first_cycle_admitted']:>9} {r['first_cycle_us_per_decision']:>7.1f} "
            f"{r['steady_admitted']:>10} {r['steady_admissions_per_s']:>9.0f} "
            f"{r['steady_decisions_per_s']:>12.0f} {r['steady_us_per_decision']:>7.1f} "
            f"{r['steady_ms_per_cycle']:>9.2f}"
        )


if __name__ == "__main__":
    main()
