"""Capacity bookings that several services share: the :class:`~budcore.ports.ReservationStore` port.

One row per booking in ``budcore_reservations`` (revision ``0005_reservations``), keyed by name.

**No overbooking under concurrency.** :meth:`PostgresReservationStore.book` runs in one
transaction that first takes a transaction-scoped advisory lock on the booking's (ClusterQueue,
flavor, resource) key, ``pg_advisory_xact_lock(RESERVATION_LOCK_CLASS, hashtext(key))``, then reads
the bookings of that key overlapping the new one and decides with the domain's pure
:func:`~budcore.domain.reservation.find_conflict` (the same rule every store applies), and inserts
the row only if nothing conflicts. Two services booking the last 8 GPUs of a key at once are
serialised by the lock: the second reads the first's committed row (READ COMMITTED takes a new
snapshot per statement, after the lock was granted) and gets a
:class:`~budcore.domain.reservation.ReservationConflictError` naming it. Bookings of other keys
take other locks and never wait for each other (two keys whose texts hash alike only share a lock,
which costs waiting, never correctness). An advisory lock rather than ``SELECT … FOR UPDATE`` because
the rows a booking must not miss are the ones not yet inserted; the two-key form keeps budcore's
locks apart from single-key advisory locks (the migration lock) and from a service's own.

A name is unique across keys: the store refuses a stored name with
:class:`~budcore.domain.errors.AlreadyExistsError` (checked under the key's lock, and again by the
primary key, ``INSERT … ON CONFLICT DO NOTHING``, for two bookings of one name on different keys).
:meth:`~PostgresReservationStore.cancel` deletes without the lock: removing a booking can only
make room, and a booking deciding concurrently at worst still counts it.

**Bad input** is a :class:`~budcore.domain.errors.ValidationError` naming the field before any
statement is sent: a NUL character (``\\x00``, which PostgreSQL text cannot hold) in
``cluster_queue``, ``flavor``, ``resource``, ``job_ids[i]`` or a name looked up; a quantity above
``BIGINT`` (2**63 - 1 milli-units); a capacity that is not a non-negative integer; a naive
``start``/``end`` given to :meth:`~PostgresReservationStore.list`.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from budcore.domain.errors import AlreadyExistsError, NotFoundError, ValidationError
from budcore.domain.ids import JobId, TenantId
from budcore.domain.reservation import Reservation, ReservationConflictError, find_conflict
from budcore.domain.timeutil import ensure_utc

from .engine import run_transaction
from .job_store import OnJobStoreEngine
from .quota import MAX_AMOUNT
from .records import check_no_nul
from .schema import reservations

__all__ = ["RESERVATION_LOCK_CLASS", "PostgresReservationStore", "reservation_row"]

# The first key of the two-key advisory locks that serialise bookings: "budr" in ASCII (a 32-bit
# int). The second key is hashtext() of the booking's (ClusterQueue, flavor, resource).
RESERVATION_LOCK_CLASS = 0x6275_6472

_COLUMNS = (
    reservations.c.name,
    reservations.c.owner,
    reservations.c.cluster_queue,
    reservations.c.flavor,
    reservations.c.resource,
    reservations.c.quantity,
    reservations.c.start_at,
    reservations.c.end_at,
    reservations.c.job_ids,
    reservations.c.created_at,
)
_ORDER = (reservations.c.start_at, reservations.c.name)


# Codecs and input checks -------------------------------------------------------------------
def reservation_row(reservation: Reservation) -> dict[str, Any]:
    """The ``budcore_reservations`` row for ``reservation``; refuses what PostgreSQL cannot hold
    (a NUL character, a quantity above ``BIGINT``) with a ValidationError naming the field."""
    if not isinstance(reservation, Reservation):
        raise ValidationError(f"expected a Reservation, got {type(reservation).__name__}", path="reservation")
    check_no_nul(reservation.model_dump(mode="json"), "reservation")
    if reservation.quantity > MAX_AMOUNT:
        raise ValidationError(
            f"quantity is {reservation.quantity} milli-units, more than the reservation store can "
            f"hold (at most 2**63 - 1 = {MAX_AMOUNT} milli-units)",
            path="quantity",
        )
    return {
        "name": reservation.name,
        "owner": reservation.owner,
        "cluster_queue": reservation.cluster_queue,
        "flavor": reservation.flavor,
        "resource": reservation.resource,
        "quantity": reservation.quantity,
        "start_at": reservation.start,
        "end_at": reservation.end,
        "job_ids": list(reservation.job_ids),
        "created_at": reservation.created_at,
    }


def reservation_from_row(row: Any) -> Reservation:
    """Rebuild a booking from its row (validated: a corrupt row fails loudly)."""
    return Reservation(
        name=row.name,
        owner=TenantId(row.owner),
        cluster_queue=row.cluster_queue,
        flavor=row.flavor,
        resource=row.resource,
        quantity=int(row.quantity),
        start=row.start_at,
        end=row.end_at,
        job_ids=tuple(JobId(j) for j in row.job_ids),
        created_at=row.created_at,
    )


def _text(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{path} must be a string, got {type(value).__name__}", path=path)
    if "\x00" in value:
        raise ValidationError(f"NUL character (\\x00) in {path}: PostgreSQL cannot store it", path=path)
    return value


def _capacity(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(
            f"capacity must be a non-negative integer of milli-units, got {value!r}", path="capacity"
        )
    return value


def _instant(value: object, path: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValidationError(f"{path} must be a datetime, got {type(value).__name__}", path=path)
    return ensure_utc(value, path)


def _lock_key(conn: Connection, reservation: Reservation) -> None:
    """Wait for, and hold until the transaction ends, the advisory lock of the booking's key."""
    key = "\n".join(reservation.key)  # NUL-free (checked); a collision only serialises two keys
    conn.execute(
        sa.select(
            sa.func.pg_advisory_xact_lock(
                sa.cast(sa.literal(RESERVATION_LOCK_CLASS), sa.Integer),
                sa.func.hashtext(sa.cast(sa.literal(key), sa.Text)),
            )
        )
    )


class PostgresReservationStore(OnJobStoreEngine):
    """Capacity bookings in PostgreSQL (the :class:`~budcore.ports.ReservationStore` port).

    Built like the other components (:class:`~budcore_adapters.postgres.job_store.OnJobStoreEngine`:
    a ``url``, a shared ``engine``, or an existing job ``store``'s pool).
    """

    # The port ----------------------------------------------------------------------------
    def book(self, reservation: Reservation, *, capacity: int) -> Reservation:
        """Store ``reservation`` unless its name exists (``AlreadyExistsError``) or, with the bookings
        of its key, it books more than ``capacity`` milli-units at some instant
        (``ReservationConflictError`` naming the overlap); nothing is written then."""
        row = reservation_row(reservation)
        limit = _capacity(capacity)
        r = reservations.c
        exists = sa.select(sa.exists().where(r.name == reservation.name))
        overlapping = (
            sa.select(*_COLUMNS)
            .where(
                r.cluster_queue == reservation.cluster_queue,
                r.flavor == reservation.flavor,
                r.resource == reservation.resource,
                r.start_at < reservation.end,
                r.end_at > reservation.start,
            )
            .order_by(*_ORDER)
        )
        insert = pg_insert(reservations).values(**row).on_conflict_do_nothing().returning(r.name)

        def work(conn: Connection) -> Reservation:
            _lock_key(conn, reservation)
            if conn.execute(exists).scalar():
                raise AlreadyExistsError("reservation", reservation.name)
            existing = [reservation_from_row(x) for x in conn.execute(overlapping)]
            conflict = find_conflict(existing, reservation, limit)
            if conflict is not None:
                raise ReservationConflictError(conflict)
            if conn.execute(insert).first() is None:  # the same name, booked on another key meanwhile
                raise AlreadyExistsError("reservation", reservation.name)
            return reservation

        return run_transaction(self._engine, work)

    def get(self, name: str) -> Reservation:
        key = _text(name, "name")
        stmt = sa.select(*_COLUMNS).where(reservations.c.name == key)

        def work(conn: Connection) -> Reservation:
            row = conn.execute(stmt).first()
            if row is None:
                raise NotFoundError("reservation", key)
            return reservation_from_row(row)

        return run_transaction(self._engine, work)

    def cancel(self, name: str) -> Reservation:
        key = _text(name, "name")
        stmt = sa.delete(reservations).where(reservations.c.name == key).returning(*_COLUMNS)

        def work(conn: Connection) -> Reservation:
            row = conn.execute(stmt).first()
            if row is None:
                raise NotFoundError("reservation", key)
            return reservation_from_row(row)

        return run_transaction(self._engine, work)

    def list(
        self,
        *,
        cluster_queue: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> builtins.list[Reservation]:
        """Bookings of ``cluster_queue`` (all: None) overlapping ``[start, end)`` (open-ended when
        None), ordered by start, then name (bytewise)."""
        r = reservations.c
        where: builtins.list[sa.ColumnElement[bool]] = []
        if cluster_queue is not None:
            where.append(r.cluster_queue == _text(cluster_queue, "cluster_queue"))
        if end is not None:
            where.append(r.start_at < _instant(end, "end"))
        if start is not None:
            where.append(r.end_at > _instant(start, "start"))
        stmt = sa.select(*_COLUMNS).where(*where).order_by(*_ORDER)

        def work(conn: Connection) -> builtins.list[Reservation]:
            return [reservation_from_row(row) for row in conn.execute(stmt)]

        return run_transaction(self._engine, work)
