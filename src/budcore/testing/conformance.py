"""Reusable pytest suites that check an adapter honours budcore's port contracts.

A plugin author subclasses a kit, names the subclass ``Test…`` so pytest collects it, and
overrides the factory; every ``test_*`` method of the kit then runs against the adapter::

    from collections.abc import Sequence
    from budcore.domain.cluster import Node
    from budcore.ports import Clock, EventSink
    from budcore.testing.conformance import ClusterBackendConformance, JobStoreConformance
    from my_plugin import MyBackend, MyStore

    class TestMyStore(JobStoreConformance):
        def make_store(self, events: EventSink) -> MyStore:
            return MyStore(url=..., events=events)  # must be empty: truncate tables here

    class TestMyBackend(ClusterBackendConformance):
        def make_backend(self, nodes: Sequence[Node], clock: Clock) -> MyBackend:
            return MyBackend(nodes=nodes, clock=clock)

The kits are plain base classes (their names do not start with ``Test`` so pytest never runs
them on their own). They need ``pytest`` and ``hypothesis`` (the ``budcore[testing]`` extra).

Contract notes the kits rely on, so the same suite serves an in-memory dict and PostgreSQL:

- ``make_store`` is called once per test *and* once per hypothesis example, and must return an
  **empty** store each time. It receives an :class:`~budcore.ports.EventSink`; a store that
  writes events to an outbox instead overrides :meth:`JobStoreConformance.collect_events` to read
  back, in order, what it has recorded so far.
- Jobs are compared field by field (``model_dump`` equality, see
  :meth:`JobStoreConformance.assert_same_job`) after a round trip, so a store must preserve every
  field (aware datetimes at microsecond precision, ``Decimal`` money with its fractions of a cent,
  costs, checkpoint and schedule estimates, retry and preemption bookkeeping, provenance ids,
  label and output dicts, resource vectors). The generated jobs fill every optional field some of
  the time, and ``test_every_field_survives_create_and_updates`` sets all of them at once.
- ``make_backend`` receives the fleet and a :class:`~budcore.testing.fakes.FakeClock`; the
  backend must measure preemption grace periods on that clock.
- ``hypothesis_max_examples`` (class attribute) bounds the property tests for slow adapters;
  ``None`` uses the active hypothesis profile. Either way ``BUDCORE_PROPERTY_EXAMPLES`` (or
  ``HYPOTHESIS_PROFILE=thorough``) raises the count (:mod:`budcore.testing.examples`).
  ``concurrent_writers`` (default 4) is how many threads race on one job in the concurrency
  tests; set it below 2 for a store that is not thread-safe by design (the tests are then
  skipped with that reason).

Long because each kit is one port's contract as tests: a plugin author subclasses one class per
port and reads it top to bottom, so its tests belong together.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budcore.domain.cluster import (
    ClusterCapacity,
    Node,
    PodSetPlacement,
    Taint,
    Workload,
    WorkloadPhase,
    WorkloadStatus,
)
from budcore.domain.errors import (
    AlreadyExistsError,
    CapacityError,
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
)
from budcore.domain.events import DomainEvent, JobTransitioned
from budcore.domain.ids import JobId, ProjectId, TenantId
from budcore.domain.job import (
    BudgetAction,
    DeploymentType,
    Job,
    JobSource,
    JobStatus,
    JobType,
    PodSet,
    ResourceRequest,
)
from budcore.domain.lifecycle import TRANSITIONS, transition
from budcore.domain.podspec import Toleration
from budcore.domain.priority import JobPriority
from budcore.domain.resources import CPU, MEMORY, NVIDIA_GPU, ResourceVector
from budcore.domain.timewindow import TimeWindow
from budcore.ports.clock import Clock
from budcore.ports.cluster_backend import ClusterBackend
from budcore.ports.event_sink import EventSink
from budcore.ports.job_store import JobFilter, JobStore
from budcore.testing import strategies as bst
from budcore.testing.examples import examples
from budcore.testing.fakes import DEFAULT_START, FakeClock, RecordingEventSink

__all__ = ["ClusterBackendConformance", "JobStoreConformance", "path_to"]

S = JobStatus
ACME = TenantId("acme")
GLOBEX = TenantId("globex")

# The shortest legal walk from ``pending`` to each status, used to put a job in a given state
# through the store's own update path (never by creating it there directly).
_PATHS: dict[JobStatus, tuple[JobStatus, ...]] = {
    S.PENDING: (),
    S.QUEUED: (S.QUEUED,),
    S.ADMITTED: (S.QUEUED, S.ADMITTED),
    S.RUNNING: (S.QUEUED, S.ADMITTED, S.RUNNING),
    S.COMPLETED: (S.QUEUED, S.ADMITTED, S.RUNNING, S.COMPLETED),
    S.FAILED: (S.FAILED,),
    S.CANCELLED: (S.CANCELLED,),
    S.PREEMPTED: (S.QUEUED, S.ADMITTED, S.PREEMPTED),
}

_LEGAL_EDGES = sorted((a, b) for a, targets in TRANSITIONS.items() for b in targets)
_ILLEGAL_EDGES = sorted(
    (a, b) for a, b in itertools.product(JobStatus, JobStatus) if a != b and b not in TRANSITIONS[a]
)


def path_to(status: JobStatus) -> tuple[JobStatus, ...]:
    """The legal sequence of statuses that takes a ``pending`` job to ``status``."""
    return _PATHS[status]


# What a job keeps for life (and the store owns the version): the round-trip test changes the rest.
_IDENTITY_FIELDS = frozenset({"id", "tenant", "created_at", "idempotency_key", "status", "version"})


def _fifo(jobs: Iterable[Job]) -> list[Job]:
    return sorted(jobs, key=lambda j: (j.created_at, j.id))


def kit_settings(max_examples: int | None) -> settings:
    """The hypothesis settings every kit's properties use (``max_examples`` None: the profile's),
    raised by ``BUDCORE_PROPERTY_EXAMPLES`` like every property (:func:`examples`)."""
    return settings(
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        max_examples=examples(settings().max_examples if max_examples is None else max_examples),
    )


# Job store -----------------------------------------------------------------------------------
class JobStoreConformance:
    """The :class:`~budcore.ports.JobStore` contract as pytest tests.

    Override :meth:`make_store` (and :meth:`collect_events` for outbox-backed stores).
    """

    hypothesis_max_examples: ClassVar[int | None] = None
    base_time: ClassVar[datetime] = DEFAULT_START
    concurrent_writers: ClassVar[int] = 4

    # Hooks for the adapter author ------------------------------------------------------------
    def make_store(self, events: EventSink) -> JobStore:
        """Return a new, empty store that forwards/records events given to writes to ``events``."""
        raise NotImplementedError(
            f"{type(self).__name__} must override make_store(self, events) to return an empty JobStore"
        )

    def collect_events(self, store: JobStore, sink: RecordingEventSink) -> list[DomainEvent]:
        """Every event the store has recorded so far, in write order.

        The default reads the sink handed to :meth:`make_store`; a store with an outbox table
        overrides this to read the outbox instead.
        """
        return list(sink.events)

    # Helpers ---------------------------------------------------------------------------------
    def fresh_store(self) -> tuple[JobStore, RecordingEventSink]:
        """A new store and the sink it publishes to."""
        sink = RecordingEventSink()
        return self.make_store(sink), sink

    def new_job(self, n: int, tenant: str = ACME, **fields: Any) -> Job:
        """A pending job with a deterministic id ``job-<n>`` created ``n`` seconds after base."""
        data: dict[str, Any] = {
            "id": JobId(f"job-{n:04d}"),
            "name": f"job {n}",
            "tenant": TenantId(tenant),
            "created_at": self.base_time + timedelta(seconds=n),
            "updated_at": self.base_time + timedelta(seconds=n),
            "request": ResourceRequest.single(gpus=1, cpu=2, memory="8Gi"),
        }
        data.update(fields)
        return Job(**data)

    def drive(self, store: JobStore, job: Job, status: JobStatus, reason: str = "conformance") -> Job:
        """Walk a stored job to ``status`` through legal updates; return the stored result."""
        current = job
        for step in path_to(status):
            at = current.updated_at + timedelta(seconds=1)
            new, event = transition(current, step, now=at, reason=reason)
            current = store.update(new, events=[event])
        return current

    @staticmethod
    def assert_same_job(actual: Job, expected: Job, context: str = "") -> None:
        """Fail unless the jobs are equal field by field (``model_dump``), naming each difference."""
        got, want = actual.model_dump(), expected.model_dump()
        if got == want:
            return
        differences = [
            f"{name}: stored {got.get(name)!r}, expected {value!r}"
            for name, value in want.items()
            if got.get(name) != value
        ]
        where = f"{context}: " if context else ""
        raise AssertionError(
            f"{where}the store did not preserve {len(differences)} field(s) of job {expected.id!r}\n  "
            + "\n  ".join(differences)
        )

    def full_job(self, n: int, tenant: str = ACME) -> Job:
        """A pending job like :meth:`new_job` with every field a submitter sets not at its default."""
        at = self.base_time + timedelta(seconds=n)
        gpu_pod = ResourceVector({CPU: 8_000, MEMORY: 64 * _GIB_MILLI, NVIDIA_GPU: 4_000})
        launcher = ResourceVector({CPU: 1_500, MEMORY: 8 * _GIB_MILLI})
        return self.new_job(
            n,
            tenant=tenant,
            project=ProjectId("research"),
            job_type=JobType.TRAINING,
            request=ResourceRequest(
                pod_sets=(
                    PodSet(name="workers", count=2, resources=gpu_pod),
                    PodSet(name="launcher", count=1, resources=launcher),
                ),
                accelerator_type="nvidia-h100-80gb",
            ),
            local_queue="team-a",
            deployment_type=DeploymentType.MODEL,
            spec={"model_id": "meta-llama/Llama-3.3-70B-Instruct", "engine": "vllm", "env": {"TP": "2"}},
            estimated_duration=timedelta(hours=2),
            max_duration=timedelta(hours=6, microseconds=1),
            deadline=at + timedelta(days=1, microseconds=7),
            time_window=TimeWindow(start=time(22), end=time(6), timezone="Europe/Berlin"),
            priority=JobPriority.HIGH,
            priority_class=JobPriority.HIGH.kueue_class_name,
            workload_priority=150,
            preemptible=False,
            preempts_others=False,
            checkpoint_interval=timedelta(minutes=30),
            estimated_start=at + timedelta(minutes=5),
            estimated_end=at + timedelta(hours=2, minutes=5),
            max_retries=4,
            estimated_cost=Decimal("123.4567"),
            budget_limit=Decimal("500.00"),
            budget_action=BudgetAction.PAUSE,
            labels={"team": "a", "tier": "gold"},
            idempotency_key=f"full-{n}",
            source=JobSource.PIPELINE,
            pipeline_id="pipeline-7",
            pipeline_step_id="step-3",
            usecase_deployment_id="deploy-42",
        )

    @staticmethod
    def creation_event(job: Job) -> JobTransitioned:
        """The event a service would record with a create (stores must not interpret it)."""
        return JobTransitioned(
            job_id=job.id,
            tenant=job.tenant,
            from_status=job.status,
            to_status=job.status,
            reason="submitted",
            at=job.created_at,
            version=1,
        )

    # Create ----------------------------------------------------------------------------------
    def test_create_stores_version_one(self) -> None:
        store, _ = self.fresh_store()
        job = self.new_job(1, labels={"team": "a"}, idempotency_key="k-1")
        created = store.create(job)
        assert created.version == 1
        assert created == job.model_copy(update={"version": 1})
        assert store.get(ACME, job.id) == created

    def test_create_ignores_incoming_version(self) -> None:
        store, _ = self.fresh_store()
        created = store.create(self.new_job(1, version=7))
        assert created.version == 1
        assert store.get(ACME, created.id).version == 1

    def test_create_with_same_idempotency_key_returns_existing(self) -> None:
        store, sink = self.fresh_store()
        first = self.new_job(1, idempotency_key="req-42")
        stored = store.create(first, events=[self.creation_event(first)])
        replay = self.new_job(2, name="another name", idempotency_key="req-42")
        again = store.create(replay, events=[self.creation_event(replay)])
        assert again == stored
        assert again.id == first.id
        assert again.version == 1
        with pytest.raises(NotFoundError):
            store.get(ACME, replay.id)
        assert store.count(ACME) == 1
        # A replay writes nothing, so it must record no event either.
        assert self.collect_events(store, sink) == [self.creation_event(first)]

    def test_create_replay_of_identical_job_is_idempotent(self) -> None:
        store, _ = self.fresh_store()
        job = self.new_job(1, idempotency_key="req-1")
        first = store.create(job)
        assert store.create(job) == first
        assert store.list(ACME) == [first]

    def test_same_idempotency_key_in_another_tenant_is_a_different_job(self) -> None:
        store, _ = self.fresh_store()
        a = store.create(self.new_job(1, tenant=ACME, idempotency_key="req-1"))
        b = store.create(self.new_job(2, tenant=GLOBEX, idempotency_key="req-1"))
        assert (a.tenant, a.id) != (b.tenant, b.id)
        assert store.get(ACME, a.id) == a
        assert store.get(GLOBEX, b.id) == b
        assert store.count(None) == 2

    def test_create_duplicate_id_raises_already_exists(self) -> None:
        store, sink = self.fresh_store()
        first = store.create(self.new_job(1))
        duplicate = self.new_job(1, name="other")
        with pytest.raises(AlreadyExistsError):
            store.create(duplicate, events=[self.creation_event(duplicate)])
        with pytest.raises(AlreadyExistsError):
            store.create(self.new_job(1, idempotency_key="fresh-key"))
        assert store.get(ACME, first.id) == first
        assert store.count(None) == 1
        assert self.collect_events(store, sink) == []

    def test_same_id_in_another_tenant_is_a_different_job(self) -> None:
        # Ids are unique per tenant: refusing another tenant's id would leak its existence.
        store, _ = self.fresh_store()
        a = store.create(self.new_job(1, tenant=ACME))
        b = store.create(self.new_job(1, tenant=GLOBEX, name="globex's"))
        assert store.get(ACME, a.id).name == a.name
        assert store.get(GLOBEX, b.id).name == "globex's"

    # Get and tenant scoping ------------------------------------------------------------------
    def test_get_unknown_job_raises_not_found(self) -> None:
        store, _ = self.fresh_store()
        with pytest.raises(NotFoundError):
            store.get(ACME, JobId("no-such-job"))

    def test_other_tenants_job_is_not_found_and_never_listed(self) -> None:
        store, _ = self.fresh_store()
        mine = store.create(self.new_job(1, tenant=ACME))
        theirs = store.create(self.new_job(2, tenant=GLOBEX))
        with pytest.raises(NotFoundError):
            store.get(GLOBEX, mine.id)
        with pytest.raises(NotFoundError):
            store.get(ACME, theirs.id)
        assert store.list(ACME) == [mine]
        assert store.list(GLOBEX) == [theirs]
        assert store.list(TenantId("initech")) == []
        assert store.list(None) == [mine, theirs]
        assert (store.count(ACME), store.count(GLOBEX), store.count(None)) == (1, 1, 2)

    def test_update_cannot_reach_another_tenants_job(self) -> None:
        store, _ = self.fresh_store()
        mine = store.create(self.new_job(1, tenant=ACME))
        forged = mine.model_copy(update={"tenant": GLOBEX, "name": "hijacked"})
        with pytest.raises(NotFoundError):
            store.update(forged)
        assert store.get(ACME, mine.id) == mine
        assert store.list(GLOBEX) == []

    # List, filters, ordering -----------------------------------------------------------------
    def _filter_corpus(self, store: JobStore) -> list[Job]:
        """Jobs that differ on every filterable field, several driven to other statuses."""
        specs: list[tuple[int, str, dict[str, Any], JobStatus]] = [
            (0, ACME, dict(project="default", job_type=JobType.BATCH, priority=JobPriority.NORMAL,
                           local_queue="team-a", labels={"team": "a"}), S.PENDING),
            (60, ACME, dict(project="research", job_type=JobType.TRAINING, priority=JobPriority.HIGH,
                            local_queue="team-b", labels={"team": "b", "tier": "gold"}), S.QUEUED),
            (120, ACME, dict(project="research", job_type=JobType.SERVICE,
                             priority=JobPriority.CRITICAL), S.RUNNING),
            (180, ACME, dict(project="default", job_type=JobType.BATCH, priority=JobPriority.LOW,
                             local_queue="team-a", labels={"team": "a", "tier": "gold"}), S.COMPLETED),
            (240, ACME, dict(project="prod", job_type=JobType.TRAINING, priority=JobPriority.SPOT,
                             local_queue="team-b", labels={"tier": "silver"}), S.FAILED),
            (300, ACME, dict(project="default", job_type=JobType.BATCH, priority=JobPriority.NORMAL,
                             local_queue="team-a", labels={"team": "b"}), S.PREEMPTED),
            (90, GLOBEX, dict(project="default", job_type=JobType.BATCH, priority=JobPriority.NORMAL,
                              local_queue="team-a", labels={"team": "a"}), S.QUEUED),
            (180, ACME, dict(id=JobId("job-0000-tie"), project="prod", job_type=JobType.SERVICE,
                             priority=JobPriority.HIGH), S.PENDING),
        ]  # fmt: skip
        out: list[Job] = []
        for offset, tenant, fields, status in specs:
            at = self.base_time + timedelta(seconds=offset)
            fields.setdefault("id", JobId(f"job-{offset:04d}-{tenant}"))
            job = self.new_job(offset, tenant=tenant, created_at=at, updated_at=at, **fields)
            out.append(self.drive(store, store.create(job), status))
        return out

    _FILTERS: ClassVar[dict[str, Callable[[datetime], JobFilter]]] = {
        "status": lambda t: JobFilter(statuses=frozenset({S.QUEUED})),
        "statuses": lambda t: JobFilter(statuses=frozenset({S.PENDING, S.RUNNING, S.FAILED})),
        "project": lambda t: JobFilter(project=ProjectId("research")),
        "job_type": lambda t: JobFilter(job_type=JobType.TRAINING),
        "priority": lambda t: JobFilter(priority=JobPriority.NORMAL),
        "local_queue": lambda t: JobFilter(local_queue="team-a"),
        "label": lambda t: JobFilter(labels={"team": "a"}),
        "labels": lambda t: JobFilter(labels={"team": "a", "tier": "gold"}),
        "created_after": lambda t: JobFilter(created_after=t + timedelta(seconds=120)),
        "created_before": lambda t: JobFilter(created_before=t + timedelta(seconds=180)),
        "created_window": lambda t: JobFilter(
            created_after=t + timedelta(seconds=60), created_before=t + timedelta(seconds=300)
        ),
        "limit": lambda t: JobFilter(limit=3),
        "combined": lambda t: JobFilter(
            statuses=frozenset({S.PENDING, S.QUEUED, S.PREEMPTED}),
            project=ProjectId("default"),
            local_queue="team-a",
        ),
        "combined_limit": lambda t: JobFilter(job_type=JobType.BATCH, limit=2),
    }

    @pytest.mark.parametrize("case", sorted(_FILTERS))
    def test_list_filters(self, case: str) -> None:
        store, _ = self.fresh_store()
        corpus = self._filter_corpus(store)
        flt = self._FILTERS[case](self.base_time)
        unlimited = flt.model_copy(update={"limit": None})
        for tenant in (ACME, GLOBEX, None):
            scoped = [j for j in corpus if tenant is None or j.tenant == tenant]
            matching = _fifo(j for j in scoped if unlimited.matches(j))
            expected = matching[: flt.limit] if flt.limit is not None else matching
            assert store.list(tenant, flt) == expected, f"tenant={tenant} filter={case}"
            assert store.count(tenant, flt) == len(matching), f"tenant={tenant} filter={case}"
        # The corpus must make each case discriminate, or the check above proves little.
        everything = store.list(None, unlimited)
        assert 0 < len(store.list(None, flt)) < len(corpus)
        assert len(everything) < len(corpus) or flt.limit is not None

    def test_list_orders_fifo_by_created_at_then_id(self) -> None:
        store, _ = self.fresh_store()
        t = self.base_time
        # Same created_at across tenants: "a" (globex) sorts before "b" (acme) by id.
        specs = [("b", ACME, 5), ("a", GLOBEX, 5), ("c", ACME, 1), ("z", GLOBEX, 0), ("d", ACME, 5)]
        created = [
            store.create(
                self.new_job(0, id=JobId(f"job-{i}"), tenant=tenant,
                             created_at=t + timedelta(seconds=s), updated_at=t + timedelta(seconds=s))
            )
            for i, tenant, s in specs
        ]  # fmt: skip
        assert store.list(None) == _fifo(created)
        assert [j.id for j in store.list(None)] == ["job-z", "job-c", "job-a", "job-b", "job-d"]
        assert store.list(ACME) == _fifo(j for j in created if j.tenant == ACME)
        # Ordering survives status changes (a requeued job keeps its place by created_at).
        first = store.get(ACME, JobId("job-c"))
        self.drive(store, first, S.QUEUED)
        assert [j.id for j in store.list(ACME)] == ["job-c", "job-b", "job-d"]

    def test_list_limit_takes_the_head_and_count_ignores_it(self) -> None:
        store, _ = self.fresh_store()
        jobs = [store.create(self.new_job(n)) for n in (4, 2, 3, 1, 5)]
        assert store.list(ACME, JobFilter(limit=2)) == _fifo(jobs)[:2]
        assert store.list(ACME, JobFilter(limit=50)) == _fifo(jobs)
        assert store.count(ACME, JobFilter(limit=2)) == 5

    def test_count_matches_list(self) -> None:
        store, _ = self.fresh_store()
        corpus = self._filter_corpus(store)
        for status in JobStatus:
            flt = JobFilter(statuses=frozenset({status}))
            expected = [j for j in corpus if j.status is status]
            assert store.count(None, flt) == len(expected) == len(store.list(None, flt))
        assert store.count(None) == len(corpus)
        assert store.count(ACME) == len([j for j in corpus if j.tenant == ACME])

    def test_empty_store_lists_nothing(self) -> None:
        store, _ = self.fresh_store()
        assert store.list(None) == []
        assert store.list(ACME, JobFilter(statuses=frozenset({S.QUEUED}))) == []
        assert store.count(None) == 0

    # Update and optimistic concurrency -------------------------------------------------------
    def test_update_bumps_version_and_persists_fields(self) -> None:
        store, _ = self.fresh_store()
        created = store.create(self.new_job(1))
        changed = created.with_changes(labels={"team": "b"}, status_message="relabelled")
        updated = store.update(changed)
        assert updated.version == 2
        assert updated == changed.model_copy(update={"version": 2})
        assert store.get(ACME, created.id) == updated
        again = store.update(updated.with_changes(outputs={"model": "s3://bucket/x"}))
        assert again.version == 3
        assert store.get(ACME, created.id).outputs == {"model": "s3://bucket/x"}

    def test_stale_update_raises_conflict_and_writes_nothing(self) -> None:
        store, sink = self.fresh_store()
        created = store.create(self.new_job(1))
        winner = store.update(created.with_changes(labels={"writer": "first"}))
        loser = created.with_changes(labels={"writer": "second"})  # still carries version 1
        new, event = transition(loser, S.QUEUED, now=created.created_at + timedelta(seconds=1))
        with pytest.raises(ConflictError) as info:
            store.update(new, events=[event])
        assert (info.value.expected_version, info.value.actual_version) == (1, 2)
        assert store.get(ACME, created.id) == winner
        assert self.collect_events(store, sink) == []

    def test_update_from_the_future_raises_conflict(self) -> None:
        store, _ = self.fresh_store()
        created = store.create(self.new_job(1))
        with pytest.raises(ConflictError):
            store.update(created.model_copy(update={"version": 5, "name": "ahead"}))
        assert store.get(ACME, created.id) == created

    def test_update_unknown_job_raises_not_found(self) -> None:
        store, _ = self.fresh_store()
        with pytest.raises(NotFoundError):
            store.update(self.new_job(1, version=1))
        assert store.count(None) == 0

    # Transitions through update --------------------------------------------------------------
    @pytest.mark.parametrize(("from_status", "to_status"), _LEGAL_EDGES)
    def test_legal_transition_through_update(self, from_status: JobStatus, to_status: JobStatus) -> None:
        store, sink = self.fresh_store()
        job = self.drive(store, store.create(self.new_job(1)), from_status)
        before_events = len(self.collect_events(store, sink))
        new, event = transition(job, to_status, now=job.updated_at + timedelta(seconds=5), reason="edge")
        stored = store.update(new, events=[event])
        assert stored.status is to_status
        assert stored.version == job.version + 1 == event.version
        assert store.get(ACME, job.id) == stored
        assert store.list(ACME, JobFilter(statuses=frozenset({to_status}))) == [stored]
        assert self.collect_events(store, sink)[before_events:] == [event]

    @pytest.mark.parametrize(("from_status", "to_status"), _ILLEGAL_EDGES)
    def test_illegal_transition_through_update_is_refused(
        self, from_status: JobStatus, to_status: JobStatus
    ) -> None:
        store, sink = self.fresh_store()
        job = self.drive(store, store.create(self.new_job(1)), from_status)
        events_before = self.collect_events(store, sink)
        forged = job.model_copy(update={"status": to_status})
        event = JobTransitioned(
            job_id=job.id,
            tenant=job.tenant,
            from_status=from_status,
            to_status=to_status,
            reason="forged",
            at=job.updated_at,
            version=job.version + 1,
        )
        with pytest.raises(InvalidTransitionError):
            store.update(forged, events=[event])
        assert store.get(ACME, job.id) == job
        assert store.list(ACME, JobFilter(statuses=frozenset({to_status}))) == []
        assert store.list(ACME, JobFilter(statuses=frozenset({from_status}))) == [job]
        assert self.collect_events(store, sink) == events_before

    # Events ----------------------------------------------------------------------------------
    def test_events_reach_the_sink_in_write_order(self) -> None:
        store, sink = self.fresh_store()
        job = self.new_job(1)
        created_event = self.creation_event(job)
        current = store.create(job, events=[created_event])
        expected: list[DomainEvent] = [created_event]
        for step, status in enumerate((S.QUEUED, S.ADMITTED, S.RUNNING, S.COMPLETED), start=1):
            new, event = transition(current, status, now=job.created_at + timedelta(seconds=step))
            current = store.update(new, events=[event])
            expected.append(event)
        assert self.collect_events(store, sink) == expected
        assert [e.version for e in _transitions(expected[1:])] == [2, 3, 4, 5]

    def test_several_events_in_one_write_are_recorded_together(self) -> None:
        store, sink = self.fresh_store()
        created = store.create(self.new_job(1))
        new, event = transition(created, S.QUEUED, now=created.created_at + timedelta(seconds=1))
        audit = event.model_copy(update={"reason": "audit copy"})
        store.update(new, events=[event, audit])
        assert self.collect_events(store, sink) == [event, audit]

    def test_write_without_events_records_none(self) -> None:
        store, sink = self.fresh_store()
        created = store.create(self.new_job(1))
        store.update(created.with_changes(labels={"x": "y"}))
        assert self.collect_events(store, sink) == []

    # Round trip: every field, on create and on update -----------------------------------------
    def test_every_field_survives_create_and_updates(self) -> None:
        store, _ = self.fresh_store()
        job = self.full_job(1)
        expected = job.model_copy(update={"version": 1})
        self.assert_same_job(store.create(job), expected, "create returned")
        self.assert_same_job(store.get(ACME, job.id), expected, "get after create")
        # A history that sets the rest: run, checkpoint, get preempted, requeue, fail, retry.
        checkpoint = job.created_at + timedelta(minutes=3, microseconds=250)
        history: list[tuple[JobStatus, dict[str, Any]]] = [
            (S.QUEUED, {"estimated_start": job.created_at + timedelta(minutes=2)}),
            (S.ADMITTED, {}),
            (S.RUNNING, {"actual_cost": Decimal("0.0001")}),
            (S.PREEMPTED, {"last_checkpoint_at": checkpoint, "actual_cost": Decimal("3.2575")}),
            (S.QUEUED, {}),
            (S.ADMITTED, {}),
            (S.RUNNING, {}),
            (S.FAILED, {"actual_cost": Decimal("7.1250"), "outputs": {"logs": "s3://outputs/run-2"}}),
            (S.QUEUED, {}),
        ]
        current = store.get(ACME, job.id)
        for minute, (status, changes) in enumerate(history, start=1):
            at = job.created_at + timedelta(minutes=minute)
            new, event = transition(current, status, now=at, reason=f"to {status.value}", **changes)
            expected = new.model_copy(update={"version": current.version + 1})
            self.assert_same_job(store.update(new, events=[event]), expected, f"update to {status.value}")
            current = store.get(ACME, job.id)
            self.assert_same_job(current, expected, f"get after the update to {status.value}")
        assert (current.preemption_count, current.retry_count) == (1, 1)
        # Admitted 2→4 (preempted) and 6→8 (failed): the lifecycle kept both runs' admitted time.
        assert current.accumulated_runtime == timedelta(minutes=4)
        assert current.next_retry_at is not None and current.actual_start is not None
        assert store.list(ACME) == [current]
        self.assert_same_job(store.list(ACME)[0], current, "list")

    def test_round_trip_preserves_every_field(self) -> None:
        tenants = (ACME, GLOBEX)
        submitted = st.one_of(bst.jobs(tenants=tenants, optional_fields=True), bst.jobs(tenants=tenants))

        @kit_settings(self.hypothesis_max_examples)
        @given(job=submitted, data=st.data())
        def run(job: Job, data: st.DataObject) -> None:
            store, _ = self.fresh_store()
            expected = job.model_copy(update={"version": 1})
            self.assert_same_job(store.create(job), expected, "create returned")
            self.assert_same_job(store.get(job.tenant, job.id), expected, "get after create")
            self.assert_same_job(store.list(job.tenant)[0], expected, "list after create")
            # The same job later in its life: every other field changes, consistently with a status.
            later = data.draw(
                bst.jobs(
                    tenants=(job.tenant,),
                    statuses=None,
                    created_at=st.just(job.created_at),
                    optional_fields=True,
                ),
                label="later",
            )
            current = self.drive(store, store.get(job.tenant, job.id), later.status)
            content = {
                name: getattr(later, name) for name in Job.model_fields if name not in _IDENTITY_FIELDS
            }
            changed = current.model_copy(update=content)
            expected = changed.model_copy(update={"version": current.version + 1})
            self.assert_same_job(store.update(changed), expected, "update returned")
            self.assert_same_job(store.get(job.tenant, job.id), expected, "get after update")
            self.assert_same_job(store.list(job.tenant)[0], expected, "list after update")

        run()

    # Concurrency -----------------------------------------------------------------------------
    def _run_threads(self, target: Callable[[int], None]) -> None:
        """Run ``target(i)`` in ``concurrent_writers`` threads; re-raise the first failure."""
        if self.concurrent_writers < 2:
            pytest.skip("concurrent_writers < 2: this store is not meant to be shared by threads")
        errors: list[BaseException] = []

        def guarded(i: int) -> None:
            try:
                target(i)
            except BaseException as exc:  # re-raised in the test thread below
                errors.append(exc)

        threads = [threading.Thread(target=guarded, args=(i,)) for i in range(self.concurrent_writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "a writer thread is stuck (deadlock?)"
        if errors:
            raise errors[0]

    @staticmethod
    def audit_event(job: Job, reason: str) -> JobTransitioned:
        """An event for a write that does not change the status (stores must not interpret it)."""
        return JobTransitioned(
            job_id=job.id,
            tenant=job.tenant,
            from_status=job.status,
            to_status=job.status,
            reason=reason,
            at=job.updated_at,
            version=job.version + 1,
        )

    def test_concurrent_writers_of_one_version_exactly_one_wins(self) -> None:
        store, sink = self.fresh_store()
        created = store.create(self.new_job(1))
        barrier = threading.Barrier(max(self.concurrent_writers, 1))
        winners: list[int] = []

        def writer(i: int) -> None:
            changed = created.with_changes(labels={"writer": str(i)})
            barrier.wait(timeout=60)
            try:
                store.update(changed, events=[self.audit_event(changed, f"writer {i}")])
            except ConflictError:
                return
            winners.append(i)

        self._run_threads(writer)
        assert len(winners) == 1, f"{len(winners)} writers of version 1 succeeded"
        stored = store.get(ACME, created.id)
        assert stored.version == 2
        assert stored.labels == {"writer": str(winners[0])}
        assert [e.reason for e in _transitions(self.collect_events(store, sink))] == [f"writer {winners[0]}"]

    def test_concurrent_retry_loops_serialise_every_write(self) -> None:
        store, sink = self.fresh_store()
        created = store.create(self.new_job(1))
        writes_each = 5

        def writer(i: int) -> None:
            done = 0
            while done < writes_each:
                current = store.get(ACME, created.id)
                changed = current.with_changes(labels={**current.labels, f"w{i}": str(done)})
                try:
                    store.update(changed, events=[self.audit_event(changed, f"w{i}-{done}")])
                except ConflictError:
                    continue
                done += 1

        self._run_threads(writer)
        total = self.concurrent_writers * writes_each
        stored = store.get(ACME, created.id)
        assert stored.version == 1 + total
        assert stored.labels == {f"w{i}": str(writes_each - 1) for i in range(self.concurrent_writers)}
        # Events are recorded in write order: their versions count up one by one.
        assert [e.version for e in _transitions(self.collect_events(store, sink))] == list(
            range(2, 2 + total)
        )

    # Property: random interleavings against a model -----------------------------------------
    def test_random_operation_sequences_match_a_model(self) -> None:
        base = self.base_time
        created_times = st.sampled_from([base + timedelta(seconds=s) for s in (0, 1, 2)])
        new_jobs = bst.jobs(
            tenants=(ACME, GLOBEX),
            statuses=(S.PENDING,),
            created_at=created_times,
            idempotency_key_pool=("k1", "k2"),
            max_retries=2,
        )

        @kit_settings(self.hypothesis_max_examples)
        @given(data=st.data())
        def run(data: st.DataObject) -> None:
            store, sink = self.fresh_store()
            model: dict[tuple[str, str], Job] = {}
            keys: dict[tuple[str, str], str] = {}
            expected_events: list[DomainEvent] = []
            clock = base + timedelta(hours=1)
            for _ in range(data.draw(st.integers(1, 25), label="operations")):
                op = data.draw(st.sampled_from(("create", "create", "recreate", "edit", "stale", "move")))
                existing = sorted(model)
                if op in ("recreate", "edit", "stale", "move") and not existing:
                    op = "create"
                if op == "create":
                    job = data.draw(new_jobs, label="job")
                    key = (job.tenant, job.idempotency_key) if job.idempotency_key else None
                    if key is not None and key in keys:
                        assert store.create(job) == model[(job.tenant, keys[key])]
                    elif (job.tenant, job.id) in model:
                        with pytest.raises(AlreadyExistsError):
                            store.create(job)
                    else:
                        event = self.creation_event(job)
                        stored = store.create(job, events=[event])
                        expected = job.model_copy(update={"version": 1})
                        self.assert_same_job(stored, expected, "create")
                        model[job.key] = expected
                        expected_events.append(event)
                        if key is not None:
                            keys[key] = job.id
                    continue
                target = model[data.draw(st.sampled_from(existing), label="target")]
                clock += timedelta(seconds=1)
                if op == "recreate":
                    clone = target.model_copy(update={"idempotency_key": None, "version": 0})
                    with pytest.raises(AlreadyExistsError):
                        store.create(clone)
                elif op == "edit":
                    labels = data.draw(bst.label_dicts(), label="labels")
                    changed = target.with_changes(labels=labels, updated_at=clock)
                    stored = store.update(changed)
                    model[target.key] = changed.model_copy(update={"version": target.version + 1})
                    assert stored == model[target.key]
                elif op == "stale":
                    delta = data.draw(st.sampled_from((-1, 1)), label="staleness")
                    version = target.version + delta if target.version + delta >= 1 else target.version + 1
                    stale = target.model_copy(update={"version": version, "name": "stale write"})
                    with pytest.raises(ConflictError):
                        store.update(stale, events=[self.creation_event(stale)])
                else:
                    to_status = data.draw(st.sampled_from(tuple(JobStatus)), label="to_status")
                    if to_status in TRANSITIONS[target.status]:
                        try:
                            new, event = transition(target, to_status, now=clock, reason="model")
                        except InvalidTransitionError:
                            # Retry budget exhausted: refused before reaching the store.
                            assert target.status is S.FAILED and target.retry_count >= target.max_retries
                        else:
                            stored = store.update(new, events=[event])
                            model[target.key] = new.model_copy(update={"version": target.version + 1})
                            assert stored == model[target.key]
                            expected_events.append(event)
                    elif to_status is not target.status:
                        with pytest.raises(InvalidTransitionError):
                            store.update(target.model_copy(update={"status": to_status}))
                self.assert_same_job(store.get(TenantId(target.tenant), target.id), model[target.key], op)
            assert store.list(None) == _fifo(model.values())
            for tenant in (ACME, GLOBEX):
                assert store.list(tenant) == _fifo(j for j in model.values() if j.tenant == tenant)
            for status in JobStatus:
                flt = JobFilter(statuses=frozenset({status}))
                assert store.list(None, flt) == _fifo(j for j in model.values() if j.status is status)
            assert store.count(None) == len(model)
            assert self.collect_events(store, sink) == expected_events

        run()


# Cluster backend -----------------------------------------------------------------------------
GPU_PRODUCT = bst.GPU_PRODUCT_LABEL
H100 = "NVIDIA-H100-80GB-HBM3"
A100 = "NVIDIA-A100-SXM4-80GB"
_GIB_MILLI = 2**30 * 1000
_HELD_PHASES = frozenset({WorkloadPhase.PENDING, WorkloadPhase.RUNNING, WorkloadPhase.TERMINATING})


def _gpu_node(
    name: str, product: str, gpus: int, *, schedulable: bool = True, taints: Sequence[Taint] = ()
) -> Node:
    return Node(
        name=name,
        labels={GPU_PRODUCT: product, "kubernetes.io/hostname": name},
        allocatable=ResourceVector({CPU: 64_000, MEMORY: 512 * _GIB_MILLI, NVIDIA_GPU: gpus * 1000}),
        schedulable=schedulable,
        taints=tuple(taints),
    )


def _pods(
    name: str,
    count: int,
    *,
    gpus: int,
    cpu: int = 4,
    selector: Mapping[str, str] | None = None,
    tolerations: Sequence[Toleration] = (),
) -> PodSetPlacement:
    return PodSetPlacement(
        name=name,
        count=count,
        resources=ResourceVector({CPU: cpu * 1000, MEMORY: 16 * _GIB_MILLI, NVIDIA_GPU: gpus * 1000}),
        node_selector=dict(selector or {}),
        tolerations=tuple(tolerations),
    )


def _workload(job_id: str, *pod_sets: PodSetPlacement, tenant: str = ACME) -> Workload:
    return Workload(job_id=JobId(job_id), tenant=TenantId(tenant), pod_sets=pod_sets)


def _used(capacity: ClusterCapacity) -> dict[str, dict[str, int]]:
    """Per node, allocatable minus free (what workloads hold)."""
    out: dict[str, dict[str, int]] = {}
    for entry in capacity.nodes:
        used = {r: entry.node.allocatable.get(r, 0) - entry.free.get(r, 0) for r in entry.node.allocatable}
        out[entry.node.name] = {r: v for r, v in used.items() if v}
    return out


class ClusterBackendConformance:
    """The :class:`~budcore.ports.ClusterBackend` contract as pytest tests.

    Override :meth:`make_backend`. The default fleet (:meth:`fleet`) has two 8-GPU H100 nodes, a
    4-GPU A100 node and a cordoned H100 node; tests place workloads with ``nvidia.com/gpu.product``
    node selectors, as ResourceFlavors do.
    """

    hypothesis_max_examples: ClassVar[int | None] = None
    grace: ClassVar[timedelta] = timedelta(seconds=30)

    def make_backend(self, nodes: Sequence[Node], clock: Clock) -> ClusterBackend:
        """Return a backend managing exactly ``nodes``, measuring grace periods on ``clock``."""
        raise NotImplementedError(
            f"{type(self).__name__} must override make_backend(self, nodes, clock) to return a ClusterBackend"
        )

    # Helpers ---------------------------------------------------------------------------------
    def fleet(self) -> list[Node]:
        """The fleet most tests run on."""
        return [
            _gpu_node("h100-0", H100, 8),
            _gpu_node("h100-1", H100, 8),
            _gpu_node("a100-0", A100, 4),
            _gpu_node("h100-cordoned", H100, 8, schedulable=False),
        ]

    def fresh_backend(self, nodes: Sequence[Node] | None = None) -> tuple[ClusterBackend, FakeClock]:
        clock = FakeClock()
        fleet = list(nodes) if nodes is not None else self.fleet()
        return self.make_backend(fleet, clock), clock

    def assert_consistent(
        self, backend: ClusterBackend, fleet: Sequence[Node], held: Mapping[str, Workload]
    ) -> ClusterCapacity:
        """Capacity agrees with the workloads that hold resources; nothing is over-committed.

        Checks that every node reports ``0 <= free <= allocatable`` per resource, that the total
        in use equals the sum of the held workloads' requests, and that resources are in use only
        on schedulable nodes that some held workload was placed on, whose labels match a pod set's
        node selector and whose NoSchedule/NoExecute taints that pod set tolerates.
        """
        capacity = backend.capacity()
        by_name = {n.name: n for n in fleet}
        assert sorted(e.node.name for e in capacity.nodes) == sorted(by_name)
        for entry in capacity.nodes:
            for resource, free in entry.free.items():
                allocatable = entry.node.allocatable.get(resource, 0)
                assert 0 <= free <= allocatable, f"{entry.node.name}: {resource} free {free} > {allocatable}"
        used = _used(capacity)
        total_used = ResourceVector.sum(used.values())
        expected_total = ResourceVector.sum(
            p.resources.scaled(p.count) for w in held.values() for p in w.pod_sets
        )
        assert total_used == expected_total
        statuses = {s.job_id: s for s in backend.observe()}
        placed_on: set[str] = set()
        for job_id, workload in held.items():
            status = statuses.get(JobId(job_id))
            assert status is not None, f"held workload {job_id} is not observed"
            assert status.phase in _HELD_PHASES, f"{job_id} holds resources but is {status.phase}"
            for node_name in status.nodes:
                node = by_name[node_name]
                assert node.schedulable, f"{job_id} placed on cordoned node {node_name}"
                assert any(
                    node.matches(p.node_selector) and node.untolerated_taint(p.tolerations) is None
                    for p in workload.pod_sets
                ), (
                    f"{job_id} placed on {node_name}, which no pod set may use (node selector, "
                    f"untolerated taint {node.untolerated_taint()})"
                )
            placed_on.update(status.nodes)
        busy = {name for name, amounts in used.items() if amounts}
        assert busy <= placed_on, f"resources in use on {busy - placed_on} by no held workload"
        return capacity

    # Capacity --------------------------------------------------------------------------------
    def test_reports_nodes_and_initial_capacity(self) -> None:
        fleet = self.fleet()
        backend, _ = self.fresh_backend(fleet)
        assert sorted(n.name for n in backend.nodes()) == sorted(n.name for n in fleet)
        capacity = self.assert_consistent(backend, fleet, {})
        for entry in capacity.nodes:
            assert entry.free == entry.node.allocatable
        assert capacity.total_allocatable == ResourceVector.sum(n.allocatable for n in fleet if n.schedulable)
        assert capacity.total_free == capacity.total_allocatable
        assert backend.observe() == [] or all(s.phase not in _HELD_PHASES for s in backend.observe())

    # Submit ----------------------------------------------------------------------------------
    def test_submit_places_pods_on_matching_nodes_only(self) -> None:
        fleet = self.fleet()
        backend, _ = self.fresh_backend(fleet)
        workload = _workload("train", _pods("workers", 2, gpus=4, selector={GPU_PRODUCT: H100}))
        status = backend.submit(workload)
        assert status.job_id == "train"
        assert status.phase in (WorkloadPhase.PENDING, WorkloadPhase.RUNNING)
        assert status.nodes and set(status.nodes) <= {"h100-0", "h100-1"}
        capacity = self.assert_consistent(backend, fleet, {"train": workload})
        assert capacity.total_free.get(NVIDIA_GPU, 0) == (16 + 4 - 8) * 1000

    def test_submit_without_selector_may_use_any_schedulable_node(self) -> None:
        fleet = self.fleet()
        backend, _ = self.fresh_backend(fleet)
        workload = _workload("any", _pods("main", 5, gpus=4))
        status = backend.submit(workload)
        assert "h100-cordoned" not in status.nodes
        capacity = self.assert_consistent(backend, fleet, {"any": workload})
        assert capacity.total_free.get(NVIDIA_GPU, 0) == 0

    def test_cordoned_nodes_are_never_used(self) -> None:
        fleet = [_gpu_node("only", H100, 8, schedulable=False), _gpu_node("other", A100, 8)]
        backend, _ = self.fresh_backend(fleet)
        with pytest.raises(CapacityError):
            backend.submit(_workload("x", _pods("main", 1, gpus=1, selector={GPU_PRODUCT: H100})))
        self.assert_consistent(backend, fleet, {})

    def test_selector_matching_no_node_raises_capacity_error(self) -> None:
        fleet = self.fleet()
        backend, _ = self.fresh_backend(fleet)
        with pytest.raises(CapacityError):
            backend.submit(_workload("x", _pods("main", 1, gpus=1, selector={GPU_PRODUCT: "NVIDIA-B200"})))
        self.assert_consistent(backend, fleet, {})

    def test_tainted_nodes_only_receive_pods_that_tolerate_them(self) -> None:
        """kube-scheduler's TaintToleration filter: a pod lands on a node only if it tolerates
        every NoSchedule and NoExecute taint there; PreferNoSchedule never keeps it off."""
        dedicated = Taint(key="dedicated", value="ml", effect="NoSchedule")
        fleet = [
            _gpu_node("h100-dedicated", H100, 8, taints=[dedicated]),
            _gpu_node("h100-draining", H100, 8, taints=[Taint(key="maintenance", effect="NoExecute")]),
            _gpu_node(
                "h100-spot", H100, 8, taints=[Taint(key="spot", value="true", effect="PreferNoSchedule")]
            ),
        ]
        on_h100 = {GPU_PRODUCT: H100}

        # Without tolerations only the PreferNoSchedule node is open: one 8-GPU pod, no more.
        backend, _ = self.fresh_backend(fleet)
        with pytest.raises(CapacityError):
            backend.submit(_workload("gang", _pods("main", 2, gpus=8, selector=on_h100)))
        self.assert_consistent(backend, fleet, {})
        plain = _workload("plain", _pods("main", 1, gpus=8, selector=on_h100))
        assert backend.submit(plain).nodes == ("h100-spot",)
        with pytest.raises(CapacityError):
            backend.submit(_workload("more", _pods("main", 1, gpus=1, selector=on_h100)))
        # Tolerating the NoSchedule taint (Equal, same key, value and effect) opens its node.
        tolerant = _workload(
            "tolerant",
            _pods("main", 1, gpus=8, selector=on_h100, tolerations=[Toleration(key="dedicated", value="ml")]),
        )
        assert backend.submit(tolerant).nodes == ("h100-dedicated",)
        self.assert_consistent(backend, fleet, {"plain": plain, "tolerant": tolerant})

        # Another value of the key, or another effect, does not tolerate it.
        for toleration in (
            Toleration(key="dedicated", value="batch"),
            Toleration(key="dedicated", operator="Exists", effect="NoExecute"),
        ):
            backend, _ = self.fresh_backend(fleet)
            with pytest.raises(CapacityError):
                backend.submit(
                    _workload("wrong", _pods("main", 2, gpus=8, selector=on_h100, tolerations=[toleration]))
                )
            self.assert_consistent(backend, fleet, {})

        # A NoExecute toleration opens the draining node; an empty key with Exists opens them all.
        backend, _ = self.fresh_backend(fleet)
        draining = Toleration(key="maintenance", operator="Exists", effect="NoExecute", toleration_seconds=60)
        both = _workload("both", _pods("main", 2, gpus=8, selector=on_h100, tolerations=[draining]))
        assert set(backend.submit(both).nodes) == {"h100-draining", "h100-spot"}
        self.assert_consistent(backend, fleet, {"both": both})
        backend, _ = self.fresh_backend(fleet)
        everything = _workload("all", _pods("main", 3, gpus=8, tolerations=[Toleration(operator="Exists")]))
        assert set(backend.submit(everything).nodes) == {n.name for n in fleet}
        self.assert_consistent(backend, fleet, {"all": everything})

    def test_never_over_commits(self) -> None:
        fleet = self.fleet()
        backend, _ = self.fresh_backend(fleet)
        held: dict[str, Workload] = {}
        for i in range(10):
            workload = _workload(f"w{i}", _pods("main", 1, gpus=3, selector={GPU_PRODUCT: H100}))
            try:
                backend.submit(workload)
            except CapacityError:
                self.assert_consistent(backend, fleet, held)
                continue
            held[workload.job_id] = workload
            self.assert_consistent(backend, fleet, held)
        # Two 8-GPU nodes fit exactly two 3-GPU pods each; a pod never spans nodes.
        assert len(held) == 4

    def test_single_pod_that_fits_is_placed(self) -> None:
        fleet = self.fleet()
        backend, _ = self.fresh_backend(fleet)
        big = _workload("big", _pods("main", 1, gpus=8, selector={GPU_PRODUCT: H100}))
        backend.submit(big)
        # One H100 node is full, the other empty: an 8-GPU pod still fits there.
        second = _workload("second", _pods("main", 1, gpus=8, selector={GPU_PRODUCT: H100}))
        backend.submit(second)
        self.assert_consistent(backend, fleet, {"big": big, "second": second})

    def test_gang_is_all_or_nothing(self) -> None:
        fleet = self.fleet()
        backend, _ = self.fresh_backend(fleet)
        before = backend.capacity()
        gang = _workload(
            "gang",
            _pods("h100-workers", 2, gpus=8, selector={GPU_PRODUCT: H100}),
            _pods("a100-workers", 2, gpus=4, selector={GPU_PRODUCT: A100}),  # only one A100 node
        )
        with pytest.raises(CapacityError):
            backend.submit(gang)
        assert backend.capacity() == before
        assert all(s.phase not in _HELD_PHASES for s in backend.observe() if s.job_id == "gang")
        self.assert_consistent(backend, fleet, {})
        # The same nodes remain fully usable afterwards.
        fits = _workload("fits", _pods("h100-workers", 2, gpus=8, selector={GPU_PRODUCT: H100}))
        backend.submit(fits)
        self.assert_consistent(backend, fleet, {"fits": fits})

    def test_multi_pod_set_gang_places_every_pod_set(self) -> None:
        fleet = self.fleet()
        backend, _ = self.fresh_backend(fleet)
        gang = _workload(
            "gang",
            _pods("h100-workers", 2, gpus=8, selector={GPU_PRODUCT: H100}),
            _pods("a100-worker", 1, gpus=4, selector={GPU_PRODUCT: A100}),
        )
        status = backend.submit(gang)
        assert set(status.nodes) == {"h100-0", "h100-1", "a100-0"}
        capacity = self.assert_consistent(backend, fleet, {"gang": gang})
        assert capacity.total_free.get(NVIDIA_GPU, 0) == 0

    def test_duplicate_submit_does_not_double_allocate(self) -> None:
        fleet = self.fleet()
        backend, _ = self.fresh_backend(fleet)
        workload = _workload("once", _pods("main", 1, gpus=2))
        backend.submit(workload)
        with suppress(AlreadyExistsError):
            backend.submit(workload)
        self.assert_consistent(backend, fleet, {"once": workload})

    # Cancel and preempt ----------------------------------------------------------------------
    def test_cancel_releases_resources_at_once(self) -> None:
        fleet = self.fleet()
        backend, _ = self.fresh_backend(fleet)
        initial = backend.capacity()
        workload = _workload("c", _pods("main", 2, gpus=8))
        backend.submit(workload)
        status = backend.cancel(JobId("c"))
        assert status.phase not in _HELD_PHASES
        assert backend.capacity() == initial
        self.assert_consistent(backend, fleet, {})

    def test_preempt_without_grace_releases_at_once(self) -> None:
        fleet = self.fleet()
        backend, _ = self.fresh_backend(fleet)
        initial = backend.capacity()
        backend.submit(_workload("p", _pods("main", 1, gpus=8)))
        status = backend.preempt(JobId("p"), grace=timedelta(0))
        assert status.phase is WorkloadPhase.EVICTED
        assert backend.capacity() == initial

    def test_preempt_with_grace_keeps_resources_until_it_passes(self) -> None:
        fleet = self.fleet()
        backend, clock = self.fresh_backend(fleet)
        initial = backend.capacity()
        workload = _workload("p", _pods("main", 1, gpus=8, selector={GPU_PRODUCT: H100}))
        backend.submit(workload)
        status = backend.preempt(JobId("p"), grace=self.grace)
        assert status.phase is WorkloadPhase.TERMINATING
        clock.advance(self.grace - timedelta(seconds=1))
        self.assert_consistent(backend, fleet, {"p": workload})
        assert _phases(backend)["p"] is WorkloadPhase.TERMINATING
        clock.advance(timedelta(seconds=1))
        assert backend.capacity() == initial
        assert _phases(backend)["p"] is WorkloadPhase.EVICTED

    def test_cancel_during_grace_releases_at_once(self) -> None:
        fleet = self.fleet()
        backend, _ = self.fresh_backend(fleet)
        initial = backend.capacity()
        backend.submit(_workload("p", _pods("main", 1, gpus=8)))
        backend.preempt(JobId("p"), grace=self.grace)
        backend.cancel(JobId("p"))
        assert backend.capacity() == initial

    def test_released_resources_can_be_reused(self) -> None:
        fleet = self.fleet()
        backend, _ = self.fresh_backend(fleet)
        backend.submit(_workload("a", _pods("main", 2, gpus=8, selector={GPU_PRODUCT: H100})))
        with pytest.raises(CapacityError):
            backend.submit(_workload("b", _pods("main", 1, gpus=8, selector={GPU_PRODUCT: H100})))
        backend.cancel(JobId("a"))
        b = _workload("b", _pods("main", 1, gpus=8, selector={GPU_PRODUCT: H100}))
        backend.submit(b)
        self.assert_consistent(backend, fleet, {"b": b})

    def test_unknown_workload_raises_not_found(self) -> None:
        backend, _ = self.fresh_backend()
        with pytest.raises(NotFoundError):
            backend.cancel(JobId("ghost"))
        with pytest.raises(NotFoundError):
            backend.preempt(JobId("ghost"), grace=timedelta(0))

    def test_observe_reports_each_workload_once(self) -> None:
        fleet = self.fleet()
        backend, _ = self.fresh_backend(fleet)
        backend.submit(_workload("a", _pods("main", 1, gpus=1), tenant=ACME))
        backend.submit(_workload("b", _pods("main", 1, gpus=1), tenant=GLOBEX))
        backend.cancel(JobId("a"))
        statuses: list[WorkloadStatus] = list(backend.observe())
        by_id: dict[str, WorkloadStatus] = {s.job_id: s for s in statuses}
        assert len(by_id) == len(statuses)
        assert by_id["b"].phase in (WorkloadPhase.PENDING, WorkloadPhase.RUNNING)
        assert by_id["b"].tenant == GLOBEX
        assert "a" not in by_id or by_id["a"].phase not in _HELD_PHASES

    # Property: random submit/cancel/preempt/advance sequences --------------------------------
    def test_random_sequences_keep_capacity_consistent(self) -> None:
        gpu_types = (H100, A100, "NVIDIA-L4")

        @kit_settings(self.hypothesis_max_examples)
        @given(fleet=bst.fleets(1, 5, gpu_types=gpu_types, max_gpus=8), data=st.data())
        def run(fleet: list[Node], data: st.DataObject) -> None:
            backend, clock = self.fresh_backend(fleet)
            held: dict[str, Workload] = {}
            releases: dict[str, datetime] = {}  # held workloads in their grace period
            counter = itertools.count()
            workloads = bst.workloads(
                job_ids=st.builds(lambda: f"w{next(counter)}"),
                gpu_types=gpu_types,
                max_pod_sets=2,
                max_pods=3,
                max_gpus=4,
            )
            for _ in range(data.draw(st.integers(1, 20), label="operations")):
                op = data.draw(st.sampled_from(("submit", "submit", "cancel", "preempt", "wait")))
                if (op == "cancel" and not held) or (op == "preempt" and not held.keys() - releases.keys()):
                    op = "submit"
                if op == "submit":
                    workload = data.draw(workloads, label="workload")
                    before = backend.capacity()
                    fits_whole = _single_pod_fits(workload, before)
                    try:
                        backend.submit(workload)
                    except CapacityError:
                        assert not fits_whole, f"{workload.job_id}: a single pod that fits was refused"
                        assert backend.capacity() == before
                    else:
                        held[workload.job_id] = workload
                elif op == "cancel":
                    job_id = data.draw(st.sampled_from(sorted(held)), label="cancel")
                    backend.cancel(JobId(job_id))
                    del held[job_id]
                    releases.pop(job_id, None)
                elif op == "preempt":
                    # Only running ones: re-preempting a terminating workload is left unspecified.
                    job_id = data.draw(
                        st.sampled_from(sorted(held.keys() - releases.keys())), label="preempt"
                    )
                    seconds = data.draw(st.sampled_from((0, 10, 60)), label="grace")
                    backend.preempt(JobId(job_id), grace=timedelta(seconds=seconds))
                    if seconds == 0:
                        del held[job_id]
                    else:
                        releases[job_id] = clock.now() + timedelta(seconds=seconds)
                else:
                    clock.advance(timedelta(seconds=data.draw(st.integers(1, 90), label="wait")))
                for job_id, at in list(releases.items()):
                    if at <= clock.now():
                        del releases[job_id], held[job_id]
                self.assert_consistent(backend, fleet, held)

        run()


def _phases(backend: ClusterBackend) -> dict[str, WorkloadPhase]:
    return {s.job_id: s.phase for s in backend.observe()}


def _single_pod_fits(workload: Workload, capacity: ClusterCapacity) -> bool:
    """A one-pod workload that fits some matching schedulable node's free resources."""
    if len(workload.pod_sets) != 1 or workload.pod_sets[0].count != 1:
        return False
    pod = workload.pod_sets[0]
    return any(
        e.node.schedulable and e.node.matches(pod.node_selector) and pod.resources.fits_in(e.free)
        for e in capacity.nodes
    )


def _transitions(events: Sequence[DomainEvent]) -> list[JobTransitioned]:
    """The job transitions among ``events`` (a job store records nothing else; the kit checks it)."""
    out = [e for e in events if isinstance(e, JobTransitioned)]
    assert len(out) == len(events), f"a job store recorded events other than transitions: {events}"
    return out
