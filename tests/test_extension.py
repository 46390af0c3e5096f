"""An approved extension (延期) protects the case until its date; days count as days.

Issue 14 item 2, on the sample org (config.example.toml, the ``bot`` fixture): M01's
steward 张阿姨 (zhang) → grid leader 王网格长 (wang) → community 周社工 (zhou) →
subdistrict 郑科长 (zheng). The demo starts on Monday 2026-11-23 at 09:00 Asia/Shanghai;
windows count around the clock but stand still in quiet hours (22:00-07:00), so a normal
case reported then must be resolved by 11-26 12:00 (48 h of counting time).
"""

from __future__ import annotations

import dataclasses
import io
from datetime import datetime, timedelta
from pathlib import Path

from gridbot.config import Config
from gridbot.demo import Demo, parse_start
from gridbot.domain import Status
from gridbot.durations import Duration
from gridbot.policy.workhours import WorkCalendar
from tests.conftest import Bot, to

REPORT = "报事 3幢楼道的窗户玻璃碎了，风大很危险"


def local(bot: Bot, instant: datetime | None) -> str:
    assert instant is not None
    return instant.astimezone(bot.demo.config.timezone).strftime("%m-%d %H:%M")


async def until(bot: Bot, when: str) -> list:
    """Move the clock to local ``MM-DD HH:MM`` of 2026, running all that falls due."""
    tz = bot.demo.config.timezone
    target = datetime.strptime(f"2026-{when}", "%Y-%m-%d %H:%M").replace(tzinfo=tz)
    return await bot.wait(target - bot.now)


async def extended_story(bot: Bot) -> None:
    """The issue's story up to the approval: a week for the glass, asked on 11-26."""
    await bot.say("刘奶奶", REPORT)
    await until(bot, "11-23 09:10")
    await bot.say("张阿姨", "认领 1", private=True)
    await until(bot, "11-25 09:00")
    await bot.say("张阿姨", "进展 1 已量好尺寸，玻璃要订", private=True)
    await until(bot, "11-26 09:00")
    case = await bot.case(1)
    assert local(bot, case.resolve_by) == "11-26 12:00"
    out = await bot.say("张阿姨", "延期 1 7d 玻璃下周到货", private=True)
    assert "批准后为 12-03 12:00" in to(out, "zhang")[0]
    assert "12-03 12:00" in to(out, "wang")[0]
    out = await bot.say("王网格长", "批准 1", private=True)
    assert "新期限 12-03 12:00" in to(out, "zhang")[0]


async def test_an_approved_extension_protects_the_case_until_its_date(bot: Bot) -> None:
    await extended_story(bot)
    case = await bot.case(1)
    # 7 days on 11-26 is 12-03, not 7 x 24 h of daytime (that was 12-07)
    assert local(bot, case.resolve_by) == "12-03 12:00"
    assert case.extended_until == case.resolve_by
    # Two days later, and more: reminders, but no revert, no escalation.
    out = await until(bot, "12-03 11:59")
    case = await bot.case(1)
    assert (case.status, case.assignee_id, case.level) == (Status.CLAIMED, "zhang", 0)
    assert local(bot, case.resolve_by) == "12-03 12:00"
    kinds = [e.kind for e in await bot.events(1)]
    assert "idle_reverted" not in kinds and "escalated" not in kinds
    assert "idle_reminded" in kinds  # a reminder is fine …
    idle = [t for t in to(out, "zhang") if "没有新进展" in t]
    assert idle and all("退回待认领" not in t and "12-03 12:00" in t for t in idle)
    assert not to(out, "wang") and not to(out, "zhou") and not to(out, "zheng")
    # The steward who did the work resolves it; the resident confirms the fix.
    out = await bot.say("张阿姨", "办结 1 玻璃已装好", private=True)
    assert (await bot.case(1)).status is Status.RESOLVED
    out = await bot.say("刘奶奶", "已解决 1")
    assert (await bot.case(1)).status is Status.CLOSED
    assert "已关闭" in to(out, "M01")[0]


async def test_once_the_approved_date_passes_the_ladder_climbs(bot: Bot) -> None:
    await extended_story(bot)
    out = await until(bot, "12-03 12:00")
    case = await bot.case(1)
    assert (case.level, case.assignee_id, case.status) == (1, "wang", Status.ASSIGNED)
    # the grid leader's own windows start at the approved date
    assert local(bot, case.window_start) == "12-03 12:00"
    assert local(bot, case.claim_by) == "12-03 14:00"
    wang = to(out, "wang")[0]
    assert "已批准延期至 12-03 12:00" in wang and "已自动上报至网格" in wang
    assert "到批准延期的 12-03 12:00 仍未办结" in to(out, "zhang")[-1]
    escalated = [e for e in await bot.events(1) if e.kind == "escalated"]
    assert len(escalated) == 1 and escalated[0].data["why"] == "resolve_missed"
    # and on, as usual, when nobody claims
    await until(bot, "12-03 14:00")
    assert (await bot.case(1)).level == 2


async def test_the_approved_date_survives_every_later_step(bot: Bot) -> None:
    await extended_story(bot)
    approved = (await bot.case(1)).extended_until
    # escalated by hand: the grid leader's windows do not end before the approved date
    await bot.say("张阿姨", "上报 1 需要物业配合", private=True)
    case = await bot.case(1)
    assert case.level == 1 and case.resolve_by == approved and case.claim_by == approved
    # handed on
    await bot.say("王网格长", "转交 1 周社工 社区来协调", private=True)
    case = await bot.case(1)
    assert case.assignee_id == "zhou" and case.resolve_by == approved
    await bot.say("周社工", "认领 1", private=True)
    # resolved, then the resident says it is not fixed: back to its handler, same date
    await bot.say("周社工", "办结 1 已换玻璃", private=True)
    await bot.say("刘奶奶", "未解决 1 还是漏风")
    case = await bot.case(1)
    assert case.status is Status.ASSIGNED and case.resolve_by == approved
    # nothing climbs before it
    await until(bot, "12-03 11:59")
    assert (await bot.case(1)).assignee_id == "zhou"
    assert [e.kind for e in await bot.events(1)].count("escalated") == 1


async def test_hours_stay_window_time(bot: Bot) -> None:
    await bot.say("刘奶奶", REPORT)
    await bot.say("张阿姨", "认领 1", private=True)
    before = (await bot.case(1)).resolve_by
    await bot.say("张阿姨", "延期 1 48小时 等物业配件", private=True)
    await bot.say("王网格长", "批准 1", private=True)
    case = await bot.case(1)
    assert case.resolve_by == bot.demo.engine.calendar.add(before, timedelta(hours=48))
    events = [e for e in await bot.events(1) if e.kind in ("extension_requested", "extended")]
    assert [e.data["span"] for e in events] == ["48h", "48h"]


async def test_days_count_working_days_where_the_calendar_does(
        tmp_path: Path, config: Config) -> None:
    config = dataclasses.replace(
        config, calendar=dataclasses.replace(config.calendar, count="working"))
    start = parse_start("2026-11-23 09:00", config)  # a Monday
    async with Demo(config, tmp_path / "g.db", start, out=io.StringIO()) as demo:
        bot = Bot(demo=demo, path=tmp_path / "g.db")
        await bot.say("刘奶奶", REPORT)
        await bot.say("张阿姨", "认领 1", private=True)
        case = await bot.case(1)
        # 48 working hours (08:30-17:30) from Monday 09:00: the next Monday at 12:00
        assert case.resolve_by.astimezone(config.timezone).strftime("%a %m-%d %H:%M") == \
            "Mon 11-30 12:00"
        await bot.say("张阿姨", "延期 1 一周 等玻璃", private=True)
        await bot.say("王网格长", "批准 1", private=True)
        case = await bot.case(1)
        # seven working days on, the same time of day (7 x 24 h of working time would
        # be 168 h, more than a month of working days)
        assert case.resolve_by.astimezone(config.timezone).strftime("%a %m-%d %H:%M") == \
            "Wed 12-09 12:00"


def test_add_days_keeps_the_time_of_day_and_skips_days_off(config: Config) -> None:
    tz = config.timezone
    plain = WorkCalendar(config.calendar, tz)
    working = WorkCalendar(dataclasses.replace(config.calendar, count="working"), tz)
    thursday = datetime(2026, 9, 24, 16, 0, tzinfo=tz)
    assert plain.add_days(thursday, 7) == datetime(2026, 10, 1, 16, 0, tzinfo=tz)
    # 2026: Mid-Autumn on Fri 09-25, the National Day holiday 10-01 to 10-07, and
    # Saturday 10-10 a make-up working day
    expected = {1: "09-28", 3: "09-30", 4: "10-08", 6: "10-10", 7: "10-12"}
    for days, day in expected.items():
        found = working.add_days(thursday, days).astimezone(tz)
        assert found.strftime("%m-%d %H:%M") == f"{day} 16:00", days
    # a duration with days and hours: the days as days, the rest as window time
    later = plain.after(thursday, Duration(days=1, clock=timedelta(hours=2)))
    assert later == plain.add(thursday + timedelta(days=1), timedelta(hours=2))
    assert plain.after(thursday, Duration(days=2), urgent=True) == thursday + timedelta(days=2)


async def test_the_idle_message_counts_from_the_last_note(bot: Bot) -> None:
    await bot.say("刘奶奶", REPORT)
    await bot.say("张阿姨", "认领 1", private=True)
    await until(bot, "11-23 12:00")
    await bot.say("张阿姨", "进展 1 等物业回复", private=True)
    # reminded 24 h of counting time later (11-24 21:00), taken back 12 h after that
    out = await until(bot, "11-25 18:00")
    reverted = [e for e in await bot.events(1) if e.kind == "idle_reverted"]
    assert len(reverted) == 1 and reverted[0].data == {"idle": "2d6h"}
    told = [t for t in to(out, "zhang") if "退回待认领" in t and "没有新进展" in t]
    assert len(told) == 2 and all("自 11-23 12:00" in t and "认领后" not in t for t in told)
    assert "张阿姨 自 11-23 12:00 起 2天6小时 没有新进展" in told[1]


async def test_asking_for_time_is_progress_for_the_idle_clock(bot: Bot) -> None:
    await bot.say("刘奶奶", REPORT)
    await bot.say("张阿姨", "认领 1", private=True)
    await until(bot, "11-24 08:00")
    await bot.say("张阿姨", "延期 1 1d 等配件", private=True)
    assert (await bot.case(1)).active_at == bot.now
