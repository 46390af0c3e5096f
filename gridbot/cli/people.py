"""``gridbot people`` and ``gridbot link-code``: getting everyone on board.

``people`` lists every configured person with their role, their unit, where they are
on a roster, the chat accounts they have linked, and whether a private message can
reach them now (the engine's own rule: a linked account with a private chat that has
not refused the bot, :mod:`gridbot.reach`); then each micro-grid's WeCom customer
groups, where there are any (:mod:`gridbot.customer_groups`). ``link-code NAME`` prints one person's
one-time code; ``link-code --all-unlinked`` gives each person not yet linked a
one-time code and writes what a steward prints and hands out: a sheet (.xlsx) and one
card (.png) per person with the code, the Telegram link that opens the bot with it
(``/start CODE`` links at once) and its QR code, and the words to send on WeChat.

Both read the platforms' settings only to know which are configured, never their
secrets, so they run where no secret is set.
"""

from __future__ import annotations

import argparse
import re
import unicodedata
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from gridbot.cli.command import Group
from gridbot.cli.session import Session
from gridbot.config import Config
from gridbot.domain import Person
from gridbot.durations import parse_duration
from gridbot.errors import BadArguments, NotFound, OptionError
from gridbot.linking import DEFAULT_TTL, issue_link_code
from gridbot.reach import reach_of
from gridbot.store import Store

if TYPE_CHECKING:
    from gridbot.cards import LinkCard

#: how long the codes on printed cards stay valid unless --ttl says otherwise: cards are
#: handed out over days, not read out on the phone
CARD_TTL = timedelta(days=7)
_BOT_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")

COMMANDS = Group()


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


def _configured(config: Config, scope: set[str] | None) -> list[Person]:
    return [p for p in config.people if scope is None or p.unit in scope]


# -- gridbot people ------------------------------------------------------------------------


def _people_arguments(people: argparse.ArgumentParser) -> None:
    people.add_argument("--scope", metavar="CODE")
    people.add_argument("--unreachable", action="store_true")


@COMMANDS.command("people", arguments=_people_arguments)
async def people(session: Session, args: argparse.Namespace) -> int:
    config, renderer, out = session.configured, session.renderer, session.out
    scope = units_under(config, args.scope)
    async with (await session.engine()).store.transaction() as tx:
        found = await reach_of(tx, config, _configured(config, scope))
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
    for line in columns(rows):
        print(line, file=out)
    unreachable = [r for r in found if not r.reachable]
    print(text("people_summary", total=len(found), reachable=len(found) - len(unreachable),
               unreachable=len(unreachable),
               on_duty=sum(1 for r in unreachable if r.duty),
               unlinked=sum(1 for r in unreachable if not r.accounts)), file=out)
    await _customer_groups(session, scope)
    return 0


async def _customer_groups(session: Session, scope: set[str] | None) -> None:
    """Each micro-grid's customer groups (客户群), after the people, where there are any."""
    config, text = session.configured, session.renderer.text
    async with (await session.engine()).store.transaction() as tx:
        found = await tx.customer_groups()
    if not found:
        return
    print(text("people_groups_heading"), file=session.out)
    for unit in config.microgrids:
        if scope is not None and unit.code not in scope:
            continue
        mine = [g for g in found if g.microgrid == unit.code]
        print(text("people_groups_line", code=unit.code, name=unit.name,
                   groups=[(g.name, g.members, g.owner_id) for g in mine]), file=session.out)
    unbound = [g for g in found if not g.microgrid]
    if unbound and scope is None:
        print(text("people_groups_unbound", groups=[g.name or g.chat_id for g in unbound]),
              file=session.out)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def columns(rows: list[list[str]]) -> list[str]:
    """Rows as aligned columns, counting a Chinese character as two."""
    widths = [max(_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell + " " * (widths[i] - _width(cell)) for i, cell in enumerate(row))
            .rstrip() for row in rows]


# -- gridbot link-code ------------------------------------------------------------------------


def _link_code_arguments(link: argparse.ArgumentParser) -> None:
    link.add_argument("name", nargs="?", metavar="NAME")
    link.add_argument("--ttl", default=None, metavar="DURATION")
    link.add_argument("--all-unlinked", action="store_true", dest="all_unlinked")
    link.add_argument("--scope", metavar="CODE")
    link.add_argument("--out", metavar="DIR")
    link.add_argument("--bot", metavar="USERNAME")


@COMMANDS.command("link-code", arguments=_link_code_arguments)
async def link_code(session: Session, args: argparse.Namespace) -> int:
    """One person's code, printed; or (``--all-unlinked``, ``--out``) printable cards."""
    if args.all_unlinked or args.name is None or args.out:
        return await cards(session, args)
    ttl: timedelta = DEFAULT_TTL
    if args.ttl:
        try:
            ttl = parse_duration(args.ttl)
        except ValueError:
            raise OptionError("--ttl", args.ttl, "duration") from None
    config, renderer = session.configured, session.renderer
    engine = await session.engine()
    try:
        person, code, expires = await issue_link_code(engine, args.name, session.clock.now(),
                                                      ttl)
    except NotFound:
        print(renderer.text("no_person", name=args.name), file=session.err)
        return 1
    except BadArguments:
        print(renderer.text("ambiguous_person", name=args.name), file=session.err)
        return 1
    print(renderer.text("link_code", name=person.name, code=code,
                        expires=expires.astimezone(config.timezone).strftime("%Y-%m-%d %H:%M")),
          file=session.out)
    return 0


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


async def cards(session: Session, args: argparse.Namespace) -> int:
    """Codes, the sheet and the cards for everyone not yet linked (or one named person)."""
    from gridbot.cards import card_for, draw_card, write_sheet

    config, renderer, out = session.configured, session.renderer, session.out
    if not args.all_unlinked and not args.name:
        raise OptionError("NAME", "", "name_or_all")
    ttl = CARD_TTL if args.all_unlinked else DEFAULT_TTL
    if args.ttl:
        try:
            ttl = parse_duration(args.ttl)
        except ValueError:
            raise OptionError("--ttl", args.ttl, "duration") from None
    scope = units_under(config, args.scope)
    now = session.clock.now()
    local_now = now.astimezone(config.timezone)
    folder = Path(args.out or f"link-codes-{local_now:%Y%m%d-%H%M}")
    text = renderer.text
    engine = await session.engine()  # the codes' keyed hash is its own
    store = engine.store
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
                  file=session.err)
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
    for number, person in enumerate(people, 1):
        try:
            person, code, expires = await issue_link_code(engine, person.id, now, ttl)
        except (NotFound, BadArguments):  # removed from the configuration meanwhile
            continue
        card = card_for(config, renderer, person, code, expires, bot)
        path = folder / f"{number:02d}-{_file_safe(person.name)}.png"
        issued.append((card, path))
    await session.close()  # the codes are issued: the cards are drawn without the store
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


def _file_safe(name: str) -> str:
    """A person's name as part of a file name on any system."""
    return re.sub(r'[\\/:*?"<>|\s]+', "_", name).strip("._") or "person"
