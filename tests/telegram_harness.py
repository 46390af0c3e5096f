"""The Telegram harness: ``gridbot run``'s runtime against the fake Bot API.

Shared by every test that talks to the bot over Telegram (pytest loads this module as a
plugin, from tests/conftest.py): the configuration pointed at :mod:`tests.fake_telegram`,
a clock running at real speed that tests may move, and :class:`World`, which says
messages as Telegram users and waits until the bot has handled them and sent what they
caused. Fixtures: ``telegram`` (the fake Bot API server), ``polling`` and ``webhook``
(the runtime started in that mode), ``telegram_world`` (each test once in either mode).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gridbot.adapters.telegram.adapter import TelegramAdapter
from gridbot.config import load_config
from gridbot.linking import issue_link_code
from gridbot.runtime import Runtime
from tests.fake_telegram import Chat, FakeBot, FakeTelegram, Sent

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "7001:AAF-test-token"
SECRET = "s3cret-Token_1"
PUBLIC_URL = "https://gridbot.example.org/telegram/webhook"

ZHOU = {"id": 1001, "is_bot": False, "first_name": "周", "last_name": "社工"}
ZHANG = {"id": 1002, "is_bot": False, "first_name": "张阿姨"}
LIU = {"id": 1003, "is_bot": False, "first_name": "刘奶奶", "language_code": "zh-hans"}
CHEN = {"id": 1004, "is_bot": False, "first_name": "陈", "last_name": "先生"}
GROUP_ID = -1001234500001


class RunningClock:
    """Real-speed time from a fixed Monday morning, which tests may move forward."""

    def __init__(self, start: datetime) -> None:
        self._start = start
        self._t0 = time.monotonic()
        self._offset = timedelta()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._t0) + self._offset

    def advance(self, delta: timedelta) -> None:
        self._offset += delta

    async def sleep(self, seconds: float) -> None:
        """Wait until this clock has moved ``seconds`` on, by running or by a jump."""
        until = self.now() + timedelta(seconds=seconds)
        while (left := (until - self.now()).total_seconds()) > 0:
            await asyncio.sleep(min(left, 0.01))


def write_config(folder: Path, fake: FakeTelegram, *, mode: str = "polling",
                 token: str = TOKEN, web: bool = False, extra: str = "",
                 replace: tuple[tuple[str, str], ...] = ()) -> Path:
    """config.example.toml with a database in ``folder``, any free HTTP port, and a
    [telegram] section pointed at the fake server (``web``: and the office console);
    ``extra``: more tables after it; ``replace``: (old, new) edits of the text."""
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    text = text.replace('url = "sqlite:///gridbot.db"', f'url = "sqlite:///{folder}/gridbot.db"')
    text = text.replace("port = 8080", "port = 0")
    text += (f'\n[telegram]\ntoken = "{token}"\nbase_url = "{fake.base_url}"\n'
             f'base_file_url = "{fake.base_file_url}"\nmode = "{mode}"\n')
    if mode == "webhook":
        text += f'webhook_url = "{PUBLIC_URL}"\nwebhook_secret = "{SECRET}"\n'
    if not web:  # the example serves the console; most tests have no use for it
        text = text.replace('[web]\n', '[web]\nenabled = false\n', 1).replace(
            "\nenabled = true\npath", "\npath", 1)
    text += extra
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = folder / "gridbot.toml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class World:
    fake: FakeTelegram
    bot: FakeBot
    runtime: Runtime
    clock: RunningClock
    group: Chat
    db: Path

    async def said(self, chat: Chat, user: dict[str, Any], text: str, **kw: Any) -> list[Sent]:
        """``user`` says ``text`` in ``chat``; the messages the bot sent because of it."""
        before = len(self.bot.sent)
        message = self.bot.say(chat, user, text, **kw)
        await self.handled(chat.id, message["message_id"])
        return await self.settled(before)

    async def ignored(self, chat: Chat, user: dict[str, Any], text: str,
                      **kw: Any) -> list[Sent]:
        """Like :meth:`said`, for what the bot does not even record: a marker message
        from someone else follows, and what was sent before its answer is returned."""
        before = len(self.bot.sent)
        self.bot.say(chat, user, text, **kw)
        self.bot.say(self.bot.private(CHEN), CHEN, "/help")
        await self.fake.until(lambda: any(s.chat_id == CHEN["id"]
                                          for s in self.bot.sent[before:]))
        return [s for s in self.bot.sent[before:] if s.chat_id != CHEN["id"]]

    async def pressed(self, sent: Sent, button: str, user: dict[str, Any]) -> list[Sent]:
        before = len(self.bot.sent)
        query_id = self.bot.press(sent, button, user)
        await self.fake.until(lambda: query_id in self.bot.answered)
        return await self.settled(before)

    async def by_hand(self) -> None:
        """From now on the test alone drains the outbox (:meth:`drained`): the send loop
        and the timers are stopped, so nothing sends behind its back."""
        await self.runtime.scheduler.stop()
        await self.runtime.sending.stop()

    async def drained(self) -> None:
        """Send everything due now and return when done: a drain takes its turn after
        any under way, so what is still unsent afterwards was not due."""
        result = await self.runtime.sender.drain()
        assert result is not None

    async def handled(self, chat_id: int, message_id: int) -> None:
        await self.fake.until(lambda: self.rows(
            "SELECT 1 FROM inbox WHERE platform = 'telegram' AND chat_id = ? AND message_id = ?",
            str(chat_id), str(message_id)))

    async def settled(self, before: int) -> list[Sent]:
        """Wait until the outbox holds nothing due, then return what was sent since."""
        await self.fake.until(lambda: not self.rows(
            "SELECT 1 FROM outbox WHERE status IN ('queued', 'sending') AND not_before <= ?",
            self.clock.now().astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%S.%fZ")))
        return self.bot.sent[before:]

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as db:
            return db.execute(sql, params).fetchall()

    async def write(self, sql: str) -> None:
        """Change the database behind the bot's back, off the event loop: the bot may be
        in a transaction that needs the loop to finish and let go of the write lock."""
        await asyncio.to_thread(self.rows, sql)

    def counts(self) -> dict[str, int]:
        tables = [r[0] for r in self.rows("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: self.rows(f"SELECT COUNT(*) FROM {t}")[0][0] for t in tables}

    async def link(self, user: dict[str, Any], person: str) -> None:
        _, code, _ = await issue_link_code(self.runtime.engine, person, self.clock.now())
        replies = await self.said(self.bot.private(user), user, f"/link {code}")
        assert len(replies) == 1 and replies[0].chat_id == user["id"]

    async def case(self, number: int) -> Any:
        async with self.runtime.store.transaction() as tx:
            return await tx.case(number), await tx.events(number)


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    """The fake Bot API, on a free port of 127.0.0.1."""
    server = FakeTelegram()
    await server.start()
    yield server
    await server.stop()


async def start_world(folder: Path, fake: FakeTelegram, mode: str, *,
                      read_timeout: float | None = None, web: bool = False, extra: str = "",
                      start: datetime | None = None,
                      replace: tuple[tuple[str, str], ...] = ()) -> World:
    """The runtime on a database in ``folder`` (a migrated copy if the test's
    ``database`` fixture put one there), started; the caller stops it.
    ``read_timeout``: how long the bot waits for the Bot API's answers (PTB's 5 s);
    ``start``: where its clock starts (a Monday morning in November 2026)."""
    bot = fake.bot(TOKEN, "GridTestBot")
    group = bot.group(GROUP_ID, "幸福里1-3幢 邻里群")
    config = load_config(write_config(folder, fake, mode=mode, web=web, extra=extra,
                                      replace=replace))
    clock = RunningClock(start or datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    assert config.telegram is not None
    adapters = None if read_timeout is None else [
        TelegramAdapter(config.telegram, read_timeout=read_timeout)]
    runtime = Runtime(config, clock=clock, sleep=clock.sleep, adapters=adapters)
    await runtime.start()
    assert runtime.http is not None
    bot.deliver_to = runtime.http.url + "/telegram/webhook"  # the TLS proxy's job
    return World(fake=fake, bot=bot, runtime=runtime, clock=clock, group=group,
                 db=folder / "gridbot.db")


@pytest.fixture(params=["polling", "webhook"])
async def telegram_world(request: pytest.FixtureRequest, database: Path,
                         telegram: FakeTelegram) -> AsyncIterator[World]:
    w = await start_world(database.parent, telegram, request.param)
    yield w
    await w.runtime.stop()


@pytest.fixture
async def polling(database: Path, telegram: FakeTelegram) -> AsyncIterator[World]:
    w = await start_world(database.parent, telegram, "polling")
    yield w
    await w.runtime.stop()


@pytest.fixture
async def webhook(database: Path, telegram: FakeTelegram) -> AsyncIterator[World]:
    w = await start_world(database.parent, telegram, "webhook")
    yield w
    await w.runtime.stop()


@pytest.fixture
async def web_world(database: Path, telegram: FakeTelegram) -> AsyncIterator[World]:
    """Polling Telegram, with the web server up (the residents' pages, the console)."""
    w = await start_world(database.parent, telegram, "polling", web=True)
    yield w
    await w.runtime.stop()


async def bound(w: World) -> World:
    """Community staff and the steward linked, the group bound to M01."""
    await w.link(ZHOU, "zhou")
    replies = await w.said(w.group, ZHOU, "/bind@GridTestBot M01")
    assert [r.chat_id for r in replies] == [GROUP_ID]
    assert "M01" in replies[0].plain or "幸福里1-3幢" in replies[0].plain
    await w.link(ZHANG, "zhang")
    return w




def gridbot_process(config: Path, *args: str,
                    env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``gridbot --config CONFIG ARGS…`` as its own process, in the configuration's folder,
    with ``env`` added to this process's environment (which stays as it is)."""
    return subprocess.Popen([sys.executable, "-m", "gridbot", "--config", str(config), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=config.parent,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
