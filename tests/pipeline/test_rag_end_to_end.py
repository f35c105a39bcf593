"""The seeds' RAG deployment pipeline (§5.2.2), fixed, end to end on the LocalRunner.

The 8 steps are transcribed in :func:`pipeline.engine_kit.seeds_rag` (the JSON of §5.2.2 as printed,
race included). Step 1's POST goes to a real local HTTP server; the SERVICE jobs run on a simulated
cluster sized for the pipeline; the deployments report their URL when ready (``job_outputs``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from budcore_adapters.http import HttpxApiCaller
from budcore_adapters.inmemory import InMemoryClusterBackend, InMemoryJobStore
from budcore_adapters.inmemory.pipelines import InMemoryPipelineStore
from pipeline.engine_kit import T0, fixed_rag, seeds_rag
from pipeline.httpserver import LocalHttpServer

from budcore.domain.errors import ValidationErrors
from budcore.domain.job import Job, JobPriority, JobSource, JobStatus, JobType
from budcore.pipeline.effects import RecordingNotifier
from budcore.pipeline.loader import pipeline_from_data
from budcore.pipeline.local import LocalRunner, RunReport, VirtualClock, cluster_for
from budcore.pipeline.state import RunStatus, StepStatus

OPTIMIZE = "/api/v1/optimize"


@pytest.fixture
def budsim() -> Iterator[LocalHttpServer]:
    """budsim's optimizer, answering step-1."""
    with LocalHttpServer() as server:
        server.route("POST", OPTIMIZE, json={"config": {"tensor_parallel": 2, "max_num_seqs": 256}})
        yield server


def rag_data(server: LocalHttpServer, *, durations: bool = False) -> dict[str, Any]:
    data = fixed_rag()
    steps = {s["id"]: s for s in data["steps"]}
    steps["step-1"]["config"]["url"] = server.url + OPTIMIZE
    # What step-7 rendered for the reranker, published with its outputs so the test can read it.
    steps["step-7"]["config"]["outputs"] = {"reranker_url": "{{ steps.step-6.outputs.url | default('') }}"}
    if durations:  # the seeds' §5.4.1 timings: qdrant 2 min, embedding 3 min, llm 5 min
        for step_id, seconds in (
            ("step-2", 120),
            ("step-3", 180),
            ("step-4", 300),
            ("step-6", 180),
            ("step-7", 60),
        ):
            steps[step_id]["config"]["estimated_duration_seconds"] = seconds
    return data


def run_rag(
    server: LocalHttpServer, *, reranker: bool = True, durations: bool = False
) -> tuple[LocalRunner, RunReport]:
    spec, _ = pipeline_from_data(rag_data(server, durations=durations))
    config, nodes = cluster_for(spec)
    clock = VirtualClock(T0)
    runner = LocalRunner(
        config=config,
        cluster=InMemoryClusterBackend(nodes, clock=clock),
        job_store=InMemoryJobStore(),
        pipeline_store=InMemoryPipelineStore(),
        clock=clock,
        http=HttpxApiCaller(trust_env=False),
        notifier=RecordingNotifier(),
        job_outputs=lambda job: {"url": f"http://{job.pipeline_step_id}.rag.svc:8000"},
    )
    report = runner.run(spec, {"enable_reranker": reranker}, run_id="rag-1")
    return runner, report


def jobs_by_step(report: RunReport) -> dict[str, Job]:
    return {str(job.pipeline_step_id): job for job in report.jobs.values()}


def test_the_seeds_version_is_refused_for_its_race() -> None:
    with pytest.raises(ValidationErrors) as caught:
        pipeline_from_data(seeds_rag())
    [error] = caught.value.errors
    assert "'step-7' reads the outputs of step 'step-6' but does not depend on it" in error.message


def test_rag_with_reranker_runs_all_eight_steps(budsim: LocalHttpServer) -> None:
    runner, report = run_rag(budsim, reranker=True)
    run = report.run
    assert run.status is RunStatus.SUCCEEDED, run.message
    assert run.message == "8 of 8 steps completed"
    assert all(r.status is StepStatus.COMPLETED for r in run.steps.values())
    # step-1 asked budsim, once, with the rendered body and an idempotency key
    [request] = budsim.requests_to(OPTIMIZE)
    assert request.json == {"model_id": "meta-llama/Llama-3.3-70B-Instruct", "target_throughput": 100}
    assert request.idempotency_key == "rag-1/step-1/1"
    assert run.steps["step-1"].outputs["config"] == {"tensor_parallel": 2, "max_num_seqs": 256}
    assert run.steps["step-5"].outputs == {"result": True, "branch": "then"}
    assert run.steps["step-6"].outputs["url"] == "http://step-6.rag.svc:8000"
    assert run.steps["step-7"].outputs["reranker_url"] == "http://step-6.rag.svc:8000"
    assert run.steps["step-7"].outputs["url"] == "http://step-7.rag.svc:8000"
    # the notification names the orchestrator's URL
    notifier = runner.engine.notifier
    assert isinstance(notifier, RecordingNotifier)
    [sent] = notifier.sent.values()
    assert sent.message == "RAG system deployed! URL: http://step-7.rag.svc:8000"
    assert (sent.channel, sent.recipients) == ("slack", ("#deployments",))
    assert run.steps["step-8"].outputs["message"] == sent.message


def test_rag_without_reranker_skips_it_and_still_deploys_the_orchestrator(budsim: LocalHttpServer) -> None:
    _, report = run_rag(budsim, reranker=False)
    run = report.run
    assert run.status is RunStatus.SUCCEEDED
    assert run.steps["step-5"].outputs == {"result": False, "branch": "else"}
    assert run.steps["step-6"].status is StepStatus.SKIPPED
    assert run.steps["step-7"].status is StepStatus.COMPLETED
    assert run.steps["step-7"].outputs["reranker_url"] == ""  # RERANKER_URL renders ''
    assert run.steps["step-8"].status is StepStatus.COMPLETED
    assert run.message == "7 of 8 steps completed"
    assert "step-6" not in jobs_by_step(report)  # no job for a skipped step


def test_rag_jobs_carry_priority_accelerator_and_provenance(budsim: LocalHttpServer) -> None:
    _, report = run_rag(budsim)
    jobs = jobs_by_step(report)
    assert set(jobs) == {"step-2", "step-3", "step-4", "step-6", "step-7"}  # JOB steps only
    assert {s: j.priority for s, j in jobs.items()} == {
        "step-2": JobPriority.NORMAL,
        "step-3": JobPriority.NORMAL,
        "step-4": JobPriority.HIGH,
        "step-6": JobPriority.NORMAL,
        "step-7": JobPriority.NORMAL,
    }
    assert {s: j.request.accelerator_type for s, j in jobs.items()} == {
        "step-2": None,
        "step-3": "nvidia-t4",
        "step-4": "nvidia-a100-80gb",
        "step-6": "nvidia-t4",
        "step-7": None,
    }
    assert jobs["step-4"].request.total.get("nvidia.com/gpu") == 2000  # 2 GPUs, milli-units
    for step_id, job in jobs.items():
        assert job.job_type is JobType.SERVICE
        assert job.source is JobSource.PIPELINE
        assert job.labels["budcore.io/pipeline-run"] == "rag-1"
        assert job.labels["budcore.io/pipeline-step"] == step_id
        assert job.idempotency_key == f"rag-1/{step_id}/1"
        assert job.status is JobStatus.COMPLETED  # services are stopped when the run ends
        assert job.actual_start is not None


def test_rag_jobs_carry_their_rendered_deployment_spec(budsim: LocalHttpServer) -> None:
    _, report = run_rag(budsim)
    jobs = jobs_by_step(report)
    orchestrator = jobs["step-7"]
    assert orchestrator.spec["env"] == {
        "VECTOR_DB_URL": "http://step-2.rag.svc:8000",
        "EMBEDDING_URL": "http://step-3.rag.svc:8000",
        "LLM_URL": "http://step-4.rag.svc:8000",
        "RERANKER_URL": "http://step-6.rag.svc:8000",
    }
    assert orchestrator.spec["component_ref"] == "rag-orchestrator"
    assert orchestrator.deployment_type is not None and orchestrator.deployment_type.value == "docker"
    llm = jobs["step-4"].spec
    assert llm["model_id"] == "meta-llama/Llama-3.3-70B-Instruct"
    assert llm["budsim_config"] == {"tensor_parallel": 2, "max_num_seqs": 256}  # step-1's answer, as a value
    assert jobs["step-3"].spec["model_id"] == "BAAI/bge-large-en-v1.5"


def test_rag_without_reranker_renders_an_empty_reranker_url(budsim: LocalHttpServer) -> None:
    _, report = run_rag(budsim, reranker=False)
    assert jobs_by_step(report)["step-7"].spec["env"]["RERANKER_URL"] == ""


def test_rag_timeline_follows_the_seeds_estimates(budsim: LocalHttpServer) -> None:
    """With §5.4.1's durations (a SERVICE is ready after its estimate) the orchestrator starts once
    the LLM (the longest) is ready, and the run ends when the orchestrator is."""
    _, report = run_rag(budsim, durations=True)
    run = report.run
    assert run.status is RunStatus.SUCCEEDED
    ended = {s: (r.ended_at - T0).total_seconds() for s, r in run.steps.items() if r.ended_at is not None}
    assert ended["step-2"] == 120 and ended["step-3"] == 180 and ended["step-4"] == 300
    assert run.steps["step-7"].started_at == T0 + timedelta(seconds=300)
    assert ended["step-7"] == 360
    assert report.makespan_s == 360
