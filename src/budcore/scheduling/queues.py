"""Kueue's queueing objects as budcore domain types.

These mirror ``kueue.x-k8s.io`` (v1beta2 is the storage version; v1beta1 documents load into
the same objects): ``ResourceFlavor``, ``ClusterQueue`` with ``resourceGroups`` (covered resources
× ordered flavors, each with ``nominalQuota``/``borrowingLimit``/``lendingLimit``), ``Cohort``
(hierarchical: a cohort may have a parent and its own quota), ``LocalQueue`` (a namespace's
entry point into a ClusterQueue) and ``WorkloadPriorityClass``.

All amounts are integer milli-units (see :mod:`budcore.domain.quantity`). ``None`` for a
borrowing or lending limit means "no limit", exactly as an absent field does in Kueue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from budcore.domain.errors import NotFoundError, ValidationError, ValidationErrors

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class QueueingStrategy(StrEnum):
    """Kueue ``spec.queueingStrategy``.

    StrictFIFO: the head of the queue blocks the ones behind it until it is admitted.
    BestEffortFIFO: a head that does not fit is set aside so later (smaller) workloads may go.
    """

    STRICT_FIFO = "StrictFIFO"
    BEST_EFFORT_FIFO = "BestEffortFIFO"


class StopPolicy(StrEnum):
    """Kueue ``spec.stopPolicy``: Hold stops new admissions; HoldAndDrain also evicts admitted ones."""

    NONE = "None"
    HOLD = "Hold"
    HOLD_AND_DRAIN = "HoldAndDrain"


class FungibilityAction(StrEnum):
    """Kueue ``flavorFungibility.whenCanBorrow`` / ``whenCanPreempt``.

    ``MayStopSearch`` (v1beta1 spelled it ``Borrow`` / ``Preempt``): accept this flavor even though
    it needs borrowing/preemption. ``TryNextFlavor``: look for a flavor that fits without it first.
    """

    MAY_STOP_SEARCH = "MayStopSearch"
    TRY_NEXT_FLAVOR = "TryNextFlavor"


class FlavorFungibility(BaseModel):
    model_config = _FROZEN

    when_can_borrow: FungibilityAction = FungibilityAction.MAY_STOP_SEARCH
    when_can_preempt: FungibilityAction = FungibilityAction.TRY_NEXT_FLAVOR


class WithinClusterQueue(StrEnum):
    NEVER = "Never"
    LOWER_PRIORITY = "LowerPriority"
    LOWER_OR_NEWER_EQUAL_PRIORITY = "LowerOrNewerEqualPriority"


class ReclaimWithinCohort(StrEnum):
    NEVER = "Never"
    LOWER_PRIORITY = "LowerPriority"
    ANY = "Any"


class BorrowWithinCohortPolicy(StrEnum):
    NEVER = "Never"
    LOWER_PRIORITY = "LowerPriority"


class BorrowWithinCohort(BaseModel):
    model_config = _FROZEN

    policy: BorrowWithinCohortPolicy = BorrowWithinCohortPolicy.NEVER
    max_priority_threshold: int | None = None


class ClusterQueuePreemption(BaseModel):
    """Kueue ``spec.preemption`` (defaults are Kueue's)."""

    model_config = _FROZEN

    within_cluster_queue: WithinClusterQueue = WithinClusterQueue.NEVER
    reclaim_within_cohort: ReclaimWithinCohort = ReclaimWithinCohort.NEVER
    borrow_within_cohort: BorrowWithinCohort = Field(default_factory=BorrowWithinCohort)


class ResourceQuota(BaseModel):
    """Quota of one resource in one flavor of a ClusterQueue (or Cohort)."""

    model_config = _FROZEN

    name: str
    nominal_quota: int = Field(ge=0)
    borrowing_limit: int | None = Field(default=None, ge=0)
    lending_limit: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _lending_within_nominal(self) -> ResourceQuota:
        if self.lending_limit is not None and self.lending_limit > self.nominal_quota:
            raise ValueError(
                f"lendingLimit ({self.lending_limit}m) must not exceed nominalQuota ({self.nominal_quota}m)"
            )
        return self


class FlavorQuotas(BaseModel):
    model_config = _FROZEN

    name: str  # ResourceFlavor name
    resources: tuple[ResourceQuota, ...]


class ResourceGroup(BaseModel):
    """Resources that are assigned the same flavor together, with flavors in preference order."""

    model_config = _FROZEN

    covered_resources: tuple[str, ...] = Field(min_length=1)
    flavors: tuple[FlavorQuotas, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _flavors_cover_exactly(self) -> ResourceGroup:
        covered = list(self.covered_resources)
        if len(set(covered)) != len(covered):
            raise ValueError(f"coveredResources has duplicates: {covered}")
        for i, flavor in enumerate(self.flavors):
            names = [r.name for r in flavor.resources]
            if names != covered:
                raise ValueError(
                    f"flavors[{i}] ({flavor.name}) lists resources {names}, "
                    f"expected exactly coveredResources {covered} in that order"
                )
        return self


class FairSharing(BaseModel):
    """Kueue ``spec.fairSharing``: ``weight`` scales a queue's share; 0 means always last."""

    model_config = _FROZEN

    weight: int = Field(default=1000, ge=0)  # milli-units: Kueue's default weight is 1


class ResourceFlavor(BaseModel):
    """A kind of node (Kueue ResourceFlavor): ``node_labels`` select the nodes that provide it."""

    model_config = _FROZEN

    name: str
    node_labels: dict[str, str] = Field(default_factory=dict)
    node_taints: tuple[dict[str, str], ...] = ()
    tolerations: tuple[dict[str, str], ...] = ()
    topology_name: str | None = None


class ClusterQueue(BaseModel):
    model_config = _FROZEN

    name: str
    cohort: str | None = None
    resource_groups: tuple[ResourceGroup, ...] = ()
    queueing_strategy: QueueingStrategy = QueueingStrategy.BEST_EFFORT_FIFO
    preemption: ClusterQueuePreemption = Field(default_factory=ClusterQueuePreemption)
    flavor_fungibility: FlavorFungibility = Field(default_factory=FlavorFungibility)
    fair_sharing: FairSharing = Field(default_factory=FairSharing)
    namespace_selector: dict[str, str] | None = None  # None: every namespace (Kueue's `{}`)
    stop_policy: StopPolicy = StopPolicy.NONE
    admission_fair_sharing: bool = False  # admissionScope.admissionMode: UsageBasedAdmissionFairSharing

    @model_validator(mode="after")
    def _unique_resources_and_flavors(self) -> ClusterQueue:
        resources: list[str] = [r for g in self.resource_groups for r in g.covered_resources]
        if len(set(resources)) != len(resources):
            raise ValueError(f"a resource is covered by more than one resourceGroup: {resources}")
        flavors = [f.name for g in self.resource_groups for f in g.flavors]
        if len(set(flavors)) != len(flavors):
            raise ValueError(f"a flavor appears in more than one resourceGroup: {flavors}")
        return self

    @property
    def can_preempt(self) -> bool:
        """Whether any of its preemption policies could ever pick a victim."""
        p = self.preemption
        return (
            p.within_cluster_queue is not WithinClusterQueue.NEVER
            or p.reclaim_within_cohort is not ReclaimWithinCohort.NEVER
            or p.borrow_within_cohort.policy is not BorrowWithinCohortPolicy.NEVER
        )

    def quota(self, flavor: str, resource: str) -> ResourceQuota | None:
        for group in self.resource_groups:
            if resource in group.covered_resources:
                for fq in group.flavors:
                    if fq.name == flavor:
                        for rq in fq.resources:
                            if rq.name == resource:
                                return rq
        return None


class Cohort(BaseModel):
    """A Kueue Cohort: ClusterQueues (and child cohorts) that lend to each other.

    A cohort may have its own ``resource_groups`` quota (shared by its subtree) and a parent.
    """

    model_config = _FROZEN

    name: str
    parent: str | None = None
    resource_groups: tuple[ResourceGroup, ...] = ()
    fair_sharing: FairSharing = Field(default_factory=FairSharing)


class LocalQueue(BaseModel):
    """A namespace's queue; workloads name it, it points to a ClusterQueue."""

    model_config = _FROZEN

    name: str
    namespace: str = "default"
    cluster_queue: str
    stop_policy: StopPolicy = StopPolicy.NONE
    fair_sharing: FairSharing = Field(default_factory=FairSharing)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


class WorkloadPriorityClass(BaseModel):
    model_config = _FROZEN

    name: str
    value: int
    description: str = ""


class QueueConfig(BaseModel):
    """A whole queueing configuration, with every cross-reference checked.

    Missing flavors, cohorts or ClusterQueues and cohort cycles are errors naming both sides.
    """

    model_config = _FROZEN

    flavors: dict[str, ResourceFlavor] = Field(default_factory=dict)
    cluster_queues: dict[str, ClusterQueue] = Field(default_factory=dict)
    cohorts: dict[str, Cohort] = Field(default_factory=dict)
    local_queues: dict[tuple[str, str], LocalQueue] = Field(default_factory=dict)
    priority_classes: dict[str, WorkloadPriorityClass] = Field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        flavors: Iterable[ResourceFlavor] = (),
        cluster_queues: Iterable[ClusterQueue] = (),
        cohorts: Iterable[Cohort] = (),
        local_queues: Iterable[LocalQueue] = (),
        priority_classes: Iterable[WorkloadPriorityClass] = (),
    ) -> QueueConfig:
        """Assemble and check a configuration; duplicates are errors."""
        errors: list[ValidationError] = []

        def index(kind: str, items: Iterable[object], key: str) -> dict[object, object]:
            out: dict[object, object] = {}
            for item in items:
                k = getattr(item, key)
                if k in out:
                    errors.append(ValidationError(f"duplicate {kind} {k!r}", path=f"{kind}/{k}"))
                out[k] = item
            return out

        config = cls(
            flavors=index("ResourceFlavor", flavors, "name"),
            cluster_queues=index("ClusterQueue", cluster_queues, "name"),
            cohorts=index("Cohort", cohorts, "name"),
            local_queues=index("LocalQueue", local_queues, "key"),
            priority_classes=index("WorkloadPriorityClass", priority_classes, "name"),
        )
        errors.extend(config.reference_errors())
        if errors:
            raise ValidationErrors(errors)
        return config

    def reference_errors(self) -> list[ValidationError]:
        """Every dangling reference or cohort cycle, each naming both sides."""
        errors: list[ValidationError] = []
        for cq in self.cluster_queues.values():
            for gi, group in enumerate(cq.resource_groups):
                for fi, fq in enumerate(group.flavors):
                    if fq.name not in self.flavors:
                        errors.append(
                            ValidationError(
                                f"ClusterQueue {cq.name!r} references ResourceFlavor {fq.name!r}, "
                                "which does not exist",
                                path=f"ClusterQueue/{cq.name}.spec.resourceGroups[{gi}].flavors[{fi}].name",
                            )
                        )
            # A ClusterQueue may name a cohort that has no Cohort object: Kueue creates it implicitly.
        for cohort in self.cohorts.values():
            for gi, group in enumerate(cohort.resource_groups):
                for fi, fq in enumerate(group.flavors):
                    if fq.name not in self.flavors:
                        errors.append(
                            ValidationError(
                                f"Cohort {cohort.name!r} references ResourceFlavor {fq.name!r}, "
                                "which does not exist",
                                path=f"Cohort/{cohort.name}.spec.resourceGroups[{gi}].flavors[{fi}].name",
                            )
                        )
            seen = [cohort.name]
            parent = cohort.parent
            while parent is not None:
                if parent in seen:
                    errors.append(
                        ValidationError(
                            f"Cohort {cohort.name!r} is in a parent cycle: {' -> '.join([*seen, parent])}",
                            path=f"Cohort/{cohort.name}.spec.parentName",
                        )
                    )
                    break
                seen.append(parent)
                parent = self.cohorts[parent].parent if parent in self.cohorts else None
        for lq in self.local_queues.values():
            if lq.cluster_queue not in self.cluster_queues:
                errors.append(
                    ValidationError(
                        f"LocalQueue {lq.namespace}/{lq.name} references ClusterQueue "
                        f"{lq.cluster_queue!r}, which does not exist",
                        path=f"LocalQueue/{lq.namespace}/{lq.name}.spec.clusterQueue",
                    )
                )
        return errors

    def local_queue(self, namespace: str, name: str) -> LocalQueue:
        try:
            return self.local_queues[(namespace, name)]
        except KeyError:
            raise NotFoundError("LocalQueue", f"{namespace}/{name}") from None

    def cohort_names(self) -> list[str]:
        """Explicit cohorts plus those only named by a ClusterQueue or as a parent (implicit)."""
        names = set(self.cohorts)
        names.update(cq.cohort for cq in self.cluster_queues.values() if cq.cohort)
        names.update(c.parent for c in self.cohorts.values() if c.parent)
        return sorted(names)

    def with_objects(self, **updates: Mapping[Any, Any]) -> QueueConfig:
        """A copy with some collections replaced, re-checked."""
        data = {k: dict(getattr(self, k)) for k in type(self).model_fields}
        data.update({k: dict(v) for k, v in updates.items()})
        return QueueConfig.build(
            flavors=data["flavors"].values(),
            cluster_queues=data["cluster_queues"].values(),
            cohorts=data["cohorts"].values(),
            local_queues=data["local_queues"].values(),
            priority_classes=data["priority_classes"].values(),
        )
