"""budcore's one duration grammar (``budcore.domain.durations``) and the two places that use it.

The scenario files (``budcore_simulator.workload.units.parse_duration``, ``Duration`` fields) and
the command line (``budcore recommend --deadline``, ``--slo``) accept the same forms.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from budcore_simulator.workload import units

from budcore.cli import recommend
from budcore.domain.durations import DURATION_JSON_SCHEMA, parse_duration, parse_timedelta
from budcore.domain.errors import ValidationError

GOOD: list[tuple[Any, float]] = [
    # numbers are seconds
    (0, 0.0),
    (90, 90.0),
    (1.5, 1.5),
    (timedelta(minutes=2), 120.0),
    # a bare number in a string is seconds
    ("45", 45.0),
    ("1.5", 1.5),
    (".5", 0.5),
    ("1.", 1.0),
    ("+5", 5.0),
    ("1e3", 1000.0),
    (" 45 ", 45.0),
    # numbers with units, added up
    ("250ms", 0.25),
    ("90s", 90.0),
    ("30m", 1800.0),
    ("1min", 60.0),
    ("6h", 21600.0),
    ("1.5h", 5400.0),
    (".5h", 1800.0),
    ("2d", 172800.0),
    ("1w", 604800.0),
    ("1h30m", 5400.0),
    ("1h 30m", 5400.0),
    ("1 h 30 m", 5400.0),
    (" 2d12h ", 216000.0),
    ("1m30s", 90.0),
    ("1min30s", 90.0),
    ("30m1h", 5400.0),
    ("0s", 0.0),
    # units in any letter case; m is minutes
    ("2H", 7200.0),
    ("30M", 1800.0),
    ("5MS", 0.005),
    ("1Min", 60.0),
]

BAD: list[tuple[Any, str]] = [
    ("", "invalid duration '': use seconds or numbers with a unit"),
    ("  ", "invalid duration '  ': use seconds"),
    ("1x", "invalid duration '1x': use seconds"),
    ("h", "invalid duration 'h': use seconds"),
    ("1h30", "invalid duration '1h30': use seconds"),
    ("1 0s", "invalid duration '1 0s': use seconds"),
    ("1h-5m", "invalid duration '1h-5m': use seconds"),
    ("2 mins", "invalid duration '2 mins': use seconds"),
    ("1y", "invalid duration '1y': use seconds"),
    ("soon", "invalid duration 'soon': use seconds"),
    ("inf", "invalid duration 'inf': use seconds"),
    ("nan", "invalid duration 'nan': use seconds"),
    ("-5", "invalid duration '-5': must not be negative"),
    ("-5m", "invalid duration '-5m': must not be negative"),
    (-1, "invalid duration -1: must not be negative"),
    (timedelta(seconds=-1), "must not be negative"),
    (float("inf"), "invalid duration inf: must be finite"),
    (float("nan"), "invalid duration nan: must be finite"),
    (True, "expected a duration (seconds or numbers with a unit"),
    (None, "got NoneType None"),
    ([1], "got list [1]"),
]


@pytest.mark.parametrize(("value", "seconds"), GOOD)
def test_accepted_forms(value: Any, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)
    assert parse_timedelta(value) == timedelta(seconds=seconds)


@pytest.mark.parametrize(("value", "message"), BAD)
def test_rejected_forms_name_the_field_and_say_why(value: Any, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_duration(value, "runtime.mean")
    assert info.value.path == "runtime.mean"
    assert message in info.value.message, info.value.message


@pytest.mark.parametrize("value", [0, "0", "0s", "0h", timedelta(0)])
def test_positive_refuses_zero(value: Any) -> None:
    assert parse_duration(value) == 0
    with pytest.raises(ValidationError, match="must be positive") as info:
        parse_duration(value, "--deadline", positive=True)
    assert info.value.path == "--deadline"


@pytest.mark.parametrize(("value", "seconds"), [g for g in GOOD if isinstance(g[0], str)])
def test_the_json_schema_pattern_accepts_every_accepted_string(value: str, seconds: float) -> None:
    pattern = re.compile(DURATION_JSON_SCHEMA["anyOf"][1]["pattern"])
    assert pattern.fullmatch(value), value


@pytest.mark.parametrize(
    "value", [v for v, message in BAD if isinstance(v, str) and "negative" not in message]
)
def test_the_json_schema_pattern_refuses_what_the_parser_refuses(value: str) -> None:
    pattern = re.compile(DURATION_JSON_SCHEMA["anyOf"][1]["pattern"])
    assert not pattern.fullmatch(value), value


# The two call sites --------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "seconds"), [g for g in GOOD if isinstance(g[0], str)])
def test_scenario_files_and_the_command_line_agree(value: str, seconds: float) -> None:
    assert units.parse_duration(value) == pytest.approx(seconds)
    if seconds > 0:
        assert recommend.parse_duration(value).total_seconds() == pytest.approx(seconds)
    else:
        with pytest.raises(ValidationError, match="must be positive"):
            recommend.parse_duration(value)


def test_the_command_line_names_its_option() -> None:
    with pytest.raises(ValidationError) as info:
        recommend.parse_duration("soon")
    assert info.value.path == "--deadline"
    assert "invalid duration 'soon'" in info.value.message
    with pytest.raises(ValidationError) as info:
        recommend.parse_duration("-1h", "--window")
    assert (info.value.path, info.value.message) == (
        "--window",
        "invalid duration '-1h': must not be negative",
    )
