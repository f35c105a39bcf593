"""Durations and quantities as a scenario author writes them.

A YAML scenario says ``interval: 30s`` or ``mean: 2h`` rather than ``7200``; a bare number is
seconds. Resource amounts use Kubernetes quantities (``"4"``, ``"500m"``, ``"32Gi"``) parsed by
:func:`budcore.domain.quantity.parse_quantity`, so the simulator and the core agree to the
milli-unit.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from budcore.domain.errors import ValidationError
from budcore.domain.quantity import parse_quantity

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|min|s|m|h|d|w)")


def parse_duration(value: Any, field: str = "duration") -> float:
    """Seconds from a number (seconds) or a string such as ``"90s"``, ``"30m"``, ``"1h30m"``, ``"2d"``.

    Negative, infinite and NaN values are rejected; the error names ``field``.
    """
    if isinstance(value, bool):
        raise ValidationError(f"expected a duration, got a boolean {value!r}", path=field)
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            pos = 0
            seconds = 0.0
            for match in _PART.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
                pos = match.end()
            if pos != len(text) or not text:
                raise ValidationError(
                    f"invalid duration {value!r}: use seconds or a number with a unit "
                    "(ms, s, m, h, d, w), e.g. '90s', '30m', '1h30m'",
                    path=field,
                ) from None
    else:
        raise ValidationError(f"expected a duration, got {type(value).__name__} {value!r}", path=field)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValidationError(f"duration must be a finite, non-negative number, got {value!r}", path=field)
    return seconds


def _duration(value: Any) -> float:
    # no path of its own: pydantic's location already names the field
    return parse_duration(value, "")


_DURATION_SCHEMA = {
    "description": "seconds, or a number with a unit (ms, s, m, h, d, w), e.g. '90s', '30m', '1h30m'",
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*((\d+(\.\d*)?|\.\d+)\s*(ms|min|s|m|h|d|w)?\s*)+$"},
    ],
}

# A pydantic field type: seconds as float, written as a number or a string with a unit.
Duration = Annotated[float, BeforeValidator(_duration), WithJsonSchema(_DURATION_SCHEMA)]


def quantity_milli(value: Any, field: str) -> int:
    """A non-negative Kubernetes quantity in milli-units."""
    amount = parse_quantity(value, field)
    if amount < 0:
        raise ValidationError(f"must not be negative, got {value!r}", path=field)
    return amount


def quantity_bytes(value: Any, field: str) -> int:
    """A non-negative byte amount (``"32Gi"``, ``"500M"``, ``1024``), rounded up to a whole byte."""
    return -(-quantity_milli(value, field) // 1000)
