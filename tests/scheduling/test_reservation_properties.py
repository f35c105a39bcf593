"""Property (issue #13): a booked slot is never unavailable to its owner at its start.

A random workload (two tenants; protected or preemptible jobs; with a maximum duration, an
estimate, both or neither; runs that may overrun their estimate but never their maximum
duration) runs through the real :class:`Scheduler` around random bookings made beforehand, as a
driver would run it: releases first, then a cycle at every instant where something happens, with
every eviction carried out (released and requeued) at once. At each booking's start, after that
cycle's evictions, the ClusterQueue has at least as much of the booked flavor and resource
available as the active bookings still hold for their owners.

``BUDCORE_PROPERTY_EXAMPLES=N`` (or ``HYPOTHESIS_PROFILE=thorough``) raises the example count
(default 100; :mod:`budcore.testing.examples`).
"""

from __future__ import annotations

import heapq
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from support.admission import GPU, T0, cq, job

from budcore.domain.reservation import Reservation, ReservationConflictError
from budcore.scheduling import LocalQueue, QueueConfig, ResourceFlavor, Scheduler
from budcore.scheduling.quota import available
from budcore.testing.examples import examples

EXAMPLES = examples(100)
MIN = timedelta(minutes=1)


def config(gpus: int) -> QueueConfig:
    return QueueConfig.build(
        flavors=[ResourceFlavor(name="default")],
        cluster_queues=[cq("shared", {"default": {GPU: gpus}})],
        local_queues=[LocalQueue(name=n, namespace=f"ns-{n}", cluster_queue="shared") for n in ("a", "b")],
    )


bookings_st = st.lists(
    st.tuples(
        st.sampled_from(["ns-a", "ns-b"]),
        st.integers(1, 8),  # GPUs
        st.integers(30, 600),  # start, minutes after T0
        st.integers(30, 300),  # duration, minutes
    ),
    min_size=1,
    max_size=3,
)
jobs_st = st.lists(
    st.fixed_dictionaries(
        {
            "queue": st.sampled_from(["a", "b"]),
            "gpus": st.integers(1, 8),
            "at": st.integers(0, 600),
            "preemptible": st.booleans(),
            "max_duration": st.none() | st.integers(10, 400),
            "estimate": st.none() | st.integers(10, 400),
            "overrun": st.floats(0.3, 3.0),
        }
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=EXAMPLES)
@given(gpus=st.integers(4, 12), bookings=bookings_st, specs=jobs_st)
def test_booked_room_is_free_for_its_owner_at_the_start(gpus: int, bookings, specs) -> None:  # type: ignore[no-untyped-def]
    scheduler = Scheduler(config(gpus))
    for i, (owner, amount, start, length) in enumerate(bookings):
        begin = T0 + start * MIN
        try:
            scheduler.reserve(
                Reservation.of(
                    f"r{i}", owner, "shared", "default", GPU, min(amount, gpus), begin, begin + length * MIN
                )
            )
        except ReservationConflictError:
            continue
    booked = scheduler.reservations()

    jobs = {}
    runtime = {}
    arrivals: list[tuple[int, str]] = []
    for spec in specs:
        fields: dict[str, object] = {"preemptible": spec["preemptible"]}
        if spec["max_duration"] is not None:
            fields["max_duration"] = spec["max_duration"] * MIN
        if spec["estimate"] is not None:
            fields["estimated_duration"] = spec["estimate"] * MIN
        j = job(spec["queue"], spec["gpus"]).model_copy(update=fields)
        base = spec["estimate"] or spec["max_duration"] or 120
        run = int(base * spec["overrun"]) + 1
        if spec["max_duration"] is not None:
            run = min(run, spec["max_duration"])  # execution limits stop it at its maximum
        jobs[j.id], runtime[j.id] = j, run * MIN
        arrivals.append((spec["at"], j.id))

    instants = {T0 + at * MIN for at, _ in arrivals} | {r.start for r in booked} | {r.end for r in booked}
    ends: list[tuple[object, str]] = []
    arrivals.sort()
    pending_arrivals = [(T0 + at * MIN, job_id) for at, job_id in arrivals]
    clock = T0
    horizon = T0 + timedelta(days=2)
    while clock <= horizon:
        while ends and ends[0][0] <= clock:  # type: ignore[operator]
            _, job_id = heapq.heappop(ends)
            if job_id in scheduler.admitted:
                scheduler.release(job_id, clock)
        while pending_arrivals and pending_arrivals[0][0] <= clock:
            _, job_id = pending_arrivals.pop(0)
            scheduler.submit(jobs[job_id], now=clock)
        result = scheduler.cycle(clock)
        for admit in result.admitted:
            heapq.heappush(ends, (clock + runtime[admit.job_id], admit.job_id))
        for eviction in result.evictions:
            scheduler.release(eviction.job_id, clock)
            scheduler.submit(jobs[eviction.job_id], now=clock, timestamp=clock.timestamp())
        for reservation in booked:
            if reservation.start == clock:
                rooms = scheduler.bookings.rooms(clock, scheduler.admitted)
                held = sum(room.held for room in rooms.get("shared", ()) if room.reservation.active(clock))
                node = scheduler.tree.cluster_queues["shared"]
                free = available(node, ("default", GPU), scheduler.usage)
                assert free >= held, (reservation.describe(), free, held)
        upcoming = [t for t in instants if t > clock]
        if ends:
            upcoming.append(ends[0][0])  # type: ignore[arg-type]
        wakeup = scheduler.next_wakeup()
        if wakeup is not None and wakeup > clock:
            upcoming.append(wakeup)
        if not upcoming:
            break
        clock = min(upcoming)  # type: ignore[type-var]
