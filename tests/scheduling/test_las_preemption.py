"""Tiresias's preemption in ``las`` queues (budcore's own, opt-in: ``las_preemption``).

A running workload attains service (GPU-seconds) from its admission on; when it reaches a
threshold its level rises, and a waiting workload of its priority and a lower level may preempt
it under Kueue's ``withinClusterQueue`` rule. Without ``las_preemption`` nothing changes.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.admission import GPU, T0, config, cq, job

from budcore.domain.errors import ValidationError
from budcore.scheduling import AdmissionPolicy, ClusterQueuePreemption, Scheduler
from budcore.scheduling.ordering import Attained, LasLevels, Ordering, OrderingPolicy, next_crossing
from budcore.scheduling.preemption import DecisionStatus
from budcore.scheduling.queues import WithinClusterQueue
from budcore.testing.examples import examples

HOUR = 3600.0


def scheduler(
    *, las_preemption: bool, within: WithinClusterQueue = WithinClusterQueue.LOWER_PRIORITY
) -> Scheduler:
    ordering = OrderingPolicy(
        default=Ordering.LAS, las_thresholds_gpu_s=(HOUR,), las_preemption=las_preemption
    )
    queue = cq("a", {"default": {GPU: 2}}, preemption=ClusterQueuePreemption(within_cluster_queue=within))
    return Scheduler(config([queue]), AdmissionPolicy(ordering=ordering))


def preempted(result: object) -> list[str]:
    return [
        v.job_id
        for d in getattr(result, "preemptions", [])
        if d.status is DecisionStatus.PREEMPT
        for v in d.victims
    ]


def test_a_running_job_that_reached_a_level_is_preempted_by_a_waiting_one_of_a_lower_level() -> None:
    s = scheduler(las_preemption=True)
    s.submit(job("a", 2, name="long", at=T0))
    assert [a.job_id for a in s.cycle(T0).admitted] == ["long"]
    # long attains 2 GPU-s a second: 1 GPU-hour (the threshold) after 30 minutes.
    assert s.next_wakeup() == T0 + timedelta(minutes=30)
    s.submit(job("a", 2, name="short", at=T0 + timedelta(minutes=10)))
    early = s.cycle(T0 + timedelta(minutes=10))
    assert preempted(early) == [] and not early.admitted  # same level (0): no candidate
    crossing = s.next_wakeup()
    assert crossing == T0 + timedelta(minutes=30)
    late = s.cycle(crossing)
    assert preempted(late) == ["long"]  # level 1 now: short (level 0) preempts it
    assert s.next_wakeup() is None  # past its last threshold


def test_without_las_preemption_nothing_is_preempted_and_no_wakeup_is_asked() -> None:
    s = scheduler(las_preemption=False)
    s.submit(job("a", 2, name="long", at=T0))
    s.cycle(T0)
    s.submit(job("a", 2, name="short", at=T0 + timedelta(minutes=10)))
    assert s.next_wakeup() is None
    for minutes in (10, 30, 90):
        assert preempted(s.cycle(T0 + timedelta(minutes=minutes))) == []


def test_a_queue_that_never_preempts_within_itself_is_not_changed() -> None:
    s = scheduler(las_preemption=True, within=WithinClusterQueue.NEVER)
    s.submit(job("a", 2, name="long", at=T0))
    s.cycle(T0)
    s.submit(job("a", 2, name="short", at=T0 + timedelta(minutes=10)))
    for minutes in (10, 30, 90):
        assert preempted(s.cycle(T0 + timedelta(minutes=minutes))) == []


def test_a_waiting_job_of_the_same_level_does_not_preempt() -> None:
    """A requeued job that already attained a level waits behind a running job of that level."""
    s = scheduler(las_preemption=True)
    s.submit(job("a", 2, name="long", at=T0))
    s.cycle(T0)
    s.submit(job("a", 2, name="again", at=T0 + timedelta(minutes=10)), attained=Attained(gpu_s=2 * HOUR))
    assert preempted(s.cycle(T0 + timedelta(minutes=40))) == []


def test_a_higher_priority_still_comes_first_whatever_the_level() -> None:
    from budcore.domain.priority import JobPriority

    s = scheduler(las_preemption=True)
    s.submit(job("a", 2, name="vip", at=T0, priority=JobPriority.HIGH))
    s.cycle(T0)
    s.submit(job("a", 2, name="short", at=T0 + timedelta(minutes=10)))
    assert preempted(s.cycle(T0 + timedelta(hours=2))) == []  # vip is level 1 but of a higher priority


def test_levels_and_crossings() -> None:
    levels = LasLevels((HOUR, 10 * HOUR), frozenset({"a"}), now_s=1800.0)
    assert levels.level(0.0, 2.0, 0.0) == 1  # 2 GPUs x 1800 s = 1 GPU-hour: exactly at the threshold
    assert levels.level(0.0, 1.0, 0.0) == 0
    assert next_crossing((HOUR, 10 * HOUR), 0.0, 2.0, 0.0, after_s=0.0) == 1800.0
    assert next_crossing((HOUR, 10 * HOUR), 0.0, 2.0, 0.0, after_s=1800.0) == 18000.0
    assert next_crossing((HOUR,), 0.0, 2.0, 0.0, after_s=1800.0) is None
    assert next_crossing((HOUR,), 0.0, 0.0, 0.0, after_s=0.0) is None


def test_las_preemption_needs_thresholds() -> None:
    with pytest.raises(ValidationError, match="las_preemption needs las_thresholds") as info:
        OrderingPolicy(default=Ordering.LAS, las_preemption=True)
    assert info.value.path == "ordering.las_preemption"


def test_the_eta_forecast_preempts_as_the_cycle_does() -> None:
    """The forward run of the ETA forecaster wakes at the crossing too: ``short`` is estimated to
    start when ``long`` reaches its level (30 minutes), not when ``long`` ends (2 hours)."""
    from budcore.scheduling.forecast import ForecastOptions

    ordering = OrderingPolicy(default=Ordering.LAS, las_thresholds_gpu_s=(HOUR,), las_preemption=True)
    queue = cq(
        "a",
        {"default": {GPU: 2}},
        preemption=ClusterQueuePreemption(within_cluster_queue=WithinClusterQueue.LOWER_PRIORITY),
    )
    s = Scheduler(
        config([queue]),
        AdmissionPolicy(ordering=ordering),
        forecast=ForecastOptions(default_runtime=timedelta(hours=2)),
    )
    s.submit(job("a", 2, name="long", at=T0))
    s.cycle(T0)
    s.submit(job("a", 2, name="short", at=T0 + timedelta(minutes=10)))
    s.cycle(T0 + timedelta(minutes=10))
    eta = s.eta("short", now=T0 + timedelta(minutes=10))
    assert eta is not None and eta.start == T0 + timedelta(minutes=30)


# Property: a LAS preemption never takes a workload of the preemptor's level or below -----------
@settings(max_examples=examples(100), deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 7200), st.integers(1, 2), st.sampled_from([0.0, 1800.0, 5400.0, 40000.0])),
        min_size=2,
        max_size=12,
    ),
    st.sampled_from([WithinClusterQueue.LOWER_PRIORITY, WithinClusterQueue.LOWER_OR_NEWER_EQUAL_PRIORITY]),
)
def test_a_las_victim_of_the_same_priority_always_attained_a_higher_level(
    arrivals: list[tuple[int, int, float]], within: WithinClusterQueue
) -> None:
    """Jobs of one priority arrive (some requeued with service already attained); cycles run at
    every arrival and every wake-up the scheduler asks for. Every victim must be above its
    preemptor's level at the decision's instant (Tiresias never preempts sideways or upwards),
    and every job that waits while a running one of its priority reached a higher level is
    eventually offered a cycle at that crossing (the wake-ups are never in the past)."""
    thresholds = (HOUR, 4 * HOUR)
    ordering = OrderingPolicy(default=Ordering.LAS, las_thresholds_gpu_s=thresholds, las_preemption=True)
    queue = cq("a", {"default": {GPU: 2}}, preemption=ClusterQueuePreemption(within_cluster_queue=within))
    s = Scheduler(config([queue]), AdmissionPolicy(ordering=ordering))
    pending = [
        (T0 + timedelta(seconds=at), job("a", gpus, name=f"j{i}", at=T0 + timedelta(seconds=at)), gpu_s)
        for i, (at, gpus, gpu_s) in sorted(enumerate(arrivals), key=lambda item: (item[1][0], item[0]))
    ]
    now = T0
    for _ in range(200):
        wake = s.next_wakeup()
        upcoming = [at for at, _, _ in pending[:1]] + ([wake] if wake is not None else [])
        if not upcoming:
            break
        now = max(now, min(upcoming))
        while pending and pending[0][0] <= now:
            _, j, gpu_s = pending.pop(0)
            s.submit(j, attained=Attained(gpu_s=gpu_s), now=now)
        levels = LasLevels(thresholds, frozenset({"a"}), now.timestamp())
        before = {w.job_id: w for w in s.admitted.values()}
        entries = [w for q in s.pending.queues().values() for w in q.entries.values()]
        ranks = {w.job.id: w.rank for w in entries}
        timestamps = {w.job.id: w.timestamp for w in entries}
        result = s.cycle(now)
        for decision in result.preemptions:
            if decision.status is not DecisionStatus.PREEMPT:
                continue
            for victim in decision.victims:
                w = before[victim.job_id]
                level = levels.level(w.attained_gpu_s, w.accelerators, w.admitted_at.timestamp())
                newer = within is WithinClusterQueue.LOWER_OR_NEWER_EQUAL_PRIORITY and (
                    timestamps[decision.preemptor] < w.timestamp
                )
                assert newer or level > ranks[decision.preemptor], (decision.preemptor, w, level)
            for victim in decision.victims:  # they leave at once (no grace in this property)
                s.release(victim.job_id, now)
        after = s.next_wakeup()  # crossings up to now were handled by this cycle
        assert after is None or after > now


def test_service_summed_run_by_run_is_the_same_level_waiting_and_running() -> None:
    """3,599.9999996 GPU-seconds (an hour summed run by run) was level 0 while waiting and level 1
    once admitted: such jobs preempted each other at one instant for ever (found on
    bench_ordering's case (a) with las_preemption). One function decides both."""
    almost = 3599.9999996
    policy = OrderingPolicy(default=Ordering.LAS, las_thresholds_gpu_s=(HOUR,), las_preemption=True)
    levels = LasLevels((HOUR,), frozenset({"a"}), now_s=100.0)
    assert policy.level(almost) == levels.level(almost, 1.0, admitted_s=100.0) == 1
    assert policy.rank("a", job("a", 1, name="x"), Attained(gpu_s=almost)) == 1.0
