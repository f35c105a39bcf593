"""The synthetic openb trace of ``benchmarks/bench_openb.py`` (issue #18): the published fleet's
model mix exactly, the pod list's size and columns, and readable by budcore's openb readers.

The expected figures are the published ones (``cluster-trace-gpu-v2023/README.md``: 1,213 GPU
nodes, 8,152 pods; the node list's models), not the generator's own output.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

from budcore_simulator.workload.openb import OpenbTrace, read_openb_nodes

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_openb.py"


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_openb", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_openb", module)
    spec.loader.exec_module(module)
    return module


def test_the_synthetic_trace_has_the_published_fleet_and_pod_count(tmp_path: Path) -> None:
    module = bench()
    module.write(tmp_path, 2023, 0.338, "round-up")
    nodes = (tmp_path / "nodes.csv").read_text().splitlines()
    assert nodes[0] == "sn,cpu_milli,memory_mib,gpu,model"
    rows = [line.split(",") for line in nodes[1:]]
    assert len(rows) == 1213
    assert sum(int(r[3]) for r in rows) == 6212
    models = Counter(r[4] for r in rows)
    assert models == {"G2": 549, "T4": 404, "P100": 134, "G3": 39, "V100M16": 55, "V100M32": 30, "A10": 2}
    pods = (tmp_path / "pods.csv").read_text().splitlines()
    assert pods[0] == (
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,"
        "deletion_time,scheduled_time"
    )
    assert len(pods) == 8152 + 1
    reader = OpenbTrace(tmp_path / "pods.csv", fractional="round-up", include_cpu_only=True)
    assert len(list(reader)) == 8152
    assert reader.report.skipped == 0
    fleet = read_openb_nodes(tmp_path / "nodes.csv")
    assert (fleet.nodes, fleet.gpus, fleet.unknown_models) == (1213, 6212, ("G2", "G3"))
    assert len(fleet.pools) == 15  # one per model and node shape: the published list has 15


def test_the_draw_is_deterministic_and_has_shares_and_sets() -> None:
    module = bench()
    first, again = module.pod_rows(7, 0.338, 2000), module.pod_rows(7, 0.338, 2000)
    assert first == again
    shares = [r for r in first if r[3] == 1 and r[4] < 1000]
    sets = [r for r in first if "|" in r[5]]
    pending = [r for r in first if r[7] == "Pending"]
    assert shares and sets and pending
    assert all(r[10] == "" for r in pending)  # never scheduled
    assert all(r[8] <= r[9] for r in first)  # created before deleted
