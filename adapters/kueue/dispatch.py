"""Multi-cluster dispatch (MultiKueue-style): one budcore job, several Kueue clusters, one run.

Why: a platform with several clusters (regions, clouds, an on-premise pool) wants a job to run
wherever it can start first, or wherever budcore finds it cheapest, and never in two places at
once — also when a cluster drops off the network mid-run. :class:`Dispatcher` keeps that promise
over plain Kueue clusters (no MultiKueue manager cluster needed) through the same pieces the
single-cluster adapter uses: :func:`~.submit.submit` creates a copy, :func:`~.sync.observe` and
:func:`~.sync.plan` turn a copy's Job and Workload into budcore's view of it, and
:meth:`budcore.service.JobService.move` records each legal transition (optimistic concurrency,
events in the store's outbox).

**How it relates to Kueue's MultiKueue** (``pkg/controller/admissionchecks/multikueue/workload.go``
in kubernetes-sigs/kueue, ``wlReconciler.reconcileGroup``/``nominateAndSynchronizeWorkers``):

* policy ``first-admitted`` is MultiKueue's behaviour: a copy of the workload is created in every
  reachable worker cluster, the first whose Kueue reserves quota wins, and the copies in the other
  clusters are deleted ("6b. An admitting remote is visible: converge onto it ... remove the
  non-selected worker workloads"). The winner is the copy whose ``QuotaReserved`` (or ``Admitted``)
  condition is oldest; equal times are broken by cluster name, so the choice is deterministic.
* policy ``cheapest`` has no MultiKueue counterpart: budcore decides. Among reachable clusters whose
  free capacity fits the job — the allocatable of their schedulable nodes read through
  :func:`~.fleet.fleet_from_cluster`, minus what budcore's own dispatched, unfinished jobs placed
  there request — the one with the lowest ``prices`` per GPU-hour gets the only copy (equal
  prices: name order). Kueue's own quota still decides *when* it starts there.
* a lost worker: MultiKueue keeps a workload admitted while its admitting worker is unreachable
  and retries it elsewhere only after ``workerLostTimeout`` (``admittingWorkerLostSince``; default
  15 min, ``apis/config/v1beta1/defaults.go``). Here ``lost_after_s`` plays that part: a cluster
  unreachable (``KubeError`` status 0: Unreachable, Timeout, Disconnected) for longer than it is
  *lost*, and its jobs that have not finished are requeued as a **new attempt** elsewhere.

**The decision lives in the job store**, not in this object: the job's labels
``budcore.io/dispatch`` (the policy), ``budcore.io/cluster`` and ``budcore.io/cluster-attempt``
(where the current attempt runs) are written with the job's version (``ConflictError`` if anyone
wrote first), *before* the losing copies are deleted (first-admitted) or the single copy is created
(cheapest). A new Dispatcher over the same store (a restart, another replica) reads them and goes
on; the copies in the clusters are re-read from the API servers at every :meth:`reconcile`.

**Never twice.** (1) budcore records one cluster per job (a label, one value), and only the
recorded cluster's copy of the current attempt ever advances the job's status. (2) A lost winner's
job is moved along a legal lifecycle path back to ``queued`` (``running → preempted → queued``,
``admitted → queued``, or a plain write for a job still queued) in the same write that clears the
cluster label and bumps ``retry_count`` — so :func:`~.submit.object_name` gives the new attempt a
new object name and the old copy becomes recognisably stale. ``max_retries`` is bumped with it: a
lost cluster is not the job's fault and must not spend its retry budget. (3) Every reconcile first
withdraws, in each reachable cluster, every budcore copy of a dispatched job that is not the current
attempt, or that sits outside the recorded cluster — so a cluster coming back is cleaned before
anything else is done with it, and a stale copy's completion is never recorded.

Everything is deterministic and single-threaded: call :meth:`reconcile` periodically (a service's
loop, or a test). A 403 in one cluster (a forbidden namespace) skips that cluster for that job with
a one-line reason; a job no cluster can take stays ``queued`` and says why (``status_message`` and
:attr:`Dispatcher.reasons`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Literal

from budcore.domain.errors import BudcoreError, ConflictError, InvalidTransitionError, ValidationError
from budcore.domain.job import Job, JobStatus
from budcore.domain.resources import ResourceVector
from budcore.ports.clock import Clock
from budcore.ports.job_store import JobFilter
from budcore.service import JobService

from .client import JOBS, JOBSETS, KubeClient, KubeError, kueue_type
from .fleet import fleet_from_cluster
from .submit import OWNED_SELECTOR, owner_key, submit
from .sync import Observation, observe, plan

__all__ = [
    "CLUSTER_ATTEMPT_LABEL",
    "CLUSTER_LABEL",
    "DISPATCH_LABEL",
    "POLICIES",
    "Copy",
    "DispatchResult",
    "Dispatcher",
    "ReconcileReport",
]

_log = logging.getLogger(__name__)

S = JobStatus
Policy = Literal["first-admitted", "cheapest"]
POLICIES: Final = ("first-admitted", "cheapest")

DISPATCH_LABEL: Final = "budcore.io/dispatch"
CLUSTER_LABEL: Final = "budcore.io/cluster"
CLUSTER_ATTEMPT_LABEL: Final = "budcore.io/cluster-attempt"

_ACTIVE = frozenset({S.QUEUED, S.ADMITTED, S.RUNNING})
_LIVE = frozenset({S.QUEUED, S.ADMITTED, S.RUNNING, S.PREEMPTED})
JobKey = tuple[str, str]  # (tenant, job id)


def _unreachable(exc: KubeError) -> bool:
    return exc.status == 0


def _reserved_at(workload: Mapping[str, Any] | None) -> str | None:
    """When Kueue reserved quota for the workload (``lastTransitionTime``), ``None`` if it did not."""
    for cond in ((workload or {}).get("status") or {}).get("conditions") or []:
        reserving = isinstance(cond, Mapping) and cond.get("type") in ("QuotaReserved", "Admitted")
        if reserving and cond.get("status") == "True":
            return str(cond.get("lastTransitionTime") or "")
    return None


@dataclass(frozen=True, slots=True)
class Copy:
    """One cluster's copy of a budcore job: its Job/JobSet, its Workload (if Kueue made one yet)."""

    cluster: str
    tenant: str
    job_id: str
    attempt: int
    owner: dict[str, Any]
    workload: dict[str, Any] | None

    @property
    def kind(self) -> str:
        return str(self.owner.get("kind") or "Job")

    @property
    def namespace(self) -> str:
        return str((self.owner.get("metadata") or {}).get("namespace") or "")

    @property
    def name(self) -> str:
        return str((self.owner.get("metadata") or {}).get("name") or "")

    @property
    def observation(self) -> Observation:
        return observe(self.owner, self.workload)

    @property
    def holds(self) -> bool:
        """Kueue reserved quota for this copy (it is admitted, running or has run)."""
        obs = self.observation
        if obs.target in (S.ADMITTED, S.RUNNING, S.COMPLETED):
            return True
        return obs.target is S.FAILED and obs.admitted


@dataclass(frozen=True, slots=True)
class DispatchResult:
    """Where a job's current attempt went: the clusters given a copy, the chosen one (``None``
    while first-admitted is still racing, or when no cluster could take it) and why others not."""

    job: Job
    copies: tuple[str, ...]
    cluster: str | None
    reasons: Mapping[str, str]


@dataclass
class ReconcileReport:
    """What one :meth:`Dispatcher.reconcile` did (for tests, logs and metrics)."""

    transitions: int = 0
    decided: dict[JobKey, str] = field(default_factory=dict)
    withdrawn: list[tuple[str, str, str]] = field(default_factory=list)  # (cluster, namespace, name)
    requeued: list[JobKey] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)
    lost: set[str] = field(default_factory=set)
    returned: list[str] = field(default_factory=list)


class Dispatcher:
    """Dispatch budcore jobs over several Kueue clusters (see the module docstring).

    ``clusters``: name (e.g. the kubeconfig context) → client. ``policy``: ``"first-admitted"`` or
    ``"cheapest"``. ``lost_after_s``: how long a cluster may stay unreachable before its jobs are
    requeued elsewhere. ``clock``: defaults to the service's. ``prices``: cluster → price per
    GPU-hour for ``cheapest`` (missing: all equal, name order). ``namespace``: submit every copy
    there instead of the tenant's namespace. An unknown name in ``prices`` is a ``ValidationError``.
    """

    def __init__(
        self,
        clusters: Mapping[str, KubeClient],
        service: JobService,
        *,
        policy: Policy = "first-admitted",
        lost_after_s: float = 300.0,
        clock: Clock | None = None,
        prices: Mapping[str, Decimal] | None = None,
        namespace: str | None = None,
        workload_version: str = "v1beta2",
    ) -> None:
        if not clusters:
            raise ValidationError("multi-cluster dispatch needs at least one cluster", path="clusters")
        if policy not in POLICIES:
            raise ValidationError(f"unknown dispatch policy {policy!r}; known: {', '.join(POLICIES)}")
        if lost_after_s <= 0:
            raise ValidationError("lost_after_s must be positive", path="lost_after_s")
        unknown = sorted(set(prices or {}) - set(clusters))
        if unknown:
            raise ValidationError(
                f"unknown cluster {unknown[0]!r} in prices; "
                f"registered clusters: {', '.join(sorted(clusters))}",
                path=f"prices.{unknown[0]}",
            )
        self.clusters = dict(clusters)
        self.service = service
        self.store = service.store
        self.policy: Policy = policy
        self.lost_after_s = lost_after_s
        self.clock = clock or service.clock
        self.prices = {name: Decimal((prices or {}).get(name, Decimal(0))) for name in self.clusters}
        self.namespace = namespace
        self.workloads_rt = kueue_type("Workload", workload_version)
        self.reasons: dict[JobKey, str] = {}
        self._down_since: dict[str, datetime] = {}
        self._lost: set[str] = set()
        self._skip: dict[tuple[str, str, int], dict[str, str]] = {}

    # -- cluster health ------------------------------------------------------------------------

    def lost(self) -> frozenset[str]:
        """Clusters unreachable for longer than ``lost_after_s`` (until they answer again)."""
        return frozenset(self._lost)

    def _mark_down(self, name: str, why: str, report: ReconcileReport | None = None) -> None:
        now = self.clock.now()
        since = self._down_since.setdefault(name, now)
        if (now - since).total_seconds() > self.lost_after_s and name not in self._lost:
            self._lost.add(name)
            _log.warning("cluster %s lost: unreachable since %s: %s", name, since.isoformat(), why)
        if report is not None:
            report.unreachable[name] = why
            if name in self._lost:
                report.lost.add(name)

    # -- dispatching ---------------------------------------------------------------------------

    def dispatch(self, job: Job) -> DispatchResult:
        """Dispatch a queued budcore job (as stored) by the policy; safe to call again.

        A job already placed for its current attempt is returned as it is (no new copy).
        """
        job = self.store.get(job.tenant, job.id)
        if job.status is not S.QUEUED:
            raise ValidationError(
                f"job {job.id!r} is {job.status.value}: only a queued job can be dispatched", path="status"
            )
        recorded = self._winner(job)
        if recorded is not None:
            return DispatchResult(job, (recorded,), recorded, {})
        if job.labels.get(DISPATCH_LABEL) != self.policy:
            job = self._write(job, {DISPATCH_LABEL: self.policy})
        return self._place(job)

    def _policy(self, job: Job) -> str:
        """The policy the job was dispatched with (recorded), else this dispatcher's."""
        return job.labels.get(DISPATCH_LABEL, self.policy)

    def _place(self, job: Job) -> DispatchResult:
        if self._policy(job) == "cheapest":
            return self._place_cheapest(job)
        reasons: dict[str, str] = {}
        copies: list[str] = []
        skip = self._skip.setdefault(_attempt_key(job), {})
        for name in sorted(self.clusters):
            if name in skip:
                reasons[name] = skip[name]
            elif name in self._lost:
                reasons[name] = f"{name}: cluster lost"
            elif self._submit(job, name, reasons):
                copies.append(name)
        if not copies:
            job = self._not_placed(job, reasons)
        return DispatchResult(job, tuple(copies), None, reasons)

    def _place_cheapest(self, job: Job) -> DispatchResult:
        reasons: dict[str, str] = {}
        need = job.request.total
        candidates: list[tuple[Decimal, str]] = []
        skip = self._skip.setdefault(_attempt_key(job), {})
        for name in sorted(self.clusters):
            if name in skip:
                reasons[name] = skip[name]
                continue
            if name in self._lost:
                reasons[name] = f"{name}: cluster lost"
                continue
            try:
                free = self._free(name, exclude=job)
            except KubeError as exc:
                reasons[name] = str(exc)
                if _unreachable(exc):
                    self._mark_down(name, str(exc))
                continue
            except BudcoreError as exc:  # an empty cluster, nodes the parser rejects
                reasons[name] = f"{name}: {exc}"
                continue
            if not need.fits_in(free):
                reasons[name] = (
                    f"{name}: no room (free {ResourceVector(free).to_kube()}, need {need.to_kube()})"
                )
                continue
            candidates.append((self.prices[name], name))
        for _price, name in sorted(candidates):
            # Record first: a crash between the two leaves a decision whose copy reconcile creates.
            job = self._write(job, {CLUSTER_LABEL: name, CLUSTER_ATTEMPT_LABEL: str(job.retry_count)})
            if self._submit(job, name, reasons):
                return DispatchResult(job, (name,), name, reasons)
            job = self._write(job, {}, drop=(CLUSTER_LABEL, CLUSTER_ATTEMPT_LABEL))
        job = self._not_placed(job, reasons)
        return DispatchResult(job, (), None, reasons)

    def _submit(self, job: Job, name: str, reasons: dict[str, str]) -> bool:
        try:
            submit(self.clusters[name], job, namespace=self.namespace)
        except KubeError as exc:
            reasons[name] = str(exc)
            if _unreachable(exc):
                self._mark_down(name, str(exc))
            elif exc.status in (401, 403, 404, 422):  # this cluster will not take this job
                self._skip.setdefault(_attempt_key(job), {})[name] = str(exc)
            return False
        return True

    def _not_placed(self, job: Job, reasons: Mapping[str, str]) -> Job:
        why = "; ".join(reasons[n] for n in sorted(reasons)) or "no cluster registered"
        message = f"not dispatched: {why}"
        self.reasons[(job.tenant, job.id)] = message
        if job.status_message == message:
            return job
        return self._write(job, {}, message=message)

    def _free(self, name: str, *, exclude: Job) -> dict[str, int]:
        """Allocatable of the cluster's schedulable nodes minus budcore's active jobs placed there."""
        free = ResourceVector.sum(_allocatable(self.clusters[name])).as_dict()
        for other in self._dispatched(_ACTIVE):
            if other.id == exclude.id and other.tenant == exclude.tenant:
                continue
            if self._winner(other) == name:
                for resource, amount in other.request.total.items():
                    free[resource] = free.get(resource, 0) - amount
        return {k: max(v, 0) for k, v in free.items()}

    # -- reconciling ---------------------------------------------------------------------------

    def reconcile(self) -> ReconcileReport:
        """One pass over every cluster and every dispatched job (see the module docstring)."""
        report = ReconcileReport()
        views: dict[str, dict[JobKey, list[Copy]]] = {}
        jobs: dict[JobKey, Job] = {(j.tenant, j.id): j for j in self._dispatched(None)}
        for name in sorted(self.clusters):
            try:
                views[name] = self._read(name)
            except KubeError as exc:
                if _unreachable(exc):
                    self._mark_down(name, str(exc), report)
                else:
                    report.unreachable[name] = str(exc)
                continue
            if name in self._lost:
                report.returned.append(name)
                _log.warning("cluster %s is back: withdrawing its stale copies first", name)
            self._lost.discard(name)
            self._down_since.pop(name, None)
            self._sweep(name, views[name], jobs, report)
        for recorded in {self._winner(j) for j in jobs.values()} - set(self.clusters) - {None}:
            assert recorded is not None
            self._mark_down(recorded, f"{recorded}: not a registered cluster", report)
        for key in sorted(jobs):
            job = jobs[key]
            if job.status not in _LIVE:
                continue
            try:
                self._reconcile_job(job, views, report)
            except (ConflictError, InvalidTransitionError) as exc:
                _log.info("dispatch: job %s/%s changed meanwhile, next pass: %s", *key, exc)
        return report

    def _read(self, name: str) -> dict[JobKey, list[Copy]]:
        """Every budcore copy in the cluster with its Workload, by (tenant, job id)."""
        client = self.clusters[name]
        owners, _ = client.list(JOBS, self.namespace, label_selector=OWNED_SELECTOR)
        try:
            jobsets, _ = client.list(JOBSETS, self.namespace, label_selector=OWNED_SELECTOR)
        except KubeError as exc:
            if exc.status != 404:  # no JobSet controller: no JobSets
                raise
            jobsets = []
        workloads, _ = client.list(self.workloads_rt, self.namespace)
        by_uid: dict[str, dict[str, Any]] = {}
        for wl in workloads:
            for ref in (wl.get("metadata") or {}).get("ownerReferences") or []:
                if isinstance(ref, Mapping) and ref.get("uid"):
                    by_uid[str(ref["uid"])] = wl
        view: dict[JobKey, list[Copy]] = {}
        for owner in [*owners, *jobsets]:
            key = owner_key(owner)
            if key is None:
                continue
            uid = str((owner.get("metadata") or {}).get("uid") or "")
            copy = Copy(name, key[0], key[1], key[2], owner, by_uid.get(uid))
            view.setdefault((key[0], key[1]), []).append(copy)
        return view

    def _sweep(
        self, name: str, view: dict[JobKey, list[Copy]], jobs: Mapping[JobKey, Job], report: ReconcileReport
    ) -> None:
        """Withdraw the cluster's copies of attempts that are not current, or outside the recorded
        cluster, or of cancelled jobs. Copies of jobs the dispatcher does not manage are left."""
        for key, copies in view.items():
            job = jobs.get(key)
            if job is None:
                continue
            winner = self._winner(job)
            keep: list[Copy] = []
            for copy in copies:
                stale = (
                    copy.attempt != job.retry_count
                    or (winner is not None and winner != name)
                    or job.status is S.CANCELLED
                )
                if stale and self._delete(copy, report):
                    continue
                keep.append(copy)
            view[key] = keep

    def _delete(self, copy: Copy, report: ReconcileReport) -> bool:
        rt = JOBSETS if copy.kind == "JobSet" else JOBS
        try:
            self.clusters[copy.cluster].delete(rt, copy.name, copy.namespace, propagation="Background")
        except KubeError as exc:
            _log.warning("dispatch: could not withdraw %s: %s", copy.name, exc)
            return False
        report.withdrawn.append((copy.cluster, copy.namespace, copy.name))
        return True

    def _reconcile_job(
        self, job: Job, views: Mapping[str, dict[JobKey, list[Copy]]], report: ReconcileReport
    ) -> None:
        key: JobKey = (job.tenant, job.id)
        winner = self._winner(job)
        if winner is not None:
            if winner in self._lost:
                job = self._requeue(
                    job, f"cluster {winner!r} lost (unreachable > {self.lost_after_s:g} s)", report
                )
                report.requeued.append(key)
                self._place(job)
                return
            view = views.get(winner)
            if view is None:
                return  # unreachable but not lost yet: wait, as MultiKueue does
            current = [c for c in view.get(key, []) if c.attempt == job.retry_count]
            if not current:
                if job.status is S.QUEUED:  # recorded but never created (a crash in between)
                    self._submit(job, winner, {})
                return
            report.transitions += self._advance(job, current[0].observation)
            return
        if job.status is not S.QUEUED:
            return
        if self._policy(job) == "cheapest":
            self._place_cheapest(job)
            return
        copies = [
            c for name in sorted(views) for c in views[name].get(key, []) if c.attempt == job.retry_count
        ]
        holding = [c for c in copies if c.holds]
        if not holding:
            have = {c.cluster for c in copies}
            skip = self._skip.get(_attempt_key(job), {})
            reasons: dict[str, str] = {}
            for name in sorted(views):
                if name not in have and name not in skip:
                    self._submit(job, name, reasons)
            if not copies and not any(n in views and n not in skip for n in self.clusters):
                self._not_placed(job, {**reasons, **skip, **report.unreachable})
            return
        first = min(holding, key=lambda c: (_reserved_at(c.workload) or "", c.cluster))
        # Record the winner before deleting the others: a crash in between is finished next pass.
        job = self._write(
            job,
            {CLUSTER_LABEL: first.cluster, CLUSTER_ATTEMPT_LABEL: str(job.retry_count)},
            message=f"dispatched: {first.cluster} reserved quota first",
        )
        report.decided[key] = first.cluster
        for copy in copies:
            if copy is not first:
                self._delete(copy, report)
        report.transitions += self._advance(job, first.observation)

    def _advance(self, job: Job, obs: Observation) -> int:
        """Walk the job to what the winner's copy shows, exactly as ``StatusSync`` does."""
        done = 0
        steps = plan(job.status, obs)
        for index, (status, reason) in enumerate(steps):
            changes = dict(obs.changes) if index == len(steps) - 1 else {}
            try:
                job = self.service.move(job, status, reason=reason, **changes)
            except (ConflictError, InvalidTransitionError):
                break  # another writer moved it: the next pass re-reads
            done += 1
        return done

    def _requeue(self, job: Job, why: str, report: ReconcileReport) -> Job:
        """Back to ``queued`` as a new attempt (new object name), along a legal path."""
        labels = {k: v for k, v in job.labels.items() if k not in (CLUSTER_LABEL, CLUSTER_ATTEMPT_LABEL)}
        changes: dict[str, Any] = {
            "retry_count": job.retry_count + 1,
            "max_retries": job.max_retries + 1,  # not the job's fault: its retry budget is kept
            "labels": labels,
        }
        if job.status is S.RUNNING:
            job = self.service.move(job, S.PREEMPTED, reason=f"{why}: pods stopped before finishing")
            report.transitions += 1
        if job.status in (S.ADMITTED, S.PREEMPTED):
            job = self.service.move(job, S.QUEUED, reason=f"{why}: requeued as a new attempt", **changes)
            report.transitions += 1
            return job
        return self.store.update(
            job.model_copy(update={**changes, "status_message": f"{why}: requeued as a new attempt"})
        )

    # -- the store -----------------------------------------------------------------------------

    def _dispatched(self, statuses: frozenset[JobStatus] | None) -> list[Job]:
        jobs = self.store.list(None, JobFilter(statuses=statuses))
        return [j for j in jobs if DISPATCH_LABEL in j.labels]

    def _winner(self, job: Job) -> str | None:
        """The cluster recorded for the job's *current* attempt, if any."""
        name = job.labels.get(CLUSTER_LABEL)
        if name and job.labels.get(CLUSTER_ATTEMPT_LABEL) == str(job.retry_count):
            return name
        return None

    def _write(
        self, job: Job, labels: Mapping[str, str], *, drop: Iterable[str] = (), message: str | None = None
    ) -> Job:
        """Store label (and message) changes with the job's version (``ConflictError`` if stale)."""
        new_labels = {k: v for k, v in job.labels.items() if k not in set(drop)}
        new_labels.update(labels)
        update: dict[str, Any] = {"labels": new_labels}
        if message is not None:
            update["status_message"] = message
        return self.store.update(job.model_copy(update=update))

    def placements(self) -> dict[JobKey, str]:
        """Where budcore records each dispatched job's current attempt (one cluster per job)."""
        out: dict[JobKey, str] = {}
        for job in self._dispatched(None):
            winner = self._winner(job)
            if winner is not None:
                out[(job.tenant, job.id)] = winner
        return out


def _attempt_key(job: Job) -> tuple[str, str, int]:
    return (job.tenant, job.id, job.retry_count)


def _allocatable(client: KubeClient) -> list[ResourceVector]:
    """The allocatable of each schedulable, ready node (parsed as ``budcore hardware parse`` does)."""
    return [n.allocatable for n in fleet_from_cluster(client).domain_nodes() if n.schedulable]
