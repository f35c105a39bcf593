"""One scheduler replica for the multi-process stress and crash tests.

The tests fork it (:func:`run_replica` in a child process: no interpreter start-up or imports
per replica); ``python stress_worker.py URL MAX_OPS SEED LOG STATE [--dispatch]`` runs one by hand.
A replica hammers the database with random submissions (some replaying shared idempotency
keys), admissions through the ledger, starts, completions, preemptions and requeues — and with
``--dispatch`` also outbox dispatching to a file sink. It appends what it *knows* committed to ``LOG``:

- ``W <tenant> <job_id> <version>``: a write this replica made and the database acknowledged;
- ``K <tenant> <key> <job_id>``: the job a submission with idempotency key ``key`` resolved to;
- ``D <tenant> <job_id> <version>``: an event this replica's dispatcher delivered.

``STATE`` is a 16-byte file shared with the parent through ``mmap``: byte 0 is 1 while a
database transaction is open (so the crash test can tell whether a SIGKILL landed mid-transaction);
the worker sets byte 2 once connected and runs until the parent sets byte 1 (stop) or it has done
``MAX_OPS`` operations (0: no limit); bytes 8-16 count finished operations. The parent starts its
clock when every replica is ready, so slow interpreter start-up on a busy machine does not eat
into the measured window. :func:`run_replica` returns the counts (the script prints them as JSON). Expected
outcomes of contention (conflicts, lost quota races, stale reads) are counted; anything else
crashes the worker and fails the test.
"""

from __future__ import annotations

import json
import mmap
import random
import struct
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

import sqlalchemy as sa
from budcore_adapters.postgres import (
    LeasePolicy,
    OutboxDispatcher,
    PoolSettings,
    PostgresAdmissionLedger,
    PostgresJobStore,
    QuotaUnavailableError,
)

from budcore.domain.errors import ConflictError, InvalidTransitionError
from budcore.domain.events import DomainEvent, JobTransitioned
from budcore.domain.ids import TenantId
from budcore.domain.job import Job, JobStatus, ResourceRequest
from budcore.domain.lifecycle import transition
from budcore.domain.resources import NVIDIA_GPU
from budcore.domain.timeutil import utcnow
from budcore.ports import JobFilter

TENANTS = [TenantId("acme"), TenantId("globex"), TenantId("initech")]
# local queue -> (ClusterQueue, flavor assignment); both ClusterQueues share cohort "research".
QUEUES = {
    "lq-a": ("team-a", {"cpu": "default", "memory": "default", NVIDIA_GPU: "h100"}),
    "lq-b": ("team-b", {"cpu": "default", "memory": "default", NVIDIA_GPU: "h100"}),
}
COHORT = "research"
KEY_POOL = 8
OPS = ["submit"] * 3 + ["admit"] * 4 + ["start"] * 2 + ["complete"] * 2 + ["preempt", "requeue"]


class FileSink:
    def __init__(self, log: TextIO) -> None:
        self.log = log

    def publish(self, events: Sequence[DomainEvent]) -> None:
        self.log.write("".join(f"D {e.tenant} {e.job_id} {e.version}\n" for e in events))
        self.log.flush()


class Replica:
    def __init__(self, url: str, seed: int, log: TextIO, state: mmap.mmap, dispatch: bool) -> None:
        self.rng = random.Random(seed)
        self.log = log
        self.state = state
        self.counts: Counter[str] = Counter()
        self.store = PostgresJobStore(
            url, pool=PoolSettings(size=2, max_overflow=1), lease=LeasePolicy(holder=f"replica-{seed}")
        )
        self.ledger = PostgresAdmissionLedger(self.store)
        self.dispatcher = OutboxDispatcher(sink=FileSink(log), engine=self.store.engine) if dispatch else None
        engine = self.store.engine
        sa.event.listen(engine, "begin", lambda conn: self._in_transaction(True))
        sa.event.listen(engine, "commit", lambda conn: self._in_transaction(False))
        sa.event.listen(engine, "rollback", lambda conn: self._in_transaction(False))
        # Widen the window between statements so that kills land inside transactions often.
        sa.event.listen(engine, "after_cursor_execute", self._jitter)

    def _in_transaction(self, value: bool) -> None:
        self.state[0] = 1 if value else 0

    def _jitter(self, *args: Any) -> None:
        if self.rng.random() < 0.2:
            time.sleep(self.rng.uniform(0, 0.003))

    def wrote(self, job: Job) -> None:
        self.log.write(f"W {job.tenant} {job.id} {job.version}\n")
        self.log.flush()

    def pick(self, status: JobStatus) -> Job | None:
        tenant = self.rng.choice([None, *TENANTS])
        found = self.store.list(tenant, JobFilter(statuses=frozenset({status}), limit=6))
        return self.rng.choice(found) if found else None

    def run(self, max_ops: int) -> None:
        self.state[2] = 1  # ready
        done = 0
        while self.state[1] == 0 and (max_ops == 0 or done < max_ops):
            op = self.rng.choice([*OPS, "dispatch"] if self.dispatcher else OPS)
            try:
                getattr(self, f"op_{op}")()
            except ConflictError:
                self.counts["conflict"] += 1
            except InvalidTransitionError:
                self.counts["stale_status"] += 1
            except QuotaUnavailableError:
                self.counts["quota_refused"] += 1
            done += 1
            struct.pack_into("<q", self.state, 8, done)

    def op_submit(self) -> None:
        tenant = self.rng.choice(TENANTS)
        key = f"key-{self.rng.randrange(KEY_POOL)}" if self.rng.random() < 0.3 else None
        now = utcnow()
        job = Job(
            name="stress",
            tenant=tenant,
            status=JobStatus.QUEUED,
            local_queue=self.rng.choice(sorted(QUEUES)),
            request=ResourceRequest.single(gpus=self.rng.randint(1, 4), cpu=4, memory="16Gi"),
            idempotency_key=key,
            created_at=now,
            updated_at=now,
        )
        event = JobTransitioned(
            job_id=job.id, tenant=tenant, from_status=JobStatus.QUEUED, to_status=JobStatus.QUEUED,
            reason="submitted", at=now, version=1,
        )  # fmt: skip
        stored = self.store.create(job, events=[event])
        if stored.id == job.id:
            self.counts["submitted"] += 1
            self.wrote(stored)
        else:
            self.counts["duplicate_submit"] += 1
        if key is not None:
            self.log.write(f"K {tenant} {key} {stored.id}\n")

    def op_admit(self) -> None:
        job = self.pick(JobStatus.QUEUED)
        if job is None:
            return
        cluster_queue, flavors = QUEUES[job.local_queue or "lq-a"]
        admission = self.ledger.admit(
            job, cluster_queue=cluster_queue, flavors=flavors, now=utcnow(), cohorts=[COHORT]
        )
        self.counts["admitted"] += 1
        self.wrote(admission.job)

    def _move(self, source: JobStatus, target: JobStatus, counter: str) -> None:
        job = self.pick(source)
        if job is None:
            return
        new, event = transition(job, target, now=utcnow(), reason=counter)
        self.wrote(self.store.update(new, events=[event]))
        self.counts[counter] += 1

    def op_start(self) -> None:
        self._move(JobStatus.ADMITTED, JobStatus.RUNNING, "started")

    def op_complete(self) -> None:
        self._move(JobStatus.RUNNING, JobStatus.COMPLETED, "completed")

    def op_preempt(self) -> None:
        self._move(JobStatus.RUNNING, JobStatus.PREEMPTED, "preempted")

    def op_requeue(self) -> None:
        self._move(JobStatus.PREEMPTED, JobStatus.QUEUED, "requeued")

    def op_dispatch(self) -> None:
        assert self.dispatcher is not None
        self.counts["dispatched"] += self.dispatcher.dispatch_once(batch=self.rng.randint(1, 20))


def run_replica(
    url: str, max_ops: int, seed: int, log_path: str, state_path: str, dispatch: bool
) -> dict[str, int]:
    """Run one replica to completion (stop flag or ``max_ops``) and return its counts."""
    with open(state_path, "r+b") as f:
        state = mmap.mmap(f.fileno(), 16)
    with open(log_path, "a", encoding="utf-8") as log:
        replica = Replica(url, seed, log, state, dispatch)
        replica.run(max_ops)
        replica.store.close()
    return dict(replica.counts)


def main(argv: list[str]) -> None:
    url, max_ops, seed, log_path, state_path = argv[:5]
    print(json.dumps(run_replica(url, int(max_ops), int(seed), log_path, state_path, "--dispatch" in argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
