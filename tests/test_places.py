"""Issue 20 through the engine: buildings and rooms, duplicates followed and merged, many
reports as one incident, and reports anonymous to neighbours."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from gridbot.config import Config
from gridbot.demo import DEFAULT_START, Demo, parse_start
from gridbot.domain import Status
from gridbot.store.base import Household
from tests.conftest import ROOT, Bot, to

# -- buildings and rooms -----------------------------------------------------------------------


def with_buildings(config: Config) -> Config:
    """The example org with its micro-grids defined by their buildings, as their names say
    (幸福里1-3幢, 4-6幢, 7-9幢): the example file shows the key commented out."""
    owned = {"M01": ("1", "2", "3"), "M02": ("4", "5", "6"), "M03": ("7", "8", "9")}
    return dataclasses.replace(config, microgrids=tuple(
        dataclasses.replace(m, buildings=owned.get(m.code, ())) for m in config.microgrids))


@pytest.fixture
async def built(database: Path, config: Config) -> AsyncIterator[Bot]:
    config = with_buildings(config)
    async with Demo(config, database, parse_start(DEFAULT_START, config),
                    out=io.StringIO()) as demo:
        yield Bot(demo=demo, path=database)


async def test_a_report_keeps_its_address_and_a_group_sees_the_building_only(bot: Bot) -> None:
    out = await bot.say("陈先生", "报事 3幢2单元201门口的灯坏了")
    case = await bot.case(1)
    assert (case.building, case.unit, case.room) == ("3", "2", "201")
    group = to(out, "M01")[0]
    assert "3幢" in group and "（3幢 公共设施）" in group
    steward = to(out, "zhang")[0]
    assert "位置：3幢2单元201" in steward
    out = await bot.say("陈先生", "进度 1")
    shown = to(out, "M01")[0]
    assert "位置：3幢" in shown and "位置：3幢2单元" not in shown
    out = await bot.say("陈先生", "进度 1", private=True)
    assert "位置：3幢2单元201" in to(out, "chen_xs")[0]


async def test_a_report_naming_another_building_goes_to_its_micro_grid(built: Bot) -> None:
    bot = built
    # 刘奶奶 lives in M01 (buildings 1-3) but reports building 5, which M02 looks after.
    out = await bot.say("刘奶奶", "报事 5号楼电梯坏了，一直停在三楼")
    case = await bot.case(1)
    assert case.microgrid == "M02" and case.building == "5"
    assert case.assignee_id == "li"
    assert any("5幢归" in text for text in to(out, "M01"))
    assert any(text.startswith("新工单 #1") for text in to(out, "li"))
    # 7#楼 belongs to M03, in another grid of the same community
    await bot.say("刘奶奶", "报事 7#楼门口垃圾没人清")
    assert (await bot.case(2)).microgrid == "M03"
    # a building nobody lists stays where it was said
    await bot.say("刘奶奶", "报事 12幢楼下停车挡住消防通道")
    assert (await bot.case(3)).microgrid == "M01"


async def test_a_phone_number_or_a_date_is_no_address(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 12月5号楼道灯坏了，电话13800000101，花了300元")
    case = await bot.case(1)
    assert (case.building, case.unit, case.room) == ("", "", "")
    assert case.microgrid == "M01"


async def test_an_address_is_matched_to_the_household_ledger(bot: Bot) -> None:
    async with bot.demo.store.transaction() as tx:
        await tx.put_households([Household(microgrid="M01", building="3幢", entrance="2单元",
                                           room="201", head="刘奶奶")], bot.now)
    await bot.say("刘奶奶", "报事 三幢二单元201水管漏水")
    reported = next(e for e in await bot.events(1) if e.kind == "reported")
    assert reported.data["household"] is True and reported.data["building"] == "3"


# -- the same problem reported twice -----------------------------------------------------------


async def _duplicate(bot: Bot) -> list[str]:
    await bot.say("刘奶奶", "报事 3幢2单元楼道灯坏了，晚上下楼看不见，电话13700000301")
    await bot.wait(timedelta(minutes=50))
    out = await bot.say("陈先生", "报事 3幢楼道的灯不亮了", private=True)
    return to(out, "chen_xs")


def _offer_button(bot: Bot) -> str:
    """The "report anyway" button's command (/file N) last offered to 陈先生."""
    return [b.command for m in bot.log if m.chat_id == "dm:chen_xs"
            for b in m.buttons if b.command.startswith("/file")][-1]


async def test_a_report_like_an_open_case_is_offered_to_follow_it(bot: Bot) -> None:
    answer = await _duplicate(bot)
    assert len(answer) == 1
    assert answer[0].startswith("看起来和 #1（3幢 楼道灯）是同一件事")
    # Nothing of the first reporter: no name, no phone, not her words.
    for private in ("刘奶奶", "1370000", "晚上下楼", "2单元"):
        assert private not in answer[0]
    assert await bot.case(2) is None
    buttons = [b.command for m in bot.log if m.chat_id == "dm:chen_xs" for b in m.buttons]
    assert buttons[0] == "/follow 1" and buttons[1].startswith("/file ")
    out = await bot.say("陈先生", "/follow 1", private=True)
    assert to(out, "chen_xs")[0].startswith("已关注 #1")
    assert "共 2 位" in to(out, "chen_xs")[0]
    assert any("又有一位居民反映了 #1" in text for text in to(out, "zhang"))
    async with bot.demo.store.transaction() as tx:
        assert [w.person_id for w in await tx.watchers(1)] == ["chen_xs"]
    # The case's news reaches the follower too, privately, with no button of hers.
    out = await bot.say("张阿姨", "办结 1 灯泡换好了", private=True)
    news = to(out, "chen_xs")
    assert news and news[0].startswith("您关注的 #1 已办结：灯泡换好了")
    assert not [b for m in out if m.chat_id == "dm:chen_xs" for b in m.buttons]
    assert any(text.startswith("#1 已办结") for text in to(out, "liu_nainai"))


async def test_report_it_anyway_logs_a_case_of_its_own(bot: Bot) -> None:
    await _duplicate(bot)
    press = _offer_button(bot)
    out = await bot.say("陈先生", press, private=True)
    assert to(out, "chen_xs")[0].startswith("收到，已登记为 #2")
    case = await bot.case(2)
    assert case is not None and case.reporter_id == "chen_xs" and case.building == "3"
    # the offer is spent: pressing again says so
    out = await bot.say("陈先生", press, private=True)
    assert "这段话已登记为 #2" in to(out, "chen_xs")[0]


async def test_only_the_reporter_presses_report_anyway_and_follow_needs_a_reason(
        bot: Bot) -> None:
    await _duplicate(bot)
    out = await bot.say("黄阿姨", _offer_button(bot), private=True)
    assert "找不到要登记的内容" in to(out, "huang")[0]
    out = await bot.say("黄阿姨", "关注 1", private=True)
    assert "找不到工单 #1" in to(out, "huang")[0]
    out = await bot.say("刘奶奶", "关注 1", private=True)
    assert "是您自己报的事" in to(out, "liu_nainai")[0]


async def test_a_different_building_or_category_is_no_duplicate(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 3幢楼道灯坏了")
    await bot.say("陈先生", "报事 2幢楼道灯坏了")
    await bot.say("陈先生", "报事 3幢门口垃圾满了")
    assert (await bot.case(2)).building == "2"
    assert (await bot.case(3)).category == "sanitation"


async def test_staff_merge_a_duplicate_and_take_the_merge_back(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 3幢楼道灯坏了")
    await bot.say("陈先生", "报事 单元门口那盏灯一直闪，晚上吓人")  # not seen as alike
    assert (await bot.case(2)) is not None
    out = await bot.say("张阿姨", "合并 2 1", private=True)
    assert to(out, "zhang")[0].startswith("已把 #2 合并到 #1")
    assert "现有 2 位居民反映" in to(out, "zhang")[0]
    notice = to(out, "chen_xs")[0]
    assert "#2 和 #1 是同一件事" in notice and "刘奶奶" not in notice
    merged = await bot.case(2)
    assert merged.status is Status.CLOSED and merged.merged_into == 1
    out = await bot.say("张阿姨", "进展 1 已报物业", private=True)
    assert to(out, "chen_xs")[0].startswith("您关注的 #1（您报的 #2 已并入）有新进展")
    # merging again, or into itself, is refused
    out = await bot.say("张阿姨", "合并 2 1", private=True)
    assert "已经合并到 #1" in to(out, "zhang")[0]
    out = await bot.say("张阿姨", "合并 1 1", private=True)
    assert "不能把 #1 合并到它自己" in to(out, "zhang")[0]
    out = await bot.say("张阿姨", "/unmerge 2", private=True)
    assert to(out, "zhang")[0].startswith("已取消合并：#2 恢复为「待认领」")
    back = await bot.case(2)
    assert back.status is Status.ASSIGNED and back.merged_into is None
    async with bot.demo.store.transaction() as tx:
        assert await tx.watchers(1) == []
    out = await bot.say("张阿姨", "拆分 2", private=True)
    assert "没有被合并过" in to(out, "zhang")[0]


async def test_merge_needs_both_cases_in_scope(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 3幢楼道灯坏了")
    await bot.say("马大爷", "报事 8幢门口垃圾没人清")
    out = await bot.say("张阿姨", "合并 1 2", private=True)
    assert "#2" in to(out, "zhang")[0]
    assert (await bot.case(1)).merged_into is None
    out = await bot.say("张阿姨", "合并 1", private=True)
    assert "用法" in to(out, "zhang")[0] or "格式" in to(out, "zhang")[0]


# -- many reports, one incident ---------------------------------------------------------------


async def test_a_power_cut_reported_by_many_becomes_one_incident(bot: Bot) -> None:
    texts = []
    for i in range(1, 8):
        group = "M01" if i % 2 else "M02"
        out = await bot.say(f"居民{i:02d}", f"报事 {i % 6 + 1}幢停电了，家里没电", group=group)
        texts.append(out)
        await bot.wait(timedelta(minutes=2))
    cases = [await bot.case(n) for n in range(1, 8)]
    assert all(c is not None and c.category == "utilities" for c in cases)
    assert [c.incident for c in cases] == [1] * 7
    # staff heard of the incident once, when the fifth report came in
    staff = [t for m in bot.log if m.chat_id == "dm:zhou" for t in [m.text]]
    assert len([t for t in staff if t.startswith("【事件】")]) == 1
    assert "5 条「水电气」报事" in next(t for t in staff if t.startswith("【事件】"))
    # the sixth and seventh joined without a clock or a message to a steward
    joined = cases[5]
    assert joined.claim_by is None and joined.resolve_by is None
    assert any("已并入事件 #1" in t for t in to(texts[5], "M02"))
    # resolving the lead resolves every report, each reporter told
    lead = await bot.case(1)
    holder = bot.demo.people[lead.assignee_id].name
    out = await bot.say(holder, "办结 1 供电已恢复", private=True)
    assert "其余 6 条报事也一并办结" in to(out, lead.assignee_id)[0]
    assert [(await bot.case(n)).status for n in range(1, 8)] == [Status.RESOLVED] * 7
    told = [m for m in out if "已办结" in m.text]
    assert len(told) >= 7


async def test_reports_apart_in_time_make_no_incident(bot: Bot) -> None:
    for i in range(1, 6):
        await bot.say(f"居民{i:02d}", f"报事 {i}幢停水了", group="M01")
        await bot.wait(timedelta(minutes=40))
    assert [(await bot.case(n)).incident for n in range(1, 6)] == [None] * 5


# -- anonymous to neighbours ------------------------------------------------------------------


async def test_an_anonymous_report_hides_the_name_from_neighbours_not_the_handler(
        bot: Bot) -> None:
    out = await bot.say("刘奶奶", "报事 匿名 楼上天天半夜噪音", private=True)
    case = await bot.case(1)
    assert case.anonymous == "neighbours" and case.text == "楼上天天半夜噪音"
    assert "已按匿名登记" in to(out, "liu_nainai")[0]
    steward = to(out, "zhang")[0]
    assert "报事人：刘奶奶" in steward and "不要在群里或向邻居透露报事人" in steward
    out = await bot.say("陈先生", "进度 1")
    assert "刘奶奶" not in to(out, "M01")[0]
    out = await bot.say("刘奶奶", "/report anonymous the lift light is broken", private=True)
    assert (await bot.case(2)).anonymous == "neighbours"


@pytest.fixture
async def hidden_bot(database: Path, config: Config) -> AsyncIterator[Bot]:
    communities = tuple(dataclasses.replace(c, anonymous_to_handler=True)
                        for c in config.communities)
    config = dataclasses.replace(config, communities=communities)
    async with Demo(config, database, parse_start(DEFAULT_START, config),
                    out=io.StringIO()) as demo:
        yield Bot(demo=demo, path=database)


async def test_a_community_may_hide_the_reporter_from_the_handler_too(hidden_bot: Bot) -> None:
    bot = hidden_bot
    out = await bot.say("刘奶奶", "报事 匿名 楼上天天半夜噪音", private=True)
    assert (await bot.case(1)).anonymous == "everyone"
    steward = to(out, "zhang")[0]
    assert "刘奶奶" not in steward and "137-0000-0301" not in steward
    assert "报事人：匿名" in steward
    # a report without 匿名 is named as before
    out = await bot.say("刘奶奶", "报事 3幢门口垃圾满了", private=True)
    assert "报事人：刘奶奶" in to(out, "zhang")[0]


# -- the example stories and the figures ----------------------------------------------------------


def _story(name: str) -> str:
    run = subprocess.run([sys.executable, "-m", "gridbot", "demo", "--script", f"examples/{name}"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    return run.stdout


@pytest.mark.slow(8)
def test_the_duplicate_story_follows_then_merges() -> None:
    out = _story("story_duplicate.txt")
    assert "→ 私聊 陈先生: 看起来和 #1（3幢 楼道灯）是同一件事" in out
    assert "→ 私聊 陈先生: 已关注 #1" in out
    assert "→ 私聊 张阿姨: 已把 #2 合并到 #1" in out
    assert "→ 私聊 陈先生: 您关注的 #1 已办结：灯泡和感应开关都换好了" in out
    assert "#1 现有 3 位居民反映" in out
    assert "同一件事：合并重复报事 1 件 · 关注 1 人 · 涉及居民 3 人" in out
    # 陈先生 never sees anything of 刘奶奶's
    for line in out.split("\n["):
        if "私聊 陈先生" in line:
            assert "刘奶奶" not in line.split("私聊 陈先生", 1)[1].split("\n  → ")[0]
            assert "137-0000-0301" not in line


@pytest.mark.slow(10)
def test_the_power_cut_story_is_one_incident_of_twenty_reports() -> None:
    out = _story("story_power_cut.txt")
    assert out.count("【事件】幸福里社区") == 2  # the community office and the lead's holder
    assert "30分钟内收到 5 条「水电气」报事" in out
    assert out.count("已并入事件 #1 一并处理") == 16  # the fifth to the twentieth
    assert "其余 19 条报事也一并办结" in out
    assert "报事 20 件；已办结 20 件" in out
    assert "事件 1 个（归并报事 20 件）" in out


async def test_the_workbook_defines_and_counts_duplicates_incidents_and_buildings(
        bot: Bot, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    from gridbot.report import words_for, write_workbook
    from gridbot.stats import load_report, parse_period

    await bot.say("刘奶奶", "报事 3幢楼道灯坏了")
    await bot.say("陈先生", "报事 单元门口那盏灯一直闪")
    await bot.say("张阿姨", "合并 2 1", private=True)
    for i in range(5):
        await bot.say(f"居民{i}", f"报事 {i + 1}幢停水了", group="M01")
    config = bot.demo.config
    period = parse_period("今天", bot.now, config.timezone)
    assert period is not None
    async with bot.demo.store.transaction() as tx:
        report = await load_report(tx, config, scope="C01", period=period, as_of=bot.now,
                                   locale="zh-CN")
    total = report.total
    assert (total.opened, total.merged, total.valid, total.cancelled) == (7, 1, 6, 0)
    assert (total.incidents, total.incident_reports, total.affected) == (1, 5, 7)
    assert [r.name for r in report.by_building] == ["1", "2", "3", "4", "5"]
    path = tmp_path / "book.xlsx"
    write_workbook(report, path, words_for("zh-CN"), config.timezone)
    book = load_workbook(path, read_only=True)
    assert "按楼栋" in book.sheetnames
    terms = [row[0] for row in book["口径说明"].iter_rows(values_only=True)]
    for term in ("重复报事（已合并）", "关注（同一件事）", "涉及居民", "事件", "事件归并的报事",
                 "按楼栋"):
        assert term in terms
    summary = {row[0]: row[1] for row in book["概览"].iter_rows(values_only=True)}
    assert (summary["事件"], summary["事件归并的报事"], summary["重复报事（已合并）"]) == (1, 5, 1)


async def test_an_incident_whose_lead_is_withdrawn_is_led_by_the_next_report(bot: Bot) -> None:
    for i in range(5):
        await bot.say(f"居民{i}", f"报事 {i + 1}幢停电了", group="M01")
    assert (await bot.case(5)).incident == 1
    await bot.say("居民0", "撤销 1 来电了", group="M01")
    lead = await bot.case(2)
    assert lead.incident == 2 and lead.claim_by is not None
    assert [(await bot.case(n)).incident for n in (3, 4, 5)] == [2, 2, 2]
    # a merge does not cut into an incident
    out = await bot.say("张阿姨", "合并 3 2", private=True)
    assert "属于事件 #2" in to(out, "zhang")[0]
    await bot.say(bot.demo.people[lead.assignee_id].name, "办结 2 已恢复", private=True)
    assert [(await bot.case(n)).status for n in (2, 3, 4, 5)] == [Status.RESOLVED] * 4


def test_anonymity_is_asked_for_or_the_community_default() -> None:
    from gridbot.domain import Community
    from gridbot.places import anonymity, take_anonymous

    assert take_anonymous("匿名 楼上漏水") == (True, "楼上漏水")
    assert take_anonymous("匿名：楼上漏水") == (True, "楼上漏水")
    assert take_anonymous("anonymous the lift is broken") == (True, "the lift is broken")
    assert take_anonymous("anonymousness is fine") == (False, "anonymousness is fine")
    assert take_anonymous("楼上漏水，不要匿名") == (False, "楼上漏水，不要匿名")
    plain = Community(code="C", name="c")
    assert anonymity(plain, False) == "" and anonymity(plain, True) == "neighbours"
    assert anonymity(None, True) == "neighbours"
    default = Community(code="C", name="c", anonymous_default=True)
    assert anonymity(default, False) == "neighbours"
    strict = Community(code="C", name="c", anonymous_to_handler=True)
    assert anonymity(strict, True) == "everyone" and anonymity(strict, False) == ""
