"""budcore's simulator against an independent reference FIFO simulator (issue #19).

For random workloads on one ClusterQueue without preemption, every job's admission, start and end
times in budcore's simulator must equal those of :mod:`reference_fifo` (plain ``heapq``, no budcore
code), exactly, for both Kueue queueing strategies and both kinds of run:

- **pooled GPUs**: a quota-only simulation (no nodes; a job starts when it is admitted);
- **8-GPU nodes**: the ClusterQueue's quota admits, then the job's pods must find room on the
  nodes (best fit, gangs all-or-nothing; a gang may span nodes, each pod 1-8 GPUs on one node).
  The reference places pods by the simulator's documented rule (best fit, ties by node name,
  retries in admission order, simultaneous ends in start order: see its docstring), so the
  property covers every placement, not only those where the choice of node cannot matter.

Every fast path of the engine must keep this green (issue #19). The workloads are in whole
seconds, with many ties (same submit instant, an end at an arrival's instant, equal requests),
priorities from a small set and two LocalQueues feeding the ClusterQueue. The latency model is
off and there is no cycle interval: admission happens at the instant something changes.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from budcore_simulator.engine import EngineOptions, Simulation
from budcore_simulator.workload.model import JobArrival
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.engine import GPU, START, fleet

from budcore.scheduling import (
    ClusterQueue,
    FlavorQuotas,
    LocalQueue,
    QueueConfig,
    QueueingStrategy,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
)
from budcore.testing.examples import examples

from .reference_fifo import RefJob, RefTimes, Strategy, simulate

STRATEGIES: tuple[Strategy, ...] = ("StrictFIFO", "BestEffortFIFO")
LOCAL_QUEUES = ("lq-a", "lq-b")
NODE_GPUS = 8
EXAMPLES = examples(200)


# What budcore runs ------------------------------------------------------------------------------
def queues(quota: int, strategy: Strategy) -> QueueConfig:
    """One ClusterQueue of ``quota`` GPUs (CPU and memory never bind), one flavor matching the
    nodes of ``support.engine.fleet``, two LocalQueues in namespace ``t``, no preemption."""
    return QueueConfig.build(
        flavors=[ResourceFlavor(name="p", node_labels={"pool": "p"})],
        cluster_queues=[
            ClusterQueue(
                name="cq",
                queueing_strategy=QueueingStrategy(strategy),
                resource_groups=(
                    ResourceGroup(
                        covered_resources=(GPU, "cpu", "memory"),
                        flavors=(
                            FlavorQuotas(
                                name="p",
                                resources=(
                                    ResourceQuota(name=GPU, nominal_quota=quota * 1000),
                                    ResourceQuota(name="cpu", nominal_quota=10**6 * 1000),
                                    ResourceQuota(name="memory", nominal_quota=2**50 * 1000),
                                ),
                            ),
                        ),
                    ),
                ),
            )
        ],
        local_queues=[LocalQueue(name=name, namespace="t", cluster_queue="cq") for name in LOCAL_QUEUES],
    )


def to_arrival(job: RefJob, local_queue: str) -> JobArrival:
    return JobArrival(
        submit_s=job.submit,
        runtime_s=job.runtime,
        gpus_per_pod=job.gpus_per_pod,
        pods=job.pods,
        cpu_milli=1000,  # 8 pods at most per node: 8 of its 64 CPUs
        memory_bytes=2**30,
        tenant="t",
        local_queue=local_queue,
        priority="normal",
        job_type="batch",
        job_class="c",
        job_id=job.job_id,
        priority_value=job.priority,
    )


@dataclass(frozen=True)
class Case:
    jobs: tuple[RefJob, ...]
    local_queues: tuple[str, ...]  # each job's LocalQueue (the reference does not care)
    quota: int
    nodes: int | None  # None: pooled (quota-only)


def run_budcore(case: Case, strategy: Strategy) -> dict[str, RefTimes]:
    arrivals = sorted(
        (to_arrival(j, lq) for j, lq in zip(case.jobs, case.local_queues, strict=True)),
        key=lambda a: a.submit_s,
    )
    sim = Simulation(
        fleet(case.nodes, NODE_GPUS) if case.nodes is not None else [],
        queues(case.quota, strategy),
        arrivals,
        options=EngineOptions(start=START, quota_only=case.nodes is None),
    )
    assert sim.options.latency is None and sim.options.cycle_interval_s == 0.0
    result = sim.run()
    return {
        r.arrival.job_id: RefTimes(admitted=r.admitted_s, start=r.start_s, end=r.end_s, nodes=r.nodes)
        for r in result.records
    }


def run_reference(case: Case, strategy: Strategy) -> dict[str, RefTimes]:
    nodes = None if case.nodes is None else {n.name: NODE_GPUS for n in fleet(case.nodes, NODE_GPUS)}
    return simulate(case.jobs, quota=case.quota, strategy=strategy, nodes=nodes)


def times(outcome: dict[str, RefTimes]) -> dict[str, tuple[float | None, float | None, float | None]]:
    return {job_id: (t.admitted, t.start, t.end) for job_id, t in outcome.items()}


def assert_same(case: Case, strategy: Strategy) -> dict[str, RefTimes]:
    got = run_budcore(case, strategy)
    want = run_reference(case, strategy)
    if times(got) != times(want):
        lines = [f"{strategy}, quota {case.quota}, nodes {case.nodes}: (admitted, start, end) differ"]
        for job in sorted(case.jobs, key=lambda j: j.order):
            g, w = got[job.job_id], want[job.job_id]
            mark = "   " if (g.admitted, g.start, g.end) == (w.admitted, w.start, w.end) else "!! "
            lines.append(
                f"{mark}{job} budcore={(g.admitted, g.start, g.end)} on {g.nodes} "
                f"reference={(w.admitted, w.start, w.end)} on {tuple(dict.fromkeys(w.nodes))}"
            )
        pytest.fail("\n".join(lines))
    return want


# Random workloads -------------------------------------------------------------------------------
@st.composite
def cases(draw: st.DrawFn, *, with_nodes: bool) -> Case:
    nodes: int | None = None
    if with_nodes:
        count = draw(st.integers(1, 4))
        capacity = NODE_GPUS * count
        # Quota below, at and above the fleet: quota binds, nodes bind, or both.
        quota = draw(st.integers(max(1, capacity - NODE_GPUS), capacity + NODE_GPUS))
        nodes = count
    else:
        quota = draw(st.integers(1, 24))
    # Half the workloads may hold jobs larger than the quota (never admitted: under StrictFIFO
    # they block the queue for good); in the others every job fits the quota on its own.
    any_size = draw(st.booleans())
    gangs = draw(st.booleans())
    prioritized = draw(st.booleans())
    n = draw(st.integers(1, 24))
    # Unnumbered ids in a random order: "j10" sorts before "j2", and ids do not follow submit order.
    ids = draw(st.permutations(range(n)))
    jobs: list[RefJob] = []
    for i in range(n):
        per_pod = draw(st.integers(1, NODE_GPUS if any_size else min(NODE_GPUS, quota)))
        most_pods = 3 if any_size else max(1, min(3, quota // per_pod))
        jobs.append(
            RefJob(
                job_id=f"j{ids[i]}",
                submit=float(draw(st.integers(0, 40))),
                runtime=float(draw(st.integers(1, 20))),
                gpus_per_pod=per_pod,
                pods=draw(st.integers(1, most_pods)) if gangs else 1,
                priority=draw(st.sampled_from((0, 1, 10))) if prioritized else 0,
            )
        )
    local_queues = tuple(draw(st.sampled_from(LOCAL_QUEUES)) for _ in range(n))
    return Case(tuple(jobs), local_queues, quota=quota, nodes=nodes)


PROPERTY = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)


@pytest.mark.parametrize("strategy", STRATEGIES)
@PROPERTY
@given(case=cases(with_nodes=False))
def test_pooled_gpus_match_the_reference(strategy: Strategy, case: Case) -> None:
    assert_same(case, strategy)


@pytest.mark.parametrize("strategy", STRATEGIES)
@PROPERTY
@given(case=cases(with_nodes=True))
def test_8_gpu_nodes_match_the_reference(strategy: Strategy, case: Case) -> None:
    assert_same(case, strategy)


def test_the_reference_shares_no_code_with_budcore() -> None:
    """The reference imports only the standard library: a differential test against a copy of the
    code under test would prove nothing."""
    tree = ast.parse(Path(__file__).with_name("reference_fifo.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"__future__", "heapq", "collections.abc", "dataclasses", "typing"}


# Hand-worked cases (expected times worked out by hand, then checked against both) ----------------
def job(job_id: str, submit: float, runtime: float, gpus: int, **kw: Any) -> RefJob:
    return RefJob(job_id, float(submit), float(runtime), gpus, **kw)


def pooled(jobs: Sequence[RefJob], quota: int) -> Case:
    return Case(tuple(jobs), ("lq-a",) * len(jobs), quota, None)


def on_nodes(jobs: Sequence[RefJob], quota: int, nodes: int) -> Case:
    return Case(tuple(jobs), ("lq-a",) * len(jobs), quota, nodes)


def starts_ends(outcome: dict[str, RefTimes]) -> dict[str, tuple[float | None, float | None]]:
    return {job_id: (t.start, t.end) for job_id, t in outcome.items()}


# Quota 4. a (3 GPUs) runs 0-10. b (4 GPUs) arrives at 1: 1 GPU free, it waits. c (1 GPU) at 2:
#   StrictFIFO: c is behind b, which blocks it. At 10 a ends: 4 free, b runs 10-15 (0 free, c still
#     waits); at 15 b ends, c runs 15-19.
#   BestEffortFIFO: c fits in the 1 free GPU: runs 2-6. At 6 only 1 free, b still waits; at 10 a
#     ends, b runs 10-15.
HEAD_BLOCKS = [job("a", 0, 10, 3), job("b", 1, 5, 4), job("c", 2, 4, 1)]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("StrictFIFO", {"a": (0.0, 10.0), "b": (10.0, 15.0), "c": (15.0, 19.0)}),
        ("BestEffortFIFO", {"a": (0.0, 10.0), "b": (10.0, 15.0), "c": (2.0, 6.0)}),
    ],
)
def test_a_head_that_does_not_fit(strategy: Strategy, expected: dict[str, tuple[float, float]]) -> None:
    assert starts_ends(assert_same(pooled(HEAD_BLOCKS, quota=4), strategy)) == expected


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_quota_freed_at_an_instant_serves_an_arrival_at_that_instant(strategy: Strategy) -> None:
    # Quota 4. a (4 GPUs) runs 0-10; b (4 GPUs) arrives at 10, the instant a ends: ends are handled
    # before arrivals and admission at the arrival's instant, so b runs 10-15 with no wait.
    outcome = assert_same(pooled([job("a", 0, 10, 4), job("b", 10, 5, 4)], quota=4), strategy)
    assert starts_ends(outcome) == {"a": (0.0, 10.0), "b": (10.0, 15.0)}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_order_is_priority_then_submit_time_then_job_id(strategy: Strategy) -> None:
    # Quota 2, every job asks 2 GPUs and runs 10 s, so they run one after another. blocker runs
    # 0-10. Waiting at 10: y and x (submitted at 1, priority 0), old (submitted at 1, priority 0 but
    # id "a0" < "x"), vip (submitted at 5, priority 10). Order: vip (priority), then a0, x, y (same
    # priority and time: by id). vip 10-20, a0 20-30, x 30-40, y 40-50.
    jobs = [
        job("blocker", 0, 10, 2),
        job("y", 1, 10, 2),
        job("x", 1, 10, 2),
        job("a0", 1, 10, 2),
        job("vip", 5, 10, 2, priority=10),
    ]
    outcome = assert_same(pooled(jobs, quota=2), strategy)
    assert starts_ends(outcome) == {
        "blocker": (0.0, 10.0),
        "vip": (10.0, 20.0),
        "a0": (20.0, 30.0),
        "x": (30.0, 40.0),
        "y": (40.0, 50.0),
    }


def test_a_job_larger_than_the_quota_blocks_a_strict_queue_for_good() -> None:
    # Quota 4. big (8 GPUs) can never be admitted. StrictFIFO: small (1 GPU, submitted after it)
    # never runs either. BestEffortFIFO: small runs 1-2.
    jobs = [job("big", 0, 10, 8), job("small", 1, 1, 1)]
    strict = assert_same(pooled(jobs, quota=4), "StrictFIFO")
    assert starts_ends(strict) == {"big": (None, None), "small": (None, None)}
    best_effort = assert_same(pooled(jobs, quota=4), "BestEffortFIFO")
    assert starts_ends(best_effort) == {"big": (None, None), "small": (1.0, 2.0)}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_best_fit_leaves_room_for_a_later_job(strategy: Strategy) -> None:
    # Two 8-GPU nodes, quota 16. At 0: a (4 GPUs) goes to n0 (both nodes have 8 free: tie, by name),
    # b (6 GPUs) to n1 (n0 has 4 free). At 1: c (2 GPUs) goes to n1, the tighter node (2 free) ->
    # n0 keeps 4 free, so d (4 GPUs, at 1) runs at once: 1-11. (First fit would have put c on n0
    # and d, admitted by quota, would have waited for a node until 50.)
    jobs = [job("a", 0, 50, 4), job("b", 0, 50, 6), job("c", 1, 50, 2), job("d", 1, 10, 4)]
    outcome = assert_same(on_nodes(jobs, quota=16, nodes=2), strategy)
    assert starts_ends(outcome) == {"a": (0.0, 50.0), "b": (0.0, 50.0), "c": (1.0, 51.0), "d": (1.0, 11.0)}
    assert {k: tuple(dict.fromkeys(t.nodes)) for k, t in outcome.items()} == {
        "a": ("n0",),
        "b": ("n1",),
        "c": ("n1",),
        "d": ("n0",),
    }


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_admitted_by_quota_then_waiting_for_a_node(strategy: Strategy) -> None:
    # Two 8-GPU nodes, quota 16. At 0 four 4-GPU jobs: best fit packs p0+p1 on n0, p2+p3 on n1.
    # At 1 big (8 GPUs) does not fit the quota (0 free): it waits for admission. At 10 p0 and p2
    # end: 8 GPUs of quota free, big is admitted at 10, but n0 and n1 have 4 free each: its pod
    # waits until p1 ends at 30 and frees n0: big runs 30-35. small (2 GPUs, at 20) finds no quota
    # (big holds 8, p1 and p3 hold 8) under either strategy; at 30 p1 and p3 end, small is
    # admitted and fits on n1 (n0 went to big): 30-32. Quota admits; nodes decide the start.
    jobs = [
        job("p0", 0, 10, 4),
        job("p1", 0, 30, 4),
        job("p2", 0, 10, 4),
        job("p3", 0, 30, 4),
        job("big", 1, 5, 8),
        job("small", 20, 2, 2),
    ]
    outcome = assert_same(on_nodes(jobs, quota=16, nodes=2), strategy)
    assert outcome["big"] == RefTimes(admitted=10.0, start=30.0, end=35.0, nodes=("n0",))
    assert (outcome["small"].admitted, outcome["small"].start, outcome["small"].end) == (30.0, 30.0, 32.0)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_multi_node_gang_starts_when_all_its_pods_fit(strategy: Strategy) -> None:
    # Two 8-GPU nodes, quota 24 (more than the fleet). a (6 GPUs) on n0 0-10, b (6 GPUs) on n1
    # 0-20. gang (2 pods of 4 GPUs, at 1): quota admits it at 1, but only 2 GPUs are free on each
    # node; all or nothing: nothing placed. At 10 a ends: n0 has 8 free. The first pod takes n0
    # (the only node with 4 free), the second n0 again (4 left there; n1 has 2): 10-15.
    jobs = [job("a", 0, 10, 6), job("b", 0, 20, 6), job("gang", 1, 5, 4, pods=2)]
    outcome = assert_same(on_nodes(jobs, quota=24, nodes=2), strategy)
    assert outcome["gang"] == RefTimes(admitted=1.0, start=10.0, end=15.0, nodes=("n0", "n0"))
