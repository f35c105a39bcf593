"""Kueue's scheduler table cases as data, and the one driver that puts them to budcore.

The test modules beside this one transcribe ``TestSchedule`` (``pkg/scheduler/scheduler_test.go``)
and ``TestScheduleForFairSharing`` (``pkg/scheduler/scheduler_fs_test.go``) of kubernetes-sigs/kueue
at commit ff69552e79ad21652c36caa97038382e55625cf7 (Apache-2.0). Each case keeps Kueue's inputs as
facts, written with builders that read like Kueue's test wrappers:

- ResourceFlavors (:func:`flavor`, with ``Taint``), ClusterQueues (:func:`cluster_queue`, one dict
  per ``ResourceGroup``: flavor → resource → quota, where a quota is the nominal quota or a tuple
  ``(nominal, borrowingLimit, lendingLimit)`` with ``None`` for an unset limit, as
  ``MakeFlavorQuotas(f).Resource(r, nominal, borrowingLimit, lendingLimit)`` writes it), Cohorts
  (:func:`cohort`) and LocalQueues (:func:`local_queue`);
- workloads (:func:`workload`): ``namespace/name``, the LocalQueue (``Queue``), the pod sets
  (``PodSets``/``Request``, with ``SetMinimumCount``), ``Priority``, ``Creation`` (seconds after
  Kueue's ``now``; unset is Kueue's zero time) and, for an admitted one, its ``Admission``
  (:func:`admission`: the ClusterQueue and, per pod set, resource → (flavor, amount)) reserved at
  ``now`` plus ``reserved_at`` seconds;

and Kueue's expectation after its single ``scheduler.schedule(ctx)`` call (:class:`Case`):

- ``want_assignments``: ``wantAssignments``, every workload holding quota in the cache afterwards
  (workloads preempted in the cycle still hold it: Kueue removes them once the eviction lands);
- ``want_preempted``: the workloads ``wantWorkloads`` shows with a ``Preempted`` condition, each
  with that condition's reason;
- ``want_left`` / ``want_inadmissible``: ``wantLeft`` / ``wantInadmissibleLeft``, the workloads
  still queued, per ClusterQueue;
- ``want_messages``: the message of the ``QuotaReserved=False`` condition ``wantWorkloads`` gives
  each workload that stayed pending (with ``UnadmittedWorkloadsObservability`` on, Kueue's fuller
  variant);
- ``want_skipped_preemptions``: ``wantSkippedPreemptions`` (the metric
  ``admission_cycle_preemption_skips``), kept as a fact; budcore has no such metric, so it is not
  compared (the decisions it summarises are: who preempts whom, who stays pending).

How a case is compared (:func:`differences`):

- assignments: the same workloads hold quota, each in the same ClusterQueue, with the same flavor
  for every resource of every pod set and the same total per (flavor, resource);
- preemptions: the same victims with the same reasons (budcore's ``PreemptionReason`` values are
  Kueue's reason strings);
- queued workloads: per ClusterQueue, ``wantLeft`` ∪ ``wantInadmissibleLeft`` against budcore's
  pending workloads. The split between the two is not compared: Kueue parks each workload (its
  ``inadmissibleWorkloads``), budcore parks whole ClusterQueues until their cohort changes
  (``PendingQueues.active``), so the split has no budcore counterpart; a workload Kueue never
  queues (its LocalQueue or ClusterQueue does not exist) must not be pending in budcore either;
- pending messages: by their facts, not their wording (:func:`kueue_facts`, :func:`budcore_facts`):
  for each flavor tried, the resource and how much more is needed ("N more needed", in both: budcore
  words these reasons as Kueue does), or the request and the maximum capacity when it can never fit,
  untolerated taints, resources the ClusterQueue does not cover, a namespace the selector rejects.
  Kueue's "Workload no longer fits after processing another workload" must be budcore's reason word
  for word (budcore's cycle keeps the assignment made at nomination as Kueue does, and says so when
  it no longer fits); and so must
  "Workload has overlapping preemption targets with another workload" (a preemptor budcore skips,
  ``DecisionStatus.SKIPPED``, as Kueue skips it).

What budcore cannot express is said where the builders meet budcore (:func:`budcore_config`,
:func:`job_of`): a ClusterQueue that names a missing ResourceFlavor and a LocalQueue that names a
missing ClusterQueue are configuration errors in budcore (``QueueConfig.build``), so they are kept
out of its configuration and their LocalQueues do not exist there (the driver checks that budcore
refuses exactly those); ``namespaceSelector.matchExpressions`` ``dep In (x)`` is given to budcore as
the same expression (``ClusterQueue.namespace_match_expressions``); ``SetMinimumCount`` (partial
admission) is ``PodSet.min_count``, dropped where a case turns Kueue's ``PartialAdmission`` gate off.

The driver uses only budcore's public API: :class:`QueueConfig`, :class:`Scheduler` with an
:class:`AdmissionPolicy` (``fair_sharing`` for Kueue's ``enableFairSharing``, the namespaces'
labels), admitted workloads put straight into the public ``Scheduler.usage`` and
``Scheduler.admitted`` (``Scheduler.admit_directly`` needs the workload pending in a LocalQueue
first, and several of Kueue's admitted workloads name none), pending ones through
``Scheduler.submit`` with Kueue's priority and creation time, then one ``Scheduler.cycle``. Every
admitted workload gets a :class:`VictimInfo` saying it is neither critical nor protected: Kueue
knows no such guard. budcore's default preemption budget (10 per hour) is left as it is: no case
preempts more than three workloads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pydantic
import pytest

from budcore.domain.errors import NotFoundError, ValidationError, ValidationErrors
from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import Job, PodSet, ResourceRequest
from budcore.domain.quantity import parse_quantity
from budcore.domain.resources import ResourceVector
from budcore.ports.preemption_cost import VictimInfo
from budcore.scheduling import (
    AdmissionPolicy,
    AdmittedWorkload,
    ClusterQueue,
    ClusterQueuePreemption,
    Cohort,
    CycleResult,
    FairSharing,
    FlavorFungibility,
    FlavorQuotas,
    FungibilityAction,
    LocalQueue,
    QueueConfig,
    QueueingStrategy,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
    Scheduler,
)
from budcore.scheduling.preemption import DecisionStatus
from budcore.scheduling.queues import (
    BorrowWithinCohort,
    BorrowWithinCohortPolicy,
    LabelSelectorRequirement,
    ReclaimWithinCohort,
    WithinClusterQueue,
)

CPU = "cpu"
GPU = "example.com/gpu"

# Kueue's ``now`` (``time.Now().Truncate(time.Second)`` on a fake clock): any fixed instant will
# do, every time in a case is an offset from it.
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# A workload without ``Creation`` has Kueue's zero ``metav1.Time`` as its creation timestamp.
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)

# kueue.PreemptionPolicy values
NEVER = "Never"
LOWER_PRIORITY = "LowerPriority"
LOWER_OR_NEWER_EQUAL_PRIORITY = "LowerOrNewerEqualPriority"
ANY = "Any"

# Kueue's preemption reasons (the Preempted condition's reason)
IN_CLUSTER_QUEUE = "InClusterQueue"
IN_COHORT_RECLAMATION = "InCohortReclamation"
IN_COHORT_FAIR_SHARING = "InCohortFairSharing"
IN_COHORT_RECLAIM_WHILE_BORROWING = "InCohortReclaimWhileBorrowing"

# flavorFungibility values
MAY_STOP_SEARCH = "MayStopSearch"
TRY_NEXT_FLAVOR = "TryNextFlavor"

NO_LONGER_FITS = "Workload no longer fits after processing another workload"
OVERLAPPING_TARGETS = "Workload has overlapping preemption targets with another workload"

# The namespaces ``runScheduleTestCases`` creates, with their labels.
NAMESPACES: Mapping[str, Mapping[str, str]] = {
    "default": {},
    "eng-alpha": {"dep": "eng"},
    "eng-beta": {"dep": "eng"},
    "eng-gamma": {"dep": "eng"},
    "sales": {"dep": "sales"},
    "lend": {"dep": "lend"},
}

Quota = str | tuple[str, str | None] | tuple[str, str | None, str | None]
Group = Mapping[str, Mapping[str, Quota]]  # flavor -> resource -> quota, flavors in order


def q(value: str) -> int:
    """A Kubernetes quantity in budcore's milli-units."""
    return parse_quantity(value)


# --- queues ------------------------------------------------------------------------------------


def flavor(name: str, *taints: tuple[str, str, str]) -> ResourceFlavor:
    """``MakeResourceFlavor(name).Taint(corev1.Taint{Key, Value, Effect})...``."""
    return ResourceFlavor(
        name=name,
        node_taints=tuple({"key": k, "value": v, "effect": e} for k, v, e in taints),
    )


def _quota(resource: str, spec: Quota) -> ResourceQuota:
    nominal, borrowing, lending = (*((spec,) if isinstance(spec, str) else spec), None, None)[:3]
    return ResourceQuota(
        name=resource,
        nominal_quota=q(nominal),
        borrowing_limit=None if borrowing is None else q(borrowing),
        lending_limit=None if lending is None else q(lending),
    )


def _groups(groups: Sequence[Group]) -> tuple[ResourceGroup, ...]:
    out = []
    for group in groups:
        covered: list[str] = []
        for resources in group.values():
            covered.extend(r for r in resources if r not in covered)
        out.append(
            ResourceGroup(
                covered_resources=tuple(covered),
                flavors=tuple(
                    FlavorQuotas(name=f, resources=tuple(_quota(r, resources[r]) for r in covered))
                    for f, resources in group.items()
                ),
            )
        )
    return tuple(out)


def weight(value: str) -> FairSharing:
    """``FairWeight(resource.MustParse(value))`` (budcore keeps weights in milli-units)."""
    return FairSharing(weight=q(value))


@dataclass(frozen=True)
class KueueClusterQueue:
    """A ClusterQueue as Kueue's test writes it; :meth:`to_budcore` is what budcore gets."""

    name: str
    groups: tuple[Group, ...]
    cohort: str | None = None
    # ``NamespaceSelector`` ``{matchExpressions: [{key: dep, operator: In, values: [x]}]}`` as the
    # labels it requires; None: ``MakeClusterQueue``'s select-all ``&metav1.LabelSelector{}``.
    namespace: Mapping[str, str] | None = None
    strict_fifo: bool = False  # QueueingStrategy(StrictFIFO); the wrapper's default is BestEffortFIFO
    within: str = NEVER
    reclaim: str = NEVER
    borrow_within: str = NEVER
    borrow_max_priority: int | None = None
    when_can_borrow: str = MAY_STOP_SEARCH
    when_can_preempt: str = TRY_NEXT_FLAVOR
    preference: str | None = None  # flavorFungibility.preference
    fair_weight: str | None = None

    def to_budcore(self) -> ClusterQueue:
        return ClusterQueue(
            name=self.name,
            cohort=self.cohort,
            resource_groups=_groups(self.groups),
            queueing_strategy=(
                QueueingStrategy.STRICT_FIFO if self.strict_fifo else QueueingStrategy.BEST_EFFORT_FIFO
            ),
            preemption=ClusterQueuePreemption(
                within_cluster_queue=WithinClusterQueue(self.within),
                reclaim_within_cohort=ReclaimWithinCohort(self.reclaim),
                borrow_within_cohort=BorrowWithinCohort(
                    policy=BorrowWithinCohortPolicy(self.borrow_within),
                    max_priority_threshold=self.borrow_max_priority,
                ),
            ),
            flavor_fungibility=FlavorFungibility(
                when_can_borrow=FungibilityAction(self.when_can_borrow),
                when_can_preempt=FungibilityAction(self.when_can_preempt),
                preference=self.preference,
            ),
            fair_sharing=weight(self.fair_weight) if self.fair_weight is not None else FairSharing(),
            namespace_match_expressions=tuple(
                LabelSelectorRequirement(key=key, operator="In", values=(value,))
                for key, value in (self.namespace or {}).items()
            ),
        )


def cluster_queue(name: str, *groups: Group, **spec: object) -> KueueClusterQueue:
    """``MakeClusterQueue(name).ResourceGroup(...)...`` (keywords: the fields of
    :class:`KueueClusterQueue`)."""
    return KueueClusterQueue(name, groups, **spec)  # type: ignore[arg-type]


def cohort(name: str, *groups: Group, parent: str | None = None, fair_weight: str | None = None) -> Cohort:
    """``MakeCohort(name).Parent(parent).ResourceGroup(...).FairWeight(...)``."""
    return Cohort(
        name=name,
        parent=parent,
        resource_groups=_groups(groups),
        fair_sharing=weight(fair_weight) if fair_weight is not None else FairSharing(),
    )


@dataclass(frozen=True)
class KueueLocalQueue:
    name: str
    namespace: str
    cluster_queue: str
    fair_weight: str | None = None


def local_queue(
    name: str, namespace: str, cluster_queue: str, fair_weight: str | None = None
) -> KueueLocalQueue:
    """``MakeLocalQueue(name, namespace).ClusterQueue(cluster_queue)``."""
    return KueueLocalQueue(name, namespace, cluster_queue, fair_weight)


# --- workloads ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KueuePodSet:
    """``MakePodSet(name, count).Request(...).SetMinimumCount(min_count)``: requests per pod."""

    name: str
    count: int
    requests: Mapping[str, str]
    min_count: int | None = None  # partial admission: PodSet.min_count


def pod_set(name: str, count: int, requests: Mapping[str, str], min_count: int | None = None) -> KueuePodSet:
    return KueuePodSet(name, count, requests, min_count)


# A pod set assignment: resource -> (flavor, amount of the whole pod set)
PodSetAssignment = Mapping[str, tuple[str, str]]


@dataclass(frozen=True)
class Admission:
    """``MakeAdmission(cq).PodSets(MakePodSetAssignment(ps).Assignment(r, flavor, amount)...)``."""

    cluster_queue: str
    pod_sets: Mapping[str, PodSetAssignment]

    @property
    def flavors(self) -> dict[str, dict[str, str]]:
        return {ps: {r: f for r, (f, _) in resources.items()} for ps, resources in self.pod_sets.items()}

    @property
    def usage(self) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for resources in self.pod_sets.values():
            for resource, (fl, amount) in resources.items():
                out[(fl, resource)] = out.get((fl, resource), 0) + q(amount)
        return out


def admission(
    cluster_queue: str, pod_sets: Mapping[str, PodSetAssignment] | None = None, /, **main: tuple[str, str]
) -> Admission:
    """An admission; keywords are the resources of the single pod set ``main``:
    ``admission("cq", cpu=("on-demand", "50"))``."""
    if pod_sets is None:
        pod_sets = {"main": main}
    return Admission(cluster_queue, pod_sets)


@dataclass(frozen=True)
class Workload:
    """A Kueue Workload of a case; ``key`` is ``namespace/name`` (Kueue's workload.Reference)."""

    key: str
    queue: str | None
    pod_sets: tuple[KueuePodSet, ...]
    priority: int = 0
    created: float | None = None  # Creation(now + created seconds); None: unset
    admission: Admission | None = None
    reserved_at: float = 0.0  # ReserveQuotaAt(..., now + reserved_at seconds)

    @property
    def namespace(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split("/", 1)[1]


def workload(
    key: str,
    queue: str | None = None,
    *,
    requests: Mapping[str, str] | None = None,
    pod_sets: Sequence[KueuePodSet] | None = None,
    priority: int = 0,
    created: float | None = None,
    admitted: Admission | None = None,
    reserved_at: float = 0.0,
) -> Workload:
    """``MakeWorkload(name, ns).Queue(queue).Request(...)`` (one pod set ``main`` of one pod) or
    ``.PodSets(...)``; ``admitted``: ``ReserveQuotaAt(admission, now + reserved_at)``."""
    if pod_sets is None:
        pod_sets = (KueuePodSet("main", 1, dict(requests or {})),)
    return Workload(key, queue, tuple(pod_sets), priority, created, admitted, reserved_at)


@dataclass(frozen=True)
class Case:
    """One table case: the additions to the test function's fixtures, and Kueue's expectation."""

    workloads: tuple[Workload, ...]
    want_assignments: Mapping[str, Admission] = field(default_factory=dict)
    want_preempted: Mapping[str, str] = field(default_factory=dict)
    want_left: Mapping[str, Sequence[str]] = field(default_factory=dict)
    want_inadmissible: Mapping[str, Sequence[str]] = field(default_factory=dict)
    want_messages: Mapping[str, str] = field(default_factory=dict)
    want_skipped_preemptions: Mapping[str, int] = field(default_factory=dict)  # not compared
    cluster_queues: tuple[KueueClusterQueue, ...] = ()  # additionalClusterQueues
    local_queues: tuple[KueueLocalQueue, ...] = ()  # additionalLocalQueues
    cohorts: tuple[Cohort, ...] = ()
    fair_sharing: bool = False  # enableFairSharing
    feature_gates: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Fixtures:
    """What a Kueue test function sets up for every case (``scheduleTestConfig``)."""

    flavors: tuple[ResourceFlavor, ...]
    cluster_queues: tuple[KueueClusterQueue, ...]
    local_queues: tuple[KueueLocalQueue, ...]


# --- the driver --------------------------------------------------------------------------------


def _at(offset: float) -> datetime:
    return NOW + timedelta(seconds=offset)


def budcore_config(fixtures: Fixtures, case: Case) -> QueueConfig:
    """The case's objects as a budcore configuration.

    Kueue accepts a ClusterQueue naming a missing ResourceFlavor (it stays inactive) and a
    LocalQueue naming a missing ClusterQueue (its workloads are never queued); budcore's
    ``QueueConfig.build`` refuses both. The driver checks that budcore refuses exactly those
    objects, then leaves them out.
    """
    flavors = {f.name: f for f in fixtures.flavors}
    cqs = [c.to_budcore() for c in (*fixtures.cluster_queues, *case.cluster_queues)]
    lqs = [
        LocalQueue(
            name=lq.name,
            namespace=lq.namespace,
            cluster_queue=lq.cluster_queue,
            fair_sharing=weight(lq.fair_weight) if lq.fair_weight is not None else FairSharing(),
        )
        for lq in (*fixtures.local_queues, *case.local_queues)
    ]
    dangling_cqs = {
        c.name for c in cqs for g in c.resource_groups for fq in g.flavors if fq.name not in flavors
    }
    known_cqs = {c.name for c in cqs} - dangling_cqs
    dangling_lqs = {lq.key for lq in lqs if lq.cluster_queue not in known_cqs}
    if dangling_cqs or dangling_lqs:
        with pytest.raises(ValidationErrors) as refused:
            QueueConfig.build(
                flavors=flavors.values(), cluster_queues=cqs, cohorts=case.cohorts, local_queues=lqs
            )
        text = str(refused.value)
        for name in dangling_cqs:
            assert f"ClusterQueue {name!r} references ResourceFlavor" in text, text
        for ns, name in dangling_lqs:
            assert f"LocalQueue {ns}/{name} references ClusterQueue" in text or any(
                lq.key == (ns, name) and lq.cluster_queue in dangling_cqs for lq in lqs
            ), text
    return QueueConfig.build(
        flavors=flavors.values(),
        cluster_queues=[c for c in cqs if c.name not in dangling_cqs],
        cohorts=case.cohorts,
        local_queues=[lq for lq in lqs if lq.key not in dangling_lqs],
    )


def job_of(wl: Workload, partial_admission: bool = True) -> Job:
    """The workload as a budcore job: ``SetMinimumCount`` is ``PodSet.min_count``, unless the case
    turns Kueue's ``PartialAdmission`` gate off (on by default: Beta), which ignores it."""
    at = _at(wl.created) if wl.created is not None else NOW
    return Job(
        id=JobId(wl.key),
        name=wl.name,
        tenant=TenantId(wl.namespace),
        local_queue=wl.queue,
        request=ResourceRequest(
            pod_sets=tuple(
                PodSet(
                    name=ps.name,
                    count=ps.count,
                    resources=ResourceVector.of(dict(ps.requests)),
                    min_count=ps.min_count if partial_admission else None,
                )
                for ps in wl.pod_sets
            )
        ),
        created_at=at,
        updated_at=at,
    )


def _timestamp(wl: Workload) -> float:
    """Kueue's queue-ordering timestamp: the creation time (Kueue's zero time when unset)."""
    return (_at(wl.created) if wl.created is not None else ZERO_TIME).timestamp()


@dataclass
class Outcome:
    """What budcore did with a case: everything :func:`differences` compares."""

    scheduler: Scheduler
    result: CycleResult
    not_queued: dict[str, str]  # workload -> why budcore refused to queue it


def run(fixtures: Fixtures, case: Case, config: QueueConfig | None = None) -> Outcome:
    """One budcore admission cycle on the case (``config``: its :func:`budcore_config`)."""
    if config is None:
        config = budcore_config(fixtures, case)
    policy = AdmissionPolicy(fair_sharing=case.fair_sharing, namespace_labels=NAMESPACES)
    scheduler = Scheduler(config, policy)
    infos: dict[str, VictimInfo] = {}
    for wl in case.workloads:
        adm = wl.admission
        if adm is None:
            continue
        at = _at(wl.reserved_at)
        usage = adm.usage
        scheduler.usage.add(adm.cluster_queue, usage)
        scheduler.admitted[wl.key] = AdmittedWorkload(
            job_id=JobId(wl.key),
            tenant=TenantId(wl.namespace),
            cluster_queue=adm.cluster_queue,
            local_queue=(wl.namespace, wl.queue or ""),
            usage=usage,
            flavors=adm.flavors,
            priority=wl.priority,
            admitted_at=at,
            timestamp=_timestamp(wl),
        )
        infos[wl.key] = VictimInfo(job_id=JobId(wl.key), started_at=at)
    not_queued: dict[str, str] = {}
    for wl in case.workloads:
        if wl.admission is not None:
            continue
        try:
            partial = case.feature_gates.get("PartialAdmission", True)
            scheduler.submit(job_of(wl, partial), priority=wl.priority, timestamp=_timestamp(wl))
        except NotFoundError as exc:
            not_queued[wl.key] = str(exc)
    result = scheduler.cycle(NOW, victim_info=infos)
    return Outcome(scheduler, result, not_queued)


# --- pending messages as facts -----------------------------------------------------------------

Fact = tuple[object, ...]

_K_SHORT = re.compile(r"insufficient unused quota for (\S+) in flavor ([^,.\s]+), (\S+) more needed")
_K_MAX = re.compile(
    r"insufficient quota for (\S+) in flavor ([^,\s]+), previously considered podsets requests "
    r"\((\S+)\) \+ current podset request \((\S+)\) > maximum capacity \((\S+)\)"
)
_K_TAINT = re.compile(r"untolerated taint \{[^}]*\} in flavor ([^,.\s]+)")
_K_UNAVAILABLE = re.compile(r"resource (\S+) unavailable in ClusterQueue")
_K_NAMESPACE = "workload namespace doesn't match ClusterQueue selector"

_B_NAMESPACE = re.compile(r"namespace \S+ does not match the namespaceSelector")


def kueue_facts(message: str) -> frozenset[Fact]:
    """The facts of a Kueue pending message (see the module docstring)."""
    if message == NO_LONGER_FITS:
        return frozenset({("no longer fits",)})
    if message == OVERLAPPING_TARGETS:
        return frozenset({("overlapping targets",)})
    facts: set[Fact] = set()
    for resource, fl, more in _K_SHORT.findall(message):
        facts.add(("short", fl, resource, q(more)))
    for resource, fl, before, current, maximum in _K_MAX.findall(message):
        facts.add(("max", fl, resource, q(before) + q(current), q(maximum)))
    for fl in _K_TAINT.findall(message):
        facts.add(("taint", fl))
    for resource in _K_UNAVAILABLE.findall(message):
        facts.add(("unavailable", resource))
    if _K_NAMESPACE in message:
        facts.add(("namespace",))
    assert facts, f"no fact recognised in Kueue's message {message!r}"
    return frozenset(facts)


def budcore_facts(reason: str) -> frozenset[Fact]:
    """The same facts from budcore's pending reason (budcore words the flavor assigner's reasons as
    Kueue does, "no longer fits" included; its namespace reason is its own)."""
    if reason == NO_LONGER_FITS:
        return frozenset({("no longer fits",)})
    if reason == OVERLAPPING_TARGETS:
        return frozenset({("overlapping targets",)})
    facts: set[Fact] = set()
    for resource, fl, more in _K_SHORT.findall(reason):
        facts.add(("short", fl, resource, q(more)))
    for resource, fl, before, current, maximum in _K_MAX.findall(reason):
        facts.add(("max", fl, resource, q(before) + q(current), q(maximum)))
    for fl in _K_TAINT.findall(reason):
        facts.add(("taint", fl))
    for resource in _K_UNAVAILABLE.findall(reason):
        facts.add(("unavailable", resource))
    if _B_NAMESPACE.search(reason):
        facts.add(("namespace",))
    return frozenset(facts)


def _facts_match(kueue: frozenset[Fact], budcore: frozenset[Fact], reason: str | None) -> bool:
    return kueue == budcore


# --- comparison --------------------------------------------------------------------------------


def _assignment_of(flavors: Mapping[str, Mapping[str, str]], usage: Mapping[tuple[str, str], int]) -> tuple:
    return (
        {ps: dict(resources) for ps, resources in flavors.items()},
        {fr: amount for fr, amount in usage.items() if amount},
    )


def differences(fixtures: Fixtures, case: Case) -> list[str]:
    """Every way budcore's cycle differs from Kueue's expectation (empty: it conforms)."""
    try:
        config = budcore_config(fixtures, case)
    except (pydantic.ValidationError, ValidationError) as exc:
        text = " ".join(line.strip() for line in str(exc).strip().splitlines())
        return [f"budcore refuses the configuration: {text}"]
    out = run(fixtures, case, config)
    s, result = out.scheduler, out.result
    diffs: list[str] = []

    # Assignments: every workload holding quota after the cycle.
    got_assign = {
        key: (a.cluster_queue, *_assignment_of(a.flavors, a.usage)) for key, a in s.admitted.items()
    }
    want_assign = {
        key: (a.cluster_queue, *_assignment_of(a.flavors, a.usage))
        for key, a in case.want_assignments.items()
    }
    for key in sorted(set(got_assign) | set(want_assign)):
        got, want = got_assign.get(key), want_assign.get(key)
        if got != want:
            diffs.append(f"assignment of {key}: Kueue {_show(want)}, budcore {_show(got)}")

    # Preemptions: victims and reasons.
    got_preempted: dict[str, str] = {}
    for decision in result.preemptions:
        if decision.status is DecisionStatus.PREEMPT:
            for victim in decision.victims:
                got_preempted[str(victim.job_id)] = str(victim.reason)
    if got_preempted != dict(case.want_preempted):
        want = dict(sorted(case.want_preempted.items()))
        diffs.append(f"preempted: Kueue {want}, budcore {dict(sorted(got_preempted.items()))}")

    # Queued workloads, per ClusterQueue.
    want_queued: dict[str, set[str]] = {}
    for table in (case.want_left, case.want_inadmissible):
        for cq, keys in table.items():
            want_queued.setdefault(cq, set()).update(keys)
    got_queued: dict[str, set[str]] = {}
    for cq, queue in s.pending.queues().items():
        if queue.entries:
            got_queued[cq] = set(queue.entries)
    if got_queued != {cq: keys for cq, keys in want_queued.items() if keys}:
        diffs.append(
            f"queued: Kueue {_sorted_map(want_queued)}, budcore {_sorted_map(got_queued)}"
            + (f" (not queued by budcore: {out.not_queued})" if out.not_queued else "")
        )

    # Pending messages, by their facts.
    reasons: dict[str, str] = {d.job_id: d.reason for d in result.pending}
    # A preemptor's message is its flavor assignment's, unless the cycle skipped it (Kueue's
    # "overlapping preemption targets" / "no longer fits"): then the skip's.
    for needs, decision in zip(result.needs_preemption, result.preemptions, strict=True):
        skipped = decision.status is DecisionStatus.SKIPPED
        reasons[needs.job_id] = decision.reason if skipped else needs.reason
    for key, message in sorted(case.want_messages.items()):
        kueue = kueue_facts(message)
        got_reason = reasons.get(key)
        budcore = budcore_facts(got_reason or "")
        if not _facts_match(kueue, budcore, got_reason):
            shown = repr(got_reason) if got_reason is not None else "none (not left pending by this cycle)"
            diffs.append(f"message of {key}: Kueue {message!r}, budcore {shown}")
    return diffs


def _show(value: object) -> str:
    if value is None:
        return "not admitted"
    cq, flavors, usage = value  # type: ignore[misc]
    amounts = ", ".join(f"{r}@{f}={a / 1000:g}" for (f, r), a in sorted(usage.items()))
    return f"{cq} {flavors} ({amounts})"


def _sorted_map(m: Mapping[str, set[str]]) -> dict[str, list[str]]:
    return {k: sorted(v) for k, v in sorted(m.items()) if v}


def check(fixtures: Fixtures, case: Case) -> None:
    diffs = differences(fixtures, case)
    assert not diffs, "\n".join(diffs)


def params(
    names: Sequence[str],
    cases: Mapping[str, Case],
    out_of_scope: Mapping[str, str],
    differences_: Mapping[str, str],
) -> list[object]:
    """One pytest param per Kueue case, in the table's order, id = the case name: out-of-scope
    cases skip with their reason, known differences are strict xfails."""
    assert len(set(names)) == len(names), "a case name is listed twice"
    assert set(cases) | set(out_of_scope) == set(names), (
        f"untranscribed: {sorted(set(names) - set(cases) - set(out_of_scope))}; "
        f"unknown: {sorted((set(cases) | set(out_of_scope)) - set(names))}"
    )
    assert not set(cases) & set(out_of_scope), sorted(set(cases) & set(out_of_scope))
    assert set(differences_) <= set(cases), sorted(set(differences_) - set(cases))
    out: list[object] = []
    for name in names:
        if name in out_of_scope:
            out.append(pytest.param(name, marks=pytest.mark.skip(reason=out_of_scope[name]), id=name))
        elif name in differences_:
            mark = pytest.mark.xfail(strict=True, reason=differences_[name])
            out.append(pytest.param(name, marks=mark, id=name))
        else:
            out.append(pytest.param(name, id=name))
    return out
