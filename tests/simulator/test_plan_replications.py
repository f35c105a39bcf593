"""``--seeds N``: every point N times, means with Student-t 95% intervals, SLOs on the bound."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from budcore_simulator.scenario import load_scenario
from budcore_simulator.sweep import (
    PlanSpace,
    Stat,
    parse_slo,
    parse_vary,
    plan_json,
    replicate_seeds,
    run_plan,
    summarize,
    t_quantile,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.scenarios import SMALL

from budcore.cli import main
from budcore.domain.errors import ValidationError
from budcore.testing.examples import examples

# A small, quick workload: about 20 jobs over two hours.
TINY = SMALL.replace("horizon: 4h", "horizon: 2h").replace("rate: 20, per: 1h", "rate: 10, per: 1h")


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def test_seeds_are_the_scenario_seed_then_derived_ones() -> None:
    seeds = replicate_seeds(5, 4)
    assert seeds[0] == 5 and len(set(seeds)) == 4
    assert replicate_seeds(5, 4) == seeds  # a function of the seed and the count
    assert replicate_seeds(5, 2) == seeds[:2]  # N+1 seeds extend N
    assert replicate_seeds(6, 2)[1] != seeds[1]
    assert all(0 <= s < 2**32 for s in seeds)
    with pytest.raises(ValidationError, match="--seeds"):
        replicate_seeds(5, 0)


@pytest.mark.parametrize(
    ("df", "expected"),
    [
        (1, 12.7062),
        (2, 4.3027),
        (3, 3.1824),
        (4, 2.7764),
        (9, 2.2622),
        (10, 2.2281),
        (29, 2.0452),
        (120, 1.9799),
    ],
)
def test_t_quantiles_match_the_tables(df: int, expected: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=5e-4)


def test_summaries() -> None:
    assert summarize([7.0]) == Stat(7.0, 7.0, 7.0, (7.0,))
    two = summarize([1.0, 3.0])  # mean 2, s = √2, half = 12.706 · √2 / √2
    assert two.mean == 2.0 and two.high == pytest.approx(2 + 12.7062, abs=1e-3) and two.n == 2
    # 2 - 12.706 < 0, but both runs are non-negative: the lower bound is clipped at 0
    assert two.low == 0.0 and two.half_width == pytest.approx(12.7062, abs=1e-3)
    signed = summarize([-1.0, 3.0])  # a metric that can be negative keeps the symmetric interval
    assert signed.mean == 1.0 and signed.low == pytest.approx(1 - 12.7062 * 2, abs=1e-3)
    wide = summarize([10.0, 12.0, 14.0])  # mean 12, s = 2, half = 4.303 · 2 / √3 = 4.968: not clipped
    assert wide.low == pytest.approx(12 - 4.9685, abs=1e-3)
    assert summarize([1.0, 1.0, 1.0]).half_width == 0.0
    unknown = summarize([1.0, None])
    assert unknown.mean is None and unknown.low is None and unknown.n == 2


def test_an_slo_holds_only_when_the_unfavourable_bound_does() -> None:
    stat = summarize([1500.0, 1700.0, 1900.0])  # mean 1700 s, interval about ±497 s
    assert stat.high is not None and stat.high > 1800 and stat.mean is not None and stat.mean < 1800
    below = parse_slo("p95_wait<30m")
    assert below.holds({"p95_wait": stat.mean}) and not below.holds_for(stat)
    assert parse_slo("p95_wait<40m").holds_for(stat)
    above = parse_slo("p95_wait>25m")  # a lower limit is judged on the lower bound
    assert stat.low is not None and stat.low < 1500 and above.holds({"p95_wait": stat.mean})
    assert not above.holds_for(stat) and parse_slo("p95_wait>19m").holds_for(stat)
    assert not below.holds_for(summarize([1.0, None]))  # unknown in a run: unknown, fails


def _plan(path: Path, seed_set: tuple[int, ...]) -> dict[str, object]:
    loaded = load_scenario(path)
    space = PlanSpace(loaded, [parse_vary("pool.a100.nodes=1,2")])
    outcome = run_plan(space, [parse_slo("p95_wait<20m")], seed_set, workers=1)
    return plan_json(outcome)


@settings(
    max_examples=examples(3), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_replicated_plan_results_are_deterministic_per_seed_set(tiny: Path, seed: int) -> None:
    seed_set = replicate_seeds(seed, 2)
    first = _plan(tiny, seed_set)
    assert _plan(tiny, seed_set) == first  # the same seed set, the same plan, byte for byte
    # each run of a replicated point is the plan of that seed alone
    rows = first["frontier"]
    assert isinstance(rows, list)
    for position, one in enumerate(seed_set):
        alone = _plan(tiny, (one,))["frontier"]
        assert isinstance(alone, list)
        for row, single in zip(rows, alone, strict=True):
            assert row["seeds"] == list(seed_set) and single["seeds"] == [one]
            assert row["intervals"]["p95_wait"]["values"][position] == single["metrics"]["p95_wait"]


def test_plan_cli_with_seeds_writes_intervals(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan"
    args = ["plan", str(tiny), "--vary", "pool.a100.nodes=1,2", "--slo", "p95_wait<1h", "--seeds", "2"]
    assert main([*args, "--seed", "11", "--workers", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "±" in printed and "mean ± 95% interval over 2 seeds" in " ".join(printed.split())
    plan = json.loads((out / "plan.json").read_text())
    assert plan["seeds"] == list(replicate_seeds(11, 2)) and plan["confidence"] == 0.95
    assert "Student's t" in plan["interval"]
    row = plan["frontier"][0]
    interval = row["intervals"]["p95_wait"]
    assert interval["n"] == 2 and interval["low"] <= interval["mean"] <= interval["high"]
    assert row["metrics"]["p95_wait"] == interval["mean"]
    assert plan["search"]["runs"] == 4


def test_compare_cli_with_seeds(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cmp"
    args = [
        "compare",
        str(tiny),
        "-p",
        "fifo",
        "-p",
        "fair",
        "--seeds",
        "2",
        "--seed",
        "9",
        "--workers",
        "1",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "±" in printed and "start wait p95" in printed
    summary = json.loads((out / "compare.json").read_text())
    fifo = summary["fifo"]
    assert fifo["seeds"] == list(replicate_seeds(9, 2)) and fifo["report"]["seed"] == 9
    assert fifo["metrics"]["p95_wait"] == fifo["intervals"]["p95_wait"]["mean"]
    assert len(fifo["intervals"]["p95_wait"]["values"]) == 2
    assert (out / "compare_cdf.png").stat().st_size > 0
