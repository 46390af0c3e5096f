"""Faults: the database is busy, the platform fails; the bot recovers and loses nothing.

An incoming message is handled exactly once (a redelivery after a failure is handled, a
duplicate is not), and every outgoing message is retried until it is sent, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from gridbot.domain import Outcome, Outgoing
from gridbot.errors import PlatformError, StoreBusy, StoreError
from gridbot.store.sqlite import SQLiteStore, busy_error
from tests.conftest import Bot, incoming, to

REPORT = "报事 3幢楼道灯坏了"


class WriteLock:
    """A second, real connection to the database file holding its write lock."""

    def __init__(self, bot: Bot | Path, hold: float) -> None:
        self.path, self.hold = bot.path if isinstance(bot, Bot) else bot, hold
        self.taken, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=5)
        try:
            db.execute("BEGIN IMMEDIATE")
            self.taken.set()
            self.release.wait(self.hold)
            db.execute("COMMIT")
        finally:
            db.close()

    def __enter__(self) -> WriteLock:
        self.thread.start()
        assert self.taken.wait(5), "could not take the write lock"
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(5)


async def _reports(bot: Bot) -> list[int]:
    numbers = []
    number = 1
    while await bot.case(number) is not None:
        numbers.append(number)
        number += 1
    return numbers


async def test_a_message_during_a_short_write_lock_waits_and_lands_once(bot: Bot) -> None:
    msg = incoming(REPORT, message_id="busy-1")
    started = time.monotonic()
    with WriteLock(bot, hold=0.5):
        outcome, out = await bot.handle(msg)
    assert time.monotonic() - started >= 0.4, "it waited for the lock"
    assert outcome is Outcome.HANDLED
    assert "#1" in to(out, "M01")[0]
    assert await _reports(bot) == [1]
    outcome, out = await bot.handle(msg)  # the platform delivers it again
    assert outcome is Outcome.DUPLICATE and out == []
    assert await _reports(bot) == [1]


async def test_a_message_during_a_long_write_lock_fails_then_its_redelivery_lands_once(
    bot: Bot,
) -> None:
    await bot.demo.store.set_busy_timeout(50)  # the store gives up after 50 ms
    msg = incoming(REPORT, message_id="busy-2")
    with WriteLock(bot, hold=10):
        # (the engine alone: the outbox cannot be drained while the lock is held either)
        assert await bot.demo.engine.handle(msg) is Outcome.FAILED
    assert await _reports(bot) == []
    # The lock is gone; the platform redelivers the same message: handled now, once.
    outcome, out = await bot.handle(msg)
    assert outcome is Outcome.HANDLED
    assert "#1" in to(out, "M01")[0]
    assert to(out, "zhang"), "the steward is told once the report lands"
    outcome, out = await bot.handle(msg)
    assert outcome is Outcome.DUPLICATE and out == []
    assert await _reports(bot) == [1]
    assert [e.kind for e in await bot.events(1)] == ["reported", "assigned"]


def _flaky(bot: Bot, monkeypatch: pytest.MonkeyPatch, failure: Exception) -> list[Outgoing]:
    """The console adapter fails its first send with ``failure``, then works."""
    console, send = bot.demo.console, bot.demo.console.send
    attempts: list[Outgoing] = []

    async def flaky_send(message: Outgoing) -> str:
        attempts.append(message)
        if len(attempts) == 1:
            raise failure
        return await send(message)

    monkeypatch.setattr(console, "send", flaky_send)
    return attempts


def _sent(bot: Bot) -> Counter[tuple[str, str]]:
    return Counter((d.message.chat_id, d.message.text) for d in bot.demo.console.delivered)


@pytest.mark.parametrize("failure", [
    PlatformError("502 Bad Gateway"),
    PlatformError("429 Too Many Requests", retry_after=30),
    TimeoutError("read timed out"),
], ids=["platform-error", "rate-limited", "timeout"])
async def test_a_failed_send_is_retried_and_sent_exactly_once(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    attempts = _flaky(bot, monkeypatch, failure)
    outcome, out = await bot.handle(incoming(REPORT, message_id="send-1"))
    assert outcome is Outcome.HANDLED
    first = attempts[0]
    assert first not in out, "the failed message is not delivered yet"
    async with bot.demo.store.transaction() as tx:
        counts = await tx.outbox_counts()
    if getattr(failure, "retry_after", None):  # the whole platform waits as it asked
        assert counts == {"queued": 2}, counts
    else:
        assert counts == {"queued": 1, "sent": 1}, counts  # the failed one waits for a retry

    out = await bot.wait(timedelta(minutes=1))  # past the backoff: the retry goes out
    assert first in out
    assert attempts.count(first) == 2
    sent = _sent(bot)
    assert sent[(first.chat_id, first.text)] == 1
    assert all(n == 1 for n in sent.values()), sent
    assert to(bot.log, "M01") and to(bot.log, "zhang")

    async with bot.demo.store.transaction() as tx:
        assert await tx.outbox_counts() == {"sent": 2}
    # Waiting longer sends it no more.
    await bot.wait(timedelta(hours=1))
    assert attempts.count(first) == 2
    assert _sent(bot)[(first.chat_id, first.text)] == 1
    assert await _reports(bot) == [1]


async def test_a_permanent_failure_is_not_retried(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = _flaky(bot, monkeypatch, PlatformError("bot was blocked", permanent=True))
    await bot.handle(incoming(REPORT, message_id="send-2"))
    await bot.wait(timedelta(hours=1))
    assert attempts.count(attempts[0]) == 1
    assert (attempts[0].chat_id, attempts[0].text) not in _sent(bot)


# -- the database stays locked longer than the store waits ------------------------------------


async def _impatient(bot: Bot, ms: int = 50) -> None:
    """The store gives up on a held lock after ``ms`` (production waits 5 s)."""
    await bot.demo.store.set_busy_timeout(ms)


async def _outbox(bot: Bot) -> dict[str, int]:
    async with bot.demo.store.transaction() as tx:
        return await tx.outbox_counts()


async def test_a_lock_past_the_busy_timeout_is_the_stores_own_transient_error(
    bot: Bot, tmp_path,
) -> None:
    other = SQLiteStore(str(bot.path), busy_timeout_ms=50)
    await other.open()
    try:
        with WriteLock(bot, hold=10):
            started = time.monotonic()
            with pytest.raises(StoreBusy) as raised:  # at BEGIN: never sqlite3's own error
                async with other.transaction() as tx:
                    await tx.case(1)
            assert time.monotonic() - started < 2, "it gave up after its own busy timeout"
            assert isinstance(raised.value, StoreError)
            assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
        # The connection was not left inside a transaction: it works at once.
        async with other.transaction() as tx:
            assert await tx.case(1) is None
        assert not other._require().in_transaction
    finally:
        await other.close()
    assert SQLiteStore(str(tmp_path / "x.db")).busy_timeout_ms == 5000
    assert busy_error(sqlite3.OperationalError("database is locked")) is not None
    assert busy_error(sqlite3.OperationalError("no such table: x")) is None
    assert busy_error(sqlite3.IntegrityError("database is locked")) is None


async def test_a_report_during_a_lock_past_the_busy_timeout_is_retried_and_lands_once(
    bot: Bot, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gridbot.engine")
    await _impatient(bot)
    msg = incoming(REPORT, message_id="busy-3")
    started = time.monotonic()
    with WriteLock(bot, hold=0.3):  # let go by itself while the engine waits to retry
        outcome = await bot.demo.engine.handle(msg)
        assert outcome is Outcome.HANDLED
    assert time.monotonic() - started >= 0.25, "it waited the lock out"
    assert "the database is locked; trying again" in caplog.text
    assert "failed" not in caplog.text  # no apology, no traceback: it simply went through
    outcome, out = await bot.handle(msg)  # the platform delivers it again anyway
    assert outcome is Outcome.DUPLICATE
    assert "#1" in to(out, "M01")[0] and len(to(out, "M01")) == 1
    assert len(to(out, "zhang")) == 1
    assert await _reports(bot) == [1]
    assert [e.kind for e in await bot.events(1)] == ["reported", "assigned"]
    assert await _outbox(bot) == {"sent": len(out)}


async def test_a_report_while_the_lock_outlasts_every_retry_is_left_for_redelivery(
    bot: Bot, caplog: pytest.LogCaptureFixture,
) -> None:
    await _impatient(bot)
    msg = incoming(REPORT, message_id="busy-4")
    with WriteLock(bot, hold=10):
        assert await bot.demo.engine.handle(msg) is Outcome.FAILED
    assert "left for the platform to deliver again" in caplog.text
    assert "Traceback" not in caplog.text and "apologise" not in caplog.text
    assert await _reports(bot) == [] and await _outbox(bot) == {}  # no apology queued
    outcome, out = await bot.handle(msg)
    assert outcome is Outcome.HANDLED and await _reports(bot) == [1]
    assert len(to(out, "M01")) == 1 and len(to(out, "zhang")) == 1


async def test_an_outbox_drain_during_a_long_lock_carries_on_next_round(
    bot: Bot, caplog: pytest.LogCaptureFixture,
) -> None:
    # Queued, not yet sent (the engine alone, no drain).
    assert await bot.demo.engine.handle(incoming(REPORT, message_id="q-1")) is Outcome.HANDLED
    queued = (await _outbox(bot))["queued"]
    assert queued >= 2
    await _impatient(bot)
    worker = bot.demo.worker
    with WriteLock(bot, hold=10):
        result = await worker.run_due()  # neither raises nor sends
        assert "outbox" in result.failed and result.sent == 0
        with pytest.raises(StoreBusy):  # the drain on its own: the store's error
            await bot.demo.sender.drain()
        assert await worker.next_due() is not None  # "look again soon", not a crash
    assert bot.demo.console.delivered == []
    assert "sending the outbox: the database is locked" in caplog.text
    assert "OperationalError" not in caplog.text
    assert await _outbox(bot) == {"queued": queued}, "nothing was claimed or lost"

    result = await worker.run_due()  # the next round, the lock gone
    assert result.failed == () and result.sent == queued
    out = bot._new()
    assert len(to(out, "M01")) == 1 and len(to(out, "zhang")) == 1
    assert all(n == 1 for n in _sent(bot).values())
    assert (await worker.run_due()).sent == 0
    assert await _outbox(bot) == {"sent": queued}


async def test_a_lock_between_sending_and_marking_sent_does_not_send_twice(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    # The platform has taken the message when someone else takes the write lock: the
    # mark waits the lock out instead of leaving the lease to run out and send again.
    assert await bot.demo.engine.handle(incoming(REPORT, message_id="mark-1")) is Outcome.HANDLED
    queued = (await _outbox(bot))["queued"]
    await _impatient(bot)
    console, send = bot.demo.console, bot.demo.console.send
    locks: list[WriteLock] = []

    async def send_then_lock(message: Outgoing) -> str:
        platform_id = await send(message)
        if not locks:  # taken off the event loop: other messages' marks may be under way
            locks.append(await asyncio.to_thread(WriteLock(bot, hold=0.5).__enter__))
        return platform_id  # and the lock is held when this message is marked

    monkeypatch.setattr(console, "send", send_then_lock)
    # Claiming the next batch may meet the lock too (the worker logs it and goes on).
    with contextlib.suppress(StoreBusy):
        await bot.demo.sender.drain()
    locks[0].__exit__()
    assert "was sent, but the database is locked; marking it again" in caplog.text
    await bot.wait(timedelta(hours=1))  # what went back is sent; past any lease, no more
    assert all(n == 1 for n in _sent(bot).values()), _sent(bot)
    assert sum(_sent(bot).values()) == queued
    assert await _outbox(bot) == {"sent": queued}


async def test_a_deadline_sweep_during_a_long_lock_escalates_once_afterwards(
    bot: Bot, caplog: pytest.LogCaptureFixture,
) -> None:
    outcome, _ = await bot.handle(incoming(REPORT, message_id="d-1"))
    assert outcome is Outcome.HANDLED
    await _impatient(bot)
    worker = bot.demo.worker
    bot.demo.clock.set(bot.now + timedelta(hours=2))  # the claim window has run out
    with WriteLock(bot, hold=10):
        result = await worker.run_due()
        assert "deadlines" in result.failed and result.handled["deadlines"] == 0
    assert "timed work deadlines: the database is locked" in caplog.text
    assert bot._new() == []
    case = await bot.case(1)
    assert (case.level, case.assignee_id) == (0, "zhang"), "nothing happened half-way"

    result = await worker.run_due()  # the lock is gone: the sweep catches up
    assert result.failed == () and result.handled["deadlines"] >= 1
    out = bot._new()
    case = await bot.case(1)
    assert (case.level, case.assignee_id) == (1, "wang")
    kinds = [e.kind for e in await bot.events(1)]
    assert kinds.count("escalated") == 1
    assert len([m for m in out if m.chat_id == "dm:wang"]) == 1
    assert all(n == 1 for n in _sent(bot).values())
    # Sweeping again does nothing more.
    result = await worker.run_due()
    assert result.handled["deadlines"] == 0 and bot._new() == []
    assert [e.kind for e in await bot.events(1)] == kinds
