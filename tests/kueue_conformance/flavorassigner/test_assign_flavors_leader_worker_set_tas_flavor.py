"""Kueue's ``TestAssignFlavors_LeaderWorkerSetTASFlavor``: every case is out of scope.

Source: kubernetes-sigs/kueue ff69552e79ad21652c36caa97038382e55625cf7,
``pkg/scheduler/flavorassigner/flavorassigner_test.go`` (Apache-2.0). Kueue's table runs the whole
flavor assignment with the TopologyAwareScheduling gate on for LeaderWorkerSet-shaped workloads:
pod sets grouped by ``podSetGroupName`` with required topology requests on TAS flavors, where a
leader asking no resource inherits its group's TAS flavor. Each case is listed with the reason it
is out of scope and rendered as a skipped param.
"""

from __future__ import annotations

from typing import Any

import pytest
from kueue_conformance.flavorassigner.harness import params

NAMES = (
    "leader without a managed request infers the group's TAS flavor",
    "leader without a group is rejected (ClusterQueue-wide fallback is not supported)",
    "peers in the same group resolving to different TAS flavors are rejected",
    "multiple groups: leaders infer flavors from their own groups",
    "leader in group where peer resolves to non-TAS flavor is rejected",
)

_TAS = (
    "Topology-Aware Scheduling: pod set groups (podSetGroupName) with required topology requests "
    "on TAS flavors (topologyName); budcore has neither TAS nor pod set groups"
)
OUT_OF_SCOPE = dict.fromkeys(NAMES, _TAS)

CASES: dict[str, Any] = {}

XFAIL: dict[str, str] = {}


@pytest.mark.parametrize("kueue_case", params(NAMES, CASES, OUT_OF_SCOPE, XFAIL, count=5))
def test_assign_flavors_leader_worker_set_tas_flavor(kueue_case: Any) -> None:
    pytest.fail(f"{kueue_case!r} is out of scope: its param must stay skipped")
