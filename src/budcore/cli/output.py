"""What every command shares about printing: ``--format`` choices, markup-free consoles, tables.

Commands print user-supplied text (scenario and node names, option values, messages that quote
them, pydantic's ``[type=...]`` details). Rich would read ``[red]`` or ``[type=x]`` as markup and
``:smile:`` as an emoji code and silently drop or replace them, so the consoles made here never
interpret markup or emoji: styling is applied explicitly with :class:`rich.text.Text` instead.

Tables never cut a key column (a slug, a node name, an amount of money): :func:`key_column` marks
one, and :func:`print_table` keeps key columns on one line by narrowing the others, folds them onto
more lines when even that does not fit, and never shortens a cell with "…". ``--wide`` prints every
row on one line whatever the terminal's width; ``--format csv`` and ``json`` print the same rows
for scripts (:data:`TABLE_FORMATS`). Sizes in bytes are printed by :func:`human_bytes`
(``1.97 TiB``).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Column, Table

#: The values of every ``--format`` option, in the order the help text lists them.
OUTPUT_FORMATS: Final = ("table", "json")
FORMAT_HELP: Final = "Output format: 'table' (for people) or 'json' (for scripts)."
#: ``--format`` of the commands that print a table: the same rows as CSV too.
TABLE_FORMATS: Final = ("table", "json", "csv")
TABLE_FORMAT_HELP: Final = "Output format: 'table' (for people), 'json' or 'csv' (for scripts)."
WIDE_HELP: Final = "Print each table row on one line, however wide (default: wrap to the terminal)."

_MIN_CELL: Final = 6  # the narrowest a non-key column is made (padding included) before keys fold


def output_format(value: str, formats: Sequence[str] = OUTPUT_FORMATS) -> str:
    """Check a ``--format`` value; one definition so no command accepts what another rejects.

    Call it before any work, so a typo costs nothing. A ``ValidationError`` becomes the CLI's usual
    ``error: --format: ...`` line with exit status 2.
    """
    if value not in formats:
        from budcore.domain.errors import ValidationError

        choices = " or ".join(formats) if len(formats) == 2 else f"{', '.join(formats[:-1])} or {formats[-1]}"
        raise ValidationError(f"unknown format {value!r}; use {choices}", path="--format")
    return value


def plain_console(
    *,
    stderr: bool = False,
    quiet: bool = False,
    width: int | None = None,
    soft_wrap: bool = False,
    highlight: bool = True,
    file: IO[str] | None = None,
) -> Console:
    """A console that prints strings verbatim (no markup, no emoji codes); see the module doc."""
    from rich.console import Console

    return Console(
        stderr=stderr,
        quiet=quiet,
        width=width,
        soft_wrap=soft_wrap,
        highlight=highlight,
        file=file,
        markup=False,
        emoji=False,
    )


def report_width(default: int) -> int | None:
    """The terminal's width on a terminal; ``default`` columns when output is piped or captured.

    Piped output has no width of its own, and rich's fallback of 80 columns would wrap tables.
    """
    from rich.console import Console

    return None if Console().is_terminal else default


# Tables ------------------------------------------------------------------------------------------
def key_column(table: Table, header: str, **options: Any) -> None:
    """Add a key column to ``table``: one :func:`print_table` never wraps unless nothing else can give."""
    table.add_column(header, no_wrap=True, overflow="fold", **options)


def print_table(table: Table, *, wide: bool = False, console: Console | None = None) -> None:
    """Print ``table`` without cutting any cell (see the module doc).

    Columns added with :func:`key_column` stay on one line as long as the other columns can be
    narrowed to make room; every column folds (wraps mid-word) rather than ending in "…". With
    ``wide`` the table is printed at its natural width.
    """
    from rich.measure import Measurement

    console = console or plain_console()
    for column in table.columns:
        if column.overflow == "ellipsis":
            column.overflow = "fold"
    unlimited = console.options.update_width(1 << 20)
    natural = Measurement.get(console, unlimited, table).maximum
    if wide:
        if natural > console.width:
            console = plain_console(width=natural, file=console.file, quiet=console.quiet)
    elif natural > console.width:
        _fit(table, console, natural)
    console.print(table)


def _column_width(console: Console, column: Column, header: bool) -> int:
    from rich.measure import Measurement

    options = console.options.update_width(1 << 20)
    cells = [*column.cells, column.header] if header else list(column.cells)
    return max((Measurement.get(console, options, cell).maximum for cell in cells), default=1)


def _fit(table: Table, console: Console, natural: int) -> None:
    """Narrow the non-key columns so the key columns fit whole; fold the keys that cannot."""
    padding = 2  # rich's default (0, 1) cell padding
    widths = [_column_width(console, c, table.show_header) + padding for c in table.columns]
    extra = natural - sum(widths)  # borders
    keys = [i for i, c in enumerate(table.columns) if c.no_wrap]
    while keys:  # the first keys matter most (a row's name): fold the last ones first
        others = [i for i in range(len(widths)) if i not in keys]
        room = console.width - extra - sum(widths[i] for i in keys)
        if room >= sum(min(widths[i], _MIN_CELL) for i in others):
            break
        table.columns[keys.pop()].no_wrap = False  # wrapped onto more lines, never cut
    else:
        return
    # Water-filling: the narrowest columns keep their width, the rest share what is left.
    for position, i in enumerate(sorted(others, key=lambda j: widths[j])):
        share = max(_MIN_CELL, room // (len(others) - position))
        given = min(widths[i], share)
        table.columns[i].width = max(1, given - padding)
        room -= given


def write_csv(rows: Iterable[Mapping[str, Any]], fields: Sequence[str], file: IO[str] | None = None) -> None:
    """Rows as CSV with a header line (``None`` is an empty cell, a list is joined with ``;``, a
    mapping is JSON)."""
    writer = csv.DictWriter(
        file or sys.stdout, fieldnames=list(fields), lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, default=str, sort_keys=True)
    return value


_UNITS: Final = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human_bytes(value: float | None) -> str:
    """A size for people, in binary units with three significant digits: ``1.97 TiB``, ``384 GiB``.

    ``None`` is ``-``. Trailing zeros go (``2 TiB``, ``80 GiB``); below 10 two decimals remain,
    below 100 one, from 100 none (``1008 GiB``: the unit changes at 1024).
    """
    if value is None:
        return "-"
    size = float(value)
    unit = 0
    while abs(size) >= 1024 and unit < len(_UNITS) - 1:
        size /= 1024
        unit += 1
    decimals = 2 if abs(size) < 10 else 1 if abs(size) < 100 else 0
    text = f"{size:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text == "1024" and unit < len(_UNITS) - 1:  # 1023.6 rounds up into the next unit
        text, unit = "1", unit + 1
    return f"{text} {_UNITS[unit]}"


def human_gib(value: float | None) -> str:
    """A size given in GiB (``80`` → ``80 GiB``, ``2015.5`` → ``1.97 TiB``), as :func:`human_bytes`."""
    return human_bytes(None if value is None else value * 2**30)
