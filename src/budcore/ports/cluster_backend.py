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
