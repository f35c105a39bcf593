"""A reusable pytest suite that checks an admission ledger against the port's contract.

Subclass :class:`AdmissionLedgerConformance`, name the subclass ``Test…`` so pytest collects it,
and override :meth:`~AdmissionLedgerConformance.make_ledger`; every ``test_*`` method then runs
against the implementation::

    from budcore.ports import AdmissionLedger
    from budcore.testing.ledger import AdmissionLedgerConformance

    class TestMyLedger(AdmissionLedgerConformance):
        def make_ledger(self) -> AdmissionLedger:
            return MyLedger(url=...)  # must be empty: no configuration, no jobs

Contract notes the kit relies on (see :mod:`budcore.ports.admission_ledger` for the port):

- ``make_ledger`` is called once per test *and* once per hypothesis example and must return an
  **empty** ledger (no quota, no LocalQueues, an empty :attr:`~budcore.ports.AdmissionLedger.store`).
  The kit configures it with :meth:`~budcore.ports.AdmissionLedger.sync`, creates jobs in its store
  and moves them to ``queued`` through the store.
- Amounts are compared in milli-units; the quota is always ``nvidia.com/gpu`` in flavors ``f1`` and
  ``f2``, and each ClusterQueue ``<cq>`` is fed by LocalQueue ``lq`` of namespace ``ns-<cq>``.
- Every decision is checked against the scheduler's own arithmetic
  (:mod:`budcore.scheduling.quota`): the property tests replay random reservations and releases on
  a core :class:`~budcore.scheduling.quota.QuotaUsage` and require the ledger to admit exactly what
  the core's ``available`` allows and to report the same usage and availability for every node.
- ``hypothesis_max_examples`` (class attribute) bounds the property tests for slow ledgers;
  ``None`` uses the active hypothesis profile.

Needs ``pytest`` and ``hypothesis`` (the ``budcore[testing]`` extra). Long because the contract is
one suite: every check is a test method an implementer inherits as it is, with the numbers it
expects spelled out next to the configuration they come from.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from budcore.domain.errors import ConflictError, InvalidTransitionError, NotFoundError, ValidationError
from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import Job, JobStatus, PodSet, ResourceRequest
from budcore.domain.lifecycle import transition
from budcore.domain.resources import NVIDIA_GPU, ResourceVector
from budcore.ports.admission_ledger import (
    COHORT_PREFIX,
    AdmissionLedger,
    LocalQueueMismatchError,
    QuotaBalance,
    QuotaInUseError,
    QuotaKey,
    QuotaUnavailableError,
    cohort_scope,
    request_by_flavor,
)
from budcore.scheduling.queues import (
    ClusterQueue,
    Cohort,
    FlavorQuotas,
    LocalQueue,
    QueueConfig,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
)
from budcore.scheduling.quota import QuotaNode, QuotaTree, QuotaUsage, available
from budcore.scheduling.snapshot import Admit
from budcore.testing.conformance import kit_settings
from budcore.testing.fakes import DEFAULT_START

__all__ = ["GPU", "AdmissionLedgerConformance", "cluster_queue", "queue_config"]

GPU = 1000  # milli-units per GPU
FLAVORS = ("f1", "f2")
# (nominal, borrowingLimit, lendingLimit) in GPUs per flavor.
Quotas = Mapping[str, tuple[int, int | None, int | None]]


def _groups(quotas: Quotas) -> tuple[ResourceGroup, ...]:
    if not quotas:
        return ()
    flavors = tuple(
        FlavorQuotas(
            name=flavor,
            resources=(
                ResourceQuota(
                    name=NVIDIA_GPU,
                    nominal_quota=nominal * GPU,
                    borrowing_limit=None if borrowing is None else borrowing * GPU,
                    lending_limit=None if lending is None else lending * GPU,
                ),
            ),
        )
        for flavor, (nominal, borrowing, lending) in quotas.items()
    )
    return (ResourceGroup(covered_resources=(NVIDIA_GPU,), flavors=flavors),)


def cluster_queue(
    name: str, cohort: str | None = None, **quotas: tuple[int, int | None, int | None]
) -> ClusterQueue:
    """A ClusterQueue covering ``nvidia.com/gpu``: flavor → (nominal, borrowingLimit, lendingLimit) GPUs."""
    return ClusterQueue(name=name, cohort=cohort, resource_groups=_groups(quotas))


def cohort(name: str, parent: str | None = None, **quotas: tuple[int, int | None, int | None]) -> Cohort:
    return Cohort(name=name, parent=parent, resource_groups=_groups(quotas))


def namespace_of(cq: str) -> str:
    return f"ns-{cq}"


def queue_config(
    queues: Sequence[ClusterQueue],
    cohorts: Sequence[Cohort] = (),
    local_queues: Iterable[LocalQueue] | None = None,
) -> QueueConfig:
    """``queues`` and ``cohorts``, with LocalQueue ``ns-<cq>/lq`` feeding each queue by default."""
    if local_queues is None:
        local_queues = [
            LocalQueue(name="lq", namespace=namespace_of(q.name), cluster_queue=q.name) for q in queues
        ]
    return QueueConfig.build(
        flavors=[ResourceFlavor(name=f) for f in FLAVORS],
        cluster_queues=queues,
        cohorts=cohorts,
        local_queues=local_queues,
    )


def core_node(tree: QuotaTree, key: QuotaKey) -> QuotaNode:
    """The core node a quota key names (a ClusterQueue, or a ``cohort:<name>`` scope)."""
    if key.cluster_queue.startswith(COHORT_PREFIX):
        return tree.cohorts[key.cluster_queue[len(COHORT_PREFIX) :]]
    return tree.cluster_queues[key.cluster_queue]


def _expect(actual: object, expected: object, what: str) -> None:
    assert actual == expected, f"{what}: got {actual!r}, expected {expected!r}"


class AdmissionLedgerConformance:
    """The :class:`~budcore.ports.AdmissionLedger` contract as pytest tests; override :meth:`make_ledger`."""

    hypothesis_max_examples: ClassVar[int | None] = None
    base_time: ClassVar[datetime] = DEFAULT_START

    # Hook for the implementer ----------------------------------------------------------------
    def make_ledger(self) -> AdmissionLedger:
        """Return a new, empty ledger (no quota, no LocalQueues, no jobs in its store)."""
        raise NotImplementedError(
            f"{type(self).__name__} must override make_ledger(self) to return an empty AdmissionLedger"
        )

    # Helpers ---------------------------------------------------------------------------------
    _ids = itertools.count(1)

    def configured(self, config: QueueConfig) -> AdmissionLedger:
        ledger = self.make_ledger()
        ledger.sync(config)
        return ledger

    def queued(
        self,
        ledger: AdmissionLedger,
        gpus: int,
        cq: str,
        *,
        tenant: str | None = None,
        local_queue: str | None = "lq",
    ) -> Job:
        """A queued job asking ``gpus`` GPUs, in namespace ``ns-<cq>`` and LocalQueue ``lq`` by default."""
        n = next(self._ids)
        at = self.base_time + timedelta(seconds=n)
        job = ledger.store.create(
            Job(
                id=JobId(f"ledger-job-{n:05d}"),
                name=f"ledger job {n}",
                tenant=TenantId(tenant or namespace_of(cq)),
                local_queue=local_queue,
                request=ResourceRequest(
                    pod_sets=(PodSet(name="main", resources=ResourceVector.of({NVIDIA_GPU: gpus})),)
                ),
                created_at=at,
                updated_at=at,
            )
        )
        new, event = transition(job, JobStatus.QUEUED, now=at)
        return ledger.store.update(new, events=[event])

    @staticmethod
    def decision(job: Job, cq: str, flavor: str = "f1") -> Admit:
        """The scheduler's decision to admit ``job`` into ``cq`` with every resource on ``flavor``."""
        flavors = {p.name: dict.fromkeys(p.total, flavor) for p in job.request.pod_sets}
        return Admit(
            job_id=job.id,
            tenant=job.tenant,
            cluster_queue=cq,
            local_queue=(job.tenant, job.local_queue or ""),
            flavors=flavors,
            usage=request_by_flavor(job, flavors),
            borrows=False,
            priority=0,
        )

    def now(self) -> datetime:
        return self.base_time + timedelta(hours=1)

    def reserve(self, ledger: AdmissionLedger, job: Job, cq: str, flavor: str = "f1") -> Job:
        """Reserve ``job`` into ``cq`` and return the admitted job as stored."""
        return ledger.reserve(job, self.decision(job, cq, flavor), now=self.now()).job

    @staticmethod
    def used(ledger: AdmissionLedger) -> dict[str, int]:
        """Every node's non-zero usage, by quota key text (``cq/flavor/resource``)."""
        return {str(b.key): b.used for b in ledger.balances() if b.used}

    @staticmethod
    def key(cq: str, flavor: str = "f1") -> QuotaKey:
        return QuotaKey(cq, flavor, NVIDIA_GPU)

    def assert_nothing_written(
        self, ledger: AdmissionLedger, job: Job, before: list[QuotaBalance], what: str
    ) -> None:
        _expect(ledger.store.get(job.tenant, job.id), job, f"{what}: the job as stored")
        _expect(ledger.reservations(job.tenant, job.id), {}, f"{what}: the job's reservations")
        _expect(ledger.balances(), before, f"{what}: the balances")

    # Within nominal quota ----------------------------------------------------------------------
    def test_reserve_within_nominal_quota(self) -> None:
        ledger = self.configured(queue_config([cluster_queue("cq-a", f1=(4, None, None))]))
        job = self.queued(ledger, 3, "cq-a")
        reservation = ledger.reserve(job, self.decision(job, "cq-a"), now=self.now())
        _expect(dict(reservation.amounts), {self.key("cq-a"): 3 * GPU}, "reserved")
        _expect(reservation.job.status, JobStatus.ADMITTED, "status after reserve")
        _expect(reservation.job.version, job.version + 1, "version after reserve")
        _expect(ledger.store.get(job.tenant, job.id), reservation.job, "the admitted job as stored")
        _expect(ledger.reservations(job.tenant, job.id), {self.key("cq-a"): 3 * GPU}, "reservations")
        (balance,) = ledger.balances("cq-a")
        _expect(
            (balance.key, balance.nominal, balance.quota, balance.used, balance.available),
            (self.key("cq-a"), 4 * GPU, 4 * GPU, 3 * GPU, 1 * GPU),
            "balance",
        )
        _expect(ledger.available("cq-a", "f1", NVIDIA_GPU), 1 * GPU, "available")

    def test_admit_with_flavors_is_the_same_reservation(self) -> None:
        ledger = self.configured(
            queue_config([cluster_queue("cq-a", f1=(2, None, None), f2=(2, None, None))])
        )
        job = self.queued(ledger, 2, "cq-a")
        reservation = ledger.admit(job, cluster_queue="cq-a", flavors={NVIDIA_GPU: "f2"}, now=self.now())
        _expect(dict(reservation.amounts), {self.key("cq-a", "f2"): 2 * GPU}, "reserved")
        _expect(self.used(ledger), {str(self.key("cq-a", "f2")): 2 * GPU}, "usage")

    # Borrowing and lending -------------------------------------------------------------------
    def test_borrowing_within_the_cohort_and_its_limit(self) -> None:
        # a: nominal 2, may borrow 2; b: nominal 4. The cohort holds 6.
        ledger = self.configured(
            queue_config(
                [cluster_queue("a", "co", f1=(2, 2, None)), cluster_queue("b", "co", f1=(4, None, None))]
            )
        )
        _expect(ledger.available("a", "f1", NVIDIA_GPU), 4 * GPU, "a may take its 2 and borrow 2")
        self.reserve(ledger, self.queued(ledger, 4, "a"), "a")
        _expect(
            self.used(ledger), {str(self.key("a")): 4 * GPU, str(self.key("cohort:co")): 4 * GPU}, "usage"
        )
        job = self.queued(ledger, 1, "a")
        before = ledger.balances()
        with pytest.raises(QuotaUnavailableError) as info:  # 4 + 1 > nominal 2 + borrowingLimit 2
            self.reserve(ledger, job, "a")
        error = info.value
        _expect(
            (error.cluster_queue, error.flavor, error.resource, error.requested, error.free, error.available),
            ("a", "f1", NVIDIA_GPU, 1 * GPU, 0, 0),
            "the refusal names a's borrowing limit",
        )
        self.assert_nothing_written(ledger, job, before, "refused borrowing")
        # b's nominal quota lent to a: b can take only what the cohort has left.
        _expect(ledger.available("b", "f1", NVIDIA_GPU), 2 * GPU, "b after a borrowed")
        big = self.queued(ledger, 3, "b")
        with pytest.raises(QuotaUnavailableError) as info:
            self.reserve(ledger, big, "b")
        _expect(
            (info.value.cluster_queue, info.value.requested, info.value.free, info.value.admitting),
            (cohort_scope("co"), 3 * GPU, 2 * GPU, "b"),
            "the refusal names the cohort",
        )
        self.reserve(ledger, self.queued(ledger, 2, "b"), "b")
        _expect(ledger.available("b", "f1", NVIDIA_GPU), 0, "the cohort is full")

    def test_lending_limit_keeps_the_guaranteed_part(self) -> None:
        # a lends at most 1 of its 4 (3 are guaranteed); b has no quota of its own.
        ledger = self.configured(
            queue_config(
                [cluster_queue("a", "co", f1=(4, None, 1)), cluster_queue("b", "co", f1=(0, None, None))]
            )
        )
        balances = {str(b.key): b for b in ledger.balances()}
        _expect(balances[f"cohort:co/f1/{NVIDIA_GPU}"].quota, 1 * GPU, "the cohort holds what a lends")
        _expect(ledger.available("b", "f1", NVIDIA_GPU), 1 * GPU, "b may borrow what a lends")
        job = self.queued(ledger, 2, "b")
        before = ledger.balances()
        with pytest.raises(QuotaUnavailableError) as info:
            self.reserve(ledger, job, "b")
        _expect((info.value.cluster_queue, info.value.free), (cohort_scope("co"), 1 * GPU), "refusal")
        self.assert_nothing_written(ledger, job, before, "refused lending")
        self.reserve(ledger, self.queued(ledger, 1, "b"), "b")
        # a keeps its guaranteed 3 whatever b borrowed; within them nothing counts in the cohort.
        _expect(ledger.available("a", "f1", NVIDIA_GPU), 3 * GPU, "a's guaranteed part")
        self.reserve(ledger, self.queued(ledger, 3, "a"), "a")
        _expect(
            self.used(ledger),
            {str(self.key("a")): 3 * GPU, str(self.key("b")): 1 * GPU, str(self.key("cohort:co")): 1 * GPU},
            "usage",
        )

    def test_hierarchical_cohorts(self) -> None:
        # org (own 2) ← left ← a (2); org ← right (borrowingLimit 0) ← b (2). org holds 2 + 2 + 2.
        ledger = self.configured(
            queue_config(
                [
                    cluster_queue("a", "left", f1=(2, None, None)),
                    cluster_queue("b", "right", f1=(2, None, None)),
                ],
                [
                    cohort("org", f1=(2, None, None)),
                    cohort("left", "org"),
                    cohort("right", "org", f1=(0, 0, None)),
                ],
            )
        )
        _expect(ledger.available("a", "f1", NVIDIA_GPU), 6 * GPU, "a may use the whole organisation")
        _expect(ledger.available("b", "f1", NVIDIA_GPU), 2 * GPU, "right may not borrow from org")
        first = self.reserve(ledger, self.queued(ledger, 5, "a"), "a")
        _expect(
            self.used(ledger),
            {
                str(self.key("a")): 5 * GPU,
                str(self.key("cohort:left")): 5 * GPU,
                str(self.key("cohort:org")): 5 * GPU,
            },
            "usage propagates up both levels",
        )
        job = self.queued(ledger, 2, "b")
        before = ledger.balances()
        with pytest.raises(QuotaUnavailableError) as info:  # org: 5 + 2 > 6
            self.reserve(ledger, job, "b")
        _expect(
            (info.value.cluster_queue, info.value.requested, info.value.free, info.value.available),
            (cohort_scope("org"), 2 * GPU, 1 * GPU, 1 * GPU),
            "the root binds",
        )
        self.assert_nothing_written(ledger, job, before, "refused at the root")
        ledger.release(first, now=self.now())
        big = self.queued(ledger, 3, "b")
        with pytest.raises(QuotaUnavailableError) as info:  # right: 3 > 2 + borrowingLimit 0
            self.reserve(ledger, big, "b")
        _expect((info.value.cluster_queue, info.value.free), (cohort_scope("right"), 2 * GPU), "right binds")
        self.reserve(ledger, job, "b")
        _expect(ledger.available("a", "f1", NVIDIA_GPU), 4 * GPU, "a after b took right's 2")

    # Refusals ----------------------------------------------------------------------------------
    def test_refusal_is_typed_and_changes_nothing(self) -> None:
        ledger = self.configured(queue_config([cluster_queue("cq-a", f1=(2, None, None))]))
        job = self.queued(ledger, 3, "cq-a")
        before = ledger.balances()
        with pytest.raises(QuotaUnavailableError) as info:
            ledger.reserve(job, self.decision(job, "cq-a"), now=self.now())
        error = info.value
        _expect(
            (error.cluster_queue, error.flavor, error.resource, error.requested, error.free),
            ("cq-a", "f1", NVIDIA_GPU, 3 * GPU, 2 * GPU),
            "the refusal's numbers",
        )
        for part in ("cq-a", "f1", NVIDIA_GPU, str(3 * GPU), str(2 * GPU)):
            assert part in str(error), f"{part!r} missing from the message {str(error)!r}"
        self.assert_nothing_written(ledger, job, before, "refused")
        with pytest.raises(QuotaUnavailableError):  # the same through admit(flavors=...)
            ledger.admit(job, cluster_queue="cq-a", flavors={NVIDIA_GPU: "f1"}, now=self.now())
        self.assert_nothing_written(ledger, job, before, "refused admit")

    def test_unknown_quota_is_not_found_and_changes_nothing(self) -> None:
        ledger = self.configured(queue_config([cluster_queue("cq-a", f1=(2, None, None))]))
        job = self.queued(ledger, 1, "cq-a")
        before = ledger.balances()
        with pytest.raises(NotFoundError):  # no quota for flavor f2
            self.reserve(ledger, job, "cq-a", "f2")
        self.assert_nothing_written(ledger, job, before, "unknown flavor")
        with pytest.raises(NotFoundError):
            ledger.available("cq-a", "f2", NVIDIA_GPU)
        with pytest.raises(NotFoundError):
            ledger.available("cq-missing", "f1", NVIDIA_GPU)

    def test_decision_must_be_about_the_job_as_it_is(self) -> None:
        ledger = self.configured(queue_config([cluster_queue("cq-a", f1=(8, None, None))]))
        job, other = self.queued(ledger, 2, "cq-a"), self.queued(ledger, 2, "cq-a")
        before = ledger.balances()
        with pytest.raises(ValidationError) as info:
            ledger.reserve(job, self.decision(other, "cq-a"), now=self.now())
        _expect(info.value.path, "decision", "a decision about another job")
        stale = self.decision(job, "cq-a")
        changed = dataclasses.replace(stale, usage={("f1", NVIDIA_GPU): 1 * GPU})
        with pytest.raises(ValidationError) as info:
            ledger.reserve(job, changed, now=self.now())
        _expect(info.value.path, "decision.usage", "a decision whose usage is not the job's request")
        with pytest.raises(ValidationError) as info:
            ledger.admit(job, cluster_queue="cq-a", flavors={"amd.com/gpu": "f1"}, now=self.now())
        self.assert_nothing_written(ledger, job, before, "invalid decisions")

    # Idempotence -------------------------------------------------------------------------------
    def test_a_second_reservation_of_the_same_job_is_refused(self) -> None:
        ledger = self.configured(queue_config([cluster_queue("cq-a", f1=(8, None, None))]))
        job = self.queued(ledger, 2, "cq-a")
        decision = self.decision(job, "cq-a")
        admitted = ledger.reserve(job, decision, now=self.now()).job
        after = ledger.balances()
        with pytest.raises(ConflictError):  # the job as read before: stale
            ledger.reserve(job, decision, now=self.now())
        with pytest.raises(InvalidTransitionError):  # the admitted job: already admitted
            ledger.reserve(admitted, decision, now=self.now())
        _expect(ledger.balances(), after, "balances after refused replays")
        _expect(ledger.reservations(job.tenant, job.id), {self.key("cq-a"): 2 * GPU}, "counted once")
        _expect(ledger.store.get(job.tenant, job.id), admitted, "the job as stored")

    # Release -----------------------------------------------------------------------------------
    def test_release_returns_the_quota(self) -> None:
        ledger = self.configured(queue_config([cluster_queue("cq-a", f1=(4, None, None))]))
        initial = ledger.balances()
        job = self.queued(ledger, 3, "cq-a")
        admitted = self.reserve(ledger, job, "cq-a")
        released = ledger.release(admitted, now=self.now(), reason="evicted")
        _expect(dict(released.amounts), {self.key("cq-a"): 3 * GPU}, "released")
        _expect(released.job.status, JobStatus.QUEUED, "status after release")
        _expect(ledger.store.get(job.tenant, job.id), released.job, "the requeued job as stored")
        _expect(ledger.reservations(job.tenant, job.id), {}, "reservations after release")
        _expect(ledger.balances(), initial, "balances after release")
        with pytest.raises(ConflictError):  # releasing the same admission twice
            ledger.release(admitted, now=self.now())
        with pytest.raises(ValidationError):  # a queued job holds nothing to release
            ledger.release(released.job, now=self.now())
        again = self.reserve(ledger, released.job, "cq-a")
        _expect(ledger.available("cq-a", "f1", NVIDIA_GPU), 1 * GPU, "the requeued job admitted again")
        with pytest.raises(ValidationError):  # a release ends in a state that holds no quota
            ledger.release(again, now=self.now(), status=JobStatus.RUNNING)
        _expect(ledger.store.get(job.tenant, job.id), again, "the job after a refused release")

    def test_a_finished_job_gives_its_quota_back(self) -> None:
        ledger = self.configured(queue_config([cluster_queue("cq-a", f1=(4, None, None))]))
        admitted = self.reserve(ledger, self.queued(ledger, 4, "cq-a"), "cq-a")
        running, event = transition(admitted, JobStatus.RUNNING, now=self.now())
        running = ledger.store.update(running, events=[event])
        _expect(self.used(ledger), {str(self.key("cq-a")): 4 * GPU}, "a running job holds its quota")
        done = ledger.release(running, now=self.now(), status=JobStatus.COMPLETED)
        _expect(dict(done.amounts), {self.key("cq-a"): 4 * GPU}, "released on completion")
        _expect(self.used(ledger), {}, "usage after completion")
        # A plain store update out of a quota-holding state gives the quota back too.
        again = self.reserve(ledger, self.queued(ledger, 4, "cq-a"), "cq-a")
        cancelled, event = transition(again, JobStatus.CANCELLED, now=self.now())
        ledger.store.update(cancelled, events=[event])
        _expect(self.used(ledger), {}, "usage after a cancellation through the store")
        _expect(ledger.reservations(again.tenant, again.id), {}, "reservations after the cancellation")

    # Quota isolation ---------------------------------------------------------------------------
    def test_a_job_is_charged_only_to_its_local_queues_cluster_queue(self) -> None:
        config = queue_config(
            [cluster_queue("cq-a", f1=(4, None, None)), cluster_queue("cq-c", f1=(4, None, None))],
            local_queues=[
                LocalQueue(name="lq", namespace="ns-a", cluster_queue="cq-a"),
                LocalQueue(name="lq", namespace="ns-c", cluster_queue="cq-c"),
            ],
        )
        ledger = self.configured(config)
        before = ledger.balances()
        cases = [
            ("ns-a", "lq", "cq-a"),  # another team's queue
            ("ns-a", "lq-x", None),  # a LocalQueue that does not exist
            ("ns-b", "lq", None),  # the same name in a namespace without one
            ("ns-a", None, None),  # no LocalQueue at all
        ]
        for tenant, local_queue, mapped in cases:
            job = self.queued(ledger, 1, "cq-c", tenant=tenant, local_queue=local_queue)
            with pytest.raises(LocalQueueMismatchError) as info:
                ledger.admit(job, cluster_queue="cq-c", flavors={NVIDIA_GPU: "f1"}, now=self.now())
            error = info.value
            _expect(
                (error.tenant, error.local_queue, error.cluster_queue, error.mapped),
                (tenant, local_queue, "cq-c", mapped),
                f"the refusal for {tenant}/{local_queue}",
            )
            self.assert_nothing_written(ledger, job, before, f"{tenant}/{local_queue} charged to cq-c")
            if local_queue is not None:  # the scheduler's decision is refused the same way
                with pytest.raises(LocalQueueMismatchError):
                    ledger.reserve(job, self.decision(job, "cq-c"), now=self.now())
                self.assert_nothing_written(ledger, job, before, f"decision for {tenant}/{local_queue}")
        own = self.queued(ledger, 1, "cq-c", tenant="ns-c")
        self.reserve(ledger, own, "cq-c")
        _expect(ledger.reservations(own.tenant, own.id), {self.key("cq-c"): 1 * GPU}, "a job of ns-c in cq-c")

    # Configuration -----------------------------------------------------------------------------
    def test_sync_refuses_to_remove_quota_in_use(self) -> None:
        config = queue_config(
            [cluster_queue("a", "co", f1=(4, None, None)), cluster_queue("b", "co", f1=(4, None, None))]
        )
        ledger = self.configured(config)
        job = self.reserve(ledger, self.queued(ledger, 2, "a"), "a")
        before = ledger.balances()
        with pytest.raises(QuotaInUseError):
            ledger.sync(queue_config([cluster_queue("b", "co", f1=(4, None, None))]))
        _expect(ledger.balances(), before, "balances after a refused sync")
        # Moving a to another cohort keeps its usage, now counted there.
        moved = ledger.sync(
            queue_config(
                [
                    cluster_queue("a", "other", f1=(4, None, None)),
                    cluster_queue("b", "co", f1=(4, None, None)),
                ]
            )
        )
        used = {str(b.key): b.used for b in moved if b.used}
        _expect(
            used,
            {str(self.key("a")): 2 * GPU, str(self.key("cohort:other")): 2 * GPU},
            "usage after the move",
        )
        ledger.release(job, now=self.now())
        ledger.sync(queue_config([cluster_queue("b", "co", f1=(4, None, None))]))
        _expect(
            [str(b.key) for b in ledger.balances()],
            [f"b/f1/{NVIDIA_GPU}", f"cohort:co/f1/{NVIDIA_GPU}"],
            "pruned",
        )

    # Properties --------------------------------------------------------------------------------
    def test_random_reservations_match_the_core_and_respect_every_limit(self) -> None:
        @kit_settings(self.hypothesis_max_examples)
        @given(config=_random_configs(), data=st.data())
        def run(config: QueueConfig, data: st.DataObject) -> None:
            ledger = self.configured(config)
            tree = QuotaTree(config)
            mirror = QuotaUsage(tree)
            queues = sorted(config.cluster_queues)
            held: list[tuple[Job, str, str, int]] = []
            self.check_against_core(ledger, tree, mirror, "after sync")
            for step in range(data.draw(st.integers(1, 12), label="steps")):
                op = data.draw(st.sampled_from(("reserve", "reserve", "release", "cross")), label="op")
                if op == "release" and held:
                    job, cq, flavor, gpus = held.pop(data.draw(st.integers(0, len(held) - 1), label="which"))
                    released = ledger.release(job, now=self.now())
                    _expect(
                        dict(released.amounts), {self.key(cq, flavor): gpus * GPU}, f"step {step}: released"
                    )
                    mirror.add(cq, {(flavor, NVIDIA_GPU): gpus * GPU}, sign=-1)
                elif op == "cross" and len(queues) > 1:
                    home, target = data.draw(st.permutations(queues), label="queues")[:2]
                    job = self.queued(ledger, 1, home)
                    with pytest.raises(LocalQueueMismatchError):
                        ledger.admit(job, cluster_queue=target, flavors={NVIDIA_GPU: "f1"}, now=self.now())
                else:
                    cq = data.draw(st.sampled_from(queues), label="queue")
                    flavor = data.draw(st.sampled_from(FLAVORS), label="flavor")
                    gpus = data.draw(st.integers(1, 5), label="gpus")
                    node, fr = tree.cluster_queues[cq], (flavor, NVIDIA_GPU)
                    job = self.queued(ledger, gpus, cq)
                    fits = gpus * GPU <= available(node, fr, mirror)
                    try:
                        admitted = self.reserve(ledger, job, cq, flavor)
                    except QuotaUnavailableError:
                        assert not fits, (
                            f"step {step}: the ledger refused what the core admits ({cq} {fr} {gpus})"
                        )
                    else:
                        assert fits, (
                            f"step {step}: the ledger admitted what the core refuses ({cq} {fr} {gpus})"
                        )
                        held.append((admitted, cq, flavor, gpus))
                        mirror.add(cq, {fr: gpus * GPU})
                self.check_against_core(ledger, tree, mirror, f"step {step} ({op})")
            for job, *_ in held:
                ledger.release(job, now=self.now())
            _expect(self.used(ledger), {}, "usage once every job is released")

        run()

    def check_against_core(
        self, ledger: AdmissionLedger, tree: QuotaTree, mirror: QuotaUsage, when: str
    ) -> None:
        """Every node's balance is the core's, and no node is above its limit."""
        expected_keys = sorted(
            QuotaKey(cohort_scope(n.name) if n.is_cohort else n.name, *fr)
            for n in (*tree.cohorts.values(), *tree.cluster_queues.values())
            for fr in {*n.subtree_quota, *n.nominal}
        )
        balances = ledger.balances()
        _expect([b.key for b in balances], expected_keys, f"{when}: the quota keys")
        for b in balances:
            node, fr = core_node(tree, b.key), b.key.flavor_resource
            _expect(b.used, mirror.get(node, fr), f"{when}: used of {b.key}")
            _expect(b.available, max(0, available(node, fr, mirror)), f"{when}: available of {b.key}")
            _expect(b.quota, node.subtree_quota.get(fr, 0), f"{when}: subtree quota of {b.key}")
            if b.parent is None:
                assert b.used <= b.quota, f"{when}: root {b.key} uses {b.used} of {b.quota}"
            elif b.borrowing_limit is not None:
                limit = b.quota + b.borrowing_limit
                assert b.used <= limit, f"{when}: {b.key} uses {b.used}, above quota + borrowingLimit {limit}"


@st.composite
def _random_configs(draw: st.DrawFn) -> QueueConfig:
    """Hierarchical cohort trees (root ← left, right) with random quotas and limits."""

    def quotas(limits: bool) -> dict[str, tuple[int, int | None, int | None]]:
        out: dict[str, tuple[int, int | None, int | None]] = {}
        for flavor in FLAVORS:
            nominal = draw(st.integers(0, 6))
            borrowing = draw(st.none() | st.integers(0, 6)) if limits else None
            lending = draw(st.none() | st.integers(0, nominal)) if limits else None
            out[flavor] = (nominal, borrowing, lending)
        return out

    cohorts = [Cohort(name="root", resource_groups=_groups(quotas(False) if draw(st.booleans()) else {}))]
    for name in ("left", "right"):
        own = quotas(True) if draw(st.booleans()) else {}
        cohorts.append(Cohort(name=name, parent="root", resource_groups=_groups(own)))
    queues = []
    for i in range(draw(st.integers(1, 4))):
        parent = draw(st.sampled_from(["left", "right", "root", None]))
        queues.append(
            ClusterQueue(name=f"q{i}", cohort=parent, resource_groups=_groups(quotas(parent is not None)))
        )
    return queue_config(queues, cohorts)
