"""``budcore``: the command-line entry point.

Every ``BudcoreError`` becomes one clear message on stderr and exit status 2 (usage-style error);
unexpected exceptions keep their traceback, because those are bugs to report.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from budcore import __version__
from budcore.cli.output import FORMAT_HELP, output_format, plain_console
from budcore.domain.errors import BudcoreError, ValidationErrors

app = typer.Typer(
    name="budcore",
    help="Scheduling core for heterogeneous GPU fleets: admission, preemption, simulation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = plain_console()
err_console = plain_console(stderr=True, soft_wrap=True)  # never wrap: file:line must stay greppable


def _version(value: bool) -> None:
    if value:
        console.print(f"budcore {__version__}")
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
    fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "table",
) -> None:
    """List registered adapters, the package each came from, and plugins that failed to load."""
    from budcore.plugins import default_registry

    output_format(fmt)

    registry = default_registry()
    registrations = registry.registrations()
    failures = registry.failures()
    if fmt == "json":
        rows: list[dict[str, str | None]] = [
            {"kind": r.kind, "name": r.name, "origin": r.origin} for r in registrations
        ]
        rows += [
            {"kind": None, "name": f.plugin, "origin": f.origin, "error": f.describe()} for f in failures
        ]
        console.print_json(json.dumps(rows))
        return
    table = Table(title="budcore plugins")
    table.add_column("kind")
    table.add_column("name")
    table.add_column("from")
    table.add_column("status")
    for r in registrations:
        table.add_row(r.kind, r.name, r.origin, "ok")
    for f in failures:
        hint = f" ({f.hint})" if f.hint else ""
        table.add_row("-", f.plugin, f.origin, Text(f"error: {f.message}{hint}", style="red"))
    console.print(table)


_ERROR = ("error:", "bold red")


def report_error(exc: BudcoreError) -> None:
    """Print a budcore error for a person: one line per problem.

    Messages quote user input verbatim (``bad values '[red]1'``, pydantic's ``[type=...]``), so
    they are printed as plain text; only the ``error:`` prefix is styled.
    """
    if isinstance(exc, ValidationErrors):
        err_console.print(Text.assemble(_ERROR, f" {len(exc.errors)} problem(s)"), highlight=False)
        for error in exc.errors:
            err_console.print(f"  {error}", highlight=False)
    else:
        err_console.print(Text.assemble(_ERROR, f" {exc}"), highlight=False)


_registered = False


def _register_subcommands() -> None:
    """Attach the command groups that live in their own modules (once per process)."""
    global _registered
    if _registered:
        return
    from budcore.cli import cost, demo, hardware, pipeline, reserve, validate
    from budcore.plugins import default_registry

    cost.register(app)
    demo.register(app)
    hardware.register(app)
    pipeline.register(app)
    reserve.register(app)
    validate.register(app)
    default_registry().register_commands(app)
    _registered = True


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit status (the console script exits with it; tests call it).

    Usage errors are typer's own (exit 2 with a usage line); a ``BudcoreError`` is printed as
    one clear message per problem, also with exit 2; anything else is a bug and keeps its traceback.
    """
    _register_subcommands()
    try:
        app(args=argv, standalone_mode=True)
    except BudcoreError as exc:
        report_error(exc)
        return 2
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        return code if isinstance(code, int) else 1
    return 0
