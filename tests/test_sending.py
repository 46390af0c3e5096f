"""Sending while a platform pauses, is down, or does not answer in time.

The outbox is driven here through the demo's wiring (real engine, real SQLite file,
virtual clock) and a small platform of the test's own that answers every request the
same way; the Telegram and WeChat sides of the same promises are in test_telegram.py
and test_wechat.py, against the fake servers.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from gridbot.adapters.base import Adapter
from gridbot.domain import Outgoing
from gridbot.errors import PlatformError
from gridbot.outbox import OutboxSender
from gridbot.ratelimit import Rate, SendLimits
from tests.conftest import Bot

PLATFORM = "flooded"


class Platform(Adapter):
    """A platform that answers every request with ``answer`` (an error to raise), or
    takes it when ``answer`` is None; ``first`` answers the first requests instead."""

    name = PLATFORM

    def __init__(self, answer: PlatformError | None,
                 first: tuple[PlatformError, ...] = ()) -> None:
        self.answer = answer
        self.first = list(first)
        self.calls: list[str] = []
        self.taken: list[str] = []

    async def send(self, message: Outgoing) -> str:
        self.calls.append(message.text)
        answer = self.first.pop(0) if self.first else self.answer
        if answer is not None:
            raise answer
        self.taken.append(message.text)
        return str(len(self.taken))


async def queue(bot: Bot, chats: int, each: int) -> None:
    async with bot.demo.store.transaction() as tx:
        for n in range(each):
            for chat in range(chats):
                await tx.enqueue(Outgoing(platform=PLATFORM, chat_id=f"chat{chat}",
                                          text=f"{chat}-{n}", dedup_key=f"m:{chat}:{n}"),
                                 bot.now)


def changes(bot: Bot) -> int:
    """Rows the store's connection has written so far (SQLite counts them)."""
    return bot.demo.store._require().total_changes  # type: ignore[attr-defined]


async def test_a_pause_is_waited_out_for_real_not_claimed_and_released_over_and_over(
        bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    # Every request is answered "retry after 15 s", sends are spaced (one a second), and
    # two chats have four messages each: the second chat's first message is waiting for
    # its turn when the pause begins. Before, the drain then outlived the hold it had
    # noted for each chat, handed messages back into the past and claimed them again at
    # once, for as long as the pause lasted (half a core in production).
    platform = Platform(PlatformError("flood control: retry after 15 s", retry_after=15))
    sender = OutboxSender(bot.demo.store, bot.demo.clock, {PLATFORM: platform},
                          limits={PLATFORM: SendLimits(overall=Rate(count=1, per=1.0),
                                                       concurrency=2)})
    await queue(bot, chats=2, each=4)
    started = bot.now
    await asyncio.wait_for(sender.drain(), 10)
    hold = sender.holds[PLATFORM]
    assert hold.kind.value == "paused" and hold.until - hold.since == timedelta(seconds=15)
    assert await sender.next_due() == hold.until
    assert sender.health(PLATFORM)["state"] == "paused"
    # Until the pause is over, a drain touches nothing at all.
    written = changes(bot)
    for _ in range(3):
        assert (await sender.drain()).postponed == 0
    assert changes(bot) == written
    # An hour of flood control: each time the pause ends, the messages try once more.
    rounds = 0
    while bot.now < started + timedelta(hours=1):
        bot.demo.clock.set(await sender.next_due())
        await asyncio.wait_for(sender.drain(), 10)
        rounds += 1
    assert rounds <= 240 + 1, rounds
    per_round = (changes(bot) - written) / rounds
    assert per_round <= 8 * 3, per_round  # a claim, a put-back, a mark per message at most
    async with bot.demo.store.transaction() as tx:
        assert await tx.outbox_counts() == {"queued": 8}  # a pause never fails a message
    platform.answer = None
    bot.demo.clock.set(await sender.next_due())
    while (await sender.drain()).sent:
        bot.demo.clock.set(await sender.next_due() or bot.now)
    assert sorted(platform.taken) == sorted(f"{c}-{n}" for c in range(2) for n in range(4))
    for chat in range(2):  # each chat's messages in the order they were queued
        assert [t for t in platform.taken if t.startswith(f"{chat}-")] == [
            f"{chat}-{n}" for n in range(4)]
    said = [r.getMessage() for r in caplog.records if r.name == "gridbot.outbox"
            and r.levelno >= logging.WARNING]
    assert len([m for m in said if "paused until" in m]) == 1, said
    assert len([m for m in said if "sending again" in m]) == 1, said


async def test_after_a_pause_a_chats_messages_leave_in_their_order(bot: Bot) -> None:
    platform = Platform(None, first=(PlatformError("retry after 3 s", retry_after=3),))
    sender = OutboxSender(bot.demo.store, bot.demo.clock, {PLATFORM: platform})
    await queue(bot, chats=1, each=3)
    started = bot.now
    result = await sender.drain()
    assert (result.sent, result.retried, result.postponed) == (0, 1, 2)  # all wait for it
    assert await sender.next_due() == started + timedelta(seconds=3)
    async with bot.demo.store.transaction() as tx:  # one more, queued during the pause
        await tx.enqueue(Outgoing(platform=PLATFORM, chat_id="chat0", text="0-3",
                                  dedup_key="m:0:3"), bot.now + timedelta(seconds=1))
    bot.demo.clock.set(started + timedelta(seconds=3))
    assert (await sender.drain()).sent == 4
    assert platform.taken == ["0-0", "0-1", "0-2", "0-3"]


async def test_an_unreachable_platform_is_tried_by_one_message_less_and_less_often(
        bot: Bot) -> None:
    platform = Platform(PlatformError("connection refused", outage=True))
    sender = OutboxSender(bot.demo.store, bot.demo.clock, {PLATFORM: platform},
                          limits={PLATFORM: SendLimits(concurrency=4)})
    await queue(bot, chats=3, each=2)
    await sender.drain()
    assert sender.holds[PLATFORM].kind.value == "down"
    tried = len(platform.calls)
    assert 1 <= tried <= 4  # those under way when it went down
    waits = []
    for _ in range(8):
        due = await sender.next_due()
        assert due is not None
        waits.append((due - bot.now).total_seconds())
        bot.demo.clock.set(due)
        await sender.drain()
    assert len(platform.calls) - tried == 8  # one message a try
    assert waits == [5, 10, 20, 40, 80, 160, 300, 300]
    async with bot.demo.store.transaction() as tx:
        assert await tx.outbox_counts() == {"queued": 6}  # none failed, none counted
    platform.answer = None
    bot.demo.clock.set(await sender.next_due())
    assert (await sender.drain()).sent == 6  # back: the first one through, the rest after
    assert PLATFORM not in sender.holds


async def test_a_500_still_fails_its_message_only_and_is_retried(bot: Bot) -> None:
    platform = Platform(PlatformError("Internal Server Error (500)"))
    sender = OutboxSender(bot.demo.store, bot.demo.clock, {PLATFORM: platform})
    await queue(bot, chats=2, each=1)
    result = await sender.drain()
    assert (result.retried, len(platform.calls)) == (2, 2)  # each its own failure
    assert PLATFORM not in sender.holds
    platform.answer = None
    bot.demo.clock.set(bot.now + timedelta(minutes=1))
    assert (await sender.drain()).sent == 2
