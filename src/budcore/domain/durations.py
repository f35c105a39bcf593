"""Durations as people write them: ``90``, ``"90s"``, ``"30m"``, ``"1h30m"``, ``"2d"``.

One grammar for every place budcore reads a duration (scenario files, ``--slo``, ``--deadline``,
policy overrides), so ``1h30m`` means the same everywhere. :func:`parse_duration` accepts:

- a number (``int`` or ``float``, not ``bool``): seconds, e.g. ``90``, ``1.5``;
- a ``datetime.timedelta``;
- a string holding a bare decimal number: seconds, e.g. ``"45"``, ``"1.5"``, ``".5"``, ``"1e3"``;
- a string of one or more ``<number><unit>`` parts, added up, e.g. ``"90s"``, ``"1h30m"``,
  ``"1.5h"``, ``"2d 12h"``, ``"250ms"``. A number is ``12``, ``1.5``, ``1.`` or ``.5``; the units
  are ``ms`` (milliseconds), ``s`` (seconds), ``m`` or ``min`` (minutes), ``h`` (hours), ``d``
  (days) and ``w`` (weeks, 7 days), in any letter case (``2H`` is ``2h``; ``m`` is always
  minutes, never months). Whitespace around numbers and units is ignored (``"1h 30m"``,
  ``" 2 d "``), not inside a number (``"1 0s"`` is an error).

It rejects, with a :class:`~budcore.domain.errors.ValidationError` whose ``path`` is the caller's
field or option: any other text (``"1x"``, ``"h"``, ``"1h30"``, ``""``), a negative value, an
infinite or NaN value, booleans and other types, and, with ``positive=True`` (a deadline), zero.

The result is seconds as a ``float``; :func:`parse_timedelta` returns a ``timedelta`` instead.
:data:`DURATION_JSON_SCHEMA` describes the same forms for JSON schemas of files holding durations.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any

from budcore.domain.errors import ValidationError

UNIT_SECONDS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_UNIT = r"(?:ms|min|s|m|h|d|w)"
_BARE = re.compile(rf"\s*\+?{_NUMBER}(?:[eE][+-]?\d+)?\s*")
_PARTS = re.compile(rf"\s*(?:{_NUMBER}\s*{_UNIT}\s*)+", re.IGNORECASE)
_PART = re.compile(rf"({_NUMBER})\s*({_UNIT})", re.IGNORECASE)

FORMS = "seconds or numbers with a unit (ms, s, m or min, h, d, w), e.g. '90', '90s', '30m', '1h30m', '2d'"


def _ci(unit: str) -> str:
    """``ms`` → ``[mM][sS]``: JSON schema patterns have no case-insensitive flag."""
    return "".join(f"[{c.lower()}{c.upper()}]" for c in unit)


_SCHEMA_UNIT = "|".join(_ci(u) for u in ("ms", "min", "s", "m", "h", "d", "w"))
DURATION_JSON_SCHEMA: dict[str, Any] = {
    "description": FORMS,
    "anyOf": [
        {"type": "number", "minimum": 0},
        {
            "type": "string",
            "pattern": rf"^\s*(\+?{_NUMBER}([eE][+-]?\d+)?|({_NUMBER}\s*({_SCHEMA_UNIT})\s*)+)\s*$",
        },
    ],
}


def parse_duration(value: Any, field: str = "duration", *, positive: bool = False) -> float:
    """Seconds from ``value`` in any of the forms of the module docstring.

    ``field`` is the path the error names (a field such as ``runtime.mean``, an option such as
    ``--deadline``; ``""`` when the caller adds its own location, as pydantic does). With
    ``positive`` a zero duration is an error too.
    """
    if isinstance(value, bool):
        raise ValidationError(f"expected a duration ({FORMS}), got a boolean {value!r}", path=field)
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value, field)
    else:
        raise ValidationError(
            f"expected a duration ({FORMS}), got {type(value).__name__} {value!r}", path=field
        )
    if not math.isfinite(seconds):
        raise ValidationError(f"invalid duration {value!r}: must be finite", path=field)
    if seconds < 0:
        raise ValidationError(f"invalid duration {value!r}: must not be negative", path=field)
    if positive and seconds == 0:
        raise ValidationError(f"invalid duration {value!r}: must be positive", path=field)
    return seconds


def parse_timedelta(value: Any, field: str = "duration", *, positive: bool = False) -> timedelta:
    """:func:`parse_duration` as a ``timedelta``."""
    return timedelta(seconds=parse_duration(value, field, positive=positive))


def _parse_text(value: str, field: str) -> float:
    if _BARE.fullmatch(value):
        return float(value)
    if _PARTS.fullmatch(value):
        return sum(float(number) * UNIT_SECONDS[unit.lower()] for number, unit in _PART.findall(value))
    unsigned = value.strip().removeprefix("-")
    if unsigned != value.strip() and (_BARE.fullmatch(unsigned) or _PARTS.fullmatch(unsigned)):
        raise ValidationError(f"invalid duration {value!r}: must not be negative", path=field)
    raise ValidationError(f"invalid duration {value!r}: use {FORMS}", path=field)
