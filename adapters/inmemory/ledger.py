"""In-memory admission ledger: the :class:`~budcore.ports.AdmissionLedger` port on the core quota tree.

The configuration is a :class:`~budcore.scheduling.queues.QueueConfig`; its quota is the core
:class:`~budcore.scheduling.quota.QuotaTree` and the quota admitted jobs hold is one core
:class:`~budcore.scheduling.quota.QuotaUsage`, so a reservation fits exactly when the scheduler
says it does (:func:`~budcore.scheduling.quota.available`) and usage propagates up the cohorts as
the scheduler propagates it. One lock makes each operation a unit of work: the checks, the job's
transition in :attr:`InMemoryAdmissionLedger.store` and the quota change happen together or not
at all.

The ledger's :attr:`~InMemoryAdmissionLedger.store` is an :class:`~.job_store.InMemoryJobStore`
that keeps the ledger right, as the PostgreSQL store does: a job that leaves ``admitted`` or
``running`` through a plain ``update`` gives its quota back, and once quota is configured a plain
``update`` (or ``create``) into a quota-holding state is refused, since nothing would have been
reserved for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from budcore.domain.errors import ConflictError, InvalidTransitionError, NotFoundError, ValidationError
from budcore.domain.events import DomainEvent
from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import Job, JobStatus
from budcore.domain.lifecycle import transition
from budcore.domain.timeutil import ensure_utc
from budcore.ports.admission_ledger import (
    COHORT_PREFIX,
    AdmissionLedger,
    FlavorAssignment,
    FlavorResource,
    QuotaBalance,
    QuotaInUseError,
    QuotaKey,
    QuotaUnavailableError,
    Reservation,
    check_cluster_queue_name,
    check_local_queue,
    check_release,
    decision_request,
    node_scope,
    request_by_flavor,
)
from budcore.ports.event_sink import EventSink
from budcore.scheduling.queues import QueueConfig
from budcore.scheduling.quota import QuotaNode, QuotaTree, QuotaUsage, available, binding_limit
from budcore.scheduling.snapshot import Admit

from .job_store import InMemoryJobStore

_HINT = "the ledger's configuration (sync a QueueConfig that gives the ClusterQueue this quota)"


class LedgerJobStore(InMemoryJobStore):
    """The in-memory job store of an :class:`InMemoryAdmissionLedger` (see the module docstring).

    Built by the ledger with its lock, a test for "quota is configured" and the callback that gives
    a job's quota back; :meth:`raw_update` is the plain store write the ledger's own transitions use.
    """

    def __init__(
        self,
        lock: threading.RLock,
        in_use: Callable[[], bool],
        give_back: Callable[[Job], object],
        events: EventSink | None = None,
    ) -> None:
        super().__init__(events)
        self._ledger_lock = lock
        self._in_use = in_use
        self._give_back = give_back

    def create(self, job: Job, *, events: Sequence[DomainEvent] = ()) -> Job:
        with self._ledger_lock:
            if job.status.holds_quota and self._in_use():
                raise InvalidTransitionError(job.id, "(new job)", job.status.value, _ADMIT_THROUGH_LEDGER)
            return super().create(job, events=events)

    def update(self, job: Job, *, events: Sequence[DomainEvent] = ()) -> Job:
        with self._ledger_lock:
            current = self.get(job.tenant, job.id)
            if not current.status.holds_quota and job.status.holds_quota and self._in_use():
                raise InvalidTransitionError(
                    job.id, current.status.value, job.status.value, _ADMIT_THROUGH_LEDGER
                )
            stored = self.raw_update(job, events)
            if current.status.holds_quota and not stored.status.holds_quota:
                self._give_back(stored)
            return stored

    def raw_update(self, job: Job, events: Sequence[DomainEvent] = ()) -> Job:
        """:meth:`InMemoryJobStore.update` without the ledger's checks: the ledger's own writes."""
        return super().update(job, events=events)


_ADMIT_THROUGH_LEDGER = (
    "quota is managed by the admission ledger; admit with InMemoryAdmissionLedger.reserve or .admit "
    "so the quota is reserved"
)


class InMemoryAdmissionLedger:
    """Quota for admitted jobs, in process memory; see the module docstring.

    ``config`` is synced at construction (an empty configuration otherwise). ``events`` is the
    sink of the ledger's job store. ``require_local_queue=True`` checks every admission against the
    LocalQueue mapping even when the configuration has no LocalQueue (then nothing is admitted);
    by default the check applies once the configuration has LocalQueues.
    """

    def __init__(
        self,
        config: QueueConfig | None = None,
        *,
        events: EventSink | None = None,
        require_local_queue: bool = False,
    ) -> None:
        if not isinstance(require_local_queue, bool):
            raise ValidationError("require_local_queue must be True or False", path="require_local_queue")
        self._lock = threading.RLock()
        self._require_local_queue = require_local_queue
        self._config = QueueConfig()
        self._tree = QuotaTree(self._config)
        self._usage = QuotaUsage(self._tree)
        self._held: dict[tuple[str, str], dict[QuotaKey, int]] = {}
        self._store = LedgerJobStore(self._lock, self._in_use, self._give_back, events)
        if config is not None:
            self.sync(config)

    @property
    def store(self) -> LedgerJobStore:
        return self._store

    @property
    def config(self) -> QueueConfig:
        return self._config

    # Configuration ---------------------------------------------------------------------------
    def sync(self, config: QueueConfig, *, prune: bool = True) -> list[QuotaBalance]:
        """Make the quota tree and the LocalQueue mapping match ``config`` (see the port).

        Without ``prune`` the new objects are merged into the current configuration (a
        ClusterQueue or Cohort it names replaces the current one whole). Every reservation is
        charged again on the new tree; one whose ClusterQueue, flavor or resource the new
        configuration lacks is a :class:`~budcore.ports.admission_ledger.QuotaInUseError` and
        nothing changes.
        """
        if not isinstance(config, QueueConfig):
            raise ValidationError("config must be a QueueConfig", path="config")
        for name in config.cluster_queues:
            if name.startswith(COHORT_PREFIX):
                raise ValidationError(
                    f"ClusterQueue name {name!r} starts with {COHORT_PREFIX!r}, which names cohorts",
                    path=f"ClusterQueue/{name}.metadata.name",
                )
        with self._lock:
            merged = config if prune else _merge(self._config, config)
            tree = QuotaTree(merged)
            usage = QuotaUsage(tree)
            busy: dict[QuotaKey, list[int]] = {}
            for amounts in self._held.values():
                for key, amount in amounts.items():
                    node = tree.cluster_queues.get(key.cluster_queue)
                    if node is None or key.flavor_resource not in node.nominal:
                        entry = busy.setdefault(key, [0, 0])
                        entry[0] += amount
                        entry[1] += 1
            if busy:
                raise QuotaInUseError([(str(k), used, jobs) for k, (used, jobs) in sorted(busy.items())])
            for amounts in self._held.values():
                for key, amount in amounts.items():
                    usage.add(key.cluster_queue, {key.flavor_resource: amount})
            self._config, self._tree, self._usage = merged, tree, usage
            return self._balances(None)

    # Admission -------------------------------------------------------------------------------
    def reserve(self, job: Job, decision: Admit, *, now: datetime, reason: str = "") -> Reservation:
        """Apply one of the scheduler's ``Admit`` decisions to ``job`` (see the port)."""
        now = ensure_utc(now, "now")
        usage = decision_request(job, decision)
        cluster_queue = check_cluster_queue_name(decision.cluster_queue)
        return self._admit(job, cluster_queue, usage, now, reason or f"admitted to {cluster_queue}")

    def admit(
        self, job: Job, *, cluster_queue: str, flavors: FlavorAssignment, now: datetime, reason: str = ""
    ) -> Reservation:
        """Admit ``job`` into ``cluster_queue`` with ``flavors`` (see the port)."""
        now = ensure_utc(now, "now")
        check_cluster_queue_name(cluster_queue)
        return self._admit(job, cluster_queue, request_by_flavor(job, flavors), now, reason)

    def _admit(
        self, job: Job, cluster_queue: str, request: dict[FlavorResource, int], now: datetime, reason: str
    ) -> Reservation:
        admitted, event = transition(job, JobStatus.ADMITTED, now=now, reason=reason)
        wanted = {fr: amount for fr, amount in sorted(request.items()) if amount > 0}
        with self._lock:
            current = self._store.get(job.tenant, job.id)
            if current.version != job.version:
                raise ConflictError("job", job.id, job.version, current.version)
            lq = self._config.local_queues.get((job.tenant, job.local_queue or ""))
            check_local_queue(
                job,
                cluster_queue,
                None if lq is None else lq.cluster_queue,
                enforced=self._require_local_queue or bool(self._config.local_queues),
            )
            node = self._tree.cluster_queues.get(cluster_queue)
            for fr in wanted:
                if node is None or fr not in node.nominal:
                    raise NotFoundError("quota", str(QuotaKey(cluster_queue, *fr)), _HINT)
            for fr, amount in wanted.items():
                assert node is not None  # every (flavor, resource) wanted has quota there
                room = available(node, fr, self._usage)
                if amount > room:
                    limiting, requested, free = binding_limit(node, fr, self._usage, amount)
                    raise QuotaUnavailableError(
                        node_scope(limiting),
                        fr[0],
                        fr[1],
                        requested,
                        free,
                        admitting=cluster_queue,
                        available=max(0, room),
                    )
            stored = self._store.raw_update(admitted, [event])
            amounts = {QuotaKey(cluster_queue, f, r): amount for (f, r), amount in wanted.items()}
            if wanted:
                self._usage.add(cluster_queue, wanted)
            self._held[(job.tenant, job.id)] = amounts
            return Reservation(job=stored, amounts=dict(amounts))

    def release(
        self, job: Job, *, now: datetime, status: JobStatus = JobStatus.QUEUED, reason: str = ""
    ) -> Reservation:
        """Move ``job`` (admitted or running, as read) to ``status`` and give its quota back."""
        now = ensure_utc(now, "now")
        check_release(job, status)
        new, event = transition(job, status, now=now, reason=reason)
        with self._lock:
            stored = self._store.raw_update(new, [event])
            return Reservation(job=stored, amounts=self._give_back(stored))

    def _give_back(self, job: Job) -> dict[QuotaKey, int]:
        with self._lock:
            amounts = self._held.pop((job.tenant, job.id), {})
            for key, amount in amounts.items():
                self._usage.add(key.cluster_queue, {key.flavor_resource: amount}, sign=-1)
            return amounts

    def _in_use(self) -> bool:
        return any(n.nominal for n in (*self._tree.cluster_queues.values(), *self._tree.cohorts.values()))

    # Reads ----------------------------------------------------------------------------------
    def reservations(self, tenant: TenantId, job_id: JobId) -> dict[QuotaKey, int]:
        with self._lock:
            return dict(self._held.get((tenant, job_id), {}))

    def available(self, cluster_queue: str, flavor: str, resource: str) -> int:
        key = QuotaKey(cluster_queue, flavor, resource)
        with self._lock:
            node = self._node(cluster_queue)
            if node is None or not _has(node, key.flavor_resource):
                raise NotFoundError("quota", str(key), _HINT)
            return max(0, available(node, key.flavor_resource, self._usage))

    def balances(self, cluster_queue: str | None = None) -> list[QuotaBalance]:
        with self._lock:
            return self._balances(cluster_queue)

    def _node(self, scope: str) -> QuotaNode | None:
        if scope.startswith(COHORT_PREFIX):
            return self._tree.cohorts.get(scope[len(COHORT_PREFIX) :])
        return self._tree.cluster_queues.get(scope)

    def _balances(self, scope: str | None) -> list[QuotaBalance]:
        nodes = (*self._tree.cohorts.values(), *self._tree.cluster_queues.values())
        out: list[QuotaBalance] = []
        for node in nodes:
            name = node_scope(node)
            if scope is not None and name != scope:
                continue
            parent = None if node.parent is None else node_scope(node.parent)
            for fr in sorted({*node.subtree_quota, *node.nominal}):
                out.append(
                    QuotaBalance(
                        key=QuotaKey(name, *fr),
                        parent=parent,
                        nominal=node.nominal.get(fr, 0),
                        quota=node.subtree_quota.get(fr, 0),
                        borrowing_limit=node.borrowing_limit.get(fr),
                        lending_limit=node.lending_limit.get(fr),
                        used=self._usage.get(node, fr),
                        available=max(0, available(node, fr, self._usage)),
                    )
                )
        return sorted(out, key=lambda b: b.key)


def _has(node: QuotaNode, fr: FlavorResource) -> bool:
    return fr in node.nominal or fr in node.subtree_quota


def _merge(current: QueueConfig, new: QueueConfig) -> QueueConfig:
    return QueueConfig.build(
        flavors={**current.flavors, **new.flavors}.values(),
        cluster_queues={**current.cluster_queues, **new.cluster_queues}.values(),
        cohorts={**current.cohorts, **new.cohorts}.values(),
        local_queues={**current.local_queues, **new.local_queues}.values(),
        priority_classes={**current.priority_classes, **new.priority_classes}.values(),
    )


if TYPE_CHECKING:  # mypy checks that the class implements the port

    def _implements(ledger: InMemoryAdmissionLedger) -> AdmissionLedger:
        return ledger


__all__ = ["InMemoryAdmissionLedger", "LedgerJobStore"]
