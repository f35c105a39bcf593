"""Deadline-aware ordering (issue #13): the boost is monotone in waiting time, never lowers a
priority, never reaches critical, and composes with aging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.admission import GPU, T0, config, cq, job

from budcore.domain.errors import ValidationError
from budcore.domain.priority import JobPriority
from budcore.scheduling import Scheduler
from budcore.scheduling.deadline import DeadlineBoost, deadline_boost
from budcore.scheduling.preemption.aging import AgingPolicy

H = timedelta(hours=1)
START = datetime(2026, 1, 1, tzinfo=UTC)


@given(
    base=st.integers(0, 999),
    runtime_min=st.integers(1, 600),
    slack_min=st.integers(-60, 6000),
    waits=st.lists(st.integers(0, 20_000), min_size=2, max_size=8),
)
def test_boost_is_monotone_bounded_and_never_lowers(
    base: int, runtime_min: int, slack_min: int, waits: list[int]
) -> None:
    boost = DeadlineBoost()
    runtime = timedelta(minutes=runtime_min)
    deadline = START + runtime + timedelta(minutes=slack_min)
    previous: int | None = None
    for wait in sorted(waits):
        now = START + timedelta(minutes=wait)
        value = deadline_boost(
            base, submitted=START, deadline=deadline, runtime=runtime, now=now, boost=boost, previous=previous
        )
        assert value >= base
        assert value < JobPriority.CRITICAL.value_int or value == base
        if previous is not None:
            assert value >= previous
        previous = value


@pytest.mark.parametrize(
    ("elapsed_share", "expected"),
    [(0.49, 10), (0.5, 20), (0.75, 60), (0.9, 110), (2.0, 110)],
)
def test_boost_steps(elapsed_share: float, expected: int) -> None:
    runtime, budget = H, 10 * H  # deadline = submission + runtime + budget
    now = START + budget * elapsed_share
    value = deadline_boost(
        10,
        submitted=START,
        deadline=START + runtime + budget,
        runtime=runtime,
        now=now,
        boost=DeadlineBoost(),
    )
    assert value == expected


def test_bad_boosts_name_the_field() -> None:
    with pytest.raises(ValidationError, match="pair up"):
        DeadlineBoost(thresholds=(0.5,), boosts=(1, 2))
    with pytest.raises(ValidationError) as info:
        DeadlineBoost(ceiling=1000)
    assert info.value.path == "deadline_boost.ceiling"


def test_boost_and_edf_reorder_the_queue_and_compose_with_aging() -> None:
    """An urgent job overtakes an earlier one of the same class; aging never undoes it."""
    scheduler = Scheduler(config([cq("a", {"default": {GPU: 1}})]), deadline_boost=DeadlineBoost())
    blocker = job("a", 1, name="blocker", at=T0)
    scheduler.submit(blocker.model_copy(update={"estimated_duration": 10 * H}))
    assert [a.job_id for a in scheduler.cycle(T0).admitted] == ["blocker"]
    early = job("a", 1, name="early", at=T0 + timedelta(seconds=1))
    urgent = job("a", 1, name="urgent", at=T0 + timedelta(seconds=2)).model_copy(
        update={"estimated_duration": H, "deadline": T0 + 3 * H}
    )
    scheduler.submit(early)
    scheduler.submit(urgent)
    now = T0 + 2 * H  # past 90% of urgent's slack budget
    assert scheduler.boost_deadlines(now) >= 1
    scheduler.age(now, AgingPolicy())  # aging only raises: it must not undo the boost
    scheduler.release("blocker", now)
    assert [a.job_id for a in scheduler.cycle(now).admitted] == ["urgent"]
