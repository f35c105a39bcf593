"""Time gates: retry backoff and windows decide *when* a job may be admitted (issue #13)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from budcore.domain.errors import ValidationError
from budcore.domain.job import Job
from budcore.domain.timewindow import TimeWindow
from budcore.scheduling.timegates import Held, TimeGates, earliest_admission, last_admission

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def job(**fields: object) -> Job:
    return Job(name="j", tenant="t", created_at=NOW, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("retry_at", "expected"),
    [
        (None, None),
        (NOW - timedelta(seconds=1), None),
        (NOW, None),  # exactly now: admissible now
        (NOW + timedelta(microseconds=1), NOW + timedelta(microseconds=1)),
        (NOW + timedelta(minutes=5), NOW + timedelta(minutes=5)),
    ],
)
def test_retry_at_edges(retry_at: datetime | None, expected: datetime | None) -> None:
    gate = earliest_admission(job(next_retry_at=retry_at), NOW)
    assert (gate[0] if gate else None) == expected
    if gate:
        assert "retry backoff" in gate[1]


def test_window_and_backoff_combine_to_the_later() -> None:
    window = TimeWindow(start=time(13), end=time(14))
    gate = earliest_admission(job(time_window=window, next_retry_at=NOW + timedelta(minutes=90)), NOW)
    # Backoff ends 13:30, inside the window: 13:30.
    assert gate is not None and gate[0] == NOW + timedelta(minutes=90)
    gate = earliest_admission(job(time_window=window, next_retry_at=NOW + timedelta(hours=3)), NOW)
    # Backoff ends 15:00, after the window: the next day's 13:00.
    assert gate is not None and gate[0] == datetime(2026, 5, 2, 13, tzinfo=UTC)
    assert "time window" in gate[1]


def test_must_finish_in_window_uses_the_estimate_then_max_duration() -> None:
    window = TimeWindow(start=time(9), end=time(17), must_finish_in_window=True)
    at_16 = NOW + timedelta(hours=4)
    estimated = job(time_window=window, estimated_duration=timedelta(hours=2))
    assert earliest_admission(estimated, at_16) == (
        datetime(2026, 5, 2, 9, tzinfo=UTC),
        "outside its time window 09:00–17:00 UTC: opens at 2026-05-02T09:00:00+00:00",
    )
    bounded = job(time_window=window, max_duration=timedelta(minutes=30))
    assert earliest_admission(bounded, at_16) is None
    # The last instant it may start: 16:30 (it ends exactly at the close).
    assert last_admission(bounded, at_16) == datetime(2026, 5, 1, 16, 30, 0, 1, tzinfo=UTC)
    with pytest.raises(ValidationError, match="never fits"):
        earliest_admission(job(time_window=window, estimated_duration=timedelta(hours=9)), NOW)


def test_held_jobs_come_due_in_order_and_withdrawn_ones_never() -> None:
    gates = TimeGates()
    a, b, c = job(id="a"), job(id="b"), job(id="c")
    gates.hold(Held(b, NOW + timedelta(minutes=2), "b", None, 0.0))
    gates.hold(Held(a, NOW + timedelta(minutes=1), "a", None, 0.0))
    gates.hold(Held(c, NOW + timedelta(minutes=1), "c", None, 0.0))
    assert gates.withdraw("c") is not None
    assert gates.next_wakeup() == NOW + timedelta(minutes=1)
    assert [h.job.id for h in gates.due(NOW)] == []
    assert [h.job.id for h in gates.due(NOW + timedelta(minutes=1))] == ["a"]
    fork = gates.fork()
    assert [h.job.id for h in fork.due(NOW + timedelta(hours=1))] == ["b"]
    assert "b" in gates and "b" not in fork  # the fork is independent
    assert gates.next_wakeup() == NOW + timedelta(minutes=2)


def test_closing_windows_and_rewatching() -> None:
    gates = TimeGates()
    gates.watch("x", NOW + timedelta(hours=1))
    gates.watch("x", NOW + timedelta(hours=2))  # re-watched: only the latest counts
    gates.watch("y", NOW + timedelta(minutes=30))
    gates.unwatch("y")
    assert gates.next_wakeup() == NOW + timedelta(hours=2)
    assert gates.closing(NOW + timedelta(hours=1)) == []
    assert gates.closing(NOW + timedelta(hours=2)) == ["x"]
    assert gates.next_wakeup() is None
