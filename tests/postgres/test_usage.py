"""Metering from real admissions: ``budcore_usage`` rows opened and closed with the quota they meter.

- the admitting transaction opens one row per (flavor, resource) the job is charged, and a failed
  admission leaves none (one transaction);
- every way a job stops holding quota (release, completion through the store, lease-expiry
  requeue) closes its rows at the transition's time;
- in a cohort, the part above the ClusterQueue's nominal quota is borrowed and attributed to the
  lenders by the core chargeback rule (:func:`budcore.cost.chargeback.lenders_at`);
- revision 0007 adds the table and downgrading removes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytest.importorskip("sqlalchemy")

import sqlalchemy as sa
from budcore_adapters.postgres import (
    LeasePolicy,
    LocalQueueMismatchError,
    PoolSettings,
    PostgresAdmissionLedger,
    PostgresJobStore,
    QuotaUnavailableError,
    create_engine,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from budcore_adapters.postgres.schema import (
    jobs,
    leases,
    local_queues,
    outbox,
    quota_reservations,
    quota_usage,
    usage,
)
from budcore_adapters.postgres.usage import apportion_devices, mode_of

from budcore.config import loads_queue_config
from budcore.cost.chargeback import lenders_at
from budcore.domain.ids import TenantId
from budcore.domain.job import Job, JobStatus, ResourceRequest
from budcore.domain.lifecycle import transition
from budcore.domain.resources import NVIDIA_GPU
from budcore.scheduling import Scheduler
from budcore.scheduling.queues import (
    ClusterQueue,
    Cohort,
    FlavorQuotas,
    QueueConfig,
    ResourceGroup,
    ResourceQuota,
)
from budcore.scheduling.quota import QuotaTree, QuotaUsage

pytestmark = pytest.mark.postgres

ACME = TenantId("acme")
T0 = datetime(2030, 1, 1, tzinfo=UTC)
GPU = 1000  # milli-units per GPU
FLAVORS = {"cpu": "default", "memory": "default", NVIDIA_GPU: "h100"}


def empty(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for table in (usage, quota_reservations, leases, outbox, jobs):
            conn.execute(sa.delete(table))
        conn.execute(sa.delete(quota_usage).where(quota_usage.c.parent.is_not(None)))
        conn.execute(sa.delete(quota_usage))


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresJobStore]:
    s = PostgresJobStore(pg_url, pool=PoolSettings(size=4), lease=LeasePolicy(holder="replica-a"))
    empty(s.engine)
    yield s
    s.close()


@pytest.fixture
def ledger(store: PostgresJobStore) -> PostgresAdmissionLedger:
    ledger = PostgresAdmissionLedger(store)
    ledger.set_quota("team-a", "h100", NVIDIA_GPU, 8 * GPU)
    ledger.set_quota("team-a", "default", "cpu", 64_000)
    ledger.set_quota("team-a", "default", "memory", 512 * 2**30 * 1000)
    return ledger


def queued(store: PostgresJobStore, request: ResourceRequest, *, name: str = "train", **extra: Any) -> Job:
    job = store.create(Job(name=name, tenant=ACME, request=request, created_at=T0, updated_at=T0, **extra))
    new, event = transition(job, JobStatus.QUEUED, now=T0)
    return store.update(new, events=[event])


def gpus(n: int, **kwargs: Any) -> ResourceRequest:
    return ResourceRequest.single(gpus=n, cpu=0, memory=0, **kwargs)


def rows(store: PostgresJobStore, job_id: str | None = None) -> list[dict[str, Any]]:
    stmt = sa.select(usage).order_by(usage.c.id)
    if job_id is not None:
        stmt = stmt.where(usage.c.job_id == job_id)
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def brief(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        row["cluster_queue"],
        row["flavor"],
        row["resource"],
        row["amount"],
        row["borrowed"],
        row["lenders"],
    )


# Opened with the admission ----------------------------------------------------------------------
def test_admission_opens_one_usage_row_per_charged_flavor_and_resource(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    job = queued(store, ResourceRequest.single(gpus=4, cpu=8, memory="32Gi"))
    now = T0 + timedelta(minutes=1)
    ledger.admit(job, cluster_queue="team-a", flavors=FLAVORS, now=now)
    got = rows(store, job.id)
    assert [(r["resource"], r["flavor"], r["amount"], r["accelerator"]) for r in got] == [
        ("cpu", "default", 8_000, None),
        ("memory", "default", 32 * 2**30 * 1000, None),
        (NVIDIA_GPU, "h100", 4 * GPU, "h100"),  # no accelerator_type: the flavor names it
    ]
    for r in got:
        assert (r["tenant"], r["job_id"], r["cluster_queue"]) == (ACME, job.id, "team-a")
        assert (r["start_at"], r["end_at"]) == (now, None)
        assert (r["borrowed"], r["lenders"], r["mode"], r["priority"]) == (0, {}, "exclusive", "normal")


def test_the_jobs_accelerator_type_names_what_is_priced(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    job = queued(store, gpus(2, accelerator_type="nvidia-h100-80gb"))
    ledger.admit(job, cluster_queue="team-a", flavors={NVIDIA_GPU: "h100"}, now=T0)
    assert [(r["resource"], r["accelerator"]) for r in rows(store, job.id)] == [
        (NVIDIA_GPU, "nvidia-h100-80gb")
    ]


def test_a_failed_admission_leaves_no_usage_row(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    too_big = queued(store, gpus(9))
    with pytest.raises(QuotaUnavailableError):
        ledger.admit(too_big, cluster_queue="team-a", flavors={NVIDIA_GPU: "h100"}, now=T0)
    assert rows(store) == []
    assert store.get(ACME, too_big.id).status is JobStatus.QUEUED
    # Refused after the quota was locked and checked: the LocalQueue isolation check.
    strict = PostgresAdmissionLedger(store, require_local_queue=True)
    fits = queued(store, gpus(1), name="fits")
    with pytest.raises(LocalQueueMismatchError):
        strict.admit(fits, cluster_queue="team-a", flavors={NVIDIA_GPU: "h100"}, now=T0)
    assert rows(store) == []


# Closed with the release ------------------------------------------------------------------------
def test_release_closes_the_rows_at_the_release_time(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    job = queued(store, gpus(2))
    admitted = ledger.admit(job, cluster_queue="team-a", flavors={NVIDIA_GPU: "h100"}, now=T0).job
    released_at = T0 + timedelta(minutes=20)
    ledger.release(admitted, now=released_at, reason="evicted")
    assert [(r["start_at"], r["end_at"]) for r in rows(store, job.id)] == [(T0, released_at)]


def test_running_keeps_the_row_open_and_completion_through_the_store_closes_it(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    job = queued(store, gpus(2))
    admitted = ledger.admit(job, cluster_queue="team-a", flavors={NVIDIA_GPU: "h100"}, now=T0).job
    running, event = transition(admitted, JobStatus.RUNNING, now=T0 + timedelta(minutes=1))
    running = store.update(running, events=[event])
    assert [r["end_at"] for r in rows(store, job.id)] == [None]
    done_at = T0 + timedelta(hours=2)
    done, event = transition(running, JobStatus.COMPLETED, now=done_at)
    store.update(done, events=[event])
    assert [(r["start_at"], r["end_at"]) for r in rows(store, job.id)] == [(T0, done_at)]


def test_lease_expiry_requeue_closes_the_rows_and_a_readmission_opens_new_ones(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    job = queued(store, gpus(3))
    ledger.admit(job, cluster_queue="team-a", flavors={NVIDIA_GPU: "h100"}, now=T0)
    expired_at = T0 + timedelta(seconds=31)  # the lease is 30 s
    [requeued] = ledger.reconcile(expired_at)
    assert requeued.status is JobStatus.QUEUED
    assert [(r["start_at"], r["end_at"]) for r in rows(store, job.id)] == [(T0, expired_at)]
    again = T0 + timedelta(minutes=5)
    ledger.admit(requeued, cluster_queue="team-a", flavors={NVIDIA_GPU: "h100"}, now=again)
    assert [(r["start_at"], r["end_at"]) for r in rows(store, job.id)] == [(T0, expired_at), (again, None)]


def test_a_release_stamped_before_the_admission_closes_at_the_start(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    """A replica whose clock is behind the admitting one's cannot make a negative interval."""
    job = queued(store, gpus(1))
    admitted = ledger.admit(
        job, cluster_queue="team-a", flavors={NVIDIA_GPU: "h100"}, now=T0 + timedelta(hours=1)
    ).job
    ledger.release(admitted, now=T0 + timedelta(minutes=59))
    assert [(r["start_at"], r["end_at"]) for r in rows(store, job.id)] == [(T0 + timedelta(hours=1),) * 2]


# Borrowed usage and its lenders -------------------------------------------------------------------
def gpu_queue(name: str, cohort: str, nominal: int, lending: int | None = None) -> ClusterQueue:
    return ClusterQueue(
        name=name,
        cohort=cohort,
        resource_groups=(
            ResourceGroup(
                covered_resources=(NVIDIA_GPU,),
                flavors=(
                    FlavorQuotas(
                        name="h100",
                        resources=(
                            ResourceQuota(
                                name=NVIDIA_GPU,
                                nominal_quota=nominal * GPU,
                                lending_limit=None if lending is None else lending * GPU,
                            ),
                        ),
                    ),
                ),
            ),
        ),
    )


def own_quota(name: str, nominal: int) -> Cohort:
    return Cohort(
        name=name,
        resource_groups=(
            ResourceGroup(
                covered_resources=(NVIDIA_GPU,),
                flavors=(
                    FlavorQuotas(
                        name="h100", resources=(ResourceQuota(name=NVIDIA_GPU, nominal_quota=nominal * GPU),)
                    ),
                ),
            ),
        ),
    )


def admit(ledger: PostgresAdmissionLedger, store: PostgresJobStore, cq: str, n: int, name: str) -> Job:
    job = queued(store, gpus(n), name=name)
    return ledger.admit(job, cluster_queue=cq, flavors={NVIDIA_GPU: "h100"}, now=T0).job


def test_two_queue_cohort_borrowing_is_attributed_to_the_lender(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    ledger.sync_cluster_queues([gpu_queue("a", "co", 4), gpu_queue("b", "co", 4)])
    within = admit(ledger, store, "a", 3, "within")
    straddles = admit(ledger, store, "a", 3, "straddles")  # 3 -> 6 of a's nominal 4: 2 borrowed
    b_job = admit(ledger, store, "b", 1, "b-own")  # b now uses 1 of its 4
    more = admit(ledger, store, "a", 1, "more")  # 6 -> 7: all borrowed, from b's unused 3
    assert [brief(r) for r in rows(store)] == [
        ("a", "h100", NVIDIA_GPU, 3 * GPU, 0, {}),
        ("a", "h100", NVIDIA_GPU, 3 * GPU, 2 * GPU, {"b": 2 * GPU}),
        ("b", "h100", NVIDIA_GPU, 1 * GPU, 0, {}),
        ("a", "h100", NVIDIA_GPU, 1 * GPU, 1 * GPU, {"b": 1 * GPU}),
    ]
    assert [r["job_id"] for r in rows(store)] == [within.id, straddles.id, b_job.id, more.id]


def test_lenders_split_by_unused_lendable_quota_then_the_cohorts_own(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    """a borrows 6 in cohort co (own 2): b can lend 2 (lendingLimit), c its unused 2, co the rest."""
    ledger.sync_cluster_queues(
        [gpu_queue("a", "co", 4), gpu_queue("b", "co", 4, lending=2), gpu_queue("c", "co", 2)],
        [own_quota("co", 2)],
    )
    job = admit(ledger, store, "a", 10, "big")
    [row] = rows(store, job.id)
    assert brief(row) == (
        "a",
        "h100",
        NVIDIA_GPU,
        10 * GPU,
        6 * GPU,
        {"b": 2 * GPU, "c": 2 * GPU, "cohort:co": 2 * GPU},
    )


def test_the_ledger_attributes_exactly_what_the_core_rule_does(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    """The same configuration and usage through the core's own tree give the stored lenders."""
    queues = [gpu_queue("a", "co", 1), gpu_queue("b", "co", 1), gpu_queue("c", "co", 3, lending=2)]
    ledger.sync_cluster_queues(queues)
    admit(ledger, store, "c", 2, "c-own")
    job = admit(ledger, store, "a", 3, "borrower")
    tree = QuotaTree(QueueConfig(cluster_queues={q.name: q for q in queues}))
    before = QuotaUsage(tree)
    before.add("c", {("h100", NVIDIA_GPU): 2 * GPU})
    expected = lenders_at(tree, before, "a", ("h100", NVIDIA_GPU), 3 * GPU)
    [row] = rows(store, job.id)
    assert row["lenders"] == expected == {"b": 1000, "c": 1000}
    assert row["borrowed"] == 2 * GPU


def test_a_queue_without_a_cohort_never_borrows(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    job = admit(ledger, store, "team-a", 8, "all-of-it")
    assert [brief(r) for r in rows(store, job.id)] == [("team-a", "h100", NVIDIA_GPU, 8 * GPU, 0, {})]


COHORT_CONFIG = """
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: h100}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: a}
spec:
  cohortName: co
  namespaceSelector: {}
  resourceGroups:
  - coveredResources: [nvidia.com/gpu]
    flavors: [{name: h100, resources: [{name: nvidia.com/gpu, nominalQuota: 2}]}]
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: b}
spec:
  cohortName: co
  namespaceSelector: {}
  resourceGroups:
  - coveredResources: [nvidia.com/gpu]
    flavors: [{name: h100, resources: [{name: nvidia.com/gpu, nominalQuota: 2}]}]
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: lq, namespace: acme}
spec: {clusterQueue: a}
"""


def test_reserve_meters_the_schedulers_decision(store: PostgresJobStore) -> None:
    """The Scheduler's Admit, applied with reserve, meters the same as admit."""
    config = loads_queue_config(COHORT_CONFIG)
    ledger = PostgresAdmissionLedger(store)
    ledger.sync(config)
    job = queued(store, gpus(3), local_queue="lq")
    scheduler = Scheduler(config)
    scheduler.submit(job)
    (decision,) = scheduler.cycle(T0).admitted
    ledger.reserve(job, decision, now=T0)
    assert [brief(r) for r in rows(store, job.id)] == [
        ("a", "h100", NVIDIA_GPU, 3 * GPU, 1 * GPU, {"b": 1 * GPU})
    ]


# Pure helpers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (3, [1000, 1000, 1000], [1, 1, 1]),
        (2, [1000, 500, 500], [1, 1, 0]),  # the tie goes to the earlier part
        (3, [0, 1500, 1500], [0, 2, 1]),
        (1, [0, 0], [0, 0]),
        (10, [4000, 2000, 2000, 2000], [4, 2, 2, 2]),
    ],
)
def test_devices_are_apportioned_exactly(total: int, weights: list[int], expected: list[int]) -> None:
    shares = apportion_devices(total, weights)
    assert shares == expected
    assert sum(shares) == (total if any(weights) else 0)


def test_mig_resources_are_metered_in_their_mode() -> None:
    assert mode_of("nvidia.com/mig-3g.40gb") == "mig-3g.40gb"
    assert mode_of("nvidia.com/mig-odd") == "exclusive"
    assert mode_of(NVIDIA_GPU) == "exclusive"


# Migration 0007 -----------------------------------------------------------------------------------
def test_0007_adds_the_usage_table_and_downgrading_removes_it(new_database: Callable[[], str]) -> None:
    url = new_database()
    upgrade(url, "0006_pipelines")
    upgrade(url)
    assert current_revision(url) == head_revision() == "0007_usage"
    engine = create_engine(url)
    try:
        inspector = sa.inspect(engine)
        assert "budcore_usage" in inspector.get_table_names()
        indexes = {i["name"]: i for i in inspector.get_indexes("budcore_usage")}
        assert indexes["ix_budcore_usage_tenant_start"]["column_names"] == ["tenant", "start_at"]
        assert indexes["ix_budcore_usage_open"]["column_names"] == ["tenant", "job_id"]
        assert "end_at IS NULL" in str(
            indexes["ix_budcore_usage_open"]["dialect_options"]["postgresql_where"]
        )
        with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
            conn.execute(
                sa.insert(usage).values(
                    tenant="t", job_id="j", cluster_queue="q", flavor="f", resource=NVIDIA_GPU,
                    amount=1000, borrowed=2000, priority="normal", start_at=T0,
                )
            )  # fmt: skip
    finally:
        engine.dispose()
    downgrade(url, "0006_pipelines")
    engine = create_engine(url)
    try:
        assert "budcore_usage" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


# Reported by `budcore cost report --store postgres` --------------------------------------------
def test_cost_report_reads_the_metered_admissions_from_postgres(
    store: PostgresJobStore,
    ledger: PostgresAdmissionLedger,
    pg_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two H100s admitted at T0 and released 90 minutes later: 3 GPU-hours at the default book's
    on-demand 5.00 is 15.00 for tenant acme, read from budcore_usage through the usage-log hook."""
    from budcore.cli import main

    with store.engine.begin() as conn:  # an earlier test's synced LocalQueues would isolate team-a
        conn.execute(sa.delete(local_queues))
    job = queued(store, gpus(2, accelerator_type="nvidia-h100-80gb"))
    admitted = ledger.admit(job, cluster_queue="team-a", flavors={NVIDIA_GPU: "h100"}, now=T0).job
    ledger.release(admitted, now=T0 + timedelta(minutes=90), reason="evicted")
    capsys.readouterr()
    window = ("--from", "2030-01-01", "--to", "2030-01-02", "--by", "tenant", "--format", "csv")
    assert main(["cost", "report", *window, "--url", pg_url]) == 0, capsys.readouterr().err
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("acme,3.0000,15.00,0.00,15.00,")
    assert lines[-1].startswith("(total),3.0000,")
