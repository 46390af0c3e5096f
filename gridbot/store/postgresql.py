"""The PostgreSQL store, through asyncpg: for several ``gridbot run`` processes on one
database.

The same contract as :mod:`gridbot.store.sqlite`, with what one file cannot give:

- **Row claims.** SQLite serialises every writer; here transactions run side by side in
  READ COMMITTED, so whatever a transaction reads in order to change it is locked:
  ``due_cases``, ``claim_outbox`` and ``due_notices`` take their rows ``FOR UPDATE SKIP
  LOCKED`` (two workers each get different rows, none waits), and ``case`` takes
  its row ``FOR UPDATE`` (a steward's claim and the sweep's escalation of the same case
  happen one after the other, never both on a stale copy). Compare-and-set updates
  (notice status, job runs) rely on PostgreSQL re-checking the ``WHERE`` of a row that
  changed while it waited.
- **Conflicts.** A deadlock, a serialization failure or a unique key that another
  transaction took meanwhile rolls the transaction back and raises
  :class:`~gridbot.errors.StoreConflict`; running the work again is safe.
- **Singleton duties** (Telegram polling, the digest) are held by one process at a time
  through session-level advisory locks on a connection of their own: see
  :meth:`PostgresStore.try_singleton`. A process that dies loses its connection, the
  server releases its locks, and another process takes the duty over.

Instants are ``timestamptz`` (asyncpg hands them back as aware UTC datetimes); JSON is
kept as the same text the SQLite store writes, so ``gridbot migrate`` copies it as is.
The URL is ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE``; ``?schema=NAME`` keeps
gridbot's tables in a schema of their own (created if missing), other query parameters
go to asyncpg (``sslmode=require`` …).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from gridbot.errors import StoreError
from gridbot.store import forget, migrating
from gridbot.store.base import (
    SchemaStatus,
    Store,
    Transaction,
)
from gridbot.store.dialect import (
    ADVISORY_TRY_LOCK,
    ADVISORY_TRY_XACT_LOCK,
    ADVISORY_UNLOCK,
    ADVISORY_XACT_LOCK,
    PostgresSql,
    lock_key,
    pg_error,
)
from gridbot.store.repos import StoreTransaction

try:  # the driver is only needed when a postgresql:// URL is configured
    import asyncpg  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - exercised only without the driver installed
    asyncpg = None

SCHEMES = ("postgresql://", "postgres://")
_SCHEMA = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
#: how long to wait for the server when connecting
CONNECT_TIMEOUT = 10.0
#: the channel the outbox's insert trigger notifies, with the schema as payload
OUTBOX_CHANNEL = "gridbot_outbox"
#: each (micro-grid, status) of case_tally with several rows (revision 0024: one per
#: change) as one row of their sum, zero sums dropped. Rows a transaction still under way
#: inserts are not seen by this one's snapshot, and stay for the next fold.
FOLD_TALLY = """WITH folded AS (
    DELETE FROM case_tally WHERE (microgrid, status) IN (
        SELECT microgrid, status FROM case_tally GROUP BY microgrid, status
        HAVING COUNT(*) > 1)
    RETURNING microgrid, status, n)
INSERT INTO case_tally (microgrid, status, n)
SELECT microgrid, status, SUM(n) FROM folded GROUP BY microgrid, status HAVING SUM(n) <> 0"""


def is_postgres_url(url: str) -> bool:
    return url.startswith(SCHEMES)


def split_url(url: str) -> tuple[str, str | None]:
    """The DSN for asyncpg and the ``schema`` query parameter, taken out of it."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = None
    rest = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            rest.append((key, value))
    if schema is not None and not _SCHEMA.fullmatch(schema):
        raise ValueError(f"schema {schema!r}: expected letters, digits and '_' (at most 63)")
    return urlunsplit(parts._replace(query=urlencode(rest))), schema


def safe_url(url: str) -> str:
    """The URL with its password replaced by ``***``, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def migrations() -> list[tuple[int, str]]:
    """The baseline's PostgreSQL migrations, as (version, SQL), in order; one per SQLite
    migration (Alembic's baseline revisions apply them: see :mod:`gridbot.store.migrating`)."""
    return migrating.legacy_migrations("postgresql")


def _translate(exc: BaseException) -> BaseException:
    """asyncpg's errors as the store's (see :func:`gridbot.store.dialect.pg_error`)."""
    return pg_error(exc) or exc


async def _nothing_to_reset(conn: Any) -> None:
    """What the pool runs on a connection given back, after asyncpg has rolled back a
    transaction left open: nothing. Its default (``RESET ALL``, ``UNLISTEN *``, ``CLOSE
    ALL``, unlocking every advisory lock) was one more round trip at the end of every
    transaction, before the webhook's answer. A pooled connection keeps no session state
    to undo: settings are ``SET LOCAL``, its advisory locks are the transaction's own, and
    ``LISTEN`` and the session locks of singleton duties live on connections of their own
    (:meth:`PostgresStore.try_singleton`)."""


class PostgresStore(Store):
    one_writer = False

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.dsn, self.schema = split_url(url)
        self.pool_size = pool_size
        self._pool: Any = None
        #: database and schema, the namespace of this store's advisory lock keys
        self.namespace = ""
        self._singletons: Any = None  # the connection holding this process's duties
        self._held: set[str] = set()
        self._singleton_lock = asyncio.Lock()
        self._outbox_wakes: list[Callable[[], None]] = []
        self._current_schema = ""

    # -- opening and closing ---------------------------------------------------------------
    async def open(self, *, migrate: bool = True) -> None:
        if asyncpg is None:
            raise StoreError("a postgresql:// storage URL needs the asyncpg driver: "
                             "pip install -e '.[postgresql]' in gridbot's folder")
        # standard_conforming_strings: the default since PostgreSQL 9.1, and what the
        # literals of PostgresSql's one-trip statements are written for
        settings = {"application_name": "gridbot", "standard_conforming_strings": "on"}
        if self.schema:
            settings["search_path"] = self.schema
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=1, max_size=self.pool_size, server_settings=settings,
                timeout=CONNECT_TIMEOUT, command_timeout=60, reset=_nothing_to_reset)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
                ValueError) as exc:
            raise StoreError(f"cannot connect to PostgreSQL at {safe_url(self.url)}: "
                             f"{exc}") from exc
        try:
            async with self._pool.acquire() as conn:
                if self.schema:
                    async with conn.transaction():  # workers starting together
                        await conn.execute(ADVISORY_XACT_LOCK,
                                           lock_key("", f"schema:{self.schema}"))
                        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                row = await conn.fetchrow("SELECT current_database() AS db, current_schema()"
                                          " AS schema")
                self._current_schema = row["schema"] or self.schema or "public"
                self.namespace = f"{row['db']}/{self._current_schema}"
            if migrate:
                await self._migrate()
        except BaseException:
            await self.close()
            raise

    async def _current(self) -> str | None:
        async with self._require().acquire() as conn:  # nothing to do is the usual answer
            try:
                return cast(str | None,
                            await conn.fetchval("SELECT version_num FROM alembic_version"))
            except asyncpg.UndefinedTableError:
                return None

    async def schema_status(self) -> SchemaStatus:
        current = await self._current()
        async with self._require().acquire() as conn:
            tables = await conn.fetchval(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = $1",
                self._current_schema)
        try:
            return migrating.status(current, empty=int(tables) == 0)
        except LookupError as exc:
            raise StoreError(str(exc)) from None

    async def integrity(self) -> list[str]:
        """Indexes left invalid (a failed CREATE INDEX CONCURRENTLY, a crash while
        building one) in gridbot's schema, and data-page checksum failures PostgreSQL has
        counted in this database (when checksums are on; PostgreSQL 12 and later)."""
        problems = []
        async with self._require().acquire() as conn:
            invalid = await conn.fetch(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE NOT i.indisvalid AND n.nspname = $1 ORDER BY c.relname",
                self._current_schema)
            problems += [f"invalid index {r['relname']}" for r in invalid]
            failures = await conn.fetchval(
                "SELECT checksum_failures FROM pg_stat_database "
                "WHERE datname = current_database()")
            if failures:
                problems.append(f"{failures} checksum failures")
        return problems

    async def upgrade(self) -> None:
        await self._migrate()

    async def _migrate(self) -> None:
        current = await self._current()
        if current == migrating.head():
            return
        settings = {"application_name": "gridbot"}
        if self.schema:
            settings["search_path"] = self.schema

        async def connect() -> Any:
            return await asyncpg.connect(self.dsn, server_settings=settings,
                                         timeout=CONNECT_TIMEOUT)

        key = lock_key(self.namespace, "migrate")

        def lock(conn: Connection) -> None:
            conn.exec_driver_sql(ADVISORY_XACT_LOCK, (key,))

        engine = create_async_engine("postgresql+asyncpg://", async_creator=connect,
                                     poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                await conn.run_sync(migrating.migrate, current, lock)
        except DBAPIError as exc:
            raise StoreError(f"schema migration failed: {exc.orig}") from exc.orig
        except LookupError as exc:
            raise StoreError(str(exc)) from None
        finally:
            await engine.dispose()

    async def schema_version(self) -> int:
        async with self._require().acquire() as conn:
            return int(await conn.fetchval(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))

    async def close(self) -> None:
        await self.release_singletons()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), 10)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pool.terminate()

    async def checkpoint(self) -> None:
        """Fold the case tally's rows (see :data:`FOLD_TALLY`): one process at a time,
        the others skip their turn."""
        async with self._require().acquire() as conn:
            try:
                async with conn.transaction():
                    if await conn.fetchval(ADVISORY_TRY_XACT_LOCK,
                                           lock_key(self.namespace, "fold:case_tally")):
                        await conn.execute(FOLD_TALLY)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise _translate(exc) from exc

    def _require(self) -> Any:
        if self._pool is None:
            raise StoreError("store is not open")
        return self._pool

    async def scrub(self) -> str:
        # After the commit: VACUUM frees the old row versions forget left behind, so no
        # query, and no new dump, sees them. It cannot run inside a transaction.
        tables = ", ".join(t for t, what in forget.TABLES.items() if what)
        async with self._require().acquire() as conn:
            try:
                await conn.execute(f"VACUUM {tables}")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise _translate(exc) from exc
        return "vacuumed"

    @asynccontextmanager
    async def transaction(self, *, atomic: bool = True) -> AsyncIterator[Transaction]:
        pool = self._require()
        try:
            conn = await pool.acquire()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreError(f"cannot reach PostgreSQL: {exc}") from exc
        try:
            # BEGIN waits for the first statement that needs it (see PostgresSql); when
            # not atomic, none does: each statement commits on its own.
            sql = PostgresSql(conn, begun=False, alone=not atomic)
            try:
                sql.org = self.org_reads
                yield StoreTransaction(sql)
                await sql.commit()  # the rows it deferred (see Sql.defer)
                try:
                    # COMMIT, with the last of those rows: a failure of theirs leaves the
                    # transaction open, to be rolled back below
                    await sql.finish()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    raise _translate(exc) from exc
            except BaseException:
                # Also when cancelled mid-statement; if the rollback cannot happen the
                # pool closes the connection, which rolls back just the same.
                with contextlib.suppress(Exception):  # the original error is what matters
                    await asyncio.shield(sql.abandon())
                raise
        finally:
            await asyncio.shield(pool.release(conn))

    @asynccontextmanager
    async def session(self) -> AsyncIterator[tuple[Any, Transaction]]:
        """One connection in one transaction, as itself and as a :class:`Transaction`,
        for bulk work beside the interface (``gridbot migrate``: COPY, then read back
        through the store's own code before committing). Rolled back on an exception."""
        async with self._require().acquire() as conn, conn.transaction():
            sql = PostgresSql(conn)
            yield conn, StoreTransaction(sql)
            await sql.flush()

    # -- singleton duties ----------------------------------------------------------------
    async def try_singleton(self, name: str) -> bool:
        """Take (or keep) the duty ``name`` for this process; False if another holds it.

        The duty is an advisory lock held on a connection of its own for as long as the
        process lives; :meth:`singleton_alive` tells whether that connection still
        answers (if not, the server has let the duty go and the caller must stop).
        """
        async with self._singleton_lock:
            conn = await self._singleton_conn()
            if name in self._held:
                return True
            try:
                taken = await conn.fetchval(ADVISORY_TRY_LOCK,
                                            lock_key(self.namespace, "duty:" + name))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self._drop_singleton_conn()  # and with it every duty: the caller stops them
                raise StoreError(f"cannot reach PostgreSQL: {exc}") from exc
            if taken:
                self._held.add(name)
            return bool(taken)

    async def singleton_alive(self) -> bool:
        """True if the duties' connection answers; False (and every duty dropped) if not."""
        async with self._singleton_lock:
            if self._singletons is None:
                return False
            try:
                await asyncio.wait_for(self._singletons.fetchval("SELECT 1"), 5)
                return True
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                self._drop_singleton_conn()
                return False

    async def release_singleton(self, name: str) -> None:
        async with self._singleton_lock:
            if name not in self._held or self._singletons is None:
                self._held.discard(name)
                return
            self._held.discard(name)
            try:
                await self._singletons.execute(ADVISORY_UNLOCK,
                                               lock_key(self.namespace, "duty:" + name))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                self._drop_singleton_conn()

    async def release_singletons(self) -> None:
        async with self._singleton_lock:
            conn, self._singletons = self._singletons, None
            self._held.clear()
            if conn is not None:
                try:
                    await asyncio.wait_for(conn.close(), 5)  # the server drops its locks
                except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    conn.terminate()

    def on_outbox(self, wake: Callable[[], None]) -> None:
        """``wake`` is called on every commit that queued messages, by any process (the
        outbox's insert trigger notifies ``gridbot_outbox``); it listens on the duties'
        connection, from the next :meth:`try_singleton` on."""
        self._outbox_wakes.append(wake)

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload == self._current_schema:
            for wake in self._outbox_wakes:
                wake()

    async def _singleton_conn(self) -> Any:
        self._require()
        if self._singletons is not None and self._singletons.is_closed():
            self._drop_singleton_conn()
        if self._singletons is None:
            try:
                conn = await asyncpg.connect(
                    self.dsn, timeout=CONNECT_TIMEOUT,
                    server_settings={"application_name": "gridbot duties"})
                if self._outbox_wakes:
                    await conn.add_listener(OUTBOX_CHANNEL, self._notified)
            except (OSError, TimeoutError, asyncpg.PostgresError,
                    asyncpg.InterfaceError) as exc:
                raise StoreError(f"cannot reach PostgreSQL: {exc}") from exc
            self._singletons = conn
        return self._singletons

    def _drop_singleton_conn(self) -> None:
        conn, self._singletons = self._singletons, None
        self._held.clear()
        if conn is not None:
            conn.terminate()


