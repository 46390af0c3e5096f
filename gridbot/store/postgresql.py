"""The PostgreSQL store, through asyncpg: for several ``gridbot run`` processes on one
database.

The same contract as :mod:`gridbot.store.sqlite`, with what one file cannot give:

- **Row claims.** SQLite serialises every writer; here transactions run side by side in
  READ COMMITTED, so whatever a transaction reads in order to change it is locked:
  :meth:`~_PGTransaction.due_cases`, :meth:`~_PGTransaction.claim_outbox` and
  :meth:`~_PGTransaction.due_notices` take their rows ``FOR UPDATE SKIP LOCKED`` (two
  workers each get different rows, none waits), and :meth:`~_PGTransaction.case` takes
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
import dataclasses
import hashlib
import json
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from gridbot.domain import (
    Delivery,
    DeliveryCounts,
    DeliveryStatus,
    Notice,
    NoticeStatus,
)
from gridbot.errors import StoreConflict, StoreError
from gridbot.store import forget, migrating
from gridbot.store.base import (
    AuditEntry,
    Heartbeat,
    Household,
    ReportOffer,
    Store,
    Transaction,
    forgotten_households,
)
from gridbot.store.dialect import PostgresSql
from gridbot.store.repos import Repositories
from gridbot.store.rows import Rows, attachments_json

try:  # the driver is only needed when a postgresql:// URL is configured
    import asyncpg
except ImportError:  # pragma: no cover - exercised only without the driver installed
    asyncpg = None

SCHEMES = ("postgresql://", "postgres://")
_SCHEMA = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
#: how long to wait for the server when connecting
CONNECT_TIMEOUT = 10.0
#: the channel the outbox's insert trigger notifies, with the schema as payload
OUTBOX_CHANNEL = "gridbot_outbox"


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


def lock_key(namespace: str, name: str) -> int:
    """A stable signed 64-bit advisory lock key for ``name`` in this database and schema."""
    digest = hashlib.blake2b(f"gridbot:{namespace}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _utc(instant: datetime | None) -> datetime | None:
    if instant is None:
        return None
    if instant.tzinfo is None:
        raise ValueError("naive datetime reached the store")
    return instant.astimezone(UTC)


def _back(instant: datetime | None) -> datetime | None:
    """asyncpg gives timestamptz in UTC already; this only pins the tzinfo object."""
    return None if instant is None else instant.astimezone(UTC)


#: Instants are timestamptz here; JSON columns hold the same text as in SQLite.
_ROWS = Rows(read=_back, write=_utc)


def _count(status: str) -> int:
    """Rows affected, from a command status such as ``UPDATE 3`` or ``INSERT 0 1``."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _translate(exc: BaseException) -> BaseException:
    """asyncpg's errors as the store's: conflicts worth retrying, a lost connection."""
    if asyncpg is None:
        return exc
    if isinstance(exc, (asyncpg.SerializationError, asyncpg.DeadlockDetectedError,
                        asyncpg.UniqueViolationError, asyncpg.LockNotAvailableError)):
        conflict = StoreConflict(f"transaction conflict: {exc}")
        conflict.__cause__ = exc
        return conflict
    if isinstance(exc, (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)):
        lost = StoreError(f"database connection failed: {exc}")
        lost.__cause__ = exc
        return lost
    return exc


class PostgresStore(Store):
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
    async def open(self) -> None:
        if asyncpg is None:
            raise StoreError("a postgresql:// storage URL needs the asyncpg driver: "
                             "pip install -e '.[postgresql]' in gridbot's folder")
        settings = {"application_name": "gridbot"}
        if self.schema:
            settings["search_path"] = self.schema
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=1, max_size=self.pool_size, server_settings=settings,
                timeout=CONNECT_TIMEOUT, command_timeout=60)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
                ValueError) as exc:
            raise StoreError(f"cannot connect to PostgreSQL at {safe_url(self.url)}: "
                             f"{exc}") from exc
        try:
            async with self._pool.acquire() as conn:
                if self.schema:
                    async with conn.transaction():  # workers starting together
                        await conn.execute("SELECT pg_advisory_xact_lock($1)",
                                           lock_key("", f"schema:{self.schema}"))
                        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                row = await conn.fetchrow("SELECT current_database() AS db, current_schema()"
                                          " AS schema")
                self._current_schema = row["schema"] or self.schema or "public"
                self.namespace = f"{row['db']}/{self._current_schema}"
            await self._migrate()
        except BaseException:
            await self.close()
            raise

    async def _migrate(self) -> None:
        pool = self._require()
        async with pool.acquire() as conn:  # nothing to do is the usual answer
            try:
                current = await conn.fetchval("SELECT version_num FROM alembic_version")
            except asyncpg.UndefinedTableError:
                current = None
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
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

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
    async def transaction(self) -> AsyncIterator[Transaction]:
        pool = self._require()
        try:
            conn = await pool.acquire()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreError(f"cannot reach PostgreSQL: {exc}") from exc
        try:
            tx = conn.transaction()
            try:
                await tx.start()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise _translate(exc) from exc
            try:
                yield _PGTransaction(conn)
            except BaseException:
                # Also when cancelled mid-statement; if the rollback cannot happen the
                # pool closes the connection, which rolls back just the same.
                with contextlib.suppress(Exception):  # the original error is what matters
                    await asyncio.shield(tx.rollback())
                raise
            try:
                await tx.commit()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise _translate(exc) from exc
        finally:
            await asyncio.shield(pool.release(conn))

    @asynccontextmanager
    async def session(self) -> AsyncIterator[tuple[Any, Transaction]]:
        """One connection in one transaction, as itself and as a :class:`Transaction`,
        for bulk work beside the interface (``gridbot migrate``: COPY, then read back
        through the store's own code before committing). Rolled back on an exception."""
        async with self._require().acquire() as conn, conn.transaction():
            yield conn, _PGTransaction(conn)

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
                taken = await conn.fetchval("SELECT pg_try_advisory_lock($1)",
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
                await self._singletons.execute("SELECT pg_advisory_unlock($1)",
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




class _PGTransaction(Repositories, Transaction):
    def __init__(self, conn: Any) -> None:
        super().__init__(PostgresSql(conn))
        self.conn = conn

    async def _all(self, sql: str, *params: Any) -> list[Any]:
        try:
            return list(await self.conn.fetch(sql, *params))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise _translate(exc) from exc

    async def _one(self, sql: str, *params: Any) -> Any:
        try:
            return await self.conn.fetchrow(sql, *params)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise _translate(exc) from exc

    async def _run(self, sql: str, *params: Any) -> int:
        """Run one statement; the number of rows it affected."""
        try:
            return _count(await self.conn.execute(sql, *params))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise _translate(exc) from exc

    async def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        try:
            await self.conn.executemany(sql, rows)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise _translate(exc) from exc

    # -- org and people -------------------------------------------------------------
    # -- accounts, chats and link codes ---------------------------------------------
    # -- cases ----------------------------------------------------------------------
    async def _value(self, sql: str, *params: Any) -> Any:
        row = await self._one(sql, *params)
        return row[0] if row else None

    # -- exactly-once intake ----------------------------------------------------------
    # -- messages set aside -------------------------------------------------------------
    # -- outbox -----------------------------------------------------------------------
    # -- notices and their deliveries ---------------------------------------------------
    async def add_notice(self, notice: Notice) -> Notice:
        row = await self._one(
            "INSERT INTO notices (author_id, scope, text, status, send_at, created_at,"
            " microgrids, origin_platform, origin_chat_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
            notice.author_id, notice.scope, notice.text, notice.status.value,
            _utc(notice.send_at), _utc(notice.created_at), json.dumps(list(notice.microgrids)),
            notice.origin_platform, notice.origin_chat_id)
        return _ROWS.notice(row)

    async def notice(self, notice_id: int) -> Notice | None:
        if not 0 < notice_id < 2**62:
            return None
        row = await self._one("SELECT * FROM notices WHERE id = $1", notice_id)
        return _ROWS.notice(row) if row else None

    async def notices(
        self, *, statuses: Iterable[NoticeStatus] | None = None, limit: int = 50
    ) -> list[Notice]:
        if statuses is None:
            rows = await self._all("SELECT * FROM notices ORDER BY id DESC LIMIT $1", limit)
        else:
            rows = await self._all(
                "SELECT * FROM notices WHERE status = ANY($1::text[]) ORDER BY id DESC"
                " LIMIT $2", sorted(s.value for s in statuses), limit)
        return [_ROWS.notice(r) for r in rows]

    async def set_notice_status(
        self, notice_id: int, status: NoticeStatus, now: datetime, *,
        expected: NoticeStatus, by: str | None = None,
    ) -> bool:
        return await self._run(
            "UPDATE notices SET status = $1,"
            " done_at = CASE WHEN $1 = 'done' THEN $2 ELSE done_at END,"
            " cancelled_by = CASE WHEN $1 = 'cancelled' THEN $3 ELSE cancelled_by END"
            " WHERE id = $4 AND status = $5",
            status.value, _utc(now), by, notice_id, expected.value) == 1

    async def due_notices(self, now: datetime, *, limit: int) -> list[Notice]:
        # Starting a notice is claimed like a due case: another worker takes the next one.
        rows = await self._all(
            "SELECT * FROM notices WHERE status = 'scheduled' AND send_at <= $1"
            " ORDER BY send_at, id LIMIT $2 FOR UPDATE SKIP LOCKED", _utc(now), limit)
        return [_ROWS.notice(r) for r in rows]

    async def next_notice_due(self) -> datetime | None:
        return _back(await self._value(
            "SELECT MIN(send_at) FROM notices WHERE status = 'scheduled'"))

    async def settled_notices(self, *, limit: int) -> list[Notice]:
        rows = await self._all(
            "SELECT * FROM notices n WHERE status = 'sending' AND NOT EXISTS (SELECT 1 FROM"
            " deliveries d WHERE d.notice_id = n.id AND d.status IN ('queued', 'sending'))"
            " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED", limit)
        return [_ROWS.notice(r) for r in rows]

    async def add_delivery(self, delivery: Delivery, outbox_key: str) -> bool:
        return await self._run(
            "INSERT INTO deliveries (notice_id, platform, chat_id, status, outbox_id, microgrid,"
            " title, updated_at) VALUES ($1, $2, $3, $4,"
            " (SELECT id FROM outbox WHERE dedup_key = $5), $6, $7, $8)"
            " ON CONFLICT (notice_id, platform, chat_id) DO NOTHING",
            delivery.notice_id, delivery.platform, delivery.chat_id, delivery.status.value,
            outbox_key, delivery.microgrid, delivery.title, _utc(delivery.updated_at)) == 1

    async def deliveries(
        self, notice_id: int, *, statuses: Iterable[DeliveryStatus] | None = None
    ) -> list[Delivery]:
        if statuses is None:
            rows = await self._all(
                f"{_DELIVERY_SELECT} WHERE notice_id = $1 ORDER BY microgrid, platform, chat_id",
                notice_id)
        else:
            rows = await self._all(
                f"{_DELIVERY_SELECT} WHERE notice_id = $1 AND status = ANY($2::text[])"
                " ORDER BY microgrid, platform, chat_id",
                notice_id, sorted(s.value for s in statuses))
        return [_ROWS.delivery(r) for r in rows]

    async def delivery_counts(self, notice_id: int) -> DeliveryCounts:
        rows = await self._all(
            "SELECT status, COUNT(*) AS n FROM deliveries WHERE notice_id = $1 GROUP BY status",
            notice_id)
        by = {r["status"]: r["n"] for r in rows}
        acks = await self._value(
            "SELECT COUNT(*) FROM notice_acks a JOIN deliveries d ON d.id = a.delivery_id"
            " WHERE d.notice_id = $1", notice_id)
        return DeliveryCounts(
            total=sum(by.values()), queued=by.get("queued", 0), sending=by.get("sending", 0),
            sent=by.get("sent", 0) + by.get("acknowledged", 0),
            acknowledged=by.get("acknowledged", 0), failed=by.get("failed", 0),
            unknown=by.get("unknown", 0), acks=acks)

    async def start_delivery(self, outbox_id: int, now: datetime) -> DeliveryStatus | None:
        row = await self._one(
            "SELECT id, status FROM deliveries WHERE outbox_id = $1 FOR UPDATE", outbox_id)
        if row is None:
            return None
        if row["status"] == "queued":
            await self._run("UPDATE deliveries SET status = 'sending', updated_at = $1"
                            " WHERE id = $2", _utc(now), row["id"])
        return DeliveryStatus(row["status"])

    async def finish_delivery(
        self, outbox_id: int, status: DeliveryStatus, now: datetime, *,
        platform_message_id: str | None = None, error: str = "",
    ) -> None:
        await self._run(
            "UPDATE deliveries SET"
            " status = CASE WHEN status = 'acknowledged' THEN status ELSE $1 END,"
            " platform_message_id = COALESCE($2, platform_message_id), error = $3,"
            " sent_at = CASE WHEN $1 = 'sent' THEN $4 ELSE sent_at END, updated_at = $4"
            " WHERE outbox_id = $5",
            status.value, platform_message_id, error, _utc(now), outbox_id)

    async def delivery(self, notice_id: int, platform: str, chat_id: str) -> Delivery | None:
        row = await self._one(
            f"{_DELIVERY_SELECT} WHERE notice_id = $1 AND platform = $2 AND chat_id = $3",
            notice_id, platform, chat_id)
        return _ROWS.delivery(row) if row else None

    async def delivery_for_message(
        self, platform: str, chat_id: str, platform_message_id: str
    ) -> Delivery | None:
        row = await self._one(
            f"{_DELIVERY_SELECT} WHERE platform = $1 AND chat_id = $2"
            " AND platform_message_id = $3 ORDER BY id DESC LIMIT 1",
            platform, chat_id, platform_message_id)
        return _ROWS.delivery(row) if row else None

    async def latest_delivery(
        self, platform: str, chat_id: str, *, since: datetime
    ) -> Delivery | None:
        row = await self._one(
            f"{_DELIVERY_SELECT} WHERE platform = $1 AND chat_id = $2 AND sent_at IS NOT NULL"
            " ORDER BY sent_at DESC, id DESC LIMIT 1", platform, chat_id)
        if row is None or row["sent_at"] < _utc(since):
            return None
        return _ROWS.delivery(row)

    async def acknowledge(self, delivery_id: int, person_id: str, now: datetime) -> bool:
        if await self._run(
                "INSERT INTO notice_acks (delivery_id, person_id, at) VALUES ($1, $2, $3)"
                " ON CONFLICT (delivery_id, person_id) DO NOTHING",
                delivery_id, person_id, _utc(now)) != 1:
            return False
        # An answer is proof of arrival, so an "unknown" delivery counts as received too.
        await self._run(
            "UPDATE deliveries SET status = 'acknowledged', acked_at = COALESCE(acked_at, $1),"
            " updated_at = $1 WHERE id = $2 AND status IN ('sent', 'unknown', 'acknowledged')",
            _utc(now), delivery_id)
        return True

    # -- statistics, reports, exports and the household ledger -------------------------
    async def household_counts(self) -> dict[str, int]:
        rows = await self._all("SELECT microgrid, COUNT(*) AS n FROM households"
                               " GROUP BY microgrid")
        return {r["microgrid"]: r["n"] for r in rows}

    async def households(self, microgrids: Sequence[str]) -> list[Household]:
        if not microgrids:
            return []
        rows = await self._all(
            "SELECT * FROM households WHERE microgrid = ANY($1::text[])"
            " ORDER BY microgrid, building, entrance, room", list(microgrids))
        return [_ROWS.household(r) for r in rows]

    async def put_households(self, households: Sequence[Household], now: datetime) -> None:
        # One trip for the lot: a 50,000-household ledger is one executemany.
        await self._many(
            "INSERT INTO households (microgrid, building, entrance, room, head, phone, members,"
            " tags, note, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT (microgrid, building, entrance, room) DO UPDATE SET"
            " head = excluded.head, phone = excluded.phone, members = excluded.members,"
            " tags = excluded.tags, note = excluded.note, updated_at = excluded.updated_at",
            [(h.microgrid, h.building, h.entrance, h.room, h.head, h.phone, h.members,
              json.dumps(list(h.tags), ensure_ascii=False), h.note, _utc(now))
             for h in households])

    async def remove_households(self, keys: Sequence[tuple[str, str, str, str]]) -> None:
        await self._many(
            "DELETE FROM households WHERE microgrid = $1 AND building = $2 AND entrance = $3"
            " AND room = $4", [tuple(k) for k in keys])

    # -- reliability and privacy: the audit log, forgetting a resident, report limits -----
    async def add_audit(self, entry: AuditEntry) -> None:
        await self._run(
            "INSERT INTO audit_log (at, actor_id, role, via, action, target, summary)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            _utc(entry.at), entry.actor_id, entry.role, entry.via, entry.action, entry.target,
            entry.summary)

    async def audit_entries(
        self, *, since: datetime | None = None, person_id: str | None = None,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        rows = await self._all(
            "SELECT * FROM audit_log WHERE ($1::timestamptz IS NULL OR at >= $1)"
            " AND ($2::text IS NULL OR actor_id = $2 OR target = $2) ORDER BY id LIMIT $3",
            _utc(since), person_id, limit)
        return [AuditEntry(id=r["id"], at=_back(r["at"]), actor_id=r["actor_id"],
                           role=r["role"], via=r["via"], action=r["action"],
                           target=r["target"], summary=r["summary"]) for r in rows]

    async def beat(self, duty: str, holder: str, now: datetime, detail: str = "") -> None:
        await self._run(
            "INSERT INTO heartbeats (duty, holder, beat_at, released_at, detail)"
            " VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (duty) DO UPDATE SET"
            " holder = excluded.holder, beat_at = excluded.beat_at, released_at = NULL,"
            " detail = excluded.detail",
            duty, holder, _utc(now), detail)

    async def release_beat(self, duty: str, holder: str, now: datetime) -> None:
        await self._run("UPDATE heartbeats SET released_at = $1 WHERE duty = $2 AND holder = $3",
                        _utc(now), duty, holder)

    async def heartbeats(self) -> list[Heartbeat]:
        rows = await self._all("SELECT * FROM heartbeats ORDER BY duty")
        return [_ROWS.heartbeat(r) for r in rows]

    async def forget_person(self, person_id: str, *, name: str, text: str,
                            message: str = "", new_id: str | None = None) -> dict[str, int]:
        return await forget.forget(_Forgetting(self), person_id, forget.Words(
            name=name, text=text, message=message or text), new_id)

    async def _forget_households(self, person_id: str, forgotten_name: str) -> int:
        person = await self._one("SELECT name, phone, unit FROM people WHERE id = $1",
                                 person_id)
        if person is None:
            return 0
        lines = map(_ROWS.household, await self._all("SELECT * FROM households FOR UPDATE"))
        changed = [(h.head, h.phone, h.note, *h.key) for h in forgotten_households(
            lines, name=person["name"], forgotten_name=forgotten_name, phone=person["phone"],
            microgrid=person["unit"])]
        if changed:
            await self._many(
                "UPDATE households SET head = $1, phone = $2, note = $3 WHERE microgrid = $4"
                " AND building = $5 AND entrance = $6 AND room = $7", changed)
        return len(changed)

    # -- report offers (登记为报事？) and urgent repeats ------------------------------------
    async def add_report_offer(self, offer: ReportOffer) -> ReportOffer:
        row = await self._one(
            "INSERT INTO report_offers (created_at, platform, chat_id, person_id, text,"
            " attachments, urgent) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            _utc(offer.created_at), offer.platform, offer.chat_id, offer.person_id,
            offer.text, attachments_json(offer.attachments), offer.urgent)
        return dataclasses.replace(offer, id=row["id"])

    async def report_offer(self, offer_id: int) -> ReportOffer | None:
        if not 0 < offer_id < 2**62:
            return None
        row = await self._one("SELECT * FROM report_offers WHERE id = $1 FOR UPDATE", offer_id)
        return _ROWS.report_offer(row) if row else None

    async def latest_report_offer(
        self, platform: str, chat_id: str, *, since: datetime
    ) -> ReportOffer | None:
        row = await self._one(
            "SELECT * FROM report_offers WHERE platform = $1 AND chat_id = $2"
            " AND created_at >= $3 ORDER BY created_at DESC, id DESC LIMIT 1",
            platform, chat_id, _utc(since))
        return _ROWS.report_offer(row) if row else None

    async def spend_report_offer(
        self, offer_id: int, *, case_number: int, by: str, at: datetime
    ) -> bool:
        return await self._run(
            "UPDATE report_offers SET case_number = $1, used_by = $2, used_at = $3, text = '',"
            " attachments = '[]' WHERE id = $4 AND case_number IS NULL",
            case_number, by, _utc(at), offer_id) == 1

    async def drop_report_offers(
        self, *, made_until: datetime | None = None, person_id: str | None = None
    ) -> int:
        if made_until is None and person_id is None:
            return 0
        return await self._run(
            "DELETE FROM report_offers WHERE created_at <= $1 OR person_id = $2"
            " OR used_by = $2", _utc(made_until), person_id)

    async def oldest_report_offer(self) -> datetime | None:
        row = await self._one("SELECT MIN(created_at) AS made FROM report_offers")
        return _back(row["made"]) if row else None


_DELIVERY_SELECT = ("SELECT d.*, (SELECT COUNT(*) FROM notice_acks a WHERE a.delivery_id = d.id)"
                    " AS acks FROM deliveries d")

























class _Forgetting:
    """The forget plan's SQL, as PostgreSQL runs it (see :mod:`gridbot.store.forget`)."""

    for_update = " FOR UPDATE"

    def __init__(self, tx: _PGTransaction) -> None:
        self.tx = tx

    @staticmethod
    def _sql(sql: str) -> str:
        numbers = iter(range(1, sql.count("?") + 1))
        return re.sub(r"\?", lambda _: f"${next(numbers)}", sql)

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self.tx._all(self._sql(sql), *params)

    async def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self.tx._run(self._sql(sql), *params)

    async def guard(self, on: bool) -> None:
        # The append-only guards (migration 0012) let this transaction alone change the
        # words, actor and data of case events and the person ids of audit rows; SET
        # LOCAL ends with it. No DDL, so no lock that would stop the other workers.
        await self.tx._run(f"SET LOCAL gridbot.forgetting = '{'on' if on else 'off'}'")

    def contains(self, column: str) -> str:
        return f"strpos({column}, ?) > 0"

    async def households(self, person_id: str, forgotten_name: str) -> int:
        return await self.tx._forget_households(person_id, forgotten_name)

