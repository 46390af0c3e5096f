"""Swapping a shift (换班): asked, answered with a button, followed by routing, shown by
值班, told to the grid leader; cover for a holiday planned ahead."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from gridbot.swaps import DayError, read_days
from tests.conftest import Bot, to

MONDAY = date(2026, 11, 23)  # the demo starts on Monday 2026-11-23 09:00


async def test_an_accepted_swap_sends_the_next_report_to_whoever_took_the_day(bot: Bot) -> None:
    out = await bot.say("张阿姨", "换班 明天 李师傅", private=True)
    assert "已请 李师傅 接替您 11月24日（周二） 的值班" in to(out, "zhang")[0]
    asked = [m for m in out if m.chat_id == "dm:li"]
    assert "张阿姨 请您接替 11月24日（周二） 的值班" in asked[0].text
    assert [b.command for b in asked[0].buttons] == ["/accept 1", "/decline 1"]

    # Until he answers nothing changes; today is not part of it either way.
    out = await bot.say("李师傅", "/accept 1", private=True)
    assert "您已接下 张阿姨 11月24日（周二） 的值班" in to(out, "li")[0]
    assert "李师傅 同意接替您" in to(out, "zhang")[0]
    assert "值班变动：11月24日（周二） 张阿姨 的值班由 李师傅 接替" in to(out, "wang")[0]

    out = await bot.say("刘奶奶", "报事 3幢楼道灯坏了")
    assert (await bot.case(1)).assignee_id == "zhang"  # Monday: still hers

    await bot.wait(timedelta(days=1))  # Tuesday 09:00
    out = await bot.say("刘奶奶", "报事 5幢门禁坏了")
    case = await bot.case(2)
    assert case is not None and case.assignee_id == "li"
    assert "您接了换班" in to(out, "li")[0]

    await bot.wait(timedelta(days=1))  # Wednesday: back to the roster
    await bot.say("刘奶奶", "报事 1幢电梯坏了")
    assert (await bot.case(3)).assignee_id == "zhang"


async def test_duty_lists_the_swaps_given_and_taken(bot: Bot) -> None:
    await bot.say("张阿姨", "换班 周六 李师傅", private=True)
    out = await bot.say("张阿姨", "值班", private=True)
    assert "11月28日（周六） 由 李师傅 接替您（等待答复）（#1）" in to(out, "zhang")[0]
    await bot.say("李师傅", "接班 1", private=True)
    out = await bot.say("李师傅", "值班", private=True)
    assert "11月28日（周六） 您接替 张阿姨（#1）" in to(out, "li")[0]


async def test_holiday_cover_is_planned_ahead_and_a_declined_swap_changes_nothing(
        bot: Bot) -> None:
    out = await bot.say("张阿姨", "换班 2027-01-01 李师傅", private=True)
    assert "1月1日（周五）" in to(out, "zhang")[0]
    out = await bot.say("李师傅", "不接班 1", private=True)
    assert "不能接替您" in to(out, "zhang")[0]
    assert not to(out, "wang")  # nothing changed: the leader hears nothing
    out = await bot.say("李师傅", "接班 1", private=True)
    assert "已经拒绝了" in to(out, "li")[0]
    # The same days may be asked of someone else now, a run of days at once.
    out = await bot.say("张阿姨", "换班 12月31日至2027-01-03 孙志愿", private=True)
    assert "12月31日（周四）至1月3日（周日）" in to(out, "zhang")[0]


@pytest.mark.parametrize(("words", "answer"), [
    ("换班 2026-10-01 李师傅", "已经过去了"),
    ("换班 下辈子 李师傅", "看不懂「下辈子」"),
    ("换班 周六 张阿姨", "不能和自己换班"),
    ("换班 周六 没这人", "没这人"),
    ("换班 周六", "换班 日期 姓名"),
    ("换班 2027-10-01~2027-10-30 李师傅", "最多 16 天"),
])
async def test_bad_swaps_are_refused_with_a_reason(bot: Bot, words: str, answer: str) -> None:
    out = await bot.say("张阿姨", words, private=True)
    assert answer in to(out, "zhang")[0]
    assert not to(out, "li")


async def test_only_the_person_asked_answers_and_days_cannot_be_given_twice(bot: Bot) -> None:
    await bot.say("张阿姨", "换班 周六 李师傅", private=True)
    out = await bot.say("孙志愿", "接班 1", private=True)
    assert "找不到换班 #1" in to(out, "sun")[0]  # not theirs to see
    out = await bot.say("张阿姨", "换班 周六 孙志愿", private=True)
    assert "已经有换班 #1" in to(out, "zhang")[0]
    out = await bot.say("王网格长", "换班 周六 李师傅", private=True)
    assert "不在任何微网格的值班表上" in to(out, "wang")[0]


def test_days_as_people_say_them() -> None:
    assert read_days("周六", MONDAY).first == date(2026, 11, 28)
    assert read_days("周一", MONDAY).first == MONDAY  # today is the next Monday
    assert read_days("sat", MONDAY).first == date(2026, 11, 28)
    assert read_days("10月1日", MONDAY).first == date(2027, 10, 1)  # the next one
    days = read_days("10-01~10-07", MONDAY)
    assert (days.first, days.last, days.count) == (date(2027, 10, 1), date(2027, 10, 7), 7)
    for bad, reason in (("13-45", "unknown"), ("2026-11-22", "past"), ("2028-01-01", "too_far")):
        with pytest.raises(DayError) as caught:
            read_days(bad, MONDAY)
        assert caught.value.reason == reason


async def test_the_giver_calls_a_swap_off_and_routing_goes_back(bot: Bot) -> None:
    await bot.say("张阿姨", "换班 明天 李师傅", private=True)
    await bot.say("李师傅", "接班 1", private=True)
    out = await bot.say("李师傅", "取消换班 1", private=True)
    assert "只有本人能取消" in to(out, "li")[0]
    out = await bot.say("张阿姨", "取消换班 1", private=True)
    assert "已取消换班 #1" in to(out, "zhang")[0]
    assert "张阿姨 取消了换班 #1" in to(out, "li")[0]
    assert "值班变动取消" in to(out, "wang")[0]
    await bot.wait(timedelta(days=1))
    await bot.say("刘奶奶", "报事 3幢楼道灯坏了")
    assert (await bot.case(1)).assignee_id == "zhang"
    out = await bot.say("张阿姨", "取消换班 1", private=True)
    assert "已经取消了" in to(out, "zhang")[0]
