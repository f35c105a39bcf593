"""Kueue's ``TestWorkloadsTopologyRequests_ElasticJobsValidation``: every case is out of scope.

Source: kubernetes-sigs/kueue ff69552e79ad21652c36caa97038382e55625cf7,
``pkg/scheduler/flavorassigner/flavorassigner_test.go`` (Apache-2.0). Kueue's table checks which
topology requests (required, preferred, unconstrained) an elastic workload
(``kueue.x-k8s.io/elastic-job``, ElasticJobsViaWorkloadSlices and
ElasticJobsViaWorkloadSlicesWithTAS gates) may carry when its topology requests are built. Each
case is listed with the reason it is out of scope and rendered as a skipped param.
"""

from __future__ import annotations

from typing import Any

import pytest
from kueue_conformance.flavorassigner.harness import params

NAMES = (
    "required topology is rejected with ElasticJobsViaWorkloadSlices",
    "preferred topology is rejected with ElasticJobsViaWorkloadSlices",
    "preferred topology is rejected for new elastic workload",
    "unconstrained topology is accepted with ElasticJobsViaWorkloadSlices",
    "required topology is accepted for regular jobs with ElasticJobsViaWorkloadSlicesWithTAS",
    "preferred topology is accepted for regular jobs with ElasticJobsViaWorkloadSlicesWithTAS",
)

_REASON = (
    "Topology-Aware Scheduling with workload slices (ElasticJobsViaWorkloadSlicesWithTAS): "
    "which topology requests an elastic workload may carry; budcore has neither TAS nor workload "
    "slices"
)
OUT_OF_SCOPE = dict.fromkeys(NAMES, _REASON)

CASES: dict[str, Any] = {}

XFAIL: dict[str, str] = {}


@pytest.mark.parametrize("kueue_case", params(NAMES, CASES, OUT_OF_SCOPE, XFAIL, count=6))
def test_workloads_topology_requests_elastic_jobs_validation(kueue_case: Any) -> None:
    pytest.fail(f"{kueue_case!r} is out of scope: its param must stay skipped")
