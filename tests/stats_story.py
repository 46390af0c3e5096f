"""A working day in the sample org, played through the real bot, for the statistics tests.

Monday 2026-11-23 (Asia/Shanghai), default policy: normal cases 2 h to claim, 48 h to
resolve; urgent 15 min / 4 h at every level; reminders at 75 %. Local times:

    09:00 #1 刘奶奶 M01 "3幢楼道灯坏了" (facility) → 张阿姨
    09:30 张阿姨 claims #1                                   claim 30 min, on time
    11:00 张阿姨 resolves #1 (2 h); 陈先生 M01 reports #2 "楼下垃圾没人清理" (sanitation)
    11:05 刘奶奶 rates #1 ★5
    12:00 黄阿姨 M02 reports #3 "5幢电梯坏了" (facility) → 李师傅
    12:10 李师傅 claims #3                                   claim 10 min, on time
    13:00 #2 missed its claim window (held by 张阿姨) → 王网格长; 李师傅 resolves #3
    13:30 王网格长 claims #2                                 claim 2 h 30 min, late
    13:40 黄阿姨 reopens #3 → back to 李师傅; 13:50 he claims it; 14:00 resolves (2 h)
    14:10 黄阿姨 confirms #3 (no rating)
    14:30 马大爷 M03 reports #4 "请问怎么办理居住证" (question); 14:40 he withdraws it
    15:00 王网格长 resolves #2 (4 h); 15:10 陈先生 rates #2 ★2
    15:30 Tom M04 reports #5 "smoke in the stairwell" (urgent, safety) → 钱大姐; nobody
          claims: 15:45 → 刘网格长, 16:00 → 吴主任, 16:15 → 郑科长, 16:30 overdue at the top
    16:00 刘奶奶 reports #6 "小区门口消防通道被电瓶车堵了" (safety) → 张阿姨
    16:10 张阿姨 claims #6 (10 min); 16:20 escalates it by hand → 王网格长; 16:30 he claims
    16:40 黄阿姨 M02 reports #7 "楼上漏水" (neighbours) → 李师傅, inside its window at 17:00
    17:00 the figures are taken

Worked by hand (the whole subdistrict, November 2026, as of 17:00):

* reported 7, withdrawn 1 (#4), valid 6, resolved 3 (#1 #2 #3), open 3 (#5 #6 #7);
* resolution 3/6 = 50.0 %;
* response: due = #1 #2 #3 #5 #6 (#7 is still inside its window), on time = #1 #3 #6:
  3/5 = 60.0 %;
* satisfaction: ratings ★5 and ★2, 1/2 = 50.0 %, mean 3.5;
* time to claim 10 min, 10 min, 30 min, 2 h 30 min: median 20 min, p90 2 h 30 min;
* time to resolve 2 h, 2 h, 4 h: median 2 h, p90 4 h;
* missed 2 (#2, #5), reopened 1 (#3), escalated 3 (#2 #5 #6), by hand 1 (#6),
  overdue now 1 (#5, claim deadline 16:30 at the top of the ladder).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.conftest import Bot

TZ = ZoneInfo("Asia/Shanghai")
AS_OF = datetime(2026, 11, 23, 17, 0, tzinfo=TZ)


def at(hhmm: str) -> datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return datetime(2026, 11, 23, hour, minute, tzinfo=TZ)


async def play(bot: Bot) -> None:
    async def until(hhmm: str) -> None:
        target = at(hhmm)
        if target > bot.now:
            await bot.wait(target - bot.now)

    steps: list[tuple[str, str, str, dict[str, object]]] = [
        ("09:00", "刘奶奶", "报事 3幢楼道灯坏了", {}),
        ("09:30", "张阿姨", "认领 1", {"private": True}),
        ("11:00", "张阿姨", "办结 1 灯换好了", {"private": True}),
        ("11:00", "陈先生", "报事 楼下垃圾没人清理", {}),
        ("11:05", "刘奶奶", "评价 1 5 修得很快", {"private": True}),
        ("12:00", "黄阿姨", "报事 5幢电梯坏了", {}),
        ("12:10", "李师傅", "认领 3", {"private": True}),
        ("13:00", "李师傅", "办结 3 已报修", {"private": True}),
        ("13:30", "王网格长", "认领 2", {"private": True}),
        ("13:40", "黄阿姨", "未解决 3 还是坏的", {"private": True}),
        ("13:50", "李师傅", "认领 3", {"private": True}),
        ("14:00", "李师傅", "办结 3 换了新按钮", {"private": True}),
        ("14:10", "黄阿姨", "已解决 3", {"private": True}),
        ("14:30", "马大爷", "报事 请问怎么办理居住证", {}),
        ("14:40", "马大爷", "撤销 4 问到了", {"private": True}),
        ("15:00", "王网格长", "办结 2 已清理", {"private": True}),
        ("15:10", "陈先生", "评价 2 2 太慢了", {"private": True}),
        ("15:30", "Tom", "/report smoke in the stairwell", {}),
        ("16:00", "刘奶奶", "报事 小区门口消防通道被电瓶车堵了", {}),
        ("16:10", "张阿姨", "认领 6", {"private": True}),
        ("16:20", "张阿姨", "上报 6 需要物业和城管配合", {"private": True}),
        ("16:30", "王网格长", "认领 6", {"private": True}),
        ("16:40", "黄阿姨", "报事 楼上漏水", {}),
    ]
    for hhmm, who, text, options in steps:
        await until(hhmm)
        await bot.say(who, text, **options)  # type: ignore[arg-type]
    await until("17:00")
    assert bot.now == AS_OF
    assert bot.now - at("09:00") == timedelta(hours=8)


def config_for(db: Path, folder: Path) -> Path:
    """A copy of config.example.toml whose database is ``db``, for the command line."""
    from tests.conftest import EXAMPLE_CONFIG

    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    assert 'url = "sqlite:///gridbot.db"' in text
    path = folder / "gridbot.toml"
    path.write_text(text.replace('url = "sqlite:///gridbot.db"', f'url = "sqlite:///{db}"'),
                    encoding="utf-8")
    return path
