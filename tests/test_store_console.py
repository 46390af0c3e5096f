"""The store's contract for the office console, on SQLite and PostgreSQL: login links
spent once and only in time, sessions that end, the board's filters and order, and the
bot's answers to one message of a console chat."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridbot.domain import Priority, Status
from gridbot.store import Store
from gridbot.store.base import BoardQuery, WebSession
from tests.test_store import T0, Backend, make_case, message, new_case


async def test_a_login_link_is_spent_once_and_only_before_it_expires(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.add_web_login("h1", "zhang", now=T0, expires_at=T0 + timedelta(minutes=10),
                               via="telegram")
        await tx.add_web_login("h2", "zhou", now=T0, expires_at=T0 + timedelta(minutes=10),
                               via="cli")
    async with store.transaction() as tx:
        assert await tx.use_web_login("nope", T0) is None
        assert await tx.use_web_login("h2", T0 + timedelta(minutes=10)) is None  # expired
        assert await tx.use_web_login("h1", T0 + timedelta(minutes=9)) == "zhang"
    async with store.transaction() as tx:
        assert await tx.use_web_login("h1", T0 + timedelta(minutes=9)) is None  # spent


async def test_two_uses_of_one_link_at_once_give_one_session(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.add_web_login("h", "zhang", now=T0, expires_at=T0 + timedelta(minutes=10),
                               via="cli")

    async def use() -> str | None:
        async with store.transaction() as tx:
            return await tx.use_web_login("h", T0 + timedelta(minutes=1))

    results = await asyncio.gather(use(), use())
    assert sorted(results, key=str) == ["zhang", None] or sorted(
        results, key=lambda r: r is None) == ["zhang", None]


async def test_a_session_is_seen_ended_and_ended_everywhere(store: Store) -> None:
    session = WebSession(id_hash="s1", person_id="zhang", created_at=T0,
                         expires_at=T0 + timedelta(hours=12), seen_at=T0, agent="Chromium")
    async with store.transaction() as tx:
        await tx.add_web_session(session)
        await tx.add_web_session(WebSession(**{**session.__dict__, "id_hash": "s2"}))
        await tx.saw_web_session("s1", T0 + timedelta(minutes=5))
    async with store.transaction() as tx:
        found = await tx.web_session("s1")
        assert found is not None and found.seen_at == T0 + timedelta(minutes=5)
        assert found.live(T0 + timedelta(hours=1)) and not found.live(T0 + timedelta(hours=12))
        assert await tx.end_web_session("s1", T0 + timedelta(hours=1))
        assert not await tx.end_web_session("s1", T0 + timedelta(hours=1))
        assert await tx.end_web_sessions("zhang", T0 + timedelta(hours=2)) == 1
        assert await tx.web_session("missing") is None
        ended = await tx.web_session("s2")
        assert ended is not None and not ended.live(T0 + timedelta(hours=3))


async def test_the_board_filters_its_scope_and_puts_the_nearest_deadline_first(
        store: Store) -> None:
    late = await new_case(store, claim_by=T0 + timedelta(hours=1))
    soon = await new_case(store, claim_by=T0 + timedelta(hours=3), text="Lift broken 电梯")
    claimed = await new_case(store, status=Status.CLAIMED, resolve_by=T0 + timedelta(hours=2),
                             priority=Priority.URGENT)
    done = await new_case(store, status=Status.RESOLVED, updated_at=T0 + timedelta(hours=5))
    elsewhere = await new_case(store, microgrid="M02")
    handed = await new_case(store, microgrid="M03", assignee_id="zhao")
    now = T0 + timedelta(hours=2, minutes=30)
    async with store.transaction() as tx:
        mine = await tx.board(BoardQuery(microgrids=("M01",)))
        assert [c.number for c in mine] == [late.number, claimed.number, soon.number]
        every = await tx.board(BoardQuery(microgrids=("M01",), open_only=False))
        assert [c.number for c in every][-1] == done.number
        assert elsewhere.number not in [c.number for c in every]
        overdue = await tx.board(BoardQuery(microgrids=("M01",), overdue_at=now))
        assert [c.number for c in overdue] == [late.number, claimed.number]
        urgent = await tx.board(BoardQuery(microgrids=("M01",), priorities=("urgent",)))
        assert [c.number for c in urgent] == [claimed.number]
        found = await tx.board(BoardQuery(microgrids=("M01", "M02"), text="lift"))
        assert [c.number for c in found] == [soon.number]
        by_number = await tx.board(BoardQuery(microgrids=("M01",), text=f"#{late.number}"))
        assert [c.number for c in by_number] == [late.number]
        percent = await tx.board(BoardQuery(microgrids=("M01",), text="100%"))
        assert percent == []
        held = await tx.board(BoardQuery(microgrids=("M01",), holder="zhao"))
        assert handed.number in [c.number for c in held]
        # The holder's case elsewhere takes its place in the order (its claim deadline ties
        # with the claimed case's: the later number first), across pages, and in the counts.
        assert [c.number for c in held] == [late.number, handed.number, claimed.number,
                                            soon.number]
        second = await tx.board(BoardQuery(microgrids=("M01",), holder="zhao", limit=2,
                                           offset=1))
        assert [c.number for c in second] == [handed.number, claimed.number]
        assert (await tx.board_counts(BoardQuery(microgrids=("M01",), holder="zhao")))[
            Status.ASSIGNED] == 3
        nobody = await tx.board(BoardQuery(microgrids=("M01", "M02", "M03"), assignee=""))
        assert nobody == []
        paged = await tx.board(BoardQuery(microgrids=("M01",), limit=1, offset=1))
        assert [c.number for c in paged] == [claimed.number]
        counts = await tx.board_counts(BoardQuery(microgrids=("M01",)))
        assert counts == {Status.ASSIGNED: 2, Status.CLAIMED: 1, Status.RESOLVED: 1}
        # the counts and, in the same pass, how many are past their deadline
        assert await tx.board_tally(BoardQuery(microgrids=("M01",)), now) == (counts, 2)
        assert await tx.board_tally(BoardQuery(microgrids=("M01",)), None) == (counts, 0)
        assert await tx.board(BoardQuery(microgrids=())) == []


async def test_the_answers_to_one_message_are_its_own(store: Store) -> None:
    async with store.transaction() as tx:
        for key in ("web:web:zhang:m1:0.0", "web:web:zhang:m1:1.0", "web:web:zhang:m10:0.0",
                    "web:web:zhang:m_:0.0"):
            await tx.enqueue(message(key, platform="web", chat_id="web:zhang"), T0, None)
    async with store.transaction() as tx:
        answers = await tx.answers("web", "web:zhang", "web:web:zhang:m1:")
        assert [a.dedup_key for a in answers] == ["web:web:zhang:m1:0.0", "web:web:zhang:m1:1.0"]
        assert [a.dedup_key for a in await tx.answers("web", "web:zhang", "web:web:zhang:m_:")
                ] == ["web:web:zhang:m_:0.0"]
        assert await tx.answers("web", "web:zhou", "web:web:zhang:m1:") == []


async def test_the_audit_log_reads_newest_first_filtered_and_in_pages(store: Store) -> None:
    from gridbot.store.base import AuditEntry, AuditQuery

    async with store.transaction() as tx:
        for i in range(7):
            await tx.add_audit(AuditEntry(at=T0 + timedelta(hours=i), actor_id=("zhang", "zhou",
                                                                                "wang")[i % 3],
                                          role="steward", via=("web", "telegram")[i % 2],
                                          action=("claim", "web_login")[i % 2],
                                          target=f"#{i}"))
    async with store.transaction() as tx:
        every = await tx.audit_page(AuditQuery())
        assert [e.target for e in every] == [f"#{i}" for i in range(6, -1, -1)]
        mine = await tx.audit_page(AuditQuery(actors=("zhang", "wang")))
        assert {e.actor_id for e in mine} == {"zhang", "wang"} and len(mine) == 5
        assert await tx.audit_page(AuditQuery(actors=())) == []
        one = await tx.audit_page(AuditQuery(actor_id="zhou", via="web"))
        assert [e.target for e in one] == ["#4"]
        logins = await tx.audit_page(AuditQuery(action="web_login",
                                                since=T0 + timedelta(hours=2),
                                                until=T0 + timedelta(hours=5)))
        assert [e.target for e in logins] == ["#3"]
        page = await tx.audit_page(AuditQuery(limit=3, offset=3))
        assert [e.target for e in page] == ["#3", "#2", "#1"]


# -- the counts the database keeps -------------------------------------------------------
MICROGRIDS = ("M01", "M02", "M03")
#: a case's next write: its micro-grid and state (None: a new case), or a rolled-back one
STEP = st.tuples(st.sampled_from(MICROGRIDS), st.sampled_from(list(Status)),
                 st.integers(0, 2), st.booleans())


async def _counted(store: Store, query: BoardQuery) -> tuple[dict[Status, int], int]:
    """The counts as a scan of the cases gives them: every level asked for is a filter,
    and a filter makes the store count the cases rather than read case_tally."""
    async with store.transaction() as tx:
        return await tx.board_tally(replace(query, levels=(0, 1, 2, 3)), T0)


@settings(max_examples=12, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=st.lists(st.lists(STEP, min_size=1, max_size=4), min_size=1, max_size=6))
async def test_the_kept_counts_are_the_cases_counted(
        backend: Backend, history: list[list[tuple[str, Status, int, bool]]]) -> None:
    """Whatever writes the cases go through (new cases, moves between micro-grids and
    states, transactions rolled back), case_tally holds what counting them gives. (Each
    example opens the store in its own event loop; the cases pile up from one example to
    the next, which the comparison does not mind.)"""
    store = backend.new_store()
    await store.open()
    try:
        await _write_and_compare(backend, store, history)
    finally:
        await store.close()


async def _write_and_compare(backend: Backend, store: Store,
                             history: list[list[tuple[str, Status, int, bool]]]) -> None:
    async with store.transaction() as tx:
        numbers = [c.number for c in await tx.board(BoardQuery(
            microgrids=MICROGRIDS, open_only=False, limit=1000))]
    for writes in history:
        made: list[int] = []
        try:
            async with store.transaction() as tx:
                for microgrid, status, pick, undo in writes:
                    if pick == 0 or not numbers + made:
                        case = await tx.new_case(make_case(microgrid=microgrid, status=status))
                        made.append(case.number)
                    else:
                        known = numbers + made
                        found = await tx.case(known[pick * 7 % len(known)])
                        assert found is not None
                        await tx.update_case(replace(found, microgrid=microgrid,
                                                     status=status))
                    if undo:
                        raise _RolledBack
            numbers.extend(made)
        except _RolledBack:
            pass
    counted = sorted(backend.raw(
        "SELECT microgrid, status, COUNT(*) FROM cases GROUP BY microgrid, status"))
    # the housekeeping's fold (PostgreSQL keeps a row per change until then) changes no sum
    for _fold in range(2):
        kept = sorted(backend.raw("SELECT microgrid, status, SUM(n) FROM case_tally"
                                  " GROUP BY microgrid, status HAVING SUM(n) <> 0"))
        assert [tuple(r) for r in kept] == [tuple(r) for r in counted]
        for scope in (MICROGRIDS, ("M02",), ("M01", "M03")):
            query = BoardQuery(microgrids=scope)
            counted_too = await _counted(store, query)
            async with store.transaction() as tx:
                assert await tx.board_tally(query, T0) == counted_too
                view = await tx.board_view(query, T0)
            assert (view.counts, view.late) == counted_too
        await store.checkpoint()
    # folded: one row per micro-grid and state
    keys = backend.raw("SELECT microgrid, status FROM case_tally")
    assert len(keys) == len(set(map(tuple, keys)))


class _RolledBack(Exception):
    pass


async def test_a_deleted_case_leaves_the_counts(backend: Backend, store: Store) -> None:
    await new_case(store, microgrid="M02")
    gone = await new_case(store, microgrid="M02", status=Status.CLAIMED)
    backend.raw(f"DELETE FROM cases WHERE number = {gone.number}")
    async with store.transaction() as tx:
        assert await tx.board_counts(BoardQuery(microgrids=("M02",))) == {Status.ASSIGNED: 1}


async def test_a_page_of_the_board_is_its_cases_and_counts_in_one(store: Store) -> None:
    """board_view gives what board and board_tally give apart, filtered or not, with the
    holder's cases elsewhere or not, overdue or not, on any page."""
    for i in range(12):
        await new_case(store, microgrid=("M01", "M02", "M03")[i % 3],
                       status=(Status.ASSIGNED, Status.CLAIMED, Status.NEW, Status.CLOSED)[i % 4],
                       claim_by=T0 + timedelta(hours=i - 6), resolve_by=T0 + timedelta(hours=6 - i),
                       priority=(Priority.URGENT, Priority.NORMAL)[i % 2],
                       assignee_id=("zhang", "zhao", None)[i % 3],
                       text=("电梯坏了", "楼道灯", "noise")[i % 3],
                       updated_at=T0 + timedelta(minutes=i % 5))
    for status in (Status.NEW, Status.CLAIMED):  # open, with no running deadline
        await new_case(store, microgrid="M02", status=status, claim_by=None, resolve_by=None)
    now = T0 + timedelta(minutes=30)
    for holder in (None, "zhao"):
        for extra in ({}, {"priorities": ("urgent",)}, {"text": "灯"}, {"assignee": ""},
                      {"assignee": "zhao"}, {"levels": (0,)}):
            for narrow in ({}, {"overdue_at": now}, {"statuses": frozenset({Status.CLOSED})},
                           {"open_only": False, "limit": 3, "offset": 2}):
                query = BoardQuery(microgrids=("M01", "M02"), holder=holder, **extra, **narrow)
                counting = replace(query, statuses=frozenset(), open_only=True,
                                   overdue_at=None)
                async with store.transaction() as tx:
                    view = await tx.board_view(query, now)
                    assert [c.number for c in view.cases] == [
                        c.number for c in await tx.board(query)], query
                    assert (view.counts, view.late) == await tx.board_tally(counting, now)
                    # every level is a filter: the cases sorted whole, not merged by state
                    assert [c.number for c in await tx.board(query)] == [
                        c.number for c in await tx.board(replace(
                            query, levels=query.levels or (0, 1, 2, 3)))], query
