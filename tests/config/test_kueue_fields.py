"""Kueue fields: each one honoured, rejected, or reported as ignored; Cohort lendingLimit semantics.

* Every ``spec`` field of the ClusterQueue, Cohort, LocalQueue and ResourceFlavor CRDs (and the
  WorkloadPriorityClass fields) is classified in ``budcore.config.kueue.KUEUE_FIELDS``; a field Kueue
  acts on that budcore loads and then ignores must show up in ``QueueConfig.ignored_fields`` with
  its path and line (audit y1/y5: nodeTaints, tolerations and topologyName were dropped silently).
* A Cohort's ``lendingLimit`` may exceed its own ``nominalQuota`` (audit l1): Kueue's cohort webhook
  validates resource groups with ``enforceNominalGreaterThanLending: false``
  (kubernetes-sigs/kueue ``pkg/webhooks/cohort_webhook.go`` ``validateCohort``), only the
  ClusterQueue webhook enforces it; the cohort's guaranteed quota is
  ``max(0, subtreeQuota − lendingLimit)`` (``pkg/cache/scheduler/resource_node.go`` ``localQuota``).
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
import pytest
import yaml

from budcore.config.crd import CRD_FILES
from budcore.config.kueue import (
    KUEUE_FIELDS,
    FieldSupport,
    dump_queue_config,
    load_queue_config,
    loads_queue_config,
    queue_config_from_documents,
)
from budcore.config.yamlsource import load_yaml_text
from budcore.domain.errors import ValidationErrors
from budcore.domain.job import Job, ResourceRequest
from budcore.scheduling import Scheduler
from budcore.scheduling.queues import (
    ClusterQueue,
    Cohort,
    FlavorQuotas,
    IgnoredField,
    LocalQueue,
    QueueConfig,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
    StopPolicy,
    tolerates,
)
from budcore.scheduling.quota import QuotaTree, potential_available

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FR = ("default", "cpu")

# --- Cohort lendingLimit above nominalQuota (audit l1) ------------------------------------------

LENDING_COHORT = """
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: default}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: Cohort
metadata: {name: root}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: Cohort
metadata: {name: team}
spec:
  parentName: root
  resourceGroups:
  - coveredResources: [cpu]
    flavors: [{name: default, resources: [{name: cpu, nominalQuota: 0, lendingLimit: LENDING}]}]
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: team-cq}
spec:
  cohortName: team
  namespaceSelector: {}
  resourceGroups:
  - coveredResources: [cpu]
    flavors: [{name: default, resources: [{name: cpu, nominalQuota: 20}]}]
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: other-cq}
spec:
  cohortName: root
  namespaceSelector: {}
  resourceGroups:
  - coveredResources: [cpu]
    flavors: [{name: default, resources: [{name: cpu, nominalQuota: 0}]}]
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: lq, namespace: team}
spec: {clusterQueue: team-cq}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: lq, namespace: other}
spec: {clusterQueue: other-cq}
"""


def _lending(limit: int) -> QueueConfig:
    return loads_queue_config(LENDING_COHORT.replace("LENDING", str(limit)))


def _job(job_id: str, namespace: str, cpu: int, t: int = 0) -> Job:
    return Job(
        id=job_id,
        name=job_id,
        tenant=namespace,
        local_queue="lq",
        created_at=T0 + timedelta(seconds=t),
        request=ResourceRequest.single(cpu=cpu, memory=0),
    )


def test_cohort_lending_limit_may_exceed_its_nominal_quota() -> None:
    """audit l1: was 'lendingLimit (5) must not exceed nominalQuota (0)'."""
    config = _lending(5)
    quota = config.cohorts["team"].resource_groups[0].flavors[0].resources[0]
    assert (quota.nominal_quota, quota.lending_limit) == (0, 5000)
    assert loads_queue_config(dump_queue_config(config)) == config  # writes back, loads again


def test_cluster_queue_lending_limit_still_may_not_exceed_nominal() -> None:
    """Kueue's ClusterQueue webhook keeps enforceNominalGreaterThanLending: true."""
    text = LENDING_COHORT.replace("LENDING", "5").replace(
        "[{name: cpu, nominalQuota: 20}]", "[{name: cpu, nominalQuota: 20, lendingLimit: 21}]"
    )
    with pytest.raises(ValidationErrors) as info:
        loads_queue_config(text)
    (error,) = info.value.errors
    assert error.path == "spec.resourceGroups[0].flavors[0].resources[0].lendingLimit"
    assert "lendingLimit (21) must not exceed nominalQuota (20)" in str(error)
    # The domain object says the same when built in code; a Cohort does not.
    rq = ResourceQuota(name="cpu", nominal_quota=20_000, lending_limit=21_000)
    groups = (
        ResourceGroup(covered_resources=("cpu",), flavors=(FlavorQuotas(name="default", resources=(rq,)),)),
    )
    with pytest.raises(pydantic.ValidationError, match="must not exceed nominalQuota"):
        ClusterQueue(name="cq", cohort="c", resource_groups=groups)
    assert Cohort(name="c", parent="root", resource_groups=groups).resource_groups == groups


def test_cohort_lending_limit_caps_what_its_subtree_lends() -> None:
    """team's subtree quota is team-cq's 20; lendingLimit 5 keeps 15 guaranteed inside team, so
    other-cq (under root) can borrow 5 and no more. quota.py needs no change: it already computes
    guaranteed from the subtree quota, as Kueue's localQuota does."""
    config = _lending(5)
    tree = QuotaTree(config)
    team, root = tree.cohorts["team"], tree.cohorts["root"]
    assert (team.subtree_quota[FR], team.guaranteed[FR], root.subtree_quota[FR]) == (20_000, 15_000, 5_000)
    assert potential_available(tree.cluster_queues["other-cq"], FR) == 5_000
    assert potential_available(tree.cluster_queues["team-cq"], FR) == 20_000

    scheduler = Scheduler(config)
    scheduler.submit(_job("borrow-5", "other", 5))
    scheduler.submit(_job("borrow-1-more", "other", 1, t=1))
    admitted = [a.job_id for a in scheduler.cycle(T0).admitted]
    assert admitted == ["borrow-5"]
    scheduler.submit(_job("team-15", "team", 15))
    scheduler.submit(_job("team-1-more", "team", 1, t=1))
    assert [a.job_id for a in scheduler.cycle(T0).admitted] == ["team-15"]  # 5 of its 20 are lent


def test_cohort_lending_limit_above_its_subtree_lends_everything() -> None:
    tree = QuotaTree(_lending(50))
    assert tree.cohorts["team"].guaranteed[FR] == 0
    assert tree.cohorts["root"].subtree_quota[FR] == 20_000
    assert potential_available(tree.cluster_queues["other-cq"], FR) == 20_000


# --- ignored fields: path, line, reason (audit y1, y5) -------------------------------------------

FLAVORS = """
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: spot}
spec:
  nodeLabels: {pool: spot}
  nodeTaints:
  - {key: spot, value: "true", effect: NoSchedule}
  - {key: soft, value: "x", effect: PreferNoSchedule}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: gpu}
spec:
  nodeLabels: {pool: gpu}
  nodeTaints:
  - {key: nvidia.com/gpu, value: present, effect: NoSchedule}
  tolerations:
  - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: tas}
spec:
  nodeLabels: {cloud.google.com/gke-nodepool: h100}
  topologyName: default
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: plain}
spec:
  nodeLabels: {pool: plain}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: cq}
spec:
  namespaceSelector: {}
  resourceGroups:
  - coveredResources: [nvidia.com/gpu]
    flavors:
    - {name: spot, resources: [{name: nvidia.com/gpu, nominalQuota: 8}]}
    - {name: plain, resources: [{name: nvidia.com/gpu, nominalQuota: 8}]}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: drained, namespace: ns}
spec: {clusterQueue: cq, stopPolicy: HoldAndDrain}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: held, namespace: ns}
spec: {clusterQueue: cq, stopPolicy: Hold}
"""


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_ignored_fields_are_listed_with_path_line_and_reason() -> None:
    """nodeTaints are honoured by flavor assignment (pod-set tolerations) and a flavor's
    tolerations by it and by the cluster backends (added to the admitted pods), so only
    topologyName is reported."""
    config = loads_queue_config(FLAVORS, source="queues.yaml")
    found = {(f.kind, f.name, f.path): f for f in config.ignored_fields}
    assert sorted(found) == [("ResourceFlavor", "tas", "spec.topologyName")]
    topology = found[("ResourceFlavor", "tas", "spec.topologyName")]
    assert (topology.source, topology.line) == ("queues.yaml", _line(FLAVORS, "topologyName"))
    assert str(topology).startswith(
        f"queues.yaml:{topology.line}: spec.topologyName: ResourceFlavor 'tas': ignored"
    )


def test_what_changes_nothing_in_kueue_is_not_reported() -> None:
    """Taints (honoured by flavor assignment, as are a PreferNoSchedule taint and a taint the flavor
    tolerates itself: Kueue appends the flavor's tolerations to the pod's before checking), and
    LocalQueue stopPolicy Hold are honoured."""
    paths = {(f.name, f.path) for f in loads_queue_config(FLAVORS).ignored_fields}
    assert ("spot", "spec.nodeTaints[0]") not in paths
    assert ("spot", "spec.nodeTaints[1]") not in paths
    assert ("gpu", "spec.nodeTaints[0]") not in paths
    assert not any(name == "ns/held" for name, _ in paths)
    assert not any(name == "plain" for name, _ in paths)


def test_configurations_without_such_fields_report_nothing() -> None:
    assert _lending(5).ignored_fields == ()
    assert QueueConfig().ignored_fields == ()


def test_ignored_fields_are_derived_so_code_and_yaml_agree() -> None:
    """A configuration built in code has the same ignored fields (without locations) and equals
    the loaded one; a dump/load round trip and with_objects keep them."""
    loaded = loads_queue_config(FLAVORS)
    built = QueueConfig.build(
        flavors=loaded.flavors.values(),
        cluster_queues=loaded.cluster_queues.values(),
        local_queues=loaded.local_queues.values(),
    )
    assert built == loaded and built.ignored_fields == loaded.ignored_fields
    assert all(f.line is None for f in built.ignored_fields)
    assert all(f.line is not None for f in loaded.ignored_fields)
    assert loads_queue_config(dump_queue_config(loaded)).ignored_fields == loaded.ignored_fields
    changed = loaded.with_objects(
        local_queues={k: v for k, v in loaded.local_queues.items() if k[1] == "held"}
    )
    assert [f.path for f in changed.ignored_fields] == ["spec.topologyName"]
    assert all(f.line is not None for f in changed.ignored_fields)  # locations carried over


def test_loading_files_and_documents_locates_them(tmp_path: Any) -> None:
    """What ``budcore validate`` calls (queue_config_from_documents) and load_queue_config both
    carry the locations."""
    path = tmp_path / "flavors.yaml"
    path.write_text(FLAVORS, encoding="utf-8")
    from_file = load_queue_config(path)
    assert {f.source for f in from_file.ignored_fields} == {str(path)}
    from_documents = queue_config_from_documents(load_yaml_text(FLAVORS, "x.yaml"))
    assert {f.source for f in from_documents.ignored_fields} == {"x.yaml"}


def test_taint_toleration_matching_is_kubernetes() -> None:
    """``tolerates`` follows k8s.io/api core/v1 Toleration.ToleratesTaint; ``untolerated_taint``
    is what Kueue's flavor assigner checks (NoSchedule/NoExecute only, pod + flavor tolerations)."""
    taint = {"key": "gpu", "value": "a100", "effect": "NoSchedule"}
    assert tolerates({"key": "gpu", "operator": "Exists"}, taint)
    assert tolerates({"operator": "Exists"}, taint)  # empty key + Exists: everything
    assert tolerates({"key": "gpu", "value": "a100"}, taint)  # Equal is the default operator
    assert not tolerates({"key": "gpu", "value": "h100"}, taint)
    assert not tolerates({"key": "gpu", "operator": "Exists", "effect": "NoExecute"}, taint)
    flavor = ResourceFlavor(name="f", node_taints=(taint, {"key": "soft", "effect": "PreferNoSchedule"}))
    assert flavor.untolerated_taint() == taint
    assert flavor.untolerated_taint([{"key": "gpu", "operator": "Exists"}]) is None
    tolerant = flavor.model_copy(update={"tolerations": ({"key": "gpu", "operator": "Exists"},)})
    assert tolerant.untolerated_taint() is None


def test_ignored_field_equality_ignores_location() -> None:
    a = IgnoredField("ResourceFlavor", "f", "spec.tolerations", "r", source="a.yaml", line=3)
    b = IgnoredField("ResourceFlavor", "f", "spec.tolerations", "r")
    assert a == b and str(b) == "spec.tolerations: ResourceFlavor 'f': ignored by budcore: r"


# --- the inventory: every CRD field is supported, rejected or reported --------------------------


def _crd_fields(kind: str) -> Iterator[str]:
    """Every field path under ``spec`` (top-level fields for WorkloadPriorityClass), all versions."""
    text = (
        importlib.resources.files("budcore.config")
        .joinpath("schemas", "kueue", CRD_FILES[kind])
        .read_text(encoding="utf-8")
    )
    manifest = yaml.safe_load(text)

    def walk(schema: Any, path: str) -> Iterator[str]:
        for name, sub in (schema.get("properties") or {}).items():
            yield f"{path}.{name}" if path else name
            yield from walk(sub, f"{path}.{name}" if path else name)
        if "items" in schema:
            yield from walk(schema["items"], path)

    for version in manifest["spec"]["versions"]:
        root = version["schema"]["openAPIV3Schema"]["properties"]
        if kind == "WorkloadPriorityClass":
            yield from (k for k in root if k not in ("apiVersion", "kind", "metadata"))
        else:
            yield from walk(root["spec"], "spec")


@pytest.mark.parametrize("kind", sorted(KUEUE_FIELDS))
def test_every_crd_field_is_classified(kind: str) -> None:
    fields = set(_crd_fields(kind))
    bases = {key.split("=", 1)[0] for key in KUEUE_FIELDS[kind]}
    unclassified = sorted(f for f in fields if not any(f == b or f.startswith(b + ".") for b in bases))
    assert unclassified == [], f"{kind}: classify these in KUEUE_FIELDS: {unclassified}"
    assert bases <= fields, f"{kind}: stale KUEUE_FIELDS entries: {sorted(bases - fields)}"


# A manifest fragment that sets each REJECTED or REPORTED field: (kind, key) -> (apiVersion, spec).
SAMPLES: dict[tuple[str, str], tuple[str, str]] = {
    ("ClusterQueue", "spec.admissionChecks"): ("v1beta1", "namespaceSelector: {}\n  admissionChecks: [chk]"),
    ("ClusterQueue", "spec.admissionChecksStrategy"): (
        "v1beta2",
        "namespaceSelector: {}\n  admissionChecksStrategy: {admissionChecks: [{name: chk}]}",
    ),
    ("ClusterQueue", "spec.concurrentAdmissionPolicy"): (
        "v1beta2",
        "namespaceSelector: {}\n  concurrentAdmissionPolicy: {migration: {mode: TryPreferredFlavors}}",
    ),
    ("ClusterQueue", "spec.flavorFungibility.preference=PreemptionOverBorrowing"): (
        "v1beta2",
        "namespaceSelector: {}\n  flavorFungibility: {whenCanBorrow: TryNextFlavor, "
        "whenCanPreempt: TryNextFlavor, preference: PreemptionOverBorrowing}",
    ),
    ("ClusterQueue", "spec.namespaceSelector.matchExpressions"): (
        "v1beta2",
        "namespaceSelector: {matchExpressions: [{key: a, operator: In, values: [b]}]}",
    ),
    ("ResourceFlavor", "spec.nodeTaints"): ("v1beta2", "nodeTaints: [{key: k, value: v, effect: NoExecute}]"),
    ("ResourceFlavor", "spec.tolerations"): ("v1beta2", "tolerations: [{key: k, operator: Exists}]"),
    ("ResourceFlavor", "spec.topologyName"): ("v1beta2", "nodeLabels: {a: b}\n  topologyName: t"),
}
CQ = """apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: cq}
spec: {namespaceSelector: {}}
"""


def _sample(kind: str, key: str) -> str:
    version, spec = SAMPLES[(kind, key)]
    metadata = "{name: x, namespace: ns}" if kind == "LocalQueue" else "{name: x}"
    doc = f"apiVersion: kueue.x-k8s.io/{version}\nkind: {kind}\nmetadata: {metadata}\nspec:\n  {spec}\n"
    return doc + ("---\n" + CQ if kind == "LocalQueue" else "")


NOT_SUPPORTED = [
    (kind, key)
    for kind, table in KUEUE_FIELDS.items()
    for key, (s, _) in table.items()
    if s is FieldSupport.REJECTED
]
REPORTED = [
    (kind, key)
    for kind, table in KUEUE_FIELDS.items()
    for key, (s, _) in table.items()
    if s is FieldSupport.REPORTED
]


@pytest.mark.parametrize(("kind", "key"), NOT_SUPPORTED)
def test_rejected_fields_fail_to_load_naming_the_field(kind: str, key: str) -> None:
    with pytest.raises(ValidationErrors) as info:
        loads_queue_config(_sample(kind, key))
    path = key.split("=", 1)[0]
    assert any(e.path == path and "is not supported by budcore" in str(e) for e in info.value.errors)


@pytest.mark.parametrize(("kind", "key"), REPORTED)
def test_reported_fields_load_and_are_listed(kind: str, key: str) -> None:
    config = loads_queue_config(_sample(kind, key))
    path = key.split("=", 1)[0]
    hits = [
        f
        for f in config.ignored_fields
        if f.kind == kind and (f.path == path or f.path.startswith(path + "["))
    ]
    assert hits and all(f.line is not None for f in hits), config.ignored_fields


def test_readme_kueue_map_lists_every_rejected_and_reported_field() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for kind, key in [*NOT_SUPPORTED, *REPORTED]:
        field = key.split("=", 1)[0].removeprefix("spec.")
        assert f"`{field}" in readme, f"README's Kueue map does not mention {kind} {field}"
    assert "ignored_fields" in readme


def test_local_queue_hold_and_drain_is_supported_not_reported() -> None:
    """HoldAndDrain evicts a LocalQueue's admitted workloads (see test_kueue_compat_cycle.py)."""
    doc = (
        "apiVersion: kueue.x-k8s.io/v1beta2\nkind: LocalQueue\nmetadata: {name: x, namespace: ns}\n"
        "spec: {clusterQueue: cq, stopPolicy: HoldAndDrain}\n---\n" + CQ
    )
    config = loads_queue_config(doc)
    assert config.local_queues[("ns", "x")].stop_policy is StopPolicy.HOLD_AND_DRAIN
    assert config.ignored_fields == ()
    assert LocalQueue(name="x", namespace="ns", cluster_queue="cq").stop_policy is StopPolicy.NONE
