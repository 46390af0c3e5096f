"""``gridbot doctor`` against a healthy setup (a running bot on the fake Bot API, everyone
on a roster reachable, a fresh backup: exit code 0) and against each fault it finds: a bad
token, the webhook pointing elsewhere, an old schema, no backup for two days, a steward
nobody can reach, a clock five minutes off (the fake's Date header), nobody sending."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gridbot import backup as backups
from gridbot.cli import main
from gridbot.config import Config, load_config
from gridbot.doctor import examine
from gridbot.domain import Account, Chat, ChatKind
from gridbot.findings import Finding
from gridbot.reach import rostered
from gridbot.render import Renderer
from gridbot.store import SQLiteStore
from tests.fake_telegram import FakeTelegram
from tests.fake_wechat import FakeWeChat
from tests.telegram_harness import (
    PUBLIC_URL,
    TOKEN,
    RunningClock,
    World,
    start_world,
    write_config,
)
from tests.test_upgrade import PREVIOUS, older_database, revision_of
from tests.wechat_harness import start_world as start_wechat

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after:telegram.warnings.PTBDeprecationWarning")

SHANGHAI = ZoneInfo("Asia/Shanghai")


def now() -> datetime:
    return datetime.now(SHANGHAI)


async def link_rostered(config: Config, db: Path, *, but: str = "") -> None:
    """Everyone on a roster linked, with a private chat the bot may write to (but one)."""
    store = SQLiteStore(str(db))
    await store.open()
    try:
        async with store.transaction() as tx:
            for n, person in enumerate(rostered(config)):
                if person.id == but:
                    continue
                uid = str(5000 + n)
                await tx.save_chat(Chat(platform="telegram", chat_id=uid,
                                        kind=ChatKind.PRIVATE), bound_by=None, now=now())
                await tx.save_account(Account(platform="telegram", user_id=uid,
                                              display_name=person.name, person_id=person.id,
                                              private_chat_id=uid), now())
    finally:
        await store.close()


async def healthy(folder: Path, telegram: FakeTelegram, *, but: str = "") -> World:
    """The bot running on real time, everyone reachable (but one), a backup just made."""
    w = await start_world(folder, telegram, "polling", start=now())
    await link_rostered(w.runtime.config, w.db, but=but)
    backups.backup(w.db)
    return w


def faults(found: list[Finding]) -> dict[str, list[Finding]]:
    bad: dict[str, list[Finding]] = {}
    for finding in found:
        if not finding.ok:
            bad.setdefault(finding.check, []).append(finding)
    return bad


async def doctor(config: Path) -> tuple[int, str]:
    """``gridbot --config CONFIG doctor`` in this process; its exit code and output."""
    out = io.StringIO()

    def run() -> int:
        from contextlib import redirect_stdout

        with redirect_stdout(out):
            return main(["--config", str(config), "doctor"])

    code = await asyncio.to_thread(run)
    return code, out.getvalue()


async def test_a_healthy_setup_passes(database: Path, telegram: FakeTelegram) -> None:
    w = await healthy(database.parent, telegram)
    try:
        found = await examine(w.runtime.config, w.clock)
        assert faults(found) == {}
        checks = {f.check for f in found}
        assert {"db_schema", "db_integrity", "disk", "reach", "sending", "telegram_token",
                "clock", "backup"} <= checks
        code, out = await doctor(database.parent / "gridbot.toml")
        assert code == 0, out
        assert "全部正常" in out and "✗" not in out
    finally:
        await w.runtime.stop()


async def test_an_unreachable_steward_and_nobody_sending(database: Path,
                                                         telegram: FakeTelegram) -> None:
    w = await healthy(database.parent, telegram, but="zhang")
    await w.runtime.stop()  # and nobody sends any more
    code, out = await doctor(database.parent / "gridbot.toml")
    assert code == 1
    lines = [line for line in out.splitlines() if line.startswith("✗")]
    assert any("张" in line and "zhang" in line and "收不到消息" in line for line in lines)
    assert any("张阿姨（zhang，M01主班 M02备班）" in line for line in lines)
    assert any("没有进程在发送 Telegram" in line for line in lines)
    assert "个问题" in out.splitlines()[-1]


async def test_a_bad_token(database: Path, telegram: FakeTelegram) -> None:
    telegram.bot(TOKEN)
    config = load_config(write_config(database.parent, telegram, token="7002:not-this-one"))
    found = await examine(config, RunningClock(now()))
    assert list(faults(found).get("telegram_token", [])) == [
        Finding(check="telegram_token", ok=False)]


async def test_a_webhook_pointing_elsewhere(database: Path, telegram: FakeTelegram) -> None:
    bot = telegram.bot(TOKEN)
    bot.webhook_url = "https://elsewhere.example.net/hook"
    config = load_config(write_config(database.parent, telegram, mode="webhook"))
    found = await examine(config, RunningClock(now()))
    [hook] = faults(found)["telegram_webhook"]
    assert hook.params == {"url": "https://elsewhere.example.net/hook", "wanted": PUBLIC_URL}
    text = Renderer(SHANGHAI, "zh-CN").text("doctor_line", check=hook.check, ok=hook.ok,
                                           p=dict(hook.params))
    assert "指向别处" in text and "elsewhere.example.net" in text


async def test_an_old_schema_is_named_and_left_alone(tmp_path: Path,
                                                     telegram: FakeTelegram) -> None:
    telegram.bot(TOKEN)
    await older_database(tmp_path / "gridbot.db")
    config = load_config(write_config(tmp_path, telegram))
    found = await examine(config, RunningClock(now()))
    [schema] = faults(found)["db_schema"]
    assert schema.params["current"] == PREVIOUS
    assert revision_of(tmp_path / "gridbot.db") == PREVIOUS  # doctor migrated nothing


async def test_no_backup_for_two_days(database: Path, telegram: FakeTelegram) -> None:
    telegram.bot(TOKEN)
    config = load_config(write_config(database.parent, telegram))
    assert "backup_none" in faults(await examine(config, RunningClock(now())))
    made = backups.backup(database)
    three_days_ago = (now() - timedelta(days=3)).timestamp()
    os.utime(made.path, (three_days_ago, three_days_ago))
    [old] = faults(await examine(config, RunningClock(now())))["backup"]
    assert float(old.params["days"]) >= 2.9


async def test_a_clock_five_minutes_off(database: Path, telegram: FakeTelegram) -> None:
    telegram.bot(TOKEN)
    config = load_config(write_config(database.parent, telegram))
    found = await examine(config, RunningClock(now()))
    assert "clock" not in faults(found)
    telegram.date_offset = 400  # Telegram's clock runs ahead: ours is behind
    [clock] = faults(await examine(config, RunningClock(now())))["clock"]
    assert clock.params["platform"] == "telegram" and -410 <= clock.params["skew"] <= -390


async def test_a_callback_the_public_address_does_not_forward(database: Path,
                                                              wechat: FakeWeChat) -> None:
    """With a public URL, each WeChat callback is asked for there: gridbot's own refusal
    of an unsigned request proves the way in; no answer at the public address is named."""
    w = await start_wechat(database.parent, wechat, "safe", web=True)
    try:
        assert w.runtime.config.web is not None and w.runtime.http is not None
        served = w.runtime.config.web.model_copy(update={"public_url": w.runtime.http.url})
        config = dataclasses.replace(w.runtime.config, web=served)
        found = await examine(config, w.clock)
        reached = [f for f in found if f.check == "callback_reach"]
        assert {f.params["platform"] for f in reached} == {"wecom", "wechat_mp"}
        assert all(f.ok for f in reached), reached
        elsewhere = w.runtime.config.web.model_copy(
            update={"public_url": "http://127.0.0.1:9"})  # nothing listens there
        config = dataclasses.replace(w.runtime.config, web=elsewhere)
        bad = faults(await examine(config, w.clock))["callback_reach"]
        assert {f.params["url"] for f in bad} == {"http://127.0.0.1:9/wechat/work",
                                                  "http://127.0.0.1:9/wechat/mp"}
        text = Renderer(SHANGHAI, "zh-CN").text("doctor_line", check="callback_reach",
                                                      ok=False, p=bad[0].params)
        assert "HTTPS 代理" in text
    finally:
        await w.runtime.stop()
