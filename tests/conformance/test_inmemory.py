"""The conformance kits against the in-memory adapter, resolved the way users resolve it."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from budcore_adapters.inmemory import InMemoryClusterBackend, InMemoryJobStore
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budcore.domain import JobId, ResourceVector, TenantId
from budcore.domain.cluster import Node, PodSetPlacement, Taint, Workload, WorkloadPhase
from budcore.domain.errors import AlreadyExistsError, CapacityError
from budcore.domain.podspec import Toleration
from budcore.plugins import default_registry
from budcore.ports import Clock, ClusterBackend, EventSink, JobStore
from budcore.testing import FakeClock
from budcore.testing.conformance import ClusterBackendConformance, JobStoreConformance
from budcore.testing.examples import examples


class TestInMemoryJobStore(JobStoreConformance):
    def make_store(self, events: EventSink) -> JobStore:
        return InMemoryJobStore(events=events)


class TestInMemoryJobStoreViaEntryPoint(JobStoreConformance):
    """Same kit, but the store comes from the ``budcore.plugins`` entry point by name.

    Fewer hypothesis examples: the class above already runs the full property test.
    """

    hypothesis_max_examples = 20

    def make_store(self, events: EventSink) -> JobStore:
        return default_registry().job_store("inmemory", events=events)

    def test_entry_point_resolves_the_inmemory_adapter(self) -> None:
        store, _ = self.fresh_store()
        assert isinstance(store, InMemoryJobStore)
        origin = default_registry().resolve("job_store", "inmemory").origin
        assert "entry point" in origin


class TestInMemoryClusterBackend(ClusterBackendConformance):
    def make_backend(self, nodes: Sequence[Node], clock: Clock) -> ClusterBackend:
        return default_registry().cluster_backend("inmemory", nodes=nodes, clock=clock)

    def test_backend_is_the_inmemory_adapter(self) -> None:
        backend, _ = self.fresh_backend()
        assert isinstance(backend, InMemoryClusterBackend)


def test_cancelling_a_finished_workload_keeps_its_outcome() -> None:
    """``cancel`` after the pods exited reports how the workload ended; it does not rewrite it."""
    node = Node(name="n0", allocatable=ResourceVector.of({"cpu": 8, "nvidia.com/gpu": 8}))
    backend = InMemoryClusterBackend([node], clock=FakeClock())
    pods = PodSetPlacement(name="main", count=1, resources=ResourceVector.of({"nvidia.com/gpu": 4}))
    for job_id, succeeded, phase in (
        ("ok", True, WorkloadPhase.SUCCEEDED),
        ("bad", False, WorkloadPhase.FAILED),
    ):
        backend.submit(Workload(job_id=JobId(job_id), tenant=TenantId("acme"), pod_sets=(pods,)))
        backend.complete(JobId(job_id), succeeded=succeeded)
        assert backend.cancel(JobId(job_id)).phase is phase
        assert {str(s.job_id): s.phase for s in backend.observe()}[job_id] is phase
    assert backend.capacity().total_free == node.allocatable


# try_submit and the memo of refused shapes ---------------------------------------------------
GPU = "nvidia.com/gpu"


def _gpu_pods(
    gpus: int, count: int = 1, name: str = "main", tolerations: tuple[Toleration, ...] = ()
) -> PodSetPlacement:
    return PodSetPlacement(
        name=name, count=count, resources=ResourceVector.of({GPU: gpus, "cpu": gpus}), tolerations=tolerations
    )


def _workload_of(job_id: str, *pod_sets: PodSetPlacement) -> Workload:
    return Workload(job_id=JobId(job_id), tenant=TenantId("acme"), pod_sets=pod_sets)


def _gpu_nodes(*gpus: int) -> list[Node]:
    return [
        Node(name=f"n{i}", allocatable=ResourceVector.of({GPU: g, "cpu": 64})) for i, g in enumerate(gpus)
    ]


def test_try_submit_returns_none_instead_of_raising_and_allocates_nothing() -> None:
    backend = InMemoryClusterBackend(_gpu_nodes(8, 8), clock=FakeClock())
    before = backend.capacity()
    assert backend.try_submit(_workload_of("big", _gpu_pods(8, count=3))) is None
    assert backend.capacity() == before
    assert backend.observe() == []
    status = backend.try_submit(_workload_of("fits", _gpu_pods(8, count=2)))
    assert status is not None and status.phase is WorkloadPhase.RUNNING
    assert status.nodes == ("n0", "n1")
    with pytest.raises(AlreadyExistsError):
        backend.try_submit(_workload_of("fits", _gpu_pods(1)))


def test_a_refused_shape_fits_again_once_resources_are_released() -> None:
    backend = InMemoryClusterBackend(_gpu_nodes(8), clock=FakeClock())
    backend.submit(_workload_of("filler", _gpu_pods(4)))
    assert backend.try_submit(_workload_of("a", _gpu_pods(8))) is None
    assert backend.try_submit(_workload_of("b", _gpu_pods(8))) is None  # refused from the memo
    with pytest.raises(CapacityError, match="pod set 'main'"):
        backend.submit(_workload_of("c", _gpu_pods(8)))
    backend.complete(JobId("filler"))
    assert backend.try_submit(_workload_of("b", _gpu_pods(8))) is not None


def test_a_refused_shape_fits_again_once_a_node_is_uncordoned_or_added() -> None:
    backend = InMemoryClusterBackend(_gpu_nodes(8), clock=FakeClock())
    backend.set_schedulable("n0", False)
    assert backend.try_submit(_workload_of("a", _gpu_pods(8))) is None
    backend.repair_node("n0")
    assert backend.try_submit(_workload_of("a", _gpu_pods(8))) is not None
    assert backend.try_submit(_workload_of("b", _gpu_pods(8))) is None
    backend.add_node(Node(name="extra", allocatable=ResourceVector.of({GPU: 8, "cpu": 64})))
    assert backend.try_submit(_workload_of("b", _gpu_pods(8))) is not None


def test_refusal_key_is_the_shape_for_one_pod_set_and_unique_for_several() -> None:
    backend = InMemoryClusterBackend(_gpu_nodes(8), clock=FakeClock())
    assert backend.refusal_key(_workload_of("a", _gpu_pods(2))) == backend.refusal_key(
        _workload_of("b", _gpu_pods(2))
    )
    assert backend.refusal_key(_workload_of("a", _gpu_pods(2))) != backend.refusal_key(
        _workload_of("b", _gpu_pods(2, count=2))
    )
    two = (_gpu_pods(2), _gpu_pods(2, name="side"))
    assert backend.refusal_key(_workload_of("a", *two)) != backend.refusal_key(_workload_of("b", *two))


class _NoMemo(set[object]):
    """A memo of refused shapes that never remembers: the backend searches every time."""

    def add(self, element: object) -> None:
        pass


_DEDICATED = Taint(key="dedicated", value="ml", effect="NoSchedule")
_TOLERATES_DEDICATED = (Toleration(key="dedicated", operator="Exists"),)


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    nodes=st.lists(st.tuples(st.sampled_from([4, 6, 8]), st.booleans()), min_size=1, max_size=4),
    ops=st.lists(
        st.tuples(
            st.sampled_from(["submit", "submit", "complete", "cordon", "fail"]),
            st.lists(
                st.tuples(st.sampled_from([2, 4, 8]), st.integers(min_value=1, max_value=2), st.booleans()),
                min_size=1,
                max_size=2,
            ),
            st.integers(min_value=0, max_value=20),
        ),
        max_size=60,
    ),
)
def test_the_memo_of_refused_shapes_never_changes_an_outcome(
    nodes: list[tuple[int, bool]], ops: list[tuple[str, list[tuple[int, int, bool]], int]]
) -> None:
    """The same operations with and without the memo place the same pods on the same nodes.

    Exercises the soundness argument of ``InMemoryClusterBackend._place`` (one pod set: refused
    stays refused until a release), and that the memo is not consulted wrongly for workloads of
    several pod sets, whose later pod sets may fit only after a different first placement, nor
    for a pod set that tolerates a taint another of the same selector and size does not. Also
    checks the placement indexes that cordons and failures update in place against a rebuild,
    and that a failure reports its victims in submission order.
    """
    fleet = [
        node.model_copy(update={"taints": (_DEDICATED,)}) if tainted else node
        for node, (_, tainted) in zip(_gpu_nodes(*(g for g, _ in nodes)), nodes, strict=True)
    ]
    memo = InMemoryClusterBackend(fleet, clock=FakeClock())
    plain = InMemoryClusterBackend(fleet, clock=FakeClock())
    plain._unplaceable = _NoMemo()
    running: list[str] = []
    for i, (op, pod_sets, pick) in enumerate(ops):
        if op == "submit":
            workload = _workload_of(
                f"w{i}",
                *(
                    _gpu_pods(g, count=c, name=f"p{j}", tolerations=_TOLERATES_DEDICATED if tolerant else ())
                    for j, (g, c, tolerant) in enumerate(pod_sets)
                ),
            )
            outcome = memo.try_submit(workload)
            assert outcome == plain.try_submit(workload)
            if outcome is not None:
                running.append(workload.job_id)
        elif op == "complete" and running:
            job_id = JobId(running.pop(pick % len(running)))
            assert memo.complete(job_id) == plain.complete(job_id)
        elif op == "cordon":
            name = f"n{pick % len(nodes)}"
            schedulable = pick % 2 == 0
            memo.set_schedulable(name, schedulable)
            plain.set_schedulable(name, schedulable)
        elif op == "fail":
            name = f"n{pick % len(nodes)}"
            expected = [
                s.job_id for s in memo.observe() if name in s.nodes and s.phase is WorkloadPhase.RUNNING
            ]
            assert memo.fail_node(name) == expected == plain.fail_node(name)
            running = [j for j in running if j not in expected]
        assert memo.capacity() == plain.capacity()
        for ((selector, tolerations), resource), index in memo._indexes.items():  # kept up to date
            wanted = dict(selector)
            assert list(index) == sorted(
                (memo._free[n.name].get(resource, 0), n.name)
                for n in memo.nodes()
                if n.schedulable and n.matches(wanted) and n.untolerated_taint(tolerations) is None
            )
