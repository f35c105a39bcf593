"""The pipeline store conformance kit against the in-memory store, in memory and backed by a JSON
file, plus what only the file adds: pipelines and runs that survive a new store object (a restarted
process), atomic writes undone in memory when they fail, a file changed by someone else refused,
clear errors for a damaged file; and the O(changed) cost of ``save_run`` the engine relies on."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from budcore_adapters.inmemory import pipelines as module
from budcore_adapters.inmemory.pipelines import InMemoryPipelineStore, PipelineFileChangedError

from budcore.domain.errors import ImmutableError, NotFoundError, ValidationError
from budcore.pipeline.state import PipelineRun, RunStatus, StepRun, StepStatus
from budcore.plugins import default_registry
from budcore.ports.pipeline_store import PipelineStore
from budcore.testing.pipelines import PipelineStoreConformance, every_step_type_spec, simple_spec

T0 = datetime(2030, 1, 1, tzinfo=UTC)


class TestInMemoryPipelineStore(PipelineStoreConformance):
    concurrent_savers = 4  # one store object shared by threads

    def make_store(self) -> PipelineStore:
        return InMemoryPipelineStore()


class TestFilePipelineStore(PipelineStoreConformance):
    """Backed by a JSON file; the racing threads share the one store object that owns the file."""

    concurrent_savers = 4

    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path: Path) -> None:
        self.directory = tmp_path
        self.opened = 0

    def make_store(self) -> PipelineStore:
        self.opened += 1  # once per test and per hypothesis example: a new, empty file each time
        return InMemoryPipelineStore(self.directory / f"pipelines-{self.opened}.json")


def make_run(run_id: str, steps: int = 3, *, version: int = 1) -> PipelineRun:
    run = PipelineRun(run_id, "etl", version, "team-a", {"n": 1}, created_at=T0, started_at=T0)
    for i in range(steps):
        run.steps[f"s{i}"] = StepRun(f"s{i}")
    return run


# What the file adds --------------------------------------------------------------------------


def test_pipelines_and_runs_survive_a_new_store_object(tmp_path: Path) -> None:
    path = tmp_path / "pipelines.json"
    first = InMemoryPipelineStore(path)
    spec = every_step_type_spec("etl", 1)
    first.save_pipeline(spec)
    first.save_pipeline(simple_spec("other", 2))
    run = first.create_run(make_run("r1", 50))
    run.status, run.message = RunStatus.FAILED, "s3 failed: ü"
    run.steps["s3"].status, run.steps["s3"].outputs = StepStatus.FAILED, {"deep": {"x": [1, None, "日本"]}}
    run.steps["s3"].wake_at = T0 + timedelta(microseconds=3)
    run.steps["loop[0]"] = StepRun("loop[0]", parent="s1", index=0, item={"k": 1.5})
    first.save_run(run, ["s3", "loop[0]"])
    other = first.create_run(make_run("r0", 2))

    second = InMemoryPipelineStore(path)  # a restarted process
    assert second.get_pipeline("etl") == spec
    assert second.get_pipeline("other", 2) == simple_spec("other", 2)
    restored = second.get_run("r1")
    assert restored == run and list(restored.steps) == list(run.steps)
    assert [r.run_id for r in second.list_runs()] == ["r0", "r1"]
    assert second.get_run("r0") == other
    with pytest.raises(ImmutableError):  # version 1 has runs, also for the new store
        second.save_pipeline(every_step_type_spec("etl", 1, description="changed"))
    restored.steps["s4"].status = StepStatus.RUNNING
    second.save_run(restored, ["s4"])  # continues from the stored version
    assert InMemoryPipelineStore(path).get_run("r1") == restored


def test_the_file_is_json_written_atomically(tmp_path: Path) -> None:
    path = tmp_path / "pipelines.json"
    store = InMemoryPipelineStore(path)
    assert json.loads(path.read_text()) == {"version": 1, "pipelines": [], "runs": []}
    store.save_pipeline(simple_spec())
    store.create_run(make_run("r1"))
    document = json.loads(path.read_text())
    assert document["version"] == 1
    assert [p["id"] for p in document["pipelines"]] == ["etl"]
    runs = [(r["version"], r["header"]["run_id"], len(r["steps"])) for r in document["runs"]]
    assert runs == [(1, "r1", 3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipelines.json", "pipelines.json.lock"]


def test_a_failed_write_is_undone_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = InMemoryPipelineStore(tmp_path / "pipelines.json")
    store.save_pipeline(simple_spec())
    store.save_pipeline(simple_spec("etl", 2))
    run = store.create_run(make_run("r1"))
    before = store.get_run("r1")

    def broken(path: Path, text: str) -> Any:
        raise ValidationError("cannot write the pipelines file: disk full", source=str(path))

    monkeypatch.setattr(module, "_write", broken)
    run.message = "not written"
    run.steps["s0"].status = StepStatus.RUNNING
    run.steps["new"] = StepRun("new")
    with pytest.raises(ValidationError, match="disk full"):
        store.save_run(run, ["s0", "new"])
    assert run.version == 1
    assert store.get_run("r1") == before and list(store.get_run("r1").steps) == ["s0", "s1", "s2"]
    with pytest.raises(ValidationError):
        store.create_run(make_run("r2"))
    with pytest.raises(NotFoundError):
        store.get_run("r2")
    with pytest.raises(ValidationError):
        store.save_pipeline(simple_spec("etl", 2, variant=1))  # replacing a version without runs
    assert store.get_pipeline("etl", 2) == simple_spec("etl", 2)
    with pytest.raises(ValidationError):
        store.save_pipeline(simple_spec("new", 1))
    with pytest.raises(NotFoundError):
        store.get_pipeline("new")
    monkeypatch.undo()
    store.save_run(run, ["s0", "new"])  # the same save, once the disk has room
    assert InMemoryPipelineStore(tmp_path / "pipelines.json").get_run("r1") == run


def test_a_file_replaced_by_another_store_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "pipelines.json"
    mine, theirs = InMemoryPipelineStore(path), InMemoryPipelineStore(path)
    theirs.save_pipeline(simple_spec("theirs"))
    with pytest.raises(PipelineFileChangedError, match="another process"):
        mine.save_pipeline(simple_spec("mine"))
    with pytest.raises(NotFoundError):
        mine.get_pipeline("mine")
    assert InMemoryPipelineStore(path).get_pipeline("theirs") == simple_spec("theirs")
    with pytest.raises(NotFoundError):
        InMemoryPipelineStore(path).get_pipeline("mine")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"version": 1, "pipelines": [', "malformed JSON"),
        ("[]", "expected a JSON object"),
        ('{"version": 2, "pipelines": [], "runs": []}', "expected a JSON object"),
        ('{"version": 1, "pipelines": [], "runs": [], "extra": 1}', "unknown keys"),
        ('{"version": 1, "pipelines": {}, "runs": []}', "expected a list"),
        ('{"version": 1, "pipelines": [{"id": "x", "steps": []}], "runs": []}', "not a valid pipeline"),
        ('{"version": 1, "pipelines": [], "runs": [{"version": 1}]}', "expected an object with keys"),
    ],
)
def test_a_damaged_file_is_a_validation_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "pipelines.json"
    path.write_text(text)
    with pytest.raises(ValidationError, match=message) as info:
        InMemoryPipelineStore(path)
    assert info.value.source == str(path)
    assert path.read_text() == text  # nothing written


def test_a_file_with_inconsistent_runs_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pipelines.json"
    store = InMemoryPipelineStore(path)
    store.save_pipeline(simple_spec())
    store.create_run(make_run("r1"))
    document = json.loads(path.read_text())
    good = path.read_text()
    document["runs"].append(document["runs"][0])
    path.write_text(json.dumps(document))
    with pytest.raises(ValidationError, match="a second run 'r1'") as info:
        InMemoryPipelineStore(path)
    assert info.value.path == "runs[1]"
    document = json.loads(good)
    document["pipelines"] = []
    path.write_text(json.dumps(document))
    with pytest.raises(ValidationError, match="which the file does not hold"):
        InMemoryPipelineStore(path)
    document = json.loads(good)
    document["runs"][0]["header"]["created_at"] = "2030-01-01T00:00:00"  # naive
    path.write_text(json.dumps(document))
    with pytest.raises(ValidationError, match="naive") as info:
        InMemoryPipelineStore(path)
    assert info.value.path.startswith("runs[0]")


def test_an_empty_file_holds_nothing_and_bad_paths_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "pipelines.json"
    path.write_text("  \n")
    assert InMemoryPipelineStore(path).list_runs() == []
    with pytest.raises(ValidationError, match="is a directory"):
        InMemoryPipelineStore(tmp_path)
    with pytest.raises(ValidationError, match="does not exist"):
        InMemoryPipelineStore(tmp_path / "missing" / "pipelines.json")


def test_the_registry_builds_both(tmp_path: Path) -> None:
    registry = default_registry()
    assert isinstance(registry.pipeline_store("inmemory"), InMemoryPipelineStore)
    path = tmp_path / "pipelines.json"
    store = registry.pipeline_store("inmemory", path=path)
    store.save_pipeline(simple_spec())
    assert InMemoryPipelineStore(path).get_pipeline("etl") == simple_spec()
    assert {r.name for r in registry.registrations("pipeline_store")} >= {"inmemory", "postgres"}


# What the engine relies on: save_run is O(changed) -------------------------------------------


@pytest.mark.parametrize("backed", [False, True], ids=["memory", "file"])
def test_save_run_encodes_only_the_changed_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backed: bool
) -> None:
    store = InMemoryPipelineStore(tmp_path / "pipelines.json" if backed else None)
    store.save_pipeline(simple_spec())
    run = store.create_run(make_run("big", 10_000))
    encoded: list[str] = []
    real = StepRun.to_dict

    def counting(self: StepRun) -> dict[str, Any]:
        encoded.append(self.step_id)
        return real(self)

    monkeypatch.setattr(StepRun, "to_dict", counting)
    for i in range(100):  # an engine saving after each step
        run.steps[f"s{i}"].status = StepStatus.COMPLETED
        store.save_run(run, [f"s{i}"])
    assert encoded == [f"s{i}" for i in range(100)]  # one record encoded per save, never the run
    monkeypatch.undo()
    assert store.get_run("big") == run
