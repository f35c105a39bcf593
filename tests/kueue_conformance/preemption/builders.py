"""Kueue's preemption table cases as data, and the one driver that puts them to budcore.

The test modules beside this one transcribe ``TestPreemption``
(``pkg/scheduler/preemption/preemption_test.go``) and ``TestFairPreemptions``
(``pkg/scheduler/preemption/preemption_fair_test.go``) of kubernetes-sigs/kueue at commit
ff69552e79ad21652c36caa97038382e55625cf7 (Apache-2.0). Each case keeps Kueue's inputs as facts:

- ClusterQueues, Cohorts and ResourceFlavors, written with :func:`cluster_queue`,
  :func:`flavor_quotas` and :func:`cohort`, which read like Kueue's ``MakeClusterQueue``,
  ``MakeFlavorQuotas(...).Resource(name, nominal, borrowingLimit, lendingLimit)`` and
  ``MakeCohort`` (quantities are Kueue's strings; ``""`` is an unset limit, as in Kueue);
- admitted workloads (:class:`Admitted`): the ClusterQueue and the ``(flavor, resource) → amount``
  of their admission (``ReserveQuotaAt`` / ``SimpleReserveQuota``), their priority, when quota was
  reserved and (``Creation``) when they were created, both as offsets from Kueue's ``now``;
- the incoming workload (:class:`Incoming`): its ``targetCQ``, priority, creation time and pod sets,
  each with its count and, per resource, the request per pod and the flavor assignment Kueue's
  test hands ``GetTargets`` (flavor and mode, ``Fit`` or ``Preempt``);

and Kueue's expected result: the preempted workloads, each with the reason of its ``Preempted``
condition (``wantWorkloads`` / ``wantPreempted`` in ``TestPreemption``, ``wantPreempted`` in
``TestFairPreemptions``).

:func:`decide` drives budcore only through its public API: a :class:`QueueConfig` and a
:class:`QuotaTree`, a :class:`QuotaUsage` holding the admitted workloads' usage, an
:class:`AdmissionSnapshot`, a :class:`NeedsPreemption` for the incoming workload and
:func:`budcore.scheduling.preemption.find_victims` in ``kueue`` mode. Every admitted workload gets
a :class:`VictimInfo` saying it is neither critical nor protected, as Kueue knows no such guard.

``TestCandidatesOrdering`` (same file) compares candidates with Kueue's ``CandidatesOrdering``
directly, so its cases (:class:`Candidate`) go to :func:`candidate_order`, which puts them to
budcore's counterpart, ``sort_candidates``, the way ``find_victims`` orders its candidates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from budcore.domain.ids import JobId, TenantId
from budcore.domain.quantity import parse_quantity
from budcore.ports.preemption_cost import VictimInfo
from budcore.scheduling import (
    AdmissionSnapshot,
    AdmittedWorkload,
    ClusterQueue,
    ClusterQueuePreemption,
    Cohort,
    FairSharing,
    FlavorFungibility,
    FlavorQuotas,
    LocalQueue,
    NeedsPreemption,
    QueueConfig,
    QuotaTree,
    QuotaUsage,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
)
from budcore.scheduling.preemption import (
    FairSharingStrategy,
    PreemptionDecision,
    PreemptionPolicy,
    find_victims,
)
from budcore.scheduling.preemption.common import PreemptionContext, sort_candidates
from budcore.scheduling.queues import (
    BorrowWithinCohort,
    BorrowWithinCohortPolicy,
    ReclaimWithinCohort,
    WithinClusterQueue,
)

CPU, MEMORY = "cpu", "memory"

# Kueue's ``now`` (``time.Now()`` in both test functions): any fixed instant will do, every time
# in a case is an offset from it.
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# flavorassigner.FlavorAssignmentMode
FIT, PREEMPT = "Fit", "Preempt"

# Kueue's preemption reasons (kueue.In*Reason), as the Preempted condition spells them.
IN_CLUSTER_QUEUE = "InClusterQueue"
IN_COHORT_RECLAMATION = "InCohortReclamation"
IN_COHORT_FAIR_SHARING = "InCohortFairSharing"
IN_COHORT_RECLAIM_WHILE_BORROWING = "InCohortReclaimWhileBorrowing"

# kueue.PreemptionPolicy values (ClusterQueuePreemption fields)
NEVER = "Never"
LOWER_PRIORITY = "LowerPriority"
LOWER_OR_NEWER_EQUAL_PRIORITY = "LowerOrNewerEqualPriority"
ANY = "Any"

FR = tuple[str, str]  # (flavor, resource)


def q(value: str) -> int:
    """A Kueue quantity string in budcore's milli-units."""
    return parse_quantity(value)


# --- queues ------------------------------------------------------------------------------------


def flavor_quotas(flavor: str, **resources: str | tuple[str, ...]) -> FlavorQuotas:
    """``MakeFlavorQuotas(flavor).Resource(name, nominal[, borrowingLimit[, lendingLimit]])``.

    Each keyword is a resource: a nominal quota, or a tuple (nominal, borrowingLimit,
    lendingLimit) where ``""`` leaves a limit unset, as in Kueue's wrapper.
    """
    quotas = []
    for name, spec in resources.items():
        nominal, borrowing, lending = (*((spec,) if isinstance(spec, str) else spec), "", "")[:3]
        quotas.append(
            ResourceQuota(
                name=name,
                nominal_quota=q(nominal),
                borrowing_limit=q(borrowing) if borrowing else None,
                lending_limit=q(lending) if lending else None,
            )
        )
    return FlavorQuotas(name=flavor, resources=tuple(quotas))


def resource_group(*flavors: FlavorQuotas) -> ResourceGroup:
    """``ResourceGroup(flavors...)``: the covered resources are those the first flavor lists."""
    return ResourceGroup(covered_resources=tuple(r.name for r in flavors[0].resources), flavors=flavors)


def weight(value: str) -> FairSharing:
    """``FairWeight(resource.MustParse(value))`` (budcore keeps weights in milli-units)."""
    return FairSharing(weight=q(value))


def cluster_queue(
    name: str,
    *groups: ResourceGroup,
    cohort: str | None = None,
    within: str = NEVER,
    reclaim: str = NEVER,
    borrow_threshold: int | None = None,
    fair_weight: str = "1",
    fungibility: FlavorFungibility | None = None,
) -> ClusterQueue:
    """``MakeClusterQueue(name).Cohort(cohort).ResourceGroup(...).Preemption(...).FairWeight(...)
    .FlavorFungibility(...)``.

    ``borrow_threshold`` set: ``BorrowWithinCohort{Policy: LowerPriority, MaxPriorityThreshold}``;
    None: no BorrowWithinCohort (Never).
    """
    borrow = (
        BorrowWithinCohort()
        if borrow_threshold is None
        else BorrowWithinCohort(
            policy=BorrowWithinCohortPolicy.LOWER_PRIORITY, max_priority_threshold=borrow_threshold
        )
    )
    return ClusterQueue(
        name=name,
        cohort=cohort,
        resource_groups=groups,
        preemption=ClusterQueuePreemption(
            within_cluster_queue=WithinClusterQueue(within),
            reclaim_within_cohort=ReclaimWithinCohort(reclaim),
            borrow_within_cohort=borrow,
        ),
        fair_sharing=weight(fair_weight),
        flavor_fungibility=fungibility or FlavorFungibility(),
    )


def cohort(name: str, *groups: ResourceGroup, parent: str | None = None, fair_weight: str = "1") -> Cohort:
    """``MakeCohort(name).Parent(parent).ResourceGroup(...).FairWeight(...)``."""
    return Cohort(name=name, parent=parent, resource_groups=groups, fair_sharing=weight(fair_weight))


# --- workloads ---------------------------------------------------------------------------------


def on(flavor: str, **amounts: str) -> dict[FR, str]:
    """Resources assigned to one flavor: ``on("default", cpu="2")`` is ``{("default", "cpu"): "2"}``."""
    return {(flavor, resource): amount for resource, amount in amounts.items()}


@dataclass(frozen=True)
class Admitted:
    """An admitted workload: its admission's ClusterQueue and per (flavor, resource) usage.

    ``reserved_at``: the QuotaReserved condition's time, in seconds after ``now``;
    ``created_at``: its creation time in seconds after ``now`` (None: not set by the case).
    """

    name: str
    cluster_queue: str
    usage: Mapping[FR, str]
    priority: int = 0
    reserved_at: float = 0.0
    created_at: float | None = None


def simple(name: str, cluster_queue: str, flavor: str, *, priority: int = 0, **requests: str) -> Admitted:
    """``MakeWorkload(name).Priority(p).Request(...).SimpleReserveQuota(cq, flavor, now)``: every
    request (one pod) assigned to ``flavor``."""
    return Admitted(name, cluster_queue, on(flavor, **requests), priority)


@dataclass(frozen=True)
class PodSet:
    """One pod set of the incoming workload: per resource, (request per pod, flavor, mode)."""

    name: str
    count: int
    resources: Mapping[str, tuple[str, str, str]]


@dataclass(frozen=True)
class Incoming:
    """The incoming workload: ``targetCQ``, priority, creation (seconds after ``now``), pod sets
    with the flavor assignment the case passes to ``GetTargets``."""

    cluster_queue: str
    pod_sets: tuple[PodSet, ...]
    priority: int = 0
    created_at: float | None = None
    name: str = "in"

    @property
    def usage(self) -> dict[FR, int]:
        out: dict[FR, int] = {}
        for ps in self.pod_sets:
            for resource, (request, flavor, _mode) in ps.resources.items():
                fr = (flavor, resource)
                out[fr] = out.get(fr, 0) + q(request) * ps.count
        return out

    @property
    def preempt_mode(self) -> frozenset[FR]:
        """The flavor-resources the assignment marks ``Preempt`` (Kueue's frsNeedPreemption)."""
        return frozenset(
            (flavor, resource)
            for ps in self.pod_sets
            for resource, (_request, flavor, mode) in ps.resources.items()
            if mode == PREEMPT
        )


def incoming(
    cluster_queue: str,
    *,
    priority: int = 0,
    created_at: float | None = None,
    name: str = "in",
    **resources: tuple[str, str, str],
) -> Incoming:
    """A single-pod-set incoming workload (``singlePodSetAssignment``): per resource, (request,
    flavor, mode)."""
    return Incoming(cluster_queue, (PodSet("main", 1, resources),), priority, created_at, name)


@dataclass(frozen=True)
class KueueCase:
    """One table case: Kueue's inputs and its expected preemptions (workload → reason)."""

    cluster_queues: tuple[ClusterQueue, ...]
    admitted: tuple[Admitted, ...]
    incoming: Incoming
    want: Mapping[str, str]
    cohorts: tuple[Cohort, ...] = ()
    flavors: tuple[str, ...] = ("default",)
    # TestFairPreemptions' ``strategies`` (None: Kueue's default, both in order)
    strategies: tuple[FairSharingStrategy, ...] | None = None
    fair_sharing: bool = False


# --- the driver --------------------------------------------------------------------------------


def _at(offset: float | None) -> datetime:
    return NOW + timedelta(seconds=offset or 0.0)


def snapshot_of(case: KueueCase) -> AdmissionSnapshot:
    """The case's queues and admitted workloads as a budcore admission snapshot."""
    config = QueueConfig.build(
        flavors=[ResourceFlavor(name=f) for f in case.flavors],
        cluster_queues=case.cluster_queues,
        cohorts=case.cohorts,
    )
    tree = QuotaTree(config)
    usage = QuotaUsage(tree)
    admitted: dict[str, AdmittedWorkload] = {}
    for wl in case.admitted:
        amounts = {fr: q(v) for fr, v in wl.usage.items()}
        usage.add(wl.cluster_queue, amounts)
        flavors: dict[str, str] = {resource: flavor for flavor, resource in amounts}
        admitted[wl.name] = AdmittedWorkload(
            job_id=JobId(wl.name),
            tenant=TenantId(""),
            cluster_queue=wl.cluster_queue,
            local_queue=("", ""),
            usage=amounts,
            flavors={"main": flavors},
            priority=wl.priority,
            admitted_at=_at(wl.reserved_at),
            timestamp=_at(wl.created_at).timestamp(),
        )
    return AdmissionSnapshot(tree=tree, usage=usage, admitted=admitted)


def needs_of(case: KueueCase) -> NeedsPreemption:
    wl = case.incoming
    return NeedsPreemption(
        job_id=JobId(wl.name),
        tenant=TenantId(""),
        cluster_queue=wl.cluster_queue,
        flavors={
            ps.name: {resource: flavor for resource, (_r, flavor, _m) in ps.resources.items()}
            for ps in wl.pod_sets
        },
        usage=wl.usage,
        borrows=False,
        priority=wl.priority,
        why="Kueue table case",
        timestamp=_at(wl.created_at).timestamp(),
    )


def policy_of(case: KueueCase) -> PreemptionPolicy:
    if not case.fair_sharing:
        return PreemptionPolicy()
    if case.strategies is None:
        return PreemptionPolicy(fair_sharing=True)
    return PreemptionPolicy(fair_sharing=True, strategies=case.strategies)


def decide(case: KueueCase) -> PreemptionDecision:
    """budcore's decision for the case (asserting, as Kueue's test does, that the snapshot is
    left as it was)."""
    snap = snapshot_of(case)
    before = snap.usage.flatten()
    needs = needs_of(case)
    infos = {
        wl.name: VictimInfo(job_id=JobId(wl.name), started_at=_at(wl.reserved_at)) for wl in case.admitted
    }
    decision = find_victims(
        snap,
        needs,
        now=NOW,
        policy=policy_of(case),
        victim_info=infos,
        preemptor_timestamp=needs.timestamp,
    )
    assert snap.usage.flatten() == before, "the snapshot was modified"
    return decision


def preempted(decision: PreemptionDecision) -> dict[str, str]:
    """What Kueue's test compares: each preempted workload with its reason."""
    return {str(v.job_id): str(v.reason) for v in decision.victims}


def check(case: KueueCase) -> None:
    decision = decide(case)
    got = preempted(decision)
    assert got == dict(case.want), decision.explain()
    assert decision.possible == bool(case.want)


def params(
    cases: Mapping[str, KueueCase], out_of_scope: Mapping[str, str], differences: Mapping[str, str]
) -> list[object]:
    """One pytest param per Kueue case, id = the case name: the transcribed cases in the table's
    order (known differences as strict xfails), then the out-of-scope ones, skipped with their
    reason."""
    assert not set(differences) - set(cases), "a difference names a case not transcribed"
    assert not set(out_of_scope) & set(differences), "a case is both out of scope and a difference"
    assert not set(out_of_scope) & set(cases), "an out-of-scope case is transcribed"
    out: list[object] = []
    for name in [*cases, *out_of_scope]:
        if name in out_of_scope:
            out.append(pytest.param(name, marks=pytest.mark.skip(reason=out_of_scope[name]), id=name))
        elif name in differences:
            mark = pytest.mark.xfail(strict=True, raises=AssertionError, reason=differences[name])
            out.append(pytest.param(name, marks=mark, id=name))
        else:
            out.append(pytest.param(name, id=name))
    return out


# --- candidate ordering (TestCandidatesOrdering) -----------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A workload of ``TestCandidatesOrdering``: ``MakeWorkload(name, "").Queue(queue)
    .ReserveQuotaAt(MakeAdmission(cluster_queue), now + reserved_at).Priority(priority)``, plus the
    ``LocalQueueFSUsage`` the case sets on its ``Info`` (None: unset) and whether it carries the
    ``Evicted`` condition. ``cluster_queue`` ``""``: no admission (Kueue's ``Info.ClusterQueue`` is
    then empty, and its quota-reservation time is ``now``)."""

    name: str
    cluster_queue: str = ""
    priority: int = 0
    reserved_at: float = 0.0
    queue: str = ""
    lq_usage: float | None = None
    evicted: bool = False


def candidate_order(candidates: Sequence[Candidate], preemptor_cq: str, afs_enabled: bool) -> list[str]:
    """The names of ``candidates`` in budcore's order for a preemptor of ``preemptor_cq``.

    Kueue's test sets ``LocalQueueFSUsage`` on each workload; budcore reads a LocalQueue's usage
    from the snapshot for every workload of a ClusterQueue with admission fair sharing. So a
    ClusterQueue gets ``admission_fair_sharing`` when its candidates have a usage (all of them or
    none: Kueue's snapshot fills it for all), each LocalQueue (weight 1) the usage its workloads
    carry, and ``afs_enabled`` (Kueue's ``afsEnabled`` argument) decides whether the snapshot
    tracks LocalQueue usage at all.
    """
    by_cq: dict[str, set[bool]] = {preemptor_cq: set()}
    usage: dict[tuple[str, str], float] = {}
    local_queues: dict[str, str] = {}
    for c in candidates:
        if c.cluster_queue:
            by_cq.setdefault(c.cluster_queue, set()).add(c.lq_usage is not None)
        if c.queue:
            assert local_queues.setdefault(c.queue, c.cluster_queue) == c.cluster_queue, c.queue
        if c.lq_usage is not None:
            assert usage.setdefault(("ns", c.queue), c.lq_usage) == c.lq_usage, c.queue
    assert all(len(has) <= 1 for has in by_cq.values()), "a ClusterQueue's workloads all have a usage or none"
    config = QueueConfig.build(
        flavors=[ResourceFlavor(name="default")],
        cluster_queues=[
            ClusterQueue(name=name, admission_fair_sharing=True in has) for name, has in by_cq.items()
        ],
        local_queues=[
            LocalQueue(name=queue, namespace="ns", cluster_queue=cq)
            for queue, cq in local_queues.items()
            if cq
        ],
    )
    tree = QuotaTree(config)
    workloads = [
        AdmittedWorkload(
            job_id=JobId(c.name),
            tenant=TenantId("ns"),
            cluster_queue=c.cluster_queue,
            local_queue=("ns", c.queue),
            usage={},
            flavors={},
            priority=c.priority,
            admitted_at=_at(c.reserved_at),
            timestamp=_at(None).timestamp(),
        )
        for c in candidates
    ]
    snapshot = AdmissionSnapshot(
        tree,
        QuotaUsage(tree),
        {w.job_id: w for w in workloads},
        local_queue_usage=usage if afs_enabled else None,
    )
    needs = NeedsPreemption(JobId("preemptor"), TenantId("ns"), preemptor_cq, {}, {}, False, 0, "")
    ctx = PreemptionContext(
        snapshot,
        needs,
        config.cluster_queues[preemptor_cq],
        tree.cluster_queues[preemptor_cq],
        frozenset(),
        {},
        PreemptionPolicy(),
        NOW,
        frozenset(c.name for c in candidates if c.evicted),
    )
    sort_candidates(ctx, workloads)
    return [str(w.job_id) for w in workloads]
