"""Schema migrations: one chain of Alembic revisions (:mod:`gridbot.store.revisions`)
for both databases, run by the store when it opens.

The revisions due run in one transaction that first takes the database's migration lock
(SQLite's write lock, a PostgreSQL advisory lock) and then reads again where the
database stands, so processes opening one database together apply each revision once;
a failing revision leaves the database as it was. Every revision
also records its number in ``schema_migrations``, as the store did before Alembic:
:meth:`gridbot.store.base.Store.schema_version`, backups and ``gridbot migrate`` read it.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from alembic.config import Config as AlembicConfig
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import RevisionStep
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.util import await_

from gridbot.store.base import SchemaStatus
from gridbot.store.rows import ts

#: the frozen SQL of the baseline revisions, per dialect name
LEGACY_FOLDERS = {"sqlite": "migrations", "postgresql": "pg_migrations"}

_CREATE_RECORD = {
    "sqlite": "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
              " applied_at TEXT NOT NULL)",
    "postgresql": "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                  " applied_at timestamptz NOT NULL)",
}


def legacy_migrations(dialect: str) -> list[tuple[int, str]]:
    """The baseline's SQL for ``dialect`` ("sqlite" or "postgresql"), as (version, SQL)."""
    folder = resources.files("gridbot.store") / LEGACY_FOLDERS[dialect]
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


@functools.cache
def script() -> ScriptDirectory:
    """The revisions shipped in the package (they work from an installed wheel)."""
    folder = Path(str(resources.files("gridbot.store") / "revisions"))
    config = AlembicConfig()
    config.set_main_option("script_location", str(folder))
    config.set_main_option("version_locations", str(folder))
    config.set_main_option("path_separator", "os")
    return ScriptDirectory.from_config(config)


@functools.cache
def chain() -> tuple[str, ...]:
    """Every revision id, oldest first (the chain has no branches)."""
    return tuple(reversed([r.revision for r in script().walk_revisions()]))


def head() -> str:
    return chain()[-1]


def versions() -> list[int]:
    """The schema versions the revisions record, oldest first."""
    return [int(revision) for revision in chain()]


def to_do(current: str | None) -> list[str]:
    """The revisions after ``current`` (``None``: none applied), oldest first."""
    revisions = chain()
    if current is None:
        return list(revisions)
    if current not in revisions:
        raise LookupError(f"the database is at schema revision {current!r}, which this "
                          "gridbot does not know (a newer gridbot migrated it?)")
    return list(revisions[revisions.index(current) + 1:])


def status(current: str | None, *, empty: bool) -> SchemaStatus:
    """Where a database at revision ``current`` stands; ``LookupError`` if a newer gridbot
    migrated it."""
    return SchemaStatus(current=current, head=head(), pending=tuple(to_do(current)),
                        empty=empty)


def current_revision(conn: Connection) -> str | None:
    """The revision Alembic recorded, read inside the caller's transaction."""
    if not conn.dialect.has_table(conn, "alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade_to(conn: Connection, target: str) -> bool:
    """Run the revisions up to ``target`` in the connection's transaction, if they are
    still to do (another process may have done them meanwhile); whether any ran."""
    revisions = chain()
    current = current_revision(conn)
    if current is not None and revisions.index(current) >= revisions.index(target):
        return False
    scripts = script()

    def steps(rev: object, _context: object) -> list[RevisionStep]:
        return scripts._upgrade_revs(target, rev)  # type: ignore[arg-type]

    with EnvironmentContext(AlembicConfig(), scripts, fn=steps,
                            destination_rev=target) as env:
        env.configure(connection=conn, fn=steps)
        with env.begin_transaction():
            env.run_migrations()
    return True


def migrate(conn: Connection, current: str | None, lock: Callable[[Connection], None]) -> None:
    """Bring the database from ``current`` (as read before, without the lock) to the
    newest revision, in one transaction; ``lock`` takes the migration lock at its start."""
    if not to_do(current):
        return
    with conn.begin():
        lock(conn)
        upgrade_to(conn, head())


def split_sql(sql: str) -> list[str]:
    """A SQLite script as statements, trigger bodies kept whole."""
    statements: list[str] = []
    buf: list[str] = []
    for line in sql.splitlines():
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("--")):
            continue
        buf.append(line)
        joined = "\n".join(buf)
        # complete_statement sees past a comment after the ";" and into trigger bodies.
        if sqlite3.complete_statement(joined):
            statements.append(joined)
            buf = []
    if "".join(buf).strip():
        statements.append("\n".join(buf))
    return statements


# -- what revisions call ----------------------------------------------------------------------
def record(conn: Connection, version: int) -> None:
    """Note in ``schema_migrations`` that ``version`` is applied."""
    if conn.dialect.name == "sqlite":
        _run(conn, "INSERT INTO schema_migrations VALUES (?, ?)", version, ts(datetime.now(UTC)))
    else:
        _run(conn, "INSERT INTO schema_migrations VALUES ($1, $2)", version, datetime.now(UTC))


def recorded(conn: Connection, version: int) -> bool:
    _run(conn, _CREATE_RECORD[conn.dialect.name])
    mark = "?" if conn.dialect.name == "sqlite" else "$1"
    return bool(_rows(conn, f"SELECT 1 FROM schema_migrations WHERE version = {mark}", version))


# The baseline's statements go to the driver itself: one trip each (SQLAlchemy's aiosqlite
# adapter takes four: cursor, execute, fetch, close), so a new database opens quickly.
def _run(conn: Connection, sql: str, *params: Any) -> None:
    driver: Any = conn.connection.driver_connection
    if conn.dialect.name == "sqlite":
        await_(driver.execute(sql, params))
    else:
        await_(driver.execute(sql, *params))


def _rows(conn: Connection, sql: str, *params: Any) -> list[Any]:
    driver: Any = conn.connection.driver_connection
    if conn.dialect.name == "sqlite":
        return list(await_(driver.execute_fetchall(sql, params)))
    return list(await_(driver.fetch(sql, *params)))


def apply_legacy(version: int) -> None:
    """A baseline revision: the frozen SQL of ``version`` for this database, unless
    ``schema_migrations`` says the store applied it before it used Alembic."""
    from alembic import op

    conn = op.get_bind()
    if recorded(conn, version):
        return
    dialect = conn.dialect.name
    sql = dict(legacy_migrations(dialect))[version]
    if dialect == "sqlite":
        for statement in split_sql(sql):
            _run(conn, statement)
    else:  # the whole script at once: asyncpg's simple query protocol (no parameters)
        _run(conn, sql)
    record(conn, version)
