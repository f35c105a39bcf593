"""Property (issue #13): a time window is never violated.

Random windowed jobs (windows that wrap midnight or not, in zones with daylight saving, some with
``must_finish_in_window``) arrive at random instants and run their declared time; a driver runs a
cycle at every arrival, end and :meth:`Scheduler.next_wakeup`, and at random instants besides.
Every admission happens while the job's window is open, and a must-finish job's declared run
ends by the window's close.

``BUDCORE_PROPERTY_EXAMPLES=N`` (or ``HYPOTHESIS_PROFILE=thorough``) raises the example count
(default 100; :mod:`budcore.testing.examples`).
"""

from __future__ import annotations

import heapq
from datetime import time, timedelta

from hypothesis import event, given, settings
from hypothesis import strategies as st
from support.admission import GPU, T0, cq, job

from budcore.domain.timewindow import TimeWindow
from budcore.scheduling import LocalQueue, QueueConfig, ResourceFlavor, Scheduler
from budcore.testing.examples import examples

EXAMPLES = examples(100)
ZONES = ["UTC", "Europe/Berlin", "America/New_York"]
START = T0 + timedelta(days=85)  # late March: Europe and America change clocks in these days


def config(gpus: int) -> QueueConfig:
    return QueueConfig.build(
        flavors=[ResourceFlavor(name="default")],
        cluster_queues=[cq("q", {"default": {GPU: gpus}})],
        local_queues=[LocalQueue(name="q", namespace="ns-q", cluster_queue="q")],
    )


windows = st.builds(
    lambda h1, h2, zone, must: (time(h1), time(h2), zone, must),
    st.integers(0, 23),
    st.integers(0, 23),
    st.sampled_from(ZONES),
    st.booleans(),
).filter(lambda w: w[0] != w[1])

specs_st = st.lists(
    st.tuples(
        st.none() | windows,
        st.integers(0, 72 * 60),  # arrival, minutes after START
        st.integers(10, 300),  # run, minutes
        st.integers(1, 4),  # GPUs
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=EXAMPLES)
@given(gpus=st.integers(2, 6), specs=specs_st, extra=st.lists(st.integers(0, 96 * 60), max_size=5))
def test_admissions_happen_only_inside_the_window(gpus: int, specs, extra) -> None:  # type: ignore[no-untyped-def]
    scheduler = Scheduler(config(gpus))
    jobs, runs, arrivals = {}, {}, []
    for window, at, run, size in specs:
        fields: dict[str, object] = {"estimated_duration": timedelta(minutes=run)}
        if window is not None:
            start, end, zone, must = window
            if must:
                length = (
                    (end.hour - start.hour) % 24 * 60
                )  # minutes the window lasts on a day without a clock change
                if run > length - 60:
                    must = False  # a run that might never fit would be refused at submission
            fields["time_window"] = TimeWindow(
                start=start, end=end, timezone=zone, must_finish_in_window=must
            )
        j = job("q", size).model_copy(update=fields)
        jobs[j.id], runs[j.id] = j, timedelta(minutes=run)
        arrivals.append((START + timedelta(minutes=at), j.id))
    arrivals.sort()
    probes = sorted(START + timedelta(minutes=m) for m in extra)
    ends: list[tuple[object, str]] = []
    clock = START
    horizon = START + timedelta(days=6)
    while clock <= horizon:
        while ends and ends[0][0] <= clock:  # type: ignore[operator]
            _, job_id = heapq.heappop(ends)
            scheduler.release(job_id, clock)
        while arrivals and arrivals[0][0] <= clock:
            _, job_id = arrivals.pop(0)
            scheduler.submit(jobs[job_id], now=clock)
        for admit in scheduler.cycle(clock).admitted:
            j = jobs[admit.job_id]
            window = j.time_window
            if window is not None:
                event("a windowed job admitted")
                assert window.contains(clock), (j.id, clock, window.describe())
                if window.must_finish_in_window:
                    event("a must-finish job admitted")
                    assert clock + runs[j.id] <= window.closes_at(clock), (j.id, clock, window.describe())
            heapq.heappush(ends, (clock + runs[admit.job_id], admit.job_id))
        upcoming = [t for t in (arrivals[0][0] if arrivals else None, scheduler.next_wakeup()) if t]
        upcoming += [t for t in probes if t > clock][:1]
        if ends:
            upcoming.append(ends[0][0])  # type: ignore[arg-type]
        upcoming = [t for t in upcoming if t > clock]  # type: ignore[operator]
        if not upcoming:
            break
        clock = min(upcoming)  # type: ignore[type-var]
