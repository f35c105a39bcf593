"""``budcore reserve``: capacity bookings kept in a file between invocations (in process, via ``main``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from budcore.cli import main
from budcore.cli.reserve import STORE_ENV, open_store

QUEUES = """\
apiVersion: kueue.x-k8s.io/v1beta1
kind: ResourceFlavor
metadata:
  name: h100
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: ClusterQueue
metadata:
  name: gpu
spec:
  namespaceSelector: {}
  resourceGroups:
  - coveredResources: ["nvidia.com/gpu"]
    flavors:
    - name: h100
      resources:
      - name: "nvidia.com/gpu"
        nominalQuota: 16
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: LocalQueue
metadata:
  name: train
  namespace: team-a
spec:
  clusterQueue: gpu
"""


def t(day: int, hour: int = 0, year: int = 2099) -> str:
    """An ISO 8601 UTC time in January (far from now, so states are stable)."""
    return f"{year}-01-{day:02d}T{hour:02d}:00:00Z"


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.delenv(STORE_ENV, raising=False)
    queues = tmp_path / "queues.yaml"
    queues.write_text(QUEUES)
    return tmp_path / "bookings.json", queues


def add_args(
    name: str,
    store: Path,
    queues: Path,
    *,
    owner: str = "team-a",
    flavor: str = "h100",
    quantity: str = "8",
    start: str = t(2, 9),
    end: str = t(2, 17),
    extra: tuple[str, ...] = (),
) -> list[str]:
    return [
        "reserve", "add", name, "--owner", owner, "--cluster-queue", "gpu", "--flavor", flavor,
        "--resource", "nvidia.com/gpu", "--quantity", quantity, "--start", start, "--end", end,
        "--queues", str(queues), "--store", str(store), *extra,
    ]  # fmt: skip


def run_json(capsys: pytest.CaptureFixture[str], args: list[str]) -> Any:
    capsys.readouterr()
    assert main([*args, "--format", "json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_add_list_show_cancel_round_trip(
    paths: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store, queues = paths
    assert main(add_args("eval", store, queues, extra=("--job", "j1", "--job", "j2"))) == 0
    out = capsys.readouterr().out
    assert "booked eval (8 nvidia.com/gpu on h100 in ClusterQueue gpu for team-a" in out
    assert store.exists()  # the next invocation finds it
    later = add_args("later", store, queues, quantity="500m", start="2099-01-03T00:00:00+02:00", end=t(3, 6))
    assert main(later) == 0

    rows = run_json(capsys, ["reserve", "list", "--store", str(store)])
    assert [r["name"] for r in rows] == ["eval", "later"]
    assert rows[0] | {"created_at": None} == {
        "name": "eval",
        "owner": "team-a",
        "cluster_queue": "gpu",
        "flavor": "h100",
        "resource": "nvidia.com/gpu",
        "quantity": "8",
        "quantity_milli": 8000,
        "start": t(2, 9),
        "end": t(2, 17),
        "job_ids": ["j1", "j2"],
        "created_at": None,
        "state": "upcoming",
    }
    assert (rows[1]["quantity"], rows[1]["start"]) == ("500m", t(2, 22))  # offsets become UTC

    shown = run_json(capsys, ["reserve", "show", "later", "--store", str(store)])
    assert shown == rows[1]
    assert main(["reserve", "show", "eval", "--store", str(store)]) == 0
    assert "j1, j2" in capsys.readouterr().out

    assert main(["reserve", "cancel", "eval", "--store", str(store)]) == 0
    assert "cancelled eval" in capsys.readouterr().out
    assert [r["name"] for r in run_json(capsys, ["reserve", "list", "--store", str(store)])] == ["later"]
    assert main(["reserve", "cancel", "eval", "--store", str(store)]) == 2
    assert capsys.readouterr().err.strip() == "error: reservation 'eval' not found"


def test_list_shows_state_now_and_filters(
    paths: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store, queues = paths
    windows = {
        "ended": (t(1, 0, year=2020), t(2, 0, year=2020)),
        "active": (t(3, 0, year=2020), t(1)),
        "upcoming": (t(2), t(3)),
    }
    for name, (start, end) in windows.items():
        assert main(add_args(name, store, queues, quantity="4", start=start, end=end)) == 0
    rows = run_json(capsys, ["reserve", "list", "--store", str(store)])
    assert {r["name"]: r["state"] for r in rows} == {name: name for name in windows}
    assert [r["name"] for r in rows] == ["ended", "active", "upcoming"]  # by start

    window = ["--from", t(1, 0, year=2030), "--to", t(2)]  # [from, to): not upcoming, which starts at to
    listed = run_json(capsys, ["reserve", "list", "--store", str(store), *window])
    assert [r["name"] for r in listed] == ["active"]
    assert run_json(capsys, ["reserve", "list", "--store", str(store), "--cluster-queue", "other"]) == []

    assert main(["reserve", "list", "--store", str(store)]) == 0
    table = capsys.readouterr().out
    for word in ("ended", "active", "upcoming", "ClusterQueue", "state"):
        assert word in table

    backwards = ["--from", t(2, 0, year=2030), "--to", t(1, 0, year=2030)]
    assert main(["reserve", "list", "--store", str(store), *backwards]) == 2
    assert "--to: must be after --from" in capsys.readouterr().err


def test_conflict_is_refused_naming_the_overlap(
    paths: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store, queues = paths
    assert main(add_args("first", store, queues, quantity="12")) == 0
    before = store.read_text()
    capsys.readouterr()
    args = add_args("second", store, queues, owner="team-b", start=t(2, 16), end=t(2, 20))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: reservation second (8 nvidia.com/gpu on h100 in ClusterQueue gpu for")
    assert "conflicts with first (12 nvidia.com/gpu" in err
    assert "from 2099-01-02T16:00:00+00:00 to 2099-01-02T17:00:00+00:00" in err
    assert "20 nvidia.com/gpu booked of a nominal quota of 16" in err
    assert store.read_text() == before  # nothing stored
    # After the first one ends, the room is free again; and a booking alone above the quota is refused.
    assert main(add_args("after", store, queues, owner="team-b", start=t(2, 17), end=t(2, 20))) == 0
    assert main(add_args("huge", store, queues, quantity="17", start=t(10), end=t(11))) == 2
    assert "more than the nominal quota 16" in capsys.readouterr().err


def test_duplicate_name_is_refused(paths: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    store, queues = paths
    assert main(add_args("eval", store, queues, quantity="1")) == 0
    assert main(add_args("eval", store, queues, quantity="1", start=t(10), end=t(11))) == 2
    assert "error: reservation 'eval' already exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"flavor": "h200"}, "error: --flavor: ClusterQueue gpu has no flavor 'h200' (its flavors: h100)"),
        ({"start": "2099-01-02T09:00:00"}, "error: --start: '2099-01-02T09:00:00' has no timezone"),
        ({"end": "2099-01-02 17:00"}, "error: --end: '2099-01-02 17:00' has no timezone"),
        ({"end": "tomorrow"}, "error: --end: expected an ISO 8601 time with an offset or Z"),
        ({"end": t(2, 8)}, "error: --end: end (2099-01-02T08:00:00+00:00) must be after"),
        ({"quantity": "8 GPUs"}, "error: --quantity: invalid quantity '8 GPUs'"),
        ({"quantity": "0"}, "error: --quantity:"),
        ({"owner": "Team_A"}, "error: --owner:"),
    ],
)
def test_bad_input_names_the_option(
    paths: tuple[Path, Path], capsys: pytest.CaptureFixture[str], change: dict[str, str], expected: str
) -> None:
    store, queues = paths
    assert main(add_args("eval", store, queues, **change)) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected), err
    assert "Traceback" not in err


def test_unknown_cluster_queue_and_resource_name_the_option(
    paths: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store, queues = paths
    args = add_args("eval", store, queues)
    args[args.index("--cluster-queue") + 1] = "cpu-pool"
    assert main(args) == 2
    expected = "error: --cluster-queue: unknown ClusterQueue 'cpu-pool' (known: gpu)"
    assert capsys.readouterr().err.startswith(expected)
    args = add_args("eval", store, queues)
    args[args.index("--resource") + 1] = "amd.com/gpu"
    assert main(args) == 2
    expected = "error: --resource: flavor h100 of ClusterQueue gpu has no quota for 'amd.com/gpu'"
    assert capsys.readouterr().err.startswith(expected)


def test_a_bad_queue_file_is_reported_with_file_and_line(
    paths: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store, queues = paths
    queues.write_text(QUEUES.replace("nominalQuota: 16", "nominalQuota: lots"))
    assert main(add_args("eval", store, queues)) == 2
    err = capsys.readouterr().err
    assert f"{queues}:" in err and "nominalQuota" in err
    assert main(add_args("eval", store, queues.with_name("missing.yaml"))) == 2
    assert "missing.yaml" in capsys.readouterr().err


def test_an_owner_without_a_local_queue_is_warned_about(
    paths: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store, queues = paths
    assert main(add_args("eval", store, queues, owner="team-z")) == 0
    err = capsys.readouterr().err
    assert "warning: namespace 'team-z' has no LocalQueue of ClusterQueue 'gpu'" in err


def test_missing_store_says_to_pass_it(paths: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["reserve", "list"], ["reserve", "show", "x"], ["reserve", "cancel", "x"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --store: no reservation store: pass --store"), err
        assert STORE_ENV in err


def test_store_defaults_to_the_environment(
    paths: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, queues = paths
    monkeypatch.setenv(STORE_ENV, str(store))
    args = add_args("eval", store, queues)
    cut = args.index("--store")
    assert main(args[:cut] + args[cut + 2 :]) == 0
    assert json.loads(store.read_text())["reservations"][0]["name"] == "eval"
    assert [r["name"] for r in run_json(capsys, ["reserve", "list"])] == ["eval"]


def test_store_choice_by_url_or_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from budcore.plugins import default_registry

    calls: list[tuple[str, dict[str, Any]]] = []

    def fake(name: str = "inmemory", **options: Any) -> object:
        calls.append((name, options))
        return object()

    monkeypatch.setattr(default_registry(), "reservation_store", fake)
    open_store("postgresql://budcore@db/budcore")
    open_store("postgresql+psycopg://db/budcore")
    open_store(str(tmp_path / "b.json"))
    assert calls == [
        ("postgres", {"url": "postgresql://budcore@db/budcore"}),
        ("postgres", {"url": "postgresql+psycopg://db/budcore"}),
        ("inmemory", {"path": tmp_path / "b.json"}),
    ]


def test_a_corrupt_store_file_is_one_error_and_left_alone(
    paths: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store, queues = paths
    assert main(add_args("eval", store, queues)) == 0
    broken = store.read_text().replace('"quantity": 8000', '"quantity": "eight"')
    store.write_text(broken)
    capsys.readouterr()
    assert main(add_args("other", store, queues, start=t(10), end=t(11))) == 2
    err = capsys.readouterr().err
    line = next(i for i, text in enumerate(broken.splitlines(), 1) if '"eight"' in text)
    assert err.startswith(f"error: {store}:{line}: reservations[0].quantity: invalid quantity 'eight'"), err
    assert "Traceback" not in err
    assert store.read_text() == broken
    assert main(["reserve", "list", "--store", str(store)]) == 2


def test_bad_format_is_refused_before_any_work(
    paths: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store, _ = paths
    assert main(["reserve", "list", "--store", str(store), "--format", "yaml"]) == 2
    assert "--format: unknown format 'yaml'" in capsys.readouterr().err
    assert not store.exists()
