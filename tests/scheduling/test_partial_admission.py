"""Partial admission (issue #20, behaviour 8): ``PodSet.min_count``, Kueue's ``minCount``.

Kueue (``scheduler.go`` ``getInitialAssignments``, ``flavorassigner/podset_reducer.go``) admits
fewer pods when neither the whole count fits nor a preemption with victims makes room for it: a
binary search over the share of ``count − minCount`` every pod set gives up. The conformance tables
(tests/kueue_conformance/schedule) check Kueue's own cases; these check budcore's surface.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.admission import GPU, T0, config, cq

from budcore.config.jobs import load_jobs
from budcore.domain.job import Job, PodSet, ResourceRequest
from budcore.domain.resources import ResourceVector
from budcore.scheduling import Scheduler
from budcore.scheduling.assignment import Assignment, Mode, reduce_pod_sets


def gang(name: str, queue: str, *pod_sets: tuple[str, int, int | None]) -> Job:
    """A job of ``(name, count, min_count)`` pod sets, one GPU a pod."""
    return Job(
        id=name,
        name=name,
        tenant=f"ns-{queue}",
        local_queue=queue,
        request=ResourceRequest(
            pod_sets=tuple(
                PodSet(name=ps, count=count, min_count=least, resources=ResourceVector.of({GPU: 1}))
                for ps, count, least in pod_sets
            )
        ),
        created_at=T0,
        updated_at=T0,
    )


def test_min_count_above_count_is_refused() -> None:
    with pytest.raises(ValueError, match=r"min_count \(5\) must not exceed count \(4\)"):
        PodSet(count=4, min_count=5)
    assert not ResourceRequest(pod_sets=(PodSet(count=4, min_count=4),)).partially_admissible
    assert ResourceRequest(pod_sets=(PodSet(count=4, min_count=3),)).partially_admissible


def test_the_largest_count_that_fits_is_admitted_and_reported() -> None:
    s = Scheduler(config([cq("q", {"default": {GPU: 5}})]))
    s.submit(gang("elastic", "q", ("workers", 8, 2)))
    result = s.cycle(T0)
    (admit,) = result.admitted
    # Kueue's search over the 6 pods it may give up asks for 5, 7, then 6 pods: 5 is the most that fits.
    assert admit.pod_counts == (5,)
    assert admit.usage == {("default", GPU): 5000}
    assert s.admitted["elastic"].pod_counts == (5,)


def test_a_whole_fit_reports_no_reduction() -> None:
    s = Scheduler(config([cq("q", {"default": {GPU: 8}})]))
    s.submit(gang("elastic", "q", ("workers", 8, 2)))
    (admit,) = s.cycle(T0).admitted
    assert admit.pod_counts is None
    assert admit.usage == {("default", GPU): 8000}


def test_pod_sets_give_up_the_same_share() -> None:
    """The fixed pod set keeps its count, the others give up the same share of what they may:
    a gives up 8 × i / 12 and b 4 × i / 12 at search index i (Go's integer division); 18 pods must
    come down to 12, first reached at i = 6: a 10 → 6, b 6 → 4 (i = 5 leaves 14)."""
    s = Scheduler(config([cq("q", {"default": {GPU: 12}})]))
    s.submit(gang("mixed", "q", ("launcher", 2, None), ("a", 10, 2), ("b", 6, 2)))
    (admit,) = s.cycle(T0).admitted
    assert admit.pod_counts == (2, 6, 4)
    assert admit.usage == {("default", GPU): 12_000}


def test_nothing_is_admitted_below_min_count() -> None:
    s = Scheduler(config([cq("q", {"default": {GPU: 3}})]))
    s.submit(gang("elastic", "q", ("workers", 8, 4)))
    result = s.cycle(T0)
    assert result.admitted == []
    # The message is the whole count's, as Kueue's (the full assignment is kept when no count fits).
    assert "insufficient" in s.explain("elastic")


def test_reduce_pod_sets_is_kueues_binary_search() -> None:
    """``PodSetReducer.Search``: the first index ``fits`` accepts, counts ``count − delta·i/total``."""
    request = ResourceRequest(pod_sets=(PodSet(name="p", count=10, min_count=4),))
    asked: list[list[int]] = []

    def fits(counts: list[int]) -> Assignment | None:
        asked.append(counts)
        return Assignment(Mode.FIT, 0, {}, {}, counts=tuple(counts)) if counts[0] <= 7 else None

    found = reduce_pod_sets(request, fits)
    assert found is not None and found.counts == (7,)
    assert asked[0] == [7]  # index 3 of 0..6 first, as sort.Search starts in the middle
    assert reduce_pod_sets(ResourceRequest(pod_sets=(PodSet(count=3),)), fits) is None


def test_min_count_loads_from_job_yaml(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(
        "apiVersion: budcore.io/v1alpha1\nkind: Job\nmetadata: {name: elastic, namespace: team}\n"
        "spec:\n  local_queue: q\n  request:\n    pod_sets:\n"
        "      - {name: workers, count: 8, min_count: 2, resources: {nvidia.com/gpu: 1}}\n"
    )
    (job,) = load_jobs(path)
    assert job.request.pod_sets[0].min_count == 2
    assert Job.model_validate_json(job.model_dump_json()) == job
