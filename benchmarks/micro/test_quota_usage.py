"""Quota accounting: ``QuotaUsage.add`` and its removal (``sign=-1``) on a cohort tree.

Usage propagates from the ClusterQueue up through its cohorts; the tree here is three levels
deep (an organisation cohort, 4 department cohorts, 25 ClusterQueues each), the shape in which a
workload's admission or release touches the most nodes.
"""

from __future__ import annotations

from pytest_benchmark.fixture import BenchmarkFixture

from budcore.scheduling import (
    ClusterQueue,
    Cohort,
    FlavorQuotas,
    LocalQueue,
    QueueConfig,
    QuotaTree,
    QuotaUsage,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
)

GPU = "nvidia.com/gpu"
DEPARTMENTS, QUEUES_PER_DEPARTMENT = 4, 25
WORKLOAD = {("h100", GPU): 8_000, ("h100", "cpu"): 64_000, ("a100", GPU): 4_000, ("a100", "cpu"): 32_000}


def cohort_tree() -> QuotaTree:
    def group() -> ResourceGroup:
        flavors = tuple(
            FlavorQuotas(
                name=flavor,
                resources=(
                    ResourceQuota(name=GPU, nominal_quota=16_000, borrowing_limit=16_000),
                    ResourceQuota(name="cpu", nominal_quota=256_000, borrowing_limit=256_000),
                ),
            )
            for flavor in ("h100", "a100")
        )
        return ResourceGroup(covered_resources=(GPU, "cpu"), flavors=flavors)

    cohorts = [Cohort(name="org")] + [Cohort(name=f"dept-{d}", parent="org") for d in range(DEPARTMENTS)]
    queues = [
        ClusterQueue(name=f"d{d}-q{q}", cohort=f"dept-{d}", resource_groups=(group(),))
        for d in range(DEPARTMENTS)
        for q in range(QUEUES_PER_DEPARTMENT)
    ]
    config = QueueConfig.build(
        flavors=[ResourceFlavor(name="h100"), ResourceFlavor(name="a100")],
        cohorts=cohorts,
        cluster_queues=queues,
        local_queues=[LocalQueue(name="lq", namespace=cq.name, cluster_queue=cq.name) for cq in queues],
    )
    return QuotaTree(config)


def test_quota_add_and_remove_on_a_cohort_tree(benchmark: BenchmarkFixture) -> None:
    usage = QuotaUsage(cohort_tree())
    for d in range(DEPARTMENTS):  # a busy tree: every queue holds something
        for q in range(QUEUES_PER_DEPARTMENT):
            usage.add(f"d{d}-q{q}", WORKLOAD)

    def add_and_remove() -> None:
        usage.add("d1-q7", WORKLOAD)
        usage.add("d1-q7", WORKLOAD, -1)

    benchmark(add_and_remove)
    benchmark.extra_info.update({"cluster_queues": DEPARTMENTS * QUEUES_PER_DEPARTMENT, "levels": 3})
