"""Schedule estimates: when each step should start and end, the critical path, the deadline verdict.

The seeds' schedule view (§5.4.1) shows pipeline jobs with *estimated* start and end times that
move as dependencies complete: qdrant finishes 15 s early and the orchestrator's estimate moves
earlier with it. :func:`estimate_run` computes exactly that, over the graph in topological order:

- a step that ended keeps its actual times; one that runs started when it did and ends at
  ``max(now, start + duration)`` (an overrunning step is expected to end *now*, nothing better
  being known);
- a step yet to start starts at ``max(now, max over its dependencies of their estimated end +
  buffer)`` (a root at the run's start, or now), and, for a ``job`` step, no earlier than the
  scheduler's ETA for its job when it has one (the ETA engine, :mod:`budcore.scheduling.forecast`);
- durations: a job step's ``estimated_duration_seconds`` (for a SERVICE job, the time until it is
  ready), a wait's duration (or its timeout when it waits for an event), a loop's iterations over
  its concurrency, else the step's ``estimated_duration``, else :attr:`EstimateOptions.defaults`.

The critical path is the chain of steps that determines the estimated end: from the step that
ends last, back through the dependency that ends last, to a root. A step's *slack* is how much it
could slip without moving the pipeline's end. The verdict compares the estimated end with the
run's deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from budcore.pipeline.dag import PipelineGraph
from budcore.pipeline.model import (
    JobStepConfig,
    LoopStepConfig,
    StepSpec,
    StepType,
    WaitStepConfig,
)
from budcore.pipeline.state import PipelineRun, StepRun, StepStatus

__all__ = ["EstimateOptions", "PipelineEstimate", "StepEstimate", "estimate_run", "step_duration"]

_DEFAULTS: dict[StepType, float] = {
    StepType.JOB: 600.0,
    StepType.API_CALL: 1.0,
    StepType.FUNCTION: 0.0,
    StepType.TRANSFORM: 0.0,
    StepType.NOTIFICATION: 1.0,
    StepType.CONDITION: 0.0,
    StepType.PARALLEL: 0.0,
    StepType.WAIT: 0.0,
    StepType.LOOP: 0.0,
}


@dataclass(frozen=True, slots=True)
class EstimateOptions:
    """``buffer_s`` is added between a dependency's end and the next step's start (scheduling and
    start-up latency); ``defaults`` are the durations of steps that declare none."""

    buffer_s: float = 5.0
    defaults: Mapping[StepType, float] = field(default_factory=lambda: dict(_DEFAULTS))


@dataclass(frozen=True, slots=True)
class StepEstimate:
    step_id: str
    status: str
    start: datetime
    end: datetime
    source: str  # "actual", "running", "eta" (the scheduler's) or "estimate"
    critical: bool = False
    slack_s: float = 0.0

    @property
    def duration_s(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True, slots=True)
class PipelineEstimate:
    at: datetime
    start: datetime
    end: datetime
    steps: Mapping[str, StepEstimate]
    critical_path: tuple[str, ...]
    deadline: datetime | None = None

    @property
    def makespan_s(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def meets_deadline(self) -> bool | None:
        """``None`` without a deadline; else whether the estimated end is no later than it."""
        return None if self.deadline is None else self.end <= self.deadline

    def verdict(self) -> str:
        if self.deadline is None:
            return "no deadline"
        margin = (self.deadline - self.end).total_seconds()
        if margin >= 0:
            return f"on time: estimated end {margin:,.0f} s before the deadline"
        return f"late: estimated end {-margin:,.0f} s after the deadline"


def step_duration(step: StepSpec, options: EstimateOptions = EstimateOptions()) -> float:
    """Seconds ``step`` is expected to take (see the module docstring)."""
    config = step.config
    if isinstance(config, JobStepConfig) and config.estimated_duration_seconds is not None:
        return config.estimated_duration_seconds
    if isinstance(config, WaitStepConfig):
        return config.duration_seconds if config.duration_seconds is not None else config.timeout_seconds
    if step.estimated_duration is not None:
        return step.estimated_duration
    if isinstance(config, LoopStepConfig):
        body = config.step
        per_item = options.defaults.get(body.type, 0.0)
        if isinstance(body.config, JobStepConfig) and body.config.estimated_duration_seconds is not None:
            per_item = body.config.estimated_duration_seconds
        if isinstance(body.config, WaitStepConfig) and body.config.duration_seconds is not None:
            per_item = body.config.duration_seconds
        count = len(config.items) if isinstance(config.items, list | tuple) else 1
        waves = -(-count // (config.max_concurrency or max(count, 1))) if count else 0
        return waves * per_item
    return options.defaults.get(step.type, 0.0)


def estimate_run(
    graph: PipelineGraph,
    *,
    now: datetime,
    run: PipelineRun | None = None,
    options: EstimateOptions = EstimateOptions(),
    eta: Callable[[str, StepRun], datetime | None] | None = None,
) -> PipelineEstimate:
    """Estimates for every step of ``graph``: of ``run`` as it stands, or of a run starting ``now``.

    ``eta(step_id, record)`` may return the scheduler's estimated start of a job step's job.
    """
    start = run.started_at if run is not None and run.started_at is not None else now
    buffer = timedelta(seconds=options.buffer_s)
    ends: dict[str, datetime] = {}
    starts: dict[str, datetime] = {}
    sources: dict[str, str] = {}
    statuses: dict[str, str] = {}
    for step_id in graph.order:
        step = graph.steps[step_id]
        record = run.steps.get(step_id) if run is not None else None
        status = record.status if record is not None else StepStatus.PENDING
        statuses[step_id] = status.value
        duration = timedelta(seconds=step_duration(step, options))
        deps = graph.dependencies[step_id]
        ready = max((ends[d] for d in deps), default=start) + (buffer if deps else timedelta(0))
        if record is not None and status.is_terminal:
            began = record.started_at or record.ended_at or ready
            finished = record.ended_at or began
            if status is StepStatus.SKIPPED or (status is StepStatus.CANCELLED and record.started_at is None):
                began = finished = min(max(ready, start), record.ended_at or ready)
            starts[step_id], ends[step_id], sources[step_id] = began, finished, "actual"
            continue
        if record is not None and record.started_at is not None and status is StepStatus.RUNNING:
            starts[step_id] = record.started_at
            ends[step_id] = max(now, record.started_at + duration)
            sources[step_id] = "running"
            continue
        begin = max(ready, now)
        source = "estimate"
        if eta is not None and record is not None and step.type is StepType.JOB:
            expected = eta(step_id, record)
            if expected is not None and expected > begin:
                begin, source = expected, "eta"
        starts[step_id], ends[step_id], sources[step_id] = begin, begin + duration, source

    end = max(ends.values(), default=start)
    critical = _critical_path(graph, ends)
    latest = _latest_ends(graph, starts, ends, end, buffer)
    on_path = set(critical)
    steps = {
        s: StepEstimate(
            step_id=s,
            status=statuses[s],
            start=starts[s],
            end=ends[s],
            source=sources[s],
            critical=s in on_path,
            slack_s=max(0.0, (latest[s] - ends[s]).total_seconds()),
        )
        for s in graph.order
    }
    deadline = run.deadline if run is not None else graph.spec.deadline_for(start)
    return PipelineEstimate(
        at=now, start=start, end=end, steps=steps, critical_path=critical, deadline=deadline
    )


def _critical_path(graph: PipelineGraph, ends: Mapping[str, datetime]) -> tuple[str, ...]:
    if not ends:
        return ()
    position = {s: i for i, s in enumerate(graph.order)}
    last = max(graph.order, key=lambda s: (ends[s], position[s]))
    path = [last]
    while graph.dependencies[path[-1]]:
        deps = graph.dependencies[path[-1]]
        path.append(max(deps, key=lambda s: (ends[s], position[s])))
    return tuple(reversed(path))


def _latest_ends(
    graph: PipelineGraph,
    starts: Mapping[str, datetime],
    ends: Mapping[str, datetime],
    end: datetime,
    buffer: timedelta,
) -> dict[str, datetime]:
    """The latest each step may end without moving the pipeline's end (its slack's reference):
    before every dependent's latest start, less the buffer."""
    latest: dict[str, datetime] = {}
    for step_id in reversed(graph.order):
        bound = end
        for d in graph.dependents[step_id]:
            bound = min(bound, latest[d] - (ends[d] - starts[d]) - buffer)
        latest[step_id] = bound
    return latest
