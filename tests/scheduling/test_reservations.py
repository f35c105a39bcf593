"""Capacity bookings (issue #13): booked room is kept for its owner, conflicts are refused.

Config: ClusterQueue ``shared`` with 8 GPUs of flavor ``default``; tenants ``ns-a`` (the owner of
the bookings below, LocalQueue ``a``) and ``ns-b`` (LocalQueue ``b``) both queue into it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from support.admission import GPU, T0, cq, job, used

from budcore.domain.errors import AlreadyExistsError, NotFoundError, ValidationError
from budcore.domain.job import Job
from budcore.domain.reservation import (
    Reservation,
    ReservationConflictError,
    booked_peak,
    find_conflict,
)
from budcore.scheduling import LocalQueue, QueueConfig, ResourceFlavor, Scheduler
from budcore.scheduling.forecast import ForecastOptions
from budcore.scheduling.reservations import capacity_for, may_use, reservation_use

H = timedelta(hours=1)
START = T0 + 10 * H
END = START + 8 * H


def shared_config(gpus: int = 8, cohort: str | None = None, extra: tuple = ()) -> QueueConfig:
    queues = [cq("shared", {"default": {GPU: gpus}}, cohort=cohort), *extra]
    local = [
        LocalQueue(name="a", namespace="ns-a", cluster_queue="shared"),
        LocalQueue(name="b", namespace="ns-b", cluster_queue="shared"),
    ]
    local += [LocalQueue(name=q.name, namespace=f"ns-{q.name}", cluster_queue=q.name) for q in extra]
    return QueueConfig.build(
        flavors=[ResourceFlavor(name="default")], cluster_queues=queues, local_queues=local
    )


def booking(name: str = "a-morning", gpus: int = 4, start=START, end=END, **kw: object) -> Reservation:
    return Reservation.of(name, kw.pop("owner", "ns-a"), "shared", "default", GPU, gpus, start, end, **kw)  # type: ignore[arg-type]


def timed(queue: str, gpus: int, **fields: object) -> Job:
    return job(queue, gpus).model_copy(update=fields)


def admitted_ids(scheduler: Scheduler, now) -> list[str]:  # type: ignore[no-untyped-def]
    return [a.job_id for a in scheduler.cycle(now).admitted]


# -- the booking itself -------------------------------------------------------------------------


def test_quantity_is_stored_in_milli_units_and_times_must_be_aware() -> None:
    r = booking(gpus=16)
    assert r.quantity == 16_000
    assert r.duration == 8 * H
    with pytest.raises(Exception, match="after start"):
        booking(start=END, end=START)


def test_back_to_back_bookings_do_not_conflict_but_overlapping_ones_over_quota_do() -> None:
    morning = booking("m", 6, START, START + 4 * H)
    afternoon = booking("n", 6, START + 4 * H, END)
    assert find_conflict([morning], afternoon, 8_000) is None
    overlapping = booking("o", 4, START + 3 * H, START + 5 * H)
    conflict = find_conflict([morning, afternoon], overlapping, 8_000)
    assert conflict is not None
    # The first interval where it overbooks: 13:00-14:00 with the morning booking (10 of 8).
    assert (conflict.start, conflict.end) == (START + 3 * H, START + 4 * H)
    assert [r.name for r in conflict.overlapping] == ["m"]
    assert conflict.booked == 10_000
    assert "m (6 nvidia.com/gpu" in conflict.describe() and "nominal quota of 8" in conflict.describe()


def test_a_booking_larger_than_the_nominal_quota_is_refused_on_its_own() -> None:
    conflict = find_conflict([], booking(gpus=9), 8_000)
    assert conflict is not None and conflict.overlapping == ()
    assert "more than the nominal quota 8" in conflict.describe()


def test_bookings_of_other_keys_never_conflict() -> None:
    other = Reservation.of("x", "ns-a", "other", "default", GPU, 8, START, END)
    assert find_conflict([other], booking(gpus=8), 8_000) is None
    assert booked_peak([booking("p", 3), booking("q", 2, START + H, START + 2 * H)], START, END) == 5_000


def test_capacity_names_the_unknown_field() -> None:
    config = shared_config()
    assert capacity_for(config, booking()) == 8_000
    for field, r in [
        ("cluster_queue", Reservation.of("r", "ns-a", "nope", "default", GPU, 1, START, END)),
        ("flavor", Reservation.of("r", "ns-a", "shared", "h100", GPU, 1, START, END)),
        ("resource", Reservation.of("r", "ns-a", "shared", "default", "cpu", 1, START, END)),
    ]:
        with pytest.raises(ValidationError) as err:
            capacity_for(config, r)
        assert err.value.path == field


def test_scheduler_refuses_conflicts_and_duplicates_with_nothing_changed() -> None:
    scheduler = Scheduler(shared_config())
    scheduler.reserve(booking("first", 6))
    with pytest.raises(ReservationConflictError, match="first"):
        scheduler.reserve(booking("second", 4))
    with pytest.raises(AlreadyExistsError):
        scheduler.reserve(booking("first", 1))
    assert [r.name for r in scheduler.reservations()] == ["first"]
    scheduler.cancel_reservation("first")
    with pytest.raises(NotFoundError):
        scheduler.cancel_reservation("first")
    scheduler.reserve(booking("second", 4))


# -- admission inside the window ----------------------------------------------------------------


def test_inside_the_window_the_room_is_held_for_the_owner() -> None:
    scheduler = Scheduler(shared_config())
    scheduler.reserve(booking(gpus=6))
    inside = START + H
    other = job("b", 4)
    scheduler.submit(other, now=inside)
    assert admitted_ids(scheduler, inside) == []  # 8 - 6 held = 2 free for ns-b
    reason = scheduler.explain(other.id)
    assert "reservation a-morning holds 6 nvidia.com/gpu of default for ns-a" in reason
    owner = job("a", 8)  # the owner may use its booking and what is free besides
    scheduler.submit(owner, now=inside)
    assert admitted_ids(scheduler, inside) == [owner.id]
    assert used(scheduler, "shared") == 8


def test_the_owners_usage_counts_towards_its_booking() -> None:
    scheduler = Scheduler(shared_config())
    scheduler.reserve(booking(gpus=6))
    inside = START + H
    owner = job("a", 4)
    scheduler.submit(owner, now=inside)
    assert admitted_ids(scheduler, inside) == [owner.id]
    # 4 used by the owner, 2 still held for it: ns-b gets the remaining 2, not 4.
    small, large = job("b", 2), job("b", 3)
    scheduler.submit(large, now=inside)
    scheduler.submit(small, now=inside)
    assert admitted_ids(scheduler, inside) == [small.id]


def test_a_booking_tied_to_jobs_serves_only_those() -> None:
    named = job("a", 6)
    scheduler = Scheduler(shared_config())
    scheduler.reserve(booking(gpus=6, job_ids=[named.id]))
    inside = START + H
    unnamed = job("a", 6)
    scheduler.submit(unnamed, now=inside)
    assert admitted_ids(scheduler, inside) == []
    scheduler.submit(named, now=inside)
    assert admitted_ids(scheduler, inside) == [named.id]


def test_after_the_end_the_room_is_free_and_next_wakeup_says_when() -> None:
    scheduler = Scheduler(shared_config())
    scheduler.reserve(booking(gpus=6))
    inside = START + H
    other = job("b", 8)
    scheduler.submit(other, now=inside)
    assert admitted_ids(scheduler, inside) == []
    assert scheduler.next_wakeup() == END
    assert admitted_ids(scheduler, END) == [other.id]


def test_booked_room_is_not_lent_to_the_cohort() -> None:
    borrower = cq("borrower", {"default": {GPU: 0}}, cohort="pool")
    scheduler = Scheduler(shared_config(cohort="pool", extra=(borrower,)))
    scheduler.reserve(booking(gpus=6))
    inside = START + H
    wants = job("borrower", 4)
    scheduler.submit(wants, now=inside)
    assert admitted_ids(scheduler, inside) == []
    fits = job("borrower", 2)
    scheduler.submit(fits, now=inside)
    assert admitted_ids(scheduler, inside) == [fits.id]


# -- before the start ---------------------------------------------------------------------------


def test_before_the_start_only_work_that_ends_in_time_or_can_be_preempted_uses_the_room() -> None:
    before = START - 2 * H
    booked = booking(gpus=6)
    protected = {"preemptible": False}
    ends_in_time = timed("b", 6, max_duration=2 * H, **protected)
    estimated = timed("b", 6, estimated_duration=H, **protected)
    too_long = timed("b", 6, max_duration=3 * H, **protected)
    unknown = timed("b", 6, **protected)
    preemptible = timed("b", 6)
    assert may_use(booked, ends_in_time, before)
    assert may_use(booked, estimated, before)
    assert not may_use(booked, too_long, before)
    assert not may_use(booked, unknown, before)
    assert may_use(booked, preemptible, before)
    assert not may_use(booked, preemptible, START)  # inside the window: owner only
    assert may_use(booked, job("a", 6), START)


def test_a_long_protected_job_waits_while_a_short_one_of_the_same_shape_goes_first() -> None:
    scheduler = Scheduler(shared_config())
    scheduler.reserve(booking(gpus=6))
    before = START - 2 * H
    long_job = timed("b", 4, preemptible=False, max_duration=5 * H)
    short_job = timed("b", 4, preemptible=False, max_duration=H)
    scheduler.submit(long_job, now=before)
    scheduler.submit(short_job, now=before)
    # Same LocalQueue and request (one shape): the head failing does not hide the short one.
    assert admitted_ids(scheduler, before) == [short_job.id]


def test_preemptible_work_in_the_room_is_evicted_at_the_start() -> None:
    scheduler = Scheduler(shared_config())
    scheduler.reserve(booking(gpus=6))
    before = START - H
    guest = job("b", 8)
    scheduler.submit(guest, now=before)
    assert admitted_ids(scheduler, before) == [guest.id]
    owner = job("a", 6)
    scheduler.submit(owner, now=START)
    result = scheduler.cycle(START)
    assert [(e.job_id, e.cluster_queue) for e in result.evictions] == [(guest.id, "shared")]
    assert "reservation a-morning for ns-a starts" in result.evictions[0].reason
    assert result.admitted == []  # the guest still holds its quota until it is gone
    scheduler.release(guest.id, START)
    assert admitted_ids(scheduler, START) == [owner.id]
    # A later cycle in the window does not evict again.
    assert scheduler.cycle(START + H).evictions == []


def test_only_as_much_as_the_booking_needs_is_evicted() -> None:
    scheduler = Scheduler(shared_config())
    scheduler.reserve(booking(gpus=4))
    before = START - H
    guests = [job("b", 2) for _ in range(4)]
    for guest in guests:
        scheduler.submit(guest, now=before)
    admitted = admitted_ids(scheduler, before)
    assert sorted(admitted) == sorted(g.id for g in guests)
    evicted = [e.job_id for e in scheduler.cycle(START).evictions]
    assert len(evicted) == 2  # 4 GPUs booked: two 2-GPU guests go, two stay


def test_the_forecast_sees_the_booking() -> None:
    scheduler = Scheduler(shared_config(), forecast=ForecastOptions(default_runtime=H))
    scheduler.reserve(booking(gpus=6))
    inside = START + H
    other = job("b", 8).model_copy(update={"estimated_duration": H})
    scheduler.submit(other, now=inside)
    scheduler.cycle(inside)
    eta = scheduler.eta(other.id)
    assert eta is not None and eta.start == END


# -- reporting ----------------------------------------------------------------------------------


def test_reservation_use_caps_the_owner_at_the_booked_quantity() -> None:
    r = booking(gpus=4)  # 8 h x 4 GPUs booked
    runs = [
        (START - H, START + 2 * H, 6_000),  # 6 GPUs for the first 2 h: counts 4
        (START + 4 * H, None, 2_000),  # 2 GPUs from 14:00, still running
    ]
    use = reservation_use(r, runs, until=END + H)
    assert use.booked == 8 * 3600 * 4_000
    assert use.used == (2 * 3600 * 4_000) + (4 * 3600 * 2_000)
    assert use.unused == use.booked - use.used
    assert 0 < use.utilisation < 1


def test_an_owners_usage_counts_towards_one_of_its_bookings_only() -> None:
    """Two 1-GPU bookings of ns-b, which uses 1 GPU: one booking is filled, the other still holds 1
    (counting the GPU towards both once let ns-a take the room at the start: found by the
    property in test_reservation_properties.py)."""
    scheduler = Scheduler(shared_config(gpus=4))
    scheduler.reserve(booking("b1", 1, owner="ns-b"))
    scheduler.reserve(booking("b2", 1, owner="ns-b"))
    inside = START + H
    mine = job("b", 1)
    scheduler.submit(mine, now=inside)
    assert admitted_ids(scheduler, inside) == [mine.id]
    held = {
        room.reservation.name: room.held
        for room in scheduler.bookings.rooms(inside, scheduler.admitted)["shared"]
    }
    assert held == {"b2": 1_000}
    others = [job("a", 1) for _ in range(3)]
    for other in others:
        scheduler.submit(other, now=inside)
    assert len(admitted_ids(scheduler, inside)) == 2  # 4 - 1 used - 1 still held for ns-b
