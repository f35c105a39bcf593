"""Time windows: "run this only between 22:00 and 06:00, Berlin time".

A :class:`TimeWindow` is a daily interval of *wall-clock* time in a named IANA timezone. An
instant is inside the window when its local wall time ``t`` satisfies ``start <= t < end``, or,
for a window that wraps midnight (``start > end``), ``t >= start or t < end``. Defining the window
by wall time is what a person means by "22:00 to 06:00" and makes it correct across daylight
saving changes by construction:

- on the night clocks go forward, a window 22:00–06:00 is one hour shorter (there is no 02:30);
  a window starting at a wall time that does not exist that day (02:30) opens at the first
  instant whose wall time is past it (03:00 local);
- on the night clocks go back, wall times in the repeated hour happen twice and the window is
  open in both passes: 22:00–06:00 is one hour longer, and a window that ends inside the repeated
  hour (01:00–02:30 in Berlin, whose clocks go from 03:00 back to 02:00) opens twice that night.

``start == end`` is refused: it could mean "never" or "always", and neither needs a window.

The search functions (:meth:`TimeWindow.next_open`, :meth:`TimeWindow.closes_at`) find where
membership flips. Membership can only flip at an instant whose wall time is ``start`` or ``end``
(each maps to up to two instants a day, two in a repeated hour, none in a skipped one) or at a
timezone transition; those candidates are enumerated, and a flip between two neighbouring
candidates is located by bisection to the second. Seconds are the resolution: windows are
minute-granular in practice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from budcore.domain.errors import ValidationError
from budcore.domain.timeutil import ensure_utc

_HHMM = re.compile(r"^(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?::(?P<s>[0-5]\d))?$")
_ONE_SECOND = timedelta(seconds=1)
# How far ahead :meth:`TimeWindow.next_open` looks: every window opens at least once in any two
# local days (a daily window loses at most the hour a DST change skips), so eight days is ample.
_SEARCH_DAYS = 8


def parse_wall_time(value: str | time, field_path: str) -> time:
    """``"22:00"`` / ``"06:30:15"`` / a ``datetime.time`` → a naive wall time; errors name the field."""
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise ValidationError("a window's times are wall times: give no timezone here", path=field_path)
        return value
    if not isinstance(value, str):
        raise ValidationError(f"expected a time like '22:00', got {value!r}", path=field_path)
    match = _HHMM.match(value.strip())
    if match is None:
        raise ValidationError(
            f"expected a time like '22:00' (HH:MM, 24-hour), got {value!r}", path=field_path
        )
    return time(int(match["h"]), int(match["m"]), int(match["s"] or 0))


# The annotation a Kubernetes object (a budcore Job document today, the Workload the Kueue adapter
# submits) carries its window in: "22:00-06:00 Europe/Berlin", optionally "; must-finish".
WINDOW_ANNOTATION = "budcore.io/time-window"
_ANNOTATION = re.compile(
    r"^\s*(?P<start>\d{1,2}:\d{2}(?::\d{2})?)\s*-\s*(?P<end>\d{1,2}:\d{2}(?::\d{2})?)"
    r"(?:\s+(?P<zone>[^;\s]+))?\s*(?:;\s*(?P<flag>must-finish)\s*)?$"
)


def window_from_annotation(
    text: object, field_path: str = f"metadata.annotations[{WINDOW_ANNOTATION}]"
) -> TimeWindow:
    """``"22:00-06:00 Europe/Berlin; must-finish"`` → a :class:`TimeWindow` (zone defaults to UTC)."""
    match = _ANNOTATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValidationError(
            "expected 'HH:MM-HH:MM [IANA zone][; must-finish]', e.g. '22:00-06:00 Europe/Berlin', "
            f"got {text!r}",
            path=field_path,
        )
    try:
        return TimeWindow(
            start=parse_wall_time(match["start"], field_path),
            end=parse_wall_time(match["end"], field_path),
            timezone=match["zone"] or "UTC",
            must_finish_in_window=match["flag"] is not None,
        )
    except ValidationError as exc:
        raise ValidationError(exc.message, path=field_path) from None


def load_zone(name: str, field_path: str = "timezone") -> ZoneInfo:
    """The IANA zone ``name`` (``Europe/Berlin``, ``UTC``); an unknown name names the field."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("expected an IANA timezone name such as 'Europe/Berlin'", path=field_path)
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"unknown timezone {name!r}: use an IANA name such as 'Europe/Berlin' or 'UTC'",
            path=field_path,
        ) from None


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A daily wall-clock window ``[start, end)`` in ``timezone`` (wraps midnight when start > end).

    ``must_finish_in_window``: the job may start only if its expected run (estimate, else maximum
    duration) ends before the window closes; otherwise any instant inside the window may start it.
    Build one from user input with :meth:`parse`.
    """

    start: time
    end: time
    timezone: str = "UTC"
    must_finish_in_window: bool = False
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        start = parse_wall_time(self.start, "time_window.start")
        end = parse_wall_time(self.end, "time_window.end")
        if start == end:
            raise ValidationError(
                f"start and end are both {start.isoformat('minutes')}: a window needs two different times "
                "(for no restriction, give no window)",
                path="time_window",
            )
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "_zone", load_zone(self.timezone, "time_window.timezone"))

    @classmethod
    def parse(cls, data: object, field_path: str = "time_window") -> TimeWindow:
        """From a mapping ``{start, end, timezone?, must_finish_in_window?}``; errors name the field."""
        if isinstance(data, TimeWindow):
            return data
        if not isinstance(data, dict):
            raise ValidationError("expected a mapping with 'start' and 'end'", path=field_path)
        unknown = sorted(set(data) - {"start", "end", "timezone", "must_finish_in_window"})
        if unknown:
            raise ValidationError(f"unknown field(s) {', '.join(unknown)}", path=field_path)
        missing = [k for k in ("start", "end") if k not in data]
        if missing:
            raise ValidationError(f"missing {' and '.join(missing)}", path=field_path)
        must_finish = data.get("must_finish_in_window", False)
        if not isinstance(must_finish, bool):
            raise ValidationError("expected true or false", path=f"{field_path}.must_finish_in_window")
        try:
            return cls(
                start=parse_wall_time(data["start"], f"{field_path}.start"),
                end=parse_wall_time(data["end"], f"{field_path}.end"),
                timezone=data.get("timezone", "UTC"),
                must_finish_in_window=must_finish,
            )
        except ValidationError as exc:
            path = (
                exc.path
                if exc.path.startswith(field_path)
                else exc.path.replace("time_window", field_path, 1)
            )
            raise ValidationError(exc.message, path=path) from None

    @property
    def wraps_midnight(self) -> bool:
        return self.start > self.end

    def contains(self, instant: datetime) -> bool:
        """Whether ``instant`` (aware) falls inside the window, by its local wall time."""
        wall = ensure_utc(instant, "instant").astimezone(self._zone).time()
        if self.wraps_midnight:
            return wall >= self.start or wall < self.end
        return self.start <= wall < self.end

    def next_open(self, instant: datetime) -> datetime:
        """The earliest instant at or after ``instant`` that is inside the window (UTC)."""
        instant = ensure_utc(instant, "instant")
        if self.contains(instant):
            return instant
        flip = self._next_flip(instant)
        if flip is None:  # pragma: no cover - every valid window opens within two local days
            raise ValidationError("the window never opens", path="time_window")
        return flip

    def closes_at(self, instant: datetime) -> datetime:
        """For an instant inside the window, the first instant after it outside the window (UTC).

        For an instant outside, the close of the next opening.
        """
        opened = self.next_open(instant)
        flip = self._next_flip(opened)
        if flip is None:  # pragma: no cover - every valid window closes within two local days
            raise ValidationError("the window never closes", path="time_window")
        return flip

    def fits(self, start: datetime, duration: timedelta) -> bool:
        """Whether a run of ``duration`` starting at ``start`` lies inside one opening."""
        if not self.contains(start):
            return False
        return start + duration <= self.closes_at(start)

    def earliest_start(self, instant: datetime, duration: timedelta | None = None) -> datetime:
        """The earliest instant ≥ ``instant`` at which a job may start under this window.

        Without ``must_finish_in_window`` (or without a duration) that is :meth:`next_open`;
        with it, the first opening long enough for ``duration``, starting as early in it as
        possible. A duration longer than every opening is a ``ValidationError``: the job could
        never run.
        """
        at = self.next_open(instant)
        if not self.must_finish_in_window or duration is None:
            return at
        for _ in range(_SEARCH_DAYS * 2):
            if at + duration <= self.closes_at(at):
                return at
            at = self.next_open(self.closes_at(at))
        raise ValidationError(
            f"a run of {duration} never fits in the window {self.describe()}", path="time_window"
        )

    def describe(self) -> str:
        return f"{self.start.isoformat('minutes')}–{self.end.isoformat('minutes')} {self.timezone}"

    # The search ---------------------------------------------------------------------------------
    def _next_flip(self, instant: datetime) -> datetime | None:
        """The first instant after ``instant`` whose membership differs from ``instant``'s."""
        state = self.contains(instant)
        previous = instant
        for candidate in self._candidates(instant):
            if candidate <= instant:
                continue
            if self.contains(candidate) != state:
                return self._bisect(previous, candidate, state)
            previous = candidate
        return None

    def _bisect(self, low: datetime, high: datetime, state: bool) -> datetime:
        """The first instant in ``(low, high]`` whose membership is not ``state`` (to the second)."""
        while high - low > _ONE_SECOND:
            middle = low + (high - low) / 2
            middle = middle.replace(microsecond=0) if middle.microsecond else middle
            if middle <= low:
                break
            if self.contains(middle) != state:
                high = middle
            else:
                low = middle
        return high

    def _candidates(self, instant: datetime) -> list[datetime]:
        """Instants where membership may flip, in the local days around ``instant``, sorted."""
        first = instant.astimezone(self._zone).date() - timedelta(days=1)
        found: set[datetime] = set()
        for offset in range(_SEARCH_DAYS + 2):
            day = first + timedelta(days=offset)
            for wall in (self.start, self.end):
                for fold in (0, 1):
                    local = datetime.combine(day, wall, tzinfo=self._zone).replace(fold=fold)
                    found.add(local.astimezone(UTC))
            found.update(self._transitions(day))
        return sorted(found)

    def _transitions(self, day: date) -> list[datetime]:
        """The instants of ``day`` (local) at which the zone's UTC offset changes."""
        begin = datetime.combine(day, time(0), tzinfo=self._zone).astimezone(UTC)
        out: list[datetime] = []
        step = timedelta(hours=1)
        at = begin
        offset = at.astimezone(self._zone).utcoffset()
        for _ in range(26):
            nxt = at + step
            next_offset = nxt.astimezone(self._zone).utcoffset()
            if next_offset != offset:
                low, high = at, nxt
                while high - low > _ONE_SECOND:
                    middle = low + (high - low) / 2
                    if middle.astimezone(self._zone).utcoffset() == offset:
                        low = middle
                    else:
                        high = middle
                out.append(high)
                offset = next_offset
            at = nxt
        return out
