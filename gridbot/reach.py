"""Whom a private message reaches: for ``gridbot people``, ``check-config`` and start-up.

A person is reachable when one of their linked accounts has a private chat that has not
refused the bot (the engine's own rule, :func:`gridbot.policy.routing.why_unreachable`). The
rostered people no message reaches are passed over by routing: ``gridbot run`` and
``gridbot check-config`` warn about them, one line each.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from gridbot.config import Config
from gridbot.domain import Person, Role
from gridbot.policy.routing import account_states, why_unreachable
from gridbot.render import Renderer
from gridbot.store import Transaction, store_for_url

#: how many unreachable people a warning names one by one before counting the rest
WARN_NAMES = 20
#: how long check-config waits for the database before it says it could not read it
READ_TIMEOUT = 10.0


@dataclass(frozen=True, kw_only=True)
class Reach:
    """Who a person is on the chat platforms, and whether a message reaches them now."""

    person: Person
    #: (platform, state) per linked account; state: "ok", "no_private" (never wrote to
    #: the bot in private, so it cannot write to them) or "blocked" (refused the bot)
    accounts: tuple[tuple[str, str], ...]
    #: (micro-grid, "primary" | "backup" | "shift") for every roster they are on
    duty: tuple[tuple[str, str], ...]

    @property
    def reachable(self) -> bool:
        return not self.why

    @property
    def why(self) -> str:
        """Why no message reaches them ("" if one does): see :func:`why_unreachable`."""
        return why_unreachable(self.accounts)


async def reach_of(tx: Transaction, config: Config, people: list[Person]) -> list[Reach]:
    duty = _duties(config)
    return [Reach(person=person, accounts=await account_states(tx, person.id),
                  duty=tuple(duty.get(person.id, ()))) for person in people]


def _duties(config: Config) -> dict[str, list[tuple[str, str]]]:
    """person id -> (micro-grid, "primary" | "backup" | "shift") for every roster."""
    duty: dict[str, list[tuple[str, str]]] = {}
    for microgrid, roster in config.rosters.items():
        duty.setdefault(roster.primary, []).append((microgrid, "primary"))
        for backup in roster.backups:
            duty.setdefault(backup, []).append((microgrid, "backup"))
        for shift in roster.shifts:
            if (microgrid, "shift") not in duty.get(shift.person, []):
                duty.setdefault(shift.person, []).append((microgrid, "shift"))
    return duty


def rostered(config: Config) -> list[Person]:
    """Everyone routing may give a new case to at level 0: the people on a roster, and
    the stewards of micro-grids that have none."""
    ids = {p for r in config.rosters.values()
           for p in (r.primary, *r.backups, *(s.person for s in r.shifts))}
    return [p for p in config.people if p.id in ids or (
        p.role is Role.STEWARD and p.unit not in config.rosters)]


async def unreachable_rostered(tx: Transaction, config: Config) -> list[Reach]:
    """The rostered people no message reaches: routing passes them over."""
    return [r for r in await reach_of(tx, config, rostered(config)) if not r.reachable]


def warn_unreachable(found: list[Reach], renderer: Renderer, out: TextIO,
                     *, unknown: str = "") -> None:
    """Warn once, one line each, about rostered people routing passes over.

    ``unknown``: why reachability could not be read ("no_database", or the store's
    error): then every rostered person is listed as not linked yet.
    """
    if not found:
        return
    text = renderer.text
    print(text("unreachable_warning", count=len(found), unknown=unknown), file=out)
    for r in found[:WARN_NAMES]:
        print(text("unreachable_line", name=r.person.name, id=r.person.id,
                   duty=" ".join(text("people_duty", microgrid=m, kind=k) for m, k in r.duty)
                   or r.person.unit, why=r.why), file=out)
    print(text("unreachable_advice", more=max(0, len(found) - WARN_NAMES),
               unlinked=sum(1 for r in found if r.why == "unlinked")), file=out)


async def unreachable_for_check(config: Config) -> tuple[list[Reach], str]:
    """For ``gridbot check-config``: the rostered people routing passes over, and why
    that could not be read ("" if it could).

    A database that exists is read (opening it applies pending migrations, as every
    office command does), without touching its org or people; one that does not is not
    created: then nobody has linked anything yet, and every rostered person is listed.
    """
    def everyone(why: str) -> tuple[list[Reach], str]:
        return unlinked(config, rostered(config)), why

    if config.storage_url.startswith("sqlite:///") \
            and not Path(config.storage_url[len("sqlite:///"):]).exists():
        return everyone("no_database")
    store = store_for_url(config.storage_url)
    try:
        await asyncio.wait_for(store.open(), READ_TIMEOUT)
        async with store.transaction() as tx:
            return await unreachable_rostered(tx, config), ""
    except Exception as exc:
        # raises its driver's own errors while connecting)
        return everyone(str(exc) or type(exc).__name__)
    finally:
        await store.close()


def unlinked(config: Config, people: list[Person]) -> list[Reach]:
    """``people`` as nobody linked yet (before the database exists)."""
    duty = _duties(config)
    return [Reach(person=p, accounts=(), duty=tuple(duty.get(p.id, ()))) for p in people]
