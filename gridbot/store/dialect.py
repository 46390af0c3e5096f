"""What differs between SQLite and PostgreSQL, in one place.

The repositories (:mod:`gridbot.store.repos`) write each statement once in SQLAlchemy
Core; a :class:`Dialect` compiles it for its database once and keeps the result (the
SQL text and the order of its parameters), and a :class:`Sql` runs it on the driver's
connection of the transaction in one round trip: aiosqlite's thread or asyncpg's
socket. The driver is called directly, not through SQLAlchemy's execution layer, because
on aiosqlite that layer costs several thread trips a statement (cursor, execute, fetch,
close) and the intake benchmark is made of short statements.

The rest of the differences are here too: how an instant and a time of day are kept,
``FOR UPDATE SKIP LOCKED`` (SQLite serialises writers and compiles it to nothing),
insert-or-ignore and upserts, the larger of two values, the order rows were written in,
and how a driver's error becomes the store's (:class:`~gridbot.errors.StoreBusy` for a
locked SQLite file, :class:`~gridbot.errors.StoreConflict` for a PostgreSQL conflict).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from functools import cache, lru_cache
from typing import Any, TypeVar, cast

import aiosqlite
from sqlalchemy import ColumnElement, Table, bindparam, func, insert, literal_column
from sqlalchemy.dialects import postgresql as pg_sql
from sqlalchemy.dialects import sqlite as sqlite_sql
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import Dialect as SADialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert, UpdateBase
from sqlalchemy.sql.util import find_tables

from gridbot.errors import StoreBusy, StoreConflict, StoreError
from gridbot.store.base import OrgReads
from gridbot.store.rows import Rows, from_ts, ts

T = TypeVar("T")


def const(value: str | int) -> ColumnElement[Any]:
    """A constant written into the SQL, not sent as a parameter: a status in a WHERE
    stays visible to PostgreSQL's planner (partial indexes) and is written once, from
    the domain's enum, rather than copied into SQL text."""
    if isinstance(value, int):
        return literal_column(str(int(value)))
    return literal_column("'" + value.replace("'", "''") + "'")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement compiled for one database: its SQL and how to order its parameters."""

    sql: str
    names: tuple[str, ...]
    defaults: Mapping[str, Any]
    #: the tables it reads or writes, and the one it writes (``None``: a query), so that a
    #: transaction knows which of its remembered reads a write makes stale and which of
    #: its deferred inserts a statement must see first (:class:`Sql`)
    tables: frozenset[str] = frozenset()
    writes: str | None = None
    #: a few rows by key (see :func:`quick`)
    quick: bool = False

    def args(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        defaults = self.defaults
        return tuple(params[n] if n in params else defaults[n] for n in self.names)


#: an INSERT that knows ON CONFLICT (each database has its own)
UpsertInsert = sqlite_sql.Insert | pg_sql.Insert


class Dialect(ABC):
    """One database's words for what the repositories need."""

    name: str
    compiler: SADialect
    #: row mappers with this database's instant converters
    rows: Rows

    def __init__(self) -> None:
        self._prepared: dict[ClauseElement, Prepared] = {}

    def prepare(self, statement: ClauseElement) -> Prepared:
        """``statement`` compiled for this database, once (statements are built once, at
        import or by a cached factory, so the cache stays small)."""
        found = self._prepared.get(statement)
        if found is None:
            compiled = cast(SQLCompiler, statement.compile(dialect=self.compiler))
            names = tuple(compiled.positiontup or ())
            params = compiled.params  # built anew at each use of the property
            found = Prepared(sql=compiled.string, names=names,
                             defaults={n: params.get(n) for n in names},
                             tables=_tables(statement), writes=_written(statement),
                             quick=statement in _QUICK)
            self._prepared[statement] = found
        return found

    def instant(self, value: datetime | None) -> Any:
        return self.rows.write(value)

    @abstractmethod
    def clock(self, value: time) -> Any:
        """A time of day as a ``time`` column keeps it."""

    @abstractmethod
    def clock_back(self, value: Any) -> time: ...

    @abstractmethod
    def insert(self, table: Table) -> UpsertInsert:
        """This database's INSERT, which knows ``ON CONFLICT``."""

    def insert_ignore(self, table: Table) -> Insert:
        """INSERT … ON CONFLICT DO NOTHING: a duplicate key inserts nothing (rowcount 0)."""
        return self.insert(table).on_conflict_do_nothing()

    def upsert(self, table: Table, keys: Sequence[str], update: Iterable[str],
               **computed: ColumnElement[Any]) -> Insert:
        """INSERT … ON CONFLICT (keys) DO UPDATE: the ``update`` columns take the new
        row's values, ``computed`` columns their expression."""
        stmt = self.insert(table)
        excluded = stmt.excluded
        values: dict[str, Any] = {c: excluded[c] for c in update}
        values.update(computed)
        return stmt.on_conflict_do_update(index_elements=list(keys), set_=values)

    @abstractmethod
    def greatest(self, a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
        """The larger of two values, a NULL counting as absent."""

    @abstractmethod
    def written_order(self, table: Table) -> ColumnElement[Any]:
        """The order ``table``'s rows were inserted in (people tie on it)."""

    @abstractmethod
    def error(self, exc: BaseException) -> BaseException | None:
        """The store's error for a driver's, or ``None`` if it stays as it is."""

    # -- what `gridbot forget`'s plan (SQL text with ``?`` marks) needs ---------------------
    #: appended to the plan's SELECTs whose rows it changes
    for_update = ""

    def marks(self, sql: str) -> str:
        """SQL written with ``?`` marks, as this database's driver takes it."""
        return sql

    @abstractmethod
    def contains(self, column: str) -> str:
        """SQL true when ``column`` contains the next parameter (no pattern characters)."""

    @abstractmethod
    def guard(self, on: bool) -> list[str]:
        """The statements that let (on) or stop letting (off) this transaction change the
        append-only case_events and audit_log rows."""


class SQLiteDialect(Dialect):
    name = "sqlite"
    compiler = sqlite_sql.dialect()
    rows = Rows(read=from_ts, write=ts)  # fixed-width UTC text: text order is time order

    def clock(self, value: time) -> Any:
        return value.strftime("%H:%M:%S")

    def clock_back(self, value: Any) -> time:
        return time.fromisoformat(value)

    def insert(self, table: Table) -> UpsertInsert:
        return sqlite_sql.insert(table)

    def greatest(self, a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.coalesce(func.max(a, b), a)

    def written_order(self, table: Table) -> ColumnElement[Any]:
        return literal_column("rowid")

    def error(self, exc: BaseException) -> BaseException | None:
        return busy_error(exc)

    #: the append-only guards forget steps aside from, inside its own transaction
    GUARDS = (("case_events_append_only_update", "case_events"),
              ("audit_log_append_only_update", "audit_log"))

    def contains(self, column: str) -> str:
        return f"instr({column}, ?) > 0"

    def guard(self, on: bool) -> list[str]:
        if on:
            return [f"DROP TRIGGER {trigger}" for trigger, _ in self.GUARDS]
        return [f"CREATE TRIGGER {trigger} BEFORE UPDATE ON {table} BEGIN SELECT"
                f" RAISE(ABORT, '{table} is append-only'); END" for trigger, table in self.GUARDS]


def _utc(instant: datetime | None) -> datetime | None:
    if instant is None:
        return None
    if instant.tzinfo is None:
        raise ValueError("naive datetime reached the store")
    return instant.astimezone(UTC)


def _back(instant: datetime | None) -> datetime | None:
    """asyncpg gives timestamptz in UTC already; this only pins the tzinfo object."""
    return None if instant is None else instant.astimezone(UTC)


class PostgresDialect(Dialect):
    name = "postgresql"
    compiler = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
    rows = Rows(read=_back, write=_utc)  # timestamptz; JSON columns hold SQLite's text

    def clock(self, value: time) -> Any:
        return value

    def clock_back(self, value: Any) -> time:
        return cast(time, value)

    def insert(self, table: Table) -> UpsertInsert:
        return pg_sql.insert(table)

    def greatest(self, a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.greatest(a, b)  # ignores a NULL, as SQLite's COALESCE(MAX(…), a) does

    def written_order(self, table: Table) -> ColumnElement[Any]:
        return table.c.seq if "seq" in table.c else literal_column("seq")

    def error(self, exc: BaseException) -> BaseException | None:
        return pg_error(exc)

    for_update = " FOR UPDATE"

    def marks(self, sql: str) -> str:
        numbers = iter(range(1, sql.count("?") + 1))
        return re.sub(r"\?", lambda _: f"${next(numbers)}", sql)

    def contains(self, column: str) -> str:
        return f"strpos({column}, ?) > 0"

    def guard(self, on: bool) -> list[str]:
        # The append-only guards (migration 0012) let this transaction alone change the
        # words, actor and data of case events and the person ids of audit rows; SET
        # LOCAL ends with it. No DDL, so no lock that would stop the other workers.
        return [f"SET LOCAL gridbot.forgetting = '{'on' if on else 'off'}'"]


SQLITE = SQLiteDialect()
POSTGRESQL = PostgresDialect()

#: statements marked by :func:`quick`
_QUICK: set[ClauseElement] = set()
S = TypeVar("S", bound=ClauseElement)


def quick(statement: S) -> S:
    """Mark a statement as quick: it reads or writes a few rows found by key or by an
    index (a person, a case, its events, the due messages), so the SQLite store may run
    it on the event loop's thread once its transaction holds the write lock, instead of a
    trip to aiosqlite's thread that costs ten times the statement (see :class:`SQLiteSql`).
    Anything that may scan (statistics, exports, forgetting) stays unmarked."""
    _QUICK.add(statement)
    return statement


def _tables(statement: ClauseElement) -> frozenset[str]:
    found = set()
    for table in find_tables(statement, include_crud=True, include_aliases=True,
                             include_joins=True, include_selects=True):
        table = getattr(table, "element", table)
        if isinstance(table, Table):
            found.add(table.name)
    return frozenset(found)


def _written(statement: ClauseElement) -> str | None:
    if isinstance(statement, UpdateBase):
        table = getattr(statement, "table", None)
        return table.name if isinstance(table, Table) else "?"
    return None


@cache
def multi_insert(dialect: Dialect, table: Table, columns: tuple[str, ...], count: int,
                 ignore: bool) -> Insert:
    """INSERT of ``count`` rows of ``columns`` in one statement (parameters
    ``column_i``); ``ignore``: a row whose key is taken is skipped (ON CONFLICT DO NOTHING).
    Built and compiled once per shape."""
    rows: list[dict[str, Any]] = [{c: bindparam(f"{c}_{i}") for c in columns}
                                  for i in range(count)]
    if ignore:
        return quick(dialect.insert(table).values(rows).on_conflict_do_nothing())
    return quick(insert(table).values(rows))


@cache
def _multi_insert_plan(dialect: Dialect, table: Table, columns: tuple[str, ...], count: int,
                       ignore: bool) -> tuple[str, tuple[tuple[int, str], ...]]:
    """:func:`multi_insert`'s SQL and, for each of its parameters in order, the row and
    column it takes: the arguments are then read straight from the rows."""
    prepared = dialect.prepare(multi_insert(dialect, table, columns, count, ignore))
    places = []
    for name in prepared.names:
        column, _, index = name.rpartition("_")
        places.append((int(index), column))
    return prepared.sql, tuple(places)


# -- PostgreSQL's advisory locks: migrations, a new schema, singleton duties --------------
#: held to the end of the transaction (migrating, creating the schema)
ADVISORY_XACT_LOCK = "SELECT pg_advisory_xact_lock($1)"
#: held by the session until released or the connection ends (a singleton duty)
ADVISORY_TRY_LOCK = "SELECT pg_try_advisory_lock($1)"
#: held to the end of the transaction if free at once (folding the case tally)
ADVISORY_TRY_XACT_LOCK = "SELECT pg_try_advisory_xact_lock($1)"
ADVISORY_UNLOCK = "SELECT pg_advisory_unlock($1)"


def lock_key(namespace: str, name: str) -> int:
    """A stable signed 64-bit advisory lock key for ``name`` in this database and schema."""
    digest = hashlib.blake2b(f"gridbot:{namespace}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# -- errors --------------------------------------------------------------------------------
def busy_error(exc: BaseException) -> StoreBusy | None:
    """``exc`` as the store's :class:`StoreBusy` if it is SQLite saying the database is busy
    or locked (at BEGIN, a statement or COMMIT); ``None`` for anything else."""
    if not isinstance(exc, sqlite3.OperationalError):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        # Extended codes (SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED_SHAREDCACHE …) share the low byte.
        if code & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return None
    elif "locked" not in str(exc) and "busy" not in str(exc):
        return None
    busy = StoreBusy(f"database is busy: {exc}")
    busy.__cause__ = exc
    return busy


def pg_error(exc: BaseException) -> BaseException | None:
    """asyncpg's errors as the store's: conflicts worth retrying, a lost connection."""
    try:
        import asyncpg  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - only without the driver installed
        return None
    if isinstance(exc, (asyncpg.SerializationError, asyncpg.DeadlockDetectedError,
                        asyncpg.UniqueViolationError, asyncpg.LockNotAvailableError)):
        conflict = StoreConflict(f"transaction conflict: {exc}")
        conflict.__cause__ = exc
        return conflict
    if isinstance(exc, (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)):
        lost = StoreError(f"database connection failed: {exc}")
        lost.__cause__ = exc
        return lost
    return None


# -- running statements ------------------------------------------------------------------
#: a remembered read: what it depends on (tables) and what it found
Memo = tuple[frozenset[str], Any]
#: a table's deferred rows: their columns, whether a taken key skips a row, the rows
_Deferred = tuple[tuple[str, ...], bool, list[Mapping[str, Any]]]
#: rows per multi-row INSERT (well within both databases' limits on parameters)
DEFER_CHUNK = 64


def chunks(count: int, largest: int) -> list[tuple[int, int]]:
    """``(start, end)`` of slices covering ``count`` items, each a power of two in size
    and at most ``largest`` (a power of two): a statement compiled per size stays one of a
    handful (compiling a statement of a hundred rows costs more than running it)."""
    found, start = [], 0
    while start < count:
        size = min(largest, 1 << ((count - start).bit_length() - 1))
        found.append((start, start + size))
        start += size
    return found


#: the tables revision 0023's triggers watch: a transaction writing one of them stops
#: sharing remembered rosters and swaps (its own writes are not yet anyone else's)
ORG_TABLES = frozenset({"rosters", "shifts", "people", "duty", "shift_swaps"})


class Sql(ABC):
    """A transaction's connection, running prepared statements in one round trip each.

    Two things make a transaction cheaper without changing what it means:

    - **remembered reads** (:meth:`recall`, :meth:`remember`): a repository may keep what
      a read found (a person, a chat) for the rest of the transaction; any write to a
      table the read depends on forgets it, so reads still see the transaction's writes;
    - **deferred inserts** (:meth:`defer`): rows nobody reads back at once (case events,
      outgoing messages) wait and go as one multi-row INSERT per table, before the first
      statement that touches their table and at commit
      (:meth:`flush`). A failing deferred insert fails the transaction all the same.
    """

    dialect: Dialect

    def __init__(self) -> None:
        self.memo: dict[Any, Memo] = {}
        #: the keys of ``memo`` by the tables their reads depend on (a write to a table
        #: forgets its reads without looking at the others: several messages' worth of
        #: reads are remembered in a group commit)
        self.memo_by_table: dict[str, set[Any]] = {}
        self.deferred: dict[Table, _Deferred] = {}
        #: by savepoint: each table's queue of deferred rows when it was made, and how
        #: many rows it held
        self.saved: dict[str, dict[Table, tuple[tuple[str, ...], bool,
                                                list[Mapping[str, Any]], int]]] = {}
        #: a savepoint released but not yet said so (see release)
        self.unreleased: str | None = None
        #: the process's rosters and swaps from earlier transactions (the store sets it),
        #: the database's org version as this transaction read it, and whether it wrote
        #: to a table that version covers (from then on it reads for itself)
        self.org: OrgReads | None = None
        self.org_version: int | None = None
        self.org_dirty = False

    # -- remembered reads -------------------------------------------------------------------
    def recall(self, key: Any) -> tuple[bool, Any]:
        """(True, what the read ``key`` found) if it is remembered, else (False, None)."""
        found = self.memo.get(key)
        return (False, None) if found is None else (True, found[1])

    def remember(self, key: Any, tables: frozenset[str], value: Any) -> Any:
        self.memo[key] = (tables, value)
        for table in tables:
            self.memo_by_table.setdefault(table, set()).add(key)
        return value

    # -- remembered across transactions: rosters and swaps -----------------------------
    def org_seen(self, version: int) -> None:
        """The database's org version, read by this transaction (with the speaker)."""
        if self.org_version is None:
            self.org_version = version

    def _org_reads(self) -> OrgReads | None:
        org, version = self.org, self.org_version
        if org is None or version is None or self.org_dirty:
            return None
        if org.version != version:  # changed since (or a restore): all of it may be old
            org.version, org.reads = version, {}
        return org

    def recall_org(self, key: Any) -> tuple[bool, Any]:
        """:meth:`recall`, or what an earlier transaction read for ``key`` while the org
        version was the one this transaction read."""
        known = self.recall(key)
        if known[0]:
            return known
        org = self._org_reads()
        if org is None or key not in org.reads:
            return False, None
        return True, org.reads[key]

    def remember_org(self, key: Any, tables: frozenset[str], value: Any) -> Any:
        """:meth:`remember`, and for later transactions as of this org version."""
        org = self._org_reads()
        if org is not None:
            org.reads[key] = value
        return self.remember(key, tables, value)

    def _forget(self, table: str | None) -> None:
        if table is None:
            return
        if table in ORG_TABLES or table == "?":
            self.org_dirty = True
        if table == "?":
            self.forget_all()
            return
        for key in self.memo_by_table.pop(table, ()):
            self.memo.pop(key, None)

    def forget_all(self) -> None:
        self.memo.clear()
        self.memo_by_table.clear()

    # -- deferred inserts ---------------------------------------------------------------
    def defer(self, table: Table, row: Mapping[str, Any], *, ignore: bool = False) -> None:
        """Insert ``row`` into ``table`` later, with the other rows deferred for it."""
        found = self.deferred.get(table)
        if found is None:
            self.deferred[table] = (tuple(row), ignore, [row])
        else:
            found[2].append(row)

    async def flush(self, tables: frozenset[str] | None = None) -> None:
        """Write the deferred rows (of ``tables``, or all), in the order deferred."""
        await self._batch(self._deferred_statements(tables))

    async def commit(self) -> None:
        """The end of the transaction's work: what it deferred is written (the store
        commits after; SQLite's does both in one trip, PostgreSQL's keeps the last
        statement of them for COMMIT's trip)."""
        await self.flush()

    def _deferred_statements(
            self, tables: frozenset[str] | None = None) -> list[tuple[str, tuple[Any, ...]]]:
        """The deferred rows (of ``tables``, or all) as statements, taken from the queue."""
        statements = []
        for table in list(self.deferred):
            if tables is not None and table.name not in tables:
                continue
            columns, ignore, rows = self.deferred.pop(table)
            for start, end in chunks(len(rows), DEFER_CHUNK):
                chunk = rows[start:end]
                sql, places = _multi_insert_plan(self.dialect, table, columns, len(chunk),
                                                 ignore)
                statements.append((sql, tuple(chunk[i][c] for i, c in places)))
        return statements

    async def _batch(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        """Run statements whose results nobody needs, in order (a driver may send them
        in one trip)."""
        for sql, args in statements:
            await self._execute(sql, args)

    async def _before(self, prepared: Prepared) -> None:
        if self.deferred and any(t.name in prepared.tables for t in self.deferred):
            await self.flush(prepared.tables)
        self._forget(prepared.writes)

    async def _before_text(self) -> None:
        """SQL text (forget's plan) may touch anything."""
        await self.flush()
        self.forget_all()
        self.org_dirty = True

    # -- savepoints (several messages in one transaction) -----------------------------------
    async def savepoint(self, name: str) -> None:
        """Mark a point to roll back to. The rows deferred so far stay deferred (several
        messages' rows go in one INSERT); what they were is kept, for a rollback to it
        to defer them again: a flush after the savepoint wrote them, and is undone with
        everything else after it. Remembered reads stay (they are still true)."""
        # A table's queue is only appended to until a flush takes it whole (a new one
        # starts after), so its list and length then say which rows came before.
        self.saved[name] = {table: (columns, ignore, rows, len(rows))
                            for table, (columns, ignore, rows) in self.deferred.items()}
        statements = [f"SAVEPOINT {name}"]
        if self.unreleased is not None:
            statements.insert(0, f"RELEASE SAVEPOINT {self.unreleased}")
            self.unreleased = None
        await self._control(statements)

    async def release(self, name: str) -> None:
        """Keep what was done since the savepoint. Said with the next savepoint (one
        round trip to a server for both), or not at all: COMMIT releases it."""
        self.saved.pop(name, None)
        self.unreleased = name

    async def rollback_to(self, name: str) -> None:
        """Undo what was done since the savepoint (the rows deferred since, too), and
        forget every remembered read (one may have seen what is undone)."""
        self.deferred = {table: (columns, ignore, rows[:count]) for table, (
            columns, ignore, rows, count) in self.saved.pop(name, {}).items()}
        self.forget_all()
        await self._control([f"ROLLBACK TO SAVEPOINT {name}", f"RELEASE SAVEPOINT {name}"])

    async def _control(self, statements: list[str]) -> None:
        """Transaction control statements, in order (a server takes them in one trip)."""
        for statement in statements:
            await self._execute(statement, (), True)

    # -- statements ---------------------------------------------------------------------
    async def all(self, statement: ClauseElement, params: Mapping[str, Any] = {}) -> list[Any]:
        """The rows (``row["column"]`` works on both drivers)."""
        prepared = self.dialect.prepare(statement)
        await self._before(prepared)
        return await self._fetch(prepared.sql, prepared.args(params), prepared.quick)

    async def one(self, statement: ClauseElement, params: Mapping[str, Any] = {}) -> Any:
        rows = await self.all(statement, params)
        return rows[0] if rows else None

    async def value(self, statement: ClauseElement, params: Mapping[str, Any] = {}) -> Any:
        row = await self.one(statement, params)
        return None if row is None else row[0]

    async def run(self, statement: ClauseElement, params: Mapping[str, Any] = {}) -> int:
        """Run a statement returning no rows; how many rows it changed."""
        prepared = self.dialect.prepare(statement)
        await self._before(prepared)
        return await self._execute(prepared.sql, prepared.args(params), prepared.quick)

    async def many(self, statement: ClauseElement, params: Sequence[Mapping[str, Any]]) -> None:
        """Run a statement once per parameter set, in one trip."""
        if not params:
            return
        prepared = self.dialect.prepare(statement)
        await self._before(prepared)
        await self._executemany(prepared.sql, [prepared.args(p) for p in params])

    async def text_rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """SQL text with ``?`` marks (:mod:`gridbot.store.forget`'s plan): its rows."""
        await self._before_text()
        return await self._fetch(self.dialect.marks(sql), tuple(params))

    async def text_run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """SQL text with ``?`` marks: how many rows it changed."""
        await self._before_text()
        return await self._execute(self.dialect.marks(sql), tuple(params))

    # -- the driver ---------------------------------------------------------------------
    @abstractmethod
    async def _fetch(self, sql: str, args: Sequence[Any], quick: bool = False) -> list[Any]:
        """The rows; ``quick``: the statement is marked so (see :func:`quick`)."""

    @abstractmethod
    async def _execute(self, sql: str, args: Sequence[Any], quick: bool = False) -> int: ...

    @abstractmethod
    async def _executemany(self, sql: str, args: list[tuple[Any, ...]]) -> None: ...


class SQLiteSql(Sql):
    """A transaction on the SQLite file, through aiosqlite's connection.

    A trip to aiosqlite's thread costs ten times a short statement (the thread wakes,
    takes the interpreter lock, hands the result back), so a transaction takes one: its
    ``BEGIN`` (which may wait for another process's write lock, up to the busy timeout)
    goes in the trip of its first statement. From then on the transaction holds the
    write lock, and in WAL mode nothing it does waits for anyone: statements marked
    :func:`quick` (a few rows by key) and the deferred rows and ``COMMIT`` at the end run
    at once on the event loop's thread. Anything else (a statement that may scan) still
    takes a trip, so the loop never stalls on it. Busy or locked comes back as
    StoreBusy, so that code inside the transaction sees the store's error, never
    sqlite3's.
    """

    dialect = SQLITE

    def __init__(self, db: aiosqlite.Connection, begin: str | None, *,
                 busy_timeout_ms: int) -> None:
        """``begin``: the statement that begins the transaction, sent with the first one
        (``None``: none is wanted). ``busy_timeout_ms``: the connection's busy timeout,
        put back after a BEGIN tried without waiting."""
        super().__init__()
        self.db = db
        self.begin = begin
        self.busy_timeout_ms = busy_timeout_ms
        #: the transaction has begun (it holds the write lock)
        self.locked = False

    def _begin_here(self) -> bool:
        """Begin on this thread if the write lock is free right now (no waiting: the
        busy timeout is off for the attempt); False if another connection holds it."""
        conn, begin = self.db._conn, self.begin
        assert begin is not None
        if conn.in_transaction:
            # the rollback of a transaction cancelled just before is still queued in
            # aiosqlite's thread: BEGIN goes after it, there
            return False
        conn.execute("PRAGMA busy_timeout=0")
        try:
            conn.execute(begin)
        except sqlite3.OperationalError as exc:
            if busy_error(exc) is None:
                raise
            return False
        finally:
            conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
        self.begin, self.locked = None, True
        return True

    async def _trip(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` on the connection in aiosqlite's thread, after the pending BEGIN."""
        begin, self.begin = self.begin, None

        def run(conn: sqlite3.Connection) -> T:
            if begin is not None:
                conn.execute(begin)
                self.locked = True
            return work(conn)

        try:
            # aiosqlite's own way of running a function in its thread (what each of its
            # methods does), so that several statements take one trip
            result: T = await self.db._execute(run, self.db._conn)  # type: ignore[no-untyped-call]
            return result
        except sqlite3.OperationalError as exc:
            raise _busy_or(exc) from exc

    def _here(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` on the connection, on this thread (the transaction holds the lock)."""
        try:
            return work(self.db._conn)
        except sqlite3.OperationalError as exc:
            raise _busy_or(exc) from exc

    async def _run(self, work: Callable[[sqlite3.Connection], T], quick: bool) -> T:
        if quick and self.begin is not None:
            # Most of the time nobody else holds the lock: the transaction begins here,
            # and takes no trip at all. Otherwise BEGIN waits in aiosqlite's thread.
            self._here(lambda _conn: self._begin_here())
        if quick and self.locked:
            return self._here(work)
        return await self._trip(work)

    async def _fetch(self, sql: str, args: Sequence[Any], quick: bool = False) -> list[Any]:
        return await self._run(lambda conn: conn.execute(sql, tuple(args)).fetchall(), quick)

    async def _execute(self, sql: str, args: Sequence[Any], quick: bool = False) -> int:
        return await self._run(lambda conn: conn.execute(sql, tuple(args)).rowcount, quick)

    async def _executemany(self, sql: str, args: list[tuple[Any, ...]]) -> None:
        await self._trip(lambda conn: conn.executemany(sql, args))

    async def _batch(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        if statements:  # deferred rows: a few, by key
            await self._run(lambda conn: _run_all(conn, statements), quick=True)

    async def commit(self) -> None:
        statements = self._deferred_statements()
        if self.begin is not None and not statements:
            self.begin = None  # nothing was done: nothing to begin or commit
            return
        await self._run(lambda conn: _run_all(conn, [*statements, ("COMMIT", ())]),
                        quick=True)


def _busy_or(exc: sqlite3.OperationalError) -> BaseException:
    busy = busy_error(exc)
    return exc if busy is None else busy


def _run_all(conn: sqlite3.Connection, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
    for sql, args in statements:
        conn.execute(sql, args)


#: a bind parameter in asyncpg's SQL (the deferred INSERTs hold no other ``$``)
_PLACE = re.compile(r"\$(\d+)")
#: the table an INSERT writes
_INTO = re.compile(r"\s*INSERT INTO (\S+)", re.IGNORECASE)
#: PostgreSQL takes at most 65,535 parameters in one statement
_MOST_PARAMETERS = 30_000


def _renumbered(sql: str, shift: int) -> str:
    """``sql`` with its parameters ``$n`` as ``$(n + shift)``."""
    return _PLACE.sub(lambda m: f"${int(m[1]) + shift}", sql)


def _count(status: str) -> int:
    """Rows affected, from a command status such as ``UPDATE 3`` or ``INSERT 0 1``."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


#: what may make a SELECT more than a read: a row lock (``FOR UPDATE``, ``FOR SHARE`` …),
#: a server function with an effect (advisory locks, notifications: ``pg_…``; sequences)
_NOT_ONLY_READ = re.compile(r"\bFOR\b|PG_|NEXTVAL|SETVAL", re.IGNORECASE)


@lru_cache(maxsize=1024)
def _plain_read(sql: str) -> bool:
    """A ``SELECT`` that locks nothing and calls no server function with an effect: run
    outside a transaction it reads what it would have read as the transaction's first
    statement (each statement of a READ COMMITTED transaction takes a snapshot of its
    own). Unsure means no."""
    return sql.lstrip()[:6].upper() == "SELECT" and _NOT_ONLY_READ.search(sql) is None


@lru_cache(maxsize=1024)
def _inline_plan(sql: str) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
    """``sql`` cut at its parameters (the text between them, each parameter's index), or
    None if its text might hold a parameter-like ``$n`` that is not one: a quoted string,
    a comment, a dollar quote. Our statements quote nothing; unsure means no."""
    if any(mark in sql for mark in ("'", "--", "/*", "\\", "$$")):
        return None
    parts = _PLACE.split(sql)
    texts, numbers = tuple(parts[0::2]), tuple(int(n) - 1 for n in parts[1::2])
    if any("$" in text for text in texts):
        return None
    return texts, numbers


_LEAST_BIGINT = -2**63


def _utf8(text: str) -> bool:
    """Whether ``text`` can be sent at all (a lone surrogate, from JSON's escapes, cannot)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _literal(value: Any) -> str | None:
    """``value`` as an SQL literal, or None if it is not one of the few kinds written so.
    Strings are quoted the standard way (the connection sets standard_conforming_strings:
    a backslash is just a backslash, a quote is doubled); instants must carry their
    offset, so that the server's time zone cannot shift them."""
    kind = type(value)
    if value is None:
        return "NULL"
    if kind is str:
        if "\x00" in value or not (value.isascii() or _utf8(value)):
            return None  # as a parameter it fails as it always did
        text: str = value
        return "'" + text.replace("'", "''") + "'"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        # parenthesised: "-5::BIGINT" would cast 5 and then negate (the least BIGINT
        # would not fit); one out of range goes as a parameter, and fails as it did
        if not _LEAST_BIGINT <= value <= -_LEAST_BIGINT - 1:
            return None
        return str(value) if value >= 0 else f"({value})"
    if kind is datetime:
        return None if value.utcoffset() is None else f"'{value.isoformat()}'"
    return None


def _inlined(sql: str, args: Sequence[Any]) -> str | None:
    """``sql`` with its parameters written in as literals, for a simple query that can go
    in one round trip with others (BEGIN before it, COMMIT after it), or None if it
    cannot be written so (then it goes as a prepared statement, on a trip of its own)."""
    plan = _inline_plan(sql)
    if plan is None:
        return None
    texts, numbers = plan
    if numbers and max(numbers) >= len(args):
        return None
    literals = [_literal(value) for value in args]
    if None in literals:
        return None
    out = [texts[0]]
    for number, text in zip(numbers, texts[1:], strict=True):
        out.append(cast(str, literals[number]))
        out.append(text)
    return "".join(out)


async def _translated(call: Awaitable[T]) -> T:
    """asyncpg's answer, its errors as the store's (:func:`pg_error`)."""
    try:
        return await call
    except Exception as exc:
        translated = pg_error(exc)
        if translated is None:
            raise
        raise translated from exc


def _joined(statements: list[tuple[str, tuple[Any, ...]]]) -> list[tuple[str, Sequence[Any]]]:
    """Deferred INSERTs joined as data-modifying ``WITH`` queries of as few statements as
    can be (see :meth:`PostgresSql._batch`)."""
    joined: list[tuple[str, Sequence[Any]]] = []
    group: list[tuple[str, tuple[Any, ...]]] = []
    tables: set[str] = set()
    size = 0
    for sql, args in statements:
        table = _INTO.match(sql)
        name = table[1] if table else sql
        if group and (name in tables or size + len(args) > _MOST_PARAMETERS):
            joined.append(_together(group))
            group, tables, size = [], set(), 0
        group.append((sql, args))
        tables.add(name)
        size += len(args)
    if group:
        joined.append(_together(group))
    return joined


def _together(statements: list[tuple[str, tuple[Any, ...]]]) -> tuple[str, Sequence[Any]]:
    if len(statements) == 1:
        return statements[0]
    parts: list[str] = []
    args: list[Any] = []
    for n, (sql, given) in enumerate(statements):
        parts.append(f"w{n} AS ({_renumbered(sql, len(args))})")
        args.extend(given)
    return f"WITH {', '.join(parts)} SELECT 1", args


class PostgresSql(Sql):
    """asyncpg's prepared statements (cached per connection by asyncpg); conflicts and a
    lost connection come back as the store's errors.

    The transaction begins late (``begun`` False): its ``BEGIN`` waits, with any
    savepoint made meanwhile, for the first statement that is not a plain read, and goes
    in one round trip with them; the reads before it run on their own. A transaction that
    only read begins and commits nothing: two round trips fewer (the outbox sender asks
    what is due next after every send). On a machine shared with the server each trip
    costs about as much as a statement's work.

    BEGIN goes with the first write itself, and COMMIT with the last statement of the
    deferred rows, when their values can be written in as literals (:func:`_inlined`):
    asyncpg sends a query without parameters as one simple query, however many
    statements it holds. A transaction that is not atomic (``alone``) never begins:
    each statement commits on its own."""

    dialect = POSTGRESQL

    def __init__(self, conn: Any, *, begun: bool = True, alone: bool = False) -> None:
        super().__init__()
        self.conn = conn
        #: whether BEGIN was sent (or the caller's transaction is under way)
        self.begun = begun
        #: each statement commits on its own: BEGIN is never sent (see Store.transaction)
        self.alone = alone and not begun
        #: what waits for BEGIN: the savepoints made before it
        self._waiting: list[str] = []
        #: the last statement of the deferred rows, kept by commit() for finish()
        self._last: tuple[str, Sequence[Any]] | None = None

    def _needs_begin(self, sql: str) -> bool:
        """Whether ``sql`` is the first statement that needs BEGIN sent before it."""
        return not self.begun and not self.alone and not _plain_read(sql)

    async def _statement(self, sql: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call``'s answer (asyncpg running ``sql``), BEGIN sent first if this is the
        first statement that needs one."""
        if self._needs_begin(sql):
            await self._begin()
        return await _translated(call())

    async def _begin(self, *then: str) -> str:
        """BEGIN, the savepoints waiting for it and ``then`` in one round trip; the
        command status of the last."""
        statements, self._waiting = ["BEGIN", *self._waiting, *then], []
        self.begun = True  # whatever comes of it, a ROLLBACK is the way out
        return await self._run_control(statements)

    async def _executemany(self, sql: str, args: list[tuple[Any, ...]]) -> None:
        await self._statement(sql, lambda: self.conn.executemany(sql, args))

    async def _fetch(self, sql: str, args: Sequence[Any], quick: bool = False) -> list[Any]:
        return list(await self._statement(sql, lambda: self.conn.fetch(sql, *args)))

    async def _control(self, statements: list[str]) -> None:
        if self.alone:
            raise TypeError("savepoints need an atomic transaction")
        if self.begun:
            await self._run_control(statements)
            return
        # Nothing was written since BEGIN would have been sent: a savepoint waits with
        # it, and one rolled back to or released before is simply forgotten.
        for statement in statements:
            if statement.startswith("SAVEPOINT "):
                self._waiting.append(statement)
            elif statement.startswith("RELEASE SAVEPOINT "):
                name = statement.removeprefix("RELEASE ")
                self._waiting = [w for w in self._waiting if w != name]

    async def _run_control(self, statements: list[str]) -> str:
        # No parameters: asyncpg sends them as one simple query, one round trip; the
        # status is the last statement's.
        return cast(str, await _translated(self.conn.execute("; ".join(statements))))

    async def abandon(self) -> None:
        """ROLLBACK, if anything began."""
        if self.begun:
            await self._run_control(["ROLLBACK"])

    async def _batch(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        """The deferred INSERTs (a report's events and outgoing messages) as one statement,
        each a data-modifying ``WITH`` query of it: one round trip instead of one each.
        PostgreSQL runs them on one snapshot, which inserts of new rows do not mind; the
        tables' triggers fire as for the statements alone. It runs them in no set order,
        so two chunks of one table never share a statement (the rows' ids keep the order
        they were deferred in)."""
        for sql, args in _joined(statements):
            await self._execute(sql, args)

    async def commit(self) -> None:
        """The deferred rows, but the last statement of them waits for :meth:`finish`:
        it goes with COMMIT in one round trip, or, if it is the transaction's only
        write, alone (one statement is atomic by itself: no BEGIN, no COMMIT)."""
        joined = _joined(self._deferred_statements())
        for sql, args in joined[:-1]:
            await self._execute(sql, args)
        self._last = joined[-1] if joined else None

    async def finish(self) -> None:
        """The last deferred statement and COMMIT, as few trips as they can go in."""
        last, self._last = self._last, None
        if last is not None:
            sql, args = last
            # Not begun (never, when not atomic): nothing else was written, and the
            # savepoints waiting have nothing to undo; the statement goes alone.
            inline = self._inlined(sql, args) if self.begun else None
            if inline is not None:
                await self._run_control([inline, "COMMIT"])
                return
            await _translated(self.conn.execute(sql, *args))
        if self.begun:
            await self._run_control(["COMMIT"])

    def _inlined(self, sql: str, args: Sequence[Any]) -> str | None:
        """:func:`_inlined`, on a connection whose strings are what its literals assume
        (the server reports both settings; a pooler or a SET could change them)."""
        settings = self.conn.get_settings()
        if settings.standard_conforming_strings != "on" or settings.client_encoding != "UTF8":
            return None
        return _inlined(sql, args)

    async def _execute(self, sql: str, args: Sequence[Any], quick: bool = False) -> int:
        # The first write (the inbox's mark, as a rule) goes with BEGIN in one simple
        # query if its values can be written into it; its status says how many rows.
        if self._needs_begin(sql) and (inline := self._inlined(sql, args)) is not None:
            return _count(await self._begin(inline))
        return _count(await self._statement(sql, lambda: self.conn.execute(sql, *args)))
