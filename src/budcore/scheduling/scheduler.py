"""The admission scheduler: incremental state around the pure :func:`schedule` cycle.

A production service and the simulator drive budcore the same way::

    scheduler = Scheduler(config)
    scheduler.submit(job)              # job enters its LocalQueue's ClusterQueue
    result = scheduler.cycle(now)      # snapshot in, decisions out; admissions applied here
    ...                                # start admitted workloads on the cluster backend
    for decision in result.preemptions:  # victims to evict (with decision.grace_period)
        ...
    scheduler.release(job_id, now)     # workload finished / was evicted: quota returns

Priority follows Kueue: a job's priority value (``Job.priority_value``) is the ``value`` of the
WorkloadPriorityClass it names (``Job.priority_class`` or the label ``kueue.x-k8s.io/priority-class``,
resolved against ``config.priority_classes`` at submit), else its built-in class's value, and that
one value orders the queue *and* decides preemption (kubernetes-sigs/kueue
``site/content/en/docs/concepts/workload_priority_class.md``, "Where workload's priority is used").

Preemption follows Kueue: a workload that would fit by evicting others gets a
:class:`~budcore.scheduling.preemption.PreemptionDecision`; the caller evicts the victims, releases
their quota once their pods are gone, and requeues them; the preemptor is admitted by a later
cycle when the quota is back.

State kept incrementally (never rebuilt per decision): quota usage with propagation up the
cohort tree, pending queues ordered per ClusterQueue, admitted workloads, LocalQueue usage for
admission fair sharing, and the last reason each pending workload was given.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import cast

from budcore.domain.errors import AlreadyExistsError, NotFoundError, ValidationError
from budcore.domain.job import Job
from budcore.domain.priority import (
    PRIORITY_CLASS_LABEL,
    PRIORITY_MAX,
    PRIORITY_MIN,
    JobPriority,
    check_critical_value,
)
from budcore.domain.timeutil import ensure_utc
from budcore.ports.preemption_cost import VictimInfo
from budcore.scheduling.cycle import (
    AdmissionPolicy,
    AdmissionSnapshot,
    Admit,
    AdmittedWorkload,
    CycleResult,
    schedule,
)
from budcore.scheduling.fair_sharing import LocalQueueUsage
from budcore.scheduling.pending import PendingQueues, PendingWorkload
from budcore.scheduling.preemption import DecisionStatus, PreemptionDecision, PreemptionPolicy, find_victims
from budcore.scheduling.preemption.aging import AgingPolicy, effective_priority
from budcore.scheduling.preemption.guards import PreemptionBudget
from budcore.scheduling.queues import QueueConfig, StopPolicy
from budcore.scheduling.quota import FR, QuotaTree, QuotaUsage


class Scheduler:
    def __init__(
        self,
        config: QueueConfig,
        policy: AdmissionPolicy | None = None,
        preemption: PreemptionPolicy | None = None,
        budget: PreemptionBudget | None = None,
    ) -> None:
        self.policy = policy or AdmissionPolicy()
        self.preemption = preemption or PreemptionPolicy(
            fair_sharing=self.policy.fair_sharing, flavor_weights=dict(self.policy.flavor_weights)
        )
        self.budget = budget if budget is not None else PreemptionBudget()
        self.evicting: set[str] = set()  # victims being evicted, still holding quota
        # What each admitted job says about itself (type, protection, checkpoints), so preemption
        # never depends on the caller to protect a critical or non-preemptible job.
        self._victim_info = _JobFacts()
        if self.policy.local_queue_usage is None and any(
            cq.admission_fair_sharing for cq in config.cluster_queues.values()
        ):
            self.policy = replace(self.policy, local_queue_usage=LocalQueueUsage())
        self.tree = QuotaTree(config)
        self.usage = QuotaUsage(self.tree)
        self.pending = PendingQueues(config)
        self.admitted: dict[str, AdmittedWorkload] = {}
        # Pending workloads whose last preemption found no victims: they reserve no room in a cycle.
        self._no_candidates: set[str] = set()
        self.reasons: dict[str, object] = {}  # job id -> reason (str() renders it)

    @property
    def config(self) -> QueueConfig:
        return self.tree.config

    # Inputs ----------------------------------------------------------------------------------
    def submit(
        self, job: Job, *, priority: int | None = None, timestamp: float | None = None
    ) -> PendingWorkload:
        """Queue a job (its ``local_queue`` in namespace ``tenant``); unknown LocalQueue → NotFoundError.

        The queued workload carries :meth:`resolve_priority`'s copy of the job, so the value that
        orders the queue is the value admission and preemption read (``job.priority_value``).
        ``priority`` sets that value explicitly (Kueue's ``Workload.spec.priority``, which is
        mutable): it counts for preemption too, not only for queue order. A queue-order-only
        boost is :meth:`age`. An unknown priority class is a ``ValidationError`` naming the field,
        and nothing is queued. A job that is already admitted is an ``AlreadyExistsError``
        (queuing it again would count its quota twice); release it first.
        """
        if job.id in self.admitted:
            raise AlreadyExistsError("admitted workload", job.id)
        return self.pending.push(self.resolve_priority(job, priority), timestamp=timestamp)

    def resolve_priority(self, job: Job, priority: int | None = None) -> Job:
        """``job`` with the priority it competes with: the copy :meth:`submit` queues.

        - ``job.priority_class`` (or the label ``kueue.x-k8s.io/priority-class``) names a
          WorkloadPriorityClass of ``config.priority_classes``: its ``value`` becomes
          ``workload_priority``. The built-in names ``budcore-<class>`` also set ``job.priority``
          to that class (their value: the configuration's object when it defines one, else the
          built-in value); a job whose ``priority`` is a different non-default class is an error.
        - ``priority`` given: it is the value, whatever the class says.
        - Neither: the job unchanged (the five built-in classes behave exactly as before).

        A critical job keeps its protection whatever value it gets, and may not get a value below
        critical's (see :mod:`budcore.domain.priority`, "The critical rule"). Returns ``job``
        itself when nothing changes.
        """
        klass = job.priority
        value = job.workload_priority
        name = job.priority_class_name
        field = "priority_class" if job.priority_class is not None else f"labels[{PRIORITY_CLASS_LABEL}]"
        if name is not None:
            try:
                value = self.config.priority_class_value(name)
            except ValidationError as exc:
                raise ValidationError(f"job {job.id!r}: {exc.message}", path=field) from None
            builtin = JobPriority.from_kueue_class_name(name)
            if builtin is not None:
                if klass is not builtin and klass is not JobPriority.NORMAL:
                    raise ValidationError(
                        f"job {job.id!r}: priority {klass.value!r} contradicts priority class {name!r} "
                        f"(the built-in class {builtin.value!r})",
                        path=field,
                    )
                klass = builtin
                if name not in self.config.priority_classes:
                    value = None  # the built-in value
        if priority is not None:
            if isinstance(priority, bool) or not PRIORITY_MIN <= priority <= PRIORITY_MAX:
                raise ValidationError(
                    f"job {job.id!r}: priority must be an int32, got {priority!r}", path="priority"
                )
            value, field = priority, "priority"
        problem = check_critical_value(klass, value)
        if problem is not None:
            raise ValidationError(f"job {job.id!r}: {problem}", path=field)
        effective = klass.value_int if value is None else value
        if klass is job.priority and effective == job.priority_value:
            return job
        return job.model_copy(update={"priority": klass, "workload_priority": value})

    def withdraw(self, job_id: str) -> PendingWorkload | None:
        """Remove a pending job (cancelled before admission)."""
        self.reasons.pop(job_id, None)
        self._no_candidates.discard(job_id)
        return self.pending.remove(job_id)

    def snapshot(self, now: datetime | None = None) -> AdmissionSnapshot:
        """What a cycle at ``now`` decides on (see :class:`AdmissionSnapshot`).

        With ``now``, and LocalQueue usage tracked (admission fair sharing), it carries the
        decayed usage of the LocalQueues the cycle may order by it; reading the decay advances it
        (:meth:`LocalQueueUsage.value`), which is why that happens here and not in the cycle.
        """
        return AdmissionSnapshot(
            self.tree,
            self.usage,
            self.admitted,
            no_preemption_candidates=self._no_candidates,
            local_queue_usage=None if now is None else self._local_queue_usage(now),
        )

    def _local_queue_usage(self, now: datetime) -> dict[tuple[str, str], float] | None:
        """The decayed usage at ``now`` of every LocalQueue the cycle may order by it: those with
        pending work in an active, running ClusterQueue with ``admission_fair_sharing``."""
        tracked = self.policy.local_queue_usage
        if tracked is None:
            return None
        cluster_queues = self.config.cluster_queues
        values: dict[tuple[str, str], float] = {}
        for cq_name in self.pending.active:
            cq = cluster_queues.get(cq_name)
            queue = self.pending.queue(cq_name)
            if cq is None or queue is None or not cq.admission_fair_sharing:
                continue
            if cq.stop_policy is StopPolicy.NONE:
                for lq_key in queue.lq_heads:
                    values[lq_key] = tracked.value(lq_key, now)
        return values

    # The cycle -------------------------------------------------------------------------------
    def cycle(self, now: datetime, victim_info: Mapping[str, VictimInfo] | None = None) -> CycleResult:
        """Run one cycle, apply its admissions, and decide preemptions for what needs them.

        ``victim_info`` gives the preemption cost model what the snapshot lacks about running
        workloads (job type, start, checkpoints, progress, price); see :class:`VictimInfo`.
        """
        now = ensure_utc(now, "now")  # before any state changes: admissions record it
        # The preemption oracle needs only the guards (critical, preemptible): the jobs' own facts.
        result = schedule(
            self.snapshot(now),
            self.pending,
            self.policy,
            now,
            preemption=self.preemption,
            victim_info=self._victim_info,
        )
        for admit in result.admitted:
            self._apply_admit(admit, now)

        for decision in result.pending:
            self.reasons[decision.job_id] = decision.why
        for needs in result.needs_preemption:
            self.reasons[needs.job_id] = _Prefixed("waiting for preemption: ", needs.why)
        if result.needs_preemption:  # the decisions refine those reasons
            result.preemptions = self._preempt(result, now, victim_info)
        self.pending.deactivate(result.exhausted)
        if result.needs_preemption:
            self._after_reservations(result)
        return result

    def _after_reservations(self, result: CycleResult) -> None:
        """Follow up the room preemptors reserved in the cycle (Kueue's ``resourcesToReserve``).

        A preemptor whose preemption found no victims is remembered, so later cycles do not
        reserve room for it again (Kueue sets such a workload aside after one try; reserving on
        every wake-up would keep that room from everyone). One that preempts stays active, as
        Kueue retries a workload waiting for its victims every cycle. Workloads passed over
        because of a reservation that came to nothing are retried: the cohort tree wakes up.
        """
        tree = self.tree
        for needs, decision in zip(result.needs_preemption, result.preemptions, strict=True):
            if decision.status is DecisionStatus.IMPOSSIBLE:
                self._no_candidates.add(needs.job_id)
            else:
                self._no_candidates.discard(needs.job_id)
            if needs.job_id not in result.reserved:
                continue
            if decision.status is DecisionStatus.PREEMPT:
                self.pending.activate((needs.cluster_queue,))
            else:
                self.pending.activate(tree.cluster_queues[needs.cluster_queue].root().members)

    def _preempt(
        self, result: CycleResult, now: datetime, victim_info: Mapping[str, VictimInfo] | None
    ) -> list[PreemptionDecision]:
        """Resolve each NeedsPreemption in order, on an overlay where earlier decisions already
        evicted their victims and took their room, so two preemptors never claim the same quota."""
        usage = self.usage.overlay()
        admitted = dict(self.admitted)
        decisions: list[PreemptionDecision] = []
        facts: Mapping[str, VictimInfo] = self._victim_info
        if victim_info:
            # The caller's facts first, the scheduler's own second: a lazy, read-only view.
            # (ChainMap is typed with mutable maps because it writes into the first; nothing does.)
            facts = ChainMap(
                cast("MutableMapping[str, VictimInfo]", victim_info),
                cast("MutableMapping[str, VictimInfo]", self._victim_info),
            )
        for needs in result.needs_preemption:
            decision = find_victims(
                AdmissionSnapshot(self.tree, usage, admitted),
                needs,
                now=now,
                policy=self.preemption,
                victim_info=facts,
                evicting=self.evicting,
                budget=self.budget,
                preemptor_timestamp=needs.timestamp,
            )
            decisions.append(decision)
            if decision.status is DecisionStatus.PREEMPT:
                for victim in decision.victims:
                    usage.add(victim.cluster_queue, victim.usage, sign=-1)
                    admitted.pop(victim.job_id, None)
                    if victim.job_id not in self.evicting:
                        self.evicting.add(victim.job_id)
                        self.budget.record(now)
                usage.add(needs.cluster_queue, needs.usage)
                names = ", ".join(v.job_id for v in decision.victims)
                self.reasons[needs.job_id] = f"waiting for preempted workloads to leave: {names}"
            elif decision.status is DecisionStatus.IMPOSSIBLE:
                self.reasons[needs.job_id] = decision.reason
        return decisions

    def _apply_admit(self, admit: Admit, now: datetime) -> None:
        workload = self.pending.remove(admit.job_id)
        if workload is None:  # pragma: no cover - the cycle only admits pending workloads
            raise NotFoundError("pending workload", admit.job_id)
        self.usage.add(admit.cluster_queue, admit.usage)
        self._no_candidates.discard(admit.job_id)
        self.admitted[admit.job_id] = AdmittedWorkload(
            job_id=admit.job_id,
            tenant=admit.tenant,
            cluster_queue=admit.cluster_queue,
            local_queue=admit.local_queue,
            usage=admit.usage,
            flavors=admit.flavors,
            priority=admit.priority,
            admitted_at=now,
            timestamp=workload.timestamp,
        )
        self.reasons.pop(admit.job_id, None)
        self._victim_info.jobs[admit.job_id] = workload.job
        afs = self.policy.local_queue_usage
        if afs is not None:
            afs.change(admit.local_queue, _by_resource(admit.usage), now, +1)

    def admit_directly(self, admit: Admit, now: datetime) -> None:
        """Apply an admission decided elsewhere (e.g. after preemption freed the quota)."""
        self._apply_admit(admit, now)

    def release(self, job_id: str, now: datetime) -> AdmittedWorkload:
        """A workload stopped holding quota (finished, failed, evicted): return its quota."""
        admitted = self.admitted.pop(job_id, None)
        if admitted is None:
            raise NotFoundError("admitted workload", job_id)
        self.evicting.discard(job_id)
        self._victim_info.forget(job_id)
        self.usage.add(admitted.cluster_queue, admitted.usage, sign=-1)
        afs = self.policy.local_queue_usage
        if afs is not None:
            afs.change(admitted.local_queue, _by_resource(admitted.usage), now, -1)
        self.pending.activate(self.tree.cluster_queues[admitted.cluster_queue].root().members)
        return admitted

    def age(self, now: datetime, aging: AgingPolicy) -> int:
        """Starvation guard: raise the effective priority of workloads that have waited long.

        Each pending workload competes with ``effective_priority`` of its base priority and the
        time since its queue-ordering timestamp; a priority never decreases while it waits. Re-keys
        what changed (O(p log n) for p changes) and reactivates their queues; returns how many
        changed. Call it periodically, not every cycle (the simulator uses its sample clock).
        """
        now = ensure_utc(now, "now")
        changed = 0
        for queue in list(self.pending.queues().values()):
            for workload in list(queue.entries.values()):
                waited_since = datetime.fromtimestamp(workload.timestamp, UTC)
                raised = effective_priority(
                    workload.job.priority_value,
                    queued_since=min(waited_since, now),
                    now=now,
                    aging=aging,
                    previous=workload.priority,
                )
                if raised != workload.priority:
                    self.pending.remove(workload.job.id)
                    self.pending.push(workload.job, priority=raised, timestamp=workload.timestamp)
                    changed += 1
        return changed

    def reconfigure(self, config: QueueConfig) -> None:
        """Adopt a new queue configuration, keeping pending and admitted workloads.

        A WorkloadPriorityClass whose ``value`` changed re-prices the workloads that took their
        value from it, pending and admitted, as Kueue's WorkloadPriorityClassReconciler does
        (kubernetes-sigs/kueue issue #8322, PR #8442). A value set explicitly
        (``submit(priority=...)``) is kept, and so is the value of a class that was removed.
        """
        old = self.config
        in_use = {a.cluster_queue for a in self.admitted.values()} | {
            name for name, q in self.pending.queues().items() if q.entries
        }
        missing = sorted(in_use - set(config.cluster_queues))
        if missing:
            # Their workloads hold or wait for quota there: dropping the queue would strand them
            # (a later release could not return the quota). Nothing has changed yet.
            raise ValidationError(
                f"ClusterQueue(s) {', '.join(missing)} still have admitted or pending workloads; "
                "release or withdraw them before removing the queue",
                path="cluster_queues",
            )
        self.tree = QuotaTree(config)
        usage = QuotaUsage(self.tree)
        for admitted in self.admitted.values():
            if admitted.cluster_queue in self.tree.cluster_queues:
                usage.add(admitted.cluster_queue, admitted.usage)
        self.usage = usage
        self.pending.reconfigure(config)
        self._no_candidates.clear()  # new quotas or policies: every preemptor may find victims again
        if old.priority_classes != config.priority_classes:
            self._reprice(old)

    def _reprice(self, old: QueueConfig) -> None:
        def repriced(job: Job) -> Job | None:
            name = job.priority_class_name
            if name is None:
                return None
            try:
                if job.priority_value != old.priority_class_value(name):
                    return None  # an explicit value, not the class's
                resolved = self.resolve_priority(job)
            except ValidationError:
                return None  # the class is gone: the value stays
            return resolved if resolved.priority_value != job.priority_value else None

        for queue in list(self.pending.queues().values()):
            for workload in list(queue.entries.values()):
                job = repriced(workload.job)
                if job is not None:
                    try:
                        self.pending.resolve(job)  # its LocalQueue may be gone: leave it as it is
                    except (NotFoundError, ValidationError):
                        continue
                    boost = max(0, workload.priority - workload.job.priority_value)  # aging keeps
                    self.pending.remove(job.id)
                    self.pending.push(job, priority=job.priority_value + boost, timestamp=workload.timestamp)
        for job_id, admitted_job in list(self._victim_info.jobs.items()):
            job = repriced(admitted_job)
            if job is not None and job_id in self.admitted:
                self.admitted[job_id] = replace(self.admitted[job_id], priority=job.priority_value)
                self._victim_info.forget(job_id)
                self._victim_info.jobs[job_id] = job

    # Queries ---------------------------------------------------------------------------------
    def explain(self, job_id: str) -> str:
        """Why a job is where it is, in words."""
        if job_id in self.admitted:
            a = self.admitted[job_id]
            return f"admitted to ClusterQueue {a.cluster_queue} at {a.admitted_at.isoformat()}"
        workload = self.pending.get(job_id)
        if workload is None:
            raise NotFoundError("workload", job_id)
        reason = self.reasons.get(job_id)
        if reason is not None:
            return str(reason)
        queue = self.pending.queue(workload.cluster_queue)
        ahead = 0
        if queue is not None:
            ahead = sum(1 for other in queue.entries.values() if other.key < workload.key)
        return f"waiting in ClusterQueue {workload.cluster_queue} behind {ahead} workload(s)"

    def pending_reason(self, job_id: str) -> str | None:
        """The last reason a cycle gave for not admitting a pending job (None: not decided yet).

        Unlike :meth:`explain`, it says nothing for a job no cycle has looked at, so a caller can
        tell "not reached" from a reason (the simulator's end-of-run notes do).
        """
        reason = self.reasons.get(job_id)
        return None if reason is None else str(reason)

    def shape_head(self, job_id: str) -> str | None:
        """The job at the head of this pending job's request shape (same LocalQueue and request).

        A job queued behind the head of its shape waits for exactly what the head waits for: the
        cycle decides on heads only. None when the job is not pending.
        """
        workload = self.pending.get(job_id)
        if workload is None:
            return None
        queue = self.pending.queue(workload.cluster_queue)
        head = queue.shape_at(workload.shape, 0) if queue is not None else None
        return None if head is None else head.job.id

    def usage_of(self, cluster_queue: str) -> Mapping[FR, int]:
        return self.usage.of(self.tree.cluster_queues[cluster_queue])


class _JobFacts(Mapping[str, VictimInfo]):
    """:meth:`VictimInfo.from_job` of every admitted job, built only when preemption asks.

    Most admitted workloads are never looked at as victims, so keeping the job and deriving its
    facts on first read saves a validated object per admission.
    """

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self._built: dict[str, VictimInfo] = {}

    def forget(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)
        self._built.pop(job_id, None)

    def __getitem__(self, key: str) -> VictimInfo:
        info = self._built.get(key)
        if info is None:
            info = self._built[key] = VictimInfo.from_job(self.jobs[key])
        return info

    def __contains__(self, key: object) -> bool:
        return key in self.jobs

    def __iter__(self) -> Iterator[str]:
        return iter(self.jobs)

    def __len__(self) -> int:
        return len(self.jobs)


class _Prefixed:
    __slots__ = ("prefix", "why")

    def __init__(self, prefix: str, why: object) -> None:
        self.prefix = prefix
        self.why = why

    def __str__(self) -> str:
        return f"{self.prefix}{self.why}"


def _by_resource(usage: Mapping[FR, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for (_, resource), amount in usage.items():
        out[resource] = out.get(resource, 0) + amount
    return out
