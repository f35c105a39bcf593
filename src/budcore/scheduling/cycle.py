"""One scheduling cycle: ``schedule(snapshot, pending, policy, now) → CycleResult``.

A pure function: it reads the quota snapshot and the pending queues, admits into a private
copy-on-write overlay of the usage, and returns decisions; it changes neither input (nor the
policy: everything it would have to advance, such as LocalQueue usage decay, is computed by the
caller into the snapshot). The caller applies the decisions (see
:class:`budcore.scheduling.scheduler.Scheduler`).

The cycle follows Kueue's ``schedule`` (``pkg/scheduler/scheduler.go``), phase by phase; each
phase is a method of :class:`_Cycle`, whose docstring says why it works the way it does:

1. **nominate heads** (:meth:`_Cycle.nominate`): each active ClusterQueue offers its first
   candidate that may take quota;
2. **drain** (:meth:`_Cycle.drain`): ``stopPolicy: HoldAndDrain`` evicts what its queues admitted;
3. **order** (:meth:`_Cycle.pop`): candidates are taken best first, Kueue's ``entryOrdering``
   (with fair sharing, its tournament over the cohort tree: :class:`FairOrder`);
4. **assign flavors** (:meth:`_Cycle.assign`), once per candidate: as Kueue's ``nominate``, the
   first heads of the cycle against the usage the cycle started with (a head's assignment, its
   place in the order and its pending message are those of that moment); candidates a queue
   offers later in the cycle (budcore admits more than one workload per ClusterQueue per cycle)
   against the usage the cycle has reached when they are first considered;
5. **resolve preemption, the reservation part** (:meth:`_Cycle.reserve_for_preemption`): a
   workload that needs preemption holds the room its victims will free, and one without victims
   whose queue cannot always reclaim holds its own (:meth:`_Cycle.holds_room`);
6. **admit** (:meth:`_Cycle.admit`) if the assignment still fits, or leave the candidate pending
   with a precise reason (Kueue's "no longer fits" when workloads before it took the room its
   assignment counted on: it is not assigned another flavor in the same cycle); its queue then
   offers its next candidate (back to 3).

A decision is one of :class:`Admit`, :class:`NeedsPreemption` (the flavor assignment would fit if
other workloads were evicted; the preemption policy decides whom), :class:`StaysPending` with a
precise reason, or :class:`Evict` (a ClusterQueue or LocalQueue with ``stopPolicy: HoldAndDrain``).

Long because each phase keeps its explanation next to it; the walk over one ClusterQueue's
candidates lives apart (:class:`~budcore.scheduling.pending.CandidateCursor`), and so does the
fair-sharing tournament (:class:`~budcore.scheduling.fair_order.FairOrder`).
"""

from __future__ import annotations

import heapq
import itertools
import weakref
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from budcore.domain.quantity import format_quantity
from budcore.ports.preemption_cost import VictimInfo
from budcore.scheduling.assignment import Assignment, Mode, PendingReason, assign_flavors, reduce_pod_sets
from budcore.scheduling.fair_order import FAIR_HEAP_KEY, Entry, FairOrder
from budcore.scheduling.pending import CandidateCursor, ClusterQueuePending, PendingQueues, PendingWorkload
from budcore.scheduling.preemption import PreemptionOracle, PreemptionPolicy, find_victims
from budcore.scheduling.queues import (
    SCHEDULING_TAINT_EFFECTS,
    ClusterQueue,
    QueueingStrategy,
    ReclaimWithinCohort,
    StopPolicy,
)
from budcore.scheduling.quota import QuotaNode, QuotaTree, QuotaUsage, preemption_reservation
from budcore.scheduling.reservations import may_use
from budcore.scheduling.snapshot import (
    AdmissionPolicy,
    AdmissionSnapshot,
    Admit,
    CycleResult,
    DecisionStatus,
    Evict,
    NeedsPreemption,
    StaysPending,
)

__all__ = [
    "NO_LONGER_FITS",
    "OVERLAPPING_TARGETS",
    "schedule",
]  # the snapshot and decision types are snapshot.py's

# Kueue's message for a workload whose flavor assignment, made when it was nominated, no longer fits
# once workloads before it in the cycle took quota (``processEntry``); it is retried next cycle.
NO_LONGER_FITS = "Workload no longer fits after processing another workload"
# Kueue's message for a preemptor skipped because a preemptor before it in the cycle already claimed
# one of its victims; it is retried next cycle.
OVERLAPPING_TARGETS = "Workload has overlapping preemption targets with another workload"


class _LazyReason:
    """Why a workload did not fit, computed only if someone reads it.

    It runs the flavor assignment when read, against a copy of the usage it was decided in
    (:meth:`_Cycle._lazy_reason`): the usage the cycle started with for a first head, whose message
    has the numbers of its nomination as Kueue's has, or the usage the cycle had reached. A first
    head that fitted when the cycle started "no longer fits": workloads before it took the room.
    """

    __slots__ = ("_args", "_text")

    def __init__(self, *args: Any) -> None:
        self._args: tuple[Any, ...] | None = args
        self._text = ""

    def __str__(self) -> str:
        if self._args is not None:
            cq, node, request, usage, flavors, matcher = self._args
            if isinstance(usage, _UsageAfter):
                usage = usage.usage
            assignment = assign_flavors(cq, node, request, usage, flavors, matcher)
            self._text = NO_LONGER_FITS if assignment.mode is Mode.FIT else str(assignment.describe())
            self._args = None
        return self._text

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other) if isinstance(other, (_LazyReason, PendingReason, str)) else False

    def __hash__(self) -> int:
        return hash(str(self))


class _UsageAfter:
    """The usage a lazy pending reason is rendered against, kept as the cycle left it.

    The usage the cycle started with is the caller's own object, which the caller changes as soon
    as it applies the cycle's decisions; at the end of the cycle the first heads' reasons are
    pointed at a view that keeps what the cycle saw (:meth:`_Cycle.freeze_reasons`)."""

    __slots__ = ("usage",)

    def __init__(self, usage: QuotaUsage) -> None:
        self.usage = usage


class _HeldForBookings:
    """A pending reason in a ClusterQueue with capacity bookings: the reason, plus the booked room
    the workload could not use (rendered only when read)."""

    __slots__ = ("held", "why")

    def __init__(self, why: object, held: tuple[str, ...]) -> None:
        self.why = why
        self.held = held

    def __str__(self) -> str:
        if not self.held:
            return str(self.why)
        return f"{self.why}; booked room not available to it: {'; '.join(self.held)}"

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


class _TreeFacts:
    """What the cycle works out about a configuration, kept from one cycle to the next.

    A :class:`QuotaTree` is built once per configuration (a reconfigured Scheduler builds a new one)
    and neither it nor its frozen ``QueueConfig`` ever changes, so what follows from them alone is
    the same in every cycle: whether a queue's workloads may hold room without victims
    (:meth:`_Cycle._hold_bound`), whether its flavors are plain (:meth:`_Cycle._fits_at_start`).
    The LocalQueue gates (:meth:`_Cycle._gate_of`) also read the policy's namespace labels, so they
    are kept for one labels mapping at a time (the policy is frozen: other labels come with another
    policy, which starts them afresh). Each is filled the first time a cycle asks, as a cycle's own
    caches were; the facts live as long as their tree (:func:`_facts_of`).

    ``ceiling_keys`` says which queues have the same ceiling (:meth:`_Cycle._ceiling`) whatever
    the usage: a ClusterQueue in a cohort with nothing guaranteed (no lending limit) and no
    borrowing limit in any of its flavor-resources has, of each, Kueue's ``available`` =
    ``max(0, available(parent))`` (:mod:`budcore.scheduling.quota`'s arithmetic, usage never
    negative): its own usage does not enter, so every such queue with the same parent and the same
    resource groups has the same ceiling, computed once per epoch under the first one's name. Any
    other queue's ceiling is its own.
    """

    __slots__ = ("ceiling_keys", "gate_labels", "gates", "hold_rules", "plain_queues")

    def __init__(self, tree: QuotaTree) -> None:
        self.ceiling_keys: dict[str, str] = {}  # queue -> name its ceiling is cached under
        shared: dict[tuple[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]], str] = {}
        for name, node in sorted(tree.cluster_queues.items()):
            key = name
            if node.parent is not None and not _reads_own_usage(node):
                key = shared.setdefault((node.parent.key, node.groups), name)
            self.ceiling_keys[name] = key
        # queue -> whether its workloads may hold room without victims (see _hold_bound)
        self.hold_rules: dict[str, tuple[bool, dict[str, int] | None] | tuple[()]] = {}
        self.plain_queues: dict[str, bool] = {}  # see _fits_at_start
        self.gates: dict[tuple[str, str], str] = {}  # LocalQueue -> gate (the same for all its workloads)
        self.gate_labels: Mapping[str, Mapping[str, str]] | None = None  # what ``gates`` were read with

    def gates_for(self, labels: Mapping[str, Mapping[str, str]]) -> dict[tuple[str, str], str]:
        """The gates worked out with these namespace labels (an empty table for other labels)."""
        if labels is not self.gate_labels:
            self.gates = {}
            self.gate_labels = labels
        return self.gates


def _reads_own_usage(node: QuotaNode) -> bool:
    """Whether what a ClusterQueue in a cohort has available reads its own usage: something of a
    flavor-resource it uses is guaranteed to it (a lending limit) or it has a borrowing limit."""
    return any(
        node.guaranteed.get((flavor, resource), 0) or (flavor, resource) in node.borrowing_limit
        for covered, flavors in node.groups
        for resource in covered
        for flavor in flavors
    )


# A tree's facts go when the tree goes (a weak key: the facts hold nothing of the tree).
_FACTS: weakref.WeakKeyDictionary[QuotaTree, _TreeFacts] = weakref.WeakKeyDictionary()


def _facts_of(tree: QuotaTree) -> _TreeFacts:
    facts = _FACTS.get(tree)
    if facts is None:
        facts = _FACTS[tree] = _TreeFacts(tree)
    return facts


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
    cycle = _Cycle(snapshot, policy, now, preemption, victim_info)
    # 1. Nominate heads: every active ClusterQueue offers its first candidate that may take quota.
    for cq_name in sorted(pending.active):
        cycle.nominate(cq_name, pending.queue(cq_name))
    # 2. Drain: ClusterQueues and LocalQueues with stopPolicy HoldAndDrain evict their workloads.
    cycle.drain()
    cycle.nominating = False  # candidates offered from now on are assigned when first considered
    # 3. Order: take candidates best first, until none is left or max_admissions is reached.
    while (entry := cycle.pop()) is not None:
        # 4. Assign flavors (once per candidate). None: decided without an assignment, or back on
        # the heap because its real key is worse than the next one's.
        assigned = cycle.assign(entry)
        if assigned is not None:
            # 5. Reserve the room its preemption will free, or 6. admit it, or leave it pending.
            cycle.decide(assigned)
    # A queue whose candidate no longer fitted is not done: that candidate is assigned afresh
    # next cycle (its queue must not be parked until its cohort changes).
    cycle.result.exhausted.difference_update(cycle.retry)
    cycle.freeze_reasons()  # the caller changes the usage the lazy reasons read from now on
    return cycle.result


class _Cycle:
    """The state one cycle works on: the usage overlay it admits into, the candidates' heap, and the
    caches that keep a decision cheap. Its methods are the phases of :func:`schedule`.

    Usage only grows during a cycle (admissions and reservations add to it, nothing is released),
    which is what makes most shortcuts here sound: a workload that cannot be admitted now cannot
    be later in the cycle either, a key (a lower bound of a candidate's place in the order) only
    gets worse, and an availability ceiling computed earlier is an upper bound of the current one.
    Caches are invalidated per cohort tree: an admission or a reservation bumps its tree's *epoch*.

    Capacity bookings (:mod:`budcore.scheduling.reservations`) make the usage a workload sees
    depend on the workload: ``usage`` counts every booking's held room (what most workloads see),
    ``free_usage`` none of it (what the bookings' owners see), and :meth:`_usage_for` picks. The
    shortcuts above assume one usage for the whole queue, so a ClusterQueue with bookings goes
    without them (no ceilings, no dominated requests, and a failed shape head does not end its
    shape: :meth:`_continue_shape`).
    """

    __slots__ = (
        "booked",
        "ceiling_keys",
        "ceilings",
        "cluster_queues",
        "cursors",
        "epoch",
        "failed_shapes",
        "fair",
        "flavors",
        "free_usage",
        "gates",
        "heap",
        "hold_rules",
        "limit",
        "may_preempt",
        "nodes",
        "nominating",
        "now",
        "oracle",
        "plain_queues",
        "policy",
        "preemption",
        "reasons_start",
        "result",
        "retry",
        "seq",
        "snapshot",
        "start_free_usage",
        "start_oracle",
        "start_usage",
        "usage",
        "victim_info",
    )

    def __init__(
        self,
        snapshot: AdmissionSnapshot,
        policy: AdmissionPolicy,
        now: datetime,
        preemption: PreemptionPolicy | None,
        victim_info: Mapping[str, VictimInfo] | None,
    ) -> None:
        tree = snapshot.tree
        self.snapshot = snapshot
        self.policy = policy
        self.limit = policy.max_admissions
        self.nodes = tree.cluster_queues
        self.cluster_queues = tree.config.cluster_queues
        self.flavors = tree.config.flavors
        self.may_preempt = tree.may_preempt
        self.now = now
        self.booked = {cq: rooms for cq, rooms in snapshot.bookings.items() if rooms and cq in self.nodes}
        # The usage the cycle started with (never written: the first heads are assigned against
        # it) and the cycle's own, which admissions and reservations write.
        self.start_usage = snapshot.usage
        self.start_free_usage: QuotaUsage | None = None
        self.free_usage: QuotaUsage | None = None
        self.failed_shapes: set[tuple[Any, tuple[bool, ...]]] = set()
        if self.booked:
            self.start_free_usage = snapshot.usage
            self.free_usage = snapshot.usage.overlay()
            self.start_usage = snapshot.usage.overlay()
            for cq_name, rooms in self.booked.items():
                for room in rooms:
                    self.start_usage.add(cq_name, {room.fr: room.held})
        self.usage = self.start_usage.overlay()
        self.nominating = True  # phase 1: offered candidates are the cycle's first heads
        # What follows from the configuration alone, kept from cycle to cycle (see _TreeFacts).
        facts = _facts_of(tree)
        self.hold_rules = facts.hold_rules
        self.plain_queues = facts.plain_queues
        self.gates = facts.gates_for(policy.namespace_labels)
        self.ceiling_keys = facts.ceiling_keys
        self.retry: set[str] = set()  # queues with a candidate that no longer fitted
        # What first heads' lazy pending reasons render against: the usage the cycle started
        # with, pinned as the cycle saw it when the cycle ends (freeze_reasons).
        self.reasons_start = _UsageAfter(self.start_usage)
        self.result = CycleResult()
        self.cursors: dict[str, CandidateCursor] = {}
        self.heap: list[Entry] = []
        self.seq = itertools.count()
        # Admissions in a cohort tree invalidate cached assignments of that tree only.
        self.epoch: dict[str, int] = {}
        # ceiling key (see _TreeFacts) -> (epoch, max available per resource)
        self.ceilings: dict[str, tuple[int, dict[str, int]]] = {}
        # With fair sharing, candidates are ordered by Kueue's tournament, not by the heap's keys.
        self.fair: FairOrder | None = None
        if policy.fair_sharing:
            self.fair = FairOrder(self, self._assignment, self._usage_for, self._declined, self._takes_quota)
        # Kueue's preemption oracle (flavorassigner ``SimulatePreemption``): a flavor needing
        # preemption ends the flavor search only where preemption finds victims, and borrows only if
        # the queue still borrows once they are gone. It reads this cycle's usage as it grows.
        self.preemption = preemption or PreemptionPolicy(
            fair_sharing=policy.fair_sharing, flavor_weights=policy.flavor_weights
        )
        self.victim_info = victim_info
        self.oracle: PreemptionOracle | None = None  # made when first asked (_oracle)
        self.start_oracle: PreemptionOracle | None = None  # the first heads': made when first asked

    # 1. Nominate heads ------------------------------------------------------------------------
    def nominate(self, cq_name: str, queue: ClusterQueuePending | None) -> None:
        """Put the ClusterQueue's first candidate that may take quota on the heap.

        Each active ClusterQueue offers its head, as in Kueue (StrictFIFO: the head blocks the
        queue when it cannot be admitted; BestEffortFIFO: a head that cannot be admitted is set
        aside and the next one is tried). Candidates are the heads of the queue's *shapes* (same
        request, same LocalQueue: if a shape's first workload cannot be admitted in this cycle, no
        later one can), in queue order, or, under admission fair sharing, by their LocalQueue's
        decayed usage first. A stopped queue, workloads held back by their LocalQueue
        (:meth:`_ungated_heads`) and, for a queue that never preempts, shapes above what its
        flavors have left (:meth:`_within_ceiling`) are decided here, before any ordering.
        """
        result = self.result
        cq = self.cluster_queues.get(cq_name)
        if queue is None or not queue.entries or cq is None:
            result.exhausted.add(cq_name)
            return
        if cq.stop_policy is not StopPolicy.NONE:
            head = next(queue.ordered())
            why = f"ClusterQueue {cq_name} is stopped (stopPolicy {cq.stop_policy.value})"
            result.pending.append(StaysPending(head.job.id, head.job.tenant, cq_name, why))
            result.exhausted.add(cq_name)
            return
        prefix = self._usage_prefix(cq, queue)
        heads = self._ungated_heads(cq, queue)
        if not heads:
            result.exhausted.add(cq_name)  # nothing admissible until the configuration changes
            return
        strict = cq.queueing_strategy is QueueingStrategy.STRICT_FIFO
        shortcuts = not self.may_preempt[cq_name] and cq_name not in self.booked
        if shortcuts:
            within = self._within_ceiling(cq_name, heads, strict)
            if within is None:
                return
            heads = within
        self.cursors[cq_name] = CandidateCursor(queue, strict, prefix, heads, monotone=shortcuts)
        self._offer(cq_name)

    def _usage_prefix(
        self, cq: ClusterQueue, queue: ClusterQueuePending
    ) -> dict[tuple[str, str], float] | None:
        """Admission fair sharing (Kueue ``UsageBasedAdmissionFairSharing``): within the
        ClusterQueue, each LocalQueue's decayed usage divided by its weight goes before the
        queue order (None: the queue does not use it).

        The decayed usage comes in the snapshot (``local_queue_usage``): reading it advances the
        decay, which the caller does before the cycle, so the cycle stays pure.
        """
        usage = self.snapshot.local_queue_usage
        if not cq.admission_fair_sharing or usage is None:
            return None
        local_queues = self.snapshot.tree.config.local_queues
        prefix: dict[tuple[str, str], float] = {}
        for lq_key in queue.lq_heads:
            lq = local_queues.get(lq_key)
            weight = (lq.fair_sharing.weight / 1000.0) if lq is not None else 1.0
            value = usage.get(lq_key, 0.0)
            prefix[lq_key] = value / weight if weight > 0 else float("inf")
        return prefix

    def _ungated_heads(self, cq: ClusterQueue, queue: ClusterQueuePending) -> list[PendingWorkload]:
        """The queue's shape heads whose LocalQueue does not hold them back; the others are decided.

        Workloads held back by their LocalQueue — its ``stopPolicy`` (Hold, HoldAndDrain), or its
        namespace against the ClusterQueue's ``namespaceSelector`` — are not candidates at all:
        Kueue's queue manager never puts them in the ClusterQueue's heap (a stopped LocalQueue's
        workloads are not requeued, a namespace mismatch is inadmissible). So they neither block a
        StrictFIFO queue nor count as a quota failure. A LocalQueue's gates hold all of its
        workloads (every shape of it), so they are checked once per LocalQueue with pending work;
        each gated shape's head is reported pending with the gate (the others keep their last
        reason, as a dropped shape's do).
        """
        gated: list[tuple[str, str]] | None = None
        for lq_key in queue.lq_heads:
            if self._gate_of(cq, lq_key):
                if gated is None:
                    gated = []
                gated.append(lq_key)
        if gated is None:
            return queue.heads()
        result = self.result
        entries = queue.entries
        for lq_key in gated:
            gate = self.gates[lq_key]
            for key, _ in queue.lq_heads[lq_key]:
                held = entries[key[-1]].job
                result.considered += 1
                result.pending.append(StaysPending(held.id, held.tenant, cq.name, gate))
        return [w for w in queue.heads() if w.local_queue not in gated]

    def _gate_of(self, cq: ClusterQueue, lq_key: tuple[str, str]) -> str:
        """Why the LocalQueue's workloads are held back regardless of quota ("" when they are not).

        Both gates belong to the LocalQueue (its stopPolicy; its namespace against the
        ClusterQueue's namespaceSelector), so each is worked out once per LocalQueue and kept from
        cycle to cycle (:class:`_TreeFacts`: they read only the configuration and the labels).
        """
        gate = self.gates.get(lq_key)
        if gate is None:
            gate = ""
            lq = self.snapshot.tree.config.local_queues.get(lq_key)
            if lq is not None and lq.stop_policy is not StopPolicy.NONE:
                gate = f"LocalQueue {lq.namespace}/{lq.name} is stopped (stopPolicy {lq.stop_policy.value})"
            elif not cq.selects_namespace(lq_key[0], self.policy.namespace_labels.get(lq_key[0], {})):
                gate = f"namespace {lq_key[0]} does not match the namespaceSelector of ClusterQueue {cq.name}"
            self.gates[lq_key] = gate
        return gate

    def _within_ceiling(
        self, cq_name: str, heads: list[PendingWorkload], strict: bool
    ) -> list[PendingWorkload] | None:
        """For a queue that never preempts: the heads to walk, or None when nothing of it fits.

        Only workloads that may take quota are ordered. When no head fits what the queue's
        flavors have left (its *ceiling*: per resource, the most any flavor has available), the
        queue decides on its head, as Kueue does, and leaves the rest untouched. Under
        BestEffortFIFO a shape whose head is above the ceiling when the cycle starts is passed
        over without a decision (its workloads keep their last reason), so a saturated queue
        costs what its admissible shapes cost.
        """
        # _declined(w, start=True) for each head, unrolled (the queue never preempts and has no
        # bookings, so it is: above the ceiling, and cannot hold room or fits at the start). The
        # cycle has admitted nothing yet, so the epoch is the one this queue's ceiling is computed
        # and cached for (by the first head with a demand, as _cannot_fit does).
        fitting: list[PendingWorkload] = []
        ceiling: dict[str, int] | None = None
        for w in heads:
            demand = w.demand
            if demand is not None:
                if ceiling is None:
                    ceiling = self._ceiling(cq_name)
                if _exceeds(demand, ceiling) is True and (
                    not self._may_hold_room(w) or self._fits_at_start(w)
                ):
                    continue
            fitting.append(w)
        if not fitting:
            head = min(heads, key=lambda w: w.key)
            result = self.result
            result.considered += 1
            result.pending.append(
                StaysPending(head.job.id, head.job.tenant, cq_name, self._lazy_reason(head, start=True))
            )
            result.exhausted.add(cq_name)
            return None
        return heads if strict else fitting

    def _offer(self, cq_name: str) -> None:
        """Put the queue's next candidate that may be admitted on the heap.

        Candidates that cannot be admitted whatever their place in the order are decided on the
        way: a request at least as large as one that already failed in its queue (fit is
        monotone in demand), or one above a ceiling computed earlier in the cycle (which only
        shrinks). The heap orders only those that may take quota, so removing the others keeps
        the admission order the same. (Gated LocalQueues never reach the cursor: see
        :meth:`_ungated_heads`.)

        Neither of these two passes over a workload that may still hold room
        (:meth:`_may_hold_room`): its try, ``Preempt`` without candidates, holds room although it
        cannot be admitted. Kueue nominates a request that differs from the failed one on its own
        (another equivalence class, not bulk-moved to the inadmissible list), so it has that try
        before anything changes; skipping it would park its queue with the try still owed, to be
        taken after the cohort changed, holding room Kueue never held there.
        """
        cursor = self.cursors[cq_name]
        booked = cq_name in self.booked
        shortcuts = not self.may_preempt[cq_name] and not booked
        result = self.result
        while True:
            candidate = cursor.next()
            if candidate is None:
                result.exhausted.add(cq_name)
                return
            workload, index = candidate
            if cursor.dominated(workload) and not self._may_hold_room(workload):
                result.skipped += 1  # it cannot fit, and cannot hold room either
                continue
            if booked and (workload.shape, self._rooms_usable(workload)) in self.failed_shapes:
                result.skipped += 1  # its shape failed with the same bookings usable: so would it
                cursor.offer_successor(workload, index)
                continue
            if shortcuts and workload.demand is not None:
                cached = self.ceilings.get(self.ceiling_keys[cq_name])
                if (
                    cached is not None
                    and _exceeds(workload.demand, cached[1])
                    and not self._may_hold_room(workload)
                ):
                    job = workload.job
                    result.considered += 1
                    why = self._lazy_reason(workload, start=self.nominating)
                    result.pending.append(StaysPending(job.id, job.tenant, cq_name, why))
                    cursor.failed(workload, quota_shortage=True)
                    continue
            entry = (
                self._optimistic_key(workload),
                next(self.seq),
                -1,
                cq_name,
                workload,
                index,
                None,
                self.nominating,
            )
            heapq.heappush(self.heap, entry)
            return

    # 2. Drain ---------------------------------------------------------------------------------
    def drain(self) -> None:
        """Evict the admitted workloads of ClusterQueues and LocalQueues with ``HoldAndDrain``.

        LocalQueue HoldAndDrain follows Kueue's LocalQueue CRD ("HoldAndDrain - Admitted workloads
        are evicted and Reserving workloads will cancel the reservation"; budcore's admitted
        workloads are those holding quota). A workload whose ClusterQueue drains too is evicted
        for the ClusterQueue: one Evict per workload.
        """
        tree = self.snapshot.tree
        admitted = self.snapshot.admitted
        evictions = self.result.evictions
        for cq_name in tree.draining:
            why = f"ClusterQueue {cq_name} is draining (stopPolicy HoldAndDrain)"
            for workload in admitted.values():
                if workload.cluster_queue == cq_name:
                    evictions.append(Evict(workload.job_id, workload.tenant, cq_name, why))
        draining_lqs = tree.draining_local_queues
        if not draining_lqs:
            return
        draining_cqs = tree.draining
        for workload in admitted.values():
            lq_key = workload.local_queue
            if lq_key in draining_lqs and workload.cluster_queue not in draining_cqs:
                why = f"LocalQueue {lq_key[0]}/{lq_key[1]} is draining (stopPolicy HoldAndDrain)"
                evictions.append(Evict(workload.job_id, workload.tenant, workload.cluster_queue, why))

    # 3. Order ---------------------------------------------------------------------------------
    def pop(self) -> Entry | None:
        """The best candidate on the heap, or None when there is none or enough were admitted.

        Across ClusterQueues, candidates are ordered like Kueue's ``entryOrdering``: workloads
        that fit without borrowing first, then higher priority, then earlier queue-ordering time;
        or, with fair sharing, by Kueue's tournament over the cohort tree (:class:`FairOrder`).
        It is a lazy heap: a candidate enters with a lower bound of its key
        (:meth:`_optimistic_key`) and is re-checked against the usage left by the admissions
        before it (:meth:`assign`).
        """
        if self.fair is not None:
            return self.fair.pop()
        heap = self.heap
        if not heap:
            return None
        limit = self.limit
        if limit is not None and len(self.result.admitted) >= limit:
            return None
        return heapq.heappop(heap)

    def _optimistic_key(self, workload: PendingWorkload) -> tuple[Any, ...]:
        """A lower bound of the workload's key, computed without a flavor assignment.

        Keys only get worse as usage grows, so a candidate can enter the heap with this bound and
        be evaluated once, when it reaches the top (and pushed back if its real key is worse). The
        bound already counts borrowing that no flavor could avoid (``QuotaUsage.must_borrow``).
        """
        if self.fair is not None:
            return FAIR_HEAP_KEY  # the tournament orders fair-sharing candidates, not the heap
        if workload.cluster_queue in self.booked:
            return (0, *workload.key)  # its usage depends on the bookings it may use: no bound
        demand = workload.demand
        if demand is not None and self.usage.must_borrow(self.nodes[workload.cluster_queue], demand):
            return (1, *workload.key)
        return (0, *workload.key)

    # 4. Assign flavors ------------------------------------------------------------------------
    def assign(self, entry: Entry) -> Entry | None:
        """The candidate with its flavor assignment, if it is still the best; None when decided.

        A candidate is assigned flavors once, when it is first considered, as Kueue assigns them
        once when it nominates the heads: its assignment, its place in the order and its pending
        message stay those of that moment, and if workloads before it take the room the
        assignment counted on, it "no longer fits" (:meth:`decide`) rather than being assigned
        another flavor. The cycle's first heads are assigned against the usage the cycle started
        with (what Kueue's snapshot holds at nomination); candidates offered later in the cycle
        against the usage reached when they are first considered.

        None when the candidate needs no assignment to be decided (it exceeds its queue's ceiling
        and cannot hold room: it would not fit whatever its place, since usage only grows in a
        cycle), or when its real key, once assigned, is worse than the next candidate's: it goes
        back on the heap with that key and the assignment. Its place in the order only matters if
        it can take quota: a workload that does not fit is decided at once, as Kueue skips a
        nominated head whose assignment does not fit.
        """
        _, _, _, cq_name, workload, index, assignment, start = entry
        if assignment is not None:
            return entry
        if self._declined(workload, start):
            self.result.considered += 1
            why = self._lazy_reason(workload, start=start)
            self._stays_pending(cq_name, workload, why, quota_shortage=True)
            self._offer(cq_name)
            return None
        epoch = 0 if start else self.epoch.get(self.nodes[cq_name].root_key, 0)
        key, assignment = self._evaluate(workload, start)
        entry = (key, next(self.seq), epoch, cq_name, workload, index, assignment, start)
        heap = self.heap
        if heap and key > heap[0][0] and self._takes_quota(workload, assignment):
            heapq.heappush(heap, entry)
            return None
        return entry

    def _takes_quota(self, workload: PendingWorkload, assignment: Assignment) -> bool:
        """Whether deciding the candidate may add usage (an admission, or a preemption reservation)."""
        mode = assignment.mode
        if mode is Mode.FIT:
            return True
        return (
            mode is Mode.PREEMPT and workload.job.preempts_others and self.may_preempt[workload.cluster_queue]
        )

    def _evaluate(self, workload: PendingWorkload, start: bool) -> tuple[tuple[Any, ...], Assignment]:
        """The workload's flavor assignment and its real key (see :meth:`pop`): Kueue's
        ``entryOrdering`` puts a workload that borrows from fewer levels of the cohort tree first
        (``Assignment.Borrowing``, a height), then higher priority, then the earlier time."""
        assignment = self._assignment(workload, start)
        if self.fair is not None:
            return FAIR_HEAP_KEY, assignment  # ordered by the tournament (:class:`FairOrder`)
        return (assignment.borrowing, *workload.key), assignment

    def _assignment(self, workload: PendingWorkload, start: bool = False) -> Assignment:
        """The workload's flavor assignment against the usage the cycle started with (``start``)
        or has reached; with fewer pods when the whole count does not fit and the request allows
        it (Kueue's ``getInitialAssignments``: partial admission when neither a fit nor a
        preemption with victims is found for every pod)."""
        cq_name = workload.cluster_queue
        simulate = None
        if self.may_preempt[cq_name]:
            simulate = (self._start_oracle() if start else self._oracle()).for_workload(workload)
        cq, node = self.cluster_queues[cq_name], self.nodes[cq_name]
        request = workload.job.request
        usage = self._usage_for(workload, start)
        flavors, matcher = self.flavors, self.policy.matcher
        full = assign_flavors(cq, node, request, usage, flavors, matcher, simulate)
        if full.mode is Mode.FIT or not request.partially_admissible:
            return full
        if full.mode is Mode.PREEMPT and self._finds_victims(workload, full, usage):
            return full

        def fits(counts: list[int]) -> Assignment | None:
            reduced = assign_flavors(cq, node, request, usage, flavors, matcher, simulate, counts=counts)
            if reduced.mode is Mode.FIT:
                return reduced
            if reduced.mode is Mode.PREEMPT and self._finds_victims(workload, reduced, usage):
                return reduced
            return None

        return reduce_pod_sets(request, fits) or full

    def _finds_victims(self, workload: PendingWorkload, assignment: Assignment, usage: QuotaUsage) -> bool:
        """Whether preemption finds victims for ``assignment`` in ``usage`` (Kueue ``GetTargets``
        is not empty); never for a workload that may not preempt."""
        job = workload.job
        if not (self.may_preempt[workload.cluster_queue] and job.preempts_others):
            return False
        needs = NeedsPreemption(
            job.id,
            job.tenant,
            workload.cluster_queue,
            assignment.flavors,
            assignment.usage,
            assignment.borrows,
            job.priority_value,
            "",
            workload.timestamp,
            workload.rank,
        )
        decision = find_victims(
            self._snapshot_of(usage),
            needs,
            now=self.now,
            policy=self.preemption,
            victim_info=self.victim_info,
            preemptor_timestamp=workload.timestamp,
        )
        return decision.status is DecisionStatus.PREEMPT

    def _snapshot_of(self, usage: QuotaUsage) -> AdmissionSnapshot:
        """What preemption decides on in this cycle with ``usage``: the admitted workloads, and
        with admission fair sharing their LocalQueues' usage (the victims' order)."""
        snapshot = self.snapshot
        return AdmissionSnapshot(
            snapshot.tree,
            usage,
            snapshot.admitted,
            local_queue_usage=snapshot.local_queue_usage,
            las=snapshot.las,
        )

    def _oracle(self) -> PreemptionOracle:
        """The preemption oracle on the cycle's own usage (it reads the usage as the cycle grows
        it), made when a queue that may preempt first asks: most cycles have none."""
        if self.oracle is None:
            self.oracle = PreemptionOracle(
                self._snapshot_of(self.usage),
                self.preemption,
                victim_info=self.victim_info,
                now=self.now,
            )
        return self.oracle

    def _start_oracle(self) -> PreemptionOracle:
        """The preemption oracle of the first heads: Kueue's, on the snapshot taken at nomination."""
        if self.start_oracle is None:
            self.start_oracle = PreemptionOracle(
                self._snapshot_of(self.start_usage),
                self.preemption,
                victim_info=self.victim_info,
                now=self.now,
            )
        return self.start_oracle

    def _declined(self, workload: PendingWorkload, start: bool = False) -> bool:
        """Whether the workload is left pending without a flavor assignment: its queue never
        preempts and has no bookings (the shortcuts' conditions), the request is above what the
        queue's flavors have left (:meth:`_cannot_fit`), and it cannot hold room either — or, for
        a first head, its assignment at the cycle's start would fit (it then "no longer fits",
        and Kueue holds nothing for it: :meth:`_fits_at_start`)."""
        cq_name = workload.cluster_queue
        if self.may_preempt[cq_name] or cq_name in self.booked or not self._cannot_fit(workload):
            return False
        return not self._may_hold_room(workload) or (start and self._fits_at_start(workload))

    def _fits_at_start(self, workload: PendingWorkload) -> bool:
        """Whether the flavor assignment at the cycle's start is sure to fit, told without making
        it: every resource group of a plain request (one pod set, no accelerator type, node
        selector or affinity) in a queue whose flavors all exist and carry no scheduling taint has
        a flavor with the whole request available. The flavor assigner then returns a fit, and a
        first head that fits at the start but not now only "no longer fits"."""
        demand = workload.demand
        if demand is None:
            return False
        request = workload.job.request
        pod_set = request.pod_sets[0]
        if request.accelerators or pod_set.node_selector or pod_set.required_node_affinity:
            return False
        cq_name = workload.cluster_queue
        plain = self.plain_queues.get(cq_name)
        if plain is None:
            plain = self.plain_queues[cq_name] = all(
                name in self.flavors
                and not any(
                    t.get("effect") in SCHEDULING_TAINT_EFFECTS for t in self.flavors[name].node_taints
                )
                for _, names in self.nodes[cq_name].groups
                for name in names
            )
        return plain and _fits_a_flavor(self.nodes[cq_name], self.start_usage, demand)

    def _may_hold_room(self, workload: PendingWorkload) -> bool:
        """Whether a workload of a queue that never preempts may still hold room in the cycle.

        Kueue's flavor assigner gives a request that does not fit but is within the queue's
        nominal quota (or fits a subtree below the root) the mode ``Preempt`` even when the
        queue never preempts (no candidates), and the scheduler then holds the room for it
        (``reserveCapacityForUnreclaimablePreempt``, :meth:`holds_room`). So such a request must
        reach the flavor assigner even above the queue's ceiling, or behind a failed request no
        larger (:meth:`_offer`). A necessary condition, cheap: the queue has a cohort (alone, only
        its own later candidates would see the room, and Kueue considers one per queue per cycle),
        the workload would hold room (:meth:`_holds_room` without targets), and, in a flat cohort,
        no resource is above the most nominal quota any flavor has for it (:meth:`_hold_bound`).
        """
        cq_name = workload.cluster_queue
        hold = self.hold_rules.get(cq_name)
        if hold is None:
            hold = self.hold_rules[cq_name] = self._hold_bound(cq_name)
        if not hold:
            return False
        strict, bound = hold
        if not strict and workload.job.id in self.snapshot.no_preemption_candidates:
            return False  # Kueue set it aside after its first try (see _holds_room)
        demand = workload.demand
        if demand is None or bound is None:
            return True  # a gang, or a hierarchy (a subtree below the root may fit): assign it
        return _exceeds(demand, bound) is False

    def _hold_bound(self, cq_name: str) -> tuple[bool, dict[str, int] | None] | tuple[()]:
        """Per queue, once per configuration (:class:`_TreeFacts`): () when its workloads never
        hold room without victims (no cohort, or ``reclaimWithinCohort: Any``); else whether it is
        StrictFIFO and, in a flat cohort, the most nominal quota any flavor has per resource (None
        in a hierarchy)."""
        node = self.nodes[cq_name]
        cq = self.cluster_queues[cq_name]
        if node.parent is None or cq.preemption.reclaim_within_cohort is ReclaimWithinCohort.ANY:
            return ()
        strict = cq.queueing_strategy is QueueingStrategy.STRICT_FIFO
        if node.parent.parent is not None:
            return strict, None
        bound: dict[str, int] = {}
        for (_, resource), amount in node.nominal.items():
            if amount > bound.get(resource, 0):
                bound[resource] = amount
        return strict, bound

    def _cannot_fit(self, workload: PendingWorkload) -> bool:
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
        node = self.nodes[cq_name]
        current = self.epoch.get(node.root_key, 0)
        key = self.ceiling_keys[cq_name]
        cached = self.ceilings.get(key)
        if cached is not None:
            verdict = _exceeds(demand, cached[1])
            if verdict is None:
                return False  # uncovered: the full assignment explains it
            if verdict or cached[0] == current:
                return verdict
        ceiling = self.usage.ceiling(node)
        self.ceilings[key] = (current, ceiling)
        return _exceeds(demand, ceiling) is True

    def _ceiling(self, cq_name: str) -> dict[str, int]:
        """The queue's ceiling for the current epoch, computed and cached as :meth:`_cannot_fit`
        does (a ceiling of an earlier epoch is recomputed). Queues whose ceilings are the same
        share one (:class:`_TreeFacts`)."""
        node = self.nodes[cq_name]
        current = self.epoch.get(node.root_key, 0)
        key = self.ceiling_keys[cq_name]
        cached = self.ceilings.get(key)
        if cached is not None and cached[0] == current:
            return cached[1]
        ceiling = self.usage.ceiling(node)
        self.ceilings[key] = (current, ceiling)
        return ceiling

    # 5. and 6. Reserve for preemption, admit, or leave pending --------------------------------
    def decide(self, entry: Entry) -> None:
        """Act on the assignment of the candidate :meth:`assign` kept; its queue offers its next.

        Kueue's ``processEntry``: a fit is admitted if the assignment still fits (else "no longer
        fits", retried next cycle); a workload that needs preemption reserves for it; one that
        would need preemption but can have no victims (its queue or its job never preempts) holds
        its room if its queue cannot always reclaim (:meth:`holds_room`) and stays pending.
        """
        _, _, epoch, cq_name, workload, index, assignment, start = entry
        assert assignment is not None  # assign() returns assigned entries only
        self.result.considered += 1
        mode = assignment.mode
        if mode is Mode.FIT and self._still_fits(cq_name, workload, assignment, epoch):
            self.admit(cq_name, workload, index, assignment)
        elif mode is Mode.FIT:
            if cq_name in self.booked or not self._cannot_fit(workload) or self._may_hold_room(workload):
                # It may fit another flavor now, or, if not, hold room next cycle (Kueue's
                # reserveCapacityForUnreclaimablePreempt, which changes what others may admit):
                # its queue is looked at again next cycle (not parked until its cohort changes),
                # where it is assigned afresh, as Kueue requeues a workload that no longer fits at
                # once.
                self.retry.add(cq_name)
            self._stays_pending(cq_name, workload, NO_LONGER_FITS, quota_shortage=False)
            if self.booked:
                self._continue_shape(cq_name, workload, index)
        elif mode is Mode.PREEMPT and workload.job.preempts_others and self.may_preempt[cq_name]:
            self.reserve_for_preemption(cq_name, workload, assignment, start)
            if self.booked:
                self._continue_shape(cq_name, workload, index)
        else:
            if mode is Mode.PREEMPT:
                self.result.no_victims.append(workload.job.id)
                if self.nodes[cq_name].parent is not None:
                    self.holds_room(cq_name, workload, assignment, has_targets=False)
            why: PendingReason | _HeldForBookings = assignment.describe()
            if self.booked and cq_name in self.booked:
                why = _HeldForBookings(why, self._rooms_held_from(workload))
            self._stays_pending(cq_name, workload, why, quota_shortage=not assignment.reasons)
            if self.booked:
                self._continue_shape(cq_name, workload, index)
        self._offer(cq_name)

    def _still_fits(
        self, cq_name: str, workload: PendingWorkload, assignment: Assignment, epoch: int
    ) -> bool:
        """Kueue's ``fits`` before admitting: the assignment fits the usage the cycle has reached
        (nothing to check when its cohort tree's usage has not changed since it was made)."""
        node = self.nodes[cq_name]
        if self.epoch.get(node.root_key, 0) == epoch:
            return True
        usage = self._usage_for(workload)
        available = usage.available
        for fr, amount in assignment.usage.items():  # noqa: SIM110 - a loop on the hot path
            if amount > available(node, fr):
                return False
        return True

    def reserve_for_preemption(
        self, cq_name: str, workload: PendingWorkload, assignment: Assignment, start: bool
    ) -> None:
        """Phase 5: the candidate fits once others are evicted (the preemption policy decides whom).

        It holds, for the rest of the cycle, the room it will take once its victims are gone
        (Kueue's ``cq.AddUsage(resourcesToReserve(...))``,
        :func:`~budcore.scheduling.quota.preemption_reservation`), so a lower-priority workload of
        the same cycle is not admitted into it only to become the next victim — or, when it has
        no victims, the room its queue could not be sure to reclaim later (:meth:`holds_room`).
        Like an admission, the reservation invalidates the tree's cached ceilings and shares.
        """
        job = workload.job
        needs = NeedsPreemption(
            job.id,
            job.tenant,
            cq_name,
            assignment.flavors,
            assignment.usage,
            assignment.borrows,
            job.priority_value,  # aging never grants the right to preempt
            assignment.describe(),  # the numbers of the moment it was assigned
            workload.timestamp,
            workload.rank,
        )
        self.result.needs_preemption.append(needs)
        has_targets = self._has_targets(assignment, workload, start)
        self.holds_room(cq_name, workload, assignment, has_targets=has_targets)
        self.cursors[cq_name].failed(workload, quota_shortage=True)

    def _has_targets(self, assignment: Assignment, workload: PendingWorkload, start: bool) -> bool | None:
        """Whether preemption finds victims for the workload (None: not worth knowing).

        Only a queue that can always reclaim (``reclaimWithinCohort: Any``) decides by it whether
        to hold room; the others hold it anyway on a first try, and a workload whose last
        preemption found no victims is taken at its word. Kueue finds the targets when it assigns
        flavors, so they are looked for in the usage the assignment was made against.
        """
        if workload.job.id in self.snapshot.no_preemption_candidates:
            return False
        cq = self.cluster_queues[workload.cluster_queue]
        if cq.preemption.reclaim_within_cohort is not ReclaimWithinCohort.ANY:
            return None
        return self._finds_victims(workload, assignment, self._usage_for(workload, start))

    def holds_room(
        self, cq_name: str, workload: PendingWorkload, assignment: Assignment, *, has_targets: bool | None
    ) -> None:
        """Hold the room of a workload that waits for preemption, if Kueue would.

        Kueue adds the usage of a preemptor with victims to its snapshot, and for one without
        victims (``reserveCapacityForUnreclaimablePreempt``) the room it would take
        (``resourcesToReserve``) unless its queue can always reclaim (``reclaimWithinCohort:
        Any``): a queue that cannot be sure to get its lent quota back later keeps the cohort
        from borrowing it now (:meth:`_holds_room` says when).
        """
        job = workload.job
        if not self._holds_room(cq_name, job.id, has_targets):
            return
        node = self.nodes[cq_name]
        reserved = preemption_reservation(
            node, self._usage_for(workload), assignment.usage, assignment.borrows
        )
        if reserved:
            self._take(cq_name, reserved)
            self.epoch[node.root_key] = self.epoch.get(node.root_key, 0) + 1
            self.result.reserved[job.id] = reserved
            if (
                not has_targets
                and self.cluster_queues[cq_name].queueing_strategy is QueueingStrategy.STRICT_FIFO
            ):
                # Kueue requeues a StrictFIFO head at once and nominates it every cycle, so it
                # holds the room every cycle: its queue must not be parked.
                self.retry.add(cq_name)

    def _holds_room(self, cq_name: str, job_id: str, has_targets: bool | None) -> bool:
        """Whether a workload waiting for preemption holds its room (see :class:`AdmissionSnapshot`).

        ``has_targets`` True: always (Kueue adds the preemptor's usage). Otherwise Kueue holds the
        room when the queue cannot always reclaim; budcore, which does not set a workload aside as
        Kueue does (a BestEffortFIFO workload found without victims waits in Kueue's inadmissible
        list until the cluster changes), holds it on the first try only, and for StrictFIFO,
        whose head Kueue retries every cycle, on every try.
        """
        if has_targets:
            return True
        cq = self.cluster_queues[cq_name]
        if cq.preemption.reclaim_within_cohort is ReclaimWithinCohort.ANY and has_targets is False:
            return False
        return (
            cq.queueing_strategy is QueueingStrategy.STRICT_FIFO
            or job_id not in self.snapshot.no_preemption_candidates
        )

    def freeze_reasons(self) -> None:
        """Keep the usage the cycle's lazy pending reasons read as the cycle left it.

        The caller applies the cycle's admissions to the usage the cycle started with, which is
        exactly the nodes the cycle wrote in its own overlay. The reasons of first heads read the
        usage the cycle started with: those nodes are pinned at their start values in an overlay
        of it (:meth:`QuotaUsage.pin`; cheap, a cycle writes few nodes). The others read the
        cycle's overlay, whose own layer already holds those nodes as the cycle left them. (Later
        changes of other nodes, after further cycles, do show through, as they always have.)"""
        if not self.result.pending:
            return
        written = self.usage.layers[0].keys()
        if written:
            view = self.start_usage.overlay()
            view.pin(written)
            self.reasons_start.usage = view

    def admit(self, cq_name: str, workload: PendingWorkload, index: int, assignment: Assignment) -> None:
        """Phase 6: take the quota in the cycle's usage; the shape's next workload becomes a candidate."""
        job = workload.job
        root = self.nodes[cq_name].root_key
        self._take(cq_name, assignment.usage)
        self.epoch[root] = self.epoch.get(root, 0) + 1
        self.result.admitted.append(
            Admit(
                job.id,
                job.tenant,
                cq_name,
                workload.local_queue,
                assignment.flavors,
                assignment.usage,
                assignment.borrows,
                job.priority_value,  # the base priority: aging orders the queue, never protects
                assignment.counts,
            )
        )
        self.cursors[cq_name].admitted(workload, index)

    # Capacity bookings ------------------------------------------------------------------------
    def _take(self, cq_name: str, amounts: Mapping[Any, int]) -> None:
        """Add to the cycle's usage, in both views when bookings split it."""
        self.usage.add(cq_name, amounts)
        if self.free_usage is not None:
            self.free_usage.add(cq_name, amounts)

    def _rooms_usable(self, workload: PendingWorkload) -> tuple[bool, ...]:
        """For each booking of the workload's ClusterQueue, whether the workload may use its room."""
        rooms = self.booked.get(workload.cluster_queue, ())
        job = workload.job
        return tuple(may_use(room.reservation, job, self.now) for room in rooms)

    def _usage_for(self, workload: PendingWorkload, start: bool = False) -> QuotaUsage:
        """The usage ``workload`` is decided against, as the cycle started (``start``) or as it
        is now: the held room of every booking it may not use counts as used (the common case,
        ``usage``), that of the bookings it may use does not."""
        usage = self.start_usage if start else self.usage
        rooms = self.booked.get(workload.cluster_queue)
        if not rooms:
            return usage
        free = self.start_free_usage if start else self.free_usage
        assert free is not None  # set whenever there are bookings
        usable = self._rooms_usable(workload)
        if not any(usable):
            return usage
        if all(usable):
            return free
        view = free.overlay()
        for room, ok in zip(rooms, usable, strict=True):
            if not ok:
                view.add(workload.cluster_queue, {room.fr: room.held})
        return view

    def _rooms_held_from(self, workload: PendingWorkload) -> tuple[str, ...]:
        rooms = self.booked.get(workload.cluster_queue, ())
        usable = self._rooms_usable(workload)
        return tuple(
            f"reservation {room.reservation.name} holds {format_quantity(room.held, room.fr[1])} "
            f"{room.fr[1]} of {room.fr[0]} for {room.reservation.owner} from "
            f"{room.reservation.start.isoformat()} to {room.reservation.end.isoformat()}"
            for room, ok in zip(rooms, usable, strict=True)
            if not ok
        )

    def _continue_shape(self, cq_name: str, workload: PendingWorkload, index: int) -> None:
        """In a ClusterQueue with bookings, a failed head does not end its shape: the next workload
        of the shape may use bookings the head may not (a different owner's job list, an earlier
        end). Shapes already failed with the same usable bookings are skipped (:meth:`_offer`)."""
        if cq_name not in self.booked:
            return
        self.failed_shapes.add((workload.shape, self._rooms_usable(workload)))
        self.cursors[cq_name].offer_successor(workload, index)

    def _stays_pending(
        self,
        cq_name: str,
        workload: PendingWorkload,
        why: PendingReason | _LazyReason | _HeldForBookings | str,
        *,
        quota_shortage: bool,
    ) -> None:
        """Leave the candidate pending with ``why``; its queue fails it (:meth:`CandidateCursor.failed`)."""
        job = workload.job
        self.result.pending.append(StaysPending(job.id, job.tenant, cq_name, why))
        self.cursors[cq_name].failed(workload, quota_shortage=quota_shortage)

    def _lazy_reason(self, workload: PendingWorkload, *, start: bool) -> _LazyReason:
        """Why a workload left pending without an assignment did not fit: with the numbers of the
        usage the cycle started with for a first head (those Kueue's message has), else of the
        usage at the end of the cycle; the assignment is made only if the message is read. The
        first is pinned as the cycle saw it when the cycle ends (:meth:`freeze_reasons`); the
        cycle's own overlay already holds every node the cycle wrote."""
        cq_name = workload.cluster_queue
        node = self.nodes[cq_name]
        usage: QuotaUsage | _UsageAfter
        if cq_name in self.booked:
            usage = self._usage_for(workload, start).frozen()  # a view of its own (bookings: rare)
        else:
            usage = self.reasons_start if start else self.usage
        return _LazyReason(
            self.cluster_queues[cq_name], node, workload.job.request, usage, self.flavors, self.policy.matcher
        )


def _exceeds(demand: Mapping[str, int], ceiling: Mapping[str, int]) -> bool | None:
    """True: exceeds for some resource; False: within; None: uses a resource not covered."""
    for resource, amount in demand.items():
        limit = ceiling.get(resource)
        if limit is None:
            return None
        if amount > limit:
            return True
    return False


def _fits_a_flavor(node: QuotaNode, usage: QuotaUsage, demand: Mapping[str, int]) -> bool:
    """Whether every resource of ``demand`` is covered and each resource group it needs has a
    flavor with all of its share available in ``usage`` (the flavor assigner then fits it)."""
    if any(resource not in node.covered for resource in demand):
        return False
    available = usage.available
    for covered, flavor_names in node.groups:
        needed = [(r, demand[r]) for r in covered if r in demand]
        if not needed:
            continue
        for f in flavor_names:
            if all(amount <= available(node, (f, r)) for r, amount in needed):
                break
        else:
            return False
    return True
