"""A pod asks for a share of one accelerator or for whole ones, never for parts of two.

No device plugin splits a pod over two devices, so ``1500m`` GPUs can never be placed. The
simulator's backend refused it at placement; a library user who built such a ``Job`` saw it
queued and waiting for ever. The rule now lives with the request (``PodSet``), so every path that
builds a job refuses it with the resource named.
"""

from __future__ import annotations

import pydantic
import pytest

from budcore.domain.errors import ValidationError
from budcore.domain.job import Job, ResourceRequest
from budcore.domain.resources import AMD_GPU, NVIDIA_GPU, device_request


@pytest.mark.parametrize("gpus", ["100m", "999m", "1", "1000m", "2", "8", "16000m"])
def test_a_share_of_one_device_or_whole_devices_is_accepted(gpus: str) -> None:
    request = ResourceRequest.single(gpus=gpus)
    assert request.total[NVIDIA_GPU] > 0


@pytest.mark.parametrize(
    ("resource", "gpus", "shown"),
    [
        (NVIDIA_GPU, "1500m", "1.5"),
        (NVIDIA_GPU, "2.25", "2.25"),
        (AMD_GPU, "1001m", "1.001"),
        ("nvidia.com/mig-1g.10gb", "3500m", "3.5"),
    ],
)
def test_parts_of_two_devices_are_refused_naming_the_resource(resource: str, gpus: str, shown: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        ResourceRequest.single(gpus=gpus, gpu_resource=resource)
    (error,) = caught.value.errors()
    assert error["loc"] == ("resources",)
    assert f"asks for {shown} {resource}" in error["msg"]
    assert "never parts of two" in error["msg"]


def test_a_job_document_names_the_pod_set_of_the_bad_request() -> None:
    document = {
        "name": "train",
        "tenant": "acme",
        "local_queue": "main",
        "request": {
            "pod_sets": [
                {"name": "driver", "resources": {NVIDIA_GPU: "1"}},
                {"name": "workers", "count": 4, "resources": {NVIDIA_GPU: "1.5", "cpu": "1500m"}},
            ]
        },
    }
    with pytest.raises(pydantic.ValidationError) as caught:
        Job.model_validate(document)
    (error,) = caught.value.errors()
    assert error["loc"] == ("request", "pod_sets", 1, "resources")
    assert "1.5 nvidia.com/gpu" in error["msg"]


def test_other_resources_may_be_fractional() -> None:
    request = ResourceRequest.single(cpu="1500m", memory="1.5Gi", gpus=1)
    assert request.total["cpu"] == 1500
    assert device_request("cpu", 1500) == 1500


def test_the_rule_is_one_line_naming_the_resource_as_its_path() -> None:
    with pytest.raises(ValidationError) as caught:
        device_request(NVIDIA_GPU, 1500, "a pod of pod set 'main'")
    assert caught.value.path == NVIDIA_GPU
    assert "\n" not in str(caught.value)
    assert str(caught.value.message).startswith("a pod of pod set 'main' asks for 1.5 nvidia.com/gpu")


def test_a_job_stored_before_the_rule_still_loads_and_can_be_cancelled() -> None:
    """The PostgreSQL store validates rows as it reads them; a job written before pods were
    refused parts of two devices must stay readable (one such row would otherwise break every
    listing of its tenant) and cancellable."""
    from datetime import UTC, datetime

    pytest.importorskip("sqlalchemy", reason="the postgres extra")
    from budcore_adapters.postgres.records import job_from_doc, job_from_json

    from budcore.domain import JobStatus, transition

    legacy = {
        "id": "old",
        "name": "old",
        "tenant": "acme",
        "status": "queued",
        "request": {"pod_sets": [{"resources": {NVIDIA_GPU: "1500m"}}]},
    }
    with pytest.raises(pydantic.ValidationError):
        Job.model_validate(legacy)
    job = job_from_doc(legacy)
    assert job.request.total[NVIDIA_GPU] == 1500
    assert job_from_json(job.model_dump_json()) == job
    cancelled, _ = transition(
        job, JobStatus.CANCELLED, now=datetime(2026, 12, 7, tzinfo=UTC), reason="fix it"
    )
    assert cancelled.status is JobStatus.CANCELLED
