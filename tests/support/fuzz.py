"""The fuzz harness of the hostile-input suites (issue #18): a per-example time bound, and the
verdict every example must reach, "success or a clean one-line error, never a traceback or a
hang", plus hostile values and the tree edits that put them into a YAML document.

Shared by ``tests/simulator/test_hostile_input.py`` (scenarios, traces) and the Kueue YAML, node
dump and CLI flag fuzzers, so each suite asserts the same thing in the same way.
"""

from __future__ import annotations

import json
import re
import signal
import string
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from budcore.cli import main
from budcore.domain.errors import BudcoreError, ValidationErrors
from budcore.testing.examples import examples


class Hang(Exception):  # noqa: N818 - the test's failure, not an error budcore raises
    """An example took longer than its bound."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail the example with :class:`Hang` if it runs longer than ``seconds`` (wall clock)."""

    def expired(signum: int, frame: object) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def clean_or_error(action: Callable[[], object], seconds: float = 10.0) -> None:
    """``action`` succeeds or raises a one-line-per-problem BudcoreError, within ``seconds``."""
    with time_limit(seconds):
        try:
            action()
        except BudcoreError as exc:
            assert str(exc).strip(), "an error without a message"
            problems = exc.errors if isinstance(exc, ValidationErrors) else [exc]
            for problem in problems:
                assert "\n" not in str(problem).strip(), f"a problem on several lines: {problem}"


FUZZ = settings(
    max_examples=examples(150),
    deadline=None,  # the bound is time_limit's: a hang must fail, not just be slow
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)

HOSTILE_TEXT = (
    "1e308",
    "-1e308",
    "1e400",
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "1e-300",
    "9" * 40,
    "9223372036854775808",
    "2h",
    "1e308s",
    "99999Ei",
    "1Ei",
    "\x00",
    "",
    " ",
    "NaN",
    "null",
    "\ufeff1",
    "١٢",  # Arabic-Indic digits
    "1_000",
    "0x10",
    "+5",
    "'",
    '"',
)
hostile_scalars = st.one_of(
    st.sampled_from(HOSTILE_TEXT),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
)
hostile_values = st.one_of(
    hostile_scalars,
    st.lists(hostile_scalars, max_size=3),
    st.dictionaries(st.text(string.ascii_lowercase, max_size=6), hostile_scalars, max_size=2),
)


def leaf_paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path in a YAML tree (mappings by key, lists by index), leaves and inner nodes."""
    paths: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            paths += leaf_paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            paths += leaf_paths(value, (*prefix, index))
    return paths


def replaced(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        return {**data, head: replaced(data[head], rest, value)}
    copy = list(data)
    copy[head] = replaced(copy[head], rest, value)
    return copy


def run_cli(
    argv: list[str], capsys: pytest.CaptureFixture[str], seconds: float = 30.0
) -> tuple[int, str, str]:
    """Run ``argv`` in process within ``seconds``; the verdict every invocation must reach."""
    capsys.readouterr()
    with time_limit(seconds):
        code = main(argv)
    out, err = capsys.readouterr()
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in out + err, (argv, err)
    if code and not err.strip():
        # ``--format json``: the problems are in the JSON on stdout (a script reads them there).
        assert json.loads(out), f"{argv}: exit {code} with nothing on stderr and no JSON on stdout"
    elif code:
        assert _one_line_per_problem(err), (argv, err)
    return code, out, err


def _one_line_per_problem(err: str) -> bool:
    """The error is budcore's (``error: message``, or ``error: N problem(s)`` then one indented
    line per problem) or typer's error panel with its message on one line."""
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if line.startswith("error:")]
    if errors:
        first = errors[0]
        several = re.fullmatch(r"error: (\d+) problem\(s\)", lines[first].strip())
        if several:
            count = int(several.group(1))
            problems = lines[first + 1 : first + 1 + count]
            return len(problems) == count and all(p.startswith("  ") for p in problems)
        return True
    boxed = [line for line in lines if line.startswith("│")]
    return len(boxed) == 1
