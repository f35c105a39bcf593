"""Accelerator sets: a job that accepts any of several accelerator types.

A trace pod may say ``gpu_spec: V100M16|V100M32`` ("either V100 will do"), and a user may ask the
same. Kueue expresses this as one ClusterQueue whose resource group lists a flavor per model: the
flavor assigner tries the flavors in the ClusterQueue's order and takes the first that fits. So a
set is a *filter*, never an order: which accepted type a job gets is decided by the ClusterQueue's
flavor order, exactly as for a job that asks for no type at all; the set only hides the flavors
that provide none of its types.

The written forms are ``"A|B"`` (one string: what scenario rows, trace columns and Kueue
annotations can hold) and a list (``[A, B]``); both parse to the same members, in the order
given, duplicates dropped. A set of one member is that single type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator

SEPARATOR = "|"


def parse_accelerators(value: object) -> tuple[str, ...]:
    """The members of an accelerator set written as ``"A|B"``, a list of names, or None.

    Raises ``ValueError`` (one line, naming what is wrong) for an empty member (``"A||B"``,
    ``""``), a member that is not a string, or NUL characters: a request that names no type
    must say None, not an empty string, so a typo never silently widens a job to every flavor.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        parts: Iterable[object] = value.split(SEPARATOR)
    elif isinstance(value, list | tuple):
        parts = [p for item in value for p in (item.split(SEPARATOR) if isinstance(item, str) else [item])]
    else:
        raise ValueError(f"an accelerator type is a string or a list of strings, got {type(value).__name__}")
    members: dict[str, None] = {}
    for part in parts:
        if not isinstance(part, str):
            raise ValueError(f"an accelerator type is a string, got {type(part).__name__}")
        name = part.strip()
        if not name:
            raise ValueError(f"empty accelerator type in {value!r}")
        if "\x00" in name:
            raise ValueError("an accelerator type must not contain NUL characters")
        members[name] = None
    return tuple(members)


def format_accelerators(members: Iterable[str]) -> str:
    """The one-string form of a set (``"A|B"``): what a CSV cell or an annotation holds."""
    return SEPARATOR.join(members)


def canonical_accelerators(value: object) -> str | None:
    """``value`` (``"A | B"``, a list, None) in the one-string form (``"A|B"``), None for no type;
    ``ValueError`` as :func:`parse_accelerators`. What a scenario field or a trace cell stores."""
    members = parse_accelerators(value)
    return format_accelerators(members) if members else None


def _canonical_or_same(value: object) -> object:
    """A ``BeforeValidator``: a list or a spaced string becomes ``"A|B"``; None stays None."""
    return value if value is None else canonical_accelerators(value)


# A scenario or mapping field holding an accelerator type or a set (``A|B`` or a list).
AcceleratorText = Annotated[str, BeforeValidator(_canonical_or_same)]


def one_form(data: Any) -> Any:
    """A request's fields (``ResourceRequest``'s ``before`` validator) with its accelerators in one
    form: a set of one as ``accelerator_type``, a set of several as ``accelerator_types`` (the
    other field None / empty, and left out of a dump), so a document written before sets existed
    reads and writes as it did. A set's names are stripped; an empty one, or both fields, is an error."""
    if not isinstance(data, Mapping):
        return data
    single, several = data.get("accelerator_type"), data.get("accelerator_types")
    # A plain name (or None) is kept as it is; "" too, as before sets existed (it matches nothing).
    plain = single is None or (
        isinstance(single, str) and SEPARATOR not in single and single == single.strip()
    )
    if plain and not several:
        return data  # the common case, unchanged
    if single is not None and several:
        raise ValueError("give accelerator_type or accelerator_types, not both")
    members = parse_accelerators(single if single is not None else several)
    return {
        **data,
        "accelerator_type": members[0] if len(members) == 1 else None,
        "accelerator_types": members if len(members) > 1 else (),
    }
