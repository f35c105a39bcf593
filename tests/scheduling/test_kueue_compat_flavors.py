"""Golden regressions: flavor assignment divergences from Kueue found by an audit.

References are kubernetes-sigs/kueue v0.20 (the latest release; Apache-2.0):

- ``pkg/scheduler/flavorassigner/flavorassigner.go``: ``assignFlavors`` (the ``pods`` request),
  ``fitsResourceQuota`` (a resource that needs preemption asks the oracle), ``shouldTryNextFlavor``
  (a flavor without preemption candidates never ends the search), ``isPreferred`` (no candidates
  rank below preempt and reclaim; then fewer borrowing);
- ``pkg/scheduler/preemption/preemption_oracle.go``: ``SimulatePreemption`` (run the preemptor's
  target search for one flavor-resource; ``NoCandidates``, ``Preempt`` or ``Reclaim``, and the
  borrowing level that remains once the targets are removed: ``borrowAfterPreemptions``).

The oracle tests call :func:`assign_flavors` with :meth:`PreemptionOracle.for_workload` on a
:class:`Scheduler`'s snapshot (what the admission cycle passes once it is wired in; without an
oracle, :func:`assign_flavors` keeps its static judgement, which the tests also pin), and a
property checks the oracle against :func:`find_victims` on random cohorts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from scheduling.test_preemption_properties import EXAMPLES, NOW, World, worlds

from budcore.config.kueue import loads_queue_config
from budcore.domain.ids import JobId
from budcore.domain.job import Job, PodSet, ResourceRequest
from budcore.domain.priority import JobPriority
from budcore.domain.resources import ResourceVector
from budcore.ports.preemption_cost import VictimInfo
from budcore.scheduling import AdmissionSnapshot, Scheduler
from budcore.scheduling.assignment import Assignment, Mode, Possibility, assign_flavors, borrowing_height
from budcore.scheduling.pending import PendingWorkload
from budcore.scheduling.preemption import DecisionStatus, PreemptionOracle, PreemptionPolicy, find_victims
from budcore.scheduling.quota import QuotaUsage

T0 = datetime(2026, 1, 1, tzinfo=UTC)

FLAVORS_AB = """
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: a}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: b}
"""


def _cq(name: str, spec: str) -> str:
    return f"""
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {{name: {name}}}
spec:
  namespaceSelector: {{}}
{spec}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {{name: lq, namespace: {name}}}
spec: {{clusterQueue: {name}}}
"""


def _job(
    name: str,
    queue: str,
    *,
    cpu: int = 0,
    gpus: int = 0,
    pods: int = 1,
    t: int = 0,
    prio: JobPriority = JobPriority.NORMAL,
    **kw: object,
) -> Job:
    return Job(
        id=name,
        name=name,
        tenant=queue,
        local_queue="lq",
        request=ResourceRequest.single(gpus=gpus, cpu=cpu, memory=0, pods=pods),
        created_at=T0 + timedelta(seconds=t),
        priority=prio,
        **kw,  # type: ignore[arg-type]
    )


def _assign(s: Scheduler, workload: PendingWorkload, oracle: bool = True) -> Assignment:
    """The flavor assignment the cycle computes for ``workload`` now, with or without the oracle."""
    cq = s.config.cluster_queues[workload.cluster_queue]
    node = s.tree.cluster_queues[workload.cluster_queue]
    simulate = PreemptionOracle(s.snapshot()).for_workload(workload) if oracle else None
    return assign_flavors(
        cq, node, workload.job.request, s.usage, s.config.flavors, s.policy.matcher, simulate
    )


def _flavor(assignment: Assignment, resource: str) -> str:
    return assignment.flavors["main"][resource]


# --------------------------------------------------------------------------------------------
# 1. The ``pods`` resource

PODS_QUEUE = """
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: default}
""" + _cq(
    "cq",
    """  resourceGroups:
  - coveredResources: [cpu, pods]
    flavors:
    - name: default
      resources: [{name: cpu, nominalQuota: 100}, {name: pods, nominalQuota: 4}]""",
)
PODS_PREEMPTING = PODS_QUEUE.replace(
    "  resourceGroups:", "  preemption: {withinClusterQueue: LowerPriority}\n  resourceGroups:"
)


def test_pods_quota_counts_one_pod_per_pod() -> None:
    """Kueue ``assignFlavors``: when the ClusterQueue has a resource group for ``pods``, each pod
    set requests ``pods = podSet.Count`` (flavorassigner.go, ``a.cq.RGByResource(corev1.ResourcePods)
    != nil``: ``podSet.Requests.Set(corev1.ResourcePods, int64(podSet.Count))``), so ``pods: 4``
    admits one 4-pod job, not three (audit y2_pods_resource)."""
    s = Scheduler(loads_queue_config(PODS_QUEUE))
    for i in range(3):
        s.submit(_job(f"j{i}", "cq", cpu=1, pods=4, t=i))
    result = s.cycle(T0)
    assert [a.job_id for a in result.admitted] == ["j0"]
    assert result.admitted[0].usage == {("default", "cpu"): 4000, ("default", "pods"): 4000}
    assert dict(s.usage_of("cq")) == {("default", "cpu"): 4000, ("default", "pods"): 4000}
    assert s.explain("j1") == (
        "couldn't assign flavors to pod set main: insufficient unused quota for pods in flavor default, "
        "4 more needed"
    )


def test_pods_are_not_charged_by_a_queue_that_does_not_cover_them() -> None:
    """Only a ClusterQueue with a resource group for ``pods`` counts pods (flavorassigner.go
    ``assignFlavors``): elsewhere ``pods`` is neither charged nor an uncovered resource."""
    text = PODS_QUEUE.replace("[cpu, pods]", "[cpu]").replace(", {name: pods, nominalQuota: 4}", "")
    s = Scheduler(loads_queue_config(text))
    for i in range(3):
        s.submit(_job(f"j{i}", "cq", cpu=1, pods=4, t=i))
    assert sorted(a.job_id for a in s.cycle(T0).admitted) == ["j0", "j1", "j2"]
    assert dict(s.usage_of("cq")) == {("default", "cpu"): 12000}
    assert s.pending.get("j0") is None


def test_pods_of_every_pod_set_of_a_gang_count() -> None:
    """Each pod set is charged its own count (flavorassigner.go ``assignFlavors``, per pod set),
    so a 3 + 2 pod gang needs 5 pods of quota."""
    s = Scheduler(loads_queue_config(PODS_QUEUE))
    gang = ResourceRequest(
        pod_sets=(
            PodSet(name="leader", count=3, resources=ResourceVector.of({"cpu": 1})),
            PodSet(name="worker", count=2, resources=ResourceVector.of({"cpu": 1})),
        )
    )
    s.submit(Job(id="gang", name="gang", tenant="cq", local_queue="lq", request=gang, created_at=T0))
    s.submit(_job("one", "cq", cpu=1, pods=4, t=1))
    admitted = [a.job_id for a in s.cycle(T0).admitted]
    assert admitted == ["one"]  # the gang (5 pods) can never fit pods: 4; the 4-pod job can
    # Kueue's wording: the worker pod set comes after the leader's 3 pods.
    assert (
        "couldn't assign flavors to pod set worker: insufficient quota for pods in flavor default, "
        "previously considered podsets requests (3) + current podset request (2) > maximum capacity (4)"
    ) in s.explain("gang")


def test_a_pods_failure_does_not_skip_a_request_with_fewer_pods() -> None:
    """The cycle skips a request at least as large, in every resource, as one that failed for lack
    of quota. The per-shape demand must include the ``pods`` Kueue charges (flavorassigner.go
    ``assignFlavors``): ``x`` (2 pods × 1 cpu) fails on pods once ``first`` (3 pods) is in, and
    ``y`` (1 pod × 4 cpu) has more cpu but fewer pods, so it still fits in the same cycle."""
    s = Scheduler(loads_queue_config(PODS_QUEUE))
    s.submit(_job("first", "cq", cpu=1, pods=3, t=0))
    x = s.submit(_job("x", "cq", cpu=1, pods=2, t=1))
    y = s.submit(_job("y", "cq", cpu=4, pods=1, t=2))
    assert x.demand == {"cpu": 2000, "pods": 2000}
    assert y.demand == {"cpu": 4000, "pods": 1000}
    result = s.cycle(T0)
    assert [a.job_id for a in result.admitted] == ["first", "y"]
    assert [p.job_id for p in result.pending] == ["x"]
    assert result.skipped == 0


def test_reconfiguring_pods_coverage_refreshes_pending_demands() -> None:
    """A pending workload's demand follows its ClusterQueue's coverage of ``pods`` across a
    reconfiguration (it feeds the same ceiling and dominance checks)."""
    without = PODS_QUEUE.replace("[cpu, pods]", "[cpu]").replace(", {name: pods, nominalQuota: 4}", "")
    s = Scheduler(loads_queue_config(without))
    s.submit(_job("j", "cq", cpu=1, pods=2))
    assert s.pending.get("j").demand == {"cpu": 2000}  # type: ignore[union-attr]
    s.reconfigure(loads_queue_config(PODS_QUEUE))
    assert s.pending.get("j").demand == {"cpu": 2000, "pods": 2000}  # type: ignore[union-attr]
    s.reconfigure(loads_queue_config(without))
    assert s.pending.get("j").demand == {"cpu": 2000}  # type: ignore[union-attr]


def test_preemption_frees_the_pods_of_its_victims() -> None:
    """The preemptor's request and its victims' usage both carry ``pods`` (Kueue v0.20 sizes
    preemption targets with the assigned ``pods`` too, #16167): a 1-pod high-priority job preempts
    the 4-pod low-priority job holding all ``pods`` quota, and is admitted once it is gone."""
    s = Scheduler(loads_queue_config(PODS_PREEMPTING))
    s.submit(_job("low", "cq", cpu=1, pods=4, prio=JobPriority.LOW))
    s.cycle(T0)
    s.submit(_job("high", "cq", cpu=1, pods=1, t=1, prio=JobPriority.HIGH))
    result = s.cycle(T0 + timedelta(seconds=1))
    (needs,) = result.needs_preemption
    assert needs.usage == {("default", "cpu"): 1000, ("default", "pods"): 1000}
    (decision,) = result.preemptions
    assert decision.status is DecisionStatus.PREEMPT
    assert decision.victim_ids == ("low",)
    assert "pods in default" in decision.reason
    s.release("low", T0 + timedelta(seconds=2))
    assert [a.job_id for a in s.cycle(T0 + timedelta(seconds=2)).admitted] == ["high"]
    assert dict(s.usage_of("cq")) == {("default", "cpu"): 1000, ("default", "pods"): 1000}


# --------------------------------------------------------------------------------------------
# 2. A flavor where preemption finds no candidates does not end the search

NO_CANDIDATES = FLAVORS_AB + _cq(
    "cq",
    """  preemption: {withinClusterQueue: LowerPriority}
  flavorFungibility: {whenCanBorrow: MayStopSearch, whenCanPreempt: MayStopSearch}
  resourceGroups:
  - coveredResources: [nvidia.com/gpu]
    flavors:
    - {name: a, resources: [{name: nvidia.com/gpu, nominalQuota: 8}]}
    - {name: b, resources: [{name: nvidia.com/gpu, nominalQuota: 8}]}""",
)


def test_no_preemption_candidates_tries_the_next_flavor() -> None:
    """flavorassigner.go ``fitsResourceQuota`` asks ``oracle.SimulatePreemption``; ``NoCandidates``
    becomes ``noPreemptionCandidates``, for which ``shouldTryNextFlavor`` is true even with
    ``whenCanPreempt: MayStopSearch``. Flavor a holds a job of the same priority (no candidate
    under ``LowerPriority``), flavor b is empty: the workload gets b (audit
    f1_no_candidates_stops_search; budcore used to stop at a and pend forever)."""
    s = Scheduler(loads_queue_config(NO_CANDIDATES))
    s.submit(_job("first", "cq", gpus=8))
    s.cycle(T0)
    second = s.submit(_job("second", "cq", gpus=8, t=1))
    with_oracle = _assign(s, second)
    assert (with_oracle.mode, _flavor(with_oracle, "nvidia.com/gpu")) == (Mode.FIT, "b")
    assert with_oracle.borrows is False
    # Without an oracle the static rule stays: a queue that can preempt stops at a.
    without = _assign(s, second, oracle=False)
    assert (without.mode, _flavor(without, "nvidia.com/gpu")) == (Mode.PREEMPT, "a")


def test_a_flavor_with_candidates_still_ends_the_search() -> None:
    """The same queue with a lower-priority job on a: the simulation finds it (``Preempt``), and
    ``whenCanPreempt: MayStopSearch`` stops at a (``shouldTryNextFlavor`` is false for a preempt
    mode without borrowing)."""
    s = Scheduler(loads_queue_config(NO_CANDIDATES))
    s.submit(_job("first", "cq", gpus=8, prio=JobPriority.LOW))
    s.cycle(T0)
    high = s.submit(_job("high", "cq", gpus=8, t=1, prio=JobPriority.HIGH))
    assignment = _assign(s, high)
    assert (assignment.mode, _flavor(assignment, "nvidia.com/gpu")) == (Mode.PREEMPT, "a")
    assert PreemptionOracle(s.snapshot()).for_workload(high)(("a", "nvidia.com/gpu"), 8000) == (
        Possibility.PREEMPT,
        0,
    )


def test_guarded_victims_are_no_candidates() -> None:
    """budcore's guards hold in the oracle as in ``find_victims``: a ``preemptible=False`` job (from
    the victims' facts) is no candidate, so its flavor does not end the search either."""
    s = Scheduler(loads_queue_config(NO_CANDIDATES))
    s.submit(_job("pinned", "cq", gpus=8, prio=JobPriority.LOW, preemptible=False))
    s.cycle(T0)
    high = s.submit(_job("high", "cq", gpus=8, t=1, prio=JobPriority.HIGH))
    facts = {"pinned": VictimInfo(job_id=JobId("pinned"), preemptible=False)}
    oracle = PreemptionOracle(s.snapshot(), victim_info=facts).for_workload(high)
    assert oracle(("a", "nvidia.com/gpu"), 8000) is None
    # Without facts the job is an ordinary low-priority candidate.
    assert PreemptionOracle(s.snapshot()).for_workload(high)(("a", "nvidia.com/gpu"), 8000) == (
        Possibility.PREEMPT,
        0,
    )


def test_critical_priority_protects_without_facts() -> None:
    """Without facts about a victim, a critical priority value protects it (as in ``find_victims``)."""
    s = Scheduler(loads_queue_config(NO_CANDIDATES))
    s.submit(_job("vip", "cq", gpus=8, prio=JobPriority.CRITICAL))
    s.cycle(T0)
    oracle = PreemptionOracle(s.snapshot())
    assert (
        oracle.simulate("cq", JobPriority.CRITICAL.value_int + 1, None, ("a", "nvidia.com/gpu"), 8000) is None
    )


def test_a_job_that_never_preempts_finds_no_candidates() -> None:
    """``preempts_others=False``: the oracle answers no candidates everywhere, so a flavor needing
    preemption never ends its search and an empty flavor is used."""
    s = Scheduler(loads_queue_config(NO_CANDIDATES))
    s.submit(_job("first", "cq", gpus=8, prio=JobPriority.LOW))
    s.cycle(T0)
    polite = s.submit(_job("polite", "cq", gpus=8, t=1, prio=JobPriority.HIGH, preempts_others=False))
    assignment = _assign(s, polite)
    assert (assignment.mode, _flavor(assignment, "nvidia.com/gpu")) == (Mode.FIT, "b")


def test_no_candidates_rank_below_a_flavor_that_can_preempt() -> None:
    """With ``whenCanPreempt: TryNextFlavor`` every flavor is tried and the preferred one is kept:
    ``isPreferred`` ranks ``noPreemptionCandidates`` below the viable modes. a holds an
    equal-priority job (no candidates), b a lower-priority one: the workload preempts on b, where
    budcore used to pick a (the first flavor needing preemption) and find nobody there."""
    text = NO_CANDIDATES.replace("whenCanPreempt: MayStopSearch", "whenCanPreempt: TryNextFlavor")
    s = Scheduler(loads_queue_config(text))
    s.submit(_job("peer", "cq", gpus=8, prio=JobPriority.HIGH))
    s.submit(_job("low", "cq", gpus=8, t=1, prio=JobPriority.LOW))
    s.cycle(T0)
    assert s.admitted["peer"].flavors["main"]["nvidia.com/gpu"] == "a"
    assert s.admitted["low"].flavors["main"]["nvidia.com/gpu"] == "b"
    high = s.submit(_job("high", "cq", gpus=8, t=2, prio=JobPriority.HIGH))
    assignment = _assign(s, high)
    assert (assignment.mode, _flavor(assignment, "nvidia.com/gpu")) == (Mode.PREEMPT, "b")
    assert _flavor(_assign(s, high, oracle=False), "nvidia.com/gpu") == "a"


RECLAIM_OVER_PREEMPT = (
    FLAVORS_AB
    + _cq(
        "cq",
        """  cohortName: c
  preemption: {withinClusterQueue: LowerPriority, reclaimWithinCohort: Any}
  flavorFungibility: {whenCanBorrow: MayStopSearch, whenCanPreempt: TryNextFlavor}
  resourceGroups:
  - coveredResources: [cpu]
    flavors:
    - {name: a, resources: [{name: cpu, nominalQuota: 4}]}
    - {name: b, resources: [{name: cpu, nominalQuota: 4}]}""",
    )
    + _cq(
        "other",
        """  cohortName: c
  resourceGroups:
  - coveredResources: [cpu]
    flavors:
    - {name: a, resources: [{name: cpu, nominalQuota: 0}]}
    - {name: b, resources: [{name: cpu, nominalQuota: 0}]}""",
    )
)


def test_reclaim_is_preferred_over_preemption_within_the_queue() -> None:
    """``isPreferred`` (flavorassigner.go) compares the granular preemption modes, ``reclaim``
    above ``preempt`` (``SimulatePreemption`` returns ``Reclaim`` when no target is in the
    preemptor's ClusterQueue). a needs a low-priority job of the queue itself evicted, b only
    needs quota lent to ``other`` reclaimed: with ``whenCanPreempt: TryNextFlavor`` the workload
    goes to b."""
    s = Scheduler(loads_queue_config(RECLAIM_OVER_PREEMPT))
    s.submit(_job("own-low", "cq", cpu=4, prio=JobPriority.LOW))
    s.cycle(T0)
    assert s.admitted["own-low"].flavors["main"]["cpu"] == "a"
    s.submit(_job("borrower", "other", cpu=4, t=1))
    s.cycle(T0 + timedelta(seconds=1))
    assert s.admitted["borrower"].flavors["main"]["cpu"] == "b"  # borrowed from cq
    high = s.submit(_job("high", "cq", cpu=4, t=2, prio=JobPriority.HIGH))
    oracle = PreemptionOracle(s.snapshot()).for_workload(high)
    assert oracle(("a", "cpu"), 4000) == (Possibility.PREEMPT, 0)  # no borrowing after
    assert oracle(("b", "cpu"), 4000) == (Possibility.RECLAIM, 0)  # no borrowing after
    assignment = _assign(s, high)
    assert (assignment.mode, _flavor(assignment, "cpu")) == (Mode.PREEMPT, "b")
    # Without an oracle both need preemption and the borrowing level is judged before it: on a the
    # queue would borrow (one level up), on b not, so b is preferred there too.
    assert _flavor(_assign(s, high, oracle=False), "cpu") == "b"


# --------------------------------------------------------------------------------------------
# 3. Borrowing of a flavor that needs preemption is judged after the preemption

BORROW_AFTER = (
    FLAVORS_AB
    + _cq(
        "cq",
        """  cohortName: c
  preemption: {withinClusterQueue: LowerPriority}
  flavorFungibility: {whenCanBorrow: TryNextFlavor, whenCanPreempt: MayStopSearch}
  resourceGroups:
  - coveredResources: [cpu]
    flavors:
    - {name: a, resources: [{name: cpu, nominalQuota: 10}]}
    - {name: b, resources: [{name: cpu, nominalQuota: 0}]}""",
    )
    + _cq(
        "other",
        """  cohortName: c
  resourceGroups:
  - coveredResources: [cpu]
    flavors:
    - {name: a, resources: [{name: cpu, nominalQuota: 0}]}
    - {name: b, resources: [{name: cpu, nominalQuota: 10}]}""",
    )
)


def test_a_flavor_needing_preemption_borrows_only_if_it_still_does_after_it() -> None:
    """flavorassigner.go ``fitsResourceQuota`` takes the borrowing of a preempt-mode flavor from
    ``SimulatePreemption`` (preemption_oracle.go: ``FindHeightOfLowestSubtreeThatFits`` after
    ``SimulateWorkloadUsageRemoval`` of the targets), and ``shouldTryNextFlavor`` stops at a
    preempt mode whose borrowing level is optimal. On a the queue uses 8 of its nominal 10 (a
    low-priority job); the 4-cpu high-priority job preempts it and then runs unborrowed (4 ≤ 10),
    so the search stops at a instead of moving on to borrow b from the cohort (audit
    f3_borrow_after_preemption)."""
    s = Scheduler(loads_queue_config(BORROW_AFTER))
    s.submit(_job("low", "cq", cpu=8, prio=JobPriority.LOW))
    s.cycle(T0)
    high = s.submit(_job("high", "cq", cpu=4, t=1, prio=JobPriority.HIGH))
    assert PreemptionOracle(s.snapshot()).for_workload(high)(("a", "cpu"), 4000) == (Possibility.PREEMPT, 0)
    assignment = _assign(s, high)
    assert (assignment.mode, _flavor(assignment, "cpu"), assignment.borrows) == (Mode.PREEMPT, "a", False)
    # Judged on current usage (8 + 4 > 10) the flavor "borrows" and b is taken by borrowing.
    without = _assign(s, high, oracle=False)
    assert (without.mode, _flavor(without, "cpu"), without.borrows) == (Mode.FIT, "b", True)


STILL_BORROWING = (
    FLAVORS_AB
    + _cq(
        "cq",
        """  cohortName: c
  preemption: {withinClusterQueue: LowerPriority}
  flavorFungibility: {whenCanBorrow: TryNextFlavor, whenCanPreempt: MayStopSearch}
  resourceGroups:
  - coveredResources: [cpu]
    flavors:
    - {name: a, resources: [{name: cpu, nominalQuota: 4}]}
    - {name: b, resources: [{name: cpu, nominalQuota: 10}]}""",
    )
    + _cq(
        "other",
        """  cohortName: c
  resourceGroups:
  - coveredResources: [cpu]
    flavors:
    - {name: a, resources: [{name: cpu, nominalQuota: 6}]}
    - {name: b, resources: [{name: cpu, nominalQuota: 0}]}""",
    )
)


def test_a_flavor_that_still_borrows_after_preemption_tries_the_next() -> None:
    """The other side of ``shouldTryNextFlavor``: when the queue would still borrow once the
    victims are gone (``borrowAfterPreemptions`` > 0) and ``whenCanBorrow: TryNextFlavor``, the
    next flavor is tried. With nominal 4 on a and 8 cpu asked, preempting the 4-cpu low job still
    leaves the queue borrowing 4 of the cohort's a; b fits within the queue's own quota."""
    s = Scheduler(loads_queue_config(STILL_BORROWING))
    s.submit(_job("low", "cq", cpu=4, prio=JobPriority.LOW))
    s.cycle(T0)
    assert s.admitted["low"].flavors["main"]["cpu"] == "a"
    high = s.submit(_job("high", "cq", cpu=8, t=1, prio=JobPriority.HIGH))
    assert PreemptionOracle(s.snapshot()).for_workload(high)(("a", "cpu"), 8000) == (
        Possibility.PREEMPT,
        1,  # borrowing from the cohort, one level up
    )
    assignment = _assign(s, high)
    assert (assignment.mode, _flavor(assignment, "cpu"), assignment.borrows) == (Mode.FIT, "b", False)


def test_the_oracle_reads_the_usage_it_is_given() -> None:
    """The oracle answers on the snapshot's usage as it is at each question (the cycle hands its
    own overlay, which grows as it admits): once the quota the victim would free is taken by
    someone else, preempting it no longer makes room."""
    s = Scheduler(loads_queue_config(BORROW_AFTER))
    s.submit(_job("low", "cq", cpu=8, prio=JobPriority.LOW))
    s.cycle(T0)
    high = s.submit(_job("high", "cq", cpu=4, t=1, prio=JobPriority.HIGH))
    usage = s.usage.overlay()
    oracle = PreemptionOracle(AdmissionSnapshot(s.tree, usage, s.admitted)).for_workload(high)
    assert oracle(("a", "cpu"), 4000) == (Possibility.PREEMPT, 0)
    usage.add("other", {("a", "cpu"): 8000})  # the cohort's a is taken: evicting low frees only 2
    assert oracle(("a", "cpu"), 4000) is None
    assert s.usage.get(s.tree.cluster_queues["other"], ("a", "cpu")) == 0  # the snapshot is unchanged


# --------------------------------------------------------------------------------------------
# The oracle is find_victims for one flavor-resource


@settings(max_examples=EXAMPLES)
@given(st.booleans().flatmap(lambda fair: st.tuples(st.just(fair), worlds(fair))))
def test_the_oracle_answers_what_find_victims_decides(case: tuple[bool, World]) -> None:
    """``SimulatePreemption`` runs the preemptor's own target search (preemption_oracle.go:
    ``p.preemptor.getTargets``), so for a one-flavor-resource request the oracle finds victims
    exactly when :func:`find_victims` (``kueue`` mode) does; ``Reclaim`` iff none is in the
    preemptor's ClusterQueue, and the borrowing is the queue's once those victims are gone."""
    fair, world = case
    needs = world.needs
    ((fr, amount),) = needs.usage.items()
    decision = find_victims(
        world.snapshot,
        needs,
        now=NOW,
        policy=PreemptionPolicy(fair_sharing=fair),
        victim_info=world.info,
        preemptor_timestamp=world.preemptor_timestamp,
    )
    oracle = PreemptionOracle(world.snapshot, PreemptionPolicy(fair_sharing=fair), victim_info=world.info)
    answer = oracle.simulate(needs.cluster_queue, needs.priority, world.preemptor_timestamp, fr, amount)
    if decision.status is DecisionStatus.FITS:
        return  # the flavor assigner asks only about what does not fit
    if decision.status is DecisionStatus.IMPOSSIBLE:
        assert answer is None
        return
    snap = world.snapshot
    usage = QuotaUsage(snap.tree)
    for w in snap.admitted.values():
        if w.job_id not in decision.victim_ids:
            usage.add(w.cluster_queue, w.usage)
    node = snap.tree.cluster_queues[needs.cluster_queue]
    height = borrowing_height(node, fr, usage, amount)[0]
    reclaim = all(v.cluster_queue != needs.cluster_queue for v in decision.victims)
    assert answer == (Possibility.RECLAIM if reclaim else Possibility.PREEMPT, height)
