"""Files that hold residents' data are private, and link codes need a key kept outside the
database (issue 14, item 9).

The database, its WAL and shared-memory files, backups and the copy a restore moves aside
are created readable by their owner only (0600), the backup folder 0700, whatever the
umask; files an older gridbot left readable by others are tightened when the database
is opened, and the log says so once. Link codes are stored as HMAC-SHA256 under a
per-install key: a 0600 key file beside the database, or ``[gridbot] secret``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from gridbot import backup as backups
from gridbot.cli import main
from gridbot.config import load_config, parse_config
from gridbot.domain import ChatKind
from gridbot.engine import Engine
from gridbot.errors import ConfigError
from gridbot.linking import hash_code, issue_link_code, legacy_hash
from gridbot.store import SQLiteStore
from tests.conftest import EXAMPLE_CONFIG, Bot, incoming
from tests.stats_story import config_for


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that would leave new files readable by everyone (0644), as on most
    machines: what gridbot creates must be private all the same."""
    old = os.umask(0o022)
    yield
    os.umask(old)


async def cli(config: Path, *args: str) -> int:
    return await asyncio.to_thread(main, ["--config", str(config), *args])


async def test_the_database_and_its_wal_and_shm_are_private(tmp_path: Path,
                                                           open_umask: None) -> None:
    path = tmp_path / "gridbot.db"
    store = SQLiteStore(str(path))
    await store.open()
    try:
        async with store.transaction() as tx:
            await tx.sync_org(load_config(EXAMPLE_CONFIG))  # residents' phones
        for file in (path, path.with_name("gridbot.db-wal"), path.with_name("gridbot.db-shm")):
            assert file.exists() and mode(file) == 0o600, file
    finally:
        await store.close()


async def test_files_an_older_gridbot_left_open_are_tightened_and_said_once(
        tmp_path: Path, open_umask: None, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "gridbot.db"
    old = sqlite3.connect(path)  # as gridbot did before: 0644, and a WAL beside it
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE t (x)")
    old.commit()
    wal = path.with_name("gridbot.db-wal")
    assert mode(path) == 0o644 and mode(wal) == 0o644
    caplog.set_level(logging.WARNING, logger="gridbot")
    for _ in range(2):
        store = SQLiteStore(str(path))
        await store.open()
        await store.close()
    old.close()
    assert mode(path) == 0o600
    said = [r.getMessage() for r in caplog.records if "private" in r.getMessage()]
    assert len(said) == 1 and "0644" in said[0] and "gridbot.db" in said[0], said


async def test_backups_are_private_in_a_private_folder_and_listed(
        bot: Bot, tmp_path: Path, open_umask: None, capsys: pytest.CaptureFixture[str]) -> None:
    await bot.say("刘奶奶", "报事 3幢楼道灯坏了")
    config = config_for(bot.path, tmp_path)
    assert await cli(config, "backup") == 0
    folder = tmp_path / "backups"
    (made,) = folder.glob("gridbot-*.db")
    assert mode(folder) == 0o700 and mode(made) == 0o600
    elsewhere = tmp_path / "usb" / "copy.db"
    elsewhere.parent.mkdir()
    assert await cli(config, "backup", str(elsewhere)) == 0
    assert mode(elsewhere) == 0o600
    assert mode(folder / backups.RECORD) == 0o600
    capsys.readouterr()
    assert await cli(config, "backup", "--list") == 0
    listed = capsys.readouterr().out
    assert str(made) in listed and str(elsewhere) in listed and "2 个" in listed
    # A folder an older setup left open is closed again.
    folder.chmod(0o755)
    assert await cli(config, "backup") == 0
    assert mode(folder) == 0o700


def test_restore_writes_private_files(tmp_path: Path, open_umask: None) -> None:
    async def make(path: Path) -> None:
        store = SQLiteStore(str(path))
        await store.open()
        await store.close()

    database, copy = tmp_path / "gridbot.db", tmp_path / "copy.db"
    asyncio.run(make(database))
    backups.backup(database, copy)
    database.chmod(0o644)  # the database an older gridbot made
    done = backups.restore(copy, database, backups.datetime(2026, 11, 23, 9, 0))
    assert mode(database) == 0o600 and done.kept and mode(Path(done.kept)) == 0o600


async def test_link_codes_are_keyed_with_a_secret_kept_outside_the_database(
        bot: Bot, open_umask: None) -> None:
    _, code, _ = await issue_link_code(bot.demo.engine, "王网格长", bot.now)
    key = bot.path.with_name("gridbot.db.key")
    assert key.exists() and mode(key) == 0o600
    (stored,) = [r[0] for r in sqlite3.connect(bot.path).execute(
        "SELECT code_hash FROM link_codes")]
    assert stored == hash_code(code, key.read_text().strip().encode())
    # A copy of the database alone gives nothing away: the plain hash, or a hash under
    # any other key, of the code does not match what is stored.
    assert stored.startswith("hmac:") and legacy_hash(code) not in stored
    assert hash_code(code, b"0" * 64) != stored
    dm = {"sender": "tg-42", "chat": "dm:tg-42", "kind": ChatKind.PRIVATE, "name": "Wang"}
    _, out = await bot.handle(incoming(f"认证 {code}", message_id="k1", **dm))
    assert "认证成功" in out[0].text
    # Another process (gridbot link-code, gridbot run) reads the same key.
    again = Engine(bot.demo.config, bot.demo.store, bot.demo.clock)
    assert again.link_key == bot.demo.engine.link_key


async def test_codes_issued_before_the_key_work_until_they_expire(bot: Bot) -> None:
    """A code an older gridbot stored as a plain SHA-256 still links, once, until it
    expires: people holding one need not ask for a new one."""
    async with bot.demo.store.transaction() as tx:
        await tx.add_link_code(legacy_hash("ABCD-EFGH"), "wang", bot.now,
                               bot.now + timedelta(hours=72))
        await tx.add_link_code(legacy_hash("JKLM-NPQR"), "wang", bot.now - timedelta(hours=80),
                               bot.now - timedelta(hours=8))
    dm = {"sender": "tg-42", "chat": "dm:tg-42", "kind": ChatKind.PRIVATE, "name": "Wang"}
    _, out = await bot.handle(incoming("认证 JKLM-NPQR", message_id="o0", **dm))
    assert "已过期" in out[0].text
    _, out = await bot.handle(incoming("认证 abcd efgh", message_id="o1", **dm))
    assert "认证成功" in out[0].text
    other = {"sender": "tg-43", "chat": "dm:tg-43", "kind": ChatKind.PRIVATE, "name": "Eve"}
    _, out = await bot.handle(incoming("认证 ABCD-EFGH", message_id="o2", **other))
    assert "已经用过" in out[0].text


async def test_a_configured_secret_replaces_the_key_file(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDBOT_TEST_SECRET", "a-long-shared-secret-for-all-workers")
    config = config_for(tmp_path / "gridbot.db", tmp_path)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[gridbot]\n", '[gridbot]\nsecret = "env:GRIDBOT_TEST_SECRET"\n',
                                   1), encoding="utf-8")
    assert await cli(config, "link-code", "王网格长") == 0
    code = capsys.readouterr().out.split("认证码：")[1].split()[0]
    assert not (tmp_path / "gridbot.db.key").exists()
    (stored,) = [r[0] for r in sqlite3.connect(tmp_path / "gridbot.db").execute(
        "SELECT code_hash FROM link_codes")]
    assert stored == hash_code(code, b"a-long-shared-secret-for-all-workers")
    assert legacy_hash(code) not in stored


def test_a_short_secret_is_refused_without_being_shown() -> None:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        parse_config(text.replace("[gridbot]\n", '[gridbot]\nsecret = "short-secret"\n', 1))
    assert raised.value.key == "gridbot.secret" and "short-secret" not in str(raised.value)
