"""Every transition of the job state machine, legal and illegal."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from budcore.domain import BackoffPolicy, InvalidTransitionError, Job, JobStatus, transition
from budcore.domain.lifecycle import TRANSITIONS

NOW = datetime(2026, 1, 1, tzinfo=UTC)
S = JobStatus

LEGAL = {
    (S.PENDING, S.QUEUED),
    (S.PENDING, S.CANCELLED),
    (S.PENDING, S.FAILED),
    (S.QUEUED, S.ADMITTED),
    (S.QUEUED, S.CANCELLED),
    (S.QUEUED, S.FAILED),
    (S.ADMITTED, S.RUNNING),
    (S.ADMITTED, S.QUEUED),
    (S.ADMITTED, S.PREEMPTED),
    (S.ADMITTED, S.CANCELLED),
    (S.ADMITTED, S.FAILED),
    (S.RUNNING, S.COMPLETED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
    (S.RUNNING, S.PREEMPTED),
    (S.PREEMPTED, S.QUEUED),
    (S.FAILED, S.QUEUED),
}


def job_in(status: JobStatus, **kw: object) -> Job:
    return Job(name="j", tenant="acme", status=status, created_at=NOW, updated_at=NOW, **kw)  # type: ignore[arg-type]


def test_table_is_exactly_the_specified_edges() -> None:
    table = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert table == LEGAL


@pytest.mark.parametrize(("a", "b"), sorted(LEGAL))
def test_legal_transition(a: JobStatus, b: JobStatus) -> None:
    new, event = transition(job_in(a), b, now=NOW + timedelta(seconds=1), reason="because")
    assert new.status is b
    assert (event.from_status, event.to_status, event.reason) == (a, b, "because")
    assert event.version == 1
    assert new.updated_at == NOW + timedelta(seconds=1)


@pytest.mark.parametrize(
    ("a", "b"), sorted(p for p in itertools.product(JobStatus, JobStatus) if p not in LEGAL)
)
def test_illegal_transition_names_both_states(a: JobStatus, b: JobStatus) -> None:
    with pytest.raises(InvalidTransitionError) as info:
        transition(job_in(a), b, now=NOW)
    assert info.value.from_state == a.value and info.value.to_state == b.value
    assert f"{a.value} -> {b.value}" in str(info.value)


def test_terminal_states_are_absorbing_except_requeue_edges() -> None:
    for status in (S.COMPLETED, S.CANCELLED):
        assert TRANSITIONS[status] == frozenset()
    assert TRANSITIONS[S.PREEMPTED] == {S.QUEUED}
    assert TRANSITIONS[S.FAILED] == {S.QUEUED}


def test_retry_counts_and_backs_off_until_budget_exhausted() -> None:
    policy = BackoffPolicy(base=timedelta(seconds=10), cap=timedelta(seconds=25))
    job = job_in(S.FAILED, max_retries=3)
    delays = []
    for _ in range(3):
        job, _ = transition(job, S.QUEUED, now=NOW, backoff=policy)
        assert job.next_retry_at is not None
        delays.append((job.next_retry_at - NOW).total_seconds())
        job, _ = transition(job.model_copy(update={"status": S.RUNNING}), S.FAILED, now=NOW)
    assert delays == [10, 20, 25]
    assert job.retry_count == 3
    with pytest.raises(InvalidTransitionError, match="retry budget exhausted"):
        transition(job, S.QUEUED, now=NOW, backoff=policy)


def test_preemption_requeue_keeps_retry_accounting() -> None:
    job, _ = transition(job_in(S.RUNNING, retry_count=1), S.PREEMPTED, now=NOW)
    job, _ = transition(job, S.QUEUED, now=NOW)
    assert job.retry_count == 1
    assert job.preemption_count == 1


def test_backoff_policy_validation_and_overflow() -> None:
    assert BackoffPolicy().delay(10_000) == timedelta(minutes=10)
    with pytest.raises(Exception, match="cap"):
        BackoffPolicy(base=timedelta(seconds=10), cap=timedelta(seconds=1))


def test_naive_datetime_rejected() -> None:
    from budcore.domain import ValidationError

    with pytest.raises(ValidationError):
        transition(job_in(S.PENDING), S.QUEUED, now=datetime(2026, 1, 1))
