"""Alembic's revisions (gridbot/store/revisions) on both databases: a database made by
the store before Alembic (its SQL migrations applied up to version 12, recorded in
``schema_migrations`` only) migrates forward with its rows, to the schema a new
database gets; and the revisions ship inside the package."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gridbot.store import SQLiteStore, migrating
from gridbot.store.migrating import legacy_migrations, split_sql
from gridbot.store.rows import ts
from tests import postgres

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
#: the last schema version the store made before it used Alembic
LAST_LEGACY = 12


def test_the_chain_records_every_legacy_version_then_goes_on() -> None:
    legacy = [v for v, _ in legacy_migrations("sqlite")]
    assert legacy == [v for v, _ in legacy_migrations("postgresql")]
    assert migrating.versions()[:len(legacy)] == legacy
    assert max(legacy) == LAST_LEGACY
    assert migrating.head() == f"{migrating.versions()[-1]:04d}"


def test_revisions_are_package_files() -> None:
    folder = Path(migrating.script().dir)
    assert folder.is_relative_to(Path(migrating.__file__).parent)
    assert sorted(p.name[1:5] for p in folder.glob("r*.py")) == list(migrating.chain())


def _legacy_sqlite(path: Path, upto: int) -> None:
    """What the store before Alembic left: its SQL applied, each version recorded."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
               " applied_at TEXT NOT NULL)")
    for version, sql in legacy_migrations("sqlite"):
        if version > upto:
            break
        for statement in split_sql(sql):
            db.execute(statement)
        db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, ts(T0)))
    db.execute("INSERT INTO people (id, name, role, unit, phone, address, locale, auto,"
               " active) VALUES ('wang', '王阿姨', 'resident', 'M01', '', '', '', 0, 1)")
    db.commit()
    db.close()


def _schema(path: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(path)
    try:
        return sorted(db.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL"
                                 " AND name NOT IN ('alembic_version')").fetchall())
    finally:
        db.close()


@pytest.mark.parametrize("upto", [LAST_LEGACY, 5])
async def test_a_sqlite_database_from_before_alembic_migrates_forward(
        tmp_path: Path, upto: int) -> None:
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    _legacy_sqlite(old, upto)
    for path in (old, new):
        store = SQLiteStore(str(path))
        await store.open()
        assert await store.schema_version() == migrating.versions()[-1]
        await store.close()
    assert _schema(old) == _schema(new)
    db = sqlite3.connect(old)
    try:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (migrating.head(),)]
        assert db.execute("SELECT name FROM people").fetchall() == [("王阿姨",)]
        assert [v for (v,) in db.execute("SELECT version FROM schema_migrations"
                                          " ORDER BY 1")] == migrating.versions()
    finally:
        db.close()


async def test_a_postgresql_database_from_before_alembic_migrates_forward() -> None:
    postgres.require()
    from gridbot.store.postgresql import PostgresStore

    old, new = postgres.new_schema(), postgres.new_schema()
    import asyncpg

    async def legacy() -> None:
        conn = await asyncpg.connect(postgres.URL, timeout=5,
                                     server_settings={"search_path": old})
        try:
            await conn.execute(f'CREATE SCHEMA "{old}"')
            await conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY,"
                               " applied_at timestamptz NOT NULL)")
            for version, sql in legacy_migrations("postgresql"):
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2)",
                                   version, T0)
        finally:
            await conn.close()

    try:
        await legacy()
        postgres.sql(old, "INSERT INTO people (id, name, role, unit, phone, address, locale,"
                          " auto, active) VALUES ('wang', '王阿姨', 'resident', 'M01', '', '',"
                          " '', false, true)")
        for schema in (old, new):
            store = PostgresStore(postgres.url_for(schema), pool_size=1)
            await store.open()
            assert await store.schema_version() == migrating.versions()[-1]
            await store.close()

        def columns(schema: str) -> list[tuple[object, ...]]:
            return sorted(postgres.sql(
                schema, "SELECT table_name, column_name, data_type, is_nullable,"
                " column_default FROM information_schema.columns WHERE table_schema = $1"
                " AND table_name <> 'alembic_version'", schema))

        assert columns(old) == columns(new)
        assert postgres.sql(old, "SELECT version_num FROM alembic_version") == [
            (migrating.head(),)]
        assert postgres.sql(old, "SELECT name FROM people") == [("王阿姨",)]
    finally:
        postgres.drop_schema(old)
        postgres.drop_schema(new)


async def test_lookups_by_value_use_the_lean_case_indexes(tmp_path: Path) -> None:
    """Revision 0022: one index fewer, two that hold only the cases that have a value;
    every lookup they served is still an index search, not a scan of the cases."""
    store = SQLiteStore(str(tmp_path / "lean.db"))
    await store.open()
    await store.close()
    db = sqlite3.connect(tmp_path / "lean.db")
    try:
        def plan(query: str) -> str:
            return " ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + query))

        assert "cases_microgrid" not in {n for (n,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "INDEX cases_incident" in plan("SELECT number FROM cases WHERE incident = 7")
        assert "INDEX cases_merged_into" in plan(
            "SELECT number FROM cases WHERE merged_into = 7")
        assert "INDEX cases_board" in plan(
            "SELECT status, count(*) FROM cases WHERE microgrid = 'M01' GROUP BY status")
    finally:
        db.close()
