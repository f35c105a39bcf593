"""ETA cost (issue #13): one estimate, and every queued job's ETA in one forward run.

The issue's size: 1,000 running and 10,000 pending jobs over 100 ClusterQueues (10 cohorts of 10,
20 GPUs of nominal quota each, which the running jobs fill; borrowing within the cohort), runtimes
10 minutes to 4 hours, one to four GPUs a job. Each is measured exact and with a 2% relative
resolution (completions batched within 2% of their distance from now). It prints, in CPU
seconds (``time.process_time``) so a loaded machine still gives
comparable numbers:

- **refresh**: :func:`budcore.scheduling.forecast.forecast` over every queued job (the whole
  queue, one forward run), ``--repeat`` times: min and median;
- **single**: :func:`budcore.scheduling.forecast.eta_for` for ``--singles`` new jobs (random
  ClusterQueue, size and runtime), as a service does on every submission: p50, p95 and max.
  A single estimate runs only its job's cohort tree (trees share no quota) and stops when the job
  is admitted.

    .venv/bin/python benchmarks/bench_eta.py [--running 1000] [--pending 10000] [--singles 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from budcore.domain.job import Job, ResourceRequest
from budcore.scheduling import (
    ClusterQueue,
    FlavorQuotas,
    LocalQueue,
    QueueConfig,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
    Scheduler,
)
from budcore.scheduling.forecast import ForecastOptions, eta_for, forecast

GPU = "nvidia.com/gpu"
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
COHORTS, QUEUES_PER_COHORT, GPUS_PER_QUEUE = 10, 10, 20


def build_config() -> QueueConfig:
    queues = [
        ClusterQueue(
            name=f"c{c}-q{q}",
            cohort=f"c{c}",
            resource_groups=(
                ResourceGroup(
                    covered_resources=(GPU,),
                    flavors=(
                        FlavorQuotas(
                            name="h100",
                            resources=(ResourceQuota(name=GPU, nominal_quota=GPUS_PER_QUEUE * 1000),),
                        ),
                    ),
                ),
            ),
        )
        for c in range(COHORTS)
        for q in range(QUEUES_PER_COHORT)
    ]
    return QueueConfig.build(
        flavors=[ResourceFlavor(name="h100")],
        cluster_queues=queues,
        local_queues=[
            LocalQueue(name=q.name, namespace=f"ns-{q.name}", cluster_queue=q.name) for q in queues
        ],
    )


def make_job(rng: random.Random, n: int, queue: str, created: datetime) -> Job:
    return Job(
        id=f"j{n}",
        name=f"j{n}",
        tenant=f"ns-{queue}",
        local_queue=queue,
        request=ResourceRequest.single(gpus=rng.choice((1, 1, 2, 4)), cpu=0, memory=0),
        estimated_duration=timedelta(minutes=rng.randint(10, 240)),
        created_at=created,
        updated_at=created,
    )


def build(running: int, pending: int, seed: int) -> tuple[Scheduler, random.Random]:
    rng = random.Random(seed)
    config = build_config()
    names = list(config.cluster_queues)
    scheduler = Scheduler(config)
    started = 0
    n = 0
    # Fill the fleet with running jobs admitted over the last hours, then queue the rest.
    attempts = 0
    while started < running:
        attempts += 1
        if attempts > running * 3:
            break  # the fleet is full: what runs is what fits
        at = NOW - timedelta(minutes=rng.randint(1, 180))
        scheduler.submit(make_job(rng, n, rng.choice(names), at))
        n += 1
        started += len(scheduler.cycle(at).admitted)
    for _ in range(pending - len(scheduler.queued_job_ids())):
        scheduler.submit(make_job(rng, n, rng.choice(names), NOW - timedelta(seconds=rng.randint(0, 3600))))
        n += 1
    scheduler.cycle(NOW)
    return scheduler, rng


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--running", type=int, default=1000)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--singles", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    scheduler, rng = build(args.running, args.pending, args.seed)
    queued = len(scheduler.queued_job_ids())
    print(f"running {len(scheduler.admitted)}, queued {queued}, ClusterQueues {COHORTS * QUEUES_PER_COHORT}")

    for label, options in (
        ("exact", ForecastOptions()),
        ("2% resolution", ForecastOptions(relative_resolution=0.02)),
    ):
        print(f"-- {label}")
        measure(scheduler, options, rng, args.repeat, args.singles)


def measure(
    scheduler: Scheduler, options: ForecastOptions, rng: random.Random, repeat: int, singles: int
) -> None:
    refresh: list[float] = []
    for _ in range(repeat):
        t0 = time.process_time()
        result = forecast(scheduler, NOW, options=options)
        refresh.append(time.process_time() - t0)
    placed = sum(1 for eta in result.etas.values() if eta.start is not None)
    print(
        f"refresh (every queued job): min {min(refresh):.3f} s, median {statistics.median(refresh):.3f} s "
        f"CPU; {placed} of {len(result.etas)} placed, {result.cycles} cycles"
    )
    names = list(scheduler.config.cluster_queues)
    times: list[float] = []
    for i in range(singles):
        job = make_job(rng, 10_000_000 + i, rng.choice(names), NOW)
        t0 = time.process_time()
        eta_for(scheduler, job, NOW, options=options)
        times.append(time.process_time() - t0)
    times.sort()
    p50 = times[len(times) // 2]
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    print(
        f"single estimate (new job, {singles} samples): p50 {p50 * 1000:.1f} ms, "
        f"p95 {p95 * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms CPU"
    )


if __name__ == "__main__":
    main()
