"""JSON text with bounded integers.

``json.loads`` converts every integer literal with ``int()``: past Python's 4,300-digit limit that is
a ``ValueError`` which is not a ``JSONDecodeError`` (so a reader's ``except json.JSONDecodeError``
misses it, and the user gets a traceback), and below it a few thousand digits still make a number
that overflows the first ``float()`` a check does. :func:`loads` refuses an integer of more than
:data:`MAX_INTEGER_DIGITS` digits (a float's range) before converting it, as a ``JSONDecodeError``
at the literal, so every existing handler reports it with its line and column.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_INTEGER_DIGITS", "loads"]

#: The most digits a JSON integer may have: 10^309 is past the largest float (about 1.8e308).
MAX_INTEGER_DIGITS = 309


def loads(text: str) -> Any:
    """``json.loads(text)``, with an integer of more than :data:`MAX_INTEGER_DIGITS` digits a
    ``JSONDecodeError`` (never converted)."""

    def parse_int(literal: str) -> int:
        digits = len(literal) - literal.startswith("-")
        if digits > MAX_INTEGER_DIGITS:
            # The scanner does not say where the literal is: its first occurrence is (a number
            # inside a string aside), which is all a line and column need.
            raise json.JSONDecodeError(
                f"integer of {digits:,} digits is out of range (at most {MAX_INTEGER_DIGITS})",
                text,
                max(text.find(literal), 0),
            )
        return int(literal)

    return json.loads(text, parse_int=parse_int)
