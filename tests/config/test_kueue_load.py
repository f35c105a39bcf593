"""Loading real-world Kueue manifests into budcore's queueing objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from budcore.config import example_names, load_example, read_example
from budcore.config.kueue import (
    API_V1BETA1,
    API_V1BETA2,
    dump_queue_config,
    is_kueue_document,
    load_queue_config,
    loads_queue_config,
    parse_document,
    queue_config_from_documents,
    to_documents,
)
from budcore.config.yamlsource import load_yaml_text
from budcore.domain.errors import NotFoundError
from budcore.scheduling.queues import (
    BorrowWithinCohortPolicy,
    FungibilityAction,
    QueueingStrategy,
    ReclaimWithinCohort,
    ResourceQuota,
    StopPolicy,
    WithinClusterQueue,
)

GI = 2**30 * 1000  # one GiB in milli-units

# After the ClusterQueue and ResourceFlavor pages of the Kueue documentation: cpu and memory share
# one resource group (spot, then on-demand nodes); GPUs come from two vendors' flavors.
KUEUE_DOCS_CLUSTER_QUEUE = """\
apiVersion: kueue.x-k8s.io/v1beta1
kind: ResourceFlavor
metadata:
  name: spot
spec:
  nodeLabels:
    instance-type: spot
  nodeTaints:
  - effect: NoSchedule
    key: spot
    value: "true"
  tolerations:
  - key: spot-taint
    operator: Exists
    effect: NoExecute
    tolerationSeconds: 300
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: ResourceFlavor
metadata:
  name: on-demand
spec:
  nodeLabels:
    instance-type: on-demand
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: ResourceFlavor
metadata:
  name: vendor1
spec:
  nodeLabels:
    nvidia.com/gpu.product: NVIDIA-A100-SXM4-80GB
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: ResourceFlavor
metadata:
  name: vendor2
spec:
  nodeLabels:
    nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: ClusterQueue
metadata:
  name: "cluster-queue"
spec:
  namespaceSelector: {} # match all.
  cohort: "team-ab"
  queueingStrategy: StrictFIFO
  resourceGroups:
  - coveredResources: ["cpu", "memory"]
    flavors:
    - name: "spot"
      resources:
      - name: "cpu"
        nominalQuota: 9
        borrowingLimit: 6
      - name: "memory"
        nominalQuota: 36Gi
        lendingLimit: 12Gi
    - name: "on-demand"
      resources:
      - name: "cpu"
        nominalQuota: 18
      - name: "memory"
        nominalQuota: 72Gi
  - coveredResources: ["nvidia.com/gpu"]
    flavors:
    - name: "vendor1"
      resources:
      - name: "nvidia.com/gpu"
        nominalQuota: 10
        borrowingLimit: 0
    - name: "vendor2"
      resources:
      - name: "nvidia.com/gpu"
        nominalQuota: "2.5"
        lendingLimit: 500m
  preemption:
    reclaimWithinCohort: Any
    borrowWithinCohort:
      policy: LowerPriority
      maxPriorityThreshold: 100
    withinClusterQueue: LowerPriority
  flavorFungibility:
    whenCanBorrow: Borrow
    whenCanPreempt: Preempt
  fairSharing:
    weight: "2"
status:
  pendingWorkloads: 3
  conditions: []
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: LocalQueue
metadata:
  namespace: team-a
  name: user-queue
spec:
  clusterQueue: cluster-queue
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: LocalQueue
metadata:
  name: default-queue
spec:
  clusterQueue: cluster-queue
  stopPolicy: Hold
  fairSharing:
    weight: 500m
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: WorkloadPriorityClass
metadata:
  name: sample-priority
value: 10000
description: "Sample priority"
"""

# Hierarchical cohorts (Kueue's Cohort API): a root with its own quota and two children, one of
# which lends only part of its quota to the rest of the tree.
HIERARCHICAL_COHORTS = """\
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata:
  name: default-flavor
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: Cohort
metadata:
  name: root
spec:
  resourceGroups:
  - coveredResources: ["cpu"]
    flavors:
    - name: default-flavor
      resources:
      - name: cpu
        nominalQuota: 12
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: Cohort
metadata:
  name: research
spec:
  parentName: root
  fairSharing:
    weight: 3
  resourceGroups:
  - coveredResources: ["cpu"]
    flavors:
    - name: default-flavor
      resources:
      - name: cpu
        nominalQuota: 6
        lendingLimit: 2
        borrowingLimit: 4
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: Cohort
metadata:
  name: production
spec:
  parentName: root
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata:
  name: research-cq
spec:
  cohortName: research
  namespaceSelector:
    matchLabels:
      team: research
  resourceGroups:
  - coveredResources: ["cpu"]
    flavors:
    - name: default-flavor
      resources:
      - name: cpu
        nominalQuota: 4
  admissionScope:
    admissionMode: UsageBasedAdmissionFairSharing
  stopPolicy: HoldAndDrain
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata:
  name: production-cq
spec:
  cohortName: production
  admissionScope:
    admissionMode: NoAdmissionFairSharing
  flavorFungibility:
    whenCanBorrow: TryNextFlavor
    whenCanPreempt: TryNextFlavor
    preference: BorrowingOverPreemption
  resourceGroups:
  - coveredResources: ["cpu"]
    flavors:
    - name: default-flavor
      resources:
      - name: cpu
        nominalQuota: 8
"""


def test_kueue_docs_cluster_queue_with_two_flavors_per_group() -> None:
    config = loads_queue_config(KUEUE_DOCS_CLUSTER_QUEUE, "docs.yaml")
    cq = config.cluster_queues["cluster-queue"]
    assert cq.cohort == "team-ab"
    assert cq.queueing_strategy is QueueingStrategy.STRICT_FIFO
    assert cq.namespace_selector is None
    cpu_mem, gpu = cq.resource_groups
    assert cpu_mem.covered_resources == ("cpu", "memory")
    assert [f.name for f in cpu_mem.flavors] == ["spot", "on-demand"]
    assert cq.quota("spot", "cpu") == ResourceQuota(name="cpu", nominal_quota=9000, borrowing_limit=6000)
    assert cq.quota("spot", "memory") == ResourceQuota(
        name="memory", nominal_quota=36 * GI, lending_limit=12 * GI
    )
    assert cq.quota("on-demand", "memory") == ResourceQuota(name="memory", nominal_quota=72 * GI)
    assert gpu.covered_resources == ("nvidia.com/gpu",)
    assert cq.quota("vendor1", "nvidia.com/gpu") == ResourceQuota(
        name="nvidia.com/gpu", nominal_quota=10_000, borrowing_limit=0
    )
    assert cq.quota("vendor2", "nvidia.com/gpu") == ResourceQuota(
        name="nvidia.com/gpu", nominal_quota=2500, lending_limit=500
    )
    assert cq.preemption.within_cluster_queue is WithinClusterQueue.LOWER_PRIORITY
    assert cq.preemption.reclaim_within_cohort is ReclaimWithinCohort.ANY
    assert cq.preemption.borrow_within_cohort.policy is BorrowWithinCohortPolicy.LOWER_PRIORITY
    assert cq.preemption.borrow_within_cohort.max_priority_threshold == 100
    # v1beta1's Borrow / Preempt are v1beta2's MayStopSearch.
    assert cq.flavor_fungibility.when_can_borrow is FungibilityAction.MAY_STOP_SEARCH
    assert cq.flavor_fungibility.when_can_preempt is FungibilityAction.MAY_STOP_SEARCH
    assert cq.fair_sharing.weight == 2000
    assert cq.admission_fair_sharing is False


def test_kueue_docs_flavors_local_queues_and_priority_classes() -> None:
    config = loads_queue_config(KUEUE_DOCS_CLUSTER_QUEUE, "docs.yaml")
    spot = config.flavors["spot"]
    assert spot.node_labels == {"instance-type": "spot"}
    assert spot.node_taints == ({"effect": "NoSchedule", "key": "spot", "value": "true"},)
    assert spot.tolerations == (
        {"key": "spot-taint", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": "300"},
    )
    assert config.flavors["vendor2"].node_labels == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    user_queue = config.local_queue("team-a", "user-queue")
    assert user_queue.cluster_queue == "cluster-queue"
    default_queue = config.local_queue("default", "default-queue")  # no namespace: "default"
    assert default_queue.stop_policy is StopPolicy.HOLD
    assert default_queue.fair_sharing.weight == 500
    assert config.priority_classes["sample-priority"].value == 10000
    assert config.priority_classes["sample-priority"].description == "Sample priority"


def test_hierarchical_cohorts_with_their_own_quota() -> None:
    config = loads_queue_config(HIERARCHICAL_COHORTS)
    root, research = config.cohorts["root"], config.cohorts["research"]
    assert root.parent is None
    assert root.resource_groups[0].flavors[0].resources[0].nominal_quota == 12_000
    assert research.parent == "root"
    assert research.fair_sharing.weight == 3000
    assert research.resource_groups[0].flavors[0].resources[0] == ResourceQuota(
        name="cpu", nominal_quota=6000, lending_limit=2000, borrowing_limit=4000
    )
    assert config.cohorts["production"].resource_groups == ()
    research_cq = config.cluster_queues["research-cq"]
    assert research_cq.cohort == "research"
    assert research_cq.namespace_selector == {"team": "research"}
    assert research_cq.admission_fair_sharing is True
    assert research_cq.stop_policy is StopPolicy.HOLD_AND_DRAIN
    production_cq = config.cluster_queues["production-cq"]
    assert production_cq.admission_fair_sharing is False
    assert production_cq.flavor_fungibility.when_can_borrow is FungibilityAction.TRY_NEXT_FLAVOR
    assert config.cohort_names() == ["production", "research", "root"]


def test_the_seeds_platform_gpu_pool() -> None:
    config = load_example("platform-gpu-pool")
    queues = config.cluster_queues
    assert sorted(queues) == ["model-endpoints", "serverless-endpoints", "usecase-deployments"]
    assert {q.cohort for q in queues.values()} == {"platform-gpu-pool"}
    gpu = "nvidia.com/gpu"
    assert queues["model-endpoints"].quota("a100-80gb", gpu) == ResourceQuota(
        name=gpu, nominal_quota=100_000, borrowing_limit=20_000
    )
    assert queues["model-endpoints"].quota("h100-sxm", gpu) == ResourceQuota(
        name=gpu, nominal_quota=50_000, borrowing_limit=10_000
    )
    assert queues["serverless-endpoints"].quota("a100-80gb", gpu) == ResourceQuota(
        name=gpu, nominal_quota=50_000, borrowing_limit=30_000
    )
    assert queues["usecase-deployments"].quota("a100-80gb", gpu) == ResourceQuota(
        name=gpu, nominal_quota=30_000, borrowing_limit=10_000
    )
    assert config.flavors["h100-sxm"].node_labels == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}


def test_heterogeneous_three_tenant_example() -> None:
    config = load_example("heterogeneous-three-tenants")
    assert {name: f.node_labels["nvidia.com/gpu.product"] for name, f in config.flavors.items()} == {
        "h100-80gb": "NVIDIA-H100-80GB-HBM3",
        "a100-80gb": "NVIDIA-A100-SXM4-80GB",
        "l4": "NVIDIA-L4",
    }
    assert {name: c.parent for name, c in config.cohorts.items()} == {
        "gpu-fleet": None,
        "training": "gpu-fleet",
        "serving": "gpu-fleet",
    }
    assert {name: q.cohort for name, q in config.cluster_queues.items()} == {
        "research": "training",
        "llm-finetune": "training",
        "inference": "serving",
    }
    assert config.cluster_queues["research"].quota("h100-80gb", "memory") == ResourceQuota(
        name="memory", nominal_quota=3 * 1024 * GI
    )
    assert config.cluster_queues["inference"].fair_sharing.weight == 1500
    assert config.cluster_queues["inference"].quota("a100-80gb", "nvidia.com/gpu") == ResourceQuota(
        name="nvidia.com/gpu", nominal_quota=4000, lending_limit=0
    )
    assert sorted(config.local_queues) == [
        ("inference", "batch"),
        ("inference", "online"),
        ("llm-finetune", "finetune"),
        ("research", "research"),
    ]


@pytest.mark.parametrize("name", ["heterogeneous-three-tenants", "platform-gpu-pool"])
@pytest.mark.parametrize("api_version", [API_V1BETA1, API_V1BETA2])
def test_examples_round_trip_in_both_versions(name: str, api_version: str) -> None:
    config = load_example(name)
    assert loads_queue_config(dump_queue_config(config, api_version)) == config


def test_example_listing_and_unknown_example() -> None:
    assert example_names() == ["heterogeneous-three-tenants", "platform-gpu-pool"]
    assert "kind: ClusterQueue" in read_example("platform-gpu-pool")
    with pytest.raises(NotFoundError, match="no-such-example"):
        read_example("no-such-example")


def test_files_directories_and_several_sources(tmp_path: Path) -> None:
    (tmp_path / "20-queues.yaml").write_text(HIERARCHICAL_COHORTS.split("---\n", 1)[1])
    (tmp_path / "10-flavors.yml").write_text(HIERARCHICAL_COHORTS.split("---\n", 1)[0])
    from_dir = load_queue_config(tmp_path)
    assert from_dir == loads_queue_config(HIERARCHICAL_COHORTS)
    # The same objects split over two explicit sources, given as str and Path.
    from_files = load_queue_config(str(tmp_path / "10-flavors.yml"), tmp_path / "20-queues.yaml")
    assert from_files == from_dir


def test_dump_writes_kueue_notation_and_v1beta1_field_names() -> None:
    config = loads_queue_config(KUEUE_DOCS_CLUSTER_QUEUE)
    beta1 = {(d["kind"], d["metadata"]["name"]): d for d in to_documents(config, API_V1BETA1)}
    cq = beta1[("ClusterQueue", "cluster-queue")]
    assert cq["apiVersion"] == API_V1BETA1
    assert cq["spec"]["cohort"] == "team-ab"
    assert cq["spec"]["namespaceSelector"] == {}
    spot_memory = cq["spec"]["resourceGroups"][0]["flavors"][0]["resources"][1]
    assert spot_memory == {"name": "memory", "nominalQuota": "36Gi", "lendingLimit": "12Gi"}
    vendor2 = cq["spec"]["resourceGroups"][1]["flavors"][1]["resources"][0]
    assert vendor2 == {"name": "nvidia.com/gpu", "nominalQuota": "2500m", "lendingLimit": "500m"}
    assert cq["spec"]["flavorFungibility"] == {
        "whenCanBorrow": "MayStopSearch",
        "whenCanPreempt": "MayStopSearch",
    }
    assert cq["spec"]["fairSharing"] == {"weight": "2"}
    assert "status" not in cq
    toleration = beta1[("ResourceFlavor", "spot")]["spec"]["tolerations"][0]
    assert toleration["tolerationSeconds"] == 300
    beta2 = {(d["kind"], d["metadata"]["name"]): d for d in to_documents(config, API_V1BETA2)}
    assert beta2[("ClusterQueue", "cluster-queue")]["spec"]["cohortName"] == "team-ab"
    assert "cohort" not in beta2[("ClusterQueue", "cluster-queue")]["spec"]
    assert beta2[("LocalQueue", "default-queue")]["metadata"] == {
        "name": "default-queue",
        "namespace": "default",
    }
    priority = beta2[("WorkloadPriorityClass", "sample-priority")]
    assert priority == {
        "apiVersion": API_V1BETA2,
        "kind": "WorkloadPriorityClass",
        "metadata": {"name": "sample-priority"},
        "value": 10000,
        "description": "Sample priority",
    }


def test_dump_order_is_flavors_cohorts_queues_local_queues_priorities() -> None:
    text = dump_queue_config(loads_queue_config(KUEUE_DOCS_CLUSTER_QUEUE + "---\n" + HIERARCHICAL_COHORTS))
    kinds_and_names = [(d["kind"], d["metadata"]["name"]) for d in to_documents(loads_queue_config(text))]
    assert kinds_and_names == [
        ("ResourceFlavor", "default-flavor"),
        ("ResourceFlavor", "on-demand"),
        ("ResourceFlavor", "spot"),
        ("ResourceFlavor", "vendor1"),
        ("ResourceFlavor", "vendor2"),
        ("Cohort", "production"),
        ("Cohort", "research"),
        ("Cohort", "root"),
        ("ClusterQueue", "cluster-queue"),
        ("ClusterQueue", "production-cq"),
        ("ClusterQueue", "research-cq"),
        ("LocalQueue", "default-queue"),
        ("LocalQueue", "user-queue"),
        ("WorkloadPriorityClass", "sample-priority"),
    ]
    assert text.startswith("---\napiVersion: kueue.x-k8s.io/v1beta2\nkind: ResourceFlavor\n")


def test_kubernetes_metadata_and_plain_decimals_are_accepted() -> None:
    text = """\
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata:
  name: f
  labels: {app: budcore}
  annotations: {note: "anything"}
  uid: 0b0c6f7e-1111-2222-3333-444455556666
  resourceVersion: "1234"
  generation: 3
  creationTimestamp: "2026-01-01T00:00:00Z"
  managedFields: [{manager: kubectl}]
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: q}
spec:
  resourceGroups:
  - coveredResources: [cpu]
    flavors:
    - name: f
      resources:
      - name: cpu
        nominalQuota: 1.5
"""
    config = loads_queue_config(text)
    assert config.cluster_queues["q"].quota("f", "cpu") == ResourceQuota(name="cpu", nominal_quota=1500)


def test_kueue_documents_can_be_picked_from_a_mixed_stream() -> None:
    text = """\
apiVersion: budcore.io/v1
kind: Scenario
metadata: {name: burst}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: l4}
spec:
  nodeLabels: {nvidia.com/gpu.product: NVIDIA-L4}
"""
    documents = load_yaml_text(text, "scenario.yaml")
    kueue_documents = [d for d in documents if is_kueue_document(d.data)]
    assert [d.number for d in kueue_documents] == [2]
    parsed = parse_document(kueue_documents[0])
    assert (parsed.kind, parsed.name, parsed.key, parsed.api_version) == (
        "ResourceFlavor",
        "l4",
        "l4",
        API_V1BETA2,
    )
    config = queue_config_from_documents(kueue_documents)
    assert config.flavors["l4"] == parsed.obj
    assert not is_kueue_document(["not", "a", "mapping"])
