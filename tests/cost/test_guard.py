"""The submission guard (issue #16, Gates): quota threshold, budgets, job budget_limit, the cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.admission import GPU, T0, config, cq, fill
from support.admission import job as queued_job

from budcore.cost.guard import (
    Budget,
    CachedGuard,
    GuardBudgetRejectedError,
    GuardPolicy,
    GuardQuotaRejectedError,
    GuardSnapshot,
    PolicyOverride,
    QueueFigures,
    budget_spends,
    check,
    enforce,
    snapshot_from,
)
from budcore.cost.metering import UsageRecord
from budcore.cost.prices import price_book_from_hourly
from budcore.domain.errors import AdmissionRejectedError, BudgetRejectedError, QuotaRejectedError
from budcore.domain.job import Job, PodSet, ResourceRequest
from budcore.domain.resources import ResourceVector
from budcore.scheduling.scheduler import Scheduler

H100 = "nvidia-h100-80gb"
PRICES = price_book_from_hourly({H100: "5"})  # 5 per GPU-hour
NOW = datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC)
MONTH = Budget("team-a", Decimal("500"), "month")


def make_job(
    *,
    cpu_milli: int = 0,
    gpus: int = 0,
    hours: float | None = 1,
    budget_limit: str | None = None,
    accelerator: str | None = H100,
    tenant: str = "team-a",
) -> Job:
    amounts = {"cpu": cpu_milli, GPU: gpus * 1000}
    return Job(
        id="j1",
        name="j1",
        tenant=tenant,
        request=ResourceRequest(
            pod_sets=(PodSet(resources=ResourceVector(amounts)),), accelerator_type=accelerator
        ),
        estimated_duration=None if hours is None else timedelta(hours=hours),
        budget_limit=None if budget_limit is None else Decimal(budget_limit),
    )


def snap(
    nominal: dict[str, int] | None = None, used: dict[str, int] | None = None, month: str | None = None
) -> GuardSnapshot:
    """Figures of ClusterQueue ``q`` and, with ``month``, team-a's spend this month."""
    figures = QueueFigures(nominal or {"cpu": 10_000, GPU: 10_000}, used or {})
    return GuardSnapshot(NOW, {"q": figures}, {} if month is None else {MONTH.key: Decimal(month)})


def decide(job: Job, snapshot: GuardSnapshot, policy: GuardPolicy | None = None) -> str:
    return check(job, "q", snapshot, policy or GuardPolicy(), prices=PRICES, now=NOW).decision


# Threshold table ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("used", "requested", "ge", "gt"),
    [
        (0, 8_999, "admit", "admit"),  # 89.99%
        (0, 9_000, "refuse", "admit"),  # 90%
        (0, 9_001, "refuse", "refuse"),  # 90.01%
        (4_500, 4_499, "admit", "admit"),  # usage counts: 89.99% again
        (4_500, 4_500, "refuse", "admit"),
        (4_500, 4_501, "refuse", "refuse"),
    ],
)
def test_threshold_edges(used: int, requested: int, ge: str, gt: str) -> None:
    job, snapshot = make_job(cpu_milli=requested), snap(used={"cpu": used})
    assert decide(job, snapshot, GuardPolicy(comparator=">=")) == ge
    assert decide(job, snapshot, GuardPolicy(comparator=">")) == gt


def test_issue_example_full_quota_and_job_budget_refused() -> None:
    """A job filling 100% of its quota, estimated at 500 against a budget_limit of 10."""
    job = make_job(gpus=10, hours=10, budget_limit="10")  # 10 GPUs × 10 h × 5 = 500
    verdict = check(job, "q", snap(), GuardPolicy(), prices=PRICES, now=NOW)
    assert verdict.decision == "refuse"
    assert verdict.projected_cost == Decimal(500)
    assert [b.kind for b in verdict.breaches] == ["quota", "job-budget"]
    with pytest.raises(GuardQuotaRejectedError) as info:
        enforce(verdict)
    assert isinstance(info.value, QuotaRejectedError)
    text = str(info.value)
    assert "\n" not in text
    assert (
        "'team-a'" in text
        and "nvidia.com/gpu" in text
        and "0 used + 10 requested = 10 >= 90% of quota 10 (9)" in text
    )
    assert "budget_limit: spent 0.00 + projected 500.00 = 500.00 > 10.00" in text


def test_job_budget_alone_raises_budget_error() -> None:
    verdict = check(
        make_job(gpus=1, hours=100, budget_limit="10"), "q", snap(), GuardPolicy(), prices=PRICES, now=NOW
    )
    with pytest.raises(GuardBudgetRejectedError) as info:
        enforce(verdict)
    assert isinstance(info.value, BudgetRejectedError) and isinstance(info.value, AdmissionRejectedError)
    assert info.value.verdict is verdict


def test_several_resources_name_the_binding_one() -> None:
    job = make_job(cpu_milli=2_000, gpus=5)
    verdict = check(job, "q", snap(used={"cpu": 1_000, GPU: 4_000}), GuardPolicy(), prices=PRICES, now=NOW)
    assert [(b.kind, b.subject) for b in verdict.breaches] == [("quota", GPU)]
    assert "nvidia.com/gpu: 4 used + 5 requested = 9 >= 90% of quota 10 (9)" in str(verdict)


def test_uncovered_resource_is_left_to_the_scheduler() -> None:
    assert decide(make_job(cpu_milli=50_000), snap(nominal={GPU: 10_000})) == "admit"


def test_cluster_queue_override_wins_over_tenant_override() -> None:
    job = make_job(cpu_milli=9_000)  # exactly 90%
    tenant = {"tenant:team-a": PolicyOverride(comparator=">", quota_threshold=Decimal("0.95"))}
    assert decide(job, snap(), GuardPolicy(overrides=tenant)) == "admit"
    both = {**tenant, "cq:q": PolicyOverride(quota_threshold=Decimal("0.90"))}
    # The CQ's threshold wins; the tenant's comparator (not overridden by the CQ) still applies.
    assert decide(job, snap(), GuardPolicy(overrides=both)) == "admit"
    both["cq:q"] = PolicyOverride(comparator=">=")
    assert decide(job, snap(), GuardPolicy(overrides=both)) == "admit"  # 9000 < 0.95 × 10000
    both["cq:q"] = PolicyOverride(comparator=">=", quota_threshold=Decimal("0.9"))
    assert decide(job, snap(), GuardPolicy(overrides=both)) == "refuse"
    other = {"tenant:team-b": PolicyOverride(comparator=">"), "cq:other": PolicyOverride(comparator=">")}
    assert decide(job, snap(), GuardPolicy(overrides=other)) == "refuse"


def test_warn_mode_returns_warnings_and_raises_nothing() -> None:
    policy = GuardPolicy(overrides={"cq:q": PolicyOverride(mode="warn")}, budgets=(MONTH,))
    verdict = check(make_job(gpus=10, hours=20), "q", snap(month="0"), policy, prices=PRICES, now=NOW)
    assert verdict.decision == "warn" and verdict.admitted
    warnings = enforce(verdict)
    assert [b.kind for b in warnings] == ["quota", "budget"]
    assert enforce(check(make_job(gpus=1), "q", snap(month="0"), policy, prices=PRICES, now=NOW)) == ()


# Budgets -------------------------------------------------------------------------------------------


def test_tenant_budget_going_past_refuses_reaching_it_does_not() -> None:
    policy = GuardPolicy(budgets=(MONTH,))
    job = make_job(gpus=1, hours=2)  # projected 10
    assert decide(job, snap(month="490"), policy) == "admit"  # 500: reaches it
    verdict = check(job, "q", snap(month="490.01"), policy, prices=PRICES, now=NOW)
    assert verdict.decision == "refuse"
    text = str(verdict)
    assert (
        "budget team-a:month:calendar: spent and committed 490.01 + projected 10.00 = 500.01 > 500.00" in text
    )


def test_unpriceable_jobs_are_refused_when_a_budget_applies() -> None:
    policy = GuardPolicy(budgets=(MONTH,))
    spend = snap(month="0")
    no_estimate = check(make_job(gpus=1, hours=None), "q", spend, policy, prices=PRICES, now=NOW)
    assert no_estimate.decision == "refuse" and "no runtime estimate to price" in str(no_estimate)
    assert decide(make_job(gpus=1, accelerator=None), spend, policy) == "refuse"
    assert decide(make_job(gpus=1, accelerator="nvidia-t4-16gb"), spend, policy) == "refuse"
    assert decide(make_job(gpus=1, hours=1), snap(), policy) == "refuse"  # no spend figure
    # No budget applies, or nothing to price: no refusal.
    assert decide(make_job(gpus=1, hours=None), spend) == "admit"
    assert decide(make_job(cpu_milli=1_000, hours=None), spend, policy) == "admit"
    # max_duration stands in for a missing estimate (an upper bound).
    bounded = make_job(gpus=1, hours=None).model_copy(update={"max_duration": timedelta(hours=2)})
    assert check(bounded, "q", spend, policy, prices=PRICES, now=NOW).projected_cost == Decimal(10)


@pytest.mark.parametrize(
    ("budget", "now", "start", "end"),
    [
        (Budget("t", Decimal(1), "day"), "2026-03-31T23:59:59", "2026-03-31T00:00", "2026-04-01T00:00"),
        (Budget("t", Decimal(1), "day"), "2026-04-01T00:00:00", "2026-04-01T00:00", "2026-04-02T00:00"),
        (Budget("t", Decimal(1), "week"), "2026-03-29T23:59:59", "2026-03-23T00:00", "2026-03-30T00:00"),
        (Budget("t", Decimal(1), "week"), "2026-03-30T00:00:00", "2026-03-30T00:00", "2026-04-06T00:00"),
        (Budget("t", Decimal(1), "month"), "2026-03-31T23:59:59", "2026-03-01T00:00", "2026-04-01T00:00"),
        (Budget("t", Decimal(1), "month"), "2026-12-31T12:00:00", "2026-12-01T00:00", "2027-01-01T00:00"),
        (Budget("t", Decimal(1), "month"), "2028-02-29T08:00:00", "2028-02-01T00:00", "2028-03-01T00:00"),
        (
            Budget("t", Decimal(1), "day", calendar=False),
            "2026-03-31T12:00:00",
            "2026-03-30T12:00",
            "2026-03-31T12:00",
        ),
        (
            Budget("t", Decimal(1), "week", calendar=False),
            "2026-03-31T12:00:00",
            "2026-03-24T12:00",
            "2026-03-31T12:00",
        ),
        (
            Budget("t", Decimal(1), "month", calendar=False),
            "2026-03-31T12:00:00",
            "2026-03-01T12:00",
            "2026-03-31T12:00",
        ),
        # Calendar periods in a time zone: Paris midnight is 22:00 UTC in summer.
        (
            Budget("t", Decimal(1), "day", timezone="Europe/Paris"),
            "2026-07-01T21:59:00",
            "2026-06-30T22:00",
            "2026-07-01T22:00",
        ),
    ],
)
def test_budget_windows(budget: Budget, now: str, start: str, end: str) -> None:
    utc = lambda text: datetime.fromisoformat(text).replace(tzinfo=UTC)  # noqa: E731
    assert budget.window(utc(now)) == (utc(start), utc(end))


def test_budget_spends_from_usage_records() -> None:
    def record(start: datetime, hours: int) -> UsageRecord:
        return UsageRecord(
            job_id="r", tenant="team-a", flavor="h", accelerator=H100, devices=1, start=start,
            end=start + timedelta(hours=hours),
        )  # fmt: skip

    records = [record(datetime(2026, 3, 31, 20, tzinfo=UTC), 6)]  # 4 h in March, 2 h in April
    now = datetime(2026, 4, 1, 2, tzinfo=UTC)
    daily, rolling = (
        Budget("team-a", Decimal(100), "day"),
        Budget("team-a", Decimal(100), "day", calendar=False),
    )
    spends, incomplete = budget_spends([MONTH, daily, rolling], records, PRICES, now)
    assert spends == {MONTH.key: Decimal(10), daily.key: Decimal(10), rolling.key: Decimal(30)}
    assert incomplete == frozenset()


# The property ---------------------------------------------------------------------------------------


@given(
    nominal=st.integers(1, 100_000),
    used=st.integers(0, 120_000),
    requested=st.integers(1, 120_000),
    threshold=st.decimals("0.01", "1", places=4),
    comparator=st.sampled_from([">=", ">"]),
    budget=st.decimals("0", "1000", places=2),
    spent=st.decimals("0", "1200", places=6),
    gpus=st.integers(0, 16),
    seconds=st.integers(0, 400_000),
    limit=st.none() | st.decimals("0", "1000", places=2),
)
def test_reject_mode_never_admits_past_quota_or_budget(
    nominal: int,
    used: int,
    requested: int,
    threshold: Decimal,
    comparator: str,
    budget: Decimal,
    spent: Decimal,
    gpus: int,
    seconds: int,
    limit: Decimal | None,
) -> None:
    policy = GuardPolicy(
        quota_threshold=threshold, comparator=comparator, budgets=(Budget("team-a", budget, "week"),)
    )  # type: ignore[arg-type]
    job = make_job(cpu_milli=requested, gpus=gpus).model_copy(
        update={"estimated_duration": timedelta(seconds=seconds), "budget_limit": limit}
    )
    key = "team-a:week:calendar"
    snapshot = GuardSnapshot(NOW, {"q": QueueFigures({"cpu": nominal}, {"cpu": used})}, {key: spent})
    verdict = check(job, "q", snapshot, policy, prices=PRICES, now=NOW)
    if verdict.decision != "admit":
        return
    after = used + requested
    assert after * 1 < threshold * nominal if comparator == ">=" else after <= threshold * nominal
    cost = Decimal(5) * gpus * seconds / 3600
    assert spent + cost <= budget
    assert limit is None or cost <= limit
    assert verdict.projected_cost is not None and abs(verdict.projected_cost - cost) < Decimal("1e-20")


# snapshot_from --------------------------------------------------------------------------------------


def test_snapshot_from_a_scheduler_sums_flavors_and_reads_usage() -> None:
    queues = config([cq("a", {"h100": {GPU: 4}, "a100": {GPU: 6}})])
    scheduler = Scheduler(queues)
    admitted = fill(scheduler, [queued_job("a", 3), queued_job("a", 2)])
    assert len(admitted) == 2
    snapshot = snapshot_from(scheduler, {MONTH.key: Decimal(7)}, T0)
    assert snapshot.queues["a"] == QueueFigures({GPU: 10_000}, {GPU: 5_000})
    assert snapshot.spend == {MONTH.key: Decimal(7)} and snapshot.taken_at == T0
    gpu_job = make_job(gpus=4).model_copy(update={"tenant": "ns-a"})
    assert check(gpu_job, "a", snapshot, GuardPolicy(), prices=PRICES, now=T0).decision == "refuse"  # 9 of 10
    assert (
        check(gpu_job, "a", snapshot, GuardPolicy(comparator=">"), prices=PRICES, now=T0).decision == "admit"
    )


# The cache ------------------------------------------------------------------------------------------


class Store:
    def __init__(self, used: int) -> None:
        self.used, self.reads, self.time = used, 0, 0.0

    def load(self) -> GuardSnapshot:
        self.reads += 1
        return snap(used={"cpu": self.used})

    def guard(self) -> CachedGuard:
        return CachedGuard(self.load, ttl_s=5.0, clock=lambda: self.time)


def cached(guard: CachedGuard, cpu_milli: int) -> str:
    return guard.check(make_job(cpu_milli=cpu_milli), "q", GuardPolicy(), prices=PRICES, now=NOW).decision


def test_cache_within_ttl_does_not_reload_and_stale_does() -> None:
    store = Store(used=1_000)
    guard = store.guard()
    assert cached(guard, 1_000) == "admit" and store.reads == 1
    store.time = 4.9
    assert cached(guard, 1_000) == "admit" and store.reads == 1
    store.time = 5.0
    assert cached(guard, 1_000) == "admit" and store.reads == 2


def test_near_the_edge_admission_rereads_and_never_admits_on_a_stale_figure() -> None:
    store = Store(used=1_000)
    guard = store.guard()
    assert cached(guard, 1_000) == "admit" and store.reads == 1  # 2000 of 9000: far from the edge
    store.used = 8_000  # the store moved; the cache still says 1000
    assert cached(guard, 6_000) == "admit" and store.reads == 1  # 7000 of 9000: margin 22% > 10%
    # 1000 + 7200 = 8200 of 9000 (margin 8.9%): re-read, then refuse on the fresh 8000 + 7200.
    assert cached(guard, 7_200) == "refuse" and store.reads == 2


def test_refusal_may_come_from_the_cache_and_invalidate_forces_a_read() -> None:
    store = Store(used=8_500)
    guard = store.guard()
    assert cached(guard, 1_000) == "refuse" and store.reads == 1
    store.used = 0
    assert cached(guard, 1_000) == "refuse" and store.reads == 1  # refused from the cache
    guard.invalidate()
    assert cached(guard, 1_000) == "admit" and store.reads == 2
