"""Preemption in ``kueue`` mode: Kueue's own test cases, transcribed; plus cost mode, budget, aging.

The classic cases are transcribed from ``TestPreemption`` in kubernetes-sigs/kueue
``pkg/scheduler/preemption/preemption_test.go`` (Apache-2.0): same ClusterQueues (``standalone``,
``c1``/``c2`` in ``cohort``, ``l1`` in ``legion``, ``preventStarvation``), same admitted workloads,
same incoming workload and the same expected victims with Kueue's reason. The fair-sharing cases
follow rules S2-a/S2-b of KEP-1714 (kubernetes-sigs/kueue ``keps/1714-fair-sharing``) as
implemented by ``fairPreemptions`` in the same file, with shares computed by hand in the docstring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from support.admission import T0, config

from budcore.domain.errors import NotFoundError, ValidationError
from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import Job, JobType
from budcore.domain.priority import JobPriority
from budcore.domain.quantity import parse_quantity
from budcore.ports.preemption_cost import PreemptionCostModel, VictimInfo
from budcore.scheduling import (
    AdmissionSnapshot,
    AdmittedWorkload,
    ClusterQueue,
    ClusterQueuePreemption,
    FlavorQuotas,
    NeedsPreemption,
    QuotaTree,
    QuotaUsage,
    ResourceGroup,
    ResourceQuota,
)
from budcore.scheduling.preemption import (
    DecisionStatus,
    FairSharingStrategy,
    PreemptionMode,
    PreemptionPolicy,
    PreemptionReason,
    find_victims,
)
from budcore.scheduling.preemption.aging import AgingPolicy, effective_priority, inherited_priorities
from budcore.scheduling.preemption.cost import DefaultPreemptionCostModel
from budcore.scheduling.preemption.guards import PreemptionBudget
from budcore.scheduling.queues import (
    BorrowWithinCohort,
    BorrowWithinCohortPolicy,
    ReclaimWithinCohort,
    WithinClusterQueue,
)

CPU, MEM = "cpu", "memory"
NOW = T0 + timedelta(hours=10)
W, LP, LONE, ANY, NEVER = (
    WithinClusterQueue,
    WithinClusterQueue.LOWER_PRIORITY,
    WithinClusterQueue.LOWER_OR_NEWER_EQUAL_PRIORITY,
    ReclaimWithinCohort.ANY,
    ReclaimWithinCohort.NEVER,
)


def q(v: object) -> int:
    return parse_quantity(v)  # type: ignore[arg-type]


def rq(name: str, nominal: object, borrowing: object | None = None) -> ResourceQuota:
    return ResourceQuota(
        name=name, nominal_quota=q(nominal), borrowing_limit=None if borrowing is None else q(borrowing)
    )


def group(flavor_quotas: Mapping[str, Sequence[ResourceQuota]]) -> ResourceGroup:
    first = next(iter(flavor_quotas.values()))
    return ResourceGroup(
        covered_resources=tuple(r.name for r in first),
        flavors=tuple(FlavorQuotas(name=f, resources=tuple(rs)) for f, rs in flavor_quotas.items()),
    )


def preemption(
    within: WithinClusterQueue = W.NEVER,
    reclaim: ReclaimWithinCohort = NEVER,
    borrow: BorrowWithinCohort | None = None,
) -> ClusterQueuePreemption:
    return ClusterQueuePreemption(
        within_cluster_queue=within,
        reclaim_within_cohort=reclaim,
        borrow_within_cohort=borrow or BorrowWithinCohort(),
    )


def kueue_default_cluster_queues() -> list[ClusterQueue]:
    """``defaultClusterQueues`` of Kueue's ``TestPreemption`` (the ones the cases below use)."""
    return [
        ClusterQueue(
            name="standalone",
            resource_groups=(
                group({"default": [rq(CPU, 6)]}),
                group({"alpha": [rq(MEM, "3Gi")], "beta": [rq(MEM, "3Gi")]}),
            ),
            preemption=preemption(LP),
        ),
        ClusterQueue(
            name="c1",
            cohort="cohort",
            resource_groups=(group({"default": [rq(CPU, 6, 6), rq(MEM, "3Gi", "3Gi")]}),),
            preemption=preemption(LP, ReclaimWithinCohort.LOWER_PRIORITY),
        ),
        ClusterQueue(
            name="c2",
            cohort="cohort",
            resource_groups=(group({"default": [rq(CPU, 6, 6), rq(MEM, "3Gi", "3Gi")]}),),
            preemption=preemption(W.NEVER, ANY),
        ),
        ClusterQueue(
            name="l1",
            cohort="legion",
            resource_groups=(group({"default": [rq(CPU, 6, 12), rq(MEM, "3Gi", "6Gi")]}),),
            preemption=preemption(LP, ReclaimWithinCohort.LOWER_PRIORITY),
        ),
        ClusterQueue(
            name="preventStarvation",
            resource_groups=(group({"default": [rq(CPU, 6)]}),),
            preemption=preemption(LONE),
        ),
    ]


Admitted = (
    tuple[str, str, int, Mapping[tuple[str, str], object]]
    | tuple[str, str, int, Mapping[tuple[str, str], object], float]
)


def snapshot(cqs: Sequence[ClusterQueue], admitted: Sequence[Admitted]) -> AdmissionSnapshot:
    """``admitted``: (name, ClusterQueue, priority, {(flavor, resource): amount}[, seconds after T0])."""
    tree = QuotaTree(config(cqs))
    usage = QuotaUsage(tree)
    workloads: dict[str, AdmittedWorkload] = {}
    for entry in admitted:
        name, cq_name, prio, amounts = entry[0], entry[1], entry[2], entry[3]
        offset = entry[4] if len(entry) > 4 else 0.0
        at = T0 + timedelta(seconds=offset)
        amounts_m = {fr: q(v) for fr, v in amounts.items()}
        usage.add(cq_name, amounts_m)
        workloads[name] = AdmittedWorkload(
            job_id=JobId(name),
            tenant=TenantId(f"ns-{cq_name}"),
            cluster_queue=cq_name,
            local_queue=(f"ns-{cq_name}", cq_name),
            usage=amounts_m,
            flavors={},
            priority=prio,
            admitted_at=at,
            timestamp=at.timestamp(),
        )
    return AdmissionSnapshot(tree, usage, workloads)


def incoming(
    cq_name: str, prio: int, amounts: Mapping[tuple[str, str], object], name: str = "in"
) -> NeedsPreemption:
    return NeedsPreemption(
        job_id=JobId(name),
        tenant=TenantId(f"ns-{cq_name}"),
        cluster_queue=cq_name,
        flavors={},
        usage={fr: q(v) for fr, v in amounts.items()},
        borrows=False,
        priority=prio,
        why="test",
    )


def cpu(n: object) -> dict[tuple[str, str], object]:
    return {("default", CPU): n}


KUEUE_CASES: dict[str, tuple[list[Admitted], NeedsPreemption, dict[str, PreemptionReason]]] = {
    "preempt lowest priority": (
        [
            ("low", "standalone", -1, cpu(2)),
            ("mid", "standalone", 0, cpu(2)),
            ("high", "standalone", 1, cpu(2)),
        ],
        incoming("standalone", 1, cpu(2)),
        {"low": PreemptionReason.IN_CLUSTER_QUEUE},
    ),
    "preempt multiple": (
        [
            ("low", "standalone", -1, cpu(2)),
            ("mid", "standalone", 0, cpu(2)),
            ("high", "standalone", 1, cpu(2)),
        ],
        incoming("standalone", 1, cpu(3)),
        {"low": PreemptionReason.IN_CLUSTER_QUEUE, "mid": PreemptionReason.IN_CLUSTER_QUEUE},
    ),
    "no preemption for low priority": (
        [("low", "standalone", -1, cpu(3)), ("mid", "standalone", 0, cpu(3))],
        incoming("standalone", -1, cpu(1)),
        {},
    ),
    "not enough low priority workloads": (
        [("low", "standalone", -1, cpu(3)), ("mid", "standalone", 0, cpu(3))],
        incoming("standalone", 0, cpu(4)),
        {},
    ),
    "some free quota, preempt low priority": (
        [
            ("low", "standalone", -1, cpu(1)),
            ("mid", "standalone", 0, cpu(1)),
            ("high", "standalone", 1, cpu(3)),
        ],
        incoming("standalone", 1, cpu(2)),
        {"low": PreemptionReason.IN_CLUSTER_QUEUE},
    ),
    "minimal set excludes low priority": (
        [
            ("low", "standalone", -1, cpu(1)),
            ("mid", "standalone", 0, cpu(2)),
            ("high", "standalone", 1, cpu(3)),
        ],
        incoming("standalone", 1, cpu(2)),
        {"mid": PreemptionReason.IN_CLUSTER_QUEUE},
    ),
    "only preempt workloads using the chosen flavor": (
        [
            ("low", "standalone", -1, {("alpha", MEM): "2Gi"}),
            ("mid", "standalone", 0, {("beta", MEM): "1Gi"}),
            ("high", "standalone", 1, {("beta", MEM): "1Gi"}),
        ],
        incoming("standalone", 1, {("default", CPU): 1, ("beta", MEM): "2Gi"}),
        {"mid": PreemptionReason.IN_CLUSTER_QUEUE},
    ),
    "reclaim quota from borrower": (
        [("c1-low", "c1", -1, cpu(3)), ("c2-mid", "c2", 0, cpu(3)), ("c2-high", "c2", 1, cpu(6))],
        incoming("c1", 1, cpu(3)),
        {"c2-mid": PreemptionReason.IN_COHORT_RECLAMATION},
    ),
    "reclaim quota if workload requests 0 resources for a resource at nominal quota": (
        [
            ("c1-low", "c1", -1, {("default", CPU): 3, ("default", MEM): "3Gi"}),
            ("c2-mid", "c2", 0, cpu(3)),
            ("c2-high", "c2", 1, cpu(6)),
        ],
        incoming("c1", 1, {("default", CPU): 3, ("default", MEM): 0}),
        {"c2-mid": PreemptionReason.IN_COHORT_RECLAMATION},
    ),
    "no workloads borrowing": (
        [("c1-high", "c1", 1, cpu(4)), ("c2-low-1", "c2", -1, cpu(4))],
        incoming("c1", 1, cpu(4)),
        {},
    ),
    "not enough workloads borrowing": (
        [("c1-high", "c1", 1, cpu(4)), ("c2-low-1", "c2", -1, cpu(4)), ("c2-low-2", "c2", -1, cpu(4))],
        incoming("c1", 1, cpu(4)),
        {},
    ),
    "preempting locally and borrowing other resources in cohort, without cohort candidates": (
        [("c1-low", "c1", -1, cpu(4)), ("c2-low-1", "c2", -1, cpu(4)), ("c2-high-2", "c2", 1, cpu(4))],
        incoming("c1", 1, {("default", CPU): 4, ("default", MEM): "5Gi"}),
        {"c1-low": PreemptionReason.IN_CLUSTER_QUEUE},
    ),
    "preempting locally and borrowing same resource in cohort": (
        [("c1-med", "c1", 0, cpu(4)), ("c1-low", "c1", -1, cpu(4)), ("c2-low-1", "c2", -1, cpu(4))],
        incoming("c1", 1, cpu(4)),
        {"c1-low": PreemptionReason.IN_CLUSTER_QUEUE},
    ),
    "preempting locally and borrowing other resources in cohort, with cohort candidates": (
        [
            ("c1-med", "c1", 0, cpu(4)),
            ("c2-low-1", "c2", -1, cpu(5)),
            ("c2-low-2", "c2", -1, cpu(1)),
            ("c2-low-3", "c2", -1, cpu(1)),
        ],
        incoming("c1", 1, {("default", CPU): 2, ("default", MEM): "5Gi"}),
        {"c1-med": PreemptionReason.IN_CLUSTER_QUEUE},
    ),
    "preempting locally and not borrowing same resource in 1-queue cohort": (
        [("l1-med", "l1", 0, cpu(4)), ("l1-low", "l1", -1, cpu(2))],
        incoming("l1", 1, cpu(4)),
        {"l1-med": PreemptionReason.IN_CLUSTER_QUEUE},
    ),
    "do not reclaim borrowed quota from same priority for withinCohort=ReclaimFromLowerPriority": (
        [("c1", "c1", 0, cpu(2)), ("c2-1", "c2", 0, cpu(4)), ("c2-2", "c2", 0, cpu(4))],
        incoming("c1", 0, cpu(4)),
        {},
    ),
    "reclaim borrowed quota from same priority for withinCohort=ReclaimFromAny": (
        [("c1-1", "c1", 0, cpu(4)), ("c1-2", "c1", 1, cpu(4)), ("c2", "c2", 0, cpu(2))],
        incoming("c2", 0, cpu(4)),
        {"c1-1": PreemptionReason.IN_COHORT_RECLAMATION},
    ),
    "preempt from all ClusterQueues in cohort": (
        [
            ("c1-low", "c1", -1, cpu(3)),
            ("c1-mid", "c1", 0, cpu(2)),
            ("c2-low", "c2", -1, cpu(3)),
            ("c2-mid", "c2", 0, cpu(4)),
        ],
        incoming("c1", 0, cpu(4)),
        {"c1-low": PreemptionReason.IN_CLUSTER_QUEUE, "c2-low": PreemptionReason.IN_COHORT_RECLAMATION},
    ),
    "each podset preempts a different flavor": (
        [
            ("low-alpha", "standalone", -1, {("alpha", MEM): "2Gi"}),
            ("low-beta", "standalone", -1, {("beta", MEM): "2Gi"}),
        ],
        incoming("standalone", 0, {("alpha", MEM): "2Gi", ("beta", MEM): "2Gi"}),
        {"low-alpha": PreemptionReason.IN_CLUSTER_QUEUE, "low-beta": PreemptionReason.IN_CLUSTER_QUEUE},
    ),
}


@pytest.mark.parametrize("case", sorted(KUEUE_CASES))
def test_kueue_classic_cases(case: str) -> None:
    """Each case: Kueue TestPreemption's case of the same name (preemption_test.go)."""
    admitted, needs, want = KUEUE_CASES[case]
    snap = snapshot(kueue_default_cluster_queues(), admitted)
    before = snap.usage.flatten()
    decision = find_victims(snap, needs, now=NOW)
    assert {v.job_id: v.reason for v in decision.victims} == want
    assert decision.possible == bool(want)
    assert snap.usage.flatten() == before  # pure: the snapshot is untouched
    if not want and decision.status is DecisionStatus.IMPOSSIBLE:
        assert decision.reason.startswith("no preemption possible: ")
    # Kueue's test hands the preemptor a Preempt assignment even where the request would fit the
    # snapshot ("no workloads borrowing": 4 of the cohort's 12 CPUs are free); budcore re-derives
    # which flavor-resources need preemption and answers FITS there, with no victims either way.
    assert (decision.status is DecisionStatus.FITS) == (case == "no workloads borrowing")


def test_kueue_preempt_newer_workloads_with_the_same_priority() -> None:
    """Kueue case "preempt newer workloads with the same priority" (LowerOrNewerEqualPriority).

    wl1 (priority 2), wl2 and wl3 (priority 1, created at ``now``; wl2 admitted a second later);
    the preemptor (priority 1) was created 15 s earlier: wl2, the most recently admitted, goes.
    """
    admitted: list[Admitted] = [
        ("wl1", "preventStarvation", 2, cpu(2), 0.0),
        ("wl2", "preventStarvation", 1, cpu(2), 1.0),
        ("wl3", "preventStarvation", 1, cpu(2), 0.0),
    ]
    snap = snapshot(kueue_default_cluster_queues(), admitted)
    snap = AdmissionSnapshot(
        snap.tree,
        snap.usage,
        {k: _with_timestamp(w, T0.timestamp()) for k, w in snap.admitted.items()},
    )
    needs = incoming("preventStarvation", 1, cpu(2))
    decision = find_victims(
        snap, needs, now=NOW, preemptor_timestamp=(T0 - timedelta(seconds=15)).timestamp()
    )
    assert decision.victim_ids == ("wl2",)
    assert "equal priority" in decision.victims[0].why
    # Without the preemptor's timestamp, equal priorities are never preempted.
    assert find_victims(snap, needs, now=NOW).status is DecisionStatus.IMPOSSIBLE


def _with_timestamp(w: AdmittedWorkload, ts: float) -> AdmittedWorkload:
    return AdmittedWorkload(
        w.job_id, w.tenant, w.cluster_queue, w.local_queue, w.usage, w.flavors, w.priority, w.admitted_at, ts
    )


def _shared_cqs(policy: BorrowWithinCohort) -> list[ClusterQueue]:
    """Kueue's ``a_standard``/``b_standard``/``shared`` (cohort ``with_shared_cq``)."""
    return [
        ClusterQueue(
            name="a_standard",
            cohort="with_shared_cq",
            resource_groups=(group({"default": [rq(CPU, 1, 12)]}),),
            preemption=preemption(W.NEVER, ReclaimWithinCohort.LOWER_PRIORITY, policy),
        ),
        ClusterQueue(
            name="b_standard",
            cohort="with_shared_cq",
            resource_groups=(group({"default": [rq(CPU, 1, 12)]}),),
            preemption=preemption(LP, ANY, policy),
        ),
        ClusterQueue(
            name="shared", cohort="with_shared_cq", resource_groups=(group({"default": [rq(CPU, 10)]}),)
        ),
    ]


def test_borrow_within_cohort_reclaims_below_threshold_while_borrowing() -> None:
    """borrowWithinCohort LowerPriority, maxPriorityThreshold 0 (Kueue's with_shared_cq queues).

    b_standard borrows 9 (workload priority 0 ≤ threshold 0); a_standard (nominal 1) wants 10 at
    priority 1: threshold = min(1, 0 + 1) = 1, so b's workload is below it and a may borrow after
    reclaiming it (reason InCohortReclaimWhileBorrowing).
    """
    bwc = BorrowWithinCohort(policy=BorrowWithinCohortPolicy.LOWER_PRIORITY, max_priority_threshold=0)
    snap = snapshot(_shared_cqs(bwc), [("b-low", "b_standard", 0, cpu(10))])
    decision = find_victims(snap, incoming("a_standard", 1, cpu(10)), now=NOW)
    assert [(v.job_id, v.reason) for v in decision.victims] == [
        ("b-low", PreemptionReason.IN_COHORT_RECLAIM_WHILE_BORROWING)
    ]
    assert decision.borrowing_allowed
    # Above the threshold (priority 1 ≥ 1) the same reclaim would need borrowing: not allowed.
    snap = snapshot(_shared_cqs(bwc), [("b-mid", "b_standard", 1, cpu(10))])
    decision = find_victims(snap, incoming("a_standard", 2, cpu(10)), now=NOW)
    assert decision.status is DecisionStatus.IMPOSSIBLE


def _fair_cqs() -> list[ClusterQueue]:
    return [
        ClusterQueue(
            name=n,
            cohort="all",
            resource_groups=(group({"default": [rq(CPU, 3)]}),),
            preemption=preemption(LP, ANY),
        )
        for n in ("a", "b", "c")
    ]


FAIR = PreemptionPolicy(fair_sharing=True)


def test_fair_sharing_reclaims_from_the_queue_with_the_highest_share() -> None:
    """Rule S2-a (LessThanOrEqualToFinalShare). a, b, c nominal 3 CPU each (lendable 9).

    a uses 2 CPU, b runs six 1-CPU workloads (borrows 3: share 3000·1000/9000 = 333), c one (share
    0); a asks 2 CPU at the same priority (4 of its 3: its share after admission 111). b's newest
    goes (b → 222 ≥ 111), b still borrows and stays on top, its next newest goes (b → 111 ≥ 111):
    a fits. Two victims from b.
    """
    admitted: list[Admitted] = [(f"a{i}", "a", 0, cpu(1), float(i)) for i in range(2)]
    admitted += [(f"b{i}", "b", 0, cpu(1), float(i)) for i in range(6)]
    admitted += [("c0", "c", 0, cpu(1), 0.0)]
    snap = snapshot(_fair_cqs(), admitted)
    decision = find_victims(snap, incoming("a", 0, cpu(2)), now=NOW, policy=FAIR)
    assert sorted(decision.victim_ids) == ["b4", "b5"]
    assert {v.reason for v in decision.victims} == {PreemptionReason.IN_COHORT_FAIR_SHARING}
    assert "dominant resource share" in decision.victims[0].why


def test_fair_sharing_within_nominal_reclaims_without_comparing_shares() -> None:
    """A preemptor whose ClusterQueue stays within its nominal quota reclaims from the borrowing
    queues in the same order, but unconditionally and with reason InCohortReclamation: Kueue's
    ``FairSharingPreemptWithinNominal`` (on by default; preemption_fair_test.go, "reclaim nominal
    from user using the most"). a uses nothing and asks 2 of its 3 CPU; b borrows 3, c uses 3."""
    admitted: list[Admitted] = [(f"b{i}", "b", 0, cpu(1), float(i)) for i in range(6)]
    admitted += [(f"c{i}", "c", 0, cpu(1), float(i)) for i in range(3)]
    snap = snapshot(_fair_cqs(), admitted)
    decision = find_victims(snap, incoming("a", 0, cpu(2)), now=NOW, policy=FAIR)
    assert sorted(decision.victim_ids) == ["b4", "b5"]
    assert {v.reason for v in decision.victims} == {PreemptionReason.IN_COHORT_RECLAMATION}
    assert "nominal quota" in decision.victims[0].why


def test_fair_sharing_second_strategy_less_than_initial_share() -> None:
    """Rule S2-b (LessThanInitialShare) applies only when S2-a is not enough.

    a uses its 3; b runs one 5-CPU workload (borrows 2: share 222); c uses 1. a asks 1 more (share
    after: 1000·1000/9000 = 111). S2-a: 111 ≤ share of b without it (0)? no. S2-b: 111 < 222: yes.
    """
    admitted: list[Admitted] = [("a0", "a", 0, cpu(3)), ("b0", "b", 0, cpu(5)), ("c0", "c", 0, cpu(1))]
    snap = snapshot(_fair_cqs(), admitted)
    needs = incoming("a", 0, cpu(1))
    decision = find_victims(snap, needs, now=NOW, policy=FAIR)
    assert decision.victim_ids == ("b0",)
    only_s2a = PreemptionPolicy(
        fair_sharing=True, strategies=(FairSharingStrategy.LESS_THAN_OR_EQUAL_TO_FINAL_SHARE,)
    )
    assert find_victims(snap, needs, now=NOW, policy=only_s2a).status is DecisionStatus.IMPOSSIBLE


# ---------------------------------------------------------------------------------------------
# budcore additions: guards, cost mode, budget


def _gpu_cqs() -> list[ClusterQueue]:
    return [
        ClusterQueue(
            name="train",
            resource_groups=(group({"h100": [rq("nvidia.com/gpu", 8)]}),),
            preemption=preemption(LP),
        )
    ]


def _gpus(n: int) -> dict[tuple[str, str], object]:
    return {("h100", "nvidia.com/gpu"): n}


def _training(job_id: str, started_h: float, checkpoint_h: float | None) -> VictimInfo:
    return VictimInfo(
        job_id=JobId(job_id),
        job_type=JobType.TRAINING,
        started_at=NOW - timedelta(hours=started_h),
        last_checkpoint_at=None if checkpoint_h is None else NOW - timedelta(hours=checkpoint_h),
    )


def test_cost_mode_prefers_the_job_that_just_checkpointed() -> None:
    """Kueue evicts the most recently admitted job; cost mode the one that loses the least work."""
    admitted: list[Admitted] = [("old", "train", 0, _gpus(4), 0.0), ("new", "train", 0, _gpus(4), 60.0)]
    snap = snapshot(_gpu_cqs(), admitted)
    info = {"old": _training("old", 9, 0.001), "new": _training("new", 8, 0.9)}
    needs = incoming("train", 10, _gpus(4))
    model = DefaultPreemptionCostModel(prices={"h100": Decimal("3.00")})
    kueue = find_victims(snap, needs, now=NOW, victim_info=info, policy=PreemptionPolicy(cost_model=model))
    cost = find_victims(
        snap,
        needs,
        now=NOW,
        victim_info=info,
        policy=PreemptionPolicy(mode=PreemptionMode.COST, cost_model=model),
    )
    assert kueue.victim_ids == ("new",)
    assert cost.victim_ids == ("old",)
    assert cost.total_cost < kueue.total_cost
    # 0.9 h × 4 GPUs lost for "new"; "old" checkpointed 3.6 s ago (within the 30 s grace).
    assert kueue.lost_gpu_seconds == pytest.approx(0.9 * 3600 * 4)
    assert cost.lost_gpu_seconds == 0
    assert any("cost: " not in a.label for a in cost.alternatives)
    assert "evict old" in cost.explain()


def test_guards_protect_critical_non_preemptible_and_young_jobs() -> None:
    admitted: list[Admitted] = [
        ("crit", "train", 0, _gpus(4), 0.0),
        ("pinned", "train", 0, _gpus(2), 1.0),
        ("young", "train", 0, _gpus(2), 2.0),
    ]
    snap = snapshot(_gpu_cqs(), admitted)
    info = {
        "crit": VictimInfo(job_id=JobId("crit"), critical=True, started_at=NOW - timedelta(hours=1)),
        "pinned": VictimInfo(job_id=JobId("pinned"), preemptible=False, started_at=NOW - timedelta(hours=1)),
        "young": VictimInfo(job_id=JobId("young"), started_at=NOW - timedelta(minutes=2)),
    }
    needs = incoming("train", 10, _gpus(2))
    kueue = find_victims(snap, needs, now=NOW, victim_info=info)
    assert kueue.victim_ids == ("young",)  # Kueue has no minimum runtime
    cost = find_victims(
        snap, needs, now=NOW, victim_info=info, policy=PreemptionPolicy(mode=PreemptionMode.COST)
    )
    assert cost.status is DecisionStatus.IMPOSSIBLE
    assert any("critical" in e for e in cost.excluded)
    assert any("not preemptible" in e for e in cost.excluded)
    assert any("min_runtime_before_preemption" in e for e in cost.excluded)


def test_budget_limits_preemptions_per_sliding_hour() -> None:
    budget = PreemptionBudget(limit=2)
    assert budget.allow(NOW, 2)
    budget.record(NOW - timedelta(minutes=50))
    budget.record(NOW - timedelta(minutes=10))
    assert budget.remaining(NOW) == 0
    assert budget.remaining(NOW + timedelta(minutes=11)) == 1  # the first left the window
    admitted: list[Admitted] = [("a", "train", 0, _gpus(8))]
    snap = snapshot(_gpu_cqs(), admitted)
    decision = find_victims(snap, incoming("train", 10, _gpus(1)), now=NOW, budget=budget)
    assert decision.status is DecisionStatus.IMPOSSIBLE
    assert "budget" in decision.reason
    with pytest.raises(ValidationError):
        PreemptionBudget(limit=-1)


def test_already_evicting_workloads_are_taken_first() -> None:
    """Kueue's first ordering criterion: a workload already being evicted goes before the rest."""
    admitted: list[Admitted] = [("a", "train", 0, _gpus(4), 0.0), ("b", "train", 0, _gpus(4), 60.0)]
    snap = snapshot(_gpu_cqs(), admitted)
    needs = incoming("train", 10, _gpus(4))
    assert find_victims(snap, needs, now=NOW).victim_ids == ("b",)
    assert find_victims(snap, needs, now=NOW, evicting={"a"}).victim_ids == ("a",)


def test_victim_info_from_job() -> None:
    job = Job(
        name="t",
        tenant=TenantId("ml"),
        job_type=JobType.TRAINING,
        priority=JobPriority.CRITICAL,
        preemptible=False,
        checkpoint_interval=timedelta(0),
        actual_start=NOW - timedelta(hours=1),
    )
    info = VictimInfo.from_job(job, progress=0.5)
    assert info.critical and not info.preemptible and info.checkpoint_interval == timedelta(0)
    assert info.protected == "critical job"
    assert info.started_at == NOW - timedelta(hours=1) and info.progress == 0.5


def test_fits_already_and_unknown_cluster_queue() -> None:
    snap = snapshot(_gpu_cqs(), [])
    assert find_victims(snap, incoming("train", 0, _gpus(1)), now=NOW).status is DecisionStatus.FITS
    with pytest.raises(NotFoundError):
        find_victims(snap, incoming("nope", 0, _gpus(1)), now=NOW)


def test_policy_and_info_validation_name_the_field() -> None:
    with pytest.raises(ValidationError, match=r"strategies\[1\]"):
        PreemptionPolicy(
            strategies=(
                FairSharingStrategy.LESS_THAN_INITIAL_SHARE,
                FairSharingStrategy.LESS_THAN_OR_EQUAL_TO_FINAL_SHARE,
            )
        )
    with pytest.raises(ValidationError, match="progress"):
        VictimInfo(job_id=JobId("x"), progress=1.5)
    with pytest.raises(ValidationError, match="started_at"):
        VictimInfo(job_id=JobId("x"), started_at=NOW.replace(tzinfo=None))


def test_default_cost_model_breakdown() -> None:
    model: PreemptionCostModel = DefaultPreemptionCostModel(prices={"h100": Decimal("3.60")})
    usage = {("h100", "nvidia.com/gpu"): 2000, ("h100", "cpu"): 16000}
    # Training, no checkpoint reported: assumed hourly checkpoints → 30 min lost of a 2.5 h run.
    train = VictimInfo(job_id=JobId("t"), job_type=JobType.TRAINING, started_at=NOW - timedelta(hours=2.5))
    c = model.cost(train, usage, NOW)
    assert c.lost_gpu_seconds == pytest.approx(2 * 1800)
    assert c.lost_work == Decimal("3.60")  # 2 GPUs × 0.5 h × 3.60
    assert c.restart_overhead == Decimal("1.20")  # 10 min restart × 2 GPUs × 3.60/h
    # Service: nothing in flight, only the model-load restart; near completion adds the penalty.
    svc = VictimInfo(
        job_id=JobId("s"), job_type=JobType.SERVICE, started_at=NOW - timedelta(hours=5), progress=0.95
    )
    c = model.cost(svc, usage, NOW)
    assert (
        c.lost_work == 0
        and c.restart_overhead == Decimal("0.60")
        and c.near_completion_penalty == Decimal(1000)
    )
    # Batch without checkpoints loses everything since it started.
    batch = VictimInfo(job_id=JobId("b"), job_type=JobType.BATCH, started_at=NOW - timedelta(hours=1))
    assert model.cost(batch, usage, NOW).lost_gpu_seconds == pytest.approx(7200)
    assert model.cost(VictimInfo(job_id=JobId("p")), usage, NOW).total == 0  # not started


# ---------------------------------------------------------------------------------------------
# Priority aging and inheritance


def test_aging_raises_priority_in_steps_up_to_the_cap_and_never_decreases() -> None:
    aging = AgingPolicy(
        step=5, interval=timedelta(minutes=10), start_after=timedelta(minutes=30), max_boost=20
    )
    since = NOW - timedelta(hours=5)
    assert effective_priority(10, queued_since=NOW, now=NOW, aging=aging) == 10
    assert effective_priority(10, queued_since=NOW - timedelta(minutes=55), now=NOW, aging=aging) == 20
    assert effective_priority(10, queued_since=since, now=NOW, aging=aging) == 30
    assert effective_priority(10, queued_since=NOW, now=NOW, aging=aging, previous=25) == 25
    capped = AgingPolicy(step=100, interval=timedelta(minutes=1), max_boost=None)
    assert effective_priority(10, queued_since=since, now=NOW, aging=capped) == 999  # below critical
    assert effective_priority(1000, queued_since=since, now=NOW, aging=capped) == 1000


def test_priority_inheritance_is_transitive_and_cycle_safe() -> None:
    priorities = {"train": 100, "prep": 1, "fetch": 0, "other": 5}
    deps = {"train": ["prep"], "prep": ["fetch"], "other": []}
    assert inherited_priorities(priorities, deps) == {"train": 100, "prep": 100, "fetch": 100, "other": 5}
    # A finished dependency (absent) neither lends nor borrows; a cycle terminates.
    assert inherited_priorities({"a": 3, "b": 7}, {"a": ["b"], "b": ["a"]}) == {"a": 7, "b": 7}
    with pytest.raises(ValidationError):
        inherited_priorities({"a": 1}, {"a": ["a"]})
    assert effective_priority(1, queued_since=NOW, now=NOW, inherited=100) == 100


def test_zero_checkpoint_interval_means_everything_since_start_is_lost() -> None:
    """A declared interval of 0 is "never checkpoints", not "use the default interval"."""
    from budcore.scheduling.preemption.cost import DefaultPreemptionCostModel

    model = DefaultPreemptionCostModel()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    never = VictimInfo(
        job_id=JobId("t"), job_type=JobType.TRAINING, started_at=start, checkpoint_interval=timedelta(0)
    )
    default = VictimInfo(job_id=JobId("t"), job_type=JobType.TRAINING, started_at=start)
    now = start + timedelta(hours=2, minutes=10)
    assert model.lost_seconds(never, now) == (7800.0, "since start")
    assert model.lost_seconds(default, now)[0] == 600.0  # the default hourly checkpoint
