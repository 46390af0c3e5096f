"""``gridbot people`` and ``gridbot link-code --all-unlinked``: getting everyone on board.

``people`` lists every configured person with their role, their unit, where they are
on a roster, the chat accounts they have linked, and whether a private message can
reach them now (the engine's own rule: a linked account with a private chat that has
not refused the bot). ``link-code --all-unlinked`` gives each person not yet linked a
one-time code and writes what a steward prints and hands out: a sheet (.xlsx) and one
card (.png) per person with the code, the Telegram link that opens the bot with it
(``/start CODE`` links at once) and its QR code, and the words to send on WeChat.

Both read the platforms' settings only to know which are configured, never their
secrets, so they run where no secret is set.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from gridbot.clock import SystemClock
from gridbot.config import Config
from gridbot.domain import Person, Role
from gridbot.durations import parse_duration
from gridbot.errors import BadArguments, NotFound, OptionError
from gridbot.linking import DEFAULT_TTL, issue_link_code
from gridbot.policy.routing import account_states, why_unreachable
from gridbot.render import Renderer
from gridbot.store import Store, Transaction, store_for_url

if TYPE_CHECKING:
    from gridbot.cards import LinkCard

#: how long the codes on printed cards stay valid unless --ttl says otherwise: cards are
#: handed out over days, not read out on the phone
CARD_TTL = timedelta(days=7)
_BOT_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               common: argparse.ArgumentParser) -> None:
    """``gridbot people``; its help is in ``templates/*/cli/args.j2``."""
    people = sub.add_parser("people", parents=[common])
    people.add_argument("--scope", metavar="CODE")
    people.add_argument("--unreachable", action="store_true")


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


def units_under(config: Config, code: str | None) -> set[str] | None:
    """The codes at or below ``code`` in the tree (``None``: everything)."""
    if code is None:
        return None
    parent = {c.code: config.subdistrict.code for c in config.communities}
    parent.update({g.code: g.community for g in config.grids})
    parent.update({m.code: m.grid for m in config.microgrids})
    every = {config.subdistrict.code, *parent}
    found = next((u for u in every if u.upper() == code.strip().upper()), None)
    if found is None:
        raise OptionError("--scope", code, "scope")
    under = set()
    for unit in every:
        walk: str | None = unit
        while walk is not None:
            if walk == found:
                under.add(unit)
                break
            walk = parent.get(walk)
    return under


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


#: how many unreachable people a warning names one by one before counting the rest
WARN_NAMES = 20


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


#: how long check-config waits for the database before it says it could not read it
READ_TIMEOUT = 10.0


async def unreachable_for_check(config: Config) -> tuple[list[Reach], str]:
    """For ``gridbot check-config``: the rostered people routing passes over, and why
    that could not be read ("" if it could).

    A database that exists is read (opening it applies pending migrations, as every
    office command does), without touching its org or people; one that does not is not
    created: then nobody has linked anything yet, and every rostered person is listed.
    """
    def everyone(why: str) -> tuple[list[Reach], str]:
        return _unlinked(config, rostered(config)), why

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


def _unlinked(config: Config, people: list[Person]) -> list[Reach]:
    duty = _duties(config)
    return [Reach(person=p, accounts=(), duty=tuple(duty.get(p.id, ()))) for p in people]


async def _open(config: Config, renderer: Renderer) -> Store:
    """The store, with the org and people as the configuration has them now."""
    from gridbot.engine import Engine

    store = store_for_url(config.storage_url)
    await store.open()
    try:
        await Engine(config, store, SystemClock(), renderer).start()
    except BaseException:
        await store.close()
        raise
    return store


def _configured(config: Config, scope: set[str] | None) -> list[Person]:
    return [p for p in config.people if scope is None or p.unit in scope]


# -- gridbot people ------------------------------------------------------------------------


async def run(config: Config, args: argparse.Namespace, renderer: Renderer,
              out: TextIO | None = None) -> int:
    out = out or sys.stdout
    scope = units_under(config, args.scope)
    store = await _open(config, renderer)
    try:
        async with store.transaction() as tx:
            found = await reach_of(tx, config, _configured(config, scope))
    finally:
        await store.close()
    shown = [r for r in found if not (args.unreachable and r.reachable)]
    text = renderer.text
    names = {**{c.code: c.name for c in config.communities},
             **{g.code: g.name for g in config.grids},
             **{m.code: m.name for m in config.microgrids},
             config.subdistrict.code: config.subdistrict.name}
    rows = [text("people_header").split("\t")]
    comma = "、" if renderer.default_locale == "zh-CN" else ", "
    for r in shown:
        rows.append(text(
            "people_row", name=r.person.name, id=r.person.id, role=r.person.role.value,
            unit=f"{r.person.unit} {names.get(r.person.unit, '')}".strip(),
            duty=" ".join(text("people_duty", microgrid=m, kind=k) for m, k in r.duty),
            accounts=comma.join(text("people_account", platform=p, state=s)
                                for p, s in r.accounts),
            ok=r.reachable).split("\t"))
    for line in _columns(rows):
        print(line, file=out)
    unreachable = [r for r in found if not r.reachable]
    print(text("people_summary", total=len(found), reachable=len(found) - len(unreachable),
               unreachable=len(unreachable),
               on_duty=sum(1 for r in unreachable if r.duty),
               unlinked=sum(1 for r in unreachable if not r.accounts)), file=out)
    return 0


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _columns(rows: list[list[str]]) -> list[str]:
    """Rows as aligned columns, counting a Chinese character as two."""
    widths = [max(_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell + " " * (widths[i] - _width(cell)) for i, cell in enumerate(row))
            .rstrip() for row in rows]


# -- gridbot link-code --all-unlinked ---------------------------------------------------------


async def _bot_username(store: Store, config: Config, given: str | None) -> str | None:
    """The Telegram bot to link to: ``--bot``, else the one the running bot reported."""
    if given:
        name = given.strip().removeprefix("@")
        if not _BOT_USERNAME.fullmatch(name) or not name.lower().endswith("bot"):
            raise OptionError("--bot", given, "bot")
        return name
    if config.telegram is None:
        return None
    async with store.transaction() as tx:
        beats = await tx.heartbeats()
    reported = next((b.detail for b in beats if b.duty == "send:telegram" and b.detail), None)
    if reported is None:
        raise OptionError("--bot", "", "no_bot")
    return reported


async def cards(config: Config, args: argparse.Namespace, renderer: Renderer,
                out: TextIO | None = None) -> int:
    """Codes, the sheet and the cards for everyone not yet linked (or one named person)."""
    from gridbot.cards import draw_card, write_sheet

    out = out or sys.stdout
    if not args.all_unlinked and not args.name:
        raise OptionError("NAME", "", "name_or_all")
    ttl = CARD_TTL if args.all_unlinked else DEFAULT_TTL
    if args.ttl:
        try:
            ttl = parse_duration(args.ttl)
        except ValueError:
            raise OptionError("--ttl", args.ttl, "duration") from None
    scope = units_under(config, args.scope)
    clock = SystemClock()
    now = clock.now()
    local_now = now.astimezone(config.timezone)
    folder = Path(args.out or f"link-codes-{local_now:%Y%m%d-%H%M}")
    text = renderer.text
    store = await _open(config, renderer)
    try:
        bot = await _bot_username(store, config, args.bot)
        if args.all_unlinked:
            async with store.transaction() as tx:
                found = await reach_of(tx, config, _configured(config, scope))
            people = [r.person for r in found if not r.accounts]
        else:
            async with store.transaction() as tx:
                named = [p for p in await tx.people_named(args.name) if not p.auto]
            if len(named) != 1:
                print(text("ambiguous_person" if named else "no_person", name=args.name),
                      file=sys.stderr)
                return 1
            people = named
        if not people:
            print(text("cards_nobody"), file=out)
            return 0
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise OptionError("--out", str(folder), "folder", str(exc)) from None
        issued: list[tuple[LinkCard, Path]] = []
        from gridbot.engine import Engine

        engine = Engine(config, store, clock, renderer)  # the codes' keyed hash is its own
        for number, person in enumerate(people, 1):
            try:
                person, code, expires = await issue_link_code(engine, person.id, now, ttl)
            except (NotFound, BadArguments):  # removed from the configuration meanwhile
                continue
            card = _card(config, renderer, person, code, expires, bot)
            path = folder / f"{number:02d}-{_file_safe(person.name)}.png"
            issued.append((card, path))
    finally:
        await store.close()
    for card, path in issued:
        path.write_bytes(draw_card(card))
        path.chmod(0o600)
    sheet = folder / text("cards_sheet_name")
    write_sheet(sheet, [c for c, _ in issued], [p.name for _, p in issued],
                text("cards_sheet_header").split("\t"), text("cards_sheet_title"))
    sheet.chmod(0o600)
    print(text("cards_done", count=len(issued), folder=str(folder), sheet=sheet.name,
               expires=(now + ttl).astimezone(config.timezone).strftime("%Y-%m-%d %H:%M"),
               telegram=bool(bot), example=issued[0][0].link if issued and bot else ""),
          file=out)
    return 0


def _card(config: Config, renderer: Renderer, person: Person, code: str, expires: datetime,
          bot: str | None) -> LinkCard:
    from gridbot.cards import LinkCard, telegram_link

    text = renderer.text
    locale = renderer.locale_for(person.locale)
    unit = (config.microgrid(person.unit) or config.grid(person.unit)
            or config.community(person.unit))
    unit_name = unit.name if unit else config.subdistrict.name
    link = telegram_link(bot, code) if bot else ""
    # WeChat as the design has it: staff on the WeCom app, residents on the Official Account
    resident = person.role is Role.RESIDENT
    wecom = config.wecom is not None and not resident
    mp = config.official_account is not None and resident
    return LinkCard(
        title=text("card_title", locale=locale, bot=config.bot_name, place=unit_name),
        name=person.name,
        subtitle=text("card_subtitle", locale=locale, role=person.role.value, unit=unit_name),
        code_label=text("card_code_label", locale=locale),
        code=code,
        link=link,
        qr_caption=text("card_qr_caption", locale=locale) if link else "",
        lines=tuple(line for line in text(
            "card_lines", locale=locale, code=code, bot=config.bot_name, telegram=bool(link),
            wecom=wecom, mp=mp, other=not (link or wecom or mp)).split("\n") if line),
        footer=text("card_footer", locale=locale,
                    expires=expires.astimezone(config.timezone).strftime("%Y-%m-%d %H:%M")),
        role=text("role_name", locale=locale, role=person.role.value),
        unit=person.unit,
        person_id=person.id,
        expires=expires.astimezone(config.timezone).strftime("%Y-%m-%d %H:%M"),
        send=text("card_send", locale=locale, code=code),
    )


def _file_safe(name: str) -> str:
    """A person's name as part of a file name on any system."""
    return re.sub(r'[\\/:*?"<>|\s]+', "_", name).strip("._") or "person"
