"""Kubernetes resource quantities, parsed exactly.

Every amount inside budcore is an ``int`` of milli-units (``"500m"`` cpu is 500, ``"8"`` GPUs is
8000, ``"64Gi"`` memory is 64 * 2**30 * 1000). Integers add and compare exactly and fast, which
matters both for quota arithmetic (no float drift: 0.1 + 0.2 of a GPU is never 0.30000000000000004)
and on the admission hot path. Like Kubernetes' ``Quantity.MilliValue()``, precision finer than a
milli-unit rounds up.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

from budcore.domain.errors import ValidationError

MILLI = 1000
#: The largest magnitude budcore computes with, in milli-units: 2^127, far past anything a cluster
#: holds (Kubernetes' ``MilliValue()`` is an int64) yet exact up to there, so Kueue's own overflow
#: cases (requests past int64, compared exactly) decide as in Kueue. Beyond it a value is a typo or
#: an attack ("1e999999", 5,000 digits): :class:`QuantityRangeError`, before any big-number work.
LIMIT_MILLI = 2**127

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
# <sign><digits>[.<digits>]<suffix>, suffix one of binarySI, decimalSI or a decimal exponent.
_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$"
)

Quantity = str | int | float | Decimal


def parse_quantity(value: Quantity, field: str = "quantity") -> int:
    """Parse a Kubernetes quantity (``100``, ``500m``, ``64Gi``, ``1.5``, ``2e3``) to milli-units.

    Floats are accepted for convenience in Python callers and go through their shortest decimal
    representation, so ``1.5`` is exactly 1500. Booleans and anything else raise a
    ``ValidationError`` naming ``field``.
    """
    if isinstance(value, bool):
        raise ValidationError(f"expected a quantity, got a boolean {value!r}", path=field)
    if isinstance(value, int):
        if abs(value) >= LIMIT_MILLI // MILLI:
            raise _out_of_range(value, field)
        return value * MILLI
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValidationError(f"expected a finite quantity, got {value!r}", path=field)
        return _to_milli(Decimal(repr(value)), field)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValidationError(f"expected a finite quantity, got {value!r}", path=field)
        return _to_milli(value, field)
    if not isinstance(value, str):
        raise ValidationError(f"expected a quantity, got {type(value).__name__} {value!r}", path=field)
    match = _QUANTITY.match(value.strip())
    if match is None:
        raise ValidationError(
            f"invalid quantity {value!r}: expected a number with an optional suffix "
            "(m, k, M, G, T, Ki, Mi, Gi, Ti, e.g. '500m', '64Gi', '8')",
            path=field,
        )
    try:
        number = Decimal(match.group("num"))
    except InvalidOperation as exc:  # pragma: no cover - the regex already guarantees a number
        raise ValidationError(f"invalid quantity {value!r}", path=field) from exc
    suffix = match.group("suffix") or ""
    if suffix in _BINARY:
        number *= _BINARY[suffix]
    elif suffix in _DECIMAL:
        number *= _DECIMAL[suffix]
    else:
        exponent = int(suffix[1:])
        if number and exponent > 100:  # decided before Decimal, which overflows past 10^999999
            raise _out_of_range(value, field)
        # Finer than 10^-100 still rounds up to 1m; zero stays zero whatever its exponent.
        number = number.scaleb(max(exponent, -100)) if number else number
    return _to_milli(number, field, value)


def _to_milli(number: Decimal, field: str, text: Quantity | None = None) -> int:
    if abs(number) >= _LIMIT:  # compared before int(): a 5,000-digit value is never converted
        raise _out_of_range(number if text is None else text, field)
    return int((number * MILLI).to_integral_value(rounding=ROUND_CEILING))


_LIMIT = Decimal(LIMIT_MILLI) / MILLI


class QuantityRangeError(ValidationError):
    """A quantity past :data:`LIMIT_MILLI` (loaders with tighter bounds re-word it, naming theirs)."""


def _out_of_range(value: object, field: str) -> QuantityRangeError:
    shown = str(value)
    shown = shown if len(shown) <= 40 else f"{shown[:20]}...({len(shown)} characters)"
    return QuantityRangeError(f"quantity {shown} is out of range (at most 2^127 milli-units)", path=field)


def format_quantity(milli: int, resource: str | None = None) -> str:
    """Render milli-units in Kubernetes notation that ``parse_quantity`` reads back exactly.

    Whole byte amounts of memory-like resources use the largest exact binary suffix (``64Gi``);
    whole numbers print bare (``8``); the rest use the milli suffix (``500m``).
    """
    if milli % MILLI:
        return f"{milli}m"
    whole = milli // MILLI
    if resource is not None and _is_bytes(resource) and whole:
        for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
            factor = _BINARY[suffix]
            if whole % factor == 0:
                return f"{whole // factor}{suffix}"
    return str(whole)


def human_amount(milli: int) -> str:
    """Milli-units as a plain number for messages (``8``, ``0.5``)."""
    if milli % MILLI == 0:
        return str(milli // MILLI)
    return str(Decimal(milli) / MILLI)


def _is_bytes(resource: str) -> bool:
    return resource in ("memory", "ephemeral-storage", "storage") or resource.endswith(("memory", "-storage"))
