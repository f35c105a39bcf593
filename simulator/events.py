"""The engine's events: their kinds, in the order simultaneous events are handled, and payloads.

The engine's heap holds ``(time, kind, sequence, payload)``: at one instant, events are handled
in the order of :class:`EventKind` (its values), then in the order they were scheduled. Each kind
carries one payload type (see :data:`Payload`), which ``Simulation._push`` checks statically and
the kind's handler receives:

============================================================= ==============================
kind                                                          payload
============================================================= ==============================
``COMPLETION``, ``TIMEOUT``, ``EVICTED``, ``RELEASE``,         :class:`JobEpoch`
``FAILURE_DETECTED``, ``PODS_TIMEOUT``
``NODE_FAIL``, ``NODE_REPAIR``                                the node's name (``str``)
``RETRY``                                                     the job's id (``str``)
``REQUEUE``                                                   a cohort tree's root (``str``)
``ARRIVAL``                                                   the :class:`JobArrival`
``PIPELINE``                                                  the :class:`RunArrival`
``PIPELINE_WAKE``                                             the pipeline run's id (``str``)
``CONTROLLER_UP``, ``CONTROLLER_DOWN``, ``CYCLE``, ``SAMPLE``, ``None``
``REVIEW``
============================================================= ==============================

Kinds are an ``IntEnum``, so heap entries compare as they did when kinds were plain ints, and its
members hash and compare in C (membership in the sets below costs what it did with ints). Reading
``EventKind.X`` is an enum attribute lookup that costs CPython 3.11 about 80 ns more than a global,
so the engine's loop tests membership in the precomputed sets below instead of building tuples of
kinds per event; only scheduling an event names a kind. That and building a :class:`JobEpoch`
instead of a plain tuple (about 0.35 µs) add some 15 ms to the 80,000 events of
``benchmarks/bench_simulator.py`` case (a), which runs in 4.5–5.5 CPU seconds: within its noise.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Literal, NamedTuple, TypeAlias

from .workload.model import JobArrival


class EventKind(IntEnum):
    """An event's kind; the value is its rank among events of the same instant.

    A controller coming back up at an instant rebuilds its state before anything else the
    controller does at that instant.
    """

    COMPLETION = 0  # a running job's pods exit
    # An admitted job reached its maximum duration (Kueue's maximumExecutionTimeSeconds): it is
    # stopped and fails. After COMPLETION (a job ending exactly at its limit completed) and before
    # EVICTED (a victim timing out as its grace period ends fails rather than being requeued).
    TIMEOUT = 1
    EVICTED = 2  # a preemption victim's grace period is over
    # Cycle-latency model: a finished job's (or a stopped victim's) quota is released this late.
    RELEASE = 3
    NODE_FAIL = 4  # a node goes down, and its pods with it
    CONTROLLER_UP = 5  # the scheduling controller is back and rebuilds its state
    CONTROLLER_DOWN = 6  # the scheduling controller goes down
    FAILURE_DETECTED = 7  # the controller declares a failed node's jobs lost
    NODE_REPAIR = 8  # a failed node is back
    RETRY = 9  # a lost job's backoff is over: it is queued again
    PODS_TIMEOUT = 10  # waitForPodsReady: an admitted job's pods did not all start in time
    ARRIVAL = 11  # the next job of the arrival stream
    # The next pipeline run of the scenario's ``workload.pipelines`` starts (see pipelines.py).
    PIPELINE = 12
    # A pipeline run is advanced: one of its jobs changed state at this instant, or time alone
    # changes it now (a wait, a retry's backoff, a timeout: ``PipelineEngine.next_wakeup``). After
    # the instant's completions and arrivals, which it sees, and before its cycle, which sees the
    # jobs it submits.
    PIPELINE_WAKE = 13
    # Cycle-latency model: a cohort's inadmissible workloads go back to their queues (before a
    # cycle of the same instant, which sees them).
    REQUEUE = 14
    CYCLE = 15  # an admission cycle
    SAMPLE = 16  # a point of the usage time series
    # A budget review (a scenario's ``money`` block, see money.py): last, so it sees the instant's
    # completions and admissions; a cycle it asks for (room freed by a pause) comes after it.
    REVIEW = 17


class RunArrival(NamedTuple):
    """A pipeline run that starts at ``at_s``: the payload of ``PIPELINE`` events.

    ``run_id`` is deterministic (``<pipeline id>-<n>``, numbered in start order), and
    ``workload`` the index of its entry in the scenario's ``workload.pipelines``.
    """

    at_s: float
    run_id: str
    workload: int


class JobEpoch(NamedTuple):
    """A job's run: the payload of events that concern one admission of a job.

    The engine bumps a job's epoch at each admission, so an event of an earlier run (a completion
    of a job since evicted, a timeout of pods since placed) carries a stale epoch and is ignored.
    """

    job_id: str
    epoch: int


JobEventKind: TypeAlias = Literal[
    EventKind.COMPLETION,
    EventKind.TIMEOUT,
    EventKind.EVICTED,
    EventKind.RELEASE,
    EventKind.FAILURE_DETECTED,
    EventKind.PODS_TIMEOUT,
]
NodeEventKind: TypeAlias = Literal[EventKind.NODE_FAIL, EventKind.NODE_REPAIR]
TickKind: TypeAlias = Literal[
    EventKind.CONTROLLER_UP, EventKind.CONTROLLER_DOWN, EventKind.CYCLE, EventKind.SAMPLE, EventKind.REVIEW
]
# Every payload an event can carry (which kind carries which: see the module's table).
Payload: TypeAlias = JobEpoch | JobArrival | RunArrival | str | None

# What the controller does (and so cannot do while it is down): these wait for it to come back.
# An eviction's end (quota released, victim requeued) is the controller's work too; the victim's
# pods simply run a little longer while it is down. So is stopping a job at its maximum duration
# (Kueue's workload controller deactivates it): while the controller is down the job runs on.
CONTROLLER_WORK = frozenset(
    {
        EventKind.FAILURE_DETECTED,
        EventKind.RETRY,
        EventKind.PODS_TIMEOUT,
        EventKind.EVICTED,
        EventKind.TIMEOUT,
        EventKind.RELEASE,
        EventKind.REQUEUE,
    }
)
# Events that can make progress: while none is in the heap and no job runs, only clocks tick (see
# Simulation._idle). A node repair is progress only for work waiting for capacity (counted apart).
PROGRESS = frozenset(
    {
        EventKind.ARRIVAL,
        EventKind.PIPELINE,
        EventKind.PIPELINE_WAKE,
        EventKind.COMPLETION,
        EventKind.TIMEOUT,
        EventKind.EVICTED,
        EventKind.RETRY,
        EventKind.FAILURE_DETECTED,
        EventKind.CYCLE,
        EventKind.PODS_TIMEOUT,
        EventKind.CONTROLLER_UP,
        EventKind.RELEASE,
        EventKind.REQUEUE,
    }
)
REPAIRS = frozenset({EventKind.NODE_REPAIR})
# Events that recur forever by themselves: when one is next and nothing else can change, the run ends.
# A budget review recurs while jobs run or paused jobs wait for a budget period to roll over; the
# latter keeps the run going by itself (Simulation._idle), the review is not progress.
CLOCKS = frozenset({EventKind.SAMPLE, EventKind.NODE_FAIL, EventKind.CONTROLLER_DOWN, EventKind.REVIEW})
