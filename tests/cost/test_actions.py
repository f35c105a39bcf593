"""Budget actions (issue #16): warn at 80% and 100%, pause and resume, cancel — per job and per
tenant; the pure review, then enforce_budgets carrying them out on stored jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from budcore_adapters.inmemory.clock import ManualClock
from budcore_adapters.inmemory.events import CollectingEventSink
from budcore_adapters.inmemory.job_store import InMemoryJobStore
from budcore_adapters.inmemory.spend import InMemorySpendLedger
from support.admission import GPU, config, cq

from budcore.cost.actions import JobSpend, resumable, review_budgets
from budcore.cost.enforcement import PAUSED_LABEL, enforce_budgets
from budcore.cost.guard import Budget, GuardPolicy
from budcore.cost.metering import UsageRecord
from budcore.cost.prices import price_book_from_hourly
from budcore.domain.events import BudgetAlerted, JobTransitioned
from budcore.domain.job import BudgetAction, Job, JobStatus, PodSet, ResourceRequest
from budcore.domain.resources import ResourceVector
from budcore.scheduling.scheduler import Scheduler
from budcore.service import JobService

H100 = "nvidia-h100-80gb"
PRICES = price_book_from_hourly({H100: "5"})
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def job(
    name: str, *, tenant: str = "ns-q", limit: str | None = None, action: BudgetAction | None = None
) -> Job:
    return Job(
        id=name,
        name=name,
        tenant=tenant,
        local_queue="q",
        request=ResourceRequest(pod_sets=(PodSet(resources=ResourceVector.of({GPU: 1})),)),  # any GPU
        estimated_duration=timedelta(hours=1),
        budget_limit=None if limit is None else Decimal(limit),
        budget_action=action,
    )


def spend(j: Job, accrued: str, running: bool = True) -> JobSpend:
    return JobSpend(j, Decimal(accrued), running)


# The pure review ---------------------------------------------------------------------------------


def test_a_job_warns_at_80_and_100_percent_once_each() -> None:
    j = job("a", limit="10")
    first = review_budgets([spend(j, "7.99")], {}, GuardPolicy(), now=NOW)
    assert first.alerts == () and first.stops == ()
    at_80 = review_budgets([spend(j, "8")], {}, GuardPolicy(), now=NOW, fired=first.fired)
    assert [str(a) for a in at_80.alerts] == ["tenant 'ns-q' job:a: spent 8.00 reached 80% of 10.00"]
    again = review_budgets([spend(j, "9")], {}, GuardPolicy(), now=NOW, fired=at_80.fired)
    assert again.alerts == ()
    at_100 = review_budgets([spend(j, "10")], {}, GuardPolicy(), now=NOW, fired=again.fired)
    assert [a.level for a in at_100.alerts] == [Decimal(1)]
    assert at_100.stops == ()  # warn (the default action) never stops a job


def test_pause_and_cancel_stop_a_running_job_at_its_limit_only() -> None:
    paused = job("p", limit="10", action=BudgetAction.PAUSE)
    cancelled = job("c", limit="10", action=BudgetAction.CANCEL)
    waiting = job("w", limit="10", action=BudgetAction.CANCEL)
    review = review_budgets(
        [
            spend(paused, "10"),
            spend(cancelled, "12"),
            spend(waiting, "10", running=False),
            spend(job("x"), "99"),
        ],
        {},
        GuardPolicy(),
        now=NOW,
    )
    assert [(s.job_id, s.action) for s in review.stops] == [
        ("c", BudgetAction.CANCEL),
        ("p", BudgetAction.PAUSE),
    ]
    assert review.stops[1].reason == "budget: paused: job:p spent 10.00 of 10.00"


def test_a_tenant_budget_pauses_all_its_running_jobs_and_alerts_per_period() -> None:
    month = Budget("ns-q", Decimal("100"), "month", action=BudgetAction.PAUSE)
    policy = GuardPolicy(budgets=(month,))
    mine, other, idle = job("a"), job("b", tenant="ns-r"), job("c")
    jobs = [spend(mine, "1"), spend(other, "1"), spend(idle, "1", running=False)]
    review = review_budgets(jobs, {month.key: Decimal("100")}, policy, now=NOW)
    assert [s.job_id for s in review.stops] == ["a"]
    assert [a.level for a in review.alerts] == [Decimal("0.8"), Decimal(1)]
    same_month = review_budgets(jobs, {month.key: Decimal("100")}, policy, now=NOW, fired=review.fired)
    assert same_month.alerts == ()
    next_month = review_budgets(
        jobs, {month.key: Decimal("85")}, policy, now=datetime(2026, 4, 2, tzinfo=UTC), fired=review.fired
    )
    assert [a.level for a in next_month.alerts] == [Decimal("0.8")]  # a new period alerts again


def test_a_rolling_budget_alerts_again_after_falling_back() -> None:
    week = Budget("ns-q", Decimal("100"), "week", calendar=False)
    policy = GuardPolicy(budgets=(week,))
    up = review_budgets([], {week.key: Decimal("80")}, policy, now=NOW)
    down = review_budgets([], {week.key: Decimal("50")}, policy, now=NOW, fired=up.fired)
    up_again = review_budgets([], {week.key: Decimal("81")}, policy, now=NOW, fired=down.fired)
    assert len(up.alerts) == 1 and down.alerts == () and len(up_again.alerts) == 1


def test_paused_jobs_resume_when_their_budgets_have_room() -> None:
    month = Budget("ns-q", Decimal("100"), "month", action=BudgetAction.PAUSE)
    policy = GuardPolicy(budgets=(month,))
    own = job("own", limit="10", action=BudgetAction.PAUSE)
    raised = job("raised", limit="20", action=BudgetAction.PAUSE)  # its limit was raised from 10
    tenant = job("tenant")
    paused = [spend(own, "10", False), spend(raised, "10", False), spend(tenant, "3", False)]
    assert resumable(paused, {month.key: Decimal("100")}, policy) == []  # tenant budget still full
    assert resumable(paused, {month.key: Decimal("0")}, policy) == ["raised", "tenant"]  # period rolled
    assert resumable(paused, {}, policy) == []  # no figure: keep holding


# Enforcement on stored jobs -----------------------------------------------------------------------


def running_service(
    events: CollectingEventSink | None = None,
) -> tuple[JobService, InMemorySpendLedger, ManualClock, Scheduler]:
    clock = ManualClock(NOW)
    store = InMemoryJobStore(events=events)
    scheduler = Scheduler(config([cq("q", {"default": {GPU: 10}})]))
    return JobService(store, clock), InMemorySpendLedger(store), clock, scheduler


def start(svc: JobService, ledger: InMemorySpendLedger, scheduler: Scheduler, j: Job) -> Job:
    stored = svc.submit(j)
    scheduler.submit(stored, now=svc.clock.now())
    scheduler.cycle(svc.clock.now())
    admitted = svc.move(stored, JobStatus.ADMITTED)
    running = svc.move(admitted, JobStatus.RUNNING)
    ledger.open(
        UsageRecord(
            job_id=j.id,
            tenant=j.tenant,
            flavor="default",
            accelerator=H100,
            devices=1,
            start=svc.clock.now(),
            end=svc.clock.now(),
        )
    )
    return running


def test_enforcement_pauses_cancels_and_resumes_through_the_lifecycle() -> None:
    """Budget 20/month pausing; job c cancels at its own limit of 5. At 5 per GPU-hour: after 1 h,
    c has spent 5 (cancelled); after 2 h the tenant has spent 5 + 10 + 5 = 20 (p paused); on
    April 1st the month rolls and p resumes."""
    stored_events = CollectingEventSink()
    svc, ledger, clock, scheduler = running_service(stored_events)
    policy = GuardPolicy(budgets=(Budget("ns-q", Decimal("20"), "month", action=BudgetAction.PAUSE),))
    sink = CollectingEventSink()
    start(svc, ledger, scheduler, job("c", limit="5", action=BudgetAction.CANCEL))
    start(svc, ledger, scheduler, job("p"))
    clock.advance(timedelta(hours=1))
    first = enforce_budgets(svc, ledger, policy, PRICES, scheduler=scheduler, alerts_to=sink)
    assert [j.id for j in first.cancelled] == ["c"] and first.paused == ()
    assert svc.store.get("ns-q", "c").status is JobStatus.CANCELLED
    assert "c" not in scheduler.admitted
    ledger.close("c", clock.now())
    clock.advance(timedelta(hours=2))  # p: 3 h × 5 = 15; tenant: 5 + 15 = 20
    second = enforce_budgets(
        svc, ledger, policy, PRICES, fired=first.fired, scheduler=scheduler, alerts_to=sink
    )
    assert [j.id for j in second.paused] == ["p"]
    stored = svc.store.get("ns-q", "p")
    assert stored.status is JobStatus.PREEMPTED and stored.labels[PAUSED_LABEL] == "ns-q.month.calendar"
    assert stored.status_message == "budget: paused: ns-q:month:calendar spent 20.00 of 20.00"
    ledger.close("p", clock.now())
    still = enforce_budgets(svc, ledger, policy, PRICES, fired=second.fired, scheduler=scheduler)
    assert still.resumed == () and still.alerts == ()
    clock.set(datetime(2026, 4, 1, 0, 0, 1, tzinfo=UTC))
    rolled = enforce_budgets(svc, ledger, policy, PRICES, fired=still.fired, scheduler=scheduler)
    assert [j.id for j in rolled.resumed] == ["p"]
    resumed = svc.store.get("ns-q", "p")
    assert resumed.status is JobStatus.QUEUED and PAUSED_LABEL not in resumed.labels
    assert "p" in scheduler.pending
    # Alerts are stored with the write that acted on them: c's own 80% and 100% with its
    # cancellation; the tenant's 80% and 100% (both first seen at 20 of 20) with p's pause.
    assert [e for e in sink.events if isinstance(e, BudgetAlerted)] == []
    trail = [
        (e.job_id, e.to_status.value) if isinstance(e, JobTransitioned) else (e.subject, str(e.severity))
        for e in stored_events.events
        if not (isinstance(e, JobTransitioned) and e.reason in ("submitted", ""))
    ]
    assert trail == [
        ("c", "cancelled"),
        ("job:c", "warning"),
        ("job:c", "critical"),
        ("p", "preempted"),
        ("ns-q:month:calendar", "warning"),
        ("ns-q:month:calendar", "critical"),
        ("p", "queued"),
    ]
