"""budcore's research orderings (SJF, SRTF, LAS, EDF) and the Gavel-style throughput policy:
hand-computed runs, a property, scenario errors, the CLI.

Every expected time below is worked out by hand from the rules in
:mod:`budcore.scheduling.ordering` (rank within a priority level, then queue time, then id) and
the engine's zero-latency rules (``tests/simulator/reference_fifo.py``, T1-T3: completions, then
arrivals, then one admission walk at each instant; a job runs for its runtime).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from budcore_simulator.engine import EngineOptions, Simulation
from budcore_simulator.scenario import load_scenario
from budcore_simulator.sweep import apply_policy, parse_policy
from budcore_simulator.workload.model import JobArrival
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.admission import GPU, T0, config, cq, job
from support.engine import START, arrival, fleet, one_queue

from budcore.cli import main
from budcore.domain.errors import ValidationError
from budcore.scheduling import AdmissionPolicy, ClusterQueuePreemption, Scheduler
from budcore.scheduling.ordering import Attained, Ordering, OrderingPolicy, check_cohorts, parse_ordering
from budcore.scheduling.preemption import PreemptionPolicy
from budcore.scheduling.queues import WithinClusterQueue
from budcore.testing.examples import examples

Times = dict[str, tuple[float | None, float | None]]


def run(
    arrivals: list[JobArrival], ordering: OrderingPolicy | None, *, gpus: int = 1, preempting: bool = False
) -> Times:
    """(start, end) of every job on one ClusterQueue of ``gpus`` GPUs (one node of that size)."""
    queues = one_queue(gpus)
    if preempting:
        preemption = ClusterQueuePreemption(within_cluster_queue=WithinClusterQueue.LOWER_PRIORITY)
        cq_ = queues.cluster_queues["cq"].model_copy(update={"preemption": preemption})
        queues = queues.with_objects(cluster_queues={"cq": cq_})
    sim = Simulation(
        fleet(1, gpus),
        queues,
        sorted(arrivals, key=lambda a: a.submit_s),
        options=EngineOptions(start=START),
        policy=AdmissionPolicy(ordering=ordering),
        preemption=PreemptionPolicy(grace_period=timedelta(0)),
    )
    return {r.arrival.job_id: (r.start_s, r.end_s) for r in sim.run().records}


def everywhere(ordering: Ordering, **kw: object) -> OrderingPolicy:
    return OrderingPolicy(default=ordering, **kw)  # type: ignore[arg-type]


# Three jobs on one GPU, all waiting at 0: runtimes 30, 10, 20 -------------------------------------
THREE = [arrival(0, 0.0, 30.0), arrival(1, 0.0, 10.0), arrival(2, 0.0, 20.0)]


def test_fifo_keeps_kueues_order() -> None:
    want = {"j0": (0.0, 30.0), "j1": (30.0, 40.0), "j2": (40.0, 60.0)}
    assert run(THREE, None) == want
    assert run(THREE, everywhere(Ordering.FIFO)) == want  # naming fifo changes nothing


def test_sjf_starts_the_shortest_declared_job_first() -> None:
    # j1 (10) at 0, j2 (20) at 10, j0 (30) at 30: mean JCT (10 + 30 + 60) / 3 = 33.3 vs FIFO 43.3
    assert run(THREE, everywhere(Ordering.SJF)) == {"j1": (0.0, 10.0), "j2": (10.0, 30.0), "j0": (30.0, 60.0)}
    # on fresh arrivals SRTF is SJF (nothing done yet) and LAS is FIFO (nothing attained yet)
    assert run(THREE, everywhere(Ordering.SRTF)) == run(THREE, everywhere(Ordering.SJF))
    assert run(THREE, everywhere(Ordering.LAS)) == run(THREE, None)


def test_sjf_reads_the_declared_estimate_and_a_default_for_none() -> None:
    # j0 runs 30 but declares 5; j1 declares nothing and counts as the default estimate, 15;
    # j2 declares its true 20: order j0 (5), j1 (15), j2 (20).
    arrivals = [
        arrival(0, 0.0, 30.0, estimated_runtime_s=5.0),
        arrival(1, 0.0, 10.0, declares_runtime=False),
        arrival(2, 0.0, 20.0),
    ]
    got = run(arrivals, everywhere(Ordering.SJF, default_estimate_s=15.0))
    assert got == {"j0": (0.0, 30.0), "j1": (30.0, 40.0), "j2": (40.0, 60.0)}
    # with the default of one hour, j1 goes last: j0 at 0, j2 at 30, j1 at 50
    got = run(arrivals, everywhere(Ordering.SJF))
    assert got == {"j0": (0.0, 30.0), "j2": (30.0, 50.0), "j1": (50.0, 60.0)}


def test_priority_still_wins_over_the_rank() -> None:
    arrivals = [*THREE, arrival(3, 0.0, 100.0, priority="high")]
    got = run(arrivals, everywhere(Ordering.SJF))
    assert got == {"j3": (0.0, 100.0), "j1": (100.0, 110.0), "j2": (110.0, 130.0), "j0": (130.0, 160.0)}


def test_equal_ranks_stay_in_arrival_order() -> None:
    # a blocker until 5; then three 10 s jobs submitted at 3, 1, 2 start in that arrival order
    arrivals = [arrival(9, 0.0, 5.0), arrival(0, 3.0, 10.0), arrival(1, 1.0, 10.0), arrival(2, 2.0, 10.0)]
    got = run(arrivals, everywhere(Ordering.SJF))
    assert got == {"j9": (0.0, 5.0), "j1": (5.0, 15.0), "j2": (15.0, 25.0), "j0": (25.0, 35.0)}


def test_edf_orders_by_deadline_and_puts_jobs_without_one_last() -> None:
    arrivals = [
        arrival(0, 0.0, 10.0, deadline_s=100.0),
        arrival(1, 0.0, 10.0),
        arrival(2, 0.0, 10.0, deadline_s=50.0),
    ]
    assert run(arrivals, everywhere(Ordering.EDF)) == {
        "j2": (0.0, 10.0),
        "j0": (10.0, 20.0),
        "j1": (20.0, 30.0),
    }


# A preempted job requeued: SRTF and LAS see what it did ------------------------------------------
def preempted_case() -> list[JobArrival]:
    """A (low, 100 s, checkpoints every 10 s) runs from 0; H (high, 10 s) preempts it at 50 (no
    grace): A keeps 50 s of work and attained 50 GPU-s, and is requeued at 50. B (low, 60 s) arrives
    at 55. When H ends at 60, A (estimate 100, 50 left, queued at 50) and B (60, queued at 55) wait.
    """
    return [
        arrival(0, 0.0, 100.0, priority="low", checkpoint_interval_s=10.0, job_id="a"),
        arrival(1, 50.0, 10.0, priority="high", job_id="h"),
        arrival(2, 55.0, 60.0, priority="low", job_id="b"),
    ]


# End times: A's second run takes its 50 s left, B its 60 s, from 60 on in the order chosen.
A_FIRST = {"a": 110.0, "h": 60.0, "b": 170.0}
B_FIRST = {"a": 170.0, "h": 60.0, "b": 120.0}


@pytest.mark.parametrize(
    ("ordering", "want"),
    [
        (everywhere(Ordering.FIFO), A_FIRST),  # A queued at 50, B at 55
        (everywhere(Ordering.SJF), B_FIRST),  # estimates 100 vs 60
        (everywhere(Ordering.SRTF), A_FIRST),  # remaining 50 vs 60
        (everywhere(Ordering.LAS), B_FIRST),  # attained 50 GPU-s vs 0
        (everywhere(Ordering.LAS, las_thresholds_gpu_s=(100.0,)), A_FIRST),  # both level 0: FIFO
        (everywhere(Ordering.LAS, las_thresholds_gpu_s=(40.0,)), B_FIRST),  # A level 1, B level 0
    ],
)
def test_a_requeued_job_is_ranked_by_what_it_did(ordering: OrderingPolicy, want: dict[str, float]) -> None:
    got = run(preempted_case(), ordering, preempting=True)
    assert {job_id: end for job_id, (_, end) in got.items()} == want


# The core: ranks, attained service, validation --------------------------------------------------
def test_ranks_from_the_job_and_what_it_attained() -> None:
    policy = OrderingPolicy(
        default=Ordering.SRTF,
        cluster_queues={"sjf": Ordering.SJF, "las": Ordering.LAS, "edf": Ordering.EDF, "fifo": Ordering.FIFO},
    )
    two = job("x", 2).model_copy(
        update={"estimated_duration": timedelta(minutes=30), "accumulated_runtime": timedelta(minutes=10)}
    )
    assert policy.rank("sjf", two) == 1800.0
    assert policy.rank("other", two) == 1200.0  # SRTF from the job's own accumulated runtime
    assert policy.rank("other", two, Attained(work_s=1700.0)) == 100.0
    assert policy.rank("other", two, Attained(work_s=5000.0)) == 0.0  # overran its estimate
    assert policy.rank("las", two) == 2 * 600.0  # two GPUs for ten minutes
    assert policy.rank("las", two, Attained(gpu_s=7.0)) == 7.0
    assert policy.rank("fifo", two) == 0.0
    assert policy.rank("edf", two) == float("inf")
    due = two.model_copy(update={"deadline": T0 + timedelta(hours=1)})
    assert policy.rank("edf", due) == (T0 + timedelta(hours=1)).timestamp()
    # a CPU-only job attains service by its time (as one accelerator), so LAS does not favour it
    cpu = job("x", 0).model_copy(update={"accumulated_runtime": timedelta(seconds=30)})
    assert policy.rank("las", cpu) == 30.0
    levels = OrderingPolicy(default=Ordering.LAS, las_thresholds_gpu_s=(100.0, 1000.0))
    assert [levels.rank("q", two, Attained(gpu_s=g)) for g in (0, 99.9, 100, 999, 1000, 10**6)] == [
        0.0,
        0.0,
        1.0,
        1.0,
        2.0,
        2.0,
    ]


def test_scheduler_orders_by_rank_and_keeps_attained_across_a_rekey() -> None:
    """A job requeued with what it attained keeps that rank when aging re-keys the queue."""
    from budcore.scheduling.preemption.aging import AgingPolicy

    policy = AdmissionPolicy(ordering=OrderingPolicy(default=Ordering.LAS))
    scheduler = Scheduler(config([cq("a", {"default": {GPU: 1}})]), policy)
    blocker = job("a", 1, name="blocker", at=T0)
    scheduler.submit(blocker)
    assert [a.job_id for a in scheduler.cycle(T0).admitted] == ["blocker"]
    old = job("a", 1, name="old", at=T0)
    new = job("a", 1, name="new", at=T0 + timedelta(seconds=5))
    scheduler.submit(old, attained=Attained(gpu_s=500.0))
    scheduler.submit(new)
    later = T0 + timedelta(hours=3, seconds=30)  # both waited 3 whole hours: +3 each
    assert scheduler.age(later, AgingPolicy(step=1, interval=timedelta(hours=1))) == 2
    scheduler.release("blocker", later)
    assert [a.job_id for a in scheduler.cycle(later).admitted] == ["new"]


def test_kueue_default_keys_are_unchanged() -> None:
    """Without an ordering (or with fifo everywhere) a pending key ranks 0: Kueue's order."""
    for ordering in (None, OrderingPolicy(), OrderingPolicy(cluster_queues={"a": Ordering.FIFO})):
        scheduler = Scheduler(config([cq("a", {"default": {GPU: 1}})]), AdmissionPolicy(ordering=ordering))
        assert scheduler.pending.ordering is None
        workload = scheduler.submit(job("a", 1, name="k", at=T0))
        # (-priority, rank, queue time, id): normal is 10
        assert workload.key == (-10, 0.0, T0.timestamp(), "k")  # type: ignore[union-attr]


def test_unknown_names_and_mixed_cohorts_are_errors() -> None:
    with pytest.raises(ValidationError) as info:
        parse_ordering("sjf2", "policy.ordering.default")
    assert info.value.path == "policy.ordering.default"
    assert "unknown ordering 'sjf2'; known: fifo, sjf, srtf, las, edf" in info.value.message
    with pytest.raises(ValidationError, match="positive and increasing"):
        OrderingPolicy(las_thresholds_gpu_s=(10.0, 5.0))
    with pytest.raises(ValidationError, match="must be positive"):
        OrderingPolicy(default_estimate_s=0)
    mixed = OrderingPolicy(cluster_queues={"b": Ordering.SJF})
    with pytest.raises(ValidationError, match=r"ClusterQueues a \(fifo\) and b \(sjf\) share a cohort"):
        check_cohorts(mixed, {"a": "cohort/c", "b": "cohort/c"})
    check_cohorts(mixed, {"a": "a", "b": "b"})  # separate trees: fine
    queues = config([cq("a", {"default": {GPU: 1}}, cohort="c"), cq("b", {"default": {GPU: 1}}, cohort="c")])
    with pytest.raises(ValidationError, match="share a cohort tree"):
        Scheduler(queues, AdmissionPolicy(ordering=mixed))
    apart = config([cq("a", {"default": {GPU: 1}}), cq("b", {"default": {GPU: 1}})])
    scheduler = Scheduler(apart, AdmissionPolicy(ordering=mixed))
    with pytest.raises(ValidationError, match="share a cohort tree"):
        scheduler.reconfigure(queues)
    assert scheduler.config is apart  # refused before anything changed


# A property: SJF never starts a longer job while a shorter one that fits as well waits ------------
@st.composite
def waiting_jobs(draw: st.DrawFn) -> tuple[int, list[JobArrival]]:
    quota = draw(st.integers(1, 6))
    n = draw(st.integers(1, 16))
    arrivals = [
        arrival(
            i,
            float(draw(st.integers(0, 30))),
            float(draw(st.integers(1, 20))),
            gpus=draw(st.integers(1, quota)),
            estimated_runtime_s=float(draw(st.integers(1, 20))),  # misestimates too
        )
        for i in range(n)
    ]
    return quota, arrivals


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=waiting_jobs())
def test_sjf_never_starts_a_longer_job_before_a_waiting_shorter_one_that_fits(
    case: tuple[int, list[JobArrival]],
) -> None:
    quota, arrivals = case
    got = run(arrivals, everywhere(Ordering.SJF), gpus=quota)
    by_id = {a.job_id: a for a in arrivals}
    for started_id, (start, _) in got.items():
        assert start is not None  # one queue, every job fits the quota: all run
        started = by_id[started_id]
        for other in arrivals:
            other_start = got[other.job_id][0]
            assert other_start is not None
            waiting = other.submit_s <= start < other_start
            if waiting and other.total_gpus <= started.total_gpus:
                assert other.estimate_s >= started.estimate_s, (started, other, got)


@st.composite
def jobs_with_deadlines(draw: st.DrawFn) -> tuple[int, list[JobArrival]]:
    quota = draw(st.integers(1, 6))
    arrivals = [
        arrival(
            i,
            float(draw(st.integers(0, 30))),
            float(draw(st.integers(1, 20))),
            gpus=draw(st.integers(1, quota)),
            deadline_s=draw(st.one_of(st.none(), st.integers(0, 200).map(float))),
        )
        for i in range(draw(st.integers(1, 16)))
    ]
    return quota, arrivals


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=jobs_with_deadlines())
def test_edf_never_starts_a_later_deadline_before_a_waiting_earlier_one_that_fits(
    case: tuple[int, list[JobArrival]],
) -> None:
    quota, arrivals = case
    got = run(arrivals, everywhere(Ordering.EDF), gpus=quota)
    by_id = {a.job_id: a for a in arrivals}

    def due(a: JobArrival) -> float:
        return float("inf") if a.deadline_s is None else a.deadline_s

    for started_id, (start, _) in got.items():
        assert start is not None
        started = by_id[started_id]
        for other in arrivals:
            other_start = got[other.job_id][0]
            assert other_start is not None
            if other.submit_s <= start < other_start and other.total_gpus <= started.total_gpus:
                assert due(other) >= due(started), (started, other, got)


# Scenarios and the CLI --------------------------------------------------------------------------
SCENARIO = """\
name: orderings
horizon: 2h
fleet:
  pools:
    - {name: a100, product: NVIDIA-A100-SXM4-80GB, gpus_per_node: 1, nodes: 1, price_per_gpu_hour: "2"}
queues:
  documents:
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ResourceFlavor
      metadata: {name: a100}
      spec: {nodeLabels: {budcore.io/pool: a100}}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ClusterQueue
      metadata: {name: team}
      spec:
        namespaceSelector: {}
        cohortName: shared
        resourceGroups:
          - coveredResources: [nvidia.com/gpu, cpu, memory]
            flavors:
              - name: a100
                resources:
                  - {name: nvidia.com/gpu, nominalQuota: 1}
                  - {name: cpu, nominalQuota: 64}
                  - {name: memory, nominalQuota: 512Gi}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ClusterQueue
      metadata: {name: other}
      spec:
        namespaceSelector: {}
        cohortName: shared
        resourceGroups:
          - coveredResources: [nvidia.com/gpu, cpu, memory]
            flavors:
              - name: a100
                resources:
                  - {name: nvidia.com/gpu, nominalQuota: 0}
                  - {name: cpu, nominalQuota: 0}
                  - {name: memory, nominalQuota: 0}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: LocalQueue
      metadata: {name: main, namespace: team}
      spec: {clusterQueue: team}
workload:
  traces: [{format: budcore, path: jobs.csv}]
"""
JOBS = """\
job_id,submit_s,runtime_s,gpus_per_pod,tenant,local_queue
j0,0,1800,1,team,main
j1,0,600,1,team,main
j2,0,1200,1,team,main
"""


def write(tmp_path: Path, policy: str = "") -> Path:
    (tmp_path / "jobs.csv").write_text(JOBS)
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO + policy)
    return path


def test_scenario_ordering_fields_and_their_errors(tmp_path: Path) -> None:
    loaded = load_scenario(write(tmp_path, "policy: {ordering: sjf}\n"))
    assert loaded.scenario.policy.admission().ordering == OrderingPolicy(default=Ordering.SJF)
    text = (
        "policy:\n  ordering:\n    default: las\n    las_thresholds: [1h, 10h]\n    default_estimate: 30m\n"
    )
    policy = load_scenario(write(tmp_path, text)).scenario.policy.admission().ordering
    assert policy == OrderingPolicy(
        default=Ordering.LAS, default_estimate_s=1800.0, las_thresholds_gpu_s=(3600.0, 36000.0)
    )
    bad = [
        ("policy: {ordering: shortest}\n", "policy.ordering.default", "unknown ordering 'shortest'"),
        (
            "policy:\n  ordering: {cluster_queues: {team: lsa}}\n",
            "policy.ordering.cluster_queues.team",
            "unknown ordering 'lsa'",
        ),
        (
            "policy:\n  ordering: {cluster_queues: {nobody: sjf}}\n",
            "policy.ordering.cluster_queues.nobody",
            "no ClusterQueue 'nobody' in the queues",
        ),
        (
            "policy:\n  ordering: {cluster_queues: {team: sjf}}\n",
            "policy.ordering",
            "ClusterQueues other (fifo) and team (sjf) share a cohort tree",
        ),
        (
            "policy: {ordering: sjf, latency: true}\n",
            "policy.ordering",
            "does not work with research orderings",
        ),
        ("policy:\n  ordering: {las_thresholds: [2h, 1h]}\n", "policy.ordering.las_thresholds", "increasing"),
    ]
    for extra, path, message in bad:
        with pytest.raises(ValidationError) as info:
            load_scenario(write(tmp_path, extra))
        assert (info.value.path, message in info.value.message) == (path, True), (extra, info.value)
        assert info.value.line is not None and str(info.value.source).endswith("scenario.yaml")


def test_a_preset_keeps_the_scenarios_ordering_options(tmp_path: Path) -> None:
    text = "policy:\n  ordering: {default: fifo, cluster_queues: {team: edf, other: edf}, "
    text += "las_thresholds: [1h]}\n"
    scenario = load_scenario(write(tmp_path, text)).scenario
    assert parse_policy("las").policy == {"ordering": {"default": "las", "cluster_queues": {}}}
    applied = apply_policy(scenario, parse_policy("las")).policy.admission().ordering
    assert applied == OrderingPolicy(default=Ordering.LAS, las_thresholds_gpu_s=(3600.0,))


def test_compare_runs_the_research_orderings(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    argv = ["compare", str(write(tmp_path)), "-p", "fifo", "-p", "sjf", "-p", "edf", "--workers", "1"]
    assert main([*argv, "--format", "json", "--out", str(out)]) == 0
    summary = json.loads((out / "compare.json").read_text())
    jct = {label: summary[label]["report"]["overall"]["jct_s"]["mean"] for label in summary}
    # FIFO: 1800, 2400, 3600 -> 2600 s; SJF: 600, 1800, 3600 -> 2000 s; EDF without deadlines: FIFO
    assert jct == pytest.approx({"fifo": 2600.0, "sjf": 2000.0, "edf": 2600.0})


def test_las_and_srtf_without_requeues_say_they_ordered_as_fifo_and_sjf(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing is preempted in this scenario, so las equals fifo and srtf equals sjf: the figures
    tie, and both commands say why instead of leaving a planner to read the tie as a finding."""
    out = tmp_path / "cmp"
    argv = ["compare", str(write(tmp_path)), "-p", "fifo", "-p", "las", "-p", "srtf", "-p", "sjf"]
    assert main([*argv, "--workers", "1", "--format", "json", "--out", str(out)]) == 0
    summary = json.loads((out / "compare.json").read_text())
    jct = {label: summary[label]["report"]["overall"]["jct_s"]["mean"] for label in summary}
    assert jct == pytest.approx({"fifo": 2600.0, "las": 2600.0, "srtf": 2000.0, "sjf": 2000.0})
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 2, err
    assert "las: no job was requeued" in notes[0] and "las as fifo would have ordered it" in notes[0]
    assert "srtf: no job was requeued" in notes[1] and "srtf as sjf" in notes[1]
    path = write(tmp_path, "policy: {ordering: las}\n")
    assert main(["simulate", str(path), "--out", str(tmp_path / "sim"), "--no-plots", "-q"]) == 0
    assert "note: no job was requeued" in capsys.readouterr().err


def test_a_run_that_requeued_a_job_has_no_such_note() -> None:
    from budcore_simulator.cli import nothing_attained_note

    assert nothing_attained_note([Ordering.LAS], requeued=1) is None
    assert nothing_attained_note([], requeued=0) is None
    note = nothing_attained_note([Ordering.LAS, Ordering.SRTF], requeued=0)
    assert note is not None and "las as fifo, srtf as sjf" in note


TIRESIAS = SCENARIO.replace(
    "      metadata: {name: team}\n      spec:\n        namespaceSelector: {}\n",
    "      metadata: {name: team}\n      spec:\n        namespaceSelector: {}\n"
    "        preemption: {withinClusterQueue: LowerPriority}\n",
)
TIRESIAS_JOBS = """\
job_id,submit_s,runtime_s,gpus_per_pod,tenant,local_queue
long,0,3600,1,team,main
short,60,120,1,team,main
"""


def tiresias_run(tmp_path: Path, las_preemption: bool) -> dict[str, tuple[float | None, float | None, int]]:
    (tmp_path / "jobs.csv").write_text(TIRESIAS_JOBS)
    path = tmp_path / "scenario.yaml"
    flag = "true" if las_preemption else "false"
    policy = f"policy:\n  ordering: {{default: las, las_thresholds: [5m], las_preemption: {flag}}}\n"
    path.write_text(TIRESIAS.replace("horizon: 2h", "horizon: 3h") + policy)
    from budcore_simulator.build import build_simulation

    result = build_simulation(load_scenario(path)).run()
    return {r.arrival.job_id: (r.start_s, r.end_s, r.preemptions) for r in result.records}


def test_las_preemption_lets_a_short_job_preempt_one_that_reached_a_level(tmp_path: Path) -> None:
    """Tiresias: ``long`` (1 GPU) reaches the 5 GPU-minute threshold 300 s after it started, so
    ``short`` (waiting since 60 s, level 0) preempts it then and runs 300-420 s; ``long`` starts
    again at 420 s (no checkpoint: it lost its 300 s) and ends at 4,020 s. Without
    ``las_preemption``, ``short`` waits for ``long`` to end at 3,600 s."""
    plain = tiresias_run(tmp_path, las_preemption=False)
    assert plain == {"long": (0.0, 3600.0, 0), "short": (3600.0, 3720.0, 0)}
    preempting = tiresias_run(tmp_path, las_preemption=True)
    assert preempting["short"] == (300.0, 420.0, 0)
    assert preempting["long"] == (0.0, 4020.0, 1)


def test_las_preemption_is_refused_without_thresholds_or_with_fair_sharing(tmp_path: Path) -> None:
    for extra, message in [
        (
            "policy:\n  ordering: {default: las, las_preemption: true}\n",
            "las_preemption needs las_thresholds",
        ),
        (
            "policy:\n  fair_sharing: true\n"
            "  ordering: {default: las, las_thresholds: [1h], las_preemption: true}\n",
            "not with fair sharing",
        ),
    ]:
        with pytest.raises(ValidationError) as info:
            load_scenario(write(tmp_path, extra))
        assert message in info.value.message
        assert info.value.path.startswith("policy.ordering")
        assert info.value.line is not None


# Gavel-style throughput per accelerator type ------------------------------------------------------
TWO_FLAVORS = """\
name: gavel
horizon: 2h
fleet:
  pools:
    - {name: h100, product: NVIDIA-H100-80GB-HBM3, gpus_per_node: 1, nodes: 1, price_per_gpu_hour: "6"}
    - {name: a100, product: NVIDIA-A100-SXM4-80GB, gpus_per_node: 1, nodes: 1, price_per_gpu_hour: "2"}
queues:
  documents:
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: h100},
       spec: {nodeLabels: {budcore.io/pool: h100}}}
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: a100},
       spec: {nodeLabels: {budcore.io/pool: a100}}}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ClusterQueue
      metadata: {name: team}
      spec:
        namespaceSelector: {}
        resourceGroups:
          - coveredResources: [nvidia.com/gpu, cpu, memory]
            flavors:
              - name: FIRST
                resources:
                  - {name: nvidia.com/gpu, nominalQuota: 1}
                  - {name: cpu, nominalQuota: 64}
                  - {name: memory, nominalQuota: 512Gi}
              - name: SECOND
                resources:
                  - {name: nvidia.com/gpu, nominalQuota: 1}
                  - {name: cpu, nominalQuota: 64}
                  - {name: memory, nominalQuota: 512Gi}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: LocalQueue
      metadata: {name: main, namespace: team}
      spec: {clusterQueue: team}
workload:
  traces: [{format: budcore, path: jobs.csv}]
"""


def gavel_run(tmp_path: Path, jobs: str, policy: str, first: str = "a100") -> dict[str, tuple[float, str]]:
    """(end, flavor) of each job of ``jobs`` (CSV rows after the header) on the two-flavor fleet,
    the ClusterQueue listing ``first`` first."""
    from budcore_simulator.build import build_simulation

    (tmp_path / "jobs.csv").write_text(
        "job_id,submit_s,runtime_s,gpus_per_pod,tenant,local_queue,job_class\n" + jobs
    )
    second = "h100" if first == "a100" else "a100"
    path = tmp_path / "scenario.yaml"
    path.write_text(TWO_FLAVORS.replace("FIRST", first).replace("SECOND", second) + policy)
    result = build_simulation(load_scenario(path)).run()
    return {r.arrival.job_id: (r.end_s, r.flavor) for r in result.records}  # type: ignore[misc]


TABLE = "policy:\n  throughput:\n    accelerators: {h100: 2.0, nvidia-a100-80gb: 1.0}\n"


def test_runtimes_scale_with_the_flavors_throughput(tmp_path: Path) -> None:
    jobs = "j0,0,100,1,team,main,c\nj1,0,100,1,team,main,c\n"
    # Kueue's order of flavors: j0 takes a100 (100 s), j1 h100 (twice as fast: 50 s)
    assert gavel_run(tmp_path, jobs, "") == {"j0": (100.0, "a100"), "j1": (100.0, "h100")}
    assert gavel_run(tmp_path, jobs, TABLE) == {"j0": (100.0, "a100"), "j1": (50.0, "h100")}
    # a class's own figure wins over the accelerator's
    jobs = "j0,0,100,1,team,main,fast\nj1,0,100,1,team,main,fast\n"
    own = TABLE + "    classes: {fast: {NVIDIA-H100-80GB-HBM3: 4.0}}\n"
    assert gavel_run(tmp_path, jobs, own) == {"j0": (100.0, "a100"), "j1": (25.0, "h100")}


def test_prefer_throughput_tries_the_fastest_flavor_first(tmp_path: Path) -> None:
    prefer = TABLE + "    prefer: throughput\n"
    assert gavel_run(tmp_path, "j0,0,100,1,team,main,c\n", prefer) == {"j0": (50.0, "h100")}
    jobs = "j0,0,100,1,team,main,c\nj1,0,100,1,team,main,c\n"
    assert gavel_run(tmp_path, jobs, prefer) == {"j0": (50.0, "h100"), "j1": (100.0, "a100")}


def test_prefer_throughput_per_price(tmp_path: Path) -> None:
    # h100: 3 per $6/h = 0.5; a100: 2 per $2/h = 1.0 -> a100 first, although listed second
    table = "policy:\n  throughput:\n    accelerators: {h100: 3.0, nvidia-a100-80gb: 2.0}\n"
    table += "    prefer: throughput_per_price\n"
    assert gavel_run(tmp_path, "j0,0,100,1,team,main,c\n", table, first="h100") == {"j0": (50.0, "a100")}
    # by throughput alone h100 (3) wins: 100 / 3 s
    fastest = table.replace("throughput_per_price", "throughput")
    ((end, flavor),) = gavel_run(tmp_path, "j0,0,100,1,team,main,c\n", fastest).values()
    assert end == pytest.approx(100 / 3)
    assert flavor == "h100"
    # a ClusterQueue not named keeps Kueue's order
    named = fastest + "    cluster_queues: [team]\n"
    assert gavel_run(tmp_path, "j0,0,100,1,team,main,c\n", named)["j0"][1] == "h100"


def test_throughput_errors_name_the_field(tmp_path: Path) -> None:
    (tmp_path / "jobs.csv").write_text("job_id,submit_s,runtime_s,gpus_per_pod,tenant,local_queue\n")
    base = TWO_FLAVORS.replace("FIRST", "a100").replace("SECOND", "h100")
    bad = [
        ("policy:\n  throughput: {prefer: throughput}\n", "policy.throughput.accelerators", "none is given"),
        ("policy:\n  throughput: {accelerators: {h100: 0}}\n", "policy.throughput.accelerators.h100", ""),
        (
            "policy:\n  throughput: {accelerators: {h100: 2, nvidia-h100-80gb: 3}}\n",
            "policy.throughput.accelerators",
            "'h100' and 'nvidia-h100-80gb' name the same accelerator",
        ),
        (  # "a100" is 40 or 80 GB: it names no flavor's model
            "policy:\n  throughput: {accelerators: {a100: 2}}\n",
            "policy.throughput.accelerators.a100",
            "no flavor provides accelerator 'a100'; the flavors provide: nvidia-a100-80gb, nvidia-h100-80gb",
        ),
        (
            "policy:\n  throughput: {classes: {c: {l4: 2}}}\n",
            "policy.throughput.classes.c.l4",
            "no flavor provides accelerator 'l4'",
        ),
        (
            "policy:\n  throughput: {accelerators: {h100: 2}, cluster_queues: [nobody]}\n",
            "policy.throughput.cluster_queues[0]",
            "no ClusterQueue 'nobody'",
        ),
    ]
    for extra, path, message in bad:
        (tmp_path / "scenario.yaml").write_text(base + extra)
        with pytest.raises(ValidationError) as info:
            load_scenario(tmp_path / "scenario.yaml")
        assert (info.value.path, message in info.value.message) == (path, True), (extra, info.value)


def test_compare_runs_the_gavel_preset(tmp_path: Path) -> None:
    (tmp_path / "jobs.csv").write_text(
        "job_id,submit_s,runtime_s,gpus_per_pod,tenant,local_queue\nj0,0,100,1,team,main\n"
    )
    path = tmp_path / "scenario.yaml"
    path.write_text(TWO_FLAVORS.replace("FIRST", "a100").replace("SECOND", "h100") + TABLE)
    out = tmp_path / "cmp"
    argv = ["compare", str(path), "-p", "fifo", "-p", "gavel", "--workers", "1", "--format", "json"]
    assert main([*argv, "--out", str(out)]) == 0
    summary = json.loads((out / "compare.json").read_text())
    jct = {label: summary[label]["report"]["overall"]["jct_s"]["mean"] for label in summary}
    assert jct == pytest.approx({"fifo": 100.0, "gavel": 50.0})  # a100 as listed, h100 preferred
    # a scenario without a throughput table cannot prefer by it: one line naming the preset
    path.write_text(TWO_FLAVORS.replace("FIRST", "a100").replace("SECOND", "h100"))
    assert main(["compare", str(path), "-p", "gavel", "--workers", "1", "--out", str(out)]) == 2


def test_a_fast_flavor_checkpoints_work_not_time(tmp_path: Path) -> None:
    """A (100 s of work, a checkpoint every 10 s) runs on h100 at twice the speed from 0; H (high)
    preempts it at 15 (no grace): A kept 2 checkpoints of 10 s, 20 s of work, and lost 5 s.
    H takes 10 / 2 = 5 s; A resumes at 20 with 80 s of work left, 40 s on h100: it ends at 60."""
    from budcore_simulator.build import build_simulation

    (tmp_path / "jobs.csv").write_text(
        "job_id,submit_s,runtime_s,gpus_per_pod,tenant,local_queue,priority,checkpoint_interval_s\n"
        "a,0,100,1,team,main,low,10\nh,15,10,1,team,main,high,\n"
    )
    text = TWO_FLAVORS.replace("FIRST", "h100").replace("SECOND", "a100") + TABLE
    a100_quota = "- name: a100\n                resources:\n"
    a100_quota += "                  - {name: nvidia.com/gpu, nominalQuota: 1}"
    assert text.count(a100_quota) == 1
    text = text.replace(a100_quota, a100_quota.replace("nominalQuota: 1", "nominalQuota: 0"))
    text = text.replace(
        "namespaceSelector: {}",
        "namespaceSelector: {}\n        preemption: {withinClusterQueue: LowerPriority}",
    )
    (tmp_path / "scenario.yaml").write_text(text)
    records = {
        r.arrival.job_id: r for r in build_simulation(load_scenario(tmp_path / "scenario.yaml")).run().records
    }
    a, h = records["a"], records["h"]
    assert (h.start_s, h.end_s, h.flavor) == (15.0, 20.0, "h100")
    assert (a.preemptions, a.end_s, a.flavor) == (1, 60.0, "h100")
    assert (a.gpu_s, a.lost_gpu_s) == (15.0 + 40.0, 5.0)  # GPU time held, and the part lost
