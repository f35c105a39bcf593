"""A reusable pytest suite that checks a pipeline store against the port's contract.

Subclass :class:`PipelineStoreConformance`, name the subclass ``Test…`` so pytest collects it, and
override :meth:`~PipelineStoreConformance.make_store`; every ``test_*`` method then runs against
the implementation::

    from budcore.ports.pipeline_store import PipelineStore
    from budcore.testing.pipelines import PipelineStoreConformance

    class TestMyStore(PipelineStoreConformance):
        concurrent_savers = 4  # a store shared by threads or services: run the race tests

        def make_store(self) -> PipelineStore:
            return MyStore(url=...)  # must be empty: no pipelines, no runs

Contract notes the kit relies on (see :mod:`budcore.ports.pipeline_store` for the port), beyond
the port's own:

- ``make_store`` is called once per test *and* once per hypothesis example and must return an
  **empty** store. The ``store`` fixture is one such store, for tests an implementer adds.
- **Definitions** are stored in their canonical form, ``PipelineSpec.model_validate(
  spec.model_dump(mode="json"))``, which equals the spec for every step type as long as its
  free-form fields (``body``, ``args``, ``items``, a parameter's ``default``...) hold JSON values
  (a tuple in one comes back a list). ``save_pipeline`` returns that form; a store keeps no
  reference to the spec it was given and hands out none to what it keeps (changing a returned
  definition's dicts changes nothing stored).
- **Runs** are compared as :class:`~budcore.pipeline.state.PipelineRun` values (dataclass
  equality, every field of the header and of each step record) plus the order of the step
  records, their creation order: a record added by ``save_run`` comes after every stored one, and
  several added at once keep the order of ``run.steps``. Values are JSON: numbers compare by value
  (PostgreSQL's JSONB may give a float without a fraction back as an equal ``int``), object keys
  in any order; text holds no NUL (``\\x00``), which PostgreSQL cannot store.
- **Datetimes** come back aware and in UTC (the same instants as given, in any zone). A naive
  datetime, or a value JSON cannot hold (``NaN``, an infinity, an arbitrary object) anywhere in a
  run, is refused with :class:`~budcore.domain.errors.ValidationError` and nothing is written.
- ``create_run`` returns a copy and leaves its argument as it was (use the returned run: its
  ``version`` is 1). ``save_run`` refuses with ``ValidationError``, writing nothing, a ``changed``
  that names a record not in ``run.steps`` (or is one string) and a run whose ``pipeline_id``,
  ``pipeline_version`` or ``tenant`` differs from the stored one's; an unknown run is
  ``NotFoundError``. ``get_pipeline(id, version)`` of an unknown version is ``NotFoundError`` too.
- ``list_runs`` puts runs without ``created_at`` after the others (SQL's ``NULLS LAST``) and orders
  ``run_id`` bytewise; ``statuses=()`` matches no run.
- ``hypothesis_max_examples`` (class attribute) bounds the property tests for slow stores;
  ``None`` uses the active hypothesis profile.
- **Shared backends.** ``concurrent_savers`` (default 0: the race tests are skipped) is how many
  threads race on one run at once; a store meant to be shared by several threads or services sets
  it to 2 or more. Each thread works through its own handle, :meth:`~PipelineStoreConformance.share`
  (default: the same object), which a store that can be opened twice on one backend overrides to
  do so, as a second engine would. A race one round may let pass by luck runs ``race_rounds`` (5)
  times.

Needs ``pytest`` and ``hypothesis`` (the ``budcore[testing]`` extra). Long because the contract is
one suite: every check is a test method an implementer inherits as it is, with the definitions and
runs it expects spelled out next to the checks, the model the property test compares against, and
the races a shared store must win.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from budcore.domain.errors import ConflictError, ImmutableError, NotFoundError, ValidationError
from budcore.pipeline.model import PipelineSpec
from budcore.pipeline.state import PipelineRun, RunStatus, StepRun, StepStatus
from budcore.ports.pipeline_store import PipelineStore
from budcore.testing.concurrency import race as race_threads
from budcore.testing.conformance import kit_settings
from budcore.testing.fakes import DEFAULT_START

__all__ = ["PipelineStoreConformance", "every_step_type_spec", "json_values", "simple_spec"]

_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)

#: Any JSON value without NUL: nested objects and arrays, unicode, None, big integers, finite floats.
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


def _expect(actual: object, expected: object, what: str) -> None:
    assert actual == expected, f"{what}: got {actual!r}, expected {expected!r}"


def every_step_type_spec(
    pipeline_id: str = "etl", version: int = 1, *, description: str = ""
) -> PipelineSpec:
    """A definition using every step type and most optional fields (a compensation, a loop body,
    typed parameters, a schedule, a relative deadline, retries, timeouts, nested JSON)."""
    return PipelineSpec.model_validate(
        {
            "id": pipeline_id,
            "version": version,
            "description": description,
            "tenant": "team-a",
            "labels": {"owner": "data", "tier": "ü-1"},
            "parameters": {
                "n": 3,
                "mode": {"type": "string", "default": "fast", "choices": ["fast", "slow"]},
                "items": {"type": "list"},
            },
            "trigger": {"type": "schedule", "cron": "0 * * * *"},
            "timeout": "2h",
            "deadline": "6h",
            "on_failure": "rollback",
            "steps": [
                {
                    "id": "train",
                    "type": "job",
                    "config": {
                        "job_type": "training",
                        "gpu_count": 2,
                        "gpu_type": "h100",
                        "spec": {"image": "trainer:1", "lr": 1.5e-4, "layers": [1, 2, None]},
                        "deadline": "2030-01-02T00:00:00+05:30",
                        "time_window_start": "09:00",
                        "time_window_end": "17:00",
                        "priority": "HIGH",
                        "labels": {"k": "v"},
                        "outputs": {"url": "http://model"},
                        "estimated_duration_seconds": "1h",
                    },
                    "outputs": ["url"],
                    "retries": {"max_retries": 2, "backoff": "5s"},
                    "timeout": "3h",
                    "compensate": {"type": "api_call", "config": {"url": "http://undo"}},
                },
                {
                    "id": "notify-api",
                    "type": "API_CALL",
                    "depends_on": ["train"],
                    "config": {
                        "url": "http://hook/{{ steps['train'].outputs.url }}",
                        "method": "put",
                        "headers": {"X-Key": "é"},
                        "body": {"x": [1, 2.5, None, "日本"], "deep": {"a": {"b": True}}},
                        "expect_status": [200, 201],
                    },
                },
                {"id": "fn", "type": "function", "config": {"function": "score", "args": {"k": 1}}},
                {"id": "shape", "type": "transform", "config": {"input": [1, 2], "values": {"v": "x"}}},
                {
                    "id": "tell",
                    "type": "notification",
                    "config": {
                        "channel": "slack",
                        "recipients": ["a"],
                        "message": "done",
                        "severity": "WARNING",
                    },
                },
                {
                    "id": "choose",
                    "type": "condition",
                    "when": "params.n > 1",
                    "config": {"expression": "true", "then_steps": ["fn"], "else_steps": ["shape"]},
                },
                {"id": "fan", "type": "parallel", "config": {"steps": ["tell"], "max_concurrency": 2}},
                {"id": "pause", "type": "wait", "config": {"duration_seconds": "10m"}},
                {
                    "id": "await",
                    "type": "wait",
                    "config": {"wait_for_event": "approved", "timeout_seconds": 60},
                },
                {
                    "id": "each",
                    "type": "loop",
                    "name": "Each item",
                    "order": 4,
                    "estimated_duration": 30,
                    "config": {
                        "items": [1, "a", {"b": 2}],
                        "step": {
                            "type": "function",
                            "config": {"function": "g"},
                            "retries": {"max_retries": 1},
                        },
                        "max_concurrency": 3,
                    },
                },
            ],
        }
    )


def simple_spec(pipeline_id: str = "etl", version: int = 1, variant: int = 0) -> PipelineSpec:
    """A two-step definition; ``variant`` changes its content (the first step's arguments)."""
    return PipelineSpec.model_validate(
        {
            "id": pipeline_id,
            "version": version,
            "steps": [
                {
                    "id": "extract",
                    "type": "function",
                    "config": {"function": "extract", "args": {"v": variant}},
                },
                {"id": "load", "type": "function", "depends_on": ["extract"], "config": {"function": "load"}},
            ],
        }
    )


class PipelineStoreConformance:
    """The :class:`~budcore.ports.pipeline_store.PipelineStore` contract as pytest tests; override
    :meth:`make_store`."""

    hypothesis_max_examples: ClassVar[int | None] = None
    base_time: ClassVar[datetime] = DEFAULT_START
    concurrent_savers: ClassVar[int] = 0
    race_rounds: ClassVar[int] = 5

    # Hooks for the implementer ---------------------------------------------------------------
    def make_store(self) -> PipelineStore:
        """Return a new, empty store."""
        raise NotImplementedError(
            f"{type(self).__name__} must override make_store(self) to return an empty PipelineStore"
        )

    def share(self, store: PipelineStore) -> PipelineStore:
        """Another handle on ``store``'s backend, as a second thread or engine would open it
        (default: ``store`` itself). Only the race tests call it."""
        return store

    @pytest.fixture
    def store(self) -> PipelineStore:
        """An empty store (:meth:`make_store`)."""
        return self.make_store()

    # Helpers ---------------------------------------------------------------------------------
    def at(self, minutes: float) -> datetime:
        """``minutes`` after :attr:`base_time`."""
        return self.base_time + timedelta(minutes=minutes)

    def make_run(
        self,
        run_id: str,
        *,
        pipeline_id: str = "etl",
        version: int = 1,
        tenant: str = "default",
        created: float | None = 0,
        steps: Iterable[str] = ("extract", "load"),
        status: RunStatus = RunStatus.RUNNING,
    ) -> PipelineRun:
        """A run of ``pipeline_id`` ``version`` created ``created`` minutes after :attr:`base_time`
        (None: no ``created_at``), with a record per step id (the first completed, with outputs)."""
        at = None if created is None else self.at(created)
        run = PipelineRun(
            run_id=run_id,
            pipeline_id=pipeline_id,
            pipeline_version=version,
            tenant=tenant,
            params={"n": 3, "items": ["a", {"b": None}]},
            status=status,
            created_at=at,
            started_at=at,
            deadline=None if at is None else at + timedelta(hours=6),
        )
        for i, step_id in enumerate(steps):
            record = StepRun(step_id)
            if i == 0 and at is not None:
                record.status, record.attempt = StepStatus.COMPLETED, 1
                record.started_at, record.ended_at = at, at + timedelta(seconds=1, microseconds=7)
                record.outputs = {"rows": 10, "path": "s3://b/ü", "meta": {"ok": True, "none": None}}
            run.steps[step_id] = record
        return run

    def stored(self, store: PipelineStore, run: PipelineRun) -> PipelineRun:
        """Create ``run``'s pipeline (``simple_spec``) if needed and the run; return the stored run."""
        try:
            store.get_pipeline(run.pipeline_id, run.pipeline_version)
        except NotFoundError:
            store.save_pipeline(simple_spec(run.pipeline_id, run.pipeline_version))
        return store.create_run(run)

    @staticmethod
    def assert_same_run(actual: PipelineRun, expected: PipelineRun, what: str) -> None:
        """Fail unless the runs are equal field by field, with their step records in the same order
        and every datetime aware in UTC."""
        assert isinstance(actual, PipelineRun), f"{what}: got {type(actual).__name__}, not a PipelineRun"
        differences = [
            f"{name}: stored {getattr(actual, name)!r}, expected {getattr(expected, name)!r}"
            for name in expected.header()
            if getattr(actual, name) != getattr(expected, name)
        ]
        assert not differences, f"{what}: " + "; ".join(differences)
        _expect(list(actual.steps), list(expected.steps), f"{what}: the step records, in order")
        for step_id, record in expected.steps.items():
            _expect(actual.steps[step_id], record, f"{what}: step record {step_id!r}")
        _expect(actual, expected, what)
        times = [
            (n, getattr(actual, n))
            for n in ("created_at", "started_at", "ended_at", "deadline", "timeout_at")
        ]
        for record in actual.steps.values():
            times += [
                (f"{record.step_id}.{n}", getattr(record, n)) for n in ("started_at", "ended_at", "wake_at")
            ]
        for name, value in times:
            assert value is None or (value.tzinfo is not None and value.utcoffset() == timedelta(0)), (
                f"{what}: {name} {value!r} is not a UTC datetime"
            )

    def assert_runs(
        self, store: PipelineStore, expected: Sequence[PipelineRun], what: str, **filters: Any
    ) -> None:
        got = store.list_runs(**filters)
        _expect([r.run_id for r in got], [r.run_id for r in expected], f"{what}: the runs listed")
        for actual, run in zip(got, expected, strict=True):
            self.assert_same_run(actual, run, f"{what}: {run.run_id}")

    @staticmethod
    def first_version(run: PipelineRun) -> PipelineRun:
        """``run`` as ``create_run`` stores it: a (deep) copy with version 1."""
        stored = copy.deepcopy(run)
        stored.version = 1
        return stored

    # Definitions -----------------------------------------------------------------------------
    def test_is_the_port(self, store: PipelineStore) -> None:
        assert isinstance(store, PipelineStore)

    def test_save_and_get_pipeline_latest_and_by_version(self, store: PipelineStore) -> None:
        v1, v3, v2 = simple_spec("etl", 1), simple_spec("etl", 3, variant=3), simple_spec("etl", 2, variant=2)
        for spec in (v1, v3, v2):  # saved out of order: the latest is the highest version
            _expect(store.save_pipeline(spec), spec, f"save_pipeline(version {spec.version})")
        other = simple_spec("other", 7)
        store.save_pipeline(other)
        _expect(store.get_pipeline("etl"), v3, "the latest version")
        for spec in (v1, v2, v3):
            _expect(store.get_pipeline("etl", spec.version), spec, f"version {spec.version}")
        _expect(store.get_pipeline("other"), other, "another pipeline")

    def test_unknown_pipelines_and_versions_are_not_found(self, store: PipelineStore) -> None:
        with pytest.raises(NotFoundError):
            store.get_pipeline("ghost")
        with pytest.raises(NotFoundError):
            store.get_pipeline("ghost", 1)
        store.save_pipeline(simple_spec("etl", 1))
        with pytest.raises(NotFoundError):
            store.get_pipeline("etl", 2)
        with pytest.raises(NotFoundError):
            store.get_pipeline("etl-2")

    def test_every_step_type_round_trips(self, store: PipelineStore) -> None:
        spec = every_step_type_spec()
        _expect(PipelineSpec.model_validate(spec.model_dump(mode="json")), spec, "the JSON round trip itself")
        _expect(store.save_pipeline(spec), spec, "save_pipeline's result")
        stored = store.get_pipeline(spec.id, spec.version)
        _expect(stored, spec, "get_pipeline")
        _expect(stored.model_dump(mode="json"), spec.model_dump(mode="json"), "the stored JSON")
        _expect(store.get_pipeline(spec.id), spec, "the latest version")

    def test_same_content_twice_is_a_no_op(self, store: PipelineStore) -> None:
        spec = every_step_type_spec()
        store.save_pipeline(spec)
        store.create_run(self.make_run("r1", pipeline_id=spec.id, tenant=spec.tenant))
        # An equal definition built anew (a replayed registration) is no change, runs or not.
        again = every_step_type_spec()
        assert again is not spec
        _expect(store.save_pipeline(again), spec, "saving the same content again")
        _expect(store.get_pipeline(spec.id), spec, "after the second save")

    def test_changed_content_without_runs_replaces(self, store: PipelineStore) -> None:
        store.save_pipeline(every_step_type_spec(description="first"))
        changed = every_step_type_spec(description="second")
        _expect(store.save_pipeline(changed), changed, "save_pipeline's result")
        _expect(store.get_pipeline("etl", 1), changed, "the replaced definition")

    def test_changed_content_with_runs_is_immutable_and_changes_nothing(self, store: PipelineStore) -> None:
        first = simple_spec("etl", 1)
        store.save_pipeline(first)
        run = store.create_run(self.make_run("r1"))
        with pytest.raises(ImmutableError):
            store.save_pipeline(simple_spec("etl", 1, variant=1))
        _expect(store.get_pipeline("etl", 1), first, "the definition after the refusal")
        _expect(store.get_pipeline("etl"), first, "the latest after the refusal")
        self.assert_same_run(store.get_run("r1"), run, "the run after the refusal")
        _expect(store.save_pipeline(first), first, "the same content again")  # still a no-op
        second = simple_spec("etl", 2, variant=1)  # the change, as a new version
        _expect(store.save_pipeline(second), second, "the change as version 2")
        _expect(store.get_pipeline("etl"), second, "the latest version")
        store.create_run(self.make_run("r2", version=2))
        with pytest.raises(ImmutableError):
            store.save_pipeline(simple_spec("etl", 2, variant=2))

    def test_no_reference_to_a_definition_is_kept_or_handed_out(self, store: PipelineStore) -> None:
        spec = every_step_type_spec()
        expected = every_step_type_spec()
        store.save_pipeline(spec)
        spec.labels["owner"] = "changed by the caller"  # frozen models still hold mutable dicts
        _expect(store.get_pipeline("etl"), expected, "after the caller changed its spec")
        returned = store.get_pipeline("etl")
        returned.labels["owner"] = "changed by a reader"
        _expect(store.get_pipeline("etl"), expected, "after a reader changed its copy")

    # Creating runs ---------------------------------------------------------------------------
    def test_create_run_stores_version_1_and_returns_a_copy(self, store: PipelineStore) -> None:
        store.save_pipeline(simple_spec())
        run = self.make_run("r1")
        before = copy.deepcopy(run)
        created = store.create_run(run)
        assert created is not run, "create_run returned its argument, not a copy"
        self.assert_same_run(created, self.first_version(run), "create_run's result")
        self.assert_same_run(run, before, "create_run's argument")  # left as it was (version 0)
        self.assert_same_run(store.get_run("r1"), self.first_version(run), "get_run")

    def test_create_run_is_idempotent_by_run_id(self, store: PipelineStore) -> None:
        store.save_pipeline(simple_spec())
        first = store.create_run(self.make_run("r1"))
        replay = self.make_run("r1", created=5, steps=("other",), status=RunStatus.FAILED)
        self.assert_same_run(store.create_run(replay), first, "a replayed create")
        self.assert_same_run(store.get_run("r1"), first, "the stored run after the replay")
        run = store.get_run("r1")
        store.save_run(run, ["load"])
        self.assert_same_run(store.create_run(self.make_run("r1")), run, "a replay after a save")

    def test_create_run_of_an_unknown_pipeline_version_is_not_found(self, store: PipelineStore) -> None:
        with pytest.raises(NotFoundError):
            store.create_run(self.make_run("r1"))
        store.save_pipeline(simple_spec("etl", 1))
        with pytest.raises(NotFoundError):
            store.create_run(self.make_run("r1", version=2))
        with pytest.raises(NotFoundError):
            store.create_run(self.make_run("r1", pipeline_id="etl-2"))
        with pytest.raises(NotFoundError):
            store.get_run("r1")
        self.assert_runs(store, [], "no run was stored")

    def test_get_run_returns_copies(self, store: PipelineStore) -> None:
        store.save_pipeline(simple_spec())
        run = self.make_run("r1")
        expected = self.first_version(run)
        store.create_run(run)
        run.steps["extract"].outputs["meta"]["ok"] = False  # the caller's object, after create
        run.params["items"].append("x")
        copy = store.get_run("r1")
        copy.message = "changed"
        copy.params["items"][1]["b"] = 1
        copy.steps["extract"].outputs["meta"]["none"] = "x"
        copy.steps["extract"].status = StepStatus.FAILED
        copy.steps["new"] = StepRun("new")
        del copy.steps["load"]
        self.assert_same_run(store.get_run("r1"), expected, "after changing the copies")
        self.assert_runs(store, [expected], "list_runs after changing the copies")
        listed = store.list_runs()[0]
        listed.steps["extract"].outputs["rows"] = 0
        self.assert_same_run(store.get_run("r1"), expected, "after changing a listed run")

    def test_an_unknown_run_is_not_found(self, store: PipelineStore) -> None:
        with pytest.raises(NotFoundError):
            store.get_run("ghost")
        with pytest.raises(NotFoundError):
            store.save_run(self.make_run("ghost"), ["extract"])

    # Saving runs -----------------------------------------------------------------------------
    def test_save_run_writes_the_header_and_only_the_named_steps(self, store: PipelineStore) -> None:
        run = self.stored(store, self.make_run("r1", steps=("a", "b", "c")))
        expected = copy.deepcopy(run)
        run.status, run.message, run.ended_at = RunStatus.FAILED, "b failed", self.at(3)
        run.params["n"] = 4
        run.steps["b"].status, run.steps["b"].error = StepStatus.FAILED, "boom"
        run.steps["b"].outputs = {"partial": [1, 2]}
        run.steps["c"].status = StepStatus.CANCELLED  # changed in the object, not named: not written
        returned = store.save_run(run, ["b"])
        _expect((returned.version, run.version), (2, 2), "the new version, returned and set on run")
        expected.status, expected.message, expected.ended_at = RunStatus.FAILED, "b failed", self.at(3)
        expected.params["n"] = 4
        expected.steps["b"] = copy.deepcopy(run.steps["b"])
        expected.version = 2
        self.assert_same_run(store.get_run("r1"), expected, "after save_run")
        # A header-only save (nothing named) writes the header and bumps the version.
        run.message = "header only"
        store.save_run(run, [])
        expected.message, expected.version = "header only", 3
        self.assert_same_run(store.get_run("r1"), expected, "after a header-only save")

    def test_save_run_appends_new_records_in_order(self, store: PipelineStore) -> None:
        run = self.stored(store, self.make_run("r1", steps=("loop", "after")))
        for i in (2, 0, 1):  # added out of index order: the order of run.steps is what counts
            run.steps[f"loop[{i}]"] = StepRun(f"loop[{i}]", parent="loop", index=i, item={"i": i})
        run.steps["loop"].status = StepStatus.RUNNING
        store.save_run(run, {"loop[1]", "loop", "loop[0]", "loop[2]"})
        order = ["loop", "after", "loop[2]", "loop[0]", "loop[1]"]
        _expect(list(store.get_run("r1").steps), order, "the records after the loop expanded")
        run.steps["undo"] = StepRun("undo", parent="loop")
        run.steps["unnamed"] = StepRun("unnamed")  # added, not named: not written
        store.save_run(run, ["undo", "loop[0]"])
        stored = store.get_run("r1")
        _expect(list(stored.steps), [*order, "undo"], "after one more record")
        del run.steps["unnamed"]
        self.assert_same_run(stored, run, "the stored run")

    def test_a_stale_version_conflicts_and_writes_nothing(self, store: PipelineStore) -> None:
        run = self.stored(store, self.make_run("r1"))
        first, second = store.get_run("r1"), store.get_run("r1")
        first.message = "first"
        first.steps["load"].status = StepStatus.RUNNING
        store.save_run(first, ["load"])
        expected = store.get_run("r1")
        second.message = "second"
        second.steps["extract"].outputs = {"lost": True}
        second.steps["new"] = StepRun("new")
        with pytest.raises(ConflictError) as info:
            store.save_run(second, ["extract", "new"])
        _expect((info.value.expected_version, info.value.actual_version), (1, 2), "the conflict's versions")
        _expect(second.version, 1, "the loser's version")
        self.assert_same_run(store.get_run("r1"), expected, "after the conflict")
        for version in (0, 3, 99):  # behind or ahead: only the stored version may write
            ahead = copy.deepcopy(expected)
            ahead.version = version
            with pytest.raises(ConflictError):
                store.save_run(ahead, ["load"])
        self.assert_same_run(store.get_run("r1"), expected, "after the other conflicts")
        _expect(run.version, 1, "the first copy's version")

    def test_invalid_saves_are_refused_and_write_nothing(self, store: PipelineStore) -> None:
        self.stored(store, self.make_run("r1"))
        expected = store.get_run("r1")
        naive = datetime(2030, 1, 1)
        cases: list[tuple[str, Callable[[PipelineRun], None], Collection[str]]] = [
            ("an unknown record", _header("message", "x"), ["extract", "ghost"]),
            ("one string", _header("message", "x"), "load"),
            ("another tenant", _header("tenant", "other"), []),
            ("another version", _header("pipeline_version", 2), []),
            ("another pipeline", _header("pipeline_id", "other"), []),
            ("a naive datetime", _header("ended_at", naive), []),
            ("a datetime in params", _header("params", {"at": self.at(1)}), []),
            ("a naive step time", _step("wake_at", naive), ["load"]),
            ("NaN in outputs", _step("outputs", {"x": float("nan")}), ["load"]),
            ("an infinity", _step("item", float("inf")), ["load"]),
            ("an object in outputs", _step("outputs", {"x": object()}), ["load"]),
        ]
        for what, change, changed in cases:
            run = store.get_run("r1")
            run.steps["extract"].attempt = 99
            change(run)
            with pytest.raises(ValidationError):
                store.save_run(run, changed)
            self.assert_same_run(store.get_run("r1"), expected, f"after {what}")

    def test_invalid_runs_are_not_created(self, store: PipelineStore) -> None:
        store.save_pipeline(simple_spec())
        naive = self.make_run("naive")
        naive.created_at = datetime(2030, 1, 1)
        bad_step = self.make_run("bad-step")
        bad_step.steps["load"].outputs = {"x": float("nan")}
        for run in (naive, bad_step):
            with pytest.raises(ValidationError):
                store.create_run(run)
            with pytest.raises(NotFoundError):
                store.get_run(run.run_id)

    def test_no_reference_to_a_saved_run_is_kept(self, store: PipelineStore) -> None:
        run = self.stored(store, self.make_run("r1"))
        run.steps["load"].outputs = {"nested": {"list": [1, 2]}}
        store.save_run(run, ["load"])
        expected = store.get_run("r1")
        run.steps["load"].outputs["nested"]["list"].append(3)
        run.message = "not saved"
        self.assert_same_run(store.get_run("r1"), expected, "after the caller changed what it saved")

    # Values ----------------------------------------------------------------------------------
    def test_datetimes_come_back_aware_in_utc(self, store: PipelineStore) -> None:
        india, pacific = timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))
        run = self.make_run("r1")
        run.created_at = datetime(2030, 3, 30, 14, 30, 0, 123456, tzinfo=india)
        run.timeout_at = datetime(2030, 3, 31, 2, 0, 0, 1, tzinfo=pacific)
        run.steps["load"].wake_at = datetime(2030, 3, 31, 0, 0, 0, 999999, tzinfo=pacific)
        stored = self.stored(store, run)
        self.assert_same_run(stored, self.first_version(run), "create_run")  # checks UTC too
        _expect(stored.created_at, datetime(2030, 3, 30, 9, 0, 0, 123456, tzinfo=UTC), "created_at")
        stored.steps["load"].ended_at = datetime(2030, 4, 1, 23, 59, tzinfo=india)
        store.save_run(stored, ["load"])
        again = store.get_run("r1")
        self.assert_same_run(again, stored, "after save_run")
        _expect(again.steps["load"].ended_at, datetime(2030, 4, 1, 18, 29, tzinfo=UTC), "ended_at")

    def test_outputs_round_trip_exactly(self, store: PipelineStore) -> None:
        run = self.stored(store, self.make_run("r1"))
        record = run.steps["load"]
        record.outputs = {
            "nested": {"a": [1, {"b": [None, True, False]}, []], "empty": {}},
            "unicode": '日本語 ü 😀 \t\n"quoted" \\ back',
            "none": None,
            "numbers": [0, -1, 2**63 + 1, -(10**30), 0.1, -2.5, 1e-7, 1e16, 1.2345e20, 123456789.125],
            "ключ": "значение",
            "": "empty key",
        }
        record.item, record.error, record.message = [1, "two", {"3": 3.0}], "é", "line\nbreak"
        store.save_run(run, ["load"])
        self.assert_same_run(store.get_run("r1"), run, "after save_run")

    def test_any_json_outputs_round_trip(self) -> None:
        @kit_settings(self.hypothesis_max_examples)
        @given(outputs=st.dictionaries(_TEXT, json_values, max_size=5), item=json_values, params=json_values)
        def run(outputs: dict[str, Any], item: Any, params: Any) -> None:
            store = self.make_store()
            original = self.make_run("r1")
            original.params = {"p": params}
            original.steps["extract"].outputs = outputs
            created = self.stored(store, original)
            self.assert_same_run(created, self.first_version(original), "create_run")
            created.steps["load"].item = item
            created.steps["load"].outputs = dict(outputs)
            store.save_run(created, ["load"])
            self.assert_same_run(store.get_run("r1"), created, "after save_run")

        run()

    def test_a_run_with_1000_steps_round_trips(self, store: PipelineStore) -> None:
        ids = [f"step-{i:04d}" for i in range(1000)]
        run = self.make_run("big", steps=ids)
        for i, step_id in enumerate(ids):
            run.steps[step_id].outputs = {"i": i, "half": i / 2, "tag": f"t{i % 7}"}
        created = self.stored(store, run)
        self.assert_same_run(created, self.first_version(run), "create_run")
        self.assert_same_run(store.get_run("big"), self.first_version(run), "get_run")
        changed = ids[::97]
        for step_id in changed:
            created.steps[step_id].status = StepStatus.COMPLETED
        for i in range(3):
            created.steps[f"loop[{i}]"] = StepRun(f"loop[{i}]", index=i)
        store.save_run(created, [*changed, "loop[0]", "loop[1]", "loop[2]"])
        self.assert_same_run(store.get_run("big"), created, "after saving 14 of 1003 records")
        self.assert_runs(store, [created], "list_runs")

    # Listing ---------------------------------------------------------------------------------
    def test_list_runs_filters_and_orders(self, store: PipelineStore) -> None:
        for pipeline_id in ("p", "q"):
            store.save_pipeline(simple_spec(pipeline_id))
        specs = [
            ("r-late", "p", "t1", 30, RunStatus.RUNNING),
            ("r-b", "p", "t2", 10, RunStatus.SUCCEEDED),
            ("r-a", "q", "t1", 10, RunStatus.FAILED),  # same created_at as r-b: run_id decides
            ("r-A", "p", "t1", 10, RunStatus.RUNNING),  # bytewise: 'A' < 'a' < 'b'
            ("r-none", "q", "t2", None, RunStatus.RUNNING),  # no created_at: last
            ("r-early", "q", "t1", -5, RunStatus.CANCELLED),
        ]
        runs = {}
        for run_id, pipeline_id, tenant, created, status in reversed(specs):
            made = self.make_run(
                run_id, pipeline_id=pipeline_id, tenant=tenant, created=created, status=status
            )
            runs[run_id] = store.create_run(made)
        cases: list[tuple[dict[str, Any], list[str]]] = [
            ({}, ["r-early", "r-A", "r-a", "r-b", "r-late", "r-none"]),
            ({"pipeline_id": "p"}, ["r-A", "r-b", "r-late"]),
            ({"pipeline_id": "nope"}, []),
            ({"tenant": "t2"}, ["r-b", "r-none"]),
            ({"statuses": [RunStatus.RUNNING]}, ["r-A", "r-late", "r-none"]),
            ({"statuses": {RunStatus.FAILED, RunStatus.CANCELLED}}, ["r-early", "r-a"]),
            ({"statuses": ()}, []),
            ({"pipeline_id": "q", "tenant": "t1"}, ["r-early", "r-a"]),
            ({"pipeline_id": "q", "tenant": "t2", "statuses": [RunStatus.RUNNING]}, ["r-none"]),
            ({"pipeline_id": "p", "statuses": [RunStatus.FAILED]}, []),
        ]
        for filters, expected in cases:
            self.assert_runs(store, [runs[r] for r in expected], f"list_runs({filters})", **filters)
        run = store.get_run("r-late")
        run.status = RunStatus.SUCCEEDED
        store.save_run(run, [])
        self.assert_runs(
            store, [runs["r-b"], run], "succeeded runs after a save", statuses=[RunStatus.SUCCEEDED]
        )

    # Properties --------------------------------------------------------------------------------
    def test_random_operation_sequences_match_a_model(self) -> None:
        @kit_settings(self.hypothesis_max_examples)
        @given(data=st.data())
        def run(data: st.DataObject) -> None:
            _ModelRun(self, self.make_store(), data).run()

        run()

    # Races (shared backends: concurrent_savers >= 2) -------------------------------------------
    def race(self, store: PipelineStore, target: Callable[[PipelineStore, int], None]) -> None:
        """Run ``target(handle, i)`` in ``concurrent_savers`` threads released at once, each with
        its own :meth:`share` handle; re-raise the first failure."""
        n = self.concurrent_savers
        if n < 2:
            pytest.skip("concurrent_savers < 2: this store is not meant to be shared")
        race_threads([self.share(store) for _ in range(n)], target, what="saving")

    def test_racing_saves_from_one_version_exactly_one_wins(self) -> None:
        for round_ in range(self.race_rounds):  # a race lost by luck in one round is won in another
            self._race_from_one_version(f"round {round_}")

    def _race_from_one_version(self, what: str) -> None:
        store = self.make_store()
        self.stored(store, self.make_run("r1", steps=("a", "b")))
        n = max(self.concurrent_savers, 2)
        copies = [store.get_run("r1") for _ in range(n)]
        winners: list[int] = []
        conflicts: list[ConflictError] = []
        lock = threading.Lock()

        def save(handle: PipelineStore, i: int) -> None:
            run = copies[i]
            run.message = f"writer {i}"
            run.steps["a"].outputs = {"writer": i}
            run.steps[f"w{i}"] = StepRun(f"w{i}", attempt=i)
            try:
                handle.save_run(run, ["a", f"w{i}"])
            except ConflictError as exc:
                with lock:
                    conflicts.append(exc)
                return
            with lock:
                winners.append(i)

        self.race(store, save)
        _expect(len(winners), 1, f"{what}: saves from version 1 that succeeded")
        _expect(len(conflicts), self.concurrent_savers - 1, f"{what}: conflicts")
        for conflict in conflicts:
            _expect((conflict.expected_version, conflict.actual_version), (1, 2), f"{what}: a conflict")
        self.assert_same_run(store.get_run("r1"), copies[winners[0]], f"{what}: the winner's run")

    def test_racing_read_modify_write_loops_all_land(self, store: PipelineStore) -> None:
        base = self.make_run("r1", steps=("shared",))
        base.steps["shared"].outputs = {"count": 0}
        self.stored(store, base)
        rounds = 5
        saved = [0] * max(self.concurrent_savers, 2)

        def work(handle: PipelineStore, i: int) -> None:
            done = 0
            while done < rounds:
                run = handle.get_run("r1")
                run.steps["shared"].outputs = {"count": run.steps["shared"].outputs["count"] + 1}
                mine = run.steps.setdefault(f"w{i}", StepRun(f"w{i}"))
                mine.attempt += 1
                run.message = f"last: writer {i}"
                try:
                    handle.save_run(run, ["shared", f"w{i}"])
                except ConflictError:
                    continue  # another writer moved the run on: read it again
                done += 1
                saved[i] = done

        self.race(store, work)
        total = rounds * self.concurrent_savers
        _expect(sum(saved), total, "saves that succeeded")
        final = store.get_run("r1")
        _expect(final.version, 1 + total, "the final version: one per successful save")
        _expect(final.steps["shared"].outputs, {"count": total}, "the shared counter: no lost update")
        for i in range(self.concurrent_savers):
            _expect(final.steps[f"w{i}"].attempt, rounds, f"writer {i}'s own record")

    def test_racing_creates_of_one_run_id_store_one_run(self, store: PipelineStore) -> None:
        store.save_pipeline(simple_spec())
        results: list[PipelineRun] = []
        lock = threading.Lock()

        def create(handle: PipelineStore, i: int) -> None:
            created = handle.create_run(self.make_run("r1", created=i, steps=[f"s{i}"]))
            with lock:
                results.append(created)

        self.race(store, create)
        stored = store.get_run("r1")
        _expect(stored.version, 1, "the stored run's version")
        for result in results:
            self.assert_same_run(result, stored, "what each creator got back")
        self.assert_runs(store, [stored], "one run stored")

    def test_racing_runs_and_a_definition_change_stay_consistent(self, store: PipelineStore) -> None:
        """A change of a definition racing runs being created of it: it lands (no run existed yet)
        or is refused (one did), nothing deadlocks, and afterwards the version is immutable."""
        first = simple_spec("etl", 1)
        store.save_pipeline(first)
        changed = simple_spec("etl", 1, variant=1)
        outcome: list[str] = []

        def act(handle: PipelineStore, i: int) -> None:
            if i == 0:
                try:
                    handle.save_pipeline(changed)
                    outcome.append("changed")
                except ImmutableError:
                    outcome.append("refused")
            else:
                handle.create_run(self.make_run(f"r{i}"))

        self.race(store, act)
        definition = store.get_pipeline("etl", 1)
        _expect(definition, changed if outcome == ["changed"] else first, f"the definition ({outcome})")
        _expect(len(store.list_runs()), self.concurrent_savers - 1, "the runs created")
        with pytest.raises(ImmutableError):  # runs exist now, whichever won
            store.save_pipeline(simple_spec("etl", 1, variant=2))


def _header(name: str, value: object) -> Callable[[PipelineRun], None]:
    """A change of the run's header field ``name`` to ``value``."""
    return lambda run: setattr(run, name, value)


def _step(name: str, value: object) -> Callable[[PipelineRun], None]:
    """A change of the ``load`` step record's field ``name`` to ``value``."""
    return lambda run: setattr(run.steps["load"], name, value)


class _ModelRun:
    """One example of the kit's ``test_random_operation_sequences_match_a_model``: random
    operations on the store and on a dict model, every answer compared."""

    PIPELINES = ("p", "q")
    RUNS = ("r0", "r1", "r2", "r3")
    TENANTS = ("t1", "t2")

    def __init__(self, kit: PipelineStoreConformance, store: PipelineStore, data: st.DataObject) -> None:
        self.kit, self.store, self.data = kit, store, data
        self.specs: dict[tuple[str, int], PipelineSpec] = {}
        self.runs: dict[str, PipelineRun] = {}
        self.added = 0

    def draw(self, strategy: st.SearchStrategy[Any], label: str) -> Any:
        return self.data.draw(strategy, label=label)

    def run(self) -> None:
        operations: Mapping[str, Callable[[str], None]] = {
            "save_pipeline": self.save_pipeline,
            "get_pipeline": self.get_pipeline,
            "create_run": self.create_run,
            "save_run": self.save_run,
            "get_run": self.get_run,
            "list_runs": self.list_runs,
        }
        weights = ["save_pipeline"] * 2 + ["create_run"] * 3 + ["save_run"] * 5 + [
            "get_pipeline", "get_run", "list_runs"
        ]  # fmt: skip
        for step in range(self.draw(st.integers(1, 30), "operations")):
            name = self.draw(st.sampled_from(weights), "op")
            operations[name](f"step {step}: {name}")
            ordered = sorted(self.runs.values(), key=_order)
            self.kit.assert_runs(self.store, ordered, f"step {step}: every run")

    def save_pipeline(self, what: str) -> None:
        pipeline_id = self.draw(st.sampled_from(self.PIPELINES), "pipeline")
        version = self.draw(st.integers(1, 2), "version")
        spec = simple_spec(pipeline_id, version, self.draw(st.integers(0, 1), "variant"))
        key = (pipeline_id, version)
        used = any((r.pipeline_id, r.pipeline_version) == key for r in self.runs.values())
        if key in self.specs and self.specs[key] != spec and used:
            with pytest.raises(ImmutableError):
                self.store.save_pipeline(spec)
        else:
            _expect(self.store.save_pipeline(spec), spec, what)
            self.specs[key] = spec

    def get_pipeline(self, what: str) -> None:
        pipeline_id = self.draw(st.sampled_from(self.PIPELINES), "pipeline")
        version = self.draw(st.sampled_from((None, 1, 2)), "version")
        versions = [v for (p, v) in self.specs if p == pipeline_id]
        wanted = version if version is not None else max(versions, default=None)
        expected = None if wanted is None else self.specs.get((pipeline_id, wanted))
        if expected is None:
            with pytest.raises(NotFoundError):
                self.store.get_pipeline(pipeline_id, version)
        else:
            _expect(self.store.get_pipeline(pipeline_id, version), expected, what)

    def create_run(self, what: str) -> None:
        run_id = self.draw(st.sampled_from(self.RUNS), "run")
        run = self.kit.make_run(
            run_id,
            pipeline_id=self.draw(st.sampled_from(self.PIPELINES), "pipeline"),
            version=self.draw(st.integers(1, 2), "version"),
            tenant=self.draw(st.sampled_from(self.TENANTS), "tenant"),
            created=self.draw(st.sampled_from((0, 1, None)), "created"),
            status=self.draw(st.sampled_from(list(RunStatus)), "status"),
        )
        if run_id in self.runs:
            self.kit.assert_same_run(self.store.create_run(run), self.runs[run_id], f"{what}: a replay")
        elif (run.pipeline_id, run.pipeline_version) not in self.specs:
            with pytest.raises(NotFoundError):
                self.store.create_run(run)
        else:
            expected = self.kit.first_version(run)
            self.kit.assert_same_run(self.store.create_run(run), expected, what)
            self.runs[run_id] = expected

    def save_run(self, what: str) -> None:
        run_id = self.draw(st.sampled_from(self.RUNS), "run")
        if run_id not in self.runs:
            with pytest.raises(NotFoundError):
                self.store.save_run(self.kit.make_run(run_id), [])
            return
        stored = self.runs[run_id]
        run = copy.deepcopy(stored)
        run.version += self.draw(st.sampled_from((0, 0, 0, -1, 1)), "version offset")
        run.message = self.draw(st.none() | _TEXT, "message")
        run.status = self.draw(st.sampled_from(list(RunStatus)), "status")
        named = set()
        for step_id in list(run.steps):
            choice = self.draw(st.sampled_from(("keep", "named", "unnamed")), f"change {step_id}")
            if choice != "keep":
                run.steps[step_id].outputs = {"value": self.draw(json_values, "outputs")}
                if choice == "named":
                    named.add(step_id)
        for _ in range(self.draw(st.integers(0, 2), "new records")):
            self.added += 1
            step_id = f"new-{self.added}"
            run.steps[step_id] = StepRun(step_id, attempt=self.added)
            if self.draw(st.booleans(), f"name {step_id}"):
                named.add(step_id)
        if run.version != stored.version:
            with pytest.raises(ConflictError):
                self.store.save_run(run, named)
            return
        expected = copy.deepcopy(run)  # the header as saved, then the records: stored ones and named ones
        expected.steps = {}
        for step_id, record in run.steps.items():
            if step_id in stored.steps:
                expected.steps[step_id] = copy.deepcopy(record if step_id in named else stored.steps[step_id])
        for step_id, record in run.steps.items():
            if step_id in named and step_id not in stored.steps:
                expected.steps[step_id] = copy.deepcopy(record)
        expected.version += 1
        returned = self.store.save_run(run, named)
        _expect((returned.version, run.version), (expected.version, expected.version), f"{what}: versions")
        self.kit.assert_same_run(self.store.get_run(run_id), expected, what)
        self.runs[run_id] = expected

    def get_run(self, what: str) -> None:
        run_id = self.draw(st.sampled_from(self.RUNS), "run")
        if run_id in self.runs:
            self.kit.assert_same_run(self.store.get_run(run_id), self.runs[run_id], what)
        else:
            with pytest.raises(NotFoundError):
                self.store.get_run(run_id)

    def list_runs(self, what: str) -> None:
        pipeline_id = self.draw(st.sampled_from((None, *self.PIPELINES)), "pipeline filter")
        tenant = self.draw(st.sampled_from((None, *self.TENANTS)), "tenant filter")
        statuses = self.draw(st.none() | st.sets(st.sampled_from(list(RunStatus)), max_size=3), "statuses")
        expected = [
            r
            for r in sorted(self.runs.values(), key=_order)
            if pipeline_id in (None, r.pipeline_id)
            and tenant in (None, r.tenant)
            and (statuses is None or r.status in statuses)
        ]
        filters = {"pipeline_id": pipeline_id, "tenant": tenant, "statuses": statuses}
        self.kit.assert_runs(self.store, expected, f"{what}({filters})", **filters)


def _order(run: PipelineRun) -> tuple[bool, datetime, str]:
    """``(created_at, run_id)``, runs without ``created_at`` last."""
    return (run.created_at is None, run.created_at or datetime.min.replace(tzinfo=UTC), run.run_id)
