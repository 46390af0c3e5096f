"""Urgent words never meet silence, and urgent reports are collapsed, not limited
(issue 14, items 7 and 8); anything said in private is offered as a report.

Urgent words said in a group without 报事 ("7幢阳台冒烟了！") get one answer there with the
emergency numbers and a button (the words to send where there are no buttons) that logs
them as an urgent case, by whoever presses it. Urgent reports are always taken, but one
person or one chat repeating an open urgent case within a few minutes adds to that case:
one case, one round of alerts.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from gridbot.config import Config, parse_config
from gridbot.demo import DEFAULT_START, Demo, parse_start
from gridbot.domain import ChatKind, Outcome, PlatformInfo, Priority, Status
from gridbot.errors import ConfigError
from gridbot.offers import OFFER_TTL
from tests.conftest import EXAMPLE_CONFIG, Bot, incoming, to

SMOKE = "7幢阳台冒烟了！"


async def cases(bot: Bot) -> int:
    n = 0
    while await bot.case(n + 1) is not None:
        n += 1
    return n


def commands(messages: list, chat: str) -> list[str]:
    return [b.command for m in messages if m.chat_id == chat for b in m.buttons]


# -- urgent words in a group (item 7) --------------------------------------------------------


async def test_urgent_words_in_a_group_get_the_numbers_and_a_button(bot: Bot) -> None:
    out = await bot.say("陈先生", SMOKE)
    [answer] = to(out, "M01")
    assert "119（火警）" in answer and "110（报警）" in answer and "120（急救）" in answer
    assert "登记 1" in answer  # the words to send, for platforms without buttons
    assert commands(out, "group:M01") == ["/file 1"]
    assert [m.reply_to for m in out] == [out[0].reply_to] and out[0].reply_to
    assert await cases(bot) == 0  # offered, not logged: ordinary talk must not make cases

    # Anyone in the group presses it; they become the reporter of an urgent case.
    out = await bot.say("刘奶奶", "/file 1")
    case = await bot.case(1)
    assert case is not None and case.priority is Priority.URGENT
    assert case.reporter_id == "liu_nainai" and case.text == SMOKE
    assert "已登记为 #1" in to(out, "M01")[0]
    assert to(out, "zhang") and to(out, "wang") and to(out, "zhou")  # levels 0-2 at once
    # Spent: a second press says where it went, and logs nothing.
    out = await bot.say("陈先生", "登记 1")
    assert to(out, "M01") == ["这段话已登记为 #1。查询进度请发：进度 1"]
    assert await cases(bot) == 1 and to(out, "zhang") == []


async def test_urgent_words_are_answered_once_in_a_while(bot: Bot) -> None:
    assert len(to(await bot.say("陈先生", SMOKE), "M01")) == 1
    for text in ("烟很大，好像着火了", "有人被困在电梯里"):
        assert await bot.say("刘奶奶", text) == []  # answered a moment ago
    await bot.wait(timedelta(minutes=5))
    out = await bot.say("刘奶奶", "浓烟越来越大了")
    assert commands(out, "group:M01") == ["/file 2"]
    # Another group is another group.
    assert commands(await bot.say("黄阿姨", "5幢有人摔倒了，流血了"), "group:M02") == ["/file 3"]


async def test_only_urgent_plain_words_are_answered_in_a_group(bot: Bot) -> None:
    # ordinary chat
    for text in ("今天天气不错", "3幢楼道灯坏了", "通知：明天上午停水",
                 "登记：周六体检的请到活动室"):
        _, out = await bot.handle(incoming(text, message_id=f"chat-{text}"))
        assert out == []
    # a command is answered as the command, never as urgent words
    out = await bot.say("刘奶奶", "进度 着火了吗")
    assert commands(out, "group:M01") == [] and "119（火警）" not in " ".join(to(out, "M01"))
    out = await bot.say("刘奶奶", "报事 3幢着火了")
    assert "已登记为 #1" in to(out, "M01")[0] and commands(out, "group:M01") == []


async def test_an_unbound_group_gets_the_numbers_without_a_button(bot: Bot) -> None:
    outcome, out = await bot.handle(incoming(SMOKE, chat="group:new", message_id="u1"))
    assert outcome is Outcome.HANDLED
    [answer] = [m for m in out if m.chat_id == "group:new"]
    assert "119" in answer.text and "绑定" in answer.text and answer.buttons == ()


async def test_without_buttons_the_answer_says_what_to_send(bot: Bot) -> None:
    bot.demo.engine.register_platform("console", PlatformInfo(buttons=False))
    [answer] = to(await bot.say("陈先生", SMOKE), "M01")
    assert "回复「登记 1」" in answer and "点下面" not in answer
    [offer] = to(await bot.say("刘奶奶", "楼下的路灯坏了", private=True), "liu_nainai")
    assert "登记请回复「登记 2」" in offer and "按钮" not in offer


async def test_an_offer_is_used_in_its_own_chat_only(bot: Bot) -> None:
    await bot.say("陈先生", SMOKE)
    out = await bot.say("黄阿姨", "/file 1")  # in M02's group
    assert "找不到要登记的内容" in to(out, "M02")[0]
    out = await bot.say("黄阿姨", "/file 1", private=True)
    assert "找不到要登记的内容" in to(out, "huang")[0]
    assert await bot.say("黄阿姨", "登记 1") == []  # a keyword in a group: the group's chat
    assert await cases(bot) == 0


async def test_emergency_numbers_come_from_the_configuration(tmp_path: Path,
                                                             config: Config) -> None:
    policy = dataclasses.replace(config.policy, emergency_numbers=(
        ("fire", "119"), ("燃气抢修", "96777")))
    config = dataclasses.replace(config, policy=policy)
    async with Demo(config, tmp_path / "g.db", parse_start(DEFAULT_START, config),
                    out=io.StringIO()) as demo:
        bot = Bot(demo=demo, path=tmp_path / "g.db")
        [answer] = to(await bot.say("陈先生", "闻到煤气味了"), "M01")
        assert "119（火警）、96777（燃气抢修）" in answer and "110" not in answer


def test_emergency_numbers_and_urgent_limits_are_configured() -> None:
    base = (EXAMPLE_CONFIG).read_text(encoding="utf-8")
    config = parse_config(base.replace(
        'emergency_numbers = { fire = "119", police = "110", ambulance = "120" }',
        'emergency_numbers = { ambulance = "120", fire = "119" }').replace(
        "urgent_repeat_minutes = 10", "urgent_repeat_minutes = 0").replace(
        "urgent_answer_minutes = 5", "urgent_answer_minutes = 30"))
    assert config.policy.emergency_numbers == (("ambulance", "120"), ("fire", "119"))
    assert config.limits.urgent_repeat == timedelta(0)
    assert config.limits.urgent_answer_every == timedelta(minutes=30)
    for bad, key in (('emergency_numbers = { fire = "一一九" }', "policy.emergency_numbers.fire"),
                     ("emergency_numbers = {}", "policy.emergency_numbers")):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            parse_config(base.replace(
                'emergency_numbers = { fire = "119", police = "110", ambulance = "120" }', bad))
    with pytest.raises(ConfigError, match=r"limits\.urgent_repeat_minutes"):
        parse_config(base.replace("urgent_repeat_minutes = 10", "urgent_repeat_minutes = -1"))


# -- in private, anything is offered as a report (item 7) ----------------------------------------


async def test_a_plain_private_message_is_offered_as_a_report(bot: Bot) -> None:
    out = await bot.say("刘奶奶", "楼下的路灯坏了好几天了", private=True)
    [offer] = to(out, "liu_nainai")
    assert "要把这段话登记为报事吗？" in offer and "登记 1" in offer
    assert commands(out, "dm:liu_nainai") == ["/file 1"]
    assert await cases(bot) == 0

    out = await bot.say("刘奶奶", "/file 1", private=True)
    case = await bot.case(1)
    assert case is not None and case.text == "楼下的路灯坏了好几天了"
    assert case.priority is Priority.NORMAL and case.origin_chat_id == "dm:liu_nainai"
    assert "已登记为 #1" in to(out, "liu_nainai")[0] and to(out, "zhang")
    assert "已登记为 #1" in to(await bot.say("刘奶奶", "登记 1", private=True), "liu_nainai")[0]
    assert await cases(bot) == 1


async def test_urgent_words_in_private_bring_the_numbers_too(bot: Bot) -> None:
    [offer] = to(await bot.say("刘奶奶", "家里煤气泄漏了", private=True), "liu_nainai")
    assert "119（火警）" in offer and "紧急报事" in offer


async def test_who_cannot_report_from_here_is_told_how(bot: Bot) -> None:
    # A grid leader has no micro-grid of their own; a newcomer is linked to nobody.
    [hint] = to(await bot.say("王网格长", "在吗", private=True), "wang")
    assert "报事 内容" in hint
    _, out = await bot.handle(incoming("你好，我想反映个事", sender="stranger", chat="dm:stranger",
                                       message_id="s1", kind=ChatKind.PRIVATE))
    assert "报事 内容" in out[0].text and out[0].buttons == ()


async def test_an_offer_expires_after_a_day_and_is_deleted(bot: Bot) -> None:
    await bot.say("刘奶奶", "楼下的路灯坏了好几天了", private=True)
    async with bot.demo.store.transaction() as tx:
        assert (await tx.report_offer(1)).text == "楼下的路灯坏了好几天了"
    await bot.wait(OFFER_TTL - timedelta(minutes=1))
    async with bot.demo.store.transaction() as tx:
        assert await tx.report_offer(1) is not None
    await bot.wait(timedelta(minutes=1))
    async with bot.demo.store.transaction() as tx:
        assert await tx.report_offer(1) is None  # her words are not kept
    out = await bot.say("刘奶奶", "登记 1", private=True)
    assert "找不到要登记的内容" in to(out, "liu_nainai")[0]


async def test_an_offer_a_day_old_is_not_logged(bot: Bot) -> None:
    """Pressed in the instant between running out and being deleted: expired."""
    await bot.say("刘奶奶", "楼下的路灯坏了好几天了", private=True)
    bot.demo.clock.set(bot.now + OFFER_TTL)  # no sweep ran
    out = await bot.say("刘奶奶", "登记 1", private=True)
    assert "已过期" in to(out, "liu_nainai")[0] and await cases(bot) == 0


# -- urgent reports: collapsed, never refused (item 8) ---------------------------------------


async def test_forty_urgent_reports_from_a_newcomer_are_one_case_alerted_once(
        bot: Bot) -> None:
    for i in range(40):
        out = await bot.say("新来的", f"报事 {i + 3}幢着火了！", group="M01")
        [answer] = to(out, "M01")
        assert ("已登记为 #1" if i == 0 else "已并入 #1") in answer
        await bot.wait(timedelta(seconds=10))
    assert await cases(bot) == 1
    case = await bot.case(1)
    assert case.priority is Priority.URGENT and case.reporter_id.startswith("~")
    events = await bot.events(1)
    assert [e.kind for e in events].count("follow_up") == 39
    assert events[-1].text == "42幢着火了！"  # every word kept on the case
    private = [m for m in bot.log if m.chat_id.startswith("dm:")]
    assert sorted(m.chat_id for m in private) == ["dm:wang", "dm:zhang", "dm:zhou"]


async def test_urgent_reports_from_one_chat_join_the_first(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 7幢阳台冒烟了")
    out = await bot.say("陈先生", "报事 7幢着火了，烟很大")
    assert "已并入 #1" in to(out, "M01")[0] and "119（火警）" in to(out, "M01")[0]
    assert [m for m in out if m.chat_id.startswith("dm:")] == []
    # The offer under urgent words joins it too, and is spent on it.
    await bot.say("黄阿姨", "有人被困在电梯里了", group="M01")
    out = await bot.say("黄阿姨", "/file 1", group="M01")
    assert "已并入 #1" in to(out, "M01")[0]
    assert "已登记为 #1" in to(await bot.say("陈先生", "/file 1"), "M01")[0]
    assert await cases(bot) == 1
    [history] = to(await bot.say("刘奶奶", "进度 1"), "M01")
    assert history.count("补充报告") == 2


async def test_a_repeat_after_the_window_or_of_a_closed_case_is_a_new_case(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 7幢阳台冒烟了")
    await bot.wait(timedelta(minutes=10, seconds=1))
    out = await bot.say("刘奶奶", "报事 7幢又冒烟了")
    assert "已登记为 #2" in to(out, "M01")[0] and to(out, "zhang")
    await bot.say("张阿姨", "办结 2 误报，是烧烤", private=True)
    await bot.say("刘奶奶", "已解决 2")
    assert (await bot.case(2)).status is Status.CLOSED
    out = await bot.say("刘奶奶", "报事 7幢冒烟了，这次是真的")
    # #1 is still open but was reported long ago; #2 is closed: a new case
    assert "已登记为 #3" in to(out, "M01")[0]
    # A report in another micro-grid's group is another place.
    out = await bot.say("刘奶奶", "报事 5幢有人晕倒了", group="M02")
    assert "已登记为 #4" in to(out, "M02")[0]


@pytest.fixture
async def no_repeats(tmp_path: Path, config: Config) -> AsyncIterator[Bot]:
    config = dataclasses.replace(config, limits=dataclasses.replace(
        config.limits, urgent_repeat=timedelta(0), urgent_answer_every=timedelta(0)))
    async with Demo(config, tmp_path / "g.db", parse_start(DEFAULT_START, config),
                    out=io.StringIO()) as demo:
        yield Bot(demo=demo, path=tmp_path / "g.db")


async def test_collapsing_and_answering_once_can_be_turned_off(no_repeats: Bot) -> None:
    bot = no_repeats
    for i in range(3):
        await bot.say("刘奶奶", f"报事 {i}幢着火了")
    assert await cases(bot) == 3
    for _ in range(2):
        assert len(to(await bot.say("陈先生", SMOKE), "M01")) == 1
