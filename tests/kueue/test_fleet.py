"""Fleet from the cluster: the live nodes give what ``budcore hardware parse`` gives for their dump,
and ``budcore simulate --fleet-from-cluster`` simulates the cluster's nodes (its digital twin).

Every cluster here is the API-server double (``kueue.apiserver``) over real HTTP, seeded with the
node samples the repository already ships: the ``nodes-dump`` scenario's dump, the label-detection
table of ``tests/hardware`` (GFD, MIG single/mixed, time-slicing, MPS, NFD PCI for NVIDIA, AMD and
Gaudi, AMD and Intel labels, overrides, CPU-only), the ``hardware parse`` CLI sample and GKE nodes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml
from budcore_adapters.kueue.client import NODES
from budcore_adapters.kueue.fleet import (
    EmptyClusterError,
    cluster_hardware,
    fleet_from_cluster,
    nodes_yaml,
    read_nodes,
)
from hardware.test_cli import NODES as HARDWARE_CLI_DUMP
from hardware.test_labels import CASES
from hardware.test_labels_gke import gke
from kueue.apiserver import ApiError, FakeApiServer

from budcore.cli import main
from budcore.domain.errors import ValidationError
from budcore.hardware.labels import Fleet, SharingMode, load_nodes_yaml, node_dict, parse_nodes_yaml
from budcore.hardware.profiles import build_profiles, resource_flavors

NODES_DUMP_SCENARIO = Path(str(files("budcore_simulator") / "scenarios" / "nodes-dump"))

# Kubernetes label values: 63 characters of [A-Za-z0-9_.-], alphanumeric at both ends.
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _name(node: Mapping[str, Any]) -> str:
    return str(node["metadata"]["name"])


def _servable(node: Mapping[str, Any]) -> bool:
    """Whether an API server accepts the node: a few samples declare per-device types in a label
    value (``nvidia-a100-80gb=4,nvidia-v100-16gb=4``) that Kubernetes refuses as a label."""
    labels = node.get("metadata", {}).get("labels") or {}
    return all(len(str(v)) <= 63 and _LABEL_VALUE.match(str(v)) for v in labels.values())


def _label_cases() -> list[dict[str, Any]]:
    return [node_dict(f"case-{name}", case.labels, case.allocatable) for name, case in sorted(CASES.items())]


def _gke_nodes() -> list[dict[str, Any]]:
    shared = (
        "\n    cloud.google.com/gke-gpu-sharing-strategy: time-sharing"
        '\n    cloud.google.com/gke-max-shared-clients-per-gpu: "4"'
    )
    texts = {
        "gke-a100": gke(),
        "gke-h100-not-ready": gke("nvidia-h100-80gb", ready="False"),
        "gke-l4-shared": gke("nvidia-l4", gpus=32, extra=shared),
        "gke-mig": gke(gpus=56, extra="\n    cloud.google.com/gke-gpu-partition-size: 1g.5gb"),
    }
    nodes = []
    for name, text in texts.items():
        (node,) = load_nodes_yaml(text.replace("gke-a100-1", name))
        nodes.append(dict(node))
    return nodes


SAMPLES: dict[str, list[dict[str, Any]]] = {
    "nodes-dump-scenario": [
        dict(n) for n in load_nodes_yaml((NODES_DUMP_SCENARIO / "nodes.yaml").read_text())
    ],
    "hardware-label-cases": _label_cases(),
    "hardware-cli-dump": [dict(n) for n in load_nodes_yaml(HARDWARE_CLI_DUMP)],
    "gke": _gke_nodes(),
}


def kubectl_dump(nodes: list[dict[str, Any]]) -> str:
    """What ``kubectl get nodes -o yaml`` prints for these nodes (the API lists them by name)."""
    items = [{"apiVersion": "v1", "kind": "Node", **n} for n in sorted(nodes, key=_name)]
    return yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {}})


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer(context="prod-east") as fake:
        yield fake


def seed(server: FakeApiServer, nodes: list[dict[str, Any]]) -> None:
    for node in nodes:
        server.put_object(NODES, node)


def test_the_samples_cover_every_dialect_of_the_issue() -> None:
    """GFD, MIG, time-slicing, NFD PCI, AMD and Gaudi are all among the served nodes."""
    nodes = [n for sample in SAMPLES.values() for n in sample if _servable(n)]
    devices = [d for node in parse_nodes_yaml(kubectl_dump(nodes)).nodes for d in node.devices]
    sources = {d.source for d in devices}
    assert {"gfd", "nfd", "amd", "gke"} <= sources, sources
    assert {SharingMode.MIG, SharingMode.TIME_SLICING, SharingMode.MPS} <= {d.sharing for d in devices}
    assert any(d.resource_name == "habana.ai/gaudi" and d.source == "nfd" for d in devices)
    assert any(d.vendor == "amd" for d in devices) and any(d.vendor == "intel" for d in devices)


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_cluster_gives_what_hardware_parse_gives_for_the_dump(server: FakeApiServer, sample: str) -> None:
    nodes = [n for n in SAMPLES[sample] if _servable(n)]
    seed(server, nodes)
    with server.client() as client:
        hardware = cluster_hardware(client)
    dump = parse_nodes_yaml(kubectl_dump(nodes), source="nodes.yaml")
    assert hardware.context == "prod-east"
    assert hardware.fleet == dump
    assert list(hardware.profiles) == build_profiles(dump)
    assert list(hardware.flavors) == resource_flavors(build_profiles(dump))
    # Node by node, also against the sample in its own order (the cluster lists by name).
    original = {n.name: n for n in parse_nodes_yaml(yaml.safe_dump(nodes)).nodes}
    assert {n.name: n for n in hardware.fleet.nodes} == original


def test_only_invalid_label_values_keep_samples_out_of_a_cluster(server: FakeApiServer) -> None:
    """The samples left out above are exactly those an API server refuses (checked on the double)."""
    refused = [n for sample in SAMPLES.values() for n in sample if not _servable(n)]
    assert sorted(_name(n) for n in refused) == ["case-mixed-declared-per-device", "worker-node-99"]
    for node in refused:
        with pytest.raises(ApiError) as info:
            server.put_object(NODES, node)
        assert info.value.code == 422


def test_hardware_parse_prints_the_same_for_the_cluster_snapshot(
    server: FakeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``budcore hardware parse`` on the nodes read back from the cluster (written by
    :func:`nodes_yaml`, server metadata and all) prints what it prints for the plain dump."""
    nodes = [n for sample in SAMPLES.values() for n in sample if _servable(n)]
    seed(server, nodes)
    with server.client() as client:
        snapshot = nodes_yaml(read_nodes(client))
    outputs = []
    for name, text in (("dump.yaml", kubectl_dump(nodes)), ("cluster.yaml", snapshot)):
        path = tmp_path / name
        path.write_text(text)
        assert main(["hardware", "parse", str(path), "--format", "json"]) == 0
        outputs.append(json.loads(capsys.readouterr().out))
    assert outputs[0] == outputs[1]
    assert len(outputs[0]["nodes"]) == len(nodes) and outputs[0]["profiles"] and outputs[0]["flavors"]


def test_read_nodes_looks_like_kubectl(server: FakeApiServer) -> None:
    with server.client() as client:
        client.apply(NODES, node_dict("zeta", {"a": "1"}))  # server-side apply: managedFields recorded
        seed(server, [node_dict("alpha", {"b": "2"})])
        assert any("managedFields" in n["metadata"] for n in client.list(NODES)[0])
        nodes = read_nodes(client)
    assert [_name(n) for n in nodes] == ["alpha", "zeta"]
    assert all(n["apiVersion"] == "v1" and n["kind"] == "Node" for n in nodes)
    assert all("managedFields" not in n["metadata"] and n["metadata"]["uid"] for n in nodes)


def test_overrides_apply_by_node_name(server: FakeApiServer) -> None:
    seed(server, [node_dict("gpu-1", {}, {"nvidia.com/gpu": 8})])
    with server.client() as client:
        fleet = fleet_from_cluster(client, overrides={"gpu-1": "nvidia-h200-141gb"})
        with pytest.raises(ValidationError, match="not in the fleet: gpu-9"):
            fleet_from_cluster(client, overrides={"gpu-9": "nvidia-h200-141gb"})
    assert fleet.nodes[0].gpu_type == "NVIDIA H200 141GB"


def test_a_node_the_parser_rejects_is_named_by_context_and_name(server: FakeApiServer) -> None:
    bad = node_dict("gpu-7", {}, {"nvidia.com/gpu": 8})
    bad["spec"] = {"taints": [{"key": "dedicated", "effect": "Sometimes"}]}
    seed(server, [node_dict("gpu-1", {}), bad])
    with server.client() as client, pytest.raises(ValidationError) as info:
        fleet_from_cluster(client)
    assert str(info.value).startswith("cluster context 'prod-east': nodes/gpu-7.spec.taints[0].effect: ")


def test_an_empty_cluster_is_an_error_naming_the_context(server: FakeApiServer) -> None:
    with (
        server.client() as client,
        pytest.raises(EmptyClusterError, match="'prod-east': the cluster lists no node"),
    ):
        fleet_from_cluster(client)


# --------------------------------------------------------------------------------------------------
# budcore simulate --fleet-from-cluster

# The nodes-dump scenario without its dump: queues and workload only (its fleet comes from the flag).
# Pools are given so that the file is a valid scenario on its own; the flag replaces them.


def twin_scenario(tmp_path: Path, fleet: str) -> Path:
    text = (NODES_DUMP_SCENARIO / "scenario.yaml").read_text()
    head = "fleet:\n  nodes_file: nodes.yaml\n"
    assert head in text
    path = tmp_path / "scenario.yaml"
    path.write_text(text.replace(head, "fleet:\n" + fleet).replace("horizon: 8h", "horizon: 3h"))
    return path


POOLS = "  pools: [{name: stand-in, product: NVIDIA-L4, gpus_per_node: 1, nodes: 1}]\n"


def simulate(*args: str) -> int:
    return main(["simulate", *args, "--no-plots", "--format", "json"])


def test_simulate_on_the_cluster_fleet_equals_the_dump_run(
    server: FakeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The cluster's nodes replace the scenario's pools; the run writes them as nodes.yaml, and the
    same scenario on that dump (``fleet.nodes_file``) gives the same report."""
    nodes = SAMPLES["nodes-dump-scenario"]
    seed(server, nodes)
    scenario = twin_scenario(tmp_path, POOLS)
    kubeconfig = server.kubeconfig(tmp_path)
    out = tmp_path / "live"
    assert (
        simulate(str(scenario), "--fleet-from-cluster", "--kubeconfig", str(kubeconfig), "--out", str(out))
        == 0
    )
    captured = capsys.readouterr()
    live = json.loads(captured.out)
    assert (
        f"note: fleet: the 6 node(s) of cluster context 'prod-east', kept in {out / 'nodes.yaml'}"
        in " ".join(captured.err.split())
    )
    assert live["fleet"] == {
        "source": "cluster context 'prod-east'",
        "nodes": sorted(_name(n) for n in nodes),
    }
    assert live["jobs"] > 10 and live["utilisation"]["fleet"] > 0
    assert set(live["utilisation"]["by_flavor"]) == {"h100", "a100", "l4"}  # the cluster's products
    # The digital twin, offline: the snapshot the run wrote, as the scenario's dump.
    offline_dir = tmp_path / "offline"
    offline_dir.mkdir()
    shutil.copy(out / "nodes.yaml", offline_dir / "nodes.yaml")
    offline = twin_scenario(offline_dir, "  nodes_file: nodes.yaml\n")
    assert simulate(str(offline), "--out", str(tmp_path / "replay")) == 0
    replay = json.loads(capsys.readouterr().out)
    assert "fleet" not in replay
    del live["fleet"]
    assert replay == live


def test_simulate_fleet_from_cluster_with_a_context_and_a_quota_only_scenario(
    server: FakeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A scenario without a fleet gets one from the cluster; ``--context`` picks it."""
    seed(server, SAMPLES["nodes-dump-scenario"])
    text = re.sub(r"\nfleet:\n.*?\n(?=queues:)", "\n", twin_scenario(tmp_path, POOLS).read_text(), flags=re.S)
    assert "fleet:" not in text
    scenario = tmp_path / "quota-only.yaml"
    scenario.write_text(text)
    kubeconfig = server.kubeconfig(tmp_path, context="twin")
    args = [str(scenario), "--fleet-from-cluster", "--kubeconfig", str(kubeconfig), "--context", "twin"]
    assert simulate(*args, "--out", str(tmp_path / "o")) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["fleet"]["source"] == "cluster context 'twin'" and "quota_only" not in report


def test_flavors_that_select_no_cluster_node_name_the_cluster(
    server: FakeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(server, [n for n in SAMPLES["nodes-dump-scenario"] if "l4" not in _name(n)])
    scenario = twin_scenario(tmp_path, POOLS)
    kubeconfig = server.kubeconfig(tmp_path)
    assert (
        simulate(
            str(scenario), "--fleet-from-cluster", "--kubeconfig", str(kubeconfig), "--out", str(tmp_path)
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "ResourceFlavor 'l4' selects no node of cluster context 'prod-east'" in err
    assert "Traceback" not in err


class NodesForbidden(FakeApiServer):
    """A service account without ``list nodes`` at the cluster scope (the double's ``forbid`` covers
    namespaces only; nodes are cluster-scoped)."""

    def _authorize(self, route: Any, method: str, query: Mapping[str, str]) -> None:
        if route.res.plural == "nodes":
            raise ApiError(
                403,
                "Forbidden",
                f'nodes is forbidden: User "{self.user}" cannot list resource "nodes" in API group "" '
                "at the cluster scope",
            )
        super()._authorize(route, method, query)


@pytest.mark.parametrize("fault", ["unreachable", "unauthorized", "forbidden", "empty"])
def test_cluster_errors_are_one_line_naming_the_context_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fault: str
) -> None:
    with (NodesForbidden if fault == "forbidden" else FakeApiServer)(context="prod-east") as fake:
        if fault != "empty":
            seed(fake, SAMPLES["nodes-dump-scenario"])
        kubeconfig = fake.kubeconfig(tmp_path, token="wrong" if fault == "unauthorized" else None)
        if fault == "unreachable":
            fake.stop()
        scenario = twin_scenario(tmp_path, POOLS)
        out = tmp_path / "out"
        code = simulate(
            str(scenario), "--fleet-from-cluster", "--kubeconfig", str(kubeconfig), "--out", str(out)
        )
    captured = capsys.readouterr()
    assert code == 3, captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "prod-east" in lines[0] and "Traceback" not in captured.err
    expected = {
        "unreachable": "Unreachable: cannot reach http://127.0.0.1:",
        "unauthorized": "HTTP 401 Unauthorized",
        "forbidden": "HTTP 403 Forbidden",
        "empty": "the cluster lists no node",
    }[fault]
    assert expected in lines[0]
    assert captured.out == "" and not out.exists()  # nothing simulated, nothing written


@pytest.mark.parametrize(
    ("kubeconfig_text", "context", "expected"),
    [
        ("{not: [yaml", None, "not a readable kubeconfig (context (current))"),
        ("clusters: []\n", "prod-east", "kubeconfig defines no contexts (context prod-east)"),
        (None, "staging", "context 'staging' not found; known contexts: prod-east"),
    ],
)
def test_a_bad_kubeconfig_or_context_is_a_usage_error(
    server: FakeApiServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kubeconfig_text: str | None,
    context: str | None,
    expected: str,
) -> None:
    kubeconfig = server.kubeconfig(tmp_path)
    if kubeconfig_text is not None:
        kubeconfig.write_text(kubeconfig_text)
    args = [str(twin_scenario(tmp_path, POOLS)), "--fleet-from-cluster", "--kubeconfig", str(kubeconfig)]
    if context is not None:
        args += ["--context", context]
    assert simulate(*args, "--out", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert expected in err and str(kubeconfig) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_bad_scenario_fails_before_the_cluster_is_contacted(
    server: FakeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = twin_scenario(tmp_path, POOLS)
    scenario.write_text(scenario.read_text().replace("seed: 11", "seed: -1"))
    kubeconfig = server.kubeconfig(tmp_path)
    server.stop()  # contacting it would fail with exit 3
    assert simulate(str(scenario), "--fleet-from-cluster", "--kubeconfig", str(kubeconfig)) == 2
    assert "seed" in capsys.readouterr().err


def test_cluster_options_need_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = twin_scenario(tmp_path, POOLS)
    assert simulate(str(scenario), "--context", "prod-east") == 2
    assert "--context: only means something with --fleet-from-cluster" in capsys.readouterr().err


def test_without_the_kueue_extra_the_flag_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "kubernetes", None)  # as if the extra were not installed
    scenario = twin_scenario(tmp_path, POOLS)
    assert simulate(str(scenario), "--fleet-from-cluster", "--out", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: --fleet-from-cluster needs the kueue extra (pip install 'budcore[kueue]'): "
        "missing module 'kubernetes'"
    )


def test_the_simulator_cli_does_not_import_the_adapter_until_asked() -> None:
    code = (
        "import sys; from budcore.cli import main; assert main(['simulate', '--help']) == 0; "
        "bad = [m for m in sys.modules if m in ('kubernetes', 'budcore_adapters.kueue.fleet')]; "
        "assert not bad, bad"
    )
    result = subprocess.run([sys.executable, "-c", code], timeout=60, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_fleet_equality_is_meaningful() -> None:
    """Guard for the equality tests: different nodes do give different fleets."""
    a = parse_nodes_yaml(kubectl_dump(SAMPLES["gke"]))
    b = parse_nodes_yaml(kubectl_dump(SAMPLES["gke"][1:]))
    assert isinstance(a, Fleet) and a != b
