"""The public strategies generate only valid objects and honour their parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import find, given
from hypothesis import strategies as st

from budcore.domain import Job, JobStatus, ResourceRequest, ResourceVector, ValidationError, parse_quantity
from budcore.domain.cluster import Node, Workload
from budcore.domain.resources import CPU, MEMORY, NVIDIA_GPU, is_accelerator
from budcore.testing import strategies as bst

LOW = datetime(2025, 6, 1, tzinfo=UTC)
HIGH = datetime(2025, 6, 2, tzinfo=UTC)


@given(bst.quantities())
def test_quantity_strings_parse_to_their_milli_amount(pair: tuple[str, int]) -> None:
    text, milli = pair
    assert parse_quantity(text) == milli


@given(bst.quantities(MEMORY))
def test_memory_quantities_are_whole_bytes(pair: tuple[str, int]) -> None:
    text, milli = pair
    assert parse_quantity(text, "memory") == milli
    assert milli % 1000 == 0


@given(bst.milli_amounts(NVIDIA_GPU, max_milli=4000))
def test_gpu_amounts_are_whole_devices_within_bounds(milli: int) -> None:
    assert milli % 1000 == 0
    assert 0 <= milli <= 4000


@given(bst.resource_vectors(max_gpus=2))
def test_resource_vectors_round_trip_through_kubernetes_notation(vector: ResourceVector) -> None:
    assert ResourceVector.of(vector.to_kube()) == vector
    assert all(v <= 2000 for k, v in vector.items() if is_accelerator(k))


@given(bst.resource_names())
def test_resource_names_are_accepted_by_resource_vectors(name: str) -> None:
    assert ResourceVector({name: 1000})[name] == 1000


@given(bst.pod_resources(min_gpus=1, max_gpus=4))
def test_pod_resources_always_carry_cpu_memory_and_requested_gpus(vector: ResourceVector) -> None:
    assert vector[CPU] >= 100
    assert vector[MEMORY] > 0
    assert 1000 <= vector[NVIDIA_GPU] <= 4000


@given(bst.resource_requests(max_pod_sets=3, max_pods=2, max_gpus=2))
def test_resource_requests_are_valid_and_bounded(request: ResourceRequest) -> None:
    assert ResourceRequest.model_validate(request.model_dump()) == request
    assert 1 <= len(request.pod_sets) <= 3
    assert all(p.count <= 2 and p.resources.get(NVIDIA_GPU, 0) <= 2000 for p in request.pod_sets)


@given(bst.gang_requests())
def test_gang_requests_have_several_uniquely_named_pod_sets(request: ResourceRequest) -> None:
    names = [p.name for p in request.pod_sets]
    assert len(names) >= 2
    assert len(set(names)) == len(names)


@given(bst.utc_datetimes(LOW, HIGH))
def test_datetimes_are_aware_utc_within_bounds(value: datetime) -> None:
    assert value.tzinfo is UTC
    assert LOW <= value <= HIGH


@given(bst.jobs(statuses=None))
def test_jobs_are_valid_and_round_trip_through_json(job: Job) -> None:
    assert Job.model_validate_json(job.model_dump_json()) == job
    assert job.version == 0
    assert job.retry_count <= job.max_retries
    assert job.updated_at >= job.created_at
    assert job.tenant in bst.DEFAULT_TENANTS
    if job.status.is_terminal:
        assert job.actual_end is not None
    if job.status in (JobStatus.RUNNING, JobStatus.COMPLETED):
        assert job.actual_start is not None and job.admitted_at is not None
    if job.status is JobStatus.PENDING:
        assert job.retry_count == 0


@given(
    bst.jobs(
        tenants=("solo",),
        statuses=[JobStatus.QUEUED, JobStatus.RUNNING],
        max_gpus=1,
        with_idempotency_key=True,
        idempotency_key_pool=("only-key",),
        created_at=bst.utc_datetimes(LOW, HIGH),
        max_retries=1,
    )
)
def test_jobs_honour_their_parameters(job: Job) -> None:
    assert job.tenant == "solo"
    assert job.status in (JobStatus.QUEUED, JobStatus.RUNNING)
    assert job.idempotency_key is not None
    assert LOW <= job.created_at <= HIGH
    assert job.max_retries <= 1
    assert all(p.resources.get(NVIDIA_GPU, 0) <= 1000 for p in job.request.pod_sets)


@given(bst.jobs(with_idempotency_key=False))
def test_jobs_without_idempotency_keys(job: Job) -> None:
    assert job.idempotency_key is None
    assert job.status is JobStatus.PENDING


@given(bst.jobs(tenants=("a", "b"), with_idempotency_key=True))
def test_idempotency_keys_come_from_the_pool_or_are_unique(job: Job) -> None:
    key = job.idempotency_key
    assert key in bst.DEFAULT_IDEMPOTENCY_KEYS or (key is not None and key.startswith("key-"))


def test_small_pools_produce_tenant_and_key_collisions() -> None:
    def collides(jobs: list[Job]) -> bool:
        pairs = [(j.tenant, j.idempotency_key) for j in jobs]
        return len(set(pairs)) < len(pairs)

    pair = find(st.lists(bst.jobs(with_idempotency_key=True), min_size=2, max_size=2), collides)
    assert pair[0].tenant == pair[1].tenant
    assert pair[0].idempotency_key == pair[1].idempotency_key
    assert pair[0].id != pair[1].id


@given(bst.nodes(gpu_types=("T4",), min_gpus=2, max_gpus=4))
def test_gpu_nodes_are_labelled_with_their_product(node: Node) -> None:
    assert node.labels[bst.GPU_PRODUCT_LABEL] == "T4"
    assert 2000 <= node.allocatable[NVIDIA_GPU] <= 4000
    assert node.allocatable[CPU] > 0 and node.allocatable[MEMORY] > 0


@given(bst.nodes(cpu_only=True))
def test_cpu_nodes_have_no_gpus(node: Node) -> None:
    assert NVIDIA_GPU not in node.allocatable
    assert bst.GPU_PRODUCT_LABEL not in node.labels


@given(bst.fleets(2, 6, gpu_types=("A", "B"), cpu_nodes=True))
def test_fleets_have_unique_names_and_the_requested_shape(fleet: list[Node]) -> None:
    assert 2 <= len(fleet) <= 6
    assert len({n.name for n in fleet}) == len(fleet)
    for node in fleet:
        product = node.labels.get(bst.GPU_PRODUCT_LABEL)
        assert product in ("A", "B") or (product is None and NVIDIA_GPU not in node.allocatable)
        if product is not None:
            assert 1000 <= node.allocatable[NVIDIA_GPU] <= 8000


@given(bst.workloads(gpu_types=("A",), max_pod_sets=2, max_pods=2, max_gpus=2))
def test_workloads_select_only_the_given_gpu_types(workload: Workload) -> None:
    assert 1 <= len(workload.pod_sets) <= 2
    for pod_set in workload.pod_sets:
        assert pod_set.node_selector in ({}, {bst.GPU_PRODUCT_LABEL: "A"})
        assert pod_set.count <= 2


@pytest.mark.parametrize(
    ("build", "path"),
    [
        (lambda: bst.jobs(tenants=()), "tenants"),
        (lambda: bst.jobs(statuses=[]), "statuses"),
        (lambda: bst.jobs(max_retries=-1), "max_retries"),
        (lambda: bst.fleets(3, 1), "min_nodes"),
        (lambda: bst.fleets(gpu_types=()), "gpu_types"),
        (lambda: bst.nodes(min_gpus=4, max_gpus=2), "min_gpus"),
        (lambda: bst.resource_requests(min_pod_sets=0), "min_pod_sets"),
        (lambda: bst.milli_amounts(CPU, min_milli=10, max_milli=1), "min_milli"),
        (lambda: bst.utc_datetimes(datetime(2025, 1, 1), HIGH), "min_value"),
        (lambda: bst.pod_sets(max_count=0), "max_count"),
    ],
)
def test_bad_arguments_raise_a_validation_error_naming_the_argument(build: object, path: str) -> None:
    assert callable(build)
    with pytest.raises(ValidationError) as info:
        build()
    assert info.value.path == path


LATE = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)


@given(bst.jobs(statuses=None, created_at=st.just(LATE)))
def test_derived_timestamps_stay_within_range_a_day_before_datetime_max(job: Job) -> None:
    # The documented contract: a created_at a day clear of datetime.max is enough.
    assert job.created_at == LATE
    assert job.updated_at >= LATE
