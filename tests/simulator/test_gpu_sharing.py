"""GPU sharing (issue #18): shares of one GPU packed onto physical devices, the fragmentation
measure, and the openb trace's fractional pods replayed end to end.

Every expected value is worked out by hand from the packing rule (budcore_adapters/inmemory/
devices.py: the tightest node, then the device with the least free capacity that fits the share,
lowest index first; whole-GPU pods take whole free devices) and the fragmentation definition
(simulator/fragmentation.py: free capacity on a device is usable when some pending request could
be placed on its node and the device has at least min(request, 1 GPU) free).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from budcore_adapters.inmemory import InMemoryClusterBackend
from budcore_adapters.inmemory.devices import DEVICE
from budcore_simulator import scenario as scenario_module
from budcore_simulator import sharing
from budcore_simulator.build import build_simulation
from budcore_simulator.fragmentation import Demand, NodeState, fragmentation, node_unusable
from budcore_simulator.report import build_report
from budcore_simulator.scenario import load_scenario
from budcore_simulator.status import SimJobStatus
from budcore_simulator.workload import OpenbTrace
from budcore_simulator.workload.model import JobArrival
from budcore_simulator.workload.openb import SHARED
from hypothesis import given, settings
from hypothesis import strategies as st

from budcore.domain.cluster import Node, PodSetPlacement, Workload
from budcore.domain.errors import ValidationError
from budcore.domain.ids import JobId
from budcore.domain.resources import ResourceVector
from budcore.testing.examples import examples

GPU = "nvidia.com/gpu"
HERE = Path(__file__).parent
PODS = HERE / "data" / "openb" / "openb_pod_list_sample.csv"


def gpu_node(name: str, gpus: int, cpu: int = 64) -> Node:
    return Node(name=name, allocatable=ResourceVector.of({GPU: gpus, "cpu": cpu, "memory": "256Gi"}))


def pod(job_id: str, gpu: str, count: int = 1) -> Workload:
    resources = ResourceVector.of({GPU: gpu, "cpu": 1, "memory": "1Gi"})
    return Workload(
        job_id=JobId(job_id),
        tenant="t",
        pod_sets=(PodSetPlacement(name="main", count=count, resources=resources),),
    )


def devices(backend: InMemoryClusterBackend, node: str) -> list[int] | None:
    tracked = backend.gpu_sharing.nodes.get((node, GPU))
    return None if tracked is None else list(tracked.free)


# Packing ------------------------------------------------------------------------------------------
def test_shares_pack_best_fit_onto_devices() -> None:
    backend = InMemoryClusterBackend([gpu_node("n", 2)])
    steps = [("a", "600m", [400, 1000]), ("b", "600m", [400, 400]), ("c", "400m", [0, 400])]
    steps.append(("d", "400m", [0, 0]))
    for job_id, share, expected in steps:
        assert backend.try_submit(pod(job_id, share)) is not None
        assert devices(backend, "n") == expected
    # device 0 holds 600 + 400 (a, c), device 1 holds 600 + 400 (b, d)
    assert backend.free_amounts()["n"][GPU] == 0
    backend.complete(JobId("c"))
    assert devices(backend, "n") == [400, 0]
    assert backend.try_submit(pod("e", "500m")) is None  # 400 free on one device: no room
    backend.complete(JobId("b"))
    assert devices(backend, "n") == [400, 600]
    assert backend.try_submit(pod("e", "500m")) is not None
    assert devices(backend, "n") == [400, 100]


def test_a_share_never_spans_two_devices() -> None:
    backend = InMemoryClusterBackend([gpu_node("n", 2)])
    assert backend.try_submit(pod("a", "600m")) is not None
    assert backend.try_submit(pod("b", "600m")) is not None
    assert backend.free_amounts()["n"][GPU] == 800  # 800 milli free in all, 400 on each device
    assert backend.try_submit(pod("c", "500m")) is None
    with pytest.raises(Exception, match="500m"):
        backend.submit(pod("c", "500m"))  # the error names what did not fit
    assert devices(backend, "n") == [400, 400]


def test_whole_gpu_pods_take_whole_free_devices_only() -> None:
    backend = InMemoryClusterBackend([gpu_node("n", 3)])
    for job_id in ("a", "b", "c"):
        assert backend.try_submit(pod(job_id, "600m")) is not None
    assert backend.free_amounts()["n"][GPU] == 1200  # more than one GPU free, but split
    assert backend.try_submit(pod("whole", "1")) is None
    backend.complete(JobId("b"))
    assert backend.try_submit(pod("whole", "1")) is not None
    assert devices(backend, "n") == [400, 0, 400]


def test_devices_held_whole_before_the_first_share_are_given_back() -> None:
    backend = InMemoryClusterBackend([gpu_node("n", 2)])
    assert backend.try_submit(pod("whole", "1")) is not None
    assert devices(backend, "n") is None  # no share yet: the free amount says it all
    assert backend.try_submit(pod("share", "300m")) is not None
    assert devices(backend, "n") == [700, 0]
    backend.complete(JobId("whole"))
    assert devices(backend, "n") == [700, 1000]
    assert backend.try_submit(pod("two", "2")) is None  # one whole device free, not two
    backend.complete(JobId("share"))
    assert devices(backend, "n") is None  # the last share left: the list is dropped
    assert backend.free_amounts()["n"][GPU] == 2000
    assert backend.try_submit(pod("two", "2")) is not None


def test_the_tightest_node_is_chosen_first() -> None:
    backend = InMemoryClusterBackend([gpu_node("big", 4), gpu_node("small", 1)])
    assert backend.try_submit(pod("a", "250m")) is not None
    assert devices(backend, "small") == [750]
    assert devices(backend, "big") is None


def test_a_pod_asking_for_one_and_a_half_gpus_is_refused_with_its_resource_named() -> None:
    backend = InMemoryClusterBackend([gpu_node("n", 2)])
    with pytest.raises(ValidationError, match=r"1\.5 nvidia.com/gpu.*never parts of two") as caught:
        backend.try_submit(pod("a", "1500m"))
    assert caught.value.path == GPU
    assert "\n" not in str(caught.value)


# Property: devices never hold more than one GPU; released capacity comes back exactly ------------
SIZES = st.sampled_from(["100m", "250m", "333m", "500m", "600m", "999m", "1", "2"])


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.tuples(st.booleans(), SIZES, st.integers(0, 50)), max_size=40))
def test_devices_hold_at_most_one_gpu_and_give_back_exactly(ops: list[tuple[bool, str, int]]) -> None:
    nodes = [gpu_node("n0", 2), gpu_node("n1", 4), gpu_node("n2", 1)]
    backend = InMemoryClusterBackend(nodes)
    allocatable = {n.name: n.allocatable[GPU] for n in nodes}
    running: list[str] = []
    for step, (place, size, pick) in enumerate(ops):
        if place or not running:
            job_id = f"j{step}"
            if backend.try_submit(pod(job_id, size)) is not None:
                running.append(job_id)
        else:
            backend.complete(JobId(running.pop(pick % len(running))))
        free = backend.free_amounts()
        for name, total in allocatable.items():
            listed = devices(backend, name)
            held = total - free[name].get(GPU, 0)
            if listed is None:
                assert held % DEVICE == 0  # whole devices only
            else:
                assert all(0 <= f <= DEVICE for f in listed)  # shares on a device: at most 1000
                assert sum(DEVICE - f for f in listed) == held
    for job_id in running:
        backend.complete(JobId(job_id))
    assert {n: f.get(GPU, 0) for n, f in backend.free_amounts().items()} == allocatable
    assert not backend.gpu_sharing.nodes
    assert backend.gpu_sharing.share_milli == backend.gpu_sharing.shared_devices == 0


# Fragmentation ------------------------------------------------------------------------------------
def anywhere(_node: str, _where: object) -> bool:
    return True


CPU_FREE = {"cpu": 8000}
A = NodeState("a", [400, 1000], CPU_FREE)
B = NodeState("b", [200, 0], CPU_FREE)


def test_fragmentation_of_one_share_request_by_hand() -> None:
    half = Demand(500, {"cpu": 1000})
    # a: the share fits device 1, device 0 (400 < 500) is a fragment; b: the share fits nowhere,
    # so all of its 200 free is. 600 of 1600 free.
    assert node_unusable(A, [half], anywhere) == 400
    assert node_unusable(B, [half], anywhere) == 200
    measured = fragmentation([A, B], [half], anywhere)
    assert (measured.free, measured.unusable, measured.share) == (1600, 600, 0.375)


def test_capacity_is_usable_when_any_pending_request_can_use_it() -> None:
    whole = Demand(1000, {"cpu": 1000})  # uses a's free device only: 400 and 200 stay unusable
    assert fragmentation([A, B], [whole], anywhere).unusable == 600
    small = Demand(300, {"cpu": 1000})  # fits a's device 0 (400) too; b's 200 is still too small
    measured = fragmentation([A, B], [whole, small], anywhere)
    assert (measured.unusable, measured.share) == (200, 0.125)
    tiny = Demand(100, {"cpu": 1000})
    assert fragmentation([A, B], [whole, small, tiny], anywhere).unusable == 0


def test_a_request_that_cannot_be_placed_on_a_node_uses_none_of_it() -> None:
    too_much_cpu = Demand(100, {"cpu": 9000})  # 8000 free: not placeable anywhere
    assert fragmentation([A, B], [too_much_cpu], anywhere).unusable == 1600
    two = Demand(2000, {})  # a has one whole free device, not two
    assert node_unusable(A, [two], anywhere) == 1400
    elsewhere = Demand(100, {}, where="b-only")
    only_b = fragmentation([A, B], [elsewhere], lambda node, where: node == "b")
    assert only_b.unusable == 1400  # a's capacity: the request may not run there
    cpu_only = Demand(0, {"cpu": 1})
    assert fragmentation([A, B], [cpu_only], anywhere).unusable == 1600


def test_fragmentation_with_nothing_free_is_undefined() -> None:
    full = NodeState("full", [0, 0], CPU_FREE)
    measured = fragmentation([full], [Demand(500, {})], anywhere)
    assert (measured.free, measured.unusable, measured.share) == (0, 0, None)


def test_the_pool_labels_match_the_scenarios() -> None:
    assert sharing.ACCELERATOR_LABEL == scenario_module.ACCELERATOR_LABEL
    assert sharing.PRODUCT_LABEL == scenario_module.PRODUCT_LABEL


# The openb trace end to end -----------------------------------------------------------------------
def test_openb_shares_are_read_as_shares_by_default() -> None:
    reader = OpenbTrace(PODS)
    jobs = {a.job_id: a for a in reader}
    share = jobs["openb-openb-pod-0001"]
    assert (share.gpus_per_pod, share.gpu_milli, share.gpu_units) == (1, 460, 0.46)
    assert jobs["openb-openb-pod-0009"].gpu_milli == 220
    assert jobs["openb-openb-pod-0000"].gpu_milli is None
    assert reader.report.notes[SHARED] == 2
    assert reader.report.filtered == 1  # the CPU-only pod only


def scenario_text(nodes: str, pods: str, models: tuple[str, ...], gpus: int, horizon: str) -> str:
    """A scenario replaying openb ``pods`` on the ``nodes`` list: a flavor per model (labelled as
    the node list labels its nodes) with ``gpus`` of nominal quota each, in one ClusterQueue."""
    flavors = "".join(
        f"    - {{apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {{name: {m.lower()}}}, "
        f"spec: {{nodeLabels: {{nvidia.com/gpu.product: {m}}}}}}}\n"
        for m in models
    )
    quotas = "".join(
        f"              - name: {m.lower()}\n"
        "                resources:\n"
        f"                  - {{name: nvidia.com/gpu, nominalQuota: {gpus}}}\n"
        "                  - {name: cpu, nominalQuota: 2000}\n"
        "                  - {name: memory, nominalQuota: 20Ti}\n"
        for m in models
    )
    return f"""\
name: openb-shares
horizon: {horizon}
sample_interval: 100s
fleet:
  node_list: {{format: openb, path: {nodes}}}
  prices: {{G2: "1.10", G3: "1.50"}}
queues:
  documents:
{flavors}    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ClusterQueue
      metadata: {{name: cluster}}
      spec:
        namespaceSelector: {{}}
        resourceGroups:
          - coveredResources: [nvidia.com/gpu, cpu, memory]
            flavors:
{quotas}    - {{apiVersion: kueue.x-k8s.io/v1beta2, kind: LocalQueue,
       metadata: {{name: default, namespace: default}}, spec: {{clusterQueue: cluster}}}}
workload:
  traces:
    - {{format: openb, path: {pods}}}
"""


def openb_scenario(tmp_path: Path) -> Path:
    """Five pods on two V100M32 nodes of 2 GPUs, 4 GPUs of quota: small enough to work out by hand."""
    nodes = tmp_path / "nodes.csv"
    nodes.write_text(
        "sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,V100M32\nn1,64000,262144,2,V100M32\n"
    )
    pods = tmp_path / "pods.csv"
    pods.write_text(
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,"
        "scheduled_time\n"
        "s1,1000,1024,1,600,V100M32,LS,Succeeded,0,1000,0\n"
        "s2,1000,1024,1,600,V100M32,LS,Succeeded,0,1000,0\n"
        "s3,1000,1024,1,400,V100M32,LS,Succeeded,0,2000,0\n"
        "w1,1000,1024,2,1000,V100M32,LS,Succeeded,0,3000,0\n"
        "s4,1000,1024,1,500,V100M32,LS,Succeeded,100,1100,100\n"
    )
    path = tmp_path / "scenario.yaml"
    path.write_text(scenario_text("nodes.csv", "pods.csv", ("V100M32",), 4, "10h"))
    return path


def test_an_openb_trace_with_shares_replays_end_to_end(tmp_path: Path) -> None:
    result = build_simulation(load_scenario(openb_scenario(tmp_path))).run()
    records = {r.arrival.job_id.removeprefix("openb-"): r for r in result.records}
    assert all(r.status is SimJobStatus.COMPLETED for r in records.values())
    # The node list's two nodes are pool v100m32's nodes 0000 and 0001.
    n0, n1 = ("v100m32-0000",), ("v100m32-0001",)
    # t=0: quota 4 GPUs holds 0.6 + 0.6 + 0.4 + 2 = 3.6. Placement in arrival order, tightest node
    # first (ties by name): s1 -> n0 device 0 (400 left); s2 -> n0 device 1 (n0 has 800 free, the
    # tightest: 400 + 400); s3 (400) -> n0 device 0 (best fit, 0 left); w1 (2 whole GPUs) -> n1.
    assert records["s1"].nodes == records["s2"].nodes == records["s3"].nodes == n0
    assert records["w1"].nodes == n1
    # t=100: s4 (500m) does not fit the quota (3.6 + 0.5 > 4 GPUs), so it waits until s1 and s2
    # end at 1000 and starts then on n0's device 0: 600 free there (s3 holds 400), the least free
    # that fits, rather than device 1 (1000 free after s2).
    assert (records["s4"].start_s, records["s4"].end_s) == (1000.0, 2000.0)
    assert records["s4"].nodes == n0
    report = json.loads(json.dumps(build_report(result)))
    block = report["gpu_sharing"]
    # requested GPU-seconds: 0.6*1000 + 0.6*1000 + 0.4*2000 + 2*3000 + 0.5*1000 = 8500
    assert report["overall"]["gpu_hours"] == round(8500 / 3600, 3)
    assert block["requested_gpu_hours"] == round(8500 / 3600, 3)
    # physical: n0's device 0 is busy 0-2000 (s1 and s3, then s3 and s4), device 1 0-1000 (s2);
    # n1's two devices 0-3000 (w1): 2000 + 1000 + 6000 = 9000 device-seconds
    assert block["physical_gpu_hours_busy"] == round(9000 / 3600, 3)
    series = block["series"]
    at = series["t_s"].index(500.0)
    # at 500 s: n0 has 0 free on device 0 and 400 on device 1, n1 nothing; s4 (500m) waits for
    # quota, so it is pending: 400 free, all of it unusable by a 500m share.
    assert (series["free_gpus"][at], series["unusable_gpus"][at], series["fragmentation"][at]) == (
        0.4,
        0.4,
        1.0,
    )
    assert series["pending_pods"][at] == 1
    assert series["busy_gpus_physical"][at] == 4.0
    assert series["requested_gpus"][at] == 3.6
    at = series["t_s"].index(2500.0)  # only w1 runs: n0's 2 GPUs free, nothing pending
    assert (series["free_gpus"][at], series["unusable_gpus"][at], series["fragmentation"][at]) == (
        2.0,
        None,
        None,
    )
    assert block["fragmentation"]["max"] == 1.0


def test_a_trace_without_shares_has_no_sharing_block(tmp_path: Path) -> None:
    path = openb_scenario(tmp_path)
    pods = tmp_path / "pods.csv"
    pods.write_text(
        "\n".join(line for line in pods.read_text().splitlines() if not line.startswith("s")) + "\n"
    )
    result = build_simulation(load_scenario(path)).run()
    assert result.gpu_sharing is None
    assert "gpu_sharing" not in build_report(result)


def test_skip_and_round_up_still_work_on_the_same_trace(tmp_path: Path) -> None:
    path = openb_scenario(tmp_path)
    path.write_text(path.read_text().replace("path: pods.csv}", "path: pods.csv, fractional: round-up}"))
    assert "fractional: round-up" in path.read_text()
    result = build_simulation(load_scenario(path)).run()
    assert result.gpu_sharing is None  # each share asked for a whole GPU
    assert {r.gpus for r in result.records} == {1, 2}


# The sampler keeps node kinds and pending demand between points: the same figures as measuring
# every node afresh ----------------------------------------------------------------------------------
def arrival(job_id: str, gpu: str) -> JobArrival:
    whole = gpu.isdigit()
    return JobArrival(
        0.0,
        60.0,
        int(gpu) if whole else 1,
        1,
        1000,
        2**30,
        "t",
        "q",
        "normal",
        "batch",
        "c",
        job_id,
        gpu_milli=None if whole else int(gpu.removesuffix("m")),
    )


@settings(max_examples=examples(100), deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), SIZES, st.integers(0, 50)), min_size=1, max_size=30),
    st.lists(SIZES, max_size=4),
)
def test_the_sampler_measures_what_a_fresh_measure_does(
    ops: list[tuple[bool, str, int]], pending: list[str]
) -> None:
    nodes = [gpu_node("n0", 2), gpu_node("n1", 4), gpu_node("n2", 2), gpu_node("n3", 1, cpu=1)]
    backend = InMemoryClusterBackend(nodes)
    backend.try_submit(pod("seed", "100m"))  # the run shares GPUs from the start
    sampler = sharing.SharingSampler(backend, GPU)
    queued = {f"p{i}": arrival(f"p{i}", size) for i, size in enumerate(pending)}
    running: list[str] = []
    for step, (place, size, pick) in enumerate(ops):
        if place or not running:
            if backend.try_submit(pod(f"j{step}", size)) is not None:
                running.append(f"j{step}")
        else:
            backend.complete(JobId(running.pop(pick % len(running))))
        waiting = sorted(queued)[: 1 + step % max(1, len(queued))] if queued else []
        sampler.sample(float(step), 2 * step, lambda w=waiting: (0.0, w, queued.__getitem__, 0, ()))
        free_now = backend.free_amounts()
        states = [
            NodeState(
                n.name,
                backend.gpu_sharing.device_free(
                    n.name, GPU, n.allocatable[GPU], free_now[n.name].get(GPU, 0)
                ),
                free_now[n.name],
            )
            for n in nodes
        ]
        demands = [
            Demand(
                a.gpu_milli or a.gpus_per_pod * DEVICE, {"cpu": a.cpu_milli, "memory": a.memory_bytes * 1000}
            )
            for a in (queued[w] for w in waiting)
        ]
        fresh = fragmentation(states, demands, anywhere)
        series = sampler.series
        assert series.free_gpus[-1] == fresh.free / DEVICE
        assert series.unusable_gpus[-1] == (fresh.unusable / DEVICE if waiting else None)


def test_the_sample_trace_replays_its_shares_on_the_sample_fleet(tmp_path: Path) -> None:
    nodes = HERE / "data" / "openb" / "openb_node_list_gpu_node.csv"
    for source in (PODS, nodes):
        (tmp_path / source.name).write_bytes(source.read_bytes())
    models = ("P100", "T4", "V100M16", "V100M32", "A10", "G2", "G3")
    path = tmp_path / "sample.yaml"
    path.write_text(scenario_text(nodes.name, PODS.name, models, 64, "4h"))
    result = build_simulation(load_scenario(path)).run()
    records = {r.arrival.job_id.removeprefix("openb-openb-"): r for r in result.records}
    # pod 0001 (460m, no gpu_spec: the first flavor, p100) runs 60-1259; pod 0009 (220m of a
    # V100M32) runs 540-12000; each alone on its device
    assert (records["pod-0001"].flavor, records["pod-0001"].start_s, records["pod-0001"].end_s) == (
        "p100",
        60.0,
        1259.0,
    )
    assert (records["pod-0009"].flavor, records["pod-0009"].start_s) == ("v100m32", 540.0)
    assert records["pod-0001"].gpu_s == pytest.approx(0.46 * 1199)
    assert records["pod-0009"].gpu_s == pytest.approx(0.22 * 11460)
    block = build_report(result)["gpu_sharing"]
    requested_s = sum(r.gpu_s for r in result.records)
    idle_share_s = (1 - 0.46) * 1199 + (1 - 0.22) * 11460  # the rest of the two shared devices
    assert block["requested_gpu_hours"] == round(requested_s / 3600, 3)
    assert block["physical_gpu_hours_busy"] == round((requested_s + idle_share_s) / 3600, 3)


def test_one_and_a_half_gpus_in_a_trace_is_refused_naming_file_line_and_field(tmp_path: Path) -> None:
    pods = tmp_path / "pods.csv"
    pods.write_text(
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,"
        "scheduled_time\nok,1000,1024,1,500,,LS,Succeeded,0,10,0\nbig,1000,1024,1,1500,,LS,Succeeded,0,10,0\n"
    )
    with pytest.raises(ValidationError) as caught:
        list(OpenbTrace(pods, strict=True))
    message = str(caught.value)
    assert "\n" not in message
    assert (caught.value.source, caught.value.line, caught.value.path) == (str(pods), 3, "gpu_milli")
    assert "1500" in message and "a share must fit on one device" in message
    reader = OpenbTrace(pods)  # not strict: the row is invalid, reported, and the share is read
    assert [a.gpu_milli for a in reader] == [500]
    assert [(row.line, row.field) for row in reader.report.details] == [(3, "gpu_milli")]


def test_the_summary_line_says_what_sharing_cost(tmp_path: Path) -> None:
    report = build_report(build_simulation(load_scenario(openb_scenario(tmp_path))).run())
    line = sharing.sharing_line(report)
    assert line is not None
    assert line.startswith(f"GPU sharing: {round(9000 / 3600, 3):g} GPU-h of devices busy")
    assert f"for {round(8500 / 3600, 3):g} GPU-h requested" in line
    assert sharing.sharing_line({"overall": {}}) is None
