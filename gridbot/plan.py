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

A channel is a small function making one row (:data:`Channel`): the platforms' groups
(:func:`group_row`, any platform; :data:`GROUP_CHANNELS` names those that work otherwise,
such as WeCom customer groups, which wait for their owner's tap), the Official Account's
48-hour rule (:func:`official_account_row`) and the micro-grids no channel reaches, whose
steward forwards the text with the micro-grid's link (:func:`forward_row`).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from gridbot.adapters.base import Adapter
from gridbot.domain import Chat, Role
from gridbot.notices import Scope
from gridbot.ratelimit import Limiter, SendLimits, send_time
from gridbot.store.base import ResidentAccount, Transaction

#: how long one request to a platform's API is taken to last where the sender has not
#: measured it; with an overall rate it matters once per window, the spacing far more
ROUND_TRIP = 0.25
#: the Official Account may send a follower customer-service messages (客服消息) only
#: within 48 hours of the follower's last message to it
OA_WINDOW = timedelta(hours=48)
OFFICIAL_ACCOUNT = "wechat_mp"
#: WeCom customer groups (客户群) as bound chats: sending into them is a group-sending task
#: (客户群群发) that each group's owner confirms in WeCom
CUSTOMER_GROUPS = "wecom_customer"
#: the row of the micro-grids no channel reaches
FORWARD = "forward"
#: platforms whose groups get a row even with none bound in the scope, in this order;
#: any other platform with bound groups follows them
GROUP_PLATFORMS = ("telegram", "wecom", "wecom_robot", CUSTOMER_GROUPS)


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
    #: the micro-grids of the row (for :data:`FORWARD`: those no channel reaches)
    microgrids: tuple[str, ...] = ()
    #: :data:`FORWARD`: each micro-grid's link for the forwarded text
    links: tuple[tuple[str, str], ...] = ()
    #: whether 收到 can come back from the groups (else the link is the way)
    replies: bool = True


@dataclass(frozen=True, kw_only=True)
class Plan:
    label: str
    microgrids: tuple[str, ...]
    rows: tuple[Row, ...]
    #: the page a forwarded text links to: the micro-grid's report link (``report``),
    #: until each notice has a 收到 page of its own
    link_kind: str = "report"

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


#: a row for a platform's bound groups (``None``: none to show)
GroupChannel = Callable[[Transaction, Facts, str], Awaitable[Row | None]]
#: a row of its own kind
Channel = Callable[[Transaction, Facts], Awaitable[Row | None]]
#: the micro-grid's link residents open from a forwarded text
LinkOf = Callable[[Transaction, str], Awaitable[str]]


async def stewards(tx: Transaction, microgrids: Iterable[str]) -> tuple[str, ...]:
    """The stewards' names of ``microgrids``, each once, in order."""
    names: list[str] = []
    for microgrid in microgrids:
        names += [p.name for p in await tx.people_in_role(Role.STEWARD, microgrid)
                  if p.name not in names]
    return tuple(names)


async def group_row(tx: Transaction, facts: Facts, platform: str) -> Row | None:
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


async def customer_group_row(tx: Transaction, facts: Facts, platform: str) -> Row | None:
    """WeCom customer groups: nothing goes until each group's owner confirms the
    group-sending task in WeCom, and WeCom counts each group's group-sendings.

    Until the groups' owners and quotas are stored, the owners named are the micro-grids'
    stewards (the rule customer groups are bound by) and the quota is not known."""
    bound = facts.chats.get(platform, ())
    microgrids = tuple(dict.fromkeys(m for m, _ in bound))
    sender = facts.senders.get(platform)
    return Row(channel=platform, groups=len(bound), microgrids=microgrids,
               limits=sender.limits if sender else None, action=Action.OWNER_TAP,
               whose=await stewards(tx, microgrids), refused=None, refusal=Refusal.QUOTA)


#: platforms whose groups are not sent into at the platform's pace by the bot itself
GROUP_CHANNELS: dict[str, GroupChannel] = {CUSTOMER_GROUPS: customer_group_row}


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


def forward_row(link: LinkOf | None) -> Channel:
    """The micro-grids with no bound group on any channel: their steward forwards the
    text, with the micro-grid's link for 收到, into the residents' own WeChat group."""

    async def row(tx: Transaction, facts: Facts) -> Row | None:
        reached = {m for bound in facts.chats.values() for m, _ in bound}
        left = tuple(m for m in facts.microgrids if m not in reached)
        if not left:
            return None
        links = tuple([(m, await link(tx, m)) for m in left]) if link is not None else ()
        return Row(channel=FORWARD, people=facts.people_in(left), microgrids=left,
                   action=Action.FORWARD, whose=await stewards(tx, left), links=links,
                   replies=False)

    return row


async def make_plan(tx: Transaction, scope: Scope, *, senders: Mapping[str, Sender],
                    now: datetime, link: LinkOf | None = None,
                    round_trip: float = ROUND_TRIP) -> Plan:
    """The plan of a notice to ``scope`` as the groups are bound now."""
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
    rows: list[Row] = []
    for platform in platforms:
        made = await GROUP_CHANNELS.get(platform, group_row)(tx, facts, platform)
        if made is not None:
            rows.append(made)
    for channel in (official_account_row, forward_row(link)):
        made = await channel(tx, facts)
        if made is not None:
            rows.append(made)
    return Plan(label=scope.label, microgrids=scope.microgrids, rows=tuple(rows))
