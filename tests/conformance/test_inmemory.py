"""The conformance kits against the in-memory adapter, resolved the way users resolve it."""

from __future__ import annotations

from collections.abc import Sequence

from budcore_adapters.inmemory import InMemoryClusterBackend, InMemoryJobStore

from budcore.domain import JobId, ResourceVector, TenantId
from budcore.domain.cluster import Node, PodSetPlacement, Workload, WorkloadPhase
from budcore.plugins import default_registry
from budcore.ports import Clock, ClusterBackend, EventSink, JobStore
from budcore.testing import FakeClock
from budcore.testing.conformance import ClusterBackendConformance, JobStoreConformance


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
