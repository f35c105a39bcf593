"""Tables for people, the same rows for scripts: no key column is ever cut, ``--wide``, CSV and JSON.

A key column (a slug, a node name, an amount of money) keeps its cells whole on one line while the
other columns can make room, and folds onto more lines rather than ending in "…" when they cannot;
``--wide`` prints each row on one line; every table command takes ``--format json`` and ``csv``;
sizes are printed in binary units with three significant digits.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from budcore_simulator.cli import default_scenario_path
from rich.table import Table

from budcore.cli import main
from budcore.cli.hardware import CATALOG_FIELDS, NODE_FIELDS
from budcore.cli.output import human_bytes, human_gib, key_column, plain_console, print_table
from budcore.cli.recommend_tables import RECOMMEND_FIELDS

NODES = default_scenario_path().parent.parent / "nodes-dump" / "nodes.yaml"
NODE_NAMES = ("gpu-h100-a", "gpu-h100-b", "gpu-a100-a", "gpu-a100-b", "gpu-l4-a", "cpu-a")
PIPELINE = default_scenario_path().parent.parent / "pipelines" / "train-and-deploy.yaml"


def csv_rows(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def output(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> str:
    capsys.readouterr()
    assert main(list(args)) == code, capsys.readouterr().err
    return capsys.readouterr().out


# Units ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2164133801984, "1.97 TiB"),  # the kubectl dump's H100 hosts (was "1.96827TiB")
        (1082066907136, "1008 GiB"),
        (202480857088, "189 GiB"),
        (80 * 2**30, "80 GiB"),
        (2 * 2**40, "2 TiB"),
        (int(1023.9 * 2**30), "1 TiB"),  # rounds into the next unit, never "1024 GiB"
        (1536, "1.5 KiB"),
        (512, "512 B"),
        (0, "0 B"),
        (None, "-"),
    ],
)
def test_human_bytes(value: int | None, text: str) -> None:
    assert human_bytes(value) == text


def test_human_gib() -> None:
    assert (human_gib(80), human_gib(141), human_gib(2015.5), human_gib(None)) == (
        "80 GiB",
        "141 GiB",
        "1.97 TiB",
        "-",
    )


# print_table ---------------------------------------------------------------------------------------
SLUG = "nvidia-h100-sxm5-80gb-hbm3-with-a-long-suffix"


def table_text(width: int, *, wide: bool = False) -> str:
    table = Table(title="t")
    key_column(table, "slug")
    for column in ("description", "notes", "more"):
        table.add_column(column)
    table.add_row(SLUG, "a fairly long description of the thing " * 2, "notes " * 6, "x")
    buffer = io.StringIO()
    print_table(table, wide=wide, console=plain_console(width=width, file=buffer))
    return buffer.getvalue()


def test_a_key_column_stays_whole_while_the_others_make_room() -> None:
    text = table_text(90)
    assert "…" not in text
    assert any(SLUG in line for line in text.splitlines())
    assert max(len(line) for line in text.splitlines()) <= 90


def test_a_key_column_folds_but_loses_nothing_when_nothing_else_can_give() -> None:
    text = table_text(40)
    assert "…" not in text
    cells = "".join(line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│"))
    assert SLUG in cells
    assert max(len(line) for line in text.splitlines()) <= 40


def test_wide_prints_each_row_on_one_line() -> None:
    text = table_text(40, wide=True)
    rows = [line for line in text.splitlines() if SLUG in line]
    assert len(rows) == 1 and "notes notes" in rows[0] and rows[0].rstrip().endswith("│")


# hardware ------------------------------------------------------------------------------------------
def test_hardware_parse_keeps_node_names_whole_and_prints_human_sizes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    out = output(capsys, "hardware", "parse", str(NODES))
    assert "…" not in out
    lines = out.splitlines()
    for name in NODE_NAMES:
        assert any(f"│ {name} " in line for line in lines), name
    assert "1.97" in out and "1.96827" not in out


def test_hardware_parse_wide(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    out = output(capsys, "hardware", "parse", str(NODES), "--wide")
    h100 = next(line for line in out.splitlines() if "gpu-h100-a" in line)
    for cell in ("NVIDIA H100 80GB", "80 GiB", "1.97 TiB", "exclusive", "Ready"):
        assert cell in h100


def test_hardware_parse_csv_is_the_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    fields, rows = csv_rows(output(capsys, "hardware", "parse", str(NODES), "--format", "csv"))
    assert fields == list(NODE_FIELDS)
    assert [r["name"] for r in rows] == list(NODE_NAMES)
    assert rows[0]["host_memory_bytes"] == "2164133801984" and rows[0]["gpus"] == "8"


def test_hardware_catalog_csv_and_table(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fields, rows = csv_rows(output(capsys, "hardware", "catalog", "--format", "csv"))
    assert fields == list(CATALOG_FIELDS)
    slugs = [r["slug"] for r in rows]
    assert "nvidia-h100-pcie-80gb" in slugs
    monkeypatch.setenv("COLUMNS", "100")
    table = output(capsys, "hardware", "catalog")
    assert "…" not in table
    for slug in slugs:
        assert any(f"│ {slug} " in line for line in table.splitlines()), slug


def test_recommend_csv_keeps_money_exact(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["recommend", "--model-params", "7e9", "--serve-hours", "10"]
    fields, rows = csv_rows(output(capsys, *args, "--format", "csv"))
    assert fields == list(RECOMMEND_FIELDS)
    priced = [r for r in rows if r["hourly_price"]]
    assert priced and all(re.fullmatch(r"\d+\.\d\d", r["hourly_price"]) for r in priced)
    assert {r["estimated_hours"] for r in rows} == {"10"}  # not "1E+1"
    document = json.loads(output(capsys, *args, "--format", "json"))
    assert [r["profile"] for r in rows] == [r["profile"] for r in document]


def test_recommend_table_never_cuts_money(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    args = ["recommend", "--model-params", "7e9", "--serve-hours", "10"]
    table = output(capsys, *args)
    document: list[dict[str, Any]] = json.loads(output(capsys, *args, "--format", "json"))
    assert "…" not in table
    for row in document:
        if row["estimated_cost"] is not None:
            assert f"${float(row['estimated_cost']):,.2f}" in table


# plugins, demo, reserve, pipeline run --------------------------------------------------------------
def test_plugins_csv(capsys: pytest.CaptureFixture[str]) -> None:
    fields, rows = csv_rows(output(capsys, "plugins", "--format", "csv"))
    assert fields == ["kind", "name", "origin", "status"]
    assert {"kind": "job_store", "name": "inmemory"}.items() <= next(
        r for r in rows if r["kind"] == "job_store" and r["name"] == "inmemory"
    ).items()


def test_demo_prints_json_and_csv(capsys: pytest.CaptureFixture[str]) -> None:
    document = json.loads(output(capsys, "demo", "--format", "json"))
    assert set(document) == {"jobs", "pending", "summary"}
    assert document["summary"]["statuses"] == {"completed": 30}
    assert len(document["jobs"]) == 30 and document["pending"] == []
    assert document["jobs"][0]["start"].startswith("2026-01-05T")
    assert json.loads(output(capsys, "demo", "--quiet", "--format", "json")) == document["summary"]
    fields, rows = csv_rows(output(capsys, "demo", "--format", "csv"))
    assert fields == ["job", "tenant", "type", "priority", "gpus", "status", "start", "end"]
    assert [r["job"] for r in rows] == [j["job"] for j in document["jobs"]]


QUEUES = """\
apiVersion: kueue.x-k8s.io/v1beta1
kind: ResourceFlavor
metadata: {name: h100}
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: ClusterQueue
metadata: {name: a-cluster-queue-with-a-rather-long-name}
spec:
  namespaceSelector: {}
  resourceGroups:
  - coveredResources: ["nvidia.com/gpu"]
    flavors: [{name: h100, resources: [{name: "nvidia.com/gpu", nominalQuota: 16}]}]
"""


def test_reserve_list_csv_and_a_narrow_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    queues, store = tmp_path / "queues.yaml", tmp_path / "bookings.json"
    queues.write_text(QUEUES)
    cq = "a-cluster-queue-with-a-rather-long-name"
    add = ["reserve", "add", "an-evaluation-booking", "--owner", "team-a", "--cluster-queue", cq]
    add += ["--flavor", "h100", "--resource", "nvidia.com/gpu", "--quantity", "8", "--queues", str(queues)]
    add += ["--start", "2099-01-02T09:00:00Z", "--end", "2099-01-02T17:00:00Z", "--store", str(store)]
    add += ["--job", "j1", "--job", "j2"]
    fields, rows = csv_rows(output(capsys, *add, "--format", "csv"))
    assert rows[0]["name"] == "an-evaluation-booking" and rows[0]["job_ids"] == "j1;j2"
    fields, listed = csv_rows(output(capsys, "reserve", "list", "--store", str(store), "--format", "csv"))
    assert fields[:4] == ["name", "owner", "cluster_queue", "flavor"] and listed == rows
    monkeypatch.setenv("COLUMNS", "100")
    table = output(capsys, "reserve", "show", "an-evaluation-booking", "--store", str(store))
    assert cq in table and "…" not in table


def test_pipeline_run_shows_whole_job_ids_and_prints_csv(capsys: pytest.CaptureFixture[str]) -> None:
    out = output(capsys, "pipeline", "run", str(PIPELINE), "--quiet", code=1)  # its condition fails
    assert re.search(r"│ [0-9a-f]{32} │", out)  # the job column was cut to 12 characters
    fields, rows = csv_rows(output(capsys, "pipeline", "run", str(PIPELINE), "-q", "--format", "csv", code=1))
    assert fields[:4] == ["id", "name", "type", "status"]
    assert [r["id"] for r in rows] == ["prepare-data", "train", "evaluate", "good-enough", "deploy"]
    assert len(rows[0]["job_id"]) == 32 and json.loads(rows[0]["outputs"])["job_id"] == rows[0]["job_id"]
