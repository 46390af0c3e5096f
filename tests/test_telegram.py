"""Telegram end to end: the runtime ``gridbot run`` builds, against a local fake Bot API.

Nothing of gridbot's or python-telegram-bot's is mocked: the only fake is the Bot API
server in :mod:`tests.fake_telegram`, reached through ``[telegram] base_url``. The
runtime keeps a SQLite file; the clock runs at real speed from a Monday morning (so
quiet hours never hold a notification back) and can be moved forward to make retries
due without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import signal
import socket
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from telegram import Message

from gridbot.adapters.telegram.adapter import incoming_message
from gridbot.config import load_config
from gridbot.domain import Outgoing, Status
from gridbot.errors import StoreError
from gridbot.runtime import Runtime
from tests.fake_telegram import FakeBot, FakeTelegram, Sent
from tests.telegram_harness import (
    CHEN,
    GROUP_ID,
    LIU,
    PUBLIC_URL,
    SECRET,
    TOKEN,
    ZHANG,
    ZHOU,
    World,
    bound,
    gridbot_process,
    start_world,
    write_config,
)
from tests.test_faults import WriteLock

# as the Telegram adapter does when built (pytest resets filters for each test)
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after:telegram.warnings.PTBDeprecationWarning")


# -- the whole story, polling and webhook ---------------------------------------------------
async def test_report_claim_resolve_rate(telegram_world: World) -> None:
    w = await bound(telegram_world)
    liu_dm, zhang_dm = w.bot.private(LIU), w.bot.private(ZHANG)

    start = await w.said(liu_dm, LIU, "/start")
    assert "认证" in start[0].plain  # /start in private explains how to link

    report = w.bot.say(w.group, LIU, "报事 3幢楼道灯坏了，晚上很黑")
    await w.handled(GROUP_ID, report["message_id"])
    sent = await w.settled(0)
    ack = [s for s in w.bot.sent_to(GROUP_ID) if "#1" in s.plain]
    assert len(ack) == 1 and ack[0].reply_to == report["message_id"]
    assert ack[0].reply_markup is None  # no buttons in groups
    notice = [s for s in sent if s.chat_id == ZHANG["id"] and s.buttons]
    assert len(notice) == 1 and "3幢楼道灯坏了" in notice[0].plain
    assert notice[0].buttons == [(notice[0].buttons[0][0], "/claim 1")]

    claimed = await w.pressed(notice[0], "/claim 1", ZHANG)
    assert any(s.chat_id == ZHANG["id"] and "#1" in s.plain for s in claimed)
    assert w.bot.edits[-1] == (ZHANG["id"], notice[0].message_id, None)  # button spent
    case, _ = await w.case(1)
    assert case.status is Status.CLAIMED and case.assignee_id == "zhang"

    resolved = await w.said(zhang_dm, ZHANG, "/done 1 修好了，换了新灯泡")
    to_liu = [s for s in resolved if s.chat_id == LIU["id"]]
    assert len(to_liu) == 1 and "修好了" in to_liu[0].plain
    assert ("★★★★★", "/rate 1 5") in to_liu[0].buttons

    rated = await w.pressed(to_liu[0], "★★★★★", LIU)
    assert any(s.chat_id == LIU["id"] for s in rated)
    case, events = await w.case(1)
    assert case.status is Status.CLOSED and case.rating == 5
    kinds = [e.kind for e in events]
    for kind in ("reported", "assigned", "claimed", "resolved", "rated", "confirmed"):
        assert kind in kinds
    # the rate buttons are spent; the others stay (confirm would now say "closed")
    chat_id, message_id, markup = w.bot.edits[-1]
    assert (chat_id, message_id) == (LIU["id"], to_liu[0].message_id)
    left = [b["callback_data"] for row in markup["inline_keyboard"] for b in row]
    assert "/confirm 1" in left and not [d for d in left if d.startswith("/rate")]
    assert len(w.bot.answered) == 2
    assert {s.parse_mode for s in w.bot.sent} == {"HTML"}


# -- webhook security -----------------------------------------------------------------------
async def test_forged_webhook_is_refused_and_changes_nothing(webhook: World) -> None:
    w = await bound(webhook)
    before, sent = w.counts(), len(w.bot.sent)
    update = {"update_id": 999, "message": {
        "message_id": 77, "date": int(time.time()), "chat": w.group.json(), "from": CHEN,
        "text": "报事 伪造的消息"}}
    url = w.runtime.http.url + "/telegram/webhook"  # type: ignore[union-attr]
    async with httpx.AsyncClient() as client:
        wrong = await client.post(url, json=update,
                                  headers={"X-Telegram-Bot-Api-Secret-Token": "guess"})
        missing = await client.post(url, json=update)
        garbage = await client.post(url, content=b"{not json",
                                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        not_update = await client.post(url, json={"hello": "world"},
                                       headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        wrong_method = await client.get(url)
    assert (wrong.status_code, missing.status_code) == (403, 403)
    assert wrong.content == b"" and missing.content == b""
    assert (garbage.status_code, not_update.status_code) == (400, 400)
    assert wrong_method.status_code == 405
    await w.drained()  # whatever they could have queued has gone out by now
    assert w.counts() == before and len(w.bot.sent) == sent


async def test_webhook_redelivery_is_handled_once(webhook: World) -> None:
    w = await bound(webhook)
    message = w.bot.say(w.group, LIU, "报事 电梯坏了")
    await w.handled(GROUP_ID, message["message_id"])
    first = await w.settled(0)
    url = w.runtime.http.url + "/telegram/webhook"  # type: ignore[union-attr]
    async with httpx.AsyncClient() as client:
        again = await client.post(url, json={"update_id": 1, "message": message},
                                  headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert again.status_code == 200
    assert await w.settled(len(w.bot.sent)) == []
    assert w.rows("SELECT COUNT(*) FROM cases")[0][0] == 1
    assert len(first) == len(w.bot.sent)
    assert w.bot.calls[0][0] == "getMe" and ("setWebhook" in [c[0] for c in w.bot.calls])
    assert w.bot.allowed_updates == ["message", "callback_query"]


# -- polling: at least once, each update handled once ---------------------------------------
def offsets(bot: FakeBot) -> list[int]:
    """The offset of every getUpdates call so far."""
    return [int(p.get("offset") or 0) for m, p in bot.calls if m == "getUpdates"]


@contextlib.asynccontextmanager
async def locked(db: Path) -> AsyncIterator[None]:
    """Another connection holds the database's write lock meanwhile; taken and let go off
    the event loop, where the bot may be inside a transaction that needs the loop to end."""
    lock = WriteLock(db, hold=120)
    await asyncio.to_thread(lock.__enter__)
    try:
        yield
    finally:
        await asyncio.to_thread(lock.__exit__)


async def impatient(w: World, ms: int = 50) -> None:
    """The bot's store gives up on another connection's write lock after ``ms`` (5 s in
    production), so a lock held longer fails its transactions (the store's StoreBusy).

    Set between two of the store's transactions: set beside one beginning on the loop's
    thread, it was undone (5 s waits then, and a test here timed out one run in two)."""
    await w.runtime.store.set_busy_timeout(ms)  # type: ignore[attr-defined]


@pytest.mark.slow(39)
async def test_polling_moves_past_an_update_only_once_it_is_committed(
        database: Path, telegram: FakeTelegram) -> None:
    w = await start_world(database.parent, telegram, "polling")
    try:
        await bound(w)
        w.runtime.adapters[0].update_retry = 0.05  # type: ignore[attr-defined]
        before = len(w.bot.sent)
        lamp = w.bot.say(w.group, LIU, "报事 楼道灯坏了")
        await w.handled(GROUP_ID, lamp["message_id"])
        await impatient(w)
        # The database itself fails (another process holds its write lock): a report and
        # a question behind it arrive in one batch meanwhile.
        async with locked(w.db):
            shed = w.bot.say(w.group, CHEN, "报事 车棚漏雨")
            shed_update = w.bot.updates[-1]["update_id"]
            question = w.bot.say(w.bot.private(CHEN), CHEN, "/help")
            # the failed update is fetched again and again; what follows it waits its turn
            await w.fake.until(lambda: offsets(w.bot).count(shed_update) >= 3, timeout=20)
            assert max(offsets(w.bot)) == shed_update
            assert not w.bot.sent_to(CHEN["id"])
            # the process stops (it could as well have died) while the update keeps
            # failing: Telegram still holds it and the one behind it, and only those
            await w.runtime.stop()
        assert [u["update_id"] for u in w.bot.updates] == [shed_update, shed_update + 1]
        assert w.rows("SELECT COUNT(*) FROM cases")[0][0] == 1
        assert w.rows("SELECT COUNT(*) FROM set_aside")[0][0] == 0  # nothing could be kept

        # the next start gets both again and handles each once
        w.runtime = Runtime(load_config(database.parent / "gridbot.toml"), clock=w.clock,
                            sleep=w.clock.sleep)
        await w.runtime.start()
        await w.handled(GROUP_ID, shed["message_id"])
        await w.handled(CHEN["id"], question["message_id"])
        sent = await w.settled(before)
        assert [c[0] for c in w.rows("SELECT text FROM cases ORDER BY number")] == [
            "楼道灯坏了", "车棚漏雨"]
        assert len(w.bot.sent_to(CHEN["id"])) == 1  # the answer to /help, once
        acks = [s for s in sent if s.chat_id == GROUP_ID and s.reply_to == shed["message_id"]]
        assert len(acks) == 1 and "#2" in acks[0].plain  # no apology: nothing had failed
        order = "SELECT rowid FROM inbox WHERE platform = 'telegram' AND chat_id = ? AND" \
            " message_id = ?"
        [(shed_row,)] = w.rows(order, str(GROUP_ID), str(shed["message_id"]))
        [(question_row,)] = w.rows(order, str(CHEN["id"]), str(question["message_id"]))
        assert shed_row < question_row  # in the order they were sent
        await w.fake.until(lambda: not w.bot.updates)  # all confirmed
    finally:
        await w.runtime.stop()


async def test_an_update_the_database_keeps_failing_is_given_up_and_the_rest_go_on(
        polling: World) -> None:
    w = await bound(polling)
    adapter = w.runtime.adapters[0]
    adapter.update_retry, adapter.update_attempts = 0.01, 3  # type: ignore[attr-defined]
    await impatient(w)
    async with locked(w.db):
        w.bot.say(w.group, CHEN, "报事 车棚漏雨")
        shed_update = w.bot.updates[-1]["update_id"]
        await w.fake.until(lambda: shed_update + 1 in offsets(w.bot), timeout=20)
    replies = await w.said(w.bot.private(CHEN), CHEN, "/help")
    assert [r.chat_id for r in replies if r.chat_id == CHEN["id"]] == [CHEN["id"]]
    assert offsets(w.bot).count(shed_update) == 3
    assert w.rows("SELECT COUNT(*) FROM cases")[0][0] == 0


# -- a message whose handling raises is set aside; the others do not wait ---------------------
DAMAGE = "UPDATE cases SET extension = '{damaged' WHERE number = 1"
REPAIR = "UPDATE cases SET extension = NULL WHERE number = 1"


async def test_a_message_that_raises_is_set_aside_and_the_rest_flow(telegram_world: World) -> None:
    w = await bound(telegram_world)
    await w.said(w.group, LIU, "报事 楼道灯坏了")
    await w.write(DAMAGE)  # a row the next command reads can no longer be read
    before = len(w.bot.sent)
    asked = time.monotonic()
    status = w.bot.say(w.group, LIU, "进度 1")  # raises inside the handler
    report = w.bot.say(w.group, CHEN, "报事 车棚漏雨")  # an unrelated report right behind it
    ack = await w.fake.until(lambda: [s for s in w.bot.sent[before:]
                                      if s.reply_to == report["message_id"]], timeout=10)
    waited = time.monotonic() - asked
    assert "#2" in ack[0].plain and waited < 5, waited  # not held up (184 s before)
    sent = await w.settled(before)
    [sorry] = [s for s in sent if s.reply_to == status["message_id"]]
    assert "保存" in sorry.plain and "不用重发" in sorry.plain  # kept, once
    [(platform, chat, message_id, attempts, error)] = w.rows(
        "SELECT platform, chat_id, message_id, attempts, error FROM set_aside")
    assert (platform, chat, message_id, attempts) == (
        "telegram", str(GROUP_ID), str(status["message_id"]), 1)
    assert "JSONDecodeError" in error
    assert w.rows("SELECT 1 FROM inbox WHERE message_id = ?", str(status["message_id"])) == []
    if telegram_world.runtime.adapters[0].settings.mode == "polling":  # type: ignore[attr-defined]
        await w.fake.until(lambda: not w.bot.updates)  # Telegram was told both are done
    else:
        assert [code for _, code in w.bot.deliveries] == [200] * len(w.bot.deliveries)
    async with httpx.AsyncClient() as client:
        health = (await client.get(w.runtime.http.url + "/healthz")).json()  # type: ignore[union-attr]
    assert health["set_aside"] == {"waiting": 1, "given_up": 0, "kept": []}

    # Someone repairs the row; a minute later the kept message is tried again, on its own.
    await w.write(REPAIR)
    before = len(w.bot.sent)
    w.clock.advance(timedelta(minutes=1))
    assert (await w.runtime.worker.run_due()).handled["set_aside"] == 1
    answer = [s for s in await w.settled(before) if s.reply_to == status["message_id"]]
    assert len(answer) == 1 and "#1" in answer[0].plain
    assert w.rows("SELECT COUNT(*) FROM set_aside")[0][0] == 0
    assert w.rows("SELECT 1 FROM inbox WHERE message_id = ?", str(status["message_id"]))
    # handled: another round tries nothing, and the message Telegram sent is done once
    assert (await w.runtime.worker.run_due()).handled["set_aside"] == 0


async def test_polling_rides_out_telegram_failing(polling: World) -> None:
    w = await bound(polling)
    w.runtime.adapters[0].fetch_retry = 0.05  # type: ignore[attr-defined]
    w.bot.fail("getUpdates", 500)  # the fetches after the one under way fail …
    w.bot.fail("getUpdates", 502)  # … the second with a proxy's HTML error page
    assert len(await w.said(w.bot.private(CHEN), CHEN, "/help")) == 1
    fetched = len(offsets(w.bot))
    assert len(await w.said(w.bot.private(CHEN), CHEN, "/help")) == 1
    assert len(offsets(w.bot)) - fetched >= 2 and not w.bot.failures["getUpdates"]


# -- delivery under pressure ---------------------------------------------------------------
async def test_429_and_5xx_still_deliver_each_message_once(polling: World) -> None:
    w = await bound(polling)
    w.bot.fail("sendMessage", 429, retry_after=30)
    w.bot.fail("sendMessage", 500)
    w.bot.fail("sendMessage", 502)
    before = len(w.bot.sent)
    message = w.bot.say(w.group, LIU, "报事 消防通道被电瓶车堵了")
    await w.handled(GROUP_ID, message["message_id"])
    for _ in range(8):  # each failure puts the message back by backoff or retry_after
        if len(w.bot.sent) - before >= 2:
            break
        w.clock.advance(timedelta(minutes=1))
        await w.drained()
    await w.settled(before)
    new = w.bot.sent[before:]
    assert len([s for s in new if s.chat_id == GROUP_ID]) == 1
    assert len([s for s in new if s.chat_id == ZHANG["id"]]) == 1
    attempts = [c for c in w.bot.calls if c[0] == "sendMessage"]
    assert len(attempts) - len(w.bot.sent) == 3
    errors = [r[0] for r in w.rows("SELECT error FROM outbox WHERE status = 'sent'")]
    assert errors.count("") == len(errors)  # a success clears the last error


async def test_retry_after_is_obeyed(polling: World) -> None:
    w = await bound(polling)
    w.bot.fail("sendMessage", 429, retry_after=600)
    message = w.bot.say(w.bot.private(CHEN), CHEN, "/help")
    await w.handled(CHEN["id"], message["message_id"])
    await w.fake.until(lambda: w.rows(
        "SELECT error FROM outbox WHERE chat_id = ? AND error LIKE '%retry after 600%'",
        str(CHEN["id"])))
    w.clock.advance(timedelta(minutes=5))  # 5 minutes is not 10: still held back
    await w.drained()
    assert w.bot.sent_to(CHEN["id"]) == []
    w.clock.advance(timedelta(minutes=6))
    w.runtime.kick()
    await w.fake.until(lambda: w.bot.sent_to(CHEN["id"]))


GROUP2_ID = -1001234500002


def sent_like(w: World, chat_id: int, words: str) -> list[Sent]:
    return [s for s in w.bot.sent_to(chat_id) if words in s.plain]


async def test_a_notice_whose_answer_came_too_late_is_uncertain_and_never_sent_twice(
        database: Path, telegram: FakeTelegram) -> None:
    w = await start_world(database.parent, telegram, "polling", read_timeout=0.5)
    try:
        await bound(w)
        second = w.bot.group(GROUP2_ID, "幸福里4-6幢 邻里群")
        await w.said(second, ZHOU, "/bind M02")
        # Telegram takes the notice for the first group but answers after the bot stopped
        # waiting (a read timeout: it arrived); the second group's first try meets a 500.
        w.bot.delay("sendMessage", 2.0, chat_id=GROUP_ID)
        w.bot.fail("sendMessage", 500, chat_id=GROUP2_ID)
        zhou_dm = w.bot.private(ZHOU)
        await w.said(zhou_dm, ZHOU, "/notice G01 周六上午9点活动室免费量血压")
        await w.fake.until(lambda: w.rows(
            "SELECT error FROM deliveries WHERE chat_id = ? AND status = 'unknown'",
            str(GROUP_ID)), timeout=10)
        for _ in range(3):  # the 500 is retried after its backoff; the timeout is not
            w.clock.advance(timedelta(minutes=5))
            await w.drained()
        await w.fake.until(lambda: sent_like(w, GROUP2_ID, "免费量血压"))
        assert len(sent_like(w, GROUP_ID, "免费量血压")) == 1  # it had arrived: once
        assert len(sent_like(w, GROUP2_ID, "免费量血压")) == 1
        assert w.rows("SELECT chat_id, status FROM deliveries ORDER BY chat_id") == [
            (str(GROUP_ID), "unknown"), (str(GROUP2_ID), "sent")]
        await w.runtime.worker.run_due()  # every delivery settled: the author is told
        summary = await w.fake.until(lambda: [s for s in w.bot.sent_to(ZHOU["id"])
                                              if "不确定是否送达 1" in s.plain])
        assert "送达 1" in summary[0].plain
        [status] = await w.said(zhou_dm, ZHOU, "/notice 1")
        assert "送达 1" in status.plain and "不确定是否送达 1" in status.plain
        assert "平台没有及时答复，不确定是否送达" in status.plain
        await w.fake.until(lambda: not w.bot.late)  # the late answer has gone out
    finally:
        await w.runtime.stop()


async def test_a_case_message_whose_answer_came_too_late_is_sent_again(
        database: Path, telegram: FakeTelegram) -> None:
    w = await start_world(database.parent, telegram, "polling", read_timeout=0.5)
    try:
        await bound(w)
        w.bot.delay("sendMessage", 2.0, chat_id=ZHANG["id"])  # the steward's claim notice
        report = w.bot.say(w.group, LIU, "报事 楼道灯坏了")
        await w.handled(GROUP_ID, report["message_id"])
        await w.fake.until(lambda: w.rows(
            "SELECT 1 FROM outbox WHERE chat_id = ? AND error LIKE '%did not answer in time%'",
            str(ZHANG["id"])), timeout=10)
        w.clock.advance(timedelta(minutes=1))
        await w.drained()
        # at least once (README): a steward never told of a case is worse off than one
        # told twice, so a message that may not have arrived goes again
        await w.fake.until(lambda: len(sent_like(w, ZHANG["id"], "楼道灯坏了")) == 2)
        assert w.rows("SELECT status FROM outbox WHERE chat_id = ? AND text LIKE ?",
                      str(ZHANG["id"]), "%楼道灯坏了%") == [("sent",)]
        await w.fake.until(lambda: not w.bot.late)  # the late answer has gone out
    finally:
        await w.runtime.stop()


async def test_while_telegram_pauses_the_sender_waits_for_the_real_time(
        polling: World, caplog: pytest.LogCaptureFixture) -> None:
    w = await bound(polling)
    await w.by_hand()
    w.bot.fail("sendMessage", 429, retry_after=15, times=1000)  # flood control, for long
    tried = len([c for c in w.bot.calls if c[0] == "sendMessage"])
    report = w.bot.say(w.group, LIU, "报事 楼道灯坏了")
    await w.handled(GROUP_ID, report["message_id"])
    await w.drained()
    assert w.runtime.sender.holds["telegram"].kind.value == "paused"
    async with httpx.AsyncClient() as client:
        health = (await client.get(w.runtime.http.url + "/healthz")).json()  # type: ignore[union-attr]
    sending = health["platforms"]["telegram"]["sending"]
    assert sending["state"] == "paused" and "retry after 15" in sending["reason"]
    assert await w.runtime.sender.next_due() == w.runtime.sender.holds["telegram"].until
    # two minutes of flood control: each 15 s the two messages try once, no more
    for _ in range(8):
        w.clock.advance(timedelta(seconds=15))
        await w.drained()
    tries = len([c for c in w.bot.calls if c[0] == "sendMessage"]) - tried
    assert 8 <= tries <= 2 * 9, tries
    assert w.rows("SELECT MAX(attempts), COUNT(*) FROM outbox WHERE status = 'queued'") == [
        (0, 2)]  # a pause is no failed attempt: nothing is given up however long it lasts
    w.bot.failures.clear()  # the flood is over
    w.clock.advance(timedelta(seconds=15))
    await w.drained()
    assert len(sent_like(w, GROUP_ID, "#1")) == 1 and len(sent_like(w, ZHANG["id"], "#1")) == 1
    assert "telegram" not in w.runtime.sender.holds
    said = [r.getMessage() for r in caplog.records if r.name == "gridbot.outbox"]
    assert len([m for m in said if "telegram paused until" in m]) == 1, said
    assert len([m for m in said if "telegram sending again" in m]) == 1, said


async def test_while_telegram_is_down_one_message_tries_now_and_then(
        polling: World, caplog: pytest.LogCaptureFixture) -> None:
    w = await bound(polling)
    await w.by_hand()
    await w.fake.stop()  # Telegram cannot be reached: every connection is refused
    async with w.runtime.store.transaction() as tx:
        for n in range(3):
            await tx.enqueue(Outgoing(platform="telegram", chat_id=str(GROUP_ID),
                                      text=f"第{n}条", dedup_key=f"down:{n}"), w.clock.now())
    await w.drained()
    hold = w.runtime.sender.holds["telegram"]
    assert hold.kind.value == "down" and "unreachable" in hold.reason
    async with httpx.AsyncClient() as client:
        health = (await client.get(w.runtime.http.url + "/healthz")).json()  # type: ignore[union-attr]
    assert health["platforms"]["telegram"]["sending"]["state"] == "down"
    # before the next try nothing is claimed; at it, one message tries, the others wait
    assert (await w.runtime.sender.drain()).retried == 0
    waits = []
    for tries in range(2, 5):
        hold = w.runtime.sender.holds["telegram"]
        waits.append((hold.until - w.clock.now()).total_seconds())
        w.clock.advance(hold.until - w.clock.now())
        result = await w.runtime.sender.drain()
        assert (result.retried, result.sent) == (1, 0), result
        assert w.runtime.sender.holds["telegram"].tries == tries
    assert waits[1] > waits[0] * 1.5 and waits[2] > waits[1] * 1.5  # further and further apart
    assert w.rows("SELECT MAX(attempts), COUNT(*) FROM outbox WHERE status = 'queued'") == [
        (0, 3)]  # nothing arrived: no attempt counted, nothing given up
    await w.fake.start()  # back, on the same address
    w.clock.advance(w.runtime.sender.holds["telegram"].until - w.clock.now())
    assert (await w.runtime.sender.drain()).sent == 3
    assert [s.plain for s in w.bot.sent_to(GROUP_ID)][-3:] == ["第0条", "第1条", "第2条"]
    said = [r.getMessage() for r in caplog.records if r.name == "gridbot.outbox"]
    assert len([m for m in said if "telegram unreachable" in m]) == 1, said
    assert len([m for m in said if "telegram sending again" in m]) == 1, said


async def test_bot_kicked_from_group_is_recorded_and_the_bot_lives_on(polling: World) -> None:
    w = await bound(polling)
    w.bot.kicked.add(GROUP_ID)
    message = w.bot.say(w.group, LIU, "报事 垃圾没人清")
    await w.handled(GROUP_ID, message["message_id"])
    failed = await w.fake.until(lambda: w.rows(
        "SELECT error FROM outbox WHERE status = 'failed' AND chat_id = ?", str(GROUP_ID)))
    assert "kicked" in failed[0][0]
    await w.fake.until(lambda: any("垃圾没人清" in s.plain for s in w.bot.sent_to(ZHANG["id"])))
    w.bot.blocked.add(ZHANG["id"])
    replies = await w.said(w.bot.private(CHEN), CHEN, "/help")
    assert replies and replies[0].chat_id == CHEN["id"]
    attempts = len([c for c in w.bot.calls if c[0] == "sendMessage"])
    w.clock.advance(timedelta(hours=1))
    await w.drained()
    assert len([c for c in w.bot.calls if c[0] == "sendMessage"]) == attempts  # not retried


async def test_a_chat_that_refuses_the_bot_is_not_sought_there_again(polling: World) -> None:
    w = await bound(polling)
    liu_dm = w.bot.private(LIU)
    await w.said(liu_dm, LIU, "/start")
    sent = await w.said(w.group, LIU, "报事 楼道灯坏了")
    claim = next(s for s in sent if s.chat_id == ZHANG["id"] and s.buttons)
    w.bot.blocked.add(LIU["id"])  # LIU blocks the bot: the "claimed" news cannot reach her
    await w.pressed(claim, "/claim 1", ZHANG)
    [(_, why)] = await w.fake.until(lambda: w.rows(
        "SELECT unreachable_at, unreachable_reason FROM chats WHERE chat_id = ? AND"
        " unreachable_at IS NOT NULL", str(LIU["id"])))
    assert "blocked" in why
    tried = w.rows("SELECT COUNT(*) FROM outbox WHERE chat_id = ?", str(LIU["id"]))[0][0]
    # from now on she is told in the group where she reported, briefly, without buttons and
    # without the words said in private
    resolved = await w.said(w.bot.private(ZHANG), ZHANG, "/done 1 修好了")
    told = [s for s in resolved if "#1 已办结" in s.plain and s.chat_id != ZHANG["id"]]
    assert [s.chat_id for s in told] == [GROUP_ID] and told[0].buttons == []
    assert "修好了" not in told[0].plain
    assert w.rows("SELECT COUNT(*) FROM outbox WHERE chat_id = ?", str(LIU["id"]))[0][0] \
        == tried
    # she unblocks the bot and writes to it: private again
    w.bot.blocked.discard(LIU["id"])
    await w.said(liu_dm, LIU, "/reopen 1 灯还是不亮")
    assert w.rows("SELECT unreachable_at FROM chats WHERE chat_id = ?",
                  str(LIU["id"])) == [(None,)]
    claimed = await w.said(w.bot.private(ZHANG), ZHANG, "/claim 1")
    assert [s.chat_id for s in claimed if "认领" in s.plain and s.chat_id != ZHANG["id"]] == [
        LIU["id"]]

    # a steward who blocked the bot: once the refusal is known, routing passes her over
    # (tests/test_reach.py): the next case goes to the first person a message reaches
    w.bot.blocked.add(ZHANG["id"])
    await w.said(w.group, LIU, "报事 垃圾桶坏了")
    await w.fake.until(lambda: w.rows(
        "SELECT 1 FROM chats WHERE chat_id = ? AND unreachable_at IS NOT NULL",
        str(ZHANG["id"])))
    tried = w.rows("SELECT COUNT(*) FROM outbox WHERE chat_id = ?", str(ZHANG["id"]))[0][0]
    await w.said(w.group, LIU, "报事 路灯不亮")
    assert w.rows("SELECT COUNT(*) FROM outbox WHERE chat_id = ?", str(ZHANG["id"]))[0][0] \
        == tried
    case, events = await w.case(3)
    assert case.assignee_id == "zhou"  # 李师傅 and 王网格长 never linked an account
    [assigned] = [e for e in events if e.kind == "assigned"]
    assert assigned.data["skipped"][0] == {"person": "zhang", "why": "blocked"}


def test_what_a_group_message_answers() -> None:
    """A reply's target reaches the engine; in a forum topic, the topic's first message
    (which Telegram makes every message there "answer") does not."""
    def message(chat: dict[str, Any], **extra: Any) -> Any:
        return Message.de_json({"message_id": 9, "date": 0, "chat": chat, "from": LIU,
                                "text": "收到", **extra}, None)

    group = {"id": GROUP_ID, "type": "supergroup", "title": "g"}
    notice = {"message_id": 5, "date": 0, "chat": group, "text": "通知"}
    root = {"message_id": 42, "date": 0, "chat": group, "forum_topic_created": {
        "name": "t", "icon_color": 0}}
    assert incoming_message(message(group)).reply_to is None  # type: ignore[union-attr]
    assert incoming_message(message(  # type: ignore[union-attr]
        group, reply_to_message=notice)).reply_to == "5"
    assert incoming_message(message(  # type: ignore[union-attr]
        group, reply_to_message=root, message_thread_id=42,
        is_topic_message=True)).reply_to is None
    assert incoming_message(message(  # type: ignore[union-attr]
        group, reply_to_message={**notice, "message_thread_id": 42}, message_thread_id=42,
        is_topic_message=True)).reply_to == "5"
    private = {"id": LIU["id"], "type": "private", "first_name": "刘奶奶"}
    assert incoming_message(message(  # type: ignore[union-attr]
        private, reply_to_message={**notice, "chat": private})).reply_to is None


async def test_notice_acknowledged_by_a_reply_and_by_its_button_in_the_group(
        polling: World) -> None:
    w = await bound(polling)
    zhou_dm = w.bot.private(ZHOU)
    first = await w.said(zhou_dm, ZHOU, "/notice M01 周六上午9点活动室免费量血压")
    second = await w.said(zhou_dm, ZHOU, "/notice M01 下周一上午停水")
    [blood] = [s for s in first if s.chat_id == GROUP_ID]
    [water] = [s for s in second if s.chat_id == GROUP_ID]
    assert blood.buttons == [("收到 ✅", "/ack 1")] and water.buttons == [("收到 ✅", "/ack 2")]

    def acks(notice: int) -> int:
        return w.rows("SELECT COUNT(*) FROM notice_acks a JOIN deliveries d"
                      " ON d.id = a.delivery_id WHERE d.notice_id = ?", notice)[0][0]

    # a reply to the first (not the latest) acknowledges that one, and quietly
    assert await w.said(w.group, LIU, "收到", reply_to=blood.message_id) == []
    assert (acks(1), acks(2)) == (1, 0)
    # the button under the second: everyone may press it, and it stays for the next one
    edits = len(w.bot.edits)
    for user in (CHEN, LIU):
        assert [s for s in await w.pressed(water, "收到 ✅", user)
                if s.chat_id == GROUP_ID] == []
    assert (acks(1), acks(2)) == (1, 2)
    assert len(w.bot.edits) == edits  # the keyboard was left alone
    assert w.rows("SELECT status FROM deliveries ORDER BY notice_id") == [
        ("acknowledged",), ("acknowledged",)]


# -- what people send ----------------------------------------------------------------------
async def test_html_looking_text_arrives_as_typed(polling: World) -> None:
    w = await bound(polling)
    typed = "<b>楼道</b> & <script>alert(1)</script> &amp; 1<2"
    sent = await w.said(w.group, LIU, f"报事 {typed}")
    notice = next(s for s in sent if s.chat_id == ZHANG["id"])
    assert typed in notice.plain  # as a person reads it
    assert "&lt;b&gt;楼道&lt;/b&gt; &amp; &lt;script&gt;" in notice.text
    assert "&amp;amp;" in notice.text


async def test_long_message_is_split_under_the_limit(polling: World) -> None:
    w = await bound(polling)
    lines = [f"{n:03d}处<<>>&&<墙皮>“脱落”🧱" for n in range(90)]
    text = "\n".join(lines)
    assert len(text) < 2000 and len(html.escape(text, quote=False)) > 4096
    sent = await w.said(w.group, LIU, f"报事 {text}")
    parts = [s for s in sent if s.chat_id == ZHANG["id"]]
    assert len(parts) >= 2
    assert all(len(p.plain.encode("utf-16-le")) // 2 <= 4096 for p in parts)
    for line in lines:  # every line whole, in one part
        assert sum(line in p.plain for p in parts) == 1
    assert [bool(p.buttons) for p in parts] == [False] * (len(parts) - 1) + [True]


async def test_duplicate_update_does_nothing_twice(polling: World) -> None:
    w = await bound(polling)
    message = w.bot.say(w.group, LIU, "报事 有人在楼道里充电瓶车")
    await w.handled(GROUP_ID, message["message_id"])
    once = len(await w.settled(0))
    w.bot.push({"message": message})  # the same message again, under a new update id
    w.bot.say(w.bot.private(CHEN), CHEN, "/help")  # and something after it, as a marker
    await w.fake.until(lambda: w.bot.sent_to(CHEN["id"]))
    assert len(w.bot.sent) == once + 1
    assert w.rows("SELECT COUNT(*) FROM cases")[0][0] == 1


async def test_double_press_claims_once(polling: World) -> None:
    w = await bound(polling)
    sent = await w.said(w.group, LIU, "报事 健身器材破损")
    notice = next(s for s in sent if s.buttons)
    w.bot.press(notice, "/claim 1", ZHANG)
    second = w.bot.press(notice, "/claim 1", ZHANG)
    await w.fake.until(lambda: second in w.bot.answered)
    await w.settled(0)
    _, events = await w.case(1)
    assert [e.kind for e in events].count("claimed") == 1


async def test_topics_commands_to_this_bot_and_other_bots(polling: World) -> None:
    w = await bound(polling)
    forum = w.bot.group(-1009999, "幸福里论坛", forum=True)
    w.bot.topic(forum, 42)
    replies = await w.said(forum, ZHOU, "/bind@GridTestBot M01", thread_id=42)
    assert replies[0].thread_id == 42 and replies[0].chat_id == forum.id
    assert await w.said(w.group, LIU, "/claim@OtherBot 1") == []
    help_ = await w.said(w.group, LIU, "/help@gridtestbot")
    assert help_ and help_[0].chat_id == GROUP_ID


async def test_evidence_goes_with_the_report_and_the_resolution(polling: World) -> None:
    w = await bound(polling)
    await w.said(w.bot.private(LIU), LIU, "/start")  # LIU can be told privately
    photo = b"\x89PNG fake picture of a broken light"
    before = len(w.bot.sent)
    report = w.bot.say(w.group, LIU, "报事 楼道灯坏了，见照片", photo=photo)
    await w.handled(GROUP_ID, report["message_id"])
    sent = await w.settled(before)
    big = report["photo"][-1]["file_id"]  # the largest size, not the thumbnail
    _, events = await w.case(1)
    assert events[0].data["attachments"] == [
        {"kind": "photo", "platform": "telegram", "ref": f"photo:{big}"}]
    adapter = w.runtime.adapters[0]
    assert await adapter.download(f"photo:{big}") == photo  # type: ignore[attr-defined]
    # the steward gets the claim notice, then the photo answering it; the group neither
    to_zhang = [s for s in sent if s.chat_id == ZHANG["id"]]
    assert [s.media for s in to_zhang] == [None, ("photo", big)]
    assert to_zhang[0].buttons == [(to_zhang[0].buttons[0][0], "/claim 1")]
    assert to_zhang[1].reply_to == to_zhang[0].message_id
    assert all(s.media is None for s in w.bot.sent_to(GROUP_ID))

    # resolved with a voice note: it follows the "resolved" notice to the reporter
    before = len(w.bot.sent)
    done = w.bot.say(w.bot.private(ZHANG), ZHANG, "/done 1 换好灯泡了，听录音", voice=b"OggS")
    await w.handled(ZHANG["id"], done["message_id"])
    to_liu = [s for s in await w.settled(before) if s.chat_id == LIU["id"]]
    assert [s.media for s in to_liu] == [None, ("voice", done["voice"]["file_id"])]
    assert "换好灯泡了" in to_liu[0].plain and ("★★★★★", "/rate 1 5") in to_liu[0].buttons
    assert to_liu[1].reply_to == to_liu[0].message_id
    _, events = await w.case(1)
    resolved = next(e for e in events if e.kind == "resolved")
    assert resolved.data["attachments"][0]["ref"] == f"voice:{done['voice']['file_id']}"
    assert await w.ignored(w.group, LIU, "", voice=b"ogg") == []  # a voice note alone


async def test_evidence_telegram_cannot_send_leaves_the_text_delivered(polling: World) -> None:
    w = await bound(polling)
    w.bot.fail("sendPhoto", 500)  # a passing failure: the photo alone is sent again
    before = len(w.bot.sent)
    report = w.bot.say(w.group, LIU, "报事 垃圾桶坏了", photo=b"\x89PNG bin")
    await w.handled(GROUP_ID, report["message_id"])
    for _ in range(8):
        if [s for s in w.bot.sent[before:] if s.media]:
            break
        w.clock.advance(timedelta(minutes=1))
        await w.drained()
    to_zhang = [s for s in w.bot.sent[before:] if s.chat_id == ZHANG["id"]]
    assert [bool(s.media) for s in to_zhang] == [False, True]  # the text was not repeated
    # a file id Telegram no longer knows: the photo is left out, the message counts as sent
    w.bot.files.clear()
    before = len(w.bot.sent)
    w.bot.say(w.group, LIU, "报事 路灯不亮", photo=b"\x89PNG lamp")
    w.bot.files.clear()
    await w.fake.until(lambda: any("路灯不亮" in s.plain for s in w.bot.sent[before:]
                                   if s.chat_id == ZHANG["id"]))
    await w.settled(before)
    assert not [s for s in w.bot.sent[before:] if s.media]
    assert w.rows("SELECT COUNT(*) FROM outbox WHERE status = 'failed'")[0][0] == 0


async def test_stats_chart_is_uploaded_as_a_photo(polling: World) -> None:
    w = await bound(polling)
    await w.said(w.group, LIU, "报事 楼道灯坏了")
    w.bot.fail("sendPhoto", 500)  # a passing failure: the upload alone is made again
    before = len(w.bot.sent)
    asked = w.bot.say(w.bot.private(ZHOU), ZHOU, "/stats chart")
    await w.handled(ZHOU["id"], asked["message_id"])
    for _ in range(8):
        if len([s for s in w.bot.sent[before:] if s.media]) == 2:
            break
        w.clock.advance(timedelta(minutes=1))
        await w.drained()
    sent = await w.settled(before)
    assert [bool(s.media) for s in sent] == [False, True, True]  # the text was not repeated
    caption, *photos = sent
    assert caption.plain.startswith("📊 统计图：幸福里社区 · 2026年11月")
    assert "报事 1 件" in caption.plain and "图1：" in caption.plain
    for photo in photos:
        assert photo.media is not None and photo.media[0] == "photo"
        assert photo.reply_to == caption.message_id
        upload = w.bot.uploads[photo.media[1]]
        assert upload.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert [w.bot.uploads[p.media[1]].filename for p in photos if p.media] == [
        "cases-per-day-C01-2026-11.png", "resolution-rate-C01-2026-11.png"]
    # the PNGs were kept in the outbox row until sent, and the row is done
    assert w.rows("SELECT status FROM outbox WHERE attachments LIKE '%image/png%'") == [
        ("sent",)]


async def test_group_upgraded_to_supergroup_keeps_its_binding(polling: World) -> None:
    w = await bound(polling)
    new = w.bot.group(-1005555, w.group.title)
    w.bot.push({"message": {"message_id": w.bot.mid(GROUP_ID), "date": int(time.time()),
                            "chat": w.group.json(), "from": ZHOU,
                            "migrate_to_chat_id": new.id}})
    sent = await w.said(new, LIU, "报事 门禁坏了")
    assert any(s.chat_id == new.id and "#1" in s.plain for s in sent)


async def test_healthz(polling: World) -> None:
    async with httpx.AsyncClient() as client:
        answer = await client.get(polling.runtime.http.url + "/healthz")  # type: ignore[union-attr]
    body = answer.json()
    assert answer.status_code == 200 and body["ok"] and body["store"]
    assert set(body["outbox"]) == {"queued", "sending", "sent", "failed"}
    assert body["platforms"]["telegram"] == {"mode": "polling", "receiving": True,
                                             "bot": "GridTestBot",
                                             "sending": {"state": "sending"}}
    assert body["set_aside"] == {"waiting": 0, "given_up": 0, "kept": []}


# -- the real command ----------------------------------------------------------------------
@pytest.mark.slow(39)
async def test_gridbot_run_answers_and_stops_cleanly_on_sigterm(tmp_path: Path,
                                                                telegram: FakeTelegram) -> None:
    bot = telegram.bot(TOKEN, "GridTestBot")
    config = write_config(tmp_path, telegram)
    config.write_text(config.read_text().replace(f'token = "{TOKEN}"',
                                                 'token = "env:GRIDBOT_TEST_TOKEN"'))
    process = gridbot_process(config, "run", env={"GRIDBOT_TEST_TOKEN": TOKEN})
    try:
        await telegram.until(lambda: any(c[0] == "getUpdates" for c in bot.calls), timeout=20)
        chat = bot.private(CHEN)
        bot.say(chat, CHEN, "/help")
        await telegram.until(lambda: bot.sent_to(CHEN["id"]), timeout=10)
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(process.communicate, timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err and "GridTestBot" in out and "已停止" in out
    assert TOKEN not in out + err
    assert not bot.updates  # the last fetched update was acknowledged before leaving


async def test_gridbot_run_with_a_bad_token_says_so_in_one_line(tmp_path: Path,
                                                                telegram: FakeTelegram) -> None:
    telegram.bot(TOKEN, "GridTestBot")
    config = write_config(tmp_path, telegram, token="7001:not-the-token")
    process = gridbot_process(config, "run")
    _, err = await asyncio.to_thread(process.communicate, timeout=30)
    assert process.returncode == 2
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "telegram.token" in lines[0], err
    assert "not-the-token" not in err


async def test_webhook_mode_registers_the_secret(webhook: World) -> None:
    info = await webhook.bot.call("getWebhookInfo", {})
    assert info["url"] == PUBLIC_URL and webhook.bot.webhook_secret == SECRET
    assert info["pending_update_count"] == 0


async def test_a_busy_http_port_stops_the_start_and_undoes_it(tmp_path: Path,
                                                              telegram: FakeTelegram) -> None:
    telegram.bot(TOKEN, "GridTestBot")
    path = write_config(tmp_path, telegram)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path.write_text(path.read_text().replace("port = 0", f"port = {port}"))
        runtime = Runtime(load_config(path))
        with pytest.raises(OSError):
            await runtime.start()
    assert not runtime.adapters[0].health()["receiving"]
    with pytest.raises(StoreError):  # closed again
        async with runtime.store.transaction():
            pass
