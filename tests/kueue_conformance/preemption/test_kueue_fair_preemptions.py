"""Kueue ``TestFairPreemptions``, every table case, against budcore's fair-sharing ``find_victims``.

Source: kubernetes-sigs/kueue ``pkg/scheduler/preemption/preemption_fair_test.go``,
``TestFairPreemptions``, at commit ff69552e79ad21652c36caa97038382e55625cf7 (Apache-2.0). Each entry
of :data:`CASES` is the case of the same name: its ClusterQueues (``baseCQs`` or its own), Cohorts,
flavors, admitted workloads, incoming workload and ``targetCQ``, the ``strategies`` it configures,
and Kueue's ``wantPreempted`` (workload → reason).

What every case shares, from the test's loop: fair sharing is on
(``New(..., &config.FairSharing{PreemptionStrategies: tc.strategies}, false /* AFS */, ...)``;
no strategies means Kueue's default, LessThanOrEqualToFinalShare then LessThanInitialShare);
the incoming workload's single pod set gets ``cpu`` on ``assignmentFlavor`` (default ``default``)
in mode ``Preempt``; every admitted workload has ``SimpleReserveQuota(cq, flavor, now)`` (all its
requests on that flavor, quota reserved at ``now``) and its name as UID, which is Kueue's last
tie-breaker in candidate order (budcore's is the job id, the same name). Feature gates are Kueue's
defaults at that commit, among them ``FairSharingPreemptWithinNominal`` (Beta, on) and
``AdmissionFairSharing`` (on, but the preemptor is built with AFS off).
"""

from __future__ import annotations

from typing import Any

import pytest
from kueue_conformance.preemption.builders import (
    ANY,
    IN_CLUSTER_QUEUE,
    IN_COHORT_FAIR_SHARING,
    IN_COHORT_RECLAMATION,
    LOWER_PRIORITY,
    PREEMPT,
    Admitted,
    Incoming,
    KueueCase,
    check,
    cluster_queue,
    cohort,
    flavor_quotas,
    incoming,
    params,
    resource_group,
    simple,
)

from budcore.scheduling import ClusterQueue, FlavorFungibility, FungibilityAction, ResourceGroup
from budcore.scheduling.preemption import FairSharingStrategy


def _cpu(nominal: str) -> tuple[ResourceGroup]:
    """A resource group with flavor ``default`` covering ``cpu``."""
    return (resource_group(flavor_quotas("default", cpu=nominal)),)


def _base_cluster_queues() -> tuple[ClusterQueue, ...]:
    """``baseCQs`` of ``TestFairPreemptions``: a, b, c (3 CPU each, LowerPriority within,
    Any reclaim, BorrowWithinCohort LowerPriority with MaxPriorityThreshold -3) and
    ``preemptible`` (0 CPU, no preemption), all in cohort ``all``."""
    standard: dict[str, Any] = {
        "cohort": "all",
        "within": LOWER_PRIORITY,
        "reclaim": ANY,
        "borrow_threshold": -3,
    }
    return (
        cluster_queue("a", *_cpu("3"), **standard),
        cluster_queue("b", *_cpu("3"), **standard),
        cluster_queue("c", *_cpu("3"), **standard),
        cluster_queue("preemptible", *_cpu("0"), cohort="all"),
    )


BASE_CQS = _base_cluster_queues()


def unit(name: str, cq: str, priority: int = 0, flavor: str = "default") -> Admitted:
    """``unitWl.Clone().Name(name).Priority(p).SimpleReserveQuota(cq, flavor, now)`` (1 CPU)."""
    return simple(name, cq, flavor, priority=priority, cpu="1")


def units(prefix: str, cq: str, count: int) -> list[Admitted]:
    """``prefix1`` … ``prefix<count>``, each a unit workload in ``cq``."""
    return [unit(f"{prefix}{i}", cq) for i in range(1, count + 1)]


def wl(name: str, cq: str, cpu: str, priority: int = 0) -> Admitted:
    """``MakeWorkload(name).Priority(p).Request(cpu).SimpleReserveQuota(cq, "default", now)``."""
    return simple(name, cq, "default", priority=priority, cpu=cpu)


def into(cq: str, name: str, cpu: str = "1", priority: int = 0, flavor: str = "default") -> Incoming:
    """The incoming workload ``name`` (``cpu`` per pod) for ``targetCQ`` ``cq``."""
    return incoming(cq, priority=priority, name=name, cpu=(cpu, flavor, PREEMPT))


def case(admitted: list[Admitted], wl_in: Incoming, want: dict[str, str], **kw: Any) -> KueueCase:
    kw.setdefault("cluster_queues", BASE_CQS)
    return KueueCase(admitted=tuple(admitted), incoming=wl_in, want=want, fair_sharing=True, **kw)


S2A = FairSharingStrategy.LESS_THAN_OR_EQUAL_TO_FINAL_SHARE
S2B = FairSharingStrategy.LESS_THAN_INITIAL_SHARE


def _plain(
    name: str, nominal: str, cohort_name: str | None, fair_weight: str = "1", **kw: Any
) -> ClusterQueue:
    """A ClusterQueue with ``nominal`` CPU on ``default`` (the cases with their own queues)."""
    return cluster_queue(name, *_cpu(nominal), cohort=cohort_name, fair_weight=fair_weight, **kw)


CASES: dict[str, KueueCase] = {
    "reclaim nominal from user using the most": case(
        [*units("a", "a", 3), *units("b", "b", 5), unit("c1", "c")],
        into("c", "c_incoming"),
        {"b1": IN_COHORT_RECLAMATION},
    ),
    "can reclaim from queue using less, if taking the latest workload from user using the most "
    "isn't enough": case(
        [wl("a1", "a", "3"), wl("a2", "a", "1"), wl("b1", "b", "2"), wl("b2", "b", "3")],
        # Kueue's incoming object also carries SimpleReserveQuota("a", ...); GetTargets reads
        # only its requests and the targetCQ.
        into("c", "c_incoming", "3"),
        {"a1": IN_COHORT_RECLAMATION},
    ),
    "reclaim borrowable quota from user using the most": case(
        [*units("a", "a", 3), *units("b", "b", 5), unit("c1", "c")],
        into("a", "a_incoming"),
        {"b1": IN_COHORT_FAIR_SHARING},
    ),
    "preempt one from each CQ borrowing": case(
        [
            wl("a1", "a", "0.5"),
            wl("a2", "a", "0.5"),
            wl("a3", "a", "3"),
            wl("b1", "b", "0.5"),
            wl("b2", "b", "0.5"),
            wl("b3", "b", "3"),
        ],
        into("c", "c_incoming", "2"),
        {"a1": IN_COHORT_RECLAMATION, "b1": IN_COHORT_RECLAMATION},
    ),
    "can't preempt when everyone under nominal": case(
        [*units("a", "a", 3), *units("b", "b", 3), *units("c", "c", 3)],
        into("c", "c_incoming"),
        {},
    ),
    "can't preempt when it would switch the imbalance": case(
        [*units("a", "a", 3), *units("b", "b", 5)],
        into("a", "a_incoming", "2"),
        {},
    ),
    "can preempt lower priority workloads from same CQ": case(
        [
            unit("a1_low", "a", -1),
            unit("a2_low", "a", -1),
            unit("a3", "a"),
            unit("a4", "a"),
            *units("b", "b", 5),
        ],
        into("a", "a_incoming", "2"),
        {"a1_low": IN_CLUSTER_QUEUE, "a2_low": IN_CLUSTER_QUEUE},
    ),
    "can preempt a combination of same CQ and highest user": case(
        [unit("a_low", "a", -1), unit("a2", "a"), unit("a3", "a"), *units("b", "b", 6)],
        into("a", "a_incoming", "2"),
        {"a_low": IN_CLUSTER_QUEUE, "b1": IN_COHORT_FAIR_SHARING},
    ),
    "preempt huge workload if there is no other option, as long as the target CQ gets a lower share": case(
        [wl("b1", "b", "9")],
        into("a", "a_incoming", "2"),
        {"b1": IN_COHORT_RECLAMATION},
    ),
    "can't preempt huge workload if the incoming is also huge": case(
        [wl("a1", "a", "2"), wl("b1", "b", "7")],
        into("a", "a_incoming", "5"),
        {},
    ),
    "can't preempt 2 smaller workloads if the incoming is huge": case(
        [wl("b1", "b", "2"), wl("b2", "b", "2"), wl("b3", "b", "3")],
        into("a", "a_incoming", "6"),
        {},
    ),
    "preempt from target and others even if over nominal": case(
        [wl("a1_low", "a", "2", -1), wl("a2_low", "a", "1", -1), wl("b1", "b", "3"), wl("b2", "b", "3")],
        into("a", "a_incoming", "4"),
        {"a1_low": IN_CLUSTER_QUEUE, "b1": IN_COHORT_FAIR_SHARING},
    ),
    "prefer to preempt workloads that don't make the target CQ have the biggest share": case(
        [wl("b1", "b", "2"), wl("b2", "b", "1"), wl("b3", "b", "2"), wl("c1", "c", "1")],
        into("a", "a_incoming", "3.5"),
        # Kueue's comment: b1 could go under rule S2-b, but S2-a was possible first.
        {"b2": IN_COHORT_FAIR_SHARING},
    ),
    "preempt from different cluster queues if the end result has a smaller max share": case(
        [wl("b1", "b", "2"), wl("b2", "b", "2.5"), wl("c1", "c", "2"), wl("c2", "c", "2.5")],
        into("a", "a_incoming", "3.5"),
        {"b1": IN_COHORT_FAIR_SHARING, "c1": IN_COHORT_FAIR_SHARING},
    ),
    "scenario above does not flap": case(
        [wl("a1", "a", "3.5"), wl("b2", "b", "2.5"), wl("c2", "c", "2.5")],
        into("b", "b_incoming", "2"),
        {},
    ),
    "cannot preempt if it would make the candidate CQ go under nominal after preempting one element": case(
        [wl("b1", "b", "3"), wl("b2", "b", "3"), wl("c1", "c", "3")],
        into("a", "a_incoming", "4"),
        {},
    ),
    # Kueue: borrowWithinCohort does not affect fair-sharing preemption; lower-priority workloads go
    # only when the dominant resource shares say so.
    "workloads under priority threshold not capriciously preempted": case(
        [
            *units("a", "a", 3),
            *units("b", "b", 3),
            unit("preemptible1", "preemptible", -3),
            unit("preemptible2", "preemptible", -3),
            unit("preemptible3", "preemptible", -3),
        ],
        into("a", "a_incoming", "2"),
        {},
    ),
    "preempt lower priority first, even if big": case(
        [wl("a1", "a", "3"), wl("b_low", "b", "5", 0), wl("b_high", "b", "1", 1)],
        into("a", "a_incoming", "1"),
        {"b_low": IN_COHORT_FAIR_SHARING},
        strategies=(S2B,),
    ),
    "preempt workload that doesn't transfer the imbalance, even if high priority": case(
        [wl("a1", "a", "3"), wl("b_low", "b", "5", 0), wl("b_high", "b", "1", 1)],
        into("a", "a_incoming", "1"),
        {"b_high": IN_COHORT_FAIR_SHARING},
        strategies=(S2A,),
    ),
    "CQ with higher weight can preempt more": case(
        [*units("a", "a", 3), *units("b", "b", 6)],
        into("a", "a_incoming", "2"),
        {"b1": IN_COHORT_FAIR_SHARING, "b2": IN_COHORT_FAIR_SHARING},
        cluster_queues=(
            _plain("a", "3", "all", "2", within=LOWER_PRIORITY, reclaim=ANY),
            _plain("b", "3", "all", within=LOWER_PRIORITY, reclaim=ANY),
            _plain("c", "3", "all", within=LOWER_PRIORITY, reclaim=ANY),
        ),
    ),
    "can preempt anything borrowing from CQ with 0 weight": case(
        [*units("a", "a", 3), *units("b", "b", 6)],
        into("a", "a_incoming", "3"),
        {"b1": IN_COHORT_FAIR_SHARING, "b2": IN_COHORT_FAIR_SHARING, "b3": IN_COHORT_FAIR_SHARING},
        cluster_queues=(
            _plain("a", "3", "all", within=LOWER_PRIORITY, reclaim=ANY),
            _plain("b", "3", "all", "0", within=LOWER_PRIORITY, reclaim=ANY),
            _plain("c", "3", "all", within=LOWER_PRIORITY, reclaim=ANY),
        ),
    ),
    "can't preempt nominal from CQ with 0 weight": case(
        [*units("a", "a", 3), *units("b", "b", 3)],
        into("a", "a_incoming"),
        {},
        cluster_queues=(
            _plain("a", "3", "all", within=LOWER_PRIORITY, reclaim=ANY),
            _plain("b", "3", "all", "0", within=LOWER_PRIORITY, reclaim=ANY),
        ),
    ),
    "can't preempt nominal from Cohort with 0 weight": case(
        [unit("right-1", "right-cq")],
        into("left-cq", "left-1"),
        {},
        cluster_queues=(
            _plain("left-cq", "0", "root", reclaim=ANY),
            _plain("right-cq", "0", "right-cohort", "0", reclaim=ANY),
        ),
        cohorts=(cohort("right-cohort", *_cpu("1"), parent="root", fair_weight="0"),),
    ),
    "can preempt within cluster queue when no cohort": case(
        [unit("a1", "a")],
        into("a", "a_incoming", priority=1000),
        {"a1": IN_CLUSTER_QUEUE},
        cluster_queues=(_plain("a", "1", None, within=LOWER_PRIORITY),),
    ),
    # Kueue's picture, (usage, quota, subtree quota) per node:
    #                ROOT(20,5,20)
    #             /       |         \
    #       LEFT(5,5,7)  c(5,1,1)   RIGHT(10,5,7)
    #       /       \               /      \
    #     a(0,1,1)    b(5,1,1)   d(5,1,1)    e(5,1,1)
    # a and LEFT weigh 2, e 0.99 ("for determinism, we slightly prefer preemptions from e").
    "hierarchical preemption": case(
        [unit(f"{q}{p}", q, p) for q in "bcde" for p in range(1, 6)],
        into("a", "unit", "5"),
        {
            "b1": IN_COHORT_FAIR_SHARING,
            "b2": IN_COHORT_FAIR_SHARING,
            "c1": IN_COHORT_FAIR_SHARING,
            "c2": IN_COHORT_FAIR_SHARING,
            "e1": IN_COHORT_FAIR_SHARING,
        },
        cluster_queues=(
            _plain("a", "1", "LEFT", "2", reclaim=ANY),
            _plain("b", "1", "LEFT"),
            _plain("c", "1", "ROOT"),
            _plain("d", "1", "RIGHT"),
            _plain("e", "1", "RIGHT", "0.99"),
        ),
        cohorts=(
            cohort("ROOT", *_cpu("5")),
            cohort("LEFT", *_cpu("5"), parent="ROOT", fair_weight="2"),
            cohort("RIGHT", *_cpu("5"), parent="ROOT"),
        ),
    ),
    # b borrows but its Cohort RIGHT does not, so b cannot be preempted: a, of size 5, must preempt
    # its own workloads despite its high weight and RIGHT/b's low one.
    #             ROOT
    #           /      \
    #       a(3,5,5)   RIGHT(1,1,1)
    #                        \
    #                         b(1,0,0)
    "borrowing cq in non-borrowing cohort is protected": case(
        [unit("a1", "a", -1), unit("a2", "a", -1), unit("a3", "a", -1), unit("b1", "b", -1)],
        into("a", "unit", "5"),
        {"a1": IN_CLUSTER_QUEUE, "a2": IN_CLUSTER_QUEUE, "a3": IN_CLUSTER_QUEUE},
        cluster_queues=(
            _plain("a", "5", "ROOT", "10", reclaim=ANY, within=LOWER_PRIORITY),
            # MakeClusterQueue("b") without any ResourceGroup
            cluster_queue("b", cohort="RIGHT", fair_weight="0.1"),
        ),
        cohorts=(cohort("ROOT"), cohort("RIGHT", *_cpu("1"), parent="ROOT", fair_weight="0.1")),
    ),
    # Preempting the small workloads would bring RIGHT to a share of 0 and the higher-priority b1
    # cannot be considered: a, of size 4, must preempt its own workloads.
    #             ROOT
    #           /      \
    #       a(3,5,5)   RIGHT(4,3,3)
    #                        \
    #                         b(4,0,0)
    "forced to preempt within clusterqueue because borrowing workload too important": case(
        [unit("a1", "a", -1), unit("a2", "a", -1), unit("a3", "a", -1), wl("b1", "b", "4", 100)],
        into("a", "unit", "4"),
        {"a1": IN_CLUSTER_QUEUE, "a2": IN_CLUSTER_QUEUE, "a3": IN_CLUSTER_QUEUE},
        cluster_queues=(
            _plain("a", "5", "ROOT", "10", reclaim=LOWER_PRIORITY, within=LOWER_PRIORITY),
            cluster_queue("b", cohort="RIGHT", fair_weight="0.1"),
        ),
        cohorts=(cohort("ROOT"), cohort("RIGHT", *_cpu("3"), parent="ROOT", fair_weight="0.1")),
    ),
    # ROOT ─ A ─ AA ─ AAA ─ a;  ROOT ─ B ─ BB ─ BBB ─ b;  ROOT ─ C ─ CC ─ CCC ─ CCCC (1 CPU).
    # cq a wants capacity, cq b uses it, CCCC provides it; A (1.01) weighs more than B (0.99).
    "deep preemption": case(
        [unit("b1", "b")],
        into("a", "a1"),
        {"b1": IN_COHORT_FAIR_SHARING},
        cluster_queues=(_plain("a", "0", "AAA", reclaim=ANY), _plain("b", "0", "BBB")),
        cohorts=(
            cohort("ROOT"),
            cohort("A", parent="ROOT", fair_weight="1.01"),
            cohort("AA", parent="A"),
            cohort("AAA", parent="AA"),
            cohort("B", parent="ROOT", fair_weight="0.99"),
            cohort("BB", parent="B"),
            cohort("BBB", parent="BB"),
            cohort("C", parent="ROOT"),
            cohort("CC", parent="C"),
            cohort("CCC", parent="CC"),
            cohort("CCCC", *_cpu("1"), parent="CCC"),
        ),
    ),
    "cq with zero weight can reclaim nominal quota": case(
        [unit("b1", "b")],
        into("a", "a1"),
        {"b1": IN_COHORT_RECLAMATION},
        cluster_queues=(_plain("a", "1", "ROOT", "0.0", reclaim=ANY), _plain("b", "0", "ROOT", "1.0")),
    ),
    "cohort with zero weight can reclaim nominal quota": case(
        [unit("b1", "b")],
        into("a", "a1"),
        {"b1": IN_COHORT_FAIR_SHARING},
        cluster_queues=(_plain("a", "0", "A", "0.0", reclaim=ANY), _plain("b", "0", "ROOT", "1.0")),
        cohorts=(cohort("A", *_cpu("1"), parent="ROOT", fair_weight="0.0"),),
    ),
    # a: 3 premium (2 used, within nominal) and 0 cheap (5 used, borrowed: a high share); b: 0
    # premium (1 used, borrowed from a) and 6 cheap. a wants 1 premium CPU, within its nominal.
    "nominal first: workload fitting within nominal can preempt despite high aggregate DRS": case(
        [
            unit("a_prem1", "a", flavor="premium"),
            unit("a_prem2", "a", flavor="premium"),
            *[unit(f"a_cheap{i}", "a", flavor="cheap") for i in range(1, 6)],
            unit("b_prem1", "b", flavor="premium"),
        ],
        into("a", "a_incoming", flavor="premium"),
        {"b_prem1": IN_COHORT_RECLAMATION},
        flavors=("premium", "cheap"),
        cluster_queues=(
            cluster_queue(
                "a",
                resource_group(flavor_quotas("premium", cpu="3"), flavor_quotas("cheap", cpu="0")),
                cohort="all",
                reclaim=ANY,
                fungibility=FlavorFungibility(
                    when_can_borrow=FungibilityAction.MAY_STOP_SEARCH,
                    when_can_preempt=FungibilityAction.MAY_STOP_SEARCH,
                ),
            ),
            cluster_queue(
                "b",
                resource_group(flavor_quotas("premium", cpu="0"), flavor_quotas("cheap", cpu="6")),
                cohort="all",
            ),
        ),
    ),
    # The preemptor weighs 0 and borrows (share +Inf); the target borrows with a non-zero weight
    # (finite share): neither strategy can pass.
    "zero weight borrowing preemptor cannot preempt from a borrowing CQ with a non-zero weight": case(
        [unit("a1", "a"), unit("b1", "b"), unit("b2", "b")],
        into("a", "a_incoming"),
        {},
        cluster_queues=(_plain("a", "1", "all", "0", reclaim=ANY), _plain("b", "1", "all", "1")),
    ),
    # Both weigh 0 and borrow (both shares +Inf): Kueue compares the unweighted ratios instead.
    "zero weight borrowing preemptor can preempt from a borrowing CQ which also has zero weight": case(
        [unit("b1", "b"), unit("b2", "b"), unit("b3", "b")],
        into("a", "a_incoming", "2"),
        {"b1": IN_COHORT_FAIR_SHARING},
        cluster_queues=(_plain("a", "1", "all", "0", reclaim=ANY), _plain("b", "0", "all", "0")),
        cohorts=(cohort("all", *_cpu("3")),),
    ),
    "non-zero weight borrowing preemptor preempts from a borrowing CQ": case(
        [unit("b1", "b"), unit("b2", "b"), unit("b3", "b")],
        into("a", "a_incoming", "2"),
        {"b1": IN_COHORT_FAIR_SHARING},
        cluster_queues=(_plain("a", "1", "all", "1", reclaim=ANY), _plain("b", "0", "all", "1")),
        cohorts=(cohort("all", *_cpu("3")),),
    ),
    # ROOT ─ A (weight 0, 1 CPU) ─ p (weight 1, 2 CPU, preemptor)
    #      │                    └─ y (weight 1, 2 CPU)
    #      └─ x (weight 1, 1 CPU)
    # A borrows with weight 0 (share +Inf), so no candidate of x passes the first strategy; once y1
    # is preempted A stops borrowing and the second strategy takes one from x.
    "candidates skipped by the first strategy are still available to the second strategy": case(
        [wl("p1", "p", "2"), wl("y1", "y", "2"), wl("y2", "y", "2"), unit("x1", "x"), unit("x2", "x")],
        into("p", "p_incoming"),
        {"y1": IN_COHORT_FAIR_SHARING, "x1": IN_COHORT_FAIR_SHARING},
        cluster_queues=(
            _plain("p", "2", "A", "1", reclaim=ANY),
            _plain("y", "2", "A", "1"),
            _plain("x", "1", "ROOT", "1"),
        ),
        cohorts=(cohort("A", *_cpu("1"), parent="ROOT", fair_weight="0"),),
    ),
}

# Cases that need a feature budcore does not have (none of TestFairPreemptions' does).
OUT_OF_SCOPE: dict[str, str] = {}

# In-scope cases budcore decides differently: Kueue expects X, budcore gives Y (the behaviour
# numbers are those of issue #20). None since fair-sharing preemption within nominal quota
# (behaviour 1), the cohort-tree ordering with almost-LCA shares (behaviour 2), the share of a
# weight-0 node that borrows nothing and the disregard of borrowWithinCohort were made Kueue's.
DIFFERENCES: dict[str, str] = {}


@pytest.mark.parametrize("name", params(CASES, OUT_OF_SCOPE, DIFFERENCES))
def test_kueue_fair_preemptions(name: str) -> None:
    """Kueue TestFairPreemptions' case ``name``: budcore preempts the same workloads for the same
    reasons, and leaves the snapshot as it was."""
    check(CASES[name])
