"""One job arrival: the record every workload source (generator or trace) produces.

Millions of these are created per simulation, so ``JobArrival`` is a ``typing.NamedTuple`` of plain
scalars: immutable, no per-instance dict, hashable, compact to pickle (sweeps ship workloads to
worker processes). It is deliberately not a pydantic model, and not a frozen dataclass or a frozen
attrs class either: those assign each field through ``object.__setattr__``, which measured 4.4 µs
(dataclass) and 3.2 µs (attrs) per record against 0.6 µs for the named tuple on the development
machine, i.e. seconds of pure overhead on a million-job run. Use ``arrival._replace(...)`` for a
modified copy. The producers (validated generator specs, trace readers that check every row) guarantee
the field values; :func:`arrival_to_job` turns an arrival into a fully validated
:class:`budcore.domain.job.Job` only when the engine actually submits it.

Times are seconds from the simulation start (``submit_s``, ``deadline_s``) or durations in seconds;
the engine converts them to aware UTC datetimes against its start instant. A ``time_window`` is
the one non-scalar field: an immutable :class:`~budcore.domain.timewindow.TimeWindow` that every
job of a class shares (it pickles by value, zone by name).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from operator import attrgetter
from typing import Annotated, Any, NamedTuple

from pydantic import BeforeValidator, WithJsonSchema

from budcore.domain.errors import ValidationError
from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import Job, JobType, ResourceRequest
from budcore.domain.priority import PRIORITY_MAX, PRIORITY_MIN, JobPriority
from budcore.domain.resources import NVIDIA_GPU
from budcore.domain.timeutil import ensure_utc
from budcore.domain.timewindow import TimeWindow
from budcore.domain.validation import validate_model

# Label carrying the generator class / trace label, so reports can group jobs per class.
JOB_CLASS_LABEL = "budcore.io/job-class"


class JobArrival(NamedTuple):
    """A job submitted at ``submit_s`` that runs for ``runtime_s`` once started.

    The request is ``pods`` identical pods (a gang when ``pods > 1``), each with ``gpus_per_pod``
    GPUs, ``cpu_milli`` CPU milli-cores and ``memory_bytes`` of memory. ``priority`` and
    ``job_type`` hold :class:`JobPriority` / :class:`JobType` values; ``deadline_s`` is an absolute
    simulation time, not a slack.

    ``max_runtime_s`` is the job's maximum duration (Kueue's ``maximumExecutionTimeSeconds``): the
    engine stops a job whose execution time reaches it and fails it with reason ``timeout``, so a
    job whose ``runtime_s`` exceeds it never completes. ``time_window`` restricts when it may be
    admitted (:class:`~budcore.domain.timewindow.TimeWindow`). ``preemptible=False`` protects it
    from preemption (and from eviction at a capacity booking's start); ``declares_runtime=False``
    submits it without a runtime estimate (:attr:`estimate_s` is then only the report's stand-in).
    Fields are appended at the end with defaults, so positional construction of the earlier fields
    keeps working.
    """

    submit_s: float
    runtime_s: float
    gpus_per_pod: int
    pods: int
    cpu_milli: int
    memory_bytes: int
    tenant: str
    local_queue: str
    priority: str
    job_type: str
    job_class: str
    job_id: str
    checkpoint_interval_s: float | None = None
    deadline_s: float | None = None
    accelerator: str | None = None
    # What the submitter declared the runtime to be (None: exactly ``runtime_s``); the scenario's
    # ``workload.estimate_error`` sets it to model users' misestimates.
    estimated_runtime_s: float | None = None
    max_runtime_s: float | None = None  # maximum duration (None: unlimited)
    time_window: TimeWindow | None = None  # daily admission window (None: any time)
    # Whether the scheduler may preempt it (critical jobs never are, whatever this says), and
    # whether it declares a runtime estimate at all (False: the Job carries none).
    preemptible: bool = True
    declares_runtime: bool = True
    # Kueue priorities beyond the five built-in classes (``priority`` then only says which class
    # protects the job: critical ones are never preempted). ``priority_value`` is an integer
    # priority (Kueue's ``Workload.spec.priority``); ``priority_class`` names a
    # WorkloadPriorityClass of the queue configuration, whose value the scheduler looks up.
    priority_value: int | None = None
    priority_class: str | None = None
    # The report group of the job (``by_label``): several generator classes (a class per
    # ClusterQueue, say) may share one; None: its ``job_class``.
    label: str | None = None
    # The job's own budget (its ``budget_limit``, in the price book's currency) and what reaching
    # it while running does (``budget_action``: warn, pause or cancel; None: warn). See money.py.
    budget_limit: Decimal | None = None
    budget_action: str | None = None
    # A share of one GPU per pod, in milli-units (1-999, ``gpus_per_pod`` then 1): the pod asks
    # for ``<gpu_milli>m`` of the GPU resource and is packed with others onto one physical device
    # (GPU sharing, see budcore_adapters/inmemory/devices.py). None: ``gpus_per_pod`` whole GPUs.
    gpu_milli: int | None = None

    @property
    def priority_label(self) -> str:
        """The priority as the job states it: its WorkloadPriorityClass, its integer value, or
        its built-in class (the ``priority`` column of ``jobs.csv``, ``by_priority``)."""
        if self.priority_class is not None:
            return self.priority_class
        if self.priority_value is not None:
            return str(self.priority_value)
        return self.priority

    @property
    def group(self) -> str:
        """The report group: :attr:`label`, else :attr:`job_class`."""
        return self.job_class if self.label is None else self.label

    @property
    def total_gpus(self) -> int:
        """GPUs over the whole gang (a share of one GPU counts as the one device it needs)."""
        return self.gpus_per_pod * self.pods

    @property
    def gpu_units(self) -> float:
        """GPUs requested over the whole gang: :attr:`total_gpus`, or the shares' sum (``0.5``
        for one pod of 500 milli-units), as quota counts them."""
        if self.gpu_milli is None:
            return self.total_gpus
        return self.gpu_milli * self.pods / 1000

    @property
    def estimate_s(self) -> float:
        """The declared runtime estimate: ``estimated_runtime_s``, else the true runtime."""
        return self.runtime_s if self.estimated_runtime_s is None else self.estimated_runtime_s

    @property
    def declared_s(self) -> float:
        """The estimate the submitted :class:`Job` carries: :attr:`estimate_s`, capped at the maximum
        duration (a job cannot expect to run longer than it is allowed to)."""
        estimate = self.runtime_s if self.estimated_runtime_s is None else self.estimated_runtime_s
        limit = self.max_runtime_s
        return estimate if limit is None or estimate <= limit else limit

    @property
    def gpu_seconds(self) -> float:
        """The work the job represents when it runs uninterrupted (GPUs x runtime)."""
        return self.gpu_units * self.runtime_s


def _priority(value: Any) -> JobPriority | int | str:
    """A priority as a scenario or trace writes it: a built-in class name (``high``), an integer
    (Kueue's ``Workload.spec.priority``; ``"50"`` too) or a WorkloadPriorityClass name."""
    if isinstance(value, JobPriority):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(
            "give a built-in class (critical, high, normal, low, spot), an integer or a "
            f"WorkloadPriorityClass name, got {value!r}"
        )
    number: int
    if isinstance(value, str):
        text = value.strip()
        if text in _BUILTIN:
            return JobPriority(text)
        if not _INTEGER.fullmatch(text):
            return check_priority_class(text)
        number = int(text)
    else:
        number = value
    if not PRIORITY_MIN <= number <= PRIORITY_MAX:
        raise ValueError(f"an integer priority is an int32 (as Kueue's), got {number}")
    return number


def check_priority_class(name: str, field: str = "") -> str:
    """``name`` if it can name a WorkloadPriorityClass (a Kubernetes object name), else a ValueError."""
    if not name or len(name) > 253 or not _OBJECT_NAME.fullmatch(name):
        where = f"{field}: " if field else ""
        raise ValueError(
            f"{where}{name!r} is neither a built-in priority (critical, high, normal, low, spot), an "
            "integer nor a WorkloadPriorityClass name (lower-case letters, digits, '-' and '.')"
        )
    return name


_BUILTIN = frozenset(p.value for p in JobPriority)
_INTEGER = re.compile(r"[+-]?\d+")
_OBJECT_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")

# A pydantic field type: a priority as :func:`_priority` reads it (a built-in class, an int, or a
# WorkloadPriorityClass name); :func:`priority_parts` splits it into a JobArrival's fields.
Priority = Annotated[
    JobPriority | int | str,
    BeforeValidator(_priority),
    WithJsonSchema(
        {
            "description": "a built-in class (critical, high, normal, low, spot), an integer "
            "priority (Kueue's Workload.spec.priority) or a WorkloadPriorityClass name",
            "anyOf": [
                {"type": "string", "enum": [p.value for p in JobPriority]},
                {"type": "integer"},
                {"type": "string"},
            ],
        }
    ),
]


def parse_priority(value: Any) -> JobPriority | int | str:
    """:data:`Priority`'s reading of ``value`` (a budcore ``ValidationError`` when it is none)."""
    try:
        return _priority(value)
    except ValueError as exc:
        raise ValidationError(str(exc), path="priority") from None


def priority_parts(
    priority: JobPriority | int | str, priority_class: str | None = None
) -> tuple[str, int | None, str | None]:
    """``(built-in class, integer value, WorkloadPriorityClass)``: the JobArrival fields of a
    priority (and of an explicit ``priority_class``, which a WorkloadPriorityClass name in
    ``priority`` stands for)."""
    if isinstance(priority, JobPriority):
        return priority.value, None, priority_class
    if isinstance(priority, int):
        return JobPriority.NORMAL.value, priority, priority_class
    return JobPriority.NORMAL.value, None, priority_class or priority


def merge_arrivals(*sources: Iterable[JobArrival]) -> Iterator[JobArrival]:
    """Several sorted arrival streams (generators, traces) as one, lazily, ordered by submit time.

    Equal submit times keep the order of ``sources`` (``heapq.merge`` is stable across inputs),
    so a scenario with the same sources in the same order always yields the same sequence.
    """
    if len(sources) == 1:
        return iter(sources[0])
    return heapq.merge(*sources, key=attrgetter("submit_s"))


def split_gang(total: int, per_node: int) -> tuple[int, int]:
    """Spread ``total`` devices over as few identical pods as fit ``per_node`` each.

    Returns ``(pods, per_pod)``. A request that fits one node is one pod; a larger one becomes
    ``ceil(total / per_node)`` pods of ``ceil(total / pods)`` each, which is exact when ``total``
    is a multiple of ``per_node`` and otherwise over-asks by less than one device per pod (a pod
    set is uniform, so an uneven split cannot be expressed).
    """
    if per_node < 1:
        raise ValidationError(f"must be at least 1, got {per_node}", path="gpus_per_node")
    if total < 0:
        raise ValidationError(f"must not be negative, got {total}", path="gpus")
    if total <= per_node:
        return 1, total
    pods = -(-total // per_node)
    return pods, -(-total // pods)


def arrival_to_job(
    arrival: JobArrival,
    start: datetime,
    *,
    project: str = "default",
    gpu_resource: str = NVIDIA_GPU,
    with_estimate: bool = True,
    max_retries: int | None = None,
) -> Job:
    """The :class:`Job` the engine submits for ``arrival`` in a simulation that began at ``start``.

    The job id is the arrival's deterministic id (not a random UUID) so that two runs with the same
    seed produce byte-identical records. ``created_at`` is the submit instant. With
    ``with_estimate`` the declared estimate (:attr:`JobArrival.estimate_s`, the true runtime unless
    an estimate error was modelled) is the job's ``estimated_duration``; set it to ``False`` to model
    jobs that give no estimate. ``max_retries`` sets the job's retry budget (``None``: the
    :class:`Job` default). Any invalid value (a tenant that is not a valid name, an unknown
    priority) raises budcore's ``ValidationError``.

    ``max_runtime_s`` becomes the job's ``max_duration`` and ``time_window`` its ``time_window``;
    ``budget_limit`` and ``budget_action`` are the job's own;
    ``preemptible`` is the job's, and an arrival that does not ``declares_runtime`` has no estimate.
    A :class:`Job` may not declare an estimate above its maximum duration, so the estimate is
    capped at it (:attr:`JobArrival.declared_s`); the true runtime is not: a job whose runtime
    exceeds its maximum duration is stopped at the limit by the engine and fails (``timeout``).

    Validated once per *template* (:func:`_from_prototype`): the first arrival of each combination
    of the fields jobs share goes through pydantic; the next ones are copies of that job with their
    own id, times and durations, which are checked here as pydantic would check them (anything
    else, or a value that fails, goes through pydantic again, which raises its own error).
    """
    start = ensure_utc(start, "start")
    if arrival.time_window is None and arrival.budget_limit is None and arrival.budget_action is None:
        job = _from_prototype(arrival, start, project, gpu_resource, with_estimate, max_retries)
        if job is not None:
            return job
    return _validated_job(
        arrival,
        start,
        project=project,
        gpu_resource=gpu_resource,
        with_estimate=with_estimate,
        max_retries=max_retries,
    )


def _validated_job(
    arrival: JobArrival,
    start: datetime,
    *,
    project: str,
    gpu_resource: str,
    with_estimate: bool,
    max_retries: int | None,
) -> Job:
    """:func:`arrival_to_job` through pydantic (``start`` already aware UTC)."""
    submitted = start + timedelta(seconds=arrival.submit_s)
    try:
        priority = JobPriority(arrival.priority)
    except ValueError:
        raise ValidationError(
            f"unknown priority {arrival.priority!r}; expected one of {[p.value for p in JobPriority]}",
            path="priority",
        ) from None
    try:
        job_type = JobType(arrival.job_type)
    except ValueError:
        raise ValidationError(
            f"unknown job type {arrival.job_type!r}; expected one of {[t.value for t in JobType]}",
            path="job_type",
        ) from None
    request = _request(
        arrival.gpus_per_pod if arrival.gpu_milli is None else f"{arrival.gpu_milli}m",
        arrival.cpu_milli,
        arrival.memory_bytes,
        arrival.accelerator,
        gpu_resource,
        arrival.pods,
    )
    fields: dict[str, object] = {}
    if arrival.priority_value is not None:
        fields["workload_priority"] = arrival.priority_value
    if arrival.priority_class is not None:
        fields["priority_class"] = arrival.priority_class
    if max_retries is not None:
        fields["max_retries"] = max_retries
    if arrival.max_runtime_s is not None:
        fields["max_duration"] = timedelta(seconds=arrival.max_runtime_s)
    if arrival.time_window is not None:
        fields["time_window"] = arrival.time_window
    if arrival.budget_limit is not None:
        fields["budget_limit"] = arrival.budget_limit
    if arrival.budget_action is not None:
        fields["budget_action"] = arrival.budget_action
    return validate_model(
        Job,
        {
            **fields,
            "id": JobId(arrival.job_id),
            "name": arrival.job_id,
            "tenant": TenantId(arrival.tenant),
            "project": project,
            "job_type": job_type,
            "request": request,
            "local_queue": arrival.local_queue,
            "priority": priority,
            "preemptible": arrival.preemptible,
            "estimated_duration": (
                timedelta(seconds=arrival.declared_s) if with_estimate and arrival.declares_runtime else None
            ),
            "deadline": (
                None if arrival.deadline_s is None else start + timedelta(seconds=arrival.deadline_s)
            ),
            "checkpoint_interval": (
                None
                if arrival.checkpoint_interval_s is None
                else timedelta(seconds=arrival.checkpoint_interval_s)
            ),
            "labels": {JOB_CLASS_LABEL: arrival.job_class},
            "created_at": submitted,
            "updated_at": submitted,
        },
        prefix=f"job[{arrival.job_id}]",
    )


# Validated jobs by template (see _from_prototype); bounded, cleared when full (a trace with more
# distinct templates than this only pays validation again for the templates it brings back).
_PROTOTYPES: dict[tuple[Any, ...], tuple[Job, tuple[str, ...]]] = {}  # with its given fields
_PROTOTYPES_MAX = 4096
_ZERO = timedelta(0)
_NAME_MAX = 253  # Job.name's max_length


def _from_prototype(
    arrival: JobArrival,
    start: datetime,
    project: str,
    gpu_resource: str,
    with_estimate: bool,
    max_retries: int | None,
) -> Job | None:
    """The job of ``arrival`` as a copy of a validated job of the same template, or None when it
    must go through pydantic (its template's first arrival, or a value the checks below refuse).

    A template is every input of :func:`_validated_job` except the job's id, its times and its
    durations, plus which of the optional fields are given: two arrivals of one template validate
    to the same values in every other field (the request is the same object, from ``_request``'s
    cache, and the prototype holds it, so its ``id`` in the key is unique). The copy has the
    prototype's fields with the arrival's own id and name (a ``str`` of 1 to 253 characters, as
    ``Job.name`` requires), ``created_at``/``updated_at``, ``estimated_duration``,
    ``max_duration``, ``deadline`` and ``checkpoint_interval`` (aware UTC instants from the aware
    UTC ``start``; durations not negative, and the estimate not above the maximum duration, as
    ``Job`` validates), fresh ``labels``, ``spec`` and ``outputs`` maps (validation builds new ones),
    and the prototype's set of given fields (the same keys were given).
    """
    job_id = arrival.job_id
    if type(job_id) is not str or not 0 < len(job_id) <= _NAME_MAX:
        return None
    request = _request(
        arrival.gpus_per_pod if arrival.gpu_milli is None else f"{arrival.gpu_milli}m",
        arrival.cpu_milli,
        arrival.memory_bytes,
        arrival.accelerator,
        gpu_resource,
        arrival.pods,
    )
    declares = with_estimate and arrival.declares_runtime
    limit_s, deadline_s, interval_s = arrival.max_runtime_s, arrival.deadline_s, arrival.checkpoint_interval_s
    key = (
        start,
        project,
        id(request),
        declares,
        max_retries,
        arrival.tenant,
        arrival.local_queue,
        arrival.priority,
        arrival.job_type,
        arrival.preemptible,
        arrival.priority_value,
        arrival.priority_class,
        arrival.job_class,
        limit_s is None,
        deadline_s is None,
        interval_s is None,
    )
    known = _PROTOTYPES.get(key)
    if known is None:
        prototype = _validated_job(
            arrival,
            start,
            project=project,
            gpu_resource=gpu_resource,
            with_estimate=with_estimate,
            max_retries=max_retries,
        )
        if len(_PROTOTYPES) >= _PROTOTYPES_MAX:
            _PROTOTYPES.clear()
        _PROTOTYPES[key] = (prototype, tuple(prototype.__pydantic_fields_set__))
        return prototype
    prototype, given = known
    estimate = timedelta(seconds=arrival.declared_s) if declares else None
    if estimate is not None and estimate < _ZERO:
        return None
    limit = None
    if limit_s is not None:
        limit = timedelta(seconds=limit_s)
        if limit < _ZERO or (estimate is not None and estimate > limit):
            return None
    interval = None
    if interval_s is not None:
        interval = timedelta(seconds=interval_s)
        if interval < _ZERO:
            return None
    submitted = start + timedelta(seconds=arrival.submit_s)
    values = dict(prototype.__dict__)
    values["id"] = values["name"] = job_id
    values["created_at"] = values["updated_at"] = submitted
    values["estimated_duration"] = estimate
    values["max_duration"] = limit
    values["deadline"] = None if deadline_s is None else start + timedelta(seconds=deadline_s)
    values["checkpoint_interval"] = interval
    values["labels"] = dict(prototype.labels)
    values["spec"] = {}
    values["outputs"] = {}
    job = Job.__new__(Job)
    _set(job, "__dict__", values)
    # set(tuple) grows as pydantic's set does; set(set) would allocate twice the table
    _set(job, "__pydantic_fields_set__", set(given))
    _set(job, "__pydantic_extra__", None)
    _set(job, "__pydantic_private__", None)
    return job


_set = object.__setattr__


@lru_cache(maxsize=1024)
def _request(
    gpus: int | str, cpu_milli: int, memory_bytes: int, accelerator: str | None, gpu_resource: str, pods: int
) -> ResourceRequest:
    """The (immutable) request of an arrival of this shape, shared by every job of the shape.

    Workloads repeat a handful of shapes (a GPU count with its per-GPU CPU and memory), and
    parsing and validating the same request for each of a million arrivals was a large part of
    turning an arrival into a job.
    """
    return ResourceRequest.single(
        gpus=gpus,
        cpu=f"{cpu_milli}m",
        memory=memory_bytes,
        accelerator_type=accelerator,
        gpu_resource=gpu_resource,
        pods=pods,
    )
