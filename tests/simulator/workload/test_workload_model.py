"""JobArrival and its conversion to a budcore Job."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import pytest
from budcore_simulator.workload import JobArrival, arrival_to_job, split_gang
from budcore_simulator.workload.model import JOB_CLASS_LABEL

from budcore.domain.errors import ValidationError
from budcore.domain.job import JobType
from budcore.domain.priority import JobPriority

START = datetime(2026, 1, 5, tzinfo=UTC)


def arrival(**changes: object) -> JobArrival:
    base = JobArrival(
        submit_s=90.0,
        runtime_s=3600.0,
        gpus_per_pod=8,
        pods=2,
        cpu_milli=64_000,
        memory_bytes=512 * 2**30,
        tenant="research",
        local_queue="research-train",
        priority="high",
        job_type="training",
        job_class="pretrain",
        job_id="pretrain-7",
        checkpoint_interval_s=900.0,
        deadline_s=9000.0,
        accelerator="nvidia-h100-80gb",
    )
    return base._replace(**changes)


def test_arrival_becomes_a_validated_job() -> None:
    job = arrival_to_job(arrival(), START)
    assert job.id == "pretrain-7" and job.name == "pretrain-7"
    assert job.tenant == "research" and job.local_queue == "research-train"
    assert job.priority is JobPriority.HIGH and job.job_type is JobType.TRAINING
    assert job.created_at == START + timedelta(seconds=90)
    assert job.deadline == START + timedelta(seconds=9000)
    assert job.checkpoint_interval == timedelta(minutes=15)
    assert job.estimated_duration == timedelta(hours=1)
    assert job.labels == {JOB_CLASS_LABEL: "pretrain"}
    (pod_set,) = job.request.pod_sets
    assert pod_set.count == 2
    assert pod_set.resources.to_kube() == {"cpu": "64", "memory": "512Gi", "nvidia.com/gpu": "8"}
    assert job.request.accelerator_type == "nvidia-h100-80gb"
    assert job.request.accelerator_count == 16


def test_optional_fields_and_cpu_only() -> None:
    job = arrival_to_job(
        arrival(
            gpus_per_pod=0,
            pods=1,
            cpu_milli=500,
            memory_bytes=2**30,
            deadline_s=None,
            checkpoint_interval_s=None,
            accelerator=None,
        ),
        START,
        with_estimate=False,
    )
    assert job.deadline is None and job.checkpoint_interval is None and job.estimated_duration is None
    assert job.request.total.to_kube() == {"cpu": "500m", "memory": "1Gi"}
    assert job.request.accelerator_count == 0


def test_same_arrival_same_job() -> None:
    assert arrival_to_job(arrival(), START) == arrival_to_job(arrival(), START)


def test_max_retries_is_validated_with_the_job() -> None:
    assert arrival_to_job(arrival(), START).max_retries == 3  # the Job default
    assert arrival_to_job(arrival(), START, max_retries=0).max_retries == 0
    with pytest.raises(ValidationError, match="max_retries"):
        arrival_to_job(arrival(), START, max_retries=-1)


def test_jobs_of_one_shape_share_their_request() -> None:
    """The request is immutable, so jobs of equal shape can share one (parsed once)."""
    first = arrival_to_job(arrival(job_id="a"), START)
    second = arrival_to_job(arrival(job_id="b", tenant="other"), START)
    assert first.request is second.request
    assert arrival_to_job(arrival(job_id="c", pods=1), START).request.pod_sets[0].count == 1


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"tenant": "Research Team"}, "tenant"),
        ({"priority": "urgent"}, "priority"),
        ({"job_type": "cron"}, "job_type"),
    ],
)
def test_bad_values_raise_budcore_errors(changes: dict[str, object], path: str) -> None:
    with pytest.raises(ValidationError) as info:
        arrival_to_job(arrival(**changes), START)
    assert path in info.value.path


def test_naive_start_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        arrival_to_job(arrival(), datetime(2026, 1, 5))
    assert info.value.path == "start"


def test_arrival_is_immutable_cheap_and_picklable() -> None:
    a = arrival()
    with pytest.raises(AttributeError):
        a.submit_s = 1.0  # type: ignore[misc]
    assert not hasattr(a, "__dict__")
    assert pickle.loads(pickle.dumps(a)) == a
    assert a.total_gpus == 16 and a.gpu_seconds == 16 * 3600.0


@pytest.mark.parametrize(
    ("total", "per_node", "expected"),
    [(0, 8, (1, 0)), (1, 8, (1, 1)), (8, 8, (1, 8)), (16, 8, (2, 8)), (12, 8, (2, 6)), (17, 8, (3, 6))],
)
def test_split_gang(total: int, per_node: int, expected: tuple[int, int]) -> None:
    assert split_gang(total, per_node) == expected
    pods, per_pod = split_gang(total, per_node)
    assert per_pod <= per_node and pods * per_pod >= total


def test_split_gang_rejects_nonsense() -> None:
    with pytest.raises(ValidationError):
        split_gang(4, 0)
    with pytest.raises(ValidationError):
        split_gang(-1, 8)
