"""Money in the simulator (issue #16): the shipped ``budgets`` scenario end to end, and the parts
it is made of (the ``money`` block's validation, per-job budgets in workloads, the ``plan`` cost SLO).

The expected figures are worked out by hand from ``simulator/scenarios/budgets``:

- prices: one flavor ``h100`` at $6.00 per GPU-hour on demand, i.e. $0.10 per GPU-minute; the
  reserved tier is 0.60 of it, $3.60 per GPU-hour (the packaged price book's multiplier).
  research-cq's own quota (4 GPUs) is charged at reserved, what research borrows from ops-cq
  (nominal 12) at ops-cq's rate, on demand;
- times are seconds from the start, Saturday 2026-01-10 00:00 UTC; reviews every 300 s;
- r-train-a (4 GPUs from 0 s, nominal): 4 × 3.60 = $14.40/h; r-train-b (4 GPUs from 300 s,
  borrowed): 4 × 6 = $24/h; r-probe (1 GPU from 600 s, borrowed): $6/h;
- research's week so far, once r-probe is gone (its $20 spent): S(t) = 14.40 t/3600 +
  24 (t − 300)/3600 + 20 = 38.4 t/3600 + 18 dollars.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from budcore_simulator.build import build_simulation
from budcore_simulator.cli import PRICE_BOOK, USAGE_RECORDS, builtin_scenarios, default_scenario_path
from budcore_simulator.money import MoneySpec, flavor_price_book, peak_spend
from budcore_simulator.scenario import load_scenario, scenario_from_document
from budcore_simulator.status import SimJobStatus
from budcore_simulator.sweep import (
    check_slos,
    evaluate_plan,
    metrics_of,
    parse_slo,
    parse_vary,
    plan_specs,
    run_all,
)
from budcore_simulator.workload.generators import GeneratorSpec, generate_arrivals
from budcore_simulator.workload.model import arrival_to_job
from budcore_simulator.workload.traces import TraceSpec, open_trace
from support.scenarios import SMALL

from budcore.cli import main
from budcore.config.yamlsource import load_yaml_text
from budcore.cost.chargeback import ChargebackPolicy, chargeback, record_charge, round_money
from budcore.cost.metering import meter
from budcore.cost.prices import default_price_book, load_price_book
from budcore.cost.usagefile import read_usage
from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.domain.job import BudgetAction

BUDGETS = default_scenario_path().parent.parent / "budgets" / "scenario.yaml"
START = datetime(2026, 1, 10, tzinfo=UTC)  # the scenario's start, a Saturday
DAY = 86400
WEEK_ROLLS_S = 2 * DAY  # Saturday 00:00 + 2 days = Monday 2026-01-12 00:00, a new ISO week


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``budcore simulate budgets`` (the built-in scenario by name), once."""
    out = tmp_path_factory.mktemp("budgets")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["simulate", "budgets", "--out", str(out), "--no-plots"]) == 0
    return out, printed.getvalue()


def jobs(out: Path) -> dict[str, dict[str, str]]:
    with (out / "jobs.csv").open() as f:
        return {row["job_id"]: row for row in csv.DictReader(f)}


def money_block(out: Path) -> dict[str, Any]:
    block: dict[str, Any] = json.loads((out / "report.json").read_text())["money"]
    return block


def cents(value: Fraction) -> Decimal:
    """What jobs.csv shows for an exact amount (half-even cents)."""
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_EVEN
    )


# The scenario end to end ----------------------------------------------------------------------


def test_budgets_is_a_builtin_scenario_and_prints_its_money(simulated: tuple[Path, str]) -> None:
    out, printed = simulated
    assert "budgets" in builtin_scenarios()
    assert {p.name for p in out.iterdir()} >= {
        "report.json",
        "jobs.csv",
        "usage.csv",
        USAGE_RECORDS,
        PRICE_BOOK,
    }
    assert "money: spend $754.80 (ops $100.00, research $654.80)" in printed
    actions = "guard: 2 refused, 3 warned; 6 budget alert(s); 2 pause(s), 2 resumption(s), 1 cancellation(s)"
    assert actions in printed
    assert "pause r-train-a at 12.6h: budget: paused: research:week:calendar spent 501.20 of 500" in printed


def test_the_guard_refuses_ops_on_quota_then_on_budget(simulated: tuple[Path, str]) -> None:
    out, _ = simulated
    refusals = {r["job_id"]: r for r in money_block(out)["refusals"]}
    assert list(refusals) == ["ops-huge", "ops-late"]
    # ops-huge (2 pods × 6 GPUs) at 0 s: 0 + 12 >= 0.9 × 12 = 10.8 of ops-cq's quota. Its $72 would
    # fit ops's $100 day (nothing spent or committed yet): refused on quota alone.
    huge = refusals["ops-huge"]
    assert huge["time_s"] == 0.0 and huge["cluster_queue"] == "ops-cq"
    assert huge["reason"].endswith("nvidia.com/gpu: 0 used + 12 requested = 12 >= 90% of quota 12 (10.8)")
    # ops-late (1 GPU, 1 h = $6) at 3600 s: ops-etl and ops-report have metered 1 h each ($12) and
    # are committed to (60 − 6) + (40 − 6) = $88 more: 12 + 88 + 6 = 106 > 100. (ops-etl's $60 and
    # ops-report's $40 were admitted at 0 s: 60 + 40 = 100 reaches the budget, which is allowed.)
    late = refusals["ops-late"]
    assert late["time_s"] == 3600.0
    assert late["reason"].endswith(
        "budget ops:day:calendar: spent and committed 100.00 + projected 6.00 = 106.00 > 100.00"
    )
    rows = jobs(out)
    for job_id in refusals:
        row = rows[job_id]
        assert (row["status"], row["cluster_queue"], row["admit_s"]) == ("refused", "ops-cq", "")
        assert row["reason"].startswith("refused by the submission guard: job ")
    report = json.loads((out / "report.json").read_text())
    assert report["statuses"]["refused"] == 2 and money_block(out)["counts"]["refused"] == 2


def test_research_in_warn_mode_is_queued_with_warnings(simulated: tuple[Path, str]) -> None:
    out, _ = simulated
    warnings = {w["job_id"]: w for w in money_block(out)["guard_warnings"]}
    assert [(w["job_id"], w["time_s"]) for w in warnings.values()] == [
        ("r-train-a", 0.0),
        ("r-train-b", 300.0),
        ("r-probe", 600.0),
    ]
    # Every research job passes 90% of research-cq's 4 GPUs (used counts what it borrows).
    assert "nvidia.com/gpu: 8 used + 1 requested = 9 >= 90% of quota 4 (3.6)" in warnings["r-probe"]["reason"]
    # r-probe's own limit: 1 GPU × 10 h at research-cq's reserved $3.60 = $36 > $20.
    assert warnings["r-probe"]["reason"].endswith(
        "budget_limit: spent 0.00 + projected 36.00 = 36.00 > 20.00"
    )
    # The weekly budget is not breached at submission: at 600 s research spent 4×600×3.6/3600 = 2.40
    # + 4×300×6/3600 = 2.00, committed (230.40 − 2.40) + (230.40 − 2.00) = 456.40, + 36 = 496.80 <= 500.
    assert "research:week" not in warnings["r-probe"]["reason"]
    rows = jobs(out)
    assert all(rows[job_id]["admit_s"] == rows[job_id]["submit_s"] for job_id in warnings)


def test_warn_alerts_fire_at_80_and_100_percent(simulated: tuple[Path, str]) -> None:
    out, _ = simulated
    alerts = [
        (a["time_s"], a["subject"], a["level"], a["spent"], a["limit"]) for a in money_block(out)["alerts"]
    ]
    assert alerts == [
        # r-probe: $16 after 9600 s of $6/h, from 600 s: the review at 10200 s; $20 at 12600 s.
        (10200.0, "job:r-probe", "80%", "16.00", "20.00"),
        (12600.0, "job:r-probe", "100%", "20.00", "20.00"),
        # ops's day: both jobs at $12/h reach $80 when ops-report ends (24000 s: 40 + 40); ops-etl
        # ends at 36000 s: 40 + 60 = $100.
        (24000.0, "ops:day:calendar", "80%", "80.00", "100.00"),
        # research's week: S(t) = 400 at t = 382 × 3600 / 38.4 = 35812.5 s, review at 36000 s:
        # 38.4 × 10 + 18 = 402.00.
        (36000.0, "research:week:calendar", "80%", "402.00", "500.00"),
        (36000.0, "ops:day:calendar", "100%", "100.00", "100.00"),
        # S(t) = 500 at t = 482 × 3600 / 38.4 = 45187.5 s, review at 45300 s: 38.4 × 12.5833 + 18.
        (45300.0, "research:week:calendar", "100%", "501.20", "500.00"),
    ]


def test_a_job_is_cancelled_at_its_budget_limit(simulated: tuple[Path, str]) -> None:
    out, _ = simulated
    probe = jobs(out)["r-probe"]
    # 1 GPU at $6/h from 600 s reaches its $20 after 12000 s: the review at 12600 s cancels it.
    assert (probe["status"], probe["end_s"], probe["cost"]) == ("cancelled", "12600.0", "20.00")
    assert probe["reason"] == "budget: cancelled: job:r-probe spent 20.00 of 20.00"
    stops = money_block(out)["stops"]
    assert stops[0] == {
        "time_s": 12600.0,
        "job_id": "r-probe",
        "tenant": "research",
        "action": "cancel",
        "subject": "job:r-probe",
        "spent": "20.00",
        "limit": "20.00",
        "reason": "budget: cancelled: job:r-probe spent 20.00 of 20.00",
    }


def test_a_pause_budget_pauses_jobs_until_the_week_rolls_over(simulated: tuple[Path, str]) -> None:
    out, _ = simulated
    block = money_block(out)
    paused = [(s["time_s"], s["job_id"], s["action"], s["spent"]) for s in block["stops"][1:]]
    assert paused == [(45300.0, "r-train-a", "pause", "501.20"), (45300.0, "r-train-b", "pause", "501.20")]
    # Monday 00:00 starts a new week with nothing spent in it: both resume at that review.
    assert [(r["time_s"], r["job_id"]) for r in block["resumes"]] == [
        (WEEK_ROLLS_S, "r-train-a"),
        (WEEK_ROLLS_S, "r-train-b"),
    ]
    assert block["counts"] == {
        "refused": 2,
        "guard_warnings": 3,
        "alerts": 6,
        "paused": 2,
        "cancelled": 1,
        "resumed": 2,
        "usage_records": 7,
    }
    rows = jobs(out)
    a, b = rows["r-train-a"], rows["r-train-b"]
    # Paused at 45300 s like a preemption: r-train-a (checkpoint every 1 h) kept 12 h of its 45300 s
    # run and lost 2100 s × 4 GPUs; r-train-b (every 2 h) kept 6 × 7200 of its 45000 s, lost 1800 × 4.
    assert (a["lost_gpu_s"], b["lost_gpu_s"]) == ("8400.0", "7200.0")
    assert (a["lost_cost"], b["lost_cost"]) == ("8.40", "12.00")  # 2100×4×3.6/3600, 1800×4×6/3600
    # 16 h − 12 h = 4 h left each after the resumption at 172800 s: both complete at 187200 s.
    assert (a["status"], a["end_s"], b["status"], b["end_s"]) == (
        "completed",
        "187200.0",
        "completed",
        "187200.0",
    )
    # r-train-a: 45300 s + 4 h of 4 GPUs at $3.60 = 181.20 + 57.60; r-train-b: 45000 s + 4 h of
    # 4 GPUs at $6 = 300.00 + 96.00.
    assert (a["cost"], b["cost"]) == ("238.80", "396.00")
    assert a["preemptions"] == b["preemptions"] == "0"  # a budget pause is not a preemption


def test_the_spend_series_adds_up(simulated: tuple[Path, str]) -> None:
    out, _ = simulated
    block = money_block(out)
    series = block["series"]
    times = series["time_s"]
    # Reviews every 300 s from the first start until the last job completes (also while the jobs
    # wait, paused, for the week to roll over), then the end of the run (60 h).
    assert times[:3] == [300.0, 600.0, 900.0] and times[-1] == 60 * 3600.0
    assert all(t % 300 == 0 for t in times) and WEEK_ROLLS_S in times
    tenants = series["by_tenant"]
    for i, total in enumerate(series["total"]):
        assert Decimal(total) == sum(Decimal(values[i]) for values in tenants.values())
    for values in tenants.values():
        assert [Decimal(v) for v in values] == sorted(Decimal(v) for v in values)  # cumulative
    at_pause = times.index(45300.0)
    assert (
        tenants["research"][at_pause] == series["by_budget"]["research:week:calendar"][at_pause] == "501.20"
    )
    # The last point is the run's spend: research's new week has 57.60 + 96.00; Monday has no ops spend.
    assert (
        {t: v[-1] for t, v in tenants.items()}
        == block["spend"]["by_tenant"]
        == {
            "ops": "100.00",
            "research": "654.80",
        }
    )
    assert {k: v[-1] for k, v in series["by_budget"].items()} == {
        "ops:day:calendar": "0.00",
        "research:week:calendar": "153.60",
    }
    assert block["spend"]["total"] == "754.80"
    # Highest spend in one calendar period: research's first week (and Saturday) 501.20.
    assert block["spend"]["peak"] == {
        "day": {"ops": "100.00", "research": "501.20"},
        "week": {"ops": "100.00", "research": "501.20"},
        "month": {"ops": "100.00", "research": "654.80"},
    }


def test_usage_records_add_up_to_the_report(simulated: tuple[Path, str]) -> None:
    out, _ = simulated
    records = read_usage(out / USAGE_RECORDS)
    book = load_price_book(out / PRICE_BOOK)
    policy = ChargebackPolicy({"research-cq": "reserved"})
    per_job: dict[str, Fraction] = {}
    for record in records:
        charge = record_charge(record, book, policy)
        assert charge is not None
        per_job[record.job_id] = per_job.get(record.job_id, Fraction(0)) + charge
    rows = jobs(out)
    assert {job_id: str(cents(total)) for job_id, total in per_job.items()} == {
        job_id: row["cost"] for job_id, row in rows.items() if row["status"] != "refused"
    }
    report = json.loads((out / "report.json").read_text())
    assert sum(cents(v) for v in per_job.values()) == Decimal(report["cost"]["total"]) == Decimal("754.80")
    # Each record's tier is the one it is charged at, so plain metering agrees with the chargeback.
    assert meter(records, book).total.exact_cost == sum(per_job.values())
    # Borrowed usage is research-cq's, lent by ops-cq, charged at ops-cq's (on-demand) rate and
    # credited to it: r-train-b 300 + 96 and r-probe 20 = 416.00.
    borrowed = [(r.job_id, r.devices, r.lender) for r in records if r.borrowed]
    assert borrowed == [("r-train-b", 4, "ops-cq"), ("r-probe", 1, "ops-cq"), ("r-train-b", 4, "ops-cq")]
    nominal_a = [r for r in records if r.job_id == "r-train-a"]
    assert {(r.tier, r.cluster_queue, r.borrowed) for r in nominal_a} == {("reserved", "research-cq", False)}
    lines = chargeback(records, book, policy).lines
    assert round_money(lines["research-cq"].borrowed_charges) == round_money(lines["ops-cq"].credited)
    assert round_money(lines["ops-cq"].credited) == Decimal("416.00")
    assert money_block(out)["chargeback"]["ops-cq"]["credited"] == "416.00"


def test_the_run_is_deterministic(simulated: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = simulated
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["simulate", str(BUDGETS), "--out", str(tmp_path), "--no-plots", "--format", "json"]) == 0
    for name in ("report.json", "jobs.csv", USAGE_RECORDS, PRICE_BOOK):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


# Without a money block ---------------------------------------------------------------------------


def test_without_a_money_block_nothing_is_guarded_or_metered(tmp_path: Path) -> None:
    """The same jobs without ``money``: nothing refused or paused, costs at the flavor's price."""
    text = BUDGETS.read_text()
    path = tmp_path / "scenario.yaml"
    path.write_text(text[: text.index("money:")] + text[text.index("workload:") :])
    (tmp_path / "workload.csv").write_text(
        (BUDGETS.parent / "workload.csv").read_text().replace("20.00,cancel", ",")
    )
    result = build_simulation(load_scenario(path)).run()
    assert result.money is None
    statuses = {r.arrival.job_id: r.status for r in result.records}
    assert SimJobStatus.REFUSED not in statuses.values() and SimJobStatus.PAUSED not in statuses.values()
    assert statuses["ops-late"] is SimJobStatus.COMPLETED


def test_a_job_budget_limit_without_a_money_block_is_still_reviewed(tmp_path: Path) -> None:
    """A generator class's ``budget_limit``/``budget_action``: every job of it carries them, and
    without a ``money`` block the run still reviews them (no guard): a 1-GPU job at $3.50/h with a
    $1 limit reaches it after 1 × 3600 / 3.5 = 1028.6 s, so the review at 1200 s cancels it."""
    path = tmp_path / "scenario.yaml"
    path.write_text(
        SMALL.replace(
            """        gpus: {1: 0.6, 2: 0.2, 4: 0.1, 8: 0.1}""",
            """        gpus: 1
        count: 1
        runtime: {kind: fixed, value: 2h}
        budget_limit: "1.00"
        budget_action: cancel""",
        ).replace("        runtime: {kind: exponential, mean: 30m}\n", "")
    )
    loaded = load_scenario(path)
    assert loaded.money is None
    result = build_simulation(loaded).run()
    (record,) = result.records
    assert record.status is SimJobStatus.CANCELLED
    assert record.end_s is not None and record.end_s - record.arrival.submit_s <= 1200
    assert record.reason.startswith("budget: cancelled: job:train-0 spent ")
    assert result.money is not None and not result.money.options.declared
    assert not result.money.options.guard


def test_generated_and_traced_jobs_carry_their_budget() -> None:
    spec = GeneratorSpec.model_validate(
        {
            "classes": [
                {
                    "name": "probe",
                    "tenant": "team",
                    "local_queue": "main",
                    "arrivals": {"kind": "fixed", "interval": 60},
                    "runtime": {"kind": "fixed", "value": 60},
                    "count": 2,
                    "budget_limit": "12.50",
                    "budget_action": "pause",
                }
            ]
        }
    )
    arrivals = list(generate_arrivals(spec, 0))
    assert [(a.budget_limit, a.budget_action) for a in arrivals] == [(Decimal("12.50"), "pause")] * 2
    job = arrival_to_job(arrivals[0], START)
    assert (job.budget_limit, job.budget_action) == (Decimal("12.50"), BudgetAction.PAUSE)
    trace = open_trace(TraceSpec(format="budcore", path="workload.csv"), BUDGETS.parent)
    probe = next(a for a in trace if a.job_id == "r-probe")
    assert (probe.budget_limit, probe.budget_action) == (Decimal("20.00"), "cancel")


@pytest.mark.parametrize(
    ("cells", "field", "message"),
    [
        ("-5,", "budget_limit", "must be a finite amount >= 0"),
        ("ten,", "budget_limit", "not an amount of money"),
        ("5,stop", "budget_action", "unknown budget action 'stop'"),
    ],
)
def test_a_bad_budget_in_a_trace_names_its_column(
    tmp_path: Path, cells: str, field: str, message: str
) -> None:
    (tmp_path / "jobs.csv").write_text(
        f"job_id,submit_s,runtime_s,gpus_per_pod,tenant,local_queue,budget_limit,budget_action\nj,0,60,1,t,q,{cells}\n"
    )
    trace = open_trace(TraceSpec(format="budcore", path="jobs.csv", strict=True), tmp_path)
    with pytest.raises(ValidationError) as caught:
        list(trace)
    assert (caught.value.path, caught.value.line) == (field, 2) and message in caught.value.message


# The money block's validation --------------------------------------------------------------------

MONEY_SCENARIO = SMALL.replace("workload:", "{money}\nworkload:")


@pytest.mark.parametrize(
    ("money", "path", "message"),
    [
        (
            'money:\n  budgets:\n    - {tenant: team, amount: "-5", period: week}',
            "money.budgets[0].amount",
            "must be a finite amount >= 0",
        ),
        (
            'money:\n  budgets:\n    - {tenant: team, amount: "5", period: fortnight}',
            "money.budgets[0].period",
            "",
        ),
        (
            'money:\n  budgets:\n    - {tenant: team, amount: "5", period: day, timezone: Mars/Olympus}',
            "money.budgets[0].timezone",
            "unknown time zone",
        ),
        (
            'money:\n  budgets:\n    - {tenant: team, amount: "5", period: day}\n'
            '    - {tenant: team, amount: "9", period: day, action: pause}',
            "money.budgets[1]",
            "budget team:day:calendar is also budgets[0]",
        ),
        (
            'money:\n  budgets:\n    - {tenant: ghost, amount: "5", period: day}',
            "money.budgets[0].tenant",
            "tenant 'ghost' has no LocalQueue",
        ),
        ("money:\n  tiers: {team: gold}", "money.tiers.team", "tier 'gold' is not in the price book"),
        ("money:\n  tiers: {elsewhere: spot}", "money.tiers.elsewhere", "neither a ClusterQueue nor cohort"),
        ("money:\n  guard: {quota_threshold: 1.5}", "money.guard.quota_threshold", "must be in (0, 1]"),
        (
            'money:\n  guard: {overrides: {"team": {mode: warn}}}',
            "money.guard.overrides.team",
            "tenant:<name>",
        ),
        (
            'money:\n  guard: {overrides: {"cq:nope": {mode: warn}}}',
            "money.guard.overrides.cq:nope",
            "no ClusterQueue",
        ),
        ("money:\n  guard: {mode: shout}", "money.guard.mode", ""),
        ("money:\n  review_every: 0", "money.review_every", ""),
        ("money:\n  budget: []", "money.budget", "unknown field"),
    ],
)
def test_money_block_errors_name_the_file_line_and_field(
    tmp_path: Path, money: str, path: str, message: str
) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(MONEY_SCENARIO.replace("{money}", money))
    with pytest.raises(ValidationError) as caught:
        load_scenario(scenario)
    error = caught.value.errors[0] if isinstance(caught.value, ValidationErrors) else caught.value
    assert error.path == path and message in error.message
    money_line = MONEY_SCENARIO.splitlines().index("{money}") + 1
    assert error.source == str(scenario) and error.line is not None and error.line >= money_line


def test_money_block_maps_to_the_core_policy() -> None:
    spec = MoneySpec.model_validate(
        {
            "guard": {
                "mode": "warn",
                "quota_threshold": "0.8",
                "comparator": ">",
                "overrides": {"cq:x": {"mode": "reject"}},
            },
            "budgets": [
                {"tenant": "a", "amount": 10, "period": "month", "calendar": False, "action": "cancel"}
            ],
            "review_every": "1m",
        }
    )
    policy = spec.policy()
    assert (policy.mode, policy.quota_threshold, policy.comparator) == ("warn", Decimal("0.8"), ">")
    assert policy.rules("a", "x").mode == "reject"
    (budget,) = policy.budgets
    assert (budget.key, budget.amount, budget.action) == ("a:month:rolling", Decimal(10), BudgetAction.CANCEL)
    assert spec.review_every == 60.0
    assert MoneySpec.model_validate({"guard": False}).guard is None
    assert MoneySpec.model_validate({"guard": True}).guard == MoneySpec().guard


def test_flavor_price_book_prices_flavors_by_name_in_every_tier() -> None:
    base = default_price_book()
    book = flavor_price_book({"h100": Decimal("6.00"), "spot-a100": Decimal("1.00")}, base, "on-demand")
    assert book.price("h100") == Decimal("6.00") and book.price("h100", "reserved") == Decimal("3.6000")
    assert book.price("spot-a100", "spot") == Decimal("0.4000")
    assert book.price("a100") is None  # a flavor the simulation does not price
    # Flavor prices given in the spot tier: on-demand is 1 / 0.40 of them.
    spot = flavor_price_book({"h100": Decimal("2.00")}, base, "spot")
    assert spot.document.default_tier == "spot" and spot.price("h100", "on-demand") == Decimal(5)
    with pytest.raises(ValidationError, match="price as one accelerator"):
        flavor_price_book({"h100": Decimal(1), "nvidia-h100-80gb": Decimal(2)})


# The plan cost SLO -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "metric", "op", "value"),
    [
        ("tenant=research:spend<$5000/week", "spend:research/week", "<", 5000.0),
        ("tenant=research:spend<=5000/day", "spend:research/day", "<=", 5000.0),
        (" tenant = ops : spend <= $ 1,250.50 / month ", "spend:ops/month", "<=", 1250.5),
    ],
)
def test_cost_slos_parse(text: str, metric: str, op: str, value: float) -> None:
    slo = parse_slo(text)
    assert (slo.metric, slo.op, slo.value) == (metric, op, value)
    assert slo.tenant == metric.split(":")[1].split("/")[0] and slo.period == metric.rsplit("/")[-1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tenant=research:spend<$5000/fortnight", "unknown period 'fortnight'"),
        ("tenant=research:spend>$5000/week", "a spend SLO is a cap"),
        ("tenant=research:spend<$lots/week", "is not an amount of money"),
        ("tenant=research:spend<$-5/week", "the amount must be a finite amount >= 0"),
        ("tenant=Research!:spend<$5/week", "tenant:"),
        ("tenant=research:cost<5/week", "expected tenant=<name>:spend<$<amount>/<day|week|month>"),
        ("tenant=research:spend<$5", "expected tenant=<name>:spend"),
    ],
)
def test_cost_slo_parse_errors_name_the_option(text: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_slo(text)
    assert caught.value.path == "--slo" and message in caught.value.message


def test_cost_slo_metric_is_the_peak_spend_of_the_report(simulated: tuple[Path, str]) -> None:
    out, _ = simulated
    report = json.loads((out / "report.json").read_text())
    tight, exact, daily = (
        parse_slo(t)
        for t in (
            "tenant=research:spend<$500/week",  # 501.20 is over it
            "tenant=research:spend<=$501.20/week",
            "tenant=ops:spend<=100/day",
        )
    )
    metrics = metrics_of(report, [tight, exact, daily])
    assert metrics["spend:research/week"] == 501.2 and metrics["spend:ops/day"] == 100.0
    assert not tight.holds(metrics) and exact.holds(metrics) and daily.holds(metrics)
    assert metrics_of({**report, "money": None}, [tight])["spend:research/week"] is None
    assert peak_spend((), lambda record: None) == {"day": {}, "week": {}, "month": {}}


def test_plan_meters_every_fleet_for_a_cost_slo() -> None:
    """A scenario without money is metered when a cost SLO asks; a tenant it does not have is refused."""
    (document,) = load_yaml_text(SMALL, "small.yaml")
    loaded = scenario_from_document(document, Path("."))
    slo = parse_slo("tenant=team:spend<$1000/day")
    check_slos(loaded, [slo])
    with pytest.raises(ValidationError, match="tenant 'nobody' has no LocalQueue"):
        check_slos(loaded, [parse_slo("tenant=nobody:spend<$1/day")])
    points = plan_specs(loaded, [parse_vary("pool.a100.nodes=2")], meter=True)
    assert all(spec.scenario.money is not None and spec.scenario.money.guard is None for _, spec in points)
    results = run_all([spec for _, spec in points], workers=1)
    (point,) = evaluate_plan(points, results, [slo])
    spend = point.metrics["spend:team/day"]
    assert spend is not None and 0 < spend < 1000 and point.passed
    # The metric is the report's cost: a 4 h run within one day costs what its jobs cost.
    assert spend == float(results[0]["report"]["money"]["spend"]["peak"]["day"]["team"])


def test_plan_command_with_a_cost_slo(tmp_path: Path) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(
            [
                "plan",
                "budgets",
                "--vary",
                "pool.h100.nodes=2",
                "--slo",
                "tenant=research:spend<=$501.20/week",
                "--slo",
                "tenant=research:spend<$500/week",
                "--workers",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
    assert code == 0
    plan = json.loads((tmp_path / "plan.json").read_text())
    (row,) = plan["frontier"]
    assert row["metrics"]["spend:research/week"] == 501.2
    assert row["failed_slos"] == ["tenant=research:spend<$500/week"] and plan["cheapest"] is None


LENDERS = """\
name: lenders
horizon: 2h
fleet:
  pools:
    - {name: a100, product: NVIDIA-A100-SXM4-80GB, gpus_per_node: 8, nodes: 1, price_per_gpu_hour: "5.00"}
queues:
  documents:
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: a100},
       spec: {nodeLabels: {budcore.io/pool: a100}}}
{queues}
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: LocalQueue, metadata: {name: main, namespace: team},
       spec: {clusterQueue: borrower}}
money:
  guard: false
  tiers: {big: spot}
workload:
  generators:
    classes:
      - {name: job, tenant: team, local_queue: main, count: 1, gpus: 4, arrivals: {kind: fixed, interval: 1h},
         runtime: {kind: fixed, value: 1h}}
"""


CLUSTER_QUEUE = """\
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ClusterQueue
      metadata: {name: NAME}
      spec:
        cohortName: org
        namespaceSelector: {}
        resourceGroups:
          - coveredResources: [nvidia.com/gpu, cpu, memory]
            flavors:
              - name: a100
                resources:
                  - {name: nvidia.com/gpu, nominalQuota: GPUS}
                  - {name: cpu, nominalQuota: 64}
                  - {name: memory, nominalQuota: 1Ti}"""


def _cluster_queue(name: str, gpus: int) -> str:
    return CLUSTER_QUEUE.replace("NAME", name).replace("GPUS", str(gpus))


def test_borrowed_gpus_are_split_over_the_lenders_in_proportion(tmp_path: Path) -> None:
    """A queue with no GPUs of its own borrows all 4: its neighbours lend in proportion to their
    unused quota, 6 : 2, so ``big`` lends 3 GPUs and ``small`` 1 (largest remainder, whole GPUs).
    ``big`` is in the spot tier (0.40 × $5 = $2/h): its 3 GPU-hours cost $6, small's 1 GPU-hour
    on demand $5; the job costs $11, all of it borrowed, credited to the lenders."""
    queues = "\n".join(_cluster_queue(n, g) for n, g in (("borrower", 0), ("big", 6), ("small", 2)))
    path = tmp_path / "scenario.yaml"
    path.write_text(LENDERS.replace("{queues}", queues))
    result = build_simulation(load_scenario(path)).run()
    assert result.money is not None
    records = result.money.records
    assert [(r.devices, r.borrowed, r.lender, r.tier) for r in records] == [
        (3, True, "big", "spot"),
        (1, True, "small", None),
    ]
    (job,) = result.records
    assert job.status is SimJobStatus.COMPLETED and str(cents(Fraction(job.cost))) == "11.00"
    lines = chargeback(records, result.money.options.book, ChargebackPolicy({"big": "spot"})).lines
    assert {name: str(round_money(line.credited)) for name, line in lines.items()} == {
        "big": "6.00",
        "borrower": "0.00",
        "small": "5.00",
    }
