"""Cases, their append-only events, and the recurring jobs' next runs (the sweeps that
act on cases claim them here)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Insert,
    Select,
    Update,
    and_,
    bindparam,
    false,
    func,
    insert,
    or_,
    select,
    update,
)

from gridbot.domain import Case, CaseEvent, Priority, Status
from gridbot.store.base import CaseQuery
from gridbot.store.dialect import Dialect, const, quick
from gridbot.store.repos.base import Repository, binds, in_list, numbered
from gridbot.store.tables import case_events, cases, jobs

#: the columns of ``cases`` in :meth:`gridbot.store.rows.Rows.case_values`'s order
FIELDS = tuple(c.name for c in cases.c)
OPEN = (Status.NEW, Status.ASSIGNED, Status.CLAIMED, Status.REOPENED)
#: open and waiting to be claimed: their claim window runs
UNCLAIMED = (Status.NEW, Status.ASSIGNED, Status.REOPENED)
#: a case number that fits every database's integer (larger ones are no case)
MAX_NUMBER = 2**62


def one_of(column: ColumnElement[Any], values: Sequence[str]) -> ColumnElement[bool]:
    """``column IN ('a', 'b')`` with the values written into the SQL (see ``const``);
    with no values, false."""
    if not values:
        return false()
    return column.in_([const(v) for v in values])


# Only the number comes back: every other column holds what was bound (see new_case).
_INSERT = quick(insert(cases).values(binds(*FIELDS[1:])).returning(cases.c.number))
_CASE = quick(select(cases).where(cases.c.number == bindparam("number")).with_for_update())
#: what a case's row is known to hold in this transaction depends on ``cases`` alone
_ROW_TABLES = frozenset({"cases"})
_DUE = quick(select(cases)  # by the partial index cases_wake
             .where(cases.c.wake_at.is_not(None), cases.c.wake_at <= bindparam("now"))
             .order_by(cases.c.wake_at, cases.c.number)
             .limit(bindparam("limit"))
             .with_for_update(skip_locked=True))  # another sweep's rows are skipped
_NEXT_WAKE = quick(select(func.min(cases.c.wake_at)).where(cases.c.wake_at.is_not(None)))
_ASSIGNEES = (select(cases.c.assignee_id).distinct()
              .where(cases.c.assignee_id.is_not(None), one_of(cases.c.status, OPEN))
              .order_by(cases.c.assignee_id))
_NEXT_RUN = select(jobs.c.next_run).where(jobs.c.name == bindparam("name"))
_MOVE_JOB = (update(jobs)
             .where(jobs.c.name == bindparam("name"), jobs.c.next_run == bindparam("expected"))
             .values(next_run=bindparam("next_run")))
_EVENT_TABLES = frozenset({"case_events"})
_EVENTS = quick(select(case_events).where(case_events.c.case_number == bindparam("number"))
                .order_by(case_events.c.id))
_MOVE_REPORTS = (update(cases).where(cases.c.reporter_id == bindparam("from_person"))
                 .values(reporter_id=bindparam("to_person")))
_URGENT_REPEAT = quick(select(cases)  # by cases_created, a few minutes back
                        .where(cases.c.created_at >= bindparam("since"),
                               cases.c.priority == const(Priority.URGENT.value),
                               one_of(cases.c.status, OPEN),
                               cases.c.microgrid == bindparam("microgrid"),
                               or_(cases.c.reporter_id == bindparam("reporter_id"),
                                   and_(cases.c.origin_platform == bindparam("platform"),
                                        cases.c.origin_chat_id == bindparam("chat_id"))))
                        .order_by(cases.c.number).limit(const(1))
                        .with_for_update())


@cache
def _first_run(d: Dialect) -> Insert:
    return d.insert_ignore(jobs).values(binds("name", "next_run"))


@cache
def _query(assignee: bool, reporter: bool, microgrids: int | None,
           statuses: tuple[str, ...] | None, overdue: bool, newest_first: bool) -> Select[Any]:
    """The statement for one shape of :class:`CaseQuery` (built once per shape)."""
    query = select(cases)
    if assignee:
        query = query.where(cases.c.assignee_id == bindparam("assignee_id"))
    if reporter:
        query = query.where(cases.c.reporter_id == bindparam("reporter_id"))
    if microgrids is not None:
        query = query.where(in_list(cases.c.microgrid, "microgrid", microgrids))
    if statuses is not None:
        query = query.where(one_of(cases.c.status, statuses))
    if overdue:
        now: BindParameter[Any] = bindparam("now")
        query = query.where(or_(
            and_(one_of(cases.c.status, UNCLAIMED), cases.c.claim_by < now),
            and_(cases.c.status == const(Status.CLAIMED.value), cases.c.resolve_by < now)))
    order = cases.c.number.desc() if newest_first else cases.c.number.asc()
    return query.order_by(order).limit(bindparam("limit"))


@cache
def _update(columns: tuple[str, ...]) -> Update:
    """An UPDATE of these columns (every one but the number when the row's content is not
    known): the indexes and triggers of the others are left alone (a case row is in
    thirteen indexes, and writing every column rewrote them all)."""
    return quick(update(cases).where(cases.c.number == bindparam("number_"))
                 .values(binds(*columns)))


@cache
def _reported(microgrids: int | None, until: bool) -> ColumnElement[bool]:
    where = [cases.c.created_at >= bindparam("since")]
    if until:
        where.append(cases.c.created_at < bindparam("until"))
    if microgrids is not None:
        where.append(in_list(cases.c.microgrid, "microgrid", microgrids))
    return and_(*where)


@cache
def _histories(microgrids: int | None, until: bool) -> tuple[Select[Any], Select[Any]]:
    where = _reported(microgrids, until)
    return (select(cases).where(where).order_by(cases.c.number),
            select(case_events).join(cases, cases.c.number == case_events.c.case_number)
            .where(where).order_by(case_events.c.id))


@cache
def _open_cases(microgrids: int | None) -> Select[Any]:
    query = select(cases).where(one_of(cases.c.status, OPEN))
    if microgrids is not None:
        query = query.where(in_list(cases.c.microgrid, "microgrid", microgrids))
    return query.order_by(cases.c.number)


@cache
def _report_times(reporter: bool, chat: bool) -> Select[Any]:
    query = select(cases.c.created_at).where(cases.c.created_at >= bindparam("since"))
    if reporter:
        query = query.where(cases.c.reporter_id == bindparam("reporter_id"))
    if chat:
        query = query.where(cases.c.origin_platform == bindparam("platform"),
                            cases.c.origin_chat_id == bindparam("chat_id"))
    return quick(query.order_by(cases.c.created_at))  # by cases_created, an hour back


class CaseRepository(Repository):
    def _values(self, case: Case) -> dict[str, Any]:
        return dict(zip(FIELDS, self.rows.case_values(case), strict=True))

    def _row_known(self, row: Any) -> None:
        """Remember what the case's row holds now, so that a change to it in this
        transaction writes only the columns that differ (see update_case)."""
        values = {name: row[name] for name in FIELDS}
        self.sql.remember(("case_row", values["number"]), _ROW_TABLES, values)

    async def new_case(self, case: Case) -> Case:
        values = self._values(case)
        row = await self.sql.one(_INSERT, values)
        # The row is what was bound and its number: read back from the values, it is the
        # case a read of the row would give, without the store sending every column back.
        values["number"] = row["number"]
        created = self.rows.case(values)
        # A case made in this transaction has no events but the ones it adds: they are
        # known without reading them back (see add_event).
        self.sql.remember(("events", created.number), _EVENT_TABLES, [])
        self._row_known(values)
        return created

    async def case(self, number: int) -> Case | None:
        if not 0 < number < MAX_NUMBER:
            return None
        # Read to be changed: the row is this transaction's until it ends (PostgreSQL).
        row = await self.sql.one(_CASE, {"number": number})
        if row is None:
            return None
        self._row_known(row)
        return self.rows.case(row)

    async def update_case(self, case: Case) -> None:
        values = self._values(case)
        number = values.pop("number")
        known, before = self.sql.recall(("case_row", number))
        if not known:
            await self.sql.run(_update(FIELDS[1:]), {**values, "number_": number})
        else:
            # The row was read or written in this transaction (and nothing has written
            # to cases since, or it would be forgotten): only what differs is written.
            changed = tuple(name for name, value in values.items() if before[name] != value)
            if changed:
                await self.sql.run(_update(changed),
                                   {**{name: values[name] for name in changed},
                                    "number_": number})
        values["number"] = number
        self.sql.remember(("case_row", number), _ROW_TABLES, values)

    async def cases(self, query: CaseQuery) -> list[Case]:
        statement = _query(
            query.assignee_id is not None, query.reporter_id is not None,
            None if query.microgrids is None else len(query.microgrids),
            None if query.statuses is None else tuple(sorted(s.value for s in query.statuses)),
            query.overdue_at is not None, query.newest_first)
        params: dict[str, Any] = {"assignee_id": query.assignee_id,
                                  "reporter_id": query.reporter_id,
                                  "now": self.at(query.overdue_at), "limit": query.limit}
        params.update(numbered("microgrid", query.microgrids or ()))
        return [self.rows.case(r) for r in await self.sql.all(statement, params)]

    async def due_cases(self, now: datetime, *, limit: int) -> list[Case]:
        rows = await self.sql.all(_DUE, {"now": self.at(now), "limit": limit})
        return [self.rows.case(r) for r in rows]

    async def next_case_wake(self) -> datetime | None:
        return self.rows.read(await self.sql.value(_NEXT_WAKE))

    async def open_assignees(self) -> list[str]:
        return [r["assignee_id"] for r in await self.sql.all(_ASSIGNEES)]

    async def job_next_run(self, name: str) -> datetime | None:
        return self.rows.read(await self.sql.value(_NEXT_RUN, {"name": name}))

    async def claim_job_run(
        self, name: str, expected: datetime | None, next_run: datetime
    ) -> bool:
        if expected is None:
            changed = await self.sql.run(_first_run(self.dialect),
                                         {"name": name, "next_run": self.at(next_run)})
        else:
            # Another worker's claim makes this one wait, re-read the row and miss.
            changed = await self.sql.run(_MOVE_JOB, {
                "name": name, "expected": self.at(expected), "next_run": self.at(next_run)})
        return changed == 1

    async def add_event(self, event: CaseEvent) -> None:
        # Deferred: a case's events go in one INSERT with the transaction's other events,
        # before anything reads them and at the latest at commit.
        row = {"case_number": event.case_number, "at": self.at(event.at),
               "actor_id": event.actor_id, "kind": event.kind, "text": event.text,
               "data": json.dumps(event.data, ensure_ascii=False)}
        self.sql.defer(case_events, row)
        known, events = self.sql.recall(("events", event.case_number))
        if known:
            events.append(self.rows.event(row))

    async def events(self, number: int) -> list[CaseEvent]:
        if not 0 < number < MAX_NUMBER:
            return []
        known, events = self.sql.recall(("events", number))
        if known:
            return list(events)
        return [self.rows.event(r) for r in await self.sql.all(_EVENTS, {"number": number})]

    async def move_reports(self, from_person: str, to_person: str) -> int:
        return await self.sql.run(_MOVE_REPORTS, {"from_person": from_person,
                                                  "to_person": to_person})

    # -- statistics and reports -------------------------------------------------------
    async def case_histories(
        self, *, microgrids: Sequence[str] | None, since: datetime, until: datetime | None
    ) -> list[tuple[Case, list[CaseEvent]]]:
        found, events_query = _histories(None if microgrids is None else len(microgrids),
                                         until is not None)
        params = {"since": self.at(since), "until": self.at(until),
                  **numbered("microgrid", microgrids or ())}
        rows = await self.sql.all(found, params)
        events: dict[int, list[CaseEvent]] = {r["number"]: [] for r in rows}
        for r in await self.sql.all(events_query, params):
            events[r["case_number"]].append(self.rows.event(r))
        return [(self.rows.case(r), events[r["number"]]) for r in rows]

    async def open_cases(self, microgrids: Sequence[str] | None) -> list[Case]:
        rows = await self.sql.all(_open_cases(None if microgrids is None else len(microgrids)),
                                  numbered("microgrid", microgrids or ()))
        return [self.rows.case(r) for r in rows]

    async def report_times(
        self, since: datetime, *, reporter_id: str | None = None,
        chat: tuple[str, str] | None = None,
    ) -> list[datetime]:
        platform, chat_id = chat if chat is not None else (None, None)
        rows = await self.sql.all(
            _report_times(reporter_id is not None, chat is not None),
            {"since": self.at(since), "reporter_id": reporter_id, "platform": platform,
             "chat_id": chat_id})
        return [self.rows.instant(r["created_at"]) for r in rows]

    async def recent_urgent_case(
        self, since: datetime, *, microgrid: str, reporter_id: str, chat: tuple[str, str]
    ) -> Case | None:
        row = await self.sql.one(_URGENT_REPEAT, {
            "since": self.at(since), "microgrid": microgrid, "reporter_id": reporter_id,
            "platform": chat[0], "chat_id": chat[1]})
        return self.rows.case(row) if row else None
