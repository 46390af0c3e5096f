"""The database holds the truth: a restart loses nothing, a duplicate does nothing twice."""

from __future__ import annotations

import io

from gridbot.config import Config
from gridbot.demo import DEFAULT_START, Demo, parse_start
from gridbot.domain import Outcome, Status
from gridbot.store import migrating
from tests.conftest import Bot, incoming, to


async def test_a_duplicate_update_does_nothing_twice(bot: Bot) -> None:
    message = incoming("报事 3幢楼道灯坏了", message_id="tg-1001")
    outcome, first = await bot.handle(message)
    assert outcome is Outcome.HANDLED and len(first) == 2
    outcome, second = await bot.handle(message)
    assert outcome is Outcome.DUPLICATE and second == []
    assert await bot.case(2) is None
    # The same message id in another chat is another message.
    outcome, _ = await bot.handle(incoming("报事 垃圾满了", chat="group:M02",
                                           message_id="tg-1001", sender="huang"))
    assert outcome is Outcome.HANDLED and (await bot.case(2)) is not None


async def test_a_duplicate_refusal_is_answered_once(bot: Bot) -> None:
    message = incoming("认领 1", message_id="tg-7")
    outcome, out = await bot.handle(message)
    assert outcome is Outcome.REFUSED and len(out) == 1
    outcome, out = await bot.handle(message)
    assert outcome is Outcome.DUPLICATE and out == []


async def test_restart_keeps_cases_events_and_pending_outbox(tmp_path, config: Config) -> None:
    path = tmp_path / "gridbot.db"
    start = parse_start(DEFAULT_START, config)
    async with Demo(config, path, start, out=io.StringIO()) as demo:
        await demo.say("刘奶奶", "报事 3幢楼道灯坏了")
        await demo.say("张阿姨", "认领 1", private=True)
        # The bot is killed after the next report is committed but before anything is sent.
        await demo.engine.handle(incoming("报事 健身器材坏了", message_id="late"))
        async with demo.store.transaction() as tx:
            pending = await tx.outbox_counts()
            events_before = await tx.events(1)
        assert pending.get("queued") == 2
        sent_before = len(demo.console.delivered)
    assert sent_before == 4

    async with Demo(config, path, demo.clock.now(), out=io.StringIO()) as again:
        async with again.store.transaction() as tx:
            case1, case2 = await tx.case(1), await tx.case(2)
            assert case1.status is Status.CLAIMED and case1.assignee_id == "zhang"
            assert case2.status is Status.ASSIGNED
            assert await tx.events(1) == events_before
            assert await again.store.schema_version() == migrating.versions()[-1]
        # The redelivered update is recognised, and the queued messages go out once.
        assert await again.engine.handle(incoming("报事 健身器材坏了", message_id="late")) \
            is Outcome.DUPLICATE
        await again.sender.drain()
        delivered = [d.message for d in again.console.delivered]
        assert len(delivered) == 2
        assert "#2" in to(delivered, "M01")[0] and "#2" in to(delivered, "zhang")[0]
        await again.sender.drain()
        assert len(again.console.delivered) == 2
        async with again.store.transaction() as tx:
            assert (await tx.outbox_counts()) == {"sent": 6}
