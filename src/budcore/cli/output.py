"""What every command shares about printing: the ``--format`` choices and markup-free consoles.

Commands print user-supplied text (scenario and node names, option values, messages that quote
them, pydantic's ``[type=...]`` details). Rich would read ``[red]`` or ``[type=x]`` as markup and
``:smile:`` as an emoji code and silently drop or replace them, so the consoles made here never
interpret markup or emoji: styling is applied explicitly with :class:`rich.text.Text` instead.
"""

from __future__ import annotations

from typing import IO, Final

from rich.console import Console

from budcore.domain.errors import ValidationError

#: The values of every ``--format`` option, in the order the help text lists them.
OUTPUT_FORMATS: Final = ("table", "json")
FORMAT_HELP: Final = "Output format: 'table' (for people) or 'json' (for scripts)."


def output_format(value: str) -> str:
    """Check a ``--format`` value; one definition so no command accepts what another rejects.

    Call it before any work, so a typo costs nothing. A ``ValidationError`` becomes the CLI's usual
    ``error: --format: ...`` line with exit status 2.
    """
    if value not in OUTPUT_FORMATS:
        raise ValidationError(f"unknown format {value!r}; use {' or '.join(OUTPUT_FORMATS)}", path="--format")
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
    return None if Console().is_terminal else default
