"""Cron schedules: the classic five fields (or ``@daily``-style aliases) in an IANA timezone.

Validated with croniter when a pipeline is read (so a bad expression is a file:line error, not a
surprise at 2 AM) and evaluated in the trigger's timezone, so "0 2 * * *" in Europe/Berlin means
02:00 Berlin time across daylight-saving changes.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from budcore.domain.errors import ValidationError
from budcore.domain.timeutil import ensure_utc

__all__ = ["check_cron", "next_fire"]


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown timezone {timezone!r}", path="trigger.timezone") from None


def check_cron(expression: str, timezone: str = "UTC") -> None:
    """Raise ``ValidationError`` (path ``trigger.cron``) unless ``expression`` is a valid cron schedule."""
    from croniter import croniter

    _zone(timezone)
    fields = expression.split()
    if not expression.startswith("@") and len(fields) != 5:
        raise ValidationError(
            f"cron expression {expression!r} has {len(fields)} fields; expected 5 "
            "(minute hour day-of-month month day-of-week)",
            path="trigger.cron",
        )
    if not croniter.is_valid(expression):
        raise ValidationError(f"invalid cron expression {expression!r}", path="trigger.cron")


def next_fire(expression: str, after: datetime, timezone: str = "UTC") -> datetime:
    """The first instant strictly after ``after`` at which the schedule fires (aware UTC)."""
    from croniter import croniter

    check_cron(expression, timezone)
    local = ensure_utc(after, "after").astimezone(_zone(timezone))
    fire: datetime = croniter(expression, local).get_next(datetime)
    return ensure_utc(fire.astimezone(ZoneInfo("UTC")), "fire")
