"""The pipeline model: step configs and their seeds' defaults, parameters, triggers, the JSON round trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
import pytest

from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.domain.job import JobType
from budcore.domain.priority import JobPriority
from budcore.pipeline.model import (
    ApiCallStepConfig,
    ConditionStepConfig,
    JobStepConfig,
    LoopStepConfig,
    NotificationStepConfig,
    OnFailure,
    ParameterSpec,
    PipelineSpec,
    RetryPolicy,
    StepType,
    TransformStepConfig,
    TriggerType,
    WaitStepConfig,
)

FN: dict[str, Any] = {"id": "a", "type": "function", "config": {"function": "f"}}


def spec(**fields: Any) -> PipelineSpec:
    data: dict[str, Any] = {"id": "p", "steps": [FN], **fields}
    return PipelineSpec.model_validate(data)


def refused(data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(pydantic.ValidationError) as caught:
        PipelineSpec.model_validate(data)
    return [(tuple(e["loc"]), e["msg"]) for e in caught.value.errors()]


def one_step(step: dict[str, Any]) -> Any:
    return PipelineSpec.model_validate({"id": "p", "steps": [step]}).steps[0]


# Configs and the seeds' defaults ---------------------------------------------------------------------
def test_api_call_defaults_are_the_seeds() -> None:
    step = one_step({"id": "call", "type": "api_call", "config": {"url": "http://budsim/api/v1/optimize"}})
    config = step.config
    assert isinstance(config, ApiCallStepConfig)
    assert config.timeout_seconds == 30.0
    assert config.retry_count == 3
    assert config.method == "POST"
    assert config.expect_status == ()


def test_wait_defaults_to_an_hour_timeout_and_needs_one_kind() -> None:
    config = one_step({"id": "w", "type": "wait", "config": {"wait_for_event": "approved"}}).config
    assert isinstance(config, WaitStepConfig)
    assert config.timeout_seconds == 3600.0
    assert config.duration_seconds is None
    errors = refused({"id": "p", "steps": [{"id": "w", "type": "wait", "config": {}}]})
    assert any("either duration_seconds or wait_for_event" in msg for _, msg in errors)
    both = {"duration_seconds": 5, "wait_for_event": "x"}
    errors = refused({"id": "p", "steps": [{"id": "w", "type": "wait", "config": both}]})
    assert any("either duration_seconds or wait_for_event" in msg for _, msg in errors)


def test_job_defaults() -> None:
    config = one_step({"id": "j", "type": "job", "config": {}}).config
    assert isinstance(config, JobStepConfig)
    assert (config.job_type, config.priority, config.gpu_count) == (JobType.BATCH, JobPriority.NORMAL, 0)
    assert (config.cpu_cores, config.memory_gb, config.pods) == (1.0, 4.0, 1)


def test_upper_case_seeds_spellings_are_accepted() -> None:
    step = one_step(
        {
            "id": "step-4",
            "step_type": "JOB",
            "condition": "{{ params.on }}",
            "config": {
                "job_type": "SERVICE",
                "deployment_type": "MODEL",
                "priority": "HIGH",
                "gpu_type": "nvidia-a100-80gb",
                "gpu_count": 2,
            },
        }
    )
    assert step.type is StepType.JOB
    assert step.when == "{{ params.on }}"
    config = step.config
    assert isinstance(config, JobStepConfig)
    assert config.job_type is JobType.SERVICE
    assert config.deployment_type == "model"
    assert config.priority is JobPriority.HIGH
    call = one_step({"id": "c", "step_type": "API_CALL", "config": {"url": "http://x", "method": "get"}})
    assert call.type is StepType.API_CALL
    assert call.config.method == "GET"
    note = one_step(
        {
            "id": "n",
            "type": "NOTIFICATION",
            "config": {"channel": "slack", "message": "hi", "severity": "ERROR"},
        }
    )
    assert isinstance(note.config, NotificationStepConfig)
    assert note.config.severity == "error"
    assert spec(on_failure="ROLLBACK").on_failure is OnFailure.ROLLBACK


def test_seeds_and_budcore_spellings_together_are_refused() -> None:
    errors = refused(
        {"id": "p", "steps": [{"id": "a", "type": "function", "step_type": "FUNCTION", "config": {}}]}
    )
    assert any("'type' or 'step_type'" in msg for _, msg in errors)
    errors = refused({"id": "p", "steps": [{**FN, "when": "{{ 1 }}", "condition": "{{ 1 }}"}]})
    assert any("'when' or 'condition'" in msg for _, msg in errors)


def test_durations_are_read_in_any_form() -> None:
    step = one_step(
        {
            "id": "w",
            "type": "wait",
            "timeout": "2h",
            "config": {"duration_seconds": "1h30m"},
            "retries": {"max_retries": 2, "backoff": "30s"},
        }
    )
    assert step.config.duration_seconds == 5400.0
    assert step.timeout == 7200.0
    assert step.retries.backoff == 30.0


def test_retry_policy_backoff_is_exponential_and_capped() -> None:
    policy = RetryPolicy(max_retries=5, backoff=10, factor=2, max_backoff=60)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]


def test_config_errors_sit_at_their_field() -> None:
    errors = refused({"id": "p", "steps": [{"id": "j", "type": "job", "config": {"gpu_count": -1}}]})
    assert [loc for loc, _ in errors] == [("steps", 0, "config", "job", "gpu_count")]
    errors = refused({"id": "p", "steps": [{"id": "j", "type": "job", "config": {"gpus": 1}}]})
    assert errors[0][0][-1] == "gpus"  # extra fields are refused, not ignored


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({**FN, "depends_on": ["a"]}, "depends on itself"),
        ({**FN, "id": "a", "depends_on": ["b", "b"]}, "lists a step twice"),
        ({**FN, "outputs": ["x", "x"]}, "lists a name twice"),
        ({**FN, "id": "-bad"}, "invalid step id"),
        ({"id": "t", "type": "transform", "config": {}}, "needs 'values'"),
        (
            {"id": "c", "type": "condition", "retries": {"max_retries": 1}, "config": {"expression": "x"}},
            "nothing to retry",
        ),
        (
            {
                "id": "c",
                "type": "condition",
                "config": {"expression": "x", "then_steps": ["a"], "else_steps": ["a"]},
            },
            "both then_steps and else_steps",
        ),
        ({"id": "j", "type": "job", "config": {"time_window_start": "22:00"}}, "go together"),
        (
            {
                "id": "j",
                "type": "job",
                "config": {"estimated_duration_seconds": 10, "max_duration_seconds": 5},
            },
            "exceeds max_duration",
        ),
        ({"id": "x", "type": "teleport", "config": {}}, "Input should be 'job'"),
    ],
)
def test_step_rules(step: dict[str, Any], message: str) -> None:
    errors = refused({"id": "p", "steps": [step]})
    assert any(message in msg for _, msg in errors), errors


def test_a_pipeline_needs_steps() -> None:
    errors = refused({"id": "p", "steps": []})
    assert any("at least one step" in msg for _, msg in errors)


def test_name_defaults_to_id_and_deadline_may_be_a_duration() -> None:
    pipeline = spec(deadline="6h", timeout="1h")
    assert pipeline.name == "p"
    assert pipeline.timeout == 3600.0
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert pipeline.deadline_for(start) == start + timedelta(hours=6)
    fixed = spec(deadline="2026-02-01T00:00:00Z")
    assert fixed.deadline_for(start) == datetime(2026, 2, 1, tzinfo=UTC)


# Loop bodies and compensations are leaves ------------------------------------------------------------
@pytest.mark.parametrize("kind", ["condition", "parallel", "loop"])
def test_loop_body_must_be_a_leaf(kind: str) -> None:
    configs = {
        "condition": {"expression": "{{ true }}"},
        "parallel": {"steps": ["a"]},
        "loop": {"items": [1], "step": {"type": "function", "config": {"function": "f"}}},
    }
    loop = {
        "id": "l",
        "type": "loop",
        "config": {"items": [1, 2], "step": {"type": kind, "config": configs[kind]}},
    }
    errors = refused({"id": "p", "steps": [loop]})
    assert any(loc[:4] == ("steps", 0, "config", "loop") and kind in msg for loc, msg in errors), errors


@pytest.mark.parametrize("kind", ["condition", "parallel"])
def test_compensation_must_be_a_leaf(kind: str) -> None:
    configs = {"condition": {"expression": "{{ true }}"}, "parallel": {"steps": ["a"]}}
    step = {**FN, "compensate": {"type": kind, "config": configs[kind]}}
    errors = refused({"id": "p", "steps": [step]})
    assert any(loc[:3] == ("steps", 0, "compensate") and kind in msg for loc, msg in errors), errors


def test_leaf_loop_body_and_compensation_are_accepted() -> None:
    loop = one_step(
        {
            "id": "l",
            "type": "loop",
            "config": {
                "items": [1, 2, 3],
                "max_concurrency": 2,
                "step": {"type": "JOB", "config": {"job_type": "BATCH", "gpu_count": 1}},
            },
            "compensate": {"type": "notification", "config": {"channel": "slack", "message": "undo"}},
        }
    )
    assert isinstance(loop.config, LoopStepConfig)
    assert loop.config.step.type is StepType.JOB
    assert isinstance(loop.config.step.config, JobStepConfig)
    assert loop.compensate is not None and loop.compensate.type is StepType.NOTIFICATION


def test_loop_items_must_be_a_list_or_template_within_max_items() -> None:
    body = {"type": "function", "config": {"function": "f"}}
    errors = refused(
        {"id": "p", "steps": [{"id": "l", "type": "loop", "config": {"items": 3, "step": body}}]}
    )
    assert any("items must be a list" in msg for _, msg in errors)
    many = {"items": [1, 2, 3], "max_items": 2, "step": body}
    errors = refused({"id": "p", "steps": [{"id": "l", "type": "loop", "config": many}]})
    assert any("exceed max_items" in msg for _, msg in errors)
    templated = one_step({"id": "l", "type": "loop", "config": {"items": "{{ params.xs }}", "step": body}})
    assert templated.config.items == "{{ params.xs }}"


# Parameters -------------------------------------------------------------------------------------------
def test_parameters_typed_with_defaults_and_shorthand() -> None:
    pipeline = spec(
        parameters={
            "llm_model": "meta-llama/Llama-3.3-70B-Instruct",
            "replicas": 2,
            "ratio": 0.5,
            "enable_reranker": True,
            "zones": ["a", "b"],
            "extra": {"k": "v"},
            "budget": {"type": "number"},
            "tier": {"type": "string", "default": "gold", "choices": ["gold", "silver"]},
        }
    )
    types = {name: p.type for name, p in pipeline.parameters.items()}
    assert types == {
        "llm_model": "string",
        "replicas": "integer",
        "ratio": "number",
        "enable_reranker": "boolean",
        "zones": "list",
        "extra": "object",
        "budget": "number",
        "tier": "string",
    }
    assert pipeline.parameters["budget"].required
    assert not pipeline.parameters["replicas"].required
    values = pipeline.resolve_parameters({"budget": 7, "replicas": 3})
    assert values == {
        "llm_model": "meta-llama/Llama-3.3-70B-Instruct",
        "replicas": 3,
        "ratio": 0.5,
        "enable_reranker": True,
        "zones": ["a", "b"],
        "extra": {"k": "v"},
        "budget": 7,  # an integer is a number
        "tier": "gold",
    }


def test_resolve_parameters_reports_every_problem_at_once() -> None:
    pipeline = spec(parameters={"n": 3, "flag": False, "model": {"type": "string"}})
    with pytest.raises(ValidationErrors) as caught:
        pipeline.resolve_parameters({"n": "three", "flag": 1, "nope": 1, "also": 2})
    by_path = {e.path: e.message for e in caught.value.errors}
    assert set(by_path) == {"params.also", "params.nope", "params.n", "params.flag", "params.model"}
    assert "unknown parameter" in by_path["params.nope"]
    assert "known: flag, model, n" in by_path["params.nope"]
    assert "expected integer" in by_path["params.n"]
    assert "expected boolean" in by_path["params.flag"]
    assert "required" in by_path["params.model"]


@pytest.mark.parametrize(
    ("kind", "value"),
    [("integer", True), ("integer", 1.5), ("number", False), ("string", 3), ("list", "ab"), ("object", [1])],
)
def test_parameter_type_checks(kind: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=f"expected {kind}"):
        ParameterSpec(type=kind).check(value, "params.x")  # type: ignore[arg-type]


def test_parameter_choices_and_bad_defaults() -> None:
    param = ParameterSpec(type="string", choices=("a", "b"))
    with pytest.raises(ValidationError, match="not one of"):
        param.check("c", "params.x")
    assert param.check("a", "params.x") == "a"
    errors = refused({"id": "p", "parameters": {"n": {"type": "integer", "default": "x"}}, "steps": [FN]})
    assert any("expected integer" in msg for _, msg in errors)
    errors = refused({"id": "p", "parameters": {"n": None}, "steps": [FN]})
    assert any("needs a default value" in msg for _, msg in errors)


# Triggers ---------------------------------------------------------------------------------------------
def test_trigger_default_is_manual() -> None:
    assert spec().trigger.type is TriggerType.MANUAL


@pytest.mark.parametrize("cron", ["0 2 * * *", "*/15 * * * 1-5", "@daily"])
def test_valid_cron_triggers(cron: str) -> None:
    trigger = spec(trigger={"type": "schedule", "cron": cron, "timezone": "Europe/Berlin"}).trigger
    assert (trigger.type, trigger.cron) == (TriggerType.SCHEDULE, cron)


def test_seeds_scheduled_spelling() -> None:
    assert spec(trigger={"type": "SCHEDULED", "cron": "0 2 * * *"}).trigger.type is TriggerType.SCHEDULE


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ({"type": "schedule", "cron": "0 2 * *"}, "has 4 fields; expected 5"),
        ({"type": "schedule", "cron": "0 2 * * * *"}, "has 6 fields; expected 5"),
        ({"type": "schedule", "cron": "61 2 * * *"}, "invalid cron expression"),
        ({"type": "schedule"}, "needs 'cron'"),
        ({"type": "schedule", "cron": "0 2 * * *", "timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"type": "event"}, "needs 'event'"),
        ({"type": "after"}, "needs 'pipeline'"),
        ({"type": "manual", "event": "x"}, "'event' belongs to trigger type 'event', not 'manual'"),
        ({"type": "event", "event": "x", "cron": "0 2 * * *"}, "'cron' belongs to trigger type 'schedule'"),
        ({"type": "after", "pipeline": "x", "on": ["sometimes"]}, "on"),
    ],
)
def test_invalid_triggers(trigger: dict[str, Any], message: str) -> None:
    errors = refused({"id": "p", "trigger": trigger, "steps": [FN]})
    assert any(loc[0] == "trigger" for loc, _ in errors)
    assert any(message in msg or message in loc for loc, msg in errors), errors


def test_event_and_after_triggers() -> None:
    event = spec(trigger={"type": "event", "event": "s3.object-created"}).trigger
    assert (event.type, event.event) == (TriggerType.EVENT, "s3.object-created")
    after = spec(trigger={"type": "after", "pipeline": "train", "on": ["succeeded", "partial"]}).trigger
    assert (after.type, after.pipeline, after.on) == (TriggerType.AFTER, "train", ("succeeded", "partial"))


# The JSON round trip -----------------------------------------------------------------------------------
def test_json_round_trip_is_identity() -> None:
    original = PipelineSpec.model_validate(
        {
            "id": "rt",
            "version": 3,
            "tenant": "research",
            "deadline": "6h",
            "timeout": "2h",
            "on_failure": "rollback",
            "labels": {"team": "ml"},
            "trigger": {"type": "schedule", "cron": "0 2 * * *", "timezone": "Europe/Berlin"},
            "parameters": {"n": 3, "model": {"type": "string", "description": "which"}, "xs": [1, 2]},
            "steps": [
                {
                    "id": "call",
                    "type": "api_call",
                    "config": {"url": "http://x/{{ params.n }}", "body": {"a": [1, {"b": None}]}},
                    "retries": {"max_retries": 2, "backoff": "5s"},
                    "outputs": ["config"],
                },
                {
                    "id": "deploy",
                    "type": "job",
                    "depends_on": ["call"],
                    "config": {
                        "job_type": "service",
                        "gpu_type": "nvidia-t4",
                        "gpu_count": 1,
                        "deadline": "2026-02-01T00:00:00Z",
                        "time_window_start": "22:00",
                        "time_window_end": "06:00",
                        "spec": {"cfg": "{{ steps['call'].outputs.config }}"},
                    },
                    "compensate": {
                        "type": "api_call",
                        "config": {"url": "http://x/undo", "method": "DELETE"},
                    },
                    "timeout": 600,
                },
                {
                    "id": "gate",
                    "type": "condition",
                    "config": {"expression": "{{ params.n > 1 }}", "then_steps": ["each"], "else_steps": []},
                },
                {
                    "id": "each",
                    "type": "loop",
                    "config": {
                        "items": "{{ params.xs }}",
                        "step": {"type": "wait", "config": {"duration_seconds": 1}},
                    },
                },
                {"id": "fan", "type": "parallel", "config": {"steps": ["t"], "max_concurrency": 1}},
                {"id": "t", "type": "transform", "config": {"values": {"x": 1}}, "estimated_duration": "1m"},
                {"id": "w", "type": "wait", "config": {"wait_for_event": "ok", "timeout_seconds": 60}},
                {
                    "id": "n",
                    "type": "notification",
                    "config": {"channel": "slack", "message": "m", "recipients": ["#a"]},
                },
            ],
        }
    )
    dumped = original.model_dump(mode="json")
    again = PipelineSpec.model_validate(dumped)
    assert again == original
    assert again.model_dump(mode="json") == dumped
    assert isinstance(again.steps[2].config, ConditionStepConfig)
    assert isinstance(again.steps[5].config, TransformStepConfig)
    assert again.deadline == timedelta(hours=6)
