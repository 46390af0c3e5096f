"""The case lifecycle through the engine, console adapter and a real SQLite file.

Every command is exercised in its Chinese keyword form and its English slash form.
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest

from gridbot.config import Config, parse_config
from gridbot.demo import DEFAULT_START, Demo, parse_start
from gridbot.domain import Priority, Status
from tests.conftest import EXAMPLE_CONFIG, Bot, to

REPORT = "3幢2单元楼道灯坏了，晚上看不见"


async def test_report_logs_a_case_routes_it_and_keeps_details_out_of_the_group(bot: Bot) -> None:
    out = await bot.say("刘奶奶", f"报事 {REPORT}")
    group = to(out, "M01")
    assert len(group) == 1
    assert "#1" in group[0] and "公共设施" in group[0] and "张阿姨" in group[0]
    # The resident's phone and address never reach the group ...
    assert "137-0000-0301" not in group[0] and "3幢201" not in group[0]
    # ... only the assignee, who also gets a claim button.
    steward = [m for m in out if m.chat_id == "dm:zhang"]
    assert len(steward) == 1
    assert "137-0000-0301" in steward[0].text and "幸福里3幢201" in steward[0].text
    assert [b.command for b in steward[0].buttons] == ["/claim 1"]
    case = await bot.case(1)
    assert case.status is Status.ASSIGNED and case.assignee_id == "zhang"
    assert case.category == "facility" and case.priority is Priority.NORMAL
    assert case.claim_by == bot.now + timedelta(hours=2)
    # 48 hours of window time: the nights' quiet hours (22:00-07:00) do not count.
    assert case.resolve_by == bot.demo.engine.calendar.add(bot.now, timedelta(hours=48))
    assert case.resolve_by == bot.now + timedelta(hours=48 + 3 * 9)
    assert [e.kind for e in await bot.events(1)] == ["reported", "assigned"]


@pytest.mark.parametrize(("claim", "note", "done", "confirm", "rate"), [
    ("认领 1", "进展 1 已联系物业", "办结 1 灯已换好", "已解决 1", "评价 1 5 很快"),
    ("/claim 1", "/note 1 called the office", "/done 1 bulb replaced", "/confirm 1",
     "/rate 1 5 quick"),
])
async def test_whole_story_in_both_languages(
    bot: Bot, claim: str, note: str, done: str, confirm: str, rate: str
) -> None:
    await bot.say("刘奶奶", f"报事 {REPORT}")
    out = await bot.say("张阿姨", claim, private=True)
    assert "已认领 #1" in to(out, "zhang")[0]
    assert "张阿姨" in to(out, "liu_nainai")[0]  # reporter told privately
    assert (await bot.case(1)).status is Status.CLAIMED

    out = await bot.say("张阿姨", note, private=True)
    assert note.split(" ", 2)[2] in to(out, "liu_nainai")[0]

    out = await bot.say("张阿姨", done, private=True)
    reporter = [m for m in out if m.chat_id == "dm:liu_nainai"]
    assert done.split(" ", 2)[2] in reporter[0].text
    assert [b.command for b in reporter[0].buttons][:2] == [
        "/confirm 1", "/reopen 1 按钮反馈：还没解决"]
    assert [b.command for b in reporter[0].buttons][2:] == [
        "/rate 1 5", "/rate 1 4", "/rate 1 3", "/rate 1 2", "/rate 1 1"]
    assert (await bot.case(1)).status is Status.RESOLVED

    out = await bot.say("刘奶奶", confirm)
    assert "#1" in to(out, "M01")[0]
    assert "#1" in to(out, "zhang")[0]
    assert (await bot.case(1)).status is Status.CLOSED

    out = await bot.say("刘奶奶", rate)
    assert "★★★★★" in to(out, "zhang")[0]
    case = await bot.case(1)
    assert case.rating == 5 and case.rating_text in ("很快", "quick")
    kinds = [e.kind for e in await bot.events(1)]
    assert kinds == ["reported", "assigned", "claimed", "note", "resolved", "confirmed", "rated"]


async def test_rating_a_resolved_case_closes_it(bot: Bot) -> None:
    await bot.say("刘奶奶", f"报事 {REPORT}")
    await bot.say("张阿姨", "办结 1 修好了", private=True)  # resolve without claiming first
    out = await bot.say("刘奶奶", "评价 1 ★★★★ 还行")
    case = await bot.case(1)
    assert case.status is Status.CLOSED and case.rating == 4 and case.rating_text == "还行"
    assert "★★★★" in to(out, "zhang")[0]
    out = await bot.say("刘奶奶", "评价 1 5")
    assert "已经评价过" in to(out, "M01")[0]


@pytest.mark.parametrize("command", ["未解决 1 灯还是不亮", "/reopen 1 still dark"])
async def test_reopen_goes_back_to_the_assignee(bot: Bot, command: str) -> None:
    await bot.say("刘奶奶", f"报事 {REPORT}")
    await bot.say("张阿姨", "认领 1", private=True)
    await bot.say("张阿姨", "办结 1 好了", private=True)
    bot.demo.clock.advance(timedelta(hours=1))
    out = await bot.say("刘奶奶", command)
    case = await bot.case(1)
    assert case.status is Status.ASSIGNED and case.assignee_id == "zhang"
    assert case.resolved_at is None and case.claim_by == bot.now + timedelta(hours=2)
    assert command.split(" ", 2)[2] in to(out, "zhang")[0]
    steward = next(m for m in out if m.chat_id == "dm:zhang")
    assert [b.command for b in steward.buttons] == ["/claim 1"]
    assert "reopened" in [e.kind for e in await bot.events(1)]
    out = await bot.say("刘奶奶", "未解决 1")
    assert "不能这样操作" in to(out, "M01")[0]  # not resolved now, so nothing to reopen


async def test_reopen_needs_a_reason(bot: Bot) -> None:
    await bot.say("刘奶奶", f"报事 {REPORT}")
    await bot.say("张阿姨", "办结 1 好了", private=True)
    out = await bot.say("刘奶奶", "未解决 1")
    assert "请说明哪里没解决" in to(out, "M01")[0]
    assert (await bot.case(1)).status is Status.RESOLVED


@pytest.mark.parametrize("command", ["撤销 1 自己修好了", "/cancel 1"])
async def test_cancel_before_claim_only(bot: Bot, command: str) -> None:
    await bot.say("刘奶奶", f"报事 {REPORT}")
    out = await bot.say("刘奶奶", command)
    assert "已撤销" in to(out, "M01")[0]
    assert "撤销" in to(out, "zhang")[0]
    assert (await bot.case(1)).status is Status.CANCELLED
    await bot.say("刘奶奶", "报事 健身器材坏了")
    await bot.say("张阿姨", "认领 2", private=True)
    out = await bot.say("刘奶奶", "撤销 2")
    assert "处理中" in to(out, "M01")[0]
    assert (await bot.case(2)).status is Status.CLAIMED


async def test_status_lists_own_cases_and_shows_history(bot: Bot) -> None:
    out = await bot.say("刘奶奶", "进度")
    assert "还没有报过事" in to(out, "M01")[0]
    await bot.say("刘奶奶", f"报事 {REPORT}")
    await bot.say("刘奶奶", "报事 垃圾桶满了没人清")
    await bot.say("张阿姨", "认领 1", private=True)
    out = await bot.say("刘奶奶", "/status")
    text = to(out, "M01")[0]
    assert "#1 处理中" in text and "#2 待认领" in text
    out = await bot.say("刘奶奶", "进度 #1")
    detail = to(out, "M01")[0]
    assert "认领 · 张阿姨" in detail and "派给 张阿姨" in detail


async def test_transfer_hands_over_and_new_holder_can_act(bot: Bot) -> None:
    await bot.say("黄阿姨", "报事 5幢电梯异响")
    assert (await bot.case(1)).assignee_id == "li"
    out = await bot.say("李师傅", "转交 1 赵老师 我在外地", private=True)
    assert "赵老师" in to(out, "li")[0]
    assert "我在外地" in to(out, "zhao")[0]
    assert "赵老师" in to(out, "huang")[0]
    case = await bot.case(1)
    assert case.assignee_id == "zhao" and case.status is Status.ASSIGNED
    # 赵老师 is the steward of another micro-grid, but the case was handed to him.
    out = await bot.say("赵老师", "/claim 1", private=True)
    assert "已认领 #1" in to(out, "zhao")[0]


async def test_transfer_by_english_command_and_bad_names(bot: Bot) -> None:
    await bot.say("黄阿姨", "报事 5幢电梯异响")
    out = await bot.say("李师傅", "/transfer 1 nobody", private=True)
    assert "找不到叫「nobody」" in to(out, "li")[0]
    out = await bot.say("李师傅", "/transfer 1 刘奶奶", private=True)  # residents cannot take cases
    assert "找不到" in to(out, "li")[0]
    out = await bot.say("李师傅", "/transfer 1 li", private=True)
    assert "本来就由" in to(out, "li")[0]
    out = await bot.say("李师傅", "/transfer 1 zhang", private=True)
    assert (await bot.case(1)).assignee_id == "zhang"


async def test_escalate_climbs_one_level_and_tells_everyone(bot: Bot) -> None:
    await bot.say("刘奶奶", f"报事 {REPORT}")
    out = await bot.say("张阿姨", "上报 1 需要物业公司配合", private=True)
    case = await bot.case(1)
    assert case.level == 1 and case.assignee_id == "wang" and case.status is Status.ASSIGNED
    assert "王网格长" in to(out, "zhang")[0]
    assert "需要物业公司配合" in to(out, "wang")[0]
    assert "网格" in to(out, "liu_nainai")[0]
    events = [e for e in await bot.events(1) if e.kind == "escalated"]
    assert events[0].data == {"from_level": 0, "to_level": 1, "why": "manual", "within": ""}
    await bot.say("王网格长", "/escalate 1 large repair", private=True)
    assert (await bot.case(1)).assignee_id == "zhou"
    await bot.say("周社工", "/escalate 1", private=True)
    assert (await bot.case(1)).assignee_id == "zheng"
    out = await bot.say("郑科长", "/escalate 1", private=True)
    assert "不能再上报" in to(out, "zheng")[0]
    # The steward, below the case's level now, cannot claim it any more.
    out = await bot.say("张阿姨", "认领 1", private=True)
    assert "不归您办理" in to(out, "zhang")[0]


async def test_urgent_report_alerts_three_levels_at_once(bot: Bot) -> None:
    out = await bot.say("刘奶奶", "报事 3幢楼道里冒烟了，好像着火了！")
    case = await bot.case(1)
    assert case.priority is Priority.URGENT and case.category == "safety"
    assert case.claim_by == bot.now + timedelta(minutes=15)
    assert "【紧急】" in to(out, "zhang")[0]
    assert "【紧急】" in to(out, "wang")[0]
    assert "【紧急】" in to(out, "zhou")[0]
    assert "119" in to(out, "M01")[0]


async def test_low_priority_question(bot: Bot) -> None:
    await bot.say("陈先生", "报事 请问居住证怎么办理？")
    case = await bot.case(1)
    assert case.category == "question" and case.priority is Priority.LOW
    # 24 hours of window time; the night's quiet hours do not count
    assert case.claim_by == bot.now + timedelta(hours=24 + 9)


async def test_duty_off_reroutes_to_backup_and_on_restores(bot: Bot) -> None:
    out = await bot.say("张阿姨", "下班 1d", private=True)
    assert "已下班" in to(out, "zhang")[0]
    await bot.say("刘奶奶", f"报事 {REPORT}")
    assert (await bot.case(1)).assignee_id == "li"
    await bot.say("张阿姨", "/duty on", private=True)
    await bot.say("刘奶奶", "报事 垃圾没人收")
    assert (await bot.case(2)).assignee_id == "zhang"
    out = await bot.say("张阿姨", "/duty sideways", private=True)
    assert "用法" in to(out, "zhang")[0]


async def test_duty_off_expires_by_itself(bot: Bot) -> None:
    await bot.say("张阿姨", "/duty off 2h", private=True)
    await bot.wait(timedelta(hours=3))
    await bot.say("刘奶奶", f"报事 {REPORT}")
    assert (await bot.case(1)).assignee_id == "zhang"


async def test_nobody_on_duty_goes_to_the_grid_leader(bot: Bot) -> None:
    await bot.say("张阿姨", "下班", private=True)
    await bot.say("李师傅", "下班", private=True)
    out = await bot.say("刘奶奶", f"报事 {REPORT}")
    case = await bot.case(1)
    assert case.assignee_id == "wang" and case.level == 1
    assert "下级暂无人值班" in to(out, "wang")[0]
    assert "网格长 王网格长" in to(out, "M01")[0]


async def test_weekend_shift_takes_the_case(bot: Bot) -> None:
    await bot.wait(timedelta(days=5))  # Saturday 09:00
    await bot.say("刘奶奶", f"报事 {REPORT}")
    assert (await bot.case(1)).assignee_id == "sun"


async def test_mine_and_overdue(bot: Bot) -> None:
    out = await bot.say("张阿姨", "我的", private=True)
    assert "没有未办结" in to(out, "zhang")[0]
    await bot.say("刘奶奶", f"报事 {REPORT}")
    await bot.say("刘奶奶", "报事 垃圾桶满了")
    await bot.say("张阿姨", "认领 2", private=True)
    out = await bot.say("张阿姨", "/mine", private=True)
    text = to(out, "zhang")[0]
    assert "2 件" in text and "#1" in text and "#2" in text and "已超时" not in text
    out = await bot.say("王网格长", "超时", private=True)
    assert "没有超时" in to(out, "wang")[0]
    # Unclaimed for 2 h, #1 climbs to the grid leader: nobody's window has run out.
    await bot.wait(timedelta(hours=3))
    assert (await bot.case(1)).assignee_id == "wang"
    out = await bot.say("王网格长", "/overdue", private=True)
    assert "没有超时" in to(out, "wang")[0]
    out = await bot.say("张阿姨", "我的", private=True)
    assert "#1" not in to(out, "zhang")[0] and "1 件" in to(out, "zhang")[0]
    # By 18:00 it has climbed to the subdistrict and missed that window too: overdue,
    # at the top of the ladder, in everyone's view of M01.
    await bot.wait(timedelta(hours=6))
    case = await bot.case(1)
    assert case.level == 3 and case.assignee_id == "zheng"
    for name, who in (("王网格长", "wang"), ("郑科长", "zheng")):
        out = await bot.say(name, "/overdue", private=True)
        text = to(out, who)[0]
        assert "#1" in text and "#2" not in text  # #2 was claimed; 48 h to resolve
    out = await bot.say("赵老师", "超时", private=True)  # another grid: nothing of his
    assert "没有超时" in to(out, "zhao")[0]


async def test_help_depends_on_role(bot: Bot) -> None:
    resident = to(await bot.say("刘奶奶", "帮助"), "M01")[0]
    steward = to(await bot.say("张阿姨", "/help", private=True), "zhang")[0]
    staff = to(await bot.say("周社工", "帮助", private=True), "zhou")[0]
    assert "报事" in resident and "认领" not in resident
    assert "认领" in steward and "绑定" not in steward
    assert "绑定" in staff


async def test_english_speaking_resident_gets_english(bot: Bot) -> None:
    out = await bot.say("Tom", "/report the lift in building 8 is broken again")
    group = to(out, "M04")
    assert "#1" in group[0] and "Got it" in group[0]  # reply follows the speaker's locale
    assert "新工单" in to(out, "qian")[0]  # the steward's own locale is the default
    await bot.say("钱大姐", "认领 1", private=True)
    await bot.say("钱大姐", "办结 1 已修好", private=True)
    note = [m for m in bot.log if m.chat_id == "dm:tom"]
    assert note and "resolved" in note[-1].text
    assert note[-1].buttons[0].label == "Fixed ✓"


async def test_unknown_resident_in_a_bound_group_can_report_and_follow(bot: Bot) -> None:
    out = await bot.say("新邻居小吴", "报事 楼下电动车在楼道充电", group="M02")
    assert "#1" in to(out, "M02")[0]
    assert (await bot.case(1)).reporter_id == "~console:guest:新邻居小吴"
    await bot.say("李师傅", "认领 1", private=True)
    # Not reachable in private, so the reporter hears back briefly in the group.
    assert "李师傅" in to(bot.log, "M02")[-1]
    out = await bot.say("新邻居小吴", "进度 1", group="M02")
    assert "处理中" in to(out, "M02")[0]


async def test_private_chat_plain_text_gets_a_hint_and_group_chatter_is_ignored(bot: Bot) -> None:
    out = await bot.say("刘奶奶", "大家早上好")
    assert out == []
    out = await bot.say("刘奶奶", "你好", private=True)
    assert "报事" in to(out, "liu_nainai")[0]


async def test_private_report_uses_the_residents_micro_grid(bot: Bot) -> None:
    out = await bot.say("马大爷", "报事 7幢门口的垃圾堆了三天", private=True)
    reply = to(out, "ma")[0]
    assert "幸福里7-9幢" in reply and "环境卫生" in reply
    assert (await bot.case(1)).microgrid == "M03"
    assert (await bot.case(1)).assignee_id == "zhao"


async def test_private_reports_stay_out_of_group_listings(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 我家漏水了，住3幢201，电话找我", private=True)
    await bot.say("刘奶奶", "报事 楼道灯坏了")
    out = await bot.say("张阿姨", "我的")  # asked in the group, not in private
    listing = to(out, "M01")[0]
    assert "漏水" not in listing and "邻里纠纷" in listing and "楼道灯坏了" in listing
    out = await bot.say("张阿姨", "进度 1")
    assert "漏水" not in to(out, "M01")[0]
    out = await bot.say("张阿姨", "进度 1", private=True)
    assert "漏水" in to(out, "zhang")[0]


async def test_duty_keywords(bot: Bot) -> None:
    out = await bot.say("张阿姨", "下班", private=True)
    assert "已下班" in to(out, "zhang")[0]
    out = await bot.say("张阿姨", "值班", private=True)
    assert "已上班" in to(out, "zhang")[0]


async def test_full_width_spaces_separate_arguments(bot: Bot) -> None:
    await bot.say("黄阿姨", "报事 5幢电梯异响")
    await bot.say("李师傅", "转交 1 张阿姨　她熟悉这部电梯", private=True)
    assert (await bot.case(1)).assignee_id == "zhang"
    out = await bot.say("张阿姨", "/duty off　2d", private=True)
    assert "已下班" in to(out, "zhang")[0]


async def test_an_english_speaking_steward_gets_english_and_an_english_button(
    tmp_path: Path, config: Config
) -> None:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(
        'name = "钱大姐"\nrole = "steward"\nunit = "M04"\n',
        'name = "钱大姐"\nrole = "steward"\nunit = "M04"\nlocale = "en"\n')
    english = parse_config(text, source="en-steward")
    assert english.person("qian").locale == "en"
    start = parse_start(DEFAULT_START, english)
    async with Demo(english, tmp_path / "en.db", start, out=io.StringIO()) as demo:
        bot = Bot(demo=demo, path=tmp_path / "en.db")
        out = await bot.say("Tom", "/report the lift is broken")
        steward = next(m for m in out if m.chat_id == "dm:qian")
        assert steward.text.startswith("New case #1")
        assert steward.buttons[0].label == "Claim #1"
        out = await bot.say("钱大姐", "认领 1", private=True)
        assert to(out, "qian")[0].startswith("You claimed #1")


@pytest.mark.parametrize(("alias", "command"), [
    ("报修 楼道灯坏了", "report"), ("查询 1", "status"), ("签收 1", "claim"),
    ("/progress 1 在修", "note"), ("/resolve 1 好了", "done"), ("/start", "help"),
    ("撤回 1", "cancel"),
])
async def test_aliases_do_what_their_command_does(bot: Bot, alias: str, command: str) -> None:
    await bot.say("刘奶奶", "报事 3幢楼道灯坏了")
    speaker = "刘奶奶" if command in ("report", "status", "help", "cancel") else "张阿姨"
    out = await bot.say(speaker, alias, private=speaker == "张阿姨")
    reply = out[0].text
    expected = {"report": "已登记为 #2", "status": "#1 待认领", "claim": "已认领 #1",
                "note": "已记录 #1 的进展", "done": "#1 已办结", "help": "报事：",
                "cancel": "#1 已撤销"}[command]
    assert expected in reply


async def test_urgent_alerts_above_the_assignee_carry_no_personal_details(bot: Bot) -> None:
    out = await bot.say("刘奶奶", "报事 3幢冒烟了")
    for leader in ("wang", "zhou"):
        text = to(out, leader)[0]
        assert "刘奶奶" in text
        assert "137-0000-0301" not in text and "3幢201" not in text
    assert "137-0000-0301" in to(out, "zhang")[0]
