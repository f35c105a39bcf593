"""What a cluster backend reports and accepts, independent of how it runs workloads.

``Node`` is a machine with labels, taints and allocatable resources (Kubernetes' view). A
``Workload`` is an admitted job handed to the backend: pod sets, each with the node selector and
the tolerations of the flavors it was assigned, as Kueue's job controller injects a
ResourceFlavor's ``nodeLabels`` into the pods' nodeSelector and appends its ``tolerations`` to
theirs. A backend places a pod only on a node whose labels match the selector and whose
NoSchedule/NoExecute taints the pod tolerates (kube-scheduler's NodeAffinity and TaintToleration
filters).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from budcore.domain.ids import JobId, TenantId
from budcore.domain.podspec import Toleration
from budcore.domain.resources import ResourceVector

#: Taint effects that keep a pod off a node it does not tolerate (kube-scheduler's TaintToleration
#: filter); ``PreferNoSchedule`` is only a scoring preference, so it never blocks a placement.
BLOCKING_TAINT_EFFECTS: Final = frozenset({"NoSchedule", "NoExecute"})

# Kubernetes qualified name (taint keys, as label keys): optional DNS-subdomain prefix and '/', then
# a name of at most 63 characters; a taint value is a label value (at most 63, may be empty).
_QUALIFIED_NAME = re.compile(
    r"^(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^(?:[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


class Taint(BaseModel):
    """A node taint (Kubernetes ``core/v1 Taint``): pods that do not tolerate it are kept off the
    node when its effect is NoSchedule or NoExecute. Validated as the API server validates
    ``spec.taints``: the key is a qualified name, the value a label value, the effect required.
    ``timeAdded`` (set by the node controller on NoExecute taints) is not kept: placement does not
    depend on it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]

    @field_validator("key")
    @classmethod
    def _qualified_key(cls, key: str) -> str:
        if len(key.rpartition("/")[0]) > 253 or not _QUALIFIED_NAME.match(key):
            raise ValueError(
                f"invalid taint key {key!r}: use [prefix/]name, name at most 63 letters, digits, "
                "'-', '_' or '.', starting and ending with a letter or digit"
            )
        return key

    @field_validator("value")
    @classmethod
    def _label_value(cls, value: str) -> str:
        if not _LABEL_VALUE.match(value):
            raise ValueError(
                f"invalid taint value {value!r}: at most 63 letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit"
            )
        return value

    @property
    def blocks(self) -> bool:
        """Whether an untolerated taint keeps pods off the node (NoSchedule, NoExecute)."""
        return self.effect in BLOCKING_TAINT_EFFECTS

    def tolerated_by(self, tolerations: Iterable[Toleration]) -> bool:
        """Whether any of ``tolerations`` tolerates this taint (Kubernetes ``ToleratesTaint``, the
        same matching :class:`~budcore.domain.podspec.Toleration` and Kueue's flavor assigner use)."""
        as_mapping = {"key": self.key, "value": self.value, "effect": self.effect}
        return any(t.tolerates(as_mapping) for t in tolerations)

    def __str__(self) -> str:
        """``key=value:Effect``, as ``kubectl taint`` writes it."""
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"


class Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)
    allocatable: ResourceVector = Field(default_factory=ResourceVector)
    schedulable: bool = True  # False for cordoned or failed nodes
    taints: tuple[Taint, ...] = ()  # spec.taints

    def matches(self, selector: Mapping[str, str]) -> bool:
        """All of ``selector``'s labels are on this node with the same value."""
        labels = self.labels
        return all(labels.get(k) == v for k, v in selector.items())

    def untolerated_taint(self, tolerations: Iterable[Toleration] = ()) -> Taint | None:
        """The first NoSchedule/NoExecute taint of this node that none of ``tolerations``
        tolerates, or None: a pod is placed here only when this is None.

        Kubernetes' TaintToleration filter (kubernetes/kubernetes
        ``pkg/scheduler/framework/plugins/tainttoleration/taint_toleration.go``, ``Filter``:
        ``FindMatchingUntoleratedTaint(node.Spec.Taints, pod.Spec.Tolerations, NoSchedule ||
        NoExecute)``). A NoExecute toleration with ``tolerationSeconds`` counts as tolerating: the
        eviction after that many seconds is not modelled.
        """
        if not self.taints:
            return None
        tolerations = tuple(tolerations)
        for taint in self.taints:
            if taint.blocks and not taint.tolerated_by(tolerations):
                return taint
        return None


class PodSetPlacement(BaseModel):
    """One pod set of an admitted workload: how many pods, each needing what, where allowed.

    ``node_selector`` and ``tolerations`` are the pods' own merged with what Kueue injects from
    the assigned ResourceFlavors (their ``nodeLabels``; their ``tolerations``, see
    :meth:`merge_tolerations`): a pod may run on a node whose labels match the selector and whose
    NoSchedule/NoExecute taints the tolerations tolerate (:meth:`Node.untolerated_taint`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    count: int = Field(ge=1)
    resources: ResourceVector
    node_selector: dict[str, str] = Field(default_factory=dict)
    flavors: dict[str, str] = Field(default_factory=dict)  # resource name -> ResourceFlavor name
    tolerations: tuple[Toleration, ...] = ()

    @staticmethod
    def merge_tolerations(
        pod_tolerations: Iterable[Toleration], added: Iterable[Toleration | Mapping[str, Any]]
    ) -> tuple[Toleration, ...]:
        """``pod_tolerations`` followed by each of ``added`` that is not already there.

        What Kueue does to an admitted pod set's template (kubernetes-sigs/kueue
        ``pkg/podset/podset.go``: ``FromAssignment`` collects the tolerations of every assigned
        ResourceFlavor, each flavor once, and ``Merge`` appends them to the template's tolerations,
        skipping one equal to a toleration already in the list: ``utiltolerations.Equal``, the
        same key, operator (empty = ``Equal``), value and effect; ``tolerationSeconds`` does not
        take part). The pod's own tolerations are kept as they are, duplicates included.

        ``added`` may hold ResourceFlavor tolerations as they are stored
        (:attr:`budcore.scheduling.ResourceFlavor.tolerations`: mappings with Kubernetes keys,
        values as strings) or :class:`~budcore.domain.podspec.Toleration` objects.
        """
        out = list(pod_tolerations)
        seen = {_toleration_identity(t) for t in out}
        for item in added:
            toleration = item if isinstance(item, Toleration) else toleration_from_kubernetes(item)
            identity = _toleration_identity(toleration)
            if identity not in seen:
                seen.add(identity)
                out.append(toleration)
        return tuple(out)


def toleration_from_kubernetes(raw: Mapping[str, Any]) -> Toleration:
    """A :class:`~budcore.domain.podspec.Toleration` from a Kubernetes toleration mapping (``key``,
    ``operator``, ``value``, ``effect``, ``tolerationSeconds``), as a ResourceFlavor stores it.
    Empty strings are absent fields (an empty ``operator`` is Kubernetes' default, ``Equal``);
    the rest is validated as the API server does (:class:`Toleration`)."""
    return Toleration.model_validate({k: v for k, v in raw.items() if v != "" and v is not None})


def _toleration_identity(t: Toleration) -> tuple[str, str, str, str]:
    """What ``utiltolerations.Equal`` (Kubernetes ``Toleration.MatchToleration``) compares."""
    return (t.key, t.operator, t.value, t.effect)


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
