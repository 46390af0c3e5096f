"""The web's commands. ``gridbot web-login NAME``: a one-time login link to the office
console, printed at the office for someone (the same link 后台 gives in a private chat with
the bot). ``gridbot qr M01``: a micro-grid's report link for residents and its poster
(:mod:`gridbot.residents.poster`), for the steward to post in the group; ``--rotate``
replaces a link that leaked, and the old posters stop working."""

from __future__ import annotations

import argparse
from pathlib import Path

from gridbot.cli.command import Group
from gridbot.cli.session import Session
from gridbot.config import Config
from gridbot.console.auth import console_key, issue_login
from gridbot.domain import MicroGrid, Role
from gridbot.errors import OptionError
from gridbot.store.base import AuditEntry

COMMANDS = Group()


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME")


@COMMANDS.command("web-login", arguments=_arguments)
async def web_login(session: Session, args: argparse.Namespace) -> int:
    config, renderer = session.configured, session.renderer
    if config.web is None:
        print(renderer.text("no_console", source=config.source), file=session.err)
        return 2
    engine = await session.engine()
    now = session.clock.now()
    async with engine.store.transaction() as tx:
        people = [p for p in await tx.people_named(args.name) if not p.auto and p.active]
        if not people:
            print(renderer.text("no_person", name=args.name), file=session.err)
            return 1
        if len(people) > 1:
            print(renderer.text("ambiguous_person", name=args.name), file=session.err)
            return 1
        person = people[0]
        if person.role is Role.RESIDENT:
            print(renderer.text("web_login_resident", name=person.name), file=session.err)
            return 1
        key = console_key(config.web, lambda: engine.link_key)
        link, expires = await issue_login(tx, config, key, person.id, now=now, via="cli")
        await tx.add_audit(AuditEntry(at=now, actor_id=person.id, role=person.role.value,
                                      via="cli", action="web", target=person.id))
    print(renderer.text("web_login", name=person.name, link=link,
                        minutes=config.web.link_minutes,
                        expires=expires.astimezone(config.timezone).strftime("%Y-%m-%d %H:%M")),
          file=session.out)
    return 0


# -- gridbot qr ------------------------------------------------------------------------------

#: the micro-grids an unknown code's answer lists, at most
_LISTED = 12


def _qr_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("microgrids", nargs="*", metavar="CODE")
    parser.add_argument("--all", action="store_true")
    parser.add_argument("--out", metavar="DIR")
    parser.add_argument("--rotate", action="store_true")


def _chosen(config: Config, codes: list[str]) -> tuple[list[MicroGrid], str | None]:
    """The micro-grids named (any case, each once), or the first code not configured."""
    by_code = {m.code.upper(): m for m in config.microgrids}
    chosen: list[MicroGrid] = []
    for code in codes:
        found = by_code.get(code.strip().upper())
        if found is None:
            return [], code
        if found not in chosen:
            chosen.append(found)
    return chosen, None


@COMMANDS.command("qr", arguments=_qr_arguments)
async def qr(session: Session, args: argparse.Namespace) -> int:
    """Each micro-grid's report link, printed, and its poster, written as ``CODE.png``."""
    from gridbot.residents import links
    from gridbot.residents.poster import draw_poster, poster_for

    config, renderer = session.configured, session.renderer
    settings = config.web
    if settings is None or not settings.residents:
        print(renderer.text("qr_no_residents", source=config.source,
                            console=settings is not None), file=session.err)
        return 2
    if not args.microgrids and not args.all:
        raise OptionError("CODE", "", "microgrid_or_all")
    chosen, unknown = _chosen(config, args.microgrids)
    if unknown is not None:
        known = [m.code for m in config.microgrids]
        print(renderer.text("qr_unknown", code=unknown, known=" ".join(known[:_LISTED]),
                            more=max(0, len(known) - _LISTED)), file=session.err)
        return 1
    if args.all:
        chosen = list(config.microgrids)
    folder = Path(args.out or ".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OptionError("--out", str(folder), "folder", str(exc)) from None
    engine = await session.engine()
    key = links.key_for(config, settings, lambda: engine.link_key)
    base = links.base_url(config, settings)
    now = session.clock.now()
    made: list[tuple[MicroGrid, str]] = []
    async with engine.store.transaction() as tx:
        for microgrid in chosen:
            if args.rotate:
                before = await tx.report_link_generation(microgrid.code)
                after = await tx.rotate_report_link(microgrid.code, now, "cli")
                await tx.add_audit(AuditEntry(at=now, actor_id="", role="", via="cli",
                                              action="rotate_link", target=microgrid.code,
                                              summary=f"{before} -> {after}"))
            made.append((microgrid, await links.url(tx, key, base, microgrid.code)))
    await session.close()  # the links are settled: the posters are drawn without the store
    for microgrid, link in made:
        path = folder / f"{microgrid.code}.png"
        path.write_bytes(draw_poster(poster_for(config, renderer, microgrid, link)))
        print(renderer.text("qr_line", code=microgrid.code, name=microgrid.name, link=link,
                            file=str(path)), file=session.out)
    if args.rotate:
        print(renderer.text("qr_rotated", count=len(made)), file=session.out)
    print(renderer.text("qr_done", count=len(made), folder=str(folder)), file=session.out)
    return 0
