"""ETAs by running the real scheduler forward (issue #13): exact cases, isolation, deadlines."""

from __future__ import annotations

import copy
from datetime import datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.admission import GPU, T0, config, cq, job

from budcore.domain.job import Job
from budcore.domain.timewindow import TimeWindow
from budcore.scheduling import Scheduler
from budcore.scheduling.deadline import (
    DeadlineAction,
    DeadlineInfeasibleError,
    DeadlinePolicy,
    Verdict,
    check_deadline,
)
from budcore.scheduling.forecast import ForecastOptions, eta_for, forecast
from budcore.testing.examples import examples

H = timedelta(hours=1)


def timed(j: Job, runtime: timedelta, **fields: object) -> Job:
    return j.model_copy(update={"estimated_duration": runtime, **fields})


def one_queue(gpus: int = 8) -> Scheduler:
    return Scheduler(config([cq("a", {"default": {GPU: gpus}})]))


def start_running(scheduler: Scheduler, jobs: list[Job], at: datetime) -> None:
    for j in jobs:
        scheduler.submit(j)
    result = scheduler.cycle(at)
    assert {a.job_id for a in result.admitted} == {j.id for j in jobs}


def test_queued_jobs_start_when_the_running_ones_end() -> None:
    scheduler = one_queue()
    start_running(scheduler, [timed(job("a", 8, name="r1"), H)], T0 - timedelta(minutes=30))
    for name, gpus, runtime in [("a1", 4, 2 * H), ("b1", 4, H), ("c1", 8, H)]:
        scheduler.submit(timed(job("a", gpus, name=name, at=T0), runtime))
    scheduler.cycle(T0)
    result = forecast(scheduler, T0)
    thirty = timedelta(minutes=30)
    assert (result.etas["a1"].start, result.etas["a1"].end) == (T0 + thirty, T0 + thirty + 2 * H)
    assert (result.etas["b1"].start, result.etas["b1"].end) == (T0 + thirty, T0 + thirty + H)
    # c1 needs all 8 GPUs: it waits for a1 (the longer of the two) to end.
    assert result.etas["c1"].start == T0 + thirty + 2 * H
    assert result.etas["c1"].ahead == 2
    assert "behind 2 workload(s) in ClusterQueue a" in result.etas["c1"].describe()


def test_the_live_scheduler_is_untouched() -> None:
    scheduler = one_queue()
    start_running(scheduler, [timed(job("a", 8, name="r1"), H)], T0)
    scheduler.submit(timed(job("a", 8, name="w1"), H))
    scheduler.cycle(T0)
    before = (dict(scheduler.admitted), dict(scheduler.usage_of("a")), scheduler.queued_job_ids())
    forecast(scheduler, T0)
    eta_for(scheduler, timed(job("a", 2, name="new"), H), T0)
    assert (dict(scheduler.admitted), dict(scheduler.usage_of("a")), scheduler.queued_job_ids()) == before
    assert scheduler.eta("w1") is not None


def test_a_job_not_yet_submitted_is_estimated_as_if_submitted_now() -> None:
    scheduler = one_queue()
    start_running(scheduler, [timed(job("a", 6, name="r1"), 3 * H)], T0)
    small = eta_for(scheduler, timed(job("a", 2, name="small", at=T0), H), T0)
    large = eta_for(scheduler, timed(job("a", 4, name="large", at=T0), H), T0)
    assert small.start == T0
    assert large.start == T0 + 3 * H
    assert "small" not in scheduler.queued_job_ids()


def test_a_job_that_can_never_fit_says_why() -> None:
    scheduler = one_queue(gpus=4)
    scheduler.submit(timed(job("a", 8, name="huge"), H))
    scheduler.cycle(T0)
    eta = forecast(scheduler, T0).etas["huge"]
    assert eta.start is None
    assert "insufficient" in eta.note or "nominal" in eta.note


def test_a_windowed_job_starts_when_its_window_opens() -> None:
    scheduler = one_queue()
    window = TimeWindow(start=time(22), end=time(6))
    scheduler.submit(timed(job("a", 1, name="night"), H, time_window=window))
    result = scheduler.cycle(T0 + 12 * H)  # noon: outside the window
    assert not result.admitted
    assert "time window" in scheduler.explain("night")
    eta = scheduler.eta("night", now=T0 + 12 * H)
    assert eta is not None and eta.start == T0 + 22 * H


def test_the_default_runtime_applies_without_an_estimate() -> None:
    scheduler = one_queue()
    start_running(scheduler, [job("a", 8, name="r1")], T0)
    scheduler.submit(job("a", 8, name="w1"))
    options = ForecastOptions(default_runtime=2 * H)
    assert forecast(scheduler, T0, options=options).etas["w1"].start == T0 + 2 * H


def test_deadline_verdicts_and_options() -> None:
    scheduler = one_queue()
    start_running(scheduler, [timed(job("a", 8, name="r1"), 4 * H)], T0)
    on_time = timed(job("a", 8, name="ok", at=T0), H, deadline=T0 + 10 * H)
    assert check_deadline(scheduler, on_time, T0).verdict is Verdict.FEASIBLE
    tight = timed(job("a", 8, name="tight", at=T0), H, deadline=T0 + 5 * H + timedelta(seconds=10))
    assert check_deadline(scheduler, tight, T0).verdict is Verdict.AT_RISK
    late = timed(job("a", 8, name="late", at=T0), H, deadline=T0 + 2 * H)
    check = check_deadline(scheduler, late, T0)
    assert check.verdict is Verdict.INFEASIBLE
    assert check.earliest_completion == T0 + 5 * H
    assert check.slack == -3 * H
    assert check.best_option is not None and "deadline of" in check.best_option.label
    assert "infeasible" in check.describe()


def test_grace_edges() -> None:
    scheduler = one_queue()
    exact = timed(job("a", 1, name="exact", at=T0), H, deadline=T0 + H)
    policy = DeadlinePolicy(risk_margin=0.0)
    assert check_deadline(scheduler, exact, T0, policy=policy).verdict is Verdict.FEASIBLE
    skewed = timed(job("a", 1, name="skew", at=T0), H, deadline=T0 + H - timedelta(seconds=30))
    assert check_deadline(scheduler, skewed, T0, policy=policy).verdict is not Verdict.INFEASIBLE
    beyond = timed(job("a", 1, name="beyond", at=T0), H, deadline=T0 + H - timedelta(seconds=31))
    assert check_deadline(scheduler, beyond, T0, policy=policy).verdict is Verdict.INFEASIBLE


def test_reject_policy_refuses_and_queues_nothing() -> None:
    scheduler = Scheduler(
        config([cq("a", {"default": {GPU: 8}})]),
        deadline_policy=DeadlinePolicy(action=DeadlineAction.REJECT),
    )
    start_running(scheduler, [timed(job("a", 8, name="r1"), 4 * H)], T0)
    late = timed(job("a", 8, name="late", at=T0), H, deadline=T0 + 2 * H)
    with pytest.raises(DeadlineInfeasibleError, match=r"late.*cannot be met") as info:
        scheduler.submit(late, now=T0)
    assert info.value.check.earliest_completion == T0 + 5 * H
    assert "late" not in scheduler.queued_job_ids()
    warned = Scheduler(config([cq("a", {"default": {GPU: 8}})]), deadline_policy=DeadlinePolicy())
    start_running(warned, [timed(job("a", 8, name="r2"), 4 * H)], T0)
    warned.submit(late, now=T0)
    assert "late" in warned.queued_job_ids()
    assert warned.deadline_warnings["late"].verdict is Verdict.INFEASIBLE


@st.composite
def frozen_workloads(draw: st.DrawFn) -> tuple[list[tuple[int, int]], int]:
    """Jobs as (GPUs, runtime minutes) on an 8-GPU queue, and which one to ask about."""
    jobs = draw(st.lists(st.tuples(st.integers(1, 8), st.integers(1, 240)), min_size=1, max_size=12))
    return jobs, draw(st.integers(0, len(jobs) - 1))


@settings(max_examples=examples(60), deadline=None)
@given(frozen_workloads(), st.integers(0, 600))
def test_a_feasible_verdict_holds_in_the_run_it_came_from(
    workload: tuple[list[tuple[int, int]], int], deadline_minutes: int
) -> None:
    """Property: on a frozen workload (no arrivals, runtimes exact), a job judged feasible
    really completes by its deadline when the live scheduler is driven forward."""
    specs, target = workload
    scheduler = one_queue()
    jobs = []
    for i, (gpus, minutes) in enumerate(specs):
        fields: dict[str, object] = {}
        if i == target:
            fields["deadline"] = T0 + timedelta(minutes=deadline_minutes)
        jobs.append(
            timed(
                job("a", gpus, name=f"w{i}", at=T0 + timedelta(seconds=i)),
                timedelta(minutes=minutes),
                **fields,
            )
        )
    for j in jobs:
        scheduler.submit(j)
    verdict = check_deadline(
        scheduler, jobs[target], T0, explore=False, policy=DeadlinePolicy(grace=timedelta(0))
    )
    live = copy.deepcopy(scheduler)
    runtimes = {j.id: j.estimated_duration for j in jobs}
    ends: dict[str, datetime] = {}
    now = T0
    finished: dict[str, datetime] = {}
    for _ in range(100):
        for a in live.cycle(now).admitted:
            ends[a.job_id] = now + runtimes[a.job_id]  # type: ignore[operator]
        if not ends:
            break
        now = min(ends.values())
        for job_id in [k for k, v in ends.items() if v == now]:
            live.release(job_id, now)
            finished[job_id] = now
            del ends[job_id]
    target_id = jobs[target].id
    if verdict.verdict is Verdict.FEASIBLE:
        assert finished[target_id] <= jobs[target].deadline  # type: ignore[operator]
    if target_id in finished:
        assert verdict.earliest_completion == finished[target_id]
