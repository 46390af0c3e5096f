"""The storage contract (gridbot/store/base.py), run against every backend.

The ``backend`` fixture is parametrised by backend name: "sqlite" and "postgresql". A
backend is a branch in ``make_backend`` that says how to make a fresh store, how to
reopen the same database, how to run one raw SQL statement outside the store (to prove
what the interface cannot show, such as case events being append-only) and how to clean
up. PostgreSQL runs against the server of ``tests/postgres.py``, each test in a schema of
its own; without a server it is skipped with the reason (under CI it fails instead).
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gridbot.config import Config, load_config, parse_config
from gridbot.domain import (
    Account,
    Attachment,
    AttachmentKind,
    Button,
    Case,
    CaseEvent,
    Chat,
    ChatKind,
    DutyStatus,
    ExtensionRequest,
    Outgoing,
    Person,
    Priority,
    Role,
    Status,
    TextFormat,
)
from gridbot.errors import StoreError
from gridbot.store import CaseQuery, SQLiteStore, Store, Transaction, migrating
from gridbot.store.base import AuditEntry, Household, LinkCode, OrgUnit, RosterEntry
from gridbot.store.migrating import versions
from tests import postgres

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"
EXAMPLE_TEXT = EXAMPLE.read_text(encoding="utf-8")

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
BACKENDS = ["sqlite", "postgresql"]


@dataclass
class Backend:
    name: str
    #: a new, unopened store on the backend's database (the same one each call)
    new_store: Callable[[], Store]
    #: run one SQL statement outside the store, committed; returns the rows
    raw: Callable[[str], list[tuple[Any, ...]]]
    #: what ``raw`` raises when the database refuses a statement
    raw_error: type[Exception]
    #: remove what the test left behind
    close: Callable[[], None] = lambda: None


def make_backend(name: str, tmp_path: Path, *, new_database: bool = False) -> Backend:
    """The store on ``name``'s database, empty. On PostgreSQL an emptied, already
    migrated schema (:func:`tests.postgres.emptied_schema`), unless ``new_database``
    asks for one never migrated (SQLite's file in ``tmp_path`` is always new)."""
    if name == "sqlite":
        path = str(tmp_path / "contract.db")

        def raw(sql: str) -> list[tuple[Any, ...]]:
            db = sqlite3.connect(path, timeout=5)
            try:
                with db:
                    return db.execute(sql).fetchall()
            finally:
                db.close()

        return Backend(name=name, new_store=lambda: SQLiteStore(path), raw=raw,
                       raw_error=sqlite3.DatabaseError)
    if name == "postgresql":
        postgres.require()
        import asyncpg

        from gridbot.store.postgresql import PostgresStore

        schema = postgres.new_schema() if new_database else postgres.emptied_schema()
        url = postgres.url_for(schema)
        return Backend(name=name, new_store=lambda: PostgresStore(url, pool_size=3),
                       raw=lambda sql: postgres.sql(schema, sql),
                       raw_error=asyncpg.PostgresError,
                       close=(lambda: postgres.drop_schema(schema)) if new_database
                       else lambda: None)
    raise AssertionError(f"no such backend {name!r}")


@pytest.fixture
def config() -> Config:
    return load_config(EXAMPLE)


def make_case(**changes: Any) -> Case:
    case = Case(
        number=0, microgrid="M01", reporter_id="liu_nainai", origin_platform="console",
        origin_chat_id="group:M01", text="3幢楼道灯坏了", category="facility",
        priority=Priority.NORMAL, status=Status.ASSIGNED, level=0, assignee_id="zhang",
        claim_by=T0 + timedelta(hours=2), resolve_by=T0 + timedelta(hours=48),
        created_at=T0, updated_at=T0,
    )
    return dataclasses.replace(case, **changes)


def message(key: str, **changes: Any) -> Outgoing:
    out = Outgoing(platform="console", chat_id="dm:zhang", text=f"text {key}",
                   person_id="zhang", dedup_key=key)
    return dataclasses.replace(out, **changes)


async def new_case(store: Store, **changes: Any) -> Case:
    async with store.transaction() as tx:
        return await tx.new_case(make_case(**changes))


async def claim(store: Store, now: datetime, *, limit: int = 10,
                platforms: tuple[str, ...] = ("console",)) -> list[Any]:
    async with store.transaction() as tx:
        return await tx.claim_outbox(now, limit=limit, lease=LEASE, platforms=platforms)


# -- opening, migrations, durability -------------------------------------------------------


@pytest.mark.new_database
async def test_migrations_applied_once_and_reopening_is_idempotent(backend: Backend) -> None:
    # the baseline's versions, then those of the revisions after it (gridbot.store.revisions)
    latest = migrating.versions()[-1]
    store = backend.new_store()
    await store.open()
    assert await store.schema_version() == latest
    await store.close()
    for _ in range(2):
        store = backend.new_store()
        await store.open()
        assert await store.schema_version() == latest
        await store.close()
    assert backend.raw("SELECT version FROM schema_migrations ORDER BY version") == [
        (version,) for version in migrating.versions()]


def test_migration_versions_are_unique() -> None:
    """Two lines of work numbering theirs alike would leave one never applied."""
    numbers = versions()
    assert len(numbers) == len(set(numbers)), numbers


async def test_wal_journal_mode(backend: Backend, store: Store) -> None:
    if backend.name != "sqlite":
        pytest.skip("WAL is SQLite's")
    assert backend.raw("PRAGMA journal_mode") == [("wal",)]


async def test_a_cancelled_transaction_lets_the_connection_go_when_it_is_done(
        tmp_path: Path) -> None:
    """A transaction cancelled while its first statement waits in aiosqlite's thread
    (behind other work there) hands the connection on only once that statement has run
    and been rolled back: the next transaction, whose statements run on the event loop's
    thread, never uses the connection at the same time as aiosqlite's thread, and never
    finds the cancelled one's BEGIN open under it."""
    import threading

    store = SQLiteStore(str(tmp_path / "x.db"))
    await store.open()
    db = store._require()
    held = threading.Event()
    blocker = asyncio.ensure_future(db._execute(held.wait))  # the thread is busy
    first_started = asyncio.Event()

    async def first() -> None:
        async with store.transaction() as tx:
            first_started.set()
            await tx.outbox_counts()  # not quick: queued behind the blocker, with BEGIN

    async def second() -> None:
        async with store.transaction() as tx:
            assert await tx.mark_handled("telegram", "1", "2", T0)  # quick: on this thread

    cancelled = asyncio.ensure_future(first())
    await first_started.wait()
    await asyncio.sleep(0)  # its statement is queued now
    cancelled.cancel()
    after = asyncio.ensure_future(second())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not after.done()  # waits for the cancelled one's statement to end
    held.set()
    await blocker
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await after
    assert not db.in_transaction
    async with store.transaction() as tx:
        assert not await tx.mark_handled("telegram", "1", "2", T0)  # the second committed
    await store.close()


async def test_closing_waits_for_the_transaction_under_way(tmp_path: Path) -> None:
    """A store closed while one of its transactions runs (a drain abandoned at shutdown,
    still marking what it sent) is closed once that transaction has ended: closing it in
    aiosqlite's thread while the transaction ran quick statements on the event loop's
    thread put two threads on one SQLite connection (a segmentation fault, seen once in
    the suite). A transaction asked for after the close is refused in words."""
    store = SQLiteStore(str(tmp_path / "x.db"))
    await store.open()
    async with store.transaction() as tx:
        assert await tx.mark_handled("telegram", "1", "1", T0)
        closing = asyncio.ensure_future(store.close())
        for _ in range(20):
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)  # time for aiosqlite's thread, had the close gone ahead
        assert await tx.mark_handled("telegram", "1", "2", T0)  # quick: on this thread
    await closing
    with pytest.raises(StoreError, match="not open"):
        async with store.transaction():
            pass
    reopened = SQLiteStore(str(tmp_path / "x.db"))
    await reopened.open()
    async with reopened.transaction() as tx:  # both marks were committed
        assert not await tx.mark_handled("telegram", "1", "1", T0)
        assert not await tx.mark_handled("telegram", "1", "2", T0)
    await reopened.close()


async def test_store_must_be_open(backend: Backend) -> None:
    store = backend.new_store()
    with pytest.raises(StoreError):
        async with store.transaction():
            pass
    await store.open()
    await store.close()
    with pytest.raises(StoreError):
        await store.schema_version()


async def test_cannot_open_a_database_that_cannot_exist(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "no" / "such" / "folder" / "x.db"))
    with pytest.raises(StoreError):
        await store.open()


async def test_data_survives_closing_and_reopening(backend: Backend, store: Store) -> None:
    async with store.transaction() as tx:
        case = await tx.new_case(make_case())
        await tx.add_event(CaseEvent(case_number=case.number, at=T0, actor_id="liu_nainai",
                                     kind="created", text="报事", data={"n": 1}))
        await tx.enqueue(message("k1"), T0)
        await tx.mark_handled("console", "group:M01", "m1", T0)
        await tx.save_account(Account(platform="console", user_id="u1", display_name="张",
                                      person_id="zhang"), T0)
        await tx.set_duty(DutyStatus(person_id="li", off=True), T0)
    await store.close()

    again = backend.new_store()
    await again.open()
    try:
        async with again.transaction() as tx:
            assert await tx.case(case.number) == case
            assert [e.kind for e in await tx.events(case.number)] == ["created"]
            assert await tx.mark_handled("console", "group:M01", "m1", T0) is False
            assert (await tx.account("console", "u1")).person_id == "zhang"
            assert (await tx.duty("li")).off is True
            assert (await tx.person("zhang")).name == "张阿姨"
            assert await tx.outbox_counts() == {"queued": 1}
    finally:
        await again.close()


# -- transactions --------------------------------------------------------------------------


class Boom(Exception):
    pass


async def test_a_transaction_that_raises_rolls_everything_back(store: Store) -> None:
    with pytest.raises(Boom):
        async with store.transaction() as tx:
            case = await tx.new_case(make_case())
            await tx.add_event(CaseEvent(case_number=case.number, at=T0, actor_id=None,
                                         kind="created"))
            assert await tx.enqueue(message("k1"), T0)
            assert await tx.mark_handled("console", "group:M01", "m1", T0)
            await tx.set_duty(DutyStatus(person_id="zhang", off=True), T0)
            await tx.add_person(Person(id="auto1", name="新居民", role=Role.RESIDENT,
                                       unit="M01", auto=True))
            # reads see the transaction's own writes
            assert await tx.case(case.number) == case
            assert await tx.outbox_counts() == {"queued": 1}
            raise Boom
    async with store.transaction() as tx:
        assert await tx.case(case.number) is None
        assert await tx.events(case.number) == []
        assert await tx.outbox_counts() == {}
        assert await tx.next_outbox_due() is None
        assert await tx.mark_handled("console", "group:M01", "m1", T0) is True
        assert await tx.duty("zhang") is None
        assert await tx.person("auto1") is None
    # the store is still usable after the rollback
    assert (await new_case(store)).number >= 1


# -- cases and events ----------------------------------------------------------------------


async def test_new_case_numbers_increase(store: Store) -> None:
    numbers = [(await new_case(store, number=99)).number for _ in range(4)]
    assert numbers == sorted(set(numbers))
    assert numbers[0] >= 1
    async with store.transaction() as tx:
        more = [(await tx.new_case(make_case())).number for _ in range(2)]
    assert numbers[-1] < more[0] < more[1]


async def test_new_case_returns_what_was_stored(store: Store) -> None:
    case = await new_case(store)
    assert case == make_case(number=case.number)
    async with store.transaction() as tx:
        assert await tx.case(case.number) == case


@pytest.mark.parametrize("number", [0, -1, 12345, 2**63])
async def test_unknown_case(store: Store, number: int) -> None:
    await new_case(store)
    async with store.transaction() as tx:
        assert await tx.case(number) is None


def changed_every_field(case: Case) -> Case:
    later = T0 + timedelta(hours=5)
    return dataclasses.replace(
        case, microgrid="M02", reporter_id="huang", origin_platform="telegram",
        origin_chat_id="-100123", text="改了：5幢 <b>&</b> 漏水 💧", category="neighbours",
        priority=Priority.URGENT, status=Status.RESOLVED, level=2, assignee_id="zhou",
        claim_by=T0 + timedelta(minutes=15), resolve_by=T0 + timedelta(hours=4),
        created_at=T0 - timedelta(minutes=1), updated_at=later,
        claimed_at=T0 + timedelta(minutes=3, microseconds=123456), resolved_at=later,
        closed_at=later + timedelta(days=1), rating=4, rating_text="很及时",
        window_start=T0 + timedelta(minutes=1), reminded_at=T0 + timedelta(minutes=10),
        active_at=T0 + timedelta(minutes=3), idle_warned_at=later, top_reminders=2,
        top_reminded_at=later + timedelta(hours=1),
        extension=ExtensionRequest(by="zhang", span=timedelta(days=2), reason="等报价 <&>",
                                   at=T0 + timedelta(minutes=30), days=2),
        extensions=1, wake_at=later + timedelta(hours=2),
        extended_until=later + timedelta(days=7), building="3", unit="2", room="201",
        anonymous="neighbours", merged_into=7, incident=5,
    )


async def test_a_new_case_is_what_a_read_of_its_row_gives(store: Store) -> None:
    """The INSERT sends back only the number; the case it gives is made from the values
    bound. With every field set, instants in Shanghai's zone and to the microsecond, it is
    what reading the row gives, down to each instant's zone (UTC, as the store reads it)."""
    shanghai = ZoneInfo("Asia/Shanghai")
    every = changed_every_field(make_case())
    local = dataclasses.replace(every, **{
        f.name: getattr(every, f.name).astimezone(shanghai) + timedelta(microseconds=7)
        for f in dataclasses.fields(Case) if isinstance(getattr(every, f.name), datetime)})
    for draft in (make_case(), local):
        async with store.transaction() as tx:
            created = await tx.new_case(draft)
            assert repr(created) == repr(await tx.case(created.number))
        async with store.transaction() as tx:
            assert repr(await tx.case(created.number)) == repr(created)
        assert created == dataclasses.replace(draft, number=created.number)


async def test_update_case_round_trips_every_field(store: Store) -> None:
    case = await new_case(store)
    changed = changed_every_field(case)
    # the test itself changes every field but the number
    for f in dataclasses.fields(Case):
        same = getattr(case, f.name) == getattr(changed, f.name)
        assert same is (f.name == "number"), f.name
    async with store.transaction() as tx:
        await tx.update_case(changed)
        assert await tx.case(case.number) == changed
    async with store.transaction() as tx:
        assert await tx.case(case.number) == changed
        # and back to the empty optional values
        await tx.update_case(case)
    async with store.transaction() as tx:
        assert await tx.case(case.number) == case


async def test_update_case_touches_only_that_case(store: Store) -> None:
    first, second = await new_case(store), await new_case(store)
    async with store.transaction() as tx:
        await tx.update_case(changed_every_field(first))
        assert await tx.case(second.number) == second


async def test_instants_come_back_in_utc(store: Store) -> None:

    local = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    case = await new_case(store, created_at=local)
    assert case.created_at == T0
    assert case.created_at.utcoffset() == timedelta(0)


async def test_events_are_kept_in_order(store: Store) -> None:
    case = await new_case(store)
    other = await new_case(store)
    events = [
        CaseEvent(case_number=case.number, at=T0, actor_id="liu_nainai", kind="created",
                  text="报事", data={"category": "facility"}),
        CaseEvent(case_number=other.number, at=T0, actor_id=None, kind="created"),
        CaseEvent(case_number=case.number, at=T0 + timedelta(minutes=5), actor_id="zhang",
                  kind="claimed", data={"level": 0, "names": ["张阿姨", "李"], "x": None}),
        CaseEvent(case_number=case.number, at=T0 + timedelta(minutes=5), actor_id=None,
                  kind="note", text="同一时刻的第二条"),
    ]
    async with store.transaction() as tx:
        for event in events:
            await tx.add_event(event)
    async with store.transaction() as tx:
        assert await tx.events(case.number) == [events[0], events[2], events[3]]
        assert await tx.events(other.number) == [events[1]]
        assert await tx.events(999) == []


async def test_events_of_a_case_made_in_the_transaction(store: Store) -> None:
    async with store.transaction() as tx:
        case = await tx.new_case(make_case())
        assert await tx.events(case.number) == []
        first = CaseEvent(case_number=case.number, at=T0, actor_id="liu_nainai",
                          kind="reported", text="灯坏了", data={"n": [1, 2], "said_in": "x"})
        second = CaseEvent(case_number=case.number, at=T0 + timedelta(seconds=1),
                           actor_id=None, kind="assigned", data={"assignee": "zhang"})
        await tx.add_event(first)
        await tx.add_event(second)
        seen = await tx.events(case.number)
        assert seen == [first, second]
    async with store.transaction() as tx:
        assert await tx.events(case.number) == seen


async def test_case_events_are_append_only(backend: Backend, store: Store) -> None:
    case = await new_case(store)
    event = CaseEvent(case_number=case.number, at=T0, actor_id="zhang", kind="created",
                      text="原文")
    async with store.transaction() as tx:
        await tx.add_event(event)
    with pytest.raises(backend.raw_error, match="append-only"):
        backend.raw("UPDATE case_events SET text = 'forged'")
    with pytest.raises(backend.raw_error, match="append-only"):
        backend.raw("DELETE FROM case_events")
    async with store.transaction() as tx:
        assert await tx.events(case.number) == [event]
        await tx.add_event(dataclasses.replace(event, kind="note"))  # appending still works
        assert len(await tx.events(case.number)) == 2


async def test_move_reports(store: Store) -> None:
    for reporter in ("auto:console:u1", "auto:console:u1", "huang"):
        await new_case(store, reporter_id=reporter)
    async with store.transaction() as tx:
        assert await tx.move_reports("auto:console:u1", "liu_nainai") == 2
        assert await tx.move_reports("auto:console:u1", "liu_nainai") == 0
        mine = await tx.cases(CaseQuery(reporter_id="liu_nainai"))
    assert len(mine) == 2


# -- case queries --------------------------------------------------------------------------


@pytest.fixture
async def many(store: Store) -> dict[str, Case]:
    """A spread of cases; claim_by/resolve_by are relative to T0."""
    h = timedelta(hours=1)
    specs = {
        "new_late": dict(status=Status.NEW, assignee_id=None, claim_by=T0 - h),
        "assigned_late": dict(assignee_id="zhang", claim_by=T0 - h),
        "assigned_ok": dict(assignee_id="zhang", claim_by=T0 + h, reporter_id="huang",
                            microgrid="M02"),
        "reopened_late": dict(status=Status.REOPENED, assignee_id="li", claim_by=T0 - h,
                              microgrid="M02"),
        "claimed_late": dict(status=Status.CLAIMED, assignee_id="zhang", claim_by=T0 - 2 * h,
                             resolve_by=T0 - h),
        "claimed_ok": dict(status=Status.CLAIMED, assignee_id="li", claim_by=T0 - 2 * h,
                           resolve_by=T0 + h, microgrid="M03", reporter_id="ma"),
        "resolved_old": dict(status=Status.RESOLVED, assignee_id="zhang", claim_by=T0 - 3 * h,
                             resolve_by=T0 - 2 * h),
        "closed_old": dict(status=Status.CLOSED, assignee_id="li", claim_by=T0 - 3 * h,
                           resolve_by=T0 - 2 * h, microgrid="M04", reporter_id="tom"),
        "cancelled_old": dict(status=Status.CANCELLED, assignee_id=None, claim_by=T0 - 3 * h),
        "no_deadline": dict(status=Status.NEW, assignee_id=None, claim_by=None,
                            resolve_by=None),
    }
    out = {}
    async with store.transaction() as tx:
        for name, spec in specs.items():
            out[name] = await tx.new_case(make_case(text=name, **spec))
    return out


async def query(store: Store, **filters: Any) -> list[str]:
    async with store.transaction() as tx:
        return [c.text for c in await tx.cases(CaseQuery(**filters))]


async def test_cases_without_filters_are_all_oldest_first(store: Store,
                                                          many: dict[str, Case]) -> None:
    assert await query(store) == list(many)


async def test_cases_by_assignee(store: Store, many: dict[str, Case]) -> None:
    assert await query(store, assignee_id="zhang") == [
        "assigned_late", "assigned_ok", "claimed_late", "resolved_old"]
    assert await query(store, assignee_id="nobody") == []


async def test_cases_by_reporter(store: Store, many: dict[str, Case]) -> None:
    assert await query(store, reporter_id="huang") == ["assigned_ok"]
    assert len(await query(store, reporter_id="liu_nainai")) == 7


async def test_cases_by_microgrids(store: Store, many: dict[str, Case]) -> None:
    assert await query(store, microgrids=("M02", "M03")) == [
        "assigned_ok", "reopened_late", "claimed_ok"]
    assert await query(store, microgrids=("M04",)) == ["closed_old"]
    assert await query(store, microgrids=()) == []


async def test_cases_by_statuses(store: Store, many: dict[str, Case]) -> None:
    assert await query(store, statuses=frozenset({Status.CLAIMED})) == [
        "claimed_late", "claimed_ok"]
    assert await query(store, statuses=frozenset({Status.CLOSED, Status.CANCELLED})) == [
        "closed_old", "cancelled_old"]
    assert await query(store, statuses=frozenset()) == []


async def test_cases_overdue(store: Store, many: dict[str, Case]) -> None:
    assert await query(store, overdue_at=T0) == [
        "new_late", "assigned_late", "reopened_late", "claimed_late"]
    # later, the windows still running at T0 have ended too
    assert await query(store, overdue_at=T0 + timedelta(hours=2)) == [
        "new_late", "assigned_late", "assigned_ok", "reopened_late", "claimed_late",
        "claimed_ok"]
    # earlier, nothing had ended yet
    assert await query(store, overdue_at=T0 - timedelta(hours=4)) == []


async def test_cases_filters_combine(store: Store, many: dict[str, Case]) -> None:
    assert await query(store, assignee_id="zhang", overdue_at=T0) == [
        "assigned_late", "claimed_late"]
    assert await query(store, assignee_id="li", microgrids=("M02",)) == ["reopened_late"]
    assert await query(store, reporter_id="liu_nainai", microgrids=("M01",),
                       statuses=frozenset({Status.NEW})) == ["new_late", "no_deadline"]


async def test_cases_limit(store: Store, many: dict[str, Case]) -> None:
    assert await query(store, limit=3) == ["new_late", "assigned_late", "assigned_ok"]
    assert await query(store, assignee_id="zhang", limit=1) == ["assigned_late"]


async def test_open_cases_are_the_open_ones_anywhere_whenever_reported(
        store: Store, many: dict[str, Case]) -> None:
    async with store.transaction() as tx:
        old = await tx.new_case(make_case(text="years_old", created_at=T0 - timedelta(days=900)))
        everywhere = await tx.open_cases(None)
        m02_m03 = await tx.open_cases(["M02", "M03"])
        assert await tx.open_cases([]) == []
        assert await tx.open_cases(["M99"]) == []
    # resolved, closed and cancelled cases are not open
    assert sorted(c.text for c in everywhere) == sorted(
        ["new_late", "assigned_late", "assigned_ok", "reopened_late", "claimed_late",
         "claimed_ok", "no_deadline", "years_old"])
    assert sorted(c.text for c in m02_m03) == ["assigned_ok", "claimed_ok", "reopened_late"]
    assert old in everywhere  # read back whole


async def test_open_assignees(store: Store, many: dict[str, Case]) -> None:
    async with store.transaction() as tx:
        # only closed-out cases of hers: she holds nothing open
        await tx.new_case(make_case(assignee_id="wang", status=Status.RESOLVED))
        await tx.new_case(make_case(assignee_id="wang", status=Status.CLOSED))
        found = await tx.open_assignees()
    # zhang: assigned and claimed; li: reopened and claimed; no one twice, no None
    assert len(found) == len(set(found))
    assert set(found) == {"zhang", "li"}


async def test_open_assignees_of_no_open_case(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.open_assignees() == []
        await tx.new_case(make_case(status=Status.NEW, assignee_id=None))
        await tx.new_case(make_case(status=Status.CANCELLED, assignee_id="zhang"))
        assert await tx.open_assignees() == []


# -- the clock: cases' wakes and the recurring jobs ----------------------------------------


async def test_next_case_wake_is_the_earliest(store: Store) -> None:
    h = timedelta(hours=1)
    async with store.transaction() as tx:
        assert await tx.next_case_wake() is None
        sleeping = await tx.new_case(make_case(wake_at=None))
        assert await tx.next_case_wake() is None
        later = await tx.new_case(make_case(wake_at=T0 + 2 * h))
        sooner = await tx.new_case(make_case(wake_at=T0 + h + timedelta(microseconds=7)))
    async with store.transaction() as tx:
        assert await tx.next_case_wake() == T0 + h + timedelta(microseconds=7)
        # a wake in the past counts too (the sweep is late): any case, whatever its status
        await tx.update_case(dataclasses.replace(sleeping, wake_at=T0 - h,
                                                 status=Status.RESOLVED))
        assert await tx.next_case_wake() == T0 - h
        await tx.update_case(dataclasses.replace(sleeping, wake_at=None))
        await tx.update_case(dataclasses.replace(sooner, wake_at=None))
        assert await tx.next_case_wake() == later.wake_at
        await tx.update_case(dataclasses.replace(later, wake_at=None))
        assert await tx.next_case_wake() is None


async def test_due_cases_earliest_first_up_to_the_limit(store: Store) -> None:
    m = timedelta(minutes=1)
    async with store.transaction() as tx:
        c3 = await tx.new_case(make_case(text="c3", wake_at=T0 + 3 * m))
        c1 = await tx.new_case(make_case(text="c1", wake_at=T0 + m))
        await tx.new_case(make_case(text="never", wake_at=None))
        c2 = await tx.new_case(make_case(text="c2", wake_at=T0 + 2 * m))
        tie = await tx.new_case(make_case(text="tie", wake_at=T0 + 2 * m))
        await tx.new_case(make_case(text="future", wake_at=T0 + timedelta(days=1)))
    async with store.transaction() as tx:
        assert await tx.due_cases(T0, limit=10) == []
        # at or before now; ties in case order
        assert await tx.due_cases(T0 + 3 * m, limit=10) == [c1, c2, tie, c3]
        assert await tx.due_cases(T0 + 2 * m, limit=2) == [c1, c2]
        assert await tx.due_cases(T0 + 3 * m, limit=0) == []


JOB = "digest"


async def test_a_job_never_run_has_no_next_run(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.job_next_run(JOB) is None
        assert await tx.claim_job_run(JOB, T0, T0 + timedelta(days=1)) is False
        assert await tx.job_next_run(JOB) is None


async def test_claim_job_run_moves_the_job_from_expected_to_next(store: Store) -> None:
    day = timedelta(days=1)
    first = T0 + timedelta(microseconds=250)
    async with store.transaction() as tx:
        assert await tx.claim_job_run(JOB, None, first) is True  # the first start
        assert await tx.job_next_run(JOB) == first
    async with store.transaction() as tx:
        # only one first start: the job has a next run now
        assert await tx.claim_job_run(JOB, None, first + day) is False
        # someone else moved it from another instant
        assert await tx.claim_job_run(JOB, first - day, first + day) is False
        assert await tx.job_next_run(JOB) == first
        assert await tx.claim_job_run(JOB, first, first + day) is True
        assert await tx.job_next_run(JOB) == first + day
    async with store.transaction() as tx:
        # the period is claimed: a second worker expecting it misses
        assert await tx.claim_job_run(JOB, first, first + day) is False
        assert await tx.job_next_run(JOB) == first + day
        # jobs are apart by name
        assert await tx.job_next_run("weekly") is None
        assert await tx.claim_job_run("weekly", None, T0) is True
        assert await tx.job_next_run(JOB) == first + day
        assert await tx.job_next_run("weekly") == T0


async def test_a_claim_rolled_back_leaves_the_job_as_it_was(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.claim_job_run(JOB, None, T0)
    with pytest.raises(Boom):
        async with store.transaction() as tx:
            assert await tx.claim_job_run(JOB, T0, T0 + timedelta(days=1)) is True
            raise Boom
    async with store.transaction() as tx:
        assert await tx.job_next_run(JOB) == T0


async def test_a_job_run_is_claimed_once_by_two_racing_transactions(
        store: Store, backend: Backend) -> None:
    """Two workers see the run due at ``now`` and both try it, as the digest does: one
    wins, the other misses. On PostgreSQL both read the row before either claims it (the
    second waits for the first's row, re-reads it and finds it moved); SQLite lets one
    writer in at a time, so there the second reads the moved row."""
    now = T0 + timedelta(minutes=1)
    following = T0 + timedelta(days=1)
    both_read = asyncio.Barrier(2) if backend.name == "postgresql" else None
    seen: list[datetime | None] = []

    async def worker() -> bool:
        async with store.transaction() as tx:
            stored = await tx.job_next_run(JOB)
            seen.append(stored)
            if both_read is not None:
                await asyncio.wait_for(both_read.wait(), 10)
            if stored is None or stored > now:
                return False
            return await tx.claim_job_run(JOB, stored, following)

    async with store.transaction() as tx:
        await tx.claim_job_run(JOB, None, T0)
    assert sorted(await asyncio.gather(worker(), worker())) == [False, True]
    assert seen == ([T0, T0] if both_read else [T0, following])
    async with store.transaction() as tx:
        assert await tx.job_next_run(JOB) == following


async def test_a_first_start_is_claimed_once_by_two_racing_transactions(
        store: Store, backend: Backend) -> None:
    both_read = asyncio.Barrier(2) if backend.name == "postgresql" else None

    async def first_start(next_run: datetime) -> bool:
        async with store.transaction() as tx:
            if both_read is not None:
                assert await tx.job_next_run(JOB) is None
                await asyncio.wait_for(both_read.wait(), 10)
            return await tx.claim_job_run(JOB, None, next_run)

    won = await asyncio.gather(first_start(T0), first_start(T0 + timedelta(hours=1)))
    assert sorted(won) == [False, True]
    async with store.transaction() as tx:
        assert await tx.job_next_run(JOB) == (T0 if won[0] else T0 + timedelta(hours=1))


# -- statistics, reports and exports -------------------------------------------------------


async def test_case_histories(store: Store) -> None:
    h = timedelta(hours=1)
    async with store.transaction() as tx:
        made = {}
        # numbered in another order than reported: the answer is by number
        for text, at, microgrid, status in [
                ("late", T0 + 5 * h, "M01", Status.CLOSED),
                ("before", T0 - timedelta(microseconds=1), "M01", Status.NEW),
                ("at_since", T0, "M02", Status.CANCELLED),
                ("at_until", T0 + 24 * h, "M01", Status.NEW),
                ("middle", T0 + h, "M03", Status.CLAIMED)]:
            made[text] = await tx.new_case(make_case(text=text, created_at=at,
                                                     microgrid=microgrid, status=status))
        for i, (text, kind) in enumerate([("late", "created"), ("middle", "created"),
                                          ("late", "claimed"), ("before", "created"),
                                          ("late", "closed")]):
            await tx.add_event(CaseEvent(case_number=made[text].number,
                                         at=T0 + timedelta(minutes=i), actor_id="zhang",
                                         kind=kind, text=f"{text} {i}", data={"i": i}))
    async with store.transaction() as tx:
        day = await tx.case_histories(microgrids=None, since=T0, until=T0 + 24 * h)
        open_end = await tx.case_histories(microgrids=None, since=T0, until=None)
        some = await tx.case_histories(microgrids=["M01", "M03"], since=T0, until=None)
        assert await tx.case_histories(microgrids=[], since=T0, until=None) == []
        assert await tx.case_histories(microgrids=None, since=T0 + 48 * h, until=None) == []
        late_events = await tx.events(made["late"].number)
    # since is in, until is out, every status counts
    assert [c.text for c, _ in day] == ["late", "at_since", "middle"]
    assert [c.text for c, _ in open_end] == ["late", "at_since", "at_until", "middle"]
    assert [c.text for c, _ in some] == ["late", "at_until", "middle"]
    assert [c.number for c, _ in open_end] == sorted(c.number for c, _ in open_end)
    events = {c.text: [(e.kind, e.text, e.data) for e in evs] for c, evs in open_end}
    assert events == {
        "late": [("created", "late 0", {"i": 0}), ("claimed", "late 2", {"i": 2}),
                 ("closed", "late 4", {"i": 4})],
        "at_since": [], "at_until": [], "middle": [("created", "middle 1", {"i": 1})]}
    assert dict(day)[made["late"]] == late_events  # cases and events read back whole


async def test_report_times(store: Store) -> None:
    m = timedelta(minutes=1)
    async with store.transaction() as tx:
        for at, reporter, chat in [(T0 + 3 * m, "liu_nainai", "group:M01"),
                                   (T0 + m, "liu_nainai", "dm:liu_nainai"),
                                   (T0 - m, "liu_nainai", "group:M01"),
                                   (T0 + 2 * m, "huang", "group:M01"),
                                   (T0, "huang", "group:M02")]:
            await tx.new_case(make_case(created_at=at, reporter_id=reporter,
                                        origin_chat_id=chat))
    async with store.transaction() as tx:
        # oldest first, whatever order they were numbered in; ``since`` is in
        assert await tx.report_times(T0) == [T0, T0 + m, T0 + 2 * m, T0 + 3 * m]
        assert await tx.report_times(T0, reporter_id="liu_nainai") == [T0 + m, T0 + 3 * m]
        assert await tx.report_times(T0, chat=("console", "group:M01")) == [
            T0 + 2 * m, T0 + 3 * m]
        assert await tx.report_times(T0 - m, reporter_id="liu_nainai",
                                     chat=("console", "group:M01")) == [T0 - m, T0 + 3 * m]
        assert await tx.report_times(T0, chat=("telegram", "group:M01")) == []
        assert await tx.report_times(T0 + 4 * m) == []


# -- exactly-once intake -------------------------------------------------------------------


async def test_mark_handled(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.mark_handled("telegram", "-100", "42", T0) is True
        assert await tx.mark_handled("telegram", "-100", "42", T0) is False
    async with store.transaction() as tx:
        assert await tx.mark_handled("telegram", "-100", "42", T0 + timedelta(days=1)) is False
        # the same message id in another chat or on another platform is another message
        assert await tx.mark_handled("telegram", "-200", "42", T0) is True
        assert await tx.mark_handled("wecom", "-100", "42", T0) is True


# -- outbox --------------------------------------------------------------------------------


async def test_enqueue_and_claim_round_trip(store: Store) -> None:
    out = Outgoing(platform="console", chat_id="group:M01", text="<b>#1</b> 灯坏了 & 😀",
                   fmt=TextFormat.HTML, buttons=(Button(label="认领", command="认领 1"),
                                                 Button(label="转交", command="/handover 1")),
                   reply_to="m7", thread_id="t3", person_id=None, case_number=1,
                   dedup_key="console:group:M01:m7:0.0")
    plain = message("k2", buttons=(), reply_to=None, thread_id=None, case_number=None)
    async with store.transaction() as tx:
        assert await tx.enqueue(out, T0) is True
        assert await tx.enqueue(plain, T0) is True
    items = await claim(store, T0)
    assert [i.message for i in items] == [out, plain]
    assert [(i.attempts, i.status, i.error) for i in items] == [(1, "sending", "")] * 2
    assert items[0].id != items[1].id


async def test_attachments_round_trip_through_the_outbox(store: Store) -> None:
    evidence = (Attachment(kind=AttachmentKind.PHOTO, platform="telegram", ref="photo:AgAC-1"),
                Attachment(kind=AttachmentKind.VOICE, platform="telegram", ref="voice:AwAD-2"),
                Attachment(kind=AttachmentKind.DOCUMENT, platform="telegram",
                           ref="document:BQAC-3 文件"),
                # a file the bot made travels whole, bytes and name
                Attachment.own(AttachmentKind.PHOTO, b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
                               mime="image/png", name="统计图-C01-2026-11.png"))
    async with store.transaction() as tx:
        assert await tx.enqueue(message("k1", attachments=evidence), T0)
        assert await tx.enqueue(message("k2"), T0)
    items = await claim(store, T0)
    assert [i.message.attachments for i in items] == [evidence, ()]
    own = items[0].message.attachments[-1]
    assert own.is_own and own.mime == "image/png"
    assert own.content() == b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    assert [a.content() for a in evidence[:3]] == [None] * 3


async def test_enqueue_with_a_known_dedup_key_queues_nothing(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.enqueue(message("k1"), T0) is True
        assert await tx.enqueue(message("k1", text="another text"), T0) is False
    async with store.transaction() as tx:
        assert await tx.enqueue(message("k1", chat_id="dm:li"), T0 + timedelta(hours=1)) is False
        assert await tx.outbox_counts() == {"queued": 1}
    items = await claim(store, T0)
    assert [i.message.text for i in items] == ["text k1"]
    # still known once sent
    async with store.transaction() as tx:
        await tx.mark_sent(items[0].id, T0, "p1")
        assert await tx.enqueue(message("k1"), T0) is False
        assert await tx.outbox_counts() == {"sent": 1}


async def test_claim_outbox_leases(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.enqueue(message("a"), T0)
        await tx.enqueue(message("b"), T0)
    first = await claim(store, T0)
    assert [i.message.dedup_key for i in first] == ["a", "b"]
    assert [i.attempts for i in first] == [1, 1]
    # a second sender before the lease ends gets nothing
    assert await claim(store, T0) == []
    assert await claim(store, T0 + LEASE - timedelta(microseconds=1)) == []
    async with store.transaction() as tx:
        assert await tx.outbox_counts() == {"sending": 2}
    # once the lease has ended (the sender died) the messages are handed out again
    second = await claim(store, T0 + LEASE)
    assert [i.id for i in second] == [i.id for i in first]
    assert [i.attempts for i in second] == [2, 2]
    third = await claim(store, T0 + 3 * LEASE)
    assert [i.attempts for i in third] == [3, 3]


async def test_claim_outbox_limit_order_and_platforms(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.enqueue(message("late"), T0, not_before=T0 + timedelta(seconds=5))
        await tx.enqueue(message("tg", platform="telegram"), T0)
        await tx.enqueue(message("first"), T0)
        await tx.enqueue(message("second"), T0)
    now = T0 + timedelta(seconds=10)
    assert await claim(store, now, platforms=()) == []
    got = await claim(store, now, limit=2)
    assert [i.message.dedup_key for i in got] == ["first", "second"]
    got = await claim(store, now, limit=2)
    assert [i.message.dedup_key for i in got] == ["late"]
    got = await claim(store, now, platforms=("telegram", "wecom"))
    assert [i.message.dedup_key for i in got] == ["tg"]
    assert await claim(store, now, platforms=("console", "telegram")) == []


async def test_not_before_hides_a_message_until_then(store: Store) -> None:
    at = T0 + timedelta(minutes=10)
    async with store.transaction() as tx:
        await tx.enqueue(message("later"), T0, not_before=at)
        assert await tx.next_outbox_due() == at
    assert await claim(store, T0) == []
    assert await claim(store, at - timedelta(seconds=1)) == []
    assert [i.message.dedup_key for i in await claim(store, at)] == ["later"]


async def test_mark_sent(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.enqueue(message("a"), T0)
        await tx.enqueue(message("b"), T0)
    a, b = await claim(store, T0)
    async with store.transaction() as tx:
        await tx.mark_sent(a.id, T0 + timedelta(seconds=1), "tg-555")
        assert await tx.outbox_counts() == {"sent": 1, "sending": 1}
        assert await tx.next_outbox_due() == T0 + LEASE  # only b's lease is left
    # a sent message is never handed out again; b is, after its lease
    assert [i.id for i in await claim(store, T0 + LEASE)] == [b.id]
    async with store.transaction() as tx:
        await tx.mark_sent(b.id, T0 + LEASE, "tg-556")
        assert await tx.outbox_counts() == {"sent": 2}
        assert await tx.next_outbox_due() is None
    assert await claim(store, T0 + timedelta(days=1)) == []


async def test_mark_retry(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.enqueue(message("a"), T0)
    (item,) = await claim(store, T0)
    retry_at = T0 + timedelta(minutes=1)
    async with store.transaction() as tx:
        await tx.mark_retry(item.id, retry_at, "429 Too Many Requests")
        assert await tx.outbox_counts() == {"queued": 1}
        assert await tx.next_outbox_due() == retry_at
    # hidden until not_before, even though its lease is gone
    assert await claim(store, T0 + timedelta(seconds=1)) == []
    assert await claim(store, retry_at - timedelta(seconds=1)) == []
    (again,) = await claim(store, retry_at)
    assert again.id == item.id
    assert again.attempts == 2
    assert again.error == "429 Too Many Requests"
    assert again.message == item.message


async def test_mark_failed(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.enqueue(message("a"), T0)
        await tx.enqueue(message("b"), T0)
    a, _ = await claim(store, T0)
    async with store.transaction() as tx:
        await tx.mark_failed(a.id, T0, "403 bot was kicked")
        assert await tx.outbox_counts() == {"failed": 1, "sending": 1}
    # a failed message is never handed out again; b, whose lease ran out, is
    (b,) = await claim(store, T0 + timedelta(days=1))
    assert b.message.dedup_key == "b"
    async with store.transaction() as tx:
        await tx.mark_sent(b.id, T0 + timedelta(days=1), "p")
        assert await tx.outbox_counts() == {"failed": 1, "sent": 1}
        assert await tx.next_outbox_due() is None
    assert await claim(store, T0 + timedelta(days=2)) == []


async def test_enqueue_all_queues_at_once_and_skips_known_keys(store: Store) -> None:
    later = T0 + timedelta(seconds=5)
    async with store.transaction() as tx:
        assert await tx.enqueue(message("known"), T0) is True
        await tx.enqueue_all([(message("a"), None), (message("known", text="again"), None),
                              (message("b", chat_id="dm:li"), later)], T0)
        # read in the same transaction: what was queued is there
        assert await tx.outbox_counts() == {"queued": 3}
        assert await tx.next_outbox_due() == T0
    items = await claim(store, T0)
    assert [(i.message.dedup_key, i.message.text) for i in items] == [
        ("known", "text known"), ("a", "text a")]
    assert [i.message.dedup_key for i in await claim(store, later)] == ["b"]
    async with store.transaction() as tx:  # nothing to queue is nothing at all
        await tx.enqueue_all([], T0)


async def test_enqueue_all_is_rolled_back_with_its_transaction(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.enqueue_all([(message("a"), None)], T0)
            raise RuntimeError("handler failed")
    assert await claim(store, T0) == []


async def test_mark_all_sent_marks_only_messages_whose_lease_is_still_held(
        store: Store) -> None:
    async with store.transaction() as tx:
        await tx.enqueue_all([(message(k), None) for k in "abc"], T0)
    a, b, c = await claim(store, T0)
    assert a.lease_until == T0 + LEASE
    async with store.transaction() as tx:
        assert await tx.mark_all_sent([(a, "p-a")], T0 + timedelta(seconds=1)) == [a.id]
    # b's and c's sender took too long: their leases ran out and another sender has them
    b_again, c_again = await claim(store, T0 + LEASE)
    async with store.transaction() as tx:
        assert await tx.mark_all_sent([(b, "p-b"), (c, "p-c")], T0 + LEASE) == []
        assert await tx.outbox_counts() == {"sent": 1, "sending": 2}
        # the sender holding them now marks them
        marked = await tx.mark_all_sent([(b_again, "p-b2"), (c_again, "p-c2")], T0 + LEASE)
        assert sorted(marked) == [b.id, c.id]
        assert await tx.outbox_counts() == {"sent": 3}
        assert await tx.mark_all_sent([], T0) == []
    async with store.transaction() as tx:
        await tx.enqueue(message("d"), T0)
    (d,) = await claim(store, T0 + 2 * LEASE)
    async with store.transaction() as tx:  # a lease not known: marked by id alone
        assert await tx.mark_all_sent([(dataclasses.replace(d, lease_until=None), "p-d")],
                                      T0) == [d.id]
        assert await tx.outbox_counts() == {"sent": 4}


async def test_next_outbox_due(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.next_outbox_due() is None
        await tx.enqueue(message("later"), T0, not_before=T0 + timedelta(hours=1))
        assert await tx.next_outbox_due() == T0 + timedelta(hours=1)
        await tx.enqueue(message("sooner"), T0, not_before=T0 + timedelta(minutes=5))
        assert await tx.next_outbox_due() == T0 + timedelta(minutes=5)
        await tx.enqueue(message("now"), T0)
        assert await tx.next_outbox_due() == T0
    # a leased message is due again when its lease ends
    (now_item,) = await claim(store, T0)
    async with store.transaction() as tx:
        assert await tx.next_outbox_due() == T0 + LEASE
        await tx.mark_sent(now_item.id, T0, "p")
        assert await tx.next_outbox_due() == T0 + timedelta(minutes=5)


async def test_outbox_counts(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.outbox_counts() == {}
        for key in "abcde":
            await tx.enqueue(message(key), T0)
    a, b, c = await claim(store, T0, limit=3)
    async with store.transaction() as tx:
        await tx.mark_sent(a.id, T0, "p")
        await tx.mark_failed(b.id, T0, "gone")
        await tx.mark_retry(c.id, T0 + timedelta(minutes=1), "500")
        assert await tx.outbox_counts() == {"sent": 1, "failed": 1, "queued": 3}


async def test_release_leases_hands_back_one_platforms_leased_messages(store: Store) -> None:
    async with store.transaction() as tx:
        for key in ("a", "b", "c"):
            await tx.enqueue(message(key), T0)
        await tx.enqueue(message("queued"), T0, not_before=T0 + timedelta(hours=1))
        await tx.enqueue(message("tg", platform="telegram"), T0)
    a, b, c = await claim(store, T0, limit=3)
    (tg,) = await claim(store, T0, platforms=("telegram",))
    async with store.transaction() as tx:
        await tx.mark_sent(a.id, T0, "p1")
        await tx.mark_failed(b.id, T0, "gone")
        assert await tx.release_leases("wecom") == 0
        # only c is still leased on console: sent, failed and queued ones are not leased
        assert await tx.release_leases("console") == 1
        assert await tx.outbox_counts() == {"sent": 1, "failed": 1, "queued": 2,
                                            "sending": 1}
        assert await tx.next_outbox_due("console") == T0
        assert await tx.release_leases("console") == 0
    # c goes again at once, not when its lease ends; its attempt still counts
    (again,) = await claim(store, T0)
    assert (again.id, again.attempts, again.message) == (c.id, 2, c.message)
    # another platform's lease is untouched
    assert await claim(store, T0, platforms=("telegram",)) == []
    assert [i.id for i in await claim(store, T0 + LEASE, platforms=("telegram",))] == [tg.id]


async def test_release_leases_rolled_back_keeps_the_leases(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.enqueue(message("a"), T0)
    (a,) = await claim(store, T0)
    with pytest.raises(Boom):
        async with store.transaction() as tx:
            assert await tx.release_leases("console") == 1
            raise Boom
    assert await claim(store, T0) == []
    assert [i.id for i in await claim(store, T0 + LEASE)] == [a.id]


# -- link codes, accounts, chats, duty ------------------------------------------------------


async def test_link_codes(store: Store) -> None:
    expires = T0 + timedelta(hours=72)
    async with store.transaction() as tx:
        assert await tx.link_code("h1") is None
        await tx.add_link_code("h1", "zhang", T0, expires)
        await tx.add_link_code("h2", "wang", T0, expires)
        assert await tx.link_code("h1") == LinkCode(person_id="zhang", expires_at=expires,
                                                    used_at=None)
    async with store.transaction() as tx:
        await tx.use_link_code("h1", T0 + timedelta(minutes=5), "telegram:777")
        assert await tx.link_code("h1") == LinkCode(
            person_id="zhang", expires_at=expires, used_at=T0 + timedelta(minutes=5))
        assert (await tx.link_code("h2")).used_at is None


async def test_accounts_upsert(store: Store) -> None:
    first = Account(platform="telegram", user_id="777", display_name="Zhang",
                    person_id=None, private_chat_id=None)
    async with store.transaction() as tx:
        assert await tx.account("telegram", "777") is None
        await tx.save_account(first, T0)
        assert await tx.account("telegram", "777") == first
        assert await tx.accounts_of("zhang") == []
    linked = dataclasses.replace(first, display_name="张阿姨", person_id="zhang",
                                 private_chat_id="777")
    async with store.transaction() as tx:
        await tx.save_account(linked, T0 + timedelta(minutes=1))
        assert await tx.account("telegram", "777") == linked
        # a later save without a private chat keeps the known one
        await tx.save_account(dataclasses.replace(linked, private_chat_id=None),
                              T0 + timedelta(minutes=2))
        assert await tx.account("telegram", "777") == linked
        await tx.save_account(Account(platform="wecom", user_id="777", display_name="张",
                                      person_id="zhang"), T0 + timedelta(minutes=3))
        assert [(a.platform, a.user_id) for a in await tx.accounts_of("zhang")] == [
            ("telegram", "777"), ("wecom", "777")]
        assert await tx.account("wecom", "nope") is None


async def test_chats_upsert(store: Store) -> None:
    group = Chat(platform="telegram", chat_id="-100", kind=ChatKind.GROUP, title="1-3幢",
                 microgrid=None)
    async with store.transaction() as tx:
        assert await tx.chat("telegram", "-100") is None
        await tx.save_chat(group, bound_by=None, now=T0)
        assert await tx.chat("telegram", "-100") == group
        assert await tx.group_chats("M01") == []
    bound = dataclasses.replace(group, title="幸福里1-3幢群", microgrid="M01")
    async with store.transaction() as tx:
        await tx.save_chat(bound, bound_by="wang", now=T0)
        await tx.save_chat(Chat(platform="console", chat_id="group:M01", kind=ChatKind.GROUP,
                                microgrid="M01"), bound_by="wang", now=T0)
        await tx.save_chat(Chat(platform="console", chat_id="dm:zhang", kind=ChatKind.PRIVATE,
                                microgrid="M01"), bound_by=None, now=T0)
        await tx.save_chat(Chat(platform="console", chat_id="group:M02", kind=ChatKind.GROUP,
                                microgrid="M02"), bound_by="wang", now=T0)
        assert await tx.chat("telegram", "-100") == bound
        assert [(c.platform, c.chat_id) for c in await tx.group_chats("M01")] == [
            ("console", "group:M01"), ("telegram", "-100")]
    async with store.transaction() as tx:
        renamed = dataclasses.replace(bound, title="新名字")
        await tx.save_chat(renamed, bound_by=None, now=T0 + timedelta(days=1))
        assert await tx.chat("telegram", "-100") == renamed
        assert await tx.chat("console", "-100") is None


async def test_a_chat_that_refuses_the_bot(store: Store) -> None:
    private = Chat(platform="telegram", chat_id="1002", kind=ChatKind.PRIVATE)
    async with store.transaction() as tx:
        await tx.save_chat(private, bound_by=None, now=T0)
        assert (await tx.chat("telegram", "1002")).unreachable_at is None  # type: ignore[union-attr]
        await tx.set_chat_unreachable("telegram", "1002", at=T0 + timedelta(minutes=1),
                                      reason="Forbidden: bot was blocked by the user")
        await tx.set_chat_unreachable("telegram", "404", at=T0, reason="never stored")
        assert await tx.chat("telegram", "404") is None
    async with store.transaction() as tx:
        refused = await tx.chat("telegram", "1002")
        assert refused == dataclasses.replace(
            private, unreachable_at=T0 + timedelta(minutes=1),
            unreachable_reason="Forbidden: bot was blocked by the user")
        # saving the chat again (a new title, say) keeps what the platform said
        await tx.save_chat(dataclasses.replace(private, title="x"), bound_by=None, now=T0)
        assert (await tx.chat("telegram", "1002")).unreachable_at is not None  # type: ignore[union-attr]
        await tx.set_chat_unreachable("telegram", "1002", at=None, reason="ignored")
    async with store.transaction() as tx:
        assert await tx.chat("telegram", "1002") == dataclasses.replace(private, title="x")


async def test_speaker_is_the_chat_the_account_and_its_person(store: Store,
                                                              config: Config) -> None:
    group = Chat(platform="telegram", chat_id="-100", kind=ChatKind.GROUP, title="1-3幢",
                 microgrid="M01")
    account = Account(platform="telegram", user_id="777", display_name="Zhang",
                      person_id="zhang", private_chat_id="777")
    async with store.transaction() as tx:
        assert await tx.speaker("telegram", "-100", "777") == (None, None, None)
        await tx.sync_org(config)
        await tx.save_chat(group, bound_by=None, now=T0)
        await tx.save_account(account, T0)
        zhang = await tx.person("zhang")
        assert zhang is not None
        assert await tx.speaker("telegram", "-100", "777") == (group, account, zhang)
        assert await tx.speaker("telegram", "-200", "777") == (None, account, zhang)
        stranger = dataclasses.replace(account, user_id="888", person_id=None)
        await tx.save_account(stranger, T0)
        assert await tx.speaker("telegram", "-100", "888") == (group, stranger, None)
    async with store.transaction() as tx:
        # what it read is what the single reads read, also after a write in between
        await tx.speaker("telegram", "-100", "777")
        renamed = dataclasses.replace(group, title="新名字")
        await tx.save_chat(renamed, bound_by=None, now=T0)
        assert await tx.chat("telegram", "-100") == renamed
        await tx.add_person(Person(id="~telegram:888", name="路人", role=Role.RESIDENT,
                                   unit="M01", auto=True))
        assert (await tx.person("~telegram:888")) is not None


async def test_roster_reads_are_current_after_writes(store: Store, config: Config) -> None:
    async with store.transaction() as tx:
        await tx.sync_org(config)
        entries, _ = await tx.roster("M01")
        first = entries[0].person_id
        assert await tx.duty(first) is None
        off = DutyStatus(person_id=first, off=True, until=T0 + timedelta(days=1))
        await tx.set_duty(off, T0)
        await tx.roster("M01")
        assert await tx.duty(first) == off
        accounts = await tx.accounts_of(first)
        await tx.save_account(Account(platform="telegram", user_id="42", display_name="x",
                                      person_id=first, private_chat_id="42"), T0)
        assert len(await tx.accounts_of(first)) == len(accounts) + 1
        await tx.save_chat(Chat(platform="telegram", chat_id="42", kind=ChatKind.PRIVATE),
                           bound_by=None, now=T0)
        await tx.accounts_of(first)
        await tx.set_chat_unreachable("telegram", "42", at=T0, reason="blocked")
        assert (await tx.chat("telegram", "42")).unreachable_at == T0  # type: ignore[union-attr]


async def test_duty(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.duty("zhang") is None
        off = DutyStatus(person_id="zhang", off=True, until=T0 + timedelta(days=3))
        await tx.set_duty(off, T0)
        assert await tx.duty("zhang") == off
        on = DutyStatus(person_id="zhang", off=False)
        await tx.set_duty(on, T0 + timedelta(hours=1))
        assert await tx.duty("zhang") == on


# -- the org tree and people ---------------------------------------------------------------


async def test_sync_org_builds_the_tree(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.unit("SD") == OrgUnit(code="SD", kind="subdistrict", name="湖西街道",
                                               parent=None)
        assert await tx.unit("C02") == OrgUnit(code="C02", kind="community", name="桂花园社区",
                                                parent="SD")
        assert (await tx.unit("G02")).parent == "C01"
        assert await tx.unit("M01") == OrgUnit(code="M01", kind="microgrid", name="幸福里1-3幢",
                                                parent="G01", tags=("elderly", "old-estate"))
        assert await tx.unit("M99") is None
        assert [u.code for u in await tx.units("community")] == ["C01", "C02"]
        assert [u.code for u in await tx.units("grid")] == ["G01", "G02", "G03"]
        assert [u.code for u in await tx.units("microgrid")] == ["M01", "M02", "M03", "M04"]
        assert [u.code for u in await tx.units("subdistrict")] == ["SD"]


async def test_sync_org_people_and_rosters(store: Store, config: Config) -> None:
    async with store.transaction() as tx:
        for person in config.people:
            assert await tx.person(person.id) == person
        assert [p.id for p in await tx.people_in_role(Role.STEWARD, "M01")] == ["zhang", "sun"]
        assert [p.id for p in await tx.people_in_role(Role.GRID_LEADER, "G01")] == ["wang"]
        assert [p.id for p in await tx.people_in_role(Role.SUBDISTRICT_ADMIN, "SD")] == ["zheng"]
        assert await tx.people_in_role(Role.GRID_LEADER, "M01") == []
        assert [p.id for p in await tx.people_named("张阿姨")] == ["zhang"]
        assert [p.id for p in await tx.people_named("zhang")] == ["zhang"]
        assert await tx.people_named("张") == []
        entries, shifts = await tx.roster("M01")
        assert entries == [RosterEntry(person_id="zhang", position=0),
                           RosterEntry(person_id="li", position=1)]
        assert [(s.person, s.days, s.start, s.end) for s in shifts] == [
            ("sun", (5, 6), time(8), time(20))]
        assert await tx.roster("M03") == ([RosterEntry(person_id="zhao", position=0)], [])
        assert await tx.roster("M99") == ([], [])
        assert await tx.rosters_of("zhang") == ["M01", "M02"]
        assert await tx.rosters_of("sun") == ["M01"]
        assert await tx.rosters_of("wang") == []


async def test_sync_org_is_idempotent(store: Store, config: Config) -> None:
    async with store.transaction() as tx:
        await tx.sync_org(config)
        await tx.sync_org(config)
        entries, shifts = await tx.roster("M01")
        assert len(entries) == 2 and len(shifts) == 1
        assert len(await tx.units("microgrid")) == 4
        assert [p.id for p in await tx.people_in_role(Role.STEWARD, "M01")] == ["zhang", "sun"]


async def test_sync_org_deactivates_removed_people_but_keeps_auto_residents(store: Store) -> None:
    auto = Person(id="auto:console:u9", name="新邻居", role=Role.RESIDENT, unit="M01", auto=True)
    async with store.transaction() as tx:
        await tx.add_person(auto)
        assert await tx.person(auto.id) == auto
    text = EXAMPLE_TEXT
    sun = '[[people]]\nid = "sun"\nname = "孙志愿"\nrole = "steward"\nunit = "M01"\n'
    shift = '[[rosters.shifts]]\nperson = "sun"\ndays = ["sat", "sun"]\nstart = "08:00"\n' \
            'end = "20:00"\n'
    for old in (sun, shift):
        assert text.count(old) == 1
        text = text.replace(old, "")
    smaller = parse_config(text)
    async with store.transaction() as tx:
        await tx.sync_org(smaller)
    async with store.transaction() as tx:
        # sun is gone from lookups but not from history
        assert [p.id for p in await tx.people_in_role(Role.STEWARD, "M01")] == ["zhang"]
        assert await tx.people_named("孙志愿") == []
        assert await tx.people_named("sun") == []
        assert (await tx.person("sun")).name == "孙志愿"
        assert await tx.roster("M01") == ([RosterEntry(person_id="zhang", position=0),
                                           RosterEntry(person_id="li", position=1)], [])
        # the resident the bot met in a group stays
        assert [p.id for p in await tx.people_named("新邻居")] == [auto.id]
        assert await tx.person(auto.id) == auto
        assert [p.id for p in await tx.people_in_role(Role.RESIDENT, "M01")] == [
            "liu_nainai", "chen_xs", "xu", auto.id]
    # put sun back: active again
    async with store.transaction() as tx:
        await tx.sync_org(load_config(EXAMPLE))
        assert [p.id for p in await tx.people_in_role(Role.STEWARD, "M01")] == ["zhang", "sun"]


async def test_sync_org_updates_changed_people(store: Store) -> None:
    text = EXAMPLE_TEXT.replace('name = "张阿姨"\nrole = "steward"\nunit = "M01"',
                                'name = "张阿姨"\nrole = "steward"\nunit = "M02"', 1)
    async with store.transaction() as tx:
        await tx.sync_org(parse_config(text))
        assert (await tx.person("zhang")).unit == "M02"
        assert [p.id for p in await tx.people_in_role(Role.STEWARD, "M02")] == ["zhang", "li"]


async def test_people_and_units_follow_the_configuration_order(store: Store) -> None:
    # The office swaps zhang and sun, and lists G02 before G01: lookups follow the file.
    zhang = '[[people]]\nid = "zhang"\nname = "张阿姨"\nrole = "steward"\nunit = "M01"\n' \
            'phone = "138-0000-0101"\n\n'
    sun = '[[people]]\nid = "sun"\nname = "孙志愿"\nrole = "steward"\nunit = "M01"\n\n'
    g01 = '[[grids]]\ncode = "G01"\nname = "幸福里第一网格"\ncommunity = "C01"\n\n'
    g02 = '[[grids]]\ncode = "G02"\nname = "幸福里第二网格"\ncommunity = "C01"\n\n'
    for old in (zhang + sun, g01 + g02):
        assert EXAMPLE_TEXT.count(old) == 1
    text = EXAMPLE_TEXT.replace(zhang + sun, sun + zhang).replace(g01 + g02, g02 + g01)
    async with store.transaction() as tx:
        await tx.add_person(Person(id="auto1", name="新邻居", role=Role.RESIDENT, unit="M01",
                                   auto=True))
        await tx.sync_org(parse_config(text))
        assert [p.id for p in await tx.people_in_role(Role.STEWARD, "M01")] == ["sun", "zhang"]
        assert [u.code for u in await tx.units("grid")] == ["G02", "G01", "G03"]
        assert [p.id for p in await tx.people_in_role(Role.RESIDENT, "M01")] == [
            "liu_nainai", "chen_xs", "xu", "auto1"]
        await tx.sync_org(load_config(EXAMPLE))
        assert [p.id for p in await tx.people_in_role(Role.STEWARD, "M01")] == ["zhang", "sun"]
        assert [u.code for u in await tx.units("grid")] == ["G01", "G02", "G03"]


async def test_add_person_refuses_a_duplicate_id(store: Store) -> None:
    with pytest.raises(Exception):  # noqa: B017 - the backend's integrity error
        async with store.transaction() as tx:
            await tx.add_person(Person(id="zhang", name="另一个", role=Role.RESIDENT,
                                       unit="M01"))
    async with store.transaction() as tx:
        assert (await tx.person("zhang")).name == "张阿姨"


@pytest.mark.parametrize(("code", "expected"), [
    ("SD", ["M01", "M02", "M03", "M04"]),
    ("C01", ["M01", "M02", "M03"]),
    ("C02", ["M04"]),
    ("G01", ["M01", "M02"]),
    ("G03", ["M04"]),
    ("M03", ["M03"]),
    ("nope", []),
])
async def test_microgrids_under(store: Store, code: str, expected: list[str]) -> None:
    async with store.transaction() as tx:
        assert await tx.microgrids_under(code) == expected


async def test_transactions_are_transactions(store: Store) -> None:
    """The interface is what the rest of gridbot sees: check the fixture gives it."""
    assert isinstance(store, Store)
    async with store.transaction() as tx:
        assert isinstance(tx, Transaction)


async def test_sync_org_drops_units_removed_from_the_configuration(
    store: Store, config: Config
) -> None:
    smaller = dataclasses.replace(
        config, microgrids=tuple(m for m in config.microgrids if m.code != "M02"),
        rosters={k: v for k, v in config.rosters.items() if k != "M02"},
        people=tuple(p for p in config.people if p.unit != "M02"))
    async with store.transaction() as tx:
        await tx.sync_org(smaller)
        assert await tx.unit("M02") is None
        assert await tx.microgrids_under("G01") == ["M01"]
        removed = await tx.person("li")
        assert removed is not None and not removed.active  # kept for history, no rights
        assert await tx.people_named("李师傅") == []


async def test_enqueue_needs_a_dedup_key(store: Store) -> None:
    async with store.transaction() as tx:
        with pytest.raises(ValueError, match="dedup_key"):
            await tx.enqueue(Outgoing(platform="console", chat_id="c", text="x"), T0)


async def test_cases_newest_first(store: Store, many: dict[str, Case]) -> None:
    async with store.transaction() as tx:
        oldest = await tx.cases(CaseQuery(limit=2))
        newest = await tx.cases(CaseQuery(limit=2, newest_first=True))
    assert [c.number for c in oldest] == sorted(c.number for c in oldest)
    assert [c.number for c in newest] == sorted((c.number for c in newest), reverse=True)
    assert newest[0].number == max(c.number for c in many.values())


# -- the household ledger and the audit log ------------------------------------------------


def household(microgrid: str, building: str, room: str, **changes: Any) -> Household:
    return Household(microgrid=microgrid, building=building, entrance=changes.pop("entrance", ""),
                     room=room, **changes)


async def test_households_counts_and_removal(store: Store) -> None:
    ledger = [household("M01", "3幢", "201", head="刘奶奶", phone="13700000301", members=1,
                        tags=("独居老人", "低保户"), note="女儿每周来"),
              household("M01", "3幢", "102", entrance="2单元"),
              household("M01", "1幢", "101", members=4),
              household("M02", "5幢", "301")]
    async with store.transaction() as tx:
        assert await tx.household_counts() == {}
        assert await tx.households(["M01"]) == []
        await tx.put_households(ledger, T0)
    async with store.transaction() as tx:
        assert await tx.household_counts() == {"M01": 3, "M02": 1}
        # by micro-grid and address, read back whole
        assert await tx.households(["M02", "M01"]) == [ledger[2], ledger[0], ledger[1],
                                                        ledger[3]]
        assert await tx.households([]) == []
        # unknown keys and an empty list remove nothing; a key is all four parts
        await tx.remove_households([])
        await tx.remove_households([("M01", "3幢", "", "999"), ("M02", "3幢", "", "201"),
                                    ("M01", "3幢", "", "102")])
        assert await tx.household_counts() == {"M01": 3, "M02": 1}
        await tx.remove_households([ledger[0].key, ledger[3].key])
    async with store.transaction() as tx:
        # a micro-grid without households is not counted (no zero)
        assert await tx.household_counts() == {"M01": 2}
        assert await tx.households(["M01", "M02"]) == [ledger[2], ledger[1]]
    with pytest.raises(Boom):
        async with store.transaction() as tx:
            await tx.remove_households([ledger[1].key, ledger[2].key])
            assert await tx.household_counts() == {}
            raise Boom
    async with store.transaction() as tx:
        assert await tx.household_counts() == {"M01": 2}


async def test_audit_entries(store: Store) -> None:
    m = timedelta(minutes=1)
    entries = [AuditEntry(at=T0 + i * m, actor_id=actor, action="claim", via="console",
                          role="steward", target=target, summary=f"s{i}")
               for i, (actor, target) in enumerate([("zhang", "#1"), ("wang", "zhang"),
                                                    ("li", "#2"), ("zhang", "#3")])]
    async with store.transaction() as tx:
        assert await tx.audit_entries() == []
        for entry in entries:
            await tx.add_audit(entry)
    async with store.transaction() as tx:
        found = await tx.audit_entries()
        assert [dataclasses.replace(e, id=None) for e in found] == entries  # oldest first
        assert [e.id for e in found] == sorted({e.id for e in found})
        # by or about the person
        assert [e.summary for e in await tx.audit_entries(person_id="zhang")] == [
            "s0", "s1", "s3"]
        assert [e.summary for e in await tx.audit_entries(since=T0 + m)] == ["s1", "s2", "s3"]
        assert [e.summary for e in await tx.audit_entries(since=T0 + m, person_id="zhang",
                                                          limit=1)] == ["s1"]
        assert await tx.audit_entries(since=T0 + 10 * m) == []


async def test_marking_one_message_is_fenced_by_its_lease(store: Store) -> None:
    """A sender whose lease ran out (the message went to another sender) marks nothing:
    not sent, not failed, not queued again; the sender holding it now does."""
    async with store.transaction() as tx:
        await tx.enqueue_all([(message(k), None) for k in "abc"], T0)
    a, b, c = await claim(store, T0)
    a2, b2, c2 = await claim(store, T0 + LEASE)  # all three ran out and were claimed again
    async with store.transaction() as tx:
        assert not await tx.mark_sent(a.id, T0 + LEASE, "p-a", lease=a.lease_until)
        assert not await tx.mark_failed(b.id, T0 + LEASE, "gone", lease=b.lease_until)
        assert not await tx.mark_retry(c.id, T0 + 2 * LEASE, "500", lease=c.lease_until)
        assert await tx.outbox_counts() == {"sending": 3}
        assert await tx.mark_sent(a2.id, T0 + LEASE, "p-a2", lease=a2.lease_until)
        assert await tx.mark_failed(b2.id, T0 + LEASE, "gone", lease=b2.lease_until)
        assert await tx.mark_retry(c2.id, T0 + 2 * LEASE, "500", lease=c2.lease_until)
        assert await tx.outbox_counts() == {"sent": 1, "failed": 1, "queued": 1}
        # marked twice: the lease is gone once marked, so the second finds nothing
        assert not await tx.mark_sent(a2.id, T0 + LEASE, "p-a3", lease=a2.lease_until)
