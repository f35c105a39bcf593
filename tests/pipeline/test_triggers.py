"""Triggers: cron schedules, named events and other pipelines' ends start runs, each exactly once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from budcore_adapters.inmemory.clock import ManualClock
from budcore_adapters.inmemory.pipelines import InMemoryPipelineStore

from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.domain.validation import validate_model
from budcore.pipeline import PipelineEngine, PipelineSpec
from budcore.pipeline.cron import next_fire
from budcore.pipeline.functions import FunctionRegistry
from budcore.pipeline.triggers import TriggerBook

T0 = datetime(2026, 1, 1, 1, 0, tzinfo=UTC)


def spec(pipeline_id: str, trigger: dict[str, Any], **extra: Any) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "id": pipeline_id,
            "trigger": trigger,
            "steps": [{"id": "a", "type": "function", "config": {"function": "f"}}],
            **extra,
        }
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def engine(clock: ManualClock) -> PipelineEngine:
    return PipelineEngine(
        InMemoryPipelineStore(), clock=clock, functions=FunctionRegistry({"f": lambda ctx, **kw: {}})
    )


def test_cron_fires_follow_the_schedule_in_its_timezone() -> None:
    # 02:00 in Berlin is 01:00 UTC in winter and 00:00 UTC in summer.
    assert next_fire("0 2 * * *", T0, "Europe/Berlin") == datetime(2026, 1, 2, 1, 0, tzinfo=UTC)
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert next_fire("0 2 * * *", summer, "Europe/Berlin") == datetime(2026, 7, 2, 0, 0, tzinfo=UTC)
    assert next_fire("@hourly", T0) == datetime(2026, 1, 1, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ({"type": "schedule", "cron": "0 2 * *"}, "has 4 fields; expected 5"),
        ({"type": "schedule", "cron": "61 2 * * *"}, "invalid cron expression"),
        ({"type": "schedule", "cron": "0 2 * * *", "timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"type": "schedule"}, "trigger type 'schedule' needs 'cron'"),
        ({"type": "event"}, "trigger type 'event' needs 'event'"),
        ({"type": "manual", "event": "x"}, "'event' belongs to trigger type 'event', not 'manual'"),
    ],
)
def test_bad_triggers_are_refused_naming_the_field(trigger: dict[str, Any], message: str) -> None:
    data = {
        "id": "p",
        "trigger": trigger,
        "steps": [{"id": "a", "type": "function", "config": {"function": "f"}}],
    }
    with pytest.raises(ValidationErrors) as caught:
        validate_model(PipelineSpec, data)
    text = str(caught.value)
    assert text.startswith("trigger"), text
    assert message in text


def test_scheduled_fires_start_one_run_each_and_only_once(engine: PipelineEngine, clock: ManualClock) -> None:
    engine.register(spec("nightly", {"type": "schedule", "cron": "0 2 * * *"}))
    assert engine.triggers.next_fire() == datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
    assert engine.fire_due() == []  # 01:00: nothing due yet
    clock.set(datetime(2026, 1, 3, 3, 0, tzinfo=UTC))
    runs = engine.fire_due()
    assert [r.run_id for r in runs] == [f"nightly@2026-01-0{d}T02:00:00+00:00" for d in (1, 2, 3)]
    assert all(r.status.value == "succeeded" for r in runs)
    assert engine.fire_due() == []  # handed out once
    # Another replica seeing the same fires starts nothing new: the run ids are the fires'.
    replica = PipelineEngine(engine.store, clock=clock, functions=engine.functions)
    replica.triggers.add(engine.graph("nightly", 1).spec, T0)
    again = replica.fire_due()
    assert [r.run_id for r in again] == [r.run_id for r in runs]
    assert len(engine.store.list_runs()) == 3


def test_an_event_starts_its_pipelines_with_the_payloads_parameters(engine: PipelineEngine) -> None:
    engine.register(
        spec("ingest", {"type": "event", "event": "data-arrived"}, parameters={"path": {"type": "string"}})
    )
    engine.register(spec("other", {"type": "event", "event": "something-else"}))
    runs = engine.emit("data-arrived", {"path": "s3://bucket/x", "unrelated": 1}, key="evt-1")
    assert [(r.pipeline_id, r.params) for r in runs] == [("ingest", {"path": "s3://bucket/x"})]
    assert engine.emit("data-arrived", {"path": "s3://bucket/x"}, key="evt-1")[0].run_id == runs[0].run_id
    assert len(engine.store.list_runs()) == 1  # a redelivered event starts nothing new


def test_a_run_that_ends_starts_the_pipelines_after_it(engine: PipelineEngine) -> None:
    engine.register(spec("train", {"type": "manual"}))
    engine.register(spec("report", {"type": "after", "pipeline": "train", "on": ["succeeded"]}))
    engine.register(spec("alert", {"type": "after", "pipeline": "train", "on": ["failed"]}))
    run = engine.start("train", run_id="t1")
    assert run.status.value == "succeeded"
    runs = {r.run_id: r for r in engine.store.list_runs()}
    assert set(runs) == {"t1", "report@after:t1"}
    assert runs["report@after:t1"].status.value == "succeeded"


def test_after_triggers_that_chain_back_are_refused() -> None:
    book = TriggerBook()
    book.add(spec("a", {"type": "after", "pipeline": "b"}), T0)
    with pytest.raises(ValidationError, match=r"cycle: b -> a -> b"):
        book.add(spec("b", {"type": "after", "pipeline": "a"}), T0)


def test_notifications_go_to_the_event_sink_by_default(clock: ManualClock) -> None:
    from budcore_adapters.inmemory.events import CollectingEventSink

    from budcore.domain.events import PipelineNotified

    sink = CollectingEventSink()
    engine = PipelineEngine(InMemoryPipelineStore(), clock=clock, events=sink)
    notify = {"channel": "slack", "recipients": ["#ops"], "message": "done: {{ params.what }}"}
    spec_ = PipelineSpec.model_validate(
        {
            "id": "n",
            "tenant": "research",
            "parameters": {"what": "etl"},
            "steps": [{"id": "tell", "type": "notification", "config": notify}],
        }
    )
    run = engine.start(spec_, run_id="r1")
    assert run.status.value == "succeeded"
    assert sink.events == [
        PipelineNotified(
            tenant="research",
            pipeline_id="n",
            run_id="r1",
            step_id="tell",
            key="r1/tell/1",
            channel="slack",
            recipients=("#ops",),
            severity="info",
            message="done: etl",
            at=T0,
        )
    ]
