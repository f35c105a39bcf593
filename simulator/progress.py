"""Progress of long commands on stderr: a rich bar on a terminal, plain lines on request, or nothing.

``simulate`` shows simulated time against the horizon, jobs done and the wall-clock time left;
``plan`` and ``compare`` show points (or runs) done out of the total. Progress goes to stderr so
stdout keeps only the command's output (a table, or JSON with ``--format json``).

Three modes (:func:`progress_mode`): ``auto`` (the default) draws a bar only when stderr is a
terminal, since rich cannot redraw a bar in a pipe or a log; ``on`` (``--progress``) draws the
bar on a terminal and otherwise prints plain lines (a CI log can follow a long plan); ``off``
(``--quiet``) prints none. The engine calls the simulation's progress function on every usage
sample and every 1,000 finished jobs, never per event, so a run without progress pays one
``None`` check per sample.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["Mode", "points_progress", "progress_mode", "sim_time", "simulation_progress"]

Mode = Literal["auto", "on", "off"]
PROGRESS_HELP = (
    "Progress on stderr: --progress draws it even when stderr is not a terminal (plain lines "
    "there), --quiet never; by default a bar only on a terminal."
)
QUIET_HELP = "No progress on stderr, even with --progress (the command's output is unchanged)."
# Plain progress lines of a simulation are at least this many wall seconds apart.
PLAIN_EVERY_S = 2.0


def progress_mode(*, quiet: bool, progress: bool) -> Mode:
    """``--quiet`` wins over ``--progress``: a script that silences a command means it."""
    if quiet:
        return "off"
    return "on" if progress else "auto"


def sim_time(seconds: float) -> str:
    """Simulated time at a readable scale: ``45s``, ``12.5m``, ``3.2h``, ``4.1d``."""
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _console() -> Console:
    from budcore.cli.output import plain_console

    return plain_console(stderr=True, soft_wrap=True)


@contextmanager
def simulation_progress(
    name: str, horizon_s: float | None, mode: Mode, console: Console | None = None
) -> Iterator[Callable[[float, int], None] | None]:
    """The engine's progress function for one run (``None`` when nothing is shown), drawn on
    ``console`` (default: stderr)."""
    console = console or _console()
    if mode == "off" or (mode == "auto" and not console.is_terminal):
        yield None
        return
    if not console.is_terminal:
        yield _plain_simulation(console, name, horizon_s)
        return
    with Progress(
        TextColumn("[bold]simulating[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.fields[sim]} simulated, {task.fields[jobs]} jobs done"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        # The description goes through rich markup (the column's "[bold]"): the name must not.
        task = bar.add_task(escape(name), total=horizon_s, jobs=0, sim="0s")

        def report(sim_s: float, finished: int) -> None:
            bar.update(task, completed=sim_s if horizon_s else None, jobs=finished, sim=sim_time(sim_s))

        yield report


def _plain_simulation(console: Console, name: str, horizon_s: float | None) -> Callable[[float, int], None]:
    started = time.monotonic()
    last = [-PLAIN_EVERY_S]

    def report(sim_s: float, finished: int) -> None:
        wall = time.monotonic() - started
        if wall - last[0] < PLAIN_EVERY_S:
            return
        last[0] = wall
        of = share = ""
        if horizon_s:
            part = min(1.0, sim_s / horizon_s)
            eta = f", ETA {wall * (1 - part) / part:.0f}s" if part > 0 else ""
            of, share = f" of {sim_time(horizon_s)}", f" ({part:.0%}{eta})"
        line = f"simulating {name}: {sim_time(sim_s)}{of} simulated{share}, {finished} jobs done"
        console.print(line, highlight=False)

    return report


@contextmanager
def points_progress(what: str, total: int, mode: Mode) -> Iterator[Callable[[int, int], None] | None]:
    """A ``progress(done, total)`` function for a plan's points or a comparison's runs."""
    console = _console()
    if mode == "off" or (mode == "auto" and not console.is_terminal):
        yield None
        return
    if not console.is_terminal:

        def line(done: int, of: int) -> None:
            console.print(f"{what}: {done}/{of} done", highlight=False)

        yield line
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(escape(what), total=total)

        def update(done: int, of: int) -> None:
            bar.update(task, completed=done, total=of)

        yield update
