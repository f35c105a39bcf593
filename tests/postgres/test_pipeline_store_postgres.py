"""The pipeline store conformance kit, unchanged, against PostgreSQL (races included), plus what only
a database adds: a new engine on the same database (a restarted service) continues the runs,
engines with their own pools racing on one run, ``save_run`` rewriting only the changed rows, the
migration, and input PostgreSQL cannot store refused before anything is sent."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

pytest.importorskip("sqlalchemy")

import sqlalchemy as sa
from budcore_adapters.postgres import PoolSettings, create_engine, current_revision, downgrade, upgrade
from budcore_adapters.postgres.pipelines import PostgresPipelineStore
from budcore_adapters.postgres.schema import pipeline_runs, pipeline_steps, pipelines
from sqlalchemy.engine import Engine

from budcore.domain.errors import ConflictError, ImmutableError, ValidationError
from budcore.pipeline.state import PipelineRun, RunStatus, StepRun, StepStatus
from budcore.plugins import default_registry
from budcore.ports.pipeline_store import PipelineStore
from budcore.testing.pipelines import PipelineStoreConformance, every_step_type_spec, simple_spec

pytestmark = pytest.mark.postgres

T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url, PoolSettings(size=8, max_overflow=4))
    yield engine
    engine.dispose()


def empty(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (pipeline_steps, pipeline_runs, pipelines):
            conn.execute(sa.delete(table))


class TestPostgresPipelineStore(PipelineStoreConformance):
    # Several engines share one database: the race tests run, each thread on its own store.
    concurrent_savers = 4
    # The property tests' example count is the active hypothesis profile's (tests/conftest.py).

    @pytest.fixture(autouse=True)
    def _bind(self, engine: Engine) -> None:
        self.engine = engine

    def make_store(self) -> PipelineStore:
        empty(self.engine)
        return PostgresPipelineStore(engine=self.engine, check_schema=False)

    def share(self, store: PipelineStore) -> PipelineStore:
        return PostgresPipelineStore(engine=self.engine, check_schema=False)


def make_run(run_id: str, steps: int = 3) -> PipelineRun:
    run = PipelineRun(run_id, "etl", 1, "team-a", {"n": 1}, created_at=T0, started_at=T0)
    for i in range(steps):
        run.steps[f"s{i}"] = StepRun(f"s{i}")
    return run


def test_a_new_engine_on_the_same_database_continues_the_runs(pg_url: str, engine: Engine) -> None:
    empty(engine)
    first = PostgresPipelineStore(pg_url)  # its own engine, as a service has
    try:
        spec = every_step_type_spec("etl", 1)
        first.save_pipeline(spec)
        run = first.create_run(make_run("r1", 20))
        run.status, run.message = RunStatus.FAILED, "s3 failed"
        run.steps["s3"].status, run.steps["s3"].outputs = StepStatus.FAILED, {"error": {"code": 7}}
        run.steps["loop[0]"] = StepRun("loop[0]", parent="s1", index=0)
        first.save_run(run, ["s3", "loop[0]"])
    finally:
        first.close()
    second = PostgresPipelineStore(pg_url)  # the service restarted
    try:
        assert second.get_pipeline("etl") == spec
        restored = second.get_run("r1")
        assert restored == run and list(restored.steps) == list(run.steps)
        assert [r.run_id for r in second.list_runs(statuses=[RunStatus.FAILED])] == ["r1"]
        with pytest.raises(ImmutableError):
            second.save_pipeline(every_step_type_spec("etl", 1, description="changed"))
        restored.steps["s4"].status = StepStatus.RUNNING
        second.save_run(restored, ["s4"])
        assert second.get_run("r1").version == 3
    finally:
        second.close()


def test_four_engines_racing_on_one_run(pg_url: str, engine: Engine) -> None:
    """Four services, each with its own pool, save one run from whatever they last read; every save
    that succeeds is counted exactly once in the run, every other one is a ConflictError."""
    empty(engine)
    stores = [PostgresPipelineStore(pg_url, pool=PoolSettings(size=1, max_overflow=0)) for _ in range(4)]
    try:
        stores[0].save_pipeline(simple_spec())
        base = make_run("r1", 1)
        base.steps["s0"].outputs = {"count": 0}
        stores[0].create_run(base)
        attempts = 15
        won = [0] * 4
        lost = [0] * 4
        barrier = threading.Barrier(4)
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                barrier.wait(timeout=60)
                for _ in range(attempts):
                    run = stores[i].get_run("r1")
                    run.steps["s0"].outputs = {"count": run.steps["s0"].outputs["count"] + 1}
                    mine = run.steps.setdefault(f"w{i}", StepRun(f"w{i}"))
                    mine.attempt += 1
                    try:
                        stores[i].save_run(run, ["s0", f"w{i}"])
                    except ConflictError:
                        lost[i] += 1
                        continue
                    won[i] += 1
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        assert [w + lost_ for w, lost_ in zip(won, lost, strict=True)] == [attempts] * 4
        final = stores[0].get_run("r1")
        assert final.version == 1 + sum(won)
        assert final.steps["s0"].outputs == {"count": sum(won)}
        for i in range(4):
            if won[i]:
                assert final.steps[f"w{i}"].attempt == won[i]
            else:
                assert f"w{i}" not in final.steps
        assert next(iter(final.steps)) == "s0"  # the records added later come after it
    finally:
        for store in stores:
            store.close()


def test_save_run_rewrites_only_the_changed_rows(engine: Engine) -> None:
    empty(engine)
    store = PostgresPipelineStore(engine=engine, check_schema=False)
    store.save_pipeline(simple_spec())
    run = store.create_run(make_run("big", 2000))
    versions = sa.select(pipeline_steps.c.step_id, sa.literal_column("xmin::text")).where(
        pipeline_steps.c.run_id == "big"
    )

    def row_versions() -> dict[str, str]:
        with engine.connect() as conn:
            return {step_id: xmin for step_id, xmin in conn.execute(versions)}

    before = row_versions()
    run.steps["s7"].status = StepStatus.COMPLETED
    run.steps["s8"].status = StepStatus.RUNNING  # changed, not named
    run.steps["extra"] = StepRun("extra")
    store.save_run(run, ["s7", "extra"])
    after = row_versions()
    assert {k for k in after if after[k] != before.get(k)} == {"s7", "extra"}
    stored = store.get_run("big")
    assert stored.steps["s8"].status is StepStatus.PENDING
    assert list(stored.steps)[-1] == "extra"


def test_what_postgresql_cannot_store_is_refused_before_sending(engine: Engine) -> None:
    empty(engine)
    store = PostgresPipelineStore(engine=engine, check_schema=False)
    store.save_pipeline(simple_spec())
    run = store.create_run(make_run("r1"))
    run.steps["s1"].outputs = {"text": "a\x00b"}
    with pytest.raises(ValidationError, match="NUL") as info:
        store.save_run(run, ["s1"])
    assert info.value.path == "steps.s1.outputs.text"
    run.steps["s1"].outputs = {}
    run.params = {"p": ["\x00"]}
    with pytest.raises(ValidationError, match="NUL") as info:
        store.save_run(run, [])
    assert info.value.path == "run.params.p[0]"
    with pytest.raises(ValidationError, match="NUL"):
        store.get_run("r\x00")
    with pytest.raises(ValidationError):
        store.get_pipeline("etl", 2**31)
    with pytest.raises(ValidationError, match="NUL") as info:
        store.save_pipeline(simple_spec("etl", 3).model_copy(update={"description": "\x00"}))
    assert info.value.path == "spec.description"
    assert store.get_run("r1").version == 1


def test_the_registry_builds_the_postgres_store(pg_url: str, engine: Engine) -> None:
    empty(engine)
    store = default_registry().pipeline_store("postgres", url=pg_url)
    assert isinstance(store, PostgresPipelineStore)
    try:
        store.save_pipeline(simple_spec())
        assert PostgresPipelineStore(engine=engine).get_pipeline("etl") == simple_spec()
    finally:
        store.close()


def test_0006_adds_the_pipeline_tables_and_downgrading_removes_them(new_database: Callable[[], str]) -> None:
    url = new_database()
    upgrade(url, "0005_reservations")
    upgrade(url, "0006_pipelines")
    assert current_revision(url) == "0006_pipelines"
    store = PostgresPipelineStore(url, check_schema=False)
    try:
        store.save_pipeline(simple_spec())
        store.create_run(make_run("r1"))
    finally:
        store.close()
    downgrade(url, "0005_reservations")
    probe = create_engine(url)
    try:
        names = set(sa.inspect(probe).get_table_names())
    finally:
        probe.dispose()
    assert not names & {"budcore_pipelines", "budcore_pipeline_runs", "budcore_pipeline_steps"}
    upgrade(url, "0006_pipelines")
    store = PostgresPipelineStore(url, check_schema=False)
    try:
        assert store.list_runs() == []
    finally:
        store.close()
