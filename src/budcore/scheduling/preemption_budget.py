"""A per-cluster preemption budget: at most ``limit`` preemptions in any sliding ``window``.

Preemption storms (a burst of high-priority work evicting everything, which then re-queues and
preempts back) waste far more GPU time than they save. The budget caps the rate. The preemption
search only *reads* it (:meth:`PreemptionBudget.remaining`) so it stays pure; whoever applies a
decision calls :meth:`PreemptionBudget.record` for each victim actually evicted.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from budcore.domain.errors import ValidationError
from budcore.domain.timeutil import ensure_utc


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
