"""Flavor assignment as Kueue's flavor assigner decides it (issue #20, behaviours 6, 7, 9, 11).

References: kubernetes-sigs/kueue ff69552e ``pkg/scheduler/flavorassigner/flavorassigner.go``
(``checkFlavorForPodSets``: taints and node selectors/affinity; ``fitsResourceQuota``: the oracle
gate and the messages; ``isPreferred``: the fungibility preference) and
``pkg/scheduler/preemption/classical/hierarchical_preemption.go``
(``FindHeightOfLowestSubtreeThatFits``). The table cases of Kueue's own tests are in
``tests/kueue_conformance``; these pin the same rules through budcore's public API (a
:class:`Scheduler` cycle, the Job document, the Kueue YAML) and budcore's additions.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError as PydanticValidationError
from support.admission import GPU, T0, cq, fill, job

from budcore.config.jobs import job_from_document
from budcore.config.kueue import dump_queue_config, loads_queue_config
from budcore.config.yamlsource import load_yaml_text
from budcore.domain.job import Job, PodSet, ResourceRequest
from budcore.domain.priority import JobPriority
from budcore.scheduling import (
    AcceleratorMatcher,
    AdmissionPolicy,
    Cohort,
    LocalQueue,
    Mode,
    QueueConfig,
    QuotaTree,
    QuotaUsage,
    ResourceFlavor,
    Scheduler,
    assign_flavors,
)
from budcore.scheduling.assignment import admission_placement, borrowing_height, kueue_quantity
from budcore.scheduling.queues import FlavorFungibility, LabelSelectorRequirement

SPOT_TAINT = {"key": "instance", "value": "spot", "effect": "NoSchedule"}
TOLERATE_SPOT = {"key": "instance", "operator": "Equal", "value": "spot", "effect": "NoSchedule"}


def _config(flavors: list[ResourceFlavor], quotas: dict[str, dict[str, object]], **kw: Any) -> QueueConfig:
    return QueueConfig.build(
        flavors=flavors,
        cluster_queues=[cq("q", quotas, **kw)],
        local_queues=[LocalQueue(name="q", namespace="ns-q", cluster_queue="q")],
    )


def _job(name: str, gpus: int, **pod_set: Any) -> Job:
    base = job("q", gpus, name=name)
    ps = base.request.pod_sets[0]
    request = ResourceRequest(
        pod_sets=(PodSet(name=ps.name, count=ps.count, resources=ps.resources, **pod_set),)
    )
    return base.model_copy(update={"request": request})


# --- 6: taints and tolerations ------------------------------------------------------------------

TAINTED = [
    ResourceFlavor(name="spot", node_taints=(SPOT_TAINT,), tolerations=()),
    ResourceFlavor(name="on-demand"),
]


def test_an_untolerated_taint_skips_the_flavor_and_a_toleration_lets_the_pod_set_in() -> None:
    s = Scheduler(_config(TAINTED, {"spot": {GPU: 4}, "on-demand": {GPU: 4}}))
    assert fill(s, [_job("plain", 2), _job("tolerant", 2, tolerations=[TOLERATE_SPOT])]) == [
        "plain",
        "tolerant",
    ]
    assert s.admitted["plain"].flavors["main"][GPU] == "on-demand"
    assert s.admitted["tolerant"].flavors["main"][GPU] == "spot"


def test_a_pod_set_tolerating_nothing_gets_kueues_message() -> None:
    s = Scheduler(_config(TAINTED, {"spot": {GPU: 4}, "on-demand": {GPU: 4}}))
    fill(s, [_job("first", 4), _job("second", 1)])
    assert s.explain("second") == (
        "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor "
        "on-demand, 1 more needed, untolerated taint {instance spot NoSchedule <nil>} in flavor spot"
    )


@pytest.mark.parametrize(
    ("toleration", "tolerated"),
    [
        ({"key": "instance", "operator": "Exists"}, True),
        ({"operator": "Exists"}, True),  # empty key with Exists: every taint
        ({"key": "instance", "value": "spot"}, True),  # Equal is the default operator
        ({"key": "instance", "value": "reserved"}, False),
        ({"key": "instance", "operator": "Exists", "effect": "NoExecute"}, False),
    ],
)
def test_toleration_semantics_are_kubernetes(toleration: dict[str, str], tolerated: bool) -> None:
    s = Scheduler(_config(TAINTED[:1], {"spot": {GPU: 4}}))
    admitted = fill(s, [_job("j", 1, tolerations=[toleration])])
    assert admitted == (["j"] if tolerated else [])


def test_prefer_no_schedule_and_self_tolerated_taints_never_block() -> None:
    flavors = [
        ResourceFlavor(name="soft", node_taints=({"key": "a", "value": "b", "effect": "PreferNoSchedule"},)),
        ResourceFlavor(name="self", node_taints=(SPOT_TAINT,), tolerations=(TOLERATE_SPOT,)),
    ]
    s = Scheduler(_config(flavors, {"soft": {GPU: 1}, "self": {GPU: 1}}))
    assert fill(s, [_job("a", 1), _job("b", 1)]) == ["a", "b"]
    assert [s.admitted[j].flavors["main"][GPU] for j in ("a", "b")] == ["soft", "self"]


def test_flavor_tolerations_and_labels_are_what_the_admitted_pods_get() -> None:
    """Kueue ``pkg/podset`` ``FromAssignment``: every assigned flavor's labels and tolerations."""
    flavors = {
        "spot": ResourceFlavor(
            name="spot", node_labels={"pool": "spot"}, node_taints=(SPOT_TAINT,), tolerations=(TOLERATE_SPOT,)
        ),
        "cpu": ResourceFlavor(name="cpu", node_labels={"kind": "cpu"}),
    }
    placement = admission_placement({"main": {GPU: "spot", "cpu": "cpu", "memory": "cpu"}}, flavors)
    assert placement == {"main": ({"pool": "spot", "kind": "cpu"}, (TOLERATE_SPOT,))}


# --- 7: node selectors and required node affinity ----------------------------------------------

LABELLED = [
    ResourceFlavor(name="one", node_labels={"type": "one", "size": "10"}),
    ResourceFlavor(name="two", node_labels={"type": "two", "size": "20"}),
    ResourceFlavor(name="free"),
]


def _affinity(*terms: list[tuple[str, str, list[str]]]) -> list[dict[str, Any]]:
    return [
        {"matchExpressions": [{"key": k, "operator": op, "values": values} for k, op, values in term]}
        for term in terms
    ]


@pytest.mark.parametrize(
    ("pod_set", "flavor"),
    [
        ({"node_selector": {"type": "two"}}, "two"),
        ({"node_selector": {"other-key": "x"}}, "one"),  # keys the flavor does not define are ignored
        ({"required_node_affinity": _affinity([("type", "In", ["two", "three"])])}, "two"),
        ({"required_node_affinity": _affinity([("type", "NotIn", ["one"])])}, "two"),
        ({"required_node_affinity": _affinity([("size", "Gt", ["15"])])}, "two"),
        ({"required_node_affinity": _affinity([("size", "Lt", ["15"])])}, "one"),
        ({"required_node_affinity": _affinity([("type", "DoesNotExist", [])])}, "free"),
        ({"required_node_affinity": _affinity([("type", "Exists", [])])}, "one"),
        # terms are ORed; expressions of a term ANDed
        ({"required_node_affinity": _affinity([("type", "In", ["x"])], [("size", "In", ["20"])])}, "two"),
        ({"required_node_affinity": _affinity([("type", "In", ["one"]), ("size", "In", ["20"])])}, "free"),
        # a term left without expressions on this flavor's keys matches it
        ({"required_node_affinity": _affinity([("zone", "In", ["a"])], [("type", "In", ["two"])])}, "one"),
    ],
)
def test_node_selector_and_affinity_pick_the_flavor(pod_set: dict[str, Any], flavor: str) -> None:
    s = Scheduler(_config(LABELLED, {"one": {GPU: 4}, "two": {GPU: 4}, "free": {GPU: 4}}))
    assert fill(s, [_job("j", 1, **pod_set)]) == ["j"]
    assert s.admitted["j"].flavors["main"][GPU] == flavor


def test_a_selector_no_flavor_matches_leaves_the_job_pending_with_the_reason() -> None:
    s = Scheduler(_config(LABELLED[:2], {"one": {GPU: 4}, "two": {GPU: 4}}))
    fill(s, [_job("j", 1, node_selector={"type": "three"})])
    assert s.explain("j") == (
        "couldn't assign flavors to pod set main: flavor one doesn't match node affinity, "
        "flavor two doesn't match node affinity"
    )


def test_invalid_affinity_and_tolerations_are_refused() -> None:
    with pytest.raises(PydanticValidationError, match="needs at least one value"):
        PodSet(required_node_affinity=_affinity([("type", "In", [])]))
    with pytest.raises(PydanticValidationError, match="needs an integer value"):
        PodSet(required_node_affinity=_affinity([("size", "Gt", ["big"])]))
    with pytest.raises(PydanticValidationError, match="operator must be Exists when key is empty"):
        PodSet(tolerations=[{"value": "x"}])
    with pytest.raises(PydanticValidationError, match="value must be empty when operator is Exists"):
        PodSet(tolerations=[{"key": "a", "operator": "Exists", "value": "x"}])


# --- the new pod-set fields round-trip (JSON, the Job YAML document) ---------------------------

JOB_DOCUMENT = """\
apiVersion: budcore.io/v1alpha1
kind: Job
metadata: {name: placed, namespace: ns-q}
spec:
  local_queue: q
  request:
    pod_sets:
    - name: main
      count: 2
      resources: {nvidia.com/gpu: 1, example.com/fpga: 0}
      node_selector: {type: two}
      required_node_affinity:
      - matchExpressions:
        - {key: size, operator: Gt, values: ["15"]}
      tolerations:
      - {key: instance, operator: Equal, value: spot, effect: NoSchedule}
      - {key: gone, operator: Exists, effect: NoExecute, tolerationSeconds: 30}
"""


def test_the_pod_set_fields_load_from_a_job_document_and_round_trip() -> None:
    (document,) = load_yaml_text(JOB_DOCUMENT, "job.yaml")
    loaded = job_from_document(document)
    ps = loaded.request.pod_sets[0]
    assert ps.node_selector == (("type", "two"),)
    assert ps.required_node_affinity[0].match_expressions[0].operator == "Gt"
    assert [t.key for t in ps.tolerations] == ["instance", "gone"]
    assert ps.tolerations[1].toleration_seconds == 30
    assert ps.zero_requests == ("example.com/fpga",)
    as_json = loaded.model_dump_json()
    again = Job.model_validate_json(as_json)
    assert again == loaded and again.request.pod_sets[0].zero_requests == ("example.com/fpga",)
    assert Job.model_validate(loaded.model_dump()) == loaded
    assert loaded.model_dump(mode="json")["request"]["pod_sets"][0]["resources"] == {
        "example.com/fpga": "0",
        "nvidia.com/gpu": "1",
    }
    hash(loaded.request)  # requests key the pending queues' shapes


# --- zero requests, counts ----------------------------------------------------------------------


def test_a_zero_request_gets_a_flavor_and_charges_nothing() -> None:
    """Kueue assigns a flavor to a resource requested with quantity 0 when the ClusterQueue covers
    it (#8079), and charges nothing; one it does not cover is skipped."""
    config = _config([ResourceFlavor(name="default")], {"default": {GPU: 4, "cpu": 4}})
    tree = QuotaTree(config)
    request = ResourceRequest(pod_sets=(PodSet(resources={"cpu": 1, GPU: 0, "example.com/fpga": 0}),))
    a = assign_flavors(
        config.cluster_queues["q"],
        tree.cluster_queues["q"],
        request,
        QuotaUsage(tree),
        config.flavors,
        AcceleratorMatcher(),
    )
    assert (a.mode, a.flavors, a.usage) == (
        Mode.FIT,
        {"main": {"cpu": "default", GPU: "default"}},
        {("default", "cpu"): 1000},
    )


def test_a_zero_request_still_needs_a_flavor_it_may_use() -> None:
    config = _config(TAINTED[:1], {"spot": {GPU: 4, "cpu": 4}})
    tree = QuotaTree(config)
    request = ResourceRequest(pod_sets=(PodSet(resources={"cpu": 1, GPU: 0}),))
    a = assign_flavors(
        config.cluster_queues["q"],
        tree.cluster_queues["q"],
        request,
        QuotaUsage(tree),
        config.flavors,
        AcceleratorMatcher(),
    )
    assert a.mode is Mode.NO_FIT


def test_counts_scale_the_pod_sets() -> None:
    """Kueue's ``Assign(ctx, counts)``: the pod sets' counts replace theirs (partial admission)."""
    config = _config([ResourceFlavor(name="default")], {"default": {GPU: 4, "pods": 3}})
    tree = QuotaTree(config)
    request = ResourceRequest(pod_sets=(PodSet(count=5, resources={GPU: 1}),))
    args = (config.cluster_queues["q"], tree.cluster_queues["q"], request, QuotaUsage(tree), config.flavors)
    assert assign_flavors(*args, AcceleratorMatcher()).mode is Mode.NO_FIT
    reduced = assign_flavors(*args, AcceleratorMatcher(), counts=(3,))
    assert (reduced.mode, reduced.usage) == (Mode.FIT, {("default", GPU): 3000, ("default", "pods"): 3000})


# --- 9: the borrowing level, the preference, namespace expressions ------------------------------


def test_the_borrowing_level_is_the_height_of_the_lowest_subtree_that_fits() -> None:
    """root (4 of f) <- mid (4 of f) <- {q (0), other (0)}: a request mid holds borrows at mid's
    height, 1; one that needs root's quota borrows at root's height, 2."""
    config = QueueConfig.build(
        flavors=[ResourceFlavor(name="f")],
        cohorts=[
            Cohort(name="root", resource_groups=cq("x", {"f": {GPU: 4}}).resource_groups),
            Cohort(name="mid", parent="root", resource_groups=cq("x", {"f": {GPU: 4}}).resource_groups),
        ],
        cluster_queues=[cq("q", {"f": {GPU: 0}}, "mid"), cq("other", {"f": {GPU: 0}}, "mid")],
    )
    tree = QuotaTree(config)
    node, usage, fr = tree.cluster_queues["q"], QuotaUsage(tree), ("f", GPU)
    assert borrowing_height(node, fr, usage, 0) == (0, True)
    assert borrowing_height(node, fr, usage, 4000) == (1, True)
    assert borrowing_height(node, fr, usage, 8000) == (2, False)
    usage.add("other", {fr: 2000})
    assert borrowing_height(node, fr, usage, 4000) == (2, False)


def test_preemption_over_borrowing_preempts_in_the_first_flavor() -> None:
    """``preference: PreemptionOverBorrowing``: preempting within the queue's own quota on the first
    flavor beats borrowing the second (Kueue's scheduler_test.go PreemptionOverBorrowing cases)."""

    def run(preference: str | None) -> tuple[list[str], list[str]]:
        fungibility = FlavorFungibility(
            when_can_borrow="TryNextFlavor", when_can_preempt="TryNextFlavor", preference=preference
        )
        within = {"within_cluster_queue": "LowerPriority"}
        config = QueueConfig.build(
            flavors=[ResourceFlavor(name="on-demand"), ResourceFlavor(name="spot")],
            cluster_queues=[
                cq(
                    "q",
                    {"on-demand": {GPU: (4, 0)}, "spot": {GPU: (0, 4)}},
                    "c",
                    flavor_fungibility=fungibility,
                    preemption=within,
                ),
                cq("lender", {"on-demand": {GPU: 0}, "spot": {GPU: 4}}, "c"),
            ],
            local_queues=[LocalQueue(name="q", namespace="ns-q", cluster_queue="q")],
        )
        s = Scheduler(config)
        assert fill(s, [job("q", 4, name="low", priority=JobPriority.LOW)]) == ["low"]
        s.submit(job("q", 4, name="high", priority=JobPriority.HIGH))
        result = s.cycle(T0)
        return [a.job_id for a in result.admitted], [n.job_id for n in result.needs_preemption]

    assert run(None) == (["high"], [])  # BorrowingOverPreemption: borrow spot
    assert run("PreemptionOverBorrowing") == ([], ["high"])  # preempt low on on-demand


def test_namespace_match_expressions_select_namespaces() -> None:
    config = QueueConfig.build(
        flavors=[ResourceFlavor(name="default")],
        cluster_queues=[
            cq(
                "q",
                {"default": {GPU: 8}},
                namespace_match_expressions=(
                    LabelSelectorRequirement(key="team", operator="In", values=("ml", "infra")),
                    LabelSelectorRequirement(key="frozen", operator="DoesNotExist"),
                ),
            )
        ],
        local_queues=[LocalQueue(name="q", namespace=ns, cluster_queue="q") for ns in ("a", "b", "c")],
    )
    labels = {"a": {"team": "ml"}, "b": {"team": "web"}, "c": {"team": "ml", "frozen": "yes"}}
    s = Scheduler(config, AdmissionPolicy(namespace_labels=labels))
    jobs = [job("q", 1, name=ns).model_copy(update={"tenant": ns}) for ns in ("a", "b", "c")]
    assert fill(s, jobs) == ["a"]


def test_preference_and_match_expressions_load_and_dump() -> None:
    text = """\
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: f}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: q}
spec:
  namespaceSelector:
    matchLabels: {tier: gold}
    matchExpressions:
    - {key: team, operator: NotIn, values: [web]}
    - {key: team, operator: Exists}
  flavorFungibility:
    whenCanBorrow: TryNextFlavor
    whenCanPreempt: TryNextFlavor
    preference: PreemptionOverBorrowing
  resourceGroups:
  - coveredResources: [cpu]
    flavors:
    - {name: f, resources: [{name: cpu, nominalQuota: 1}]}
"""
    config = loads_queue_config(text)
    q = config.cluster_queues["q"]
    assert q.flavor_fungibility.preference == "PreemptionOverBorrowing"
    assert [(e.key, e.operator) for e in q.namespace_match_expressions] == [
        ("team", "NotIn"),
        ("team", "Exists"),
    ]
    assert q.selects_namespace("x", {"tier": "gold", "team": "ml"})
    assert not q.selects_namespace("x", {"tier": "gold", "team": "web"})
    assert not q.selects_namespace("x", {"tier": "gold"})
    assert loads_queue_config(dump_queue_config(config)) == config


# --- 11: Kueue's quantities in messages ---------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "milli", "text"),
    [
        ("cpu", 3000, "3"),
        ("cpu", 1500, "1500m"),
        ("cpu", 1_000_000, "1k"),
        ("cpu", 10_000_000, "10k"),
        ("cpu", 9_223_372_036_854_775_000, "9223372036854775"),
        ("cpu", 9_223_372_036_854_776_000, "9223372036854775807m"),  # Kueue's int64 saturates
        ("memory", 10 * 2**20 * 1000, "10Mi"),
        ("memory", 3000 * 1000, "3k"),
        ("memory", 1536 * 1000, "1536"),
        ("memory", 1000 * 1024 * 1000, "1000Ki"),
        ("memory", 0, "0"),
        ("nvidia.com/gpu", 3000, "3"),
        ("nvidia.com/gpu", 1_000_000, "1k"),
        ("pods", 1500 * 1000, "1500"),
        ("hugepages-2Mi", 4 * 2**20 * 1000, "4Mi"),
    ],
)
def test_amounts_print_as_kueue_prints_them(resource: str, milli: int, text: str) -> None:
    assert kueue_quantity(resource, milli) == text
