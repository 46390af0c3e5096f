"""Deadlines, reminders and the ladder, on the virtual clock with a real SQLite file.

The sample org (config.example.toml): M01's steward 张阿姨 (zhang) → grid leader
王网格长 (wang, G01) → community 周社工 (zhou, C01) → subdistrict 郑科长 (zheng).
The demo starts on Monday 2026-11-23 at 09:00 Asia/Shanghai; quiet hours are
22:00-07:00 and non-urgent windows do not run during them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gridbot.config import Config
from gridbot.demo import Demo, parse_start
from gridbot.domain import Status
from gridbot.engine import Engine
from gridbot.escalation import DeadlineSweep
from gridbot.outbox import OutboxSender
from gridbot.store import SQLiteStore
from gridbot.timers.scheduler import Scheduler
from gridbot.timers.worker import build_worker
from tests.conftest import Bot, to

REPORT = "报事 3幢楼道灯坏了，晚上很黑"


def local(bot: Bot) -> str:
    return bot.now.astimezone(bot.demo.config.timezone).strftime("%m-%d %H:%M")


async def test_unclaimed_case_climbs_the_ladder_at_each_window(bot: Bot) -> None:
    await bot.say("刘奶奶", REPORT)
    # 75 % of the 2 h claim window: a reminder to the steward, and nothing before.
    assert await bot.wait(timedelta(minutes=89)) == []
    out = await bot.wait(timedelta(minutes=1))
    assert local(bot) == "11-23 10:30"
    assert len(out) == 1 and "提醒" in to(out, "zhang")[0] and "11-23 11:00" in out[0].text
    # 11:00, not claimed within 2 h: up to the grid leader, who gets the claim button;
    # the steward and the reporter are told (the reporter briefly, no personal details).
    assert await bot.wait(timedelta(minutes=29)) == []
    out = await bot.wait(timedelta(minutes=1))
    case = await bot.case(1)
    assert (case.level, case.assignee_id, case.status) == (1, "wang", Status.ASSIGNED)
    assert case.claim_by == bot.now + timedelta(hours=2)
    wang = [m for m in out if m.chat_id == "dm:wang"]
    assert len(wang) == 1 and "超时未认领（时限 2小时）" in wang[0].text
    assert [b.command for b in wang[0].buttons] == ["/claim 1"]
    assert "2小时" in to(out, "zhang")[0] and "王网格长" in to(out, "zhang")[0]
    assert "网格" in to(out, "liu_nainai")[0] and "137" not in to(out, "liu_nainai")[0]
    assert len(out) == 3
    escalated = [e for e in await bot.events(1) if e.kind == "escalated"]
    assert escalated[0].actor_id is None
    assert escalated[0].data == {"from_level": 0, "to_level": 1, "why": "claim_missed",
                                 "within": "2h"}
    # The grid leader is reminded at 12:30; at 13:00 the community, at 15:00 the
    # subdistrict.
    out = await bot.wait(timedelta(hours=1, minutes=30))
    assert len(to(out, "wang")) == 1 and "提醒" in to(out, "wang")[0]
    await bot.wait(timedelta(minutes=30))
    assert (await bot.case(1)).assignee_id == "zhou"
    out = await bot.wait(timedelta(hours=2))
    case = await bot.case(1)
    assert (case.level, case.assignee_id) == (3, "zheng")
    assert "街道" in to(out, "liu_nainai")[0]
    # 17:00: the top of the ladder missed its window too. It stays there and reminds,
    # every 4 h, at most 3 times.
    out = await bot.wait(timedelta(hours=2))
    case = await bot.case(1)
    assert (case.level, case.assignee_id, case.top_reminders) == (3, "zheng", 1)
    assert "第 1/3 次提醒" in to(out, "zheng")[-1]
    assert "⏰" in to(out, "zheng")[0] and "自动上报" not in to(out, "zheng")[0]
    out = await bot.wait(timedelta(days=3))
    reminders = [t for t in to(out, "zheng") if "次提醒" in t]
    assert len(reminders) == 2 and "第 3/3 次提醒" in reminders[-1]
    assert (await bot.case(1)).wake_at is None  # nothing more will happen by itself
    kinds = [e.kind for e in await bot.events(1)]
    assert kinds.count("escalated") == 3 and kinds.count("overdue") == 1


async def test_the_reminder_follows_the_configured_fraction(bot: Bot,
                                                            config: Config) -> None:
    bot.demo.config = config = dataclasses.replace(
        config, escalation=dataclasses.replace(config.escalation, remind_at=(0.5, 0.9)))
    bot.demo.engine.config = config
    await bot.say("刘奶奶", REPORT)
    out = await bot.wait(timedelta(hours=1))
    assert len(to(out, "zhang")) == 1  # at 50 %
    out = await bot.wait(timedelta(minutes=48))
    assert len(to(out, "zhang")) == 1  # at 90 %
    assert local(bot) == "11-23 10:48"


async def test_a_claim_stops_the_claim_clock(bot: Bot) -> None:
    await bot.say("刘奶奶", REPORT)
    await bot.wait(timedelta(minutes=100))  # reminded at 10:30
    await bot.say("张阿姨", "认领 1", private=True)
    out = await bot.wait(timedelta(hours=6))
    case = await bot.case(1)
    assert (case.level, case.assignee_id, case.status) == (0, "zhang", Status.CLAIMED)
    assert out == []
    assert "escalated" not in [e.kind for e in await bot.events(1)]


async def test_resolve_window_missed_escalates_and_resolving_stops_it(bot: Bot) -> None:
    await bot.say("刘奶奶", REPORT)
    await bot.say("张阿姨", "认领 1", private=True)
    for _ in range(3):  # keep the claim from going idle
        await bot.wait(timedelta(hours=20))
        await bot.say("张阿姨", "进展 1 等物业配件", private=True)
    case = await bot.case(1)
    assert case.level == 0 and case.resolve_by < bot.now + timedelta(hours=20)
    out = await bot.wait(case.resolve_by - bot.now + timedelta(minutes=1))
    case = await bot.case(1)
    assert (case.level, case.assignee_id, case.status) == (1, "wang", Status.ASSIGNED)
    assert "超时未办结" in to(out, "wang")[0]
    await bot.say("王网格长", "办结 1 已协调物业换灯", private=True)
    await bot.wait(timedelta(days=3))  # unanswered, the 回访 closes it
    case = await bot.case(1)
    assert (case.level, case.status) == (1, Status.CLOSED)


async def test_urgent_case_notifies_three_levels_at_once_and_counts_calendar_time(
        bot: Bot) -> None:
    await bot.wait(timedelta(hours=13, minutes=30))  # 22:30, quiet hours
    out = await bot.say("刘奶奶", "报事 5幢楼道里冒烟了，快来人")
    for who in ("zhang", "wang", "zhou"):
        assert len(to(out, who)) == 1, who
    case = await bot.case(1)
    assert case.claim_by == bot.now + timedelta(minutes=15)
    out = await bot.wait(timedelta(minutes=15))  # not claimed: up at once, at night
    assert (await bot.case(1)).assignee_id == "wang"
    assert len(to(out, "wang")) == 1


async def test_quiet_hours_hold_news_until_morning_but_never_answers(bot: Bot) -> None:
    await bot.wait(timedelta(hours=13, minutes=30))  # 22:30
    out = await bot.say("刘奶奶", REPORT)
    # The resident's answer comes now; the steward's notice waits for 07:00.
    assert len(to(out, "M01")) == 1 and to(out, "zhang") == []
    case = await bot.case(1)
    # The claim window does not run at night either: 2 h from 07:00.
    assert case.claim_by.astimezone(bot.demo.config.timezone).strftime("%H:%M") == "09:00"
    assert await bot.wait(timedelta(hours=8, minutes=29)) == []
    out = await bot.wait(timedelta(minutes=1))
    assert local(bot) == "11-24 07:00"
    assert len(to(out, "zhang")) == 1 and "#1" in to(out, "zhang")[0]


async def test_two_sweeps_at_once_escalate_once(bot: Bot, config: Config) -> None:
    await bot.say("刘奶奶", REPORT)
    other_store = SQLiteStore(str(bot.path))
    await other_store.open()
    try:
        other = Engine(config, other_store, bot.demo.clock)
        await other.start()
        bot.demo.clock.advance(timedelta(hours=2))
        sweeps = [DeadlineSweep(bot.demo.engine), DeadlineSweep(other)]
        done = await asyncio.gather(*(s.run_due(bot.now) for s in sweeps))
        # reminder + escalation, each taken by exactly one of the two
        assert sum(done) == 2
        assert [e.kind for e in await bot.events(1)].count("escalated") == 1
        async with bot.demo.store.transaction() as tx:
            queued = await tx.claim_outbox(bot.now, limit=100, lease=timedelta(minutes=1),
                                           platforms=["console"])
        assert sorted(m.message.chat_id for m in queued) == [
            "dm:liu_nainai", "dm:wang", "dm:zhang"]
    finally:
        await other_store.close()


async def test_restart_after_a_ten_hour_outage_catches_up_in_order(
        tmp_path: Path, config: Config) -> None:
    path = tmp_path / "gridbot.db"
    start = parse_start("2026-11-23 09:00", config)
    async with Demo(config, path, start, out=io.StringIO()) as demo:
        await demo.say("刘奶奶", REPORT)
        sent_before = len(demo.console.delivered)
    # The bot was down from 09:00 to 19:00. On restart the worker replays the ladder
    # as it would have happened: one step per missed window, in deadline order.
    async with Demo(config, path, start + timedelta(hours=10), out=io.StringIO()) as demo:
        await demo.worker.run_due()
        async with demo.store.transaction() as tx:
            case = await tx.case(1)
            events = await tx.events(1)
        assert (case.level, case.assignee_id, case.top_reminders) == (3, "zheng", 1)
        climbed = [(e.data["to_level"], e.data["why"]) for e in events if e.kind == "escalated"]
        assert climbed == [(1, "claim_missed"), (2, "claim_missed"), (3, "claim_missed")]
        # the windows of each level started when the one below ran out
        assigned = [e for e in events if e.kind == "assigned"]
        tz = config.timezone
        assert case.claim_by.astimezone(tz).strftime("%H:%M") == "17:00"
        assert len(assigned) == 4
        out = [d.message for d in demo.console.delivered]
        # Stale reminders (their window already over) are not sent; every step is.
        assert not any("⏰" in m.text for m in out)
        assert [len(to(out, who)) for who in ("wang", "zhou", "zheng")] == [2, 2, 2]
        assert len(to(out, "zhang")) == 1 and len(to(out, "liu_nainai")) == 3
        assert sent_before == 2
        # and running again changes nothing
        assert (await demo.worker.run_due()).handled["deadlines"] == 0


async def test_extension_asked_approved_and_refused(bot: Bot) -> None:
    await bot.say("刘奶奶", REPORT)
    await bot.say("张阿姨", "认领 1", private=True)
    before = (await bot.case(1)).resolve_by
    out = await bot.say("张阿姨", "延期 1 1d 等物业报价", private=True)
    assert "王网格长" in to(out, "zhang")[0]
    ask = next(m for m in out if m.chat_id == "dm:wang")
    assert "等物业报价" in ask.text and [b.command for b in ask.buttons] == ["/approve 1"]
    # one request at a time; a steward cannot approve; the grid leader can
    out = await bot.say("张阿姨", "延期 1 2d 还要等", private=True)
    assert "等待批准" in to(out, "zhang")[0]
    out = await bot.say("张阿姨", "批准 1", private=True)
    assert (await bot.case(1)).extension is not None
    out = await bot.say("王网格长", "/approve 1", private=True)
    case = await bot.case(1)
    # a day asked for is a day on the calendar: the same time tomorrow
    assert case.resolve_by == before + timedelta(days=1)
    assert case.extended_until == case.resolve_by
    assert case.extension is None and case.extensions == 1
    assert "已批准" in to(out, "zhang")[0]
    # a second request, refused with a reason
    await bot.say("张阿姨", "延期 1 3d 配件缺货", private=True)
    out = await bot.say("王网格长", "驳回 1 周三前必须修好", private=True)
    assert "周三前必须修好" in to(out, "zhang")[0]
    case = await bot.case(1)
    assert case.extensions == 1 and case.extension is None
    kinds = [e.kind for e in await bot.events(1)]
    assert kinds.count("extension_requested") == 2
    assert "extended" in kinds and "extension_refused" in kinds
    # too long, too many, or after the deadline: a clear no
    out = await bot.say("张阿姨", "延期 1 30d 太久了", private=True)
    assert "最多" in to(out, "zhang")[0]
    await bot.say("张阿姨", "延期 1 1d 再等等", private=True)
    await bot.say("王网格长", "批准 1", private=True)
    out = await bot.say("张阿姨", "延期 1 1d 第三次", private=True)
    assert "2 次" in to(out, "zhang")[0]


async def test_extension_after_the_deadline_is_refused(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 请问居住证怎么办理")  # low: 24 h to claim
    await bot.say("张阿姨", "延期 1 1d 本周出差", private=True)
    await bot.wait(timedelta(hours=40))
    assert (await bot.case(1)).level == 1  # the request did not stop the clock
    assert (await bot.case(1)).extension is None  # and it lapsed with the escalation
    out = await bot.say("王网格长", "延期 1 1d 再等等", private=True)
    assert "#1" in to(out, "wang")[0]


async def test_return_to_the_grid_leader_who_reroutes(bot: Bot) -> None:
    await bot.say("刘奶奶", REPORT)
    out = await bot.say("张阿姨", "退单 1 这是桂花园的楼，不归我们", private=True)
    case = await bot.case(1)
    assert (case.level, case.assignee_id, case.status) == (1, "wang", Status.ASSIGNED)
    assert "这是桂花园的楼" in to(out, "wang")[0] and "改派" in to(out, "wang")[0]
    # M04 is in another community: out of a grid leader's reach.
    out = await bot.say("王网格长", "改派 1 M04", private=True)
    assert "不在您的管辖范围" in to(out, "wang")[0]
    out = await bot.say("王网格长", "改派 1 M99", private=True)
    assert "M99" in to(out, "wang")[0]
    out = await bot.say("王网格长", "改派 1 M03 在隔壁网格", private=True)
    case = await bot.case(1)
    assert (case.microgrid, case.level, case.assignee_id) == ("M03", 0, "zhao")
    assert [b.command for b in next(m for m in out if m.chat_id == "dm:zhao").buttons] == [
        "/claim 1"]
    assert "赵老师" in to(out, "liu_nainai")[0]
    # a returned case's windows run at the level it went to
    assert case.claim_by == bot.now + timedelta(hours=2)
    out = await bot.say("赵老师", "退单 1 也不是我们的", private=True)
    assert (await bot.case(1)).assignee_id == "chen"
    # only a steward, and only at the micro-grid level
    out = await bot.say("陈网格长", "退单 1 不对", private=True)
    assert "只有微网管家" in to(out, "chen")[0]


async def test_idle_claim_reminds_then_reverts_to_unclaimed(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 请问居住证怎么办理")  # low: 7 days to resolve
    await bot.say("张阿姨", "认领 1", private=True)
    # 24 h of window time without a note: a reminder (nights do not count).
    out = await bot.wait(timedelta(hours=32, minutes=59))
    assert not any("没有新进展" in t for t in to(out, "zhang"))
    out = await bot.wait(timedelta(minutes=1))
    assert local(bot) == "11-24 18:00"
    assert "没有新进展" in to(out, "zhang")[0]
    # a note restarts the idle clock …
    await bot.say("张阿姨", "进展 1 物业说明天来", private=True)
    out = await bot.wait(timedelta(hours=32, minutes=59))
    assert (await bot.case(1)).status is Status.CLAIMED
    # … and without one, 12 h after the next reminder the claim is taken back.
    out = await bot.wait(timedelta(hours=31))
    case = await bot.case(1)
    assert case.status is Status.ASSIGNED and case.claimed_at is None
    assert "退回待认领" in "".join(to(out, "zhang"))
    kinds = [e.kind for e in await bot.events(1)]
    assert kinds.count("idle_reminded") == 2 and "idle_reverted" in kinds


async def test_unanswered_feedback_closes_the_case(bot: Bot) -> None:
    await bot.say("刘奶奶", REPORT)
    await bot.say("张阿姨", "办结 1 灯已换好", private=True)
    assert (await bot.case(1)).status is Status.RESOLVED
    assert await bot.wait(timedelta(hours=71, minutes=59)) == []
    out = await bot.wait(timedelta(minutes=1))
    case = await bot.case(1)
    assert case.status is Status.CLOSED and case.closed_at == bot.now
    assert "无反馈" in to(out, "zhang")[0]
    assert "未解决 1" in to(out, "liu_nainai")[0]
    assert [e.kind for e in await bot.events(1)][-1] == "closed_no_feedback"
    # the resident can still say it is not fixed
    await bot.say("刘奶奶", "未解决 1 灯又灭了")
    assert (await bot.case(1)).status is Status.ASSIGNED


async def test_not_fixed_button_reopens(bot: Bot) -> None:
    await bot.say("刘奶奶", REPORT)
    out = await bot.say("张阿姨", "办结 1 灯已换好", private=True)
    button = next(m for m in out if m.chat_id == "dm:liu_nainai").buttons[1]
    await bot.say("刘奶奶", button.command, private=True)
    case = await bot.case(1)
    assert case.status is Status.ASSIGNED and case.assignee_id == "zhang"


async def test_working_hours_wait_out_the_national_day_holiday(
        tmp_path: Path, config: Config) -> None:
    config = dataclasses.replace(
        config, calendar=dataclasses.replace(config.calendar, count="working"))
    start = parse_start("2026-09-30 17:00", config)  # the eve of the holiday
    async with Demo(config, tmp_path / "g.db", start, out=io.StringIO()) as demo:
        bot = Bot(demo=demo, path=tmp_path / "g.db")
        await bot.say("刘奶奶", REPORT)
        case = await bot.case(1)
        # 30 minutes left on Sep 30, then the holiday (Oct 1-7); work resumes Oct 8.
        assert case.claim_by.astimezone(config.timezone) == datetime(
            2026, 10, 8, 10, 0, tzinfo=config.timezone)
        await bot.wait(timedelta(days=7, hours=16, minutes=59))  # Oct 8 09:59
        case = await bot.case(1)
        assert case.level == 0
        async with demo.store.transaction() as tx:
            from gridbot.store.base import CaseQuery

            assert await tx.cases(CaseQuery(overdue_at=bot.now)) == []
        await bot.wait(timedelta(minutes=1))
        assert (await bot.case(1)).level == 1


async def test_manual_escalate_takes_the_same_path(bot: Bot) -> None:
    await bot.say("刘奶奶", REPORT)
    out = await bot.say("张阿姨", "上报 1 需要物业公司配合", private=True)
    case = await bot.case(1)
    assert case.level == 1 and case.claim_by == bot.now + timedelta(hours=2)
    assert len(to(out, "wang")) == 1 and len(to(out, "liu_nainai")) == 1
    # the new level's windows run like any other
    await bot.wait(timedelta(hours=2))
    assert (await bot.case(1)).assignee_id == "zhou"


async def test_daily_digest_once_a_day(bot: Bot) -> None:
    await bot.say("刘奶奶", REPORT)
    await bot.say("刘奶奶", "报事 垃圾桶满了没人清")
    await bot.say("张阿姨", "认领 1", private=True)
    await bot.say("张阿姨", "认领 2", private=True)
    out = await bot.wait(timedelta(hours=22, minutes=59))  # Tuesday 07:59
    assert not any("早上好" in m.text for m in out)
    out = await bot.wait(timedelta(minutes=1))
    digests = [m for m in out if "早上好" in m.text]
    assert [m.chat_id for m in digests] == ["dm:zhang"]
    assert "#1" in digests[0].text and "#2" in digests[0].text
    # a second worker on the same database does not send it again
    assert (await bot.demo.worker.run_due()).handled["digest"] == 0
    out = await bot.wait(timedelta(days=1))
    assert len([m for m in out if "早上好" in m.text]) == 1


class _RealTimeClock:
    """Wall-clock time shifted into the scenario, so the real scheduler can wake."""

    def __init__(self, at: datetime) -> None:
        self.offset = at - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


async def test_the_scheduler_wakes_at_the_next_deadline(tmp_path: Path,
                                                        config: Config) -> None:
    start = parse_start("2026-11-23 10:59", config)
    async with Demo(config, tmp_path / "s.db", start, out=io.StringIO()) as demo:
        await demo.say("刘奶奶", REPORT)  # claim by 12:59
    clock = _RealTimeClock(start + timedelta(hours=2) - timedelta(milliseconds=300))
    store = SQLiteStore(str(tmp_path / "s.db"))
    await store.open()
    try:
        engine = Engine(config, store, clock)
        await engine.start()
        worker = build_worker(engine, OutboxSender(store, clock, {}))
        # The sweep interval is an hour, so only the wake at the deadline can do it.
        scheduler = Scheduler(worker, clock, sweep_every=timedelta(hours=1))
        await scheduler.start()
        try:
            for _ in range(100):
                async with store.transaction() as tx:
                    if (await tx.case(1)).level == 1:
                        break
                await asyncio.sleep(0.02)
        finally:
            await scheduler.stop()
        async with store.transaction() as tx:
            case = await tx.case(1)
        assert case.level == 1 and case.assignee_id == "wang"
        assert scheduler.ticks >= 2
    finally:
        await store.close()


async def test_open_cases_from_before_deadlines_existed_are_picked_up(
        tmp_path: Path, config: Config) -> None:
    import sqlite3

    from gridbot.store.sqlite import migrations, ts

    path = tmp_path / "old.db"
    start = parse_start("2026-11-23 09:00", config)
    version, sql = migrations()[0]
    db = sqlite3.connect(path)
    db.executescript(sql)
    db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
               " applied_at TEXT NOT NULL)")
    db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, ts(start)))
    db.execute(
        "INSERT INTO cases (microgrid, reporter_id, origin_platform, origin_chat_id, text,"
        " category, priority, status, level, assignee_id, claim_by, resolve_by, created_at,"
        " updated_at) VALUES ('M01', 'liu_nainai', 'console', 'group:M01', '3幢楼道灯坏了',"
        " 'facility', 'normal', 'assigned', 0, 'zhang', ?, ?, ?, ?)",
        (ts(start + timedelta(hours=2)), ts(start + timedelta(hours=48)), ts(start),
         ts(start)))
    db.commit()
    db.close()
    async with Demo(config, path, start + timedelta(hours=3), out=io.StringIO()) as demo:
        await demo.worker.run_due()
        async with demo.store.transaction() as tx:
            case = await tx.case(1)
    assert (case.level, case.assignee_id) == (1, "wang")
    assert case.wake_at is not None


async def test_the_top_of_the_ladder_grants_its_own_extension(bot: Bot) -> None:
    await bot.say("刘奶奶", REPORT)
    for name in ("张阿姨", "王网格长", "周社工"):
        await bot.say(name, "上报 1 需要上级协调", private=True)
    case = await bot.case(1)
    assert (case.level, case.assignee_id) == (3, "zheng")
    out = await bot.say("郑科长", "延期 1 2h 协调多个部门", private=True)
    after = await bot.case(1)
    assert after.claim_by == bot.demo.engine.calendar.add(case.claim_by, timedelta(hours=2))
    assert after.extension is None and after.extensions == 1
    assert len(out) == 1 and "已批准" in to(out, "zheng")[0]


async def test_scheduled_notices_run_on_the_same_timer(bot: Bot) -> None:
    out = await bot.say("周社工", "通知 M01 定时 11:00 明天上午停水，请提前储水", private=True)
    assert "#1" in to(out, "zhou")[0]
    assert await bot.wait(timedelta(minutes=119)) == []
    out = await bot.wait(timedelta(minutes=1))
    assert local(bot) == "11-23 11:00"
    assert any("停水" in t for t in to(out, "M01"))
