"""Kueue ``TestPreemption``, every table case, against budcore's ``find_victims`` (``kueue`` mode).

Source: kubernetes-sigs/kueue ``pkg/scheduler/preemption/preemption_test.go``, ``TestPreemption``,
at commit ff69552e79ad21652c36caa97038382e55625cf7 (Apache-2.0). Each entry of :data:`CASES` is
the case of the same name: ``defaultClusterQueues`` (or the case's own ClusterQueues and Cohorts),
the admitted workloads, the incoming workload with the ``assignment`` and ``targetCQ`` the case
hands ``GetTargets``, and Kueue's expectation: the workloads ``wantWorkloads`` shows with a
``Preempted`` condition, each with that condition's reason (their number is ``wantPreempted``).

Kueue runs every case twice (feature gate ``WorkloadRequestUseMergePatch`` off and on); the gate
only changes how the eviction is written to the API server, not the targets, so one run here
stands for both. Kueue's ``now`` is one instant; every admitted workload reserved quota at
``now`` unless the case says otherwise, and none was created at a set time unless ``Creation``
says so. Fair sharing is off (``New(..., nil /* fairSharing */, false /* AFS */, ...)``).
"""

from __future__ import annotations

from typing import Any

import pytest
from kueue_conformance.preemption.builders import (
    ANY,
    CPU,
    FIT,
    IN_CLUSTER_QUEUE,
    IN_COHORT_RECLAIM_WHILE_BORROWING,
    IN_COHORT_RECLAMATION,
    LOWER_OR_NEWER_EQUAL_PRIORITY,
    LOWER_PRIORITY,
    MEMORY,
    NEVER,
    PREEMPT,
    Admitted,
    Incoming,
    KueueCase,
    PodSet,
    check,
    cluster_queue,
    cohort,
    flavor_quotas,
    incoming,
    params,
    resource_group,
    simple,
)

from budcore.scheduling import ClusterQueue

FLAVORS = ("default", "alpha", "beta")


def _default_cluster_queues() -> tuple[ClusterQueue, ...]:
    """``defaultClusterQueues`` of ``TestPreemption``."""
    fq, rg, cq = flavor_quotas, resource_group, cluster_queue
    return (
        cq(
            "standalone",
            rg(fq("default", cpu="6")),
            rg(fq("alpha", memory="3Gi"), fq("beta", memory="3Gi")),
            within=LOWER_PRIORITY,
        ),
        cq(
            "c1",
            rg(fq("default", cpu=("6", "6"), memory=("3Gi", "3Gi"))),
            cohort="cohort",
            within=LOWER_PRIORITY,
            reclaim=LOWER_PRIORITY,
        ),
        cq(
            "c2",
            rg(fq("default", cpu=("6", "6"), memory=("3Gi", "3Gi"))),
            cohort="cohort",
            within=NEVER,
            reclaim=ANY,
        ),
        cq(
            "d1",
            rg(fq("default", cpu="6", memory="3Gi")),
            cohort="cohort-no-limits",
            within=LOWER_PRIORITY,
            reclaim=LOWER_PRIORITY,
        ),
        cq(
            "d2",
            rg(fq("default", cpu="6", memory="3Gi")),
            cohort="cohort-no-limits",
            within=NEVER,
            reclaim=ANY,
        ),
        cq(
            "l1",
            rg(fq("default", cpu=("6", "12"), memory=("3Gi", "6Gi"))),
            cohort="legion",
            within=LOWER_PRIORITY,
            reclaim=LOWER_PRIORITY,
        ),
        cq("preventStarvation", rg(fq("default", cpu="6")), within=LOWER_OR_NEWER_EQUAL_PRIORITY),
        cq(
            "a_standard",
            rg(fq("default", cpu=("1", "12"))),
            cohort="with_shared_cq",
            within=NEVER,
            reclaim=LOWER_PRIORITY,
            borrow_threshold=0,
        ),
        cq(
            "b_standard",
            rg(fq("default", cpu=("1", "12"))),
            cohort="with_shared_cq",
            within=LOWER_PRIORITY,
            reclaim=ANY,
            borrow_threshold=0,
        ),
        cq(
            "a_best_effort",
            rg(fq("default", cpu=("1", "12"))),
            cohort="with_shared_cq",
            within=NEVER,
            reclaim=LOWER_PRIORITY,
            borrow_threshold=0,
        ),
        cq(
            "b_best_effort",
            rg(fq("default", cpu=("0", "13"))),
            cohort="with_shared_cq",
            within=NEVER,
            reclaim=LOWER_PRIORITY,
            borrow_threshold=0,
        ),
        cq("shared", rg(fq("default", cpu="10")), cohort="with_shared_cq"),
        cq(
            "lend1",
            rg(fq("default", cpu=("6", "", "4"))),
            cohort="cohort-lend",
            within=LOWER_PRIORITY,
            reclaim=LOWER_PRIORITY,
        ),
        cq(
            "lend2",
            rg(fq("default", cpu=("6", "", "2"))),
            cohort="cohort-lend",
            within=LOWER_PRIORITY,
            reclaim=LOWER_PRIORITY,
        ),
        cq(
            "a",
            rg(fq("default", cpu="2", memory="2")),
            cohort="cohort-three",
            within=LOWER_PRIORITY,
            reclaim=ANY,
        ),
        cq("b", rg(fq("default", cpu="2", memory="2")), cohort="cohort-three"),
        cq("c", rg(fq("default", cpu="2", memory="2")), cohort="cohort-three"),
    )


DEFAULT_CQS = _default_cluster_queues()


def adm(
    name: str,
    cq: str,
    priority: int = 0,
    *,
    reserved_at: float = 0.0,
    created_at: float | None = None,
    **res: str | tuple[str, str],
) -> Admitted:
    """``MakeWorkload(name).Priority(p).Request(...).ReserveQuotaAt(MakeAdmission(cq).PodSets(
    MakePodSetAssignment(main).Assignment(resource, "default", amount)...), now)``: every
    resource on flavor ``default`` unless given as (flavor, amount)."""
    usage: dict[tuple[str, str], str] = {}
    for resource, spec in res.items():
        flavor, amount = spec if isinstance(spec, tuple) else ("default", spec)
        usage[(flavor, resource)] = amount
    return Admitted(name, cq, usage, priority, reserved_at, created_at)


def case(admitted: list[Admitted], wl: Incoming, want: dict[str, str], **kw: Any) -> KueueCase:
    kw.setdefault("cluster_queues", DEFAULT_CQS)
    return KueueCase(admitted=tuple(admitted), incoming=wl, want=want, flavors=FLAVORS, **kw)


def cpu_preempt(amount: str) -> tuple[str, str, str]:
    """``cpu`` on flavor ``default`` in mode ``Preempt``: the assignment of most cases."""
    return (amount, "default", PREEMPT)


CASES: dict[str, KueueCase] = {
    "preempt lowest priority": case(
        [
            adm("low", "standalone", -1, cpu="2000m"),
            adm("mid", "standalone", cpu="2000m"),
            adm("high", "standalone", 1, cpu="2000m"),
        ],
        incoming("standalone", priority=1, cpu=cpu_preempt("2")),
        {"low": IN_CLUSTER_QUEUE},
    ),
    "preempt multiple": case(
        [
            adm("low", "standalone", -1, cpu="2000m"),
            adm("mid", "standalone", cpu="2000m"),
            adm("high", "standalone", 1, cpu="2000m"),
        ],
        incoming("standalone", priority=1, cpu=cpu_preempt("3")),
        {"low": IN_CLUSTER_QUEUE, "mid": IN_CLUSTER_QUEUE},
    ),
    "no preemption for low priority": case(
        [adm("low", "standalone", -1, cpu="3000m"), adm("mid", "standalone", cpu="3000m")],
        incoming("standalone", priority=-1, cpu=cpu_preempt("1")),
        {},
    ),
    "not enough low priority workloads": case(
        [adm("low", "standalone", -1, cpu="3000m"), adm("mid", "standalone", cpu="3000m")],
        incoming("standalone", cpu=cpu_preempt("4")),
        {},
    ),
    "some free quota, preempt low priority": case(
        [
            adm("low", "standalone", -1, cpu="1000m"),
            adm("mid", "standalone", cpu="1000m"),
            adm("high", "standalone", 1, cpu="3000m"),
        ],
        incoming("standalone", priority=1, cpu=cpu_preempt("2")),
        {"low": IN_CLUSTER_QUEUE},
    ),
    "minimal set excludes low priority": case(
        [
            adm("low", "standalone", -1, cpu="1000m"),
            adm("mid", "standalone", cpu="2000m"),
            adm("high", "standalone", 1, cpu="3000m"),
        ],
        incoming("standalone", priority=1, cpu=cpu_preempt("2")),
        {"mid": IN_CLUSTER_QUEUE},
    ),
    "only preempt workloads using the chosen flavor": case(
        [
            adm("low", "standalone", -1, memory=("alpha", "2Gi")),
            adm("mid", "standalone", memory=("beta", "1Gi")),
            adm("high", "standalone", 1, memory=("beta", "1Gi")),
        ],
        incoming("standalone", priority=1, cpu=("1", "default", FIT), memory=("2Gi", "beta", PREEMPT)),
        {"mid": IN_CLUSTER_QUEUE},
    ),
    "reclaim quota from borrower": case(
        [
            adm("c1-low", "c1", -1, cpu="3000m"),
            adm("c2-mid", "c2", cpu="3000m"),
            adm("c2-high", "c2", 1, cpu="6000m"),
        ],
        incoming("c1", priority=1, cpu=cpu_preempt("3")),
        {"c2-mid": IN_COHORT_RECLAMATION},
    ),
    "reclaim quota if workload requests 0 resources for a resource at nominal quota": case(
        [
            simple("c1-low", "c1", "default", priority=-1, cpu="3", memory="3Gi"),
            simple("c2-mid", "c2", "default", cpu="3"),
            simple("c2-high", "c2", "default", priority=1, cpu="6"),
        ],
        incoming("c1", priority=1, cpu=cpu_preempt("3"), memory=("0", "default", FIT)),
        {"c2-mid": IN_COHORT_RECLAMATION},
    ),
    "no workloads borrowing": case(
        [adm("c1-high", "c1", 1, cpu="4000m"), adm("c2-low-1", "c2", -1, cpu="4000m")],
        incoming("c1", priority=1, cpu=cpu_preempt("4")),
        {},
    ),
    "not enough workloads borrowing": case(
        [
            adm("c1-high", "c1", 1, cpu="4000m"),
            adm("c2-low-1", "c2", -1, cpu="4000m"),
            adm("c2-low-2", "c2", -1, cpu="4000m"),
        ],
        incoming("c1", priority=1, cpu=cpu_preempt("4")),
        {},
    ),
    "preempting locally and borrowing other resources in cohort, without cohort candidates": case(
        [
            adm("c1-low", "c1", -1, cpu="4000m"),
            adm("c2-low-1", "c2", -1, cpu="4000m"),
            adm("c2-high-2", "c2", 1, cpu="4000m"),
        ],
        incoming("c1", priority=1, cpu=cpu_preempt("4"), memory=("5Gi", "default", PREEMPT)),
        {"c1-low": IN_CLUSTER_QUEUE},
    ),
    "preempting locally and borrowing same resource in cohort": case(
        [
            adm("c1-med", "c1", 0, cpu="4000m"),
            adm("c1-low", "c1", -1, cpu="4000m"),
            adm("c2-low-1", "c2", -1, cpu="4000m"),
        ],
        incoming("c1", priority=1, cpu=cpu_preempt("4")),
        {"c1-low": IN_CLUSTER_QUEUE},
    ),
    "preempting locally and borrowing same resource in cohort; no borrowing limit in the cohort": case(
        [
            adm("d1-med", "d1", 0, cpu="4"),
            adm("d1-low", "d1", -1, cpu="4"),
            adm("d2-low-1", "d2", -1, cpu="4"),
        ],
        incoming("d1", priority=1, cpu=cpu_preempt("4")),
        {"d1-low": IN_CLUSTER_QUEUE},
    ),
    "preempting locally and borrowing other resources in cohort, with cohort candidates": case(
        [
            adm("c1-med", "c1", 0, cpu="4000m"),
            adm("c2-low-1", "c2", -1, cpu="5000m"),
            adm("c2-low-2", "c2", -1, cpu="1000m"),
            adm("c2-low-3", "c2", -1, cpu="1000m"),
        ],
        incoming("c1", priority=1, cpu=cpu_preempt("2"), memory=("5Gi", "default", PREEMPT)),
        {"c1-med": IN_CLUSTER_QUEUE},
    ),
    "preempting locally and not borrowing same resource in 1-queue cohort": case(
        [adm("l1-med", "l1", 0, cpu="4000m"), adm("l1-low", "l1", -1, cpu="2000m")],
        incoming("l1", priority=1, cpu=cpu_preempt("4")),
        {"l1-med": IN_CLUSTER_QUEUE},
    ),
    "do not reclaim borrowed quota from same priority for withinCohort=ReclaimFromLowerPriority": case(
        [adm("c1", "c1", cpu="2000m"), adm("c2-1", "c2", cpu="4000m"), adm("c2-2", "c2", cpu="4000m")],
        incoming("c1", cpu=cpu_preempt("4")),
        {},
    ),
    "reclaim borrowed quota from same priority for withinCohort=ReclaimFromAny": case(
        [adm("c1-1", "c1", cpu="4000m"), adm("c1-2", "c1", 1, cpu="4000m"), adm("c2", "c2", cpu="2000m")],
        incoming("c2", cpu=cpu_preempt("4")),
        {"c1-1": IN_COHORT_RECLAMATION},
    ),
    "preempt from all ClusterQueues in cohort": case(
        [
            adm("c1-low", "c1", -1, cpu="3000m"),
            adm("c1-mid", "c1", cpu="2000m"),
            adm("c2-low", "c2", -1, cpu="3000m"),
            adm("c2-mid", "c2", cpu="4000m"),
        ],
        incoming("c1", cpu=cpu_preempt("4")),
        {"c1-low": IN_CLUSTER_QUEUE, "c2-low": IN_COHORT_RECLAMATION},
    ),
    "can't preempt workloads in ClusterQueue for withinClusterQueue=Never": case(
        [adm("c2-low", "c2", -1, cpu="3000m")],
        incoming("c2", priority=1, cpu=cpu_preempt("4")),
        {},
    ),
    "each podset preempts a different flavor": case(
        [
            adm("low-alpha", "standalone", -1, memory=("alpha", "2Gi")),
            adm("low-beta", "standalone", -1, memory=("beta", "2Gi")),
        ],
        Incoming(
            "standalone",
            (
                PodSet("launcher", 1, {MEMORY: ("2Gi", "alpha", PREEMPT)}),
                PodSet("workers", 2, {MEMORY: ("1Gi", "beta", PREEMPT)}),
            ),
        ),
        {"low-alpha": IN_CLUSTER_QUEUE, "low-beta": IN_CLUSTER_QUEUE},
    ),
    "preempt newer workloads with the same priority": case(
        [
            adm("wl1", "preventStarvation", 2, cpu="2"),
            adm("wl2", "preventStarvation", 1, created_at=0.0, reserved_at=1.0, cpu="2"),
            adm("wl3", "preventStarvation", 1, created_at=0.0, cpu="2"),
        ],
        Incoming(
            "preventStarvation",
            (PodSet("launcher", 1, {CPU: ("2", "default", PREEMPT)}),),
            priority=1,
            created_at=-15.0,
        ),
        {"wl2": IN_CLUSTER_QUEUE},
    ),
    "use BorrowWithinCohort; allow preempting a lower-priority workload from another ClusterQueue "
    "while borrowing": case(
        [
            adm("a_best_effort_low", "a_best_effort", -1, cpu="10"),
            adm("b_best_effort_low", "b_best_effort", -1, cpu="1"),
        ],
        incoming("a_standard", cpu=cpu_preempt("10")),
        {"a_best_effort_low": IN_COHORT_RECLAIM_WHILE_BORROWING},
    ),
    "use BorrowWithinCohort; don't allow preempting a lower-priority workload with priority above "
    "MaxPriorityThreshold, if borrowing is required even after the preemption": case(
        [adm("b_standard", "b_standard", 1, cpu="10000m")],
        incoming("a_standard", priority=2, cpu=cpu_preempt("10")),
        {},
    ),
    "use BorrowWithinCohort; allow preempting a lower-priority workload with priority above "
    "MaxPriorityThreshold, if borrowing is not required after the preemption": case(
        [adm("b_standard", "b_standard", 1, cpu="13000m")],
        incoming("a_standard", priority=2, cpu=cpu_preempt("1")),
        {"b_standard": IN_COHORT_RECLAMATION},
    ),
    "use BorrowWithinCohort; don't allow for preemption of lower-priority workload from the same "
    "ClusterQueue": case(
        [adm("a_standard", "a_standard", 1, cpu="13000m")],
        incoming("a_standard", priority=2, cpu=cpu_preempt("1")),
        {},
    ),
    "use BorrowWithinCohort; only preempt from CQ if no workloads below threshold and already above "
    "nominal": case(
        [
            adm("a_standard_1", "a_standard", 1, cpu="10"),
            adm("a_standard_2", "a_standard", 1, cpu="1"),
            adm("b_standard_1", "b_standard", 1, cpu="1"),
            adm("b_standard_2", "b_standard", 2, cpu="1"),
        ],
        incoming("b_standard", priority=3, cpu=cpu_preempt("1")),
        {"b_standard_1": IN_CLUSTER_QUEUE},
    ),
    "use BorrowWithinCohort; preempt from CQ and from other CQs with workloads below threshold": case(
        [
            adm("b_standard_high", "b_standard", 2, cpu="10"),
            adm("b_standard_mid", "b_standard", 1, cpu="1"),
            adm("a_best_effort_low", "a_best_effort", -1, cpu="1"),
            adm("a_best_effort_lower", "a_best_effort", -2, cpu="1"),
        ],
        incoming("b_standard", priority=2, cpu=cpu_preempt("2")),
        {"b_standard_mid": IN_CLUSTER_QUEUE, "a_best_effort_lower": IN_COHORT_RECLAIM_WHILE_BORROWING},
    ),
    "reclaim quota from lender": case(
        [
            adm("lend1-low", "lend1", -1, cpu="3000m"),
            adm("lend2-mid", "lend2", cpu="3000m"),
            adm("lend2-high", "lend2", 1, cpu="4000m"),
        ],
        incoming("lend1", priority=1, cpu=cpu_preempt("3")),
        {"lend2-mid": IN_COHORT_RECLAMATION},
    ),
    "preempt from all ClusterQueues in cohort-lend": case(
        [
            adm("lend1-low", "lend1", -1, cpu="3000m"),
            adm("lend1-mid", "lend1", cpu="2000m"),
            adm("lend2-low", "lend2", -1, cpu="3000m"),
            adm("lend2-mid", "lend2", cpu="4000m"),
        ],
        incoming("lend1", cpu=cpu_preempt("4")),
        {"lend1-low": IN_CLUSTER_QUEUE, "lend2-low": IN_COHORT_RECLAMATION},
    ),
    "cannot preempt from other ClusterQueues if exceeds requestable quota including lending limit": case(
        [adm("lend2-low", "lend2", -1, cpu="10")],
        incoming("lend1", cpu=cpu_preempt("9")),
        {},
    ),
    "preemptions from cq when target queue is exhausted for the single requested resource": case(
        [
            adm("a1", "a", -2, cpu="1"),
            adm("a2", "a", -2, cpu="1"),
            adm("a3", "a", -1, cpu="1"),
            adm("b1", "b", 0, cpu="1"),
            adm("b2", "b", 0, cpu="1"),
            adm("b3", "b", 0, cpu="1"),
        ],
        incoming("a", priority=0, cpu=cpu_preempt("2")),
        {"a1": IN_CLUSTER_QUEUE, "a2": IN_CLUSTER_QUEUE},
    ),
    "preemptions from cq when target queue is exhausted for two requested resources": case(
        [
            adm("a1", "a", -2, cpu="1", memory="1"),
            adm("a2", "a", -2, cpu="1", memory="1"),
            adm("a3", "a", -1, cpu="1", memory="1"),
            adm("b1", "b", 0, cpu="1", memory="1"),
            adm("b2", "b", 0, cpu="1", memory="1"),
            adm("b3", "b", 0, cpu="1", memory="1"),
        ],
        incoming("a", priority=0, cpu=cpu_preempt("2"), memory=("2", "default", PREEMPT)),
        {"a1": IN_CLUSTER_QUEUE, "a2": IN_CLUSTER_QUEUE},
    ),
    "preemptions from cq when target queue is exhausted for one requested resource, but not the other": case(
        [
            adm("a1", "a", -2, cpu="1"),
            adm("a2", "a", -2, cpu="1"),
            adm("a3", "a", -1, cpu="1"),
            adm("b1", "b", 0, cpu="1"),
            adm("b2", "b", 0, cpu="1"),
            adm("b3", "b", 0, cpu="1"),
        ],
        incoming("a", priority=0, cpu=cpu_preempt("2"), memory=("2", "default", PREEMPT)),
        {"a1": IN_CLUSTER_QUEUE, "a2": IN_CLUSTER_QUEUE},
    ),
    "allow preemption from other cluster queues if target cq is not exhausted for the requested "
    "resource": case(
        [
            adm("a1", "a", -1, cpu="1"),
            adm("b1", "b", 0, cpu="1"),
            adm("b2", "b", 0, cpu="1"),
            adm("b3", "b", 0, cpu="1"),
            adm("b4", "b", 0, cpu="1"),
            adm("b5", "b", -1, cpu="1"),
        ],
        incoming("a", cpu=cpu_preempt("2")),
        {"a1": IN_CLUSTER_QUEUE, "b5": IN_COHORT_RECLAMATION},
    ),
    "long range preemption": case(
        [adm("to-be-preempted", "cq-right", cpu="5")],
        incoming("cq-left", cpu=cpu_preempt("8")),
        {"to-be-preempted": IN_COHORT_RECLAMATION},
        cluster_queues=(
            cluster_queue(
                "cq-left",
                resource_group(flavor_quotas("default", cpu="10")),
                cohort="cohort-left",
                reclaim=ANY,
            ),
            cluster_queue(
                "cq-right", resource_group(flavor_quotas("default", cpu="0")), cohort="cohort-right"
            ),
        ),
        cohorts=(cohort("cohort-left", parent="root"), cohort("cohort-right", parent="root")),
    ),
}

# Cases that need a feature budcore does not have (none of TestPreemption's does).
OUT_OF_SCOPE: dict[str, str] = {}

# In-scope cases budcore decides differently: Kueue expects X, budcore gives Y.
DIFFERENCES: dict[str, str] = {}


@pytest.mark.parametrize("name", params(CASES, OUT_OF_SCOPE, DIFFERENCES))
def test_kueue_preemption(name: str) -> None:
    """Kueue TestPreemption's case ``name``: budcore preempts the same workloads for the same
    reasons, and leaves the snapshot as it was."""
    check(CASES[name])
