"""GPU-hours lost to preemption: Kueue's victim choice vs budcore's cost-aware choice.

A synthetic, training-heavy fleet: one ClusterQueue of 64 H100s (``withinClusterQueue:
LowerPriority``). Low-priority training jobs (4 or 8 GPUs, 3–12 h of work, checkpoint every hour
from their start) keep the fleet full; high-priority jobs (8 GPUs, 0.5–2 h) arrive at random and
need preemption. Both modes replay the *same* arrival sequence (same seed). Evicted training jobs
are requeued and resume from their last checkpoint, so the work since that checkpoint is redone:
that is the lost work the script sums. Time advances in 5-minute steps.

    .venv/bin/python benchmarks/bench_preemption.py [--hours 72] [--seed 1] [--trials 5]

Prints, per mode: preemptions, GPU-hours lost, cost of the lost work, and the mean wait of the
high-priority jobs (both modes admit them as soon as enough victims exist).
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import JobType
from budcore.ports.preemption_cost import VictimInfo
from budcore.scheduling import (
    AdmissionSnapshot,
    AdmittedWorkload,
    ClusterQueue,
    ClusterQueuePreemption,
    FlavorQuotas,
    LocalQueue,
    NeedsPreemption,
    QueueConfig,
    QuotaTree,
    QuotaUsage,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
)
from budcore.scheduling.preemption import PreemptionMode, PreemptionPolicy, find_victims
from budcore.scheduling.preemption.cost import DefaultPreemptionCostModel
from budcore.scheduling.queues import WithinClusterQueue

GPU = "nvidia.com/gpu"
FR = ("h100", GPU)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)
CHECKPOINT = timedelta(hours=1)
PRICE = Decimal("2.50")  # per H100-hour
FLEET = 64


@dataclass
class Job:
    id: str
    gpus: int
    priority: int
    work: timedelta  # remaining work when (re)started
    arrived: datetime
    started: datetime | None = None

    @property
    def training(self) -> bool:
        return self.priority == 0


@dataclass
class Totals:
    preemptions: int = 0
    lost_gpu_seconds: float = 0.0
    high_wait_s: float = 0.0
    high_started: int = 0
    cpu_s: float = 0.0


def build_config() -> QueueConfig:
    return QueueConfig.build(
        flavors=[ResourceFlavor(name="h100")],
        cluster_queues=[
            ClusterQueue(
                name="gpu",
                resource_groups=(
                    ResourceGroup(
                        covered_resources=(GPU,),
                        flavors=(
                            FlavorQuotas(
                                name="h100", resources=(ResourceQuota(name=GPU, nominal_quota=FLEET * 1000),)
                            ),
                        ),
                    ),
                ),
                preemption=ClusterQueuePreemption(within_cluster_queue=WithinClusterQueue.LOWER_PRIORITY),
            )
        ],
        local_queues=[LocalQueue(name="gpu", namespace="ml", cluster_queue="gpu")],
    )


def arrivals(seed: int, hours: int) -> list[Job]:
    rng = random.Random(seed)
    jobs: list[Job] = []
    t = T0
    n = 0
    # A backlog of training work that keeps the fleet busy for the whole run.
    for _ in range(int(hours * FLEET / 6)):
        n += 1
        jobs.append(
            Job(
                f"train-{n}",
                rng.choice([4, 8]),
                0,
                timedelta(hours=rng.uniform(3, 12)),
                T0 + STEP * rng.randrange(0, 12),
            )
        )
    while t < T0 + timedelta(hours=hours):
        t += timedelta(minutes=rng.expovariate(1 / 45))  # one high-priority job every ~45 min
        n += 1
        jobs.append(Job(f"urgent-{n}", 8, 100, timedelta(hours=rng.uniform(0.5, 2)), t))
    jobs.sort(key=lambda j: (j.arrived, j.id))
    return jobs


def last_checkpoint(job: Job, now: datetime) -> datetime:
    assert job.started is not None
    return job.started + ((now - job.started) // CHECKPOINT) * CHECKPOINT


def simulate(mode: PreemptionMode, seed: int, hours: int) -> Totals:
    tree = QuotaTree(build_config())
    usage = QuotaUsage(tree)
    running: dict[str, Job] = {}
    admitted: dict[str, AdmittedWorkload] = {}
    queue: list[Job] = []
    future = arrivals(seed, hours)
    policy = PreemptionPolicy(
        mode=mode,
        cost_model=DefaultPreemptionCostModel(prices={"h100": PRICE}),
        min_runtime_before_preemption=timedelta(0),  # same freedom for both modes
    )
    totals = Totals()
    node = tree.cluster_queues["gpu"]
    now = T0
    end = T0 + timedelta(hours=hours)

    def start(job: Job) -> None:
        job.started = now
        running[job.id] = job
        amount = {FR: job.gpus * 1000}
        usage.add("gpu", amount)
        admitted[job.id] = AdmittedWorkload(
            JobId(job.id),
            TenantId("ml"),
            "gpu",
            ("ml", "gpu"),
            amount,
            {},
            job.priority,
            now,
            job.arrived.timestamp(),
        )
        if not job.training:
            totals.high_started += 1
            totals.high_wait_s += (now - job.arrived).total_seconds()

    def stop(job_id: str) -> Job:
        job = running.pop(job_id)
        usage.add("gpu", admitted.pop(job_id).usage, -1)
        return job

    while now < end:
        for job in [j for j in running.values() if j.started is not None and now - j.started >= j.work]:
            stop(job.id)
        while future and future[0].arrived <= now:
            queue.append(future.pop(0))
        queue.sort(key=lambda j: (-j.priority, j.arrived, j.id))
        for job in list(queue):
            if job.gpus * 1000 <= usage.available(node, FR):
                queue.remove(job)
                start(job)
                continue
            if job.training:
                continue
            info = {
                j.id: VictimInfo(
                    job_id=JobId(j.id),
                    job_type=JobType.TRAINING,
                    started_at=j.started,
                    last_checkpoint_at=last_checkpoint(j, now),
                    checkpoint_interval=CHECKPOINT,
                )
                for j in running.values()
                if j.training
            }
            needs = NeedsPreemption(
                JobId(job.id), TenantId("ml"), "gpu", {}, {FR: job.gpus * 1000}, False, job.priority, ""
            )
            began = time.process_time()
            decision = find_victims(
                AdmissionSnapshot(tree, usage, admitted), needs, now=now, policy=policy, victim_info=info
            )
            totals.cpu_s += time.process_time() - began
            if not decision.possible:
                continue
            for victim in decision.victims:
                evicted = stop(victim.job_id)
                assert evicted.started is not None
                checkpoint = last_checkpoint(evicted, now)
                totals.preemptions += 1
                totals.lost_gpu_seconds += (now - checkpoint).total_seconds() * evicted.gpus
                done = checkpoint - evicted.started
                queue.append(
                    Job(evicted.id, evicted.gpus, evicted.priority, evicted.work - done, evicted.arrived)
                )
            queue.remove(job)
            start(job)
        now += STEP
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=int, default=72)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    print(
        f"{FLEET} H100s, {args.hours} h simulated, {args.trials} seeds from {args.seed}; price {PRICE}/GPU-h"
    )
    print(
        f"{'mode':<6} {'preemptions':>11} {'GPU-h lost':>11} {'lost cost':>10} "
        f"{'urgent wait (min)':>18} {'CPU s':>7}"
    )
    for mode in (PreemptionMode.KUEUE, PreemptionMode.COST):
        total = Totals()
        for seed in range(args.seed, args.seed + args.trials):
            t = simulate(mode, seed, args.hours)
            total.preemptions += t.preemptions
            total.lost_gpu_seconds += t.lost_gpu_seconds
            total.high_wait_s += t.high_wait_s
            total.high_started += t.high_started
            total.cpu_s += t.cpu_s
        hours = total.lost_gpu_seconds / 3600
        wait = total.high_wait_s / 60 / max(1, total.high_started)
        cost = PRICE * Decimal(str(round(hours, 2)))
        print(
            f"{mode.value:<6} {total.preemptions:>11} {hours:>11.1f} {cost:>10.2f} "
            f"{wait:>18.1f} {total.cpu_s:>7.2f}"
        )


if __name__ == "__main__":
    main()
