"""Simulator throughput on large synthetic fleets (issue #4's benchmark scenarios, issue #19's rates).

(a) 20,000 jobs on 6,480 GPUs (810 nodes of 8), Poisson arrivals at 1,000 jobs/min, Gavel's GPU
    counts (1: 70%, 2: 10%, 4: 15%, 8: 5%) and runtimes: a backlog of ~20k jobs that the fleet
    drains over ~230 simulated hours;
(b) 1,000,000 jobs on 10,000 GPUs (1,250 nodes of 8), same mix, arriving at 80% of what the fleet
    can serve (about 4.2 jobs/min: a Gavel job holds 1.9 GPUs for 16.8 hours on average), so the
    run measures the engine over a million jobs in steady state (about 160 simulated days), not
    the memory of a million-job backlog (at 1,000 jobs/min the fleet would serve 0.5% of them);
(k) Kueue's large-scale scheduler performance configuration (kubernetes-sigs/kueue
    ``test/performance/scheduler/configs/large-scale``: 10 cohorts x 100 ClusterQueues, 50,000
    CPU workloads of three priorities, ``reclaimWithinCohort: Any``): the built-in
    ``kueue-perf-baseline`` scenario scaled up, quota-only, with the cycle-latency model off
    (``--latency`` on), so preemption decides as Kueue's scheduler does: the victim search's case.

Four tenants share one cohort in (a) and (b) (nominal quota split evenly, borrowing allowed). Each
case is a scenario (:class:`~budcore_simulator.scenario.Scenario`) run through
:func:`~budcore_simulator.build.build_simulation`, as ``budcore simulate`` runs a scenario file.

Prints the run's CPU seconds (``time.process_time``; the figure that counts on a shared machine)
and wall seconds, and, measured in the same process on the same jobs so that a loaded machine
slows both alike, two reference rates: a minimal SimPy model of the same jobs (FIFO on the
fleet's GPUs pooled, no scheduler: what a discrete-event library costs per job) and a bare
``heapq`` push/pop loop with as many events as the run had. Issue #19's target is budcore's jobs
per CPU-second at >= 25% of SimPy's. Peak RSS from the OS.

    .venv/bin/python benchmarks/bench_simulator.py            # (a)
    .venv/bin/python benchmarks/bench_simulator.py --case b   # (b): minutes
    .venv/bin/python benchmarks/bench_simulator.py --case k   # (k): a minute or more
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
import tempfile
import time
from array import array
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from budcore_simulator import sweep
from budcore_simulator.build import build_simulation
from budcore_simulator.scenario import POOL_LABEL, LoadedScenario, Scenario, load_scenario
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
CASES = {"a": (20_000, 810), "b": (1_000_000, 1_250), "k": (50_000, 0)}
CASE_LOAD = {"a": None, "b": 0.8, "k": None}  # None: the 1,000 jobs/min; else a share of capacity
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


def kueue_large(latency: bool) -> LoadedScenario:
    """Case (k): the built-in ``kueue-perf-baseline`` scenario with Kueue's large-scale numbers
    (10 cohorts x 100 ClusterQueues; per ClusterQueue 35 small workloads every 60 ms running
    150 ms, 11 medium every 300 ms running 350 ms, 4 large every 700 ms running 700 ms)."""
    import budcore_simulator

    source = Path(budcore_simulator.__file__).parent / "scenarios" / "kueue-perf-baseline" / "scenario.yaml"
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data["name"] = "kueue-perf-large"
    data["queues"]["documents"][1]["replicate"] = {"cohort": 10, "cq": 100}
    block = data["workload"]["generators"]["classes"][0]
    block["replicate"] = {"cohort": 10, "cq": 100}
    shapes = {
        "small": (35, "60ms", "150ms"),
        "medium": (11, "300ms", "350ms"),
        "large": (4, "700ms", "700ms"),
    }
    for template in block["templates"]:
        count, every, runtime = shapes[template["label"]]
        template.update(count=count, start=every, arrivals={"kind": "fixed", "interval": every})
        template["runtime"] = {"kind": "fixed", "value": runtime}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scenario.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        loaded = load_scenario(path)
    loaded.scenario = sweep.apply_policy(
        loaded.scenario, sweep.parse_policy(f"latency={str(latency).lower()}")
    )
    return loaded


def bare_heap(events: int) -> float:
    """CPU seconds for ``events`` push+pop pairs on a heap of the engine's tuple shape."""
    rng = random.Random(0)
    heap: list[tuple[float, int, int, object]] = []
    start = time.process_time()
    for i in range(events):
        heapq.heappush(heap, (rng.random(), 0, i, None))
        if len(heap) > 1000:
            heapq.heappop(heap)
    while heap:
        heapq.heappop(heap)
    return time.process_time() - start


class JobColumns:
    """The reference model's jobs (submit second, units, runtime) as three arrays of machine
    numbers (24 bytes a job) while budcore runs: a list of tuples took 130 MiB at a million jobs,
    which the peak RSS printed for budcore's run counted. :meth:`rows` builds the list after it."""

    def __init__(self, rows: Iterable[tuple[float, int, float]]) -> None:
        self.submit_s = array("d")
        self.units = array("q")
        self.runtime_s = array("d")
        for submit_s, units, runtime_s in rows:
            self.submit_s.append(submit_s)
            self.units.append(units)
            self.runtime_s.append(runtime_s)

    def rows(self) -> list[tuple[float, int, float]]:
        return list(zip(self.submit_s, self.units, self.runtime_s, strict=True))


def simpy_fifo(jobs: Iterable[tuple[float, int, float]], capacity: int) -> tuple[float, int] | None:
    """CPU seconds of a minimal SimPy simulation of ``jobs`` (submit second, units, runtime): each
    job waits, first come first served, for its units of a pool of ``capacity`` (a
    ``simpy.Container``, which serves its queue in order and stops at the first request that does
    not fit), holds them for its runtime and gives them back; no scheduler, no nodes, no records.
    Returns (CPU seconds of ``env.run()``, jobs completed); None without SimPy installed."""
    try:
        import simpy
    except ImportError:
        return None
    env = simpy.Environment()
    pool = simpy.Container(env, capacity=capacity, init=capacity)
    done = [0]

    def job(units: int, runtime: float) -> Any:
        yield pool.get(units)
        yield env.timeout(runtime)
        yield pool.put(units)
        done[0] += 1

    def source() -> Any:
        for submit_s, units, runtime in jobs:
            if submit_s > env.now:
                yield env.timeout(submit_s - env.now)
            env.process(job(min(units, capacity), runtime))

    env.process(source())
    start = time.process_time()
    env.run()
    return time.process_time() - start, done[0]


def dispatch_only(events: int) -> float:
    """CPU seconds for ``events`` events through the engine loop's skeleton with handlers that do nothing.

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
    start = time.process_time()
    while heap:
        at, kind, _, payload = heapq.heappop(heap)
        handlers[kind](at, payload)
    return time.process_time() - start


def uncontended(jobs: int, nodes: int, rate: float, seed: int) -> float:
    """CPU seconds for ``jobs`` 1-GPU, 60 s jobs on the case's fleet under one ClusterQueue whose
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
    start = time.process_time()
    sim.run()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), default="a")
    parser.add_argument("--jobs", type=int, help="override the job count of case a or b")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, help="arrivals per minute (default: per case)")
    parser.add_argument(
        "--gc-freeze-every",
        type=int,
        default=10_000,
        help="EngineOptions.gc_freeze_every (default 10000, what scenario runs use; 0: GC untouched)",
    )
    parser.add_argument(
        "--latency",
        action="store_true",
        help="case k: with the cycle-latency model (as the built-in scenario)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each reference model; the fastest counts (default 3)"
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also measure the ceilings: the loop skeleton with no-op handlers, and the same job "
        "count on the same fleet with no queueing (1-GPU jobs, quota never binding)",
    )
    args = parser.parse_args()
    jobs, nodes = CASES[args.case]
    if args.case == "k":
        loaded = kueue_large(args.latency)
        rate = 0.0
        print(
            f"case k: Kueue's large-scale configuration, {jobs} CPU workloads in 1,000 ClusterQueues "
            f"(quota only), latency model {'on' if args.latency else 'off'}"
        )
    else:
        jobs = args.jobs or jobs
        rate = args.rate or rate_per_minute(nodes, CASE_LOAD[args.case])
        loaded = scenario(f"case-{args.case}", nodes, queues(nodes), workload(jobs, rate), args.seed)
        print(
            f"case {args.case}: {jobs} jobs on {nodes * 8} GPUs ({nodes} nodes of 8), "
            f"{rate:.1f} arrivals/min, seed {args.seed}"
        )
    # The same jobs for the reference model, drawn before anything is timed.
    if args.case == "k":
        capacity = (
            sum(
                q.nominal_quota
                for cq in loaded.queues.cluster_queues.values()
                for g in cq.resource_groups
                for f in g.flavors
                for q in f.resources
            )
            // 1000
        )
        same_jobs = JobColumns(
            (a.submit_s, a.cpu_milli * a.pods // 1000, a.runtime_s) for a in loaded.arrivals()
        )
    else:
        capacity = nodes * 8
        same_jobs = JobColumns((a.submit_s, a.total_gpus, a.runtime_s) for a in loaded.arrivals())
    sim = build_simulation(loaded, gc_freeze_every=args.gc_freeze_every)
    cpu_started = time.process_time()
    result = sim.run()
    cpu = time.process_time() - cpu_started
    wall = result.stats.wall_s
    events = result.stats.events
    count = len(result.records)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    completed = sum(1 for r in result.records if r.status is SimJobStatus.COMPLETED)
    heap_s = min(bare_heap(events) for _ in range(args.repeat))
    simpy_runs = [simpy_fifo(same_jobs.rows(), capacity) for _ in range(args.repeat)]
    print(
        f"  completed {completed}, simulated {result.horizon_s / 3600:.1f} h ({result.horizon_s:.0f} s), "
        f"{result.stats.cycles} cycles, "
        f"{events} events, {result.stats.preemptions} preemptions"
    )
    print(
        f"  budcore  CPU {cpu:8.2f} s  {count / cpu:9.0f} jobs/CPU-s  {cpu / count * 1e6:7.1f} us/job  "
        f"{events / cpu:9.0f} events/CPU-s   (wall {wall:.2f} s, {count / wall:.0f} jobs/s)"
    )
    ratios = []
    if simpy_runs[0] is None:
        print("  SimPy    skipped: simpy is not installed (pip install simpy, or the test extra)")
    else:
        simpy_s, simpy_done = min(r for r in simpy_runs if r is not None)
        print(
            f"  SimPy    CPU {simpy_s:8.2f} s  {count / simpy_s:9.0f} jobs/CPU-s  "
            f"{simpy_s / count * 1e6:7.1f} us/job  (FIFO on {capacity} pooled units, same jobs, "
            f"{simpy_done} completed; fastest of {args.repeat})"
        )
        ratios.append(f"{simpy_s / cpu:.1%} of SimPy's jobs per CPU-second (issue #19: >= 25%)")
    print(
        f"  heapq    CPU {heap_s:8.2f} s  {events / heap_s:9.0f} events/CPU-s  "
        f"(bare push/pop, {events} events; fastest of {args.repeat})"
    )
    ratios.append(f"{heap_s / cpu:.2%} of bare heapq's events per CPU-second")
    print(f"  budcore at {'; '.join(ratios)}")
    print(f"  peak RSS {peak_mib:.0f} MiB")
    if args.floor and args.case != "k":
        skeleton = min(dispatch_only(events) for _ in range(args.repeat))
        print(
            f"  skeleton CPU {skeleton:8.2f} s  {events / skeleton:9.0f} events/CPU-s "
            f"(pop + dispatch + push, no-op handlers: {heap_s / skeleton:.0%} of bare heapq)"
        )
        floor = uncontended(jobs, nodes, rate, args.seed)
        print(
            f"  no queue CPU {floor:8.2f} s  {jobs / floor:9.0f} jobs/CPU-s  "
            f"{floor / jobs * 1e6:7.1f} us/job (same jobs/fleet, 1 GPU, 60 s, quota never binding: "
            "the cheapest job)"
        )
        print(
            f"  budcore at {floor / cpu * count / jobs:.0%} of the no-queue floor's jobs per CPU-second "
            "(issue #19 restated: >= 50%)"
        )


if __name__ == "__main__":
    main()
