"""Through the Scheduler (needs the cycle to pass the preemption oracle to assign_flavors)."""

from __future__ import annotations

from datetime import timedelta

from scheduling.test_kueue_compat_flavors import (
    BORROW_AFTER,
    NO_CANDIDATES,
    T0,
    _job,
)

from budcore.config.kueue import loads_queue_config
from budcore.domain.priority import JobPriority
from budcore.scheduling import Scheduler
from budcore.scheduling.preemption import DecisionStatus


def test_scheduler_admits_on_the_next_flavor_when_preemption_finds_no_candidates() -> None:
    """Audit f1_no_candidates_stops_search through the Scheduler: flavorassigner.go
    ``shouldTryNextFlavor`` is true for ``noPreemptionCandidates``."""
    s = Scheduler(loads_queue_config(NO_CANDIDATES))
    s.submit(_job("first", "cq", gpus=8))
    s.cycle(T0)
    s.submit(_job("second", "cq", gpus=8, t=1))
    result = s.cycle(T0 + timedelta(seconds=1))
    assert [(a.job_id, a.flavors["main"]["nvidia.com/gpu"]) for a in result.admitted] == [("second", "b")]
    assert result.needs_preemption == []


def test_scheduler_preempts_where_no_borrowing_remains_after_preemption() -> None:
    """Audit f3_borrow_after_preemption through the Scheduler: the preempt-mode flavor's borrowing is
    ``borrowAfterPreemptions`` (preemption_oracle.go), so the search stops at a and 'low' is preempted
    there instead of 'high' borrowing b from the cohort."""
    s = Scheduler(loads_queue_config(BORROW_AFTER))
    s.submit(_job("low", "cq", cpu=8, prio=JobPriority.LOW))
    s.cycle(T0)
    s.submit(_job("high", "cq", cpu=4, t=1, prio=JobPriority.HIGH))
    result = s.cycle(T0 + timedelta(seconds=1))
    assert result.admitted == []
    (needs,) = result.needs_preemption
    assert (needs.flavors["main"]["cpu"], needs.borrows) == ("a", False)
    (decision,) = result.preemptions
    assert (decision.status, decision.victim_ids) == (DecisionStatus.PREEMPT, ("low",))
    s.release("low", T0 + timedelta(seconds=2))
    (admit,) = s.cycle(T0 + timedelta(seconds=2)).admitted
    assert (admit.job_id, admit.flavors["main"]["cpu"], admit.borrows) == ("high", "a", False)


def test_scheduler_passes_over_a_flavor_whose_only_victims_are_guarded() -> None:
    """(needs the follow-up diff: the cycle's oracle sees the Scheduler's facts) a preemptible=False
    job on a is no candidate, so flavor b is used."""
    s = Scheduler(loads_queue_config(NO_CANDIDATES))
    s.submit(_job("pinned", "cq", gpus=8, prio=JobPriority.LOW, preemptible=False))
    s.cycle(T0)
    s.submit(_job("high", "cq", gpus=8, t=1, prio=JobPriority.HIGH))
    result = s.cycle(T0 + timedelta(seconds=1))
    assert [(a.job_id, a.flavors["main"]["nvidia.com/gpu"]) for a in result.admitted] == [("high", "b")]
