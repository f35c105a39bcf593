"""The cluster backend port: where admitted workloads actually run.

The in-memory adapter models nodes in memory (the simulator drives it on a virtual clock); the
Kueue adapter renders Kueue/Kubernetes objects. Scheduling decisions never call a backend: they
read a snapshot built from ``capacity()`` and emit decisions, which the caller applies here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol, runtime_checkable

from budcore.domain.cluster import ClusterCapacity, Node, Workload, WorkloadStatus
from budcore.domain.ids import JobId


@runtime_checkable
class ClusterBackend(Protocol):
    def nodes(self) -> Sequence[Node]:
        """Every node the backend knows, schedulable or not."""
        ...

    def capacity(self) -> ClusterCapacity:
        """Allocatable and currently free resources per node."""
        ...

    def submit(self, workload: Workload) -> WorkloadStatus:
        """Start an admitted workload; ``CapacityError`` if its pods cannot be placed now."""
        ...

    def cancel(self, job_id: JobId) -> WorkloadStatus:
        """Stop a workload at the user's request and release its resources."""
        ...

    def preempt(self, job_id: JobId, grace: timedelta = timedelta(seconds=30)) -> WorkloadStatus:
        """Evict a workload; resources are released after ``grace`` (or at once for 0)."""
        ...

    def observe(self) -> Sequence[WorkloadStatus]:
        """Current status of every workload the backend still tracks."""
        ...


@runtime_checkable
class SimulatedClusterBackend(ClusterBackend, Protocol):
    """A backend whose workloads run only as far as the caller says (the simulator's, the demo's).

    A real cluster reports completions and failures through ``observe``; a simulated one is told
    when a workload's pods exit and when nodes fail or come back.
    """

    def complete(self, job_id: JobId, succeeded: bool = True, message: str = "") -> WorkloadStatus:
        """The workload's pods exit (successfully or not) and release their resources."""
        ...

    def fail_node(self, name: str, reason: str = "node failure") -> list[JobId]:
        """A node goes down; returns the workloads that had pods on it (now failed)."""
        ...

    def repair_node(self, name: str) -> None:
        """A failed node is schedulable again."""
        ...
