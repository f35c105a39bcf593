"""Python callables that ``function`` and ``transform`` steps run, registered by name.

Plugins contribute functions through the ``budcore_register_pipeline_functions`` hook (a mapping
of name to callable, like every other hook); a service may also register its own with
:meth:`FunctionRegistry.register`. A function is called as ``fn(ctx, **args)`` with a
:class:`~budcore.ports.pipeline_effects.StepContext` (its ``key`` is the attempt's idempotency
key: a function with side effects should record it, since an attempt interrupted by a crash is
re-run with the same key) and returns the step's outputs: a mapping, or any other value, which
is published as ``result``.

The built-ins (:data:`BUILTIN_FUNCTIONS`, registered by :mod:`budcore.plugins.builtin`) are small
data helpers for ``transform`` steps: ``identity``, ``parse_json``, ``pick``, ``merge``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from budcore.domain import jsontext
from budcore.domain.errors import NotFoundError, ValidationError
from budcore.ports.pipeline_effects import PipelineFunction, StepContext, StepFailure

__all__ = ["BUILTIN_FUNCTIONS", "FunctionRegistry", "as_outputs", "identity", "merge", "parse_json", "pick"]


def as_outputs(value: object) -> dict[str, Any]:
    """A function's result as step outputs: a mapping as is (string keys), anything else as ``result``."""
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    return {"result": value}


def identity(ctx: StepContext, value: Any = None, **values: Any) -> Any:
    return values if value is None else value


def parse_json(ctx: StepContext, value: str = "") -> Any:
    if len(value) > 10_000_000:
        raise StepFailure("parse_json: input larger than 10 MB")
    try:
        return jsontext.loads(value)
    except json.JSONDecodeError as exc:
        raise StepFailure(f"parse_json: not JSON ({exc.msg} at line {exc.lineno})") from None


def pick(
    ctx: StepContext, value: Mapping[str, Any] | None = None, keys: Iterable[str] = ()
) -> dict[str, Any]:
    source = value or {}
    if not isinstance(source, Mapping):
        raise StepFailure(f"pick: expected a mapping, got {type(source).__name__}")
    missing = [k for k in keys if k not in source]
    if missing:
        raise StepFailure(f"pick: missing keys {missing}")
    return {k: source[k] for k in keys}


def merge(ctx: StepContext, value: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in value:
        if not isinstance(part, Mapping):
            raise StepFailure(f"merge: expected mappings, got {type(part).__name__}")
        out.update(part)
    return out


BUILTIN_FUNCTIONS: dict[str, PipelineFunction] = {
    "identity": identity,
    "parse_json": parse_json,
    "pick": pick,
    "merge": merge,
}


class FunctionRegistry:
    """Functions by name; unknown names are an error that lists the known ones."""

    def __init__(self, functions: Mapping[str, PipelineFunction] | None = None) -> None:
        self._functions: dict[str, PipelineFunction] = dict(functions or {})

    @classmethod
    def from_plugins(cls) -> FunctionRegistry:
        """Every function the installed plugins register (the built-ins among them)."""
        from budcore.plugins import default_registry

        return cls(default_registry().pipeline_functions())

    def register(self, name: str, function: PipelineFunction) -> None:
        if not name or not callable(function):
            raise ValidationError(f"cannot register {function!r} as pipeline function {name!r}", path=name)
        self._functions[name] = function

    def names(self) -> list[str]:
        return sorted(self._functions)

    def __contains__(self, name: object) -> bool:
        return name in self._functions

    def get(self, name: str) -> PipelineFunction:
        try:
            return self._functions[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise NotFoundError("pipeline function", name, f"the registry (known: {known})") from None
