"""A notice into WeCom customer groups: one group-sending task (客户群群发) per owner.

No bot can post into a customer group (:mod:`gridbot.customer_groups`); its owner can, by
confirming a group-sending task in WeCom (客户联系 → 群发助手). So when a notice starts
(:func:`gridbot.notices.start`), each micro-grid's bound customer groups are put in one
task per owner (per owner and micro-grid: each micro-grid's residents get their own 收到
link), each group gets a delivery ``waiting`` for the owner, and :class:`GroupTaskSource`
does the rest from the database, so a restart carries on where it was:

1. it makes the task in WeCom (创建企业群发, add_msg_template with ``chat_type = "group"``,
   the owner as ``sender``, the notice's text and a link card to its 收到 page; document
   https://developer.work.weixin.qq.com/document/path/92135), and tells the owner in
   private, through the WeCom app, what to confirm and by when; a task WeCom refuses
   (an errcode) fails its groups with the reason;
2. every ``check_every`` it asks WeCom how the task stands (get_groupmsg_task /
   get_groupmsg_send_result, …/path/93338) and moves each group's delivery on: ``sent``
   (status 1), ``failed`` with the reason (2: not a customer's friend, 3: the group had
   another group-sending), ``not_sent`` (the owner sent the task but left the group out);
3. halfway to the deadline (``confirm_within`` after the start), if the owner has not
   confirmed, it reminds them once: WeCom's own reminder (remind_groupmsg_send,
   …/path/97610: at most three a task) and a private message;
4. at the deadline it stops the task (cancel_groupmsg_send, …/path/97611), so nothing goes
   out unseen later, and the groups still waiting are ``not_sent``.

WeCom's limits (:mod:`gridbot.customer_groups`): a task names at most 2,000 groups (more
are split), and a customer group receives at most as many group-sendings a month as the
month has days. A group that has had them is left out before anything is asked of WeCom
(``over_quota``, said to the notice's author, in ``/notice N`` and on the console) instead
of WeCom refusing it silently; a group-sending still waiting for its owner (another
notice's) holds its place meanwhile. A group's count goes up when WeCom reports the sending
*sent* to it, not when the task is made: WeCom counts what a group received, and a task
its owner never confirms reaches nobody.

Making a task and recording it are two steps: the task is claimed (its next try moved
``check_every`` on) before WeCom is asked, so a crash in between makes it again once,
after ``check_every``, rather than never (the owner then sees two). A task WeCom could not
be asked to make until its deadline, or whose results could not be read at it, is not
left open: the first fails its groups as not sent, the second is asked again until WeCom
answers. Customer groups' copies are not sent again by ``/resend`` (a new notice makes a
new task).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from gridbot.context import Runner, Services
from gridbot.customer_groups import GROUPS_PER_TASK, monthly_quota, quota_month
from gridbot.domain import (
    CustomerGroup,
    Delivery,
    DeliveryStatus,
    GroupTask,
    GroupTaskStatus,
    LinkCard,
    Notice,
    Outgoing,
    Person,
    TaskMade,
    TaskResults,
    TextFormat,
)
from gridbot.errors import PlatformError
from gridbot.policy import routing
from gridbot.store.base import Transaction

log = logging.getLogger(__name__)

#: the owners are WeCom members, written to in private through the WeCom app
OWNER_PLATFORM = "wecom"
#: when no configuration says: how long an owner has to confirm, and how often WeCom is asked
CONFIRM_WITHIN = timedelta(hours=4)
CHECK_EVERY = timedelta(minutes=5)
#: get_groupmsg_send_result's per-group statuses
NOT_YET, SENT, NOT_FRIEND, OTHER_SENDING = 0, 1, 2, 3
#: why a customer group's copy did not go (Delivery.error; the templates say it in words)
REASONS = {NOT_FRIEND: "not_friend", OTHER_SENDING: "other_sending"}
LEFT_OUT, DEADLINE, OVER_QUOTA, NOT_OWNERS = "left_out", "deadline", "over_quota", "not_owners"


class GroupSender(Protocol):
    """What the platform does for group-sendings
    (:class:`gridbot.adapters.wechat.customer_groups.CustomerGroupAdapter`); each call
    raises :class:`~gridbot.errors.PlatformError` (``permanent``: WeCom refused)."""

    name: str

    async def create_task(self, owner_id: str, chat_ids: list[str], text: str,
                          card: LinkCard) -> TaskMade: ...

    async def task_results(self, msgid: str, owner_id: str) -> TaskResults: ...

    async def remind(self, msgid: str) -> None: ...

    async def cancel(self, msgid: str) -> None: ...


@dataclass(frozen=True, kw_only=True)
class Timing:
    confirm_within: timedelta = CONFIRM_WITHIN
    check_every: timedelta = CHECK_EVERY


def timing(services: Services) -> Timing:
    """``[wechat.work.customer_groups] confirm_within`` and ``check_every``."""
    wecom = services.config.wecom
    groups = wecom.customer_groups if wecom is not None else None
    if groups is None:
        return Timing()
    return Timing(confirm_within=groups.confirm_within, check_every=groups.check_every)


def over_quota(group: CustomerGroup, now: datetime, waiting: int = 0) -> bool:
    """Whether the group has had this month's group-sendings (WeCom's default rule),
    counting the ``waiting`` ones its owner may still confirm as had."""
    day = now.date()
    used = group.quota_used if group.quota_month == quota_month(day) else 0
    return used + waiting >= monthly_quota(day)


async def quota_check(tx: Transaction) -> Callable[[CustomerGroup, datetime], bool]:
    """:func:`over_quota` with each group's group-sendings still waiting for its owner
    (other notices'), read once: a month's last places are not promised twice."""
    waiting = await tx.waiting_group_sendings()

    def check(group: CustomerGroup, now: datetime) -> bool:
        return over_quota(group, now, waiting.get((group.platform, group.chat_id), 0))

    return check


async def owner_of(tx: Transaction, owner_id: str) -> Person | None:
    account = await tx.account(OWNER_PLATFORM, owner_id)
    return await tx.person(account.person_id) if account and account.person_id else None


async def private_chat(tx: Transaction, person: Person | None) -> tuple[str, str] | None:
    """Where the owner is told: their WeCom app chat, else any private chat of theirs."""
    if person is None:
        return None
    found = await routing.private_chats(tx, person.id)
    found.sort(key=lambda f: f[0] != OWNER_PLATFORM)
    return found[0] if found else None


async def customer_groups_of(tx: Transaction, microgrids: Iterable[str], now: datetime
                             ) -> tuple[list[CustomerGroup], list[CustomerGroup]]:
    """The customer groups bound to ``microgrids``: those a group-sending may go to, and
    those over their month's quota (left out), as :func:`plan` sorts them."""
    within: list[CustomerGroup] = []
    over: list[CustomerGroup] = []
    full = await quota_check(tx)
    for microgrid in microgrids:
        for group in await tx.customer_groups(microgrid=microgrid):
            (over if full(group, now) else within).append(group)
    return within, over


async def sendable(tx: Transaction, microgrid: str, now: datetime) -> bool:
    """Whether a notice makes a group-sending for the micro-grid (then its steward is not
    sent the text to forward: the residents are in the customer groups)."""
    within, _ = await customer_groups_of(tx, [microgrid], now)
    return bool(within)


@dataclass(frozen=True, kw_only=True)
class Planned:
    """What :func:`plan` did for one micro-grid."""

    tasks: tuple[GroupTask, ...] = ()
    over_quota: tuple[CustomerGroup, ...] = ()


async def plan(services: Services, tx: Transaction, notice: Notice, microgrid: str,
               now: datetime) -> Planned:
    """A started notice's customer groups in ``microgrid``: a ``waiting`` delivery each
    and one task per owner (groups over their quota: an ``over_quota`` delivery, no task)."""
    groups = await tx.customer_groups(microgrid=microgrid)
    if not groups:
        return Planned()
    when = timing(services)
    by_owner: dict[tuple[str, str], list[str]] = {}
    over: list[CustomerGroup] = []
    check = await quota_check(tx)  # before this notice's own copies wait
    for group in groups:
        full = check(group, now)
        status = DeliveryStatus.OVER_QUOTA if full else DeliveryStatus.WAITING
        await tx.add_delivery(Delivery(
            id=0, notice_id=notice.id, platform=group.platform, chat_id=group.chat_id,
            microgrid=microgrid, title=group.name, status=status, updated_at=now,
            error=OVER_QUOTA if full else ""), f"group-task:{notice.id}:{group.chat_id}")
        if full:
            over.append(group)
        else:
            by_owner.setdefault((group.platform, group.owner_id), []).append(group.chat_id)
    made: list[GroupTask] = []
    for (platform, owner_id), chat_ids in by_owner.items():
        person = await owner_of(tx, owner_id)
        for part in range(0, len(chat_ids), GROUPS_PER_TASK):
            task = GroupTask(
                notice_id=notice.id, platform=platform, owner_id=owner_id,
                microgrid=microgrid if not part else f"{microgrid}#{part // GROUPS_PER_TASK}",
                person_id=person.id if person else None,
                chat_ids=tuple(chat_ids[part:part + GROUPS_PER_TASK]),
                status=GroupTaskStatus.NEW, created_at=now,
                deadline=now + when.confirm_within, next_at=now,
                remind_at=now + when.confirm_within / 2,
                told=await private_chat(tx, person) is not None)
            if await tx.add_group_task(task):
                made.append(task)
    return Planned(tasks=tuple(made), over_quota=tuple(over))


def microgrid_of(task: GroupTask) -> str:
    """The micro-grid of a task (a split one's key carries ``#n``)."""
    return task.microgrid.partition("#")[0]


#: the platform's group sender by platform name (``None``: not running here)
Senders = Callable[[str], GroupSender | None]


def senders_of(adapters: Mapping[str, object]) -> Senders:
    """The running adapters that make group-sendings, by platform name."""

    def find(platform: str) -> GroupSender | None:
        adapter = adapters.get(platform)
        return adapter if adapter is not None and all(  # type: ignore[return-value]
            callable(getattr(adapter, m, None))
            for m in ("create_task", "task_results", "remind", "cancel")) else None

    return find


class GroupTaskSource:
    """Timed work for the :class:`~gridbot.timers.worker.Worker`: make the group-sending
    tasks, follow their results, remind once, stop them at the deadline."""

    name = "group_tasks"

    def __init__(self, engine: Runner, senders: Senders, *, batch: int = 20) -> None:
        self.engine = engine
        self.senders = senders
        self.batch = batch

    async def next_due(self) -> datetime | None:
        async with self.engine.store.transaction() as tx:
            return await tx.next_group_task_due()

    async def run_due(self, now: datetime) -> int:
        when = timing(self.engine.services)
        # Claimed first (the next look moved on), so another worker or a crash mid-call
        # does not make the same task twice at once.
        async with self.engine.store.transaction() as tx:
            due = await tx.due_group_tasks(now, limit=self.batch)
            claimed = []
            for task in due:
                if self.senders(task.platform) is None:
                    continue  # the platform is not running here: its tasks wait
                # The next look: by the deadline at the latest (then each check_every,
                # should WeCom not answer at the deadline).
                later = replace(task, next_at=now + when.check_every if now >= task.deadline
                                else min(now + when.check_every, task.deadline))
                await tx.save_group_task(later)
                claimed.append(later)
        handled = 0
        for task in claimed:
            sender = self.senders(task.platform)
            assert sender is not None
            if task.status is GroupTaskStatus.NEW:
                handled += await self._make(sender, task, now, when)
            else:
                handled += await self._follow(sender, task, now, when)
        return handled

    # -- making -------------------------------------------------------------------------------
    async def _make(self, sender: GroupSender, task: GroupTask, now: datetime,
                    when: Timing) -> int:
        services = self.engine.services
        async with self.engine.store.transaction() as tx:
            notice = await tx.notice(task.notice_id)
            if notice is None:
                return 0
            if now >= task.deadline:  # WeCom could not be asked in all that time
                for chat_id in task.chat_ids:
                    await tx.settle_group_delivery(task.notice_id, task.platform, chat_id,
                                                   DeliveryStatus.NOT_SENT, now, error=DEADLINE)
                await tx.save_group_task(replace(task, status=GroupTaskStatus.FAILED,
                                                 error=task.error or DEADLINE, next_at=None,
                                                 remind_at=None))
                return 1
            microgrid = microgrid_of(task)
            # gridbot.notices.page_suffix (which imports this module)
            links = await services.resident_links(tx, [microgrid], f"/notice/{notice.id}") \
                if services.resident_links is not None else {}
            author = await tx.person(notice.author_id)
        locale = services.config.locale
        plain = TextFormat.PLAIN  # what a group-sending's text and card take
        url = links.get(microgrid, "")
        text = services.render("notice_group_text", locale=locale, fmt=plain, notice=notice,
                               author=author, link=bool(url))
        card = LinkCard(
            title=services.render("notice_group_card_title", locale=locale, fmt=plain,
                                  notice=notice),
            description=services.render("notice_group_card_desc", locale=locale, fmt=plain,
                                        notice=notice),
            url=url)
        try:
            made = await sender.create_task(task.owner_id, list(task.chat_ids), text, card)
        except PlatformError as exc:
            async with self.engine.store.transaction() as tx:
                if exc.permanent:
                    await self._fail(tx, task, str(exc), now)
                else:  # claimed: tried again at the next look
                    await tx.save_group_task(replace(
                        task, error=str(exc), next_at=now + when.check_every))
            log.warning("group-sending of notice %d for %s: %s", task.notice_id,
                        task.owner_id, exc)
            return 1
        async with self.engine.store.transaction() as tx:
            for chat_id in made.left_out:
                await tx.settle_group_delivery(task.notice_id, task.platform, chat_id,
                                               DeliveryStatus.FAILED, now, error=NOT_OWNERS)
            left = tuple(c for c in task.chat_ids if c not in made.left_out)
            told = await self._tell(tx, task, notice, "notice_group_task", now, groups=left)
            await tx.save_group_task(replace(
                task, status=GroupTaskStatus.WAITING, msgid=made.msgid, error="", told=told,
                next_at=min(now + when.check_every, task.deadline)))
        return 1

    async def _fail(self, tx: Transaction, task: GroupTask, reason: str,
                    now: datetime) -> None:
        for chat_id in task.chat_ids:
            await tx.settle_group_delivery(task.notice_id, task.platform, chat_id,
                                           DeliveryStatus.FAILED, now, error=reason)
        await tx.save_group_task(replace(task, status=GroupTaskStatus.FAILED, error=reason,
                                         next_at=None, remind_at=None))

    async def _tell(self, tx: Transaction, task: GroupTask, notice: Notice, template: str,
                    now: datetime, *, groups: Sequence[str]) -> bool:
        """Tell the owner in private what to confirm, and by when; False if there is no
        private chat of theirs to tell them in."""
        services = self.engine.services
        person = await tx.person(task.person_id) if task.person_id else None
        chat = await private_chat(tx, person)
        if person is None or chat is None:
            return False
        names = [g.name for g in [await tx.customer_group(task.platform, c) for c in groups]
                 if g is not None]
        platform, chat_id = chat
        fmt = services.platform(platform).fmt
        await tx.enqueue(Outgoing(
            platform=platform, chat_id=chat_id, fmt=fmt, person_id=person.id,
            text=services.render(template, locale=services.locale_for(person.locale), fmt=fmt,
                                 notice=notice, groups=names,
                                 deadline=task.deadline),
            dedup_key=f"notice:{notice.id}:{template}:{task.owner_id}:{task.microgrid}"), now)
        return True

    # -- following ------------------------------------------------------------------------------
    async def _follow(self, sender: GroupSender, task: GroupTask, now: datetime,
                      when: Timing) -> int:
        try:
            results: TaskResults | None = await sender.task_results(task.msgid, task.owner_id)
        except PlatformError as exc:  # asked again at the next look (claimed)
            log.warning("group-sending %s: no results (%s)", task.msgid, exc)
            results = None
        confirmed = results is not None and results.confirmed
        stop = results is not None and not confirmed and now >= task.deadline
        remind = not confirmed and not stop and task.remind_at is not None \
            and now >= task.remind_at
        # WeCom is asked outside the transaction, which then records it all at once.
        if stop:
            await _quietly(sender.cancel(task.msgid), f"stopping {task.msgid}")
        elif remind:
            await _quietly(sender.remind(task.msgid), f"WeCom's reminder of {task.msgid}")
        async with self.engine.store.transaction() as tx:
            if results is not None:
                await self._settle(tx, task, results, now)
            if results is not None and results.confirmed:
                # Sent: groups it left out (status 0) are not sent; none is waiting now.
                for chat_id in task.chat_ids:
                    await tx.settle_group_delivery(task.notice_id, task.platform, chat_id,
                                                   DeliveryStatus.NOT_SENT, now, error=LEFT_OUT)
                at = datetime.fromtimestamp(results.confirmed_at, UTC) \
                    if results.confirmed_at else now
                await tx.save_group_task(replace(
                    task, status=GroupTaskStatus.DONE, confirmed_at=at, next_at=None,
                    remind_at=None))
            elif stop:
                # The deadline passed unconfirmed: the task is stopped, its waiting groups
                # not sent (nothing goes out unseen later).
                for chat_id in task.chat_ids:
                    await tx.settle_group_delivery(task.notice_id, task.platform, chat_id,
                                                   DeliveryStatus.NOT_SENT, now, error=DEADLINE)
                await tx.save_group_task(replace(task, status=GroupTaskStatus.DONE,
                                                 next_at=None, remind_at=None))
            elif remind:
                notice = await tx.notice(task.notice_id)
                waiting = [d.chat_id for d in await tx.deliveries(
                    task.notice_id, statuses=(DeliveryStatus.WAITING,))
                    if d.chat_id in task.chat_ids]
                if notice is not None:
                    await self._tell(tx, task, notice, "notice_group_remind", now,
                                     groups=waiting)
                await tx.save_group_task(replace(task, reminded_at=now, remind_at=None))
        return 1 if results is not None or remind else 0

    async def _settle(self, tx: Transaction, task: GroupTask, results: TaskResults,
                      now: datetime) -> None:
        for group in results.groups:
            if group.chat_id not in task.chat_ids or group.status == NOT_YET:
                continue
            if group.status == SENT:
                at = datetime.fromtimestamp(group.send_time, UTC) if group.send_time else now
                if await tx.settle_group_delivery(task.notice_id, task.platform, group.chat_id,
                                                  DeliveryStatus.SENT, now, sent_at=at):
                    # Counted once, when WeCom says the group received it.
                    local = at.astimezone(self.engine.config.timezone)
                    await tx.count_group_sending(task.platform, group.chat_id,
                                                 quota_month(local.date()))
            else:
                await tx.settle_group_delivery(
                    task.notice_id, task.platform, group.chat_id, DeliveryStatus.FAILED, now,
                    error=REASONS.get(group.status, f"status {group.status}"))


async def _quietly(call: Awaitable[None], what: str) -> None:
    """A call to WeCom whose refusal changes nothing here (logged)."""
    try:
        await call
    except PlatformError as exc:
        log.warning("group-sending: %s refused (%s)", what, exc)


@dataclass(frozen=True, kw_only=True)
class OwnerLine:
    """One owner's group-sending of a notice, as ``/notice N`` and the console show it."""

    name: str
    microgrid: str
    groups: int
    #: the groups still waiting for the owner's tap, and those sent
    waiting: int
    sent: int
    status: GroupTaskStatus
    deadline: datetime
    told: bool
    reminded: bool
    error: str

    @property
    def to_tap(self) -> bool:
        """Whether the owner still has to tap (the task is open and groups wait)."""
        return self.status in (GroupTaskStatus.NEW, GroupTaskStatus.WAITING) and \
            self.waiting > 0


async def owner_lines(tx: Transaction, notice_id: int,
                      microgrids: Iterable[str] | None = None) -> list[OwnerLine]:
    """A notice's group-sendings (of ``microgrids``, if given): who still has to tap."""
    wanted = set(microgrids) if microgrids is not None else None
    by_chat = {(d.platform, d.chat_id): d.status for d in await tx.deliveries(notice_id)}
    lines = []
    for task in await tx.group_tasks(notice_id):
        if wanted is not None and microgrid_of(task) not in wanted:
            continue
        person = await tx.person(task.person_id) if task.person_id else None
        states = [by_chat.get((task.platform, c)) for c in task.chat_ids]
        lines.append(OwnerLine(
            name=person.name if person else task.owner_id, microgrid=microgrid_of(task),
            groups=len(task.chat_ids),
            waiting=sum(1 for s in states if s is DeliveryStatus.WAITING),
            sent=sum(1 for s in states if s in (DeliveryStatus.SENT,
                                                 DeliveryStatus.ACKNOWLEDGED)),
            status=task.status, deadline=task.deadline, told=task.told,
            reminded=task.reminded_at is not None, error=task.error))
    return lines
