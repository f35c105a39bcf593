"""``plan --search bisect``: fewest nodes meeting the SLOs in tens of runs, and what the answer says.

The multi-pool tests stand a synthetic report in for each run (``sweep.run_all`` is looked up when
called): waits fall as a known function of the pools' nodes, so the search's answer can be checked
against the whole grid without simulating it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from budcore_simulator import sweep
from budcore_simulator.scenario import load_scenario
from budcore_simulator.sweep import PlanSpace, RunSpec, parse_slo, parse_vary, plan_json, run_plan
from support.scenarios import SMALL

from budcore.cli import main
from budcore.domain.errors import ValidationError

PRICES = {"a": 4, "b": 2, "c": 1}  # $ per GPU-hour
THREE_POOLS = """\
name: three
seed: 1
horizon: 1h
fleet:
  pools:
    - {name: a, gpus_per_node: 8, nodes: 1, price_per_gpu_hour: "4"}
    - {name: b, gpus_per_node: 8, nodes: 1, price_per_gpu_hour: "2"}
    - {name: c, gpus_per_node: 8, nodes: 1, price_per_gpu_hour: "1"}
queues:
  documents:
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: a},
       spec: {nodeLabels: {budcore.io/pool: a}}}
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: b},
       spec: {nodeLabels: {budcore.io/pool: b}}}
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: c},
       spec: {nodeLabels: {budcore.io/pool: c}}}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ClusterQueue
      metadata: {name: team}
      spec:
        namespaceSelector: {}
        resourceGroups:
          - coveredResources: [nvidia.com/gpu]
            flavors:
              - {name: a, resources: [{name: nvidia.com/gpu, nominalQuota: 8}]}
              - {name: b, resources: [{name: nvidia.com/gpu, nominalQuota: 8}]}
              - {name: c, resources: [{name: nvidia.com/gpu, nominalQuota: 8}]}
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: LocalQueue, metadata: {name: main, namespace: team},
       spec: {clusterQueue: team}}
workload:
  generators:
    classes:
      - {name: train, tenant: team, local_queue: main, arrivals: {kind: poisson, rate: 4, per: 1h},
         runtime: {kind: fixed, value: 10m}}
"""
VALUES = range(1, 9)  # nodes per pool


def score(nodes: dict[str, int]) -> float:
    """The synthetic fleet's capacity for the workload: pool a's nodes count most."""
    return 3 * nodes["a"] + 2 * nodes["b"] + nodes["c"]


def fake_report(nodes: dict[str, int], seed: int) -> dict[str, Any]:
    wait = 36_000 / score(nodes) + (seed % 7)  # seconds; a little noise per seed
    figures = {"mean": wait / 2, "p50": wait / 3, "p95": wait, "p99": wait * 1.2}
    group = {
        "wait_s": figures,
        "start_wait_s": figures,
        "jct_s": figures,
        "deadlines": 0,
        "deadline_miss_rate": None,
        "completed": 1,
        "completable": 1,
    }
    return {
        "overall": group,
        "by_tenant": {"team": group},
        "utilisation": {"fleet": 0.5},
        "fairness": {"jain_index_tenants": 1.0},
    }


@pytest.fixture
def fake_runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, int]]:
    ran: list[dict[str, int]] = []

    def run_all(
        specs: Sequence[RunSpec], executor: Any = None, workers: int | None = None, on_result: Any = None
    ) -> list[Any]:
        out = []
        for spec in specs:
            assert spec.scenario.fleet is not None
            nodes = {p.name: p.nodes for p in spec.scenario.fleet.pools}
            ran.append(nodes)
            seed = spec.scenario.seed
            out.append({"label": spec.label, "seed": seed, "report": fake_report(nodes, seed)})
            if on_result is not None:
                on_result(len(out) - 1, out[-1])
        return out

    monkeypatch.setattr(sweep, "run_all", run_all)
    return ran


@pytest.fixture
def three(tmp_path: Path) -> Path:
    path = tmp_path / "three.yaml"
    path.write_text(THREE_POOLS)
    return path


def brute_force(threshold_s: float) -> tuple[int, dict[str, int]]:
    """The cheapest fleet of the grid whose wait is under the threshold (seed 1: noise 1 s)."""
    best: tuple[int, dict[str, int]] | None = None
    for a, b, c in itertools.product(VALUES, repeat=3):
        nodes = {"a": a, "b": b, "c": c}
        if 36_000 / score(nodes) + 1 < threshold_s:
            cost = sum(PRICES[p] * 8 * n for p, n in nodes.items())
            if best is None or cost < best[0]:
                best = (cost, nodes)
    assert best is not None
    return best


def test_three_pools_bisect_in_tens_of_runs(three: Path, fake_runs: list[dict[str, int]]) -> None:
    space = PlanSpace(load_scenario(three), [parse_vary(f"pool.{p}.nodes=1..8:1") for p in "abc"])
    outcome = run_plan(space, [parse_slo("p95_wait<30m")], (1,), search="bisect", workers=1)
    plan = plan_json(outcome)
    search = plan["search"]
    assert search["points"] == 512 and search["mode"] == "bisect" and not search["exact"]
    assert search["points_run"] == len(fake_runs) == search["runs"] < 40  # tens of runs, not 512
    (answer,) = outcome.answers
    assert answer.best is not None
    best = {key.split(".")[0]: value for key, value in answer.best.changes.items()}
    # a minimal fleet: no pool can shrink and still meet the SLO
    assert 36_000 / score(best) + 1 < 1800
    for pool in "abc":
        if best[pool] > 1:
            assert 36_000 / score({**best, pool: best[pool] - 1}) + 1 >= 1800
    # here the cheapest of the minimal fleets found costs what the grid's cheapest does
    cost, _ = brute_force(1800)
    assert float(answer.best.fleet_cost) == cost
    # the runner-up ran too, and what binds is the wait, at a smaller fleet
    assert answer.runner_up is not None and answer.runner_up.fleet_cost >= answer.best.fleet_cost
    assert [s.text for s in answer.binding] == ["p95_wait<30m"]
    assert plan["binding"]["slos"][0]["whose"] == "fleet-wide"


def test_one_pool_bisection_is_exact_and_cheaper_than_the_grid(
    three: Path, fake_runs: list[dict[str, int]]
) -> None:
    loaded = load_scenario(three)
    slos = [parse_slo("tenant=team:p95_wait<10m"), parse_slo("p95_wait<1h")]
    variations = [parse_vary("pool.c.nodes=1..64:1")]
    grid = run_plan(PlanSpace(loaded, variations), slos, (1, 2), workers=1)
    grid_runs = len(fake_runs)
    bisect = run_plan(PlanSpace(loaded, variations), slos, (1, 2), search="bisect", workers=1)
    assert grid_runs == 128 and len(fake_runs) - grid_runs == bisect.runs <= 2 * 9
    (g,), (b,) = grid.answers, bisect.answers
    assert g.best is not None and b.best is not None and b.best.changes == g.best.changes
    assert b.runner_up is not None and b.runner_up.changes == g.runner_up.changes if g.runner_up else True
    assert plan_json(bisect)["search"]["exact"]
    (binding,) = b.binding
    assert (binding.scope, binding.name) == ("tenant", "team")


def test_no_fleet_of_the_range_meets_the_slos(three: Path, fake_runs: list[dict[str, int]]) -> None:
    space = PlanSpace(load_scenario(three), [parse_vary("pool.a.nodes=1..4"), parse_vary("pool.b.nodes=1,2")])
    outcome = run_plan(space, [parse_slo("p95_wait<1m")], (1,), search="bisect", workers=1)
    assert len(fake_runs) == 1  # the largest fleet fails: nothing smaller can pass
    (answer,) = outcome.answers
    assert answer.best is None and answer.binding_at is not None
    assert answer.binding_at.changes == {"a.nodes": 4, "b.nodes": 2}
    assert plan_json(outcome)["answers"][0]["note"] == "no fleet of the sweep meets every SLO"


def test_a_contradiction_of_monotonicity_is_reported(
    three: Path, monkeypatch: pytest.MonkeyPatch, fake_runs: list[dict[str, int]]
) -> None:
    fake = sweep.run_all

    def noisy(
        specs: Sequence[RunSpec], executor: Any = None, workers: int | None = None, on_result: Any = None
    ) -> list[Any]:
        results = fake(specs)
        for i, (spec, result) in enumerate(zip(specs, results, strict=True)):
            assert spec.scenario.fleet is not None
            if spec.scenario.fleet.pools[0].nodes == 3:  # 3 nodes: a bad run
                result["report"]["overall"]["wait_s"]["p95"] = 99_999.0
            if on_result is not None:
                on_result(i, result)
        return results

    monkeypatch.setattr(sweep, "run_all", noisy)
    space = PlanSpace(load_scenario(three), [parse_vary("pool.a.nodes=1..4")])
    outcome = run_plan(space, [parse_slo("p95_wait<2h")], (1,), workers=1)
    (warning,) = outcome.warnings
    assert warning.startswith("not monotone: a.nodes=1 meets every SLO but the larger a.nodes=3 fails")
    assert "(and 1 more pair(s))" in warning  # a.nodes=2 too


@pytest.mark.parametrize(
    ("vary", "message"),
    [
        (["workload.rate=x1,x2"], "the variations have none"),
        (["pool.a.price_per_gpu_hour=1,2"], "node counts or GPUs per node along every fleet dimension"),
    ],
)
def test_bisect_needs_node_counts(three: Path, vary: list[str], message: str) -> None:
    space = PlanSpace(load_scenario(three), [parse_vary(v) for v in vary])
    with pytest.raises(ValidationError) as caught:
        run_plan(space, [parse_slo("p95_wait<1h")], (1,), search="bisect")
    assert caught.value.path == "--search" and message in caught.value.message


# End to end on a real simulation ------------------------------------------------------------------
def test_plan_cli_bisects_and_draws_the_frontier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SMALL)
    out = tmp_path / "plan"
    args = [
        "plan",
        str(scenario),
        "--vary",
        "pool.a100.nodes=1..8:1",
        "--slo",
        "p95_wait<20m",
        "--workers",
        "1",
    ]
    assert main([*args, "--search", "bisect", "--out", str(out)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert (
        "search: bisection over a100.nodes:" in printed and "against 8 for the full grid (exact)" in printed
    )
    assert "binds: p95_wait<20m (fleet-wide)" in printed and "runner-up" in printed
    plan = json.loads((out / "plan.json").read_text())
    assert plan["frontier_plot"] == "plan_frontier.png" and (out / "plan_frontier.png").stat().st_size > 0
    assert plan["frontier_metric"] == {"slo": "p95_wait<20m", "metric": "p95_wait"}
    assert plan["search"]["points_run"] < 8
    assert main([*args, "--out", str(tmp_path / "grid"), "--format", "json"]) == 0
    grid = json.loads(capsys.readouterr().out)
    assert grid["cheapest"] == plan["cheapest"] and grid["runner_up"] == plan["runner_up"]
    assert grid["search"]["points_run"] == 8
    assert main([*args, "--search", "sideways", "--out", str(tmp_path / "x")]) == 2
    assert "--search" in capsys.readouterr().err
