"""Exactly-once intake: the inbox of handled platform messages, and the messages set
aside because their handling raised (kept, tried again later on their own)."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import Insert, bindparam, delete, func, select, update

from gridbot.domain import Incoming
from gridbot.store.base import SetAside
from gridbot.store.dialect import Dialect, const, quick
from gridbot.store.repos.base import Repository, binds
from gridbot.store.rows import incoming_json
from gridbot.store.tables import inbox, set_aside


@cache
def _mark(d: Dialect) -> Insert:
    return quick(d.insert_ignore(inbox).values(binds("platform", "chat_id", "message_id",
                                                     "handled_at")))


@cache
def _set_aside(d: Dialect) -> Insert:
    return d.insert_ignore(set_aside).values(
        attempts=const(1), **binds("platform", "chat_id", "message_id", "sender_id",
                                   "incoming", "error", "next_try", "created_at",
                                   "updated_at"))


_DUE = (select(set_aside.c.id)
        .where(set_aside.c.next_try.is_not(None), set_aside.c.next_try <= bindparam("now"))
        .order_by(set_aside.c.next_try, set_aside.c.id)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
        .cte("due"))  # a CTE: PostgreSQL runs a locking one exactly once
_CLAIM = (update(set_aside).where(set_aside.c.id == _DUE.c.id)
          .values(next_try=bindparam("next_try")).returning(*set_aside.c))
_RETRY = (update(set_aside).where(set_aside.c.id == bindparam("item_id"))
          .values(attempts=set_aside.c.attempts + const(1),
                  **binds("error", "next_try", "updated_at")))
_DROP = delete(set_aside).where(set_aside.c.id == bindparam("item_id"))
_NEXT_DUE = select(func.min(set_aside.c.next_try)).where(set_aside.c.next_try.is_not(None))
_ALL = (select(set_aside)
        .order_by(set_aside.c.next_try.is_not(None), set_aside.c.id)
        .limit(bindparam("limit")))
_COUNTS = select(func.count(set_aside.c.next_try).label("waiting"),
                 (func.count() - func.count(set_aside.c.next_try)).label("given_up"))


class IntakeRepository(Repository):
    async def mark_handled(
        self, platform: str, chat_id: str, message_id: str, now: datetime
    ) -> bool:
        # A second worker handling the same update waits here for the first to commit,
        # then finds the row: the update is handled once.
        return await self.sql.run(_mark(self.dialect), {
            "platform": platform, "chat_id": chat_id, "message_id": message_id,
            "handled_at": self.at(now)}) == 1

    # -- messages set aside ---------------------------------------------------------------
    async def savepoint(self, name: str) -> None:
        await self.sql.savepoint(name)

    async def release(self, name: str) -> None:
        await self.sql.release(name)

    async def rollback_to(self, name: str) -> None:
        await self.sql.rollback_to(name)

    async def set_aside(self, incoming: Incoming, *, error: str, now: datetime,
                        next_try: datetime) -> bool:
        return await self.sql.run(_set_aside(self.dialect), {
            "platform": incoming.platform, "chat_id": incoming.chat_id,
            "message_id": incoming.message_id, "sender_id": incoming.sender_id,
            "incoming": incoming_json(incoming), "error": error,
            "next_try": self.at(next_try), "created_at": self.at(now),
            "updated_at": self.at(now)}) == 1

    async def claim_set_aside(self, now: datetime, *, limit: int,
                              lease: timedelta) -> list[SetAside]:
        rows = await self.sql.all(_CLAIM, {"now": self.at(now), "limit": limit,
                                           "next_try": self.at(now + lease)})
        rows.sort(key=lambda r: r["id"])
        return [self.rows.set_aside(r) for r in rows]

    async def retry_set_aside(self, item_id: int, *, error: str, now: datetime,
                              next_try: datetime | None) -> None:
        await self.sql.run(_RETRY, {"item_id": item_id, "error": error,
                                    "next_try": self.at(next_try), "updated_at": self.at(now)})

    async def drop_set_aside(self, item_id: int) -> None:
        await self.sql.run(_DROP, {"item_id": item_id})

    async def next_set_aside_due(self) -> datetime | None:
        return self.rows.read(await self.sql.value(_NEXT_DUE))

    async def set_aside_messages(self, *, limit: int = 100) -> list[SetAside]:
        return [self.rows.set_aside(r) for r in await self.sql.all(_ALL, {"limit": limit})]

    async def set_aside_counts(self) -> dict[str, int]:
        row = await self.sql.one(_COUNTS)
        return {"waiting": row["waiting"], "given_up": row["given_up"]}
