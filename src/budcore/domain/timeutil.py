"""Time is timezone-aware UTC everywhere inside budcore.

A naive datetime is ambiguous (whose local time?), so it is rejected at the boundary rather
than guessed at. Durations are ``timedelta`` or seconds, never bare numbers of unclear unit.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from budcore.domain.errors import ValidationError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC)


def ensure_utc(value: datetime, field: str = "datetime") -> datetime:
    """Return ``value`` converted to UTC; a naive datetime is a validation error naming ``field``."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValidationError(
            "naive datetime: give a timezone (e.g. '2026-01-01T00:00:00Z')",
            path=field,
        )
    return value.astimezone(UTC)


def seconds(value: timedelta | float | int) -> float:
    """A duration in seconds from a ``timedelta`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)
