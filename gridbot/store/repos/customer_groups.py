"""Customer groups (客户群, :mod:`gridbot.customer_groups`): groups only their owner can
send to, kept with their owner, member count, micro-grid and monthly quota count."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Insert, bindparam, case, literal, select, update

from gridbot.domain import CustomerGroup
from gridbot.store.dialect import Dialect
from gridbot.store.repos.base import Repository, binds
from gridbot.store.tables import customer_groups as groups

_ONE = select(groups).where(groups.c.platform == bindparam("platform"),
                            groups.c.chat_id == bindparam("chat_id"))
_ALL = select(groups).order_by(groups.c.microgrid, groups.c.name, groups.c.chat_id)
_BIND = (update(groups).where(groups.c.platform == bindparam("platform"),
                              groups.c.chat_id == bindparam("chat_id"))
         .values(binds("microgrid", "bound_by", "bound_at")))
_SENDING = (update(groups).where(groups.c.platform == bindparam("platform"),
                                 groups.c.chat_id == bindparam("chat_id"))
            .values(quota_used=case((groups.c.quota_month == bindparam("month"),
                                     groups.c.quota_used + literal(1)), else_=literal(1)),
                    quota_month=bindparam("month")))
_COLUMNS = ("platform", "chat_id", "name", "owner_id", "members", "microgrid", "bound_by",
            "bound_at", "seen_at", "dismissed_at", "quota_month", "quota_used")


@cache
def _save(d: Dialect) -> Insert:
    # The quota counters are the sendings' own (count_group_sending): a sync leaves them.
    return d.upsert(groups, ["platform", "chat_id"],
                    [c for c in _COLUMNS if c not in ("platform", "chat_id", "quota_month",
                                                      "quota_used")]
                    ).values(binds(*_COLUMNS))


class CustomerGroupRepository(Repository):
    def _group(self, row: Any) -> CustomerGroup:
        read = self.rows.read
        return CustomerGroup(
            platform=row["platform"], chat_id=row["chat_id"], name=row["name"],
            owner_id=row["owner_id"], members=int(row["members"]), microgrid=row["microgrid"],
            bound_by=row["bound_by"], bound_at=read(row["bound_at"]),
            seen_at=read(row["seen_at"]), dismissed_at=read(row["dismissed_at"]),
            quota_month=row["quota_month"], quota_used=int(row["quota_used"]))

    async def customer_group(self, platform: str, chat_id: str) -> CustomerGroup | None:
        row = await self.sql.one(_ONE, {"platform": platform, "chat_id": chat_id})
        return self._group(row) if row is not None else None

    async def customer_groups(self, *, microgrid: str | None = None,
                              dismissed: bool = False) -> list[CustomerGroup]:
        statement = _ALL
        if microgrid is not None:
            statement = statement.where(groups.c.microgrid == microgrid)
        if not dismissed:
            statement = statement.where(groups.c.dismissed_at.is_(None))
        return [self._group(r) for r in await self.sql.all(statement, {})]

    async def save_customer_group(self, group: CustomerGroup) -> None:
        await self.sql.run(_save(self.dialect), {
            "platform": group.platform, "chat_id": group.chat_id, "name": group.name,
            "owner_id": group.owner_id, "members": group.members,
            "microgrid": group.microgrid, "bound_by": group.bound_by,
            "bound_at": self.at(group.bound_at), "seen_at": self.at(group.seen_at),
            "dismissed_at": self.at(group.dismissed_at), "quota_month": group.quota_month,
            "quota_used": group.quota_used})

    async def bind_customer_group(self, platform: str, chat_id: str, microgrid: str | None,
                                  *, by: str, now: datetime) -> bool:
        return await self.sql.run(_BIND, {
            "platform": platform, "chat_id": chat_id, "microgrid": microgrid, "bound_by": by,
            "bound_at": self.at(now)}) > 0

    async def count_group_sending(self, platform: str, chat_id: str, month: str) -> int:
        await self.sql.run(_SENDING, {"platform": platform, "chat_id": chat_id,
                                      "month": month})
        group = await self.customer_group(platform, chat_id)
        return group.quota_used if group is not None else 0


