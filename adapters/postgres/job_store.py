"""``PostgresJobStore``: the :class:`budcore.ports.JobStore` contract on PostgreSQL.

Behaves exactly like the in-memory reference store (the conformance kit checks both), and adds
what a shared database needs:

- **Idempotent create** via ``INSERT … ON CONFLICT DO NOTHING`` on the unique
  ``(tenant, idempotency_key)``: two replicas submitting the same key concurrently both get the
  one stored job; the loser's events are not written.
- **Optimistic concurrency**: the row is read ``FOR UPDATE``, its version compared with the one the
  caller read, and written with ``UPDATE … WHERE version = :v``; a stale write raises
  ``ConflictError`` and writes nothing. The store also checks the lifecycle, so a replica with a
  bug cannot move a job along an illegal edge.
- **Transactional outbox**: ``events`` go to ``budcore_outbox`` in the same transaction as the
  job row; :class:`~.outbox.OutboxDispatcher` delivers them.
- **Tenant scoping** in every statement: the tenant is part of the primary key and of every
  ``WHERE``; ``tenant=None`` (the scheduler's cross-tenant view) is only accepted by
  ``list``/``count``, exactly as in the port.
- **Quota is held only through the ledger**: once the database has quota rows, a plain
  ``update`` from ``queued`` to ``admitted`` (or a ``create`` of a job that is already admitted or
  running) would hold quota nobody reserved, so it raises
  :class:`~.errors.LedgerAdmissionRequiredError` pointing at
  :meth:`~.admission.PostgresAdmissionLedger.admit`. ``require_ledger=True``/``False`` makes that
  unconditional / turns it off (a store used without the ledger, as the port allows).
- **NUL characters** (``\\x00``), which PostgreSQL cannot store, are a ``ValidationError`` naming
  the field (the in-memory store accepts them; the domain model should reject them for both).

Every statement is built with SQLAlchemy Core and bound parameters; no SQL is assembled from
strings.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from budcore.domain.errors import NotFoundError, ValidationError
from budcore.domain.events import DomainEvent
from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import Job
from budcore.domain.timeutil import ensure_utc
from budcore.ports.job_store import ALL, JobFilter

from .connection import open_engine
from .engine import PoolSettings, run_transaction
from .records import (
    DOC_TEXT,
    LeasePolicy,
    event_from_row,
    insert_job,
    job_from_json,
    job_row,
    write_update,
)
from .schema import jobs, outbox


class PostgresJobStore:
    """Jobs in PostgreSQL. ``url`` defaults to ``$BUDCORE_DATABASE_URL``.

    Pass ``engine`` to share one pool between several stores (job store, dispatcher, admission
    ledger) in a process. ``check_schema`` (default on) refuses to start against a database that
    is unreachable or not at the head revision, naming the command that fixes it. ``pool`` holds
    the pool knobs and the connect timeout (10 s by default).

    ``require_ledger``: ``None`` (default) refuses plain writes into a quota-holding state once the
    database has quota rows, ``True`` always, ``False`` never (see the module docstring).
    """

    def __init__(
        self,
        url: str | URL | None = None,
        *,
        engine: Engine | None = None,
        pool: PoolSettings | None = None,
        lease: LeasePolicy | None = None,
        check_schema: bool = True,
        require_ledger: bool | None = None,
    ) -> None:
        if require_ledger not in (None, True, False):
            raise ValidationError("require_ledger must be None, True or False", path="require_ledger")
        self._engine, self._owns_engine = open_engine(url, pool, engine, check_schema=check_schema)
        self._lease = lease or LeasePolicy()
        self._require_ledger = require_ledger

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (shared with dispatchers/ledgers built from this store)."""
        return self._engine

    @property
    def lease_policy(self) -> LeasePolicy:
        return self._lease

    @property
    def require_ledger(self) -> bool | None:
        return self._require_ledger

    def close(self) -> None:
        """Release pooled connections (only if this store created the engine)."""
        if self._owns_engine:
            self._engine.dispose()

    # Writes ------------------------------------------------------------------------------
    def create(self, job: Job, *, events: Sequence[DomainEvent] = ()) -> Job:
        stored = job.model_copy(update={"version": 1})
        row = job_row(stored)  # refuses NUL characters before anything is sent

        def work(conn: Connection) -> Job:
            return insert_job(conn, stored, row, events, self._lease, self._require_ledger)

        return run_transaction(self._engine, work)

    def update(self, job: Job, *, events: Sequence[DomainEvent] = ()) -> Job:
        def work(conn: Connection) -> Job:
            return write_update(conn, job, events, self._lease, require_ledger=self._require_ledger)[0]

        return run_transaction(self._engine, work)

    # Reads -------------------------------------------------------------------------------
    def get(self, tenant: TenantId, job_id: JobId) -> Job:
        def work(conn: Connection) -> Job:
            row = conn.execute(
                sa.select(DOC_TEXT).where(jobs.c.tenant == tenant, jobs.c.id == job_id)
            ).first()
            if row is None:
                raise NotFoundError("job", job_id, f"tenant {tenant!r}")
            return job_from_json(row.doc)

        return run_transaction(self._engine, work)

    def list(self, tenant: TenantId | None, flt: JobFilter = ALL) -> list[Job]:
        stmt = (
            sa.select(DOC_TEXT)
            .where(*_conditions(tenant, flt))
            .order_by(jobs.c.created_at, jobs.c.id, jobs.c.tenant)
        )
        if flt.limit is not None:
            stmt = stmt.limit(flt.limit)

        def work(conn: Connection) -> list[Job]:
            return [job_from_json(row.doc) for row in conn.execute(stmt)]

        return run_transaction(self._engine, work)

    def count(self, tenant: TenantId | None, flt: JobFilter = ALL) -> int:
        stmt = sa.select(sa.func.count()).select_from(jobs).where(*_conditions(tenant, flt))

        def work(conn: Connection) -> int:
            return int(conn.execute(stmt).scalar_one())

        return run_transaction(self._engine, work)

    def recorded_events(self, tenant: TenantId | None = None) -> builtins.list[DomainEvent]:
        """Every event in the outbox (dispatched or not), in the order they were written.

        The durable record of what this store published; tests and audits read it, delivery
        goes through :class:`~.outbox.OutboxDispatcher`.
        """
        stmt = sa.select(outbox.c.id, outbox.c.kind, outbox.c.event).order_by(outbox.c.id)
        if tenant is not None:
            stmt = stmt.where(outbox.c.tenant == tenant)

        def work(conn: Connection) -> builtins.list[DomainEvent]:
            return [event_from_row(r.id, r.kind, r.event) for r in conn.execute(stmt)]

        return run_transaction(self._engine, work)


def _conditions(tenant: TenantId | None, flt: JobFilter) -> list[sa.ColumnElement[bool]]:
    """``WHERE`` terms for a tenant scope and a filter (same semantics as ``JobFilter.matches``)."""
    terms: list[sa.ColumnElement[bool]] = []
    if tenant is not None:
        terms.append(jobs.c.tenant == tenant)
    if flt.statuses is not None:
        terms.append(jobs.c.status.in_(sorted(s.value for s in flt.statuses)))
    if flt.project is not None:
        terms.append(jobs.c.project == flt.project)
    if flt.job_type is not None:
        terms.append(jobs.c.job_type == flt.job_type.value)
    if flt.priority is not None:
        terms.append(jobs.c.priority == flt.priority.value)
    if flt.local_queue is not None:
        terms.append(jobs.c.local_queue == flt.local_queue)
    if flt.created_after is not None:
        terms.append(jobs.c.created_at > ensure_utc(flt.created_after, "created_after"))
    if flt.created_before is not None:
        terms.append(jobs.c.created_at < ensure_utc(flt.created_before, "created_before"))
    if flt.labels:
        labels: Any = jobs.c.doc["labels"]
        terms.append(labels.contains(dict(flt.labels)))
    return terms


class OnJobStoreEngine:
    """A PostgreSQL component that shares its connection pool with the job store, or has its own.

    Built from ``url`` (default ``$BUDCORE_DATABASE_URL``) with ``pool`` settings, on a shared
    ``engine``, or on the engine of an existing job ``store`` (several components on one pool).
    ``check_schema`` (default on, for a url or engine) refuses a database that is unreachable or
    not at the head revision, naming the command that fixes it. The reservation and pipeline
    stores are built this way.
    """

    def __init__(
        self,
        url: str | URL | None = None,
        *,
        store: PostgresJobStore | None = None,
        engine: Engine | None = None,
        pool: PoolSettings | None = None,
        check_schema: bool = True,
    ) -> None:
        if store is not None:
            if not isinstance(store, PostgresJobStore):
                raise ValidationError(
                    f"store must be a PostgresJobStore, got {type(store).__name__}", path="store"
                )
            if url is not None or engine is not None or pool is not None:
                raise ValidationError("pass either a store or a url/pool/engine, not both", path="store")
            self._engine, self._owns_engine = store.engine, False
        else:
            self._engine, self._owns_engine = open_engine(url, pool, engine, check_schema=check_schema)

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        """Release pooled connections (only if this component created the engine)."""
        if self._owns_engine:
            self._engine.dispose()
