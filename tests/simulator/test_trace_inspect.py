"""``budcore trace inspect``: what a trace holds before it is simulated, and files that yield no job.

:func:`budcore_simulator.cli.register_trace` adds the ``trace`` group; these tests attach it to a
bare Typer app and call the library function behind it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from budcore_simulator.cli import TRACE_HELP, register_trace
from budcore_simulator.workload.inspect import (
    NodeListInspection,
    TraceInspection,
    inspect_path,
    inspect_trace,
)
from budcore_simulator.workload.traces import SAMPLES_DIR
from typer.testing import CliRunner

from budcore.domain.errors import BudcoreError, ValidationError

DATA = Path(__file__).parent / "data" / "openb"
PODS = DATA / "openb_pod_list_sample.csv"
NODES = DATA / "openb_node_list_gpu_node.csv"


def app() -> typer.Typer:
    cli = typer.Typer()

    @cli.callback()
    def root() -> None:
        """A root, so ``trace`` is a group as under ``budcore``."""

    register_trace(cli)
    return cli


def run(*args: str) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(app(), ["trace", "inspect", *args])
    return result.exit_code, result.output, result.exception


# The library ---------------------------------------------------------------------------------------
def test_an_openb_pod_list_is_summarised() -> None:
    found = inspect_trace(PODS, options={"fractional": "skip"})
    assert (found.format, found.guessed) == ("openb", True)
    assert (found.rows, found.jobs, found.filtered, found.skipped) == (12, 9, 3, 0)
    assert (found.first_submit_s, found.last_submit_s, found.span_s) == (0.0, 660.0, 660.0)
    assert (found.gpu_jobs, found.cpu_only_jobs, found.gang_jobs) == (9, 0, 0)
    assert found.gpus == {1: 6, 2: 1, 4: 1, 8: 1}
    assert found.accelerators["any"] == 3
    assert found.accelerators["nvidia-v100-16gb|nvidia-v100-32gb"] == 2  # a set, as asked for
    assert found.accelerators["G2"] == 1
    expected_hours = (12000 + 8 * 3600 + 295 + 94 + 3640 + 2 * 1795 + 4 * 600 + 49 + 11340) / 3600
    assert found.gpu_hours == pytest.approx(expected_hours)
    assert found.share(found.filtered) == pytest.approx(0.25)
    assert sum(found.filtered_reasons.values()) == 3
    assert not any("ACCELERATOR SET" in note for note in found.notes)  # a set is no approximation
    data = found.to_dict()
    assert data["filtered"]["share"] == 0.25
    assert data["gpus_per_job"] == {"1": 6, "2": 1, "4": 1, "8": 1}
    json.dumps(data)  # plain JSON


def test_options_change_what_is_read() -> None:
    found = inspect_trace(PODS, options={"fractional": "round-up", "include_cpu_only": True})
    assert (found.jobs, found.filtered, found.cpu_only_jobs) == (12, 0, 1)
    shared = inspect_trace(PODS)  # fractional: share, the default: shares count at their fraction
    assert (shared.jobs, shared.filtered) == (11, 1)
    skipped = inspect_trace(PODS, options={"fractional": "skip"})
    assert shared.gpu_hours == pytest.approx(skipped.gpu_hours + (0.46 * 1199 + 0.22 * 11460) / 3600)
    with pytest.raises(ValidationError, match="fractional"):
        inspect_trace(PODS, options={"fractional": "pack"})


def test_invalid_rows_are_counted_by_column_with_examples(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text(
        "job_id,submit_s,runtime_s,gpus_per_pod\na,0,60,1\nb,10,x,1\nc,20,60,-1\nd,30,60,2\ne,40,1e12,1\n"
    )
    found = inspect_trace(path, "budcore")
    assert (found.rows, found.jobs, found.skipped) == (5, 2, 3)
    assert found.skipped_fields == {"runtime_s": 2, "gpus_per_pod": 1}
    assert found.examples[0] == f"{path}:3: runtime_s: not a number: 'x'"
    assert not found.guessed


def test_every_sample_format_is_recognised_and_read() -> None:
    for name, fmt in (
        ("budcore_jobs.csv", "budcore"),
        ("helios_cluster_log.csv", "helios"),
        ("sample.swf", "swf"),
    ):
        found = inspect_trace(SAMPLES_DIR / name)
        assert (found.format, found.jobs > 0) == (fmt, True)
    pai = inspect_trace(SAMPLES_DIR / "pai_job_table.csv", task_path=SAMPLES_DIR / "pai_task_table.csv")
    assert pai.format == "pai" and pai.jobs > 0


def test_a_node_list_is_shown_as_its_pools() -> None:
    found = inspect_path(NODES)
    assert isinstance(found, NodeListInspection)
    assert (found.nodes, found.gpus) == (12, 51)
    assert found.models["G2"] == 2
    assert {p["pool"] for p in found.pools} >= {"g2", "g3", "a10", "t4-4gpu-96cpu-384gi"}
    assert len(found.notes) == 2
    assert isinstance(inspect_path(PODS), TraceInspection)


def test_a_file_of_another_format_is_an_error_naming_the_one_it_looks_like() -> None:
    with pytest.raises(ValidationError) as info:
        inspect_trace(PODS, "swf")
    assert "no job read from" in info.value.message
    assert "it looks like the openb format (format: openb), not swf" in info.value.message


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "is empty"),
        (b"\x00\x01\x02binary\n", "binary file"),
        (b"just,some\nwords,here\n", "cannot tell the format"),
        (b"\xff\xfejob_id\n", "UTF-16"),
        (b"job_id,submit_s\n\xe9t\xe9,1\n", "not UTF-8"),
    ],
)
def test_files_no_reader_can_take_are_errors(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "trace.csv"
    path.write_bytes(content)
    with pytest.raises(ValidationError, match=words):
        inspect_trace(path)


# The command ---------------------------------------------------------------------------------------
def test_the_command_prints_tables() -> None:
    code, output, error = run(str(PODS))
    assert (code, error) == (0, None)
    for words in ("openb trace (format guessed from the file)", "GPU mix", "rows not simulated, and why"):
        assert words in output
    assert "fractional GPU" in output
    assert "nvidia-v100-16gb|nvidia-v100-32gb" in output  # the GPU mix names the set


def test_the_command_prints_json() -> None:
    code, output, _ = run(str(PODS), "--format", "json", "--set", "fractional=round-up")
    assert code == 0
    data = json.loads(output)
    assert (data["format"], data["jobs"], data["rows"]) == ("openb", 11, 12)
    assert data["filtered"]["reasons"] == {"CPU-only (include_cpu_only: true keeps it)": 1}


def test_the_command_shows_a_node_list() -> None:
    code, output, _ = run(str(NODES))
    assert code == 0
    assert "an openb node list" in output and "12 nodes, 51 GPUs" in output


def test_the_command_reads_a_named_format_and_its_task_table() -> None:
    code, output, _ = run(
        str(SAMPLES_DIR / "pai_job_table.csv"),
        "--as",
        "pai",
        "--task-path",
        str(SAMPLES_DIR / "pai_task_table.csv"),
        "--format",
        "json",
    )
    assert code == 0
    assert json.loads(output)["format"] == "pai"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--as", "pai", "--task-path", str(PODS)), "looks like the openb format"),
        (("--as", "parquet"), "unknown trace format 'parquet'"),
        (("--format", "yaml"), "unknown format 'yaml'"),
        (("--set", "fractional"), "expected KEY=VALUE"),
        (("--set", "colour=blue"), "colour"),
    ],
)
def test_bad_invocations_are_budcore_errors(args: tuple[str, ...], words: str) -> None:
    code, _, error = run(str(PODS), *args)
    assert code != 0
    assert isinstance(error, BudcoreError)
    assert words in str(error)


def test_the_trace_group_lists_with_its_help_line() -> None:
    cli = typer.Typer()
    register_trace(cli)
    (group,) = cli.registered_groups
    assert (group.name, group.help) == ("trace", TRACE_HELP)
