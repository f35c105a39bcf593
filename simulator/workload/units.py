"""Durations and quantities as a scenario author writes them.

A YAML scenario says ``interval: 30s`` or ``mean: 2h`` rather than ``7200``; a bare number is
seconds. The grammar is budcore's one duration grammar, :mod:`budcore.domain.durations`
(``parse_duration`` here is that function), which the command line's options use too. Resource
amounts use Kubernetes quantities (``"4"``, ``"500m"``, ``"32Gi"``) parsed by
:func:`budcore.domain.quantity.parse_quantity`, so the simulator and the core agree to the
milli-unit.

Both are bounded (:mod:`.limits`): a duration is at most 10 years, a quantity's milli-value at most
Kubernetes' int64; a larger value is an error naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from budcore.domain.durations import DURATION_JSON_SCHEMA, parse_duration
from budcore.domain.errors import ValidationError
from budcore.domain.quantity import parse_quantity

from .limits import MAX_QUANTITY_MILLI, MAX_SPAN_S, span_text

__all__ = [
    "Duration",
    "FilePath",
    "check_file_name",
    "check_quantity",
    "check_span",
    "is_file",
    "parse_duration",
    "quantity_bytes",
    "quantity_milli",
    "quantity_text",
]


def check_span(seconds: float, field: str = "") -> float:
    """``seconds`` if it is at most :data:`~.limits.MAX_SPAN_S` (10 years), else a ValidationError."""
    if seconds > MAX_SPAN_S:
        raise ValidationError(f"{seconds:g} s is more than the maximum, {span_text()}", path=field)
    return seconds


def _duration(value: Any) -> float:
    # no path of its own: pydantic's location already names the field
    return check_span(parse_duration(value, ""))


# The JSON schema of a duration, with the bound on numbers (a string's is checked on load).
_DURATION_SCHEMA: dict[str, Any] = {
    **DURATION_JSON_SCHEMA,
    "description": f"{DURATION_JSON_SCHEMA['description']}; at most {span_text()}",
    "anyOf": [
        {**branch, "maximum": MAX_SPAN_S} if branch.get("type") == "number" else branch
        for branch in DURATION_JSON_SCHEMA["anyOf"]
    ],
}

# A pydantic field type: seconds as float, written as a number or a string with a unit, at most
# 10 years (:data:`~.limits.MAX_SPAN_S`).
Duration = Annotated[float, BeforeValidator(_duration), WithJsonSchema(_DURATION_SCHEMA)]


def check_quantity(amount: int, value: Any, field: str) -> int:
    """``amount`` (milli-units of ``value``) if its milli-value fits Kubernetes' int64."""
    if amount > MAX_QUANTITY_MILLI:
        raise ValidationError(
            f"{value!r} is more than the largest quantity, whose milli-value is 2^63 - 1 "
            "(Kubernetes' int64: about 9.2e15 units)",
            path=field,
        )
    return amount


def quantity_text(milli: int) -> str:
    """A quantity of ``milli`` milli-units for a message, however large (``1e+400`` fits no float)."""
    digits = len(str(abs(milli)))
    if digits <= 300:
        return f"{milli / 1000:g}"
    return f"{'-' if milli < 0 else ''}about 1e+{digits - 4}"


def quantity_milli(value: Any, field: str) -> int:
    """A non-negative Kubernetes quantity in milli-units, at most 2^63 - 1 of them."""
    amount = parse_quantity(value, field)
    if amount < 0:
        raise ValidationError(f"must not be negative, got {value!r}", path=field)
    return check_quantity(amount, value, field)


def quantity_bytes(value: Any, field: str) -> int:
    """A non-negative byte amount (``"32Gi"``, ``"500M"``, ``1024``), rounded up to a whole byte."""
    return -(-quantity_milli(value, field) // 1000)


# Paths -----------------------------------------------------------------------------------------------
_MAX_PATH_BYTES = 4096  # PATH_MAX
_MAX_NAME_BYTES = 255  # NAME_MAX: one component


def check_file_name(value: str, field: str = "") -> str:
    """``value`` if the operating system can take it as a path (no NUL byte, not longer than
    PATH_MAX, no component longer than NAME_MAX), else a ValidationError: such a name would be a
    ``ValueError`` or ``OSError`` from the first look at the file."""
    if "\0" in value:
        raise ValidationError("a file name cannot hold a NUL byte", path=field)
    encoded = value.encode("utf-8", "surrogateescape")
    if len(encoded) > _MAX_PATH_BYTES:
        raise ValidationError(f"a path of {len(encoded)} bytes is longer than {_MAX_PATH_BYTES}", path=field)
    for part in encoded.split(b"/"):
        if len(part) > _MAX_NAME_BYTES:
            raise ValidationError(
                f"a file name of {len(part)} bytes is longer than {_MAX_NAME_BYTES}", path=field
            )
    return value


def exists(path: Path) -> bool:
    """Whether ``path`` exists; a name the system refuses does not."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def is_file(path: Path) -> bool:
    """Whether ``path`` is a regular file; a name the system refuses is not one."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


# A pydantic field type: a file name in a scenario (relative to it, or absolute).
FilePath = Annotated[str, Field(min_length=1), AfterValidator(check_file_name)]
