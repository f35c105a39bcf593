"""Running a pipeline end to end on a simulated cluster: the engine, the scheduler and time, together.

:class:`LocalRunner` is what ``budcore pipeline run`` and the tests use: the real pipeline engine,
the real :class:`~budcore.scheduling.Scheduler` (Kueue-compatible admission) and a cluster backend
that simulates execution (the in-memory adapter's, reached through the
:class:`~budcore.ports.cluster_backend.SimulatedClusterBackend` port), on a virtual clock that jumps
to the next instant something happens. ``api_call`` steps make real HTTP requests and
``function`` steps run real code; only the jobs' execution is simulated: a batch or training job
runs for its ``estimated_duration_seconds`` (else :attr:`LocalRunner.default_runtime`), a SERVICE
job is ready as soon as its pods are placed and keeps running until the run ends.

Without a cluster of its own (:func:`cluster_for`), a pipeline runs on a cluster sized for it: one
pool per accelerator type its job steps ask for, each large enough for all of them at once, and a
CPU pool, behind one ClusterQueue with exactly that quota. It answers "does it run, in which
order, and how long on an idle cluster"; give a queue configuration and nodes to ask it of a real
one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from budcore.domain.cluster import Node, PodSetPlacement, Workload
from budcore.domain.errors import CapacityError, ValidationError
from budcore.domain.ids import JobId
from budcore.domain.job import Job, JobStatus, JobType
from budcore.domain.resources import CPU, ResourceVector
from budcore.domain.timeutil import ensure_utc
from budcore.pipeline.engine import PipelineEngine
from budcore.pipeline.functions import FunctionRegistry
from budcore.pipeline.jobs import RUN_LABEL, ServiceStepJobs
from budcore.pipeline.model import JobStepConfig, LoopStepConfig, PipelineSpec
from budcore.pipeline.state import PipelineRun
from budcore.ports.cluster_backend import SimulatedClusterBackend
from budcore.ports.job_store import JobFilter, JobStore
from budcore.ports.pipeline_effects import ApiCaller, Notifier
from budcore.ports.pipeline_store import PipelineStore
from budcore.scheduling import (
    ClusterQueue,
    FlavorQuotas,
    LocalQueue,
    QueueConfig,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
    Scheduler,
)
from budcore.scheduling.assignment import admission_placement
from budcore.service import JobService

__all__ = ["LocalRunner", "RunReport", "VirtualClock", "cluster_for"]

POOL_LABEL = "budcore.io/pool"
ACCELERATOR_LABEL = "budcore.io/accelerator"
DEFAULT_LOCAL_QUEUE = "default"  # Kueue LocalQueueDefaulting: the queue a job naming none goes to
_ACTIVE = frozenset({JobStatus.PENDING, JobStatus.QUEUED, JobStatus.ADMITTED, JobStatus.RUNNING})


class VirtualClock:
    """A clock the runner moves; it never goes back."""

    def __init__(self, start: datetime) -> None:
        self.current = ensure_utc(start, "start")

    def now(self) -> datetime:
        return self.current

    def advance_to(self, when: datetime) -> None:
        if when > self.current:
            self.current = when


def _job_configs(spec: PipelineSpec) -> Iterable[JobStepConfig]:
    for step in spec.steps:
        if isinstance(step.config, JobStepConfig):
            yield step.config
        elif isinstance(step.config, LoopStepConfig) and isinstance(step.config.step.config, JobStepConfig):
            body = step.config.step.config
            count = len(step.config.items) if isinstance(step.config.items, list | tuple) else 1
            for _ in range(max(count, 1)):
                yield body
        if step.compensate is not None and isinstance(step.compensate.config, JobStepConfig):
            yield step.compensate.config


def cluster_for(spec: PipelineSpec) -> tuple[QueueConfig, list[Node]]:
    """A cluster on which every job step of ``spec`` fits at once (see the module docstring).

    One resource group covers CPU, memory and every accelerator resource, with a flavor per pool:
    the CPU pool's first (a job without accelerators lands there), then one per accelerator type
    (8 devices a node), each with exactly its nodes' capacity as quota.
    """
    gpus: dict[tuple[str, str], int] = {}
    cpu_milli = memory = 0
    queues = {spec.local_queue}
    for step in _job_configs(spec):
        cpu_milli += round(step.cpu_cores * 1000) * step.pods
        memory += round(step.memory_gb * 2**30) * step.pods
        if step.local_queue:
            queues.add(step.local_queue)
        if step.gpu_count:
            key = (step.gpu_type or "gpu", step.gpu_resource)
            gpus[key] = gpus.get(key, 0) + step.gpu_count * step.pods
    resources = sorted({resource for _, resource in gpus})
    per_node_cpu, per_node_memory = 64, 512 * 2**30
    cpu_nodes = max(1, -(-cpu_milli // (per_node_cpu * 1000)), -(-memory // per_node_memory))
    pools: list[tuple[str, dict[str, str], int, dict[str, int]]] = [
        ("cpu", {POOL_LABEL: "cpu"}, cpu_nodes, {CPU: per_node_cpu, "memory": per_node_memory})
    ]
    for index, ((accelerator, resource), count) in enumerate(sorted(gpus.items())):
        name = f"pool-{index}-{accelerator}"[:63].rstrip("-.")
        labels = {POOL_LABEL: name}
        if accelerator != "gpu":
            labels[ACCELERATOR_LABEL] = accelerator
        pools.append(
            (name, labels, -(-count // 8), {resource: 8, CPU: per_node_cpu, "memory": per_node_memory})
        )
    nodes: list[Node] = []
    flavors: list[ResourceFlavor] = []
    quotas: list[FlavorQuotas] = []
    covered = (CPU, "memory", *resources)
    for name, labels, count, allocatable in pools:
        nodes.extend(
            Node(name=f"{name}-{n}", labels=labels, allocatable=ResourceVector.of(allocatable))
            for n in range(count)
        )
        flavors.append(ResourceFlavor(name=name, node_labels=labels))
        per_node = ResourceVector.of(allocatable)  # milli-units, as quotas are
        quota = {r: per_node.get(r, 0) * count for r in covered}
        quotas.append(
            FlavorQuotas(
                name=name,
                resources=tuple(ResourceQuota(name=r, nominal_quota=quota[r]) for r in covered),
            )
        )
    config = QueueConfig.build(
        flavors=flavors,
        cluster_queues=[
            ClusterQueue(
                name="pipeline",
                resource_groups=(ResourceGroup(covered_resources=covered, flavors=tuple(quotas)),),
            )
        ],
        local_queues=[
            LocalQueue(name=q, namespace=spec.tenant, cluster_queue="pipeline") for q in sorted(queues)
        ],
    )
    return config, nodes


@dataclass(frozen=True, slots=True)
class RunReport:
    """How a local run went: the run as stored, its jobs, and the simulated time it took."""

    run: PipelineRun
    jobs: Mapping[str, Job]
    started: datetime
    ended: datetime

    @property
    def makespan_s(self) -> float:
        return (self.ended - self.started).total_seconds()


class LocalRunner:
    """Runs pipelines on the engine, a scheduler and a simulated cluster (see the module docstring).

    ``default_runtime`` is how long a batch or training job runs when its step gives no estimate;
    ``job_outputs`` may add outputs to a job when it becomes ready (what a real deployment would
    report, e.g. its URL). ``horizon`` bounds simulated time: a run still going after it is
    cancelled, so a pipeline whose jobs can never be admitted ends instead of hanging.
    """

    def __init__(
        self,
        *,
        config: QueueConfig,
        cluster: SimulatedClusterBackend,
        job_store: JobStore,
        pipeline_store: PipelineStore,
        clock: VirtualClock,
        http: ApiCaller | None = None,
        functions: FunctionRegistry | None = None,
        notifier: Notifier | None = None,
        default_runtime: timedelta = timedelta(minutes=10),
        horizon: timedelta = timedelta(days=30),
        job_outputs: Callable[[Job], Mapping[str, str]] | None = None,
    ) -> None:
        self.clock = clock
        self.cluster = cluster
        self.store = job_store
        self.service = JobService(job_store, clock)
        self.scheduler = Scheduler(config)
        self.engine = PipelineEngine(
            pipeline_store,
            clock=clock,
            jobs=ServiceStepJobs(self.service, self.scheduler),
            http=http,
            functions=functions,
            notifier=notifier,
        )
        self.default_runtime = default_runtime
        self.horizon = horizon
        self.job_outputs = job_outputs
        self._ends: dict[str, datetime] = {}  # running batch/training jobs: when they complete
        self._queued: set[str] = set()  # jobs handed to the scheduler
        self._running: set[str] = set()  # jobs holding quota (admitted or running)
        self._tenant: dict[str, str] = {}  # job id -> tenant, to read jobs by key
        self._ready: dict[str, datetime] = {}  # SERVICE jobs deploying: when they are ready

    def run(
        self,
        spec: PipelineSpec,
        params: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        on_advance: Callable[[PipelineRun], None] | None = None,
    ) -> RunReport:
        """Run ``spec`` to its end; ``on_advance`` sees the run after every advance (progress)."""
        started = self.clock.now()
        run = self.engine.start(spec, params, run_id=run_id, now=started)
        limit = started + self.horizon
        while not run.status.is_terminal:
            changed = self._drive()
            wake = self.engine.next_wakeup(run)
            if changed or (wake is not None and wake <= self.clock.now()):
                run = self.engine.advance(run, now=self.clock.now())  # the runner is its only writer
                if on_advance is not None:
                    on_advance(run)
                if run.status.is_terminal:
                    break
            if self._unseen_jobs():
                continue  # the advance submitted jobs: the scheduler sees them at this instant
            wake = self._next_instant(run)
            if wake is None or wake > limit:
                reason = self._stuck_reason(run, wake)
                run = self.engine.cancel(run.run_id, reason, now=self.clock.now() if wake is None else limit)
                if on_advance is not None:
                    on_advance(run)
                break
            self.clock.advance_to(wake)
        self._stop_services()
        jobs: dict[str, Job] = {
            str(job.id): job for job in self.store.list(None, JobFilter(labels={RUN_LABEL: run.run_id}))
        }
        return RunReport(run=run, jobs=jobs, started=started, ended=run.ended_at or self.clock.now())

    # The simulated cluster -------------------------------------------------------------------
    def _unseen_jobs(self) -> list[Job]:
        """Queued jobs the scheduler has not been given yet."""
        queued = self.store.list(None, JobFilter(statuses=frozenset({JobStatus.QUEUED})))
        return [job for job in queued if job.id not in self._queued and job.id not in self._running]

    def _drive(self) -> bool:
        """Bring the jobs up to ``now``: services become ready, due jobs finish, new jobs are
        handed to the scheduler, and one admission cycle runs. Whether any job changed state."""
        now = self.clock.now()
        changed = False
        for job_id, at in sorted(self._ready.items(), key=lambda kv: kv[1]):
            if at <= now:
                self._serve(job_id, now)
                changed = True
        for job_id, end in sorted(self._ends.items(), key=lambda kv: kv[1]):
            if end <= now:
                self._finish(job_id, now)
                changed = True
        for job in self._unseen_jobs():
            self._tenant[job.id] = job.tenant
            self.scheduler.submit(job)
            self._queued.add(job.id)
            changed = True
        self._withdraw_cancelled(now)
        result = self.scheduler.cycle(now)
        for admit in result.admitted:
            self._start(admit.tenant, admit.job_id, admit.flavors, now)
            changed = True
        return changed

    def _start(
        self, tenant: str, job_id: str, flavors: Mapping[str, Mapping[str, str]], now: datetime
    ) -> None:
        job = self._job(job_id)
        self._queued.discard(job.id)
        job = self.service.move(job, JobStatus.ADMITTED, reason="admitted", now=now)
        self._running.add(job.id)
        placement = admission_placement(flavors, self.scheduler.config.flavors)
        pod_sets = tuple(
            PodSetPlacement(
                name=p.name,
                count=p.count,
                resources=p.resources,
                node_selector=placement.get(p.name, ({}, ()))[0],
                flavors=dict(flavors.get(p.name, {})),
            )
            for p in job.request.pod_sets
        )
        try:
            self.cluster.submit(Workload(job_id=job.id, tenant=job.tenant, pod_sets=pod_sets))
        except CapacityError as exc:
            self.scheduler.release(job.id, now)
            self._running.discard(job.id)
            requeued = self.service.move(
                job, JobStatus.QUEUED, reason=f"pods could not be placed: {exc}", now=now
            )
            self.scheduler.submit(requeued, timestamp=job.created_at.timestamp())
            self._queued.add(job.id)
            return
        if job.job_type is JobType.SERVICE and job.estimated_duration:
            self._ready[job.id] = now + job.estimated_duration  # deploying until then
            return
        self._serve(job.id, now)

    def _serve(self, job_id: str, now: datetime) -> None:
        """The job's pods run (a SERVICE: its deployment is ready); a batch job's end is set."""
        self._ready.pop(job_id, None)
        job = self._job(job_id)
        extra = dict(self.job_outputs(job)) if self.job_outputs is not None else {}
        self.service.move(
            job,
            JobStatus.RUNNING,
            reason="pods started" if job.job_type is not JobType.SERVICE else "deployment ready",
            now=now,
            actual_start=job.admitted_at or now,
            outputs={**job.outputs, **extra},
        )
        if job.job_type is not JobType.SERVICE:
            runtime = job.estimated_duration or self.default_runtime
            self._ends[job.id] = now + runtime

    def _finish(self, job_id: str, now: datetime) -> None:
        del self._ends[job_id]
        job = self._job(job_id)
        self.cluster.complete(JobId(job_id))
        self.scheduler.release(job_id, now)
        self._running.discard(job_id)
        if job.status is JobStatus.RUNNING:
            self.service.move(job, JobStatus.COMPLETED, reason="finished", now=now, actual_end=now)

    def _withdraw_cancelled(self, now: datetime) -> None:
        """Jobs the engine cancelled (a timeout, a failure policy) give back what they hold."""
        for job_id in list(self._queued | self._running):
            job = self._job(job_id)
            if job.status in _ACTIVE:
                continue
            if job_id in self._queued:
                self.scheduler.withdraw(job_id)
                self._queued.discard(job_id)
            if job_id in self._running:
                self._ends.pop(job_id, None)
                self._ready.pop(job_id, None)
                self.cluster.cancel(JobId(job_id))
                self.scheduler.release(job_id, now)
                self._running.discard(job_id)

    def _stop_services(self) -> None:
        """The run has ended: its SERVICE jobs (still running) are stopped as completed."""
        now = self.clock.now()
        for job_id in sorted(self._running):
            job = self._job(job_id)
            self._ends[job_id] = now
            self._ready.pop(job_id, None)
            if job.status is JobStatus.RUNNING:
                self._finish(job_id, now)
            else:
                self._ends.pop(job_id, None)

    def _job(self, job_id: str) -> Job:
        return self.store.get(self._tenant[job_id], JobId(job_id))  # type: ignore[arg-type]

    def _next_instant(self, run: PipelineRun) -> datetime | None:
        times = [t for t in (self.engine.next_wakeup(run), self.scheduler.next_wakeup()) if t is not None]
        times.extend(self._ends.values())
        times.extend(self._ready.values())
        now = self.clock.now()
        later = [t for t in times if t > now]
        return min(later) if later else None

    def _stuck_reason(self, run: PipelineRun, wake: datetime | None) -> str:
        waiting = [s for s in run.steps.values() if s.job_id is not None and not s.status.is_terminal]
        for record in waiting:
            reason = self.scheduler.pending_reason(record.job_id or "")
            if reason:
                return f"stuck: step {record.step_id!r} cannot start: {reason}"
        pending = [s.step_id for s in run.steps.values() if not s.status.is_terminal]
        if wake is not None:
            return f"horizon reached ({self.horizon}) with steps not ended: {', '.join(pending[:5])}"
        return f"stuck: nothing more can happen (steps not ended: {', '.join(pending[:5])})"


def check_local_queues(spec: PipelineSpec, config: QueueConfig) -> None:
    """Every LocalQueue the pipeline's job steps name exists in ``config`` for its tenant."""
    for job in _job_configs(spec):
        name = job.local_queue or spec.local_queue
        if (spec.tenant, name) not in config.local_queues:
            raise ValidationError(
                f"LocalQueue {spec.tenant}/{name} is not in the queue configuration", path="local_queue"
            )
