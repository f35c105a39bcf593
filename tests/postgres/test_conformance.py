"""The shared JobStore conformance kit, unchanged, against PostgreSQL (and via the plugin name)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("sqlalchemy")

import sqlalchemy as sa
from budcore_adapters.postgres import PostgresJobStore, create_engine
from budcore_adapters.postgres import plugin as postgres_plugin
from budcore_adapters.postgres.schema import (
    jobs,
    leases,
    outbox,
    quota_reservations,
    quota_usage,
)
from sqlalchemy.engine import Engine

from budcore.domain.events import DomainEvent
from budcore.domain.ids import TenantId
from budcore.domain.job import Job
from budcore.plugins import PluginRegistry
from budcore.ports import EventSink, JobStore
from budcore.testing.conformance import JobStoreConformance
from budcore.testing.fakes import RecordingEventSink

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    yield engine
    engine.dispose()


def empty_database(engine: Engine) -> None:
    """Delete every budcore row (children first), so each store starts empty."""
    with engine.begin() as conn:
        for table in (quota_reservations, leases, outbox, quota_usage, jobs):
            conn.execute(sa.delete(table))


class TestPostgresJobStore(JobStoreConformance):
    # Each example empties five tables and runs up to 25 writes against the real server.
    hypothesis_max_examples = 30

    @pytest.fixture(autouse=True)
    def _bind(self, engine: Engine) -> None:
        self.engine = engine

    def make_store(self, events: EventSink) -> JobStore:
        empty_database(self.engine)
        return PostgresJobStore(engine=self.engine, check_schema=False)

    def collect_events(self, store: JobStore, sink: RecordingEventSink) -> list[DomainEvent]:
        assert isinstance(store, PostgresJobStore)
        return store.recorded_events()


def test_plugin_registers_the_store_as_postgres(pg_url: str) -> None:
    """A fresh registry with the adapter's plugin module resolves ``postgres`` to this store."""
    registry = PluginRegistry(load_entry_points=False)
    registry.register(postgres_plugin, origin="budcore_adapters.postgres.plugin")
    assert registry.names("job_store") == ["postgres"]
    assert registry.resolve("job_store", "postgres").origin == "budcore_adapters.postgres.plugin"
    store = registry.job_store("postgres", url=pg_url)
    assert isinstance(store, PostgresJobStore)
    try:
        job = store.create(Job(name="via plugin", tenant=TenantId("plugin-tenant")))
        assert store.get(TenantId("plugin-tenant"), job.id) == job
    finally:
        store.close()
