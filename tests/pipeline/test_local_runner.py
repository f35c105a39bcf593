"""The LocalRunner: the engine, the real scheduler and a simulated cluster on a virtual clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from budcore_adapters.inmemory import InMemoryClusterBackend, InMemoryJobStore
from budcore_adapters.inmemory.pipelines import InMemoryPipelineStore
from pipeline.engine_kit import T0, Recorder, make_spec

from budcore.domain.job import JobStatus
from budcore.domain.resources import ResourceVector
from budcore.pipeline.local import LocalRunner, RunReport, VirtualClock, cluster_for
from budcore.pipeline.model import PipelineSpec
from budcore.pipeline.state import PipelineRun, RunStatus, StepStatus


def job(step_id: str, *deps: str, **config: Any) -> dict[str, Any]:
    extra = config.pop("step", {})
    return {"id": step_id, "type": "job", "depends_on": list(deps), "config": config, **extra}


def runner(
    spec: PipelineSpec,
    *,
    cluster_of: PipelineSpec | None = None,
    recorder: Recorder | None = None,
    **options: Any,
) -> LocalRunner:
    config, nodes = cluster_for(cluster_of or spec)
    clock = VirtualClock(T0)
    return LocalRunner(
        config=config,
        cluster=InMemoryClusterBackend(nodes, clock=clock),
        job_store=InMemoryJobStore(),
        pipeline_store=InMemoryPipelineStore(),
        clock=clock,
        functions=(recorder or Recorder()).registry(),
        **options,
    )


def seconds(report: RunReport, step_id: str) -> tuple[float | None, float | None]:
    record = report.run.steps[step_id]
    start = None if record.started_at is None else (record.started_at - T0).total_seconds()
    end = None if record.ended_at is None else (record.ended_at - T0).total_seconds()
    return start, end


def test_cluster_for_sizes_pools_to_fit_every_job_at_once() -> None:
    spec = make_spec(
        [
            job("a", gpu_type="nvidia-h100", gpu_count=6),
            job("b", gpu_type="nvidia-h100", gpu_count=4),
            job("c", gpu_type="nvidia-t4", gpu_count=1, cpu_cores=2),
            job("d", cpu_cores=100, memory_gb=8),
        ]
    )
    config, nodes = cluster_for(spec)
    pools: dict[str, list[str]] = {}
    for node in nodes:
        pools.setdefault(node.labels["budcore.io/pool"], []).append(node.name)
    assert {p: len(n) for p, n in pools.items()} == {"cpu": 2, "pool-0-nvidia-h100": 2, "pool-1-nvidia-t4": 1}
    accelerators = {n.labels.get("budcore.io/accelerator") for n in nodes}
    assert accelerators == {None, "nvidia-h100", "nvidia-t4"}
    # each flavor's quota is exactly its nodes' capacity
    [queue] = config.cluster_queues.values()
    [group] = queue.resource_groups
    for flavor in group.flavors:
        capacity = ResourceVector({})
        for node in nodes:
            if node.labels["budcore.io/pool"] == flavor.name:
                capacity = capacity + node.allocatable
        for quota in flavor.resources:
            assert quota.nominal_quota == capacity.get(quota.name, 0), (flavor.name, quota.name)


def test_batch_jobs_run_for_their_estimate_in_dependency_order() -> None:
    recorder = Recorder()
    spec = make_spec(
        [
            job("prep", estimated_duration_seconds=60),
            job("train", "prep", gpu_type="nvidia-h100", gpu_count=8, estimated_duration_seconds="1h"),
            job("eval", "prep", estimated_duration_seconds=300),
            {
                "id": "report",
                "type": "function",
                "depends_on": ["train", "eval"],
                "config": {"function": "rec"},
            },
        ]
    )
    r = runner(spec, recorder=recorder)
    report = r.run(spec, run_id="run-1")
    assert report.run.status is RunStatus.SUCCEEDED
    assert seconds(report, "prep") == (0, 60)
    assert seconds(report, "train") == (60, 3660)
    assert seconds(report, "eval") == (60, 360)
    assert seconds(report, "report") == (3660, 3660)
    assert report.makespan_s == 3660
    assert [c.at for c in recorder.calls] == [T0 + timedelta(seconds=3660)]
    assert all(j.status is JobStatus.COMPLETED for j in report.jobs.values())
    assert len(report.jobs) == 3


def test_jobs_compete_for_a_small_cluster_and_queue() -> None:
    """Two 8-GPU jobs on a cluster sized for one: the second waits for the first's GPUs."""
    spec = make_spec(
        [
            job("a", gpu_type="nvidia-h100", gpu_count=8, estimated_duration_seconds=600),
            job("b", gpu_type="nvidia-h100", gpu_count=8, estimated_duration_seconds=600),
        ]
    )
    small = make_spec([job("x", gpu_type="nvidia-h100", gpu_count=8)])
    report = runner(spec, cluster_of=small).run(spec, run_id="run-1")
    assert report.run.status is RunStatus.SUCCEEDED
    assert sorted([seconds(report, "a"), seconds(report, "b")]) == [(0, 600), (0, 1200)]
    starts = sorted((j.actual_start - T0).total_seconds() for j in report.jobs.values() if j.actual_start)
    assert starts == [0, 600]


def test_service_is_ready_after_its_estimate_and_stopped_when_the_run_ends() -> None:
    spec = make_spec(
        [
            job("db", job_type="SERVICE", estimated_duration_seconds=120),
            job("load", "db", estimated_duration_seconds=30),
        ]
    )
    report = runner(spec).run(spec, run_id="run-1")
    assert seconds(report, "db") == (0, 120)
    assert seconds(report, "load") == (120, 150)
    db = next(j for j in report.jobs.values() if j.pipeline_step_id == "db")
    assert db.status is JobStatus.COMPLETED and db.actual_end == T0 + timedelta(seconds=150)


def test_a_job_that_can_never_fit_is_cancelled_as_stuck_not_a_hang() -> None:
    spec = make_spec(
        [
            job("ok", estimated_duration_seconds=60),
            job("huge", "ok", gpu_type="nvidia-h100", gpu_count=64),
            {"id": "after", "type": "function", "depends_on": ["huge"], "config": {"function": "rec"}},
        ]
    )
    small = make_spec([job("x", gpu_type="nvidia-h100", gpu_count=1)])
    report = runner(spec, cluster_of=small, horizon=timedelta(days=1)).run(spec, run_id="run-1")
    run = report.run
    assert run.status is RunStatus.CANCELLED
    assert run.message is not None and run.message.startswith("stuck: step 'huge' cannot start:")
    assert "nvidia.com/gpu" in run.message
    assert run.steps["ok"].status is StepStatus.COMPLETED
    assert run.steps["huge"].status is StepStatus.CANCELLED
    assert run.steps["after"].status is StepStatus.CANCELLED
    huge = next(j for j in report.jobs.values() if j.pipeline_step_id == "huge")
    assert huge.status is JobStatus.CANCELLED
    assert report.ended <= T0 + timedelta(days=1)  # never past the horizon


def test_fail_fast_with_a_failing_job_cancels_the_others_jobs() -> None:
    spec = make_spec(
        [
            job("train", gpu_type="nvidia-h100", gpu_count=2, estimated_duration_seconds=600),
            job("index", estimated_duration_seconds=1200),
            job("serve", job_type="SERVICE", estimated_duration_seconds=60),
            job("queued_later", "serve", estimated_duration_seconds=6000),
            job("after", "train"),
        ]
    )
    r = runner(spec)

    def fail_train(run: PipelineRun) -> None:
        if r.clock.now() < T0 + timedelta(seconds=60):
            return
        for j in r.store.list(None):
            if j.pipeline_step_id == "train" and j.status is JobStatus.RUNNING:
                r.service.move(j, JobStatus.FAILED, reason="OOMKilled", now=r.clock.now())

    report = r.run(spec, run_id="run-1", on_advance=fail_train)
    run = report.run
    assert run.status is RunStatus.FAILED
    assert run.steps["train"].status is StepStatus.FAILED
    assert "OOMKilled" in (run.steps["train"].error or "")
    assert run.ended_at == T0 + timedelta(seconds=60)  # it did not wait for the others
    jobs = {j.pipeline_step_id: j for j in report.jobs.values()}
    assert jobs["train"].status is JobStatus.FAILED
    assert jobs["index"].status is JobStatus.CANCELLED
    assert jobs["queued_later"].status is JobStatus.CANCELLED
    assert jobs["index"].status_message == "cancelled: step 'train' failed"
    assert run.steps["index"].status is StepStatus.CANCELLED
    assert run.steps["after"].status is StepStatus.CANCELLED
    assert "after" not in jobs


def test_a_job_step_timeout_cancels_its_job_and_fails_the_run() -> None:
    spec = make_spec(
        [
            job("slow", estimated_duration_seconds=3600, step={"timeout": 600}),
            job("other", estimated_duration_seconds=7200),
        ]
    )
    report = runner(spec).run(spec, run_id="run-1")
    run = report.run
    assert run.status is RunStatus.FAILED
    assert run.steps["slow"].error == "timed out after 600 s"
    assert run.ended_at == T0 + timedelta(seconds=600)
    assert {j.pipeline_step_id: j.status for j in report.jobs.values()} == {
        "slow": JobStatus.CANCELLED,
        "other": JobStatus.CANCELLED,
    }


def test_parallel_jobs_never_exceed_max_concurrency_on_the_cluster() -> None:
    branches = [f"b{i}" for i in range(5)]
    spec = make_spec(
        [
            {"id": "fan", "type": "parallel", "config": {"steps": branches, "max_concurrency": 2}},
            *(job(b, estimated_duration_seconds=100) for b in branches),
        ]
    )
    report = runner(spec).run(spec, run_id="run-1")
    assert report.run.status is RunStatus.SUCCEEDED
    spans = [(j.actual_start, j.actual_end) for j in report.jobs.values()]
    assert all(s is not None and e is not None for s, e in spans)
    for start, _ in spans:
        assert sum(1 for s, e in spans if s is not None and e is not None and s <= start < e) <= 2
    assert report.makespan_s == 300  # five 100 s jobs, two at a time


def test_loop_of_jobs_and_functions_with_waits() -> None:
    recorder = Recorder()
    spec = make_spec(
        [
            {
                "id": "shards",
                "type": "loop",
                "config": {
                    "items": ["a", "b", "c"],
                    "step": {"type": "job", "config": {"estimated_duration_seconds": 50}},
                },
            },
            {"id": "cool", "type": "wait", "depends_on": ["shards"], "config": {"duration_seconds": 30}},
            {
                "id": "done",
                "type": "function",
                "depends_on": ["cool"],
                "config": {"function": "rec", "args": {"n": "{{ steps['shards'].outputs.count }}"}},
            },
        ]
    )
    report = runner(spec, recorder=recorder).run(spec, run_id="run-1")
    assert report.run.status is RunStatus.SUCCEEDED
    assert len(report.jobs) == 3
    assert seconds(report, "shards") == (0, 50)
    assert seconds(report, "done") == (80, 80)
    assert recorder.calls[0].args == {"n": 3}


def test_on_advance_sees_progress() -> None:
    spec = make_spec([job("a", estimated_duration_seconds=10), job("b", "a", estimated_duration_seconds=10)])
    seen: list[dict[str, str]] = []
    runner(spec).run(
        spec,
        run_id="run-1",
        on_advance=lambda run: seen.append({s: r.status.value for s, r in run.steps.items()}),
    )
    assert seen[-1] == {"a": "completed", "b": "completed"}
    assert any(s["a"] == "completed" and s["b"] != "completed" for s in seen)
