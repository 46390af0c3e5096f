"""What the office console reads and keeps: its one-time login links, its sessions, the
board's view of the cases, and the bot's answers to what a person did on a page."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    update,
)

from gridbot.domain import OPEN_STATUSES, UNCLAIMED_STATUSES, Case, Outgoing, Status
from gridbot.store.base import BoardQuery, WebSession
from gridbot.store.dialect import const
from gridbot.store.repos.base import Repository, binds, in_list, numbered
from gridbot.store.tables import cases, outbox, web_logins, web_sessions

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
        (cases.c.status.in_([const(s.value) for s in UNCLAIMED_STATUSES]), cases.c.claim_by),
        (cases.c.status == const(Status.CLAIMED.value), cases.c.resolve_by),
        else_=None)


@cache
def _board(shape: tuple[Any, ...], count_only: bool) -> Select[Any]:
    """The board's rows (or counts) in the micro-grids; with ``holder``, instead the cases
    that person holds outside them. (The two are asked apart and added up: one query with
    an OR between them reads the whole table.)"""
    (microgrids, holder, statuses, levels, categories, priorities, assignee, overdue, text,
     open_only) = shape
    deadline = _next_deadline()
    scope = in_list(cases.c.microgrid, "microgrid", microgrids)
    where: list[ColumnElement[bool]] = [
        and_(cases.c.assignee_id == bindparam("holder"), ~scope) if holder else scope]
    if statuses:
        where.append(in_list(cases.c.status, "status", statuses))
    elif open_only:
        where.append(cases.c.status.in_([const(s.value) for s in OPEN_STATUSES]))
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
    if overdue:
        # Only open cases have a running deadline: said outright, the index finds them.
        if not statuses:
            where.append(cases.c.status.in_([const(s.value) for s in OPEN_STATUSES]))
        where.append(and_(deadline.is_not(None), deadline < bindparam("now")))
    if text:
        where.append(or_(func.lower(cases.c.text).like(bindparam("text"), escape="\\"),
                         cases.c.number == bindparam("number")))
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
        return [self.rows.case(r) for r in await self.sql.all(_board(shape, False), params)]

    async def board_counts(self, query: BoardQuery) -> dict[Status, int]:
        return (await self.board_tally(query, None))[0]

    async def board_tally(self, query: BoardQuery,
                          late_at: datetime | None) -> tuple[dict[Status, int], int]:
        counts: dict[Status, int] = {}
        late = 0
        parts = [query] if query.holder is None else [replace(query, holder=None), query]
        for part in parts:
            shape, params = _shape(part, counts=True)
            params["now"] = self.at(part.overdue_at)
            # no instant given: nothing counts as late (the earliest instant there is)
            params["late_at"] = self.at(late_at or datetime(1, 1, 2, tzinfo=UTC))
            for r in await self.sql.all(_board(shape, True), params):
                counts[Status(r["status"])] = counts.get(Status(r["status"]), 0) + r["n"]
                late += int(r["late"] or 0)
        return counts, late

    # -- the bot's answers ------------------------------------------------------------------
    async def answers(self, platform: str, chat_id: str, key_prefix: str) -> list[Outgoing]:
        escaped = key_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = await self.sql.all(_ANSWERS, {"platform": platform, "chat_id": chat_id,
                                             "key_prefix": escaped + "%"})
        return [self.rows.outgoing(r) for r in rows]
