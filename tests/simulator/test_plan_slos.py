"""``plan --slo`` scoped to a tenant, ClusterQueue, job class or priority, and time to start.

Scoped metrics read the report's own groups (``by_tenant``, ``by_cluster_queue``, ``by_class``,
``by_priority``), so a plan and ``report.json`` never disagree; time to start is the report's
``start_wait_s`` (submission to all pods running, censored at the end like the wait).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from budcore_simulator.scenario import load_scenario
from budcore_simulator.sweep import (
    GROUP_METRICS,
    PlanSpace,
    check_slos,
    metrics_of,
    parse_slo,
    parse_vary,
    plan_specs,
    run_all,
)
from support.scenarios import SMALL

from budcore.cli import main
from budcore.domain.errors import ValidationError

TWO_TENANTS = """\
name: two
seed: 3
horizon: 3h
fleet:
  pools:
    - {name: a100, product: NVIDIA-A100-SXM4-80GB, gpus_per_node: 8, nodes: 2, price_per_gpu_hour: "3.50"}
queues:
  documents:
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: a100},
       spec: {nodeLabels: {budcore.io/pool: a100}}}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ClusterQueue
      metadata: {name: research-cq}
      spec:
        cohortName: all
        namespaceSelector: {}
        resourceGroups:
          - coveredResources: [nvidia.com/gpu, cpu, memory]
            flavors:
              - name: a100
                resources:
                  - {name: nvidia.com/gpu, nominalQuota: 8}
                  - {name: cpu, nominalQuota: 96}
                  - {name: memory, nominalQuota: 1Ti}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ClusterQueue
      metadata: {name: ops-cq}
      spec:
        cohortName: all
        namespaceSelector: {}
        resourceGroups:
          - coveredResources: [nvidia.com/gpu, cpu, memory]
            flavors:
              - name: a100
                resources:
                  - {name: nvidia.com/gpu, nominalQuota: 8}
                  - {name: cpu, nominalQuota: 96}
                  - {name: memory, nominalQuota: 1Ti}
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: LocalQueue, metadata: {name: main, namespace: research},
       spec: {clusterQueue: research-cq}}
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: LocalQueue, metadata: {name: main, namespace: ops},
       spec: {clusterQueue: ops-cq}}
workload:
  generators:
    classes:
      - name: pretrain
        tenant: research
        local_queue: main
        priority: high
        arrivals: {kind: poisson, rate: 6, per: 1h}
        runtime: {kind: exponential, mean: 40m}
        gpus: {4: 0.5, 8: 0.5}
        deadline_slack: 3
      - name: batch
        tenant: ops
        local_queue: main
        priority: low
        arrivals: {kind: fixed, interval: 10m}
        runtime: {kind: exponential, mean: 20m}
        gpus: {1: 0.7, 2: 0.3}
        count: 12
"""


@pytest.fixture
def two(tmp_path: Path) -> Path:
    path = tmp_path / "two.yaml"
    path.write_text(TWO_TENANTS)
    return path


@pytest.mark.parametrize(
    ("text", "metric", "scope", "name", "base", "value"),
    [
        ("tenant=research:p95_wait<30m", "tenant=research:p95_wait", "tenant", "research", "p95_wait", 1800),
        ("cq=ops-cq:mean_jct<=2h", "cq=ops-cq:mean_jct", "cq", "ops-cq", "mean_jct", 7200),
        (
            "class=pretrain:deadline_miss<1%",
            "class=pretrain:deadline_miss",
            "class",
            "pretrain",
            "deadline_miss",
            0.01,
        ),
        ("priority=high:completed>=0.9", "priority=high:completed", "priority", "high", "completed", 0.9),
        (
            " tenant = ops : p99_start_wait < 90s ",
            "tenant=ops:p99_start_wait",
            "tenant",
            "ops",
            "p99_start_wait",
            90,
        ),
        ("p95_start_wait<10m", "p95_start_wait", None, None, "p95_start_wait", 600),
    ],
)
def test_scoped_and_start_wait_slos_parse(
    text: str, metric: str, scope: str | None, name: str | None, base: str, value: float
) -> None:
    slo = parse_slo(text)
    assert (slo.metric, slo.scope, slo.name, slo.base) == (metric, scope, name, base)
    assert slo.value == pytest.approx(value)
    assert slo.tenant is None and slo.period is None  # only a cost SLO has them


def test_the_cost_slo_is_the_same_grammar() -> None:
    slo = parse_slo("tenant=research:spend<$5000/week")
    assert (slo.metric, slo.scope, slo.name, slo.base) == (
        "spend:research/week",
        "tenant",
        "research",
        "spend",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("team=research:p95_wait<30m", "unknown scope 'team'; scopes: tenant, cq, class, priority"),
        ("tenant=research:jain>0.9", "jain is fleet-wide and takes no scope"),
        ("class=pretrain:utilisation>50%", "utilisation is fleet-wide"),
        ("cq=ops-cq:spend<$5/day", "spend is per tenant"),
        ("tenant=:p95_wait<30m", "give the tenant after tenant="),
        ("tenant=Research:p95_wait<30m", "tenant: invalid identifier"),
        ("class=pretrain:p95_latency<1s", "unknown metric 'p95_latency'"),
        ("class=pretrain:p95_wait", "expected <metric><op><value>"),
    ],
)
def test_scoped_slo_errors_name_the_option(text: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_slo(text)
    assert caught.value.path == "--slo" and message in caught.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "tenant=nobody:p95_wait<30m",
            "tenant 'nobody' has no LocalQueue in the scenario; tenants: ops, research",
        ),
        (
            "cq=gpu-cq:p95_wait<30m",
            "ClusterQueue 'gpu-cq' is not in the scenario's queues; ClusterQueues: ops-cq, research-cq",
        ),
        (
            "class=serving:p95_wait<30m",
            "no job of job class 'serving' in the scenario's workload; job class values: batch, pretrain",
        ),
        (
            "priority=critical:p95_wait<30m",
            "no job of priority 'critical' in the scenario's workload; priority values: high, low",
        ),
    ],
)
def test_unknown_scope_values_are_errors_naming_the_option(two: Path, text: str, message: str) -> None:
    loaded = load_scenario(two)
    check_slos(
        loaded,
        [
            parse_slo(t)
            for t in (
                "tenant=ops:p95_wait<1h",
                "cq=ops-cq:p95_wait<1h",
                "class=batch:completed>0",
                "priority=low:p95_jct<1d",
            )
        ],
    )
    with pytest.raises(ValidationError) as caught:
        check_slos(loaded, [parse_slo(text)])
    assert caught.value.path == "--slo" and message in caught.value.message


def test_scoped_metrics_are_the_report_groups(two: Path) -> None:
    loaded = load_scenario(two)
    slos = [
        parse_slo(t)
        for t in (
            "tenant=research:p95_wait<30m",
            "cq=ops-cq:p95_start_wait<30m",
            "class=pretrain:deadline_miss<1%",
            "priority=low:completed>=90%",
        )
    ]
    ((_, spec),) = plan_specs(loaded, [parse_vary("pool.a100.nodes=2")])
    (result,) = run_all([spec], workers=1)
    report = result["report"]
    metrics = metrics_of(report, slos)
    assert metrics["tenant=research:p95_wait"] == report["by_tenant"]["research"]["wait_s"]["p95"]
    assert metrics["cq=ops-cq:p95_start_wait"] == report["by_cluster_queue"]["ops-cq"]["start_wait_s"]["p95"]
    pretrain = report["by_class"]["pretrain"]
    assert pretrain["deadlines"] > 0
    assert metrics["class=pretrain:deadline_miss"] == pretrain["deadline_miss_rate"]
    low = report["by_priority"]["low"]
    assert metrics["priority=low:completed"] == low["completed"] / low["completable"]
    # fleet-wide metrics are the overall group's, by the same rule
    assert metrics["p95_start_wait"] == report["overall"]["start_wait_s"]["p95"]
    assert set(GROUP_METRICS) <= set(metrics)
    # a job starts when (or after) it is admitted, so every start-wait figure is at least the wait
    for group in [report["overall"], *report["by_tenant"].values(), *report["by_cluster_queue"].values()]:
        for stat in ("mean", "p50", "p95", "p99"):
            assert group["start_wait_s"][stat] >= group["wait_s"][stat]


def test_a_group_without_jobs_has_unknown_metrics_and_fails(two: Path) -> None:
    slo = parse_slo("tenant=research:p95_wait<30m")
    ((_, spec),) = plan_specs(load_scenario(two), [parse_vary("pool.a100.nodes=2")])
    (result,) = run_all([spec], workers=1)
    report = {**result["report"], "by_tenant": {}}
    metrics = metrics_of(report, [slo])
    assert metrics["tenant=research:p95_wait"] is None and not slo.holds(metrics)


# Time to start vs time to admission -------------------------------------------------------------
# Quota for two 8-GPU pods on a fleet of one 8-GPU node: the 16-GPU job is admitted at once but its
# pods never find room, so it waits for admission 0 and to start the whole run.
UNPLACEABLE = SMALL.replace("nodes: 2,", "nodes: 1,").replace(
    "gpus: {1: 0.6, 2: 0.2, 4: 0.1, 8: 0.1}", "gpus: 16\n        count: 1"
)


def test_an_admitted_job_whose_pods_never_start_does_not_show_a_start_wait_of_zero(tmp_path: Path) -> None:
    assert UNPLACEABLE != SMALL
    path = tmp_path / "s.yaml"
    path.write_text(UNPLACEABLE)
    ((_, spec),) = plan_specs(load_scenario(path), [parse_vary("pool.a100.nodes=1")])
    (result,) = run_all([spec], workers=1)
    overall = result["report"]["overall"]
    assert overall["never_admitted"] == 0 and overall["wait_s"]["p95"] < 60
    submit = 4 * 3600 - overall["start_wait_s"]["p95"]
    assert 0 <= submit < 4 * 3600 and overall["start_wait_s"]["p95"] > 3600  # censored at the horizon
    admission, start = parse_slo("p95_wait<5m"), parse_slo("p95_start_wait<5m")
    metrics = metrics_of(result["report"])
    assert admission.holds(metrics) and not start.holds(metrics)


def test_plan_cli_with_scoped_slos_says_whose_slo_binds(
    two: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan"
    args = [
        "plan",
        str(two),
        "--vary",
        "pool.a100.nodes=1..4",
        "--slo",
        "tenant=research:p95_wait<100m",
        "--slo",
        "cq=ops-cq:p95_start_wait<1h",
        "--workers",
        "1",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    printed = " ".join(capsys.readouterr().out.split())
    plan = json.loads((out / "plan.json").read_text())
    assert plan["cheapest"] is not None and plan["cheapest"] != {"a100.nodes": 1}
    (binding,) = plan["binding"]["slos"]
    assert (binding["slo"], binding["scope"], binding["name"]) == (
        "tenant=research:p95_wait<100m",
        "tenant",
        "research",
    )
    assert binding["there"]["mean"] >= 6000 > binding["at_answer"]["mean"]
    assert "binds: tenant=research:p95_wait<100m (tenant research)" in printed
    assert {"tenant=research:p95_wait", "cq=ops-cq:p95_start_wait"} <= set(plan["frontier"][0]["metrics"])
    assert (out / "plan_frontier.png").stat().st_size > 0
    assert main([*args[:-2], "--out", str(tmp_path / "x"), "--slo", "tenant=nobody:p95_wait<1m"]) == 2
    assert "--slo" in capsys.readouterr().err


def test_space_metrics_of_an_infeasible_point_have_the_same_keys(two: Path) -> None:
    from budcore_simulator.sweep import evaluate_plan

    loaded = load_scenario(two)
    slos = [parse_slo("tenant=research:p95_wait<30m"), parse_slo("p95_start_wait<1h")]
    space = PlanSpace(loaded, [parse_vary("pool.a100.nodes=0,1")])
    points = [space.point(i) for i in space.indices()]
    empty, one = evaluate_plan(points, run_all([spec for _, spec in points], workers=1), slos)
    assert empty.infeasible and set(empty.metrics) == set(one.metrics)
