"""PostgreSQL-specific reservation store behaviour beyond the shared kit.

Bookings survive reconnects and a server restart; bookings of one key wait for each other's lock
while other keys go ahead; bad input (NUL characters, out-of-range numbers, naive datetimes) is a
ValidationError naming the field, before anything is sent; the plugin registry builds the store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytest.importorskip("sqlalchemy")

import sqlalchemy as sa
from budcore_adapters.postgres import (
    DatabaseUnavailableError,
    PoolSettings,
    PostgresJobStore,
    SchemaVersionError,
    upgrade,
)
from budcore_adapters.postgres.reservations import PostgresReservationStore, _lock_key
from budcore_adapters.postgres.schema import reservations
from budcore_adapters.postgres.tempserver import TemporaryPostgres

from budcore.domain.errors import NotFoundError, ValidationError
from budcore.domain.ids import JobId, TenantId
from budcore.domain.reservation import Reservation, ReservationConflictError
from budcore.plugins import PluginRegistry
from budcore.ports import ReservationStore

pytestmark = pytest.mark.postgres

T0 = datetime(2030, 1, 1, tzinfo=UTC)
GPU = 1000


def booking(name: str, start: float, end: float, gpus: float, **fields: Any) -> Reservation:
    values: dict[str, Any] = {
        "name": name,
        "owner": TenantId("team-a"),
        "cluster_queue": "cq-a",
        "flavor": "h100",
        "resource": "nvidia.com/gpu",
        "quantity": round(gpus * GPU),
        "start": T0 + timedelta(hours=start),
        "end": T0 + timedelta(hours=end),
        "created_at": T0 - timedelta(days=1),
    }
    values.update(fields)
    return Reservation(**values)


@pytest.fixture(scope="module")
def store(pg_url: str) -> Iterator[PostgresReservationStore]:
    s = PostgresReservationStore(pg_url, pool=PoolSettings(size=4))
    yield s
    s.close()


@pytest.fixture
def empty(store: PostgresReservationStore) -> PostgresReservationStore:
    with store.engine.begin() as conn:
        conn.execute(sa.delete(reservations))
    return store


# Durability ----------------------------------------------------------------------------------
def test_bookings_survive_a_new_connection_pool(pg_url: str, empty: PostgresReservationStore) -> None:
    kept = [booking("morning", 9, 12, 8, job_ids=(JobId("a"), JobId("b"))), booking("afternoon", 12, 17, 16)]
    for r in kept:
        empty.book(r, capacity=16 * GPU)
    other = PostgresReservationStore(pg_url)  # another service, its own engine
    try:
        assert other.list() == kept
        with pytest.raises(ReservationConflictError):  # and it sees them when it books
            other.book(booking("more", 10, 11, 9), capacity=16 * GPU)
    finally:
        other.close()


def test_bookings_survive_dropped_connections(empty: PostgresReservationStore) -> None:
    """The server ends every session (a failover, an idle timeout): the pool reconnects."""
    empty.book(booking("kept", 9, 17, 4), capacity=16 * GPU)
    with empty.engine.connect() as conn:
        assert empty.get("kept").quantity == 4 * GPU  # another pooled connection is open too
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        conn.commit()
    assert [r.name for r in empty.list()] == ["kept"]
    empty.book(booking("after", 9, 17, 12), capacity=16 * GPU)
    with pytest.raises(ReservationConflictError):
        empty.book(booking("too-much", 9, 17, 1), capacity=16 * GPU)


def test_bookings_survive_a_server_restart(pg_server: TemporaryPostgres) -> None:
    """Its own server (the session's is shared): stopped, bookings are unavailable with a typed
    error; started again, the same store finds every booking and still refuses conflicts."""
    # pg_server: only so this is skipped exactly when PostgreSQL is unavailable.
    server = TemporaryPostgres()
    try:
        server.start()
        url = server.create_database("restart")
        upgrade(url)
        store = PostgresReservationStore(url, pool=PoolSettings(size=2, connect_timeout=2))
        try:
            kept = booking("kept", 9, 17, 16, job_ids=(JobId("train"),))
            store.book(kept, capacity=16 * GPU)
            server._pg_ctl("stop", "-w", "-t", "60", "-m", "fast")
            with pytest.raises(DatabaseUnavailableError):
                store.get("kept")
            server._pg_ctl("start", "-w", "-t", "60", "-l", str(server.socket_dir / "server.log"))
            assert store.get("kept") == kept
            assert store.list() == [kept]
            with pytest.raises(ReservationConflictError):
                store.book(booking("late", 16, 18, 1), capacity=16 * GPU)
        finally:
            store.close()
    finally:
        server.stop()


# Locking -------------------------------------------------------------------------------------
def test_a_booking_waits_for_the_lock_of_its_key_only(empty: PostgresReservationStore) -> None:
    held = booking("holder", 9, 17, 8)
    done: dict[str, BaseException | Reservation] = {}

    def book_in_thread(r: Reservation) -> threading.Thread:
        def body() -> None:
            try:
                done[r.name] = empty.book(r, capacity=16 * GPU)
            except BaseException as exc:  # inspected below
                done[r.name] = exc

        thread = threading.Thread(target=body)
        thread.start()
        return thread

    with empty.engine.connect() as conn:
        transaction = conn.begin()
        _lock_key(conn, held)  # another service deciding on cq-a/h100/gpu, not yet committed
        conn.execute(sa.insert(reservations).values(
            name="holder", owner="team-a", cluster_queue="cq-a", flavor="h100", resource="nvidia.com/gpu",
            quantity=8 * GPU, start_at=held.start, end_at=held.end, job_ids=[], created_at=held.created_at,
        ))  # fmt: skip
        same_key = book_in_thread(booking("same-key", 10, 11, 16))
        other_key = book_in_thread(booking("other-key", 10, 11, 16, flavor="a100"))
        other_key.join(timeout=30)
        assert isinstance(done.get("other-key"), Reservation), done  # not blocked by cq-a/h100
        same_key.join(timeout=0.5)
        assert same_key.is_alive(), f"the booking of the locked key did not wait: {done}"
        transaction.commit()
    same_key.join(timeout=30)
    error = done.get("same-key")
    assert isinstance(error, ReservationConflictError), done  # it saw the committed holder
    assert [r.name for r in error.conflict.overlapping] == ["holder"]
    assert [r.name for r in empty.list()] == ["holder", "other-key"]


# Bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"cluster_queue": "cq\x00a"}, "cluster_queue"),
        ({"flavor": "h100\x00"}, "flavor"),
        ({"resource": "\x00gpu"}, "resource"),
        ({"job_ids": (JobId("ok"), JobId("b\x00d"))}, "job_ids[1]"),
    ],
)
def test_a_nul_character_is_a_validation_error_naming_the_field(
    empty: PostgresReservationStore, fields: dict[str, Any], path: str
) -> None:
    with pytest.raises(ValidationError) as info:
        empty.book(booking("nul", 9, 17, 1, **fields), capacity=16 * GPU)
    assert info.value.path == path
    message = str(info.value)
    assert "NUL" in message and "\x00" not in message
    assert empty.list() == []


@pytest.mark.parametrize(
    ("call", "path"),
    [
        (lambda s: s.get("a\x00b"), "name"),
        (lambda s: s.cancel("a\x00b"), "name"),
        (lambda s: s.get(42), "name"),
        (lambda s: s.list(cluster_queue="cq\x00"), "cluster_queue"),
        (lambda s: s.list(start=datetime(2030, 1, 1)), "start"),  # naive
        (lambda s: s.list(end="2030-01-01T00:00:00Z"), "end"),
        (lambda s: s.book(booking("r", 9, 17, 1), capacity=-1), "capacity"),
        (lambda s: s.book(booking("r", 9, 17, 1), capacity=True), "capacity"),
        (lambda s: s.book(booking("r", 9, 17, 1), capacity=16.5), "capacity"),
        (lambda s: s.book(booking("r", 9, 17, 1), capacity="16"), "capacity"),
        (lambda s: s.book(booking("r", 9, 17, 1, quantity=2**63), capacity=2**64), "quantity"),
        (lambda s: s.book({"name": "r"}, capacity=1), "reservation"),
    ],
)
def test_bad_input_is_a_validation_error_naming_the_field(
    empty: PostgresReservationStore, call: Callable[[Any], object], path: str
) -> None:
    with pytest.raises(ValidationError) as info:
        call(empty)
    assert info.value.path == path
    assert "\x00" not in str(info.value)
    assert empty.list() == []


def test_the_largest_quantity_fits(empty: PostgresReservationStore) -> None:
    big = booking("big", 9, 17, 1, quantity=2**63 - 1)
    empty.book(big, capacity=2**63 - 1)
    assert empty.get("big") == big
    with pytest.raises(ReservationConflictError):  # the sum is exact, beyond BIGINT, in Python
        empty.book(booking("one-more", 9, 17, 1, quantity=1), capacity=2**63 - 1)


# Construction ---------------------------------------------------------------------------------
def test_the_registry_builds_the_store(pg_url: str) -> None:
    registry = PluginRegistry()
    built = registry.reservation_store("postgres", url=pg_url)
    try:
        assert isinstance(built, PostgresReservationStore) and isinstance(built, ReservationStore)
    finally:
        built.close()
    jobs = PostgresJobStore(pg_url)
    try:
        on_store = registry.reservation_store("postgres", store=jobs)
        assert isinstance(on_store, PostgresReservationStore) and on_store.engine is jobs.engine
        with pytest.raises(NotFoundError):
            on_store.get("nobody")
    finally:
        jobs.close()


def test_construction_options_are_checked(pg_url: str, new_database: Callable[[], str]) -> None:
    jobs = PostgresJobStore(pg_url)
    try:
        with pytest.raises(ValidationError) as info:
            PostgresReservationStore(pg_url, store=jobs)
        assert info.value.path == "store"
    finally:
        jobs.close()
    with pytest.raises(ValidationError) as info:
        PostgresReservationStore(store="not a store")  # type: ignore[arg-type]
    assert info.value.path == "store"
    with pytest.raises(SchemaVersionError, match="budcore db upgrade"):
        PostgresReservationStore(new_database())
