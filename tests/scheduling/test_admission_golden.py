"""Golden admission scenarios: the seeds' examples and behaviours documented by Kueue."""

from __future__ import annotations

from datetime import timedelta

from support.admission import GPU, T0, config, cq, fill, job, used

from budcore.domain.cluster import Node
from budcore.domain.job import Job
from budcore.domain.priority import JobPriority
from budcore.domain.resources import ResourceVector
from budcore.scheduling import (
    AdmissionPolicy,
    Cohort,
    FairSharing,
    FlavorFungibility,
    FungibilityAction,
    LocalQueue,
    QueueingStrategy,
    Scheduler,
    StopPolicy,
)
from budcore.scheduling.assignment import AcceleratorMatcher, flavor_types_from_nodes
from budcore.scheduling.quota import available


def test_seed_two_queues_borrowing_limit_5_b_reaches_15_not_18() -> None:
    """Seed 000: quota 10 each, borrowingLimit 5; A uses 2 → B can reach 15 (not 10 + 8 = 18)."""
    s = Scheduler(
        config([cq("a", {"default": {GPU: (10, 5)}}, "pool"), cq("b", {"default": {GPU: (10, 5)}}, "pool")])
    )
    assert len(fill(s, [job("a", 2)])) == 1
    admitted = fill(s, [job("b", 1) for _ in range(20)])
    assert len(admitted) == 15
    assert used(s, "b") == 15
    waiting = [j for j in s.pending.queue("b").ordered()]  # type: ignore[union-attr]
    assert len(waiting) == 5
    reason = s.explain(waiting[0].job.id)
    assert reason == (  # Kueue's wording (flavorassigner.go fitsResourceQuota)
        "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in "
        "flavor default, 1 more needed"
    )


def test_seed_nominal_16_borrowing_limit_8_caps_at_24() -> None:
    s = Scheduler(
        config([cq("a", {"default": {GPU: (16, 8)}}, "pool"), cq("big", {"default": {GPU: 100}}, "pool")])
    )
    assert len(fill(s, [job("a", 1) for _ in range(40)])) == 24
    assert used(s, "a") == 24


def test_seed_platform_gpu_pool_three_cluster_queues() -> None:
    """Seed 001 §4.4: model-endpoints, serverless-endpoints, usecase-deployments in platform-gpu-pool."""
    cfg = config(
        [
            cq(
                "model-endpoints",
                {"a100-80gb": {GPU: (100, 20)}, "h100-sxm": {GPU: (50, 10)}},
                "platform-gpu-pool",
            ),
            cq("serverless-endpoints", {"a100-80gb": {GPU: (50, 30)}}, "platform-gpu-pool"),
            cq("usecase-deployments", {"a100-80gb": {GPU: (30, 10)}}, "platform-gpu-pool"),
        ]
    )
    s = Scheduler(cfg)
    # Alone, each queue reaches nominal + borrowingLimit on A100 (the cohort has 180).
    fill(s, [job("serverless-endpoints", 1) for _ in range(100)])
    assert used(s, "serverless-endpoints", "a100-80gb") == 80
    # model-endpoints: A100 is now short (180 - 80 = 100 left); the rest lands on H100, which
    # nobody else has quota for, so it cannot borrow beyond its own 50.
    fill(s, [job("model-endpoints", 1) for _ in range(200)])
    assert used(s, "model-endpoints", "a100-80gb") == 100
    assert used(s, "model-endpoints", "h100-sxm") == 50
    # usecase-deployments' nominal 30 was fully lent out; it gets nothing until quota returns.
    assert fill(s, [job("usecase-deployments", 1)]) == []


def test_lending_limit_keeps_the_rest_exclusive() -> None:
    """Kueue lendingLimit: only 4 of A's 10 can be borrowed by B."""
    s = Scheduler(
        config([cq("a", {"default": {GPU: (10, None, 4)}}, "pool"), cq("b", {"default": {GPU: 2}}, "pool")])
    )
    assert len(fill(s, [job("b", 1) for _ in range(20)])) == 6
    # A still has its 6 exclusive plus... nothing more: B holds the 4 lendable.
    assert len(fill(s, [job("a", 1) for _ in range(20)])) == 6


def test_kueue_docs_cohort_borrowing_and_reclaim_accounting() -> None:
    """Kueue docs (Cohort): team-a-cq (9 cpu) and team-b-cq (12 cpu) share a cohort; team-a can use 21."""
    cfg = config(
        [
            cq("team-a-cq", {"default": {"cpu": 9}}, "team-ab"),
            cq("team-b-cq", {"default": {"cpu": 12}}, "team-ab"),
        ]
    )
    s = Scheduler(cfg)
    jobs = [job("team-a-cq", pod_sets=[(1, {"cpu": 1})]) for _ in range(30)]
    assert len(fill(s, jobs)) == 21
    # Once team-a's workloads finish, the quota returns and team-b's workloads are admitted.
    for job_id in list(s.admitted)[:12]:
        s.release(job_id, T0)
    assert len(fill(s, [job("team-b-cq", pod_sets=[(1, {"cpu": 1})]) for _ in range(12)])) == 12


def test_borrowing_limit_zero_and_no_cohort() -> None:
    s = Scheduler(config([cq("solo", {"default": {GPU: 4}})]))
    assert len(fill(s, [job("solo", 1) for _ in range(10)])) == 4


def test_hierarchical_cohort_own_quota_is_shared_by_subtree() -> None:
    """A Cohort with its own quota (Kueue hierarchical cohorts) lends it to its subtree."""
    cfg = config(
        [cq("a", {"default": {GPU: 2}}, "child"), cq("b", {"default": {GPU: 2}}, "other")],
        cohorts=[
            Cohort(name="root"),
            Cohort(
                name="child", parent="root", resource_groups=cq("x", {"default": {GPU: 6}}).resource_groups
            ),
            Cohort(name="other", parent="root"),
        ],
    )
    s = Scheduler(cfg)
    # a: own 2 + child cohort's 6 + b's 2 through root = 10
    assert len(fill(s, [job("a", 1) for _ in range(20)])) == 10
    node = s.tree.cluster_queues["b"]
    assert available(node, ("default", GPU), s.usage) == 0


def test_flavor_order_and_fungibility() -> None:
    quotas = {"on-demand": {GPU: 4}, "spot": {GPU: 8}}
    # Default whenCanBorrow MayStopSearch: borrowing in the first flavor beats a free second flavor.
    s = Scheduler(config([cq("a", quotas, "pool"), cq("lender", {"on-demand": {GPU: 4}}, "pool")]))
    fill(s, [job("a", 1) for _ in range(6)])
    assert used(s, "a", "on-demand") == 6
    assert used(s, "a", "spot") == 0
    # TryNextFlavor: look for a flavor that fits without borrowing first.
    fungible = FlavorFungibility(when_can_borrow=FungibilityAction.TRY_NEXT_FLAVOR)
    s = Scheduler(
        config(
            [
                cq("a", quotas, "pool", flavor_fungibility=fungible),
                cq("lender", {"on-demand": {GPU: 4}}, "pool"),
            ]
        )
    )
    fill(s, [job("a", 1) for _ in range(6)])
    assert used(s, "a", "on-demand") == 4
    assert used(s, "a", "spot") == 2


def test_best_effort_fifo_lets_smaller_workloads_pass_strict_fifo_does_not() -> None:
    big_then_small = lambda q: [job(q, 8), job(q, 1)]  # noqa: E731
    s = Scheduler(config([cq("q", {"default": {GPU: 4}})]))
    admitted = fill(s, big_then_small("q"))
    assert len(admitted) == 1  # the 1-GPU job passes the 8-GPU head
    strict = Scheduler(
        config([cq("q", {"default": {GPU: 4}}, queueing_strategy=QueueingStrategy.STRICT_FIFO)])
    )
    assert fill(strict, big_then_small("q")) == []


def test_priority_then_fifo_within_a_queue() -> None:
    s = Scheduler(config([cq("q", {"default": {GPU: 2}})]))
    low = job("q", 1, priority=JobPriority.LOW, name="low")
    first = job("q", 1, name="first")
    second = job("q", 1, name="second")
    high = job("q", 1, priority=JobPriority.HIGH, name="high")
    assert fill(s, [low, first, second, high]) == ["high", "first"]


def test_gang_is_all_or_nothing() -> None:
    s = Scheduler(config([cq("q", {"default": {GPU: 16, "cpu": 100}})]))
    gang = job("q", pod_sets=[(2, {GPU: 8, "cpu": 10}), (1, {GPU: 1, "cpu": 1})], name="gang")
    assert fill(s, [gang]) == []
    assert s.explain("gang") == (
        "couldn't assign flavors to pod set ps1: insufficient quota for nvidia.com/gpu in flavor default, "
        "previously considered podsets requests (16) + current podset request (1) > maximum capacity (16)"
    )
    assert used(s, "q") == 0
    exact = job("q", pod_sets=[(2, {GPU: 8, "cpu": 10})], name="exact")
    assert fill(s, [exact]) == ["exact"]
    assert s.admitted["exact"].flavors == {"ps0": {GPU: "default", "cpu": "default"}}


def test_accelerator_type_only_gets_matching_flavors() -> None:
    labels = {
        "h100": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        "l4": {"nvidia.com/gpu.product": "NVIDIA-L4"},
    }
    s = Scheduler(config([cq("q", {"l4": {GPU: 8}, "h100": {GPU: 8}})], flavors=labels))
    fill(s, [job("q", 2, accelerator="H100-80GB-HBM3", name="wants-h100"), job("q", 2, name="any")])
    assert s.admitted["wants-h100"].flavors["main"][GPU] == "h100"
    assert s.admitted["any"].flavors["main"][GPU] == "l4"
    fill(s, [job("q", 1, accelerator="nvidia-a100-80gb", name="a100")])
    assert "provides accelerator type nvidia-a100-80gb" in s.explain("a100")


def test_a_flavor_selecting_a_pool_provides_the_model_its_nodes_carry() -> None:
    """Flavors that select nodes by pool name learn their accelerator from those nodes; a flavor
    over mixed models learns none, so only its own labels or name can match it."""
    h100 = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    nodes = [
        Node(name="a", labels={"pool": "fast", **h100}, allocatable=ResourceVector.of({GPU: 8})),
        Node(name="b", labels={"pool": "fast", **h100}, allocatable=ResourceVector.of({GPU: 8})),
        Node(name="c", labels={"pool": "cpu"}, allocatable=ResourceVector.of({"cpu": 8})),
        Node(name="d", labels={"pool": "mixed", **h100}, allocatable=ResourceVector.of({GPU: 8})),
        Node(
            name="e",
            labels={"pool": "mixed", "nvidia.com/gpu.product": "NVIDIA-L4"},
            allocatable=ResourceVector.of({GPU: 8}),
        ),
    ]
    labels = {"fast": {"pool": "fast"}, "mixed": {"pool": "mixed"}, "cpu": {"pool": "cpu"}}
    built = config([cq("q", {"mixed": {GPU: 8}, "fast": {GPU: 8}})], flavors=labels)
    matcher = AcceleratorMatcher()
    learnt = flavor_types_from_nodes(built.flavors, nodes, matcher.normalize)
    assert learnt == {"fast": "nvidia-h100-80gb"}
    s = Scheduler(built, AdmissionPolicy(matcher=matcher.with_flavor_types(learnt)))
    fill(
        s,
        [
            job("q", 2, accelerator="nvidia-h100-80gb", name="slug"),
            job("q", 2, accelerator="NVIDIA-L4", name="l4"),
        ],
    )
    assert s.admitted["slug"].flavors["main"][GPU] == "fast"
    assert "provides accelerator type NVIDIA-L4" in s.explain("l4")


def test_uncovered_resource_is_reported() -> None:
    s = Scheduler(config([cq("q", {"default": {GPU: 8}})]))
    fill(s, [job("q", 1, extra={"amd.com/gpu": 1}, name="amd")])
    assert s.explain("amd") == (
        "couldn't assign flavors to pod set main: resource amd.com/gpu unavailable in ClusterQueue"
    )


def test_request_beyond_what_the_queue_could_ever_get() -> None:
    s = Scheduler(
        config([cq("q", {"default": {GPU: (4, 2)}}, "pool"), cq("r", {"default": {GPU: 4}}, "pool")])
    )
    fill(s, [job("q", 7, name="huge")])
    assert "current podset request (7) > maximum capacity (6)" in s.explain("huge")


def test_stop_policy_hold_admits_nothing() -> None:
    s = Scheduler(config([cq("q", {"default": {GPU: 8}}, stop_policy=StopPolicy.HOLD)]))
    assert fill(s, [job("q", 1, name="held")]) == []
    assert s.explain("held") == "ClusterQueue q is stopped (stopPolicy Hold)"


def test_hold_and_drain_evicts_admitted() -> None:
    cfg = config([cq("q", {"default": {GPU: 8}})])
    s = Scheduler(cfg)
    fill(s, [job("q", 1, name="running")])
    drained = cfg.with_objects(
        cluster_queues={
            "q": cfg.cluster_queues["q"].model_copy(update={"stop_policy": StopPolicy.HOLD_AND_DRAIN})
        }
    )
    s.reconfigure(drained)
    result = s.cycle(T0)
    assert [e.job_id for e in result.evictions] == ["running"]


def test_local_queue_stop_policy() -> None:
    cfg = config([cq("q", {"default": {GPU: 8}})])
    lq = cfg.local_queues[("ns-q", "q")].model_copy(update={"stop_policy": StopPolicy.HOLD})
    s = Scheduler(cfg.with_objects(local_queues={lq.key: lq}))
    assert fill(s, [job("q", 1, name="x")]) == []
    assert s.explain("x") == "LocalQueue ns-q/q is stopped (stopPolicy Hold)"


def test_namespace_selector() -> None:
    cfg = config([cq("q", {"default": {GPU: 8}}, namespace_selector={"team": "ml"})])
    s = Scheduler(cfg, AdmissionPolicy(namespace_labels={"ns-q": {"team": "web"}}))
    assert fill(s, [job("q", 1, name="x")]) == []
    assert "does not match the namespaceSelector" in s.explain("x")
    s = Scheduler(cfg, AdmissionPolicy(namespace_labels={"ns-q": {"team": "ml"}}))
    assert fill(s, [job("q", 1)]) != []


def test_classic_ordering_prefers_workloads_that_do_not_borrow() -> None:
    """Kueue entryOrdering: across queues, a head within nominal quota goes before a borrowing one."""
    s = Scheduler(config([cq("a", {"default": {GPU: 2}}, "pool"), cq("b", {"default": {GPU: 2}}, "pool")]))
    fill(s, [job("a", 2)])
    # a's next head would borrow; b's fits its nominal. Submit a's first (older), b's later.
    a_next = job("a", 2, name="a-borrow", priority=JobPriority.HIGH)
    b_next = job("b", 2, name="b-nominal")
    assert fill(s, [a_next, b_next]) == ["b-nominal"]


def test_fair_sharing_orders_by_dominant_resource_share() -> None:
    """With fair sharing the queue with the lower share after admission goes first."""
    cqs = [
        cq("a", {"default": {GPU: 0}}, "pool"),
        cq("b", {"default": {GPU: 0}}, "pool"),
        cq("lender", {"default": {GPU: 10}}, "pool"),
    ]
    s = Scheduler(config(cqs), AdmissionPolicy(fair_sharing=True))
    # a submits 10 one-GPU jobs first; b submits 10 later. Fair sharing alternates: 5 each.
    early = [job("a", 1, at=T0) for _ in range(10)]
    late = [job("b", 1, at=T0 + timedelta(hours=1)) for _ in range(10)]
    fill(s, early + late)
    assert (used(s, "a"), used(s, "b")) == (5, 5)
    # Without fair sharing, FIFO across queues gives a everything.
    s = Scheduler(config(cqs))
    fill(s, early + late)
    assert (used(s, "a"), used(s, "b")) == (10, 0)


def test_fair_sharing_weight_zero_goes_last_and_weights_scale() -> None:
    cqs = [
        cq("heavy", {"default": {GPU: 0}}, "pool", fair_sharing=FairSharing(weight=2000)),
        cq("light", {"default": {GPU: 0}}, "pool"),
        cq("never", {"default": {GPU: 0}}, "pool", fair_sharing=FairSharing(weight=0)),
        cq("lender", {"default": {GPU: 9}}, "pool"),
    ]
    s = Scheduler(config(cqs), AdmissionPolicy(fair_sharing=True))
    jobs = [job(q, 1) for q in ("never", "light", "heavy") for _ in range(9)]
    fill(s, jobs)
    assert (used(s, "heavy"), used(s, "light"), used(s, "never")) == (6, 3, 0)


def test_flavor_weights_make_expensive_borrowing_count_more() -> None:
    quotas = {"h100": {GPU: 0}, "t4": {GPU: 0}}
    cqs = [
        cq("h", quotas, "pool"),
        cq("t", quotas, "pool"),
        cq("lender", {"h100": {GPU: 4}, "t4": {GPU: 4}}, "pool"),
    ]
    accel = {"h100": {"nvidia.com/gpu.product": "H100"}, "t4": {"nvidia.com/gpu.product": "T4"}}
    policy = AdmissionPolicy(fair_sharing=True, flavor_weights={"h100": 3000, "t4": 1000})
    s = Scheduler(config(cqs, flavors=accel), policy)
    fill(s, [job("h", 1, accelerator="h100") for _ in range(2)])
    fill(s, [job("t", 1, accelerator="t4") for _ in range(2)])
    from budcore.scheduling import dominant_resource_share

    share_h, _ = dominant_resource_share(
        s.tree.cluster_queues["h"], s.usage, flavor_weights=policy.flavor_weights
    )
    share_t, _ = dominant_resource_share(
        s.tree.cluster_queues["t"], s.usage, flavor_weights=policy.flavor_weights
    )
    assert share_h == 3 * share_t


def test_admission_fair_sharing_across_local_queues() -> None:
    """Within one ClusterQueue, the LocalQueue with less decayed usage goes first."""
    base = cq("q", {"default": {GPU: 4}}, admission_fair_sharing=True)
    cfg = config([base])
    other = LocalQueue(name="other", namespace="ns-q", cluster_queue="q")
    cfg = cfg.with_objects(local_queues={**cfg.local_queues, other.key: other})
    s = Scheduler(cfg)
    # The 'q' LocalQueue used 4 GPUs for an hour.
    fill(s, [job("q", 4, name="hog")], now=T0)
    s.release("hog", T0 + timedelta(hours=1))
    later = T0 + timedelta(hours=1)
    hog_again = job("q", 4, name="hog-again", at=T0)
    fresh = job("q", 4, name="fresh", at=later).model_copy(update={"local_queue": "other"})
    fill(s, [hog_again, fresh], now=later)
    assert list(s.admitted) == ["fresh"]


def test_cycle_is_pure_and_deterministic() -> None:
    from budcore.scheduling import schedule

    cfg = config([cq("a", {"default": {GPU: (4, 2)}}, "pool"), cq("b", {"default": {GPU: 4}}, "pool")])
    s = Scheduler(cfg)
    for j in [job("a", 1) for _ in range(8)] + [job("b", 2) for _ in range(3)]:
        s.submit(j)
    before = s.usage.flatten()
    first = schedule(s.snapshot(), s.pending, s.policy, T0)
    second = schedule(s.snapshot(), s.pending, s.policy, T0)
    assert first.decisions == second.decisions
    assert s.usage.flatten() == before
    assert len(s.pending) == 11


def test_released_quota_reactivates_the_cohort() -> None:
    s = Scheduler(config([cq("a", {"default": {GPU: 2}}, "pool"), cq("b", {"default": {GPU: 2}}, "pool")]))
    fill(s, [job("a", 4, name="big-a")])
    fill(s, [job("b", 1, name="waiting")])
    assert "waiting" in s.pending
    # Within b's nominal quota but lent to a: on its first try it held that room (Kueue's
    # reserveCapacityForUnreclaimablePreempt), which wakes the cohort once; the next look parks it.
    assert s.cycle(T0).reserved == {}
    assert "b" not in s.pending.active  # parked as inadmissible
    s.release("big-a", T0)
    assert "b" in s.pending.active
    assert fill(s, []) == ["waiting"]


def test_needs_preemption_only_when_a_policy_allows_it() -> None:
    from budcore.scheduling import ClusterQueuePreemption
    from budcore.scheduling.queues import WithinClusterQueue

    preempting = ClusterQueuePreemption(within_cluster_queue=WithinClusterQueue.LOWER_PRIORITY)
    s = Scheduler(config([cq("q", {"default": {GPU: 4}}, preemption=preempting)]))
    fill(s, [job("q", 4, priority=JobPriority.LOW)])
    s.submit(job("q", 4, priority=JobPriority.HIGH, name="urgent"))
    result = s.cycle(T0)
    assert [n.job_id for n in result.needs_preemption] == ["urgent"]
    assert s.explain("urgent").startswith("waiting for preempted workloads to leave: ")


def test_catalog_slug_matches_gfd_product_labels() -> None:
    """A job asking for the catalog slug gets the flavor whose nodes report the GFD product string."""
    labels = {
        "sxm": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        "pcie": {"nvidia.com/gpu.product": "NVIDIA-H100-PCIe"},
    }
    s = Scheduler(config([cq("q", {"pcie": {GPU: 8}, "sxm": {GPU: 8}})], flavors=labels))
    fill(s, [job("q", 8, accelerator="nvidia-h100-80gb", name="sxm-job")])
    assert s.admitted["sxm-job"].flavors["main"][GPU] == "sxm"


def test_preemption_end_to_end_within_queue() -> None:
    """withinClusterQueue: LowerPriority — the high job evicts exactly what it needs, then runs."""
    from budcore.scheduling import ClusterQueuePreemption
    from budcore.scheduling.preemption import DecisionStatus
    from budcore.scheduling.queues import WithinClusterQueue

    preempting = ClusterQueuePreemption(within_cluster_queue=WithinClusterQueue.LOWER_PRIORITY)
    s = Scheduler(config([cq("q", {"default": {GPU: 4}}, preemption=preempting)]))
    fill(s, [job("q", 2, priority=JobPriority.LOW, name="low0")], now=T0)
    fill(s, [job("q", 2, priority=JobPriority.LOW, name="low1")], now=T0 + timedelta(minutes=1))
    s.submit(job("q", 2, priority=JobPriority.HIGH, name="urgent"))
    result = s.cycle(T0 + timedelta(minutes=2))
    (decision,) = result.preemptions
    assert decision.status is DecisionStatus.PREEMPT
    assert [v.job_id for v in decision.victims] == ["low1"]  # most recently admitted first
    assert "low1" in s.evicting
    assert s.explain("urgent") == "waiting for preempted workloads to leave: low1"
    # The caller evicts the victim; once its pods are gone its quota returns and urgent is admitted.
    s.release("low1", T0)
    assert [a.job_id for a in s.cycle(T0).admitted] == ["urgent"]


def test_reclaim_within_cohort_takes_back_lent_quota() -> None:
    """reclaimWithinCohort: Any — a lender gets its nominal quota back from a borrower."""
    from budcore.scheduling import ClusterQueuePreemption
    from budcore.scheduling.preemption import DecisionStatus
    from budcore.scheduling.queues import ReclaimWithinCohort

    reclaim = ClusterQueuePreemption(reclaim_within_cohort=ReclaimWithinCohort.ANY)
    s = Scheduler(
        config(
            [
                cq("lender", {"default": {GPU: 4}}, "pool", preemption=reclaim),
                cq("borrower", {"default": {GPU: 0}}, "pool"),
            ]
        )
    )
    fill(s, [job("borrower", 4, priority=JobPriority.CRITICAL, name="borrowed")])
    s.submit(job("lender", 4, priority=JobPriority.LOW, name="owner"))
    (decision,) = s.cycle(T0).preemptions
    # critical jobs are never victims, whatever the policy says
    assert decision.status is DecisionStatus.IMPOSSIBLE
    s.withdraw("owner")
    s.release("borrowed", T0)
    fill(s, [job("borrower", 4, priority=JobPriority.HIGH, name="borrowed2")])
    # Reclaiming lent quota may evict even a higher-priority borrower (reclaimWithinCohort: Any).
    s.submit(job("lender", 4, priority=JobPriority.LOW, name="owner2"))
    (decision,) = s.cycle(T0).preemptions
    assert decision.status is DecisionStatus.PREEMPT
    assert [v.job_id for v in decision.victims] == ["borrowed2"]


def test_aging_lets_a_starving_low_priority_job_through() -> None:
    """A low job that has waited for hours overtakes normal jobs that just arrived."""
    from budcore.scheduling.preemption.aging import AgingPolicy

    s = Scheduler(config([cq("q", {"default": {GPU: 1}})]))
    fill(s, [job("q", 1, name="running", at=T0)], now=T0)
    s.submit(job("q", 1, priority=JobPriority.LOW, name="starving", at=T0))
    later = T0 + timedelta(hours=3)
    for i in range(2):
        s.submit(job("q", 1, priority=JobPriority.NORMAL, name=f"fresh{i}", at=later - timedelta(minutes=5)))
    s.release("running", later)
    # low is 1, normal 10: one point per 15 minutes of waiting; 3 h of waiting lifts it to 13
    aging = AgingPolicy(step=1, interval=timedelta(minutes=15), max_boost=20)
    assert s.age(later, aging) == 1  # the fresh jobs have not waited a whole interval yet
    assert s.pending.get("starving").priority == 13  # type: ignore[union-attr]
    assert [a.job_id for a in s.cycle(later).admitted] == ["starving"]
    assert s.age(later, aging) == 0  # idempotent at the same instant; never lowers a priority


def _two_local_queues(stopped: str | None = None) -> Scheduler:
    """One ClusterQueue ``q`` fed by two LocalQueues, ``ns-a/q`` and ``ns-b/q``."""
    base = config([cq("q", {"default": {GPU: 8}})])
    lqs = {}
    for ns in ("ns-a", "ns-b"):
        policy = StopPolicy.HOLD if ns == stopped else StopPolicy.NONE
        lq = LocalQueue(name="q", namespace=ns, cluster_queue="q", stop_policy=policy)
        lqs[lq.key] = lq
    return Scheduler(base.with_objects(local_queues=lqs))


def _in(namespace: str, gpus: int, name: str) -> Job:
    return job("q", gpus, name=name).model_copy(update={"tenant": namespace})


def test_a_stopped_local_queue_does_not_block_another_with_the_same_request() -> None:
    """A held LocalQueue's workload waits; an identical request from another LocalQueue of the
    same ClusterQueue is still admitted (BestEffortFIFO, Kueue's LocalQueue stopPolicy)."""
    s = _two_local_queues(stopped="ns-a")
    assert fill(s, [_in("ns-a", 1, "held"), _in("ns-b", 1, "open")]) == ["open"]
    assert s.explain("held") == "LocalQueue ns-a/q is stopped (stopPolicy Hold)"


def test_an_arrival_behind_a_failed_head_of_its_shape_does_not_wake_the_queue() -> None:
    s = Scheduler(config([cq("q", {"default": {GPU: 2}})]))
    fill(s, [job("q", 2, name="running"), job("q", 2, name="head")])
    assert "q" not in s.pending.active  # parked: nothing fits until quota returns
    s.submit(job("q", 2, name="behind"))  # same request, same LocalQueue, later: it cannot fit
    assert "q" not in s.pending.active
    s.submit(job("q", 1, name="smaller"))  # a new shape: it may fit, so the queue wakes
    assert "q" in s.pending.active
    s.release("running", T0)
    assert fill(s, []) == ["head"]


def test_an_arrival_that_becomes_the_head_of_its_shape_wakes_the_queue() -> None:
    s = Scheduler(config([cq("q", {"default": {GPU: 2}})]))
    fill(s, [job("q", 2, name="running"), job("q", 2, name="head")])
    s.submit(job("q", 2, name="urgent", priority=JobPriority.HIGH))
    assert "q" in s.pending.active


def test_strict_fifo_wakes_for_a_newcomer_that_becomes_the_head() -> None:
    """StrictFIFO: a parked queue blocked by its head wakes when a higher-priority workload of an
    existing shape arrives ahead of it, and admits it (its shape's old head was never tried)."""
    s = Scheduler(config([cq("q", {"default": {GPU: 2}}, queueing_strategy=QueueingStrategy.STRICT_FIFO)]))
    fill(
        s,
        [
            job("q", 1, name="running"),
            job("q", 2, name="blocked"),
            job("q", 1, name="small", priority=JobPriority.LOW),
        ],
    )
    assert "q" not in s.pending.active
    assert fill(s, [job("q", 1, name="urgent", priority=JobPriority.HIGH)]) == ["urgent"]


def test_a_flavor_needing_preemption_does_not_stop_a_queue_that_never_preempts() -> None:
    """Kueue stops the flavor search at a flavor that needs preemption only when preemption could
    find victims (``whenCanPreempt: MayStopSearch``); a ClusterQueue whose policies never preempt
    goes on to the next flavor that fits. A larger request is not skipped because a smaller one
    failed either: it may fit a flavor the smaller one never reached."""
    fungible = FlavorFungibility(
        when_can_borrow=FungibilityAction.MAY_STOP_SEARCH, when_can_preempt=FungibilityAction.MAY_STOP_SEARCH
    )
    s = Scheduler(config([cq("q", {"small": {"cpu": 1}, "large": {"cpu": 2}}, flavor_fungibility=fungible)]))
    jobs = [job("q", 0, extra={"cpu": c}, name=n) for n, c in (("a", 1), ("b", 1), ("c", 2))]
    assert fill(s, jobs) == ["a", "b"]  # a on small, b on large (small is full)
    assert used(s, "q", "small", "cpu") == 1
    assert used(s, "q", "large", "cpu") == 1
