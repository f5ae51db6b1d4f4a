"""Office hours: parse a ``schedules:`` entry once, then answer "open now?" purely.

Days are ``mon`` .. ``sun``, ranges ``mon-fri`` (``fri-mon`` wraps), lists
``mon,wed`` and the words ``daily``, ``weekdays``, ``weekend``.  Hours are
``HH:MM-HH:MM`` (``24:00`` ends the day), several as a list or separated by
commas.  A range must end after it starts; overnight shifts are written as two
ranges on the two days.  Holidays are ``YYYY-MM-DD`` or yearly ``MM-DD``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from switchboard.config.model import Schedule

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WORDS = {
    "daily": tuple(range(7)),
    "everyday": tuple(range(7)),
    "weekdays": tuple(range(5)),
    "weekend": (5, 6),
}
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")

Minutes = tuple[int, int]
Week = tuple[tuple[Minutes, ...], ...]  # seven days, each a tuple of [start, end) in minutes

OPEN = "open"
CLOSED = "closed"
HOLIDAY = "holiday"


@dataclass(frozen=True, slots=True)
class CompiledSchedule:
    hours: Week
    breaks: tuple[tuple[str, Week], ...]
    holidays: frozenset[dt.date]
    yearly_holidays: frozenset[tuple[int, int]]

    def state(self, local: dt.datetime) -> str:
        """``open``, ``closed``, ``holiday`` or the name of the break in progress."""
        day = local.date()
        if day in self.holidays or (day.month, day.day) in self.yearly_holidays:
            return HOLIDAY
        weekday = local.weekday()
        minute = local.hour * 60 + local.minute
        if not _inside(self.hours[weekday], minute):
            return CLOSED
        for name, week in self.breaks:
            if _inside(week[weekday], minute):
                return name
        return OPEN


def _inside(ranges: Iterable[Minutes], minute: int) -> bool:
    return any(start <= minute < end for start, end in ranges)


class ScheduleError(ValueError):
    def __init__(self, where: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


def parse_days(spec: str) -> tuple[int, ...]:
    """``mon-fri`` -> (0, 1, 2, 3, 4); raise ValueError with a readable message."""
    days: list[int] = []
    for piece in spec.lower().replace(" ", "").split(","):
        if piece in _WORDS:
            days.extend(_WORDS[piece])
            continue
        first, sep, last = piece.partition("-")
        if first not in DAYS or (sep and last not in DAYS):
            raise ValueError(f"{spec!r} is not a day or day range (mon..sun, mon-fri, daily)")
        start = DAYS.index(first)
        end = DAYS.index(last) if sep else start
        span = (end - start) % 7
        days.extend((start + i) % 7 for i in range(span + 1))
    return tuple(dict.fromkeys(days))


def parse_time(text: str) -> int:
    match = _TIME.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a time (HH:MM)")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"{text!r} is not a time of day (00:00 .. 24:00)")
    return hours * 60 + minutes


def parse_ranges(value: str | list[str]) -> tuple[Minutes, ...]:
    pieces = value if isinstance(value, list) else value.split(",")
    ranges: list[Minutes] = []
    for piece in pieces:
        text = piece.strip()
        if text.lower() in {"closed", "off", ""}:
            continue
        start_text, sep, end_text = text.partition("-")
        if not sep:
            raise ValueError(f"{text!r} is not a range of hours (HH:MM-HH:MM)")
        start, end = parse_time(start_text), parse_time(end_text)
        if end <= start:
            raise ValueError(
                f"{text!r} ends before it starts (write an overnight shift as two ranges)"
            )
        ranges.append((start, end))
    return tuple(ranges)


def _week(
    spec: dict[str, str | list[str]], where: tuple[str | int, ...], errors: list[ScheduleError]
) -> Week:
    week: list[list[Minutes]] = [[] for _ in range(7)]
    for days_spec, value in spec.items():
        try:
            days = parse_days(days_spec)
        except ValueError as exc:
            errors.append(ScheduleError((*where, days_spec), str(exc)))
            continue
        try:
            ranges = parse_ranges(value)
        except ValueError as exc:
            errors.append(ScheduleError((*where, days_spec), str(exc)))
            continue
        for day in days:
            week[day].extend(ranges)
    return tuple(tuple(sorted(day)) for day in week)


def compile_schedule(schedule: Schedule) -> tuple[CompiledSchedule, list[ScheduleError]]:
    """The schedule, ready to evaluate, and every problem found in it."""
    errors: list[ScheduleError] = []
    hours = _week(schedule.hours, ("hours",), errors)
    breaks: list[tuple[str, Week]] = []
    for name, value in schedule.breaks.items():
        spec: dict[str, str | list[str]] = (
            dict(value) if isinstance(value, dict) else {"daily": value}
        )
        breaks.append((name, _week(spec, ("breaks", name), errors)))
    holidays: set[dt.date] = set()
    yearly: set[tuple[int, int]] = set()
    for i, text in enumerate(schedule.holidays):
        try:
            if len(text) == 5:
                parsed = dt.date.fromisoformat(f"2000-{text}")
                yearly.add((parsed.month, parsed.day))
            else:
                holidays.add(dt.date.fromisoformat(text))
        except ValueError:
            errors.append(
                ScheduleError(("holidays", i), f"{text!r} is not a date (YYYY-MM-DD or MM-DD)")
            )
    compiled = CompiledSchedule(
        hours=hours,
        breaks=tuple(breaks),
        holidays=frozenset(holidays),
        yearly_holidays=frozenset(yearly),
    )
    return compiled, errors
