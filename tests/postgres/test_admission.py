"""Quota reservations, admission leases and reconciliation on the real database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("sqlalchemy")

import sqlalchemy as sa
from budcore_adapters.postgres import (
    LeaseLostError,
    LeasePolicy,
    PoolSettings,
    PostgresAdmissionLedger,
    PostgresJobStore,
    QuotaKey,
    QuotaUnavailableError,
    cohort_scope,
)
from budcore_adapters.postgres.schema import jobs, leases, outbox, quota_reservations, quota_usage

from budcore.domain.errors import ConflictError, NotFoundError, ValidationError
from budcore.domain.ids import TenantId
from budcore.domain.job import Job, JobStatus, ResourceRequest
from budcore.domain.lifecycle import transition
from budcore.domain.resources import NVIDIA_GPU
from budcore.scheduling.queues import ClusterQueue, FlavorQuotas, ResourceGroup, ResourceQuota

pytestmark = pytest.mark.postgres

ACME = TenantId("acme")
T0 = datetime(2030, 1, 1, tzinfo=UTC)
GPU_FLAVORS = {"cpu": "default", "memory": "default", NVIDIA_GPU: "h100"}


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresJobStore]:
    s = PostgresJobStore(pg_url, pool=PoolSettings(size=8), lease=LeasePolicy(holder="replica-a"))
    with s.engine.begin() as conn:
        for table in (quota_reservations, leases, outbox, quota_usage, jobs):
            conn.execute(sa.delete(table))
    yield s
    s.close()


@pytest.fixture
def ledger(store: PostgresJobStore) -> PostgresAdmissionLedger:
    ledger = PostgresAdmissionLedger(store)
    ledger.set_quota("team-a", "h100", NVIDIA_GPU, 8_000)
    ledger.set_quota("team-a", "default", "cpu", 64_000)
    ledger.set_quota("team-a", "default", "memory", 512 * 2**30 * 1000)
    return ledger


def queued(store: PostgresJobStore, gpus: int = 4, name: str = "train") -> Job:
    job = store.create(
        Job(name=name, tenant=ACME, request=ResourceRequest.single(gpus=gpus, cpu=8, memory="32Gi"),
            created_at=T0, updated_at=T0)
    )  # fmt: skip
    new, event = transition(job, JobStatus.QUEUED, now=T0)
    return store.update(new, events=[event])


def used(ledger: PostgresAdmissionLedger) -> dict[QuotaKey, int]:
    return {u.key: u.used for u in ledger.usage()}


def test_admit_reserves_the_request_and_grants_a_lease(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    job = queued(store)
    now = T0 + timedelta(minutes=1)
    admission = ledger.admit(job, cluster_queue="team-a", flavors=GPU_FLAVORS, now=now, reason="fits")
    assert admission.job.status is JobStatus.ADMITTED
    assert admission.job.version == job.version + 1
    assert admission.job.admitted_at == now
    assert store.get(ACME, job.id) == admission.job
    gpu = QuotaKey("team-a", "h100", NVIDIA_GPU)
    assert admission.reserved[gpu] == 4_000
    assert used(ledger)[gpu] == 4_000
    assert ledger.reservations(ACME, job.id) == dict(admission.reserved)
    assert admission.lease.holder == "replica-a"
    assert admission.lease.expires_at == now + timedelta(seconds=30)
    assert admission.lease.renew_by == now + timedelta(seconds=25)
    assert store.recorded_events()[-1].to_status is JobStatus.ADMITTED


def test_admission_that_does_not_fit_writes_nothing(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    first, second = queued(store, gpus=6, name="a"), queued(store, gpus=4, name="b")
    ledger.admit(first, cluster_queue="team-a", flavors=GPU_FLAVORS, now=T0)
    events_before = store.recorded_events()
    with pytest.raises(QuotaUnavailableError) as info:
        ledger.admit(second, cluster_queue="team-a", flavors=GPU_FLAVORS, now=T0)
    assert (info.value.resource, info.value.requested, info.value.free) == (NVIDIA_GPU, 4_000, 2_000)
    assert store.get(ACME, second.id) == second  # still queued, same version
    assert ledger.reservations(ACME, second.id) == {}
    assert ledger.lease(ACME, second.id) is None
    assert store.recorded_events() == events_before
    assert used(ledger)[QuotaKey("team-a", "h100", NVIDIA_GPU)] == 6_000


@pytest.mark.parametrize(
    "end", [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.PREEMPTED, JobStatus.CANCELLED]
)
def test_leaving_a_quota_holding_state_gives_the_quota_back(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger, end: JobStatus
) -> None:
    job = ledger.admit(queued(store), cluster_queue="team-a", flavors=GPU_FLAVORS, now=T0).job
    running, event = transition(job, JobStatus.RUNNING, now=T0 + timedelta(seconds=5))
    job = store.update(running, events=[event])
    assert ledger.lease(ACME, job.id) is None  # started: the lease has done its job
    assert used(ledger)[QuotaKey("team-a", "h100", NVIDIA_GPU)] == 4_000
    finished, event = transition(job, end, now=T0 + timedelta(seconds=9))
    store.update(finished, events=[event])
    assert set(used(ledger).values()) == {0}
    assert ledger.reservations(ACME, job.id) == {}


def test_stale_admission_is_a_conflict_and_reserves_nothing(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    job = queued(store)
    store.update(job.with_changes(labels={"touched": "yes"}))
    with pytest.raises(ConflictError):
        ledger.admit(job, cluster_queue="team-a", flavors=GPU_FLAVORS, now=T0)
    assert set(used(ledger).values()) == {0}


def test_flavor_assignment_must_cover_exactly_the_request(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    job = queued(store)
    with pytest.raises(ValidationError) as info:
        ledger.admit(job, cluster_queue="team-a", flavors={"cpu": "default", "memory": "default"}, now=T0)
    assert info.value.path == f"flavors.{NVIDIA_GPU}"
    with pytest.raises(ValidationError) as info:
        ledger.admit(job, cluster_queue="team-a", flavors={**GPU_FLAVORS, "amd.com/gpu": "mi300"}, now=T0)
    assert info.value.path == "flavors.amd.com/gpu"
    with pytest.raises(NotFoundError):
        ledger.admit(job, cluster_queue="team-b", flavors=GPU_FLAVORS, now=T0)
    assert store.get(ACME, job.id) == job


def test_cohort_scope_caps_borrowing_atomically(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    ledger.set_quota("team-a", "h100", NVIDIA_GPU, 16_000)  # nominal + borrowing limit
    ledger.set_quota("team-b", "h100", NVIDIA_GPU, 16_000)
    for cq in ("team-b", cohort_scope("research")):
        ledger.set_quota(cq, "default", "cpu", 64_000)
        ledger.set_quota(cq, "default", "memory", 512 * 2**30 * 1000)
    ledger.set_quota(cohort_scope("research"), "h100", NVIDIA_GPU, 12_000)  # the cohort's total
    a = ledger.admit(
        queued(store, gpus=8), cluster_queue="team-a", flavors=GPU_FLAVORS, now=T0, cohorts=["research"]
    )
    assert a.reserved[QuotaKey("cohort:research", "h100", NVIDIA_GPU)] == 8_000
    with pytest.raises(QuotaUnavailableError) as info:
        ledger.admit(
            queued(store, gpus=8), cluster_queue="team-b", flavors=GPU_FLAVORS, now=T0, cohorts=["research"]
        )
    assert info.value.cluster_queue == "cohort:research"
    ledger.admit(
        queued(store, gpus=4), cluster_queue="team-b", flavors=GPU_FLAVORS, now=T0, cohorts=["research"]
    )
    assert used(ledger)[QuotaKey("cohort:research", "h100", NVIDIA_GPU)] == 12_000


def test_quota_configuration(ledger: PostgresAdmissionLedger) -> None:
    row = ledger.set_quota("team-a", "h100", NVIDIA_GPU, 4_000)
    assert (row.quota, row.used, row.free) == (4_000, 0, 4_000)
    # Optimistic edits: the second administrator's stale write is refused, not lost.
    edited = ledger.set_quota("team-a", "h100", NVIDIA_GPU, 6_000, expected_version=row.version)
    assert (edited.quota, edited.version) == (6_000, row.version + 1)
    with pytest.raises(ConflictError):
        ledger.set_quota("team-a", "h100", NVIDIA_GPU, 2_000, expected_version=row.version)
    with pytest.raises(NotFoundError):
        ledger.set_quota("team-q", "h100", NVIDIA_GPU, 2_000, expected_version=1)
    assert [u.quota for u in ledger.usage("team-a") if u.key.flavor == "h100"] == [6_000]
    cq = ClusterQueue(
        name="team-z",
        resource_groups=(
            ResourceGroup(
                covered_resources=(NVIDIA_GPU,),
                flavors=(
                    FlavorQuotas(
                        name="a100", resources=(ResourceQuota(name=NVIDIA_GPU, nominal_quota=2_000),)
                    ),
                ),
            ),
        ),
    )
    assert [u.quota for u in ledger.sync_cluster_queues([cq])] == [2_000]
    assert [u.key for u in ledger.usage("team-z")] == [QuotaKey("team-z", "a100", NVIDIA_GPU)]
    for field, args in [
        ("quota", ("q", "f", "r", -1)),
        ("quota", ("q", "f", "r", 1.5)),
        ("quota", ("q", "f", "r", 2**63)),
        ("flavor", ("q", "", "r", 1)),
    ]:
        with pytest.raises(ValidationError) as info:
            ledger.set_quota(*args)  # type: ignore[arg-type]
        assert info.value.path == field


def test_replicas_racing_for_the_last_quota_never_overspend(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    """Eight threads (own connections) admit 2-GPU jobs against 8 GPUs: exactly four win."""
    candidates = [queued(store, gpus=2, name=f"j{i}") for i in range(8)]
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(candidates))

    def replica(job: Job) -> None:
        barrier.wait()
        try:
            ledger.admit(job, cluster_queue="team-a", flavors=GPU_FLAVORS, now=T0)
            outcome = "admitted"
        except QuotaUnavailableError:
            outcome = "no quota"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=replica, args=(j,)) for j in candidates]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["admitted"] * 4 + ["no quota"] * 4
    assert used(ledger)[QuotaKey("team-a", "h100", NVIDIA_GPU)] == 8_000


def test_lease_renewal(store: PostgresJobStore, ledger: PostgresAdmissionLedger) -> None:
    job = ledger.admit(queued(store), cluster_queue="team-a", flavors=GPU_FLAVORS, now=T0).job
    renewed = ledger.renew(ACME, job.id, now=T0 + timedelta(seconds=20))
    assert renewed.expires_at == T0 + timedelta(seconds=50)
    assert renewed.renew_by == T0 + timedelta(seconds=45)
    other = PostgresAdmissionLedger(
        PostgresJobStore(engine=store.engine, lease=LeasePolicy(holder="replica-b"))
    )
    with pytest.raises(LeaseLostError, match="held by 'replica-a'"):
        other.renew(ACME, job.id, now=T0 + timedelta(seconds=21))
    with pytest.raises(LeaseLostError, match="expired"):
        ledger.renew(ACME, job.id, now=T0 + timedelta(seconds=50))
    assert ledger.reconcile(T0 + timedelta(seconds=49)) == []


def test_reconcile_requeues_expired_admissions_and_releases_quota(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    stuck = ledger.admit(queued(store, name="stuck"), cluster_queue="team-a", flavors=GPU_FLAVORS, now=T0).job
    started = ledger.admit(
        queued(store, name="started"), cluster_queue="team-a", flavors=GPU_FLAVORS, now=T0
    ).job
    running, event = transition(started, JobStatus.RUNNING, now=T0 + timedelta(seconds=2))
    store.update(running, events=[event])
    assert ledger.reconcile(T0 + timedelta(seconds=29)) == []  # not expired yet
    requeued = ledger.reconcile(T0 + timedelta(seconds=31))
    assert [j.id for j in requeued] == [stuck.id]
    assert requeued[0].status is JobStatus.QUEUED and requeued[0].admitted_at is None
    assert store.get(ACME, stuck.id) == requeued[0]
    assert ledger.lease(ACME, stuck.id) is None
    assert ledger.reservations(ACME, stuck.id) == {}
    assert used(ledger)[QuotaKey("team-a", "h100", NVIDIA_GPU)] == 4_000  # the running one's
    last = store.recorded_events()[-1]
    assert (last.from_status, last.to_status, last.version) == (
        JobStatus.ADMITTED,
        JobStatus.QUEUED,
        stuck.version + 1,
    )
    assert "lease expired" in last.reason
    assert ledger.reconcile(T0 + timedelta(hours=1)) == []  # idempotent
    with pytest.raises(LeaseLostError, match="no admission lease"):
        ledger.renew(ACME, stuck.id, now=T0 + timedelta(seconds=32))


def test_concurrent_reconcilers_requeue_each_job_once(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    ledger.set_quota("team-a", "h100", NVIDIA_GPU, 64_000)
    ledger.set_quota("team-a", "default", "cpu", 256_000)
    for i in range(12):
        ledger.admit(queued(store, gpus=1, name=f"r{i}"), cluster_queue="team-a", flavors=GPU_FLAVORS, now=T0)
    results: list[list[Job]] = []
    lock = threading.Lock()

    def reconciler() -> None:
        done = ledger.reconcile(T0 + timedelta(minutes=5))
        with lock:
            results.append(done)

    threads = [threading.Thread(target=reconciler) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    requeued = [j.id for r in results for j in r]
    assert len(requeued) == len(set(requeued)) == 12
    assert set(used(ledger).values()) == {0}


def test_lease_policy_validation() -> None:
    with pytest.raises(ValidationError) as info:
        LeasePolicy(duration=timedelta(seconds=30), renew_within=timedelta(seconds=30))
    assert info.value.path == "lease.renew_within"
    with pytest.raises(ValidationError) as info:
        LeasePolicy(duration=timedelta(0))
    assert info.value.path == "lease.duration"
    assert LeasePolicy().holder  # defaults to host:pid
