"""Kueue's ``TestHierarchical``, transcribed (every case; ids are Kueue's case names).

Source: kubernetes-sigs/kueue ff69552e79ad21652c36caa97038382e55625cf7,
``pkg/scheduler/flavorassigner/flavorassigner_test.go`` (Apache-2.0). The test's fixed setup:
flavors ``one``, ``two``, ``three``; a three-level cohort chain ``three`` ← ``two`` ← ``one``
where each cohort holds 4 cpu of its namesake flavor; ``test-clusterqueue`` in cohort ``one``
(``withinClusterQueue`` and ``reclaimWithinCohort`` ``LowerPriority``,
``flavorFungibility: {whenCanPreempt: TryNextFlavor}`` unless the case sets it) and
``other-clusterqueue`` in cohort ``two`` with 0 cpu of every flavor. Kueue asserts the
representative mode and the flavor of each resource of the first pod set.
"""

from __future__ import annotations

import pytest
from kueue_conformance.flavorassigner.harness import (
    CQ,
    FIT,
    NO_CANDIDATES,
    TRY_NEXT,
    Case,
    CohortSpec,
    Group,
    PodSetWant,
    Want,
    check,
    flavor,
    flavor_map,
    main,
    params,
)

FLAVORS = flavor_map(flavor("one"), flavor("two"), flavor("three"))
COHORTS = (
    CohortSpec("three", groups=({"three": {"cpu": "4"}},)),
    CohortSpec("two", parent="three", groups=({"two": {"cpu": "4"}},)),
    CohortSpec("one", parent="two", groups=({"one": {"cpu": "4"}},)),
)
# defaultTestClusterQueueFlavors
DEFAULT_FLAVORS: Group = {"one": {"cpu": "0"}, "two": {"cpu": "0"}, "three": {"cpu": "0"}}


def case(
    test_flavors: Group,
    test_usage: dict[tuple[str, str], str],
    mode: str,
    flavors: dict[str, str],
    other_usage: dict[tuple[str, str], str] | None = None,
    fungibility: tuple[str, str] = ("", TRY_NEXT),
    preference: str | None = None,
    simulation: dict[tuple[str, str], tuple[str, int]] | None = None,
) -> Case:
    test_cq = CQ(
        "test-clusterqueue",
        (test_flavors,),
        cohort="one",
        preemption={"withinClusterQueue": "LowerPriority", "reclaimWithinCohort": "LowerPriority"},
        fungibility=fungibility,
        preference=preference,
        usage=test_usage,
    )
    other_cq = CQ("other-clusterqueue", (DEFAULT_FLAVORS,), cohort="two", usage=other_usage or {})
    return Case(
        (main({"cpu": "4"}),),
        test_cq,
        Want(mode, {"main": PodSetWant(flavors, reasons=None)}),
        FLAVORS,
        others=(other_cq,),
        cohorts=COHORTS,
        simulation=simulation or {},
    )


NAMES = (
    "Select the top flavor",
    "Select the first flavor which fits",
    "Select deeper-borrowing flavor that fits when shallower-borrowing flavor has no preemption candidates",
)

OUT_OF_SCOPE: dict[str, str] = {}

CASES = {
    "Select the top flavor": case(
        DEFAULT_FLAVORS,
        {("one", "cpu"): "4"},
        FIT,
        {"cpu": "three"},
        other_usage={("two", "cpu"): "4"},
    ),
    "Select the first flavor which fits": case(DEFAULT_FLAVORS, {("one", "cpu"): "4"}, FIT, {"cpu": "two"}),
    NAMES[2]: case(
        {"one": {"cpu": ("4", "0")}, "two": {"cpu": "0"}, "three": {"cpu": "0"}},
        {("one", "cpu"): "4"},
        FIT,
        {"cpu": "two"},
        fungibility=(TRY_NEXT, TRY_NEXT),
        preference="PreemptionOverBorrowing",
        simulation={("one", "cpu"): (NO_CANDIDATES, 1)},
    ),
}

XFAIL: dict[str, str] = {}


@pytest.mark.parametrize("kueue_case", params(NAMES, CASES, OUT_OF_SCOPE, XFAIL, count=3))
def test_hierarchical(kueue_case: Case) -> None:
    check(kueue_case)
