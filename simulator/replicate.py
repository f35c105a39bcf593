"""``replicate:`` blocks: N cohorts × M ClusterQueues (and their workload classes) from one template.

Anywhere a scenario file has a list (``queues.documents``, ``workload.generators.classes``,
``workload.traces``, ...), an item of the form::

    - replicate: {cohort: 5, cq: 6}        # variable: a count (0 .. n-1) or a list of values
      template:                            # one item; or `templates:` a list of items
        apiVersion: kueue.x-k8s.io/v1beta2
        kind: ClusterQueue
        metadata: {name: "cq-{{ cq }}-cohort-{{ cohort }}"}
        spec: {cohortName: "cohort-{{ cohort }}", ...}

stands for one copy of the template (or of each template, in order) per combination of the
variables, the first variable varying slowest (``cohort 0 cq 0``, ``cohort 0 cq 1``, ...). Strings
in the template are Jinja2 templates over the variables (a sandboxed environment; an undefined
variable is an error): ``"cq-{{ cq }}"`` renders as text, and a string that is one expression,
``"{{ cohort * 6 + cq }}"``, takes the expression's value, so a number stays a number. Mapping keys
are rendered too. Blocks nest: an inner block sees the outer block's variables. Strings outside
any block are left as they are.

Expansion happens before the scenario is validated, and errors in the expanded data still point at
the line of the template they came from (:func:`expand_document` returns a line lookup that maps
each copy back to its template).
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from budcore.domain.errors import ValidationError
from budcore.domain.validation import LineLookup

from .workload.limits import MAX_REPLICATED_ITEMS

REPLICATE = "replicate"
MAX_ITEMS = MAX_REPLICATED_ITEMS  # the bound of the whole file's blocks (workload.limits)

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_ONE_EXPRESSION = re.compile(r"\s*\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\s*", re.DOTALL)
_PATH_PART = re.compile(r"(\[\d+\]|\.[^.\[]+|^[^.\[]+)$")


def expand_document(data: Any, line_of: LineLookup | None = None) -> tuple[Any, LineLookup | None]:
    """``data`` with every ``replicate:`` block expanded, and a line lookup for the expanded data.

    The lookup maps a path of the expanded data (``queues.documents[7].spec``) to the line of the
    template it came from. Without blocks, ``data`` and ``line_of`` come back as they are.
    """
    if not _has_block(data):
        return data, line_of
    remap: dict[str, str] = {}
    counter = [0]
    expanded = _expand(data, {}, "", "", remap, counter)
    if line_of is None:
        return expanded, None
    return expanded, _remapped(line_of, remap)


def _has_block(node: Any) -> bool:
    if isinstance(node, list):
        return any(_is_block(item) or _has_block(item) for item in node)
    if isinstance(node, dict):
        return any(_has_block(value) for value in node.values())
    return False


def _is_block(item: Any) -> bool:
    return isinstance(item, dict) and REPLICATE in item


def _expand(
    node: Any,
    variables: Mapping[str, Any],
    new: str,
    old: str,
    remap: dict[str, str],
    counter: list[int],
) -> Any:
    if isinstance(node, list):
        out: list[Any] = []
        for index, item in enumerate(node):
            at = f"{old}[{index}]"
            if _is_block(item):
                combinations, count = _combinations(item, variables, at)
                templates = _templates(item, at)
                _count(counter, count * len(templates), at)  # before any copy is made
                for combination in combinations:
                    for template, template_at in templates:
                        path = f"{new}[{len(out)}]"
                        remap[path] = template_at
                        out.append(_expand(template, combination, path, template_at, remap, counter))
            else:
                path = f"{new}[{len(out)}]"
                if len(out) != index:  # blocks before it moved it: map it back
                    remap[path] = at
                out.append(_expand(item, variables, path, at, remap, counter))
        return out
    if isinstance(node, dict):
        result: dict[Any, Any] = {}
        for key, value in node.items():
            rendered = _render(key, variables, f"{old}.{key}" if old else str(key)) if variables else key
            child_new = f"{new}.{rendered}" if new else str(rendered)
            child_old = f"{old}.{key}" if old else str(key)
            if rendered != key:  # a rendered key: map it back (else its parent's mapping does)
                remap[child_new] = child_old
            if rendered in result:
                raise ValidationError(f"the template gives the key {rendered!r} twice", path=child_old)
            result[rendered] = _expand(value, variables, child_new, child_old, remap, counter)
        return result
    if isinstance(node, str) and variables:
        return _render(node, variables, old)
    return node


def _count(counter: list[int], items: int, at: str) -> None:
    counter[0] += items
    if counter[0] > MAX_ITEMS:
        raise ValidationError(
            f"replicate blocks expand to more than {MAX_ITEMS:,} items "
            f"(this one to {items:,}: the product of its counts times its templates)",
            path=at,
        )


def _combinations(
    block: Mapping[str, Any], outer: Mapping[str, Any], at: str
) -> tuple[Iterator[dict[str, Any]], int]:
    """Every combination of the block's variables (the first varying slowest), with ``outer``'s,
    made one at a time, and how many there are: a count of 10**9 is refused before anything is
    built (it used to build the list first)."""
    spec = block[REPLICATE]
    where = f"{at}.{REPLICATE}"
    if not isinstance(spec, dict) or not spec:
        raise ValidationError(
            "give the variables to replicate over, e.g. replicate: {cohort: 5, cq: 6} (a count) or "
            "replicate: {flavor: [a, b]} (values)",
            path=where,
        )
    names: list[str] = []
    ranges: list[Sequence[Any]] = []
    for name, values in spec.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValidationError(f"variable names are identifiers, got {name!r}", path=where)
        if name in outer:
            raise ValidationError(
                f"variable {name!r} is already set by an outer block", path=f"{where}.{name}"
            )
        if isinstance(values, bool) or not isinstance(values, (int, list)):
            raise ValidationError(f"give a count or a list of values, got {values!r}", path=f"{where}.{name}")
        if isinstance(values, int):
            if values < 0:
                raise ValidationError(f"a count must not be negative, got {values}", path=f"{where}.{name}")
            values = range(values)
        names.append(name)
        ranges.append(values)
    return _each_combination(outer, names, ranges), math.prod(len(values) for values in ranges)


def _each_combination(
    outer: Mapping[str, Any], names: list[str], ranges: list[Sequence[Any]]
) -> Iterator[dict[str, Any]]:
    # A generator function: ``itertools.product`` turns its inputs into tuples when it is made,
    # which for a range of 10**8 took seconds before the count was even checked.
    for combination in itertools.product(*ranges):
        yield {**outer, **dict(zip(names, combination, strict=True))}


def _templates(block: Mapping[str, Any], at: str) -> list[tuple[Any, str]]:
    """The block's templates with their paths: ``template`` (one) or ``templates`` (a list)."""
    extra = sorted(set(block) - {REPLICATE, "template", "templates"})
    if extra:
        raise ValidationError(
            f"a replicate block has 'replicate' and 'template' (or 'templates'), not {extra}", path=at
        )
    if ("template" in block) == ("templates" in block):
        raise ValidationError("give exactly one of 'template' or 'templates'", path=at)
    if "template" in block:
        return [(block["template"], f"{at}.template")]
    templates = block["templates"]
    if not isinstance(templates, list) or not templates:
        raise ValidationError("'templates' is a non-empty list of items", path=f"{at}.templates")
    return [(template, f"{at}.templates[{i}]") for i, template in enumerate(templates)]


def _render(value: Any, variables: Mapping[str, Any], at: str) -> Any:
    """``value`` rendered with ``variables`` when it is a template string (else as it is)."""
    if not isinstance(value, str) or ("{{" not in value and "{%" not in value):
        return value
    try:
        return _compiled(value)(**variables)
    except TemplateError as exc:
        raise ValidationError(f"template {value!r}: {exc.message or exc}", path=at) from None


@functools.lru_cache(maxsize=1024)
def _compiled(value: str) -> Callable[..., Any]:
    """``value`` compiled once: every copy of a template renders the same strings, and compiling
    one (parse, code generation, ``compile``) costs a hundred times its rendering (a 300-cohort
    block spent 6 of its 7 s there). A syntax error raises here and is not cached."""
    whole = _ONE_EXPRESSION.fullmatch(value)
    if whole is not None:
        expression: Callable[..., Any] = _ENV.compile_expression(whole.group("expr"), undefined_to_none=False)
        return expression
    return _ENV.from_string(value).render


def _parent(path: str) -> str:
    match = _PATH_PART.search(path)
    return path[: match.start()] if match else ""


def _remapped(line_of: LineLookup, remap: Mapping[str, str]) -> Callable[[str], int | None]:
    """A lookup of expanded paths: the nearest remapped ancestor is translated to its origin."""

    def lookup(path: str) -> int | None:
        current = path
        while current:
            origin = remap.get(current)
            if origin is not None:
                return line_of(origin + path[len(current) :])
            current = _parent(current)
        return line_of(path)

    return lookup
