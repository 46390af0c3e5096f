"""The audit log of staff actions, and ``gridbot forget`` for a resident's personal data."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from gridbot.cli import main
from gridbot.domain import ChatKind
from gridbot.store.base import Household
from tests.conftest import Bot, incoming
from tests.stats_story import config_for


async def cli(config: Path, *args: str) -> int:
    return await asyncio.to_thread(main, ["--config", str(config), *args])


def rows(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


async def test_every_staff_action_is_audited_once(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 3幢楼道灯坏了")
    await bot.say("陈先生", "认领 1")                      # refused: not audited
    await bot.say("张阿姨", "认领 1", private=True)
    await bot.say("张阿姨", "进展 1 已联系物业，电话13900000000", private=True)
    await bot.say("张阿姨", "转交 1 李师傅 我请假", private=True)
    await bot.say("李师傅", "上报 1 需要社区协调", private=True)
    await bot.say("张阿姨", "下班 3d", private=True)
    await bot.say("周社工", "绑定 M01")
    await bot.say("张阿姨", "我的", private=True)            # reading: not audited
    async with bot.demo.store.transaction() as tx:
        entries = await tx.audit_entries()
    assert [(e.actor_id, e.action, e.target, e.summary) for e in entries] == [
        ("zhang", "claim", "#1", ""),
        ("zhang", "note", "#1", ""),          # the note's words stay in the case events
        ("zhang", "transfer", "#1", "李师傅"),
        ("li", "escalate", "#1", ""),
        ("zhang", "duty", "zhang", "off 3d"),
        ("zhou", "bind", "console:group:M01", "M01"),
    ]
    assert {e.role for e in entries} == {"steward", "community_staff"}
    assert all(e.via == "console" and e.at == bot.now for e in entries)
    # Append-only, like the case events.
    for sql in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            rows(bot.path, sql)
    async with bot.demo.store.transaction() as tx:
        mine = await tx.audit_entries(person_id="li")
        assert [e.action for e in mine] == ["escalate"]
        assert await tx.audit_entries(since=bot.now.replace(year=2027)) == []


async def test_a_redelivered_action_is_audited_once(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 3幢楼道灯坏了")
    claim = incoming("认领 1", sender="zhang", chat="dm:zhang", name="张阿姨",
                     message_id="claim-1", kind=ChatKind.PRIVATE)
    await bot.handle(claim)
    await bot.handle(claim)
    async with bot.demo.store.transaction() as tx:
        assert [e.action for e in await tx.audit_entries()] == ["claim"]


async def test_forget_a_resident(bot: Bot, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    await bot.say("刘奶奶", "报事 3幢楼道灯坏了，我住3幢201，电话13800000000")
    await bot.say("张阿姨", "认领 1", private=True)
    await bot.say("张阿姨", "办结 1 灯换好了", private=True)
    await bot.say("刘奶奶", "评价 1 5 张阿姨很负责，我家电话13800000000")
    await bot.say("陈先生", "报事 5幢电梯坏了")
    config = config_for(bot.path, tmp_path)
    before = rows(bot.path, "SELECT number, category, priority, status, level, rating,"
                            " created_at, claimed_at, resolved_at, closed_at FROM cases")
    events_before = rows(bot.path, "SELECT id, case_number, at, actor_id, kind, data"
                                   " FROM case_events")

    # A dry run changes nothing and says what would change.
    assert await cli(config, "forget", "刘奶奶") == 0
    said = capsys.readouterr().out
    assert "试运行" in said and "gridbot forget liu_nainai --yes" in said
    assert rows(bot.path, "SELECT name FROM people WHERE id = 'liu_nainai'") == [("刘奶奶",)]

    assert await cli(config, "forget", "刘奶奶", "--yes") == 0
    captured = capsys.readouterr()
    assert "已注销：刘奶奶" in captured.out and "[[people]]" in captured.err
    assert rows(bot.path, "SELECT name, phone, address FROM people WHERE id = 'liu_nainai'"
                ) == [("（已注销居民）", "", "")]
    assert rows(bot.path, "SELECT DISTINCT display_name FROM accounts"
                          " WHERE person_id = 'liu_nainai'") in ([], [("",)])
    assert rows(bot.path, "SELECT text, rating_text FROM cases WHERE number = 1") == [
        ("（应居民要求已删除）", "（应居民要求已删除）")]
    # Nobody else's case is touched; the statistics' facts are all still there.
    assert rows(bot.path, "SELECT text FROM cases WHERE number = 2") == [("5幢电梯坏了",)]
    assert rows(bot.path, "SELECT number, category, priority, status, level, rating,"
                          " created_at, claimed_at, resolved_at, closed_at FROM cases") == before
    assert rows(bot.path, "SELECT id, case_number, at, actor_id, kind, data"
                          " FROM case_events") == events_before
    leaks = rows(bot.path, "SELECT 'event' FROM case_events WHERE text LIKE '%13800000000%'"
                           " UNION ALL SELECT 'outbox' FROM outbox WHERE text LIKE '%13800000000%'"
                           " OR text LIKE '%3幢201%' UNION ALL SELECT 'case' FROM cases"
                           " WHERE text LIKE '%13800000000%'")
    assert leaks == []
    # The case events are append-only again, and the forgetting is in the audit log.
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        rows(bot.path, "UPDATE case_events SET text = 'x'")
    assert await cli(config, "audit", "--person", "liu_nainai") == 0
    out = capsys.readouterr().out
    assert "forget liu_nainai" in out and "cli" in out
    assert await cli(config, "audit", "--since", "2026-11-01") == 0
    out = capsys.readouterr().out
    assert "张阿姨 [steward]  claim #1" in out and "共 " in out
    # The bot carries on with the anonymised resident.
    out = await bot.say("张阿姨", "进度 1", private=True)
    assert out and "13800000000" not in out[0].text


async def test_forget_refuses_staff_and_unknown_names(bot: Bot, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    config = config_for(bot.path, tmp_path)
    assert await cli(config, "forget", "张阿姨", "--yes") == 1
    assert "工作人员" in capsys.readouterr().err
    assert await cli(config, "forget", "没有这个人") == 1
    assert rows(bot.path, "SELECT COUNT(*) FROM audit_log") == [(0,)]


async def test_forget_clears_the_resident_from_the_household_ledger(
        bot: Bot, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def line(mg: str, building: str, room: str, head: str, phone: str, note: str = "",
             members: int | None = 1, tags: tuple[str, ...] = ()) -> Household:
        return Household(microgrid=mg, building=building, entrance="", room=room, head=head,
                         phone=phone, members=members, tags=tags, note=note)

    async with bot.demo.store.transaction() as tx:
        await tx.put_households([
            # her own line: her name as head, her phone written the sheet's way
            line("M01", "3幢", "201", "刘奶奶", "13700000301", "女儿电话13912345678",
                 tags=("独居老人",)),
            # a neighbour names her as the emergency contact
            line("M01", "3幢", "202", "陈先生", "13600000000", "紧急联系人：刘奶奶 137-0000-0301",
                 members=3),
            # someone else of the same name, in another micro-grid
            line("M02", "1幢", "101", "刘奶奶", "13500000000", "腿脚不便"),
            line("M01", "5幢", "101", "黄师傅", "13400000000", "养狗"),
        ], bot.now)
    await bot.say("刘奶奶", "报事 3幢楼道灯坏了")
    config = config_for(bot.path, tmp_path)
    ledger = "SELECT microgrid, building, room, head, phone, members, tags, note FROM households"
    before = rows(bot.path, ledger + " ORDER BY 1, 2, 3")
    stats_before = rows(bot.path, "SELECT microgrid, COUNT(*) FROM households GROUP BY 1")

    assert await cli(config, "forget", "刘奶奶") == 0  # the dry run counts, changes nothing
    assert "住户台账中 2 户" in capsys.readouterr().out
    assert rows(bot.path, ledger + " ORDER BY 1, 2, 3") == before

    assert await cli(config, "forget", "liu_nainai", "--yes") == 0
    assert "住户台账中 2 户" in capsys.readouterr().out
    assert rows(bot.path, ledger + " ORDER BY 1, 2, 3") == [
        ("M01", "3幢", "201", "", "", 1, '["独居老人"]', ""),  # address, size, tags stay
        ("M01", "3幢", "202", "陈先生", "13600000000", 3, "[]", "紧急联系人："),
        ("M01", "5幢", "101", "黄师傅", "13400000000", 1, "[]", "养狗"),
        ("M02", "1幢", "101", "刘奶奶", "13500000000", 1, "[]", "腿脚不便"),
    ]
    # Every household still counts: the statistics per 100 households do not change.
    assert rows(bot.path, "SELECT microgrid, COUNT(*) FROM households GROUP BY 1") \
        == stats_before
    leaks = rows(bot.path, "SELECT * FROM households WHERE microgrid = 'M01' AND"
                           " (head || phone || note) GLOB '*[刘]*' OR note LIKE '%0301%'"
                           " OR note LIKE '%13912345678%'")
    assert leaks == []
    async with bot.demo.store.transaction() as tx:
        (entry,) = [e for e in await tx.audit_entries() if e.action == "forget"]
    assert "households=2" in entry.summary
