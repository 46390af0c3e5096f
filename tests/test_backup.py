"""``gridbot backup`` and ``gridbot restore``: a consistent copy while the bot writes, and a
restore that checks before it replaces and never loses the database it replaces."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gridbot import backup as backups
from gridbot.cli import main
from tests.conftest import Bot
from tests.stats_story import config_for

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def count(path: Path, table: str = "cases") -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        db.close()


async def test_backup_while_the_bot_writes(bot: Bot, tmp_path: Path) -> None:
    for i in range(3):
        await bot.say("刘奶奶", f"报事 {i + 1}幢楼道灯坏了")
    # Another connection writes all the time and holds a write transaction open while
    # the copy is taken: WAL lets the copy read one snapshot without waiting.
    stop = threading.Event()
    written = []

    def writer() -> None:
        db = sqlite3.connect(bot.path, timeout=5, isolation_level=None)
        n = 0
        while not stop.is_set():
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO case_events (case_number, at, actor_id, kind, text, data)"
                       " VALUES (1, '2026-11-23T01:00:00.000000Z', 'x', 'probe', ?, '{}')",
                       (str(n),))
            db.execute("COMMIT")
            n += 1
            written.append(n)
        db.execute("BEGIN IMMEDIATE")  # left open and uncommitted: must not be in a copy
        db.execute("DELETE FROM cases")
        stop.wait()
        db.execute("ROLLBACK")
        db.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 20:
            await asyncio.sleep(0.01)
        copies = []
        for i in range(3):
            dest = tmp_path / f"copy{i}.db"
            info = backups.backup(bot.path, dest)
            copies.append(info)
            assert info.counts["cases"] == 3
        # Each copy is one snapshot: whole, and later copies hold at least as much.
        probes = [c.counts["case_events"] for c in copies]
        assert probes == sorted(probes)
    finally:
        stop.set()
        thread.join()
    # While the bot is running (its connection open), a restore is refused.
    with pytest.raises(backups.BackupError) as refused:
        backups.restore(tmp_path / "copy0.db", bot.path, NOW)
    assert refused.value.code == "in_use"
    # The copy is one file, no WAL beside it, and the bot can open it.
    assert not (tmp_path / "copy0.db-wal").exists()
    assert count(tmp_path / "copy0.db") == 3


async def test_backup_and_restore_from_the_command_line(
    bot: Bot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await bot.say("刘奶奶", "报事 3幢楼道灯坏了")
    config = config_for(bot.path, tmp_path)
    copy = tmp_path / "backup.db"
    assert await cli(config, "backup", str(copy)) == 0
    said = capsys.readouterr().out
    assert "已备份到" in said and "工单 1 件" in said
    # Never overwrites.
    assert await cli(config, "backup", str(copy)) == 1
    assert "已经存在" in capsys.readouterr().err
    # The bot goes on: a second case after the backup.
    await bot.say("刘奶奶", "报事 5幢电梯坏了")
    assert await cli(config, "restore", str(copy)) == 1
    assert "正在使用中" in capsys.readouterr().err
    assert await cli(config, "restore", "--check", str(copy)) == 0
    assert "完整性检查通过" in capsys.readouterr().out
    await bot.demo.store.close()
    assert await cli(config, "restore", str(copy)) == 0
    said = capsys.readouterr().out
    assert "已从备份恢复" in said and "before-restore-" in said
    assert count(bot.path) == 1
    kept = next(tmp_path.glob("gridbot.db.before-restore-*"))
    kept = kept if not kept.name.endswith("-wal") else Path(str(kept)[:-4])
    assert count(kept) == 2  # the replaced database, with what its WAL held
    await bot.demo.store.open()  # reopening applies nothing new and works


async def cli(config: Path, *args: str) -> int:
    """``gridbot --config CONFIG ARGS`` on a thread: it runs its own event loop."""
    return await asyncio.to_thread(main, ["--config", str(config), *args])


def _gridbot_db(path: Path, version: int) -> None:
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT);"
        "CREATE TABLE cases (number INTEGER); CREATE TABLE case_events (id INTEGER);"
        "CREATE TABLE people (id TEXT);")
    db.execute("INSERT INTO schema_migrations VALUES (?, 'x')", (version,))
    db.commit()
    db.close()


@pytest.mark.parametrize("kind, code", [
    ("missing", "no_file"), ("text", "not_a_database"), ("other", "not_gridbot"),
    ("newer", "too_new"), ("damaged", "damaged"),
])
def test_restore_checks_the_backup_first(tmp_path: Path, kind: str, code: str) -> None:
    target = tmp_path / "gridbot.db"
    _gridbot_db(target, 1)
    before = target.read_bytes()
    source = tmp_path / "backup.db"
    if kind == "text":
        source.write_text("not a database at all", encoding="utf-8")
    elif kind == "other":
        db = sqlite3.connect(source)
        db.execute("CREATE TABLE t (x)")
        db.commit()
        db.close()
    elif kind == "newer":
        _gridbot_db(source, backups.latest_version() + 1)
    elif kind == "damaged":
        _gridbot_db(source, 1)
        db = sqlite3.connect(source)
        db.executescript("CREATE TABLE filler (x); CREATE INDEX filler_x ON filler(x);")
        db.executemany("INSERT INTO filler VALUES (?)", [(f"row {i:06d}",) for i in range(3000)])
        db.commit()
        db.close()
        raw = bytearray(source.read_bytes())
        page = int.from_bytes(raw[16:18], "big")
        for offset in range(page * 3 + 100, len(raw) - page, page * 2):
            raw[offset:offset + 64] = b"\xff" * 64  # scribble over some pages
        source.write_bytes(bytes(raw))
    with pytest.raises(backups.BackupError) as refused:
        backups.restore(source, target, NOW)
    assert refused.value.code == code
    assert target.read_bytes() == before  # nothing changed
    assert list(tmp_path.glob("*before-restore*")) == []


def test_restore_into_a_fresh_place_and_keep_what_was_there(tmp_path: Path) -> None:
    source = tmp_path / "backup.db"
    _gridbot_db(source, 1)
    fresh = tmp_path / "new.db"
    done = backups.restore(source, fresh, NOW)
    assert done.kept is None and fresh.exists()
    # A second restore keeps the first as before-restore-…, a third in the same second
    # would have to overwrite it and is refused.
    done = backups.restore(source, fresh, NOW)
    assert done.kept == str(tmp_path / "new.db.before-restore-20261123-090000")
    with pytest.raises(backups.BackupError) as refused:
        backups.restore(source, fresh, NOW)
    assert refused.value.code == "exists"
    assert fresh.exists()


def test_postgres_is_not_backed_up_here() -> None:
    with pytest.raises(backups.BackupError) as refused:
        backups.sqlite_path("postgresql://gridbot:secret@db.example/gridbot")
    assert refused.value.code == "not_sqlite" and "secret" not in refused.value.path
