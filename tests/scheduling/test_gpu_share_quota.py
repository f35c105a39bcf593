"""Quota counts shares of one GPU exactly (issue #18, fractional GPUs).

Kueue keeps quantities in milli-units, so a pod asking for ``nvidia.com/gpu: 500m`` uses 500 of a
ClusterQueue's 1,000 for one nominal GPU: three such jobs against one GPU admit two, with the
ClusterQueue's usage at exactly 1,000 milli-units, and the third is admitted once one of them
releases its quota.
"""

from __future__ import annotations

from datetime import timedelta

from support.admission import GPU, T0, config, cq, fill, job

from budcore.domain.job import ResourceRequest
from budcore.scheduling import Scheduler


def test_three_half_gpu_jobs_against_one_nominal_gpu_admit_two() -> None:
    scheduler = Scheduler(config([cq("q", {"default": {GPU: 1}})]))
    jobs = [job("q", "500m", name=f"half-{n}") for n in range(3)]
    admitted = fill(scheduler, jobs)
    assert admitted == ["half-0", "half-1"]
    assert scheduler.usage_of("q")[("default", GPU)] == 1000
    assert scheduler.is_queued("half-2")
    scheduler.release("half-0", T0 + timedelta(seconds=1))
    assert scheduler.usage_of("q")[("default", GPU)] == 500
    result = scheduler.cycle(T0 + timedelta(seconds=2))
    assert [a.job_id for a in result.admitted] == ["half-2"]
    assert result.admitted[0].usage == {("default", GPU): 500}


def test_shares_of_different_sizes_add_up_in_milli_units() -> None:
    scheduler = Scheduler(config([cq("q", {"default": {GPU: 1}})]))
    jobs = [job("q", "300m", name="a"), job("q", "700m", name="b"), job("q", "1m", name="c")]
    assert fill(scheduler, jobs) == ["a", "b"]  # 300 + 700 = 1000: not one milli-unit more
    assert scheduler.usage_of("q")[("default", GPU)] == 1000


def test_a_share_asks_for_one_accelerator_when_rounded_to_devices() -> None:
    request = ResourceRequest.single(gpus="500m")
    assert request.total[GPU] == 500
    assert request.accelerator_count == 1  # the device it occupies
