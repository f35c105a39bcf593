"""Estimated vs actual in the schedule view, runtime estimate error, ClusterQueue usage over time."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

from budcore_simulator.cli import run_scenario
from budcore_simulator.engine import EngineOptions, Simulation, SimulationResult
from budcore_simulator.plots import TimelineBlock, timeline_blocks, write_plots
from budcore_simulator.report import cq_percent_of_nominal, series_csv
from budcore_simulator.scenario import load_scenario
from budcore_simulator.workload.model import JobArrival
from support.scenarios import SMALL

from budcore.domain.cluster import Node
from budcore.domain.resources import ResourceVector
from budcore.scheduling import (
    ClusterQueue,
    FlavorQuotas,
    LocalQueue,
    QueueConfig,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
GPU = "nvidia.com/gpu"


def job(i: int, submit: float, runtime: float, gpus: int, estimate: float | None = None) -> JobArrival:
    return JobArrival(
        submit_s=submit,
        runtime_s=runtime,
        gpus_per_pod=gpus,
        pods=1,
        cpu_milli=1000,
        memory_bytes=2**30,
        tenant="t",
        local_queue="lq",
        priority="normal",
        job_type="batch",
        job_class="c",
        job_id=f"j{i}",
        estimated_runtime_s=estimate,
    )


def simulate(jobs: list[JobArrival], gpus: int = 4) -> SimulationResult:
    quotas = (
        ResourceQuota(name=GPU, nominal_quota=gpus * 1000),
        ResourceQuota(name="cpu", nominal_quota=10**9),
        ResourceQuota(name="memory", nominal_quota=2**60),
    )
    queues = QueueConfig.build(
        flavors=[ResourceFlavor(name="p", node_labels={"pool": "p"})],
        cluster_queues=[
            ClusterQueue(
                name="cq",
                resource_groups=(
                    ResourceGroup(
                        covered_resources=(GPU, "cpu", "memory"),
                        flavors=(FlavorQuotas(name="p", resources=quotas),),
                    ),
                ),
            )
        ],
        local_queues=[LocalQueue(name="lq", namespace="t", cluster_queue="cq")],
    )
    node = Node(
        name="n0",
        labels={"pool": "p"},
        allocatable=ResourceVector.of({GPU: gpus, "cpu": 64, "memory": "512Gi"}),
    )
    return Simulation([node], queues, jobs, options=EngineOptions(start=START)).run()


def test_blocks_are_actual_runs_and_admission_plus_declared_runtime() -> None:
    # 4 GPUs: j0 (2 GPUs, 100 s, declared 150 s) and j1 (2 GPUs) run side by side on GPUs 0-1 and
    # 2-3; j2 (4 GPUs, declared 50 s but runs 80 s) waits for both and is admitted at 200.
    result = simulate(
        [job(0, 0.0, 100.0, 2, estimate=150.0), job(1, 0.0, 200.0, 2), job(2, 10.0, 80.0, 4, 50.0)]
    )
    nodes, rows, blocks = timeline_blocks(result)
    assert nodes == [("n0", 0)] and rows == 4
    by_job: dict[str, list[TimelineBlock]] = {}
    for b in blocks:
        by_job.setdefault(b.job_id, []).append(b)
    assert [b.row for b in by_job["j0"]] == [0, 1]
    assert [b.row for b in by_job["j1"]] == [2, 3]
    assert [b.row for b in by_job["j2"]] == [0, 1, 2, 3]
    assert {(b.actual, b.estimated) for b in by_job["j0"]} == {((0.0, 100.0), (0.0, 150.0))}
    assert {(b.actual, b.estimated) for b in by_job["j1"]} == {((0.0, 200.0), (0.0, 200.0))}
    assert {(b.actual, b.estimated) for b in by_job["j2"]} == {((200.0, 280.0), (200.0, 250.0))}


def test_rows_stop_at_whole_nodes(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(SMALL)
    result = run_scenario(load_scenario(path))
    nodes, rows, blocks = timeline_blocks(result, max_rows=12)
    assert nodes == [("a100-0000", 0)] and rows == 8  # a second 8-GPU node would not fit in 12
    assert blocks and all(0 <= b.row < 8 for b in blocks)
    # no two actual runs overlap on one GPU row
    for row in range(rows):
        spans = sorted(b.actual for b in blocks if b.row == row)
        assert all(a[1] <= b[0] for a, b in pairwise(spans))
    written = write_plots(result, tmp_path / "plots")
    assert (tmp_path / "plots" / "timeline.png") in written


def test_estimate_error_changes_declared_runtimes_only_and_is_deterministic(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(SMALL)
    exact = list(load_scenario(path).arrivals())
    path.write_text(SMALL.replace("workload:\n", "workload:\n  estimate_error: {sigma: 0.5, bias: 1.5}\n"))
    noisy = list(load_scenario(path).arrivals())
    again = list(load_scenario(path).arrivals())
    assert noisy == again
    assert [a._replace(estimated_runtime_s=None) for a in noisy] == exact
    assert all(a.estimate_s == a.runtime_s for a in exact)
    ratios = sorted(a.estimate_s / a.runtime_s for a in noisy)
    assert len(set(ratios)) == len(ratios)
    assert 1.2 < ratios[len(ratios) // 2] < 1.9  # median ratio ≈ bias


def test_cluster_queue_usage_as_percent_of_nominal_over_time() -> None:
    # 4 nominal GPUs; a 2-GPU job runs 0..600 s, then a 4-GPU job 600..900 s (samples every 300 s).
    jobs = [job(0, 0.0, 600.0, 2), job(1, 1.0, 300.0, 4)]
    result = simulate(jobs)
    assert cq_percent_of_nominal(result) == {"cq": [50.0, 50.0, 100.0]}
    lines = series_csv(result).splitlines()
    assert lines[0].startswith("time_s,flavor:p,cq:cq,cq:cq:pct_nominal,")
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    legacy = ["time_s", "flavor:p", "cq:cq", "cq:cq:pct_nominal"]
    assert [[row[c] for c in legacy] for row in rows] == [
        ["0.0", "2.0", "2.0", "50.0"],
        ["300.0", "2.0", "2.0", "50.0"],
        ["600.0", "4.0", "4.0", "100.0"],
    ]
    # Every resource the queue covers has its columns too: the GPU quota held is the GPUs in use.
    assert [row["cq:cq:nvidia.com/gpu"] for row in rows] == ["2.0", "2.0", "4.0"]
    assert [row["cq:cq:nvidia.com/gpu:pct_nominal"] for row in rows] == ["50.0", "50.0", "100.0"]


def test_a_queue_without_nominal_gpus_has_no_percentage() -> None:
    result = simulate([job(0, 0.0, 100.0, 1)])
    result.cq_nominal["cq"] = 0
    assert cq_percent_of_nominal(result) == {"cq": None}
    assert series_csv(result).splitlines()[1].startswith("0.0,1.0,1.0,,")
