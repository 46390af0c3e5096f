"""Messages that say what is true (issue 15, item 8).

Groups where nobody's answer reaches the bot (a WeCom group robot's, a WeCom app chat)
are not asked to reply 收到; a report too short to log says it is too short. The urgent
and the night acknowledgements are tested with routing in tests/test_reach.py.
"""

from __future__ import annotations

import pytest

from gridbot.adapters.wechat.wecom import WeComAdapter
from gridbot.adapters.wechat.wecom_robot import WeComRobotAdapter
from gridbot.domain import Status
from tests.conftest import Bot, to
from tests.test_wechat import APP_CHAT_M02, ROBOT_M01, ZHOU, World, fake, world

__all__ = ["fake", "world"]  # the fixtures this module uses

ASK = "看到请回复「收到」"


async def test_robot_and_app_chat_groups_are_not_asked_to_reply(world: World) -> None:
    w = world
    await w.link(ZHOU, "zhou")
    sent = await w.said(ZHOU, "通知 C01 周六上午9点活动室免费量血压")
    [robot] = [s for s in sent if s.api == "webhook/send"]
    [app_chat] = [s for s in sent if s.api == "appchat/send"]
    assert robot.to == ROBOT_M01 and app_chat.to == APP_CHAT_M02
    for notice in (robot, app_chat):
        assert "免费量血压" in notice.text and "（通知 #1）" in notice.text
        assert "收到" not in notice.text


def test_which_chats_hear_what_people_answer() -> None:
    assert not WeComRobotAdapter({"M01": "key"}, api_base_url="http://127.0.0.1/").hears("M01")
    assert WeComAdapter.hears(object.__new__(WeComAdapter), "zhangayi")  # a member, privately
    assert not WeComAdapter.hears(object.__new__(WeComAdapter), f"appchat:{APP_CHAT_M02}")


async def test_a_group_whose_answers_reach_the_bot_is_asked_to_reply(bot: Bot) -> None:
    sent = await bot.say("周社工", "通知 M01 周六上午9点活动室免费量血压", private=True)
    [notice] = to(sent, "M01")
    assert ASK in notice
    assert [(b.label, b.command) for m in sent if m.chat_id == "group:M01"
            for b in m.buttons] == [("收到 ✅", "/ack 1")]


@pytest.mark.parametrize("said", ["报事 灯", "/report 灯", "报修 灯"])
@pytest.mark.parametrize("private", [False, True])
async def test_a_report_too_short_says_it_is_too_short(bot: Bot, said: str,
                                                       private: bool) -> None:
    sent = await bot.say("刘奶奶", said, private=private)
    [answer] = [m.text for m in sent]
    assert answer.startswith("内容太短了（「灯」），至少要 2 个字")
    assert "例如：报事 3幢2单元楼道灯坏了" in answer and "格式不对" not in answer
    assert await bot.case(1) is None


async def test_an_empty_report_shows_how_to_report(bot: Bot) -> None:
    [answer] = [m.text for m in await bot.say("刘奶奶", "/report")]
    assert answer.startswith("格式不对。用法：报事 内容")


async def test_a_report_too_short_in_english(bot: Bot) -> None:
    [answer] = [m.text for m in await bot.say("Tom", "/report x", private=True)]
    assert answer.startswith('That is too short to log ("x"): at least 2 characters.')


async def test_the_urgent_answer_in_english_never_says_normally(bot: Bot) -> None:
    sent = await bot.say("Tom", "/report smoke in the stairwell, maybe a fire", private=True)
    [answer] = to(sent, "tom")
    case = await bot.case(1)
    assert case is not None and case.status is Status.ASSIGNED
    assert "has been alerted" in answer and "goes up at once" in answer
    assert "should claim" not in answer
