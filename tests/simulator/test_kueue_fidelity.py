"""What a Kueue user's scenario needs to mean what it says (issue #20, the perf-harness section).

Integer priorities and WorkloadPriorityClass names in the workload, CPU-only jobs that ask for no
memory, quota-only runs (no fleet: admission is the start), ``preemption_mode: kueue`` without
budcore's guards unless asked for, outputs for every resource, first and last admission times,
and a cycle grid that float error does not push a tick late.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import pytest
from budcore_simulator.budget import UnlimitedPreemptionBudget
from budcore_simulator.build import build_simulation
from budcore_simulator.engine import SimulationResult, grid_ceil
from budcore_simulator.report import build_report, records_csv, series_csv
from budcore_simulator.scenario import LoadedScenario, PolicySpec, load_scenario
from budcore_simulator.status import SimJobStatus
from budcore_simulator.sweep import apply_policy, parse_policy

from budcore.domain.errors import ValidationError
from budcore.scheduling.preemption.guards import PreemptionBudget

# One ClusterQueue covering CPU only (as Kueue's performance harness has it), no fleet.
QUEUES = """\
queues:
  documents:
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: rf}}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: WorkloadPriorityClass
      metadata: {name: urgent}
      value: 500
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ClusterQueue
      metadata: {name: cq}
      spec:
        namespaceSelector: {}
        preemption: {withinClusterQueue: LowerPriority}
        resourceGroups:
          - coveredResources: [cpu]
            flavors:
              - name: rf
                resources: [{name: cpu, nominalQuota: 2}]
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: LocalQueue
      metadata: {name: lq, namespace: t}
      spec: {clusterQueue: cq}
"""


def scenario_text(classes: str, policy: str = "", extra: str = "") -> str:
    return (
        f"name: fidelity\nseed: 1\n{extra}{QUEUES}{policy}workload:\n  generators:\n    classes:\n{classes}"
    )


def klass(name: str, *, start: str, count: int, runtime: str, cpu: int = 1, priority: object = 50) -> str:
    return (
        f"      - {{name: {name}, tenant: t, local_queue: lq, gpus: 0, cpu_without_gpu: {cpu}, "
        f"priority: {priority}, start: {start}, count: {count}, arrivals: {{kind: fixed, interval: 1s}}, "
        f"runtime: {{kind: fixed, value: {runtime}}}}}\n"
    )


def load(tmp_path: Path, text: str) -> LoadedScenario:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return load_scenario(path)


def run(tmp_path: Path, text: str) -> tuple[SimulationResult, dict[str, Any]]:
    loaded = load(tmp_path, text)
    result = build_simulation(loaded).run()
    return result, build_report(result, scenario_name="fidelity", seed=1)


def rows(result: SimulationResult) -> dict[str, dict[str, str]]:
    return {row["job_id"]: row for row in csv.DictReader(io.StringIO(records_csv(result.records)))}


# Integer priorities and WorkloadPriorityClass names ----------------------------------------------
def test_integer_priorities_order_and_preempt_as_kueues_do(tmp_path: Path) -> None:
    """Two 1-CPU jobs of priority 50 fill the 2-CPU queue; a 2-CPU job of priority 200 arrives
    and preempts both at once (kueue mode: no grace period), runs, and they run again after it."""
    classes = klass("low", start="0s", count=2, runtime="100s") + klass(
        "high", start="10s", count=1, runtime="50s", cpu=2, priority=200
    )
    result, report = run(tmp_path, scenario_text(classes))
    jobs = {r.arrival.job_id: r for r in result.records}
    assert jobs["high-0"].admitted_s == 10.0 and jobs["high-0"].end_s == 60.0
    for low in ("low-0", "low-1"):
        assert jobs[low].preemptions == 1 and jobs[low].status is SimJobStatus.COMPLETED
        assert jobs[low].admitted_s == pytest.approx(float(low[-1]))  # first admission
        assert jobs[low].last_admitted_s == 60.0  # readmitted when the high job is done
    by_priority = report["by_priority"]
    assert isinstance(by_priority, dict) and sorted(by_priority) == ["200", "50"]
    table = rows(result)
    assert table["high-0"]["priority"] == "200" and table["low-0"]["priority"] == "50"
    assert table["low-1"]["admit_s"] == "1.0" and table["low-1"]["last_admit_s"] == "60.0"


def test_a_workload_priority_class_name_gives_its_value(tmp_path: Path) -> None:
    classes = klass("low", start="0s", count=2, runtime="100s", priority=50) + klass(
        "vip", start="10s", count=1, runtime="50s", cpu=2, priority="urgent"
    )
    result, report = run(tmp_path, scenario_text(classes))
    jobs = {r.arrival.job_id: r for r in result.records}
    assert jobs["vip-0"].admitted_s == 10.0  # value 500 > 50: it preempts
    assert jobs["low-0"].preemptions == 1
    assert "urgent" in report["by_priority"]
    # ``priority_class`` says the same explicitly.
    explicit = classes.replace("priority: urgent", "priority_class: urgent")
    again, _ = run(tmp_path, scenario_text(explicit))
    assert [r.admitted_s for r in again.records] == [r.admitted_s for r in result.records]


def test_an_unknown_workload_priority_class_fails_the_load(tmp_path: Path) -> None:
    text = scenario_text(klass("a", start="0s", count=1, runtime="1s", priority="nope"))
    with pytest.raises(ValidationError) as info:
        load(tmp_path, text)
    assert info.value.path == "workload.generators.classes[0].priority"
    assert "WorkloadPriorityClass 'nope' does not exist" in info.value.message
    assert "urgent" in info.value.message


def test_a_trace_row_takes_an_integer_priority(tmp_path: Path) -> None:
    (tmp_path / "trace.csv").write_text(
        "job_id,submit_s,runtime_s,cpu,tenant,local_queue,priority\n"
        "a,0,100,2,t,lq,50\n"
        "b,10,10,2,t,lq,200\n"
        "c,20,10,1,t,lq,urgent\n"
    )
    text = scenario_text("").replace(
        "workload:\n  generators:\n    classes:\n",
        "workload:\n  traces: [{format: budcore, path: trace.csv}]\n",
    )
    result, _ = run(tmp_path, text)
    jobs = {r.arrival.job_id: r for r in result.records}
    assert jobs["a"].arrival.priority_value == 50 and jobs["c"].arrival.priority_class == "urgent"
    assert jobs["b"].admitted_s == 10.0 and jobs["a"].preemptions == 1  # 200 preempts 50
    assert jobs["c"].admitted_s == 20.0  # 'urgent' (500) does not wait for 'a' (50)


# CPU-only jobs and quota-only runs ---------------------------------------------------------------
def test_cpu_only_jobs_ask_for_no_memory_and_fit_a_cpu_only_queue(tmp_path: Path) -> None:
    result, _ = run(tmp_path, scenario_text(klass("a", start="0s", count=3, runtime="5s")))
    assert all(r.status is SimJobStatus.COMPLETED for r in result.records)
    assert all(r.arrival.memory_bytes == 0 for r in result.records)
    told = klass("a", start="0s", count=1, runtime="5s").replace(
        "gpus: 0,", "gpus: 0, memory_without_gpu: 1Gi,"
    )
    result, _ = run(tmp_path, scenario_text(told))
    (record,) = result.records
    assert record.status is SimJobStatus.QUEUED and "memory" in record.reason  # the queue has none


def test_without_a_fleet_admission_is_the_start_and_usage_is_quota(tmp_path: Path) -> None:
    """Quota-only: 3 one-CPU jobs of 10 s on 2 CPUs; the third runs when the first ends."""
    result, report = run(tmp_path, scenario_text(klass("a", start="0s", count=3, runtime="10s")))
    assert result.quota_only
    starts = [(r.admitted_s, r.start_s, r.end_s) for r in result.records]
    assert starts == [(0.0, 0.0, 10.0), (1.0, 1.0, 11.0), (10.0, 10.0, 20.0)]
    utilisation = report["utilisation"]
    assert isinstance(utilisation, dict)
    # 30 CPU-seconds held over 2 CPUs × 20 s.
    assert utilisation["cluster_queue_usage"]["cpu"] == {"all": 0.75, "by_cluster_queue": {"cq": 0.75}}
    assert utilisation["by_resource"]["cpu"] == {"fleet": None, "by_flavor": {"rf": None}}
    header = series_csv(result).splitlines()[0]
    assert "cq:cq:cpu" in header.split(",") and "cq:cq:cpu:pct_nominal" in header.split(",")


def test_with_a_fleet_cpu_utilisation_is_reported(tmp_path: Path) -> None:
    fleet = "fleet:\n  pools: [{name: cpus, gpus_per_node: 0, nodes: 1, cpu: 4, memory: 8Gi}]\n"
    text = scenario_text(klass("a", start="0s", count=2, runtime="10s"), extra=fleet).replace(
        "metadata: {name: rf}}", "metadata: {name: rf}, spec: {nodeLabels: {budcore.io/pool: cpus}}}"
    )
    result, report = run(tmp_path, text)
    assert not result.quota_only
    cpu = report["utilisation"]["by_resource"]["cpu"]
    # 20 CPU-seconds on a 4-CPU node over the 11 s run.
    assert (
        cpu["by_flavor"]["rf"] == pytest.approx(20 / 44, abs=1e-4) and cpu["fleet"] == cpu["by_flavor"]["rf"]
    )


# preemption_mode: kueue means no grace period and no budget ---------------------------------------
def test_kueue_mode_has_no_grace_period_and_no_budget_unless_asked() -> None:
    kueue = PolicySpec()
    assert kueue.grace_s == 0.0 and kueue.preemption_limit is None
    assert isinstance(kueue.budget(), UnlimitedPreemptionBudget)
    assert kueue.preemption().grace_period.total_seconds() == 0.0
    cost = PolicySpec(preemption_mode="cost")
    assert cost.grace_s == 30.0 and cost.preemption_limit == 10
    assert type(cost.budget()) is PreemptionBudget and cost.budget().limit == 10
    asked = PolicySpec.model_validate({"preemption_grace": "1m", "preemptions_per_hour": 4})
    assert asked.grace_s == 60.0 and asked.budget().limit == 4
    for unlimited in ("unlimited", None):
        spec = PolicySpec.model_validate({"preemption_mode": "cost", "preemptions_per_hour": unlimited})
        assert spec.preemption_limit is None and isinstance(spec.budget(), UnlimitedPreemptionBudget)
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        PolicySpec.model_validate({"preemptions_per_hour": -1})


def test_an_unlimited_budget_never_runs_out(tmp_path: Path) -> None:
    """Twelve preemptions in a minute: all of them happen in kueue mode (a budget of 10 per hour
    would have refused the last two)."""
    classes = klass("low", start="0s", count=2, runtime="1000s") + klass(
        "high", start="10s", count=6, runtime="0.5s", cpu=2, priority=200
    ).replace("interval: 1s", "interval: 5s")
    _, report = run(tmp_path, scenario_text(classes))
    assert report["engine"]["preemptions"] == 12
    _, capped_report = run(tmp_path, scenario_text(classes, policy="policy: {preemptions_per_hour: 10}\n"))
    assert capped_report["engine"]["preemptions"] == 10


def test_a_policy_override_keeps_the_modes_defaults(tmp_path: Path) -> None:
    """Switching a kueue-mode scenario to cost mode gives cost mode's guards, not kueue's."""
    loaded = load(tmp_path, scenario_text(klass("a", start="0s", count=1, runtime="1s")))
    cost = apply_policy(loaded.scenario, parse_policy("preemption_mode=cost"))
    assert cost.policy.grace_s == 30.0 and cost.policy.preemption_limit == 10
    unlimited = apply_policy(
        loaded.scenario, parse_policy("preemption_mode=cost,preemptions_per_hour=unlimited")
    )
    assert unlimited.policy.preemption_limit is None


# The cycle grid tolerates float error ------------------------------------------------------------
def test_grid_ceil_tolerates_float_error() -> None:
    assert 3 * 0.1 == 0.30000000000000004  # the error the grid must absorb
    assert grid_ceil(3 * 0.1, 0.1) == pytest.approx(0.3)
    assert grid_ceil(0.1 + 0.2, 0.1) < 0.35
    assert grid_ceil(0.31, 0.1) == pytest.approx(0.4)
    assert grid_ceil(0.0, 0.5) == 0.0
    for at in (0.30000000000000004, 0.7, 1e-12, 123.456):
        assert grid_ceil(at, 0.1) >= at  # never earlier than asked


def test_a_job_arriving_on_a_grid_point_is_admitted_there(tmp_path: Path) -> None:
    classes = klass("a", start="0s", count=5, runtime="0.05s").replace("interval: 1s", "interval: 0.1s")
    result, _ = run(tmp_path, scenario_text(classes, policy="policy: {cycle_interval: 0.1s}\n"))
    for n, record in enumerate(result.records):
        assert record.admitted_s is not None
        assert math.isclose(record.admitted_s, n * 0.1, abs_tol=1e-9), (n, record.admitted_s)
