"""The submission guard at the service's door (issue #16, Gates): JobService(guard=...) over the
in-memory spend ledger. Refusals store nothing; warnings are stored with the job as events;
committed cost of queued jobs counts, so racing submissions cannot share the same room."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from budcore_adapters.inmemory.clock import ManualClock
from budcore_adapters.inmemory.events import CollectingEventSink
from budcore_adapters.inmemory.job_store import InMemoryJobStore
from budcore_adapters.inmemory.spend import InMemorySpendLedger
from hypothesis import given
from hypothesis import strategies as st
from support.admission import GPU, config, cq

from budcore.cost.guard import Budget, GuardBudgetRejectedError, GuardPolicy, GuardQuotaRejectedError
from budcore.cost.metering import UsageRecord
from budcore.cost.prices import price_book_from_hourly
from budcore.cost.submission import SubmissionGuard, scheduler_quota
from budcore.domain.events import BudgetAlerted, JobTransitioned
from budcore.domain.job import Job, JobStatus, PodSet, ResourceRequest
from budcore.domain.resources import ResourceVector
from budcore.scheduling.scheduler import Scheduler
from budcore.service import JobService

H100 = "nvidia-h100-80gb"
PRICES = price_book_from_hourly({H100: "5"})  # 5 per GPU-hour
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TENANT = "ns-q"  # the namespace of LocalQueue "q" in support.admission.config


def make_job(
    name: str,
    *,
    gpus: int = 1,
    hours: float = 1,
    budget_limit: str | None = None,
    key: str | None = None,
) -> Job:
    return Job(
        id=name,
        name=name,
        tenant=TENANT,
        local_queue="q",
        request=ResourceRequest(
            pod_sets=(PodSet(resources=ResourceVector.of({GPU: gpus})),), accelerator_type=H100
        ),
        estimated_duration=timedelta(hours=hours),
        budget_limit=None if budget_limit is None else Decimal(budget_limit),
        idempotency_key=key,
    )


def service(
    policy: GuardPolicy, *, gpus: int = 10, sink: CollectingEventSink | None = None
) -> tuple[JobService, InMemorySpendLedger, Scheduler]:
    scheduler = Scheduler(config([cq("q", {"default": {GPU: gpus}})]))
    store = InMemoryJobStore(events=sink)
    ledger = InMemorySpendLedger(store)
    guard = SubmissionGuard(policy, PRICES, ledger, quota=scheduler_quota(scheduler))
    return JobService(store, ManualClock(NOW), guard=guard), ledger, scheduler


MONTH = Budget(TENANT, Decimal("100"), "month")


def test_the_issue_reproduction_is_refused_and_nothing_is_stored() -> None:
    """Issue #16: "a job filling 100% of its quota, with an estimated cost of 500 against a budget
    limit of 10, was admitted and queued". 10 GPUs × 10 h × 5 = 500 > 10, and 10/10 GPUs >= 90%."""
    svc, _, _ = service(GuardPolicy())
    job = make_job("big", gpus=10, hours=10, budget_limit="10")
    with pytest.raises(GuardQuotaRejectedError) as refused:
        svc.submit(job)
    text = str(refused.value)
    assert "tenant 'ns-q'" in text and "nvidia.com/gpu: 0 used + 10 requested = 10 >= 90% of quota 10" in text
    assert "budget_limit: spent 0.00 + projected 500.00 = 500.00 > 10.00" in text
    assert svc.store.count(None) == 0


@pytest.mark.parametrize(
    ("gpus_requested", "comparator", "admitted"),
    [(8, ">=", True), (9, ">=", False), (9, ">", True), (10, ">", False)],
)
def test_threshold_edges_through_the_service(gpus_requested: int, comparator: str, admitted: bool) -> None:
    """Quota 10 GPUs, threshold 90% = 9 GPUs: reaching 9 refuses under >=, only passing it under >."""
    svc, _, _ = service(GuardPolicy(comparator=comparator))  # type: ignore[arg-type]
    job = make_job("j", gpus=gpus_requested)
    if admitted:
        assert svc.submit(job).status is JobStatus.QUEUED
    else:
        with pytest.raises(GuardQuotaRejectedError):
            svc.submit(job)
        assert svc.store.count(None) == 0


def test_queued_jobs_commit_their_projected_cost() -> None:
    """Budget 100: a queued 60 (2 GPUs × 6 h × 5) leaves 40; a second 60 is refused, a 40 fits."""
    svc, _, _ = service(GuardPolicy(budgets=(MONTH,)))
    svc.submit(make_job("a", gpus=2, hours=6))
    with pytest.raises(GuardBudgetRejectedError) as refused:
        svc.submit(make_job("b", gpus=2, hours=6))
    assert "spent and committed 60.00 + projected 60.00 = 120.00 > 100.00" in str(refused.value)
    svc.submit(make_job("c", gpus=2, hours=4))  # 60 + 40 = 100: reaching the budget is allowed
    assert sorted(j.id for j in svc.store.list(None)) == ["a", "c"]


def test_metered_spend_and_the_running_part_count_once() -> None:
    """A running job that metered 30 of its projected 60 commits only the other 30."""
    svc, ledger, _ = service(GuardPolicy(budgets=(MONTH,)))
    running = svc.submit(make_job("a", gpus=2, hours=6))
    ledger.open(
        UsageRecord(
            job_id=running.id,
            tenant=TENANT,
            flavor="default",
            accelerator=H100,
            devices=2,
            start=NOW - timedelta(hours=3),
            end=NOW - timedelta(hours=3),
        )
    )
    # Spent 2 × 3 h × 5 = 30, committed 60 − 30 = 30: 40 more fits (100), 41 does not.
    with pytest.raises(GuardBudgetRejectedError, match=r"spent and committed 60\.00 \+ projected 40\.50"):
        svc.submit(make_job("b", gpus=1, hours=8.1))
    svc.submit(make_job("c", gpus=1, hours=8))


def test_warn_mode_stores_the_job_with_an_alert_event() -> None:
    sink = CollectingEventSink()
    svc, _, _ = service(GuardPolicy(mode="warn", budgets=(MONTH,)), sink=sink)
    stored = svc.submit(make_job("big", gpus=4, hours=10))  # 200 > 100, and 4 of 10 GPUs is fine
    assert stored.status is JobStatus.QUEUED
    alerts = [e for e in sink.events if isinstance(e, BudgetAlerted)]
    assert [a.job_id for a in alerts] == ["big"]
    assert "ns-q:month:calendar" in alerts[0].message and "200.00 > 100.00" in alerts[0].message
    assert [type(e) for e in sink.events] == [JobTransitioned, BudgetAlerted]
    assert svc.guard_warnings["big"].decision == "warn"


def test_a_replayed_submission_is_not_decided_again() -> None:
    """Same idempotency key: the stored job comes back even though the budget is now used up."""
    svc, _, _ = service(GuardPolicy(budgets=(MONTH,)))
    first = svc.submit(make_job("a", gpus=2, hours=10, key="k"))  # 100: exactly the budget
    again = svc.submit(make_job("a2", gpus=2, hours=10, key="k"))
    assert again.id == first.id and svc.store.count(None) == 1


def test_threads_racing_one_budget_never_pass_it() -> None:
    """8 threads × 10 submissions of 7 each against 100: exactly 14 stored (98), the rest refused."""
    svc, _, _ = service(GuardPolicy(budgets=(MONTH,)), gpus=1000)
    refused: list[str] = []
    lock = threading.Lock()

    def submit(worker: int) -> None:
        for i in range(10):
            try:
                svc.submit(make_job(f"w{worker}-{i}", gpus=1, hours=1.4))  # 1.4 h × 5 = 7
            except GuardBudgetRejectedError:
                with lock:
                    refused.append(f"w{worker}-{i}")

    threads = [threading.Thread(target=submit, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert svc.store.count(None) == 14 and len(refused) == 66


@given(costs=st.lists(st.integers(min_value=0, max_value=60), max_size=12))
def test_nothing_stored_in_reject_mode_passes_the_budget(costs: list[int]) -> None:
    """Property: whatever the sequence of submissions, the committed cost stored stays within it."""
    svc, _, _ = service(GuardPolicy(budgets=(MONTH,)), gpus=1000)
    for n, cost in enumerate(costs):
        with contextlib.suppress(GuardBudgetRejectedError):
            svc.submit(make_job(f"j{n}", gpus=1, hours=cost / 5))  # cost = hours × 5
    stored = svc.store.list(None)
    assert sum(Decimal(5) * Decimal(j.estimated_duration.total_seconds()) / 3600 for j in stored) <= 100  # type: ignore[union-attr]
