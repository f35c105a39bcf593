"""``compare`` and ``plan``: parsing, quota scaling, and both commands end to end."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from budcore_simulator.cli import default_scenario_path
from budcore_simulator.scenario import load_scenario
from budcore_simulator.sweep import (
    apply_policy,
    compare_specs,
    evaluate_plan,
    parse_policy,
    parse_slo,
    parse_vary,
    plan_specs,
    run_all,
    scale_quotas,
)
from support.scenarios import SMALL

from budcore.cli import main
from budcore.domain.errors import ValidationError, ValidationErrors

TWO_TEAMS = SMALL.replace(
    """    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: LocalQueue""",
    """    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ClusterQueue
      metadata: {name: other}
      spec:
        namespaceSelector: {}
        resourceGroups:
          - coveredResources: [nvidia.com/gpu, cpu, memory]
            flavors:
              - name: a100
                resources:
                  - {name: nvidia.com/gpu, nominalQuota: 0}
                  - {name: cpu, nominalQuota: 0}
                  - {name: memory, nominalQuota: 0}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: LocalQueue""",
)


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(SMALL)
    return path


def test_parse_vary_ranges_and_lists() -> None:
    assert parse_vary("pool.h100.nodes=4..32:8").values == (4, 12, 20, 28, 32)
    assert parse_vary("pool.h100.gpus_per_node=8,4,8").values == (4, 8)
    assert parse_vary("pool.a.nodes=2..2").values == (2,)
    for bad in (
        "h100.nodes=4",
        "pool.h100.cpus=4",
        "pool.h100.nodes=8..2",
        "pool.h100.nodes=a..b",
        "pool.x.nodes=-1",
    ):
        with pytest.raises(ValidationError) as info:
            parse_vary(bad)
        assert info.value.path == "--vary"


def test_parse_slo_units() -> None:
    assert parse_slo("p95_wait<30m").value == 1800
    assert parse_slo("deadline_miss<1%").value == pytest.approx(0.01)
    assert parse_slo("utilisation >= 0.8").op == ">="
    assert parse_slo("p95_wait<30m").holds({"p95_wait": 1799.0})
    assert not parse_slo("p95_wait<30m").holds({"p95_wait": None})
    with pytest.raises(ValidationError, match="unknown metric"):
        parse_slo("latency<3")
    with pytest.raises(ValidationError, match="expected <metric><op><value>"):
        parse_slo("p95_wait")


def test_parse_policy_forms(tmp_path: Path) -> None:
    assert parse_policy("fair").policy == {"fair_sharing": True}
    assert parse_policy("strict-fifo").queueing_strategy == "StrictFIFO"
    assert parse_policy("fair_sharing=true,cycle_interval=60").policy == {
        "fair_sharing": True,
        "cycle_interval": 60,
    }
    policy_file = tmp_path / "mine.yaml"
    policy_file.write_text("policy: {fair_sharing: true, flavor_weights: {a100: 2}}\n")
    variant = parse_policy(str(policy_file))
    assert (variant.label, variant.policy["flavor_weights"]) == ("mine", {"a100": 2})
    with pytest.raises(ValidationError, match="preset"):
        parse_policy("bogus")
    with pytest.raises(ValidationError, match="does not exist"):
        parse_policy(str(tmp_path / "missing.yaml"))


def test_quotas_scale_exactly_with_capacity(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        TWO_TEAMS.replace("nominalQuota: 16}", "nominalQuota: 11}").replace(
            "nominalQuota: 0}\n", "nominalQuota: 5}\n", 1
        )
    )
    loaded = load_scenario(path)
    scaled = scale_quotas(loaded.queues, {"a100": (24, 16)})  # 16 GPUs -> 24 GPUs
    gpus = {
        name: cq.quota("a100", "nvidia.com/gpu").nominal_quota for name, cq in scaled.cluster_queues.items()
    }  # type: ignore[union-attr]
    assert sum(gpus.values()) == 24_000  # still adds up to the capacity
    assert gpus == {"team": 16_500, "other": 7_500}


def test_compare_specs_reject_duplicates(scenario: Path) -> None:
    loaded = load_scenario(scenario)
    with pytest.raises(ValidationError, match="given twice"):
        compare_specs(loaded, [parse_policy("fair"), parse_policy("fair")])


def test_runs_through_any_executor(scenario: Path) -> None:
    loaded = load_scenario(scenario)
    specs = compare_specs(loaded, [parse_policy("fifo"), parse_policy("fair")])
    with ThreadPoolExecutor(max_workers=2) as executor:
        threaded = run_all(specs, executor=executor)
    serial = run_all(specs, workers=1)
    assert [r["report"] for r in threaded] == [r["report"] for r in serial]


def test_compare_cli_with_the_process_pool(
    scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    code = main(
        ["compare", str(scenario), "-p", "fifo", "-p", "strict-fifo", "--out", str(out), "--workers", "2"]
    )
    assert code == 0
    assert (out / "compare_cdf.png").stat().st_size > 0
    summary = json.loads((out / "compare.json").read_text())
    assert set(summary) == {"fifo", "strict-fifo"}
    assert "wait p95" in capsys.readouterr().out
    assert main(["compare", str(scenario), "-p", "fifo"]) == 2


def test_plan_finds_the_cheapest_fleet_meeting_the_slos(
    scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan"
    args = [
        "plan",
        str(scenario),
        "--vary",
        "pool.a100.nodes=1..4",
        "--slo",
        "p95_wait<20m",
        "--out",
        str(out),
    ]
    assert main([*args, "--format", "json", "--workers", "2"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert len(answer["frontier"]) == 4
    passing = [row for row in answer["frontier"] if row["meets_slos"]]
    assert passing, answer
    cheapest = min(passing, key=lambda row: float(row["fleet_cost"]))
    assert answer["cheapest"] == cheapest["fleet"]
    # more GPUs never make the p95 wait worse in this sweep
    waits = [row["metrics"]["p95_wait"] for row in sorted(answer["frontier"], key=lambda r: r["gpus"])]
    assert waits == sorted(waits, reverse=True)


def test_plan_scales_quota_with_the_fleet(scenario: Path) -> None:
    loaded = load_scenario(scenario)
    points = plan_specs(loaded, [parse_vary("pool.a100.nodes=4")])
    ((_, spec),) = points
    assert spec.quota_factors == (("a100", 32_000, 16_000),)


def test_plan_errors(scenario: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(scenario), "--vary", "pool.nope.nodes=1..2", "--slo", "p95_wait<1m"]) == 2
    assert "no pool 'nope'" in capsys.readouterr().err


def test_runs_on_a_dask_local_cluster(scenario: Path) -> None:
    distributed = pytest.importorskip("dask.distributed")
    loaded = load_scenario(scenario)
    specs = compare_specs(loaded, [parse_policy("fifo"), parse_policy("fair")])
    serial = run_all(specs, workers=1)
    with (
        distributed.LocalCluster(
            processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_dask = run_all(specs, executor=client.get_executor())
    assert [r["label"] for r in on_dask] == ["fifo", "fair"]
    assert [r["report"] for r in on_dask] == [r["report"] for r in serial]
    assert [r["wait_samples"] for r in on_dask] == [r["wait_samples"] for r in serial]


# --------------------------------------------------------------------------------------------
# Audit regressions
# --------------------------------------------------------------------------------------------
FLAVOR_PRICED = SMALL.replace(', price_per_gpu_hour: "3.50"}', "}\n  prices: {a100: '3.50'}")


def test_plan_fleet_cost_uses_the_billing_prices(tmp_path: Path) -> None:
    assert "prices: {a100" in FLAVOR_PRICED
    path = tmp_path / "s.yaml"
    path.write_text(FLAVOR_PRICED)
    loaded = load_scenario(path)
    points = plan_specs(loaded, [parse_vary("pool.a100.nodes=1,2")])
    # 8 and 16 GPUs at $3.50 per GPU-hour (fleet.prices) over 4 hours
    assert [(spec.fleet_gpus, str(spec.fleet_cost)) for _, spec in points] == [(8, "112.00"), (16, "224.00")]
    evaluated = evaluate_plan(points, run_all([spec for _, spec in points], workers=1), [])
    assert [str(p.fleet_cost) for p in evaluated] == ["112.00", "224.00"]


def test_plan_refuses_a_fleet_without_prices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SMALL.replace(', price_per_gpu_hour: "3.50"}', "}"))
    with pytest.raises(ValidationError, match=r"fleet cost is unknown.*'a100'"):
        plan_specs(load_scenario(path), [parse_vary("pool.a100.nodes=1,2")])
    assert main(["plan", str(path), "--vary", "pool.a100.nodes=1,2", "--slo", "p95_wait<1h"]) == 2
    assert "no price per GPU-hour" in capsys.readouterr().err


def test_malformed_policy_file_names_file_and_line(
    scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("policy: [1\n")
    with pytest.raises(ValidationErrors) as info:
        parse_policy(str(policy))
    (error,) = info.value.errors
    assert (error.source, error.line) == (str(policy), 2)
    assert "malformed YAML" in error.message
    assert main(["compare", str(scenario), "-p", "fifo", "-p", str(policy)]) == 2
    err = capsys.readouterr().err
    assert f"{policy}:2" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        ("bogus_key=1", "bogus_key", "unknown field"),
        ("preemption_grace=-5m", "preemption_grace", "invalid duration '-5m'"),
        ("fair_sharing=true,preemptions_per_hour=-1", "preemptions_per_hour", "greater than or equal to 0"),
    ],
)
def test_inline_policy_errors_are_one_line_naming_the_field(
    scenario: Path, override: str, field: str, message: str
) -> None:
    loaded = load_scenario(scenario)
    with pytest.raises(ValidationError) as info:
        apply_policy(loaded.scenario, parse_policy(override))
    text = str(info.value)
    assert text == f"--policy: {override!r}: {field}: {text.split(f'{field}: ', 1)[1]}"
    assert message in text
    assert "\n" not in text and "pydantic" not in text


def test_policy_file_field_errors_point_at_the_line(scenario: Path, tmp_path: Path) -> None:
    policy = tmp_path / "pol.yaml"
    policy.write_text("policy:\n  fair_sharing: true\n  bogus: 1\n  preemption_grace: -5m\n")
    loaded = load_scenario(scenario)
    with pytest.raises(ValidationErrors) as info:
        apply_policy(loaded.scenario, parse_policy(str(policy)))
    lines = sorted(str(info.value).splitlines())  # one line per problem
    assert len(lines) == 2
    assert lines[0] == f"{policy}:3: policy.bogus: unknown field"
    assert lines[1].startswith(f"{policy}:4: policy.preemption_grace: invalid duration '-5m'")
    assert "pydantic" not in str(info.value)


def test_a_zero_node_point_is_infeasible_and_the_sweep_goes_on(
    scenario: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = load_scenario(scenario)
    points = plan_specs(loaded, [parse_vary("pool.a100.nodes=0,1")])
    assert "'a100'" in points[0][1].infeasible and not points[1][1].infeasible
    evaluated = evaluate_plan(points, run_all([spec for _, spec in points], workers=1), [parse_slo("jain>0")])
    empty, one = evaluated
    assert not empty.passed and empty.failed[0].startswith("infeasible: no node for ResourceFlavor 'a100'")
    assert (empty.gpus, str(empty.fleet_cost)) == (0, "0.00")
    assert set(empty.metrics) == set(one.metrics) and all(v is None for v in empty.metrics.values())
    assert one.metrics["p95_wait"] is not None
    args = ["plan", str(scenario), "--vary", "pool.a100.nodes=0,1", "--slo", "p95_wait<1d", "--workers", "1"]
    assert main([*args, "--format", "json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["cheapest"] == {"a100.nodes": 1}
    assert answer["frontier"][0]["failed_slos"][0].startswith("infeasible:")


def test_a_zero_node_pool_is_simply_absent_when_another_supplies_its_flavor(tmp_path: Path) -> None:
    text = SMALL.replace(
        'price_per_gpu_hour: "3.50"}',
        'price_per_gpu_hour: "3.50"}\n'
        "    - {name: spare, product: NVIDIA-A100-SXM4-80GB, gpus_per_node: 8, nodes: 1,"
        ' price_per_gpu_hour: "3.50"}',
    ).replace(
        "nodeLabels: {budcore.io/pool: a100}", "nodeLabels: {nvidia.com/gpu.product: NVIDIA-A100-SXM4-80GB}"
    )
    path = tmp_path / "s.yaml"
    path.write_text(text)
    points = plan_specs(load_scenario(path), [parse_vary("pool.spare.nodes=0")])
    ((_, spec),) = points
    assert spec.infeasible == "" and spec.fleet_gpus == 16
    assert spec.quota_factors == (("a100", 16_000, 24_000),)


def test_vary_on_a_nodes_file_fleet_says_there_are_no_pools() -> None:
    dump = Path(default_scenario_path()).parent.parent / "nodes-dump" / "scenario.yaml"
    with pytest.raises(ValidationError, match=r"no pools: its fleet comes from the nodes file 'nodes\.yaml'"):
        plan_specs(load_scenario(dump), [parse_vary("pool.h100.nodes=1,2")])


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("pool.h100.nodes=4..1", "range 4..1 must be ascending"),
        ("pool.h100.nodes=1..4:0", "step 0 must be a positive integer"),
        ("pool.h100.nodes=a..b", "expected integers"),
    ],
)
def test_bad_vary_values_say_why(text: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        parse_vary(text)
