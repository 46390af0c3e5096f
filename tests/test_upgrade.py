"""Upgrading: a database the previous release made (its revisions, one short of this
gridbot's) is found out by ``gridbot migrate --check``, refused by ``gridbot run`` with one
line saying what to run, migrated by ``gridbot migrate`` (backed up first), and then runs
a story on the fake Bot API. Every other command keeps migrating when it opens the store."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from gridbot import backup as backups
from gridbot.cli import main
from gridbot.runtime import SCHEMA_OUTDATED
from gridbot.store import SQLiteStore, migrating
from tests.fake_telegram import FakeTelegram
from tests.telegram_harness import (
    GROUP_ID,
    LIU,
    bound,
    gridbot_process,
    start_world,
    write_config,
)

ROOT = Path(__file__).resolve().parent.parent
CHANGELOG = ROOT / "CHANGELOG.md"
#: the schema the previous release left: every revision but this gridbot's last
PREVIOUS = migrating.chain()[-2]

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after:telegram.warnings.PTBDeprecationWarning")


async def older_database(path: Path, revision: str = PREVIOUS) -> None:
    """A database as a gridbot whose newest revision was ``revision`` made it."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.run_sync(migrating.upgrade_to, revision)
    await engine.dispose()


async def gridbot(argv: list[str]) -> int:
    """``gridbot ARGV…`` in this process (its own event loop, in a thread)."""
    return await asyncio.to_thread(main, argv)


def revision_of(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return str(db.execute("SELECT version_num FROM alembic_version").fetchone()[0])


async def test_an_older_database_is_refused_by_run_then_migrated_and_runs(
        tmp_path: Path, telegram: FakeTelegram, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "gridbot.db"
    await older_database(db)
    assert revision_of(db) == PREVIOUS != migrating.head()
    config = write_config(tmp_path, telegram)

    assert await gridbot(["--config", str(config), "migrate", "--check"]) == 1
    out = capsys.readouterr().out
    assert PREVIOUS in out and migrating.head() in out and "gridbot migrate" in out

    run = gridbot_process(config, "run")
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == SCHEMA_OUTDATED, stderr
    err = stderr.strip().splitlines()
    assert len(err) == 1 and f"gridbot --config {config} migrate" in err[0]
    assert PREVIOUS in err[0] and migrating.head() in err[0]
    assert revision_of(db) == PREVIOUS  # run changed nothing

    assert await gridbot(["--config", str(config), "migrate"]) == 0
    out = capsys.readouterr().out
    assert migrating.head() in out
    made = backups.made_backups(db)
    assert len(made) == 1 and made[0].path in out
    assert revision_of(db) == migrating.head()
    assert backups.inspect(Path(made[0].path)).version == int(PREVIOUS)
    assert await gridbot(["--config", str(config), "migrate", "--check"]) == 0
    capsys.readouterr()

    w = await start_world(tmp_path, telegram, "polling")
    try:
        await bound(w)
        replies = await w.said(w.group, LIU, "报事 3幢楼道灯坏了")
        assert any(r.chat_id == GROUP_ID and "#1" in r.plain for r in replies)
    finally:
        await w.runtime.stop()


async def test_run_makes_a_new_database_and_other_commands_still_migrate(
        tmp_path: Path, telegram: FakeTelegram, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, telegram)
    db = tmp_path / "gridbot.db"
    assert await gridbot(["--config", str(config), "migrate", "--check"]) == 0  # no database yet
    assert not db.exists()
    # A new database is not an old one: `run` makes its tables (here through the
    # runtime `run` builds, with the harness's adapters pointed at the fake).
    w = await start_world(tmp_path, telegram, "polling")
    await w.runtime.stop()
    assert revision_of(db) == migrating.head()

    older = tmp_path / "older.db"
    await older_database(older)
    store = SQLiteStore(str(older))
    await store.open()  # an office command's store: migrates on open, as before
    assert (await store.schema_status()).pending == ()
    await store.close()
    capsys.readouterr()


async def test_a_newer_database_is_named_not_migrated(tmp_path: Path,
                                                      telegram: FakeTelegram,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "gridbot.db"
    await older_database(db, migrating.head())
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    config = write_config(tmp_path, telegram)
    assert await gridbot(["--config", str(config), "migrate", "--check"]) == 2
    assert "9999" in capsys.readouterr().err


def test_the_changelog_names_this_version() -> None:
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    text = CHANGELOG.read_text(encoding="utf-8")
    assert f"## {version}" in text


async def test_postgresql_says_where_its_schema_stands() -> None:
    from tests import postgres

    postgres.require()
    from gridbot.store.postgresql import PostgresStore

    schema = postgres.new_schema()
    try:
        store = PostgresStore(postgres.url_for(schema), pool_size=1)
        await store.open(migrate=False)
        fresh = await store.schema_status()
        assert fresh.empty and not fresh.behind and fresh.pending == migrating.chain()
        await store.upgrade()
        assert (await store.schema_status()).pending == ()
        await store.close()
        postgres.sql(schema, "UPDATE alembic_version SET version_num = $1", PREVIOUS)
        store = PostgresStore(postgres.url_for(schema), pool_size=1)
        await store.open(migrate=False)
        old = await store.schema_status()
        assert old.behind and old.current == PREVIOUS and old.pending == (migrating.head(),)
        await store.close()
    finally:
        postgres.drop_schema(schema)
