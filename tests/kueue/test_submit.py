"""budcore jobs as suspended Kubernetes Jobs / JobSets: the manifest, its validation, and submission
against the API-server double (exactly once, one-line errors)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import kubernetes.client
import pytest
from budcore_adapters.kueue import submit as submit_module
from budcore_adapters.kueue.client import JOBS, JOBSETS, KubeClient, KubeError
from budcore_adapters.kueue.submit import (
    ACCELERATOR_ANNOTATION,
    ATTEMPT_LABEL,
    JOB_ID_LABEL,
    JOB_NAME_LABEL,
    MANAGED_BY_LABEL,
    MAX_EXEC_TIME_LABEL,
    MIN_PARALLELISM_ANNOTATION,
    PRIORITY_CLASS_LABEL,
    QUEUE_NAME_LABEL,
    TENANT_LABEL,
    NameClashError,
    job_manifest,
    jobset_manifest,
    manifest,
    object_name,
    owner_key,
    submit,
    validate_manifest,
    withdraw,
)
from kueue.apiserver import FakeApiServer

from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.domain.job import DeploymentType, Job, PodSet, ResourceRequest
from budcore.domain.priority import JobPriority


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer(context="prod-east") as fake:
        yield fake


@pytest.fixture
def client(server: FakeApiServer) -> Iterator[KubeClient]:
    kube = server.client()
    yield kube
    kube.close()


def a_job(**changes: Any) -> Job:
    fields: dict[str, Any] = {
        "id": "3f1c0e8a9b2d4c6e8f0a1b2c3d4e5f60",
        "name": "Train LLaMA-7B (nightly)",
        "tenant": "team-a",
        "local_queue": "team-a-queue",
        "spec": {"image": "ghcr.io/acme/train:1.2", "command": ["python", "train.py"], "env": {"EPOCHS": 3}},
        "request": ResourceRequest.single(gpus=2, cpu="4", memory="32Gi", pods=3),
        "max_duration": timedelta(hours=2, milliseconds=1),
    }
    fields.update(changes)
    return Job(**fields)


def gang(**changes: Any) -> Job:
    request = ResourceRequest(
        pod_sets=(
            PodSet(name="driver", count=1, resources={"cpu": "2", "memory": "8Gi"}),
            PodSet(name="workers", count=4, resources={"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": 8}),
        )
    )
    return a_job(request=request, **changes)


# -- the manifest ------------------------------------------------------------------------------


def test_single_pod_set_is_a_suspended_batch_job_with_kueue_and_owner_labels() -> None:
    job = a_job()
    doc = job_manifest(job)
    assert doc["apiVersion"] == "batch/v1" and doc["kind"] == "Job"
    meta = doc["metadata"]
    assert meta["namespace"] == "team-a"
    assert meta["labels"] == {
        QUEUE_NAME_LABEL: "team-a-queue",
        PRIORITY_CLASS_LABEL: "budcore-normal",
        JOB_ID_LABEL: job.id,
        TENANT_LABEL: "team-a",
        ATTEMPT_LABEL: "0",
        MANAGED_BY_LABEL: "budcore",
        JOB_NAME_LABEL: "train-llama-7b-nightly",
        MAX_EXEC_TIME_LABEL: "7201",  # rounded up: never cut a run short
    }
    spec = doc["spec"]
    assert spec["suspend"] is True
    assert spec["parallelism"] == spec["completions"] == 3
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 7201
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/acme/train:1.2"
    assert container["command"] == ["python", "train.py"]
    assert container["env"] == [{"name": "EPOCHS", "value": "3"}]
    amounts = {"cpu": "4", "memory": "32Gi", "nvidia.com/gpu": "2"}
    assert container["resources"] == {"requests": amounts, "limits": amounts}
    assert spec["template"]["metadata"]["labels"] == {JOB_ID_LABEL: job.id, TENANT_LABEL: "team-a"}


def test_name_is_a_dns_label_derived_from_tenant_id_and_attempt_only() -> None:
    job = a_job()
    name = object_name(job)
    assert re.fullmatch(r"budcore-[0-9a-f]{20}", name)
    assert len(name) <= 63
    # the same for a renamed copy, different for another id, tenant or attempt
    assert object_name(a_job(name="renamed")) == name
    assert object_name(a_job(id="another")) != name
    assert object_name(a_job(tenant="team-b")) != name
    retry = a_job(retry_count=2)
    assert object_name(retry) == f"{name}-r2"
    assert job_manifest(retry)["metadata"]["labels"][ATTEMPT_LABEL] == "2"
    assert owner_key(job_manifest(retry)) == ("team-a", job.id, 2)


def test_priority_label_names_the_class_or_the_builtin_one() -> None:
    assert job_manifest(a_job(priority=JobPriority.HIGH))["metadata"]["labels"][PRIORITY_CLASS_LABEL] == (
        "budcore-high"
    )
    custom = job_manifest(a_job(priority_class="prod-critical"))
    assert custom["metadata"]["labels"][PRIORITY_CLASS_LABEL] == "prod-critical"
    by_label = job_manifest(a_job(labels={PRIORITY_CLASS_LABEL: "batch-low"}))
    assert by_label["metadata"]["labels"][PRIORITY_CLASS_LABEL] == "batch-low"


def test_placement_constraints_and_partial_admission_reach_the_pod_template() -> None:
    pod_set = PodSet(
        count=4,
        min_count=2,
        resources={"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": 1, "rdma/ib": 0},
        node_selector={"budcore.io/accelerator": "nvidia-h100-80gb"},
        tolerations=[
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "spot", "value": "true", "effect": "NoExecute", "tolerationSeconds": 30},
        ],
        required_node_affinity=[
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]},
            {"matchExpressions": [{"key": "pool", "operator": "Exists"}]},
        ],
    )
    job = a_job(
        request=ResourceRequest(pod_sets=(pod_set,), accelerator_type="nvidia-h100-80gb"), max_duration=None
    )
    doc = job_manifest(job)
    assert doc["metadata"]["annotations"] == {
        MIN_PARALLELISM_ANNOTATION: "2",
        ACCELERATOR_ANNOTATION: "nvidia-h100-80gb",
    }
    assert MAX_EXEC_TIME_LABEL not in doc["metadata"]["labels"]
    assert "activeDeadlineSeconds" not in doc["spec"]
    pod = doc["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"budcore.io/accelerator": "nvidia-h100-80gb"}
    assert pod["tolerations"] == [
        {"operator": "Exists", "key": "nvidia.com/gpu", "effect": "NoSchedule"},
        {"operator": "Equal", "key": "spot", "value": "true", "effect": "NoExecute", "tolerationSeconds": 30},
    ]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert terms == [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]},
        {"matchExpressions": [{"key": "pool", "operator": "Exists"}]},
    ]
    resources = pod["containers"][0]["resources"]
    # a zero request is kept (Kueue still assigns it a flavor), in limits too (extended resource)
    assert resources["requests"] == {"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": "1", "rdma/ib": "0"}
    assert resources["limits"] == resources["requests"]


def test_namespace_can_be_given() -> None:
    assert job_manifest(a_job(), namespace="batch")["metadata"]["namespace"] == "batch"


def test_several_pod_sets_are_a_jobset_one_replicated_job_each() -> None:
    job = gang()
    with pytest.raises(ValidationError, match="JobSet") as info:
        job_manifest(job)
    assert info.value.path == "request.pod_sets"
    doc = manifest(job)
    assert doc == jobset_manifest(job)
    assert doc["apiVersion"] == "jobset.x-k8s.io/v1alpha2" and doc["kind"] == "JobSet"
    assert doc["metadata"]["labels"][QUEUE_NAME_LABEL] == "team-a-queue"
    assert doc["spec"]["suspend"] is True
    assert doc["spec"]["failurePolicy"] == {"maxRestarts": 0}
    driver, workers = doc["spec"]["replicatedJobs"]
    assert (driver["name"], driver["replicas"], workers["name"], workers["replicas"]) == (
        "driver",
        1,
        "workers",
        1,
    )
    spec = workers["template"]["spec"]
    assert "suspend" not in spec  # the JobSet suspends its Jobs
    assert spec["parallelism"] == spec["completions"] == 4
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 7201
    (container,) = spec["template"]["spec"]["containers"]
    assert container["name"] == "workers"
    assert container["resources"]["limits"] == {"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": "8"}


def test_per_pod_set_container_overrides() -> None:
    job = gang(spec={"image": "base:1", "pod_sets": {"driver": {"image": "driver:2", "args": ["--lead"]}}})
    driver, workers = manifest(job)["spec"]["replicatedJobs"]
    driver_c = driver["template"]["spec"]["template"]["spec"]["containers"][0]
    workers_c = workers["template"]["spec"]["template"]["spec"]["containers"][0]
    assert (driver_c["image"], driver_c["args"]) == ("driver:2", ["--lead"])
    assert workers_c["image"] == "base:1" and "args" not in workers_c


def test_jobset_limits_are_clear_errors() -> None:
    bad_name = ResourceRequest(pod_sets=(PodSet(name="Driver_1"), PodSet(name="w")))
    with pytest.raises(ValidationError, match="DNS-1123") as info:
        manifest(a_job(request=bad_name))
    assert info.value.path == "request.pod_sets[0].name"
    partial = ResourceRequest(pod_sets=(PodSet(name="a"), PodSet(name="b", count=4, min_count=2)))
    with pytest.raises(ValidationError, match="batch Jobs only") as info:
        manifest(a_job(request=partial))
    assert info.value.path == "request.pod_sets[1].min_count"


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        ({"spec": {}}, "spec.image", "container image is required"),
        ({"spec": {"image": "  "}}, "spec.image", "container image is required"),
        ({"local_queue": None}, "local_queue", "LocalQueue"),
        ({"tenant": "team_a"}, "tenant", "not a valid Kubernetes namespace"),
        ({"id": "a/b"}, "id", "label value"),
        ({"local_queue": "x" * 64}, "local_queue", "label value"),
        ({"max_duration": timedelta(0)}, "max_duration", "at least 1 second"),
        ({"deployment_type": DeploymentType.HELM}, "deployment_type", "helm"),
        ({"spec": {"image": "x", "command": "run.sh"}}, "spec.command", "list of strings"),
        ({"spec": {"image": "x", "env": ["A=1"]}}, "spec.env", "map variable names"),
    ],
)
def test_bad_input_names_the_job_field(changes: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(words)) as info:
        manifest(a_job(**changes))
    assert info.value.path == path
    assert "\n" not in str(info.value)


def test_docker_deployment_type_is_accepted() -> None:
    assert job_manifest(a_job(deployment_type=DeploymentType.DOCKER))["kind"] == "Job"


# -- validation against the Kubernetes OpenAPI models --------------------------------------------


def test_unknown_field_and_wrong_type_are_named_before_anything_is_sent() -> None:
    doc = job_manifest(a_job())
    doc["spec"]["parallelism"] = "3"
    doc["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = 4
    doc["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(ValidationErrors) as info:
        validate_manifest(doc)
    by_path = {e.path: e.message for e in info.value.errors}
    assert set(by_path) == {
        "spec.parallelism",
        "spec.template.spec.containers[0].resources.limits.cpu",
        "spec.template.spec.containers[0].imagePullPolicyy",
    }
    assert "unknown field" in by_path["spec.template.spec.containers[0].imagePullPolicyy"]
    assert by_path["spec.parallelism"].startswith("Job team-a/budcore-")
    assert "'3'" in by_path["spec.parallelism"]


def test_missing_required_field_and_jobset_templates_are_validated() -> None:
    doc = jobset_manifest(gang())
    del doc["spec"]["replicatedJobs"][1]["template"]["spec"]["template"]["spec"]["containers"][0]["name"]
    with pytest.raises(ValidationError, match="required field is missing") as info:
        validate_manifest(doc)
    assert info.value.path == "spec.replicatedJobs[1].template.spec.template.spec.containers[0].name"


def test_the_openapi_walk_for_older_clients_finds_the_same_problems() -> None:
    """Clients before the pydantic models accept anything: the ``openapi_types`` walk is used."""
    doc = job_manifest(a_job())
    assert submit_module._walk(kubernetes.client.V1Job, doc, "") == []
    doc["spec"]["parallelism"] = "3"
    doc["spec"]["suspend"] = 1
    doc["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = 4
    doc["spec"]["template"]["spec"]["bogus"] = {}
    problems = {p.path: p.message for p in submit_module._walk(kubernetes.client.V1Job, doc, "")}
    assert set(problems) == {
        "spec.parallelism",
        "spec.suspend",
        "spec.template.spec.containers[0].resources.limits.cpu",
        "spec.template.spec.bogus",
    }
    assert problems["spec.template.spec.bogus"].startswith("unknown field")


# -- submission against the API-server double -----------------------------------------------------


def test_submit_creates_one_suspended_job_in_the_tenant_namespace(
    server: FakeApiServer, client: KubeClient
) -> None:
    job = a_job()
    result = submit(client, job)
    assert result.created and result.kind == "Job" and result.namespace == "team-a"
    assert result.name == object_name(job) and result.uid
    stored = server.get_object(JOBS, result.name, "team-a")
    assert stored is not None
    assert stored["spec"]["suspend"] is True
    assert stored["metadata"]["labels"] == job_manifest(job)["metadata"]["labels"]
    assert (
        stored["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] == "2"
    )
    assert stored["spec"]["activeDeadlineSeconds"] == 7201


def test_resubmission_is_idempotent(server: FakeApiServer, client: KubeClient) -> None:
    job = a_job()
    first = submit(client, job)
    again = submit(client, job)
    assert not again.created
    assert again.uid == first.uid
    # even after Kueue unsuspended it: resubmitting must not touch the running job
    client.patch(JOBS, first.name, "team-a", {"spec": {"suspend": False}})
    third = submit(client, job)
    assert not third.created and third.object["spec"]["suspend"] is False
    assert len(server.objects(JOBS, "team-a")) == 1
    # a retry is a new attempt with its own object
    retry = submit(client, job.model_copy(update={"retry_count": 1}))
    assert retry.created and retry.name == f"{first.name}-r1"
    assert len(server.objects(JOBS, "team-a")) == 2


def test_a_name_taken_by_another_job_is_an_error(server: FakeApiServer, client: KubeClient) -> None:
    job = a_job()
    squatter = job_manifest(job)
    squatter["metadata"]["labels"][JOB_ID_LABEL] = "someone-else"
    client.create(JOBS, squatter)
    with pytest.raises(NameClashError, match="belongs to budcore job 'someone-else'") as info:
        submit(client, job)
    assert str(info.value).startswith("prod-east: Job team-a/budcore-")
    foreign = {"metadata": {"name": object_name(job), "namespace": "other"}, "spec": squatter["spec"]}
    client.create(JOBS, foreign)
    with pytest.raises(NameClashError, match="an object budcore did not submit"):
        submit(client, job, namespace="other")
    with pytest.raises(NameClashError, match="not deleted"):
        withdraw(client, job, namespace="other")


def test_bad_input_sends_nothing(server: FakeApiServer, client: KubeClient) -> None:
    before = server.requests
    for bad in (a_job(spec={}), a_job(local_queue=None)):
        with pytest.raises(ValidationError):
            submit(client, bad)
    assert server.requests == before
    assert server.objects(JOBS) == []


def test_forbidden_namespace_is_one_line_naming_context_and_object(
    server: FakeApiServer, client: KubeClient
) -> None:
    server.forbid("team-a")
    job = a_job()
    with pytest.raises(KubeError) as info:
        submit(client, job)
    message = str(info.value)
    assert info.value.status == 403
    assert "\n" not in message
    assert message.startswith(f"prod-east: create Job team-a/{object_name(job)}: HTTP 403 Forbidden")


def test_unreachable_server_is_one_line(server: FakeApiServer, client: KubeClient) -> None:
    server.stop()
    with pytest.raises(KubeError) as info:
        submit(client, a_job())
    assert info.value.reason == "Unreachable" and "\n" not in str(info.value)
    assert "prod-east" in str(info.value)


def test_gang_is_submitted_as_a_jobset(server: FakeApiServer, client: KubeClient) -> None:
    job = gang()
    result = submit(client, job)
    assert result.created and result.kind == "JobSet"
    stored = server.get_object(JOBSETS, result.name, "team-a")
    assert stored is not None and stored["spec"]["suspend"] is True
    assert not submit(client, job).created
    assert withdraw(client, job)
    assert server.get_object(JOBSETS, result.name, "team-a") is None


def test_gang_is_refused_where_jobset_is_not_served(
    client: KubeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client, "api_versions", lambda group: [])
    with pytest.raises(ValidationError, match=r"does not serve jobset.x-k8s.io/v1alpha2.*install the JobSet"):
        submit(client, gang())


def test_withdraw_deletes_the_current_attempt(server: FakeApiServer, client: KubeClient) -> None:
    job = a_job()
    submit(client, job)
    assert withdraw(client, job)
    assert not withdraw(client, job)
    assert server.objects(JOBS, "team-a") == []
