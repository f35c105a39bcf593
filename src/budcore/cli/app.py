"""``budcore``: the command-line entry point.

Every ``BudcoreError`` becomes one clear message on stderr and exit status 2 (usage-style error);
unexpected exceptions keep their traceback, because those are bugs to report.

Start-up stays cheap (``budcore --version`` and ``--help`` in well under half a second): the
commands are placeholders that import their module when they run (:mod:`budcore.cli.lazy`), the
plugins are loaded on the first look-up of a command (so ``--version`` loads none), and this module
imports only typer at module level. ``tests/cli/test_startup.py`` guards both.
"""

from __future__ import annotations

import importlib
import json
from typing import TYPE_CHECKING, Annotated

import typer

from budcore.cli.lazy import BudcoreTyper, LazyLoader
from budcore.cli.output import TABLE_FORMAT_HELP, plain_console

if TYPE_CHECKING:
    from budcore.domain.errors import BudcoreError


def _plugin_commands(target: typer.Typer) -> None:
    from budcore.plugins import default_registry

    default_registry().register_commands(target)


app = BudcoreTyper(
    name="budcore",
    help="Scheduling core for heterogeneous GPU fleets: admission, preemption, simulation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    plugin_commands=_plugin_commands,
)


def _version(value: bool) -> None:
    if value:
        from budcore import __version__

        typer.echo(f"budcore {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """budcore command line."""


@app.command()
def plugins(
    fmt: Annotated[str, typer.Option("--format", help=TABLE_FORMAT_HELP)] = "table",
    wide: Annotated[bool, typer.Option("--wide", help="Never wrap: one line per row.")] = False,
) -> None:
    """List registered adapters, the package each came from, and plugins that failed to load."""
    from budcore.cli.output import TABLE_FORMATS, output_format, print_table, write_csv
    from budcore.plugins import default_registry

    output_format(fmt, TABLE_FORMATS)
    registry = default_registry()
    rows: list[dict[str, str | None]] = [
        {"kind": r.kind, "name": r.name, "origin": r.origin} for r in registry.registrations()
    ]
    failures = registry.failures()
    if fmt == "json":
        rows += [
            {"kind": None, "name": f.plugin, "origin": f.origin, "error": f.describe()} for f in failures
        ]
        plain_console().print_json(json.dumps(rows))
        return
    rows = [{**row, "status": "ok"} for row in rows]
    for f in failures:
        hint = f" ({f.hint})" if f.hint else ""
        rows.append(
            {"kind": "-", "name": f.plugin, "origin": f.origin, "status": f"error: {f.message}{hint}"}
        )
    if fmt == "csv":
        write_csv(rows, ["kind", "name", "origin", "status"])
        return
    from rich.table import Table
    from rich.text import Text

    from budcore.cli.output import key_column

    table = Table(title="budcore plugins")
    key_column(table, "kind")
    key_column(table, "name")
    table.add_column("from", overflow="fold")
    table.add_column("status", overflow="fold")
    for row in rows:
        status = row["status"] or ""
        table.add_row(
            row["kind"], row["name"], row["origin"], Text(status, style="red") if status != "ok" else status
        )
    print_table(table, wide=wide)


_ERROR = ("error:", "bold red")


def report_error(exc: BudcoreError) -> None:
    """Print a budcore error for a person: one line per problem.

    Messages quote user input verbatim (``bad values '[red]1'``, pydantic's ``[type=...]``), so
    they are printed as plain text; only the ``error:`` prefix is styled.
    """
    from rich.text import Text

    from budcore.domain.errors import ValidationErrors

    err_console = plain_console(stderr=True, soft_wrap=True)  # never wrap: file:line must stay greppable
    if isinstance(exc, ValidationErrors):
        err_console.print(Text.assemble(_ERROR, f" {len(exc.errors)} problem(s)"), highlight=False)
        for error in exc.errors:
            err_console.print(f"  {error}", highlight=False)
    else:
        err_console.print(Text.assemble(_ERROR, f" {exc}"), highlight=False)


def _module(name: str) -> LazyLoader:
    """The loader of a command module of this package: its ``register(app)``."""

    def load(target: typer.Typer) -> None:
        importlib.import_module(f"budcore.cli.{name}").register(target)

    load.__qualname__ = f"budcore.cli.{name}.register"
    return load


# The built-in commands, in the order they are listed (commands, then groups, as typer lists them).
# The line after each name is what ``budcore --help`` shows: the first line of the command's
# docstring or ``help=`` (tests/cli/test_startup.py checks they agree).
app.add_lazy_command(
    "demo", "Run a short end-to-end scheduling demo on the in-memory adapter.", _module("demo")
)
app.add_lazy_command(
    "recommend",
    "Rank hardware for a model with estimated time, cost and deadline feasibility.",
    _module("recommend"),
)
app.add_lazy_command(
    "validate",
    "Check Kueue objects, budcore Jobs and scenarios; report every error with file, line and field.",
    _module("validate"),
)
app.add_lazy_command(
    "cost", "Cost reports and chargeback over metered GPU usage.", _module("cost"), group=True
)
app.add_lazy_command(
    "hardware", "Accelerator detection, hardware profiles and the catalog.", _module("hardware"), group=True
)
app.add_lazy_command(
    "pipeline",
    "Pipelines: check their files, estimate their schedule, run them on a simulated cluster.",
    _module("pipeline"),
    group=True,
)
app.add_lazy_command(
    "reserve",
    "Capacity bookings: hold quota of a ClusterQueue for a tenant over a time window.",
    _module("reserve"),
    group=True,
)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit status (the console script exits with it; tests call it).

    Usage errors are typer's own (exit 2 with a usage line); a ``BudcoreError`` is printed as
    one clear message per problem, also with exit 2; anything else is a bug and keeps its traceback.
    Ctrl-C and SIGTERM are one line on stderr and exit 130 or 143 (:mod:`budcore.cli.interrupt`):
    typer turns a ``KeyboardInterrupt`` into a silent exit 130, so the interruption is found in
    that exit's chain of causes.
    """
    from budcore.cli import interrupt

    try:
        interrupt.install()  # in the try: a signal right after it is already the command's
        app(args=argv, standalone_mode=True)
    except KeyboardInterrupt as exc:  # raised outside typer's own handling
        return _interrupted(exc)
    except SystemExit as exc:
        stopped = _interruption(exc)
        if stopped is not None:
            return _interrupted(stopped)
        code = exc.code
        if code is None:
            return 0
        return code if isinstance(code, int) else 1
    except Exception as exc:
        from budcore.domain.errors import BudcoreError  # not at start-up: it loads the domain model

        if not isinstance(exc, BudcoreError):
            raise
        report_error(exc)
        return 2
    return 0


def _interruption(exc: BaseException) -> KeyboardInterrupt | None:
    """The ``KeyboardInterrupt`` (or SIGTERM's :class:`~budcore.cli.interrupt.Terminated`) that
    caused ``exc``, if any. A command that dealt with one itself (``raise typer.Exit(130) from
    None`` after its own line) suppressed it: it is not found again."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return seen
        if seen.__cause__ is not None:
            seen = seen.__cause__
        else:
            seen = None if seen.__suppress_context__ else seen.__context__
    return None


def _interrupted(exc: KeyboardInterrupt) -> int:
    """Print the interruption's one line on stderr; its exit status (130 SIGINT, 143 SIGTERM)."""
    import sys

    from budcore.cli import interrupt

    sys.stderr.write(interrupt.message(exc) + "\n")
    sys.stderr.flush()
    return interrupt.exit_status(exc)
