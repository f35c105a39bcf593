"""How many examples a property test runs, raised for all of them by one setting.

Every property test of budcore's suite and every property of the conformance kits declares its
usual example count through :func:`examples` (``@settings(max_examples=examples(200))``). Left
alone, that is the count it runs, so ``make test`` takes the time it always took. One setting
raises them all:

- ``BUDCORE_PROPERTY_EXAMPLES=N``: every property runs at least ``N`` examples (a count declared
  higher stays higher; the setting never lowers one, since some tests assert that a fault is found
  within their count);
- ``HYPOTHESIS_PROFILE=thorough``: the same with ``N`` = 10,000 (the suite's ``thorough``
  hypothesis profile, which also raises the properties that declare no count). An explicit
  ``BUDCORE_PROPERTY_EXAMPLES`` wins over the profile.

``BUDCORE_PROPERTY_EXAMPLES=10000 pytest tests`` (or ``HYPOTHESIS_PROFILE=thorough pytest tests``)
runs the suite at 10,000 examples per property. This module needs neither pytest nor hypothesis.
"""

from __future__ import annotations

import os

from budcore.domain.errors import ValidationError

__all__ = ["ENV", "MAX_EXAMPLES", "PROFILE_ENV", "PROFILE_EXAMPLES", "examples", "requested"]

ENV = "BUDCORE_PROPERTY_EXAMPLES"
PROFILE_ENV = "HYPOTHESIS_PROFILE"
# Profiles that ask for a floor of their own (the suite's tests/conftest.py registers them).
PROFILE_EXAMPLES = {"thorough": 10_000}
# Beyond this a run would not finish in any reasonable time: a typo, refused with a clear error.
MAX_EXAMPLES = 10_000_000


def requested() -> int | None:
    """The example count the environment asks every property for, or ``None`` (the defaults).

    Raises :class:`~budcore.domain.errors.ValidationError` naming the variable when
    ``BUDCORE_PROPERTY_EXAMPLES`` is not a whole number from 1 to :data:`MAX_EXAMPLES`.
    """
    raw = os.environ.get(ENV, "").strip()
    if raw:
        try:
            count = int(raw.replace("_", ""))
        except ValueError:
            count = 0
        if not 1 <= count <= MAX_EXAMPLES:
            raise ValidationError(
                f"{ENV}={raw[:40]!r}: expected a whole number of examples from 1 to {MAX_EXAMPLES:,}",
                path=ENV,
            )
        return count
    return PROFILE_EXAMPLES.get(os.environ.get(PROFILE_ENV, "").strip())


def examples(default: int) -> int:
    """The example count for a property whose usual count is ``default``: ``default``, or what
    the environment requests when that is more (see the module docstring)."""
    if default < 1:
        raise ValueError(f"a property needs at least one example, got {default}")
    asked = requested()
    return default if asked is None else max(default, asked)
