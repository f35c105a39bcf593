"""Golden regressions: admission-cycle behaviours where budcore diverged from Kueue.

Each test fails on the cycle before the fix and cites the Kueue source or documentation it follows
(kubernetes-sigs/kueue).
"""

from __future__ import annotations

from datetime import timedelta

from support.admission import GPU, T0, config, cq, fill, job

from budcore.domain.job import Job
from budcore.domain.priority import JobPriority
from budcore.scheduling import (
    AdmissionPolicy,
    ClusterQueuePreemption,
    LocalQueue,
    QueueConfig,
    QueueingStrategy,
    Scheduler,
    StopPolicy,
)
from budcore.scheduling.cycle import NO_LONGER_FITS, schedule
from budcore.scheduling.preemption import DecisionStatus
from budcore.scheduling.queues import (
    BorrowWithinCohort,
    BorrowWithinCohortPolicy,
    ReclaimWithinCohort,
    WithinClusterQueue,
)
from budcore.scheduling.quota import QuotaTree, QuotaUsage, preemption_reservation
from budcore.scheduling.snapshot import AdmissionSnapshot

WITHIN_LOWER = ClusterQueuePreemption(within_cluster_queue=WithinClusterQueue.LOWER_PRIORITY)
STRICT = QueueingStrategy.STRICT_FIFO


def _with_local_queues(base: QueueConfig, *lqs: LocalQueue) -> QueueConfig:
    return base.with_objects(local_queues={lq.key: lq for lq in lqs})


def _in(queue: str, namespace: str, gpus: int, name: str, **kw: object) -> Job:
    """A job of LocalQueue ``namespace/queue``."""
    return job(queue, gpus, name=name, **kw).model_copy(update={"tenant": namespace})  # type: ignore[arg-type]


# 1. Gated LocalQueues never block a StrictFIFO ClusterQueue ------------------------------------


def _strict_two_local_queues(stop: StopPolicy = StopPolicy.HOLD, gpus: int = 8) -> Scheduler:
    base = config([cq("q", {"default": {GPU: gpus}}, queueing_strategy=STRICT)])
    return Scheduler(
        _with_local_queues(
            base,
            LocalQueue(name="q", namespace="ns-a", cluster_queue="q", stop_policy=stop),
            LocalQueue(name="q", namespace="ns-b", cluster_queue="q"),
        )
    )


def test_strict_fifo_is_not_blocked_by_a_held_local_queue() -> None:
    """Kueue: a stopped LocalQueue's workloads are not in the ClusterQueue's heap (the queue
    manager only queues workloads of active LocalQueues; pkg/cache/queue/manager.go, and
    site/content/en/docs/concepts/local_queue.md "Stop policy"), so under StrictFIFO the other
    LocalQueues' workloads are still admitted. budcore stopped the strict cursor at the held head."""
    for stop in (StopPolicy.HOLD, StopPolicy.HOLD_AND_DRAIN):
        s = _strict_two_local_queues(stop)
        assert fill(s, [_in("q", "ns-a", 1, "held"), _in("q", "ns-b", 1, "ready")]) == ["ready"]
        assert s.explain("held") == f"LocalQueue ns-a/q is stopped (stopPolicy {stop.value})"


def test_strict_fifo_is_not_blocked_by_a_namespace_the_selector_excludes() -> None:
    """Kueue (pkg/scheduler/scheduler.go nominate → workload.ValidateAdmissibility →
    ErrNamespaceMismatch, RequeueReasonNamespaceMismatch; requeued as inadmissible even under
    StrictFIFO: pkg/cache/queue/cluster_queue.go requeueIfNotPresent(immediate = reason !=
    RequeueReasonNamespaceMismatch)): a workload whose namespace does not match never becomes the
    blocking head."""
    base = config(
        [cq("q", {"default": {GPU: 8}}, queueing_strategy=STRICT, namespace_selector={"team": "ml"})]
    )
    cfg = _with_local_queues(
        base,
        LocalQueue(name="q", namespace="ns-a", cluster_queue="q"),
        LocalQueue(name="q", namespace="ns-b", cluster_queue="q"),
    )
    labels = {"ns-a": {"team": "web"}, "ns-b": {"team": "ml"}}
    s = Scheduler(cfg, AdmissionPolicy(namespace_labels=labels))
    assert fill(s, [_in("q", "ns-a", 1, "outsider"), _in("q", "ns-b", 1, "member")]) == ["member"]
    assert s.explain("outsider") == "namespace ns-a does not match the namespaceSelector of ClusterQueue q"


def test_a_gated_head_is_no_quota_failure_and_the_real_head_still_blocks() -> None:
    """StrictFIFO still blocks on the first *admissible* workload that does not fit (Kueue: the
    head of the heap is retried, nothing behind it is popped); the gated workload keeps its gate
    reason rather than a quota reason, and the blocking head gets the quota reason."""
    s = _strict_two_local_queues(gpus=2)
    assert fill(s, [_in("q", "ns-b", 2, "running")]) == ["running"]
    submitted = [
        _in("q", "ns-a", 1, "held", at=T0),
        _in("q", "ns-b", 1, "blocked", at=T0 + timedelta(seconds=1)),
        _in("q", "ns-b", 1, "behind", at=T0 + timedelta(seconds=2)),
    ]
    assert fill(s, submitted) == []
    assert s.explain("held") == "LocalQueue ns-a/q is stopped (stopPolicy Hold)"
    assert s.explain("blocked").startswith(
        "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in "
        "flavor default"
    )
    s.release("running", T0)
    assert fill(s, []) == ["blocked", "behind"]  # in order; the held one stays held


# 2. A preemptor reserves its room for the rest of the cycle --------------------------------------


def test_a_preemptor_keeps_lower_priority_workloads_of_the_cycle_out_of_its_room() -> None:
    """Kueue pkg/scheduler/scheduler.go: a nominated workload that needs preemption adds its usage
    to the cycle's snapshot (``cq.AddUsage``; ``resourcesToReserve`` → ``quotaResourcesToReserve``
    caps it at ``nominal − usage`` when it does not borrow), so a lower-priority workload of the
    same cycle cannot take the room and become a second victim (audit p2)."""
    s = Scheduler(config([cq("q", {"default": {GPU: 6}}, preemption=WITHIN_LOWER)]))
    assert fill(s, [job("q", 4, name="victim", priority=JobPriority.LOW)]) == ["victim"]
    s.submit(job("q", 6, name="big", priority=JobPriority.HIGH, at=T0 + timedelta(seconds=1)))
    s.submit(job("q", 2, name="small", priority=JobPriority.LOW, at=T0 + timedelta(seconds=2)))
    result = s.cycle(T0 + timedelta(seconds=3))
    assert result.admitted == []
    big = next(d for d in result.preemptions if d.preemptor == "big")
    assert big.status is DecisionStatus.PREEMPT
    assert [v.job_id for v in big.victims] == ["victim"]  # not small as well
    assert result.reserved == {"big": {("default", GPU): 2000}}  # min(6, nominal 6 − usage 4)
    s.release("victim", T0 + timedelta(seconds=4))
    assert [a.job_id for a in s.cycle(T0 + timedelta(seconds=5)).admitted] == ["big"]
    assert "small" in s.pending


def test_the_reservation_within_nominal_leaves_the_rest_of_the_cohort_lendable() -> None:
    """``quotaResourcesToReserve`` without borrowing: ``max(0, min(usage, nominal − used))``, so
    only the preemptor's own unused quota is held, never capacity its cohort could lend to others
    (a full reservation would keep ``b`` from borrowing; none would admit ``small``)."""
    s = Scheduler(
        config(
            [
                cq("a", {"default": {GPU: (6, 0)}}, "pool", preemption=WITHIN_LOWER),
                cq("b", {"default": {GPU: 10}}, "pool"),
                cq("lender", {"default": {GPU: 10}}, "pool"),
            ]
        )
    )
    admitted = fill(s, [job("a", 4, name="victim", priority=JobPriority.LOW), job("b", 8, name="b-own")])
    assert sorted(admitted) == ["b-own", "victim"]
    for j in (
        job("a", 6, name="big", priority=JobPriority.HIGH),
        job("a", 2, name="small", priority=JobPriority.LOW),
        job("b", 12, name="b-borrows"),  # 12 of the cohort's 14 free, once big holds 2
    ):
        s.submit(j)
    result = s.cycle(T0)
    assert [a.job_id for a in result.admitted] == ["b-borrows"]
    assert [n.job_id for n in result.needs_preemption] == ["big", "small"]  # small: no victims
    assert result.reserved["big"] == {("default", GPU): 2000}
    assert "small" in s.pending


def test_a_borrowing_preemptor_reserves_up_to_its_borrowing_limit() -> None:
    """``quotaResourcesToReserve`` with borrowing: the whole request when there is no
    borrowingLimit, else ``min(usage, nominal + borrowingLimit − used)``. (A request above the
    queue's nominal quota may preempt only with ``borrowWithinCohort``: Kueue's
    ``fitsResourceQuota`` does not ask the oracle otherwise.)"""
    preempt_while_borrowing = ClusterQueuePreemption(
        within_cluster_queue=WithinClusterQueue.LOWER_PRIORITY,
        reclaim_within_cohort=ReclaimWithinCohort.LOWER_PRIORITY,
        borrow_within_cohort=BorrowWithinCohort(policy=BorrowWithinCohortPolicy.LOWER_PRIORITY),
    )

    def cycle(limit: int | None, other: int) -> list[str]:
        quota: object = 4 if limit is None else (4, limit)
        s = Scheduler(
            config(
                [
                    cq("a", {"default": {GPU: quota}}, "pool", preemption=preempt_while_borrowing),
                    cq("b", {"default": {GPU: 6}}, "pool"),
                    cq("lender", {"default": {GPU: 4}}, "pool"),
                ]
            )
        )
        fill(s, [job("a", 4, name="victim", priority=JobPriority.LOW), job("b", 6, name="b-own")])
        s.submit(job("a", 6, name="big", priority=JobPriority.HIGH))  # 4 free in the cohort: preempt
        s.submit(job("b", other, name="b-borrows"))
        result = s.cycle(T0)
        assert [n.job_id for n in result.needs_preemption] == ["big"]
        return [a.job_id for a in result.admitted]

    assert cycle(None, 1) == []  # reserves all 6: the cohort has nothing left
    assert cycle(3, 1) == ["b-borrows"]  # reserves min(6, 4 + 3 − 4) = 3 of the 4 free
    assert cycle(3, 2) == []


def test_a_reservation_makes_an_assignment_made_earlier_no_longer_fit() -> None:
    """Kueue keeps the flavor assignment made when it nominated a workload (``processEntry`` checks
    ``fits``, it does not assign again): x, assigned f1 by borrowing a's 2 unused GPUs, no longer
    fits once big, ordered first (it does not borrow), holds a's room for its preemption; it is not
    moved to f2 in the same cycle, and its queue is not parked (it is retried next cycle)."""
    s = Scheduler(
        config(
            [
                cq("a", {"f1": {GPU: (6, 0)}, "f2": {GPU: (0, 0)}}, "pool", preemption=WITHIN_LOWER),
                cq("b", {"f1": {GPU: 0}, "f2": {GPU: 10}}, "pool"),
            ]
        )
    )
    assert fill(s, [job("a", 4, name="victim", priority=JobPriority.LOW)]) == ["victim"]
    s.submit(job("a", 6, name="big", priority=JobPriority.HIGH))
    s.submit(job("b", 2, name="x"))
    result = s.cycle(T0)
    assert [n.job_id for n in result.needs_preemption] == ["big"]
    assert result.reserved == {"big": {("f1", GPU): 2000}}
    assert result.admitted == []
    assert s.reasons["x"] == NO_LONGER_FITS
    assert "b" in s.pending.active


def test_a_preemptor_known_to_have_no_candidates_reserves_nothing() -> None:
    """Kueue parks a BestEffortFIFO preemptor without candidates as inadmissible
    (RequeueReasonPreemptionNoCandidates is no immediate requeue: pkg/cache/queue/cluster_queue.go),
    so after the cycle that found none it holds nothing; a StrictFIFO one stays the head and
    reserves while its queue cannot always reclaim (``reserveCapacityForUnreclaimablePreempt``,
    ``preemption.CanAlwaysReclaim``)."""
    for strategy, expected in ((QueueingStrategy.BEST_EFFORT_FIFO, ["small"]), (STRICT, [])):
        s = Scheduler(
            config([cq("q", {"default": {GPU: 6}}, preemption=WITHIN_LOWER, queueing_strategy=strategy)])
        )
        fill(s, [job("q", 4, name="peer", priority=JobPriority.HIGH)])
        s.submit(job("q", 6, name="big", priority=JobPriority.HIGH))  # same priority: no victim
        s.submit(job("q", 2, name="small", priority=JobPriority.LOW))
        snapshot = AdmissionSnapshot(s.tree, s.usage, s.admitted, no_preemption_candidates={"big"})
        result = schedule(snapshot, s.pending, s.policy, T0)
        assert [n.job_id for n in result.needs_preemption] == ["big"]
        assert [a.job_id for a in result.admitted] == expected, strategy
        assert result.reserved == ({} if expected else {"big": {("default", GPU): 2000}})


def test_preemption_reservation_arithmetic() -> None:
    """``quotaResourcesToReserve`` per (flavor, resource), amounts in milli-units."""
    cfg = config([cq("a", {"f": {GPU: (4, 2)}}, "pool"), cq("b", {"f": {GPU: 4}}, "pool")])
    tree = QuotaTree(cfg)
    usage = QuotaUsage(tree)
    node = tree.cluster_queues["a"]
    fr = ("f", GPU)
    assert preemption_reservation(node, usage, {fr: 3000}, borrows=False) == {fr: 3000}
    usage.add("a", {fr: 3000})
    assert preemption_reservation(node, usage, {fr: 3000}, borrows=False) == {fr: 1000}
    assert preemption_reservation(node, usage, {fr: 5000}, borrows=True) == {fr: 3000}  # 4 + 2 − 3
    usage.add("a", {fr: 3000})  # 6: at nominal + borrowingLimit
    assert preemption_reservation(node, usage, {fr: 1000}, borrows=False) == {}
    assert preemption_reservation(node, usage, {fr: 1000}, borrows=True) == {}
    unlimited = QuotaTree(config([cq("a", {"f": {GPU: 4}}, "pool"), cq("b", {"f": {GPU: 4}}, "pool")]))
    used = QuotaUsage(unlimited)
    used.add("a", {fr: 4000})
    assert preemption_reservation(unlimited.cluster_queues["a"], used, {fr: 5000}, borrows=True) == {fr: 5000}


# 3. LocalQueue HoldAndDrain evicts its admitted workloads ----------------------------------------


def _drain(cfg: QueueConfig, lq_key: tuple[str, str]) -> QueueConfig:
    lq = cfg.local_queues[lq_key].model_copy(update={"stop_policy": StopPolicy.HOLD_AND_DRAIN})
    return cfg.with_objects(local_queues={**cfg.local_queues, lq.key: lq})


def test_local_queue_hold_and_drain_evicts_its_admitted_workloads() -> None:
    """site/content/en/docs/concepts/local_queue.md, "Stop policy" (and the LocalQueue CRD's
    stopPolicy): "HoldAndDrain - Admitted workloads are evicted and Reserving workloads will cancel
    the reservation". Only that LocalQueue's workloads go; the cycle runs even though no
    ClusterQueue has pending work (audit s1)."""
    base = config([cq("q", {"default": {GPU: 8}})])
    cfg = _with_local_queues(
        base,
        LocalQueue(name="q", namespace="ns-a", cluster_queue="q"),
        LocalQueue(name="q", namespace="ns-b", cluster_queue="q"),
    )
    s = Scheduler(cfg)
    assert fill(s, [_in("q", "ns-a", 2, "drained"), _in("q", "ns-b", 2, "kept")]) == ["drained", "kept"]
    s.reconfigure(_drain(cfg, ("ns-a", "q")))
    assert not s.pending.active  # nothing pending: only the drain makes the cycle run
    result = s.cycle(T0)
    assert [(e.job_id, e.cluster_queue, e.reason) for e in result.evictions] == [
        ("drained", "q", "LocalQueue ns-a/q is draining (stopPolicy HoldAndDrain)")
    ]
    s.submit(_in("q", "ns-a", 1, "new"))
    result = s.cycle(T0)
    assert result.admitted == []
    assert s.explain("new") == "LocalQueue ns-a/q is stopped (stopPolicy HoldAndDrain)"


def test_a_workload_of_a_draining_cluster_queue_and_local_queue_is_evicted_once() -> None:
    """Both stop policies drain the same workload: one Evict (the ClusterQueue's)."""
    cfg = config([cq("q", {"default": {GPU: 8}})])
    s = Scheduler(cfg)
    fill(s, [job("q", 1, name="running")])
    both = _drain(cfg, ("ns-q", "q"))
    both = both.with_objects(
        cluster_queues={
            "q": both.cluster_queues["q"].model_copy(update={"stop_policy": StopPolicy.HOLD_AND_DRAIN})
        }
    )
    s.reconfigure(both)
    assert [(e.job_id, e.reason) for e in s.cycle(T0).evictions] == [
        ("running", "ClusterQueue q is draining (stopPolicy HoldAndDrain)")
    ]


# 4. namespaceSelector sees kubernetes.io/metadata.name -------------------------------------------


def _selecting(selector: dict[str, str] | None) -> QueueConfig:
    return _with_local_queues(
        config([cq("q", {"default": {GPU: 8}}, namespace_selector=selector)]),
        LocalQueue(name="q", namespace="team-a", cluster_queue="q"),
        LocalQueue(name="q", namespace="team-b", cluster_queue="q"),
    )


def test_namespace_selector_matches_the_namespace_name_label() -> None:
    """Kubernetes sets the immutable label ``kubernetes.io/metadata.name: <namespace>`` on every
    namespace (NamespaceDefaultLabelName), and Kueue matches ``namespaceSelector`` against the
    namespace's labels (pkg/workload/admissibility ValidateAdmissibility; docs
    concepts/cluster_queue.md "Namespace selector"), so selecting by name admits exactly that
    namespace (audit n1)."""
    s = Scheduler(_selecting({"kubernetes.io/metadata.name": "team-a"}))
    assert fill(s, [_in("q", "team-a", 1, "a"), _in("q", "team-b", 1, "b")]) == ["a"]
    assert s.explain("b") == "namespace team-b does not match the namespaceSelector of ClusterQueue q"


def test_explicit_namespace_labels_win_over_the_implicit_name_label() -> None:
    labels = {"team-a": {"kubernetes.io/metadata.name": "renamed", "team": "ml"}}
    s = Scheduler(
        _selecting({"kubernetes.io/metadata.name": "team-a"}), AdmissionPolicy(namespace_labels=labels)
    )
    assert fill(s, [_in("q", "team-a", 1, "a")]) == []
    s = Scheduler(
        _selecting({"kubernetes.io/metadata.name": "team-a", "team": "ml"}),
        AdmissionPolicy(namespace_labels={}),
    )
    assert fill(s, [_in("q", "team-a", 1, "a")]) == []  # the name matches, the other label is missing


def test_a_cluster_queue_without_selector_still_admits_every_namespace() -> None:
    """budcore's documented choice (budcore.config.kueue): no namespaceSelector admits every
    namespace (Kueue's null selector matches none; dumped YAML always writes ``{}``)."""
    s = Scheduler(_selecting(None))
    assert fill(s, [_in("q", "team-a", 1, "a"), _in("q", "team-b", 1, "b")]) == ["a", "b"]


def test_a_first_head_that_fitted_at_the_start_no_longer_fits_without_holding_room() -> None:
    """x (queue a, within a's nominal 2) fitted when the cycle started by borrowing b's 4 GPUs;
    y (queue b, no borrowing, so first) takes them. x is now above every flavor's availability,
    but Kueue assigned it at nomination and only says "no longer fits": no room held for it (the
    cycle tells without assigning it again, ``_Cycle._fits_at_start``), and its message is Kueue's."""
    s = Scheduler(config([cq("a", {"default": {GPU: 2}}, "pool"), cq("b", {"default": {GPU: 4}}, "pool")]))
    assert fill(s, [job("a", 2, name="a-own")]) == ["a-own"]
    s.submit(job("a", 2, name="x", priority=JobPriority.HIGH))
    s.submit(job("b", 4, name="y"))
    result = s.cycle(T0)
    assert [a.job_id for a in result.admitted] == ["y"]
    assert result.reserved == {}
    assert s.reasons["x"] == NO_LONGER_FITS


def test_a_pinned_overlay_keeps_what_its_base_had() -> None:
    """``QuotaUsage.pin``: what the cycle's first heads' reasons read stays as the cycle saw it
    after the caller applies the cycle's admissions to its usage (``_Cycle.freeze_reasons``)."""
    s = Scheduler(config([cq("a", {"default": {GPU: 4}}, "pool"), cq("b", {"default": {GPU: 4}}, "pool")]))
    base = s.usage
    view = base.overlay()
    view.pin(["a"])
    node = s.tree.cluster_queues["a"]
    base.add("a", {("default", GPU): 3000})
    base.add("b", {("default", GPU): 1000})
    assert view.get(node, ("default", GPU)) == 0  # pinned: the base's later change does not show
    assert view.get(s.tree.cluster_queues["b"], ("default", GPU)) == 1000  # not pinned: read live
    assert base.frozen().get(node, ("default", GPU)) == 3000
