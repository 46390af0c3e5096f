"""Faults: the database is busy, the platform fails; the bot recovers and loses nothing.

An incoming message is handled exactly once (a redelivery after a failure is handled, a
duplicate is not), and every outgoing message is retried until it is sent, once.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest

from gridbot.domain import Outgoing
from gridbot.engine import Outcome
from gridbot.errors import PlatformError
from tests.conftest import Bot, incoming, to

REPORT = "报事 3幢楼道灯坏了"


class WriteLock:
    """A second, real connection to the database file holding its write lock."""

    def __init__(self, bot: Bot, hold: float) -> None:
        self.path, self.hold = bot.path, hold
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
    db = bot.demo.store._require()  # the store's own connection: give up after 50 ms
    await db.execute("PRAGMA busy_timeout=50")
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
    PlatformError("429 Too Many Requests", retry_after=3),
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
