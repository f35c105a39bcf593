"""Alembic migrations: fresh and earlier-revision databases reach head; schema checks fail clearly."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("sqlalchemy")

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from budcore_adapters.postgres import (
    DatabaseUnavailableError,
    PostgresAdmissionLedger,
    PostgresJobStore,
    SchemaVersionError,
    check_schema,
    create_engine,
    current_revision,
    downgrade,
    head_revision,
    resolve_url,
    revisions,
    upgrade,
)
from budcore_adapters.postgres.__main__ import main as cli_main
from budcore_adapters.postgres.engine import ENV_URL
from budcore_adapters.postgres.records import insert_events, job_row
from budcore_adapters.postgres.reservations import PostgresReservationStore
from budcore_adapters.postgres.schema import VERSION_TABLE, jobs, metadata
from budcore_adapters.postgres.tempserver import TemporaryPostgres

from budcore.domain.errors import ValidationError
from budcore.domain.ids import TenantId
from budcore.domain.job import Job, JobStatus
from budcore.domain.lifecycle import transition
from budcore.domain.reservation import Reservation

pytestmark = pytest.mark.postgres

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def budcore_tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {t for t in sa.inspect(engine).get_table_names() if t.startswith("budcore_")}
    finally:
        engine.dispose()


def test_shipped_revisions_form_one_line_ending_at_head() -> None:
    assert revisions() == [
        "0001_initial",
        "0002_admission",
        "0003_quota_tree",
        "0004_queue_isolation",
        "0005_reservations",
        "0006_pipelines",
        "0007_usage",
    ]
    assert head_revision() == "0007_usage"


def test_fresh_database_reaches_head(new_database: Callable[[], str]) -> None:
    url = new_database()
    assert current_revision(url) is None
    upgrade(url)
    assert current_revision(url) == head_revision()
    assert check_schema(url) == head_revision()
    assert budcore_tables(url) == {t.name for t in metadata.sorted_tables} | {VERSION_TABLE}
    upgrade(url)  # at head already: a no-op
    assert current_revision(url) == head_revision()


def test_schema_module_matches_what_the_migrations_create(pg_url: str) -> None:
    """The Core tables the queries use describe exactly the migrated schema."""
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={"version_table": VERSION_TABLE, "compare_type": True, "compare_server_default": True},
            )
            diff = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert diff == []


@pytest.mark.parametrize("start", ["0001_initial"])
def test_database_at_an_earlier_revision_reaches_head_keeping_its_data(
    new_database: Callable[[], str], start: str
) -> None:
    url = new_database()
    upgrade(url, start)
    assert current_revision(url) == start
    with pytest.raises(SchemaVersionError, match="budcore db upgrade"):
        check_schema(url)
    # Write through the store as an older deployment would have (jobs and outbox exist at 0001).
    old = PostgresJobStore(url, check_schema=False)
    try:
        job = old.create(Job(name="old", tenant=TenantId("acme"), created_at=T0, updated_at=T0))
        for status in (JobStatus.QUEUED, JobStatus.ADMITTED):
            new, event = transition(job, status, now=job.updated_at + timedelta(seconds=1))
            with old.engine.begin() as conn:  # 0001 has no leases table: write the row as 0001 did
                values = job_row(new.model_copy(update={"version": job.version + 1}))
                conn.execute(
                    sa.update(jobs).where(jobs.c.tenant == job.tenant, jobs.c.id == job.id).values(**values)
                )
                insert_events(conn, [event])
            job = new.model_copy(update={"version": job.version + 1})
    finally:
        old.close()

    upgrade(url)
    assert current_revision(url) == head_revision()
    store = PostgresJobStore(url)
    try:
        assert store.get(job.tenant, job.id) == job
        assert [e.to_status for e in store.recorded_events()] == [JobStatus.QUEUED, JobStatus.ADMITTED]
        # The migration gave the already-admitted job a lease, so reconciliation covers it.
        lease = PostgresAdmissionLedger(store).lease(job.tenant, job.id)
        assert lease is not None and lease.holder == "migration-0002"
    finally:
        store.close()


def test_a_database_at_0003_gets_nominal_quotas_and_a_local_queue_mapping(
    new_database: Callable[[], str],
) -> None:
    """0004 recovers each row's own nominal quota from 0003's tree and adds the LocalQueue table."""
    url = new_database()
    upgrade(url, "0003_quota_tree")
    gpu = "nvidia.com/gpu"
    engine = create_engine(url)
    try:
        with (
            engine.begin() as conn
        ):  # what revision 0003's sync wrote for: co (own 3) <- a (4, lends 1), b (2)
            for scope, quota, parent, lending in (
                ("cohort:co", 6000, None, None),
                ("a", 4000, "cohort:co", 1000),
                ("b", 2000, "cohort:co", None),
                ("solo", 5000, None, None),
            ):
                conn.execute(
                    sa.text("INSERT INTO budcore_quota_usage (cluster_queue, flavor, resource, quota, "
                            "parent, lending_limit) VALUES (:s, 'f', :r, :q, :p, :l)"),
                    {"s": scope, "r": gpu, "q": quota, "p": parent, "l": lending},
                )  # fmt: skip
    finally:
        engine.dispose()
    upgrade(url)
    assert "budcore_local_queues" in budcore_tables(url)
    store = PostgresJobStore(url)
    try:
        ledger = PostgresAdmissionLedger(store)
        assert [(str(r.key), r.nominal, r.quota) for r in ledger.usage()] == [
            (f"a/f/{gpu}", 4000, 4000),
            (f"b/f/{gpu}", 2000, 2000),
            (f"cohort:co/f/{gpu}", 3000, 6000),
            (f"solo/f/{gpu}", 5000, 5000),
        ]
        # The tree the core builds from the migrated rows is the one 0003 stored.
        assert [(str(b.key), b.quota, b.available) for b in ledger.balances()] == [
            (f"a/f/{gpu}", 4000, 9000),  # its guaranteed 3 and everything the cohort holds
            (f"b/f/{gpu}", 2000, 6000),
            (f"cohort:co/f/{gpu}", 6000, 6000),
            (f"solo/f/{gpu}", 5000, 5000),
        ]
    finally:
        store.close()
    downgrade(url, "0003_quota_tree")
    assert "budcore_local_queues" not in budcore_tables(url)
    engine = create_engine(url)
    try:
        columns = {c["name"] for c in sa.inspect(engine).get_columns("budcore_quota_usage")}
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT cluster_queue, quota FROM budcore_quota_usage ORDER BY 1")
            ).all()
    finally:
        engine.dispose()
    assert "nominal" not in columns
    assert [tuple(r) for r in rows] == [("a", 4000), ("b", 2000), ("cohort:co", 6000), ("solo", 5000)]


def test_0005_adds_the_reservations_table_and_downgrading_removes_it(
    new_database: Callable[[], str],
) -> None:
    """A database at 0004 gains an empty bookings table; downgrading drops it (and its bookings)."""
    url = new_database()
    upgrade(url, "0004_queue_isolation")
    assert "budcore_reservations" not in budcore_tables(url)
    upgrade(url)
    assert current_revision(url) == head_revision()
    assert "budcore_reservations" in budcore_tables(url)
    gpu = "nvidia.com/gpu"
    booking = Reservation.of("eval", "team-a", "cq-a", "h100", gpu, 8, T0, T0 + timedelta(hours=8), ["j1"])
    store = PostgresReservationStore(url)
    try:
        store.book(booking, capacity=8000)
        assert store.list() == [booking]
    finally:
        store.close()
    downgrade(url, "0004_queue_isolation")
    assert current_revision(url) == "0004_queue_isolation"
    assert "budcore_reservations" not in budcore_tables(url)
    with pytest.raises(SchemaVersionError, match="budcore db upgrade"):
        PostgresReservationStore(url)
    upgrade(url)
    store = PostgresReservationStore(url)
    try:
        assert store.list() == []  # the bookings went with the table
        store.book(booking, capacity=8000)
        assert store.get("eval") == booking
    finally:
        store.close()


def test_downgrade_to_base_and_back(new_database: Callable[[], str]) -> None:
    url = new_database()
    upgrade(url)
    downgrade(url, "0001_initial")
    assert current_revision(url) == "0001_initial"
    assert "budcore_leases" not in budcore_tables(url)
    downgrade(url, "base")
    assert current_revision(url) is None
    assert budcore_tables(url) <= {VERSION_TABLE}
    upgrade(url)
    assert current_revision(url) == head_revision()


def test_concurrent_upgrades_from_several_replicas_serialise(new_database: Callable[[], str]) -> None:
    """Three replica processes upgrading one empty database at once all succeed (advisory lock)."""
    url = new_database()
    code = "import sys; from budcore_adapters.postgres import upgrade; upgrade(sys.argv[1])"
    replicas = [subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE) for _ in range(3)]
    results = [(p.communicate(timeout=120)[1], p.returncode) for p in replicas]
    assert [rc for _, rc in results] == [0, 0, 0], [err.decode() for err, _ in results]
    assert current_revision(url) == head_revision()


def test_unknown_revision_is_a_validation_error(pg_url: str) -> None:
    with pytest.raises(ValidationError) as info:
        upgrade(pg_url, "9999_future")
    assert info.value.path == "revision"


def test_database_from_a_newer_budcore_is_refused(new_database: Callable[[], str]) -> None:
    url = new_database()
    upgrade(url)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            version = sa.table(VERSION_TABLE, sa.column("version_num"))
            conn.execute(sa.update(version).values(version_num="0099_future"))
    finally:
        engine.dispose()
    with pytest.raises(SchemaVersionError, match="does not know"):
        check_schema(url)
    with pytest.raises(SchemaVersionError):
        PostgresJobStore(url)


def test_empty_database_is_refused_with_the_command_to_run(new_database: Callable[[], str]) -> None:
    url = new_database()
    with pytest.raises(SchemaVersionError, match=r"no budcore schema.*budcore db upgrade"):
        PostgresJobStore(url)


def test_unreachable_database_raises_database_unavailable(pg_server: TemporaryPostgres) -> None:
    gone = f"postgresql://budcore:secret@/x?host={pg_server.socket_dir}/missing&port=5432"
    with pytest.raises(DatabaseUnavailableError) as info:
        PostgresJobStore(gone)
    assert "secret" not in str(info.value)
    assert "***" in str(info.value)
    with pytest.raises(DatabaseUnavailableError):
        current_revision(gone)
    with pytest.raises(DatabaseUnavailableError):
        PostgresJobStore(pg_server.url("no_such_database"))


def test_url_comes_from_the_environment(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_URL, pg_url.replace("postgresql+psycopg://", "postgresql://", 1))
    assert resolve_url(None).drivername == "postgresql+psycopg"
    store = PostgresJobStore()
    try:
        assert store.count(None) >= 0
        assert store.engine.url.database == resolve_url(pg_url).database
    finally:
        store.close()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "BUDCORE_DATABASE_URL"),
        ("   ", "BUDCORE_DATABASE_URL"),
        ("mysql://x/y", "driver"),
        ("::", "malformed"),
    ],
)
def test_bad_urls_are_validation_errors(
    value: str | None, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    with pytest.raises(ValidationError, match=message) as info:
        resolve_url(value)
    assert info.value.path == "database_url"


def test_module_command_line_manages_the_schema(
    new_database: Callable[[], str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = new_database()
    assert cli_main(["check", "--url", url]) == 1
    assert "no budcore schema" in capsys.readouterr().err
    assert cli_main(["upgrade", "--url", url, "--revision", "0001_initial"]) == 0
    assert capsys.readouterr().out.strip() == "at revision 0001_initial"
    monkeypatch.setenv(ENV_URL, url)
    assert cli_main(["upgrade"]) == 0
    assert cli_main(["current"]) == 0
    assert cli_main(["check"]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == [head_revision(), f"ok: at head {head_revision()}"]
    assert cli_main(["downgrade", "--revision", "base"]) == 1
    assert "pass --yes to confirm" in capsys.readouterr().err
    assert cli_main(["downgrade", "--revision", "base", "--yes"]) == 0
    assert capsys.readouterr().out.strip() == "at revision base"
