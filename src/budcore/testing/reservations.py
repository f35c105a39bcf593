"""A reusable pytest suite that checks a reservation store against the port's contract.

Subclass :class:`ReservationStoreConformance`, name the subclass ``Test…`` so pytest collects it,
and override :meth:`~ReservationStoreConformance.make_store`; every ``test_*`` method then runs
against the implementation::

    from budcore.ports import ReservationStore
    from budcore.testing.reservations import ReservationStoreConformance

    class TestMyStore(ReservationStoreConformance):
        concurrent_bookers = 4  # a store shared by threads or services: run the race tests

        def make_store(self) -> ReservationStore:
            return MyStore(url=...)  # must be empty: no bookings

Contract notes the kit relies on (see :mod:`budcore.ports.reservation_store` for the port):

- ``make_store`` is called once per test *and* once per hypothesis example and must return an
  **empty** store. The ``store`` fixture is one such store, for tests an implementer adds.
- Bookings are compared field by field after a round trip: a store must give back exactly what it
  was given (timezone-aware UTC datetimes at microsecond precision, ``job_ids`` as a tuple in its
  order, ``quantity`` in milli-units up to ``2**63 - 1``, ``created_at``, any text without NUL in
  ``cluster_queue``, ``flavor`` and ``resource``).
- Conflicts are decided per instant: at no instant may the bookings of one (ClusterQueue, flavor,
  resource) together book more than the capacity passed to ``book``. The property test checks
  every decision against an independent sweep over a model the test keeps, and a refusal's
  details against :func:`~budcore.domain.reservation.find_conflict` on that model.
- ``hypothesis_max_examples`` (class attribute) bounds the property tests for slow stores;
  ``None`` uses the active hypothesis profile.
- **Shared backends.** ``concurrent_bookers`` (default 0: the race tests are skipped) is how many
  threads race to book at once; a store meant to be shared by several threads or services (a
  database, a locked file) sets it to 2 or more. Each thread books through its own handle,
  :meth:`~ReservationStoreConformance.share` (default: the same object), which a store that can be
  opened twice on one backend overrides to do so, as a second service would. A race that one
  round may let pass by luck runs ``race_rounds`` (5) times.

Needs ``pytest`` and ``hypothesis`` (the ``budcore[testing]`` extra). Long because the contract is
one suite: every check is a test method an implementer inherits as it is, with the bookings and
numbers it expects spelled out next to the checks, and the races a shared store must win.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from budcore.domain.errors import AlreadyExistsError, NotFoundError
from budcore.domain.ids import JobId, TenantId
from budcore.domain.reservation import (
    Reservation,
    ReservationConflict,
    ReservationConflictError,
    find_conflict,
)
from budcore.domain.resources import NVIDIA_GPU
from budcore.ports.reservation_store import ReservationStore
from budcore.testing.concurrency import race as race_threads
from budcore.testing.conformance import kit_settings
from budcore.testing.fakes import DEFAULT_START

__all__ = ["GPU", "ReservationStoreConformance", "overbooked", "reservation_strategy"]

GPU = 1000  # milli-units per GPU
CQ = "cq-a"
FLAVOR = "h100"
OWNER = "team-a"
MAX_BIGINT = 2**63 - 1

Key = tuple[str, str, str]


def _expect(actual: object, expected: object, what: str) -> None:
    assert actual == expected, f"{what}: got {actual!r}, expected {expected!r}"


def _ordered(reservations: Iterable[Reservation]) -> list[Reservation]:
    return sorted(reservations, key=lambda r: (r.start, r.name))


def _names(reservations: Iterable[Reservation]) -> list[str]:
    return [r.name for r in reservations]


def overbooked(reservations: Iterable[Reservation], capacity: Callable[[Key], int]) -> str | None:
    """Where ``reservations`` book more than ``capacity(key)`` at some instant (None: nowhere).

    An independent sweep (not :func:`~budcore.domain.reservation.find_conflict`): per key, the
    bookings' starts add and their ends subtract, ends first at one instant (``[start, end)``).
    """
    events: dict[Key, list[tuple[datetime, int, str]]] = {}
    for r in reservations:
        events.setdefault(r.key, []).extend(((r.start, r.quantity, r.name), (r.end, -r.quantity, r.name)))
    for key, changes in sorted(events.items()):
        level = 0
        limit = capacity(key)
        for at, delta, name in sorted(changes, key=lambda e: (e[0], e[1])):
            level += delta
            if level > limit:
                return (
                    f"{'/'.join(key)} books {level} of {limit} milli-units at {at.isoformat()} "
                    f"(when {name} starts)"
                )
    return None


_TIMEZONES = (UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)))
_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=40)
_NAME = st.from_regex(r"[a-z0-9]([-a-z0-9_.]{0,30}[a-z0-9])?", fullmatch=True)


@st.composite
def reservation_strategy(draw: st.DrawFn) -> Reservation:
    """Any valid booking: names, any NUL-free text for the key, aware datetimes in several zones
    at microsecond precision, job ids, quantities from one milli-unit to ``2**63 - 1``."""
    instants = st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.sampled_from(_TIMEZONES)
    )
    start = draw(instants, label="start")
    length = draw(
        st.one_of(st.integers(1, 10**6), st.integers(1, 10**13)).map(lambda us: timedelta(microseconds=us)),
        label="length",
    )
    return Reservation(
        name=draw(_NAME, label="name"),
        owner=TenantId(draw(_NAME, label="owner")),
        cluster_queue=draw(_TEXT, label="cluster_queue"),
        flavor=draw(_TEXT, label="flavor"),
        resource=draw(_TEXT, label="resource"),
        quantity=draw(st.one_of(st.integers(1, 10**6), st.just(MAX_BIGINT), st.integers(1, MAX_BIGINT))),
        start=start,
        end=start + length,
        job_ids=tuple(JobId(j) for j in draw(st.lists(_TEXT, max_size=4), label="job_ids")),
        created_at=draw(instants, label="created_at"),
    )


class ReservationStoreConformance:
    """The :class:`~budcore.ports.ReservationStore` contract as pytest tests; override :meth:`make_store`."""

    hypothesis_max_examples: ClassVar[int | None] = None
    base_time: ClassVar[datetime] = DEFAULT_START
    concurrent_bookers: ClassVar[int] = 0
    race_rounds: ClassVar[int] = 5

    # Hooks for the implementer ---------------------------------------------------------------
    def make_store(self) -> ReservationStore:
        """Return a new, empty store."""
        raise NotImplementedError(
            f"{type(self).__name__} must override make_store(self) to return an empty ReservationStore"
        )

    def share(self, store: ReservationStore) -> ReservationStore:
        """Another handle on ``store``'s backend, as a second thread or service would open it
        (default: ``store`` itself). Only the race tests call it."""
        return store

    @pytest.fixture
    def store(self) -> ReservationStore:
        """An empty store (:meth:`make_store`)."""
        return self.make_store()

    # Helpers ---------------------------------------------------------------------------------
    def at(self, hours: float) -> datetime:
        """``hours`` after :attr:`base_time` (a day's clock: ``at(9)`` is 09:00)."""
        return self.base_time + timedelta(hours=hours)

    def booking(
        self,
        name: str,
        start: float,
        end: float,
        gpus: float,
        *,
        cluster_queue: str = CQ,
        flavor: str = FLAVOR,
        resource: str = NVIDIA_GPU,
        owner: str = OWNER,
        job_ids: Sequence[str] = (),
    ) -> Reservation:
        """``gpus`` of ``resource`` in ``flavor`` of ``cluster_queue`` from ``at(start)`` to ``at(end)``."""
        return Reservation(
            name=name,
            owner=TenantId(owner),
            cluster_queue=cluster_queue,
            flavor=flavor,
            resource=resource,
            quantity=round(gpus * GPU),
            start=self.at(start),
            end=self.at(end),
            job_ids=tuple(JobId(j) for j in job_ids),
            created_at=self.base_time - timedelta(days=1),
        )

    @staticmethod
    def assert_same(actual: Reservation, expected: Reservation, what: str) -> None:
        """Fail unless the bookings are equal field by field, with UTC datetimes and a tuple of job ids."""
        assert isinstance(actual, Reservation), f"{what}: got {type(actual).__name__}, not a Reservation"
        got, want = actual.model_dump(), expected.model_dump()
        differences = [
            f"{k}: stored {got.get(k)!r}, expected {v!r}" for k, v in want.items() if got.get(k) != v
        ]
        assert not differences, f"{what}: " + "; ".join(differences)
        for field in ("start", "end", "created_at"):
            value: datetime = getattr(actual, field)
            assert value.tzinfo is not None and value.utcoffset() == timedelta(0), (
                f"{what}: {field} {value!r} is not a UTC datetime"
            )
        assert type(actual.job_ids) is tuple, f"{what}: job_ids is a {type(actual.job_ids).__name__}"
        assert type(actual.quantity) is int, f"{what}: quantity is a {type(actual.quantity).__name__}"

    def assert_holds(self, store: ReservationStore, expected: Iterable[Reservation], what: str) -> None:
        """The store lists exactly ``expected``, by start then name, each equal field by field."""
        want = _ordered(expected)
        got = store.list()
        _expect(_names(got), _names(want), f"{what}: the bookings listed")
        for actual, booking in zip(got, want, strict=True):
            self.assert_same(actual, booking, f"{what}: {booking.name}")

    def refused(
        self, store: ReservationStore, reservation: Reservation, capacity: int, what: str
    ) -> ReservationConflict:
        """Book ``reservation``, expecting a conflict; return it (and check nothing was stored)."""
        before = store.list()
        with pytest.raises(ReservationConflictError) as info:
            store.book(reservation, capacity=capacity)
        _expect(store.list(), before, f"{what}: the bookings after the refusal")
        with pytest.raises(NotFoundError):
            store.get(reservation.name)
        conflict = info.value.conflict
        assert isinstance(conflict, ReservationConflict), f"{what}: the error carries no ReservationConflict"
        _expect(conflict.reservation, reservation, f"{what}: the refused booking")
        return conflict

    # The port ---------------------------------------------------------------------------------
    def test_is_the_port(self, store: ReservationStore) -> None:
        assert isinstance(store, ReservationStore)

    def test_an_empty_store_lists_nothing(self, store: ReservationStore) -> None:
        _expect(store.list(), [], "an empty store")
        _expect(store.list(cluster_queue=CQ, start=self.at(0), end=self.at(24)), [], "filtered")

    def test_book_returns_the_booking_and_get_and_list_find_it(self, store: ReservationStore) -> None:
        booking = self.booking("llm-eval", 9, 17, 16, job_ids=["train-1"])
        self.assert_same(store.book(booking, capacity=16 * GPU), booking, "book's result")
        self.assert_same(store.get("llm-eval"), booking, "get")
        self.assert_holds(store, [booking], "after one booking")

    def test_round_trip_preserves_every_field(self, store: ReservationStore) -> None:
        india = timezone(timedelta(hours=5, minutes=30))
        booking = Reservation(
            name="every.field_1",
            owner=TenantId("team-b"),
            cluster_queue="Research Queue/ü",
            flavor="h100-80gb",
            resource="nvidia.com/mig-1g.10gb",
            quantity=500,  # milli-units: half a MIG slice
            start=datetime(2030, 3, 30, 14, 30, 0, 123456, tzinfo=india),
            end=datetime(2030, 3, 31, 2, 0, 0, 1, tzinfo=UTC),
            job_ids=(JobId("z-last"), JobId("a-first"), JobId("m")),
            created_at=datetime(2030, 3, 1, 8, 15, 59, 999999, tzinfo=timezone(timedelta(hours=-8))),
        )
        store.book(booking, capacity=1 * GPU)
        self.assert_same(store.get(booking.name), booking, "get")
        self.assert_same(store.list()[0], booking, "list")
        self.assert_same(store.cancel(booking.name), booking, "cancel's result")
        _expect(store.list(), [], "after the cancellation")

    def test_round_trip_of_any_booking(self) -> None:
        @kit_settings(self.hypothesis_max_examples)
        @given(booking=reservation_strategy())
        def run(booking: Reservation) -> None:
            store = self.make_store()
            self.assert_same(store.book(booking, capacity=booking.quantity), booking, "book's result")
            self.assert_same(store.get(booking.name), booking, "get")
            self.assert_holds(store, [booking], "list")
            self.assert_same(store.cancel(booking.name), booking, "cancel's result")
            _expect(store.list(), [], "after the cancellation")

        run()

    def test_a_stored_name_is_already_exists_and_changes_nothing(self, store: ReservationStore) -> None:
        first = self.booking("llm-eval", 9, 17, 4)
        store.book(first, capacity=16 * GPU)
        elsewhere = self.booking("llm-eval", 20, 22, 1, cluster_queue="cq-b", owner="team-b")
        for duplicate, what in ((first, "the same booking again"), (elsewhere, "another booking, same name")):
            with pytest.raises(AlreadyExistsError):
                store.book(duplicate, capacity=16 * GPU)
            self.assert_holds(store, [first], f"after {what}")
        self.assert_same(store.get("llm-eval"), first, "the first booking")

    def test_an_unknown_name_is_not_found(self, store: ReservationStore) -> None:
        with pytest.raises(NotFoundError):
            store.get("ghost")
        with pytest.raises(NotFoundError):
            store.cancel("ghost")
        store.book(self.booking("real", 9, 10, 1), capacity=GPU)
        store.cancel("real")
        with pytest.raises(NotFoundError):
            store.cancel("real")  # cancelling twice
        with pytest.raises(NotFoundError):
            store.get("real")
        _expect(store.list(), [], "after the cancellation")

    def test_cancel_returns_the_booking_and_frees_its_room(self, store: ReservationStore) -> None:
        whole = self.booking("whole-day", 0, 24, 16)
        store.book(whole, capacity=16 * GPU)
        later = self.booking("afternoon", 12, 18, 8)
        self.refused(store, later, 16 * GPU, "while the day is booked")
        self.assert_same(store.cancel("whole-day"), whole, "cancel's result")
        store.book(later, capacity=16 * GPU)
        self.assert_holds(store, [later], "after the room was freed")
        # The name of a cancelled booking may be booked again.
        again = self.booking("whole-day", 0, 12, 8)
        store.book(again, capacity=16 * GPU)
        self.assert_holds(store, [again, later], "the name booked again")

    # Conflicts -------------------------------------------------------------------------------
    def test_a_conflict_names_the_overlap_and_stores_nothing(self, store: ReservationStore) -> None:
        # Capacity 16: a holds 8 over [9, 12), b 6 over [10, 14); c asks 4 over [11, 13).
        a, b = self.booking("a", 9, 12, 8), self.booking("b", 10, 14, 6)
        for booking in (a, b):
            store.book(booking, capacity=16 * GPU)
        c = self.booking("c", 11, 13, 4)
        conflict = self.refused(store, c, 16 * GPU, "c")
        # From 11 to 12 a, b and c together book 18 of 16 (from 12 on, 10 would fit).
        _expect(
            (_names(conflict.overlapping), conflict.start, conflict.end, conflict.booked, conflict.capacity),
            (["a", "b"], self.at(11), self.at(12), 18 * GPU, 16 * GPU),
            "the conflict",
        )
        for r in conflict.overlapping:
            self.assert_same(r, {"a": a, "b": b}[r.name], f"the overlapping booking {r.name}")
        _expect(conflict, find_conflict([a, b], c, 16 * GPU), "the conflict find_conflict computes")
        message = str(ReservationConflictError(conflict))
        for part in ("a (", "b (", self.at(11).isoformat(), self.at(12).isoformat()):
            assert part in message, f"{part!r} missing from the message {message!r}"
        self.assert_holds(store, [a, b], "after the refusal")
        # What fits there is still booked: 2 GPUs over the same hours.
        store.book(self.booking("c", 11, 13, 2), capacity=16 * GPU)

    def test_a_booking_above_the_capacity_alone_conflicts(self, store: ReservationStore) -> None:
        big = self.booking("big", 9, 17, 17)
        conflict = self.refused(store, big, 16 * GPU, "17 of 16 GPUs")
        _expect(
            (conflict.overlapping, conflict.start, conflict.end, conflict.booked, conflict.capacity),
            ((), big.start, big.end, 17 * GPU, 16 * GPU),
            "the conflict",
        )
        self.refused(store, self.booking("any", 9, 17, 0.001), 0, "capacity 0")
        store.book(self.booking("exact", 9, 17, 16), capacity=16 * GPU)  # the whole capacity fits

    def test_bookings_of_other_keys_never_conflict(self, store: ReservationStore) -> None:
        full = self.booking("full", 9, 17, 16)
        others = [
            self.booking("other-queue", 9, 17, 16, cluster_queue="cq-b"),
            self.booking("other-flavor", 9, 17, 16, flavor="a100"),
            self.booking("other-resource", 9, 17, 16, resource="amd.com/gpu"),
        ]
        for booking in (full, *others):
            store.book(booking, capacity=16 * GPU)
        self.assert_holds(store, [full, *others], "one full booking per key")
        self.refused(store, self.booking("one-more", 10, 11, 1), 16 * GPU, "the first key is full")

    def test_intervals_that_do_not_overlap_never_conflict(self, store: ReservationStore) -> None:
        morning = self.booking("morning", 9, 12, 16)
        afternoon = self.booking("afternoon", 12, 17, 16)  # [9, 12) and [12, 17): back to back
        night = self.booking("night", 0, 9, 16)
        for booking in (morning, afternoon, night):
            store.book(booking, capacity=16 * GPU)
        self.assert_holds(store, [night, morning, afternoon], "three back-to-back full bookings")
        one_us = timedelta(microseconds=1)
        overlap = self.booking("overlap", 17, 18, 1).model_copy(update={"start": self.at(17) - one_us})
        conflict = self.refused(store, overlap, 16 * GPU, "one microsecond into the afternoon")
        _expect(
            (_names(conflict.overlapping), conflict.start, conflict.end),
            (["afternoon"], self.at(17) - one_us, self.at(17)),
            "the one-microsecond conflict",
        )

    def test_conflicts_are_decided_per_instant(self, store: ReservationStore) -> None:
        # a (10 GPUs, [9, 12)) and b (10, [12, 17)) never overlap, so 6 more fit across 12:00 even
        # though a, b and c book 26 GPUs over [11, 13) in total.
        for booking in (self.booking("a", 9, 12, 10), self.booking("b", 12, 17, 10)):
            store.book(booking, capacity=16 * GPU)
        store.book(self.booking("c", 11, 13, 6), capacity=16 * GPU)
        conflict = self.refused(store, self.booking("d", 11.5, 12.5, 0.5), 16 * GPU, "d")
        _expect(
            (_names(conflict.overlapping), conflict.start, conflict.end, conflict.booked),
            (["a", "c"], self.at(11.5), self.at(12), 16 * GPU + 500),
            "the first instant d overbooks",
        )

    # Listing ---------------------------------------------------------------------------------
    def test_list_orders_by_start_then_name_bytewise(self, store: ReservationStore) -> None:
        # Bytewise, '-' < '.' < '0'-'9' < '_' < 'a'-'z'; a locale's collation would order these
        # differently (ignoring punctuation). Booked in reverse to show the store sorts.
        names = ["b-1", "b.1", "b1", "b10", "b2", "b_1", "ba"]
        bookings = [self.booking(n, 9, 10, 1) for n in names]
        bookings += [self.booking("a-late", 10, 11, 1), self.booking("z-early", 8, 9, 1)]
        for booking in reversed(bookings):
            store.book(booking, capacity=16 * GPU)
        _expect(_names(store.list()), ["z-early", *names, "a-late"], "the order")

    def test_list_filters_by_cluster_queue_and_overlap(self, store: ReservationStore) -> None:
        bookings = [
            self.booking("early", 6, 9, 1),
            self.booking("morning", 9, 12, 1),
            self.booking("noon", 11, 13, 1),
            self.booking("afternoon", 12, 17, 1),
            self.booking("other-queue", 10, 14, 1, cluster_queue="cq-b"),
        ]
        for booking in bookings:
            store.book(booking, capacity=16 * GPU)
        cases: list[tuple[dict[str, Any], list[str]]] = [
            ({}, ["early", "morning", "other-queue", "noon", "afternoon"]),
            ({"cluster_queue": CQ}, ["early", "morning", "noon", "afternoon"]),
            ({"cluster_queue": "cq-b"}, ["other-queue"]),
            ({"cluster_queue": "cq-none"}, []),
            # [start, end) overlap: a booking ending at `start` or starting at `end` is left out.
            ({"start": self.at(12)}, ["other-queue", "noon", "afternoon"]),
            ({"end": self.at(9)}, ["early"]),
            ({"start": self.at(9), "end": self.at(11)}, ["morning", "other-queue"]),
            ({"start": self.at(11.5), "end": self.at(12.5)}, ["morning", "other-queue", "noon", "afternoon"]),
            ({"start": self.at(17), "end": self.at(24)}, []),
            ({"start": self.at(0), "end": self.at(6)}, []),
            ({"cluster_queue": CQ, "start": self.at(10), "end": self.at(12)}, ["morning", "noon"]),
            ({"cluster_queue": "cq-b", "start": self.at(14)}, []),
            ({"cluster_queue": CQ, "end": self.at(9) + timedelta(microseconds=1)}, ["early", "morning"]),
        ]
        for filters, expected in cases:
            _expect(_names(store.list(**filters)), expected, f"list({filters})")
            lo, hi = filters.get("start", self.at(-(10**5))), filters.get("end", self.at(10**5))
            model = [
                r
                for r in _ordered(bookings)
                if filters.get("cluster_queue") in (None, r.cluster_queue) and r.overlaps(lo, hi)
            ]
            _expect(_names(model), expected, f"the model of list({filters})")
        # Datetimes in another zone name the same instants.
        pacific = timezone(timedelta(hours=-8))
        _expect(
            _names(store.list(start=self.at(12).astimezone(pacific), end=self.at(13).astimezone(pacific))),
            ["other-queue", "noon", "afternoon"],
            "a window given in UTC-8",
        )

    # Properties --------------------------------------------------------------------------------
    def test_random_book_and_cancel_sequences_match_a_model_and_never_overbook(self) -> None:
        keys: list[Key] = [(CQ, "f1", NVIDIA_GPU), (CQ, "f2", NVIDIA_GPU), ("cq-b", "f1", NVIDIA_GPU)]
        names = [f"r{i}" for i in range(10)]

        @kit_settings(self.hypothesis_max_examples)
        @given(capacities=st.lists(st.integers(0, 4), min_size=3, max_size=3), data=st.data())
        def run(capacities: list[int], data: st.DataObject) -> None:
            capacity = {key: gpus * GPU for key, gpus in zip(keys, capacities, strict=True)}
            store = self.make_store()
            model: dict[str, Reservation] = {}
            for step in range(data.draw(st.integers(1, 25), label="operations")):
                op = data.draw(st.sampled_from(("book", "book", "book", "cancel", "get")), label="op")
                name = data.draw(st.sampled_from(names), label="name")
                what = f"step {step}: {op} {name}"
                if op == "book":
                    cq, flavor, resource = data.draw(st.sampled_from(keys), label="key")
                    start = data.draw(st.integers(0, 20), label="start") / 2  # half-hours of a day
                    length = data.draw(st.integers(1, 12), label="length") / 2
                    quantity = data.draw(st.sampled_from((1, 500, 1000, 1500, 2000, 4000)), label="milli")
                    booking = self.booking(
                        name, start, start + length, quantity / GPU, cluster_queue=cq, flavor=flavor
                    )
                    _expect((booking.key, booking.quantity), ((cq, flavor, resource), quantity), what)
                    limit = capacity[booking.key]
                    if name in model:
                        with pytest.raises(AlreadyExistsError):
                            store.book(booking, capacity=limit)
                    elif overbooked([*model.values(), booking], capacity.__getitem__) is not None:
                        conflict = self.refused(store, booking, limit, what)
                        _expect(conflict, find_conflict(model.values(), booking, limit), f"{what}: conflict")
                    else:
                        self.assert_same(store.book(booking, capacity=limit), booking, what)
                        model[name] = booking
                elif op == "cancel":
                    if name in model:
                        self.assert_same(store.cancel(name), model.pop(name), what)
                    else:
                        with pytest.raises(NotFoundError):
                            store.cancel(name)
                elif name in model:
                    self.assert_same(store.get(name), model[name], what)
                else:
                    with pytest.raises(NotFoundError):
                        store.get(name)
                stored = store.list()
                _expect(stored, _ordered(model.values()), f"{what}: the bookings")
                problem = overbooked(stored, capacity.__getitem__)
                assert problem is None, f"{what}: the store overbooks: {problem}"
            lo = self.at(data.draw(st.integers(0, 24), label="window start") / 2)
            hi = lo + timedelta(hours=data.draw(st.integers(1, 12), label="window length") / 2)
            queues: list[str | None] = [None, CQ, "cq-b"]
            for queue in queues:
                expected = [
                    r
                    for r in _ordered(model.values())
                    if queue in (None, r.cluster_queue) and r.overlaps(lo, hi)
                ]
                _expect(
                    store.list(cluster_queue=queue, start=lo, end=hi), expected, f"list({queue}, {lo}, {hi})"
                )

        run()

    # Races (shared backends: concurrent_bookers >= 2) ------------------------------------------
    def race(self, store: ReservationStore, target: Callable[[ReservationStore, int], None]) -> None:
        """Run ``target(handle, i)`` in ``concurrent_bookers`` threads released at once, each with
        its own :meth:`share` handle; re-raise the first failure."""
        n = self.concurrent_bookers
        if n < 2:
            pytest.skip("concurrent_bookers < 2: this store is not meant to be shared")
        race_threads([self.share(store) for _ in range(n)], target, what="booking")

    def test_concurrent_bookings_of_the_last_capacity_exactly_one_wins(self) -> None:
        for round_ in range(self.race_rounds):  # a race lost by luck in one round is won in another
            self._race_for_the_last_capacity(f"round {round_}")

    def _race_for_the_last_capacity(self, what: str) -> None:
        store = self.make_store()
        base = self.booking("base", 9, 17, 8)
        store.book(base, capacity=16 * GPU)
        winners: list[Reservation] = []
        refusals: list[ReservationConflict] = []
        lock = threading.Lock()

        def book(handle: ReservationStore, i: int) -> None:
            # Each asks the last 8 GPUs over its own window; all of them overlap [12, 13).
            booking = self.booking(f"race-{i}", 12 - i / 4, 13 + i / 4, 8)
            try:
                handle.book(booking, capacity=16 * GPU)
            except ReservationConflictError as exc:
                with lock:
                    refusals.append(exc.conflict)
                return
            with lock:
                winners.append(booking)

        self.race(store, book)
        _expect(len(winners), 1, f"{what}: bookings of the last 8 GPUs that succeeded ({_names(winners)})")
        winner = winners[0]
        _expect(len(refusals), self.concurrent_bookers - 1, f"{what}: refusals")
        for conflict in refusals:
            _expect(
                sorted(_names(conflict.overlapping)),
                sorted(["base", winner.name]),
                f"{what}: the refusal of {conflict.reservation.name} names the winner",
            )
        self.assert_holds(store, [base, winner], f"{what}: after the race")

    def test_concurrent_bookings_never_overbook(self, store: ReservationStore) -> None:
        attempts = 4
        won: list[str] = []
        lock = threading.Lock()

        def book(handle: ReservationStore, i: int) -> None:
            for k in range(attempts):  # 1 GPU of 5 each, over windows that all overlap [11, 12)
                booking = self.booking(f"t{i}-{k}", 9 + (i + k) % 3, 12 + k % 2, 1)
                try:
                    handle.book(booking, capacity=5 * GPU)
                except ReservationConflictError:
                    continue
                with lock:
                    won.append(booking.name)

        self.race(store, book)
        stored = store.list()
        _expect(sorted(_names(stored)), sorted(won), "the bookings that succeeded are the ones stored")
        _expect(len(stored), min(5, self.concurrent_bookers * attempts), "bookings of 1 GPU of 5 stored")
        problem = overbooked(stored, lambda key: 5 * GPU)
        assert problem is None, f"the store overbooks: {problem}"

    def test_concurrent_bookings_of_one_name_exactly_one_wins(self, store: ReservationStore) -> None:
        winners: list[Reservation] = []
        lock = threading.Lock()

        def book(handle: ReservationStore, i: int) -> None:
            booking = self.booking("shared-name", 9, 17, 1, cluster_queue=f"cq-{i}")  # other keys: all fit
            try:
                handle.book(booking, capacity=16 * GPU)
            except AlreadyExistsError:
                return
            with lock:
                winners.append(booking)

        self.race(store, book)
        _expect(len(winners), 1, "bookings of one name that succeeded")
        self.assert_holds(store, winners, "after the race")

    def test_concurrent_bookings_of_other_keys_all_succeed(self, store: ReservationStore) -> None:
        def book(handle: ReservationStore, i: int) -> None:
            for k in range(3):
                handle.book(self.booking(f"q{i}-{k}", 9, 17, 16, flavor=f"f{i}-{k}"), capacity=16 * GPU)

        self.race(store, book)
        _expect(len(store.list()), 3 * self.concurrent_bookers, "bookings of distinct keys stored")
