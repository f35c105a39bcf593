"""KubeClient against the API-server double: every verb, every error path, watches and faults.

Real HTTP through the official client's ApiClient and urllib3 (see ``kueue/apiserver.py`` for what
the double does and does not check). Each error must be one line naming the context and the object.
"""

from __future__ import annotations

import json
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("kubernetes")

from budcore_adapters.kueue.client import (
    JOBS,
    JOBSETS,
    KUEUE_KINDS,
    NAMESPACES,
    NODES,
    PODS,
    KubeClient,
    KubeError,
    ResourceType,
    WatchEvent,
    WatchExpired,
    builtin_types,
    kueue_type,
    resource_type_for,
)
from kueue.apiserver import FakeApiServer, wait_until

from budcore.domain.errors import ValidationError


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer() as srv:
        yield srv


@pytest.fixture
def client(server: FakeApiServer) -> Iterator[KubeClient]:
    kube = server.client()
    yield kube
    kube.close()


def job(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "suspend": True,
            "template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}},
        },
    }


def sample(rt: ResourceType, name: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": {"app": "budcore-test"}}
    if rt.namespaced:
        metadata["namespace"] = "default"
    return {"metadata": metadata, "spec": {"x": 1}}


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text
    return text


# -- resource types ---------------------------------------------------------------------------------


def test_resource_type_paths() -> None:
    assert NODES.path() == "/api/v1/nodes"
    assert NODES.path(name="n1") == "/api/v1/nodes/n1"
    assert NODES.path("ignored", "n1") == "/api/v1/nodes/n1"
    assert JOBS.path() == "/apis/batch/v1/jobs"
    assert JOBS.path("ns") == "/apis/batch/v1/namespaces/ns/jobs"
    assert JOBS.path("ns", "x", "status") == "/apis/batch/v1/namespaces/ns/jobs/x/status"
    assert JOBS.api_version == "batch/v1" and NAMESPACES.api_version == "v1"
    cq = kueue_type("ClusterQueue")
    assert cq.api_version == "kueue.x-k8s.io/v1beta2" and not cq.namespaced
    assert cq.path(name="cq") == "/apis/kueue.x-k8s.io/v1beta2/clusterqueues/cq"
    assert (
        kueue_type("LocalQueue", "v1beta1").path("t")
        == "/apis/kueue.x-k8s.io/v1beta1/namespaces/t/localqueues"
    )
    assert resource_type_for("kueue.x-k8s.io/v1beta1", "Cohort") == kueue_type("Cohort", "v1beta1")
    assert resource_type_for("jobset.x-k8s.io/v1alpha2", "JobSet") == JOBSETS
    assert cq.with_version("v1beta1") == kueue_type("ClusterQueue", "v1beta1")
    assert JOBS.group_resource == "jobs.batch" and PODS.group_resource == "pods"


def test_resource_type_errors() -> None:
    with pytest.raises(ValidationError, match="unknown Kueue kind 'Queue'"):
        kueue_type("Queue")
    with pytest.raises(ValidationError, match="unsupported Kueue API version 'v1alpha1'"):
        kueue_type("ClusterQueue", "v1alpha1")
    with pytest.raises(ValidationError, match="no resource type known"):
        resource_type_for("apps/v1", "Deployment")


# -- CRUD -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rt", builtin_types(), ids=lambda rt: f"{rt.kind}-{rt.version}")
def test_crud_every_resource_type(client: KubeClient, rt: ResourceType) -> None:
    created = client.create(rt, sample(rt, "obj-1"))
    meta = created["metadata"]
    assert created["apiVersion"] == rt.api_version and created["kind"] == rt.kind
    assert meta["uid"] and meta["creationTimestamp"] and meta["generation"] == 1
    assert meta["labels"] == {"app": "budcore-test"}
    namespace = "default" if rt.namespaced else None

    got = client.get(rt, "obj-1", namespace)
    assert got is not None and got["metadata"]["resourceVersion"] == meta["resourceVersion"]
    items, list_rv = client.list(rt, namespace)
    names = [i["metadata"]["name"] for i in items]
    assert "obj-1" in names and int(list_rv) >= int(meta["resourceVersion"])
    assert all(i["apiVersion"] == rt.api_version and i["kind"] == rt.kind for i in items)

    replaced = client.replace(rt, {**got, "spec": {"x": 2}})
    assert replaced["spec"]["x"] == 2 and replaced["metadata"]["generation"] == 2
    assert int(replaced["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    patched = client.patch(rt, "obj-1", namespace, {"metadata": {"labels": {"extra": "yes"}}})
    assert patched["metadata"]["labels"] == {"app": "budcore-test", "extra": "yes"}
    assert patched["metadata"]["generation"] == 2  # metadata only: no new generation

    if rt.kind not in ("ResourceFlavor", "WorkloadPriorityClass"):  # no status subresource there
        with_status = client.patch_status(rt, "obj-1", namespace, {"status": {"phase": "Tested"}})
        assert with_status["status"]["phase"] == "Tested" and with_status["spec"]["x"] == 2

    assert client.delete(rt, "obj-1", namespace) is True
    assert client.get(rt, "obj-1", namespace) is None
    assert client.delete(rt, "obj-1", namespace) is False


def test_both_kueue_versions_share_one_object(client: KubeClient) -> None:
    v1 = kueue_type("ClusterQueue", "v1beta1")
    v2 = kueue_type("ClusterQueue", "v1beta2")
    client.create(v1, {"metadata": {"name": "cq"}, "spec": {"namespaceSelector": {}}})
    got = client.get(v2, "cq")
    assert got is not None and got["apiVersion"] == "kueue.x-k8s.io/v1beta2"
    assert [i["apiVersion"] for i in client.list(v1)[0]] == ["kueue.x-k8s.io/v1beta1"]


def test_status_lives_in_the_status_subresource(client: KubeClient) -> None:
    created = client.create(JOBS, {**job("j"), "status": {"active": 5}})
    assert "status" not in created  # a create drops status, as for every status-subresource type
    client.patch_status(JOBS, "j", "default", {"status": {"active": 1}})
    after = client.patch(JOBS, "j", "default", {"status": {"active": 9}, "spec": {"parallelism": 3}})
    assert after["status"] == {"active": 1} and after["spec"]["parallelism"] == 3
    node = client.create(NODES, {"metadata": {"name": "n1"}, "status": {"capacity": {"nvidia.com/gpu": "8"}}})
    assert node["status"]["capacity"] == {"nvidia.com/gpu": "8"}  # nodes keep what they register


def test_merge_patch_null_deletes(client: KubeClient) -> None:
    client.create(JOBS, job("j", team="a", tier="gold"))
    patched = client.patch(JOBS, "j", "default", {"metadata": {"labels": {"tier": None}}})
    assert patched["metadata"]["labels"] == {"team": "a"}


def test_label_selectors(client: KubeClient) -> None:
    client.create(JOBS, job("a", team="x", tier="gold"))
    client.create(JOBS, job("b", team="y"))
    client.create(JOBS, job("c", team="x", tier="bronze"))
    client.create(JOBS, job("d", "other", team="x"))

    def names(selector: str, namespace: str | None = "default") -> list[str]:
        return sorted(i["metadata"]["name"] for i in client.list(JOBS, namespace, label_selector=selector)[0])

    assert names("team=x") == ["a", "c"]
    assert names("team=x", None) == ["a", "c", "d"]
    assert names("team!=x") == ["b"]
    assert names("team==x,tier") == ["a", "c"]
    assert names("!tier") == ["b"]
    assert names("tier in (gold,silver)") == ["a"]
    assert names("tier notin (gold),team=x") == ["c"]
    with pytest.raises(KubeError, match="HTTP 400 BadRequest") as info:
        client.list(JOBS, "default", label_selector="team=(x")
    assert info.value.status == 400


def test_field_selector(client: KubeClient) -> None:
    client.create(JOBS, job("a"))
    client.create(JOBS, job("b"))
    items, _ = client.list(JOBS, "default", field_selector="metadata.name=b")
    assert [i["metadata"]["name"] for i in items] == ["b"]


# -- server-side apply ------------------------------------------------------------------------------


def test_apply_creates_updates_and_is_idempotent(client: KubeClient) -> None:
    rt = kueue_type("ClusterQueue")
    desired = {
        "metadata": {"name": "cq", "labels": {"app.kubernetes.io/managed-by": "budcore"}},
        "spec": {"a": 1},
    }
    first = client.apply(rt, desired)
    rv = first["metadata"]["resourceVersion"]
    assert first["spec"] == {"a": 1} and first["metadata"]["generation"] == 1
    (entry,) = first["metadata"]["managedFields"]
    assert entry["manager"] == "budcore" and entry["operation"] == "Apply"
    assert entry["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:app.kubernetes.io/managed-by": {}}},
        "f:spec": {"f:a": {}},
    }

    again = client.apply(rt, desired)
    assert again["metadata"]["resourceVersion"] == rv  # nothing changed: a no-op, like the apiserver
    assert again["metadata"]["managedFields"] == first["metadata"]["managedFields"]

    changed = client.apply(rt, {**desired, "spec": {"a": 2, "b": [1, 2]}})
    assert changed["spec"] == {"a": 2, "b": [1, 2]} and changed["metadata"]["generation"] == 2
    assert int(changed["metadata"]["resourceVersion"]) > int(rv)

    shrunk = client.apply(rt, {**desired, "spec": {"b": [3]}})
    assert shrunk["spec"] == {"b": [3]}  # a field the manager stopped applying is removed; lists replace


def test_apply_keeps_fields_of_other_writers(client: KubeClient) -> None:
    rt = kueue_type("LocalQueue")
    client.apply(rt, {"metadata": {"name": "lq", "namespace": "default"}, "spec": {"clusterQueue": "cq"}})
    client.patch(rt, "lq", "default", {"metadata": {"annotations": {"note": "kept"}}})
    applied = client.apply(
        rt, {"metadata": {"name": "lq", "namespace": "default"}, "spec": {"clusterQueue": "cq2"}}
    )
    assert applied["metadata"]["annotations"] == {"note": "kept"} and applied["spec"] == {
        "clusterQueue": "cq2"
    }


def test_apply_dry_run_stores_nothing(client: KubeClient, server: FakeApiServer) -> None:
    rt = kueue_type("ResourceFlavor")
    before = server.resource_version
    preview = client.apply(rt, {"metadata": {"name": "rf"}, "spec": {"nodeLabels": {"a": "b"}}}, dry_run=True)
    assert preview["spec"] == {"nodeLabels": {"a": "b"}}
    assert client.get(rt, "rf") is None and server.resource_version == before
    client.apply(rt, {"metadata": {"name": "rf"}, "spec": {"nodeLabels": {"a": "b"}}})
    preview = client.apply(rt, {"metadata": {"name": "rf"}, "spec": {"nodeLabels": {"a": "c"}}}, dry_run=True)
    assert preview["spec"]["nodeLabels"] == {"a": "c"}
    stored = client.get(rt, "rf")
    assert stored is not None and stored["spec"]["nodeLabels"] == {"a": "b"}
    assert client.create(rt, {"metadata": {"name": "rf2"}}, dry_run=True)["metadata"]["name"] == "rf2"
    assert client.get(rt, "rf2") is None


def test_apply_v1beta1_and_v1beta2(client: KubeClient) -> None:
    for version in ("v1beta1", "v1beta2"):
        rt = kueue_type("WorkloadPriorityClass", version)
        obj = client.apply(rt, {"metadata": {"name": f"p-{version}"}, "value": 100})
        assert obj["apiVersion"] == f"kueue.x-k8s.io/{version}" and obj["value"] == 100


# -- errors -----------------------------------------------------------------------------------------


def test_create_conflict_is_already_exists(client: KubeClient) -> None:
    client.create(JOBS, job("j"))
    with pytest.raises(KubeError) as info:
        client.create(JOBS, job("j"))
    err = info.value
    assert (err.status, err.reason, err.kind, err.name, err.namespace) == (
        409,
        "AlreadyExists",
        "Job",
        "j",
        "default",
    )
    assert (
        one_line(err)
        == 'fake-cluster: create Job default/j: HTTP 409 AlreadyExists: jobs.batch "j" already exists'
    )


def test_stale_replace_is_a_conflict(client: KubeClient) -> None:
    created = client.create(JOBS, job("j"))
    client.patch(JOBS, "j", "default", {"spec": {"parallelism": 2}})
    with pytest.raises(KubeError) as info:
        client.replace(JOBS, {**created, "spec": {**created["spec"], "parallelism": 3}})
    assert info.value.status == 409 and info.value.reason == "Conflict"
    assert "the object has been modified" in one_line(info.value)


def test_injected_conflicts(client: KubeClient, server: FakeApiServer) -> None:
    client.create(JOBS, job("j"))
    server.conflict_next(2)
    for _ in range(2):
        with pytest.raises(KubeError, match="HTTP 409 Conflict"):
            client.patch(JOBS, "j", "default", {"metadata": {"labels": {"a": "b"}}})
    assert client.patch(JOBS, "j", "default", {"metadata": {"labels": {"a": "b"}}})["metadata"]["labels"] == {
        "a": "b"
    }


def test_not_found(client: KubeClient) -> None:
    assert client.get(JOBS, "nope", "default") is None
    with pytest.raises(KubeError) as info:
        client.patch_status(JOBS, "nope", "default", {"status": {}})
    assert info.value.status == 404 and info.value.reason == "NotFound"
    assert one_line(info.value) == (
        'fake-cluster: patch status of Job default/nope: HTTP 404 NotFound: jobs.batch "nope" not found'
    )


def test_invalid_objects_are_rejected(client: KubeClient) -> None:
    with pytest.raises(KubeError, match="HTTP 422 Invalid") as info:
        client.create(JOBS, job("Not_A_Name"))
    assert info.value.name == "Not_A_Name"
    with pytest.raises(KubeError, match=r"HTTP 422 Invalid.*metadata\.labels"):
        client.create(JOBS, job("j", tenant="has space"))
    with pytest.raises(KubeError, match="HTTP 400 BadRequest: the kind in the body"):
        client.create(JOBS, {**job("j"), "kind": "Pod"})


def test_unauthorized_without_the_token(server: FakeApiServer, tmp_path: Path) -> None:
    bad = KubeClient.from_kubeconfig(server.kubeconfig(tmp_path, token="wrong"))
    with pytest.raises(KubeError) as info:
        bad.list(JOBS, "default")
    assert info.value.status == 401 and info.value.reason == "Unauthorized"
    assert one_line(info.value) == "fake-cluster: list Job in default: HTTP 401 Unauthorized: Unauthorized"


def test_forbidden_namespace_names_object_and_context(client: KubeClient, server: FakeApiServer) -> None:
    server.forbid("team-a")
    with pytest.raises(KubeError) as info:
        client.create(JOBS, job("train-1", "team-a"))
    err = info.value
    assert (err.status, err.reason, err.context) == (403, "Forbidden", "fake-cluster")
    assert one_line(err).startswith(
        "fake-cluster: create Job team-a/train-1: HTTP 403 Forbidden: jobs.batch is forbidden"
    )
    assert 'in the namespace "team-a"' in str(err)
    with pytest.raises(KubeError, match='cannot get resource "jobs"'):
        client.get(JOBS, "train-1", "team-a")
    assert client.list(JOBS, "default")[0] == []  # other namespaces are fine


def test_unreachable_server_names_url_and_context(server: FakeApiServer, client: KubeClient) -> None:
    url = server.url
    server.stop()
    with pytest.raises(KubeError) as info:
        client.get(JOBS, "j", "default")
    err = info.value
    assert (err.status, err.reason) == (0, "Unreachable")
    assert one_line(err).startswith(f"fake-cluster: get Job default/j: Unreachable: cannot reach {url}:")
    assert "Connection refused" in str(err)


def test_slow_server_times_out(server: FakeApiServer, client: KubeClient) -> None:
    impatient = KubeClient(client.api_client, context="slow", timeout_s=0.2)
    server.delay(0.5)
    try:
        start = time.monotonic()
        with pytest.raises(KubeError, match="Timeout"):
            impatient.list(JOBS)
        assert time.monotonic() - start < 0.45  # reads are not retried behind the caller's back
        with pytest.raises(KubeError) as info:
            impatient.create(JOBS, job("j"))
        assert (info.value.status, info.value.reason) == (0, "Timeout")
        assert (
            one_line(info.value)
            == f"slow: create Job default/j: Timeout: no answer from {server.url} within 0.2 s"
        )
    finally:
        server.delay(0)


# -- kubeconfig -------------------------------------------------------------------------------------


def test_kubeconfig_errors_name_file_and_context(server: FakeApiServer, tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ValidationError) as info:
        KubeClient.from_kubeconfig(missing, "prod")
    assert str(missing) in str(info.value) and "prod" in str(info.value) and "not found" in str(info.value)

    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("clusters: [unclosed\n")
    with pytest.raises(ValidationError, match="not a readable kubeconfig") as info:
        KubeClient.from_kubeconfig(garbage)
    assert str(garbage) in one_line(info.value)

    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(ValidationError, match="expected a mapping"):
        KubeClient.from_kubeconfig(scalar)

    empty = tmp_path / "empty.yaml"
    empty.write_text("apiVersion: v1\nkind: Config\ncontexts: []\n")
    with pytest.raises(ValidationError, match="defines no contexts"):
        KubeClient.from_kubeconfig(empty, "prod")

    good = server.kubeconfig(tmp_path)
    with pytest.raises(ValidationError) as info:
        KubeClient.from_kubeconfig(good, "prod")
    assert one_line(info.value) == f"{good}: context 'prod' not found; known contexts: fake-cluster"


def test_kubeconfig_without_current_context(server: FakeApiServer, tmp_path: Path) -> None:
    import yaml

    path = server.kubeconfig(tmp_path)
    document = yaml.safe_load(path.read_text())
    del document["current-context"]
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ValidationError, match=r"no current-context.*known contexts: fake-cluster"):
        KubeClient.from_kubeconfig(path)
    assert KubeClient.from_kubeconfig(path, "fake-cluster").list(JOBS)[0] == []


def test_kubeconfig_from_environment(
    server: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(server.kubeconfig(tmp_path)))
    kube = KubeClient.from_kubeconfig()
    assert kube.context == "fake-cluster" and kube.server == server.url
    assert kube.list(NAMESPACES)[0][0]["metadata"]["name"] == "default"


def test_kubeconfig_exec_credential_plugin(server: FakeApiServer, tmp_path: Path) -> None:
    """Tokens from an exec plugin (as cloud providers ship them) reach the server."""
    import yaml

    plugin = tmp_path / "credential.py"
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "kind": "ExecCredential",
        "status": {"token": server.token},
    }
    plugin.write_text(f"import json\nprint(json.dumps({credential!r}))\n")
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    path = server.kubeconfig(tmp_path)
    document = yaml.safe_load(path.read_text())
    document["users"][0]["user"] = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": sys.executable,
            "args": [str(plugin)],
            "interactiveMode": "Never",
        }
    }
    path.write_text(yaml.safe_dump(document))
    kube = KubeClient.from_kubeconfig(path)
    assert kube.create(JOBS, job("via-exec"))["metadata"]["name"] == "via-exec"


def test_api_versions(server: FakeApiServer, client: KubeClient) -> None:
    assert client.api_versions("kueue.x-k8s.io") == ["v1beta2", "v1beta1"]
    assert client.api_versions("example.com") == []
    with FakeApiServer(kueue_versions=["v1beta1"]) as old:
        kube = old.client()
        assert kube.api_versions("kueue.x-k8s.io") == ["v1beta1"]
        with pytest.raises(KubeError, match="HTTP 404"):
            kube.list(kueue_type("ClusterQueue", "v1beta2"))


# -- watch ------------------------------------------------------------------------------------------


class Collector:
    """Consumes a watch in a thread (bounded by the watch's own timeout)."""

    def __init__(self, events: Iterator[WatchEvent]) -> None:
        self.events: list[WatchEvent] = []
        self.error: BaseException | None = None
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(events,), daemon=True)
        self._thread.start()

    def _run(self, events: Iterator[WatchEvent]) -> None:
        try:
            for event in events:
                self.events.append(event)
        except BaseException as exc:
            self.error = exc
        finally:
            self.ended.set()

    def changes(self) -> list[tuple[str, str]]:
        return [(e.type, e.object["metadata"]["name"]) for e in self.events if e.type != "BOOKMARK"]


def test_watch_streams_events_in_order(client: KubeClient) -> None:
    _, rv = client.list(JOBS, "default")
    seen = Collector(client.watch(JOBS, namespace="default", resource_version=rv, timeout_s=5))
    client.create(JOBS, job("a"))
    client.create(JOBS, job("b"))
    client.patch(JOBS, "a", "default", {"spec": {"parallelism": 2}})
    client.create(JOBS, job("other", "elsewhere"))
    client.delete(JOBS, "b", "default")
    assert wait_until(lambda: len(seen.changes()) >= 4)
    assert seen.changes() == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    versions = [int(e.resource_version) for e in seen.events if e.type != "BOOKMARK"]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert all(e.object["kind"] == "Job" for e in seen.events if e.type != "BOOKMARK")


def test_watch_bookmarks_and_timeout(client: KubeClient, server: FakeApiServer) -> None:
    client.create(JOBS, job("a"))
    _, rv = client.list(JOBS)
    client.create(kueue_type("ResourceFlavor"), {"metadata": {"name": "rf"}})  # another kind moves the RV
    start = time.monotonic()
    events = list(client.watch(JOBS, resource_version=rv, timeout_s=1))
    assert 0.9 < time.monotonic() - start < 3  # the server ends the watch at timeoutSeconds
    assert events and all(e.type == "BOOKMARK" for e in events)
    assert events[-1].resource_version == str(server.resource_version)


def test_watch_from_empty_version_lists_first(client: KubeClient) -> None:
    client.create(JOBS, job("a"))
    client.create(JOBS, job("b"))
    seen = Collector(client.watch(JOBS, resource_version="", timeout_s=2))
    assert wait_until(lambda: len(seen.changes()) >= 2)
    assert seen.changes() == [("ADDED", "a"), ("ADDED", "b")]


def test_watch_with_selector_sees_objects_enter_and_leave(client: KubeClient) -> None:
    _, rv = client.list(JOBS)
    seen = Collector(client.watch(JOBS, resource_version=rv, label_selector="phase=run", timeout_s=5))
    client.create(JOBS, job("a", phase="wait"))
    client.patch(JOBS, "a", "default", {"metadata": {"labels": {"phase": "run"}}})
    client.patch(JOBS, "a", "default", {"metadata": {"labels": {"phase": "done"}}})
    assert wait_until(lambda: len(seen.changes()) >= 2)
    assert seen.changes() == [("ADDED", "a"), ("DELETED", "a")]


def test_watch_resumes_after_dropped_connections(client: KubeClient, server: FakeApiServer) -> None:
    _, rv = client.list(JOBS)
    seen: list[str] = []
    for round_ in range(3):
        watch = client.watch(JOBS, resource_version=rv, timeout_s=10)
        client.create(JOBS, job(f"j{round_}"))
        first = next(e for e in watch if e.type != "BOOKMARK")
        seen.append(first.object["metadata"]["name"])
        rv = first.resource_version
        client.create(JOBS, job(f"k{round_}"))  # happens while the watch is being cut
        assert wait_until(lambda: server.open_watches == 1)
        server.drop_watches()
        rest = [e for e in watch if e.type != "BOOKMARK"]  # ends cleanly, maybe with k{round_}
        for event in rest:
            seen.append(event.object["metadata"]["name"])
            rv = event.resource_version
        missed = list(client.watch(JOBS, resource_version=rv, timeout_s=1))
        for event in missed:
            if event.type != "BOOKMARK":
                seen.append(event.object["metadata"]["name"])
            rv = event.resource_version or rv
    assert seen == ["j0", "k0", "j1", "k1", "j2", "k2"]  # nothing lost, nothing twice


def test_watch_expired_after_compaction(client: KubeClient, server: FakeApiServer) -> None:
    client.create(JOBS, job("a"))
    _, old_rv = client.list(JOBS)
    client.create(JOBS, job("b"))
    server.compact()
    with pytest.raises(WatchExpired) as info:
        list(client.watch(JOBS, resource_version=old_rv, timeout_s=5))
    assert info.value.status == 410 and info.value.reason == "Expired"
    assert (
        one_line(info.value)
        == f"fake-cluster: watch Job: HTTP 410 Expired: too old resource version: {old_rv}"
    )
    items, fresh = client.list(JOBS)  # the cure: re-list, watch from the list's version
    assert len(items) == 2
    assert all(e.type == "BOOKMARK" for e in client.watch(JOBS, resource_version=fresh, timeout_s=1))


def test_watch_expired_as_http_410() -> None:
    with FakeApiServer(expired_as_http=True) as srv:
        kube = srv.client()
        kube.create(JOBS, job("a"))
        srv.compact()
        with pytest.raises(WatchExpired, match="HTTP 410 Expired"):
            kube.watch(JOBS, resource_version="1", timeout_s=5)


def test_watch_survives_restart_then_resumes(client: KubeClient, server: FakeApiServer) -> None:
    port = server.port
    _, rv = client.list(JOBS)
    watch = client.watch(JOBS, resource_version=rv, timeout_s=10)
    client.create(JOBS, job("before"))
    first = next(e for e in watch if e.type != "BOOKMARK")
    rv = first.resource_version
    server.stop()  # the apiserver goes down (the restart's first half, done by hand: no timing)
    assert [e for e in watch if e.type != "BOOKMARK"] == []  # the stream is cut, cleanly
    with pytest.raises(KubeError) as info:  # while it is down the port refuses
        next(iter(client.watch(JOBS, resource_version=rv, timeout_s=5)))
    assert info.value.reason == "Unreachable"
    server.start()  # back on the same port, over the same store
    assert server.port == port
    client.create(JOBS, job("after"))
    after = [e for e in client.watch(JOBS, resource_version=rv, timeout_s=1) if e.type != "BOOKMARK"]
    assert [(e.type, e.object["metadata"]["name"]) for e in after] == [("ADDED", "after")]
    assert client.get(JOBS, "before", "default") is not None  # same store


def test_watch_events_are_plain_json(client: KubeClient) -> None:
    _, rv = client.list(JOBS)
    client.create(JOBS, job("a"))
    event = next(e for e in client.watch(JOBS, resource_version=rv, timeout_s=2) if e.type != "BOOKMARK")
    assert json.loads(json.dumps(event.object))["metadata"]["name"] == "a"
    assert WatchEvent("BOOKMARK", {"metadata": {"resourceVersion": "7"}}).resource_version == "7"
    assert WatchEvent("ADDED", {}).resource_version == ""


def test_kueue_kinds_catalogue() -> None:
    assert set(KUEUE_KINDS) == {
        "ResourceFlavor",
        "ClusterQueue",
        "Cohort",
        "WorkloadPriorityClass",
        "LocalQueue",
        "Workload",
    }
    assert {rt.kind for rt in builtin_types() if rt.namespaced} >= {
        "LocalQueue",
        "Workload",
        "Job",
        "JobSet",
        "Pod",
    }
