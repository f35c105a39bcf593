"""plan / apply / prune against the API-server double (real HTTP through KubeClient).

The configuration is budcore's shipped example ``platform-gpu-pool`` (the seeds' three
ClusterQueues): 2 ResourceFlavors, 3 ClusterQueues, 3 LocalQueues in namespaces budserve and
budusecases. Edits are made to its YAML text, as a user would make them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from budcore_adapters.kueue.apply import Action, ApplyError, FieldChange, apply, plan
from budcore_adapters.kueue.client import KubeClient, KubeError, ResourceType, kueue_type
from budcore_adapters.kueue.render import MANAGED_BY_LABEL, render
from kueue.apiserver import FakeApiServer

from budcore.config import loads_queue_config, read_example

EXAMPLE = read_example("platform-gpu-pool")
CQ = kueue_type("ClusterQueue")
LQ = kueue_type("LocalQueue")
RF = kueue_type("ResourceFlavor")


def desired(text: str = EXAMPLE, version: str = "v1beta2", **kwargs: Any) -> list[dict[str, Any]]:
    return render(loads_queue_config(text, source="queues.yaml"), api_version=version, **kwargs)


def without_document(text: str, marker: str) -> str:
    """The YAML stream without the document containing ``marker``."""
    return "---".join(d for d in text.split("---") if marker not in d)


def versions(server: FakeApiServer) -> dict[tuple[str, str, str], str]:
    """(kind, namespace, name) → resourceVersion of every Kueue object budcore manages."""
    out: dict[tuple[str, str, str], str] = {}
    for kind in ("ResourceFlavor", "Cohort", "ClusterQueue", "WorkloadPriorityClass", "LocalQueue"):
        for obj in server.objects(kueue_type(kind)):
            meta = obj["metadata"]
            out[(kind, meta.get("namespace", ""), meta["name"])] = meta["resourceVersion"]
    return out


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer() as fake:
        yield fake


@pytest.fixture
def client(server: FakeApiServer) -> Iterator[KubeClient]:
    kube = server.client()
    yield kube
    kube.close()


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2"])
def test_first_apply_creates_everything_second_is_a_no_op(
    server: FakeApiServer, client: KubeClient, version: str
) -> None:
    objects = desired(version=version)
    first = plan(client, objects)
    assert [c.action for c in first.objects] == [Action.CREATE] * len(objects) == [Action.CREATE] * 8
    assert first.has_changes and not first.prune_candidates
    report = apply(client, first)
    assert report.changed == 8 and report.unchanged == 0
    assert report.done()[:3] == [
        "created ResourceFlavor a100-80gb",
        "created ResourceFlavor h100-sxm",
        "created ClusterQueue model-endpoints",
    ]
    assert report.done()[-1] == "created LocalQueue budusecases/usecase-deployments"
    stored = server.get_object(CQ.with_version(version), "model-endpoints")
    assert stored is not None
    assert stored["metadata"]["labels"] == {MANAGED_BY_LABEL: "budcore"}
    assert [m["manager"] for m in stored["metadata"]["managedFields"]] == ["budcore"]

    before, rv = versions(server), server.resource_version
    second = plan(client, desired(version=version))
    assert {c.action for c in second.objects} == {Action.UNCHANGED}
    assert not second.has_changes
    assert second.summary() == "0 to create, 0 to update, 8 unchanged"
    again = apply(client, second)
    assert again.changed == 0 and again.unchanged == 8
    assert (versions(server), server.resource_version) == (before, rv)  # no write reached the store


def test_quota_change_is_one_field_of_one_object(server: FakeApiServer, client: KubeClient) -> None:
    apply(client, plan(client, desired()))
    before = versions(server)
    edited = EXAMPLE.replace("nominalQuota: 100", "nominalQuota: 120")
    planned = plan(client, desired(edited))
    (update,) = planned.of(Action.UPDATE)
    assert update.ref == "ClusterQueue model-endpoints"
    path = "spec.resourceGroups[0].flavors[0].resources[0].nominalQuota"
    assert update.fields == (FieldChange("~", path, "100", "120"),)
    assert len(planned.of(Action.UNCHANGED)) == 7
    text = planned.describe()
    assert f'~ ClusterQueue model-endpoints (update)\n~     {path}: "100" -> "120"\n' in text
    assert text.endswith("0 to create, 1 to update, 7 unchanged\n")

    report = apply(client, planned)
    assert report.done() == ["updated ClusterQueue model-endpoints"]
    after = versions(server)
    changed = {key for key in before if before[key] != after[key]}
    assert changed == {("ClusterQueue", "", "model-endpoints")}
    stored = server.get_object(CQ, "model-endpoints")
    assert stored is not None
    assert stored["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]["nominalQuota"] == "120"
    assert not plan(client, desired(edited)).has_changes


def test_a_field_dropped_from_the_configuration_is_removed(server: FakeApiServer, client: KubeClient) -> None:
    apply(client, plan(client, desired()))
    edited = EXAMPLE.replace("        borrowingLimit: 30\n", "")
    planned = plan(client, desired(edited))
    (update,) = planned.of(Action.UPDATE)
    assert update.ref == "ClusterQueue serverless-endpoints"
    path = "spec.resourceGroups[0].flavors[0].resources[0].borrowingLimit"
    assert update.fields == (FieldChange("-", path, "30", None),)
    assert f'-     {path}: "30"' in planned.describe()
    apply(client, planned)
    stored = server.get_object(CQ, "serverless-endpoints")
    assert stored is not None
    assert "borrowingLimit" not in stored["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]
    assert not plan(client, desired(edited)).has_changes


def test_drift_in_a_defaulted_field_is_undone(server: FakeApiServer, client: KubeClient) -> None:
    """Someone stops a queue by hand; the configuration (no stopPolicy: the default None) wins."""
    apply(client, plan(client, desired()))
    stored = server.get_object(CQ, "usecase-deployments")
    assert stored is not None and stored["spec"]["stopPolicy"] == "None"  # applied with the CRD defaults
    stored["spec"]["stopPolicy"] = "Hold"
    server.put_object(CQ, stored)  # another writer
    planned = plan(client, desired())
    (update,) = planned.of(Action.UPDATE)
    assert update.fields == (FieldChange("~", "spec.stopPolicy", "Hold", "None"),)
    apply(client, planned)
    restored = server.get_object(CQ, "usecase-deployments")
    assert restored is not None and restored["spec"]["stopPolicy"] == "None"
    assert not plan(client, desired()).has_changes


def test_removed_local_queue_is_kept_without_prune_and_deleted_with_it(
    server: FakeApiServer, client: KubeClient
) -> None:
    apply(client, plan(client, desired()))
    edited = without_document(EXAMPLE, "name: usecase-deployments\n  namespace: budusecases")
    planned = plan(client, desired(edited))
    assert not planned.writes
    (candidate,) = planned.prune_candidates
    assert candidate.ref == "LocalQueue budusecases/usecase-deployments"
    assert planned.has_changes
    assert "- LocalQueue budusecases/usecase-deployments (prune: labelled" in planned.describe()

    kept = apply(client, planned)
    assert kept.changed == 0 and [c.ref for c in kept.kept] == [candidate.ref]
    assert "kept LocalQueue budusecases/usecase-deployments" in kept.describe()
    assert server.get_object(LQ, "usecase-deployments", "budusecases") is not None

    pruned = apply(client, plan(client, desired(edited)), prune=True)
    assert pruned.done() == ["deleted LocalQueue budusecases/usecase-deployments"]
    assert server.get_object(LQ, "usecase-deployments", "budusecases") is None
    assert not plan(client, desired(edited)).has_changes


def test_prune_goes_in_reverse_dependency_order(server: FakeApiServer, client: KubeClient) -> None:
    apply(client, plan(client, desired()))
    empty = plan(client, [])
    refs = [c.ref for c in empty.prune_candidates]
    assert refs[:3] == [
        "LocalQueue budusecases/usecase-deployments",
        "LocalQueue budserve/serverless-endpoints",
        "LocalQueue budserve/model-endpoints",
    ]
    assert refs[-2:] == ["ResourceFlavor h100-sxm", "ResourceFlavor a100-80gb"]
    apply(client, empty, prune=True)
    assert versions(server) == {}


def test_objects_without_the_managed_label_are_never_pruned(
    server: FakeApiServer, client: KubeClient
) -> None:
    by_hand = {"metadata": {"name": "by-hand", "namespace": "budserve"}, "spec": {"clusterQueue": "x"}}
    by_helm = {
        "metadata": {"name": "helm", "namespace": "budserve", "labels": {MANAGED_BY_LABEL: "Helm"}},
        "spec": {"clusterQueue": "x"},
    }
    server.put_object(LQ, by_hand)
    server.put_object(LQ, by_helm)
    server.put_object(RF, {"metadata": {"name": "spare"}, "spec": {}})
    planned = plan(client, desired())
    assert planned.prune_candidates == ()
    apply(client, planned, prune=True)
    assert server.get_object(LQ, "by-hand", "budserve") is not None
    assert server.get_object(LQ, "helm", "budserve") is not None
    assert server.get_object(RF, "spare") is not None


def test_an_unlabelled_object_in_the_configuration_is_adopted(
    server: FakeApiServer, client: KubeClient
) -> None:
    (flavor,) = [o for o in desired() if o["metadata"]["name"] == "a100-80gb"]
    unlabelled = copy.deepcopy(flavor)
    del unlabelled["metadata"]["labels"]
    server.put_object(RF, unlabelled)
    planned = plan(client, desired())
    (update,) = planned.of(Action.UPDATE)
    assert update.fields == (
        FieldChange("+", 'metadata.labels["app.kubernetes.io/managed-by"]', None, "budcore"),
    )
    apply(client, planned)
    stored = server.get_object(RF, "a100-80gb")
    assert stored is not None and stored["metadata"]["labels"] == {MANAGED_BY_LABEL: "budcore"}


def test_prune_scope_labels(server: FakeApiServer, client: KubeClient) -> None:
    apply(client, plan(client, desired(labels={"budcore.io/config": "a"})))
    other = without_document(EXAMPLE, "name: usecase-deployments\n  namespace: budusecases")
    planned = plan(
        client, desired(other, labels={"budcore.io/config": "b"}), scope={"budcore.io/config": "b"}
    )
    assert planned.prune_candidates == ()  # config a's LocalQueue is not b's to prune
    assert len(planned.of(Action.UPDATE)) == 7  # the label value changes on the shared objects


def test_dry_run_stores_nothing(server: FakeApiServer, client: KubeClient) -> None:
    rv = server.resource_version
    report = apply(client, plan(client, desired()), dry_run=True)
    assert report.dry_run and report.changed == 8
    assert "dry run (the server checked every change, nothing was stored): 8 changed" in report.describe()
    assert server.resource_version == rv and versions(server) == {}

    apply(client, plan(client, desired()))
    before = versions(server)
    edited = without_document(EXAMPLE, "name: usecase-deployments\n  namespace: budusecases")
    edited = edited.replace("nominalQuota: 100", "nominalQuota: 120")
    report = apply(client, plan(client, desired(edited)), prune=True, dry_run=True)
    assert report.done() == [
        "updated ClusterQueue model-endpoints",
        "deleted LocalQueue budusecases/usecase-deployments",
    ]
    assert versions(server) == before


def test_forbidden_namespace_stops_and_reports_what_was_applied(
    server: FakeApiServer, client: KubeClient
) -> None:
    server.forbid("budusecases")
    planned = plan(client, desired())  # listing across namespaces is allowed
    with pytest.raises(ApplyError) as caught:
        apply(client, planned)
    error = caught.value
    cause = str(error.cause)
    assert "\n" not in cause
    assert cause.startswith(
        "fake-cluster: apply LocalQueue budusecases/usecase-deployments: HTTP 403 Forbidden"
    )
    assert (error.kind, error.namespace, error.name, error.context) == (
        "LocalQueue",
        "budusecases",
        "usecase-deployments",
        "fake-cluster",
    )
    applied = [c.ref for c in error.report.applied]
    assert applied == [c.ref for c in planned.writes][:7]
    assert error.report.before_failure() == (
        "applied 7 of 8 before the failure: created ResourceFlavor a100-80gb, "
        "created ResourceFlavor h100-sxm, created ClusterQueue model-endpoints, "
        "created ClusterQueue serverless-endpoints, "
        "created ClusterQueue usecase-deployments, created LocalQueue budserve/model-endpoints, "
        "created LocalQueue budserve/serverless-endpoints"
    )
    assert str(error).endswith(error.report.before_failure())
    # exactly what the report says is in the cluster, nothing else
    assert len(versions(server)) == 7


def test_conflict_on_the_first_write_reports_nothing_applied(
    server: FakeApiServer, client: KubeClient
) -> None:
    planned = plan(client, desired())
    server.conflict_next(1)
    with pytest.raises(ApplyError) as caught:
        apply(client, planned)
    assert caught.value.status == 409
    assert "ResourceFlavor a100-80gb" in str(caught.value.cause)
    assert caught.value.report.before_failure() == "nothing was applied before the failure (0 of 8)"


# ---- diff semantics against what a real API server stores (no double needed) ----


class _Listing:
    """Answers ``list`` with fixed objects: what a real API server would hold."""

    context = "real-like"

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def list(
        self, rt: ResourceType, namespace: str | None = None, **_: Any
    ) -> tuple[list[dict[str, Any]], str]:
        return [copy.deepcopy(o) for o in self.items if o["kind"] == rt.kind], "1"


def test_server_defaults_metadata_status_and_quantity_spelling_are_not_changes() -> None:
    text = read_example("heterogeneous-three-tenants")
    objects = desired(text)
    live = copy.deepcopy(objects)
    for index, obj in enumerate(live):
        obj["metadata"].update(uid=f"u{index}", resourceVersion=str(index), generation=1, managedFields=[{}])
        obj["metadata"]["labels"]["team"] = "someone-else's label"
        obj["status"] = {"conditions": [{"type": "Active", "status": "True"}]}
        if obj["kind"] == "ClusterQueue":  # what Kueue's CRD defaults add on the server
            spec = obj["spec"]
            spec.setdefault("stopPolicy", "None")
            spec.setdefault(
                "flavorFungibility", {"whenCanBorrow": "MayStopSearch", "whenCanPreempt": "TryNextFlavor"}
            )
            spec.setdefault("preemption", {})
            spec["preemption"].setdefault("withinClusterQueue", "Never")
            spec["preemption"].setdefault("reclaimWithinCohort", "Never")
            spec["preemption"].setdefault("borrowWithinCohort", {"policy": "Never"})
    inference = next(o for o in live if o["metadata"]["name"] == "inference" and o["kind"] == "ClusterQueue")
    resources = inference["spec"]["resourceGroups"][0]["flavors"][0]["resources"]
    resources[1]["nominalQuota"] = "0.75Ti"  # 768Gi, spelled differently
    assert not plan(_Listing(live), objects).has_changes  # type: ignore[arg-type]

    resources[1]["nominalQuota"] = "1Ti"
    inference["spec"]["stopPolicy"] = "Hold"  # not a default: someone stopped the queue
    (update,) = plan(_Listing(live), objects).of(Action.UPDATE)  # type: ignore[arg-type]
    assert update.fields == (
        FieldChange("~", "spec.resourceGroups[0].flavors[0].resources[1].nominalQuota", "1Ti", "768Gi"),
        FieldChange("~", "spec.stopPolicy", "Hold", "None"),
    )


def test_create_lists_the_configured_fields_not_the_defaults() -> None:
    objects = desired()
    planned = plan(_Listing([]), objects)  # type: ignore[arg-type]
    queue = next(c for c in planned.objects if c.ref == "ClusterQueue usecase-deployments")
    assert [f.describe() for f in queue.fields] == [
        'metadata.labels["app.kubernetes.io/managed-by"]: "budcore"',
        'spec.cohortName: "platform-gpu-pool"',
        "spec.namespaceSelector: {}",
        'spec.queueingStrategy: "BestEffortFIFO"',
        'spec.resourceGroups[0].coveredResources[0]: "nvidia.com/gpu"',
        'spec.resourceGroups[0].flavors[0].name: "a100-80gb"',
        'spec.resourceGroups[0].flavors[0].resources[0].name: "nvidia.com/gpu"',
        'spec.resourceGroups[0].flavors[0].resources[0].nominalQuota: "30"',
        'spec.resourceGroups[0].flavors[0].resources[0].borrowingLimit: "10"',
    ]


def test_an_api_version_the_cluster_does_not_serve() -> None:
    with FakeApiServer(kueue_versions=("v1beta1",)) as old_kueue:
        kube = old_kueue.client()
        try:
            with pytest.raises(KubeError) as caught:
                plan(kube, desired(version="v1beta2"))
            assert str(caught.value).startswith(
                "fake-cluster: list ResourceFlavor: HTTP 404 NotFound: the cluster does not serve "
                "resourceflavors.kueue.x-k8s.io/v1beta2"
            )
            assert plan(kube, [], api_version="kueue.x-k8s.io/v1beta2").prune_candidates == ()
            assert not plan(kube, desired(version="v1beta1")).prune_candidates
        finally:
            kube.close()
