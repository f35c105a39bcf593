"""Builders for engine tests: a uniform fleet, one ClusterQueue covering it, job arrivals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from budcore_simulator.workload.model import JobArrival

from budcore.domain.cluster import Node
from budcore.domain.resources import ResourceVector
from budcore.scheduling import (
    ClusterQueue,
    FlavorQuotas,
    LocalQueue,
    QueueConfig,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
GPU = "nvidia.com/gpu"


def fleet(nodes: int, gpus: int) -> list[Node]:
    return [
        Node(
            name=f"n{i}",
            labels={"pool": "p"},
            allocatable=ResourceVector.of({GPU: gpus, "cpu": 64, "memory": "512Gi"}),
        )
        for i in range(nodes)
    ]


def one_queue(gpus: int, cpu: int = 10_000) -> QueueConfig:
    return QueueConfig.build(
        flavors=[ResourceFlavor(name="p", node_labels={"pool": "p"})],
        cluster_queues=[
            ClusterQueue(
                name="cq",
                resource_groups=(
                    ResourceGroup(
                        covered_resources=(GPU, "cpu", "memory"),
                        flavors=(
                            FlavorQuotas(
                                name="p",
                                resources=(
                                    ResourceQuota(name=GPU, nominal_quota=gpus * 1000),
                                    ResourceQuota(name="cpu", nominal_quota=cpu * 1000),
                                    ResourceQuota(name="memory", nominal_quota=2**50 * 1000),
                                ),
                            ),
                        ),
                    ),
                ),
            )
        ],
        local_queues=[LocalQueue(name="lq", namespace="t", cluster_queue="cq")],
    )


def arrival(i: int, submit: float, runtime: float, gpus: int = 1, **kw: Any) -> JobArrival:
    fields: dict[str, Any] = {
        "submit_s": submit,
        "runtime_s": runtime,
        "gpus_per_pod": gpus,
        "pods": 1,
        "cpu_milli": 1000,
        "memory_bytes": 2**30,
        "tenant": "t",
        "local_queue": "lq",
        "priority": "normal",
        "job_type": "batch",
        "job_class": "c",
        "job_id": f"j{i}",
    }
    fields.update(kw)
    return JobArrival(**fields)
