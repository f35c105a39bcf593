"""PostgreSQL-specific JobStore behaviour beyond the shared kit: concurrency, locale, encoding."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("sqlalchemy")

import psycopg
from budcore_adapters.postgres import AdmissionLedger, PoolSettings, PostgresJobStore, upgrade
from budcore_adapters.postgres.tempserver import TemporaryPostgres
from psycopg import sql

from budcore.domain.errors import ConflictError, ValidationError
from budcore.domain.events import JobTransitioned
from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import Job, JobStatus
from budcore.domain.lifecycle import transition
from budcore.ports import JobFilter

pytestmark = pytest.mark.postgres

ACME = TenantId("acme")
T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def store(pg_url: str) -> Iterator[PostgresJobStore]:
    s = PostgresJobStore(pg_url, pool=PoolSettings(size=8, max_overflow=4))
    yield s
    s.close()


def run_threads(n: int, target: Callable[[int], None]) -> None:
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_concurrent_creates_with_one_idempotency_key_store_one_job(store: PostgresJobStore) -> None:
    results: list[Job] = []
    lock = threading.Lock()

    def submit(i: int) -> None:
        job = Job(name=f"attempt {i}", tenant=ACME, idempotency_key="race-1", created_at=T0, updated_at=T0)
        created = store.create(job, events=[_created_event(job)])
        with lock:
            results.append(created)

    run_threads(8, submit)
    assert len({(j.tenant, j.id) for j in results}) == 1
    assert all(j == results[0] for j in results)
    assert store.list(ACME, JobFilter(created_after=T0 - timedelta(seconds=1), limit=10)) == [results[0]]
    stored_events = [e for e in store.recorded_events(ACME) if e.job_id == results[0].id]
    assert len(stored_events) == 1  # the losers' events were not written


def test_concurrent_updates_of_one_version_have_exactly_one_winner(store: PostgresJobStore) -> None:
    job = store.create(Job(name="contended", tenant=ACME, created_at=T0, updated_at=T0))
    outcomes: list[str] = []
    lock = threading.Lock()

    def write(i: int) -> None:
        try:
            store.update(job.with_changes(labels={"writer": str(i)}))
            outcome = f"won:{i}"
        except ConflictError as exc:
            assert (exc.expected_version, exc.actual_version) == (1, 2)
            outcome = "conflict"
        with lock:
            outcomes.append(outcome)

    run_threads(8, write)
    winners = [o for o in outcomes if o.startswith("won")]
    assert len(winners) == 1 and outcomes.count("conflict") == 7
    final = store.get(ACME, job.id)
    assert final.version == 2
    assert final.labels == {"writer": winners[0].split(":")[1]}


def test_awkward_strings_round_trip_and_filter_exactly(store: PostgresJobStore) -> None:
    labels = {"quote": 'it\'s "x"; DROP TABLE budcore_jobs; --', "unicode": "Grüße ✓", "empty": ""}
    job = store.create(Job(name="o'brien ✓", tenant=ACME, labels=labels, created_at=T0, updated_at=T0))
    assert store.get(ACME, job.id) == job
    assert store.list(ACME, JobFilter(labels={"quote": labels["quote"]})) == [job]
    assert store.list(ACME, JobFilter(labels={"quote": "it's"})) == []
    assert store.list(ACME, JobFilter(labels={"empty": ""})) == [job]


def test_naive_datetime_in_a_filter_is_a_validation_error(store: PostgresJobStore) -> None:
    # Refused before any SQL runs: by JobFilter itself, or by the store (budcore's ValidationError
    # is a ValueError too), always naming the field.
    with pytest.raises(ValueError, match="created_after"):
        store.list(ACME, JobFilter(created_after=datetime(2030, 1, 1)))


def test_fifo_order_is_bytewise_whatever_the_database_locale(pg_server: TemporaryPostgres) -> None:
    """Under an ICU en-US database "job-a" would sort before "job-B"; the store keeps Python's order."""
    name = "budcore_icu_order"
    try:
        with psycopg.connect(pg_server.libpq_dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL(
                    "CREATE DATABASE {} LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C' TEMPLATE template0"
                ).format(sql.Identifier(name))
            )
    except psycopg.Error as exc:
        pytest.skip(f"this PostgreSQL build cannot create an ICU database: {exc}")
    try:
        url = pg_server.url(name)
        upgrade(url)
        icu_store = PostgresJobStore(url)
        try:
            ids = ["job-a", "job-B", "job-_", "job-Z", "job-ä"]
            for job_id in ids:
                icu_store.create(
                    Job(id=JobId(job_id), name=job_id, tenant=ACME, created_at=T0, updated_at=T0)
                )
            assert [j.id for j in icu_store.list(ACME)] == sorted(ids)
        finally:
            icu_store.close()
    finally:
        pg_server.drop_database(name)


def test_admitted_job_gets_a_lease_that_leaves_with_it(store: PostgresJobStore) -> None:
    """Entering ``admitted`` by a plain update also grants a lease, so reconciliation covers it."""
    ledger = AdmissionLedger(store)
    job = store.create(Job(name="plain", tenant=ACME, created_at=T0, updated_at=T0))
    now = T0 + timedelta(minutes=1)
    for status in (JobStatus.QUEUED, JobStatus.ADMITTED):
        new, event = transition(job, status, now=now)
        job = store.update(new, events=[event])
    lease = ledger.lease(ACME, job.id)
    assert lease is not None
    assert lease.expires_at == now + timedelta(seconds=30)
    assert lease.renew_by == now + timedelta(seconds=25)
    new, event = transition(job, JobStatus.RUNNING, now=now + timedelta(seconds=3))
    store.update(new, events=[event])
    assert ledger.lease(ACME, job.id) is None


def _created_event(job: Job) -> JobTransitioned:
    return JobTransitioned(
        job_id=job.id, tenant=job.tenant, from_status=job.status, to_status=job.status,
        reason="submitted", at=job.created_at, version=1,
    )  # fmt: skip


def test_empty_status_set_matches_nothing_like_the_reference_store(store: PostgresJobStore) -> None:
    store.create(Job(name="any", tenant=ACME, created_at=T0, updated_at=T0))
    nothing = JobFilter(statuses=frozenset())
    assert store.list(None, nothing) == []
    assert store.count(ACME, nothing) == 0


def test_engine_and_url_together_are_refused(store: PostgresJobStore, pg_url: str) -> None:
    with pytest.raises(ValidationError) as info:
        PostgresJobStore(pg_url, engine=store.engine)
    assert info.value.path == "engine"
