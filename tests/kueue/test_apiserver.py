"""The API-server double and its scripted Kueue behave as the adapter's tests assume.

The double stands in for a cluster in every Kueue adapter test, so its own behaviour is pinned
here: the store's resourceVersion and no-op rules, validation, faults (restart, dropped watches,
compaction, delays), thread safety, and the KueueController's Workload conditions and reasons.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("kubernetes")

from budcore_adapters.kueue.client import (
    JOBS,
    JOBSETS,
    KubeClient,
    KubeError,
    WatchExpired,
    kueue_type,
)
from kueue.apiserver import EVICTION_REASONS, FakeApiServer, KueueController, wait_until

WORKLOADS = kueue_type("Workload")
QUEUE = "kueue.x-k8s.io/queue-name"


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer() as srv:
        yield srv


@pytest.fixture
def client(server: FakeApiServer) -> Iterator[KubeClient]:
    kube = server.client()
    yield kube
    kube.close()


def gpu_job(
    name: str, gpus: int = 1, *, namespace: str = "default", queue: str | None = "team-q"
) -> dict[str, Any]:
    labels = {QUEUE: queue} if queue else {}
    container = {"name": "main", "image": "trainer", "resources": {"requests": {"nvidia.com/gpu": str(gpus)}}}
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "suspend": True,
            "template": {"spec": {"containers": [container], "restartPolicy": "Never"}},
        },
    }


def conditions(obj: dict[str, Any] | None) -> dict[str, tuple[str, str]]:
    assert obj is not None
    return {c["type"]: (c["status"], c["reason"]) for c in (obj.get("status") or {}).get("conditions") or []}


def workload_of(server: FakeApiServer, kueue: KueueController, name: str) -> dict[str, Any] | None:
    return server.get_object(WORKLOADS, kueue.workload_name(name), "default")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# -- the store --------------------------------------------------------------------------------------


def test_noop_writes_keep_the_resource_version(client: KubeClient, server: FakeApiServer) -> None:
    created = client.create(JOBS, gpu_job("j"))
    rv = created["metadata"]["resourceVersion"]
    assert client.replace(JOBS, created)["metadata"]["resourceVersion"] == rv
    assert (
        client.patch(JOBS, "j", "default", {"spec": {"suspend": True}})["metadata"]["resourceVersion"] == rv
    )
    assert server.resource_version == int(rv)
    relabelled = client.patch(JOBS, "j", "default", {"metadata": {"labels": {"x": "y"}}})
    assert relabelled["metadata"]["generation"] == 1 and int(relabelled["metadata"]["resourceVersion"]) > int(
        rv
    )
    respecced = client.patch(JOBS, "j", "default", {"spec": {"parallelism": 2}})
    assert respecced["metadata"]["generation"] == 2


def test_status_writes_leave_spec_alone(client: KubeClient) -> None:
    client.create(JOBS, gpu_job("j"))
    after = client.patch_status(JOBS, "j", "default", {"status": {"active": 1}, "spec": {"parallelism": 7}})
    assert after["status"] == {"active": 1} and after["spec"]["parallelism"] == 1
    assert after["metadata"]["generation"] == 1


def test_server_sets_metadata_and_job_defaults(client: KubeClient) -> None:
    created = client.create(JOBS, {"metadata": {"name": "j", "namespace": "ns"}, "spec": {"template": {}}})
    meta = created["metadata"]
    assert meta["namespace"] == "ns" and len(meta["uid"]) == 36 and meta["creationTimestamp"].endswith("Z")
    assert created["spec"]["completions"] == 1 and created["spec"]["parallelism"] == 1
    assert created["spec"]["suspend"] is False and created["spec"]["backoffLimit"] == 6
    queue = client.create(JOBS, {"metadata": {"name": "wq", "namespace": "ns"}, "spec": {"parallelism": 3}})
    assert "completions" not in queue["spec"]  # parallelism alone: a work queue, as Kubernetes defaults it


def test_discovery_documents(client: KubeClient, server: FakeApiServer) -> None:
    import urllib3

    http = urllib3.PoolManager()
    headers = {"Authorization": f"Bearer {server.token}"}
    groups = http.request("GET", f"{server.url}/apis", headers=headers).json()
    names = {g["name"]: g["preferredVersion"]["version"] for g in groups["groups"]}
    assert names == {"batch": "v1", "jobset.x-k8s.io": "v1alpha2", "kueue.x-k8s.io": "v1beta2"}
    resources = http.request("GET", f"{server.url}/apis/kueue.x-k8s.io/v1beta1", headers=headers).json()
    listed = {r["name"] for r in resources["resources"]}
    assert {"workloads", "workloads/status", "clusterqueues", "resourceflavors"} <= listed
    assert "resourceflavors/status" not in listed
    assert http.request("GET", f"{server.url}/version", headers=headers).json()["major"] == "1"
    assert http.request("GET", f"{server.url}/apis/nope.io/v1/things", headers=headers).status == 404


def test_apply_needs_a_field_manager(server: FakeApiServer) -> None:
    import urllib3

    response = urllib3.PoolManager().request(
        "PATCH",
        f"{server.url}{kueue_type('Cohort').path(name='c')}",
        body=b'{"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "Cohort", "metadata": {"name": "c"}}',
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/apply-patch+yaml"},
    )
    assert response.status == 400 and "fieldManager: Required value" in response.json()["message"]


def test_apply_without_force_conflicts_with_another_manager(client: KubeClient) -> None:
    rt = kueue_type("ClusterQueue")
    client.apply(rt, {"metadata": {"name": "cq"}, "spec": {"stopPolicy": "None"}}, field_manager="ops")
    with pytest.raises(KubeError, match=r"HTTP 409 Conflict.*spec\.stopPolicy"):
        client.apply(rt, {"metadata": {"name": "cq"}, "spec": {"stopPolicy": "Hold"}}, force=False)
    taken = client.apply(rt, {"metadata": {"name": "cq"}, "spec": {"stopPolicy": "Hold"}}, force=True)
    managers = {m["manager"]: m["fieldsV1"] for m in taken["metadata"]["managedFields"]}
    assert managers == {"budcore": {"f:spec": {"f:stopPolicy": {}}}}  # forced: the field changed hands


def test_deleting_an_owner_collects_its_dependents(client: KubeClient, server: FakeApiServer) -> None:
    owner = client.create(JOBS, gpu_job("j", queue=None))
    ref = {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": owner["metadata"]["uid"]}
    client.create(WORKLOADS, {"metadata": {"name": "wl", "namespace": "default", "ownerReferences": [ref]}})
    client.create(WORKLOADS, {"metadata": {"name": "free", "namespace": "default"}})
    assert client.delete(JOBS, "j", "default")
    assert client.get(WORKLOADS, "wl", "default") is None
    assert client.get(WORKLOADS, "free", "default") is not None


def test_concurrent_writers_get_unique_versions(client: KubeClient, server: FakeApiServer) -> None:
    versions: list[int] = []
    lock = threading.Lock()

    def writer(index: int) -> None:
        for n in range(25):
            obj = client.create(JOBS, gpu_job(f"w{index}-{n}", queue=None))
            with lock:
                versions.append(int(obj["metadata"]["resourceVersion"]))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(versions) == 200 and len(set(versions)) == 200
    assert len(client.list(JOBS, "default")[0]) == 200


def test_event_window_expires_old_versions() -> None:
    with FakeApiServer(window=20) as srv:
        kube = srv.client()
        _, start = kube.list(JOBS)
        for n in range(60):
            kube.create(JOBS, gpu_job(f"j{n}", queue=None))
        with pytest.raises(WatchExpired):
            list(kube.watch(JOBS, resource_version=start, timeout_s=2))
        _, recent = kube.list(JOBS)
        assert all(e.type == "BOOKMARK" for e in kube.watch(JOBS, resource_version=recent, timeout_s=1))


# -- faults -----------------------------------------------------------------------------------------


def test_restart_refuses_connections_then_comes_back(client: KubeClient, server: FakeApiServer) -> None:
    client.create(JOBS, gpu_job("kept", queue=None))
    port = server.port
    down_seen = threading.Event()

    def probe() -> None:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not down_seen.is_set():
            if not port_open(port):
                down_seen.set()
            time.sleep(0.01)

    prober = threading.Thread(target=probe)
    prober.start()
    server.restart(down_s=0.3)
    prober.join(5)
    assert down_seen.is_set() and server.port == port and port_open(port)
    assert client.get(JOBS, "kept", "default") is not None  # same store, same client, pooled sockets renewed


def test_delay_slows_every_answer(client: KubeClient, server: FakeApiServer) -> None:
    server.delay(0.2)
    start = time.monotonic()
    client.list(JOBS)
    assert time.monotonic() - start >= 0.2
    server.delay(0)


def test_close_stops_everything() -> None:
    srv = FakeApiServer().start()
    port = srv.port
    kube = srv.client()
    _, rv = kube.list(JOBS)
    watch = kube.watch(JOBS, resource_version=rv, timeout_s=30)
    srv.close()
    assert list(watch) == []  # the open watch ends at once
    assert not port_open(port) and not srv.running


# -- the scripted Kueue -----------------------------------------------------------------------------


def test_suspended_job_with_queue_gets_a_workload_and_is_admitted(
    client: KubeClient, server: FakeApiServer
) -> None:
    client.apply(
        kueue_type("ClusterQueue"),
        {
            "metadata": {"name": "gpu-cq"},
            "spec": {
                "resourceGroups": [
                    {"coveredResources": ["nvidia.com/gpu"], "flavors": [{"name": "h100", "resources": []}]}
                ]
            },
        },
    )
    client.apply(
        kueue_type("LocalQueue"),
        {"metadata": {"name": "team-q", "namespace": "default"}, "spec": {"clusterQueue": "gpu-cq"}},
    )
    with KueueController(server) as kueue:
        job = client.create(JOBS, gpu_job("train", 2))
        assert wait_until(lambda: kueue.state("train") == "admitted")
        workload = workload_of(server, kueue, "train")
        assert workload is not None and workload["metadata"]["name"].startswith("job-train-")
        owner = workload["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("Job", "train", job["metadata"]["uid"])
        assert workload["spec"]["queueName"] == "team-q" and workload["spec"]["podSets"][0]["count"] == 1
        assert conditions(workload) == {
            "QuotaReserved": ("True", "QuotaReserved"),
            "Admitted": ("True", "Admitted"),
            "PodsReady": ("True", "PodsReady"),
        }
        admission = workload["status"]["admission"]
        assert admission["clusterQueue"] == "gpu-cq"
        assert admission["podSetAssignments"] == [
            {
                "name": "main",
                "flavors": {"nvidia.com/gpu": "h100"},
                "resourceUsage": {"nvidia.com/gpu": "2"},
                "count": 1,
            }
        ]
        running = client.get(JOBS, "train", "default")
        assert running is not None and running["spec"]["suspend"] is False
        assert running["status"]["active"] == 1 and running["status"]["startTime"]
        assert kueue.errors == []


def test_jobs_kueue_does_not_manage_are_left_alone(client: KubeClient, server: FakeApiServer) -> None:
    with KueueController(server) as kueue:
        client.create(JOBS, gpu_job("no-queue", queue=None))
        unsuspended = gpu_job("running")
        unsuspended["spec"]["suspend"] = False
        client.create(JOBS, unsuspended)
        client.create(JOBS, gpu_job("managed"))
        assert wait_until(lambda: kueue.state("managed") == "admitted")
        assert kueue.state("no-queue") == "unknown" and kueue.state("running") == "unknown"
        assert len(client.list(WORKLOADS, "default")[0]) == 1


@pytest.mark.parametrize("ok", [True, False], ids=["succeeded", "failed"])
def test_finish_sets_job_and_workload_conditions(client: KubeClient, server: FakeApiServer, ok: bool) -> None:
    with KueueController(server) as kueue:
        client.create(JOBS, gpu_job("j"))
        assert wait_until(lambda: kueue.state("j") == "admitted")
        kueue.finish("default/j", ok=ok)
        job = client.get(JOBS, "j", "default")
        assert job is not None
        if ok:
            assert conditions(job)["Complete"] == ("True", "CompletionsReached")
            assert job["status"]["succeeded"] == 1 and job["status"]["completionTime"]
        else:
            assert conditions(job)["Failed"] == ("True", "BackoffLimitExceeded")
            assert job["status"]["failed"] == 1 and "completionTime" not in job["status"]
        assert job["status"]["active"] == 0
        assert conditions(workload_of(server, kueue, "j"))["Finished"] == (
            "True",
            "Succeeded" if ok else "Failed",
        )


@pytest.mark.parametrize("reason", EVICTION_REASONS)
def test_eviction_reasons(client: KubeClient, server: FakeApiServer, reason: str) -> None:
    with KueueController(server, admit_after_s=None) as kueue:
        client.create(JOBS, gpu_job("j"))
        assert wait_until(lambda: kueue.state("j") == "pending")
        kueue.admit("j")
        kueue.evict("j", reason, "why not")
        workload = workload_of(server, kueue, "j")
        got = conditions(workload)
        assert got["Evicted"] == ("True", reason)
        assert got["QuotaReserved"] == ("False", "Pending") and got["Admitted"] == ("False", "NoReservation")
        assert workload is not None and "admission" not in workload["status"]
        assert ("Preempted" in got) == (reason == "Preempted")
        job = client.get(JOBS, "j", "default")
        assert job is not None and job["spec"]["suspend"] is True and job["status"]["active"] == 0
        inactive = reason in ("InactiveWorkload", "Deactivated")
        assert workload["spec"]["active"] is not inactive
        assert kueue.state("j") == ("inactive" if inactive else "pending")


def test_evicted_workload_is_requeued_and_readmitted(client: KubeClient, server: FakeApiServer) -> None:
    with KueueController(server) as kueue:
        client.create(JOBS, gpu_job("j"))
        assert wait_until(lambda: kueue.state("j") == "admitted")
        kueue.evict("j", "PodsReadyTimeout")
        assert wait_until(lambda: kueue.state("j") == "admitted")
        got = conditions(workload_of(server, kueue, "j"))
        assert got["Evicted"] == ("False", "QuotaReserved") and got["Admitted"] == ("True", "Admitted")
        job = client.get(JOBS, "j", "default")
        assert job is not None and job["spec"]["suspend"] is False


def test_admission_after_a_delay(client: KubeClient, server: FakeApiServer) -> None:
    with KueueController(server, admit_after_s=0.3) as kueue:
        start = time.monotonic()
        client.create(JOBS, gpu_job("j"))
        assert wait_until(lambda: kueue.state("j") == "pending")
        assert conditions(workload_of(server, kueue, "j")) == {"QuotaReserved": ("False", "Pending")}
        assert wait_until(lambda: kueue.state("j") == "admitted")
        assert time.monotonic() - start >= 0.3


def test_gpu_capacity_admits_only_what_fits(client: KubeClient, server: FakeApiServer) -> None:
    with KueueController(server, gpu_capacity=4) as kueue:
        for name, gpus in (("a", 2), ("b", 2), ("c", 4), ("d", 1)):
            client.create(JOBS, gpu_job(name, gpus))
        assert wait_until(lambda: kueue.counts().get("pending") == 2)
        assert [kueue.state(n) for n in "abcd"] == ["admitted", "admitted", "pending", "pending"]
        kueue.finish("a")
        assert wait_until(lambda: kueue.state("d") == "admitted")  # 2 free: c (4) waits, d (1) fits
        kueue.finish("b")
        kueue.finish("d")
        assert wait_until(lambda: kueue.state("c") == "admitted")
        assert kueue.admitted_gpus == 4


def test_run_s_finishes_jobs_by_outcome(client: KubeClient, server: FakeApiServer) -> None:
    def outcome(job: dict[str, Any]) -> bool:
        return not job["metadata"]["name"].startswith("bad")

    with KueueController(server, run_s=0.05, outcome=outcome) as kueue:
        client.create(JOBS, gpu_job("good"))
        client.create(JOBS, gpu_job("bad"))
        assert wait_until(lambda: kueue.counts() == {"finished": 2})
        assert conditions(workload_of(server, kueue, "good"))["Finished"] == ("True", "Succeeded")
        assert conditions(workload_of(server, kueue, "bad"))["Finished"] == ("True", "Failed")


def test_jobset_gang_is_one_workload(client: KubeClient, server: FakeApiServer) -> None:
    def replicated(name: str, pods: int, gpus: int) -> dict[str, Any]:
        container = {"name": name, "image": "x", "resources": {"requests": {"nvidia.com/gpu": str(gpus)}}}
        template = {"spec": {"containers": [container]}}
        return {
            "name": name,
            "replicas": 1,
            "template": {"spec": {"parallelism": pods, "template": template}},
        }

    jobset = {
        "metadata": {"name": "gang", "namespace": "default", "labels": {QUEUE: "team-q"}},
        "spec": {
            "suspend": True,
            "replicatedJobs": [replicated("driver", 1, 0), replicated("workers", 4, 8)],
        },
    }
    with KueueController(server, gpu_capacity=32) as kueue:
        client.create(JOBSETS, jobset)
        assert wait_until(lambda: kueue.state(jobset) == "admitted")
        workload = server.get_object(WORKLOADS, kueue.workload_name(jobset), "default")
        assert workload is not None and workload["metadata"]["name"].startswith("jobset-gang-")
        assert [(p["name"], p["count"]) for p in workload["spec"]["podSets"]] == [
            ("driver", 1),
            ("workers", 4),
        ]
        usage = {p["name"]: p["resourceUsage"] for p in workload["status"]["admission"]["podSetAssignments"]}
        assert usage["workers"] == {"nvidia.com/gpu": "32"} and kueue.admitted_gpus == 32
        running = client.get(JOBSETS, "gang", "default")
        assert running is not None and running["spec"]["suspend"] is False
        kueue.finish(jobset)
        done = client.get(JOBSETS, "gang", "default")
        assert done is not None and done["status"]["terminalState"] == "Completed"
        assert conditions(done)["Completed"] == ("True", "AllJobsCompleted")


def test_deleted_job_releases_its_capacity(client: KubeClient, server: FakeApiServer) -> None:
    with KueueController(server, gpu_capacity=1) as kueue:
        client.create(JOBS, gpu_job("first"))
        client.create(JOBS, gpu_job("second"))
        assert wait_until(lambda: kueue.state("first") == "admitted" and kueue.state("second") == "pending")
        name = kueue.workload_name("first")
        client.delete(JOBS, "first", "default")
        assert client.get(WORKLOADS, name, "default") is None  # garbage-collected with its owner
        assert wait_until(lambda: kueue.state("second") == "admitted")


def test_controller_is_unaffected_by_restarts_and_compaction(
    client: KubeClient, server: FakeApiServer
) -> None:
    with KueueController(server, admit_after_s=None) as kueue:
        client.create(JOBS, gpu_job("j"))
        assert wait_until(lambda: kueue.state("j") == "pending")
        server.restart(down_s=0.05)
        server.compact()
        client.create(JOBS, gpu_job("k"))
        assert wait_until(lambda: kueue.state("k") == "pending")
        kueue.admit("j")
        assert kueue.state("j") == "admitted" and kueue.errors == []


# -- scale and faults together --------------------------------------------------------------------


def test_thousand_jobs_through_watches_with_drops_and_restarts(
    client: KubeClient, server: FakeApiServer
) -> None:
    """1,000 Jobs created, admitted and finished; a watcher that resumes from its last
    resourceVersion (re-listing on 410) sees each finish exactly once despite 20 dropped
    watches and 2 restarts."""
    total = 1000
    finished: dict[str, int] = {}
    stop = threading.Event()
    problems: list[BaseException] = []

    def watcher() -> None:
        _, rv = client.list(JOBS, "default")
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                for event in client.watch(JOBS, namespace="default", resource_version=rv, timeout_s=5):
                    rv = event.resource_version or rv
                    if event.type == "MODIFIED" and event.object.get("status", {}).get("succeeded"):
                        name = event.object["metadata"]["name"]
                        finished[name] = finished.get(name, 0) + 1
                    if stop.is_set():
                        return
            except WatchExpired:
                problems.append(AssertionError("the event window is large enough: no 410 expected"))
                return
            except KubeError as exc:
                if exc.reason != "Unreachable":
                    problems.append(exc)
                    return
                time.sleep(0.02)

    with KueueController(server, run_s=0.01) as kueue:
        thread = threading.Thread(target=watcher)
        thread.start()
        for n in range(total):
            while True:
                try:
                    client.create(JOBS, gpu_job(f"job-{n:04d}"))
                    break
                except KubeError as exc:  # the server restarting: retry; AlreadyExists: it got there
                    if exc.reason == "AlreadyExists":
                        break
                    assert exc.reason in ("Unreachable", "Disconnected"), exc
                    time.sleep(0.02)
            if n % 50 == 25:
                server.drop_watches()
            if n in (300, 700):
                server.restart(down_s=0.1)
        assert wait_until(lambda: len(finished) == total, timeout_s=30)
        stop.set()
        thread.join(10)
        assert problems == [] and kueue.errors == []
        assert set(finished.values()) == {1}
        assert kueue.counts() == {"finished": total}
