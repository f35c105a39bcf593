"""Capacity bookings in admission: keeping booked room free for its owner.

A :class:`~budcore.domain.reservation.Reservation` books ``quantity`` of one (flavor, resource) of a
ClusterQueue for ``[start, end)``. budcore keeps the room the way Slurm keeps an advance
reservation, expressed in Kueue's quota terms:

- **Inside the window** the booked room that the owner does not use is *held*: every workload of
  the ClusterQueue that the booking does not serve sees it as used quota (a phantom admission of
  ``quantity`` less the owner's current usage of that flavor and resource in the queue). The owner's
  jobs (those of tenant ``owner``; only ``job_ids`` when the booking names jobs) see the room free.
  Because the phantom sits in the ClusterQueue's usage it also counts in its cohort: nobody borrows
  booked room either.
- **Before the start** the same hold applies to workloads that would still hold quota at the start.
  A workload may use booked room before the start when it is known to end in time
  (:func:`may_use`: admitted now plus its remaining ``max_duration``, or its estimate, ends by the
  start) or when it may be preempted (preemptible and not critical). At the start, such workloads
  still holding booked room are evicted (:func:`booked_room_evictions`), lowest priority and most
  recently admitted first, until the owner's room is free: an estimate is not a promise, and a
  workload that overran its estimate into a booking leaves like a preemptible one.
- **After the end** the booking no longer counts.

Conflicting bookings (more booked than the ClusterQueue's nominal quota at some instant) are
refused when booked (:func:`~budcore.domain.reservation.find_conflict`), so the holds of all the
bookings of a ClusterQueue always fit its nominal quota.

The functions here are pure; :class:`ReservationBook` is the set a
:class:`~budcore.scheduling.scheduler.Scheduler` keeps, and :func:`reservation_use` measures how
much of a booking its owner used (for reports and for charging unused booked time).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from budcore.domain.errors import AlreadyExistsError, NotFoundError, ValidationError
from budcore.domain.job import Job
from budcore.domain.priority import JobPriority
from budcore.domain.reservation import Reservation, ReservationConflictError, find_conflict
from budcore.scheduling.queues import QueueConfig
from budcore.scheduling.quota import QuotaTree, QuotaUsage, available
from budcore.scheduling.snapshot import AdmittedWorkload, BookedRoom, Evict

__all__ = [
    "BookedRoom",
    "ReservationBook",
    "ReservationUse",
    "booked_room_evictions",
    "capacity_for",
    "may_use",
    "reservation_use",
]

_CRITICAL = JobPriority.CRITICAL.value_int


def capacity_for(config: QueueConfig, reservation: Reservation) -> int:
    """The most a booking of ``reservation``'s key may book: the ClusterQueue's nominal quota of
    its flavor and resource (milli-units). An unknown queue, flavor or resource is a
    ``ValidationError`` naming the field."""
    cq = config.cluster_queues.get(reservation.cluster_queue)
    if cq is None:
        known = ", ".join(sorted(config.cluster_queues)) or "none"
        raise ValidationError(
            f"unknown ClusterQueue {reservation.cluster_queue!r} (known: {known})", path="cluster_queue"
        )
    flavors: list[str] = []
    for group in cq.resource_groups:
        for flavor in group.flavors:
            flavors.append(flavor.name)
            if flavor.name != reservation.flavor:
                continue
            for quota in flavor.resources:
                if quota.name == reservation.resource:
                    return quota.nominal_quota
            covered = ", ".join(group.covered_resources)
            raise ValidationError(
                f"flavor {flavor.name} of ClusterQueue {cq.name} has no quota for "
                f"{reservation.resource!r} (it covers: {covered})",
                path="resource",
            )
    raise ValidationError(
        f"ClusterQueue {cq.name} has no flavor {reservation.flavor!r} (its flavors: {', '.join(flavors)})",
        path="flavor",
    )


def may_use(reservation: Reservation, job: Job, now: datetime) -> bool:
    """Whether ``job``, admitted at ``now``, may take the room ``reservation`` books.

    The owner's jobs always may; inside the window nobody else; before the start a job that ends
    by the start (its remaining ``max_duration``, else its estimate) or that may be preempted then.
    """
    if reservation.serves(job.tenant, job.id):
        return True
    if now >= reservation.start or now >= reservation.end:
        return False
    if job.preemptible and job.priority_value < _CRITICAL:
        return True
    return ends_by(job, now, reservation.start)


def ends_by(job: Job, now: datetime, instant: datetime) -> bool:
    """Whether ``job``, admitted at ``now``, is expected to have ended by ``instant``."""
    if job.max_duration is not None:
        remaining = max(timedelta(0), job.max_duration - job.accumulated_runtime)
        if now + remaining <= instant:
            return True
    return job.estimated_duration is not None and now + job.estimated_duration <= instant


class ReservationBook:
    """The bookings a scheduler keeps, by name; each checked against the queue configuration and
    against the others (no overbooking) when added."""

    __slots__ = ("_by_name",)

    def __init__(self, reservations: Iterable[Reservation] = ()) -> None:
        self._by_name: dict[str, Reservation] = {r.name: r for r in reservations}

    def add(self, reservation: Reservation, config: QueueConfig) -> Reservation:
        """Book it, or raise (``AlreadyExistsError``, ``ValidationError`` for an unknown queue,
        flavor or resource, ``ReservationConflictError`` naming the overlap); nothing changes then."""
        if reservation.name in self._by_name:
            raise AlreadyExistsError("reservation", reservation.name)
        capacity = capacity_for(config, reservation)
        conflict = find_conflict(self._by_name.values(), reservation, capacity)
        if conflict is not None:
            raise ReservationConflictError(conflict)
        self._by_name[reservation.name] = reservation
        return reservation

    def cancel(self, name: str) -> Reservation:
        reservation = self._by_name.pop(name, None)
        if reservation is None:
            raise NotFoundError("reservation", name)
        return reservation

    def get(self, name: str) -> Reservation:
        reservation = self._by_name.get(name)
        if reservation is None:
            raise NotFoundError("reservation", name)
        return reservation

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Reservation]:
        return iter(sorted(self._by_name.values(), key=lambda r: (r.start, r.name)))

    def __len__(self) -> int:
        return len(self._by_name)

    def __bool__(self) -> bool:
        return bool(self._by_name)

    def fork(self) -> ReservationBook:
        return ReservationBook(self._by_name.values())

    def current(self, now: datetime) -> list[Reservation]:
        """Bookings that have not ended at ``now`` (upcoming or active), by start then name."""
        return [r for r in self if r.end > now]

    def next_change(self, now: datetime) -> datetime | None:
        """The first start or end after ``now``: what may be admitted changes then."""
        instants = [t for r in self._by_name.values() for t in (r.start, r.end) if t > now]
        return min(instants, default=None)

    def changed(self, since: datetime | None, now: datetime) -> list[Reservation]:
        """Bookings that started or ended in ``(since, now]`` (with ``since`` None: every one that
        has started and not ended, the first time a scheduler looks)."""
        if since is None:
            return [r for r in self if r.active(now)]
        return [r for r in self if since < r.start <= now or since < r.end <= now]

    def rooms(
        self, now: datetime, admitted: Mapping[str, AdmittedWorkload]
    ) -> dict[str, tuple[BookedRoom, ...]]:
        """By ClusterQueue, what each current booking holds at ``now`` (see :class:`BookedRoom`).

        The owner's current usage of the booked flavor and resource in the queue counts towards
        its booking (a booking guarantees the owner that much, it does not add to what it has),
        each unit towards one booking only (:func:`attributed_usage`).
        """
        out: dict[str, list[BookedRoom]] = {}
        current = self.current(now)
        used_by = attributed_usage(current, admitted)
        for reservation in current:
            held = max(0, reservation.quantity - used_by[reservation.name])
            if held:
                out.setdefault(reservation.cluster_queue, []).append(BookedRoom(reservation, held))
        return {cq: tuple(rooms) for cq, rooms in out.items()}


def attributed_usage(
    reservations: Sequence[Reservation], admitted: Mapping[str, AdmittedWorkload]
) -> dict[str, int]:
    """How much of each booking its owner uses: the usage of the booked flavor and resource in its
    ClusterQueue by workloads the booking serves, each unit counted towards one booking only.

    Bookings take, in order (start, then name), up to their quantity from what the workloads they
    serve hold and no earlier booking took, so an owner with two bookings of 1 GPU that uses 1
    GPU leaves one of them fully held, not both empty.
    """
    used: dict[str, int] = {}
    pools: dict[tuple[str, str, str], dict[str, int]] = {}
    for reservation in sorted(reservations, key=lambda r: (r.start, r.name)):
        pool = pools.get(reservation.key)
        if pool is None:
            fr = (reservation.flavor, reservation.resource)
            pool = pools[reservation.key] = {
                w.job_id: w.usage.get(fr, 0)
                for w in admitted.values()
                if w.cluster_queue == reservation.cluster_queue and w.usage.get(fr, 0) > 0
            }
        taken = 0
        for job_id, amount in pool.items():
            if taken >= reservation.quantity:
                break
            workload = admitted[job_id]
            if amount and reservation.serves(workload.tenant, job_id):
                take = min(amount, reservation.quantity - taken)
                pool[job_id] = amount - take
                taken += take
        used[reservation.name] = taken
    return used


def booked_room_evictions(
    starting: Sequence[Reservation],
    active: Sequence[Reservation],
    tree: QuotaTree,
    usage: QuotaUsage,
    admitted: Mapping[str, AdmittedWorkload],
    jobs: Mapping[str, Job],
    now: datetime,
    evicting: Iterable[str] = (),
) -> list[Evict]:
    """At a booking's start: the workloads to evict so its owner finds the booked room free.

    For the (ClusterQueue, flavor, resource) of each booking in ``starting``, while the queue has
    less available of it than the ``active`` bookings of that key still hold for their owners,
    evict workloads the starting booking does not serve that hold it and were let in only because
    they were preemptible or expected to end before the start (:func:`_evictable_for`): first those
    no active booking serves, then other owners' (whose usage beyond their own booking stands in
    this one's room), each group lowest priority first, then most recently admitted. Workloads
    already being evicted count as gone.
    """
    gone = set(evicting)
    overlay = usage.overlay()
    for job_id in gone:
        workload = admitted.get(job_id)
        if workload is not None:
            overlay.add(workload.cluster_queue, workload.usage, sign=-1)
    out: list[Evict] = []
    by_key: dict[tuple[str, str, str], list[Reservation]] = {}
    for reservation in starting:
        if reservation.active(now) and reservation.cluster_queue in tree.cluster_queues:
            by_key.setdefault(reservation.key, []).append(reservation)
    for (cq, flavor, resource), started in by_key.items():
        node = tree.cluster_queues[cq]
        fr = (flavor, resource)
        sharing = [r for r in active if r.key == (cq, flavor, resource) and r.active(now)]
        candidates: list[tuple[tuple[bool, int, float, str], AdmittedWorkload, Reservation]] = []
        for w in admitted.values():
            if w.cluster_queue != cq or w.job_id in gone or w.usage.get(fr, 0) <= 0:
                continue
            job = jobs.get(w.job_id)
            blocking = next(
                (r for r in started if not r.serves(w.tenant, w.job_id) and _evictable_for(r, job, w, now)),
                None,
            )
            if blocking is None:
                continue
            # Guests of no booking first; then other owners' work beyond what they booked.
            owned = any(r.serves(w.tenant, w.job_id) for r in sharing)
            candidates.append(((owned, w.priority, -w.admitted_at.timestamp(), w.job_id), w, blocking))
        candidates.sort(key=lambda c: c[0])
        for _, workload, blocking in candidates:
            remaining = {k: w for k, w in admitted.items() if k not in gone}
            used_by = attributed_usage(sharing, remaining)
            need = sum(max(0, r.quantity - used_by[r.name]) for r in sharing)
            if available(node, fr, overlay) >= need:
                break
            gone.add(workload.job_id)
            overlay.add(cq, workload.usage, sign=-1)
            why = f"reservation {blocking.name} for {blocking.owner} starts at {blocking.start.isoformat()}"
            out.append(Evict(workload.job_id, workload.tenant, cq, why))
    return out


def _evictable_for(
    reservation: Reservation, job: Job | None, workload: AdmittedWorkload, now: datetime
) -> bool:
    """Whether a workload standing in booked room at the start may be evicted for it.

    A preemptible, non-critical one may. A protected one only when it was expected to be gone by
    the start (admitted plus its estimate ends by then: it overran the estimate it was let in on);
    one within its ``max_duration`` promise leaves by itself, and one that was never expected to
    end by the start (admitted before the booking was made) keeps its protection.
    """
    if job is None:
        return workload.priority < _CRITICAL
    if job.preemptible and job.priority_value < _CRITICAL:
        return True
    if job.max_duration is not None:
        remaining = max(timedelta(0), job.max_duration - job.accumulated_runtime)
        if workload.admitted_at + remaining <= reservation.start:
            return False  # execution limits stop it; preempting would break its protection
    estimate = job.estimated_duration
    return estimate is not None and workload.admitted_at + estimate <= reservation.start


@dataclass(frozen=True, slots=True)
class ReservationUse:
    """How much of a booking its owner used: all in milli-unit-seconds of the booked resource."""

    reservation: Reservation
    booked: float
    used: float

    @property
    def unused(self) -> float:
        return max(0.0, self.booked - self.used)

    @property
    def utilisation(self) -> float:
        return self.used / self.booked if self.booked else 0.0


def reservation_use(
    reservation: Reservation, runs: Iterable[tuple[datetime, datetime | None, int]], until: datetime
) -> ReservationUse:
    """The owner's use of ``reservation`` from its runs: ``(start, end or None: still running,
    amount of the booked flavor and resource)`` for the jobs the booking serves in its ClusterQueue.

    At each instant the owner uses at most the booked quantity of it; ``until`` ends the measure
    (a booking still running is measured up to it).
    """
    window_end = min(reservation.end, until)
    window_start = reservation.start
    booked = max(0.0, (window_end - window_start).total_seconds()) * reservation.quantity
    events: list[tuple[datetime, int]] = []
    for start, end, amount in runs:
        a = max(start, window_start)
        b = min(end if end is not None else window_end, window_end)
        if b > a and amount > 0:
            events.append((a, amount))
            events.append((b, -amount))
    events.sort()
    used = 0.0
    level = 0
    previous = window_start
    for at, delta in events:
        used += min(level, reservation.quantity) * (at - previous).total_seconds()
        level += delta
        previous = at
    return ReservationUse(reservation, booked, used)
