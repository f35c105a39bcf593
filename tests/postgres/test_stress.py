"""Eight replica processes on one database; then the same with replicas SIGKILLed at random.

Each replica is ``stress_worker.run_replica`` in its own forked process (own pool, own
connections; forking skips the interpreter start-up that would dominate a short run on a busy
machine), so these tests exercise the real multi-replica protocol: row locks, ``SKIP LOCKED``,
unique constraints and transactions. The invariants checked afterwards:

- **no job admitted twice / no update lost**: every job's outbox events are exactly versions
  ``1..version``, each a legal lifecycle edge continuing the previous one and ending in the stored
  status; no version was acknowledged to two replicas; every acknowledged write is in the outbox;
- **no quota exceeded**: sampled continuously during the run in consistent snapshots
  (``used <= quota`` and ``used == Σ reservations`` on every row) and checked at the end, where
  each quota-holding job holds exactly its request on its ClusterQueue and cohort rows and every
  admitted job has a lease;
- **every outbox event delivered exactly once** across the concurrent dispatchers;
- **idempotency**: every replay of a key resolved to the one stored job.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import multiprocessing
import os
import random
import signal
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip("sqlalchemy")

import sqlalchemy as sa
from budcore_adapters.postgres import (
    OutboxDispatcher,
    PostgresAdmissionLedger,
    PostgresJobStore,
    QuotaKey,
    cohort_scope,
    create_engine,
    upgrade,
)
from budcore_adapters.postgres.records import job_from_doc
from budcore_adapters.postgres.schema import jobs, leases, outbox, quota_reservations, quota_usage

from budcore.domain.events import DomainEvent
from budcore.domain.job import JobStatus
from budcore.domain.lifecycle import can_transition
from budcore.domain.resources import NVIDIA_GPU
from budcore.domain.timeutil import utcnow
from budcore.testing.fakes import RecordingEventSink

pytestmark = pytest.mark.postgres

WORKER = Path(__file__).with_name("stress_worker.py")
REPLICAS = 8
OPS_PER_REPLICA = 120
MAX_SECONDS = 20.0  # hard bound on the measured window, whatever the machine's load
CRASH_SECONDS = 5.0
MIN_KILLS, MIN_KILLS_MID_TRANSACTION = 10, 3  # what makes the crash test meaningful
GPU = 1000  # milli-units per GPU
QUOTAS = {
    ("team-a", "h100", NVIDIA_GPU): 12 * GPU,
    ("team-b", "h100", NVIDIA_GPU): 12 * GPU,
    (cohort_scope("research"), "h100", NVIDIA_GPU): 16 * GPU,  # less than 12 + 12: cohort contention
}
ROOMY = {"cpu": 100_000 * GPU, "memory": 2**60}


@pytest.fixture
def stress_db(new_database: Callable[[], str]) -> Iterator[str]:
    url = new_database()
    upgrade(url)
    store = PostgresJobStore(url)
    ledger = PostgresAdmissionLedger(store)
    for (scope, flavor, resource), quota in QUOTAS.items():
        ledger.set_quota(scope, flavor, resource, quota)
    for scope in ("team-a", "team-b", cohort_scope("research")):
        for resource, quota in ROOMY.items():
            ledger.set_quota(scope, "default", resource, quota)
    store.close()
    yield url


def _load_worker_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("budcore_pg_stress_worker", WORKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


stress_worker = _load_worker_module()
FORK = multiprocessing.get_context("fork")


def _replica_child(
    url: str, max_ops: int, seed: int, log: str, state: str, dispatch: bool, result: str
) -> None:
    try:
        counts = stress_worker.run_replica(url, max_ops, seed, log, state, dispatch)
    except BaseException:
        Path(result).write_text(json.dumps({"error": traceback.format_exc()}))
        raise
    Path(result).write_text(json.dumps(counts))


@dataclass
class Worker:
    seed: int
    process: BaseProcess
    state: Path
    log: Path
    result: Path

    def ops(self) -> int:
        return int.from_bytes(self.state.read_bytes()[8:16], "little")

    def in_transaction(self) -> bool:
        return self.state.read_bytes()[0] == 1

    def ready(self) -> bool:
        return self.state.read_bytes()[2] == 1 or not self.process.is_alive()

    def stop(self) -> None:
        with self.state.open("r+b") as f:
            f.seek(1)
            f.write(b"\x01")

    def kill(self) -> None:
        assert self.process.pid is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.join()


@dataclass
class Fleet:
    url: str
    tmp: Path
    dispatch: bool
    workers: list[Worker] = field(default_factory=list)
    finished: list[Worker] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    drained: list[tuple[str, str, int]] = field(default_factory=list)  # the final drain's deliveries

    def spawn(self, seed: int, max_ops: int = 0) -> Worker:
        state, log, result = (self.tmp / f"{kind}-{seed}" for kind in ("state", "log", "result"))
        state.write_bytes(bytes(16))
        args = (self.url, max_ops, seed, str(log), str(state), self.dispatch, str(result))
        process = FORK.Process(target=_replica_child, args=args, daemon=True)
        process.start()
        worker = Worker(seed, process, state, log, result)
        self.workers.append(worker)
        return worker

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not all(w.ready() for w in self.workers):
            assert time.monotonic() < deadline, "replicas did not start"
            time.sleep(0.02)

    def run_for(self, seconds: float) -> None:
        """Let the replicas work for ``seconds`` (or until all reach their op limit)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end and any(w.process.is_alive() for w in self.workers):
            time.sleep(0.02)

    def wait(self, timeout: float) -> None:
        """Tell every replica to stop, collect its counts, and fail on any replica error."""
        for worker in self.workers:
            worker.stop()
        for worker in self.workers:
            worker.process.join(timeout)
            if worker.process.exitcode == -signal.SIGKILL:
                continue
            outcome = json.loads(worker.result.read_text()) if worker.result.exists() else {}
            assert worker.process.exitcode == 0, f"replica {worker.seed} failed: {outcome.get('error')}"
            self.counts.update(outcome)
        self.finished.extend(self.workers)
        self.workers = []

    def kill_all(self) -> None:
        for worker in self.workers:
            if worker.process.is_alive():
                worker.kill()

    def log_lines(self) -> list[list[str]]:
        lines: list[list[str]] = []
        for worker in self.finished:
            if worker.log.exists():
                lines.extend(line.split() for line in worker.log.read_text().splitlines() if line.strip())
        return lines


def _sample_quota(url: str, stop: Any, result: str) -> None:
    """Child process: check quota rows in consistent snapshots until ``stop`` is set."""
    engine = create_engine(url)
    r = quota_reservations.c
    reserved = sa.select(r.cluster_queue, r.flavor, r.resource, sa.func.sum(r.amount)).group_by(
        r.cluster_queue, r.flavor, r.resource
    )
    samples, violations = 0, []
    try:
        while not stop.is_set():
            with engine.connect() as conn:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    rows = conn.execute(sa.select(quota_usage)).all()
                    sums = {(r[0], r[1], r[2]): int(r[3]) for r in conn.execute(reserved)}
            for row in rows:
                key = (row.cluster_queue, row.flavor, row.resource)
                if row.used > row.quota or row.used != sums.get(key, 0):
                    violations.append(f"{key}: used {row.used} quota {row.quota} reserved {sums.get(key)}")
            samples += 1
            time.sleep(0.02)
    finally:
        engine.dispose()
        Path(result).write_text(json.dumps({"samples": samples, "violations": violations}))


class QuotaSampler:
    """A process that checks the quota invariant continuously while the replicas run."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.stop_event = FORK.Event()
        self.result = tmp / "sampler.json"
        self.process = FORK.Process(
            target=_sample_quota, args=(url, self.stop_event, str(self.result)), daemon=True
        )
        self.samples = 0
        self.violations: list[str] = []

    def __enter__(self) -> QuotaSampler:
        self.process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.process.join(60)
        if self.result.exists():
            outcome = json.loads(self.result.read_text())
            self.samples, self.violations = outcome["samples"], outcome["violations"]


def check_invariants(url: str, fleet: Fleet, *, crashed: bool) -> dict[str, int]:
    """Everything the module docstring promises; returns counts for the report."""
    store = PostgresJobStore(url)
    try:
        with store.engine.connect() as conn:
            all_jobs = {(r.tenant, r.id): job_from_doc(r.doc) for r in conn.execute(sa.select(jobs))}
            reservations: dict[tuple[str, str], dict[QuotaKey, int]] = defaultdict(dict)
            for r in conn.execute(sa.select(quota_reservations)):
                reservations[(r.tenant, r.job_id)][QuotaKey(r.cluster_queue, r.flavor, r.resource)] = r.amount
            usage = {
                QuotaKey(r.cluster_queue, r.flavor, r.resource): r
                for r in conn.execute(sa.select(quota_usage))
            }
            leased = {(r.tenant, r.job_id) for r in conn.execute(sa.select(leases))}
            pending = conn.execute(
                sa.select(sa.func.count()).where(outbox.c.dispatched_at.is_(None))
            ).scalar_one()
        events = store.recorded_events()
    finally:
        store.close()
    assert pending == 0, "undelivered outbox rows after the final drain"

    # Quota rows: never above quota, and exactly the sum of what jobs hold.
    totals: Counter[QuotaKey] = Counter()
    for held in reservations.values():
        totals.update(held)
    for quota_key, row in usage.items():
        assert row.used <= row.quota, f"{quota_key} over quota"
        assert row.used == totals[quota_key], f"{quota_key}: used {row.used} != reserved {totals[quota_key]}"

    # Per job: reservations and leases match the status; the event chain is complete and legal.
    by_job: dict[tuple[str, str], list[DomainEvent]] = defaultdict(list)
    for event in events:
        by_job[(event.tenant, event.job_id)].append(event)
    assert set(by_job) == set(all_jobs)
    admissions = 0
    for key, job in all_jobs.items():
        chain = sorted(by_job[key], key=lambda e: e.version)
        assert [e.version for e in chain] == list(range(1, job.version + 1)), f"{key}: versions {chain}"
        assert chain[0].to_status is JobStatus.QUEUED
        for before, after in itertools.pairwise(chain):
            assert after.from_status is before.to_status, f"{key}: broken chain at v{after.version}"
            assert can_transition(after.from_status, after.to_status)
        assert chain[-1].to_status is job.status
        admissions += sum(1 for e in chain if e.to_status is JobStatus.ADMITTED)
        if job.status.holds_quota:
            queue = "team-a" if job.local_queue == "lq-a" else "team-b"
            expected = {
                QuotaKey(scope, "h100" if res == NVIDIA_GPU else "default", res): amount
                for scope in (queue, cohort_scope("research"))
                for res, amount in job.request.total.items()
            }
            assert reservations.get(key) == expected, f"{key} holds {reservations.get(key)}"
        else:
            assert key not in reservations, f"{key} ({job.status}) still holds quota"
        assert (key in leased) == (job.status is JobStatus.ADMITTED), f"{key} lease vs {job.status}"

    # Acknowledged writes: each version acknowledged once, and all of them durable.
    event_keys = Counter((e.tenant, e.job_id, e.version) for e in events)
    assert max(event_keys.values()) == 1, "two events for one job version"
    lines = fleet.log_lines()
    acked = [(t, j, int(v)) for kind, t, j, v in (x for x in lines if x[0] == "W")]
    assert len(acked) == len(set(acked)), "one job version acknowledged to two replicas: a lost update"
    assert set(acked) <= set(event_keys)
    if not crashed:
        assert set(acked) == set(event_keys), "a committed write nobody acknowledged"

    # Idempotency keys resolve to one job each.
    resolved: dict[tuple[str, str], set[str]] = defaultdict(set)
    for _, tenant, key_, job_id in (x for x in lines if x[0] == "K"):
        resolved[(tenant, key_)].add(job_id)
    stored_keys = Counter((j.tenant, j.idempotency_key) for j in all_jobs.values() if j.idempotency_key)
    assert max(stored_keys.values(), default=1) == 1
    for (tenant, key_), ids in resolved.items():
        assert len(ids) == 1, f"key {key_} of {tenant} resolved to {ids}"

    # Delivery: every event exactly once (replica dispatchers' files plus the final drain).
    delivered = [(t, j, int(v)) for kind, t, j, v in (x for x in lines if x[0] == "D")]
    delivered += fleet.drained
    assert Counter(delivered) == event_keys, "an outbox event was lost or delivered twice"

    statuses = Counter(f"status_{j.status.value}" for j in all_jobs.values())
    return {"jobs": len(all_jobs), "events": len(events), "admissions": admissions, **statuses}


def drain(url: str) -> list[tuple[str, str, int]]:
    sink = RecordingEventSink()
    dispatcher = OutboxDispatcher(url, sink)
    try:
        dispatcher.drain(batch=500)
    finally:
        dispatcher.close()
    return [(e.tenant, e.job_id, e.version) for e in sink.events]


def report(title: str, counts: dict[str, int]) -> None:
    print(f"\n{title}: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))


def test_eight_replicas_keep_every_invariant(stress_db: str, tmp_path: Path) -> None:
    fleet = Fleet(stress_db, tmp_path, dispatch=True)
    with QuotaSampler(stress_db, tmp_path) as sampler:
        for seed in range(REPLICAS):
            fleet.spawn(seed, max_ops=OPS_PER_REPLICA)
        try:
            fleet.wait_ready()
            fleet.run_for(MAX_SECONDS)
            fleet.wait(timeout=60)
        finally:
            fleet.kill_all()
    fleet.drained = drain(stress_db)
    assert sampler.samples > 0 and sampler.violations == []
    summary = check_invariants(stress_db, fleet, crashed=False)
    report("stress", {**fleet.counts, **summary, "quota_samples": sampler.samples})
    # The run must actually have exercised contention, or the invariants prove little.
    assert fleet.counts["admitted"] >= 10 and fleet.counts["completed"] >= 3
    assert fleet.counts["quota_refused"] + fleet.counts["conflict"] > 0
    assert fleet.counts["dispatched"] > 0 and fleet.counts["duplicate_submit"] > 0


def test_replicas_killed_mid_transaction_leave_the_database_consistent(
    stress_db: str, tmp_path: Path
) -> None:
    rng = random.Random(int(os.environ.get("BUDCORE_CRASH_SEED", "7")))
    fleet = Fleet(stress_db, tmp_path, dispatch=False)
    seeds = iter(range(1000, 100000))
    kills = mid_transaction = 0
    with QuotaSampler(stress_db, tmp_path) as sampler:
        for _ in range(REPLICAS):
            fleet.spawn(next(seeds))
        try:
            fleet.wait_ready()
            # At least CRASH_SECONDS, and on until enough kills landed (a loaded machine spawns
            # replacements slowly), within MAX_SECONDS.
            started = time.monotonic()
            while (elapsed := time.monotonic() - started) < MAX_SECONDS and (
                elapsed < CRASH_SECONDS or kills < MIN_KILLS or mid_transaction < MIN_KILLS_MID_TRANSACTION
            ):
                time.sleep(rng.uniform(0.02, 0.15))
                busy = [w for w in fleet.workers if w.process.is_alive() and w.ops() > 0]
                if not busy:
                    continue
                victim = rng.choice(busy)
                mid_transaction += victim.in_transaction()
                victim.kill()
                kills += 1
                fleet.spawn(next(seeds))
            fleet.wait(timeout=60)
        finally:
            fleet.kill_all()
    assert sampler.samples > 0 and sampler.violations == []
    # Restart: reconcile admissions whose replica died (leases expire 30 s after admission).
    store = PostgresJobStore(stress_db)
    try:
        requeued = PostgresAdmissionLedger(store).reconcile(utcnow() + timedelta(seconds=31), limit=10_000)
    finally:
        store.close()
    fleet.drained = drain(stress_db)
    summary = check_invariants(stress_db, fleet, crashed=True)
    report(
        "crash (replica counters from the replicas that were not killed)",
        {**fleet.counts, **summary, "kills": kills, "kills_mid_transaction": mid_transaction,
         "requeued_by_reconcile": len(requeued), "quota_samples": sampler.samples},
    )  # fmt: skip
    assert summary.get("status_admitted", 0) == 0  # every stuck admission was requeued
    assert kills >= MIN_KILLS and mid_transaction >= MIN_KILLS_MID_TRANSACTION
