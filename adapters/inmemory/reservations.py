"""The in-memory :class:`~budcore.ports.ReservationStore`, optionally kept in a JSON file.

Without ``path`` the bookings live in a dict guarded by a lock. With ``path`` they live in a JSON
file, so that separate processes (each ``budcore reserve …`` invocation) share them. Every operation
is then one unit of work across processes:

1. take an exclusive ``fcntl.flock`` on the sibling lock file ``<path>.lock`` (never on the data
   file itself, which is replaced, so a lock on it would guard a file nobody reads any more);
2. read and validate the whole file;
3. apply the change in memory (a booking is checked with
   :func:`~budcore.domain.reservation.find_conflict` against the stored bookings of its key);
4. write the new document to a temporary file in the same directory, ``fsync`` it and
   ``os.replace`` it over the data file (atomic: readers see the old or the new file, a crash never
   leaves a half-written one), then release the lock.

So two processes booking the last capacity at once are serialised by the lock: the second reads the
first one's booking and gets a ``ReservationConflictError``. A file that does not parse or does not
hold valid bookings (corrupt, or hand-edited wrongly) is a ``ValidationError`` naming the file, the
JSON path of the bad field (``reservations[2].quantity``) and its line; nothing is written then.

The file format (``version`` 1)::

    {
      "version": 1,
      "reservations": [
        {"name": "llm-eval", "owner": "team-a", "cluster_queue": "gpu", "flavor": "h100",
         "resource": "nvidia.com/gpu", "quantity": 16000, "start": "2026-01-02T09:00:00Z",
         "end": "2026-01-02T17:00:00Z", "job_ids": [], "created_at": "..."}
      ]
    }

``quantity`` is in milli-units (the stored form of :class:`~budcore.domain.reservation.Reservation`);
a missing or empty file holds no bookings. POSIX only (``fcntl``).
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from budcore.domain.errors import AlreadyExistsError, NotFoundError, ValidationError, ValidationErrors
from budcore.domain.reservation import Reservation, ReservationConflictError, find_conflict
from budcore.domain.timeutil import ensure_utc
from budcore.domain.validation import validate_model

from .jsonfile import atomic_write, exclusive, file_error

__all__ = ["FILE_VERSION", "InMemoryReservationStore"]

#: The version of the file format written (and the only one read).
FILE_VERSION = 1

_T = TypeVar("_T")
_DATETIME = ".datetime"


class _StoreFile(BaseModel):
    """The JSON document of a file-backed store."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    reservations: list[Reservation] = []


class InMemoryReservationStore:
    """Capacity bookings in process memory, or in the JSON file ``path`` (see the module doc)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._lock = threading.RLock()
        self._memory: dict[str, Reservation] = {}
        self._path: Path | None = None
        if path is not None:
            self._path = Path(path).expanduser()
            if self._path.is_dir():
                raise ValidationError("is a directory; give a file for the bookings", source=str(self._path))
            if not self._path.parent.is_dir():
                raise ValidationError(
                    f"directory {self._path.parent} does not exist (the file is created, not its directory)",
                    source=str(self._path),
                )
            self._transaction(lambda bookings: None, write_if_missing=True)

    @property
    def path(self) -> Path | None:
        """The JSON file the bookings live in (None: process memory only)."""
        return self._path

    # The port ------------------------------------------------------------------------------
    def book(self, reservation: Reservation, *, capacity: int) -> Reservation:
        def apply(bookings: dict[str, Reservation]) -> Reservation:
            if reservation.name in bookings:
                raise AlreadyExistsError("reservation", reservation.name)
            same_key = [r for r in bookings.values() if r.key == reservation.key]
            conflict = find_conflict(same_key, reservation, capacity)
            if conflict is not None:
                raise ReservationConflictError(conflict)
            bookings[reservation.name] = reservation
            return reservation

        return self._transaction(apply)

    def get(self, name: str) -> Reservation:
        return self._read(lambda bookings: _named(bookings, name))

    def cancel(self, name: str) -> Reservation:
        def apply(bookings: dict[str, Reservation]) -> Reservation:
            found = _named(bookings, name)
            del bookings[name]
            return found

        return self._transaction(apply)

    def list(
        self,
        *,
        cluster_queue: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Reservation]:
        since = None if start is None else ensure_utc(start, "start")
        until = None if end is None else ensure_utc(end, "end")

        def select(bookings: dict[str, Reservation]) -> list[Reservation]:
            chosen = (
                r
                for r in bookings.values()
                if (cluster_queue is None or r.cluster_queue == cluster_queue)
                and (since is None or r.end > since)
                and (until is None or r.start < until)
            )
            return sorted(chosen, key=lambda r: (r.start, r.name))

        return self._read(select)

    # Units of work -------------------------------------------------------------------------
    def _read(self, query: Callable[[dict[str, Reservation]], _T]) -> _T:
        with self._lock:
            if self._path is None:
                return query(self._memory)
            with _exclusive(self._path):
                return query(_load(self._path))

    def _transaction(
        self, change: Callable[[dict[str, Reservation]], _T], *, write_if_missing: bool = False
    ) -> _T:
        """Apply ``change`` to the bookings; store them only when it returns (an error leaves
        everything as it was)."""
        with self._lock:
            if self._path is None:
                bookings = dict(self._memory)
                result = change(bookings)
                self._memory = bookings
                return result
            with _exclusive(self._path):
                missing = not self._path.exists()
                bookings = _load(self._path)
                before = dict(bookings)
                result = change(bookings)
                if bookings != before or (missing and write_if_missing):
                    _write(self._path, bookings.values())
                return result


def _named(bookings: dict[str, Reservation], name: str) -> Reservation:
    found = bookings.get(name)
    if found is None:
        raise NotFoundError("reservation", name)
    return found


# The file --------------------------------------------------------------------------------------
def _os_error(path: Path, action: str, exc: OSError) -> ValidationError:
    return file_error(path, action, exc, "reservations")


def _exclusive(path: Path) -> contextlib.AbstractContextManager[None]:
    return exclusive(path, "reservations")


def _load(path: Path) -> dict[str, Reservation]:
    """The bookings of the file by name (none when it is missing or empty)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError as exc:
        raise ValidationError(f"not UTF-8 text: {exc.reason}", source=str(path)) from None
    except OSError as exc:
        raise _os_error(path, "read", exc) from None
    if not text.strip():
        return {}
    source = str(path)
    duplicated = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicated
        keys = [k for k, _ in items]
        duplicated = duplicated or len(set(keys)) != len(keys)
        return dict(items)

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"malformed JSON: {exc.msg}", source=source, line=exc.lineno) from None
    except RecursionError:
        raise ValidationError("malformed JSON: nested too deeply", source=source) from None
    located: list[_JsonIndex | None] = []

    def index() -> _JsonIndex | None:
        """Where each field is, worked out only for an error (None: too deeply nested to walk)."""
        if not located:
            try:
                located.append(_JsonIndex(text))
            except RecursionError:
                located.append(None)
        return located[0]

    def line_of(field: str) -> int | None:
        found = index()
        return None if found is None else found.line_of(field)

    if duplicated:
        found = index()
        where, line, first = found.duplicates[0] if found and found.duplicates else ("", None, None)
        at = f" (first at line {first})" if first else ""
        raise ValidationError(f"duplicate key{at}", path=where, source=source, line=line)
    if not isinstance(data, dict):
        raise ValidationError(
            f"expected a JSON object with 'version' and 'reservations', got {type(data).__name__}",
            source=source,
            line=1,
        )

    try:
        document = validate_model(_StoreFile, data, source=source, line_of=line_of)
    except ValidationErrors as exc:
        fixed = [_field_error(e, line_of) for e in exc.errors]
        raise (fixed[0] if len(fixed) == 1 else ValidationErrors(fixed)) from None
    bookings: dict[str, Reservation] = {}
    for i, reservation in enumerate(document.reservations):
        if reservation.name in bookings:
            field = f"reservations[{i}].name"
            raise ValidationError(
                f"a second reservation named {reservation.name!r}",
                path=field,
                source=source,
                line=line_of(field),
            )
        bookings[reservation.name] = reservation
    return bookings


def _field_error(error: ValidationError, line_of: Callable[[str], int | None]) -> ValidationError:
    """``error`` about the field itself: the domain's time checks name their argument
    (``reservations[0].start.datetime``), which is no field of the file."""
    if not error.path.endswith(_DATETIME):
        return error
    field = error.path[: -len(_DATETIME)]
    return ValidationError(error.message, path=field, source=error.source, line=line_of(field))


def _write(path: Path, bookings: Iterable[Reservation]) -> None:
    """Replace ``path`` atomically with a document holding ``bookings`` (by start, then name)."""
    ordered = sorted(bookings, key=lambda r: (r.start, r.name))
    document = {"version": FILE_VERSION, "reservations": [r.model_dump(mode="json") for r in ordered]}
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    atomic_write(path, text, "reservations")


# Where each JSON field is: for messages about a hand-edited file ------------------------------
_WHITESPACE = re.compile(r"[ \t\n\r]*")


class _JsonIndex:
    """The 1-based line of every field path (``reservations[0].start``) of a valid JSON text, and
    the keys that appear twice in one object (``(path, line, line of the first)``)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._newlines = [i for i, ch in enumerate(text) if ch == "\n"]
        self._decoder = json.JSONDecoder()
        self.lines: dict[str, int] = {}
        self.duplicates: list[tuple[str, int, int]] = []
        self._value(0, "")

    def line_of(self, path: str) -> int | None:
        """The line of ``path``, else of its nearest ancestor present (a missing field: its object)."""
        current = path
        while current:
            line = self.lines.get(current)
            if line is not None:
                return line
            cut = max(current.rfind("."), current.rfind("["))
            current = current[:cut] if cut > 0 else ""
        return self.lines.get("", 1)

    def _line(self, offset: int) -> int:
        return bisect.bisect_left(self._newlines, offset) + 1

    def _skip(self, offset: int) -> int:
        match = _WHITESPACE.match(self._text, offset)
        assert match is not None  # the pattern matches the empty string
        return match.end()

    def _value(self, offset: int, path: str) -> int:
        """Index the value at ``offset`` (under ``path``); return the offset after it."""
        text = self._text
        offset = self._skip(offset)
        self.lines.setdefault(path, self._line(offset))
        if text[offset] == "{":
            offset = self._skip(offset + 1)
            seen: dict[str, int] = {}
            while text[offset] != "}":
                key, after = self._decoder.raw_decode(text, offset)  # a key is a JSON string
                child = f"{path}.{key}" if path else key
                line = self._line(offset)
                if key in seen:
                    self.duplicates.append((child, line, seen[key]))
                else:
                    seen[key] = line
                    self.lines[child] = line
                offset = self._value(self._skip(after) + 1, child)  # past the ':'
                offset = self._skip(offset)
                if text[offset] == ",":
                    offset = self._skip(offset + 1)
            return offset + 1
        if text[offset] == "[":
            offset = self._skip(offset + 1)
            index = 0
            while text[offset] != "]":
                offset = self._skip(self._value(offset, f"{path}[{index}]"))
                index += 1
                if text[offset] == ",":
                    offset = self._skip(offset + 1)
            return offset + 1
        _, end = self._decoder.raw_decode(text, offset)
        return int(end)
