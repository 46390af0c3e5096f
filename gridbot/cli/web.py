"""``gridbot web-login NAME``: a one-time login link to the office console, printed at the
office for someone (the same link 后台 gives in a private chat with the bot)."""

from __future__ import annotations

import argparse

from gridbot.cli.command import Group
from gridbot.cli.session import Session
from gridbot.console.auth import console_key, issue_login
from gridbot.domain import Role
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
