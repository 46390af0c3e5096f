"""Group-sending tasks (客户群群发, :mod:`gridbot.group_tasks`) and the customer-group
deliveries they settle."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Insert, bindparam, func, or_, select, update

from gridbot.domain import DeliveryStatus, GroupTask, GroupTaskStatus
from gridbot.store.dialect import Dialect, const
from gridbot.store.repos.base import Repository, binds
from gridbot.store.repos.cases import one_of
from gridbot.store.tables import deliveries
from gridbot.store.tables import group_tasks as tasks

_KEY = ("notice_id", "platform", "owner_id", "microgrid")
_CHANGING = ("person_id", "chat_ids", "status", "msgid", "error", "told", "deadline",
             "next_at", "remind_at", "reminded_at", "confirmed_at")
_OPEN = (GroupTaskStatus.NEW.value, GroupTaskStatus.WAITING.value)
_OF_NOTICE = (select(tasks).where(tasks.c.notice_id == bindparam("notice_id"))
              .order_by(tasks.c.microgrid, tasks.c.owner_id))
_DUE = (select(tasks)
        .where(one_of(tasks.c.status, _OPEN),
               or_(tasks.c.next_at <= bindparam("now"), tasks.c.remind_at <= bindparam("now")))
        .order_by(tasks.c.notice_id, tasks.c.owner_id).limit(bindparam("limit"))
        .with_for_update(skip_locked=True))
_NEXT = select(func.min(tasks.c.next_at), func.min(tasks.c.remind_at)).where(
    one_of(tasks.c.status, _OPEN))
_SAVE = (update(tasks).where(*(tasks.c[k] == bindparam("k_" + k) for k in _KEY))
         .values(binds(*_CHANGING)))
#: a customer group's copy moves on only from ``waiting`` (so WeCom's "sent" counts once)
_SETTLE = (update(deliveries)
           .where(deliveries.c.notice_id == bindparam("notice_id"),
                  deliveries.c.platform == bindparam("platform"),
                  deliveries.c.chat_id == bindparam("chat_id"),
                  deliveries.c.status == const(DeliveryStatus.WAITING.value))
           .values(status=bindparam("status"), error=bindparam("error"),
                   sent_at=bindparam("sent_at"), updated_at=bindparam("now")))


_WAITING = (select(deliveries.c.platform, deliveries.c.chat_id, func.count().label("n"))
            .where(deliveries.c.status == const(DeliveryStatus.WAITING.value))
            .group_by(deliveries.c.platform, deliveries.c.chat_id))


@cache
def _add(d: Dialect) -> Insert:
    return d.insert(tasks).values(binds(*_KEY, *_CHANGING, "created_at")
                                  ).on_conflict_do_nothing(index_elements=list(_KEY))


class GroupTaskRepository(Repository):
    def _group_task(self, row: Any) -> GroupTask:
        read = self.rows.read
        return GroupTask(
            notice_id=int(row["notice_id"]), platform=row["platform"], owner_id=row["owner_id"],
            microgrid=row["microgrid"], person_id=row["person_id"],
            chat_ids=tuple(json.loads(row["chat_ids"] or "[]")),
            status=GroupTaskStatus(row["status"]), created_at=self.rows.instant(row["created_at"]),
            deadline=self.rows.instant(row["deadline"]), next_at=read(row["next_at"]),
            remind_at=read(row["remind_at"]), msgid=row["msgid"] or "", error=row["error"] or "",
            told=bool(row["told"]), reminded_at=read(row["reminded_at"]),
            confirmed_at=read(row["confirmed_at"]))

    def _task_values(self, task: GroupTask) -> dict[str, Any]:
        return {"person_id": task.person_id, "chat_ids": json.dumps(list(task.chat_ids)),
                "status": task.status.value, "msgid": task.msgid, "error": task.error,
                "told": task.told, "deadline": self.at(task.deadline),
                "next_at": self.at(task.next_at), "remind_at": self.at(task.remind_at),
                "reminded_at": self.at(task.reminded_at),
                "confirmed_at": self.at(task.confirmed_at)}

    async def add_group_task(self, task: GroupTask) -> bool:
        return await self.sql.run(_add(self.dialect), {
            "notice_id": task.notice_id, "platform": task.platform, "owner_id": task.owner_id,
            "microgrid": task.microgrid, "created_at": self.at(task.created_at),
            **self._task_values(task)}) == 1

    async def save_group_task(self, task: GroupTask) -> None:
        await self.sql.run(_SAVE, {
            "k_notice_id": task.notice_id, "k_platform": task.platform,
            "k_owner_id": task.owner_id, "k_microgrid": task.microgrid,
            **self._task_values(task)})

    async def group_tasks(self, notice_id: int) -> list[GroupTask]:
        rows = await self.sql.all(_OF_NOTICE, {"notice_id": notice_id})
        return [self._group_task(r) for r in rows]

    async def due_group_tasks(self, now: datetime, *, limit: int) -> list[GroupTask]:
        rows = await self.sql.all(_DUE, {"now": self.at(now), "limit": limit})
        return [self._group_task(r) for r in rows]

    async def next_group_task_due(self) -> datetime | None:
        row = await self.sql.one(_NEXT, {})
        if row is None:
            return None
        found = [self.rows.read(v) for v in row]
        return min((at for at in found if at is not None), default=None)

    async def waiting_group_sendings(self) -> dict[tuple[str, str], int]:
        return {(r["platform"], r["chat_id"]): int(r["n"])
                for r in await self.sql.all(_WAITING, {})}

    async def settle_group_delivery(self, notice_id: int, platform: str, chat_id: str,
                                    status: DeliveryStatus, now: datetime, *,
                                    error: str = "", sent_at: datetime | None = None) -> bool:
        return await self.sql.run(_SETTLE, {
            "notice_id": notice_id, "platform": platform, "chat_id": chat_id,
            "status": status.value, "error": error, "sent_at": self.at(sent_at),
            "now": self.at(now)}) == 1
