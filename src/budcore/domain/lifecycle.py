"""The job state machine, as a table.

::

    pending → queued → admitted → running → completed | failed | cancelled | preempted
    preempted → queued          (requeue after preemption)
    failed    → queued          (retry while retry budget remains, with exponential backoff)

plus the edges a real scheduler needs: cancellation from any live state, ``admitted → queued``
(Kueue evicts an admitted workload whose pods never start, e.g. on lease timeout), ``admitted →
preempted`` and rejection (``pending|queued → failed``). Terminal states are absorbing except the
two requeue edges. Any other change raises :class:`InvalidTransitionError` naming both states.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from budcore.domain.errors import InvalidTransitionError, ValidationError
from budcore.domain.events import JobTransitioned
from budcore.domain.job import Job, JobStatus
from budcore.domain.timeutil import ensure_utc
from budcore.domain.validation import validate_model

S = JobStatus

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    S.PENDING: frozenset({S.QUEUED, S.CANCELLED, S.FAILED}),
    S.QUEUED: frozenset({S.ADMITTED, S.CANCELLED, S.FAILED}),
    S.ADMITTED: frozenset({S.RUNNING, S.QUEUED, S.PREEMPTED, S.CANCELLED, S.FAILED}),
    S.RUNNING: frozenset({S.COMPLETED, S.FAILED, S.CANCELLED, S.PREEMPTED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
    S.PREEMPTED: frozenset({S.QUEUED}),
    S.FAILED: frozenset({S.QUEUED}),
}


def can_transition(from_status: JobStatus, to_status: JobStatus) -> bool:
    return to_status in TRANSITIONS[from_status]


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Exponential retry backoff: ``min(cap, base × 2**(attempt − 1))`` for attempt 1, 2, …

    The seeds' batch platform retries 3 times with exponential backoff; base and cap are the knobs.
    """

    base: timedelta = timedelta(seconds=10)
    cap: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        if self.base < timedelta(0):
            raise ValidationError("backoff base must not be negative", path="backoff.base")
        if self.cap < self.base:
            raise ValidationError("backoff cap must be at least the base", path="backoff.cap")

    def delay(self, attempt: int) -> timedelta:
        if attempt < 1:
            raise ValidationError(f"attempt must be >= 1, got {attempt}", path="attempt")
        # Compare in seconds before building a timedelta so a huge attempt cannot overflow it.
        raw = self.base.total_seconds() * (2.0 ** min(attempt - 1, 1000))
        cap = self.cap.total_seconds()
        return self.cap if raw >= cap else timedelta(seconds=raw)


DEFAULT_BACKOFF = BackoffPolicy()

# Fields a transition's ``changes`` may not touch: the status is ``to_status``, the version belongs
# to the store, and the identity (tenant, id, creation time, idempotency key) never changes.
RESERVED_FIELDS: dict[str, str] = {
    "status": "the status is the transition's target (to_status)",
    "version": "the version is owned by the job store",
    "id": "a job's id never changes",
    "tenant": "a job's tenant never changes",
    "created_at": "a job's creation time never changes",
    "idempotency_key": "a job's idempotency key never changes",
}


def _check_changes(job: Job, changes: dict[str, Any]) -> None:
    """Reject keywords that are not job fields, or that a transition must not change."""
    fields = type(job).model_fields
    unknown = sorted(k for k in changes if k not in fields)
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise ValidationError(f"unknown job field(s) {names} in transition changes", path=unknown[0])
    for name in changes:
        if name in RESERVED_FIELDS:
            raise ValidationError(f"cannot be changed by a transition: {RESERVED_FIELDS[name]}", path=name)


def transition(
    job: Job,
    to_status: JobStatus,
    *,
    now: datetime,
    reason: str = "",
    backoff: BackoffPolicy = DEFAULT_BACKOFF,
    count_retry: bool = True,
    **changes: Any,
) -> tuple[Job, JobTransitioned]:
    """Apply one state change, returning the new job and its event.

    The new job keeps ``version`` (the store bumps it on write); the event carries the version the
    write will produce. ``changes`` are extra field updates made atomically with the transition;
    they are validated like a constructed ``Job`` (a negative count, a naive datetime or a keyword
    that is no job field raises :class:`ValidationError` naming the field, and nothing is changed).
    ``status``, ``version`` and the identity fields (see :data:`RESERVED_FIELDS`) are refused.

    - ``failed → queued`` is a retry: it needs ``retry_count < max_retries``, increments the count
      and sets ``next_retry_at = now + backoff.delay(retry_count)``.
    - leaving a quota-holding state (admitted, running) for one that holds none adds the run's
      admitted time, ``now − admitted_at``, to ``accumulated_runtime`` (see
      :mod:`budcore.scheduling.limits`).
    - ``preempted → queued`` is a requeue: retry accounting is unchanged unless ``count_retry``
      is false for a failed job (never needed) — preemption is not the job's fault.
    """
    now = ensure_utc(now, "now")
    from_status = job.status
    if to_status not in TRANSITIONS[from_status]:
        detail = "terminal state" if not TRANSITIONS[from_status] else ""
        raise InvalidTransitionError(job.id, from_status.value, to_status.value, detail)

    update: dict[str, Any] = {"status": to_status, "updated_at": now, "status_message": reason or None}
    if from_status is S.FAILED and to_status is S.QUEUED and count_retry:
        if job.retry_count >= job.max_retries:
            raise InvalidTransitionError(
                job.id,
                from_status.value,
                to_status.value,
                f"retry budget exhausted ({job.retry_count} of {job.max_retries} retries used)",
            )
        attempt = job.retry_count + 1
        update["retry_count"] = attempt
        update["next_retry_at"] = now + backoff.delay(attempt)
    if from_status.holds_quota and not to_status.holds_quota and job.admitted_at is not None:
        # Kueue's accumulatedPastExexcutionTimeSeconds: the admitted time of every earlier run.
        update["accumulated_runtime"] = job.accumulated_runtime + max(now - job.admitted_at, timedelta(0))
    if to_status is S.ADMITTED:
        update["admitted_at"] = now
    elif to_status is S.RUNNING:
        update["actual_start"] = job.actual_start or now
    elif to_status.is_terminal:
        update["actual_end"] = now
        if to_status is S.PREEMPTED:
            update["preemption_count"] = job.preemption_count + 1
    elif to_status is S.QUEUED and from_status in (S.ADMITTED, S.PREEMPTED, S.FAILED):
        update["admitted_at"] = None
        update["actual_end"] = None
    if changes:
        # Caller-supplied values: validate the whole updated job, so the cross-field rules
        # (retry_count <= max_retries, …) hold too. Built from the job's field values (not a
        # dump), so nested models are reused rather than re-parsed.
        _check_changes(job, changes)
        update.update(changes)
        data = {name: getattr(job, name) for name in type(job).model_fields}
        data.update(update)
        new_job = validate_model(type(job), data)
    else:
        # The hot path (schedulers, admission ledgers): only the updates above, which keep a valid
        # job valid by construction (``now`` is checked aware, the retry count stays within
        # ``max_retries``), so re-validating every field would be pure cost.
        new_job = job.model_copy(update=update)
    event = JobTransitioned(
        job_id=job.id,
        tenant=job.tenant,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        at=now,
        version=job.version + 1,
    )
    return new_job, event
