"""``timeline.png`` draws every node, idle ones too, or says on the plot how many it shows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import matplotlib
from budcore_simulator.engine import EngineOptions, Simulation, SimulationResult
from budcore_simulator.plots import TIMELINE_ROWS, timeline_blocks, timeline_caption, timeline_figure
from budcore_simulator.workload.model import JobArrival

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

matplotlib.use("Agg")

GPU = "nvidia.com/gpu"
OUTPUTS = Path(__file__).resolve().parents[2] / "simulator" / "OUTPUTS.md"


def fleet_run(nodes: int, jobs: int) -> SimulationResult:
    """``nodes`` 8-GPU nodes named n00, n01, ...; ``jobs`` whole-node jobs of 100 s at time 0."""
    quotas = (
        ResourceQuota(name=GPU, nominal_quota=nodes * 8 * 1000),
        ResourceQuota(name="cpu", nominal_quota=10**9),
        ResourceQuota(name="memory", nominal_quota=2**62),
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
    fleet = [
        Node(
            name=f"n{i:02d}",
            labels={"pool": "p"},
            allocatable=ResourceVector.of({GPU: 8, "cpu": 64, "memory": "512Gi"}),
        )
        for i in range(nodes)
    ]
    arrivals = [
        JobArrival(
            submit_s=0.0,
            runtime_s=100.0,
            gpus_per_pod=8,
            pods=1,
            cpu_milli=1000,
            memory_bytes=2**30,
            tenant="t",
            local_queue="lq",
            priority="normal",
            job_type="batch",
            job_class="c",
            job_id=f"j{i}",
        )
        for i in range(jobs)
    ]
    options = EngineOptions(start=datetime(2026, 1, 1, tzinfo=UTC))
    return Simulation(fleet, queues, arrivals, options=options).run()


def test_every_node_is_drawn_idle_ones_included() -> None:
    result = fleet_run(nodes=10, jobs=2)  # 8 of the 10 nodes run nothing
    nodes, rows, _ = timeline_blocks(result)
    assert [name for name, _ in nodes] == [f"n{i:02d}" for i in range(10)]
    assert rows == 80 and [first for _, first in nodes] == list(range(0, 80, 8))
    assert timeline_caption(result, len(nodes)) is None
    figure = timeline_figure(result)
    assert "showing" not in figure.axes[0].get_title()
    assert len(figure.axes[0].get_yticklabels()) == 10


def test_more_nodes_than_rows_says_how_many_are_shown() -> None:
    result = fleet_run(nodes=10, jobs=10)
    nodes, rows, blocks = timeline_blocks(result, max_rows=32)
    assert [name for name, _ in nodes] == ["n00", "n01", "n02", "n03"] and rows == 32
    assert {b.row for b in blocks} == set(range(32))
    caption = timeline_caption(result, len(nodes), max_rows=32)
    assert caption == "showing 4 of 10 nodes (the first by name; at most 32 GPU rows are drawn)"
    title = timeline_figure(result, max_rows=32).axes[0].get_title()
    assert "showing 4 of 10 nodes" in title


def test_the_default_limit_and_its_caption_are_documented() -> None:
    text = " ".join(OUTPUTS.read_text(encoding="utf-8").split())
    assert f"at most {TIMELINE_ROWS} GPU rows" in text
    assert '"showing K of N nodes' in text
