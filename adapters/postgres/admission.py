"""Multi-replica-safe admission: quota rows, reservations and admission leases.

Several scheduler replicas share one database. Each decides admissions from its own snapshot,
which may be stale, so the database has the last word: :meth:`AdmissionLedger.admit` commits a
``queued → admitted`` transition only together with a reservation on the quota rows it needs.

**Choice: row locks, not SERIALIZABLE.** Admission touches a small, known set of rows — one per
(ClusterQueue, flavor, resource) the job uses, plus one per enclosing cohort scope. The ledger
locks exactly those rows with ``SELECT … FOR UPDATE`` (in key order, after the job row; see the
lock order in :mod:`.records`), re-checks ``used + amount <= quota`` under the lock and increments
``used``. Under READ COMMITTED a second replica admitting against the same rows waits for the
first to commit and then sees the new ``used``, so usage can never be double-spent. Compared with
SERIALIZABLE this (a) only serialises admissions that share a quota row, (b) has no false-positive
aborts from predicate locks on the large jobs table, and (c) fails with a meaningful
:class:`~.errors.QuotaUnavailableError` instead of a retry storm when the quota is really gone.
Deadlock and serialization failures are still retried by :func:`~.engine.run_transaction`.

**Cohorts.** A quota row is keyed by a *scope*: a ClusterQueue name, or ``cohort:<name>`` (a
``:`` cannot occur in a Kubernetes name, so the two never collide). Admitting with ``cohorts=``
also reserves on those scopes' rows, so borrowing within a cohort is capped atomically too: give
the ClusterQueue's row ``nominal + borrowingLimit`` and the cohort's row the cohort's total.

**Leases.** A job entering ``admitted`` gets a lease (30 s by default) held by the admitting
replica, which renews it within 25 s until the job starts (``admitted → running`` removes the
lease). If the replica dies, the lease expires and :meth:`AdmissionLedger.reconcile` — run by any
replica, periodically and at start-up — requeues the job (``admitted → queued``, Kueue's eviction
of a workload whose pods never started), giving its quota back in the same transaction.
Reconcilers lock the job row with ``SKIP LOCKED`` and re-check the lease under the lock, so two
replicas reconciling at once neither block each other nor requeue a job twice, and a renewal that
commits first wins over a reconciliation.

Crash safety comes from transactions: every state change (job row, lease, reservations, usage,
outbox) is one transaction, so a replica killed between any two statements leaves either all of
it or none of it; PostgreSQL aborts the open transaction as soon as the connection drops, which
releases its row locks. A replica that is cut off by the network rather than killed keeps its
transaction open until TCP keepalive notices; set ``idle_in_transaction_session_timeout`` (for
example ``60s``) on the budcore role so such a transaction cannot hold quota rows for long.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from budcore.domain.errors import ConflictError, NotFoundError, ValidationError
from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import Job, JobStatus
from budcore.domain.lifecycle import transition
from budcore.domain.timeutil import ensure_utc
from budcore.scheduling.queues import ClusterQueue

from .engine import run_transaction
from .errors import LeaseLostError
from .job_store import PostgresJobStore
from .records import (
    Lease,
    QuotaKey,
    job_from_doc,
    lease_from_row,
    lock_job,
    reserve,
    write_update,
)
from .schema import leases, quota_reservations, quota_usage

COHORT_PREFIX = "cohort:"
MAX_AMOUNT = 2**63 - 1  # BIGINT: ~9.2e15 whole units, i.e. about 8 PiB of memory in milli-bytes
LEASE_EXPIRED_REASON = "admission lease expired: admitted but not started in time"


def cohort_scope(cohort: str) -> str:
    """The quota-row scope name of a cohort (``cohort:<name>``)."""
    return COHORT_PREFIX + cohort


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """One quota row: its ``quota`` and how much admitted/running jobs hold (milli-units)."""

    key: QuotaKey
    quota: int
    used: int
    version: int

    @property
    def free(self) -> int:
        return max(self.quota - self.used, 0)


@dataclass(frozen=True, slots=True)
class Admission:
    """The result of a successful admission: the stored job, its lease and what it reserved."""

    job: Job
    lease: Lease
    reserved: Mapping[QuotaKey, int]


class AdmissionLedger:
    """Quota and lease operations on the database of ``store`` (sharing its engine and policy)."""

    def __init__(self, store: PostgresJobStore) -> None:
        self._store = store
        self._engine = store.engine
        self._policy = store.lease_policy

    # Quota configuration -----------------------------------------------------------------
    def set_quota(
        self,
        cluster_queue: str,
        flavor: str,
        resource: str,
        quota: int,
        *,
        expected_version: int | None = None,
    ) -> QuotaUsage:
        """Create or change a quota row (``quota`` in milli-units); usage is kept.

        With ``expected_version`` the change is optimistic, like a job update: it applies only if
        the row is still at that version (``ConflictError`` otherwise, ``NotFoundError`` if the row
        does not exist), so two administrators editing one quota cannot silently overwrite each
        other. Without it, the row is created or overwritten (configuration sync).

        Lowering a quota below the current usage is allowed, as in Kueue: running work keeps its
        quota and nothing new is admitted on that row until usage drops.
        """
        for field, value in (("cluster_queue", cluster_queue), ("flavor", flavor), ("resource", resource)):
            if not isinstance(value, str) or not value:
                raise ValidationError(f"{field} must be a non-empty string", path=field)
        if not isinstance(quota, int) or isinstance(quota, bool) or not 0 <= quota <= MAX_AMOUNT:
            raise ValidationError(
                f"quota must be an integer of milli-units in [0, 2**63 - 1], got {quota!r}", path="quota"
            )
        key = QuotaKey(cluster_queue, flavor, resource)
        q = quota_usage.c
        changes = {"quota": quota, "version": q.version + 1, "updated_at": sa.func.now()}
        if expected_version is None:
            insert = pg_insert(quota_usage).values(
                cluster_queue=cluster_queue, flavor=flavor, resource=resource, quota=quota
            )
            upsert = insert.on_conflict_do_update(
                index_elements=[q.cluster_queue, q.flavor, q.resource], set_=changes
            ).returning(*quota_usage.c)

            def work(conn: Connection) -> QuotaUsage:
                return _usage(conn.execute(upsert).one())

            return run_transaction(self._engine, work)

        where = (q.cluster_queue == cluster_queue, q.flavor == flavor, q.resource == resource)
        update = (
            sa.update(quota_usage)
            .where(*where, q.version == expected_version)
            .values(**changes)
            .returning(*quota_usage.c)
        )

        def optimistic(conn: Connection) -> QuotaUsage:
            row = conn.execute(update).first()
            if row is not None:
                return _usage(row)
            actual = conn.execute(sa.select(q.version).where(*where)).scalar()
            if actual is None:
                raise NotFoundError("quota", str(key), "budcore_quota_usage")
            raise ConflictError("quota", str(key), expected_version, int(actual))

        return run_transaction(self._engine, optimistic)

    def sync_cluster_queues(self, cluster_queues: Iterable[ClusterQueue]) -> list[QuotaUsage]:
        """Set every (ClusterQueue, flavor, resource) row to its ``nominalQuota``."""
        out: list[QuotaUsage] = []
        for cq in cluster_queues:
            for group in cq.resource_groups:
                for flavor in group.flavors:
                    for rq in flavor.resources:
                        out.append(self.set_quota(cq.name, flavor.name, rq.name, rq.nominal_quota))
        return out

    def usage(self, cluster_queue: str | None = None) -> list[QuotaUsage]:
        """Quota rows (of one scope, or all), ordered by key."""
        stmt = sa.select(*quota_usage.c).order_by(
            quota_usage.c.cluster_queue, quota_usage.c.flavor, quota_usage.c.resource
        )
        if cluster_queue is not None:
            stmt = stmt.where(quota_usage.c.cluster_queue == cluster_queue)

        def work(conn: Connection) -> list[QuotaUsage]:
            return [_usage(row) for row in conn.execute(stmt)]

        return run_transaction(self._engine, work)

    def reservations(self, tenant: TenantId, job_id: JobId) -> dict[QuotaKey, int]:
        """What the job currently holds (empty unless it is admitted or running)."""
        r = quota_reservations.c
        stmt = sa.select(r.cluster_queue, r.flavor, r.resource, r.amount).where(
            r.tenant == tenant, r.job_id == job_id
        )

        def work(conn: Connection) -> dict[QuotaKey, int]:
            rows = conn.execute(stmt)
            return {QuotaKey(x.cluster_queue, x.flavor, x.resource): int(x.amount) for x in rows}

        return run_transaction(self._engine, work)

    # Admission ---------------------------------------------------------------------------
    def admit(
        self,
        job: Job,
        *,
        cluster_queue: str,
        flavors: Mapping[str, str],
        now: datetime,
        cohorts: Sequence[str] = (),
        reason: str = "",
    ) -> Admission:
        """Admit a queued ``job`` (as read, at its version) if the quota rows have room.

        ``flavors`` maps every resource the job requests to the flavor assigned to it (the
        scheduler's flavor assignment). The job's total request is reserved on the rows
        ``(cluster_queue, flavor, resource)`` and on each ``cohort:<name>`` scope in ``cohorts``.
        In one transaction: job ``queued → admitted`` (optimistic, ConflictError if stale),
        lease granted to this replica, reservation taken, event written to the outbox.
        Raises :class:`~.errors.QuotaUnavailableError` (nothing written) when a row lacks room.
        """
        now = ensure_utc(now, "now")
        amounts = _amounts(job, cluster_queue, flavors, cohorts)
        admitted, event = transition(job, JobStatus.ADMITTED, now=now, reason=reason)

        def work(conn: Connection) -> Admission:
            stored, lease = write_update(conn, admitted, [event], self._policy)
            assert lease is not None  # write_update grants one on entering ADMITTED
            reserve(conn, job.tenant, job.id, amounts)
            return Admission(stored, lease, amounts)

        return run_transaction(self._engine, work)

    # Leases ------------------------------------------------------------------------------
    def lease(self, tenant: TenantId, job_id: JobId) -> Lease | None:
        stmt = sa.select(*leases.c).where(leases.c.tenant == tenant, leases.c.job_id == job_id)

        def work(conn: Connection) -> Lease | None:
            row = conn.execute(stmt).first()
            return None if row is None else lease_from_row(row, self._policy)

        return run_transaction(self._engine, work)

    def renew(self, tenant: TenantId, job_id: JobId, *, now: datetime) -> Lease:
        """Extend this replica's unexpired lease on an admitted job to ``now + duration``.

        Raises :class:`~.errors.LeaseLostError` when there is no lease (the job started, was
        requeued or finished), it belongs to another holder, or it already expired — an expired
        lease may be reconciled at any moment, so the holder must treat it as gone.
        """
        now = ensure_utc(now, "now")
        policy = self._policy
        stmt = (
            sa.update(leases)
            .where(
                leases.c.tenant == tenant,
                leases.c.job_id == job_id,
                leases.c.holder == policy.holder,
                leases.c.expires_at > now,
            )
            .values(renewed_at=now, expires_at=now + policy.duration, version=leases.c.version + 1)
            .returning(*leases.c)
        )

        def work(conn: Connection) -> Lease:
            row = conn.execute(stmt).first()
            if row is not None:
                return lease_from_row(row, policy)
            existing = conn.execute(
                sa.select(leases.c.holder, leases.c.expires_at).where(
                    leases.c.tenant == tenant, leases.c.job_id == job_id
                )
            ).first()
            if existing is None:
                raise LeaseLostError(f"job {job_id!r} (tenant {tenant!r}) has no admission lease")
            if existing.holder != policy.holder:
                raise LeaseLostError(
                    f"job {job_id!r}: lease is held by {existing.holder!r}, not {policy.holder!r}"
                )
            raise LeaseLostError(
                f"job {job_id!r}: lease expired at {ensure_utc(existing.expires_at).isoformat()}"
            )

        return run_transaction(self._engine, work)

    def reconcile(self, now: datetime, *, limit: int = 100) -> list[Job]:
        """Requeue admitted jobs whose lease expired before ``now``; returns the requeued jobs.

        Each job is handled in its own transaction, so one failure does not undo the others and
        a crash mid-way leaves the remaining leases for the next run. Leases of jobs that are no
        longer admitted (cannot normally exist) are removed.
        """
        now = ensure_utc(now, "now")
        if limit < 1:
            raise ValidationError(f"limit must be at least 1, got {limit}", path="limit")
        candidates_stmt = (
            sa.select(leases.c.tenant, leases.c.job_id)
            .where(leases.c.expires_at <= now)
            .order_by(leases.c.expires_at)
            .limit(limit)
        )
        candidates = run_transaction(self._engine, lambda conn: conn.execute(candidates_stmt).all())
        requeued: list[Job] = []
        for tenant, job_id in candidates:
            job = run_transaction(self._engine, partial(self._requeue, tenant=tenant, job_id=job_id, now=now))
            if job is not None:
                requeued.append(job)
        return requeued

    def _requeue(self, conn: Connection, tenant: str, job_id: str, now: datetime) -> Job | None:
        row = lock_job(conn, tenant, job_id, skip_locked=True, with_doc=True)
        if row is None:  # another replica is working on this job right now
            return None
        expired = conn.execute(
            sa.select(leases.c.job_id)
            .where(leases.c.tenant == tenant, leases.c.job_id == job_id, leases.c.expires_at <= now)
            .with_for_update()
        ).first()
        if expired is None:  # renewed, or removed by a start/finish since we looked
            return None
        job = job_from_doc(row.doc)
        if job.status is not JobStatus.ADMITTED:
            conn.execute(sa.delete(leases).where(leases.c.tenant == tenant, leases.c.job_id == job_id))
            return None
        requeued, event = transition(job, JobStatus.QUEUED, now=now, reason=LEASE_EXPIRED_REASON)
        return write_update(conn, requeued, [event], self._policy, current=row)[0]


def _amounts(
    job: Job, cluster_queue: str, flavors: Mapping[str, str], cohorts: Sequence[str]
) -> dict[QuotaKey, int]:
    if not cluster_queue:
        raise ValidationError("cluster_queue must be a non-empty string", path="cluster_queue")
    total = job.request.total
    missing = sorted(set(total) - set(flavors))
    if missing:
        raise ValidationError(
            f"no flavor assigned to requested resource {missing[0]!r}", path=f"flavors.{missing[0]}"
        )
    extra = sorted(set(flavors) - set(total))
    if extra:
        raise ValidationError(
            f"flavor assigned to resource {extra[0]!r} the job does not request", path=f"flavors.{extra[0]}"
        )
    scopes = [cluster_queue, *(cohort_scope(c) for c in cohorts)]
    if len(set(scopes)) != len(scopes):
        raise ValidationError("cohorts must be distinct", path="cohorts")
    return {QuotaKey(scope, flavors[res], res): amount for scope in scopes for res, amount in total.items()}


def _usage(row: Any) -> QuotaUsage:
    return QuotaUsage(
        key=QuotaKey(row.cluster_queue, row.flavor, row.resource),
        quota=int(row.quota),
        used=int(row.used),
        version=int(row.version),
    )


__all__ = ["COHORT_PREFIX", "Admission", "AdmissionLedger", "QuotaUsage", "cohort_scope"]
