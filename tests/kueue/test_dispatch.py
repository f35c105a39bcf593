"""Multi-cluster dispatch over two or three API-server doubles, each with its own scripted Kueue:
first-admitted and cheapest placement, restarts, faults, and the acceptance "never runs a job twice
when one cluster disappears mid-run"."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from budcore_adapters.inmemory.clock import ManualClock
from budcore_adapters.inmemory.events import CollectingEventSink
from budcore_adapters.inmemory.job_store import InMemoryJobStore
from budcore_adapters.kueue.client import JOBS, NODES, KubeClient
from budcore_adapters.kueue.dispatch import (
    CLUSTER_ATTEMPT_LABEL,
    CLUSTER_LABEL,
    DISPATCH_LABEL,
    Dispatcher,
    ReconcileReport,
)
from budcore_adapters.kueue.submit import object_name, owner_key
from kueue.apiserver import FakeApiServer, KueueController

from budcore.domain.errors import ValidationError
from budcore.domain.events import JobTransitioned
from budcore.domain.job import Job, JobStatus, ResourceRequest
from budcore.domain.lifecycle import can_transition
from budcore.hardware.labels import node_dict
from budcore.service import JobService

S = JobStatus
LOST_AFTER_S = 60.0


@dataclass
class Cluster:
    name: str
    server: FakeApiServer
    kueue: KueueController
    client: KubeClient

    def copies(self) -> list[dict[str, Any]]:
        return [o for o in self.server.objects(JOBS) if owner_key(o) is not None]


@dataclass
class Env:
    clusters: dict[str, Cluster] = field(default_factory=dict)
    sink: CollectingEventSink = field(default_factory=CollectingEventSink)
    clock: ManualClock = field(default_factory=lambda: ManualClock(datetime(2026, 1, 1, tzinfo=UTC)))

    def __post_init__(self) -> None:
        self.store = InMemoryJobStore(self.sink)
        self.service = JobService(self.store, self.clock)

    def add(self, name: str, *, gpus_on_nodes: int = 0, **kueue: Any) -> Cluster:
        server = FakeApiServer(context=name).start()
        if gpus_on_nodes:
            server.put_object(
                NODES,
                node_dict(
                    f"{name}-gpu-1", {}, {"cpu": "256", "memory": "2Ti", "nvidia.com/gpu": gpus_on_nodes}
                ),
            )
        cluster = Cluster(name, server, KueueController(server, **kueue).start(), server.client())
        self.clusters[name] = cluster
        return cluster

    def dispatcher(self, **options: Any) -> Dispatcher:
        clients = {name: c.client for name, c in self.clusters.items()}
        return Dispatcher(clients, self.service, lost_after_s=LOST_AFTER_S, clock=self.clock, **options)

    def job(self, i: int, *, gpus: int = 1, tenant: str = "team-a") -> Job:
        return self.service.submit(
            Job(
                id=f"job-{i:05d}",
                name=f"job {i}",
                tenant=tenant,
                local_queue="lq",
                spec={"image": "busybox"},
                request=ResourceRequest.single(gpus=gpus, cpu=1, memory="1Gi"),
            )
        )

    def get(self, job: Job) -> Job:
        return self.store.get(job.tenant, job.id)

    def close(self) -> None:
        for cluster in self.clusters.values():
            cluster.kueue.stop()
            assert not cluster.kueue.errors
            cluster.client.close()
            cluster.server.close()


@pytest.fixture
def env() -> Iterator[Env]:
    environment = Env()
    yield environment
    environment.close()


def run(dispatcher: Dispatcher, done: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "timed out"
        dispatcher.reconcile()
        time.sleep(0.02)


def history(sink: CollectingEventSink, job_id: str) -> list[tuple[S, S]]:
    return [
        (e.from_status, e.to_status)
        for e in sink.events
        if isinstance(e, JobTransitioned) and e.job_id == job_id
    ]


def assert_legal_and_completed_once(sink: CollectingEventSink, job_id: str) -> None:
    steps = history(sink, job_id)
    assert steps[0] == (S.PENDING, S.QUEUED)
    for (_, to), (frm, _) in itertools.pairwise(steps):
        assert to == frm, steps
    assert all(can_transition(a, b) for a, b in steps), steps
    assert [b for _, b in steps].count(S.COMPLETED) == 1, steps
    assert steps[-1][1] is S.COMPLETED


# -- first-admitted ------------------------------------------------------------------------------


def test_first_admitted_the_faster_cluster_wins_and_the_other_copy_is_deleted(env: Env) -> None:
    slow = env.add("slow", admit_after_s=5.0, run_s=0.2)
    fast = env.add("fast", admit_after_s=0.0, run_s=0.2)
    dispatcher = env.dispatcher(policy="first-admitted")
    job = env.job(1)
    result = dispatcher.dispatch(job)
    assert result.copies == ("fast", "slow") and result.cluster is None
    assert len(slow.copies()) == len(fast.copies()) == 1  # a copy everywhere, as MultiKueue does
    run(dispatcher, lambda: CLUSTER_LABEL in env.get(job).labels)
    stored = env.get(job)
    assert stored.labels[CLUSTER_LABEL] == "fast"
    assert stored.labels[CLUSTER_ATTEMPT_LABEL] == "0"
    assert slow.copies() == []  # the loser's copy is withdrawn
    run(dispatcher, lambda: env.get(job).status is S.COMPLETED)
    assert_legal_and_completed_once(env.sink, job.id)
    assert dispatcher.placements() == {(job.tenant, job.id): "fast"}
    assert [o["metadata"]["name"] for o in fast.copies()] == [object_name(stored)]


# -- cheapest ------------------------------------------------------------------------------------


def test_cheapest_gets_the_only_copy_until_it_is_full_and_a_big_job_goes_elsewhere(env: Env) -> None:
    cheap = env.add("cheap", gpus_on_nodes=8, admit_after_s=None)
    dear = env.add("dear", gpus_on_nodes=16, admit_after_s=None)
    dispatcher = env.dispatcher(policy="cheapest", prices={"cheap": Decimal("1.10"), "dear": Decimal("2.50")})
    first = dispatcher.dispatch(env.job(1, gpus=4))
    assert (first.cluster, first.copies) == ("cheap", ("cheap",))
    big = dispatcher.dispatch(env.job(2, gpus=12))
    assert big.cluster == "dear"
    assert "cheap: no room" in big.reasons["cheap"]
    second = dispatcher.dispatch(env.job(3, gpus=4))  # 8 − 4 (budcore's own job there) = 4 free
    assert second.cluster == "cheap"
    third = dispatcher.dispatch(env.job(4, gpus=4))  # cheap is full now
    assert third.cluster == "dear"
    assert len(cheap.copies()) == 2 and len(dear.copies()) == 2
    assert env.get(first.job).labels[CLUSTER_LABEL] == "cheap"
    assert env.get(first.job).labels[DISPATCH_LABEL] == "cheapest"
    # Nothing fits anywhere: stays queued, and says why.
    huge = dispatcher.dispatch(env.job(5, gpus=64))
    assert huge.cluster is None and huge.copies == ()
    assert env.get(huge.job).status is S.QUEUED
    assert "not dispatched" in (env.get(huge.job).status_message or "")


def test_equal_prices_choose_by_name(env: Env) -> None:
    env.add("zeta", gpus_on_nodes=8, admit_after_s=None)
    env.add("alpha", gpus_on_nodes=8, admit_after_s=None)
    assert env.dispatcher(policy="cheapest").dispatch(env.job(1)).cluster == "alpha"


# -- restart -------------------------------------------------------------------------------------


def test_a_new_dispatcher_over_the_same_store_continues_with_the_recorded_decisions(env: Env) -> None:
    a = env.add("a", admit_after_s=0.0, run_s=0.5)
    b = env.add("b", admit_after_s=None)
    first = env.dispatcher(policy="first-admitted")
    job = env.job(1)
    first.dispatch(job)
    run(first, lambda: env.get(job).status in (S.ADMITTED, S.RUNNING))
    assert env.get(job).labels[CLUSTER_LABEL] == "a"
    assert b.copies() == []
    del first  # the dispatcher restarts: nothing of it survives but the store
    second = env.dispatcher(policy="first-admitted")
    with pytest.raises(ValidationError, match="only a queued job can be dispatched"):
        second.dispatch(env.get(job))
    run(second, lambda: env.get(job).status is S.COMPLETED)
    assert b.copies() == [] and len(a.copies()) == 1
    assert_legal_and_completed_once(env.sink, job.id)


def test_cheapest_restart_returns_the_recorded_cluster(env: Env) -> None:
    env.add("a", gpus_on_nodes=8, admit_after_s=None)
    b = env.add("b", gpus_on_nodes=8, admit_after_s=None)
    job = env.job(1)
    assert (
        env.dispatcher(policy="cheapest", prices={"a": Decimal(3), "b": Decimal(1)}).dispatch(job).cluster
        == "b"
    )
    again = env.dispatcher(policy="cheapest", prices={"a": Decimal(1), "b": Decimal(3)})  # prices changed
    assert again.dispatch(job).cluster == "b"  # the decision stands
    again.reconcile()
    assert len(b.copies()) == 1 and env.clusters["a"].copies() == []


# -- bad input and faults ------------------------------------------------------------------------


def test_an_unknown_cluster_name_is_refused_or_treated_as_lost(env: Env) -> None:
    env.add("a", admit_after_s=None)
    with pytest.raises(ValidationError, match="unknown cluster 'nope' in prices; registered clusters: a"):
        env.dispatcher(policy="cheapest", prices={"nope": Decimal(1)})
    with pytest.raises(ValidationError, match="unknown dispatch policy"):
        env.dispatcher(policy="random")
    # A job recorded in a cluster that is no longer registered: down, then lost, then requeued.
    job = env.job(1)
    env.store.update(
        env.get(job).model_copy(
            update={
                "labels": {
                    DISPATCH_LABEL: "first-admitted",
                    CLUSTER_LABEL: "gone",
                    CLUSTER_ATTEMPT_LABEL: "0",
                }
            }
        )
    )
    dispatcher = env.dispatcher()
    report = dispatcher.reconcile()
    assert "gone: not a registered cluster" in report.unreachable["gone"]
    assert env.get(job).retry_count == 0
    env.clock.advance(LOST_AFTER_S + 1)
    report = dispatcher.reconcile()
    assert report.requeued == [(job.tenant, job.id)]
    moved = env.get(job)
    assert moved.status is S.QUEUED and moved.retry_count == 1 and moved.max_retries == job.max_retries + 1
    assert CLUSTER_LABEL not in moved.labels
    assert [owner_key(o) for o in env.clusters["a"].copies()] == [(job.tenant, job.id, 1)]


def test_all_clusters_unreachable_the_job_stays_queued_with_a_reason(env: Env) -> None:
    a = env.add("a", admit_after_s=0.0, run_s=0.1)
    b = env.add("b", admit_after_s=0.0, run_s=0.1)
    a.server.stop()
    b.server.stop()
    dispatcher = env.dispatcher()
    job = env.job(1)
    result = dispatcher.dispatch(job)
    assert result.copies == ()
    stored = env.get(job)
    assert stored.status is S.QUEUED
    message = stored.status_message or ""
    assert message.startswith("not dispatched: a: ") and "Unreachable" in message and "b: " in message
    assert dispatcher.reasons[(job.tenant, job.id)] == message
    dispatcher.reconcile()
    b.server.start()
    run(dispatcher, lambda: env.get(job).status is S.COMPLETED)
    assert env.get(job).labels[CLUSTER_LABEL] == "b"
    assert_legal_and_completed_once(env.sink, job.id)


def test_a_forbidden_namespace_skips_that_cluster_for_the_job(env: Env) -> None:
    a = env.add("a", admit_after_s=0.0, run_s=0.1)
    b = env.add("b", admit_after_s=None)
    a.server.forbid("team-a")
    dispatcher = env.dispatcher()
    job = env.job(1)
    result = dispatcher.dispatch(job)
    assert result.copies == ("b",)
    reason = result.reasons["a"]
    assert "\n" not in reason and "a: create Job team-a/" in reason and "HTTP 403 Forbidden" in reason
    for _ in range(3):  # not retried in that cluster
        dispatcher.reconcile()
    assert a.server.objects(JOBS) == [] and len(b.copies()) == 1
    b.kueue.admit(b.copies()[0])
    run(dispatcher, lambda: env.get(job).labels.get(CLUSTER_LABEL) == "b")


# -- acceptance: never runs a job twice when one cluster disappears mid-run ----------------------


def test_never_twice_when_a_cluster_disappears_mid_run(env: Env) -> None:
    a = env.add("a", admit_after_s=0.0, gpu_capacity=10, run_s=1.5)
    b = env.add("b", admit_after_s=0.0, gpu_capacity=20, run_s=0.2)
    dispatcher = env.dispatcher(policy="first-admitted")
    jobs = [env.job(i) for i in range(50)]
    for job in jobs:
        dispatcher.dispatch(job)
    seen: dict[tuple[str, int], set[str]] = {}  # (job, attempt) → clusters recorded while holding quota

    def step() -> ReconcileReport:
        report = dispatcher.reconcile()
        placements = dispatcher.placements()
        for job in env.store.list(None):
            if job.status in (S.ADMITTED, S.RUNNING):
                where = placements.get((job.tenant, job.id))
                assert where is not None and where not in dispatcher.lost(), (job.id, where)
                seen.setdefault((job.id, job.retry_count), set()).add(where)
        assert all(len(clusters) == 1 for clusters in seen.values())
        time.sleep(0.02)
        return report

    def running_in(name: str) -> list[Job]:
        placements = dispatcher.placements()
        return [
            j
            for j in env.store.list(None)
            if j.status is S.RUNNING and placements.get((j.tenant, j.id)) == name
        ]

    deadline = time.monotonic() + 10
    while not running_in("a"):
        assert time.monotonic() < deadline
        step()
    a.server.stop()  # cluster a disappears mid-run; its Kueue (in-process) goes on running its copies
    stranded = {j.id for j in env.store.list(None) if dispatcher.placements().get((j.tenant, j.id)) == "a"}
    stranded -= {j.id for j in env.store.list(None) if j.status is S.COMPLETED}
    assert stranded
    for _ in range(10):  # unreachable, not lost yet: nothing is requeued
        assert not step().requeued
    env.clock.advance(LOST_AFTER_S + 1)
    report = step()
    assert report.lost == {"a"}
    requeued = {k[1] for k in report.requeued}
    assert requeued == stranded  # every unfinished job of the lost cluster, no other
    for job in env.store.list(None):
        if job.id in requeued:
            assert job.retry_count == 1 and dispatcher.placements().get((job.tenant, job.id)) != "a"
    deadline = time.monotonic() + 20
    while not all(j.status is S.COMPLETED for j in env.store.list(None)):
        assert time.monotonic() < deadline, [j.status for j in env.store.list(None)]
        step()
    a.server.start()  # the lost cluster comes back: its stale copies go at once
    report = step()
    assert report.returned == ["a"]
    assert {(c, name) for c, _, name in report.withdrawn if c == "a"}
    stored = {(j.tenant, j.id): j for j in env.store.list(None)}
    placements = dispatcher.placements()
    for cluster in (a, b):
        for copy in cluster.copies():
            tenant, job_id, attempt = owner_key(copy) or ("", "", -1)
            assert attempt == stored[(tenant, job_id)].retry_count  # no copy of a non-current attempt
            assert placements[(tenant, job_id)] == cluster.name  # nor outside the recorded cluster
    for job in jobs:
        assert_legal_and_completed_once(env.sink, job.id)
    for job_id in requeued:  # the lost run ends legally: running → preempted → queued (or admitted → queued)
        steps = history(env.sink, job_id)
        lost_run = steps.index((S.QUEUED, S.ADMITTED))  # the first run, in cluster a
        assert steps[lost_run + 1 : lost_run + 4] in (
            [(S.ADMITTED, S.RUNNING), (S.RUNNING, S.PREEMPTED), (S.PREEMPTED, S.QUEUED)],
            [(S.ADMITTED, S.QUEUED), (S.QUEUED, S.ADMITTED), (S.ADMITTED, S.RUNNING)],
        ), steps
    assert any((S.RUNNING, S.PREEMPTED) in history(env.sink, j) for j in requeued)
    print(f"stranded={len(stranded)} requeued={len(requeued)} withdrawn_from_a={len(report.withdrawn)}")
