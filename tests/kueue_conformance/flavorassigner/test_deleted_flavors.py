"""Kueue's ``TestDeletedFlavors``, transcribed (every case; ids are Kueue's case names).

Source: kubernetes-sigs/kueue ff69552e79ad21652c36caa97038382e55625cf7,
``pkg/scheduler/flavorassigner/flavorassigner_test.go`` (Apache-2.0). The ClusterQueue lists a
flavor that is deleted after the snapshot is taken: Kueue's test adds ResourceFlavors ``flavor``
and ``deleted-flavor``, snapshots, then deletes ``deleted-flavor`` from the cache and from the map
it hands the flavor assigner. Here the configuration has both flavors (budcore refuses a
ClusterQueue naming a missing flavor, as Kueue's snapshot would have) and the map passed to
:func:`assign_flavors` lacks ``deleted-flavor``. Compared as in ``TestAssignFlavors``.
"""

from __future__ import annotations

import pytest
from kueue_conformance.flavorassigner.harness import (
    CQ,
    FIT,
    NO_FIT,
    Case,
    PodSetWant,
    Want,
    check,
    flavor,
    flavor_map,
    main,
    params,
)

FLAVORS = flavor_map(flavor("flavor"), flavor("deleted-flavor"))

NAMES = ("multiple flavors, skip missing ResourceFlavor", "flavor not found")

OUT_OF_SCOPE: dict[str, str] = {}

CASES = {
    "multiple flavors, skip missing ResourceFlavor": Case(
        (main({"cpu": "3"}),),
        CQ("test-clusterqueue", ({"deleted-flavor": {"cpu": "4"}, "flavor": {"cpu": "4"}},)),
        Want(FIT, {"main": PodSetWant({"cpu": ("flavor", FIT)}, (), 1)}, 0, {("flavor", "cpu"): "3"}),
        FLAVORS,
        deleted_flavors=("deleted-flavor",),
    ),
    "flavor not found": Case(
        (main({"cpu": "1"}),),
        CQ("test-clusterqueue", ({"deleted-flavor": {"cpu": "4"}},)),
        # No wantRepMode: Go's zero value, NoFit.
        Want(NO_FIT, {"main": PodSetWant({}, ("flavor deleted-flavor not found",), 1)}, 0, {}),
        FLAVORS,
        deleted_flavors=("deleted-flavor",),
    ),
}

XFAIL: dict[str, str] = {}


@pytest.mark.parametrize("kueue_case", params(NAMES, CASES, OUT_OF_SCOPE, XFAIL, count=2))
def test_deleted_flavors(kueue_case: Case) -> None:
    check(kueue_case)
