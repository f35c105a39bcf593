"""The reservation store port: capacity bookings, kept durably, never overbooked.

A repository (*Architecture Patterns with Python*) of :class:`~budcore.domain.reservation.Reservation`
objects keyed by name. The one rule a store must keep under concurrency is that no two callers
overbook: :meth:`ReservationStore.book` checks the new booking against those already stored for
the same (ClusterQueue, flavor, resource) with :func:`~budcore.domain.reservation.find_conflict`
and stores it in the same unit of work (PostgreSQL: under a lock on that key), so two services
booking the last 8 GPUs at once get one success and one
:class:`~budcore.domain.reservation.ReservationConflictError`.

``capacity`` is given by the caller (the ClusterQueue's nominal quota of the flavor and resource,
from the queue configuration it schedules with: :func:`budcore.scheduling.reservations.capacity_for`),
because the store does not own the configuration.

Contract (checked by :mod:`budcore.testing.reservations` for every implementation):

- ``book`` stores a booking that fits and returns it; a name already stored is an
  :class:`~budcore.domain.errors.AlreadyExistsError`; a conflict is a ``ReservationConflictError``
  naming the overlap; after an error nothing has changed.
- ``get`` / ``cancel`` of an unknown name is a :class:`~budcore.domain.errors.NotFoundError`.
- ``list`` returns bookings ordered by start, then name, filtered by ClusterQueue and by the
  interval they overlap.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from budcore.domain.reservation import Reservation


@runtime_checkable
class ReservationStore(Protocol):
    def book(self, reservation: Reservation, *, capacity: int) -> Reservation:
        """Store ``reservation`` unless it overbooks ``capacity`` (milli-units) or its name exists."""
        ...

    def get(self, name: str) -> Reservation:
        """The booking called ``name``."""
        ...

    def cancel(self, name: str) -> Reservation:
        """Remove the booking called ``name`` and return it."""
        ...

    def list(
        self,
        *,
        cluster_queue: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Reservation]:
        """Bookings of ``cluster_queue`` (all: None) overlapping ``[start, end)`` (open-ended when
        None), ordered by start, then name."""
        ...
