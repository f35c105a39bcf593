"""PostgreSQL adapter throughput: submissions/s and admissions/s with 1 and 8 replica processes.

Each replica is a forked process with its own connection pool, as several scheduler replicas
sharing one database would be. Per worker count:

- *submissions*: every replica creates queued jobs (one transaction each: job row + outbox event)
  for ``--seconds``;
- *admissions*: every replica runs scheduling cycles: read the 32 oldest queued jobs, then admit
  them in random order through the ledger (row locks on the quota rows, optimistic update of the
  job, lease, reservation, outbox event — one transaction each). Conflicts — another replica
  admitted that job since the cycle read it — are counted, not retried.

Against a throwaway server (started here, ``fsync=off``) unless ``--url`` or
``$BUDCORE_DATABASE_URL`` names a database, which must be at head and is **emptied** first.
Times are wall-clock from a barrier after every replica has connected.

    .venv/bin/python benchmarks/bench_postgres.py [--workers 1,8] [--seconds 3] [--url URL]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from budcore_adapters.postgres import AdmissionLedger, PoolSettings, PostgresJobStore, upgrade
from budcore_adapters.postgres.schema import jobs, leases, outbox, quota_reservations, quota_usage
from budcore_adapters.postgres.tempserver import TemporaryPostgres

from budcore.domain.errors import ConflictError, InvalidTransitionError
from budcore.domain.events import JobTransitioned
from budcore.domain.ids import TenantId
from budcore.domain.job import Job, JobStatus, ResourceRequest
from budcore.domain.resources import NVIDIA_GPU
from budcore.domain.timeutil import utcnow
from budcore.ports import JobFilter

FORK = multiprocessing.get_context("fork")
TENANTS = [TenantId(f"tenant-{i}") for i in range(4)]
QUEUES = ["team-a", "team-b", "team-c", "team-d"]
FLAVORS = {"cpu": "default", "memory": "default", NVIDIA_GPU: "h100"}


@dataclass(frozen=True)
class Result:
    done: int
    conflicts: int
    seconds: float


def _new_job(rng: random.Random) -> tuple[Job, JobTransitioned]:
    now = utcnow()
    job = Job(
        name="bench",
        tenant=rng.choice(TENANTS),
        status=JobStatus.QUEUED,
        local_queue=rng.choice(QUEUES),
        request=ResourceRequest.single(gpus=rng.choice([1, 1, 2, 4]), cpu=4, memory="16Gi"),
        created_at=now,
        updated_at=now,
    )
    event = JobTransitioned(
        job_id=job.id, tenant=job.tenant, from_status=JobStatus.QUEUED, to_status=JobStatus.QUEUED,
        reason="submitted", at=now, version=1,
    )  # fmt: skip
    return job, event


def _submit(store: PostgresJobStore, rng: random.Random) -> tuple[int, int]:
    job, event = _new_job(rng)
    store.create(job, events=[event])
    return 1, 0


def _admit(store: PostgresJobStore, rng: random.Random) -> tuple[int, int]:
    """One scheduling cycle: read the FIFO head once, then admit it in random order."""
    ledger = AdmissionLedger(store)
    head = store.list(None, JobFilter(statuses=frozenset({JobStatus.QUEUED}), limit=32))
    rng.shuffle(head)
    admitted = conflicts = 0
    for job in head:
        try:
            ledger.admit(job, cluster_queue=job.local_queue or QUEUES[0], flavors=FLAVORS, now=utcnow())
        except (ConflictError, InvalidTransitionError):
            conflicts += 1  # another replica admitted it since we read the head
        else:
            admitted += 1
    return admitted, conflicts


def _replica(url: str, op_name: str, seconds: float, seed: int, barrier: Any, results: Any) -> None:
    op: Callable[[PostgresJobStore, random.Random], tuple[int, int]] = {"submit": _submit, "admit": _admit}[
        op_name
    ]
    rng = random.Random(seed)
    store = PostgresJobStore(url, pool=PoolSettings(size=1, max_overflow=0))
    done = conflicts = 0
    barrier.wait()
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        ok, lost = op(store, rng)
        done, conflicts = done + ok, conflicts + lost
    store.close()
    results.put(Result(done, conflicts, elapsed))


def run_phase(url: str, op: str, workers: int, seconds: float) -> tuple[float, int]:
    """``op`` ran by ``workers`` replicas for ``seconds``: (operations per second, conflicts)."""
    barrier = FORK.Barrier(workers)
    results = FORK.Queue()
    procs = [
        FORK.Process(target=_replica, args=(url, op, seconds, 1000 * workers + i, barrier, results))
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    collected = [results.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"a {op} replica failed (exit {p.exitcode})")
    wall = max(r.seconds for r in collected)
    return sum(r.done for r in collected) / wall, sum(r.conflicts for r in collected)


def reset(url: str, quota_gpus: int) -> None:
    """Empty the budcore tables and configure roomy quota rows for every ClusterQueue."""
    store = PostgresJobStore(url)
    try:
        with store.engine.begin() as conn:
            for table in (quota_reservations, leases, outbox, quota_usage, jobs):
                conn.execute(sa.delete(table))
        ledger = AdmissionLedger(store)
        for queue in QUEUES:
            ledger.set_quota(queue, "h100", NVIDIA_GPU, quota_gpus * 1000)
            ledger.set_quota(queue, "default", "cpu", quota_gpus * 8 * 1000)
            ledger.set_quota(queue, "default", "memory", 2**62)  # ~4 PiB: never the limit here
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,8", help="comma-separated replica counts")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each phase")
    parser.add_argument("--url", default=os.environ.get("BUDCORE_DATABASE_URL"))
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]

    server: TemporaryPostgres | None = None
    url = args.url
    if url is None:
        server = TemporaryPostgres().start()
        url = server.create_database("bench")
    try:
        upgrade(url)
        print(f"{'replicas':>8} | {'submissions/s':>13} | {'admissions/s':>12} | {'admit conflicts':>15}")
        print(f"{'-' * 8}-+-{'-' * 13}-+-{'-' * 12}-+-{'-' * 15}")
        for workers in counts:
            reset(url, quota_gpus=10**6)
            submits, _ = run_phase(url, "submit", workers, args.seconds)
            admits, conflicts = run_phase(url, "admit", workers, args.seconds)
            print(f"{workers:>8} | {submits:>13,.0f} | {admits:>12,.0f} | {conflicts:>15,}")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
