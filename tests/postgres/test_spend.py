"""The PostgreSQL spend ledger: metered usage read as records, and budget-guarded submission.

- the shared SpendLedger conformance kit, unchanged (four racing replicas, each its own engine);
- ``usage()`` clips to the window, ends running usage at it, keeps accelerators only, splits a
  row into its nominal part and one borrowed record per lender with whole devices that add up;
- ``guarded_create`` decides on the metered usage and the live jobs under a per-tenant lock that
  other tenants do not wait for;
- the race: several replicas (separate engines) submit against one tenant budget at once and
  exactly the jobs that fit are stored, with a bare ``decide`` and end to end through
  ``JobService(guard=SubmissionGuard(...))``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

pytest.importorskip("sqlalchemy")

import sqlalchemy as sa
from budcore_adapters.postgres import (
    LeasePolicy,
    PoolSettings,
    PostgresAdmissionLedger,
    PostgresJobStore,
    PostgresSpendLedger,
    create_engine,
)
from budcore_adapters.postgres import plugin as postgres_plugin
from budcore_adapters.postgres.schema import jobs, leases, outbox, quota_reservations, quota_usage, usage
from budcore_adapters.postgres.spend import lock_tenant_budget
from sqlalchemy.engine import Engine

from budcore.cost.chargeback import chargeback
from budcore.cost.guard import Budget, GuardBudgetRejectedError, GuardPolicy
from budcore.cost.metering import UsageRecord
from budcore.cost.prices import price_book_from_hourly
from budcore.cost.submission import SubmissionGuard
from budcore.domain.errors import AlreadyExistsError, BudgetRejectedError, ValidationError
from budcore.domain.events import DomainEvent
from budcore.domain.ids import TenantId
from budcore.domain.job import Job, JobStatus, PodSet, ResourceRequest
from budcore.domain.lifecycle import transition
from budcore.domain.resources import NVIDIA_GPU, ResourceVector
from budcore.plugins import PluginRegistry
from budcore.ports.job_store import JobStore
from budcore.ports.spend import SpendLedger, TenantBook
from budcore.scheduling.queues import ClusterQueue, Cohort, FlavorQuotas, ResourceGroup, ResourceQuota
from budcore.service import JobService
from budcore.testing.concurrency import race
from budcore.testing.fakes import FakeClock
from budcore.testing.spend import SpendLedgerConformance

pytestmark = pytest.mark.postgres

ACME = TenantId("acme")
T0 = datetime(2030, 1, 1, tzinfo=UTC)
GPU = 1000
H100 = "nvidia-h100-80gb"
PRICES = price_book_from_hourly({H100: "5"})  # 5 per GPU-hour


def empty(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (usage, quota_reservations, leases, outbox, jobs):
            conn.execute(sa.delete(table))
        conn.execute(sa.delete(quota_usage).where(quota_usage.c.parent.is_not(None)))
        conn.execute(sa.delete(quota_usage))


@pytest.fixture(scope="module")
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def store(pg_url: str, engine: Engine) -> Iterator[PostgresJobStore]:
    empty(engine)
    s = PostgresJobStore(pg_url, pool=PoolSettings(size=4), lease=LeasePolicy(holder="replica-a"))
    yield s
    s.close()


@pytest.fixture
def spend(store: PostgresJobStore) -> PostgresSpendLedger:
    return PostgresSpendLedger(store=store)


# The conformance kit -------------------------------------------------------------------------------
class TestPostgresSpendLedger(SpendLedgerConformance):
    racers = 4

    @pytest.fixture
    def ledger_and_store(self, pg_url: str, engine: Engine) -> Iterator[tuple[SpendLedger, JobStore]]:
        empty(engine)
        self.url = pg_url
        self.opened: list[PostgresJobStore | PostgresSpendLedger] = []
        store = PostgresJobStore(pg_url, pool=PoolSettings(size=2))
        self.opened.append(store)
        yield PostgresSpendLedger(store=store), store
        for handle in self.opened:
            handle.close()

    def share(self, ledger: SpendLedger) -> SpendLedger:
        """Another replica: its own engine (its own connections) on the same database."""
        other = PostgresSpendLedger(self.url, pool=PoolSettings(size=2))
        self.opened.append(other)
        return other

    def recorded_events(self, store: JobStore) -> list[DomainEvent] | None:
        assert isinstance(store, PostgresJobStore)
        return store.recorded_events()


def test_plugin_registers_the_ledger_as_the_postgres_usage_log(pg_url: str, store: PostgresJobStore) -> None:
    registry = PluginRegistry(load_entry_points=False)
    registry.register(postgres_plugin, origin="budcore_adapters.postgres.plugin")
    log = registry.usage_log("postgres", url=pg_url)
    assert isinstance(log, PostgresSpendLedger) and isinstance(log, SpendLedger)
    try:
        assert log.usage(T0, T0 + timedelta(days=1)) == []
    finally:
        log.close()
    on_store = registry.usage_log("postgres", store=store)
    assert isinstance(on_store, PostgresSpendLedger) and on_store.engine is store.engine


# usage(): rows as records ---------------------------------------------------------------------------
def queued(store: PostgresJobStore, n: int, *, name: str, tenant: str = ACME, **extra: Any) -> Job:
    request = ResourceRequest.single(gpus=n, cpu=1, memory=0, accelerator_type=extra.pop("accelerator", None))
    job = store.create(
        Job(name=name, tenant=TenantId(tenant), request=request, created_at=T0, updated_at=T0, **extra)
    )
    new, event = transition(job, JobStatus.QUEUED, now=T0)
    return store.update(new, events=[event])


def hours(h: float) -> datetime:
    return T0 + timedelta(hours=h)


def summary(records: list[UsageRecord]) -> list[tuple[Any, ...]]:
    return [(r.job_id, r.start, r.end, r.devices, r.borrowed, r.lender) for r in records]


@pytest.fixture
def team_a(store: PostgresJobStore) -> PostgresAdmissionLedger:
    ledger = PostgresAdmissionLedger(store)
    ledger.set_quota("team-a", "h100", NVIDIA_GPU, 8 * GPU)
    ledger.set_quota("team-a", "default", "cpu", 64_000)
    return ledger


FLAVORS = {"cpu": "default", NVIDIA_GPU: "h100"}


def test_usage_clips_to_the_window_and_ends_running_usage_at_it(
    store: PostgresJobStore, team_a: PostgresAdmissionLedger, spend: PostgresSpendLedger
) -> None:
    done = queued(store, 2, name="done", accelerator=H100)
    admitted = team_a.admit(done, cluster_queue="team-a", flavors=FLAVORS, now=hours(1)).job
    team_a.release(admitted, now=hours(3), status=JobStatus.CANCELLED)
    running = queued(store, 3, name="running", priority="high")
    team_a.admit(running, cluster_queue="team-a", flavors=FLAVORS, now=hours(2))

    window = spend.usage(hours(1.5), hours(2.5))
    assert summary(window) == [
        (done.id, hours(1.5), hours(2.5), 2, False, None),
        (running.id, hours(2), hours(2.5), 3, False, None),
    ]
    first, second = window
    assert (first.tenant, first.flavor, first.accelerator, first.mode, first.priority) == (
        ACME, "h100", H100, "exclusive", "normal",
    )  # fmt: skip
    assert (second.accelerator, second.priority, second.cluster_queue) == ("h100", "high", "team-a")
    # Everything: the finished stretch whole, the running one up to the end of the window.
    assert summary(spend.usage(T0, hours(10))) == [
        (done.id, hours(1), hours(3), 2, False, None),
        (running.id, hours(2), hours(10), 3, False, None),
    ]
    assert spend.usage(T0, hours(1)) == []  # before anything ran (end is exclusive)
    assert spend.usage(hours(2), hours(2)) == []
    assert [r.job_id for r in spend.usage(hours(3), hours(4))] == [running.id]  # start is inclusive


def test_usage_filters_by_tenant(
    store: PostgresJobStore, team_a: PostgresAdmissionLedger, spend: PostgresSpendLedger
) -> None:
    mine = queued(store, 1, name="mine")
    theirs = queued(store, 1, name="theirs", tenant="other")
    for job in (mine, theirs):
        team_a.admit(job, cluster_queue="team-a", flavors=FLAVORS, now=hours(1))
    assert [r.job_id for r in spend.usage(T0, hours(2), tenant=ACME)] == [mine.id]
    assert sorted(r.tenant for r in spend.usage(T0, hours(2))) == ["acme", "other"]
    assert spend.usage(T0, hours(2), tenant="nobody") == []


def test_usage_refuses_bad_windows(spend: PostgresSpendLedger) -> None:
    with pytest.raises(ValidationError) as info:
        spend.usage(hours(2), hours(1))
    assert info.value.path == "end"
    with pytest.raises(ValidationError) as info:
        spend.usage(datetime(2030, 1, 1), hours(1))  # naive on purpose
    assert info.value.path == "start"
    with pytest.raises(ValidationError) as info:
        spend.usage(T0, hours(1), tenant="a\x00b")
    assert info.value.path == "tenant"


def gpu_queue(name: str, nominal: int, lending: int | None = None) -> ClusterQueue:
    quota = ResourceQuota(
        name=NVIDIA_GPU, nominal_quota=nominal * GPU, lending_limit=None if lending is None else lending * GPU
    )
    return ClusterQueue(
        name=name,
        cohort="co",
        resource_groups=(
            ResourceGroup(
                covered_resources=(NVIDIA_GPU,), flavors=(FlavorQuotas(name="h100", resources=(quota,)),)
            ),
        ),
    )


def gpu_job(store: PostgresJobStore, n: int, name: str) -> Job:
    request = ResourceRequest(
        pod_sets=(PodSet(resources=ResourceVector.of({NVIDIA_GPU: n})),), accelerator_type=H100
    )
    job = store.create(Job(name=name, tenant=ACME, request=request, created_at=T0, updated_at=T0))
    new, event = transition(job, JobStatus.QUEUED, now=T0)
    return store.update(new, events=[event])


def test_borrowed_usage_becomes_one_record_per_lender(
    store: PostgresJobStore, spend: PostgresSpendLedger
) -> None:
    ledger = PostgresAdmissionLedger(store)
    own = Cohort(
        name="co",
        resource_groups=(
            ResourceGroup(
                covered_resources=(NVIDIA_GPU,),
                flavors=(
                    FlavorQuotas(
                        name="h100", resources=(ResourceQuota(name=NVIDIA_GPU, nominal_quota=2 * GPU),)
                    ),
                ),
            ),
        ),
    )
    ledger.sync_cluster_queues([gpu_queue("a", 4), gpu_queue("b", 4, lending=2), gpu_queue("c", 2)], [own])
    big = gpu_job(store, 10, "big")
    ledger.admit(big, cluster_queue="a", flavors={NVIDIA_GPU: "h100"}, now=hours(1))
    records = spend.usage(T0, hours(2))
    assert [(r.devices, r.borrowed, r.lender, r.cluster_queue) for r in records] == [
        (4, False, None, "a"),
        (2, True, "b", "a"),
        (2, True, "c", "a"),
        (2, True, "cohort:co", "a"),
    ]
    # The borrower pays at the lenders' rate and the lenders are credited the same: nets to zero.
    bill = chargeback(records, PRICES)
    assert bill.borrowed_charges == bill.credited == Fraction(6 * 5)  # 6 borrowed GPU-hours at 5
    assert bill.lines["a"].charged == Fraction(10 * 5)
    assert sum((line.net for line in bill.lines.values()), Fraction(0)) == Fraction(4 * 5)


def test_a_split_share_keeps_the_rows_whole_devices(
    store: PostgresJobStore, spend: PostgresSpendLedger
) -> None:
    """2 GPUs into a (nominal 1): 1 borrowed, lent half by b and half by c. Rounding each share on
    its own would bill 3 or 1 devices; apportioning the row's 2 devices bills exactly 2."""
    ledger = PostgresAdmissionLedger(store)
    ledger.sync_cluster_queues([gpu_queue("a", 1), gpu_queue("b", 1), gpu_queue("c", 1)])
    job = gpu_job(store, 2, "split")
    ledger.admit(job, cluster_queue="a", flavors={NVIDIA_GPU: "h100"}, now=hours(1))
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(usage.c.borrowed, usage.c.lenders)).one() == (
            1000,
            {"b": 500, "c": 500},
        )
    records = spend.usage(T0, hours(2))
    assert [(r.devices, r.borrowed, r.lender) for r in records] == [(1, False, None), (1, True, "b")]
    assert sum(r.devices for r in records) == 2


# guarded_create --------------------------------------------------------------------------------------
def submission(name: str, cost: str = "1", *, tenant: str = ACME, key: str | None = None) -> tuple[Job, Any]:
    job = Job(
        id=name,
        name=name,
        tenant=TenantId(tenant),
        estimated_cost=Decimal(cost),
        idempotency_key=key,
        created_at=hours(5),
        updated_at=hours(5),
    )
    return transition(job, JobStatus.QUEUED, now=hours(5), reason="submitted")


def test_decide_reads_the_metered_usage_and_the_live_jobs(
    store: PostgresJobStore, team_a: PostgresAdmissionLedger, spend: PostgresSpendLedger
) -> None:
    running = queued(store, 2, name="running", accelerator=H100)
    team_a.admit(running, cluster_queue="team-a", flavors=FLAVORS, now=hours(1))
    finished = queued(store, 1, name="finished")
    admitted = team_a.admit(finished, cluster_queue="team-a", flavors=FLAVORS, now=hours(1)).job
    team_a.release(admitted, now=hours(2), status=JobStatus.CANCELLED)
    queued(store, 1, name="other-tenant", tenant="other")
    books: list[TenantBook] = []

    def decide(book: TenantBook) -> None:
        books.append(book)

    job, event = submission("new")
    spend.guarded_create(job, events=[event], since=T0, until=hours(5), decide=decide)
    [book] = books
    assert (book.tenant, book.since, book.until) == (ACME, T0, hours(5))
    assert [j.name for j in book.live] == ["running"]  # the cancelled job spends no more
    assert summary(list(book.usage)) == sorted(  # (start, job id) order: both started at 1 h
        [(running.id, hours(1), hours(5), 2, False, None), (finished.id, hours(1), hours(2), 1, False, None)]
    )


def test_a_refusal_rolls_everything_back(store: PostgresJobStore, spend: PostgresSpendLedger) -> None:
    job, event = submission("refused", "10")

    def refuse(book: TenantBook) -> None:
        raise BudgetRejectedError("over budget")

    with pytest.raises(BudgetRejectedError, match="over budget"):
        spend.guarded_create(job, events=[event], since=T0, until=hours(5), decide=refuse)
    assert store.count(None) == 0
    assert store.recorded_events() == []


def test_a_stored_id_is_refused_before_deciding(store: PostgresJobStore, spend: PostgresSpendLedger) -> None:
    job, event = submission("dup")
    spend.guarded_create(job, events=[event], since=T0, until=hours(5), decide=lambda book: None)
    asked: list[TenantBook] = []
    with pytest.raises(AlreadyExistsError):
        spend.guarded_create(job, events=[event], since=T0, until=hours(5), decide=asked.append)
    assert asked == []
    assert len(store.recorded_events()) == 1


def test_bad_input_is_refused_before_anything_is_sent(spend: PostgresSpendLedger) -> None:
    job, event = submission("nul")
    with pytest.raises(ValidationError) as info:
        spend.guarded_create(
            job.model_copy(update={"name": "a\x00b"}),
            events=[event],
            since=T0,
            until=hours(5),
            decide=lambda b: None,
        )
    assert info.value.path == "name"
    with pytest.raises(ValidationError) as info:
        spend.guarded_create(job, events=[event], since=hours(6), until=hours(5), decide=lambda b: None)
    assert info.value.path == "until"


def test_the_budget_lock_is_per_tenant(
    store: PostgresJobStore, spend: PostgresSpendLedger, engine: Engine
) -> None:
    """While a transaction holds acme's budget lock, acme's guarded creates wait and others' do not."""
    done: dict[str, float] = {}

    def submit(name: str, tenant: str) -> None:
        job, event = submission(name, tenant=tenant)
        spend.guarded_create(job, events=[event], since=T0, until=hours(5), decide=lambda book: None)
        done[name] = time.monotonic()

    with engine.connect() as holder:
        with holder.begin():
            lock_tenant_budget(holder, ACME)
            waiting = threading.Thread(target=submit, args=("acme-job", ACME))
            waiting.start()
            submit("other-job", "other")  # another tenant's lock: no wait
            time.sleep(0.5)
            assert "acme-job" not in done and "other-job" in done
            released = time.monotonic()
        waiting.join(timeout=30)
    assert done["acme-job"] >= released
    assert store.count(None) == 2


# The race -------------------------------------------------------------------------------------------
REPLICAS = 6
PER_REPLICA = 15


@pytest.fixture
def replicas(pg_url: str, store: PostgresJobStore) -> Iterator[list[PostgresSpendLedger]]:
    """Separate engines: each replica has its own connection pool, as separate processes would."""
    handles = [
        PostgresSpendLedger(pg_url, pool=PoolSettings(size=1, max_overflow=0)) for _ in range(REPLICAS)
    ]
    yield handles
    for handle in handles:
        handle.close()


def budget_decide(budget: Decimal, job: Job) -> Any:
    """Refuse when the live jobs' committed cost plus this job's passes ``budget``; slow on purpose,
    so that without the lock two replicas would certainly decide on the same book."""

    def decide(book: TenantBook) -> None:
        committed = sum((j.estimated_cost or Decimal(0) for j in book.live), Decimal(0))
        time.sleep(0.002)
        if committed + (job.estimated_cost or Decimal(0)) > budget:
            raise BudgetRejectedError(f"{committed} + {job.estimated_cost} > {budget}")

    return decide


def run_race(replicas: list[PostgresSpendLedger], costs: list[list[Decimal]], budget: Decimal) -> list[Job]:
    refused: list[Job] = []
    lock = threading.Lock()

    def submit(handle: PostgresSpendLedger, i: int) -> None:
        for n, cost in enumerate(costs[i]):
            job, event = submission(f"r{i}-{n}", str(cost))
            try:
                handle.guarded_create(
                    job, events=[event], since=T0, until=hours(5), decide=budget_decide(budget, job)
                )
            except BudgetRejectedError:
                with lock:
                    refused.append(job)

    race(replicas, submit, what="guarded create")
    return refused


def test_racing_replicas_store_exactly_what_fits_the_budget(
    store: PostgresJobStore, replicas: list[PostgresSpendLedger]
) -> None:
    """6 replicas × 15 submissions of cost 7 against a budget of 100: exactly 14 stored (98)."""
    costs = [[Decimal(7)] * PER_REPLICA for _ in range(REPLICAS)]
    refused = run_race(replicas, costs, Decimal(100))
    stored = store.list(ACME)
    assert len(stored) == 14
    assert sum(j.estimated_cost or 0 for j in stored) == Decimal(98)
    assert len(refused) == REPLICAS * PER_REPLICA - 14
    assert len(store.recorded_events(ACME)) == 14  # one submission event per stored job, no more


def test_racing_replicas_with_mixed_costs_never_pass_the_budget(
    store: PostgresJobStore, replicas: list[PostgresSpendLedger]
) -> None:
    """Whatever the interleaving: the stored jobs fit, and every refused job would not fit even now."""
    rng = random.Random(16)
    costs = [[Decimal(rng.randint(1, 20)) for _ in range(PER_REPLICA)] for _ in range(REPLICAS)]
    budget = Decimal(150)
    refused = run_race(replicas, costs, budget)
    stored = store.list(ACME)
    total = sum((j.estimated_cost or Decimal(0) for j in stored), Decimal(0))
    assert total <= budget
    assert len(stored) + len(refused) == REPLICAS * PER_REPLICA
    # The committed sum only grows, so a job refused then still does not fit at the end.
    assert all(total + (j.estimated_cost or 0) > budget for j in refused)


# End to end: the core guard at the service's door, on several replicas --------------------------------
NOW = datetime(2030, 3, 10, 12, tzinfo=UTC)


def guarded_service(
    pg_url: str, budget: str, clock: FakeClock | None = None
) -> tuple[JobService, PostgresJobStore]:
    """One replica: its own store (engine), spend ledger on it, guard and service."""
    replica = PostgresJobStore(pg_url, pool=PoolSettings(size=1, max_overflow=0))
    policy = GuardPolicy(budgets=(Budget(ACME, Decimal(budget), "month"),))
    guard = SubmissionGuard(policy, PRICES, PostgresSpendLedger(store=replica))
    return JobService(replica, clock or FakeClock(NOW), guard=guard), replica


def h100_job(name: str, gpus: int = 1, hours: float = 1) -> Job:
    request = ResourceRequest(
        pod_sets=(PodSet(resources=ResourceVector.of({NVIDIA_GPU: gpus})),), accelerator_type=H100
    )
    return Job(id=name, name=name, tenant=ACME, request=request, estimated_duration=timedelta(hours=hours))


def test_submission_guard_on_racing_service_replicas_admits_exactly_the_budget(
    pg_url: str, store: PostgresJobStore
) -> None:
    """4 replicas × 8 submissions of a 5-unit job (1 GPU-hour at 5) against a monthly budget of
    50: exactly 10 are stored, the rest refused by the guard's typed error."""
    services = [guarded_service(pg_url, "50") for _ in range(4)]
    refused: list[str] = []
    lock = threading.Lock()

    def submit(service: JobService, i: int) -> None:
        for n in range(8):
            try:
                service.submit(h100_job(f"e{i}-{n}"))
            except GuardBudgetRejectedError as exc:
                with lock:
                    refused.append(str(exc))

    try:
        race([s for s, _ in services], submit, what="guarded submission")
    finally:
        for _, replica in services:
            replica.close()
    assert len(store.list(ACME)) == 10
    assert len(refused) == 22
    assert all(job.status is JobStatus.QUEUED for job in store.list(ACME))


def test_the_guard_counts_what_the_database_metered(pg_url: str, store: PostgresJobStore) -> None:
    """A job admitted 2 h ago on 2 GPUs has metered 20 and is still committed to 20 more (its 4 h
    estimate): a budget of 50 leaves room for exactly two more 5-unit jobs."""
    clock = FakeClock(NOW - timedelta(hours=2))
    service, replica = guarded_service(pg_url, "50", clock)
    try:
        ledger = PostgresAdmissionLedger(store)
        ledger.set_quota("team-a", "h100", NVIDIA_GPU, 8 * GPU)
        early = service.submit(h100_job("early", gpus=2, hours=4))
        ledger.admit(early, cluster_queue="team-a", flavors={NVIDIA_GPU: "h100"}, now=clock.now())
        clock.advance(timedelta(hours=2))
        service.submit(h100_job("second"))
        service.submit(h100_job("third"))
        with pytest.raises(GuardBudgetRejectedError):
            service.submit(h100_job("fourth"))
    finally:
        replica.close()
    assert sorted(j.name for j in store.list(ACME)) == ["early", "second", "third"]
