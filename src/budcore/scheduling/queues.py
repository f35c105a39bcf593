"""Kueue's queueing objects as budcore domain types.

These mirror ``kueue.x-k8s.io`` (v1beta2 is the storage version; v1beta1 documents load into
the same objects): ``ResourceFlavor``, ``ClusterQueue`` with ``resourceGroups`` (covered resources
× ordered flavors, each with ``nominalQuota``/``borrowingLimit``/``lendingLimit``), ``Cohort``
(hierarchical: a cohort may have a parent and its own quota), ``LocalQueue`` (a namespace's
entry point into a ClusterQueue) and ``WorkloadPriorityClass``.

All amounts are integer milli-units (see :mod:`budcore.domain.quantity`). ``None`` for a
borrowing or lending limit means "no limit", exactly as an absent field does in Kueue.

Every Kueue field these objects keep is either honoured by admission or listed in
:attr:`QueueConfig.ignored_fields` (an :class:`IgnoredField` per occurrence, with the reason): a
field Kueue acts on that budcore would drop without saying so is a defect.

Long because it mirrors five Kueue kinds with the webhook rules and the Kubernetes selector and
toleration semantics admission reads from them, which belong with the objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from budcore.domain.errors import NotFoundError, ValidationError, ValidationErrors
from budcore.domain.podspec import Toleration, set_requirement_matches, tolerates_taint
from budcore.domain.priority import PRIORITY_MAX, PRIORITY_MIN, JobPriority

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


class FungibilityPreference(StrEnum):
    """Kueue ``flavorFungibility.preference``: how the flavor assigner ranks two flavors that
    both need something (``isPreferred`` in ``pkg/scheduler/flavorassigner/flavorassigner.go``).

    ``BorrowingOverPreemption`` (what an unset preference means): the better preemption mode
    first (fit, then reclaim, then preempt), then borrowing from fewer cohort levels.
    ``PreemptionOverBorrowing``: borrowing from fewer levels first, then the better mode.
    Either way a flavor whose preemption finds no candidates ranks below every viable one.
    """

    BORROWING_OVER_PREEMPTION = "BorrowingOverPreemption"
    PREEMPTION_OVER_BORROWING = "PreemptionOverBorrowing"


class FlavorFungibility(BaseModel):
    model_config = _FROZEN

    when_can_borrow: FungibilityAction = FungibilityAction.MAY_STOP_SEARCH
    when_can_preempt: FungibilityAction = FungibilityAction.TRY_NEXT_FLAVOR
    preference: FungibilityPreference | None = None  # None: Kueue's default, BorrowingOverPreemption


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
    """Quota of one resource in one flavor of a ClusterQueue (or Cohort).

    ``lendingLimit <= nominalQuota`` is a ClusterQueue rule (checked by :class:`ClusterQueue`), not
    a Cohort one: Kueue's cohort webhook validates resource groups with
    ``enforceNominalGreaterThanLending: false`` (kubernetes-sigs/kueue
    ``pkg/webhooks/cohort_webhook.go`` ``validateCohort``; ``clusterqueue_webhook.go`` sets it to
    true), because a cohort's ``lendingLimit`` caps what its whole *subtree* lends to its parent:
    its guaranteed part is ``max(0, subtreeQuota − lendingLimit)`` (``pkg/cache/scheduler/
    resource_node.go`` ``localQuota``), which :mod:`budcore.scheduling.quota` computes the same way.
    """

    model_config = _FROZEN

    name: str
    nominal_quota: int = Field(ge=0)
    borrowing_limit: int | None = Field(default=None, ge=0)
    lending_limit: int | None = Field(default=None, ge=0)

    @property
    def lends_beyond_nominal(self) -> bool:
        return self.lending_limit is not None and self.lending_limit > self.nominal_quota


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


def _lending_errors(groups: Sequence[ResourceGroup]) -> list[str]:
    out: list[str] = []
    for gi, group in enumerate(groups):
        for fi, flavor in enumerate(group.flavors):
            for ri, quota in enumerate(flavor.resources):
                if quota.lends_beyond_nominal:
                    out.append(
                        f"resourceGroups[{gi}].flavors[{fi}].resources[{ri}] ({flavor.name}/{quota.name}): "
                        f"lendingLimit ({quota.lending_limit}m) must not exceed nominalQuota "
                        f"({quota.nominal_quota}m)"
                    )
    return out


class FairSharing(BaseModel):
    """Kueue ``spec.fairSharing``: ``weight`` scales a queue's share; 0 means always last."""

    model_config = _FROZEN

    weight: int = Field(default=1000, ge=0)  # milli-units: Kueue's default weight is 1


#: Taint effects that keep pods off a node, the only ones Kueue's flavor assignment checks.
SCHEDULING_TAINT_EFFECTS: Final = frozenset({"NoSchedule", "NoExecute"})


def tolerates(toleration: Mapping[str, str] | Toleration, taint: Mapping[str, str]) -> bool:
    """Kubernetes ``Toleration.ToleratesTaint`` (k8s.io/api/core/v1 toleration.go), for a
    ResourceFlavor's toleration (a mapping with Kubernetes keys) or a pod set's
    (:class:`~budcore.domain.podspec.Toleration`); see :func:`~budcore.domain.podspec.tolerates_taint`.
    """
    if isinstance(toleration, Toleration):
        return toleration.tolerates(taint)
    return tolerates_taint(
        toleration.get("key") or "",
        toleration.get("operator") or "Equal",
        toleration.get("value") or "",
        toleration.get("effect") or "",
        taint,
    )


class ResourceFlavor(BaseModel):
    """A kind of node (Kueue ResourceFlavor): ``node_labels`` select the nodes that provide it.

    Flavor assignment honours ``node_taints`` (a pod set that tolerates neither itself nor through
    the flavor's ``tolerations`` a NoSchedule/NoExecute taint is not assigned the flavor) and
    matches pod-set node selectors and required node affinity against ``node_labels``.
    ``tolerations`` are also added to the admitted pods (``PodSetPlacement.tolerations``, as
    Kueue's ``podset.Merge``; the cluster backends place pods only on nodes whose taints they
    tolerate); ``topology_name`` is kept and written back but not acted on.
    :attr:`QueueConfig.ignored_fields` reports what admission does not honour.
    """

    model_config = _FROZEN

    name: str
    node_labels: dict[str, str] = Field(default_factory=dict)
    node_taints: tuple[dict[str, str], ...] = ()
    tolerations: tuple[dict[str, str], ...] = ()
    topology_name: str | None = None

    def untolerated_taint(
        self, pod_tolerations: Iterable[Mapping[str, str] | Toleration] = ()
    ) -> dict[str, str] | None:
        """The first NoSchedule/NoExecute taint that neither the pods nor the flavor tolerate.

        Kueue's flavor assigner skips a flavor for a pod set when this is not None
        (kubernetes-sigs/kueue ``pkg/scheduler/flavorassigner/flavorassigner.go``:
        ``FindMatchingUntoleratedTaint(flavor.Spec.NodeTaints, append(podSpec.Tolerations,
        flavor.Spec.Tolerations...), NoSchedule || NoExecute)`` → "untolerated taint ... in
        flavor ..."). PreferNoSchedule taints never block.
        """
        tolerations = (*pod_tolerations, *self.tolerations)
        for taint in self.node_taints:
            if taint.get("effect") not in SCHEDULING_TAINT_EFFECTS:
                continue
            if not any(tolerates(t, taint) for t in tolerations):
                return taint
        return None


# Kubernetes sets this immutable label on every namespace (NamespaceDefaultLabelName, since 1.21),
# so ``namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: team-a}}`` is the usual way to
# pick namespaces by name.
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"


class LabelSelectorRequirement(BaseModel):
    """One ``matchExpressions`` entry of a label selector (Kubernetes ``LabelSelectorRequirement``,
    as in a ClusterQueue's ``namespaceSelector``): ``In``/``NotIn`` need values,
    ``Exists``/``DoesNotExist`` take none (the API server's rules)."""

    model_config = _FROZEN

    key: str = Field(min_length=1)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs at least one value")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self

    def matches(self, value: str | None) -> bool:
        """Kubernetes label-selector semantics, given the label's value (None: absent)."""
        return set_requirement_matches(self.operator, self.values, value)


class ClusterQueue(BaseModel):
    model_config = _FROZEN

    name: str
    cohort: str | None = None
    resource_groups: tuple[ResourceGroup, ...] = ()
    queueing_strategy: QueueingStrategy = QueueingStrategy.BEST_EFFORT_FIFO
    preemption: ClusterQueuePreemption = Field(default_factory=ClusterQueuePreemption)
    flavor_fungibility: FlavorFungibility = Field(default_factory=FlavorFungibility)
    fair_sharing: FairSharing = Field(default_factory=FairSharing)
    namespace_selector: dict[str, str] | None = None  # matchLabels; None: no label required
    # namespaceSelector.matchExpressions, ANDed with the labels (Kubernetes LabelSelector).
    namespace_match_expressions: tuple[LabelSelectorRequirement, ...] = ()
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
        # Kueue's ClusterQueue webhook (enforceNominalGreaterThanLending: true); Cohorts may lend
        # more than their own nominal quota (see ResourceQuota).
        lending = _lending_errors(self.resource_groups)
        if lending:
            raise ValueError("; ".join(lending))
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

    def selects_namespace(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """Whether ``namespace``, with ``labels``, matches ``namespaceSelector``: every
        ``matchLabels`` entry and every ``matchExpressions`` requirement (Kubernetes
        ``LabelSelector``; Kueue checks it in ``pkg/cache/scheduler/clusterqueue.go``).

        Besides ``labels`` the namespace carries the implicit :data:`NAMESPACE_NAME_LABEL` (an
        explicit label wins). A ClusterQueue without a selector admits every namespace:
        budcore's documented choice (``budcore.config.kueue``), where Kueue's null selector
        matches nothing.
        """
        selector = self.namespace_selector
        if selector is not None:
            for key, value in selector.items():
                actual = labels.get(key)
                if actual is None and key == NAMESPACE_NAME_LABEL:
                    actual = namespace
                if actual != value:
                    return False
        for requirement in self.namespace_match_expressions:
            actual = labels.get(requirement.key)
            if actual is None and requirement.key == NAMESPACE_NAME_LABEL:
                actual = namespace
            if not requirement.matches(actual):
                return False
        return True

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
    """Kueue ``WorkloadPriorityClass``: a job naming it (``Job.priority_class`` or the label
    ``kueue.x-k8s.io/priority-class``) gets ``value`` as its priority for queue order and
    preemption, resolved by ``Scheduler.submit``."""

    model_config = _FROZEN

    name: str
    value: int = Field(ge=PRIORITY_MIN, le=PRIORITY_MAX)  # int32, as in Kueue
    description: str = ""


@dataclass(frozen=True)
class IgnoredField:
    """A Kueue field that Kueue acts on and budcore loads but does not honour (a warning).

    ``kind``/``name`` name the object (``namespace/name`` for LocalQueues), ``path`` the field in
    its manifest (``spec.nodeTaints[0]``), ``reason`` what Kueue does with it and what budcore does
    instead. ``source``/``line`` locate it when it came from a file; they do not take part in
    equality, so a configuration built in code equals the same configuration loaded from YAML.
    """

    kind: str
    name: str
    path: str
    reason: str
    source: str | None = field(default=None, compare=False)
    line: int | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.name, self.path)

    def __str__(self) -> str:
        where = ""
        if self.source:
            where = self.source + (f":{self.line}" if self.line else "") + ": "
        return f"{where}{self.path}: {self.kind} {self.name!r}: ignored by budcore: {self.reason}"


_TOPOLOGY_REASON: Final = (
    "a flavor with topologyName is a Topology-Aware Scheduling flavor: Kueue admits only with a "
    "topology assignment that fits the nodes' free capacity (tas_flavorassigner.go); budcore "
    "admits on quota alone"
)


def ignored_fields_of(flavors: Iterable[ResourceFlavor]) -> tuple[IgnoredField, ...]:
    """Every honoured-by-Kueue field of these objects that budcore's admission does not honour.

    The complete field inventory (CRDs of kueue.x-k8s.io v1beta1/v1beta2) is in the README's
    Kueue map; everything not listed here is either honoured or rejected at load time.
    ``nodeTaints`` are honoured by flavor assignment (pod-set tolerations, Kueue's
    ``checkFlavorForPodSets``) and ``tolerations`` by it and by the cluster backends (added to the
    admitted pods), so neither is listed.
    """
    out: list[IgnoredField] = []
    for flavor in sorted(flavors, key=lambda f: f.name):
        if flavor.topology_name is not None:
            out.append(IgnoredField("ResourceFlavor", flavor.name, "spec.topologyName", _TOPOLOGY_REASON))
    return tuple(out)


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
    # Derived from the objects above (never an input): see ignored_fields_of. Entries passed in
    # are kept only for their file locations.
    ignored_fields: tuple[IgnoredField, ...] = ()

    @model_validator(mode="after")
    def _derive_ignored_fields(self) -> QueueConfig:
        derived = ignored_fields_of(self.flavors.values())
        if derived != self.ignored_fields:  # equality ignores locations
            located = {f.key: f for f in self.ignored_fields}
            kept = tuple(located[f.key] if located.get(f.key) == f else f for f in derived)
            object.__setattr__(self, "ignored_fields", kept)
        return self

    def with_locations(
        self, locate: Mapping[tuple[str, str, str], tuple[str | None, int | None]]
    ) -> QueueConfig:
        """The same configuration with ``ignored_fields`` located (``(kind, name, path)`` →
        ``(source, line)``), as the YAML loader does."""
        located = tuple(
            IgnoredField(f.kind, f.name, f.path, f.reason, *locate.get(f.key, (f.source, f.line)))
            for f in self.ignored_fields
        )
        return self.model_copy(update={"ignored_fields": located})

    def priority_class_value(self, name: str) -> int:
        """The ``value`` of WorkloadPriorityClass ``name``; the built-in ``budcore-<class>`` names
        resolve to their built-in values unless the configuration defines them."""
        found = self.priority_classes.get(name)
        if found is not None:
            return found.value
        builtin = JobPriority.from_kueue_class_name(name)
        if builtin is not None:
            return builtin.value_int
        known = sorted({*self.priority_classes, *(p.kueue_class_name for p in JobPriority)})
        raise ValidationError(
            f"WorkloadPriorityClass {name!r} does not exist (known: {', '.join(known)})",
            path="priority_class",
        )

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
        collections = ("flavors", "cluster_queues", "cohorts", "local_queues", "priority_classes")
        unknown = sorted(set(updates) - set(collections))
        if unknown:
            raise ValidationError(f"not an object collection: {', '.join(unknown)}", path=unknown[0])
        data = {k: dict(getattr(self, k)) for k in collections}
        data.update({k: dict(v) for k, v in updates.items()})
        config = QueueConfig.build(
            flavors=data["flavors"].values(),
            cluster_queues=data["cluster_queues"].values(),
            cohorts=data["cohorts"].values(),
            local_queues=data["local_queues"].values(),
            priority_classes=data["priority_classes"].values(),
        )
        return config.with_locations({f.key: (f.source, f.line) for f in self.ignored_fields})
