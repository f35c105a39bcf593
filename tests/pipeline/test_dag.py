"""The pipeline graph (every validation error names its steps; implied edges; stable order) and the loader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pipeline.engine_kit import fixed_rag, seeds_rag

from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.pipeline.dag import PipelineGraph, build_graph
from budcore.pipeline.loader import load_pipeline, load_pipelines, pipeline_from_data
from budcore.pipeline.model import PipelineSpec, StepType


def f(step_id: str, *deps: str, **extra: Any) -> dict[str, Any]:
    config = {"function": "f", **extra.pop("config", {})}
    return {"id": step_id, "type": "function", "config": config, "depends_on": list(deps), **extra}


def graph(steps: list[dict[str, Any]]) -> PipelineGraph:
    return build_graph(PipelineSpec.model_validate({"id": "p", "steps": steps}))


def errors(steps: list[dict[str, Any]]) -> list[ValidationError]:
    with pytest.raises(ValidationErrors) as caught:
        graph(steps)
    return caught.value.errors


def messages(steps: list[dict[str, Any]]) -> list[str]:
    return [e.message for e in errors(steps)]


# Validation errors ---------------------------------------------------------------------------------------
def test_cycle_is_reported_with_the_cycle() -> None:
    found = errors([f("a", "c"), f("b", "a"), f("c", "b"), f("ok")])
    assert [e.message for e in found] == ["dependency cycle: a -> b -> c -> a"]
    assert found[0].path == "steps[a].depends_on"


def test_every_cycle_is_reported() -> None:
    found = messages([f("a", "b"), f("b", "a"), f("x", "z"), f("y", "x"), f("z", "y")])
    assert sorted(found) == ["dependency cycle: a -> b -> a", "dependency cycle: x -> y -> z -> x"]


def test_cycle_through_a_condition_branch() -> None:
    # 'a' is in the condition's branch (so it waits for it) and the condition depends on 'a'.
    steps = [
        f("a"),
        {
            "id": "c",
            "type": "condition",
            "depends_on": ["a"],
            "config": {"expression": "1", "then_steps": ["a"]},
        },
    ]
    [message] = messages(steps)
    assert message.startswith("dependency cycle:")
    assert "a" in message and "c" in message


def test_unknown_dependency_names_both_steps() -> None:
    [error] = errors([f("a"), f("b", "a", "ghost")])
    assert error.message == "step 'b' depends on unknown step 'ghost'"
    assert error.path == "steps[b].depends_on"


def test_duplicate_id_names_the_step_and_positions() -> None:
    [error] = errors([f("a"), f("b"), f("a")])
    assert error.message == "duplicate step id 'a' (steps 0 and 2)"
    assert error.path == "steps[2].id"


def test_reading_outputs_without_a_dependency_path_is_refused() -> None:
    [error] = errors([f("a"), f("b", config={"args": {"x": "{{ steps['a'].outputs.v }}"}})])
    assert "step 'b' reads the outputs of step 'a' but does not depend on it" in error.message
    assert "add 'a' to depends_on" in error.message
    assert error.path == "steps[b].config.args"


def test_reading_outputs_through_a_transitive_path_is_fine() -> None:
    built = graph([f("a"), f("b", "a"), f("c", "b", config={"args": {"x": "{{ steps['a'].outputs.v }}"}})])
    assert built.ancestors("c") == {"a", "b"}


def test_reading_an_unknown_step_or_itself_is_refused() -> None:
    found = messages(
        [
            f("a", config={"args": {"x": "{{ steps['nope'].outputs.v }}"}}),
            f("b", config={"args": {"x": "{{ steps['b'].outputs.v }}"}}),
        ]
    )
    assert "step 'a' reads unknown step 'nope'" in found
    assert "step 'b' reads its own outputs" in found


def test_the_seeds_rag_example_races_and_is_refused() -> None:
    """The seeds' §5.2.2 step-7 reads step-6's URL but depends only on step-2..5."""
    with pytest.raises(ValidationErrors) as caught:
        pipeline_from_data(seeds_rag(), source="rag.json")
    [error] = caught.value.errors
    assert "step 'step-7' reads the outputs of step 'step-6' but does not depend on it" in error.message
    assert error.path == "steps[6].config.spec"  # the step's index in the file
    assert error.source == "rag.json"


def test_the_fixed_rag_example_is_accepted() -> None:
    spec, built = pipeline_from_data(fixed_rag())
    assert (spec.id, spec.name) == ("pipeline-123", "deploy-enterprise-rag")
    assert "step-6" in built.dependencies["step-7"]
    assert built.branch_of["step-6"] == ("step-5", "then")
    assert built.order.index("step-6") < built.order.index("step-7") < built.order.index("step-8")


def test_condition_naming_an_unknown_step() -> None:
    [error] = errors(
        [f("a"), {"id": "c", "type": "condition", "config": {"expression": "1", "else_steps": ["a", "zz"]}}]
    )
    assert error.message == "condition 'c' names unknown step 'zz'"
    assert error.path == "steps[c].config.else_steps"


def test_step_in_branches_of_two_conditions() -> None:
    cond = {"type": "condition", "config": {"expression": "1", "then_steps": ["a"]}}
    [message] = messages([f("a"), {"id": "c1", **cond}, {"id": "c2", **cond}])
    assert message == "step 'a' is in a branch of both 'c1' and 'c2'"


def test_step_in_two_parallel_groups() -> None:
    found = errors(
        [
            f("a"),
            f("b"),
            {"id": "p1", "type": "parallel", "config": {"steps": ["a", "b"]}},
            {"id": "p2", "type": "parallel", "config": {"steps": ["b"]}},
        ]
    )
    assert [e.message for e in found] == ["step 'b' is a branch of both 'p1' and 'p2'"]
    assert found[0].path == "steps[p2].config.steps"


def test_parallel_naming_unknown_step_or_itself() -> None:
    found = messages([f("a"), {"id": "p", "type": "parallel", "config": {"steps": ["a", "p", "zz"]}}])
    assert "parallel 'p' names unknown step 'zz'" in found
    assert "parallel 'p' lists itself" in found


def test_all_problems_are_reported_together() -> None:
    found = messages([f("a", "ghost"), f("a"), f("b", config={"args": {"x": "{{ steps['a'].outputs.v }}"}})])
    assert any("duplicate step id 'a'" in m for m in found)
    assert any("unknown step 'ghost'" in m for m in found)
    assert any("reads the outputs of step 'a'" in m for m in found)


def test_computed_step_name_is_refused() -> None:
    [message] = messages([f("a"), f("b", "a", config={"args": {"x": "{{ steps[params.which].outputs.v }}"}})])
    assert "computed name" in message


def test_template_syntax_errors_name_the_field() -> None:
    [error] = errors([f("a", config={"args": {"x": "{{ params.n "}})])
    assert error.path.startswith("steps[a].config.args")


# Implied edges ---------------------------------------------------------------------------------------------
def test_branch_steps_wait_for_their_condition() -> None:
    built = graph(
        [
            f("root"),
            {
                "id": "gate",
                "type": "condition",
                "depends_on": ["root"],
                "config": {"expression": "{{ true }}", "then_steps": ["yes"], "else_steps": ["no"]},
            },
            f("yes"),
            f("no"),
        ]
    )
    assert built.dependencies["yes"] == ("gate",)
    assert built.dependencies["no"] == ("gate",)
    assert built.branch_of == {"yes": ("gate", "then"), "no": ("gate", "else")}
    assert built.dependents["gate"] == ("yes", "no")
    assert built.order == ("root", "gate", "yes", "no")


def test_parallel_branches_inherit_deps_and_the_parallel_joins() -> None:
    built = graph(
        [
            f("setup"),
            {"id": "fan", "type": "parallel", "depends_on": ["setup"], "config": {"steps": ["x", "y"]}},
            f("x"),
            f("y", "other"),
            f("other"),
            f("after", "fan"),
        ]
    )
    assert built.dependencies["x"] == ("setup",)
    assert set(built.dependencies["y"]) == {"setup", "other"}
    assert set(built.dependencies["fan"]) == {"setup", "x", "y"}
    assert built.group_of == {"x": "fan", "y": "fan"}
    assert built.descendants("setup") >= {"x", "y", "fan", "after"}
    position = {s: i for i, s in enumerate(built.order)}
    assert position["x"] < position["fan"] and position["y"] < position["fan"] < position["after"]


def test_roots_are_the_steps_without_dependencies() -> None:
    built = graph([f("a"), f("b", "a"), f("c"), f("d", "b", "c")])
    assert built.roots() == ("a", "c")
    assert built.dependents["b"] == ("d",)


# Topological order ---------------------------------------------------------------------------------------
def test_order_keeps_file_order_among_ready_steps() -> None:
    built = graph([f("z"), f("m"), f("a", "m"), f("b"), f("c", "z")])
    assert built.order == ("z", "m", "a", "b", "c")


def test_order_is_stable_for_the_same_spec() -> None:
    steps = [f(f"s{i}", *([f"s{i - 1}"] if i % 3 else [])) for i in range(30)]
    first = graph(steps).order
    assert all(graph(steps).order == first for _ in range(5))
    for step_id in first:
        for dep in graph(steps).dependencies[step_id]:
            assert first.index(dep) < first.index(step_id)


def test_order_follows_dependencies_over_file_order() -> None:
    built = graph([f("last", "first"), f("first")])
    assert built.order == ("first", "last")


# The loader ------------------------------------------------------------------------------------------------
BUDCORE_YAML = """\
apiVersion: budcore.io/v1alpha1
kind: Pipeline
metadata:
  name: train
  namespace: research
  labels: {team: ml}
spec:
  on_failure: continue
  parameters:
    epochs: 3
  steps:
    - id: prep
      type: function
      config:
        function: prep
    - id: fit
      type: job
      depends_on: [prep]
      config:
        gpu_count: 2
        gpu_type: nvidia-h100
        estimated_duration_seconds: 1h
"""


def test_loader_error_carries_file_line_and_field_path(tmp_path: Path) -> None:
    bad = BUDCORE_YAML.replace("gpu_count: 2", "gpu_count: -2")
    path = tmp_path / "train.yaml"
    path.write_text(bad)
    line = bad.splitlines().index("        gpu_count: -2") + 1
    with pytest.raises(ValidationErrors) as caught:
        load_pipeline(path)
    [error] = caught.value.errors
    assert error.source is not None and error.source.endswith("train.yaml")
    assert error.line == line == 20
    assert error.path == "spec.steps[1].config.gpu_count"
    assert f"train.yaml:{line}" in str(caught.value)


def test_loader_graph_error_carries_file_and_line(tmp_path: Path) -> None:
    bad = BUDCORE_YAML.replace("depends_on: [prep]", "depends_on: [ghost]")
    path = tmp_path / "train.yaml"
    path.write_text(bad)
    with pytest.raises(ValidationErrors) as caught:
        load_pipeline(path)
    [error] = caught.value.errors
    assert error.message == "step 'fit' depends on unknown step 'ghost'"
    assert error.path == "spec.steps[1].depends_on"
    assert error.line == bad.splitlines().index("      depends_on: [ghost]") + 1
    assert error.source is not None and error.source.endswith("train.yaml")


def test_loader_reads_a_budcore_document(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text(BUDCORE_YAML)
    spec, built = load_pipeline(path)
    assert (spec.id, spec.tenant, spec.labels) == ("train", "research", {"team": "ml"})
    assert spec.on_failure.value == "continue"
    assert spec.step("fit").type is StepType.JOB
    assert built.dependencies["fit"] == ("prep",)


def test_loader_reads_plain_yaml(tmp_path: Path) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text(
        "id: plain\nsteps:\n  - id: a\n    type: function\n    config: {function: f}\n"
        "  - id: b\n    type: wait\n    depends_on: [a]\n    config: {duration_seconds: 5m}\n"
    )
    spec, built = load_pipeline(path)
    assert spec.id == "plain"
    assert built.order == ("a", "b")
    assert spec.step("b").config.duration_seconds == 300.0  # type: ignore[union-attr]


def test_loader_reads_the_seeds_json(tmp_path: Path) -> None:
    path = tmp_path / "rag.json"
    path.write_text(json.dumps(fixed_rag(), indent=2))
    spec, built = load_pipeline(path)
    assert (spec.id, spec.name) == ("pipeline-123", "deploy-enterprise-rag")
    assert spec.trigger.type.value == "manual"
    assert spec.parameters["enable_reranker"].type == "boolean"
    assert [s.id for s in spec.steps] == [f"step-{i}" for i in range(1, 9)]
    assert spec.step("step-6").when == "{{ params.enable_reranker }}"
    assert len(built.order) == 8


def test_loader_seeds_json_race_is_reported_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rag.json"
    path.write_text(json.dumps(seeds_rag(), indent=2))
    with pytest.raises(ValidationErrors) as caught:
        load_pipeline(path)
    [error] = caught.value.errors
    assert error.source == str(path)
    assert "'step-7' reads the outputs of step 'step-6'" in error.message


def test_loader_bad_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "id": "x",\n  "steps": [\n}\n')
    with pytest.raises(ValidationError) as caught:
        load_pipeline(path)
    assert caught.value.line == 4
    assert caught.value.source == str(path)


def test_loader_several_documents_in_one_file(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    one = "id: one\nsteps: [{id: a, type: function, config: {function: f}}]\n"
    two = "id: two\nsteps: [{id: b, type: function, config: {function: f}}]\n"
    path.write_text(one + "---\n" + two)
    assert [spec.id for spec, _ in load_pipelines(path)] == ["one", "two"]
    with pytest.raises(ValidationError, match="2 pipelines in one file"):
        load_pipeline(path)


def test_loader_wrong_api_version(tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    path.write_text(BUDCORE_YAML.replace("budcore.io/v1alpha1", "budcore.io/v9"))
    with pytest.raises(ValidationErrors) as caught:
        load_pipeline(path)
    assert caught.value.errors[0].path == "apiVersion"
