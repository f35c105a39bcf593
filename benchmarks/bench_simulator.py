"""Simulator throughput on large synthetic fleets (issue #4's benchmark scenarios).

(a) 20,000 jobs on 6,480 GPUs (810 nodes of 8), Poisson arrivals at 1,000 jobs/min, Gavel's GPU
    counts (1: 70%, 2: 10%, 4: 15%, 8: 5%) and runtimes: a backlog of ~20k jobs that the fleet
    drains over ~230 simulated hours;
(b) 1,000,000 jobs on 10,000 GPUs (1,250 nodes of 8), same mix, arriving at 80% of what the fleet
    can serve (about 4.2 jobs/min: a Gavel job holds 1.9 GPUs for 16.8 hours on average), so the
    run measures the engine over a million jobs in steady state (about 160 simulated days), not
    the memory of a million-job backlog (at 1,000 jobs/min the fleet would serve 0.5% of them).

Four tenants share one cohort (nominal quota split evenly, borrowing allowed). Each case is a
scenario (:class:`~budcore_simulator.scenario.Scenario`, built in code) run through
:func:`~budcore_simulator.build.build_simulation`, as ``budcore simulate`` runs a scenario file.
Prints simulated jobs/s and events/s (wall clock) and the run's CPU seconds, and, measured in the
same process, a bare ``heapq`` push/pop loop with the same number of events as the yardstick for
the engine's overhead; peak RSS from the OS.

    .venv/bin/python benchmarks/bench_simulator.py            # (a)
    .venv/bin/python benchmarks/bench_simulator.py --case b   # (b): minutes
    .venv/bin/python benchmarks/bench_simulator.py --jobs 5000
    .venv/bin/python benchmarks/bench_simulator.py --floor    # also the ceilings (see --help)
    .venv/bin/python benchmarks/bench_simulator.py --case b --jobs 100000 --rate 1000  # backlog
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import resource
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from budcore_simulator.build import build_simulation
from budcore_simulator.scenario import POOL_LABEL, LoadedScenario, Scenario
from budcore_simulator.status import SimJobStatus
from budcore_simulator.workload.generators import GAVEL_GPU_COUNTS, GAVEL_RUNTIME

from budcore.config.kueue import to_documents
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
CASE_LOAD = {"a": None, "b": 0.8}  # None: the 1,000 jobs/min; else a share of capacity
START = datetime(2026, 1, 1, tzinfo=UTC)


def gavel_gpu_seconds() -> float:
    """Mean GPU-seconds of one Gavel job: E[GPUs] × E[runtime] (independent draws)."""
    gpus = sum(count * weight for count, weight in GAVEL_GPU_COUNTS.items())
    runtime = 0.0
    for component in GAVEL_RUNTIME.components:
        low, high = component.distribution.low, component.distribution.high  # type: ignore[union-attr]
        runtime += component.weight * (high - low) / math.log(high / low)  # log-uniform mean
    return gpus * runtime


def rate_per_minute(nodes: int, load: float | None) -> float:
    if load is None:
        return 1000.0
    return load * nodes * 8 / gavel_gpu_seconds() * 60


def fleet(nodes: int) -> dict[str, Any]:
    """The scenario's ``fleet``: ``nodes`` nodes of 8 GPUs, 128 CPUs and 2 TiB (pool ``gpu``)."""
    pool = {"name": "gpu", "gpus_per_node": 8, "nodes": nodes, "cpu": 128, "memory": "2Ti"}
    return {"pools": [pool]}


def scenario(
    name: str, nodes: int, config: QueueConfig, classes: list[dict[str, Any]], seed: int
) -> LoadedScenario:
    """A benchmark case as a scenario: the fleet, ``config`` as Kueue documents, the job classes."""
    spec = Scenario.model_validate(
        {
            "name": name,
            "seed": seed,
            "start": START,
            "sample_interval": 3600,
            "fleet": fleet(nodes),
            "queues": {"documents": to_documents(config)},
            "workload": {"generators": {"classes": classes}},
        }
    )
    return LoadedScenario(spec, Path.cwd(), f"bench_simulator.py ({name})")


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
        flavors=[ResourceFlavor(name="gpu", node_labels={POOL_LABEL: "gpu"})],
        cohorts=[Cohort(name="all")],
        cluster_queues=cqs,
        local_queues=[LocalQueue(name="main", namespace=t, cluster_queue=f"{t}-cq") for t in TENANTS],
    )


def workload(jobs: int, rate: float = 1000.0) -> list[dict[str, Any]]:
    """The job classes: one per tenant, Gavel's GPU counts and runtimes, Poisson arrivals."""
    per = jobs // len(TENANTS)
    return [
        {
            "name": f"{t}-jobs",
            "tenant": t,
            "local_queue": "main",
            "arrivals": {"kind": "poisson", "rate": rate / len(TENANTS), "per": "1m"},
            "runtime": {"kind": "preset", "name": "gavel"},
            "gpus": "gavel",
            "cpu_per_gpu": "8",
            "memory_per_gpu": "64Gi",
            "count": per + (1 if i < jobs % len(TENANTS) else 0),
        }
        for i, t in enumerate(TENANTS)
    ]


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


def dispatch_only(events: int) -> float:
    """Seconds for ``events`` events through the engine loop's skeleton with handlers that do nothing.

    Pop, look the handler up by kind, call it, and (as arrivals and completions do) push the next
    event: the least a Python discrete-event loop does per event before any simulation work, so its
    share of the bare heapq loop bounds what any engine written in Python can reach.
    """
    rng = random.Random(0)
    heap: list[tuple[float, int, int, object]] = []
    seq = 0

    def push(at: float, kind: int) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (at, kind, seq, None))

    def on_event(now: float, _: object) -> None:
        if seq < events:
            push(now + rng.random(), 0)

    handlers = {0: on_event, 1: on_event}
    for _ in range(1000):
        push(rng.random(), 0)
    start = time.perf_counter()
    while heap:
        at, kind, _, payload = heapq.heappop(heap)
        handlers[kind](at, payload)
    return time.perf_counter() - start


def uncontended(jobs: int, nodes: int, rate: float, seed: int) -> float:
    """Wall seconds for ``jobs`` 1-GPU, 60 s jobs on the case's fleet under one ClusterQueue whose
    quota never binds: the real core and engine with no queueing at all, the cheapest job there is."""
    classes = [
        {
            "name": "floor",
            "tenant": "t0",
            "local_queue": "main",
            "arrivals": {"kind": "poisson", "rate": rate, "per": "1m"},
            "runtime": {"kind": "fixed", "value": "60s"},
            "gpus": 1,
            "cpu_per_gpu": "8",
            "memory_per_gpu": "64Gi",
            "count": jobs,
        }
    ]
    resources = (
        ResourceQuota(name=GPU, nominal_quota=nodes * 8 * 1000),
        ResourceQuota(name="cpu", nominal_quota=nodes * 128 * 1000),
        ResourceQuota(name="memory", nominal_quota=nodes * 2048 * 2**30 * 1000),
    )
    config = QueueConfig.build(
        flavors=[ResourceFlavor(name="gpu", node_labels={POOL_LABEL: "gpu"})],
        cluster_queues=[
            ClusterQueue(
                name="t0-cq",
                resource_groups=(
                    ResourceGroup(
                        covered_resources=(GPU, "cpu", "memory"),
                        flavors=(FlavorQuotas(name="gpu", resources=resources),),
                    ),
                ),
            )
        ],
        local_queues=[LocalQueue(name="main", namespace="t0", cluster_queue="t0-cq")],
    )
    # The engine's default: no gc.freeze (as this ceiling was first measured).
    sim = build_simulation(scenario("no-queue", nodes, config, classes, seed), gc_freeze_every=0)
    return sim.run().stats.wall_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), default="a")
    parser.add_argument("--jobs", type=int, help="override the job count of the case")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, help="arrivals per minute (default: per case)")
    parser.add_argument(
        "--gc-freeze-every",
        type=int,
        default=10_000,
        help="EngineOptions.gc_freeze_every (default 10000, what scenario runs use; 0: GC untouched)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also measure the ceilings: the loop skeleton with no-op handlers, and the same job "
        "count on the same fleet with no queueing (1-GPU jobs, quota never binding)",
    )
    args = parser.parse_args()
    jobs, nodes = CASES[args.case]
    jobs = args.jobs or jobs
    rate = args.rate or rate_per_minute(nodes, CASE_LOAD[args.case])
    loaded = scenario(f"case-{args.case}", nodes, queues(nodes), workload(jobs, rate), args.seed)
    sim = build_simulation(loaded, gc_freeze_every=args.gc_freeze_every)
    cpu_started = time.process_time()
    result = sim.run()
    cpu = time.process_time() - cpu_started
    wall = result.stats.wall_s
    events = result.stats.events
    heap_s = bare_heap(events)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    completed = sum(1 for r in result.records if r.status is SimJobStatus.COMPLETED)
    print(
        f"case {args.case}: {jobs} jobs on {nodes * 8} GPUs ({nodes} nodes of 8), "
        f"{rate:.1f} arrivals/min, seed {args.seed}"
    )
    print(f"  completed {completed}, simulated {result.horizon_s / 3600:.1f} h, {result.stats.cycles} cycles")
    print(f"  engine   {wall:8.2f} s  {jobs / wall:10.0f} jobs/s  {events / wall:10.0f} events/s")
    print(f"  engine CPU {cpu:6.2f} s (time.process_time over the run)")
    print(f"  heapq    {heap_s:8.2f} s  {'':>10}         {events / heap_s:10.0f} events/s (bare push/pop)")
    print(f"  engine events/s as a share of bare heapq: {heap_s / wall:.2%}")
    print(f"  peak RSS {peak_mib:.0f} MiB")
    if args.floor:
        skeleton = dispatch_only(events)
        print(
            f"  skeleton {skeleton:8.2f} s  {'':>10}         {events / skeleton:10.0f} events/s "
            f"(pop + dispatch + push, no-op handlers: {heap_s / skeleton:.0%} of bare heapq)"
        )
        floor = uncontended(jobs, nodes, rate, args.seed)
        print(
            f"  no queue {floor:8.2f} s  {jobs / floor:10.0f} jobs/s  "
            f"(same jobs/fleet, 1 GPU, 60 s, quota never binding: the cheapest job)"
        )


if __name__ == "__main__":
    main()
