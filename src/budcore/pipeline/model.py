"""What a pipeline *is*: its parameters, trigger, failure policy and steps, validated on construction.

A pipeline orchestrates steps with dependencies (the seeds' unified architecture, Part 5): typed
parameters with defaults, a trigger (manual, a cron schedule, an event, another pipeline's end), a
timeout and a deadline, a failure policy, and its steps (:mod:`budcore.pipeline.steps`, whose names
are re-exported here).

The models here check each field and each step on its own; what needs the whole graph (cycles,
unknown dependencies, duplicate ids, a step reading another's outputs without depending on it) is
:mod:`budcore.pipeline.dag`'s, so that every problem of a file is reported in one pass.

A pipeline ``version`` is immutable once a run of it exists: stores refuse to change the
definition of a version that has runs (see :class:`budcore.ports.pipeline_store.PipelineStore`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from budcore.domain.durations import parse_duration
from budcore.domain.errors import ValidationError
from budcore.domain.ids import check_name
from budcore.domain.timeutil import ensure_utc
from budcore.pipeline.cron import check_cron
from budcore.pipeline.steps import (
    LEAF_TYPES,
    MAX_SECONDS,
    MAX_STEPS,
    ApiCallStepConfig,
    Compensation,
    ConditionStepConfig,
    FunctionStepConfig,
    JobStepConfig,
    LoopBody,
    LoopStepConfig,
    NotificationStepConfig,
    OptPositiveSeconds,
    ParallelStepConfig,
    RetryPolicy,
    StepConfig,
    StepSpec,
    StepType,
    TransformStepConfig,
    WaitStepConfig,
    lower_enum,
)

__all__ = [
    "LEAF_TYPES",
    "MAX_SECONDS",
    "ApiCallStepConfig",
    "Compensation",
    "ConditionStepConfig",
    "FunctionStepConfig",
    "JobStepConfig",
    "LoopBody",
    "LoopStepConfig",
    "NotificationStepConfig",
    "OnFailure",
    "ParallelStepConfig",
    "ParameterSpec",
    "PipelineSpec",
    "RetryPolicy",
    "StepConfig",
    "StepSpec",
    "StepType",
    "TransformStepConfig",
    "Trigger",
    "TriggerType",
    "WaitStepConfig",
]


class TriggerType(StrEnum):
    MANUAL = "manual"  # started by a user or an API call
    SCHEDULE = "schedule"  # a cron expression
    EVENT = "event"  # a named event (webhook, data arrival)
    AFTER = "after"  # another pipeline's run ended


class OnFailure(StrEnum):
    """What a failed step does to the rest of the run.

    - ``fail_fast``: cancel what runs and what waits; the run fails at once;
    - ``continue``: independent branches run to their end; steps downstream of the failure are
      cancelled; the run ends ``partial`` (some steps completed) or ``failed``;
    - ``rollback``: like ``fail_fast``, then the declared compensating steps of the completed
      steps run in reverse topological order; the run ends ``rolled_back``.
    """

    FAIL_FAST = "fail_fast"
    CONTINUE = "continue"
    ROLLBACK = "rollback"


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _parameter_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return "string"


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "list": (list, tuple),
    "object": (dict,),
}


class ParameterSpec(_Config):
    """A typed pipeline parameter. A parameter without a default is required when a run starts."""

    type: Literal["string", "integer", "number", "boolean", "list", "object"] = "string"
    default: Any = None
    description: str = ""
    choices: tuple[Any, ...] = ()

    @model_validator(mode="after")
    def _default_fits(self) -> ParameterSpec:
        if self.default is not None:
            self.check(self.default, "default")
        return self

    @property
    def required(self) -> bool:
        return self.default is None

    def check(self, value: object, where: str) -> object:
        """``value`` if it has this parameter's type (an int is a number; a bool is not an int)."""
        allowed = _PYTHON_TYPES[self.type]
        if isinstance(value, bool) and self.type != "boolean":
            allowed = ()
        if not isinstance(value, allowed):
            raise ValidationError(f"expected {self.type}, got {type(value).__name__} {value!r}", path=where)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError(f"expected a finite number, got {value!r}", path=where)
        if self.choices and value not in self.choices:
            raise ValidationError(f"{value!r} is not one of {list(self.choices)}", path=where)
        return list(value) if isinstance(value, tuple) else value


def _parameter(value: object) -> object:
    """A bare value is shorthand for a parameter with that default (the seeds' ``parameters``)."""
    if isinstance(value, ParameterSpec):
        return value
    if isinstance(value, Mapping) and "type" in value:
        return value
    if value is None:
        raise ValueError("a parameter needs a default value, or a mapping with its 'type'")
    return {"type": _parameter_type(value), "default": value}


def _trigger_type(value: object) -> object:
    """The seeds spell the cron trigger ``scheduled``; budcore ``schedule``."""
    value = lower_enum(value)
    return "schedule" if value == "scheduled" else value


class Trigger(_Config):
    """When runs start: by hand, on a cron schedule, on a named event, or after another pipeline."""

    type: Annotated[TriggerType, BeforeValidator(_trigger_type)] = TriggerType.MANUAL
    cron: str | None = None
    timezone: str = "UTC"
    event: str | None = None
    pipeline: str | None = None
    on: tuple[Literal["succeeded", "partial", "failed", "any"], ...] = ("succeeded",)

    @model_validator(mode="after")
    def _fields_for_type(self) -> Trigger:
        needs = {TriggerType.SCHEDULE: "cron", TriggerType.EVENT: "event", TriggerType.AFTER: "pipeline"}
        for kind, name in needs.items():
            given = getattr(self, name) is not None
            if kind == self.type and not given:
                raise ValueError(f"trigger type '{kind.value}' needs '{name}'")
            if kind != self.type and given:
                raise ValueError(f"'{name}' belongs to trigger type '{kind.value}', not '{self.type.value}'")
        if self.cron is not None:
            check_cron(self.cron, self.timezone)
        return self


def _pipeline_deadline(value: object) -> object:
    """An absolute instant, or a duration counted from the run's start (``deadline: 6h``)."""
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str) and (value.startswith("P") or "T" in value or value.count("-") >= 2):
        return value  # an ISO 8601 date-time or duration (a stored spec), parsed by pydantic
    return timedelta(seconds=parse_duration(value, "deadline", positive=True))


class PipelineSpec(BaseModel):
    """A pipeline definition (the seeds' ``Pipeline`` with its ``PipelineStep``s)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[str, AfterValidator(lambda v: check_name(v, "id"))]
    name: str = Field(default="", max_length=253)
    description: str = ""
    tenant: Annotated[str, AfterValidator(lambda v: check_name(v, "tenant"))] = "default"
    project: Annotated[str, AfterValidator(lambda v: check_name(v, "project"))] = "default"
    version: int = Field(default=1, ge=1)
    parameters: dict[str, Annotated[ParameterSpec, BeforeValidator(_parameter)]] = Field(default_factory=dict)
    trigger: Trigger = Field(default_factory=Trigger)
    timeout: OptPositiveSeconds = None
    deadline: Annotated[datetime | timedelta | None, BeforeValidator(_pipeline_deadline)] = None
    on_failure: Annotated[OnFailure, BeforeValidator(lower_enum)] = OnFailure.FAIL_FAST
    # The LocalQueue of job steps that name none (Kueue's defaulting queue name, "default").
    local_queue: str = Field(default="default", min_length=1, max_length=253)
    labels: dict[str, str] = Field(default_factory=dict)
    # Size is checked in the validator: a tuple min_length would add a spurious "at least 1 item"
    # error whenever one of the steps is invalid.
    steps: tuple[StepSpec, ...]

    @model_validator(mode="after")
    def _defaults(self) -> PipelineSpec:
        if not self.steps:
            raise ValueError("a pipeline needs at least one step")
        if len(self.steps) > MAX_STEPS:
            raise ValueError(f"{len(self.steps)} steps exceed the limit of {MAX_STEPS}")
        if not self.name:
            object.__setattr__(self, "name", self.id)
        if isinstance(self.deadline, datetime):
            object.__setattr__(self, "deadline", ensure_utc(self.deadline, "deadline"))
        return self

    def step(self, step_id: str) -> StepSpec:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def resolve_parameters(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The run's parameters: ``given`` checked against their types, defaults for the rest.

        Unknown names, missing required parameters and wrong types are all reported at once.
        """
        from budcore.domain.errors import ValidationErrors

        given = dict(given or {})
        errors: list[ValidationError] = []
        for name in sorted(set(given) - set(self.parameters)):
            known = ", ".join(sorted(self.parameters)) or "none"
            errors.append(ValidationError(f"unknown parameter (known: {known})", path=f"params.{name}"))
        values: dict[str, Any] = {}
        for name, spec in self.parameters.items():
            if name in given:
                try:
                    values[name] = spec.check(given[name], f"params.{name}")
                except ValidationError as exc:
                    errors.append(exc)
            elif spec.required:
                errors.append(ValidationError("required parameter has no value", path=f"params.{name}"))
            else:
                values[name] = spec.default
        if errors:
            raise ValidationErrors(errors)
        return values

    def deadline_for(self, started_at: datetime) -> datetime | None:
        """The run's absolute deadline when it starts at ``started_at``."""
        if isinstance(self.deadline, timedelta):
            return started_at + self.deadline
        return self.deadline
