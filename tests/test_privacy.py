"""The audit log of staff actions, and ``gridbot forget`` for a resident's personal data."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from gridbot.cli import main
from gridbot.domain import ChatKind, Outgoing
from gridbot.store.base import Household
from tests.conftest import Bot, incoming, to
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
    events_before = rows(bot.path, "SELECT id, case_number, at, kind, data, actor_id"
                                   " FROM case_events")

    # A dry run changes nothing and says what would change.
    assert await cli(config, "forget", "刘奶奶") == 0
    said = capsys.readouterr().out
    assert "试运行" in said and "gridbot forget liu_nainai --yes" in said
    assert rows(bot.path, "SELECT name FROM people WHERE id = 'liu_nainai'") == [("刘奶奶",)]

    assert await cli(config, "forget", "刘奶奶", "--yes") == 0
    captured = capsys.readouterr()
    assert "已注销：刘奶奶" in captured.out and "[[people]]" in captured.err
    new_id = re.search(r"匿名编号 (~forgotten:[0-9a-f]+)", captured.out)[1]  # type: ignore[index]
    assert "数据库文件已重写、预写日志（WAL）已清空" in captured.out
    # Her row stays (her cases point at it) under the anonymous id, with nothing of hers.
    assert rows(bot.path, "SELECT 1 FROM people WHERE id = 'liu_nainai'") == []
    assert rows(bot.path, "SELECT name, phone, address, active FROM people WHERE id = ?",
                (new_id,)) == [("（已注销居民）", "", "", 0)]
    assert rows(bot.path, "SELECT * FROM accounts WHERE person_id IN ('liu_nainai', ?)"
                          " OR user_id = 'liu_nainai'", (new_id,)) == []
    assert rows(bot.path, "SELECT text, rating_text, reporter_id FROM cases WHERE number = 1"
                ) == [("（应居民要求已删除）", "（应居民要求已删除）", new_id)]
    # Nobody else's case is touched; the statistics' facts are all still there.
    assert rows(bot.path, "SELECT text FROM cases WHERE number = 2") == [("5幢电梯坏了",)]
    assert rows(bot.path, "SELECT number, category, priority, status, level, rating,"
                          " created_at, claimed_at, resolved_at, closed_at FROM cases") == before
    assert rows(bot.path, "SELECT id, case_number, at, kind, data, actor_id"
                          " FROM case_events") == [
        (*e[:5], new_id if e[5] == "liu_nainai" else e[5]) for e in events_before]
    leaks = rows(bot.path, "SELECT 'event' FROM case_events WHERE text LIKE '%13800000000%'"
                           " UNION ALL SELECT 'outbox' FROM outbox WHERE text LIKE '%13800000000%'"
                           " OR text LIKE '%3幢201%' UNION ALL SELECT 'case' FROM cases"
                           " WHERE text LIKE '%13800000000%'")
    assert leaks == []
    # The case events are append-only again, and the forgetting is in the audit log.
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        rows(bot.path, "UPDATE case_events SET text = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        rows(bot.path, "UPDATE audit_log SET target = 'x'")
    assert await cli(config, "audit", "--person", new_id) == 0
    out = capsys.readouterr().out
    assert f"forget {new_id}" in out and "cli" in out
    assert await cli(config, "audit", "--since", "2026-11-01") == 0
    out = capsys.readouterr().out
    assert "张阿姨 [steward]  claim #1" in out and "共 " in out
    # The bot carries on with the anonymised resident.
    out = await bot.say("张阿姨", "进度 1", private=True)
    assert out and "13800000000" not in out[0].text and "（已注销居民）" in out[0].text
    # Forgetting the anonymous id again keeps it, changes nothing and wipes the files again.
    assert await cli(config, "forget", new_id, "--yes") == 0
    again = capsys.readouterr().out
    assert f"匿名编号 {new_id}" in again and "0 件工单" in again


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


# -- forget reaches every row, the queue and the files (issue 14, item 3) ---------------------

#: everything of 刘奶奶's in the story below: her name as given, her phones (configured and
#: typed), her address, her reports, a steward's private note to her, her console id
HERS = ("刘奶奶", "13800000000", "138-0000-0000", "137-0000-0301", "13700000301",
        "幸福里3幢201", "3幢楼道灯坏了", "我家水管一直在漏水", "药已买好", "liu_nainai")
#: what must be gone from the database's bytes, not only from its rows
IN_BYTES = ("13800000000", "137-0000-0301", "13700000301", "幸福里3幢201", "3幢楼道灯坏了",
            "我家水管一直在漏水", "药已买好")


def every_row(path: Path) -> dict[str, list[tuple]]:
    """Every row of every table of the schema, whatever tables there are."""
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        return {t: db.execute(f"SELECT * FROM {t}").fetchall() for t in tables}
    finally:
        db.close()


def leaks(path: Path, marks: tuple[str, ...]) -> list[tuple[str, str, str]]:
    return [(table, mark, str(value)) for table, found in every_row(path).items()
            for row in found for value in row for mark in marks if mark in str(value)]


async def test_forget_leaves_nothing_of_her_in_any_table_the_queue_or_the_files(
        bot: Bot, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gridbot.linking import issue_link_code
    from gridbot.store import forget

    config = config_for(bot.path, tmp_path)
    # Monday 09:00: she reports in her group with her address and phone; a neighbour
    # names her in his report; she links her account again with a code (used), and
    # another code for her lies unused; she answers a notice with 收到.
    await bot.say("刘奶奶", "报事 3幢楼道灯坏了，我住幸福里3幢201，电话13800000000")
    await bot.say("陈先生", "报事 5幢电梯坏了，刘奶奶家也受影响")
    _, used, _ = await issue_link_code(bot.demo.engine, "刘奶奶", bot.now)
    await issue_link_code(bot.demo.engine, "刘奶奶", bot.now)
    assert "认证成功" in to(await bot.say("刘奶奶", f"认证 {used}", private=True),
                            "liu_nainai")[0]
    await bot.say("周社工", "通知 M01 周六上午9点活动室免费量血压")
    await bot.say("刘奶奶", "收到")
    await bot.say("张阿姨", "认领 1", private=True)
    # 22:30, quiet hours: the steward's note to her waits for the morning, and so does
    # the alert about the report she sends privately at 22:35.
    await bot.wait(timedelta(hours=13, minutes=30))
    await bot.say("张阿姨", "进展 1 药已买好，明天上午送到幸福里3幢201，到楼下先打您电话"
                          "137-0000-0301", private=True)
    await bot.wait(timedelta(minutes=5))
    await bot.say("刘奶奶", "报事 我家水管一直在漏水，楼下也渗了", private=True)
    async with bot.demo.store.transaction() as tx:
        # A message to her being retried after a 500, and one a sender had just taken.
        await tx.enqueue(Outgoing(platform="console", chat_id="dm:liu_nainai",
                                  text="刘奶奶您好，电话13800000000 的事已登记",
                                  person_id="liu_nainai", dedup_key="retrying"), bot.now)
        await tx.enqueue(Outgoing(platform="console", chat_id="dm:liu_nainai",
                                  text="刘奶奶您好，幸福里3幢201 明天上门",
                                  person_id="liu_nainai", dedup_key="in-hand"), bot.now)
        taken = await tx.claim_outbox(bot.now, limit=10, lease=timedelta(minutes=2),
                                      platforms=["console"])
        assert {i.message.dedup_key for i in taken} == {"retrying", "in-hand"}
        await tx.mark_retry(taken[0].id, bot.now + timedelta(minutes=5), "HTTP 500")
    waiting = rows(bot.path, "SELECT status, chat_id FROM outbox WHERE status IN"
                             " ('queued', 'sending') ORDER BY id")
    assert ("queued", "dm:liu_nainai") in waiting and ("sending", "dm:liu_nainai") in waiting
    assert ("queued", "dm:zhang") in waiting  # the alert about her private report
    assert await cli(config, "backup") == 0
    (copy,) = (tmp_path / "backups").glob("gridbot-*.db")
    capsys.readouterr()
    facts = ("SELECT number, category, priority, status, level, rating, created_at, claimed_at,"
             " resolved_at, closed_at FROM cases")
    before = rows(bot.path, facts)

    # Forget, with the demo's wiring (the running bot) still holding the database open.
    assert await cli(config, "forget", "刘奶奶", "--yes") == 0
    said = capsys.readouterr().out
    assert "已注销：刘奶奶" in said and "不会再发出" in said
    assert str(copy) in said and "仍然保存着这位居民" in said

    # Every table is decided on, and no column of any row holds anything of hers.
    assert set(every_row(bot.path)) <= set(forget.TABLES)
    assert leaks(bot.path, HERS) == []
    # Not in the file's bytes either, nor in its write-ahead log.
    for file in (bot.path, bot.path.with_name(bot.path.name + "-wal")):
        data = file.read_bytes() if file.exists() else b""
        assert [m for m in IN_BYTES if m.encode() in data] == [], file
    # Her 收到 still counts; the statistics' facts stay.
    assert rows(bot.path, "SELECT COUNT(*) FROM notice_acks") == [(1,)]
    assert rows(bot.path, facts) == before
    assert rows(bot.path, "SELECT text FROM cases WHERE number = 2") == [
        ("5幢电梯坏了，（应居民要求已删除）家也受影响",)]
    # The backup taken before still holds her data, as the command said.
    assert b"13800000000" in copy.read_bytes()

    # Morning: what was waiting goes out, and nothing of hers, nothing to her.
    morning = await bot.wait(timedelta(hours=9))
    assert morning, "the night's messages to others went out"
    assert [m for m in morning if m.chat_id == "dm:liu_nainai"] == []
    assert [(m.chat_id, mark) for m in morning for mark in HERS if mark in m.text] == []
    assert "这条消息涉及一位已注销的居民" in "".join(to(morning, "zhang"))
    # Her private report is still handled; news for its reporter reaches nobody.
    await bot.say("张阿姨", "认领 3", private=True)
    done = await bot.say("张阿姨", "办结 3 水管已修好", private=True)
    assert [m.chat_id for m in done] == ["dm:zhang"]
    assert rows(bot.path, "SELECT COUNT(*) FROM outbox WHERE chat_id = ''") == [(0,)]
    assert rows(bot.path, "SELECT kind FROM case_events WHERE case_number = 3"
                          " ORDER BY id DESC LIMIT 1") == [("unreachable",)]
