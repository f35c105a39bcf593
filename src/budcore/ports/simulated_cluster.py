"""The simulated cluster port: everything the simulator's discrete-event engine asks of a cluster.

:class:`~budcore.ports.cluster_backend.SimulatedClusterBackend` is a cluster whose workloads run
only as far as the caller says (pods exit when told, nodes fail and come back when told): enough
for the demo. The engine (``budcore_simulator.engine``) also retries the placement of admitted
workloads whose pods are pending every time capacity frees, as kube-scheduler retries
unschedulable pods, and keeps a million-job run's memory flat. :class:`SimulatedCluster` adds
what that needs:

- :meth:`~SimulatedCluster.try_submit`: ``submit`` that answers "not now" with ``None`` instead of
  a ``CapacityError`` (most retries fail, and a refusal should cost no formatted message);
- :meth:`~SimulatedCluster.refusal_key`: which workloads stand or fall together until resources
  are released, so a retry pass skips the rest of a group once one of them was refused;
- :meth:`~SimulatedCluster.forget`: drop a finished workload's record.

The engine calls nothing else: ``complete``, ``fail_node`` and ``repair_node`` (from
``SimulatedClusterBackend``), ``preempt`` and ``capacity`` (from ``ClusterBackend``) and the three
above. The in-memory adapter (``budcore_adapters.inmemory.InMemoryClusterBackend``) implements it.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol, runtime_checkable

from budcore.domain.cluster import Workload, WorkloadStatus
from budcore.domain.ids import JobId
from budcore.ports.cluster_backend import SimulatedClusterBackend


@runtime_checkable
class SimulatedCluster(SimulatedClusterBackend, Protocol):
    """A :class:`SimulatedClusterBackend` that a discrete-event engine can retry placements on cheaply."""

    def try_submit(self, workload: Workload) -> WorkloadStatus | None:
        """``submit``, but ``None`` instead of ``CapacityError`` when the pods do not fit now.

        Nothing stays allocated after a refusal; other errors (a duplicate submit) still raise.
        """
        ...

    def refusal_key(self, workload: Workload) -> Hashable:
        """Workloads with equal keys stand or fall together until resources are released.

        Once one of them is refused, every other one is refused as well, however many workloads
        are placed meanwhile, until a workload releases resources or a node is added or comes back.
        """
        ...

    def forget(self, job_id: JobId) -> None:
        """Drop the record of a workload that holds nothing any more (finished, failed, evicted).

        A workload still holding resources is an error (``ValidationError``); an unknown one is
        ignored.
        """
        ...
