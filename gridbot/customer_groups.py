"""Customer groups (客户群): residents' groups a steward owns in WeCom, bound to micro-grids.

Many communities move their residents' WeChat groups into WeCom as customer groups: the
steward (a WeCom member) owns the group, residents stay on ordinary WeChat. No bot can
join or post into such a group; only its owner can send there, by confirming a
group-sending task (客户群群发). So a customer group is not a :class:`~gridbot.domain.Chat`
the engine can address: it is kept in a table of its own (``customer_groups``), with its
owner, member count and micro-grid, and nothing that routes a case or sends a notice to a
micro-grid's chats counts it as reaching anyone.

The platform (:mod:`gridbot.adapters.wechat.customer_groups`) lists the groups of every
steward and tells of each change (created, renamed, owner changed, members joined or
left, dismissed); this module keeps the table current and binds each group:

1. by hand (``gridbot groups bind``, the console's People page): kept until someone
   changes it; unbinding by hand also sticks (no rule binds it again);
2. by name: the first micro-grid in ``[wechat.work.customer_groups.names]`` whose
   regular expression is found in the group's name;
3. by owner: the owner's WeCom account is linked to a steward who is the primary steward
   of exactly one micro-grid (or, rostered nowhere, a steward of one micro-grid).

A dismissed group loses its binding and keeps its row (``dismissed_at``).

WeCom's limits for sending into customer groups, which the group-sendings (issue 19,
item 2) count against per group in ``quota_month`` / ``quota_used``:

- 创建企业群发 (add_msg_template, https://developer.work.weixin.qq.com/document/path/92135):
  the task only reaches the owner, who must confirm it; ``chat_type = "group"`` needs a
  ``sender``; ``chat_id_list`` names at most 2,000 customer groups per task; "每位客户/每个
  客户群每月最多可接收条数为当月天数" — a customer group receives at most as many
  group-sendings a month as the month has days; the enterprise may change that in 群发助手
  → 设置群发规则 to seven a week or one a day (:data:`MONTHLY_QUOTA` is the default rule;
  earlier versions of the page said four a month);
- 提醒成员群发 (remind_groupmsg_send, https://developer.work.weixin.qq.com/document/path/97610):
  at most three reminders per task within 24 hours.

The API calls themselves: 获取客户群列表 (groupchat/list,
https://developer.work.weixin.qq.com/document/path/92120: ``owner_filter.userid_list`` of
at most 100 owners, paged by cursor), 获取客户群详情 (groupchat/get, …/path/92122: name,
owner, member_list) and the 客户群变更事件 (change_external_chat, …/path/92130: ChangeType
``create``, ``update`` with UpdateDetail ``add_member`` / ``del_member`` / ``change_owner``
/ ``change_name`` / ``change_notice``, and ``dismiss``).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from gridbot.config import Config
from gridbot.domain import BindingRules, CustomerGroup, GroupCounts, GroupSeen, Role
from gridbot.store.base import AuditEntry, Transaction

#: how the command line binds (its audit entries and ``bound_by``)
CLI = "cli"
#: group-sendings one customer group may receive in a month, by WeCom's default rule
MONTHLY_QUOTA = "days_in_month"
#: customer groups one group-sending task may name (chat_id_list)
GROUPS_PER_TASK = 2000


def monthly_quota(day: date) -> int:
    """How many group-sendings a customer group may receive in ``day``'s month (WeCom's
    default rule: as many as the month has days)."""
    return calendar.monthrange(day.year, day.month)[1]


def quota_month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def by_name(rules: BindingRules, name: str, microgrids: Iterable[str]) -> str | None:
    """The first micro-grid (in the configuration's order) whose pattern is in ``name``."""
    for code in microgrids:
        pattern = rules.names.get(code)
        if pattern and re.search(pattern, name):
            return code
    return None


async def steward_microgrid(tx: Transaction, config: Config, platform: str,
                            user_id: str) -> str | None:
    """The one micro-grid whose steward has the account ``user_id`` on ``platform``."""
    account = await tx.account(platform, user_id) if platform and user_id else None
    person = config.person(account.person_id) if account and account.person_id else None
    if person is None or person.role is not Role.STEWARD:
        return None
    primary = [code for code, roster in config.rosters.items() if roster.primary == person.id]
    if len(primary) == 1:
        return primary[0]
    if not primary and config.microgrid(person.unit) is not None:
        return person.unit
    return None


async def rule_for(tx: Transaction, config: Config, rules: BindingRules,
                   seen: GroupSeen) -> tuple[str | None, str]:
    """Where the rules put a group: (micro-grid, "name" or "owner"), or (None, "")."""
    code = by_name(rules, seen.name, [m.code for m in config.microgrids])
    if code is not None:
        return code, "name"
    if rules.owner_rule:
        code = await steward_microgrid(tx, config, rules.owner_platform, seen.owner_id)
        if code is not None:
            return code, "owner"
    return None, ""


async def owners(tx: Transaction, config: Config, platform: str,
                 owner_platform: str) -> list[str]:
    """Whose groups to list: every configured steward's linked account on
    ``owner_platform``, and the owners of the groups already known."""
    found: list[str] = []
    for person in config.people:
        if person.role is Role.STEWARD and person.active:
            found += [a.user_id for a in await tx.accounts_of(person.id)
                      if a.platform == owner_platform]
    found += [g.owner_id for g in await tx.customer_groups() if g.platform == platform]
    return sorted({o for o in found if o})


async def seen(tx: Transaction, config: Config, platform: str, rules: BindingRules,
               groups: Sequence[GroupSeen], now: datetime, *,
               complete_for: Iterable[str] | None = None) -> None:
    """Keep what the platform listed or told of; bind by rule what no one bound by hand.
    ``complete_for``: the owners whose groups were all listed (any other group of theirs
    was dismissed meanwhile)."""
    listed = {g.chat_id for g in groups}
    for group in groups:
        known = await tx.customer_group(platform, group.chat_id)
        if known is not None and known.by_hand:
            microgrid, by, at = known.microgrid, known.bound_by, known.bound_at
        else:
            microgrid, by = await rule_for(tx, config, rules, group)
            same = known is not None and (known.microgrid, known.bound_by) == (microgrid, by)
            at = known.bound_at if same and known is not None else (now if by else None)
        await tx.save_customer_group(CustomerGroup(
            platform=platform, chat_id=group.chat_id, name=group.name,
            owner_id=group.owner_id, members=group.members, microgrid=microgrid,
            bound_by=by, bound_at=at, seen_at=now, dismissed_at=None))
    if complete_for is not None:
        whole = set(complete_for)
        for known in await tx.customer_groups():
            if known.platform == platform and known.owner_id in whole \
                    and known.chat_id not in listed:
                await dismissed(tx, platform, known.chat_id, now)


async def dismissed(tx: Transaction, platform: str, chat_id: str, now: datetime) -> None:
    """The group was dismissed (解散): it loses its binding, its row stays."""
    known = await tx.customer_group(platform, chat_id)
    if known is None or known.dismissed_at is not None:
        return
    await tx.save_customer_group(CustomerGroup(
        platform=platform, chat_id=chat_id, name=known.name, owner_id=known.owner_id,
        members=known.members, microgrid=None, bound_by="", bound_at=None,
        seen_at=known.seen_at, dismissed_at=now))


async def counts(tx: Transaction, platform: str) -> GroupCounts:
    every = [g for g in await tx.customer_groups(dismissed=True) if g.platform == platform]
    live = [g for g in every if g.dismissed_at is None]
    return GroupCounts(groups=len(live), bound=sum(1 for g in live if g.microgrid),
                       members=sum(g.members for g in live),
                       dismissed=len(every) - len(live))


class BindError(Exception):
    """Binding by hand refused: ``reason`` is "no_group", "ambiguous", "dismissed" or
    "no_microgrid"."""

    def __init__(self, reason: str, given: str) -> None:
        super().__init__(f"{reason}: {given}")
        self.reason = reason
        self.given = given


async def find(tx: Transaction, given: str) -> CustomerGroup:
    """A customer group by its chat id, or by its exact name when only one has it."""
    every = await tx.customer_groups(dismissed=True)
    exact = [g for g in every if g.chat_id == given.strip()]
    named = exact or [g for g in every if g.name == given.strip()]
    if not named:
        raise BindError("no_group", given)
    live = [g for g in named if g.dismissed_at is None]
    if len(live) > 1:
        raise BindError("ambiguous", given)
    if not live:
        raise BindError("dismissed", given)
    return live[0]


async def bind(tx: Transaction, config: Config, given: str, microgrid: str | None, *,
               actor: str, role: str, via: str, now: datetime) -> CustomerGroup:
    """Bind a customer group to ``microgrid`` by hand (``None``: unbind; no rule binds it
    again), and note it in the audit log. Raise :class:`BindError`."""
    group = await find(tx, given)
    if microgrid is not None:
        unit = next((m for m in config.microgrids
                     if m.code.upper() == microgrid.strip().upper()), None)
        if unit is None:
            raise BindError("no_microgrid", microgrid)
        microgrid = unit.code
    await tx.bind_customer_group(group.platform, group.chat_id, microgrid, by=actor, now=now)
    await tx.add_audit(AuditEntry(
        at=now, actor_id=actor, role=role, via=via,
        action="bind_customer_group" if microgrid else "unbind_customer_group",
        target=group.chat_id, summary=f"{group.name}: {group.microgrid or '-'} -> "
                                      f"{microgrid or '-'}"))
    found = await tx.customer_group(group.platform, group.chat_id)
    assert found is not None
    return found
