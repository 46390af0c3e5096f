"""Who is on duty: the roster of a micro-grid and the people above it on the ladder.

Like an on-call schedule with overrides: a shift that covers this minute wins, then
the primary steward, then the backups in order; an accepted swap (换班) puts whoever
took someone's day in their place on that local date; anyone off duty is skipped, and so is
anyone no message can reach (never linked a chat account, never wrote to the bot in
private, or blocked it): a case given to them would sit unseen until it escalated.
Nobody at a level means the next level up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from gridbot.config import Shift
from gridbot.domain import LEVEL_ROLES, TOP_LEVEL, WEB_PLATFORM, Person, Role
from gridbot.store.base import Transaction


@dataclass(frozen=True, kw_only=True)
class Route:
    person: Person | None
    level: int
    #: why this person: "shift", "roster" (the primary), "backup", "swap" (took the day of
    #: one of those by an accepted 换班), "level" (the person at
    #: the level asked for), "nobody_below" (went up a level), "nobody" (no one at all)
    reason: str
    #: people on duty who were passed over because no message reaches them, with why
    #: (see :func:`why_unreachable`), in the order they were considered
    skipped: tuple[tuple[Person, str], ...] = field(default=())


#: what an account's private chat is to the bot: "ok", "no_private" (the person never
#: wrote to the bot in private, so it cannot write to them) or "blocked" (refused the bot)
AccountState = tuple[str, str]


async def account_states(tx: Transaction, person_id: str) -> tuple[AccountState, ...]:
    """(platform, state) for each chat account linked to the person.

    The engine's own rule for who a private message reaches (``Engine._targets``): an
    account with a private chat that has not refused the bot.
    """
    states = []
    for account in await tx.accounts_of(person_id):
        if account.platform == WEB_PLATFORM:
            continue  # the console shows what it is sent only while someone looks
        if not account.private_chat_id:
            state = "no_private"
        else:
            chat = await tx.chat(account.platform, account.private_chat_id)
            state = "blocked" if chat is not None and chat.unreachable_at else "ok"
        states.append((account.platform, state))
    return tuple(states)


async def private_chats(tx: Transaction, person_id: str) -> list[tuple[str, str]]:
    """(platform, chat id) of each private chat of the person a message reaches now, by
    the same rule: a chat account's private chat that has not refused the bot (not the
    console's, which shows what it is sent only while someone looks)."""
    found = []
    for account in await tx.accounts_of(person_id):
        if account.platform == WEB_PLATFORM or not account.private_chat_id:
            continue
        chat = await tx.chat(account.platform, account.private_chat_id)
        if chat is None or chat.unreachable_at is None:
            found.append((account.platform, account.private_chat_id))
    return found


def why_unreachable(states: tuple[AccountState, ...]) -> str:
    """``""`` if a message reaches the person; else "unlinked" (no chat account),
    "no_private" (linked, never wrote to the bot in private) or "blocked"."""
    kinds = {state for _, state in states}
    if "ok" in kinds:
        return ""
    if not kinds:
        return "unlinked"
    return "no_private" if "no_private" in kinds else "blocked"


async def unreachable_why(tx: Transaction, person_id: str) -> str:
    """Why no message reaches the person now (``""``: one does)."""
    return why_unreachable(await account_states(tx, person_id))


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
    tx: Transaction, microgrid: str, level: int, now: datetime, tz: ZoneInfo, *,
    reach: bool = True, skipped: list[tuple[Person, str]] | None = None,
) -> tuple[Person | None, str]:
    """The person on duty at exactly ``level`` for the micro-grid, and why.

    ``reach``: pass over people no message reaches, noting each in ``skipped`` (once).
    Only a question about the roster itself (tests, the office's views) leaves it off.
    """

    async def takes(person: Person) -> bool:
        if await is_off(tx, person.id, now):
            return False
        if not reach:
            return True
        why = await unreachable_why(tx, person.id)
        if why and skipped is not None and all(p.id != person.id for p, _ in skipped):
            skipped.append((person, why))
        return not why

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
        swaps = await tx.swaps_on(local.date().isoformat())
        if swaps:
            # Whoever took someone's day stands where they stood in the order.
            candidates = [(swaps[person_id], "swap") if person_id in swaps
                          else (person_id, reason) for person_id, reason in candidates]
        for person_id, reason in candidates:
            person = await tx.person(person_id)
            if person is not None and person.role is not Role.RESIDENT \
                    and await takes(person):
                return person, reason
        return None, "nobody"
    unit = await unit_at_level(tx, microgrid, level)
    if unit is None:
        return None, "nobody"
    for person in await tx.people_in_role(LEVEL_ROLES[level], unit):
        if await takes(person):
            return person, "level"
    return None, "nobody"


async def route(
    tx: Transaction, microgrid: str, now: datetime, tz: ZoneInfo, *, start_level: int = 0,
    reach: bool = True,
) -> Route:
    """Find who takes a case at ``start_level``, climbing while a level has nobody (on
    duty and, with ``reach``, reachable)."""
    skipped: list[tuple[Person, str]] = []
    for level in range(start_level, TOP_LEVEL + 1):
        person, reason = await on_duty_at_level(tx, microgrid, level, now, tz, reach=reach,
                                                skipped=skipped)
        if person is not None:
            if level > start_level:
                reason = "nobody_below"
            return Route(person=person, level=level, reason=reason, skipped=tuple(skipped))
    return Route(person=None, level=start_level, reason="nobody", skipped=tuple(skipped))
