"""Victim order with admission fair sharing: ``ordering_key`` / ``sort_candidates`` (issue #20, 10).

Kueue's ``CandidatesOrdering`` (``pkg/scheduler/preemption/common/ordering.go``) puts, between
"other ClusterQueues first" and "lower priority first", a step that applies only to two
candidates of the same ClusterQueue, in different LocalQueues, both with a ``LocalQueueFSUsage``
(their ClusterQueue has ``admissionScope: UsageBasedAdmissionFairSharing``): the one whose
LocalQueue has the higher usage goes first. These tests pin that step, the usage it reads (decayed
usage over the LocalQueue's weight, as the admission order reads it), and the order budcore picks
where Kueue's pairwise comparison is not transitive (candidates of several other ClusterQueues).
The expected orders follow from Kueue's comparison; :func:`kueue_compare` restates it as a
reference.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from functools import cmp_to_key, partial
from typing import Any

from budcore.domain.ids import JobId, TenantId
from budcore.scheduling import (
    AdmissionSnapshot,
    AdmittedWorkload,
    ClusterQueue,
    ClusterQueuePreemption,
    FairSharing,
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
from budcore.scheduling.preemption import PreemptionPolicy
from budcore.scheduling.preemption.common import (
    PreemptionContext,
    local_queue_fs_usage,
    ordering_key,
    sort_candidates,
)
from budcore.scheduling.queues import ReclaimWithinCohort, WithinClusterQueue

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
FR = ("default", "cpu")


def _cq(name: str, afs: bool) -> ClusterQueue:
    quota = FlavorQuotas(name="default", resources=(ResourceQuota(name="cpu", nominal_quota=8000),))
    return ClusterQueue(
        name=name,
        cohort="all",
        resource_groups=(ResourceGroup(covered_resources=("cpu",), flavors=(quota,)),),
        preemption=ClusterQueuePreemption(
            within_cluster_queue=WithinClusterQueue.LOWER_PRIORITY,
            reclaim_within_cohort=ReclaimWithinCohort.ANY,
        ),
        admission_fair_sharing=afs,
    )


def _config(lq_weights: dict[str, int] | None = None) -> QueueConfig:
    """ClusterQueues ``own`` (the preemptor's) and ``x`` with admission fair sharing, ``y`` without;
    LocalQueues ``<cq>-a`` and ``<cq>-b`` in namespace ``ns`` (weight 1 unless given, milli)."""
    weights = lq_weights or {}
    return QueueConfig.build(
        flavors=[ResourceFlavor(name="default")],
        cluster_queues=[_cq("own", True), _cq("x", True), _cq("y", False)],
        local_queues=[
            LocalQueue(
                name=f"{cq}-{lq}",
                namespace="ns",
                cluster_queue=cq,
                fair_sharing=FairSharing(weight=weights.get(f"{cq}-{lq}", 1000)),
            )
            for cq in ("own", "x", "y")
            for lq in ("a", "b")
        ],
    )


def _wl(name: str, cq: str, lq: str, priority: int, admitted_ago: float = 0.0) -> AdmittedWorkload:
    at = NOW - timedelta(seconds=admitted_ago)
    return AdmittedWorkload(
        job_id=JobId(name),
        tenant=TenantId("ns"),
        cluster_queue=cq,
        local_queue=("ns", f"{cq}-{lq}"),
        usage={FR: 1000},
        flavors={"main": {"cpu": "default"}},
        priority=priority,
        admitted_at=at,
        timestamp=at.timestamp(),
    )


def _ctx(
    workloads: list[AdmittedWorkload],
    lq_usage: dict[str, float] | None,
    *,
    config: QueueConfig | None = None,
    evicting: frozenset[str] = frozenset(),
) -> PreemptionContext:
    """A preemption question of a priority-100 preemptor in ``own`` over ``workloads``;
    ``lq_usage`` by LocalQueue name (None: admission fair sharing not tracked)."""
    tree = QuotaTree(config or _config())
    usage = QuotaUsage(tree)
    for w in workloads:
        usage.add(w.cluster_queue, w.usage)
    snapshot = AdmissionSnapshot(
        tree,
        usage,
        {w.job_id: w for w in workloads},
        local_queue_usage=None if lq_usage is None else {("ns", k): v for k, v in lq_usage.items()},
    )
    needs = NeedsPreemption(JobId("in"), TenantId("ns"), "own", {}, {FR: 1000}, False, 100, "")
    cq = tree.config.cluster_queues["own"]
    return PreemptionContext(
        snapshot,
        needs,
        cq,
        tree.cluster_queues["own"],
        frozenset((FR,)),
        {FR: 1000},
        PreemptionPolicy(),
        NOW,
        evicting,
    )


def _sorted(ctx: PreemptionContext, workloads: list[AdmittedWorkload]) -> list[str]:
    out = list(workloads)
    sort_candidates(ctx, out)
    return [w.job_id for w in out]


def kueue_compare(ctx: PreemptionContext, a: AdmittedWorkload, b: AdmittedWorkload) -> int:
    """Kueue ``CandidatesOrdering(log, afsEnabled, a, b, cq, now)`` restated: ``cmputil.LazyOr``
    of its steps, ``afsEnabled`` being whether the snapshot tracks LocalQueue usage."""

    def cmp(x: Any, y: Any) -> int:
        return int(x > y) - int(x < y)

    evicting = ctx.evicting
    own = ctx.needs.cluster_queue
    ua, ub = local_queue_fs_usage(ctx.snapshot, a), local_queue_fs_usage(ctx.snapshot, b)
    steps = (
        lambda: cmp(a.job_id not in evicting, b.job_id not in evicting),
        lambda: cmp(a.cluster_queue == own, b.cluster_queue == own),
        lambda: (
            cmp(ub, ua)
            if a.cluster_queue == b.cluster_queue
            and a.local_queue != b.local_queue
            and ua is not None
            and ub is not None
            else 0
        ),
        lambda: cmp(a.priority, b.priority),
        lambda: cmp(b.admitted_at, a.admitted_at),
        lambda: cmp(a.job_id, b.job_id),
    )
    for step in steps:
        result = step()
        if result:
            return result
    return 0


def test_without_lq_usage_the_key_is_kueues_steps_and_priority_decides() -> None:
    low = _wl("low", "own", "a", priority=1)
    mid = _wl("mid", "own", "b", priority=10)
    ctx = _ctx([low, mid], None)
    assert _sorted(ctx, [mid, low]) == ["low", "mid"]
    assert ctx.ranks is None
    assert ordering_key(ctx, low) == (1, 1, 1, -NOW.timestamp(), "low")


def test_higher_lq_usage_first_in_the_preemptors_own_cluster_queue() -> None:
    # As Kueue TestCandidatesOrdering "workloads with higher LQ usage first": usage beats priority.
    low = _wl("low-usage", "own", "a", priority=1)
    mid = _wl("mid-usage", "own", "b", priority=10)
    ctx = _ctx([low, mid], {"own-a": 0.1, "own-b": 0.5})
    assert _sorted(ctx, [low, mid]) == ["mid-usage", "low-usage"]
    assert ctx.ranks == {"mid-usage": 0, "low-usage": 1}
    # A subset sorted by ordering_key keeps the order (what cost mode does with its pools).
    assert sorted([low, mid], key=lambda w: ordering_key(ctx, w)) == [mid, low]


def test_workloads_of_one_local_queue_tie_on_usage_and_fall_to_priority_then_admission() -> None:
    a1 = _wl("a1", "own", "a", priority=5)
    a2 = _wl("a2", "own", "a", priority=1)
    a3 = _wl("a3", "own", "a", priority=1, admitted_ago=60)
    b1 = _wl("b1", "own", "b", priority=0)
    ctx = _ctx([a1, a2, a3, b1], {"own-a": 3.0, "own-b": 1.0})
    assert _sorted(ctx, [b1, a3, a2, a1]) == ["a2", "a3", "a1", "b1"]


def test_equal_usage_in_different_local_queues_falls_to_priority() -> None:
    a = _wl("a", "own", "a", priority=5)
    b = _wl("b", "own", "b", priority=1)
    ctx = _ctx([a, b], {"own-a": 2.0, "own-b": 2.0})
    assert _sorted(ctx, [a, b]) == ["b", "a"]
    assert ctx.ranks is None  # the usage step never decides: the plain key


def test_usage_is_divided_by_the_local_queue_weight() -> None:
    # own-a: 10 over weight 4 = 2.5; own-b: 4 over weight 1 = 4 -> own-b's workload goes first.
    config = _config({"own-a": 4000})
    a = _wl("a", "own", "a", priority=0)
    b = _wl("b", "own", "b", priority=9)
    ctx = _ctx([a, b], {"own-a": 10.0, "own-b": 4.0}, config=config)
    assert local_queue_fs_usage(ctx.snapshot, a) == 2.5
    assert local_queue_fs_usage(ctx.snapshot, b) == 4.0
    assert _sorted(ctx, [a, b]) == ["b", "a"]


def test_a_zero_weight_local_queue_has_infinite_usage_and_goes_first() -> None:
    config = _config({"own-b": 0})
    a = _wl("a", "own", "a", priority=0)
    b = _wl("b", "own", "b", priority=9)
    ctx = _ctx([a, b], {"own-a": 100.0}, config=config)  # own-b idle: still +Inf, as in Kueue
    assert local_queue_fs_usage(ctx.snapshot, b) == float("inf")
    assert _sorted(ctx, [a, b]) == ["b", "a"]


def test_a_cluster_queue_without_admission_fair_sharing_has_no_usage() -> None:
    a = _wl("a", "y", "a", priority=5)
    b = _wl("b", "y", "b", priority=1)
    ctx = _ctx([a, b], {"y-a": 100.0, "y-b": 0.0})
    assert local_queue_fs_usage(ctx.snapshot, a) is None
    assert _sorted(ctx, [a, b]) == ["b", "a"]


def test_evicted_and_other_cluster_queues_still_come_before_the_usage_step() -> None:
    busy = _wl("own-busy", "own", "a", priority=0)
    idle = _wl("own-idle", "own", "b", priority=0)
    other = _wl("other", "y", "a", priority=50)
    evicted = _wl("evicted", "own", "b", priority=99)
    workloads = [busy, idle, other, evicted]
    ctx = _ctx(workloads, {"own-a": 9.0, "own-b": 1.0}, evicting=frozenset({"evicted"}))
    assert _sorted(ctx, workloads) == ["evicted", "other", "own-busy", "own-idle"]


def test_the_order_across_cluster_queues_is_kueues_when_kueues_comparison_is_consistent() -> None:
    # In x, a's LocalQueue is busier: a before b although b has the lower priority. c and d, in y,
    # compare with both by priority only: c (0) below both, d (9) above both. Kueue's comparison is
    # consistent here and gives c, a, b, d. A key without the usage gives c, b, a, d; a key with
    # the usage on every candidate puts a and b (usage 10 and 1) before c and d (none): neither is
    # Kueue's.
    a = _wl("a", "x", "a", priority=5)
    b = _wl("b", "x", "b", priority=1)
    c = _wl("c", "y", "a", priority=0)
    d = _wl("d", "y", "b", priority=9)
    ctx = _ctx([a, b, c, d], {"x-a": 10.0, "x-b": 1.0})
    assert _consistent(ctx, [c, a, b, d])
    for perm in itertools.permutations([a, b, c, d]):
        assert _sorted(ctx, list(perm)) == ["c", "a", "b", "d"]


def test_an_intransitive_kueue_comparison_keeps_each_cluster_queues_order_and_ignores_input_order() -> None:
    # Kueue: a < b (x-a busier), b < c (priority 1 < 3), c < a (priority 3 < 5): no order satisfies
    # all three and Kueue's own result depends on Go's map order. budcore keeps a before b (one
    # ClusterQueue), merges by priority across ClusterQueues, and does so for every input order.
    a = _wl("a", "x", "a", priority=5)
    b = _wl("b", "x", "b", priority=1)
    c = _wl("c", "y", "a", priority=3)
    ctx = _ctx([a, b, c], {"x-a": 10.0, "x-b": 1.0})
    assert kueue_compare(ctx, a, b) < 0 < kueue_compare(ctx, a, c)
    assert kueue_compare(ctx, b, c) < 0
    for perm in itertools.permutations([a, b, c]):
        assert _sorted(ctx, list(perm)) == ["c", "a", "b"]


def _consistent(ctx: PreemptionContext, order: list[AdmittedWorkload]) -> bool:
    return all(kueue_compare(ctx, x, y) < 0 for x, y in itertools.combinations(order, 2))


def test_random_candidate_sets_follow_kueues_comparison() -> None:
    """On random candidate sets over three ClusterQueues: every pair of one ClusterQueue is in
    Kueue's order; when Kueue's comparison is a consistent order on the set, the whole order is
    Kueue's; and the order never depends on the input order."""
    rng = random.Random(20)
    consistent_sets = 0
    for _ in range(400):
        workloads = [
            _wl(
                f"w{i}",
                rng.choice(("own", "x", "y")),
                rng.choice("ab"),
                rng.randrange(4),
                admitted_ago=rng.choice((0.0, 30.0, 60.0)),
            )
            for i in range(rng.randrange(1, 8))
        ]
        usage = {f"{cq}-{lq}": float(rng.randrange(3)) for cq in ("own", "x", "y") for lq in "ab"}
        evicting = frozenset(w.job_id for w in workloads if rng.random() < 0.15)
        ctx = _ctx(workloads, usage, evicting=evicting)
        got = list(workloads)
        sort_candidates(ctx, got)
        for i, x in enumerate(got):
            for y in got[i + 1 :]:
                if x.cluster_queue == y.cluster_queue:
                    assert kueue_compare(ctx, x, y) < 0, (x.job_id, y.job_id)
        reference = sorted(workloads, key=cmp_to_key(partial(kueue_compare, ctx)))
        if _consistent(ctx, reference):
            consistent_sets += 1
            assert [w.job_id for w in got] == [w.job_id for w in reference]
        shuffled = list(workloads)
        rng.shuffle(shuffled)
        assert _sorted(ctx, shuffled) == [w.job_id for w in got]
        # ordering_key agrees with the order on every subset (cost mode sorts subsets with it).
        assert sorted(got, key=partial(ordering_key, ctx)) == got
    assert consistent_sets > 200  # most random sets are consistent: the check above is exercised
