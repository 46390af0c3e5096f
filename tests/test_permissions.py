"""Every refusal: who may not do what, and the clear answer they get instead."""

from __future__ import annotations

import dataclasses
import io
from datetime import timedelta
from pathlib import Path

import pytest

from gridbot.config import Config
from gridbot.demo import DEFAULT_START, Demo, parse_start
from gridbot.domain import ChatKind, Status
from gridbot.linking import issue_link_code
from tests.conftest import Bot, incoming, to

REPORT = "报事 3幢楼道灯坏了"
CASE_COMMANDS = ["认领 1", "进展 1 在处理", "办结 1 好了", "转交 1 李师傅", "上报 1 太难"]
STAFF_ONLY = ["认领 1", "进展 1 x", "办结 1", "转交 1 李师傅", "上报 1", "我的", "值班",
              "下班", "超时", "/claim 1", "/note 1 x", "/done 1", "/transfer 1 li",
              "/escalate 1", "/mine", "/duty off", "/overdue", "绑定 M01", "/bind M01",
              "延期 1 1d 等一下", "退单 1 不是这里", "批准 1", "驳回 1 不行", "改派 1 M02",
              "/extend 1 1d x", "/return 1 x", "/approve 1", "/refuse 1 x", "/reroute 1 M02"]
LEADERS_ONLY = ["批准 1", "驳回 1 不行", "改派 1 M02", "/approve 1", "/refuse 1 x",
                "/reroute 1 M02"]


@pytest.mark.parametrize("command", STAFF_ONLY)
async def test_residents_cannot_use_staff_commands(bot: Bot, command: str) -> None:
    await bot.say("刘奶奶", REPORT)
    out = await bot.say("陈先生", command)
    assert "居民不能使用这个命令" in to(out, "M01")[0]
    case = await bot.case(1)
    assert case.status is Status.ASSIGNED and case.assignee_id == "zhang"


@pytest.mark.parametrize("command", LEADERS_ONLY)
async def test_stewards_cannot_decide_for_the_level_above(bot: Bot, command: str) -> None:
    await bot.say("刘奶奶", REPORT)
    await bot.say("张阿姨", "延期 1 1d 等配件", private=True)
    before = await bot.case(1)
    out = await bot.say("张阿姨", command, private=True)
    assert "微网管家不能使用这个命令" in to(out, "zhang")[0]
    assert await bot.case(1) == before


@pytest.mark.parametrize("command", ["批准 1", "驳回 1 不行", "改派 1 M02"])
@pytest.mark.parametrize("who", ["陈网格长", "吴主任"])
async def test_leaders_of_another_part_of_the_tree_cannot_decide(
    bot: Bot, who: str, command: str
) -> None:
    await bot.say("刘奶奶", REPORT)
    await bot.say("张阿姨", "延期 1 1d 等配件", private=True)
    before = await bot.case(1)
    out = await bot.say(who, command, private=True)
    person = bot.demo.people[who].id
    assert to(out, person) and await bot.case(1) == before


@pytest.mark.parametrize("command", CASE_COMMANDS)
@pytest.mark.parametrize("who", ["赵老师", "钱大姐", "陈网格长", "吴主任"])
async def test_outsiders_cannot_touch_another_micro_grids_case(
    bot: Bot, who: str, command: str
) -> None:
    await bot.say("刘奶奶", REPORT)
    before = await bot.case(1)
    out = await bot.say(who, command, private=True)
    person = bot.demo.people[who].id
    assert "不归您办理" in to(out, person)[0]
    assert await bot.case(1) == before
    assert [e.kind for e in await bot.events(1)] == ["reported", "assigned"]


@pytest.mark.parametrize("who", ["张阿姨", "李师傅", "孙志愿", "王网格长", "周社工", "郑科长"])
async def test_people_over_the_micro_grid_can_claim(bot: Bot, who: str) -> None:
    await bot.say("刘奶奶", REPORT)
    out = await bot.say(who, "认领 1", private=True)
    person = bot.demo.people[who].id
    assert "已认领 #1" in to(out, person)[0]
    assert (await bot.case(1)).assignee_id == person


async def test_claiming_twice_and_claiming_a_taken_case(bot: Bot) -> None:
    await bot.say("刘奶奶", REPORT)
    await bot.say("张阿姨", "认领 1", private=True)
    out = await bot.say("张阿姨", "认领 1", private=True)
    assert "您已经认领了 #1" in to(out, "zhang")[0]
    out = await bot.say("李师傅", "认领 1", private=True)
    assert "已由 张阿姨 认领" in to(out, "li")[0]


@pytest.mark.parametrize("command", ["撤销 1", "已解决 1", "未解决 1 不行", "评价 1 1"])
async def test_only_the_reporter_may_cancel_confirm_reopen_or_rate(bot: Bot, command: str) -> None:
    await bot.say("刘奶奶", REPORT)
    await bot.say("张阿姨", "办结 1 好了", private=True)
    before = await bot.case(1)
    # Another resident of the same group does not even learn the case exists ...
    out = await bot.say("陈先生", command)
    assert "找不到工单 #1" in to(out, "M01")[0]
    # ... and the steward, who can see it, is told only the reporter may do this.
    out = await bot.say("张阿姨", command, private=True)
    assert "只有报事的居民本人" in to(out, "zhang")[0]
    assert await bot.case(1) == before


async def test_status_of_someone_elses_case_is_not_shown_to_residents(bot: Bot) -> None:
    await bot.say("刘奶奶", REPORT)
    out = await bot.say("黄阿姨", "进度 1")
    assert "找不到工单 #1" in to(out, "M02")[0]
    out = await bot.say("王网格长", "进度 1", private=True)
    assert "#1" in to(out, "wang")[0]


@pytest.mark.parametrize(("text", "expected"), [
    ("认领", "用法：认领 工单号"),
    ("认领 abc", "用法：认领 工单号"),
    ("/claim", "用法"),
    ("认领 99", "找不到工单 #99"),
    ("认领 #99999999999", "找不到工单 #99999999999"),
    ("进展 1", "用法：进展 工单号 内容"),
    ("转交 1", "用法：转交 工单号 姓名"),
    ("下班 forever", "用法"),
    ("/frobnicate 1", "不认识的命令 /frobnicate"),
])
async def test_malformed_commands_get_usage(bot: Bot, text: str, expected: str) -> None:
    await bot.say("刘奶奶", REPORT)
    out = await bot.say("张阿姨", text, private=True)
    assert expected in to(out, "zhang")[0]


@pytest.mark.parametrize(("text", "expected"), [
    ("报事", "用法：报事 内容"),
    ("评价 1", "请给 1 到 5 分"),
    ("评价 1 9", "请给 1 到 5 分"),
    ("评价 1 ★★★★★★", "请给 1 到 5 分"),
])
async def test_resident_mistakes_get_usage(bot: Bot, text: str, expected: str) -> None:
    await bot.say("刘奶奶", REPORT)
    out = await bot.say("刘奶奶", text)
    assert expected in to(out, "M01")[0]


async def test_rating_or_confirming_an_open_case_is_refused(bot: Bot) -> None:
    await bot.say("刘奶奶", REPORT)
    out = await bot.say("刘奶奶", "评价 1 5")
    assert "待认领" in to(out, "M01")[0]
    out = await bot.say("刘奶奶", "已解决 1")
    assert "不能这样操作" in to(out, "M01")[0]


async def test_acting_on_a_closed_case_is_refused(bot: Bot) -> None:
    await bot.say("刘奶奶", REPORT)
    await bot.say("刘奶奶", "撤销 1")
    for command in ("认领 1", "办结 1", "进展 1 x", "上报 1", "转交 1 李师傅"):
        out = await bot.say("张阿姨", command, private=True)
        assert "已撤销" in to(out, "zhang")[0]


async def test_too_long_message(bot: Bot) -> None:
    out = await bot.say("刘奶奶", "报事 " + "灯" * 2500)
    assert "太长" in to(out, "M01")[0] and "2000" in to(out, "M01")[0]
    assert await bot.case(1) is None


async def test_report_in_an_unbound_group(bot: Bot) -> None:
    _, out = await bot.handle(incoming(REPORT, chat="group:new", message_id="x1"))
    assert "还没有绑定微网格" in out[0].text
    assert await bot.case(1) is None


async def test_report_in_private_from_a_stranger(bot: Bot) -> None:
    _, out = await bot.handle(incoming(REPORT, sender="stranger", chat="dm:stranger",
                                       kind=ChatKind.PRIVATE, name="路人"))
    assert "还不知道您属于哪个微网格" in out[0].text


async def test_binding_needs_staff_in_scope_and_a_group(bot: Bot) -> None:
    new_group = {"chat": "group:fresh", "kind": ChatKind.GROUP}
    _, out = await bot.handle(incoming("绑定 M01", sender="zhang", name="张阿姨",
                                       message_id="b1", **new_group))
    assert "微网管家不能使用这个命令" in out[0].text
    _, out = await bot.handle(incoming("绑定 M01", sender="wu", name="吴主任",
                                       message_id="b2", **new_group))
    assert "不在您负责的范围内" in out[0].text
    _, out = await bot.handle(incoming("绑定 M99", sender="zhou", name="周社工",
                                       message_id="b3", **new_group))
    assert "没有编码为「M99」" in out[0].text
    _, out = await bot.handle(incoming("绑定 M01", sender="zhou", name="周社工",
                                       chat="dm:zhou", kind=ChatKind.PRIVATE, message_id="b4"))
    assert "请在要绑定的微网群里发" in out[0].text
    _, out = await bot.handle(incoming("/bind M02", sender="zhou", name="周社工",
                                       message_id="b5", **new_group))
    assert "已绑定到「幸福里4-6幢」" in out[0].text
    # Now residents there can report into M02.
    _, out = await bot.handle(incoming(REPORT, sender="someone", name="某居民",
                                       message_id="b6", **new_group))
    assert "#1" in out[0].text
    assert (await bot.case(1)).microgrid == "M02"


async def test_link_codes_are_one_time_and_expire(bot: Bot) -> None:
    engine, now = bot.demo.engine, bot.now
    _, code, _ = await issue_link_code(engine, "王网格长", now)
    dm = {"sender": "tg-42", "chat": "dm:tg-42", "kind": ChatKind.PRIVATE, "name": "Wang"}
    _, out = await bot.handle(incoming("/mine", message_id="l0", **dm))
    assert "居民不能使用" in out[0].text
    _, out = await bot.handle(incoming("认证 WRONG-CODE", message_id="l1", **dm))
    assert "认证码不对" in out[0].text
    _, out = await bot.handle(incoming(f"认证 {code.lower()}", message_id="l2", **dm))
    assert "认证成功" in out[0].text and "王网格长" in out[0].text
    _, out = await bot.handle(incoming("/mine", message_id="l3", **dm))
    assert "没有未办结" in out[0].text
    other = {"sender": "tg-43", "chat": "dm:tg-43", "kind": ChatKind.PRIVATE, "name": "Eve"}
    _, out = await bot.handle(incoming(f"/link {code}", message_id="l4", **other))
    assert "已经用过" in out[0].text
    _, code2, _ = await issue_link_code(engine, "wang", now, ttl=timedelta(hours=1))
    bot.demo.clock.advance(timedelta(hours=2))
    _, out = await bot.handle(incoming(f"/link {code2}", message_id="l5", **other))
    assert "已过期" in out[0].text


async def test_linking_moves_guest_reports_to_the_person(bot: Bot) -> None:
    guest = {"sender": "tg-7", "name": "Liu"}
    await bot.handle(incoming(REPORT, message_id="g1", **guest))
    assert (await bot.case(1)).reporter_id == "~console:tg-7"
    _, code, _ = await issue_link_code(bot.demo.engine, "刘奶奶", bot.now)
    _, out = await bot.handle(incoming(f"/link {code}", chat="dm:tg-7", kind=ChatKind.PRIVATE,
                                       message_id="g2", **guest))
    assert "1 件" in out[0].text
    assert (await bot.case(1)).reporter_id == "liu_nainai"


async def test_a_person_removed_from_the_configuration_loses_their_rights(
    tmp_path: Path, config: Config
) -> None:
    path, start = tmp_path / "gridbot.db", parse_start(DEFAULT_START, config)
    async with Demo(config, path, start, out=io.StringIO()) as demo:
        await demo.say("刘奶奶", REPORT)
    without = dataclasses.replace(
        config, people=tuple(p for p in config.people if p.id != "zhang"),
        rosters={k: dataclasses.replace(r, backups=tuple(b for b in r.backups if b != "zhang"))
                 for k, r in config.rosters.items() if k != "M01"})
    async with Demo(without, path, start, out=io.StringIO()) as demo:
        _, out = await Bot(demo=demo, path=path).handle(
            incoming("认领 1", sender="zhang", chat="dm:zhang", kind=ChatKind.PRIVATE,
                     name="张阿姨", message_id="after-removal"))
        assert "居民不能使用" in out[0].text


async def test_unknown_commands_in_groups_are_left_to_other_bots(bot: Bot) -> None:
    assert await bot.say("刘奶奶", "/weather 苏州") == []
    out = await bot.say("刘奶奶", "/weather", private=True)
    assert "不认识的命令 /weather" in to(out, "liu_nainai")[0]
