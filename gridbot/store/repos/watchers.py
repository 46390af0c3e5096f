"""Residents following a case they did not report (关注): a duplicate followed, or a
case merged into another; each gets the case's news and counts as one more person
affected. Incidents (many reports, one incident) are read here too."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Delete, Select, bindparam, delete, func, select

from gridbot.domain import Case
from gridbot.store.base import Watcher
from gridbot.store.dialect import Dialect
from gridbot.store.repos.base import Repository, binds, in_list, numbered
from gridbot.store.repos.cases import MAX_NUMBER, OPEN, one_of
from gridbot.store.tables import case_watchers, cases

_WATCHERS = (select(case_watchers).where(case_watchers.c.case_number == bindparam("number"))
             .order_by(case_watchers.c.since, case_watchers.c.person_id))
_INCIDENT = (select(cases).where(cases.c.incident == bindparam("lead"))
             .order_by(cases.c.number))
_MERGED = (select(cases).where(cases.c.merged_into == bindparam("number"))
           .order_by(cases.c.number))


@cache
def _add(d: Dialect) -> Any:
    return d.insert_ignore(case_watchers).values(binds(
        "case_number", "person_id", "since", "via", "source_case"))


@cache
def _drop(via: bool) -> Delete:
    statement = delete(case_watchers).where(
        case_watchers.c.case_number == bindparam("number"),
        case_watchers.c.person_id == bindparam("person_id"))
    if via:
        statement = statement.where(case_watchers.c.via == bindparam("via"))
    return statement


@cache
def _counts(count: int) -> Select[Any]:
    return (select(case_watchers.c.case_number, case_watchers.c.via,
                   func.count().label("n"))
            .where(in_list(case_watchers.c.case_number, "number", count))
            .group_by(case_watchers.c.case_number, case_watchers.c.via))


@cache
def _recent(count: int) -> Select[Any]:
    return (select(cases)
            .where(in_list(cases.c.microgrid, "microgrid", count), one_of(cases.c.status, OPEN),
                   cases.c.category == bindparam("category"),
                   cases.c.created_at >= bindparam("since"))
            .order_by(cases.c.number))


class WatcherRepository(Repository):
    async def recent_open_cases(self, microgrids: Sequence[str], category: str, *,
                                since: datetime) -> list[Case]:
        if not microgrids:
            return []
        rows = await self.sql.all(_recent(len(microgrids)), {
            "category": category, "since": self.at(since), **numbered("microgrid", microgrids)})
        return [self.rows.case(r) for r in rows]

    async def add_watcher(self, watcher: Watcher) -> bool:
        return await self.sql.run(_add(self.dialect), {
            "case_number": watcher.case_number, "person_id": watcher.person_id,
            "since": self.at(watcher.since), "via": watcher.via,
            "source_case": watcher.source_case}) == 1

    async def drop_watcher(self, case_number: int, person_id: str, *,
                           via: str | None = None) -> int:
        return await self.sql.run(_drop(via is not None), {
            "number": case_number, "person_id": person_id, "via": via})

    async def watchers(self, case_number: int) -> list[Watcher]:
        if not 0 < case_number < MAX_NUMBER:
            return []
        return [Watcher(case_number=r["case_number"], person_id=r["person_id"],
                        since=self.rows.instant(r["since"]), via=r["via"],
                        source_case=r["source_case"])
                for r in await self.sql.all(_WATCHERS, {"number": case_number})]

    async def watcher_counts(self, numbers: Sequence[int]) -> dict[int, dict[str, int]]:
        found: dict[int, dict[str, int]] = {}
        numbers = sorted(set(numbers))
        for start in range(0, len(numbers), 500):
            chunk = numbers[start:start + 500]
            for r in await self.sql.all(_counts(len(chunk)), numbered("number", chunk)):
                found.setdefault(r["case_number"], {})[r["via"]] = r["n"]
        return found

    async def incident_cases(self, lead: int) -> list[Case]:
        return [self.rows.case(r) for r in await self.sql.all(_INCIDENT, {"lead": lead})]

    async def merged_cases(self, number: int) -> list[Case]:
        return [self.rows.case(r) for r in await self.sql.all(_MERGED, {"number": number})]
