"""Heartbeats of duties, and ``gridbot notice`` that never waits for a bot that is not there.

The store keeps one heartbeat row per duty (the contract, on SQLite and PostgreSQL); the
process holding a duty beats at every round and marks it released when it stops; the
command line reads the rows: with no living sender it says so at once and exits, with
one it follows the progress, and it stops watching when the sender goes away.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridbot.cli import notice as notice_cli
from gridbot.cli.session import Session
from gridbot.clock import VirtualClock
from gridbot.config import load_config
from gridbot.domain import Chat, ChatKind
from gridbot.render import Renderer
from gridbot.singleton_duties import LIVENESS, Duties, Duty, alive
from gridbot.store import SQLiteStore, Store
from tests.conftest import EXAMPLE_CONFIG
from tests.telegram_harness import World, bound
from tests.test_store import Backend

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    opened = backend.new_store()
    await opened.open()
    yield opened
    await opened.close()


# -- the store's contract ----------------------------------------------------------------------


async def test_a_beat_is_one_row_per_duty_and_a_release_ends_it(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.heartbeats() == []
        await tx.beat("send:telegram", "a:1", T0, "GridTestBot")
        await tx.beat("digest", "a:1", T0)
    async with store.transaction() as tx:
        await tx.beat("send:telegram", "a:1", T0 + timedelta(seconds=3), "GridTestBot")
        beats = await tx.heartbeats()
    assert [(b.duty, b.holder, b.beat_at, b.released_at, b.detail) for b in beats] == [
        ("digest", "a:1", T0, None, ""),
        ("send:telegram", "a:1", T0 + timedelta(seconds=3), None, "GridTestBot")]
    now = T0 + timedelta(seconds=4)
    assert alive(beats, "send:telegram", now) is beats[1]
    assert alive(beats, "send:telegram", now + LIVENESS) is None  # its process died
    assert alive(beats, "send:wecom", now) is None
    async with store.transaction() as tx:
        await tx.release_beat("send:telegram", "a:1", now)
        await tx.release_beat("digest", "someone-else:2", now)  # not theirs: nothing
        beats = await tx.heartbeats()
    assert [b.released_at for b in beats] == [None, now]
    assert alive(beats, "send:telegram", now) is None
    assert beats[1].detail == "GridTestBot"  # who it was stays known


async def test_whoever_takes_a_duty_over_replaces_the_row(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.beat("send:telegram", "a:1", T0, "OldBot")
        await tx.release_beat("send:telegram", "a:1", T0)
    async with store.transaction() as tx:
        await tx.beat("send:telegram", "b:2", T0 + timedelta(seconds=1), "NewBot")
        await tx.release_beat("send:telegram", "a:1", T0 + timedelta(seconds=2))  # too late
        (beat,) = await tx.heartbeats()
    assert (beat.holder, beat.released_at, beat.detail) == ("b:2", None, "NewBot")


# -- the process that holds duties ----------------------------------------------------------------


async def test_duties_beat_while_held_and_say_when_released(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "gridbot.db"))
    await store.open()
    clock = VirtualClock(T0)
    held: list[str] = []

    async def take() -> None:
        held.append("send")

    async def drop() -> None:
        held.remove("send")

    duties = Duties(store, clock=clock, holder="here:1")
    duties.add(Duty(name="send:console", take=take, drop=drop, until_close=True,
                    detail="console"))
    duties.add(Duty(name="poll:console", take=take, drop=drop))
    try:
        await duties.check(first=True)
        async with store.transaction() as tx:
            beats = await tx.heartbeats()
        assert [(b.duty, b.holder, b.beat_at) for b in beats] == [
            ("poll:console", "here:1", T0), ("send:console", "here:1", T0)]
        clock.advance(LIVENESS + timedelta(seconds=1))
        assert alive(beats, "send:console", clock.now()) is None  # no round for too long
        await duties.check()  # the next round
        async with store.transaction() as tx:
            assert alive(await tx.heartbeats(), "send:console", clock.now()) is not None
        await duties.stop()  # polling stops now; sending goes on until the store closes
        async with store.transaction() as tx:
            beats = {b.duty: b for b in await tx.heartbeats()}
        assert beats["poll:console"].released_at == clock.now()
        assert beats["send:console"].released_at is None
        await duties.close()
        async with store.transaction() as tx:
            assert all(b.released_at is not None for b in await tx.heartbeats())
    finally:
        await store.close()


# -- gridbot notice -------------------------------------------------------------------------------


async def bound_group(config_path: Path, platform: str = "telegram") -> None:
    config = load_config(config_path)
    store = SQLiteStore(config.storage_url.removeprefix("sqlite:///"))
    await store.open()
    try:
        async with store.transaction() as tx:
            await tx.sync_org(config)
            await tx.save_chat(Chat(platform=platform, chat_id="-1001", kind=ChatKind.GROUP,
                                    title="幸福里1-3幢", microgrid="M01"),
                               bound_by="zhou", now=datetime.now(UTC))
    finally:
        await store.close()


@pytest.mark.slow
def test_with_no_bot_running_the_notice_is_saved_and_the_command_returns_at_once(
        tmp_path: Path) -> None:
    config = tmp_path / "gridbot.toml"
    config.write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    asyncio.run(bound_group(config))
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "gridbot", "notice", "--scope", "all",
                          "--text", "周六上午9点活动室免费量血压"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=30, check=False)
    took = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    assert "通知 #1 已写入数据库" in run.stdout
    assert run.stderr.startswith("没有正在运行的机器人，通知已保存，机器人启动后发送。")
    assert "等待机器人接手" not in run.stderr
    assert took < 10, f"{took:.1f} s"  # a Python start and one query, not a wait
    for later in (["--at", "+2h"], ["--no-wait"]):
        run = subprocess.run([sys.executable, "-m", "gridbot", "notice", "--scope", "M01",
                              "--text", "x", *later], cwd=tmp_path, capture_output=True,
                             text=True, timeout=30, check=False)
        assert run.returncode == 0 and "没有正在运行的机器人" in run.stderr


def notice_args(**given: object) -> argparse.Namespace:
    args = dict(scope=None, list=False, show=None, cancel=None, text=None, at=None,
                as_person=None, no_wait=False, plan=False)
    args.update(given)
    return argparse.Namespace(**args)


@pytest.fixture
async def running(polling: World) -> World:
    """gridbot run on Telegram (the fake Bot API), M01's group bound."""
    return await bound(polling)


async def notice(w: World, args: argparse.Namespace) -> int:
    """``gridbot notice`` on the running bot's configuration and clock."""
    config = w.runtime.config
    async with Session(config=config, renderer=Renderer(config.timezone),
                       clock=w.clock) as session:
        return await notice_cli.notice(session, args)


async def follow_notice(w: World, capsys: pytest.CaptureFixture[str], text: str) -> tuple[
        int, str]:
    """``gridbot notice --scope M01 --text TEXT`` beside the running bot, whose next sweep
    (every 15 s in production) the test brings forward."""
    command = asyncio.create_task(notice(w, notice_args(scope="M01", text=text)))
    while not command.done():
        w.runtime.scheduler.kick()
        await asyncio.sleep(0.05)
    captured = capsys.readouterr()
    return command.result(), captured.out + captured.err


async def test_with_the_bot_running_it_follows_the_sending_to_the_end(
        running: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, printed = await asyncio.wait_for(follow_notice(running, capsys, "明天停水"), 30)
    assert code == 0, printed
    assert "没有正在运行的机器人" not in printed
    assert "通知 #1 发完了" in printed and "共 1 个群：送达 1。" in printed
    assert any("明天停水" in s.plain for s in running.bot.sent_to(running.group.id))


async def test_when_the_bot_stops_the_command_stops_watching(
        running: World, capsys: pytest.CaptureFixture[str]) -> None:
    # Telegram keeps failing, so the delivery stays pending; then the bot is stopped.
    running.bot.failures["sendMessage"] = [(500, None)] * 1000
    watching = asyncio.create_task(follow_notice(running, capsys, "明天停电"))
    await running.fake.until(lambda: running.rows(
        "SELECT 1 FROM deliveries WHERE notice_id = 1"), timeout=20)
    await running.runtime.stop()
    code, printed = await asyncio.wait_for(watching, 30)
    assert code == 1
    assert "机器人停止了发送，剩下的群等它重新启动后再发" in printed
    # and the next notice knows at once that nobody sends
    assert await notice(running, notice_args(scope="M01", text="再一条")) == 0
    assert "没有正在运行的机器人，通知已保存" in capsys.readouterr().err
