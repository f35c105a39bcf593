"""Usage files: metered :class:`UsageRecord` s on disk, as a simulation writes them.

Why a file format at all: ``budcore cost report`` must work over a simulation's output exactly as
over the PostgreSQL store, and finance tools read CSV. Two formats, chosen by the suffix:

``.csv``
    A header of the record's field names in declaration order, then one record a line. Datetimes
    are ISO 8601 with their offset, booleans ``true``/``false``, and an empty cell is "not set":
    ``None`` for the optional fields, the default for fields that have one (``mode``,
    ``replicas``, ``priority``, ``borrowed``); a required field left empty is an error. Columns
    may come in any order; an unknown column is an error (a typo would silently drop data).
``.jsonl``
    One ``UsageRecord.model_dump(mode="json")`` object a line; blank lines are skipped.

A bad row is a :class:`ValidationError` naming ``file:line`` and the field; every bad row of a file
is reported in one go (up to :data:`MAX_PROBLEMS`), so a user fixes a file in one pass.
:class:`FileUsageLog` serves a file through the :class:`budcore.ports.spend.UsageLog` port (the
``file`` usage log of :mod:`budcore.plugins.builtin`).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from budcore.cost.metering import UsageRecord
from budcore.domain import jsontext
from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.domain.validation import validate_model

#: The record's fields, in declaration order: the CSV header.
FIELDS: Final = tuple(UsageRecord.model_fields)
#: How many bad rows one error lists before it stops counting.
MAX_PROBLEMS: Final = 20
SUFFIXES: Final = (".csv", ".jsonl")

_BOOLEANS: Final = frozenset(
    name for name, info in UsageRecord.model_fields.items() if info.annotation is bool
)


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValidationError(f"a usage file must end in .csv or .jsonl, got {path.name!r}", source=str(path))
    return suffix


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def write_usage(path: str | Path, records: Iterable[UsageRecord]) -> int:
    """Write ``records`` to ``path`` (``.csv`` or ``.jsonl``, by suffix); returns how many.

    Written to a temporary file next to ``path`` and renamed over it, so a reader never sees half
    a file.
    """
    target = Path(path)
    suffix = _format(target)
    partial = target.with_name(f".{target.name}.partial")
    count = 0
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            if suffix == ".csv":
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(FIELDS)
                for record in records:
                    writer.writerow([_cell(getattr(record, name)) for name in FIELDS])
                    count += 1
            else:
                for record in records:
                    handle.write(json.dumps(record.model_dump(mode="json"), separators=(",", ":")))
                    handle.write("\n")
                    count += 1
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ValidationError(f"cannot write usage file: {exc.strerror}", source=str(target)) from None
    except BaseException:  # a failing record source: leave no partial file behind
        partial.unlink(missing_ok=True)
        raise
    return count


class _Problems:
    """Bad rows of one file, collected so one error lists them all (up to MAX_PROBLEMS)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[ValidationError] = []
        self.more = 0

    def add(self, message: str, *, line: int, path: str = "") -> None:
        if len(self.errors) < MAX_PROBLEMS:
            self.errors.append(ValidationError(message, path=path, source=self.source, line=line))
        else:
            self.more += 1

    def extend(self, exc: ValidationError, line: int) -> None:
        for error in exc.errors if isinstance(exc, ValidationErrors) else [exc]:
            self.add(error.message, line=line, path=error.path or _field_of(error.message))

    def raise_any(self) -> None:
        if not self.errors:
            return
        errors = list(self.errors)
        if self.more:
            errors.append(ValidationError(f"... and {self.more} more problem(s)", source=self.source))
        raise errors[0] if len(errors) == 1 else ValidationErrors(errors)


def _field_of(message: str) -> str:
    """The field a record-level check is about (its checks name ``lender`` or ``end``)."""
    return "lender" if message.startswith("lender") else "end"


def _record(data: dict[str, Any], problems: _Problems, line: int) -> UsageRecord | None:
    try:
        return validate_model(UsageRecord, data)
    except ValidationError as exc:
        problems.extend(exc, line)
        return None


def _csv_rows(handle: Iterable[str], problems: _Problems) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        problems.add("empty file: expected a header of UsageRecord fields", line=1)
        return
    names = [name.strip() for name in header]
    unknown = [name for name in names if name not in FIELDS]
    if unknown:
        problems.add(
            f"unknown column(s) {', '.join(map(repr, unknown))}; columns: {', '.join(FIELDS)}", line=1
        )
        return
    if len(set(names)) != len(names):
        problems.add("a column appears twice in the header", line=1)
        return
    line = reader.line_num + 1
    for row in reader:
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            problems.add(f"expected {len(names)} cells, got {len(row)}", line=start)
            continue
        data: dict[str, Any] = {}
        for name, cell in zip(names, row, strict=True):
            if cell == "":
                continue  # not set: None, or the field's default
            if name in _BOOLEANS:
                if cell.strip().lower() not in ("true", "false"):
                    problems.add(f"expected true or false, got {cell!r}", line=start, path=name)
                    break
                data[name] = cell.strip().lower() == "true"
            else:
                data[name] = cell
        else:
            yield start, data


def _jsonl_rows(handle: Iterable[str], problems: _Problems) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, text in enumerate(handle, 1):
        if not text.strip():
            continue
        try:
            data = jsontext.loads(text)
        except json.JSONDecodeError as exc:
            problems.add(f"invalid JSON: {exc.msg} (column {exc.colno})", line=line)
            continue
        if not isinstance(data, dict):
            problems.add(f"expected a JSON object, got {type(data).__name__}", line=line)
            continue
        yield line, data


def read_usage(path: str | Path) -> list[UsageRecord]:
    """The records of a ``.csv`` or ``.jsonl`` usage file, in file order (see the module doc)."""
    source = Path(path)
    suffix = _format(source)
    problems = _Problems(str(source))
    records: list[UsageRecord] = []
    try:
        with source.open(encoding="utf-8", newline="") as handle:
            rows = _csv_rows(handle, problems) if suffix == ".csv" else _jsonl_rows(handle, problems)
            for line, data in rows:
                record = _record(data, problems, line)
                if record is not None:
                    records.append(record)
    except OSError as exc:
        raise ValidationError(f"cannot read usage file: {exc.strerror}", source=str(source)) from None
    except UnicodeDecodeError as exc:
        raise ValidationError(f"not UTF-8 text: {exc.reason}", source=str(source)) from None
    problems.raise_any()
    return records


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError("must be timezone-aware (UTC)", path=name)
    return value


class FileUsageLog:
    """A usage file as a :class:`budcore.ports.spend.UsageLog` (read-only).

    The file is read when asked and read again only when it changed (size or modification time),
    so a report over a simulation that is still writing sees its latest output.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        _format(self.path)
        self._cache: tuple[tuple[int, int], list[UsageRecord]] | None = None

    def records(self) -> list[UsageRecord]:
        """Every record of the file, in file order."""
        try:
            stat = self.path.stat()
        except OSError as exc:
            raise ValidationError(f"cannot read usage file: {exc.strerror}", source=str(self.path)) from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if self._cache is None or self._cache[0] != stamp:
            self._cache = (stamp, read_usage(self.path))
        return self._cache[1]

    def usage(self, start: datetime, end: datetime, *, tenant: str | None = None) -> list[UsageRecord]:
        """Records overlapping ``[start, end)`` (of ``tenant`` when given), clipped to it, in
        (start, job id) order."""
        _aware(start, "start")
        _aware(end, "end")
        out = []
        for record in self.records():
            if tenant is not None and record.tenant != tenant:
                continue
            part = record.clipped(start, end)
            if part is not None:
                out.append(part)
        out.sort(key=lambda r: (r.start, r.job_id))
        return out

    def __repr__(self) -> str:
        return f"FileUsageLog({str(self.path)!r})"


__all__ = ["FIELDS", "MAX_PROBLEMS", "FileUsageLog", "read_usage", "write_usage"]
