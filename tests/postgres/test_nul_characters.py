"""NUL characters: PostgreSQL cannot store ``\\x00`` in text or JSONB; the store says so clearly.

Before, the server's 22P05 error reached the caller as a DatabaseError quoting the job's JSON
document (every field of it, up to the NUL). Now the store refuses the job before sending anything
with a budcore ValidationError naming the field, and no driver error quotes the values it got.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytest.importorskip("sqlalchemy")

import sqlalchemy as sa
from budcore_adapters.postgres import DatabaseError, PoolSettings, PostgresJobStore
from budcore_adapters.postgres.engine import run_transaction

from budcore.domain.errors import ValidationError
from budcore.domain.ids import TenantId
from budcore.domain.job import Job, JobStatus, PodSet, ResourceRequest
from budcore.domain.lifecycle import transition
from budcore.domain.resources import ResourceVector

pytestmark = pytest.mark.postgres

ACME = TenantId("acme")
T0 = datetime(2030, 1, 1, tzinfo=UTC)
SECRET = "do-not-echo-this-value"


@pytest.fixture(scope="module")
def store(pg_url: str) -> Iterator[PostgresJobStore]:
    s = PostgresJobStore(pg_url, pool=PoolSettings(size=2))
    yield s
    s.close()


def job(**fields: Any) -> Job:
    base: dict[str, Any] = {
        "name": "train",
        "tenant": ACME,
        "labels": {"owner": SECRET},
        "created_at": T0,
        "updated_at": T0,
    }
    base.update(fields)
    return Job(**base)


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"name": "a\x00b"}, "name"),
        ({"labels": {"owner": SECRET, "team": "x\x00"}}, "labels.team"),
        ({"labels": {"owner": SECRET, "te\x00am": "x"}}, "labels.te\\x00am"),
        ({"idempotency_key": "k\x00"}, "idempotency_key"),
        ({"local_queue": "lq\x00"}, "local_queue"),
        ({"project": "default", "status_message": "stuck\x00"}, "status_message"),
        (
            {
                "request": ResourceRequest(
                    pod_sets=(
                        PodSet(name="ok"),
                        PodSet(name="wo\x00rkers", resources=ResourceVector.of({"cpu": 1})),
                    )
                )
            },
            "request.pod_sets[1].name",
        ),
    ],
)
def test_create_with_a_nul_is_a_validation_error_naming_the_field(
    store: PostgresJobStore, fields: dict[str, Any], path: str
) -> None:
    try:
        candidate = job(**fields)
    except ValueError:
        pytest.skip(f"the domain model already rejects a NUL in {path}")
    before = store.count(ACME)
    with pytest.raises(ValidationError) as info:
        store.create(candidate)
    assert info.value.path == path
    message = str(info.value)
    assert "NUL" in message and "\x00" not in message
    assert SECRET not in message  # the document is not echoed
    assert store.count(ACME) == before


def test_update_and_event_with_a_nul_write_nothing(store: PostgresJobStore) -> None:
    created = store.create(job())
    with pytest.raises(ValidationError) as info:
        store.update(created.with_changes(labels={"owner": "a\x00"}))
    assert info.value.path == "labels.owner"
    queued, event = transition(created, JobStatus.QUEUED, now=T0 + timedelta(seconds=1))
    with pytest.raises(ValidationError) as info:
        store.update(queued, events=[event.model_copy(update={"reason": "because\x00"})])
    assert info.value.path == "reason"
    assert store.get(ACME, created.id) == created  # the whole transaction rolled back
    assert [e for e in store.recorded_events(ACME) if e.job_id == created.id] == []


def test_a_data_error_from_the_server_does_not_quote_the_values(store: PostgresJobStore) -> None:
    """Defence in depth: class-22 errors keep the primary message only, on one line."""
    doc = '{"owner": "' + SECRET + '", "bad": "\\u0000"}'

    def work(conn: sa.Connection) -> object:
        return conn.execute(sa.text("SELECT CAST(:doc AS jsonb)"), {"doc": doc}).scalar()

    with pytest.raises(DatabaseError) as info:
        run_transaction(store.engine, work)
    message = str(info.value)
    assert "[22P05]" in message
    assert SECRET not in message
    assert "\n" not in message
