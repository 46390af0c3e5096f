"""``gridbot notice``: write, follow, list and cancel notices from the command line.

The command line holds no platform connection; the database holds the truth. A
notice written here is stored as due now (or at ``--at``), and the running bot
(``gridbot run``) starts and sends it at its next sweep, within seconds. The progress
bar follows the delivery rows in the database until every group is settled;
``--no-wait`` leaves it to the bot.

It never waits for a bot that is not there: the process sending for a platform keeps a
heartbeat in the database (:mod:`gridbot.singleton_duties`). With no living sender for the
notice's groups the command says so at once and leaves the notice to the next start;
if the sender goes away while the bar runs, it says so and stops watching.

Messages are the chat's own templates, rendered as plain text, so the command line and
the chat say the same thing.

``--plan --scope S`` writes nothing: it prints the notice's plan (:mod:`gridbot.plan`),
channel by channel, with the limits of the adapters ``gridbot run`` would send with.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from datetime import datetime
from typing import Any

from gridbot import group_tasks, notices, plan, singleton_duties
from gridbot.cli.command import Group
from gridbot.cli.people import columns
from gridbot.cli.session import Session
from gridbot.domain import DeliveryStatus, NoticeStatus, Person, TextFormat
from gridbot.engine import Engine
from gridbot.errors import UserError
from gridbot.policy.permissions import NOTICE_SENDERS
from gridbot.store.base import Transaction

#: how often the progress bar reads the database
POLL = 0.5
#: after this many seconds without the bot starting the notice, say what may be wrong
HINT_AFTER = 30.0
#: how often the progress bar checks that a bot still sends
SENDER_CHECK = 2.0


COMMANDS = Group()


def _arguments(notice: argparse.ArgumentParser) -> None:
    what = notice.add_mutually_exclusive_group(required=True)
    what.add_argument("--scope")
    what.add_argument("--list", action="store_true")
    what.add_argument("--show", type=int, metavar="N")
    what.add_argument("--cancel", type=int, metavar="N")
    notice.add_argument("--text")
    notice.add_argument("--at", metavar="TIME")
    notice.add_argument("--as", dest="as_person", metavar="PERSON")
    notice.add_argument("--no-wait", action="store_true")
    notice.add_argument("--plan", action="store_true")


@COMMANDS.command("notice", arguments=_arguments)
async def notice(session: Session, args: argparse.Namespace) -> int:
    engine = await session.engine()
    try:
        return await _command(engine, args)
    except UserError as refusal:
        _print(engine, refusal.template, file=sys.stderr, **refusal.context)
        return 1


async def _command(engine: Engine, args: argparse.Namespace) -> int:
    async with engine.store.transaction() as tx:
        author = await _author(engine, tx, args.as_person)
    if args.list:
        return await _list(engine, author)
    if args.show is not None:
        return await _show(engine, author, args.show)
    if args.cancel is not None:
        return await _cancel(engine, author, args.cancel)
    if args.plan:
        return await _plan(engine, author, args.scope)
    return await _send(engine, author, args)


async def _author(engine: Engine, tx: Transaction, name: str | None) -> Person | None:
    if name is None:
        return None
    found = await tx.people_named(name)
    if not found:
        raise UserError("error_no_person", name=name)
    if len(found) > 1:
        raise UserError("error_ambiguous_person", name=name, people=found)
    if found[0].role not in NOTICE_SENDERS:
        raise UserError("error_permission", command="notice", role=found[0].role.value)
    return found[0]


async def _send(engine: Engine, author: Person | None, args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == "-" else (args.text or "")
    text = text.strip()
    if not text:
        raise UserError("error_usage", command="notice", word="notice")
    if len(text) > engine.config.limits.max_text_chars:
        raise UserError("error_too_long", length=len(text),
                        limit=engine.config.limits.max_text_chars)
    now = engine.clock.now()
    send_at = None
    if args.at:
        send_at, rest = notices.parse_when(args.at, now, engine.config.timezone)
        if rest:
            raise notices.WhenError(reason="unreadable", text=args.at)
    async with engine.store.transaction() as tx:
        scope = await notices.resolve_scope(tx, author, args.scope)
        groups = await notices.group_count(tx, scope.microgrids)
        customer, _ = await group_tasks.customer_groups_of(tx, scope.microgrids, now)
        if groups == 0 and not customer and not await notices.forwarded(
                engine.services, tx, scope.microgrids, now=now):
            raise notices.ScopeError(reason="empty", item=scope.label)
        written = await notices.write(tx, author=author, scope=scope, text=text, now=now,
                                      send_at=send_at)
    print(_cli(engine, "notice_saved", number=written.id, microgrids=len(scope.microgrids),
               groups=groups, at=_local(engine, send_at) if send_at else ""))
    platforms, sending = await senders(engine, scope.microgrids)
    if not sending:
        print(_cli(engine, "notice_no_sender", number=written.id, later=send_at is not None),
              file=sys.stderr)
        return 0
    if platforms - sending:
        comma = "、" if engine.config.locale == "zh-CN" else ", "
        names = comma.join(_cli(engine, "platform_name", platform=p)
                           for p in sorted(platforms - sending))
        print(_cli(engine, "notice_some_senders", platforms=names), file=sys.stderr)
    if send_at is not None or args.no_wait:
        return 0
    return await follow(engine, written.id, sender_seen=True)


async def _plan(engine: Engine, author: Person | None, words: str) -> int:
    """The plan of a notice to ``words``, as a table."""
    from gridbot.runtime import configured_adapters

    config = engine.config
    adapters = configured_adapters(config)  # built, not opened: nothing is sent
    senders = plan.senders_of(adapters)
    for adapter in adapters:
        with contextlib.suppress(Exception):
            await adapter.close()
    async with engine.store.transaction() as tx:
        scope = await notices.resolve_scope(tx, author, words)
        latest = await tx.notices(limit=1)
        made = await plan.make_plan(tx, scope, senders=senders, now=engine.clock.now(),
                                    links=engine.resident_links,
                                    number=(latest[0].id if latest else 0) + 1)
    text = engine.render("cli/notice_plan", locale=config.locale, fmt=TextFormat.PLAIN,
                         plan=made, round_trip=plan.ROUND_TRIP,
                         names={m.code: m.name for m in config.microgrids})
    print(aligned(text))
    return 0


async def senders(engine: Engine, microgrids: Any) -> tuple[set[str], set[str]]:
    """The platforms of the groups in ``microgrids``, and those of them a living
    ``gridbot run`` sends for now (its ``send:<platform>`` heartbeat is fresh)."""
    async with engine.store.transaction() as tx:
        platforms = {chat.platform for mg in microgrids for chat in await tx.group_chats(mg)}
        beats = await tx.heartbeats()
    now = engine.clock.now()
    return platforms, {p for p in platforms if singleton_duties.alive(beats, f"send:{p}", now)}


async def _sender_gone(engine: Engine, number: int) -> bool:
    """Whether every delivery still pending waits for a platform nobody sends for."""
    async with engine.store.transaction() as tx:
        pending = {d.platform for d in await tx.deliveries(number, statuses=(
            DeliveryStatus.QUEUED, DeliveryStatus.SENDING))}
        beats = await tx.heartbeats()
    now = engine.clock.now()
    return bool(pending) and not any(singleton_duties.alive(beats, f"send:{p}", now)
                                     for p in pending)


async def follow(engine: Engine, number: int, *, poll: float = POLL,
                 hint_after: float = HINT_AFTER, sender_seen: bool = False) -> int:
    """A progress bar over the notice's deliveries until none is pending; 0 if all arrived.

    ``sender_seen``: a bot was sending when the notice was written. Should it go away
    (no fresh heartbeat for the platforms still to be sent to), the bar stops and says
    so, rather than waiting for ever."""
    from tqdm import tqdm

    waited = 0.0
    checked = 0.0
    bar: Any = None
    try:
        while True:
            async with engine.store.transaction() as tx:
                notice = await tx.notice(number)
                counts = await tx.delivery_counts(number)
            assert notice is not None
            if sender_seen and waited - checked >= SENDER_CHECK:
                checked = waited
                gone = (await _sender_gone(engine, number) if notice.status is not
                        NoticeStatus.SCHEDULED else not any((await senders(
                            engine, notice.microgrids))[1]))
                if gone:
                    if bar is not None:
                        bar.close()
                    print(_cli(engine, "notice_sender_gone", number=number), file=sys.stderr)
                    return 1
            if notice.status is NoticeStatus.SCHEDULED:
                if waited == 0:
                    print(_cli(engine, "notice_waiting"), file=sys.stderr)
                waited += poll
                if waited - poll < hint_after <= waited:
                    print(_cli(engine, "notice_no_bot"), file=sys.stderr)
            elif notice.status is NoticeStatus.CANCELLED:
                _print(engine, "notice_status", notice=notice, counts=counts, problems=[],
                       author=None)
                return 1
            else:
                if bar is None:
                    bar = tqdm(total=counts.total, desc=_cli(engine, "notice_bar"),
                               unit="", file=sys.stderr, dynamic_ncols=True)
                bar.update(counts.settled - bar.n)
                bar.set_postfix_str(_cli(engine, "notice_bar_counts", sent=counts.sent,
                                         failed=counts.failed + counts.unknown), refresh=True)
                if counts.pending == counts.waiting:
                    bar.close()
                    bar = None
                    async with engine.store.transaction() as tx:
                        problems = await tx.deliveries(number, statuses=notices.PROBLEMS)
                        owners = await group_tasks.owner_lines(tx, number)
                    if counts.waiting:  # the rest waits for owners' taps (hours): who
                        _print(engine, "notice_status", notice=notice, counts=counts,
                               problems=problems, author=None, owners=owners)
                    else:
                        _print(engine, "notice_summary", notice=notice, counts=counts,
                               problems=problems)
                    return 0 if not problems else 1
            await asyncio.sleep(poll)
            waited += 0 if notice.status is NoticeStatus.SCHEDULED else poll
    except asyncio.CancelledError:  # Ctrl-C: stop watching; the bot goes on sending
        if bar is not None:
            bar.close()
        print(_cli(engine, "notice_left", number=number), file=sys.stderr)
        raise


async def _list(engine: Engine, author: Person | None) -> int:
    async with engine.store.transaction() as tx:
        visible = [n for n in await tx.notices(limit=500)
                   if await notices.may_see(tx, author, n)]
        scheduled = sorted((n for n in visible if n.status is NoticeStatus.SCHEDULED),
                           key=lambda n: (n.send_at, n.id))
        recent = [(n, await tx.delivery_counts(n.id)) for n in visible
                  if n.status in (NoticeStatus.SENDING, NoticeStatus.DONE)][:10]
    _print(engine, "notice_list", scheduled=scheduled, recent=recent)
    return 0


async def _show(engine: Engine, author: Person | None, number: int) -> int:
    async with engine.store.transaction() as tx:
        found = await tx.notice(number)
        if found is None or not await notices.may_see(tx, author, found):
            raise UserError("error_notice_not_found", number=number)
        counts = await tx.delivery_counts(number)
        problems = await tx.deliveries(number, statuses=notices.PROBLEMS)
        writer = await tx.person(found.author_id)
    _print(engine, "notice_status", notice=found, counts=counts, problems=problems,
           author=writer)
    return 0


async def _cancel(engine: Engine, author: Person | None, number: int) -> int:
    now = engine.clock.now()
    async with engine.store.transaction() as tx:
        found = await tx.notice(number)
        if found is None or not await notices.may_see(tx, author, found):
            raise UserError("error_notice_not_found", number=number)
        if not await tx.set_notice_status(number, NoticeStatus.CANCELLED, now,
                                          expected=NoticeStatus.SCHEDULED,
                                          by=author.id if author else notices.CLI_AUTHOR):
            raise UserError("error_notice_state", notice=found)
    _print(engine, "reply_notice_cancel", notice=found, actor=None)
    return 0


def aligned(text: str) -> str:
    """``text`` with each run of lines holding tabs (a table) lined up in columns."""
    out: list[str] = []
    table: list[list[str]] = []
    for line in [*text.split("\n"), ""]:
        if "\t" in line:
            table.append(line.split("\t"))
            continue
        if table:
            out += columns(table)
            table = []
        out.append(line)
    return "\n".join(out[:-1])


def _print(engine: Engine, template: str, *, file: Any = None, **context: Any) -> None:
    print(engine.render(template, locale=engine.config.locale, fmt=TextFormat.PLAIN,
                        **context), file=file or sys.stdout)


def _cli(engine: Engine, macro: str, **context: Any) -> str:
    return engine.renderer.text(macro, locale=engine.config.locale, **context)


def _local(engine: Engine, instant: datetime) -> str:
    return instant.astimezone(engine.config.timezone).strftime("%Y-%m-%d %H:%M")
