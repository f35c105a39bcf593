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
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from budcore.domain.cluster import Node, PodSetPlacement, Workload
from budcore.domain.errors import ValidationError
from budcore.domain.ids import JobId, ProjectId, TenantId
from budcore.domain.job import Job, JobSource, JobStatus, JobType, PodSet, ResourceRequest
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

__all__ = [
    "DEFAULT_GPU_TYPES",
    "DEFAULT_IDEMPOTENCY_KEYS",
    "DEFAULT_LOCAL_QUEUES",
    "DEFAULT_PROJECTS",
    "DEFAULT_TENANTS",
    "GPU_PRODUCT_LABEL",
    "MAX_DATETIME",
    "MIN_DATETIME",
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


def _pool(values: Sequence[str] | st.SearchStrategy[str], what: str) -> st.SearchStrategy[str]:
    """A strategy drawing from ``values`` (a pool or already a strategy); ``what`` names the argument."""
    if isinstance(values, st.SearchStrategy):
        return values
    if isinstance(values, str) or not values:
        raise ValidationError("must be a non-empty sequence of strings or a strategy", path=what)
    return st.sampled_from(tuple(values))


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
        return st.integers(-(-lo // MILLI), hi // MILLI).map(lambda n: n * MILLI)
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


def pod_resources(
    *,
    max_gpus: int = 8,
    min_gpus: int = 0,
    gpu_resource: str = NVIDIA_GPU,
    max_cpu_milli: int = 64 * MILLI,
    max_memory_gib: int = 512,
) -> st.SearchStrategy[ResourceVector]:
    """A per-pod request: cpu and memory always, ``min_gpus..max_gpus`` of ``gpu_resource``."""
    if not 0 <= min_gpus <= max_gpus:
        raise ValidationError(f"need 0 <= min_gpus <= max_gpus, got {min_gpus}..{max_gpus}", path="min_gpus")
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
    if not 1 <= min_pod_sets <= max_pod_sets:
        raise ValidationError(
            f"need 1 <= min_pod_sets <= max_pod_sets, got {min_pod_sets}..{max_pod_sets}", path="min_pod_sets"
        )
    if max_pods < 1:
        raise ValidationError("max_pods must be >= 1", path="max_pods")
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
    if not statuses:
        raise ValidationError("must not be empty (pass None for every status)", path="statuses")
    return st.sampled_from(tuple(JobStatus(s) for s in statuses))


def job_priorities() -> st.SearchStrategy[JobPriority]:
    """Any ``JobPriority`` (critical, high, normal, low, spot)."""
    return st.sampled_from(tuple(JobPriority))


def job_types() -> st.SearchStrategy[JobType]:
    """Any ``JobType`` (service, batch, training)."""
    return st.sampled_from(tuple(JobType))


def idempotency_keys(pool: Sequence[str] = DEFAULT_IDEMPOTENCY_KEYS) -> st.SearchStrategy[str]:
    """Idempotency keys: mostly from the small ``pool`` (so replays happen), sometimes unique."""
    unique = st.uuids().map(lambda u: f"key-{u.hex}")
    return st.one_of(_pool(pool, "pool"), unique)


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
_OPTIONAL_DURATIONS = st.none() | _durations()
_OPTIONAL_BUDGETS = st.none() | st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False)
_LABELS = label_dicts()
_JOB_NAMES = st.text(_SAFE_TEXT, min_size=1, max_size=40)
_JOB_TYPES = job_types()
_PRIORITIES = job_priorities()
_SOURCES = st.sampled_from(tuple(JobSource))


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
) -> Job:
    status = draw(statuses)
    created_at = draw(created)
    step = timedelta(seconds=draw(st.integers(0, 3600)))
    admitted, started, ended = _TIMELINE_STATUSES[status]
    limit = draw(st.integers(0, max_retries))
    # A brand-new job has not been retried yet; later states may have used part of the budget.
    retries = 0 if status is JobStatus.PENDING else draw(st.integers(0, limit))
    estimated = draw(_OPTIONAL_DURATIONS)
    maximum = draw(_OPTIONAL_DURATIONS)
    if estimated is not None and maximum is not None and estimated > maximum:
        estimated, maximum = maximum, estimated
    use_key = draw(st.booleans()) if idempotency is None else idempotency
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
        "deadline": created_at + step * 4 + timedelta(hours=1) if draw(st.booleans()) else None,
        "priority": draw(_PRIORITIES),
        "preemptible": draw(st.booleans()),
        "preempts_others": draw(st.booleans()),
        "status": status,
        "retry_count": retries,
        "max_retries": limit,
        "budget_limit": draw(_OPTIONAL_BUDGETS),
        "labels": draw(_LABELS),
        "idempotency_key": draw(key_strategy) if use_key else None,
        "source": draw(_SOURCES),
        "created_at": created_at,
        "updated_at": created_at + step * 3,
    }
    if admitted:
        fields["admitted_at"] = created_at + step
    if started:
        fields["actual_start"] = created_at + step * 2
    if ended:
        fields["actual_end"] = created_at + step * 3
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
) -> st.SearchStrategy[Job]:
    """Valid ``Job``s at version 0, ready to hand to ``JobStore.create``.

    - ``statuses``: the statuses to draw from (default only ``pending``, what a new job is;
      ``None`` for all). Timestamps match the status (a running job has ``actual_start``, a
      terminal one ``actual_end``).
    - ``tenants``/``projects``: pools (or strategies); small pools make tenant collisions likely.
    - ``with_idempotency_key``: ``True`` always sets a key, ``False`` never, ``None`` sometimes; keys
      come from ``idempotency_key_pool`` most of the time, so two generated jobs of one tenant
      may share a key (a store must then return the first on the second create).
    - ``max_gpus``/``max_pod_sets``/``max_pods`` bound the resource request.
    - ``created_at``: an aware datetime strategy (default :func:`utc_datetimes`); keep it a day
      clear of ``datetime.max`` since later timestamps are derived from it.
    - ``retry_count <= max_retries <= max_retries`` argument always holds.
    """
    if max_retries < 0:
        raise ValidationError("max_retries must be >= 0", path="max_retries")
    queues = st.sampled_from(tuple(local_queues)) if local_queues else st.none()
    return _jobs(
        tenants=_pool(tenants, "tenants"),
        projects=_pool(projects, "projects"),
        statuses=job_statuses(statuses),
        requests=resource_requests(max_pod_sets=max_pod_sets, max_pods=max_pods, max_gpus=max_gpus),
        idempotency=with_idempotency_key,
        key_strategy=idempotency_keys(idempotency_key_pool),
        local_queues=queues,
        created=created_at if created_at is not None else utc_datetimes(),
        max_retries=max_retries,
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
    if not 0 <= min_gpus <= max_gpus:
        raise ValidationError(f"need 0 <= min_gpus <= max_gpus, got {min_gpus}..{max_gpus}", path="min_gpus")
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
    if max_pod_sets < 1 or max_pods < 1:
        raise ValidationError("max_pod_sets and max_pods must be >= 1", path="max_pod_sets")
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
