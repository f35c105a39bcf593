"""The pipeline engine on PostgreSQL: a run survives a restart of the engine (a new process would
build a new engine and store on the same database), and resuming never re-executes a step that
was recorded as completed; an attempt cut off by a crash is re-sent with the same idempotency key."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytest.importorskip("sqlalchemy")

from budcore_adapters.inmemory.clock import ManualClock
from budcore_adapters.postgres.pipelines import PostgresPipelineStore

from budcore.pipeline import PipelineEngine, PipelineSpec
from budcore.pipeline.functions import FunctionRegistry
from budcore.ports.pipeline_effects import StepContext

pytestmark = pytest.mark.postgres

T0 = datetime(2030, 1, 1, tzinfo=UTC)


class Crash(BaseException):
    """The process dies: not an ``Exception``, so nothing in the engine may catch it."""


class Effects:
    """Functions that record their effects by idempotency key, as a careful receiver does."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()  # raw calls per step
        self.applied: dict[str, str] = {}  # idempotency key -> step: each effect once
        self.crash_in: str | None = None

    def __call__(self, ctx: StepContext, **args: Any) -> dict[str, Any]:
        self.calls[ctx.step_id] += 1
        self.applied.setdefault(ctx.key, ctx.step_id)
        if self.crash_in == ctx.step_id:
            self.crash_in = None
            raise Crash  # after the effect, before the engine records it
        return {"done": ctx.step_id}


def pipeline() -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "id": "etl",
            "steps": [
                {"id": "extract", "type": "function", "config": {"function": "f"}},
                {
                    "id": "pause",
                    "type": "wait",
                    "depends_on": ["extract"],
                    "config": {"duration_seconds": 60},
                },
                {"id": "load", "type": "function", "depends_on": ["pause"], "config": {"function": "f"}},
                {
                    "id": "report",
                    "type": "function",
                    "depends_on": ["load"],
                    "config": {"function": "f", "args": {"of": "{{ steps['load'].outputs.done }}"}},
                },
            ],
        }
    )


def engine_on(url: str, effects: Effects, clock: ManualClock) -> PipelineEngine:
    return PipelineEngine(PostgresPipelineStore(url), clock=clock, functions=FunctionRegistry({"f": effects}))


def test_a_run_survives_a_restart_and_no_completed_step_runs_again(pg_url: str) -> None:
    effects = Effects()
    clock = ManualClock(T0)
    first = engine_on(pg_url, effects, clock)
    run = first.start(pipeline(), run_id="r1")
    assert {s: r.status.value for s, r in run.steps.items()}["pause"] == "running"
    del first  # the service stops while the run waits

    clock.set(T0 + timedelta(seconds=60))
    effects.crash_in = "load"
    second = engine_on(pg_url, effects, clock)  # a new process: a new engine and store
    with pytest.raises(Crash):
        second.advance("r1")
    stored = second.get("r1")
    assert stored.steps["load"].status.value != "completed"  # its record was not written

    third = engine_on(pg_url, effects, clock)
    finished = third.advance("r1")
    assert finished.status.value == "succeeded"
    assert finished.steps["report"].outputs == {"done": "report"}
    # Recorded steps never ran again; the cut-off attempt of "load" was re-sent once, same key.
    assert effects.calls == Counter({"extract": 1, "load": 2, "report": 1})
    assert sorted(effects.applied.values()) == ["extract", "load", "report"]
    assert finished.steps["load"].attempt == 1
