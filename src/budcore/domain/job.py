"""The Job: budcore's atomic scheduling unit (the seeds' Job schema, §5.1.1).

A job is immutable: a change of state produces a new ``Job`` (``model_copy``) and a domain event,
which keeps snapshots consistent and lets stores do optimistic concurrency on ``version``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    WithJsonSchema,
    field_serializer,
    field_validator,
    model_validator,
)

from budcore.domain.accelerators import one_form
from budcore.domain.errors import ValidationError
from budcore.domain.ids import JobId, ProjectId, TenantId, check_name, new_job_id
from budcore.domain.podspec import NodeSelector, NodeSelectorTerm, Toleration
from budcore.domain.priority import (
    PRIORITY_CLASS_LABEL,
    PRIORITY_MAX,
    PRIORITY_MIN,
    JobPriority,
    check_critical_value,
)
from budcore.domain.quantity import parse_quantity
from budcore.domain.resources import NVIDIA_GPU, ResourceVector, device_request
from budcore.domain.timeutil import ensure_utc, utcnow
from budcore.domain.timewindow import TimeWindow


class JobType(StrEnum):
    SERVICE = "service"  # long-running deployment (model endpoint, database, UI)
    BATCH = "batch"  # run to completion (batch inference, data processing)
    TRAINING = "training"  # training / fine-tuning, checkpoints, resumable


class JobStatus(StrEnum):
    PENDING = "pending"  # created, not yet handed to a queue
    QUEUED = "queued"  # in a LocalQueue, waiting for quota
    ADMITTED = "admitted"  # quota reserved (Kueue: QuotaReserved + Admitted), not started yet
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PREEMPTED = "preempted"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def holds_quota(self) -> bool:
        """Admitted and running jobs hold quota; every other state holds none."""
        return self in (JobStatus.ADMITTED, JobStatus.RUNNING)


TERMINAL_STATES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.PREEMPTED})


class BudgetAction(StrEnum):
    """What happens when a running job's cost reaches its ``budget_limit`` (or a tenant's spend its
    budget): ``warn`` records an event at 80% and at 100% and lets it run; ``pause`` preempts it
    (a checkpoint is its resume point) and holds it until the budget is raised or the period
    rolls; ``cancel`` stops it for good (the seeds' "fail if cost exceeds")."""

    WARN = "warn"
    PAUSE = "pause"
    CANCEL = "cancel"


class DeploymentType(StrEnum):
    """How a job's ``spec`` is deployed (the seeds' DeploymentType): a Helm chart, a container
    image, or a model served by an inference engine."""

    HELM = "helm"
    DOCKER = "docker"
    MODEL = "model"


class JobSource(StrEnum):
    DIRECT = "direct"
    PIPELINE = "pipeline"
    USECASE = "usecase"


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else ensure_utc(value)


def _non_negative(value: timedelta | None) -> timedelta | None:
    if value is not None and value < timedelta(0):
        raise ValueError("duration must not be negative")
    return value


def _tenant(value: str) -> str:
    return check_name(value, "tenant")


def _project(value: str) -> str:
    return check_name(value, "project")


def _time_window(value: object) -> TimeWindow | None:
    if value is None or isinstance(value, TimeWindow):
        return value
    try:
        return TimeWindow.parse(value)
    except ValidationError as exc:
        # pydantic reports a ValueError at the field's location; keep the sub-field in the text.
        where = exc.path.removeprefix("time_window").lstrip(".")
        raise ValueError(f"{where}: {exc.message}" if where else exc.message) from None


def _time_window_document(value: TimeWindow | None) -> dict[str, object] | None:
    if value is None:
        return None
    return {
        "start": value.start.isoformat(timespec="seconds" if value.start.second else "minutes"),
        "end": value.end.isoformat(timespec="seconds" if value.end.second else "minutes"),
        "timezone": value.timezone,
        "must_finish_in_window": value.must_finish_in_window,
    }


_WINDOW_SCHEMA = {
    "anyOf": [
        {
            "type": "object",
            "properties": {
                "start": {"type": "string", "pattern": "^[0-2]?[0-9]:[0-5][0-9](:[0-5][0-9])?$"},
                "end": {"type": "string", "pattern": "^[0-2]?[0-9]:[0-5][0-9](:[0-5][0-9])?$"},
                "timezone": {"type": "string"},
                "must_finish_in_window": {"type": "boolean"},
            },
            "required": ["start", "end"],
            "additionalProperties": False,
        },
        {"type": "null"},
    ]
}
# A daily wall-clock window (see budcore.domain.timewindow); stored as its document form.
OptTimeWindow = Annotated[
    TimeWindow | None,
    PlainValidator(_time_window),
    PlainSerializer(_time_window_document),
    WithJsonSchema(_WINDOW_SCHEMA),
]

UtcDatetime = Annotated[datetime, AfterValidator(ensure_utc)]
OptUtcDatetime = Annotated[datetime | None, AfterValidator(_utc)]
OptDuration = Annotated[timedelta | None, AfterValidator(_non_negative)]
Money = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


STORED = "stored"
#: Validation context for a job a store already holds (``Job.model_validate(doc,
#: context=STORED_JOB)``): a rule added after it was written (a pod may not ask for parts of two
#: devices, since 2026-12) must not make it unreadable, nor keep it from being cancelled.
STORED_JOB: Mapping[str, bool] = {STORED: True}


class PodSet(BaseModel):
    """A group of identical pods (Kueue ``Workload.spec.podSets[]``): ``count`` × ``resources``.

    A multi-node training job is several pods; the job is admitted whole or not at all (gang).

    The placement constraints of the pods' template are what Kueue's flavor assigner checks a
    ResourceFlavor against (``checkFlavorForPodSets``): ``tolerations`` must tolerate the flavor's
    NoSchedule/NoExecute ``nodeTaints`` (the flavor's own tolerations count too), and
    ``node_selector`` and ``required_node_affinity`` (terms ORed, expressions ANDed) must match the
    flavor's ``nodeLabels`` on the label keys the flavor defines. A resource requested with
    quantity 0 (``{"nvidia.com/gpu": 0}``) is remembered although :class:`ResourceVector` drops
    zero amounts: Kueue still assigns it a flavor when the ClusterQueue covers it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "main"
    count: int = Field(default=1, ge=1)
    resources: ResourceVector = Field(default_factory=ResourceVector)
    # Kueue ``minCount`` (partial admission): the fewest pods the job can run with; when the whole
    # count does not fit, the scheduler admits the largest count down to it that does.
    min_count: int | None = Field(default=None, ge=1)
    node_selector: NodeSelector = ()
    required_node_affinity: tuple[NodeSelectorTerm, ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    # Resources requested with quantity 0 (kept out of ``resources``; see the class docstring):
    # derived from ``resources`` when it is given as a mapping, written back into it when dumped.
    zero_requests: tuple[str, ...] = Field(default=(), exclude=True, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _keep_zero_requests(cls, data: Any) -> Any:
        resources = data.get("resources") if isinstance(data, Mapping) else None
        if isinstance(resources, Mapping) and not isinstance(resources, ResourceVector):
            try:
                zeros = {str(name) for name, value in resources.items() if parse_quantity(value) == 0}
            except ValidationError:
                return data  # the field's own validation reports the bad quantity
            if zeros:
                zeros.update(data.get("zero_requests") or ())
                return {**data, "zero_requests": tuple(sorted(zeros))}
        return data

    @field_serializer("resources", mode="wrap")
    def _resources_with_zeros(self, value: ResourceVector, handler: SerializerFunctionWrapHandler) -> Any:
        out = handler(value)
        if not self.zero_requests:
            return out
        kube = dict(value.to_kube())
        kube.update(dict.fromkeys(self.zero_requests, "0"))
        return dict(sorted(kube.items()))

    @field_validator("resources")
    @classmethod
    def _whole_devices_or_a_share_of_one(
        cls, resources: ResourceVector, info: ValidationInfo
    ) -> ResourceVector:
        if not (info.context and info.context.get(STORED)):  # see STORED_JOB
            for name, milli in resources.items():
                device_request(name, milli, "a pod")
        return resources

    @model_validator(mode="after")
    def _min_count_within_count(self) -> PodSet:
        if self.min_count is not None and self.min_count > self.count:
            raise ValueError(f"min_count ({self.min_count}) must not exceed count ({self.count})")
        return self

    @cached_property
    def total(self) -> ResourceVector:
        return self.resources.scaled(self.count)


class ResourceRequest(BaseModel):
    """What a job asks for: pod sets, plus the accelerator type(s) it accepts (catalog slugs).

    ``accelerator_type`` (e.g. ``nvidia-h100-80gb``) restricts which ResourceFlavors can serve the
    job (None: any); ``accelerator_types`` is a set it accepts any of (:func:`.accelerators.one_form`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Non-emptiness is checked in the validator: a tuple min_length would add a spurious "at least 1
    # item" error whenever one of the items is invalid.
    pod_sets: tuple[PodSet, ...] = (PodSet(),)
    accelerator_type: str | None = None
    accelerator_types: tuple[str, ...] = Field(default=(), exclude_if=lambda members: not members)

    @model_validator(mode="before")
    @classmethod
    def _one_form_of_accelerators(cls, data: Any) -> Any:
        return one_form(data)

    @property
    def accelerators(self) -> tuple[str, ...]:
        """The types it accepts (empty: any); ``accelerator_type`` wins if ``model_copy`` set both."""
        return self.accelerator_types if self.accelerator_type is None else (self.accelerator_type,)

    @model_validator(mode="after")
    def _unique_pod_set_names(self) -> ResourceRequest:
        if not self.pod_sets:
            raise ValueError("a request needs at least one pod set")
        names = [p.name for p in self.pod_sets]
        if len(set(names)) != len(names):
            raise ValueError(f"pod set names must be unique, got {names}")
        return self

    @classmethod
    def single(
        cls,
        *,
        gpus: int | str = 0,
        cpu: str | int | float = 1,
        memory: str | int = "4Gi",
        storage: str | int | None = None,
        accelerator_type: str | None = None,
        gpu_resource: str = NVIDIA_GPU,
        pods: int = 1,
        extra: dict[str, str | int] | None = None,
    ) -> ResourceRequest:
        """The common case: ``pods`` identical pods, each with ``gpus`` accelerators (a quantity:
        ``"500m"`` is a share of one device, which quota counts in milli-units)."""
        amounts: dict[str, str | int | float] = {"cpu": cpu, "memory": memory}
        if gpus:
            amounts[gpu_resource] = gpus
        if storage is not None:
            amounts["ephemeral-storage"] = storage
        if extra:
            amounts.update(extra)
        return cls(
            pod_sets=(PodSet(count=pods, resources=ResourceVector.of(amounts)),),
            accelerator_type=accelerator_type,
        )

    @cached_property
    def total(self) -> ResourceVector:
        """Sum over pod sets of count × per-pod resources."""
        return ResourceVector.sum(p.total for p in self.pod_sets)

    @cached_property
    def partially_admissible(self) -> bool:
        """Whether some pod set may run with fewer pods (``min_count`` below ``count``): Kueue's
        ``CanBePartiallyAdmitted``."""
        return any(p.min_count is not None and p.min_count < p.count for p in self.pod_sets)

    @cached_property
    def accelerator_count(self) -> int:
        """Whole accelerators requested in total (milli-units / 1000, rounded up)."""
        milli = sum(self.total.accelerators().values())
        return -(-milli // 1000)


class Job(BaseModel):
    """One schedulable unit of work.

    Times are aware UTC; ``version`` is owned by the job store (optimistic concurrency) and
    ``status`` changes only through :func:`budcore.domain.lifecycle.transition`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    id: JobId = Field(default_factory=new_job_id)
    name: str = Field(min_length=1, max_length=253)
    tenant: Annotated[TenantId, AfterValidator(_tenant)]
    project: Annotated[ProjectId, AfterValidator(_project)] = ProjectId("default")
    job_type: JobType = JobType.BATCH
    request: ResourceRequest = Field(default_factory=ResourceRequest)
    local_queue: str | None = None  # Kueue LocalQueue name (label kueue.x-k8s.io/queue-name)
    # What to deploy or run (the seeds' Job.deployment_type and spec): free-form to the scheduler,
    # which decides on ``request`` alone; a cluster backend turns it into what runs.
    deployment_type: DeploymentType | None = None
    spec: dict[str, Any] = Field(default_factory=dict)

    # Time constraints
    estimated_duration: OptDuration = None
    max_duration: OptDuration = None
    deadline: OptUtcDatetime = None
    # Admitted only inside this daily window (and, with must_finish_in_window, only when its
    # expected run ends before the window closes).
    time_window: OptTimeWindow = None

    # Priority & preemption. Kueue semantics: every workload is preemptible by policy; a job opts
    # out with preemptible=False. Critical jobs are never preempted whatever this flag says.
    # ``priority`` is the built-in class (its value 1000/100/10/1/0 unless ``workload_priority`` is
    # set); ``priority_class`` names a Kueue WorkloadPriorityClass of the queue configuration (the
    # label kueue.x-k8s.io/priority-class says the same), which ``Scheduler.submit`` resolves into
    # ``workload_priority`` (Kueue's Workload.spec.priority): the value for queue order and preemption.
    priority: JobPriority = JobPriority.NORMAL
    priority_class: str | None = Field(default=None, min_length=1, max_length=253)
    workload_priority: int | None = Field(default=None, ge=PRIORITY_MIN, le=PRIORITY_MAX)
    preemptible: bool = True
    preempts_others: bool = True
    checkpoint_interval: OptDuration = None
    last_checkpoint_at: OptUtcDatetime = None

    # Schedule tracking
    estimated_start: OptUtcDatetime = None
    estimated_end: OptUtcDatetime = None
    actual_start: OptUtcDatetime = None
    actual_end: OptUtcDatetime = None
    admitted_at: OptUtcDatetime = None

    # Status
    status: JobStatus = JobStatus.PENDING
    status_message: str | None = None
    retry_count: int = Field(default=0, ge=0)
    max_retries: int = Field(default=3, ge=0)
    next_retry_at: OptUtcDatetime = None
    preemption_count: int = Field(default=0, ge=0)
    # Admitted time of earlier runs (Kueue's status.accumulatedPastExexcutionTimeSeconds): added
    # by the lifecycle whenever the job stops holding quota; ``max_duration`` counts it too.
    accumulated_runtime: timedelta = Field(default=timedelta(0), ge=timedelta(0))

    # Cost
    estimated_cost: Money | None = None
    actual_cost: Money | None = None
    budget_limit: Money | None = None
    # What reaching ``budget_limit`` while running does (None: warn). Submission is guarded apart
    # from this: a job whose projected cost is already past its limit is refused or warned about.
    budget_action: BudgetAction | None = None

    outputs: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)

    # Provenance
    source: JobSource = JobSource.DIRECT
    pipeline_id: str | None = None
    pipeline_step_id: str | None = None
    usecase_deployment_id: str | None = None

    created_at: UtcDatetime = Field(default_factory=utcnow)
    updated_at: UtcDatetime = Field(default_factory=utcnow)
    version: int = Field(default=0, ge=0)

    @field_validator("labels", "outputs")
    @classmethod
    def _string_map(cls, value: dict[str, Any]) -> dict[str, str]:
        return {str(k): str(v) for k, v in value.items()}

    @field_validator("workload_priority")
    @classmethod
    def _critical_stays_on_top(cls, value: int | None, info: ValidationInfo) -> int | None:
        priority = info.data.get("priority")
        if isinstance(priority, JobPriority):
            problem = check_critical_value(priority, value)
            if problem is not None:
                raise ValueError(problem)
        return value

    @field_validator("labels")
    @classmethod
    def _priority_class_label(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        label = value.get(PRIORITY_CLASS_LABEL)
        field = info.data.get("priority_class")
        if label is not None and field is not None and label != field:
            raise ValueError(
                f"label {PRIORITY_CLASS_LABEL}={label!r} contradicts priority_class {field!r}: "
                "name the WorkloadPriorityClass once"
            )
        if label is not None and not label:
            raise ValueError(f"label {PRIORITY_CLASS_LABEL} must name a WorkloadPriorityClass")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Job:
        if self.retry_count > self.max_retries:
            raise ValueError(f"retry_count {self.retry_count} exceeds max_retries {self.max_retries}")
        if (
            self.max_duration is not None
            and self.estimated_duration is not None
            and self.estimated_duration > self.max_duration
        ):
            raise ValueError("estimated_duration exceeds max_duration")
        return self

    @property
    def key(self) -> tuple[TenantId, JobId]:
        """The store key: ids are unique within a tenant."""
        return (self.tenant, self.id)

    @property
    def priority_value(self) -> int:
        """The numeric priority Kueue compares, for queue order and preemption alike.

        ``workload_priority`` when set (resolved from ``priority_class`` by ``Scheduler.submit``,
        or given as ``submit(priority=...)``), else the built-in value of ``priority``.
        """
        if self.workload_priority is not None:
            return self.workload_priority
        return self.priority.value_int

    @property
    def priority_class_name(self) -> str | None:
        """The WorkloadPriorityClass this job names: ``priority_class`` or the Kueue label."""
        if self.priority_class is not None:
            return self.priority_class
        return self.labels.get(PRIORITY_CLASS_LABEL)

    def with_changes(self, **changes: Any) -> Job:
        """A copy with ``changes`` applied and re-validated (bad values raise ``ValidationError``)."""
        from budcore.domain.validation import validate_model

        data = self.model_dump()
        data.update(changes)
        return validate_model(Job, data)
