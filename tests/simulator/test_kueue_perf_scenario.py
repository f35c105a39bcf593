"""The shipped ``kueue-perf-baseline`` scenario: Kueue's own performance harness.

The full scenario (15,000 workloads) runs in seconds but not in a unit test's budget; it is checked
here as loaded (its 30 ClusterQueues and 90 workload classes), and a copy scaled down to one
cohort of two ClusterQueues is run with the cycle-latency model on and off. The full figures are
in the scenario's README (``budcore simulate kueue-perf-baseline``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from budcore_simulator.build import build_simulation
from budcore_simulator.cli import builtin_scenarios, resolve_scenario
from budcore_simulator.report import build_report
from budcore_simulator.scenario import LoadedScenario, load_scenario

SCENARIO = resolve_scenario(Path("kueue-perf-baseline"))
FULL = "replicate: {cohort: 5, cq: 6}"


def test_it_ships_and_loads_as_kueues_harness_has_it() -> None:
    assert "kueue-perf-baseline" in builtin_scenarios() and SCENARIO.is_file()
    loaded = load_scenario(SCENARIO)
    queues = loaded.queues
    assert loaded.quota_only and len(queues.cluster_queues) == 30
    cq = queues.cluster_queues["cq-0-3-cohort-2"]  # Kueue's names: <class>-<set>-<index>-<cohort>
    assert cq.cohort == "cohort-2"
    (quota,) = cq.resource_groups[0].flavors[0].resources
    assert (quota.name, quota.nominal_quota, quota.borrowing_limit) == ("cpu", 20_000, 100_000)
    assert cq.preemption.reclaim_within_cohort.value == "Any"
    assert cq.preemption.within_cluster_queue.value == "LowerPriority"
    generators = loaded.scenario.workload.generators
    assert generators is not None and len(generators.classes) == 90
    assert sum(c.count or 0 for c in generators.classes) == 15_000
    by_label = {c.label: c for c in generators.classes if c.name.endswith("-2-3")}
    assert {k: (v.count, v.priority, v.cpu_without_gpu) for k, v in by_label.items()} == {
        "small": (350, 50, 1),
        "medium": (100, 100, 5),
        "large": (50, 200, 20),
    }
    policy = loaded.scenario.policy
    assert policy.preemption_mode == "kueue" and policy.grace_s == 0 and policy.preemption_limit is None
    assert policy.latency is not None  # the calibrated model, on in this scenario


def scaled_down(tmp_path: Path, latency: bool) -> LoadedScenario:
    text = SCENARIO.read_text()
    assert text.count(FULL) == 2  # the queues and the workload classes
    text = text.replace(FULL, "replicate: {cohort: 1, cq: 2}").replace(
        "  latency: true\n", f"  latency: {str(latency).lower()}\n"
    )
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return load_scenario(path)


@pytest.mark.parametrize("latency", [False, True])
def test_a_scaled_down_copy_runs_and_reports_by_class_label(tmp_path: Path, latency: bool) -> None:
    loaded = scaled_down(tmp_path, latency)
    result = build_simulation(loaded).run()
    report = build_report(result, scenario_name="kueue-perf-baseline", seed=0)
    assert report["jobs"] == 1000 and report["statuses"] == {"completed": 1000}
    labels = report["by_label"]
    assert sorted(labels) == ["large", "medium", "small"]
    assert sorted(report["by_priority"]) == ["100", "200", "50"]
    waits = {k: v["wait_last_admission_s"]["mean"] for k, v in labels.items()}
    assert waits["large"] < waits["medium"] < waits["small"]  # Kueue's order
    assert all(r.arrival.memory_bytes == 0 and r.start_s == r.admitted_s for r in result.records)
    usage = report["utilisation"]["cluster_queue_usage"]["cpu"]["all"]
    assert 0 < usage <= 1.0
    assert report["quota_only"] is True
    if latency:  # one head per ClusterQueue per cycle: admissions are spread over many cycles
        assert result.stats.cycles > 300 and waits["large"] > 1.0
    else:
        assert waits["large"] == 0.0
