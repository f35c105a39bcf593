"""Pipeline steps: the nine step types, each with its validated config, and the step itself.

Only ``job`` steps create jobs for the scheduler; ``api_call``, ``function``, ``notification`` and
``transform`` run in the pipeline engine; ``condition``, ``parallel``, ``wait`` and ``loop`` steer
the flow. The config shapes and defaults follow the seeds' schema (``JobStepConfig``,
``ApiCallStepConfig`` with a 30 s timeout and 3 retries, ``ConditionStepConfig`` with then/else,
``WaitStepConfig`` with a 3600 s timeout, ``NotificationStepConfig``); ``function``,
``transform``, ``parallel`` and ``loop`` are defined in the same spirit. The seeds' upper-case
spellings (``API_CALL``, ``HIGH``, ``SERVICE``) and field names (``step_type``, ``condition``) are
accepted too.

A step's ``config`` is validated by the model of its ``type`` (a tagged union), so every error
sits at its own field path (``steps[3].config.gpu_count``). Only string fields are templated
(``{{ params.x }}``): a number field is checked when the file is read, not when the run renders.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from budcore.domain.durations import parse_duration
from budcore.domain.job import DeploymentType, JobType
from budcore.domain.priority import JobPriority
from budcore.domain.timeutil import ensure_utc

__all__ = [
    "LEAF_TYPES",
    "ApiCallStepConfig",
    "Compensation",
    "ConditionStepConfig",
    "FunctionStepConfig",
    "JobStepConfig",
    "LoopBody",
    "LoopStepConfig",
    "NotificationStepConfig",
    "ParallelStepConfig",
    "RetryPolicy",
    "StepConfig",
    "StepSpec",
    "StepType",
    "TransformStepConfig",
    "WaitStepConfig",
]

# Step ids: what people write in ``depends_on`` and ``steps['...']``; no dots or brackets, so
# template paths stay unambiguous.
_STEP_ID = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$")
# The most steps one pipeline may declare, and the most iterations one loop may expand to: far
# above real pipelines, low enough that a hostile file cannot make validation or a run unbounded.
MAX_STEPS = 10_000
MAX_LOOP_ITEMS = 10_000
MAX_RETRIES = 100
MAX_SECONDS = 366 * 86_400.0


class StepType(StrEnum):
    JOB = "job"  # resource step: creates a Job for the scheduler
    API_CALL = "api_call"  # functional steps: run in the pipeline engine, no Job
    FUNCTION = "function"
    NOTIFICATION = "notification"
    TRANSFORM = "transform"
    CONDITION = "condition"  # control steps: steer the flow
    PARALLEL = "parallel"
    WAIT = "wait"
    LOOP = "loop"


def lower_enum(value: object) -> object:
    """Accept the seeds' upper-case enum spellings (``API_CALL``, ``HIGH``, ``SERVICE``)."""
    return value.lower() if isinstance(value, str) else value


def _seconds(field: str, *, positive: bool = False) -> Any:
    def parse(value: object) -> float:
        seconds = parse_duration(value, field, positive=positive)
        if seconds > MAX_SECONDS:
            raise ValueError(f"{seconds:g} s is more than a year: the most a {field} may be")
        return seconds

    return BeforeValidator(parse)


def _optional_seconds(field: str, *, positive: bool = False) -> Any:
    inner = _seconds(field, positive=positive).func

    def parse(value: object) -> float | None:
        return None if value is None else float(inner(value))

    return BeforeValidator(parse)


def _step_id(value: str) -> str:
    if not _STEP_ID.match(value):
        raise ValueError(
            f"invalid step id {value!r}: use letters, digits, '-' or '_', starting and ending with a "
            "letter or digit (at most 63 characters)"
        )
    return value


StepId = Annotated[str, AfterValidator(_step_id)]
Seconds = Annotated[float, _seconds("duration")]
OptSeconds = Annotated[float | None, _optional_seconds("duration")]
PositiveSeconds = Annotated[float, _seconds("duration", positive=True)]
OptPositiveSeconds = Annotated[float | None, _optional_seconds("duration", positive=True)]


# The key a step's ``type`` is carried under into its ``config`` while validating, so that the
# config is checked by the model for that type (a tagged union) with every error at its own path.
KIND_KEY = "__step_type__"


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _drop_kind(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and KIND_KEY in data:
            return {k: v for k, v in data.items() if k != KIND_KEY}
        return data


class RetryPolicy(_Config):
    """Retries of a failed attempt: ``max_retries`` more attempts, the n-th after
    ``min(backoff × factor^(n-1), max_backoff)`` seconds (exponential, as the seeds' retry table)."""

    max_retries: int = Field(default=0, ge=0, le=MAX_RETRIES)
    backoff: Seconds = 10.0
    factor: float = Field(default=2.0, ge=1.0, le=10.0)
    max_backoff: Seconds = 600.0

    def delay(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (1-based)."""
        return float(min(self.backoff * self.factor ** min(retry - 1, 64), self.max_backoff))


NO_RETRIES = RetryPolicy()


class JobStepConfig(_Config):
    """A step that creates a Job (the seeds' ``JobStepConfig``); ``spec`` and ``outputs`` are templated.

    The job's priority, accelerator (``gpu_type``, a catalog slug), deadline and time window are
    carried over to the job the scheduler sees. ``outputs`` are values the step publishes once the
    job is ready (a ``service`` job running) or completed (``batch``/``training``), e.g. the
    endpoint URL a deployment is reached at; outputs the job itself reports take precedence.
    """

    step_type: ClassVar[StepType] = StepType.JOB

    job_type: Annotated[JobType, BeforeValidator(lower_enum)] = JobType.BATCH
    deployment_type: Annotated[DeploymentType | None, BeforeValidator(lower_enum)] = None
    component_ref: str | None = None
    spec: dict[str, Any] = Field(default_factory=dict)
    local_queue: str | None = None
    gpu_type: str | None = None
    gpu_count: int = Field(default=0, ge=0, le=4096)
    gpu_resource: str = "nvidia.com/gpu"
    cpu_cores: float = Field(default=1.0, gt=0, le=1_000_000)
    memory_gb: float = Field(default=4.0, gt=0, le=1_000_000_000)
    pods: int = Field(default=1, ge=1, le=100_000)
    estimated_duration_seconds: OptPositiveSeconds = None
    max_duration_seconds: OptPositiveSeconds = None
    time_window_start: str | None = None
    time_window_end: str | None = None
    time_window_timezone: str = "UTC"
    deadline: datetime | None = None
    priority: Annotated[JobPriority, BeforeValidator(lower_enum)] = JobPriority.NORMAL
    preemptible: bool = True
    labels: dict[str, str] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> JobStepConfig:
        if (self.time_window_start is None) != (self.time_window_end is None):
            raise ValueError("time_window_start and time_window_end go together")
        if (
            self.max_duration_seconds is not None
            and self.estimated_duration_seconds is not None
            and self.estimated_duration_seconds > self.max_duration_seconds
        ):
            raise ValueError("estimated_duration_seconds exceeds max_duration_seconds")
        if self.deadline is not None:
            object.__setattr__(self, "deadline", ensure_utc(self.deadline, "deadline"))
        return self


class ApiCallStepConfig(_Config):
    """An HTTP request (the seeds' ``ApiCallStepConfig``): ``url``, ``headers`` and ``body`` are templated.

    A response with a status outside ``expect_status`` (default: any 2xx) fails the attempt; a
    connection error, a timeout, 429 or 5xx is retried ``retry_count`` times with exponential backoff
    inside the step. The step's outputs are the JSON object the server answered (its keys), plus
    ``status_code`` (and ``body`` when the answer is not a JSON object).
    """

    step_type: ClassVar[StepType] = StepType.API_CALL

    url: str = Field(min_length=1)
    method: Annotated[
        Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"], BeforeValidator(lambda v: str(v).upper())
    ] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    timeout_seconds: PositiveSeconds = 30.0
    retry_count: int = Field(default=3, ge=0, le=MAX_RETRIES)
    retry_backoff_seconds: Seconds = 1.0
    expect_status: tuple[int, ...] = ()
    max_response_bytes: int = Field(default=1_048_576, ge=1, le=64 * 1_048_576)


class FunctionStepConfig(_Config):
    """A Python callable registered through the ``budcore_register_pipeline_functions`` hook.

    It is called with the rendered ``args`` as keyword arguments and a
    :class:`~budcore.pipeline.functions.StepContext`; it returns its outputs (a mapping).
    """

    step_type: ClassVar[StepType] = StepType.FUNCTION

    function: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class TransformStepConfig(_Config):
    """Lightweight data shaping: ``values`` are rendered into the step's outputs, and ``function``
    (a registered callable, optional) is applied to the rendered ``input``; its mapping result is
    merged into the outputs (any other result is published as ``result``)."""

    step_type: ClassVar[StepType] = StepType.TRANSFORM

    input: Any = None
    function: str | None = None
    values: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _does_something(self) -> TransformStepConfig:
        if self.function is None and not self.values:
            raise ValueError("a transform needs 'values' to publish or a 'function' to apply")
        return self


class NotificationStepConfig(_Config):
    """A message to people (the seeds' ``NotificationStepConfig``), sent through the notifier port."""

    step_type: ClassVar[StepType] = StepType.NOTIFICATION

    channel: str = Field(min_length=1)
    recipients: tuple[str, ...] = ()
    message: str = Field(min_length=1)
    severity: Annotated[Literal["info", "warning", "error"], BeforeValidator(lower_enum)] = "info"


class ConditionStepConfig(_Config):
    """If/else: the steps of the branch not taken are skipped (the seeds' ``ConditionStepConfig``).

    Steps named in ``then_steps``/``else_steps`` wait for the condition step (the dependency is
    implied). A skipped step satisfies the dependencies of the steps after it, as in Argo, so a join
    step runs either way (``steps['x'].outputs.url | default('')`` reads a skipped step safely).
    """

    step_type: ClassVar[StepType] = StepType.CONDITION

    expression: str = Field(min_length=1)
    then_steps: tuple[StepId, ...] = ()
    else_steps: tuple[StepId, ...] = ()

    @model_validator(mode="after")
    def _disjoint(self) -> ConditionStepConfig:
        both = sorted(set(self.then_steps) & set(self.else_steps))
        if both:
            raise ValueError(f"steps {both} are in both then_steps and else_steps")
        return self


class ParallelStepConfig(_Config):
    """Fan out, then join: the ``steps`` listed start together once this step's own dependencies are
    met (they inherit them), at most ``max_concurrency`` at a time, and this step completes when all
    of them have ended (its outputs map each branch to its outputs); it fails if one failed."""

    step_type: ClassVar[StepType] = StepType.PARALLEL

    steps: tuple[StepId, ...] = Field(min_length=1)
    max_concurrency: int | None = Field(default=None, ge=1)


class WaitStepConfig(_Config):
    """Pause for ``duration_seconds`` or until the named event arrives, at most ``timeout_seconds``
    (the seeds' ``WaitStepConfig``); an event that does not come in time fails the step."""

    step_type: ClassVar[StepType] = StepType.WAIT

    duration_seconds: OptSeconds = None
    wait_for_event: str | None = Field(default=None, min_length=1)
    timeout_seconds: PositiveSeconds = 3600.0

    @model_validator(mode="after")
    def _one_kind(self) -> WaitStepConfig:
        if (self.duration_seconds is None) == (self.wait_for_event is None):
            raise ValueError("a wait step waits for either duration_seconds or wait_for_event")
        return self


def _tag_config(data: Any) -> Any:
    """Carry a step's ``type`` into its ``config`` (see :data:`KIND_KEY`)."""
    if not isinstance(data, Mapping):
        return data
    try:
        step_type = StepType(lower_enum(data.get("type")))  # type: ignore[arg-type]
    except ValueError:
        return data  # the type field reports itself
    config = data.get("config")
    if config is None:
        config = {}
    if isinstance(config, Mapping):
        config = {**config, KIND_KEY: step_type.value}
    elif _config_tag(config) != step_type.value:
        raise ValueError(f"config is a {type(config).__name__}, not the config of a {step_type.value} step")
    return {**data, "config": config}


def _config_tag(value: object) -> str | None:
    if isinstance(value, Mapping):
        kind = value.get(KIND_KEY)
        return str(kind) if kind is not None else None
    tag = getattr(type(value), "step_type", None)
    return tag.value if isinstance(tag, StepType) else None


# Steps that do one thing (no children): what a loop body or a compensating step may be.
LeafConfig = Annotated[
    Annotated[JobStepConfig, Tag("job")]
    | Annotated[ApiCallStepConfig, Tag("api_call")]
    | Annotated[FunctionStepConfig, Tag("function")]
    | Annotated[TransformStepConfig, Tag("transform")]
    | Annotated[NotificationStepConfig, Tag("notification")]
    | Annotated[WaitStepConfig, Tag("wait")],
    Discriminator(_config_tag),
]


class LoopBody(_Config):
    """What a loop runs per item: a step without id or dependencies (``item`` and ``loop.index`` are
    in its templates; only string fields can be templated, as everywhere)."""

    type: Annotated[StepType, BeforeValidator(lower_enum)]
    config: LeafConfig
    retries: RetryPolicy = NO_RETRIES
    timeout: OptPositiveSeconds = None

    @model_validator(mode="before")
    @classmethod
    def _tag(cls, data: Any) -> Any:
        return _tag_config(data)


class LoopStepConfig(_Config):
    """For each of ``items`` (a list, or a template rendering to one), run ``step`` once; the loop
    completes when every iteration has, with outputs ``{"results": [...], "count": n}``."""

    step_type: ClassVar[StepType] = StepType.LOOP

    items: Any
    step: LoopBody
    max_concurrency: int | None = Field(default=None, ge=1)
    max_items: int = Field(default=1000, ge=1, le=MAX_LOOP_ITEMS)

    @model_validator(mode="after")
    def _items_shape(self) -> LoopStepConfig:
        if not isinstance(self.items, list | tuple | str):
            raise ValueError("items must be a list or a template that renders to a list")
        if isinstance(self.items, list | tuple) and len(self.items) > self.max_items:
            raise ValueError(f"{len(self.items)} items exceed max_items ({self.max_items})")
        return self


StepConfig = (
    JobStepConfig
    | ApiCallStepConfig
    | FunctionStepConfig
    | TransformStepConfig
    | NotificationStepConfig
    | ConditionStepConfig
    | ParallelStepConfig
    | WaitStepConfig
    | LoopStepConfig
)

TypedStepConfig = Annotated[
    Annotated[JobStepConfig, Tag("job")]
    | Annotated[ApiCallStepConfig, Tag("api_call")]
    | Annotated[FunctionStepConfig, Tag("function")]
    | Annotated[TransformStepConfig, Tag("transform")]
    | Annotated[NotificationStepConfig, Tag("notification")]
    | Annotated[ConditionStepConfig, Tag("condition")]
    | Annotated[ParallelStepConfig, Tag("parallel")]
    | Annotated[WaitStepConfig, Tag("wait")]
    | Annotated[LoopStepConfig, Tag("loop")],
    Discriminator(_config_tag),
]

LEAF_TYPES = frozenset(
    {
        StepType.JOB,
        StepType.API_CALL,
        StepType.FUNCTION,
        StepType.TRANSFORM,
        StepType.NOTIFICATION,
        StepType.WAIT,
    }
)


class Compensation(_Config):
    """The step that undoes a completed step when a run rolls back (``on_failure: rollback``)."""

    type: Annotated[StepType, BeforeValidator(lower_enum)]
    config: LeafConfig
    timeout: OptPositiveSeconds = None

    @model_validator(mode="before")
    @classmethod
    def _tag(cls, data: Any) -> Any:
        return _tag_config(data)


class StepSpec(BaseModel):
    """One step: type, typed config, dependencies, an optional ``when``, retries, timeout, outputs.

    ``outputs`` declares the names the step publishes; a step that completes without one of them
    fails (so a later step never renders against a missing value by surprise).
    ``estimated_duration`` feeds schedule estimates of non-job steps (job steps use the job's).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: StepId
    name: str | None = Field(default=None, max_length=253)
    type: Annotated[StepType, BeforeValidator(lower_enum)]
    config: TypedStepConfig
    depends_on: tuple[StepId, ...] = ()
    when: str | None = Field(default=None, min_length=1)
    retries: RetryPolicy = NO_RETRIES
    timeout: OptPositiveSeconds = None
    outputs: tuple[str, ...] = ()
    compensate: Compensation | None = None
    estimated_duration: OptSeconds = None
    order: int | None = None  # the seeds' display order; ignored by execution

    @model_validator(mode="before")
    @classmethod
    def _prepare(cls, data: Any) -> Any:
        """Accept the seeds' spelling (``step_type``, ``condition``; budcore writes ``type`` and
        ``when``; either, not both), then tag the config with the step's type so that it is
        validated by that type's model."""
        if isinstance(data, Mapping):
            for seeds, ours in (("step_type", "type"), ("condition", "when")):
                if seeds in data:
                    if ours in data:
                        raise ValueError(f"give the step's {ours!r} once: {ours!r} or {seeds!r}")
                    data = {(ours if k == seeds else k): v for k, v in data.items()}
        return _tag_config(data)

    @model_validator(mode="after")
    def _own_rules(self) -> StepSpec:
        if self.id in self.depends_on:
            raise ValueError(f"step {self.id!r} depends on itself")
        if len(set(self.depends_on)) != len(self.depends_on):
            raise ValueError(f"depends_on lists a step twice: {list(self.depends_on)}")
        if len(set(self.outputs)) != len(self.outputs):
            raise ValueError(f"outputs lists a name twice: {list(self.outputs)}")
        if self.type in (StepType.CONDITION, StepType.PARALLEL) and self.retries.max_retries:
            raise ValueError(f"a {self.type.value} step has nothing to retry")
        return self

    @property
    def title(self) -> str:
        return self.name or self.id
