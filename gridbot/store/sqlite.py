"""The default store: one SQLite file in WAL mode, through aiosqlite."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import StaticPool

from gridbot.errors import StoreError
from gridbot.store import migrating
from gridbot.store.base import (
    SchemaStatus,
    Store,
    Transaction,
)
from gridbot.store.dialect import SQLiteSql, busy_error
from gridbot.store.repos import StoreTransaction
from gridbot.store.rows import ts as ts  # instants as this store writes them (tests, tools)

log = logging.getLogger(__name__)

#: How long a statement waits for another connection's write lock before the store gives
#: up with :class:`~gridbot.errors.StoreBusy` (SQLite's ``busy_timeout``, milliseconds).
BUSY_TIMEOUT_MS = 5000


def _raise_if_busy(exc: BaseException) -> None:
    busy = busy_error(exc)
    if busy is not None:
        raise busy from exc


def migrations() -> list[tuple[int, str]]:
    """The baseline's SQLite migrations, as (version, SQL), in order (Alembic's baseline
    revisions apply them: see :mod:`gridbot.store.migrating`)."""
    return migrating.legacy_migrations("sqlite")


class SQLiteStore(Store):
    def __init__(self, path: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = path
        #: how long to wait for another connection's write lock before raising StoreBusy
        self.busy_timeout_ms = int(busy_timeout_ms)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    @property
    def database_file(self) -> Path | None:
        return None if self.path == ":memory:" else Path(self.path)

    async def open(self, *, migrate: bool = True) -> None:
        if self.database_file is not None:
            if not self.database_file.parent.is_dir():
                # said here rather than by aiosqlite, whose failed connect leaves its
                # thread a message to post on a loop that may be gone by then
                raise StoreError(f"cannot open database {self.path!r}: "
                                 f"no folder {str(self.database_file.parent)!r}")
            private_files(self.database_file)
        try:
            # check_same_thread off: a transaction holding the write lock runs its quick
            # statements on the event loop's thread (see SQLiteSql); the store's lock
            # keeps the connection to one user at a time
            self._db = await aiosqlite.connect(self.path, isolation_level=None,
                                               check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {self.path!r}: {exc}") from exc
        self._db.row_factory = aiosqlite.Row
        # What is deleted is overwritten, not left in free pages (residents' phones).
        await self._db.execute("PRAGMA secure_delete=ON")
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=NORMAL")
        await self._db.execute("PRAGMA foreign_keys=ON")
        await self._db.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
        if migrate:
            await self._migrate()

    async def _current(self) -> str | None:
        try:  # read without the write lock: nothing to do is the usual answer
            rows = await self._require().execute_fetchall(
                "SELECT version_num FROM alembic_version")
        except sqlite3.OperationalError as exc:
            _raise_if_busy(exc)
            rows = []
        return next((str(r[0]) for r in rows), None)

    async def schema_status(self) -> SchemaStatus:
        current = await self._current()
        tables = list(await self._require().execute_fetchall(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"))
        try:
            return migrating.status(current, empty=int(tables[0][0]) == 0)
        except LookupError as exc:
            raise StoreError(str(exc)) from None

    async def upgrade(self) -> None:
        await self._migrate()

    async def _migrate(self) -> None:
        db = self._require()
        current = await self._current()
        if current == migrating.head():
            return

        async def reuse() -> aiosqlite.Connection:
            return db

        engine = create_async_engine("sqlite+aiosqlite://", async_creator=reuse,
                                     poolclass=StaticPool)
        # Each revision's transaction holds the write lock from its start (BEGIN
        # IMMEDIATE): processes opening one file together take turns.
        event.listen(engine.sync_engine, "begin",
                     lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        try:
            async with self._lock, engine.connect() as conn:
                await conn.run_sync(migrating.migrate, current, lambda _conn: None)
        except DBAPIError as exc:
            await self._rollback(db)
            cause = exc.orig if exc.orig is not None else exc
            _raise_if_busy(cause)
            raise StoreError(f"schema migration failed: {cause}") from cause
        except LookupError as exc:
            raise StoreError(str(exc)) from None
        finally:
            await engine.dispose(close=False)  # the connection stays the store's

    async def schema_version(self) -> int:
        rows = list(await self._require().execute_fetchall(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))
        return int(rows[0][0])

    async def close(self) -> None:
        # Once the transaction under way (if any) has ended: closing the connection in
        # aiosqlite's thread while that transaction runs a quick statement on the loop's
        # thread put two threads on one SQLite connection (a crash, seen in a test that
        # closes a store whose abandoned drain was still marking).
        async with self._lock:
            db, self._db = self._db, None
            if db is not None:
                await db.close()

    async def scrub(self) -> str:
        # VACUUM writes every page afresh (no deleted row left in free space or in a
        # page's unused bytes), then the checkpoint copies it home and empties the WAL,
        # which held the pages as they were before.
        async with self._turn() as db:
            try:
                await db.execute("VACUUM")
                checkpoint = await db.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
                busy, _, _ = next(iter(checkpoint))
            except sqlite3.OperationalError as exc:
                _raise_if_busy(exc)
                raise
        return "wal_busy" if busy else "wiped"

    def _require(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("store is not open")
        return self._db

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection, to this task alone until the block ends; a store closed while
        the task waited for its turn is said to be closed."""
        async with self._lock:
            yield self._require()

    @asynccontextmanager
    async def transaction(self, *, atomic: bool = True) -> AsyncIterator[Transaction]:
        self._require()  # said at once, not after waiting for the lock
        async with self._turn() as db:
            try:
                # BEGIN goes with the first statement, the rows it deferred (see
                # Sql.defer) with COMMIT; quick statements take no trip to aiosqlite's
                # thread at all once the transaction holds the write lock (SQLiteSql).
                # The busy timeout is changed only between transactions (under the
                # same lock), so the store's own value is the connection's.
                sql = SQLiteSql(db, begin="BEGIN IMMEDIATE",
                                busy_timeout_ms=self.busy_timeout_ms)
                sql.org = self.org_reads
                yield StoreTransaction(sql)
                # A COMMIT that fails (busy) leaves the transaction open: it is rolled
                # back below like any other failure.
                await sql.commit()
            except BaseException as exc:
                # Also when cancelled mid-statement: the connection is shared, so it must
                # never be handed on with a transaction still open, nor while aiosqlite's
                # thread still runs (or has yet to run) a statement of this one.
                await _to_the_end(self._rollback(db))
                # Another connection held the write lock past busy_timeout (at BEGIN, a
                # statement or COMMIT): nothing was written, and trying later is safe.
                _raise_if_busy(exc)
                raise

    async def set_busy_timeout(self, ms: int) -> None:
        """Wait ``ms`` for another connection's write lock from the next transaction on.
        Set between transactions: one beginning on the loop's thread turns the timeout off
        for its BEGIN and puts back the value the store held when it began."""
        async with self._turn() as db:
            self.busy_timeout_ms = int(ms)
            await db.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")

    async def checkpoint(self) -> None:
        async with self._turn() as db:
            # Never wait for a reader (a backup, `gridbot notice` following a notice):
            # the next checkpoint will do.
            await db.execute("PRAGMA busy_timeout=0")
            try:
                await db.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.OperationalError as exc:
                _raise_if_busy(exc)
                raise
            finally:
                await db.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")

    @staticmethod
    async def _rollback(db: aiosqlite.Connection) -> None:
        # A statement whose await was cancelled still runs in aiosqlite's thread, even if
        # it had not started yet (its BEGIN too): once everything queued there is done,
        # the connection is this task's alone again, and its state is what it seems.
        await db._execute(_nothing)  # type: ignore[no-untyped-call]
        if db.in_transaction:
            await db.execute("ROLLBACK")


def _nothing() -> None:
    """A no-op run in aiosqlite's thread: when it is done, so is all queued before it."""


async def _to_the_end(work: Awaitable[None]) -> None:
    """Await ``work`` to its end even if this task is cancelled meanwhile (the store's
    lock must not be let go while the connection is still in use); a cancellation that
    came meanwhile is raised after."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while True:
        try:
            await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                break
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    task.result()


def private_files(path: Path) -> None:
    """The database, its WAL and shared-memory files readable by their owner only
    (they hold residents' phones): created so, and tightened if an older gridbot made
    them readable by others (said once in the log). SQLite gives the WAL and shm files
    the database file's mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError:
        return  # no such folder: connecting says so
    else:
        os.close(fd)
    loose = []
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = file.stat().st_mode & 0o777
            if mode & 0o077:
                file.chmod(0o600)
                loose.append(f"{file.name} {mode:04o}")
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("%s is readable by others and could not be made private: %s",
                        file, exc)
    if loose:
        log.warning("made the database files private (0600; they were %s) in %s",
                    ", ".join(loose), path.parent)

