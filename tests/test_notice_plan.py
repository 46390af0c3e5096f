"""A notice's plan across channels (issue 19, item 4): ``gridbot notice --plan``.

The plan is made over the example org with every channel configured — Telegram against
the fake Bot API, the WeCom app (an app chat), a group robot and the Official Account
against the fake WeChat, and WeCom customer groups bound to micro-grids — and its time is
checked against the real sender: 120 Telegram groups at 30 messages a second, measured
on the running clock, and the group robots' 20 a minute replayed on the virtual clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridbot import notices, plan
from gridbot.adapters.base import Adapter
from gridbot.customer_groups import monthly_quota, quota_month
from gridbot.domain import Account, Chat, ChatKind, CustomerGroup, DeliveryCounts, Outgoing
from gridbot.outbox import OutboxSender
from gridbot.ratelimit import TELEGRAM_LIMITS, WECOM_ROBOT_LIMITS, send_time
from tests import wechat_harness as harness
from tests.conftest import Bot
from tests.fake_telegram import FakeTelegram
from tests.fake_wechat import FakeWeChat
from tests.telegram_harness import World, start_world
from tests.wechat_harness import APP_CHAT_M02, ROBOT_M01


def wechat_sections(fake: FakeWeChat) -> str:
    """The WeCom app with an app chat for M02, the Official Account and M01's robot, and
    customer groups bound by their owner."""
    return harness.wechat_sections(fake) + "\n[wechat.work.customer_groups]\nowner_rule = true\n"


@pytest.fixture
async def wechat_fake() -> AsyncIterator[FakeWeChat]:
    server = FakeWeChat(members={"zhoushegong"}, followers={"oLIU", "oHUANG"},
                        robots={ROBOT_M01}, app_chats={APP_CHAT_M02})
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def everywhere(database: Path, telegram: FakeTelegram,
                     wechat_fake: FakeWeChat) -> AsyncIterator[World]:
    """``gridbot run`` with every channel: Telegram, the WeCom app, a robot, the Official
    Account, customer groups, and the residents' pages (a forwarded copy links to them)."""
    w = await start_world(database.parent, telegram, "polling", web=True,
                          extra=wechat_sections(wechat_fake))
    wechat_fake.now = lambda: w.clock.now().timestamp()
    await w.by_hand()
    yield w
    await w.runtime.stop()


async def bind(w: World, platform: str, chat_id: str, microgrid: str, title: str = "") -> None:
    async with w.runtime.store.transaction() as tx:
        await tx.save_chat(Chat(platform=platform, chat_id=chat_id, kind=ChatKind.GROUP,
                                title=title or chat_id, microgrid=microgrid),
                           bound_by="zhou", now=w.clock.now())


async def make(w: World, words: str, *, fresh: bool = False) -> plan.Plan:
    """The plan the console makes beside the running sender (``fresh``: as the command
    line makes it, with the adapters' limits and no round trip seen)."""
    runtime = w.runtime
    limiters = None if fresh else runtime.sender.limiters
    async with runtime.store.transaction() as tx:
        scope = await notices.resolve_scope(tx, None, words)
        return await plan.make_plan(
            tx, scope, senders=plan.senders_of(runtime.adapters, limiters), now=w.clock.now(),
            links=runtime.engine.resident_links, number=7)


async def customer_groups(w: World, now: datetime | None = None) -> None:
    """Two customer groups of 赵老师's (M03's steward, WeCom member ``zhaolaoshi``), one of
    which has had ``now``'s month's group-sendings."""
    now = now or w.clock.now()
    month, full = quota_month(now.date()), monthly_quota(now.date())
    async with w.runtime.store.transaction() as tx:
        await tx.save_account(Account(platform="wecom", user_id="zhaolaoshi", display_name="赵",
                                      person_id="zhao"), now)
        for chat_id, members, used in (("wrC1", 87, 3), ("wrC2", 40, full)):
            await tx.save_customer_group(CustomerGroup(
                platform=plan.CUSTOMER_GROUPS, chat_id=chat_id, name=f"幸福里7-9幢 {chat_id}",
                owner_id="zhaolaoshi", members=members, microgrid="M03", bound_by="owner",
                bound_at=now, seen_at=now, quota_month=month, quota_used=used))


async def test_the_plan_lists_each_channel_with_its_groups_people_time_and_who_acts(
        everywhere: World) -> None:
    w = everywhere
    await bind(w, "telegram", str(w.group.id), "M01", "幸福里1-3幢 邻里群")
    await customer_groups(w)
    now = w.clock.now()
    async with w.runtime.store.transaction() as tx:
        await tx.save_account(Account(platform="telegram", user_id="1003", display_name="刘奶奶",
                                      person_id="liu_nainai", private_chat_id="1003"), now)
        for person, openid in (("liu_nainai", "oLIU"), ("huang", "oHUANG"), ("tom", "oTOM")):
            await tx.save_account(Account(platform="wechat_mp", user_id=openid,
                                          display_name=person, person_id=person,
                                          private_chat_id=openid), now)
        await tx.mark_handled("wechat_mp", "oLIU", "1", now - timedelta(hours=3))
        await tx.mark_handled("wechat_mp", "oHUANG", "2", now - timedelta(hours=49))
    made = await make(w, "all")
    assert made.microgrids == ("M01", "M02", "M03", "M04")
    assert [r.channel for r in made.rows] == [
        "telegram", "wecom", "wecom_robot", plan.CUSTOMER_GROUPS, "wechat_mp", "forward"]
    telegram = made.row("telegram")
    assert telegram is not None
    assert (telegram.groups, telegram.people, telegram.microgrids) == (1, 1, ("M01",))
    assert telegram.limits is TELEGRAM_LIMITS  # the very limits the outbox keeps to
    assert telegram.action is plan.Action.NONE and telegram.replies
    app = made.row("wecom")
    assert app is not None and (app.groups, app.people, app.microgrids) == (1, None, ("M02",))
    assert not app.replies  # nobody's 收到 in an app chat reaches the bot
    robot = made.row("wecom_robot")
    assert robot is not None and (robot.groups, robot.people) == (1, None)
    assert robot.limits is WECOM_ROBOT_LIMITS
    assert robot.seconds == pytest.approx(plan.ROUND_TRIP)  # one message: 20 a minute is room
    customer = made.row(plan.CUSTOMER_GROUPS)
    assert customer is not None
    assert (customer.groups, customer.people, customer.microgrids) == (2, 87 + 40, ("M03",))
    assert customer.action is plan.Action.OWNER_TAP and customer.whose == ("赵老师",)
    assert customer.refused == 1 and customer.refusal is plan.Refusal.QUOTA  # its month is full
    assert customer.seconds is None  # it waits for a person
    oa = made.row("wechat_mp")
    assert oa is not None and (oa.people, oa.reachable, oa.refused) == (3, 1, 2)
    assert oa.refusal is plan.Refusal.WINDOW and oa.groups == 0
    forward = made.row(plan.FORWARD)
    assert forward is not None
    # No group the bot is in: M04. M03 is not: its customer group within the quota gets
    # the owner's group-sending instead (as gridbot.notices.start does).
    assert forward.microgrids == ("M04",) and forward.whose == ("钱大姐",)
    assert forward.action is plan.Action.FORWARD and forward.people == 1  # Tom
    assert [code for code, _ in forward.links] == ["M04"]
    assert re.search(r"/r/M04/1\.[0-9a-f]+/notice/7$", forward.links[0][1])
    # The steward never wrote to the bot in private: nobody would forward it yet.
    assert (forward.refused, forward.refusal) == (1, plan.Refusal.NO_STEWARD)
    async with w.runtime.store.transaction() as tx:
        await tx.save_account(Account(platform="telegram", user_id="1009", display_name="钱",
                                      person_id="qian", private_chat_id="1009"), now)
    forward = (await make(w, "all")).row(plan.FORWARD)
    assert forward is not None and (forward.refused, forward.refusal) == (
        0, plan.Refusal.NONE)
    assert made.groups == 3 + 2
    assert made.seconds == max(telegram.seconds or 0, app.seconds or 0, robot.seconds or 0)
    # A scope whose micro-grids all have a group has no forward row; one with none at all
    # is nothing but it.
    assert (await make(w, "M01")).row(plan.FORWARD) is None
    only = await make(w, "M04")
    assert [r.channel for r in only.rows if r.groups or r.channel == "forward"] == ["forward"]


async def test_a_group_the_bot_was_removed_from_or_a_platform_not_configured_is_refused(
        everywhere: World) -> None:
    w = everywhere
    await bind(w, "telegram", "-1009", "M01")
    await bind(w, "wecom_smartbot", "wrkSFfCgAAbot", "M02")  # a platform this bot lacks
    async with w.runtime.store.transaction() as tx:
        await tx.set_chat_unreachable("telegram", "-1009", at=w.clock.now(),
                                      reason="Forbidden: bot was kicked from the group chat")
    made = await make(w, "C01")
    telegram, other = made.row("telegram"), made.row("wecom_smartbot")
    assert telegram is not None and (telegram.refused, telegram.refusal) == (
        1, plan.Refusal.UNREACHABLE)
    assert other is not None and (other.groups, other.refused, other.refusal) == (
        1, 1, plan.Refusal.NO_SENDER)
    assert other.seconds is None


async def test_the_estimate_is_the_measured_send_to_120_telegram_groups(
        everywhere: World) -> None:
    """120 groups at Telegram's 30 a second: about 4 s by the plan, and by the clock
    when the real sender sends the notice to the fake Bot API.

    The plan takes each request to last as long as the sender has seen them last (here one
    message sent before, to the fake on this machine: milliseconds); where it has seen
    none, as :data:`gridbot.plan.ROUND_TRIP`, which counts once per 30 messages."""
    w = everywhere
    runtime = w.runtime
    codes = ("M01", "M02", "M03", "M04")
    for n in range(120):
        chat_id = -1002000000000 - n
        w.bot.group(chat_id, f"楼栋群 {n}")
        await bind(w, "telegram", str(chat_id), "M01" if n < 30 else codes[n % 4])
        if n == 29:  # the sender meets the platform: a notice to M01's 30 groups
            assert runtime.sender.limiters["telegram"].round_trip is None
            await send(w, "M01", "早上好")
            assert runtime.sender.limiters["telegram"].round_trip is not None
    telegram = (await make(w, "all")).row("telegram")
    assert telegram is not None and telegram.groups == 120
    estimate = telegram.seconds
    unseen = (await make(w, "all", fresh=True)).row("telegram")
    assert unseen is not None and unseen.seconds == pytest.approx(119 / 30 + 4 * plan.ROUND_TRIP)
    # at least the spacing (a busy machine's sender, seen waking late, adds to it)
    assert estimate is not None and estimate >= 119 / 30
    measured, counts = await send(w, "all", "周六停水")
    assert counts.sent == 120 + 2, counts  # and the robot's group and the app chat
    assert len([s for s in w.bot.sent if str(s.chat_id).startswith("-1002")]) == 30 + 120
    # The plan counts with what the sender saw last: the spacing it kept (each waiting
    # send wakes a moment late, more so on a busy machine) and how long a request took.
    # Made again now, from this very send, it is within 10 % of it. Made before, from 30
    # sends a moment earlier, it was within 10 % on a quiet machine (4.06 s planned,
    # 4.06-4.19 s measured), and is off by however much the load changed in between on a
    # busy one (CI, other tests beside it: 13-30 % seen), so only a loose bound here.
    again = (await make(w, "all")).row("telegram")
    assert again is not None and again.seconds is not None
    assert abs(measured - again.seconds) <= 0.1 * measured, (measured, again.seconds)
    assert abs(measured - estimate) <= 0.5 * measured, (measured, estimate)


async def send(w: World, words: str, text: str) -> tuple[float, DeliveryCounts]:
    """A notice to ``words`` started and sent by the runtime's sender: how long it took
    by the clock, and how its copies went."""
    runtime = w.runtime
    async with runtime.store.transaction() as tx:
        scope = await notices.resolve_scope(tx, None, words)
        notice = await notices.write(tx, author=None, scope=scope, text=text, now=w.clock.now())
        await notices.start(runtime.engine.services, tx, notice, w.clock.now())
    started = w.clock.now()
    while True:
        await w.drained()
        async with runtime.store.transaction() as tx:
            counts = await tx.delivery_counts(notice.id)
        if counts.pending == 0:
            return (w.clock.now() - started).total_seconds(), counts
        await asyncio.sleep(0.05)


class Robots(Adapter):
    """Group robots on the virtual clock: every message is taken at once."""

    name = "wecom_robot"
    limits = WECOM_ROBOT_LIMITS

    def __init__(self) -> None:
        self.taken: list[tuple[float, str]] = []
        self.clock_now = lambda: 0.0

    async def send(self, message: Outgoing) -> str:
        self.taken.append((self.clock_now(), message.chat_id))
        return str(len(self.taken))


async def test_the_robots_20_a_minute_is_replayed_as_the_sender_keeps_it(bot: Bot) -> None:
    """One notice is one message per robot, which 20 a minute never holds back; three
    robots given 45 messages each are: the replay and the sender agree to the second."""
    robots = Robots()
    robots.clock_now = lambda: bot.now.timestamp()
    sender = OutboxSender(bot.demo.store, bot.demo.clock, {robots.name: robots})
    chats = [f"M0{c}" for _ in range(45) for c in (1, 2, 3)]
    async with bot.demo.store.transaction() as tx:
        for n, chat in enumerate(chats):
            await tx.enqueue(Outgoing(platform=robots.name, chat_id=chat, text=f"{n}",
                                      dedup_key=f"r:{n}"), bot.now)
    started = bot.now
    while True:
        await sender.drain()
        due = await sender.next_due()
        if due is None:
            break
        bot.demo.clock.set(max(due, bot.now))
    measured = robots.taken[-1][0] - started.timestamp()
    assert len(robots.taken) == 135
    estimate = send_time(WECOM_ROBOT_LIMITS, chats, round_trip=0.0)
    assert estimate == pytest.approx(120.0)  # 20 now, 20 a minute on, 5 two minutes on
    assert abs(measured - estimate) <= 0.1 * estimate, (measured, estimate)
    assert send_time(WECOM_ROBOT_LIMITS, ["M01", "M02", "M03"], round_trip=0.0) == 0.0


async def test_send_time_keeps_the_spacing_windows_and_workers() -> None:
    assert send_time(TELEGRAM_LIMITS, [], round_trip=0.25) == 0.0
    assert send_time(TELEGRAM_LIMITS, [f"g{n}" for n in range(120)],
                     round_trip=0.0) == pytest.approx(119 / 30)
    # 25 messages into one group: 20 a minute, then the rest a minute after the first ended
    assert send_time(TELEGRAM_LIMITS, ["g"] * 25, round_trip=0.1) == pytest.approx(60.2 + 0.4)
    # one worker: each waits for the one before
    one = dataclasses.replace(WECOM_ROBOT_LIMITS, concurrency=1)
    assert send_time(one, ["a", "b", "c"], round_trip=0.5) == pytest.approx(1.5)


async def test_the_command_line_prints_the_plan_table(
        everywhere: World, capsys: pytest.CaptureFixture[str]) -> None:
    """``gridbot notice --plan`` over the demo org with every channel configured, beside
    the running bot (it writes nothing)."""
    from gridbot.cli import main

    w = everywhere
    await bind(w, "telegram", str(w.group.id), "M01", "幸福里1-3幢 邻里群")
    await customer_groups(w, datetime.now(UTC))  # the command line's clock is the system's
    config = w.db.parent / "gridbot.toml"
    before = w.counts()
    args = ["--config", str(config), "notice", "--plan", "--scope", "all"]
    assert await asyncio.to_thread(main, args) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "通知计划：all（4 个微网格）"
    assert lines[1].split() == ["渠道", "群", "人", "发送用时", "要谁做什么", "发不到的"]
    table = {line.split()[0]: line for line in lines[2:8]}
    assert list(table) == ["Telegram", "企业微信应用群", "企业微信群机器人", "企业微信客户群",
                           "公众号", "没接入的群（转发）"]
    assert "不到 1 秒（共每秒 30 条，每群每分钟 20 条）" in table["Telegram"]
    assert "每群每分钟 20 条" in table["企业微信群机器人"]
    assert "等群主确认" in table["企业微信客户群"] and "赵老师 在企业微信确认群发" in \
        table["企业微信客户群"] and "1 个群超过配额" in table["企业微信客户群"]
    assert table["企业微信客户群"].split()[1:3] == ["2", "127"]
    assert "通知不经公众号发" in table["公众号"]
    assert "钱大姐 私聊收到通知，转发到居民群" in table["没接入的群（转发）"]
    assert "1 个微网格的微网管家没私聊过机器人" in table["没接入的群（转发）"]
    assert lines[8].startswith("机器人共发 3 个群")
    # M03's residents are in a customer group (its owner's group-sending): no forward link
    assert lines[9].startswith("M04 桂花园东区：http://") and lines[9].endswith("/notice/1")
    assert "「收到」页面（#1 是现在写下时的编号）" in lines[10]
    assert w.counts() == before  # a plan writes nothing


@pytest.fixture
async def live(database: Path, telegram: FakeTelegram,
               wechat_fake: FakeWeChat) -> AsyncIterator[World]:
    """Every channel, the bot sending by itself (the console is used as people use it)."""
    w = await start_world(database.parent, telegram, "polling", web=True,
                          extra=wechat_sections(wechat_fake))
    wechat_fake.now = lambda: w.clock.now().timestamp()
    yield w
    await w.runtime.stop()


async def test_the_composer_shows_the_plan_as_it_previews(live: World) -> None:
    from tests.telegram_harness import ZHOU, bound
    from tests.test_console import csrf_of, logged_in

    w = await bound(live)  # M01's Telegram group; M01 has a robot, M02 an app chat
    base = w.runtime.console.base if w.runtime.console else ""
    client = await logged_in(w, ZHOU)
    try:
        composer = await client.get(base + "/notices")
        assert 'id="plan"' not in composer.text
        preview = await client.post(base + "/notices/preview", data={
            "csrf": csrf_of(composer.text), "scope": "C01", "text": "周六停水"})
    finally:
        await client.aclose()
    assert preview.status_code == 200
    html = preview.text
    assert 'id="plan"' in html and "发送计划" in html
    rows = re.findall(r'<tr data-channel="([^"]+)" data-groups="(\d+)"', html)
    assert rows == [("telegram", "1"), ("wecom", "1"), ("wecom_robot", "1"),
                    ("wecom_customer", "0"), ("wechat_mp", "0"), ("forward", "0")]
    assert "共每秒 30 条，每群每分钟 20 条" in html  # the sender's own limits
    assert "赵老师 私聊收到通知，转发到居民群" in html
    assert re.search(r'<li data-forward="M03">M03 <a href="http://[^"]+/r/M03/1\.', html)
    assert "机器人共发 3 个群" in html


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_the_plan_table_reads_in_each_language(locale: str) -> None:
    from zoneinfo import ZoneInfo

    from gridbot.cli.notice import aligned
    from gridbot.domain import TextFormat
    from gridbot.render import Renderer

    made = plan.Plan(label="all", microgrids=("M01", "M02", "M03", "M04"), rows=(
        plan.Row(channel="telegram", groups=120, people=35, seconds=4.97,
                 limits=TELEGRAM_LIMITS),
        plan.Row(channel="wecom_robot", groups=1, seconds=0.25, limits=WECOM_ROBOT_LIMITS,
                 replies=False),
        plan.Row(channel="telegram_old", groups=2, refused=2, refusal=plan.Refusal.NO_SENDER),
        plan.Row(channel=plan.CUSTOMER_GROUPS, groups=3, action=plan.Action.OWNER_TAP,
                 whose=("赵老师",), refused=None, refusal=plan.Refusal.QUOTA),
        plan.Row(channel="wechat_mp", people=3, reachable=1, refused=2,
                 refusal=plan.Refusal.WINDOW),
        plan.Row(channel=plan.FORWARD, people=1, microgrids=("M04",),
                 action=plan.Action.FORWARD, whose=("钱大姐",),
                 links=(("M04", "https://x.example/r/M04/1.ab"),))))
    render = Renderer(ZoneInfo("Asia/Shanghai")).render
    text = aligned(render("cli/notice_plan", locale=locale, fmt=TextFormat.PLAIN, plan=made,
                          round_trip=0.25, names={"M04": "桂花园东区"}))
    lines = text.split("\n")
    assert len(lines) == 1 + 1 + 6 + 1 + 1 + 1, text
    assert "\t" not in text and "{{" not in text
    assert ("约 5 秒" if locale == "zh-CN" else "about 5 s") in lines[2]
    assert "赵老师" in lines[5] and "钱大姐" in lines[7]
    assert lines[9].startswith("M04 桂花园东区") and lines[9].endswith("/r/M04/1.ab")
    empty = render("cli/notice_plan", locale=locale, fmt=TextFormat.PLAIN,
                   plan=plan.Plan(label="M04", microgrids=("M04",), rows=()),
                   round_trip=0.25, names={})
    assert ("没有机器人能发的群" if locale == "zh-CN" else "No group") in empty
