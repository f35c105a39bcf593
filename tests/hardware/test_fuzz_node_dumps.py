"""Fuzzing node dumps (issue #18): a mutated ``kubectl get nodes -o yaml`` dump through the
parser (:func:`budcore.hardware.labels.parse_nodes_yaml`), ``budcore hardware parse`` and the
``nodes-dump`` scenario, which simulates an hour on the nodes it read.

Each example puts hostile values (and values shaped like the labels and quantities a dump holds:
``"1e308"``, ``"99999Ei"``, ``"-8"``, ``"1.5"``) at random places of the built-in dump, or junk
bytes into its text. Whatever comes out, every step ends within its bound with success or a
one-line-per-problem error, never a traceback or a hang.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from budcore_simulator.build import build_simulation
from budcore_simulator.cli import default_scenario_path
from budcore_simulator.scenario import load_scenario
from hypothesis import given
from hypothesis import strategies as st
from support.fuzz import FUZZ, clean_or_error, hostile_values, leaf_paths, replaced, run_cli

from budcore.hardware.labels import parse_nodes_yaml

SCENARIO_DIR = Path(default_scenario_path()).parent.parent / "nodes-dump"
DUMP = (SCENARIO_DIR / "nodes.yaml").read_text()
node_values = st.one_of(
    hostile_values,
    st.sampled_from(
        ["1e308", "99999Ei", "-8", "1.5", "8", "0", "1Ki", "300", "NVIDIA-H100-80GB-HBM3", "MI300X"]
    ),
    st.sampled_from([{}, [], {"nvidia.com/gpu": "1e308"}, {"amd.com/gpu": "8"}, {"habana.ai/gaudi": "8"}]),
)


def _copy_scenario(tmp_path: Path) -> Path:
    """The nodes-dump scenario beside the dump under test, shortened to an hour of simulation."""
    folder = tmp_path / "nodes-dump"
    shutil.copytree(SCENARIO_DIR, folder, dirs_exist_ok=True)
    path = folder / "scenario.yaml"
    text = path.read_text()
    assert "horizon: 8h" in text
    path.write_text(text.replace("horizon: 8h", "horizon: 1h"))
    return folder


def exercise(scenario: Path) -> None:
    """The scenario reads the dump itself (bytes, encodings and all), then runs an hour on it."""
    build_simulation(load_scenario(scenario)).run()


def _check(tmp_path: Path, capsys: pytest.CaptureFixture[str], write: Any) -> None:
    folder = _copy_scenario(tmp_path)
    dump = folder / "nodes.yaml"
    write(dump)
    run_cli(["hardware", "parse", str(dump)], capsys)
    clean_or_error(lambda: exercise(folder / "scenario.yaml"), seconds=30.0)


def test_the_dump_parses_and_its_scenario_runs(tmp_path: Path) -> None:
    folder = _copy_scenario(tmp_path)
    exercise(folder / "scenario.yaml")
    assert len(parse_nodes_yaml(DUMP).nodes) == 6


@FUZZ
@given(
    edits=st.lists(st.tuples(st.integers(min_value=0), node_values), min_size=1, max_size=3),
)
def test_fuzz_node_dump_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edits: list[tuple[int, Any]]
) -> None:
    data = yaml.safe_load(DUMP)
    for index, value in edits:
        paths = leaf_paths(data)
        data = replaced(data, paths[index % len(paths)], value)
    try:
        text = yaml.safe_dump(data, allow_unicode=True)
    except yaml.YAMLError:
        return
    _check(tmp_path, capsys, lambda dump: dump.write_text(text, encoding="utf-8"))


@FUZZ
@given(
    position=st.integers(min_value=0),
    junk=st.binary(min_size=1, max_size=8)
    | st.sampled_from([b"\xef\xbb\xbf", b"\x00", b"{", b"&a", b"*a", b"---\n", b"\t", b"- "]),
)
def test_fuzz_node_dump_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], position: int, junk: bytes
) -> None:
    raw = DUMP.encode()
    at = position % (len(raw) + 1)
    _check(tmp_path, capsys, lambda dump: dump.write_bytes(raw[:at] + junk + raw[at:]))


# What the fuzzing found -------------------------------------------------------------------------
def test_a_dump_that_is_not_utf8_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``budcore hardware parse`` on a dump with a Latin-1 byte raised UnicodeDecodeError."""
    dump = tmp_path / "nodes.yaml"
    dump.write_bytes(b"\x80" + DUMP.encode())
    code, _, err = run_cli(["hardware", "parse", str(dump)], capsys)
    assert code == 2
    assert f"{dump} is not UTF-8 text: byte 0x80 at offset 0" in err
