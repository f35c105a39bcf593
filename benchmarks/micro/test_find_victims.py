"""``find_victims`` on a preempting snapshot: an urgent workload in a full ClusterQueue.

As in ``benchmarks/bench_preemption.py`` (one ClusterQueue, ``withinClusterQueue: LowerPriority``,
checkpointing training victims), scaled up: 512 GPUs held by 128 four-GPU workloads of four
priorities admitted over the last ten hours; the preemptor needs 32 GPUs. ``find_victims`` is pure,
so every round decides on the same snapshot. Both victim-selection modes are measured.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

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

GPU = "nvidia.com/gpu"
FR = ("h100", GPU)
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
FLEET_GPUS, VICTIM_GPUS, NEEDED_GPUS = 512, 4, 32


def config() -> QueueConfig:
    quota = FlavorQuotas(name="h100", resources=(ResourceQuota(name=GPU, nominal_quota=FLEET_GPUS * 1000),))
    return QueueConfig.build(
        flavors=[ResourceFlavor(name="h100")],
        cluster_queues=[
            ClusterQueue(
                name="gpu",
                resource_groups=(ResourceGroup(covered_resources=(GPU,), flavors=(quota,)),),
                preemption=ClusterQueuePreemption(within_cluster_queue="LowerPriority"),
            )
        ],
        local_queues=[LocalQueue(name="gpu", namespace="ml", cluster_queue="gpu")],
    )


def preempting_snapshot(seed: int = 1) -> tuple[AdmissionSnapshot, NeedsPreemption, dict[str, VictimInfo]]:
    rng = random.Random(seed)
    tree = QuotaTree(config())
    usage = QuotaUsage(tree)
    admitted: dict[str, AdmittedWorkload] = {}
    info: dict[str, VictimInfo] = {}
    for i in range(FLEET_GPUS // VICTIM_GPUS):
        job_id = f"train-{i}"
        amount = {FR: VICTIM_GPUS * 1000}
        started = NOW - timedelta(minutes=rng.randrange(10, 600))
        usage.add("gpu", amount)
        admitted[job_id] = AdmittedWorkload(
            job_id=JobId(job_id),
            tenant=TenantId("ml"),
            cluster_queue="gpu",
            local_queue=("ml", "gpu"),
            usage=amount,
            flavors={},
            priority=rng.randrange(4),
            admitted_at=started,
            timestamp=started.timestamp(),
        )
        info[job_id] = VictimInfo(
            job_id=JobId(job_id),
            job_type=JobType.TRAINING,
            started_at=started,
            last_checkpoint_at=started + (NOW - started) // 2,
            checkpoint_interval=timedelta(hours=1),
        )
    needs = NeedsPreemption(
        job_id=JobId("urgent"),
        tenant=TenantId("ml"),
        cluster_queue="gpu",
        flavors={},
        usage={FR: NEEDED_GPUS * 1000},
        borrows=False,
        priority=100,
        why="",
        timestamp=NOW.timestamp(),
    )
    return AdmissionSnapshot(tree, usage, admitted), needs, info


@pytest.mark.parametrize("mode", [PreemptionMode.KUEUE, PreemptionMode.COST], ids=lambda m: m.value)
def test_find_victims(benchmark: BenchmarkFixture, mode: PreemptionMode) -> None:
    snapshot, needs, info = preempting_snapshot()
    policy = PreemptionPolicy(mode=mode)
    decision = benchmark(find_victims, snapshot, needs, now=NOW, policy=policy, victim_info=info)
    assert decision.possible
    assert sum(v.usage[FR] for v in decision.victims) >= NEEDED_GPUS * 1000
    benchmark.extra_info.update({"candidates": len(snapshot.admitted), "victims": len(decision.victims)})
