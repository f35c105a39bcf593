"""``budcore demo``: a short end-to-end run through the real core and the in-memory adapter.

Three tenants share a cohort over a heterogeneous fleet (H100, A100 and L4 pools). Jobs are
submitted through :class:`budcore.service.JobService`, admitted by the Kueue-compatible
:class:`budcore.scheduling.Scheduler`, started on the plugin-resolved in-memory cluster backend and
completed on a virtual clock; the command prints what happened: a table of the jobs and a summary,
or the same as JSON (``--format json``: ``jobs``, ``pending`` and ``summary``) or the jobs as CSV.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from budcore.cli.output import (
    TABLE_FORMAT_HELP,
    TABLE_FORMATS,
    WIDE_HELP,
    key_column,
    output_format,
    plain_console,
    print_table,
    write_csv,
)
from budcore.domain.cluster import Node, PodSetPlacement, Workload
from budcore.domain.errors import CapacityError, PluginError
from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import Job, JobStatus, JobType, PodSet, ResourceRequest
from budcore.domain.priority import JobPriority
from budcore.domain.quantity import human_amount
from budcore.domain.resources import NVIDIA_GPU, ResourceVector
from budcore.plugins import default_registry
from budcore.ports.cluster_backend import SimulatedClusterBackend
from budcore.scheduling import (
    ClusterQueue,
    Cohort,
    FlavorQuotas,
    LocalQueue,
    QueueConfig,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
    Scheduler,
)
from budcore.service import JobService

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
POOLS = {  # flavor: (GPU product label, nodes, GPUs per node)
    "h100": ("NVIDIA-H100-80GB-HBM3", 2, 8),
    "a100": ("NVIDIA-A100-SXM4-80GB", 2, 8),
    "l4": ("NVIDIA-L4", 2, 8),
}
TENANTS = {"research": (12, 10), "product": (10, 4), "batch": (6, 12)}  # nominal GPUs, borrowing limit


class VirtualClock:
    """A clock the demo moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current


def split(capacity: int, weights: dict[str, int]) -> dict[str, int]:
    """Split ``capacity`` in proportion to ``weights`` so the parts add up exactly (largest remainder)."""
    total = sum(weights.values())
    parts = {k: capacity * w // total for k, w in weights.items()}
    by_remainder = sorted(weights, key=lambda k: (-(capacity * weights[k] % total), k))
    for k in by_remainder[: capacity - sum(parts.values())]:
        parts[k] += 1
    return parts


def demo_config() -> QueueConfig:
    flavors = [
        ResourceFlavor(name=name, node_labels={"nvidia.com/gpu.product": product})
        for name, (product, _, _) in POOLS.items()
    ]
    total = {name: nodes * gpus for name, (_, nodes, gpus) in POOLS.items()}
    weights = {t: nominal for t, (nominal, _) in TENANTS.items()}
    nominal_of = {flavor: split(capacity, weights) for flavor, capacity in total.items()}
    cqs = []
    for tenant, (_, borrowing) in TENANTS.items():
        quotas = []
        for flavor in total:
            nominal = nominal_of[flavor][tenant]
            quotas.append(
                FlavorQuotas(
                    name=flavor,
                    resources=(
                        ResourceQuota(
                            name=NVIDIA_GPU, nominal_quota=nominal * 1000, borrowing_limit=borrowing * 1000
                        ),
                        ResourceQuota(
                            name="cpu", nominal_quota=nominal * 12_000, borrowing_limit=borrowing * 12_000
                        ),
                    ),
                )
            )
        cqs.append(
            ClusterQueue(
                name=f"{tenant}-cq",
                cohort="fleet",
                resource_groups=(
                    ResourceGroup(covered_resources=(NVIDIA_GPU, "cpu"), flavors=tuple(quotas)),
                ),
            )
        )
    return QueueConfig.build(
        flavors=flavors,
        cohorts=[Cohort(name="fleet")],
        cluster_queues=cqs,
        local_queues=[LocalQueue(name="main", namespace=t, cluster_queue=f"{t}-cq") for t in TENANTS],
    )


def demo_nodes() -> list[Node]:
    return [
        Node(
            name=f"{flavor}-{i}",
            labels={"nvidia.com/gpu.product": product, "budcore.io/pool": flavor},
            allocatable=ResourceVector.of({NVIDIA_GPU: gpus, "cpu": 96, "memory": "1Ti"}),
        )
        for flavor, (product, count, gpus) in POOLS.items()
        for i in range(count)
    ]


def demo_jobs() -> list[tuple[Job, timedelta]]:
    """A fixed, varied mix: (job, runtime)."""
    mix = [
        ("research", JobType.TRAINING, 8, 2, JobPriority.HIGH, "NVIDIA-H100-80GB-HBM3", 180),
        ("research", JobType.TRAINING, 8, 1, JobPriority.NORMAL, None, 120),
        ("research", JobType.BATCH, 2, 1, JobPriority.LOW, None, 45),
        ("product", JobType.SERVICE, 1, 4, JobPriority.CRITICAL, "NVIDIA-L4", 240),
        ("product", JobType.SERVICE, 2, 2, JobPriority.HIGH, None, 240),
        ("product", JobType.BATCH, 4, 1, JobPriority.NORMAL, None, 60),
        ("batch", JobType.BATCH, 1, 1, JobPriority.SPOT, None, 30),
        ("batch", JobType.BATCH, 4, 1, JobPriority.LOW, None, 90),
        ("batch", JobType.BATCH, 8, 1, JobPriority.NORMAL, None, 60),
        ("batch", JobType.BATCH, 2, 3, JobPriority.LOW, None, 75),
    ]
    jobs = []
    for round_ in range(3):
        for i, (tenant, kind, gpus, pods, priority, accel, minutes) in enumerate(mix):
            jobs.append(
                (
                    Job(
                        id=JobId(f"{tenant}-{round_}-{i}"),
                        name=f"{kind.value}-{round_}-{i}",
                        tenant=TenantId(tenant),
                        job_type=kind,
                        local_queue="main",
                        priority=priority,
                        request=ResourceRequest(
                            pod_sets=(
                                PodSet(
                                    count=pods,
                                    resources=ResourceVector.of({NVIDIA_GPU: gpus, "cpu": 8 * gpus}),
                                ),
                            ),
                            accelerator_type=accel,
                        ),
                        estimated_duration=timedelta(minutes=minutes),
                    ),
                    timedelta(minutes=minutes + 5 * round_),
                )
            )
    return jobs


#: ``--format csv`` columns: one row per job.
JOB_FIELDS = ("job", "tenant", "type", "priority", "gpus", "status", "start", "end")


def run_demo(console: Console, wide: bool = False) -> dict[str, Any]:
    """Run the demo and print its jobs table, the jobs still pending and the summary; returns the summary."""
    result = demo_result()
    table = Table(title="budcore demo: jobs")
    key_column(table, "job")
    for column in ("tenant", "type", "priority", "GPUs", "status", "start", "end"):
        table.add_column(column)
    for row in result["jobs"]:
        start, end = row["start"], row["end"]
        table.add_row(
            row["job"],
            row["tenant"],
            row["type"],
            row["priority"],
            str(row["gpus"]),
            row["status"],
            start[11:16] if start else "-",
            end[11:16] if end else "-",
        )
    print_table(table, wide=wide, console=console)
    for pending in result["pending"]:
        console.print(
            Text.assemble((pending["job"], "yellow"), f" still pending: {pending['reason']}"), highlight=False
        )
    console.print(result["summary"])
    return dict(result["summary"])


def demo_result() -> dict[str, Any]:
    """Run the demo: ``jobs`` (one dict per job, times in ISO 8601), ``pending`` (each with the
    scheduler's reason) and ``summary``."""
    registry = default_registry()
    clock = VirtualClock(START)
    store = registry.job_store("inmemory")
    backend = registry.cluster_backend("inmemory", nodes=demo_nodes(), clock=clock)
    if not isinstance(backend, SimulatedClusterBackend):
        raise PluginError(
            "the demo needs a cluster backend that simulates execution (SimulatedClusterBackend)"
        )
    service = JobService(store, clock)
    scheduler = Scheduler(demo_config())

    finishing: dict[str, datetime] = {}
    runtimes: dict[str, timedelta] = {}
    for job, runtime in demo_jobs():
        stored = service.submit(job)
        scheduler.submit(stored)
        runtimes[stored.id] = runtime
    waits: list[float] = []
    cycles = 0
    requeues = 0
    while scheduler.pending or finishing:
        cycles += 1
        result = scheduler.cycle(clock.now())
        for admit in result.admitted:
            job = store.get(admit.tenant, admit.job_id)
            job = service.move(job, JobStatus.ADMITTED, reason=f"admitted to {admit.cluster_queue}")
            placements = []
            for pod_set in job.request.pod_sets:
                flavor = admit.flavors[pod_set.name][NVIDIA_GPU]
                placements.append(
                    PodSetPlacement(
                        name=pod_set.name,
                        count=pod_set.count,
                        resources=pod_set.resources,
                        node_selector={"budcore.io/pool": flavor},
                        flavors=admit.flavors[pod_set.name],
                    )
                )
            try:
                backend.submit(Workload(job_id=job.id, tenant=job.tenant, pod_sets=tuple(placements)))
            except CapacityError as exc:
                # Quota admitted it but the pods do not fit the free nodes (fragmentation): like
                # Kueue's waitForPodsReady, give the quota back and requeue at the same position.
                scheduler.release(job.id, clock.now())
                requeued = service.move(job, JobStatus.QUEUED, reason=f"pods could not be placed: {exc}")
                scheduler.submit(requeued, timestamp=job.created_at.timestamp())
                requeues += 1
                continue
            service.move(job, JobStatus.RUNNING, reason="pods started")
            waits.append((clock.now() - job.created_at).total_seconds())
            finishing[job.id] = clock.now() + runtimes[job.id]
        if not finishing:
            break
        # Advance the clock to the next completion and finish everything due then.
        clock.current = min(finishing.values())
        for job_id, end in sorted(finishing.items()):
            if end <= clock.current:
                del finishing[job_id]
                job = next(j for j in store.list(None) if j.id == job_id)
                backend.complete(job.id)
                scheduler.release(job.id, clock.now())
                service.move(job, JobStatus.COMPLETED, reason="finished")

    jobs = store.list(None)
    rows = [
        {
            "job": job.id,
            "tenant": job.tenant,
            "type": job.job_type.value,
            "priority": job.priority.value,
            "gpus": job.request.accelerator_count,
            "status": job.status.value,
            "start": job.actual_start.isoformat() if job.actual_start else None,
            "end": job.actual_end.isoformat() if job.actual_end else None,
        }
        for job in sorted(jobs, key=lambda j: (j.actual_start or START, j.id))
    ]
    # The scheduler's reasons quote names: printed as text, never as markup.
    pending = [{"job": j.id, "reason": scheduler.explain(j.id)} for j in jobs if j.id in scheduler.pending]
    statuses = Counter(j.status.value for j in jobs)
    makespan = (clock.now() - START).total_seconds() / 3600
    gpu_hours = (
        sum(r.total_seconds() * store.get(*j.key).request.accelerator_count for j, r in demo_jobs()) / 3600
    )
    capacity = sum(n.allocatable.get(NVIDIA_GPU, 0) for n in backend.nodes()) / 1000
    summary = {
        "jobs": len(jobs),
        "statuses": dict(statuses),
        "cycles": cycles,
        "requeued_unplaceable": requeues,
        "mean_wait_minutes": round(sum(waits) / len(waits) / 60, 1) if waits else 0.0,
        "makespan_hours": round(makespan, 2),
        "gpu_hours": round(gpu_hours, 1),
        "utilisation": round(gpu_hours / (capacity * makespan), 3) if makespan else 0.0,
        "fleet_gpus": human_amount(int(capacity * 1000)),
    }
    return {"jobs": rows, "pending": pending, "summary": summary}


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the summary line.")] = False,
        fmt: Annotated[str, typer.Option("--format", help=TABLE_FORMAT_HELP)] = "table",
        wide: Annotated[bool, typer.Option("--wide", help=WIDE_HELP)] = False,
    ) -> None:
        """Run a short end-to-end scheduling demo on the in-memory adapter."""
        output_format(fmt, TABLE_FORMATS)
        if fmt == "json":
            result = demo_result()
            plain_console().print_json(json.dumps(result["summary"] if quiet else result))
            return
        if fmt == "csv":
            write_csv(demo_result()["jobs"], JOB_FIELDS)
            return
        console = plain_console(quiet=quiet)
        summary = run_demo(console, wide)
        if quiet:
            plain_console().print(summary)
