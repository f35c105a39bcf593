"""Kueue's ``TestWorkloadsTopologyRequests_ErrorBranches``: every case is out of scope.

Source: kubernetes-sigs/kueue ff69552e79ad21652c36caa97038382e55625cf7,
``pkg/scheduler/flavorassigner/flavorassigner_test.go`` (Apache-2.0). Kueue's table builds
Assignments and ClusterQueue snapshots with TAS flavors and calls
``Assignment.WorkloadsTopologyRequests`` on workloads with required topology requests, checking
the error each pod set gets and that the representative mode becomes NoFit. Each case is listed
with the reason it is out of scope and rendered as a skipped param.
"""

from __future__ import annotations

from typing import Any

import pytest
from kueue_conformance.flavorassigner.harness import params

NAMES = (
    "workload requires Topology, but there is no TAS cache information",
    "workload requires Topology, but there is no TAS flavor assigned",
    "more than one TAS flavor assigned (onlyTASFlavor fails); RepresentativeMode must be NoFit",
)

_TAS = (
    "Topology-Aware Scheduling: building the topology requests of an assignment (TAS flavors, "
    "required topology requests, the TAS cache); budcore has no TAS"
)
OUT_OF_SCOPE = dict.fromkeys(NAMES, _TAS)

CASES: dict[str, Any] = {}

XFAIL: dict[str, str] = {}


@pytest.mark.parametrize("kueue_case", params(NAMES, CASES, OUT_OF_SCOPE, XFAIL, count=3))
def test_workloads_topology_requests_error_branches(kueue_case: Any) -> None:
    pytest.fail(f"{kueue_case!r} is out of scope: its param must stay skipped")
