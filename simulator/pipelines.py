"""Pipelines in a simulation: runs of pipeline DAGs as a workload, on the simulated fleet.

A scenario's ``workload.pipelines`` (see :class:`~budcore_simulator.scenario.PipelineEntrySpec`)
starts runs of pipelines (:mod:`budcore.pipeline`) at given instants. The real
:class:`~budcore.pipeline.PipelineEngine` drives each run, on the simulation's virtual clock and
an in-memory pipeline store; only its ports are simulated, by :class:`PipelineDriver`:

- ``job`` steps go through :class:`SimulatedStepJobs`: a step's Job enters the simulation exactly
  as a workload's job does (its LocalQueue, the scheduler, admission, pod placement, preemption,
  failures), and counts in every job figure of the report. Its true runtime is the Job's
  ``estimated_duration`` (else the entry's ``default_runtime``) times the entry's
  ``runtime_scale``. A SERVICE job is *ready* (running, for its step) ``estimated_duration`` ×
  ``runtime_scale`` after its pods start, as :class:`~budcore.pipeline.local.LocalRunner` and
  :func:`~budcore.pipeline.estimate_run` take it, and keeps running (and holding its resources)
  until its run ends; it is then completed. Jobs the engine cancels (a failure policy, a step's
  timeout) leave the scheduler and the nodes at once and end ``cancelled``.
- A simulation makes no HTTP calls and runs no user code: ``api_call`` steps are answered
  ``200`` with the entry's canned ``outputs`` of the step (:class:`SimulatedApiCaller`),
  ``function`` and ``transform`` steps get the same from any function name
  (:class:`CannedFunctions`), and notifications are counted (:class:`CountingNotifier`). These
  steps, conditions and ``parallel`` groups take no simulated time; ``wait`` steps take theirs.

The engine of the simulation calls the driver on the events of its jobs (a start, an end, an
eviction) and the driver advances the job's run at that instant through a ``PIPELINE_WAKE``
event (never from inside the engine's own bookkeeping), after the instant's completions and
before its admission cycle, so a job that completes at ``t`` has its successors submitted and
admitted at ``t`` when there is room. The instants time alone changes a run
(:meth:`~budcore.pipeline.PipelineEngine.next_wakeup`: a wait, a retry's backoff, a timeout) are
``PIPELINE_WAKE`` events too.

When a run ends, its *critical path* (:func:`~budcore.pipeline.estimate_run` on the finished
run: from the step that ended last back through the dependency that ended last) and the time its
job steps waited on it (between submission and the step's end without running pods: quota, then
nodes, then again after an eviction) are kept in a :class:`RunOutcome`; ``report.json``'s
``pipelines`` block is built from those. Jobs run on the node failure model like any other, but
their retries are their step's: a job a node failure kills fails, and the step's retry policy
submits a new one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from budcore_adapters.inmemory.pipelines import InMemoryPipelineStore

from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import Job, JobStatus, JobType
from budcore.pipeline import (
    EstimateOptions,
    FunctionRegistry,
    PipelineEngine,
    PipelineGraph,
    PipelineRun,
    PipelineSpec,
    StepRun,
    StepStatus,
    estimate_run,
)
from budcore.pipeline.jobs import RUN_LABEL, STEP_LABEL
from budcore.pipeline.model import JobStepConfig, LoopStepConfig
from budcore.ports.clock import Clock
from budcore.ports.pipeline_effects import (
    HttpRequest,
    HttpResponse,
    Notification,
    PipelineFunction,
    StepContext,
)

from .events import RunArrival
from .status import SimJobStatus
from .workload.model import JobArrival

if TYPE_CHECKING:
    from .engine import Simulation

__all__ = [
    "OPEN_ENDED_S",
    "CannedFunctions",
    "CountingNotifier",
    "PipelineDriver",
    "PipelineWorkload",
    "RunOutcome",
    "SimulatedApiCaller",
    "SimulatedStepJobs",
    "run_arrivals",
]

# The runtime a pipeline's SERVICE job is submitted with: it never ends by itself (its run ends
# it), and a finite stand-in keeps every figure of the report finite. A service still running at
# the end of the simulation shows it as its runtime_s; one its run ended shows the time it ran.
OPEN_ENDED_S = 10 * 365 * 86400.0
# A run advanced again and again at one instant without time moving on is a bug in a port, not
# progress: after this many, the driver stops waking it at that instant.
_MAX_SPINS = 1000
_ITERATION = re.compile(r"\[\d+\]$")


@dataclass(frozen=True, slots=True)
class PipelineWorkload:
    """One entry of a scenario's ``workload.pipelines``, loaded and checked.

    ``starts_s`` are the instants its runs start (seconds from the scenario's start, sorted);
    ``outputs`` the canned outputs of its steps by step id (``<step>~undo`` for a compensation);
    ``default_runtime_s`` the runtime of a job step that declares no estimate (before
    ``runtime_scale``).
    """

    spec: PipelineSpec
    graph: PipelineGraph
    params: Mapping[str, Any]
    starts_s: tuple[float, ...]
    outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    runtime_scale: float = 1.0
    default_runtime_s: float = 600.0


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How one pipeline run went (a run still going at the end of the simulation: ``end_s`` None).

    ``critical_path`` is the chain of steps that decided the run's end (empty while it runs);
    ``critical_path_wait_s`` the time the jobs of its job steps spent between their submission and
    their step's end without running pods (queued for quota, admitted with pods pending for nodes,
    requeued after an eviction), summed over the path (every attempt of a retried step; for a loop,
    the chain of iterations that decided its end). ``message`` is the run's own (why it failed),
    or, for a run still going, what it waits for.
    """

    run_id: str
    pipeline_id: str
    status: str
    start_s: float
    end_s: float | None
    critical_path: tuple[str, ...]
    critical_path_wait_s: float | None
    jobs: int
    message: str

    @property
    def makespan_s(self) -> float | None:
        return None if self.end_s is None else self.end_s - self.start_s


def run_arrivals(workloads: Sequence[PipelineWorkload], horizon_s: float | None) -> Iterator[RunArrival]:
    """Every run of ``workloads`` in start order (ties: the scenario's order), with its run id.

    Run ids are ``<pipeline id>-<n>``, ``n`` counting the runs of that pipeline from 1 in start
    order, so they are the same in every run of the scenario. Runs after ``horizon_s`` never start.
    """
    starts = sorted(
        (at, index, position)
        for index, workload in enumerate(workloads)
        for position, at in enumerate(workload.starts_s)
        if horizon_s is None or at <= horizon_s
    )
    numbers: dict[str, int] = {}
    for at, index, _ in starts:
        pipeline_id = workloads[index].spec.id
        numbers[pipeline_id] = numbers.get(pipeline_id, 0) + 1
        yield RunArrival(at, f"{pipeline_id}-{numbers[pipeline_id]}", index)


@dataclass(slots=True)
class _LiveRun:
    """The driver's bookkeeping of a run that has not ended."""

    workload: int
    start_s: float
    jobs: list[str] = field(default_factory=list)  # its jobs' ids, in submission order
    step_jobs: dict[str, list[str]] = field(default_factory=dict)  # by step record (loop[2])
    ready_at: dict[str, float] = field(default_factory=dict)  # a service's readiness, per job
    runs: dict[str, list[list[float]]] = field(default_factory=dict)  # per job: its pods [start, stop]
    spins: int = 0  # advances asked for at ``spin_at`` by the run itself (see _MAX_SPINS)
    spin_at: float = -1.0


class CountingNotifier:
    """The notifier of a simulated run: it counts what ``notification`` steps send."""

    def __init__(self) -> None:
        self.sent = 0

    def notify(self, notification: Notification) -> None:
        self.sent += 1


class SimulatedApiCaller:
    """Answers every ``api_call`` step ``200`` with its canned outputs (``{}`` without any)."""

    def __init__(self, driver: PipelineDriver) -> None:
        self._driver = driver
        self.calls = 0

    def call(self, request: HttpRequest) -> HttpResponse:
        self.calls += 1
        # The request carries no step, but its idempotency key is ``run/step/attempt``.
        run_id, _, rest = request.key.partition("/")
        step_id = rest.rpartition("/")[0]
        return HttpResponse(status=200, body=dict(self._driver.canned(run_id, step_id)))


class CannedFunctions(FunctionRegistry):
    """Every function name is known, and returns the canned outputs of the step that calls it."""

    def __init__(self, driver: PipelineDriver) -> None:
        super().__init__()
        self._driver = driver

    def __contains__(self, name: object) -> bool:
        return True

    def get(self, name: str) -> PipelineFunction:
        driver = self._driver

        def canned(ctx: StepContext, **_: Any) -> dict[str, Any]:
            return dict(driver.canned(ctx.run_id, ctx.step_id))

        return canned


class SimulatedStepJobs:
    """The :class:`~budcore.ports.pipeline_effects.StepJobs` of a simulation: the scheduler's side
    is the simulation itself (see the module docstring)."""

    def __init__(self, driver: PipelineDriver) -> None:
        self._driver = driver
        self._jobs: dict[str, Job] = {}  # each job as submitted, by id (while its run lives)

    def submit(self, job: Job) -> Job:
        """Enter ``job`` into the simulation now; its id is the attempt's idempotency key, so a
        replayed attempt finds the job it already submitted."""
        driver = self._driver
        job_id = job.idempotency_key or job.id
        if job_id in self._jobs:
            return self.get(job.tenant, JobId(job_id))
        at = driver.clock.now()
        job = job.model_copy(update={"id": JobId(job_id), "created_at": at, "updated_at": at})
        self._jobs[job_id] = job
        driver.enter(job)
        return self.get(job.tenant, job.id)

    def get(self, tenant: TenantId, job_id: JobId) -> Job:
        """The job as the simulation has it now (a SERVICE is ``admitted`` until it is ready)."""
        job = self._jobs[job_id]
        record = self._driver.sim.records[job_id]
        status = record.status
        # A job waiting out a retry's backoff, or paused by a budget until it has room again, will
        # be queued again: its step keeps waiting.
        waiting = status in (SimJobStatus.RETRYING, SimJobStatus.PAUSED)
        domain = JobStatus.QUEUED if waiting else status.domain
        run_id = job.labels.get(RUN_LABEL, "")
        if domain is JobStatus.RUNNING and job.job_type is JobType.SERVICE:
            ready = self._driver.ready_at(run_id, job_id)
            if ready is None or self._driver.sim.now_s < ready:
                domain = JobStatus.ADMITTED  # pods up, not serving yet
        outputs: dict[str, str] = {}
        if domain in (JobStatus.RUNNING, JobStatus.COMPLETED):
            step = job.labels.get(STEP_LABEL, "")
            outputs = {k: str(v) for k, v in self._driver.canned(run_id, step).items()}
        return job.model_copy(
            update={"status": domain, "status_message": record.reason or None, "outputs": outputs}
        )

    def cancel(self, tenant: TenantId, job_id: JobId, reason: str) -> None:
        self._driver.sim.cancel_pipeline_job(job_id, reason)

    def eta(self, job: Job) -> datetime | None:
        return None  # advancing a run never asks; a simulation's estimates are its outcomes

    def submitted(self, job_id: str) -> Job | None:
        """The job as it was submitted (None once its run ended)."""
        return self._jobs.get(job_id)

    def forget(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            self._jobs.pop(job_id, None)


class PipelineDriver:
    """Starts and advances the pipeline runs of one simulation (see the module docstring).

    ``sim`` is the simulation whose virtual ``clock`` the engine reads; ``start`` is that clock's
    origin, ``gpu_resource`` the resource its GPU figures count.
    """

    def __init__(
        self,
        sim: Simulation,
        workloads: Sequence[PipelineWorkload],
        *,
        clock: Clock,
        start: datetime,
        horizon_s: float | None,
        gpu_resource: str,
    ) -> None:
        self.sim = sim
        self.clock = clock
        self.workloads = tuple(workloads)
        self._start = start
        self._gpu_resource = gpu_resource
        self.jobs = SimulatedStepJobs(self)
        self.http = SimulatedApiCaller(self)
        self.notifier = CountingNotifier()
        self.engine = PipelineEngine(
            InMemoryPipelineStore(),
            clock=clock,
            jobs=self.jobs,
            http=self.http,
            functions=CannedFunctions(self),
            notifier=self.notifier,
        )
        self._arrivals = run_arrivals(self.workloads, horizon_s)
        self._runs: dict[str, _LiveRun] = {}
        self._job_run: dict[str, str] = {}  # job id -> run id, for the jobs of live runs
        self._services: set[str] = set()  # live runs' SERVICE jobs: they never end by themselves
        self._wakes: set[tuple[str, float]] = set()  # PIPELINE_WAKE events in the heap
        self.outcomes: list[RunOutcome] = []  # ended runs, in the order they ended

    # What the simulation asks ----------------------------------------------------------------
    def begin(self) -> None:
        """The run starts: schedule the first pipeline run."""
        self._next_arrival()

    def owns(self, job_id: str) -> bool:
        """Whether ``job_id`` is a job of a run still going."""
        return job_id in self._job_run

    def is_open_ended(self, job_id: str) -> bool:
        """Whether ``job_id`` is a SERVICE of a live run: it runs until its run ends."""
        return job_id in self._services

    def job_changed(self, job_id: str, now: float, *, started: bool = False) -> None:
        """A job of a live run started, ended or was evicted: its run is advanced at ``now``."""
        run_id = self._job_run.get(job_id)
        if run_id is None:
            return
        live = self._runs[run_id]
        if started:
            live.runs.setdefault(job_id, []).append([now, math.inf])
            if job_id in self._services:
                ready = now + self._ready_delay(live, job_id)
                live.ready_at[job_id] = ready
                if ready > now:
                    self._wake(run_id, ready)
        self._wake(run_id, now)

    def job_stopped(self, job_id: str, now: float) -> None:
        """A job of a live run stopped running (it ended, or was evicted, or its node failed)."""
        run_id = self._job_run.get(job_id)
        if run_id is None:
            return
        runs = self._runs[run_id].runs.get(job_id)
        if runs and runs[-1][1] == math.inf:
            runs[-1][1] = now

    def on_arrival(self, arrival: RunArrival) -> None:
        """A run starts (``PIPELINE``)."""
        self._next_arrival()
        workload = self.workloads[arrival.workload]
        self._runs[arrival.run_id] = _LiveRun(arrival.workload, arrival.at_s)
        run = self.engine.start(
            workload.spec, workload.params, run_id=arrival.run_id, now=self._at(arrival.at_s)
        )
        self._advanced(run)

    def on_wake(self, run_id: str) -> None:
        """A run is due for an advance (``PIPELINE_WAKE``)."""
        now = self.sim.now_s
        self._wakes.discard((run_id, now))
        if run_id not in self._runs:
            return  # it ended meanwhile
        self._advanced(self.engine.advance(run_id, now=self._at(now)))

    def finish(self) -> list[RunOutcome]:
        """The end of the simulation: every run, those still going with what they wait for."""
        outcomes = list(self.outcomes)
        for run_id, live in self._runs.items():
            run = self.engine.get(run_id)
            outcomes.append(
                RunOutcome(
                    run_id=run_id,
                    pipeline_id=run.pipeline_id,
                    status=run.status.value,
                    start_s=live.start_s,
                    end_s=None,
                    critical_path=(),
                    critical_path_wait_s=None,
                    jobs=len(live.jobs),
                    message=self._waiting_for(run),
                )
            )
        return outcomes

    # What the ports ask ------------------------------------------------------------------------
    def canned(self, run_id: str, step_id: str) -> Mapping[str, Any]:
        """The canned outputs of ``step_id`` (a loop's iterations share their loop's)."""
        live = self._runs.get(run_id)
        if live is None:
            return {}
        outputs = self.workloads[live.workload].outputs
        return outputs.get(_ITERATION.sub("", step_id)) or {}

    def ready_at(self, run_id: str, job_id: str) -> float | None:
        live = self._runs.get(run_id)
        return None if live is None else live.ready_at.get(job_id)

    def enter(self, job: Job) -> None:
        """A step's job enters the simulation as a workload job submitted now."""
        run_id = job.labels[RUN_LABEL]
        step = job.labels.get(STEP_LABEL, job.name)
        live = self._runs[run_id]
        workload = self.workloads[live.workload]
        job_id = str(job.id)
        self._job_run[job_id] = run_id
        live.jobs.append(job_id)
        live.step_jobs.setdefault(step, []).append(job_id)
        if job.job_type is JobType.SERVICE:
            self._services.add(job_id)
        self.sim.submit_pipeline_job(self._arrival(job, workload, step), job)

    # Internals -----------------------------------------------------------------------------------
    def _arrival(self, job: Job, workload: PipelineWorkload, step: str) -> JobArrival:
        """The :class:`JobArrival` (the simulation's record of a job) of a step's job."""
        now = self.sim.now_s
        estimate = job.estimated_duration.total_seconds() if job.estimated_duration is not None else None
        service = job.job_type is JobType.SERVICE
        runtime = (
            OPEN_ENDED_S
            if service
            else (estimate if estimate is not None else workload.default_runtime_s) * workload.runtime_scale
        )
        pod_set = job.request.pod_sets[0]
        resources = pod_set.resources
        return JobArrival(
            submit_s=now,
            runtime_s=runtime,
            gpus_per_pod=resources.get(self._gpu_resource, 0) // 1000,
            pods=pod_set.count,
            cpu_milli=resources.get("cpu", 0),
            memory_bytes=-(-resources.get("memory", 0) // 1000),
            tenant=str(job.tenant),
            local_queue=job.local_queue or "default",
            priority=job.priority.value,
            job_type=job.job_type.value,
            job_class=f"{workload.spec.id}/{_ITERATION.sub('', step)}",
            job_id=str(job.id),
            deadline_s=None if job.deadline is None else (job.deadline - self._start).total_seconds(),
            accelerator="|".join(job.request.accelerators) or None,
            estimated_runtime_s=None if service else estimate,
            max_runtime_s=None if job.max_duration is None else job.max_duration.total_seconds(),
            time_window=job.time_window,
            preemptible=job.preemptible,
            # A service's runtime is its run's business: it declares none (no runaway alerts).
            declares_runtime=estimate is not None and not service,
            priority_value=job.workload_priority,
            priority_class=job.priority_class,
            label=workload.spec.id,
        )

    def _ready_delay(self, live: _LiveRun, job_id: str) -> float:
        """How long a SERVICE takes to be ready once its pods run: its estimate, scaled."""
        job = self.jobs.submitted(job_id)
        if job is None or job.estimated_duration is None:
            return 0.0
        return job.estimated_duration.total_seconds() * self.workloads[live.workload].runtime_scale

    def _next_arrival(self) -> None:
        arrival = next(self._arrivals, None)
        if arrival is not None:
            self.sim.start_pipeline_run(arrival)

    def _wake(self, run_id: str, at: float) -> None:
        key = (run_id, at)
        if key in self._wakes:
            return
        self._wakes.add(key)
        self.sim.wake_pipeline(at, run_id)

    def _advanced(self, run: PipelineRun) -> None:
        """After a start or advance: end the run, or wake it when time alone changes it."""
        if run.status.is_terminal:
            self._ended(run)
            return
        wake = self.engine.next_wakeup(run)
        if wake is None:
            return
        now = self.sim.now_s
        at = (wake - self._start).total_seconds()
        if at <= now:
            live = self._runs[run.run_id]
            live.spins = live.spins + 1 if live.spin_at == now else 1
            live.spin_at = now
            if live.spins > _MAX_SPINS:
                return
            at = now
        self._wake(run.run_id, at)

    def _ended(self, run: PipelineRun) -> None:
        """The run ended: its services stop (anything else still live is cancelled), its
        critical path and the waits on it are kept."""
        live = self._runs.pop(run.run_id)
        for job_id in live.jobs:  # forgotten first: their ends must not wake the ended run
            self._job_run.pop(job_id, None)
        for job_id in live.jobs:
            if not self.sim.records[job_id].status.is_final:
                self.sim.end_pipeline_service(job_id)
            self._services.discard(job_id)
        workload = self.workloads[live.workload]
        assert run.started_at is not None and run.ended_at is not None  # an ended run has both
        estimate = estimate_run(
            workload.graph, now=run.ended_at, run=run, options=EstimateOptions(buffer_s=0.0)
        )
        path = estimate.critical_path
        wait = sum(self._step_wait(workload, live, run, step_id) for step_id in path)
        self.outcomes.append(
            RunOutcome(
                run_id=run.run_id,
                pipeline_id=run.pipeline_id,
                status=run.status.value,
                start_s=live.start_s,
                end_s=(run.ended_at - self._start).total_seconds(),
                critical_path=path,
                critical_path_wait_s=wait,
                jobs=len(live.jobs),
                message=_run_message(run),
            )
        )
        self.jobs.forget(live.jobs)

    def _step_wait(self, workload: PipelineWorkload, live: _LiveRun, run: PipelineRun, step_id: str) -> float:
        """What a step on the critical path waited for the scheduler: the time its jobs spent
        between their submission and the step's end without running pods (queued for quota,
        admitted with pods pending, requeued after an eviction or a node failure).

        A loop's iterations share its concurrency slots: its wait is that of the chain of
        iterations that decided its end (the one that ended last, the one whose end let it start,
        and so on back to the loop's start).
        """
        config = workload.graph.steps[step_id].config
        if isinstance(config, JobStepConfig):
            return self._record_wait(live, run.steps[step_id])
        if not isinstance(config, LoopStepConfig):
            return 0.0
        prefix = f"{step_id}["
        iterations = [
            s for s in run.steps.values() if s.step_id.startswith(prefix) and s.ended_at is not None
        ]
        total = 0.0
        chain: set[str] = set()
        current = max(iterations, key=lambda s: (s.ended_at or self._start, s.index or 0), default=None)
        while current is not None and current.step_id not in chain:
            chain.add(current.step_id)
            total += self._record_wait(live, current)
            began = current.started_at
            current = max(
                (s for s in iterations if s.ended_at == began and s.step_id not in chain),
                key=lambda s: s.index or 0,
                default=None,
            )
        return total

    def _record_wait(self, live: _LiveRun, step: StepRun) -> float:
        """The time the jobs of one step record (every attempt) waited before the record ended."""
        if step.ended_at is None:
            return 0.0
        step_end = (step.ended_at - self._start).total_seconds()
        records = self.sim.records
        total = 0.0
        for job_id in live.step_jobs.get(step.step_id, ()):
            record = records[job_id]
            submitted = record.arrival.submit_s
            until = min(step_end, record.end_s if record.end_s is not None else step_end)
            running = sum(
                max(0.0, min(stop, until) - max(start, submitted))
                for start, stop in live.runs.get(job_id, ())
            )
            total += max(0.0, until - submitted - running)
        return total

    def _waiting_for(self, run: PipelineRun) -> str:
        """What a run still going at the end waits for (a step's job, in the scheduler's words)."""
        records = self.sim.records
        for record in run.steps.values():
            if record.status.is_terminal:
                continue
            if record.job_id is not None and record.job_id in records:
                job = records[record.job_id]
                return f"step {record.step_id!r}: job {record.job_id} {job.status.value}" + (
                    f": {job.reason}" if job.reason else ""
                )
        pending = [s.step_id for s in run.steps.values() if not s.status.is_terminal]
        return f"steps not ended: {', '.join(pending[:5])}" if pending else run.message or ""

    def _at(self, seconds: float) -> datetime:
        return self._start + timedelta(seconds=seconds)


def _run_message(run: PipelineRun) -> str:
    """The run's own message, with why its first failed step failed (its job's reason, say)."""
    message = run.message or ""
    failed = next((s for s in run.steps.values() if s.status is StepStatus.FAILED and s.error), None)
    return f"{message} ({failed.step_id}: {failed.error})" if failed is not None else message
