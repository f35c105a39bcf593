"""``budcore kueue render|diff|apply`` end to end through ``budcore.cli.main`` (the double as cluster).

Exit statuses: 0 done / no differences, 1 differences (diff) or declined (apply), 2 bad input,
3 the cluster refused or was unreachable. Errors are single lines on stderr, never tracebacks.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from budcore_adapters.kueue import cli as kueue_cli
from budcore_adapters.kueue.client import kueue_type
from budcore_adapters.kueue.render import render_yaml
from kueue.apiserver import FakeApiServer

from budcore.cli import main
from budcore.config import load_example, load_queue_config, read_example

EXAMPLE = read_example("platform-gpu-pool")
LQ = kueue_type("LocalQueue")


def count(server: FakeApiServer) -> int:
    kinds = ("ResourceFlavor", "Cohort", "ClusterQueue", "WorkloadPriorityClass", "LocalQueue")
    return sum(len(server.objects(kueue_type(kind))) for kind in kinds)


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer() as fake:
        yield fake


@pytest.fixture
def queues(tmp_path: Path) -> Path:
    path = tmp_path / "queues.yaml"
    path.write_text(EXAMPLE, encoding="utf-8")
    return path


@pytest.fixture
def cluster(server: FakeApiServer, tmp_path: Path, queues: Path) -> list[str]:
    """The options naming the queue file and the double's kubeconfig."""
    return ["--queues", str(queues), "--kubeconfig", str(server.kubeconfig(tmp_path))]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["kueue", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


# ---- render ----


def test_render_prints_the_objects(capsys: pytest.CaptureFixture[str], queues: Path) -> None:
    code, out, err = run(capsys, "render", "--queues", str(queues))
    assert (code, err) == (0, "")
    assert out == render_yaml(load_queue_config(queues))
    assert [d["kind"] for d in yaml.safe_load_all(out)][:3] == [
        "ResourceFlavor",
        "ResourceFlavor",
        "ClusterQueue",
    ]

    code, out, _ = run(capsys, "render", "--queues", str(queues), "--api-version", "v1beta1")
    assert code == 0 and {d["apiVersion"] for d in yaml.safe_load_all(out)} == {"kueue.x-k8s.io/v1beta1"}


def test_render_without_queues_uses_the_shipped_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "render")
    assert code == 0 and out == render_yaml(load_example("platform-gpu-pool"))
    assert err == "note: no --queues given: rendering the shipped example 'platform-gpu-pool'\n"
    code, out, err = run(capsys, "render", "--example", "heterogeneous-three-tenants", "--label", "team=a")
    assert code == 0 and err == ""
    assert out == render_yaml(load_example("heterogeneous-three-tenants"), labels={"team": "a"})


def test_render_bad_input_is_one_line_per_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, queues: Path
) -> None:
    code, out, err = run(capsys, "render", "--queues", str(queues), "--api-version", "v2")
    assert (code, out) == (2, "")
    assert err == "error: --api-version: unsupported Kueue API version 'v2': use one of v1beta1, v1beta2\n"

    broken = tmp_path / "broken.yaml"
    broken.write_text(EXAMPLE.replace("nominalQuota: 50\n        borrowingLimit: 30", "nominalQuota: [50"))
    code, out, err = run(capsys, "render", "--queues", str(broken))
    assert (code, out) == (2, "")
    lines = err.splitlines()
    assert lines[0] == "error: 1 problem(s)"
    # file:line of the YAML error (the parser notices it on the line after the unclosed "[50")
    line = 1 + next(i for i, text in enumerate(broken.read_text().splitlines(), 1) if "[50" in text)
    assert lines[1].startswith(f"  {broken}:{line}: document 4: malformed YAML")

    wide = tmp_path / "wide.yaml"
    labels = "".join(f"    example.com/l{i}: x\n" for i in range(9))
    head = "apiVersion: kueue.x-k8s.io/v1beta2\nkind: ResourceFlavor\nmetadata:\n  name: w\n"
    wide.write_text(f"{head}spec:\n  nodeLabels:\n{labels}")
    code, _, err = run(capsys, "render", "--queues", str(wide))
    assert (
        code == 2 and f"{wide}:6: spec.nodeLabels: ResourceFlavor 'w'" in err and "too many properties" in err
    )


# ---- diff and apply ----


def test_diff_apply_diff(
    capsys: pytest.CaptureFixture[str], server: FakeApiServer, cluster: list[str]
) -> None:
    code, out, err = run(capsys, "diff", *cluster)
    assert (code, err) == (1, "")  # differences, like diff(1)
    assert out.startswith("--- cluster (context fake-cluster)\n+++ budcore configuration\n")
    assert "+ ClusterQueue model-endpoints (create)\n" in out
    assert out.endswith("8 to create, 0 to update, 0 unchanged\n")

    code, out, err = run(capsys, "apply", *cluster, "--yes")
    assert (code, err) == (0, "")
    assert "created LocalQueue budusecases/usecase-deployments\n" in out
    assert out.endswith("8 changed (8 created, 0 updated, 0 deleted), 0 unchanged; context fake-cluster\n")
    assert count(server) == 8

    assert run(capsys, "diff", *cluster) == (0, _no_changes(), "")
    code, out, _ = run(capsys, "apply", *cluster, "--yes")
    assert code == 0
    assert out.endswith("0 changed (0 created, 0 updated, 0 deleted), 8 unchanged; context fake-cluster\n")


def _no_changes() -> str:
    return (
        "--- cluster (context fake-cluster)\n+++ budcore configuration\n"
        "0 to create, 0 to update, 8 unchanged\n"
    )


def test_quota_change_and_prune_through_the_cli(
    capsys: pytest.CaptureFixture[str], server: FakeApiServer, cluster: list[str], queues: Path
) -> None:
    assert run(capsys, "apply", *cluster, "--yes")[0] == 0
    edited = EXAMPLE.replace("nominalQuota: 30", "nominalQuota: 40")
    edited = "---".join(d for d in edited.split("---") if "namespace: budusecases" not in d)
    queues.write_text(edited)
    code, out, _ = run(capsys, "diff", *cluster)
    assert code == 1
    path = "spec.resourceGroups[0].flavors[0].resources[0].nominalQuota"
    assert f'~ ClusterQueue usecase-deployments (update)\n~     {path}: "30" -> "40"\n' in out
    assert "- LocalQueue budusecases/usecase-deployments (prune:" in out
    assert out.endswith("0 to create, 1 to update, 6 unchanged, 1 to prune (only with --prune)\n")

    code, out, _ = run(capsys, "apply", *cluster, "--yes")
    assert code == 0 and "kept LocalQueue budusecases/usecase-deployments: not in the configuration" in out
    assert server.get_object(LQ, "usecase-deployments", "budusecases") is not None
    code, out, _ = run(capsys, "apply", *cluster, "--yes", "--prune")
    assert code == 0 and "deleted LocalQueue budusecases/usecase-deployments\n" in out
    assert server.get_object(LQ, "usecase-deployments", "budusecases") is None
    assert run(capsys, "diff", *cluster)[0] == 0


def test_apply_needs_yes_or_dry_run_without_a_terminal(
    capsys: pytest.CaptureFixture[str], server: FakeApiServer, cluster: list[str]
) -> None:
    code, out, err = run(capsys, "apply", *cluster)
    assert code == 2
    assert "+ ClusterQueue model-endpoints (create)" in out  # the diff is shown first
    assert err == (
        "error: --yes: not asking for confirmation (stdin is not a terminal): pass --yes to apply these "
        "changes, or --dry-run to have the server check them without storing them\n"
    )
    assert count(server) == 0

    rv = server.resource_version
    code, out, err = run(capsys, "apply", *cluster, "--dry-run")
    assert (code, err) == (0, "")
    assert "would have created ClusterQueue model-endpoints\n" in out
    assert "dry run (the server checked every change, nothing was stored): 8 changed" in out
    assert (count(server), server.resource_version) == (0, rv)


@pytest.mark.parametrize(("answer", "code", "stored"), [("y\n", 0, 8), ("n\n", 1, 0)])
def test_apply_asks_on_a_terminal(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    server: FakeApiServer,
    cluster: list[str],
    answer: str,
    code: int,
    stored: int,
) -> None:
    monkeypatch.setattr(kueue_cli, "_interactive", lambda: True)
    monkeypatch.setattr("sys.stdin", io.StringIO(answer))
    got, out, err = run(capsys, "apply", *cluster)
    assert got == code
    assert "Apply these changes to context 'fake-cluster'? [y/N]" in out
    assert count(server) == stored
    if code:
        assert err == "not applied: nothing was changed\n"


def test_forbidden_namespace_names_the_object_and_what_was_applied(
    capsys: pytest.CaptureFixture[str], server: FakeApiServer, cluster: list[str]
) -> None:
    server.forbid("budusecases")
    code, _, err = run(capsys, "apply", *cluster, "--yes")
    assert code == 3
    first, second = err.splitlines()
    assert first.startswith(
        "error: fake-cluster: apply LocalQueue budusecases/usecase-deployments: HTTP 403 Forbidden: "
    )
    assert second.startswith("applied 7 of 8 before the failure: created ResourceFlavor a100-80gb, ")
    assert second.endswith("created LocalQueue budserve/serverless-endpoints")
    assert count(server) == 7


def test_conflict_is_a_cluster_error(
    capsys: pytest.CaptureFixture[str], server: FakeApiServer, cluster: list[str]
) -> None:
    server.conflict_next(1)
    code, _, err = run(capsys, "apply", *cluster, "--yes")
    assert code == 3
    assert err.splitlines() == [
        err.splitlines()[0],
        "nothing was applied before the failure (0 of 8)",
    ]
    assert err.startswith("error: fake-cluster: apply ResourceFlavor a100-80gb: HTTP 409 Conflict")


def test_unreachable_server(
    capsys: pytest.CaptureFixture[str], server: FakeApiServer, cluster: list[str]
) -> None:
    server.stop()  # the kubeconfig now points at a closed port
    for command in ("diff", "apply"):
        code, out, err = (
            run(capsys, command, *cluster, "--yes") if command == "apply" else run(capsys, command, *cluster)
        )
        assert (code, out) == (3, "")
        assert err.count("\n") == 1
        assert err.startswith(
            f"error: fake-cluster: list ResourceFlavor: Unreachable: cannot reach {server.url}"
        )


def test_invalid_kubeconfig_and_unknown_context(
    capsys: pytest.CaptureFixture[str], server: FakeApiServer, tmp_path: Path, queues: Path
) -> None:
    garbage = tmp_path / "kubeconfig"
    garbage.write_text("clusters: [unclosed\n")
    code, out, err = run(capsys, "diff", "--queues", str(queues), "--kubeconfig", str(garbage))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {garbage}: not a readable kubeconfig") and err.count("\n") == 1

    missing = tmp_path / "nope"
    code, _, err = run(capsys, "diff", "--queues", str(queues), "--kubeconfig", str(missing))
    assert code == 2 and err.startswith(f"error: {missing}: kubeconfig file not found")

    good = str(server.kubeconfig(tmp_path))
    code, _, err = run(capsys, "diff", "--queues", str(queues), "--kubeconfig", good, "--context", "prod")
    assert code == 2
    assert err == f"error: {good}: context 'prod' not found; known contexts: fake-cluster\n"


def test_kubeconfig_defaults_to_the_environment(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    server: FakeApiServer,
    tmp_path: Path,
    queues: Path,
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(server.kubeconfig(tmp_path)))
    code, out, _ = run(capsys, "diff", "--queues", str(queues))
    assert code == 1 and out.startswith("--- cluster (context fake-cluster)")


def test_bad_queue_file_fails_before_contacting_the_cluster(
    capsys: pytest.CaptureFixture[str], server: FakeApiServer, cluster: list[str], queues: Path
) -> None:
    queues.write_text(EXAMPLE.replace("clusterQueue: usecase-deployments", "clusterQueue: nowhere"))
    before = server.requests
    code, out, err = run(capsys, "apply", *cluster, "--yes")
    assert (code, out) == (2, "")
    assert "ClusterQueue 'nowhere'" in err and f"{queues}:" in err
    assert server.requests == before
