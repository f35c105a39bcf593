"""Random job lifecycles through ``transition`` and the in-memory store, against a model.

A hypothesis ``RuleBasedStateMachine`` submits jobs for two tenants and throws every kind of
state change at random jobs: queue, admit, run, complete, fail, preempt, cancel, retry, plus
forged status changes that bypass ``transition`` and stale writes. Most attempts on a random job
are illegal, so both the legal and the refusal paths get exercised. After every step it checks:

- the store partitions the jobs by status (each job listed under exactly its one status, per
  tenant and overall) and agrees with the model on status and version;
- completed and cancelled jobs never change; preempted and failed ones only go back to queued;
- ``retry_count`` never exceeds ``max_retries`` and grows by one exactly on ``failed → queued``;
- every successful write bumps the version by exactly one, and a refused one changes nothing;
- the events the store published are exactly the transitions made, in order, with the versions
  the writes produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from budcore_adapters.inmemory import CollectingEventSink, InMemoryJobStore, ManualClock
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from budcore.domain import (
    ConflictError,
    InvalidTransitionError,
    Job,
    JobId,
    JobStatus,
    JobTransitioned,
    TenantId,
    transition,
)
from budcore.domain.lifecycle import TRANSITIONS
from budcore.ports import JobFilter
from budcore.testing import strategies as bst
from budcore.testing.examples import examples

S = JobStatus
START = datetime(2030, 1, 1, tzinfo=UTC)
TENANTS = (TenantId("acme"), TenantId("globex"))
ABSORBING = frozenset({S.COMPLETED, S.CANCELLED})
REQUEUE_ONLY = frozenset({S.PREEMPTED, S.FAILED})

Key = tuple[TenantId, JobId]
STEER = st.none() | st.integers(0, 63)
HAPPY_PATH = {S.PENDING: S.QUEUED, S.QUEUED: S.ADMITTED, S.ADMITTED: S.RUNNING, S.RUNNING: S.COMPLETED}


@dataclass
class Expected:
    """What the model believes about one job."""

    status: JobStatus
    version: int
    retry_count: int
    max_retries: int
    initial_retries: int
    history: list[tuple[JobStatus, JobStatus, int]] = field(default_factory=list)


class JobLifecycleMachine(RuleBasedStateMachine):
    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        self.sink = CollectingEventSink()
        self.store = InMemoryJobStore(events=self.sink)
        self.clock = ManualClock(START)
        self.model: dict[Key, Expected] = {}
        self.expected_events: list[JobTransitioned] = []

    # Submission ------------------------------------------------------------------------------
    @rule(
        target=jobs,
        job=bst.jobs(
            tenants=TENANTS,
            statuses=(S.PENDING,),
            max_retries=3,
            max_pod_sets=1,
            idempotency_key_pool=("retry-me", "again"),
            created_at=st.just(START),
        ),
    )
    def submit(self, job: Job) -> Key:
        replay_of = next(
            (
                k
                for k in self.model
                if job.idempotency_key is not None
                and k[0] == job.tenant
                and self.store.get(*k).idempotency_key == job.idempotency_key
            ),
            None,
        )
        now = self.clock.now()
        stored = self.store.create(job.model_copy(update={"created_at": now, "updated_at": now}))
        if replay_of is not None:
            assert stored.key == replay_of
            assert stored.version == self.model[replay_of].version
            return replay_of
        assert (stored.status, stored.version) == (S.PENDING, 1)
        key: Key = (stored.tenant, stored.id)
        self.model[key] = Expected(S.PENDING, 1, stored.retry_count, stored.max_retries, stored.retry_count)
        return key

    # Lifecycle rules: each targets one status; the job they hit is random ------------------
    @rule(key=jobs, steer=STEER)
    def queue(self, key: Key, steer: int | None) -> None:
        self.attempt(self.pick(key, S.QUEUED, steer), S.QUEUED, "queued")

    @rule(key=jobs, steer=STEER)
    def admit(self, key: Key, steer: int | None) -> None:
        self.attempt(self.pick(key, S.ADMITTED, steer), S.ADMITTED, "quota reserved")

    @rule(key=jobs, steer=STEER)
    def run(self, key: Key, steer: int | None) -> None:
        self.attempt(self.pick(key, S.RUNNING, steer), S.RUNNING, "pods started")

    @rule(key=jobs, steer=STEER)
    def complete(self, key: Key, steer: int | None) -> None:
        self.attempt(self.pick(key, S.COMPLETED, steer), S.COMPLETED, "exit 0")

    @rule(key=jobs, steer=STEER)
    def fail(self, key: Key, steer: int | None) -> None:
        self.attempt(self.pick(key, S.FAILED, steer), S.FAILED, "exit 1")

    @rule(key=jobs, steer=STEER)
    def preempt(self, key: Key, steer: int | None) -> None:
        self.attempt(self.pick(key, S.PREEMPTED, steer), S.PREEMPTED, "preempted by a higher priority job")

    @rule(key=jobs, steer=STEER)
    def cancel(self, key: Key, steer: int | None) -> None:
        self.attempt(self.pick(key, S.CANCELLED, steer), S.CANCELLED, "user cancelled")

    @rule(key=jobs, steer=STEER)
    def retry(self, key: Key, steer: int | None) -> None:
        # Same edge as queue, aimed at failed/preempted jobs so requeues and exhausted retry
        # budgets (failed -> queued refused) both come up often.
        candidates = sorted(k for k, e in self.model.items() if e.status in REQUEUE_ONLY)
        if steer is not None and candidates:
            key = candidates[steer % len(candidates)]
        self.attempt(key, S.QUEUED, "retry")

    @rule(key=jobs, steer=STEER)
    def progress(self, key: Key, steer: int | None) -> None:
        """One step along the happy path (pending → queued → admitted → running → completed)."""
        live = sorted(k for k, e in self.model.items() if e.status in HAPPY_PATH)
        if steer is not None and live:
            key = live[steer % len(live)]
        status = self.model[key].status
        if status in HAPPY_PATH:
            self.attempt(key, HAPPY_PATH[status], "progress")

    def pick(self, key: Key, to_status: JobStatus, steer: int | None) -> Key:
        """``key`` itself (often an illegal attempt) or, when steered, a job that can move.

        Uniformly random attempts rarely get a job past ``admitted``; steering half of them to a
        job for which the edge is legal drives jobs through whole lifecycles.
        """
        if steer is None:
            return key
        candidates = sorted(k for k, e in self.model.items() if to_status in TRANSITIONS[e.status])
        return candidates[steer % len(candidates)] if candidates else key

    def attempt(self, key: Key, to_status: JobStatus, reason: str) -> None:
        before = self.store.get(*key)
        expected = self.model[key]
        assert before.status is expected.status
        legal = to_status in TRANSITIONS[before.status] and not (
            before.status is S.FAILED and before.retry_count >= before.max_retries
        )
        # The table itself must keep terminal states terminal (the model does not just trust it).
        if before.status in ABSORBING:
            assert not legal
        if before.status in REQUEUE_ONLY and legal:
            assert to_status is S.QUEUED
        event(f"{before.status.value} -> {to_status.value}: {'applied' if legal else 'refused'}")
        now = self.clock.advance(timedelta(seconds=1))
        if not legal:
            with pytest.raises(InvalidTransitionError) as info:
                transition(before, to_status, now=now, reason=reason)
            assert (info.value.from_state, info.value.to_state) == (before.status.value, to_status.value)
            self.assert_unchanged(key, before)
            return
        new, emitted = transition(before, to_status, now=now, reason=reason)
        stored = self.store.update(new, events=[emitted])
        assert stored.version == before.version + 1 == emitted.version
        assert stored.status is to_status
        retried = before.status is S.FAILED and to_status is S.QUEUED
        assert stored.retry_count == before.retry_count + (1 if retried else 0)
        assert (emitted.from_status, emitted.to_status, emitted.reason) == (before.status, to_status, reason)
        expected.history.append((before.status, to_status, stored.version))
        expected.status, expected.version, expected.retry_count = (
            to_status,
            stored.version,
            stored.retry_count,
        )
        self.expected_events.append(emitted)

    # Writes that must be refused -------------------------------------------------------------
    @rule(key=jobs, to_status=st.sampled_from(tuple(JobStatus)))
    def forged_status_change(self, key: Key, to_status: JobStatus) -> None:
        """A caller bypassing ``transition``: the store itself must refuse illegal edges."""
        before = self.store.get(*key)
        if to_status is before.status or to_status in TRANSITIONS[before.status]:
            return
        with pytest.raises(InvalidTransitionError):
            self.store.update(before.model_copy(update={"status": to_status}))
        self.assert_unchanged(key, before)

    @rule(key=jobs, ahead=st.booleans())
    def stale_write(self, key: Key, ahead: bool) -> None:
        before = self.store.get(*key)
        version = before.version + 1 if ahead or before.version == 1 else before.version - 1
        stale = before.model_copy(update={"version": version, "status_message": "lost update"})
        with pytest.raises(ConflictError):
            self.store.update(stale)
        self.assert_unchanged(key, before)

    def assert_unchanged(self, key: Key, before: Job) -> None:
        assert self.store.get(*key) == before
        assert self.model[key].version == before.version
        assert self.sink.events == self.expected_events

    # Invariants ------------------------------------------------------------------------------
    @invariant()
    def each_job_is_in_exactly_one_state(self) -> None:
        for scope in (None, *TENANTS):
            seen: dict[Key, JobStatus] = {}
            for status in JobStatus:
                for job in self.store.list(scope, JobFilter(statuses=frozenset({status}))):
                    assert job.key not in seen, f"{job.key} listed as {seen.get(job.key)} and {status}"
                    assert job.status is status
                    seen[job.key] = status
            expected = {k: e.status for k, e in self.model.items() if scope is None or k[0] == scope}
            assert seen == expected
            assert self.store.count(scope) == len(expected)

    @invariant()
    def versions_and_retries_match_the_model(self) -> None:
        for key, expected in self.model.items():
            job = self.store.get(*key)
            assert job.version == expected.version == 1 + len(expected.history)
            assert job.retry_count == expected.retry_count <= job.max_retries == expected.max_retries
            retries = sum(1 for a, b, _ in expected.history if (a, b) == (S.FAILED, S.QUEUED))
            assert job.retry_count == expected.initial_retries + retries

    @invariant()
    def terminal_states_are_respected(self) -> None:
        for expected in self.model.values():
            for a, b, _ in expected.history:
                assert a not in ABSORBING, f"{a} is absorbing but moved to {b}"
                if a in REQUEUE_ONLY:
                    assert b is S.QUEUED, f"{a} may only be requeued, moved to {b}"

    @invariant()
    def events_match_the_transitions(self) -> None:
        assert self.sink.events == self.expected_events
        for key, expected in self.model.items():
            mine = [
                (e.from_status, e.to_status, e.version)
                for e in self.sink.events
                if isinstance(e, JobTransitioned) and (e.tenant, e.job_id) == key
            ]
            assert mine == expected.history


JobLifecycleMachine.TestCase.settings = settings(
    max_examples=examples(100),
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestJobLifecycle = JobLifecycleMachine.TestCase
