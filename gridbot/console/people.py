"""人员与值班 People and duty: who is on duty now in each micro-grid of the person's part of
the tree (routing's own answer), the week's roster, who is off duty until when, who has
linked which platform and whom no message reaches, with a printable link card for them;
each micro-grid's report link for residents, with its poster and a button to replace it;
and the WeCom customer groups (客户群) of those micro-grids, which office staff may bind to
another micro-grid or unbind (:mod:`gridbot.customer_groups`; audited).

Going on or off duty is the chat's ``/duty`` said to the engine. A link card issues a fresh
one-time code, so only office staff print one, for someone in their part of the tree, and
each card goes to the audit log. A report link and its poster (:mod:`gridbot.residents`)
are for anyone who looks after the micro-grid; replacing the link (it leaked into another
group) makes every printed poster of it stop working, so the page asks to confirm it, and
it goes to the audit log.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from starlette.responses import RedirectResponse, Response

from gridbot import customer_groups
from gridbot.config import Config, Roster
from gridbot.console.app import Page
from gridbot.domain import WEB_PLATFORM, CustomerGroup, DutyStatus, Person, Role
from gridbot.linking import add_code
from gridbot.policy.permissions import STAFF, STEWARDS_AND_UP, scope
from gridbot.policy.routing import Route, route
from gridbot.reach import Reach, reach_of
from gridbot.residents import links
from gridbot.store.base import AuditEntry, Transaction

#: how long the code on a card printed from the console works (handed out over days)
CARD_TTL = timedelta(days=7)
#: more micro-grids than this: the page shows one community or grid at a time
MAX_AT_ONCE = 60
#: what the duty form may say after "off": a duration the chat takes ("3天", "2h")
MAX_FOR = 20


@dataclass(frozen=True, kw_only=True)
class OnDuty:
    """One micro-grid now: who takes a new case, and the roster behind it."""

    code: str
    route: Route
    roster: Roster | None
    #: for each weekday (Monday first): the shifts on it, as (person id, start, end)
    week: tuple[tuple[tuple[str, str, str], ...], ...]


@dataclass(frozen=True, kw_only=True)
class ReportLink:
    """One micro-grid's report link for residents, as its poster carries it."""

    code: str
    url: str
    generation: int


@dataclass(frozen=True, kw_only=True)
class Someone:
    """One person of the part of the tree: their reach, and whether they are off duty."""

    reach: Reach
    off: DutyStatus | None

    @property
    def person(self) -> Person:
        return self.reach.person


def units_under(config: Config, code: str) -> set[str]:
    """The codes at or below ``code`` in the configured tree."""
    parent: dict[str, str] = {c.code: config.subdistrict.code for c in config.communities}
    parent.update({g.code: g.community for g in config.grids})
    parent.update({m.code: m.grid for m in config.microgrids})
    found = {code}
    for unit in parent:
        walk: str | None = unit
        while walk is not None and walk not in found:
            walk = parent.get(walk)
        if walk is not None:
            found.add(unit)
    return found


async def people_in_scope(tx: Transaction, config: Config, person: Person) -> list[Person]:
    """The configured people (no residents) of the person's part of the tree: in a unit at
    or below theirs, in one of their micro-grids, or on one of those micro-grids' rosters."""
    microgrids = await scope(tx, person)
    units = (set() if person.role is Role.STEWARD else units_under(config, person.unit))
    units |= microgrids
    rostered = {p for code in microgrids if (r := config.rosters.get(code))
                for p in (r.primary, *r.backups, *(s.person for s in r.shifts))}
    return [p for p in config.people
            if p.role is not Role.RESIDENT and (p.unit in units or p.id in rostered)]


def _week(roster: Roster | None) -> tuple[tuple[tuple[str, str, str], ...], ...]:
    if roster is None:
        return tuple(() for _ in range(7))
    return tuple(tuple((s.person, s.start.strftime("%H:%M"), s.end.strftime("%H:%M"))
                       for s in roster.shifts if day in s.days) for day in range(7))


async def load(page: Page, chosen: str | None) -> tuple[list[OnDuty], list[Someone]]:
    """The micro-grids of the person's scope (under ``chosen``, if given) and their people."""
    tx, config = page.tx, page.console.config
    now = page.console.now()
    mine = await scope(tx, page.person)
    under = units_under(config, chosen) if chosen else None
    duty = []
    for microgrid in config.microgrids:
        if microgrid.code not in mine or (under is not None and microgrid.code not in under):
            continue
        roster = config.rosters.get(microgrid.code)
        duty.append(OnDuty(code=microgrid.code,
                           route=await route(tx, microgrid.code, now, config.timezone),
                           roster=roster, week=_week(roster)))
    shown = {d.code for d in duty}
    rostered = {p for code in shown if (r := config.rosters.get(code))
                for p in (r.primary, *r.backups, *(s.person for s in r.shifts))}
    everyone = [p for p in await people_in_scope(tx, config, page.person)
                if under is None or p.unit in under or p.id in rostered
                or p.id == page.person.id]
    people = []
    for reach in await reach_of(tx, config, everyone):
        status = await tx.duty(reach.person.id)
        off = status if status and status.off and (status.until is None or status.until > now) \
            else None
        people.append(Someone(reach=reach, off=off))
    return duty, people


def parts(config: Config, person: Person) -> list[tuple[str, str, str]]:
    """The communities and grids below the person's unit, to look at one at a time:
    (code, name, kind)."""
    if person.role is Role.STEWARD:
        return []
    under = units_under(config, person.unit)
    found = []
    for community in config.communities:
        if community.code in under and community.code != person.unit:
            found.append((community.code, community.name, "community"))
        for grid in config.grids:
            if grid.community == community.code and grid.code in under \
                    and grid.code != person.unit:
                found.append((grid.code, grid.name, "grid"))
    return found


async def people_page(page: Page) -> Response:
    config = page.console.config
    offered = parts(config, page.person)
    wanted = page.request.query_params.get("unit", "")
    chosen = wanted if wanted in {code for code, _, _ in offered} else None
    if chosen is None and offered and len(await scope(page.tx, page.person)) > MAX_AT_ONCE:
        chosen = offered[0][0]  # a whole subdistrict is too much for one page
    duty, people = await load(page, chosen)
    names = {p.id: p.name for p in config.people}
    me = next((s for s in people if s.person.id == page.person.id), None)
    report = await report_links(page, [d.code for d in duty])
    rotated = page.request.query_params.get("rotated", "")
    may_bind = page.person.role in STAFF
    groups = await groups_shown(page, [d.code for d in duty], unbound=may_bind and not chosen)
    bound = page.request.query_params.get("group", "")
    return page.render("people.html.j2", duty=duty, people=people, names=names, me=me,
                       customer_groups=groups, may_bind=may_bind,
                       bound=next((g for g in groups if g.chat_id == bound), None),
                       may_duty=page.person.role in STEWARDS_AND_UP,
                       may_print=page.person.role in STAFF, parts=offered, chosen=chosen,
                       today=page.console.now().astimezone(config.timezone).weekday(),
                       said=await page.console.answers(page), report_links=report,
                       may_rotate=page.person.role in STEWARDS_AND_UP,
                       rotated=rotated if any(r.code == rotated for r in report) else "")


async def set_duty(page: Page) -> Response:
    """On or off duty, said to the engine as the chat's ``/duty on`` or ``/duty off 3天``."""
    back = f"{page.console.path}/people"
    state = str(page.form.get("state") or "")
    if state not in ("on", "off"):
        return RedirectResponse(back, status_code=303)
    until = " ".join(str(page.form.get("for") or "").split())[:MAX_FOR]
    command = "/duty on" if state == "on" else f"/duty off {until}".rstrip()
    said = await page.console.say(page.person, command)
    return RedirectResponse(f"{back}?said={said.message_id}", status_code=303)


async def card(page: Page) -> Response:
    """A printable link card (PNG) for someone in the person's part of the tree, with a
    fresh one-time code: office staff only, and audited."""
    from gridbot.cards import card_for, draw_card

    console = page.console
    if page.person.role not in STAFF:
        return console.views.problem("not_staff", status=403, locale=page.locale)
    wanted = str(page.form.get("person") or "")
    now = console.now()
    async with console.store.transaction() as tx:
        allowed = {p.id: p for p in await people_in_scope(tx, console.config, page.person)}
        someone = allowed.get(wanted)
        if someone is None:
            page.transaction = tx
            return page.render("person_missing.html.j2", status=404, who=wanted[:80])
        code, expires = await add_code(tx, console.engine.link_key, someone.id, now, CARD_TTL)
        await tx.add_audit(AuditEntry(at=now, actor_id=page.person.id,
                                      role=page.person.role.value, via=WEB_PLATFORM,
                                      action="link_card", target=someone.id,
                                      summary=f"until {_at(expires)}"))
    # Drawn after the code is stored, outside the transaction: a card takes a moment.
    telegram = console.engine.platforms.get("telegram")
    png = draw_card(card_for(console.config, console.engine.renderer, someone, code, expires,
                             telegram.bot_username if telegram else None))
    return Response(png, media_type="image/png", headers={
        "content-disposition": f'inline; filename="link-card-{someone.id}.png"'})


def _at(instant: datetime) -> str:
    return instant.isoformat(timespec="minutes")


# -- the residents' report links ------------------------------------------------------------


def _residents(page: Page) -> tuple[bytes, str] | None:
    """The residents' key and base URL, if the residents' pages are served."""
    console = page.console
    if not console.settings.residents:
        return None
    return links.residents_key(console.key), links.beside(console.base, console.settings)


async def report_links(page: Page, microgrids: list[str]) -> list[ReportLink]:
    """The report links of ``microgrids`` (of the person's scope), as they are now."""
    served = _residents(page)
    if served is None:
        return []
    key, base = served
    generations = await page.tx.report_link_generations()
    found = []
    for code in microgrids:
        link = links.sign(key, code, generations.get(code, 1))
        found.append(ReportLink(code=code, url=base + link.path(),
                                generation=link.generation))
    return found


async def _looks_after(tx: Transaction, page: Page, microgrid: str) -> bool:
    return page.person.role in STEWARDS_AND_UP and microgrid in await scope(tx, page.person)


async def poster(page: Page) -> Response:
    """A micro-grid's report poster (PNG), for whoever looks after it."""
    from gridbot.residents.poster import draw_poster, poster_for

    console = page.console
    served = _residents(page)
    if served is None:
        return console.views.problem("residents_off", status=404, locale=page.locale)
    key, base = served
    microgrid = console.config.microgrid(str(page.request.path_params["microgrid"]))
    async with console.store.transaction() as tx:
        if microgrid is None or not await _looks_after(tx, page, microgrid.code):
            return console.views.problem("not_your_microgrid", status=403,
                                         locale=page.locale)
        url = await links.url(tx, key, base, microgrid.code)
    # Drawn outside the transaction and off the event loop: a poster takes a moment.
    png = await asyncio.to_thread(draw_poster, poster_for(
        console.config, console.engine.renderer, microgrid, url))
    return Response(png, media_type="image/png", headers={
        "content-disposition": f'attachment; filename="{microgrid.code}.png"'})


async def rotate(page: Page) -> Response:
    """A new report link for a micro-grid (the old one leaked): every poster and link of
    it before stops working. Confirmed on the page; audited."""
    console = page.console
    if _residents(page) is None:
        return console.views.problem("residents_off", status=404, locale=page.locale)
    code = str(page.form.get("microgrid") or "")
    unit = str(page.form.get("unit") or "")
    if not await _looks_after(page.tx, page, code):
        return console.views.problem("not_your_microgrid", status=403, locale=page.locale)
    back = page.url("/people", unit=unit)
    if page.form.get("confirm") != "yes":
        return RedirectResponse(back, status_code=303)
    now = console.now()
    before = await page.tx.report_link_generation(code)
    after = await page.tx.rotate_report_link(code, now, page.person.id)
    await page.tx.add_audit(AuditEntry(at=now, actor_id=page.person.id,
                                       role=page.person.role.value, via=WEB_PLATFORM,
                                       action="rotate_link", target=code,
                                       summary=f"{before} -> {after}"))
    return RedirectResponse(page.url("/people", unit=unit, rotated=code) + "#report-links",
                            status_code=303)


# -- customer groups -------------------------------------------------------------------------


async def groups_shown(page: Page, microgrids: list[str], *,
                       unbound: bool) -> list[CustomerGroup]:
    """The customer groups of ``microgrids``; the unbound ones too where asked (staff
    looking at their whole part of the tree)."""
    shown = set(microgrids)
    return [g for g in await page.tx.customer_groups()
            if g.microgrid in shown or (unbound and not g.microgrid)]


async def bind_group(page: Page) -> Response:
    """Bind a customer group to a micro-grid of the person's scope, or unbind it: office
    staff only; no rule changes it afterwards; audited."""
    console = page.console
    if page.person.role not in STAFF:
        return console.views.problem("not_staff_groups", status=403, locale=page.locale)
    chat = str(page.form.get("chat") or "")[:200]
    code = str(page.form.get("microgrid") or "")
    unit = str(page.form.get("unit") or "")
    mine = await scope(page.tx, page.person)
    group = await page.tx.customer_group(_platform(chat), _chat_id(chat))
    if group is None or (group.microgrid and group.microgrid not in mine) \
            or (code and code not in mine):
        return console.views.problem("not_your_microgrid", status=403, locale=page.locale)
    await customer_groups.bind(page.tx, console.config, group.chat_id, code or None,
                               actor=page.person.id, role=page.person.role.value,
                               via=WEB_PLATFORM, now=console.now())
    return RedirectResponse(page.url("/people", unit=unit, group=group.chat_id)
                            + "#customer-groups", status_code=303)


def _platform(key: str) -> str:
    return key.partition(":")[0]


def _chat_id(key: str) -> str:
    return key.partition(":")[2]


ROUTES = [
    ("/people", people_page, ("GET",), False),
    ("/people/duty", set_duty, ("POST",), True),
    ("/people/card", card, ("POST",), True),
    ("/people/poster/{microgrid}", poster, ("GET",), True),
    ("/people/rotate", rotate, ("POST",), False),
    ("/people/group", bind_group, ("POST",), False),
]
