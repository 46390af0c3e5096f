"""What the office console reads and keeps: its one-time login links, its sessions, the
board's view of the cases, and the bot's answers to what a person did on a page."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    CompoundSelect,
    Select,
    and_,
    bindparam,
    case,
    func,
    insert,
    null,
    or_,
    select,
    union_all,
    update,
)

from gridbot.domain import OPEN_STATUSES, UNCLAIMED_STATUSES, Case, Outgoing, Status
from gridbot.store.base import BoardQuery, BoardView, WebSession
from gridbot.store.dialect import const
from gridbot.store.repos.base import Repository, binds, in_list, numbered
from gridbot.store.tables import case_tally, cases, outbox, web_logins, web_sessions

_ADD_LOGIN = insert(web_logins).values(binds(
    "token_hash", "person_id", "created_at", "expires_at", "via"))
# Spent once: of two presses of one link, one changes the row and the other finds it used.
_USE_LOGIN = (update(web_logins)
              .where(web_logins.c.token_hash == bindparam("token_hash"),
                     web_logins.c.used_at.is_(None),
                     web_logins.c.expires_at > bindparam("now"))
              .values(used_at=bindparam("now"))
              .returning(web_logins.c.person_id))
_ADD_SESSION = insert(web_sessions).values(binds(
    "id_hash", "person_id", "created_at", "expires_at", "seen_at", "agent"))
_SESSION = select(web_sessions).where(web_sessions.c.id_hash == bindparam("id_hash"))
_SEEN = (update(web_sessions).where(web_sessions.c.id_hash == bindparam("id_hash"))
         .values(seen_at=bindparam("now")))
_END = (update(web_sessions)
        .where(web_sessions.c.id_hash == bindparam("id_hash"), web_sessions.c.ended_at.is_(None))
        .values(ended_at=bindparam("now")))
_END_ALL = (update(web_sessions)
            .where(web_sessions.c.person_id == bindparam("person_id"),
                   web_sessions.c.ended_at.is_(None))
            .values(ended_at=bindparam("now")))
_ANSWERS = (select(outbox)
            .where(outbox.c.platform == bindparam("platform"),
                   outbox.c.chat_id == bindparam("chat_id"),
                   outbox.c.dedup_key.like(bindparam("key_prefix"), escape="\\"))
            .order_by(outbox.c.id))


def _next_deadline() -> ColumnElement[Any]:
    """The deadline a case is running against: claiming while nobody holds it, resolving
    once claimed; none when it is settled."""
    return case(
        (cases.c.status.in_(_UNCLAIMED), cases.c.claim_by),
        (cases.c.status == const(Status.CLAIMED.value), cases.c.resolve_by),
        else_=None)


_UNCLAIMED = [const(s.value) for s in sorted(UNCLAIMED_STATUSES)]
_OPEN = [const(s.value) for s in sorted(OPEN_STATUSES)]


def _base(shape: tuple[Any, ...]) -> list[ColumnElement[bool]]:
    """The scope (or the holder's cases outside it) and the filters that narrow the
    counts as well as the cases: level, category, priority, handler, text."""
    microgrids, holder, _, levels, categories, priorities, assignee, _, text, _ = shape
    scope = in_list(cases.c.microgrid, "microgrid", microgrids)
    where: list[ColumnElement[bool]] = [
        and_(cases.c.assignee_id == bindparam("holder"), ~scope) if holder else scope]
    if levels:
        where.append(in_list(cases.c.level, "level", levels))
    if categories:
        where.append(in_list(cases.c.category, "category", categories))
    if priorities:
        where.append(in_list(cases.c.priority, "priority", priorities))
    if assignee == "none":
        where.append(cases.c.assignee_id.is_(None))
    elif assignee:
        where.append(cases.c.assignee_id == bindparam("assignee"))
    if text:
        where.append(or_(func.lower(cases.c.text).like(bindparam("text"), escape="\\"),
                         cases.c.number == bindparam("number")))
    return where


def _narrow(shape: tuple[Any, ...], status: ColumnElement[Any],
            deadline: ColumnElement[Any]) -> list[ColumnElement[bool]]:
    """What narrows only the cases listed: their states, and being overdue."""
    _, _, statuses, _, _, _, _, overdue, _, open_only = shape
    where: list[ColumnElement[bool]] = []
    if statuses:
        where.append(in_list(status, "status", statuses))
    elif open_only:
        where.append(status.in_(_OPEN))
    if overdue:
        # Only open cases have a running deadline: said outright, the index finds them.
        if not statuses:
            where.append(status.in_(_OPEN))
        where.append(and_(deadline.is_not(None), deadline < bindparam("now")))
    return where


@cache
def _board(shape: tuple[Any, ...], count_only: bool) -> Select[Any]:
    """The board's rows (or counts) in the micro-grids; with ``holder``, instead the cases
    that person holds outside them. (The two are asked apart and added up: one query with
    an OR between them reads the whole table.)"""
    deadline = _next_deadline()
    where = [*_base(shape), *_narrow(shape, cases.c.status, deadline)]
    if count_only:
        # How many of each state, and how many of them are past their running deadline
        # (one pass over the index, where two counts would take two).
        late = func.sum(case((and_(deadline.is_not(None), deadline < bindparam("late_at")),
                              const(1)), else_=const(0)))
        return select(cases.c.status, func.count().label("n"), late.label("late")).where(
            *where).group_by(cases.c.status)
    # Running deadlines first, the nearest first; then settled cases, the latest first.
    order = (deadline.is_(None), deadline, cases.c.updated_at.desc(), cases.c.number.desc())
    # The page's numbers first (from the cases_board index alone, when no filter needs
    # more), then only those rows in full.
    page = (select(cases.c.number).where(*where).order_by(*order)
            .limit(bindparam("limit")).offset(bindparam("offset")))
    return select(cases).where(cases.c.number.in_(page)).order_by(*order)


@cache
def _tally(microgrids: int) -> CompoundSelect[Any]:
    """A scope's counts per state as ``case_tally`` keeps them, and (the row without a
    state) how many of its cases are past their running deadline: a range of the
    ``cases_board`` index per unclaimed state and micro-grid, and of
    ``cases_board_claimed`` per micro-grid, counted, not read."""
    kept = (select(case_tally.c.status, func.sum(case_tally.c.n).label("n"))
            .where(in_list(case_tally.c.microgrid, "microgrid", microgrids))
            .group_by(case_tally.c.status))
    scope = in_list(cases.c.microgrid, "microgrid", microgrids)
    late_at: BindParameter[Any] = bindparam("late_at")
    unclaimed = (select(func.count()).select_from(cases)
                 .where(scope, cases.c.status.in_(_UNCLAIMED), cases.c.claim_by < late_at)
                 .scalar_subquery())
    claimed = (select(func.count()).select_from(cases)
               .where(scope, cases.c.status == const(Status.CLAIMED.value),
                      cases.c.resolve_by < late_at)
               .scalar_subquery())
    return union_all(kept, select(null().label("status"), (unclaimed + claimed).label("n")))


@cache
def _view(shape: tuple[Any, ...]) -> CompoundSelect[Any]:
    """A filtered page in one pass over the cases: the scope's cases the filters keep
    (with the holder's elsewhere), set aside once; their counts per state (``number`` is
    NULL) and the numbers of the page's cases (``n`` is NULL) read from what was set
    aside."""
    deadline = _next_deadline()
    columns = (cases.c.number, cases.c.status, deadline.label("deadline"), cases.c.updated_at)
    found: Select[Any] | CompoundSelect[Any] = select(*columns).where(*_base(shape))
    if shape[1]:  # and the holder's cases outside the scope
        in_scope = (*shape[:1], False, *shape[2:])
        found = union_all(select(*columns).where(*_base(in_scope)), found)
    hit = found.cte("hit").prefix_with("MATERIALIZED")
    late = func.sum(case((hit.c.deadline < bindparam("late_at"), const(1)), else_=const(0)))
    counts = select(hit.c.status, func.count().label("n"), late.label("late"),
                    null().label("number")).group_by(hit.c.status)
    page = (select(hit.c.status, hit.c.number)
            .where(*_narrow(shape, hit.c.status, hit.c.deadline))
            .order_by(hit.c.deadline.is_(None), hit.c.deadline, hit.c.updated_at.desc(),
                      hit.c.number.desc())
            .limit(bindparam("limit")).offset(bindparam("offset"))
            .subquery())
    return union_all(counts, select(page.c.status, null(), null(), page.c.number))


@cache
def _by_deadline(microgrids: int, states: tuple[str, ...], overdue: bool) -> Select[Any]:
    """The board's open cases without filters, nearest deadline first, by merging short
    ranges: for each micro-grid and state, the first ``upto`` cases in the order of its
    running deadline (``cases_board`` by claim deadline, ``cases_board_claimed`` by
    resolve deadline), and those without one; the page is the best of them. Sorting every
    open case of the scope by the deadline's CASE read them all."""
    parts: list[Select[Any]] = []
    upto: BindParameter[Any] = bindparam("upto")
    for i in range(microgrids):
        for state in states:
            due = cases.c.resolve_by if state == Status.CLAIMED.value else cases.c.claim_by
            where = [cases.c.microgrid == bindparam(f"microgrid_{i}"),
                     cases.c.status == const(state)]
            ranked = (select(cases.c.number, due.label("deadline"), cases.c.updated_at)
                      .where(*where, due.is_not(None),
                             *([due < bindparam("now")] if overdue else []))
                      .order_by(due, cases.c.updated_at.desc(), cases.c.number.desc())
                      .limit(upto).subquery())
            parts.append(select(*ranked.c))
            if not overdue:  # no deadline: never overdue, listed after those with one
                undated = (select(cases.c.number, due.label("deadline"), cases.c.updated_at)
                           .where(*where, due.is_(None))
                           .order_by(cases.c.updated_at.desc(), cases.c.number.desc())
                           .limit(upto).subquery())
                parts.append(select(*undated.c))
    best = union_all(*parts).subquery()
    page = (select(best.c.number)
            .order_by(best.c.deadline.is_(None), best.c.deadline, best.c.updated_at.desc(),
                      best.c.number.desc())
            .limit(bindparam("limit")).offset(bindparam("offset")))
    deadline = _next_deadline()
    return select(cases).where(cases.c.number.in_(page)).order_by(
        deadline.is_(None), deadline, cases.c.updated_at.desc(), cases.c.number.desc())


@cache
def _numbered(count: int) -> Select[Any]:
    return select(cases).where(in_list(cases.c.number, "number", count))


def _filtered(query: BoardQuery) -> bool:
    """Whether the counts need more than the scope: ``case_tally`` keeps those alone."""
    return bool(query.levels or query.categories or query.priorities
                or query.assignee is not None or query.text)


def _board_key(case: Case) -> tuple[Any, ...]:
    """The board's order (as :func:`_board` sorts), for merging two lists of cases."""
    deadline = (case.claim_by if case.status in UNCLAIMED_STATUSES
                else case.resolve_by if case.status is Status.CLAIMED else None)
    return (deadline is None, deadline.timestamp() if deadline else 0.0,
            -case.updated_at.timestamp() if case.updated_at else 0.0, -case.number)


def _shape(query: BoardQuery, *, counts: bool) -> tuple[tuple[Any, ...], dict[str, Any]]:
    statuses = () if counts else tuple(sorted(s.value for s in query.statuses))
    shape = (len(query.microgrids), query.holder is not None, len(statuses),
             len(query.levels), len(query.categories), len(query.priorities),
             "none" if query.assignee == "" else bool(query.assignee) and "one",
             query.overdue_at is not None, bool(query.text),
             query.open_only and not counts)
    params: dict[str, Any] = {"limit": query.limit, "offset": query.offset,
                              "assignee": query.assignee, "holder": query.holder}
    params.update(numbered("microgrid", query.microgrids))
    params.update(numbered("status", statuses))
    params.update(numbered("level", query.levels))
    params.update(numbered("category", query.categories))
    params.update(numbered("priority", query.priorities))
    if query.text:
        escaped = query.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params["text"] = f"%{escaped.lower()}%"
        bare = query.text.strip().lstrip("#")
        params["number"] = int(bare) if bare.isascii() and bare.isdigit() and len(bare) < 15 \
            else -1
    return shape, params


class ConsoleRepository(Repository):
    # -- logging in -----------------------------------------------------------------------
    async def add_web_login(self, token_hash: str, person_id: str, *, now: datetime,
                            expires_at: datetime, via: str) -> None:
        await self.sql.run(_ADD_LOGIN, {"token_hash": token_hash, "person_id": person_id,
                                        "created_at": self.at(now),
                                        "expires_at": self.at(expires_at), "via": via})

    async def use_web_login(self, token_hash: str, now: datetime) -> str | None:
        person_id = await self.sql.value(_USE_LOGIN, {"token_hash": token_hash,
                                                      "now": self.at(now)})
        return str(person_id) if person_id is not None else None

    async def add_web_session(self, session: WebSession) -> None:
        await self.sql.run(_ADD_SESSION, {
            "id_hash": session.id_hash, "person_id": session.person_id,
            "created_at": self.at(session.created_at), "expires_at": self.at(session.expires_at),
            "seen_at": self.at(session.seen_at), "agent": session.agent})

    async def web_session(self, id_hash: str) -> WebSession | None:
        row = await self.sql.one(_SESSION, {"id_hash": id_hash})
        if row is None:
            return None
        at = self.rows.read
        return WebSession(id_hash=row["id_hash"], person_id=row["person_id"],
                          created_at=self.rows.instant(row["created_at"]),
                          expires_at=self.rows.instant(row["expires_at"]),
                          seen_at=self.rows.instant(row["seen_at"]),
                          ended_at=at(row["ended_at"]), agent=row["agent"])

    async def saw_web_session(self, id_hash: str, now: datetime) -> None:
        await self.sql.run(_SEEN, {"id_hash": id_hash, "now": self.at(now)})

    async def end_web_session(self, id_hash: str, now: datetime) -> bool:
        return await self.sql.run(_END, {"id_hash": id_hash, "now": self.at(now)}) == 1

    async def end_web_sessions(self, person_id: str, now: datetime) -> int:
        return await self.sql.run(_END_ALL, {"person_id": person_id, "now": self.at(now)})

    # -- the board --------------------------------------------------------------------------
    async def board(self, query: BoardQuery) -> list[Case]:
        if query.holder is None:
            return await self._board(query)
        # The scope's cases and the person's own elsewhere, each up to the end of the
        # page, merged in the board's order.
        upto = query.offset + query.limit
        found = [*await self._board(replace(query, holder=None, limit=upto, offset=0)),
                 *await self._board(replace(query, limit=upto, offset=0))]
        found.sort(key=_board_key)
        return found[query.offset:query.offset + query.limit]

    async def _board(self, query: BoardQuery) -> list[Case]:
        shape, params = _shape(query, counts=False)
        params["now"] = self.at(query.overdue_at)
        states = tuple(sorted(s.value for s in query.statuses or OPEN_STATUSES))
        if (query.holder is None and query.microgrids and not _filtered(query)
                and (query.open_only or query.statuses)
                and set(states) <= {s.value for s in OPEN_STATUSES}):
            statement = _by_deadline(len(query.microgrids), states,
                                     query.overdue_at is not None)
            params["upto"] = query.offset + query.limit
        else:
            statement = _board(shape, False)
        return [self.rows.case(r) for r in await self.sql.all(statement, params)]

    async def board_counts(self, query: BoardQuery) -> dict[Status, int]:
        return (await self.board_tally(query, None))[0]

    async def board_tally(self, query: BoardQuery,
                          late_at: datetime | None) -> tuple[dict[Status, int], int]:
        counts: dict[Status, int] = {}
        late = 0
        # no instant given: nothing counts as late (the earliest instant there is)
        late_at = late_at or datetime(1, 1, 2, tzinfo=UTC)
        if _filtered(query):
            parts = [query] if query.holder is None else [replace(query, holder=None), query]
        else:
            # The scope's counts as case_tally keeps them, its late ones by index ranges;
            # only the holder's cases elsewhere are counted.
            params = {"late_at": self.at(late_at), **numbered("microgrid", query.microgrids)}
            for r in await self.sql.all(_tally(len(query.microgrids)), params):
                if r["status"] is None:
                    late += int(r["n"] or 0)
                elif r["n"]:
                    counts[Status(r["status"])] = int(r["n"])
            parts = [] if query.holder is None else [query]
        for part in parts:
            shape, params = _shape(part, counts=True)
            params["now"] = self.at(part.overdue_at)
            params["late_at"] = self.at(late_at)
            for r in await self.sql.all(_board(shape, True), params):
                counts[Status(r["status"])] = counts.get(Status(r["status"]), 0) + r["n"]
                late += int(r["late"] or 0)
        return counts, late

    async def board_view(self, query: BoardQuery, late_at: datetime | None) -> BoardView:
        counting = replace(query, statuses=frozenset(), open_only=True, overdue_at=None)
        if not _filtered(query):
            # The counts cost a few rows; the page is read by the cases_board index.
            counts, late = await self.board_tally(counting, late_at)
            return BoardView(cases=await self.board(query), counts=counts, late=late)
        # One pass over the cases the filters keep, for both the counts and the page.
        shape, params = _shape(query, counts=False)
        params["now"] = self.at(query.overdue_at)
        params["late_at"] = self.at(late_at or datetime(1, 1, 2, tzinfo=UTC))
        counts = {}
        late = 0
        numbers: list[int] = []
        for r in await self.sql.all(_view(shape), params):
            if r["number"] is None:
                counts[Status(r["status"])] = counts.get(Status(r["status"]), 0) + r["n"]
                late += int(r["late"] or 0)
            else:
                numbers.append(r["number"])
        found = [self.rows.case(r) for r in await self.sql.all(
            _numbered(len(numbers)), numbered("number", numbers))] if numbers else []
        found.sort(key=_board_key)
        return BoardView(cases=found, counts=counts, late=late)

    # -- the bot's answers ------------------------------------------------------------------
    async def answers(self, platform: str, chat_id: str, key_prefix: str) -> list[Outgoing]:
        escaped = key_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = await self.sql.all(_ANSWERS, {"platform": platform, "chat_id": chat_id,
                                             "key_prefix": escaped + "%"})
        return [self.rows.outgoing(r) for r in rows]
