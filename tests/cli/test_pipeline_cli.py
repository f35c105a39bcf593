"""``budcore pipeline validate|plan|run`` end to end (in process, through ``main``).

``run`` talks to a real HTTP server on 127.0.0.1 (the example's budsim call) and runs jobs on the
in-memory adapters in simulated time, so the whole file stays within a few seconds.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pipeline.httpserver import LocalHttpServer

import budcore.pipeline
from budcore.cli import main
from budcore.hardware.labels import node_dict

EXAMPLE = Path(budcore.pipeline.__file__).parent / "examples" / "deploy-enterprise-rag.yaml"
START = "2026-01-01T00:00:00Z"
OPTIMIZE = "/api/v1/optimize"

INVALID = """\
id: broken
steps:
  - id: train
    type: job
    config:
      gpu_count: -1
  - id: eval
    type: wait
    depends_on: [train]
    config: {duration_seconds: 5}
"""

FAILING = """\
id: waits-for-approval
steps:
  - id: approve
    type: wait
    config: {wait_for_event: approved, timeout_seconds: 600}
  - id: deploy
    type: job
    depends_on: [approve]
    config: {job_type: batch, estimated_duration_seconds: 60}
"""

ROLLBACK = """\
id: loop-then-rollback
on_failure: rollback
steps:
  - id: fan
    type: loop
    config:
      items: [a, b, c]
      max_concurrency: 2
      step: {type: wait, config: {duration_seconds: 60}}
  - id: deploy
    type: job
    depends_on: [fan]
    config: {job_type: batch, estimated_duration_seconds: 120}
    compensate: {type: wait, config: {duration_seconds: 5}}
  - id: approve
    type: wait
    depends_on: [deploy]
    config: {wait_for_event: ok, timeout_seconds: 30}
"""

QUEUES = """\
apiVersion: kueue.x-k8s.io/v1beta1
kind: ResourceFlavor
metadata:
  name: a100
spec:
  nodeLabels: {pool: a100}
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: ClusterQueue
metadata:
  name: team
spec:
  namespaceSelector: {}
  resourceGroups:
  - coveredResources: ["cpu", "memory", "nvidia.com/gpu"]
    flavors:
    - name: a100
      resources:
      - {name: cpu, nominalQuota: 64}
      - {name: memory, nominalQuota: 512Gi}
      - {name: "nvidia.com/gpu", nominalQuota: 4}
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: LocalQueue
metadata:
  name: default
  namespace: default
spec:
  clusterQueue: team
"""

TWO_TRAININGS = """\
id: two-trainings
steps:
  - id: first
    type: job
    config: {job_type: training, gpu_count: 4, estimated_duration_seconds: 600}
  - id: second
    type: job
    config: {job_type: training, gpu_count: 4, estimated_duration_seconds: 600}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def budsim() -> Iterator[LocalHttpServer]:
    with LocalHttpServer() as server:
        server.route("POST", OPTIMIZE, json={"config": {"tensor_parallel": 2}})
        yield server


def run_example(server: LocalHttpServer, *args: str) -> int:
    return main(["pipeline", "run", str(EXAMPLE), "--param", f"budsim_url={server.url}{OPTIMIZE}", *args])


# validate ----------------------------------------------------------------------------------------


def test_validate_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pipeline", "validate", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert out == (
        f"ok: {EXAMPLE}: pipeline 'deploy-enterprise-rag' v1, 8 steps "
        "(5 job, 1 api_call, 1 notification, 1 condition)\n"
    )


def test_validate_reports_file_line_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = write(tmp_path, "broken.yaml", INVALID)
    assert main(["pipeline", "validate", str(broken)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        f"{broken}:6: steps[0].config.gpu_count: Input should be greater than or equal to 0" in captured.err
    )
    assert "Traceback" not in captured.err


def test_validate_several_files_reports_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = write(tmp_path, "broken.yaml", INVALID)
    queue = write(tmp_path, "queues.yaml", QUEUES)
    missing = tmp_path / "missing.yaml"
    assert main(["pipeline", "validate", str(EXAMPLE), str(broken), str(queue), str(missing)]) == 2
    captured = capsys.readouterr()
    assert f"ok: {EXAMPLE}: pipeline 'deploy-enterprise-rag'" in captured.out
    assert f"{broken}:6: steps[0].config.gpu_count" in captured.err
    assert f"{queue}:2: kind: a ResourceFlavor, not a Pipeline" in captured.err
    assert f"{missing}: no such file or directory" in captured.err
    assert "3 of 4 file(s) invalid" in captured.err

    assert main(["pipeline", "validate", "--format", "json", str(EXAMPLE), str(broken)]) == 2
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False
    good, bad = result["files"]
    assert good["ok"] and good["pipelines"][0]["types"] == {
        "job": 5,
        "api_call": 1,
        "notification": 1,
        "condition": 1,
    }
    assert not bad["ok"] and bad["errors"][0]["line"] == 6
    assert bad["errors"][0]["path"] == "steps[0].config.gpu_count"


# plan --------------------------------------------------------------------------------------------


def test_plan_table_shows_offsets_and_the_critical_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pipeline", "plan", str(EXAMPLE), "--start", START]) == 0
    out = capsys.readouterr().out
    assert "critical path: step-1 → step-4 → step-7 → step-8" in out
    assert "makespan: 6m17s" in out
    assert "deadline: no deadline" in out
    llm = next(line for line in out.splitlines() if "deploy-llm" in line)
    assert "*" in llm and "+6s" in llm and "+5m6s" in llm and "5m" in llm
    orchestrator = next(line for line in out.splitlines() if "deploy-orchestrator" in line)
    assert "+5m11s" in orchestrator and "+6m11s" in orchestrator


def test_plan_json_and_predicted_skips(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["pipeline", "plan", str(EXAMPLE), "--start", START, "--format", "json"]
    assert main([*args, "--buffer", "0s", "--param", "enable_reranker=false"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["critical_path"] == ["step-1", "step-4", "step-7", "step-8"]
    assert plan["makespan_s"] == 362.0  # 1 s budsim + 5 min LLM + 1 min orchestrator + 1 s notification
    assert plan["params"]["enable_reranker"] is False
    steps = {s["id"]: s for s in plan["steps"]}
    assert steps["step-6"]["skipped"] and steps["step-6"]["duration_s"] == 0
    assert not steps["step-3"]["skipped"]
    assert steps["step-7"]["depends_on"] == ["step-2", "step-3", "step-4", "step-5", "step-6"]
    assert [s["id"] for s in plan["steps"] if s["critical"]] == plan["critical_path"]
    assert steps["step-2"]["slack_s"] > 0


def test_plan_csv_and_deadline_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["spec"]["deadline"] = "5m"
    late = write(tmp_path, "late.yaml", yaml.safe_dump(data))
    assert main(["pipeline", "plan", str(late), "--start", START]) == 0
    assert "deadline: LATE: estimated end 1m17s after the deadline" in capsys.readouterr().out
    assert main(["pipeline", "plan", str(late), "--start", START, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["id"] for r in rows] == [f"step-{i}" for i in range(1, 9)]
    assert rows[3]["critical"] == "true" and rows[3]["end_offset_s"] == "306.0"


def test_plan_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    chart = tmp_path / "rag.png"
    assert main(["pipeline", "plan", str(EXAMPLE), "--png", str(chart), "-p", "enable_reranker=false"]) == 0
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert f"wrote {chart}" in capsys.readouterr().err


def test_plan_png_without_matplotlib_names_the_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("budcore.cli.pipeline.has_matplotlib", lambda: False)
    assert main(["pipeline", "plan", str(EXAMPLE), "--png", str(tmp_path / "x.png")]) == 2
    assert "budcore[plots]" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


# run ---------------------------------------------------------------------------------------------


def test_run_the_example(budsim: LocalHttpServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_example(budsim) == 0
    captured = capsys.readouterr()
    assert "succeeded — 8 of 8 steps completed, makespan 6m" in captured.out
    assert (
        "notification: slack → #deployments: RAG system deployed! URL: http://deploy-orchestrator.rag.svc"
        in (captured.out)
    )
    assert "[+5m] step-4 deploy-llm: completed" in captured.err  # progress, on stderr
    assert budsim.calls(OPTIMIZE) == 1
    assert budsim.requests[0].json == {
        "model_id": "meta-llama/Llama-3.3-70B-Instruct",
        "target_throughput": 100,
    }


def test_run_without_the_reranker(budsim: LocalHttpServer, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--param", "enable_reranker=false", "--param", "namespace=prod", "--quiet", "--format", "json"]
    assert run_example(budsim, *args) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # --quiet: no progress lines
    result: dict[str, Any] = json.loads(captured.out)
    assert result["status"] == "succeeded"
    assert result["message"] == "7 of 8 steps completed"
    steps = {s["id"]: s for s in result["steps"]}
    assert steps["step-6"]["status"] == "skipped"
    assert all(s["status"] == "completed" for k, s in steps.items() if k != "step-6")
    assert steps["step-7"]["outputs"]["url"] == "http://deploy-orchestrator.prod.svc"
    assert result["makespan_s"] == 360.0
    assert (
        result["notifications"][0]["message"]
        == "RAG system deployed! URL: http://deploy-orchestrator.prod.svc"
    )


def test_a_failed_run_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    failing = write(tmp_path, "failing.yaml", FAILING)
    assert main(["pipeline", "run", str(failing)]) == 1
    captured = capsys.readouterr()
    assert "failed — 0 of 2 steps completed; failed: approve, makespan 10m" in captured.out
    assert "event 'approved' did not come within 600 s" in captured.out
    assert "deploy: cancelled" in captured.err


def test_a_rolled_back_run_exits_1_and_lists_iterations_under_their_loop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = write(tmp_path, "rollback.yaml", ROLLBACK)
    assert main(["pipeline", "run", str(pipeline), "--format", "json", "-q"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "rolled_back"
    assert [s["id"] for s in result["steps"]] == [
        "fan",
        "fan[0]",
        "fan[1]",
        "fan[2]",
        "deploy",
        "deploy~undo",
        "approve",
    ]
    assert [s["end_offset_s"] for s in result["steps"][1:4]] == [60.0, 60.0, 120.0]  # two at a time
    assert result["makespan_s"] == 275.0  # 2 min loop + 2 min job + 30 s wait + 5 s compensation


def test_run_on_given_queues_and_nodes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pipeline = write(tmp_path, "two.yaml", TWO_TRAININGS)
    queues = write(tmp_path, "queues.yaml", QUEUES)
    node = node_dict("a100-0", {"pool": "a100"}, {"cpu": "64", "memory": "512Gi", "nvidia.com/gpu": "8"})
    nodes = write(
        tmp_path, "nodes.yaml", yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [node]})
    )
    args = ["pipeline", "run", str(pipeline), "--format", "json", "-q"]
    assert main([*args, "--queues", str(queues), "--nodes", str(nodes)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (
        result["makespan_s"] == 1200.0
    )  # a quota of 4 GPUs runs the two 4-GPU trainings one after the other

    assert main([*args, "--queues", str(queues)]) == 2
    assert (
        capsys.readouterr().err == "error: --nodes: --queues and --nodes go together: give both, or neither\n"
    )


# errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("enable_reranker=maybe", "error: --param enable_reranker: expected boolean, got str 'maybe'"),
        ("colour=red", "error: --param colour: unknown parameter (known: budsim_url, embedding_model, "),
        ("enable_reranker", "error: --param: expected NAME=VALUE, got 'enable_reranker'"),
        ("llm_model=[a", "error: --param llm_model: '[a' is not a YAML value"),
    ],
)
@pytest.mark.parametrize("command", ["plan", "run"])
def test_a_bad_param_is_one_line(
    command: str, param: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pipeline", command, str(EXAMPLE), "--param", param]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(message)
    assert captured.err.count("\n") == 1
    assert captured.out == ""


def test_a_string_parameter_keeps_the_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pipeline", "plan", str(EXAMPLE), "--format", "json", "-p", "namespace=1.10"]) == 0
    assert json.loads(capsys.readouterr().out)["params"]["namespace"] == "1.10"


@pytest.mark.parametrize("command", ["plan", "run"])
def test_missing_and_invalid_files(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.yaml"
    assert main(["pipeline", command, str(missing)]) == 2
    assert capsys.readouterr().err == f"error: {missing}: no such file or directory: {missing}\n"
    bad_yaml = write(tmp_path, "bad.yaml", "id: x\nsteps: [\n")
    assert main(["pipeline", command, str(bad_yaml)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad_yaml}:") and "malformed YAML" in err
    broken = write(tmp_path, "broken.yaml", INVALID)
    assert main(["pipeline", command, str(broken)]) == 2
    assert f"{broken}:6: steps[0].config.gpu_count" in capsys.readouterr().err


def test_ctrl_c_exits_130_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("budcore.pipeline.local.LocalRunner.run", interrupted)
    assert main(["pipeline", "run", str(EXAMPLE), "-q"]) == 130
    assert capsys.readouterr().err == "interrupted\n"
