"""The application service: the one place that turns intents into stored, evented state changes.

Services embedding budcore call this instead of juggling the store, the lifecycle and the event
sink themselves: every change goes through :func:`budcore.domain.lifecycle.transition`, is written
with optimistic concurrency, and carries its event into the same store write (so a database
store's outbox records it atomically).

**One call, one write.** Every method writes at most once, so from the caller's view a call either
succeeded (the job is stored, its event recorded with it) or failed and stored nothing. ``submit``
in particular creates the job already queued, with its ``pending → queued`` event, in a single
``create``; it never leaves a pending job behind that a retry would then trip over.

**Events.** Per the :class:`~budcore.ports.JobStore` contract, events are *recorded* with the write
and *delivered* afterwards (a database store's outbox dispatcher; the in-memory store forwards
them to its sink after the write). Delivery failures are the delivery side's to retry and report;
they never make a successful write look failed, so the service never sees them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import Job, JobStatus
from budcore.domain.lifecycle import DEFAULT_BACKOFF, BackoffPolicy, transition
from budcore.domain.timeutil import ensure_utc
from budcore.ports.clock import Clock
from budcore.ports.job_store import ALL, JobFilter, JobStore
from budcore.scheduling.limits import DEFAULT_RUNAWAY_FACTOR, LimitVerdict

if TYPE_CHECKING:
    from budcore.cost.guard import GuardVerdict
    from budcore.cost.submission import SubmissionGuard
    from budcore.scheduling.scheduler import Scheduler


class JobService:
    """Jobs' intents turned into stored, evented changes; with a ``guard``, submissions are gated.

    ``guard`` (:class:`~budcore.cost.submission.SubmissionGuard`): every queued submission is checked
    against the quota threshold and the tenant's budgets, deciding on the spend its ledger reads
    under its lock, in the same write as the job: a refusal raises the guard's typed error and
    stores nothing; a warning is stored with the job as a ``BudgetAlerted`` event. The verdicts
    that warned are kept in :attr:`guard_warnings` (job id → verdict), as the scheduler keeps
    ``deadline_warnings``.
    """

    def __init__(
        self,
        store: JobStore,
        clock: Clock,
        backoff: BackoffPolicy = DEFAULT_BACKOFF,
        *,
        guard: SubmissionGuard | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.backoff = backoff
        self.guard = guard
        self.guard_warnings: dict[str, GuardVerdict] = {}

    def submit(self, job: Job, *, queue: bool = True) -> Job:
        """Store a new job (idempotent by key), queued unless ``queue`` is false, in one write.

        With ``queue`` the job is created directly in ``queued`` together with its ``pending →
        queued`` event (version 1), so the call is atomic: on any error nothing is stored and the
        submission can be retried as is. A replayed submission (same tenant and idempotency key)
        returns the stored job untouched and records no event. With a ``guard`` (see the class),
        a queued submission is stored only if the guard admits it (a job created unqueued is not
        guarded: it spends nothing until it is queued).
        """
        now = ensure_utc(self.clock.now(), "clock.now()")
        fresh = job.model_copy(
            update={"created_at": now, "updated_at": now, "status": JobStatus.PENDING, "version": 0}
        )
        if not queue:
            return self.store.create(fresh)
        queued, event = transition(fresh, JobStatus.QUEUED, now=now, reason="submitted", backoff=self.backoff)
        if self.guard is None:
            return self.store.create(queued, events=[event])
        stored, verdict = self.guard.create(queued, events=[event], now=now)
        if verdict is not None and verdict.breaches:
            self.guard_warnings[stored.id] = verdict
        return stored

    def move(
        self, job: Job, to_status: JobStatus, *, reason: str = "", now: datetime | None = None, **changes: Any
    ) -> Job:
        """Apply one lifecycle transition to ``job`` (as read, with its version) and store it.

        ``changes`` are validated field updates (see :func:`~budcore.domain.lifecycle.transition`);
        a bad one raises :class:`~budcore.domain.errors.ValidationError` before anything is written.
        """
        new_job, event = transition(
            job, to_status, now=now or self.clock.now(), reason=reason, backoff=self.backoff, **changes
        )
        return self.store.update(new_job, events=[event])

    def move_by_id(self, tenant: TenantId, job_id: JobId, to_status: JobStatus, *, reason: str = "") -> Job:
        return self.move(self.store.get(tenant, job_id), to_status, reason=reason)

    def cancel(self, tenant: TenantId, job_id: JobId, reason: str = "cancelled by user") -> Job:
        return self.move_by_id(tenant, job_id, JobStatus.CANCELLED, reason=reason)

    def jobs(self, tenant: TenantId | None, flt: JobFilter = ALL) -> list[Job]:
        return self.store.list(tenant, flt)

    def enforce_limits(
        self,
        scheduler: Scheduler,
        now: datetime | None = None,
        *,
        runaway_factor: float = DEFAULT_RUNAWAY_FACTOR,
        on_runaway: Callable[[LimitVerdict], None] | None = None,
    ) -> list[Job]:
        """Fail the admitted jobs that reached their ``max_duration`` and return their quota.

        For each timeout of :meth:`Scheduler.overdue <budcore.scheduling.scheduler.Scheduler.overdue>`
        the stored job moves to ``failed`` (reason ``timeout: ...``, one write with its event) and
        ``scheduler.release`` returns its quota; the failed jobs are returned in job-id order. A job
        the store no longer shows holding quota (it ended meanwhile) is left to whoever ended it.
        Runaway alerts change nothing: each is passed to ``on_runaway`` (there is no event type
        for it). Whether a timed-out job is retried is the caller's decision, as for any failure; its
        ``accumulated_runtime`` is cleared, as Kueue clears it when it deactivates the workload, so a
        retry runs with its whole ``max_duration`` again.
        """
        now = ensure_utc(now or self.clock.now(), "now")
        failed: list[Job] = []
        for verdict in scheduler.overdue(now, runaway_factor):
            if not verdict.stops:
                if on_runaway is not None:
                    on_runaway(verdict)
                continue
            job = self.store.get(verdict.tenant, verdict.job_id)
            if not job.status.holds_quota:
                continue
            # Kueue deactivates such a workload and clears accumulatedPastExexcutionTimeSeconds
            # (workload controller, maximum execution time): a later retry starts a fresh budget.
            failed.append(
                self.move(
                    job,
                    JobStatus.FAILED,
                    reason=f"timeout: {verdict.message}",
                    now=now,
                    accumulated_runtime=timedelta(0),
                )
            )
            scheduler.release(verdict.job_id, now)
        return failed
