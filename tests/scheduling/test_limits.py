"""Execution limits (issue #13): max_duration over accumulated admitted time, runaway alerts."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from budcore_adapters.inmemory import InMemoryJobStore, ManualClock
from hypothesis import given, settings
from hypothesis import strategies as st
from support.admission import GPU, T0, config, cq, job

from budcore.domain.errors import ValidationError
from budcore.domain.job import Job, JobStatus
from budcore.domain.lifecycle import transition
from budcore.scheduling import Scheduler
from budcore.scheduling.limits import LimitKind, LimitVerdict, execution_limit_verdict, expires_at
from budcore.service import JobService
from budcore.testing.examples import examples

H = timedelta(hours=1)
US = timedelta(microseconds=1)
S = JobStatus


def limited(**fields: object) -> Job:
    return Job(name="j", tenant="t", created_at=T0, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "elapsed", "kind"),
    [
        ({"max_duration": 4 * H}, 4 * H, LimitKind.TIMEOUT),  # exactly at the limit
        ({"max_duration": 4 * H}, 4 * H - US, None),  # one microsecond before
        ({"max_duration": 4 * H}, 5 * H, LimitKind.TIMEOUT),
        ({"max_duration": timedelta(0)}, timedelta(0), LimitKind.TIMEOUT),
        ({"max_duration": 4 * H, "accumulated_runtime": 3 * H}, H, LimitKind.TIMEOUT),
        ({"max_duration": 4 * H, "accumulated_runtime": 3 * H}, H - US, None),
        ({"max_duration": 4 * H, "accumulated_runtime": 5 * H}, timedelta(0), LimitKind.TIMEOUT),
        ({"estimated_duration": H}, 3 * H, None),  # exactly 3× the estimate: not yet
        ({"estimated_duration": H}, 3 * H + US, LimitKind.RUNAWAY),
        ({"estimated_duration": H, "accumulated_runtime": 2 * H}, H + US, LimitKind.RUNAWAY),
        # Both limits crossed: the timeout wins (it stops the job).
        ({"estimated_duration": H, "max_duration": 4 * H}, 4 * H, LimitKind.TIMEOUT),
        ({}, 100 * H, None),
    ],
)
def test_verdict_edges(fields: dict[str, object], elapsed: timedelta, kind: LimitKind | None) -> None:
    verdict = execution_limit_verdict(limited(**fields), T0, T0 + elapsed)
    assert (verdict.kind if verdict else None) == kind


def test_timeout_carries_the_instant_and_names_the_limit() -> None:
    j = limited(max_duration=4 * H, accumulated_runtime=3 * H)
    verdict = execution_limit_verdict(j, T0, T0 + 2 * H)
    assert verdict == LimitVerdict(
        j.id,
        j.tenant,
        LimitKind.TIMEOUT,
        T0 + H,
        5 * H,
        4 * H,
        "max_duration 4:00:00 reached: admitted for 5:00:00 (3:00:00 in earlier runs)",
    )
    assert verdict.stops
    assert expires_at(j, T0) == T0 + H
    runaway = execution_limit_verdict(limited(estimated_duration=H), T0, T0 + 4 * H, runaway_factor=2)
    assert runaway is not None and not runaway.stops and runaway.at == T0 + 2 * H
    assert "more than 2× its estimated_duration 1:00:00" in runaway.message
    with pytest.raises(ValidationError, match="runaway_factor"):
        execution_limit_verdict(j, T0, T0, runaway_factor=0)


def test_the_lifecycle_accumulates_admitted_time_across_a_preemption() -> None:
    """Preempted after 3 h of a 4 h limit, the job times out 1 h into its next admission."""
    j = limited(max_duration=4 * H)
    steps = [(S.QUEUED, 0), (S.ADMITTED, 0), (S.RUNNING, 1), (S.PREEMPTED, 3 * 60), (S.QUEUED, 200)]
    for status, minute in steps:
        j, _ = transition(j, status, now=T0 + timedelta(minutes=minute))
    assert j.accumulated_runtime == 3 * H
    j, _ = transition(j, S.ADMITTED, now=T0 + 5 * H)
    assert j.accumulated_runtime == 3 * H  # entering a quota-holding state adds nothing
    assert execution_limit_verdict(j, T0 + 5 * H, T0 + 6 * H - US) is None
    verdict = execution_limit_verdict(j, T0 + 5 * H, T0 + 6 * H)
    assert verdict is not None and verdict.kind is LimitKind.TIMEOUT and verdict.at == T0 + 6 * H
    # Kueue evicting an admitted workload (admitted → queued) counts its admitted time too.
    j, _ = transition(j, S.QUEUED, now=T0 + 5 * H + timedelta(minutes=10))
    assert j.accumulated_runtime == 3 * H + timedelta(minutes=10)


def one_queue() -> Scheduler:
    return Scheduler(config([cq("a", {"default": {GPU: 8}})]))


def test_scheduler_overdue_and_next_limit() -> None:
    scheduler = one_queue()
    assert scheduler.next_limit(T0) is None
    quick = job("a", name="quick").model_copy(update={"max_duration": 2 * H})
    earlier = {"max_duration": 4 * H, "accumulated_runtime": 3 * H}
    resumed = job("a", name="resumed").model_copy(update=earlier)
    slow = job("a", name="slow").model_copy(update={"estimated_duration": H})
    for j in (quick, resumed, slow):
        scheduler.submit(j)
    scheduler.cycle(T0)
    assert scheduler.next_limit(T0) == T0 + H
    assert scheduler.overdue(T0 + H - US) == []
    assert [(v.job_id, v.kind) for v in scheduler.overdue(T0 + H)] == [("resumed", LimitKind.TIMEOUT)]
    later = scheduler.overdue(T0 + 3 * H + US)
    assert [(v.job_id, v.kind) for v in later] == [
        ("quick", LimitKind.TIMEOUT),
        ("resumed", LimitKind.TIMEOUT),
        ("slow", LimitKind.RUNAWAY),
    ]
    assert scheduler.next_limit(T0 + 3 * H) == T0 + 3 * H  # an unenforced limit: wake now
    scheduler.release("resumed", T0 + H)
    assert scheduler.next_limit(T0) == T0 + 2 * H


def start(service: JobService, scheduler: Scheduler, jobs: list[Job], now: datetime) -> list[Job]:
    """Submit ``jobs`` to the service and the scheduler, admit them and set them running."""
    stored = [service.submit(j) for j in jobs]
    for j in stored:
        scheduler.submit(j, now=now)
    assert {a.job_id for a in scheduler.cycle(now).admitted} == {j.id for j in stored}
    return [service.move(service.move(j, S.ADMITTED, now=now), S.RUNNING, now=now) for j in stored]


def test_enforce_limits_fails_timed_out_jobs_and_releases_their_quota() -> None:
    store = InMemoryJobStore()
    clock = ManualClock(T0)
    service = JobService(store, clock)
    scheduler = one_queue()
    quick = job("a", 4, name="quick").model_copy(update={"max_duration": H})
    slow = job("a", 4, name="slow").model_copy(update={"estimated_duration": timedelta(minutes=10)})
    start(service, scheduler, [quick, slow], T0)
    alerts: list[LimitVerdict] = []

    assert service.enforce_limits(scheduler, T0 + H - US, on_runaway=alerts.append) == []
    assert [v.job_id for v in alerts] == ["slow"]
    clock.set(T0 + H)
    (failed,) = service.enforce_limits(scheduler)
    # Kueue clears the accumulated time when it deactivates a workload for exceeding it.
    assert (failed.id, failed.status, failed.accumulated_runtime) == ("quick", S.FAILED, timedelta(0))
    assert failed.status_message == "timeout: max_duration 1:00:00 reached: admitted for 1:00:00"
    assert store.get(failed.tenant, failed.id) == failed
    assert set(scheduler.admitted) == {"slow"}  # quick's quota is back
    assert service.enforce_limits(scheduler, T0 + 2 * H) == []
    assert store.get(failed.tenant, "slow").status is S.RUNNING


def test_enforce_limits_leaves_a_job_that_already_ended_to_its_driver() -> None:
    service = JobService(InMemoryJobStore(), ManualClock(T0))
    scheduler = one_queue()
    (running,) = start(service, scheduler, [job("a", name="done").model_copy(update={"max_duration": H})], T0)
    service.move(running, S.COMPLETED, now=T0 + H)
    assert service.enforce_limits(scheduler, T0 + 2 * H) == []
    assert "done" in scheduler.admitted


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 10 * 3600), st.one_of(st.none(), st.integers(0, 10 * 3600))),
        min_size=1,
        max_size=3,
    ),
    st.integers(0, 3600),
)
def test_no_job_runs_past_max_duration_when_limits_are_enforced_on_time(
    specs: list[tuple[int, int | None]], requeue_delay_s: int
) -> None:
    """A driver that calls ``enforce_limits`` at each ``next_limit`` (and preempts some jobs on the
    way) never lets a job's admitted time, summed over its admissions, exceed its max_duration."""
    store = InMemoryJobStore()
    clock = ManualClock(T0)
    service = JobService(store, clock)
    scheduler = one_queue()
    jobs = [
        job("a", name=f"j{i}").model_copy(update={"max_duration": timedelta(seconds=limit)})
        for i, (limit, _) in enumerate(specs)
    ]
    preempt_at = {f"j{i}": T0 + timedelta(seconds=p) for i, (_, p) in enumerate(specs) if p is not None}
    start(service, scheduler, jobs, T0)
    tenant = jobs[0].tenant

    def check(now: datetime) -> None:
        for job_id, workload in scheduler.admitted.items():
            j = store.get(tenant, job_id)
            assert j.max_duration is not None
            assert j.accumulated_runtime + (now - workload.admitted_at) <= j.max_duration

    for _ in range(20):
        now = clock.now()
        wake = scheduler.next_limit(now)
        if wake is None:
            break
        due = sorted((t, i) for i, t in preempt_at.items() if i in scheduler.admitted and t < wake)
        if due:
            at, job_id = due[0]
            clock.set(max(at, now))
            check(clock.now())
            del preempt_at[job_id]
            preempted = service.move(store.get(tenant, job_id), S.PREEMPTED)
            scheduler.release(job_id, clock.now())
            queued = service.move(preempted, S.QUEUED)
            # Readmitted after the delay, or earlier: the driver wakes at the next limit anyway.
            readmit = clock.now() + timedelta(seconds=requeue_delay_s)
            clock.set(min(readmit, scheduler.next_limit(clock.now()) or readmit))
            check(clock.now())
            scheduler.submit(queued, now=clock.now())
            scheduler.cycle(clock.now())
            start_again = service.move(service.move(queued, S.ADMITTED), S.RUNNING)
            assert start_again.accumulated_runtime == preempted.accumulated_runtime
            continue
        clock.set(wake)
        check(wake)
        assert service.enforce_limits(scheduler)
    assert scheduler.admitted == {}
    for j in store.list(tenant):
        assert j.status is S.FAILED
        assert j.accumulated_runtime == timedelta(0)  # cleared on the timeout, as Kueue does
        assert (j.status_message or "").startswith("timeout: ")
