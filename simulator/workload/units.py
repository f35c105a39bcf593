"""Durations and quantities as a scenario author writes them.

A YAML scenario says ``interval: 30s`` or ``mean: 2h`` rather than ``7200``; a bare number is
seconds. The grammar is budcore's one duration grammar, :mod:`budcore.domain.durations`
(``parse_duration`` here is that function), which the command line's options use too. Resource
amounts use Kubernetes quantities (``"4"``, ``"500m"``, ``"32Gi"``) parsed by
:func:`budcore.domain.quantity.parse_quantity`, so the simulator and the core agree to the
milli-unit.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from budcore.domain.durations import DURATION_JSON_SCHEMA, parse_duration
from budcore.domain.errors import ValidationError
from budcore.domain.quantity import parse_quantity

__all__ = ["Duration", "parse_duration", "quantity_bytes", "quantity_milli"]


def _duration(value: Any) -> float:
    # no path of its own: pydantic's location already names the field
    return parse_duration(value, "")


# A pydantic field type: seconds as float, written as a number or a string with a unit.
Duration = Annotated[float, BeforeValidator(_duration), WithJsonSchema(DURATION_JSON_SCHEMA)]


def quantity_milli(value: Any, field: str) -> int:
    """A non-negative Kubernetes quantity in milli-units."""
    amount = parse_quantity(value, field)
    if amount < 0:
        raise ValidationError(f"must not be negative, got {value!r}", path=field)
    return amount


def quantity_bytes(value: Any, field: str) -> int:
    """A non-negative byte amount (``"32Gi"``, ``"500M"``, ``1024``), rounded up to a whole byte."""
    return -(-quantity_milli(value, field) // 1000)
