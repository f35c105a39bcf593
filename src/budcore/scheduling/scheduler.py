"""The admission scheduler: incremental state around the pure :func:`schedule` cycle.

A production service and the simulator drive budcore the same way::

    scheduler = Scheduler(config)
    scheduler.submit(job)              # job enters its LocalQueue's ClusterQueue
    result = scheduler.cycle(now)      # snapshot in, decisions out; admissions applied here
    ...                                # start admitted workloads on the cluster backend
    for decision in result.preemptions:  # victims to evict (with decision.grace_period)
        ...
    scheduler.release(job_id, now)     # workload finished / was evicted: quota returns

Priority follows Kueue (:mod:`budcore.scheduling.priorities`): one value, from the job's
WorkloadPriorityClass or built-in class, orders the queue *and* decides preemption.

Preemption follows Kueue: a workload that would fit by evicting others gets a
:class:`~budcore.scheduling.preemption.PreemptionDecision`; the caller evicts the victims, releases
their quota once their pods are gone, and requeues them; the preemptor is admitted by a later
cycle when the quota is back.

Time (budcore's own, issue #13): jobs whose retry backoff has not ended or whose time window is
closed are held out of the queues (:mod:`budcore.scheduling.timegates`; :meth:`Scheduler.next_wakeup`
tells a driver when to run a cycle for them); :meth:`Scheduler.eta` runs this scheduler forward on
a :meth:`Scheduler.fork` (:mod:`budcore.scheduling.forecast`); an optional
:class:`~budcore.scheduling.deadline.DeadlinePolicy` checks deadlines at submission and
:meth:`Scheduler.boost_deadlines` orders by urgency. Capacity bookings (:meth:`Scheduler.reserve`,
:mod:`budcore.scheduling.reservations`) keep booked room for its owner: the cycle sees it held,
and a cycle at a booking's start evicts the preemptible workloads standing in it.

State kept incrementally (never rebuilt per decision): quota usage with propagation up the
cohort tree, pending queues ordered per ClusterQueue, admitted workloads, held jobs, LocalQueue
usage for admission fair sharing, and the last reason each pending workload was given.

Long because it is the one stateful façade every driver (service, simulator, forecaster) goes
through: each public method applies one kind of input or answers one query, and the decisions
themselves live in the modules it delegates to.
"""

from __future__ import annotations

import copy
from collections import ChainMap
from collections.abc import Callable, Collection, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import cast

from budcore.domain.errors import AlreadyExistsError, NotFoundError, ValidationError
from budcore.domain.job import Job
from budcore.domain.reservation import Reservation
from budcore.domain.timeutil import ensure_utc
from budcore.ports.preemption_cost import VictimInfo
from budcore.scheduling.cycle import NO_LONGER_FITS, OVERLAPPING_TARGETS, schedule
from budcore.scheduling.deadline import (
    DeadlineAction,
    DeadlineBoost,
    DeadlineCheck,
    DeadlineInfeasibleError,
    DeadlinePolicy,
    Verdict,
    check_deadline,
    deadline_boost,
)
from budcore.scheduling.fair_sharing import LocalQueueUsage
from budcore.scheduling.forecast import Eta, Forecast, ForecastOptions, forecast
from budcore.scheduling.job_facts import JobFacts
from budcore.scheduling.las import Demotions
from budcore.scheduling.limits import DEFAULT_RUNAWAY_FACTOR, LimitVerdict, next_limit, overdue
from budcore.scheduling.ordering import Attained, LasLevels, accelerators, check_cohorts
from budcore.scheduling.pending import PendingQueues, PendingWorkload
from budcore.scheduling.preemption import DecisionStatus, PreemptionDecision, PreemptionPolicy, find_victims
from budcore.scheduling.preemption.aging import AgingPolicy, effective_priority
from budcore.scheduling.preemption.guards import PreemptionBudget
from budcore.scheduling.priorities import repriced_by_class, resolve_priority
from budcore.scheduling.queues import QueueConfig, StopPolicy
from budcore.scheduling.quota import FR, QuotaTree, QuotaUsage
from budcore.scheduling.reservations import ReservationBook, booked_room_evictions
from budcore.scheduling.snapshot import (
    AdmissionPolicy,
    AdmissionSnapshot,
    Admit,
    AdmittedWorkload,
    AdmittedWorkloads,
    CycleResult,
    Evict,
    NeedsPreemption,
)
from budcore.scheduling.timegates import Held, TimeGates, earliest_admission, last_admission


class Scheduler:
    def __init__(
        self,
        config: QueueConfig,
        policy: AdmissionPolicy | None = None,
        preemption: PreemptionPolicy | None = None,
        budget: PreemptionBudget | None = None,
        *,
        deadline_policy: DeadlinePolicy | None = None,
        deadline_boost: DeadlineBoost | None = None,
        forecast: ForecastOptions | None = None,
    ) -> None:
        self.policy = policy or AdmissionPolicy()
        self.preemption = preemption or PreemptionPolicy(
            fair_sharing=self.policy.fair_sharing, flavor_weights=dict(self.policy.flavor_weights)
        )
        self.budget = budget if budget is not None else PreemptionBudget()
        self.evicting: set[str] = set()  # victims being evicted, still holding quota
        # What each admitted job says about itself (type, protection, checkpoints), so preemption
        # never depends on the caller to protect a critical or non-preemptible job.
        self._victim_info = JobFacts()
        if self.policy.local_queue_usage is None and any(
            cq.admission_fair_sharing for cq in config.cluster_queues.values()
        ):
            self.policy = replace(self.policy, local_queue_usage=LocalQueueUsage())
        self.tree = QuotaTree(config)
        self.usage = QuotaUsage(self.tree)
        ordering = self.policy.ordering
        if ordering is not None:
            check_cohorts(ordering, {name: node.root_key for name, node in self.tree.cluster_queues.items()})
            if ordering.las_preemption and self.preemption.fair_sharing:
                raise ValidationError(
                    "las_preemption works with Kueue's classical preemption, not with fair sharing",
                    path="ordering.las_preemption",
                )
        self.pending = PendingQueues(config, ordering)
        self.admitted: dict[str, AdmittedWorkload] = AdmittedWorkloads()  # indexed by ClusterQueue
        # Pending workloads whose last preemption found no victims: they reserve no room in a cycle.
        self._no_candidates: set[str] = set()
        self.reasons: dict[str, object] = {}  # job id -> reason (str() renders it)
        # Time: jobs held out of the queues until their window opens or their backoff ends.
        self.gates = TimeGates()
        # Deadline checks at submission (budcore's own, opt-in) and the verdicts that warned.
        self.deadline_policy = deadline_policy
        self.deadline_warnings: dict[str, DeadlineCheck] = {}
        self.deadline_boost = deadline_boost
        # ETAs (opt-in): explain() includes them when forecast options are given. A forecast is
        # cached until the next change of state (submit, cycle with decisions, release, withdraw).
        self.forecast_options = forecast
        self._forecast: Forecast | None = None
        self._last_now: datetime | None = None
        # Capacity bookings (budcore's own): room held for an owner over a time interval.
        self.bookings = ReservationBook()
        # Tiresias's preemption in las queues (budcore's own, opt-in): when admitted workloads
        # reach their next level, which wakes their queues (budcore.scheduling.las).
        self._las_queues, self._demotions = self._las_setup(config, ())

    @property
    def config(self) -> QueueConfig:
        return self.tree.config

    # Inputs ----------------------------------------------------------------------------------
    def submit(
        self,
        job: Job,
        *,
        priority: int | None = None,
        timestamp: float | None = None,
        now: datetime | None = None,
        attained: Attained | None = None,
    ) -> PendingWorkload | Held:
        """Queue a job (its ``local_queue`` in namespace ``tenant``); unknown LocalQueue → NotFoundError.

        The queued workload carries :meth:`resolve_priority`'s copy of the job, so the value that
        orders the queue is the value admission and preemption read (``job.priority_value``).
        ``priority`` sets that value explicitly (Kueue's ``Workload.spec.priority``, which is
        mutable): it counts for preemption too, not only for queue order. A queue-order-only
        boost is :meth:`age`. An unknown priority class is a ``ValidationError`` naming the field,
        and nothing is queued. A job that is already admitted is an ``AlreadyExistsError``
        (queuing it again would count its quota twice); release it first.

        Time (``now``: the submission instant; default the job's creation or the last cycle,
        whichever is later): a job whose retry backoff has not ended or whose time window is
        closed is *held* (:mod:`budcore.scheduling.timegates`) and returned as a :class:`Held`;
        it enters its queue, keeping its queue-ordering timestamp, in the first cycle at or after
        its time. With a :class:`DeadlinePolicy`, a job with a deadline is checked first: a
        ``reject`` queue refuses an infeasible one with :class:`DeadlineInfeasibleError` (nothing
        queued); otherwise a verdict other than feasible is kept in :attr:`deadline_warnings`.

        ``attained`` is what the job received in earlier runs (a requeue after a preemption): under
        the ``srtf`` and ``las`` orderings (:mod:`budcore.scheduling.ordering`) it ranks the job;
        without it the job's own ``accumulated_runtime`` does.
        """
        if job.id in self.admitted:
            raise AlreadyExistsError("admitted workload", job.id)
        if job.id in self.gates:
            raise AlreadyExistsError("pending workload", job.id)
        resolved = self.resolve_priority(job, priority)
        self._forecast = None
        if attained is not None:
            self.pending.note_attained(job.id, attained)
        if (
            resolved.next_retry_at is None
            and resolved.time_window is None
            and (resolved.deadline is None or self.deadline_policy is None)
        ):
            # Nothing about time to check (the common case, and the simulator's hot path).
            return self.pending.push(resolved, priority=priority, timestamp=timestamp)
        if job.id in self.pending:
            raise AlreadyExistsError("pending workload", job.id)
        cq_name, _ = self.pending.resolve(resolved)  # an unknown LocalQueue fails before anything
        at = self._submission_time(resolved, now)
        gate = earliest_admission(resolved, at)  # a window the job never fits is an error here
        if self.deadline_policy is not None and resolved.deadline is not None:
            self._check_deadline(resolved, cq_name, at)
        if gate is not None:
            ordering = resolved.created_at.timestamp() if timestamp is None else timestamp
            held = Held(resolved, gate[0], gate[1], priority, ordering, cq_name)
            self.gates.hold(held)
            return held
        return self._enqueue(resolved, priority, timestamp, at)

    def _submission_time(self, job: Job, now: datetime | None) -> datetime:
        if now is not None:
            return ensure_utc(now, "now")
        if self._last_now is not None and self._last_now > job.created_at:
            return self._last_now
        return job.created_at

    def _enqueue(
        self, job: Job, priority: int | None, timestamp: float | None, at: datetime
    ) -> PendingWorkload:
        """Into the pending queues; a windowed job is watched for the end of its chance."""
        workload = self.pending.push(job, priority=priority, timestamp=timestamp)
        last = last_admission(job, at)
        if last is not None:
            self.gates.watch(job.id, last)
        return workload

    def _check_deadline(self, job: Job, cluster_queue: str, at: datetime) -> None:
        policy = self.deadline_policy
        assert policy is not None
        action = policy.action_for(cluster_queue)
        check = check_deadline(self, job, at, policy=policy, forecast=self.forecast_options, explore=True)
        if check.verdict is Verdict.INFEASIBLE and action is DeadlineAction.REJECT:
            raise DeadlineInfeasibleError(check)
        if check.verdict is not Verdict.FEASIBLE:
            self.deadline_warnings[job.id] = check

    def resolve_priority(self, job: Job, priority: int | None = None) -> Job:
        """``job`` with the priority it competes with: the copy :meth:`submit` queues (see
        :func:`budcore.scheduling.priorities.resolve_priority`)."""
        return resolve_priority(self.config, job, priority)

    def withdraw(self, job_id: str) -> PendingWorkload | Held | None:
        """Remove a pending or held job (cancelled before admission); None if it was neither."""
        self.reasons.pop(job_id, None)
        self._no_candidates.discard(job_id)
        self._forecast = None
        self.pending.forget_attained(job_id)
        held = self.gates.withdraw(job_id)
        return held if held is not None else self.pending.remove(job_id)

    def snapshot(self, now: datetime | None = None) -> AdmissionSnapshot:
        """What a cycle at ``now`` decides on (see :class:`AdmissionSnapshot`).

        With ``now``, and LocalQueue usage tracked (admission fair sharing), it carries the
        decayed usage of the LocalQueues the cycle may order by it; reading the decay advances it
        (:meth:`LocalQueueUsage.value`), which is why that happens here and not in the cycle.
        """
        return self._snapshot(now, None if now is None else self._local_queue_usage(now))

    def _snapshot(
        self, now: datetime | None, local_queue_usage: Mapping[tuple[str, str], float] | None
    ) -> AdmissionSnapshot:
        return AdmissionSnapshot(
            self.tree,
            self.usage,
            self.admitted,
            no_preemption_candidates=self._no_candidates,
            local_queue_usage=local_queue_usage,
            bookings=self.bookings.rooms(now, self.admitted) if self.bookings and now is not None else {},
            las=self._las_levels(now),
        )

    def _las_setup(
        self, config: QueueConfig, admitted: Collection[AdmittedWorkload]
    ) -> tuple[frozenset[str], Demotions | None]:
        """The ClusterQueues that preempt by LAS level, and their admitted workloads' next levels."""
        ordering = self.policy.ordering
        if ordering is None or not ordering.las_preemption:
            return frozenset(), None
        queues = frozenset(name for name in config.cluster_queues if ordering.preempts_by_level(name))
        demotions = Demotions(ordering.las_thresholds_gpu_s)
        after = self._last_now.timestamp() if self._last_now is not None else 0.0
        for w in admitted:
            if w.cluster_queue in queues:
                demotions.watch(w, after)
        return queues, demotions

    def _las_levels(self, now: datetime | None) -> LasLevels | None:
        ordering = self.policy.ordering
        if now is None or not self._las_queues or ordering is None:
            return None
        return LasLevels(ordering.las_thresholds_gpu_s, self._las_queues, now.timestamp())

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

    def _preemption_local_queue_usage(self, now: datetime) -> dict[tuple[str, str], float] | None:
        """The decayed usage at ``now`` of every LocalQueue of a ClusterQueue with
        ``admission_fair_sharing``: what preemption orders their admitted workloads by (Kueue
        computes ``LocalQueueFSUsage`` for every workload of such a ClusterQueue in its snapshot).

        Read at the cycle's ``now``, as :meth:`snapshot` reads the pending LocalQueues' (an
        admission at ``now`` changes the rate from then on, not the value at ``now``). A LocalQueue
        no longer configured is left out, so its workloads count 0: Kueue drops a deleted
        LocalQueue's usage (``AfsUsageLedger.Delete``) and weighs a missing one 1. None: no usage is
        tracked.
        """
        tracked = self.policy.local_queue_usage
        if tracked is None:
            return None
        cluster_queues = self.config.cluster_queues
        values: dict[tuple[str, str], float] = {}
        for lq_key, lq in self.config.local_queues.items():
            cq = cluster_queues.get(lq.cluster_queue)
            if cq is not None and cq.admission_fair_sharing:
                values[lq_key] = tracked.value(lq_key, now)
        return values

    # The cycle -------------------------------------------------------------------------------
    def cycle(self, now: datetime, victim_info: Mapping[str, VictimInfo] | None = None) -> CycleResult:
        """Run one cycle, apply its admissions, and decide preemptions for what needs them.

        ``victim_info`` gives the preemption cost model what the snapshot lacks about running
        workloads (job type, start, checkpoints, progress, price); see :class:`VictimInfo`.
        """
        now = ensure_utc(now, "now")  # before any state changes: admissions record it
        previous, self._last_now = self._last_now, now
        self._apply_time(now)
        if self._demotions is not None:
            crossed = self._demotions.due(now.timestamp(), self.admitted)
            if crossed:  # running workloads reached a level: waiting ones may now preempt them
                self.pending.activate(crossed)
                self._no_candidates.clear()
        tree = self.tree
        if (
            not self.pending.active
            and not tree.draining
            and not tree.draining_local_queues
            and not self.bookings
            and self.policy.local_queue_usage is None
        ):
            # Nothing to decide (schedule() would return at once) and nothing to read first: no
            # booking starts or ends, no LocalQueue usage decays. A driver that runs a cycle at
            # every event (the simulator) meets this case in about half of its cycles.
            return CycleResult()
        evictions = self._clear_booked_room(previous, now) if self.bookings else []
        # The cycle orders pending workloads by their LocalQueues' usage, and preemption (in the
        # cycle, the flavor assigner's oracle; after it, _preempt) orders victims by theirs: read
        # once, for every LocalQueue of an admission-fair-sharing queue.
        local_queue_usage = self._preemption_local_queue_usage(now)
        snapshot = self._snapshot(now, local_queue_usage)
        # The preemption oracle needs only the guards (critical, preemptible): the jobs' own facts.
        result = schedule(
            snapshot,
            self.pending,
            self.policy,
            now,
            preemption=self.preemption,
            victim_info=self._victim_info,
        )
        if evictions:
            result.evictions.extend(evictions)
        for admit in result.admitted:
            self._apply_admit(admit, now)

        for decision in result.pending:
            self.reasons[decision.job_id] = decision.why
        for needs in result.needs_preemption:
            self.reasons[needs.job_id] = _Prefixed("waiting for preemption: ", needs.why)
        if result.needs_preemption:  # the decisions refine those reasons
            with self._cycle_start_admitted(result.admitted):
                result.preemptions = self._preempt(result, now, victim_info, local_queue_usage)
        self.pending.deactivate(result.exhausted)
        if result.reserved or result.no_victims:
            self._after_reservations(result)
        if result.admitted or result.preemptions or result.evictions:
            self._forecast = None
        return result

    def _apply_time(self, now: datetime) -> None:
        """Held jobs whose time has come enter their queues; windowed ones whose chance passed leave.

        A job leaving its queue is held until its next opening with the queue-ordering timestamp
        and priority it had, so a window costs it no place in the queue.
        """
        for held in self.gates.due(now):
            gate = earliest_admission(held.job, now)
            if gate is not None:  # e.g. the opening is too short for a must-finish run
                self.gates.hold(
                    Held(held.job, gate[0], gate[1], held.priority, held.timestamp, held.cluster_queue)
                )
            else:
                self._enqueue(held.job, held.priority, held.timestamp, now)
                self._forecast = None
        for job_id in self.gates.closing(now):
            workload = self.pending.remove(job_id)
            if workload is None:
                continue
            self.reasons.pop(job_id, None)
            gate = earliest_admission(workload.job, now)
            if gate is None:  # pragma: no cover - closing() fires only once the chance has passed
                self._enqueue(workload.job, workload.priority, workload.timestamp, now)
                continue
            self.gates.hold(
                Held(
                    workload.job,
                    gate[0],
                    gate[1],
                    workload.priority,
                    workload.timestamp,
                    workload.cluster_queue,
                )
            )
            self._forecast = None

    def _clear_booked_room(self, previous: datetime | None, now: datetime) -> list[Evict]:
        """Bookings that started or ended since the last cycle: their queues look again, and what
        stands in the room of those that started is evicted.

        The workloads evicted (:func:`~budcore.scheduling.reservations.booked_room_evictions`) are
        marked as being evicted, like preemption victims: the caller stops them, releases their
        quota once they are gone and requeues them.
        """
        changed = self.bookings.changed(previous, now)
        if not changed:
            return []
        for reservation in changed:
            if reservation.cluster_queue in self.tree.cluster_queues:
                self.pending.activate(self.cohort_tree_of(reservation.cluster_queue))
        starting = [r for r in changed if r.active(now)]
        active = [r for r in self.bookings.current(now) if r.active(now)]
        evictions = booked_room_evictions(
            starting, active, self.tree, self.usage, self.admitted, self._victim_info.jobs, now, self.evicting
        )
        self.evicting.update(e.job_id for e in evictions)
        if evictions:
            self._forecast = None
        return evictions

    def _after_reservations(self, result: CycleResult) -> None:
        """Follow up the room preemptors reserved in the cycle (Kueue's ``resourcesToReserve``).

        A preemptor whose preemption found no victims is remembered, so later cycles do not
        reserve room for it again (Kueue sets such a workload aside after one try; reserving on
        every wake-up would keep that room from everyone). One that preempts stays active, as
        Kueue retries a workload waiting for its victims every cycle. Workloads passed over
        because of a reservation that came to nothing are retried: the cohort tree wakes up.
        """
        tree = self.tree
        for job_id in result.no_victims:
            # A workload that can have no victims (its queue or its job never preempts): like a
            # preemptor found without victims, it is remembered; what the room it held kept out
            # is retried.
            self._no_candidates.add(job_id)
            workload = self.pending.get(job_id)
            if workload is not None and job_id in result.reserved:
                self.pending.activate(tree.cluster_queues[workload.cluster_queue].root().members)
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

    @contextmanager
    def _cycle_start_admitted(self, admits: Sequence[Admit]) -> Iterator[None]:
        """The admitted workloads as the cycle started, while preemption decides its victims.

        Kueue finds a preemptor's targets when it nominates it, in the snapshot the cycle started
        from, so a workload admitted in the same cycle is never a victim; their usage still counts
        (an earlier admission of the cycle is what makes a preemptor "no longer fit"). They are
        the last entries of ``admitted`` (admission order), so taking them out and putting them
        back in order leaves the order unchanged.
        """
        admitted = self.admitted
        aside = [(a.job_id, admitted.pop(a.job_id)) for a in admits if a.job_id in admitted]
        try:
            yield
        finally:
            for job_id, workload in aside:
                admitted[job_id] = workload

    def _preempt(
        self,
        result: CycleResult,
        now: datetime,
        victim_info: Mapping[str, VictimInfo] | None,
        local_queue_usage: Mapping[tuple[str, str], float] | None,
    ) -> list[PreemptionDecision]:
        """Resolve each NeedsPreemption in the cycle's order, as Kueue's ``processEntry`` does.

        Each preemptor's victims are found in the state the cycle started from (Kueue finds them
        when it assigns flavors, before any preemption of the cycle); then, in order, a preemptor
        is skipped if one of its victims was already claimed by a preemptor before it ("overlapping
        preemption targets") or if it would not fit once every victim claimed so far and its own
        are gone, the preemptors before it counted in ("no longer fits"). Skipped ones are retried
        next cycle (:attr:`DecisionStatus.SKIPPED`). So two preemptors never claim the same victim
        or the same quota. With admission fair sharing, the victims are ordered by their
        LocalQueues' usage too (``local_queue_usage``, read once by :meth:`cycle`).
        """
        snapshot = AdmissionSnapshot(
            self.tree,
            self.usage,
            self.admitted,
            local_queue_usage=local_queue_usage,
            las=self._las_levels(now),
        )
        evicting = frozenset(self.evicting)  # as the cycle found them
        claimed = self.usage.overlay()  # minus the victims claimed so far, plus their preemptors
        taken: set[str] = set()
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
                snapshot,
                needs,
                now=now,
                policy=self.preemption,
                victim_info=facts,
                evicting=evicting,
                budget=self.budget,
                preemptor_timestamp=needs.timestamp,
            )
            if decision.status is DecisionStatus.PREEMPT:
                skipped = self._skipped(needs, decision, claimed, taken)
                if skipped:
                    decision = replace(decision, status=DecisionStatus.SKIPPED, victims=(), reason=skipped)
            decisions.append(decision)
            if decision.status is DecisionStatus.PREEMPT:
                for victim in decision.victims:
                    claimed.add(victim.cluster_queue, victim.usage, sign=-1)
                    taken.add(victim.job_id)
                    if victim.job_id not in self.evicting:
                        self.evicting.add(victim.job_id)
                        self.budget.record(now)
                claimed.add(needs.cluster_queue, needs.usage)
                names = ", ".join(v.job_id for v in decision.victims)
                self.reasons[needs.job_id] = f"waiting for preempted workloads to leave: {names}"
            elif decision.status is not DecisionStatus.FITS:
                self.reasons[needs.job_id] = decision.reason
        return decisions

    def _skipped(
        self, needs: NeedsPreemption, decision: PreemptionDecision, claimed: QuotaUsage, taken: set[str]
    ) -> str:
        """Why Kueue would skip a preemptor whose victims were found ("" when it would not)."""
        if any(victim.job_id in taken for victim in decision.victims):
            return OVERLAPPING_TARGETS
        after = claimed.overlay()
        for victim in decision.victims:
            after.add(victim.cluster_queue, victim.usage, sign=-1)
        node = self.tree.cluster_queues[needs.cluster_queue]
        if any(amount > after.available(node, fr) for fr, amount in needs.usage.items()):
            return NO_LONGER_FITS
        return ""

    def _apply_admit(self, admit: Admit, now: datetime) -> None:
        workload = self.pending.remove(admit.job_id)
        if workload is None:  # pragma: no cover - the cycle only admits pending workloads
            raise NotFoundError("pending workload", admit.job_id)
        self.usage.add(admit.cluster_queue, admit.usage)
        self._no_candidates.discard(admit.job_id)
        attained: Attained | None = None
        if admit.cluster_queue in self._las_queues:
            attained = self.pending.attained_of(admit.job_id) or Attained.of(workload.job)
        self.pending.forget_attained(admit.job_id)
        self.gates.unwatch(admit.job_id)
        self.admitted[admit.job_id] = admitted = AdmittedWorkload(
            job_id=admit.job_id,
            tenant=admit.tenant,
            cluster_queue=admit.cluster_queue,
            local_queue=admit.local_queue,
            usage=admit.usage,
            flavors=admit.flavors,
            priority=admit.priority,
            admitted_at=now,
            timestamp=workload.timestamp,
            pod_counts=admit.pod_counts,
            attained_gpu_s=0.0 if attained is None else attained.gpu_s,
            accelerators=0.0 if attained is None else accelerators(workload.job),
        )
        if attained is not None and self._demotions is not None:
            self._demotions.watch(admitted, now.timestamp())
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
        self._forecast = None
        self.usage.add(admitted.cluster_queue, admitted.usage, sign=-1)
        afs = self.policy.local_queue_usage
        if afs is not None:
            afs.change(admitted.local_queue, _by_resource(admitted.usage), now, -1)
        self.pending.activate(self.tree.cluster_queues[admitted.cluster_queue].root().members)
        return admitted

    def reserve(self, reservation: Reservation) -> Reservation:
        """Book capacity (:mod:`budcore.scheduling.reservations`): from its start, the booked room
        is kept for its owner. Refused, with nothing changed, when its ClusterQueue, flavor or
        resource is unknown (``ValidationError`` naming the field), its name is taken
        (``AlreadyExistsError``) or it overbooks the nominal quota together with other bookings
        (:class:`~budcore.domain.reservation.ReservationConflictError` naming the overlap)."""
        booked = self.bookings.add(reservation, self.config)
        self._forecast = None
        self.pending.activate(self.cohort_tree_of(reservation.cluster_queue))
        return booked

    def cancel_reservation(self, name: str) -> Reservation:
        """Drop a booking (``NotFoundError`` if there is none): its room is free again at once."""
        cancelled = self.bookings.cancel(name)
        self._forecast = None
        if cancelled.cluster_queue in self.tree.cluster_queues:
            self.pending.activate(self.cohort_tree_of(cancelled.cluster_queue))
        return cancelled

    def reservations(self) -> list[Reservation]:
        """Every booking, by start then name (ended ones too, until cancelled)."""
        return list(self.bookings)

    def age(self, now: datetime, aging: AgingPolicy) -> int:
        """Starvation guard: raise the effective priority of workloads that have waited long.

        Each pending workload competes with ``effective_priority`` of its base priority and the
        time since its queue-ordering timestamp; a priority never decreases while it waits. Re-keys
        what changed (O(p log n) for p changes) and reactivates their queues; returns how many
        changed. Call it periodically, not every cycle (the simulator uses its sample clock).
        """
        now = ensure_utc(now, "now")

        def raised(workload: PendingWorkload) -> tuple[int, float]:
            waited_since = datetime.fromtimestamp(workload.timestamp, UTC)
            priority = effective_priority(
                workload.job.priority_value,
                queued_since=min(waited_since, now),
                now=now,
                aging=aging,
                previous=workload.priority,
            )
            return priority, workload.timestamp

        return self._rekey(raised)

    def boost_deadlines(self, now: datetime, boost: DeadlineBoost | None = None) -> int:
        """Deadline-aware ordering: raise waiting jobs' queue priority as their slack runs out.

        ``boost`` (default: the scheduler's ``deadline_boost``) says by how much at which share of
        the time budget (:func:`~budcore.scheduling.deadline.deadline_boost`); with ``edf`` a job
        with a deadline is also ordered, within its priority level, by the latest instant it can
        start (deadline − expected runtime) when that is earlier than its submission. Composes
        with :meth:`age` (each only ever raises). Returns how many workloads changed.
        """
        now = ensure_utc(now, "now")
        boost = boost or self.deadline_boost
        if boost is None:
            return 0
        options = self.forecast_options or ForecastOptions()

        def raised(workload: PendingWorkload) -> tuple[int, float]:
            job = workload.job
            if job.deadline is None:
                return workload.priority, workload.timestamp
            runtime = options.runtime(job)
            priority = deadline_boost(
                job.priority_value,
                submitted=job.created_at,
                deadline=job.deadline,
                runtime=runtime,
                now=now,
                boost=boost,
                previous=workload.priority,
            )
            timestamp = workload.timestamp
            if boost.edf:
                timestamp = min(timestamp, (job.deadline - runtime).timestamp())
            return priority, timestamp

        return self._rekey(raised)

    def _rekey(self, key_of: Callable[[PendingWorkload], tuple[int, float]]) -> int:
        """Re-queue every pending workload whose (priority, timestamp) ``key_of`` changes."""
        changed = 0
        for queue in list(self.pending.queues().values()):
            for workload in list(queue.entries.values()):
                priority, timestamp = key_of(workload)
                if priority != workload.priority or timestamp != workload.timestamp:
                    self.pending.remove(workload.job.id)
                    self.pending.push(workload.job, priority=priority, timestamp=timestamp)
                    changed += 1
        if changed:
            self._forecast = None
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
        tree = QuotaTree(config)
        ordering = self.policy.ordering
        if ordering is not None:  # a cohort tree's queues share one ordering: checked before any change
            check_cohorts(ordering, {name: node.root_key for name, node in tree.cluster_queues.items()})
        self.tree = tree
        usage = QuotaUsage(self.tree)
        for admitted in self.admitted.values():
            if admitted.cluster_queue in self.tree.cluster_queues:
                usage.add(admitted.cluster_queue, admitted.usage)
        self.usage = usage
        self.pending.reconfigure(config)
        self._no_candidates.clear()  # new quotas or policies: every preemptor may find victims again
        self._las_queues, self._demotions = self._las_setup(config, tuple(self.admitted.values()))
        if old.priority_classes != config.priority_classes:
            self._reprice(old)

    def _reprice(self, old: QueueConfig) -> None:
        def repriced(job: Job) -> Job | None:
            return repriced_by_class(old, self.config, job)

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
        """Why a job is where it is, in words; with forecast options, its ETA too."""
        if job_id in self.admitted:
            a = self.admitted[job_id]
            return f"admitted to ClusterQueue {a.cluster_queue} at {a.admitted_at.isoformat()}"
        held = self.gates.held(job_id)
        if held is not None:
            return self._with_eta(job_id, f"held: {held.reason}")
        workload = self.pending.get(job_id)
        if workload is None:
            raise NotFoundError("workload", job_id)
        reason = self.reasons.get(job_id)
        if reason is not None:
            return self._with_eta(job_id, str(reason))
        queue = self.pending.queue(workload.cluster_queue)
        ahead = 0
        if queue is not None:
            ahead = sum(1 for other in queue.entries.values() if other.key < workload.key)
        return self._with_eta(
            job_id, f"waiting in ClusterQueue {workload.cluster_queue} behind {ahead} workload(s)"
        )

    def _with_eta(self, job_id: str, text: str) -> str:
        if self.forecast_options is None or self._last_now is None:
            return text
        eta = self.eta(job_id)
        return text if eta is None else f"{text}; {eta.describe()}"

    # Time and ETAs ---------------------------------------------------------------------------
    def eta(self, job_id: str, *, now: datetime | None = None) -> Eta | None:
        """The estimated start and end of a queued (pending or held) job; None if it is not queued.

        From the cached forecast (:func:`~budcore.scheduling.forecast.forecast`), recomputed when
        the state changed since (a submission, an admission, a release, a withdrawal) or when
        ``now`` differs from the instant it was computed at. ``now`` defaults to the last cycle's.
        """
        if not self.is_queued(job_id):
            return None
        return self.refresh_etas(now).eta(job_id)

    def refresh_etas(self, now: datetime | None = None) -> Forecast:
        """Every queued job's ETA in one forward run (cached until the state changes)."""
        at = ensure_utc(now, "now") if now is not None else self._last_now
        if at is None:
            raise ValidationError("no cycle has run yet: give the instant to estimate from", path="now")
        cached = self._forecast
        if cached is None or cached.at != at:
            cached = self._forecast = forecast(self, at, options=self.forecast_options)
        return cached

    def cohort_tree_of(self, cluster_queue: str) -> tuple[str, ...]:
        """Every ClusterQueue of the cohort tree ``cluster_queue`` belongs to (itself if alone)."""
        return self.tree.cluster_queues[cluster_queue].root().members

    def next_wakeup(self) -> datetime | None:
        """The next instant at which time alone changes what may be admitted (a held job's time
        comes, a window closes, a booking starts or ends): a driver runs a cycle then even if
        nothing else happens."""
        wakeup = self.gates.next_wakeup()
        if self.bookings and self._last_now is not None:
            change = self.bookings.next_change(self._last_now)
            if change is not None and (wakeup is None or change < wakeup):
                wakeup = change
        if self._demotions is not None:  # a running workload reaches a LAS level
            crossing = self._demotions.next_s(self.admitted)
            if crossing is not None:
                at = datetime.fromtimestamp(crossing, UTC)
                if wakeup is None or at < wakeup:
                    wakeup = at
        return wakeup

    def overdue(self, now: datetime, runaway_factor: float = DEFAULT_RUNAWAY_FACTOR) -> list[LimitVerdict]:
        """Admitted workloads over an execution limit at ``now`` (:mod:`budcore.scheduling.limits`):
        timeouts to stop and runaway alerts, by job id."""
        return overdue(self._admitted_jobs(), now, runaway_factor=runaway_factor)

    def next_limit(self, now: datetime) -> datetime | None:
        """The earliest instant an admitted job reaches its ``max_duration`` (``now`` if one already
        has): a driver calls ``JobService.enforce_limits`` then."""
        return next_limit(self._admitted_jobs(), now)

    def _admitted_jobs(self) -> list[tuple[Job, datetime]]:
        pairs = (
            (self.admitted_job(job_id), self.admitted[job_id].admitted_at) for job_id in sorted(self.admitted)
        )
        return [(job, at) for job, at in pairs if job is not None]

    def queued_job_ids(self) -> list[str]:
        """Every job waiting for admission, pending or held, sorted."""
        return sorted([*self.pending.job_ids(), *self.gates.held_ids()])

    def is_queued(self, job_id: str) -> bool:
        """Whether the job waits for admission (pending or held)."""
        return job_id in self.pending or job_id in self.gates

    def cluster_queue_for(self, job: Job) -> str:
        """The ClusterQueue the job's LocalQueue maps to (NotFoundError for an unknown one)."""
        return self.pending.resolve(job)[0]

    def cluster_queue_of(self, job_id: str) -> str | None:
        """The ClusterQueue a queued or admitted job belongs to (None: unknown job)."""
        if job_id in self.admitted:
            return self.admitted[job_id].cluster_queue
        workload = self.pending.get(job_id)
        if workload is not None:
            return workload.cluster_queue
        held = self.gates.held(job_id)
        return None if held is None else held.cluster_queue

    def admitted_job(self, job_id: str) -> Job | None:
        """The job an admitted workload runs (as it was queued), None if it is not admitted."""
        return self._victim_info.jobs.get(job_id)

    def accelerator_types_for(self, job: Job) -> list[str]:
        """Accelerator types the flavors of the job's ClusterQueue provide (for deadline options)."""
        cq = self.config.cluster_queues[self.cluster_queue_for(job)]
        found: list[str] = []
        for group in cq.resource_groups:
            for flavor_quotas in group.flavors:
                flavor = self.config.flavors.get(flavor_quotas.name)
                kind = self.policy.matcher.flavor_type(flavor) if flavor is not None else None
                if kind is not None and kind not in found:
                    found.append(kind)
        return found

    def fork(self, cluster_queues: Collection[str] | None = None) -> Scheduler:
        """An independent copy to run forward (the ETA forecaster's); the original is untouched.

        Configuration, tree and policies are shared (immutable); usage, queues, admitted
        workloads, time gates, reasons, the preemption budget and LocalQueue usage are copied.
        ``cluster_queues`` (a whole cohort tree: trees share no quota, so they never interact)
        keeps only their pending, held and admitted workloads.
        """
        other: Scheduler = copy.copy(self)
        if self.policy.local_queue_usage is not None:
            other.policy = replace(
                self.policy, local_queue_usage=copy.deepcopy(self.policy.local_queue_usage)
            )
        other.budget = copy.deepcopy(self.budget)
        other.evicting = set(self.evicting)
        other.usage = self.usage.overlay()
        other.pending = self.pending.fork(cluster_queues)
        other.admitted = AdmittedWorkloads(
            self.admitted
            if cluster_queues is None
            else {k: a for k, a in self.admitted.items() if a.cluster_queue in cluster_queues}
        )
        other.reasons = dict(self.reasons)
        other.gates = self.gates.fork(cluster_queues)
        other.bookings = self.bookings.fork()
        other.deadline_policy = None  # a forward run admits; it never re-checks deadlines
        other.deadline_warnings = {}
        other._forecast = None
        other._no_candidates = set(self._no_candidates)
        other._victim_info = self._victim_info.fork()
        other._demotions = None if self._demotions is None else self._demotions.fork()
        return other

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
