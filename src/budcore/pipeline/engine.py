"""The pipeline engine: advances runs, one decision at a time, through ports.

There is no thread and no timer inside. A caller (a service's loop, the in-memory runner, the
simulator) calls :meth:`PipelineEngine.advance` when something may have changed (a job ended, an
event arrived, time passed) and :meth:`PipelineEngine.next_wakeup` to learn when time alone will
change something. One ``advance`` does everything that can be done at its instant: it starts every
step whose dependencies have ended, runs the synchronous ones (``api_call``, ``function``,
``transform``, ``notification``, ``condition``), submits ``job`` steps and polls their jobs, ends
waits, expands loops, applies the failure policy and, when every step has ended, the run.

**Durability.** A run lives in a :class:`~budcore.ports.pipeline_store.PipelineStore`; the engine
keeps nothing between calls, so another engine (after a restart, on another replica) continues
any run. Each step's record is written after its side effect, and every side effect carries the
attempt's idempotency key (``run/step/attempt``): an attempt a crash interrupted before its
record was written is re-sent with the *same* key, which the receiver uses to apply it once (the
job store's idempotent create; ``Idempotency-Key`` on HTTP; ``ctx.key`` for functions). A step
recorded as completed is never executed again. Writes are optimistic (the run's version): two
engines advancing one run cannot both write; the loser gets ``ConflictError`` and retries.

**Dependencies.** A step starts when every dependency has ended ``completed`` or ``skipped`` (a
skipped step satisfies its dependents, as in Argo). A SERVICE job satisfies its dependents once it
runs (its deployment is ready), batch and training jobs once they complete. A dependency that
failed or was cancelled cancels the step (``on_failure: continue``) or the whole run.

**Failure policies** (:class:`~budcore.pipeline.model.OnFailure`): ``fail_fast`` cancels what runs
and what waits; ``continue`` lets independent branches finish and reports ``partial``;
``rollback`` cancels like ``fail_fast`` and then runs the compensating steps of the completed
steps one at a time, in reverse topological order.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from budcore.domain.ids import JobId, TenantId
from budcore.domain.timeutil import ensure_utc
from budcore.pipeline.advance import RunAdvance
from budcore.pipeline.dag import PipelineGraph, build_graph
from budcore.pipeline.effects import EventSinkNotifier, RecordingNotifier, StepEffects
from budcore.pipeline.estimate import EstimateOptions, PipelineEstimate, estimate_run
from budcore.pipeline.functions import FunctionRegistry
from budcore.pipeline.model import PipelineSpec
from budcore.pipeline.state import PipelineRun, StepRun
from budcore.pipeline.templates import Sandbox
from budcore.pipeline.triggers import TriggerBook
from budcore.ports.clock import Clock
from budcore.ports.event_sink import EventSink
from budcore.ports.pipeline_effects import ApiCaller, Notifier, StepJobs
from budcore.ports.pipeline_store import PipelineStore

__all__ = ["PipelineEngine", "RecordingNotifier"]


class PipelineEngine:
    """Starts, advances, signals and cancels pipeline runs stored in ``store``.

    ``jobs`` is where ``job`` steps go (required only by pipelines that have one), ``http`` the
    client of ``api_call`` steps (default: the plugins' ``httpx`` api caller,
    ``budcore_adapters.http``, created on first use), ``functions`` the callables of
    ``function``/``transform`` steps (default: the
    plugins' and the built-ins), ``notifier`` where ``notification`` steps go (default: a
    :class:`~budcore.domain.events.PipelineNotified` event on ``events``, the event sink, when one is
    given; else they are kept in memory, :class:`~budcore.pipeline.effects.RecordingNotifier`).
    """

    def __init__(
        self,
        store: PipelineStore,
        *,
        clock: Clock,
        jobs: StepJobs | None = None,
        http: ApiCaller | None = None,
        functions: FunctionRegistry | None = None,
        notifier: Notifier | None = None,
        events: EventSink | None = None,
        sandbox: Sandbox | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.jobs = jobs
        self._http = http
        self._functions = functions
        if notifier is None:  # the event sink when there is one, as for every other event
            notifier = EventSinkNotifier(events) if events is not None else RecordingNotifier()
        self.notifier: Notifier = notifier
        self.sandbox = sandbox or Sandbox()
        self.effects = StepEffects(
            sandbox=self.sandbox,
            http=lambda: self.http,
            functions=lambda: self.functions,
            notifier=self.notifier,
        )
        self._graphs: dict[tuple[str, int], PipelineGraph] = {}
        self._registered: set[tuple[str, int]] = set()
        self.triggers = TriggerBook()

    # Ports created on demand -----------------------------------------------------------------
    @property
    def http(self) -> ApiCaller:
        if self._http is None:
            from budcore.plugins import default_registry

            self._http = default_registry().api_caller("httpx")
        return self._http

    @property
    def functions(self) -> FunctionRegistry:
        if self._functions is None:
            self._functions = FunctionRegistry.from_plugins()
        return self._functions

    # Definitions -----------------------------------------------------------------------------
    def register(self, spec: PipelineSpec) -> PipelineGraph:
        """Validate ``spec`` as a whole and store it (a version with runs cannot change).

        The very spec object this engine registered last time is not stored again: a service (or
        the simulator) starting many runs of one pipeline pays for its validation once.
        """
        key = (spec.id, spec.version)
        known = self._graphs.get(key)
        if known is not None and known.spec is spec and key in self._registered:
            return known
        graph = build_graph(spec, sandbox=self.sandbox)
        self.store.save_pipeline(spec)
        self._graphs[key] = graph
        self._registered.add(key)
        self.triggers.add(spec, self._now(None))
        return graph

    def graph(self, pipeline_id: str, version: int) -> PipelineGraph:
        key = (pipeline_id, version)
        graph = self._graphs.get(key)
        if graph is None:
            graph = self._graphs[key] = build_graph(
                self.store.get_pipeline(pipeline_id, version), sandbox=self.sandbox
            )
        return graph

    # Runs ------------------------------------------------------------------------------------
    def start(
        self,
        pipeline: PipelineSpec | str,
        params: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        now: datetime | None = None,
    ) -> PipelineRun:
        """Start a run (idempotent by ``run_id``) and advance it as far as it goes now."""
        now = self._now(now)
        if isinstance(pipeline, PipelineSpec):
            graph = self.register(pipeline)
        else:
            spec = self.store.get_pipeline(pipeline)
            graph = self.graph(spec.id, spec.version)
        spec = graph.spec
        values = spec.resolve_parameters(params)
        run = PipelineRun(
            run_id=run_id or uuid.uuid4().hex,
            pipeline_id=spec.id,
            pipeline_version=spec.version,
            tenant=spec.tenant,
            params=values,
            created_at=now,
            started_at=now,
            deadline=spec.deadline_for(now),
            timeout_at=None if spec.timeout is None else now + timedelta(seconds=spec.timeout),
        )
        for step_id in graph.order:
            run.steps[step_id] = StepRun(step_id)
        stored = self.store.create_run(run)
        return self.advance(stored.run_id, now=now)

    def get(self, run_id: str) -> PipelineRun:
        return self.store.get_run(run_id)

    def advance(self, run: str | PipelineRun, *, now: datetime | None = None) -> PipelineRun:
        """Do everything that can be done for the run at ``now``; returns the run as stored.

        Given a run id, the run is read from the store. A loop that is the run's only writer (the
        local runner, the simulator) may pass the :class:`PipelineRun` the engine returned last
        instead, which spares re-reading a large run at every step; the store's version check
        still guards it: a run someone else has written since is refused by ``save_run``
        (``ConflictError``) before anything of this advance is recorded.
        """
        if isinstance(run, str):
            run = self.store.get_run(run)
        if run.status.is_terminal:
            return run
        at = self._now(now)
        RunAdvance(self, run, self.graph(run.pipeline_id, run.pipeline_version), at).run()
        self._after(run, at)
        return run

    # Triggers ---------------------------------------------------------------------------------
    def fire_due(self, *, now: datetime | None = None) -> list[PipelineRun]:
        """Start a run for every scheduled (cron) fire at or before ``now`` not started yet.

        The run id names the pipeline and the fire (``nightly-etl@2026-01-05T02:00:00+00:00``), so
        two replicas that both see a fire start one run between them.
        """
        at = self._now(now)
        return [
            self.start(spec, run_id=f"{spec.id}@{fire.isoformat()}", now=at)
            for spec, fire in self.triggers.due(at)
        ]

    def emit(
        self,
        event: str,
        payload: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        now: datetime | None = None,
    ) -> list[PipelineRun]:
        """Start the pipelines whose trigger is ``event``; the payload's entries that name a
        parameter of a pipeline become that parameter's value. ``key`` (an event id) makes a
        redelivered event start nothing new."""
        at = self._now(now)
        payload = dict(payload or {})
        runs = []
        for spec in self.triggers.on_event(event):
            params = {k: v for k, v in payload.items() if k in spec.parameters}
            run_id = f"{spec.id}@{event}:{key}" if key is not None else None
            runs.append(self.start(spec, params, run_id=run_id, now=at))
        return runs

    def _after(self, run: PipelineRun, now: datetime) -> None:
        """A run that ended starts the pipelines triggered by its end (once: the id says which)."""
        if not run.status.is_terminal:
            return
        for spec in self.triggers.after(run.pipeline_id, run.status.value):
            self.start(spec, run_id=f"{spec.id}@after:{run.run_id}", now=now)

    def estimate(
        self, run: PipelineRun, *, now: datetime | None = None, options: EstimateOptions = EstimateOptions()
    ) -> PipelineEstimate:
        """When each step of ``run`` should start and end, its critical path and deadline verdict;
        ``job`` steps whose job is queued start no earlier than the scheduler's ETA for it."""
        jobs = self.jobs

        def eta(step_id: str, record: StepRun) -> datetime | None:
            if jobs is None or record.job_id is None:
                return None
            return jobs.eta(jobs.get(TenantId(run.tenant), JobId(record.job_id)))

        graph = self.graph(run.pipeline_id, run.pipeline_version)
        return estimate_run(graph, now=self._now(now), run=run, options=options, eta=eta)

    def signal(
        self,
        run_id: str,
        event: str,
        payload: Mapping[str, Any] | None = None,
        *,
        now: datetime | None = None,
    ) -> PipelineRun:
        """Deliver ``event`` to the run's ``wait`` steps waiting for it, then advance the run."""
        run = self.store.get_run(run_id)
        if run.status.is_terminal:
            return run
        graph = self.graph(run.pipeline_id, run.pipeline_version)
        at = self._now(now)
        RunAdvance(self, run, graph, at, event=(event, dict(payload or {}))).run()
        self._after(run, at)
        return run

    def cancel(
        self, run_id: str, reason: str = "cancelled by user", *, now: datetime | None = None
    ) -> PipelineRun:
        """Cancel every step that has not ended (their jobs too) and end the run ``cancelled``."""
        run = self.store.get_run(run_id)
        if run.status.is_terminal:
            return run
        graph = self.graph(run.pipeline_id, run.pipeline_version)
        at = self._now(now)
        RunAdvance(self, run, graph, at, cancel=reason).run()
        self._after(run, at)
        return run

    def next_wakeup(self, run: PipelineRun) -> datetime | None:
        """The earliest instant at which time alone changes the run (a retry, a wait, a timeout)."""
        if run.status.is_terminal:
            return None
        times = [s.wake_at for s in run.steps.values() if s.wake_at is not None and not s.status.is_terminal]
        if run.timeout_at is not None:
            times.append(run.timeout_at)
        return min(times) if times else None

    def _now(self, now: datetime | None) -> datetime:
        return ensure_utc(now if now is not None else self.clock.now(), "now")
