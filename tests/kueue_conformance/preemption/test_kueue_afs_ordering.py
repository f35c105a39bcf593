"""Kueue's candidate ordering for preemption, with admission fair sharing (issue #20, behaviour 10).

Source: kubernetes-sigs/kueue at commit ff69552e79ad21652c36caa97038382e55625cf7 (Apache-2.0).
Kueue orders preemption candidates with ``CandidatesOrdering``
(``pkg/scheduler/preemption/common/ordering.go``); when admission fair sharing is on, two
candidates of one ClusterQueue in different LocalQueues, both with a ``LocalQueueFSUsage``, go by
that usage, higher first, before priority. Transcribed here, inputs and Kueue's expectations:

- every case of ``TestCandidatesOrdering`` (``pkg/scheduler/preemption/preemption_test.go``), the
  table that exercises ``CandidatesOrdering`` directly — two of its cases with admission fair
  sharing, the others pin the steps around it;
- the integration spec "should preempt a workload from LQ with higher recent usage"
  (``test/integration/singlecluster/scheduler/fairsharing/fair_sharing_test.go``, "Using
  AdmissionFairSharing at Cohort level"), the one test that shows the ordering deciding a real
  preemption, put to budcore's :class:`Scheduler`;
- what ``LocalQueueFSUsage`` is: ``TestCalculateUsageWithDRA`` and
  ``TestCalculateUsageWithNonPositiveWeight``
  (``pkg/util/admissionfairsharing/admission_fair_sharing_test.go``) and
  ``TestCalcLocalQueueFSUsage`` (``pkg/workload/workload_test.go``): the resource-weighted usage
  over the LocalQueue's weight, put to budcore's ``LocalQueueUsage.weighted`` and
  ``local_queue_fs_usage``.

There is no ``ordering_test.go`` at this commit, and ``scheduler_afs_test.go`` /
``scheduler_afs_secondpass_test.go`` test admission order and entry penalties only (no case
preempts). Cases needing something budcore does not model are in ``OUT_OF_SCOPE`` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from kueue_conformance.preemption.builders import NOW, Candidate, candidate_order, params, q

from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import Job, PodSet, ResourceRequest
from budcore.domain.resources import ResourceVector
from budcore.scheduling import (
    AdmissionPolicy,
    AdmissionSnapshot,
    AdmittedWorkload,
    ClusterQueue,
    ClusterQueuePreemption,
    FairSharing,
    FlavorQuotas,
    LocalQueue,
    QueueConfig,
    QueueingStrategy,
    QuotaTree,
    QuotaUsage,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
    Scheduler,
)
from budcore.scheduling.fair_sharing import LocalQueueUsage
from budcore.scheduling.preemption import DecisionStatus
from budcore.scheduling.preemption.common import local_queue_fs_usage
from budcore.scheduling.queues import ReclaimWithinCohort, WithinClusterQueue

# --- TestCandidatesOrdering ----------------------------------------------------------------------

PREEMPTOR_CQ = "preemptor"  # the test's preemptorCq


@dataclass(frozen=True)
class OrderingCase:
    """A ``TestCandidatesOrdering`` case: its candidates (in the table's order), ``wantCandidates``,
    and whether it sets the ``AdmissionFairSharing`` gate (Kueue's ``afsEnabled`` argument)."""

    candidates: tuple[Candidate, ...]
    want: tuple[str, ...]
    afs: bool = False


# The three workloads the test builds before its table (all reserved quota at ``now``).
LOW_USAGE_LQ = Candidate("low_lq_usage", PREEMPTOR_CQ, priority=1, queue="low_usage_lq", lq_usage=0.1)
MID_USAGE_LQ = Candidate("mid_lq_usage", PREEMPTOR_CQ, priority=10, queue="mid_usage_lq", lq_usage=0.5)
HIGH_USAGE_LQ_DIF_CQ = Candidate(
    "high_lq_usage_different_cq",
    "different_cq",
    priority=1,
    queue="high_usage_lq_different_cq",
    lq_usage=1.0,
)

ORDERING_CASES: dict[str, OrderingCase] = {
    "workloads sorted by priority": OrderingCase(
        (Candidate("high", PREEMPTOR_CQ, priority=10), Candidate("low", PREEMPTOR_CQ, priority=-10)),
        ("low", "high"),
    ),
    "evicted workload first": OrderingCase(
        # "evicted" has the Evicted condition and no admission (no ReserveQuotaAt).
        (Candidate("other", PREEMPTOR_CQ, priority=10), Candidate("evicted", evicted=True)),
        ("evicted", "other"),
    ),
    "workload from different CQ first": OrderingCase(
        (Candidate("preemptorCq", PREEMPTOR_CQ, priority=10), Candidate("other", "other", priority=10)),
        ("other", "preemptorCq"),
    ),
    "old workloads last": OrderingCase(
        (
            Candidate("older", PREEMPTOR_CQ, reserved_at=-1.0),
            Candidate("younger", PREEMPTOR_CQ, reserved_at=1.0),
            Candidate("current", PREEMPTOR_CQ),
        ),
        ("younger", "current", "older"),
    ),
    "workloads with higher LQ usage first": OrderingCase(
        (LOW_USAGE_LQ, MID_USAGE_LQ), ("mid_lq_usage", "low_lq_usage"), afs=True
    ),
    "workloads from different CQ are sorted based on priority and timestamp": OrderingCase(
        (MID_USAGE_LQ, HIGH_USAGE_LQ_DIF_CQ), ("high_lq_usage_different_cq", "mid_lq_usage"), afs=True
    ),
}

_BOOST = (
    "Kueue's PriorityBoost feature gate (the kueue.x-k8s.io/priority-boost annotation adding to a "
    "workload's effective priority) has no budcore counterpart"
)
ORDERING_OUT_OF_SCOPE: dict[str, str] = {
    "workloads sorted by effective priority with boost": _BOOST,
    "workload missing priority boost defaults to zero": _BOOST,
    "invalid priority boost defaults to zero": _BOOST,
}

ORDERING_DIFFERENCES: dict[str, str] = {}


@pytest.mark.parametrize("name", params(ORDERING_CASES, ORDERING_OUT_OF_SCOPE, ORDERING_DIFFERENCES))
def test_kueue_candidates_ordering(name: str) -> None:
    """Kueue TestCandidatesOrdering's case ``name``: budcore orders the candidates as Kueue does."""
    case = ORDERING_CASES[name]
    assert tuple(candidate_order(case.candidates, PREEMPTOR_CQ, case.afs)) == case.want


# --- What LocalQueueFSUsage is --------------------------------------------------------------------


@dataclass(frozen=True)
class UsageCase:
    """A ``CalculateUsage`` / ``CalcLocalQueueFSUsage`` case without entry penalty: consumed resources
    (Kueue quantities), the LocalQueue's weight (None: the LocalQueue does not exist), the
    resource weights, and Kueue's ``wantUsage``."""

    consumed: dict[str, str]
    lq_weight: str | None
    resource_weights: dict[str, float]
    want: float


USAGE_CASES: dict[str, UsageCase] = {
    # admission_fair_sharing_test.go, TestCalculateUsageWithDRA
    "TestCalculateUsageWithDRA/DRA resource with default weight": UsageCase(
        {"gpu-logical": "2"}, "1", {}, 2.0
    ),
    "TestCalculateUsageWithDRA/DRA resource with explicit weight": UsageCase(
        {"gpu-logical": "2"}, "1", {"gpu-logical": 3.0}, 6.0
    ),
    "TestCalculateUsageWithDRA/mixed CPU and DRA resources": UsageCase(
        {"cpu": "4", "gpu-logical": "2"}, "1", {"cpu": 1.0, "gpu-logical": 5.0}, 14.0
    ),
    "TestCalculateUsageWithDRA/DRA resource with weight zero contributes nothing": UsageCase(
        {"gpu-logical": "10"}, "1", {"gpu-logical": 0.0}, 0.0
    ),
    # admission_fair_sharing_test.go, TestCalculateUsageWithNonPositiveWeight: +Inf, never NaN
    "TestCalculateUsageWithNonPositiveWeight/zero weight, idle queue (no usage)": UsageCase(
        {}, "0", {}, float("inf")
    ),
    "TestCalculateUsageWithNonPositiveWeight/zero weight, active queue": UsageCase(
        {"cpu": "4"}, "0", {}, float("inf")
    ),
    # workload_test.go, TestCalcLocalQueueFSUsage: the LocalQueue lookup fails with NotFound, so
    # the default weight 1 applies: (10 cpu * 5 weight) / 1.0 = 50.0
    "TestCalcLocalQueueFSUsage/not found error": UsageCase({"cpu": "10"}, None, {"cpu": 5.0}, 50.0),
}

USAGE_OUT_OF_SCOPE: dict[str, str] = {
    "TestCalculateUsageWithDRA/DRA resource in penalty only": (
        "budcore has no entry penalty: its LocalQueue usage is integrated continuously from "
        "admission on, not sampled with a penalty bridging the first sample"
    ),
    "TestCalculateUsageWithDRA/DRA resource in both consumed and penalty": (
        "budcore has no entry penalty (see 'DRA resource in penalty only')"
    ),
    "TestCalculateUsageWithNonPositiveWeight/negative weight": (
        "budcore's fairSharing.weight is validated ≥ 0 for every queue (Kueue's webhook does so "
        "for ClusterQueues and Cohorts), so a LocalQueue of weight -1 cannot be configured; the "
        "case calls CalculateUsage with -1 directly"
    ),
    "TestCalcLocalQueueFSUsage/other error": (
        "an API read error while resolving the LocalQueue: budcore reads its configuration in memory"
    ),
}

USAGE_DIFFERENCES: dict[str, str] = {}


@pytest.mark.parametrize("name", params(USAGE_CASES, USAGE_OUT_OF_SCOPE, USAGE_DIFFERENCES))
def test_kueue_local_queue_fs_usage(name: str) -> None:
    """Kueue's ``LocalQueueFSUsage`` for the case's consumption: budcore's decayed usage is already
    resource-weighted (``LocalQueueUsage.weighted``; Kueue's consumed ResourceList stands for it),
    and ``local_queue_fs_usage`` divides it by the LocalQueue's weight."""
    case = USAGE_CASES[name]
    tracked = LocalQueueUsage(resource_weights=case.resource_weights)
    value = tracked.weighted({r: q(v) for r, v in case.consumed.items()})
    quota = FlavorQuotas(name="default", resources=(ResourceQuota(name="cpu", nominal_quota=0),))
    local_queues = []
    if case.lq_weight is not None:
        weight = FairSharing(weight=q(case.lq_weight))
        local_queues.append(LocalQueue(name="lq", namespace="ns", cluster_queue="cq", fair_sharing=weight))
    config = QueueConfig.build(
        flavors=[ResourceFlavor(name="default")],
        cluster_queues=[
            ClusterQueue(
                name="cq",
                resource_groups=(ResourceGroup(covered_resources=("cpu",), flavors=(quota,)),),
                admission_fair_sharing=True,
            )
        ],
        local_queues=local_queues,
    )
    tree = QuotaTree(config)
    snapshot = AdmissionSnapshot(tree, QuotaUsage(tree), local_queue_usage={("ns", "lq"): value})
    workload = AdmittedWorkload(
        JobId("wl"), TenantId("ns"), "cq", ("ns", "lq"), {}, {}, 0, NOW, NOW.timestamp()
    )
    assert local_queue_fs_usage(snapshot, workload) == case.want


# --- The ordering in a real preemption: fair_sharing_test.go ------------------------------------


def _job(name: str, queue: str, cpu: str, at_seconds: float) -> Job:
    created = NOW + timedelta(seconds=at_seconds)
    request = ResourceRequest(pod_sets=(PodSet(count=1, resources=ResourceVector.of({"cpu": cpu})),))
    return Job(
        id=name,
        name=name,
        tenant="ns",
        local_queue=queue,
        request=request,
        created_at=created,
        updated_at=created,
    )


def test_kueue_preempts_from_the_local_queue_with_higher_recent_usage() -> None:
    """fair_sharing_test.go, "Using AdmissionFairSharing at Cohort level", "should preempt a
    workload from LQ with higher recent usage".

    Kueue's setup: fair sharing on (``managerAndSchedulerSetup``: ``&config.FairSharing{}``),
    admission fair sharing with a 2 s half-life (1 s sampling); ClusterQueues cq1 (cohort "all",
    16 cpu, withinClusterQueue Never, StrictFIFO, ``UsageBasedAdmissionFairSharing``) and cq2
    (cohort "all", 16 cpu, reclaimWithinCohort Any, withinClusterQueue LowerPriority);
    LocalQueues lq-a and lq-b (cq1) and lq-c (cq2), weight 1. Steps: wlHighA (lq-a, 20 cpu,
    priority 10) and wlLowB (lq-b, 12 cpu, priority 1) are admitted in cq1, borrowing from cq2;
    once the scheduler sees a higher usage for lq-a than for lq-b, a 10-cpu workload (priority 0)
    is created in lq-c. Kueue's expectation: "the workload from lq-A is preempted despite having
    bigger priority" (``ExpectWorkloadsToBePreempted(wlHighA)``).
    """
    quota = FlavorQuotas(name="default", resources=(ResourceQuota(name="cpu", nominal_quota=16_000),))
    group = (ResourceGroup(covered_resources=("cpu",), flavors=(quota,)),)
    config = QueueConfig.build(
        flavors=[ResourceFlavor(name="default")],
        cluster_queues=[
            ClusterQueue(
                name="cq1",
                cohort="all",
                resource_groups=group,
                preemption=ClusterQueuePreemption(within_cluster_queue=WithinClusterQueue.NEVER),
                queueing_strategy=QueueingStrategy.STRICT_FIFO,
                admission_fair_sharing=True,
            ),
            ClusterQueue(
                name="cq2",
                cohort="all",
                resource_groups=group,
                preemption=ClusterQueuePreemption(
                    reclaim_within_cohort=ReclaimWithinCohort.ANY,
                    within_cluster_queue=WithinClusterQueue.LOWER_PRIORITY,
                ),
            ),
        ],
        local_queues=[
            LocalQueue(name="lq-a", namespace="ns", cluster_queue="cq1"),
            LocalQueue(name="lq-b", namespace="ns", cluster_queue="cq1"),
            LocalQueue(name="lq-c", namespace="ns", cluster_queue="cq2"),
        ],
    )
    usage = LocalQueueUsage(half_life=timedelta(seconds=2))
    scheduler = Scheduler(config, AdmissionPolicy(fair_sharing=True, local_queue_usage=usage))
    scheduler.submit(_job("wl-high-a", "lq-a", "20", 0.0), priority=10)
    scheduler.submit(_job("wl-low-b", "lq-b", "12", 0.0), priority=1)
    for tick in range(3):
        scheduler.cycle(NOW + timedelta(seconds=tick))
    assert set(scheduler.admitted) == {"wl-high-a", "wl-low-b"}  # the spec's first expectation

    # Kueue waits until lq-a's usage, as the scheduler sees it, exceeds lq-b's.
    later = NOW + timedelta(seconds=5)
    assert usage.value(("ns", "lq-a"), later) > usage.value(("ns", "lq-b"), later)

    scheduler.submit(_job("wl-c", "lq-c", "10", 5.0), priority=0)
    result = scheduler.cycle(later)
    assert [d.status for d in result.preemptions] == [DecisionStatus.PREEMPT]
    assert "wl-high-a" in result.preemptions[0].victim_ids, result.preemptions[0].explain()
