"""Priority aging against starvation and inheritance against priority inversion.

Kueue has no counterpart (a Kueue workload's priority is its WorkloadPriorityClass value, fixed);
this is budcore's, next to preemption because preemption and admission compare the priorities it
computes. Two effects make the *effective* priority differ from the one a job was submitted with:

- **Aging** (starvation guard): a job that has waited longer than ``start_after`` gains ``step``
  every ``interval``, up to ``max_boost``, and never beyond ``ceiling`` (default just below the
  critical class, so aging never makes a job unpreemptible-by-priority). Effective priority never
  decreases while a job waits: pass the previous effective value and the result is at least that.
- **Inheritance** (priority inversion): a pipeline step waiting on a dependency that has not
  finished lends its effective priority to that dependency, transitively; otherwise a
  high-priority step stays blocked behind a low-priority step that keeps losing admissions.

Both are pure functions; the caller passes the effective value as the ``priority`` it submits
(or re-submits) to the scheduler.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from budcore.domain.errors import ValidationError
from budcore.domain.priority import JobPriority
from budcore.domain.timeutil import ensure_utc


@dataclass(frozen=True, slots=True)
class AgingPolicy:
    """``step`` priority points every ``interval`` of waiting after ``start_after``, at most ``max_boost``."""

    step: int = 1
    interval: timedelta = timedelta(minutes=15)
    start_after: timedelta = timedelta(0)
    max_boost: int | None = 50
    ceiling: int | None = JobPriority.CRITICAL.value_int - 1

    def __post_init__(self) -> None:
        if self.step < 0:
            raise ValidationError("must not be negative", path="aging.step")
        if self.interval <= timedelta(0):
            raise ValidationError("must be positive", path="aging.interval")
        if self.start_after < timedelta(0):
            raise ValidationError("must not be negative", path="aging.start_after")
        if self.max_boost is not None and self.max_boost < 0:
            raise ValidationError("must not be negative", path="aging.max_boost")

    def boost(self, waited: timedelta) -> int:
        """The aging boost after waiting ``waited``."""
        aged = waited - self.start_after
        if aged <= timedelta(0):
            return 0
        boost = self.step * (aged // self.interval)
        return boost if self.max_boost is None else min(boost, self.max_boost)


def effective_priority(
    base: int,
    *,
    queued_since: datetime,
    now: datetime,
    aging: AgingPolicy | None = None,
    inherited: int | None = None,
    previous: int | None = None,
) -> int:
    """The priority a waiting job competes with at ``now``.

    ``base`` plus the aging boost (capped by ``ceiling`` unless ``base`` is already above it), at
    least the priority ``inherited`` from blocked dependents, and never below ``previous`` (the
    effective value it had earlier in the same wait).
    """
    queued_since = ensure_utc(queued_since, "queued_since")
    now = ensure_utc(now, "now")
    value = base
    if aging is not None:
        aged = base + aging.boost(now - queued_since)
        if aging.ceiling is not None:
            aged = min(aged, max(base, aging.ceiling))
        value = max(value, aged)
    if inherited is not None:
        value = max(value, inherited)
    if previous is not None:
        value = max(value, previous)
    return value


def inherited_priorities(
    priorities: Mapping[str, int],
    dependencies: Mapping[str, Collection[str]],
) -> dict[str, int]:
    """Effective priorities of unfinished pipeline steps after priority inheritance.

    ``priorities`` holds every *unfinished* step (finished ones lend nothing and need nothing);
    ``dependencies`` maps a step to the steps it waits for. A step lends its effective priority to
    each unfinished dependency, transitively. Dependency cycles (invalid pipelines) do not loop:
    values only grow and are bounded by the largest priority.
    """
    for step, deps in dependencies.items():
        if step in priorities:
            for dep in deps:
                if dep == step:
                    raise ValidationError(f"step {step!r} depends on itself", path=f"dependencies[{step}]")
    effective = dict(priorities)
    changed = True
    while changed:
        changed = False
        for step, deps in dependencies.items():
            lent = effective.get(step)
            if lent is None:
                continue
            for dep in deps:
                current = effective.get(dep)
                if current is not None and current < lent:
                    effective[dep] = lent
                    changed = True
    return effective
