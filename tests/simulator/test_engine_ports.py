"""The engine goes through its ports: the SimulatedCluster protocol, typed events, job statuses, and
the one factory that builds a scenario's simulation."""

from __future__ import annotations

import csv
import heapq
import io
import json
from collections import Counter
from collections.abc import Hashable, Sequence
from datetime import timedelta
from pathlib import Path

from budcore_adapters.inmemory import InMemoryClusterBackend
from budcore_simulator.build import build_simulation
from budcore_simulator.cli import default_scenario_path, run_scenario
from budcore_simulator.engine import Simulation, SimulationResult
from budcore_simulator.events import CLOCKS, CONTROLLER_WORK, PROGRESS, REPAIRS, EventKind, JobEpoch
from budcore_simulator.report import build_report, dumps, records_csv, series_csv
from budcore_simulator.scenario import ControllerRestartSpec, FailureSpec, LoadedScenario, load_scenario
from budcore_simulator.status import FINAL_STATUSES, SimJobStatus
from budcore_simulator.sweep import scale_quotas
from support.engine import fleet
from support.scenarios import SMALL

from budcore.domain.cluster import ClusterCapacity, Node, Workload, WorkloadStatus
from budcore.domain.ids import JobId
from budcore.domain.job import JobStatus
from budcore.ports import ClusterBackend, SimulatedCluster, SimulatedClusterBackend
from budcore.ports.clock import Clock


def outputs(result: SimulationResult) -> tuple[str, str, str]:
    """What a run writes (jobs.csv, usage.csv, report.json), for byte comparisons."""
    report = dumps(build_report(result, scenario_name="x", seed=0))
    return records_csv(result.records, end_s=result.horizon_s), series_csv(result), report


def turbulent_default() -> LoadedScenario:
    """The built-in scenario over 4 hours with node failures and controller restarts: admission,
    preemption, placement waits, failures, retries and restarts all happen."""
    loaded = load_scenario(default_scenario_path())
    failures = FailureSpec(
        mtbf=4 * 3600.0, repair=1800.0, controller_restart=ControllerRestartSpec(every=3600.0, downtime=120.0)
    )
    loaded.scenario = loaded.scenario.model_copy(update={"horizon": 4 * 3600.0, "failures": failures})
    return loaded


def small(tmp_path: Path) -> LoadedScenario:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL, encoding="utf-8")
    return load_scenario(path)


# The port ------------------------------------------------------------------------------------
def test_the_inmemory_backend_implements_the_simulated_cluster_port() -> None:
    backend = InMemoryClusterBackend(fleet(1, 8))
    assert isinstance(backend, SimulatedCluster)
    assert isinstance(backend, SimulatedClusterBackend)
    assert isinstance(backend, ClusterBackend)
    # The port adds exactly what the engine needs beyond SimulatedClusterBackend.
    assert {"try_submit", "refusal_key", "forget"} <= set(dir(SimulatedCluster))


class PortOnly:
    """A cluster with the SimulatedCluster methods and nothing else, counting the engine's calls.

    ``__slots__`` and no ``__getattr__``: an engine reaching past the port (a private field, a
    method the port does not declare) fails with AttributeError.
    """

    __slots__ = ("_inner", "calls")

    def __init__(self, nodes: Sequence[Node], clock: Clock) -> None:
        self._inner = InMemoryClusterBackend(nodes, clock=clock)
        self.calls: Counter[str] = Counter()

    def nodes(self) -> Sequence[Node]:
        self.calls["nodes"] += 1
        return self._inner.nodes()

    def capacity(self) -> ClusterCapacity:
        self.calls["capacity"] += 1
        return self._inner.capacity()

    def submit(self, workload: Workload) -> WorkloadStatus:
        self.calls["submit"] += 1
        return self._inner.submit(workload)

    def cancel(self, job_id: JobId) -> WorkloadStatus:
        self.calls["cancel"] += 1
        return self._inner.cancel(job_id)

    def preempt(self, job_id: JobId, grace: timedelta = timedelta(seconds=30)) -> WorkloadStatus:
        self.calls["preempt"] += 1
        return self._inner.preempt(job_id, grace)

    def observe(self) -> Sequence[WorkloadStatus]:
        self.calls["observe"] += 1
        return self._inner.observe()

    def complete(self, job_id: JobId, succeeded: bool = True, message: str = "") -> WorkloadStatus:
        self.calls["complete"] += 1
        return self._inner.complete(job_id, succeeded, message)

    def fail_node(self, name: str, reason: str = "node failure") -> list[JobId]:
        self.calls["fail_node"] += 1
        return self._inner.fail_node(name, reason)

    def repair_node(self, name: str) -> None:
        self.calls["repair_node"] += 1
        self._inner.repair_node(name)

    def try_submit(self, workload: Workload) -> WorkloadStatus | None:
        self.calls["try_submit"] += 1
        return self._inner.try_submit(workload)

    def refusal_key(self, workload: Workload) -> Hashable:
        self.calls["refusal_key"] += 1
        return self._inner.refusal_key(workload)

    def forget(self, job_id: JobId) -> None:
        self.calls["forget"] += 1
        self._inner.forget(job_id)


def test_the_engine_needs_nothing_beyond_the_port() -> None:
    """A backend with only the port's methods runs the same simulation, byte for byte."""
    built: list[PortOnly] = []

    def port_only(nodes: Sequence[Node], clock: Clock) -> PortOnly:
        built.append(PortOnly(nodes, clock))
        return built[-1]

    plain = build_simulation(turbulent_default()).run()
    through_port = build_simulation(turbulent_default(), cluster=port_only).run()
    assert outputs(through_port) == outputs(plain)
    (backend,) = built
    assert isinstance(backend, SimulatedCluster)
    stats = through_port.stats
    assert stats.preemptions and stats.node_failures and stats.controller_restarts and stats.placement_waits
    for method in ("try_submit", "refusal_key", "forget", "complete", "fail_node", "repair_node", "preempt"):
        assert backend.calls[method] > 0, method
    assert backend.calls["submit"] == 0  # placement never raises: try_submit answers "not now"


# Events --------------------------------------------------------------------------------------
ORDER = [
    "COMPLETION",
    "TIMEOUT",
    "EVICTED",
    "RELEASE",
    "NODE_FAIL",
    "CONTROLLER_UP",
    "CONTROLLER_DOWN",
    "FAILURE_DETECTED",
    "NODE_REPAIR",
    "RETRY",
    "PODS_TIMEOUT",
    "ARRIVAL",
    "PIPELINE",
    "PIPELINE_WAKE",
    "REQUEUE",
    "CYCLE",
    "SAMPLE",
    "REVIEW",
]


def test_event_kinds_keep_the_order_simultaneous_events_are_handled_in() -> None:
    assert [kind.name for kind in EventKind] == ORDER
    assert [int(kind) for kind in EventKind] == list(range(len(ORDER)))
    # Heap entries of one instant pop by kind, then in the order they were pushed.
    heap: list[tuple[float, EventKind, int, None]] = []
    for seq, kind in enumerate([*reversed(EventKind), EventKind.CYCLE]):
        heapq.heappush(heap, (60.0, kind, seq, None))
    popped = [heapq.heappop(heap) for _ in range(len(heap))]
    assert [kind.name for _, kind, _, _ in popped] == [*ORDER[:-2], "CYCLE", "SAMPLE", "REVIEW"]
    assert [seq for _, kind, seq, _ in popped if kind is EventKind.CYCLE] == [2, len(ORDER)]
    # Earlier instants first, whatever their kind.
    assert (59.0, EventKind.SAMPLE, 9, None) < (60.0, EventKind.COMPLETION, 0, None)


def test_every_kind_is_progress_a_clock_or_a_repair_and_controller_work_is_progress() -> None:
    assert set(EventKind) == PROGRESS | CLOCKS | REPAIRS
    assert not (PROGRESS & CLOCKS or PROGRESS & REPAIRS or CLOCKS & REPAIRS)
    assert {
        EventKind.FAILURE_DETECTED,
        EventKind.RETRY,
        EventKind.PODS_TIMEOUT,
        EventKind.EVICTED,
        EventKind.TIMEOUT,
        EventKind.RELEASE,
        EventKind.REQUEUE,
    } == CONTROLLER_WORK
    assert CONTROLLER_WORK <= PROGRESS


def test_job_events_carry_a_typed_job_and_epoch() -> None:
    event = JobEpoch("j1", 3)
    assert (event.job_id, event.epoch) == ("j1", 3)
    job_id, epoch = event
    assert (job_id, epoch) == ("j1", 3)


# Statuses ------------------------------------------------------------------------------------
def test_sim_statuses_print_as_before_and_map_onto_the_domain() -> None:
    assert [s.value for s in SimJobStatus] == [
        "pending",
        "queued",
        "admitted",
        "running",
        "failing",
        "retrying",
        "completed",
        "failed",
        "rejected",
        "cancelled",
        "refused",
        "paused",
    ]
    for status in SimJobStatus:
        assert str(status) == f"{status}" == status.value
        assert json.dumps({status: 1}) == json.dumps({status.value: 1})
        row = io.StringIO()
        csv.writer(row, lineterminator="\n").writerow([status])
        assert row.getvalue() == f"{status.value}\n"
    same = [s for s in SimJobStatus if s.value in {d.value for d in JobStatus}]
    assert all(s.domain.value == s.value for s in same)
    assert SimJobStatus.FAILING.domain is JobStatus.RUNNING  # still holds quota: not detected yet
    assert SimJobStatus.RETRYING.domain is JobStatus.FAILED  # failed → queued after the backoff
    assert SimJobStatus.REJECTED.domain is JobStatus.FAILED
    assert {s for s in SimJobStatus if s.is_final} == FINAL_STATUSES
    assert all(s.domain.is_terminal for s in FINAL_STATUSES)
    # A live job is live in the domain too, except while it waits out its retry backoff (failed,
    # and requeued through the domain's failed → queued edge) or is paused by a budget (preempted,
    # and requeued through the domain's preempted → queued edge).
    assert SimJobStatus.PAUSED.domain is JobStatus.PREEMPTED
    waiting = {SimJobStatus.RETRYING, SimJobStatus.PAUSED}
    live = [s for s in SimJobStatus if not s.is_final and s not in waiting]
    assert not any(s.domain.is_terminal for s in live)


def test_records_carry_sim_statuses() -> None:
    result = build_simulation(turbulent_default()).run()
    assert all(type(r.status) is SimJobStatus for r in result.records)
    assert {r.status for r in result.records} >= {SimJobStatus.COMPLETED, SimJobStatus.RUNNING}


# The factory ---------------------------------------------------------------------------------
def test_build_simulation_runs_what_the_cli_runs_and_what_a_hand_built_simulation_runs(
    tmp_path: Path,
) -> None:
    loaded = small(tmp_path)
    policy = loaded.scenario.policy
    by_hand = Simulation(
        loaded.nodes,
        loaded.queues,
        loaded.arrivals(),
        options=loaded.engine_options(),
        policy=policy.admission(),
        preemption=policy.preemption(),
        preemption_budget=policy.budget(),
        aging=policy.aging.policy() if policy.aging else None,
        prices=loaded.prices(),
    ).run()
    built = build_simulation(loaded).run()
    assert outputs(built) == outputs(by_hand)
    assert outputs(run_scenario(loaded)) == outputs(built)
    assert outputs(build_simulation(loaded).run()) == outputs(built)  # the workload is drawn afresh


def test_build_simulation_overrides(tmp_path: Path) -> None:
    loaded = small(tmp_path)
    sim = build_simulation(loaded)
    assert sim.options == loaded.engine_options()
    assert sim.options.gc_freeze_every == 10_000  # scenario runs own their process
    assert build_simulation(loaded, gc_freeze_every=0).options.gc_freeze_every == 0
    halved = scale_quotas(loaded.queues, {"a100": (1, 2)})
    assert build_simulation(loaded, queues=halved).queues is halved
    seen: list[float] = []
    build_simulation(loaded, observer=lambda sim, now: seen.append(sim.now_s)).run()
    assert seen and seen == sorted(seen)
