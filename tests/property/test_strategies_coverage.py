"""The job strategy exercises every field of ``Job``, so the store kit catches a lossy store.

A store that forgets to persist one column passes every check that never fills that column. So:
the ``jobs`` strategy sets every optional field some of the time (consistently with the status),
``optional_fields=True`` sets them all, and the kit's round-trip tests fail — naming the field —
for a store that drops any single field, on create or on update.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from budcore_adapters.inmemory import InMemoryJobStore
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from budcore.domain import Job, JobStatus
from budcore.domain.events import DomainEvent
from budcore.domain.job import JobSource
from budcore.ports import EventSink, JobStore
from budcore.testing import strategies as bst
from budcore.testing.conformance import JobStoreConformance
from budcore.testing.examples import examples as property_examples

S = JobStatus
IDENTITY = ("id", "tenant", "created_at", "idempotency_key", "status", "version")
# Every field a store must keep that a test can vary (the identity is fixed by the tests).
CONTENT_FIELDS = [name for name in Job.model_fields if name not in IDENTITY]
# What a submitter may set on a new (pending) job; the rest needs a history.
SUBMISSION_FIELDS = [
    "project",
    "job_type",
    "local_queue",
    "deployment_type",
    "spec",
    "estimated_duration",
    "max_duration",
    "deadline",
    "time_window",
    "priority",
    "priority_class",
    "workload_priority",
    "preemptible",
    "preempts_others",
    "checkpoint_interval",
    "estimated_start",
    "estimated_end",
    "max_retries",
    "estimated_cost",
    "budget_limit",
    "budget_action",
    "labels",
    "source",
    "pipeline_id",
    "pipeline_step_id",
    "usecase_deployment_id",
]
HISTORY_FIELDS = [
    "admitted_at",
    "actual_start",
    "actual_end",
    "last_checkpoint_at",
    "status_message",
    "retry_count",
    "next_retry_at",
    "preemption_count",
    "accumulated_runtime",
    "actual_cost",
    "outputs",
]
# The fields the audit's lossy stores dropped.
AUDITED = [
    "actual_cost",
    "estimated_cost",
    "pipeline_id",
    "pipeline_step_id",
    "usecase_deployment_id",
    "next_retry_at",
    "checkpoint_interval",
    "last_checkpoint_at",
    "estimated_start",
    "estimated_end",
    "preemption_count",
]


def _default(name: str) -> Any:
    return Job.model_fields[name].get_default(call_default_factory=True)


def _differs(name: str) -> Any:
    default = "<required>" if Job.model_fields[name].is_required() else _default(name)
    return lambda job: getattr(job, name) != default


def test_the_field_lists_cover_every_job_field() -> None:
    """A field added to ``Job`` must be added to a list here (and to the strategy)."""
    always_drawn = ["name", "request", "updated_at"]
    assert sorted([*SUBMISSION_FIELDS, *HISTORY_FIELDS, *always_drawn]) == sorted(CONTENT_FIELDS)


def _fields_seen(strategy: st.SearchStrategy[Job], examples: int = 400) -> set[str]:
    """The fields that took a value other than their default in ``examples`` generated jobs."""
    seen: set[str] = set()

    @settings(max_examples=property_examples(examples), database=None, suppress_health_check=[])
    @given(strategy)
    def collect(job: Job) -> None:
        seen.update(name for name in CONTENT_FIELDS if _differs(name)(job))

    collect()
    return seen


def test_every_field_is_set_to_a_non_default_value_some_of_the_time() -> None:
    assert sorted(set(CONTENT_FIELDS) - _fields_seen(bst.jobs(statuses=None))) == []


def test_new_jobs_carry_every_submission_field_some_of_the_time() -> None:
    seen = _fields_seen(bst.jobs())
    assert sorted(set(SUBMISSION_FIELDS) - seen) == []
    # A pending job has no history yet.
    assert sorted(seen & set(HISTORY_FIELDS)) == []


@settings(max_examples=property_examples(200), suppress_health_check=[])
@given(bst.jobs(optional_fields=True))
def test_optional_fields_true_sets_every_submission_field(job: Job) -> None:
    for name in ("estimated_duration", "max_duration", "deadline", "priority_class", "workload_priority"):
        assert getattr(job, name) is not None, name
    for name in ("checkpoint_interval", "estimated_start", "estimated_end", "estimated_cost", "budget_limit"):
        assert getattr(job, name) is not None, name
    assert job.labels
    assert job.pipeline_id and job.pipeline_step_id and job.usecase_deployment_id
    assert job.created_at <= job.estimated_start <= job.estimated_end  # type: ignore[operator]
    assert job.priority_class == job.priority.kueue_class_name


@settings(max_examples=property_examples(300), suppress_health_check=[])
@given(bst.jobs(statuses=None, optional_fields=True))
def test_optional_fields_true_sets_the_history_the_status_implies(job: Job) -> None:
    if job.actual_start is not None:
        assert job.actual_cost is not None and job.last_checkpoint_at is not None
        assert job.actual_start <= job.last_checkpoint_at <= job.updated_at
    if job.actual_end is not None:
        assert job.outputs
    if job.status is not S.PENDING:
        assert job.status_message
    if job.retry_count:
        assert job.next_retry_at is not None and job.next_retry_at > job.updated_at
    if job.status is S.PREEMPTED:
        assert job.preemption_count >= 1
    if job.retry_count or job.preemption_count:
        assert job.accumulated_runtime > timedelta(0)
    if job.status is S.PENDING:
        assert (job.retry_count, job.preemption_count, job.actual_cost, job.status_message) == (
            0,
            0,
            None,
            None,
        )


@settings(max_examples=property_examples(200), suppress_health_check=[])
@given(bst.jobs(statuses=None, optional_fields=False))
def test_optional_fields_false_gives_lean_jobs(job: Job) -> None:
    lean = (
        "deadline",
        "estimated_cost",
        "checkpoint_interval",
        "estimated_start",
        "pipeline_id",
        "actual_cost",
    )
    assert all(getattr(job, name) is None for name in lean)
    assert job.labels == {} and job.outputs == {}
    assert job.source is JobSource.DIRECT
    if job.status is not S.PREEMPTED:
        assert job.preemption_count == 0


@settings(max_examples=property_examples(300), suppress_health_check=[])
@given(bst.jobs(statuses=None))
def test_default_generation_passes_every_health_check(job: Job) -> None:
    assert Job.model_validate_json(job.model_dump_json()) == job


LATE = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)


@settings(max_examples=property_examples(200))
@given(bst.jobs(statuses=None, created_at=bst.utc_datetimes(LATE, LATE), optional_fields=True))
def test_every_derived_timestamp_stays_a_day_clear_of_datetime_max(job: Job) -> None:
    stamps = [v for v in job.model_dump().values() if isinstance(v, datetime)]
    assert all(LATE <= v < LATE + timedelta(hours=13) for v in stamps)


# The kit against stores that drop one field -------------------------------------------------
class _DroppingStore(InMemoryJobStore):
    """Resets ``dropped`` to its default on every write, like a store missing that column."""

    def __init__(self, dropped: str, events: EventSink) -> None:
        super().__init__(events=events)
        self._drop = {dropped: _default(dropped)}

    def create(self, job: Job, *, events: Sequence[DomainEvent] = ()) -> Job:
        return super().create(job.model_copy(update=self._drop), events=events)

    def update(self, job: Job, *, events: Sequence[DomainEvent] = ()) -> Job:
        return super().update(job.model_copy(update=self._drop), events=events)


class _Kit(JobStoreConformance):
    hypothesis_max_examples: ClassVar[int | None] = 100
    dropped: ClassVar[str] = ""

    def make_store(self, events: EventSink) -> JobStore:
        return _DroppingStore(self.dropped, events)


def _kit(dropped: str) -> _Kit:
    return type(f"KitDropping_{dropped}", (_Kit,), {"dropped": dropped})()


@pytest.mark.parametrize("name", [n for n in CONTENT_FIELDS if not Job.model_fields[n].is_required()])
def test_the_every_field_check_catches_a_store_that_drops_any_field(name: str) -> None:
    with pytest.raises(AssertionError, match=rf"\b{name}: stored"):
        _kit(name).test_every_field_survives_create_and_updates()


@pytest.fixture
def no_shrinking() -> Iterator[None]:
    """Report the first failing example as is: shrinking a failure we expect only costs time."""
    previous = settings.default
    settings.register_profile(
        "_coverage_no_shrinking", parent=previous, phases=[Phase.generate], database=None
    )
    settings.load_profile("_coverage_no_shrinking")
    yield
    settings.register_profile("_coverage_restored", parent=previous)
    settings.load_profile("_coverage_restored")


@pytest.mark.usefixtures("no_shrinking")
@pytest.mark.parametrize("name", AUDITED)
def test_the_round_trip_property_catches_a_store_that_drops_an_audited_field(name: str) -> None:
    with pytest.raises(AssertionError, match=rf"\b{name}: stored"):
        _kit(name).test_round_trip_preserves_every_field()


def test_a_faithful_store_passes_both_round_trip_checks() -> None:
    class Faithful(JobStoreConformance):
        hypothesis_max_examples = 50

        def make_store(self, events: EventSink) -> JobStore:
            return InMemoryJobStore(events=events)

    Faithful().test_every_field_survives_create_and_updates()
    Faithful().test_round_trip_preserves_every_field()
