"""budcore's preemption guards as a scenario sets them, including "no budget at all".

The core's :class:`~budcore.scheduling.preemption.guards.PreemptionBudget` always has a limit (a
:class:`~budcore.scheduling.Scheduler` given none uses 10 per hour), while Kueue has no budget:
:class:`UnlimitedPreemptionBudget` is a budget that never runs out, so a scenario in
``preemption_mode: kueue`` preempts exactly as Kueue does.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

from budcore.scheduling.preemption.guards import PreemptionBudget

# budcore's guards in cost mode when the scenario does not set them (kueue mode has none).
COST_MODE_GRACE_S = 30.0
COST_MODE_PREEMPTIONS_PER_HOUR = 10


class UnlimitedPreemptionBudget(PreemptionBudget):
    """A preemption budget without a limit: every preemption is allowed and nothing is recorded."""

    __slots__ = ()

    def __init__(self, window: timedelta = timedelta(hours=1)) -> None:
        super().__init__(limit=sys.maxsize, window=window)

    def used(self, now: datetime) -> int:
        return 0

    def remaining(self, now: datetime) -> int:
        return sys.maxsize

    def allow(self, now: datetime, count: int = 1) -> bool:
        return True

    def record(self, now: datetime, count: int = 1) -> None:
        return None
