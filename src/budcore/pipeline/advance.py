"""One ``advance`` of one run: which steps start, which end, and what the failure policy does.

:class:`RunAdvance` is the engine's bookkeeping for one call (see :mod:`budcore.pipeline.engine`
for the contract): it counts each pending step's unfinished dependencies once, then releases
steps as their dependencies end (no rescans, so a 10,000-step run costs O(steps + edges) per
call); it starts them (a condition's branch and a step's ``when`` first), revisits what waits or
runs (retries whose backoff is over, jobs, waits, loops), applies the failure policy, and ends the
run. Changes are collected and written to the store *before* every side effect (the attempt as
"running", with whatever ended since), so that a resumed run finds the one attempt a crash cut
off and redoes it, with its idempotency key, before it decides anything else.

Long because the run's state machine (starting steps, revisiting what waits or runs, ending
attempts, the failure policies) reads best in one place: each part changes what the others see.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from budcore.domain.errors import ValidationError
from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import JobStatus, JobType
from budcore.pipeline.dag import PipelineGraph
from budcore.pipeline.effects import StepEffects, Work, body_work, step_work
from budcore.pipeline.model import (
    ApiCallStepConfig,
    ConditionStepConfig,
    JobStepConfig,
    LoopStepConfig,
    OnFailure,
    ParallelStepConfig,
    RetryPolicy,
    StepType,
    TransformStepConfig,
    WaitStepConfig,
)
from budcore.pipeline.state import PipelineRun, RunStatus, StepRun, StepStatus
from budcore.pipeline.templates import Sandbox
from budcore.ports.pipeline_effects import StepContext, StepFailure, StepJobs
from budcore.ports.pipeline_store import PipelineStore

__all__ = ["UNDO_SUFFIX", "EngineParts", "RunAdvance"]

UNDO_SUFFIX = "~undo"
_UNDO = UNDO_SUFFIX
# A job step's job is created with max_retries 0 (retries are the step's), so a failed or cancelled
# job ends the attempt; a preempted one is requeued by the scheduler and still counts as waiting.
_JOB_FAILED = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})


class EngineParts(Protocol):
    """What an advance uses of its engine (:class:`~budcore.pipeline.engine.PipelineEngine`): the
    store it writes to, the template sandbox, the step effects and the job side. A Protocol, so
    that this module does not import the engine that imports it."""

    @property
    def store(self) -> PipelineStore: ...

    @property
    def sandbox(self) -> Sandbox: ...

    @property
    def effects(self) -> StepEffects: ...

    @property
    def jobs(self) -> StepJobs | None: ...


class RunAdvance:
    """One ``advance`` of one run: the ready set, the changes to write, the policy."""

    def __init__(
        self,
        engine: EngineParts,
        run: PipelineRun,
        graph: PipelineGraph,
        now: datetime,
        *,
        event: tuple[str, dict[str, Any]] | None = None,
        cancel: str | None = None,
    ) -> None:
        self.engine = engine
        self.run_state = run
        self.graph = graph
        self.spec = graph.spec
        self.now = now
        self.event = event
        self.cancel_reason = cancel
        self.changed: set[str] = set()
        self.header_changed = False
        self.ready: deque[str] = deque()
        self.remaining: dict[str, int] = {}
        self.stopping = False  # the failure policy stopped the run: start nothing new
        self._context: dict[str, Any] | None = None

    # The loop ----------------------------------------------------------------------------------
    def run(self) -> None:
        run = self.run_state
        steps = run.steps
        self.stopping = any(s.step_id.endswith(_UNDO) for s in steps.values()) or any(
            s.status is StepStatus.FAILED and self._stops_run(s) for s in steps.values()
        )
        for step_id in self.graph.order:
            record = steps[step_id]
            if record.status is StepStatus.PENDING:
                left = sum(1 for d in self.graph.dependencies[step_id] if not steps[d].status.is_terminal)
                self.remaining[step_id] = left
                if left == 0:
                    self.ready.append(step_id)
        if self.cancel_reason is not None:
            self._cancel_all(self.cancel_reason)
            self._finish_run(RunStatus.CANCELLED, self.cancel_reason)
            self._flush()
            return
        if run.timeout_at is not None and self.now >= run.timeout_at:
            message = f"timed out after {self.spec.timeout:g} s"
            self._cancel_all(message)
            self._finish_run(RunStatus.FAILED, message)
            self._flush()
            return
        for record in list(steps.values()):
            if record.status in (StepStatus.RUNNING, StepStatus.WAITING):
                self._revisit(record)
        self._drain()
        self._maybe_finish()
        self._flush()

    def _drain(self) -> None:
        while self.ready:
            step_id = self.ready.popleft()
            record = self.run_state.steps[step_id]
            if record.status is StepStatus.PENDING:
                self._begin(record)
            if not self.ready:
                self._maybe_compensate()

    def _flush(self) -> None:
        if self.changed or self.header_changed:
            self.engine.store.save_run(self.run_state, self.changed)
            self.changed = set()
            self.header_changed = False

    # Starting steps -------------------------------------------------------------------------------
    def _begin(self, record: StepRun) -> None:
        """A graph step whose dependencies have all ended."""
        step = self.graph.steps[record.step_id]
        steps = self.run_state.steps
        if self.stopping:
            self._end(record, StepStatus.CANCELLED, message="run stopped by a failure")
            return
        bad = [d for d in self.graph.dependencies[record.step_id] if not steps[d].status.satisfies]
        if bad:
            if isinstance(step.config, ParallelStepConfig):
                failed = [d for d in step.config.steps if steps[d].status is StepStatus.FAILED]
                if failed:  # the join of failed branches fails (its branches' failure is its own)
                    self._end(record, StepStatus.FAILED, error=f"branches {failed} failed")
                    return
            self._end(
                record, StepStatus.CANCELLED, message=f"dependency {bad[0]!r} {steps[bad[0]].status.value}"
            )
            return
        gate = self.graph.branch_of.get(record.step_id)
        if gate is not None:
            condition = steps[gate[0]]
            taken = condition.outputs.get("branch")
            if condition.status is StepStatus.SKIPPED or taken != gate[1]:
                self._end(record, StepStatus.SKIPPED, message=f"branch {gate[1]!r} of {gate[0]!r} not taken")
                return
        if step.when is not None:
            try:
                go = self.engine.sandbox.evaluate(step.when, self.context(), where=f"steps[{step.id}].when")
            except ValidationError as exc:
                self._end(record, StepStatus.FAILED, error=str(exc))
                return
            if not go:
                self._end(record, StepStatus.SKIPPED, message="when: false")
                return
        config = step.config
        if isinstance(config, ConditionStepConfig):
            self._condition(record, config)
        elif isinstance(config, ParallelStepConfig):
            outputs = {name: dict(steps[name].outputs) for name in config.steps}
            self._end(record, StepStatus.COMPLETED, outputs=outputs)
        elif isinstance(config, LoopStepConfig):
            self._loop(record, config)
        else:
            self._attempt(record, step_work(step))

    def _condition(self, record: StepRun, config: ConditionStepConfig) -> None:
        where = f"steps[{record.step_id}].config.expression"
        try:
            result = self.engine.sandbox.evaluate(config.expression, self.context(), where=where)
        except ValidationError as exc:
            self._end(record, StepStatus.FAILED, error=str(exc))
            return
        branch = "then" if result else "else"
        self._end(record, StepStatus.COMPLETED, outputs={"result": result, "branch": branch})

    def _loop(self, record: StepRun, config: LoopStepConfig) -> None:
        where = f"steps[{record.step_id}].config.items"
        try:
            items = self.engine.sandbox.render_value(config.items, self.context(), where=where)
        except ValidationError as exc:
            self._end(record, StepStatus.FAILED, error=str(exc))
            return
        if not isinstance(items, list | tuple):
            self._end(
                record, StepStatus.FAILED, error=f"{where}: expected a list, got {type(items).__name__}"
            )
            return
        if len(items) > config.max_items:
            self._end(record, StepStatus.FAILED, error=f"{where}: {len(items)} items exceed max_items")
            return
        record.status = StepStatus.RUNNING
        record.started_at = record.started_at or self.now
        record.attempt = max(record.attempt, 1)
        self.changed.add(record.step_id)
        for index, item in enumerate(items):
            child_id = f"{record.step_id}[{index}]"
            if child_id not in self.run_state.steps:
                self.run_state.steps[child_id] = StepRun(
                    child_id, parent=record.step_id, index=index, item=item
                )
                self.changed.add(child_id)
        self._loop_progress(record, config)

    def _children(self, parent: str) -> list[StepRun]:
        prefix = f"{parent}["
        return [
            s for s in self.run_state.steps.values() if s.parent == parent and s.step_id.startswith(prefix)
        ]

    def _loop_progress(self, record: StepRun, config: LoopStepConfig) -> None:
        """Start iterations up to the concurrency limit; end the loop when every iteration has."""
        children = self._children(record.step_id)
        work = body_work(config)
        active = sum(1 for c in children if c.status in (StepStatus.RUNNING, StepStatus.WAITING))
        limit = config.max_concurrency or len(children) or 1
        for child in children:
            if active >= limit or self.stopping:
                break
            if child.status is StepStatus.PENDING:
                self._attempt(child, work)
                if child.status in (StepStatus.RUNNING, StepStatus.WAITING):
                    active += 1
        if all(c.status.is_terminal for c in children):
            failed = [c.step_id for c in children if c.status is not StepStatus.COMPLETED]
            outputs = {"results": [c.outputs for c in children], "count": len(children)}
            if failed:
                self._end(
                    record,
                    StepStatus.FAILED,
                    outputs=outputs,
                    error=f"iterations {failed[:5]} did not complete",
                )
            else:
                self._end(record, StepStatus.COMPLETED, outputs=outputs)

    # One attempt of one leaf --------------------------------------------------------------------
    def _attempt(self, record: StepRun, work: Work) -> None:
        """Run (or submit) the next attempt of a leaf record."""
        if not self._slot_free(record):
            if record.status is not StepStatus.WAITING:
                record.status = StepStatus.WAITING
                record.message = "waiting for a concurrency slot"
                self.changed.add(record.step_id)
            return
        record.attempt += 1
        record.status = StepStatus.RUNNING
        record.started_at = record.started_at or self.now
        record.wake_at = None
        record.error = None
        self.changed.add(record.step_id)
        if _acts(work):
            # Write-ahead: the attempt is recorded as running before its effect, so that after a
            # crash the resumed run redoes exactly this attempt (same key) before deciding anything
            # else (a failure elsewhere could otherwise cancel a step whose effect was applied).
            self._flush()
        self._execute(record, work)

    def _execute(self, record: StepRun, work: Work) -> None:
        config = work.config
        try:
            if isinstance(config, JobStepConfig):
                self._submit_job(record, config, work)
                return
            if isinstance(config, WaitStepConfig):
                self._start_wait(record, config)
                return
            outputs = self.engine.effects.run(config, self.context(record), self._step_context(record))
        except StepFailure as failure:
            self._failed_attempt(record, work, failure.message, transient=failure.transient)
        except ValidationError as exc:
            self._failed_attempt(record, work, str(exc), transient=False)
        else:
            self._completed(record, work, outputs)
        # The outcome is written with the next attempt's write-ahead record or at the end of the
        # advance: until then the stored record says "running", which a resumed run redoes.

    def _submit_job(self, record: StepRun, config: JobStepConfig, work: Work) -> None:
        jobs = self.engine.jobs
        if jobs is None:
            raise StepFailure("no job backend: this engine was built without 'jobs'")
        job = self.engine.effects.job(
            config, self.context(record), self._step_context(record), self.run_state, self.spec
        )
        stored = jobs.submit(job)
        record.job_id = stored.id
        self.changed.add(record.step_id)
        if work.timeout is not None:
            record.wake_at = self.now + timedelta(seconds=work.timeout)
        self._job_progress(record, work, stored.status, stored.outputs, stored.status_message)

    def _poll_job(self, record: StepRun, work: Work) -> None:
        jobs = self.engine.jobs
        if jobs is None or record.job_id is None:
            return
        job = jobs.get(TenantId(self.spec.tenant), JobId(record.job_id))
        self._job_progress(record, work, job.status, job.outputs, job.status_message)

    def _job_progress(
        self, record: StepRun, work: Work, status: JobStatus, outputs: Mapping[str, str], message: str | None
    ) -> None:
        config = work.config
        assert isinstance(config, JobStepConfig)
        ready = status is JobStatus.COMPLETED or (
            config.job_type is JobType.SERVICE and status is JobStatus.RUNNING
        )
        if ready:
            where = f"steps[{record.step_id}].config.outputs"
            try:
                declared = self.engine.sandbox.render_value(config.outputs, self.context(record), where=where)
            except ValidationError as exc:
                self._failed_attempt(record, work, str(exc), transient=False)
                return
            self._completed(record, work, {**declared, **outputs, "job_id": record.job_id})
            return
        if status in _JOB_FAILED:
            self._failed_attempt(
                record, work, f"job {record.job_id} {status.value}: {message or ''}".rstrip(": ")
            )
            return
        if record.wake_at is not None and self.now >= record.wake_at:
            self._cancel_job(record, f"step timed out after {work.timeout:g} s")
            self._failed_attempt(record, work, f"timed out after {work.timeout:g} s")
            return
        wanted = StepStatus.WAITING if status in (JobStatus.PENDING, JobStatus.QUEUED) else StepStatus.RUNNING
        if record.status is not wanted:
            record.status = wanted
            record.message = f"job {record.job_id} {status.value}"
            self.changed.add(record.step_id)

    def _start_wait(self, record: StepRun, config: WaitStepConfig) -> None:
        seconds = config.duration_seconds if config.duration_seconds is not None else config.timeout_seconds
        record.wake_at = self.now + timedelta(seconds=seconds)
        record.message = (
            f"waiting {seconds:g} s"
            if config.wait_for_event is None
            else f"waiting for event {config.wait_for_event!r}"
        )
        self._wait_progress(record, config)

    def _wait_progress(self, record: StepRun, config: WaitStepConfig) -> None:
        if (
            config.wait_for_event is not None
            and self.event is not None
            and self.event[0] == config.wait_for_event
        ):
            self._completed(record, _WAIT_WORK, dict(self.event[1]))
        elif record.wake_at is not None and self.now >= record.wake_at:
            if config.wait_for_event is None:
                self._completed(record, _WAIT_WORK, {})
            else:
                self._end(
                    record,
                    StepStatus.FAILED,
                    error=f"event {config.wait_for_event!r} did not come within {config.timeout_seconds:g} s",
                )

    # Revisiting records that wait or run ------------------------------------------------------------
    def _revisit(self, record: StepRun) -> None:
        if record.parent is not None and record.step_id.endswith(_UNDO):
            work = self._undo_work(record.parent)
        elif record.parent is not None:
            loop = self.graph.steps[record.parent].config
            assert isinstance(loop, LoopStepConfig)
            work = body_work(loop)
        else:
            step = self.graph.steps[record.step_id]
            if isinstance(step.config, LoopStepConfig):
                self._loop_progress(record, step.config)
                return
            work = step_work(step)
        if record.status is StepStatus.WAITING and record.job_id is None:
            # A retry's backoff (wake_at) or a concurrency slot (no wake_at).
            due = self.now >= record.wake_at if record.wake_at is not None else self._slot_free(record)
            if due:
                self._attempt(record, work)
            return
        config = work.config
        if isinstance(config, JobStepConfig) and record.job_id is not None:
            self._poll_job(record, work)
        elif isinstance(config, WaitStepConfig):
            self._wait_progress(record, config)
        else:
            # Recorded as running but with no job or no outcome: the attempt was cut off (a crash
            # between its effect and its record). Redo it as the same attempt: the same key.
            self._execute(record, work)

    def _slot_free(self, record: StepRun) -> bool:
        """Whether a parallel group's concurrency limit lets ``record`` run now."""
        group = self.graph.group_of.get(record.step_id)
        if group is None:
            return True
        config = self.graph.steps[group].config
        assert isinstance(config, ParallelStepConfig)
        if config.max_concurrency is None:
            return True
        steps = self.run_state.steps
        busy = sum(1 for name in config.steps if name != record.step_id and _occupies_slot(steps[name]))
        return busy < config.max_concurrency

    # Ending attempts and steps ----------------------------------------------------------------------
    def _completed(self, record: StepRun, work: Work, outputs: dict[str, Any]) -> None:
        missing = [name for name in work.outputs if name not in outputs]
        if missing:
            self._failed_attempt(record, work, f"did not publish declared outputs {missing}")
            return
        self._end(record, StepStatus.COMPLETED, outputs=outputs)

    def _failed_attempt(self, record: StepRun, work: Work, error: str, *, transient: bool = False) -> None:
        """Retry within the allowance (backoff), else fail the record."""
        allowance = work.retries.max_retries
        delay = work.retries.delay(record.attempt)
        if transient and isinstance(work.config, ApiCallStepConfig):
            allowance = max(allowance, work.config.retry_count)
            delay = min(work.config.retry_backoff_seconds * 2 ** min(record.attempt - 1, 32), 300.0)
        if record.attempt <= allowance and not self.stopping:
            record.status = StepStatus.WAITING
            record.wake_at = self.now + timedelta(seconds=delay)
            record.message = f"attempt {record.attempt} failed: {error}; retry in {delay:g} s"
            record.error = error
            record.job_id = None
            self.changed.add(record.step_id)
            return
        self._end(record, StepStatus.FAILED, error=error)

    def _end(
        self,
        record: StepRun,
        status: StepStatus,
        *,
        outputs: dict[str, Any] | None = None,
        error: str | None = None,
        message: str | None = None,
    ) -> None:
        record.status = status
        record.ended_at = self.now
        record.wake_at = None
        if outputs is not None:
            record.outputs = outputs
        record.error = error
        if message is not None:
            record.message = message
        elif status is StepStatus.COMPLETED:
            record.message = None
        self.changed.add(record.step_id)
        if self._context is not None and record.parent is None:
            self._context["steps"][record.step_id] = {"outputs": record.outputs, "status": status.value}
        if status is StepStatus.FAILED:
            self._on_failure(record)
        self._released(record)

    def _released(self, record: StepRun) -> None:
        """Whoever waited for ``record`` may go on: dependents, a loop, parallel siblings."""
        step_id = record.step_id
        if record.parent is not None:
            if step_id.endswith(_UNDO):
                return
            parent = self.run_state.steps[record.parent]
            config = self.graph.steps[record.parent].config
            if parent.status is StepStatus.RUNNING and isinstance(config, LoopStepConfig):
                self._loop_progress(parent, config)
            return
        for dependent in self.graph.dependents.get(step_id, ()):
            left = self.remaining.get(dependent)
            if left is None:
                continue
            left -= 1
            self.remaining[dependent] = left
            if left == 0:
                self.ready.append(dependent)
        group = self.graph.group_of.get(step_id)
        if group is not None:
            config = self.graph.steps[group].config
            assert isinstance(config, ParallelStepConfig)
            for name in config.steps:
                sibling = self.run_state.steps[name]
                if (
                    sibling.status is StepStatus.WAITING
                    and sibling.wake_at is None
                    and sibling.job_id is None
                ):
                    self._attempt(sibling, step_work(self.graph.steps[name]))

    # Failure policy -----------------------------------------------------------------------------------
    def _stops_run(self, record: StepRun) -> bool:
        return self.spec.on_failure is not OnFailure.CONTINUE and not record.step_id.endswith(_UNDO)

    def _on_failure(self, record: StepRun) -> None:
        if not self._stops_run(record) or self.stopping:
            return
        self.stopping = True
        self._cancel_all(f"cancelled: step {record.step_id!r} failed")

    def _cancel_all(self, reason: str) -> None:
        self.stopping = True
        for other in list(self.run_state.steps.values()):
            if other.status.is_terminal or other.step_id.endswith(_UNDO):
                continue
            if other.job_id is not None:
                self._cancel_job(other, reason)
            other.status = StepStatus.CANCELLED
            other.ended_at = self.now
            other.wake_at = None
            other.message = reason
            self.changed.add(other.step_id)
        self.ready.clear()
        self._context = None

    def _cancel_job(self, record: StepRun, reason: str) -> None:
        jobs = self.engine.jobs
        if jobs is not None and record.job_id is not None:
            jobs.cancel(TenantId(self.spec.tenant), JobId(record.job_id), reason)

    def _maybe_compensate(self) -> None:
        """Under ``rollback``, once the run stopped, undo completed steps newest-first, one at a time."""
        if not self.stopping or self.spec.on_failure is not OnFailure.ROLLBACK:
            return
        steps = self.run_state.steps
        if any(not s.status.is_terminal for s in steps.values()):
            return
        for step_id in reversed(self.graph.order):
            step = self.graph.steps[step_id]
            if step.compensate is None or steps[step_id].status is not StepStatus.COMPLETED:
                continue
            undo_id = f"{step_id}{_UNDO}"
            if undo_id in steps:
                continue
            undo = StepRun(undo_id, parent=step_id)
            steps[undo_id] = undo
            self._attempt(undo, self._undo_work(step_id))
            if not undo.status.is_terminal:
                return  # one at a time: the next starts when this one has ended
            continue

    def _undo_work(self, step_id: str) -> Work:
        compensation = self.graph.steps[step_id].compensate
        assert compensation is not None
        return Work(compensation.type, compensation.config, RetryPolicy(), compensation.timeout)

    def _maybe_finish(self) -> None:
        self._maybe_compensate()
        steps = self.run_state.steps
        if any(not s.status.is_terminal for s in steps.values()):
            return
        graph_steps = [steps[s] for s in self.graph.order]
        failed = [s.step_id for s in steps.values() if s.status is StepStatus.FAILED and s.parent is None] + [
            s.step_id for s in steps.values() if s.status is StepStatus.FAILED and s.parent is not None
        ]
        done = sum(1 for s in graph_steps if s.status is StepStatus.COMPLETED)
        total = len(graph_steps)
        if not failed and all(s.status.satisfies for s in graph_steps):
            self._finish_run(RunStatus.SUCCEEDED, f"{done} of {total} steps completed")
            return
        policy = self.spec.on_failure
        summary = f"{done} of {total} steps completed; failed: {', '.join(failed) or 'none'}"
        if policy is OnFailure.ROLLBACK:
            undone = [s for s in steps.values() if s.step_id.endswith(_UNDO)]
            bad = [s.step_id for s in undone if s.status is not StepStatus.COMPLETED]
            if bad:
                self._finish_run(RunStatus.FAILED, f"{summary}; rollback incomplete: {', '.join(bad)}")
            else:
                self._finish_run(RunStatus.ROLLED_BACK, f"{summary}; {len(undone)} step(s) compensated")
        elif policy is OnFailure.CONTINUE and done:
            self._finish_run(RunStatus.PARTIAL, summary)
        else:
            self._finish_run(RunStatus.FAILED, summary)

    def _finish_run(self, status: RunStatus, message: str) -> None:
        run = self.run_state
        run.status = status
        run.ended_at = self.now
        run.message = message
        self.header_changed = True

    # Template context --------------------------------------------------------------------------------
    def context(self, record: StepRun | None = None) -> dict[str, Any]:
        """What templates see: ``params``, every step's ``outputs`` and ``status``, the ``run``,
        and for a loop iteration its ``item`` and ``loop.index``."""
        if self._context is None:
            run = self.run_state
            self._context = {
                "params": run.params,
                "steps": {
                    step_id: {
                        "outputs": run.steps[step_id].outputs,
                        "status": run.steps[step_id].status.value,
                    }
                    for step_id in self.graph.order
                },
                "run": {"id": run.run_id, "pipeline": run.pipeline_id, "version": run.pipeline_version},
            }
        if record is not None and record.index is not None:
            return {**self._context, "item": record.item, "loop": {"index": record.index}}
        return self._context

    def _step_context(self, record: StepRun) -> StepContext:
        run = self.run_state
        return StepContext(
            run_id=run.run_id,
            pipeline_id=run.pipeline_id,
            step_id=record.step_id,
            attempt=record.attempt,
            key=record.effect_key(run.run_id),
            params=run.params,
            now=self.now,
            item=record.item,
            index=record.index,
            tenant=run.tenant,
        )


def _acts(work: Work) -> bool:
    """Whether an attempt of ``work`` acts on the world (and so is written ahead)."""
    config = work.config
    if isinstance(config, TransformStepConfig):
        return config.function is not None
    return not isinstance(config, WaitStepConfig)


def _occupies_slot(record: StepRun) -> bool:
    """Running, or waiting with its job queued: either way it holds a parallel group's slot."""
    return record.status is StepStatus.RUNNING or (
        record.status is StepStatus.WAITING and record.job_id is not None
    )


_WAIT_WORK = Work(StepType.WAIT, WaitStepConfig(duration_seconds=0), RetryPolicy(), None)
