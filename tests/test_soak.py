"""Killed at random, nothing lost and nothing done twice (beyond the stated bound).

The soak test plays 500 reports through the fake Telegram server to one ``gridbot run``
process on SQLite that polls it, with duplicates (updates delivered again with the same
update_id, messages replayed under a new one), and kills the process with SIGKILL at
random moments, restarting it at once, six times. Afterwards every report is exactly one
case, every message of every case was delivered, and the messages Telegram received twice
are at most what the README states: Telegram has no idempotency key, so a message whose
request was under way when the process died may be sent again, at most the outbox's
concurrency (16) per crash. The seed is printed (and is in every assertion message);
``GRIDBOT_SOAK_SEED=N`` replays a run.

Before the soak: taking over the sending duty hands the dead sender's leases back at
once, on both stores and in a real ``gridbot run``.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import os
import random
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridbot.config import load_config
from gridbot.domain import Chat, ChatKind, Outgoing
from gridbot.outbox import LEASE
from gridbot.runtime import Runtime
from gridbot.store import Store, store_for_url
from tests.fake_telegram import FakeTelegram
from tests.soak import IN_FLIGHT, Soak
from tests.test_store import T0, Backend, message
from tests.workers import TOKEN, write_config


async def test_release_leases_hands_back_one_platform_s_leased_messages(
        backend: Backend) -> None:
    store = backend.new_store()
    await store.open()
    try:
        async with store.transaction() as tx:
            for key in ("a", "b", "c"):
                await tx.enqueue(message(key), T0)
            await tx.enqueue(message("tg", platform="telegram"), T0)
            await tx.enqueue(message("later"), T0, not_before=T0 + timedelta(hours=1))
            leased = await tx.claim_outbox(T0, limit=2, lease=LEASE,
                                           platforms=["console", "telegram"])
            assert sorted(i.message.dedup_key for i in leased) == ["a", "b"]
            tg = await tx.claim_outbox(T0, limit=5, lease=LEASE, platforms=["telegram"])
            assert [i.message.dedup_key for i in tg] == ["tg"]
            await tx.mark_sent(leased[1].id, T0, "42")
        async with store.transaction() as tx:
            # Only the console's still leased one: not sent ones, nor another platform's.
            assert await tx.release_leases("console") == 1
            assert await tx.release_leases("console") == 0
            again = await tx.claim_outbox(T0, limit=10, lease=LEASE, platforms=["console"])
        # Due at once, first in line as before, and its first attempt still counts.
        assert [(i.message.dedup_key, i.attempts) for i in again] == [("a", 2), ("c", 1)]
        async with store.transaction() as tx:
            assert await tx.outbox_counts() == {"sending": 3, "sent": 1, "queued": 1}
    finally:
        await store.close()


async def test_taking_over_sending_sends_a_dead_sender_s_messages_at_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A message leased by a process that then died goes as soon as ``gridbot run``
    starts, not when its two-minute lease runs out; it is sent once."""
    fake = FakeTelegram()
    await fake.start()
    try:
        bot = fake.bot(TOKEN, "SoakBot")
        group = bot.group(-100_000_001, "幸福里1-3幢")
        url = f"sqlite:///{tmp_path / 'gridbot.db'}"
        config = load_config(write_config(tmp_path, "bot", url, fake, mode="polling"))
        store: Store = store_for_url(url)
        await store.open()
        now = datetime.now(UTC)
        async with store.transaction() as tx:
            await tx.sync_org(config)
            await tx.save_chat(Chat(platform="telegram", chat_id=str(group.id),
                                    kind=ChatKind.GROUP, title=group.title, microgrid="M01"),
                               bound_by="test", now=now)
            await tx.enqueue(Outgoing(platform="telegram", chat_id=str(group.id),
                                      text="leased by the dead", dedup_key="dead"), now)
            await tx.enqueue(Outgoing(platform="telegram", chat_id=str(group.id),
                                      text="queued after it", dedup_key="after"), now)
            held = await tx.claim_outbox(now, limit=1, lease=LEASE, platforms=["telegram"])
            assert [i.message.dedup_key for i in held] == ["dead"]
        await store.close()  # the process that leased it is gone

        runtime = Runtime(config)
        began = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="gridbot.outbox"):
            await runtime.start()
            try:
                await fake.until(lambda: len(bot.sent) == 2, timeout=10)
                waited = time.monotonic() - began
            finally:
                await runtime.stop()
        assert waited < 10 < LEASE.total_seconds()
        # Sent once each, in the order they were queued.
        assert [s.text for s in bot.sent] == ["leased by the dead", "queued after it"]
        assert "took over sending for telegram: 1 message(s)" in caplog.text
        store = store_for_url(url)
        await store.open()
        try:
            async with store.transaction() as tx:
                assert await tx.outbox_counts() == {"sent": 2}
        finally:
            await store.close()
    finally:
        await fake.stop()


def _seed() -> int:
    given = os.environ.get("GRIDBOT_SOAK_SEED")
    return int(given) if given else random.SystemRandom().randrange(1, 10**6)


@pytest.mark.slow(26)
async def test_soak_500_reports_with_duplicates_and_6_kills(
        tmp_path: Path, record_property: pytest.RecordProperty) -> None:
    seed = _seed()
    print(f"\nsoak seed {seed} (GRIDBOT_SOAK_SEED={seed} replays it)")
    soak = Soak(folder=tmp_path, seed=seed)
    try:
        figures = await asyncio.wait_for(soak.run(), timeout=150)
    except BaseException as exc:
        raise AssertionError(f"soak run failed; {soak.figures.line()}") from exc
    rows = soak.rows

    # Every report is exactly one case, and there is no case without a report.
    reported = rows("SELECT substr(text, 1, 5), COUNT(*) FROM cases GROUP BY 1")
    figures.cases = rows("SELECT COUNT(*) FROM cases")[0][0]
    figures.outbox = rows("SELECT COUNT(*) FROM outbox")[0][0]
    figures.messages = len(soak.sent)
    received = collections.Counter(soak.sent)
    figures.duplicates = sum(n - 1 for n in received.values())
    figures.bound = figures.kills * IN_FLIGHT
    print(f"soak: {figures.line()}")
    record_property("soak", dataclasses.asdict(figures))
    about = figures.line()

    assert figures.kills >= 5, about
    assert sorted(r for r, _ in reported) == [f"R{i:04}" for i in range(figures.reports)], about
    assert {n for _, n in reported} == {1}, about
    assert figures.cases == figures.reports, about
    # Each message was handled once, however often it came.
    assert rows("SELECT COUNT(*) FROM inbox")[0][0] == figures.reports, about
    assert figures.handed_out > figures.reports + figures.replayed, about

    # Every case's notifications were delivered: the whole outbox is sent, and what it
    # holds is what Telegram received, nothing more.
    assert dict(rows("SELECT status, COUNT(*) FROM outbox GROUP BY 1")) == \
        {"sent": figures.outbox}, about
    queued = collections.Counter((int(chat), text)
                                 for chat, text in rows("SELECT chat_id, text FROM outbox"))
    assert max(queued.values()) == 1, about  # each message's text is its own
    assert set(received) == set(queued), about
    # For each case: the reporter's acknowledgement in the group, the steward's in private.
    cases = rows("SELECT c.number, c.origin_chat_id, a.private_chat_id FROM cases c"
                 " JOIN accounts a ON a.person_id = c.assignee_id"
                 " AND a.platform = 'telegram'")
    assert len(cases) == figures.cases, about
    texts: dict[int, list[str]] = collections.defaultdict(list)
    for chat, text in received:
        texts[chat].append(text)
    for number, group, private in cases:
        mark = re.compile(rf"#{number}\D")
        assert any(mark.search(t) for t in texts[int(group)]), (number, about)
        assert any(mark.search(t) and "新工单" in t for t in texts[int(private)]), \
            (number, about)
    assert figures.outbox == 2 * figures.cases, about

    # No message twice beyond the bound: a request under way when the process died.
    assert figures.duplicates <= figures.bound, about
