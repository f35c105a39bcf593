"""``transition(**changes)`` and ``JobService.move`` validate the changes they apply.

``model_copy(update=...)`` skips validation, so a bad change used to be stored and then failed
when the stored job was read back and re-validated. Now a bad change raises budcore's
``ValidationError`` naming the field, and neither the job nor the store is touched.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from budcore_adapters.inmemory import CollectingEventSink, InMemoryJobStore, ManualClock

from budcore.domain import Job, JobStatus, transition
from budcore.domain.errors import ValidationError
from budcore.service import JobService

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LATER = NOW + timedelta(seconds=5)
S = JobStatus


def queued_job(**kw: Any) -> Job:
    return Job(id="j1", name="j1", tenant="acme", status=S.QUEUED, created_at=NOW, updated_at=NOW, **kw)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"retry_count": -5}, "retry_count"),
        ({"max_retries": -1}, "max_retries"),
        ({"actual_cost": -3}, "actual_cost"),
        ({"actual_cost": Decimal("NaN")}, "actual_cost"),
        ({"deadline": datetime(2026, 2, 1)}, "deadline"),  # naive
        ({"estimated_duration": timedelta(seconds=-1)}, "estimated_duration"),
        ({"name": ""}, "name"),
        ({"labels": "not-a-mapping"}, "labels"),
    ],
)
def test_a_bad_change_is_a_validation_error_naming_the_field(changes: dict[str, Any], field: str) -> None:
    job = queued_job()
    with pytest.raises(ValidationError) as info:
        transition(job, S.ADMITTED, now=LATER, **changes)
    assert field in info.value.path
    assert job.status is S.QUEUED  # the input is untouched (jobs are immutable anyway)


def test_several_bad_changes_are_all_reported() -> None:
    with pytest.raises(ValidationError) as info:
        transition(queued_job(), S.ADMITTED, now=LATER, retry_count=-5, max_retries=-1, actual_cost=-3)
    text = str(info.value)
    assert "retry_count" in text and "max_retries" in text and "actual_cost" in text


def test_cross_field_rules_hold_for_changes() -> None:
    with pytest.raises(ValidationError, match="exceeds max_retries"):
        transition(queued_job(max_retries=1), S.ADMITTED, now=LATER, retry_count=2)
    with pytest.raises(ValidationError, match="exceeds max_duration"):
        transition(
            queued_job(max_duration=timedelta(hours=1)),
            S.ADMITTED,
            now=LATER,
            estimated_duration=timedelta(hours=2),
        )


def test_unknown_keywords_are_rejected_by_name() -> None:
    with pytest.raises(ValidationError) as info:
        transition(queued_job(), S.ADMITTED, now=LATER, bogus=1, zzz=2)
    assert "'bogus'" in str(info.value) and "'zzz'" in str(info.value)
    assert info.value.path == "bogus"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", S.COMPLETED),
        ("version", 99),
        ("tenant", "other"),
        ("id", "j2"),
        ("created_at", NOW - timedelta(days=1)),
        ("idempotency_key", "k"),
    ],
)
def test_reserved_fields_cannot_be_changed_by_a_transition(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        transition(queued_job(), S.ADMITTED, now=LATER, **{field: value})
    assert info.value.path == field


def test_valid_changes_are_applied_coerced_and_the_result_revalidates() -> None:
    deadline = datetime(2026, 2, 1, tzinfo=UTC)
    new, event = transition(
        queued_job(), S.ADMITTED, now=LATER, actual_cost="12.50", deadline=deadline, labels={"n": "1"}
    )
    assert new.status is S.ADMITTED and new.admitted_at == LATER and new.updated_at == LATER
    assert new.actual_cost == Decimal("12.50")
    assert new.deadline == deadline
    assert new.labels == {"n": "1"}
    assert Job.model_validate(new.model_dump()) == new
    assert event.version == 1


def test_a_transition_without_changes_is_unchanged() -> None:
    job = queued_job()
    new, _ = transition(job, S.ADMITTED, now=LATER)
    assert new == job.model_copy(update={"status": S.ADMITTED, "updated_at": LATER, "admitted_at": LATER})


def _service() -> tuple[JobService, InMemoryJobStore, CollectingEventSink]:
    sink = CollectingEventSink()
    store = InMemoryJobStore(events=sink)
    return JobService(store, ManualClock(NOW)), store, sink


@pytest.mark.parametrize(
    "changes",
    [
        {"retry_count": -5, "max_retries": -1, "actual_cost": -3},
        {"deadline": datetime(2026, 2, 1)},
        {"bogus": 1},
        {"version": 99},
        {"status": S.COMPLETED},
    ],
)
def test_move_with_a_bad_change_leaves_the_stored_job_untouched(changes: dict[str, Any]) -> None:
    service, store, sink = _service()
    submitted = service.submit(Job(id="j1", name="j1", tenant="acme"))
    events_before = list(sink.events)
    with pytest.raises(ValidationError):
        service.move(submitted, S.ADMITTED, **changes)
    assert store.get("acme", "j1") == submitted
    assert sink.events == events_before
    # The stored job still validates, and the same move without the bad change works.
    assert Job.model_validate(store.get("acme", "j1").model_dump()) == submitted
    assert service.move(submitted, S.ADMITTED).status is S.ADMITTED


def test_move_applies_valid_changes() -> None:
    service, store, _ = _service()
    submitted = service.submit(Job(id="j1", name="j1", tenant="acme"))
    moved = service.move(submitted, S.ADMITTED, estimated_cost=Decimal("3"))
    assert moved.estimated_cost == Decimal("3")
    assert store.get("acme", "j1") == moved
