"""Swapping a shift (换班): which days are meant, as people say them.

``换班 周六 李师傅`` means the caller's next Saturday (today, if today is one);
``换班 2026-10-01 李师傅``, ``10月1日``, ``10-01`` name a date, planned as far ahead as
:data:`MAX_AHEAD` (the public holidays' cover); ``10-01~10-07`` or ``10月1日至10月7日``
a run of days, at most :data:`MAX_DAYS`. Dates are local (the configured time zone).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

#: how far ahead a swap may be planned
MAX_AHEAD = timedelta(days=366)
#: the longest run of days one swap may cover (a holiday week and its weekends)
MAX_DAYS = 16

_WEEKDAYS = {
    "一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "七": 6,
}
_ENGLISH = {name: number for number, full in enumerate(
    ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))
    for name in (full, full[:3])}
_RELATIVE = {"今天": 0, "today": 0, "明天": 1, "tomorrow": 1, "后天": 2}
_WEEKDAY = re.compile(r"^(?:周|星期|礼拜)(?P<d>[一二三四五六日天七])$")
_FULL = re.compile(r"^(?P<y>\d{4})[-/.年](?P<m>\d{1,2})[-/.月](?P<d>\d{1,2})[日号]?$")
_SHORT = re.compile(r"^(?P<m>\d{1,2})[-/.月](?P<d>\d{1,2})[日号]?$")
_RANGE = re.compile(r"\s*(?:~|～|至|到|—|--|\bto\b)\s*")


class DayError(ValueError):
    """Days that cannot be swapped: ``reason`` is unknown, past, too_far or too_long."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.text = text


@dataclass(frozen=True, kw_only=True)
class Days:
    first: date
    last: date

    @property
    def count(self) -> int:
        return (self.last - self.first).days + 1


def read_day(text: str, today: date) -> date:
    """One day as said: a weekday (the next one, today included), 今天/明天/后天, or a
    date with or without its year (without: the next such date, today included)."""
    word = unicodedata.normalize("NFKC", text).strip().lower()
    if word in _RELATIVE:
        return today + timedelta(days=_RELATIVE[word])
    weekday = None
    if (match := _WEEKDAY.match(word)) is not None:
        weekday = _WEEKDAYS[match["d"]]
    elif word in _ENGLISH:
        weekday = _ENGLISH[word]
    if weekday is not None:
        return today + timedelta(days=(weekday - today.weekday()) % 7)
    try:
        if (match := _FULL.match(word)) is not None:
            return date(int(match["y"]), int(match["m"]), int(match["d"]))
        if (match := _SHORT.match(word)) is not None:
            day = date(today.year, int(match["m"]), int(match["d"]))
            return day if day >= today else date(today.year + 1, day.month, day.day)
    except ValueError:
        raise DayError("unknown", text) from None
    raise DayError("unknown", text)


def read_days(text: str, today: date) -> Days:
    """A day or a run of days (``10-01~10-07``), checked: not past, within
    :data:`MAX_AHEAD`, at most :data:`MAX_DAYS` long."""
    parts = _RANGE.split(text.strip(), maxsplit=1)
    first = read_day(parts[0], today)
    last = read_day(parts[1], first) if len(parts) > 1 else first
    if first < today or last < first:
        raise DayError("past", text)
    if last - today > MAX_AHEAD:
        raise DayError("too_far", text)
    days = Days(first=first, last=last)
    if days.count > MAX_DAYS:
        raise DayError("too_long", text)
    return days
