"""Notices: staff push one text to many groups, and every group's copy is tracked.

A notice is written once — who, what, which micro-grids (resolved and permission-
checked when written), when — and *started* when due: in one transaction it becomes
``sending`` and gets one delivery per bound group chat, each tied to its outbox row.
So a crash leaves either all of it queued or none of it, and a second worker (or a
cancel racing the timer) loses the compare-and-set instead of doubling anything. The
outbox sends at each platform's pace and marks each delivery; when none is left
pending, :class:`NoticeSource` marks the notice done and tells its author how it went.

A notice written on the command line is only stored; the running bot's worker starts
and sends it (``gridbot run`` holds the platform connections, the CLI does not).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gridbot import group_tasks
from gridbot.commands import split_word
from gridbot.context import Runner, Services
from gridbot.declare import NOTICE_SENDERS
from gridbot.domain import (
    Button,
    CustomerGroup,
    Delivery,
    DeliveryStatus,
    GroupTask,
    Notice,
    NoticeStatus,
    Outgoing,
    Person,
    Role,
    TextFormat,
    delivery_key,
)
from gridbot.durations import DateError, DurationError, make_day, read_duration
from gridbot.errors import PermissionDenied, UserError
from gridbot.policy import routing
from gridbot.store.base import Transaction

#: the author of notices written on the command line, which may address everything
CLI_AUTHOR = "~cli"
#: scope words meaning "everything I may address"
ALL_WORDS = frozenset({"all", "everyone", "全部", "所有", "*"})
#: words before a send time: ``通知 C01 定时 明天 9:00 …`` / ``/notice C01 at 18:00 …``
AT_WORDS = frozenset({"at", "定时", "定于"})
#: a plain "收到" acknowledges the latest notice sent into the group this recently
ACK_WINDOW = timedelta(days=3)
#: how far ahead a notice may be scheduled
MAX_AHEAD = timedelta(days=366)
_LIST = re.compile(r"[,，、;；]+")
_TAG_PREFIX = ("tag:", "标签:", "标签：", "#")


@dataclass(frozen=True, kw_only=True)
class Scope:
    """What a notice addresses: the words as written, and the micro-grids they mean."""

    label: str
    microgrids: tuple[str, ...]


class ScopeError(UserError):
    """``reason``: unknown (no such code or tag), outside (not under the speaker), empty."""

    template = "error_notice_scope"


class WhenError(UserError):
    """``reason``: unreadable, past, too_far, no_such_day (then ``year`` is the year
    that has no such day: ``02-29`` said after a leap day means next year's)."""

    template = "error_notice_time"


# -- who may address what --------------------------------------------------------------------


async def reach(tx: Transaction, person: Person | None) -> frozenset[str]:
    """Micro-grids a person may send notices to; ``None`` is the command line: all."""
    if person is None:
        return frozenset(u.code for u in await tx.units("microgrid"))
    if person.role not in NOTICE_SENDERS:
        return frozenset()
    return frozenset(await tx.microgrids_under(person.unit))


async def may_see(tx: Transaction, person: Person | None, notice: Notice) -> bool:
    """Its author, anyone whose reach covers all it addressed, and the command line."""
    if person is None or notice.author_id == person.id:
        return True
    mine = await reach(tx, person)
    return bool(mine) and set(notice.microgrids) <= mine


async def resolve_scope(tx: Transaction, person: Person | None, words: str) -> Scope:
    """Turn ``all``, a unit code, ``M01,M02`` or a tag into micro-grids the person may reach.

    Codes are matched exactly, tags without regard to case (``tag:`` or ``#`` in front
    is allowed and makes a word a tag even where a code has the same spelling). An
    explicit code outside the person's reach is refused; ``all`` and tags mean the
    part of them the person may reach.
    """
    mine = await reach(tx, person)
    if not mine and person is not None:
        raise PermissionDenied("error_permission", command="notice", role=person.role.value)
    items = [w for w in _LIST.split(words.strip()) if w]
    if not items:
        raise ScopeError(reason="unknown", item=words)
    chosen: set[str] = set()
    microgrids = await tx.units("microgrid")
    for item in items:
        tag = next((item[len(p):] for p in _TAG_PREFIX if item.lower().startswith(p)), None)
        if tag is None and item.lower() in ALL_WORDS:
            chosen |= mine
            continue
        unit = await tx.unit(item) if tag is None else None
        if unit is not None:
            under = set(await tx.microgrids_under(unit.code))
            if not under <= mine:
                raise ScopeError(reason="outside", item=item)
            chosen |= under
            continue
        wanted = (tag if tag is not None else item).lower()
        tagged = {m.code for m in microgrids if wanted in (t.lower() for t in m.tags)}
        if not tagged:
            raise ScopeError(reason="unknown", item=item)
        chosen |= tagged & mine
    if not chosen:
        raise ScopeError(reason="outside", item=words)
    order = {m.code: i for i, m in enumerate(microgrids)}
    return Scope(label=",".join(items), microgrids=tuple(sorted(chosen, key=order.__getitem__)))


def split_scope(args: str) -> tuple[str, str]:
    """The scope words and the rest; ``M01, M02 text`` is one scope, as is ``M01,M02``."""
    scope, rest = split_word(args)
    while rest and (_LIST.fullmatch(scope[-1:]) or _LIST.match(rest)):
        word, rest = split_word(rest)
        scope += word
    return scope, rest


async def group_count(tx: Transaction, microgrids: Iterable[str]) -> int:
    return sum((await groups_by_platform(tx, microgrids)).values())


async def groups_by_platform(tx: Transaction, microgrids: Iterable[str]) -> dict[str, int]:
    """How many bound groups a notice to ``microgrids`` goes to, per platform: the groups
    :func:`start` queues a copy for."""
    counts: dict[str, int] = {}
    for microgrid in microgrids:
        for chat in await tx.group_chats(microgrid):
            counts[chat.platform] = counts.get(chat.platform, 0) + 1
    return counts


async def forwarded(services: Services, tx: Transaction, microgrids: Iterable[str], *,
                    now: datetime) -> list[str]:
    """The micro-grids a notice reaches only through their stewards forwarding it into an
    ordinary WeChat group (no group the bot is in, no customer group within its quota to
    send a group-sending to; the residents' pages served), as :func:`start` decides."""
    if services.resident_links is None:
        return []
    return [m for m in microgrids if not await tx.group_chats(m)
            and not await group_tasks.sendable(tx, m, now)]


# -- when -----------------------------------------------------------------------------------

_TIME = re.compile(r"^(\d{1,2})(?:[:：](\d{2})|点(?:(\d{1,2})分?|(半))?)$")
_DATE = re.compile(r"^(?:(\d{4})[-/.年])?(\d{1,2})[-/.月](\d{1,2})日?$")
_DAY_WORDS = {"今天": 0, "today": 0, "明天": 1, "tomorrow": 1, "后天": 2}


def parse_when(text: str, now: datetime, tz: ZoneInfo) -> tuple[datetime, str]:
    """Take a send time off the front of ``text``; return it (UTC) and the rest.

    Accepts ``+2h`` (from now), ``18:00`` / ``9点半`` (the next such time),
    ``明天 9:00`` / ``tomorrow 9:00``, ``11-25 9:00``, ``2026-11-25 09:00``.
    """
    first, rest = split_word(text)
    if first.startswith(("+", "＋")):
        try:
            return _checked(now + read_duration(first[1:], limit=MAX_AHEAD).total, now), rest
        except DurationError as exc:
            reason = {"too_long": "too_far", "zero": "past"}.get(exc.reason, "unreadable")
            raise WhenError(reason=reason, text=first) from None
    local_now = now.astimezone(tz)
    day: date | None = None
    if first.lower() in _DAY_WORDS:
        day = local_now.date() + timedelta(days=_DAY_WORDS[first.lower()])
    elif (m := _DATE.match(first)) is not None:
        day = _day(m, first, local_now.date())
    if day is not None:
        first, rest = split_word(rest)
    at = _clock_time(first)
    if at is None:
        raise WhenError(reason="unreadable", text=first or text)
    instant = datetime.combine(day or local_now.date(), at, tzinfo=tz)
    if day is None and instant <= local_now:
        instant += timedelta(days=1)  # "18:00" said at 19:00 means tomorrow's
    return _checked(instant.astimezone(now.tzinfo), now), rest


def _day(m: re.Match[str], text: str, today: date) -> date:
    """The date of ``11-25`` or ``2026-11-25``; without a year, the next such day."""
    year, month, day = int(m[1] or today.year), int(m[2]), int(m[3])
    if m[1] is None and (month, day) < (today.month, today.day):
        # "01-05" in December means next January; "02-29" after a leap day means next
        # year's, which has none: that is said, not moved four years on.
        year += 1
    try:
        return make_day(year, month, day, text)
    except DateError as exc:
        if exc.reason == "no_such_day":
            raise WhenError(reason="no_such_day", text=text,
                            year=year if (month, day) == (2, 29) else None) from None
        raise WhenError(reason="too_far" if year > today.year else "past", text=text) from None


def _clock_time(word: str) -> time | None:
    m = _TIME.match(word)
    if m is None:
        return None
    hour = int(m[1])
    minute = 30 if m[4] else int(m[2] or m[3] or 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def _checked(instant: datetime, now: datetime) -> datetime:
    if instant <= now:
        raise WhenError(reason="past", text=instant.isoformat())
    if instant - now > MAX_AHEAD:
        raise WhenError(reason="too_far", text=instant.isoformat())
    return instant


# -- writing, starting and finishing ---------------------------------------------------------


async def write(tx: Transaction, *, author: Person | None, scope: Scope, text: str,
                now: datetime, send_at: datetime | None = None,
                origin: tuple[str, str] | None = None) -> Notice:
    """Store a notice to go at ``send_at`` (now if not given); it starts when due."""
    return await tx.add_notice(Notice(
        id=0, author_id=author.id if author else CLI_AUTHOR, scope=scope.label,
        microgrids=scope.microgrids, text=text, status=NoticeStatus.SCHEDULED,
        send_at=send_at or now, created_at=now,
        origin_platform=origin[0] if origin else None,
        origin_chat_id=origin[1] if origin else None))


@dataclass(frozen=True, kw_only=True)
class PageLink:
    """One micro-grid's link to a notice's page (to forward into its ordinary WeChat
    group by hand), and the 收到 tapped through it."""

    microgrid: str
    url: str
    acks: int


#: how many micro-grids' links ``/notice N`` lists (the console lists them all)
CHAT_LINKS = 10


async def page_links(services: Services, tx: Transaction, notice: Notice, *,
                     limit: int | None = None) -> list[PageLink]:
    """The notice's page under each of its micro-grids' links, with their 收到 counts;
    none where the residents' pages are not served or the notice has not gone out (its
    page shows it only from then on)."""
    if services.resident_links is None or notice.status not in (NoticeStatus.SENDING,
                                                                NoticeStatus.DONE):
        return []
    counts = await tx.page_ack_counts(notice.id)
    wanted = notice.microgrids[:limit]
    urls = await services.resident_links(tx, wanted, page_suffix(notice.id))
    return [PageLink(microgrid=code, acks=counts.get(code, 0), url=urls[code])
            for code in wanted]


def page_suffix(notice_id: int) -> str:
    """The notice's page under a micro-grid's residents' link (its 收到 button)."""
    return f"/notice/{notice_id}"


async def start(services: Services, tx: Transaction, notice: Notice,
                now: datetime) -> int | None:
    """Move a scheduled notice to ``sending`` and queue one delivery per bound group.

    Returns how many deliveries were queued, or ``None`` if the notice was no longer
    scheduled (cancelled, or started by someone else).
    """
    if not await tx.set_notice_status(notice.id, NoticeStatus.SENDING, now,
                                      expected=NoticeStatus.SCHEDULED):
        return None
    author = await tx.person(notice.author_id)
    office = author.unit if author else services.config.subdistrict.code
    locale = services.config.locale  # a group has no language of its own
    rendered: dict[tuple[TextFormat, bool, str], tuple[str, str]] = {}
    queued = 0
    tasks: list[GroupTask] = []
    over: list[CustomerGroup] = []
    for microgrid in notice.microgrids:
        link = ""
        chats = await tx.group_chats(microgrid)
        for chat in chats:
            info = services.platform(chat.platform)
            fmt = info.fmt
            # Where nobody's answer reaches the bot (a WeCom group robot), nobody is
            # asked to reply 收到; its copy is what a steward forwards into the ordinary
            # WeChat group, so it ends with the notice's page, where 收到 is counted.
            replies = info.hears(chat.chat_id)
            if not replies and not link and services.resident_links is not None:
                link = (await services.resident_links(tx, [microgrid],
                                                      page_suffix(notice.id)))[microgrid]
            kind = (fmt, replies, "" if replies else link)
            if kind not in rendered:  # the same for every group of a platform
                rendered[kind] = (
                    services.render("notice", locale=locale, fmt=fmt, in_group=True,
                                    notice=notice, author=author, office=office,
                                    replies=replies, link=kind[2]),
                    services.render("button_ack", locale=locale, fmt=fmt, notice=notice))
            text, label = rendered[kind]
            key = delivery_key(notice.id, chat.platform, chat.chat_id)
            await tx.enqueue(Outgoing(
                platform=chat.platform, chat_id=chat.chat_id, text=text, fmt=fmt,
                buttons=(Button(label=label, command=f"/ack {notice.id}"),),
                dedup_key=key), now)
            if await tx.add_delivery(Delivery(
                    id=0, notice_id=notice.id, platform=chat.platform, chat_id=chat.chat_id,
                    microgrid=microgrid, title=chat.title, status=DeliveryStatus.QUEUED,
                    updated_at=now), key):
                queued += 1
        # Its customer groups: one group-sending per owner, each group waiting for the
        # owner's tap (or over its month's quota: said, not asked of WeCom).
        planned = await group_tasks.plan(services, tx, notice, microgrid, now)
        tasks += planned.tasks
        over += planned.over_quota
        if not chats and not planned.tasks and services.resident_links is not None:
            await _forward(services, tx, notice, microgrid, now, author=author, office=office)
    if tasks or over:
        await _tell_group_tasks(services, tx, notice, now, tasks, over)
    return queued


async def _tell_group_tasks(services: Services, tx: Transaction, notice: Notice,
                            now: datetime, tasks: list[GroupTask],
                            over: list[CustomerGroup]) -> None:
    """Tell the author, before any group-sending is made: whose tap each customer group
    waits for and by when, the groups over their month's quota (left out), and the owners
    the bot cannot tell in private (no WeCom app chat: WeCom's own 群发助手 still shows
    them the task)."""
    owners = []
    for task in tasks:
        person = await tx.person(task.person_id) if task.person_id else None
        owners.append({"name": person.name if person else task.owner_id,
                       "groups": len(task.chat_ids), "told": task.told})
    deadline = min((t.deadline for t in tasks), default=now)
    await tell_author(services, tx, notice, now, "notice_group_start", key="group-tasks",
                      owners=owners, over=[g.name for g in over],
                      deadline=deadline)


async def stewards_of(tx: Transaction, microgrid: str) -> list[Person]:
    """Who forwards into a micro-grid's ordinary WeChat group: its roster's first steward
    (and its stewards by role where it has no roster)."""
    entries, _ = await tx.roster(microgrid)
    ids = [e.person_id for e in entries if e.position == 0]
    found = [p for p in [await tx.person(i) for i in ids] if p is not None and p.active]
    return found or [p for p in await tx.people_in_role(Role.STEWARD, microgrid) if p.active]


async def _forward(services: Services, tx: Transaction, notice: Notice, microgrid: str,
                   now: datetime, *, author: Person | None, office: str) -> None:
    """A micro-grid with no group the bot is in (its residents sit in an ordinary WeChat
    group): its steward gets, in private, the notice as it should be forwarded there,
    ending with the micro-grid's 收到 link, and a line saying so. Counted by the page."""
    link = (await services.resident_links(tx, [microgrid], page_suffix(notice.id)))[microgrid] \
        if services.resident_links is not None else ""
    for steward in await stewards_of(tx, microgrid):
        locale = services.locale_for(steward.locale)
        for platform, chat_id in await routing.private_chats(tx, steward.id):
            fmt = services.platform(platform).fmt
            messages: tuple[tuple[str, dict[str, Any]], ...] = (
                ("notice_forward", {"microgrid": microgrid}),
                ("notice", {"in_group": True, "replies": False, "link": link,
                            "author": author, "office": office}))
            for n, (template, context) in enumerate(messages):
                await tx.enqueue(Outgoing(
                    platform=platform, chat_id=chat_id,
                    text=services.render(template, locale=locale, fmt=fmt, notice=notice,
                                         **context),
                    fmt=fmt, person_id=steward.id,
                    dedup_key=f"notice:{notice.id}:forward:{microgrid}:{steward.id}:"
                              f"{platform}:{n}"), now)


#: the copies a notice's reports list as not delivered, with why
PROBLEMS = (DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN, DeliveryStatus.NOT_SENT,
            DeliveryStatus.OVER_QUOTA)
#: what ``/resend N`` may send again: ``failed`` copies, and (said on purpose) ``unknown``
#: ones, which may have arrived
RESENDABLE = (DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN)
#: the word after ``/resend N`` that narrows it to one kind
RESEND_WORDS = {"failed": DeliveryStatus.FAILED, "失败": DeliveryStatus.FAILED,
                "unknown": DeliveryStatus.UNKNOWN, "uncertain": DeliveryStatus.UNKNOWN,
                "不明": DeliveryStatus.UNKNOWN, "结果不明": DeliveryStatus.UNKNOWN}


async def resend(tx: Transaction, notice: Notice, now: datetime,
                 statuses: Iterable[DeliveryStatus] = RESENDABLE) -> int:
    """Queue the notice's failed (or uncertain) copies again; how many.

    Each copy goes back through its own outbox row and delivery (a compare-and-set from
    ``failed``/``unknown``), so a group that got the notice, acknowledged it or is still
    waiting for it is never sent another, and two resends at once queue one copy. A
    notice already done is ``sending`` again until these settle, then summed up anew.
    """
    wanted = tuple(s for s in statuses if s in RESENDABLE)
    if notice.status not in (NoticeStatus.SENDING, NoticeStatus.DONE) or not wanted:
        return 0
    queued = 0
    for delivery in await tx.deliveries(notice.id, statuses=wanted):
        queued += await tx.resend_delivery(delivery.id, now)
    if queued and notice.status is NoticeStatus.DONE:
        await tx.set_notice_status(notice.id, NoticeStatus.SENDING, now,
                                   expected=NoticeStatus.DONE)
    return queued


async def finish(services: Services, tx: Transaction, notice: Notice, now: datetime) -> bool:
    """Mark a notice whose deliveries are all settled done, and tell its author how it went."""
    if not await tx.set_notice_status(notice.id, NoticeStatus.DONE, now,
                                      expected=NoticeStatus.SENDING):
        return False
    counts = await tx.delivery_counts(notice.id)
    problems = await tx.deliveries(notice.id, statuses=PROBLEMS)
    # A notice summed up before (then resent) is summed up again.
    key = "summary" if notice.done_at is None else f"summary:{now.isoformat()}"
    await tell_author(services, tx, notice, now, "notice_summary", key=key,
                      counts=counts, problems=problems)
    return True


async def tell_author(services: Services, tx: Transaction, notice: Notice, now: datetime,
                      template: str, *, key: str, **context: object) -> int:
    """Queue a message to the notice's author: privately, else where they wrote it."""
    author = await tx.person(notice.author_id)
    targets: list[tuple[str, str]] = []
    for account in await tx.accounts_of(author.id) if author else []:
        chat = await tx.chat(account.platform, account.private_chat_id) \
            if account.private_chat_id else None
        if account.private_chat_id and (chat is None or chat.unreachable_at is None):
            targets.append((account.platform, account.private_chat_id))
    if not targets and notice.origin_platform and notice.origin_chat_id:
        targets = [(notice.origin_platform, notice.origin_chat_id)]
    locale = services.locale_for(author.locale if author else None)
    for platform, chat_id in targets:
        fmt = services.platform(platform).fmt
        text = services.render(template, locale=locale, fmt=fmt, in_group=False, here=chat_id,
                               notice=notice, **context)
        await tx.enqueue(Outgoing(platform=platform, chat_id=chat_id, text=text, fmt=fmt,
                                  person_id=author.id if author else None,
                                  dedup_key=f"notice-{key}:{notice.id}:{platform}:{chat_id}"),
                         now)
    return len(targets)


class NoticeSource:
    """Timed work for the :class:`~gridbot.timers.worker.Worker`: start due notices, finish
    sent ones."""

    name = "notices"

    def __init__(self, engine: Runner, *, batch: int = 20) -> None:
        self.engine = engine
        self.batch = batch

    async def next_due(self) -> datetime | None:
        async with self.engine.store.transaction() as tx:
            if await tx.settled_notices(limit=1):
                return self.engine.clock.now()  # a summary is waiting to be written
            return await tx.next_notice_due()

    async def run_due(self, now: datetime) -> int:
        handled = 0
        # One transaction per notice: a big one does not hold up the rest for long.
        for _ in range(self.batch):
            async with self.engine.store.transaction() as tx:
                due = await tx.due_notices(now, limit=1)
                if not due:
                    break
                if await start(self.engine.services, tx, due[0], now) is not None:
                    handled += 1
        async with self.engine.store.transaction() as tx:
            for notice in await tx.settled_notices(limit=self.batch):
                handled += await finish(self.engine.services, tx, notice, now)
        return handled
