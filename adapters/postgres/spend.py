"""Money on PostgreSQL: the :class:`~budcore.ports.spend.SpendLedger` port over ``budcore_usage``.

:meth:`PostgresSpendLedger.usage` reads the usage the admission ledger metered (see
:mod:`.usage`) as :class:`~budcore.cost.metering.UsageRecord` s, for ``budcore cost report`` and
budget reviews.

**No budget overrun under concurrency.** :meth:`PostgresSpendLedger.guarded_create` stores a job
only if the core's decision on the tenant's book allows it, in one transaction that

1. takes a transaction-scoped advisory lock on the tenant,
   ``pg_advisory_xact_lock(hashtextextended('budcore:budget:' || tenant, 0))``;
2. returns the stored job of a replayed submission (same tenant and idempotency key) without
   deciding again — a retried request must get its original answer, not a refusal because its
   own first attempt now counts against the budget;
3. reads the tenant's metered usage over ``[since, until)`` and its live jobs (pending, queued,
   admitted, running: their projected cost is committed spend) into a
   :class:`~budcore.ports.spend.TenantBook` and calls ``decide(book)``, which raises to refuse
   (the transaction rolls back: nothing is stored) or returns events to record with the job (a
   warning, say);
4. inserts the job and its events (then ``decide``'s) exactly as :meth:`PostgresJobStore.create
   <.job_store.PostgresJobStore.create>` does (:func:`~.records.insert_job`).

Several service replicas submitting against one tenant's budget at once are serialised by the
lock, and each reads the book *after* it is granted: under READ COMMITTED every statement takes a
new snapshot, so the second replica sees the job the first one committed and decides on it. An
advisory lock rather than a row lock because the rows that must not be missed are the jobs not
yet inserted. Tenants whose keys hash alike only share a lock (waiting, never a wrong decision);
the ``budcore:budget:`` prefix keeps the key apart from budcore's other advisory locks and a
service's own. The lock is only taken here: admissions, completions and releases never wait for
it (they only turn committed spend into metered spend, or end it).

A deadlock or serialization failure retries the whole transaction
(:func:`~.engine.run_transaction`), so ``decide`` may be called more than once for one create:
it must be a pure function of the book (the core's guard is).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from budcore.cost.metering import UsageRecord
from budcore.domain.errors import AlreadyExistsError, ValidationError
from budcore.domain.events import DomainEvent
from budcore.domain.job import Job, JobStatus
from budcore.domain.timeutil import ensure_utc
from budcore.ports.spend import SpendLedger, TenantBook

from .engine import PoolSettings, run_transaction
from .job_store import OnJobStoreEngine, PostgresJobStore
from .records import DOC_TEXT, LeasePolicy, insert_job, job_from_json, job_row, stored_by_key
from .schema import jobs
from .usage import read_usage

#: The statuses of a tenant's jobs that may still spend: their projected cost is committed.
LIVE_STATUSES = (JobStatus.PENDING, JobStatus.QUEUED, JobStatus.ADMITTED, JobStatus.RUNNING)

#: What the tenant's advisory-lock key is hashed from (followed by the tenant).
BUDGET_LOCK_PREFIX = "budcore:budget:"


def _window(start: datetime, end: datetime, names: tuple[str, str]) -> tuple[datetime, datetime]:
    lo, hi = ensure_utc(start, names[0]), ensure_utc(end, names[1])
    if hi < lo:
        raise ValidationError(
            f"{names[1]} ({hi.isoformat()}) is before {names[0]} ({lo.isoformat()})", path=names[1]
        )
    return lo, hi


def _tenant(tenant: object) -> str:
    if not isinstance(tenant, str) or not tenant:
        raise ValidationError(f"tenant must be a non-empty string, got {tenant!r}", path="tenant")
    if "\x00" in tenant:
        raise ValidationError("NUL character (\\x00) in tenant: PostgreSQL cannot store it", path="tenant")
    return tenant


def lock_tenant_budget(conn: Connection, tenant: str) -> None:
    """Wait for, and hold until the transaction ends, the tenant's budget lock."""
    key = sa.func.hashtextextended(sa.literal(BUDGET_LOCK_PREFIX + tenant, sa.Text), 0)
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


def live_jobs(conn: Connection, tenant: str) -> list[Job]:
    """The tenant's jobs that may still spend, in submission order."""
    stmt = (
        sa.select(DOC_TEXT)
        .where(jobs.c.tenant == tenant, jobs.c.status.in_([s.value for s in LIVE_STATUSES]))
        .order_by(jobs.c.created_at, jobs.c.id)
    )
    return [job_from_json(row.doc) for row in conn.execute(stmt)]


class PostgresSpendLedger(OnJobStoreEngine):
    """The spend ledger port on the budcore database (``url``, a shared ``engine``, or ``store``).

    Built on a job ``store``, it shares the store's pool, lease policy and ``require_ledger``
    setting, so a guarded create stores a job exactly as the store's ``create`` would; otherwise
    ``lease`` and ``require_ledger`` are those settings (the store's defaults when omitted).
    """

    def __init__(
        self,
        url: str | URL | None = None,
        *,
        store: PostgresJobStore | None = None,
        engine: Engine | None = None,
        pool: PoolSettings | None = None,
        lease: LeasePolicy | None = None,
        require_ledger: bool | None = None,
        check_schema: bool = True,
    ) -> None:
        super().__init__(url, store=store, engine=engine, pool=pool, check_schema=check_schema)
        if require_ledger not in (None, True, False):
            raise ValidationError("require_ledger must be None, True or False", path="require_ledger")
        if store is not None:
            if lease is not None or require_ledger is not None:
                raise ValidationError(
                    "a ledger on a store uses the store's lease policy and require_ledger; pass "
                    "them to the store",
                    path="store",
                )
            self._lease, self._require_ledger = store.lease_policy, store.require_ledger
        else:
            self._lease, self._require_ledger = lease or LeasePolicy(), require_ledger

    def usage(self, start: datetime, end: datetime, *, tenant: str | None = None) -> list[UsageRecord]:
        """Metered accelerator usage overlapping ``[start, end)`` (of one tenant, or all), clipped
        to it, usage still running ending at ``end``; in (start, job id) order.

        Each stored row is one nominal record and one borrowed record per lender; how milli-units
        become whole devices is documented in :func:`.usage.records_of`.
        """
        lo, hi = _window(start, end, ("start", "end"))
        who = None if tenant is None else _tenant(tenant)
        return run_transaction(self._engine, lambda conn: read_usage(conn, lo, hi, who))

    def guarded_create(
        self,
        job: Job,
        *,
        events: Sequence[DomainEvent] = (),
        since: datetime,
        until: datetime,
        decide: Callable[[TenantBook], Sequence[DomainEvent] | None],
    ) -> Job:
        """Store ``job`` if ``decide`` accepts the tenant's book (see the module docstring).

        Idempotent by ``(tenant, idempotency_key)`` like ``create``: a replay returns the stored
        job and ``decide`` is not called. A job id already stored is
        :class:`~budcore.domain.errors.AlreadyExistsError` before deciding. ``decide`` raising
        refuses: the exception propagates and nothing is stored; the events it returns (a
        warning, say) are written after ``events``, in the same transaction as the job.
        """
        lo, hi = _window(since, until, ("since", "until"))
        stored = job.model_copy(update={"version": 1})
        row = job_row(stored)  # refuses NUL characters before anything is sent

        def work(conn: Connection) -> Job:
            lock_tenant_budget(conn, job.tenant)
            if job.idempotency_key is not None:
                replayed = stored_by_key(conn, job.tenant, job.idempotency_key)
                if replayed is not None:
                    return replayed
            if conn.execute(
                sa.select(sa.exists().where(jobs.c.tenant == job.tenant, jobs.c.id == job.id))
            ).scalar():
                raise AlreadyExistsError("job", job.id)
            book = TenantBook(
                tenant=job.tenant,
                since=lo,
                until=hi,
                usage=tuple(read_usage(conn, lo, hi, job.tenant)),
                live=tuple(live_jobs(conn, job.tenant)),
            )
            extra = decide(book) or ()
            return insert_job(conn, stored, row, [*events, *extra], self._lease, self._require_ledger)

        return run_transaction(self._engine, work)


def open_spend_ledger(
    url: str | URL | None = None, *, store: PostgresJobStore | None = None
) -> PostgresSpendLedger:
    """The plugin factory: a spend ledger on ``store``'s engine, or on ``url`` (or the environment)."""
    return PostgresSpendLedger(url, store=store)


if TYPE_CHECKING:  # mypy checks that the class implements the port

    def _implements(ledger: PostgresSpendLedger) -> SpendLedger:
        return ledger


__all__ = [
    "BUDGET_LOCK_PREFIX",
    "LIVE_STATUSES",
    "PostgresSpendLedger",
    "lock_tenant_budget",
    "open_spend_ledger",
]
