"""The openb reader (Alibaba's 2023 GPU trace): pods to jobs, the node list to a fleet, and every
trace format found through the plugin registry.

The sample files under ``data/openb/`` are hand-written in the trace's documented format
(``alibaba/clusterdata`` ``cluster-trace-gpu-v2023/README.md``): a dozen nodes of every model,
and a dozen pods covering whole, fractional, multi-GPU and CPU-only requests, GPU-model sets, an
undisclosed model, a never-scheduled pod and pods censored by the end of the trace.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from budcore_simulator.build import build_simulation
from budcore_simulator.scenario import load_scenario
from budcore_simulator.workload import (
    OpenbTrace,
    guess_format,
    open_trace,
    parse_trace_spec,
    read_openb_nodes,
)
from budcore_simulator.workload.openb import (
    CENSORED,
    FRACTIONAL_SKIPPED,
    ROUNDED_UP,
    UNSCHEDULED,
)
from budcore_simulator.workload.traces import SAMPLES_DIR, trace_formats

from budcore.domain.errors import ValidationError
from budcore.plugins import PluginRegistry, default_registry

DATA = Path(__file__).parent / "data" / "openb"
PODS = DATA / "openb_pod_list_sample.csv"
NODES = DATA / "openb_node_list_gpu_node.csv"
MODELS = ("P100", "T4", "V100M16", "V100M32", "A10", "G2", "G3")
HEADER = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,"
    "scheduled_time"
)


# Pods ---------------------------------------------------------------------------------------------
def test_pods_become_one_pod_jobs_with_the_documented_mapping() -> None:
    reader = OpenbTrace(PODS, fractional="skip")
    jobs = {a.job_id: a for a in reader}
    assert sorted(jobs) == [
        f"openb-openb-pod-{n:04d}" for n in (0, 2, 4, 5, 6, 7, 8, 10, 11)
    ]  # 0001 and 0009 ask for a share of a GPU (skipped here), 0003 for none
    whole = jobs["openb-openb-pod-0000"]
    assert (whole.submit_s, whole.runtime_s, whole.gpus_per_pod, whole.pods) == (0.0, 12000.0, 1, 1)
    assert (whole.cpu_milli, whole.memory_bytes) == (12000, 16384 * 2**20)
    assert (whole.priority, whole.accelerator) == ("high", None)  # LS, no gpu_spec
    gang = jobs["openb-openb-pod-0002"]
    assert (gang.gpus_per_pod, gang.pods, gang.runtime_s, gang.priority) == (8, 1, 3600.0, "normal")
    # runtime = deletion - scheduled; never scheduled: deletion - creation
    assert jobs["openb-openb-pod-0004"].runtime_s == 540 - 245
    assert jobs["openb-openb-pod-0005"].runtime_s == 394 - 300
    assert jobs["openb-openb-pod-0010"].priority == "low"  # BE
    assert jobs["openb-openb-pod-0006"].priority == "high"  # Guaranteed


def test_gpu_spec_is_the_catalog_accelerator_and_a_set_asks_for_the_set() -> None:
    jobs = {a.job_id: a for a in OpenbTrace(PODS)}
    assert jobs["openb-openb-pod-0010"].accelerator == "nvidia-p100-16gb"
    assert jobs["openb-openb-pod-0007"].accelerator == "nvidia-t4-16gb"
    assert jobs["openb-openb-pod-0004"].accelerator == "nvidia-v100-16gb|nvidia-v100-32gb"  # V100M16|V100M32
    assert jobs["openb-openb-pod-0008"].accelerator == "nvidia-a10-24gb|nvidia-t4-16gb"  # A10|T4
    assert jobs["openb-openb-pod-0006"].accelerator == "G2"  # undisclosed: by its name


def test_the_report_counts_what_the_reader_filtered_and_approximated() -> None:
    reader = OpenbTrace(PODS, fractional="skip")
    assert len(list(reader)) == 9
    report = reader.report
    assert (report.rows, report.emitted, report.filtered, report.skipped) == (12, 9, 3, 0)
    assert report.filtered_reasons == {FRACTIONAL_SKIPPED: 2, "CPU-only (include_cpu_only: true keeps it)": 1}
    notes = report.notes
    assert notes[CENSORED] == 2  # 0000 and 0011 were Running when the trace was taken
    assert notes[UNSCHEDULED] == 1
    assert not [note for note in notes if "SET" in note]  # a set is asked for as it is, no note
    assert [note for note in notes if "G2" in note and "catalog" in note]


def test_fractional_gpus_round_up_only_when_asked_and_cpu_only_pods_when_included() -> None:
    reader = OpenbTrace(PODS, fractional="round-up", include_cpu_only=True)
    jobs = {a.job_id: a for a in reader}
    assert len(jobs) == 12
    share = jobs["openb-openb-pod-0009"]
    assert (share.gpus_per_pod, share.accelerator, share.runtime_s) == (1, "nvidia-v100-32gb", 12000 - 540)
    cpu_only = jobs["openb-openb-pod-0003"]
    assert (cpu_only.gpus_per_pod, cpu_only.cpu_milli) == (0, 20000)
    assert reader.report.notes[ROUNDED_UP] == 2
    assert reader.report.notes[CENSORED] == 4
    assert reader.report.filtered == 0
    with pytest.raises(ValidationError, match="fractional"):
        OpenbTrace(PODS, fractional="pack")


def test_phases_filter_and_qos_priorities_and_mapping_rules_override() -> None:
    complete = list(OpenbTrace(PODS, states=("Succeeded", "Failed")))
    assert {a.job_id for a in complete} == {f"openb-openb-pod-{n:04d}" for n in (1, 2, 4, 6, 7, 8, 10)}
    table = OpenbTrace(PODS, qos_priority={"LS": "critical", "BE": 5}, priority="spot")
    jobs = {a.job_id: a for a in table}
    assert jobs["openb-openb-pod-0000"].priority == "critical"
    assert jobs["openb-openb-pod-0010"].priority_value == 5
    assert jobs["openb-openb-pod-0002"].priority == "spot"  # Burstable is not in the table
    ruled = OpenbTrace(
        PODS,
        mapping={"rules": [{"match": {"qos": "LS"}, "priority": "low", "tenant": "online"}]},
    )
    jobs = {a.job_id: a for a in ruled}
    assert (jobs["openb-openb-pod-0000"].priority, jobs["openb-openb-pod-0000"].tenant) == ("low", "online")
    assert jobs["openb-openb-pod-0010"].priority == "low"  # BE by its qos, default tenant
    assert jobs["openb-openb-pod-0010"].tenant == "default"


@pytest.mark.parametrize(
    ("row", "field", "words"),
    [
        ("p,1000,1024,0,500,,LS,Succeeded,0,10,0", "gpu_milli", "num_gpu 0"),
        ("p,1000,1024,2,500,,LS,Succeeded,0,10,0", "gpu_milli", "each of 2 GPUs"),
        ("p,1000,1024,1,1500,,LS,Succeeded,0,10,0", "gpu_milli", "1 to 1000"),
        ("p,1000,1024,1,1000,,LS,Succeeded,10,20,5", "scheduled_time", "before creation_time"),
        ("p,1000,1024,1,1000,,LS,Succeeded,10,4,10", "deletion_time", "before scheduled_time"),
        ("p,1000,1024,1,1000,,LS,Succeeded,,10,5", "creation_time", "missing value"),
        ("p,1000,1024,1,1000,|,LS,Succeeded,0,10,0", "gpu_spec", "no model"),
        ("p,1000,1024,x,1000,,LS,Succeeded,0,10,0", "num_gpu", "not a number"),
        ("p,1000,1024,300,1000,,LS,Succeeded,0,10,0", "num_gpu", "maximum"),
        ("p,1000,1024,1,1000,,LS,Succeeded,0,1e12,0", "deletion_time", "10 years"),
    ],
)
def test_a_bad_pod_row_names_its_column(tmp_path: Path, row: str, field: str, words: str) -> None:
    path = tmp_path / "pods.csv"
    path.write_text(f"{HEADER}\nok,1000,1024,1,1000,,LS,Succeeded,0,10,0\n{row}\n")
    reader = OpenbTrace(path)
    assert len(list(reader)) == 1
    (skipped,) = reader.report.details
    assert (skipped.line, skipped.field) == (3, field)
    assert words in skipped.reason
    with pytest.raises(ValidationError) as info:
        list(OpenbTrace(path, strict=True))
    assert (info.value.source, info.value.line, info.value.path) == (str(path), 3, field)


def test_the_real_files_columns_are_required_and_an_index_column_is_ignored(tmp_path: Path) -> None:
    indexed = tmp_path / "indexed.csv"  # pandas' to_csv with its index
    indexed.write_text(f",{HEADER}\n0,p,1000,1024,1,1000,,LS,Succeeded,0,10,0\n")
    assert [a.job_id for a in OpenbTrace(indexed)] == ["openb-p"]
    short = tmp_path / "short.csv"
    short.write_text("name,num_gpu\np,1\n")
    with pytest.raises(ValidationError, match="header lacks column"):
        list(OpenbTrace(short))


# Nodes --------------------------------------------------------------------------------------------
def test_the_node_list_becomes_a_pool_per_model_and_shape() -> None:
    listed = read_openb_nodes(NODES)
    pools = {p.name: p for p in listed.pools}
    assert listed.nodes == 12
    assert listed.gpus == 2 * 3 + 2 * 2 + 4 + 4 + 8 + 1 + 8 * 2 + 8
    assert set(pools) == {
        "p100-2gpu-64cpu-256gi",
        "p100-2gpu-16cpu-120gi",
        "t4-2gpu-104cpu-512gi",
        "t4-4gpu-96cpu-384gi",
        "v100m16",
        "v100m32",
        "a10",
        "g2",
        "g3",
    }
    g2 = pools["g2"]
    assert (g2.model, g2.accelerator, g2.nodes, g2.gpus_per_node) == ("G2", None, 2, 8)
    assert (g2.cpu_milli, g2.memory_mib) == (96000, 393216)
    assert pools["t4-4gpu-96cpu-384gi"].accelerator == "nvidia-t4-16gb"
    assert pools["a10"].pool_spec() == {
        "name": "a10",
        "gpus_per_node": 1,
        "nodes": 1,
        "cpu": "128000m",
        "memory": "1048576Mi",
        "product": "A10",
        "accelerator": "nvidia-a10-24gb",
    }
    assert listed.unknown_models == ("G2", "G3")
    assert all("not in the accelerator catalog" in note for note in listed.notes())


def test_cpu_only_nodes_make_cpu_pools(tmp_path: Path) -> None:
    path = tmp_path / "all.csv"
    path.write_text(
        "sn,cpu_milli,memory_mib,gpu,model\nn0,32000,262144,0,nan\nn1,32000,262144,0,\nn2,8000,32768,1,V100M16\n"
    )
    pools = {p.name: p for p in read_openb_nodes(path).pools}
    assert pools["cpu-only"].nodes == 2
    assert pools["cpu-only"].pool_spec().get("product") is None


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("n9,8000,32768,x,T4", "gpu"),
        ("n9,8000,32768,2,", "model"),
        ("n9,8000,32768,0,T4", "gpu"),
        ("n9,8000,32768,1000,T4", "gpu"),
        (",8000,32768,1,T4", "sn"),
        ("n9,8000,99999999999999999999,1,T4", "memory_mib"),
    ],
)
def test_a_bad_node_row_is_an_error_at_its_line(tmp_path: Path, row: str, field: str) -> None:
    path = tmp_path / "nodes.csv"
    path.write_text(f"sn,cpu_milli,memory_mib,gpu,model\nn0,8000,32768,1,T4\n{row}\n")
    with pytest.raises(ValidationError) as info:
        read_openb_nodes(path)
    assert (info.value.source, info.value.line, info.value.path) == (str(path), 3, field)


def test_an_empty_node_list_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "nodes.csv"
    path.write_text("sn,cpu_milli,memory_mib,gpu,model\n")
    with pytest.raises(ValidationError, match="lists no node"):
        read_openb_nodes(path)
    path.write_text("")
    with pytest.raises(ValidationError, match="is empty"):
        read_openb_nodes(path)


# A scenario on the trace --------------------------------------------------------------------------
def openb_scenario(tmp_path: Path, trace_options: str = "fractional: round-up") -> Path:
    for source in (PODS, NODES):
        (tmp_path / source.name).write_bytes(source.read_bytes())
    flavors = "\n".join(
        f"    - {{apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {{name: {m.lower()}}}, "
        f"spec: {{nodeLabels: {{nvidia.com/gpu.product: {m}}}}}}}"
        for m in MODELS
    )
    quotas = "\n".join(
        f"              - name: {m.lower()}\n"
        "                resources:\n"
        "                  - {name: nvidia.com/gpu, nominalQuota: 64}\n"
        "                  - {name: cpu, nominalQuota: 2000}\n"
        "                  - {name: memory, nominalQuota: 20Ti}"
        for m in MODELS
    )
    text = f"""\
name: openb-sample
horizon: 4h
sample_interval: 1m
fleet:
  node_list: {{format: openb, path: {NODES.name}}}
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
    - {{format: openb, path: {PODS.name}, {trace_options}}}
"""
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def test_a_scenario_replays_the_pods_on_the_node_list_fleet(tmp_path: Path) -> None:
    loaded = load_scenario(openb_scenario(tmp_path))
    pools = {p.name: p for p in loaded.fleet.pools}
    assert loaded.fleet.node_list is None  # expanded into pools, once
    assert pools["g2"].price_per_gpu_hour is not None and str(pools["g2"].price_per_gpu_hour) == "1.10"
    assert pools["a10"].price_per_gpu_hour is not None  # the price book, by slug
    assert len(loaded.nodes) == 12
    assert [note for note in loaded.notes if "G2" in note]
    result = build_simulation(loaded).run()
    flavor = {r.arrival.job_id: r.flavor for r in result.records}
    assert flavor["openb-openb-pod-0006"] == "g2"
    assert flavor["openb-openb-pod-0004"] == "v100m16"
    assert flavor["openb-openb-pod-0009"] == "v100m32"
    assert flavor["openb-openb-pod-0010"] == "p100"
    assert flavor["openb-openb-pod-0007"] == "t4"
    (reader,) = loaded.trace_readers
    assert reader.report.emitted == 11  # the CPU-only pod is filtered


def test_a_pool_of_the_node_list_may_not_shadow_a_scenario_pool(tmp_path: Path) -> None:
    path = openb_scenario(tmp_path)
    path.write_text(
        path.read_text().replace(
            "  node_list:", "  pools: [{name: g2, gpus_per_node: 8, nodes: 1, product: G2}]\n  node_list:"
        )
    )
    with pytest.raises(ValidationError, match="has the name of a pool") as info:
        load_scenario(path)
    assert info.value.path == "fleet.node_list.path"


# Formats through the registry ---------------------------------------------------------------------
def test_every_built_in_format_is_a_registered_reader() -> None:
    registry = default_registry()
    assert {"budcore", "helios", "openb", "pai", "swf"} <= set(trace_formats(registry))
    for name in ("budcore", "helios", "openb", "pai", "swf"):
        assert registry.resolve("trace_reader", name).plugin == "simulator"


def test_without_the_simulator_plugin_no_format_is_known() -> None:
    """No reader is wired in beside the registry: a registry without the simulator's plugin knows
    none of the built-in formats (a third-party format is found exactly the same way)."""
    bare = PluginRegistry(load_entry_points=False)
    spec = parse_trace_spec({"format": "openb", "path": str(PODS)})
    with pytest.raises(ValidationError, match="unknown trace format 'openb'"):
        open_trace(spec, registry=bare)
    assert isinstance(open_trace(spec), OpenbTrace)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (PODS, "openb"),
        (SAMPLES_DIR / "budcore_jobs.csv", "budcore"),
        (SAMPLES_DIR / "helios_cluster_log.csv", "helios"),
        (SAMPLES_DIR / "pai_job_table.csv", "pai"),
        (SAMPLES_DIR / "pai_task_table.csv", "pai"),
        (SAMPLES_DIR / "sample.swf", "swf"),
        (NODES, None),  # a node list is no trace
    ],
)
def test_the_format_a_file_looks_like(path: Path, expected: str | None) -> None:
    assert guess_format(path) == expected


def test_an_openb_file_read_as_another_format_is_an_error_naming_openb() -> None:
    with pytest.raises(ValidationError) as info:
        list(open_trace(parse_trace_spec({"format": "pai", "path": str(PODS), "task_path": str(PODS)})))
    assert "no job read from" in info.value.message
    assert "it looks like the openb format (format: openb), not pai" in info.value.message
    with pytest.raises(ValidationError) as info:
        list(open_trace(parse_trace_spec({"format": "helios", "path": str(PODS)})))
    assert "header lacks column" in info.value.message
    assert "it looks like the openb format" in info.value.message
