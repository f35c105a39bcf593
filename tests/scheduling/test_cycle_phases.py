"""The admission cycle is snapshot in, decisions out: it changes none of its inputs.

The property runs random Scheduler histories (admissions, releases, preemptions, admission fair
sharing, stop policies, namespace selectors) to an arbitrary state, then calls
:func:`~budcore.scheduling.cycle.schedule` on that state and compares everything the pending queues,
the snapshot and the policy hold before and after.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields, replace
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.admission import GPU, T0, config, cq, job

from budcore.domain.job import Job, PodSet, ResourceRequest
from budcore.domain.priority import JobPriority
from budcore.domain.resources import ResourceVector
from budcore.scheduling import (
    AdmissionPolicy,
    AdmissionSnapshot,
    ClusterQueue,
    ClusterQueuePreemption,
    Cohort,
    Decision,
    FairSharing,
    FlavorQuotas,
    LocalQueue,
    LocalQueueUsage,
    PendingQueues,
    QueueConfig,
    QueueingStrategy,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
    Scheduler,
    StopPolicy,
    schedule,
)
from budcore.scheduling.queues import ReclaimWithinCohort, WithinClusterQueue
from budcore.testing.examples import examples

EXAMPLES = examples(100)
FLAVORS = ("f0", "f1")
LABELS = {"f0": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}, "f1": {}}


@st.composite
def configs(draw: st.DrawFn) -> QueueConfig:
    cohorts = [Cohort(name=f"c{i}") for i in range(draw(st.integers(0, 2)))]
    cqs: list[ClusterQueue] = []
    local_queues: list[LocalQueue] = []
    for i in range(draw(st.integers(1, 4))):
        flavors = draw(st.lists(st.sampled_from(FLAVORS), min_size=1, max_size=2, unique=True))
        preempts = draw(st.booleans())
        name = f"q{i}"
        cqs.append(
            ClusterQueue(
                name=name,
                cohort=draw(st.none() | st.sampled_from([c.name for c in cohorts])) if cohorts else None,
                resource_groups=(
                    ResourceGroup(
                        covered_resources=(GPU,),
                        flavors=tuple(
                            FlavorQuotas(
                                name=f,
                                resources=(
                                    ResourceQuota(
                                        name=GPU,
                                        nominal_quota=draw(st.integers(0, 4)) * 1000,
                                        borrowing_limit=draw(
                                            st.none() | st.integers(0, 4).map(lambda n: n * 1000)
                                        ),
                                    ),
                                ),
                            )
                            for f in flavors
                        ),
                    ),
                ),
                queueing_strategy=draw(st.sampled_from(list(QueueingStrategy))),
                preemption=ClusterQueuePreemption(
                    within_cluster_queue=WithinClusterQueue.LOWER_PRIORITY,
                    reclaim_within_cohort=draw(st.sampled_from(list(ReclaimWithinCohort))),
                )
                if preempts
                else ClusterQueuePreemption(),
                namespace_selector=draw(st.sampled_from([None, None, {"team": "ml"}])),
                stop_policy=draw(st.sampled_from([StopPolicy.NONE] * 8 + list(StopPolicy))),
                admission_fair_sharing=draw(st.booleans()),
            )
        )
        for k in range(draw(st.integers(1, 2))):
            local_queues.append(
                LocalQueue(
                    name="lq",
                    namespace=f"ns-{name}-{k}",
                    cluster_queue=name,
                    stop_policy=draw(st.sampled_from([StopPolicy.NONE] * 5 + list(StopPolicy))),
                    fair_sharing=FairSharing(weight=draw(st.sampled_from([0, 500, 1000]))),
                )
            )
    return QueueConfig.build(
        flavors=[ResourceFlavor(name=f, node_labels=LABELS[f]) for f in FLAVORS],
        cohorts=cohorts,
        cluster_queues=cqs,
        local_queues=local_queues,
    )


@st.composite
def histories(draw: st.DrawFn) -> tuple[Scheduler, datetime]:
    """A Scheduler some cycles into a random history, and the instant of its next cycle."""
    cfg = draw(configs())
    policy = AdmissionPolicy(
        fair_sharing=draw(st.booleans()),
        namespace_labels={f"ns-q{i}-0": {"team": "ml"} for i in range(4)},
        max_admissions=draw(st.none() | st.integers(1, 3)),
        local_queue_usage=LocalQueueUsage(half_life=timedelta(minutes=10)) if draw(st.booleans()) else None,
    )
    s = Scheduler(cfg, policy)
    keys = sorted(cfg.local_queues)
    now = T0
    submitted = 0

    def submit(count: int) -> None:
        nonlocal submitted
        for _ in range(count):
            namespace, name = draw(st.sampled_from(keys))
            n = submitted
            submitted += 1
            s.submit(
                Job(
                    id=f"w{n}",
                    name=f"w{n}",
                    tenant=namespace,
                    local_queue=name,
                    priority=draw(st.sampled_from([JobPriority.LOW, JobPriority.NORMAL, JobPriority.HIGH])),
                    request=ResourceRequest(
                        pod_sets=(
                            PodSet(count=draw(st.integers(1, 2)), resources=ResourceVector({GPU: 1000})),
                        ),
                        accelerator_type=draw(st.sampled_from([None, None, "H100"])),
                    ),
                    created_at=now - timedelta(seconds=n),
                )
            )

    for _ in range(draw(st.integers(0, 3))):
        submit(draw(st.integers(0, 8)))
        result = s.cycle(now)
        for decision in result.preemptions:
            for victim in decision.victims:
                s.release(victim.job_id, now)
        now += timedelta(minutes=draw(st.integers(1, 30)))
        for job_id in list(s.admitted):
            if draw(st.integers(0, 3)) == 0:
                s.release(job_id, now)
    submit(draw(st.integers(1, 8)))  # the cycle under test has work
    return s, now


def _pending_state(pending: PendingQueues) -> Any:
    queues = {}
    for name, queue in pending.queues().items():
        queues[name] = (
            {
                job_id: (w.job, w.cluster_queue, w.local_queue, w.priority, w.timestamp, w.shape, w.key)
                for job_id, w in queue.entries.items()
            },
            {job_id: dict(w.demand) if w.demand is not None else None for job_id, w in queue.entries.items()},
            {shape: list(keys) for shape, keys in queue.by_shape.items()},
            {lq: list(heads) for lq, heads in queue.lq_heads.items()},
        )
    return queues, set(pending.active), len(pending)


def _snapshot_state(snapshot: AdmissionSnapshot) -> Any:
    tree = snapshot.tree
    nodes = [*tree.cohorts.values(), *tree.cluster_queues.values()]
    return (
        snapshot.usage.flatten(),
        dict(snapshot.admitted),
        set(snapshot.no_preemption_candidates),
        None if snapshot.local_queue_usage is None else dict(snapshot.local_queue_usage),
        {node.key: dict(node.potential_cache) for node in nodes},  # computed with the tree
        dict(tree.may_preempt),
    )


def _rendered(decision: Decision) -> tuple[str, ...]:
    """A decision as text: reasons rendered (they are lazy objects)."""
    return (type(decision).__name__, *(str(getattr(decision, f.name)) for f in fields(decision)))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_schedule_mutates_none_of_its_inputs(history: tuple[Scheduler, datetime]) -> None:
    s, now = history
    snapshot = s.snapshot(now)
    before = (_pending_state(s.pending), _snapshot_state(snapshot), repr(s.policy))
    first = schedule(snapshot, s.pending, s.policy, now, preemption=s.preemption)
    assert (_pending_state(s.pending), _snapshot_state(snapshot), repr(s.policy)) == before
    second = schedule(snapshot, s.pending, s.policy, now, preemption=s.preemption)
    assert [_rendered(d) for d in first.decisions] == [_rendered(d) for d in second.decisions]
    assert (first.exhausted, first.reserved, first.considered) == (
        second.exhausted,
        second.reserved,
        second.considered,
    )


class _Untouchable(LocalQueueUsage):
    """LocalQueue usage whose state must not be read or changed by the cycle."""

    def value(self, local_queue: tuple[str, str], now: datetime) -> float:
        raise AssertionError("the cycle advanced LocalQueue usage decay")

    def change(self, local_queue: tuple[str, str], amounts: Any, now: datetime, sign: int) -> None:
        raise AssertionError("the cycle recorded LocalQueue usage")


def test_admission_fair_sharing_reads_the_snapshot_not_the_tracker() -> None:
    """The decayed usage comes in the snapshot; the cycle orders by it and never asks the tracker."""
    base = cq("q", {"default": {GPU: 4}}, admission_fair_sharing=True)
    cfg = config([base])
    other = LocalQueue(name="other", namespace="ns-q", cluster_queue="q")
    cfg = cfg.with_objects(local_queues={**cfg.local_queues, other.key: other})
    s = Scheduler(cfg, AdmissionPolicy(local_queue_usage=_Untouchable()))
    s.submit(job("q", 4, name="first-in-queue-order", at=T0))
    s.submit(
        job("q", 4, name="less-used", at=T0 + timedelta(seconds=1)).model_copy(
            update={"local_queue": "other"}
        )
    )
    for usage, expected in (({("ns-q", "q"): 10.0}, "less-used"), ({}, "first-in-queue-order")):
        snapshot = replace(s.snapshot(), local_queue_usage=usage)
        result = schedule(snapshot, s.pending, s.policy, T0)
        assert [a.job_id for a in result.admitted] == [expected]


def test_scheduler_reads_decayed_usage_only_for_the_local_queues_the_cycle_orders() -> None:
    """Reading the decay advances it: the Scheduler reads it for the LocalQueues with pending work
    in an active, running ClusterQueue with admission fair sharing, and for no other."""
    cfg = config(
        [
            cq("afs", {"default": {GPU: 4}}, admission_fair_sharing=True),
            cq("plain", {"default": {GPU: 4}}),
            cq("held", {"default": {GPU: 4}}, admission_fair_sharing=True, stop_policy=StopPolicy.HOLD),
        ]
    )
    s = Scheduler(cfg)
    for name in ("afs", "plain", "held"):
        s.submit(job(name, 1))
    snapshot = s.snapshot(T0)
    assert snapshot.local_queue_usage == {("ns-afs", "afs"): 0.0}
    assert s.snapshot().local_queue_usage is None  # without an instant: nothing is read


def test_deactivate_parks_exhausted_queues() -> None:
    s = Scheduler(config([cq("a", {"default": {GPU: 1}}), cq("b", {"default": {GPU: 1}})]))
    s.submit(job("a", 1))
    s.submit(job("b", 1))
    assert s.pending.active == {"a", "b"}
    s.pending.deactivate(["a", "unknown"])
    assert s.pending.active == {"b"}
    result = s.cycle(T0)
    assert [a.cluster_queue for a in result.admitted] == ["b"]
    assert s.pending.active == set()


def test_the_default_matcher_resolves_catalog_aliases() -> None:
    """``AdmissionPolicy()`` still resolves through the built-in accelerator catalog."""
    matcher = AdmissionPolicy().matcher
    assert matcher.normalize("NVIDIA-H100-80GB-HBM3") == "nvidia-h100-80gb"
    assert matcher.normalize("H100") == "nvidia-h100-80gb"
    flavor = ResourceFlavor(name="h", node_labels={"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"})
    assert matcher.matches("H100", flavor)
    assert not matcher.matches("nvidia-a100-80gb", flavor)


def test_scheduling_does_not_import_hardware() -> None:
    """The admission layer sits below ``budcore.hardware`` (which builds ResourceFlavors from
    hardware profiles): importing and running it loads no hardware module."""
    code = (
        "import sys\n"
        "from budcore.scheduling import AdmissionPolicy, Scheduler\n"
        "AdmissionPolicy().matcher.normalize('NVIDIA-H100-80GB-HBM3')\n"
        "print(sorted(m for m in sys.modules if m.startswith('budcore.hardware')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
