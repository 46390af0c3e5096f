"""Per-person and per-chat limits on reports: a polite answer, nothing half-done."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from gridbot.config import Config, parse_config
from gridbot.demo import DEFAULT_START, Demo, parse_start
from gridbot.errors import ConfigError
from tests.conftest import EXAMPLE_CONFIG, Bot, to


@pytest.fixture
async def limited(tmp_path: Path, config: Config) -> AsyncIterator[Bot]:
    limits = dataclasses.replace(config.limits, reports_per_person=3, reports_per_chat=5,
                                 report_window=timedelta(hours=1))
    # The same words again are counted as reports here, not offered as duplicates
    # (tests/test_places.py covers those).
    policy = dataclasses.replace(config.policy, duplicate_window=timedelta(0))
    config = dataclasses.replace(config, limits=limits, policy=policy)
    path = tmp_path / "gridbot.db"
    async with Demo(config, path, parse_start(DEFAULT_START, config), out=io.StringIO()) as demo:
        yield Bot(demo=demo, path=path)


async def cases(bot: Bot) -> int:
    n = 0
    while await bot.case(n + 1) is not None:
        n += 1
    return n


async def test_one_person_is_held_back_politely(limited: Bot) -> None:
    bot = limited
    for i in range(3):
        await bot.say("刘奶奶", f"报事 {i + 1}幢楼道灯坏了")
        await bot.wait(timedelta(minutes=10))
    out = await bot.say("刘奶奶", "报事 4幢楼道灯坏了")
    answer = to(out, "M01")
    assert len(answer) == 1 and "没有登记成工单" in answer[0]
    assert "10:00 以后再发" in answer[0]       # an hour after the first of the three (09:00)
    assert "4幢楼道灯坏了" in answer[0]         # the words come back, nothing is lost
    assert to(out, "zhang") == [] and await cases(bot) == 3
    # Someone else in the same group is not held back by her.
    out = await bot.say("陈先生", "报事 5幢电梯坏了")
    assert await cases(bot) == 4
    # Urgent matters are never held back.
    await bot.say("刘奶奶", "报事 3幢楼道冒烟了，着火了")
    assert await cases(bot) == 5
    # Once fewer than three of her reports (the urgent one counts) fall in the last hour,
    # she may report again.
    await bot.wait(timedelta(minutes=51))
    await bot.say("刘奶奶", "报事 4幢楼道灯坏了")
    assert await cases(bot) == 6


async def test_a_whole_group_is_held_back(limited: Bot) -> None:
    bot = limited
    for who in ["刘奶奶", "陈先生", "刘奶奶", "陈先生", "张阿姨"]:
        await bot.say(who, "报事 楼道灯坏了")
    out = await bot.say("陈先生", "报事 电梯坏了")
    assert "这个群在 1小时内已经报事 5 件" in to(out, "M01")[0]
    assert await cases(bot) == 5
    # Reports in private are another chat.
    await bot.say("黄阿姨", "报事 电梯坏了", private=True)
    assert await cases(bot) == 6


async def test_english_speakers_get_it_in_english(limited: Bot) -> None:
    bot = limited
    for _ in range(3):
        await bot.say("Tom", "/report the lift is broken")
    out = await bot.say("Tom", "/report the lift is broken again")
    assert "not logged as a case" in to(out, "M04")[0]


def test_limits_are_configured() -> None:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    assert "reports_per_person = 10\n" in text
    config = parse_config(text.replace("reports_per_person = 10\n", "reports_per_person = 0\n")
                          .replace("report_window_minutes = 60", "report_window_minutes = 30"))
    assert config.limits.reports_per_person == 0
    assert config.limits.reports_per_chat == 60
    assert config.limits.report_window == timedelta(minutes=30)
    with pytest.raises(ConfigError, match="report_window_minutes"):
        parse_config(text.replace("report_window_minutes = 60", "report_window_minutes = 0"))
