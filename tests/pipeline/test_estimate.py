"""Schedule estimates (the seeds' §5.4.1 "Estimated vs Actual Scheduling"), critical path, deadline."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from pipeline.engine_kit import T0, FakeJobs, Harness, make_spec

from budcore.domain.job import JobStatus
from budcore.pipeline.dag import PipelineGraph, build_graph
from budcore.pipeline.estimate import EstimateOptions, PipelineEstimate, estimate_run, step_duration
from budcore.pipeline.model import PipelineSpec
from budcore.pipeline.state import PipelineRun, StepRun, StepStatus

NO_BUFFER = EstimateOptions(buffer_s=0)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def seeds_example(deadline: str | None = None) -> PipelineSpec:
    """§5.4.1: qdrant 2 min; embedding 3 min and llm 5 min, after a 30 s API call; the orchestrator
    after all three (1 min here)."""
    fields: dict[str, Any] = {} if deadline is None else {"deadline": deadline}
    return make_spec(
        [
            {
                "id": "qdrant",
                "type": "job",
                "config": {"job_type": "SERVICE", "estimated_duration_seconds": "2m"},
            },
            {
                "id": "optimize",
                "type": "api_call",
                "config": {"url": "http://budsim/optimize"},
                "estimated_duration": 30,
            },
            {
                "id": "embedding",
                "type": "job",
                "depends_on": ["optimize"],
                "config": {"job_type": "SERVICE", "estimated_duration_seconds": "3m"},
            },
            {
                "id": "llm",
                "type": "job",
                "depends_on": ["optimize"],
                "config": {"job_type": "SERVICE", "estimated_duration_seconds": "5m"},
            },
            {
                "id": "orchestrator",
                "type": "job",
                "depends_on": ["qdrant", "embedding", "llm"],
                "config": {"job_type": "SERVICE", "estimated_duration_seconds": "1m"},
            },
        ],
        **fields,
    )


def record(step_id: str, status: StepStatus, started: float | None, ended: float | None = None) -> StepRun:
    return StepRun(
        step_id,
        status=status,
        attempt=1 if started is not None else 0,
        started_at=None if started is None else at(started),
        ended_at=None if ended is None else at(ended),
    )


def run_of(graph: PipelineGraph, *records: StepRun) -> PipelineRun:
    run = PipelineRun(
        run_id="r",
        pipeline_id=graph.spec.id,
        pipeline_version=1,
        tenant="default",
        params={},
        created_at=T0,
        started_at=T0,
        deadline=graph.spec.deadline_for(T0),
    )
    for step_id in graph.order:
        run.steps[step_id] = StepRun(step_id)
    for r in records:
        run.steps[r.step_id] = r
    return run


def times(estimate: PipelineEstimate) -> dict[str, tuple[float, float]]:
    return {
        s: ((e.start - T0).total_seconds(), (e.end - T0).total_seconds()) for s, e in estimate.steps.items()
    }


def test_estimates_at_start_follow_the_seeds() -> None:
    graph = build_graph(seeds_example())
    estimate = estimate_run(graph, now=T0, options=NO_BUFFER)
    assert times(estimate) == {
        "qdrant": (0, 120),  # estimated_start = now, 2 min
        "optimize": (0, 30),
        "embedding": (30, 210),  # now + 30 s, 3 min
        "llm": (30, 330),  # now + 30 s, 5 min
        "orchestrator": (330, 390),  # max(qdrant, embedding, llm) = T+5:30
    }
    assert all(e.source == "estimate" for e in estimate.steps.values())
    assert estimate.critical_path == ("optimize", "llm", "orchestrator")
    assert {s for s, e in estimate.steps.items() if e.critical} == {"optimize", "llm", "orchestrator"}
    assert estimate.steps["qdrant"].slack_s == 210  # may end as late as T+5:30
    assert estimate.steps["embedding"].slack_s == 120
    assert estimate.steps["llm"].slack_s == 0
    assert estimate.makespan_s == 390


def test_buffer_is_added_between_a_dependency_and_the_next_start() -> None:
    graph = build_graph(seeds_example())
    estimate = estimate_run(graph, now=T0, options=EstimateOptions(buffer_s=5))
    assert times(estimate)["embedding"] == (35, 215)
    assert times(estimate)["orchestrator"] == (340, 400)  # "max(job1,2,3) + buffer"
    assert times(estimate)["qdrant"] == (0, 120)  # a root starts at the run's start, no buffer


def test_qdrant_15s_early_moves_its_own_end_not_the_orchestrator() -> None:
    """§5.4.1: qdrant completes at T+1:45 (15 s early) while embedding and llm run: the orchestrator
    still waits for llm (the critical path), so its estimate does not move."""
    graph = build_graph(seeds_example())
    before = estimate_run(
        graph,
        now=at(105),
        options=NO_BUFFER,
        run=run_of(
            graph,
            record("optimize", StepStatus.COMPLETED, 0, 30),
            record("qdrant", StepStatus.RUNNING, 0),
            record("embedding", StepStatus.RUNNING, 30),
            record("llm", StepStatus.RUNNING, 30),
        ),
    )
    after = estimate_run(
        graph,
        now=at(105),
        options=NO_BUFFER,
        run=run_of(
            graph,
            record("optimize", StepStatus.COMPLETED, 0, 30),
            record("qdrant", StepStatus.COMPLETED, 0, 105),
            record("embedding", StepStatus.RUNNING, 30),
            record("llm", StepStatus.RUNNING, 30),
        ),
    )
    assert times(before)["qdrant"] == (0, 120)
    assert times(after)["qdrant"] == (0, 105)  # its own end moved
    assert after.steps["qdrant"].source == "actual"
    assert after.steps["llm"].source == "running"
    assert times(after)["llm"] == (30, 330)
    assert times(after)["orchestrator"] == times(before)["orchestrator"] == (330, 390)
    assert after.critical_path == ("optimize", "llm", "orchestrator")
    assert after.steps["qdrant"].slack_s == 225


def test_critical_step_early_moves_the_dependent_earlier_by_the_same_amount() -> None:
    graph = build_graph(seeds_example())
    common = [
        record("optimize", StepStatus.COMPLETED, 0, 30),
        record("qdrant", StepStatus.COMPLETED, 0, 105),
        record("embedding", StepStatus.COMPLETED, 30, 210),
    ]
    running = estimate_run(
        graph,
        now=at(300),
        options=NO_BUFFER,
        run=run_of(graph, *common, record("llm", StepStatus.RUNNING, 30)),
    )
    early = estimate_run(
        graph,
        now=at(300),
        options=NO_BUFFER,
        run=run_of(graph, *common, record("llm", StepStatus.COMPLETED, 30, 300)),
    )
    moved = running.steps["orchestrator"].start - early.steps["orchestrator"].start
    assert moved == timedelta(seconds=30)  # llm ended 30 s early, the orchestrator starts 30 s earlier
    assert times(early)["orchestrator"] == (300, 360)
    assert early.end == at(360)


def test_an_overrunning_step_is_expected_to_end_now() -> None:
    graph = build_graph(seeds_example())
    done = [
        record("optimize", StepStatus.COMPLETED, 0, 30),
        record("qdrant", StepStatus.COMPLETED, 0, 120),
        record("embedding", StepStatus.COMPLETED, 30, 210),
    ]
    late = estimate_run(
        graph, now=at(400), options=NO_BUFFER, run=run_of(graph, *done, record("llm", StepStatus.RUNNING, 30))
    )
    assert times(late)["llm"] == (30, 400)  # 70 s over its 5 min: expected to end now
    assert times(late)["orchestrator"] == (400, 460)


def test_steps_yet_to_start_never_start_in_the_past() -> None:
    graph = build_graph(seeds_example())
    estimate = estimate_run(
        graph,
        now=at(400),
        options=NO_BUFFER,
        run=run_of(graph, record("optimize", StepStatus.COMPLETED, 0, 30)),
    )
    assert times(estimate)["qdrant"] == (400, 520)
    assert times(estimate)["embedding"] == (400, 580)
    assert times(estimate)["orchestrator"] == (700, 760)  # after llm: 400 + 5 min


def test_skipped_and_cancelled_steps_take_no_time() -> None:
    spec = make_spec(
        [
            {"id": "a", "type": "function", "config": {"function": "f"}, "estimated_duration": 60},
            {
                "id": "b",
                "type": "function",
                "depends_on": ["a"],
                "config": {"function": "f"},
                "estimated_duration": 60,
            },
            {
                "id": "c",
                "type": "function",
                "depends_on": ["b"],
                "config": {"function": "f"},
                "estimated_duration": 60,
            },
        ]
    )
    graph = build_graph(spec)
    run = run_of(graph, record("a", StepStatus.COMPLETED, 0, 60), record("b", StepStatus.SKIPPED, None, 60))
    estimate = estimate_run(graph, now=at(60), options=NO_BUFFER, run=run)
    assert times(estimate)["b"] == (60, 60)
    assert times(estimate)["c"] == (60, 120)


def test_deadline_verdicts() -> None:
    on_time = estimate_run(build_graph(seeds_example(deadline="10m")), now=T0, options=NO_BUFFER)
    assert on_time.deadline == at(600)
    assert on_time.meets_deadline is True
    assert on_time.verdict() == "on time: estimated end 210 s before the deadline"
    late = estimate_run(build_graph(seeds_example(deadline="5m")), now=T0, options=NO_BUFFER)
    assert late.meets_deadline is False
    assert late.verdict() == "late: estimated end 90 s after the deadline"
    none = estimate_run(build_graph(seeds_example()), now=T0, options=NO_BUFFER)
    assert none.meets_deadline is None and none.verdict() == "no deadline"


def test_the_run_deadline_is_used_for_a_run() -> None:
    graph = build_graph(seeds_example(deadline="6m"))
    run = run_of(graph)
    run.deadline = at(420)  # the run's own, fixed when it started
    estimate = estimate_run(graph, now=T0, options=NO_BUFFER, run=run)
    assert estimate.deadline == at(420)
    assert estimate.verdict() == "on time: estimated end 30 s before the deadline"


def test_scheduler_eta_delays_a_job_step() -> None:
    graph = build_graph(seeds_example())
    run = run_of(graph)
    estimate = estimate_run(
        graph, now=T0, options=NO_BUFFER, run=run, eta=lambda step, _: at(600) if step == "qdrant" else None
    )
    assert estimate.steps["qdrant"].source == "eta"
    assert times(estimate)["qdrant"] == (600, 720)
    assert times(estimate)["orchestrator"] == (720, 780)
    assert estimate.critical_path == ("qdrant", "orchestrator")


@pytest.mark.parametrize(
    ("step", "seconds"),
    [
        ({"type": "wait", "config": {"duration_seconds": 42}}, 42),
        ({"type": "wait", "config": {"wait_for_event": "x", "timeout_seconds": 99}}, 99),
        ({"type": "job", "config": {}}, 600),  # the default of a job without an estimate
        ({"type": "api_call", "config": {"url": "http://x"}}, 1),
        ({"type": "function", "config": {"function": "f"}, "estimated_duration": "2m"}, 120),
        (
            {
                "type": "loop",
                "config": {
                    "items": [1, 2, 3, 4, 5],
                    "max_concurrency": 2,
                    "step": {"type": "job", "config": {"estimated_duration_seconds": 10}},
                },
            },
            30,  # three waves of 10 s
        ),
    ],
)
def test_step_durations(step: dict[str, Any], seconds: float) -> None:
    spec = make_spec([{"id": "s", **step}])
    assert step_duration(spec.steps[0]) == seconds


def test_estimates_of_a_run_driven_by_the_engine() -> None:
    jobs = FakeJobs(initial=JobStatus.RUNNING)
    h = Harness(jobs=jobs)
    spec = make_spec(
        [
            {"id": "a", "type": "job", "config": {"estimated_duration_seconds": 100}},
            {"id": "b", "type": "job", "depends_on": ["a"], "config": {"estimated_duration_seconds": 50}},
        ]
    )
    run = h.start(spec)
    graph = build_graph(spec)
    h.clock.set(at(80))
    jobs.move("a", JobStatus.COMPLETED)
    run = h.engine.advance("run-1")
    estimate = estimate_run(graph, now=at(80), run=run, options=NO_BUFFER)
    assert times(estimate) == {"a": (0, 80), "b": (80, 130)}
    assert estimate.steps["a"].source == "actual" and estimate.steps["b"].source == "running"


def test_a_thousand_step_graph_estimates_consistently() -> None:
    rng = random.Random(7)
    steps: list[dict[str, Any]] = []
    for i in range(1000):
        deps = sorted({f"s{rng.randrange(i)}" for _ in range(rng.randint(0, 3))}) if i else []
        steps.append(
            {
                "id": f"s{i}",
                "type": "function",
                "config": {"function": "f"},
                "depends_on": deps,
                "estimated_duration": rng.randint(0, 120),
            }
        )
    graph = build_graph(make_spec(steps))
    options = EstimateOptions(buffer_s=2)
    estimate = estimate_run(graph, now=T0, options=options)
    assert len(estimate.steps) == 1000
    for step_id, e in estimate.steps.items():
        deps = graph.dependencies[step_id]
        ready = max((estimate.steps[d].end for d in deps), default=T0) + timedelta(seconds=2 if deps else 0)
        assert e.start == ready
        assert e.duration_s == step_duration(graph.steps[step_id], options)
        assert e.slack_s >= 0
    path = estimate.critical_path
    assert estimate.steps[path[-1]].end == estimate.end
    assert not graph.dependencies[path[0]]
    for before, after in pairwise(path):
        assert before in graph.dependencies[after]
    assert all(estimate.steps[s].slack_s == 0 for s in path)
