"""The discrete-event engine: closed forms, conservation, capacity, determinism, queueing theory."""

from __future__ import annotations

import math
from typing import Any

from budcore_simulator.engine import EngineOptions, FailureModel, Simulation, SimulationResult
from budcore_simulator.workload.generators import generate_arrivals, parse_generator_spec
from budcore_simulator.workload.model import JobArrival
from support.engine import START, arrival, fleet, one_queue


def run(
    arrivals: list[JobArrival], nodes: int = 1, gpus: int = 8, quota: int | None = None, **opts: Any
) -> SimulationResult:
    return Simulation(
        fleet(nodes, gpus),
        one_queue(quota if quota is not None else nodes * gpus),
        arrivals,
        options=EngineOptions(start=START, **opts),
    ).run()


def test_single_job_waits_zero_and_jct_is_its_runtime() -> None:
    result = run([arrival(0, 100.0, 3600.0, gpus=4)])
    (record,) = result.records
    assert record.status == "completed"
    assert record.admitted_s == 100.0
    assert record.end_s == 3700.0
    assert record.gpu_s == 4 * 3600.0
    assert record.lost_gpu_s == 0.0


def test_fifo_queue_on_one_gpu_is_exactly_sequential() -> None:
    jobs = [arrival(i, 0.0, 10.0 * (i + 1), gpus=1) for i in range(4)]
    result = run(jobs, nodes=1, gpus=1)
    ends = [r.end_s for r in result.records]
    assert ends == [10.0, 30.0, 60.0, 100.0]
    assert [r.admitted_s for r in result.records] == [0.0, 10.0, 30.0, 60.0]


def test_conservation_and_capacity_never_exceeded() -> None:
    violations: list[str] = []

    def check(sim: Simulation, now: float) -> None:
        for node in sim.backend.capacity().nodes:
            for resource, amount in node.free.items():
                if amount < 0:
                    violations.append(f"{now}: {node.node.name} {resource} {amount}")
        used = sum(r.gpus for r in sim.running.values())
        if used > 16:
            violations.append(f"{now}: {used} GPUs running on a 16-GPU fleet")

    jobs = [arrival(i, i * 50.0, 400.0 + (i % 7) * 300, gpus=[1, 2, 4, 8][i % 4]) for i in range(300)]
    sim = Simulation(fleet(2, 8), one_queue(16), jobs, options=EngineOptions(start=START), observer=check)
    result = sim.run()
    assert violations == []
    assert len(result.records) == 300
    assert all(r.status == "completed" for r in result.records)
    # every GPU-second was accounted exactly once
    assert math.isclose(sum(r.gpu_s for r in result.records), sum(result.flavor_gpu_s.values()))


def test_horizon_leaves_unfinished_jobs_in_exactly_one_live_state() -> None:
    jobs = [arrival(i, i * 10.0, 1000.0, gpus=8) for i in range(20)]
    result = run(jobs, nodes=1, gpus=8, horizon_s=2500.0)
    statuses = [r.status for r in result.records]
    assert statuses.count("completed") == 2
    assert statuses.count("running") == 1
    assert set(statuses) <= {"completed", "running", "queued"}
    assert result.horizon_s == 2500.0


def test_a_job_larger_than_its_quota_never_runs_and_the_run_ends() -> None:
    result = run([arrival(0, 0.0, 10.0, gpus=8)], nodes=1, gpus=8, quota=4)
    assert result.records[0].status == "queued"
    assert result.stats.events < 10


def test_a_pod_larger_than_any_node_waits_admitted_and_the_run_ends() -> None:
    # quota allows 16 GPUs but no node has more than 8: admitted, pods pending, nothing can change
    result = run([arrival(0, 0.0, 10.0, gpus=16)], nodes=2, gpus=8)
    record = result.records[0]
    assert record.status == "admitted"
    assert record.start_s is None
    assert record.reason.startswith("admitted; pods pending")


def test_pods_ready_timeout_requeues_then_fails_after_the_retry_budget() -> None:
    result = run([arrival(0, 0.0, 10.0, gpus=16)], nodes=2, gpus=8, pods_ready_timeout_s=300.0, max_retries=2)
    record = result.records[0]
    assert record.status == "failed"
    assert record.retries == 2
    assert result.stats.pods_ready_timeouts == 3
    assert record.reason == "pods never became ready (3 attempts)"


def test_fragmented_capacity_keeps_quota_and_places_when_nodes_free() -> None:
    # Two 8-GPU nodes; four 4-GPU jobs fill both, then an 8-GPU job is admitted by quota (after
    # two jobs on different nodes finish) but must wait until one node is wholly free.
    jobs = [
        arrival(0, 0.0, 100.0, gpus=4),
        arrival(1, 0.0, 300.0, gpus=4),
        arrival(2, 0.0, 100.0, gpus=4),
        arrival(3, 0.0, 300.0, gpus=4),
        arrival(4, 1.0, 50.0, gpus=8),
    ]
    result = run(jobs, nodes=2, gpus=8)
    big = result.records[4]
    # Best fit packs j0+j1 on n0 and j2+j3 on n1. At t=100 j0 and j2 end: quota has 8 GPUs free,
    # so the 8-GPU job is admitted, but each node has only 4 free until j1 ends at t=300.
    assert (big.admitted_s, big.start_s, big.end_s) == (100.0, 300.0, 350.0)
    assert result.stats.placement_waits == 1
    assert all(r.status == "completed" for r in result.records)


def test_node_failures_restart_from_checkpoint_and_count_lost_work() -> None:
    jobs = [arrival(i, 0.0, 20_000.0, gpus=8, checkpoint_interval_s=1000.0) for i in range(4)]
    failures = FailureModel(mtbf_s=8 * 3600.0, repair_s=600.0)
    result = run(jobs, nodes=4, gpus=8, failures=failures, seed=3)
    assert result.stats.node_failures > 0
    assert all(r.status in ("completed", "failed") for r in result.records)
    failed_over = [r for r in result.records if r.failures]
    assert failed_over
    for r in failed_over:
        # lost work is less than one checkpoint interval per failure, on 8 GPUs
        assert 0 < r.lost_gpu_s <= r.failures * 1000.0 * 8
        if r.status == "completed":
            assert math.isclose(r.gpu_s - r.lost_gpu_s, 20_000.0 * 8)


def test_same_seed_same_result_different_seed_differs() -> None:
    spec = parse_generator_spec(
        {
            "classes": [
                {
                    "name": "mix",
                    "tenant": "t",
                    "local_queue": "lq",
                    "arrivals": {"kind": "poisson", "rate": 30, "per": "1h"},
                    "runtime": {"kind": "exponential", "mean": "20m"},
                    "gpus": {1: 0.7, 2: 0.2, 4: 0.1},
                    "count": 300,
                }
            ]
        }
    )

    def once(seed: int) -> list[tuple[Any, ...]]:
        result = run(list(generate_arrivals(spec, seed)), nodes=1, gpus=8)
        return [(r.arrival.job_id, r.admitted_s, r.end_s, r.flavor, r.nodes) for r in result.records]

    assert once(1) == once(1)
    assert once(1) != once(2)


def erlang_c_wait(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Mean time in queue of an M/M/c queue (Erlang C)."""
    a = arrival_rate / service_rate
    rho = a / servers
    top = a**servers / math.factorial(servers) / (1 - rho)
    bottom = sum(a**k / math.factorial(k) for k in range(servers)) + top
    return (top / bottom) / (servers * service_rate - arrival_rate)


def test_mmc_mean_wait_matches_erlang_c() -> None:
    """4 single-GPU servers, Poisson arrivals 3/h, exponential service 1 h: ρ = 0.75."""
    spec = parse_generator_spec(
        {
            "classes": [
                {
                    "name": "mmc",
                    "tenant": "t",
                    "local_queue": "lq",
                    "arrivals": {"kind": "poisson", "rate": 3, "per": "1h"},
                    "runtime": {"kind": "exponential", "mean": "1h"},
                    "gpus": 1,
                    "count": 6000,
                }
            ]
        }
    )
    result = run(list(generate_arrivals(spec, 11)), nodes=4, gpus=1)
    waits = [r.admitted_s - r.arrival.submit_s for r in result.records if r.admitted_s is not None]
    warm = waits[500:]  # drop the warm-up from an empty system
    expected = erlang_c_wait(4, 3 / 3600, 1 / 3600)
    observed = sum(warm) / len(warm)
    assert abs(observed - expected) / expected < 0.15, (observed, expected)


def test_preemption_with_grace_checkpoint_loss_and_requeue() -> None:
    """A high-priority job evicts a checkpointing low one: grace, lost work, requeue, resume."""
    from budcore.scheduling import ClusterQueuePreemption
    from budcore.scheduling.preemption import PreemptionPolicy
    from budcore.scheduling.queues import WithinClusterQueue

    base = one_queue(8)
    preempting = ClusterQueuePreemption(within_cluster_queue=WithinClusterQueue.LOWER_PRIORITY)
    cq = base.cluster_queues["cq"].model_copy(update={"preemption": preempting})
    queues = base.with_objects(cluster_queues={"cq": cq})
    low = arrival(0, 0.0, 3600.0, gpus=8, priority="low", checkpoint_interval_s=600.0)
    high = arrival(1, 1000.0, 100.0, gpus=8, priority="high")
    result = Simulation(
        fleet(1, 8), queues, [low, high], options=EngineOptions(start=START), preemption=PreemptionPolicy()
    ).run()
    low_r, high_r = result.records
    # evicted at 1000 + 30 s grace; checkpointed at 600, so 430 s × 8 GPUs are lost
    assert low_r.preemptions == 1
    assert low_r.lost_gpu_s == 430.0 * 8
    assert (high_r.admitted_s, high_r.start_s, high_r.end_s) == (1030.0, 1030.0, 1130.0)
    # resumes from its checkpoint: 3000 s left after the high job finishes
    assert low_r.end_s == 1130.0 + 3000.0
    assert low_r.status == "completed"
    assert result.stats.preemptions == 1


def test_pending_pods_are_offered_in_admission_order_skipping_refused_groups() -> None:
    """A retry pass offers workloads in admission order; after a refusal, the rest of its group
    (workloads the backend says stand or fall together) is not offered again in that pass."""
    from budcore_simulator.engine import _PendingPods

    from budcore.domain.cluster import Workload
    from budcore.domain.ids import JobId, TenantId

    pending = _PendingPods()
    workload = Workload(job_id=JobId("w"), tenant=TenantId("acme"), pod_sets=())
    for job_id, key in [("a1", "A"), ("b1", "B"), ("a2", "A"), ("c1", "C"), ("b2", "B"), ("a3", "A")]:
        pending.add(job_id, workload, "gpu", key)
    offered: list[str] = []

    def try_place(job_id: str, _: Workload, flavor: str) -> bool:
        assert flavor == "gpu"
        offered.append(job_id)
        return job_id in {"a1", "b1", "c1"}  # a2 and b2 are refused

    pending.place(try_place)
    assert offered == ["a1", "b1", "a2", "c1", "b2"]  # a3 skipped after a2's refusal
    assert "a1" not in pending and "a2" in pending and "a3" in pending
    pending.remove("a2")
    offered.clear()
    pending.place(lambda job_id, w, f: offered.append(job_id) is None)
    assert offered == ["b2", "a3"] and not pending


def test_a_job_failed_by_the_pods_ready_timeout_gives_its_admission_back() -> None:
    """A restarting controller rebuilds from the workloads still holding quota, not failed ones."""
    from budcore_simulator.engine import ControllerRestartModel

    jobs = [arrival(0, 0.0, 10.0, gpus=16), arrival(1, 0.0, 10_000.0, gpus=1)]
    result = run(
        jobs,
        nodes=2,
        gpus=8,
        pods_ready_timeout_s=300.0,
        max_retries=2,
        controller_restart=ControllerRestartModel(every_s=2_000.0),
    )
    never, long = result.records
    assert never.status == "failed" and never.admission is None
    assert long.status == "completed" and result.stats.controller_restarts >= 1


def test_a_run_with_node_failures_ends_when_its_work_is_done() -> None:
    """Repairs keep coming while nodes fail, but once every job has finished nothing waits for the
    capacity they bring back: the run ends at the next clock tick, not days later by chance."""
    jobs = [arrival(i, 0.0, 1000.0, gpus=1) for i in range(3)]
    failures = FailureModel(mtbf_s=3600.0, repair_s=3600.0)  # about half the nodes under repair
    result = run(jobs, nodes=100, gpus=8, failures=failures, seed=1)
    ends = [r.end_s for r in result.records if r.end_s is not None]
    assert len(ends) == 3
    assert result.horizon_s <= max(ends) + 300.0  # the next sample (default every 300 s) at most


def test_a_run_with_node_failures_ends_even_if_a_job_can_never_be_admitted() -> None:
    """A job above its queue's quota waits forever, but repairs bring nodes, not quota: they help
    only admitted work waiting for nodes, so the run ends once the rest is done (no horizon set)."""
    jobs = [arrival(0, 0.0, 1000.0, gpus=1), arrival(1, 0.0, 1000.0, gpus=16)]
    failures = FailureModel(mtbf_s=3600.0, repair_s=3600.0)
    result = run(jobs, nodes=100, gpus=8, quota=8, failures=failures, seed=1)
    done, never = result.records
    assert done.status == "completed" and done.end_s is not None
    assert never.status == "queued" and never.admitted_s is None
    assert result.horizon_s <= done.end_s + 300.0


def test_freezing_finished_records_changes_no_result_and_unfreezes_at_the_end() -> None:
    import gc

    jobs = [arrival(i, i * 30.0, 600.0 + (i % 5) * 120, gpus=[1, 2, 4][i % 3]) for i in range(200)]
    plain = run(jobs, nodes=2, gpus=8)
    seen: list[int] = []
    calls = iter(range(1 << 30))

    def observe(_sim: Simulation, _now: float) -> None:
        # gc.get_freeze_count() walks the frozen generation: in a process holding the whole test
        # suite, called at every event it took a minute; every 16th event sees the freezes as well.
        if next(calls) % 16 == 0:
            seen.append(gc.get_freeze_count())

    sim = Simulation(
        fleet(2, 8),
        one_queue(16),
        jobs,
        options=EngineOptions(start=START, gc_freeze_every=20),
        observer=observe,
    )
    frozen = sim.run()
    assert max(seen) > 0  # records were frozen out of the collector's sight during the run
    assert gc.get_freeze_count() == 0  # and all given back at its end
    assert [(r.arrival.job_id, r.admitted_s, r.end_s) for r in frozen.records] == [
        (r.arrival.job_id, r.admitted_s, r.end_s) for r in plain.records
    ]
