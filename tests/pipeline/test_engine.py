"""The pipeline engine, step type by step type and policy by policy, on the in-memory store.

Time is a :class:`ManualClock`; functions are a recorder (:mod:`pipeline.engine_kit`); jobs go to a
fake :class:`StepJobs` the test moves by hand; ``api_call`` steps talk to a real local HTTP server.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from budcore_adapters.http import HttpxApiCaller
from pipeline.engine_kit import T0, Crash, CrashingStore, FakeJobs, Harness, fn, make_spec, only, statuses
from pipeline.httpserver import LocalHttpServer, RecordedRequest, Reply

from budcore.domain.errors import ValidationErrors
from budcore.domain.job import Job, JobPriority, JobSource, JobStatus, JobType
from budcore.pipeline.functions import BUILTIN_FUNCTIONS
from budcore.pipeline.state import RunStatus, StepStatus
from budcore.ports.pipeline_effects import StepContext


def job(step_id: str, *deps: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "type": "job",
        "config": extra.pop("config", {}),
        "depends_on": list(deps),
        **extra,
    }


def wait(
    step_id: str, *deps: str, seconds: float | None = None, event: str | None = None, **extra: Any
) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if seconds is not None:
        config["duration_seconds"] = seconds
    if event is not None:
        config["wait_for_event"] = event
    config.update(extra.pop("config", {}))
    return {"id": step_id, "type": "wait", "config": config, "depends_on": list(deps), **extra}


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    with LocalHttpServer() as running:
        yield running


@pytest.fixture
def api() -> Iterator[HttpxApiCaller]:
    with HttpxApiCaller(trust_env=False) as caller:
        yield caller


# Synchronous steps ---------------------------------------------------------------------------------------
def test_function_gets_rendered_args_and_context_and_publishes_outputs() -> None:
    h = Harness()
    spec = make_spec(
        [fn("a", args={"n": "{{ params.n }}"}), fn("b", "a", args={"v": "{{ steps['a'].outputs.n * 2 }}"})],
        parameters={"n": 3},
    )
    run = h.start(spec)
    assert run.status is RunStatus.SUCCEEDED
    assert run.message == "2 of 2 steps completed"
    assert run.steps["a"].outputs == {"ok": True, "n": 3}  # a single expression keeps its type
    assert run.steps["b"].outputs == {"ok": True, "v": 6}
    first = h.recorder.calls[0]
    assert (first.step_id, first.key, first.attempt, first.at) == ("a", "run-1/a/1", 1, T0)
    assert h.recorder.order() == ["a", "b"]


def test_function_context_carries_run_and_params() -> None:
    seen: list[StepContext] = []

    def probe(ctx: StepContext) -> str:
        seen.append(ctx)
        return "done"

    h = Harness(probe=probe)
    run = h.start(make_spec([fn("a", function="probe")], parameters={"n": 1}))
    [ctx] = seen
    assert (ctx.run_id, ctx.pipeline_id, ctx.step_id, ctx.key) == ("run-1", "p", "a", "run-1/a/1")
    assert dict(ctx.params) == {"n": 1}
    assert run.steps["a"].outputs == {"result": "done"}  # a non-mapping result is published as result


def test_unknown_function_fails_the_step_naming_it() -> None:
    h = Harness()
    run = h.start(make_spec([fn("a", function="nope")]))
    assert run.status is RunStatus.FAILED
    assert "nope" in (run.steps["a"].error or "")


def test_function_raising_fails_its_step_not_the_engine() -> None:
    def broken(ctx: StepContext) -> None:
        raise KeyError("boom")

    h = Harness(broken=broken)
    run = h.start(make_spec([fn("a", function="broken")]))
    assert run.steps["a"].status is StepStatus.FAILED
    assert run.steps["a"].error == "function 'broken' raised KeyError: 'boom'"


def test_transform_values_and_function() -> None:
    h = Harness(parse_json=BUILTIN_FUNCTIONS["parse_json"])
    spec = make_spec(
        [
            fn("a", args={"outputs": {"raw": '{"tp": 2, "pp": 1}'}}),
            {
                "id": "t",
                "type": "transform",
                "depends_on": ["a"],
                "config": {
                    "input": "{{ steps['a'].outputs.raw }}",
                    "function": "parse_json",
                    "values": {"model": "{{ params.m | upper }}"},
                },
            },
        ],
        parameters={"m": "llama"},
    )
    run = h.start(spec)
    assert run.steps["t"].outputs == {"model": "LLAMA", "tp": 2, "pp": 1}


def test_transform_function_failure_fails_the_step() -> None:
    h = Harness(parse_json=BUILTIN_FUNCTIONS["parse_json"])
    transform = {"id": "t", "type": "transform", "config": {"input": "not json", "function": "parse_json"}}
    run = h.start(make_spec([transform]))
    assert run.steps["t"].status is StepStatus.FAILED
    assert (run.steps["t"].error or "").startswith("parse_json: not JSON")


def test_notification_is_rendered_and_sent_once_with_its_key() -> None:
    h = Harness()
    spec = make_spec(
        [
            fn("deploy", args={"outputs": {"url": "http://rag.svc"}}),
            {
                "id": "tell",
                "type": "notification",
                "depends_on": ["deploy"],
                "config": {
                    "channel": "slack",
                    "recipients": ["#deployments"],
                    "message": "deployed at {{ steps['deploy'].outputs.url }}",
                    "severity": "warning",
                },
            },
        ]
    )
    run = h.start(spec)
    [sent] = h.notifications()
    assert sent.message == "deployed at http://rag.svc"
    assert (sent.channel, sent.recipients, sent.severity) == ("slack", ("#deployments",), "warning")
    assert (sent.key, sent.step_id, sent.run_id) == ("run-1/tell/1", "tell", "run-1")
    assert run.steps["tell"].outputs == {"message": "deployed at http://rag.svc", "channel": "slack"}


# Control flow ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("flag", "ran", "skipped"), [(True, "yes", "no"), (False, "no", "yes")])
def test_condition_runs_one_branch_and_skips_the_other(flag: bool, ran: str, skipped: str) -> None:
    h = Harness()
    spec = make_spec(
        [
            {
                "id": "gate",
                "type": "condition",
                "config": {"expression": "{{ params.flag }}", "then_steps": ["yes"], "else_steps": ["no"]},
            },
            fn("yes"),
            fn("no"),
            fn("after_no", "no"),
            fn("join", "yes", "no", args={"u": "{{ steps['yes'].outputs.ok | default('none') }}"}),
        ],
        parameters={"flag": flag},
    )
    run = h.start(spec)
    assert run.status is RunStatus.SUCCEEDED
    assert run.steps["gate"].outputs == {"result": flag, "branch": "then" if flag else "else"}
    assert run.steps[ran].status is StepStatus.COMPLETED
    assert run.steps[skipped].status is StepStatus.SKIPPED
    assert run.steps[skipped].message == f"branch {'else' if flag else 'then'!r} of 'gate' not taken"
    assert skipped not in h.recorder.order()
    # a skipped step satisfies its dependents, as in Argo
    assert run.steps["after_no"].status is StepStatus.COMPLETED
    assert run.steps["join"].outputs["u"] == (True if flag else "none")


def test_when_false_skips_and_dependents_still_run() -> None:
    h = Harness()
    spec = make_spec(
        [fn("a", when="{{ params.go }}"), fn("b", "a"), fn("c", when="{{ not params.go }}")],
        parameters={"go": False},
    )
    run = h.start(spec)
    assert statuses(run) == {"a": "skipped", "b": "completed", "c": "completed"}
    assert run.steps["a"].message == "when: false"
    assert sorted(h.recorder.order()) == ["b", "c"]
    assert run.status is RunStatus.SUCCEEDED


def test_parallel_of_waits_never_exceeds_max_concurrency() -> None:
    h = Harness()
    branches = [wait(f"w{i}", seconds=10 * (i + 1)) for i in range(5)]
    spec = make_spec(
        [
            fn("setup"),
            {
                "id": "fan",
                "type": "parallel",
                "depends_on": ["setup"],
                "config": {"steps": [b["id"] for b in branches], "max_concurrency": 2},
            },
            *branches,
            fn("after", "fan"),
        ]
    )
    run = h.start(spec)
    peak = 0
    while not run.status.is_terminal:
        running = only(run, StepStatus.RUNNING)
        assert len(running) <= 2, statuses(run)
        peak = max(peak, len(running))
        wake = h.engine.next_wakeup(run)
        assert wake is not None
        h.clock.set(wake)
        run = h.engine.advance("run-1")
    assert peak == 2
    assert run.status is RunStatus.SUCCEEDED
    intervals = [(run.steps[b["id"]].started_at, run.steps[b["id"]].ended_at) for b in branches]
    for instant in {t for pair in intervals for t in pair}:
        assert instant is not None
        overlapping = sum(1 for s, e in intervals if s is not None and e is not None and s <= instant < e)
        assert overlapping <= 2
    assert run.steps["w0"].started_at == T0 and run.steps["w2"].started_at == T0 + timedelta(seconds=10)
    assert set(run.steps["fan"].outputs) == {b["id"] for b in branches}
    assert run.steps["after"].started_at == max(e for _, e in intervals if e is not None)


def test_parallel_of_running_jobs_respects_max_concurrency() -> None:
    jobs = FakeJobs(initial=JobStatus.RUNNING)
    h = Harness(jobs=jobs)
    spec = make_spec(
        [
            {
                "id": "fan",
                "type": "parallel",
                "config": {"steps": ["a", "b", "c", "d"], "max_concurrency": 2},
            },
            *(job(x) for x in "abcd"),
        ]
    )
    run = h.start(spec)
    assert len(jobs.jobs) == 2
    assert only(run, StepStatus.RUNNING) == {"a", "b"}
    jobs.move("a", JobStatus.COMPLETED)
    run = h.engine.advance("run-1")
    assert len(jobs.jobs) == 3 and only(run, StepStatus.RUNNING) == {"b", "c"}


def test_parallel_of_queued_jobs_submits_at_most_max_concurrency() -> None:
    jobs = FakeJobs(initial=JobStatus.QUEUED)  # what a real scheduler answers: queued for quota
    h = Harness(jobs=jobs)
    spec = make_spec(
        [
            {
                "id": "fan",
                "type": "parallel",
                "config": {"steps": ["a", "b", "c", "d"], "max_concurrency": 2},
            },
            *(job(x) for x in "abcd"),
        ]
    )
    run = h.start(spec)
    assert len(jobs.jobs) == 2
    assert {j.pipeline_step_id for j in jobs.jobs.values()} == {"a", "b"}
    assert run.steps["c"].message == "waiting for a concurrency slot"
    jobs.move("a", JobStatus.RUNNING)
    run = h.engine.advance("run-1")
    assert len(jobs.jobs) == 2  # a running job holds its slot as a queued one did
    jobs.move("a", JobStatus.COMPLETED)
    run = h.engine.advance("run-1")
    assert {j.pipeline_step_id for j in jobs.jobs.values()} == {"a", "b", "c"}
    for step_id in ("b", "c", "d"):
        jobs.move(step_id, JobStatus.COMPLETED)
        run = h.engine.advance("run-1")
        assert sum(1 for j in jobs.jobs.values() if not j.status.is_terminal) <= 2
    assert run.status is RunStatus.SUCCEEDED


def test_parallel_outputs_map_each_branch_skipped_ones_included() -> None:
    h = Harness()
    spec = make_spec(
        [
            {"id": "fan", "type": "parallel", "config": {"steps": ["a", "c"]}},
            fn("a", args={"v": 1}),
            fn("c", when="{{ false }}"),
            fn("after", "fan", args={"x": "{{ steps['fan'].outputs.a.v }}"}),
        ]
    )
    run = h.start(spec)
    assert run.status is RunStatus.SUCCEEDED
    assert run.steps["fan"].outputs == {"a": {"ok": True, "v": 1}, "c": {}}
    assert run.steps["after"].outputs["x"] == 1


def test_parallel_fails_when_a_branch_failed() -> None:
    h = Harness()
    spec = make_spec(
        [
            {"id": "fan", "type": "parallel", "config": {"steps": ["a", "b"]}},
            fn("a"),
            fn("b", args={"fail": True}),
        ],
        on_failure="continue",
    )
    run = h.start(spec)
    assert run.steps["b"].status is StepStatus.FAILED
    assert run.steps["fan"].status is StepStatus.FAILED


def test_wait_duration_sets_next_wakeup() -> None:
    h = Harness()
    run = h.start(make_spec([wait("w", seconds="90s"), fn("after", "w")]))
    assert run.steps["w"].status is StepStatus.RUNNING
    assert h.engine.next_wakeup(run) == T0 + timedelta(seconds=90)
    run = h.advance_to(89)
    assert run.steps["w"].status is StepStatus.RUNNING and "after" not in h.recorder.order()
    run = h.advance_to(90)
    assert statuses(run) == {"w": "completed", "after": "completed"}
    assert h.recorder.calls[0].at == T0 + timedelta(seconds=90)
    assert h.engine.next_wakeup(run) is None


def test_wait_for_event_completes_on_signal_with_its_payload() -> None:
    h = Harness()
    spec = make_spec(
        [wait("w", event="approved"), fn("after", "w", args={"by": "{{ steps['w'].outputs.by }}"})]
    )
    run = h.start(spec)
    assert run.steps["w"].message == "waiting for event 'approved'"
    assert h.engine.next_wakeup(run) == T0 + timedelta(seconds=3600)  # the seeds' default timeout
    run = h.engine.signal("run-1", "something-else", {"by": "mallory"})
    assert run.steps["w"].status is StepStatus.RUNNING
    h.clock.set(h.at(120))
    run = h.engine.signal("run-1", "approved", {"by": "alice"})
    assert run.status is RunStatus.SUCCEEDED
    assert run.steps["w"].outputs == {"by": "alice"}
    assert run.steps["after"].outputs["by"] == "alice"
    assert run.steps["w"].ended_at == h.at(120)


def test_wait_for_event_times_out_and_fails() -> None:
    h = Harness()
    run = h.start(make_spec([wait("w", event="approved", config={"timeout_seconds": 100}), fn("after", "w")]))
    run = h.advance_to(99.9)
    assert run.status is RunStatus.RUNNING
    run = h.advance_to(100)
    assert run.steps["w"].status is StepStatus.FAILED
    assert run.steps["w"].error == "event 'approved' did not come within 100 s"
    assert run.steps["after"].status is StepStatus.CANCELLED
    assert run.status is RunStatus.FAILED
    assert h.engine.signal("run-1", "approved").status is RunStatus.FAILED  # too late: nothing changes


def test_loop_expands_items_and_collects_results() -> None:
    h = Harness()
    spec = make_spec(
        [
            fn("src", args={"outputs": {"shards": ["a", "b", "c"]}}),
            {
                "id": "each",
                "type": "loop",
                "depends_on": ["src"],
                "config": {
                    "items": "{{ steps['src'].outputs.shards }}",
                    "step": {
                        "type": "function",
                        "config": {
                            "function": "rec",
                            "args": {"shard": "{{ item }}", "i": "{{ loop.index }}"},
                        },
                    },
                },
            },
            fn("sum", "each", args={"n": "{{ steps['each'].outputs.count }}"}),
        ]
    )
    run = h.start(spec)
    assert run.status is RunStatus.SUCCEEDED
    assert run.steps["each"].outputs == {
        "results": [{"ok": True, "shard": s, "i": i} for i, s in enumerate("abc")],
        "count": 3,
    }
    assert [run.steps[f"each[{i}]"].status for i in range(3)] == [StepStatus.COMPLETED] * 3
    assert run.steps["each[1]"].parent == "each" and run.steps["each[1]"].item == "b"
    assert h.recorder.keys_of("each[2]") == ["run-1/each[2]/1"]
    assert run.steps["sum"].outputs["n"] == 3
    assert run.message == "3 of 3 steps completed"  # iterations are records, not graph steps


def test_loop_of_waits_respects_its_concurrency() -> None:
    h = Harness()
    body = {"type": "wait", "config": {"duration_seconds": 10}}
    spec = make_spec(
        [
            {
                "id": "l",
                "type": "loop",
                "config": {"items": [1, 2, 3, 4, 5], "max_concurrency": 2, "step": body},
            }
        ]
    )
    run = h.start(spec)
    assert len(only(run, StepStatus.RUNNING) - {"l"}) == 2
    run = h.drive(run)
    assert run.status is RunStatus.SUCCEEDED
    assert run.ended_at == h.at(30)  # three waves of 10 s


def test_loop_with_a_failing_iteration_fails() -> None:
    h = Harness()
    body = {"type": "function", "config": {"function": "rec", "args": {"fail": "{{ item == 2 }}"}}}
    run = h.start(make_spec([{"id": "l", "type": "loop", "config": {"items": [1, 2, 3], "step": body}}]))
    assert run.steps["l"].status is StepStatus.FAILED
    assert "l[1]" in (run.steps["l"].error or "")
    assert run.status is RunStatus.FAILED


def test_loop_items_not_a_list_fails_the_step() -> None:
    h = Harness()
    body = {"type": "function", "config": {"function": "rec"}}
    run = h.start(
        make_spec(
            [{"id": "l", "type": "loop", "config": {"items": "{{ params.n }}", "step": body}}],
            parameters={"n": 3},
        )
    )
    assert run.steps["l"].status is StepStatus.FAILED
    assert "expected a list, got int" in (run.steps["l"].error or "")


# Retries, outputs and templating errors ---------------------------------------------------------------------
def test_retries_wait_their_backoff_and_use_a_key_per_attempt() -> None:
    h = Harness()
    run = h.start(
        make_spec([fn("a", args={"fail_times": 2}, retries={"max_retries": 3, "backoff": 10, "factor": 2})])
    )
    record = run.steps["a"]
    assert record.status is StepStatus.WAITING
    assert record.message == "attempt 1 failed: a failed on attempt 1; retry in 10 s"
    assert h.engine.next_wakeup(run) == T0 + timedelta(seconds=10)
    run = h.advance_to(9)
    assert run.steps["a"].attempt == 1  # not before its backoff
    run = h.advance_to(10)
    assert run.steps["a"].attempt == 2
    assert h.engine.next_wakeup(run) == h.at(10 + 20)  # exponential: 10, then 20
    run = h.advance_to(30)
    assert run.status is RunStatus.SUCCEEDED
    assert [(c.key, c.at) for c in h.recorder.calls] == [
        ("run-1/a/1", T0),
        ("run-1/a/2", h.at(10)),
        ("run-1/a/3", h.at(30)),
    ]


def test_retries_exhausted_fail_the_step() -> None:
    h = Harness()
    run = h.drive(
        h.start(make_spec([fn("a", args={"fail": True}, retries={"max_retries": 1, "backoff": 5})]))
    )
    assert run.steps["a"].status is StepStatus.FAILED
    assert run.steps["a"].attempt == 2
    assert run.steps["a"].error == "a failed on attempt 2"
    assert run.message == "0 of 1 steps completed; failed: a"


def test_missing_declared_outputs_fail_the_step() -> None:
    h = Harness()
    run = h.start(make_spec([fn("a", outputs=["url", "ok"]), fn("b", "a")]))
    assert run.steps["a"].status is StepStatus.FAILED
    assert run.steps["a"].error == "did not publish declared outputs ['url']"
    assert run.steps["b"].status is StepStatus.CANCELLED
    assert "b" not in h.recorder.order()


def test_declared_outputs_present_complete() -> None:
    h = Harness()
    run = h.start(make_spec([fn("a", outputs=["url"], args={"url": "http://x"})]))
    assert run.steps["a"].status is StepStatus.COMPLETED


@pytest.mark.parametrize(
    ("args", "field", "problem"),
    [
        ({"x": "{{ params.nope }}"}, "steps[b].config.args.x", "undefined name 'params.nope'"),
        ({"x": "{{ steps['a'].outputs.missing }}"}, "steps[b].config.args.x", "steps['a'].outputs.missing"),
        ({"deep": {"y": ["{{ 1 // 0 }}"]}}, "steps[b].config.args.deep", "division"),
    ],
)
def test_templating_errors_fail_the_step_naming_the_field(
    args: dict[str, Any], field: str, problem: str
) -> None:
    h = Harness()
    run = h.start(make_spec([fn("a"), fn("b", "a", args=args)]))
    error = run.steps["b"].error or ""
    assert run.steps["b"].status is StepStatus.FAILED
    assert error.startswith(field), error
    assert problem in error
    assert "b" not in h.recorder.order()


@pytest.mark.parametrize(
    ("step", "field"),
    [
        (fn("x", when="{{ params.nope }}"), "steps[x].when"),
        (
            {"id": "x", "type": "condition", "config": {"expression": "{{ params.nope }}"}},
            "steps[x].config.expression",
        ),
        (
            {
                "id": "x",
                "type": "loop",
                "config": {
                    "items": "{{ params.nope }}",
                    "step": {"type": "function", "config": {"function": "rec"}},
                },
            },
            "steps[x].config.items",
        ),
    ],
)
def test_templating_errors_of_control_fields_name_the_field(step: dict[str, Any], field: str) -> None:
    h = Harness()
    run = h.start(make_spec([step]))
    assert run.steps["x"].status is StepStatus.FAILED
    assert (run.steps["x"].error or "").startswith(field), run.steps["x"].error


def test_start_a_registered_pipeline_by_id_with_params() -> None:
    h = Harness()
    h.engine.register(make_spec([fn("a", args={"n": "{{ params.n }}"})], parameters={"n": 1}))
    run = h.engine.start("p", {"n": 5}, run_id="by-id")
    assert run.status is RunStatus.SUCCEEDED
    assert run.params == {"n": 5}
    assert run.steps["a"].outputs["n"] == 5
    assert [r.run_id for r in h.store.list_runs(pipeline_id="p")] == ["by-id"]


def test_when_reads_an_earlier_steps_outputs() -> None:
    h = Harness()
    spec = make_spec(
        [
            fn("probe", args={"outputs": {"healthy": False}}),
            fn("deploy", "probe", when="{{ steps['probe'].outputs.healthy }}"),
            fn("page", "probe", when="{{ not steps['probe'].outputs.healthy }}"),
        ]
    )
    run = h.start(spec)
    assert statuses(run) == {"probe": "completed", "deploy": "skipped", "page": "completed"}


def test_bad_parameters_are_refused_at_start() -> None:
    h = Harness()
    with pytest.raises(ValidationErrors) as caught:
        h.start(make_spec([fn("a")], parameters={"n": 1}), {"n": "x", "m": 2})
    assert {e.path for e in caught.value.errors} == {"params.n", "params.m"}
    assert h.store.list_runs() == []


def test_start_is_idempotent_by_run_id() -> None:
    h = Harness()
    spec = make_spec([fn("a")])
    first = h.start(spec)
    again = h.start(spec)
    assert again.run_id == first.run_id and again.status is RunStatus.SUCCEEDED
    assert h.recorder.raw_calls()["a"] == 1


# Failure policies ---------------------------------------------------------------------------------------
def test_fail_fast_cancels_running_and_waiting_steps_and_their_jobs() -> None:
    jobs = FakeJobs(initial=JobStatus.QUEUED)
    h = Harness(jobs=jobs)
    spec = make_spec(
        [
            job("queued"),
            job("running"),
            wait("sleep", seconds=1000),
            fn("retrying", args={"fail_times": 9}, retries={"max_retries": 9, "backoff": 500}),
            wait("w2", seconds=10),
            fn("boom", "w2", args={"fail": True}),
            fn("after", "boom"),
            fn("later", "queued"),
        ]
    )
    run = h.start(spec)
    jobs.move("running", JobStatus.RUNNING)
    run = h.engine.advance("run-1")
    assert run.steps["queued"].status is StepStatus.WAITING
    assert run.steps["running"].status is StepStatus.RUNNING
    assert run.steps["retrying"].status is StepStatus.WAITING
    run = h.advance_to(10)
    assert run.status is RunStatus.FAILED
    assert run.steps["boom"].status is StepStatus.FAILED
    cancelled = {"queued", "running", "sleep", "retrying", "after", "later"}
    assert only(run, StepStatus.CANCELLED) == cancelled
    for step_id in cancelled - {"after", "later"}:
        assert run.steps[step_id].message == "cancelled: step 'boom' failed"
    assert run.message == "1 of 8 steps completed; failed: boom"
    assert set(jobs.cancelled) == {jobs.of_step("queued").id, jobs.of_step("running").id}
    assert all(j.status is JobStatus.CANCELLED for j in jobs.jobs.values())
    assert h.recorder.raw_calls()["retrying"] == 1
    assert "after" not in h.recorder.order() and "later" not in h.recorder.order()
    assert h.engine.next_wakeup(run) is None


def test_continue_finishes_independent_branches_and_reports_partial() -> None:
    h = Harness()
    spec = make_spec(
        [fn("a"), fn("b", args={"fail": True}), fn("c", "b"), fn("d", "a"), wait("w", "a", seconds=10)],
        on_failure="continue",
    )
    run = h.start(spec)
    assert run.status is RunStatus.RUNNING  # the wait goes on despite b's failure
    run = h.drive(run)
    assert statuses(run) == {
        "a": "completed",
        "b": "failed",
        "c": "cancelled",
        "d": "completed",
        "w": "completed",
    }
    assert run.steps["c"].message == "dependency 'b' failed"
    assert run.status is RunStatus.PARTIAL
    assert run.message == "3 of 5 steps completed; failed: b"


def test_continue_with_nothing_completed_is_failed() -> None:
    h = Harness()
    run = h.start(make_spec([fn("a", args={"fail": True}), fn("b", "a")], on_failure="continue"))
    assert run.status is RunStatus.FAILED
    assert run.message == "0 of 2 steps completed; failed: a"


def _compensated(step_id: str) -> dict[str, Any]:
    return {"type": "function", "config": {"function": "rec", "args": {"undo": step_id}}}


def test_rollback_compensates_completed_steps_in_reverse_topological_order() -> None:
    h = Harness()
    spec = make_spec(
        [
            fn("a", compensate=_compensated("a")),
            fn("b", "a", compensate=_compensated("b")),
            fn("c", "a", compensate=_compensated("c")),
            fn("nothing_to_undo", "b"),
            fn("d", "b", "c", compensate=_compensated("d")),
            wait("w", "d", seconds=5),
            fn("x", "w", args={"fail": True}, compensate=_compensated("x")),
            fn("never", "x", compensate=_compensated("never")),
        ],
        on_failure="rollback",
    )
    run = h.drive(h.start(spec))
    undone = [c.args["undo"] for c in h.recorder.calls if "undo" in c.args]
    assert undone == ["d", "c", "b", "a"]
    assert run.status is RunStatus.ROLLED_BACK
    assert run.message is not None and "4 step(s) compensated" in run.message
    assert run.steps["d~undo"].status is StepStatus.COMPLETED
    assert run.steps["d~undo"].parent == "d"
    assert run.steps["never"].status is StepStatus.CANCELLED
    assert "x~undo" not in run.steps and "never~undo" not in run.steps


def test_rollback_waits_for_a_compensation_before_the_next() -> None:
    h = Harness()
    spec = make_spec(
        [
            fn("a", compensate=_compensated("a")),
            fn("b", "a", compensate={"type": "wait", "config": {"duration_seconds": 30}}),
            fn("x", "b", args={"fail": True}),
        ],
        on_failure="rollback",
    )
    run = h.start(spec)
    assert run.steps["b~undo"].status is StepStatus.RUNNING
    assert "a~undo" not in run.steps
    assert h.engine.next_wakeup(run) == h.at(30)
    run = h.drive(run)
    assert run.status is RunStatus.ROLLED_BACK
    assert run.steps["a~undo"].started_at == h.at(30)


def test_rollback_with_a_failing_compensation_fails_the_run() -> None:
    h = Harness()
    spec = make_spec(
        [
            fn("a", compensate={"type": "function", "config": {"function": "rec", "args": {"fail": True}}}),
            fn("x", "a", args={"fail": True}),
        ],
        on_failure="rollback",
    )
    run = h.drive(h.start(spec))
    assert run.status is RunStatus.FAILED
    assert "rollback incomplete: a~undo" in (run.message or "")


# Run timeout and cancel --------------------------------------------------------------------------------
def test_run_timeout_cancels_everything_and_fails() -> None:
    jobs = FakeJobs()
    h = Harness(jobs=jobs)
    run = h.start(make_spec([job("j"), wait("w", seconds=1000), fn("after", "w")], timeout=60))
    assert h.engine.next_wakeup(run) == h.at(60)
    run = h.drive(run)
    assert run.status is RunStatus.FAILED
    assert run.message == "timed out after 60 s"
    assert run.ended_at == h.at(60)
    assert only(run, StepStatus.CANCELLED) == {"j", "w", "after"}
    assert list(jobs.cancelled.values()) == ["timed out after 60 s"]


def test_cancel_stops_everything_and_is_final() -> None:
    jobs = FakeJobs()
    h = Harness(jobs=jobs)
    run = h.start(make_spec([job("j"), wait("w", seconds=1000), fn("after", "w"), fn("done")]))
    h.clock.set(h.at(5))
    run = h.engine.cancel("run-1", "no longer needed")
    assert run.status is RunStatus.CANCELLED
    assert run.message == "no longer needed"
    assert statuses(run) == {"j": "cancelled", "w": "cancelled", "after": "cancelled", "done": "completed"}
    assert run.steps["w"].ended_at == h.at(5)
    assert list(jobs.cancelled.values()) == ["no longer needed"]
    h.clock.set(h.at(2000))
    assert h.engine.advance("run-1").status is RunStatus.CANCELLED
    assert h.engine.next_wakeup(h.engine.get("run-1")) is None
    assert "after" not in h.recorder.order()


# api_call against a real HTTP server -----------------------------------------------------------------
def test_api_call_success_publishes_the_json_and_sends_the_key(
    server: LocalHttpServer, api: HttpxApiCaller
) -> None:
    server.route("POST", "/api/v1/optimize", json={"config": {"tensor_parallel": 2}})
    h = Harness(http=api)
    spec = make_spec(
        [
            {
                "id": "optimize",
                "type": "api_call",
                "config": {
                    "url": server.url + "/api/v1/optimize",
                    "headers": {"X-Model": "{{ params.m }}"},
                    "body": {"model_id": "{{ params.m }}", "target_throughput": 100},
                },
                "outputs": ["config"],
            },
            fn("use", "optimize", args={"tp": "{{ steps['optimize'].outputs.config.tensor_parallel }}"}),
        ],
        parameters={"m": "llama"},
    )
    run = h.start(spec)
    assert run.status is RunStatus.SUCCEEDED
    assert run.steps["optimize"].outputs == {"config": {"tensor_parallel": 2}, "status_code": 200}
    assert run.steps["use"].outputs["tp"] == 2
    [request] = server.requests_to("/api/v1/optimize")
    assert request.idempotency_key == "run-1/optimize/1"
    assert request.json == {"model_id": "llama", "target_throughput": 100}
    assert request.headers["x-model"] == "llama"


def test_api_call_503_then_200_is_retried_within_the_step(
    server: LocalHttpServer, api: HttpxApiCaller
) -> None:
    server.route("POST", "/flaky", responses=[(503, {"error": "busy"}), (200, {"fine": True})])
    h = Harness(http=api)
    run = h.start(
        make_spec(
            [
                {
                    "id": "call",
                    "type": "api_call",
                    "config": {"url": server.url + "/flaky", "retry_backoff_seconds": 2},
                }
            ]
        )
    )
    record = run.steps["call"]
    assert record.status is StepStatus.WAITING
    assert "HTTP 503" in (record.message or "")
    assert h.engine.next_wakeup(run) == h.at(2)
    run = h.drive(run)
    assert run.status is RunStatus.SUCCEEDED
    assert run.steps["call"].attempt == 2
    assert run.steps["call"].outputs == {"fine": True, "status_code": 200}
    assert server.keys("/flaky") == ["run-1/call/1", "run-1/call/2"]


def test_api_call_transient_failures_exhaust_retry_count(
    server: LocalHttpServer, api: HttpxApiCaller
) -> None:
    server.route("GET", "/down", status=503, json={"error": "down"})
    h = Harness(http=api)
    run = h.drive(
        h.start(
            make_spec(
                [{"id": "call", "type": "api_call", "config": {"url": server.url + "/down", "method": "GET"}}]
            )
        )
    )
    assert run.steps["call"].status is StepStatus.FAILED
    assert server.calls("/down") == 4  # the seeds' default: 3 retries
    assert run.steps["call"].attempt == 4


def test_api_call_404_fails_without_retry(server: LocalHttpServer, api: HttpxApiCaller) -> None:
    server.route("GET", "/missing", status=404, json={"error": "nope"})
    h = Harness(http=api)
    run = h.drive(
        h.start(
            make_spec(
                [
                    {
                        "id": "call",
                        "type": "api_call",
                        "config": {"url": server.url + "/missing", "method": "GET"},
                    }
                ]
            )
        )
    )
    assert run.status is RunStatus.FAILED
    error = run.steps["call"].error or ""
    assert "HTTP 404" in error and "/missing" in error
    assert server.calls("/missing") == 1


def test_api_call_expect_status(server: LocalHttpServer, api: HttpxApiCaller) -> None:
    server.route("POST", "/created", status=201, json={"id": 7})
    h = Harness(http=api)
    step = {
        "id": "call",
        "type": "api_call",
        "config": {"url": server.url + "/created", "expect_status": [200]},
    }
    run = h.drive(h.start(make_spec([step])))
    assert run.steps["call"].status is StepStatus.FAILED
    assert server.calls("/created") == 1


# job steps ----------------------------------------------------------------------------------------------
def test_service_job_step_completes_when_its_job_runs_and_batch_when_completed() -> None:
    jobs = FakeJobs()
    h = Harness(jobs=jobs)
    spec = make_spec(
        [
            job(
                "svc",
                config={
                    "job_type": "SERVICE",
                    "outputs": {"url": "http://{{ run.id }}.svc"},
                    "gpu_type": "nvidia-t4",
                    "gpu_count": 1,
                    "priority": "HIGH",
                    "labels": {"team": "{{ params.team }}"},
                },
            ),
            job("batch", config={"estimated_duration_seconds": 60}),
            fn("after_svc", "svc", args={"u": "{{ steps['svc'].outputs.url }}"}),
            fn("after_batch", "batch"),
        ],
        parameters={"team": "ml"},
    )
    run = h.start(spec)
    assert statuses(run) == {
        "svc": "waiting",
        "batch": "waiting",
        "after_svc": "pending",
        "after_batch": "pending",
    }
    svc = jobs.of_step("svc")
    assert svc.job_type is JobType.SERVICE and svc.priority is JobPriority.HIGH
    assert svc.request.accelerator_type == "nvidia-t4"
    assert svc.labels["team"] == "ml" and svc.labels["budcore.io/pipeline-run"] == "run-1"
    assert svc.idempotency_key == "run-1/svc/1" and svc.source is JobSource.PIPELINE
    assert svc.max_retries == 0 and svc.pipeline_step_id == "svc"

    jobs.move("svc", JobStatus.ADMITTED)
    run = h.engine.advance("run-1")
    assert run.steps["svc"].status is StepStatus.RUNNING
    jobs.move("svc", JobStatus.RUNNING, endpoint="10.0.0.1")
    jobs.move("batch", JobStatus.RUNNING)
    run = h.engine.advance("run-1")
    assert run.steps["svc"].status is StepStatus.COMPLETED  # a SERVICE is ready once it runs
    assert run.steps["svc"].outputs == {"url": "http://run-1.svc", "endpoint": "10.0.0.1", "job_id": svc.id}
    assert run.steps["after_svc"].outputs["u"] == "http://run-1.svc"
    assert run.steps["batch"].status is StepStatus.RUNNING  # a batch job only when it completes
    assert "after_batch" not in h.recorder.order()
    jobs.move("batch", JobStatus.COMPLETED)
    run = h.engine.advance("run-1")
    assert run.status is RunStatus.SUCCEEDED


def test_failed_job_is_retried_with_a_new_job_and_key() -> None:
    jobs = FakeJobs(initial=JobStatus.RUNNING)
    h = Harness(jobs=jobs)
    run = h.start(make_spec([job("b", retries={"max_retries": 1, "backoff": 30})]))
    first = run.steps["b"].job_id
    jobs.move("b", JobStatus.FAILED)
    run = h.engine.advance("run-1")
    assert run.steps["b"].status is StepStatus.WAITING
    assert h.engine.next_wakeup(run) == h.at(30)
    run = h.advance_to(30)
    assert run.steps["b"].job_id not in (None, first)
    assert jobs.submits == ["run-1/b/1", "run-1/b/2"]


def test_job_id_is_stored_even_when_the_job_runs_at_once() -> None:
    """A job already running when submitted changes no status: its id must still be written, so
    the next advance polls it rather than submitting it again."""
    jobs = FakeJobs(initial=JobStatus.RUNNING)
    h = Harness(jobs=jobs)
    run = h.start(make_spec([job("b")]))
    assert h.store.get_run("run-1").steps["b"].job_id == run.steps["b"].job_id == jobs.of_step("b").id
    h.engine.advance("run-1")
    assert jobs.submits == ["run-1/b/1"]


def test_job_step_timeout_cancels_its_job() -> None:
    jobs = FakeJobs()
    h = Harness(jobs=jobs)
    run = h.start(make_spec([job("b", timeout=100)]))
    assert h.engine.next_wakeup(run) == h.at(100)
    run = h.drive(run)
    assert run.steps["b"].error == "timed out after 100 s"
    assert list(jobs.cancelled.values()) == ["step timed out after 100 s"]


def test_job_step_without_a_job_backend_fails() -> None:
    h = Harness()
    run = h.start(make_spec([job("b")]))
    assert run.steps["b"].status is StepStatus.FAILED
    assert "no job backend" in (run.steps["b"].error or "")


# Crash and resume of effects that leave the process ---------------------------------------------------------
class CrashAfterSubmit(FakeJobs):
    """Fake jobs after whose first submit the process dies at the next write."""

    def __init__(self, store: CrashingStore) -> None:
        super().__init__()
        self.store = store

    def submit(self, job: Job) -> Job:
        stored = super().submit(job)
        if len(self.submits) == 1:
            self.store.crash_next()
        return stored


def test_job_submitted_before_a_crash_is_not_submitted_twice() -> None:
    store = CrashingStore()
    jobs = CrashAfterSubmit(store)
    h = Harness(jobs=jobs, store=store)
    with pytest.raises(Crash):
        h.start(make_spec([job("train"), fn("after", "train")]))
    assert jobs.submits == ["run-1/train/1"]
    assert store.get_run("run-1").steps["train"].job_id is None  # its job was never recorded
    engine = h.new_engine()  # a restarted process
    run = engine.advance("run-1")
    assert jobs.submits == ["run-1/train/1", "run-1/train/1"]  # re-sent with the same key...
    assert len(jobs.jobs) == 1  # ...so the job store keeps one job
    assert run.steps["train"].job_id == jobs.of_step("train").id
    assert store.get_run("run-1").steps["train"].job_id == jobs.of_step("train").id
    jobs.move("train", JobStatus.COMPLETED)
    run = engine.advance("run-1")
    assert run.status is RunStatus.SUCCEEDED
    assert h.recorder.raw_calls() == {"after": 1}


def test_api_call_resent_after_a_crash_is_applied_once(server: LocalHttpServer, api: HttpxApiCaller) -> None:
    store = CrashingStore()
    answered: list[str | None] = []

    def deploy(request: RecordedRequest) -> Reply:  # runs under the server's lock: no server calls
        answered.append(request.idempotency_key)
        if len(answered) == 1:
            store.crash_next()  # the answer arrives, its record is never written
        return Reply(200, {"id": "d-1"})

    server.route("POST", "/deploy", handler=deploy)
    h = Harness(http=api, store=store)
    spec = make_spec(
        [
            {"id": "deploy", "type": "api_call", "config": {"url": server.url + "/deploy"}},
            fn("after", "deploy"),
        ]
    )
    with pytest.raises(Crash):
        h.start(spec)
    run = h.new_engine().advance("run-1")
    assert run.status is RunStatus.SUCCEEDED
    assert server.calls("/deploy") == 2
    assert answered == ["run-1/deploy/1"]  # the replay got the stored answer (the server honours keys)
    assert server.keys("/deploy") == ["run-1/deploy/1"]
    assert server.applied("/deploy") == 1
    assert run.steps["deploy"].outputs == {"id": "d-1", "status_code": 200}


def test_completed_step_is_not_run_again_after_a_crash() -> None:
    store = CrashingStore()
    h = Harness(store=store)
    h.recorder.hooks["b"] = store.hook_once(after_write=True)  # dies once b's outcome is written
    with pytest.raises(Crash):
        h.start(make_spec([fn("a"), fn("b", "a"), fn("c", "b")]))
    stored = store.get_run("run-1")
    assert {s for s, r in stored.steps.items() if r.status is StepStatus.COMPLETED} == {"a", "b"}
    run = h.new_engine().advance("run-1")
    assert run.status is RunStatus.SUCCEEDED
    assert h.recorder.raw_calls() == {"a": 1, "b": 1, "c": 1}
