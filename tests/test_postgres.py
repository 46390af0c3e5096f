"""What the PostgreSQL store adds to the contract: the same schema as SQLite, row claims
that let several workers share the work, conflicts reported as such, and duties held by
one process at a time and taken over when it goes.

The contract itself (tests/test_store.py, tests/test_store_notices.py) runs on both
backends; these tests are about several connections, transactions or processes at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridbot.config import load_config
from gridbot.domain import Person, Role, Status
from gridbot.errors import StoreConflict
from gridbot.singleton_duties import Duties, Duty
from gridbot.store import CaseQuery, SQLiteStore, migrating, store_for_url
from gridbot.store import sqlite as sqlite_store
from gridbot.store.base import BoardQuery
from gridbot.store.postgresql import PostgresStore, migrations, safe_url, split_url
from tests import postgres
from tests.test_store import EXAMPLE, LEASE, T0, make_case, message

pytestmark = pytest.mark.postgresql


@pytest.fixture
def schema() -> Iterator[str]:
    with postgres.fresh_schema() as name:
        yield name


@pytest.fixture
def url(schema: str) -> str:
    return postgres.url_for(schema)


@pytest.fixture
async def store(url: str) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(url, pool_size=4)
    await store.open()
    async with store.transaction() as tx:
        await tx.sync_org(load_config(EXAMPLE))
    yield store
    await store.close()


async def other(url: str) -> PostgresStore:
    """A second process's store on the same database and schema."""
    second = PostgresStore(url, pool_size=2)
    await second.open()
    return second


# -- the schema ------------------------------------------------------------------------------


def test_one_postgresql_migration_per_sqlite_migration() -> None:
    assert [v for v, _ in migrations()] == [v for v, _ in sqlite_store.migrations()]


async def test_same_tables_columns_and_indexes_as_sqlite(store: PostgresStore, schema: str,
                                                         tmp_path: Path) -> None:
    lite = SQLiteStore(str(tmp_path / "s.db"))
    await lite.open()
    await lite.close()
    db = sqlite3.connect(tmp_path / "s.db")
    try:
        tables = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            " AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        columns = {t: {r[1] for r in db.execute(f"PRAGMA table_info({t})")} for t in tables}
        indexes = {r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
        triggers = {r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    finally:
        db.close()
    pg_columns: dict[str, set[str]] = {}
    for table, column in postgres.sql(
            schema, "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = $1", schema):
        pg_columns.setdefault(table, set()).add(column)
    assert sorted(pg_columns) == tables
    extra = {"people": {"seq"}}  # SQLite's rowid, made explicit
    for table in tables:
        assert pg_columns[table] - extra.get(table, set()) == columns[table], table
    pg_indexes = {r[0] for r in postgres.sql(
        schema, "SELECT indexname FROM pg_indexes WHERE schemaname = $1", schema)}
    assert indexes <= pg_indexes
    pg_triggers = {r[0] for r in postgres.sql(
        schema, "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1"
        " AND NOT t.tgisinternal", schema)}
    assert triggers <= pg_triggers  # the append-only guards, at least


async def test_partial_indexes_serve_the_due_queries(store: PostgresStore, schema: str) -> None:
    def plan(query: str) -> str:
        return "\n".join(r[0] for r in postgres.sql(schema, "EXPLAIN " + query,
                                                     before=("SET enable_seqscan = off",)))

    assert "cases_wake" in plan(
        "SELECT number FROM cases WHERE wake_at IS NOT NULL AND wake_at <= now()"
        " ORDER BY wake_at LIMIT 1 FOR UPDATE SKIP LOCKED")
    assert "outbox_due" in plan(
        "SELECT id FROM outbox WHERE status IN ('queued', 'sending') AND not_before <= now()"
        " ORDER BY not_before LIMIT 10 FOR UPDATE SKIP LOCKED")
    assert "notices_due" in plan(
        "SELECT id FROM notices WHERE status = 'scheduled' AND send_at <= now()"
        " ORDER BY send_at LIMIT 1 FOR UPDATE SKIP LOCKED")
    # revision 0022: only cases that have one are in these; a lookup by value uses them
    assert "cases_incident" in plan("SELECT number FROM cases WHERE incident = 7")
    assert "cases_merged_into" in plan("SELECT number FROM cases WHERE merged_into = 7")


async def test_workers_opening_together_migrate_once(url: str, schema: str) -> None:
    stores = [PostgresStore(url, pool_size=1) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        assert postgres.sql(schema, "SELECT version FROM schema_migrations ORDER BY 1") == [
            (v,) for v in migrating.versions()]
    finally:
        await asyncio.gather(*(s.close() for s in stores))


def test_url_schema_and_password() -> None:
    dsn, name = split_url("postgresql://u:pw@h:5433/db?schema=city_1&sslmode=disable")
    assert (dsn, name) == ("postgresql://u:pw@h:5433/db?sslmode=disable", "city_1")
    assert split_url("postgres://h/db") == ("postgres://h/db", None)
    with pytest.raises(ValueError, match="schema"):
        split_url("postgresql://h/db?schema=x;drop")
    assert safe_url("postgresql://u:pw@h:5433/db") == "postgresql://u:***@h:5433/db"
    assert isinstance(store_for_url("postgresql://h/db"), PostgresStore)


# -- row claims --------------------------------------------------------------------------------


async def test_two_sweeps_take_different_due_cases_without_waiting(store: PostgresStore) -> None:
    async with store.transaction() as tx:
        first = await tx.new_case(make_case(wake_at=T0))
        second = await tx.new_case(make_case(wake_at=T0 + timedelta(minutes=1)))
    now = T0 + timedelta(hours=1)
    held = asyncio.Event()
    release = asyncio.Event()

    async def sweep_one() -> list[int]:
        async with store.transaction() as tx:
            found = await tx.due_cases(now, limit=1)
            held.set()
            await release.wait()
            return [c.number for c in found]

    one = asyncio.create_task(sweep_one())
    await held.wait()
    async with store.transaction() as tx:  # while the first sweep holds its case
        got = [c.number for c in await asyncio.wait_for(tx.due_cases(now, limit=5), 5)]
    release.set()
    assert await one == [first.number]
    assert got == [second.number]


async def test_a_case_read_to_be_changed_waits_for_the_other_change(
        store: PostgresStore) -> None:
    """A steward's claim and the sweep's escalation of one case happen one after the
    other, each on the other's result, never both on a stale copy."""
    async with store.transaction() as tx:
        case = await tx.new_case(make_case())
    held, release = asyncio.Event(), asyncio.Event()

    async def escalate() -> None:
        async with store.transaction() as tx:
            current = await tx.case(case.number)
            held.set()
            await release.wait()
            await tx.update_case(dataclasses.replace(current, level=1, assignee_id="wang"))

    async def claim() -> int:
        async with store.transaction() as tx:
            current = await tx.case(case.number)  # waits for the escalation to commit
            await tx.update_case(dataclasses.replace(current, status=Status.CLAIMED))
            return current.level

    task = asyncio.create_task(escalate())
    await held.wait()
    claiming = asyncio.create_task(claim())
    await asyncio.sleep(0.2)
    assert not claiming.done()
    release.set()
    await task
    assert await claiming == 1
    async with store.transaction() as tx:
        after = await tx.case(case.number)
    assert (after.level, after.assignee_id, after.status) == (1, "wang", Status.CLAIMED)


async def test_two_senders_lease_disjoint_messages(store: PostgresStore) -> None:
    async with store.transaction() as tx:
        for key in "abcdef":
            await tx.enqueue(message(key), T0)
    held, release = asyncio.Event(), asyncio.Event()

    async def first() -> list[str]:
        async with store.transaction() as tx:
            items = await tx.claim_outbox(T0, limit=3, lease=LEASE, platforms=["console"])
            held.set()
            await release.wait()
            return [i.message.dedup_key for i in items]

    task = asyncio.create_task(first())
    await held.wait()
    async with store.transaction() as tx:
        second = [i.message.dedup_key for i in await asyncio.wait_for(
            tx.claim_outbox(T0, limit=10, lease=LEASE, platforms=["console"]), 5)]
    release.set()
    assert await task == ["a", "b", "c"]
    assert second == ["d", "e", "f"]


async def test_many_concurrent_senders_claim_each_message_once(store: PostgresStore,
                                                               url: str) -> None:
    async with store.transaction() as tx:
        for i in range(200):
            await tx.enqueue(message(f"m{i:03}"), T0)
    second = await other(url)
    try:
        # every sender claims once before any claims again (4 x 7 < 200), so each gets
        # a share however the event loop orders them; the rest race freely
        first_round = asyncio.Barrier(4)

        async def drain(s: PostgresStore) -> list[str]:
            got: list[str] = []
            while True:
                async with s.transaction() as tx:
                    items = await tx.claim_outbox(T0, limit=7, lease=LEASE,
                                                  platforms=["console"])
                if not got:
                    await first_round.wait()
                if not items:
                    return got
                got += [i.message.dedup_key for i in items]
        results = await asyncio.gather(*(drain(s) for s in (store, store, second, second)))
    finally:
        await second.close()
    everything = [key for got in results for key in got]
    assert sorted(everything) == [f"m{i:03}" for i in range(200)]
    assert all(results)  # each sender got a share


async def test_a_scheduled_notice_is_started_by_one_worker(store: PostgresStore) -> None:
    from tests.test_store_notices import make_notice

    async with store.transaction() as tx:
        notice = await tx.add_notice(make_notice())
    held, release = asyncio.Event(), asyncio.Event()

    async def first() -> list[int]:
        async with store.transaction() as tx:
            due = await tx.due_notices(T0, limit=5)
            held.set()
            await release.wait()
            return [n.id for n in due]

    task = asyncio.create_task(first())
    await held.wait()
    async with store.transaction() as tx:
        assert await asyncio.wait_for(tx.due_notices(T0, limit=5), 5) == []
    release.set()
    assert await task == [notice.id]


async def test_the_same_update_on_two_workers_is_handled_once(store: PostgresStore,
                                                              url: str) -> None:
    second = await other(url)
    try:
        async def mark(s: PostgresStore) -> bool:
            async with s.transaction() as tx:
                handled = await tx.mark_handled("telegram", "-100", "7", T0)
                await asyncio.sleep(0.05)
                return handled
        results = await asyncio.gather(mark(store), mark(second))
    finally:
        await second.close()
    assert sorted(results) == [False, True]


# -- conflicts ----------------------------------------------------------------------------------


async def test_a_newcomer_added_twice_at_once_is_a_conflict(store: PostgresStore) -> None:
    person = Person(id="~telegram:9", name="新邻居", role=Role.RESIDENT, unit="M01", auto=True)
    held = asyncio.Event()

    async def add(wait: bool) -> None:
        async with store.transaction() as tx:
            await tx.add_person(person)
            if wait:
                held.set()
                await asyncio.sleep(0.2)

    first = asyncio.create_task(add(True))
    await held.wait()
    with pytest.raises(StoreConflict):
        await add(False)
    await first
    async with store.transaction() as tx:
        assert await tx.person(person.id) == person


async def test_new_cases_of_two_micro_grids_in_opposite_orders_wait_for_nobody(
        store: PostgresStore, url: str) -> None:
    """Two transactions (two workers' getUpdates batches, say) each logging a case in
    M01 and one in M02, in opposite orders: the case tally's rows (revision 0024) lock
    nothing, so neither waits for the other, let alone deadlocks (0021's one row per
    micro-grid and state did: the server broke the tie with a conflict)."""
    second = await other(url)
    both = asyncio.Barrier(2)
    try:
        async def batch(on: PostgresStore, first: str, then: str) -> None:
            async with on.transaction() as tx:
                await tx.new_case(make_case(microgrid=first))
                await both.wait()
                await tx.new_case(make_case(microgrid=then))
                await both.wait()  # both hold their first case's tally row, if it locks

        await asyncio.wait_for(asyncio.gather(batch(store, "M01", "M02"),
                                              batch(second, "M02", "M01")), 5)
    finally:
        await second.close()
    async with store.transaction() as tx:
        tally = await tx.board_tally(BoardQuery(microgrids=("M01", "M02")), T0)
    assert tally[0][Status.ASSIGNED] == 4


async def test_a_deadlock_is_a_conflict_and_the_store_goes_on(store: PostgresStore) -> None:
    async with store.transaction() as tx:
        a = await tx.new_case(make_case())
        b = await tx.new_case(make_case())
    both = asyncio.Barrier(2)

    async def lock(first: int, second: int) -> None:
        async with store.transaction() as tx:
            await tx.case(first)
            await both.wait()
            await tx.case(second)

    results = await asyncio.gather(lock(a.number, b.number), lock(b.number, a.number),
                                   return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["NoneType", "StoreConflict"]
    async with store.transaction() as tx:
        assert (await tx.case(a.number)).number == a.number


# -- duties and wake-ups ----------------------------------------------------------------------


async def test_a_duty_is_one_process_s_until_it_goes(url: str, schema: str) -> None:
    one, two = await other(url), await other(url)
    try:
        assert await one.try_singleton("poll:telegram")
        assert await one.try_singleton("poll:telegram")  # still its own
        assert not await two.try_singleton("poll:telegram")
        assert await two.try_singleton("digest")  # another duty is free
        await one.release_singleton("poll:telegram")
        assert await two.try_singleton("poll:telegram")
        assert not await one.try_singleton("poll:telegram")
        # the holder's connection dies (the process was killed): the server frees it
        postgres.sql(schema, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE application_name = 'gridbot duties' AND pid <> pg_backend_pid()"
                     " AND pid = $1", two._singletons.get_server_pid())
        assert not await two.singleton_alive()
        assert await one.try_singleton("poll:telegram")
        assert await one.singleton_alive()
    finally:
        await one.close()
        await two.close()


async def test_duties_are_taken_over_when_their_process_goes(url: str) -> None:
    one, two = await other(url), await other(url)
    doing: dict[str, list[str]] = {"one": [], "two": []}

    def duties(store: PostgresStore, who: str) -> Duties:
        d = Duties(store, every=timedelta(milliseconds=50))
        for name in ("send:telegram", "digest"):
            async def take(name: str = name) -> None:
                doing[who].append(name)

            async def drop(name: str = name) -> None:
                doing[who].remove(name)
            d.add(Duty(name=name, take=take, drop=drop))
        return d

    first, second = duties(one, "one"), duties(two, "two")
    try:
        await first.start()
        await second.start()
        assert doing == {"one": ["send:telegram", "digest"], "two": []}
        await first.stop()
        await one.close()  # the process is gone
        for _ in range(100):
            if len(doing["two"]) == 2:
                break
            await asyncio.sleep(0.05)
        assert sorted(doing["two"]) == ["digest", "send:telegram"]
        assert second.names() == ["digest", "send:telegram"]
    finally:
        await second.stop()
        await two.close()
        await one.close()


async def test_the_sender_hears_of_messages_other_processes_queue(store: PostgresStore,
                                                                  url: str) -> None:
    sender = await other(url)
    woken = asyncio.Event()
    sender.on_outbox(woken.set)
    try:
        assert await sender.try_singleton("send:console")  # listens from here on
        async with store.transaction() as tx:
            await tx.enqueue(message("k1"), T0)
            await tx.enqueue(message("k2"), T0)
            await asyncio.sleep(0.1)
            assert not woken.is_set()  # not before the commit
        await asyncio.wait_for(woken.wait(), 5)
    finally:
        await sender.close()


async def test_a_connection_given_back_to_the_pool_keeps_no_session_state(
        store: PostgresStore, url: str) -> None:
    """The pool gives connections back without resetting them (no round trip after each
    transaction): nothing the store does may leave a setting, an advisory lock or a
    LISTEN on a pooled connection for the next transaction to inherit."""
    await store.try_singleton("send:console")  # a session lock and LISTEN, elsewhere
    store.on_outbox(lambda: None)
    async with store.transaction() as tx:
        await tx.forget_person("liu_nainai", name="刘奶奶", text="(已删除)")  # SET LOCAL
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.enqueue(message("k1"), T0)
            raise RuntimeError("rolled back")
    pool = store._require()
    held = [await pool.acquire() for _ in range(store.pool_size)]  # every pooled one
    try:
        for conn in held:
            assert await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()"
                " AND locktype = 'advisory'") == 0
            assert await conn.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0
            assert await conn.fetchval(
                "SELECT current_setting('gridbot.forgetting', true)") in (None, "")
            assert not conn.is_in_transaction()
    finally:
        for conn in held:
            await pool.release(conn)


async def test_rows_deferred_for_several_tables_go_in_one_statement(
        store: PostgresStore) -> None:
    """A report's events and outgoing messages: one round trip at the commit, not one per
    table; chunks of one table stay apart, so the rows keep the order they came in."""
    from gridbot.domain import CaseEvent

    sent: list[str] = []
    async with store.transaction() as tx:
        case = await tx.new_case(make_case(text="x"))
        tx.sql.conn.add_query_logger(lambda record: sent.append(record.query))  # type: ignore[attr-defined]
        for i in range(70):  # chunks of 64, 4 and 2
            await tx.add_event(CaseEvent(case_number=case.number, at=T0, actor_id="zhang",
                                         kind="note", text=f"n{i}"))
        await tx.enqueue_all([(message(key, case_number=case.number), None)
                              for key in ("k1", "k2", "k3", "k4")], T0)
    inserts = [q for q in sent if "INSERT INTO" in q]
    assert len(inserts) == 3  # events' three chunks; the outbox's rows ride on one
    assert sum("INSERT INTO outbox" in q for q in inserts) == 1
    assert all(q.count("INSERT INTO case_events") == 1 for q in inserts)
    async with store.transaction() as tx:
        events = await tx.events(case.number)
        queued = await tx.claim_outbox(T0, lease=LEASE, limit=10, platforms=["console"])
    assert [e.text for e in events if e.kind == "note"] == [f"n{i}" for i in range(70)]
    assert sorted(m.message.dedup_key for m in queued) == ["k1", "k2", "k3", "k4"]


async def test_a_transaction_begins_at_its_first_write_or_lock(store: PostgresStore) -> None:
    """Plain reads before it go without BEGIN (READ COMMITTED: each statement takes its
    own snapshot anyway); a transaction that only reads sends neither BEGIN nor COMMIT;
    the savepoints made before the first write go with BEGIN in one round trip."""
    async with store.transaction() as tx:
        case = await tx.new_case(make_case(text="x"))

    def log(tx: Any) -> list[str]:
        sent: list[str] = []
        tx.sql.conn.add_query_logger(lambda record: sent.append(record.query))
        return sent

    async with store.transaction() as tx:
        reads = log(tx)
        assert await tx.events(case.number) == []
        assert await tx.next_outbox_due() is None
        assert not tx.sql.conn.is_in_transaction()  # type: ignore[attr-defined]
    assert len(reads) == 2
    assert not any(q.split()[0].upper() in ("BEGIN", "COMMIT") for q in reads)

    async with store.transaction() as tx:
        locked = log(tx)
        await tx.case(case.number)  # FOR UPDATE: held to the commit
        assert tx.sql.conn.is_in_transaction()  # type: ignore[attr-defined]
    assert [q.split(";")[0] for q in (locked[0], locked[-1])] == ["BEGIN", "COMMIT"]

    made: list[int] = []
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            written = log(tx)
            await tx.savepoint("one")
            await tx.events(case.number)
            made.append((await tx.new_case(make_case(text="y"))).number)
            raise RuntimeError("rolled back")
    assert written[1] == "BEGIN; SAVEPOINT one"
    assert written[-1] == "ROLLBACK"
    async with store.transaction() as tx:
        assert await tx.case(made[0]) is None


async def test_a_transaction_that_is_not_atomic_commits_each_statement_alone(
        store: PostgresStore) -> None:
    """The outbox's marks and claims: no BEGIN, no COMMIT; each write is seen by others at
    once; a savepoint, which only an atomic transaction has, is refused."""
    async with store.transaction() as tx:
        await tx.enqueue_all([(message(key), None) for key in ("k1", "k2")], T0)
    sent: list[str] = []
    async with store.transaction(atomic=False) as tx:
        tx.sql.conn.add_query_logger(lambda record: sent.append(record.query))  # type: ignore[attr-defined]
        first = await tx.claim_outbox(T0, lease=LEASE, limit=1, platforms=["console"])
        assert not tx.sql.conn.is_in_transaction()  # type: ignore[attr-defined]
        async with store.transaction() as other:  # committed already
            assert await other.outbox_counts() == {"queued": 1, "sending": 1}
        assert await tx.mark_all_sent([(first[0], "p1")], T0) == [first[0].id]
        with pytest.raises(TypeError):
            await tx.savepoint("one")
    assert len(sent) == 2  # the claim and the mark, nothing around them
    assert not any(q.split()[0].upper() in ("BEGIN", "COMMIT") for q in sent)
    async with store.transaction() as tx:
        assert await tx.outbox_counts() == {"queued": 1, "sent": 1}


async def test_the_first_write_goes_with_begin_and_the_last_rows_with_commit(
        store: PostgresStore) -> None:
    """A report's transaction in five round trips, not seven: BEGIN rides with the
    inbox's mark, COMMIT with the deferred rows, their values written in as literals;
    what users type (quotes, backslashes, emoji, HTML) arrives as typed."""
    from gridbot.domain import CaseEvent

    typed = "它's 3幢\\n 'x'); DROP TABLE cases; -- <b>&amp;</b> 🙂 $1 $$ \\'"
    sent: list[str] = []
    async with store.transaction() as tx:
        tx.sql.conn.add_query_logger(lambda record: sent.append(record.query))  # type: ignore[attr-defined]
        assert await tx.mark_handled("telegram", typed, "m'1", T0)
        case = await tx.new_case(make_case(text=typed))
        await tx.add_event(CaseEvent(case_number=case.number, at=T0, actor_id=typed,
                                     kind="note", text=typed))
        await tx.enqueue_all([(message("k'1", case_number=case.number), None)], T0)
    assert len(sent) == 3
    assert sent[0].startswith("BEGIN; INSERT INTO inbox")
    assert sent[1].startswith("INSERT INTO cases")  # its number comes back: a trip alone
    assert sent[2].startswith("WITH w0 AS (INSERT INTO") and sent[2].endswith("; COMMIT")
    async with store.transaction() as tx:
        assert not await tx.mark_handled("telegram", typed, "m'1", T0)  # a duplicate
        notes = [e for e in await tx.events(case.number) if e.kind == "note"]
        queued = await tx.claim_outbox(T0, lease=LEASE, limit=10, platforms=["console"])
    assert [(e.actor_id, e.text) for e in notes] == [(typed, typed)]
    assert [m.message.dedup_key for m in queued] == ["k'1"]
    async with store.transaction() as tx:
        assert (await tx.case(case.number)).text == typed  # type: ignore[union-attr]


async def test_no_literals_where_the_connection_reads_backslashes_otherwise(
        store: PostgresStore) -> None:
    """standard_conforming_strings off (an old server's default, or a SET): a backslash
    in a literal would escape what follows, so values go as parameters again."""
    typed = "C:\\new\\' OR '1'='1"
    sent: list[str] = []

    def logged(record: Any) -> None:
        sent.append(record.query)

    async with store.transaction() as tx:
        conn = tx.sql.conn  # type: ignore[attr-defined]
        await conn.execute("SET standard_conforming_strings = off")
        conn.add_query_logger(logged)
        try:
            assert await tx.mark_handled("telegram", typed, "m1", T0)
            case = await tx.new_case(make_case(text=typed))
        finally:
            conn.remove_query_logger(logged)
    async with store.transaction() as tx:
        await tx.sql.conn.execute("RESET standard_conforming_strings")  # type: ignore[attr-defined]
        assert (await tx.case(case.number)).text == typed  # type: ignore[union-attr]
        assert not await tx.mark_handled("telegram", typed, "m1", T0)
    assert sent[0] == "BEGIN"
    assert all(typed not in q for q in sent)


async def test_a_transaction_that_only_defers_rows_writes_them_alone(
        store: PostgresStore) -> None:
    """One statement is atomic by itself: no BEGIN, no COMMIT, one round trip."""
    from gridbot.domain import CaseEvent

    async with store.transaction() as tx:
        case = await tx.new_case(make_case(text="x"))
    sent: list[str] = []
    async with store.transaction() as tx:
        tx.sql.conn.add_query_logger(lambda record: sent.append(record.query))  # type: ignore[attr-defined]
        for text in ("a", "b"):
            await tx.add_event(CaseEvent(case_number=case.number, at=T0, actor_id="zhang",
                                         kind="note", text=text))
        await tx.enqueue_all([(message("k1", case_number=case.number), None)], T0)
    assert len(sent) == 1 and sent[0].startswith("WITH w0 AS (INSERT INTO case_events")
    async with store.transaction() as tx:
        assert [e.text for e in await tx.events(case.number) if e.kind == "note"] == ["a", "b"]
        assert await tx.outbox_counts() == {"queued": 1}


async def test_rows_that_fail_with_commit_undo_the_whole_transaction(
        store: PostgresStore) -> None:
    """The deferred rows fail at the end (an event of no case): nothing of the
    transaction stays, and its connection goes back to the pool clean."""
    import asyncpg  # type: ignore[import-untyped]

    from gridbot.domain import CaseEvent

    for _ in range(6):  # more than the pool's connections: each is used again after
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            async with store.transaction() as tx:
                assert await tx.mark_handled("telegram", "g", "m1", T0)
                await tx.new_case(make_case(text="kept?"))
                await tx.add_event(CaseEvent(case_number=10**9, at=T0, actor_id="zhang",
                                             kind="note", text="no such case"))
    async with store.transaction() as tx:
        assert await tx.mark_handled("telegram", "g", "m1", T0)  # not marked before
        assert await tx.cases(CaseQuery()) == []


@given(text=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
       number=st.integers(-2**63, 2**63 - 1),
       at=st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1), timezones=st.timezones()))
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_values_written_in_as_literals_read_back_as_they_were(
        store: PostgresStore, text: str, number: int, at: Any) -> None:
    """What makes the one-trip statements safe: any text a user types, any 64-bit number,
    any instant in any time zone, written in as a literal, is read back unchanged."""
    from gridbot.store.dialect import _inlined

    sql = "SELECT $1::VARCHAR AS t, $2::BIGINT AS n, $3::TIMESTAMP WITH TIME ZONE AS at, " \
          "$4::VARCHAR AS none, $5::BOOLEAN AS yes, $1::VARCHAR AS again"
    inline = _inlined(sql, [text, number, at, None, True])
    assert inline is not None
    async with store.transaction() as tx:
        row = (await tx.sql.conn.fetch(inline))[0]  # type: ignore[attr-defined]
    # compared in UTC: an instant in a zone's DST gap is unequal to every instant of
    # another zone (PEP 495), though its offset and so the literal say which one it is
    assert dict(row) == {"t": text, "n": number, "at": at.astimezone(UTC), "none": None,
                         "yes": True, "again": text}


def test_only_plain_values_and_plain_statements_are_written_in() -> None:
    from gridbot.store.dialect import _inlined

    assert _inlined("INSERT INTO t VALUES ($1, $2)", ["a", 1]) == "INSERT INTO t VALUES ('a', 1)"
    for sql in ("UPDATE t SET s = 'sent' WHERE id = $1", "SELECT $1 -- x", "SELECT $1 /* */",
                "SELECT $$x$$, $1", "SELECT E'\\n', $1"):
        assert _inlined(sql, [1]) is None, sql
    for value in (1.5, b"x", "a\x00b", "\ud83d", datetime(2026, 1, 1), [1], {"a": 1}):
        assert _inlined("SELECT $1", [value]) is None, value
    assert _inlined("SELECT $2", [1]) is None  # a parameter it was not given
    assert _inlined("SELECT $1::BIGINT", [-3]) == "SELECT (-3)::BIGINT"
    assert _inlined("SELECT $1", [2**63]) is None  # no BIGINT: as a parameter, refused


async def test_a_url_may_name_the_servers_socket_folder_instead_of_a_host(
        schema: str) -> None:
    """Same-host deployments: ``postgresql://USER@/DB?host=/var/run/postgresql``."""
    folder = Path("/var/run/postgresql")
    if postgres.URL != "postgresql://postgres@127.0.0.1:5432/test" \
            or not (folder / ".s.PGSQL.5432").exists():
        pytest.skip("the default local server's Unix socket is not here")
    url = f"postgresql://postgres@/test?host={folder}&schema={schema}"
    store = store_for_url(url)  # the configuration takes it too: tests/test_config.py
    await store.open()
    try:
        async with store.transaction() as tx:
            case = await tx.new_case(make_case(text="经由套接字"))
        async with store.transaction() as tx:
            assert (await tx.case(case.number)).text == "经由套接字"  # type: ignore[union-attr]
    finally:
        await store.close()


# -- the same answers as SQLite ------------------------------------------------------------


async def test_audit_forgetting_and_report_times_answer_as_on_sqlite(
        store: PostgresStore, tmp_path: Path, schema: str) -> None:
    from gridbot.domain import CaseEvent
    from gridbot.store.base import AuditEntry, Household

    lite = SQLiteStore(str(tmp_path / "same.db"))
    await lite.open()
    answers = []
    try:
        for s in (lite, store):
            async with s.transaction() as tx:
                await tx.sync_org(load_config(EXAMPLE))
                numbers = []
                for i in range(3):
                    case = await tx.new_case(make_case(
                        reporter_id="liu_nainai" if i < 2 else "huang",
                        created_at=T0 + timedelta(minutes=i), rating_text="好" if i else ""))
                    numbers.append(case.number)
                    await tx.add_event(CaseEvent(case_number=case.number, at=T0,
                                                 actor_id="liu_nainai", kind="created",
                                                 text="我家3幢201"))
                    await tx.add_event(CaseEvent(case_number=case.number, at=T0,
                                                 actor_id="zhang", kind="note", text=""))
                await tx.put_households([
                    Household(microgrid="M01", building="3幢", entrance="", room="201",
                              head="刘奶奶", phone="13700000301", members=1,
                              tags=("独居老人",), note="女儿每周来"),
                    Household(microgrid="M01", building="3幢", entrance="", room="202",
                              head="黄先生", phone="13900000000", members=3,
                              note="紧急联系 137 0000 0301 刘奶奶")], T0)
                await tx.enqueue(message("k1", person_id="liu_nainai"), T0)
                (item,) = await tx.claim_outbox(T0, limit=1, lease=LEASE, platforms=["console"])
                await tx.mark_sent(item.id, T0, "p1")
                for minute, actor in enumerate(["zhang", "wang", "zhang"]):
                    await tx.add_audit(AuditEntry(at=T0 + timedelta(minutes=minute),
                                                  actor_id=actor, action="claim",
                                                  via="console", role="steward",
                                                  target="liu_nainai" if minute == 1 else "#1"))
            async with s.transaction() as tx:
                counts = await tx.forget_person("liu_nainai", name="（已注销居民）",
                                                text="（已删除）", new_id="~forgotten:1")
            async with s.transaction() as tx:
                answers.append((
                    counts,
                    [(e.id, e.actor_id, e.target) for e in await tx.audit_entries()],
                    [e.actor_id for e in await tx.audit_entries(person_id="liu_nainai")],
                    [e.id for e in await tx.audit_entries(since=T0 + timedelta(minutes=1),
                                                          limit=1)],
                    await tx.report_times(T0 + timedelta(minutes=1)),
                    await tx.report_times(T0, reporter_id="liu_nainai"),
                    await tx.report_times(T0, chat=("console", "group:M01")),
                    [(c.text, c.rating_text) for c in await tx.cases(CaseQuery(limit=10))],
                    [e.text for n in numbers for e in await tx.events(n)],
                    (await tx.person("~forgotten:1")).name,
                    await tx.households(["M01"]),
                ))
    finally:
        await lite.close()
    assert answers[0] == answers[1]
    assert answers[1][0]["case_events"] == 3  # her two reports, and her words on a third
    assert answers[1][0]["households"] == 2
    assert [(h.head, h.phone, h.note, h.tags) for h in answers[1][-1]] == [
        ("", "", "", ("独居老人",)), ("黄先生", "13900000000", "紧急联系", ())]
    # still append-only for everyone else, after forgetting
    with pytest.raises(Exception, match="append-only"):
        postgres.sql(schema, "UPDATE case_events SET text = 'x'")
    with pytest.raises(Exception, match="append-only"):
        postgres.sql(schema, "DELETE FROM audit_log")


async def test_integrity_names_an_invalid_index(store: PostgresStore, schema: str) -> None:
    """``gridbot doctor``'s integrity check on PostgreSQL: a whole database has nothing to
    say; an index left invalid (a failed build) is named."""
    assert await store.integrity() == []
    import asyncpg

    conn = await asyncpg.connect(postgres.URL)
    try:
        await conn.execute(f'CREATE INDEX broken ON "{schema}".cases (text)')
        await conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = "
                           f"'\"{schema}\".broken'::regclass")
    finally:
        await conn.close()
    assert await store.integrity() == ["invalid index broken"]
