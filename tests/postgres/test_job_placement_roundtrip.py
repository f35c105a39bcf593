"""A job's pod-set placement constraints survive the PostgreSQL job store (issue #20, 6 and 7).

The flavor assigner reads a pod set's tolerations, node selector, required node affinity and zero
requests (``budcore.domain.job.PodSet``); the store keeps the job as its JSON document, so they must
come back exactly, equal to what was stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

pytest.importorskip("sqlalchemy")

from budcore_adapters.postgres import PostgresJobStore

from budcore.domain.ids import TenantId
from budcore.domain.job import Job, PodSet, ResourceRequest

pytestmark = pytest.mark.postgres

T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def store(pg_url: str) -> Iterator[PostgresJobStore]:
    s = PostgresJobStore(pg_url)
    yield s
    s.close()


def test_pod_set_placement_fields_round_trip(store: PostgresJobStore) -> None:
    pod_set = PodSet(
        name="workers",
        count=2,
        min_count=1,  # partial admission (issue #20, 8)
        resources={"nvidia.com/gpu": 8, "cpu": "500m", "example.com/fpga": 0},
        node_selector={"pool": "spot", "zone": "a"},
        required_node_affinity=[
            {"matchExpressions": [{"key": "size", "operator": "Gt", "values": ["15"]}]},
            {"match_expressions": [{"key": "tier", "operator": "NotIn", "values": ["low", "mid"]}]},
        ],
        tolerations=[
            {"key": "instance", "operator": "Equal", "value": "spot", "effect": "NoSchedule"},
            {"operator": "Exists"},
            {"key": "gone", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
        ],
    )
    job = store.create(
        Job(
            name="placed",
            tenant=TenantId("acme"),
            request=ResourceRequest(pod_sets=(pod_set,)),
            created_at=T0,
            updated_at=T0,
        )
    )
    back = store.get(job.tenant, job.id)
    assert back == job
    stored = back.request.pod_sets[0]
    assert stored.zero_requests == ("example.com/fpga",)
    assert stored.node_selector == (("pool", "spot"), ("zone", "a"))
    assert stored.tolerations == pod_set.tolerations
    assert stored.required_node_affinity == pod_set.required_node_affinity
