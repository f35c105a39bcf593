"""budcore's guards: who may never be a victim, who ran too briefly, how many preemptions an hour.

Kueue has no counterpart (its closest relative, ``common/protection.go``, protects by
annotation); these are budcore's promises on top of whatever the queue policy allows, kept in one
place so the victim search and the oracle apply the same ones:

- ``critical`` and ``preemptible=False`` workloads (from :class:`VictimInfo`) are never
  candidates; without facts from the caller, the critical priority value still protects;
- cost mode never evicts a job that has run less than ``min_runtime_before_preemption``;
- a :class:`PreemptionBudget` caps preemptions per sliding window. Preemption storms (a burst of
  high-priority work evicting everything, which then re-queues and preempts back) waste far more
  GPU time than they save. The search only *reads* the budget
  (:meth:`PreemptionBudget.remaining`) so it stays pure; whoever applies a decision calls
  :meth:`PreemptionBudget.record` for each victim actually evicted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from datetime import datetime, timedelta

from budcore.domain.errors import ValidationError
from budcore.domain.priority import JobPriority
from budcore.domain.timeutil import ensure_utc
from budcore.ports.preemption_cost import VictimInfo
from budcore.scheduling.snapshot import AdmittedWorkload

CRITICAL_PRIORITY = JobPriority.CRITICAL.value_int


def victim_facts(w: AdmittedWorkload, infos: Mapping[str, VictimInfo]) -> VictimInfo:
    """The caller's facts about ``w``; without any, an unprotected batch job that started when it
    was admitted, critical when its priority value is."""
    return infos.get(w.job_id) or VictimInfo(
        job_id=w.job_id, started_at=w.admitted_at, critical=w.priority >= CRITICAL_PRIORITY
    )


def exclusion(
    info: VictimInfo, w: AdmittedWorkload, now: datetime, min_runtime: timedelta | None
) -> str | None:
    """Why the guards keep ``w`` from being a victim at ``now``, or None when it may go.

    ``min_runtime`` is the shortest run it may be evicted after (None: no such guard, as in
    ``kueue`` mode).
    """
    guard = info.protected
    if guard is None and min_runtime is not None:
        started = info.started_at or w.admitted_at
        if now - started < min_runtime:
            ran = max(0.0, (now - started).total_seconds())
            guard = f"ran {ran:.0f}s, less than min_runtime_before_preemption"
    return guard


def may_be_victim(w: AdmittedWorkload, info: VictimInfo | None) -> bool:
    """The guards that do not depend on time (the flavor assigner's oracle applies only these)."""
    return (info.protected is None) if info is not None else (w.priority < CRITICAL_PRIORITY)


class PreemptionBudget:
    """Sliding-window counter of preemptions (default: 10 per hour)."""

    __slots__ = ("_events", "limit", "window")

    def __init__(self, limit: int = 10, window: timedelta = timedelta(hours=1)) -> None:
        if limit < 0:
            raise ValidationError("must not be negative", path="preemption_budget.limit")
        if window <= timedelta(0):
            raise ValidationError("must be positive", path="preemption_budget.window")
        self.limit = limit
        self.window = window
        self._events: deque[datetime] = deque()

    def _expire(self, now: datetime) -> None:
        horizon = now - self.window
        while self._events and self._events[0] <= horizon:
            self._events.popleft()

    def used(self, now: datetime) -> int:
        """Preemptions recorded in the window ending at ``now``."""
        now = ensure_utc(now, "now")
        return sum(1 for t in self._events if now - self.window < t <= now)

    def remaining(self, now: datetime) -> int:
        """How many more preemptions the window ending at ``now`` allows."""
        return max(0, self.limit - self.used(now))

    def allow(self, now: datetime, count: int = 1) -> bool:
        """Whether ``count`` more preemptions at ``now`` stay within the budget."""
        return count <= self.remaining(now)

    def record(self, now: datetime, count: int = 1) -> None:
        """Record ``count`` preemptions issued at ``now``."""
        now = ensure_utc(now, "now")
        if count < 0:
            raise ValidationError("must not be negative", path="count")
        if self._events and self._events[-1] > now:  # out of order: keep the deque sorted
            self._events = deque(sorted([*self._events, *([now] * count)]))
        else:
            self._events.extend([now] * count)
        self._expire(now)
