"""One setting raises every property's example count (budcore.testing.examples), and every count
in the suite goes through it, so a new property cannot silently stay pinned at its own number."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from budcore.domain.errors import ValidationError
from budcore.testing.conformance import kit_settings
from budcore.testing.examples import ENV, MAX_EXAMPLES, PROFILE_ENV, examples, requested

ROOT = Path(__file__).resolve().parents[2]
SCANNED = [
    *sorted((ROOT / "tests").rglob("*.py")),
    *sorted((ROOT / "src" / "budcore" / "testing").rglob("*.py")),
]
HELPERS = {"examples", "property_examples"}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    return monkeypatch


def test_unset_the_declared_counts_stand(env: pytest.MonkeyPatch) -> None:
    assert requested() is None
    assert [examples(n) for n in (1, 60, 200, 1000)] == [1, 60, 200, 1000]
    env.setenv(PROFILE_ENV, "ci")
    assert examples(60) == 60
    env.setenv(PROFILE_ENV, "dev")  # dev shortens the tests that declare nothing, not these
    assert examples(60) == 60


def test_the_variable_raises_every_count_and_never_lowers_one(env: pytest.MonkeyPatch) -> None:
    env.setenv(ENV, "10000")
    assert [examples(n) for n in (60, 200, 1000, 20_000)] == [10_000, 10_000, 10_000, 20_000]
    env.setenv(ENV, "10_000")
    assert examples(60) == 10_000
    env.setenv(ENV, "5")
    assert examples(60) == 60


def test_the_thorough_profile_means_ten_thousand_unless_the_variable_says(env: pytest.MonkeyPatch) -> None:
    env.setenv(PROFILE_ENV, "thorough")
    assert examples(60) == examples(1000) == 10_000
    env.setenv(ENV, "20000")
    assert examples(60) == 20_000


@pytest.mark.parametrize("raw", ["lots", "0", "-5", "1e4", "2.5", str(MAX_EXAMPLES + 1)])
def test_a_bad_value_is_one_clear_error_naming_the_variable(env: pytest.MonkeyPatch, raw: str) -> None:
    env.setenv(ENV, raw)
    with pytest.raises(ValidationError) as info:
        examples(60)
    assert info.value.path == ENV and "expected a whole number of examples" in info.value.message
    assert "\n" not in str(info.value)


def test_the_conformance_kits_are_raised_too(env: pytest.MonkeyPatch) -> None:
    assert kit_settings(30).max_examples == 30
    env.setenv(ENV, "400")
    assert kit_settings(30).max_examples == 400
    assert kit_settings(None).max_examples == max(400, settings().max_examples)


def _examples_names(tree: ast.Module) -> set[str]:
    """Module-level names bound to ``examples(...)`` (``EXAMPLES = examples(100)``)."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and _is_helper_call(node.value):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _is_helper_call(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in HELPERS


def _imported_names(tree: ast.Module, path: Path) -> set[str]:
    """Names imported from another test module that binds them to ``examples(...)``."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            source = ROOT / "tests" / Path(*node.module.split(".")).with_suffix(".py")
            if source.is_file() and source != path:
                bound = _examples_names(ast.parse(source.read_text(encoding="utf-8")))
                names.update(a.asname or a.name for a in node.names if a.name in bound)
    return names


def test_every_example_count_in_the_suite_goes_through_the_helper() -> None:
    offenders = []
    for path in SCANNED:
        if path.name == "examples.py" and path.parent.name == "testing":
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"os\.environ(?:\.get)?\W+[\"']BUDCORE_\w*EXAMPLES", text):
            offenders.append(f"{path.relative_to(ROOT)}: reads an example-count variable itself")
        tree = ast.parse(text)
        routed = _examples_names(tree) | _imported_names(tree, path)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                if keyword.arg != "max_examples":
                    continue
                value = keyword.value
                if _is_helper_call(value) or (isinstance(value, ast.Name) and value.id in routed):
                    continue
                offenders.append(
                    f"{path.relative_to(ROOT)}:{keyword.value.lineno}: max_examples not via examples()"
                )
    assert offenders == []


def test_the_suite_runs_a_property_at_the_requested_count() -> None:
    """End to end through tests/conftest.py: the variable reaches a property that declares 60, one
    that declares nothing (the profile's count), and leaves one that declares more at its own."""
    env = {k: v for k, v in os.environ.items() if k not in (ENV, PROFILE_ENV)}
    env[ENV] = "123"
    expected = {
        "tests/hardware/test_catalog.py::test_catalog_load_dump_load_round_trip": 123,  # declares 60
        "tests/unit/test_quantity.py::test_format_round_trips": 123,  # declares nothing
        "tests/hardware/test_matching.py::test_a_match_always_satisfies_the_hard_filter": 150,
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--hypothesis-show-statistics",
            *expected,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    for test, count in expected.items():
        name = test.rsplit("::", 1)[1]
        section = result.stdout.split(name, 1)[1].split("::", 1)[0]
        assert f"settings.max_examples={count}" in section, (test, section[:1000])
