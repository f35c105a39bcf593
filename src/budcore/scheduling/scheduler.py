"""The admission scheduler: incremental state around the pure :func:`schedule` cycle.

A production service and the simulator drive budcore the same way::

    scheduler = Scheduler(config)
    scheduler.submit(job)              # job enters its LocalQueue's ClusterQueue
    result = scheduler.cycle(now)      # snapshot in, decisions out; admissions applied here
    ...                                # start admitted workloads on the cluster backend
    for decision in result.preemptions:  # victims to evict (with decision.grace_period)
        ...
    scheduler.release(job_id, now)     # workload finished / was evicted: quota returns

Preemption follows Kueue: a workload that would fit by evicting others gets a
:class:`~budcore.scheduling.preemption.PreemptionDecision`; the caller evicts the victims, releases
their quota once their pods are gone, and requeues them; the preemptor is admitted by a later
cycle when the quota is back.

State kept incrementally (never rebuilt per decision): quota usage with propagation up the
cohort tree, pending queues ordered per ClusterQueue, admitted workloads, LocalQueue usage for
admission fair sharing, and the last reason each pending workload was given.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from budcore.domain.errors import NotFoundError
from budcore.domain.job import Job
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
from budcore.scheduling.preemption_budget import PreemptionBudget
from budcore.scheduling.preemption_priority import AgingPolicy, effective_priority
from budcore.scheduling.queues import QueueConfig
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
        self.reasons: dict[str, object] = {}  # job id -> reason (str() renders it)

    @property
    def config(self) -> QueueConfig:
        return self.tree.config

    # Inputs ----------------------------------------------------------------------------------
    def submit(
        self, job: Job, *, priority: int | None = None, timestamp: float | None = None
    ) -> PendingWorkload:
        """Queue a job (its ``local_queue`` in namespace ``tenant``); unknown LocalQueue → NotFoundError."""
        return self.pending.push(job, priority=priority, timestamp=timestamp)

    def withdraw(self, job_id: str) -> PendingWorkload | None:
        """Remove a pending job (cancelled before admission)."""
        self.reasons.pop(job_id, None)
        return self.pending.remove(job_id)

    def snapshot(self) -> AdmissionSnapshot:
        return AdmissionSnapshot(self.tree, self.usage, self.admitted)

    # The cycle -------------------------------------------------------------------------------
    def cycle(self, now: datetime, victim_info: Mapping[str, VictimInfo] | None = None) -> CycleResult:
        """Run one cycle, apply its admissions, and decide preemptions for what needs them.

        ``victim_info`` gives the preemption cost model what the snapshot lacks about running
        workloads (job type, start, checkpoints, progress, price); see :class:`VictimInfo`.
        """
        result = schedule(self.snapshot(), self.pending, self.policy, now)
        for admit in result.admitted:
            self._apply_admit(admit, now)

        for decision in result.pending:
            self.reasons[decision.job_id] = decision.why
        for needs in result.needs_preemption:
            self.reasons[needs.job_id] = _Prefixed("waiting for preemption: ", needs.why)
        if result.needs_preemption:  # the decisions refine those reasons
            result.preemptions = self._preempt(result, now, victim_info)
        self.pending.active -= result.exhausted
        return result

    def _preempt(
        self, result: CycleResult, now: datetime, victim_info: Mapping[str, VictimInfo] | None
    ) -> list[PreemptionDecision]:
        """Resolve each NeedsPreemption in order, on an overlay where earlier decisions already
        evicted their victims and took their room, so two preemptors never claim the same quota."""
        usage = self.usage.overlay()
        admitted = dict(self.admitted)
        decisions: list[PreemptionDecision] = []
        for needs in result.needs_preemption:
            decision = find_victims(
                AdmissionSnapshot(self.tree, usage, admitted),
                needs,
                now=now,
                policy=self.preemption,
                victim_info=_Overlay(victim_info, self._victim_info) if victim_info else self._victim_info,
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
        """Adopt a new queue configuration, keeping pending and admitted workloads."""
        self.tree = QuotaTree(config)
        usage = QuotaUsage(self.tree)
        for admitted in self.admitted.values():
            if admitted.cluster_queue in self.tree.cluster_queues:
                usage.add(admitted.cluster_queue, admitted.usage)
        self.usage = usage
        self.pending.reconfigure(config)

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

    def usage_of(self, cluster_queue: str) -> Mapping[FR, int]:
        return self.usage.of(self.tree.cluster_queues[cluster_queue])


class _Overlay(Mapping[str, VictimInfo]):
    """The caller's facts about victims first, the scheduler's own second (read-only, lazy)."""

    def __init__(self, first: Mapping[str, VictimInfo], second: Mapping[str, VictimInfo]) -> None:
        self._first = first
        self._second = second

    def __getitem__(self, key: str) -> VictimInfo:
        if key in self._first:
            return self._first[key]
        return self._second[key]

    def __contains__(self, key: object) -> bool:
        return key in self._first or key in self._second

    def __iter__(self) -> Iterator[str]:
        return iter({*self._first, *self._second})

    def __len__(self) -> int:
        return len({*self._first, *self._second})


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
