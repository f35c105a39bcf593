"""A JSON file that one in-memory store keeps between processes: locked, replaced atomically.

The in-memory reservation and pipeline stores can keep their content in a file (``path=``) so the
next ``budcore`` command or a restarted service continues from it. Both need the same three
things, which live here: an exclusive ``flock`` on a sibling ``<file>.lock`` (not on the data
file, which is replaced), an atomic replacement (a temporary file in the same directory,
``fsync``-ed, ``os.replace``-d over the old one, then the directory ``fsync``-ed: a crash leaves
the old or the new file, never half of one, and the file keeps its mode), and a cheap *stamp* that
tells whether someone else replaced the file since it was read. Errors are budcore
``ValidationError``s naming the file and what could not be done with it. POSIX only (``fcntl``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from budcore.domain.errors import ValidationError

__all__ = ["Stamp", "atomic_write", "exclusive", "file_error", "lock_path", "stamp"]

Stamp = tuple[int, int, int, int]


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def file_error(path: Path, action: str, exc: OSError, what: str) -> ValidationError:
    """``cannot <action> the <what> file: <reason>``, located at ``path``."""
    return ValidationError(f"cannot {action} the {what} file: {exc.strerror or exc}", source=str(path))


@contextlib.contextmanager
def exclusive(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``'s sibling lock file (blocks until it is free)."""
    lock = lock_path(path)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise file_error(lock, "open the lock file of", exc, what) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def stamp(path: Path, what: str) -> Stamp | None:
    """What identifies the file's current content cheaply (an ``os.replace`` changes the inode);
    ``None`` when there is no file."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise file_error(path, "inspect", exc, what) from None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def atomic_write(path: Path, text: str, what: str) -> Stamp | None:
    """Replace ``path`` atomically with ``text`` (keeping its mode); the new file's stamp."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644
    except OSError as exc:
        raise file_error(path, "inspect", exc, what) from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise file_error(path, "write next to", exc, what) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise file_error(path, "write", exc, what) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_directory(path.parent)
    return stamp(path, what)


def _sync_directory(directory: Path) -> None:
    """Make the rename durable (best effort: not every filesystem lets a directory be fsynced)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # a filesystem that cannot fsync a directory
            os.fsync(fd)
    finally:
        os.close(fd)
