"""The public strategies generate only valid objects and honour their parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from budcore.config.kueue import SUPPORTED_API_VERSIONS, dump_queue_config, loads_queue_config
from budcore.domain import Job, JobStatus, ResourceRequest, ResourceVector, ValidationError, parse_quantity
from budcore.domain.cluster import Node, Workload
from budcore.domain.resources import CPU, MEMORY, NVIDIA_GPU, is_accelerator
from budcore.scheduling.queues import ClusterQueue, QueueConfig, ResourceFlavor
from budcore.testing import strategies as bst
from budcore.testing.examples import examples

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
        # Checked when the strategy is built, on the argument the caller passed:
        (lambda: bst.jobs(tenants=("Bad Tenant",)), "tenants"),
        (lambda: bst.jobs(tenants=("acme", "")), "tenants"),
        (lambda: bst.jobs(projects=("Research",)), "projects"),
        (lambda: bst.jobs(idempotency_key_pool=("",)), "idempotency_key_pool"),
        (lambda: bst.jobs(statuses=["bogus"]), "statuses"),
        (lambda: bst.jobs(max_gpus=-1), "max_gpus"),
        (lambda: bst.jobs(max_pod_sets=0), "max_pod_sets"),
        (lambda: bst.jobs(max_pods=0), "max_pods"),
        (lambda: bst.idempotency_keys(("x" * 256,)), "pool"),
        (lambda: bst.pod_resources(max_gpus=-1), "max_gpus"),
        (lambda: bst.resource_requests(max_pod_sets=0), "max_pod_sets"),
        (lambda: bst.resource_requests(max_gpus=-2), "max_gpus"),
        (lambda: bst.nodes(max_gpus=-1), "max_gpus"),
        (lambda: bst.fleets(min_gpus=4, max_gpus=2), "min_gpus"),
        (lambda: bst.resource_vectors(names=["cpu"], min_size=3), "min_size"),
        (lambda: bst.resource_vectors(names=["not a resource"]), "names"),
        (lambda: bst.milli_amounts(NVIDIA_GPU, min_milli=500, max_milli=900), "min_milli"),
        (lambda: bst.queue_configs(max_cluster_queues=-1), "max_cluster_queues"),
        (lambda: bst.cluster_queues(flavors=("a", "a")), "flavors"),
        (lambda: bst.cluster_queues(cohorts=()), "cohorts"),
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


def test_a_bad_pool_member_is_named_in_the_message() -> None:
    with pytest.raises(ValidationError) as info:
        bst.jobs(tenants=("acme", "Bad Tenant"))
    assert "item 1" in info.value.message and "'Bad Tenant'" in info.value.message


@given(bst.jobs(statuses=["queued", JobStatus.RUNNING]))
def test_statuses_may_be_given_as_strings(job: Job) -> None:
    assert job.status in (JobStatus.QUEUED, JobStatus.RUNNING)


@settings(max_examples=examples(60), deadline=None)
@given(config=bst.queue_configs(max_cluster_queues=3))
def test_queue_configs_survive_a_kueue_round_trip(config: QueueConfig) -> None:
    assert len(config.cluster_queues) <= 3
    for api_version in SUPPORTED_API_VERSIONS:
        assert loads_queue_config(dump_queue_config(config, api_version), "<dump>") == config
    for local_queue in config.local_queues.values():
        assert local_queue.cluster_queue in config.cluster_queues


@given(bst.cluster_queues(name="gpu-queue", flavors=("h100", "a100"), cohorts=(None, "research")))
def test_cluster_queues_use_only_the_given_flavors_and_cohorts(queue: ClusterQueue) -> None:
    assert queue.name == "gpu-queue"
    assert queue.cohort in (None, "research")
    flavors = [f.name for g in queue.resource_groups for f in g.flavors]
    assert set(flavors) <= {"h100", "a100"} and len(flavors) == len(set(flavors))
    if queue.cohort is None:
        quotas = [q for g in queue.resource_groups for f in g.flavors for q in f.resources]
        assert all(q.borrowing_limit is None and q.lending_limit is None for q in quotas)


@given(bst.resource_flavors(name="h100"))
def test_resource_flavors_take_the_given_name(flavor: ResourceFlavor) -> None:
    assert flavor.name == "h100"
    assert flavor.topology_name is None or flavor.node_labels
