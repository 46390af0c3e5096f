"""Who is on duty: the roster of a micro-grid and the people above it on the ladder.

Like an on-call schedule with overrides: a shift that covers this minute wins, then
the primary steward, then the backups in order; anyone off duty is skipped. Nobody
at a level means the next level up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from gridbot.config import Shift
from gridbot.domain import LEVEL_ROLES, TOP_LEVEL, Person, Role
from gridbot.store.base import Transaction


@dataclass(frozen=True, kw_only=True)
class Route:
    person: Person | None
    level: int
    #: why this person: "shift", "roster" (the primary), "backup", "level" (the person at
    #: the level asked for), "nobody_below" (went up a level), "nobody" (no one at all)
    reason: str


def shift_covers(shift: Shift, local: datetime) -> bool:
    """True if the shift covers the local minute; shifts may run past midnight."""
    # Whole minutes: an end of "24:00" is stored as 23:59:59 and must cover 23:59.
    now = local.time().replace(second=0, microsecond=0)
    weekday = local.weekday()
    if shift.start < shift.end:
        return weekday in shift.days and shift.start <= now < shift.end
    if shift.end == shift.start:  # a whole-day shift
        return weekday in shift.days
    # Overnight: the part before midnight belongs to the day it starts on.
    if now >= shift.start:
        return weekday in shift.days
    return now < shift.end and (weekday - 1) % 7 in shift.days


async def is_off(tx: Transaction, person_id: str, now: datetime) -> bool:
    status = await tx.duty(person_id)
    return bool(status and status.off and (status.until is None or status.until > now))


async def unit_at_level(tx: Transaction, microgrid: str, level: int) -> str | None:
    """The org unit that owns ``level`` for a case in ``microgrid``."""
    code: str | None = microgrid
    for _ in range(level):
        unit = await tx.unit(code) if code else None
        code = unit.parent if unit else None
    return code


async def on_duty_at_level(
    tx: Transaction, microgrid: str, level: int, now: datetime, tz: ZoneInfo
) -> tuple[Person | None, str]:
    """The person on duty at exactly ``level`` for the micro-grid, and why."""
    if level == 0:
        entries, shifts = await tx.roster(microgrid)
        local = now.astimezone(tz)
        candidates: list[tuple[str, str]] = [
            (s.person, "shift") for s in shifts if shift_covers(s, local)
        ]
        candidates += [(e.person_id, "roster" if e.position == 0 else "backup")
                       for e in entries]
        if not entries:
            candidates += [(p.id, "roster")
                           for p in await tx.people_in_role(Role.STEWARD, microgrid)]
        for person_id, reason in candidates:
            person = await tx.person(person_id)
            if person is not None and person.role is not Role.RESIDENT \
                    and not await is_off(tx, person_id, now):
                return person, reason
        return None, "nobody"
    unit = await unit_at_level(tx, microgrid, level)
    if unit is None:
        return None, "nobody"
    for person in await tx.people_in_role(LEVEL_ROLES[level], unit):
        if not await is_off(tx, person.id, now):
            return person, "level"
    return None, "nobody"


async def route(
    tx: Transaction, microgrid: str, now: datetime, tz: ZoneInfo, *, start_level: int = 0
) -> Route:
    """Find who takes a case at ``start_level``, climbing while a level has nobody."""
    for level in range(start_level, TOP_LEVEL + 1):
        person, reason = await on_duty_at_level(tx, microgrid, level, now, tz)
        if person is not None:
            if level > start_level:
                reason = "nobody_below"
            return Route(person=person, level=level, reason=reason)
    return Route(person=None, level=start_level, reason="nobody")
