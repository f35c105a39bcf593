"""Turning pydantic's errors into budcore's, with field paths and file locations.

pydantic reports ``loc`` tuples; budcore reports ``spec.podSets[0].count`` style paths plus the
file and line when the input came from YAML, so a user can jump straight to the mistake.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pydantic

from budcore.domain.errors import ValidationError, ValidationErrors

M = TypeVar("M", bound=pydantic.BaseModel)

LineLookup = Callable[[str], int | None]


def format_loc(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """``("pod_sets", 0, "count")`` → ``pod_sets[0].count``."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def convert_pydantic_error(
    exc: pydantic.ValidationError,
    *,
    prefix: str = "",
    source: str | None = None,
    line_of: LineLookup | None = None,
) -> ValidationErrors:
    errors: list[ValidationError] = []
    for err in exc.errors(include_url=False):
        path = format_loc(tuple(err.get("loc", ())), prefix)
        message = str(err.get("msg", "invalid value"))
        ctx_error = err.get("ctx", {}).get("error") if err.get("ctx") else None
        if isinstance(ctx_error, ValidationError):
            message = ctx_error.message
            if ctx_error.path and ctx_error.path not in path:
                path = f"{path}.{ctx_error.path}" if path else ctx_error.path
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if err.get("type") == "extra_forbidden":
            message = "unknown field"
        line = line_of(path) if line_of else None
        errors.append(ValidationError(message, path=path, source=source, line=line))
    return ValidationErrors(errors)


def validate_model(
    model: type[M],
    data: Mapping[str, Any] | Any,
    *,
    prefix: str = "",
    source: str | None = None,
    line_of: LineLookup | None = None,
) -> M:
    """``model.model_validate(data)`` raising budcore's ``ValidationErrors`` instead of pydantic's."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise convert_pydantic_error(exc, prefix=prefix, source=source, line_of=line_of) from None
    except ValidationError as exc:
        path = f"{prefix}.{exc.path}" if prefix and exc.path else (exc.path or prefix)
        raise ValidationError(
            exc.message, path=path, source=source, line=line_of(path) if line_of else None
        ) from None
