"""Errands and patrol visits in the figures: /stats and the monthly workbook count errands
per volunteer and per kind, visits per steward, ledger coverage and cases from patrols,
with their definitions on the 口径说明 sheet."""

from __future__ import annotations

from pathlib import Path

from openpyxl import load_workbook

from gridbot.report import words_for, write_workbook
from gridbot.stats import load_report, month_period
from gridbot.store.base import Household
from tests.conftest import Bot, to


async def test_errands_and_visits_in_stats_and_the_workbook(bot: Bot, tmp_path: Path) -> None:
    async with bot.demo.store.transaction() as tx:
        await tx.put_households([
            Household(microgrid="M01", building="3幢", entrance="", room=str(room))
            for room in range(101, 111)], bot.now)
    await bot.say("刘奶奶", "代办 帮3幢王奶奶买降压药")
    await bot.say("陈先生", "代办 陪同去医院复查", private=True)
    await bot.say("徐大姐", "接单 1", private=True)
    await bot.say("徐大姐", "确认同意 1 电话确认", private=True)
    await bot.say("徐大姐", "垫付 1 35.5", private=True)
    await bot.say("徐大姐", "代办完成 1 当面签收，没有小票", private=True)
    await bot.say("张阿姨", "走访 3幢101 3幢102 楼道堆物", private=True)
    await bot.say("张阿姨", "走访 3幢 3户 都好", private=True)
    await bot.say("张阿姨", "转工单 1", private=True)

    [chat] = to(await bot.say("王网格长", "统计 M01 本月", private=True), "wang")
    assert "帮办代办 2 件，完成 1 件（徐大姐 1、张阿姨 1）" in chat
    assert "走访 2 次，覆盖台账 50.0%（5/10 户），转工单 1 件" in chat

    async with bot.demo.store.transaction() as tx:
        report = await load_report(tx, bot.demo.config, scope="M01",
                                   period=month_period("2026-11", bot.demo.config.timezone),
                                   as_of=bot.now, locale="zh-CN")
    path = tmp_path / "report.xlsx"
    write_workbook(report, path, words_for("zh-CN"), bot.demo.config.timezone)
    book = load_workbook(path)
    errands = [tuple(r) for r in book["帮办代办"].iter_rows(values_only=True)]
    assert ("xu", "徐大姐", 1, 1, 0, 35.5, 35.5) in errands
    assert ("zhang", "张阿姨", 1, 0, 0, 0, 0) in errands
    assert ("medicine", "买药取药", 1, 1, 0, 35.5, 35.5) in errands
    assert ("hospital", "陪同就医", 1, 0, 0, 0, 0) in errands
    visits = [tuple(r) for r in book["走访"].iter_rows(values_only=True)]
    assert ("zhang", "张阿姨", 2, 5, 1) in visits
    assert ("走访覆盖率", None, 0.5) in [row[:3] for row in visits]
    terms = [row[0] for row in book["口径说明"].iter_rows(values_only=True)]
    assert {"帮办代办", "走访覆盖率", "走访转工单"} <= set(terms)
