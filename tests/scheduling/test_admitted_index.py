"""Differential tests for the exact levers of issue #19 in the victim search.

The Scheduler keeps its admitted workloads in :class:`AdmittedWorkloads`, a dict that also indexes
them by ClusterQueue, so a victim search visits only the preemptor's ClusterQueue and its cohort's
borrowers; and the default cost model prices candidates lazily. Both are pure speed-ups: these
tests check that the indexed search and the lazily priced one decide exactly as the plain scan over
a plain dict and the eagerly priced model, on the random worlds of the preemption properties.
"""

from __future__ import annotations

import copy
import pickle
from dataclasses import dataclass
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from scheduling.test_preemption_properties import NOW, World, worlds

from budcore.domain.ids import JobId, TenantId
from budcore.scheduling import AdmissionSnapshot, AdmittedWorkload, QuotaUsage
from budcore.scheduling.preemption import PreemptionMode, PreemptionPolicy, find_victims
from budcore.scheduling.preemption.common import (
    PreemptionContext,
    find_candidates,
    frs_needing_preemption,
)
from budcore.scheduling.preemption.cost_model import DefaultPreemptionCostModel
from budcore.scheduling.snapshot import AdmittedWorkloads
from budcore.testing.examples import examples

EXAMPLES = examples(300)


def _fresh_usage(world: World) -> QuotaUsage:
    usage = QuotaUsage(world.snapshot.tree)
    for w in world.snapshot.admitted.values():
        usage.add(w.cluster_queue, w.usage)
    return usage


def _plain_and_indexed(world: World, churn: list[int]) -> tuple[AdmissionSnapshot, AdmissionSnapshot]:
    """The world's admitted workloads as a plain dict and as the index, after the same churn
    (workloads removed and re-added, so insertion order and index places move)."""
    plain = dict(world.snapshot.admitted)
    indexed = AdmittedWorkloads(plain)
    keys = list(plain)
    for i in churn:
        if keys:
            key = keys[i % len(keys)]
            workload = plain.pop(key)
            assert indexed.pop(key) is workload
            plain[key] = workload
            indexed[key] = workload
    assert list(plain) == list(indexed)
    tree = world.snapshot.tree
    return (
        AdmissionSnapshot(tree, _fresh_usage(world), plain),
        AdmissionSnapshot(tree, world.snapshot.usage, indexed),
    )


def _candidate_ids(snapshot: AdmissionSnapshot, world: World, policy: PreemptionPolicy) -> list[str]:
    tree = snapshot.tree
    name = world.needs.cluster_queue
    cq = tree.config.cluster_queues[name]
    node = tree.cluster_queues[name]
    request = dict(world.needs.usage)
    frs = frs_needing_preemption(snapshot.usage, node, request)
    context = PreemptionContext(snapshot, world.needs, cq, node, frs, request, policy, NOW, ())
    return [w.job_id for w in find_candidates(context, world.preemptor_timestamp)]


@settings(max_examples=EXAMPLES, deadline=None)
@given(worlds(), st.lists(st.integers(0, 50), max_size=6), st.sampled_from(list(PreemptionMode)))
def test_indexed_search_decides_as_the_plain_scan(
    world: World, churn: list[int], mode: PreemptionMode
) -> None:
    plain, indexed = _plain_and_indexed(world, churn)
    policy = PreemptionPolicy(mode=mode, min_runtime_before_preemption=timedelta(0), exact_search_limit=12)
    info, stamp = world.info, world.preemptor_timestamp
    expected = find_victims(
        plain, world.needs, now=NOW, policy=policy, victim_info=info, preemptor_timestamp=stamp
    )
    found = find_victims(
        indexed, world.needs, now=NOW, policy=policy, victim_info=info, preemptor_timestamp=stamp
    )
    assert found == expected
    # Asked again on the same usage, the borrowing memo answers: still the same decision.
    again = find_victims(
        indexed, world.needs, now=NOW, policy=policy, victim_info=info, preemptor_timestamp=stamp
    )
    assert again == expected
    assert _candidate_ids(indexed, world, policy) == _candidate_ids(plain, world, policy)


@dataclass(frozen=True)
class _EagerCostModel(DefaultPreemptionCostModel):
    """The default model under another type, so the search prices every candidate up front."""


@settings(max_examples=EXAMPLES, deadline=None)
@given(worlds())
def test_lazy_pricing_decides_as_eager_pricing(world: World) -> None:
    info, stamp = world.info, world.preemptor_timestamp
    lazy = PreemptionPolicy(mode=PreemptionMode.KUEUE)
    eager = PreemptionPolicy(mode=PreemptionMode.KUEUE, cost_model=_EagerCostModel())
    assert find_victims(
        world.snapshot, world.needs, now=NOW, policy=lazy, victim_info=info, preemptor_timestamp=stamp
    ) == (
        find_victims(
            world.snapshot, world.needs, now=NOW, policy=eager, victim_info=info, preemptor_timestamp=stamp
        )
    )


def _workload(i: int, cluster_queue: str) -> AdmittedWorkload:
    return AdmittedWorkload(JobId(f"j{i}"), TenantId("t"), cluster_queue, ("t", "q"), {}, {}, 0, NOW, 0.0)


def test_the_index_follows_every_dict_operation() -> None:
    index = AdmittedWorkloads()
    for i in range(10):
        index[f"j{i}"] = _workload(i, f"c{i % 3}")
    del index["j3"]
    index.pop("j4")
    assert index.pop("absent", None) is None
    index.update({"j11": _workload(11, "c1")})
    index.setdefault("j12", _workload(12, "c2"))
    index |= {"j13": _workload(13, "c0")}
    index["j5"] = _workload(5, "c0")  # moves from c2 to c0
    index.popitem()
    for copied in (pickle.loads(pickle.dumps(index)), copy.copy(index), AdmittedWorkloads(index)):
        assert isinstance(copied, AdmittedWorkloads)
        assert dict(copied) == dict(index)
        for cq in ("c0", "c1", "c2"):
            assert list(copied.in_cluster_queue(cq)) == [
                j for j, w in copied.items() if w.cluster_queue == cq
            ]
        places = [copied.place(j) for j in copied]
        assert places == sorted(places)
    assert list(index.in_cluster_queue("c0")) == ["j0", "j5", "j6", "j9"]  # dict order: j5 kept its place
    index.clear()
    assert not list(index.in_cluster_queue("c0"))
