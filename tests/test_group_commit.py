"""Group commit at the intake (issue 22, item 2): messages that arrive together are
handled in one transaction, each in a savepoint, and every caller hears its own outcome
only once that transaction has committed.

First the queue on its own (:class:`gridbot.burst.GroupCommit`: batches, the limit,
cancellation, a batch that raises), then the engine behind :class:`EngineIntake` on the
demo's wiring (a message that raises, a duplicate and a refusal inside a batch; one
``BEGIN`` for a batch, seen in SQLite's own trace), then Telegram: one ``getUpdates``
batch committed together, and a burst of webhook requests on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from telegram import Update

from gridbot.adapters.telegram.adapter import _runs
from gridbot.burst import GroupCommit
from gridbot.config import Config
from gridbot.domain import ChatKind, Incoming, Outcome, Outgoing
from gridbot.engine import EngineIntake
from tests import postgres
from tests.conftest import Bot, every_report_a_case, incoming
from tests.fake_telegram import FakeTelegram
from tests.telegram_harness import CHEN, GROUP_ID, LIU, SECRET, World, bound, start_world
from tests.test_set_aside import damage, kept


# -- the queue -------------------------------------------------------------------------------
class Batches:
    """What a GroupCommit runs: records each batch; ``gate`` holds a batch until set."""

    def __init__(self) -> None:
        self.seen: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.started = asyncio.Event()
        self.fail: Exception | None = None

    async def __call__(self, items: Sequence[int]) -> list[int]:
        self.seen.append(list(items))
        self.started.set()
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return [i * 10 for i in items]


async def test_a_lone_item_goes_at_once_and_a_burst_goes_together() -> None:
    run = Batches()
    commits = GroupCommit(run, limit=100)
    assert await commits.one(1) == 10
    assert run.seen == [[1]]
    results = await asyncio.gather(*(commits.one(i) for i in range(2, 7)))
    assert results == [20, 30, 40, 50, 60]  # each caller its own, in order
    assert run.seen == [[1], [2, 3, 4, 5, 6]]
    assert (commits.batches, commits.items) == (2, 6)
    await commits.drain()


async def test_what_queues_while_a_batch_runs_is_the_next_batch_up_to_the_limit() -> None:
    run = Batches()
    run.gate.clear()
    commits = GroupCommit(run, limit=3)
    first = asyncio.create_task(commits.one(0))
    await run.started.wait()  # the first is under way, alone
    later = [asyncio.create_task(commits.one(i)) for i in range(1, 8)]
    many = asyncio.create_task(commits.many([8, 9]))
    await asyncio.sleep(0)
    run.gate.set()
    assert await first == 0
    assert [await t for t in later] == [10, 20, 30, 40, 50, 60, 70]
    assert await many == [80, 90]
    assert run.seen == [[0], [1, 2, 3], [4, 5, 6], [7, 8, 9]]


async def test_a_caller_cancelled_while_queued_leaves_nothing_and_one_in_a_batch_is_done(
        ) -> None:
    run = Batches()
    run.gate.clear()
    commits = GroupCommit(run)
    running = asyncio.create_task(commits.one(1))
    await run.started.wait()
    queued = asyncio.create_task(commits.one(2))
    kept_waiting = asyncio.create_task(commits.one(3))
    await asyncio.sleep(0)
    queued.cancel()  # not taken yet: dropped, never run
    running.cancel()  # its batch is under way: it finishes for the others' sake
    with pytest.raises(asyncio.CancelledError):
        await queued
    with pytest.raises(asyncio.CancelledError):
        await running
    run.gate.set()
    assert await kept_waiting == 30
    assert run.seen == [[1], [3]]  # each once, the cancelled queued one never
    await commits.drain()


async def test_an_exception_in_a_batch_reaches_every_caller_in_it() -> None:
    run = Batches()
    run.gate.clear()
    commits = GroupCommit(run)
    first = asyncio.create_task(commits.one(1))
    await run.started.wait()
    second, third = (asyncio.create_task(commits.one(i)) for i in (2, 3))
    await asyncio.sleep(0)
    run.fail = RuntimeError("the disk is gone")
    run.gate.set()
    for task in (first, second, third):
        with pytest.raises(RuntimeError, match="the disk is gone"):
            await task
    run.fail = None
    assert await commits.one(4) == 40  # the queue goes on
    assert run.seen == [[1], [2, 3], [4]]


async def test_draining_waits_for_the_batch_in_hand() -> None:
    run = Batches()
    run.gate.clear()
    commits = GroupCommit(run)
    waiting = asyncio.create_task(commits.one(5))
    await run.started.wait()
    drained = asyncio.create_task(commits.drain())
    await asyncio.sleep(0.01)
    assert not drained.done()
    run.gate.set()
    await drained
    assert waiting.done() and waiting.result() == 50


# -- the engine behind the intake -------------------------------------------------------------
@pytest.fixture
def config() -> Config:
    return every_report_a_case()


def transactions(statements: list[str]) -> list[list[str]]:
    """A trace cut at each BEGIN (what comes before the first is left out)."""
    found: list[list[str]] = []
    for statement in statements:
        word = statement.lstrip().split(None, 1)[0].upper()
        if word == "BEGIN":
            found.append([])
        elif found:
            found[-1].append(" ".join(statement.split()))
    return found


def handling(statements: list[str]) -> list[list[str]]:
    """The transactions that marked messages handled."""
    return [t for t in transactions(statements) if any("INTO inbox" in s for s in t)]


def said(text: str, message_id: str, *, sender: str = "liu_nainai", name: str = "刘奶奶",
         chat: str = "group:M01") -> Incoming:
    kind = ChatKind.GROUP if chat.startswith("group:") else ChatKind.PRIVATE
    return incoming(text, sender=sender, name=name, chat=chat, message_id=message_id,
                    kind=kind)


def answers(out: list[Outgoing], chat: str) -> list[str | None]:
    """Which message each answer in ``chat`` replies to, in the order they were sent."""
    return [m.reply_to for m in out if m.chat_id == chat]


async def test_a_batch_commits_the_others_and_sets_aside_the_one_that_raises(
        bot: Bot, traced: list[str]) -> None:
    await bot.say("刘奶奶", "报事 3幢楼道灯坏了")
    damage(bot)  # showing case 1's history now raises, as a damaged row would
    intake = EngineIntake(bot.demo.engine)
    batch = [
        said("报事 5幢门禁坏了", "b1"),
        said("进度 1", "b2"),  # raises inside the handler
        said("报事 车棚漏雨", "b3", sender="chen", name="陈先生"),
        said("报事 5幢门禁坏了", "b1"),  # the platform delivered b1 twice
        said("/frobnicate", "b4", chat="dm:liu_nainai"),  # refused: no such command
        said("/help", "b5", chat="dm:liu_nainai"),
        said("报事 垃圾桶满了", "b6", sender="chen", name="陈先生"),
    ]
    traced.clear()
    outcomes = await intake.handle_many(batch)
    assert outcomes == [Outcome.HANDLED, Outcome.SET_ASIDE, Outcome.HANDLED, Outcome.DUPLICATE,
                        Outcome.REFUSED, Outcome.HANDLED, Outcome.HANDLED]
    together, *alone = handling(traced)
    # one transaction kept b1 b3 b4 b5 b6: b4's refusal undid its handler's work (back to
    # its savepoint) and kept the answer; b2 was rolled back to its savepoint and then
    # handled on its own
    assert sum("ROLLBACK TO" in s for s in together) == 2
    assert sum("INTO inbox" in s for s in together) == 8  # b1 twice, b4 twice
    assert len(alone) == 1, alone
    await bot.demo.sender.drain()
    out = bot._new()
    assert answers(out, "group:M01") == ["b1", "b3", "b6", "b2"]  # b2's apology last
    [sorry] = [m.text for m in out if m.reply_to == "b2"]
    assert "保存" in sorry and "不用重发" in sorry  # set aside exactly as alone
    [row] = await kept(bot)
    assert row.attempts == 1 and row.incoming.message_id == "b2"
    assert answers(out, "dm:liu_nainai") == ["b4", "b5"]  # in the order they came
    [refusal] = [m.text for m in out if m.reply_to == "b4"]
    assert "/frobnicate" in refusal and "不认识的命令" in refusal
    assert [c.text for c in [await bot.case(n) for n in (2, 3, 4)] if c] == [
        "5幢门禁坏了", "车棚漏雨", "垃圾桶满了"]
    assert await bot.case(5) is None  # the duplicate made nothing
    # the platform delivers the whole batch again: nothing twice
    again = await intake.handle_many(batch)
    assert again == [Outcome.DUPLICATE, Outcome.SET_ASIDE, Outcome.DUPLICATE,
                     Outcome.DUPLICATE, Outcome.DUPLICATE, Outcome.DUPLICATE,
                     Outcome.DUPLICATE]
    await bot.demo.sender.drain()
    assert bot._new() == []


async def test_what_a_batch_changes_is_seen_by_the_messages_after_it(bot: Bot) -> None:
    """Who is on duty, read once for a batch (one transaction), is read again once a
    message in it changes: reports before the steward goes off duty are hers, those
    after it go to her backup, and to her again once she is back, all in one batch."""
    def steward(text: str, n: str) -> Incoming:
        return incoming(text, sender="zhang", chat="dm:zhang", kind=ChatKind.PRIVATE,
                        name="张阿姨", message_id=n)

    outcomes = await bot.demo.engine.handle_many([
        incoming("报事 楼道灯坏了", message_id="a"),
        steward("下班", "b"),
        incoming("报事 垃圾没人收", message_id="c"),
        incoming("报事 消防通道被车挡住了", message_id="d"),
        steward("值班", "e"),
        incoming("报事 楼上噪音太大", message_id="f"),
    ])
    assert outcomes == [Outcome.HANDLED] * 6
    assert [(await bot.case(n)).assignee_id for n in (1, 2, 3, 4)] == [
        "zhang", "li", "li", "zhang"]


async def test_a_burst_of_n_reports_is_one_transaction(bot: Bot, traced: list[str]) -> None:
    people = [p for p in bot.demo.config.people if p.role.value == "resident"]
    reports = [Incoming(platform="console", chat_id=f"group:{p.unit}",
                        chat_kind=ChatKind.GROUP, sender_id=p.id, sender_name=p.name,
                        text=f"报事 第{n}号楼道灯坏了", message_id=f"burst-{n}")
               for n, p in enumerate(people * 3)]
    assert len(reports) >= 6
    kicks: list[None] = []
    intake = EngineIntake(bot.demo.engine, kick=lambda: kicks.append(None))
    traced.clear()
    # Each as its own caller (a webhook request each), all at once.
    outcomes = await asyncio.gather(*(intake.handle(r) for r in reports))
    assert outcomes == [Outcome.HANDLED] * len(reports)
    begins = sum(s.lstrip().upper().startswith("BEGIN") for s in traced)
    assert begins == 1, "\n".join(traced)
    [together] = handling(traced)
    assert sum("INTO inbox" in s for s in together) == len(reports)
    assert (intake.commits.batches, intake.commits.items) == (1, len(reports))
    assert len(kicks) == 1  # the sender woken once, after the commit
    await bot.demo.sender.drain()
    out = bot._new()
    for report in reports:  # every one answered, once
        assert answers(out, report.chat_id).count(report.message_id) == 1


async def test_a_cancelled_caller_loses_nothing_and_doubles_nothing(bot: Bot) -> None:
    """A webhook request that gives up (its client went away) while its message waits
    leaves it untouched; one that gives up while its batch runs leaves it committed.
    Either way the platform delivers it again (it was never confirmed), and it is
    handled once."""
    intake = EngineIntake(bot.demo.engine)
    # Another connection holds the write lock: the batch waits on the database (its
    # BEGIN, in aiosqlite's thread) however few statements the report takes.
    other = sqlite3.connect(bot.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    running = asyncio.create_task(intake.handle(said("报事 5幢门禁坏了", "c1")))
    await asyncio.sleep(0)  # queued; the batch starts on the next turn
    await asyncio.sleep(0)  # under way, waiting on the database
    queued = asyncio.create_task(intake.handle(said("报事 车棚漏雨", "c2")))
    await asyncio.sleep(0)
    assert intake.commits.batches == 1 and not running.done()
    running.cancel()
    queued.cancel()
    other.execute("COMMIT")
    other.close()
    await intake.drain()
    assert running.cancelled() and queued.cancelled()
    assert (intake.commits.batches, intake.commits.items) == (1, 1)  # c2 was dropped
    again = await asyncio.gather(intake.handle(said("报事 5幢门禁坏了", "c1")),
                                 intake.handle(said("报事 车棚漏雨", "c2")))
    assert again == [Outcome.DUPLICATE, Outcome.HANDLED]
    await bot.demo.sender.drain()
    assert answers(bot._new(), "group:M01") == ["c1", "c2"]  # each answered once
    assert [c.text for c in [await bot.case(n) for n in (1, 2, 3)] if c] == [
        "5幢门禁坏了", "车棚漏雨"]


# -- Telegram: one getUpdates batch ------------------------------------------------------------
async def traced_runtime(w: World) -> list[str]:
    """Every statement the runtime's store runs from now on, as SQLite traces it."""
    statements: list[str] = []
    await w.runtime.store._require().set_trace_callback(  # type: ignore[attr-defined]
        statements.append)
    return statements


#: every report a case (no limits, no duplicates offered) and no quiet hours
PLAIN: tuple[tuple[str, str], ...] = (("reports_per_person = 10", "reports_per_person = 0"),
         ("duplicate_hours = 72", "duplicate_hours = 0"),
         ('quiet_hours = "22:00-07:00"', 'quiet_hours = ""'))


@pytest.fixture
async def polled(database: Path, telegram: FakeTelegram) -> AsyncIterator[World]:
    w = await start_world(database.parent, telegram, "polling", replace=PLAIN)
    yield w
    await w.runtime.stop()


def offsets(w: World) -> list[int]:
    return [int(p.get("offset") or 0) for m, p in w.bot.calls if m == "getUpdates"]


def test_plain_messages_go_together_and_presses_and_migrations_alone() -> None:
    chat = {"id": GROUP_ID, "type": "supergroup", "title": "群"}

    def message(n: int, **more: Any) -> dict[str, Any]:
        return {"update_id": n, "message": {"message_id": n, "date": 1, "chat": chat,
                                            "from": LIU, "text": "报事", **more}}

    press = {"update_id": 3, "callback_query": {"id": "q", "from": LIU, "chat_instance": "1",
                                                "data": "/claim 1"}}
    updates = [Update.de_json(u, None) for u in (
        message(1), message(2), press, message(4),
        message(5, migrate_to_chat_id=-1009), message(6), message(7))]
    assert [[u.update_id for u in run] for run in _runs(updates)] == [
        [1, 2], [3], [4], [5], [6, 7]]


async def test_one_getupdates_batch_is_one_transaction(polled: World) -> None:
    w = await bound(polled)
    await w.by_hand()  # nothing else writes meanwhile (the test drains the outbox)
    statements = await traced_runtime(w)
    users = [{"id": 3000 + n, "is_bot": False, "first_name": f"居民{n}"} for n in range(12)]
    said = [w.bot.say(w.group, user, f"报事 {n}号车棚的灯坏了") for n, user in enumerate(users)]
    last = w.bot.updates[-1]["update_id"]
    for message in said:
        await w.handled(GROUP_ID, message["message_id"])
    await w.fake.until(lambda: last + 1 in offsets(w))  # confirmed past all of them
    [together] = handling(statements)  # one transaction for the whole batch
    assert sum("INTO inbox" in s for s in together) == len(said)
    assert w.rows("SELECT COUNT(*) FROM cases")[0][0] == len(said)
    await w.drained()
    for message in said:  # each report answered once, in the group
        assert [s.reply_to for s in w.bot.sent_to(GROUP_ID)].count(message["message_id"]) == 1
    await w.fake.until(lambda: not w.bot.updates)


DAMAGE = "UPDATE cases SET extension = '{damaged' WHERE number = 1"


async def test_a_batch_with_a_message_that_fails_still_commits_the_others(
        polled: World) -> None:
    w = await bound(polled)
    await w.said(w.group, LIU, "报事 楼道灯坏了")
    await w.write(DAMAGE)  # case 1 can no longer be read: 进度 1 raises, every time
    await w.by_hand()
    statements = await traced_runtime(w)
    before = len(w.bot.sent)
    shed = w.bot.say(w.group, CHEN, "报事 车棚漏雨")
    status = w.bot.say(w.group, LIU, "进度 1")
    rubbish = w.bot.say(w.group, CHEN, "报事 垃圾桶满了没人清")
    question = w.bot.say(w.bot.private(CHEN), CHEN, "/help")
    last = w.bot.updates[-1]["update_id"]
    await w.fake.until(lambda: last + 1 in offsets(w))  # past all four, the failing one too
    together, *_ = handling(statements)  # the batch, then the one that raised, alone
    assert sum("INTO inbox" in s for s in together) == 4  # 3 kept, 1 rolled back
    assert sum("ROLLBACK TO" in s for s in together) == 1
    assert [c[0] for c in w.rows("SELECT text FROM cases ORDER BY number")] == [
        "楼道灯坏了", "车棚漏雨", "垃圾桶满了没人清"]
    assert w.rows("SELECT message_id, attempts FROM set_aside") == [
        (str(status["message_id"]), 1)]
    await w.drained()
    sent = w.bot.sent[before:]
    assert [s.reply_to for s in sent if s.chat_id == GROUP_ID] == [
        shed["message_id"], rubbish["message_id"], status["message_id"]]
    assert len([s for s in sent if s.chat_id == CHEN["id"]
                and s.reply_to == question["message_id"]]) == 1
    await w.fake.until(lambda: not w.bot.updates)  # Telegram was told all are done


# -- a burst of webhook requests ------------------------------------------------------------------
BURST = 40


Rows = Callable[[str], list[tuple[Any, ...]]]


@pytest.fixture(params=["sqlite", "postgresql"])
async def hooked(request: pytest.FixtureRequest, database: Path,
                 telegram: FakeTelegram) -> AsyncIterator[tuple[World, Rows]]:
    """The runtime in webhook mode on SQLite or PostgreSQL, its group bound to M01, and
    a way to read its database on a connection of the test's own."""
    folder = database.parent
    replace = PLAIN
    schema = None
    if request.param == "postgresql":
        postgres.require()
        schema = postgres.new_schema()
        replace += ((f'url = "sqlite:///{folder}/gridbot.db"',
                     f'url = "{postgres.url_for(schema)}"'),)

    def rows(sql: str) -> list[tuple[Any, ...]]:
        if schema is not None:
            return postgres.sql(schema, sql)
        with sqlite3.connect(folder / "gridbot.db") as db:
            return db.execute(sql).fetchall()

    w = await start_world(folder, telegram, "webhook", replace=replace)
    try:
        await w.runtime.intake.bind_groups("telegram", {str(GROUP_ID): "M01"})
        yield w, rows
    finally:
        await w.runtime.stop()
        if schema is not None:
            postgres.drop_schema(schema)


async def test_a_webhook_burst_is_answered_each_once_committed(
        hooked: tuple[World, Rows]) -> None:
    w, rows = hooked
    intake = w.runtime.intake
    url = w.runtime.http.url + "/telegram/webhook"  # type: ignore[union-attr]
    texts = [f"{n}号门口的路灯不亮了" for n in range(BURST)]
    updates = [{"update_id": 5000 + n, "message": {
        "message_id": 9000 + n, "date": 1, "chat": w.group.json(),
        "from": {"id": 4000 + n, "is_bot": False, "first_name": f"居民{n}"},
        "text": f"报事 {text}"}} for n, text in enumerate(texts)]

    def cases(text: str) -> int:
        return int(rows(f"SELECT COUNT(*) FROM cases WHERE text = '{text}'")[0][0])

    found: dict[int, int] = {}

    async def post(client: httpx.AsyncClient, n: int) -> int:
        answer = await client.post(url, json=updates[n],
                                   headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        # the 200 came: the case is there, for anyone who looks
        found[n] = await asyncio.to_thread(cases, texts[n])
        return answer.status_code

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=BURST),
                                 timeout=30) as client:
        codes = await asyncio.gather(*(post(client, n) for n in range(BURST)))
        assert codes == [200] * BURST
        assert found == {n: 1 for n in range(BURST)}
        if intake.coalesce:  # SQLite: coalesced
            assert intake.commits.items == BURST
            assert intake.commits.batches < BURST
        else:  # PostgreSQL: each its own transaction, side by side
            assert intake.commits.items == 0
        # Telegram delivers some of them again: nothing is doubled
        again = await asyncio.gather(*(post(client, n) for n in range(0, BURST, 5)))
        assert again == [200] * len(again)
    assert [cases(text) for text in texts] == [1] * BURST
    # every report answered in the group once (Telegram's 20 a minute to a group sends
    # them over two minutes: the outbox is what says so now)
    answers = rows(f"SELECT reply_to, COUNT(*) FROM outbox WHERE chat_id = '{GROUP_ID}'"
                   " GROUP BY reply_to")
    assert sorted(answers) == [(str(9000 + n), 1) for n in range(BURST)]
