"""Kueue's ``TestReclaimBeforePriorityPreemption``, transcribed (every case; ids are Kueue's names).

Source: kubernetes-sigs/kueue ff69552e79ad21652c36caa97038382e55625cf7,
``pkg/scheduler/flavorassigner/flavorassigner_test.go`` (Apache-2.0). The test's fixed setup, as
the Go test builds it: flavors ``uno``, ``due``, ``tre`` (no labels); ``test-clusterqueue`` in
cohort ``cohort`` with ``withinClusterQueue`` and ``reclaimWithinCohort`` ``LowerPriority``,
``flavorFungibility: {whenCanPreempt: TryNextFlavor}`` (whenCanBorrow unset) unless the case sets
it, and 10 ``compute`` and 10 ``gpu`` in each flavor; ``other-clusterqueue`` in the same cohort with
0 of everything. Kueue asserts the representative mode and the flavor of each resource of the first
pod set.
"""

from __future__ import annotations

from typing import Any

import pytest
from kueue_conformance.flavorassigner.harness import (
    CQ,
    FIT,
    MAY_STOP,
    PREEMPT,
    PREEMPT_POSSIBLE,
    RECLAIM,
    TRY_NEXT,
    Case,
    PodSetWant,
    Want,
    check,
    flavor,
    flavor_map,
    main,
    params,
)

FLAVORS = flavor_map(flavor("uno"), flavor("due"), flavor("tre"))


def case(
    requests: dict[str, str],
    test_usage: dict[tuple[str, str], str],
    mode: str,
    flavors: dict[str, str],
    other_usage: dict[tuple[str, str], str] | None = None,
    fungibility: tuple[str, str] = ("", TRY_NEXT),
    simulation: dict[tuple[str, str], tuple[str, int]] | None = None,
) -> Case:
    quotas: dict[str, Any] = {f: {"compute": "10", "gpu": "10"} for f in ("uno", "due", "tre")}
    test_cq = CQ(
        "test-clusterqueue",
        (quotas,),
        cohort="cohort",
        preemption={"withinClusterQueue": "LowerPriority", "reclaimWithinCohort": "LowerPriority"},
        fungibility=fungibility,
        usage=test_usage,
    )
    other_cq = CQ(
        "other-clusterqueue",
        ({f: {"compute": "0", "gpu": "0"} for f in ("uno", "due", "tre")},),
        cohort="cohort",
        usage=other_usage or {},
    )
    return Case(
        (main(requests),),
        test_cq,
        Want(mode, {"main": PodSetWant(flavors, reasons=None)}),
        FLAVORS,
        others=(other_cq,),
        simulation=simulation or {},
    )


NAMES = (
    "Select first flavor which fits",
    "Select first flavor where gpu reclamation is possible",
    "Select first flavor when flavor fungibility is disabled",
    "Select first flavor when flavor fungibility is disabled; using deprecated WhenCanPreempt=MayStopSearch",
    "Select first flavor where priority based preemption is possible",
    "Select second flavor where gpu reclamation is possible, as compute Fits",
)

OUT_OF_SCOPE: dict[str, str] = {}

CASES = {
    "Select first flavor which fits": case(
        {"gpu": "10"},
        {("uno", "gpu"): "1"},
        FIT,
        {"gpu": "tre"},
        other_usage={("due", "gpu"): "1"},
    ),
    "Select first flavor where gpu reclamation is possible": case(
        {"gpu": "10"},
        {("uno", "gpu"): "1"},
        PREEMPT,
        {"gpu": "due"},
        other_usage={("due", "gpu"): "1", ("tre", "gpu"): "1"},
        simulation={("uno", "gpu"): (PREEMPT_POSSIBLE, 0), ("due", "gpu"): (RECLAIM, 0)},
    ),
    "Select first flavor when flavor fungibility is disabled": case(
        {"gpu": "10"},
        {("uno", "gpu"): "1"},
        PREEMPT,
        {"gpu": "uno"},
        other_usage={("due", "gpu"): "1", ("tre", "gpu"): "1"},
        fungibility=("", MAY_STOP),
    ),
    "Select first flavor where priority based preemption is possible": case(
        {"gpu": "10"},
        {("uno", "gpu"): "1", ("due", "gpu"): "1", ("tre", "gpu"): "1"},
        PREEMPT,
        {"gpu": "uno"},
    ),
    "Select second flavor where gpu reclamation is possible, as compute Fits": case(
        {"gpu": "10", "compute": "10"},
        {("uno", "gpu"): "1", ("uno", "compute"): "1", ("due", "compute"): "1"},
        PREEMPT,
        {"gpu": "tre", "compute": "tre"},
        other_usage={("due", "gpu"): "1", ("tre", "gpu"): "1"},
        simulation={
            ("uno", "gpu"): (PREEMPT_POSSIBLE, 0),
            ("due", "gpu"): (RECLAIM, 0),
            ("tre", "gpu"): (RECLAIM, 0),
        },
    ),
}
# Identical to the case above it in the Go table but for the name.
CASES[NAMES[3]] = CASES[NAMES[2]]

XFAIL: dict[str, str] = {}


@pytest.mark.parametrize("kueue_case", params(NAMES, CASES, OUT_OF_SCOPE, XFAIL, count=6))
def test_reclaim_before_priority_preemption(kueue_case: Case) -> None:
    check(kueue_case)
