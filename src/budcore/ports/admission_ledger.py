"""The admission ledger port: the quota that admitted jobs hold, kept durably and atomically.

A repository with a unit of work per operation (*Architecture Patterns with Python*): the
aggregate is the quota tree (ClusterQueues and Cohorts with their quotas, the LocalQueues that
lead into them) together with the reservations of admitted jobs. Each operation either applies
completely or not at all, so a scheduler replica whose decision went stale (another replica
admitted first, the job changed, the configuration moved on) gets a typed error and nothing held.

Kueue's quota arithmetic is :mod:`budcore.scheduling.quota`'s, in every implementation: a
reservation fits when, for each (flavor, resource), the request is at most
:func:`~budcore.scheduling.quota.available` for its ClusterQueue, and usage propagates up the
cohort tree exactly as the scheduler's :class:`~budcore.scheduling.quota.QuotaUsage` does it. A
ledger therefore admits exactly what the scheduler would, whichever replica asks.

Contract (checked by :mod:`budcore.testing.ledger` for every implementation):

- The ledger admits jobs of its :attr:`AdmissionLedger.store`: :meth:`~AdmissionLedger.reserve`
  (a scheduler :class:`~budcore.scheduling.snapshot.Admit` decision) and
  :meth:`~AdmissionLedger.admit` (a ClusterQueue and flavors) move the job ``queued → admitted``
  *and* hold its quota in one unit of work; :meth:`~AdmissionLedger.release` moves a job that
  holds quota to a state that holds none and gives the quota back in the same one. The job passed
  in is the job as read: a stale one is a ``ConflictError`` (so a second reservation for the
  same job is refused), an illegal transition an ``InvalidTransitionError``.
- **Quota isolation.** Once LocalQueues are configured (or always, for a ledger built with
  ``require_local_queue=True``), a job may only be charged to the ClusterQueue its LocalQueue
  (``job.tenant`` is the namespace, ``job.local_queue`` the name) points to; anything else is a
  :class:`LocalQueueMismatchError` and nothing is written.
- A request that does not fit is a :class:`QuotaUnavailableError` naming the node whose limit
  binds, the flavor, the resource and the numbers; nothing is written.
- Quota keys: a ClusterQueue's name, or ``cohort:<name>`` (:func:`cohort_scope`) for a Cohort,
  with a flavor and a resource (:class:`QuotaKey`). Amounts are integer milli-units.

Leases (an admitted job that never starts gives its quota back) are an optional second port,
:class:`AdmissionLeases`, that ledgers shared by several replicas implement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from budcore.domain.errors import AdmissionRejectedError, BudcoreError, ValidationError
from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import Job, JobStatus
from budcore.ports.job_store import JobStore

if TYPE_CHECKING:  # the scheduling package imports ports: only annotations may name its types
    from budcore.scheduling.queues import QueueConfig
    from budcore.scheduling.quota import QuotaNode
    from budcore.scheduling.snapshot import Admit

FlavorResource = tuple[str, str]  # (flavor, resource), as in the quota tree

COHORT_PREFIX = "cohort:"

# Per resource (``{"nvidia.com/gpu": "h100"}``) or per pod set (``{"driver": {"cpu": "a"}}``,
# the scheduler's ``Admit.flavors``).
FlavorAssignment = Mapping[str, str] | Mapping[str, Mapping[str, str]]


def cohort_scope(cohort: str) -> str:
    """The quota key scope of a Cohort: ``cohort:<name>`` (``:`` cannot occur in a Kueue name)."""
    return COHORT_PREFIX + cohort


def node_scope(node: QuotaNode) -> str:
    """The quota key scope of a node of the core quota tree (a ClusterQueue's name, or a cohort's scope)."""
    return cohort_scope(node.name) if node.is_cohort else node.name


# Value types ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, order=True)
class QuotaKey:
    """One node of the quota tree for one flavor and resource.

    ``cluster_queue`` is a ClusterQueue's name or a Cohort's scope (``cohort:<name>``). Keys order
    bytewise, field by field: the order every implementation takes locks in.
    """

    cluster_queue: str
    flavor: str
    resource: str

    def __str__(self) -> str:
        return f"{self.cluster_queue}/{self.flavor}/{self.resource}"

    @property
    def flavor_resource(self) -> FlavorResource:
        return (self.flavor, self.resource)


@dataclass(frozen=True, slots=True)
class QuotaBalance:
    """What one node holds and may still take of one (flavor, resource), in milli-units.

    ``nominal`` is the node's own ``nominalQuota``; ``quota`` its subtree quota (a ClusterQueue's
    nominal quota; a cohort's own plus what its members lend); ``parent`` the scope of the cohort
    above it (``None``: a root); the limits are Kueue's (``None``: unlimited). ``used`` is Kueue's
    usage of the node (a cohort's: what its members use beyond their guaranteed parts) and
    ``available`` Kueue's ``available``: what one more admission there could take now.
    """

    key: QuotaKey
    parent: str | None
    nominal: int
    quota: int
    borrowing_limit: int | None
    lending_limit: int | None
    used: int
    available: int


@dataclass(frozen=True, slots=True)
class Reservation:
    """The outcome of a reservation or a release.

    ``job`` is the job as the ledger's store now holds it (admitted, or the status it was released
    to); ``amounts`` what it took (reserve) or gave back (release), per quota key. The cohort rows
    above those keys account for them through the tree.
    """

    job: Job
    amounts: Mapping[QuotaKey, int]


@dataclass(frozen=True, slots=True)
class Lease:
    """An admitted job's claim to its quota until ``expires_at``; renew before ``renew_by``."""

    tenant: str
    job_id: str
    holder: str
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime
    renew_by: datetime
    version: int


# Errors --------------------------------------------------------------------------------------
class QuotaUnavailableError(BudcoreError):
    """A reservation does not fit the quota *right now*; nothing was written.

    ``cluster_queue``/``flavor``/``resource`` name the node whose limit binds (the ClusterQueue
    itself, or a ``cohort:<name>`` scope above it); ``requested`` is what the reservation would add
    there and ``free`` the room left there. ``admitting`` is the ClusterQueue the job was being
    admitted to and ``available`` what that ClusterQueue could take of the flavor and resource
    (Kueue's ``available``). Not a :class:`~budcore.domain.errors.QuotaRejectedError` (which
    means "can never fit"): usage changed since the scheduler decided (another replica admitted
    first), so the scheduler should decide again with fresh usage.
    """

    def __init__(
        self,
        cluster_queue: str,
        flavor: str,
        resource: str,
        requested: int,
        free: int,
        *,
        admitting: str | None = None,
        available: int | None = None,
    ) -> None:
        self.cluster_queue = cluster_queue
        self.flavor = flavor
        self.resource = resource
        self.requested = requested
        self.free = free
        self.admitting = cluster_queue if admitting is None else admitting
        self.available = free if available is None else available
        message = f"quota {cluster_queue}/{flavor}/{resource}: requested {requested}m, only {free}m free"
        if self.admitting != cluster_queue:
            message += (
                f" (admitting to ClusterQueue {self.admitting!r}, which can take {self.available}m of "
                f"{resource} in flavor {flavor!r} now)"
            )
        super().__init__(message)


class LocalQueueMismatchError(AdmissionRejectedError):
    """A job charged to a ClusterQueue its LocalQueue does not lead to; nothing was written.

    ``tenant`` is the job's namespace, ``local_queue`` the LocalQueue it names (``None``: none),
    ``cluster_queue`` the ClusterQueue it was to be charged to, ``mapped`` the ClusterQueue its
    LocalQueue points to (``None``: no such LocalQueue).
    """

    def __init__(
        self, job_id: str, tenant: str, local_queue: str | None, cluster_queue: str, mapped: str | None
    ) -> None:
        self.job_id = job_id
        self.tenant = tenant
        self.local_queue = local_queue
        self.cluster_queue = cluster_queue
        self.mapped = mapped
        if not local_queue:
            why = "names no LocalQueue"
        elif mapped is None:
            why = f"names LocalQueue {tenant}/{local_queue}, which is not configured"
        else:
            why = f"is in LocalQueue {tenant}/{local_queue}, which leads to ClusterQueue {mapped!r}"
        super().__init__(
            f"job {job_id!r} of namespace {tenant!r} {why}: it may not be charged to ClusterQueue "
            f"{cluster_queue!r} (nothing was written)"
        )


class QuotaInUseError(BudcoreError):
    """A configuration sync would remove quota that admitted or running jobs still hold.

    ``rows`` lists ``(quota key, used milli-units, holding jobs)``; nothing was changed.
    """

    def __init__(self, rows: Sequence[tuple[str, int, int]]) -> None:
        self.rows = list(rows)
        listed = ", ".join(f"{row} (used {used}m by {jobs} job(s))" for row, used, jobs in self.rows)
        super().__init__(
            f"cannot remove quota rows that are still in use: {listed}; let those jobs finish or "
            "requeue them first (nothing was changed)"
        )


# Rules every implementation applies the same way --------------------------------------------
def check_cluster_queue_name(cluster_queue: object) -> str:
    if not isinstance(cluster_queue, str) or not cluster_queue:
        raise ValidationError("cluster_queue must be a non-empty string", path="cluster_queue")
    return cluster_queue


def _assignment(job: Job, flavors: FlavorAssignment) -> tuple[dict[str, Mapping[str, str]], bool]:
    """``flavors`` as pod set → resource → flavor, and whether it was given per pod set."""
    if not isinstance(flavors, Mapping):
        raise ValidationError("flavors must be a mapping", path="flavors")
    pod_sets = [p.name for p in job.request.pod_sets]
    if flavors and all(isinstance(v, Mapping) for v in flavors.values()):
        extra_sets = sorted(set(flavors) - set(pod_sets))
        if extra_sets:
            raise ValidationError(
                f"flavors given for pod set {extra_sets[0]!r}, which the job does not have",
                path=f"flavors.{extra_sets[0]}",
            )
        out: dict[str, Mapping[str, str]] = {}
        for name, assigned in flavors.items():
            if not isinstance(assigned, Mapping) or not all(
                isinstance(f, str) and f for f in assigned.values()
            ):
                raise ValidationError("must map each resource to a flavor name", path=f"flavors.{name}")
            out[str(name)] = assigned
        return out, True
    per_resource: dict[str, str] = {}
    for resource, flavor in flavors.items():
        if not isinstance(flavor, str) or not flavor:
            raise ValidationError(
                "flavors must map each resource to a flavor name, or each pod set to such a mapping "
                "(the scheduler's Admit.flavors)",
                path=f"flavors.{resource}",
            )
        per_resource[str(resource)] = flavor
    return {name: per_resource for name in pod_sets}, False


def request_by_flavor(job: Job, flavors: FlavorAssignment) -> dict[FlavorResource, int]:
    """The job's request per (flavor, resource) under ``flavors``, which must cover it exactly.

    ``flavors`` is the scheduler's assignment (pod set → resource → flavor, ``Admit.flavors``) or
    one flavor per resource for every pod set. A resource without a flavor, or a flavor for a
    resource or pod set the job does not have, is a ``ValidationError`` naming it.
    """
    assignment, per_pod_set = _assignment(job, flavors)
    usage: dict[FlavorResource, int] = {}
    for pod_set in job.request.pod_sets:
        total = pod_set.total
        assigned = assignment.get(pod_set.name, {})
        prefix = f"flavors.{pod_set.name}." if per_pod_set else "flavors."
        where = f" of pod set {pod_set.name!r}" if per_pod_set else ""
        missing = sorted(set(total) - set(assigned))
        if missing:
            raise ValidationError(
                f"no flavor assigned to requested resource {missing[0]!r}{where}",
                path=f"{prefix}{missing[0]}",
            )
        if per_pod_set:
            extra = sorted(set(assigned) - set(total))
            if extra:
                raise ValidationError(
                    f"flavor assigned to resource {extra[0]!r}, which pod set {pod_set.name!r} does "
                    "not request",
                    path=f"{prefix}{extra[0]}",
                )
        for resource, amount in total.items():
            fr = (assigned[resource], resource)
            usage[fr] = usage.get(fr, 0) + amount
    if not per_pod_set:
        extra = sorted(set(flavors) - set(job.request.total))
        if extra:
            raise ValidationError(
                f"flavor assigned to resource {extra[0]!r} the job does not request",
                path=f"flavors.{extra[0]}",
            )
    return usage


def decision_request(job: Job, decision: Admit) -> dict[FlavorResource, int]:
    """Check that ``decision`` is about ``job`` as it is now; return its request per (flavor, resource).

    The decision must name the job, its LocalQueue must be the job's (``(tenant, local_queue)``),
    and the usage the job's request gives under the decision's flavors must be the decision's
    ``usage`` (otherwise the job changed since the scheduler decided: run another cycle). Each
    failure is a ``ValidationError`` naming the field of the decision.
    """
    if (job.tenant, job.id) != (decision.tenant, decision.job_id):
        raise ValidationError(
            f"decision is for job {decision.job_id!r} (tenant {decision.tenant!r}), not "
            f"{job.id!r} (tenant {job.tenant!r})",
            path="decision",
        )
    if tuple(decision.local_queue) != (job.tenant, job.local_queue):
        raise ValidationError(
            f"decision admits through LocalQueue {'/'.join(decision.local_queue)}, but job {job.id!r} "
            f"is in {job.tenant}/{job.local_queue}: the job changed since the scheduler decided",
            path="decision.local_queue",
        )
    usage = request_by_flavor(job, decision.flavors)
    if usage != {fr: amount for fr, amount in decision.usage.items() if amount}:
        raise ValidationError(
            f"the decision reserves {dict(sorted(decision.usage.items()))} but job {job.id!r} "
            f"requests {dict(sorted(usage.items()))} under its flavors: the job changed since the "
            "scheduler decided; run another cycle",
            path="decision.usage",
        )
    return usage


def check_local_queue(job: Job, cluster_queue: str, mapped: str | None, *, enforced: bool) -> None:
    """Quota isolation: refuse charging ``job`` to a ClusterQueue its LocalQueue does not lead to.

    ``mapped`` is the ClusterQueue the job's LocalQueue points to in the ledger's configuration
    (``None``: no such LocalQueue); ``enforced`` whether the ledger checks at all (LocalQueues are
    configured, or the ledger requires them).
    """
    if enforced and (not job.local_queue or mapped != cluster_queue):
        raise LocalQueueMismatchError(job.id, job.tenant, job.local_queue, cluster_queue, mapped)


def check_release(job: Job, status: JobStatus) -> None:
    """A release moves a job that holds quota to a status that holds none."""
    if not isinstance(status, JobStatus) or status.holds_quota:
        raise ValidationError(
            f"a release moves the job to a status that holds no quota, not {status!r}", path="status"
        )
    if not job.status.holds_quota:
        raise ValidationError(
            f"job {job.id!r} is {job.status.value} and holds no quota to release", path="job.status"
        )


# The ports -----------------------------------------------------------------------------------
@runtime_checkable
class AdmissionLedger(Protocol):
    """Holds quota for admitted jobs; see the module docstring for the contract."""

    @property
    def store(self) -> JobStore:
        """The job store whose jobs this ledger admits and releases."""
        ...

    def sync(self, config: QueueConfig, *, prune: bool = True) -> list[QuotaBalance]:
        """Make the quota tree and the LocalQueue → ClusterQueue mapping match ``config``.

        One unit of work; usage is re-derived from the reservations, so moving a queue to another
        cohort or changing a lending limit keeps every node's usage right. With ``prune`` (the
        default) the configuration is the whole truth: quota it no longer has is removed, unless
        a job still holds some, which is a :class:`QuotaInUseError` and changes nothing. Returns
        :meth:`balances`.
        """
        ...

    def reserve(self, job: Job, decision: Admit, *, now: datetime, reason: str = "") -> Reservation:
        """Apply one of the scheduler's ``Admit`` decisions: admit ``job`` and hold its quota.

        ``job`` is the queued job as read; the decision must be about it as it is now
        (:func:`decision_request`). Raises :class:`LocalQueueMismatchError`,
        :class:`QuotaUnavailableError`, ``ConflictError`` (stale job; also a second reservation
        for the same job) or ``NotFoundError`` (no such quota), writing nothing.
        """
        ...

    def admit(
        self, job: Job, *, cluster_queue: str, flavors: FlavorAssignment, now: datetime, reason: str = ""
    ) -> Reservation:
        """Admit ``job`` into ``cluster_queue`` with ``flavors`` (see :func:`request_by_flavor`);
        otherwise as :meth:`reserve`."""
        ...

    def release(
        self, job: Job, *, now: datetime, status: JobStatus = JobStatus.QUEUED, reason: str = ""
    ) -> Reservation:
        """Move ``job`` (as read; it holds quota) to ``status`` (one that holds none) and give its
        quota back, in one unit of work. ``queued`` is Kueue's eviction back to the queue."""
        ...

    def reservations(self, tenant: TenantId, job_id: JobId) -> dict[QuotaKey, int]:
        """What the job holds now, per quota key (empty unless it is admitted or running)."""
        ...

    def available(self, cluster_queue: str, flavor: str, resource: str) -> int:
        """Kueue's ``available`` for the node (a ClusterQueue, or a ``cohort:<name>`` scope) and
        (flavor, resource); ``NotFoundError`` when the node has no such quota."""
        ...

    def balances(self, cluster_queue: str | None = None) -> list[QuotaBalance]:
        """Every node's balance per (flavor, resource) (of one node, or all), ordered by key."""
        ...


@runtime_checkable
class AdmissionLeases(Protocol):
    """Optional: admitted jobs are leased to the admitting replica until they start.

    If the replica dies the lease expires and :meth:`reconcile` (run by any replica) requeues the
    job and gives its quota back.
    """

    def lease(self, tenant: TenantId, job_id: JobId) -> Lease | None:
        """The admitted job's lease (``None`` once it started or left ``admitted``)."""
        ...

    def renew(self, tenant: TenantId, job_id: JobId, *, now: datetime) -> Lease:
        """Extend this replica's unexpired lease to ``now`` + its duration."""
        ...

    def reconcile(self, now: datetime, *, limit: int = 100) -> list[Job]:
        """Requeue admitted jobs whose lease expired before ``now``; returns them."""
        ...


__all__ = [
    "COHORT_PREFIX",
    "AdmissionLeases",
    "AdmissionLedger",
    "FlavorAssignment",
    "FlavorResource",
    "Lease",
    "LocalQueueMismatchError",
    "QuotaBalance",
    "QuotaInUseError",
    "QuotaKey",
    "QuotaUnavailableError",
    "Reservation",
    "check_cluster_queue_name",
    "check_local_queue",
    "check_release",
    "cohort_scope",
    "decision_request",
    "node_scope",
    "request_by_flavor",
]
