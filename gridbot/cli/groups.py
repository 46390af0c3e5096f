"""``gridbot groups``: the customer groups (客户群) and their micro-grids; binding by hand.

``groups`` lists every customer group the running bot has seen (its name, owner, member
count, micro-grid and how it was bound); ``groups bind CHAT M01`` binds one by hand (its
chat id, or its exact name), which no rule undoes, and ``groups unbind CHAT`` takes it out
of its micro-grid for good. Both go to the audit log. The list comes from the database:
``gridbot run`` keeps it current (:mod:`gridbot.customer_groups`).
"""

from __future__ import annotations

import argparse

from gridbot import customer_groups
from gridbot.cli.command import Group
from gridbot.cli.people import columns, units_under
from gridbot.cli.session import Session
from gridbot.customer_groups import CLI, BindError
from gridbot.domain import CustomerGroup
from gridbot.errors import OptionError

COMMANDS = Group()


def _arguments(groups: argparse.ArgumentParser) -> None:
    groups.add_argument("action", nargs="?", choices=("list", "bind", "unbind"),
                        default="list")
    groups.add_argument("chat", nargs="?", metavar="CHAT")
    groups.add_argument("microgrid", nargs="?", metavar="MICROGRID")
    groups.add_argument("--scope", metavar="CODE")
    groups.add_argument("--dismissed", action="store_true")


@COMMANDS.command("groups", arguments=_arguments)
async def groups(session: Session, args: argparse.Namespace) -> int:
    if args.action == "list":
        return await _list(session, args)
    if not args.chat or (args.action == "bind") != bool(args.microgrid):
        raise OptionError(args.action, "", "group_args")
    config, text = session.configured, session.renderer.text
    store = (await session.engine()).store
    try:
        async with store.transaction() as tx:
            group = await customer_groups.bind(
                tx, config, args.chat, args.microgrid if args.action == "bind" else None,
                actor=CLI, role="", via=CLI, now=session.clock.now())
    except BindError as exc:
        print(text("groups_bind_error", reason=exc.reason, given=exc.given,
                   known=" ".join(m.code for m in config.microgrids)), file=session.err)
        return 1
    print(text("groups_bound", name=group.name, chat=group.chat_id,
               microgrid=group.microgrid or ""), file=session.out)
    return 0


async def _list(session: Session, args: argparse.Namespace) -> int:
    config, text, out = session.configured, session.renderer.text, session.out
    scope = units_under(config, args.scope)
    async with (await session.engine()).store.transaction() as tx:
        found = await tx.customer_groups(dismissed=args.dismissed)
    shown = [g for g in found if scope is None or g.microgrid in scope]
    if not found:
        print(text("groups_none"), file=out)
        return 0
    rows = [text("groups_header").split("\t")]
    rows += [_row(session, g).split("\t") for g in shown]
    for line in columns(rows):
        print(line, file=out)
    live = [g for g in shown if g.dismissed_at is None]
    print(text("groups_summary", total=len(live), bound=sum(1 for g in live if g.microgrid),
               members=sum(g.members for g in live)), file=out)
    return 0


def _row(session: Session, group: CustomerGroup) -> str:
    names = {m.code: m.name for m in session.configured.microgrids}
    tz = session.configured.timezone
    return session.renderer.text(
        "groups_row", chat=group.chat_id, name=group.name, owner=group.owner_id,
        members=group.members, microgrid=group.microgrid or "",
        unit=names.get(group.microgrid or "", ""), by=group.bound_by,
        dismissed=group.dismissed_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        if group.dismissed_at else "")
