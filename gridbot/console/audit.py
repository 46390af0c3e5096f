"""审计 Audit: the audit log, newest first, filtered by person, action, dates and the way
in (via), one page at a time.

Open to grid leaders and above, each reading what the people of their own part of the
tree did (themselves, and everyone whose unit is at or below theirs); a subdistrict admin
reads everything, the command line's entries (``gridbot forget``) included. The console's
own logins and logouts are entries like any other (``web``, ``web_login``, ``web_logout``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from starlette.responses import Response

from gridbot.audit import AUDITED
from gridbot.console.app import Page
from gridbot.domain import Person, Role
from gridbot.store.base import AuditQuery, Transaction

PAGE_SIZE = 50
#: the furthest page offered (a filter finds older entries faster than paging does)
MAX_PAGE = 200
#: every action the log holds: the chat's, the console's own, the command line's
ACTIONS: tuple[str, ...] = (*sorted(AUDITED), "web_login", "web_logout", "forget")
_KINDS = ("subdistrict", "community", "grid", "microgrid")


def may_read(person: Person) -> bool:
    return person.role.rank >= Role.GRID_LEADER.rank


@dataclass(frozen=True, kw_only=True)
class Filters:
    person: str = ""
    action: str = ""
    via: str = ""
    first: str = ""
    last: str = ""
    page: int = 1

    @classmethod
    def read(cls, params: Any) -> Filters:
        def one(name: str, longest: int) -> str:
            return str(params.get(name, "")).strip()[:longest]
        page = one("page", 6)
        action = one("action", 40)
        return cls(person=one("person", 80), action=action if action in ACTIONS else "",
                   via=one("via", 40), first=one("from", 20), last=one("to", 20),
                   page=min(int(page), MAX_PAGE) if page.isdigit() and int(page) > 0 else 1)

    def days(self) -> tuple[date | None, date | None]:
        """The first and last day asked for; ValueError for a date that is not one."""
        return (date.fromisoformat(self.first) if self.first else None,
                date.fromisoformat(self.last) if self.last else None)

    def query(self) -> dict[str, Any]:
        return {"person": self.person, "action": self.action, "via": self.via,
                "from": self.first, "to": self.last}


async def readable_people(tx: Transaction, reader: Person,
                          people: list[Person]) -> list[Person] | None:
    """Whose entries ``reader`` may read: the people at or below their unit; None for
    everyone (a subdistrict admin)."""
    if reader.role is Role.SUBDISTRICT_ADMIN:
        return None
    below = {reader.unit}
    for kind in _KINDS:
        for unit in await tx.units(kind):
            if unit.parent in below:
                below.add(unit.code)
    return [p for p in people if p.unit in below or p.id == reader.id]


async def audit_page(page: Page) -> Response:
    if not may_read(page.person):
        return page.render("audit.html.j2", nav="audit", forbidden=True, status=403)
    filters = Filters.read(page.request.query_params)
    tz = page.console.config.timezone
    problem = ""
    try:
        first, last = filters.days()
    except ValueError:
        first = last = None
        problem = "audit_bad_date"
    staff = [p for p in page.console.config.people if p.role.rank >= 0]
    readable = await readable_people(page.tx, page.person, staff)
    shown_people = staff if readable is None else readable
    actors = None if readable is None else tuple(p.id for p in readable)
    if filters.person and actors is not None and filters.person not in actors:
        actors = ()  # someone outside their part of the tree: nothing
    entries = [] if problem else await page.tx.audit_page(AuditQuery(
        actors=actors, actor_id=filters.person, action=filters.action, via=filters.via,
        since=datetime.combine(first, time(), tz) if first else None,
        until=datetime.combine(last + timedelta(days=1), time(), tz) if last else None,
        limit=PAGE_SIZE + 1, offset=(filters.page - 1) * PAGE_SIZE))
    names = {p.id: p.name for p in page.console.config.people}
    return page.render("audit.html.j2", nav="audit", forbidden=False, filters=filters,
                       entries=entries[:PAGE_SIZE], more=len(entries) > PAGE_SIZE,
                       people=shown_people, names=names, actions=ACTIONS, problem=problem,
                       vias=_vias(page), status=400 if problem else 200)


def _vias(page: Page) -> list[str]:
    """The ways in a filter offers: every platform the engine knows, the console, the
    command line."""
    return list(dict.fromkeys([*page.console.engine.platforms, "web", "cli"]))


ROUTES = [
    ("/audit", audit_page, ("GET",), False),
]
