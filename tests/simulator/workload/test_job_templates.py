"""Jobs built from a validated template decide and serialise exactly as jobs built through pydantic.

:func:`budcore_simulator.workload.model.arrival_to_job` validates the first arrival of each shape
through pydantic and builds the next ones as checked copies (issue #19: pydantic was 7.5% of a
simulated job's cost). The copies must be indistinguishable from validated jobs (the same fields,
types, field sets and JSON) and must refuse exactly what pydantic refuses, with the same message.
This test compares the two paths on random arrivals, valid and invalid, across the fields the
template key covers and the ones copied per job.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from budcore_simulator.workload import model
from budcore_simulator.workload.model import JobArrival, arrival_to_job
from hypothesis import given, settings
from hypothesis import strategies as st

from budcore.domain.errors import ValidationError
from budcore.domain.job import Job
from budcore.testing.examples import examples

STARTS = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 3, tzinfo=timezone(timedelta(hours=3))))
OPTIONS: tuple[dict[str, Any], ...] = ({}, {"max_retries": 5}, {"with_estimate": False})


@st.composite
def arrivals(draw: st.DrawFn) -> JobArrival:
    """Arrivals over a few shapes (so templates are reused), with a few invalid values mixed in."""
    pick = draw
    return JobArrival(
        submit_s=pick(st.floats(0, 1e5)),
        runtime_s=pick(st.floats(0, 1e4)),
        gpus_per_pod=pick(st.sampled_from([0, 1, 2, 8])),
        pods=pick(st.sampled_from([1, 2])),
        cpu_milli=pick(st.sampled_from([1000, 8000])),
        memory_bytes=pick(st.sampled_from([2**30, 2**33])),
        tenant=pick(st.sampled_from(["t0", "t1", "Bad"])),
        local_queue=pick(st.sampled_from(["main", "other"])),
        priority=pick(st.sampled_from(["normal", "high", "critical"])),
        job_type=pick(st.sampled_from(["batch", "service"])),
        job_class=pick(st.sampled_from(["c1", "c2"])),
        job_id=pick(
            st.one_of(st.from_regex(r"j-[0-9]{1,6}", fullmatch=True), st.sampled_from(["", "x" * 254]))
        ),
        checkpoint_interval_s=pick(st.sampled_from([None, 600.0, -1.0])),
        deadline_s=pick(st.sampled_from([None, 5e5])),
        estimated_runtime_s=pick(st.sampled_from([None, 100.0, -5.0])),
        max_runtime_s=pick(st.sampled_from([None, 50.0, 1e6, -3.0])),
        preemptible=pick(st.booleans()),
        declares_runtime=pick(st.booleans()),
        priority_value=pick(st.sampled_from([None, 5, 10**12])),
        priority_class=pick(st.sampled_from([None, "pc"])),
    )


def _through_pydantic(arrival: JobArrival, start: datetime, options: dict[str, Any]) -> Job:
    return model._validated_job(
        arrival,
        model.ensure_utc(start, "start"),
        project="default",
        gpu_resource=model.NVIDIA_GPU,
        with_estimate=options.get("with_estimate", True),
        max_retries=options.get("max_retries"),
    )


def _outcome(build: Any, *args: Any, **kwargs: Any) -> tuple[Job | None, str | None]:
    try:
        return build(*args, **kwargs), None
    except ValidationError as error:
        return None, str(error)


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(arrivals(), min_size=1, max_size=8),
    st.sampled_from(STARTS),
    st.sampled_from(OPTIONS),
)
def test_template_copies_equal_validated_jobs(
    batch: list[JobArrival], start: datetime, options: dict[str, Any]
) -> None:
    for arrival in batch:  # several per example, so later ones are built from a template
        validated, refused = _outcome(_through_pydantic, arrival, start, options)
        copied, copy_refused = _outcome(arrival_to_job, arrival, start, **options)
        assert copy_refused == refused
        if validated is None or copied is None:
            assert validated is copied is None
            continue
        assert copied == validated
        assert copied.__dict__ == validated.__dict__
        assert list(copied.__dict__) == list(validated.__dict__)
        assert [type(v) for v in copied.__dict__.values()] == [type(v) for v in validated.__dict__.values()]
        assert copied.__pydantic_fields_set__ == validated.__pydantic_fields_set__
        assert copied.__pydantic_extra__ == validated.__pydantic_extra__
        assert copied.__pydantic_private__ == validated.__pydantic_private__
        assert copied.model_dump_json() == validated.model_dump_json()
        assert sys.getsizeof(copied.__dict__) == sys.getsizeof(validated.__dict__)


def test_copies_share_no_mutable_state_with_their_template() -> None:
    arrival = JobArrival(10.0, 60.0, 1, 1, 1000, 2**30, "t0", "main", "normal", "batch", "c1", "j-1")
    first = arrival_to_job(arrival, STARTS[0])
    second = arrival_to_job(arrival._replace(job_id="j-2", submit_s=20.0), STARTS[0])
    assert (first.id, second.id) == ("j-1", "j-2")
    assert second.created_at - first.created_at == timedelta(seconds=10)
    assert second.labels == first.labels and second.labels is not first.labels
