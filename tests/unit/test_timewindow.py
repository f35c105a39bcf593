"""Time windows: wrapping midnight, daylight saving changes, and the edges (issue #13 table tests).

Berlin's 2026 changes: clocks go forward on 29 March at 01:00 UTC (02:00 CET → 03:00 CEST) and
back on 25 October at 01:00 UTC (03:00 CEST → 02:00 CET).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from budcore.domain.errors import ValidationError
from budcore.domain.timewindow import TimeWindow


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


NIGHT = TimeWindow.parse({"start": "22:00", "end": "06:00", "timezone": "Europe/Berlin"})


@pytest.mark.parametrize(
    ("instant", "inside"),
    [
        (utc(2026, 1, 10, 20, 59), False),  # 21:59 CET
        (utc(2026, 1, 10, 21, 0), True),  # 22:00 CET: start is inside
        (utc(2026, 1, 10, 23, 30), True),  # 00:30 CET, after midnight
        (utc(2026, 1, 11, 4, 59, 59), True),  # 05:59:59 CET
        (utc(2026, 1, 11, 5, 0), False),  # 06:00 CET: end is outside
        (utc(2026, 7, 10, 20, 0), True),  # 22:00 CEST (summer offset)
        (utc(2026, 7, 10, 3, 59), True),  # 05:59 CEST
        (utc(2026, 7, 10, 4, 0), False),  # 06:00 CEST
    ],
)
def test_wrapping_window_membership(instant: datetime, inside: bool) -> None:
    assert NIGHT.contains(instant) is inside


def test_night_of_spring_forward_is_one_hour_shorter() -> None:
    opens = NIGHT.next_open(utc(2026, 3, 28, 12))
    closes = NIGHT.closes_at(opens)
    assert opens == utc(2026, 3, 28, 21)  # 22:00 CET
    assert closes == utc(2026, 3, 29, 4)  # 06:00 CEST
    assert closes - opens == timedelta(hours=7)


def test_night_of_fall_back_is_one_hour_longer() -> None:
    opens = NIGHT.next_open(utc(2026, 10, 24, 12))
    assert opens == utc(2026, 10, 24, 20)  # 22:00 CEST
    assert NIGHT.closes_at(opens) == utc(2026, 10, 25, 5)  # 06:00 CET
    assert NIGHT.closes_at(opens) - opens == timedelta(hours=9)


def test_window_starting_in_the_skipped_hour_opens_when_clocks_pass_it() -> None:
    window = TimeWindow.parse({"start": "02:30", "end": "05:00", "timezone": "Europe/Berlin"})
    assert window.next_open(utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 1)  # 03:00 CEST, no 02:30 that day
    assert window.closes_at(utc(2026, 3, 29, 1)) == utc(2026, 3, 29, 3)  # 05:00 CEST


def test_window_ending_in_the_repeated_hour_opens_twice() -> None:
    window = TimeWindow.parse({"start": "01:00", "end": "02:30", "timezone": "Europe/Berlin"})
    first = window.next_open(utc(2026, 10, 24, 12))
    assert first == utc(2026, 10, 24, 23)  # 01:00 CEST
    assert window.closes_at(first) == utc(2026, 10, 25, 0, 30)  # 02:30 CEST
    second = window.next_open(utc(2026, 10, 25, 0, 30))
    assert second == utc(2026, 10, 25, 1)  # 02:00 CET, the repeated hour
    assert window.closes_at(second) == utc(2026, 10, 25, 1, 30)  # 02:30 CET


def test_non_wrapping_window_and_next_day() -> None:
    window = TimeWindow(start=time(9), end=time(17), timezone="UTC")
    assert window.next_open(utc(2026, 5, 1, 17)) == utc(2026, 5, 2, 9)
    assert window.next_open(utc(2026, 5, 1, 10)) == utc(2026, 5, 1, 10)
    assert window.closes_at(utc(2026, 5, 1, 10)) == utc(2026, 5, 1, 17)


@pytest.mark.parametrize(
    ("start", "duration", "fits"),
    [
        (utc(2026, 5, 1, 9), timedelta(hours=8), True),  # ends exactly at the close
        (utc(2026, 5, 1, 9), timedelta(hours=8, seconds=1), False),
        (utc(2026, 5, 1, 16, 59), timedelta(minutes=1), True),
        (utc(2026, 5, 1, 17), timedelta(minutes=1), False),  # outside
    ],
)
def test_fits_edges(start: datetime, duration: timedelta, fits: bool) -> None:
    window = TimeWindow(start=time(9), end=time(17))
    assert window.fits(start, duration) is fits


def test_must_finish_in_window_waits_for_a_long_enough_opening() -> None:
    window = TimeWindow(start=time(9), end=time(17), must_finish_in_window=True)
    # At 15:00 a 4-hour run would overrun 17:00: the next opening that fits is tomorrow 09:00.
    assert window.earliest_start(utc(2026, 5, 1, 15), timedelta(hours=4)) == utc(2026, 5, 2, 9)
    assert window.earliest_start(utc(2026, 5, 1, 12), timedelta(hours=4)) == utc(2026, 5, 1, 12)
    with pytest.raises(ValidationError, match="never fits"):
        window.earliest_start(utc(2026, 5, 1, 12), timedelta(hours=9))
    # Without the flag, any instant inside may start it.
    loose = TimeWindow(start=time(9), end=time(17))
    assert loose.earliest_start(utc(2026, 5, 1, 15), timedelta(hours=4)) == utc(2026, 5, 1, 15)


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        ({"start": "22:00"}, "time_window", "missing end"),
        ({"start": "25:00", "end": "06:00"}, "time_window.start", "HH:MM"),
        ({"start": "22:00", "end": "6"}, "time_window.end", "HH:MM"),
        ({"start": "22:00", "end": "22:00"}, "time_window", "two different times"),
        ({"start": "22:00", "end": "06:00", "timezone": "Mars/Olympus"}, "time_window.timezone", "unknown"),
        ({"start": "22:00", "end": "06:00", "zone": "UTC"}, "time_window", "unknown field"),
        (
            {"start": "22:00", "end": "06:00", "must_finish_in_window": "yes"},
            "time_window.must_finish",
            "true",
        ),
        ("22:00-06:00", "time_window", "mapping"),
    ],
)
def test_bad_windows_name_the_field(data: object, path: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        TimeWindow.parse(data)
    assert info.value.path.startswith(path)
    assert message in info.value.message


def test_naive_instant_is_refused() -> None:
    with pytest.raises(ValidationError, match="naive"):
        NIGHT.contains(datetime(2026, 1, 1, 23))


ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]


@given(
    start=st.times(),
    end=st.times(),
    zone=st.sampled_from(ZONES),
    instant=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)
    ),
)
def test_next_open_is_inside_and_nothing_earlier_is(
    start: time, end: time, zone: str, instant: datetime
) -> None:
    """Property: next_open lands inside the window and no whole second before it (after the
    instant) is inside; closes_at lands outside and every probe between is inside."""
    start, end = start.replace(microsecond=0), end.replace(microsecond=0)
    if start == end:
        return
    window = TimeWindow(start=start, end=end, timezone=zone)
    opens = window.next_open(instant)
    assert opens >= instant
    assert window.contains(opens)
    closes = window.closes_at(opens)
    assert closes > opens
    assert not window.contains(closes)
    for fraction in (0.25, 0.5, 0.75):
        assert window.contains(opens + (closes - opens) * fraction)
        probe = instant + (opens - instant) * fraction
        if probe < opens - timedelta(seconds=1):
            assert not window.contains(probe)
