"""The WeChat harness: ``gridbot run``'s runtime against the fake WeChat.

Shared by every test that talks to the bot over WeChat (pytest loads this module as a
plugin, from tests/conftest.py): the configuration of a WeCom app, an Official Account,
a group robot and an app chat pointed at :mod:`tests.fake_wechat`, and :class:`World`,
which posts signed, encrypted callbacks as WeChat's servers would and waits until the bot
has sent what they caused. Fixtures: ``wechat`` (the fake WeChat), ``wechat_world`` (the
runtime started, the Official Account in safe mode), ``mp_world`` (each test once with
the Official Account in safe and in plain mode).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gridbot.config import load_config
from gridbot.domain import Outgoing
from gridbot.linking import issue_link_code
from gridbot.runtime import Runtime
from tests.fake_wechat import (
    FakeWeChat,
    MpReply,
    MpServer,
    Sent,
    SmartBotServer,
    WeComServer,
)
from tests.telegram_harness import RunningClock

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = (ROOT / "config.example.toml").read_text(encoding="utf-8")
WORK_TOKEN, WORK_AES = "WorkCallbackToken", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
MP_TOKEN, MP_AES = "MpCallbackToken", "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
BOT_TOKEN, BOT_AES = "SmartBotToken", "SmartBotAesKey0123456789abcdefghijklmnopqrs"
OTHER_AES = "0000000000111111111122222222223333333333444"
ROBOT_M01 = "1b7f0c55-robot-m01"
APP_CHAT_M02 = "gridM02staff"
START = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
# WeCom userids, and Official Account openids
ZHOU, ZHANG, LIU_W = "zhoushegong", "zhangayi", "liunainai"
LIU, CHEN = "oLIU-openid-000001", "oCHEN-openid-00002"


def wechat_sections(fake: FakeWeChat, *, mp_mode: str = "safe", secret: str | None = None,
                    mp_extra: str = "") -> str:
    """The WeCom app (with an app chat for M02), the Official Account (``mp_mode`` safe or
    plain) and M01's group robot, on the fake."""
    return f"""
[wechat]
robot_api_base_url = "{fake.base_url}"

[wechat.work]
corp_id = "{fake.corp_id}"
agent_id = {fake.agent_id}
secret = "{secret or fake.corp_secret}"
token = "{WORK_TOKEN}"
encoding_aes_key = "{WORK_AES}"
api_base_url = "{fake.base_url}"

[wechat.work.chats]
M02 = "{APP_CHAT_M02}"

[wechat.mp]
app_id = "{fake.app_id}"
secret = "{fake.mp_secret}"
token = "{MP_TOKEN}"
api_base_url = "{fake.base_url}"
{f'encoding_aes_key = "{MP_AES}"' if mp_mode == "safe" else ""}
{mp_extra}

[wechat.robots]
M01 = "{fake.base_url}webhook/send?key={ROBOT_M01}"

"""


def write_config(folder: Path, fake: FakeWeChat, *, mp_mode: str = "safe",
                 secret: str | None = None, web: bool = False, mp_extra: str = "",
                 extra: str = "") -> Path:
    """``web``: serve the console and the residents' pages; ``mp_extra``: more lines for
    ``[wechat.mp]``; ``extra``: more tables at the end."""
    text = EXAMPLE.replace('url = "sqlite:///gridbot.db"', f'url = "sqlite:///{folder}/gridbot.db"')
    text = text.replace("port = 8080", "port = 0")
    if not web:  # the example serves the console; most of these tests have no use for it
        text = text.replace('\nenabled = true\npath = "/console"',
                            '\nenabled = false\npath = "/console"', 1)
    text += wechat_sections(fake, mp_mode=mp_mode, secret=secret, mp_extra=mp_extra)
    text += f"""
[wechat.smartbot]
token = "{BOT_TOKEN}"
encoding_aes_key = "{BOT_AES}"
name = "网格助手"
api_base_url = "{fake.base_url}"
{extra}"""
    path = folder / "gridbot.toml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class World:
    fake: FakeWeChat
    runtime: Runtime
    clock: RunningClock
    wecom: WeComServer
    mp: MpServer
    db: Path
    smartbot: SmartBotServer

    async def said(self, user: str, text: str) -> list[Sent]:
        """A WeCom member writes to the app; what WeChat delivered because of it."""
        before = len(self.fake.sent)
        answer = await self.wecom.say(user, text)
        assert answer.status_code == 200 and answer.content == b""
        return await self.settled(before)

    async def event(self, user: str, event: str, key: str | None = None) -> list[Sent]:
        before = len(self.fake.sent)
        answer = await self.wecom.post(self.wecom.event(user, event, key))
        assert answer.status_code == 200
        return await self.settled(before)

    async def mp_said(self, openid: str, text: str) -> tuple[MpReply, list[Sent]]:
        """A resident writes to the account: the passive reply, and what else was sent."""
        before = len(self.fake.sent)
        reply = await self.mp.say(openid, text)
        assert reply.status == 200, reply
        return reply, await self.settled(before)

    async def settled(self, before: int) -> list[Sent]:
        """Wait until the outbox holds nothing due, then return what was sent since."""
        await self.fake.until(lambda: not self.rows(
            "SELECT 1 FROM outbox WHERE status IN ('queued', 'sending') AND not_before <= ?",
            self.clock.now().astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%S.%fZ")))
        return self.fake.sent[before:]

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as db:
            return db.execute(sql, params).fetchall()

    def counts(self) -> dict[str, int]:
        tables = [r[0] for r in self.rows(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: self.rows(f"SELECT COUNT(*) FROM {t}")[0][0] for t in tables}

    async def code(self, person: str) -> str:
        _, code, _ = await issue_link_code(self.runtime.engine, person, self.clock.now())
        return code

    async def link(self, user: str, person: str) -> None:
        sent = await self.said(user, f"认证 {await self.code(person)}")
        assert [s.to for s in sent] == [user]

    async def case(self, number: int) -> Any:
        async with self.runtime.store.transaction() as tx:
            return await tx.case(number), await tx.events(number)

    async def enqueue(self, *messages: Outgoing) -> None:
        async with self.runtime.store.transaction() as tx:
            for message in messages:
                await tx.enqueue(message, self.clock.now())
        self.runtime.kick()

    async def drained(self) -> None:
        """Send everything due now and return when done: a drain takes its turn after
        any under way, so what is still unsent afterwards was not due."""
        await self.runtime.sender.drain()

    async def advance(self, span: timedelta) -> None:
        """Move the clock on and send what fell due by then."""
        self.clock.advance(span)
        await self.drained()


@pytest.fixture
async def wechat() -> AsyncIterator[FakeWeChat]:
    """The fake WeChat, on a free port of 127.0.0.1, knowing this harness's people."""
    server = FakeWeChat(members={ZHOU, ZHANG, LIU_W}, followers={LIU, CHEN},
                        robots={ROBOT_M01}, app_chats={APP_CHAT_M02})
    await server.start()
    yield server
    await server.stop()


async def start_world(folder: Path, fake: FakeWeChat, mp_mode: str, *, web: bool = False,
                      mp_extra: str = "", extra: str = "") -> World:
    """The runtime on a database in ``folder`` (a migrated copy if the test's ``database``
    fixture put one there), started; the caller stops it."""
    config = load_config(write_config(folder, fake, mp_mode=mp_mode, web=web,
                                      mp_extra=mp_extra, extra=extra))
    clock = RunningClock(START)
    fake.now = lambda: clock.now().timestamp()
    runtime = Runtime(config, clock=clock, sleep=clock.sleep)
    await runtime.start()
    assert runtime.http is not None
    url = runtime.http.url
    return World(
        fake=fake, runtime=runtime, clock=clock, db=folder / "gridbot.db",
        wecom=WeComServer(url + "/wechat/work", token=WORK_TOKEN, aes_key=WORK_AES,
                          corp_id=fake.corp_id, agent_id=fake.agent_id, now=fake.now),
        mp=MpServer(url + "/wechat/mp", token=MP_TOKEN, app_id=fake.app_id,
                    aes_key=MP_AES if mp_mode == "safe" else "", now=fake.now),
        smartbot=SmartBotServer(url + "/wechat/smartbot", token=BOT_TOKEN, aes_key=BOT_AES,
                                fake=fake, now=fake.now))


@pytest.fixture
async def wechat_world(database: Path, wechat: FakeWeChat) -> AsyncIterator[World]:
    w = await start_world(database.parent, wechat, "safe")
    yield w
    await w.runtime.stop()


@pytest.fixture(params=["safe", "plain"])
async def mp_world(request: pytest.FixtureRequest, database: Path,
                   wechat: FakeWeChat) -> AsyncIterator[World]:
    w = await start_world(database.parent, wechat, request.param)
    yield w
    await w.runtime.stop()


def texts(sent: list[Sent], to: str) -> list[str]:
    return [s.text for s in sent if s.to == to]
