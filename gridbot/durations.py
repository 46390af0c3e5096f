"""Durations as people write them: ``15m``, ``2h``, ``2h30m``, ``7d``."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)\s*([dhm])", re.IGNORECASE)
_WHOLE = re.compile(r"^\s*(?:\d+\s*[dhm]\s*)+$", re.IGNORECASE)
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_duration(text: str) -> timedelta:
    """Parse ``1d2h30m``-style text; raise ValueError on anything else or on zero."""
    if not isinstance(text, str) or not _WHOLE.match(text):
        raise ValueError(f"not a duration: {text!r}")
    total = timedelta()
    for amount, unit in _PART.findall(text):
        total += timedelta(**{_UNITS[unit.lower()]: int(amount)})
    if total <= timedelta(0):
        raise ValueError(f"duration must be positive: {text!r}")
    if total > timedelta(days=3650):
        raise ValueError(f"duration too long: {text!r}")
    return total


def format_duration(delta: timedelta) -> str:
    """The inverse of :func:`parse_duration`, shortest form (``2h30m``)."""
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    out = "".join(f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m")) if n)
    return out or "0m"
