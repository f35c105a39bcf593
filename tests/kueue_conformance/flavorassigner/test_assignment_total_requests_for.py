"""Kueue's ``TestAssignment_TotalRequestsFor``, transcribed (every case; ids are Kueue's names).

Source: kubernetes-sigs/kueue ff69552e79ad21652c36caa97038382e55625cf7,
``pkg/scheduler/flavorassigner/flavorassigner_test.go`` (Apache-2.0). Kueue's table hands
``Assignment.TotalRequestsFor`` a ready-made assignment (per pod set: the flavor of each resource
and the admitted ``Count``) and the workload, and states the quota it charges per (flavor,
resource). budcore computes the same total as :attr:`Assignment.usage` inside
:func:`assign_flavors`, so each case is realized as a ClusterQueue whose only flavor is the one the
case's assignment names (``default``), with quota to spare (1000 of every assigned resource,
1000Gi of memory), and the workload's pod sets assigned with the case's counts (Kueue's
``Assign(ctx, counts)``, the call partial admission makes); the expectation is Kueue's charge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pytest
from kueue_conformance.flavorassigner.harness import (
    CQ,
    Case,
    PodSetSpec,
    flavor,
    flavor_map,
    main,
    params,
    run,
)

from budcore.domain.quantity import parse_quantity


@dataclass(frozen=True)
class TotalRequests:
    workload: tuple[PodSetSpec, ...]  # args.wl
    assigned: Mapping[str, tuple[Mapping[str, str], int]]  # fields.PodSets: pod set -> (flavors, Count)
    want: Mapping[tuple[str, str], str]  # the quantities TotalRequestsFor returns


NAMES = (
    "RegularWorkload",
    "WorkloadWithPartialAdmission",
    "WorkloadWithReplacement",
    "WorkloadWithZeroQuantityResourceNotInClusterQueueSkipsResourceWithoutFlavor",
    "WorkloadWithMultiplePodSetsOneUnchangedReplacement",
)

_SLICES = (
    "workload slices (ElasticJobsViaWorkloadSlices): the charge is the difference from the slice "
    "being replaced (replaceWorkloadSlice); budcore has no workload slices"
)
OUT_OF_SCOPE = {
    "WorkloadWithReplacement": _SLICES,
    "WorkloadWithMultiplePodSetsOneUnchangedReplacement": _SLICES,
}

DEFAULT_CPU_MEMORY = {"cpu": "default", "memory": "default"}

CASES = {
    "RegularWorkload": TotalRequests(
        (main({"cpu": "1", "memory": "1Mi"}, count=2),),
        {"main": (DEFAULT_CPU_MEMORY, 2)},
        {("default", "cpu"): "2", ("default", "memory"): "2Mi"},
    ),
    "WorkloadWithPartialAdmission": TotalRequests(
        (main({"cpu": "1", "memory": "1Mi"}, count=2),),
        {"main": (DEFAULT_CPU_MEMORY, 1)},  # 1 of the 2 pods assigned (partial admission)
        {("default", "cpu"): "1", ("default", "memory"): "1Mi"},
    ),
    "WorkloadWithZeroQuantityResourceNotInClusterQueueSkipsResourceWithoutFlavor": TotalRequests(
        (main({"cpu": "1", "memory": "1Mi", "example.com/gpu": "0"}, count=2),),
        {"main": (DEFAULT_CPU_MEMORY, 2)},
        {("default", "cpu"): "2", ("default", "memory"): "2Mi"},
    ),
}

XFAIL: dict[str, str] = {}


def realize(row: TotalRequests) -> Case:
    resources = sorted({r for flavors, _ in row.assigned.values() for r in flavors})
    queue = CQ("cq", ({"default": {r: "1000Gi" if r == "memory" else "1000" for r in resources}},))
    counts = tuple(row.assigned[ps.name][1] for ps in row.workload)
    return Case(row.workload, queue, None, flavor_map(flavor("default")), counts=counts)


def differences(row: TotalRequests) -> list[str]:
    outcome = run(realize(row))
    if outcome.assignment is None:
        return [f"budcore rejects the input: {outcome.rejected}"]
    expected = {fr: parse_quantity(q) for fr, q in row.want.items()}
    got = {fr: v for fr, v in outcome.assignment.usage.items() if v}
    if got != expected:
        return [f"usage (milli-units): Kueue {expected}, budcore {got}"]
    return []


DIFFS = differences


@pytest.mark.parametrize("row", params(NAMES, CASES, OUT_OF_SCOPE, XFAIL, count=5))
def test_assignment_total_requests_for(row: TotalRequests) -> None:
    problems = differences(row)
    assert not problems, "\n".join(problems)
