"""What a cluster backend reports and accepts, independent of how it runs workloads.

``Node`` is a machine with labels and allocatable resources (Kubernetes' view). A ``Workload`` is
an admitted job handed to the backend: pod sets, each with the node selector of the flavor it was
assigned (Kueue injects a ResourceFlavor's ``nodeLabels`` into the pods' nodeSelector in the same
way).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from budcore.domain.ids import JobId, TenantId
from budcore.domain.resources import ResourceVector


class Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)
    allocatable: ResourceVector = Field(default_factory=ResourceVector)
    schedulable: bool = True  # False for cordoned or failed nodes

    def matches(self, selector: Mapping[str, str]) -> bool:
        """All of ``selector``'s labels are on this node with the same value."""
        labels = self.labels
        return all(labels.get(k) == v for k, v in selector.items())


class PodSetPlacement(BaseModel):
    """One pod set of an admitted workload: how many pods, each needing what, where allowed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    count: int = Field(ge=1)
    resources: ResourceVector
    node_selector: dict[str, str] = Field(default_factory=dict)
    flavors: dict[str, str] = Field(default_factory=dict)  # resource name -> ResourceFlavor name


class Workload(BaseModel):
    """An admitted job as the backend sees it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: JobId
    tenant: TenantId
    pod_sets: tuple[PodSetPlacement, ...]
    priority: int = 0


class WorkloadPhase(StrEnum):
    PENDING = "pending"  # accepted, pods not (all) placed yet
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TERMINATING = "terminating"  # preempted/cancelled, within its grace period
    EVICTED = "evicted"  # preempted and gone


class WorkloadStatus(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: JobId
    tenant: TenantId
    phase: WorkloadPhase
    nodes: tuple[str, ...] = ()
    message: str = ""


class NodeCapacity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    node: Node
    free: ResourceVector


class ClusterCapacity(BaseModel):
    """Allocatable and free resources per node, and their totals."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    nodes: tuple[NodeCapacity, ...]

    @property
    def total_allocatable(self) -> ResourceVector:
        return ResourceVector.sum(n.node.allocatable for n in self.nodes if n.node.schedulable)

    @property
    def total_free(self) -> ResourceVector:
        return ResourceVector.sum(n.free for n in self.nodes if n.node.schedulable)
