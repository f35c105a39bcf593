"""Multi-replica-safe admission: quota rows, reservations and admission leases.

Several scheduler replicas share one database. Each decides admissions from its own snapshot,
which may be stale, so the database has the last word: :meth:`AdmissionLedger.admit` commits a
``queued → admitted`` transition only together with a reservation on the quota rows it needs.

**Choice: row locks, not SERIALIZABLE.** Admission touches a small, known set of rows — one per
(ClusterQueue, flavor, resource) the job uses, plus the cohort rows above each. The ledger locks
exactly those rows with ``SELECT … FOR UPDATE`` (in bytewise key order, after the job row; see the
lock order in :mod:`.records` and :mod:`.quota`), re-checks every row's limit under the lock and
updates ``used``. Under READ COMMITTED a second replica admitting against the same rows waits for the
first to commit and then sees the new ``used``, so usage can never be double-spent. Compared with
SERIALIZABLE this (a) only serialises admissions that share a quota row, (b) has no false-positive
aborts from predicate locks on the large jobs table, and (c) fails with a meaningful
:class:`~.errors.QuotaUnavailableError` instead of a retry storm when the quota is really gone.
Deadlock and serialization failures are still retried by :func:`~.engine.run_transaction`.

**Cohorts and borrowing.** A quota row is keyed by a *scope*: a ClusterQueue name, or
``cohort:<name>`` (a ``:`` cannot occur in a Kubernetes name, so the two never collide).
:meth:`AdmissionLedger.sync_cluster_queues` writes the whole Kueue tree — one row per
(ClusterQueue or cohort, flavor, resource) with its parent, ``nominalQuota``, ``borrowingLimit``
and ``lendingLimit`` — in one transaction, and admission then applies Kueue's arithmetic along
the row's path to the root (see :mod:`.quota`): a ClusterQueue borrows exactly what Kueue would
let it borrow, and no more, whichever replica admits. Rows set by hand with :meth:`set_quota` are
roots; ``admit(cohorts=...)`` also reserves on those cohort scopes' rows directly (the older,
flat way of capping a cohort: the ClusterQueue's row ``nominal + borrowingLimit``, the cohort's
row its total).

**Flavors.** ``admit(flavors=...)`` takes the scheduler's assignment as it is,
:attr:`budcore.scheduling.Admit.flavors` (pod set → resource → flavor: a driver may be on one
flavor and the workers on another), or one flavor per resource for a job whose pod sets all use
the same; :meth:`AdmissionLedger.admit_decision` takes an ``Admit`` directly.

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
from budcore.scheduling.queues import ClusterQueue, Cohort
from budcore.scheduling.snapshot import Admit

from .engine import run_transaction
from .errors import LeaseLostError
from .job_store import PostgresJobStore
from .quota import (
    COHORT_PREFIX,
    MAX_AMOUNT,
    USAGE_COLUMNS,
    QuotaKey,
    QuotaUsage,
    available,
    cohort_scope,
    desired_rows,
    key_order,
    read_tree,
    reserve,
    sync_rows,
    usage_from_row,
)
from .records import (
    Lease,
    job_from_doc,
    lease_from_row,
    lock_job,
    write_update,
)
from .schema import leases, quota_reservations, quota_usage

LEASE_EXPIRED_REASON = "admission lease expired: admitted but not started in time"

# Per resource (``{"nvidia.com/gpu": "h100"}``) or per pod set (``{"driver": {"cpu": "a"}}``).
FlavorAssignment = Mapping[str, str] | Mapping[str, Mapping[str, str]]


@dataclass(frozen=True, slots=True)
class Admission:
    """The result of a successful admission: the stored job, its lease and what it reserved.

    ``reserved`` holds the job's direct reservations; the cohort rows above them account for it
    through the tree (see :mod:`.quota`).
    """

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
        """Create or change a stand-alone quota row (``quota`` in milli-units); usage is kept.

        With ``expected_version`` the change is optimistic, like a job update: it applies only if
        the row is still at that version (``ConflictError`` otherwise, ``NotFoundError`` if the row
        does not exist), so two administrators editing one quota cannot silently overwrite each
        other. Without it, the row is created or overwritten.

        Lowering a quota below the current usage is allowed, as in Kueue: running work keeps its
        quota and nothing new is admitted on that row until usage drops.

        A row that is part of a cohort tree written by :meth:`sync_cluster_queues` (it has a parent
        or children) is refused: a cohort's quota is derived from its members', so change the
        configuration and sync it instead.
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
        where = (q.cluster_queue == cluster_queue, q.flavor == flavor, q.resource == resource)
        changes = {"quota": quota, "version": q.version + 1, "updated_at": sa.func.now()}

        def refuse_tree_rows(conn: Connection) -> Any:
            row = conn.execute(sa.select(q.version, q.parent).where(*where).with_for_update()).first()
            has_children = conn.execute(
                sa.select(
                    sa.exists().where(q.parent == cluster_queue, q.flavor == flavor, q.resource == resource)
                )
            ).scalar()
            if (row is not None and row.parent is not None) or has_children:
                raise ValidationError(
                    f"quota row {key} is part of a cohort tree written by sync_cluster_queues; change "
                    "the ClusterQueue/Cohort configuration and sync it instead",
                    path="cluster_queue",
                )
            return row

        if expected_version is None:
            insert = pg_insert(quota_usage).values(
                cluster_queue=cluster_queue, flavor=flavor, resource=resource, quota=quota
            )
            upsert = insert.on_conflict_do_update(
                index_elements=[q.cluster_queue, q.flavor, q.resource], set_=changes
            ).returning(*USAGE_COLUMNS)

            def work(conn: Connection) -> QuotaUsage:
                refuse_tree_rows(conn)
                return usage_from_row(conn.execute(upsert).one())

            return run_transaction(self._engine, work)

        update = (
            sa.update(quota_usage)
            .where(*where, q.version == expected_version)
            .values(**changes)
            .returning(*USAGE_COLUMNS)
        )

        def optimistic(conn: Connection) -> QuotaUsage:
            current = refuse_tree_rows(conn)
            if current is None:
                raise NotFoundError("quota", str(key), "budcore_quota_usage")
            row = conn.execute(update).first()
            if row is None:
                raise ConflictError("quota", str(key), expected_version, int(current.version))
            return usage_from_row(row)

        return run_transaction(self._engine, optimistic)

    def sync_cluster_queues(
        self, cluster_queues: Iterable[ClusterQueue], cohorts: Iterable[Cohort] = (), *, prune: bool = True
    ) -> list[QuotaUsage]:
        """Make the quota rows match a Kueue configuration, in one transaction; returns every row.

        One row per (ClusterQueue or cohort, flavor, resource): a ClusterQueue's ``nominalQuota``,
        ``borrowingLimit`` and ``lendingLimit`` and its cohort as parent; a cohort's quota is its
        own (``cohorts``: Cohort objects with quotas or parents; a cohort only named by a
        ClusterQueue needs none) plus what its members lend — computed by the scheduler's own
        :class:`~budcore.scheduling.quota.QuotaTree`. Usage is then re-derived from the
        reservations, so changing a lending limit or moving a queue to another cohort keeps every
        row's usage right.

        Everything is validated before anything is written: an amount that does not fit the
        ledger's ``BIGINT`` milli-units raises :class:`~.errors.QuotaRangeError` naming the queue,
        flavor and resource. With ``prune`` (the default) the configuration is the whole truth:
        rows of removed ClusterQueues, cohorts, flavors or resources — including rows made with
        :meth:`set_quota` — are deleted, unless one is still in use, which raises
        :class:`~.errors.QuotaInUseError` and changes nothing.
        """
        desired = desired_rows(cluster_queues, cohorts)
        return run_transaction(self._engine, partial(sync_rows, desired=desired, prune=prune))

    def usage(self, cluster_queue: str | None = None) -> list[QuotaUsage]:
        """Quota rows (of one scope, or all), ordered by key (bytewise, as ``sorted`` orders keys)."""
        stmt = sa.select(*USAGE_COLUMNS).order_by(*key_order())
        if cluster_queue is not None:
            stmt = stmt.where(quota_usage.c.cluster_queue == cluster_queue)

        def work(conn: Connection) -> list[QuotaUsage]:
            return [usage_from_row(row) for row in conn.execute(stmt)]

        return run_transaction(self._engine, work)

    def available(self, cluster_queue: str, flavor: str, resource: str) -> int:
        """What one admission into ``cluster_queue`` could take of (flavor, resource) right now.

        Kueue's ``available``: the queue's unused guaranteed part plus what its cohort tree can
        still lend it within its borrowing limit (milli-units; ``NotFoundError`` without a row).
        """
        key = QuotaKey(cluster_queue, flavor, resource)

        def work(conn: Connection) -> int:
            nodes = read_tree(conn, [key], lock=False)
            if key not in nodes:
                raise NotFoundError("quota", str(key), "budcore_quota_usage")
            return available(nodes, key)

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
        flavors: FlavorAssignment,
        now: datetime,
        cohorts: Sequence[str] = (),
        reason: str = "",
    ) -> Admission:
        """Admit a queued ``job`` (as read, at its version) if the quota rows have room.

        ``flavors`` is the scheduler's flavor assignment: per pod set, each resource's flavor
        (``Admit.flavors``: ``{"driver": {"cpu": "a"}, "workers": {"cpu": "b"}}``), or one flavor
        per resource for every pod set (``{"cpu": "a"}``). It must cover exactly the resources
        each pod set requests. The request is reserved per (flavor, resource) on the rows
        ``(cluster_queue, flavor, resource)`` — and through them on their cohort tree — and on each
        ``cohort:<name>`` scope in ``cohorts`` that is not already in that tree.
        In one transaction: job ``queued → admitted`` (optimistic, ConflictError if stale),
        lease granted to this replica, reservation taken, event written to the outbox.
        Raises :class:`~.errors.QuotaUnavailableError` (nothing written) when a row lacks room.
        """
        now = ensure_utc(now, "now")
        amounts = _amounts(job, cluster_queue, flavors, cohorts)
        admitted, event = transition(job, JobStatus.ADMITTED, now=now, reason=reason)

        def work(conn: Connection) -> Admission:
            stored, lease = write_update(conn, admitted, [event], self._policy, require_ledger=False)
            assert lease is not None  # write_update grants one on entering ADMITTED
            reserved = reserve(conn, job.tenant, job.id, amounts)
            return Admission(stored, lease, reserved)

        return run_transaction(self._engine, work)

    def admit_decision(self, job: Job, decision: Admit, *, now: datetime, reason: str = "") -> Admission:
        """Apply one of the scheduler's :class:`~budcore.scheduling.Admit` decisions to ``job``.

        ``job`` is the stored job as read (its version guards the write); it must be the one the
        decision is about, and the usage its request and the decision's flavors give must be the
        decision's ``usage`` (otherwise its request changed since the scheduler decided: a
        ValidationError at ``decision.usage``; run another cycle).
        """
        if (job.tenant, job.id) != (decision.tenant, decision.job_id):
            raise ValidationError(
                f"decision is for job {decision.job_id!r} (tenant {decision.tenant!r}), not "
                f"{job.id!r} (tenant {job.tenant!r})",
                path="decision",
            )
        usage = _per_flavor(job, decision.flavors)
        if usage != {fr: amount for fr, amount in decision.usage.items() if amount}:
            raise ValidationError(
                f"the decision reserves {dict(sorted(decision.usage.items()))} but job {job.id!r} "
                f"requests {dict(sorted(usage.items()))} under its flavors: the job changed since the "
                "scheduler decided; run another cycle",
                path="decision.usage",
            )
        return self.admit(
            job,
            cluster_queue=decision.cluster_queue,
            flavors=decision.flavors,
            now=now,
            reason=reason or f"admitted to {decision.cluster_queue}",
        )

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


def _assignment(job: Job, flavors: FlavorAssignment) -> tuple[dict[str, Mapping[str, str]], bool]:
    """``flavors`` as pod set → resource → flavor, and whether it was given per pod set."""
    if not isinstance(flavors, Mapping):
        raise ValidationError("flavors must be a mapping", path="flavors")
    pod_sets = [p.name for p in job.request.pod_sets]
    if flavors and all(isinstance(v, Mapping) for v in flavors.values()):
        extra_sets = sorted(set(flavors) - set(pod_sets))
        if extra_sets:
            raise ValidationError(
                f"flavors given for pod set {extra_sets[0]!r}, which the job does not have",
                path=f"flavors.{extra_sets[0]}",
            )
        out: dict[str, Mapping[str, str]] = {}
        for name, assigned in flavors.items():
            if not isinstance(assigned, Mapping) or not all(
                isinstance(f, str) and f for f in assigned.values()
            ):
                raise ValidationError("must map each resource to a flavor name", path=f"flavors.{name}")
            out[str(name)] = assigned
        return out, True
    per_resource: dict[str, str] = {}
    for resource, flavor in flavors.items():
        if not isinstance(flavor, str) or not flavor:
            raise ValidationError(
                "flavors must map each resource to a flavor name, or each pod set to such a mapping "
                "(the scheduler's Admit.flavors)",
                path=f"flavors.{resource}",
            )
        per_resource[str(resource)] = flavor
    return {name: per_resource for name in pod_sets}, False


def _per_flavor(job: Job, flavors: FlavorAssignment) -> dict[tuple[str, str], int]:
    """The job's request per (flavor, resource) under ``flavors``; exact coverage is checked."""
    assignment, per_pod_set = _assignment(job, flavors)
    usage: dict[tuple[str, str], int] = {}
    for pod_set in job.request.pod_sets:
        total = pod_set.total
        assigned = assignment.get(pod_set.name, {})
        prefix = f"flavors.{pod_set.name}." if per_pod_set else "flavors."
        where = f" of pod set {pod_set.name!r}" if per_pod_set else ""
        missing = sorted(set(total) - set(assigned))
        if missing:
            raise ValidationError(
                f"no flavor assigned to requested resource {missing[0]!r}{where}",
                path=f"{prefix}{missing[0]}",
            )
        if per_pod_set:
            extra = sorted(set(assigned) - set(total))
            if extra:
                raise ValidationError(
                    f"flavor assigned to resource {extra[0]!r}, which pod set {pod_set.name!r} does "
                    "not request",
                    path=f"{prefix}{extra[0]}",
                )
        for resource, amount in total.items():
            fr = (assigned[resource], resource)
            usage[fr] = usage.get(fr, 0) + amount
    if not per_pod_set:
        extra = sorted(set(flavors) - set(job.request.total))
        if extra:
            raise ValidationError(
                f"flavor assigned to resource {extra[0]!r} the job does not request",
                path=f"flavors.{extra[0]}",
            )
    for (flavor, resource), amount in sorted(usage.items()):
        if amount > MAX_AMOUNT:
            raise ValidationError(
                f"the job requests {amount} milli-units of {resource} in flavor {flavor!r}, more than "
                "any quota row can hold (2**63 - 1)",
                path=f"request.{resource}",
            )
    return usage


def _amounts(
    job: Job, cluster_queue: str, flavors: FlavorAssignment, cohorts: Sequence[str]
) -> dict[QuotaKey, int]:
    if not isinstance(cluster_queue, str) or not cluster_queue:
        raise ValidationError("cluster_queue must be a non-empty string", path="cluster_queue")
    usage = _per_flavor(job, flavors)
    scopes = [cluster_queue, *(cohort_scope(c) for c in cohorts)]
    if len(set(scopes)) != len(scopes):
        raise ValidationError("cohorts must be distinct", path="cohorts")
    return {QuotaKey(scope, f, r): amount for scope in scopes for (f, r), amount in usage.items()}


__all__ = [
    "COHORT_PREFIX",
    "MAX_AMOUNT",
    "Admission",
    "AdmissionLedger",
    "FlavorAssignment",
    "QuotaUsage",
    "cohort_scope",
]
