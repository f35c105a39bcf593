"""Pipelines as a simulated workload: runs of pipeline DAGs whose job steps are ordinary jobs.

The figures are exact on small deterministic cases: on an idle fleet a run's makespan is the sum of
its critical path's job runtimes, and with a competing workload it grows by exactly the time the
path's jobs waited for the scheduler.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from budcore_simulator.build import build_simulation
from budcore_simulator.cli import resolve_scenario
from budcore_simulator.engine import SimulationResult
from budcore_simulator.report import build_report, dumps
from budcore_simulator.scenario import LoadedScenario, load_scenario
from budcore_simulator.status import SimJobStatus

from budcore.domain.errors import ValidationError

FLEET = """\
name: pipes
seed: 3
fleet:
  pools:
    - {name: gpu, product: NVIDIA-H100-80GB-HBM3, gpus_per_node: 8, nodes: NODES, cpu: 64, memory: 512Gi}
queues:
  documents:
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ResourceFlavor
      metadata: {name: gpu}
      spec: {nodeLabels: {budcore.io/pool: gpu}}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ClusterQueue
      metadata: {name: team}
      spec:
        namespaceSelector: {}
        resourceGroups:
          - coveredResources: [nvidia.com/gpu, cpu, memory]
            flavors:
              - name: gpu
                resources:
                  - {name: nvidia.com/gpu, nominalQuota: QUOTA}
                  - {name: cpu, nominalQuota: 128}
                  - {name: memory, nominalQuota: 1Ti}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: LocalQueue
      metadata: {name: main, namespace: team}
      spec: {clusterQueue: team}
"""


def scenario(tmp_path: Path, workload: str, *, nodes: int = 2, extra: str = "") -> LoadedScenario:
    quota = nodes * 8
    text = FLEET.replace("NODES", str(nodes)).replace("QUOTA", str(quota)) + extra
    text += "workload:\n" + textwrap.indent(textwrap.dedent(workload), "  ")
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return load_scenario(path)


def run(loaded: LoadedScenario) -> SimulationResult:
    return build_simulation(loaded).run()


def job_step(step: str, gpus: int, seconds: float, *, deps: str = "", extra: str = "") -> str:
    after = f"\n      depends_on: [{deps}]" if deps else ""
    return (
        f"    - id: {step}\n      type: job{after}\n      config:\n"
        f"        gpu_count: {gpus}\n        estimated_duration_seconds: {seconds}\n{extra}"
    )


def inline(steps: str, *, arrivals: str = "{at: [0]}", rest: str = "", head: str = "") -> str:
    """A workload of one inline pipeline (tenant team, LocalQueue main)."""
    return (
        "pipelines:\n"
        "  - pipeline:\n"
        "      id: flow\n"
        "      tenant: team\n"
        "      local_queue: main\n"
        f"{textwrap.indent(head, '      ')}"
        "      steps:\n"
        f"{textwrap.indent(steps, '    ')}"
        f"    arrivals: {arrivals}\n"
        f"{textwrap.indent(rest, '    ')}"
    )


def pipeline_records(result: SimulationResult) -> dict[str, SimJobStatus]:
    return {r.arrival.job_id: r.status for r in result.records if r.arrival.label == "flow"}


# Makespan and critical-path waits -------------------------------------------------------------------
def test_on_an_idle_fleet_the_makespan_is_the_critical_paths_runtimes(tmp_path: Path) -> None:
    """prep (600 s) → train (1800 s) → check → serve (a service ready 120 s after it starts), with an
    api_call and a side job off the path: the run ends at 600 + 1800 + 120, nothing waited."""
    steps = (
        job_step("prep", 2, 600)
        + "    - id: fetch\n      type: api_call\n      config: {url: 'http://data/rows'}\n"
        + "      outputs: [rows]\n"
        + job_step("train", 8, 1800, deps="prep, fetch")
        + job_step("side", 1, 300, deps="prep")
        + "    - id: check\n      type: condition\n      depends_on: [train]\n"
        + "      config: {expression: '{{ steps.fetch.outputs.rows > 3 }}', then_steps: [serve]}\n"
        + job_step("serve", 1, 120, deps="check", extra="        job_type: service\n")
    )
    loaded = scenario(tmp_path, inline(steps, rest="outputs: {fetch: {rows: 5}}\n"))
    result = run(loaded)
    assert result.pipelines is not None
    (outcome,) = result.pipelines
    assert outcome.status == "succeeded" and outcome.run_id == "flow-1"
    assert outcome.makespan_s == 600 + 1800 + 120
    assert outcome.critical_path == ("prep", "train", "check", "serve")
    assert outcome.critical_path_wait_s == 0.0
    # The steps' jobs are ordinary jobs: one record each, all completed; the service ran until its
    # run ended (it was the last step: the 120 s it took to be ready).
    records = {r.arrival.job_id: r for r in result.records}
    assert set(pipeline_records(result)) == {f"flow-1/{s}/1" for s in ("prep", "train", "side", "serve")}
    assert all(r.status is SimJobStatus.COMPLETED for r in records.values())
    serve = records["flow-1/serve/1"]
    assert (serve.start_s, serve.end_s, serve.arrival.runtime_s) == (2400.0, 2520.0, 120.0)
    assert records["flow-1/train/1"].arrival.job_class == "flow/train"
    report = build_report(result, scenario_name="pipes")
    figures = report["pipelines"]
    assert figures["by_status"] == {"succeeded": 1} and figures["jobs"] == 4
    assert figures["makespan_s"]["max"] == 2520.0 and figures["critical_path_wait_share"] == 0.0
    assert report["jobs"] == 4 and report["by_label"]["flow"]["completed"] == 4


def test_waits_on_the_critical_path_add_to_the_makespan_exactly(tmp_path: Path) -> None:
    """One 8-GPU node. Background jobs of 8 GPUs for 1000 s arrive at 0 and 150; the run starts at
    100: prep (4 GPUs, 600 s) waits for the first until 1000; train (8 GPUs, 1800 s), submitted at
    1600, queues behind the second (older), which runs 1600-2600. Waits: 900 + 1000."""
    workload = inline(
        job_step("prep", 4, 600) + job_step("train", 8, 1800, deps="prep"), arrivals="{at: [100]}"
    ) + textwrap.dedent(
        """\
        generators:
          classes:
            - {name: hog, tenant: team, local_queue: main, arrivals: {kind: fixed, interval: 150},
               runtime: {kind: fixed, value: 1000}, count: 2, gpus: 8}
        """
    )
    result = run(scenario(tmp_path, workload, nodes=1))
    assert result.pipelines is not None
    (outcome,) = result.pipelines
    assert (outcome.start_s, outcome.end_s) == (100.0, 4400.0)
    assert outcome.critical_path == ("prep", "train")
    assert outcome.critical_path_wait_s == 900.0 + 1000.0
    assert outcome.makespan_s == (600 + 1800) + outcome.critical_path_wait_s
    records = {r.arrival.job_id: r for r in result.records}
    assert records["flow-1/train/1"].start_s == 2600.0
    # The background jobs see the pipeline's jobs as ordinary competition.
    report = build_report(result)
    assert report["jobs"] == 4 and report["by_class"]["hog"]["completed"] == 2
    assert report["pipelines"]["critical_path_wait_s"]["mean"] == 1900.0
    assert report["pipelines"]["critical_path_wait_share"] == round(1900 / 4300, 4)


def test_loops_and_waits_take_their_time_and_a_loops_waits_follow_its_slots(tmp_path: Path) -> None:
    """Four 4-GPU iterations of 600 s, two at a time, then a 300 s wait: 2 × 600 + 300 on an idle
    fleet. On one 8-GPU node with a background 4-GPU job of 900 s arriving with the run, the first
    two iterations go first (equal queue times), the background job and the third run from 600,
    and the fourth, submitted at 600 when a slot freed, waits until 1200: the loop ends with it at
    1800, and the chain that decided its end (the fourth, then the second, whose slot it took)
    waited 600 s."""
    steps = (
        "    - id: shards\n      type: loop\n      config:\n        items: [1, 2, 3, 4]\n"
        "        max_concurrency: 2\n        step:\n          type: job\n"
        "          config: {gpu_count: 4, estimated_duration_seconds: 600}\n"
        "    - id: pause\n      type: wait\n      depends_on: [shards]\n"
        "      config: {duration_seconds: 300}\n"
    )
    idle = run(scenario(tmp_path, inline(steps)))
    assert idle.pipelines is not None
    assert (idle.pipelines[0].makespan_s, idle.pipelines[0].critical_path_wait_s) == (1500.0, 0.0)
    assert idle.pipelines[0].critical_path == ("shards", "pause")
    assert {r.arrival.job_class for r in idle.records} == {"flow/shards"}
    busy = inline(steps) + textwrap.dedent(
        """\
        generators:
          classes:
            - {name: half, tenant: team, local_queue: main, arrivals: {kind: fixed, interval: 1h},
               runtime: {kind: fixed, value: 900}, count: 1, gpus: 4}
        """
    )
    result = run(scenario(tmp_path, busy, nodes=1))
    assert result.pipelines is not None
    (outcome,) = result.pipelines
    starts = {r.arrival.job_id: r.start_s for r in result.records if r.arrival.label == "flow"}
    assert starts == {
        "flow-1/shards[0]/1": 0.0,
        "flow-1/shards[1]/1": 0.0,
        "flow-1/shards[2]/1": 600.0,
        "flow-1/shards[3]/1": 1200.0,
    }
    assert next(r.start_s for r in result.records if r.arrival.job_class == "half") == 600.0
    assert outcome.critical_path_wait_s == 600.0
    assert outcome.makespan_s == 2 * 600 + outcome.critical_path_wait_s + 300


# Flow ------------------------------------------------------------------------------------------------
def test_a_false_condition_skips_its_job_which_never_reaches_the_scheduler(tmp_path: Path) -> None:
    steps = (
        job_step("train", 1, 60)
        + "    - id: gate\n      type: condition\n      depends_on: [train]\n"
        + "      config: {expression: '{{ params.deploy }}', then_steps: [deploy]}\n"
        + job_step("deploy", 1, 60, deps="gate")
    )
    loaded = scenario(
        tmp_path, inline(steps, head="parameters: {deploy: true}\n", rest="params: {deploy: false}\n")
    )
    result = run(loaded)
    assert result.pipelines is not None
    assert [o.status for o in result.pipelines] == ["succeeded"]
    assert list(pipeline_records(result)) == ["flow-1/train/1"]
    assert result.pipelines[0].makespan_s == 60.0 and result.pipelines[0].jobs == 1


def test_a_job_stuck_past_its_steps_timeout_fails_the_run_and_cancels_the_rest(tmp_path: Path) -> None:
    """fail_fast: a 64-GPU job can never be admitted; its step times out at 600 s, the run fails,
    and the side job (running, 3600 s) is cancelled: its GPUs come back and the simulation ends."""
    steps = job_step("big", 64, 60, extra="      timeout: 600\n") + job_step("side", 2, 3600)
    result = run(scenario(tmp_path, inline(steps)))
    assert result.pipelines is not None
    (outcome,) = result.pipelines
    assert outcome.status == "failed" and outcome.end_s == 600.0
    assert "big" in outcome.message
    statuses = pipeline_records(result)
    assert statuses == {"flow-1/big/1": SimJobStatus.CANCELLED, "flow-1/side/1": SimJobStatus.CANCELLED}
    side = next(r for r in result.records if r.arrival.job_id == "flow-1/side/1")
    assert side.end_s == 600.0 and side.gpu_s == 600.0 * 2 and side.reason.startswith("cancelled: ")
    # Nothing runs after 600 s; the run ends at the cancelled job's void completion (no hang).
    assert result.stats.end_s == 3600.0 and not any(r.status is SimJobStatus.RUNNING for r in result.records)
    report = build_report(result)
    assert report["statuses"] == {"cancelled": 2}
    assert report["pipelines"]["not_succeeded"][0]["status"] == "failed"


def test_a_job_that_fails_fails_its_step_under_fail_fast(tmp_path: Path) -> None:
    """A job that runs past its maximum duration fails (timeout); its run fails and the parallel
    branch's job is cancelled."""
    steps = job_step("short", 1, 50, extra="        max_duration_seconds: 100\n") + job_step("long", 1, 5000)
    result = run(scenario(tmp_path, inline(steps, rest="runtime_scale: 4\n")))
    assert result.pipelines is not None
    (outcome,) = result.pipelines
    assert outcome.status == "failed" and outcome.end_s == 100.0
    assert pipeline_records(result) == {
        "flow-1/short/1": SimJobStatus.FAILED,
        "flow-1/long/1": SimJobStatus.CANCELLED,
    }


def test_a_run_that_can_never_finish_ends_with_the_simulation(tmp_path: Path) -> None:
    """A service runs (it never ends by itself) while a job that can never be admitted waits: with no
    horizon the simulation still ends, and the run is reported as still running, with why."""
    steps = job_step("serve", 1, 60, extra="        job_type: service\n") + job_step(
        "big", 64, 60, deps="serve"
    )
    result = run(scenario(tmp_path, inline(steps)))
    assert result.pipelines is not None
    (outcome,) = result.pipelines
    assert outcome.status == "running" and outcome.end_s is None
    assert "big" in outcome.message and "queued" in outcome.message
    report = build_report(result)
    assert report["pipelines"]["by_status"] == {"running": 1}
    assert report["pipelines"]["makespan_s"]["mean"] is None


# Scenario validation ---------------------------------------------------------------------------------
def error_of(tmp_path: Path, workload: str) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        scenario(tmp_path, workload)
    return info.value


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_an_entry_needs_a_pipeline(tmp_path: Path) -> None:
    error = error_of(tmp_path, "pipelines:\n  - arrivals: {at: [0]}\n")
    assert (
        error.path == "workload.pipelines[0].file" and "exactly one of 'file' or 'pipeline'" in error.message
    )
    assert error.source is not None and error.source.endswith("scenario.yaml")
    assert error.line == line_of(tmp_path / "scenario.yaml", "- arrivals")


def test_canned_outputs_must_name_steps_and_params_must_fit(tmp_path: Path) -> None:
    error = error_of(tmp_path, inline(job_step("a", 1, 60), rest="outputs:\n  nope: {x: 1}\n"))
    assert (
        error.path == "workload.pipelines[0].outputs.nope" and "not a step of pipeline flow" in error.message
    )
    assert error.line == line_of(tmp_path / "scenario.yaml", "nope: {x: 1}")
    error = error_of(tmp_path, inline(job_step("a", 1, 60), rest="params:\n  size: 3\n"))
    assert error.path == "workload.pipelines[0].params.size" and "unknown parameter" in error.message
    assert error.line == line_of(tmp_path / "scenario.yaml", "size: 3")


def test_declared_outputs_nothing_can_produce_are_a_load_error(tmp_path: Path) -> None:
    steps = "    - id: ask\n      type: api_call\n      config: {url: 'http://x'}\n      outputs: [config]\n"
    error = error_of(tmp_path, inline(steps))
    assert error.path == "workload.pipelines[0].outputs" and "['config']" in error.message


def test_an_inline_pipelines_errors_point_into_the_scenario(tmp_path: Path) -> None:
    error = error_of(tmp_path, inline(job_step("a", -1, 60)))
    assert error.path == "workload.pipelines[0].pipeline.steps[0].config.gpu_count"
    assert error.line == line_of(tmp_path / "scenario.yaml", "gpu_count: -1")


def test_a_pipeline_files_errors_name_that_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "flow.yaml").write_text(
        "id: flow\ntenant: team\nlocal_queue: main\nsteps:\n"
        "  - id: a\n    type: job\n    config: {gpu_count: 1}\n"
        "  - id: b\n    type: job\n    depends_on: [missing]\n    config: {gpu_count: 1}\n"
    )
    error = error_of(tmp_path, "pipelines:\n  - {file: flow.yaml, arrivals: {at: [0]}}\n")
    assert error.source is not None and error.source.endswith("flow.yaml")
    assert error.line == line_of(tmp_path / "flow.yaml", "depends_on: [missing]")
    error = error_of(tmp_path, "pipelines:\n  - {file: nowhere.yaml, arrivals: {at: [0]}}\n")
    assert error.path == "workload.pipelines[0].file" and "does not exist" in error.message


def test_a_job_step_needs_a_local_queue_of_the_queues(tmp_path: Path) -> None:
    workload = inline(job_step("a", 1, 60)).replace("local_queue: main", "local_queue: other")
    error = error_of(tmp_path, workload)
    assert error.path == "workload.pipelines[0].pipeline" and "team/other" in error.message
    assert error.line == line_of(tmp_path / "scenario.yaml", "- pipeline:")


def test_arrivals_take_one_form_and_an_end(tmp_path: Path) -> None:
    error = error_of(tmp_path, inline(job_step("a", 1, 60), arrivals="{at: [0], every: 1h}"))
    assert error.path == "workload.pipelines[0].arrivals.at"
    error = error_of(tmp_path, inline(job_step("a", 1, 60), arrivals="{every: 1h}"))
    assert error.path == "workload.pipelines[0].arrivals.every" and "never stop" in error.message


# The example scenario ----------------------------------------------------------------------------------
def test_the_example_scenario_is_deterministic_and_waits_on_its_critical_paths() -> None:
    path = resolve_scenario(Path("pipelines"))
    reports = [build_report(run(load_scenario(path)), scenario_name="pipelines") for _ in range(2)]
    first, second = (report["pipelines"] for report in reports)
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert dumps(reports[0]) == dumps(reports[1])
    assert first["runs"] == 10 and first["by_status"] == {"succeeded": 10}
    assert first["critical_path_wait_s"]["max"] > 0
    assert first["critical_paths"] == {"prepare-data > train > evaluate > good-enough > deploy": 10}
    assert reports[0]["by_class"]["train-and-deploy/deploy"]["completed"] == 10
