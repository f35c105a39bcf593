"""Architecture rules of the core (``src/budcore``), checked on its source with ``ast``.

The import graph has a node per module of the core (a package is its ``__init__``) and an edge
for every ``import``/``from ... import`` of another core module, at module level or inside a
function or class; ``from package import name`` points at the submodule when ``name`` is one,
else at the package. Imports under ``if TYPE_CHECKING:`` are left out of the graph (they never
run, so they cannot make an import cycle); the layering and forbidden-import rules count them,
since an annotation is a dependency too. A module imported as a string (``importlib.import_module``,
``lazy_factory("module:Name")``) counts for the forbidden-import rule.

Rules:

1. No import cycle between modules of the core, and none between its subpackages (``domain``,
   ``scheduling``, ``hardware``, ``cost``, ``config``, ``ports``, ``plugins``, ``testing``,
   ``cli``, ``pipeline``: every directory of ``src/budcore``; the top-level modules such as
   ``budcore/service.py`` are not a subpackage and only count in the module graph).
2. The core imports no adapter (``budcore_adapters``), no simulator (``budcore_simulator``), no
   database library (``sqlalchemy``, ``alembic``, ``psycopg``) and no Kubernetes client
   (``kubernetes``): those reach the core through ports and plugins only.
3. Size: no module of the core above :data:`MAX_MODULE_LINES` lines unless its module docstring
   says why, in a sentence starting with ``Long because`` (e.g. "Long because it transcribes
   Kueue's webhook validation, which reads best in one place."); no function or method in
   ``src/budcore/scheduling/`` above :data:`MAX_FUNCTION_LINES` lines, counted from its ``def``
   line to its last line (docstring and comments included, decorators not).
4. Layering: ``budcore.domain`` imports nothing else from budcore, not even for annotations.
   ``budcore.ports`` imports only ``budcore.domain`` when it runs (ports are Protocols over domain
   types; what implements or calls them depends on the ports, never the reverse); under
   ``if TYPE_CHECKING:`` it may also name ``budcore.scheduling``'s and ``budcore.pipeline``'s types,
   because some ports carry their data (the admission ledger takes a ``QueueConfig`` and an
   ``Admit``, the pipeline store a ``PipelineSpec`` and a ``PipelineRun``) while those packages
   import the ports. That is the rule the ports follow today.

A failure lists every violation (file, line, and the rule), so one run says all there is to fix.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import networkx as nx

import budcore

SRC = Path(budcore.__file__).resolve().parent.parent
CORE = SRC / "budcore"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
LONG_BECAUSE = re.compile(r"(?:^|[.!?:]\s+|\n\s*)Long because\b")
FORBIDDEN = ("budcore_adapters", "budcore_simulator", "sqlalchemy", "alembic", "psycopg", "kubernetes")
STRING_IMPORTERS = ("import_module", "lazy_factory", "LazyFactory", "__import__")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # what it names, absolute (``budcore.cost.prices``, ``sqlalchemy.orm``)
    line: int
    type_checking: bool = False  # under ``if TYPE_CHECKING:``
    string: bool = False  # a module named in a string (``import_module("...")``)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the core by its dotted name."""
    return {_module_name(path): path for path in sorted(CORE.rglob("*.py"))}


def _relative(path: Path) -> str:
    return str(path.relative_to(SRC.parent))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    parts = package.split(".")
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports_of(module: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    known = modules()

    def walk(node: ast.AST, type_checking: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for statement in child.body:
                    yield from visit(statement, True)
                for statement in child.orelse:
                    yield from visit(statement, type_checking)
                continue
            yield from visit(child, type_checking)

    def visit(node: ast.AST, type_checking: bool) -> Iterator[Import]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno, type_checking)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, path, node)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield Import(module, submodule if submodule in known else base, node.lineno, type_checking)
        else:
            if isinstance(node, ast.Call):
                yield from _string_import(node, type_checking)
            yield from walk(node, type_checking)

    def _string_import(call: ast.Call, type_checking: bool) -> Iterator[Import]:
        func = call.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in STRING_IMPORTERS and call.args:
            first = call.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                target = first.value.partition(":")[0]
                if target and not target.startswith("."):
                    yield Import(module, target, call.lineno, type_checking, string=True)

    yield from walk(tree, False)


@cache
def all_imports() -> tuple[Import, ...]:
    return tuple(i for module, path in modules().items() for i in _imports_of(module, path))


def _core_target(target: str) -> str | None:
    """The core module an import names (the longest known prefix), or ``None`` outside the core."""
    known = modules()
    while target:
        if target in known:
            return target
        target = target.rpartition(".")[0]
    return None


def _where(item: Import) -> str:
    return f"{_relative(modules()[item.module])}:{item.line}"


@cache
def module_graph() -> nx.DiGraph:
    """Core module → core module, for imports that run (``TYPE_CHECKING`` and strings left out)."""
    graph = nx.DiGraph()
    graph.add_nodes_from(modules())
    for item in all_imports():
        target = _core_target(item.target)
        if item.type_checking or item.string or target is None or target == item.module:
            continue
        if not graph.has_edge(item.module, target):
            graph.add_edge(item.module, target, at=_where(item))
    return graph


def subpackage(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) > 1 and (CORE / parts[1]).is_dir():
        return parts[1]
    return None


def _describe_cycle(graph: nx.DiGraph, cycle: list[str]) -> str:
    pairs = zip(cycle, [*cycle[1:], cycle[0]], strict=True)
    steps = [f"{a} -> {b} ({graph.edges[a, b]['at']})" for a, b in pairs]
    return "; ".join(steps)


# 1. Cycles ------------------------------------------------------------------------------------------
def test_the_import_graph_sees_the_core() -> None:
    """A sanity check of the walker itself, so the rules below cannot pass by seeing nothing."""
    graph = module_graph()
    assert {"budcore.domain.job", "budcore.scheduling", "budcore.plugins.registry"} <= set(graph)
    assert graph.has_edge("budcore.plugins.registry", "budcore.plugins.hookspecs")
    assert graph.has_edge("budcore.scheduling", "budcore.scheduling.scheduler")  # package __init__
    assert graph.number_of_edges() > 100
    assert any(i.type_checking for i in all_imports())  # seen, and kept out of the graph
    assert any(i.string for i in all_imports())  # lazy factories of the built-in plugin
    assert {"domain", "scheduling", "ports", "plugins"} <= {subpackage(m) for m in modules()}


def test_no_import_cycle_between_modules() -> None:
    graph = module_graph()
    cycles = sorted((_describe_cycle(graph, c) for c in nx.simple_cycles(graph)), key=len)
    assert not cycles, f"{len(cycles)} import cycle(s) between core modules:\n" + "\n".join(cycles)


def test_no_import_cycle_between_subpackages() -> None:
    packages = nx.DiGraph()
    for a, b, data in module_graph().edges(data=True):
        pa, pb = subpackage(a), subpackage(b)
        if pa and pb and pa != pb:
            examples = packages.edges[pa, pb]["examples"] if packages.has_edge(pa, pb) else []
            if not packages.has_edge(pa, pb):
                packages.add_edge(pa, pb, examples=examples)
            examples.append(f"{a} -> {b} ({data['at']})")
    problems = []
    for cycle in nx.simple_cycles(packages):
        pairs = list(zip(cycle, [*cycle[1:], cycle[0]], strict=True))
        path = " -> ".join([*cycle, cycle[0]])
        because = "; ".join(f"{e}" for a, b in pairs for e in packages.edges[a, b]["examples"])
        problems.append(f"{path}: {because}")
    assert not problems, "subpackage cycle(s):\n" + "\n".join(problems)


# 2. Forbidden imports ---------------------------------------------------------------------------
def test_the_core_imports_no_adapter_simulator_database_or_kubernetes_client() -> None:
    bad = [
        f"{_where(i)}: {i.module} imports {i.target}" + (" (as a string)" if i.string else "")
        for i in all_imports()
        if i.target.split(".")[0] in FORBIDDEN
    ]
    assert not bad, "the core imports what only adapters may:\n" + "\n".join(bad)


# 3. Size ----------------------------------------------------------------------------------------
def test_no_long_module_without_a_reason() -> None:
    long = []
    for path in modules().values():
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines <= MAX_MODULE_LINES:
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if not LONG_BECAUSE.search(docstring):
            long.append(f"{_relative(path)}: {lines} lines")
    assert not long, (
        f"modules above {MAX_MODULE_LINES} lines without 'Long because ...' in their docstring:\n"
        + "\n".join(long)
    )


def test_no_long_function_in_scheduling() -> None:
    long = []
    for path in sorted((CORE / "scheduling").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                end = node.end_lineno or node.lineno
                length = end - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{_relative(path)}:{node.lineno}-{end}: {node.name} ({length} lines)")
    assert not long, f"functions above {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_the_long_because_marker() -> None:
    assert LONG_BECAUSE.search("Kueue's API.\n\nLong because it transcribes the webhook.")
    assert LONG_BECAUSE.search("Long because the table is one unit.")
    assert LONG_BECAUSE.search("The API. Long because: reasons.")
    assert not LONG_BECAUSE.search("Not long because of anything.")


# 4. Layering ------------------------------------------------------------------------------------
def _core_imports_from(package: str) -> list[tuple[Import, str]]:
    return [
        (item, target)
        for item in all_imports()
        if item.module == package or item.module.startswith(package + ".")
        if (target := _core_target(item.target)) is not None
    ]


def test_domain_imports_nothing_else_from_budcore() -> None:
    bad = [
        f"{_where(i)}: {i.module} imports {target}"
        for i, target in _core_imports_from("budcore.domain")
        if subpackage(target) != "domain"
    ]
    assert not bad, "budcore.domain depends on the rest of budcore:\n" + "\n".join(bad)


_ANNOTATION_ONLY = ("scheduling", "pipeline", "cost")  # cost: the UsageRecord value of the spend port


def test_ports_import_only_the_domain() -> None:
    bad = [
        f"{_where(i)}: {i.module} imports {target}" + (" (under TYPE_CHECKING)" if i.type_checking else "")
        for i, target in _core_imports_from("budcore.ports")
        if subpackage(target) not in ("domain", "ports", *(_ANNOTATION_ONLY if i.type_checking else ()))
    ]
    assert not bad, (
        "budcore.ports imports more than budcore.domain (and, for annotations, budcore.scheduling, "
        "budcore.pipeline and budcore.cost):\n" + "\n".join(bad)
    )
