"""Simulator throughput on large synthetic fleets (issue #4's benchmark scenarios).

(a) 20,000 jobs on 6,480 GPUs (810 nodes of 8), Poisson arrivals at 1,000 jobs/min, Gavel's GPU
    counts (1: 70%, 2: 10%, 4: 15%, 8: 5%) and runtimes;
(b) 1,000,000 jobs on 10,000 GPUs (1,250 nodes of 8), same mix.

Four tenants share one cohort (nominal quota split evenly, borrowing allowed). Prints simulated
jobs/s and events/s, and, measured in the same process, a bare ``heapq`` push/pop loop with the
same number of events as the yardstick for the engine's overhead; peak RSS from the OS.

    .venv/bin/python benchmarks/bench_simulator.py            # (a)
    .venv/bin/python benchmarks/bench_simulator.py --case b   # (b): long
    .venv/bin/python benchmarks/bench_simulator.py --jobs 5000
"""

from __future__ import annotations

import argparse
import heapq
import random
import resource
import time
from datetime import UTC, datetime

from budcore_simulator.engine import EngineOptions, Simulation
from budcore_simulator.workload.generators import generate_arrivals, parse_generator_spec

from budcore.domain.cluster import Node
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
)

GPU = "nvidia.com/gpu"
TENANTS = ("t0", "t1", "t2", "t3")
CASES = {"a": (20_000, 810), "b": (1_000_000, 1_250)}


def fleet(nodes: int) -> list[Node]:
    allocatable = ResourceVector.of({GPU: 8, "cpu": 128, "memory": "2Ti"})
    return [Node(name=f"n{i:05d}", labels={"pool": "gpu"}, allocatable=allocatable) for i in range(nodes)]


def queues(nodes: int) -> QueueConfig:
    gpus, cpu, mem = nodes * 8, nodes * 128, nodes * 2048
    per = len(TENANTS)

    def share(total: int, i: int) -> int:
        return total // per + (1 if i < total % per else 0)

    cqs = []
    for i, tenant in enumerate(TENANTS):
        resources = (
            ResourceQuota(name=GPU, nominal_quota=share(gpus, i) * 1000),
            ResourceQuota(name="cpu", nominal_quota=share(cpu, i) * 1000),
            ResourceQuota(name="memory", nominal_quota=share(mem, i) * 2**30 * 1000),
        )
        cqs.append(
            ClusterQueue(
                name=f"{tenant}-cq",
                cohort="all",
                resource_groups=(
                    ResourceGroup(
                        covered_resources=(GPU, "cpu", "memory"),
                        flavors=(FlavorQuotas(name="gpu", resources=resources),),
                    ),
                ),
            )
        )
    return QueueConfig.build(
        flavors=[ResourceFlavor(name="gpu", node_labels={"pool": "gpu"})],
        cohorts=[Cohort(name="all")],
        cluster_queues=cqs,
        local_queues=[LocalQueue(name="main", namespace=t, cluster_queue=f"{t}-cq") for t in TENANTS],
    )


def workload(jobs: int, seed: int):  # type: ignore[no-untyped-def]
    per = jobs // len(TENANTS)
    spec = parse_generator_spec(
        {
            "classes": [
                {
                    "name": f"{t}-jobs",
                    "tenant": t,
                    "local_queue": "main",
                    "arrivals": {"kind": "poisson", "rate": 1000 / len(TENANTS), "per": "1m"},
                    "runtime": {"kind": "preset", "name": "gavel"},
                    "gpus": "gavel",
                    "cpu_per_gpu": "8",
                    "memory_per_gpu": "64Gi",
                    "count": per + (1 if i < jobs % len(TENANTS) else 0),
                }
                for i, t in enumerate(TENANTS)
            ]
        }
    )
    return generate_arrivals(spec, seed)


def bare_heap(events: int) -> float:
    """Seconds for ``events`` push+pop pairs on a heap of the engine's tuple shape."""
    rng = random.Random(0)
    heap: list[tuple[float, int, int, object]] = []
    start = time.perf_counter()
    for i in range(events):
        heapq.heappush(heap, (rng.random(), 0, i, None))
        if len(heap) > 1000:
            heapq.heappop(heap)
    while heap:
        heapq.heappop(heap)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), default="a")
    parser.add_argument("--jobs", type=int, help="override the job count of the case")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    jobs, nodes = CASES[args.case]
    jobs = args.jobs or jobs
    sim = Simulation(
        fleet(nodes),
        queues(nodes),
        workload(jobs, args.seed),
        options=EngineOptions(start=datetime(2026, 1, 1, tzinfo=UTC), sample_interval_s=3600),
    )
    result = sim.run()
    wall = result.stats.wall_s
    events = result.stats.events
    heap_s = bare_heap(events)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    completed = sum(1 for r in result.records if r.status == "completed")
    print(f"case {args.case}: {jobs} jobs on {nodes * 8} GPUs ({nodes} nodes of 8), seed {args.seed}")
    print(f"  completed {completed}, simulated {result.horizon_s / 3600:.1f} h, {result.stats.cycles} cycles")
    print(f"  engine   {wall:8.2f} s  {jobs / wall:10.0f} jobs/s  {events / wall:10.0f} events/s")
    print(f"  heapq    {heap_s:8.2f} s  {'':>10}         {events / heap_s:10.0f} events/s (bare push/pop)")
    print(f"  engine events/s as a share of bare heapq: {heap_s / wall:.2%}")
    print(f"  peak RSS {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
