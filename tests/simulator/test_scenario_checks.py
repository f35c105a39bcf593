"""Scenario mistakes the models cannot see alone fail the load, naming the field and its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from budcore_simulator.engine import Simulation
from budcore_simulator.scenario import LoadedScenario, load_scenario
from support.scenarios import SMALL

from budcore.domain.errors import ValidationError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        load_scenario(write(tmp_path, text))
    return info.value


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def simulate(loaded: LoadedScenario) -> Simulation:
    return Simulation(
        loaded.nodes,
        loaded.queues,
        loaded.arrivals(),
        options=loaded.engine_options(),
        policy=loaded.scenario.policy.admission(),
    )


def test_a_horizon_must_be_positive(tmp_path: Path) -> None:
    error = error_of(tmp_path, SMALL.replace("horizon: 4h", "horizon: 0"))
    assert error.path == "horizon" and error.line == 3


def test_arrivals_that_never_end_need_a_bound(tmp_path: Path) -> None:
    text = SMALL.replace("horizon: 4h\n", "")
    error = error_of(tmp_path, text)
    assert error.path == "workload.generators.classes[0]"
    assert "never stops arriving" in error.message and error.line == line_of(text, "- name: train")
    load_scenario(
        write(tmp_path, text.replace("gpus: {1:", "count: 5\n        gpus: {1:"))
    )  # a count ends it


def test_an_unknown_local_queue_is_named_with_the_known_ones(tmp_path: Path) -> None:
    text = SMALL.replace("local_queue: main", "local_queue: nope")
    error = error_of(tmp_path, text)
    assert error.path == "workload.generators.classes[0].local_queue"
    assert error.line == line_of(text, "local_queue: nope")
    assert "team/nope" in error.message and "LocalQueues: team/main" in error.message


def test_an_accelerator_no_flavor_provides_fails_the_load(tmp_path: Path) -> None:
    text = SMALL.replace("gpus: {1:", "accelerator: NVIDIA-FOO-9000\n        gpus: {1:")
    error = error_of(tmp_path, text)
    assert error.path == "workload.generators.classes[0].accelerator"
    assert "NVIDIA-FOO-9000" in error.message and "a100 (nvidia-a100-80gb)" in error.message


@pytest.mark.parametrize("asked", ["nvidia-a100-80gb", "NVIDIA-A100-SXM4-80GB"])
def test_a_pool_flavor_provides_its_nodes_accelerator(tmp_path: Path, asked: str) -> None:
    """The flavor selects its nodes by pool name; the nodes say they are A100s, so a job asking for
    the A100 by catalog slug or by product string is admitted there (it used to wait forever)."""
    text = SMALL.replace("gpus: {1:", f"accelerator: {asked}\n        gpus: {{1:")
    result = simulate(load_scenario(write(tmp_path, text))).run()
    assert result.records and all(r.admitted_s is not None for r in result.records if r.status == "completed")
    assert sum(r.status == "completed" for r in result.records) > len(result.records) // 2


def test_a_missing_trace_file_fails_the_load(tmp_path: Path) -> None:
    text = SMALL.replace("workload:\n", "workload:\n  traces: [{format: budcore, path: nope.csv}]\n")
    error = error_of(tmp_path, text)
    assert error.path == "workload.traces[0].path" and "nope.csv" in error.message


def test_a_job_that_can_never_be_admitted_says_why(tmp_path: Path) -> None:
    text = SMALL.replace(
        "gpus: {1: 0.6, 2: 0.2, 4: 0.1, 8: 0.1}", "gpus: 32\n        gpus_per_node: 8\n        count: 3"
    )
    result = simulate(load_scenario(write(tmp_path, text))).run()
    first, *rest = result.records
    assert all(r.status == "queued" for r in result.records)
    assert "current podset request (32) > maximum capacity (16)" in first.reason
    assert rest and all(
        r.reason.startswith(f"behind {first.arrival.job_id}, which asks the same") for r in rest
    )


def test_trace_readers_report_what_they_skipped(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(
        "job_id,submit_s,runtime_s,gpus_per_pod,tenant,local_queue\na,0,60,1,team,main\nb,10,-5,1,team,main\n"
    )
    text = SMALL.replace(
        "workload:\n  generators:", "workload:\n  traces: [{format: budcore, path: t.csv}]\n  generators:"
    )
    loaded = load_scenario(write(tmp_path, text))
    simulate(loaded).run()
    (reader,) = loaded.trace_readers
    assert reader.report.emitted == 1 and reader.report.skipped == 1
    assert "runtime_s" in str(reader.report.details[0])


def test_references_the_loader_checks_carry_the_line(tmp_path: Path) -> None:
    text = SMALL.replace(
        "spec: {nodeLabels: {budcore.io/pool: a100}}", "spec: {nodeLabels: {budcore.io/pool: h100}}"
    )
    error = error_of(tmp_path, text)
    assert error.path == "queues" and error.line == line_of(text, "queues:")
    assert "ResourceFlavor 'a100' selects no node" in error.message
    missing = SMALL.replace(
        SMALL[SMALL.index("queues:") : SMALL.index("workload:")], "queues: {path: nope.yaml}\n"
    )
    error = error_of(tmp_path, missing)
    assert error.path == "queues.path" and error.line == line_of(missing, "queues: {path")
