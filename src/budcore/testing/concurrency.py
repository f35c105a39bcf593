"""Racing threads for the conformance kits: several handles on one backend, released at once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["race"]

H = TypeVar("H")


def race(handles: Sequence[H], target: Callable[[H, int], None], *, what: str = "racing") -> None:
    """Run ``target(handles[i], i)`` in one thread per handle, all released by one barrier, and
    re-raise the first failure; a thread still running after two minutes is a deadlock."""
    n = len(handles)
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            barrier.wait(timeout=60)
            target(handles[i], i)
        except BaseException as exc:  # re-raised in the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), f"a {what} thread is stuck (deadlock?)"
    if errors:
        raise errors[0]
