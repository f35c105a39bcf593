"""One scheduling cycle: ``schedule(snapshot, pending, policy, now) → CycleResult``.

A pure function: it reads the quota snapshot and the pending queues, admits into a private
copy-on-write overlay of the usage, and returns decisions; it changes neither input. The caller
applies the decisions (see :class:`budcore.scheduling.scheduler.Scheduler`).

Order of consideration follows Kueue's scheduler:

- each active ClusterQueue offers its head (StrictFIFO: the head blocks the queue when it cannot be
  admitted; BestEffortFIFO: a head that cannot be admitted is set aside and the next one is tried);
- across ClusterQueues, heads are ordered like Kueue's ``entryOrdering`` — workloads that fit
  without borrowing first, then higher priority, then earlier queue-ordering time — or, with fair
  sharing, by the lowest (hierarchical) dominant resource share the queue would have after admitting
  the workload, then priority and time;
- a head is re-checked against the usage left by the admissions before it in the same cycle (a
  lazy heap: keys only get worse as usage grows, so a stale key is a lower bound; the bound a
  candidate enters with already counts borrowing that no flavor could avoid).

Workloads held back by their LocalQueue — its ``stopPolicy`` (Hold, HoldAndDrain), or its namespace
against the ClusterQueue's ``namespaceSelector`` — are not candidates at all: Kueue's queue manager
never puts them in the ClusterQueue's heap (a stopped LocalQueue's workloads are not requeued, a
namespace mismatch is inadmissible), so they are reported pending with that reason and neither block
a StrictFIFO queue nor count as a quota failure.

Only workloads that may take quota are ordered. Usage only grows during a cycle, so a workload
that cannot be admitted now cannot be later in the cycle either, whatever its place: those are
decided as soon as they are seen — a request at least as large as one that already failed in its
queue, one above its queue's *ceiling* (per resource, the most any flavor has available), or one
whose flavor assignment does not fit. Under BestEffortFIFO a shape whose head is above the ceiling
when the cycle starts is passed over without a decision (its workloads keep their last reason), so a
saturated queue costs what its admissible shapes cost.

A workload that needs preemption holds, for the rest of the cycle, the room it will take once its
victims are gone (Kueue's ``resourcesToReserve``, :func:`~budcore.scheduling.quota.preemption_reservation`),
so a lower-priority workload of the same cycle is not admitted into it only to become the next victim.

A decision is one of :class:`Admit`, :class:`NeedsPreemption` (the flavor assignment would fit if
other workloads were evicted; the preemption policy decides whom), :class:`StaysPending` with a
precise reason, or :class:`Evict` (a ClusterQueue or LocalQueue with ``stopPolicy: HoldAndDrain``).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from budcore.ports.preemption_cost import VictimInfo
from budcore.scheduling.assignment import Assignment, Mode, PendingReason, assign_flavors
from budcore.scheduling.fair_sharing import hierarchical_share
from budcore.scheduling.pending import ClusterQueuePending, PendingQueues, PendingWorkload, Shape
from budcore.scheduling.preemption import PreemptionOracle, PreemptionPolicy
from budcore.scheduling.queues import (
    ClusterQueue,
    QueueingStrategy,
    ReclaimWithinCohort,
    StopPolicy,
)
from budcore.scheduling.quota import preemption_reservation
from budcore.scheduling.snapshot import (
    AdmissionPolicy,
    AdmissionSnapshot,
    Admit,
    AdmittedWorkload,
    CycleResult,
    Decision,
    Evict,
    NeedsPreemption,
    StaysPending,
)

__all__ = [
    "AdmissionPolicy",
    "AdmissionSnapshot",
    "Admit",
    "AdmittedWorkload",
    "CycleResult",
    "Decision",
    "Evict",
    "NeedsPreemption",
    "StaysPending",
    "schedule",
]


class _Cursor:
    """Walks one ClusterQueue's candidates in order during a cycle without mutating the queue.

    Candidates come from the shapes' heads (in queue order; under admission fair sharing, by their
    LocalQueue's decayed usage first) and from successors of heads admitted earlier in this cycle.
    """

    __slots__ = (
        "_failed",
        "_heads",
        "_monotone",
        "_next_head",
        "_prefix",
        "_queue",
        "_seq",
        "_strict",
        "_succ",
        "stopped",
    )

    def __init__(
        self,
        queue: ClusterQueuePending,
        strict: bool,
        prefix: Mapping[tuple[str, str], float] | None,
        heads: list[PendingWorkload],
        monotone: bool = True,
    ) -> None:
        self._queue = queue
        self._strict = strict
        # Whether failing is monotone in demand: for a queue that never preempts, a request fits
        # iff some flavor has room for it (a flavor needing preemption never ends its search). A
        # preempting queue may stop at a flavor where a small request needs preemption while a
        # larger one passes it by and fits the next, so its failures prove nothing about others.
        self._monotone = monotone
        self._prefix = prefix
        self._seq = 0
        self._succ: list[tuple[tuple[Any, ...], int, Shape, int]] = []
        # Single-pod-set requests that failed this cycle, by accelerator type: fit is monotone in
        # demand, so a request at least as large in every resource cannot fit either.
        self._failed: list[tuple[str | None, Mapping[str, int]]] = []
        self.stopped = False
        # Keys are unique (they end with the job id), so sorting never compares workloads.
        self._heads: list[tuple[tuple[Any, ...], PendingWorkload]] = sorted(
            (self._full_key(w), w) for w in heads
        )
        self._next_head = 0

    def _full_key(self, workload: PendingWorkload) -> tuple[Any, ...]:
        if self._prefix is None:
            return workload.key
        return (self._prefix.get(workload.shape[1], 0.0), *workload.key)

    def next(self) -> tuple[PendingWorkload, int] | None:
        """The next candidate and its index within its shape, or None when exhausted."""
        if self.stopped:
            return None
        heads = self._heads
        i = self._next_head
        succ = self._succ
        if i < len(heads) and (not succ or heads[i][0] <= succ[0][0]):
            self._next_head = i + 1
            return heads[i][1], 0
        if succ:
            _, _, shape, index = heapq.heappop(succ)
            workload = self._queue.shape_at(shape, index)
            assert workload is not None
            return workload, index
        return None

    def admitted(self, workload: PendingWorkload, index: int) -> None:
        successor = self._queue.shape_at(workload.shape, index + 1)
        if successor is not None:
            self._seq += 1
            heapq.heappush(self._succ, (self._full_key(successor), self._seq, workload.shape, index + 1))

    def failed(self, workload: PendingWorkload | None = None, quota_shortage: bool = False) -> None:
        """The candidate cannot be admitted: StrictFIFO blocks the queue; BestEffortFIFO drops its shape.

        ``quota_shortage`` marks a failure for lack of quota (not a stop policy or selector), which
        lets later, larger requests of the same queue be skipped in this cycle.
        """
        if self._strict:
            self.stopped = True
        elif self._monotone and quota_shortage and workload is not None and workload.demand is not None:
            # Only the minimal failed requests matter: one at least as large as the new one is
            # implied by it. (The new one is not itself dominated, or it would have been skipped.)
            accelerator, demand = workload.job.request.accelerator_type, workload.demand
            failed = self._failed
            if failed:
                self._failed = failed = [
                    (a, d) for a, d in failed if a != accelerator or not _at_least(d, demand)
                ]
            failed.append((accelerator, demand))

    def dominated(self, workload: PendingWorkload) -> bool:
        """Whether a request at most this large already failed for lack of quota in this cycle."""
        if not self._failed:
            return False
        demand = workload.demand
        if demand is None:
            return False
        wanted = workload.job.request.accelerator_type
        for accelerator, smaller in self._failed:
            if accelerator == wanted and _at_least(demand, smaller):
                return True
        return False


def _at_least(demand: Mapping[str, int], smaller: Mapping[str, int]) -> bool:
    """Whether ``demand`` asks for at least ``smaller`` of every resource."""
    for resource, amount in smaller.items():  # noqa: SIM110 - a loop: no generator on a hot path
        if demand.get(resource, 0) < amount:
            return False
    return True


class _ReasonAtCycleEnd:
    """Why a workload did not fit, computed only if someone reads it.

    It re-runs the flavor assignment against the cycle's final usage (the overlay is not written
    after :func:`schedule` returns), so the numbers are those a person would see right after the
    cycle — the workload did not fit earlier in the cycle and usage only grew since.
    """

    __slots__ = ("_args", "_text")

    def __init__(self, *args: Any) -> None:
        self._args: tuple[Any, ...] | None = args
        self._text = ""

    def __str__(self) -> str:
        if self._args is not None:
            cq, node, request, usage, flavors, matcher = self._args
            self._text = str(assign_flavors(cq, node, request, usage, flavors, matcher).describe(node, usage))
            self._args = None
        return self._text

    def __eq__(self, other: object) -> bool:
        return (
            str(self) == str(other) if isinstance(other, (_ReasonAtCycleEnd, PendingReason, str)) else False
        )

    def __hash__(self) -> int:
        return hash(str(self))


# Kubernetes sets this immutable label on every namespace (NamespaceDefaultLabelName, since 1.21),
# so ``namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: team-a}}`` is the usual way to
# pick namespaces by name.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _namespace_allowed(cq: ClusterQueue, namespace: str, policy: AdmissionPolicy) -> bool:
    """Whether ``namespace`` matches the ClusterQueue's ``namespaceSelector`` (``matchLabels``).

    The namespace's labels are ``policy.namespace_labels[namespace]`` plus the implicit
    :data:`NAMESPACE_NAME_LABEL` (explicit labels win). A ClusterQueue without a selector admits
    every namespace: budcore's documented choice (``budcore.config.kueue``), where Kueue's null
    selector matches nothing.
    """
    selector = cq.namespace_selector
    if selector is None:
        return True
    labels = policy.namespace_labels.get(namespace, {})
    for key, value in selector.items():
        actual = labels.get(key)
        if actual is None and key == NAMESPACE_NAME_LABEL:
            actual = namespace
        if actual != value:
            return False
    return True


def schedule(
    snapshot: AdmissionSnapshot,
    pending: PendingQueues,
    policy: AdmissionPolicy,
    now: datetime,
    *,
    preemption: PreemptionPolicy | None = None,
    victim_info: Mapping[str, VictimInfo] | None = None,
) -> CycleResult:
    """Decide admissions for the active ClusterQueues (pure: inputs are not modified).

    ``preemption`` and ``victim_info`` are what preemption decides with (the policy; the facts
    that protect admitted workloads): the flavor assignment's preemption oracle uses them to tell
    where preemption can find victims.
    """
    tree = snapshot.tree
    if not pending.active and not tree.draining and not tree.draining_local_queues:
        return CycleResult()  # nothing changed since every queue was found inadmissible
    config = tree.config
    usage = snapshot.usage.overlay()
    result = CycleResult()
    cursors: dict[str, _Cursor] = {}
    # (key, tie-break, epoch the assignment was computed at or -1, queue, workload, index, assignment)
    heap: list[tuple[tuple[Any, ...], int, int, str, PendingWorkload, int, Assignment | None]] = []
    seq = itertools.count()
    # Admissions in a cohort tree invalidate cached assignments of that tree only.
    epoch: dict[str, int] = {}

    # Kueue's preemption oracle (flavorassigner ``SimulatePreemption``): a flavor needing
    # preemption ends the flavor search only where preemption finds victims, and borrows only if
    # the queue still borrows once they are gone. It reads this cycle's usage as it grows.
    oracle = PreemptionOracle(
        AdmissionSnapshot(tree, usage, snapshot.admitted),
        preemption
        or PreemptionPolicy(fair_sharing=policy.fair_sharing, flavor_weights=policy.flavor_weights),
        victim_info=victim_info,
        now=now,
    )

    def evaluate(workload: PendingWorkload) -> tuple[tuple[Any, ...], Assignment]:
        cq = config.cluster_queues[workload.cluster_queue]
        node = tree.cluster_queues[workload.cluster_queue]
        simulate = oracle.for_workload(workload) if tree.may_preempt[workload.cluster_queue] else None
        assignment = assign_flavors(
            cq, node, workload.job.request, usage, config.flavors, policy.matcher, simulate
        )
        if policy.fair_sharing:
            share = hierarchical_share(node, usage, assignment.usage, policy.flavor_weights)
            key: tuple[Any, ...] = (share, *workload.key)
        else:
            key = (1 if assignment.borrows else 0, *workload.key)
        return key, assignment

    base_shares: dict[str, tuple[int, tuple[int, ...]]] = {}  # cq -> (epoch, share without extra)
    ceilings: dict[str, tuple[int, dict[str, int]]] = {}  # cq -> (epoch, max available per resource)
    may_preempt = tree.may_preempt

    def ceiling_of(cq_name: str, current: int) -> dict[str, int]:
        values = usage.ceiling(tree.cluster_queues[cq_name])
        ceilings[cq_name] = (current, values)
        return values

    def exceeds(demand: dict[str, int], ceiling: dict[str, int]) -> bool | None:
        """True: exceeds for some resource; False: within; None: uses a resource not covered."""
        for resource, amount in demand.items():
            limit = ceiling.get(resource)
            if limit is None:
                return None
            if amount > limit:
                return True
        return False

    def cannot_fit(workload: PendingWorkload) -> bool:
        """A necessary condition, checked before the full flavor assignment.

        A single-pod-set request that exceeds, for some resource, the most any of the queue's
        flavors has available cannot fit any flavor. (A gang's pod sets may land on different
        flavors, so gangs always get the full assignment.) Usage only grows during a cycle, so
        availability only shrinks: a ceiling computed earlier is an upper bound of the current
        one, and exceeding it already proves the point; only a request within a stale ceiling
        needs it refreshed.
        """
        demand = workload.demand
        if demand is None:
            return False
        cq_name = workload.cluster_queue
        current = epoch.get(tree.cluster_queues[cq_name].root_key, 0)
        cached = ceilings.get(cq_name)
        if cached is not None:
            verdict = exceeds(demand, cached[1])
            if verdict is None:
                return False  # uncovered: the full assignment explains it
            if verdict or cached[0] == current:
                return verdict
        return exceeds(demand, ceiling_of(cq_name, current)) is True

    def lazy_reason(workload: PendingWorkload) -> _ReasonAtCycleEnd:
        cq_name = workload.cluster_queue
        return _ReasonAtCycleEnd(
            config.cluster_queues[cq_name],
            tree.cluster_queues[cq_name],
            workload.job.request,
            usage,
            config.flavors,
            policy.matcher,
        )

    def optimistic_key(workload: PendingWorkload) -> tuple[Any, ...]:
        """A lower bound of the workload's key, computed without a flavor assignment.

        Keys only get worse as usage grows, so a candidate can enter the heap with this bound and
        be evaluated once, when it reaches the top (and pushed back if its real key is worse).
        """
        if policy.fair_sharing:
            cq_name = workload.cluster_queue
            node = tree.cluster_queues[cq_name]
            current = epoch.get(node.root_key, 0)
            cached = base_shares.get(cq_name)
            if cached is None or cached[0] != current:
                cached = base_shares[cq_name] = (
                    current,
                    hierarchical_share(node, usage, None, policy.flavor_weights),
                )
            return (cached[1], *workload.key)
        demand = workload.demand
        if demand is not None and usage.must_borrow(tree.cluster_queues[workload.cluster_queue], demand):
            return (1, *workload.key)
        return (0, *workload.key)

    gates: dict[tuple[str, str], str] = {}  # LocalQueue -> gate (the same for all its workloads)

    def gate_of(cq: ClusterQueue, lq_key: tuple[str, str]) -> str:
        """Why the LocalQueue's workloads are held back regardless of quota ("" when they are not).

        Both gates belong to the LocalQueue (its stopPolicy; its namespace against the
        ClusterQueue's namespaceSelector), so each is worked out once per LocalQueue and cycle.
        """
        gate = gates.get(lq_key)
        if gate is None:
            gate = ""
            lq = config.local_queues.get(lq_key)
            if lq is not None and lq.stop_policy is not StopPolicy.NONE:
                gate = f"LocalQueue {lq.namespace}/{lq.name} is stopped (stopPolicy {lq.stop_policy.value})"
            elif not _namespace_allowed(cq, lq_key[0], policy):
                gate = f"namespace {lq_key[0]} does not match the namespaceSelector of ClusterQueue {cq.name}"
            gates[lq_key] = gate
        return gate

    def offer(cq_name: str) -> None:
        """Put the queue's next candidate that may be admitted on the heap.

        Candidates that cannot be admitted whatever their place in the order (dominated by a
        request that already failed, or above a ceiling computed earlier in the cycle, which only
        shrinks) are decided on the way: the heap orders only those that may take quota, so
        removing the others keeps the admission order the same. (Gated LocalQueues never reach
        the cursor: see the loop that builds it.)
        """
        cursor = cursors[cq_name]
        preempting = may_preempt[cq_name]
        while True:
            candidate = cursor.next()
            if candidate is None:
                result.exhausted.add(cq_name)
                return
            workload, index = candidate
            if cursor.dominated(workload):
                result.skipped += 1
                continue
            if not preempting and workload.demand is not None:
                job = workload.job
                cached = ceilings.get(cq_name)
                if cached is not None and exceeds(workload.demand, cached[1]):
                    result.considered += 1
                    result.pending.append(StaysPending(job.id, job.tenant, cq_name, lazy_reason(workload)))
                    cursor.failed(workload, quota_shortage=True)
                    continue
            heapq.heappush(heap, (optimistic_key(workload), next(seq), -1, cq_name, workload, index, None))
            return

    for cq_name in sorted(pending.active):
        queue = pending.queue(cq_name)
        cq = config.cluster_queues.get(cq_name)
        if queue is None or not queue.entries or cq is None:
            result.exhausted.add(cq_name)
            continue
        if cq.stop_policy is not StopPolicy.NONE:
            head = next(queue.ordered())
            result.pending.append(
                StaysPending(
                    head.job.id,
                    head.job.tenant,
                    cq_name,
                    f"ClusterQueue {cq_name} is stopped (stopPolicy {cq.stop_policy.value})",
                )
            )
            result.exhausted.add(cq_name)
            continue
        prefix: dict[tuple[str, str], float] | None = None
        if cq.admission_fair_sharing and policy.local_queue_usage is not None:
            prefix = {}
            for lq_key in queue.lq_heads:
                lq = config.local_queues.get(lq_key)
                weight = (lq.fair_sharing.weight / 1000.0) if lq is not None else 1.0
                value = policy.local_queue_usage.value(lq_key, now)
                prefix[lq_key] = value / weight if weight > 0 else float("inf")
        # A LocalQueue's gates hold all of its workloads (every shape of it), so they are checked
        # once per LocalQueue with pending work, before the cursor exists: in Kueue such
        # workloads are not in the ClusterQueue's heap, so under StrictFIFO they must not become
        # the blocking head, and they are no quota failure. Each gated shape's head is reported
        # pending with the gate (the others keep their last reason, as a dropped shape's do).
        gated: list[tuple[str, str]] | None = None
        for lq_key in queue.lq_heads:
            if gate_of(cq, lq_key):
                if gated is None:
                    gated = []
                gated.append(lq_key)
        if gated is None:
            shape_heads = queue.heads()
        else:
            entries = queue.entries
            for lq_key in gated:
                gate = gates[lq_key]
                for key, _ in queue.lq_heads[lq_key]:
                    held = entries[key[2]].job
                    result.considered += 1
                    result.pending.append(StaysPending(held.id, held.tenant, cq_name, gate))
            shape_heads = [w for w in queue.heads() if w.local_queue not in gated]
            if not shape_heads:
                result.exhausted.add(cq_name)  # nothing admissible until the configuration changes
                continue
        strict = cq.queueing_strategy is QueueingStrategy.STRICT_FIFO
        if not may_preempt[cq_name]:
            fitting = [w for w in shape_heads if not cannot_fit(w)]
            if not fitting:
                # Nothing of this queue fits what its flavors have left (and usage only grows in
                # a cycle): decide on its head, as Kueue does, and leave the rest untouched.
                head = min(shape_heads, key=lambda w: w.key)
                result.considered += 1
                result.pending.append(StaysPending(head.job.id, head.job.tenant, cq_name, lazy_reason(head)))
                result.exhausted.add(cq_name)
                continue
            if not strict:
                # BestEffortFIFO: a shape whose head exceeds what is left cannot admit anything in
                # this cycle; it is passed over (its workloads keep their last reason) instead of
                # being decided again, so a saturated queue costs what its admissible shapes cost.
                shape_heads = fitting
        cursors[cq_name] = _Cursor(queue, strict, prefix, shape_heads, monotone=not may_preempt[cq_name])
        offer(cq_name)

    for cq_name in tree.draining:
        for admitted in snapshot.admitted.values():
            if admitted.cluster_queue == cq_name:
                result.evictions.append(
                    Evict(
                        admitted.job_id,
                        admitted.tenant,
                        cq_name,
                        f"ClusterQueue {cq_name} is draining (stopPolicy HoldAndDrain)",
                    )
                )
    draining_lqs = tree.draining_local_queues
    if draining_lqs:
        # LocalQueue HoldAndDrain (Kueue's LocalQueue CRD: "HoldAndDrain - Admitted workloads are
        # evicted and Reserving workloads will cancel the reservation"; budcore's admitted
        # workloads are those holding quota). A workload whose ClusterQueue drains too was evicted
        # above already: one Evict per workload.
        draining_cqs = tree.draining
        for admitted in snapshot.admitted.values():
            lq_key = admitted.local_queue
            if lq_key in draining_lqs and admitted.cluster_queue not in draining_cqs:
                result.evictions.append(
                    Evict(
                        admitted.job_id,
                        admitted.tenant,
                        admitted.cluster_queue,
                        f"LocalQueue {lq_key[0]}/{lq_key[1]} is draining (stopPolicy HoldAndDrain)",
                    )
                )

    no_candidates = snapshot.no_preemption_candidates

    def reserves_for_preemption(cq_name: str, job_id: str) -> bool:
        """Whether a workload that needs preemption holds its room (see :class:`AdmissionSnapshot`)."""
        if job_id not in no_candidates:
            return True  # Kueue adds the usage of a preemptor with targets to the snapshot
        cq = config.cluster_queues[cq_name]
        return (
            cq.queueing_strategy is QueueingStrategy.STRICT_FIFO
            and cq.preemption.reclaim_within_cohort is not ReclaimWithinCohort.ANY
        )

    limit = policy.max_admissions
    while heap:
        if limit is not None and len(result.admitted) >= limit:
            break
        key, _, seen_epoch, cq_name, workload, index, maybe = heapq.heappop(heap)
        cursor = cursors[cq_name]
        job = workload.job
        if not may_preempt[cq_name] and cannot_fit(workload):
            # Whatever its place in the order, it would not fit: usage only grows in a cycle.
            result.considered += 1
            result.pending.append(StaysPending(job.id, job.tenant, cq_name, lazy_reason(workload)))
            cursor.failed(workload, quota_shortage=True)
            offer(cq_name)
            continue
        root = tree.cluster_queues[cq_name].root_key
        current = epoch.get(root, 0)
        if maybe is None or seen_epoch != current:
            key, maybe = evaluate(workload)
            # Its place in the order only matters if it can take quota: a workload that does not
            # fit now never will in this cycle (usage only grows), so it is decided at once, as
            # Kueue skips a nominated head whose assignment does not fit.
            takes_quota = maybe.mode is Mode.FIT or (
                maybe.mode is Mode.PREEMPT and job.preempts_others and may_preempt[cq_name]
            )
            if takes_quota and heap and key > heap[0][0]:
                heapq.heappush(heap, (key, next(seq), current, cq_name, workload, index, maybe))
                continue
        assignment = maybe
        result.considered += 1
        if assignment.mode is Mode.FIT:
            usage.add(cq_name, assignment.usage)
            epoch[root] = epoch.get(root, 0) + 1
            result.admitted.append(
                Admit(
                    job.id,
                    job.tenant,
                    cq_name,
                    workload.local_queue,
                    assignment.flavors,
                    assignment.usage,
                    assignment.borrows,
                    job.priority_value,  # the base priority: aging orders the queue, never protects
                )
            )
            cursor.admitted(workload, index)
        elif assignment.mode is Mode.PREEMPT and job.preempts_others and may_preempt[cq_name]:
            node = tree.cluster_queues[cq_name]
            result.needs_preemption.append(
                NeedsPreemption(
                    job.id,
                    job.tenant,
                    cq_name,
                    assignment.flavors,
                    assignment.usage,
                    assignment.borrows,
                    job.priority_value,  # aging never grants the right to preempt
                    assignment.describe(node, usage),  # the numbers before its reservation
                    workload.timestamp,
                )
            )
            if reserves_for_preemption(cq_name, job.id):
                reserved = preemption_reservation(node, usage, assignment.usage, assignment.borrows)
                if reserved:
                    # Kueue's cq.AddUsage(resourcesToReserve(...)): later candidates of this
                    # cycle see the room as taken. Like an admission, it invalidates the tree's
                    # cached ceilings, shares and assignments.
                    usage.add(cq_name, reserved)
                    epoch[root] = epoch.get(root, 0) + 1
                    result.reserved[job.id] = reserved
            cursor.failed(workload, quota_shortage=True)
        else:
            why: PendingReason | _ReasonAtCycleEnd = (
                assignment.describe(tree.cluster_queues[cq_name], usage)
                if assignment.reasons
                else lazy_reason(workload)
            )
            result.pending.append(StaysPending(job.id, job.tenant, cq_name, why))
            cursor.failed(workload, quota_shortage=not assignment.reasons)
        offer(cq_name)
    return result
