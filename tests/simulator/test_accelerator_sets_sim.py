"""Accelerator sets in the simulator (issue #18): the trace's ``accelerator`` column, a
generator class's ``accelerator`` (``A|B`` or a list) and the openb ``gpu_spec`` set reach the
flavor assigner as a set, and one ClusterQueue listing a flavor per model serves every set.

The fleet: two V100 16 GB nodes, one V100 32 GB node and one T4 node of 4 GPUs each; the
ClusterQueue lists ``v100-32`` before ``v100-16`` (4 and 8 GPUs), then ``t4``. The expected
flavors follow from that order by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from budcore_simulator.build import build_simulation
from budcore_simulator.scenario import load_scenario
from budcore_simulator.workload.openb import OpenbTrace

from budcore.domain.errors import ValidationError, ValidationErrors

V16, V32, T4 = "nvidia-v100-16gb", "nvidia-v100-32gb", "nvidia-t4-16gb"

SCENARIO = """\
name: accelerator-sets
horizon: 4h
sample_interval: 1m
fleet:
  pools:
    - {{name: v100-16, accelerator: nvidia-v100-16gb, gpus_per_node: 4, nodes: 2, cpu: 64, memory: 256Gi}}
    - {{name: v100-32, accelerator: nvidia-v100-32gb, gpus_per_node: 4, nodes: 1, cpu: 64, memory: 256Gi}}
    - {{name: t4, accelerator: nvidia-t4-16gb, gpus_per_node: 4, nodes: 1, cpu: 64, memory: 256Gi}}
queues:
  documents:
    - {{apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {{name: v100-32}},
       spec: {{nodeLabels: {{budcore.io/accelerator: nvidia-v100-32gb}}}}}}
    - {{apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {{name: v100-16}},
       spec: {{nodeLabels: {{budcore.io/accelerator: nvidia-v100-16gb}}}}}}
    - {{apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {{name: t4}},
       spec: {{nodeLabels: {{budcore.io/accelerator: nvidia-t4-16gb}}}}}}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ClusterQueue
      metadata: {{name: cluster}}
      spec:
        namespaceSelector: {{}}
        resourceGroups:
          - coveredResources: [nvidia.com/gpu, cpu, memory]
            flavors:
              - {{name: v100-32, resources: [{{name: nvidia.com/gpu, nominalQuota: 4}},
                  {{name: cpu, nominalQuota: 64}}, {{name: memory, nominalQuota: 256Gi}}]}}
              - {{name: v100-16, resources: [{{name: nvidia.com/gpu, nominalQuota: 8}},
                  {{name: cpu, nominalQuota: 128}}, {{name: memory, nominalQuota: 512Gi}}]}}
              - {{name: t4, resources: [{{name: nvidia.com/gpu, nominalQuota: 4}},
                  {{name: cpu, nominalQuota: 64}}, {{name: memory, nominalQuota: 256Gi}}]}}
    - {{apiVersion: kueue.x-k8s.io/v1beta2, kind: LocalQueue, metadata: {{name: default, namespace: team}},
       spec: {{clusterQueue: cluster}}}}
workload:
{workload}
"""

# Three jobs of 4 GPUs at once, each accepting either V100, then one asking for the T4 only:
# v100-32 (first in the queue's order), then v100-16 twice (v100-32 is full); never t4.
TRACE = """\
job_id,submit_s,runtime_s,gpus_per_pod,pods,cpu,memory,tenant,local_queue,accelerator
a,0,3600,4,1,8,32Gi,team,default,nvidia-v100-16gb|nvidia-v100-32gb
b,0,3600,4,1,8,32Gi,team,default,nvidia-v100-16gb|nvidia-v100-32gb
c,0,3600,4,1,8,32Gi,team,default,nvidia-v100-16gb|nvidia-v100-32gb
d,0,3600,4,1,8,32Gi,team,default,nvidia-t4-16gb
e,0,3600,4,1,8,32Gi,team,default,nvidia-v100-16gb|nvidia-v100-32gb
"""


def _scenario(tmp_path: Path, workload: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO.format(workload=workload))
    return path


def _flavors(path: Path) -> dict[str, str | None]:
    result = build_simulation(load_scenario(path)).run()
    return {r.arrival.job_id: r.flavor for r in result.records}


def test_a_trace_column_set_follows_the_queues_flavor_order(tmp_path: Path) -> None:
    (tmp_path / "jobs.csv").write_text(TRACE)
    flavors = _flavors(_scenario(tmp_path, "  traces:\n    - {format: budcore, path: jobs.csv}"))
    assert [flavors[j] for j in "abcd"] == ["v100-32", "v100-16", "v100-16", "t4"]
    assert flavors["e"] == "v100-32"  # waits an hour, then the first V100 flavor of the order again


@pytest.mark.parametrize(
    "accelerator", ["nvidia-v100-16gb|nvidia-v100-32gb", "[nvidia-v100-16gb, nvidia-v100-32gb]"]
)
def test_a_generator_class_takes_the_set_in_either_form(tmp_path: Path, accelerator: str) -> None:
    workload = f"""\
  generators:
    limit: 3
    classes:
      - {{name: either, tenant: team, local_queue: default, arrivals: {{kind: fixed, interval: 1s}},
         runtime: {{kind: fixed, value: 1h}}, gpus: {{4: 1.0}}, accelerator: {accelerator}}}"""
    path = _scenario(tmp_path, workload)
    (klass,) = load_scenario(path).scenario.workload.generators.classes  # type: ignore[union-attr]
    assert klass.accelerator == f"{V16}|{V32}"
    flavors = sorted(f for f in _flavors(path).values() if f is not None)
    assert flavors == ["v100-16", "v100-16", "v100-32"]


def test_a_set_no_flavor_of_the_queue_provides_is_a_scenario_error(tmp_path: Path) -> None:
    workload = """\
  generators:
    limit: 1
    classes:
      - {name: h100s, tenant: team, local_queue: default, arrivals: {kind: fixed, interval: 1s},
         runtime: {kind: fixed, value: 1h}, gpus: {1: 1.0}, accelerator: nvidia-h100-80gb|nvidia-a100-80gb}"""
    with pytest.raises((ValidationError, ValidationErrors), match="is not provided by any flavor"):
        load_scenario(_scenario(tmp_path, workload))


def test_a_bad_set_in_a_trace_row_is_that_rows_error(tmp_path: Path) -> None:
    (tmp_path / "jobs.csv").write_text(
        TRACE.replace(
            "e,0,3600,4,1,8,32Gi,team,default,nvidia-v100-16gb|nvidia-v100-32gb",
            "e,0,3600,4,1,8,32Gi,team,default,a||b",
        )
    )
    loaded = load_scenario(_scenario(tmp_path, "  traces:\n    - {format: budcore, path: jobs.csv}"))
    flavors = {r.arrival.job_id: r.flavor for r in build_simulation(loaded).run().records}
    assert "e" not in flavors
    (reader,) = loaded.trace_readers
    assert reader.report.skipped == 1


OPENB_PODS = """\
name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time
p0,8000,30000,4,1000,V100M16|V100M32,LS,Succeeded,0,3600,0
p1,8000,30000,4,1000,V100M16|V100M32,LS,Succeeded,0,3600,0
p2,8000,30000,1,1000,T4|V100M16,LS,Succeeded,0,3600,0
"""


def test_an_openb_gpu_spec_set_is_asked_for_as_a_set(tmp_path: Path) -> None:
    path = tmp_path / "pods.csv"
    path.write_text(OPENB_PODS)
    jobs = {a.job_id: a for a in OpenbTrace(path)}
    assert jobs["openb-p0"].accelerator == f"{V16}|{V32}"
    assert jobs["openb-p2"].accelerator == f"{T4}|{V16}"
    (tmp_path / "jobs.csv").write_text(OPENB_PODS)
    mapping = "{default_tenant: team, default_local_queue: default}"
    workload = f"  traces:\n    - {{format: openb, path: jobs.csv, mapping: {mapping}}}"
    flavors = _flavors(_scenario(tmp_path, workload))
    assert flavors["openb-p0"] == "v100-32"  # the queue lists v100-32 first
    assert flavors["openb-p1"] == "v100-16"
    assert flavors["openb-p2"] == "v100-16"  # T4|V100M16: v100-16 comes before t4
