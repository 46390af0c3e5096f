"""A notice's plan: before it goes, what each channel will do with it.

For the micro-grids of a scope the plan has one row per channel: the groups it reaches
and the residents gridbot knows there, how long sending takes at the platform's limits,
whose action it waits for, and what a quota or a rule refuses. It is what
``gridbot notice --plan`` prints and the console's composer shows.

The time is not a formula beside the sender: it is the sender's own pacing replayed
(:func:`gridbot.ratelimit.send_time`) with the very :class:`~gridbot.ratelimit.SendLimits`
each platform's adapter gives the outbox, over the groups :func:`gridbot.notices.start`
queues a copy for, in that order. Platforms send side by side (each has its own limiter
and workers), so the notice takes as long as its slowest channel. Each request is taken to
last as long as the platform's requests have lately, and the sends to be as far apart as
the sender has kept them (the running sender's :class:`~gridbot.ratelimit.Limiter`
measures both); where nothing was sent yet, or the plan is made away from the sender (the
command line), a request lasts :data:`ROUND_TRIP` and the spacing is the limits' own.
What else is queued at the time is not counted.

A channel is a small function making one row: the bound groups of each platform the bot
posts into (:func:`group_row`), then the other channels, each a :data:`Channel`: WeCom
customer groups, where nothing goes until each group's owner confirms the group-sending
and WeCom counts each group's quota (:func:`customer_group_row`); the Official Account's
48-hour rule (:func:`official_account_row`); and the micro-grids with no group the bot is
in (nor a customer group within its quota), whose steward is sent the notice to forward
into the residents' ordinary WeChat group, ending with the link to its 收到 page
(:func:`forward_row`, the rule :func:`gridbot.notices.start` follows).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from gridbot import group_tasks
from gridbot.adapters.base import Adapter
from gridbot.context import ResidentLinks
from gridbot.domain import Chat
from gridbot.notices import Scope, page_suffix, stewards_of
from gridbot.policy import routing
from gridbot.ratelimit import Limiter, SendLimits, send_time
from gridbot.store.base import ResidentAccount, Transaction

#: how long one request to a platform's API is taken to last where the sender has not
#: measured it; with an overall rate it matters once per window, the spacing far more
ROUND_TRIP = 0.25
#: the Official Account may send a follower customer-service messages (客服消息) only
#: within 48 hours of the follower's last message to it
OA_WINDOW = timedelta(hours=48)
OFFICIAL_ACCOUNT = "wechat_mp"
#: WeCom customer groups (客户群, :mod:`gridbot.customer_groups`): sending into them is a
#: group-sending task (客户群群发) each group's owner confirms in WeCom; the owners are
#: WeCom members (as :mod:`gridbot.adapters.wechat.customer_groups` names both)
CUSTOMER_GROUPS = "wecom_customer"
OWNER_PLATFORM = "wecom"
#: the row of the micro-grids with no group the bot is in
FORWARD = "forward"
#: platforms whose groups get a row even with none bound in the scope, in this order;
#: any other platform with bound groups follows them
GROUP_PLATFORMS = ("telegram", "wecom", "wecom_robot")


class Action(enum.StrEnum):
    """What a person has to do before a channel's groups get the notice."""

    NONE = ""
    #: each customer group's owner confirms the group-sending task in WeCom
    OWNER_TAP = "owner_tap"
    #: the steward forwards the text and the link into the micro-grid's WeChat group
    FORWARD = "forward"


class Refusal(enum.StrEnum):
    """Why some of a channel's groups or people will not get it."""

    NONE = ""
    #: a platform's quota (a customer group's group-sendings a month or a day)
    QUOTA = "quota"
    #: the Official Account's 48-hour rule for customer-service messages
    WINDOW = "48h"
    #: the platform refused the group for good (the bot was removed from it)
    UNREACHABLE = "unreachable"
    #: no adapter of the platform is configured: its copies would wait in the outbox
    NO_SENDER = "no_sender"
    #: a micro-grid to forward to whose stewards the bot cannot write to in private
    NO_STEWARD = "no_steward"
    #: the residents' pages are not served: nothing to forward, the micro-grid is not reached
    NO_PAGES = "no_pages"


@dataclass(frozen=True, kw_only=True)
class Sender:
    """What the plan needs of a platform's sender: the limits the outbox keeps to for it,
    and whether people's answers in a chat reach the bot (then 收到 can come back)."""

    limits: SendLimits
    hears: Callable[[str], bool]
    #: how long its requests have lasted lately, and the spacing kept between them
    #: (:class:`~gridbot.ratelimit.Limiter`); ``None``: not known
    round_trip: float | None = None
    gap: float | None = None


def senders_of(adapters: Iterable[Adapter],
               limiters: Mapping[str, Limiter] | None = None) -> dict[str, Sender]:
    """The plan's view of the adapters the outbox sends with: their own limits, as
    :class:`~gridbot.outbox.OutboxSender` takes them, or the running sender's
    ``limiters`` (its limits, and the round trips it has seen)."""
    found = {}
    for adapter in adapters:
        limiter = (limiters or {}).get(adapter.name)
        found[adapter.name] = Sender(
            limits=limiter.limits if limiter is not None else adapter.limits,
            hears=adapter.hears,
            round_trip=limiter.round_trip if limiter is not None else None,
            gap=limiter.gap if limiter is not None else None)
    return found


@dataclass(frozen=True, kw_only=True)
class Row:
    """One channel's part of a notice."""

    #: a platform's name, or :data:`FORWARD`
    channel: str
    groups: int = 0
    #: residents of the micro-grids with an account there; ``None``: not known (a robot's
    #: or an app chat's members are nobody gridbot knows)
    people: int | None = None
    #: how long sending takes at the platform's limits; ``None``: nothing is sent by the
    #: bot, or it waits for a person
    seconds: float | None = None
    limits: SendLimits | None = None
    action: Action = Action.NONE
    #: the names of the people whose action it needs
    whose: tuple[str, ...] = ()
    #: groups (people, for the Official Account) that will be refused; ``None``: not known
    refused: int | None = 0
    refusal: Refusal = Refusal.NONE
    #: the Official Account: followers within its 48 hours
    reachable: int | None = None
    #: the micro-grids of the row (for :data:`FORWARD`: those with no group the bot is in)
    microgrids: tuple[str, ...] = ()
    #: :data:`FORWARD`: each micro-grid's link at the end of the forwarded text
    links: tuple[tuple[str, str], ...] = ()
    #: whether 收到 can come back from the groups (else the link is the way)
    replies: bool = True


@dataclass(frozen=True, kw_only=True)
class Plan:
    label: str
    microgrids: tuple[str, ...]
    rows: tuple[Row, ...]
    #: the number the notice's page links carry (the next notice's, for a draft)
    number: int = 0

    @property
    def seconds(self) -> float:
        """How long the notice takes: its slowest channel (they send side by side)."""
        return max((r.seconds for r in self.rows if r.seconds is not None), default=0.0)

    @property
    def groups(self) -> int:
        return sum(r.groups for r in self.rows)

    def row(self, channel: str) -> Row | None:
        return next((r for r in self.rows if r.channel == channel), None)


@dataclass(frozen=True, kw_only=True)
class Facts:
    """What the channels make their rows of, read once for the plan."""

    microgrids: tuple[str, ...]
    #: per platform, its bound groups as ``start`` queues them: (micro-grid, chat), in order
    chats: Mapping[str, tuple[tuple[str, Chat], ...]]
    residents: tuple[ResidentAccount, ...]
    senders: Mapping[str, Sender]
    now: datetime
    round_trip: float

    def people_on(self, platform: str, microgrids: Iterable[str]) -> int:
        """Residents of ``microgrids`` with an account on ``platform``."""
        wanted = set(microgrids)
        return len({r.person_id for r in self.residents
                    if r.platform == platform and r.microgrid in wanted})

    def people_in(self, microgrids: Iterable[str]) -> int:
        wanted = set(microgrids)
        return len({r.person_id for r in self.residents if r.microgrid in wanted})


#: a row of its own kind (``None``: nothing to show)
Channel = Callable[[Transaction, Facts], Awaitable[Row | None]]


async def names_of(tx: Transaction, people: Iterable[str]) -> tuple[str, ...]:
    """Each person's name (or the id of someone unknown), once, in order."""
    found: list[str] = []
    for person_id in people:
        person = await tx.person(person_id)
        name = person.name if person is not None else person_id
        if name not in found:
            found.append(name)
    return tuple(found)


async def group_row(tx: Transaction, facts: Facts, platform: str) -> Row:
    """Groups the bot sends into itself, at the platform's limits."""
    bound = facts.chats.get(platform, ())
    microgrids = tuple(dict.fromkeys(m for m, _ in bound))
    sender = facts.senders.get(platform)
    if sender is None:
        return Row(channel=platform, groups=len(bound), microgrids=microgrids,
                   refused=len(bound), refusal=Refusal.NO_SENDER)
    hears = any(sender.hears(chat.chat_id) for _, chat in bound)
    unreachable = sum(1 for _, chat in bound if chat.unreachable_at is not None)
    return Row(
        channel=platform, groups=len(bound), microgrids=microgrids, limits=sender.limits,
        people=facts.people_on(platform, microgrids) if hears else None,
        seconds=send_time(sender.limits, [chat.chat_id for _, chat in bound],
                          round_trip=facts.round_trip if sender.round_trip is None
                          else sender.round_trip, gap=sender.gap),
        refused=unreachable, refusal=Refusal.UNREACHABLE if unreachable else Refusal.NONE,
        replies=hears)


async def customer_group_row(tx: Transaction, facts: Facts) -> Row | None:
    """WeCom customer groups bound to the micro-grids: nothing goes until each group's owner
    confirms the group-sending task in WeCom, and a group that has had its month's
    group-sendings (as many as the month has days, :mod:`gridbot.customer_groups`) is
    refused by WeCom. Their members are counted: WeCom says how many each has."""
    groups = [g for m in facts.microgrids for g in await tx.customer_groups(microgrid=m)]
    if CUSTOMER_GROUPS not in facts.senders and not groups:
        return None
    owners: list[str] = []
    for group in groups:
        account = await tx.account(OWNER_PLATFORM, group.owner_id)
        owners.append(account.person_id if account and account.person_id else group.owner_id)
    full = await group_tasks.quota_check(tx)
    over = sum(1 for g in groups if full(g, facts.now))
    sender = facts.senders.get(CUSTOMER_GROUPS)
    return Row(channel=CUSTOMER_GROUPS, groups=len(groups),
               people=sum(g.members for g in groups),
               microgrids=tuple(dict.fromkeys(g.microgrid or "" for g in groups)),
               limits=sender.limits if sender else None, action=Action.OWNER_TAP,
               whose=await names_of(tx, owners), refused=over, refusal=Refusal.QUOTA,
               replies=False)


async def official_account_row(tx: Transaction, facts: Facts) -> Row | None:
    """Followers of the Official Account: it has no groups, and may write to a follower
    only within 48 hours of their last message; the others it cannot reach at all."""
    followers = {r.person_id: r.last_wrote for r in facts.residents
                 if r.platform == OFFICIAL_ACCOUNT}
    if OFFICIAL_ACCOUNT not in facts.senders and not followers:
        return None
    within = sum(1 for last in followers.values()
                 if last is not None and facts.now - last < OA_WINDOW)
    return Row(channel=OFFICIAL_ACCOUNT, people=len(followers), reachable=within,
               refused=len(followers) - within, refusal=Refusal.WINDOW, replies=False,
               microgrids=tuple(dict.fromkeys(r.microgrid for r in facts.residents
                                              if r.platform == OFFICIAL_ACCOUNT)))


def forward_row(links: ResidentLinks | None, number: int) -> Channel:
    """The micro-grids with no group the bot is in: as :func:`gridbot.notices.start` does,
    their stewards are sent the notice in private, to forward into the residents' ordinary
    WeChat group, ending with the link to the notice's 收到 page. Not reached: those whose
    stewards the bot cannot write to, and all of them where no residents' pages are served
    (there is no link to forward)."""

    async def row(tx: Transaction, facts: Facts) -> Row | None:
        reached = {m for bound in facts.chats.values() for m, _ in bound}
        # A customer group within its quota gets the group-sending instead of a forward.
        left = tuple([m for m in facts.microgrids if m not in reached
                      and not await group_tasks.sendable(tx, m, facts.now)])
        if not left:
            return None
        stewards: list[str] = []
        silent = 0
        for microgrid in left:
            found = await stewards_of(tx, microgrid)
            stewards += [p.id for p in found]
            silent += not any([await _writable(tx, p.id) for p in found])
        if links is None:
            refused, refusal = len(left), Refusal.NO_PAGES
        else:
            refused, refusal = silent, Refusal.NO_STEWARD if silent else Refusal.NONE
        urls = await links(tx, left, page_suffix(number)) if links is not None else {}
        return Row(channel=FORWARD, people=facts.people_in(left), microgrids=left,
                   action=Action.FORWARD, whose=await names_of(tx, stewards),
                   links=tuple((m, urls[m]) for m in left if m in urls), refused=refused,
                   refusal=refusal, replies=False)

    return row


async def _writable(tx: Transaction, person_id: str) -> bool:
    """Whether the bot can write to the person in private (as the forward is sent)."""
    return bool(await routing.private_chats(tx, person_id))


async def make_plan(tx: Transaction, scope: Scope, *, senders: Mapping[str, Sender],
                    now: datetime, links: ResidentLinks | None = None, number: int = 0,
                    round_trip: float = ROUND_TRIP) -> Plan:
    """The plan of a notice to ``scope`` as the groups are bound now; ``links``: the
    residents' links (:attr:`gridbot.context.Services.resident_links`), ``number``: the
    notice's (for a draft, the one it would get)."""
    chats: dict[str, list[tuple[str, Chat]]] = {}
    for microgrid in scope.microgrids:  # as gridbot.notices.start queues them
        for chat in await tx.group_chats(microgrid):
            chats.setdefault(chat.platform, []).append((microgrid, chat))
    facts = Facts(microgrids=scope.microgrids,
                  chats={p: tuple(found) for p, found in chats.items()},
                  residents=tuple(await tx.resident_accounts(scope.microgrids)),
                  senders=senders, now=now, round_trip=round_trip)
    platforms = [p for p in GROUP_PLATFORMS if p in chats or p in senders]
    platforms += sorted(p for p in chats if p not in platforms)
    rows = [await group_row(tx, facts, platform) for platform in platforms]
    for channel in (customer_group_row, official_account_row, forward_row(links, number)):
        made = await channel(tx, facts)
        if made is not None:
            rows.append(made)
    return Plan(label=scope.label, microgrids=scope.microgrids, rows=tuple(rows),
                number=number)
