"""Time gates: when a queued job may be admitted at all (retry backoff, time windows).

Kueue keeps a workload whose ``requeueState.requeueAt`` lies in the future out of its ClusterQueue's
heap until that instant (the backoff after an eviction); budcore does the same for every rule that
is about *when*, not about quota:

- **retry backoff**: a failed job with ``next_retry_at`` in the future waits for it;
- **time windows** (:class:`~budcore.domain.timewindow.TimeWindow`): a job is a candidate only
  while its window is open and, with ``must_finish_in_window``, only while its expected run (the
  estimate, else the maximum duration) still ends before the window closes.

Such a job is *held* outside the pending queues, so it neither blocks a StrictFIFO queue nor counts
as a quota failure, exactly as a backed-off workload in Kueue; when its time comes the
:class:`~budcore.scheduling.scheduler.Scheduler` puts it into its queue with the queue-ordering
timestamp it had, so waiting for a window does not cost it its place. A windowed job that is still
pending when its window (or its last possible start in it) passes is held again until the next
opening. :meth:`TimeGates.next_wakeup` tells a driver (the simulator's engine, a service's
loop, the ETA forecaster) the next instant a cycle can change anything because of time alone.

The rules live here, in pure functions of the job and the instant; :class:`TimeGates` only keeps
the two ordered sets (held jobs by release time, pending windowed jobs by closing time).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from budcore.domain.job import Job


def expected_runtime(job: Job) -> timedelta | None:
    """What a window has to fit: the job's estimate, else its maximum duration, else unknown."""
    return job.estimated_duration if job.estimated_duration is not None else job.max_duration


def earliest_admission(job: Job, now: datetime) -> tuple[datetime, str] | None:
    """The first instant ≥ ``now`` at which ``job`` may be admitted, and why not earlier.

    None when it may be admitted now. A job whose run can never fit its window raises
    :class:`~budcore.domain.errors.ValidationError` (from the window), naming the field.
    """
    at = now
    why = ""
    if job.next_retry_at is not None and job.next_retry_at > at:
        at = job.next_retry_at
        why = f"retry backoff until {at.isoformat()}"
    window = job.time_window
    if window is not None:
        opens = window.earliest_start(at, expected_runtime(job))
        if opens > at:
            at = opens
            why = f"outside its time window {window.describe()}: opens at {opens.isoformat()}"
    return None if at == now else (at, why)


def last_admission(job: Job, at: datetime) -> datetime | None:
    """For a job admissible at ``at``, the instant from which it no longer is (None: never).

    That is its window's close, or, with ``must_finish_in_window``, the close less the expected
    run (a start after that would overrun the window).
    """
    window = job.time_window
    if window is None:
        return None
    closes = window.closes_at(at)
    runtime = expected_runtime(job)
    if window.must_finish_in_window and runtime is not None:
        return closes - runtime + timedelta(microseconds=1)
    return closes


@dataclass(frozen=True, slots=True)
class Held:
    """A queued job outside the pending queues until ``until``."""

    job: Job
    until: datetime
    reason: str
    priority: int | None  # an explicit queue priority it was submitted with (None: the job's)
    timestamp: float  # the queue-ordering time it keeps (seconds since the epoch)
    cluster_queue: str = ""  # the ClusterQueue its LocalQueue maps to


class TimeGates:
    """Held jobs ordered by release time, and pending windowed jobs by the end of their chance."""

    def __init__(self) -> None:
        self._held: dict[str, Held] = {}
        self._release: list[tuple[datetime, int, str]] = []  # (until, seq, job id), lazy deletion
        self._closing: list[tuple[datetime, int, str]] = []  # (last admission, seq, job id)
        self._closes: dict[str, tuple[datetime, int]] = {}
        self._seq = itertools.count()

    def fork(self, cluster_queues: Collection[str] | None = None) -> TimeGates:
        """An independent copy (the held jobs themselves are immutable and shared).

        ``cluster_queues`` keeps only the held jobs of those queues (watched windows are kept:
        a closing for a job the copy does not have is ignored).
        """
        other = TimeGates()
        if cluster_queues is None:
            other._held = dict(self._held)
        else:
            other._held = {k: h for k, h in self._held.items() if h.cluster_queue in cluster_queues}
        other._release = list(self._release)
        other._closing = list(self._closing)
        other._closes = dict(self._closes)
        other._seq = itertools.count(next(self._seq))
        return other

    # Held jobs ---------------------------------------------------------------------------------
    def hold(self, held: Held) -> None:
        self._held[held.job.id] = held
        heapq.heappush(self._release, (held.until, next(self._seq), held.job.id))

    def held(self, job_id: str) -> Held | None:
        return self._held.get(job_id)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._held

    def held_ids(self) -> list[str]:
        return list(self._held)

    def __len__(self) -> int:
        return len(self._held)

    def withdraw(self, job_id: str) -> Held | None:
        """Forget a job (held or watched for its window's close); returns it if it was held."""
        self._closes.pop(job_id, None)
        return self._held.pop(job_id, None)

    def due(self, now: datetime) -> list[Held]:
        """Held jobs whose time has come (removed from the held set), in release order."""
        out: list[Held] = []
        release = self._release
        while release and release[0][0] <= now:
            until, _, job_id = heapq.heappop(release)
            held = self._held.get(job_id)
            if held is not None and held.until == until:
                del self._held[job_id]
                out.append(held)
        return out

    # Pending windowed jobs -----------------------------------------------------------------------
    def watch(self, job_id: str, last: datetime) -> None:
        """A pending job stops being admissible at ``last`` (its window closes)."""
        seq = next(self._seq)
        self._closes[job_id] = (last, seq)
        heapq.heappush(self._closing, (last, seq, job_id))

    def unwatch(self, job_id: str) -> None:
        self._closes.pop(job_id, None)

    def closing(self, now: datetime) -> list[str]:
        """Pending jobs whose chance in the current window has passed (no longer watched)."""
        out: list[str] = []
        closing = self._closing
        while closing and closing[0][0] <= now:
            _, seq, job_id = heapq.heappop(closing)
            entry = self._closes.get(job_id)
            if entry is not None and entry[1] == seq:
                del self._closes[job_id]
                out.append(job_id)
        return out

    def _is_current(self, entry: tuple[datetime, int, str]) -> bool:
        held = self._held.get(entry[2])
        return held is not None and held.until == entry[0]

    def next_wakeup(self) -> datetime | None:
        """The next instant at which time alone changes what may be admitted."""
        candidates: list[datetime] = []
        release = self._release
        while release and not self._is_current(release[0]):
            heapq.heappop(release)  # drop withdrawn or re-held entries so the answer is exact
        if release:
            candidates.append(release[0][0])
        closing = self._closing
        while closing and self._closes.get(closing[0][2], (None, -1))[1] != closing[0][1]:
            heapq.heappop(closing)
        if closing:
            candidates.append(closing[0][0])
        return min(candidates) if candidates else None
