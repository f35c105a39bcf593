"""Public hypothesis strategies for budcore's domain objects.

Test suites of budcore users and plugin authors reuse these to generate *valid* inputs: building
any generated object never raises, so a failure found with them is a bug in the code under test,
not in the generator. Every strategy is parameterisable so a suite can narrow it to what it needs,
for example only queued jobs of two tenants, or fleets with a single GPU type::

    from hypothesis import given
    from budcore.testing import strategies as bst

    @given(bst.jobs(tenants=("acme", "globex"), statuses=[JobStatus.QUEUED], max_gpus=4))
    def test_queue_accepts_any_queued_job(job): ...

Design choices that matter to users:

- Identifiers (tenants, projects, local queues, idempotency keys) are drawn from *small pools* by
  default so that collisions, which is where tenant-scoping and idempotency bugs live, happen in
  almost every run. Pass your own pools to widen or narrow them.
- Free text (names, label values, messages) avoids NUL and surrogate characters and datetimes stay
  within 2000–2100 at microsecond precision, so the same generated jobs round-trip through
  PostgreSQL (``text``, ``timestamptz``) unchanged and one suite serves every store.
- Amounts are realistic (cpu 100m–64 cores, memory 128Mi–1Ti, 0–8 GPUs per pod) but exact: every
  quantity string parses to exactly the milli-units the strategy pairs it with.
- Generated jobs fill **every optional field some of the time** (costs, checkpoint and schedule
  estimates, retry and preemption bookkeeping, priority class and value, provenance ids, outputs),
  consistently with their status, so a store that forgets a column fails a round trip. Pass
  ``jobs(optional_fields=True)`` to set all of them in every example, ``False`` for lean jobs.
- Arguments are checked when the strategy is built: a bad one (a tenant that is not a valid
  identifier, ``max_gpus=-1``) raises budcore's ``ValidationError`` whose ``path`` names the
  argument, never an error in the middle of a draw.

Kueue queue configurations: :func:`queue_configs` draws complete ``QueueConfig``s that Kueue would
accept (references resolve, cohorts form a forest, limits only where allowed, CRD CEL rules hold),
so ``loads_queue_config(dump_queue_config(config)) == config``; :func:`cluster_queues` and
:func:`resource_flavors` draw the single objects::

    @given(bst.queue_configs(max_cluster_queues=3))
    def test_scheduler_accepts_any_valid_configuration(config): Scheduler(config)

Long because it is the public catalogue of strategies for every domain object, imported by users
as one module; each strategy is short.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from budcore.domain.cluster import Node, PodSetPlacement, Workload
from budcore.domain.errors import ValidationError
from budcore.domain.ids import JobId, ProjectId, TenantId, check_name
from budcore.domain.job import (
    BudgetAction,
    DeploymentType,
    Job,
    JobSource,
    JobStatus,
    JobType,
    PodSet,
    ResourceRequest,
)
from budcore.domain.priority import JobPriority
from budcore.domain.quantity import MILLI, format_quantity
from budcore.domain.resources import (
    AMD_GPU,
    CPU,
    EPHEMERAL_STORAGE,
    GAUDI,
    MEMORY,
    NVIDIA_GPU,
    ResourceVector,
    is_accelerator,
)
from budcore.domain.timewindow import TimeWindow
from budcore.scheduling.queues import (
    BorrowWithinCohort,
    BorrowWithinCohortPolicy,
    ClusterQueue,
    ClusterQueuePreemption,
    Cohort,
    FairSharing,
    FlavorFungibility,
    FlavorQuotas,
    FungibilityAction,
    LocalQueue,
    QueueConfig,
    QueueingStrategy,
    ReclaimWithinCohort,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
    StopPolicy,
    WithinClusterQueue,
    WorkloadPriorityClass,
)

__all__ = [
    "DEFAULT_GPU_TYPES",
    "DEFAULT_IDEMPOTENCY_KEYS",
    "DEFAULT_LOCAL_QUEUES",
    "DEFAULT_PROJECTS",
    "DEFAULT_TENANTS",
    "GPU_PRODUCT_LABEL",
    "MAX_DATETIME",
    "MIN_DATETIME",
    "cluster_queues",
    "fleets",
    "gang_requests",
    "idempotency_keys",
    "job_priorities",
    "job_statuses",
    "job_types",
    "jobs",
    "label_dicts",
    "milli_amounts",
    "nodes",
    "pod_resources",
    "pod_sets",
    "quantities",
    "queue_configs",
    "resource_flavors",
    "resource_names",
    "resource_requests",
    "resource_vectors",
    "utc_datetimes",
    "workloads",
]

GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
"""The node label the NVIDIA GPU feature discovery sets; flavors select GPU types with it."""

DEFAULT_TENANTS: tuple[str, ...] = ("acme", "globex", "initech")
DEFAULT_PROJECTS: tuple[str, ...] = ("default", "research", "prod")
DEFAULT_LOCAL_QUEUES: tuple[str, ...] = ("team-a", "team-b")
DEFAULT_IDEMPOTENCY_KEYS: tuple[str, ...] = ("req-1", "req-2", "req-3", "req-4")
DEFAULT_GPU_TYPES: tuple[str, ...] = (
    "NVIDIA-H100-80GB-HBM3",
    "NVIDIA-A100-SXM4-80GB",
    "NVIDIA-L4",
    "Tesla-T4",
)

MIN_DATETIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_DATETIME = datetime(2100, 1, 1, tzinfo=UTC)

_GIB = 2**30
_MIB = 2**20

# Printable text that every backend stores verbatim: no control characters (NUL breaks
# PostgreSQL text), no surrogates (not encodable as UTF-8).
_SAFE_TEXT = st.characters(
    codec="utf-8", exclude_categories=("Cc", "Cs", "Co", "Cn"), exclude_characters="\x00"
)
_ALNUM = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
# RFC 1123 labels (lower-case alphanumerics, inner '-'); built from plain text because
# ``from_regex`` is several times slower to draw from and these are drawn constantly.
_DNS_LABEL = st.one_of(_ALNUM, st.builds(lambda a, b: f"{a}-{b}", _ALNUM, _ALNUM))


def _pool(
    values: Sequence[str] | st.SearchStrategy[str],
    what: str,
    check: Callable[[str], object] | None = None,
) -> st.SearchStrategy[str]:
    """A strategy drawing from ``values`` (a pool or already a strategy); ``what`` names the argument.

    Every member of a pool is checked up front with ``check`` (which raises ``ValidationError``
    or ``ValueError`` for a value budcore would refuse), so a bad pool is reported when the
    strategy is built, naming the argument, instead of failing inside a draw.
    """
    if isinstance(values, st.SearchStrategy):
        return values
    if isinstance(values, str) or not values:
        raise ValidationError("must be a non-empty sequence of strings or a strategy", path=what)
    pool = tuple(values)
    for index, value in enumerate(pool):
        if not isinstance(value, str):
            raise ValidationError(f"must contain strings, got {value!r} at index {index}", path=what)
        if check is not None:
            try:
                check(value)
            except ValueError as exc:  # budcore's ValidationError is a ValueError too
                reason = exc.message if isinstance(exc, ValidationError) else str(exc)
                raise ValidationError(f"item {index} is not usable: {reason}", path=what) from None
    return st.sampled_from(pool)


def _check_idempotency_key(value: str) -> None:
    if not 1 <= len(value) <= 255:
        raise ValueError("idempotency keys are 1 to 255 characters long")


# Time -----------------------------------------------------------------------------------------
def utc_datetimes(
    min_value: datetime = MIN_DATETIME, max_value: datetime = MAX_DATETIME
) -> st.SearchStrategy[datetime]:
    """Timezone-aware UTC datetimes in ``[min_value, max_value]`` (both must be aware).

    budcore rejects naive datetimes at every boundary, so generated ones are always aware.
    """
    if min_value.tzinfo is None or max_value.tzinfo is None:
        raise ValidationError("utc_datetimes bounds must be timezone-aware", path="min_value")
    lo = min_value.astimezone(UTC).replace(tzinfo=None)
    hi = max_value.astimezone(UTC).replace(tzinfo=None)
    return st.datetimes(min_value=lo, max_value=hi, timezones=st.just(UTC))


def _durations(max_seconds: int = 7 * 24 * 3600) -> st.SearchStrategy[timedelta]:
    return st.integers(min_value=1, max_value=max_seconds).map(lambda s: timedelta(seconds=s))


# Resources ------------------------------------------------------------------------------------
def resource_names(*, accelerators_only: bool = False) -> st.SearchStrategy[str]:
    """Valid Kubernetes resource names: the well-known ones plus custom ``vendor.example/x``.

    ``accelerators_only`` restricts to accelerator resources (``nvidia.com/gpu``, ``amd.com/gpu``,
    ``habana.ai/gaudi`` and MIG slices).
    """
    accelerators = st.sampled_from((NVIDIA_GPU, AMD_GPU, GAUDI, "nvidia.com/mig-3g.20gb"))
    if accelerators_only:
        return accelerators
    custom = st.builds(lambda vendor, name: f"{vendor}.example/{name}", _DNS_LABEL, _DNS_LABEL)
    return st.one_of(st.sampled_from((CPU, MEMORY, EPHEMERAL_STORAGE)), accelerators, custom)


def _default_milli_range(resource: str | None) -> tuple[int, int]:
    if resource in (MEMORY, EPHEMERAL_STORAGE):
        return 128 * _MIB * MILLI, 1024 * _GIB * MILLI
    if resource == CPU:
        return 100, 64 * MILLI
    if resource is not None and is_accelerator(resource):
        return 0, 8 * MILLI
    return 0, 1_000_000 * MILLI


def milli_amounts(
    resource: str | None = None, *, min_milli: int | None = None, max_milli: int | None = None
) -> st.SearchStrategy[int]:
    """Amounts in milli-units (budcore's exact integer representation) for ``resource``.

    Defaults are realistic per resource; accelerators are whole devices (multiples of 1000) so
    they look like what pods request, memory/storage are whole bytes.
    """
    lo, hi = _default_milli_range(resource)
    lo = lo if min_milli is None else min_milli
    hi = hi if max_milli is None else max_milli
    if lo < 0 or hi < lo:
        raise ValidationError(f"need 0 <= min_milli <= max_milli, got {lo}..{hi}", path="min_milli")
    if resource is not None and (is_accelerator(resource) or resource in (MEMORY, EPHEMERAL_STORAGE)):
        first, last = -(-lo // MILLI), hi // MILLI
        if first > last:
            unit = "device" if is_accelerator(resource) else "byte"
            raise ValidationError(
                f"{resource} amounts are whole {unit}s (multiples of {MILLI} milli) and "
                f"{lo}..{hi} contains none",
                path="min_milli",
            )
        return st.integers(first, last).map(lambda n: n * MILLI)
    return st.integers(lo, hi)


def quantities(
    resource: str | None = None, *, min_milli: int | None = None, max_milli: int | None = None
) -> st.SearchStrategy[tuple[str, int]]:
    """Pairs ``(kubernetes_string, milli)`` where ``parse_quantity(string) == milli``.

    The string takes one of several equivalent spellings (``format_quantity`` canonical form,
    plain milli ``"1500m"``, decimal ``"1.5"``, binary suffixes for byte amounts) so parsers
    are exercised on all of them.
    """

    def spellings(milli: int) -> st.SearchStrategy[tuple[str, int]]:
        options = {format_quantity(milli, resource), f"{milli}m"}
        if milli % MILLI == 0:
            whole = milli // MILLI
            options.add(str(whole))
            if whole and whole % 1000 == 0:
                options.add(f"{whole // 1000}k")
            for suffix, factor in (("Ki", 2**10), ("Mi", _MIB), ("Gi", _GIB)):
                if whole and whole % factor == 0:
                    options.add(f"{whole // factor}{suffix}")
        else:
            options.add(str(Decimal(milli) / MILLI))
        return st.sampled_from(sorted(options)).map(lambda text: (text, milli))

    return milli_amounts(resource, min_milli=min_milli, max_milli=max_milli).flatmap(spellings)


def resource_vectors(
    *,
    names: Sequence[str] | None = None,
    max_gpus: int = 8,
    min_size: int = 0,
    max_size: int = 5,
) -> st.SearchStrategy[ResourceVector]:
    """Arbitrary ``ResourceVector``s over ``names`` (default: any valid resource name).

    Accelerator amounts are at most ``max_gpus`` devices. Use :func:`pod_resources` instead for
    vectors shaped like a real pod request (always cpu and memory).
    """
    if max_gpus < 0:
        raise ValidationError("max_gpus must be >= 0", path="max_gpus")
    if not 0 <= min_size <= max_size:
        raise ValidationError(f"need 0 <= min_size <= max_size, got {min_size}..{max_size}", path="min_size")
    if names:
        distinct = tuple(dict.fromkeys(names))
        for name in distinct:
            try:
                ResourceVector({name: MILLI})
            except ValueError as exc:
                reason = exc.message if isinstance(exc, ValidationError) else str(exc)
                raise ValidationError(f"{name!r} is not a resource name: {reason}", path="names") from None
        if min_size > len(distinct):
            raise ValidationError(
                f"min_size={min_size} needs at least as many distinct names, got {len(distinct)}",
                path="min_size",
            )
    keys = st.sampled_from(tuple(names)) if names else resource_names()

    def amounts(name: str) -> st.SearchStrategy[int]:
        if is_accelerator(name):
            return milli_amounts(name, max_milli=max_gpus * MILLI)
        return milli_amounts(name)

    return (
        st.lists(keys, min_size=min_size, max_size=max_size, unique=True)
        .flatmap(lambda ks: st.tuples(*(st.tuples(st.just(k), amounts(k)) for k in ks)))
        .map(lambda items: ResourceVector(dict(items)))
    )


def _check_gpu_range(min_gpus: int, max_gpus: int) -> None:
    """``0 <= min_gpus <= max_gpus``, reported on the argument that is out of range."""
    if max_gpus < 0:
        raise ValidationError(f"max_gpus must be >= 0, got {max_gpus}", path="max_gpus")
    if not 0 <= min_gpus <= max_gpus:
        raise ValidationError(f"need 0 <= min_gpus <= max_gpus, got {min_gpus}..{max_gpus}", path="min_gpus")


def pod_resources(
    *,
    max_gpus: int = 8,
    min_gpus: int = 0,
    gpu_resource: str = NVIDIA_GPU,
    max_cpu_milli: int = 64 * MILLI,
    max_memory_gib: int = 512,
) -> st.SearchStrategy[ResourceVector]:
    """A per-pod request: cpu and memory always, ``min_gpus..max_gpus`` of ``gpu_resource``."""
    _check_gpu_range(min_gpus, max_gpus)
    if max_cpu_milli < 100:
        raise ValidationError(
            "max_cpu_milli must be >= 100 (the smallest cpu request drawn)", path="max_cpu_milli"
        )
    if max_memory_gib < 1:
        raise ValidationError("max_memory_gib must be >= 1", path="max_memory_gib")
    return st.builds(
        lambda cpu, mem_mib, gpus: ResourceVector(
            {CPU: cpu, MEMORY: mem_mib * _MIB * MILLI, gpu_resource: gpus * MILLI}
        ),
        st.integers(100, max_cpu_milli),
        st.integers(128, max_memory_gib * 1024),
        st.integers(min_gpus, max_gpus),
    )


def pod_sets(
    *, name: str | None = None, max_count: int = 4, max_gpus: int = 8, gpu_resource: str = NVIDIA_GPU
) -> st.SearchStrategy[PodSet]:
    """A ``PodSet`` of 1..``max_count`` identical pods, each from :func:`pod_resources`."""
    if max_count < 1:
        raise ValidationError("max_count must be >= 1", path="max_count")
    _check_gpu_range(0, max_gpus)
    names = st.just(name) if name is not None else _DNS_LABEL
    return st.builds(
        PodSet,
        name=names,
        count=st.integers(1, max_count),
        resources=pod_resources(max_gpus=max_gpus, gpu_resource=gpu_resource),
    )


@st.composite
def _resource_requests(
    draw: st.DrawFn,
    *,
    min_pod_sets: int,
    max_pod_sets: int,
    max_pods: int,
    per_pod: st.SearchStrategy[ResourceVector],
    accelerator_types: st.SearchStrategy[str | None],
) -> ResourceRequest:
    names = draw(st.lists(_DNS_LABEL, min_size=min_pod_sets, max_size=max_pod_sets, unique=True))
    sets = tuple(
        PodSet(name=name, count=draw(st.integers(1, max_pods)), resources=draw(per_pod)) for name in names
    )
    return ResourceRequest(pod_sets=sets, accelerator_type=draw(accelerator_types))


def resource_requests(
    *,
    min_pod_sets: int = 1,
    max_pod_sets: int = 3,
    max_pods: int = 4,
    max_gpus: int = 8,
    gpu_resource: str = NVIDIA_GPU,
    accelerator_types: Sequence[str | None] = (None, "nvidia-h100-80gb", "nvidia-a100-80gb"),
) -> st.SearchStrategy[ResourceRequest]:
    """``ResourceRequest``s with uniquely named pod sets (a gang when there are several).

    ``max_pods`` bounds each pod set's count and ``max_gpus`` each pod's accelerators.
    """
    if max_pod_sets < 1:
        raise ValidationError(f"max_pod_sets must be >= 1, got {max_pod_sets}", path="max_pod_sets")
    if not 1 <= min_pod_sets <= max_pod_sets:
        raise ValidationError(
            f"need 1 <= min_pod_sets <= max_pod_sets, got {min_pod_sets}..{max_pod_sets}", path="min_pod_sets"
        )
    if max_pods < 1:
        raise ValidationError("max_pods must be >= 1", path="max_pods")
    _check_gpu_range(0, max_gpus)
    return _resource_requests(
        min_pod_sets=min_pod_sets,
        max_pod_sets=max_pod_sets,
        max_pods=max_pods,
        per_pod=pod_resources(max_gpus=max_gpus, gpu_resource=gpu_resource),
        accelerator_types=st.sampled_from(tuple(accelerator_types)) if accelerator_types else st.none(),
    )


def gang_requests(
    *, max_pod_sets: int = 3, max_pods: int = 4, max_gpus: int = 8, gpu_resource: str = NVIDIA_GPU
) -> st.SearchStrategy[ResourceRequest]:
    """Multi-pod-set requests (2..``max_pod_sets`` pod sets): admitted whole or not at all."""
    return resource_requests(
        min_pod_sets=2,
        max_pod_sets=max(2, max_pod_sets),
        max_pods=max_pods,
        max_gpus=max_gpus,
        gpu_resource=gpu_resource,
    )


# Jobs -----------------------------------------------------------------------------------------
def job_statuses(statuses: Sequence[JobStatus] | None = None) -> st.SearchStrategy[JobStatus]:
    """Members of ``statuses`` (default: every ``JobStatus``)."""
    if statuses is None:
        return st.sampled_from(tuple(JobStatus))
    if isinstance(statuses, str) or not statuses:
        raise ValidationError("must be a non-empty sequence (pass None for every status)", path="statuses")
    members = []
    for status in statuses:
        try:
            members.append(JobStatus(status))
        except ValueError:
            known = ", ".join(s.value for s in JobStatus)
            raise ValidationError(f"unknown status {status!r}; statuses: {known}", path="statuses") from None
    return st.sampled_from(tuple(members))


def job_priorities() -> st.SearchStrategy[JobPriority]:
    """Any ``JobPriority`` (critical, high, normal, low, spot)."""
    return st.sampled_from(tuple(JobPriority))


def job_types() -> st.SearchStrategy[JobType]:
    """Any ``JobType`` (service, batch, training)."""
    return st.sampled_from(tuple(JobType))


def idempotency_keys(pool: Sequence[str] = DEFAULT_IDEMPOTENCY_KEYS) -> st.SearchStrategy[str]:
    """Idempotency keys: mostly from the small ``pool`` (so replays happen), sometimes unique."""
    return _idempotency_keys(pool, "pool")


def _idempotency_keys(pool: Sequence[str], what: str) -> st.SearchStrategy[str]:
    unique = st.uuids().map(lambda u: f"key-{u.hex}")
    return st.one_of(_pool(pool, what, _check_idempotency_key), unique)


def label_dicts(max_size: int = 3) -> st.SearchStrategy[dict[str, str]]:
    """Kubernetes-style labels from a small key space (``team``, ``app``, ``tier``, custom ones)."""
    keys = st.one_of(
        st.sampled_from(("team", "app", "tier", "budcore.io/experiment")),
        st.builds(lambda k: f"example.com/{k}", _DNS_LABEL),
    )
    values = st.one_of(st.sampled_from(("a", "b", "gold", "silver")), _DNS_LABEL)
    return st.dictionaries(keys, values, max_size=max_size)


_TIMELINE_STATUSES = {
    # status -> (has admitted_at, has actual_start, has actual_end)
    JobStatus.PENDING: (False, False, False),
    JobStatus.QUEUED: (False, False, False),
    JobStatus.ADMITTED: (True, False, False),
    JobStatus.RUNNING: (True, True, False),
    JobStatus.COMPLETED: (True, True, True),
    JobStatus.FAILED: (True, True, True),
    JobStatus.CANCELLED: (False, False, True),
    JobStatus.PREEMPTED: (True, True, True),
}


# Built once: constructing strategies inside a composite on every draw dominates run time.
_DURATIONS = _durations()
_BUDGETS = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False, allow_infinity=False)
# Metered costs carry fractions of a cent (per-second metering), so a store must keep the scale.
_COSTS = st.decimals(min_value=0, max_value=100_000, places=4, allow_nan=False, allow_infinity=False)
_LABELS = label_dicts()
_SOME_LABELS = st.dictionaries(
    st.sampled_from(("team", "app", "tier", "budcore.io/experiment")),
    st.sampled_from(("a", "b", "gold", "silver")),
    min_size=1,
    max_size=3,
)
_JOB_NAMES = st.text(_SAFE_TEXT, min_size=1, max_size=40)
_JOB_TYPES = job_types()
_PRIORITIES = job_priorities()
_SOURCES = st.sampled_from(tuple(JobSource))
_SECONDS_6H = st.integers(0, 6 * 3600)
# Kueue priority values are int32; a critical job's is at least critical's own (1000).
_PRIORITY_VALUES = st.one_of(st.sampled_from((0, 1, 10, 100, 1000)), st.integers(-1000, 1_000_000))
_CRITICAL_VALUES = st.integers(1000, 1_000_000)
_CHECKPOINT_INTERVALS = st.one_of(
    st.sampled_from((timedelta(0), timedelta(minutes=15), timedelta(hours=1))),  # 0: never checkpoints
    _durations(6 * 3600),
)
# Environment values: any text a store can hold — UTF-8 without NUL, since PostgreSQL's jsonb refuses
# NUL and lone surrogates (tests/postgres covers both refusals).
_ENV_VALUES = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
# A job's deployment spec: nested JSON as services write it (image, env, engine settings).
_DEPLOYMENT_SPECS = st.fixed_dictionaries(
    {"image": st.sampled_from(("vllm/vllm-openai:v0.6", "qdrant/qdrant:v1.12"))},
    optional={
        "env": st.dictionaries(st.sampled_from(("URL", "MODEL", "TOKENS")), _ENV_VALUES, max_size=2),
        "replicas": st.integers(1, 4),
    },
)
_PIPELINE_IDS = _DNS_LABEL.map(lambda s: f"pipeline-{s}")
_STEP_IDS = _DNS_LABEL.map(lambda s: f"step-{s}")
_USECASE_IDS = st.uuids().map(lambda u: f"deploy-{u.hex[:12]}")
_STATUS_MESSAGES = st.text(_SAFE_TEXT, min_size=1, max_size=60)
_OUTPUTS = st.dictionaries(
    st.sampled_from(("model", "metrics", "logs", "checkpoint")),
    _DNS_LABEL.map(lambda s: f"s3://outputs/{s}"),
    min_size=1,
    max_size=3,
)
# Daily windows in a few zones (with and without DST), wrapping midnight or not.
_TIME_WINDOWS = st.builds(
    TimeWindow,
    start=st.sampled_from([time(22), time(9), time(1, 30)]),
    end=st.sampled_from([time(6), time(17), time(2, 30)]),
    timezone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
    must_finish_in_window=st.booleans(),
)


@st.composite
def _jobs(
    draw: st.DrawFn,
    *,
    tenants: st.SearchStrategy[str],
    projects: st.SearchStrategy[str],
    statuses: st.SearchStrategy[JobStatus],
    requests: st.SearchStrategy[ResourceRequest],
    idempotency: bool | None,
    key_strategy: st.SearchStrategy[str],
    local_queues: st.SearchStrategy[str | None],
    created: st.SearchStrategy[datetime],
    max_retries: int,
    optional_fields: bool | None,
) -> Job:
    def some() -> bool:
        """Whether to set the next optional field."""
        return draw(st.booleans()) if optional_fields is None else optional_fields

    status = draw(statuses)
    created_at = draw(created)
    step = timedelta(seconds=draw(st.integers(0, 3600)))
    admitted, started, ended = _TIMELINE_STATUSES[status]
    limit = draw(st.integers(0, max_retries))
    # A brand-new job has not been retried yet; later states may have used part of the budget.
    retries = 0 if status is JobStatus.PENDING else draw(st.integers(0, limit))
    estimated = draw(_DURATIONS) if some() else None
    maximum = draw(_DURATIONS) if some() else None
    if estimated is not None and maximum is not None and estimated > maximum:
        estimated, maximum = maximum, estimated
    use_key = draw(st.booleans()) if idempotency is None else idempotency
    source = draw(_SOURCES) if optional_fields is not False else JobSource.DIRECT
    updated_at = created_at + step * 3
    priority = draw(_PRIORITIES)
    fields: dict[str, Any] = {
        "id": JobId(draw(st.uuids()).hex),
        "name": draw(_JOB_NAMES),
        "tenant": TenantId(draw(tenants)),
        "project": ProjectId(draw(projects)),
        "job_type": draw(_JOB_TYPES),
        "request": draw(requests),
        "local_queue": draw(local_queues),
        "estimated_duration": estimated,
        "max_duration": maximum,
        "deadline": created_at + step * 4 + timedelta(hours=1) if some() else None,
        "time_window": draw(_TIME_WINDOWS) if some() else None,
        "priority": priority,
        "preemptible": draw(st.booleans()),
        "preempts_others": draw(st.booleans()),
        "status": status,
        "retry_count": retries,
        "max_retries": limit,
        "budget_limit": draw(_BUDGETS) if some() else None,
        "budget_action": draw(st.sampled_from(BudgetAction)) if some() else None,
        "labels": draw(_SOME_LABELS if optional_fields else _LABELS) if optional_fields is not False else {},
        "idempotency_key": draw(key_strategy) if use_key else None,
        "source": source,
        "created_at": created_at,
        "updated_at": updated_at,
    }
    # Known at submission: the priority class it names (the built-in one of its priority, which
    # every configuration resolves) and the resolved value, a price estimate, a declared
    # checkpoint interval, the scheduler's estimated window, and where the job came from.
    if some():
        fields["priority_class"] = priority.kueue_class_name
    if some():
        values = _CRITICAL_VALUES if priority is JobPriority.CRITICAL else _PRIORITY_VALUES
        fields["workload_priority"] = draw(values)
    if some():
        fields["estimated_cost"] = draw(_COSTS)
    if some():
        fields["checkpoint_interval"] = draw(_CHECKPOINT_INTERVALS)
    if some():  # what to deploy: free-form to the scheduler, kept as given by every store
        fields["deployment_type"] = draw(st.sampled_from(DeploymentType))
        fields["spec"] = draw(_DEPLOYMENT_SPECS)
    if some():
        start = created_at + timedelta(seconds=draw(_SECONDS_6H))
        fields["estimated_start"] = start
        fields["estimated_end"] = start + timedelta(seconds=draw(_SECONDS_6H))
    if source is JobSource.PIPELINE or optional_fields:
        fields["pipeline_id"] = draw(_PIPELINE_IDS)
        if some():
            fields["pipeline_step_id"] = draw(_STEP_IDS)
    if source is JobSource.USECASE or optional_fields:
        fields["usecase_deployment_id"] = draw(_USECASE_IDS)
    # Only once the job has a history: a status message, retries and preemptions, costs.
    if status is not JobStatus.PENDING and some():
        fields["status_message"] = draw(_STATUS_MESSAGES)
    if retries and some():
        fields["next_retry_at"] = updated_at + timedelta(seconds=draw(st.integers(1, 600)))
    if status is JobStatus.PREEMPTED:
        fields["preemption_count"] = draw(st.integers(1, 3))  # it has been preempted at least once
    elif status is not JobStatus.PENDING and some():
        fields["preemption_count"] = draw(st.integers(0, 3))  # requeued after earlier preemptions
    if (retries or fields.get("preemption_count")) and some():
        # Admitted time of the earlier runs (a retry or a preemption ended one).
        fields["accumulated_runtime"] = timedelta(seconds=draw(st.integers(1, 6 * 3600)))
    if admitted:
        fields["admitted_at"] = created_at + step
    if started:
        actual_start = created_at + step * 2
        fields["actual_start"] = actual_start
        if some():
            fields["last_checkpoint_at"] = actual_start + timedelta(
                seconds=draw(st.integers(0, step.seconds))
            )
        if some():
            fields["actual_cost"] = draw(_COSTS)
    if ended:
        fields["actual_end"] = created_at + step * 3
        if some():
            fields["outputs"] = draw(_OUTPUTS)
    return Job(**fields)


def jobs(
    *,
    tenants: Sequence[str] | st.SearchStrategy[str] = DEFAULT_TENANTS,
    projects: Sequence[str] | st.SearchStrategy[str] = DEFAULT_PROJECTS,
    statuses: Sequence[JobStatus] | None = (JobStatus.PENDING,),
    max_gpus: int = 8,
    max_pod_sets: int = 2,
    max_pods: int = 4,
    with_idempotency_key: bool | None = None,
    idempotency_key_pool: Sequence[str] = DEFAULT_IDEMPOTENCY_KEYS,
    local_queues: Sequence[str | None] = (None, *DEFAULT_LOCAL_QUEUES),
    created_at: st.SearchStrategy[datetime] | None = None,
    max_retries: int = 5,
    optional_fields: bool | None = None,
) -> st.SearchStrategy[Job]:
    """Valid ``Job``s at version 0, ready to hand to ``JobStore.create``.

    - ``statuses``: the statuses to draw from (default only ``pending``, what a new job is;
      ``None`` for all). Timestamps match the status (a running job has ``actual_start``, a
      terminal one ``actual_end``).
    - ``tenants``/``projects``: pools (or strategies); small pools make tenant collisions likely.
      Every member of a pool must be a valid identifier; a bad one is a ``ValidationError``
      naming the argument when the strategy is built.
    - ``with_idempotency_key``: ``True`` always sets a key, ``False`` never, ``None`` sometimes; keys
      come from ``idempotency_key_pool`` most of the time, so two generated jobs of one tenant
      may share a key (a store must then return the first on the second create).
    - ``optional_fields``: ``None`` (default) sets each optional field about half the time,
      ``True`` sets every one the status allows (one example then exercises every column of a
      store), ``False`` none (lean jobs). The optional fields are the durations, ``deadline``,
      ``budget_limit``, ``labels``, ``estimated_cost``, ``checkpoint_interval``,
      ``estimated_start``/``estimated_end`` and the provenance ids (``pipeline_id`` and
      ``pipeline_step_id`` for ``source=pipeline``, ``usecase_deployment_id`` for ``usecase``;
      ``True`` sets all three), ``priority_class`` (the built-in class of ``priority``, so any
      configuration resolves it) and ``workload_priority`` (at least 1000 for a critical job),
      plus, once the status implies a history, ``status_message``,
      ``next_retry_at`` (after a retry), ``preemption_count`` (at least 1 for a preempted job),
      ``accumulated_runtime`` (after a retry or a preemption),
      ``last_checkpoint_at`` and ``actual_cost`` (after the start) and ``outputs`` (at the end).
    - ``max_gpus``/``max_pod_sets``/``max_pods`` bound the resource request.
    - ``created_at``: an aware datetime strategy (default :func:`utc_datetimes`); keep it a day
      clear of ``datetime.max`` since later timestamps are derived from it (all within 13 hours).
    - ``retry_count <= max_retries <= max_retries`` argument always holds.
    """
    if max_retries < 0:
        raise ValidationError("max_retries must be >= 0", path="max_retries")
    if max_gpus < 0:
        raise ValidationError(f"max_gpus must be >= 0, got {max_gpus}", path="max_gpus")
    if max_pod_sets < 1:
        raise ValidationError(f"max_pod_sets must be >= 1, got {max_pod_sets}", path="max_pod_sets")
    if max_pods < 1:
        raise ValidationError(f"max_pods must be >= 1, got {max_pods}", path="max_pods")
    if created_at is not None and not isinstance(created_at, st.SearchStrategy):
        raise ValidationError("must be a strategy of aware datetimes (e.g. st.just(dt))", path="created_at")
    queue_pool = tuple(local_queues) if local_queues else ()
    for queue in queue_pool:
        if queue is not None and (not isinstance(queue, str) or not queue):
            raise ValidationError(f"must contain queue names or None, got {queue!r}", path="local_queues")
    queues = st.sampled_from(queue_pool) if queue_pool else st.none()
    return _jobs(
        tenants=_pool(tenants, "tenants", lambda t: check_name(t, "tenant")),
        projects=_pool(projects, "projects", lambda p: check_name(p, "project")),
        statuses=job_statuses(statuses),
        requests=resource_requests(max_pod_sets=max_pod_sets, max_pods=max_pods, max_gpus=max_gpus),
        idempotency=with_idempotency_key,
        key_strategy=_idempotency_keys(idempotency_key_pool, "idempotency_key_pool"),
        local_queues=queues,
        created=created_at if created_at is not None else utc_datetimes(),
        max_retries=max_retries,
        optional_fields=optional_fields,
    )


# Nodes and fleets -----------------------------------------------------------------------------
@st.composite
def _nodes(
    draw: st.DrawFn,
    *,
    names: st.SearchStrategy[str],
    gpu_types: tuple[str, ...],
    min_gpus: int,
    max_gpus: int,
    cpu_only: bool,
) -> Node:
    name = draw(names)
    cpu_cores = draw(st.sampled_from((8, 16, 32, 64, 128, 224)))
    memory_gib = draw(st.sampled_from((32, 64, 128, 256, 512, 1024, 2048)))
    allocatable: dict[str, int] = {CPU: cpu_cores * MILLI, MEMORY: memory_gib * _GIB * MILLI}
    labels = {"kubernetes.io/hostname": name}
    if not cpu_only:
        gpu_type = draw(st.sampled_from(gpu_types))
        allocatable[NVIDIA_GPU] = draw(st.integers(min_gpus, max_gpus)) * MILLI
        labels[GPU_PRODUCT_LABEL] = gpu_type
    else:
        labels["node-role.budcore.io/cpu"] = "true"
    if draw(st.booleans()):
        labels["topology.kubernetes.io/zone"] = draw(st.sampled_from(("zone-a", "zone-b")))
    return Node(name=name, labels=labels, allocatable=ResourceVector(allocatable))


def nodes(
    *,
    name: str | None = None,
    gpu_types: Sequence[str] = DEFAULT_GPU_TYPES,
    min_gpus: int = 1,
    max_gpus: int = 8,
    cpu_only: bool = False,
) -> st.SearchStrategy[Node]:
    """A schedulable GPU node: ``min_gpus..max_gpus`` ``nvidia.com/gpu`` of one product.

    The product is the ``nvidia.com/gpu.product`` label (one of ``gpu_types``), which is what
    ResourceFlavors' ``nodeLabels`` select on; ``cpu_only`` gives a node without GPUs instead.
    """
    types = tuple(gpu_types)
    if not cpu_only and not types:
        raise ValidationError("gpu_types must not be empty for GPU nodes", path="gpu_types")
    _check_gpu_range(min_gpus, max_gpus)
    names = st.just(name) if name is not None else _DNS_LABEL.map(lambda s: f"node-{s}")
    return _nodes(names=names, gpu_types=types, min_gpus=min_gpus, max_gpus=max_gpus, cpu_only=cpu_only)


@st.composite
def _fleets(
    draw: st.DrawFn,
    *,
    min_nodes: int,
    max_nodes: int,
    gpu_types: tuple[str, ...],
    min_gpus: int,
    max_gpus: int,
    cpu_nodes: bool,
) -> list[Node]:
    count = draw(st.integers(min_nodes, max_nodes))
    fleet: list[Node] = []
    for index in range(count):
        cpu_only = cpu_nodes and draw(st.integers(0, 4)) == 0
        fleet.append(
            draw(
                nodes(
                    name=f"node-{index:03d}",
                    gpu_types=gpu_types,
                    min_gpus=min_gpus,
                    max_gpus=max_gpus,
                    cpu_only=cpu_only,
                )
            )
        )
    return fleet


def fleets(
    min_nodes: int = 1,
    max_nodes: int = 8,
    *,
    gpu_types: Sequence[str] = DEFAULT_GPU_TYPES,
    min_gpus: int = 1,
    max_gpus: int = 8,
    cpu_nodes: bool = False,
) -> st.SearchStrategy[list[Node]]:
    """A heterogeneous fleet: ``min_nodes..max_nodes`` nodes with unique names ``node-000``…

    Each node has one GPU product from ``gpu_types`` and ``min_gpus..max_gpus`` GPUs; with
    ``cpu_nodes`` about one node in five has no GPU at all.
    """
    if not 0 <= min_nodes <= max_nodes:
        raise ValidationError(
            f"need 0 <= min_nodes <= max_nodes, got {min_nodes}..{max_nodes}", path="min_nodes"
        )
    types = tuple(gpu_types)
    if not types:
        raise ValidationError("gpu_types must not be empty", path="gpu_types")
    _check_gpu_range(min_gpus, max_gpus)
    return _fleets(
        min_nodes=min_nodes,
        max_nodes=max_nodes,
        gpu_types=types,
        min_gpus=min_gpus,
        max_gpus=max_gpus,
        cpu_nodes=cpu_nodes,
    )


@st.composite
def _workloads(
    draw: st.DrawFn,
    *,
    job_ids: st.SearchStrategy[str],
    tenants: st.SearchStrategy[str],
    gpu_types: tuple[str, ...],
    max_pod_sets: int,
    max_pods: int,
    max_gpus: int,
) -> Workload:
    names = draw(st.lists(_DNS_LABEL, min_size=1, max_size=max_pod_sets, unique=True))
    placements = []
    for name in names:
        selector_type = draw(st.none() | st.sampled_from(gpu_types))
        selector = {GPU_PRODUCT_LABEL: selector_type} if selector_type is not None else {}
        placements.append(
            PodSetPlacement(
                name=name,
                count=draw(st.integers(1, max_pods)),
                resources=draw(
                    pod_resources(max_gpus=max_gpus, max_cpu_milli=16 * MILLI, max_memory_gib=128)
                ),
                node_selector=selector,
            )
        )
    return Workload(
        job_id=JobId(draw(job_ids)),
        tenant=TenantId(draw(tenants)),
        pod_sets=tuple(placements),
        priority=draw(job_priorities()).value_int,
    )


def workloads(
    *,
    job_ids: st.SearchStrategy[str] | None = None,
    tenants: Sequence[str] | st.SearchStrategy[str] = DEFAULT_TENANTS,
    gpu_types: Sequence[str] = DEFAULT_GPU_TYPES,
    max_pod_sets: int = 2,
    max_pods: int = 3,
    max_gpus: int = 8,
) -> st.SearchStrategy[Workload]:
    """Admitted ``Workload``s as a cluster backend receives them.

    Each pod set selects one GPU product from ``gpu_types`` through ``nvidia.com/gpu.product``
    (or no node selector at all), so on a :func:`fleets` fleet some placements are possible and
    some are not. ``job_ids`` defaults to unique hex ids.
    """
    if max_pod_sets < 1:
        raise ValidationError(f"max_pod_sets must be >= 1, got {max_pod_sets}", path="max_pod_sets")
    if max_pods < 1:
        raise ValidationError(f"max_pods must be >= 1, got {max_pods}", path="max_pods")
    _check_gpu_range(0, max_gpus)
    ids = job_ids if job_ids is not None else st.uuids().map(lambda u: u.hex)
    types = tuple(gpu_types)
    if not types:
        raise ValidationError("gpu_types must not be empty", path="gpu_types")
    return _workloads(
        job_ids=ids,
        tenants=_pool(tenants, "tenants"),
        gpu_types=types,
        max_pod_sets=max_pod_sets,
        max_pods=max_pods,
        max_gpus=max_gpus,
    )


# Kueue queue configurations -------------------------------------------------------------------
_QUEUE_RESOURCES = (
    "cpu",
    "memory",
    "nvidia.com/gpu",
    "amd.com/gpu",
    "ephemeral-storage",
    "example.com/widget",
)
_QUEUE_LABEL_KEYS = (
    "nvidia.com/gpu.product",
    "topology.kubernetes.io/zone",
    "node.kubernetes.io/instance-type",
    "tier",
)
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_INT32 = st.integers(-(2**31), 2**31 - 1)
# DNS-1123 labels and subdomains (Kueue object names), including dotted names.
_OBJECT_LABELS = st.builds(
    lambda first, middle, last: first + (middle + last if middle else ""),
    st.sampled_from("abcdefgxyz"),
    st.text("abz09-", max_size=9),
    st.sampled_from("az09"),
)
_OBJECT_NAMES = st.one_of(_OBJECT_LABELS, st.tuples(_OBJECT_LABELS, _OBJECT_LABELS).map(".".join))
_LABEL_VALUES = st.builds(
    lambda first, middle, last: first + (middle + last if middle else ""),
    st.sampled_from("aZ09"),
    st.text("aZ09-_.", max_size=12),
    st.sampled_from("aZ09"),
)
_FREE_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=40)
# Milli-units: small ones (often fractional), whole units, and exact binary byte sizes.
_QUOTA_AMOUNTS = st.one_of(
    st.integers(0, 10**7),
    st.integers(0, 10**6).map(lambda n: n * 1000),
    st.tuples(st.integers(1, 1024), st.sampled_from([2**10, 2**20, 2**30, 2**40])).map(
        lambda t: t[0] * t[1] * 1000
    ),
)
_OPTIONAL_QUOTA_AMOUNTS = st.none() | _QUOTA_AMOUNTS
_FAIR_SHARING = st.one_of(st.just(1000), st.integers(0, 10**6)).map(lambda w: FairSharing(weight=w))
_QUEUE_LABEL_MAPS = st.dictionaries(st.sampled_from(_QUEUE_LABEL_KEYS), _LABEL_VALUES, max_size=4)


@st.composite
def _taints(draw: st.DrawFn) -> dict[str, str]:
    taint = {"key": draw(st.sampled_from(_QUEUE_LABEL_KEYS)), "effect": draw(st.sampled_from(_TAINT_EFFECTS))}
    if draw(st.booleans()):
        taint["value"] = draw(_LABEL_VALUES)
    return taint


@st.composite
def _tolerations(draw: st.DrawFn) -> dict[str, str]:
    operator = draw(st.sampled_from([None, "Equal", "Exists"]))
    toleration: dict[str, str] = {}
    if operator is not None:
        toleration["operator"] = operator
    if not (operator == "Exists" and draw(st.booleans())):  # Exists without a key tolerates all
        toleration["key"] = draw(st.sampled_from(_QUEUE_LABEL_KEYS))
    if operator != "Exists" and draw(st.booleans()):
        toleration["value"] = draw(_LABEL_VALUES)
    effect = draw(st.sampled_from([None, *_TAINT_EFFECTS]))
    if effect is not None:
        toleration["effect"] = effect
        if effect == "NoExecute" and draw(st.booleans()):
            toleration["tolerationSeconds"] = str(draw(st.integers(0, 10**6)))
    return toleration


@st.composite
def _resource_flavors(draw: st.DrawFn, name: str) -> ResourceFlavor:
    labels = draw(_QUEUE_LABEL_MAPS)
    return ResourceFlavor(
        name=name,
        node_labels=labels,
        node_taints=tuple(draw(st.lists(_taints(), max_size=3))),
        tolerations=tuple(draw(st.lists(_tolerations(), max_size=3))),
        topology_name=draw(st.none() | _OBJECT_NAMES) if labels else None,
    )


@st.composite
def _resource_groups(
    draw: st.DrawFn, flavor_names: Sequence[str], *, limits: bool
) -> tuple[ResourceGroup, ...]:
    """Disjoint groups over a subset of the resources and flavors (each used at most once)."""
    if not flavor_names:
        return ()
    resources = draw(st.lists(st.sampled_from(_QUEUE_RESOURCES), unique=True, min_size=1, max_size=4))
    flavors = draw(st.permutations(list(flavor_names)))
    count = draw(st.integers(1, min(len(resources), len(flavors), 3)))
    groups = []
    for gi in range(count):
        covered = resources[gi::count]
        group_flavors = flavors[gi::count][: draw(st.integers(1, 3))]
        flavor_quotas = []
        for flavor in group_flavors:
            quotas = []
            for resource in covered:
                nominal = draw(_QUOTA_AMOUNTS)
                borrowing = draw(_OPTIONAL_QUOTA_AMOUNTS) if limits else None
                lending = draw(st.none() | st.integers(0, nominal)) if limits else None
                quotas.append(
                    ResourceQuota(
                        name=resource, nominal_quota=nominal, borrowing_limit=borrowing, lending_limit=lending
                    )
                )
            flavor_quotas.append(FlavorQuotas(name=flavor, resources=tuple(quotas)))
        groups.append(ResourceGroup(covered_resources=tuple(covered), flavors=tuple(flavor_quotas)))
    return tuple(groups)


@st.composite
def _preemptions(draw: st.DrawFn) -> ClusterQueuePreemption:
    reclaim = draw(st.sampled_from(list(ReclaimWithinCohort)))
    # CEL rule of the CRD: borrowWithinCohort needs reclaimWithinCohort other than Never.
    policy = (
        BorrowWithinCohortPolicy.NEVER
        if reclaim is ReclaimWithinCohort.NEVER
        else draw(st.sampled_from(list(BorrowWithinCohortPolicy)))
    )
    return ClusterQueuePreemption(
        within_cluster_queue=draw(st.sampled_from(list(WithinClusterQueue))),
        reclaim_within_cohort=reclaim,
        borrow_within_cohort=BorrowWithinCohort(
            policy=policy, max_priority_threshold=draw(st.none() | _INT32)
        ),
    )


def _cluster_queue(
    draw: st.DrawFn, name: str, flavor_names: Sequence[str], cohort: str | None
) -> ClusterQueue:
    return ClusterQueue(
        name=name,
        cohort=cohort,
        # Kueue allows borrowing/lending limits only in a cohort.
        resource_groups=draw(_resource_groups(flavor_names, limits=cohort is not None)),
        queueing_strategy=draw(st.sampled_from(list(QueueingStrategy))),
        preemption=draw(_preemptions()),
        flavor_fungibility=FlavorFungibility(
            when_can_borrow=draw(st.sampled_from(list(FungibilityAction))),
            when_can_preempt=draw(st.sampled_from(list(FungibilityAction))),
        ),
        fair_sharing=draw(_FAIR_SHARING),
        namespace_selector=draw(
            st.none() | st.dictionaries(st.sampled_from(_QUEUE_LABEL_KEYS), _LABEL_VALUES, max_size=3)
        ),
        stop_policy=draw(st.sampled_from(list(StopPolicy))),
        admission_fair_sharing=draw(st.booleans()),
    )


def _object_name_pool(values: Sequence[str], what: str) -> tuple[str, ...]:
    if isinstance(values, str):
        raise ValidationError("must be a sequence of names, not a string", path=what)
    names = tuple(values)
    for index, value in enumerate(names):
        if not isinstance(value, str) or not value:
            raise ValidationError(f"item {index} must be a non-empty name, got {value!r}", path=what)
    if len(set(names)) != len(names):
        raise ValidationError(f"names must be unique, got {list(names)}", path=what)
    return names


def resource_flavors(*, name: str | None = None) -> st.SearchStrategy[ResourceFlavor]:
    """Kueue ``ResourceFlavor``s: node labels, taints, tolerations (CRD-valid), a topology name.

    ``name`` fixes the name (default: a DNS subdomain such as ``a0`` or ``gpu.zone-a``).
    """
    if name is not None and (not isinstance(name, str) or not name):
        raise ValidationError(f"must be a non-empty name, got {name!r}", path="name")
    names = st.just(name) if name is not None else _OBJECT_NAMES
    return names.flatmap(lambda n: _resource_flavors(n))


@st.composite
def _cluster_queues(
    draw: st.DrawFn,
    *,
    names: st.SearchStrategy[str],
    flavor_names: tuple[str, ...],
    cohorts: st.SearchStrategy[str | None],
) -> ClusterQueue:
    return _cluster_queue(draw, draw(names), flavor_names, draw(cohorts))


def cluster_queues(
    *,
    name: str | None = None,
    flavors: Sequence[str] = ("default-flavor",),
    cohorts: Sequence[str | None] = (None,),
) -> st.SearchStrategy[ClusterQueue]:
    """Kueue ``ClusterQueue``s whose resource groups use (a subset of) ``flavors``.

    Each flavor appears in at most one resource group and each resource is covered once (Kueue's
    webhook rules); quotas are arbitrary milli-units, ``lendingLimit <= nominalQuota``, and
    borrowing/lending limits appear only when the queue has a cohort (drawn from ``cohorts``;
    ``None`` means no cohort). Preemption, fungibility, fair sharing, namespace selector and stop
    policy vary over every value the CRD accepts. Pair it with :func:`resource_flavors` of the
    same names (or use :func:`queue_configs`) to get a configuration that resolves.
    """
    flavor_names = _object_name_pool(flavors, "flavors")
    cohort_pool = tuple(cohorts)
    if not cohort_pool:
        raise ValidationError("must not be empty (pass (None,) for queues without a cohort)", path="cohorts")
    for index, cohort in enumerate(cohort_pool):
        if cohort is not None and (not isinstance(cohort, str) or not cohort):
            raise ValidationError(
                f"item {index} must be a cohort name or None, got {cohort!r}", path="cohorts"
            )
    if name is not None and (not isinstance(name, str) or not name):
        raise ValidationError(f"must be a non-empty name, got {name!r}", path="name")
    return _cluster_queues(
        names=st.just(name) if name is not None else _OBJECT_NAMES,
        flavor_names=flavor_names,
        cohorts=st.sampled_from(cohort_pool),
    )


@st.composite
def _queue_configs(draw: st.DrawFn, max_cluster_queues: int) -> QueueConfig:
    names = st.lists(_OBJECT_NAMES, unique=True, max_size=5)
    flavor_names = draw(names)
    flavors = [draw(_resource_flavors(name)) for name in flavor_names]

    cohort_names = draw(names)
    # Generated names start with a letter, so a leading digit keeps implicit names distinct.
    implicit = [f"0{n}" for n in draw(st.lists(_OBJECT_LABELS, unique=True, max_size=2))]
    cohort_objects = []
    for i, name in enumerate(cohort_names):
        # Parents come from earlier cohorts or implicit ones, so the parent graph is a forest.
        parent = draw(st.none() | st.sampled_from([*cohort_names[:i], *implicit] or [None]))
        cohort_objects.append(
            Cohort(
                name=name,
                parent=parent,
                # Kueue allows borrowing/lending limits only below a parent.
                resource_groups=draw(_resource_groups(flavor_names, limits=parent is not None)),
                fair_sharing=draw(_FAIR_SHARING),
            )
        )

    cq_names = draw(st.lists(_OBJECT_NAMES, unique=True, max_size=max_cluster_queues))
    queues = [
        _cluster_queue(
            draw, name, flavor_names, draw(st.none() | st.sampled_from([*cohort_names, *implicit] or [None]))
        )
        for name in cq_names
    ]

    local_queues: list[LocalQueue] = []
    if cq_names:
        keys = draw(st.lists(st.tuples(_OBJECT_LABELS, _OBJECT_NAMES), unique=True, max_size=6))
        local_queues = [
            LocalQueue(
                name=name,
                namespace=namespace,
                cluster_queue=draw(st.sampled_from(cq_names)),
                stop_policy=draw(st.sampled_from(list(StopPolicy))),
                fair_sharing=draw(_FAIR_SHARING),
            )
            for namespace, name in keys
        ]

    priority_classes = [
        WorkloadPriorityClass(name=name, value=draw(_INT32), description=draw(_FREE_TEXT))
        for name in draw(names)
    ]
    return QueueConfig.build(
        flavors=flavors,
        cluster_queues=queues,
        cohorts=cohort_objects,
        local_queues=local_queues,
        priority_classes=priority_classes,
    )


def queue_configs(max_cluster_queues: int = 5) -> st.SearchStrategy[QueueConfig]:
    """Complete ``QueueConfig``s (possibly empty) that Kueue itself would accept.

    References resolve (ClusterQueues name existing flavors, LocalQueues existing ClusterQueues),
    cohort parents form a forest (implicit cohorts, named but not defined, are included on
    purpose), borrowing/lending limits appear only where Kueue allows them, and preemption, taint
    and toleration settings satisfy the CRDs' CEL rules, so every generated configuration
    survives ``loads_queue_config(dump_queue_config(config))`` unchanged. Amounts include
    fractional milli-units (``1234m``) and exact binary sizes (``64Gi``).
    """
    if max_cluster_queues < 0:
        raise ValidationError(
            f"max_cluster_queues must be >= 0, got {max_cluster_queues}", path="max_cluster_queues"
        )
    return _queue_configs(max_cluster_queues=max_cluster_queues)
