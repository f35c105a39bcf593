"""The PostgreSQL ledger decides with the core's quota arithmetic, whatever the stored rows hold.

- the derived columns (a cohort row's subtree ``quota``) are not what decisions are made on: the
  core tree is built from each row's own configuration;
- reservations made directly on a cohort row (``admit(cohorts=...)``) keep counting in that
  cohort once a synced tree gives it members, and are given back through the core as well;
- the LocalQueue mapping follows the configuration: a re-sync moves or removes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("sqlalchemy")

import sqlalchemy as sa
from budcore_adapters.postgres import (
    LocalQueueMismatchError,
    PostgresAdmissionLedger,
    PostgresJobStore,
    QuotaKey,
    QuotaUnavailableError,
)
from budcore_adapters.postgres.schema import (
    jobs,
    leases,
    local_queues,
    outbox,
    quota_reservations,
    quota_usage,
)

from budcore.domain.ids import TenantId
from budcore.domain.job import Job, JobStatus, PodSet, ResourceRequest
from budcore.domain.lifecycle import transition
from budcore.domain.resources import NVIDIA_GPU, ResourceVector
from budcore.scheduling.queues import LocalQueue
from budcore.testing.ledger import GPU, cluster_queue, queue_config

pytestmark = pytest.mark.postgres

T0 = datetime(2030, 1, 1, tzinfo=UTC)
FLAVORS = {NVIDIA_GPU: "f1"}


@pytest.fixture
def ledger(pg_url: str) -> Iterator[PostgresAdmissionLedger]:
    store = PostgresJobStore(pg_url)
    with store.engine.begin() as conn:
        for table in (quota_reservations, leases, outbox, jobs, local_queues):
            conn.execute(sa.delete(table))
        conn.execute(sa.delete(quota_usage).where(quota_usage.c.parent.is_not(None)))
        conn.execute(sa.delete(quota_usage))
    yield PostgresAdmissionLedger(store)
    store.close()


def queued(
    ledger: PostgresAdmissionLedger, gpus: int, tenant: str, name: str, local_queue: str = "lq"
) -> Job:
    request = ResourceRequest(
        pod_sets=(PodSet(name="main", resources=ResourceVector.of({NVIDIA_GPU: gpus})),)
    )
    job = ledger.store.create(
        Job(
            name=name,
            tenant=TenantId(tenant),
            local_queue=local_queue,
            request=request,
            created_at=T0,
            updated_at=T0,
        )
    )
    new, event = transition(job, JobStatus.QUEUED, now=T0)
    return ledger.store.update(new, events=[event])


def used(ledger: PostgresAdmissionLedger) -> dict[str, int]:
    return {str(u.key): u.used for u in ledger.usage() if u.used}


def test_a_stale_stored_subtree_quota_does_not_change_decisions(ledger: PostgresAdmissionLedger) -> None:
    config = queue_config(
        [cluster_queue("a", "co", f1=(2, 4, None)), cluster_queue("b", "co", f1=(6, None, None))]
    )
    ledger.sync(config)
    with ledger.store.engine.begin() as conn:  # a derived column gone wrong (a bug, a hand edit)
        conn.execute(
            sa.update(quota_usage).where(quota_usage.c.cluster_queue == "cohort:co").values(quota=100)
        )
    assert ledger.available("a", "f1", NVIDIA_GPU) == 6 * GPU  # 2 own + 4 borrowed of the cohort's 8
    ledger.admit(queued(ledger, 6, "ns-a", "big"), cluster_queue="a", flavors=FLAVORS, now=T0)
    cohort = {str(b.key): b for b in ledger.balances()}[f"cohort:co/f1/{NVIDIA_GPU}"]
    assert (cohort.quota, cohort.used, cohort.available) == (8 * GPU, 6 * GPU, 2 * GPU)
    ledger.sync(config)  # a sync stores the derived value again
    assert {str(r.key): r.quota for r in ledger.usage()}[f"cohort:co/f1/{NVIDIA_GPU}"] == 8 * GPU


def test_direct_cohort_reservations_keep_counting_once_the_cohort_has_members(
    ledger: PostgresAdmissionLedger,
) -> None:
    ledger.set_quota("flat", "f1", NVIDIA_GPU, 8 * GPU)
    ledger.set_quota("cohort:co", "f1", NVIDIA_GPU, 4 * GPU)
    old = ledger.admit(
        queued(ledger, 3, "ns-x", "old"), cluster_queue="flat", flavors=FLAVORS, cohorts=["co"], now=T0
    )
    assert old.reserved == {
        QuotaKey("flat", "f1", NVIDIA_GPU): 3 * GPU,
        QuotaKey("cohort:co", "f1", NVIDIA_GPU): 3 * GPU,
    }
    # The configuration now gives cohort co a member (and no quota of its own: the cohort holds 2).
    ledger.sync(queue_config([cluster_queue("b", "co", f1=(2, None, None))]), prune=False)
    assert used(ledger) == {f"cohort:co/f1/{NVIDIA_GPU}": 3 * GPU, f"flat/f1/{NVIDIA_GPU}": 3 * GPU}
    assert ledger.available("b", "f1", NVIDIA_GPU) == 0  # the old direct reservation fills the cohort
    job = queued(ledger, 1, "ns-b", "member")
    with pytest.raises(QuotaUnavailableError) as info:
        ledger.admit(job, cluster_queue="b", flavors=FLAVORS, now=T0)
    assert info.value.cluster_queue == "cohort:co"
    ledger.release(old.job, now=T0 + timedelta(seconds=1))
    assert used(ledger) == {}
    ledger.admit(job, cluster_queue="b", flavors=FLAVORS, now=T0)
    assert used(ledger) == {f"b/f1/{NVIDIA_GPU}": 1 * GPU, f"cohort:co/f1/{NVIDIA_GPU}": 1 * GPU}


def test_the_local_queue_mapping_follows_the_configuration(ledger: PostgresAdmissionLedger) -> None:
    queues = [cluster_queue("cq-a", f1=(4, None, None)), cluster_queue("cq-c", f1=(4, None, None))]
    ledger.sync(
        queue_config(queues, local_queues=[LocalQueue(name="lq", namespace="ns-a", cluster_queue="cq-a")])
    )
    job = queued(ledger, 1, "ns-a", "moved")
    with pytest.raises(LocalQueueMismatchError):
        ledger.admit(job, cluster_queue="cq-c", flavors=FLAVORS, now=T0)
    # The LocalQueue now leads to cq-c: the same job is admitted there, and no longer to cq-a.
    ledger.sync(
        queue_config(queues, local_queues=[LocalQueue(name="lq", namespace="ns-a", cluster_queue="cq-c")])
    )
    with pytest.raises(LocalQueueMismatchError):
        ledger.admit(job, cluster_queue="cq-a", flavors=FLAVORS, now=T0)
    assert ledger.admit(job, cluster_queue="cq-c", flavors=FLAVORS, now=T0).job.status is JobStatus.ADMITTED
    # sync_cluster_queues without local_queues leaves the mapping alone; an empty list clears it.
    ledger.sync_cluster_queues(queues)
    with ledger.store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(local_queues)).scalar() == 1
    ledger.sync_cluster_queues(queues, local_queues=[])
    with ledger.store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(local_queues)).scalar() == 0
