"""Records kept beside the cases: the household ledger (住户台账) from ``gridbot
import``, the append-only audit log of staff actions, and the heartbeats of the
processes holding duties (see :mod:`gridbot.duties`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Insert, Select, bindparam, delete, func, insert, null, or_, select, update

from gridbot.store.base import AuditEntry, AuditQuery, Heartbeat, Household
from gridbot.store.dialect import Dialect
from gridbot.store.repos.base import Repository, binds, in_list, numbered
from gridbot.store.tables import audit_log, heartbeats, households

_HOUSEHOLD_COUNTS = (select(households.c.microgrid, func.count().label("n"))
                     .group_by(households.c.microgrid))
_KEY = ("microgrid", "building", "entrance", "room")
_REMOVE_HOUSEHOLD = delete(households).where(
    *(households.c[k] == bindparam(k) for k in _KEY))
_ADD_AUDIT = insert(audit_log).values(binds("at", "actor_id", "role", "via", "action", "target",
                                            "summary"))
_RELEASE_BEAT = (update(heartbeats).where(heartbeats.c.duty == bindparam("duty"),
                                          heartbeats.c.holder == bindparam("holder"))
                 .values(released_at=bindparam("now")))
_HEARTBEATS = select(heartbeats).order_by(heartbeats.c.duty)


@cache
def _households(count: int) -> Select[Any]:
    return (select(households).where(in_list(households.c.microgrid, "microgrid", count))
            .order_by(households.c.microgrid, households.c.building, households.c.entrance,
                      households.c.room))


@cache
def _put_households(d: Dialect) -> Insert:
    return d.upsert(households, _KEY, ["head", "phone", "members", "tags", "note",
                                       "updated_at"]).values(
        binds(*_KEY, "head", "phone", "members", "tags", "note", "updated_at"))


@cache
def _audit_entries(since: bool, person: bool) -> Select[Any]:
    query = select(audit_log)
    if since:
        query = query.where(audit_log.c.at >= bindparam("since"))
    if person:
        query = query.where(or_(audit_log.c.actor_id == bindparam("person_id"),
                                audit_log.c.target == bindparam("person_id")))
    return query.order_by(audit_log.c.id).limit(bindparam("limit"))


@cache
def _audit_page(actors: int | None, actor: bool, action: bool, via: bool, since: bool,
                until: bool) -> Select[Any]:
    query = select(audit_log)
    if actors is not None:
        query = query.where(in_list(audit_log.c.actor_id, "actor", actors))
    if actor:
        query = query.where(audit_log.c.actor_id == bindparam("actor_id"))
    if action:
        query = query.where(audit_log.c.action == bindparam("action"))
    if via:
        query = query.where(audit_log.c.via == bindparam("via"))
    if since:
        query = query.where(audit_log.c.at >= bindparam("since"))
    if until:
        query = query.where(audit_log.c.at < bindparam("until"))
    return (query.order_by(audit_log.c.id.desc()).limit(bindparam("limit"))
            .offset(bindparam("offset")))


@cache
def _beat(d: Dialect) -> Insert:
    return d.upsert(heartbeats, ["duty"], ["holder", "beat_at", "detail"],
                    released_at=null()).values(
        released_at=None, **binds("duty", "holder", "beat_at", "detail"))


class HouseholdRepository(Repository):
    async def household_counts(self) -> dict[str, int]:
        return {r["microgrid"]: r["n"] for r in await self.sql.all(_HOUSEHOLD_COUNTS)}

    async def households(self, microgrids: Sequence[str]) -> list[Household]:
        if not microgrids:
            return []
        rows = await self.sql.all(_households(len(microgrids)),
                                  numbered("microgrid", microgrids))
        return [self.rows.household(r) for r in rows]

    async def put_households(self, households: Sequence[Household], now: datetime) -> None:
        # One trip for the lot: a 50,000-household ledger is one executemany.
        at = self.at(now)
        await self.sql.many(_put_households(self.dialect), [
            {"microgrid": h.microgrid, "building": h.building, "entrance": h.entrance,
             "room": h.room, "head": h.head, "phone": h.phone, "members": h.members,
             "tags": json.dumps(list(h.tags), ensure_ascii=False), "note": h.note,
             "updated_at": at} for h in households])

    async def remove_households(self, keys: Sequence[tuple[str, str, str, str]]) -> None:
        await self.sql.many(_REMOVE_HOUSEHOLD, [dict(zip(_KEY, k, strict=True)) for k in keys])


class AuditRepository(Repository):
    async def add_audit(self, entry: AuditEntry) -> None:
        await self.sql.run(_ADD_AUDIT, {
            "at": self.at(entry.at), "actor_id": entry.actor_id, "role": entry.role,
            "via": entry.via, "action": entry.action, "target": entry.target,
            "summary": entry.summary})

    async def audit_entries(
        self, *, since: datetime | None = None, person_id: str | None = None,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        rows = await self.sql.all(_audit_entries(since is not None, person_id is not None),
                                  {"since": self.at(since), "person_id": person_id,
                                   "limit": limit})
        return [self._entry(r) for r in rows]

    async def audit_page(self, query: AuditQuery) -> list[AuditEntry]:
        actors = None if query.actors is None else len(query.actors)
        statement = _audit_page(actors, bool(query.actor_id), bool(query.action),
                                bool(query.via), query.since is not None,
                                query.until is not None)
        params: dict[str, Any] = {
            "actor_id": query.actor_id, "action": query.action, "via": query.via,
            "since": self.at(query.since), "until": self.at(query.until),
            "limit": query.limit, "offset": query.offset}
        params.update(numbered("actor", query.actors or ()))
        return [self._entry(r) for r in await self.sql.all(statement, params)]

    def _entry(self, r: Any) -> AuditEntry:
        return AuditEntry(id=r["id"], at=self.rows.instant(r["at"]), actor_id=r["actor_id"],
                          role=r["role"], via=r["via"], action=r["action"],
                          target=r["target"], summary=r["summary"])


class HeartbeatRepository(Repository):
    async def beat(self, duty: str, holder: str, now: datetime, detail: str = "") -> None:
        await self.sql.run(_beat(self.dialect), {"duty": duty, "holder": holder,
                                                 "beat_at": self.at(now), "detail": detail})

    async def release_beat(self, duty: str, holder: str, now: datetime) -> None:
        await self.sql.run(_RELEASE_BEAT, {"duty": duty, "holder": holder,
                                           "now": self.at(now)})

    async def heartbeats(self) -> list[Heartbeat]:
        return [self.rows.heartbeat(r) for r in await self.sql.all(_HEARTBEATS)]
