"""What one attempt of a leaf step does to the world, through the engine's ports.

The run's bookkeeping (:mod:`budcore.pipeline.advance`) decides *that* an attempt runs; this
module renders the step's templates and performs it: an HTTP request (``api_call``), a registered
function (``function``, ``transform``), a notification, or the Job a ``job`` step submits. Every
effect carries the attempt's idempotency key (:class:`~budcore.ports.pipeline_effects.StepContext`).
A failure is a :class:`~budcore.ports.pipeline_effects.StepFailure` (a user function's exception
too: a bug in a step fails that step, never the engine).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from budcore.domain.errors import BudcoreError
from budcore.domain.events import PipelineNotified
from budcore.domain.ids import TenantId
from budcore.domain.job import Job
from budcore.pipeline.functions import FunctionRegistry, as_outputs
from budcore.pipeline.jobs import job_for_step
from budcore.pipeline.model import (
    ApiCallStepConfig,
    FunctionStepConfig,
    JobStepConfig,
    LoopStepConfig,
    NotificationStepConfig,
    PipelineSpec,
    RetryPolicy,
    StepConfig,
    StepSpec,
    StepType,
    TransformStepConfig,
)
from budcore.pipeline.responses import classify, outputs_from
from budcore.pipeline.state import PipelineRun
from budcore.pipeline.templates import Sandbox
from budcore.ports.event_sink import EventSink
from budcore.ports.pipeline_effects import (
    ApiCaller,
    HttpRequest,
    Notification,
    Notifier,
    StepContext,
    StepFailure,
)

__all__ = ["EventSinkNotifier", "RecordingNotifier", "StepEffects", "Work", "body_work", "step_work"]


@dataclass(frozen=True, slots=True)
class Work:
    """What one record executes: a graph step, a loop iteration or a compensating step."""

    type: StepType
    config: StepConfig
    retries: RetryPolicy
    timeout: float | None
    outputs: tuple[str, ...] = ()


def step_work(step: StepSpec) -> Work:
    return Work(step.type, step.config, step.retries, step.timeout, step.outputs)


def body_work(config: LoopStepConfig) -> Work:
    body = config.step
    return Work(body.type, body.config, body.retries, body.timeout)


class RecordingNotifier:
    """A notifier that keeps what it was given, one per idempotency key (the default when none
    is wired: a service wires its real channel)."""

    def __init__(self) -> None:
        self.sent: dict[str, Notification] = {}

    def notify(self, notification: Notification) -> None:
        self.sent.setdefault(notification.key, notification)


class EventSinkNotifier:
    """The notifier of an engine given an event sink: each notification becomes a
    :class:`~budcore.domain.events.PipelineNotified` event, delivered like every other event (a
    database store's outbox, a bus); consumers deduplicate by its ``key``."""

    def __init__(self, sink: EventSink) -> None:
        self.sink = sink

    def notify(self, notification: Notification) -> None:
        self.sink.publish(
            [
                PipelineNotified(
                    tenant=TenantId(notification.tenant),
                    pipeline_id=notification.pipeline_id,
                    run_id=notification.run_id,
                    step_id=notification.step_id,
                    key=notification.key,
                    channel=notification.channel,
                    recipients=notification.recipients,
                    severity=notification.severity,
                    message=notification.message,
                    at=notification.at,
                )
            ]
        )


class StepEffects:
    """The ports leaf steps act through, and how each step type uses them."""

    def __init__(
        self,
        *,
        sandbox: Sandbox,
        http: Callable[[], ApiCaller],
        functions: Callable[[], FunctionRegistry],
        notifier: Notifier,
    ) -> None:
        self.sandbox = sandbox
        self._http = http
        self._functions = functions
        self.notifier = notifier

    def run(self, config: StepConfig, context: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        """Perform a synchronous step; its outputs, or ``StepFailure``/``ValidationError``."""
        where = f"steps[{ctx.step_id}].config"
        render = self.sandbox.render_value
        if isinstance(config, ApiCallStepConfig):
            return self._api_call(config, context, ctx, where)
        if isinstance(config, FunctionStepConfig):
            args = render(config.args, context, where=f"{where}.args")
            return as_outputs(self._call(config.function, ctx, args))
        if isinstance(config, TransformStepConfig):
            outputs = dict(render(config.values, context, where=f"{where}.values"))
            if config.function is not None:
                value = render(config.input, context, where=f"{where}.input")
                outputs.update(as_outputs(self._call(config.function, ctx, {"value": value})))
            return outputs
        if isinstance(config, NotificationStepConfig):
            message = self.sandbox.render(config.message, context, where=f"{where}.message")
            self.notifier.notify(
                Notification(
                    tenant=ctx.tenant,
                    channel=config.channel,
                    recipients=config.recipients,
                    message=message,
                    severity=config.severity,
                    run_id=ctx.run_id,
                    pipeline_id=ctx.pipeline_id,
                    step_id=ctx.step_id,
                    key=ctx.key,
                    at=ctx.now,
                )
            )
            return {"message": message, "channel": config.channel}
        raise StepFailure(f"a {type(config).__name__} cannot run as a leaf step")

    def _api_call(
        self, config: ApiCallStepConfig, context: Mapping[str, Any], ctx: StepContext, where: str
    ) -> dict[str, Any]:
        render = self.sandbox.render_value
        headers = render(config.headers, context, where=f"{where}.headers")
        request = HttpRequest(
            method=config.method,
            url=str(render(config.url, context, where=f"{where}.url")),
            headers={str(k): str(v) for k, v in headers.items()},
            body=render(config.body, context, where=f"{where}.body"),
            timeout_s=config.timeout_seconds,
            max_response_bytes=config.max_response_bytes,
            key=ctx.key,
        )
        response = self._http().call(request)
        failure = classify(response, config.expect_status, request)
        if failure is not None:
            raise failure
        return outputs_from(response)

    def _call(self, name: str, ctx: StepContext, args: Mapping[str, Any]) -> Any:
        try:
            function = self._functions().get(name)
        except BudcoreError as exc:
            raise StepFailure(str(exc)) from None
        try:
            return function(ctx, **args)
        except StepFailure:
            raise
        except Exception as exc:  # a user function's bug fails its step, never the engine
            raise StepFailure(f"function {name!r} raised {type(exc).__name__}: {exc}") from None

    def job(
        self,
        config: JobStepConfig,
        context: Mapping[str, Any],
        ctx: StepContext,
        run: PipelineRun,
        spec: PipelineSpec,
    ) -> Job:
        """The Job of this attempt of a ``job`` step, its templates rendered."""
        where = f"steps[{ctx.step_id}].config"
        render = self.sandbox.render_value
        labels = render(config.labels, context, where=f"{where}.labels")
        rendered = config.model_copy(
            update={
                "spec": render(config.spec, context, where=f"{where}.spec"),
                "labels": {str(k): str(v) for k, v in labels.items()},
            }
        )
        return job_for_step(
            rendered,
            run_id=run.run_id,
            pipeline_id=run.pipeline_id,
            step_id=ctx.step_id,
            key=ctx.key,
            tenant=spec.tenant,
            project=spec.project,
            run_deadline=run.deadline,
            name=f"{run.pipeline_id}-{ctx.step_id}",
            local_queue=spec.local_queue,
            now=ctx.now,
        )
