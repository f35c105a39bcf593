"""Row codecs and the statements every write shares, run inside a caller's transaction.

One write path (:func:`write_update`) serves the plain ``JobStore.update``, admission and lease
reconciliation, so the side effects of a status change cannot be skipped by taking another route:

- leaving ``admitted`` removes the job's lease; entering it grants one;
- leaving a quota-holding state (``admitted``/``running``) gives the job's quota reservation back
  and closes its metered usage rows (:mod:`.usage`);
- entering one from a state that holds none (``queued → admitted``) outside the admission ledger
  is refused while the ledger is in use (:class:`~.errors.LedgerAdmissionRequiredError`): the job
  would hold quota nobody counted;
- the events are appended to the outbox.

**Lock order.** Every transaction locks rows in the order *job → lease → quota rows (sorted by
key, bytewise: see :mod:`.quota`)*; the job row is locked first with ``SELECT … FOR UPDATE``. A
fixed global order means two replicas can wait for each other but never deadlock on budcore's own
rows (PostgreSQL's deadlock detector and :func:`~.engine.run_transaction`'s retry remain as a
safety net).

**NUL characters.** PostgreSQL's ``text`` and ``jsonb`` cannot hold ``\\x00``. :func:`job_row`
and :func:`event_row` refuse such a value with a :class:`ValidationError` naming the field
(never echoing the document), before any statement is sent.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from budcore.domain.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from budcore.domain.events import BudgetAlerted, DomainEvent, JobTransitioned, PipelineNotified
from budcore.domain.job import STORED_JOB, Job, JobStatus
from budcore.domain.lifecycle import can_transition
from budcore.domain.timeutil import ensure_utc
from budcore.ports.admission_ledger import Lease as Lease  # re-exported: it was defined here
from budcore.ports.admission_ledger import QuotaKey as QuotaKey  # re-exported: it was defined here

from .errors import DatabaseError, LedgerAdmissionRequiredError
from .quota import release_reservations
from .schema import jobs, leases, outbox, quota_usage
from .usage import close_usage

DEFAULT_LEASE_DURATION = timedelta(seconds=30)
DEFAULT_RENEW_WITHIN = timedelta(seconds=25)

EVENT_TYPES: dict[str, type[JobTransitioned] | type[PipelineNotified] | type[BudgetAlerted]] = {
    "job.transitioned": JobTransitioned,
    "pipeline.notified": PipelineNotified,
    "budget.alerted": BudgetAlerted,
}


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


class Written(NamedTuple):
    """What :func:`write_update` did: the stored job, the lease it granted (on entering
    ``admitted``) and the quota it gave back (on leaving a quota-holding state)."""

    job: Job
    lease: Lease | None
    released: dict[QuotaKey, int]


# Codecs ------------------------------------------------------------------------------------
def _nul_path(value: Any, path: str) -> str | None:
    """The path of the first string (or key) in a JSON-shaped ``value`` that contains ``\\x00``."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                return where.replace("\x00", "\\x00")
            found = _nul_path(item, where)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = _nul_path(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def check_no_nul(doc: Any, what: str) -> None:
    """Refuse a document PostgreSQL cannot store because a string in it holds ``\\x00``."""
    path = _nul_path(doc, "")
    if path is not None:
        raise ValidationError(
            f"NUL character (\\x00) in a {what} field: PostgreSQL cannot store it",
            path=path,
        )


def job_row(job: Job) -> dict[str, Any]:
    """The ``budcore_jobs`` row for ``job``: indexed copies of fields plus the whole job."""
    doc = job.model_dump(mode="json")
    check_no_nul(doc, "job")  # every text column below is a copy of a field of the document
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
        "doc": doc,
    }


def job_from_doc(doc: Any) -> Job:
    """Rebuild a Job from its JSONB document (validated: a corrupt row fails loudly; a rule added
    after the row was written does not, see :data:`~budcore.domain.job.STORED_JOB`)."""
    return Job.model_validate(doc, context=STORED_JOB)


def job_from_json(text: str) -> Job:
    """Rebuild a Job from the JSONB document fetched as text (pydantic parses JSON faster)."""
    return Job.model_validate_json(text, context=STORED_JOB)


# The job document as JSON text, for the read paths that return many jobs.
DOC_TEXT = sa.cast(jobs.c.doc, sa.Text).label("doc")


def event_row(event: DomainEvent) -> dict[str, Any]:
    payload = event.model_dump(mode="json")
    check_no_nul(payload, "event")
    return {"tenant": event.tenant, "kind": event.kind, "event": payload}


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


def ledger_in_use(conn: Connection) -> bool:
    """Whether any quota row is configured: then quota is held only through the ledger."""
    return bool(conn.execute(sa.select(sa.exists().select_from(quota_usage))).scalar())


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


def check_ledger_bypass(
    conn: Connection, job: Job, old_status: JobStatus | None, require_ledger: bool | None
) -> None:
    """Refuse a plain write that makes ``job`` hold quota the ledger never reserved.

    ``require_ledger``: ``True`` always refuses, ``False`` never does, ``None`` refuses once the
    database has quota rows (the ledger is in use).
    """
    if not job.status.holds_quota or (old_status is not None and old_status.holds_quota):
        return
    if require_ledger is False or (require_ledger is None and not ledger_in_use(conn)):
        return
    source = old_status.value if old_status is not None else "(new job)"
    raise LedgerAdmissionRequiredError(job.id, source, job.status.value)


def stored_by_key(conn: Connection, tenant: str, idempotency_key: str) -> Job | None:
    """The job stored under ``(tenant, idempotency_key)``, if any: a replayed submission's original."""
    row = conn.execute(
        sa.select(DOC_TEXT).where(jobs.c.tenant == tenant, jobs.c.idempotency_key == idempotency_key)
    ).first()
    return None if row is None else job_from_json(row.doc)


def insert_job(
    conn: Connection,
    stored: Job,
    row: Mapping[str, Any],
    events: Sequence[DomainEvent],
    policy: LeasePolicy,
    require_ledger: bool | None,
) -> Job:
    """``JobStore.create``'s work inside the caller's transaction (the budget-guarded create runs
    it under its lock): ``stored`` is the job at version 1 and ``row`` its :func:`job_row`.

    ``INSERT … ON CONFLICT DO NOTHING``: a job whose ``(tenant, idempotency_key)`` is stored
    already returns the stored one (its events are not written); another conflict (the id) is
    :class:`AlreadyExistsError`. A job created already admitted gets its lease.
    """
    check_ledger_bypass(conn, stored, None, require_ledger)
    inserted = conn.execute(
        pg_insert(jobs).values(**row).on_conflict_do_nothing().returning(jobs.c.id)
    ).first()
    if inserted is None:
        if stored.idempotency_key is not None:
            existing = stored_by_key(conn, stored.tenant, stored.idempotency_key)
            if existing is not None:
                return existing
        raise AlreadyExistsError("job", stored.id)
    if stored.status is JobStatus.ADMITTED:
        grant_lease(conn, stored, policy, stored.admitted_at or stored.updated_at)
    insert_events(conn, events)
    return stored


def write_update(
    conn: Connection,
    job: Job,
    events: Sequence[DomainEvent],
    policy: LeasePolicy,
    *,
    current: Any = None,
    require_ledger: bool | None = None,
) -> Written:
    """The optimistic update shared by every write path; see the module docstring.

    ``current`` is the job's row when the caller already locked it (reconciliation).
    ``require_ledger`` is the store's setting (see :func:`check_ledger_bypass`); the ledger passes
    ``False`` because it reserves the quota in the same transaction.
    Returns the stored job, the lease granted if the job entered ``admitted`` and the quota given
    back if it left a quota-holding state.
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
    check_ledger_bypass(conn, job, old_status, require_ledger)
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
    released: dict[QuotaKey, int] = {}
    if old_status.holds_quota and not new_status.holds_quota:
        released = release_reservations(conn, job.tenant, job.id)
        close_usage(conn, job.tenant, job.id, stored.updated_at)
    insert_events(conn, events)
    return Written(stored, lease, released)
