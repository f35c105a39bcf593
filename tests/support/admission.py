"""Small builders for admission tests (configs in Python, jobs with GPU requests)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from budcore.domain.job import Job, PodSet, ResourceRequest
from budcore.domain.priority import JobPriority
from budcore.domain.quantity import parse_quantity
from budcore.domain.resources import ResourceVector
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

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GPU = "nvidia.com/gpu"
_seq = itertools.count()

# flavor -> resource -> nominal | (nominal, borrowingLimit, lendingLimit)
Quotas = Mapping[str, Mapping[str, object]]


def quota(name: str, spec: object) -> ResourceQuota:
    if isinstance(spec, tuple):
        nominal, borrowing, lending = (*spec, None, None)[:3]
    else:
        nominal, borrowing, lending = spec, None, None

    def q(v: object) -> int | None:
        return None if v is None else parse_quantity(v)  # type: ignore[arg-type]

    return ResourceQuota(
        name=name, nominal_quota=q(nominal) or 0, borrowing_limit=q(borrowing), lending_limit=q(lending)
    )


def groups(quotas: Quotas) -> tuple[ResourceGroup, ...]:
    """One resource group covering every resource named, flavors in the given order."""
    resources: list[str] = []
    for per_flavor in quotas.values():
        for r in per_flavor:
            if r not in resources:
                resources.append(r)
    flavors = tuple(
        FlavorQuotas(name=f, resources=tuple(quota(r, quotas[f].get(r, 0)) for r in resources))
        for f in quotas
    )
    return (ResourceGroup(covered_resources=tuple(resources), flavors=flavors),)


def cq(name: str, quotas: Quotas, cohort: str | None = None, **kw: object) -> ClusterQueue:
    return ClusterQueue(name=name, cohort=cohort, resource_groups=groups(quotas), **kw)  # type: ignore[arg-type]


def config(
    cqs: Sequence[ClusterQueue],
    cohorts: Sequence[Cohort] = (),
    flavors: Mapping[str, Mapping[str, str]] | None = None,
) -> QueueConfig:
    """Every CQ gets a LocalQueue named like it in namespace ``ns-<cq>``."""
    flavor_names = {f.name for q in cqs for g in q.resource_groups for f in g.flavors}
    flavor_names |= {f.name for c in cohorts for g in c.resource_groups for f in g.flavors}
    labels = flavors or {}
    return QueueConfig.build(
        flavors=[ResourceFlavor(name=f, node_labels=dict(labels.get(f, {}))) for f in sorted(flavor_names)],
        cluster_queues=cqs,
        cohorts=cohorts,
        local_queues=[LocalQueue(name=q.name, namespace=f"ns-{q.name}", cluster_queue=q.name) for q in cqs],
    )


def job(
    queue: str,
    gpus: int | str = 1,
    *,
    priority: JobPriority = JobPriority.NORMAL,
    pods: int = 1,
    accelerator: str | None = None,
    extra: Mapping[str, object] | None = None,
    pod_sets: Sequence[tuple[int, Mapping[str, object]]] | None = None,
    at: datetime | None = None,
    name: str | None = None,
) -> Job:
    """A job for LocalQueue ``queue`` (namespace ``ns-<queue>``) asking ``gpus`` per pod."""
    n = next(_seq)
    if pod_sets is not None:
        sets = tuple(
            PodSet(name=f"ps{i}", count=count, resources=ResourceVector.of(dict(res)))  # type: ignore[arg-type]
            for i, (count, res) in enumerate(pod_sets)
        )
    else:
        amounts: dict[str, object] = {GPU: gpus}
        amounts.update(extra or {})
        sets = (PodSet(count=pods, resources=ResourceVector.of(amounts)),)  # type: ignore[arg-type]
    created = at or (T0 + timedelta(microseconds=n))
    return Job(
        id=name or f"j{n}",
        name=name or f"j{n}",
        tenant=f"ns-{queue}",
        local_queue=queue,
        request=ResourceRequest(pod_sets=sets, accelerator_type=accelerator),
        priority=priority,
        created_at=created,
        updated_at=created,
    )


def fill(scheduler: Scheduler, jobs: Sequence[Job], now: datetime = T0) -> list[str]:
    """Submit ``jobs`` and run cycles until nothing more is admitted; returns admitted ids in order."""
    for j in jobs:
        scheduler.submit(j)
    admitted: list[str] = []
    while True:
        result = scheduler.cycle(now)
        if not result.admitted:
            return admitted
        admitted.extend(a.job_id for a in result.admitted)


def used(scheduler: Scheduler, queue: str, flavor: str = "default", resource: str = GPU) -> int:
    """Usage of a ClusterQueue in whole units."""
    return scheduler.usage_of(queue).get((flavor, resource), 0) // 1000
