"""Turning a simulation's raw records into the report capacity planners read.

Everything here is a pure function of a :class:`SimulationResult`; floats are rounded to fixed
decimals and keys sorted, so two runs with the same seed write byte-identical files (wall-clock
figures go to a separate ``run.json``).

Definitions:

- *outcomes* (completed, failed, cancelled, rejected, refused, censored; never admitted, admitted
  but never started; completable): :mod:`.outcomes`, the one definition every output counts with.
- *wait*: submit → first admission; *start wait*: submit → first start (all pods running). A wait
  not over by the end of the run is censored there (or when its job left its queue): ``wait_s``
  and ``start_wait_s`` count it at that time, so starvation shows instead of vanishing, but their
  percentiles are then lower bounds; ``wait_km_s`` and ``start_wait_km_s`` are the Kaplan–Meier
  estimates over the same samples (:mod:`.survival`), ``null`` where not estimable.
  *JCT*: submit → completion; *slowdown*: JCT / runtime.
- *deadline met*: completed by its deadline. A job is a *miss* once that can no longer happen:
  it completed late, it failed or was rejected, or the run went past its deadline without it
  completing. A job still live at the end of the run whose deadline lies after that end is
  *undetermined*, not missed: a longer run could still see it finish in time, so counting it would
  charge the horizon, not the fleet, with the miss. The miss rate is over determined jobs only.
- *completable*: jobs whose ``submit + runtime`` fits before the end of the run, i.e. that could
  have completed had they started the moment they arrived. A job submitted too close to the
  horizon cannot complete on any fleet, so the completion share (``completed / completable``) is
  over these jobs; over all jobs it would be out of reach at every fleet size.
- *money*: each job's ``cost`` is rounded to cents once (what ``jobs.csv`` shows), and every total
  in the report is the sum of those rounded amounts, so the column of ``jobs.csv`` adds up to the
  report's figures exactly.
- *utilisation per flavor*: time-integrated GPUs in use / (GPUs of the flavor's nodes × horizon).
- *ClusterQueue usage*: time-integrated GPUs in use / (nominal GPUs × horizon), which exceeds
  100% when the queue borrows; ``usage.csv`` has it over time too (``cq:<name>:pct_nominal``,
  GPUs in use at each sample as a percentage of the nominal GPUs; empty for a queue without any).
- *Jain's index* over tenants of x_t = GPU-seconds received / GPU-seconds demanded (1 = fair).
- *finish-time fairness ρ* (Themis): JCT / the time the job would take alone on a 1/N share of
  the fleet, N = number of tenants; ρ ≤ 1 means the job did no worse than under static partitioning.
- *timeout*: a job stopped at its maximum duration (it failed); *runaway alert*: a job whose time
  running passed ``runaway_factor`` × its declared runtime (it kept running). Both are in the
  ``time`` block, present when the run used time limits, windows, deadline-aware ordering or an
  explicit ``runaway_factor``, or some job ran away (so a scenario using none reports as before).
- *ETA error*: the actual first start minus the start the scheduler estimated at submission
  (positive: later than estimated), for the jobs measured (``eta`` block, only when measured).
- *reservation use*: per capacity booking, the room it booked over ``[start, end)`` (cut at the end
  of the run) in unit-hours of its resource (GPU-hours for GPUs), how much of it the jobs it serves
  used while running (at most the booked quantity at any instant:
  :func:`budcore.scheduling.reservations.reservation_use`), the rest unused, and the workloads
  evicted (and requeued) to make room at its start. Unused booked time is charged to the owner at
  the flavor's price per GPU-hour (``reservations`` block and ``cost.unused_booked*``, only with
  bookings; kept apart from the jobs' cost so ``jobs.csv`` still adds up to ``cost.total``).
- *pipeline makespan*: a pipeline run's start to its end; *critical-path wait*: over the steps of
  the run's critical path (the chain that decided its end, :func:`budcore.pipeline.estimate_run` on
  the finished run), the time their jobs spent queued or with pods pending between submission and
  their step's end; both over the runs that succeeded (``pipelines`` block, only with pipelines).
  The jobs of pipeline steps count in every job figure as well.
- *money* (``money`` block, only with a scenario's ``money`` block or a job with a
  ``budget_limit``): the spend of each tenant is what its usage records are charged (the
  chargeback rule: nominal usage at its ClusterQueue's tier, borrowed usage at its lender's);
  a money cell is an exact amount rounded to cents once (half up), and a total is the sum of the
  rounded cells it totals. ``peak_spend`` is, per period kind, a tenant's highest spend in one
  calendar period (UTC day, ISO week from Monday, month) within the run: what the ``plan`` cost SLO
  reads.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from budcore.cost.chargeback import ChargebackPolicy, chargeback, round_money
from budcore.cost.prices import money
from budcore.domain.job import BudgetAction

from .engine import BookingUse, JobRecord, SimulationResult
from .money import LISTED, GuardNote, peak_spend
from .outcomes import NOT_QUEUED, JobOutcomes, WaitSamples, wait_samples
from .outcomes import completable as completable  # moved to .outcomes with the other counts
from .sharing import gpu_sharing_figures
from .status import FINAL_STATUSES, SimJobStatus
from .survival import kaplan_meier
from .workload.traces import TraceReport

if TYPE_CHECKING:
    from .money import MoneyOutcome
    from .pipelines import RunOutcome

RECORD_FIELDS = (
    "job_id",
    "job_class",
    "tenant",
    "local_queue",
    "cluster_queue",
    "priority",
    "job_type",
    "status",
    "submit_s",
    "admit_s",
    "start_s",
    "end_s",
    "runtime_s",
    "estimated_runtime_s",
    "flavor",
    "gpus",
    "preemptions",
    "evictions",
    "failures",
    "retries",
    "lost_gpu_s",
    "gpu_s",
    "cost",
    "lost_cost",
    "deadline_s",
    "deadline_met",
    "reason",
    "label",
    "last_admit_s",
)


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


_CENT = Decimal("0.01")


def _cents(value: Decimal) -> Decimal:
    """Round an amount to cents (half-even), the one rounding every money figure goes through."""
    return value.quantize(_CENT, rounding=ROUND_HALF_EVEN)


def _money(value: Decimal) -> str:
    return str(_cents(value))


def _sum_cents(values: Iterable[Decimal]) -> Decimal:
    """The sum of amounts each rounded to cents first, so totals equal the sum of the printed rows."""
    return sum((_cents(v) for v in values), Decimal(0))


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "p50": None, "p95": None, "p99": None}
    arr = np.asarray(values, dtype=float)
    p50, p95, p99 = np.percentile(arr, [50, 95, 99], method="linear")
    return {"mean": _r(arr.mean()), "p50": _r(p50), "p95": _r(p95), "p99": _r(p99)}


def deadline_met(record: JobRecord, end_s: float | None) -> bool | None:
    """Whether the job met its deadline: ``True``/``False``, or ``None`` when it has none or it is
    still undetermined at ``end_s``, the end of the run.

    The engine handles every event at or before the horizon, so a job still live at ``end_s``
    whose deadline is at or before it has missed; with a later deadline a longer run could still
    see it finish in time. ``end_s=None`` (the end of the run is unknown) leaves every live job
    undetermined.
    """
    deadline = record.arrival.deadline_s
    if deadline is None:
        return None
    if record.status is SimJobStatus.COMPLETED:
        return record.end_s is not None and record.end_s <= deadline
    if record.status in FINAL_STATUSES:  # failed or rejected: it will never complete
        return False
    if end_s is not None and deadline <= end_s:
        return False
    return None


def survival_figures(samples: WaitSamples) -> dict[str, Any]:
    """A ``*_km_s`` block: Kaplan–Meier percentiles of ``samples`` with their censoring.

    ``p50``/``p95``/``p99`` are the smallest waits at which the estimated CDF reaches the level,
    ``null`` when it never does (too many waits still running at the end): such a percentile lies
    beyond ``beyond_s``, the longest wait followed. ``cdf_at_end`` is the CDF at that point (the
    rest, ``1 - cdf_at_end``, is the censored tail).
    """
    curve = kaplan_meier(samples.durations, samples.observed)
    return {
        "p50": _r(curve.quantile(0.50)),
        "p95": _r(curve.quantile(0.95)),
        "p99": _r(curve.quantile(0.99)),
        "samples": curve.samples,
        "censored": curve.censored,
        "beyond_s": _r(curve.follow_up_s),
        "cdf_at_end": _r(1.0 - curve.final, 4),
    }


def _group_stats(records: Iterable[JobRecord], horizon: float) -> dict[str, Any]:
    records = list(records)
    completed = [r for r in records if r.status is SimJobStatus.COMPLETED and r.end_s is not None]
    # One set of samples per measure for both the plain percentiles and Kaplan–Meier: a wait not
    # ended by the end of the run counts at its censoring time (.outcomes.wait_samples), so a job
    # admitted whose pods never found a node shows its wait until then as time to start, not 0.
    waits = wait_samples(records, horizon, until="admission")
    start_waits = wait_samples(records, horizon, until="start")
    last_waits = [
        (r.last_admitted_s if r.last_admitted_s is not None else max(horizon, r.arrival.submit_s))
        - r.arrival.submit_s
        for r in records
        if r.status not in NOT_QUEUED
    ]
    jcts = [r.end_s - r.arrival.submit_s for r in completed if r.end_s is not None]
    slowdowns = [
        (r.end_s - r.arrival.submit_s) / r.arrival.runtime_s
        for r in completed
        if r.end_s is not None and r.arrival.runtime_s > 0
    ]
    with_deadline = [r for r in records if r.arrival.deadline_s is not None]
    outcomes = [deadline_met(r, horizon) for r in with_deadline]
    missed = outcomes.count(False)
    undetermined = outcomes.count(None)
    determined = len(outcomes) - undetermined
    counts = JobOutcomes.of(records, horizon)
    return {
        "count": len(records),
        "completed": counts.completed,
        "completable": counts.completable,
        "never_admitted": counts.never_admitted,
        "outcomes": counts.as_json(),
        "wait_s": percentiles(waits.durations),
        "wait_last_admission_s": percentiles(last_waits),
        "start_wait_s": percentiles(start_waits.durations),
        "wait_km_s": survival_figures(waits),
        "start_wait_km_s": survival_figures(start_waits),
        "jct_s": percentiles(jcts),
        "slowdown": percentiles(slowdowns),
        "deadlines": len(with_deadline),
        "deadline_misses": missed,
        "deadline_undetermined": undetermined,
        "deadline_miss_rate": _r(missed / determined, 4) if determined else None,
        "preemptions": sum(r.preemptions for r in records),
        "evictions": sum(r.evictions for r in records),
        "failures": sum(r.failures for r in records),
        "gpu_hours": _r(sum(r.gpu_s for r in records) / 3600),
        "gpu_hours_lost": _r(sum(r.lost_gpu_s for r in records) / 3600),
        "lost_cost": _money(_sum_cents(r.lost_cost for r in records)),
        "cost": _money(_sum_cents(r.cost for r in records)),
    }


def _by(records: Sequence[JobRecord], key: Callable[[JobRecord], str], horizon: float) -> dict[str, Any]:
    return _by_key(records, key, lambda group: _group_stats(group, horizon))


def jain_index(values: Sequence[float]) -> float | None:
    if not values:
        return None
    total = sum(values)
    squares = sum(v * v for v in values)
    return None if squares == 0 else total * total / (len(values) * squares)


def _time_stats(records: Sequence[JobRecord]) -> dict[str, Any]:
    return {
        "jobs": len(records),
        "timeouts": sum(1 for r in records if r.timed_out),
        "runaway_alerts": sum(1 for r in records if r.runaway_s is not None),
    }


def time_figures(result: SimulationResult) -> dict[str, Any]:
    """The ``time`` block: timeouts (jobs stopped at their maximum duration) and runaway alerts."""
    records = result.records
    return {
        "runaway_factor": result.runaway_factor,
        **_time_stats(records),
        "by_class": _by_key(records, lambda r: r.arrival.job_class, _time_stats),
    }


def _eta_stats(records: Sequence[JobRecord], etas: Mapping[str, float | None]) -> dict[str, Any]:
    errors: list[float] = []
    no_estimate = not_started = 0
    for r in records:
        estimate = etas[r.arrival.job_id]
        if estimate is None:
            no_estimate += 1
        elif r.start_s is None:
            not_started += 1
        else:
            errors.append(r.start_s - estimate)
    absolute = [abs(e) for e in errors]
    p50 = p95 = None
    if absolute:
        p50, p95 = (float(v) for v in np.percentile(np.asarray(absolute), [50, 95], method="linear"))
    return {
        "measured": len(records),
        "count": len(errors),
        "no_estimate": no_estimate,
        "not_started": not_started,
        "abs_error_p50_s": _r(p50),
        "abs_error_p95_s": _r(p95),
        "mean_error_s": _r(sum(errors) / len(errors)) if errors else None,
    }


def eta_accuracy(result: SimulationResult) -> dict[str, Any] | None:
    """The ``eta`` block (None when the run measured no ETA): estimated vs actual start, per class.

    ``count`` jobs had an estimate and started; ``no_estimate`` got none (the forecast did not
    admit them within its horizon); ``not_started`` got one but had not started by the end.
    Errors are actual first start − estimated start: ``abs_error_p50_s`` / ``abs_error_p95_s`` of
    their absolute values, ``mean_error_s`` signed (positive: jobs start later than estimated).
    """
    etas = result.etas
    if etas is None:
        return None
    measured = [r for r in result.records if r.arrival.job_id in etas]
    return {
        "overall": _eta_stats(measured, etas),
        "by_class": _by_key(measured, lambda r: r.arrival.job_class, lambda g: _eta_stats(g, etas)),
    }


class EtaPoint(NamedTuple):
    """One measured job that got an estimate and started: its estimated and actual start (seconds)."""

    job_id: str
    job_class: str
    estimated: float
    actual: float


def eta_points(result: SimulationResult) -> list[EtaPoint]:
    """The measured jobs that have both an estimated and an actual start, in record order."""
    etas = result.etas or {}
    return [
        EtaPoint(r.arrival.job_id, r.arrival.job_class, estimate, r.start_s)
        for r in result.records
        if r.start_s is not None and (estimate := etas.get(r.arrival.job_id)) is not None
    ]


def _by_key(
    records: Sequence[JobRecord],
    key: Callable[[JobRecord], str],
    stats: Callable[[Sequence[JobRecord]], dict[str, Any]],
) -> dict[str, Any]:
    groups: dict[str, list[JobRecord]] = {}
    for record in records:
        groups.setdefault(key(record), []).append(record)
    return {name: stats(group) for name, group in sorted(groups.items())}


def build_report(result: SimulationResult, *, scenario_name: str = "", seed: int = 0) -> dict[str, Any]:
    records = result.records
    horizon = result.horizon_s
    tenants = sorted({r.arrival.tenant for r in records})
    fleet_gpus = sum(result.flavor_capacity.values())
    share = fleet_gpus / len(tenants) if tenants else 0.0
    received: dict[str, float] = {t: 0.0 for t in tenants}
    demanded: dict[str, float] = {t: 0.0 for t in tenants}
    rho: dict[str, list[float]] = {t: [] for t in tenants}
    for r in records:
        received[r.arrival.tenant] += r.gpu_s - r.lost_gpu_s
        demanded[r.arrival.tenant] += r.arrival.gpu_seconds
        completed = r.status is SimJobStatus.COMPLETED
        if completed and r.end_s is not None and share > 0 and r.arrival.runtime_s > 0:
            isolated = r.arrival.runtime_s * max(1.0, r.gpus / share)
            rho[r.arrival.tenant].append((r.end_s - r.arrival.submit_s) / isolated)
    shares = [received[t] / demanded[t] for t in tenants if demanded[t] > 0]
    cost_by_tenant: dict[str, Decimal] = {}
    cost_by_flavor: dict[str, Decimal] = {}
    for r in records:
        cost = _cents(r.cost)
        cost_by_tenant[r.arrival.tenant] = cost_by_tenant.get(r.arrival.tenant, Decimal(0)) + cost
        if r.flavor:
            cost_by_flavor[r.flavor] = cost_by_flavor.get(r.flavor, Decimal(0)) + cost
    statuses: dict[str, int] = {}
    for r in records:
        statuses[r.status.value] = statuses.get(r.status.value, 0) + 1
    report: dict[str, Any] = {
        "scenario": scenario_name,
        "seed": seed,
        "horizon_s": _r(horizon),
        "jobs": len(records),
        "statuses": dict(sorted(statuses.items())),
        "overall": _group_stats(records, horizon),
        "by_class": _by(records, lambda r: r.arrival.job_class, horizon),
        "by_label": _by(records, lambda r: r.arrival.group, horizon),
        "by_local_queue": _by(records, lambda r: f"{r.arrival.tenant}/{r.arrival.local_queue}", horizon),
        "by_cluster_queue": _by(records, lambda r: r.cluster_queue or "-", horizon),
        "by_tenant": _by(records, lambda r: r.arrival.tenant, horizon),
        "by_priority": _by(records, lambda r: r.arrival.priority_label, horizon),
        "utilisation": {
            "by_flavor": {
                name: _r(result.flavor_gpu_s[name] / (cap * horizon), 4) if cap and horizon else None
                for name, cap in sorted(result.flavor_capacity.items())
            },
            "by_cluster_queue_of_nominal": {
                name: _r(result.cq_gpu_s[name] / (nominal * horizon), 4) if nominal and horizon else None
                for name, nominal in sorted(result.cq_nominal.items())
            },
            "fleet": _r(sum(result.flavor_gpu_s.values()) / (fleet_gpus * horizon), 4)
            if fleet_gpus and horizon
            else None,
            "by_resource": resource_utilisation(result),
            "cluster_queue_usage": cluster_queue_usage(result),
        },
        "fairness": {
            "jain_index_tenants": _r(jain_index(shares), 4),
            "tenant_share_received": {
                t: _r(received[t] / demanded[t], 4) if demanded[t] else None for t in tenants
            },
            "finish_time_fairness_rho": {
                t: {"mean": _r(float(np.mean(v)), 3), "max": _r(max(v), 3)} if v else None
                for t, v in rho.items()
            },
        },
        "cost": {
            "total": _money(sum(cost_by_tenant.values(), Decimal(0))),
            "by_tenant": {k: _money(v) for k, v in sorted(cost_by_tenant.items())},
            "by_flavor": {k: _money(v) for k, v in sorted(cost_by_flavor.items())},
        },
        "engine": {
            "events": result.stats.events,
            "cycles": result.stats.cycles,
            "admissions": result.stats.admissions,
            "preemption_decisions": result.stats.preemption_decisions,
            "preemptions": result.stats.preemptions,
            "evictions": result.stats.evictions,
            "placement_waits": result.stats.placement_waits,
            "pods_ready_timeouts": result.stats.pods_ready_timeouts,
            "node_failures": result.stats.node_failures,
            "controller_restarts": result.stats.controller_restarts,
        },
    }
    if result.quota_only:
        report["quota_only"] = True
    if result.time_report:
        report["time"] = time_figures(result)
    eta = eta_accuracy(result)
    if eta is not None:
        report["eta"] = eta
    if result.reservations:
        bookings = reservation_figures(result.reservations)
        report["reservations"] = bookings
        unused: dict[str, Decimal] = {}
        for figures in bookings.values():
            if figures["unused_cost"] is not None:
                owner = figures["owner"]
                unused[owner] = unused.get(owner, Decimal(0)) + Decimal(figures["unused_cost"])
        report["cost"]["unused_booked"] = _money(sum(unused.values(), Decimal(0)))
        report["cost"]["unused_booked_by_tenant"] = {k: _money(v) for k, v in sorted(unused.items())}
    if result.pipelines is not None:
        report["pipelines"] = pipeline_figures(result.pipelines)
    if result.money is not None:
        report["money"] = money_figures(result.money)
    if result.gpu_sharing is not None:
        report["gpu_sharing"] = gpu_sharing_figures(result.gpu_sharing, sum(r.gpu_s for r in records))
    return report


def _round(value: Fraction) -> str:
    return str(round_money(value))


def _amount(value: Decimal) -> str:
    return str(money(value))


def _percent_level(level: Decimal) -> str:
    return f"{(level * 100).normalize():f}%"


def money_figures(outcome: MoneyOutcome) -> dict[str, Any]:
    """The ``money`` block (see the module docstring and ``OUTPUTS.md``)."""
    options = outcome.options
    policy = options.policy
    book = options.book
    guard: dict[str, Any] | None = None
    if options.guard:
        guard = {
            "mode": policy.mode,
            "quota_threshold": str(policy.quota_threshold),
            "comparator": policy.comparator,
            "overrides": {
                key: {k: str(v) for k, v in vars(o).items() if v is not None}
                for key, o in sorted(policy.overrides.items())
            },
        }
    spent: dict[str, Fraction] = {}
    unpriced: dict[str, int] = {}
    for record in outcome.records:
        charge = outcome.charge(record)
        spent[record.tenant] = spent.get(record.tenant, Fraction(0)) + (charge or 0)
        if charge is None:
            unpriced[record.tenant] = unpriced.get(record.tenant, 0) + record.device_seconds
    by_tenant = {tenant: round_money(spent[tenant]) for tenant in sorted(spent)}
    lines = chargeback(outcome.records, book, ChargebackPolicy(dict(options.tiers))).lines
    tenants = sorted({t for point in outcome.series for t in point.by_tenant})
    keys = [b.key for b in policy.budgets]
    series_tenants = {
        t: [round_money(p.by_tenant.get(t, Fraction(0))) for p in outcome.series] for t in tenants
    }
    stops = [stop for _, stop in outcome.stops]
    return {
        "from_scenario": options.declared,
        "currency": book.currency,
        "price_book": {"default_tier": book.document.default_tier, "tiers": list(book.tiers())},
        "tiers": dict(sorted(options.tiers.items())),
        "review_every_s": _r(options.review_every_s),
        "guard": guard,
        "budgets": {
            b.key: {
                "tenant": b.tenant,
                "amount": _amount(b.amount),
                "period": b.period,
                "calendar": b.calendar,
                "timezone": b.timezone,
                "action": b.action.value,
            }
            for b in policy.budgets
        },
        "counts": {
            "refused": len(outcome.refusals),
            "guard_warnings": len(outcome.warnings),
            "alerts": len(outcome.alerts),
            "paused": sum(1 for s in stops if s.action is BudgetAction.PAUSE),
            "cancelled": sum(1 for s in stops if s.action is BudgetAction.CANCEL),
            "resumed": len(outcome.resumes),
            "usage_records": len(outcome.records),
        },
        "spend": {
            "total": str(sum(by_tenant.values(), Decimal("0.00"))),
            "by_tenant": {t: str(v) for t, v in by_tenant.items()},
            "unpriced_device_hours": {t: _r(s / 3600, 4) for t, s in sorted(unpriced.items())},
            "peak": {
                period: {t: _round(v) for t, v in peaks.items()}
                for period, peaks in peak_spend(outcome.records, outcome.charge).items()
            },
        },
        "chargeback": {
            account: {
                "charged": _round(line.charged),
                "borrowed_charges": _round(line.borrowed_charges),
                "credited": _round(line.credited),
            }
            for account, line in lines.items()
        },
        "series": {
            "time_s": [_r(p.time_s) for p in outcome.series],
            "total": [
                str(sum((series_tenants[t][i] for t in tenants), Decimal("0.00")))
                for i in range(len(outcome.series))
            ],
            "by_tenant": {t: [str(v) for v in values] for t, values in series_tenants.items()},
            "by_budget": {k: [_amount(p.by_budget[k]) for p in outcome.series] for k in keys},
        },
        "refusals": [_note(n) for n in outcome.refusals[:LISTED]],
        "guard_warnings": [_note(n) for n in outcome.warnings[:LISTED]],
        "alerts": [
            {
                "time_s": _r(at),
                "tenant": a.tenant,
                "subject": a.subject,
                "level": _percent_level(a.level),
                "spent": _amount(a.spent),
                "limit": _amount(a.limit),
                "job_id": a.job_id,
            }
            for at, a in outcome.alerts[:LISTED]
        ],
        "stops": [
            {
                "time_s": _r(at),
                "job_id": s.job_id,
                "tenant": s.tenant,
                "action": s.action.value,
                "subject": s.subject,
                "spent": _amount(s.spent),
                "limit": _amount(s.limit),
                "reason": s.reason,
            }
            for at, s in outcome.stops[:LISTED]
        ],
        "resumes": [
            {"time_s": _r(at), "job_id": job_id, "tenant": tenant}
            for at, job_id, tenant in outcome.resumes[:LISTED]
        ],
    }


def _note(note: GuardNote) -> dict[str, Any]:
    return {
        "time_s": _r(note.time_s),
        "job_id": note.job_id,
        "tenant": note.tenant,
        "cluster_queue": note.cluster_queue,
        "reason": note.reason,
    }


def _spread(values: Sequence[float]) -> dict[str, float | None]:
    """``mean``, ``p50``, ``p95`` and ``max`` of ``values`` (all None without values)."""
    if not values:
        return {"mean": None, "p50": None, "p95": None, "max": None}
    arr = np.asarray(values, dtype=float)
    p50, p95 = np.percentile(arr, [50, 95], method="linear")
    return {"mean": _r(arr.mean()), "p50": _r(p50), "p95": _r(p95), "max": _r(arr.max())}


# How many runs that did not succeed the report names, with what stopped them.
_RUNS_NAMED = 10


def _pipeline_stats(outcomes: Sequence[RunOutcome]) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for outcome in outcomes:
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
    succeeded = [o for o in outcomes if o.status == "succeeded"]
    makespans = [o.makespan_s for o in succeeded if o.makespan_s is not None]
    waits = [o.critical_path_wait_s for o in succeeded if o.critical_path_wait_s is not None]
    paths: dict[str, int] = {}
    for outcome in succeeded:
        key = " > ".join(outcome.critical_path)
        paths[key] = paths.get(key, 0) + 1
    total = sum(makespans)
    return {
        "runs": len(outcomes),
        "by_status": dict(sorted(statuses.items())),
        "jobs": sum(o.jobs for o in outcomes),
        "makespan_s": _spread(makespans),
        "critical_path_wait_s": _spread(waits),
        "critical_path_wait_share": _r(sum(waits) / total, 4) if total > 0 else None,
        "critical_paths": dict(sorted(paths.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def pipeline_figures(outcomes: Sequence[RunOutcome]) -> dict[str, Any]:
    """The ``pipelines`` block: every run's figures, per pipeline too, and the runs that did not
    succeed (the first few, in start order, with their message)."""
    ordered = sorted(outcomes, key=lambda o: (o.start_s, o.run_id))
    by_pipeline: dict[str, list[RunOutcome]] = {}
    for outcome in ordered:
        by_pipeline.setdefault(outcome.pipeline_id, []).append(outcome)
    others = [o for o in ordered if o.status != "succeeded"]
    return {
        **_pipeline_stats(ordered),
        "by_pipeline": {name: _pipeline_stats(runs) for name, runs in sorted(by_pipeline.items())},
        "not_succeeded": [
            {"run_id": o.run_id, "status": o.status, "start_s": _r(o.start_s), "message": o.message}
            for o in others[:_RUNS_NAMED]
        ],
    }


_UNIT_HOUR = Decimal(3_600_000)  # milli-unit-seconds in a unit-hour


def _share(used_s: float, amount: float, horizon: float) -> float | None:
    return _r(used_s / (amount * horizon), 4) if amount and horizon else None


def resource_utilisation(result: SimulationResult) -> dict[str, Any]:
    """``utilisation.by_resource``: per resource the ClusterQueues cover, the time-averaged amount
    running pods take on each flavor's nodes over the flavor's capacity, and over the whole fleet
    (``null`` without nodes: a quota-only run has no capacity)."""
    horizon = result.horizon_s
    out: dict[str, Any] = {}
    for resource in result.resources:
        keys = sorted(k for k in result.flavor_resource_s if k[1] == resource)
        capacity = result.flavor_resource_capacity
        used = sum(result.flavor_resource_s[k] for k in keys)
        total = sum(capacity.get(k, 0.0) for k in keys)
        out[resource] = {
            "fleet": None if result.quota_only else _share(used, total, horizon),
            "by_flavor": {
                k[0]: None
                if result.quota_only
                else _share(result.flavor_resource_s[k], capacity.get(k, 0.0), horizon)
                for k in keys
            },
        }
    return out


def cluster_queue_usage(result: SimulationResult) -> dict[str, Any]:
    """``utilisation.cluster_queue_usage``: per resource, the quota the ClusterQueues' admitted
    workloads held, time-averaged, over their nominal quota: ``all`` (summed over the queues with a
    nominal quota of it: Kueue's performance harness's "ClusterQueue usage") and per queue (above 1
    when it borrows; ``null`` without nominal quota)."""
    horizon = result.horizon_s
    out: dict[str, Any] = {}
    for resource in result.resources:
        keys = sorted(k for k in result.cq_nominal_quota if k[1] == resource)
        nominal = result.cq_nominal_quota
        held = result.quota_held_s
        with_nominal = [k for k in keys if nominal[k]]
        out[resource] = {
            "all": _share(
                sum(held.get(k, 0.0) for k in with_nominal), sum(nominal[k] for k in with_nominal), horizon
            ),
            "by_cluster_queue": {k[0]: _share(held.get(k, 0.0), nominal[k], horizon) for k in keys},
        }
    return out


def booking_figures(booking: BookingUse) -> dict[str, Any]:
    """One booking's entry of the ``reservations`` block (see the module docstring)."""
    r, use = booking.reservation, booking.use
    unused_cost = None
    if booking.price is not None:
        unused_cost = _money(booking.price * Decimal(repr(use.unused)) / _UNIT_HOUR)
    return {
        "owner": r.owner,
        "cluster_queue": r.cluster_queue,
        "flavor": r.flavor,
        "resource": r.resource,
        "quantity": _r(r.quantity / 1000),
        "jobs": list(r.job_ids),
        "start_s": _r(booking.start_s),
        "end_s": _r(booking.end_s),
        "booked_hours": _r(use.booked / 3_600_000),
        "used_hours": _r(use.used / 3_600_000),
        "unused_hours": _r(use.unused / 3_600_000),
        "utilisation": _r(use.utilisation, 4) if use.booked else None,
        "evicted_at_start": booking.evicted,
        "unused_cost": unused_cost,
    }


def reservation_figures(bookings: Sequence[BookingUse]) -> dict[str, Any]:
    """The ``reservations`` block: each capacity booking of the run by name."""
    return {b.reservation.name: booking_figures(b) for b in bookings}


def run_figures(result: SimulationResult) -> dict[str, Any]:
    """Wall-clock figures (not deterministic, so kept out of the report)."""
    wall = result.stats.wall_s
    return {
        "wall_s": round(wall, 3),
        "events": result.stats.events,
        "events_per_s": round(result.stats.events / wall, 1) if wall else None,
        "jobs_per_s": round(len(result.records) / wall, 1) if wall else None,
    }


def trace_summary(report: TraceReport) -> dict[str, Any]:
    """One trace's pass in ``report.json`` (``traces``): what was read, used, filtered and skipped."""
    return {
        "source": report.source,
        "rows": report.rows,
        "emitted": report.emitted,
        "filtered": report.filtered,
        "skipped": report.skipped,
        "reordered": report.reordered,
        "skipped_rows": [str(row) for row in report.details],
        "filtered_reasons": dict(sorted(report.filtered_reasons.items())),
        "notes": dict(sorted(report.notes.items())),
    }


def records_csv(records: Sequence[JobRecord], *, end_s: float | None = None) -> str:
    """``jobs.csv``: one row per job (columns in ``OUTPUTS.md``).

    ``end_s`` is the end of the run (``SimulationResult.horizon_s``), which decides whether a live
    job's deadline is already missed or still undetermined, exactly as in :func:`build_report`.
    Without it, the latest time any record mentions stands in: a lower bound of the end, so a
    ``false`` is never wrong, but a job whose deadline falls between that time and the true end is
    left empty instead of ``false``; pass ``end_s`` for the exact column.
    """
    if end_s is None:
        end_s = _latest_time(records)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RECORD_FIELDS)
    for r in records:
        a = r.arrival
        met = deadline_met(r, end_s)
        writer.writerow(
            [
                a.job_id,
                a.job_class,
                a.tenant,
                a.local_queue,
                r.cluster_queue,
                a.priority_label,
                a.job_type,
                r.status.value,
                _r(a.submit_s),
                _r(r.admitted_s),
                _r(r.start_s),
                _r(r.end_s),
                _r(a.runtime_s),
                _r(a.estimate_s) if a.declares_runtime else None,
                r.flavor,
                r.gpus,
                r.preemptions,
                r.evictions,
                r.failures,
                r.retries,
                _r(r.lost_gpu_s),
                _r(r.gpu_s),
                _money(r.cost),
                _money(r.lost_cost),
                _r(a.deadline_s),
                "" if met is None else str(met).lower(),
                r.reason,
                a.group,
                _r(r.last_admitted_s),
            ]
        )
    return out.getvalue()


def _latest_time(records: Sequence[JobRecord]) -> float | None:
    """The latest submit, admission, start or end among ``records`` (``None`` without records)."""
    times = [
        t for r in records for t in (r.arrival.submit_s, r.admitted_s, r.start_s, r.end_s) if t is not None
    ]
    return max(times, default=None)


def series_csv(result: SimulationResult) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    flavors = sorted(result.series.flavors)
    queues = sorted(result.series.cluster_queues)
    in_use = sorted(result.series.flavor_resources)
    held = sorted(result.series.quota_held)
    writer.writerow(
        [
            "time_s",
            *(f"flavor:{f}" for f in flavors),
            *(f"cq:{q}" for q in queues),
            *(f"cq:{q}:pct_nominal" for q in queues),
            *(f"flavor:{f}:{r}" for f, r in in_use),
            *(f"cq:{q}:{r}" for q, r in held),
            *(f"cq:{q}:{r}:pct_nominal" for q, r in held),
        ]
    )
    percent = cq_percent_of_nominal(result)
    held_percent = quota_percent_of_nominal(result)
    for i, t in enumerate(result.series.times):
        writer.writerow(
            [
                _r(t),
                *(_r(result.series.flavors[f][i]) for f in flavors),
                *(_r(result.series.cluster_queues[q][i]) for q in queues),
                *(_at(percent[q], i) for q in queues),
                *(_r(result.series.flavor_resources[k][i]) for k in in_use),
                *(_r(result.series.quota_held[k][i]) for k in held),
                *(_at(held_percent[k], i) for k in held),
            ]
        )
    return out.getvalue()


def quota_percent_of_nominal(result: SimulationResult) -> dict[tuple[str, str], list[float] | None]:
    """Each ClusterQueue's sampled quota held of each resource as a percentage of its nominal
    quota of it (above 100 when it borrows; ``None`` without a nominal quota)."""
    out: dict[tuple[str, str], list[float] | None] = {}
    for key, values in result.series.quota_held.items():
        nominal = result.cq_nominal_quota.get(key, 0.0)
        out[key] = [100.0 * v / nominal for v in values] if nominal else None
    return out


def _at(values: list[float] | None, i: int) -> float | str | None:
    return "" if values is None else _r(values[i], 2)


def cq_percent_of_nominal(result: SimulationResult) -> dict[str, list[float] | None]:
    """Each ClusterQueue's sampled GPUs in use as a percentage of its nominal GPU quota.

    Above 100% the queue is borrowing from its cohort; ``None`` for a queue with no nominal GPUs
    (a pure borrower), whose percentage is undefined.
    """
    out: dict[str, list[float] | None] = {}
    for name, values in result.series.cluster_queues.items():
        nominal = result.cq_nominal.get(name, 0)
        out[name] = [100.0 * v / nominal for v in values] if nominal else None
    return out


def dumps(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True) + "\n"
