"""The ledger speaks the scheduler's language: per-pod-set flavors, Kueue's cohort tree, one-shot sync.

- ``admit`` takes ``Admit.flavors`` (pod set → resource → flavor) as the scheduler produces it;
- ``sync_cluster_queues`` writes nominal quotas, borrowing and lending limits and cohort rows, in
  one transaction, validated up front, deleting what the configuration no longer has (unless in
  use); the database then admits exactly what ``budcore.scheduling.quota`` says fits;
- quota rows are locked in bytewise order whatever the database's collation;
- a plain store write cannot make a job hold quota the ledger never counted.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytest.importorskip("sqlalchemy")

import psycopg
import sqlalchemy as sa
from budcore_adapters.postgres import (
    LeasePolicy,
    LedgerAdmissionRequiredError,
    PoolSettings,
    PostgresAdmissionLedger,
    PostgresJobStore,
    QuotaInUseError,
    QuotaKey,
    QuotaRangeError,
    QuotaUnavailableError,
    cohort_scope,
    create_engine,
    downgrade,
    upgrade,
)
from budcore_adapters.postgres.schema import jobs, leases, outbox, quota_reservations, quota_usage
from budcore_adapters.postgres.tempserver import TemporaryPostgres
from psycopg import sql

from budcore.config import loads_queue_config
from budcore.domain.errors import InvalidTransitionError, ValidationError
from budcore.domain.ids import TenantId
from budcore.domain.job import Job, JobStatus, PodSet, ResourceRequest
from budcore.domain.lifecycle import transition
from budcore.domain.resources import NVIDIA_GPU, ResourceVector
from budcore.scheduling import Scheduler
from budcore.scheduling.queues import (
    ClusterQueue,
    Cohort,
    FlavorQuotas,
    QueueConfig,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
)
from budcore.scheduling.quota import QuotaTree
from budcore.scheduling.quota import QuotaUsage as TreeUsage

pytestmark = pytest.mark.postgres

ACME = TenantId("acme")
T0 = datetime(2030, 1, 1, tzinfo=UTC)
GPU = 1000  # milli-units per GPU


def empty(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for table in (quota_reservations, leases, outbox, jobs):
            conn.execute(sa.delete(table))
        # Children before parents (the parent foreign key).
        conn.execute(sa.delete(quota_usage).where(quota_usage.c.parent.is_not(None)))
        conn.execute(sa.delete(quota_usage))


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresJobStore]:
    s = PostgresJobStore(pg_url, pool=PoolSettings(size=4), lease=LeasePolicy(holder="replica-a"))
    empty(s.engine)
    yield s
    s.close()


@pytest.fixture
def ledger(store: PostgresJobStore) -> PostgresAdmissionLedger:
    return PostgresAdmissionLedger(store)


def queued(store: PostgresJobStore, request: ResourceRequest, name: str = "train") -> Job:
    job = store.create(
        Job(name=name, tenant=ACME, local_queue="lq", request=request, created_at=T0, updated_at=T0)
    )
    new, event = transition(job, JobStatus.QUEUED, now=T0)
    return store.update(new, events=[event])


def gpus(n: int, pods: int = 1) -> ResourceRequest:
    return ResourceRequest.single(gpus=n, cpu=0, memory=0, pods=pods)


def finish(store: PostgresJobStore, job: Job) -> Job:
    done, event = transition(
        store.get(job.tenant, job.id), JobStatus.CANCELLED, now=T0 + timedelta(minutes=1)
    )
    return store.update(done, events=[event])


def used(ledger: PostgresAdmissionLedger) -> dict[str, int]:
    return {str(u.key): u.used for u in ledger.usage() if u.used}


def gpu_queue(
    name: str, cohort: str | None, **flavor_quotas: tuple[int, int | None, int | None]
) -> ClusterQueue:
    """A ClusterQueue covering nvidia.com/gpu: flavor -> (nominal, borrowingLimit, lendingLimit) in GPUs."""
    return ClusterQueue(
        name=name,
        cohort=cohort,
        resource_groups=(
            ResourceGroup(
                covered_resources=(NVIDIA_GPU,),
                flavors=tuple(
                    FlavorQuotas(
                        name=flavor,
                        resources=(
                            ResourceQuota(
                                name=NVIDIA_GPU,
                                nominal_quota=nominal * GPU,
                                borrowing_limit=None if bl is None else bl * GPU,
                                lending_limit=None if ll is None else ll * GPU,
                            ),
                        ),
                    )
                    for flavor, (nominal, bl, ll) in flavor_quotas.items()
                ),
            ),
        ),
    )


TWO_POD_SETS = ResourceRequest(
    pod_sets=(
        PodSet(name="driver", resources=ResourceVector.of({NVIDIA_GPU: 3})),
        PodSet(name="workers", count=3, resources=ResourceVector.of({NVIDIA_GPU: 1})),
    )
)


# 1. Per-pod-set flavor assignments ----------------------------------------------------------
def test_admit_takes_the_schedulers_per_pod_set_flavors(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    ledger.set_quota("cq", "fa", NVIDIA_GPU, 4 * GPU)
    ledger.set_quota("cq", "fb", NVIDIA_GPU, 4 * GPU)
    job = queued(store, TWO_POD_SETS)
    # One flavor per resource (the old form) cannot express it: 6 GPUs on one flavor do not fit.
    with pytest.raises(QuotaUnavailableError):
        ledger.admit(job, cluster_queue="cq", flavors={NVIDIA_GPU: "fa"}, now=T0)
    admission = ledger.admit(
        job, cluster_queue="cq", flavors={"driver": {NVIDIA_GPU: "fa"}, "workers": {NVIDIA_GPU: "fb"}}, now=T0
    )
    assert admission.reserved == {
        QuotaKey("cq", "fa", NVIDIA_GPU): 3 * GPU,
        QuotaKey("cq", "fb", NVIDIA_GPU): 3 * GPU,
    }
    assert used(ledger) == {f"cq/fa/{NVIDIA_GPU}": 3 * GPU, f"cq/fb/{NVIDIA_GPU}": 3 * GPU}
    finish(store, admission.job)
    assert used(ledger) == {}


def test_per_resource_flavors_still_cover_every_pod_set(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    ledger.set_quota("cq", "fa", NVIDIA_GPU, 8 * GPU)
    admission = ledger.admit(
        queued(store, TWO_POD_SETS), cluster_queue="cq", flavors={NVIDIA_GPU: "fa"}, now=T0
    )
    assert admission.reserved == {QuotaKey("cq", "fa", NVIDIA_GPU): 6 * GPU}


@pytest.mark.parametrize(
    ("flavors", "path"),
    [
        ({"driver": {NVIDIA_GPU: "fa"}}, f"flavors.workers.{NVIDIA_GPU}"),
        ({"driver": {NVIDIA_GPU: "fa"}, "workers": {}}, f"flavors.workers.{NVIDIA_GPU}"),
        ({"driver": {NVIDIA_GPU: "fa", "cpu": "fa"}, "workers": {NVIDIA_GPU: "fa"}}, "flavors.driver.cpu"),
        (
            {"driver": {NVIDIA_GPU: "fa"}, "workers": {NVIDIA_GPU: "fa"}, "ps": {NVIDIA_GPU: "fa"}},
            "flavors.ps",
        ),
        ({"driver": {NVIDIA_GPU: "fa"}, "workers": "fa"}, "flavors.driver"),
        ({"driver": {NVIDIA_GPU: ""}, "workers": {NVIDIA_GPU: "fa"}}, "flavors.driver"),
    ],
)
def test_pod_set_assignment_must_cover_exactly_the_request(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger, flavors: Any, path: str
) -> None:
    ledger.set_quota("cq", "fa", NVIDIA_GPU, 8 * GPU)
    job = queued(store, TWO_POD_SETS)
    with pytest.raises(ValidationError) as info:
        ledger.admit(job, cluster_queue="cq", flavors=flavors, now=T0)
    assert info.value.path == path
    assert store.get(ACME, job.id) == job
    assert used(ledger) == {}


SPLIT_CONFIG = """
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: fa}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: fb}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: cq}
spec:
  namespaceSelector: {}
  resourceGroups:
  - coveredResources: [nvidia.com/gpu]
    flavors:
    - {name: fa, resources: [{name: nvidia.com/gpu, nominalQuota: 4}]}
    - {name: fb, resources: [{name: nvidia.com/gpu, nominalQuota: 4}]}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: lq, namespace: acme}
spec: {clusterQueue: cq}
"""


def test_a_scheduler_decision_is_applied_as_it_is(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    config = loads_queue_config(SPLIT_CONFIG)
    ledger.sync_cluster_queues(config.cluster_queues.values(), config.cohorts.values())
    job = queued(store, TWO_POD_SETS)
    scheduler = Scheduler(config)
    scheduler.submit(job)
    (decision,) = scheduler.cycle(T0).admitted
    assert decision.flavors == {"driver": {NVIDIA_GPU: "fa"}, "workers": {NVIDIA_GPU: "fb"}}
    admission = ledger.admit_decision(job, decision, now=T0)
    assert admission.job.status is JobStatus.ADMITTED
    assert admission.reserved == {QuotaKey("cq", f, r): amount for (f, r), amount in decision.usage.items()}
    other = queued(store, gpus(1), name="other")
    with pytest.raises(ValidationError) as info:
        ledger.admit_decision(other, decision, now=T0)
    assert info.value.path == "decision"


# 2. Sync: borrowing, lending, cohort rows ----------------------------------------------------
BORROW_CONFIG = [
    gpu_queue("a", "co", f=(2, 4, None)),  # nominal 2, may borrow 4
    gpu_queue("b", "co", f=(6, None, None)),
]


def test_sync_writes_limits_and_cohort_rows_so_kueue_borrowing_works(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    rows = {str(u.key): u for u in ledger.sync_cluster_queues(BORROW_CONFIG)}
    gpu = NVIDIA_GPU
    assert set(rows) == {f"a/f/{gpu}", f"b/f/{gpu}", f"cohort:co/f/{gpu}"}
    a, co = rows[f"a/f/{gpu}"], rows[f"cohort:co/f/{gpu}"]
    assert (a.quota, a.borrowing_limit, a.parent) == (2 * GPU, 4 * GPU, "cohort:co")
    assert (co.quota, co.parent) == (8 * GPU, None)
    assert ledger.available("a", "f", gpu) == 6 * GPU  # 2 own + 4 borrowed (the cohort has 8)

    first = ledger.admit(queued(store, gpus(4)), cluster_queue="a", flavors={gpu: "f"}, now=T0)
    assert first.reserved == {QuotaKey("a", "f", gpu): 4 * GPU}  # the cohort row is derived
    assert used(ledger) == {f"a/f/{gpu}": 4 * GPU, f"cohort:co/f/{gpu}": 4 * GPU}
    with pytest.raises(QuotaUnavailableError) as info:  # 4 + 3 > nominal 2 + borrowingLimit 4
        ledger.admit(queued(store, gpus(3)), cluster_queue="a", flavors={gpu: "f"}, now=T0)
    assert (info.value.cluster_queue, info.value.free) == ("a", 2 * GPU)
    ledger.admit(queued(store, gpus(4)), cluster_queue="b", flavors={gpu: "f"}, now=T0)
    with pytest.raises(QuotaUnavailableError) as info:  # b's nominal is lent to a: the cohort is full
        ledger.admit(queued(store, gpus(1)), cluster_queue="b", flavors={gpu: "f"}, now=T0)
    assert info.value.cluster_queue == "cohort:co"
    finish(store, first.job)
    assert used(ledger) == {f"b/f/{gpu}": 4 * GPU, f"cohort:co/f/{gpu}": 4 * GPU}


def test_the_old_cohorts_argument_does_not_count_twice_on_synced_rows(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    ledger.sync_cluster_queues(BORROW_CONFIG)
    admission = ledger.admit(
        queued(store, gpus(4)), cluster_queue="a", flavors={NVIDIA_GPU: "f"}, cohorts=["co"], now=T0
    )
    assert admission.reserved == {QuotaKey("a", "f", NVIDIA_GPU): 4 * GPU}
    assert used(ledger)[f"cohort:co/f/{NVIDIA_GPU}"] == 4 * GPU


def test_lending_limits_keep_the_guaranteed_part_and_releases_follow_kueue(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    # a lends at most 1 of its 4 (3 guaranteed); the cohort holds 1 + 4 = 5.
    ledger.sync_cluster_queues(
        [gpu_queue("a", "co", f=(4, None, 1)), gpu_queue("b", "co", f=(4, None, None))]
    )
    gpu = NVIDIA_GPU
    assert {str(u.key): u.quota for u in ledger.usage()}[f"cohort:co/f/{gpu}"] == 5 * GPU
    assert ledger.available("b", "f", gpu) == 5 * GPU
    within = ledger.admit(queued(store, gpus(3)), cluster_queue="a", flavors={gpu: "f"}, now=T0)
    assert used(ledger) == {f"a/f/{gpu}": 3 * GPU}  # inside the guaranteed part: nothing in the cohort
    above = ledger.admit(queued(store, gpus(1)), cluster_queue="a", flavors={gpu: "f"}, now=T0)
    assert used(ledger)[f"cohort:co/f/{gpu}"] == 1 * GPU
    # Release the *first* job: a's usage drops to 1, inside the guaranteed part again, so the
    # cohort's usage goes to 0 — per-job cohort reservations would have kept 1 there.
    finish(store, within.job)
    assert used(ledger) == {f"a/f/{gpu}": 1 * GPU}
    ledger.admit(queued(store, gpus(5)), cluster_queue="b", flavors={gpu: "f"}, now=T0)
    with pytest.raises(QuotaUnavailableError):
        ledger.admit(queued(store, gpus(1)), cluster_queue="b", flavors={gpu: "f"}, now=T0)
    finish(store, above.job)
    assert used(ledger) == {f"b/f/{gpu}": 5 * GPU, f"cohort:co/f/{gpu}": 5 * GPU}


def _random_config(rng: random.Random) -> tuple[list[ClusterQueue], list[Cohort]]:
    def quotas() -> ResourceGroup:
        flavors = []
        for flavor in ("f1", "f2"):
            nominal = rng.randint(0, 6)
            bl = rng.choice([None, rng.randint(0, 6)])
            ll = rng.choice([None, rng.randint(0, nominal)])
            flavors.append(
                FlavorQuotas(
                    name=flavor,
                    resources=(
                        ResourceQuota(
                            name=NVIDIA_GPU,
                            nominal_quota=nominal * GPU,
                            borrowing_limit=None if bl is None else bl * GPU,
                            lending_limit=None if ll is None else ll * GPU,
                        ),
                    ),
                )
            )
        return ResourceGroup(covered_resources=(NVIDIA_GPU,), flavors=tuple(flavors))

    cohorts = [Cohort(name="root", resource_groups=(quotas(),) if rng.random() < 0.5 else ())]
    for name in ("left", "right"):
        cohorts.append(
            Cohort(name=name, parent="root", resource_groups=(quotas(),) if rng.random() < 0.3 else ())
        )
    queues = [
        ClusterQueue(
            name=f"q{i}", cohort=rng.choice(["left", "right", "root", None]), resource_groups=(quotas(),)
        )
        for i in range(4)
    ]
    return queues, cohorts


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_the_ledger_admits_exactly_what_the_scheduler_quota_tree_allows(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger, seed: int
) -> None:
    """Random hierarchical configurations and admissions/releases: database == budcore.scheduling.quota."""
    rng = random.Random(seed)
    queues, cohorts = _random_config(rng)
    ledger.sync_cluster_queues(queues, cohorts)
    config = QueueConfig.build(
        flavors=[ResourceFlavor(name="f1"), ResourceFlavor(name="f2")], cluster_queues=queues, cohorts=cohorts
    )
    tree = QuotaTree(config)
    mirror = TreeUsage(tree)
    held: list[tuple[Job, str, tuple[str, str], int]] = []
    outcomes = {"admitted": 0, "refused": 0}
    for step in range(36):
        if held and rng.random() < 0.35:
            job, cq, fr, amount = held.pop(rng.randrange(len(held)))
            finish(store, job)
            mirror.add(cq, {fr: amount}, sign=-1)
        else:
            cq = rng.choice(queues).name
            fr = (rng.choice(["f1", "f2"]), NVIDIA_GPU)
            amount = rng.randint(1, 5) * GPU
            job = queued(store, gpus(amount // GPU), name=f"s{step}")
            fits = amount <= mirror.available(tree.cluster_queues[cq], fr)
            try:
                admission = ledger.admit(job, cluster_queue=cq, flavors={NVIDIA_GPU: fr[0]}, now=T0)
            except QuotaUnavailableError:
                assert not fits, f"step {step}: the ledger refused what Kueue admits ({cq} {fr} {amount})"
                outcomes["refused"] += 1
            else:
                assert fits, f"step {step}: the ledger admitted what Kueue refuses ({cq} {fr} {amount})"
                held.append((admission.job, cq, fr, amount))
                mirror.add(cq, {fr: amount})
                outcomes["admitted"] += 1
        expected = {
            str(QuotaKey(cohort_scope(k.split("/", 1)[1]) if k.startswith("cohort/") else k, f, r)): v
            for k, per_fr in mirror.flatten().items()
            for (f, r), v in per_fr.items()
        }
        assert used(ledger) == expected, f"step {step}"
    for queue in queues:
        for flavor in ("f1", "f2"):
            node = tree.cluster_queues[queue.name]
            assert ledger.available(queue.name, flavor, NVIDIA_GPU) == max(
                0, mirror.available(node, (flavor, NVIDIA_GPU))
            )
    assert outcomes["admitted"] and outcomes["refused"]  # both paths were exercised


def test_replicas_racing_on_a_cohort_tree_take_exactly_its_capacity(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    """16 threads (own connections) admit 1 GPU each, 8 into a and 8 into b, all at once.

    a: nominal 4, borrowingLimit 4; b: nominal 4, lendingLimit 2 (2 guaranteed). The cohort holds
    4 + 2 = 6, b keeps 2 for itself: whatever the interleaving, exactly 8 are admitted, the cohort
    row is full and every row's usage is what its reservations derive.
    """
    gpu = NVIDIA_GPU
    ledger.sync_cluster_queues([gpu_queue("a", "co", f=(4, 4, None)), gpu_queue("b", "co", f=(4, None, 2))])
    candidates = [(queued(store, gpus(1), name=f"r{i}"), "a" if i % 2 else "b") for i in range(16)]
    barrier = threading.Barrier(len(candidates))
    outcomes: list[str] = []
    lock = threading.Lock()

    def replica(job: Job, cq: str) -> None:
        barrier.wait()
        try:
            ledger.admit(job, cluster_queue=cq, flavors={gpu: "f"}, now=T0)
            outcome = "admitted"
        except QuotaUnavailableError:
            outcome = "no quota"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=replica, args=c) for c in candidates]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["admitted"] * 8 + ["no quota"] * 8
    rows = {str(u.key): u for u in ledger.usage()}
    assert rows[f"cohort:co/f/{gpu}"].used == 6 * GPU
    assert rows[f"b/f/{gpu}"].used >= 2 * GPU
    assert rows[f"a/f/{gpu}"].used + rows[f"b/f/{gpu}"].used == 8 * GPU
    # What the rows say is what the reservations derive.
    with store.engine.connect() as conn:
        direct = dict(
            conn.execute(
                sa.select(
                    quota_reservations.c.cluster_queue, sa.func.sum(quota_reservations.c.amount)
                ).group_by(quota_reservations.c.cluster_queue)
            ).all()
        )
    assert {k: int(v) for k, v in direct.items()} == {
        cq: rows[f"{cq}/f/{gpu}"].used for cq in ("a", "b") if rows[f"{cq}/f/{gpu}"].used
    }


def test_sync_validates_ranges_up_front_and_writes_nothing(ledger: PostgresAdmissionLedger) -> None:
    config = loads_queue_config(
        """
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: f}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: a}
spec:
  namespaceSelector: {}
  resourceGroups:
  - coveredResources: [cpu]
    flavors: [{name: f, resources: [{name: cpu, nominalQuota: 8}]}]
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: b}
spec:
  namespaceSelector: {}
  resourceGroups:
  - coveredResources: [ephemeral-storage]
    flavors: [{name: f, resources: [{name: ephemeral-storage, nominalQuota: 10Pi}]}]
"""
    )
    with pytest.raises(QuotaRangeError) as info:
        ledger.sync_cluster_queues(config.cluster_queues.values())
    error = info.value
    assert (error.scope, error.flavor, error.resource) == ("b", "f", "ephemeral-storage")
    assert error.path == "ClusterQueue/b.spec.resourceGroups[0].flavors[0].resources[0].nominalQuota"
    assert ledger.usage() == []
    # Members that each fit can still overflow their cohort's total.
    five_pi = 5 * 2**50 * 1000
    big = [
        ClusterQueue(
            name=name,
            cohort="co",
            resource_groups=(
                ResourceGroup(
                    covered_resources=("memory",),
                    flavors=(
                        FlavorQuotas(
                            name="f", resources=(ResourceQuota(name="memory", nominal_quota=five_pi),)
                        ),
                    ),
                ),
            ),
        )
        for name in ("x", "y")
    ]
    with pytest.raises(QuotaRangeError) as info:
        ledger.sync_cluster_queues(big)
    assert (info.value.scope, info.value.resource) == ("cohort:co", "memory")
    assert ledger.usage() == []


def test_sync_is_one_transaction(store: PostgresJobStore, ledger: PostgresAdmissionLedger) -> None:
    """A failure between the sync's statements leaves every row as it was."""
    ledger.sync_cluster_queues([gpu_queue("old", None, f=(1, None, None))])
    before = ledger.usage()
    writes = 0

    def fail_on_second_write(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        nonlocal writes
        if (
            statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
            and "budcore_quota_usage" in statement
        ):
            writes += 1
            if writes == 2:
                raise RuntimeError("connection lost mid-sync")

    sa.event.listen(store.engine, "before_cursor_execute", fail_on_second_write)
    try:
        with pytest.raises(RuntimeError, match="mid-sync"):
            ledger.sync_cluster_queues(BORROW_CONFIG)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", fail_on_second_write)
    assert ledger.usage() == before


def test_sync_deletes_removed_queues_unless_they_are_in_use(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    ledger.sync_cluster_queues([*BORROW_CONFIG, gpu_queue("solo", None, f=(2, None, None))])
    busy = ledger.admit(queued(store, gpus(1)), cluster_queue="b", flavors={NVIDIA_GPU: "f"}, now=T0)
    before = ledger.usage()
    with pytest.raises(QuotaInUseError) as info:  # b (and the cohort it feeds) still hold quota
        ledger.sync_cluster_queues([gpu_queue("solo", None, f=(2, None, None))])
    message = str(info.value)
    assert f"b/f/{NVIDIA_GPU}" in message and f"cohort:co/f/{NVIDIA_GPU}" in message
    assert ledger.usage() == before  # nothing changed, also not solo's or a's rows
    # Without pruning the rows stay; once the job finishes they can go.
    kept = ledger.sync_cluster_queues([gpu_queue("solo", None, f=(3, None, None))], prune=False)
    assert {u.key.cluster_queue for u in kept} == {"a", "b", "cohort:co", "solo"}
    finish(store, busy.job)
    rows = ledger.sync_cluster_queues([gpu_queue("solo", None, f=(3, None, None))])
    assert [(str(u.key), u.quota) for u in rows] == [(f"solo/f/{NVIDIA_GPU}", 3 * GPU)]
    assert [(str(u.key), u.quota) for u in ledger.usage()] == [(f"solo/f/{NVIDIA_GPU}", 3 * GPU)]


def test_resync_rederives_usage_when_the_tree_changes(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    gpu = NVIDIA_GPU
    ledger.sync_cluster_queues(
        [gpu_queue("a", "co", f=(4, None, None)), gpu_queue("b", "co", f=(4, None, None))]
    )
    ledger.admit(queued(store, gpus(3)), cluster_queue="a", flavors={gpu: "f"}, now=T0)
    assert used(ledger) == {f"a/f/{gpu}": 3 * GPU, f"cohort:co/f/{gpu}": 3 * GPU}
    # a now keeps 2 for itself: only 1 of its 3 counts in the cohort.
    ledger.sync_cluster_queues(
        [gpu_queue("a", "co", f=(4, None, 2)), gpu_queue("b", "co", f=(4, None, None))]
    )
    assert used(ledger) == {f"a/f/{gpu}": 3 * GPU, f"cohort:co/f/{gpu}": 1 * GPU}
    # a moves to another cohort: its usage follows it.
    ledger.sync_cluster_queues(
        [gpu_queue("a", "other", f=(4, None, None)), gpu_queue("b", "co", f=(4, None, None))]
    )
    assert used(ledger) == {f"a/f/{gpu}": 3 * GPU, f"cohort:other/f/{gpu}": 3 * GPU}
    rows = {str(u.key): u for u in ledger.usage()}
    assert rows[f"a/f/{gpu}"].parent == "cohort:other"
    assert f"cohort:co/f/{gpu}" in rows and rows[f"cohort:co/f/{gpu}"].used == 0


def test_set_quota_refuses_rows_of_a_synced_tree(ledger: PostgresAdmissionLedger) -> None:
    ledger.sync_cluster_queues(BORROW_CONFIG)
    for scope in ("a", "cohort:co"):
        with pytest.raises(ValidationError, match="sync"):
            ledger.set_quota(scope, "f", NVIDIA_GPU, 1)
    assert ledger.set_quota("standalone", "f", NVIDIA_GPU, 1).quota == 1


def test_sync_validates_names(ledger: PostgresAdmissionLedger) -> None:
    with pytest.raises(ValidationError, match="cohort:"):
        ledger.sync_cluster_queues([gpu_queue("cohort:x", None, f=(1, None, None))])
    with pytest.raises(ValidationError, match="duplicate"):
        ledger.sync_cluster_queues([gpu_queue("a", None, f=(1, None, None))] * 2)
    with pytest.raises(ValidationError, match="cycle"):
        ledger.sync_cluster_queues([], [Cohort(name="x", parent="y"), Cohort(name="y", parent="x")])
    assert ledger.usage() == []


def test_a_database_at_0002_with_flat_quota_rows_keeps_working_at_head(
    new_database: Callable[[], str],
) -> None:
    url = new_database()
    upgrade(url, "0002_admission")
    old = PostgresJobStore(url, check_schema=False, require_ledger=False)
    try:
        job = queued(old, gpus(4))
        admitted, event = transition(job, JobStatus.ADMITTED, now=T0)
        job = old.update(admitted, events=[event])
        with old.engine.begin() as conn:  # what revision 0002's ledger wrote for it
            for scope, quota in (("team-a", 8 * GPU), ("cohort:research", 12 * GPU)):
                conn.execute(
                    sa.text("INSERT INTO budcore_quota_usage (cluster_queue, flavor, resource, quota, used) "
                            "VALUES (:s, 'h100', :r, :q, :u)"),
                    {"s": scope, "r": NVIDIA_GPU, "q": quota, "u": 4 * GPU},
                )  # fmt: skip
                conn.execute(
                    sa.text("INSERT INTO budcore_quota_reservations (tenant, job_id, cluster_queue, flavor, "
                            "resource, amount) VALUES (:t, :j, :s, 'h100', :r, :a)"),
                    {"t": job.tenant, "j": job.id, "s": scope, "r": NVIDIA_GPU, "a": 4 * GPU},
                )  # fmt: skip
    finally:
        old.close()
    upgrade(url)
    store = PostgresJobStore(url)
    ledger = PostgresAdmissionLedger(store)
    try:
        rows = ledger.usage()
        assert [(str(u.key), u.quota, u.used, u.parent) for u in rows] == [
            (f"cohort:research/h100/{NVIDIA_GPU}", 12 * GPU, 4 * GPU, None),
            (f"team-a/h100/{NVIDIA_GPU}", 8 * GPU, 4 * GPU, None),
        ]
        second = ledger.admit(
            queued(store, gpus(4), name="second"),
            cluster_queue="team-a",
            flavors={NVIDIA_GPU: "h100"},
            cohorts=["research"],
            now=T0,
        )
        assert len(second.reserved) == 2  # flat rows: reserved on both, as before
        finish(store, job)
        assert set(used(ledger).values()) == {4 * GPU}
    finally:
        store.close()
    downgrade(url, "0002_admission")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            flat = conn.execute(
                sa.text("SELECT cluster_queue, used FROM budcore_quota_usage ORDER BY 1")
            ).all()
        assert [tuple(r) for r in flat] == [("cohort:research", 4 * GPU), ("team-a", 4 * GPU)]
    finally:
        engine.dispose()


def test_downgrade_turns_a_synced_tree_into_flat_rows(new_database: Callable[[], str]) -> None:
    url = new_database()
    upgrade(url)
    store = PostgresJobStore(url)
    ledger = PostgresAdmissionLedger(store)
    try:
        ledger.sync_cluster_queues(BORROW_CONFIG)
        ledger.admit(queued(store, gpus(4)), cluster_queue="a", flavors={NVIDIA_GPU: "f"}, now=T0)
    finally:
        store.close()
    downgrade(url, "0002_admission")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT cluster_queue, quota, used FROM budcore_quota_usage ORDER BY 1")
            ).all()
    finally:
        engine.dispose()
    # a keeps its cap (nominal + borrowingLimit); derived cohort usage goes (0002 reserves directly).
    assert [tuple(r) for r in rows] == [("a", 6 * GPU, 4 * GPU), ("b", 6 * GPU, 0), ("cohort:co", 8 * GPU, 0)]


# 5. Lock order and ledger bypass ---------------------------------------------------------------
WAITING_ON_A_LOCK = sa.text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = :d AND wait_event_type = 'Lock'"
)


def test_quota_rows_are_locked_bytewise_whatever_the_database_collation(pg_server: TemporaryPostgres) -> None:
    """In an ICU en-US database "a" sorts before "B"; the ledger must still lock ("B", then "a").

    A transaction holds the row of flavor "a"; an admission needing both rows then waits on it.
    If it locked bytewise — like every other quota write — it already holds "B".
    """
    name = "budcore_icu_locks"
    try:
        with psycopg.connect(pg_server.libpq_dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL(
                    "CREATE DATABASE {} LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C' TEMPLATE template0"
                ).format(sql.Identifier(name))
            )
    except psycopg.Error as exc:
        pytest.skip(f"this PostgreSQL build cannot create an ICU database: {exc}")
    url = pg_server.url(name)
    try:
        upgrade(url)
        store = PostgresJobStore(url, pool=PoolSettings(size=4))
        ledger = PostgresAdmissionLedger(store)
        ledger.set_quota("team", "B", "cpu", 64_000)
        ledger.set_quota("team", "a", NVIDIA_GPU, 8 * GPU)
        with store.engine.connect() as conn:
            order = conn.execute(
                sa.text("SELECT flavor FROM budcore_quota_usage ORDER BY flavor")
            ).scalars().all()  # fmt: skip
        assert order == ["a", "B"]  # the database's own order differs from Python's
        job = queued(store, ResourceRequest.single(gpus=1, cpu=1, memory=0))
        flavors = {NVIDIA_GPU: "a", "cpu": "B"}
        blocker = store.engine.connect()
        blocker.begin()
        blocker.execute(sa.text("SELECT 1 FROM budcore_quota_usage WHERE flavor = 'a' FOR UPDATE"))
        errors: list[BaseException] = []

        def admit() -> None:
            try:
                ledger.admit(job, cluster_queue="team", flavors=flavors, now=T0)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=admit)
        thread.start()
        try:
            deadline = time.monotonic() + 20
            waiting = 0
            while not waiting and time.monotonic() < deadline:
                with store.engine.connect() as probe:
                    waiting = probe.execute(WAITING_ON_A_LOCK, {"d": name}).scalar() or 0
                time.sleep(0.05)
            assert waiting, "the admission never waited for the held row"
            with (
                store.engine.connect() as probe,
                pytest.raises(sa.exc.OperationalError, match="could not obtain lock"),
            ):
                probe.execute(
                    sa.text("SELECT 1 FROM budcore_quota_usage WHERE flavor = 'B' FOR UPDATE NOWAIT")
                )
        finally:
            blocker.rollback()
            blocker.close()
            thread.join(timeout=30)
        assert errors == []
        assert {u.key.flavor: u.used for u in ledger.usage()} == {"B": 1000, "a": GPU}
        finish(store, job)
        assert {u.key.flavor: u.used for u in ledger.usage()} == {"B": 0, "a": 0}
        store.close()
    finally:
        pg_server.drop_database(name)


def test_a_plain_update_cannot_admit_while_the_ledger_is_in_use(
    store: PostgresJobStore, ledger: PostgresAdmissionLedger
) -> None:
    ledger.set_quota("cq", "f", NVIDIA_GPU, 1 * GPU)
    job = queued(store, gpus(1000))
    admitted, event = transition(job, JobStatus.ADMITTED, now=T0)
    with pytest.raises(LedgerAdmissionRequiredError, match=r"PostgresAdmissionLedger\.admit") as info:
        store.update(admitted, events=[event])
    assert isinstance(info.value, InvalidTransitionError)
    assert store.get(ACME, job.id) == job
    assert ledger.lease(ACME, job.id) is None
    running = Job(
        name="r", tenant=ACME, status=JobStatus.RUNNING, request=gpus(1), created_at=T0, updated_at=T0
    )
    with pytest.raises(LedgerAdmissionRequiredError):
        store.create(running)
    assert (
        store.count(
            ACME,
        )
        == 1
    )
    # Other edges are unaffected, and the ledger's own path works.
    ledger.set_quota("cq", "f", NVIDIA_GPU, 1000 * GPU)
    admission = ledger.admit(job, cluster_queue="cq", flavors={NVIDIA_GPU: "f"}, now=T0)
    started, event = transition(admission.job, JobStatus.RUNNING, now=T0 + timedelta(seconds=1))
    assert store.update(started, events=[event]).status is JobStatus.RUNNING


def test_require_ledger_setting(store: PostgresJobStore, pg_url: str) -> None:
    # No quota rows: the ledger is not in use, plain admission is the port's behaviour.
    job = queued(store, gpus(1))
    admitted, event = transition(job, JobStatus.ADMITTED, now=T0)
    assert store.update(admitted, events=[event]).status is JobStatus.ADMITTED
    strict = PostgresJobStore(engine=store.engine, require_ledger=True)
    other = queued(strict, gpus(1), name="other")
    admitted, event = transition(other, JobStatus.ADMITTED, now=T0)
    with pytest.raises(LedgerAdmissionRequiredError):
        strict.update(admitted, events=[event])
    PostgresAdmissionLedger(store).set_quota("cq", "f", NVIDIA_GPU, GPU)
    relaxed = PostgresJobStore(engine=store.engine, require_ledger=False)
    assert relaxed.update(admitted, events=[event]).status is JobStatus.ADMITTED
    with pytest.raises(ValidationError):
        PostgresJobStore(engine=store.engine, require_ledger="yes")  # type: ignore[arg-type]
