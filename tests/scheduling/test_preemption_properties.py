"""Preemption invariants over random cohorts, policies, admitted workloads and preemptors.

Every property is checked against an independent recomputation from the snapshot (quota
``available`` after removing the victims), not against the preemptor's own bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from support.admission import T0, config

from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import JobType
from budcore.ports.preemption_cost import VictimInfo
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
    PreemptionDecision,
    PreemptionMode,
    PreemptionPolicy,
    PreemptionReason,
    find_victims,
)
from budcore.scheduling.queues import (
    BorrowWithinCohort,
    BorrowWithinCohortPolicy,
    ReclaimWithinCohort,
    WithinClusterQueue,
)
from budcore.scheduling.quota import FR, potential_available
from budcore.testing.examples import examples

GPU = "nvidia.com/gpu"
FLAVORS = ("f0", "f1")
NOW = T0 + timedelta(hours=6)
EXAMPLES = examples(200)


@dataclass(frozen=True)
class World:
    snapshot: AdmissionSnapshot
    needs: NeedsPreemption
    info: dict[str, VictimInfo]
    preemptor_timestamp: float


@st.composite
def worlds(draw: st.DrawFn, fair: bool = False) -> World:
    n_cqs = draw(st.integers(2, 3)) if fair else draw(st.integers(1, 3))
    in_cohort = draw(st.booleans()) or fair
    cqs = []
    for i in range(n_cqs):
        flavors = tuple(
            FlavorQuotas(
                name=f,
                resources=(
                    ResourceQuota(
                        name=GPU,
                        nominal_quota=draw(st.integers(0, 6)) * 1000,
                        borrowing_limit=draw(st.none() | st.integers(0, 6).map(lambda v: v * 1000)),
                    ),
                ),
            )
            for f in draw(st.lists(st.sampled_from(FLAVORS), min_size=1, max_size=2, unique=True))
        )
        cqs.append(
            ClusterQueue(
                name=f"q{i}",
                cohort="pool" if in_cohort else None,
                resource_groups=(ResourceGroup(covered_resources=(GPU,), flavors=flavors),),
                preemption=ClusterQueuePreemption(
                    within_cluster_queue=draw(st.sampled_from(list(WithinClusterQueue))),
                    reclaim_within_cohort=ReclaimWithinCohort.ANY
                    if fair
                    else draw(st.sampled_from(list(ReclaimWithinCohort))),
                    borrow_within_cohort=BorrowWithinCohort(
                        policy=BorrowWithinCohortPolicy.NEVER
                        if fair
                        else draw(st.sampled_from(list(BorrowWithinCohortPolicy))),
                        max_priority_threshold=draw(st.none() | st.integers(0, 3)),
                    ),
                ),
            )
        )
    tree = QuotaTree(config(cqs))
    usage = QuotaUsage(tree)
    admitted: dict[str, AdmittedWorkload] = {}
    info: dict[str, VictimInfo] = {}
    for k in range(draw(st.integers(2, 20))):
        cq = draw(st.sampled_from(cqs))
        flavor = draw(st.sampled_from([f.name for f in cq.resource_groups[0].flavors]))
        amount = draw(st.integers(1, 2)) * 1000
        node = tree.cluster_queues[cq.name]
        fr = (flavor, GPU)
        if amount > usage.available(node, fr):
            continue
        usage.add(cq.name, {fr: amount})
        at = T0 + timedelta(minutes=draw(st.integers(0, 300)))
        job_id = JobId(f"w{k}")
        prio = 0 if fair else draw(st.integers(0, 2))
        admitted[job_id] = AdmittedWorkload(
            job_id=job_id,
            tenant=TenantId(f"ns-{cq.name}"),
            cluster_queue=cq.name,
            local_queue=(f"ns-{cq.name}", cq.name),
            usage={fr: amount},
            flavors={"main": {GPU: flavor}},
            priority=prio,
            admitted_at=at,
            timestamp=at.timestamp() - draw(st.integers(0, 600)),
        )
        info[job_id] = VictimInfo(
            job_id=job_id,
            job_type=draw(st.sampled_from(list(JobType))),
            critical=draw(st.integers(0, 9)) == 0,
            preemptible=draw(st.integers(0, 9)) != 0,
            started_at=at,
            last_checkpoint_at=draw(st.none() | st.just(at + (NOW - at) / 2)),
            progress=draw(st.none() | st.floats(0, 1)),
        )
    cq = draw(st.sampled_from(cqs))
    flavor = draw(st.sampled_from([f.name for f in cq.resource_groups[0].flavors]))
    node = tree.cluster_queues[cq.name]
    fr = (flavor, GPU)
    # Mostly more than is available now (so preemption is needed), never more than could ever be.
    potential = potential_available(node, fr) // 1000
    low = min(potential, max(0, usage.available(node, fr)) // 1000 + 1)
    amount = draw(st.integers(max(1, low), max(1, potential))) * 1000
    needs = NeedsPreemption(
        job_id=JobId("preemptor"),
        tenant=TenantId(f"ns-{cq.name}"),
        cluster_queue=cq.name,
        flavors={"main": {GPU: flavor}},
        usage={fr: amount},
        borrows=False,
        priority=0 if fair else draw(st.integers(0, 4)),
        why="test",
    )
    ts = (T0 + timedelta(minutes=draw(st.integers(0, 300)))).timestamp()
    return World(AdmissionSnapshot(tree, usage, admitted), needs, info, ts)


def fits_after(world: World, victims: set[str], allow_borrowing: bool) -> bool:
    """Independent check: evict ``victims`` from a fresh usage, then test the request."""
    snap = world.snapshot
    usage = QuotaUsage(snap.tree)
    for w in snap.admitted.values():
        if w.job_id not in victims:
            usage.add(w.cluster_queue, w.usage)
    node = snap.tree.cluster_queues[world.needs.cluster_queue]
    for fr, amount in world.needs.usage.items():
        if amount > usage.available(node, fr):
            return False
        if not allow_borrowing and usage.get(node, fr) + amount > node.subtree_quota.get(fr, 0):
            return False
    return True


def decide(world: World, mode: PreemptionMode, fair: bool = False, exact: int = 12) -> PreemptionDecision:
    policy = PreemptionPolicy(
        mode=mode, fair_sharing=fair, min_runtime_before_preemption=timedelta(0), exact_search_limit=exact
    )
    return find_victims(
        world.snapshot,
        world.needs,
        now=NOW,
        policy=policy,
        victim_info=world.info,
        preemptor_timestamp=world.preemptor_timestamp,
    )


def check_decision(world: World, decision: PreemptionDecision) -> None:
    cq = world.snapshot.tree.config.cluster_queues[world.needs.cluster_queue]
    ids: set[str] = {str(v.job_id) for v in decision.victims}
    if decision.status is not DecisionStatus.PREEMPT:
        assert not ids
        return
    assert ids
    for v in decision.victims:
        info = world.info[v.job_id]
        assert not info.critical and info.preemptible
        same = v.cluster_queue == world.needs.cluster_queue
        p = world.needs.priority
        if same:
            assert v.priority < p or (
                v.priority == p
                and cq.preemption.within_cluster_queue is WithinClusterQueue.LOWER_OR_NEWER_EQUAL_PRIORITY
            )
        else:
            assert v.priority < p or cq.preemption.reclaim_within_cohort is ReclaimWithinCohort.ANY
    # The freed resources suffice, and every victim is needed.
    assert fits_after(world, ids, decision.borrowing_allowed)
    for job_id in ids:
        assert not fits_after(world, ids - {job_id}, decision.borrowing_allowed), f"{job_id} was not needed"


@settings(max_examples=EXAMPLES)
@given(worlds())
def test_kueue_mode_invariants(world: World) -> None:
    check_decision(world, decide(world, PreemptionMode.KUEUE))


@settings(max_examples=EXAMPLES)
@given(worlds())
def test_cost_mode_invariants_and_never_costlier_than_kueue(world: World) -> None:
    kueue = decide(world, PreemptionMode.KUEUE)
    cost = decide(world, PreemptionMode.COST)
    check_decision(world, cost)
    if kueue.possible:
        assert cost.possible
        assert cost.total_cost <= kueue.total_cost


@settings(max_examples=EXAMPLES)
@given(worlds())
def test_greedy_cost_mode_invariants_and_bound(world: World) -> None:
    """With the exact search disabled, the greedy still satisfies every invariant and its bound."""
    kueue = decide(world, PreemptionMode.KUEUE)
    greedy = decide(world, PreemptionMode.COST, exact=0)
    check_decision(world, greedy)
    if kueue.possible:
        assert greedy.possible
        assert greedy.total_cost <= kueue.total_cost


@settings(max_examples=EXAMPLES)
@given(worlds(fair=True))
def test_fair_sharing_invariants_and_no_preemption_cycles(world: World) -> None:
    """A preempts B under fair sharing; B, requeued with the same request, must not preempt A by
    fair sharing.

    B may still reclaim from A when B's ClusterQueue is within its nominal quota with B admitted
    (A's evictions can leave it below nominal): Kueue's ``FairSharingPreemptWithinNominal`` (on by
    default) lets a ClusterQueue always reclaim its nominal quota from borrowers, with reason
    InCohortReclamation (preemption_fair_test.go, "reclaim nominal from user using the most").
    """
    decision = decide(world, PreemptionMode.KUEUE, fair=True)
    check_decision(world, decision)
    if not decision.possible:
        return
    snap = world.snapshot
    usage = snap.usage.overlay()
    admitted = dict(snap.admitted)
    for v in decision.victims:
        usage.add(v.cluster_queue, v.usage, -1)
        del admitted[v.job_id]
    needs = world.needs
    usage.add(needs.cluster_queue, needs.usage)
    admitted[needs.job_id] = AdmittedWorkload(
        needs.job_id,
        needs.tenant,
        needs.cluster_queue,
        ("ns", "lq"),
        needs.usage,
        needs.flavors,
        needs.priority,
        NOW,
        0.0,
    )
    info = dict(world.info)
    info[needs.job_id] = VictimInfo(job_id=needs.job_id, started_at=NOW)
    after = AdmissionSnapshot(snap.tree, usage, admitted)
    for v in decision.victims:
        if v.reason is not PreemptionReason.IN_COHORT_FAIR_SHARING:
            continue
        back = NeedsPreemption(
            v.job_id, v.tenant, v.cluster_queue, {}, dict[FR, int](v.usage), False, v.priority, "requeued"
        )
        again = find_victims(
            after, back, now=NOW, policy=PreemptionPolicy(fair_sharing=True), victim_info=info
        )
        for victim in again.victims:
            if victim.job_id == needs.job_id:
                assert victim.reason is PreemptionReason.IN_COHORT_RECLAMATION, again.explain()
                assert "within its nominal quota" in victim.why, again.explain()
