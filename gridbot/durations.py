"""Durations and dates as people write them, with their bounds: the one place that reads them.

Durations: ``30m``, ``2h``, ``2h30m``, ``3d``, ``1w`` as before, and Chinese as people say
it: ``30分钟``, ``两小时``, ``半小时``, ``一个半小时``, ``三天``, ``一天半``, ``一周``,
``两个星期``, ``一刻钟``, with Arabic, full-width or Chinese numerals (up to 千). A
:class:`Duration` keeps what was written in whole days and weeks apart from hours and
minutes, so that "7 days more" can be counted in days on the calendar (working days where
windows count working time) instead of as 168 hours of window time. Settings keep to
the compact form (:func:`parse_duration`); chat reads them all (:func:`read_duration`,
:func:`take_duration` when a reason follows).

Every reader takes an upper bound and refuses past it *before* building a ``timedelta``,
so ``99999999999d`` is a clear "too long" instead of an ``OverflowError`` in a handler.
Dates have one range, :data:`EARLIEST_DAY` to :data:`LATEST_DAY`: nothing gridbot does
needs a day outside it, and every day inside it converts to UTC and back.

Errors::

    ValueError
    └── TimeTextError        reason, text (and the bound that was crossed)
        ├── DurationError    unreadable, zero, too_long (limit: timedelta)
        └── DateError        no_such_day, out_of_range, reversed, too_long (limit: days)
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

#: the longest duration any reader accepts unless told a tighter bound
MAX_DURATION = timedelta(days=3650)
#: the days any date gridbot reads may fall on
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2099, 12, 31)

_ZERO = timedelta(0)
_DAY_SECONDS = 86_400


class TimeTextError(ValueError):
    """A duration or date a person wrote that cannot be used; ``reason`` says why."""

    def __init__(self, reason: str, text: str) -> None:
        self.reason = reason
        self.text = text
        super().__init__(f"{reason}: {text!r}")


class DurationError(TimeTextError):
    """``reason``: unreadable, zero, or too_long (then ``limit`` is the bound)."""

    def __init__(self, reason: str, text: str, *, limit: timedelta | None = None) -> None:
        super().__init__(reason, text)
        self.limit = limit


class DateError(TimeTextError):
    """``reason``: no_such_day (``02-30``; ``02-29`` in a year without one), out_of_range
    (before :data:`EARLIEST_DAY` or after :data:`LATEST_DAY`), reversed (a range that
    ends before it starts) or too_long (a range of more than ``limit`` days)."""

    def __init__(self, reason: str, text: str, *, limit: int | None = None) -> None:
        super().__init__(reason, text)
        self.limit = limit


@dataclass(frozen=True)
class Duration:
    """A length of time as written: whole ``days`` (days and weeks) and ``clock`` time
    (hours, minutes, and the half of "一天半")."""

    days: int = 0
    clock: timedelta = _ZERO

    @property
    def total(self) -> timedelta:
        """As plain elapsed time (a day is 24 hours)."""
        return timedelta(days=self.days) + self.clock

    def __str__(self) -> str:
        """``7d``, ``1d12h``, ``48h``, ``2h30m``: as written, days apart from hours, and
        readable back by :func:`read_duration`."""
        minutes = int(self.clock.total_seconds() // 60)
        hours, minutes = divmod(minutes, 60)
        parts = ((self.days, "d"), (hours, "h"), (minutes, "m"))
        return "".join(f"{n}{u}" for n, u in parts if n) or "0m"


# -- reading durations ------------------------------------------------------------------------

_CN_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}
_CN_POWERS = {"十": 10, "百": 100, "千": 1000}
#: unit as written -> (seconds, counts in days on the calendar)
_UNITS: dict[str, tuple[int, bool]] = {}
for _names, _seconds, _in_days in (
    (("星期", "礼拜", "周", "weeks", "week", "wks", "wk", "w"), 7 * _DAY_SECONDS, True),
    (("天", "日", "days", "day", "d"), _DAY_SECONDS, True),
    (("小时", "钟头", "时", "hours", "hour", "hrs", "hr", "h"), 3600, False),
    (("分钟", "分", "minutes", "minute", "mins", "min", "m"), 60, False),
    (("刻钟", "刻"), 900, False),
):
    for _name in _names:
        _UNITS[_name] = (_seconds, _in_days)


def _unit_pattern() -> str:
    # Longest first, so "min" is not read as "m" + "in"; a Latin unit must end its word
    # ("2 months" is not "2 m" + "onths").
    words = sorted(_UNITS, key=len, reverse=True)
    return "|".join(re.escape(w) + ("(?![a-z])" if w.isascii() else "") for w in words)


_NUMBER = r"[0-9]+(?:\.[0-9]+)?|[〇零一二两俩三四五六七八九十百千]+"
_PART = re.compile(
    r"\s*(?:又|和)?\s*"
    rf"(?:(?P<number>{_NUMBER})\s*(?P<ge>个)?(?P<half>半)?|(?P<only_half>半))\s*个?\s*"
    rf"(?P<unit>{_unit_pattern()})(?P<and_half>半)?"
)
#: more digits than any bound needs (10**9 minutes is past MAX_DURATION)
_MAX_DIGITS = 9


def _fold(text: str) -> tuple[str, list[int]]:
    """Full-width digits and letters as ASCII (３天, ２ｈ), lower case; with, for each
    folded character, where it came from in ``text``."""
    folded: list[str] = []
    origin: list[int] = []
    for i, char in enumerate(text):
        for piece in unicodedata.normalize("NFKC", char).lower():
            folded.append(piece)
            origin.append(i)
    return "".join(folded), origin


def _cn_number(text: str) -> int | None:
    """``三`` 3, ``十五`` 15, ``二十`` 20, ``一百零五`` 105, ``一百五`` 150; None if not one."""
    total, digit, last_power, after_zero = 0, None, 0, False
    for char in text:
        if char in ("零", "〇"):
            if digit is not None:
                return None  # "一零": digits spelled one by one, not a number
            after_zero = True
            continue
        if char in _CN_DIGITS:
            if digit is not None:
                return None  # "二三天" means two or three days: not one length
            digit = _CN_DIGITS[char]
            continue
        power = _CN_POWERS[char]
        if last_power and power >= last_power:
            return None
        total += (1 if digit is None else digit) * power
        digit, last_power, after_zero = None, power, False
    if digit is not None:
        # "一百五" is 150 and "一千二" 1200, but "一百零五" is 105 and "二十五" 25.
        total += digit * (last_power // 10 if last_power >= 100 and not after_zero else 1)
    return total


def _amount(match: re.Match[str]) -> Fraction | None:
    """How many units a matched part says (``一个半`` 3/2); None if it is not a number."""
    number = match["number"]
    halves = sum(1 for g in ("half", "only_half", "and_half") if match[g])
    if halves > 1 or (match["half"] and not match["ge"]):
        return None  # "半小时半", "一半小时"
    if number is None:
        return Fraction(1, 2)
    if number[0].isdigit():
        whole = number.split(".")[0].lstrip("0")
        # Past any bound already: no need to read a number of a thousand digits.
        value = Fraction(10**_MAX_DIGITS) if len(whole) > _MAX_DIGITS else Fraction(number)
    else:
        found = _cn_number(number)
        if found is None:
            return None
        value = Fraction(found)
    return value + Fraction(halves, 2)


def _read(text: str, *, whole: bool, limit: timedelta) -> tuple[Duration, str]:
    limit = min(limit, MAX_DURATION)
    folded, origin = _fold(text)
    shown = text.strip()
    pos, seconds, day_seconds, parts = 0, Fraction(0), Fraction(0), 0
    while (match := _PART.match(folded, pos)) is not None:
        # After a space, a further part must end its word, or it starts the reason:
        # "2天 3小时后到货" asks for 2 days because parts arrive 3 hours later.
        end = match.end()
        if (not whole and parts and folded[pos].isspace() and end < len(folded)
                and not folded[end].isspace()):
            break
        amount = _amount(match)
        if amount is None:
            raise DurationError("unreadable", shown)
        unit_seconds, in_days = _UNITS[match["unit"]]
        if in_days:
            day_seconds += amount * unit_seconds
        else:
            seconds += amount * unit_seconds
        parts += 1
        pos = end
    rest = text[origin[pos]:] if pos < len(folded) else ""
    if parts == 0 or (whole and rest.strip()):
        raise DurationError("unreadable", shown)
    total = seconds + day_seconds
    if total > Fraction(limit.total_seconds()):
        raise DurationError("too_long", shown, limit=limit)
    days = int(day_seconds // _DAY_SECONDS)
    clock = timedelta(seconds=round(total - days * _DAY_SECONDS))
    if days == 0 and clock <= _ZERO:
        raise DurationError("zero", shown)  # nothing, or under half a second
    return Duration(days=days, clock=clock), rest.strip()


def read_duration(text: str, *, limit: timedelta = MAX_DURATION) -> Duration:
    """The whole of ``text`` as a duration of at most ``limit`` (and never more than
    :data:`MAX_DURATION`); DurationError otherwise."""
    if not isinstance(text, str):
        raise DurationError("unreadable", repr(text))
    return _read(text, whole=True, limit=limit)[0]


def take_duration(text: str, *, limit: timedelta = MAX_DURATION) -> tuple[Duration, str]:
    """A duration at the start of ``text`` and the rest (``3天等配件`` -> 3 days, 等配件)."""
    return _read(text, whole=False, limit=limit)


#: the compact form settings are written in: ``15m``, ``2h30m``, ``7d``
_COMPACT = re.compile(r"\s*(?:[0-9]+\s*[dhm]\s*)+", re.IGNORECASE)


def parse_duration(text: str, *, limit: timedelta = MAX_DURATION) -> timedelta:
    """A setting's duration in the compact form (``15m``, ``2h30m``, ``7d``), as elapsed
    time; DurationError (a ValueError) on anything else, on zero and past ``limit``.

    Settings keep to one documented form; what people type in chat goes through
    :func:`read_duration`, which also reads 两小时, 一天半, 1w and the like.
    """
    if not isinstance(text, str) or not _COMPACT.fullmatch(text):
        raise DurationError("unreadable", text if isinstance(text, str) else repr(text))
    return read_duration(text, limit=limit).total


def format_duration(delta: timedelta) -> str:
    """The inverse of :func:`parse_duration`, shortest form (``2h30m``)."""
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    out = "".join(f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m")) if n)
    return out or "0m"


# -- dates ------------------------------------------------------------------------------------


def make_day(year: int, month: int, day: int, text: str) -> date:
    """The date, within :data:`EARLIEST_DAY`..:data:`LATEST_DAY`; DateError otherwise."""
    if not EARLIEST_DAY.year <= year <= LATEST_DAY.year:
        raise DateError("out_of_range", text)
    try:
        found = date(year, month, day)
    except ValueError:
        raise DateError("no_such_day", text) from None
    return check_day(found, text)


def check_day(day: date, text: str) -> date:
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise DateError("out_of_range", text)
    return day


def add_days(day: date, days: int, text: str) -> date:
    """``day`` moved by ``days``, refusing to leave the range rather than overflow."""
    if abs(days) > (LATEST_DAY - EARLIEST_DAY).days:
        raise DateError("out_of_range", text)
    return check_day(day + timedelta(days=days), text)
