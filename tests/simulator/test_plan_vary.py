"""``plan --vary PATH=VALUES``: any scenario field, the load, quotas and policy knobs; grids."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from budcore_simulator.scenario import load_scenario
from budcore_simulator.sweep import PlanSpace, parse_slo, plan_specs, run_all, run_plan
from budcore_simulator.vary import Factor, apply_quota_overrides, parse_vary
from support.scenarios import SMALL

from budcore.cli import main
from budcore.domain.errors import ValidationError

# SMALL with a second class (fixed arrivals, a count) and a second ClusterQueue in the cohort.
TWO = (
    SMALL.replace(
        "metadata: {name: team}\n      spec:\n",
        "metadata: {name: team}\n      spec:\n        cohortName: all\n",
    ).replace(
        """    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: LocalQueue""",
        """    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ClusterQueue
      metadata: {name: lab}
      spec:
        cohortName: all
        namespaceSelector: {}
        resourceGroups:
          - coveredResources: [nvidia.com/gpu, cpu, memory]
            flavors:
              - name: a100
                resources:
                  - {name: nvidia.com/gpu, nominalQuota: 4, lendingLimit: 2}
                  - {name: cpu, nominalQuota: 64}
                  - {name: memory, nominalQuota: 512Gi}
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: LocalQueue, metadata: {name: main, namespace: lab},
       spec: {clusterQueue: lab}}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: LocalQueue""",
    )
    + """      - name: probe
        tenant: lab
        local_queue: main
        arrivals: {kind: fixed, interval: 20m}
        runtime: {kind: fixed, value: 10m}
        count: 6
"""
)


@pytest.fixture
def two(tmp_path: Path) -> Path:
    path = tmp_path / "two.yaml"
    path.write_text(TWO)
    return path


# Parsing ------------------------------------------------------------------------------------------
def test_parse_paths_values_and_factors() -> None:
    rate = parse_vary("workload.rate=x0.5,x1,x1.5")
    assert rate.kind == "rate" and [str(v) for v in rate.values] == ["x0.5", "x1", "x1.5"]
    assert rate.values[2] == Factor(Decimal("1.5"), "x1.5") and not rate.fleet
    pool = parse_vary("pool.h100.nodes=8,x2,4..6")
    assert pool.values == (4, 5, 6, 8, Factor(Decimal(2), "x2")) and pool.capacity and pool.fleet
    assert pool.key == "h100.nodes"
    knob = parse_vary("policy.preemption_grace=30s,2m,null")
    assert knob.values == ("30s", "2m", None) and knob.target == ("policy", "preemption_grace")
    listed = parse_vary("fleet.pools[1].nodes=2,4")
    assert listed.target == ("fleet", "pools", 1, "nodes") and listed.capacity and listed.values == (2, 4)
    assert parse_vary("policy.fair_sharing=true,false").values == (True, False)
    assert parse_vary("class.pretrain.arrivals.rate=x2").target == ("pretrain", "arrivals", "rate")
    quota = parse_vary("queues.cq.research.h100.gpu=16,32,x2")
    assert quota.kind == "quota" and not quota.fleet


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nodes=4", "unknown field 'nodes'"),
        ("seed=1,2", "--seed sets it and --seeds N replicates"),
        ("pool.h100.cpus=4", "expected pool.<pool>.<field>"),
        ("class.pretrain.speed=2", "expected class.<class>.<field>"),
        ("workload.rate=2", "workload.rate takes factors xK"),
        ("workload.rate=x0", "factor 'x0' must be greater than zero"),
        ("policy.fair_sharing=true,,false", "an empty value between commas"),
        ("policy.flavor_weights={a: 1}", "give scalar values"),
        ("queues.cq.research=4", "expected queues.cq.<ClusterQueue>.<flavor>.<resource>"),
        ("policy..aging=1", "bad path"),
        ("policy.fair_sharing", "expected PATH=VALUES"),
    ],
)
def test_parse_errors_name_the_option(text: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_vary(text)
    assert caught.value.path == "--vary" and message in caught.value.message


# Binding and applying -----------------------------------------------------------------------------
def test_the_load_factor_scales_every_class(two: Path) -> None:
    points = plan_specs(load_scenario(two), [parse_vary("workload.rate=x0.5,x2")])
    half, double = (spec.scenario.workload.generators for _, spec in points)
    assert half is not None and double is not None
    train, probe = double.classes
    assert train.arrivals.kind == "poisson" and train.arrivals.rate == 40.0
    assert probe.arrivals.kind == "fixed" and probe.arrivals.interval == 600.0 and probe.count == 12
    assert half.classes[1].arrivals.kind == "fixed" and half.classes[1].arrivals.interval == 2400.0
    assert half.classes[1].count == 3
    assert [spec.label for _, spec in points] == ["workload.rate=x0.5", "workload.rate=x2"]


def test_quota_paths_set_a_cluster_queues_quota(two: Path) -> None:
    loaded = load_scenario(two)
    points = plan_specs(loaded, [parse_vary("queues.cq.team.a100.gpu=8,x2")])
    assert [spec.quota_overrides for _, spec in points] == [
        (("team", "a100", "nvidia.com/gpu", "nominal_quota", 8_000),),
        (("team", "a100", "nvidia.com/gpu", "nominal_quota", 32_000),),
    ]
    queues = apply_quota_overrides(loaded.queues, points[0][1].quota_overrides)
    quota = queues.cluster_queues["team"].quota("a100", "nvidia.com/gpu")
    assert quota is not None and quota.nominal_quota == 8_000
    limit = plan_specs(loaded, [parse_vary("queues.cq.lab.a100.nvidia.com/gpu.lending_limit=1,null")])
    assert [spec.quota_overrides[0][3:] for _, spec in limit] == [
        ("lending_limit", 1_000),
        ("lending_limit", None),
    ]
    # the quota given wins over the pool's capacity scaling, and the run uses it
    (_, spec), *_ = plan_specs(
        loaded, [parse_vary("pool.a100.nodes=4"), parse_vary("queues.cq.team.a100.gpu=8")]
    )
    assert spec.quota_factors == (("a100", 32_000, 16_000),)
    (result,) = run_all([spec], workers=1)
    assert result["report"]["jobs"] > 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("queues.cq.lab.a100.gpu.lending_limit=8", "lendingLimit (8000m) must not exceed nominalQuota"),
        ("queues.cq.nope.a100.gpu=4", "no ClusterQueue 'nope' in the queues; ClusterQueues: lab, team"),
        ("queues.cq.team.h100.gpu=4", "ClusterQueue team has no flavor 'h100'; flavors: a100"),
        (
            "queues.cq.team.a100.tpu=4",
            "has no quota of 'tpu' on flavor a100; resources: cpu, memory, nvidia.com/gpu",
        ),
        ("queues.cq.team.a100.gpu=lots", "invalid quantity 'lots'"),
        ("queues.cq.team.a100.gpu=null", "a nominal quota is a quantity, not null"),
        (
            "policy.preemption_mode=fast",
            "'policy.preemption_mode=fast': policy.preemption_mode: Input should be",
        ),
        ("policy.bogus=1", "policy.bogus: no such field; fields of policy: fair_sharing"),
        ("fleet.pools[3].nodes=1", "fleet.pools[3]: no such item; the list has 1"),
        ("pool.h100.nodes=1", "no pool 'h100' in the scenario; pools: a100"),
        ("class.nope.count=1", "no generator class 'nope' in the scenario; classes: train, probe"),
        ("failures.mtbf=x2", "failures.mtbf is not set in the scenario: x2 needs a value to multiply"),
        (
            "workload.generators.classes[1].count=-1",
            "classes[1].count: Input should be greater than or equal to 0",
        ),
        ("class.probe.local_queue=nope", "LocalQueue lab/nope"),
    ],
)
def test_values_are_validated_by_the_models_and_errors_name_the_path(
    two: Path, text: str, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        plan_specs(load_scenario(two), [parse_vary(text)])
    error = caught.value
    assert error.path == "--vary" and message in str(error), str(error)
    assert "\n" not in str(error) and "pydantic" not in str(error)


def test_one_field_varied_twice_is_refused(two: Path) -> None:
    with pytest.raises(ValidationError, match=r"fleet\.pools\[0\]\.nodes is varied twice"):
        plan_specs(
            load_scenario(two), [parse_vary("fleet.pools[0].nodes=1"), parse_vary("pool.a100.nodes=2")]
        )


def test_a_pool_by_index_is_the_pool_by_name(two: Path) -> None:
    loaded = load_scenario(two)
    by_name = plan_specs(loaded, [parse_vary("pool.a100.nodes=1,x2")])
    by_index = plan_specs(loaded, [parse_vary("fleet.pools[0].nodes=1,x2")])
    assert [(s.fleet_gpus, s.fleet_cost, s.quota_factors) for _, s in by_name] == [
        (s.fleet_gpus, s.fleet_cost, s.quota_factors) for _, s in by_index
    ]
    assert [s.fleet_gpus for _, s in by_name] == [8, 32]  # x2 of 2 nodes is 4


def test_a_price_or_horizon_variation_reprices_the_fleet(two: Path) -> None:
    loaded = load_scenario(two)
    priced = plan_specs(loaded, [parse_vary("pool.a100.price_per_gpu_hour=1,x2")])
    assert [str(s.fleet_cost) for _, s in priced] == ["64.00", "448.00"]  # 16 GPUs × 4 h × $1, × $7
    longer = plan_specs(loaded, [parse_vary("horizon=x2")])
    assert str(longer[0][1].fleet_cost) == "448.00"


# Grids and conditions -----------------------------------------------------------------------------
def test_several_variations_make_a_grid_answered_per_condition(two: Path) -> None:
    loaded = load_scenario(two)
    space = PlanSpace(
        loaded,
        [
            parse_vary("pool.a100.nodes=1,2"),
            parse_vary("policy.fair_sharing=true,false"),
            parse_vary("workload.rate=x1"),
        ],
    )
    assert space.shape == (2, 2, 1) and space.fleet_axes == [0] and space.condition_axes == [1, 2]
    outcome = run_plan(space, [parse_slo("completed>=0")], (5,), workers=1)
    assert len(outcome.points) == 4 and len(outcome.answers) == 2
    for answer in outcome.answers:  # every fleet completes something: the cheapest is 1 node
        assert answer.best is not None and answer.best.changes["a100.nodes"] == 1
        assert answer.runner_up is not None and answer.runner_up.changes["a100.nodes"] == 2


def test_plan_cli_varies_the_load_and_a_knob(
    two: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan"
    args = [
        "plan",
        str(two),
        "--vary",
        "pool.a100.nodes=1,2",
        "--vary",
        "workload.rate=x0.5,x1",
        "--slo",
        "p95_wait<1d",
        "--workers",
        "1",
        "--out",
        str(out),
        "--format",
        "json",
    ]
    assert main(args) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [a["condition"] for a in plan["answers"]] == [{"workload.rate": "x0.5"}, {"workload.rate": "x1"}]
    assert all(a["cheapest"] == {"a100.nodes": 1} for a in plan["answers"])
    assert plan["cheapest"] is None  # two conditions: see answers
    assert {row["condition"]["workload.rate"] for row in plan["frontier"]} == {"x0.5", "x1"}
    assert main([*args[:4], "--vary", "policy.preemption_mode=fast", *args[4:]]) == 2
    err = capsys.readouterr().err
    assert "--vary" in err and "policy.preemption_mode" in err and "Traceback" not in err


def test_a_condition_that_breaks_the_scenario_is_an_error_even_beside_a_fleet_dimension(two: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        PlanSpace(
            load_scenario(two),
            [parse_vary("pool.a100.nodes=1,2"), parse_vary("class.probe.local_queue=nope")],
        )
    assert caught.value.path == "--vary" and "class.probe.local_queue=nope" in str(caught.value)
    assert "LocalQueue lab/nope" in str(caught.value)
