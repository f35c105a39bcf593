"""The admission ledger conformance kit, unchanged, against PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("sqlalchemy")

import sqlalchemy as sa
from budcore_adapters.postgres import (
    LocalQueueMismatchError,
    PostgresAdmissionLedger,
    PostgresJobStore,
    create_engine,
)
from budcore_adapters.postgres.schema import (
    jobs,
    leases,
    local_queues,
    outbox,
    quota_reservations,
    quota_usage,
)
from sqlalchemy.engine import Engine

from budcore.domain.job import JobStatus
from budcore.ports import AdmissionLeases, AdmissionLedger
from budcore.testing.ledger import AdmissionLedgerConformance, cluster_queue, queue_config

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    yield engine
    engine.dispose()


def empty_database(engine: Engine) -> None:
    """Delete every budcore row (children first), so each ledger starts empty."""
    with engine.begin() as conn:
        for table in (quota_reservations, leases, outbox, jobs, local_queues):
            conn.execute(sa.delete(table))
        conn.execute(sa.delete(quota_usage).where(quota_usage.c.parent.is_not(None)))
        conn.execute(sa.delete(quota_usage))


class TestPostgresAdmissionLedger(AdmissionLedgerConformance):
    # The property test's example count is the active hypothesis profile's (tests/conftest.py).
    @pytest.fixture(autouse=True)
    def _bind(self, engine: Engine) -> None:
        self.engine = engine

    def make_ledger(self) -> AdmissionLedger:
        empty_database(self.engine)
        return PostgresAdmissionLedger(PostgresJobStore(engine=self.engine, check_schema=False))

    def test_is_both_ports(self) -> None:
        ledger = self.make_ledger()
        assert isinstance(ledger, AdmissionLedger) and isinstance(ledger, AdmissionLeases)

    def test_the_older_admit_is_isolated_too(self) -> None:
        """``admit(cohorts=...)``, the flat way of capping a cohort, checks the LocalQueue as well."""
        ledger = self.configured(
            queue_config(
                [cluster_queue("cq-a", f1=(4, None, None)), cluster_queue("cq-c", f1=(4, None, None))]
            )
        )
        assert isinstance(ledger, PostgresAdmissionLedger)
        job = self.queued(ledger, 1, "cq-a")
        before = ledger.balances()
        with pytest.raises(LocalQueueMismatchError):
            ledger.admit(
                job, cluster_queue="cq-c", flavors={"nvidia.com/gpu": "f1"}, now=self.now(), cohorts=[]
            )
        self.assert_nothing_written(ledger, job, before, "charged to cq-c")
        assert ledger.lease(job.tenant, job.id) is None
        admitted = ledger.admit(job, cluster_queue="cq-a", flavors={"nvidia.com/gpu": "f1"}, now=self.now())
        assert admitted.job.status is JobStatus.ADMITTED and admitted.lease.job_id == job.id


def test_require_local_queue_checks_even_without_local_queues(engine: Engine) -> None:
    kit = TestPostgresAdmissionLedger()
    kit.engine = engine
    config = queue_config([cluster_queue("cq-a", f1=(4, None, None))], local_queues=[])
    open_ledger = kit.configured(config)
    job = kit.queued(open_ledger, 1, "cq-a")
    assert kit.reserve(open_ledger, job, "cq-a").status is JobStatus.ADMITTED  # nothing to check against
    assert isinstance(open_ledger, PostgresAdmissionLedger)
    strict = PostgresAdmissionLedger(open_ledger.store, require_local_queue=True)
    job = kit.queued(strict, 1, "cq-a")
    with pytest.raises(LocalQueueMismatchError):
        kit.reserve(strict, job, "cq-a")
