"""Every configuration mistake is reported with file, line, document, kind, name and field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from budcore.config.kueue import (
    API_V1BETA1,
    dump_queue_config,
    load_queue_config,
    loads_queue_config,
    to_documents,
)
from budcore.config.yamlsource import DocumentError
from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.scheduling.queues import (
    ClusterQueue,
    FlavorQuotas,
    QueueConfig,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
)

FLAVOR = """\
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata:
  name: a100
"""


def cluster_queue(resource_lines: str, *, spec_extra: str = "", version: str = "v1beta2") -> str:
    cohort_field = "cohort" if version == "v1beta1" else "cohortName"
    return f"""\
apiVersion: kueue.x-k8s.io/{version}
kind: ClusterQueue
metadata:
  name: team-a
spec:
  {cohort_field}: pool
  resourceGroups:
  - coveredResources: ["nvidia.com/gpu"]
    flavors:
    - name: a100
      resources:
      - name: nvidia.com/gpu
{resource_lines}{spec_extra}"""


def errors_of(text: str, source: str = "team.yaml") -> list[DocumentError]:
    with pytest.raises(ValidationErrors) as info:
        loads_queue_config(text, source)
    errors = info.value.errors
    assert all(isinstance(e, DocumentError) for e in errors), errors
    return [e for e in errors if isinstance(e, DocumentError)]


def only_error(text: str, source: str = "team.yaml") -> DocumentError:
    (error,) = errors_of(text, source)
    return error


def assert_located(
    error: DocumentError, *, line: int, path: str, document: int, kind: str | None, name: str | None
) -> None:
    assert (error.source, error.line, error.path, error.document, error.kind, error.name) == (
        "team.yaml",
        line,
        path,
        document,
        kind,
        name,
    )
    rendered = str(error)
    assert rendered.startswith(f"team.yaml:{line}: {path}: " if path else f"team.yaml:{line}: ")
    assert f"(document {document})" in rendered or f"document {document}:" in rendered
    if name is not None:
        assert repr(name) in rendered or f"/{name}" in rendered


def test_bad_quantity() -> None:
    text = FLAVOR + "---\n" + cluster_queue("        nominalQuota: 8GB\n")
    error = only_error(text)
    assert_located(
        error,
        line=18,
        path="spec.resourceGroups[0].flavors[0].resources[0].nominalQuota",
        document=2,
        kind="ClusterQueue",
        name="team-a",
    )
    assert "invalid quantity '8GB'" in error.message
    assert str(error).startswith(
        "team.yaml:18: spec.resourceGroups[0].flavors[0].resources[0].nominalQuota: "
        "ClusterQueue 'team-a' (document 2): invalid quantity '8GB'"
    )


def test_negative_quantity() -> None:
    error = only_error(FLAVOR + "---\n" + cluster_queue("        nominalQuota: -4\n"))
    assert error.path == "spec.resourceGroups[0].flavors[0].resources[0].nominalQuota"
    assert "must not be negative" in error.message


@pytest.mark.parametrize(
    ("extra", "path", "line"),
    [
        (
            "        nominalQuota: 8\n        borowingLimit: 2\n",
            "spec.resourceGroups[0].flavors[0].resources[0].borowingLimit",
            19,
        ),
        ("        nominalQuota: 8\n  queuingStrategy: StrictFIFO\n", "spec.queuingStrategy", 19),
        ("        nominalQuota: 8\nextra: true\n", "extra", 19),
    ],
)
def test_unknown_fields(extra: str, path: str, line: int) -> None:
    error = only_error(FLAVOR + "---\n" + cluster_queue(extra))
    assert_located(error, line=line, path=path, document=2, kind="ClusterQueue", name="team-a")
    assert error.detail == "unknown field"


def test_renamed_field_gets_a_hint() -> None:
    error = only_error(
        FLAVOR + "---\n" + cluster_queue("        nominalQuota: 8\n").replace("cohortName", "cohort")
    )
    assert error.path == "spec.cohort"
    assert error.line == 11
    assert "unknown field (v1beta2 calls it cohortName)" in str(error)


def test_missing_flavor_reference_names_both_sides() -> None:
    text = FLAVOR.replace("a100", "h100") + "---\n" + cluster_queue("        nominalQuota: 8\n")
    error = only_error(text)
    assert_located(
        error,
        line=15,
        path="spec.resourceGroups[0].flavors[0].name",
        document=2,
        kind="ClusterQueue",
        name="team-a",
    )
    assert "ClusterQueue 'team-a' references ResourceFlavor 'a100', which does not exist" in str(error)


def test_missing_cluster_queue_reference_of_a_local_queue() -> None:
    text = """\
apiVersion: kueue.x-k8s.io/v1beta1
kind: LocalQueue
metadata:
  name: user-queue
  namespace: team-a
spec:
  clusterQueue: nowhere
"""
    error = only_error(text)
    assert_located(error, line=7, path="spec.clusterQueue", document=1, kind="LocalQueue", name="user-queue")
    assert "LocalQueue team-a/user-queue references ClusterQueue 'nowhere'" in str(error)


def test_unknown_kind_and_unsupported_api_version() -> None:
    text = """\
apiVersion: kueue.x-k8s.io/v1beta2
kind: Workload
metadata:
  name: job-1
---
apiVersion: kueue.x-k8s.io/v1alpha1
kind: Cohort
metadata:
  name: pool
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
"""
    workload, cohort, config_map = errors_of(text)
    assert_located(workload, line=2, path="kind", document=1, kind="Workload", name="job-1")
    assert "unknown kind 'Workload' (apiVersion 'kueue.x-k8s.io/v1beta2')" in str(workload)
    assert "ResourceFlavor, ClusterQueue, Cohort, LocalQueue, WorkloadPriorityClass" in str(workload)
    assert_located(cohort, line=6, path="apiVersion", document=2, kind="Cohort", name="pool")
    assert "unsupported apiVersion 'kueue.x-k8s.io/v1alpha1' for kind Cohort" in str(cohort)
    assert_located(config_map, line=12, path="kind", document=3, kind="ConfigMap", name="settings")


def test_missing_kind_api_version_and_non_mapping_documents() -> None:
    text = "metadata: {name: x}\n---\n- just\n- a list\n"
    missing_kind, missing_version, not_mapping = errors_of(text)
    assert (missing_kind.path, missing_kind.detail) == ("kind", "missing kind")
    assert (missing_version.path, missing_version.detail) == ("apiVersion", "missing apiVersion")
    assert not_mapping.document == 2
    assert not_mapping.line == 3
    assert "expected a Kubernetes object (a mapping), got list" in str(not_mapping)


def test_malformed_yaml_in_a_file(tmp_path: Path) -> None:
    file = tmp_path / "queues.yaml"
    file.write_text(FLAVOR + "---\n" + "kind: ClusterQueue\nspec: {resourceGroups: [\n")
    with pytest.raises(ValidationErrors) as info:
        load_queue_config(file)
    (error,) = info.value.errors
    assert error.source == str(file)
    assert error.line == 8
    assert str(error).startswith(f"{file}:8: document 2: malformed YAML")


def test_cohort_cycle_names_the_cycle_at_each_parent_name() -> None:
    text = """\
apiVersion: kueue.x-k8s.io/v1beta2
kind: Cohort
metadata: {name: left}
spec: {parentName: right}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: Cohort
metadata: {name: right}
spec:
  parentName: left
"""
    left, right = errors_of(text)
    assert_located(left, line=4, path="spec.parentName", document=1, kind="Cohort", name="left")
    assert "parent cycle: left -> right -> left" in str(left)
    assert_located(right, line=10, path="spec.parentName", document=2, kind="Cohort", name="right")


def test_lending_limit_above_nominal_quota() -> None:
    error = only_error(FLAVOR + "---\n" + cluster_queue("        nominalQuota: 8\n        lendingLimit: 9\n"))
    assert_located(
        error,
        line=19,
        path="spec.resourceGroups[0].flavors[0].resources[0].lendingLimit",
        document=2,
        kind="ClusterQueue",
        name="team-a",
    )
    assert "lendingLimit (9) must not exceed nominalQuota (8)" in str(error)


def test_limits_without_a_cohort() -> None:
    text = (
        FLAVOR
        + "---\n"
        + cluster_queue("        nominalQuota: 8\n        borrowingLimit: 1\n", version="v1beta1")
    )
    error = only_error(text.replace("  cohort: pool\n", ""))
    assert error.path == "spec.resourceGroups[0].flavors[0].resources[0].borrowingLimit"
    assert "borrowingLimit must not be set when spec.cohort is empty" in str(error)


def test_flavor_resources_must_match_covered_resources() -> None:
    text = (
        FLAVOR
        + "---\n"
        + cluster_queue("        nominalQuota: 8\n").replace("name: nvidia.com/gpu", "name: cpu")
    )
    error = only_error(text)
    assert_located(
        error,
        line=17,
        path="spec.resourceGroups[0].flavors[0].resources[0].name",
        document=2,
        kind="ClusterQueue",
        name="team-a",
    )
    assert "resource 'cpu' must match coveredResources[0] ('nvidia.com/gpu')" in str(error)


def test_resource_group_structure_is_checked_like_kueues_webhook() -> None:
    text = """\
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: q}
spec:
  resourceGroups:
  - coveredResources: ["cpu", "bad name!"]
    flavors:
    - name: f
      resources:
      - {name: cpu, nominalQuota: 1}
  - coveredResources: ["cpu"]
    flavors:
    - name: f
      resources:
      - {name: cpu, nominalQuota: 1}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: f}
"""
    errors = errors_of(text)
    assert [(e.path, e.line) for e in errors] == [
        ("spec.resourceGroups[0].coveredResources[1]", 6),
        ("spec.resourceGroups[0].flavors[0].resources", 9),
        ("spec.resourceGroups[1].coveredResources[0]", 11),
        ("spec.resourceGroups[1].flavors[0].name", 13),
    ]
    assert "invalid resource name 'bad name!'" in str(errors[0])
    assert "lists 1 resources, coveredResources has 2" in str(errors[1])
    assert "resource 'cpu' is already covered by another resourceGroup" in str(errors[2])
    assert "flavor 'f' already appears in this ClusterQueue" in str(errors[3])


def test_cohort_limits_need_a_parent() -> None:
    text = (
        FLAVOR
        + """\
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: Cohort
metadata: {name: root}
spec:
  resourceGroups:
  - coveredResources: [cpu]
    flavors:
    - name: a100
      resources:
      - {name: cpu, nominalQuota: 4, lendingLimit: 2}
"""
    )
    error = only_error(text)
    assert_located(
        error,
        line=15,
        path="spec.resourceGroups[0].flavors[0].resources[0].lendingLimit",
        document=2,
        kind="Cohort",
        name="root",
    )
    assert "lendingLimit must not be set when spec.parentName is empty" in str(error)


def test_label_syntax_in_node_labels_and_namespace_selectors() -> None:
    text = """\
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: f}
spec:
  nodeLabels:
    "-bad-key": x
    nvidia.com/gpu.product: "not ok"
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: q}
spec:
  namespaceSelector:
    matchLabels: {"a/b/c": ok}
"""
    errors = errors_of(text)
    assert [(e.path, e.line, e.kind) for e in errors] == [
        ("spec.nodeLabels.-bad-key", 6, "ResourceFlavor"),
        ("spec.nodeLabels.nvidia.com/gpu.product", 7, "ResourceFlavor"),
        ("spec.namespaceSelector.matchLabels.a/b/c", 14, "ClusterQueue"),
    ]
    assert "invalid label key '-bad-key'" in str(errors[0])
    assert "invalid label value 'not ok'" in str(errors[1])


@pytest.mark.parametrize(
    ("extra", "path", "needle"),
    [
        (
            "  admissionChecks: [provisioning]\n",
            "spec.admissionChecks",
            "admissionChecks is not supported by budcore",
        ),
        (
            "  admissionChecksStrategy:\n    admissionChecks:\n    - name: multikueue\n",
            "spec.admissionChecksStrategy",
            "admissionChecksStrategy is not supported by budcore",
        ),
        (
            "  namespaceSelector:\n    matchExpressions:\n    - {key: team, operator: In}\n",
            "spec.namespaceSelector.matchExpressions[0]",
            "operator In needs at least one value",
        ),
        (
            "  flavorFungibility:\n    preference: BorrowingOverPreemption\n",
            "spec.flavorFungibility.preference",
            "preference can only be set when both whenCanBorrow and whenCanPreempt are TryNextFlavor",
        ),
        (
            "  preemption:\n    borrowWithinCohort: {policy: LowerPriority}\n",
            "spec.preemption.borrowWithinCohort.policy",
            "borrowWithinCohort.policy must be Never when reclaimWithinCohort is Never",
        ),
        (
            "  concurrentAdmissionPolicy:\n    migration: {mode: TryPreferredFlavors}\n",
            "spec.concurrentAdmissionPolicy",
            "concurrentAdmissionPolicy is not supported by budcore",
        ),
    ],
)
def test_semantics_budcore_cannot_honour_are_rejected(extra: str, path: str, needle: str) -> None:
    version = "v1beta1" if "admissionChecks:" in extra and "Strategy" not in extra else "v1beta2"
    text = FLAVOR + "---\n" + cluster_queue("        nominalQuota: 8\n", spec_extra=extra, version=version)
    error = only_error(text)
    assert (error.path, error.kind, error.name, error.document) == (path, "ClusterQueue", "team-a", 2)
    assert needle in str(error)


def test_resource_flavor_taint_and_toleration_rules() -> None:
    text = """\
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata:
  name: bad
spec:
  nodeTaints:
  - {key: a, effect: Sometimes}
  tolerations:
  - {operator: Equal, value: x}
  - {key: b, operator: Exists, value: y}
  - {key: c, tolerationSeconds: 5, effect: NoSchedule}
  topologyName: rack
"""
    errors = errors_of(text)
    assert [(e.path, e.line) for e in errors] == [
        ("spec.nodeTaints[0].effect", 7),
        ("spec.tolerations[0]", 9),
        ("spec.tolerations[1].value", 10),
        ("spec.tolerations[2].tolerationSeconds", 11),
        ("spec.topologyName", 12),
    ]
    assert all(e.kind == "ResourceFlavor" and e.name == "bad" for e in errors)


def test_metadata_name_and_namespace_are_checked() -> None:
    text = """\
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata:
  name: Team_A
  namespace: "-bad-"
spec: {clusterQueue: q}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {labels: {a: b}}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
spec: {}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: q}
"""
    name, namespace, missing_name, missing_metadata = errors_of(text)
    assert (name.path, name.line) == ("metadata.name", 4)
    assert "invalid name 'Team_A'" in str(name)
    assert (namespace.path, namespace.line) == ("metadata.namespace", 5)
    assert (missing_name.path, missing_name.document) == ("metadata.name", 2)
    assert "missing required field: metadata.name" in str(missing_name)
    assert (missing_metadata.path, missing_metadata.document) == ("metadata", 3)


def test_schema_type_enum_and_range_errors() -> None:
    text = """\
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: q}
spec:
  queueingStrategy: Random
  stopPolicy: [Hold]
  resourceGroups:
  - coveredResources: [cpu]
    flavors:
    - name: f
      resources:
      - name: cpu
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: WorkloadPriorityClass
metadata: {name: huge}
value: 4294967296
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: f}
"""
    errors = errors_of(text)
    assert [(e.path, e.line) for e in errors] == [
        ("spec.queueingStrategy", 5),
        ("spec.stopPolicy", 6),
        ("spec.resourceGroups[0].flavors[0].resources[0]", 12),
        ("value", 17),
    ]
    assert "'Random' is not one of ['StrictFIFO', 'BestEffortFIFO']" in str(errors[0])
    assert "['Hold'] is not of type 'string'" in str(errors[1])  # once, not also "not one of"
    assert "missing required field: 'nominalQuota'" in str(errors[2])
    assert "4294967296 is not a 32-bit integer" in str(errors[3])


def test_all_errors_of_all_sources_come_together(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(FLAVOR + "---\n" + cluster_queue("        nominalQuota: lots\n"))
    (tmp_path / "b.yaml").write_text("kind: [\n")
    (tmp_path / "c.yaml").write_text(FLAVOR.replace("kind:", "kindd:"))
    with pytest.raises(ValidationErrors) as info:
        load_queue_config(tmp_path)
    assert [(Path(e.source or "").name, e.line) for e in info.value.errors] == [
        ("a.yaml", 18),
        ("b.yaml", 2),
        ("c.yaml", 1),
    ]
    assert "missing kind" in str(info.value.errors[2])


def test_duplicates_across_files_name_both_places(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(FLAVOR)
    (tmp_path / "b.yaml").write_text("# again\n" + FLAVOR)
    with pytest.raises(ValidationErrors) as info:
        load_queue_config(tmp_path)
    (error,) = info.value.errors
    assert isinstance(error, DocumentError)
    assert (Path(error.source or "").name, error.line, error.path) == ("b.yaml", 5, "metadata.name")
    assert f"duplicate ResourceFlavor 'a100': also defined at {tmp_path / 'a.yaml'}:4 (document 1)" in str(
        error
    )


def test_references_are_still_checked_next_to_duplicates() -> None:
    text = (
        FLAVOR
        + "---\n"
        + FLAVOR
        + "---\n"
        + cluster_queue("        nominalQuota: 8\n").replace("a100", "h100")
    )
    duplicate, reference = errors_of(text)
    assert "duplicate ResourceFlavor 'a100'" in str(duplicate)
    assert "references ResourceFlavor 'h100'" in str(reference)


def test_dump_rejects_what_kueue_cannot_express() -> None:
    quota = ResourceQuota(name="cpu", nominal_quota=1000, borrowing_limit=500)
    group = ResourceGroup(covered_resources=("cpu",), flavors=(FlavorQuotas(name="f", resources=(quota,)),))
    config = QueueConfig.build(
        flavors=[ResourceFlavor(name="f")],
        cluster_queues=[ClusterQueue(name="lonely", resource_groups=(group,))],
    )
    with pytest.raises(ValidationErrors) as info:
        to_documents(config)
    (error,) = info.value.errors
    assert "ClusterQueue 'lonely'" in str(error)
    assert "borrowingLimit must not be set when spec.cohortName is empty" in str(error)
    with pytest.raises(ValidationError, match=r"unsupported apiVersion 'kueue\.x-k8s\.io/v1'"):
        dump_queue_config(QueueConfig.build(), "kueue.x-k8s.io/v1")
    assert dump_queue_config(QueueConfig.build(), API_V1BETA1) == ""


def test_domain_model_errors_map_back_to_manifest_paths() -> None:
    # The loader checks Kueue's rules itself; should the domain model ever reject a value, its
    # error still points at the manifest field, not at a Python attribute name.
    from budcore.config.kueue import _LOCAL_QUEUE_PATHS, _queue_paths, _yaml_path

    paths = _queue_paths("cohort")
    assert _yaml_path(("resource_groups", 0, "flavors", 1, "resources", 0, "lending_limit"), paths) == (
        "spec.resourceGroups[0].flavors[1].resources[0].lendingLimit"
    )
    assert (
        _yaml_path(("resource_groups", 0, "flavors", 1, "name"), paths)
        == "spec.resourceGroups[0].flavors[1].name"
    )
    assert _yaml_path(("cohort",), paths) == "spec.cohort"
    assert _yaml_path(("namespace",), _LOCAL_QUEUE_PATHS) == "metadata.namespace"
    assert _yaml_path((), paths) == ""
