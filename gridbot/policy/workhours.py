"""Working time for case deadlines.

Nobody should have a leaking-pipe case escalated past them at 3 a.m. on the first day of
the Spring Festival because "claim within 2 h" ran through the night. So a window can
count either calendar time (optionally paused during quiet hours) or only working hours
on China's working days, with the official holidays and make-up working days (调休) taken
from the maintained ``chinesecalendar`` package instead of a table we would forget to
update. The same calendar says when quiet hours end, so non-urgent notifications can wait
until morning. Urgent cases always count plain calendar time.

Instants go in timezone-aware and come out in UTC. Inside, everything is decided in local
time one local date at a time: each date becomes a few UTC intervals of counting time
(cached), and deadlines are found by walking those intervals, never minute by minute.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import chinese_calendar

from gridbot.durations import Duration

log = logging.getLogger(__name__)

_ZERO = timedelta(0)
_DAY = timedelta(days=1)
# How far ahead __init__ looks for any counting time at all.
_PROBE_DAYS = 370
# Upper bound on any walk; no window is anywhere near a century long.
_MAX_WALK_DAYS = 100 * 366

CountMode = Literal["calendar", "working"]
HolidaySource = Literal["cn", "none"]
COUNT_MODES: tuple[CountMode, ...] = ("calendar", "working")
HOLIDAY_SOURCES: tuple[HolidaySource, ...] = ("cn", "none")

Interval = tuple[datetime, datetime]
_Pieces = tuple[tuple[timedelta, timedelta], ...]


@dataclass(frozen=True, kw_only=True)
class CalendarSettings:
    """What counts as time on the clock for non-urgent windows; validated on creation.

    A work span or quiet hours ending at ``time.max`` (how :func:`parse_span` returns
    "24:00") end at the midnight that ends the day; so does a work span ending at ``time(0)``.
    """

    count: CountMode = "calendar"
    work_days: tuple[int, ...] = (0, 1, 2, 3, 4)
    work_hours: tuple[tuple[time, time], ...] = ((time(8, 30), time(17, 30)),)
    holidays: HolidaySource = "cn"
    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    quiet_start: time | None = time(22, 0)
    quiet_end: time | None = time(7, 0)
    pause_in_quiet: bool = True

    def __post_init__(self) -> None:
        if self.count not in COUNT_MODES:
            raise ValueError(f"count must be 'calendar' or 'working', not {self.count!r}")
        if self.holidays not in HOLIDAY_SOURCES:
            raise ValueError(f"holidays must be 'cn' or 'none', not {self.holidays!r}")
        for day in self.work_days:
            if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
                raise ValueError(f"work_days are 0 (Monday) to 6 (Sunday), not {day!r}")
        # Config code may hand over lists and sets; normalise so settings stay hashable.
        object.__setattr__(self, "work_days", tuple(sorted(set(self.work_days))))
        object.__setattr__(self, "work_hours", _check_work_hours(self.work_hours))
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("quiet_start and quiet_end must both be set or both be None")
        if self.quiet_start is not None and self.quiet_end is not None:
            for t in (self.quiet_start, self.quiet_end):
                _check_naive_time(t, "quiet hours")
            if _offset(self.quiet_start) % _DAY == _offset(self.quiet_end) % _DAY:
                raise ValueError("quiet_start and quiet_end must differ (use None for none)")
        for name in ("extra_holidays", "extra_workdays"):
            days = frozenset(getattr(self, name))
            for day in days:
                if isinstance(day, datetime) or not isinstance(day, date):
                    raise ValueError(f"{name} must hold dates, not {day!r}")
            object.__setattr__(self, name, days)
        both = self.extra_holidays & self.extra_workdays
        if both:
            listed = ", ".join(sorted(d.isoformat() for d in both))
            raise ValueError(f"dates in both extra_holidays and extra_workdays: {listed}")


def _check_naive_time(value: object, what: str) -> None:
    if not isinstance(value, time):
        raise ValueError(f"{what} must be times of day, not {value!r}")
    if value.tzinfo is not None:
        raise ValueError(f"{what} are local times and must not carry a tzinfo")


def _clock(t: time) -> timedelta:
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


def _offset(t: time) -> timedelta:
    """A configured boundary as an offset from local midnight; ``time.max`` stands for 24:00."""
    return _DAY if t == time.max else _clock(t)


def _span_offsets(start: time, end: time) -> tuple[timedelta, timedelta]:
    """A work span as offsets; it cannot cross midnight, so an end of 00:00 means 24:00."""
    return _offset(start), (_offset(end) if end != time(0) else _DAY)


@functools.lru_cache(maxsize=16384)
def _cn_workday(day: date) -> bool | None:
    """The library's answer, None for a year it lacks; cached, as each call scans its tables."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return None


def _check_work_hours(spans: Iterable[Any]) -> tuple[tuple[time, time], ...]:
    out: list[tuple[time, time]] = []
    previous_end = _ZERO
    for span in spans:
        try:
            start, end = span
        except (TypeError, ValueError):
            raise ValueError(f"a work_hours span is a (start, end) pair, not {span!r}") from None
        _check_naive_time(start, "work_hours")
        _check_naive_time(end, "work_hours")
        lo, hi = _span_offsets(start, end)
        if lo >= hi:
            raise ValueError(
                f"work_hours span {start:%H:%M}-{end:%H:%M} must start before it ends "
                "(work spans cannot run past midnight; split them at 24:00)"
            )
        if lo < previous_end:
            raise ValueError("work_hours spans must be sorted and must not overlap")
        previous_end = hi
        out.append((start, end))
    return tuple(out)


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is needed, not {instant!r}")
    return instant.astimezone(UTC)


class WorkCalendar:
    """Turns "2 h" into a deadline and back, under one micro-grid's calendar settings."""

    def __init__(self, settings: CalendarSettings, tz: ZoneInfo) -> None:
        self.settings = settings
        self.tz = tz
        self._warned_years: set[int] = set()
        self._pausing = settings.pause_in_quiet and settings.quiet_start is not None
        # Calendar mode with nothing to pause for is plain arithmetic; skip the walk.
        self._plain = settings.count == "calendar" and not self._pausing
        self._work: _Pieces = tuple(_span_offsets(s, e) for s, e in settings.work_hours)
        self._open: _Pieces = self._calendar_pieces()
        # Per instance (settings differ per grid), bounded; deadlines hit the same few weeks.
        self._intervals = functools.lru_cache(maxsize=4096)(self._build_intervals)
        # A run of empty days longer than this means a broken calendar, not a long holiday.
        self._max_gap = _PROBE_DAYS + len(settings.extra_holidays)
        if settings.count == "working":
            if not settings.work_hours:
                raise ValueError("count = 'working' needs at least one work_hours span")
            if not settings.work_days:
                raise ValueError(
                    "count = 'working' needs work_days: they decide the years "
                    "chinese_calendar has no data for"
                )
        today = datetime.now(tz).date()
        if not any(self._intervals(today + k * _DAY) for k in range(_PROBE_DAYS)):
            raise ValueError(
                f"this calendar has no counting time in the {_PROBE_DAYS} days from {today}; "
                "windows would never end"
            )

    def _calendar_pieces(self) -> _Pieces:
        """Local pieces of every day that count in calendar mode."""
        s = self.settings
        if not self._pausing or s.quiet_start is None or s.quiet_end is None:
            return ((_ZERO, _DAY),)
        quiet_from = _offset(s.quiet_start)
        quiet_to = _offset(s.quiet_end)
        if quiet_from > quiet_to:  # quiet runs past midnight: one open stretch in the day
            return ((quiet_to, quiet_from),)
        return tuple((a, b) for a, b in ((_ZERO, quiet_from), (quiet_to, _DAY)) if a < b)

    def is_workday(self, day: date) -> bool:
        """Whether people work on this local date; the extra lists outrank the library."""
        if isinstance(day, datetime):
            raise TypeError("is_workday takes a local date, not a datetime")
        s = self.settings
        if day in s.extra_holidays:
            return False
        if day in s.extra_workdays:
            return True
        if s.holidays == "cn":
            known = _cn_workday(day)
            if known is not None:
                return known
            if day.year not in self._warned_years:
                self._warned_years.add(day.year)
                log.warning(
                    "chinese_calendar has no holiday data for %d; treating weekdays %s as "
                    "working days that year. Upgrade chinesecalendar, or list the year's "
                    "holidays and make-up days in extra_holidays / extra_workdays.",
                    day.year,
                    list(s.work_days),
                )
        return day.weekday() in s.work_days

    def _build_intervals(self, day: date) -> tuple[Interval, ...]:
        """UTC intervals of non-urgent counting time on one local date, sorted and disjoint."""
        if self.settings.count == "working":
            pieces = self._work if self.is_workday(day) else ()
        else:
            pieces = self._open
        midnight = datetime.combine(day, time(0), tzinfo=self.tz)
        lo = midnight.astimezone(UTC)
        hi = (midnight + _DAY).astimezone(UTC)
        out: list[Interval] = []
        for a, b in pieces:
            # Wall-clock addition, then UTC: a DST change shortens or lengthens the piece.
            start = max((midnight + a).astimezone(UTC), lo)
            end = min((midnight + b).astimezone(UTC), hi)
            if out and start <= out[-1][1]:  # touching pieces, or a DST fold
                if end > out[-1][1]:
                    out[-1] = (out[-1][0], end)
                continue
            if start < end:
                out.append((start, end))
        return tuple(out)

    def _local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.tz).date()

    def add(self, start: datetime, span: timedelta, *, urgent: bool = False) -> datetime:
        """The deadline: when ``span`` of counting time has run after ``start`` (UTC)."""
        begin = _utc(start)
        if span < _ZERO:
            raise ValueError(f"a window cannot be negative: {span}")
        if urgent or self._plain or span == _ZERO:
            return begin + span
        remaining = span
        # One day early: cheap, and safe if a DST fold puts `begin` in yesterday's intervals.
        day = self._local_date(begin) - _DAY
        empty = 0
        for _ in range(_MAX_WALK_DAYS):
            intervals = self._intervals(day)
            for a, b in intervals:
                if b <= begin:
                    continue
                a = max(a, begin)
                if remaining <= b - a:
                    return a + remaining
                remaining -= b - a
            empty = 0 if intervals else empty + 1
            if empty > self._max_gap:
                raise ValueError(f"no counting time for {empty} days before {day}")
            day += _DAY
        raise ValueError(f"window too long for this calendar: {span}")

    def add_days(self, start: datetime, days: int) -> datetime:
        """``days`` days after ``start`` at the same local time of day (UTC out).

        When windows count working time these are working days: "7 days more" asked on a
        Thursday afternoon ends on the seventh working day after it, that afternoon, with
        holidays and make-up days as the calendar knows them. Otherwise calendar days.
        """
        local = _utc(start).astimezone(self.tz)
        if days < 0:
            raise ValueError(f"cannot count days backwards: {days}")
        day = local.date()
        if self.settings.count == "working":
            counted = empty = 0
            while counted < days:
                day += _DAY
                if self.is_workday(day):
                    counted, empty = counted + 1, 0
                else:
                    empty += 1
                    if empty > self._max_gap:
                        raise ValueError(f"no working day for {empty} days after {day}")
        else:
            day += timedelta(days=days)
        # Wall-clock time on the new date; a DST gap or fold resolves as zoneinfo does.
        return datetime.combine(day, local.time().replace(tzinfo=None),
                                tzinfo=self.tz).astimezone(UTC)

    def after(self, start: datetime, duration: Duration, *, urgent: bool = False) -> datetime:
        """When ``duration`` as written has run after ``start``: its days as days
        (:meth:`add_days`), then its hours and minutes as window time (:meth:`add`).

        Urgent cases count every minute, so for them a day is simply 24 hours.
        """
        if urgent:
            return _utc(start) + duration.total
        return self.add(self.add_days(start, duration.days), duration.clock)

    def between(self, start: datetime, end: datetime, *, urgent: bool = False) -> timedelta:
        """Counting time in [start, end): how much of a window has been used up."""
        lo, hi = _utc(start), _utc(end)
        if hi <= lo:
            return _ZERO
        if urgent or self._plain:
            return hi - lo
        total = _ZERO
        day = self._local_date(lo) - _DAY
        last = self._local_date(hi) + _DAY
        while day <= last:
            for a, b in self._intervals(day):
                if b > lo and a < hi:
                    total += min(b, hi) - max(a, lo)
            day += _DAY
        return total

    def is_counting(self, instant: datetime) -> bool:
        """Whether a non-urgent window is running now (for "paused" hints in replies)."""
        at = _utc(instant)
        if self._plain:
            return True
        day = self._local_date(at)
        return any(a <= at < b for d in (day - _DAY, day) for a, b in self._intervals(d))

    def is_quiet(self, instant: datetime) -> bool:
        """Whether non-urgent notifications should wait (local wall clock in quiet hours)."""
        qs, qe = self.settings.quiet_start, self.settings.quiet_end
        if qs is None or qe is None:
            return False
        start, end = _offset(qs), _offset(qe)
        now = _clock(_utc(instant).astimezone(self.tz).time())
        if start < end:
            return start <= now < end
        return now >= start or now < end

    def quiet_end_after(self, instant: datetime) -> datetime:
        """When a held-back notification may go out: the end of these quiet hours, in UTC."""
        at = _utc(instant)
        qe = self.settings.quiet_end
        if qe is None or not self.is_quiet(at):
            return at
        local = at.astimezone(self.tz)
        midnight = datetime.combine(local.date(), time(0), tzinfo=self.tz)
        candidate = midnight + _offset(qe)  # wall-clock addition; 24:00 is the next midnight
        if candidate <= local:
            candidate += _DAY
        return candidate.astimezone(UTC)


_SPAN = re.compile(
    r"^\s*([0-9]{1,2})[:：]([0-9]{2})\s*[-–—~～〜－]\s*([0-9]{1,2})[:：]([0-9]{2})\s*$"
)


def parse_span(text: str) -> tuple[time, time]:
    """Read ``08:30-17:30`` (work hours) or ``22:00-07:00`` (quiet hours) from config.

    A span may run past midnight, since quiet hours do; CalendarSettings refuses that for
    work hours. ``24:00`` may end a span and comes back as ``time.max``, so plain
    comparisons of the returned times (sorting, overlap checks) stay right.
    """
    if not isinstance(text, str):
        raise ValueError(f"a time span must be text like '08:30-17:30', not {text!r}")
    match = _SPAN.match(text)
    if match is None:
        raise ValueError(f"not a time span (expected HH:MM-HH:MM, e.g. '08:30-17:30'): {text!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if m1 > 59 or m2 > 59 or h1 > 23 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise ValueError(f"time out of range in span {text!r} (00:00 to 24:00)")
    start = time(h1, m1)
    end = time.max if h2 == 24 else time(h2, m2)
    if _offset(start) == _offset(end):
        raise ValueError(f"span {text!r} is empty: start and end must differ")
    return start, end
