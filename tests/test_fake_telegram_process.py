"""The fake Bot API in a process of its own, as bench/telegram.py measures the bots with it.

Real python-telegram-bot calls reach the child process over HTTP; the control interface
queues a backlog, waits for the messages sent (on the server, no polling), collects
them as :class:`Sent`, reads the child's CPU time, forgets everything between rounds,
and the child ends when its parent closes its stdin.
"""

from __future__ import annotations

import asyncio

import httpx
from telegram import Bot

from tests.fake_telegram import CONTROL, FakeTelegramProcess

TOKEN = "8009:process-test"


async def test_a_bot_polls_and_sends_through_the_child_process() -> None:
    fake = FakeTelegramProcess()
    await fake.start()
    try:
        remote = await fake.bot(TOKEN, "ProcessTestBot")
        [group] = await remote.groups([(-1001, "楼栋群")])
        user = {"id": 42, "is_bot": False, "first_name": "居民"}
        await remote.privates([user])
        queued_at, ids = await remote.say([(group, user, "灯坏了"), (group, user, "/start")])
        assert ids == [1, 2]
        async with Bot(TOKEN, base_url=fake.base_url, base_file_url=fake.base_file_url) as bot:
            assert (await bot.get_me()).username == "ProcessTestBot"
            updates = await bot.get_updates(timeout=5)
            assert [u.message.text for u in updates if u.message] == ["灯坏了", "/start"]
            waiting = asyncio.create_task(remote.wait_sent(2, timeout=10))
            await bot.send_message(-1001, "<b>收到</b>", parse_mode="HTML",
                                   reply_to_message_id=ids[0])
            await bot.send_message(42, "新工单 #1")
            assert await waiting == 2
        sent = await remote.sent()
        assert [(s.chat_id, s.plain, s.reply_to) for s in sent] == [
            (-1001, "收到", 1), (42, "新工单 #1", None)]
        assert all(s.at >= queued_at for s in sent)  # one clock: the child's
        assert [s.plain for s in await remote.sent(offset=1)] == ["新工单 #1"]
        assert await remote.wait_sent(3, timeout=0.05) == 2  # a timeout answers the count
        assert 0 < await fake.cpu() < 60  # the child's CPU time so far, in seconds

        await fake.reset()
        async with httpx.AsyncClient() as client:
            gone = await client.post(f"{fake.base_url}{TOKEN}/getMe")
            assert gone.status_code == 401
            unknown = await client.post(f"http://127.0.0.1:{fake.port}{CONTROL}/nothing")
            assert unknown.status_code == 404
    finally:
        await fake.stop()
    process = fake._process
    assert process is not None and process.returncode == 0  # it stopped itself
