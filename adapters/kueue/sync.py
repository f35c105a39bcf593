"""Kueue's decisions brought back into budcore's job store: the watch-based status reconciler.

:class:`StatusSync` lists and watches the workloads budcore submitted (``batch/v1`` Jobs, and
JobSets when the cluster serves them, selected by :data:`~.submit.OWNED_SELECTOR`) and Kueue's
``Workload`` objects (``kueue.x-k8s.io/v1beta2``, or ``v1beta1`` on a Kueue that lacks it), and
moves each budcore job through its lifecycle with :meth:`budcore.service.JobService.move`, so every
change is an optimistic-concurrency write with its ``JobTransitioned`` event recorded in the same
write (the store's outbox).

**Level, not edge.** A watch event only says "look at this job again". The reconciler derives the
state Kueue and Kubernetes show now (:func:`observe`) and plans the legal path from the job's stored
status to it (:func:`plan`, checked against :mod:`budcore.domain.lifecycle`). A duplicated or replayed
event, a re-list, a resync finds the job already there and does nothing; a missed event is made up
for by the next one (a job seen only once finished still goes ``queued → admitted → running →
completed``, every step recorded once).

**How Kueue's conditions map** onto budcore's lifecycle (legal edges: ``budcore/domain/lifecycle.py``;
Kueue's condition and reason constants: ``apis/kueue/v1beta2/workload_types.go``):

=====================================================  ==================================================
Workload (and its Job / JobSet) shows                  budcore transition(s)
=====================================================  ==================================================
``QuotaReserved=True`` (or ``Admitted=True``)          ``queued → admitted``
Job unsuspended, ``status.active > 0`` or              ``admitted → running`` (from queued: via admitted)
``startTime`` (JobSet: a replicated job active)
``Finished`` reason Succeeded, Job ``Complete``        ``running → completed`` (via admitted and running
(JobSet ``Completed``)                                 when those were never seen)
``Finished`` reason Failed, Job ``Failed``             ``→ failed`` with the condition's message (via
(JobSet ``Failed``)                                    admitted / running when it had got that far)
``QuotaReserved`` not true, not evicted                ``admitted → queued`` (reservation released)
=====================================================  ==================================================

``Evicted`` with reason (what Kueue does next)                  from admitted         from running
==============================================================  ====================  =====================
``Preempted``: ``Requeued=True`` at once [1]                    → preempted → queued  → preempted → queued
``NodeFailures``: ``Requeued=True`` at once [1]                 → queued              → preempted → queued
``PodsReadyTimeout``: ``Requeued=False``, then                  → queued              → preempted → queued
``BackoffFinished`` after the backoff [2]
``AdmissionCheck`` (a check said Retry): as PodsReadyTimeout    → queued              → preempted → queued
[2]
``ClusterQueueStopped`` / ``LocalQueueStopped``: requeued on    → queued              → preempted → queued
``ClusterQueueRestarted`` / ``LocalQueueRestarted`` [2]
``Deactivated`` (``InactiveWorkload`` before Kueue 0.10 [3]):   → queued (message:    → preempted → queued
``spec.active=false``, ``Requeued=False`` until reactivated     waits until           (same message)
(``Reactivated``) [2]                                           reactivated)
``DeactivatedDueTo`` + ``RequeuingLimitExceeded``,              → failed              → failed
``AdmissionCheck`` (a check Rejected it) or
``MaximumExecutionTimeExceeded`` (≤ 0.9:
``InactiveWorkload`` + the cause) [2][3]: out for good
any other reason (``FlavorMigration``...): requeued             → queued              → preempted → queued
==============================================================  ====================  =====================

[1] ``pkg/controller/jobframework/reconciler.go``, "handle eviction": ``setRequeued`` is true only for
Preempted and NodeFailures; the same status write releases the quota. budcore records the preemption
(``preemption_count`` + 1) and then the requeue. [2] ``pkg/controller/core/workload_controller.go``: the
``Requeued`` reasons BackoffFinished (after PodsReadyTimeout / AdmissionCheck), Reactivated (after
Deactivated), ClusterQueueRestarted / LocalQueueRestarted; ``SetDeactivationTarget`` for
RequeuingLimitExceeded, MaximumExecutionTimeExceeded and a Rejected admission check. [3]
``CHANGELOG/CHANGELOG-0.10.md`` (InactiveWorkload renamed Deactivated) and
``pkg/workload/patching/patching.go`` ``ReasonWithCause``: ``<reason>DueTo<cause>``.

Why: budcore has no ``running → queued`` edge, so a running job evicted back to the queue passes
through ``preempted`` (its pods were stopped before finishing, as by a preemption). A deactivated
workload holds no quota and may be reactivated, so it waits as ``queued`` (``failed`` would spend a
retry, ``cancelled`` is absorbing), unless Kueue deactivated it for a reason nobody undoes
automatically (the retry limit, a rejection, a timeout), which is a failure; a timeout also clears
``accumulated_runtime``, as Kueue does and as ``JobService.enforce_limits`` does for budcore's own
timeouts.

Never applied: a move out of ``completed``, ``cancelled`` or ``failed`` (budcore owns retries; a retry
is a new attempt with its own Kubernetes object, see :func:`~.submit.object_name`, and objects of
another attempt than the job's ``retry_count`` are ignored), and a move "backwards" on the
``queued → admitted → running`` chain that no eviction explains (``running`` while Kueue shows the
workload merely admitted is a status that has not caught up, not a change).

**Stale views and several replicas.** Each replica's watch cache may lag. So a transition is never
planned from the cache alone: when the cache suggests one, the reconciler reads the job from the
store, *then* reads the owner and the Workload fresh from the API server, plans from that, and writes
with the job's version. Whatever another replica wrote before our read was based on a cluster
state no newer than our fresh read, and anything written after our read makes our write a
``ConflictError`` (we re-read and re-plan). So two reconcilers on one store (or one reconciler that
sees an old event after a new one) never apply a transition twice or go backwards: safe to run as
several replicas with no coordination but the store's optimistic concurrency. It costs two GETs
per job change, none for the many events that change nothing.

*Sharing the work.* Every replica watches everything (one reconciler per cluster, replicated for
availability); the first to write a transition wins, the others' attempts are ``ConflictError``
retries that find nothing to do. To split the work rather than duplicate it, run one active
reconciler per cluster behind a lease (leader election on a Kubernetes ``Lease`` or a PostgreSQL
row); correctness never depends on it.

*Admission leases.* budcore's :class:`~budcore.ports.AdmissionLeases` port protects quota that
budcore's *own* ledger reserved: a job the ledger admitted is leased to the admitting replica until
it starts, and ``reconcile`` (any replica) requeues it when the lease expires. In a Kueue cluster
Kueue holds the quota and this reconciler records Kueue's decisions through the plain store path,
so (1) use a store that does not require the ledger for these jobs (the PostgreSQL store's
``require_ledger=False``, or no budcore quota rows): otherwise every write into ``admitted`` is
refused (``LedgerAdmissionRequiredError``), which the reconciler reports (``last_error``) and retries
for that job alone; (2) the PostgreSQL store still grants a lease on every write into ``admitted``,
and this reconciler's ``admitted → running`` removes it. A replica running the ledger's lease
``reconcile`` would requeue a job that Kueue keeps admitted but not started for longer than the lease,
and this reconciler would admit it again at its next look (two extra transitions, both true to
what budcore believed): do not run lease reconciliation over Kueue-managed jobs, or give them a
lease longer than Kueue's ``waitForPodsReady`` timeout, after which Kueue evicts such a workload
itself (``PodsReadyTimeout``, mapped above).

**Connection handling.** One thread per watched type lists, then watches from the list's
resourceVersion with bookmarks (``allowWatchBookmarks``), remembering the last resourceVersion seen;
a watch that ends (server timeout, dropped connection) is resumed from it; a ``410 Gone`` /
``Expired`` re-lists (a re-list replaces the cache, so objects deleted meanwhile are forgotten);
errors (unreachable server, a restart, 403) are retried with exponential backoff and jitter
(:class:`Backoff`, bounded, with an injectable ``sleep``). The threads only fetch; every cache update
and every store write happens in the thread that calls :meth:`StatusSync.step`, so the reconciler's
state needs no locks. Kubernetes objects deleted while their budcore job is live are only logged:
deciding that a job is lost (and requeuing it elsewhere) is the multi-cluster dispatcher's call.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from budcore.domain.errors import (
    BudcoreError,
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import Job, JobStatus
from budcore.service import JobService

from .client import JOBS, JOBSETS, KUEUE_GROUP, KubeClient, KubeError, ResourceType, WatchExpired, kueue_type
from .submit import OWNED_SELECTOR, owner_key

__all__ = [
    "EVICTION_TARGETS",
    "Backoff",
    "Observation",
    "StatusSync",
    "SyncStats",
    "eviction_target",
    "observe",
    "plan",
]

_log = logging.getLogger(__name__)

S = JobStatus

#: Eviction reasons (``Evicted`` condition) and the budcore status each leads to; see the module
#: docstring's table for Kueue's behaviour behind each. Unlisted reasons are requeuing evictions.
EVICTION_TARGETS: Final[Mapping[str, JobStatus]] = {
    "Preempted": S.PREEMPTED,
    "PodsReadyTimeout": S.QUEUED,
    "AdmissionCheck": S.QUEUED,
    "ClusterQueueStopped": S.QUEUED,
    "LocalQueueStopped": S.QUEUED,
    "NodeFailures": S.QUEUED,
    "Deactivated": S.QUEUED,
    "InactiveWorkload": S.QUEUED,
    "DeactivatedDueToRequeuingLimitExceeded": S.FAILED,
    "DeactivatedDueToAdmissionCheck": S.FAILED,
    "DeactivatedDueToMaximumExecutionTimeExceeded": S.FAILED,
    "InactiveWorkloadRequeuingLimitExceeded": S.FAILED,
    "InactiveWorkloadAdmissionCheck": S.FAILED,
}

_TIMEOUT_REASONS = frozenset({"DeactivatedDueToMaximumExecutionTimeExceeded"})
_DEACTIVATED = ("Deactivated", "InactiveWorkload")


def eviction_target(reason: str) -> JobStatus:
    """The budcore status an ``Evicted`` condition with ``reason`` leads to (see the table)."""
    return EVICTION_TARGETS.get(reason, S.QUEUED)


# -- reading Kubernetes objects ----------------------------------------------------------------


def _conditions(obj: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    if not obj:
        return {}
    out: dict[str, Mapping[str, Any]] = {}
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type"):
            out[str(cond["type"])] = cond
    return out


def _true(conds: Mapping[str, Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    cond = conds.get(kind)
    return cond if cond is not None and cond.get("status") == "True" else None


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True, slots=True)
class _OwnerState:
    """What the Job (or JobSet) itself says."""

    exists: bool = False
    suspended: bool = True
    running: bool = False
    ran: bool = False
    finished: bool = False
    succeeded: bool = False
    message: str = ""


def _owner_state(owner: Mapping[str, Any] | None) -> _OwnerState:
    if not owner:
        return _OwnerState()
    spec = owner.get("spec") or {}
    status = owner.get("status") or {}
    conds = _conditions(owner)
    suspended = bool(spec.get("suspend"))
    if owner.get("kind") == "JobSet":
        done, failed = _true(conds, "Completed"), _true(conds, "Failed")
        replicated = [r for r in status.get("replicatedJobsStatus") or [] if isinstance(r, Mapping)]
        active = sum(_int(r.get("active")) + _int(r.get("ready")) for r in replicated)
        ended = sum(_int(r.get("succeeded")) + _int(r.get("failed")) for r in replicated)
        running = not suspended and active > 0
    else:  # batch/v1 Job (Kueue: Job.IsActive is status.active != 0; Finished is Complete/Failed)
        done, failed = _true(conds, "Complete"), _true(conds, "Failed")
        active = _int(status.get("active"))
        ended = _int(status.get("succeeded")) + _int(status.get("failed"))
        running = not suspended and (active > 0 or bool(status.get("startTime")))
    finish = done or failed
    return _OwnerState(
        exists=True,
        suspended=suspended,
        running=running,
        ran=running or ended > 0,
        finished=finish is not None,
        succeeded=done is not None,
        message=str((finish or {}).get("message") or ""),
    )


@dataclass(frozen=True, slots=True)
class Observation:
    """The state Kueue and Kubernetes show for one job now, as a budcore ``target`` status.

    ``admitted``/``ran``: evidence that quota was reserved / pods started in this run (so a job seen
    only once it failed is walked through the states it really went through). ``eviction``: the
    ``Evicted`` reason, when evicted. ``requeued``: a preempted workload is back in Kueue's queue.
    ``changes``: extra job field updates for the final transition.
    """

    target: JobStatus
    reason: str
    admitted: bool = False
    ran: bool = False
    eviction: str | None = None
    requeued: bool = False
    changes: Mapping[str, Any] = field(default_factory=dict)


def observe(owner: Mapping[str, Any] | None, workload: Mapping[str, Any] | None) -> Observation:
    """Derive the budcore target state from the owner (Job/JobSet) and its Workload (either may be
    ``None``: not created yet, or not seen yet). Precedence: finished, then evicted, then quota
    reserved (running or not), then pending — the order in which Kueue's own job reconciler checks
    them (``jobframework/reconciler.go``: finished, then eviction, then suspension)."""
    own = _owner_state(owner)
    conds = _conditions(workload)
    admission = bool(((workload or {}).get("status") or {}).get("admission"))
    reserved = _true(conds, "QuotaReserved") or _true(conds, "Admitted")
    finished = _true(conds, "Finished")
    if finished is not None or own.finished:
        if finished is not None:
            ok = finished.get("reason") == "Succeeded"
            message = str(finished.get("message") or own.message)
        else:
            ok, message = own.succeeded, own.message
        ran = own.ran or ok
        admitted = ran or admission or reserved is not None or (own.exists and not own.suspended)
        if ok:
            return Observation(S.COMPLETED, f"kueue: finished: {message or 'succeeded'}", True, True)
        return Observation(S.FAILED, f"kueue: failed: {message or 'the job failed'}", admitted, ran)
    evicted = _true(conds, "Evicted")
    if evicted is not None:
        reason = str(evicted.get("reason") or "Evicted")
        message = str(evicted.get("message") or "")
        target = eviction_target(reason)
        requeue_cond = conds.get("Requeued")
        requeued = reserved is None and (requeue_cond is None or requeue_cond.get("status") != "False")
        text = f"kueue: evicted ({reason})" + (f": {message}" if message else "")
        if target is S.QUEUED and reason.startswith(_DEACTIVATED):
            text += " — deactivated in Kueue (spec.active=false): waits until reactivated"
        changes: dict[str, Any] = {}
        if reason in _TIMEOUT_REASONS:
            changes["accumulated_runtime"] = timedelta(0)
        return Observation(target, text, eviction=reason, requeued=requeued, changes=changes)
    if reserved is not None or (workload is None and own.exists and not own.suspended):
        where = str((reserved or {}).get("message") or "quota reserved")
        if own.running:
            return Observation(S.RUNNING, "kubernetes: pods started", True, True)
        return Observation(S.ADMITTED, f"kueue: admitted: {where}", True, False)
    pending = conds.get("QuotaReserved")
    text = str((pending or {}).get("message") or "pending")
    return Observation(S.QUEUED, f"kueue: pending: {text}")


# -- planning the legal path -------------------------------------------------------------------

_ADMITTED_STEP = "kueue: quota reserved (observed late)"
_RUNNING_STEP = "kubernetes: pods started (observed late)"


def plan(current: JobStatus, obs: Observation) -> list[tuple[JobStatus, str]]:
    """The transitions, each legal in :data:`budcore.domain.lifecycle.TRANSITIONS`, that take a
    job from ``current`` to what ``obs`` shows; empty when it is there already or no honest path
    exists (see the module docstring). Pure, so the whole mapping is table-tested."""
    target = obs.target
    if current in (S.COMPLETED, S.CANCELLED, S.FAILED):
        return []
    if current is S.PENDING:
        return [(S.QUEUED, "kueue: submitted"), *plan(S.QUEUED, obs)]
    if current is S.PREEMPTED:
        if target is S.PREEMPTED and not obs.requeued:
            return []
        requeue = "kueue: requeued" + (f" after eviction ({obs.eviction})" if obs.eviction else "")
        return [(S.QUEUED, requeue), *plan(S.QUEUED, obs)]
    # current is queued, admitted or running
    rank = {S.QUEUED: 0, S.ADMITTED: 1, S.RUNNING: 2}
    here = rank[current]
    steps: list[tuple[JobStatus, str]] = []
    if target in (S.ADMITTED, S.RUNNING, S.COMPLETED):
        goal = rank[target] if target is not S.COMPLETED else rank[S.RUNNING]
        if here > goal:
            return []  # not caught up yet (see the module docstring): no backwards move
        for status, reason in ((S.ADMITTED, _ADMITTED_STEP), (S.RUNNING, _RUNNING_STEP))[here:goal]:
            steps.append((status, obs.reason if status is target else reason))
        if target is S.COMPLETED:
            steps.append((S.COMPLETED, obs.reason))
        return steps
    if target is S.FAILED:
        if obs.eviction is None:  # the job failed: walk through what it went through first
            if here < 1 and (obs.admitted or obs.ran):
                steps.append((S.ADMITTED, _ADMITTED_STEP))
            if here < 2 and obs.ran:
                steps.append((S.RUNNING, _RUNNING_STEP))
        return [*steps, (S.FAILED, obs.reason)]
    if target is S.PREEMPTED:
        if current is S.QUEUED:
            # Requeued already: either budcore applied the preemption and the requeue before, or it
            # never saw that run; queued is right either way. Not yet requeued: the run was missed.
            return [] if obs.requeued else [(S.ADMITTED, _ADMITTED_STEP), (S.PREEMPTED, obs.reason)]
        steps = [(S.PREEMPTED, obs.reason)]
        if obs.requeued:
            steps.append((S.QUEUED, f"kueue: requeued after eviction ({obs.eviction})"))
        return steps
    # target is QUEUED: a requeuing eviction, or a pending workload
    if current is S.ADMITTED:
        return [(S.QUEUED, obs.reason)]
    if current is S.RUNNING and obs.eviction is not None:
        stopped = f"kueue: evicted ({obs.eviction}): pods stopped before finishing"
        return [(S.PREEMPTED, stopped), (S.QUEUED, obs.reason)]
    return []


# -- connection handling -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter for reconnects: ``min(max_s, initial_s × multiplier**(n−1))``
    for the n-th consecutive failure, of which a random fraction up to ``jitter`` is taken off (so
    replicas that lost the same server do not come back in lockstep)."""

    initial_s: float = 0.2
    max_s: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.initial_s <= 0 or self.max_s < self.initial_s:
            raise ValidationError("backoff needs 0 < initial_s <= max_s", path="backoff")
        if self.multiplier < 1 or not 0 <= self.jitter <= 1:
            raise ValidationError("backoff needs multiplier >= 1 and 0 <= jitter <= 1", path="backoff")

    def delay(self, failures: int, rand: float = 0.0) -> float:
        """Seconds to wait after ``failures`` (>= 1) consecutive failures; ``rand`` in [0, 1)."""
        exponent = min(max(failures, 1) - 1, 64)
        raw = min(self.max_s, self.initial_s * self.multiplier**exponent)
        return raw * (1.0 - self.jitter * rand)


@dataclass
class SyncStats:
    """Counters for tests and metrics (updated by the watch threads and the reconciling thread)."""

    lists: int = 0
    watches: int = 0
    expired: int = 0
    errors: int = 0
    bookmarks: int = 0
    events: int = 0
    confirms: int = 0
    transitions: int = 0
    conflicts: int = 0
    resyncs: int = 0


# Cache keys: an owner is (kind, namespace, name); a Workload is (namespace, name).
OwnerRef = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class _Listed:
    rt: ResourceType
    items: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Changed:
    rt: ResourceType
    type: str
    object: dict[str, Any]


class _Pump:
    """One watched type: list, watch from the list's resourceVersion, resume, re-list on 410,
    back off on errors; hands everything to the reconciling thread through ``out``."""

    def __init__(self, sync: StatusSync, rt: ResourceType, selector: str | None) -> None:
        self.sync = sync
        self.rt = rt
        self.selector = selector
        self.resource_version: str | None = None
        self.thread = threading.Thread(target=self.run, name=f"budcore-sync-{rt.plural}", daemon=True)

    def run(self) -> None:
        sync, stats = self.sync, self.sync.stats
        failures = 0
        while not sync.stopping:
            try:
                if self.resource_version is None:
                    items, rv = sync.client.list(self.rt, sync.namespace, label_selector=self.selector)
                    stats.lists += 1
                    sync.inbox.put(_Listed(self.rt, items))
                    self.resource_version = rv
                    failures = 0
                started = time.monotonic()
                got = self._watch()
                if not got and time.monotonic() - started < 1.0:
                    failures += 1  # ended at once with nothing: a server that drops us; do not spin
                    sync.pause(failures)
                elif got:
                    failures = 0
            except WatchExpired:
                stats.expired += 1
                self.resource_version = None
            except KubeError as exc:
                failures += 1
                stats.errors += 1
                sync.last_error = exc
                _log.info("watch %s: %s (retry %d)", self.rt.plural, exc, failures)
                sync.pause(failures)
            except Exception as exc:  # a bug must not silently end the watch: record, back off, go on
                failures += 1
                stats.errors += 1
                sync.last_error = exc
                _log.exception("watch %s failed", self.rt.plural)
                sync.pause(failures)

    def _watch(self) -> bool:
        sync, stats = self.sync, self.sync.stats
        assert self.resource_version is not None
        stream = sync.client.watch(
            self.rt,
            namespace=sync.namespace,
            resource_version=self.resource_version,
            label_selector=self.selector,
            timeout_s=sync.watch_timeout_s,
        )
        stats.watches += 1
        got = False
        try:
            for event in stream:
                got = True
                self.resource_version = event.resource_version or self.resource_version
                if event.type == "BOOKMARK":
                    stats.bookmarks += 1
                else:
                    stats.events += 1
                    sync.inbox.put(_Changed(self.rt, event.type, event.object))
                if sync.stopping:
                    break
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        return got


def _rv(obj: Mapping[str, Any]) -> int | None:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or "")
    except ValueError:
        return None


def _newer(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    """Whether ``new`` should replace the cached ``old``. Only a cache-freshness heuristic:
    correctness never depends on it (transitions are planned from fresh reads)."""
    if old is None:
        return True
    a, b = _rv(new), _rv(old)
    return a is None or b is None or a >= b


def _controller_owner(workload: Mapping[str, Any]) -> tuple[OwnerRef, str] | None:
    """The (Job or JobSet) owner of a Workload and the owner's uid."""
    meta = workload.get("metadata") or {}
    namespace = str(meta.get("namespace") or "")
    for ref in meta.get("ownerReferences") or []:
        if not isinstance(ref, Mapping):
            continue
        api_version, kind = str(ref.get("apiVersion") or ""), str(ref.get("kind") or "")
        if (kind, api_version) in (("Job", JOBS.api_version), ("JobSet", JOBSETS.api_version)):
            return (kind, namespace, str(ref.get("name") or "")), str(ref.get("uid") or "")
    return None


def _owner_ref(obj: Mapping[str, Any]) -> OwnerRef:
    meta = obj.get("metadata") or {}
    return str(obj.get("kind") or "Job"), str(meta.get("namespace") or ""), str(meta.get("name") or "")


class StatusSync:
    """The status reconciler of one cluster (see the module docstring).

    ``namespace``: watch one namespace (``None``: all). ``resync_s``: how often every known job is
    re-checked from the cache even without events. ``backoff``/``sleep``/``rand``: the reconnect
    policy (``sleep`` defaults to an interruptible wait; tests inject their own). ``workload_version``:
    ``v1beta2``/``v1beta1``, or ``None`` to take v1beta2 when the server serves it, else v1beta1.
    Drive it with :meth:`step`/:meth:`run_until` (tests) or :meth:`run_forever` (services); stop it
    with :meth:`stop` (or use it as a context manager).
    """

    def __init__(
        self,
        client: KubeClient,
        service: JobService,
        *,
        namespace: str | None = None,
        resync_s: float = 300.0,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] | None = None,
        rand: Callable[[], float] = random.random,
        watch_timeout_s: int = 300,
        workload_version: str | None = None,
        max_conflict_retries: int = 10,
    ) -> None:
        if resync_s <= 0 or watch_timeout_s < 1 or max_conflict_retries < 1:
            raise ValidationError("resync_s, watch_timeout_s and max_conflict_retries must be positive")
        self.client = client
        self.service = service
        self.namespace = namespace
        self.resync_s = resync_s
        self.backoff = backoff or Backoff()
        self.rand = rand
        self.watch_timeout_s = watch_timeout_s
        self.workload_version = workload_version
        self.max_conflict_retries = max_conflict_retries
        self.stats = SyncStats()
        self.last_error: BaseException | None = None
        self.inbox: queue.Queue[_Listed | _Changed] = queue.Queue()
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._pumps: list[_Pump] = []
        self._started = False
        self.workloads_rt: ResourceType | None = None
        self._owners: dict[OwnerRef, dict[str, Any]] = {}
        self._workloads: dict[tuple[str, str], dict[str, Any]] = {}
        self._workload_of: dict[OwnerRef, tuple[str, str]] = {}
        self._dirty: set[OwnerRef] = set()
        self._hold_until = 0.0
        self._hold_failures = 0
        self._retry: dict[OwnerRef, tuple[float, int]] = {}
        self._last_resync = 0.0
        self._missing: set[tuple[str, str]] = set()

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def pause(self, failures: int) -> None:
        """Back off after ``failures`` consecutive failures (the watch threads call this)."""
        self._sleep(self.backoff.delay(failures, self.rand()))

    def start(self) -> None:
        """Discover the served API versions and start the watch threads (idempotent).

        Raises the client's ``KubeError`` when the server cannot be asked, and ``ValidationError``
        when it serves no Kueue API at all.
        """
        if self._started:
            return
        version = self.workload_version
        if version is None:
            served = self.client.api_versions(KUEUE_GROUP)
            version = next((v for v in ("v1beta2", "v1beta1") if v in served), None)
            if version is None:
                raise ValidationError(
                    f"{self.client.context or self.client.server}: the server serves no {KUEUE_GROUP} "
                    "API (v1beta2 or v1beta1): is Kueue installed?"
                )
        self.workloads_rt = kueue_type("Workload", version)
        types: list[tuple[ResourceType, str | None]] = [(JOBS, OWNED_SELECTOR), (self.workloads_rt, None)]
        if JOBSETS.version in self.client.api_versions(JOBSETS.group):
            types.append((JOBSETS, OWNED_SELECTOR))
        self._stop.clear()
        self._pumps = [_Pump(self, rt, selector) for rt, selector in types]
        for pump in self._pumps:
            pump.thread.start()
        self._started = True
        self._last_resync = time.monotonic()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop the watch threads (each ends at its next event or bookmark, or at its timeout)."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for pump in self._pumps:
            pump.thread.join(timeout=max(deadline - time.monotonic(), 0.0))
        self._pumps = []
        self._started = False

    def __enter__(self) -> StatusSync:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- driving -------------------------------------------------------------------------------

    def step(self, wait_s: float = 0.05) -> int:
        """Take what the watches delivered (waiting up to ``wait_s`` for the first item), update the
        cache, and reconcile every job it touched; answers how many transitions were written."""
        self.start()
        self._drain(wait_s)
        now = time.monotonic()
        if now >= self._last_resync + self.resync_s:
            self.stats.resyncs += 1
            self._dirty.update(self._owners)
            self._last_resync = now
        if now < self._hold_until:
            return 0
        return self._reconcile_dirty()

    def run_until(self, predicate: Callable[[], bool], timeout_s: float, *, wait_s: float = 0.05) -> bool:
        """Step until ``predicate()`` holds (``True``) or ``timeout_s`` passed (``False``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            self.step(wait_s)

    def run_forever(self, stop: threading.Event) -> None:
        """Reconcile until ``stop`` is set (a service's main loop); start-up failures back off."""
        failures = 0
        try:
            while not stop.is_set():
                try:
                    self.start()
                    failures = 0
                    self.step(0.2)
                except KubeError as exc:
                    failures += 1
                    self.last_error = exc
                    _log.warning("status sync: %s (retry %d)", exc, failures)
                    stop.wait(self.backoff.delay(failures, self.rand()))
        finally:
            self.stop()

    # -- the cache -----------------------------------------------------------------------------

    def _drain(self, wait_s: float) -> None:
        try:
            item = self.inbox.get(timeout=wait_s) if wait_s > 0 else self.inbox.get_nowait()
        except queue.Empty:
            return
        while True:
            self._absorb(item)
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                return

    def _absorb(self, item: _Listed | _Changed) -> None:
        is_workload = item.rt.kind == "Workload"
        if isinstance(item, _Listed):
            if is_workload:
                self._workloads = {}
                self._workload_of = {}
                for obj in item.items:
                    self._put_workload(obj)
            else:
                kind = item.rt.kind
                for ref in [r for r in self._owners if r[0] == kind]:
                    del self._owners[ref]
                for obj in item.items:
                    obj.setdefault("kind", kind)
                    self._put_owner(obj)
            return
        obj = item.object
        if is_workload:
            if item.type == "DELETED":
                meta = obj.get("metadata") or {}
                key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
                self._workloads.pop(key, None)
                found = _controller_owner(obj)
                if found is not None and self._workload_of.get(found[0]) == key:
                    del self._workload_of[found[0]]
            else:
                self._put_workload(obj)
        elif item.type == "DELETED":
            ref = _owner_ref(obj)
            if self._owners.pop(ref, None) is not None:
                _log.info("%s %s/%s was deleted", ref[0], ref[1], ref[2])
            self._workload_of.pop(ref, None)
            self._dirty.discard(ref)
        else:
            self._put_owner(obj)

    def _put_owner(self, obj: dict[str, Any]) -> None:
        ref = _owner_ref(obj)
        if _newer(obj, self._owners.get(ref)):
            self._owners[ref] = obj
        self._dirty.add(ref)

    def _put_workload(self, obj: dict[str, Any]) -> None:
        found = _controller_owner(obj)
        if found is None:
            return  # not a Job's or JobSet's Workload: never one of budcore's
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        if _newer(obj, self._workloads.get(key)):
            self._workloads[key] = obj
        self._workload_of[found[0]] = key
        self._dirty.add(found[0])

    def _cached_workload(self, ref: OwnerRef, owner: Mapping[str, Any]) -> dict[str, Any] | None:
        key = self._workload_of.get(ref)
        workload = self._workloads.get(key) if key is not None else None
        if workload is None:
            return None
        found = _controller_owner(workload)
        uid = str((owner.get("metadata") or {}).get("uid") or "")
        if found is not None and found[1] and uid and found[1] != uid:
            return None  # the Workload of an earlier object of the same name
        return workload

    # -- reconciling ---------------------------------------------------------------------------

    def _reconcile_dirty(self) -> int:
        applied = 0
        now = time.monotonic()
        for ref in sorted(self._dirty):
            retry = self._retry.get(ref)
            if retry is not None and retry[0] > now:
                continue
            try:
                done, settled = self._reconcile(ref)
            except KubeError as exc:
                self.last_error = exc
                if exc.status == 0 or exc.status == 429 or exc.status >= 500:
                    # The server is unreachable, restarting or overloaded: keep everything for
                    # later and back off as a whole (the watches reconnect meanwhile).
                    self._hold_failures += 1
                    self._hold_until = now + self.backoff.delay(self._hold_failures, self.rand())
                    _log.info("status sync: %s (holding %d)", exc, self._hold_failures)
                    return applied
                self._defer(ref, exc, now)  # this object only (a 403 in one namespace...)
                continue
            except BudcoreError as exc:
                # The store refused the write (a ledger that requires its own admission, a
                # validation rule): this job only; the others go on.
                self._defer(ref, exc, now)
                continue
            applied += done
            if settled:
                self._retry.pop(ref, None)
                self._dirty.discard(ref)
        self._hold_failures = 0
        return applied

    def _defer(self, ref: OwnerRef, exc: BaseException, now: float) -> None:
        """Retry one job later, with its own backoff, and say why."""
        self.last_error = exc
        failures = self._retry.get(ref, (0.0, 0))[1] + 1
        self._retry[ref] = (now + self.backoff.delay(failures, self.rand()), failures)
        _log.warning("status sync: %s %s/%s: %s (retry %d)", *ref, exc, failures)

    def _reconcile(self, ref: OwnerRef) -> tuple[int, bool]:
        """Bring one job up to date: (transitions written, whether it is settled; ``False``: it kept
        losing races to other writers, try again at the next step)."""
        owner = self._owners.get(ref)
        key = owner_key(owner) if owner is not None else None
        if owner is None or key is None:
            return 0, True
        tenant, job_id, attempt = TenantId(key[0]), JobId(key[1]), key[2]
        applied = 0
        for _ in range(self.max_conflict_retries):
            # Read the job first, then the cluster: see "Stale views" in the module docstring.
            job = self._job(tenant, job_id)
            if job is None or job.retry_count != attempt:
                return applied, True
            if not plan(job.status, observe(owner, self._cached_workload(ref, owner))):
                return applied, True
            fresh = self._confirm(ref, owner)
            if fresh is None:
                return applied, True
            owner, workload = fresh
            done, complete = self._apply(job, observe(owner, workload))
            applied += done
            if complete:
                return applied, True
            # Another writer (a second replica, the scheduler, a user) moved the job first: re-read.
            self.stats.conflicts += 1
        _log.info(
            "job %s/%s: %d conflicts in a row, trying again later", tenant, job_id, self.max_conflict_retries
        )
        return applied, False

    def _job(self, tenant: TenantId, job_id: JobId) -> Job | None:
        try:
            return self.service.store.get(tenant, job_id)
        except NotFoundError:
            if (tenant, job_id) not in self._missing:
                self._missing.add((tenant, job_id))
                _log.warning("job %s/%s is in the cluster but not in the job store", tenant, job_id)
            return None

    def _confirm(
        self, ref: OwnerRef, cached: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        """The owner and its Workload read fresh from the API server (``None``: owner gone)."""
        kind, namespace, name = ref
        rt = JOBSETS if kind == "JobSet" else JOBS
        self.stats.confirms += 1
        owner = self.client.get(rt, name, namespace)
        if owner is None:
            self._owners.pop(ref, None)
            return None
        owner.setdefault("kind", kind)
        self._put_owner(owner)
        assert self.workloads_rt is not None
        workload: dict[str, Any] | None = None
        key = self._workload_of.get(ref)
        if key is not None:
            workload = self.client.get(self.workloads_rt, key[1], key[0])
        if workload is None:
            uid = str((owner.get("metadata") or {}).get("uid") or "")
            if uid:  # Kueue labels a Job's Workload with the Job's uid
                items, _ = self.client.list(
                    self.workloads_rt, namespace, label_selector=f"kueue.x-k8s.io/job-uid={uid}"
                )
                workload = items[0] if items else None
        if workload is not None:
            self._put_workload(workload)
            workload = self._cached_workload(ref, owner)
        return owner, workload

    def _apply(self, job: Job, obs: Observation) -> tuple[int, bool]:
        """Write the planned transitions one by one: (how many were written, whether all were).

        A ``ConflictError`` (the stored version moved on) or an ``InvalidTransitionError`` (the
        store's lifecycle check refused: the job's stored status changed under us) stops here;
        the caller re-reads and re-plans.
        """
        steps = plan(job.status, obs)
        done = 0
        for index, (status, reason) in enumerate(steps):
            changes = dict(obs.changes) if index == len(steps) - 1 else {}
            try:
                job = self.service.move(job, status, reason=reason, **changes)
            except (ConflictError, InvalidTransitionError):
                self.stats.transitions += done
                return done, False
            done += 1
        self.stats.transitions += done
        return done, True

    # -- for tests and operators ---------------------------------------------------------------

    def known_jobs(self) -> Iterable[tuple[str, str, int]]:
        """(tenant, job id, attempt) of every budcore object in the cache."""
        for owner in self._owners.values():
            key = owner_key(owner)
            if key is not None:
                yield key
