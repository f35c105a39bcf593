"""Every plugin hook has a working built-in implementation, and a third party's is used the same way.

- ``budcore plugins`` lists a built-in for every hook kind: the core's pricing sources
  (``budcore.plugins.builtin``), the simulator's trace readers and policies
  (``budcore_simulator.plugin``), the in-memory adapters.
- A plugin registered in-process (pluggy ``register``) adds a pricing source that a scenario's
  ``fleet.price_book`` names, a trace reader that a scenario's ``format:`` names, and a policy that
  ``budcore compare -p NAME`` runs; mistakes are errors naming the plugin or listing what exists.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from budcore_simulator.scenario import load_scenario
from budcore_simulator.sweep import apply_policy, parse_policy
from budcore_simulator.workload.traces import (
    FilteredRow,
    ParsedRow,
    RowError,
    TraceReader,
    open_trace,
    parse_trace_spec,
)
from support.scenarios import SMALL

import budcore.plugins.registry as registry_module
from budcore import __version__
from budcore.cli import main
from budcore.cost.prices import default_price_book, price_book_from_hourly, sample_price_book
from budcore.domain.errors import PluginError, ValidationError
from budcore.plugins import KINDS, PluginRegistry, default_registry, hookimpl

NODES_DUMP = Path(str(files("budcore_simulator") / "scenarios" / "nodes-dump"))


# A third-party plugin ----------------------------------------------------------------------------
class JsonLinesTrace(TraceReader):
    """One JSON object a line: ``{"id", "submit", "runtime", "gpus", "user"}``; ``"skip": true`` drops it."""

    format = "jsonl"
    attributes = ("user",)

    def _rows(self) -> Iterator[tuple[str, int, Any]]:
        with self.path.open(encoding="utf-8") as handle:
            for line, text in enumerate(handle, 1):
                if text.strip():
                    yield str(self.path), line, json.loads(text)

    def _parse(self, line: int, row: Any) -> ParsedRow:
        if row.get("skip"):
            raise FilteredRow
        if not isinstance(row.get("gpus"), int):
            raise RowError("gpus", f"expected a whole number, got {row.get('gpus')!r}")
        cpu, memory = self._resources(row["gpus"])
        return ParsedRow(
            trace_id=str(row["id"]),
            submit=float(row["submit"]),
            runtime=float(row["runtime"]),
            gpus_per_pod=row["gpus"],
            pods=1,
            cpu_milli=cpu,
            memory_bytes=memory,
            attributes={"user": row["user"]},
            line=line,
        )


class PairedTrace(JsonLinesTrace):
    """A reader that needs a second file (like PAI's task table): declares ``task_path``."""

    format = "paired"

    def __init__(self, path: Path, task_path: Path, options: Any = None) -> None:
        super().__init__(path, options)
        self.task_path = task_path


def cost_aware() -> dict[str, Any]:
    return {"fair_sharing": True, "preemption_mode": "cost"}


class ThirdParty:
    """What a plugin module exposes: one implementation of each hook under test."""

    @staticmethod
    @hookimpl
    def budcore_register_trace_readers() -> dict[str, Any]:
        return {"jsonl": JsonLinesTrace, "paired": PairedTrace}

    @staticmethod
    @hookimpl
    def budcore_register_policies() -> dict[str, Any]:
        return {"cost-aware": cost_aware, "broken": lambda: ["not", "a", "mapping"]}

    @staticmethod
    @hookimpl
    def budcore_register_pricing_sources() -> dict[str, Any]:
        return {
            "flat": lambda: price_book_from_hourly({"nvidia-h100-80gb": "1.00", "nvidia-a100-80gb": "0.50"}),
            "not-a-book": lambda: NotABook(),
        }


class NotABook:
    """A PricingSource that is not a budcore PriceBook."""

    def hourly_price(self, accelerator: str, tier: str = "on-demand") -> Decimal | None:
        return Decimal(1)

    def tiers(self) -> list[str]:
        return ["on-demand"]


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> PluginRegistry:
    """A fresh process-wide registry (entry points and built-ins) with the third-party plugin."""
    fresh = PluginRegistry()
    fresh.register(ThirdParty, origin="thirdparty 1.0")
    monkeypatch.setattr(registry_module, "_default", fresh)
    assert default_registry() is fresh
    return fresh


JOBS = [
    {"id": "a", "submit": 100, "runtime": 600, "gpus": 1, "user": "alice"},
    {"id": "b", "submit": 160, "runtime": 300, "gpus": 2, "user": "bob"},
    {"id": "c", "submit": 130, "runtime": 60, "gpus": 1, "user": "bob", "skip": True},
    {"id": "d", "submit": 190, "runtime": 60, "gpus": "two", "user": "bob"},
]


def write_jobs(path: Path) -> Path:
    path.write_text("".join(json.dumps(job) + "\n" for job in JOBS))
    return path


# Built-ins -----------------------------------------------------------------------------------------
def test_every_hook_kind_has_a_built_in_listed_by_budcore_plugins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    listed = {(row["kind"], row["name"]): row["origin"] for row in rows if row["kind"]}
    assert {kind for kind, _ in listed} == set(KINDS)
    providers = ("budcore.builtin", "simulator", "inmemory")
    assert not [row for row in rows if row["kind"] is None and row["name"] in providers], rows
    simulator = f"budcore {__version__} (entry point simulator)"
    built_in = f"budcore {__version__} (built-in)"
    for kind, name, origin in [
        ("pricing_source", "default", built_in),
        ("pricing_source", "sample", built_in),
        ("pricing_source", "file", built_in),
        ("trace_reader", "budcore", simulator),
        ("trace_reader", "helios", simulator),
        ("trace_reader", "pai", simulator),
        ("trace_reader", "swf", simulator),
        ("policy", "fifo", simulator),
        ("policy", "fair", simulator),
        ("policy", "strict-fifo", simulator),
        ("validator", "scenario", simulator),
        ("job_store", "inmemory", f"budcore {__version__} (entry point inmemory)"),
    ]:
        assert listed.get((kind, name)) == origin, (kind, name)


def test_the_built_in_pricing_sources_are_the_packaged_books(tmp_path: Path) -> None:
    registry = PluginRegistry(load_entry_points=False)  # the core's own plugin needs no entry point
    assert registry.names("pricing_source") == ["default", "file", "sample"]
    assert registry.price_book("default") is default_price_book()
    assert registry.pricing_source("sample") is sample_price_book()
    book = tmp_path / "book.yaml"
    book.write_text(default_price_book().to_yaml())
    assert registry.price_book("file", path=book).version == default_price_book().version
    with pytest.raises(PluginError, match="bad options"):
        registry.price_book("file")


def test_the_built_in_policies_are_the_compare_presets() -> None:
    assert parse_policy("fifo").policy == {"fair_sharing": False}
    assert parse_policy("fair").policy == {"fair_sharing": True}
    variant = parse_policy("strict-fifo")
    assert (variant.policy, variant.queueing_strategy) == ({}, "StrictFIFO")
    # A fresh dict every time: a variant cannot change the preset.
    parse_policy("fair").policy["fair_sharing"] = False
    assert parse_policy("fair").policy == {"fair_sharing": True}


# A third-party trace reader -----------------------------------------------------------------------
@pytest.mark.usefixtures("registry")
def test_a_plugin_trace_reader_is_used_by_format_name(tmp_path: Path) -> None:
    spec = parse_trace_spec({"format": "jsonl", "path": "jobs.jsonl", "job_class": "ext"})
    reader = open_trace(spec, base_dir=write_jobs(tmp_path / "jobs.jsonl").parent)
    assert isinstance(reader, JsonLinesTrace)
    arrivals = list(reader)
    assert [(a.job_id, a.submit_s) for a in arrivals] == [("ext-a", 0.0), ("ext-b", 60.0)]
    assert (reader.report.filtered, reader.report.skipped) == (1, 1)
    assert "gpus" in str(reader.report.details[0])


@pytest.mark.usefixtures("registry")
def test_a_scenario_replays_a_plugin_trace(tmp_path: Path) -> None:
    write_jobs(tmp_path / "jobs.jsonl")
    workload = SMALL.index("workload:")
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        SMALL[:workload]
        + "workload:\n  traces:\n    - format: jsonl\n      path: jobs.jsonl\n"
        + "      mapping: {default_tenant: team, default_local_queue: main}\n"
    )
    loaded = load_scenario(scenario)
    arrivals = list(loaded.arrivals())
    assert [a.job_id for a in arrivals] == ["jsonl-a", "jsonl-b"]
    assert {a.tenant for a in arrivals} == {"team"}
    assert isinstance(loaded.trace_readers[0], JsonLinesTrace)


@pytest.mark.usefixtures("registry")
def test_an_unknown_format_lists_the_registered_ones() -> None:
    with pytest.raises(ValidationError) as info:
        parse_trace_spec({"format": "parquet", "path": "x"}, prefix="trace")
    assert info.value.path == "trace.format"
    assert "unknown trace format 'parquet'" in info.value.message
    assert "budcore, helios, jsonl, openb, pai, paired, swf" in info.value.message


@pytest.mark.usefixtures("registry")
def test_the_task_table_follows_the_readers_signature(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="the paired format needs its task table") as info:
        parse_trace_spec({"format": "paired", "path": "x"}, prefix="trace")
    assert info.value.path == "trace.task_path"
    with pytest.raises(ValidationError, match="the jsonl format has no task table"):
        parse_trace_spec({"format": "jsonl", "path": "x", "task_path": "y"})
    jobs = write_jobs(tmp_path / "jobs.jsonl")
    reader = open_trace(parse_trace_spec({"format": "paired", "path": str(jobs), "task_path": "tasks"}))
    assert isinstance(reader, PairedTrace)
    assert reader.task_path == Path.cwd() / "tasks"


def test_a_reader_that_returns_no_trace_reader_is_a_plugin_error(tmp_path: Path) -> None:
    class Wrong:
        @staticmethod
        @hookimpl
        def budcore_register_trace_readers() -> dict[str, Any]:
            return {"wrong": lambda path, options: iter(())}

    registry = PluginRegistry()
    registry.register(Wrong, origin="wrong 0.1")
    spec = parse_trace_spec({"format": "budcore", "path": "x.csv"})
    with pytest.raises(PluginError, match=r"trace_reader 'wrong' \(wrong 0.1\) returned tuple_iterator"):
        open_trace(spec.model_copy(update={"format": "wrong"}), registry=registry)


# A third-party policy ------------------------------------------------------------------------------
@pytest.mark.usefixtures("registry")
def test_a_plugin_policy_is_a_compare_preset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    variant = parse_policy("cost-aware")
    assert variant.policy == {"fair_sharing": True, "preemption_mode": "cost"}
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SMALL)
    applied = apply_policy(load_scenario(scenario).scenario, variant)
    assert (applied.policy.fair_sharing, applied.policy.preemption_mode) == (True, "cost")

    out = tmp_path / "out"
    argv = ["compare", str(scenario), "-p", "fifo", "-p", "cost-aware", "--workers", "1"]
    assert main([*argv, "--format", "json", "--out", str(out)]) == 0
    assert "cost-aware" in capsys.readouterr().out


@pytest.mark.usefixtures("registry")
def test_policy_mistakes_name_the_plugin_or_list_the_presets() -> None:
    with pytest.raises(PluginError, match=r"policy 'broken' \(thirdparty 1.0\) returned list"):
        parse_policy("broken")
    with pytest.raises(ValidationError) as info:
        parse_policy("bogus")
    presets = "broken, cost-aware, deadline-aware, edf, fair, fifo, gavel, las, sjf, srtf, strict-fifo"
    assert f"expected a preset ({presets})" in info.value.message


# A third-party pricing source --------------------------------------------------------------------
def _with_price_book(tmp_path: Path, name: str) -> Path:
    for file in ("scenario.yaml", "nodes.yaml"):
        shutil.copy(NODES_DUMP / file, tmp_path / file)
    path = tmp_path / "scenario.yaml"
    text = path.read_text()
    assert "price_book: default" in text
    path.write_text(text.replace("price_book: default", f"price_book: {name}"))
    return path


@pytest.mark.usefixtures("registry")
def test_a_scenario_names_a_plugin_pricing_source(tmp_path: Path) -> None:
    default = load_scenario(_with_price_book(tmp_path, "default")).prices()
    flat = load_scenario(_with_price_book(tmp_path, "flat")).prices()
    assert default["h100"] == Decimal("5.00")  # from the built-in book, through the registry
    assert (flat["h100"], flat["a100"]) == (Decimal("1.00"), Decimal("0.50"))
    assert flat["l4"] == default["l4"]  # the scenario's explicit price still wins


@pytest.mark.usefixtures("registry")
def test_a_pricing_source_that_is_no_price_book_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        PluginError, match=r"pricing_source 'not-a-book' \(thirdparty 1.0\).*not a budcore PriceBook"
    ):
        load_scenario(_with_price_book(tmp_path, "not-a-book")).prices()


def test_admission_ledgers_register_through_their_hook() -> None:
    """The in-memory ledger is built by name through the registry; PostgreSQL's is listed."""
    from budcore_adapters.inmemory import InMemoryAdmissionLedger

    from budcore.ports import AdmissionLedger

    registry = default_registry()
    names = {r.name for r in registry.registrations("admission_ledger")}
    assert {"inmemory", "postgres"} <= names
    ledger = registry.admission_ledger("inmemory")
    assert isinstance(ledger, InMemoryAdmissionLedger)
    assert isinstance(ledger, AdmissionLedger)
