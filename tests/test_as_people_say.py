"""Chinese as people say it (issue 15, item 5), through the engine: every rating form in
both the slash and the keyword command, case numbers in full-width and ``#`` forms (and
Arabic-Indic digits refused rather than read), a command typed one key off answered with
what was probably meant, and refusals that say who holds the case and what to do next.

Durations are item 5 too; they are tested in tests/test_durations.py.
"""

from __future__ import annotations

import pytest

from gridbot import handlers
from gridbot.commands import distance
from gridbot.domain import Status
from gridbot.handlers.resident import parse_rating
from tests.conftest import Bot, to

#: (what the resident writes after the case number, the score it means, the comment kept)
RATINGS = [
    ("5", 5, ""), ("５", 5, ""), ("⑤", 5, ""), ("5星", 5, ""), ("5 星", 5, ""),
    ("一星", 1, ""), ("二星", 2, ""), ("两星", 2, ""), ("三星", 3, ""), ("四星", 4, ""),
    ("五星", 5, ""), ("五颗星", 5, ""), ("4颗星", 4, ""), ("两个星", 2, ""),
    ("1分", 1, ""), ("3 分", 3, ""), ("5分", 5, ""), ("五分", 5, ""), ("4/5", 4, ""),
    ("★★★★★", 5, ""), ("★★★☆☆", 3, ""), ("⭐⭐⭐⭐", 4, ""), ("⭐️⭐️", 2, ""),
    ("👍", 5, ""), ("👍🏻👍🏻", 5, ""), ("👎", 1, ""),
    ("非常满意", 5, ""), ("满意", 5, ""), ("基本满意", 4, ""), ("一般", 3, ""),
    ("不满意", 2, ""), ("非常不满意", 1, ""), ("好评", 5, ""), ("差评", 1, ""),
    ("five stars", 5, ""), ("4 stars", 4, ""),
    ("5 张阿姨办事真快，谢谢", 5, "张阿姨办事真快，谢谢"),
    ("五星，修得很快", 5, "修得很快"), ("五星好评", 5, "好评"),
    ("★★★★ 还行", 4, "还行"), ("👍 太好了", 5, "太好了"), ("满意！谢谢", 5, "谢谢"),
]
#: what is no score from 1 to 5, and is refused with the forms that are
NOT_RATINGS = ["六星", "0", "6分", "10分", "٥", "٥ 星", "4.5", "☆☆☆", "很好", "5修得很快", "星"]
COMMANDS = ["评价", "/rate"]


async def resolved_case(bot: Bot) -> int:
    """刘奶奶 reports in her group; 张阿姨 claims and resolves it. The case's number."""
    await bot.say("刘奶奶", "报事 3幢2单元楼道灯坏了")
    case = await bot.case(1)
    assert case is not None
    await bot.say("张阿姨", "认领 1", private=True)
    await bot.say("张阿姨", "办结 1 灯泡换好了", private=True)
    return 1


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("said", "score", "comment"), RATINGS)
async def test_every_rating_form(bot: Bot, command: str, said: str, score: int,
                                 comment: str) -> None:
    number = await resolved_case(bot)
    sent = await bot.say("刘奶奶", f"{command} {number} {said}")
    [answer] = to(sent, "M01")
    assert f"（{'★' * score}）" in answer or f"({'★' * score})" in answer, answer
    case = await bot.case(number)
    assert case is not None and case.rating == score and case.rating_text == comment
    assert case.status is Status.CLOSED
    [told] = to(sent, "zhang")
    assert f"（{score} 分）" in told


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("said", NOT_RATINGS)
async def test_what_is_no_rating_is_refused_with_the_forms_that_are(
        bot: Bot, command: str, said: str) -> None:
    number = await resolved_case(bot)
    [answer] = to(await bot.say("刘奶奶", f"{command} {number} {said}"), "M01")
    assert answer.startswith("请给 1 到 5 分") and "五星" in answer and "👍" in answer
    case = await bot.case(number)
    assert case is not None and case.rating is None and case.status is Status.RESOLVED


def test_parse_rating_keeps_the_comment_as_typed() -> None:
    assert parse_rating("５ 修得很快！！") == (5, "修得很快！！")
    assert parse_rating("  ★★★★★\u3000谢谢 张阿姨") == (5, "谢谢 张阿姨")
    assert parse_rating("") is None


# -- case numbers ----------------------------------------------------------------------------
@pytest.mark.parametrize("said", ["认领 1", "认领#1", "认领 ＃１", "认领１", "签收 #1", "/claim 1",
                                  "/claim #1", "/claim ＃１", "/claim １"])
async def test_case_numbers_in_every_form_people_type(bot: Bot, said: str) -> None:
    await bot.say("刘奶奶", "报事 楼道灯坏了")
    sent = await bot.say("张阿姨", said, private=True)
    assert to(sent, "zhang")[0].startswith("已认领 #1")


@pytest.mark.parametrize("said", ["认领 ١", "认领١", "/claim ١", "/claim #١", "评价 ١ 5"])
async def test_arabic_indic_digits_are_refused_not_read(bot: Bot, said: str) -> None:
    await bot.say("刘奶奶", "报事 楼道灯坏了")
    name = "刘奶奶" if said.startswith("评价") else "张阿姨"
    sent = await bot.say(name, said, private=True)
    [answer] = [m.text for m in sent]
    assert answer.startswith("格式不对")
    case = await bot.case(1)
    assert case is not None and case.status is Status.ASSIGNED


# -- a command typed one key off -----------------------------------------------------------
async def test_a_typo_in_private_gets_what_was_probably_meant(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 楼道灯坏了")
    sent = await bot.say("张阿姨", "认岭 1", private=True)
    [answer] = sent
    assert answer.text.startswith("您是想说「认领 1」吗？")
    assert "您好" not in answer.text  # not the greeting
    assert [(b.label, b.command) for b in answer.buttons] == [("认领 1", "/claim 1")]
    # the button does what was meant
    claimed = await bot.say("张阿姨", answer.buttons[0].command, private=True)
    assert to(claimed, "zhang")[0].startswith("已认领 #1")


@pytest.mark.parametrize(("name", "said", "meant"), [
    ("刘奶奶", "评介 1 五星", "评价 1 五星"),
    ("刘奶奶", "查看 1", "查询 1"),
    ("刘奶奶", "已解绝 1", "已解决 1"),
    ("张阿姨", "办洁 1 灯换好了", "办结 1 灯换好了"),
    ("张阿姨", "认领了 1", "认领 1"),
    ("张阿姨", "下斑", "下班"),
    ("张阿姨", "claim 1", "/claim 1"),
    ("Tom", "/staus 1", "/status 1"),
])
async def test_typos_of_every_kind(bot: Bot, name: str, said: str, meant: str) -> None:
    [answer] = await bot.say(name, said, private=True)
    assert f"「{meant}」" in answer.text or f'"{meant}"' in answer.text, answer.text


async def test_no_typo_is_seen_where_there_is_none(bot: Bot) -> None:
    # a resident is not offered a steward's command, and ordinary words stay words
    [greeting] = await bot.say("刘奶奶", "认岭 1", private=True)
    assert "您是想说" not in greeting.text
    for said in ("好的", "谢谢", "你好"):
        [answer] = await bot.say("张阿姨", said, private=True)
        assert "您是想说" not in answer.text
    # words that merely start like a command are a report to offer, not a typo
    [offer] = await bot.say("刘奶奶", "查看 1 号楼的楼道灯坏了好几天", private=True)
    assert offer.text.startswith("要把这段话登记为报事吗？")
    # in a group, ordinary chat is left alone
    assert await bot.say("张阿姨", "认岭 1") == []


async def test_an_unknown_slash_command_suggests_the_nearest(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 楼道灯坏了")
    [answer] = await bot.say("张阿姨", "/cliam 1", private=True)
    assert answer.text.startswith("不认识的命令 /cliam。您是想说「/claim 1」吗？")
    [english] = await bot.say("Tom", "/hlep", private=True)
    assert 'Did you mean "/help"?' in english.text


# -- refusals say who holds the case and what to do --------------------------------------------
async def test_a_case_that_is_not_yours_says_who_holds_it(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 楼道灯坏了")
    # 赵老师 is M03's steward; he tries in M01's group
    [answer] = to(await bot.say("赵老师", "认领 1", group="M01"), "M01")
    assert answer.startswith("#1 由微网管家 张阿姨 办理（幸福里1-3幢，微网格层级），不归您办理。")
    assert "您可以私信 张阿姨；需要由您接手的话，请 张阿姨 转交给您。" in answer
    assert "138" not in answer and "137" not in answer  # names only, never a phone


async def test_an_escalated_case_refused_to_a_steward_says_how_to_follow_it(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 楼道灯坏了")
    await bot.say("张阿姨", "上报 1 需要物业公司配合", private=True)
    [answer] = to(await bot.say("张阿姨", "进展 1 物业明天来", private=True), "zhang")
    assert answer.startswith("#1 由网格长 王网格长 办理")
    assert "您可以私信 王网格长或发「进度 1」查看进展" in answer


async def test_already_claimed_says_by_whom_and_what_to_do(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 楼道灯坏了")
    await bot.say("张阿姨", "认领 1", private=True)
    [answer] = to(await bot.say("李师傅", "认领 1", private=True), "li")
    assert answer == ("#1 已由 张阿姨 认领，正在处理。您可以私信 张阿姨 或发「进度 1」查看进展；"
                      "需要由您接手的话，请 张阿姨 转交给您。")
    [mine] = to(await bot.say("张阿姨", "认领 1", private=True), "zhang")
    assert "办完请发「办结 1 说明」" in mine


async def test_only_the_reporter_refusals_point_the_way(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 楼道灯坏了")
    await bot.say("张阿姨", "认领 1", private=True)
    [holder] = to(await bot.say("张阿姨", "已解决 1", private=True), "zhang")
    assert "您办完了的话请发「办结 1 说明」" in holder
    [other] = to(await bot.say("李师傅", "撤销 1", private=True), "li")
    assert "#1 由微网管家 张阿姨 办理，发「进度 1」可以查看进展" in other


async def test_a_refused_transition_says_what_to_do_next(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 楼道灯坏了")
    await bot.say("张阿姨", "认领 1", private=True)
    [cancel] = to(await bot.say("刘奶奶", "撤销 1 不用了"), "M01")
    assert "已经有人认领在办，不能撤销了" in cancel
    [early] = to(await bot.say("刘奶奶", "评价 1 五星"), "M01")
    assert "还没有办结，办结后会请您确认和评价" in early


def test_one_key_off_counts_a_swap_as_one_edit() -> None:
    assert distance("cliam", "claim") == 1 and distance("认岭", "认领") == 1
    assert distance("领认", "认领") == 1 and distance("", "abc") == 3
    suggest = handlers.COMMANDS.suggest
    assert suggest("好的") == [] and suggest("我们楼道灯坏了") == []
