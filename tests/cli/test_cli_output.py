"""What the CLI prints of user input is printed verbatim: rich markup and emoji codes stay text.

A user's ``[red]`` in an option, a pydantic ``[type=...]`` in a message or a ``:smile:`` in a name
must reach the terminal as typed, or error messages lose the very part that says what is wrong.
Also: ``--format`` has one definition, shared by every command that takes it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.scenarios import SMALL

from budcore.cli import main
from budcore.cli.app import report_error
from budcore.cli.output import OUTPUT_FORMATS, output_format
from budcore.domain.errors import ValidationError, ValidationErrors


def test_report_error_prints_brackets_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    report_error(ValidationError("bad values '[red]1' [type=extra_forbidden] :smile:", path="--vary"))
    assert capsys.readouterr().err == "error: --vary: bad values '[red]1' [type=extra_forbidden] :smile:\n"


def test_report_error_lists_every_problem_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    report_error(ValidationErrors([ValidationError("[b]one[/b]"), ValidationError("two :smile:")]))
    assert capsys.readouterr().err == "error: 2 problem(s)\n  [b]one[/b]\n  two :smile:\n"


def test_validate_prints_names_verbatim(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SMALL.replace("name: small", "name: '[red]x[/red]'"))
    assert main(["validate", str(path)]) == 0
    assert f"ok: {path}: scenario '[red]x[/red]'" in capsys.readouterr().out


def test_hardware_parse_prints_node_names_verbatim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(
        "apiVersion: v1\nkind: List\nitems:\n- metadata:\n    name: 'n[bold]1'\n"
        "    labels: {nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3, nvidia.com/gpu.count: '8'}\n"
        "  status: {capacity: {cpu: '96', memory: 1Ti, nvidia.com/gpu: '8'}}\n"
    )
    assert main(["hardware", "parse", str(nodes)]) == 0
    assert "n[bold]1" in capsys.readouterr().out


def test_output_format_is_one_definition() -> None:
    assert OUTPUT_FORMATS == ("table", "json")
    assert [output_format(f) for f in OUTPUT_FORMATS] == ["table", "json"]
    with pytest.raises(ValidationError, match="--format: unknown format 'xml'; use table or json"):
        output_format("xml")


@pytest.mark.parametrize(
    "args",
    [
        ["plugins"],
        ["hardware", "catalog"],
        ["hardware", "parse", "nodes.yaml"],
        ["recommend", "--model-params", "7e9"],
        ["demo"],
        ["reserve", "list"],
        ["pipeline", "run", "pipeline.yaml"],
    ],
)
def test_every_table_command_rejects_unknown_formats(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Table commands take table, json or csv; the check comes before any work (no file is read)."""
    assert main([*args, "--format", "xml"]) == 2
    assert capsys.readouterr().err == "error: --format: unknown format 'xml'; use table, json or csv\n"


@pytest.mark.parametrize("args", [["validate", "x.yaml"], ["pipeline", "validate", "x.yaml"]])
def test_every_other_format_option_takes_table_or_json(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*args, "--format", "xml"]) == 2
    assert capsys.readouterr().err == "error: --format: unknown format 'xml'; use table or json\n"
