"""WeCom customer groups (客户群): the residents' groups each steward owns in WeCom.

A platform of its own, ``wecom_customer``, because nothing can be posted into these
groups the way the bot posts into a chat: a robot cannot join them, and only the owner
can send there, by confirming a group-sending task (客户群群发; issue 19, item 2). Its
:meth:`~CustomerGroupAdapter.send` refuses, and the groups are not chats: they live in
their own table (:mod:`gridbot.customer_groups`), which routing and notices do not read.

What it does: with the customer-contact permission (the app's secret, once the app is in
客户联系 → 可调用接口的应用, or the 客户联系 secret itself), it lists the customer groups
of every steward who linked a WeCom account (获取客户群列表, externalcontact/groupchat/list,
https://developer.work.weixin.qq.com/document/path/92120; at most 100 owners per call) and
reads each (获取客户群详情, groupchat/get, …/path/92122: name, owner, members), at start
and every ``sync_every``; in between, WeCom's 客户群变更事件 (change_external_chat,
…/path/92130), which reach the app's callback (:mod:`~gridbot.adapters.wechat.wecom`
hands them here), keep it current: ``create`` and ``update`` (add_member, del_member,
change_name, change_owner, change_notice) read the group again, ``dismiss`` unbinds it.
WeCom itself says its change events may come out of order or not at all, so the periodic
list is the truth; the events make it current sooner.

And it makes and follows a notice's group-sendings (:class:`gridbot.group_tasks.GroupSender`,
driven by :class:`gridbot.group_tasks.GroupTaskSource`): 创建企业群发 (add_msg_template,
https://developer.work.weixin.qq.com/document/path/92135, ``chat_type = "group"``, the
owner as ``sender``, the text and a link card in ``attachments``; answers ``msgid`` and
the ``fail_list`` of groups it left out), 获取群发成员发送任务列表 and 获取企业群发成员执行结果
(get_groupmsg_task / get_groupmsg_send_result, …/path/93338: the owner's ``status`` 0 未发送
/ 2 已发送, each group's 0 未发送 / 1 已发送 / 2 非好友 / 3 已收到其他群发), 提醒成员群发
(remind_groupmsg_send, …/path/97610) and 停止企业群发 (cancel_groupmsg_send, …/path/97611).
wechatpy has only add_msg_template and the older get_group_msg_result, so the others are
posted through the same client.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from gridbot import tasks
from gridbot.adapters.base import Adapter, Intake
from gridbot.adapters.wechat.settings import CustomerGroupSettings, WeComSettings
from gridbot.adapters.wechat.shared import (
    WorkClient,
    call,
    describe,
    is_api_error,
    platform_error,
)
from gridbot.domain import (
    BindingRules,
    GroupCounts,
    GroupResult,
    GroupSeen,
    LinkCard,
    Outgoing,
    TaskMade,
    TaskResults,
    TextFormat,
)
from gridbot.errors import PlatformError

log = logging.getLogger(__name__)

PLATFORM = "wecom_customer"
#: the owners' accounts: WeCom members, as the app knows them
OWNER_PLATFORM = "wecom"
WHO = "WeCom customer groups"
#: groupchat/list takes at most 100 owners per call, and pages of at most 1,000 groups
OWNERS_PER_CALL = 100
PAGE = 1000
#: the change types of change_external_chat that say the group is still there
CHANGED = frozenset({"create", "update"})


class CustomerGroupAdapter(Adapter):
    name = PLATFORM
    fmt = TextFormat.PLAIN

    def __init__(self, work: WeComSettings, settings: CustomerGroupSettings) -> None:
        secret = settings.secret.get_secret_value() or work.secret.get_secret_value()
        self.settings = settings
        self.client = WorkClient(work.corp_id, secret, api_base_url=work.api_base_url)
        self.rules = BindingRules(owner_rule=settings.owner_rule, owner_platform=OWNER_PLATFORM,
                                  names=dict(settings.names))
        self.counts = GroupCounts()
        self.synced_at: datetime | None = None
        self.error = ""
        self._intake: Intake | None = None
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        try:
            await call(self.client.fetch_access_token)
        except Exception as exc:
            if not is_api_error(exc):
                raise
            raise PlatformError(f"{WHO}: no access token ({describe(exc)}; is "
                                f"[wechat.work.customer_groups] secret 客户联系's Secret?)"
                                ) from None

    async def start(self, intake: Intake) -> None:
        self._intake = intake
        await self.sync()
        self._task = asyncio.create_task(self._every(), name="customer-groups")

    async def stop(self) -> None:
        await tasks.cancel(self._task)
        self._task = None

    async def close(self) -> None:
        self.client._http.close()

    def hears(self, chat_id: str) -> bool:
        return False  # nobody's words in a customer group reach the bot

    def health(self) -> dict[str, Any]:
        return {"mode": "sync", "groups": self.counts.groups, "bound": self.counts.bound,
                "members": self.counts.members, "dismissed": self.counts.dismissed,
                "synced_at": self.synced_at.isoformat() if self.synced_at else None,
                **({"error": self.error} if self.error else {})}

    async def send(self, message: Outgoing) -> str:
        raise PlatformError(f"{WHO}: the bot cannot post into a customer group; only its "
                            f"owner can, by confirming a group-sending", permanent=True)

    # -- the list -------------------------------------------------------------------------------
    async def _every(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sync_every.total_seconds())
            try:
                await self.sync()
            except Exception as exc:  # the database was busy, say: the next round retries
                self.error = f"{type(exc).__name__}: {exc}"
                log.error("%s: keeping the list failed: %s", WHO, self.error)

    async def sync(self) -> bool:
        """List every steward's customer groups and keep them; False (logged, and shown
        in ``/healthz``) if WeCom refused or could not be reached: the next sync retries."""
        intake = self._intake
        if intake is None:
            return False
        owners = await intake.group_owners(PLATFORM, OWNER_PLATFORM)
        try:
            groups = await self._list(owners)
        except Exception as exc:
            if not is_api_error(exc):
                raise
            self.error = describe(exc)
            log.warning("%s: listing failed (%s); is the app in 客户联系 → 可调用接口的应用, or "
                        "[wechat.work.customer_groups] secret set?", WHO, self.error)
            return False
        self.counts = await intake.groups_seen(PLATFORM, groups, self.rules,
                                               complete_for=owners)
        self.synced_at, self.error = intake.now(), ""
        log.info("%s: %d listed for %d owners, %d bound", WHO, self.counts.groups,
                 len(owners), self.counts.bound)
        return True

    async def _list(self, owners: list[str]) -> list[GroupSeen]:
        api = self.client.external_contact_group_chat
        found: list[GroupSeen] = []
        for start in range(0, len(owners), OWNERS_PER_CALL):
            batch = owners[start:start + OWNERS_PER_CALL]
            listed = await call(api.list_all, 0, batch, PAGE)
            for item in listed:
                found.append(await self._read(str(item.get("chat_id") or "")))
        return found

    async def _read(self, chat_id: str) -> GroupSeen:
        answer = await call(self.client.external_contact_group_chat.get, chat_id)
        return seen_group(answer.get("group_chat") or {}, chat_id)

    # -- change_external_chat -------------------------------------------------------------------
    async def on_event(self, event: dict[str, Any]) -> None:
        """A 客户群变更事件 from the app's callback (the decrypted XML as a dict). Raises
        what went wrong, so the callback answers 500 and WeCom delivers it again."""
        intake = self._intake
        chat_id = str(event.get("ChatId") or "")
        change = str(event.get("ChangeType") or "")
        if intake is None or not chat_id:
            return
        if change == "dismiss":
            self.counts = await intake.group_dismissed(PLATFORM, chat_id)
        elif change in CHANGED:
            try:
                group = await self._read(chat_id)
            except Exception as exc:
                if not is_api_error(exc):
                    raise
                raise PlatformError(f"{WHO}: reading {chat_id}: {describe(exc)}") from None
            self.counts = await intake.groups_seen(PLATFORM, [group], self.rules)
        else:
            return
        log.info("%s: %s %s (%s)", WHO, change, chat_id, event.get("UpdateDetail") or "-")


    # -- group-sendings (gridbot.group_tasks.GroupSender) -----------------------------------
    async def create_task(self, owner_id: str, chat_ids: list[str], text: str,
                          card: LinkCard) -> TaskMade:
        body: dict[str, Any] = {
            "chat_type": "group", "sender": owner_id, "chat_id_list": chat_ids,
            "allow_select": False, "text": {"content": text}}
        if card.url:  # no residents' pages served: the text alone
            body["attachments"] = [{"msgtype": "link", "link": {
                "title": card.title, "desc": card.description, "url": card.url}}]
        answer = await self._post("externalcontact/add_msg_template", body)
        return TaskMade(msgid=str(answer.get("msgid") or ""),
                        left_out=tuple(str(c) for c in answer.get("fail_list") or ()))

    async def task_results(self, msgid: str, owner_id: str) -> TaskResults:
        tasks = await self._pages("externalcontact/get_groupmsg_task", "task_list",
                                  {"msgid": msgid})
        mine = next((t for t in tasks if t.get("userid") == owner_id), {})
        sent = await self._pages("externalcontact/get_groupmsg_send_result", "send_list",
                                 {"msgid": msgid, "userid": owner_id})
        return TaskResults(
            confirmed=mine.get("status") == 2,
            confirmed_at=int(mine.get("send_time") or 0),
            groups=tuple(GroupResult(chat_id=str(g.get("chat_id") or ""),
                                     status=int(g.get("status") or 0),
                                     send_time=int(g.get("send_time") or 0))
                         for g in sent if g.get("chat_id")))

    async def remind(self, msgid: str) -> None:
        await self._post("externalcontact/remind_groupmsg_send", {"msgid": msgid})

    async def cancel(self, msgid: str) -> None:
        await self._post("externalcontact/cancel_groupmsg_send", {"msgid": msgid})

    async def _pages(self, api: str, key: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = ""
        for _ in range(100):  # 1,000 pages of results is more than any task has
            answer = await self._post(api, {**body, "limit": 1000, "cursor": cursor})
            found += list(answer.get(key) or [])
            cursor = str(answer.get("next_cursor") or "")
            if not cursor:
                break
        return found

    async def _post(self, api: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = await call(self.client.post, api, data=body)
        except Exception as exc:
            if not is_api_error(exc):
                raise
            raise platform_error(exc, WHO) from None
        return answer


def seen_group(detail: dict[str, Any], chat_id: str) -> GroupSeen:
    """groupchat/get's ``group_chat`` as the bot keeps it (the member list is counted, not
    kept: it names residents)."""
    members = detail.get("member_list")
    return GroupSeen(chat_id=str(detail.get("chat_id") or chat_id),
                     name=str(detail.get("name") or ""), owner_id=str(detail.get("owner") or ""),
                     members=len(members) if isinstance(members, list) else 0)
