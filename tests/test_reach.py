"""Nobody is given a case they cannot receive (issue 15, item 1), and answers say who was
told and when (item 8: the night acknowledgement, the urgent one).

Routing passes over anyone no private message reaches (never linked a chat account,
linked but never wrote to the bot in private, or blocked it), like someone off duty:
the next in the roster, then up the ladder. If nobody on the whole ladder can be
reached, the case waits unassigned and the clock looks again every few minutes; a
steward linking their account takes the waiting cases at once.

The sample org (config.example.toml): M01's primary steward is zhang (张阿姨), li (李师傅)
the backup, sun (孙志愿) on a weekend shift (Sat and Sun 08:00-20:00); G01's grid leader
wang, C01's community staff zhou, the subdistrict admin zheng. Quiet hours 22:00-07:00.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from datetime import timedelta
from pathlib import Path

import pytest

from gridbot.adapters.console import PLATFORM, private_chat_id
from gridbot.cli import main
from gridbot.clock import SystemClock
from gridbot.config import load_config
from gridbot.domain import Account, Chat, ChatKind, Role, Status
from gridbot.linking import issue_link_code
from gridbot.store import SQLiteStore
from tests.conftest import EXAMPLE_CONFIG, Bot, to
from tests.fake_telegram import FakeTelegram
from tests.test_telegram import (
    GROUP_ID,
    LIU,
    TOKEN,
    ZHANG,
    ZHOU,
    World,
    _gridbot,
    bound,
    fake,
    polling,
    write_config,
)

__all__ = ["fake", "polling"]  # the fixtures this module uses

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after:telegram.warnings.PTBDeprecationWarning")

#: everyone on M01's ladder, bottom to top
LADDER = ("zhang", "li", "sun", "wang", "zhou", "zheng")


async def cut_off(bot: Bot, person_id: str, how: str) -> None:
    """Make a demo persona unreachable the way real people are: ``blocked`` (the platform
    refused their private chat), ``no_private`` (linked, never wrote to the bot in private)
    or ``unlinked`` (no chat account at all)."""
    chat_id = private_chat_id(person_id)
    async with bot.demo.store.transaction() as tx:
        account = await tx.account(PLATFORM, person_id)
        assert account is not None
        if how == "blocked":
            await tx.save_chat(Chat(platform=PLATFORM, chat_id=chat_id, kind=ChatKind.PRIVATE),
                               bound_by=None, now=bot.now)
            await tx.set_chat_unreachable(PLATFORM, chat_id, at=bot.now,
                                          reason="Forbidden: bot was blocked by the user")
        else:
            # The demo's own account no longer theirs; for no_private, one on Telegram
            # linked in a group, where the bot cannot start a private chat.
            await tx.save_account(dataclasses.replace(account, person_id=None), bot.now)
            if how == "no_private":
                await tx.save_account(Account(platform="telegram", user_id=f"tg-{person_id}",
                                              display_name=person_id, person_id=person_id),
                                      bot.now)


async def reach_again(bot: Bot, person_id: str) -> None:
    """The person unblocks the bot (the engine clears this when they write to it)."""
    async with bot.demo.store.transaction() as tx:
        await tx.set_chat_unreachable(PLATFORM, private_chat_id(person_id), at=None)


def outbox_to(bot: Bot, person_id: str) -> list[str]:
    """Every message ever sent to the person's private console chat."""
    return to(bot.log, person_id)


# -- Telegram, on the fake Bot API -------------------------------------------------------------
async def test_a_sunday_case_goes_past_the_unlinked_weekend_steward(polling: World) -> None:
    w = await bound(polling)  # zhou and zhang linked; 孙志愿 never linked an account
    w.clock.advance(timedelta(days=6))  # Sunday 10:00: 孙志愿's shift
    report = await w.said(w.group, LIU, "报事 3幢楼道灯坏了，晚上很黑")
    [ack] = [s for s in report if s.chat_id == GROUP_ID]
    assert "已通知微网管家 张阿姨" in ack.plain and "孙志愿" not in ack.plain
    [claim] = [s for s in report if s.chat_id == ZHANG["id"] and s.buttons]
    assert "孙志愿（还没有认证聊天账号）收不到消息，所以由您处理" in claim.plain
    assert {s.chat_id for s in report} == {GROUP_ID, ZHANG["id"]}
    case, events = await w.case(1)
    assert case.assignee_id == "zhang" and case.level == 0 and case.status is Status.ASSIGNED
    [assigned] = [e for e in events if e.kind == "assigned"]
    assert assigned.data["skipped"] == [{"person": "sun", "why": "unlinked"}]
    assert "unreachable" not in [e.kind for e in events]  # nobody was "told" in vain
    # 张阿姨 claims it at once: nothing sat waiting for someone who never hears of it
    claimed = await w.pressed(claim, "/claim 1", ZHANG)
    assert any(s.chat_id == ZHANG["id"] and "已认领 #1" in s.plain for s in claimed)


async def test_nobody_reachable_then_a_steward_links_and_takes_the_case(polling: World) -> None:
    w = polling
    # 周社工 links in the group (so the bot cannot write to him) and binds it
    code = (await issue_link_code(w.runtime.engine, "zhou", w.clock.now()))[1]
    await w.said(w.group, ZHOU, f"/link {code}")
    await w.said(w.group, ZHOU, "/bind@GridTestBot M01")
    report = await w.said(w.group, LIU, "报事 垃圾房的门坏了关不上")
    assert [s.chat_id for s in report] == [GROUP_ID]
    assert "暂时没有能收到消息的值班人员" in report[0].plain
    assert "已通知" not in report[0].plain
    case, events = await w.case(1)
    assert case.assignee_id is None and case.status is Status.NEW
    assert [e.kind for e in events] == ["reported", "unassigned"]
    assert {s["person"] for s in events[1].data["skipped"]} >= {"zhang", "li", "zhou"}

    # 张阿姨 opens her link card (/start CODE): the waiting case is hers at once
    code = (await issue_link_code(w.runtime.engine, "zhang", w.clock.now()))[1]
    linked = await w.said(w.bot.private(ZHANG), ZHANG, f"/start {code}")
    [reply] = [s for s in linked if s.chat_id == ZHANG["id"]]
    assert "认证成功" in reply.plain
    assert "有 1 件等待分派的工单现在交给了您：#1" in reply.plain
    # 刘奶奶 never wrote to the bot in private: she hears of it in the group, briefly
    told = [s for s in linked if s.chat_id == GROUP_ID]
    assert len(told) == 1 and "#1 已交给微网管家 张阿姨 处理" in told[0].plain
    case, events = await w.case(1)
    assert case.assignee_id == "zhang" and case.status is Status.ASSIGNED
    assert events[-1].kind == "assigned" and events[-1].data["why"] == "waiting"
    assert case.claim_by is not None and case.claim_by > w.clock.now() + timedelta(hours=1)


# -- routing, through the engine (the console demo's wiring) ---------------------------------
@pytest.mark.parametrize(("how", "why"), [("blocked", "屏蔽了机器人"),
                                          ("no_private", "还没有私聊过机器人"),
                                          ("unlinked", "还没有认证聊天账号")])
async def test_routing_passes_over_each_kind_of_unreachable(bot: Bot, how: str,
                                                            why: str) -> None:
    await cut_off(bot, "zhang", how)
    sent = await bot.say("刘奶奶", "报事 3幢楼道灯坏了，晚上很黑")
    [ack] = to(sent, "M01")
    assert "已通知微网管家 李师傅" in ack and "张阿姨" not in ack
    [claim] = to(sent, "li")
    assert f"张阿姨（{why}）收不到消息" in claim
    assert to(sent, "zhang") == []
    case = await bot.case(1)
    assert case is not None and case.assignee_id == "li"


async def test_escalation_climbs_past_an_unreachable_grid_leader(bot: Bot) -> None:
    await cut_off(bot, "wang", "unlinked")
    await bot.say("刘奶奶", "报事 5幢门口消防通道被私家车堵住了")
    climbed = await bot.wait(timedelta(hours=2, minutes=1))  # nobody claimed it
    [notice] = to(climbed, "zhou")
    assert "上报给您的工单 #1" in notice and "王网格长（还没有认证聊天账号）收不到消息" in notice
    case = await bot.case(1)
    assert case is not None and case.assignee_id == "zhou" and case.level == 2


async def test_reopen_goes_past_a_holder_no_message_reaches(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 楼道灯坏了")
    await bot.say("张阿姨", "认领 1", private=True)
    await bot.say("张阿姨", "办结 1 换好了", private=True)
    await cut_off(bot, "zhang", "blocked")
    sent = await bot.say("刘奶奶", "未解决 1 灯还是不亮")
    assert "并请微网管家 李师傅 继续处理" in to(sent, "M01")[0]
    assert any("重新打开的工单 #1" in t for t in to(sent, "li"))
    case = await bot.case(1)
    assert case is not None and case.assignee_id == "li"


async def test_return_and_reroute_go_past_the_unreachable(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 隔壁楼的路灯不亮")
    await cut_off(bot, "wang", "no_private")
    returned = await bot.say("张阿姨", "退单 1 不是本微网格的楼", private=True)
    assert "由 周社工 核实改派" in to(returned, "zhang")[0]
    assert any("退回给您的工单 #1" in t for t in to(returned, "zhou"))
    # M02's primary 李师傅 blocked the bot: the case goes to its backup, 张阿姨
    await cut_off(bot, "li", "blocked")
    rerouted = await bot.say("周社工", "改派 1 M02 是4幢的", private=True)
    assert "由 张阿姨 处理" in to(rerouted, "zhou")[0]
    assert any("改派给您的工单 #1" in t for t in to(rerouted, "zhang"))


@pytest.mark.parametrize(("how", "why"), [("blocked", "屏蔽了机器人"),
                                          ("no_private", "还没有私聊过机器人"),
                                          ("unlinked", "还没有认证聊天账号")])
async def test_transfer_to_someone_unreachable_is_refused_saying_why(bot: Bot, how: str,
                                                                    why: str) -> None:
    await bot.say("刘奶奶", "报事 楼道灯坏了")
    await cut_off(bot, "li", how)
    refused = await bot.say("张阿姨", "转交 1 李师傅 我出差两天", private=True)
    [answer] = to(refused, "zhang")
    assert answer.startswith(f"李师傅{why}，现在收不到消息，#1 不能转交")
    assert "转交 1 姓名" in answer
    case = await bot.case(1)
    assert case is not None and case.assignee_id == "zhang"
    # to someone a message reaches, it goes through
    moved = await bot.say("张阿姨", "转交 1 王网格长", private=True)
    assert to(moved, "zhang") == ["已将 #1 转交给 王网格长。"]


async def test_night_report_says_when_the_steward_will_be_told(bot: Bot) -> None:
    await bot.wait(timedelta(hours=14))  # Monday 23:00: quiet hours
    sent = await bot.say("刘奶奶", "报事 楼下的路灯坏了")
    [ack] = to(sent, "M01")
    assert "已交给微网管家 张阿姨。现在是夜间免打扰时段，将于 07:00 通知" in ack
    assert "已通知" not in ack
    assert to(sent, "zhang") == []  # held until morning
    # the answer to a transfer at night says so too
    moved = await bot.say("张阿姨", "转交 1 李师傅", private=True)
    assert to(moved, "zhang") == ["已将 #1 转交给 李师傅（夜间免打扰，将于 07:00 通知）。"]
    assert to(moved, "li") == []
    morning = await bot.wait(timedelta(hours=8))
    assert any("新工单 #1" in t for t in to(morning, "zhang"))
    assert any("转交给您的工单 #1" in t for t in to(morning, "li"))


async def test_night_report_in_english(bot: Bot) -> None:
    await bot.wait(timedelta(hours=14))
    sent = await bot.say("Tom", "/report the corridor light in block 2 is broken",
                         private=True)
    [ack] = to(sent, "tom")
    assert "who will be told at 07:00 when quiet hours end" in ack


async def test_urgent_report_alerts_at_once_and_never_says_normally(bot: Bot) -> None:
    await bot.wait(timedelta(hours=14))  # at night: urgent matters are never held
    sent = await bot.say("刘奶奶", "报事 7幢阳台冒烟了，好像着火了")
    [ack] = to(sent, "M01")
    assert "已紧急通知微网管家 张阿姨，网格长 王网格长、社区工作人员 周社工 也已收到提醒" in ack
    assert "一般" not in ack and "免打扰" not in ack
    assert "前无人认领会立即上报" in ack and "119" in ack
    assert to(sent, "zhang") and to(sent, "wang") and to(sent, "zhou")


async def test_urgent_report_names_only_who_was_alerted(bot: Bot) -> None:
    await cut_off(bot, "wang", "unlinked")
    sent = await bot.say("刘奶奶", "报事 楼道里有烟，好像着火了")
    [ack] = to(sent, "M01")
    assert "王网格长" not in ack and "社区工作人员 周社工 也已收到提醒" in ack


async def test_a_steward_reporting_in_private_is_told_it_is_theirs(bot: Bot) -> None:
    sent = await bot.say("张阿姨", "报事 3幢门口的井盖松了", private=True)
    [ack] = to(sent, "zhang")
    assert "您正在值班，这件事由您本人处理：认领请发「认领 1」" in ack
    assert "已通知微网管家 张阿姨" not in ack


async def test_an_unassigned_case_waits_and_the_clock_finds_someone(bot: Bot) -> None:
    for person in LADDER:
        await cut_off(bot, person, "blocked")
    sent = await bot.say("刘奶奶", "报事 楼道里的消防栓玻璃碎了")
    [ack] = to(sent, "M01")
    assert "暂时没有能收到消息的值班人员，事情已记下" in ack
    assert [m.chat_id for m in sent] == ["group:M01"]
    case = await bot.case(1)
    assert case is not None and case.assignee_id is None and case.status is Status.NEW
    # the claim window runs out with nobody to tell: no message, one "overdue" line
    quiet = await bot.wait(timedelta(hours=3))
    assert quiet == []
    kinds = [e.kind for e in await bot.events(1)]
    assert kinds.count("unassigned") == 1 and "overdue" in kinds
    # 张阿姨 unblocks the bot: within minutes the clock gives her the case
    await reach_again(bot, "zhang")
    found = await bot.wait(timedelta(minutes=5))
    [notice] = to(found, "zhang")
    assert notice.startswith("等待分派的工单 #1，请认领")
    assert "当时没有能收到消息的值班人员" in notice
    assert any("已交给微网管家 张阿姨 处理" in t for t in to(found, "liu_nainai"))
    case = await bot.case(1)
    assert case is not None and case.assignee_id == "zhang" and case.level == 0
    assert case.claim_by is not None and case.claim_by > bot.now + timedelta(hours=1)
    assert case.top_reminders == 0
    # and from there the ladder works as ever: nobody above can be reached yet, so 张阿姨
    # keeps it and is reminded that it is overdue
    climbed = await bot.wait(timedelta(hours=2, minutes=1))
    assert [m.chat_id for m in climbed if m.chat_id != "dm:zhang"] == []
    assert any("超时" in t for t in to(climbed, "zhang"))
    case = await bot.case(1)
    assert case is not None and case.level == 0 and case.assignee_id == "zhang"


async def test_rerouting_to_a_micro_grid_nobody_can_be_reached_in_waits_there(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 桂花园东区的路灯坏了")
    for person in ("qian", "liu", "wu"):  # M04's ladder below the subdistrict
        await cut_off(bot, person, "unlinked")
    await cut_off(bot, "zheng", "blocked")  # 郑科长 blocked the bot's private chat
    rerouted = await bot.say("郑科长", "改派 1 M04 是桂花园的")  # and says it in a group
    [answer] = to(rerouted, "M01")
    assert answer == ("已将 #1 改派到桂花园东区，那里暂时没有能收到消息的值班人员："
                      "工单等待分派，一有人能接收就交给他。")
    case = await bot.case(1)
    assert case is not None and case.microgrid == "M04" and case.assignee_id is None
    reporter = to(rerouted, "liu_nainai")
    assert reporter == ["#1 已转给桂花园东区，等待分派。"]


# -- the office: check-config and run ------------------------------------------------------------
def _office_config(folder: Path) -> Path:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(
        'url = "sqlite:///gridbot.db"', f'url = "sqlite:///{folder}/gridbot.db"')
    path = folder / "gridbot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_check_config_lists_rostered_people_nobody_can_reach(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _office_config(tmp_path)
    assert main(["check-config", "--config", str(path)]) == 0
    printed = capsys.readouterr()
    assert "配置无误" in printed.out
    err = printed.err.splitlines()
    assert err[0] == ("提醒：值班表上有 5 人收不到消息，"
                      "轮到他们时工单会交给下一位能收到的人（或上一级）；"
                      "数据库还没有建立，所以这里把每个人都当作还没认证：")
    assert "  张阿姨（zhang，M01主班 M02备班）：还没有认证聊天账号" in err
    assert "  孙志愿（sun，M01轮班）：还没有认证聊天账号" in err
    assert err[-1] == ("认证卡片：gridbot link-code --all-unlinked；"
                       "全部名单：gridbot people --unreachable")
    assert not (tmp_path / "gridbot.db").exists()  # a check creates no database

    # 张阿姨 linked and wrote to the bot; 李师傅 linked in a group only
    async def link() -> None:
        store = SQLiteStore(str(tmp_path / "gridbot.db"))
        await store.open()
        async with store.transaction() as tx:
            await tx.sync_org(load_config(path))
            now = SystemClock().now()
            await tx.save_account(Account(platform="telegram", user_id="1002",
                                          display_name="张阿姨", person_id="zhang",
                                          private_chat_id="1002"), now)
            await tx.save_account(Account(platform="telegram", user_id="1007",
                                          display_name="李师傅", person_id="li"), now)
        await store.close()

    asyncio.run(link())
    assert main(["check-config", "--config", str(path)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("提醒：值班表上有 4 人收不到消息") and "数据库" not in err[0]
    assert not any("张阿姨" in line for line in err)
    assert "  李师傅（li，M01备班 M02主班）：认证了，但还没有私聊过机器人" in err


async def test_gridbot_run_warns_once_about_who_cannot_be_reached(
        tmp_path: Path, fake: FakeTelegram) -> None:
    bot = fake.bot(TOKEN, "GridTestBot")
    process = _gridbot(write_config(tmp_path, fake), "run")
    try:
        await fake.until(lambda: any(c[0] == "getUpdates" for c in bot.calls), timeout=20)
        await asyncio.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(process.communicate, timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert err.count("提醒：值班表上有 5 人收不到消息") == 1
    assert "  孙志愿（sun，M01轮班）：还没有认证聊天账号" in err
    assert "Traceback" not in err and "已启动" in out


def test_rostered_means_on_a_roster_or_the_steward_of_a_micro_grid_without_one() -> None:
    from gridbot.reach import rostered

    config = load_config(EXAMPLE_CONFIG)
    assert [p.id for p in rostered(config)] == ["zhang", "sun", "li", "zhao", "qian"]
    assert all(p.role is Role.STEWARD for p in rostered(config))
