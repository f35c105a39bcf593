"""Ctrl-C and SIGTERM: one line on stderr and exit 130 or 143, never a traceback.

A person who stops a command wants to know what was kept, not where Python was. So SIGTERM is
turned into an exception of the same family as Ctrl-C's (:class:`Terminated`, a
``KeyboardInterrupt``), which unwinds the command like Ctrl-C does: ``finally`` blocks run,
``except Exception`` does not swallow it. A command that kept something raises
:class:`Interrupted` with the line to print ("interrupted (SIGINT): 12 of 40 points done, their runs
kept in out/points.jsonl; resume with --resume; ..."); :func:`exit_status` and :func:`message`
give the status and line for any of them. (Worker processes of a sweep ignore SIGINT themselves:
``budcore_simulator.sweep``.)

Exit status follows the shell convention, 128 + the signal's number: 130 for SIGINT, 143 for
SIGTERM. This module imports only the standard library: it is installed before anything else
the command line loads, so an interruption during start-up is handled too.

A command that can stop gracefully (``simulate`` ends its simulation at the current simulated
time and still writes its outputs) takes the signals for the duration with :func:`graceful`: the
first signal calls its ``stop`` function, a second one interrupts at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = [
    "Interrupted",
    "Terminated",
    "during_start_up",
    "exit_status",
    "graceful",
    "install",
    "message",
    "signal_name",
    "signal_number",
]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program was (as Python raises ``KeyboardInterrupt`` for SIGINT)."""

    signum = signal.SIGTERM


class Interrupted(KeyboardInterrupt):
    """An interruption a command has dealt with: ``line`` says what it kept, ``signum`` which signal."""

    def __init__(self, line: str, signum: int = signal.SIGINT) -> None:
        super().__init__(line)
        self.line = line
        self.signum = signum


def signal_number(exc: BaseException) -> int:
    """The signal behind an interruption: SIGTERM for :class:`Terminated`, else SIGINT."""
    return int(getattr(exc, "signum", signal.SIGINT))


def signal_name(signum: int) -> str:
    return "SIGTERM" if signum == signal.SIGTERM else "SIGINT"


def exit_status(exc: BaseException) -> int:
    """128 + the signal's number: 130 (SIGINT) or 143 (SIGTERM)."""
    return 128 + signal_number(exc)


def message(exc: BaseException) -> str:
    """The one line to print for ``exc``: the command's own, or ``interrupted (SIGINT)``."""
    if isinstance(exc, Interrupted):
        return exc.line
    return f"interrupted ({signal_name(signal_number(exc))})"


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def install() -> None:
    """SIGTERM raises :class:`Terminated` (SIGINT already raises ``KeyboardInterrupt``).

    Only the main thread can take signals; elsewhere (a test calling ``main`` from a thread)
    nothing changes. A SIGINT that is ignored (a background job of a non-interactive shell)
    stays ignored, as Python leaves it.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def during_start_up() -> None:
    """Until :func:`install` runs: SIGINT or SIGTERM prints its line and exits at once.

    For the console script only (nothing has been written yet): between its imports and the call
    of ``main`` a ``KeyboardInterrupt`` would be raised in the generated wrapper, outside any
    ``try``, as a traceback.
    """
    import os

    def leave(signum: int, frame: FrameType | None) -> None:
        os.write(2, f"interrupted ({signal_name(signum)})\n".encode())
        os._exit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(s) is not signal.SIG_IGN:
                signal.signal(s, leave)


@contextmanager
def graceful(stop: Callable[[], None]) -> Iterator[Callable[[], int | None]]:
    """Within the block the first SIGINT or SIGTERM calls ``stop()`` instead of raising; a second
    one raises (``KeyboardInterrupt`` or :class:`Terminated`) at once.

    Yields a function returning the signal that asked to stop (``None`` if none did), so the
    command can say it was interrupted and exit with 130 or 143. The previous handlers come back
    when the block ends. Outside the main thread nothing is intercepted.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if received:
            if signum == signal.SIGTERM:
                raise Terminated()
            raise KeyboardInterrupt()
        received.append(signum)
        stop()

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, handler)
    try:
        yield lambda: received[0] if received else None
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
