"""Capacity bookings: "hold 16 H100s for team-a tomorrow 09:00–17:00".

A :class:`Reservation` books ``quantity`` of one resource in one flavor of one ClusterQueue's
quota for ``[start, end)``, for an owner (a tenant: the namespace of its LocalQueues), optionally
for named jobs only. Kueue has no such object (its ClusterQueue guarantees are permanent), so this
is budcore's own, in the shape of Slurm's advance reservations: the booked room is kept free for
the owner inside the window, and other work may use it before the start only if it is known to
end in time or may be preempted at the start (the rule lives in
:mod:`budcore.scheduling.reservations`).

Bookings of one (ClusterQueue, flavor, resource) *conflict* when, at some instant, together they
book more than the ClusterQueue's nominal quota of it: :func:`find_conflict` finds the first such
interval and names the bookings that overlap there, so a refusal can say which ones to move.
Everything here is pure: the stores (in-memory, PostgreSQL) call it inside their own transaction.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from budcore.domain.errors import BudcoreError
from budcore.domain.ids import JobId, TenantId, check_name
from budcore.domain.quantity import format_quantity, parse_quantity
from budcore.domain.timeutil import ensure_utc, utcnow

__all__ = [
    "Reservation",
    "ReservationConflict",
    "ReservationConflictError",
    "booked_peak",
    "find_conflict",
]


def _name(value: str) -> str:
    return check_name(value, "name")


def _owner(value: str) -> str:
    return check_name(value, "owner")


def _utc(value: datetime) -> datetime:
    return ensure_utc(value, "datetime")


class Reservation(BaseModel):
    """``quantity`` (milli-units, like every amount in budcore) of ``resource`` in ``flavor`` of
    ``cluster_queue``, booked for ``owner`` over ``[start, end)``.

    ``job_ids`` ties the booking to those jobs of the owner (empty: any job of the owner's).
    ``quantity`` accepts a Kubernetes quantity (``16``, ``"500m"``) and stores milli-units.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, AfterValidator(_name)]
    owner: Annotated[TenantId, AfterValidator(_owner)]
    cluster_queue: str = Field(min_length=1, max_length=253)
    flavor: str = Field(min_length=1, max_length=253)
    resource: str = Field(min_length=1, max_length=253)
    quantity: int = Field(gt=0)
    start: Annotated[datetime, AfterValidator(_utc)]
    end: Annotated[datetime, AfterValidator(_utc)]
    job_ids: tuple[JobId, ...] = ()
    created_at: Annotated[datetime, AfterValidator(_utc)] = Field(default_factory=utcnow)

    @field_validator("quantity", mode="before")
    @classmethod
    def _parse_quantity(cls, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value  # already milli-units (the stored form)
        return parse_quantity(value, "quantity")

    @model_validator(mode="after")
    def _ends_after_start(self) -> Reservation:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end.isoformat()}) must be after start ({self.start.isoformat()})")
        return self

    @classmethod
    def of(
        cls,
        name: str,
        owner: str,
        cluster_queue: str,
        flavor: str,
        resource: str,
        quantity: str | int | float,
        start: datetime,
        end: datetime,
        job_ids: Iterable[str] = (),
    ) -> Reservation:
        """A booking with ``quantity`` in resource units (``16`` GPUs, not 16000 milli)."""
        return cls(
            name=name,
            owner=TenantId(owner),
            cluster_queue=cluster_queue,
            flavor=flavor,
            resource=resource,
            quantity=parse_quantity(quantity, "quantity"),
            start=start,
            end=end,
            job_ids=tuple(JobId(j) for j in job_ids),
        )

    @property
    def key(self) -> tuple[str, str, str]:
        """What bookings compete for: (ClusterQueue, flavor, resource)."""
        return (self.cluster_queue, self.flavor, self.resource)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def active(self, at: datetime) -> bool:
        """Whether ``at`` is inside ``[start, end)``."""
        return self.start <= at < self.end

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end

    def serves(self, tenant: str, job_id: str) -> bool:
        """Whether a job of ``tenant`` with id ``job_id`` may use the booked room."""
        return tenant == self.owner and (not self.job_ids or job_id in self.job_ids)

    def describe(self) -> str:
        amount = format_quantity(self.quantity, self.resource)
        return (
            f"{self.name} ({amount} {self.resource} on {self.flavor} in ClusterQueue "
            f"{self.cluster_queue} for {self.owner}, {self.start.isoformat()} to {self.end.isoformat()})"
        )


@dataclass(frozen=True, slots=True)
class ReservationConflict:
    """Where a new booking would overbook: from ``start`` to ``end`` the bookings in ``overlapping``
    plus the new one total ``booked`` of a capacity of ``capacity`` (milli-units)."""

    reservation: Reservation
    overlapping: tuple[Reservation, ...]
    start: datetime
    end: datetime
    booked: int
    capacity: int

    def describe(self) -> str:
        resource = self.reservation.resource
        total = format_quantity(self.booked, resource)
        capacity = format_quantity(self.capacity, resource)
        head = f"reservation {self.reservation.describe()} conflicts"
        where = f"from {self.start.isoformat()} to {self.end.isoformat()}"
        if not self.overlapping:
            return f"{head}: it books {total} {resource}, more than the nominal quota {capacity}"
        names = "; ".join(r.describe() for r in self.overlapping)
        return f"{head} with {names} {where}: {total} {resource} booked of a nominal quota of {capacity}"


class ReservationConflictError(BudcoreError):
    """A booking that would overbook its ClusterQueue's quota; nothing was stored."""

    def __init__(self, conflict: ReservationConflict) -> None:
        self.conflict = conflict
        super().__init__(conflict.describe())


def booked_peak(reservations: Iterable[Reservation], start: datetime, end: datetime) -> int:
    """The most that ``reservations`` book together at any instant of ``[start, end)``."""
    return max((total for _, _, total, _ in _segments(reservations, start, end)), default=0)


def find_conflict(
    existing: Iterable[Reservation], new: Reservation, capacity: int
) -> ReservationConflict | None:
    """The first interval where ``new`` plus the ``existing`` bookings of its key exceed
    ``capacity`` (None: it fits). Bookings of other keys, and ``new`` itself by name, are ignored."""
    if new.quantity > capacity:
        return ReservationConflict(new, (), new.start, new.end, new.quantity, capacity)
    same = [r for r in existing if r.key == new.key and r.name != new.name]
    for seg_start, seg_end, total, members in _segments(same, new.start, new.end):
        if total + new.quantity > capacity:
            return ReservationConflict(new, members, seg_start, seg_end, total + new.quantity, capacity)
    return None


def _segments(
    reservations: Iterable[Reservation], start: datetime, end: datetime
) -> list[tuple[datetime, datetime, int, tuple[Reservation, ...]]]:
    """``[start, end)`` cut where any booking begins or ends: each piece with the total booked in
    it and the bookings that cover it (by start, then name)."""
    inside = sorted((r for r in reservations if r.overlaps(start, end)), key=lambda r: (r.start, r.name))
    cuts = sorted({start, end, *(r.start for r in inside), *(r.end for r in inside)})
    cuts = [c for c in cuts if start <= c <= end]
    pieces: list[tuple[datetime, datetime, int, tuple[Reservation, ...]]] = []
    for a, b in itertools.pairwise(cuts):
        members = tuple(r for r in inside if r.start <= a and b <= r.end)
        pieces.append((a, b, sum(r.quantity for r in members), members))
    return pieces
