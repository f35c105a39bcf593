"""Replaying an openb-shaped GPU trace: a synthetic pod list in the published format, on the trace's fleet.

Issue #18 asks that "the full openb pod list replays in under 10 s on this machine". The real
files (Alibaba ``clusterdata``, ``cluster-trace-gpu-v2023``) are not shipped here and a benchmark
must not fetch them, so this script **writes a synthetic trace in the trace's published format**
(same columns, same units, same value sets) and replays that:

* the node list is the published fleet's model mix exactly: 1,213 GPU nodes, 6,212 GPUs, the
  counts of every (model, GPUs, CPU, memory) shape of ``openb_node_list_gpu_node.csv``
  (:data:`NODE_SHAPES`), in a deterministic shuffled order;
* the pod list has 8,152 pods like ``openb_pod_list_default.csv``, drawn with a fixed seed from
  marginal tables of that file (:data:`GPU_COUNTS`, :data:`POD_SHAPES`, :data:`GPU_MILLI`,
  :data:`QOS`, :data:`PHASES`, quantiles of creation times and of runtimes per phase): 38% of the
  pods ask for a share of one GPU (``gpu_milli`` < 1000), 13% for no GPU, the rest for 1–8 whole
  GPUs; ``Pending`` pods have no ``scheduled_time``; ``Running`` pods end at the trace's end
  (censored). With ``--gpuspec`` a share of the GPU pods gets a ``gpu_spec`` (a model or a set,
  ``V100M16|V100M32``) drawn from ``openb_pod_list_gpuspec33.csv``'s table (:data:`GPU_SPECS`).

The tables are aggregate figures of the published files (counts and quantiles), not rows of them;
a draw is not the real trace (no correlation between a pod's shape and its runtime is kept, for
one), so figures from it are the replay cost of a trace of that size and shape, not of the trace.

The replay is the scenario a user would write (``fleet.node_list`` with ``format: openb``, one
ClusterQueue with a flavor per model whose quota is the model's capacity, the pod list as an
``openb`` trace with CPU-only pods included), run through the Python API (``load_scenario``,
``build_simulation(...).run()``): CPU seconds (``time.process_time``) of loading and of the run,
min and median of ``--rounds`` rounds, each followed by the bare ``heapq`` loop of
``bench_simulator.py`` with as many events (the same reference, interleaved)::

    .venv/bin/python benchmarks/bench_openb.py                  # 3 rounds, default pod list shape
    .venv/bin/python benchmarks/bench_openb.py --gpuspec 0.338  # a third of GPU pods constrained
    .venv/bin/python benchmarks/bench_openb.py --write DIR      # only write the files (and scenario)
    .venv/bin/budcore simulate DIR/scenario.yaml --no-plots     # the same replay from the CLI
"""

from __future__ import annotations

import argparse
import bisect
import csv
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_simulator import bare_heap
from budcore_simulator.build import build_simulation
from budcore_simulator.scenario import load_scenario

# (model, GPUs, cpu_milli, memory_mib) -> nodes: every shape of the published GPU node list.
NODE_SHAPES: dict[tuple[str, int, int, int], int] = {
    ("A10", 1, 128000, 1048576): 2,
    ("G2", 8, 96000, 393216): 549,
    ("G3", 8, 128000, 786432): 39,
    ("P100", 1, 8000, 61440): 3,
    ("P100", 2, 8000, 61440): 2,
    ("P100", 2, 16000, 122880): 107,
    ("P100", 2, 64000, 262144): 22,
    ("T4", 2, 104000, 524288): 387,
    ("T4", 4, 96000, 393216): 17,
    ("V100M16", 1, 8000, 32768): 19,
    ("V100M16", 4, 32000, 131072): 28,
    ("V100M16", 8, 64000, 262144): 7,
    ("V100M16", 8, 82000, 344064): 1,
    ("V100M32", 4, 48000, 376832): 9,
    ("V100M32", 8, 96000, 786432): 21,
}
PODS = 8152
# num_gpu -> pods of the default list.
GPU_COUNTS = {0: 1088, 1: 6989, 2: 16, 4: 15, 8: 44}
# num_gpu -> {(cpu_milli, memory_mib): pods}: the most frequent requests of each GPU count (96% of
# the 1-GPU pods and 99% of the CPU-only ones; a draw uses these weights alone).
POD_SHAPES: dict[int, dict[tuple[int, int], int]] = {
    0: {
        (12500, 57344): 364,
        (32000, 49152): 284,
        (8000, 30517): 163,
        (15400, 51200): 120,
        (16500, 51200): 95,
    },
    1: {
        (3152, 5600): 1592,
        (11300, 49152): 857,
        (11908, 47104): 778,
        (11400, 48128): 534,
        (8000, 30517): 486,
        (18708, 64512): 255,
        (9810, 41560): 195,
        (4000, 22888): 189,
        (4000, 15258): 182,
        (12000, 24576): 158,
        (15700, 58368): 158,
        (4152, 10600): 152,
        (4000, 30517): 136,
        (16000, 32768): 108,
        (8000, 16384): 104,
        (4000, 24576): 104,
    },
    2: {(16200, 66560): 7, (6000, 65536): 3, (30200, 160768): 3, (17400, 43008): 2},
    4: {(32200, 132096): 9, (32000, 131072): 3, (60200, 320512): 3},
    8: {(88000, 327680): 18, (64200, 263168): 18, (120000, 737280): 3, (64000, 262144): 3},
}
# gpu_milli of the 1-GPU pods (1000: a whole GPU; the rest are shares of one).
GPU_MILLI = {
    1000: 3911, 810: 1078, 470: 750, 320: 328, 650: 253, 230: 140, 460: 128, 590: 75, 160: 74,
    550: 72, 220: 62, 370: 47, 110: 24, 480: 19, 50: 7, 330: 7, 350: 6, 270: 4, 440: 2, 140: 1,
}  # fmt: skip
# (qos, has GPUs) -> pods.
QOS = {
    ("LS", True): 4011, ("BE", True): 2948, ("Burstable", True): 99, ("Guaranteed", True): 6,
    ("LS", False): 636, ("BE", False): 450, ("Guaranteed", False): 1, ("Burstable", False): 1,
}  # fmt: skip
PHASES = {"Running": 5193, "Failed": 1870, "Pending": 897, "Succeeded": 192}
# Quantiles (probability, seconds) of creation_time, and of the runtime per phase (deletion -
# scheduled; for Pending, deletion - creation): drawn by linear interpolation between them.
CREATION = ((0.0, 0), (0.1, 10326485), (0.25, 10736456), (0.5, 11516698), (0.75, 12411255),
            (0.9, 12781139), (1.0, 12901761))  # fmt: skip
TRACE_END = 12902960  # the latest deletion_time: where Running pods were last seen
RUNTIMES = {
    "Running": ((0.0, 16), (0.1, 83), (0.25, 217), (0.5, 839), (0.75, 2699), (0.9, 10597),
                (0.99, 291826), (1.0, 12537496)),
    "Failed": ((0.0, 4), (0.1, 52), (0.25, 137), (0.5, 219), (0.75, 846), (0.9, 2268), (0.99, 25295),
               (1.0, 165411)),
    "Pending": ((0.0, 0), (0.1, 22), (0.25, 50), (0.5, 94), (0.75, 161), (0.9, 342), (0.99, 2080),
                (1.0, 11717)),
    "Succeeded": ((0.0, 18), (0.1, 102), (0.25, 1129), (0.5, 3897), (0.75, 4140), (0.9, 4649),
                  (0.99, 175089), (1.0, 1332357)),
}  # fmt: skip
# Scheduling delay (scheduled - creation) quantiles of the pods that were scheduled.
WAITS = ((0.0, 0), (0.5, 2), (0.8, 36), (0.9, 106), (0.95, 241), (0.99, 908), (1.0, 14330))
# gpu_spec of the constrained GPU pods of openb_pod_list_gpuspec33.csv (2,388 of 7,064).
GPU_SPECS = {
    "T4": 1291, "G2": 331, "P100": 279, "V100M16|V100M32": 141, "P100|V100M16|V100M32": 103, "G3": 86,
    "G2|P100|T4|V100M16|V100M32": 39, "P100|T4|V100M16|V100M32": 33, "A10|G2|T4|V100M16|V100M32": 24,
    "V100M16|V100M32|V100M32": 22, "V100M32": 20, "A10|T4": 6, "P100|V100M16": 4,
    "A10|G2|P100|T4|V100M16|V100M32|V100M32": 3, "T4|V100M16|V100M32": 3, "V100M16": 3,
}  # fmt: skip
POD_COLUMNS = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec", "qos", "pod_phase",
               "creation_time", "deletion_time", "scheduled_time")  # fmt: skip


def _pick(rng: random.Random, table: dict[object, int]) -> object:
    keys = list(table)
    return rng.choices(keys, weights=[table[k] for k in keys])[0]


def _quantile(rng: random.Random, points: Sequence[tuple[float, int]]) -> int:
    """A draw from the piecewise-linear distribution through ``points`` (probability, value)."""
    u = rng.random()
    probabilities = [p for p, _ in points]
    i = max(1, bisect.bisect_left(probabilities, u))
    (p0, v0), (p1, v1) = points[i - 1], points[i]
    return round(v0 + (v1 - v0) * (u - p0) / (p1 - p0))


def node_rows(seed: int) -> list[list[object]]:
    """The node list: every published shape as often as published, shuffled deterministically."""
    shapes = [shape for shape, count in NODE_SHAPES.items() for _ in range(count)]
    random.Random(seed).shuffle(shapes)
    return [
        [f"openb-node-{i:04d}", cpu, memory, gpus, model]
        for i, (model, gpus, cpu, memory) in enumerate(shapes)
    ]


def pod_rows(seed: int, gpuspec: float = 0.0, pods: int = PODS) -> list[list[object]]:
    """``pods`` pods drawn from the marginal tables, in creation order (as the published file)."""
    rng = random.Random(seed)
    creations = sorted(_quantile(rng, CREATION) for _ in range(pods))
    rows: list[list[object]] = []
    for i, created in enumerate(creations):
        gpus = int(_pick(rng, GPU_COUNTS))  # type: ignore[call-overload]
        cpu, memory = _pick(rng, POD_SHAPES[gpus])  # type: ignore[misc]
        milli = int(_pick(rng, GPU_MILLI)) if gpus == 1 else (1000 if gpus else 0)  # type: ignore[call-overload]
        qos = _pick(rng, {q: n for (q, has_gpu), n in QOS.items() if has_gpu == (gpus > 0)})
        phase = str(_pick(rng, PHASES))
        spec = str(_pick(rng, GPU_SPECS)) if gpus and rng.random() < gpuspec else ""
        runtime = _quantile(rng, RUNTIMES[phase])
        if phase == "Pending":
            scheduled: object = ""
            deleted = min(created + runtime, TRACE_END)
        else:
            start = min(created + _quantile(rng, WAITS), TRACE_END)
            scheduled = start
            deleted = TRACE_END if phase == "Running" else min(start + runtime, TRACE_END)
            if phase == "Running" and rng.random() < 0.5:  # half were last seen before the end
                deleted = min(start + runtime, TRACE_END)
        rows.append(
            [f"openb-pod-{i:04d}", cpu, memory, gpus, milli, spec, qos, phase, created, deleted, scheduled]
        )
    return rows


def _write_csv(path: Path, header: Sequence[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def scenario_text(fractional: str) -> str:
    """One ClusterQueue with a flavor per model, each with its model's capacity as quota (as
    ``simulator/workload/TRACES.md`` recommends), one LocalQueue, the pods as an openb trace."""
    capacity: dict[str, list[int]] = {}
    for (model, gpus, cpu, memory), count in NODE_SHAPES.items():
        total = capacity.setdefault(model, [0, 0, 0])
        total[0] += gpus * count
        total[1] += cpu // 1000 * count
        total[2] += memory * count
    flavors = "\n".join(
        f"    - {{apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {{name: {m.lower()}}}, "
        f"spec: {{nodeLabels: {{nvidia.com/gpu.product: {m}}}}}}}"
        for m in capacity
    )
    quotas = "\n".join(
        f"              - name: {m.lower()}\n"
        "                resources:\n"
        f"                  - {{name: nvidia.com/gpu, nominalQuota: {g}}}\n"
        f"                  - {{name: cpu, nominalQuota: {c}}}\n"
        f"                  - {{name: memory, nominalQuota: {mem}Mi}}"
        for m, (g, c, mem) in capacity.items()
    )
    return f"""\
# Synthetic openb-shaped replay (benchmarks/bench_openb.py): NOT the published trace.
name: openb-synthetic
sample_interval: 10m
fleet:
  node_list: {{format: openb, path: nodes.csv}}
  prices: {{G2: "1.10", G3: "1.50"}}
queues:
  documents:
{flavors}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ClusterQueue
      metadata: {{name: cluster}}
      spec:
        namespaceSelector: {{}}
        resourceGroups:
          - coveredResources: [nvidia.com/gpu, cpu, memory]
            flavors:
{quotas}
    - {{apiVersion: kueue.x-k8s.io/v1beta2, kind: LocalQueue, metadata: {{name: default, namespace: default}},
       spec: {{clusterQueue: cluster}}}}
workload:
  traces:
    - {{format: openb, path: pods.csv, fractional: {fractional}, include_cpu_only: true}}
"""


def write(
    directory: Path, seed: int, gpuspec: float, fractional: str, pods: int = PODS, real: Path | None = None
) -> Path:
    """The trace files and the scenario in ``directory``; with ``real``, the published files found
    there (``openb_node_list_gpu_node.csv``, ``openb_pod_list_default.csv``) instead of a draw."""
    directory.mkdir(parents=True, exist_ok=True)
    if real is not None:
        shutil.copyfile(real / "openb_node_list_gpu_node.csv", directory / "nodes.csv")
        shutil.copyfile(real / "openb_pod_list_default.csv", directory / "pods.csv")
    else:
        _write_csv(
            directory / "nodes.csv", ("sn", "cpu_milli", "memory_mib", "gpu", "model"), node_rows(seed)
        )
        _write_csv(directory / "pods.csv", POD_COLUMNS, pod_rows(seed, gpuspec, pods))
    path = directory / "scenario.yaml"
    path.write_text(scenario_text(fractional))
    return path


def replay(path: Path) -> tuple[float, float, int, int, int]:
    """CPU seconds of loading and of the run; jobs, events and completed jobs."""
    started = time.process_time()
    loaded = load_scenario(path)
    simulation = build_simulation(loaded)
    loading = time.process_time() - started
    started = time.process_time()
    result = simulation.run()
    run = time.process_time() - started
    completed = sum(1 for r in result.records if r.status.value == "completed")
    return loading, run, len(result.records), result.stats.events, completed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--gpuspec", type=float, default=0.0, help="share of GPU pods with a gpu_spec (0.338)"
    )
    parser.add_argument("--fractional", default="share", choices=("share", "round-up", "skip"))
    parser.add_argument("--pods", type=int, default=PODS, help=f"pods to draw (default {PODS}, the trace's)")
    parser.add_argument(
        "--real",
        type=Path,
        help="replay the published files found in this directory instead (a cross-check; never fetched here)",
    )
    parser.add_argument("--write", type=Path, help="only write nodes.csv, pods.csv and scenario.yaml here")
    args = parser.parse_args()
    if args.write is not None:
        print(write(args.write, args.seed, args.gpuspec, args.fractional, args.pods, args.real))
        return
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder), args.seed, args.gpuspec, args.fractional, args.pods, args.real)
        totals, loads, heaps = [], [], []
        for round_ in range(args.rounds):
            loading, run, jobs, events, completed = replay(path)
            heap = bare_heap(events)
            totals.append(loading + run)
            loads.append(loading)
            heaps.append(heap)
            print(
                f"round {round_ + 1}: load {loading:.2f} + run {run:.2f} = {loading + run:.2f} CPU s; "
                f"{jobs} jobs ({completed} completed), {events} events; bare heapq {heap:.3f} CPU s"
            )
    what = f"published files in {args.real}" if args.real else f"synthetic openb, {args.pods} pods"
    print(
        f"{what} (gpuspec {args.gpuspec}, fractional {args.fractional}): load+run CPU s min "
        f"{min(totals):.2f} median {statistics.median(totals):.2f} (load min {min(loads):.2f}); "
        f"bare heapq min {min(heaps):.3f} median {statistics.median(heaps):.3f}"
    )


if __name__ == "__main__":
    main()
