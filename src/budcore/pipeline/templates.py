"""Safe rendering of the Jinja2 templates in pipeline step configs.

A pipeline's YAML is written by its users, and its step configs are templates:
``{{ params.model }}``, ``{{ steps['deploy-llm'].outputs.endpoint }}``, ``{{ x | default('') }}``.
Rendering them runs code the platform did not write, inside the process that schedules every
other user's work. This module keeps that code to what a template needs (read the values it was
given, transform them a little) and refuses everything else with a :class:`TemplateError` that
names the field (``steps[deploy-llm].config.spec.model_id: ...``) in one line.

What it guards against:

* **Python internals.** Templates run in Jinja's :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment`:
  no ``__class__``/``__globals__``/``mro``/``__subclasses__`` walks (checked statically when the
  template is compiled and again by the sandbox at run time, also through ``attr`` and
  ``map(attribute=...)``), no mutation of the values passed in, no ``{% include %}``/``{% import %}``/
  ``{% extends %}`` (there is no loader: templates cannot read files), and none of Jinja's default
  globals that have been used to escape sandboxes (``lipsum``, ``cycler``, ``joiner``,
  ``namespace``; ``range`` and ``dict`` are replaced by bounded versions). Methods of built-in
  values are allow-listed (``str.upper`` yes; ``str.expandtabs``, ``int.to_bytes``,
  ``dict.fromkeys`` no). Nothing reaches the environment, the network or ``os``. Attribute names
  containing ``__`` are refused even when they would only name a dict key.
* **Undefined names.** ``StrictUndefined``: a typo is an error naming the path
  (``undefined name 'params.modle'``), not an empty string deployed to a cluster. ``default``
  still works (``{{ steps['x'].outputs.url | default('') }}``).
* **Denial of service.** Every limit is in :class:`TemplateLimits`:

  - ``max_source_chars`` (64,000): longer template sources are refused before parsing;
  - ``max_output_chars`` (100,000): the rendered text is counted while it streams out of the
    template's generator and rendering stops at the limit. The same number bounds every string the
    template builds along the way (``~``, ``+``, ``*``, ``%``, ``format``, ``join``, ``replace``,
    ``center``, ``indent``, text captured by ``{% set %}`` blocks, macro bodies and ``{% filter %}``,
    counted while it is captured...) and the size of every list, tuple or dict the template builds
    (characters of its strings plus one per item, counted with sharing expanded, so ``[x, x]``
    nested forty times is refused rather than printed). Everything filters, methods and operators
    build in one render adds up to at most ten times the limit, so a template cannot fill memory
    with many values that are each small enough (``range(10000) | map('center', 99999) | list``);
  - ``max_range`` (10,000): ``range()`` and sequence repetition (``[1] * n``) give at most that many
    items; ``batch``/``slice`` counts are bounded the same way;
  - ``max_render_seconds`` (1.0): the clock is read between output chunks, at every loop iteration,
    every call (macros, methods), every filter and every intercepted operator. A single expression
    that never yields back is bounded by the other limits, not by the clock: ``*`` and ``**`` are
    intercepted (``'a' * 10**9``, ``[1] * 10**9`` and ``10 ** (10 ** 10)`` are refused before they
    run; integers stay under 14,000 bits; note that Jinja's ``**`` is left-associative, so
    ``10 ** 10 ** 10`` is ``(10 ** 10) ** 10``, a harmless 101-digit number), every string and
    container built is size-checked *before* it is allocated where the size can be known in advance
    (``replace``, ``join``, padding, format widths, ``batch``/``slice`` counts...), and the remaining
    single operations are linear in values that are already bounded. Compiling is not timed; it is
    linear in the (bounded) source, and nesting too deep for Python's recursion limit is refused.

Every failure, whatever raised it inside Jinja (syntax errors, ``SecurityError``, ``RecursionError``,
``OverflowError``, ``ZeroDivisionError``, ``TypeError``...), comes out as a :class:`TemplateError`
(a :class:`~budcore.domain.errors.ValidationError`) whose ``path`` is the caller's ``where``.

Conventions beyond Jinja's:

* ``steps.<id>`` with a dash in the id (``{{ steps.step-1.outputs.config }}``, the form the design
  documents use) means ``steps['step-1']``, not a subtraction (:func:`_rewrite_dash_ids`).
* Attribute syntax on a dict prefers the key: ``outputs.items`` is the output named ``items`` when
  there is one, not ``dict.items``.
* :meth:`Sandbox.render_value` returns the native value of a field that is exactly one
  expression (``"{{ params.replicas }}"`` gives ``3``, not ``"3"``), like Ansible; a string without
  ``{{`` or ``{%`` is data and is returned untouched (so is ``{# ... #}`` on its own).
* ``{% autoescape %}`` is refused: output is never HTML-escaped.
* A trailing newline in a template is kept.

Long because every way a template can spend memory or time is bounded here, side by side with the
others, so the bounds can be reviewed (and re-tested after a Jinja upgrade: some hooks reach into
Jinja's code generator) as one piece.
"""

from __future__ import annotations

import functools
import json
import math
import re
import threading
import time
import types
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, NoReturn

from jinja2 import Environment, StrictUndefined, Template, Undefined, UndefinedError, nodes
from jinja2 import TemplateError as JinjaTemplateError
from jinja2 import TemplateSyntaxError as JinjaSyntaxError
from jinja2.compiler import CodeGenerator, Frame
from jinja2.filters import (
    do_batch,
    do_center,
    do_format,
    do_indent,
    do_replace,
    do_tojson,
    do_wordwrap,
    make_attrgetter,
    sync_do_join,
    sync_do_slice,
    sync_do_sum,
)
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter, modifies_known_mutable
from jinja2.utils import missing, pass_context, pass_environment, pass_eval_context

from budcore.domain import jsontext
from budcore.domain.errors import ValidationError

__all__ = ["Sandbox", "TemplateError", "TemplateLimits", "is_template", "referenced_steps"]


class TemplateError(ValidationError):
    """A template that cannot be compiled or rendered safely; ``path`` is the field it came from."""


@dataclass(frozen=True)
class TemplateLimits:
    """The bounds a template renders within (see the module docstring for what each one covers)."""

    max_source_chars: int = 64_000
    max_output_chars: int = 100_000
    max_range: int = 10_000
    max_render_seconds: float = 1.0

    def __post_init__(self) -> None:
        for name in ("max_source_chars", "max_output_chars", "max_range", "max_render_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"TemplateLimits.{name} must be positive, not {getattr(self, name)!r}")


# -- constants -------------------------------------------------------------------------------------

#: Integers built with ``*`` or ``**`` stay below this many bits (about 4,200 decimal digits: Python
#: refuses to print integers of more than 4,300 digits anyway).
_MAX_INT_BITS = 14_000
#: Compiled templates kept per cache (FIFO eviction beyond it).
_CACHE_SIZE = 4096
#: All the strings and containers one render builds add up to at most this many times
#: ``max_output_chars`` characters and items (each one is also bounded on its own).
_WORK_FACTOR = 10
#: ``fromjson`` parses at most this many times ``max_output_chars`` characters.
_FROMJSON_FACTOR = 10
#: ``tojson`` indents and ``wordwrap`` wrap strings are at most this long.
_MAX_INDENT = 16
#: Longest template quoted in an error message.
_SNIPPET_CHARS = 120

#: Attribute names that lead to interpreter internals, beyond the ``__dunder__`` ones.
_INTERNAL_NAMES = frozenset(
    {
        "mro",
        "func_globals",
        "func_code",
        "func_closure",
        "func_defaults",
        "func_dict",
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "cr_frame",
        "cr_code",
        "cr_await",
        "ag_frame",
        "ag_code",
        "ag_await",
        "tb_frame",
        "tb_next",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_back",
        "f_code",
        "co_code",
        "im_func",
        "im_self",
        "im_class",
    }
)

_STR_METHODS = frozenset(
    {
        "capitalize",
        "casefold",
        "count",
        "endswith",
        "find",
        "index",
        "isalnum",
        "isalpha",
        "isascii",
        "isdecimal",
        "isdigit",
        "isidentifier",
        "islower",
        "isnumeric",
        "isprintable",
        "isspace",
        "istitle",
        "isupper",
        "lower",
        "lstrip",
        "partition",
        "removeprefix",
        "removesuffix",
        "rfind",
        "rindex",
        "rpartition",
        "rsplit",
        "rstrip",
        "split",
        "splitlines",
        "startswith",
        "strip",
        "swapcase",
        "title",
        "upper",
        # size-checked before the call:
        "replace",
        "join",
        "center",
        "ljust",
        "rjust",
        "zfill",
    }
)
_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})
_SET_METHODS = frozenset({"isdisjoint", "issubset", "issuperset"})

#: Methods a template may call on built-in values, by the value's type (first match wins).
#: A method of a type listed here that is not in its set is refused.
_METHODS_BY_TYPE: tuple[tuple[type, frozenset[str]], ...] = (
    (str, _STR_METHODS),
    (bytes, frozenset()),
    (bytearray, frozenset()),
    (memoryview, frozenset()),
    (int, frozenset({"bit_length", "bit_count", "conjugate"})),
    (float, frozenset({"is_integer", "conjugate"})),
    (complex, frozenset({"conjugate"})),
    (dict, frozenset({"get", "keys", "values", "items"})),
    (list, frozenset({"count", "index"})),
    (tuple, frozenset({"count", "index"})),
    (range, frozenset({"count", "index"})),
    (set, _SET_METHODS),
    (frozenset, _SET_METHODS),
)

#: Jinja globals removed from the environment: each has been used to escape sandboxes
#: (``lipsum.__globals__``, ``cycler.__init__.__globals__``...) or to build state (``namespace``).
_REMOVED_GLOBALS = ("lipsum", "cycler", "joiner", "namespace", "range")

#: Filters whose arguments name attributes (``attr('x')``, ``selectattr('x')``...): position of that
#: argument; any filter's ``attribute=`` keyword is checked as well.
_ATTRIBUTE_ARG = {"attr": 0, "selectattr": 0, "rejectattr": 0, "groupby": 0, "join": 1}

_FALSE_WORDS = frozenset({"false", "no", "0", ""})
_TRUE_WORDS = frozenset({"true", "yes", "1"})

_NATIVE_TYPES = (type(None), bool, int, float, str, list, tuple, dict)

#: Filter every ``{% for %}`` iterable goes through (it reads the clock at each iteration).
_LOOP_FILTER = "_budcore_loop"
#: Name the native-value template assigns its single expression to.
_RESULT = "_budcore_value"


class _Budget:
    """One render's deadline (a ``time.perf_counter()`` value) and the characters and items its
    operations have built so far, against ``limit``."""

    __slots__ = ("built", "deadline", "limit")

    def __init__(self, deadline: float, limit: float) -> None:
        self.deadline = deadline
        self.limit = limit
        self.built = 0


#: The running render's budget. Outside a render (Jinja folds constant filters while compiling)
#: there is no limit.
_BUDGET: ContextVar[_Budget] = ContextVar("budcore_template_budget")
_NO_BUDGET = _Budget(math.inf, math.inf)

_OPENING = re.compile(r"\{[{%#]")
_RAW_BLOCK = re.compile(r"\{%-?\s*raw\s*-?%\}")
_END_RAW = re.compile(r"\{%-?\s*endraw\s*-?%\}")
#: Inside a block: a string literal (left alone) or ``steps.<dashed-id>``.
_DASH_ID = re.compile(
    r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|(?<![\w.])steps\.([A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)+)""",
    re.S,
)
_PERCENT_SPEC = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[#0\- +]*(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d*))?[hlL]?(?P<conv>.)?", re.S
)
_DIGITS = re.compile(r"\d+")


# -- errors raised inside a render -----------------------------------------------------------------


class _Refused(Exception):  # noqa: N818 - internal; surfaces as TemplateError
    """A limit or rule refused something; ``message`` is the final, one-line text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _UndefinedNameError(UndefinedError):
    """:class:`UndefinedError` that keeps what was looked up, to name it in the message."""

    def __init__(self, message: str, name: Any, obj: Any, hint: str | None) -> None:
        super().__init__(message)
        self.undefined_name = name
        self.undefined_obj = obj
        self.hint = hint


class _StrictUndefined(StrictUndefined):
    """``StrictUndefined`` raising :class:`_UndefinedNameError`."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        if isinstance(self._undefined_name, Undefined):
            str(self._undefined_name)  # an undefined key (``x[missing]``): report the key itself
        raise _UndefinedNameError(
            self._undefined_message, self._undefined_name, self._undefined_obj, self._undefined_hint
        )


def _route_undefined_failures() -> None:
    # StrictUndefined binds its dunders (__str__, __iter__, __bool__...) to the *base* class's
    # failing function object, so overriding the method alone would miss them: rebind every alias.
    base = Undefined._fail_with_undefined_error  # noqa: SLF001 - the alias being replaced
    for name in dir(StrictUndefined):
        if name != "_fail_with_undefined_error" and _static_attr(StrictUndefined, name) is base:
            setattr(_StrictUndefined, name, _StrictUndefined._fail_with_undefined_error)  # noqa: SLF001


def _static_attr(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    return None


_route_undefined_failures()


# -- code generation -------------------------------------------------------------------------------


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator with the bounded helpers of :class:`_Environment` spliced in."""

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.output_buffer()")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:  # noqa: N802
        self.write("environment.bounded_text((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:  # noqa: N802
        self.write("environment.bounded_value(")
        super().visit_List(node, frame)
        self.write(")")

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:  # noqa: N802
        self.write("environment.bounded_value(")
        super().visit_Dict(node, frame)
        self.write(")")

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:  # noqa: N802
        if node.ctx != "load":
            super().visit_Tuple(node, frame)
            return
        self.write("environment.bounded_value(")
        super().visit_Tuple(node, frame)
        self.write(")")


# -- the environment -------------------------------------------------------------------------------


class _OutputBuffer(list[str]):
    """Where Jinja collects captured output (``{% set %}`` blocks, macro bodies, ``{% filter %}``,
    ``caller()``): bounded as it fills, not only when it is joined."""

    __slots__ = ("_env", "_size")

    def __init__(self, env: _Environment) -> None:
        super().__init__()
        self._env = env
        self._size = 0

    def _grow(self, size: int) -> None:
        self._size += size
        limit = self._env.limits.max_output_chars
        if self._size > limit:
            raise _Refused(f"text captured by the template exceeds {limit} characters")
        self._env.tick()

    def append(self, text: str, /) -> None:
        self._grow(len(text))
        super().append(text)

    def extend(self, texts: Iterable[str], /) -> None:
        items = texts if isinstance(texts, (tuple, list)) else list(texts)
        self._grow(sum(map(len, items)))
        super().extend(items)


def _count_text(n: int) -> str:
    return str(n) if n < 10**18 else "more than 10**18"


def _weight(value: Any, limit: int) -> int:
    """Characters of the strings in ``value`` plus one per item, counting shared parts each time they
    appear; stops as soon as the total passes ``limit``. Memory is bounded by the nesting depth."""
    total = 0
    pending: list[Iterator[Any]] = [iter((value,))]
    while pending:
        item = next(pending[-1], _NOTHING)
        if item is _NOTHING:
            pending.pop()
            continue
        if isinstance(item, str):
            total += len(item) + 1
        else:
            total += 1
            if isinstance(item, dict):
                pending.append(iter(item))
                pending.append(iter(item.values()))
            elif isinstance(item, (list, tuple, set, frozenset)):
                pending.append(iter(item))
        if total > limit:
            break
    return total


def _printed_size(value: Any) -> int:
    """An upper bound of the characters ``'%...' % value`` can print for ``value`` (width aside)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return value.bit_length() // 3 + 340  # %d digits, or %f of it
    if isinstance(value, float):
        return 340  # %f of 1e308
    return max(len(str(value)), len(repr(value)))


class _BoundedFormatter(SandboxedFormatter):
    """``str.format`` for templates: widths bounded, output counted field by field."""

    def __init__(self, env: _Environment) -> None:
        super().__init__(env)
        self._bounded_env = env
        self._produced = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        env = self._bounded_env
        env.check_widths(_DIGITS.findall(format_spec))
        env.tick()
        text = super().format_field(value, format_spec)
        self._produced += len(text)
        if self._produced > env.limits.max_output_chars:
            raise _Refused(f"formatted string exceeds the limit of {env.limits.max_output_chars} characters")
        return text


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox with the limits of one :class:`TemplateLimits` wired in."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, limits: TemplateLimits) -> None:
        super().__init__(
            undefined=_StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        self.limits = limits
        for name in _REMOVED_GLOBALS:
            self.globals.pop(name, None)
        self.globals["range"] = self._range
        self.globals["dict"] = self._dict
        self.filters.update(_bounded_filters(self))
        self.filters[_LOOP_FILTER] = pass_context(lambda _context, iterable: self.bounded_iter(iterable))
        for name, func in list(self.filters.items()):
            self.filters[name] = self._guard_filter(func)

    # -- clock and sizes

    def tick(self) -> None:
        if time.perf_counter() > _BUDGET.get(_NO_BUDGET).deadline:
            raise _Refused(
                f"template rendering exceeded the time limit of {self.limits.max_render_seconds:g} s"
            )

    def spend(self, size: int) -> None:
        """Count ``size`` characters or items built towards the render's total."""
        budget = _BUDGET.get(_NO_BUDGET)
        budget.built += size
        if budget.built > budget.limit:
            raise _Refused(
                f"template builds more than {budget.limit:.0f} characters and items in all"
                f" ({_WORK_FACTOR} x max_output_chars)"
            )

    def bound_result(self, value: Any) -> Any:
        """Every value a filter, method or operator returns: strings bounded, sizes counted."""
        if isinstance(value, str):
            self.check_text_size(len(value))
            self.spend(len(value))
        elif isinstance(value, (list, tuple, dict, set, frozenset)):
            self.spend(len(value))
        return value

    def output_buffer(self) -> _OutputBuffer:
        return _OutputBuffer(self)

    def check_text_size(self, size: int) -> None:
        if size > self.limits.max_output_chars:
            limit = self.limits.max_output_chars
            raise _Refused(f"string of {_count_text(size)} characters exceeds the limit of {limit}")

    def check_count(self, n: Any, what: str) -> None:
        if not isinstance(n, int):
            raise _Refused(f"{what} must be an integer, not {type(n).__name__}")
        if n > self.limits.max_range:
            raise _Refused(f"{what} of {_count_text(n)} exceeds the limit of {self.limits.max_range}")

    def check_widths(self, numbers: Iterable[str]) -> None:
        limit = self.limits.max_output_chars
        for digits in numbers:
            if len(digits) > 9 or int(digits) > limit:
                raise _Refused(f"format width {digits[:20]} exceeds the limit of {limit}")

    def check_weight(self, value: Any, times: int = 1) -> None:
        limit = self.limits.max_output_chars
        if times <= 0:
            return
        if _weight(value, limit // times) * times > limit:
            raise _Refused(
                f"value built by the template is larger than the limit of {limit} characters and items"
            )

    def bounded_value(self, value: Any) -> Any:
        """Every list, tuple and dict a template builds (literals, ``+``, ``*``, ``dict()``)."""
        self.check_weight(value)
        self.spend(len(value))
        return value

    def bounded_iter(self, iterable: Any) -> Iterator[Any]:
        """Every ``{% for %}`` iterable."""
        budget = _BUDGET.get(_NO_BUDGET)
        for item in iterable:
            if time.perf_counter() > budget.deadline:
                self.tick()
            yield item

    def bounded_text(self, parts: tuple[Any, ...]) -> str:
        """The ``~`` operator."""
        self.tick()
        texts = [part if isinstance(part, str) else str(part) for part in parts]
        size = sum(map(len, texts))
        self.check_text_size(size)
        self.spend(size)
        return "".join(texts)

    def concat(self, parts: Iterable[str]) -> str:
        """``environment.concat``: captured blocks, macro bodies, ``caller()``, ``self.block()``."""
        self.tick()
        items = parts if isinstance(parts, list) else list(parts)
        size = sum(map(len, items))
        self.check_text_size(size)
        self.spend(size)
        return "".join(items)

    def check_percent(self, fmt: str, values: Any) -> None:
        """``fmt % values`` (the ``%`` operator, the ``format`` filter): bounded before it runs."""
        positional: tuple[Any, ...]
        mapping: Mapping[Any, Any] | None = None
        if isinstance(values, tuple):
            positional = values
        else:
            positional = (values,)
            if isinstance(values, Mapping):
                mapping = values
        total = len(fmt)
        index = 0
        for match in _PERCENT_SPEC.finditer(fmt):
            if match.group("conv") == "%" and match.group("key") is None:
                continue
            pad = 0
            for group in ("width", "prec"):
                number = match.group(group)
                if number == "*":
                    raise _Refused("'*' widths in % formatting are not allowed in templates")
                if number:
                    self.check_widths([number])
                    pad = max(pad, int(number))
            key = match.group("key")
            if key is not None and mapping is not None:
                value = mapping.get(key)
            elif index < len(positional):
                value = positional[index]
                index += 1
            else:
                value = None
            total += pad + _printed_size(value)
            self.check_text_size(total)

    def check_replace(self, text: str, old: str, new: str, count: Any) -> None:
        occurrences = text.count(old) if old else len(text) + 1
        if isinstance(count, int) and count >= 0:
            occurrences = min(occurrences, count)
        self.check_text_size(len(text) + occurrences * max(0, len(new) - len(old)))

    def check_join(self, separator: str, items: list[Any]) -> None:
        size = len(separator) * max(0, len(items) - 1)
        for item in items:
            size += len(item) if isinstance(item, str) else len(str(item))
            self.check_text_size(size)

    # -- globals

    def _range(self, *args: int) -> range:
        self.tick()
        rng = range(*args)
        step = rng.step
        if step > 0:
            n = max(0, (rng.stop - rng.start + step - 1) // step)
        else:
            n = max(0, (rng.start - rng.stop - step - 1) // -step)
        if n > self.limits.max_range:
            raise _Refused(f"range of {_count_text(n)} items exceeds the limit of {self.limits.max_range}")
        return rng

    def _dict(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        self.tick()
        return self.bounded_value(dict(*args, **kwargs))  # type: ignore[no-any-return]

    # -- filters

    def _guard_filter(self, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)  # keeps Jinja's pass_context/pass_eval_context marker
        def guarded(*args: Any, **kwargs: Any) -> Any:
            self.tick()
            return self.bound_result(func(*args, **kwargs))

        return guarded

    # -- the sandbox's hooks

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return attr not in _INTERNAL_NAMES and super().is_safe_attribute(obj, attr, value)

    def unsafe_undefined(self, obj: Any, attribute: str) -> NoReturn:
        if modifies_known_mutable(obj, attribute):
            raise _Refused(f"template calls {attribute!r}, which modifies data: not allowed")
        raise _Refused(f"template reaches a Python internal ({attribute!r}): not allowed")

    def getattr(self, obj: Any, attribute: str) -> Any:
        # ``outputs.items`` is the output named "items" when there is one, not ``dict.items``.
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if not isinstance(value, (types.MethodType, types.BuiltinMethodType)) or value.__name__ not in (
            "format",
            "format_map",
        ):
            return None
        owner = value.__self__
        if not isinstance(owner, str):
            return None
        fmt = str(owner)
        is_format_map = value.__name__ == "format_map"

        def bounded_format(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
                kwargs = args[0]
                args = ()
            text = _BoundedFormatter(self).vformat(fmt, args, kwargs)
            return str(self.bound_result(text))

        return bounded_format

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.tick()
        if not self.is_safe_callable(obj):
            raise _Refused(f"template calls {getattr(obj, '__name__', 'a function')!r}, marked unsafe")
        owner = getattr(obj, "__self__", None)
        if owner is not None and not isinstance(owner, types.ModuleType):
            args = self._check_method_call(owner, getattr(obj, "__name__", "?"), args)
        return self.bound_result(context.call(obj, *args, **kwargs))

    def _check_method_call(self, owner: Any, name: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
        if isinstance(owner, type):
            raise _Refused(f"template calls '{owner.__name__}.{name}': not allowed")
        allowed = next((names for kind, names in _METHODS_BY_TYPE if isinstance(owner, kind)), None)
        if allowed is None:
            return args
        if name not in allowed:
            raise _Refused(f"template calls '{type(owner).__name__}.{name}': not allowed")
        if isinstance(owner, str):
            if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
                self.check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else -1)
            elif name == "join" and args:
                items = list(self.bounded_iter(args[0]))
                self.check_join(owner, items)
                args = (items, *args[1:])
            elif name in _PADDING_METHODS and args and isinstance(args[0], int):
                self.check_text_size(args[0])
        return args

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        self.tick()
        if operator == "*":
            self._check_repeat(left, right)
            self._check_repeat(right, left)
            if _is_int(left) and _is_int(right) and left.bit_length() + right.bit_length() > _MAX_INT_BITS:
                raise _Refused(f"number product exceeds {_MAX_INT_BITS} bits")
        elif operator == "**":
            if (
                _is_int(left)
                and _is_int(right)
                and right > 0
                and abs(left) > 1
                and (right > _MAX_INT_BITS or right * math.log2(abs(left)) > _MAX_INT_BITS)
            ):
                raise _Refused(
                    f"number {_short_number(left)} ** {_short_number(right)} is too large"
                    f" (over {_MAX_INT_BITS} bits)"
                )
        elif operator == "%" and isinstance(left, str):
            self.check_percent(left, right)
        result = self.binop_table[operator](left, right)
        if isinstance(result, (list, tuple)):
            self.check_weight(result)
        return self.bound_result(result)

    def _check_repeat(self, seq: Any, times: Any) -> None:
        if not _is_int(times) or times <= 1:
            return
        if isinstance(seq, str):
            self.check_text_size(len(seq) * times)
        elif isinstance(seq, (list, tuple)):
            count = len(seq) * times
            if count > self.limits.max_range:
                raise _Refused(
                    f"{type(seq).__name__} of {_count_text(count)} items exceeds the limit of"
                    f" {self.limits.max_range}"
                )
            self.check_weight(seq, times)


def _is_int(value: Any) -> bool:
    return isinstance(value, int)


def _short_number(n: int) -> str:
    return str(n) if abs(n) < 10**15 else "a large number"


def _bounded_filters(env: _Environment) -> dict[str, Callable[..., Any]]:
    """Replacements for the built-in filters that can build large values, and ``fromjson``."""
    limits = env.limits

    def batch(value: Any, linecount: Any, fill_with: Any = None) -> Any:
        env.check_count(linecount, "batch size")
        if fill_with is not None:
            env.check_weight(fill_with, linecount)
        return do_batch(value, linecount, fill_with)

    def slice_(value: Any, slices: Any, fill_with: Any = None) -> Any:
        env.check_count(slices, "slice count")
        if fill_with is not None:
            env.check_weight(fill_with, slices)
        return sync_do_slice(value, slices, fill_with)

    def center(value: Any, width: Any = 80) -> str:
        if isinstance(width, int):
            env.check_text_size(width)
        return do_center(value, width)

    def indent(s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> str:
        text = str(s)
        step = width if isinstance(width, int) else len(str(width))
        env.check_text_size(len(text) + (text.count("\n") + 1) * max(0, step))
        return do_indent(text, width, first, blank)

    def format_(value: Any, *args: Any, **kwargs: Any) -> str:
        env.check_percent(str(value), kwargs or args)
        return do_format(value, *args, **kwargs)

    @pass_eval_context
    def replace(eval_ctx: EvalContext, s: Any, old: Any, new: Any, count: Any = None) -> str:
        env.check_replace(str(s), str(old), str(new), count)
        return do_replace(eval_ctx, s, old, new, count)

    @pass_eval_context
    def join(eval_ctx: EvalContext, value: Any, d: Any = "", attribute: Any = None) -> str:
        items = list(env.bounded_iter(value))
        shown = items if attribute is None else [make_attrgetter(env, attribute)(x) for x in items]
        env.check_join(str(d), shown)
        return sync_do_join(eval_ctx, items, d, attribute)

    @pass_eval_context
    def tojson(eval_ctx: EvalContext, value: Any, indent: Any = None) -> Any:
        if indent is not None:
            size = indent if isinstance(indent, int) else len(str(indent))
            if size > _MAX_INDENT:
                raise _Refused(f"tojson indent of {_count_text(size)} exceeds the limit of {_MAX_INDENT}")
        return do_tojson(eval_ctx, value, indent)

    @pass_environment
    def wordwrap(
        environment: Environment,
        s: Any,
        width: int = 79,
        break_long_words: bool = True,
        wrapstring: Any = None,
        break_on_hyphens: bool = True,
    ) -> str:
        if wrapstring is not None and len(str(wrapstring)) > _MAX_INDENT:
            raise _Refused(f"wordwrap wrapstring longer than {_MAX_INDENT} characters is not allowed")
        return do_wordwrap(environment, s, width, break_long_words, wrapstring, break_on_hyphens)

    @pass_environment
    def sum_(environment: Environment, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
        if not isinstance(start, (int, float)):
            raise _Refused("sum() in templates adds numbers only (start must be a number)")
        return sync_do_sum(environment, env.bounded_iter(iterable), attribute, start)

    def fromjson(value: Any) -> Any:
        if not isinstance(value, str):
            raise _Refused(f"fromjson needs a string, not {type(value).__name__}")
        limit = limits.max_output_chars * _FROMJSON_FACTOR
        if len(value) > limit:
            raise _Refused(f"fromjson input of {len(value)} characters exceeds the limit of {limit}")
        try:
            return jsontext.loads(value)
        except json.JSONDecodeError as exc:
            raise _Refused(
                f"fromjson: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            ) from None

    return {
        "batch": batch,
        "slice": slice_,
        "center": center,
        "indent": indent,
        "format": format_,
        "replace": replace,
        "join": join,
        "tojson": tojson,
        "wordwrap": wordwrap,
        "sum": sum_,
        "fromjson": fromjson,
    }


# -- source rewriting and static checks ------------------------------------------------------------


def _rewrite_dash_ids(source: str) -> str:
    """``steps.step-1.outputs`` -> ``steps['step-1'].outputs`` inside ``{{ }}`` and ``{% %}`` blocks.

    Only ids with a dash are rewritten (Jinja would read the dash as a subtraction); string
    literals, comments, ``{% raw %}`` sections and text outside blocks are left alone. One linear
    pass: an unterminated block ends the scan (Jinja reports the syntax error).
    """
    if "steps." not in source:
        return source
    out: list[str] = []
    pos = 0
    while True:
        opening = _OPENING.search(source, pos)
        if opening is None:
            break
        start = opening.start()
        kind = source[start + 1]
        closer = {"{": "}}", "%": "%}", "#": "#}"}[kind]
        end = source.find(closer, start + 2)
        if end == -1:
            break
        end += 2
        out.append(source[pos:start])
        block = source[start:end]
        if kind == "#":
            out.append(block)
        elif kind == "%" and _RAW_BLOCK.fullmatch(block):
            raw_end = _END_RAW.search(source, end)
            stop = len(source) if raw_end is None else raw_end.end()
            out.append(source[start:stop])
            end = stop
        else:
            out.append(_DASH_ID.sub(_quote_dash_id, block))
        pos = end
    out.append(source[pos:])
    return "".join(out)


def _quote_dash_id(match: re.Match[str]) -> str:
    step_id = match.group(1)
    return match.group(0) if step_id is None else f"steps[{step_id!r}]"


def _is_internal_name(name: Any) -> bool:
    return isinstance(name, str) and ("__" in name or name in _INTERNAL_NAMES)


def _internal_in_attribute_path(value: Any) -> str | None:
    if isinstance(value, str):
        for part in value.split("."):
            if _is_internal_name(part):
                return part
    return None


def _static_problem(tree: nodes.Template) -> str | None:
    """The first construct refused before running: template loading, autoescape, internals."""
    for loader in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        tag = {"Extends": "extends", "Include": "include", "Import": "import", "FromImport": "from"}[
            type(loader).__name__
        ]
        return f"template uses '{{% {tag} %}}': templates cannot load other templates"
    for _ in tree.find_all(nodes.EvalContextModifier):
        return "template uses '{% autoescape %}': not allowed (output is never escaped)"
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        name: str | None = None
        if isinstance(node, nodes.Getattr) and _is_internal_name(node.attr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value if _is_internal_name(node.arg.value) else None
        elif isinstance(node, nodes.Filter):
            position = _ATTRIBUTE_ARG.get(node.name)
            candidates = [kw.value for kw in node.kwargs if kw.key == "attribute"]
            if position is not None and len(node.args) > position:
                candidates.append(node.args[position])
            for candidate in candidates:
                if isinstance(candidate, nodes.Const):
                    name = _internal_in_attribute_path(candidate.value)
                    if name:
                        break
        if name:
            return f"template reaches a Python internal ({name!r}): not allowed"
    return None


def _single_expression(tree: nodes.Template) -> nodes.Expr | None:
    """The expression of a template that is exactly ``{{ expr }}`` (whitespace around allowed)."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    parts = [n for n in tree.body[0].nodes if not (isinstance(n, nodes.TemplateData) and not n.data.strip())]
    if len(parts) == 1 and isinstance(parts[0], nodes.Expr) and not isinstance(parts[0], nodes.TemplateData):
        return parts[0]
    return None


def is_template(value: Any) -> bool:
    """Whether ``value`` (a str, or any str nested in dict values or list/tuple items) holds ``{{``/``{%``."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(is_template(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(is_template(v) for v in value)
    return False


def _template_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if "{{" in value or "{%" in value:
            yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _template_strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _template_strings(item)


#: Parses for :func:`referenced_steps` (the syntax is the sandbox's; nothing is compiled or run).
_PARSER = Environment(keep_trailing_newline=True)

# The templates pipelines are mostly made of: ``{{ params.model }}``, ``{{ item }}``,
# ``{{ steps['deploy-llm'].outputs.url | default('') }}`` inside plain text. Each ``{{ }}`` block
# that is one such path (a name, then ``.attr``/``['key']`` parts, then optionally ``default`` of a
# string or number) is valid Jinja with no call and no internal name, and names exactly the step
# it indexes; recognising it by this expression spares Jinja's lexer and parser (some 0.6 ms a
# template) when a 1,000-step pipeline is validated. Anything else takes the full parse.
_KEY = r"""(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\s*(?:'[^'\\{}]*'|"[^"\\{}]*"|\d+)\s*\])"""
_LITERAL = r"""(?:'[^'\\{}]*'|"[^"\\{}]*"|-?\d+(?:\.\d+)?)"""
_SIMPLE_BLOCK = re.compile(
    rf"""\{{\{{-?\s*([A-Za-z_][A-Za-z0-9_]*)((?:\s*{_KEY})*)\s*(?:\|\s*default\(\s*(?:{_LITERAL})?\s*\)\s*)?-?\}}\}}"""
)
_FIRST_KEY = re.compile(r"""^\s*(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*(?:'([^']*)'|"([^"]*)")\s*\])""")


def _simple_steps(source: str) -> frozenset[str] | None:
    """The steps a template of simple blocks only reads (see above), or ``None`` for any other."""
    if "{%" in source or "{#" in source or "__" in source:
        return None
    found: set[str] = set()
    rest = _SIMPLE_BLOCK.sub("", source)
    if "{{" in rest or "}}" in rest:
        return None
    for match in _SIMPLE_BLOCK.finditer(source):
        if match.group(1) != "steps":
            continue
        first = _FIRST_KEY.match(match.group(2))
        if first is None:
            return None  # steps alone, or steps[0]: the full analysis says what that reads
        found.add(first.group(1) or first.group(2) or first.group(3) or "")
    return frozenset(found)


_DICT_READERS = frozenset({"items", "values", "keys"})


def referenced_steps(value: Any) -> set[str]:
    """The step ids a template value reads through ``steps``, recursively in dicts and lists.

    ``steps['x']``, ``steps["x"]``, ``steps.x``, ``steps.x-y`` (rewritten), ``steps.get('x')`` and
    ``steps | attr('x')`` name ``x``, wherever they appear (filters, conditions, loops). Any other use
    of ``steps`` — ``steps[name]``, ``steps.items()``, ``steps | tojson``, ``{% set s = steps %}`` —
    may read any step and is reported as ``'*'``. Unparseable templates give nothing (:meth:`Sandbox.check`
    reports them).
    """
    found: set[str] = set()
    for source in _template_strings(value):
        found |= _steps_in_source(source)
    return found


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _steps_in_source(source: str) -> frozenset[str]:
    simple = _simple_steps(source)
    if simple is not None:
        return simple
    try:
        tree = _PARSER.parse(_rewrite_dash_ids(source))
        found: set[str] = set()
        _collect_steps(tree, found)
    except Exception:  # syntax errors, absurd nesting: check() reports them
        return frozenset()
    return frozenset(found)


def _is_steps(node: Any) -> bool:
    return isinstance(node, nodes.Name) and node.name == "steps" and node.ctx == "load"


def _const_id(node: Any) -> str:
    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        return node.value
    return "*"


def _collect_steps(node: nodes.Node, found: set[str]) -> None:
    children: list[nodes.Node] = []
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr) and _is_steps(node.node.node):
        method = node.node.attr
        if method == "get":
            found.add(_const_id(node.args[0]) if node.args else "*")
            children = [*node.args[1:], *node.kwargs]
        elif method in _DICT_READERS:
            found.add("*")
            children = [*node.args, *node.kwargs]
        else:
            found.add(method)
            children = [*node.args, *node.kwargs]
        if node.dyn_args is not None:
            children.append(node.dyn_args)
        if node.dyn_kwargs is not None:
            children.append(node.dyn_kwargs)
    elif isinstance(node, nodes.Getattr) and _is_steps(node.node):
        found.add(node.attr)
    elif isinstance(node, nodes.Getitem) and _is_steps(node.node):
        step_id = _const_id(node.arg)
        found.add(step_id)
        if step_id == "*":
            children = [node.arg]
    elif isinstance(node, nodes.Filter) and node.name == "attr" and _is_steps(node.node):
        found.add(_const_id(node.args[0]) if node.args else "*")
        children = [*node.args[1:], *node.kwargs]
    elif _is_steps(node):
        found.add("*")
    else:
        children = list(node.iter_child_nodes())
    for child in children:
        _collect_steps(child, found)


# -- error messages --------------------------------------------------------------------------------


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _snippet(template: str) -> str:
    text = template if len(template) <= _SNIPPET_CHARS else template[: _SNIPPET_CHARS - 3] + "..."
    return repr(text)


def _expr_text(node: nodes.Node) -> str:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_expr_text(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        return f"{_expr_text(node.node)}[{node.arg.value!r}]"
    if isinstance(node, nodes.Const) and isinstance(node.value, (str, int, float)):
        text = repr(node.value)
        return f"({text})" if len(text) <= 20 else "(...)"
    return "(...)"


_NOTHING = object()


def _resolve(node: nodes.Node, context: Mapping[str, Any]) -> Any:
    """The value a plain ``a.b['c']`` chain names in ``context``, or ``_NOTHING``."""
    if isinstance(node, nodes.Name):
        return context.get(node.name, _NOTHING)
    if isinstance(node, nodes.Getattr):
        key: Any = node.attr
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        key = node.arg.value
    else:
        return _NOTHING
    base = _resolve(node.node, context)
    if isinstance(base, Mapping):
        return base.get(key, _NOTHING)
    if isinstance(base, (list, tuple)) and isinstance(key, int) and -len(base) <= key < len(base):
        return base[key]
    return _NOTHING


def _undefined_path(template: str, error: _UndefinedNameError, context: Mapping[str, Any]) -> str:
    """``params.modle`` for the lookup that failed: the candidate whose parent resolves to the object
    the lookup was made on, else the first candidate, else the bare name."""
    name = error.undefined_name
    if not isinstance(name, (str, int)):
        return _safe_text(name)
    if error.undefined_obj is missing:
        return str(name)
    try:
        tree = _PARSER.parse(_rewrite_dash_ids(template))
    except Exception:
        return str(name)
    candidates = [
        node
        for node in tree.find_all((nodes.Getattr, nodes.Getitem))
        if (isinstance(node, nodes.Getattr) and node.attr == name)
        or (isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and node.arg.value == name)
    ]
    for node in candidates:
        if _resolve(node.node, context) is error.undefined_obj:
            return _expr_text(node)
    return _expr_text(candidates[0]) if candidates else str(name)


def _safe_text(value: Any) -> str:
    try:
        return _one_line(str(value), 80)
    except Exception:
        return f"a {type(value).__name__}"


def _message(exc: BaseException, template: str, context: Mapping[str, Any]) -> str:
    where = f"in template {_snippet(template)}"
    if isinstance(exc, _Refused):
        return exc.message
    if isinstance(exc, _UndefinedNameError):
        if exc.undefined_name is None:
            return f"undefined value {where}: {exc.hint or exc.message}"
        try:
            path = _undefined_path(template, exc, context)
        except Exception:  # pragma: no cover - the message must not fail
            path = _safe_text(exc.undefined_name)
        return f"undefined name {path!r} {where}"
    if isinstance(exc, UndefinedError):
        return f"undefined value {where}: {exc.message}"
    if isinstance(exc, JinjaSyntaxError):
        return f"template syntax error at line {exc.lineno}: {exc.message}"
    if isinstance(exc, JinjaTemplateError):
        return f"template error {where}: {exc.message or type(exc).__name__}"
    if isinstance(exc, RecursionError):
        return f"template nests or recurses too deeply {where}"
    if isinstance(exc, ZeroDivisionError):
        return f"division by zero {where}"
    if isinstance(exc, OverflowError):
        return f"number too large {where}: {exc}"
    if isinstance(exc, MemoryError):
        return f"template needs too much memory {where}"
    return f"{type(exc).__name__} {where}: {exc}"


# -- the public sandbox ----------------------------------------------------------------------------


class Sandbox:
    """Compiles (once, cached by source) and renders pipeline templates within :class:`TemplateLimits`.

    Thread-safe: the deadline of a render lives in a context variable, the caches are written under
    a lock. Rendering a cached short template costs a few microseconds.
    """

    def __init__(self, limits: TemplateLimits = TemplateLimits()) -> None:
        self.limits = limits
        self._env = _Environment(limits)
        self._text_cache: dict[str, Template] = {}
        self._native_cache: dict[str, tuple[bool, Template]] = {}
        self._checked_sources: dict[str, bool] = {}
        self._lock = threading.Lock()

    is_template = staticmethod(is_template)

    # -- public API

    def check(self, template: str, *, where: str) -> None:
        """Parse only: syntax errors and forbidden constructs found statically raise TemplateError.

        Compiling waits for the first render (it costs several times the parse, and validating a
        pipeline renders nothing); a template of simple paths only (see :func:`_simple_steps`)
        needs no parse at all."""
        if not isinstance(template, str):
            raise TemplateError(f"template must be a string, not {type(template).__name__}", path=where)
        if len(template) > self.limits.max_source_chars:
            raise TemplateError(
                f"template source of {len(template)} characters exceeds the limit of"
                f" {self.limits.max_source_chars}",
                path=where,
            )
        if is_template(template) and _simple_steps(template) is None:
            self._checked(template, where)

    def render(self, template: str, context: Mapping[str, Any], *, where: str) -> str:
        """The text of ``template``; a string without ``{{`` or ``{%`` is returned as is."""
        if not isinstance(template, str):
            raise TemplateError(f"template must be a string, not {type(template).__name__}", path=where)
        if "{{" not in template and "{%" not in template:
            return template
        return self._run_text(self._text_template(template, where), template, context, where)

    def render_value(self, value: Any, context: Mapping[str, Any], *, where: str) -> Any:
        """Render every str inside dicts/lists/tuples (keys are not rendered).

        A string that is exactly one ``{{ expr }}`` gives the expression's native value (``True``, a
        list...); a string without ``{{``/``{%`` is returned unchanged; other scalars as they are.
        Errors name the nested field: ``f"{where}.{key}"`` and ``f"{where}[{i}]"``.
        """
        try:
            return self._render_value(value, context, where)
        except RecursionError:
            raise TemplateError("value nests too deeply to render", path=where) from None

    def evaluate(self, expression: str, context: Mapping[str, Any], *, where: str) -> bool:
        """Truth of a condition, written ``{{ expr }}`` or as a bare ``expr``.

        Rendered text is false when it is ``false``/``no``/``0``/empty (stripped, any case) and true
        otherwise; native values use Python truthiness. A bare ``true``/``yes``/``1`` or
        ``false``/``no``/``0``/empty is taken as written.
        """
        if isinstance(expression, bool):
            return expression
        if not isinstance(expression, str):
            raise TemplateError(f"condition must be a string, not {type(expression).__name__}", path=where)
        if not is_template(expression):
            word = expression.strip().lower()
            if word in _FALSE_WORDS:
                return False
            if word in _TRUE_WORDS:
                return True
            expression = "{{ " + expression + " }}"
        value = self._render_native(expression, context, where)
        if isinstance(value, str):
            return value.strip().lower() not in _FALSE_WORDS
        try:
            return bool(value)
        except Exception as exc:
            raise TemplateError(_one_line(_message(exc, expression, context)), path=where) from exc

    # -- compiling

    def _checked(self, source: str, where: str) -> None:
        """Parse ``source`` and refuse what is refused statically (compiling waits for a render)."""
        if source in self._text_cache or source in self._checked_sources:
            return
        if len(source) > self.limits.max_source_chars:
            raise TemplateError(
                f"template source of {len(source)} characters exceeds the limit of"
                f" {self.limits.max_source_chars}",
                path=where,
            )
        try:
            problem = _static_problem(self._env.parse(_rewrite_dash_ids(source)))
            if problem is not None:
                raise _Refused(problem)
        except Exception as exc:
            raise TemplateError(_one_line(_message(exc, source, {})), path=where) from exc
        self._store(self._checked_sources, source, True)

    def _text_template(self, source: str, where: str) -> Template:
        cached = self._text_cache.get(source)
        if cached is None:
            cached = self._compile(source, where, native=False)[1]
            self._store(self._text_cache, source, cached)
        return cached

    def _native_template(self, source: str, where: str) -> tuple[bool, Template]:
        cached = self._native_cache.get(source)
        if cached is None:
            cached = self._compile(source, where, native=True)
            self._store(self._native_cache, source, cached)
        return cached

    def _store(self, cache: dict[str, Any], key: str, value: Any) -> None:
        with self._lock:
            while len(cache) >= _CACHE_SIZE:
                del cache[next(iter(cache))]
            cache[key] = value

    def _compile(self, source: str, where: str, *, native: bool) -> tuple[bool, Template]:
        if len(source) > self.limits.max_source_chars:
            raise TemplateError(
                f"template source of {len(source)} characters exceeds the limit of"
                f" {self.limits.max_source_chars}",
                path=where,
            )
        try:
            tree = self._env.parse(_rewrite_dash_ids(source))
            problem = _static_problem(tree)
            if problem is not None:
                raise _Refused(problem)
            expression = _single_expression(tree) if native else None
            if expression is not None:
                tree = nodes.Template(
                    [nodes.Assign(nodes.Name(_RESULT, "store"), expression, lineno=1)], lineno=1
                )
            for loop in list(tree.find_all(nodes.For)):
                loop.iter = nodes.Filter(loop.iter, _LOOP_FILTER, [], [], None, None, lineno=loop.lineno)
            tree.set_environment(self._env)
            return expression is not None, self._env.from_string(tree)
        except Exception as exc:
            raise TemplateError(_one_line(_message(exc, source, {})), path=where) from exc

    # -- rendering

    def _render_value(self, value: Any, context: Mapping[str, Any], where: str) -> Any:
        if isinstance(value, str):
            return self._render_native(value, context, where)
        if isinstance(value, Mapping):
            return {
                key: self._render_value(item, context, f"{where}.{key}" if where else str(key))
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self._render_value(item, context, f"{where}[{i}]") for i, item in enumerate(value)]
        if isinstance(value, tuple):
            return tuple(self._render_value(item, context, f"{where}[{i}]") for i, item in enumerate(value))
        return value

    def _render_native(self, source: str, context: Mapping[str, Any], where: str) -> Any:
        if "{{" not in source and "{%" not in source:
            return source
        is_native, template = self._native_template(source, where)
        if not is_native:
            return self._run_text(template, source, context, where)
        return self._run_native(template, source, context, where)

    def _new_context(self, template: Template, context: Mapping[str, Any]) -> Context:
        return template.new_context(context if isinstance(context, dict) else dict(context))

    def _budget(self) -> _Budget:
        limits = self.limits
        return _Budget(
            time.perf_counter() + limits.max_render_seconds, limits.max_output_chars * _WORK_FACTOR
        )

    def _run_text(self, template: Template, source: str, context: Mapping[str, Any], where: str) -> str:
        limit = self.limits.max_output_chars
        budget = self._budget()
        deadline = budget.deadline
        token = _BUDGET.set(budget)
        try:
            parts: list[str] = []
            total = 0
            for chunk in template.root_render_func(self._new_context(template, context)):
                total += len(chunk)
                if total > limit:
                    raise _Refused(f"template output exceeds {limit} characters")
                if time.perf_counter() > deadline:
                    self._env.tick()
                parts.append(chunk)
            return "".join(parts)
        except Exception as exc:
            raise TemplateError(_one_line(_message(exc, source, context)), path=where) from exc
        finally:
            _BUDGET.reset(token)

    def _run_native(self, template: Template, source: str, context: Mapping[str, Any], where: str) -> Any:
        token = _BUDGET.set(self._budget())
        try:
            ctx = self._new_context(template, context)
            for _ in template.root_render_func(ctx):
                pass
            return self._native(ctx.vars[_RESULT])
        except Exception as exc:
            raise TemplateError(_one_line(_message(exc, source, context)), path=where) from exc
        finally:
            _BUDGET.reset(token)

    def _native(self, value: Any) -> Any:
        if isinstance(value, Undefined):
            str(value)  # a StrictUndefined raises here, naming what is missing
            return None  # the implicit else of ``{{ x if cond }}``
        if type(value) in _NATIVE_TYPES or isinstance(value, (dict, list)):
            return value
        if isinstance(value, (Iterator, range, KeysView, ValuesView, ItemsView)):  # map, select, .items()...
            items = list(self._env.bounded_iter(value))
            self._env.check_weight(items)
            return items
        return self._env.bound_result(str(value))  # Markup, macros, other objects: their text
