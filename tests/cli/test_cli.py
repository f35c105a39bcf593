"""The ``budcore`` command line end to end (in process, through ``main``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from budcore import __version__
from budcore.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"budcore {__version__}"


def test_plugins_lists_inmemory_with_origin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {
        "kind": "job_store",
        "name": "inmemory",
        "origin": f"budcore {__version__} (entry point inmemory)",
    } in rows


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_demo_runs_every_job_to_completion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "'completed': 30" in out


def test_console_script_is_installed() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "budcore.cli", "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert __version__ in done.stdout
