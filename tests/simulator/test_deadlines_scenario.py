"""The shipped ``deadlines`` scenario end to end (issue #13): deadline misses, ETA accuracy,
timeouts, a night window, a capacity booking, runaway alerts, and plain vs deadline-aware
ordering on one seed."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from budcore_simulator.build import build_simulation
from budcore_simulator.cli import default_scenario_path
from budcore_simulator.engine import Simulation
from budcore_simulator.plugin import policy_names, policy_overrides
from budcore_simulator.scenario import Scenario, load_scenario, scenario_json_schema
from budcore_simulator.sweep import apply_policy, compare_specs, parse_policy, run_all

from budcore.cli import main
from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.domain.validation import validate_model

DEADLINES = default_scenario_path().parent.parent / "deadlines" / "scenario.yaml"
MAX_DURATION_S = 4 * 3600.0  # the train class's max_duration
NIGHT = (22, 6)  # the nightly class's window, UTC; the scenario starts at midnight UTC


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``budcore simulate`` on the scenario, once: its output directory and printed summary."""
    out = tmp_path_factory.mktemp("deadlines")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["simulate", str(DEADLINES), "--out", str(out)]) == 0
    return out, printed.getvalue()


def jobs(out: Path) -> list[dict[str, str]]:
    with (out / "jobs.csv").open() as f:
        return list(csv.DictReader(f))


def test_simulate_reports_deadline_misses_eta_error_and_timeouts(simulated: tuple[Path, str]) -> None:
    out, printed = simulated
    report = json.loads((out / "report.json").read_text())
    overall = report["overall"]
    assert overall["deadlines"] > 300 and overall["deadline_misses"] > 0
    assert 0 < overall["deadline_miss_rate"] < 0.5
    eta = report["eta"]["overall"]
    assert eta["measured"] == report["jobs"] and eta["count"] > 300
    assert 0 <= eta["abs_error_p50_s"] <= eta["abs_error_p95_s"]
    assert set(report["eta"]["by_class"]) == {"nightly", "report", "sweep", "train"}
    time_block = report["time"]
    assert (
        time_block["timeouts"] > 0 and time_block["by_class"]["train"]["timeouts"] == time_block["timeouts"]
    )
    timed_out = [r for r in jobs(out) if r["reason"].startswith("timeout")]
    assert len(timed_out) == time_block["timeouts"] and all(r["status"] == "failed" for r in timed_out)
    assert "ETA at submission vs actual start: |error| p50" in printed
    assert "time limits:" in printed and "timeout(s)" in printed
    if (out / "timeline.png").exists():  # plots are written when matplotlib is installed
        assert (out / "eta.png").stat().st_size > 10_000
    print(
        f"\ndeadlines: {overall['deadline_misses']}/{overall['deadlines']} deadlines missed; ETA |error| "
        f"p50 {eta['abs_error_p50_s']:.0f}s p95 {eta['abs_error_p95_s']:.0f}s over {eta['count']} jobs; "
        f"{time_block['timeouts']} timeouts, {time_block['runaway_alerts']} runaway alerts"
    )


def test_simulate_reports_the_use_of_the_booking(simulated: tuple[Path, str]) -> None:
    """ops books 16 A100s from 21:00 to 01:00; its nightly batch may start only from 22:00."""
    out, printed = simulated
    report = json.loads((out / "report.json").read_text())
    booking = report["reservations"]["ops-nightly"]
    assert (booking["owner"], booking["flavor"], booking["quantity"]) == ("ops", "a100", 16.0)
    assert (booking["start_s"], booking["end_s"], booking["booked_hours"]) == (21 * 3600.0, 25 * 3600.0, 64.0)
    # The first booked hour is before the nightly window opens: at least 16 GPU-hours unused.
    assert 16.0 <= booking["unused_hours"] < booking["booked_hours"]
    assert booking["used_hours"] + booking["unused_hours"] == pytest.approx(64.0, abs=2e-3)
    assert booking["utilisation"] == pytest.approx(booking["used_hours"] / 64.0, abs=1e-4)
    # Unused booked time is charged to ops at the A100 price.
    unused_cost = Decimal(booking["unused_cost"])
    assert abs(unused_cost - Decimal(str(booking["unused_hours"])) * Decimal("3.50")) <= Decimal("0.01")
    assert report["cost"]["unused_booked_by_tenant"] == {"ops": booking["unused_cost"]}
    # Research jobs standing in the room at 21:00 were evicted and requeued (nothing else evicts).
    rows = jobs(out)
    evicted = [r for r in rows if int(r["evictions"])]
    assert booking["evicted_at_start"] > 0
    assert (
        booking["evicted_at_start"] == report["engine"]["evictions"] == sum(int(r["evictions"]) for r in rows)
    )
    assert {r["tenant"] for r in evicted} == {"research"}
    flat = " ".join(printed.split())  # the console wraps long lines
    assert (
        "reservation ops-nightly: 16 nvidia.com/gpu on a100 for ops, 21.0h to 25.0h into the run: "
        "booked 64.0 GPU-h" in flat
    )
    assert f"unused booked cost ${booking['unused_cost']} (ops)" in flat
    print(
        f"\nreservation ops-nightly: booked {booking['booked_hours']} GPU-h, used {booking['used_hours']} "
        f"({booking['utilisation']:.1%}), unused {booking['unused_hours']} (${booking['unused_cost']}), "
        f"{booking['evicted_at_start']} evicted at its start"
    )


def test_deadline_aware_ordering_misses_fewer_deadlines_than_plain_priority() -> None:
    loaded = load_scenario(DEADLINES)
    # ETA measurement changes nothing that happens (test_time_limits), so leave it out: faster.
    loaded.scenario = loaded.scenario.model_copy(update={"eta": None})
    assert "deadline-aware" in policy_names()
    specs = compare_specs(loaded, [parse_policy("fifo"), parse_policy("deadline-aware")])
    plain, aware = (result["report"]["overall"] for result in run_all(specs, workers=1))
    print(
        f"\ndeadline misses, seed {loaded.scenario.seed}: plain priority "
        f"{plain['deadline_misses']}/{plain['deadlines']} (rate {plain['deadline_miss_rate']}), "
        f"deadline-aware {aware['deadline_misses']}/{aware['deadlines']} (rate {aware['deadline_miss_rate']})"
    )
    assert plain["deadlines"] == aware["deadlines"]  # the same workload
    assert aware["deadline_miss_rate"] < plain["deadline_miss_rate"]


def test_no_job_of_the_windowed_class_starts_outside_its_window(simulated: tuple[Path, str]) -> None:
    out, _ = simulated
    nightly = [r for r in jobs(out) if r["job_class"] == "nightly"]
    started = [r for r in nightly if r["start_s"]]
    assert len(started) > 20
    opens, closes = NIGHT
    for row in started:
        for column in ("admit_s", "start_s"):
            hour = float(row[column]) % 86400 / 3600
            assert hour >= opens or hour < closes, (row["job_id"], column, hour)
    # Jobs arriving in daytime waited for the evening rather than starting at once.
    daytime = [r for r in started if 6 <= float(r["submit_s"]) % 86400 / 3600 < 21]
    assert daytime and all(float(r["start_s"]) % 86400 >= 22 * 3600 for r in daytime)


def test_no_job_runs_past_its_maximum_duration() -> None:
    loaded = load_scenario(DEADLINES)
    loaded.scenario = loaded.scenario.model_copy(update={"eta": None})
    worst: dict[str, float] = {}

    def watch(sim: Simulation, now: float) -> None:
        """After every event: the execution time of each capped job holding its admission."""
        for job_id, record in sim.records.items():
            if record.arrival.max_runtime_s is not None and record.admission is not None:
                held = record.exec_s + now - record.admitted_at_s
                worst[job_id] = max(worst.get(job_id, 0.0), held)

    result = build_simulation(loaded, observer=watch).run()
    assert worst and max(worst.values()) <= MAX_DURATION_S + 1e-6
    timed_out = [r for r in result.records if r.timed_out]
    assert timed_out and all(r.exec_s == pytest.approx(MAX_DURATION_S) for r in timed_out)
    # Running is part of being admitted: no job's pods ran longer than its limit either.
    assert all(r.gpu_s <= r.gpus * MAX_DURATION_S + 1e-6 for r in result.records if r.arrival.max_runtime_s)


PREEMPTED = """\
name: resume
seed: 1
fleet:
  pools:
    - {name: a100, gpus_per_node: 8, nodes: 1}
queues:
  documents:
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: a100},
       spec: {nodeLabels: {budcore.io/pool: a100}}}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ClusterQueue
      metadata: {name: cq}
      spec:
        namespaceSelector: {}
        preemption: {withinClusterQueue: LowerPriority}
        resourceGroups:
          - coveredResources: [nvidia.com/gpu, cpu, memory]
            flavors:
              - name: a100
                resources:
                  - {name: nvidia.com/gpu, nominalQuota: 8}
                  - {name: cpu, nominalQuota: 96}
                  - {name: memory, nominalQuota: 1Ti}
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: LocalQueue, metadata: {name: q, namespace: t},
       spec: {clusterQueue: cq}}
policy: {preemption_grace: 30s}
workload:
  generators:
    classes:
      - {name: long, tenant: t, local_queue: q, priority: low, count: 1, gpus: 8,
         arrivals: {kind: fixed, interval: 1h}, runtime: {kind: fixed, value: 5h},
         checkpoint_interval: 30m, max_duration: MAX}
      - {name: urgent, tenant: t, local_queue: q, priority: high, count: 1, gpus: 8, start: 3h,
         arrivals: {kind: fixed, interval: 1h}, runtime: {kind: fixed, value: 1h}}
"""


@pytest.mark.parametrize(
    ("limit", "status", "end"), [("4h", "failed", 18000.0), ("6h", "completed", 21630.0)]
)
def test_execution_time_accumulates_across_a_preemption(
    tmp_path: Path, limit: str, status: str, end: float
) -> None:
    """Preempted after 3 h (plus its 30 s grace period) of a 4 h limit, the job resumes at 4 h 30 s
    with 59 min 30 s left and is stopped at 5 h; with a 6 h limit it completes its last 2 h."""
    path = tmp_path / "resume.yaml"
    path.write_text(PREEMPTED.replace("MAX", limit))
    assert (
        main(["simulate", str(path), "--out", str(tmp_path / "out"), "--no-plots", "--format", "json"]) == 0
    )
    long = next(r for r in jobs(tmp_path / "out") if r["job_class"] == "long")
    assert (long["status"], float(long["end_s"]), long["preemptions"]) == (status, end, "1")
    assert long["reason"].startswith("timeout") == (status == "failed")


def test_runaway_alerts_are_counted(simulated: tuple[Path, str]) -> None:
    out, _ = simulated
    report = json.loads((out / "report.json").read_text())
    alerts = report["time"]["runaway_alerts"]
    assert alerts > 0 and report["time"]["runaway_factor"] == 3.0
    assert sum(c["runaway_alerts"] for c in report["time"]["by_class"].values()) == alerts
    # An alert needs the job's progress past 3× its declared runtime (capped at its maximum
    # duration), so it needs such a runtime; every completed job with one raised it.
    rows = jobs(out)

    def ran_away(row: dict[str, str]) -> bool:
        declared = float(row["estimated_runtime_s"])
        if row["job_class"] == "train":
            declared = min(declared, MAX_DURATION_S)
        return float(row["runtime_s"]) > 3 * declared

    assert sum(1 for r in rows if r["status"] == "completed" and ran_away(r)) <= alerts
    assert alerts <= sum(1 for r in rows if ran_away(r))


# Scenario keys -----------------------------------------------------------------------------------
def test_the_new_keys_are_in_the_schema() -> None:
    schema = json.dumps(scenario_json_schema())
    for key in ("deadline_boost", "runaway_factor", "max_duration", "time_window", "must_finish_in_window"):
        assert f'"{key}"' in schema
    properties = scenario_json_schema()["properties"]
    assert {"eta", "runaway_factor"} <= set(properties)
    # The shipped scenario is valid against it, and so is the `deadline_boost: true` shorthand.
    jsonschema = pytest.importorskip("jsonschema")
    document = yaml.safe_load(DEADLINES.read_text())
    jsonschema.validate(document, scenario_json_schema())
    document["policy"]["deadline_boost"] = True
    jsonschema.validate(document, scenario_json_schema())


def test_deadline_boost_accepts_true_false_and_settings() -> None:
    base: dict[str, Any] = json.loads(json.dumps(load_scenario(DEADLINES).scenario.model_dump(mode="json")))
    assert base["policy"]["deadline_boost"] is None
    for value, expected in [(True, (0.5, 0.75, 0.9)), ({"thresholds": [0.8], "boosts": [40]}, (0.8,))]:
        scenario = Scenario.model_validate({**base, "policy": {"deadline_boost": value}})
        boost = scenario.policy.deadline_boost_policy()
        assert boost is not None and boost.thresholds == expected
    off = Scenario.model_validate({**base, "policy": {"deadline_boost": False}})
    assert off.policy.deadline_boost_policy() is None
    assert policy_overrides("deadline-aware") == {"deadline_boost": True}
    aware = apply_policy(Scenario.model_validate(base), parse_policy("deadline-aware"))
    assert aware.policy.deadline_boost is not None


def test_bad_deadline_boost_eta_and_runaway_settings_name_the_field(tmp_path: Path) -> None:
    base = load_scenario(DEADLINES).scenario
    policy = tmp_path / "boost.yaml"
    policy.write_text("policy:\n  deadline_boost:\n    thresholds: [0.9, 0.5]\n    boosts: [1, 2]\n")
    with pytest.raises(ValidationError) as info:
        apply_policy(base, parse_policy(str(policy)))
    assert f"{policy}:3: policy.deadline_boost.thresholds: thresholds must be ascending" in str(info.value)
    data = base.model_dump()
    for update, path in [({"eta": {"every": 0}}, "eta.every"), ({"runaway_factor": 0.5}, "runaway_factor")]:
        with pytest.raises(ValidationErrors) as errors:
            validate_model(Scenario, {**data, **update})
        assert [e.path for e in errors.value.errors] == [path]


def test_compare_runs_the_deadline_aware_preset(tmp_path: Path) -> None:
    from support.scenarios import SMALL

    scenario = tmp_path / "small.yaml"
    scenario.write_text(
        SMALL.replace("        gpus: {1: 0.6", "        deadline_slack: 2\n        gpus: {1: 0.6")
    )
    out = tmp_path / "cmp"
    argv = [
        "compare",
        str(scenario),
        "-p",
        "fifo",
        "-p",
        "deadline-aware",
        "--out",
        str(out),
        "--workers",
        "1",
    ]
    assert main([*argv, "--format", "json"]) == 0
    summary = json.loads((out / "compare.json").read_text())
    assert set(summary) == {"fifo", "deadline-aware"}
    assert "time" in summary["deadline-aware"]["report"]  # deadline-aware ordering is a time feature
    assert "time" not in summary["fifo"]["report"]


def test_plan_points_do_not_measure_etas() -> None:
    from budcore_simulator.sweep import parse_vary, plan_specs

    loaded = load_scenario(DEADLINES)
    assert loaded.scenario.eta is not None
    points = plan_specs(loaded, [parse_vary("pool.a100.nodes=4,5")])
    assert [spec.scenario.eta for _, spec in points] == [None, None]
