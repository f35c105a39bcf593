"""Misuse of the Scheduler API is a typed error that leaves its state as it was."""

from __future__ import annotations

from datetime import datetime

import pytest
from support.admission import GPU, T0, config, cq, fill, job, used

from budcore.domain.errors import AlreadyExistsError, ValidationError
from budcore.scheduling import Scheduler
from budcore.scheduling.preemption.aging import AgingPolicy


def test_resubmitting_an_admitted_job_is_refused_and_quota_is_counted_once() -> None:
    s = Scheduler(config([cq("q", {"default": {GPU: 8}})]))
    first = job("q", 4, name="a")
    assert fill(s, [first]) == ["a"]
    with pytest.raises(AlreadyExistsError):
        s.submit(first)
    assert used(s, "q") == 4
    s.release("a", T0)
    assert used(s, "q") == 0


def test_a_naive_now_is_refused_before_anything_is_admitted() -> None:
    s = Scheduler(config([cq("q", {"default": {GPU: 8}})]))
    s.submit(job("q", 4, name="a"))
    with pytest.raises(ValidationError) as info:
        s.cycle(datetime(2026, 1, 1))
    assert info.value.path == "now"
    assert s.admitted == {} and "a" in s.pending
    with pytest.raises(ValidationError):
        s.age(datetime(2026, 1, 1), AgingPolicy())


def test_removing_a_queue_that_still_holds_work_is_refused_and_changes_nothing() -> None:
    s = Scheduler(config([cq("q", {"default": {GPU: 8}}), cq("r", {"default": {GPU: 8}})]))
    assert fill(s, [job("q", 4, name="a")]) == ["a"]
    before = s.config
    with pytest.raises(ValidationError) as info:
        s.reconfigure(config([cq("r", {"default": {GPU: 8}})]))
    assert "ClusterQueue(s) q" in info.value.message and s.config is before
    s.release("a", T0)
    s.reconfigure(config([cq("r", {"default": {GPU: 8}})]))  # nothing left in q: allowed
    assert set(s.config.cluster_queues) == {"r"}
