"""通知 Notices: write one (a scope picked from what the person may address, with the groups
it reaches per platform, a send time, and a preview of it on Telegram and on WeChat made by
the notice's own template), then watch it go out group by group and the 收到 come in.

Sending, resending and cancelling are the chat's commands (``/notice``, ``/resend``,
``/cancel_notice``) said to the engine; the preview and the counts come from the same code
the notice uses (:mod:`gridbot.notices`), so what the page promises is what the notice does.
The preview shows the notice's plan too (:mod:`gridbot.plan`): per channel its groups and
people, how long sending takes at the pace the running sender keeps, who has to act, and
what a quota or a rule refuses.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime

from markupsafe import Markup, escape
from starlette.responses import RedirectResponse, Response

from gridbot import group_tasks, notices
from gridbot import plan as planning
from gridbot.adapters.web import chat_id as web_chat_id
from gridbot.console.app import Page
from gridbot.domain import (
    Delivery,
    DeliveryCounts,
    DeliveryStatus,
    Notice,
    NoticeStatus,
    Outgoing,
    Person,
    TextFormat,
)
from gridbot.errors import UserError
from gridbot.policy.permissions import NOTICE_SENDERS, scope
from gridbot.store.base import Transaction

#: how many notices the list shows
RECENT = 50
#: the longest notice text the form takes (the engine's own limit still applies)
MAX_TEXT = 20_000
#: one scope word: a unit code, a tag (``tag:…``) or a word for everything
_SCOPE_WORD = re.compile(r"[^\s,，、;；]{1,60}")
_LOCAL_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})")
#: the Telegram HTML a preview keeps as markup; any other tag is shown as text
_TAG = re.compile(r"<[^<>]*>")
_KEPT_TAG = re.compile(r"</?(b|strong|i|em|u|ins|s|strike|del|code|pre|blockquote)>")
_LINK_TAG = re.compile(r'<a href="(https?://[^"<>\s]*)">')


@dataclass(frozen=True, kw_only=True)
class Choice:
    """One thing the scope picker offers: the word said to the bot, and what it is."""

    word: str
    label: str
    kind: str  # all, community, grid, microgrid, tag
    depth: int = 0


@dataclass(frozen=True, kw_only=True)
class Preview:
    """The notice as one platform will show it, and its length against that platform's limit."""

    platform: str
    fmt: str
    text: str
    shown: Markup
    length: int
    limit: int
    unit: str  # chars (UTF-16 units, as Telegram counts) or bytes (UTF-8, as WeChat counts)
    parts: int

    @property
    def over(self) -> bool:
        return self.length > self.limit


@dataclass(kw_only=True)
class Draft:
    """What the composer holds: as typed, and what it comes to."""

    scope: list[str] = field(default_factory=list)
    text: str = ""
    at: str = ""
    microgrids: tuple[str, ...] = ()
    groups: dict[str, int] = field(default_factory=dict)
    send_at: datetime | None = None
    previews: list[Preview] = field(default_factory=list)
    #: per channel, what the notice will do (:mod:`gridbot.plan`)
    plan: planning.Plan | None = None
    #: the bot's refusal of what was typed, in the person's language
    problem: str = ""

    @classmethod
    def read(cls, form: dict[str, object]) -> Draft:
        words: list[str] = []
        for value in _values(form, "scope") + _values(form, "scope_text"):
            words += [w for w in _SCOPE_WORD.findall(value) if w not in words]
        return cls(scope=words[:50], text=str(form.get("text") or "").strip()[:MAX_TEXT],
                   at=str(form.get("at") or "").strip()[:40])

    @property
    def scope_words(self) -> str:
        return ",".join(self.scope)

    @property
    def when_words(self) -> str:
        """The send time as the chat command takes it (``2026-11-24 09:00``)."""
        found = _LOCAL_TIME.fullmatch(self.at)
        return f"{found[1]} {found[2]}" if found else self.at

    def command(self) -> str:
        """The chat command that sends this notice."""
        at = f" at {self.when_words}" if self.at else ""
        return f"/notice {self.scope_words}{at} {self.text}"


def _values(form: dict[str, object], name: str) -> list[str]:
    value = form.get(name)
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)] if value else []


async def _form(page: Page) -> dict[str, object]:
    """The POSTed form with repeated fields (the scope picker) kept whole."""
    form: dict[str, object] = dict(page.form)
    scopes = (await page.request.form()).getlist("scope")
    form["scope"] = [str(s) for s in scopes]
    return form


# -- who sees what ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Sight:
    """What of the notices a person may follow, read once per page."""

    person: Person
    #: the micro-grids they may address (:func:`gridbot.notices.reach`)
    reach: frozenset[str]
    #: and those they look after (:func:`gridbot.policy.permissions.scope`)
    own: frozenset[str]

    @classmethod
    async def of(cls, tx: Transaction, person: Person) -> Sight:
        return cls(person=person, reach=await notices.reach(tx, person),
                   own=await scope(tx, person))

    def microgrids(self, notice: Notice) -> frozenset[str] | None:
        """The micro-grids of a notice whose groups the person may follow: all of them for
        its author and whoever may address them all (the chat's rule,
        :func:`gridbot.notices.may_see`); the ones in their own part of the tree for anyone
        else in it; ``None``: the notice is not theirs to see."""
        if notice.author_id == self.person.id or (
                self.reach and set(notice.microgrids) <= self.reach):
            return frozenset(notice.microgrids)
        shared = frozenset(notice.microgrids) & (self.own | self.reach)
        return shared or None


async def visible_notices(tx: Transaction, person: Person,
                          limit: int = RECENT) -> list[tuple[Notice, frozenset[str]]]:
    sight = await Sight.of(tx, person)
    shown = []
    for notice in await tx.notices(limit=500):
        seen = sight.microgrids(notice)
        if seen is not None:
            shown.append((notice, seen))
        if len(shown) >= limit:
            break
    return shown


async def choices(page: Page) -> list[Choice]:
    """What the person may address: everything, each unit all of whose micro-grids they
    reach, in the tree's order, and the tags of the micro-grids they reach."""
    tx, config = page.tx, page.console.config
    mine = await notices.reach(tx, page.person)
    if not mine:
        return []
    found = [Choice(word="全部" if page.locale == "zh-CN" else "all", label="", kind="all")]
    units: list[tuple[str, str, str, str | None]] = [
        (config.subdistrict.code, config.subdistrict.name, "subdistrict", None)]
    units += [(c.code, c.name, "community", config.subdistrict.code) for c in config.communities]
    units += [(g.code, g.name, "grid", g.community) for g in config.grids]
    units += [(m.code, m.name, "microgrid", m.grid) for m in config.microgrids]
    children: dict[str | None, list[tuple[str, str, str, str | None]]] = {}
    for unit in units:
        children.setdefault(unit[3], []).append(unit)

    async def visit(parent: str | None, depth: int) -> None:
        for code, name, kind, _ in children.get(parent, []):
            under = set(await tx.microgrids_under(code))
            if under and under <= mine and kind != "subdistrict":
                found.append(Choice(word=code, label=name, kind=kind, depth=depth))
            await visit(code, depth + (kind != "subdistrict"))
    await visit(None, 0)
    tags: list[str] = []
    for microgrid in config.microgrids:
        if microgrid.code in mine:
            tags += [t for t in microgrid.tags if t not in tags]
    found += [Choice(word=f"tag:{t}", label=t, kind="tag") for t in tags]
    return found


# -- the preview -----------------------------------------------------------------------------


def telegram_shown(html: str) -> Markup:
    """Telegram's HTML as a browser shows it: the tags Telegram knows kept, any other shown
    as text (the notice's own text is escaped by the template already)."""
    out: list[str] = []
    last = 0
    for tag in _TAG.finditer(html):
        out.append(html[last:tag.start()])
        word = tag.group(0)
        link = _LINK_TAG.fullmatch(word)
        if _KEPT_TAG.fullmatch(word) or word == "</a>":
            out.append(word)
        elif link:
            out.append(f'<a href="{escape(link[1])}" rel="noopener noreferrer">')
        else:
            out.append(str(escape(word)))
        last = tag.end()
    out.append(html[last:])
    return Markup("".join(out))


def previews(page: Page, draft: Draft, number: int) -> list[Preview]:
    """The notice as Telegram (HTML) and WeChat (plain text) groups will get it, by the
    template the notice is sent with, and its length against each platform's limit."""
    from gridbot.adapters.telegram.html import MAX_TEXT as TELEGRAM_MAX
    from gridbot.adapters.telegram.html import split_message, units
    from gridbot.adapters.wechat.shared import MAX_TEXT_BYTES, split_text

    engine = page.console.engine
    person = page.person
    notice = Notice(id=number, author_id=person.id, scope=draft.scope_words,
                    microgrids=draft.microgrids, text=draft.text, status=NoticeStatus.SCHEDULED,
                    send_at=draft.send_at or page.console.now(), created_at=page.console.now())
    locale = engine.config.locale  # a group has no language of its own
    found = []
    for platform, fmt in (("telegram", TextFormat.HTML), ("wechat", TextFormat.PLAIN)):
        text = engine.render("notice", locale=locale, fmt=fmt, in_group=True, notice=notice,
                             author=person, office=person.unit, replies=True)
        if fmt is TextFormat.HTML:
            found.append(Preview(platform=platform, fmt=fmt.value, text=text,
                                 shown=telegram_shown(text), length=units(text),
                                 limit=TELEGRAM_MAX, unit="chars",
                                 parts=len(split_message(text, html=True))))
        else:
            found.append(Preview(platform=platform, fmt=fmt.value, text=text,
                                 shown=Markup("{}").format(text), length=len(text.encode()),
                                 limit=MAX_TEXT_BYTES, unit="bytes", parts=len(split_text(text))))
    return found


async def work_out(page: Page, draft: Draft) -> Draft:
    """The micro-grids, groups per platform, send time and previews of a draft, or the
    bot's refusal of it (the notice's own checks, in the person's language)."""
    engine, tx = page.console.engine, page.tx
    latest = await tx.notices(limit=1)
    number = (latest[0].id if latest else 0) + 1
    try:
        if not draft.scope:
            raise notices.ScopeError(reason="unknown", item="")
        resolved = await notices.resolve_scope(tx, page.person, draft.scope_words)
        draft.microgrids = resolved.microgrids
        draft.groups = await notices.groups_by_platform(tx, resolved.microgrids)
        draft.plan = await plan_of(page, resolved, number)
        if draft.at:
            draft.send_at, rest = notices.parse_when(draft.when_words, page.console.now(),
                                                     engine.config.timezone)
            if rest:
                raise notices.WhenError(reason="unreadable", text=draft.at)
        customer, _ = await group_tasks.customer_groups_of(tx, resolved.microgrids,
                                                           page.console.now())
        if not sum(draft.groups.values()) and not customer and not await notices.forwarded(
                engine.services, tx, resolved.microgrids, now=page.console.now()):
            raise notices.ScopeError(reason="empty", item=resolved.label)
    except UserError as refusal:
        draft.problem = engine.render(refusal.template, locale=page.locale, fmt=TextFormat.PLAIN,
                                      **refusal.context)
    draft.previews = previews(page, draft, number)
    return draft


async def plan_of(page: Page, scope: notices.Scope, number: int) -> planning.Plan:
    """The notice's plan with the limits the running sender keeps to (and the pace it has
    kept), and the links to its 收到 page a forwarded copy ends with, where served."""
    console = page.console
    senders = planning.senders_of(console.adapters.values(), console.limiters)
    return await planning.make_plan(page.tx, scope, senders=senders, now=console.now(),
                                    links=console.engine.resident_links, number=number)


# -- pages -----------------------------------------------------------------------------------


async def _composer(page: Page, draft: Draft | None, said: list[Outgoing]) -> Response:
    shown = await visible_notices(page.tx, page.person)
    listed = [(n, await page.tx.delivery_counts(n.id)) for n, _ in shown]
    may_send = page.person.role in NOTICE_SENDERS
    return page.render("notices.html.j2", notices=listed, draft=draft or Draft(),
                       choices=await choices(page) if may_send else [], may_send=may_send,
                       said=said, platforms=_platform_order(draft))


def _platform_order(draft: Draft | None) -> list[str]:
    return sorted(draft.groups) if draft else []


async def notice_list(page: Page) -> Response:
    return await _composer(page, None, await page.console.answers(page))


async def preview(page: Page) -> Response:
    """The composer again, with what the notice would reach and look like."""
    draft = Draft.read(await _form(page))
    if page.person.role in NOTICE_SENDERS:
        await work_out(page, draft)
    return await _composer(page, draft, [])


async def send(page: Page) -> Response:
    """The composer's notice, said to the engine as the chat's ``/notice``; on to its
    deliveries, or back to the composer (what was typed kept) with the bot's refusal."""
    console = page.console
    draft = Draft.read(await _form(page))
    async with console.store.transaction() as tx:
        latest = await tx.notices(limit=1)
    before = latest[0].id if latest else 0
    said = await console.say(page.person, draft.command())
    async with console.store.transaction() as tx:
        chat = web_chat_id(page.person.id)
        written = [n for n in await tx.notices(limit=20)
                   if n.id > before and n.author_id == page.person.id
                   and n.origin_chat_id == chat]
        if written:
            return RedirectResponse(f"{console.path}/notices/{written[0].id}"
                                    f"?said={said.message_id}", status_code=303)
        page.transaction = tx
        if page.person.role in NOTICE_SENDERS:
            await work_out(page, draft)
        return await _composer(page, draft, list(said.answers))


@dataclass(frozen=True, kw_only=True)
class MicrogridLine:
    """One micro-grid's share of a notice: its groups by how they stand, and its 收到."""

    code: str
    groups: int
    sent: int
    pending: int
    failed: int
    unknown: int
    acknowledged: int
    acks: int
    #: 收到 tapped on the notice's page through this micro-grid's link
    page_acks: int = 0
    #: that link, to forward into the micro-grid's ordinary WeChat group ("": none)
    link: str = ""


@dataclass(frozen=True, kw_only=True)
class Progress:
    notice: Notice
    author: Person | None
    counts: DeliveryCounts
    deliveries: list[Delivery]
    microgrids: list[MicrogridLine]
    #: only part of the notice is shown (the person's own micro-grids)
    partial: bool
    may_act: bool
    #: before it goes: the groups it will go to per platform, as they are bound now
    expected: dict[str, int] = field(default_factory=dict)
    #: customer groups' group-sendings: whose tap each still waits for
    owners: list[group_tasks.OwnerLine] = field(default_factory=list)


def _counts(deliveries: list[Delivery]) -> DeliveryCounts:
    by: dict[DeliveryStatus, int] = {}
    for d in deliveries:
        by[d.status] = by.get(d.status, 0) + 1
    return DeliveryCounts(
        total=len(deliveries), queued=by.get(DeliveryStatus.QUEUED, 0),
        sending=by.get(DeliveryStatus.SENDING, 0),
        sent=by.get(DeliveryStatus.SENT, 0) + by.get(DeliveryStatus.ACKNOWLEDGED, 0),
        acknowledged=by.get(DeliveryStatus.ACKNOWLEDGED, 0),
        failed=by.get(DeliveryStatus.FAILED, 0), unknown=by.get(DeliveryStatus.UNKNOWN, 0),
        waiting=by.get(DeliveryStatus.WAITING, 0), not_sent=by.get(DeliveryStatus.NOT_SENT, 0),
        over_quota=by.get(DeliveryStatus.OVER_QUOTA, 0), acks=sum(d.acks for d in deliveries))


async def progress(page: Page, number: int) -> Progress | None:
    tx = page.tx
    notice = await tx.notice(number)
    seen = (await Sight.of(tx, page.person)).microgrids(notice) if notice else None
    if notice is None or seen is None:
        return None
    every = await tx.deliveries(notice.id)
    shown = [d for d in every if d.microgrid in seen]
    links = {link.microgrid: link for link in await notices.page_links(
        page.console.engine.services, tx, notice)}
    lines = []
    for code in notice.microgrids:
        if code not in seen:
            continue
        c = _counts([d for d in shown if d.microgrid == code])
        link = links.get(code)
        lines.append(MicrogridLine(code=code, groups=c.total, sent=c.sent, pending=c.pending,
                                   failed=c.failed, unknown=c.unknown,
                                   acknowledged=c.acknowledged, acks=c.acks,
                                   page_acks=link.acks if link else 0,
                                   link=link.url if link else ""))
    partial = len(shown) < len(every) or set(seen) < set(notice.microgrids)
    if partial:
        # Only the person's micro-grids' taps (a person who also said 收到 in chat may
        # count in both here: the whole notice's figure counts them once).
        page_acks = sum(line.page_acks for line in lines)
        counts = dataclasses.replace(_counts(shown), page_acks=page_acks,
                                     people=_counts(shown).acks + page_acks)
    else:
        counts = await tx.delivery_counts(notice.id)
    expected = await notices.groups_by_platform(tx, sorted(seen)) \
        if notice.status is NoticeStatus.SCHEDULED else {}
    return Progress(notice=notice, author=await tx.person(notice.author_id), counts=counts,
                    deliveries=shown, microgrids=lines, partial=partial,
                    may_act=not partial and page.person.role in NOTICE_SENDERS,
                    expected=expected,
                    owners=await group_tasks.owner_lines(tx, notice.id, seen))


async def notice_page(page: Page) -> Response:
    found = await progress(page, page.request.path_params["number"])
    if found is None:
        return page.render("notice_missing.html.j2", status=404,
                           number=page.request.path_params["number"])
    return page.render("notice.html.j2", p=found, said=await page.console.answers(page))


async def live(page: Page) -> Response:
    """Only the counts and the groups, for the page to swap in as they change."""
    found = await progress(page, page.request.path_params["number"])
    if found is None:
        return Response(status_code=404)
    return page.render("notice_live.html.j2", p=found)


#: what the notice view's buttons say to the bot
ACTIONS = {"resend": "/resend {n}", "resend_failed": "/resend {n} failed",
           "resend_uncertain": "/resend {n} uncertain", "cancel": "/cancel_notice {n}"}


async def act(page: Page) -> Response:
    number = page.request.path_params["number"]
    back = f"{page.console.path}/notices/{number}"
    command = ACTIONS.get(str(page.form.get("action") or ""))
    if command is None:
        return RedirectResponse(back, status_code=303)
    said = await page.console.say(page.person, command.format(n=number))
    return RedirectResponse(f"{back}?said={said.message_id}", status_code=303)


ROUTES = [
    ("/notices", notice_list, ("GET",), False),
    ("/notices/preview", preview, ("POST",), False),
    ("/notices/send", send, ("POST",), True),
    ("/notices/{number:int}", notice_page, ("GET",), False),
    ("/notices/{number:int}/live", live, ("GET",), False),
    ("/notices/{number:int}/act", act, ("POST",), True),
]
