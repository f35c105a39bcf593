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
        number = number.scaleb(int(suffix[1:]))
    return _to_milli(number, field)


def _to_milli(number: Decimal, field: str) -> int:
    try:
        return int((number * MILLI).to_integral_value(rounding=ROUND_CEILING))
    except (InvalidOperation, OverflowError) as exc:
        raise ValidationError(f"quantity {number} is out of range", path=field) from exc


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
