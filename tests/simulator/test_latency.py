"""The cycle-latency model on cases small enough to work out by hand, and that it is off by default."""

from __future__ import annotations

from pathlib import Path

import pytest
from budcore_simulator.build import build_simulation
from budcore_simulator.engine import EngineOptions, Simulation, SimulationResult
from budcore_simulator.latency import HeadQueues, LatencyModel
from budcore_simulator.scenario import LatencySpec, PolicySpec, load_scenario
from budcore_simulator.status import SimJobStatus
from support.engine import START

from budcore.domain.errors import ValidationError
from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import Job, ResourceRequest
from budcore.scheduling import QueueConfig
from budcore.scheduling.preemption.aging import AgingPolicy


def queue_documents(cluster_queues: dict[str, int], strategy: str = "BestEffortFIFO") -> str:
    """One CPU-only ClusterQueue per entry (its nominal CPUs), each with LocalQueue ``lq`` in the
    namespace of its name, all in cohort ``all``."""
    out = "queues:\n  documents:\n"
    out += "    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: rf}}\n"
    for name, cpus in cluster_queues.items():
        out += (
            "    - apiVersion: kueue.x-k8s.io/v1beta2\n      kind: ClusterQueue\n"
            f"      metadata: {{name: {name}}}\n"
            f"      spec:\n        cohortName: all\n        queueingStrategy: {strategy}\n"
            "        namespaceSelector: {}\n        resourceGroups:\n          - coveredResources: [cpu]\n"
            f"            flavors: [{{name: rf, resources: [{{name: cpu, nominalQuota: {cpus}}}]}}]\n"
            f"    - apiVersion: kueue.x-k8s.io/v1beta2\n      kind: LocalQueue\n"
            f"      metadata: {{name: lq, namespace: {name}}}\n      spec: {{clusterQueue: {name}}}\n"
        )
    return out


def jobs(name: str, queue: str, count: int, runtime: str, *, start: str = "0s", cpu: int = 1) -> str:
    return (
        f"      - {{name: {name}, tenant: {queue}, local_queue: lq, gpus: 0, cpu_without_gpu: {cpu}, "
        f"count: {count}, start: {start}, arrivals: {{kind: fixed, interval: 0s}}, "
        f"runtime: {{kind: fixed, value: {runtime}}}}}\n"
    )


def run(
    tmp_path: Path,
    queues: dict[str, int],
    classes: str,
    latency: str | None,
    strategy: str = "BestEffortFIFO",
) -> SimulationResult:
    policy = "" if latency is None else f"policy:\n  latency: {latency}\n"
    workload = f"workload:\n  generators:\n    classes:\n{classes}"
    text = f"name: latency\n{queue_documents(queues, strategy)}{policy}{workload}"
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return build_simulation(load_scenario(path)).run()


def admitted(result: SimulationResult) -> dict[str, float | None]:
    return {r.arrival.job_id: r.admitted_s for r in result.records}


ZERO = "{cycle_period: 0s, head_cost: 0s, requeue_delay: 0s, release_delay: 0s"


def test_one_head_per_cluster_queue_per_cycle(tmp_path: Path) -> None:
    """Three 1-CPU jobs at t=0 in a 10-CPU queue: without the model all are admitted at 0; with
    one head per cycle and cycles 1 s apart, at 0, 1 and 2 s; with two heads, at 0, 0 and 1 s."""
    classes = jobs("a", "q", 3, "100s")
    assert list(admitted(run(tmp_path, {"q": 10}, classes, None)).values()) == [0.0, 0.0, 0.0]
    one = run(tmp_path, {"q": 10}, classes, ZERO.replace("cycle_period: 0s", "cycle_period: 1s") + "}")
    assert list(admitted(one).values()) == [0.0, 1.0, 2.0]
    two = ZERO.replace("cycle_period: 0s", "cycle_period: 1s") + ", heads_per_cluster_queue: 2}"
    assert list(admitted(run(tmp_path, {"q": 10}, classes, two)).values()) == [0.0, 0.0, 1.0]


def test_each_head_costs_cycle_time(tmp_path: Path) -> None:
    """Two queues with two jobs each: the first cycle processes two heads at 0.5 s each, so the
    second cycle, which admits the second jobs, starts at 1 s."""
    classes = jobs("a", "p", 2, "100s") + jobs("b", "q", 2, "100s")
    result = run(
        tmp_path, {"p": 10, "q": 10}, classes, ZERO.replace("head_cost: 0s", "head_cost: 0.5s") + "}"
    )
    assert admitted(result) == {"a-0": 0.0, "b-0": 0.0, "a-1": 1.0, "b-1": 1.0}
    assert result.stats.cycles == 2


def test_quota_comes_back_after_the_release_delay_and_the_inadmissible_after_the_requeue_delay(
    tmp_path: Path,
) -> None:
    """A 1-CPU queue, two 1-CPU jobs of 10 s at t=0. The first runs 0..10; its quota is released
    at 12 (release delay 2 s). The second, inadmissible since its attempt at 0, is requeued 3 s
    after that release (requeue delay) and admitted at 15."""
    latency = "{cycle_period: 0s, head_cost: 0s, requeue_delay: 3s, release_delay: 2s}"
    result = run(tmp_path, {"q": 1}, jobs("a", "q", 2, "10s"), latency)
    first, second = result.records
    assert (first.admitted_s, first.end_s) == (0.0, 10.0)
    assert (second.admitted_s, second.end_s) == (15.0, 25.0)
    assert result.horizon_s == 27.0  # the last release
    # The quota was held 0..12 and 15..27: 24 CPU-seconds over 27 s of a 1-CPU queue.
    assert result.quota_held_s[("q", "cpu")] == pytest.approx(24.0)
    without = run(tmp_path, {"q": 1}, jobs("a", "q", 2, "10s"), None)
    assert [r.admitted_s for r in without.records] == [0.0, 10.0]


def test_a_strict_fifo_head_keeps_its_place(tmp_path: Path) -> None:
    """A 2-CPU job waits behind a running one in a 2-CPU queue; a 1-CPU job behind it. Under
    BestEffortFIFO the big one is set aside and the small one is admitted in the next cycle; under
    StrictFIFO the big head blocks the queue until the quota is back."""
    classes = jobs("run", "q", 1, "10s", cpu=1) + jobs("big", "q", 1, "5s", start="1s", cpu=2)
    classes += jobs("small", "q", 1, "5s", start="1s", cpu=1)
    latency = ZERO.replace("cycle_period: 0s", "cycle_period: 1s") + "}"
    best = admitted(run(tmp_path, {"q": 2}, classes, latency))
    assert best["small-0"] == 2.0 and best["big-0"] == 10.0  # requeued when the quota comes back
    strict = admitted(run(tmp_path, {"q": 2}, classes, latency, strategy="StrictFIFO"))
    assert strict["big-0"] == 10.0 and strict["small-0"] == 15.0


def test_workloads_of_the_same_kind_are_set_aside_together() -> None:
    """Kueue's SchedulingEquivalenceHashing: a head that does not fit takes its kind with it."""
    heads = HeadQueues({"q": False}, {"q": "q"})

    def job(n: int, cpu: int) -> Job:
        return Job(
            id=JobId(f"j{n}"),
            name=f"j{n}",
            tenant=TenantId("t"),
            local_queue="lq",
            request=ResourceRequest.single(cpu=cpu),
            created_at=START,
        )

    for n, cpu in enumerate((4, 4, 1, 4)):
        heads.push("q", job(n, cpu), float(n))
    ((_, head),) = heads.pop_heads(1)
    assert head.job.id == "j0"
    assert heads.set_aside("q", head) == 2  # j1 and j3 ask the same
    assert [h.job.id for _, h in heads.pop_heads(5)] == ["j2"]
    heads.push("q", job(4, 4), 4.0)  # a newcomer of the set-aside kind joins them
    assert not heads.has_active() and heads.is_inadmissible("j4")
    assert heads.requeue("q") == 4 and heads.active_count() == 4


def test_the_model_is_off_by_default_and_true_gives_the_calibrated_defaults() -> None:
    assert PolicySpec().latency is None
    spec = PolicySpec.model_validate({"latency": True}).latency
    assert spec == LatencySpec()
    model = spec.model() if spec is not None else None
    assert model == LatencyModel(
        heads_per_cluster_queue=1,
        cycle_period_s=0.0,
        head_cost_s=0.014,
        requeue_delay_s=0.0,
        release_delay_s=1.1,
    )
    assert PolicySpec.model_validate({"latency": False}).latency is None
    assert model is not None and model.cycle_gap_s(30) == pytest.approx(0.42)


def test_the_model_refuses_what_it_cannot_keep_apart(tmp_path: Path) -> None:
    text = (
        f"name: x\n{queue_documents({'q': 1})}policy:\n  latency: true\n  aging: {{step: 1}}\n"
        f"workload:\n  generators:\n    classes:\n{jobs('a', 'q', 1, '1s')}"
    )
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    with pytest.raises(ValidationError) as info:
        load_scenario(path)
    assert info.value.path == "policy.aging" and "latency" in info.value.message
    with pytest.raises(ValidationError, match="aging"):
        Simulation(
            [],
            QueueConfig.build(),
            [],
            options=EngineOptions(start=START, latency=LatencyModel(), quota_only=True),
            aging=AgingPolicy(),
        )
    with pytest.raises(ValidationError):
        LatencyModel(heads_per_cluster_queue=0)


@pytest.mark.parametrize("period", ["0.25s", "0s"])
def test_a_preempting_head_is_back_at_once_and_its_victims_release_late(tmp_path: Path, period: str) -> None:
    """A 2-CPU queue running two 1-CPU jobs of priority 0; a 2-CPU job of priority 100 arrives at
    5 s and preempts both (kueue mode: no grace). Their quota comes back 1 s later (release delay),
    when the preemptor, retried every cycle meanwhile, is admitted."""
    classes = jobs("low", "q", 2, "100s").replace("gpus: 0,", "gpus: 0, priority: 0,")
    classes += jobs("high", "q", 1, "10s", start="5s", cpu=2).replace("gpus: 0,", "gpus: 0, priority: 100,")
    text = (
        f"name: x\n{queue_documents({'q': 2})}".replace(
            "        namespaceSelector: {}\n",
            "        namespaceSelector: {}\n        preemption: {withinClusterQueue: LowerPriority}\n",
        )
        + f"policy:\n  latency: {{cycle_period: {period}, head_cost: 0s, requeue_delay: 0s,"
        + " release_delay: 1s}\n"
        + f"workload:\n  generators:\n    classes:\n{classes}"
    )
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    result = build_simulation(load_scenario(path)).run()
    records = {r.arrival.job_id: r for r in result.records}
    assert records["high-0"].admitted_s == 6.0
    # Waiting for its victims' quota, the preemptor is not retried cycle after cycle at one instant.
    assert result.stats.cycles < 40
    for low in ("low-0", "low-1"):
        assert records[low].preemptions == 1 and records[low].status is SimJobStatus.COMPLETED
        assert records[low].admitted_s in (0.0, 0.25) and records[low].last_admitted_s is not None
        assert records[low].last_admitted_s >= 17.0  # after the high job's run and release


@pytest.mark.parametrize("strategy", ["BestEffortFIFO", "StrictFIFO"])
def test_a_head_that_can_never_fit_does_not_keep_cycling(tmp_path: Path, strategy: str) -> None:
    result = run(tmp_path, {"q": 1}, jobs("big", "q", 1, "1s", cpu=2), "true", strategy=strategy)
    (record,) = result.records
    assert record.status is SimJobStatus.QUEUED and record.admitted_s is None
    assert "inadmissible in ClusterQueue q" in record.reason
    assert result.stats.cycles == 1
