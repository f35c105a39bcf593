"""Multi-replica-safe admission: the :class:`~budcore.ports.AdmissionLedger` port on PostgreSQL.

Several scheduler replicas share one database. Each decides admissions from its own snapshot,
which may be stale, so the database has the last word: :meth:`PostgresAdmissionLedger.reserve`
(and :meth:`~PostgresAdmissionLedger.admit`) commit a ``queued → admitted`` transition only
together with a reservation on the quota rows it needs, and only into the ClusterQueue the job's
LocalQueue leads to.

**Choice: row locks, not SERIALIZABLE.** Admission touches a small, known set of rows — the quota
tree of each (flavor, resource) the job uses. The ledger locks exactly those rows with
``SELECT … FOR UPDATE`` (in bytewise key order, after the job row; see the lock order in
:mod:`.records` and :mod:`.quota`), decides on the locked usage with the scheduler's own quota
arithmetic (:mod:`budcore.scheduling.quota`) and updates ``used``. Under READ COMMITTED a second
replica admitting against the same rows waits for the first to commit and then sees the new
``used``, so usage can never be double-spent. Compared with SERIALIZABLE this (a) only serialises
admissions that share a quota tree, (b) has no false-positive aborts from predicate locks on the
large jobs table, and (c) fails with a meaningful :class:`~.errors.QuotaUnavailableError` instead
of a retry storm when the quota is really gone. Deadlock and serialization failures are still
retried by :func:`~.engine.run_transaction`.

**Cohorts and borrowing.** A quota row is keyed by a *scope*: a ClusterQueue name, or
``cohort:<name>`` (a ``:`` cannot occur in a Kubernetes name, so the two never collide).
:meth:`PostgresAdmissionLedger.sync` (or :meth:`~PostgresAdmissionLedger.sync_cluster_queues`)
writes the whole Kueue tree — one row per (ClusterQueue or cohort, flavor, resource) with its
parent, ``nominalQuota``, ``borrowingLimit`` and ``lendingLimit`` — in one transaction, and
admission builds the core quota tree from those rows: a ClusterQueue borrows exactly what Kueue
would let it borrow, and no more, whichever replica admits. Rows set by hand with :meth:`set_quota`
are roots; ``admit(cohorts=...)`` also reserves on those cohort scopes' rows directly (the older,
flat way of capping a cohort: the ClusterQueue's row ``nominal + borrowingLimit``, the cohort's
row its total).

**Quota isolation.** The sync also stores the LocalQueue → ClusterQueue mapping
(``budcore_local_queues``). Once any LocalQueue is stored (or always, with
``require_local_queue=True``), the admitting transaction refuses to charge a job to a ClusterQueue
its LocalQueue (namespace = tenant, ``job.local_queue``) does not lead to:
:class:`~.errors.LocalQueueMismatchError`, nothing written. The mapping is read after the quota
rows are locked, and a sync locks every quota row before it changes the mapping, so an admission
always checks against the mapping of the configuration whose quota it takes.

**Flavors.** ``admit(flavors=...)`` takes the scheduler's assignment as it is,
:attr:`budcore.scheduling.Admit.flavors` (pod set → resource → flavor: a driver may be on one
flavor and the workers on another), or one flavor per resource for a job whose pod sets all use
the same; :meth:`PostgresAdmissionLedger.reserve` takes an ``Admit`` directly.

**Leases** (the optional :class:`~budcore.ports.AdmissionLeases` port). A job entering
``admitted`` gets a lease (30 s by default) held by the admitting replica, which renews it within
25 s until the job starts (``admitted → running`` removes the lease). If the replica dies, the
lease expires and :meth:`PostgresAdmissionLedger.reconcile` — run by any replica, periodically and
at start-up — requeues the job (``admitted → queued``, Kueue's eviction of a workload whose pods
never started), giving its quota back in the same transaction. Reconcilers lock the job row with
``SKIP LOCKED`` and re-check the lease under the lock, so two replicas reconciling at once neither
block each other nor requeue a job twice, and a renewal that commits first wins over a
reconciliation.

**Metering.** The admitting transaction also opens the job's metered usage rows
(``budcore_usage``: amount, borrowed part, lenders) and every transaction that gives the quota back
closes them (see :mod:`.usage`): what is billed is exactly what the ledger granted.

Crash safety comes from transactions: every state change (job row, lease, reservations, usage,
metered usage, outbox) is one transaction, so a replica killed between any two statements leaves
either all of it or none of it; PostgreSQL aborts the open transaction as soon as the connection
drops, which releases its row locks. A replica that is cut off by the network rather than killed
keeps its transaction open until TCP keepalive notices; set ``idle_in_transaction_session_timeout``
(for example ``60s``) on the budcore role so such a transaction cannot hold quota rows for long.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from budcore.domain.errors import ConflictError, NotFoundError, ValidationError
from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import Job, JobStatus
from budcore.domain.lifecycle import transition
from budcore.domain.timeutil import ensure_utc
from budcore.ports.admission_ledger import (
    COHORT_PREFIX,
    AdmissionLeases,
    FlavorAssignment,
    FlavorResource,
    QuotaBalance,
    QuotaKey,
    Reservation,
    check_cluster_queue_name,
    check_local_queue,
    check_release,
    cohort_scope,
    decision_request,
    request_by_flavor,
)
from budcore.ports.admission_ledger import AdmissionLedger as LedgerPort
from budcore.scheduling.queues import ClusterQueue, Cohort, LocalQueue, QueueConfig
from budcore.scheduling.snapshot import Admit

from .engine import run_transaction
from .errors import LeaseLostError
from .job_store import PostgresJobStore
from .quota import (
    MAX_AMOUNT,
    ROW_COLUMNS,
    QuotaForest,
    QuotaRow,
    check_acyclic,
    check_local_queues,
    desired_rows,
    key_order,
    local_queue_target,
    lock_quota,
    read_forest,
    reserve,
    row_from_db,
    sync_rows,
)
from .records import (
    Lease,
    job_from_doc,
    lease_from_row,
    lock_job,
    write_update,
)
from .schema import leases, quota_reservations, quota_usage
from .usage import meter_admission, open_usage, usage_before

LEASE_EXPIRED_REASON = "admission lease expired: admitted but not started in time"


@dataclass(frozen=True, slots=True)
class Admission(Reservation):
    """A successful admission: the stored job, what it reserved and its lease.

    ``amounts`` (also :attr:`reserved`) holds the job's direct reservations; the cohort rows above
    them account for it through the tree (see :mod:`.quota`).
    """

    lease: Lease

    @property
    def reserved(self) -> Mapping[QuotaKey, int]:
        return self.amounts


class PostgresAdmissionLedger:
    """The admission ledger port on the database of ``store`` (sharing its engine and policy).

    Implements :class:`~budcore.ports.AdmissionLedger` and :class:`~budcore.ports.AdmissionLeases`.
    ``require_local_queue=True`` checks every admission against the LocalQueue mapping even before
    any LocalQueue is stored (then nothing is admitted until one is); by default the check starts
    with the first stored LocalQueue, so quota rows set by hand keep working without one.
    """

    def __init__(self, store: PostgresJobStore, *, require_local_queue: bool = False) -> None:
        if not isinstance(require_local_queue, bool):
            raise ValidationError("require_local_queue must be True or False", path="require_local_queue")
        self._store = store
        self._engine = store.engine
        self._policy = store.lease_policy
        self._require_local_queue = require_local_queue

    @property
    def store(self) -> PostgresJobStore:
        return self._store

    # Quota configuration -----------------------------------------------------------------
    def set_quota(
        self,
        cluster_queue: str,
        flavor: str,
        resource: str,
        quota: int,
        *,
        expected_version: int | None = None,
    ) -> QuotaRow:
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
        # A stand-alone row is a root without members: its subtree quota is its nominal quota.
        changes = {"quota": quota, "nominal": quota, "version": q.version + 1, "updated_at": sa.func.now()}

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
                cluster_queue=cluster_queue, flavor=flavor, resource=resource, quota=quota, nominal=quota
            )
            upsert = insert.on_conflict_do_update(
                index_elements=[q.cluster_queue, q.flavor, q.resource], set_=changes
            ).returning(*ROW_COLUMNS)

            def work(conn: Connection) -> QuotaRow:
                refuse_tree_rows(conn)
                return row_from_db(conn.execute(upsert).one())

            return run_transaction(self._engine, work)

        update = (
            sa.update(quota_usage)
            .where(*where, q.version == expected_version)
            .values(**changes)
            .returning(*ROW_COLUMNS)
        )

        def optimistic(conn: Connection) -> QuotaRow:
            current = refuse_tree_rows(conn)
            if current is None:
                raise NotFoundError("quota", str(key), "budcore_quota_usage")
            row = conn.execute(update).first()
            if row is None:
                raise ConflictError("quota", str(key), expected_version, int(current.version))
            return row_from_db(row)

        return run_transaction(self._engine, optimistic)

    def sync_cluster_queues(
        self,
        cluster_queues: Iterable[ClusterQueue],
        cohorts: Iterable[Cohort] = (),
        *,
        prune: bool = True,
        local_queues: Iterable[LocalQueue] | None = None,
    ) -> list[QuotaRow]:
        """Make the quota rows match a Kueue configuration, in one transaction; returns every row.

        One row per (ClusterQueue or cohort, flavor, resource): a ClusterQueue's ``nominalQuota``,
        ``borrowingLimit`` and ``lendingLimit`` and its cohort as parent; a cohort's quota is its
        own (``cohorts``: Cohort objects with quotas or parents; a cohort only named by a
        ClusterQueue needs none) plus what its members lend — computed by the scheduler's own
        :class:`~budcore.scheduling.quota.QuotaTree`. Usage is then re-derived from the
        reservations, so changing a lending limit or moving a queue to another cohort keeps every
        row's usage right. ``local_queues`` (``None``: leave the stored mapping as it is) become the
        LocalQueue → ClusterQueue mapping admissions are checked against.

        Everything is validated before anything is written: an amount that does not fit the
        ledger's ``BIGINT`` milli-units raises :class:`~.errors.QuotaRangeError` naming the queue,
        flavor and resource. With ``prune`` (the default) the configuration is the whole truth:
        rows of removed ClusterQueues, cohorts, flavors or resources — including rows made with
        :meth:`set_quota` — and LocalQueues it does not list are deleted, unless a row is still in
        use, which raises :class:`~.errors.QuotaInUseError` and changes nothing.
        """
        queues = list(cluster_queues)
        desired = desired_rows(queues, cohorts)
        lqs = None if local_queues is None else check_local_queues(local_queues, [c.name for c in queues])
        return run_transaction(
            self._engine, partial(sync_rows, desired=desired, prune=prune, local_queues=lqs)
        )

    def sync(self, config: QueueConfig, *, prune: bool = True) -> list[QuotaBalance]:
        """The port's sync: ClusterQueues, Cohorts and LocalQueues of ``config`` in one transaction."""
        queues = list(config.cluster_queues.values())
        desired = desired_rows(queues, config.cohorts.values())
        lqs = check_local_queues(config.local_queues.values(), [c.name for c in queues])

        def work(conn: Connection) -> list[QuotaBalance]:
            rows = {r.key: r for r in sync_rows(conn, desired, prune=prune, local_queues=lqs)}
            return QuotaForest(rows).balances(rows)

        return run_transaction(self._engine, work)

    # Reads ---------------------------------------------------------------------------------
    def usage(self, cluster_queue: str | None = None) -> list[QuotaRow]:
        """Quota rows (of one scope, or all), ordered by key (bytewise, as ``sorted`` orders keys)."""
        stmt = sa.select(*ROW_COLUMNS).order_by(*key_order())
        if cluster_queue is not None:
            stmt = stmt.where(quota_usage.c.cluster_queue == cluster_queue)

        def work(conn: Connection) -> list[QuotaRow]:
            return [row_from_db(row) for row in conn.execute(stmt)]

        return run_transaction(self._engine, work)

    def balances(self, cluster_queue: str | None = None) -> list[QuotaBalance]:
        """Every row's balance (of one scope, or all), with Kueue's ``available`` from the core."""

        def work(conn: Connection) -> list[QuotaBalance]:
            if cluster_queue is None:
                rows = {r.key: r for r in map(row_from_db, conn.execute(sa.select(*ROW_COLUMNS)))}
                check_acyclic(rows)
                return QuotaForest(rows).balances(rows)
            keys = [
                QuotaKey(cluster_queue, x.flavor, x.resource)
                for x in conn.execute(
                    sa.select(quota_usage.c.flavor, quota_usage.c.resource).where(
                        quota_usage.c.cluster_queue == cluster_queue
                    )
                )
            ]
            rows, forest = read_forest(conn, keys, lock=False)
            return forest.balances(k for k in rows if k.cluster_queue == cluster_queue)

        return run_transaction(self._engine, work)

    def available(self, cluster_queue: str, flavor: str, resource: str) -> int:
        """What one admission into ``cluster_queue`` could take of (flavor, resource) right now.

        Kueue's ``available``, from the core: the queue's unused guaranteed part plus what its
        cohort tree can still lend it within its borrowing limit (milli-units; ``NotFoundError``
        without a row).
        """
        key = QuotaKey(cluster_queue, flavor, resource)

        def work(conn: Connection) -> int:
            rows, forest = read_forest(conn, [key], lock=False)
            if key not in rows:
                raise NotFoundError("quota", str(key), "budcore_quota_usage")
            return forest.available(key)

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
        lease granted to this replica, the LocalQueue mapping checked, reservation taken, one open
        usage row per (flavor, resource) charged to ``cluster_queue`` (with its borrowed part and
        lenders, :mod:`.usage`), event written to the outbox. Raises
        :class:`~.errors.LocalQueueMismatchError` or :class:`~.errors.QuotaUnavailableError`
        (nothing written) when the job may not or cannot be charged there.
        """
        now = ensure_utc(now, "now")
        check_cluster_queue_name(cluster_queue)
        amounts = _amounts(cluster_queue, _in_range(request_by_flavor(job, flavors)), cohorts)
        return self._admit(job, cluster_queue, amounts, now, reason)

    def reserve(self, job: Job, decision: Admit, *, now: datetime, reason: str = "") -> Admission:
        """Apply one of the scheduler's :class:`~budcore.scheduling.Admit` decisions to ``job``.

        ``job`` is the stored job as read (its version guards the write); it must be the one the
        decision is about, in the decision's LocalQueue, and the usage its request and the
        decision's flavors give must be the decision's ``usage`` (otherwise its request changed
        since the scheduler decided: a ValidationError at ``decision.usage``; run another cycle).
        """
        now = ensure_utc(now, "now")
        usage = _in_range(decision_request(job, decision))
        cluster_queue = check_cluster_queue_name(decision.cluster_queue)
        amounts = _amounts(cluster_queue, usage, ())
        return self._admit(job, cluster_queue, amounts, now, reason or f"admitted to {cluster_queue}")

    def admit_decision(self, job: Job, decision: Admit, *, now: datetime, reason: str = "") -> Admission:
        """:meth:`reserve` under its earlier name."""
        return self.reserve(job, decision, now=now, reason=reason)

    def _admit(
        self, job: Job, cluster_queue: str, amounts: Mapping[QuotaKey, int], now: datetime, reason: str
    ) -> Admission:
        admitted, event = transition(job, JobStatus.ADMITTED, now=now, reason=reason)

        def work(conn: Connection) -> Admission:
            stored, lease, _ = write_update(conn, admitted, [event], self._policy, require_ledger=False)
            assert lease is not None  # write_update grants one on entering ADMITTED
            locked = lock_quota(conn, amounts)
            mapped, configured = local_queue_target(conn, job.tenant, job.local_queue)
            check_local_queue(job, cluster_queue, mapped, enforced=self._require_local_queue or configured)
            charged = {k.flavor_resource: a for k, a in amounts.items() if k.cluster_queue == cluster_queue}
            before = usage_before(locked[1], charged)
            reserved = reserve(conn, job.tenant, job.id, amounts, locked)
            # Metered in the same transaction: the usage rows exist exactly when the quota is held.
            open_usage(
                conn, stored, cluster_queue, meter_admission(locked[1], before, cluster_queue, charged), now
            )
            return Admission(job=stored, amounts=reserved, lease=lease)

        return run_transaction(self._engine, work)

    def release(
        self, job: Job, *, now: datetime, status: JobStatus = JobStatus.QUEUED, reason: str = ""
    ) -> Reservation:
        """Move ``job`` (as read; admitted or running) to ``status`` and give its quota back.

        The same transaction as a plain store update out of a quota-holding state (which releases
        too): job row, lease removal, reservations, usage up the tree, the job's open metered usage
        rows closed at ``now``, outbox event.
        """
        now = ensure_utc(now, "now")
        check_release(job, status)
        new, event = transition(job, status, now=now, reason=reason)

        def work(conn: Connection) -> Reservation:
            written = write_update(conn, new, [event], self._policy)
            return Reservation(job=written.job, amounts=written.released)

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
        return write_update(conn, requeued, [event], self._policy, current=row).job


def _in_range(usage: dict[FlavorResource, int]) -> dict[FlavorResource, int]:
    for (flavor, resource), amount in sorted(usage.items()):
        if amount > MAX_AMOUNT:
            raise ValidationError(
                f"the job requests {amount} milli-units of {resource} in flavor {flavor!r}, more than "
                "any quota row can hold (2**63 - 1)",
                path=f"request.{resource}",
            )
    return usage


def _amounts(
    cluster_queue: str, usage: Mapping[FlavorResource, int], cohorts: Sequence[str]
) -> dict[QuotaKey, int]:
    scopes = [cluster_queue, *(cohort_scope(c) for c in cohorts)]
    if len(set(scopes)) != len(scopes):
        raise ValidationError("cohorts must be distinct", path="cohorts")
    return {QuotaKey(scope, f, r): amount for scope in scopes for (f, r), amount in usage.items()}


# The name this class had before the port existed; ``AdmissionLedger`` is now the port's Protocol.
AdmissionLedger = PostgresAdmissionLedger

if TYPE_CHECKING:  # mypy checks that the class implements both ports

    def _implements(ledger: PostgresAdmissionLedger) -> tuple[LedgerPort, AdmissionLeases]:
        return ledger, ledger


__all__ = [
    "COHORT_PREFIX",
    "MAX_AMOUNT",
    "Admission",
    "AdmissionLedger",
    "FlavorAssignment",
    "PostgresAdmissionLedger",
    "QuotaRow",
    "cohort_scope",
]


def open_ledger(
    url: str | None = None, *, store: PostgresJobStore | None = None, require_local_queue: bool = False
) -> PostgresAdmissionLedger:
    """The plugin factory: a ledger on ``store``, or on a new store for ``url`` (or the environment)."""
    if store is None:
        store = PostgresJobStore(url)
    return PostgresAdmissionLedger(store, require_local_queue=require_local_queue)
