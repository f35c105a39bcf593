"""ResourceFlavor tolerations reach the admitted pods, and tainted nodes take only pods that
tolerate them (issue #20, behaviour 6).

Kueue's job controller appends the assigned flavors' ``spec.tolerations`` to each admitted pod
set's template (kubernetes-sigs/kueue ``pkg/podset/podset.go``: ``FromAssignment``, ``Merge``);
kube-scheduler then places a pod only on nodes whose NoSchedule/NoExecute taints it tolerates
(TaintToleration filter). The simulator models both: nodes carry taints (scenario pools'
``taints``, node dumps' ``spec.taints``), the engine merges the flavor tolerations into each
``PodSetPlacement``, and the in-memory backend filters nodes by them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
import yaml
from budcore_adapters.inmemory import InMemoryClusterBackend
from budcore_simulator.build import build_simulation
from budcore_simulator.scenario import load_scenario
from budcore_simulator.status import SimJobStatus

from budcore.domain.cluster import Node, PodSetPlacement, Taint, Workload, WorkloadStatus
from budcore.domain.errors import CapacityError, ValidationError
from budcore.domain.ids import JobId, TenantId
from budcore.domain.podspec import Toleration
from budcore.domain.resources import ResourceVector
from budcore.hardware.labels import node_dict, parse_nodes
from budcore.ports.clock import Clock
from budcore.testing import FakeClock

GPU = "nvidia.com/gpu"
DEDICATED = Taint(key="dedicated", value="ml", effect="NoSchedule")


# Taints and the placement filter -------------------------------------------------------------
def test_a_taint_is_validated_as_the_api_server_does() -> None:
    assert str(DEDICATED) == "dedicated=ml:NoSchedule"
    assert (
        str(Taint(key="example.com/maintenance", effect="NoExecute")) == "example.com/maintenance:NoExecute"
    )
    for bad in (
        {"key": "dedicated", "effect": "Sometimes"},
        {"key": "", "effect": "NoSchedule"},
        {"key": "has space", "effect": "NoSchedule"},
        {"key": "dedicated", "value": "not/a/label", "effect": "NoSchedule"},
        {"key": "dedicated"},  # the effect is required
    ):
        with pytest.raises(ValueError):
            Taint.model_validate(bad)


@pytest.mark.parametrize(
    ("tolerations", "blocked_by"),
    [
        ((), "dedicated=ml:NoSchedule"),
        ((Toleration(key="dedicated", value="ml"),), "maintenance:NoExecute"),
        (
            (Toleration(key="dedicated", value="other"), Toleration(key="maintenance", operator="Exists")),
            "dedicated",
        ),
        ((Toleration(key="dedicated", operator="Exists", effect="NoExecute"),), "dedicated"),  # wrong effect
        (
            (
                Toleration(key="dedicated", operator="Exists"),
                Toleration(key="maintenance", operator="Exists"),
            ),
            None,
        ),
        ((Toleration(operator="Exists"),), None),  # empty key + Exists: every taint
    ],
)
def test_a_node_admits_pods_that_tolerate_its_no_schedule_and_no_execute_taints(
    tolerations: tuple[Toleration, ...], blocked_by: str | None
) -> None:
    """Kubernetes' TaintToleration filter: every NoSchedule/NoExecute taint must be tolerated; a
    PreferNoSchedule taint never blocks."""
    node = Node(
        name="n",
        taints=(
            Taint(key="spot", value="true", effect="PreferNoSchedule"),
            DEDICATED,
            Taint(key="maintenance", effect="NoExecute"),
        ),
    )
    taint = node.untolerated_taint(tolerations)
    if blocked_by is None:
        assert taint is None
    else:
        assert taint is not None and str(taint).startswith(blocked_by)
    assert Node(name="plain").untolerated_taint() is None
    assert (
        Node(name="soft", taints=(Taint(key="spot", effect="PreferNoSchedule"),)).untolerated_taint() is None
    )


# The merge -------------------------------------------------------------------------------------
def test_flavor_tolerations_are_appended_to_the_pod_sets_without_duplicates() -> None:
    """Kueue's ``PodSetInfo.Merge``: the template's tolerations first, then each flavor toleration
    not equal to one already there (key, operator with "" meaning Equal, value, effect; not
    tolerationSeconds). The template's own list is kept as it is."""
    own = (Toleration(key="team", value="a"), Toleration(key="team", value="a"))
    seconds_differ = Toleration(
        key="maintenance", operator="Exists", effect="NoExecute", toleration_seconds=60
    )
    flavor: list[Toleration | Mapping[str, str]] = [
        {"key": "team", "operator": "Equal", "value": "a"},  # equal to the pod's: skipped
        {"key": "dedicated", "operator": "", "value": "ml", "effect": "NoSchedule"},
        {"key": "dedicated", "value": "ml", "effect": "NoSchedule"},  # "" operator = Equal: skipped
        {"key": "maintenance", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": "300"},
        seconds_differ,  # only tolerationSeconds differs: skipped
        {"operator": "Exists"},
    ]
    merged = PodSetPlacement.merge_tolerations(own, flavor)
    assert merged == (
        *own,
        Toleration(key="dedicated", value="ml", effect="NoSchedule"),
        Toleration(key="maintenance", operator="Exists", effect="NoExecute", toleration_seconds=300),
        Toleration(operator="Exists"),
    )
    assert PodSetPlacement.merge_tolerations(own, []) == own
    assert PodSetPlacement.merge_tolerations((), flavor[:1]) == (Toleration(key="team", value="a"),)


def test_a_flavor_toleration_the_api_server_would_refuse_is_an_error() -> None:
    with pytest.raises(ValueError, match="operator must be Exists"):
        PodSetPlacement.merge_tolerations((), [{"value": "x"}])


# The in-memory backend -------------------------------------------------------------------------
def _workload(job_id: str, count: int, tolerations: tuple[Toleration, ...] = ()) -> Workload:
    pods = PodSetPlacement(
        name="main",
        count=count,
        resources=ResourceVector.of({GPU: 8, "cpu": 8}),
        node_selector={"pool": "h100"},
        tolerations=tolerations,
    )
    return Workload(job_id=JobId(job_id), tenant=TenantId("team"), pod_sets=(pods,))


def _h100(name: str, *taints: Taint) -> Node:
    return Node(
        name=name, labels={"pool": "h100"}, allocatable=ResourceVector.of({GPU: 8, "cpu": 64}), taints=taints
    )


def test_the_refusal_memo_tells_pod_sets_of_other_tolerations_apart() -> None:
    """A shape refused for want of a toleration must not refuse the same shape that has it: the
    memo and ``refusal_key`` include the tolerations."""
    backend = InMemoryClusterBackend([_h100("tainted", DEDICATED)], clock=FakeClock())
    intolerant, tolerant = _workload("a", 1), _workload("b", 1, (Toleration(key="dedicated", value="ml"),))
    assert backend.refusal_key(intolerant) != backend.refusal_key(tolerant)
    assert backend.try_submit(intolerant) is None
    status = backend.try_submit(tolerant)
    assert status is not None and status.nodes == ("tainted",)
    # The same tolerations in another order, or repeated, are the same shape.
    one = _workload("c", 1, (Toleration(key="x", operator="Exists"), Toleration(key="y", operator="Exists")))
    other = _workload(
        "d", 1, (Toleration(key="y", operator="Exists"), Toleration(key="x", operator="Exists"))
    )
    assert backend.refusal_key(one) == backend.refusal_key(other)


def test_a_refusal_names_the_untolerated_taints() -> None:
    backend = InMemoryClusterBackend(
        [_h100("h100-0", DEDICATED), _h100("h100-1", DEDICATED), _h100("h100-2")], clock=FakeClock()
    )
    backend.submit(_workload("fills-h100-2", 1))
    with pytest.raises(CapacityError) as info:
        backend.submit(_workload("refused", 1))
    message = str(info.value)
    assert "pod set 'main'" in message
    assert "untolerated taints keep it off 2 matching node(s)" in message
    assert "h100-0 (dedicated=ml:NoSchedule)" in message and "h100-2" not in message


def test_an_uncordoned_tainted_node_joins_only_the_placements_that_tolerate_it() -> None:
    """Cordon and uncordon update the placement indexes in place; a tainted node coming back must
    not enter the index of pods that do not tolerate it."""
    backend = InMemoryClusterBackend([_h100("tainted", DEDICATED), _h100("plain")], clock=FakeClock())
    backend.set_schedulable("tainted", False)
    tolerant = (Toleration(key="dedicated", operator="Exists"),)
    assert backend.try_submit(_workload("a", 1)) is not None  # builds the intolerant index: plain
    assert backend.try_submit(_workload("b", 1, tolerant)) is None  # plain is full, tainted cordoned
    backend.set_schedulable("tainted", True)
    assert backend.try_submit(_workload("c", 1)) is None
    status = backend.try_submit(_workload("d", 1, tolerant))
    assert status is not None and status.nodes == ("tainted",)


# Loading tainted nodes -----------------------------------------------------------------------
def test_a_node_dump_carries_its_taints() -> None:
    fleet = parse_nodes(
        [
            node_dict(
                "gpu-0",
                {"pool": "h100"},
                {GPU: 8},
                taints=[
                    {"key": "dedicated", "value": "ml", "effect": "NoSchedule"},
                    {
                        "key": "node.kubernetes.io/unreachable",
                        "effect": "NoExecute",
                        "timeAdded": "2024-01-01T00:00:00Z",
                    },
                ],
            ),
            node_dict("gpu-1", {"pool": "h100"}, {GPU: 8}),
        ]
    )
    nodes = {n.name: n for n in fleet.domain_nodes()}
    assert nodes["gpu-0"].taints == (
        DEDICATED,
        Taint(key="node.kubernetes.io/unreachable", effect="NoExecute"),
    )
    assert nodes["gpu-1"].taints == ()


@pytest.mark.parametrize(
    ("taint", "field", "words"),
    [
        ({"key": "dedicated", "effect": "Sometimes"}, "effect", "unsupported effect 'Sometimes'"),
        ({"value": "ml", "effect": "NoSchedule"}, "key", "a taint needs a key"),
        ({"key": "dedicated"}, "effect", "a taint needs an effect: use one of NoSchedule"),
        ({"key": "bad key", "effect": "NoSchedule"}, "key", "invalid taint key 'bad key'"),
        ({"key": "dedicated", "effect": "NoSchedule", "colour": "red"}, "colour", "unknown field"),
    ],
)
def test_a_bad_taint_in_a_node_dump_names_file_line_and_field(
    tmp_path: Path, taint: dict[str, str], field: str, words: str
) -> None:
    nodes = [node_dict("gpu-0", {"pool": "h100"}, {GPU: 8}), node_dict("gpu-1", {"pool": "h100"}, {GPU: 8})]
    nodes[1]["spec"] = {"taints": [{"key": "ok", "effect": "NoSchedule"}, taint]}
    dump = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": nodes}, sort_keys=False)
    (tmp_path / "nodes.yaml").write_text(dump)
    path = tmp_path / "scenario.yaml"
    path.write_text(
        _scenario(pool_taints=None, tolerations=None).replace(
            "  pools:\n    - {name: h100, gpus_per_node: 8, nodes: 2, labels: {pool: h100}}\n",
            "  nodes_file: nodes.yaml\n",
        )
    )
    with pytest.raises(ValidationError) as info:
        load_scenario(path)
    error = info.value
    assert words in error.message
    assert error.path == f"items[1].spec.taints[1].{field}"
    assert error.source is not None and error.source.endswith("nodes.yaml")
    # The line of the field, or of the taint that lacks it.
    lines = dump.splitlines()
    taints_at = next(i for i, line in enumerate(lines) if line.strip() == "taints:")
    item_at = [i for i in range(taints_at + 1, len(lines)) if lines[i].lstrip().startswith("- ")][1]
    expected = item_at
    if field in taint:
        expected = next(i for i in range(item_at, len(lines)) if f"{field}:" in lines[i])
    assert error.line == expected + 1
    assert str(error).startswith(f"{error.source}:{error.line}")


def test_the_line_of_a_bad_taint_is_found_in_a_dump_of_one_node_per_document(tmp_path: Path) -> None:
    """``kubectl get node a -o yaml; echo ---; ...``: the parser numbers nodes across documents
    (``items[1]`` is the second document's node), the line is still the taint's."""
    good, bad = node_dict("gpu-0", {"pool": "h100"}, {GPU: 8}), node_dict("gpu-1", {"pool": "h100"}, {GPU: 8})
    bad["spec"] = {"taints": [{"key": "dedicated", "effect": "Sometimes"}]}
    dump = yaml.safe_dump(good, sort_keys=False) + "---\n" + yaml.safe_dump(bad, sort_keys=False)
    (tmp_path / "nodes.yaml").write_text(dump)
    path = tmp_path / "scenario.yaml"
    path.write_text(
        _scenario(pool_taints=None, tolerations=None).replace(
            "  pools:\n    - {name: h100, gpus_per_node: 8, nodes: 2, labels: {pool: h100}}\n",
            "  nodes_file: nodes.yaml\n",
        )
    )
    with pytest.raises(ValidationError) as info:
        load_scenario(path)
    assert info.value.path == "items[1].spec.taints[0].effect"
    assert info.value.line == dump.splitlines().index("    effect: Sometimes") + 1


def test_a_bad_pool_taint_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    text = _scenario(pool_taints="[{key: dedicated, value: ml, effect: Sometimes}]", tolerations=None)
    path.write_text(text)
    with pytest.raises(ValidationError) as info:
        load_scenario(path)
    error = info.value
    assert error.path == "fleet.pools[0].taints[0].effect"
    assert "'NoSchedule', 'PreferNoSchedule' or 'NoExecute'" in error.message
    assert error.line == next(i for i, line in enumerate(text.splitlines(), 1) if "taints:" in line)


# End to end: a scenario with a tainted flavor --------------------------------------------------
def _scenario(*, pool_taints: str | None, tolerations: str | None, node_taints: str = "[]") -> str:
    """A 2-node H100 pool (with ``taints`` when given) behind one flavor and ClusterQueue, and six
    2-GPU jobs; ``tolerations`` and ``node_taints`` are the flavor's (YAML flow text)."""
    pools = "    - {name: h100, gpus_per_node: 8, nodes: 2, labels: {pool: h100}}\n"
    if pool_taints is not None:
        pools = (
            "    - name: h100\n      gpus_per_node: 8\n      nodes: 2\n      labels: {pool: h100}\n"
            f"      taints: {pool_taints}\n"
        )
    flavor_spec = f"{{nodeLabels: {{pool: h100}}, nodeTaints: {node_taints}"
    flavor_spec += f", tolerations: {tolerations}}}" if tolerations is not None else "}"
    return f"""\
name: tainted
seed: 3
horizon: 2h
fleet:
  pools:
{pools}queues:
  documents:
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ResourceFlavor
      metadata: {{name: h100}}
      spec: {flavor_spec}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ClusterQueue
      metadata: {{name: team}}
      spec:
        namespaceSelector: {{}}
        resourceGroups:
          - coveredResources: [nvidia.com/gpu, cpu, memory]
            flavors:
              - name: h100
                resources:
                  - {{name: nvidia.com/gpu, nominalQuota: 16}}
                  - {{name: cpu, nominalQuota: 192}}
                  - {{name: memory, nominalQuota: 2Ti}}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: LocalQueue
      metadata: {{name: main, namespace: team}}
      spec: {{clusterQueue: team}}
workload:
  generators:
    classes:
      - name: train
        tenant: team
        local_queue: main
        count: 6
        arrivals: {{kind: poisson, rate: 30, per: 1h}}
        runtime: {{kind: exponential, mean: 10m}}
        gpus: {{2: 1.0}}
"""


class _Recording(InMemoryClusterBackend):
    """The in-memory backend, remembering every workload the engine hands it."""

    def __init__(self, nodes: Sequence[Node], clock: Clock) -> None:
        super().__init__(nodes, clock=clock)
        self.seen: list[Workload] = []

    def try_submit(self, workload: Workload) -> WorkloadStatus | None:
        self.seen.append(workload)
        return super().try_submit(workload)


TAINT = "[{key: dedicated, value: ml, effect: NoSchedule}]"


def _run(
    tmp_path: Path, *, pool_taints: str | None, tolerations: str | None, node_taints: str = "[]"
) -> tuple[list[_Recording], list[tuple[str, str, tuple[str, ...]]]]:
    """Run the scenario; the backends the engine built and each job's (status, reason, nodes)."""
    path = tmp_path / "scenario.yaml"
    path.write_text(_scenario(pool_taints=pool_taints, tolerations=tolerations, node_taints=node_taints))
    backends: list[_Recording] = []

    def factory(nodes: Sequence[Node], clock: Clock) -> _Recording:
        backends.append(_Recording(nodes, clock))
        return backends[-1]

    result = build_simulation(load_scenario(path), cluster=factory).run()
    return backends, [(r.status.value, r.reason, r.nodes) for r in result.records]


def test_jobs_admitted_to_a_flavor_that_tolerates_its_tainted_nodes_run_there(tmp_path: Path) -> None:
    """The flavor declares its nodes' taint and tolerates it: Kueue admits to it (the flavor's own
    tolerations count in flavor assignment) and the pods, carrying the flavor's toleration, run on
    the tainted nodes."""
    backends, records = _run(
        tmp_path,
        pool_taints=TAINT,
        node_taints=TAINT,
        tolerations="[{key: dedicated, operator: Equal, value: ml, effect: NoSchedule}]",
    )
    assert records and all(status == SimJobStatus.COMPLETED for status, _, _ in records)
    assert all(nodes and set(nodes) <= {"h100-0000", "h100-0001"} for _, _, nodes in records)
    placed = [p for w in backends[0].seen for p in w.pod_sets]
    assert placed and all(
        p.tolerations == (Toleration(key="dedicated", value="ml", effect="NoSchedule"),) for p in placed
    )


def test_without_the_flavor_toleration_jobs_stay_admitted_with_pods_pending(tmp_path: Path) -> None:
    """The nodes are tainted but the flavor neither says so nor tolerates it: Kueue admits on quota
    and the pods stay pending, as kube-scheduler leaves them in Kubernetes."""
    backends, records = _run(tmp_path, pool_taints=TAINT, tolerations=None)
    assert records and all(status == SimJobStatus.ADMITTED for status, _, _ in records)
    assert all("pods pending" in reason and not nodes for _, reason, nodes in records)
    assert all(p.tolerations == () for w in backends[0].seen for p in w.pod_sets)


def test_a_flavor_declaring_an_untolerated_taint_is_not_assigned(tmp_path: Path) -> None:
    """With ``nodeTaints`` and no toleration Kueue does not even admit: the jobs stay queued with
    its "untolerated taint" message, and nothing reaches the nodes."""
    backends, records = _run(tmp_path, pool_taints=TAINT, node_taints=TAINT, tolerations=None)
    assert records and all(status == SimJobStatus.QUEUED for status, _, _ in records)
    assert all("untolerated taint" in reason for _, reason, _ in records)
    assert backends[0].seen == []


def test_untainted_nodes_run_the_same_jobs_with_or_without_flavor_tolerations(tmp_path: Path) -> None:
    """A flavor toleration only widens where pods may go: on a fleet without taints the run is the
    same as without it."""
    _, plain = _run(tmp_path, pool_taints=None, tolerations=None)
    _, tolerant = _run(tmp_path, pool_taints=None, tolerations="[{key: dedicated, operator: Exists}]")
    assert plain == tolerant
    assert all(status == SimJobStatus.COMPLETED for status, _, _ in plain)
