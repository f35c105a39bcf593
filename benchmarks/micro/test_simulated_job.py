"""One simulated job: a small ``budcore_simulator`` scenario run, divided by its jobs.

Two 8-GPU nodes, one ClusterQueue, 300 jobs (1-8 GPUs, exponential runtimes) arriving faster than
they are served, so admission, placement, completion and the records all take part. Each round
loads and runs the scenario; the saved figure is seconds per simulated job.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from budcore_simulator.cli import run_scenario
from budcore_simulator.scenario import load_scenario
from pytest_benchmark.fixture import BenchmarkFixture

JOBS = 300
SCENARIO = f"""\
name: micro
seed: 7
fleet:
  pools:
    - {{name: a100, product: NVIDIA-A100-SXM4-80GB, gpus_per_node: 8, nodes: 2, price_per_gpu_hour: "3.50"}}
queues:
  documents:
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ResourceFlavor
      metadata: {{name: a100}}
      spec: {{nodeLabels: {{budcore.io/pool: a100}}}}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ClusterQueue
      metadata: {{name: team}}
      spec:
        namespaceSelector: {{}}
        resourceGroups:
          - coveredResources: [nvidia.com/gpu, cpu, memory]
            flavors:
              - name: a100
                resources:
                  - {{name: nvidia.com/gpu, nominalQuota: 16}}
                  - {{name: cpu, nominalQuota: 256}}
                  - {{name: memory, nominalQuota: 2Ti}}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: LocalQueue
      metadata: {{name: main, namespace: team}}
      spec: {{clusterQueue: team}}
workload:
  generators:
    classes:
      - name: train
        tenant: team
        local_queue: main
        count: {JOBS}
        arrivals: {{kind: poisson, rate: 60, per: 1h}}
        runtime: {{kind: exponential, mean: 20m}}
        gpus: {{1: 0.6, 2: 0.2, 4: 0.1, 8: 0.1}}
"""


def test_simulated_job(
    benchmark: BenchmarkFixture,
    tmp_path: Path,
    per_unit: Callable[[BenchmarkFixture, int, str], None],
) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO)

    def run() -> int:
        return len(run_scenario(load_scenario(path)).records)

    jobs = benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    assert jobs == JOBS
    per_unit(benchmark, jobs, "simulated job")
