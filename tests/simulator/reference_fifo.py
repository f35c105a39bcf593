"""A reference FIFO simulator: one Kueue ClusterQueue, no preemption, written from first principles.

It shares no code with budcore: no import of ``budcore`` or ``budcore_simulator``, only ``heapq``
and the standard library. ``test_reference_fifo.py`` runs the same workloads through budcore's
simulator and through :func:`simulate` and asks that every job's admission, start and end times
be equal, exactly. The rules below are what the reference implements; each says where it comes
from. Kueue's documentation is the authority for admission; the rules that Kueue does not define
(a virtual clock, ties, where pods land) are the simulator's documented ones, cited as such.

Admission (Kueue, one ClusterQueue, no cohort, no preemption, one flavor)
-------------------------------------------------------------------------
A1. Quota. A workload is admitted iff its total request (``pods × gpus_per_pod`` GPUs) fits in
    what the ClusterQueue's ``nominalQuota`` leaves after the workloads it has admitted: "This
    ClusterQueue admits Workloads if and only if the sum of the [GPU] requests is less than or
    equal to [nominalQuota]" (Kueue, *Cluster Queue*,
    https://kueue.sigs.k8s.io/docs/concepts/cluster_queue/). A gang's pod set of ``count`` pods
    charges ``count ×`` the per-pod request (Kueue, *Workload*, pod sets). CPU and memory quotas
    are set so large that they never bind here.
A2. Order. "``StrictFIFO``: Workloads are ordered first by priority and then by
    ``.metadata.creationTimestamp``" and "``BestEffortFIFO``: Workloads are ordered the same way
    as StrictFIFO" (Kueue, *Cluster Queue*, section "Queueing strategy"); higher priority first,
    older first. The creation timestamp is the job's submit instant. Kueue leaves the order of
    two workloads with equal priority and timestamp undefined; the reference breaks the tie by
    job id (string order), which is the order budcore documents for its queues (``OrderKey =
    (-priority, timestamp, job id)`` in ``budcore.scheduling.pending``): the one rule here that
    is budcore's, not Kueue's.
A3. StrictFIFO: "Older workloads that can't be admitted will block newer workloads, even if the
    newer workloads fit in the available quota." Walking the queue in order, the first workload
    that does not fit stops the walk; a workload that can never fit (larger than the quota)
    blocks the queue for good.
A4. BestEffortFIFO: "older Workloads that can't be admitted will not block newer Workloads that
    fit in the available quota." Walking the queue in order, a workload that does not fit is
    passed over and the walk goes on; it is retried, in its place at the front, whenever quota is
    released (Kueue requeues the inadmissible workloads of a cohort when a workload in it
    finishes).
A5. No preemption (Kueue's defaults, ``withinClusterQueue: Never``): an admitted job keeps its
    quota until it ends.

Time (budcore's simulator, zero-latency mode: ``EngineOptions.latency = None``, no cycle interval)
-----------------------------------------------------------------------------------------------
T1. Admission is instantaneous: a workload that fits when it arrives is admitted at its arrival
    instant; quota a finishing job releases is available at its end instant ("a cycle at every
    instant something changed", ``budcore_simulator.engine``; latency model off).
T2. At one instant, every job that ends then releases its quota (and its nodes) first, then every
    job submitted then joins the queue, then admission walks the queue once (A3/A4). This is the
    engine's documented order of simultaneous events (``budcore_simulator.events.EventKind``:
    ``COMPLETION`` < ``ARRIVAL`` < ``CYCLE``). One walk admits every workload that fits, as
    Kueue's back-to-back cycles do at one instant: Kueue admits one head per ClusterQueue per
    cycle, but a head that does not fit is either kept at the front (StrictFIFO, blocking) or set
    aside (BestEffortFIFO) until quota is released, so the successive cycles of one instant admit
    exactly what one walk does.
T3. A job runs for exactly its runtime: ``end = start + runtime``.

Placement (nodes mode only: budcore's cluster model, standing in for kube-scheduler)
-----------------------------------------------------------------------------------
Kueue admits by quota only; binding pods to nodes is kube-scheduler's business. With nodes,
budcore's simulator places an admitted workload's pods with its in-memory cluster backend
(``budcore_adapters.inmemory.cluster``: "pods placed best-fit, gangs all-or-nothing"), and "an
admitted workload whose pods do not fit the free nodes right now ... keeps its quota and waits
with its pods pending; it is placed as soon as capacity frees, in admission order"
(``budcore_simulator.engine`` module docstring). So:

P1. Best fit: each pod goes to the node with the fewest free GPUs that still has room for it,
    ties by node name (string order; the backend keeps its nodes sorted by ``(free, name)``).
    The pods of a gang are placed one after another, each seeing the GPUs the earlier ones
    took; if any pod finds no node, nothing of the gang is placed (all or nothing). A gang may
    span nodes ("multi-node gangs": budcore's simulator supports them, so the reference does).
P2. A job starts when all its pods are placed; it is admitted (A1-A4) no later. A job admitted
    whose pods do not fit waits, holding its quota.
P3. Retries, in admission order: a newly admitted job is offered to placement at once; every
    time a running job ends, the waiting jobs are offered again in admission order, each placed
    if it fits (no blocking: kube-scheduler retries each unschedulable pod on its own).
P4. Jobs ending at the same instant end one at a time, in the order they started (the engine
    handles simultaneous events "in the order they were scheduled", ``budcore_simulator.events``;
    a job's end is scheduled when it starts), and the waiting jobs are offered after each (P3).
    Best fit makes the outcome depend on that order, which is why it is a rule here.

Everything is in whole seconds in the tests (so float sums are exact and timestamps never
collapse); the reference itself works with any numbers.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["RefJob", "RefTimes", "Strategy", "simulate"]

Strategy = Literal["StrictFIFO", "BestEffortFIFO"]


@dataclass(frozen=True, slots=True)
class RefJob:
    """A job as the reference sees it: ``pods`` identical pods of ``gpus_per_pod`` GPUs each."""

    job_id: str
    submit: float
    runtime: float
    gpus_per_pod: int
    pods: int = 1
    priority: int = 0

    @property
    def gpus(self) -> int:
        return self.pods * self.gpus_per_pod

    @property
    def order(self) -> tuple[int, float, str]:
        """Queue order (A2): higher priority first, then older, then job id."""
        return (-self.priority, self.submit, self.job_id)


@dataclass(frozen=True, slots=True)
class RefTimes:
    """What happened to one job: ``None`` for what never happened."""

    admitted: float | None = None
    start: float | None = None
    end: float | None = None
    nodes: tuple[str, ...] = ()  # where its pods ran, one entry per pod (nodes mode)


def simulate(
    jobs: Iterable[RefJob],
    *,
    quota: int,
    strategy: Strategy,
    nodes: Mapping[str, int] | None = None,
) -> dict[str, RefTimes]:
    """Run ``jobs`` through one ClusterQueue of ``quota`` GPUs; ``nodes`` (name → GPUs) places
    their pods (P1-P4), ``None`` runs quota-only (a job starts when it is admitted)."""
    if strategy not in ("StrictFIFO", "BestEffortFIFO"):
        raise ValueError(f"unknown queueing strategy {strategy!r}")
    strict = strategy == "StrictFIFO"
    arrivals = sorted(jobs, key=lambda j: (j.submit, j.job_id))
    if len({j.job_id for j in arrivals}) != len(arrivals):
        raise ValueError("job ids must be unique")
    by_id = {j.job_id: j for j in arrivals}
    admitted: dict[str, float] = {}
    started: dict[str, float] = {}
    ended: dict[str, float] = {}
    placed: dict[str, tuple[str, ...]] = {}

    pending: list[RefJob] = []  # submitted, not admitted
    used = 0  # quota held by admitted jobs that have not ended
    free = dict(nodes) if nodes is not None else {}
    waiting: list[str] = []  # admitted, pods not placed: in admission order
    running: list[tuple[float, int, str]] = []  # heap of (end, start sequence, job id)
    starts = 0  # jobs started so far: the tie-break of simultaneous ends (P4)

    def start(job: RefJob, now: float) -> None:
        nonlocal starts
        started[job.job_id] = now
        starts += 1
        heapq.heappush(running, (now + job.runtime, starts, job.job_id))  # T3

    def try_place(job: RefJob) -> tuple[str, ...] | None:
        """P1: every pod best fit, one after another; all or nothing."""
        trial = dict(free)
        chosen: list[str] = []
        for _ in range(job.pods):
            fits = [(room, name) for name, room in trial.items() if room >= job.gpus_per_pod]
            if not fits:
                return None
            _, name = min(fits)
            trial[name] -= job.gpus_per_pod
            chosen.append(name)
        free.update(trial)
        return tuple(chosen)

    def offer_waiting(now: float) -> None:
        """P3: the waiting jobs, in admission order, each placed if it fits."""
        still: list[str] = []
        for job_id in waiting:
            where = try_place(by_id[job_id])
            if where is None:
                still.append(job_id)
            else:
                placed[job_id] = where
                start(by_id[job_id], now)
        waiting[:] = still

    def admit_pass(now: float) -> None:
        """A2-A4: walk the queue once, in order, admitting what fits."""
        nonlocal used
        pending.sort(key=lambda j: j.order)
        kept: list[RefJob] = []
        blocked = False
        for job in pending:
            if blocked or job.gpus > quota - used:
                kept.append(job)
                blocked = blocked or strict  # A3 StrictFIFO stops; A4 BestEffortFIFO goes on
                continue
            used += job.gpus
            admitted[job.job_id] = now
            if nodes is None:
                start(job, now)  # quota-only: admission is the start
            else:
                waiting.append(job.job_id)
                offer_waiting(now)  # P3: offered at once (the others did not fit and still do not)
        pending[:] = kept

    i = 0
    while i < len(arrivals) or running:
        now = min(
            arrivals[i].submit if i < len(arrivals) else float("inf"),
            running[0][0] if running else float("inf"),
        )
        # T2: ends first, one at a time in start order (P4), each freeing quota and nodes ...
        while running and running[0][0] == now:
            _, _, job_id = heapq.heappop(running)
            ended[job_id] = now
            job = by_id[job_id]
            used -= job.gpus
            for name in placed.get(job_id, ()):
                free[name] += job.gpus_per_pod
            if nodes is not None:
                offer_waiting(now)
        # ... then arrivals ...
        while i < len(arrivals) and arrivals[i].submit == now:
            pending.append(arrivals[i])
            i += 1
        # ... then one admission walk (T1, T2).
        admit_pass(now)

    return {
        job_id: RefTimes(
            admitted=admitted.get(job_id),
            start=started.get(job_id),
            end=ended.get(job_id),
            nodes=placed.get(job_id, ()),
        )
        for job_id in by_id
    }
