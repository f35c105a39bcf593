"""Admission invariants over random quota trees, flavors and workloads.

Each property checks the scheduler against an independent recomputation from the admitted
workloads, not against its own bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st
from support.admission import GPU, T0, config, cq, groups

from budcore.domain.job import Job, PodSet, ResourceRequest
from budcore.domain.priority import JobPriority
from budcore.domain.resources import ResourceVector
from budcore.scheduling import (
    AdmissionPolicy,
    ClusterQueue,
    Cohort,
    FlavorFungibility,
    FlavorQuotas,
    FungibilityAction,
    LocalQueue,
    QueueConfig,
    QueueingStrategy,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
    Scheduler,
)
from budcore.testing.examples import examples

RESOURCES = (GPU, "cpu")
FLAVORS = ("f0", "f1", "f2")
EXAMPLES = examples(1000)


@st.composite
def resource_quota(draw: st.DrawFn, name: str) -> ResourceQuota:
    nominal = draw(st.integers(0, 8))
    borrowing = draw(st.none() | st.integers(0, 6))
    lending = draw(st.none() | st.integers(0, nominal))
    return ResourceQuota(
        name=name,
        nominal_quota=nominal * 1000,
        borrowing_limit=None if borrowing is None else borrowing * 1000,
        lending_limit=None if lending is None else lending * 1000,
    )


@st.composite
def resource_groups(draw: st.DrawFn) -> tuple[ResourceGroup, ...]:
    flavors = draw(st.lists(st.sampled_from(FLAVORS), min_size=1, max_size=3, unique=True))
    return (
        ResourceGroup(
            covered_resources=RESOURCES,
            flavors=tuple(
                FlavorQuotas(name=f, resources=tuple(draw(resource_quota(r)) for r in RESOURCES))
                for f in flavors
            ),
        ),
    )


@st.composite
def queue_configs(draw: st.DrawFn, nested: bool = True) -> QueueConfig:
    n_cohorts = draw(st.integers(0, 3))
    cohorts = []
    for i in range(n_cohorts):
        parent = draw(st.none() | st.sampled_from([f"c{j}" for j in range(i)])) if nested and i else None
        own = draw(resource_groups()) if nested and draw(st.booleans()) else ()
        cohorts.append(Cohort(name=f"c{i}", parent=parent, resource_groups=own))
    cqs = []
    for i in range(draw(st.integers(1, 5))):
        cohort = draw(st.none() | st.sampled_from([c.name for c in cohorts])) if cohorts else None
        cqs.append(
            ClusterQueue(
                name=f"q{i}",
                cohort=cohort,
                resource_groups=draw(resource_groups()),
                queueing_strategy=draw(st.sampled_from(QueueingStrategy)),
                flavor_fungibility=FlavorFungibility(
                    when_can_borrow=draw(st.sampled_from(FungibilityAction)),
                    when_can_preempt=draw(st.sampled_from(FungibilityAction)),
                ),
            )
        )
    return QueueConfig.build(
        flavors=[ResourceFlavor(name=f) for f in FLAVORS],
        cohorts=cohorts,
        cluster_queues=cqs,
        local_queues=[LocalQueue(name="lq", namespace=f"ns-{q.name}", cluster_queue=q.name) for q in cqs],
    )


@st.composite
def workloads(
    draw: st.DrawFn, config: QueueConfig, max_size: int = 25, max_pod_sets: int = 2, min_counts: bool = False
) -> list[Job]:
    """Random jobs for ``config``'s queues; with ``min_counts``, pod sets may shrink (partial admission)."""
    names = sorted(config.cluster_queues)
    jobs = []
    for i in range(draw(st.integers(0, max_size))):
        q = draw(st.sampled_from(names))
        pod_sets = []
        for k in range(draw(st.integers(1, max_pod_sets))):
            count = draw(st.integers(1, 6 if min_counts else 3))
            pod_sets.append(
                PodSet(
                    name=f"p{k}",
                    count=count,
                    resources=ResourceVector(
                        {GPU: draw(st.integers(0, 4)) * 1000, "cpu": draw(st.integers(1, 4)) * 1000}
                    ),
                    min_count=draw(st.none() | st.integers(1, count)) if min_counts else None,
                )
            )
        created = T0.replace(second=draw(st.integers(0, 59)))
        jobs.append(
            Job(
                id=f"w{i}",
                name=f"w{i}",
                tenant=f"ns-{q}",
                local_queue="lq",
                priority=draw(st.sampled_from(JobPriority)),
                request=ResourceRequest(pod_sets=tuple(pod_sets)),
                created_at=created,
                updated_at=created,
            )
        )
    return jobs


@dataclass
class Run:
    scheduler: Scheduler
    decisions: list[tuple[str, str, str]]


def drive(config: QueueConfig, jobs: list[Job], releases: list[int], fair: bool, check: bool = True) -> Run:
    scheduler = Scheduler(config, AdmissionPolicy(fair_sharing=fair))
    requests = {j.id: j.request for j in jobs}
    decisions: list[tuple[str, str, str]] = []
    for j in jobs:
        scheduler.submit(j)
    for step in range(len(releases) + 1):
        for _ in range(3):
            result = scheduler.cycle(T0)
            decisions += [("admit", a.job_id, repr(sorted(a.usage.items()))) for a in result.admitted]
            decisions += [("pending", p.job_id, p.reason) for p in result.pending]
            if check:
                check_invariants(scheduler, requests)
        if step < len(releases) and scheduler.admitted:
            victim = sorted(scheduler.admitted)[releases[step] % len(scheduler.admitted)]
            scheduler.release(victim, T0)
            if check:
                check_invariants(scheduler, requests)
    return Run(scheduler, decisions)


def admitted_request(request: ResourceRequest, pod_counts: tuple[int, ...] | None) -> ResourceVector:
    """What a workload admitted with ``pod_counts`` pods per pod set holds (every pod when None),
    checking the counts against the pod sets: between ``min_count`` and ``count``, and fewer than
    asked in some pod set (a partial admission that admits everything says None)."""
    if pod_counts is None:
        return request.total
    assert len(pod_counts) == len(request.pod_sets)
    for pod_set, count in zip(request.pod_sets, pod_counts, strict=True):
        lowest = pod_set.min_count if pod_set.min_count is not None else pod_set.count
        assert lowest <= count <= pod_set.count, (pod_set, count)
    assert any(c < p.count for p, c in zip(request.pod_sets, pod_counts, strict=True))
    return ResourceVector.sum(
        p.resources.scaled(c) for p, c in zip(request.pod_sets, pod_counts, strict=True)
    )


def check_invariants(scheduler: Scheduler, requests: dict[str, ResourceRequest]) -> None:
    config = scheduler.config
    # Independent usage per CQ from the admitted workloads.
    per_cq: dict[str, dict[tuple[str, str], int]] = {name: {} for name in config.cluster_queues}
    for admitted in scheduler.admitted.values():
        total_by_resource: dict[str, int] = {}
        for fr, amount in admitted.usage.items():
            per_cq[admitted.cluster_queue][fr] = per_cq[admitted.cluster_queue].get(fr, 0) + amount
            total_by_resource[fr[1]] = total_by_resource.get(fr[1], 0) + amount
        # Gang: every pod set of the workload is accounted for, all or nothing (with the counts
        # partial admission admitted).
        expected = admitted_request(requests[admitted.job_id], admitted.pod_counts)
        assert total_by_resource == dict(expected), admitted
    tree = scheduler.tree
    for name, node in tree.cluster_queues.items():
        cq = config.cluster_queues[name]
        assert dict(scheduler.usage_of(name)) == {k: v for k, v in per_cq[name].items() if v}
        for fr, used in per_cq[name].items():
            quota = cq.quota(*fr)
            assert quota is not None
            if node.parent is None:
                assert used <= quota.nominal_quota, (name, fr, used)
            elif quota.borrowing_limit is not None:
                assert used <= quota.nominal_quota + quota.borrowing_limit, (name, fr, used)
    # No cohort tree uses more than the quota that exists in it.
    for root in tree.roots():
        members = tree.cohort_members(root) if root.is_cohort else [root.name]
        capacity: dict[tuple[str, str], int] = {}
        stack = [root]
        while stack:
            node = stack.pop()
            for fr, amount in node.nominal.items():
                capacity[fr] = capacity.get(fr, 0) + amount
            stack.extend(node.children)
        for fr in {fr for m in members for fr in per_cq[m]}:
            assert sum(per_cq[m].get(fr, 0) for m in members) <= capacity.get(fr, 0), (root.name, fr)
    # lendingLimit: in a flat cohort (only ClusterQueues, no own quota) the guaranteed part
    # nominal − lendingLimit of each queue is never used by the others.
    for cohort in tree.cohorts.values():
        if cohort.nominal or any(child.is_cohort for child in cohort.children) or cohort.parent is not None:
            continue
        frs = {fr for child in cohort.children for fr in child.nominal}
        for fr in frs:
            lent_out = 0
            lendable = 0
            for child in cohort.children:
                quota = config.cluster_queues[child.name].quota(*fr)
                nominal = quota.nominal_quota if quota else 0
                guaranteed = nominal - quota.lending_limit if quota and quota.lending_limit is not None else 0
                lent_out += max(0, per_cq[child.name].get(fr, 0) - guaranteed)
                lendable += nominal - guaranteed
            assert lent_out <= lendable, (cohort.name, fr)


@settings(max_examples=EXAMPLES)
@given(data=st.data(), fair=st.booleans())
def test_quota_invariants_hold_through_admissions_and_releases(data: st.DataObject, fair: bool) -> None:
    config = data.draw(queue_configs())
    jobs = data.draw(workloads(config))
    releases = data.draw(st.lists(st.integers(0, 100), max_size=4))
    drive(config, jobs, releases, fair)


@settings(max_examples=EXAMPLES)
@given(data=st.data(), fair=st.booleans())
def test_partial_admissions_hold_what_they_admitted_within_quota(data: st.DataObject, fair: bool) -> None:
    """Partial admission (``min_count``, Kueue's PodSetReducer) keeps every quota invariant, and an
    admitted workload holds exactly its admitted pod counts, each between ``min_count`` and
    ``count`` (:func:`admitted_request`)."""
    config = data.draw(queue_configs())
    jobs = data.draw(workloads(config, min_counts=True))
    releases = data.draw(st.lists(st.integers(0, 100), max_size=4))
    drive(config, jobs, releases, fair)


@settings(max_examples=EXAMPLES)
@given(data=st.data(), fair=st.booleans())
def test_a_partially_admitted_workload_admits_the_most_pods_that_fit(data: st.DataObject, fair: bool) -> None:
    """Kueue's search gives every pod set the same share of what it may give up; the admitted
    share is the largest that fits: one step more pods (the search index before) does not fit the
    quota that was left when the cycle started (the usage its flavors were assigned against)."""
    from budcore.scheduling.assignment import Mode, assign_flavors
    from budcore.scheduling.quota import QuotaUsage

    config = data.draw(queue_configs())
    jobs = data.draw(workloads(config, max_size=12, min_counts=True))
    scheduler = Scheduler(config, AdmissionPolicy(fair_sharing=fair))
    for j in jobs:
        scheduler.submit(j)
    by_id = {j.id: j for j in jobs}
    for _ in range(len(jobs) + 1):
        before = QuotaUsage(scheduler.tree)  # recomputed from the admitted workloads, frozen
        for w in scheduler.admitted.values():
            before.add(w.cluster_queue, w.usage)
        result = scheduler.cycle(T0)
        for admit in result.admitted:
            if admit.pod_counts is None or len(result.admitted) > 1:
                continue  # other admissions of the cycle may have shaped its search
            request = by_id[admit.job_id].request
            steps = search_steps(request)
            index = steps.index(list(admit.pod_counts))
            assert index > 0  # the whole count would have been admitted without a reduction
            cq = config.cluster_queues[admit.cluster_queue]
            node = scheduler.tree.cluster_queues[admit.cluster_queue]
            matcher = scheduler.policy.matcher
            bigger = assign_flavors(
                cq, node, request, before, config.flavors, matcher, counts=steps[index - 1]
            )
            assert bigger.mode is not Mode.FIT, (admit, steps[index - 1])
        if not result.admitted:
            break


def search_steps(request: ResourceRequest) -> list[list[int]]:
    """The pod counts of each index of Kueue's PodSetReducer search, from every pod to the fewest."""
    full = [p.count for p in request.pod_sets]
    deltas = [p.count - (p.min_count or p.count) for p in request.pod_sets]
    total = sum(deltas)
    return [[c - d * i // total for c, d in zip(full, deltas, strict=True)] for i in range(total + 1)]


@settings(max_examples=EXAMPLES)
@given(data=st.data(), fair=st.booleans())
def test_admission_is_deterministic(data: st.DataObject, fair: bool) -> None:
    config = data.draw(queue_configs())
    jobs = data.draw(workloads(config))
    releases = data.draw(st.lists(st.integers(0, 100), max_size=3))
    first = drive(config, jobs, releases, fair, check=False)
    second = drive(config, list(reversed(jobs)), releases, fair, check=False)
    assert first.decisions == second.decisions


@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_a_workload_that_fits_alone_is_admitted(data: st.DataObject) -> None:
    config = data.draw(queue_configs())
    name = data.draw(st.sampled_from(sorted(config.cluster_queues)))
    cq = config.cluster_queues[name]
    first = cq.resource_groups[0].flavors[0]
    limits = {rq.name: rq.nominal_quota // 1000 for rq in first.resources}
    per_pod = {r: data.draw(st.integers(0, limits[r])) * 1000 for r in RESOURCES}
    job = Job(
        id="alone",
        name="alone",
        tenant=f"ns-{name}",
        local_queue="lq",
        request=ResourceRequest(pod_sets=(PodSet(resources=ResourceVector(per_pod)),)),
        created_at=T0,
        updated_at=T0,
    )
    scheduler = Scheduler(config)
    scheduler.submit(job)
    result = scheduler.cycle(T0)
    assert [a.job_id for a in result.admitted] == ["alone"], scheduler.explain("alone")


def _admissions_in_waves(
    config: QueueConfig, waves: list[list[Job]], releases: list[int], fair: bool, wake_all: bool
) -> list[tuple[int, str, str]]:
    scheduler = Scheduler(config, AdmissionPolicy(fair_sharing=fair))
    admitted: list[tuple[int, str, str]] = []
    for step, wave in enumerate(waves):
        for j in wave:
            scheduler.submit(j)
        for _ in range(2):
            if wake_all:  # what Kueue does: every queue with workloads is looked at again
                queues = scheduler.pending.queues()
                scheduler.pending.active |= {name for name, q in queues.items() if q.entries}
            result = scheduler.cycle(T0)
            admitted += [(step, a.job_id, repr(sorted(a.usage.items()))) for a in result.admitted]
        if step < len(releases) and scheduler.admitted:
            scheduler.release(sorted(scheduler.admitted)[releases[step] % len(scheduler.admitted)], T0)
    return admitted


@settings(max_examples=EXAMPLES)
@given(data=st.data(), fair=st.booleans())
def test_parked_queues_miss_no_admission(data: st.DataObject, fair: bool) -> None:
    """A queue found inadmissible is parked until quota returns to its cohort, and an arrival that
    queues behind the failed head of its shape does not wake it: the admissions are exactly those
    of a scheduler that looks at every queue in every cycle.

    Single pod sets only: a gang's pod sets pick flavors greedily, one after another (as in
    Kueue), so a gang that failed may fit after *more* usage moved its first pod set to another
    flavor; a parked queue, like Kueue's inadmissible list, retries it when quota is released."""
    config = data.draw(queue_configs())
    jobs = data.draw(workloads(config, max_size=30, max_pod_sets=1))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(jobs)), min_size=2, max_size=2)))
    waves = [jobs[: cuts[0]], jobs[cuts[0] : cuts[1]], jobs[cuts[1] :]]
    releases = data.draw(st.lists(st.integers(0, 100), min_size=3, max_size=3))
    lazy = _admissions_in_waves(config, waves, releases, fair, wake_all=False)
    eager = _admissions_in_waves(config, waves, releases, fair, wake_all=True)
    assert lazy == eager


@settings(max_examples=EXAMPLES)
@given(data=st.data(), fair=st.booleans())
def test_best_effort_cycles_leave_nothing_admissible(data: st.DataObject, fair: bool) -> None:
    """Work conservation: once cycles admit nothing more, no pending single-pod-set workload of a
    BestEffortFIFO queue would fit the quota that is left (whatever the cycle skipped, passed over
    or parked, it skipped rightly). "Nothing more" is a cycle that neither admits nor holds room: as
    in Kueue, a cycle may admit nothing because a workload without preemption candidates held room
    that the others' assignments counted on ("no longer fits"); a BestEffortFIFO queue holds it on
    a workload's first try only, so the cycles after admit them (the drawn queues never preempt, so
    no preemptor holds room cycle after cycle).

    Gangs are left out on purpose: their pod sets pick flavors one after another, greedily, as
    Kueue's flavor assigner does, so a gang that did not fit can fit after more usage pushed its
    first pod set onto another flavor; Kueue too retries it only when quota is released."""
    from budcore.scheduling.assignment import Mode, assign_flavors

    drawn = data.draw(queue_configs())
    best_effort = {
        name: cq.model_copy(update={"queueing_strategy": QueueingStrategy.BEST_EFFORT_FIFO})
        for name, cq in drawn.cluster_queues.items()
    }
    config = drawn.with_objects(cluster_queues=best_effort)
    jobs = data.draw(workloads(config, max_size=30))
    releases = data.draw(st.lists(st.integers(0, 100), max_size=3))
    scheduler = Scheduler(config, AdmissionPolicy(fair_sharing=fair))
    for j in jobs:
        scheduler.submit(j)
    for step in range(len(releases) + 1):
        for _ in range(2 * len(jobs) + 2):  # each cycle admits one, holds room for a new one, or is the last
            result = scheduler.cycle(T0)
            if not result.admitted and not result.reserved:
                break
        else:
            raise AssertionError("cycles kept admitting")
        for queue in scheduler.pending.queues().values():
            cq = config.cluster_queues[queue.name]
            node = scheduler.tree.cluster_queues[queue.name]
            for workload in queue.entries.values():
                if len(workload.job.request.pod_sets) > 1:
                    continue
                assignment = assign_flavors(
                    cq, node, workload.job.request, scheduler.usage, config.flavors, scheduler.policy.matcher
                )
                assert assignment.mode is not Mode.FIT, (workload.job.id, assignment)
        if step < len(releases) and scheduler.admitted:
            scheduler.release(sorted(scheduler.admitted)[releases[step] % len(scheduler.admitted)], T0)


@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_ceiling_is_the_best_flavor_availability(data: st.DataObject) -> None:
    """The cycle's compiled ceiling equals Kueue's ``available``, maximised over each resource's
    flavors, for every ClusterQueue after any sequence of admissions and releases."""
    from budcore.scheduling.quota import available

    config = data.draw(queue_configs())
    jobs = data.draw(workloads(config))
    releases = data.draw(st.lists(st.integers(0, 100), max_size=4))
    scheduler = drive(config, jobs, releases, fair=False, check=False).scheduler
    usage = scheduler.usage.overlay()  # the cycle's view: fresh memo over the committed usage
    for name, node in scheduler.tree.cluster_queues.items():
        expected = {
            resource: max(available(node, (f, resource), scheduler.usage) for f in flavors)
            for covered, flavors in node.groups
            for resource in covered
        }
        assert usage.ceiling(node) == expected, name


def test_a_workload_that_no_longer_fits_keeps_its_queue_awake_to_hold_room() -> None:
    """The example hypothesis found for the property above (seed
    28460447477657092570828040696435842422, reduced by hand): in cycle 1 the 2-CPU ``w2`` fitted
    when the cycle started but the 1-CPU heads before it took the room ("no longer fits"), and
    nothing is left for it anywhere. Kueue requeues such a workload at once; in the next cycle its
    assignment is ``Preempt`` with no candidates, so it holds room
    (``reserveCapacityForUnreclaimablePreempt``), its one try in a BestEffortFIFO queue. Parking
    its queue until the cohort changed moved that try to the cycle after ``w0``'s release, where
    the held room sent ``w24`` to borrow ``f2`` instead of ``f0``."""
    config_ = config(
        [
            cq("q0", {"f0": {"cpu": 5}, "f1": {"cpu": 0}, "f2": {"cpu": 0}}, cohort="c0"),
            cq("q2", {"f2": {"cpu": 0}}, cohort="c0", queueing_strategy=QueueingStrategy.STRICT_FIFO),
            cq("q3", {"f2": {"cpu": 2}}, cohort="c0", queueing_strategy=QueueingStrategy.STRICT_FIFO),
        ]
    )

    def one_cpu(name: str, queue: str = "q0", cpu: int = 1) -> Job:
        return Job(
            id=name,
            name=name,
            tenant=f"ns-{queue}",
            local_queue=queue,
            request=ResourceRequest(pod_sets=(PodSet(resources=ResourceVector.of({"cpu": cpu})),)),
            priority=JobPriority.CRITICAL,
            created_at=T0,
            updated_at=T0,
        )

    first = [one_cpu("w0"), one_cpu("w2", cpu=2), one_cpu("w8", "q2"), *map(one_cpu, ("w10", "w11", "w14"))]
    waves = [[], first, [one_cpu("w15"), one_cpu("w24")]]
    lazy = _admissions_in_waves(config_, waves, [0, 0, 0], True, wake_all=False)
    eager = _admissions_in_waves(config_, waves, [0, 0, 0], True, wake_all=True)
    assert lazy == eager
    assert [(step, job_id) for step, job_id, _ in lazy][-2:] == [(2, "w15"), (2, "w24")]
    assert "'f0'" in lazy[-1][2]  # w24 on f0: w2 held its room in cycle 1 and not again


def test_a_request_as_large_as_a_failed_one_still_gets_its_try_at_holding_room() -> None:
    """The example hypothesis found for the property above (seed
    177246423263469174228142997497268397739, reduced by hand). ``a``, ``b`` and ``x`` fill
    ``q0``'s 2 CPUs and the cohort's 1; ``c`` (one 2-CPU pod) then fails, and ``d`` (two 1-CPU
    pods, a request as large) is skipped in the same cycle: it cannot fit either. But ``d`` had not
    had its one try at holding room (Kueue nominates it on its own, its equivalence hash differs
    from ``c``'s: Preempt without candidates, ``reserveCapacityForUnreclaimablePreempt``), and the
    queue was parked with that try still owed. After ``a``'s release ``f`` holds the free CPU on its
    first try, and in the cycle after, ``d`` held it on its late try, so ``e`` (1 CPU) was not
    admitted; in Kueue ``d``'s try came before the release, holding nothing, and ``e`` fits."""
    config_ = config(
        [cq("q0", {"f0": {"cpu": (2, 1)}}, cohort="c0")],
        cohorts=[Cohort(name="c0", resource_groups=groups({"f0": {"cpu": 1}}))],
    )

    def cpus(name: str, cpu: int = 1, pods: int = 1, second: int = 0, low: bool = False) -> Job:
        created = T0.replace(second=second)
        pod_set = PodSet(count=pods, resources=ResourceVector.of({"cpu": cpu}))
        return Job(
            id=name,
            name=name,
            tenant="ns-q0",
            local_queue="q0",
            request=ResourceRequest(pod_sets=(pod_set,)),
            priority=JobPriority.HIGH if low else JobPriority.CRITICAL,  # e: after the others
            created_at=created,
            updated_at=created,
        )

    first = [cpus("a"), cpus("b"), cpus("x"), cpus("c", cpu=2, second=1), cpus("d", pods=2, second=2)]
    waves = [[*first, cpus("e", low=True)], [cpus("f", cpu=2)], []]
    lazy = _admissions_in_waves(config_, waves, [0, 0, 0], False, wake_all=False)
    eager = _admissions_in_waves(config_, waves, [0, 0, 0], False, wake_all=True)
    assert lazy == eager
    assert [(step, job_id) for step, job_id, _ in lazy] == [(0, "a"), (0, "b"), (0, "x"), (1, "e")]
