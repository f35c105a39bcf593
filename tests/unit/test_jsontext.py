"""JSON text with bounded integers (budcore.domain.jsontext)."""

from __future__ import annotations

import json

import pytest

from budcore.domain import jsontext


def test_json_reads_as_json_does() -> None:
    text = '{"a": [1, -2, 3.5, 1e400, "99999"], "b": null, "c": ' + "9" * 309 + "}"
    assert jsontext.loads(text) == json.loads(text)


@pytest.mark.parametrize("literal", ["9" * 5000, "-" + "1" * 310, "1" + "0" * 100_000])
def test_an_integer_past_a_float_is_a_decode_error_at_its_line(literal: str) -> None:
    with pytest.raises(json.JSONDecodeError) as info:  # a ValueError json.loads raised bare (>4300 digits)
        jsontext.loads('{"ok": 1,\n "n": [2, ' + literal + "]}")
    assert "out of range" in info.value.msg
    assert (info.value.lineno, info.value.colno) == (2, 11)
