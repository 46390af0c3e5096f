"""The deadline sweep after an outage: many due steps, several per transaction.

Sixty cases are reported a minute apart (09:00-09:59 Monday) and the bot is down until
14:41; then every case has missed windows. The sweep must take the steps in deadline
order across all cases, with far fewer transactions than steps (counted with SQLite's
own trace: every ``BEGIN`` is one), queue each step's messages once, let a case whose
step raises (a row damaged for real) not hold up the others, and send nothing twice
when it is run twice, by two workers at once or after a restart mid-way. The last test
has two workers share a backlog on PostgreSQL, where each locks the cases it takes.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from gridbot.clock import VirtualClock
from gridbot.config import Config
from gridbot.domain import Account, ChatKind, Incoming, Outcome
from gridbot.engine import Engine
from gridbot.escalation import STEPS_PER_TRANSACTION, DeadlineSweep
from gridbot.store import SQLiteStore
from gridbot.store.postgresql import PostgresStore
from tests import postgres
from tests.conftest import Bot, every_report_a_case
from tests.test_store import T0, make_case

CASES = 60
#: the steps due at the restart: at levels 0 and 1 the reminder (noted, not sent: its
#: window is over) and the missed claim window of each case, and at level 2 the
#: reminder (at 75 % of its 2 h window, 14:30) of the first twelve
STEPS = 4 * CASES + 12
#: from the last report to the restart
OUTAGE = timedelta(hours=4, minutes=41)
#: residents (person id, micro-grid) the reports come from, in turn
REPORTERS = [("liu_nainai", "M01"), ("huang", "M02"), ("ma", "M03"), ("tom", "M04")]
#: a step's outbox key: the clock's chat, the case, the kind and instant of the step
KEY = re.compile(r"^gridbot:clock:clock:(\d+):(\w+):(.+):\d+\.\d+$")


@pytest.fixture
def config() -> Config:
    # Sixty reports in an hour from four people, the texts alike: each its own case.
    return every_report_a_case()


async def report_many(bot: Bot) -> None:
    for n in range(CASES):
        person_id, microgrid = REPORTERS[n % len(REPORTERS)]
        outcome = await bot.demo.engine.handle(Incoming(
            platform="console", chat_id=f"group:{microgrid}", chat_kind=ChatKind.GROUP,
            sender_id=person_id, sender_name=person_id, text=f"报事 楼道灯坏了 ({n})",
            message_id=f"r{n}"))
        assert outcome is Outcome.HANDLED
        bot.demo.clock.advance(timedelta(minutes=1))
    await bot.demo.sender.drain()
    bot.demo.clock.advance(OUTAGE)


def rows(bot: Bot, statement: str) -> list[tuple]:
    with sqlite3.connect(bot.path) as db:
        return db.execute(statement).fetchall()


def steps_queued(bot: Bot) -> list[tuple[int, str, datetime]]:
    """(case, kind, instant) of each step that queued messages, in the order queued."""
    found = []
    for (key,) in rows(bot, "SELECT dedup_key FROM outbox ORDER BY id"):
        if (match := KEY.match(key)) is not None:
            step = (int(match[1]), match[2], datetime.fromisoformat(match[3]))
            if step not in found:
                found.append(step)
    return found


def climbs(bot: Bot) -> dict[int, list[int]]:
    """Each case's escalations, as the levels it went to, in order."""
    found: dict[int, list[int]] = collections.defaultdict(list)
    for number, level in rows(bot, "SELECT case_number, json_extract(data, '$.to_level')"
                                   " FROM case_events WHERE kind = 'escalated' ORDER BY id"):
        found[number].append(level)
    return dict(found)


async def test_a_backlog_is_stepped_in_deadline_order_several_steps_a_transaction(
        bot: Bot, traced: list[str]) -> None:
    await report_many(bot)
    traced.clear()
    steps = await DeadlineSweep(bot.demo.engine).run_due(bot.now)
    begins = sum(s.lstrip().upper().startswith("BEGIN") for s in traced)
    assert steps == STEPS
    assert begins <= steps // STEPS_PER_TRANSACTION + 2, (steps, begins)
    # In deadline order across all cases, not case by case.
    queued = steps_queued(bot)
    instants = [at for _, _, at in queued]
    assert instants == sorted(instants)
    assert len({number for number, _, _ in queued[:CASES]}) > 1
    assert [n for n, _, _ in queued[:3]] == [1, 2, 3]
    # Each step's messages queued once: every case climbed twice, once to each level.
    assert climbs(bot) == {n: [1, 2] for n in range(1, CASES + 1)}
    messages = rows(bot, "SELECT chat_id, text FROM outbox WHERE dedup_key LIKE 'gridbot:%'")
    assert len(messages) == len(set(messages))
    # Nothing is due any more, and a second run finds nothing.
    assert await DeadlineSweep(bot.demo.engine).run_due(bot.now) == 0


def damage_person(bot: Bot, person_id: str, role: str = "bogus") -> None:
    """Give a person a role that does not exist behind the bot's back, as a careless edit
    would: reading them then raises, so every step that reads them does."""
    with sqlite3.connect(bot.path) as db:
        db.execute("UPDATE people SET role = ? WHERE id = ?", (role, person_id))


async def test_a_step_that_raises_is_put_off_alone_and_the_others_commit(
        bot: Bot, traced: list[str], caplog: pytest.LogCaptureFixture) -> None:
    await report_many(bot)
    damage_person(bot, "li")  # M02's steward: the M02 cases cannot climb
    traced.clear()
    with caplog.at_level(logging.ERROR, logger="gridbot.escalation"):
        steps = await DeadlineSweep(bot.demo.engine).run_due(bot.now)
    begins = sum(s.lstrip().upper().startswith("BEGIN") for s in traced)
    assert begins <= steps // STEPS_PER_TRANSACTION + 2, (steps, begins)
    m02 = [n for n in range(1, CASES + 1) if REPORTERS[(n - 1) % len(REPORTERS)][1] == "M02"]
    climbed = climbs(bot)
    assert sorted(climbed) == [n for n in range(1, CASES + 1) if n not in m02]
    assert all(levels == [1, 2] for levels in climbed.values())
    failed = {int(n) for n in re.findall(r"deadline step of #(\d+) failed", caplog.text)}
    assert failed == set(m02)
    assert "ValueError" in caplog.text
    # put off five minutes, nothing of the failed step kept
    later = (bot.now + timedelta(minutes=5)).isoformat()
    wakes = rows(bot, "SELECT DISTINCT wake_at FROM cases WHERE microgrid = 'M02'")
    assert [datetime.fromisoformat(w) for (w,) in wakes] == [datetime.fromisoformat(later)]
    assert rows(bot, "SELECT COUNT(*) FROM outbox WHERE case_number IN "
                     f"({', '.join(map(str, m02))}) AND dedup_key LIKE 'gridbot:%'") == [(0,)]
    # Mended: five minutes later they climb too, each once per level.
    damage_person(bot, "li", "steward")
    bot.demo.clock.advance(timedelta(minutes=5))
    assert await DeadlineSweep(bot.demo.engine).run_due(bot.now) >= 2 * len(m02)
    assert climbs(bot) == {n: [1, 2] for n in range(1, CASES + 1)}


async def test_a_restart_mid_way_and_two_workers_at_once_send_nothing_twice(
        bot: Bot, config: Config) -> None:
    await report_many(bot)
    # A worker is stopped in the middle of its second transaction (cancelled, as at a
    # shutdown): that transaction is rolled back whole, the first one stays.
    loop = asyncio.get_running_loop()
    stopped = asyncio.create_task(DeadlineSweep(bot.demo.engine).run_due(bot.now))
    savepoints = 0

    def stop_in_the_second(statement: str) -> None:
        nonlocal savepoints
        savepoints += statement.startswith("SAVEPOINT")
        if savepoints == STEPS_PER_TRANSACTION + 20:
            loop.call_soon_threadsafe(stopped.cancel)

    db = bot.demo.store._require()
    await db.set_trace_callback(stop_in_the_second)
    with pytest.raises(asyncio.CancelledError):
        await stopped
    await db.set_trace_callback(None)
    assert 0 < sum(map(len, climbs(bot).values())) < 2 * CASES  # the first 50 steps
    # Restarted, a worker stops after 25 steps of its second transaction...
    first = await DeadlineSweep(bot.demo.engine, max_steps=STEPS_PER_TRANSACTION + 25) \
        .run_due(bot.now)
    assert first == STEPS_PER_TRANSACTION + 25
    # ...and two workers (two processes on the same file) then share what is left.
    other_store = SQLiteStore(str(bot.path))
    await other_store.open()
    try:
        other = Engine(config, other_store, bot.demo.clock)
        await other.start()
        sweeps = [DeadlineSweep(bot.demo.engine), DeadlineSweep(other)]
        done = await asyncio.gather(*(s.run_due(bot.now) for s in sweeps))
        # together, the steps one sweep takes alone (the first test), none twice. The
        # stopped sweep kept whole transactions only: its first, and its second too when
        # the stop reached it only at its COMMIT (a loaded machine: the SAVEPOINTs run on
        # the loop's thread without yielding to it, so the cancel may land that late)
        stopped_took = STEPS - first - sum(done)
        assert stopped_took in (STEPS_PER_TRANSACTION, 2 * STEPS_PER_TRANSACTION)
        assert await sweeps[1].run_due(bot.now) == 0
    finally:
        await other_store.close()
    # Every case climbed once to each level; every step's messages were queued once
    # and are sent once.
    assert climbs(bot) == {n: [1, 2] for n in range(1, CASES + 1)}
    queued = steps_queued(bot)
    assert len(queued) == len(set(queued))
    await bot.demo.sender.drain()
    sent = collections.Counter((d.message.chat_id, d.message.text)
                               for d in bot.demo.console.delivered)
    assert [key for key, n in sent.items() if n > 1] == []
    assert rows(bot, "SELECT DISTINCT status FROM outbox") == [("sent",)]


# -- PostgreSQL: two workers' batches side by side ---------------------------------------------

PG_CASES = 120


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres.fresh_schema() as schema:
        yield postgres.url_for(schema)


async def pg_backlog(store: PostgresStore) -> tuple[list[int], list[int]]:
    """``PG_CASES`` cases whose claim windows ran out a second apart, reminded already:
    (M01's, M02's)."""
    m01, m02 = [], []
    async with store.transaction() as tx:
        for person_id in ("zhang", "li", "wang"):
            await tx.save_account(Account(platform="console", user_id=person_id,
                                          display_name=person_id, person_id=person_id,
                                          private_chat_id=f"dm:{person_id}"), T0)
        for n in range(PG_CASES):
            microgrid, steward = ("M02", "li") if n % 10 == 3 else ("M01", "zhang")
            claim_by = T0 + timedelta(hours=2, seconds=n)
            case = await tx.new_case(make_case(
                microgrid=microgrid, assignee_id=steward, origin_chat_id=f"group:{microgrid}",
                window_start=T0, reminded_at=claim_by - timedelta(minutes=1), claim_by=claim_by,
                wake_at=claim_by))
            (m02 if microgrid == "M02" else m01).append(case.number)
    return m01, m02


@pytest.mark.postgresql
async def test_on_postgresql_two_workers_share_a_backlog_and_a_broken_case_waits(
        pg_url: str, config: Config, caplog: pytest.LogCaptureFixture) -> None:
    clock = VirtualClock(T0 + timedelta(hours=2, minutes=5))
    stores = [PostgresStore(pg_url, pool_size=2) for _ in range(2)]
    for store in stores:
        await store.open()
    try:
        engines = [Engine(config, store, clock) for store in stores]
        for engine in engines:
            await engine.start()
        m01, m02 = await pg_backlog(stores[0])
        schema = pg_url.rsplit("schema=", 1)[1]
        postgres.sql(schema, "UPDATE people SET role = 'bogus' WHERE id = 'li'")
        # Two workers at once: each locks the cases it takes (FOR UPDATE SKIP LOCKED), so
        # they share the backlog; a broken case is rolled back to its savepoint alone.
        with caplog.at_level(logging.ERROR, logger="gridbot.escalation"):
            done = await asyncio.gather(*(DeadlineSweep(e).run_due(clock.now())
                                          for e in engines))
        assert sum(done) == PG_CASES
        climbed = dict(postgres.sql(schema, "SELECT case_number, COUNT(*) FROM case_events"
                                            " WHERE kind = 'escalated' GROUP BY 1"))
        assert climbed == {n: 1 for n in m01}
        failed = {int(n) for n in re.findall(r"deadline step of #(\d+) failed", caplog.text)}
        assert failed == set(m02)
        wakes = postgres.sql(schema, "SELECT DISTINCT wake_at FROM cases WHERE"
                                     " microgrid = 'M02'")
        assert wakes == [(clock.now() + timedelta(minutes=5),)]
        # Each escalation told the grid leader, the steward and the reporter's group once.
        queued = postgres.sql(schema, "SELECT case_number, chat_id FROM outbox")
        assert len(queued) == len(set(queued)) == 3 * len(m01)
        assert {c for c, _ in queued} == set(m01)
        # Run again (both): nothing is due, nothing is queued twice.
        assert [await DeadlineSweep(e).run_due(clock.now()) for e in engines] == [0, 0]
        assert len(postgres.sql(schema, "SELECT id FROM outbox")) == 3 * len(m01)
    finally:
        for store in stores:
            await store.close()
