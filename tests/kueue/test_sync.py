"""The status reconciler: Kueue's conditions → budcore's lifecycle, through real watches on the
API-server double (bookmarks, dropped watches, 410 Gone, restarts, two replicas at once)."""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from budcore_adapters.inmemory.clock import ManualClock
from budcore_adapters.inmemory.events import CollectingEventSink
from budcore_adapters.inmemory.job_store import InMemoryJobStore
from budcore_adapters.kueue.client import JOBS, JOBSETS, NAMESPACES, KubeClient, KubeError, kueue_type
from budcore_adapters.kueue.submit import JOB_ID_LABEL, object_name, submit
from budcore_adapters.kueue.sync import (
    EVICTION_TARGETS,
    Backoff,
    Observation,
    StatusSync,
    eviction_target,
    observe,
    plan,
)
from kueue import apiserver
from kueue.apiserver import EVICTION_REASONS, FakeApiServer, KueueController

from budcore.domain.errors import BudcoreError, ValidationError
from budcore.domain.events import DomainEvent
from budcore.domain.job import Job, JobStatus, PodSet, ResourceRequest
from budcore.domain.lifecycle import can_transition
from budcore.ports.job_store import JobFilter
from budcore.service import JobService

S = JobStatus
FAST = Backoff(initial_s=0.01, max_s=0.2)


# -- observe / plan: the mapping as tables -------------------------------------------------------


def cond(kind: str, status: bool = True, reason: str = "", message: str = "") -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if status else "False",
        "reason": reason or kind,
        "message": message,
    }


def workload(*conditions: dict[str, Any], admission: bool = False) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": list(conditions)}
    if admission:
        status["admission"] = {"clusterQueue": "cq", "podSetAssignments": []}
    return {"kind": "Workload", "metadata": {"name": "wl", "namespace": "ns"}, "status": status}


def batch_job(*, suspend: bool = False, **status: Any) -> dict[str, Any]:
    return {
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "ns"},
        "spec": {"suspend": suspend},
        "status": status,
    }


ADMITTED_WL = workload(cond("QuotaReserved", message="Quota reserved in ClusterQueue cq"), cond("Admitted"))


def evicted_wl(reason: str, *, reserved: bool = False, requeued: bool | None = None) -> dict[str, Any]:
    conds = [cond("Evicted", reason=reason, message=f"evicted: {reason}"), cond("QuotaReserved", reserved)]
    if requeued is not None:
        conds.append(cond("Requeued", requeued, reason=reason))
    return workload(*conds)


@pytest.mark.parametrize(
    ("owner", "wl", "target"),
    [
        (batch_job(suspend=True), None, S.QUEUED),
        (batch_job(suspend=True), workload(cond("QuotaReserved", False, "Pending")), S.QUEUED),
        (batch_job(suspend=True), ADMITTED_WL, S.ADMITTED),
        (batch_job(suspend=False), ADMITTED_WL, S.ADMITTED),  # unsuspended, no pod yet
        (batch_job(active=2), ADMITTED_WL, S.RUNNING),
        (batch_job(startTime="2026-01-01T00:00:00Z"), ADMITTED_WL, S.RUNNING),
        (batch_job(active=1), None, S.RUNNING),  # Kueue unsuspends only admitted jobs
        (batch_job(suspend=False), None, S.ADMITTED),
        (batch_job(active=0, succeeded=3), workload(cond("Finished", reason="Succeeded")), S.COMPLETED),
        (batch_job(conditions=[cond("Complete")]), None, S.COMPLETED),
        (batch_job(conditions=[cond("Failed", message="BackoffLimitExceeded")]), ADMITTED_WL, S.FAILED),
        (batch_job(suspend=True), workload(cond("Finished", reason="Failed")), S.FAILED),
        (batch_job(suspend=True), evicted_wl("Preempted"), S.PREEMPTED),
        (batch_job(active=2), evicted_wl("Preempted", reserved=True), S.PREEMPTED),  # still stopping
        (batch_job(suspend=True), evicted_wl("PodsReadyTimeout"), S.QUEUED),
        (batch_job(suspend=True), evicted_wl("DeactivatedDueToRequeuingLimitExceeded"), S.FAILED),
        (
            {
                "kind": "JobSet",
                "spec": {"suspend": False},
                "status": {"replicatedJobsStatus": [{"active": 1}]},
            },
            ADMITTED_WL,
            S.RUNNING,
        ),
        (
            {"kind": "JobSet", "spec": {"suspend": False}, "status": {"conditions": [cond("Completed")]}},
            None,
            S.COMPLETED,
        ),
        (
            {"kind": "JobSet", "spec": {"suspend": False}, "status": {"conditions": [cond("Failed")]}},
            None,
            S.FAILED,
        ),
    ],
)
def test_observe(owner: dict[str, Any], wl: dict[str, Any] | None, target: JobStatus) -> None:
    assert observe(owner, wl).target is target


def test_observe_details() -> None:
    failed = observe(batch_job(failed=1, conditions=[cond("Failed", message="OOMKilled")]), None)
    assert (failed.target, failed.admitted, failed.ran) == (S.FAILED, True, True)
    assert "OOMKilled" in failed.reason
    never_started = observe(
        batch_job(suspend=True), workload(cond("Finished", reason="Failed", message="bad"))
    )
    assert (never_started.admitted, never_started.ran) == (False, False)
    # Kueue requeues a preempted workload in the same status write that releases the quota
    assert observe(None, evicted_wl("Preempted", reserved=True)).requeued is False
    assert observe(None, evicted_wl("Preempted")).requeued is True
    assert observe(None, evicted_wl("Preempted", requeued=True)).requeued is True
    assert observe(None, evicted_wl("Preempted", requeued=False)).requeued is False
    timeout = observe(None, evicted_wl("DeactivatedDueToMaximumExecutionTimeExceeded"))
    assert timeout.target is S.FAILED and dict(timeout.changes) == {"accumulated_runtime": timedelta(0)}
    deactivated = observe(None, evicted_wl("Deactivated"))
    assert "waits until reactivated" in deactivated.reason


# The eviction mapping: every reason Kueue documents (and the pre-0.10 spellings), from a job that was
# admitted but not running and from a running one. budcore has no running → queued edge, so a running
# job evicted back to the queue passes through preempted.
REQUEUE = {"from_admitted": [S.QUEUED], "from_running": [S.PREEMPTED, S.QUEUED]}
PREEMPT = {"from_admitted": [S.PREEMPTED, S.QUEUED], "from_running": [S.PREEMPTED, S.QUEUED]}
GIVE_UP = {"from_admitted": [S.FAILED], "from_running": [S.FAILED]}
EVICTION_TABLE = {
    "Preempted": PREEMPT,
    "PodsReadyTimeout": REQUEUE,
    "AdmissionCheck": REQUEUE,
    "ClusterQueueStopped": REQUEUE,
    "LocalQueueStopped": REQUEUE,
    "NodeFailures": REQUEUE,
    "Deactivated": REQUEUE,
    "InactiveWorkload": REQUEUE,
    "DeactivatedDueToRequeuingLimitExceeded": GIVE_UP,
    "DeactivatedDueToAdmissionCheck": GIVE_UP,
    "DeactivatedDueToMaximumExecutionTimeExceeded": GIVE_UP,
    "InactiveWorkloadRequeuingLimitExceeded": GIVE_UP,
    "InactiveWorkloadAdmissionCheck": GIVE_UP,
    "FlavorMigration": REQUEUE,  # not in the table: a requeuing eviction
}


def test_the_table_covers_every_reason_the_double_and_kueue_name() -> None:
    assert set(EVICTION_REASONS) <= set(EVICTION_TABLE)
    assert set(EVICTION_TARGETS) <= set(EVICTION_TABLE)
    assert eviction_target("SomethingNew") is S.QUEUED


@pytest.mark.parametrize("reason", sorted(EVICTION_TABLE))
def test_eviction_plan(reason: str) -> None:
    obs = observe(batch_job(suspend=True), evicted_wl(reason))
    assert [s for s, _ in plan(S.ADMITTED, obs)] == EVICTION_TABLE[reason]["from_admitted"]
    assert [s for s, _ in plan(S.RUNNING, obs)] == EVICTION_TABLE[reason]["from_running"]


OBSERVATIONS = [
    Observation(S.QUEUED, "pending"),
    Observation(S.QUEUED, "evicted", eviction="PodsReadyTimeout"),
    Observation(S.ADMITTED, "admitted", True),
    Observation(S.RUNNING, "running", True, True),
    Observation(S.COMPLETED, "done", True, True),
    Observation(S.FAILED, "failed", True, True),
    Observation(S.FAILED, "failed", True, False),
    Observation(S.FAILED, "rejected"),
    Observation(S.FAILED, "gave up", eviction="DeactivatedDueToRequeuingLimitExceeded"),
    Observation(S.PREEMPTED, "preempted", eviction="Preempted"),
    Observation(S.PREEMPTED, "preempted", eviction="Preempted", requeued=True),
]


@pytest.mark.parametrize("current", list(JobStatus))
@pytest.mark.parametrize("obs", OBSERVATIONS, ids=lambda o: f"{o.target.value}-{o.reason}-{o.requeued}")
def test_every_plan_is_a_legal_path_to_a_fixpoint(current: JobStatus, obs: Observation) -> None:
    steps = plan(current, obs)
    status = current
    for nxt, reason in steps:
        assert can_transition(status, nxt), f"{status} -> {nxt}"
        assert reason
        status = nxt
    assert plan(status, obs) == [], "a second look must change nothing (duplicate events are harmless)"
    if current in (S.COMPLETED, S.CANCELLED, S.FAILED):
        assert steps == []


def test_plans_walk_through_what_was_missed() -> None:
    done = Observation(S.COMPLETED, "done", True, True)
    assert [s for s, _ in plan(S.QUEUED, done)] == [S.ADMITTED, S.RUNNING, S.COMPLETED]
    assert [s for s, _ in plan(S.PENDING, done)] == [S.QUEUED, S.ADMITTED, S.RUNNING, S.COMPLETED]
    assert [s for s, _ in plan(S.PREEMPTED, done)] == [S.QUEUED, S.ADMITTED, S.RUNNING, S.COMPLETED]
    assert [s for s, _ in plan(S.QUEUED, Observation(S.FAILED, "x", True, True))] == [
        S.ADMITTED,
        S.RUNNING,
        S.FAILED,
    ]
    assert [s for s, _ in plan(S.QUEUED, Observation(S.FAILED, "x"))] == [S.FAILED]
    # never backwards on the chain without an eviction
    assert plan(S.RUNNING, Observation(S.ADMITTED, "late status", True)) == []
    assert plan(S.RUNNING, Observation(S.QUEUED, "pending")) == []


def test_backoff_grows_is_bounded_and_jittered() -> None:
    backoff = Backoff(initial_s=0.5, max_s=4.0, multiplier=2.0, jitter=0.5)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.delay(3, rand=0.999) == pytest.approx(1.001, abs=1e-3)
    assert backoff.delay(10_000) == 4.0
    with pytest.raises(ValidationError):
        Backoff(initial_s=0)
    with pytest.raises(ValidationError):
        Backoff(jitter=2)


# -- against the API-server double ---------------------------------------------------------------


def kref(job: Job) -> str:
    """How the scripted Kueue names a job's Kubernetes object: ``namespace/name``."""
    return f"{job.tenant}/{object_name(job)}"


def admit(ctl: KueueController, job: Job) -> None:
    """Admit once the scripted Kueue has seen the Job (it follows the store asynchronously)."""
    assert apiserver.wait_until(lambda: ctl.state(kref(job)) == "pending", 5), ctl.state(kref(job))
    ctl.admit(kref(job))


@dataclass
class Env:
    server: FakeApiServer
    client: KubeClient
    sink: CollectingEventSink
    store: InMemoryJobStore
    service: JobService
    syncs: list[StatusSync] = field(default_factory=list)
    controllers: list[KueueController] = field(default_factory=list)

    def job(self, i: int, *, tenant: str = "team-a", gpus: int = 1, **changes: Any) -> Job:
        """A budcore job submitted to budcore (queued) and to the cluster (a suspended Job)."""
        job = self.service.submit(
            Job(
                id=f"job-{i:05d}",
                name=f"job {i}",
                tenant=tenant,
                local_queue="lq",
                spec={"image": "busybox"},
                request=ResourceRequest.single(gpus=gpus, cpu=1, memory="1Gi"),
                **changes,
            )
        )
        submit(self.client, job)
        return job

    def sync(self, **options: Any) -> StatusSync:
        options.setdefault("backoff", FAST)
        sync = StatusSync(self.client, self.service, **options)
        self.syncs.append(sync)
        return sync

    def kueue(self, **options: Any) -> KueueController:
        ctl = KueueController(self.server, **options).start()
        self.controllers.append(ctl)
        return ctl

    def status(self, job: Job) -> JobStatus:
        return self.store.get(job.tenant, job.id).status

    def path(self, job: Job) -> list[JobStatus]:
        """The statuses the job went through, from its recorded events (one per transition)."""
        events = [e for e in self.sink.events if e.job_id == job.id]
        assert [e.version for e in events] == list(range(1, len(events) + 1)), "an event recorded twice"
        return [events[0].from_status, *(e.to_status for e in events)] if events else []

    def unfinished(self) -> int:
        return self.store.count(None) - self.store.count(None, JobFilter(statuses=frozenset({S.COMPLETED})))

    def reached(self, jobs: list[Job], status: JobStatus) -> Callable[[], bool]:
        return lambda: all(self.status(j) is status for j in jobs)


@pytest.fixture
def env() -> Iterator[Env]:
    with FakeApiServer(context="prod-east") as server:
        sink = CollectingEventSink()
        store = InMemoryJobStore(sink)
        service = JobService(store, ManualClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC)))
        client = server.client()
        environment = Env(server, client, sink, store, service)
        try:
            yield environment
        finally:
            for sync in environment.syncs:
                sync.stop()
            for ctl in environment.controllers:
                ctl.stop()
                assert ctl.errors == []
            client.close()


def test_admission_start_and_completion_each_recorded_once(env: Env) -> None:
    ctl = env.kueue(admit_after_s=None)
    job = env.job(1)
    sync = env.sync()
    assert not sync.run_until(lambda: env.status(job) is not S.QUEUED, 0.5)  # pending in Kueue
    admit(ctl, job)
    assert sync.run_until(env.reached([job], S.RUNNING), 5)
    ctl.finish(kref(job))
    assert sync.run_until(env.reached([job], S.COMPLETED), 5)
    assert env.path(job) == [S.PENDING, S.QUEUED, S.ADMITTED, S.RUNNING, S.COMPLETED]
    stored = env.store.get(job.tenant, job.id)
    assert stored.status_message == "kueue: finished: Job finished successfully"
    # later looks (a resync, a re-list) change nothing
    sync.resync_s = 0.01
    for _ in range(5):
        sync.step(0.02)
    assert len(env.path(job)) == 5
    assert sync.stats.lists == 3 and sync.stats.confirms >= 1 and sync.stats.resyncs >= 1


def test_failure_carries_the_message(env: Env) -> None:
    ctl = env.kueue()
    job = env.job(1)
    sync = env.sync()
    assert sync.run_until(env.reached([job], S.RUNNING), 5)
    ctl.finish(kref(job), ok=False, message="pod OOMKilled")
    assert sync.run_until(env.reached([job], S.FAILED), 5)
    assert env.store.get(job.tenant, job.id).status_message == "kueue: failed: pod OOMKilled"
    assert env.path(job) == [S.PENDING, S.QUEUED, S.ADMITTED, S.RUNNING, S.FAILED]


@pytest.mark.parametrize("reason", EVICTION_REASONS)
def test_eviction_of_a_running_job_by_the_scripted_kueue(env: Env, reason: str) -> None:
    ctl = env.kueue(admit_after_s=None)
    job = env.job(1)
    sync = env.sync()
    admit(ctl, job)
    assert sync.run_until(env.reached([job], S.RUNNING), 5)
    ctl.evict(kref(job), reason)
    expected = [S.PREEMPTED, S.QUEUED]
    assert sync.run_until(lambda: env.path(job)[4:] == expected, 5), env.path(job)
    for _ in range(3):
        sync.step(0.02)
    assert env.path(job)[4:] == expected  # nothing more, whatever else arrives
    stored = env.store.get(job.tenant, job.id)
    assert stored.preemption_count == 1
    assert reason in (stored.status_message or "")
    if reason not in ("InactiveWorkload", "Deactivated"):  # requeued: Kueue admits it again
        admit(ctl, job)
        assert sync.run_until(env.reached([job], S.RUNNING), 5)
        assert env.path(job)[6:] == [S.ADMITTED, S.RUNNING]


def hand_written_workload(env: Env, job: Job) -> tuple[str, Any]:
    """A Workload owned by the job's Job, as Kueue creates it (the test plays Kueue's part)."""
    owner = env.server.get_object(JOBS, object_name(job), job.tenant)
    assert owner is not None
    rt = kueue_type("Workload")
    name = f"job-{owner['metadata']['name']}-abcde"
    env.client.create(
        rt,
        {
            "metadata": {
                "name": name,
                "namespace": job.tenant,
                "labels": {"kueue.x-k8s.io/job-uid": owner["metadata"]["uid"]},
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": owner["metadata"]["name"],
                        "uid": owner["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": {"queueName": "lq", "podSets": [{"name": "main", "count": 1, "template": {}}]},
        },
    )
    return name, rt


@pytest.mark.parametrize("reason", sorted(EVICTION_TABLE))
def test_eviction_of_an_admitted_job_every_reason(env: Env, reason: str) -> None:
    job = env.job(1)
    name, rt = hand_written_workload(env, job)
    sync = env.sync()
    env.client.patch_status(
        rt, name, job.tenant, {"status": {"conditions": [cond("QuotaReserved"), cond("Admitted")]}}
    )
    assert sync.run_until(env.reached([job], S.ADMITTED), 5)
    evicted = [
        cond("Evicted", reason=reason, message="by the test"),
        cond("QuotaReserved", False),
        cond("Admitted", False),
    ]
    env.client.patch_status(rt, name, job.tenant, {"status": {"conditions": evicted}})
    expected = EVICTION_TABLE[reason]["from_admitted"]
    assert sync.run_until(lambda: env.path(job)[3:] == expected, 5), env.path(job)
    if expected[-1] is S.FAILED and reason.endswith("MaximumExecutionTimeExceeded"):
        assert env.store.get(job.tenant, job.id).accumulated_runtime.total_seconds() == 0


def test_preemption_is_recorded_before_kueue_requeues(env: Env) -> None:
    job = env.job(1)
    name, rt = hand_written_workload(env, job)
    sync = env.sync()
    env.client.patch_status(
        rt, name, job.tenant, {"status": {"conditions": [cond("QuotaReserved"), cond("Admitted")]}}
    )
    assert sync.run_until(env.reached([job], S.ADMITTED), 5)
    # Kueue first sets Evicted (the job is being stopped, quota still reserved) ...
    # (a merge patch replaces the whole conditions list: each write carries all of them)
    stopping = [cond("QuotaReserved"), cond("Admitted"), cond("Evicted", reason="Preempted")]
    env.client.patch_status(rt, name, job.tenant, {"status": {"conditions": stopping}})
    assert sync.run_until(env.reached([job], S.PREEMPTED), 5)
    # ... then releases the quota and requeues it
    requeued = [
        cond("QuotaReserved", False),
        cond("Admitted", False),
        cond("Evicted", reason="Preempted"),
        cond("Requeued", reason="Preempted"),
    ]
    env.client.patch_status(rt, name, job.tenant, {"status": {"conditions": requeued}})
    assert sync.run_until(env.reached([job], S.QUEUED), 5)
    assert env.path(job) == [S.PENDING, S.QUEUED, S.ADMITTED, S.PREEMPTED, S.QUEUED]


def test_a_job_seen_only_when_finished_walks_the_whole_path(env: Env) -> None:
    ctl = env.kueue(run_s=0.0)
    jobs = [env.job(i) for i in range(5)]
    assert apiserver.wait_until(lambda: ctl.counts().get("finished") == 5, 5)
    sync = env.sync()
    assert sync.run_until(env.reached(jobs, S.COMPLETED), 5)
    for job in jobs:
        assert env.path(job) == [S.PENDING, S.QUEUED, S.ADMITTED, S.RUNNING, S.COMPLETED]


def test_jobset_gang_is_followed_through_its_workload(env: Env) -> None:
    job = env.service.submit(
        Job(
            id="gang-1",
            name="gang",
            tenant="team-a",
            local_queue="lq",
            spec={"image": "x"},
            request=ResourceRequest(pod_sets=(PodSet(name="driver"), PodSet(name="workers", count=2))),
        )
    )
    assert submit(env.client, job).kind == "JobSet"
    owner = env.server.get_object(JOBSETS, object_name(job), "team-a")
    assert owner is not None
    rt = kueue_type("Workload")
    env.client.create(
        rt,
        {
            "metadata": {
                "name": "jobset-gang",
                "namespace": "team-a",
                "ownerReferences": [
                    {
                        "apiVersion": "jobset.x-k8s.io/v1alpha2",
                        "kind": "JobSet",
                        "name": owner["metadata"]["name"],
                        "uid": owner["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": {"queueName": "lq", "podSets": []},
        },
    )
    sync = env.sync()
    env.client.patch_status(rt, "jobset-gang", "team-a", {"status": {"conditions": [cond("QuotaReserved")]}})
    assert sync.run_until(env.reached([job], S.ADMITTED), 5)
    env.client.patch(JOBSETS, object_name(job), "team-a", {"spec": {"suspend": False}})
    env.client.patch_status(
        JOBSETS,
        object_name(job),
        "team-a",
        {"status": {"replicatedJobsStatus": [{"name": "workers", "active": 1}]}},
    )
    assert sync.run_until(env.reached([job], S.RUNNING), 5)
    env.client.patch_status(
        JOBSETS, object_name(job), "team-a", {"status": {"conditions": [cond("Completed")]}}
    )
    assert sync.run_until(env.reached([job], S.COMPLETED), 5)
    assert env.path(job) == [S.PENDING, S.QUEUED, S.ADMITTED, S.RUNNING, S.COMPLETED]


def test_kueue_v1beta1_only(env: Env) -> None:
    with FakeApiServer(kueue_versions=("v1beta1",)) as old:
        client = old.client()
        ctl = KueueController(old, version="v1beta1", run_s=0.01).start()
        try:
            job = env.service.submit(
                Job(id="old-1", name="old", tenant="team-a", local_queue="lq", spec={"image": "x"})
            )
            submit(client, job)
            sync = StatusSync(client, env.service, backoff=FAST)
            try:
                assert sync.run_until(env.reached([job], S.COMPLETED), 5)
                assert sync.workloads_rt is not None and sync.workloads_rt.version == "v1beta1"
            finally:
                sync.stop()
        finally:
            ctl.stop()
            client.close()


def test_no_kueue_is_a_clear_error() -> None:
    with FakeApiServer(kueue_versions=(), context="bare") as bare:
        client = bare.client()
        service = JobService(InMemoryJobStore(), ManualClock(datetime(2026, 1, 1, tzinfo=UTC)))
        with pytest.raises(ValidationError, match=r"^bare: the server serves no kueue.x-k8s.io API"):
            StatusSync(client, service).start()
        client.close()


def miss_history(server: FakeApiServer, change: Callable[[], None]) -> None:
    """Make the watches' resourceVersions too old: while the server is down the cluster changes and
    its event history is compacted, so resuming a watch is 410 Gone."""
    server.stop()
    change()
    server.compact()
    server.start()


@pytest.mark.parametrize("as_http", [False, True], ids=["error-event", "http-410"])
def test_watch_expired_relists(as_http: bool, env: Env) -> None:
    with FakeApiServer(expired_as_http=as_http) as server:
        client = server.client()
        ctl = KueueController(server, admit_after_s=None).start()
        sync = StatusSync(client, env.service, backoff=FAST)
        try:
            jobs = [
                env.service.submit(
                    Job(id=f"h-{i}", name="h", tenant="team-a", local_queue="lq", spec={"image": "x"})
                )
                for i in range(3)
            ]
            for job in jobs:
                submit(client, job)
            assert sync.run_until(lambda: sync.stats.watches >= 3, 5)
            miss_history(server, lambda: [admit(ctl, job) for job in jobs])
            assert sync.run_until(env.reached(jobs, S.RUNNING), 5)
            assert sync.stats.expired >= 1 and sync.stats.lists >= 4
            assert all(env.path(j) == [S.PENDING, S.QUEUED, S.ADMITTED, S.RUNNING] for j in jobs)
        finally:
            sync.stop()
            ctl.stop()
            client.close()


def test_reconnects_with_bounded_exponential_backoff(env: Env) -> None:
    ctl = env.kueue(admit_after_s=None)
    job = env.job(1)
    delays: list[float] = []

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        time.sleep(0.005)

    backoff = Backoff(initial_s=0.01, max_s=0.08, jitter=0.5)
    sync = env.sync(backoff=backoff, sleep=sleep, rand=lambda: 0.0)
    assert sync.run_until(lambda: sync.stats.lists >= 3, 5)
    env.server.stop()
    admit(ctl, job)
    assert sync.run_until(lambda: len(delays) >= 12, 5)
    # Whether a thread's reconnect was refused (an Unreachable error) or its stream just ended at
    # once depends on where it was when the port closed; either way it backed off.
    error = sync.last_error
    assert error is None or (isinstance(error, KubeError) and error.reason in ("Unreachable", "Disconnected"))
    env.server.start()
    assert sync.run_until(env.reached([job], S.RUNNING), 5)
    # per watch thread: 0.01, 0.02, 0.04, 0.08, 0.08, ... (the three threads interleave)
    assert sorted(set(delays)) == [0.01, 0.02, 0.04, 0.08]
    assert max(delays) == backoff.max_s


def test_forbidden_namespace_is_reported_and_retried(env: Env) -> None:
    env.kueue()
    job = env.job(1)
    env.server.forbid("team-a")
    sync = env.sync(namespace="team-a")
    assert not sync.run_until(env.reached([job], S.RUNNING), 0.5)
    error = sync.last_error
    assert isinstance(error, KubeError) and error.status == 403
    assert "\n" not in str(error)
    assert str(error).startswith("prod-east: list ") and ": HTTP 403 Forbidden: " in str(error)
    assert 'in the namespace "team-a"' in str(error)
    env.server.allow("team-a")
    assert sync.run_until(env.reached([job], S.RUNNING), 5)


def test_a_forbidden_object_waits_without_holding_up_the_others(env: Env) -> None:
    ctl = env.kueue(admit_after_s=None)
    mine, theirs = env.job(1), env.job(2, tenant="team-b")
    sync = env.sync()  # all namespaces
    assert sync.run_until(lambda: sync.stats.watches >= 3, 5)
    env.server.forbid("team-b")  # reading single objects there is now refused
    admit(ctl, mine)
    admit(ctl, theirs)
    assert sync.run_until(lambda: env.status(mine) is S.RUNNING and sync.last_error is not None, 5)
    assert env.status(theirs) is S.QUEUED
    assert isinstance(sync.last_error, KubeError) and sync.last_error.status == 403
    assert sync.stats.errors == 0  # the watches (all namespaces) were not affected
    env.server.allow("team-b")
    assert sync.run_until(env.reached([theirs], S.RUNNING), 5)


class RefusingStore(InMemoryJobStore):
    """A store that refuses to write some jobs into ``admitted`` (as the PostgreSQL store does when
    its ledger requires budcore's own admission: ``LedgerAdmissionRequiredError``)."""

    def __init__(self, sink: CollectingEventSink) -> None:
        super().__init__(sink)
        self.refuse: set[str] = set()

    def update(self, job: Job, *, events: Sequence[DomainEvent] = ()) -> Job:
        if job.id in self.refuse and job.status is S.ADMITTED:
            raise BudcoreError(f"job {job.id!r}: admitted only through the admission ledger")
        return super().update(job, events=events)


def test_a_write_the_store_refuses_is_retried_for_that_job_alone(env: Env) -> None:
    store = RefusingStore(env.sink)
    env.store, env.service = store, JobService(store, env.service.clock)
    env.kueue()
    refused, fine = env.job(1), env.job(2)
    store.refuse.add(refused.id)
    sync = env.sync()
    assert sync.run_until(lambda: env.status(fine) is S.RUNNING and sync.last_error is not None, 5)
    assert env.status(refused) is S.QUEUED
    assert "admission ledger" in str(sync.last_error)
    store.refuse.clear()
    assert sync.run_until(env.reached([refused], S.RUNNING), 5)
    assert env.path(refused) == [S.PENDING, S.QUEUED, S.ADMITTED, S.RUNNING]


def test_a_job_cancelled_in_budcore_is_left_alone(env: Env) -> None:
    ctl = env.kueue(admit_after_s=None)
    job = env.job(1)
    sync = env.sync()
    assert sync.run_until(lambda: sync.stats.watches >= 3, 5)
    env.service.cancel(job.tenant, job.id)
    admit(ctl, job)
    ctl.finish(kref(job))
    # it sees the Job finish (in its watch cache) ...
    assert sync.run_until(
        lambda: any(observe(o, None).target is S.COMPLETED for o in sync._owners.values()), 5
    )
    for _ in range(5):
        sync.step(0.02)
    assert env.path(job) == [S.PENDING, S.QUEUED, S.CANCELLED]


def test_only_the_current_attempt_counts(env: Env) -> None:
    ctl = env.kueue()
    job = env.job(1)
    sync = env.sync()
    assert sync.run_until(env.reached([job], S.RUNNING), 5)
    ctl.finish(kref(job), ok=False)
    assert sync.run_until(env.reached([job], S.FAILED), 5)
    retry = env.service.move(env.store.get(job.tenant, job.id), S.QUEUED, reason="retry")  # budcore's retry
    assert retry.retry_count == 1
    assert submit(env.client, retry).name == f"{object_name(job)}-r1"
    assert sync.run_until(env.reached([job], S.RUNNING), 5)
    ctl.finish(kref(retry))
    assert sync.run_until(env.reached([job], S.COMPLETED), 5)
    assert env.path(job) == [
        S.PENDING,
        S.QUEUED,
        S.ADMITTED,
        S.RUNNING,
        S.FAILED,
        S.QUEUED,
        S.ADMITTED,
        S.RUNNING,
        S.COMPLETED,
    ]


def test_deleted_objects_and_unknown_jobs_change_nothing(env: Env) -> None:
    env.kueue()
    job = env.job(1)
    stranger = Job(id="not-in-store", name="x", tenant="team-a", local_queue="lq", spec={"image": "x"})
    submit(env.client, stranger)  # budcore-labelled, but not in this store
    sync = env.sync()
    assert sync.run_until(env.reached([job], S.RUNNING), 5)
    env.client.delete(JOBS, object_name(job), "team-a")
    for _ in range(5):
        sync.step(0.02)
    assert env.status(job) is S.RUNNING  # lost-job handling is the dispatcher's call
    assert ("team-a", "not-in-store", 0) in set(sync.known_jobs())


# -- acceptance: many jobs, faults, two replicas ---------------------------------------------------


@dataclass
class Faults:
    """Watch drops and API-server restarts, injected from a thread as the work progresses;
    ``unfinished`` records how many jobs budcore had not yet seen complete at each fault."""

    thread: threading.Thread
    unfinished: list[tuple[str, int]] = field(default_factory=list)


def inject_faults(
    server: FakeApiServer, drops: int, restarts_after: set[int], unfinished: Callable[[], int]
) -> Faults:
    """Drop every watch each time another 1/(drops+2) of the jobs completed in budcore (so every fault
    hits work in flight), and restart the API server right after the drops in ``restarts_after``."""
    total = unfinished()
    thresholds = [total - (k * total) // (drops + 2) for k in range(1, drops + 1)]

    def run() -> None:
        deadline = time.monotonic() + 60
        for n, threshold in enumerate(thresholds, start=1):
            while unfinished() > threshold and time.monotonic() < deadline:
                time.sleep(0.005)
            server.drop_watches()
            faults.unfinished.append(("drop", unfinished()))
            if n in restarts_after:
                server.restart(down_s=0.2)
                faults.unfinished.append(("restart", unfinished()))

    faults = Faults(threading.Thread(target=run, name="faults", daemon=True))
    faults.thread.start()
    return faults


def check_exactly_once(env: Env, jobs: list[Job]) -> None:
    per_id = collections.Counter(o["metadata"]["labels"][JOB_ID_LABEL] for o in env.server.objects(JOBS))
    assert per_id == {j.id: 1 for j in jobs}, "a job was submitted twice or lost"
    for job in jobs:
        assert env.path(job) == [S.PENDING, S.QUEUED, S.ADMITTED, S.RUNNING, S.COMPLETED], job.id


def test_acceptance_1000_jobs_20_watch_drops_2_restarts(env: Env) -> None:
    started = time.monotonic()
    ctl = env.kueue(admit_after_s=0.0, gpu_capacity=50, run_s=0.1)  # at most 50 jobs at once
    sync = env.sync()
    sync.start()
    jobs = [env.job(i) for i in range(1000)]
    faults = inject_faults(env.server, drops=20, restarts_after={7, 14}, unfinished=env.unfinished)
    done = env.reached(jobs, S.COMPLETED)
    assert sync.run_until(lambda: done() and not faults.thread.is_alive(), 60), (
        collections.Counter(env.status(j) for j in jobs),
        ctl.counts(),
        sync.stats,
    )
    # resubmission after all that creates nothing
    assert not any(submit(env.client, env.store.get(j.tenant, j.id)).created for j in jobs[:100])
    check_exactly_once(env, jobs)
    assert [kind for kind, _ in faults.unfinished].count("drop") == 20
    assert [kind for kind, _ in faults.unfinished].count("restart") == 2
    assert all(left > 0 for _, left in faults.unfinished), (
        f"faults after the work was done: {faults.unfinished}"
    )
    assert sync.stats.errors >= 2  # the restarts were seen (and survived)
    assert sync.stats.watches >= 20
    assert sync.stats.transitions == 3000
    assert time.monotonic() - started < 60


def test_two_reconcilers_on_one_store_reach_the_same_state_once(env: Env) -> None:
    """Two replicas watch the same cluster and write to the same store at the same time, through
    watch drops and a restart: every transition is written once (the loser of each race gets a
    ConflictError, re-reads and finds nothing left to do)."""
    first, second = env.sync(), env.sync()
    stop = threading.Event()
    threads = [threading.Thread(target=s.run_forever, args=(stop,), daemon=True) for s in (first, second)]
    for t in threads:
        t.start()
    env.kueue(admit_after_s=0.0, gpu_capacity=30, run_s=0.1)
    jobs = [env.job(i) for i in range(300)]
    faults = inject_faults(env.server, drops=5, restarts_after={3}, unfinished=env.unfinished)
    try:
        assert apiserver.wait_until(
            lambda: env.reached(jobs, S.COMPLETED)() and not faults.thread.is_alive(), 60
        )
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)
    check_exactly_once(env, jobs)
    assert first.stats.transitions + second.stats.transitions == 900
    assert first.stats.transitions > 0 and second.stats.transitions > 0, "both replicas did work"
    assert first.stats.events > 1000 and second.stats.events > 1000, "both followed the jobs through watches"


# -- the real-cluster suite -----------------------------------------------------------------------

REAL_CLUSTER = os.environ.get("BUDCORE_KUBECONFIG")


@pytest.mark.cluster
@pytest.mark.skipif(
    not REAL_CLUSTER, reason="real-cluster suite: set BUDCORE_KUBECONFIG (a cluster with Kueue)"
)
def test_real_cluster_submit_and_sync_to_completion_and_failure() -> None:
    """Against a real cluster with Kueue installed (kind + Kueue's release manifest is enough):
    a throwaway namespace, flavor, ClusterQueue, LocalQueue and priority class; one job that
    succeeds and one that fails, followed to completed / failed by the reconciler; then cleaned up."""
    assert REAL_CLUSTER is not None
    client = KubeClient.from_kubeconfig(REAL_CLUSTER, os.environ.get("BUDCORE_KUBE_CONTEXT") or None)
    served = client.api_versions("kueue.x-k8s.io")
    version = "v1beta2" if "v1beta2" in served else "v1beta1"
    suffix = f"{int(time.time())}"
    namespace, flavor, cq = f"budcore-e2e-{suffix}", f"budcore-e2e-{suffix}", f"budcore-e2e-{suffix}"
    created: list[tuple[Any, str, str | None]] = []

    def make(rt: Any, obj: dict[str, Any]) -> None:
        client.create(rt, obj)
        created.append((rt, obj["metadata"]["name"], obj["metadata"].get("namespace")))

    service = JobService(InMemoryJobStore(), ManualClock(datetime(2026, 1, 1, tzinfo=UTC)))
    sync = StatusSync(client, service, namespace=namespace)
    try:
        make(NAMESPACES, {"metadata": {"name": namespace}})
        make(kueue_type("ResourceFlavor", version), {"metadata": {"name": flavor}, "spec": {}})
        quota = [{"name": "cpu", "nominalQuota": "1"}, {"name": "memory", "nominalQuota": "1Gi"}]
        make(
            kueue_type("ClusterQueue", version),
            {
                "metadata": {"name": cq},
                "spec": {
                    "namespaceSelector": {},
                    "resourceGroups": [
                        {
                            "coveredResources": ["cpu", "memory"],
                            "flavors": [{"name": flavor, "resources": quota}],
                        }
                    ],
                },
            },
        )
        make(
            kueue_type("LocalQueue", version),
            {"metadata": {"name": "lq", "namespace": namespace}, "spec": {"clusterQueue": cq}},
        )
        wpc = kueue_type("WorkloadPriorityClass", version)
        if client.get(wpc, "budcore-normal") is None:
            make(wpc, {"metadata": {"name": "budcore-normal"}, "value": 10})
        jobs = []
        for name, script in (("ok", "sleep 2"), ("broken", "exit 3")):
            job = service.submit(
                Job(
                    name=name,
                    tenant=namespace,
                    local_queue="lq",
                    spec={"image": "busybox:1.36", "command": ["sh", "-c", script]},
                    request=ResourceRequest.single(cpu="100m", memory="64Mi"),
                )
            )
            submit(client, job)
            jobs.append(job)
        final = {S.COMPLETED, S.FAILED}
        assert sync.run_until(
            lambda: all(service.store.get(j.tenant, j.id).status in final for j in jobs), 300
        )
        ok, broken = (service.store.get(j.tenant, j.id) for j in jobs)
        assert (ok.status, broken.status) == (S.COMPLETED, S.FAILED)
    finally:
        sync.stop()
        for rt, name, ns in reversed(created):
            client.delete(rt, name, ns)
        client.close()
