"""Kueue's ``TestAssignFlavorsWithAllowedFlavors``, transcribed (every case; ids are Kueue's names).

Source: kubernetes-sigs/kueue ff69552e79ad21652c36caa97038382e55625cf7,
``pkg/scheduler/flavorassigner/flavorassigner_test.go`` (Apache-2.0). The test's fixed setup:
flavors ``f1``, ``f2``, ``occupied``; ClusterQueue ``cq`` with 10, 10 and 1 cpu in them; a one-pod
workload asking 2 cpu; the ``ConcurrentAdmission`` feature gate on. Each case restricts the
workload to some flavors (the allowed-flavors annotation of concurrent admission) and states the
representative mode and, when it fits, the cpu flavor.
"""

from __future__ import annotations

import pytest
from kueue_conformance.flavorassigner.harness import (
    CQ,
    FIT,
    Case,
    PodSetWant,
    Want,
    check,
    flavor,
    flavor_map,
    main,
    params,
)

NAMES = (
    "allow only f2",
    "allow only f1",
    "allow only the occupied flavor",
    "allow f1 and f2",
    "no constraints",
    "allow non-existent",
)

_ALLOWED = (
    "concurrent admission (ConcurrentAdmission): the workload is restricted to the flavors its "
    "allowed-resource-flavors annotation lists (a variant of a concurrently admitted workload); "
    "budcore has no concurrent admission and no per-workload flavor allow-list"
)
OUT_OF_SCOPE = {name: _ALLOWED for name in NAMES if name != "no constraints"}

CASES = {
    # allowedFlavors: nil. wantFlavor "f1", wantRepMode Fit.
    "no constraints": Case(
        (main({"cpu": "2"}),),
        CQ("cq", ({"f1": {"cpu": "10"}, "f2": {"cpu": "10"}, "occupied": {"cpu": "1"}},)),
        Want(FIT, {"main": PodSetWant({"cpu": "f1"}, reasons=None)}),
        flavor_map(flavor("f1"), flavor("f2"), flavor("occupied")),
        feature_gates={"ConcurrentAdmission": True},
    ),
}

XFAIL: dict[str, str] = {}


@pytest.mark.parametrize("kueue_case", params(NAMES, CASES, OUT_OF_SCOPE, XFAIL, count=6))
def test_assign_flavors_with_allowed_flavors(kueue_case: Case) -> None:
    check(kueue_case)
