"""The README's Python examples run as written (docs that rot are worse than none)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_examples() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    code = BLOCKS[index]
    namespace: dict[str, object] = {"__name__": "readme_example", "MyStore": object}
    exec(compile(code, f"README.md[python block {index}]", "exec"), namespace)
    if "scheduler.cycle" in code:
        out = capsys.readouterr().out
        assert "admitted" in out and "pending" in out


def test_make_run_is_the_simulation_and_the_readme_leads_with_both_commands() -> None:
    """`make run` is the main job (a simulation on the in-memory default), as the README says."""
    makefile = (README.parent / "Makefile").read_text(encoding="utf-8")
    run_recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "budcore simulate" in run_recipe
    head = README.read_text(encoding="utf-8")[:400]
    assert "make run" in head and "make test" in head
