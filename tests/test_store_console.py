"""The store's contract for the office console, on SQLite and PostgreSQL: login links
spent once and only in time, sessions that end, the board's filters and order, and the
bot's answers to one message of a console chat."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from gridbot.domain import Priority, Status
from gridbot.store import Store
from gridbot.store.base import BoardQuery, WebSession
from tests.test_store import T0, message, new_case


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
