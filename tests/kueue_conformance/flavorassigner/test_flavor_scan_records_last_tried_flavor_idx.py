"""Kueue's ``TestFlavorScanRecordsLastTriedFlavorIdx``: every case is out of scope.

Source: kubernetes-sigs/kueue ff69552e79ad21652c36caa97038382e55625cf7,
``pkg/scheduler/flavorassigner/flavorassigner_test.go`` (Apache-2.0). Kueue's table checks the
cross-cycle flavor bookmark (``LastTriedFlavorIdx``) and whether a topology assignment was
produced, for a one-pod workload with a required hostname topology request on two TAS flavors with
one node each, with the TopologyAwareScheduling gate on. Each case is listed with the reason it is
out of scope and rendered as a skipped param.
"""

from __future__ import annotations

from typing import Any

import pytest
from kueue_conformance.flavorassigner.harness import params

NAMES = (
    "quota and topology both fit on the first flavor: bookmark names it",
    "quota fits but the pod is larger than any node: bookmark still names the first flavor",
    "quota fits but the topology is fragmented: bookmark still names the first flavor",
    "fits only by borrowing: bookmark says start over",
    "fits only by borrowing, but WhenCanBorrow is MayStopSearch: bookmark names the first flavor",
    "needs preemption and candidates exist: bookmark names the first flavor",
    "needs preemption but no candidates: bookmark says start over whatever the policy",
)

_TAS = (
    "Topology-Aware Scheduling: TAS flavors (topologyName) and a required topology request, with "
    "node capacity deciding the mode; the expected LastTriedFlavorIdx is Kueue's cross-cycle flavor "
    "bookmark, which budcore does not keep; budcore has no TAS"
)
OUT_OF_SCOPE = dict.fromkeys(NAMES, _TAS)

CASES: dict[str, Any] = {}

XFAIL: dict[str, str] = {}


@pytest.mark.parametrize("kueue_case", params(NAMES, CASES, OUT_OF_SCOPE, XFAIL, count=7))
def test_flavor_scan_records_last_tried_flavor_idx(kueue_case: Any) -> None:
    pytest.fail(f"{kueue_case!r} is out of scope: its param must stay skipped")
