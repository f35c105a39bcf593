"""The reservation store conformance kit against the in-memory store, in memory and backed by a
JSON file, plus what only the file adds: bookings shared between processes, atomic writes, no
overbooking when two processes book the last capacity at once, clear errors for a damaged file."""

from __future__ import annotations

import json
import multiprocessing
import os
import queue as queue_module
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from budcore_adapters.inmemory.reservations import InMemoryReservationStore

from budcore.domain.errors import ValidationError
from budcore.domain.reservation import Reservation, ReservationConflictError
from budcore.plugins import default_registry
from budcore.ports import ReservationStore
from budcore.testing.reservations import ReservationStoreConformance

T0 = datetime(2026, 1, 2, 9, tzinfo=UTC)
GPU = "nvidia.com/gpu"
CAPACITY = 16_000  # 16 GPUs, in milli-units


def booking(
    name: str,
    gpus: int = 8,
    start_h: float = 0,
    end_h: float = 8,
    *,
    cq: str = "gpu",
    flavor: str = "h100",
    owner: str = "team-a",
) -> Reservation:
    return Reservation.of(
        name, owner, cq, flavor, GPU, gpus, T0 + timedelta(hours=start_h), T0 + timedelta(hours=end_h)
    )


class TestInMemoryReservationStore(ReservationStoreConformance):
    concurrent_bookers = 4  # one store object shared by threads

    def make_store(self) -> ReservationStore:
        return InMemoryReservationStore()


class TestFileReservationStore(ReservationStoreConformance):
    """Backed by a JSON file; each racing thread opens its own store on the file, as separate
    ``budcore reserve`` processes do (the cross-process race is below)."""

    concurrent_bookers = 4

    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path: Path) -> None:
        self.directory = tmp_path
        self.opened = 0

    def make_store(self) -> ReservationStore:
        self.opened += 1  # once per test and per hypothesis example: a new, empty file each time
        return InMemoryReservationStore(self.directory / f"bookings-{self.opened}.json")

    def share(self, store: ReservationStore) -> ReservationStore:
        assert isinstance(store, InMemoryReservationStore) and store.path is not None
        return InMemoryReservationStore(store.path)


@pytest.mark.parametrize("backed", [False, True], ids=["memory", "file"])
def test_a_naive_time_filter_is_refused(tmp_path: Path, backed: bool) -> None:
    store = InMemoryReservationStore(tmp_path / "bookings.json" if backed else None)
    with pytest.raises(ValidationError, match="naive"):
        store.list(start=datetime(2026, 1, 1))


# What the file adds --------------------------------------------------------------------------


def test_the_registry_builds_both(tmp_path: Path) -> None:
    registry = default_registry()
    assert registry.reservation_store("inmemory").list() == []
    path = tmp_path / "bookings.json"
    stored = registry.reservation_store("inmemory", path=path).book(booking("a"), capacity=CAPACITY)
    assert InMemoryReservationStore(str(path)).get("a") == stored


def test_the_file_is_created_and_shared_between_instances(tmp_path: Path) -> None:
    path = tmp_path / "bookings.json"
    one = InMemoryReservationStore(path)
    assert json.loads(path.read_text()) == {"version": 1, "reservations": []}
    two = InMemoryReservationStore(path)
    stored = one.book(booking("a", 8), capacity=CAPACITY)
    assert two.get("a") == stored  # created_at and all, through the file
    with pytest.raises(ReservationConflictError):
        two.book(booking("b", 9), capacity=CAPACITY)
    two.cancel("a")
    assert one.list() == []


def test_writes_replace_the_file_and_leave_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "bookings.json"
    store = InMemoryReservationStore(path)
    store.book(booking("a"), capacity=CAPACITY)
    inode = path.stat().st_ino
    store.book(booking("b", 1, 20, 21), capacity=CAPACITY)
    assert path.stat().st_ino != inode  # a new file renamed over the old one, never rewritten in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bookings.json", "bookings.json.lock"]
    names = [r["name"] for r in json.loads(path.read_text())["reservations"]]
    assert names == ["a", "b"]
    # Refused and read-only operations do not write at all.
    inode = path.stat().st_ino
    with pytest.raises(ReservationConflictError):
        store.book(booking("c", 16), capacity=CAPACITY)
    store.list()
    store.get("a")
    assert path.stat().st_ino == inode


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bookings.json"
    store = InMemoryReservationStore(path)
    store.book(booking("a"), capacity=CAPACITY)
    before = path.read_text()

    def crash(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(ValidationError, match="No space left on device"):
        store.book(booking("b", 1, 20, 21), capacity=CAPACITY)
    monkeypatch.undo()
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bookings.json", "bookings.json.lock"]
    assert [r.name for r in store.list()] == ["a"]


def test_an_empty_file_holds_no_bookings(tmp_path: Path) -> None:
    path = tmp_path / "bookings.json"
    path.write_text("")
    assert InMemoryReservationStore(path).list() == []


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        InMemoryReservationStore(tmp_path / "nope" / "bookings.json")
    with pytest.raises(ValidationError, match="is a directory"):
        InMemoryReservationStore(tmp_path)


@pytest.mark.parametrize(
    ("old", "new", "where", "message"),
    [
        ('"quantity": 8000', '"quantity": "lots"', "reservations[0].quantity", "invalid quantity 'lots'"),
        ('09:00:00Z"', '09:00:00"', "reservations[0].start", "naive datetime"),
        ('"owner": "team-a"', '"owner": "team-a", "owner": "x"', "reservations[0].owner", "duplicate key"),
        ('"name": "b"', '"name": "a"', "reservations[1].name", "a second reservation named 'a'"),
        ('"flavor"', '"flavour"', "reservations[0].flavour", "unknown field"),
        ('"resource": "nvidia.com/gpu",', "", "reservations[0].resource", "Field required"),
        ('"version": 1', '"version": 7', "version", "Input should be 1"),
        ("}\n  ]\n}", "}\n  ]\n", "", "malformed JSON"),
        ('"reservations": [', '"reservations": 3, "x": [', "reservations", "valid list"),
        (None, "[]", "", "expected a JSON object"),
    ],
)
def test_a_damaged_file_is_an_error_naming_file_path_and_line(
    tmp_path: Path, old: str | None, new: str, where: str, message: str
) -> None:
    path = tmp_path / "bookings.json"
    store = InMemoryReservationStore(path)
    store.book(booking("a"), capacity=CAPACITY)
    store.book(booking("b", 1, 20, 21), capacity=CAPACITY)
    text = path.read_text()
    damaged = new if old is None else text.replace(old, new, 1)
    assert damaged != text
    path.write_text(damaged)
    for operation in (
        store.list,
        lambda: store.get("a"),
        lambda: store.cancel("a"),
        lambda: store.book(booking("c", 1, 30, 31), capacity=CAPACITY),
        lambda: InMemoryReservationStore(path),
    ):
        with pytest.raises(ValidationError) as info:
            operation()
        error = info.value
        errors = getattr(error, "errors", [error])
        assert any(e.path == where and message in e.message for e in errors), str(error)
        assert all(e.source == str(path) and e.line is not None for e in errors), str(error)
        assert "Traceback" not in str(error)
    assert path.read_text() == damaged  # nothing written
    if where.startswith("reservations") and message != "Field required":
        line = next(e.line for e in errors if e.path == where)
        key = where.rsplit(".", 1)[-1]
        assert f'"{key}"' in damaged.splitlines()[line - 1]  # the line of the bad field itself


# Two processes booking the last capacity at once -------------------------------------------------

FORK = multiprocessing.get_context("fork")


def _book_in_child(path: str, name: str, barrier: object, results: object) -> None:
    store = InMemoryReservationStore(path)
    reservation = booking(name, 8, 0, 8, owner="team-b")
    barrier.wait()  # type: ignore[attr-defined]
    try:
        store.book(reservation, capacity=CAPACITY)
    except ReservationConflictError:
        results.put((name, "conflict"))  # type: ignore[attr-defined]
    except Exception as exc:  # reported to the parent, which fails the test with it
        results.put((name, f"error: {type(exc).__name__}: {exc}"))  # type: ignore[attr-defined]
    else:
        results.put((name, "booked"))  # type: ignore[attr-defined]


@pytest.mark.parametrize("round_", range(5))
def test_two_processes_booking_the_last_capacity_get_one_success(tmp_path: Path, round_: int) -> None:
    path = tmp_path / "bookings.json"
    InMemoryReservationStore(path).book(booking("held", 8), capacity=CAPACITY)  # 8 of 16 left
    barrier = FORK.Barrier(2)
    results = FORK.Queue()
    children = [
        FORK.Process(target=_book_in_child, args=(str(path), name, barrier, results)) for name in ("x", "y")
    ]
    for child in children:
        child.start()
    outcomes = {}
    try:
        for _ in children:
            name, outcome = results.get(timeout=60)
            outcomes[name] = outcome
    except queue_module.Empty:  # pragma: no cover - a child died without reporting
        pytest.fail(f"a child did not report: {outcomes}")
    finally:
        for child in children:
            child.join(timeout=60)
    assert all(child.exitcode == 0 for child in children)
    assert sorted(outcomes.values()) == ["booked", "conflict"], outcomes
    winner = next(name for name, outcome in outcomes.items() if outcome == "booked")
    assert [r.name for r in InMemoryReservationStore(path).list()] == sorted(["held", winner])
