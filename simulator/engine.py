"""The discrete-event engine: the real scheduling core on a virtual clock.

Everything a production service does, the engine does through the same code: jobs become
:class:`budcore.domain.job.Job` objects, enter their LocalQueue through
:class:`budcore.scheduling.Scheduler`, are admitted by the Kueue-compatible cycle (snapshot in,
decisions out), and their pods are placed on nodes by a cluster backend the engine reaches only
through the :class:`~budcore.ports.simulated_cluster.SimulatedCluster` port (the in-memory backend
unless the caller gives another). Only time is simulated. Scenario runs build a simulation with
:func:`budcore_simulator.build.build_simulation`.

Events live in one binary heap ordered by ``(time, kind, sequence)``, so simultaneous events are
handled in a fixed order (that of :class:`~budcore_simulator.events.EventKind`, whose module also
lists each kind's payload) and a run is a pure function of its inputs and seed:

- ``ARRIVAL``: the next job of the (lazy) arrival stream; only one is in the heap at a time, so a
  million-job trace needs no more memory than a short one;
- ``CYCLE``: an admission cycle, scheduled at the instant something changed (at most one per
  instant, or on a fixed interval);
- ``COMPLETION``: a running job's pods exit;
- ``TIMEOUT``: an admitted job reached its maximum duration (Kueue's
  ``maximumExecutionTimeSeconds``): its pods stop, its quota returns and it fails with reason
  ``timeout``. Its execution time is counted as Kueue counts it, over the time the workload holds
  its admission (pods running or pending, a victim's grace period), accumulated across
  preemptions and requeues: a job preempted after 3 h of a 4 h limit gets 1 h on its next run;
- ``NODE_FAIL`` / ``NODE_REPAIR`` / ``FAILURE_DETECTED`` / ``RETRY``: a node goes down (its jobs'
  pods die), the controller notices after the missed heartbeats, the job restarts from its last
  checkpoint after a backoff while its retry budget lasts;
- ``PODS_TIMEOUT``: Kueue's ``waitForPodsReady``: an admitted workload whose pods could not all be
  placed within the timeout gives its quota back and is requeued (only when a timeout is set);
- ``CONTROLLER_DOWN`` / ``CONTROLLER_UP``: the scheduling controller restarts (see
  :class:`ControllerRestartModel`);
- ``EVICTED``: a preemption victim's grace period is over: its pods stop, the work since its last
  checkpoint is lost, its quota returns and it is requeued (Kueue's eviction timestamp ordering);
  a victim that completes within its grace period simply completes. Workloads a cycle *evicts*
  (``CycleResult.evictions``: room a capacity booking needs at its start, or a queue draining
  under ``stopPolicy: HoldAndDrain``) go the same way, with the same grace period;
- ``RELEASE`` / ``REQUEUE``: only under the cycle-latency model (:mod:`budcore_simulator.latency`,
  ``EngineOptions.latency``): a finished job's, or a stopped victim's, quota is released
  ``release_delay`` after it ended (the victim is then requeued); a cohort's inadmissible
  workloads go back to their queues ``requeue_delay`` after quota was released in it;
- ``SAMPLE``: a point of the usage time series;
- ``REVIEW``: a budget review, only with money (a scenario's ``money`` block, or a job with a
  ``budget_limit``; :mod:`budcore_simulator.money`): alerts, and jobs paused (stopped as a
  preemption stops them, held out of their queue), resumed or cancelled by their budgets. Every
  ``review_every`` while a job runs or a paused job waits for its budget's period to roll over.
  With money, the submission guard also decides on each job as it arrives (a refused job ends
  ``refused``), and each run is metered into usage records that a job's cost is the charge of;
- ``PIPELINE`` / ``PIPELINE_WAKE``: a pipeline run of the scenario's ``workload.pipelines``
  starts; a run is advanced, because one of its jobs started, ended or was evicted at that
  instant, or because time alone changes it (:mod:`budcore_simulator.pipelines`, whose
  :class:`~budcore_simulator.pipelines.PipelineDriver` submits and cancels the jobs of its steps
  through this engine's ``*_pipeline_*`` methods: they are ordinary jobs in every other respect).

The cycle-latency model (off by default) keeps the workloads waiting for admission outside the
scheduler, in each ClusterQueue's heads (:class:`~budcore_simulator.latency.HeadQueues`), and
submits only ``heads_per_cluster_queue`` heads per ClusterQueue before each cycle, taking back those
not admitted after it; cycles are spaced by ``cycle_period`` and ``head_cost`` per head. Usage is
kept for every resource the ClusterQueues cover (:mod:`budcore_simulator.usage`): the quota each
ClusterQueue's workloads hold from admission to release, and what running pods take on each
flavor's nodes. A quota-only run (``EngineOptions.quota_only``: no fleet) places no pods: a
workload runs from the instant it is admitted.

Admission reserves quota; placing pods is the cluster's business. As in Kubernetes, an admitted
workload whose pods do not fit the free nodes right now (fragmentation: quota for 8 GPUs exists,
but spread over several nodes) keeps its quota and waits with its pods pending; it is placed as
soon as capacity frees, in admission order.

A completion or detection event for a job that has since been evicted carries a stale *epoch*
and is ignored, which keeps preemption and failure handling O(log n).

Time (issue #13). Jobs are submitted at their simulated instant, so a job outside its time window
is *held* out of its queue by the scheduler; after every cycle the engine asks
:meth:`~budcore.scheduling.Scheduler.next_wakeup` and makes sure a cycle happens at that instant
(on the ``cycle_interval_s`` grid when there is one), so held jobs enter their queues when their
window opens and leave them when it closes, even if nothing else happens then. With a
:class:`~budcore.scheduling.deadline.DeadlineBoost`, waiting jobs' priorities are raised as their
deadline slack runs out on the sample clock (where aging is applied). A job whose progress (work
saved plus its current run, so redone work does not count) passes ``runaway_factor`` × its
declared runtime raises a *runaway alert* (counted; it keeps running). With
:class:`EtaMeasurement`, the engine asks the scheduler for each measured job's ETA as it is
submitted (the real core run forward, :func:`~budcore.scheduling.forecast.eta_for`) and keeps the
estimated start for the report to compare with the actual one.

Capacity bookings (:class:`~budcore.domain.reservation.Reservation`, the scenario's
``reservations``) are made with :meth:`~budcore.scheduling.Scheduler.reserve` before the run (and
again on a restarted controller's scheduler). Their starts and ends are wake-ups too: the cycle at
a booking's start evicts the workloads standing in its room, which the engine stops after the
grace period and requeues like preemption victims. The engine keeps the runs of the jobs each
booking serves, and the result has each booking's use
(:func:`~budcore.scheduling.reservations.reservation_use`) and the workloads evicted for it.
"""

from __future__ import annotations

import gc
import heapq
import math
import random
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal, overload

from budcore_adapters.inmemory import InMemoryClusterBackend

from budcore.domain.cluster import Node, PodSetPlacement, Workload
from budcore.domain.errors import BudcoreError, ValidationError
from budcore.domain.ids import JobId
from budcore.domain.job import BudgetAction, Job, JobType, PodSet
from budcore.domain.lifecycle import BackoffPolicy
from budcore.domain.priority import JobPriority
from budcore.domain.reservation import Reservation
from budcore.domain.resources import is_accelerator
from budcore.ports.clock import Clock
from budcore.ports.preemption_cost import VictimInfo
from budcore.ports.simulated_cluster import SimulatedCluster
from budcore.scheduling import AdmissionPolicy, QueueConfig, Scheduler
from budcore.scheduling.assignment import Mode, admission_placement, assign_flavors, flavor_types_from_nodes
from budcore.scheduling.deadline import DeadlineBoost
from budcore.scheduling.fair_sharing import LocalQueueUsage
from budcore.scheduling.forecast import ForecastOptions, eta_for
from budcore.scheduling.ordering import Attained
from budcore.scheduling.preemption import DecisionStatus, PreemptionPolicy
from budcore.scheduling.preemption.aging import AgingPolicy
from budcore.scheduling.preemption.guards import PreemptionBudget
from budcore.scheduling.queues import QueueingStrategy
from budcore.scheduling.reservations import ReservationUse, reservation_use
from budcore.scheduling.snapshot import Admit, CycleResult, Evict
from budcore.scheduling.timegates import Held

from .events import (
    CLOCKS,
    CONTROLLER_WORK,
    PROGRESS,
    REPAIRS,
    EventKind,
    JobEpoch,
    JobEventKind,
    NodeEventKind,
    Payload,
    RunArrival,
    TickKind,
)
from .latency import Head, HeadQueues, LatencyModel
from .sharing import SampledState, SharingOutcome, SharingSampler
from .status import SimJobStatus
from .throughput import Throughput
from .usage import Ledger
from .workload.model import JobArrival, arrival_to_job

if TYPE_CHECKING:
    from budcore.cost.actions import BudgetStop

    from .money import MoneyLedger, MoneyOptions, MoneyOutcome
    from .pipelines import PipelineDriver, PipelineWorkload, RunOutcome

# With only time-window cycles left, the run ends when nothing arrived or was admitted for this long
# (every daily window opens within two days; a must-finish one within TimeWindow's search).
_STALLED_S = 16 * 86400.0
# The handler of each event kind takes the kind's payload (see events.py); _push checks statically
# that each kind is pushed with its payload, so the table itself can only say "some payload".
_Handler = Callable[[float, Any], None]
# Builds the cluster backend of a run from its nodes and the run's virtual clock.
ClusterFactory = Callable[[Sequence[Node], Clock], SimulatedCluster]


# How far (in grid steps) an instant may sit past a grid point and still be on it: instants are sums
# and products of decimal fractions (3 × 0.1 is 0.30000000000000004), so an exact ceiling would
# push an instant that is on the grid to the next point.
GRID_TOLERANCE = 1e-9
# Pod-set placements kept (see Simulation._placement): a run has a few shapes × flavors; one whose
# jobs each bring their own pod sets (validated one by one, see arrival_to_job) clears it now and then.
_PLACEMENTS_MAX = 1024
_PlacementKey = tuple[int, int, tuple[tuple[str, str], ...]]


def grid_ceil(at: float, interval: float) -> float:
    """The first point of the grid ``k × interval`` at or after ``at``, tolerating float error.

    An instant within :data:`GRID_TOLERANCE` steps past a grid point is on that point (the
    result is then never earlier than ``at``: ``max(point, at)``), so ``0.30000000000000004``
    on a 0.1 s grid is 0.3's point, not 0.4.
    """
    point = math.ceil(at / interval - GRID_TOLERANCE) * interval
    return point if point >= at else at


@dataclass(frozen=True, slots=True)
class FailureModel:
    """Node failures: exponential time between failures per node, fixed repair time.

    A failed node's pods die at once; the controller declares them lost after ``heartbeat_misses``
    heartbeats of ``heartbeat_interval_s`` (defaults 5 s × 2, the seeds' batch platform), releases
    their quota and, after an exponential backoff, requeues each job to restart from its last
    checkpoint while it has retries left (``max_retries`` of the job, default 3).
    """

    mtbf_s: float
    repair_s: float = 3600.0
    heartbeat_interval_s: float = 5.0
    heartbeat_misses: int = 2

    @property
    def detection_delay_s(self) -> float:
        return self.heartbeat_interval_s * self.heartbeat_misses


@dataclass(frozen=True, slots=True)
class ControllerRestartModel:
    """The scheduling controller (Kueue plus budcore's job controller) restarts now and then.

    It goes down every ``every_s`` seconds (``exponential``: after exponentially distributed
    intervals of that mean, from its own random stream, so node failures draw the same numbers
    with or without restarts) and stays down ``downtime_s``. While it is down:

    - no admission cycle runs; arriving jobs are recorded but wait outside the queues;
    - the cluster keeps going: running pods run and exit, pending pods of admitted workloads are
      still placed by the cluster's own scheduler, failed nodes take their pods down;
    - what needs the controller waits for it: releasing the quota of finished jobs, declaring
      failed jobs lost, retries and ``waitForPodsReady`` timeouts.

    Coming back, it rebuilds its state from the cluster as a real controller does from the API
    server: a fresh :class:`~budcore.scheduling.Scheduler` on the same queue configuration, every
    queued job re-submitted with its original queue timestamp (so FIFO order survives), every
    workload still holding quota (running, pods pending, or failed but not yet declared lost)
    re-admitted with its original flavor assignment and admission time through
    :meth:`~budcore.scheduling.Scheduler.admit_directly`, then the jobs that arrived during the
    downtime submitted. Jobs that finished meanwhile are simply absent, which returns their quota.
    Admission fair sharing's decayed usage history starts afresh, as it does in Kueue.
    """

    every_s: float
    downtime_s: float = 120.0
    exponential: bool = False


@dataclass(frozen=True, slots=True)
class EtaMeasurement:
    """Measure ETA accuracy: the ETA the scheduler gives each measured job at its submission.

    Every ``every``-th submitted job (the first, then every ``every``-th after it, in submission
    order) is estimated with :func:`~budcore.scheduling.forecast.eta_for` under ``forecast`` (a
    default runtime for jobs without an estimate, how far ahead to look); the report compares the
    estimated start with the job's actual first start. A forward run costs about what admitting
    the queued jobs costs, so measuring every job of a busy scenario multiplies its run time.
    """

    forecast: ForecastOptions = field(default_factory=ForecastOptions)
    every: int = 1

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValidationError("must be at least 1", path="eta.every")


@dataclass(frozen=True, slots=True)
class EngineOptions:
    start: datetime
    horizon_s: float | None = None  # stop at this simulated time (None: when all work is done)
    cycle_interval_s: float = 0.0  # 0: a cycle at every instant something changed
    sample_interval_s: float = 300.0
    failures: FailureModel | None = None
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    max_retries: int = 3
    seed: int = 0
    pods_ready_timeout_s: float | None = None  # Kueue waitForPodsReady.timeout (None: wait forever)
    controller_restart: ControllerRestartModel | None = None
    # A runaway alert is raised for a job whose progress (work saved plus its current run) passes
    # this many times its declared runtime (None: no alerts). It is an alert only: the job keeps
    # running. Work redone after a preemption or failure does not count: that is not the job's doing.
    runaway_factor: float | None = 3.0
    eta: EtaMeasurement | None = None  # measure ETA accuracy (None: do not)
    # Report the time figures (timeouts, runaway alerts) even if no job has a maximum duration or
    # a time window and none ran away: the scenario asked for them (see SimulationResult.time_report).
    report_time: bool = False
    # Quota-only: no nodes, so no pod placement; a workload runs from the instant it is admitted
    # (and the run's usage figures are quota, not node capacity).
    quota_only: bool = False
    # The cycle-latency model (None: off; admission is instantaneous). See latency.py.
    latency: LatencyModel | None = None
    # Every this many finished jobs, and every this many arrived jobs, move what the process holds
    # out of the cyclic garbage collector's sight (gc.freeze) until the run ends (0: leave the
    # collector alone). See Simulation.run: it keeps long runs linear in jobs; it changes
    # process-wide GC state for the run's duration, so it is for programs that own the process
    # (the CLI, sweeps, benchmarks).
    gc_freeze_every: int = 0
    # Money (a scenario's ``money`` block, see money.py): the submission guard, budget reviews and
    # metering (None: none, unless a job with a budget_limit arrives: then its reviews and metering).
    money: MoneyOptions | None = None
    # Gavel-style throughput per accelerator type (throughput.py; None: every flavor runs jobs
    # at the speed their runtimes are given for).
    throughput: Throughput | None = None


@dataclass(slots=True)
class JobRecord:
    """What happened to one job (the per-job output row)."""

    arrival: JobArrival
    cluster_queue: str = ""
    status: SimJobStatus = SimJobStatus.PENDING  # its mapping onto the domain's JobStatus: status.py
    admitted_s: float | None = None  # first admission
    last_admitted_s: float | None = None  # latest admission (what Kueue's perf harness reports)
    start_s: float | None = None  # first start
    end_s: float | None = None
    flavor: str = ""
    preemptions: int = 0
    failures: int = 0
    retries: int = 0
    lost_gpu_s: float = 0.0
    gpu_s: float = 0.0  # GPU-seconds actually used (including lost work)
    cost: Decimal = Decimal(0)
    lost_cost: Decimal = Decimal(0)  # the part of ``cost`` spent on work that was thrown away
    reason: str = ""
    # run bookkeeping
    done_s: float = 0.0  # work completed and saved (checkpointed) so far
    speed: float = 1.0  # work seconds per second in the current run (policy.throughput; else 1)
    run_start_s: float = 0.0
    epoch: int = 0
    nodes: tuple[str, ...] = ()
    gpus: float = 0  # GPUs requested (JobArrival.gpu_units: 0.5 for a pod of a 500m share)
    # what a restarted controller rebuilds its state from
    queue_ts: float | None = None  # the queue timestamp of the latest submission
    admission: Admit | None = None  # the latest admission decision (while it holds quota)
    admitted_at_s: float = 0.0  # when that admission happened
    evicting: bool = False  # chosen as a preemption victim, within its grace period
    # Why a cycle evicts it, while ``evicting`` ("": preempted), and the booking it makes room for.
    eviction: str = ""
    eviction_booking: str = ""
    evictions: int = 0  # times evicted by a cycle (a booking's start, a draining queue) and requeued
    # time limits
    exec_s: float = 0.0  # Kueue's accumulated past execution time: admitted time of earlier runs
    runaway_s: float | None = None  # when its progress passed runaway_factor × its estimate
    timed_out: bool = False  # stopped at its maximum duration (status failed, reason "timeout: ...")
    placed_usage: Mapping[tuple[str, str], int] | None = None  # what its running pods take, by flavor


def _in_submission_order(records: Iterable[JobRecord]) -> list[JobRecord]:
    """``records`` ordered by (submit time, job id), without a key tuple per job.

    A million records' ``(submit_s, job_id)`` keys took 64 MiB at the end of a run, the run's
    peak. The records come in entry order, which is submission order but for ties between jobs
    submitted at the same instant: one sort on the time (linear on an ordered list), then each run
    of equal times ordered by id, gives the same order as the tuple key (ids are unique).
    """
    ordered = sorted(records, key=_submit_s)
    start = 0
    count = len(ordered)
    for index in range(1, count + 1):
        if index == count or ordered[index].arrival.submit_s != ordered[start].arrival.submit_s:
            if index - start > 1:
                ordered[start:index] = sorted(ordered[start:index], key=_job_id)
            start = index
    return ordered


def _submit_s(record: JobRecord) -> float:
    return record.arrival.submit_s


def _job_id(record: JobRecord) -> str:
    return record.arrival.job_id


@dataclass(slots=True)
class UsageSeries:
    """Usage sampled on a fixed grid: per flavor and per ClusterQueue (GPUs in use)."""

    times: list[float] = field(default_factory=list)
    flavors: dict[str, list[float]] = field(default_factory=dict)
    cluster_queues: dict[str, list[float]] = field(default_factory=dict)
    # Every resource the ClusterQueues cover, in units (GPUs, cores, bytes): in use per
    # (flavor, resource) on the flavor's nodes, and quota held per (ClusterQueue, resource).
    flavor_resources: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    quota_held: dict[tuple[str, str], list[float]] = field(default_factory=dict)


@dataclass(slots=True)
class EngineStats:
    events: int = 0
    cycles: int = 0
    admissions: int = 0
    preemption_decisions: int = 0
    preemptions: int = 0
    evictions: int = 0  # workloads evicted by a cycle (booking starts, draining queues), requeued
    placement_waits: int = 0  # admitted workloads whose pods had to wait for free nodes
    pods_ready_timeouts: int = 0
    node_failures: int = 0
    controller_restarts: int = 0
    timeouts: int = 0  # jobs stopped at their maximum duration
    runaway_alerts: int = 0  # jobs whose progress passed runaway_factor × their estimate
    wall_s: float = 0.0
    end_s: float = 0.0


@dataclass(slots=True)
class SimulationResult:
    records: list[JobRecord]
    series: UsageSeries
    stats: EngineStats
    # time-integrated GPU usage (GPU-seconds) per flavor and per ClusterQueue
    flavor_gpu_s: dict[str, float]
    cq_gpu_s: dict[str, float]
    flavor_capacity: dict[str, int]  # GPUs per flavor
    cq_nominal: dict[str, int]  # nominal GPUs per ClusterQueue
    horizon_s: float
    node_gpus: dict[str, int] = field(default_factory=dict)  # GPUs per node (for per-GPU plots)
    # ETA accuracy (only with EngineOptions.eta): each measured job's estimated start, seconds from
    # the start of the run (None: the forecast could not place it within its horizon).
    etas: dict[str, float | None] | None = None
    # Whether the report shows the time figures: the scenario asked (EngineOptions.report_time), a
    # job had a maximum duration or a time window, deadline boosting was on, or a job ran away.
    time_report: bool = False
    runaway_factor: float | None = None
    # Each capacity booking of the run (by start, then name): how its owner used it.
    reservations: list[BookingUse] = field(default_factory=list)
    # Every resource the ClusterQueues cover (see UsageSeries), in units: the time integral of what
    # is in use per (flavor, resource) and its capacity on the flavor's schedulable nodes; the time
    # integral of the quota held per (ClusterQueue, resource) and its nominal quota.
    resources: tuple[str, ...] = ()
    flavor_resource_s: dict[tuple[str, str], float] = field(default_factory=dict)
    flavor_resource_capacity: dict[tuple[str, str], float] = field(default_factory=dict)
    quota_held_s: dict[tuple[str, str], float] = field(default_factory=dict)
    cq_nominal_quota: dict[tuple[str, str], float] = field(default_factory=dict)
    quota_only: bool = False  # no nodes: capacity figures are undefined
    gpu_resource: str = "nvidia.com/gpu"  # the resource the GPU figures (flavor_gpu_s, ...) count
    # Every pipeline run of the scenario's workload.pipelines (None: it has none), see pipelines.py.
    pipelines: list[RunOutcome] | None = None
    # What the money machinery did (None: the run had none), see money.py.
    money: MoneyOutcome | None = None
    # Physical GPU use and fragmentation when GPU shares were placed (None: none), see sharing.py.
    gpu_sharing: SharingOutcome | None = None


@dataclass(frozen=True, slots=True)
class BookingUse:
    """A capacity booking over the run: its owner's ``use`` of it (milli-unit-seconds of its
    resource, measured up to the end of the run), the workloads ``evicted`` (and requeued) to make
    room for it at its start, and ``price``, what the engine bills a unit-hour of its resource in
    its flavor (the flavor's price per GPU-hour for the GPU resource; None: not priced)."""

    reservation: Reservation
    start_s: float  # seconds from the start of the run
    end_s: float
    use: ReservationUse
    evicted: int
    price: Decimal | None


@dataclass(slots=True)
class _BookingRun:
    """A run of a job a booking serves: when its pods ran and how much of the booked resource."""

    start_s: float
    end_s: float | None
    amount: int  # milli-units of the booked flavor and resource


ProgressFn = Callable[[float, int], None]  # (simulated seconds, jobs finished)


class Simulation:
    """One run. Build it, call :meth:`run` once.

    ``cluster`` builds the cluster backend from the nodes and the run's virtual clock (default:
    :class:`~budcore_adapters.inmemory.InMemoryClusterBackend`); the engine calls it only through
    the :class:`~budcore.ports.simulated_cluster.SimulatedCluster` port. ``observer`` is called
    after every event; it may read :attr:`now_s`, :attr:`records`, :attr:`running`,
    :attr:`controller_up`, :attr:`backend` and :attr:`scheduler`. ``deadline_boost`` turns on
    deadline-aware ordering (:meth:`~budcore.scheduling.Scheduler.boost_deadlines` on the sample
    clock, like ``aging``). ``pipelines`` are runs of pipelines that arrive with the workload
    (:mod:`budcore_simulator.pipelines`).
    """

    def __init__(
        self,
        nodes: Sequence[Node],
        queues: QueueConfig,
        arrivals: Iterable[JobArrival],
        *,
        options: EngineOptions,
        policy: AdmissionPolicy | None = None,
        prices: Mapping[str, Decimal] | None = None,
        gpu_resource: str = "nvidia.com/gpu",
        progress: ProgressFn | None = None,
        observer: Callable[[Simulation, float], None] | None = None,
        preemption: PreemptionPolicy | None = None,
        preemption_budget: PreemptionBudget | None = None,
        aging: AgingPolicy | None = None,
        cluster: ClusterFactory | None = None,
        deadline_boost: DeadlineBoost | None = None,
        reservations: Sequence[Reservation] = (),
        pipelines: Sequence[PipelineWorkload] = (),
    ) -> None:
        self.options = options
        self._aging = aging
        self._boost = deadline_boost
        self._preemption = preemption
        self._budget = preemption_budget
        self._observer = observer
        self._clock = _SimClock(options.start)
        self._at_s, self._at_dt = math.nan, options.start  # the last instant _at made (none yet)
        make_cluster: ClusterFactory = cluster or InMemoryClusterBackend
        self.backend: SimulatedCluster = make_cluster(nodes, self._clock)
        backend = self.backend
        self._sharing = (  # GPU shares packed onto devices: sampled once the first share is placed
            SharingSampler(backend, gpu_resource)
            if isinstance(backend, InMemoryClusterBackend) and not options.quota_only
            else None
        )
        self._policy = policy = _knowing_flavor_types(policy or AdmissionPolicy(), queues, nodes)
        self.scheduler = Scheduler(
            queues, policy, preemption, preemption_budget, deadline_boost=deadline_boost
        )
        self._reservations = tuple(reservations)
        _book(self.scheduler, self._reservations)
        self.queues = queues
        self.prices = dict(prices or {})
        self.gpu_resource = gpu_resource
        self._arrivals: Iterator[JobArrival] = iter(arrivals)
        self._progress = progress
        self._stop_requested = False  # request_stop(): end at the next clock event
        self._rng = random.Random(options.seed)
        self._heap: list[tuple[float, EventKind, int, Payload]] = []
        self._progress_events = 0  # events of a PROGRESS kind in the heap
        self._repairs = 0  # NODE_REPAIR events in the heap
        self._seq = 0
        self._records: dict[str, JobRecord] = {}
        self._jobs: dict[str, Job] = {}
        self._running: dict[str, JobRecord] = {}
        self._victim_info = _RunningVictims(self._running, self._clock, self.prices)
        # admitted, pods pending, in admission order
        self._unplaced = _PendingPods()
        # (pod set's id, count, assigned flavors) -> (the pod set, its placement, accelerator flavor)
        self._placements: dict[_PlacementKey, tuple[PodSet, PodSetPlacement, str]] = {}
        # A single-node job's node tuple, shared by every record of that node (48 bytes a job
        # at a million jobs otherwise; the backend's status gives each job its own copy).
        self._one_node: dict[str, tuple[str, ...]] = {}
        self._cycle_at: float | None = None
        self._flavor_used: dict[str, float] = {}
        self._cq_used: dict[str, float] = {}
        self._flavor_gpu_s: dict[str, float] = {}
        self._flavor_accelerators: dict[str, str | None] = {}  # flavor -> its type (policy.throughput)
        self._cq_gpu_s: dict[str, float] = {}
        self._last_integrate = 0.0
        self.series = UsageSeries()
        self.stats = EngineStats()
        self._finished = 0
        self._entered = 0  # jobs that arrived (see _freeze_every)
        self._frozen = False  # gc.freeze() was called during this run (see run)
        self._quota_only = options.quota_only
        accounts = _Accounts.of(queues, nodes, gpu_resource, options.quota_only)
        self._flavor_capacity = accounts.flavor_gpus
        self._cq_nominal = accounts.cq_nominal_gpus
        self._cq_nominal_quota = accounts.cq_nominal_quota
        self._resources = accounts.resources
        self._flavor_resource_capacity = accounts.flavor_resource_capacity
        for name in queues.flavors:
            self._flavor_used[name] = 0.0
            self._flavor_gpu_s[name] = 0.0
            self.series.flavors[name] = []
        for name in queues.cluster_queues:
            self._cq_used[name] = 0.0
            self._cq_gpu_s[name] = 0.0
            self.series.cluster_queues[name] = []
        # Quota held per (ClusterQueue, resource) and in use per (flavor, resource) (see usage.py).
        self._quota_held: Ledger = Ledger(sorted(self._cq_nominal_quota))
        self._in_use: Ledger = Ledger(sorted(accounts.flavor_keys))
        for key in self._quota_held.tracked():
            self.series.quota_held[key] = []
        for key in self._in_use.tracked():
            self.series.flavor_resources[key] = []
        # Cordoned nodes never run pods, so they neither fail nor count as capacity.
        self._node_names = sorted(n.name for n in nodes if n.schedulable)
        self._node_gpus = {n.name: n.allocatable.get(gpu_resource, 0) // 1000 for n in nodes}
        self._controller_up = True
        self._controller_rng = random.Random(f"{options.seed}/controller")
        self._deferred: list[tuple[EventKind, Payload]] = []  # controller work waiting for it to be up
        self._inbox: list[str] = []  # jobs that arrived while the controller was down
        # Time: cycles scheduled because the scheduler's time gates move then (next_wakeup), and
        # the last instant anything arrived or was admitted (see _idle).
        self._wakeups: set[float] = set()
        # Only time windows put jobs behind the scheduler's time gates here (the engine does retry
        # backoff itself), so cycles ask for the next wake-up only once a windowed job has arrived.
        self._windows = False
        # Tiresias's preemption: a running job reaching a LAS level wakes its queue (next_wakeup).
        ordering = self._policy.ordering
        self._las_preemption = ordering is not None and ordering.las_preemption
        self._last_progress_s = 0.0
        self._time_used = options.report_time or deadline_boost is not None
        self._etas: dict[str, float | None] | None = {} if options.eta is not None else None
        self._submitted = 0  # jobs submitted so far (which of them EtaMeasurement.every picks)
        # Evictions a cycle asks for keep running through the preemption grace period, as victims do.
        self._eviction_grace_s = (preemption or PreemptionPolicy()).grace_period.total_seconds()
        # The cycle-latency model: workloads wait outside the scheduler until they are heads, cycles
        # are spaced, quota comes back late and inadmissible workloads later still (latency.py).
        self._latency = options.latency
        self._next_cycle_s = 0.0  # the earliest instant the next cycle may start
        self._heads: HeadQueues | None = None
        self._requeues: set[str] = set()  # cohort roots with a REQUEUE in the heap
        if options.latency is not None:
            _check_latency_alone(options, aging, deadline_boost, self._reservations)
            tree = self.scheduler.tree
            self._heads = HeadQueues(
                {
                    name: cq.queueing_strategy is QueueingStrategy.STRICT_FIFO
                    for name, cq in queues.cluster_queues.items()
                },
                {name: tree.cluster_queues[name].root_key for name in queues.cluster_queues},
            )
        # Capacity bookings: the runs of the jobs each serves, the open ones by job, and the
        # workloads evicted for each (see BookingUse). The core names a booking in its evictions'
        # reason ("reservation <name> for <owner> starts at ..."), which is how they are told apart.
        self._booking_runs: dict[str, list[_BookingRun]] = {r.name: [] for r in self._reservations}
        self._open_booking_runs: dict[str, list[_BookingRun]] = {}
        self._booking_evictions: dict[str, int] = {r.name: 0 for r in self._reservations}
        self._eviction_prefixes = [(f"reservation {r.name} for ", r.name) for r in self._reservations]
        # Money (imported only when used): guard, budget reviews on their own clock, metering.
        self._money: MoneyLedger | None = None
        self._review_at: float | None = None  # the REVIEW in the heap, if any
        if options.money is not None:
            self._money = self._money_ledger(options.money)
        # Pipeline runs (imported only when a scenario has some: the pipeline engine is not small).
        self._pipelines: PipelineDriver | None = None
        if pipelines:
            if options.latency is not None:
                raise ValidationError("the cycle-latency model does not work with pipelines", path="latency")
            from .pipelines import PipelineDriver

            self._pipelines = PipelineDriver(
                self,
                pipelines,
                clock=self._clock,
                start=options.start,
                horizon_s=options.horizon_s,
                gpu_resource=gpu_resource,
            )

    def _event_handlers(self) -> dict[EventKind, _Handler]:
        """Each kind's handler (built per run, not kept: bound methods would make a cycle)."""
        return {
            EventKind.COMPLETION: self._on_completion,
            EventKind.TIMEOUT: self._on_timeout,
            EventKind.EVICTED: self._on_evicted,
            EventKind.RELEASE: self._on_release,
            EventKind.REQUEUE: self._on_requeue,
            EventKind.NODE_FAIL: self._on_node_fail,
            EventKind.CONTROLLER_UP: self._on_controller_up,
            EventKind.CONTROLLER_DOWN: self._on_controller_down,
            EventKind.FAILURE_DETECTED: self._on_failure_detected,
            EventKind.NODE_REPAIR: self._on_node_repair,
            EventKind.RETRY: self._on_retry,
            EventKind.PODS_TIMEOUT: self._on_pods_timeout,
            EventKind.ARRIVAL: self._on_arrival,
            EventKind.PIPELINE: self._on_pipeline,
            EventKind.PIPELINE_WAKE: self._on_pipeline_wake,
            EventKind.CYCLE: self._on_cycle,
            EventKind.SAMPLE: self._on_sample,
            EventKind.REVIEW: self._on_review,
        }

    # What an observer (and the preemption cost model) may read -------------------------------
    @property
    def now_s(self) -> float:
        """Simulated seconds since ``options.start``."""
        return self._clock.seconds

    @property
    def records(self) -> Mapping[str, JobRecord]:
        """Every job that has arrived so far, by id (live records: read, do not change them)."""
        return self._records

    @property
    def running(self) -> Mapping[str, JobRecord]:
        """The jobs whose pods are running now, by id."""
        return self._running

    @property
    def controller_up(self) -> bool:
        """Whether the scheduling controller is up (see :class:`ControllerRestartModel`)."""
        return self._controller_up

    # Event plumbing ----------------------------------------------------------------------------
    @overload
    def _push(self, at: float, kind: JobEventKind, payload: JobEpoch) -> None: ...
    @overload
    def _push(self, at: float, kind: NodeEventKind, payload: str) -> None: ...
    @overload
    def _push(self, at: float, kind: TickKind, payload: None = None) -> None: ...
    @overload
    def _push(self, at: float, kind: Literal[EventKind.RETRY], payload: str) -> None: ...  # the job's id
    @overload
    def _push(self, at: float, kind: Literal[EventKind.REQUEUE], payload: str) -> None: ...  # a cohort root
    @overload
    def _push(self, at: float, kind: Literal[EventKind.ARRIVAL], payload: JobArrival) -> None: ...
    @overload
    def _push(self, at: float, kind: Literal[EventKind.PIPELINE], payload: RunArrival) -> None: ...
    @overload
    def _push(self, at: float, kind: Literal[EventKind.PIPELINE_WAKE], payload: str) -> None: ...  # a run id

    def _push(self, at: float, kind: EventKind, payload: Payload = None) -> None:
        self._seq += 1
        if kind in PROGRESS:
            self._progress_events += 1
        elif kind in REPAIRS:
            self._repairs += 1
        heapq.heappush(self._heap, (at, kind, self._seq, payload))

    def _want_cycle(self, now: float) -> None:
        interval = self.options.cycle_interval_s
        at = max(now, self._next_cycle_s)  # the latency model's cycle period (0 without it)
        at = at if interval <= 0 else grid_ceil(at, interval)
        if self._cycle_at is None or at < self._cycle_at:
            self._cycle_at = at
            self._push(at, EventKind.CYCLE)

    def _want_wakeup(self, now: float) -> None:
        """A cycle at the next instant time alone changes what may be admitted (a held job's window
        opens, a pending one's closes), unless one is due by then anyway."""
        wake = self.scheduler.next_wakeup()
        if wake is None:
            return
        at = (wake - self.options.start).total_seconds()
        interval = self.options.cycle_interval_s
        if interval > 0:
            at = grid_ceil(at, interval)
        if at <= now or at in self._wakeups or (self._cycle_at is not None and self._cycle_at <= at):
            return  # a cycle no later than it is due: it asks again
        self._wakeups.add(at)
        self._cycle_at = at
        self._push(at, EventKind.CYCLE)

    def _at(self, now: float) -> datetime:
        """The instant ``now`` seconds into the run. The last one is kept: an instant's arrival,
        cycle and releases all ask for it (datetimes are immutable, so sharing one is exact)."""
        if now != self._at_s:
            self._at_s = now
            self._at_dt = self.options.start + timedelta(seconds=now)
        return self._at_dt

    def _next_arrival(self) -> None:
        arrival = next(self._arrivals, None)
        if arrival is None:
            return
        horizon = self.options.horizon_s
        if horizon is not None and arrival.submit_s > horizon:
            return
        self._push(arrival.submit_s, EventKind.ARRIVAL, arrival)

    # Run ---------------------------------------------------------------------------------------
    def run(self) -> SimulationResult:
        """Run to the horizon (or until nothing can change) and return what happened.

        With ``options.gc_freeze_every`` the records of finished jobs, which every output needs
        and nothing frees before the run ends, are frozen out of the cyclic collector every so
        many jobs: CPython's full collections otherwise rescan all of them, which made a million
        jobs about 25% slower per job than twenty thousand. The same happens every so many
        arrivals, for the jobs waiting in a backlog (80,000 queued jobs made the full collections
        of a run 7% of its time): a frozen object that dies is still freed at once by reference
        counting, only a reference cycle among frozen objects would wait for the end of the run.
        Young garbage is collected before each freeze (frozen cycles would only be freed at the
        end), and the end of the run unfreezes everything, even on error.
        """
        try:
            return self._run()
        finally:
            if self._frozen:
                gc.unfreeze()
                self._frozen = False

    def request_stop(self) -> None:
        """End the run at the next clock event (a usage sample), as if the horizon were then.

        For an interrupted command (Ctrl-C): the result is what happened up to that instant, with
        every figure consistent, because the loop stops between two events rather than inside one.
        Only clock events check it (they come every ``sample_interval``), so the per-event loop
        pays nothing. Safe to call from a signal handler: it only sets a flag.
        """
        self._stop_requested = True

    @property
    def stopped(self) -> bool:
        """Whether :meth:`request_stop` was called (the result then ends early)."""
        return self._stop_requested

    def _run(self) -> SimulationResult:
        started = time.perf_counter()
        self._next_arrival()
        if self.options.failures is not None:
            for name in self._node_names:
                self._push(
                    self._rng.expovariate(1.0 / self.options.failures.mtbf_s), EventKind.NODE_FAIL, name
                )
        if self._pipelines is not None:
            self._pipelines.begin()
        self._push(0.0, EventKind.SAMPLE)
        if self._reservations:
            self._want_cycle(0.0)  # the scheduler learns the time: its next wake-up is a booking's
        if self.options.controller_restart is not None:
            self._push(self._next_restart_gap(), EventKind.CONTROLLER_DOWN)
        horizon = self.options.horizon_s
        handlers = self._event_handlers()
        heap = self._heap
        while heap:
            at, kind, _, payload = heap[0]
            if horizon is not None and at > horizon:
                break
            if kind in CLOCKS and (self._stop_requested or self._idle()):
                break  # only clocks left ticking (nothing more can happen), or asked to stop
            heapq.heappop(heap)
            if kind in PROGRESS:
                self._progress_events -= 1
            elif kind in REPAIRS:
                self._repairs -= 1
            self._advance(at)
            self.stats.events += 1
            if not self._controller_up and kind in CONTROLLER_WORK:
                self._deferred.append((kind, payload))
            else:
                handlers[kind](at, payload)
            if self._observer is not None:
                self._observer(self, at)
        clock = self._clock
        end = horizon if horizon is not None and not self._stop_requested else clock.seconds
        self._advance(max(end, clock.seconds))
        self.stats.end_s = clock.seconds
        self.stats.wall_s = time.perf_counter() - started
        for record in self._running.values():
            # Unfinished at the horizon is not lost: account the work done so far.
            self._account_run(record, clock.seconds, saved=True)
        self._explain_pending()
        # The driver holds this simulation (and its ports the driver): let go of it once it has
        # told how its runs went, so the simulation is freed by reference counting as before.
        driver, self._pipelines = self._pipelines, None
        outcomes = driver.finish() if driver is not None else None
        money = self._money.outcome(clock.seconds) if self._money is not None else None
        stats = self.stats
        return SimulationResult(
            records=_in_submission_order(self._records.values()),
            series=self.series,
            stats=self.stats,
            flavor_gpu_s=self._flavor_gpu_s,
            cq_gpu_s=self._cq_gpu_s,
            flavor_capacity=self._flavor_capacity,
            cq_nominal=self._cq_nominal,
            horizon_s=clock.seconds,
            node_gpus=self._node_gpus,
            etas=self._etas,
            time_report=self._time_used or bool(stats.timeouts or stats.runaway_alerts),
            runaway_factor=self.options.runaway_factor,
            reservations=self._booking_uses(clock.seconds),
            resources=self._resources,
            flavor_resource_s={k: v / 1000 for k, v in self._in_use.integrals(clock.seconds).items()},
            flavor_resource_capacity={k: v / 1000 for k, v in self._flavor_resource_capacity.items()},
            quota_held_s={k: v / 1000 for k, v in self._quota_held.integrals(clock.seconds).items()},
            cq_nominal_quota={k: v / 1000 for k, v in self._cq_nominal_quota.items()},
            quota_only=self._quota_only,
            gpu_resource=self.gpu_resource,
            pipelines=outcomes,
            money=money,
            gpu_sharing=None if self._sharing is None else self._sharing.outcome(),
        )

    def _booking_uses(self, end_s: float) -> list[BookingUse]:
        """Each booking's use by its owner up to ``end_s`` (the end of the run), in booking order."""
        start = self.options.start
        until = self._at(end_s)
        out: list[BookingUse] = []
        for reservation in sorted(self._reservations, key=lambda r: (r.start, r.name)):
            runs = [
                (
                    start + timedelta(seconds=run.start_s),
                    None if run.end_s is None else start + timedelta(seconds=run.end_s),
                    run.amount,
                )
                for run in self._booking_runs[reservation.name]
            ]
            price = self.prices.get(reservation.flavor) if reservation.resource == self.gpu_resource else None
            out.append(
                BookingUse(
                    reservation=reservation,
                    start_s=(reservation.start - start).total_seconds(),
                    end_s=(reservation.end - start).total_seconds(),
                    use=reservation_use(reservation, runs, until),
                    evicted=self._booking_evictions[reservation.name],
                    price=price,
                )
            )
        return out

    def _explain_pending(self) -> None:
        """Give each job still queued at the end the scheduler's last reason for it.

        A job that never ran (larger than its quota could ever be, or still behind others at the
        horizon) would otherwise leave an empty reason in the records; the scheduler's own words
        (``insufficient quota for nvidia.com/gpu in flavor h100: requested 32, maximum ever
        available 16 …``) say which. Jobs it never reached keep the engine's reason, if any.
        """
        scheduler = self.scheduler
        heads = self._heads
        for job_id, record in self._records.items():
            if record.status is not SimJobStatus.QUEUED:
                continue
            if heads is not None and job_id in heads:
                record.reason = (
                    f"inadmissible in ClusterQueue {record.cluster_queue}: waiting for quota to be "
                    "released in its cohort"
                    if heads.is_inadmissible(job_id)
                    else f"waiting to be the head of ClusterQueue {record.cluster_queue}"
                )
                continue
            why = scheduler.pending_reason(job_id)
            if why is not None:
                record.reason = why
                continue
            held = scheduler.gates.held(job_id) if len(scheduler.gates) else None
            if held is not None:
                record.reason = f"held: {held.reason}"
                continue
            # A workload behind the head of its request's shape waits for the same thing as the head.
            head = scheduler.shape_head(job_id)
            head_why = scheduler.pending_reason(head) if head is not None and head != job_id else None
            if head_why is not None:
                record.reason = f"behind {head}, which asks the same: {head_why}"
            elif not record.reason:
                record.reason = f"waiting in ClusterQueue {record.cluster_queue}"

    def _idle(self) -> bool:
        """Nothing can change any more: no job runs and no event could free or bring work.

        Pending jobs may remain (e.g. larger than any node or than their quota could ever be):
        without a running job, an arrival, a retry, or a repair while work waits for capacity, no
        later cycle could admit them, so the run ends instead of ticking the sample clock forever.
        """
        if self._progress_events > len(self._wakeups) or (self._running and not self._open_ended_only()):
            return False
        money = self._money
        if money is not None and money.paused and money.waits_for_period():
            return False  # a paused job resumes when its budget's period rolls over (a review's work)
        # Cycles waiting for a time window are progress too, but a windowed job that can never be
        # admitted would have its window open and close forever: once nothing has arrived or been
        # admitted for longer than any window takes to open, only the clocks are left.
        if self._wakeups and self._clock.seconds - self._last_progress_s < _STALLED_S:
            return False
        # Nodes under repair come back, but that only matters to admitted work waiting for nodes
        # (admission is by quota, which a repair does not change; a job that can never be admitted
        # waits for nothing a repair brings). With failures on, some node is nearly always under
        # repair: counting repairs as progress for anything else kept runs going forever.
        return not (self._repairs and self._unplaced)

    def _open_ended_only(self) -> bool:
        """Every running job runs until its pipeline run ends (a SERVICE step), and so ends only
        when something else happens: running, they are no progress."""
        driver = self._pipelines
        return driver is not None and all(driver.is_open_ended(job_id) for job_id in self._running)

    def _advance(self, now: float) -> None:
        dt = now - self._last_integrate
        if dt > 0:
            for name, used in self._flavor_used.items():
                if used:
                    self._flavor_gpu_s[name] += used * dt
            for name, used in self._cq_used.items():
                if used:
                    self._cq_gpu_s[name] += used * dt
            self._last_integrate = now
        clock = self._clock
        if now > clock.seconds:
            clock.seconds = now

    # Handlers ----------------------------------------------------------------------------------
    def _on_arrival(self, now: float, arrival: JobArrival) -> None:
        self._next_arrival()
        self._enter(arrival, None, now)

    def _enter(self, arrival: JobArrival, job: Job | None, now: float) -> None:
        """A job arrives: its record, then its queue (``job``: the Job it is; None: the one its
        arrival describes, :func:`arrival_to_job`)."""
        self._last_progress_s = now
        if arrival.time_window is not None:
            self._time_used = self._windows = True
        elif arrival.max_runtime_s is not None:
            self._time_used = True
        if arrival.job_id in self._records:
            raise ValidationError(f"duplicate job id {arrival.job_id!r} in the workload", path="workload")
        record = JobRecord(arrival=arrival, gpus=arrival.gpu_units)
        self._records[arrival.job_id] = record
        self._entered += 1
        self._freeze_every(self._entered)
        if job is None:
            job = arrival_to_job(
                arrival,
                self.options.start,
                gpu_resource=self.gpu_resource,
                max_retries=self.options.max_retries,
            )
        self._jobs[job.id] = job
        if job.budget_limit is not None and self._money is None:
            self._meter_from_now()
        if not self._controller_up:
            record.reason = "waiting for the scheduling controller to restart"
            self._inbox.append(job.id)
            return
        self._submit_new(record, job, now)

    def _submit_new(self, record: JobRecord, job: Job, now: float) -> None:
        """A new job enters its queue, or is rejected (unknown LocalQueue, invalid request, a run
        that can never fit its time window); a job outside its time window is held by the scheduler
        until it opens (queued, with the reason). Under the latency model it waits in its
        ClusterQueue outside the scheduler until it is a head (see :meth:`_feed_heads`).

        With money, the submission guard decides first: a refused job ends ``refused``, never
        queued; a warned one is queued and the warning kept."""
        money = self._money
        if money is not None:
            verdict = money.guard(job, self.scheduler, now)
            if verdict is not None and verdict.decision == "refuse":
                money.refused(verdict, now)
                record.cluster_queue = verdict.cluster_queue
                record.status = SimJobStatus.REFUSED
                record.reason = f"refused by the submission guard: {verdict}"
                self._finish(record, now)
                return
            if verdict is not None and verdict.decision == "warn":
                money.warned(verdict, now)
            money.entered(job)
        if self._heads is not None:
            self._submit_head(record, job, now)
            return
        try:
            queued = self.scheduler.submit(job, now=self._at(now))
        except Exception as exc:
            record.status = SimJobStatus.REJECTED
            record.reason = str(exc)
            self._finish(record, now)
            return
        if isinstance(queued, Held):
            record.cluster_queue = self.scheduler.cluster_queue_of(job.id) or ""
            record.reason = f"held: {queued.reason}"
        else:
            record.cluster_queue = queued.cluster_queue
            record.reason = ""
        record.queue_ts = queued.timestamp
        record.status = SimJobStatus.QUEUED
        self._want_cycle(now)
        eta = self.options.eta
        if eta is not None:
            if self._submitted % eta.every == 0:
                self._measure_eta(job, now, eta)
            self._submitted += 1

    def _measure_eta(self, job: Job, now: float, eta: EtaMeasurement) -> None:
        """The ETA the scheduler gives ``job`` as it is submitted: its estimated start, kept."""
        assert self._etas is not None
        estimate = eta_for(self.scheduler, job, self._at(now), options=eta.forecast)
        start = estimate.start
        self._etas[job.id] = None if start is None else (start - self.options.start).total_seconds()

    # Pipelines: the driver's events, and what it asks of the engine ------------------------------
    def _on_pipeline(self, now: float, arrival: RunArrival) -> None:
        assert self._pipelines is not None  # only a run with pipelines schedules their events
        self._last_progress_s = now
        self._pipelines.on_arrival(arrival)

    def _on_pipeline_wake(self, now: float, run_id: str) -> None:
        assert self._pipelines is not None
        self._pipelines.on_wake(run_id)

    def start_pipeline_run(self, arrival: RunArrival) -> None:
        """Schedule a pipeline run's start (the driver keeps one in the heap at a time)."""
        horizon = self.options.horizon_s
        if horizon is None or arrival.at_s <= horizon:
            self._push(arrival.at_s, EventKind.PIPELINE, arrival)

    def wake_pipeline(self, at_s: float, run_id: str) -> None:
        """Advance pipeline run ``run_id`` at ``at_s`` (now or later)."""
        self._push(max(at_s, self._clock.seconds), EventKind.PIPELINE_WAKE, run_id)

    def submit_pipeline_job(self, arrival: JobArrival, job: Job) -> None:
        """A pipeline step's ``job`` arrives now, described by ``arrival``: from here on it is a
        job like any other (queued, admitted, placed, preempted, failed, reported)."""
        self._enter(arrival, job, self._clock.seconds)

    def cancel_pipeline_job(self, job_id: str, reason: str) -> None:
        """Stop a pipeline step's job now, wherever it stands, and end it ``cancelled``.

        Queued, it leaves its queue; holding quota (pods running or pending, a victim in its grace
        period, pods on a failed node not yet declared lost), it gives the quota and its nodes back
        at once; waiting out a retry's backoff, it is not requeued. A job that has ended is left
        as it is. The work it did counts as done (``lost_gpu_s`` is for work the system threw away).
        """
        self._cancel(job_id, f"cancelled: {reason}")

    def _cancel(self, job_id: str, reason: str) -> None:
        """End a job ``cancelled`` now with ``reason`` (see :meth:`cancel_pipeline_job`); a job a
        budget paused holds nothing and is simply no longer resumed."""
        record = self._records.get(job_id)
        if record is None or record.status.is_final:
            return
        now = self._clock.seconds
        status = record.status
        up = self._controller_up
        if status is SimJobStatus.PENDING:
            self._inbox.remove(job_id)
        elif status is SimJobStatus.QUEUED and record.admission is None:
            if up:
                self.scheduler.withdraw(job_id)
        elif status not in (SimJobStatus.RETRYING, SimJobStatus.PAUSED):
            if status is SimJobStatus.RUNNING:
                self._stop_running(record, now, saved=True)
                if not self._quota_only:
                    self.backend.preempt(JobId(job_id), timedelta(0))
            elif job_id in self._unplaced:
                self._unplaced.remove(job_id)
            if not self._quota_only:
                self.backend.forget(JobId(job_id))
            if record.admission is not None:
                if up:  # else the rebuild on restart leaves the cancelled job out
                    self.scheduler.release(job_id, self._at(now))
                    self._released(record, now)
                record.exec_s += now - record.admitted_at_s
                self._drop_admission(record, now)
        record.epoch += 1  # whatever this run had scheduled (completion, eviction, timeout) is void
        record.evicting = False
        record.eviction = record.eviction_booking = ""
        record.status = SimJobStatus.CANCELLED
        record.reason = reason
        self._finish(record, now)
        self._place_waiting(now)
        self._want_cycle(now)

    def end_pipeline_service(self, job_id: str) -> None:
        """A pipeline run ended: its SERVICE job, still running, completes now (its runtime becomes
        the time it ran); one that is not running (requeued after an eviction, say) is cancelled."""
        record = self._records.get(job_id)
        if record is None or record.status.is_final:
            return
        if record.status is not SimJobStatus.RUNNING:
            self.cancel_pipeline_job(job_id, "its pipeline run ended")
            return
        now = self._clock.seconds
        self._stop_running(record, now, saved=True)
        record.arrival = record.arrival._replace(runtime_s=record.done_s)
        record.epoch += 1  # its open-ended COMPLETION is void
        self._complete(record, now)

    def _on_cycle(self, now: float, _: None) -> None:
        self._cycle_at = None
        wakeups = self._wakeups
        if wakeups:
            wakeups.discard(now)
        if not self._controller_up:
            return  # the controller asks for a cycle again when it is back
        if self._heads is not None and not self._heads.has_active():
            return  # Kueue's scheduler waits for a head: no cycle, and no cycle period spent
        self.stats.cycles += 1
        fed = self._feed_heads(now) if self._heads is not None else None
        untried = self._heads is not None and self._heads.has_active()  # heads left for later cycles
        evicting = set(self.scheduler.evicting) if fed is not None else set()
        result = self.scheduler.cycle(self._at(now), self._victim_info)
        if self._money is not None and result.admitted:
            self._money.admitted(result.admitted, self.scheduler)  # who lends what they borrow
        if fed is not None:
            self._take_back_heads(fed, result, now, untried=untried, evicting=evicting)
        if result.admitted:
            self._last_progress_s = now
        for admit in result.admitted:
            self._admitted(admit, now)
        for decision in result.preemptions:
            if decision.status is DecisionStatus.PREEMPT:
                self.stats.preemption_decisions += 1
                for victim in decision.victims:
                    self._evict(victim.job_id, now, decision.grace_period.total_seconds())
        for eviction in result.evictions:
            self._evict(eviction.job_id, now, self._eviction_grace_s, eviction)
        if self._windows or self._reservations or self._las_preemption:
            self._want_wakeup(now)

    def _evict(self, job_id: str, now: float, grace_s: float, eviction: Evict | None = None) -> None:
        """Start evicting a preemption victim, or a workload the cycle evicts (``eviction``: room a
        booking needs at its start, a draining queue): it keeps running through its grace period,
        then it is stopped and requeued (:meth:`_on_evicted`)."""
        record = self._records.get(job_id)
        if record is None or record.evicting:
            return
        unplaced = record.status is SimJobStatus.ADMITTED and job_id in self._unplaced
        if not unplaced and record.status is not SimJobStatus.RUNNING:
            return  # its pods are gone already (a failed node): the controller releases it
        if eviction is not None:
            record.eviction = eviction.reason
            record.eviction_booking = next(
                (name for prefix, name in self._eviction_prefixes if eviction.reason.startswith(prefix)), ""
            )
        if unplaced:
            # Quota held, pods never started: nothing to stop, give the quota back now.
            self._unplaced.remove(job_id)
            self._requeue_victim(record, now)
            return
        record.evicting = True
        self._push(now + grace_s, EventKind.EVICTED, JobEpoch(job_id, record.epoch))

    def _on_evicted(self, now: float, event: JobEpoch) -> None:
        job_id, epoch = event
        record = self._records[job_id]
        if record.epoch != epoch or record.status is not SimJobStatus.RUNNING or not record.evicting:
            return  # it completed or failed within its grace period
        self._stop_running(record, now, saved=False)
        if not self._quota_only:
            self.backend.preempt(JobId(job_id), timedelta(0))
            self.backend.forget(JobId(job_id))
        delay = self._latency.release_delay_s if self._latency is not None else 0.0
        if delay > 0:  # stopped; its quota comes back (and it is requeued) after the release delay
            record.status = SimJobStatus.QUEUED
            record.reason = "preempted; its quota is being released"
            self._push(now + delay, EventKind.RELEASE, JobEpoch(job_id, record.epoch))
        else:
            self._requeue_victim(record, now)
        self._place_waiting(now)

    def _requeue_victim(self, record: JobRecord, now: float) -> None:
        job_id = record.arrival.job_id
        record.evicting = False
        evicted_for, record.eviction = record.eviction, ""
        booking, record.eviction_booking = record.eviction_booking, ""
        if evicted_for:
            record.evictions += 1
            self.stats.evictions += 1
            if booking:
                self._booking_evictions[booking] += 1
        else:
            record.preemptions += 1
            self.stats.preemptions += 1
        at = self._at(now)
        self.scheduler.release(job_id, at)
        self._released(record, now)
        self._drop_admission(record, now)
        record.exec_s += now - record.admitted_at_s
        # Kueue requeues an evicted workload by its eviction time (requeuingStrategy: Eviction).
        record.queue_ts = self._queue_again(self._jobs[job_id], at.timestamp(), now)
        record.status = SimJobStatus.QUEUED
        record.reason = f"evicted ({evicted_for}); requeued" if evicted_for else "preempted; requeued"
        self._want_cycle(now)
        if self._pipelines is not None:
            self._pipelines.job_changed(job_id, now)

    def _drop_admission(self, record: JobRecord, now: float) -> None:
        """The job no longer holds quota (its release, or its loss to a restarted controller)."""
        admission = record.admission
        if admission is not None:
            self._quota_held.add_held(admission.cluster_queue, admission.usage, now, -1)
            record.admission = None

    def _admitted(self, admit: Admit, now: float) -> None:
        """Quota reserved: build the workload and try to place it (quota-only: it runs at once,
        there are no nodes to place it on).

        Each pod set gets what Kueue's job controller injects into its template: the assigned
        flavors' ``nodeLabels`` as node selector, and their ``tolerations`` merged into the pod
        set's own (:meth:`PodSetPlacement.merge_tolerations`, Kueue's ``podset.Merge``), so the
        pods may run on the flavor's tainted nodes."""
        job = self._jobs[admit.job_id]
        record = self._records[admit.job_id]
        record.cluster_queue = admit.cluster_queue
        record.admission = admit
        self._quota_held.add_held(admit.cluster_queue, admit.usage, now, 1)
        record.admitted_at_s = now
        record.epoch += 1
        if record.admitted_s is None:
            record.admitted_s = now
        record.last_admitted_s = now
        limit = record.arrival.max_runtime_s
        if limit is not None:  # what is left of its maximum duration after its earlier runs
            self._push(
                now + max(0.0, limit - record.exec_s), EventKind.TIMEOUT, JobEpoch(job.id, record.epoch)
            )
        if self._quota_only:
            flavor = next(
                (f for (f, r) in admit.usage if is_accelerator(r)), next(iter(admit.usage), ("", ""))[0]
            )
            self._start(record, (), flavor, now)
            return
        placements = []
        flavor = ""
        # Partial admission (PodSet.min_count): as many pods as admitted; the run keeps its
        # estimated duration (how a smaller job's runtime would stretch is not modelled).
        pod_sets = job.request.pod_sets
        counts = admit.pod_counts or [p.count for p in pod_sets]
        for pod_set, count in zip(pod_sets, counts, strict=True):
            placement, accelerator = self._placement(pod_set, count, admit.flavors.get(pod_set.name, {}))
            flavor = flavor or accelerator
            placements.append(placement)
        flavor = flavor or next(iter(admit.usage), ("", ""))[0]
        workload = Workload(job_id=job.id, tenant=job.tenant, pod_sets=tuple(placements))
        if not self._place(record, workload, flavor, now):
            record.status = SimJobStatus.ADMITTED
            record.reason = (
                "admitted; pods pending: no node it may run on (node selector, taints) has enough "
                "free resources"
            )
            self.stats.placement_waits += 1
            self._unplaced.add(job.id, workload, flavor, self.backend.refusal_key(workload))
            timeout = self.options.pods_ready_timeout_s
            if timeout is not None:
                self._push(now + timeout, EventKind.PODS_TIMEOUT, JobEpoch(job.id, record.epoch))

    def _placement(
        self, pod_set: PodSet, count: int, assigned: Mapping[str, str]
    ) -> tuple[PodSetPlacement, str]:
        """``count`` pods of ``pod_set`` admitted with the flavors ``assigned`` (resource → flavor),
        as the backend is asked to place them, and the flavor of its first accelerator ("": none).

        Each pod set gets what Kueue's job controller injects into its template
        (:func:`admission_placement`, Kueue's ``FromAssignment``, which reads only the pod set's
        own assignment): the assigned flavors' ``nodeLabels`` as node selector, their
        ``tolerations`` merged into the pod set's own. The placement is a function of the pod set,
        the count and the assignment, and an immutable model holding no job id, so it is built and
        validated once per combination and shared by every workload of it (jobs of one shape
        share their request's pod sets, see ``workload.model._request``). The memo holds each pod
        set it was built for, so an ``id`` in its key cannot be reused by another pod set.
        """
        key = (id(pod_set), count, tuple(assigned.items()))
        known = self._placements.get(key)
        if known is not None:
            return known[1], known[2]
        accelerator = ""
        for resource, flavor_name in assigned.items():
            if is_accelerator(resource) and not accelerator:
                accelerator = flavor_name
        injected = admission_placement({pod_set.name: assigned}, self.queues.flavors)
        selector, added = injected[pod_set.name]
        tolerations = pod_set.tolerations
        if added:
            tolerations = PodSetPlacement.merge_tolerations(tolerations, added)
        placement = PodSetPlacement(
            name=pod_set.name,
            count=count,
            resources=pod_set.resources,
            node_selector=selector,
            flavors=dict(assigned),
            tolerations=tolerations,
        )
        if len(self._placements) >= _PLACEMENTS_MAX:
            self._placements.clear()
        self._placements[key] = (pod_set, placement, accelerator)
        return placement, accelerator

    def _place(self, record: JobRecord, workload: Workload, flavor: str, now: float) -> bool:
        # try_submit, not submit: most attempts from _place_waiting fail, and a refusal should
        # cost no formatted error message.
        status = self.backend.try_submit(workload)
        if status is None:
            return False
        self._start(record, status.nodes, flavor, now)
        return True

    def _start(self, record: JobRecord, nodes: tuple[str, ...], flavor: str, now: float) -> None:
        """The job's pods run (on ``nodes``; none in a quota-only run): it runs to completion."""
        job_id = record.arrival.job_id
        self.stats.admissions += 1
        record.evicting = False
        record.eviction = record.eviction_booking = ""
        record.status = SimJobStatus.RUNNING
        record.reason = ""
        record.flavor = flavor
        if len(nodes) == 1:  # one shared tuple per node: kept by every finished job's record
            nodes = self._one_node.setdefault(nodes[0], nodes)
        record.nodes = nodes
        record.run_start_s = now
        record.speed = self._speed(record.arrival, flavor)
        if record.start_s is None:
            record.start_s = now
        self._running[job_id] = record
        self._flavor_used[flavor] = self._flavor_used.get(flavor, 0.0) + record.gpus
        self._cq_used[record.cluster_queue] = self._cq_used.get(record.cluster_queue, 0.0) + record.gpus
        admission = record.admission
        record.placed_usage = admission.usage if admission is not None else None
        if record.placed_usage:
            self._in_use.add_in_use(record.placed_usage, now, 1)
        remaining = (record.arrival.runtime_s - record.done_s) / record.speed
        self._push(now + remaining, EventKind.COMPLETION, JobEpoch(job_id, record.epoch))
        money = self._money
        if money is not None:
            job = self._jobs[job_id]
            money.run_started(
                job,
                record.cluster_queue,
                flavor,
                record.arrival.total_gpus,  # a share is metered as the device it occupies
                record.arrival.priority_label,
                now,
                base=(record.cost, record.lost_cost),
            )
            self._want_review(now)
        if self._reservations:
            self._open_booked_runs(record, now)
        if self._pipelines is not None:
            self._pipelines.job_changed(job_id, now, started=True)

    def _speed(self, arrival: JobArrival, flavor: str) -> float:
        """Work seconds per second of ``arrival`` on ``flavor`` (policy.throughput; else 1)."""
        throughput = self.options.throughput
        if throughput is None:
            return 1.0
        accelerators = self._flavor_accelerators
        if flavor not in accelerators:
            known = self.queues.flavors.get(flavor)
            accelerators[flavor] = None if known is None else self._policy.matcher.flavor_type(known)
        return throughput.speed(arrival.job_class, accelerators[flavor])

    def _open_booked_runs(self, record: JobRecord, now: float) -> None:
        """A job started: a run of each booking that serves it and that it holds room of."""
        admission = record.admission
        if admission is None:
            return
        arrival = record.arrival
        opened: list[_BookingRun] = []
        for reservation in self._reservations:
            if (
                reservation.cluster_queue != admission.cluster_queue
                or not reservation.serves(arrival.tenant, arrival.job_id)
                or self._at(now) >= reservation.end
            ):
                continue
            amount = admission.usage.get((reservation.flavor, reservation.resource), 0)
            if amount > 0:
                run = _BookingRun(now, None, amount)
                self._booking_runs[reservation.name].append(run)
                opened.append(run)
        if opened:
            self._open_booking_runs[arrival.job_id] = opened

    def _place_waiting(self, now: float) -> None:
        """Capacity freed: place admitted workloads whose pods were pending, in admission order."""
        if self._unplaced:
            self._unplaced.place(
                lambda job_id, workload, flavor: self._place(self._records[job_id], workload, flavor, now)
            )

    def _on_pods_timeout(self, now: float, event: JobEpoch) -> None:
        job_id, epoch = event
        record = self._records[job_id]
        if record.epoch != epoch or job_id not in self._unplaced:
            return
        # Kueue waitForPodsReady: evict, give the quota back, requeue at the same position, up to the
        # retry budget (Kueue's requeuingStrategy.backoffLimitCount); then the job fails.
        self._unplaced.remove(job_id)
        self.stats.pods_ready_timeouts += 1
        at = self._at(now)
        released = self.scheduler.release(job_id, at)
        self._released(record, now)
        # A restarted controller must not re-admit it (nor a failed job).
        self._drop_admission(record, now)
        record.exec_s += now - record.admitted_at_s
        self._want_cycle(now)
        if record.retries >= self.options.max_retries:
            record.status = SimJobStatus.FAILED
            record.reason = f"pods never became ready ({record.retries + 1} attempts)"
            self._finish(record, now)
            return
        record.retries += 1
        record.queue_ts = self._queue_again(self._jobs[job_id], released.timestamp, now)
        record.status = SimJobStatus.QUEUED
        record.reason = "requeued: pods not ready within the timeout"

    def _stop_running(self, record: JobRecord, now: float, saved: bool) -> None:
        """Take a running job off its GPUs, accounting the work done (and lost)."""
        self._running.pop(record.arrival.job_id, None)
        if self._pipelines is not None:
            self._pipelines.job_stopped(record.arrival.job_id, now)
        if self._open_booking_runs:
            for run in self._open_booking_runs.pop(record.arrival.job_id, ()):
                run.end_s = now
        self._flavor_used[record.flavor] -= record.gpus
        self._cq_used[record.cluster_queue] -= record.gpus
        if record.placed_usage:
            self._in_use.add_in_use(record.placed_usage, now, -1)
            record.placed_usage = None
        self._account_run(record, now, saved)

    def _account_run(self, record: JobRecord, now: float, saved: bool) -> None:
        ran = now - record.run_start_s
        record.gpu_s += ran * record.gpus
        speed = record.speed  # work per second: the GPU-seconds held are time, progress is work
        factor = self.options.runaway_factor
        if factor is not None and record.runaway_s is None and record.arrival.declares_runtime:
            limit = factor * record.arrival.declared_s
            if record.done_s + ran * speed > limit:  # its progress passed the limit during this run
                record.runaway_s = record.run_start_s + (limit - record.done_s) / speed
                self.stats.runaway_alerts += 1
        price = self.prices.get(record.flavor)
        money = self._money
        if money is None and price is not None:
            record.cost += price * Decimal(repr(ran * record.gpus)) / Decimal(3600)
        if saved or record.arrival.job_type == JobType.SERVICE.value:
            # A service keeps no in-flight work: after an eviction it serves out the rest of its
            # lifetime elsewhere (the restart overhead is the cost model's business).
            record.done_s += ran * speed
            if money is not None:  # metered: the job's cost is what its records are charged
                record.cost, record.lost_cost = money.run_ended(record.arrival.job_id, now, Fraction(0))
            return
        interval = record.arrival.checkpoint_interval_s
        kept = (ran // interval) * interval if interval else 0.0
        record.done_s += kept * speed
        lost = (ran - kept) * record.gpus
        record.lost_gpu_s += lost
        if money is not None:
            share = Fraction(ran - kept) / Fraction(ran) if ran > 0 else Fraction(0)
            record.cost, record.lost_cost = money.run_ended(record.arrival.job_id, now, share)
        elif price is not None:
            record.lost_cost += price * Decimal(repr(lost)) / Decimal(3600)

    def _on_timeout(self, now: float, event: JobEpoch) -> None:
        """The job's execution time reached its maximum duration: Kueue deactivates the workload.

        Its pods stop (work since the last checkpoint is lost), its quota returns, and the job
        fails with reason ``timeout``; it is not requeued.
        """
        job_id, epoch = event
        record = self._records[job_id]
        if record.epoch != epoch or record.admission is None:
            return  # it completed, or lost this admission (evicted, failed), in time
        if record.status is SimJobStatus.RUNNING:
            self._stop_running(record, now, saved=False)
            if not self._quota_only:
                self.backend.preempt(JobId(job_id), timedelta(0))
        elif job_id in self._unplaced:
            self._unplaced.remove(job_id)
        if not self._quota_only:
            self.backend.forget(JobId(job_id))  # a failing job's pods died with its node already
        self.scheduler.release(job_id, self._at(now))
        self._released(record, now)
        record.exec_s += now - record.admitted_at_s
        self._drop_admission(record, now)
        record.evicting = False
        record.eviction = record.eviction_booking = ""
        record.epoch += 1  # whatever else this run had scheduled (eviction, detection) is void
        record.timed_out = True
        record.status = SimJobStatus.FAILED
        limit = record.arrival.max_runtime_s
        record.reason = f"timeout: reached its maximum duration of {limit:g}s of execution"
        self.stats.timeouts += 1
        self._finish(record, now)
        self._place_waiting(now)
        self._want_cycle(now)

    def _on_completion(self, now: float, event: JobEpoch) -> None:
        job_id, epoch = event
        record = self._records[job_id]
        if record.epoch != epoch or record.status is not SimJobStatus.RUNNING:
            return
        self._stop_running(record, now, saved=True)
        self._complete(record, now)

    def _complete(self, record: JobRecord, now: float) -> None:
        """A job whose pods have stopped (:meth:`_stop_running`) completed: its pods exit, its
        quota returns (after the latency model's release delay)."""
        job_id = record.arrival.job_id
        if not self._quota_only:
            self.backend.complete(JobId(job_id))
            self.backend.forget(JobId(job_id))
        record.status = SimJobStatus.COMPLETED
        self._finish(record, now)
        self._place_waiting(now)
        delay = self._latency.release_delay_s if self._latency is not None else 0.0
        if delay > 0:  # its quota comes back later (the latency model's release delay)
            self._push(now + delay, EventKind.RELEASE, JobEpoch(job_id, record.epoch))
            return
        self._release_finished(record, now)

    def _release_finished(self, record: JobRecord, now: float) -> None:
        """A completed job's quota returns to its ClusterQueue."""
        if self._controller_up:  # else the rebuild on restart leaves the finished job out
            self.scheduler.release(record.arrival.job_id, self._at(now))
            self._released(record, now)
        self._drop_admission(record, now)
        self._want_cycle(now)

    def _on_release(self, now: float, event: JobEpoch) -> None:
        """The latency model's release delay is over: a finished job's quota is released, or a
        stopped victim's, which is requeued."""
        job_id, epoch = event
        record = self._records[job_id]
        if record.epoch != epoch or record.admission is None:
            return
        if record.status is SimJobStatus.COMPLETED:
            self._release_finished(record, now)
        else:
            self._requeue_victim(record, now)

    def _released(self, record: JobRecord, now: float) -> None:
        """Quota came back in the job's cohort: under the latency model, the cohort's inadmissible
        workloads are requeued ``requeue_delay`` later (one pending requeue per cohort at a time)."""
        latency = self._latency
        admission = record.admission
        if latency is None or admission is None:
            return
        root = self.scheduler.tree.cluster_queues[admission.cluster_queue].root_key
        if root in self._requeues:
            return  # a requeue of this cohort is due: it will see this release's quota too
        assert self._heads is not None
        if not self._heads.has_inadmissible(root):
            return  # nothing to requeue (a head set aside later waits for the next release)
        self._requeues.add(root)
        self._push(now + latency.requeue_delay_s, EventKind.REQUEUE, root)

    def _on_requeue(self, now: float, root: str) -> None:
        self._requeues.discard(root)
        assert self._heads is not None  # requeues happen only under the latency model
        if self._heads.requeue(root):
            self._want_cycle(now)

    def _queue_again(self, job: Job, timestamp: float, now: float) -> float:
        """A job back in its queue (requeued victim, retry): with its queue time ``timestamp``
        (returned), in the scheduler, or, under the latency model, among its queue's heads."""
        if self._heads is None:
            at = self._at(now)
            attained = self._attained(job.id)
            return self.scheduler.submit(job, timestamp=timestamp, now=at, attained=attained).timestamp
        resolved = self.scheduler.resolve_priority(job)
        cluster_queue, _ = self.scheduler.pending.resolve(resolved)
        self._heads.push(cluster_queue, resolved, timestamp)
        self._want_cycle(now)
        return timestamp

    def _attained(self, job_id: str) -> Attained | None:
        """What the job received in its earlier runs (work kept, GPU-seconds held), which ranks it
        under the ``srtf`` and ``las`` orderings; None when no ordering reads it."""
        if self.scheduler.pending.ordering is None:
            return None
        record = self._records[job_id]
        return Attained(work_s=record.done_s, gpu_s=record.gpu_s)

    def _submit_head(self, record: JobRecord, job: Job, now: float) -> None:
        """Under the latency model a new job waits in its ClusterQueue (outside the scheduler) until
        it is a head; it is rejected as the scheduler would reject it (unknown LocalQueue, unknown
        priority class)."""
        assert self._heads is not None
        try:
            resolved = self.scheduler.resolve_priority(job)
            cluster_queue, _ = self.scheduler.pending.resolve(resolved)
        except Exception as exc:
            record.status = SimJobStatus.REJECTED
            record.reason = str(exc)
            self._finish(record, now)
            return
        timestamp = job.created_at.timestamp()
        self._heads.push(cluster_queue, resolved, timestamp)
        record.cluster_queue = cluster_queue
        record.reason = ""
        record.queue_ts = timestamp
        record.status = SimJobStatus.QUEUED
        self._want_cycle(now)

    def _feed_heads(self, now: float) -> list[tuple[str, Head, bool]]:
        """Before a cycle under the latency model: each ClusterQueue's next heads enter the
        scheduler (``heads_per_cluster_queue`` of them), each with whether it fits the quota as
        the cycle begins (a head that fits then but is not admitted lost its room to the cycle's
        earlier admissions: Kueue's "no longer fits", requeued at once)."""
        assert self._heads is not None and self._latency is not None
        fed: list[tuple[str, Head, bool]] = []
        scheduler = self.scheduler
        at = self._at(now)
        for cluster_queue, head in self._heads.pop_heads(self._latency.heads_per_cluster_queue):
            scheduler.submit(head.job, timestamp=head.timestamp, now=at)
            fed.append((cluster_queue, head, self._fits(cluster_queue, head.job)))
        return fed

    def _fits(self, cluster_queue: str, job: Job) -> bool:
        scheduler = self.scheduler
        tree = scheduler.tree
        assignment = assign_flavors(
            tree.config.cluster_queues[cluster_queue],
            tree.cluster_queues[cluster_queue],
            job.request,
            scheduler.usage,
            tree.config.flavors,
            scheduler.policy.matcher,
        )
        return assignment.mode is Mode.FIT

    def _take_back_heads(
        self,
        fed: list[tuple[str, Head, bool]],
        result: CycleResult,
        now: float,
        *,
        untried: bool,
        evicting: set[str],
    ) -> None:
        """After a cycle under the latency model: the heads not admitted leave the scheduler, back
        to the front of their queue (a preemptor waiting for its victims; a head that fitted as the
        cycle began but lost its room to the cycle's admissions in its cohort; any StrictFIFO head,
        which then blocks its queue) or set aside as inadmissible with the workloads of their kind
        until quota is released in their cohort.

        The next cycle is spaced by the model, and wanted only if this one changed something
        (admissions, new evictions) or other heads wait (``untried``): a preemptor waiting for
        victims already being evicted, or a blocked queue, waits for the release that a later
        event brings (which asks for a cycle), not for cycles that would decide the same again.
        """
        assert self._heads is not None and self._latency is not None
        heads = self._heads
        tree = self.scheduler.tree.cluster_queues
        admitted = {a.job_id for a in result.admitted}
        changed_roots = {tree[a.cluster_queue].root_key for a in result.admitted}
        preempting = {d.preemptor for d in result.preemptions if d.status is not DecisionStatus.IMPOSSIBLE}
        new_evictions = any(
            v.job_id not in evicting
            for d in result.preemptions
            if d.status is DecisionStatus.PREEMPT
            for v in d.victims
        )
        for cluster_queue, head, fitted in fed:
            job_id = head.job.id
            if job_id in admitted:
                heads.done(job_id)
                continue
            self.scheduler.withdraw(job_id)
            if job_id in preempting or (fitted and tree[cluster_queue].root_key in changed_roots):
                heads.back(cluster_queue, head)
            else:
                heads.set_aside(cluster_queue, head)
        self._next_cycle_s = now + self._latency.cycle_gap_s(len(fed))
        if admitted or new_evictions or result.evictions or untried:
            self._want_cycle(now)

    def _on_node_fail(self, now: float, node: str) -> None:
        failures = self.options.failures
        assert failures is not None  # nodes fail only under a failure model
        self.stats.node_failures += 1
        victims = self.backend.fail_node(node, reason="node failure")
        for job_id in victims:
            record = self._records[job_id]
            self._stop_running(record, now, saved=False)
            record.status = SimJobStatus.FAILING
            record.failures += 1
            self._push(
                now + failures.detection_delay_s, EventKind.FAILURE_DETECTED, JobEpoch(job_id, record.epoch)
            )
        self._push(now + failures.repair_s, EventKind.NODE_REPAIR, node)
        if victims:
            self._place_waiting(now)  # a failed gang's pods on healthy nodes are gone too

    def _on_failure_detected(self, now: float, event: JobEpoch) -> None:
        job_id, epoch = event
        record = self._records[job_id]
        if record.epoch != epoch:
            return
        self.backend.forget(JobId(job_id))
        self.scheduler.release(job_id, self._at(now))
        self._released(record, now)
        self._drop_admission(record, now)
        record.exec_s += now - record.admitted_at_s
        self._want_cycle(now)
        # The job's own budget: the scenario's (failures.max_retries) for workload jobs; none for a
        # pipeline step's job, whose retries are the step's (a new job per attempt).
        if record.retries >= min(self.options.max_retries, self._jobs[job_id].max_retries):
            record.status = SimJobStatus.FAILED
            record.reason = f"node failure; retry budget exhausted ({record.retries} retries)"
            self._finish(record, now)
            return
        record.retries += 1
        record.status = SimJobStatus.RETRYING
        delay = self.options.backoff.delay(record.retries).total_seconds()
        self._push(now + delay, EventKind.RETRY, job_id)

    def _on_retry(self, now: float, job_id: str) -> None:
        record = self._records[job_id]
        if record.status is not SimJobStatus.RETRYING:
            return  # cancelled during its backoff (its pipeline run stopped it)
        job = self._jobs[job_id]
        record.queue_ts = self._queue_again(job, self._at(now).timestamp(), now)
        record.status = SimJobStatus.QUEUED
        self._want_cycle(now)

    def _on_node_repair(self, now: float, node: str) -> None:
        failures = self.options.failures
        assert failures is not None  # nodes fail (and are repaired) only under a failure model
        self.backend.repair_node(node)
        self._push(now + self._rng.expovariate(1.0 / failures.mtbf_s), EventKind.NODE_FAIL, node)
        self._place_waiting(now)
        self._want_cycle(now)

    def _on_sample(self, now: float, _: None) -> None:
        if (self._aging is not None or self._boost is not None) and self._controller_up:
            at = self._at(now)
            changed = self._aging is not None and self.scheduler.age(at, self._aging) > 0
            if self._boost is not None and self.scheduler.boost_deadlines(at, self._boost):
                changed = True
            if changed:
                self._want_cycle(now)
        self.series.times.append(now)
        for name, used in self._flavor_used.items():
            self.series.flavors[name].append(used)
        for name, used in self._cq_used.items():
            self.series.cluster_queues[name].append(used)
        for key, values in self.series.quota_held.items():
            values.append(self._quota_held.value(key) / 1000)
        for key, values in self.series.flavor_resources.items():
            values.append(self._in_use.value(key) / 1000)
        if self._sharing is not None:
            self._sharing.sample(now, self.stats.events, self._sharing_state)
        if self._progress is not None:  # a progress bar follows simulated time too, not only jobs
            self._progress(now, self._finished)
        self._push(now + self.options.sample_interval_s, EventKind.SAMPLE)

    def _sharing_state(self) -> SampledState:
        """What GPU sharing's figures are measured from (see sharing.py)."""
        records = self._records
        return (
            sum(self._flavor_used.values()),
            [job_id for job_id in self.scheduler.queued_job_ids() if job_id in records],
            lambda job_id: records[job_id].arrival,
            self._unplaced.version,
            self._unplaced.workloads(),
        )

    # Money: budget reviews --------------------------------------------------------------------
    def _money_ledger(self, options: MoneyOptions) -> MoneyLedger:
        from .money import MoneyLedger

        return MoneyLedger(
            options,
            start=self.options.start,
            queues=self.queues,
            matcher=self._policy.matcher,
            gpu_resource=self.gpu_resource,
        )

    def _limits_only(self) -> MoneyOptions:
        """Money for a run without a ``money`` block whose jobs carry a ``budget_limit``: their
        reviews and metering at the run's flavor prices, no guard, no budgets."""
        from budcore.cost.guard import GuardPolicy

        from .money import MoneyOptions, flavor_price_book

        return MoneyOptions(GuardPolicy(), flavor_price_book(self.prices), guard=False, declared=False)

    def _meter_from_now(self) -> None:
        """Start metering in a run without a ``money`` block, for a job with a ``budget_limit``:
        the jobs running now are metered from the start of their current run, their earlier runs
        keep the cost the run gave them."""
        self._money = money = self._money_ledger(self._limits_only())
        for job_id, record in self._running.items():
            money.run_started(
                self._jobs[job_id],
                record.cluster_queue,
                record.flavor,
                record.arrival.total_gpus,  # a share is metered as the device it occupies
                record.arrival.priority_label,
                record.run_start_s,
                base=(record.cost, record.lost_cost),
            )

    def _want_review(self, now: float) -> None:
        """A budget review at the next multiple of the review period, while a job runs or a paused
        job waits for its budget's period to roll over (and there is anything to review)."""
        money = self._money
        if money is None or self._review_at is not None or not money.reviews:
            return
        if not self._running and not (money.paused and money.waits_for_period()):
            return
        every = money.review_every_s
        self._review_at = (math.floor(now / every + GRID_TOLERANCE) + 1) * every
        self._push(self._review_at, EventKind.REVIEW)

    def _on_review(self, now: float, _: None) -> None:
        """Review every running job's and budget's spend: record alerts, pause or cancel the jobs
        whose budgets are used up, requeue the paused jobs whose budgets have room again. While
        the controller is down nothing is reviewed (the review is the controller's work)."""
        self._review_at = None
        money = self._money
        assert money is not None  # only a run with money schedules reviews
        if self._controller_up:
            running = {job_id: self._jobs[job_id] for job_id in self._running}
            stops, ready = money.review(running, now)
            for stop in stops:
                if stop.action is BudgetAction.PAUSE:
                    self._pause(stop, now)
                else:
                    self._cancel(stop.job_id, stop.reason)
            for job_id in ready:
                self._resume(job_id, now)
        self._want_review(now)

    def _pause(self, stop: BudgetStop, now: float) -> None:
        """Stop a running job as a preemption does (work since its last checkpoint is lost, its
        quota returns) and hold it out of its queue until its budgets have room."""
        job_id = stop.job_id
        record = self._records[job_id]
        if record.status is not SimJobStatus.RUNNING:
            return
        assert self._money is not None
        self._stop_running(record, now, saved=False)
        if not self._quota_only:
            self.backend.preempt(JobId(job_id), timedelta(0))
            self.backend.forget(JobId(job_id))
        self.scheduler.release(job_id, self._at(now))
        self._released(record, now)
        record.exec_s += now - record.admitted_at_s
        self._drop_admission(record, now)
        record.epoch += 1  # its completion, timeout or eviction is void
        record.evicting = False
        record.eviction = record.eviction_booking = ""
        record.status = SimJobStatus.PAUSED
        record.reason = stop.reason
        self._money.pause(self._jobs[job_id])
        self._place_waiting(now)
        self._want_cycle(now)
        if self._pipelines is not None:
            self._pipelines.job_changed(job_id, now)

    def _resume(self, job_id: str, now: float) -> None:
        """A paused job whose budgets have room again goes back to its queue, in the order of its
        submission (as a service resubmits it)."""
        assert self._money is not None
        record = self._records[job_id]
        self._money.resumed(job_id, now)
        job = self._jobs[job_id]
        record.queue_ts = self._queue_again(job, job.created_at.timestamp(), now)
        record.status = SimJobStatus.QUEUED
        record.reason = "budget: resumed: its budgets have room again; requeued"
        self._want_cycle(now)
        if self._pipelines is not None:
            self._pipelines.job_changed(job_id, now)

    def _next_restart_gap(self) -> float:
        model = self.options.controller_restart
        assert model is not None
        if model.exponential:
            return self._controller_rng.expovariate(1.0 / model.every_s)
        return model.every_s

    def _on_controller_down(self, now: float, _: None) -> None:
        model = self.options.controller_restart
        assert model is not None
        self.stats.controller_restarts += 1
        self._controller_up = False
        self._push(now + model.downtime_s, EventKind.CONTROLLER_UP)
        # The next restart is counted from this one (fixed period), never inside this downtime.
        self._push(now + max(self._next_restart_gap(), model.downtime_s), EventKind.CONTROLLER_DOWN)

    def _on_controller_up(self, now: float, _: None) -> None:
        self._controller_up = True
        self._rebuild_scheduler(now)
        deferred, self._deferred = self._deferred, []
        handlers = self._event_handlers()
        for kind, payload in deferred:  # in the order they fell due
            handlers[kind](now, payload)
        self._want_cycle(now)

    def _rebuild_scheduler(self, now: float) -> None:
        """Reconstruct the scheduler's pending and admitted state from the job records alone."""
        at = self.options.start
        scheduler = Scheduler(
            self.queues,
            _fresh_policy(self._policy),
            self._preemption,
            self._budget,
            deadline_boost=self._boost,
        )
        _book(scheduler, self._reservations)  # a controller's bookings are stored, not in memory
        holding = sorted(
            (r for r in self._records.values() if r.admission is not None),
            key=lambda r: (r.admitted_at_s, r.arrival.job_id),
        )
        for record in holding:
            assert record.admission is not None
            admitted_at = at + timedelta(seconds=record.admitted_at_s)
            # Submitted as of its admission, when its time window (if any) let it in.
            scheduler.submit(self._jobs[record.arrival.job_id], timestamp=record.queue_ts, now=admitted_at)
            scheduler.admit_directly(record.admission, admitted_at)
        now_at = self._at(now)
        for record in self._records.values():
            if record.status is SimJobStatus.QUEUED:  # held again if its window is closed now
                job_id = record.arrival.job_id
                attained = self._attained(job_id)  # the same ordering as the old scheduler's
                scheduler.submit(self._jobs[job_id], timestamp=record.queue_ts, now=now_at, attained=attained)
        self.scheduler = scheduler
        inbox, self._inbox = self._inbox, []
        for job_id in inbox:
            self._submit_new(self._records[job_id], self._jobs[job_id], now)

    def _finish(self, record: JobRecord, now: float) -> None:
        record.end_s = now
        self._jobs.pop(record.arrival.job_id, None)
        if self._money is not None:
            self._money.finished(record.arrival.job_id, record.arrival.tenant)
        if self._pipelines is not None:
            self._pipelines.job_changed(record.arrival.job_id, now)
        self._finished += 1
        self._freeze_every(self._finished)
        if self._progress is not None and self._finished % 1000 == 0:
            self._progress(now, self._finished)

    def _freeze_every(self, count: int) -> None:
        """Freeze what the process holds out of the cyclic collector's sight when ``count`` (jobs
        finished, or jobs arrived) is a multiple of ``options.gc_freeze_every`` (see :meth:`run`)."""
        every = self.options.gc_freeze_every
        if every and count % every == 0:
            gc.collect(1)  # young cycles would otherwise stay frozen until the run ends
            gc.freeze()
            self._frozen = True


@dataclass(frozen=True, slots=True)
class _Accounts:
    """What the run's usage is measured against, from the queues and the nodes: GPUs per flavor
    (on its schedulable nodes) and per ClusterQueue (nominal), and every resource the
    ClusterQueues cover, with its nominal quota per ClusterQueue and capacity per flavor."""

    flavor_gpus: dict[str, int]
    cq_nominal_gpus: dict[str, int]
    cq_nominal_quota: dict[tuple[str, str], int]  # (ClusterQueue, resource) -> milli-units
    flavor_keys: frozenset[tuple[str, str]]  # (flavor, resource) a ClusterQueue covers
    resources: tuple[str, ...]
    flavor_resource_capacity: dict[tuple[str, str], int]  # on the flavor's nodes (none quota-only)

    @classmethod
    def of(cls, queues: QueueConfig, nodes: Sequence[Node], gpu_resource: str, quota_only: bool) -> _Accounts:
        flavor_gpus = {
            name: sum(
                n.allocatable.get(gpu_resource, 0) // 1000
                for n in nodes
                if n.schedulable and n.matches(flavor.node_labels)
            )
            for name, flavor in queues.flavors.items()
        }
        cq_nominal_gpus = {
            name: sum(
                rq.nominal_quota // 1000
                for g in cq.resource_groups
                for f in g.flavors
                for rq in f.resources
                if rq.name == gpu_resource
            )
            for name, cq in queues.cluster_queues.items()
        }
        nominal: dict[tuple[str, str], int] = {}
        flavor_keys: set[tuple[str, str]] = set()
        for name, cq in queues.cluster_queues.items():
            for group in cq.resource_groups:
                for resource in group.covered_resources:
                    nominal.setdefault((name, resource), 0)
                for flavor_quotas in group.flavors:
                    flavor_keys.update((flavor_quotas.name, r) for r in group.covered_resources)
                    for rq in flavor_quotas.resources:
                        nominal[(name, rq.name)] = nominal.get((name, rq.name), 0) + rq.nominal_quota
        capacity: dict[tuple[str, str], int] = {}
        if not quota_only:
            for flavor_name, resource in sorted(flavor_keys):
                flavor = queues.flavors.get(flavor_name)
                if flavor is None:
                    continue
                capacity[(flavor_name, resource)] = sum(
                    n.allocatable.get(resource, 0)
                    for n in nodes
                    if n.schedulable and n.matches(flavor.node_labels)
                )
        resources = tuple(sorted({r for _, r in nominal}))
        return cls(flavor_gpus, cq_nominal_gpus, nominal, frozenset(flavor_keys), resources, capacity)


def _check_latency_alone(
    options: EngineOptions,
    aging: AgingPolicy | None,
    boost: DeadlineBoost | None,
    reservations: Sequence[Reservation],
) -> None:
    """The latency model keeps waiting workloads outside the scheduler until they are heads: what
    reorders or rebuilds the scheduler's queues cannot be used with it."""
    others = [
        name
        for name, used in (
            ("aging", aging is not None),
            ("deadline-aware ordering", boost is not None),
            ("ETA measurement", options.eta is not None),
            ("controller restarts", options.controller_restart is not None),
            ("capacity bookings", bool(reservations)),
        )
        if used
    ]
    if others:
        raise ValidationError(
            f"the cycle-latency model does not work with {', '.join(others)}", path="latency"
        )


def _book(scheduler: Scheduler, reservations: Iterable[Reservation]) -> None:
    """Make each booking on ``scheduler``; one that does not fit its queues (a sweep scaled them
    down, say) is a ``ValidationError`` naming it."""
    for reservation in reservations:
        try:
            scheduler.reserve(reservation)
        except ValidationError as exc:
            raise ValidationError(
                f"reservation {reservation.name}: {exc.message}", path=f"reservations.{exc.path or 'name'}"
            ) from None
        except BudcoreError as exc:  # a conflict with another booking, a name taken
            raise ValidationError(
                f"reservation {reservation.name} does not fit the queues of this run: {exc}",
                path="reservations",
            ) from None


def _knowing_flavor_types(
    policy: AdmissionPolicy, queues: QueueConfig, nodes: Sequence[Node]
) -> AdmissionPolicy:
    """The policy whose matcher also knows the accelerator model of each flavor from its nodes.

    A flavor selecting a pool by name (``budcore.io/pool: h100``) names no model itself; the fleet
    says which one its nodes carry, so a job asking for ``nvidia-h100-80gb`` matches it.
    """
    matcher = policy.matcher
    learnt = flavor_types_from_nodes(queues.flavors, nodes, matcher.normalize)
    if not learnt:
        return policy
    return replace(policy, matcher=matcher.with_flavor_types({**learnt, **matcher.flavor_types}))


def _fresh_policy(policy: AdmissionPolicy | None) -> AdmissionPolicy | None:
    """The policy for a restarted scheduler: same settings, no carried-over fair-sharing history."""
    if policy is None or policy.local_queue_usage is None:
        return policy  # the Scheduler creates fresh usage tracking itself when it needs it
    old = policy.local_queue_usage
    usage = LocalQueueUsage(half_life=old.half_life, resource_weights=dict(old.resource_weights))
    return replace(policy, local_queue_usage=usage)


@dataclass(slots=True)
class _Waiting:
    workload: Workload
    flavor: str
    seq: int  # admission order
    key: Hashable  # the backend's refusal key


class _PendingPods:
    """Admitted workloads whose pods wait for free nodes, retried in admission order.

    Retrying every waiting workload at each completion made placement quadratic-ish: hundreds of
    workloads waited at a time, and all but a few were refused again. The backend's
    :meth:`~budcore.ports.simulated_cluster.SimulatedCluster.refusal_key` groups workloads that
    stand or fall together while nothing is released, and a retry pass places nothing but
    workloads, so once a workload is refused the rest of its group is skipped for that pass.
    Merging the groups' heads by admission order tries the others exactly in the order a pass
    over the whole list would, with the same outcome: the pass costs the workloads placed plus
    one refusal per group instead of the whole list.
    """

    __slots__ = ("_entries", "_groups", "_seq")

    def __init__(self) -> None:
        self._entries: dict[str, _Waiting] = {}
        self._groups: dict[Hashable, dict[str, None]] = {}  # key -> job ids in admission order
        self._seq = 0

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._entries

    @property
    def version(self) -> tuple[int, int]:
        """Changes whenever a workload is added or removed (adds raise ``_seq``; removals alone
        lower the count), so a reader can tell that the waiting set is the one it saw."""
        return (len(self._entries), self._seq)

    def workloads(self) -> Iterator[Workload]:
        """The waiting workloads (what GPU fragmentation measures free capacity against)."""
        return (waiting.workload for waiting in self._entries.values())

    def add(self, job_id: str, workload: Workload, flavor: str, key: Hashable) -> None:
        self._seq += 1
        self._entries[job_id] = _Waiting(workload, flavor, self._seq, key)
        self._groups.setdefault(key, {})[job_id] = None

    def remove(self, job_id: str) -> None:
        key = self._entries.pop(job_id).key
        group = self._groups[key]
        del group[job_id]
        if not group:
            del self._groups[key]

    def place(self, try_place: Callable[[str, Workload, str], bool]) -> None:
        """Offer waiting workloads to ``try_place`` in admission order; drop those it placed."""
        entries = self._entries
        heads = [(entries[next(iter(group))].seq, key) for key, group in self._groups.items()]
        heapq.heapify(heads)  # admission numbers are unique, so keys are never compared
        while heads:
            _, key = heapq.heappop(heads)
            group = self._groups[key]
            job_id = next(iter(group))
            entry = entries[job_id]
            if not try_place(job_id, entry.workload, entry.flavor):
                continue  # refused: so would the rest of its group be, in this pass
            self.remove(job_id)
            if group:
                heapq.heappush(heads, (entries[next(iter(group))].seq, key))


class _RunningVictims(Mapping[str, VictimInfo]):
    """What the preemption cost model needs about each running job, built only when asked.

    Progress is work saved plus the current run; the last checkpoint is the latest multiple of the
    job's checkpoint interval within its current run (jobs without an interval never checkpoint);
    the price is its flavor's price per GPU-hour. It reads the engine's running jobs and clock
    live (the engine hands it the very mapping and clock it updates).

    A job's facts are kept until what they are made of changes (the instant, the start of its
    run, the work it had done, its flavor): the victim search reads the same candidates for every
    preemptor of a cycle, and building them again each time was a large part of a
    preemption-heavy run.
    """

    __slots__ = ("_built", "_clock", "_prices", "_running")

    def __init__(
        self, running: Mapping[str, JobRecord], clock: _SimClock, prices: Mapping[str, Decimal]
    ) -> None:
        self._running = running
        self._clock = clock
        self._prices = prices
        # job id -> the record, (instant, run start, work done, flavor) and the facts built of them
        self._built: dict[str, tuple[JobRecord, tuple[float, float, float, str], VictimInfo]] = {}

    def __getitem__(self, job_id: str) -> VictimInfo:
        record = self._running.get(job_id)
        if record is None:
            raise KeyError(job_id)
        now = self._clock.seconds
        made_of = (now, record.run_start_s, record.done_s, record.flavor)
        built = self._built.get(job_id)
        if built is not None and built[0] is record and built[1] == made_of:
            return built[2]
        info = self._build(record, now)
        if len(self._built) > 2 * len(self._running) + 1024:  # forget the jobs that stopped
            self._built = {k: v for k, v in self._built.items() if k in self._running}
        self._built[job_id] = (record, made_of, info)
        return info

    def _build(self, record: JobRecord, now: float) -> VictimInfo:
        arrival = record.arrival
        start = self._clock.start
        ran = now - record.run_start_s
        interval = arrival.checkpoint_interval_s
        checkpoint = None
        if interval:
            checkpoint = start + timedelta(seconds=record.run_start_s + (ran // interval) * interval)
        price = self._prices.get(record.flavor)
        return VictimInfo(
            job_id=JobId(arrival.job_id),
            job_type=JobType(arrival.job_type),
            critical=arrival.priority == JobPriority.CRITICAL.value,
            preemptible=arrival.preemptible,
            started_at=start + timedelta(seconds=record.run_start_s),
            last_checkpoint_at=checkpoint,
            checkpoint_interval=timedelta(seconds=interval or 0),  # 0: never checkpoints
            progress=(
                min(1.0, (record.done_s + ran * record.speed) / arrival.runtime_s)
                if arrival.runtime_s > 0
                else None
            ),
            hourly_price=price,  # per accelerator; the cost model multiplies by the GPUs
        )

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._running

    def __iter__(self) -> Iterator[str]:
        return iter(self._running)

    def __len__(self) -> int:
        return len(self._running)


class _SimClock:
    """The ``Clock`` port over the engine's virtual time: ``seconds`` after ``start``.

    The engine owns it and moves ``seconds`` forward as it handles events (``Simulation._advance``).
    """

    __slots__ = ("seconds", "start")

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.seconds = 0.0

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds)
