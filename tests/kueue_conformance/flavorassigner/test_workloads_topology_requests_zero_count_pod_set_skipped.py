"""Kueue's ``TestWorkloadsTopologyRequests_ZeroCountPodSetSkipped``: every case is out of scope.

Source: kubernetes-sigs/kueue ff69552e79ad21652c36caa97038382e55625cf7,
``pkg/scheduler/flavorassigner/flavorassigner_test.go`` (Apache-2.0). Kueue's table checks that
pod sets admitted with count 0 get no topology request (``Assignment.WorkloadsTopologyRequests``).
Each case is listed with the reason it is out of scope and rendered as a skipped param.
"""

from __future__ import annotations

from typing import Any

import pytest
from kueue_conformance.flavorassigner.harness import params

NAMES = (
    "mixed: 1 completed (count=0) + 1 running (count=1)",
    "all completed (count=0): no TAS requests",
    "3 podSets: 2 completed + 1 running",
    "all running: all get TAS requests",
)

_TAS = (
    "Topology-Aware Scheduling: which pod sets get topology requests (and pod sets of count 0, "
    "which budcore's PodSet does not allow); budcore has no TAS"
)
OUT_OF_SCOPE = dict.fromkeys(NAMES, _TAS)

CASES: dict[str, Any] = {}

XFAIL: dict[str, str] = {}


@pytest.mark.parametrize("kueue_case", params(NAMES, CASES, OUT_OF_SCOPE, XFAIL, count=4))
def test_workloads_topology_requests_zero_count_pod_set_skipped(kueue_case: Any) -> None:
    pytest.fail(f"{kueue_case!r} is out of scope: its param must stay skipped")
