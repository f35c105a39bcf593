"""Row codecs and the statements every write shares, run inside a caller's transaction.

One write path (:func:`write_update`) serves the plain ``JobStore.update``, admission and lease
reconciliation, so the side effects of a status change cannot be skipped by taking another route:

- leaving ``admitted`` removes the job's lease; entering it grants one;
- leaving a quota-holding state (``admitted``/``running``) gives the job's quota reservation back;
- the events are appended to the outbox.

**Lock order.** Every transaction locks rows in the order *job → lease → quota rows (sorted by
key)*; the job row is locked first with ``SELECT … FOR UPDATE``. A fixed global order means two
replicas can wait for each other but never deadlock on budcore's own rows (PostgreSQL's deadlock
detector and :func:`~.engine.run_transaction`'s retry remain as a safety net).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from budcore.domain.errors import (
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from budcore.domain.events import DomainEvent, JobTransitioned
from budcore.domain.job import Job, JobStatus
from budcore.domain.lifecycle import can_transition
from budcore.domain.timeutil import ensure_utc

from .errors import DatabaseError, QuotaUnavailableError
from .schema import jobs, leases, outbox, quota_reservations, quota_usage

DEFAULT_LEASE_DURATION = timedelta(seconds=30)
DEFAULT_RENEW_WITHIN = timedelta(seconds=25)

EVENT_TYPES: dict[str, type[JobTransitioned]] = {"job.transitioned": JobTransitioned}


def default_holder() -> str:
    """This process as a lease holder: ``host:pid`` identifies a replica well enough to debug."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class LeasePolicy:
    """How long an admitted-but-not-started job keeps its quota without a renewal.

    The holder renews within ``renew_within`` (25 s) of the last renewal, leaving a margin of
    ``duration - renew_within`` (5 s) for latency and clock skew before the lease (30 s) expires.
    """

    duration: timedelta = DEFAULT_LEASE_DURATION
    renew_within: timedelta = DEFAULT_RENEW_WITHIN
    holder: str = ""

    def __post_init__(self) -> None:
        if self.duration <= timedelta(0):
            raise ValidationError("lease duration must be positive", path="lease.duration")
        if not timedelta(0) < self.renew_within < self.duration:
            raise ValidationError(
                f"renew_within ({self.renew_within}) must be positive and shorter than the lease "
                f"duration ({self.duration})",
                path="lease.renew_within",
            )
        if not self.holder:
            object.__setattr__(self, "holder", default_holder())


@dataclass(frozen=True, slots=True)
class Lease:
    """An admitted job's claim to its quota until ``expires_at``; renew before ``renew_by``."""

    tenant: str
    job_id: str
    holder: str
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime
    renew_by: datetime
    version: int


@dataclass(frozen=True, slots=True, order=True)
class QuotaKey:
    """One quota row: a ClusterQueue (or ``cohort:<name>`` scope), a flavor and a resource."""

    cluster_queue: str
    flavor: str
    resource: str

    def __str__(self) -> str:
        return f"{self.cluster_queue}/{self.flavor}/{self.resource}"


# Codecs ------------------------------------------------------------------------------------
def job_row(job: Job) -> dict[str, Any]:
    """The ``budcore_jobs`` row for ``job``: indexed copies of fields plus the whole job."""
    return {
        "tenant": job.tenant,
        "id": job.id,
        "status": job.status.value,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "idempotency_key": job.idempotency_key,
        "local_queue": job.local_queue,
        "priority": job.priority.value,
        "project": job.project,
        "job_type": job.job_type.value,
        "version": job.version,
        "doc": job.model_dump(mode="json"),
    }


def job_from_doc(doc: Any) -> Job:
    """Rebuild a Job from its JSONB document (validated: a corrupt row fails loudly)."""
    return Job.model_validate(doc)


def job_from_json(text: str) -> Job:
    """Rebuild a Job from the JSONB document fetched as text (pydantic parses JSON faster)."""
    return Job.model_validate_json(text)


# The job document as JSON text, for the read paths that return many jobs.
DOC_TEXT = sa.cast(jobs.c.doc, sa.Text).label("doc")


def event_row(event: DomainEvent) -> dict[str, Any]:
    return {"tenant": event.tenant, "kind": event.kind, "event": event.model_dump(mode="json")}


def event_from_row(outbox_id: int, kind: str, payload: Any) -> DomainEvent:
    event_type = EVENT_TYPES.get(kind)
    if event_type is None:
        raise DatabaseError(f"outbox row {outbox_id}: unknown event kind {kind!r}")
    return event_type.model_validate(payload)


def lease_from_row(row: Any, policy: LeasePolicy) -> Lease:
    return Lease(
        tenant=row.tenant,
        job_id=row.job_id,
        holder=row.holder,
        acquired_at=ensure_utc(row.acquired_at),
        renewed_at=ensure_utc(row.renewed_at),
        expires_at=ensure_utc(row.expires_at),
        renew_by=ensure_utc(row.renewed_at) + policy.renew_within,
        version=row.version,
    )


# Statements --------------------------------------------------------------------------------
def insert_events(conn: Connection, events: Sequence[DomainEvent]) -> None:
    if events:
        conn.execute(sa.insert(outbox), [event_row(e) for e in events])


def grant_lease(conn: Connection, job: Job, policy: LeasePolicy, now: datetime) -> Lease:
    """Create (or take over) the lease of a job that just entered ``admitted``."""
    values = {
        "holder": policy.holder,
        "acquired_at": now,
        "renewed_at": now,
        "expires_at": now + policy.duration,
    }
    stmt = pg_insert(leases).values(tenant=job.tenant, job_id=job.id, **values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[leases.c.tenant, leases.c.job_id],
        set_={**values, "version": leases.c.version + 1},
    )
    row = conn.execute(stmt.returning(*leases.c)).one()
    return lease_from_row(row, policy)


def release_reservations(conn: Connection, tenant: str, job_id: str) -> dict[QuotaKey, int]:
    """Give a job's reserved quota back; returns what was released (empty if it held none)."""
    released = conn.execute(
        sa.delete(quota_reservations)
        .where(quota_reservations.c.tenant == tenant, quota_reservations.c.job_id == job_id)
        .returning(
            quota_reservations.c.cluster_queue,
            quota_reservations.c.flavor,
            quota_reservations.c.resource,
            quota_reservations.c.amount,
        )
    ).all()
    amounts = {QuotaKey(r.cluster_queue, r.flavor, r.resource): int(r.amount) for r in released}
    _adjust_usage(conn, {key: -amount for key, amount in amounts.items()})
    return amounts


def _adjust_usage(conn: Connection, deltas: Mapping[QuotaKey, int]) -> None:
    """Add ``deltas`` to the usage rows, in key order (the lock order)."""
    if not deltas:
        return
    stmt = (
        sa.update(quota_usage)
        .where(
            quota_usage.c.cluster_queue == sa.bindparam("k_cq"),
            quota_usage.c.flavor == sa.bindparam("k_flavor"),
            quota_usage.c.resource == sa.bindparam("k_resource"),
        )
        .values(
            used=quota_usage.c.used + sa.bindparam("delta", type_=sa.BigInteger),
            version=quota_usage.c.version + 1,
            updated_at=sa.func.now(),
        )
    )
    params = [
        {"k_cq": k.cluster_queue, "k_flavor": k.flavor, "k_resource": k.resource, "delta": deltas[k]}
        for k in sorted(deltas)
    ]
    # One executemany (a single pipelined round trip with psycopg 3), executed in list order so the
    # row locks are taken in key order. Every row exists: reserve() just locked them, and a
    # reservation's foreign key keeps its quota row from being deleted.
    conn.execute(stmt, params)


def reserve(conn: Connection, tenant: str, job_id: str, amounts: Mapping[QuotaKey, int]) -> None:
    """Lock the quota rows (sorted), check every one has room, then take the amounts.

    All-or-nothing: one row without room raises :class:`QuotaUnavailableError` and the caller's
    transaction rolls everything back, the job's status change included.
    """
    wanted = {key: amount for key, amount in amounts.items() if amount > 0}
    if not wanted:
        return
    keys = sorted(wanted)
    key_columns = sa.tuple_(quota_usage.c.cluster_queue, quota_usage.c.flavor, quota_usage.c.resource)
    rows = conn.execute(
        sa.select(quota_usage.c.cluster_queue, quota_usage.c.flavor, quota_usage.c.resource)
        .add_columns(quota_usage.c.quota, quota_usage.c.used)
        .where(key_columns.in_([(k.cluster_queue, k.flavor, k.resource) for k in keys]))
        .order_by(quota_usage.c.cluster_queue, quota_usage.c.flavor, quota_usage.c.resource)
        .with_for_update()
    ).all()
    found = {QuotaKey(r.cluster_queue, r.flavor, r.resource): r for r in rows}
    for key in keys:
        row = found.get(key)
        if row is None:
            raise NotFoundError("quota", str(key), "budcore_quota_usage (configure it with set_quota)")
        free = int(row.quota) - int(row.used)
        if wanted[key] > free:
            raise QuotaUnavailableError(
                key.cluster_queue, key.flavor, key.resource, wanted[key], max(free, 0)
            )
    _adjust_usage(conn, wanted)
    conn.execute(
        sa.insert(quota_reservations),
        [
            {
                "tenant": tenant,
                "job_id": job_id,
                "cluster_queue": k.cluster_queue,
                "flavor": k.flavor,
                "resource": k.resource,
                "amount": wanted[k],
            }
            for k in keys
        ],
    )


def lock_job(
    conn: Connection, tenant: str, job_id: str, *, skip_locked: bool = False, with_doc: bool = False
) -> Any:
    """The job's row, locked ``FOR UPDATE`` (``None`` if absent, or locked with ``skip_locked``).

    The document is fetched only when asked for: the plain update path needs the identity and
    version columns alone.
    """
    columns = [jobs.c.version, jobs.c.status, jobs.c.created_at, jobs.c.idempotency_key]
    if with_doc:
        columns.append(jobs.c.doc)
    return conn.execute(
        sa.select(*columns)
        .where(jobs.c.tenant == tenant, jobs.c.id == job_id)
        .with_for_update(skip_locked=skip_locked)
    ).first()


def write_update(
    conn: Connection, job: Job, events: Sequence[DomainEvent], policy: LeasePolicy, *, current: Any = None
) -> tuple[Job, Lease | None]:
    """The optimistic update shared by every write path; see the module docstring.

    ``current`` is the job's row when the caller already locked it (reconciliation).
    Returns the stored job and the lease granted if the job entered ``admitted``.
    """
    row = current if current is not None else lock_job(conn, job.tenant, job.id)
    if row is None:
        raise NotFoundError("job", job.id, f"tenant {job.tenant!r}")
    if row.version != job.version:
        raise ConflictError("job", job.id, job.version, row.version)
    old_status = JobStatus(row.status)
    if old_status != job.status and not can_transition(old_status, job.status):
        raise InvalidTransitionError(job.id, old_status.value, job.status.value)
    if ensure_utc(row.created_at) != job.created_at or row.idempotency_key != job.idempotency_key:
        # Identity fields never change; a job carrying other values is not the one that was read.
        raise ConflictError("job", job.id, job.version, row.version)
    stored = job.model_copy(update={"version": row.version + 1})
    values = job_row(stored)
    del values["tenant"], values["id"]
    result = conn.execute(
        sa.update(jobs)
        .where(jobs.c.tenant == job.tenant, jobs.c.id == job.id, jobs.c.version == job.version)
        .values(**values)
    )
    if result.rowcount != 1:  # cannot happen while we hold the row lock; refuse rather than guess
        raise ConflictError("job", job.id, job.version, row.version)
    new_status = stored.status
    lease: Lease | None = None
    if old_status is JobStatus.ADMITTED and new_status is not JobStatus.ADMITTED:
        conn.execute(sa.delete(leases).where(leases.c.tenant == job.tenant, leases.c.job_id == job.id))
    if new_status is JobStatus.ADMITTED and old_status is not JobStatus.ADMITTED:
        lease = grant_lease(conn, stored, policy, stored.admitted_at or stored.updated_at)
    if old_status.holds_quota and not new_status.holds_quota:
        release_reservations(conn, job.tenant, job.id)
    insert_events(conn, events)
    return stored, lease
